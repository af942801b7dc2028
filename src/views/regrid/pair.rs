//! The weights between one group's source grid and the view's target grid, shared by every
//! variable of the group: computed when the first chunk needs them from the coordinates' values
//! (read through the region reader), kept in memory, and persisted under the cache directory
//! keyed by a hash of both grids' coordinates and the method — never by name, so a changed grid
//! gets new weights and a changed value does not recompute them.

use std::ops::Range;
use std::sync::Arc;

use parking_lot::Mutex;

use super::cells::{Cells, Finder};
use super::grid::{GridKind, SourceGrid};
use super::weights_store::WeightsStore;
use crate::config::RegridMethod;
use crate::operators::kernels::regrid::axis::{Axis, AxisKind};
use crate::operators::kernels::regrid::bins::{self, Statistic};
use crate::operators::kernels::regrid::general::{CellGrid, Method, SourceIndex, Space};
use crate::operators::kernels::regrid::healpix::{self, Membership};
use crate::operators::kernels::regrid::projection::Projection;
use crate::operators::kernels::regrid::separable::{self, AxisWeights};
use crate::operators::kernels::regrid::sparse::SparseWeights;
use crate::operators::kernels::regrid::RegridError;
use crate::operators::kernels::Float;
use crate::operators::{ChunkError, ChunkErrorKind, OperatorContext, Region};
use crate::tree::ArrayNode;
use crate::views::decoded::Decoding;

/// The target grid's axes: built from the config, or another group's coordinates.
#[derive(Debug)]
pub(crate) enum TargetAxes {
    /// y and x cells in the source's coordinates (degrees for a lat/lon source, metres of its
    /// projection for a projected one).
    Given(Axis, Axis),
    /// The grid of another group (`like`), of the same kind as the source.
    Like(SourceGrid),
    /// y and x cells in the target's own coordinates (degrees of lon/lat, or metres of
    /// `projection`), for a source of another kind: weights from cell polygons.
    Cells {
        /// Along y.
        y: Axis,
        /// Along x.
        x: Axis,
        /// The target's projection ([`Projection::LonLat`] for lat/lon).
        projection: Projection,
    },
    /// Nested HEALPix cells of one level, served along one `cell` dimension (as target
    /// rows `0..1` and columns the cell ids).
    Healpix {
        /// The level.
        level: u8,
    },
}

/// What a regrid of one group needs to weigh: both grids and the method.
#[derive(Debug)]
pub(crate) struct GridPair {
    pub(crate) source: SourceGrid,
    pub(crate) target: TargetAxes,
    pub(crate) method: RegridMethod,
    /// Where weights are persisted (`<cache dir>/weights`), if anywhere.
    pub(crate) store: Option<Arc<WeightsStore>>,
    memo: Mutex<Option<Arc<Weights>>>,
}

/// Weights of one pair of grids.
#[derive(Debug)]
pub(crate) enum Weights {
    /// Per axis (rectilinear grids of the same kind; bilinear, conservative, nearest).
    Separable {
        /// Along y.
        y: AxisWeights,
        /// Along x.
        x: AxisWeights,
    },
    /// Source centres binned into target cells per axis (statistics).
    Binned {
        /// Source ranges per target row.
        y: Vec<Range<usize>>,
        /// Source ranges per target column (past the source's length where a bin wraps).
        x: Vec<Range<usize>>,
        /// The source's rows and columns.
        source_len: [usize; 2],
        /// The statistic.
        statistic: Statistic,
    },
    /// From cell polygons, per output chunk (grids of different kinds).
    Sparse(Box<Cells>),
}

/// What one output chunk reads and how.
pub(crate) struct Plan<'a> {
    weights: &'a Weights,
    sparse: Option<Arc<SparseWeights>>,
    /// The source rows and columns it reads.
    pub(crate) window: (Range<usize>, Range<usize>),
}

fn grid_error(e: impl std::fmt::Display) -> ChunkError {
    ChunkError::new(ChunkErrorKind::Unsupported, None, e.to_string())
}

