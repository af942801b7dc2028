//! (regrid: projections and polygons, being written)
