//! Weights between grids that are not separable — a lat/lon source on a projected target, a
//! projected source on lat/lon or another projection, a curvilinear source — computed per
//! output chunk: from cell polygons in one space (the target's plane, or lon/lat) through a
//! spatial index of the source cells built once, or, for bilinear and nearest on a
//! rectilinear source, from each target centre mapped into the source's coordinates; for a
//! HEALPix target, from its cell centres, or (statistics) from the source centres binned by
//! cell. Each chunk's weights are persisted under the cache directory with the pair's digest
//! (binned centres are recomputed: cheaper than a file), and a few are kept in memory.

use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use super::weights_store::WeightsStore;
use crate::operators::kernels::regrid::axis::Axis;
use crate::operators::kernels::regrid::bins::Statistic;
use crate::operators::kernels::regrid::general::{self, CellGrid, Method, SourceIndex};
use crate::operators::kernels::regrid::healpix::{self, Membership};
use crate::operators::kernels::regrid::projection::Projection;
use crate::operators::kernels::regrid::separable;
use crate::operators::kernels::regrid::sparse::SparseWeights;

/// Chunk weights kept in memory per pair of grids.
const MEMORY_CHUNKS: usize = 64;

/// Target rows `start..end` and columns `start..end` of one output chunk.
type ChunkSpan = (usize, usize, usize, usize);

/// How target cells find their source cells.
pub(crate) enum Finder {
    /// Cell polygons (conservative, and every method on a curvilinear source): the source's
    /// cells in the target's space and their index.
    Polygons {
        /// The source's cells.
        source: CellGrid,
        /// Their spatial index.
        index: SourceIndex,
        /// The method.
        method: Method,
    },
    /// Points (bilinear and nearest on a rectilinear source): each target centre mapped into
    /// the source's coordinates and interpolated along its axes, as `xarray.interp` does.
    Points {
        /// The source's axes.
        y: Axis,
        /// Along x.
        x: Axis,
        /// The source's projection.
        source: Projection,
        /// The target's projection.
        target: Projection,
        /// Linear (else nearest).
        linear: bool,
    },
    /// Points of a HEALPix target (bilinear and nearest on a rectilinear source): each cell
    /// centre in the source's coordinates, interpolated along its axes.
    HealpixPoints {
        /// The source's axes.
        y: Axis,
        /// Along x.
        x: Axis,
        /// The source's projection.
        source: Projection,
        /// The HEALPix level.
        level: u8,
        /// Linear (else nearest).
        linear: bool,
    },
    /// Source centres binned into HEALPix cells (statistics).
    HealpixMembers {
        /// The sources of each cell.
        members: Membership,
        /// How a cell's values become one.
        statistic: Statistic,
    },
}

/// Weights at scattered points (`lon`, `lat`) from a rectilinear source's axes, interpolated
/// along each axis in the source's coordinates as `xarray.interp` does.
fn point_triplets(
    y: &Axis,
    x: &Axis,
    source: &Projection,
    points: impl Iterator<Item = (f64, f64)>,
    linear: bool,
) -> Vec<(u32, u32, f64)> {
    let (mut ys, mut xs) = (Vec::new(), Vec::new());
    for (lon, lat) in points {
        let (sx, sy) = source.forward(lon, lat);
        ys.push(sy);
        xs.push(sx);
    }
    let (rows_y, rows_x) = match linear {
        true => (
            separable::linear_points(y, &ys),
            separable::linear_points(x, &xs),
        ),
        false => (
            separable::nearest_points(y, &ys),
            separable::nearest_points(x, &xs),
        ),
    };
    let nx = x.len() as u32;
    let mut out = Vec::new();
    for (k, (ry, rx)) in rows_y.iter().zip(&rows_x).enumerate() {
        for &(iy, wy) in ry {
            for &(ix, wx) in rx {
                out.push((k as u32, iy * nx + ix, wy * wx));
            }
        }
    }
    out
}