impl Weights {
    /// How target rows `ty` and columns `tx` are computed: the source window they read and,
    /// for sparse weights, that chunk's weights (computed or loaded).
    pub(crate) fn plan(&self, ty: Range<usize>, tx: Range<usize>) -> Plan<'_> {
        let (window, sparse) = match self {
            Weights::Separable { y, x } => ((y.source_span(ty), x.source_span(tx)), None),
            Weights::Binned {
                y, x, source_len, ..
            } => (
                (
                    bins::bins_span(y, ty, source_len[0]),
                    bins::bins_span(x, tx, source_len[1]),
                ),
                None,
            ),
            Weights::Sparse(cells) => {
                let chunk = cells.chunk(&ty, &tx);
                (chunk.source_window(cells.source_shape()), Some(chunk))
            }
        };
        Plan {
            weights: self,
            sparse,
            window,
        }
    }
}

impl Plan<'_> {
    /// Target values for rows `ty`, columns `tx` from the plan's source window.
    pub(crate) fn apply<T: Float>(
        &self,
        ty: Range<usize>,
        tx: Range<usize>,
        source: &[T],
        nan_threshold: f64,
        out: &mut [T],
    ) {
        let (ys, xs) = self.window.clone();
        match (self.weights, &self.sparse) {
            (Weights::Separable { y, x }, _) => {
                separable::apply(y, x, ty, tx, ys, xs, source, nan_threshold, out)
            }
            (
                Weights::Binned {
                    y, x, statistic, ..
                },
                _,
            ) => bins::apply_statistic(*statistic, y, x, ty, tx, ys, xs, source, out),
            (Weights::Sparse(cells), Some(chunk)) => match cells.statistic() {
                Some(stat) => chunk.apply_statistic(
                    stat,
                    cells.source_shape(),
                    self.window.clone(),
                    source,
                    out,
                ),
                None => chunk.apply(
                    cells.source_shape(),
                    self.window.clone(),
                    source,
                    nan_threshold,
                    out,
                ),
            },
            (Weights::Sparse(_), None) => out.fill(T::from_f64(f64::NAN)),
        }
    }
}

impl GridPair {
    pub(crate) fn new(
        source: SourceGrid,
        target: TargetAxes,
        method: RegridMethod,
        store: Option<Arc<WeightsStore>>,
    ) -> Self {
        GridPair {
            source,
            target,
            method,
            store,
            memo: Mutex::new(None),
        }
    }

    /// The coordinate arrays weights depend on (their chunks enter every chunk's key).
    pub(crate) fn coordinate_arrays(&self) -> Vec<Arc<ArrayNode>> {
        let mut arrays: Vec<Arc<ArrayNode>> = self.source.coords.to_vec();
        arrays.extend(self.source.bounds.iter().flatten().cloned());
        if let TargetAxes::Like(like) = &self.target {
            arrays.extend(like.coords.iter().cloned());
            arrays.extend(like.bounds.iter().flatten().cloned());
        }
        arrays
    }

    /// The weights, computed (or loaded) on first use.
    ///
    /// # Errors
    /// A coordinate that cannot be read, or grids no weights join (naming the array).
    pub(crate) fn weights(
        &self,
        context: &OperatorContext<'_>,
    ) -> Result<Arc<Weights>, ChunkError> {
        let mut memo = self.memo.lock();
        if let Some(weights) = memo.as_ref() {
            return Ok(weights.clone());
        }
        if let TargetAxes::Cells { y, x, projection } = &self.target {
            let cells = self.cells(context, y, x, projection)?;
            let weights = Arc::new(Weights::Sparse(Box::new(cells)));
            *memo = Some(weights.clone());
            return Ok(weights);
        }
        if let TargetAxes::Healpix { level } = &self.target {
            let cells = self.healpix(context, *level)?;
            let weights = Arc::new(Weights::Sparse(Box::new(cells)));
            *memo = Some(weights.clone());
            return Ok(weights);
        }
        let source = axes(context, &self.source)?;
        let target = match &self.target {
            TargetAxes::Cells { .. } | TargetAxes::Healpix { .. } => {
                return Err(grid_error("this target has no axes"))
            }
            TargetAxes::Given(y, x) => (y.clone(), x.clone()),
            TargetAxes::Like(like) => {
                if like.kind != self.source.kind {
                    return Err(grid_error(format!(
                        "{} and {} are different kinds of grid",
                        like.coords[0].path, self.source.coords[0].path
                    )));
                }
                axes(context, like)?
            }
        };
        let weights = Arc::new(self.compute(source, target).map_err(grid_error)?);
        *memo = Some(weights.clone());
        Ok(weights)
    }

