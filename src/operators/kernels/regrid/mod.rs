//! Regridding: the weights that map values on a source grid to a target grid, and their
//! application to one 2-D slice with the NaN rule. Rectilinear grids on the same kind of
//! coordinates use separable 1-D weights per axis ([`axis`], [`separable`], [`bins`]); every
//! other pair (another projection, curvilinear grids) uses sparse weights built from cell
//! polygons or points ([`projection`], [`polygon`], [`general`], [`sparse`]); nested HEALPix
//! targets bin centres or sample points per cell ([`healpix`]).

pub(crate) mod axis;
pub(crate) mod bins;
mod error;
pub(crate) mod general;
pub(crate) mod healpix;
pub(crate) mod polygon;
pub(crate) mod projection;
pub(crate) mod separable;
pub(crate) mod sparse;

pub(crate) use error::RegridError;