/// The target's cells, how to find their source cells, and the chunk weights found so far.
pub(crate) struct Cells {
    pub(crate) finder: Finder,
    pub(crate) target: CellGrid,
    source_shape: [usize; 2],
    /// Identifies both grids and the method, for file names.
    pub(crate) digest: u128,
    pub(crate) store: Option<Arc<WeightsStore>>,
    chunks: Mutex<LruCache<ChunkSpan, Arc<SparseWeights>>>,
}

impl std::fmt::Debug for Cells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Cells({:?} -> {:?})",
            self.source_shape, self.target.shape
        )
    }
}

impl Cells {
    pub(crate) fn new(
        finder: Finder,
        source_shape: [usize; 2],
        target: CellGrid,
        digest: u128,
        store: Option<Arc<WeightsStore>>,
    ) -> Cells {
        Cells {
            finder,
            target,
            source_shape,
            digest,
            store,
            chunks: Mutex::new(LruCache::new(
                NonZeroUsize::new(MEMORY_CHUNKS).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// The source's `[rows, columns]`.
    pub(crate) fn source_shape(&self) -> [usize; 2] {
        self.source_shape
    }

    /// Triplets (position in `targets`, source flat index, weight) of target cells `targets`.
    fn triplets(&self, targets: &[usize]) -> Vec<(u32, u32, f64)> {
        match &self.finder {
            Finder::Polygons {
                source,
                index,
                method,
            } => general::weights(*method, source, index, &self.target, targets),
            Finder::Points {
                y,
                x,
                source,
                target,
                linear,
            } => {
                let points = targets.iter().map(|&t| {
                    let [tx, ty] = self.target.centres.get(t).copied().unwrap_or([f64::NAN; 2]);
                    target.inverse(tx, ty)
                });
                point_triplets(y, x, source, points, *linear)
            }
            Finder::HealpixPoints {
                y,
                x,
                source,
                level,
                linear,
            } => {
                let points = targets.iter().map(|&t| healpix::centre(*level, t as u64));
                point_triplets(y, x, source, points, *linear)
            }
            Finder::HealpixMembers { members, .. } => match (targets.first(), targets.last()) {
                (Some(&a), Some(&b)) => members.triplets(a as u64..b as u64 + 1),
                _ => Vec::new(),
            },
        }
    }

    /// The statistic of binned source centres, for a HEALPix target.
    pub(crate) fn statistic(&self) -> Option<Statistic> {
        match &self.finder {
            Finder::HealpixMembers { statistic, .. } => Some(*statistic),
            _ => None,
        }
    }

    /// The weights of target rows `ty` × columns `tx` (C order over that block).
    pub(crate) fn chunk(&self, ty: &Range<usize>, tx: &Range<usize>) -> Arc<SparseWeights> {
        let key = (ty.start, ty.end, tx.start, tx.end);
        if let Some(known) = self.chunks.lock().get(&key) {
            return known.clone();
        }
        let binned = self.statistic().is_some();
        let store = self.store.as_ref().filter(|_| !binned);
        let name = format!(
            "{:032x}-{}-{}-{}-{}.bin",
            self.digest, ty.start, ty.end, tx.start, tx.end
        );
        let loaded = store
            .and_then(|s| s.load(&name))
            .and_then(|b| SparseWeights::from_bytes(&b).ok());
        let weights = Arc::new(match loaded {
            Some(w) => w,
            None => {
                let nx = self.target.shape[1];
                let targets: Vec<usize> = ty
                    .clone()
                    .flat_map(|r| tx.clone().map(move |c| r * nx + c))
                    .collect();
                let w = SparseWeights::from_triplets(targets.len(), self.triplets(&targets));
                if let Some(store) = store {
                    store.save(&name, &w.to_bytes());
                }
                w
            }
        });
        self.chunks.lock().put(key, weights.clone());
        weights
    }
}