    fn compute(&self, source: (Axis, Axis), target: (Axis, Axis)) -> Result<Weights, RegridError> {
        let digest = crate::operators::fingerprint_hash(&(
            "regrid-weights",
            1u32,
            self.method,
            &source,
            &target,
        ));
        let name = format!("{digest:032x}.bin");
        if let Some(statistic) = statistic_of(self.method) {
            // Binning is a search per source centre: cheaper than reading a file.
            return Ok(Weights::Binned {
                y: bins::bins(&source.0, &target.0),
                x: bins::bins(&source.1, &target.1),
                source_len: [source.0.len(), source.1.len()],
                statistic,
            });
        }
        if let Some(known) = self.store.as_ref().and_then(|s| load(s, &name)) {
            return Ok(known);
        }
        let one = |s: &Axis, t: &Axis| match self.method {
            RegridMethod::Bilinear => separable::linear(s, t),
            RegridMethod::Nearest => separable::nearest(s, t),
            _ => separable::conservative(s, t),
        };
        let started = std::time::Instant::now();
        let weights = Weights::Separable {
            y: one(&source.0, &target.0),
            x: one(&source.1, &target.1),
        };
        tracing::debug!(
            "regrid weights {:?} {}x{} -> {}x{} in {:?}",
            self.method,
            source.0.len(),
            source.1.len(),
            target.0.len(),
            target.1.len(),
            started.elapsed()
        );
        if let Some(store) = &self.store {
            save(store, &name, &weights);
        }
        Ok(weights)
    }
}

impl GridPair {
    /// The source's cells and the target's in one space (the target's plane, or lon/lat).
    fn cells(
        &self,
        context: &OperatorContext<'_>,
        y: &Axis,
        x: &Axis,
        target: &Projection,
    ) -> Result<Cells, ChunkError> {
        let method = match self.method {
            RegridMethod::Conservative => Method::Conservative,
            RegridMethod::Bilinear => Method::Bilinear,
            RegridMethod::Nearest => Method::Nearest,
            other => {
                return Err(grid_error(format!(
                    "{other:?} bins centres on grids of one kind; this target is of another"
                )))
            }
        };
        let own = super::target::source_projection(&self.source)
            .map_err(grid_error)?
            .unwrap_or(Projection::LonLat);
        let space_of = |p: &Projection| match p.is_angular() {
            true => Space::LonLat,
            false => Space::Plane,
        };
        let target_cells = CellGrid::rectilinear(
            y.centres(),
            y.bounds(),
            x.centres(),
            x.bounds(),
            space_of(target),
        );
        let (finder, shape, identity) = match self.source.kind {
            GridKind::Curvilinear => {
                let [lat, lon] = &self.source.coords;
                let (lat_values, lon_values) = (values(context, lat)?, values(context, lon)?);
                let shape = [
                    lat.geometry.shape[0] as usize,
                    lat.geometry.shape.get(1).copied().unwrap_or(1) as usize,
                ];
                let bounds = match &self.source.bounds {
                    [Some(lb), Some(xb)] => Some((values(context, lb)?, values(context, xb)?)),
                    _ => None,
                };
                let grid = CellGrid::curvilinear(
                    shape,
                    &lat_values,
                    &lon_values,
                    bounds.as_ref().map(|(a, b)| (a.as_slice(), b.as_slice())),
                )
                .map_err(grid_error)?;
                let mut identity = vec![lat_values, lon_values];
                if let Some((a, b)) = bounds {
                    identity.extend([a, b]);
                }
                (polygons(grid, &own, target, method), shape, identity)
            }
            _ => {
                let (sy, sx) = axes(context, &self.source)?;
                let flat = |a: &Axis| a.bounds().iter().flatten().copied().collect::<Vec<f64>>();
                let identity = vec![
                    sy.centres().to_vec(),
                    flat(&sy),
                    sx.centres().to_vec(),
                    flat(&sx),
                ];
                let shape = [sy.len(), sx.len()];
                let finder = match method {
                    Method::Conservative => {
                        let grid = CellGrid::rectilinear(
                            sy.centres(),
                            sy.bounds(),
                            sx.centres(),
                            sx.bounds(),
                            space_of(&own),
                        );
                        polygons(grid, &own, target, method)
                    }
                    _ => Finder::Points {
                        y: sy,
                        x: sx,
                        source: own,
                        target: *target,
                        linear: method == Method::Bilinear,
                    },
                };
                (finder, shape, identity)
            }
        };
        let digest = crate::operators::fingerprint_hash(&(
            "regrid-cells",
            1u32,
            self.method,
            identity,
            y,
            x,
            format!("{own:?} -> {target:?}"),
        ));
        Ok(Cells::new(
            finder,
            shape,
            target_cells,
            digest,
            self.store.clone(),
        ))
    }
}

impl GridPair {
    /// HEALPix cells of `level`: the source's centres binned by cell (statistics), or each
    /// cell centre sampled on a rectilinear source (nearest, bilinear).
    fn healpix(&self, context: &OperatorContext<'_>, level: u8) -> Result<Cells, ChunkError> {
        let own = super::target::source_projection(&self.source)
            .map_err(grid_error)?
            .unwrap_or(Projection::LonLat);
        let n = healpix::cell_count(level) as usize;
        let target = CellGrid {
            shape: [1, n],
            centres: Vec::new(),
            corners: Vec::new(),
            space: Space::LonLat,
        };
        let statistic = statistic_of(self.method);
        let (finder, shape, identity) = match (&self.source.kind, statistic) {
            (GridKind::Curvilinear, Some(statistic)) => {
                let [lat, lon] = &self.source.coords;
                let (lat_values, lon_values) = (values(context, lat)?, values(context, lon)?);
                let shape = [
                    lat.geometry.shape.first().copied().unwrap_or(0) as usize,
                    lat.geometry.shape.get(1).copied().unwrap_or(1) as usize,
                ];
                let centres = lon_values.iter().copied().zip(lat_values.iter().copied());
                let members = Membership::new(level, centres);
                let finder = Finder::HealpixMembers { members, statistic };
                (finder, shape, vec![lat_values, lon_values])
            }
            (GridKind::Curvilinear, None) => {
                return Err(grid_error(format!(
                    "{}: {:?} to HEALPix cells needs a rectilinear source",
                    self.source.coords[0].path, self.method
                )))
            }
            (_, statistic) => {
                let (sy, sx) = axes(context, &self.source)?;
                let identity = vec![sy.centres().to_vec(), sx.centres().to_vec()];
                let shape = [sy.len(), sx.len()];
                let finder = match statistic {
                    Some(statistic) => {
                        let centres = sy
                            .centres()
                            .iter()
                            .flat_map(|&y| sx.centres().iter().map(move |&x| own.inverse(x, y)));
                        let members = Membership::new(level, centres);
                        Finder::HealpixMembers { members, statistic }
                    }
                    None => Finder::HealpixPoints {
                        y: sy,
                        x: sx,
                        source: own,
                        level,
                        linear: self.method == RegridMethod::Bilinear,
                    },
                };
                (finder, shape, identity)
            }
        };
        let digest = crate::operators::fingerprint_hash(&(
            "regrid-healpix",
            1u32,
            self.method,
            identity,
            level,
            format!("{own:?}"),
        ));
        Ok(Cells::new(
            finder,
            shape,
            target,
            digest,
            self.store.clone(),
        ))
    }
}

/// The statistic a method computes, if it bins centres.
fn statistic_of(method: RegridMethod) -> Option<Statistic> {
    match method {
        RegridMethod::Mean => Some(Statistic::Mean),
        RegridMethod::Min => Some(Statistic::Min),
        RegridMethod::Max => Some(Statistic::Max),
        RegridMethod::Std => Some(Statistic::Std),
        RegridMethod::Median => Some(Statistic::Median),
        RegridMethod::Count => Some(Statistic::Count),
        _ => None,
    }
}

/// Source cells found by polygon: brought into the target's space and indexed.
fn polygons(grid: CellGrid, own: &Projection, target: &Projection, method: Method) -> Finder {
    let source = if own == target {
        grid
    } else {
        grid.reproject(own, target)
    };
    let index = SourceIndex::new(&source);
    Finder::Polygons {
        source,
        index,
        method,
    }
}

fn load(store: &WeightsStore, name: &str) -> Option<Weights> {
    let bytes = store.load(name)?;
    let (y, x): (Vec<u8>, Vec<u8>) = postcard::from_bytes(&bytes).ok()?;
    Some(Weights::Separable {
        y: AxisWeights::from_bytes(&y).ok()?,
        x: AxisWeights::from_bytes(&x).ok()?,
    })
}

fn save(store: &WeightsStore, name: &str, weights: &Weights) {
    let Weights::Separable { y, x } = weights else {
        return;
    };
    if let Ok(bytes) = postcard::to_stdvec(&(y.to_bytes(), x.to_bytes())) {
        store.save(name, &bytes);
    }
}

/// The decoded values of a whole (small) coordinate array.
fn values(context: &OperatorContext<'_>, array: &ArrayNode) -> Result<Vec<f64>, ChunkError> {
    let decoding = Decoding::of(array)
        .ok_or_else(|| grid_error(format!("coordinate {} is not numeric", array.path)))?;
    let whole = Region {
        start: vec![0; array.geometry.shape.len()],
        count: array.geometry.shape.clone(),
    };
    decoding.read(context, array, &whole)
}

/// The two axes of a rectilinear grid, with CF bounds when it has them.
fn axes(context: &OperatorContext<'_>, grid: &SourceGrid) -> Result<(Axis, Axis), ChunkError> {
    let (ky, kx) = match grid.kind {
        GridKind::LatLon => (AxisKind::Latitude, AxisKind::Longitude),
        GridKind::Projected(_) => (AxisKind::Planar, AxisKind::Planar),
        GridKind::Curvilinear => {
            return Err(grid_error(format!(
                "{}: curvilinear grids are regridded only to another kind of grid",
                grid.coords[0].path
            )))
        }
    };
    let one = |i: usize, kind: AxisKind| -> Result<Axis, ChunkError> {
        let coord = &grid.coords[i];
        let centres: Vec<f64> = values(context, coord)?
            .into_iter()
            .map(|v| v * grid.scale)
            .collect();
        let axis = match &grid.bounds[i] {
            Some(b) if b.geometry.shape.len() == 2 && b.geometry.shape[1] == 2 => {
                let flat = values(context, b)?;
                let bounds = flat
                    .chunks_exact(2)
                    .map(|p| [p[0] * grid.scale, p[1] * grid.scale])
                    .collect();
                Axis::with_bounds(&coord.path, kind, centres, bounds)
            }
            _ => Axis::from_centres(&coord.path, kind, centres),
        };
        axis.map_err(grid_error)
    };
    Ok((one(0, ky)?, one(1, kx)?))
}
