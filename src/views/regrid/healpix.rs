//! A HEALPix target's coordinates on its one `cell` dimension, as xdggs reads them:
//! `cell_ids` (uint64 nested ids, with `grid_name`, `level` and `indexing_scheme`) and the cell
//! centres' `latitude` and `longitude` (degrees), each computed per chunk from the level alone;
//! and [`grid_of`], which finds such cells in a group of the tree for `grid = { like = … }`.

use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

use crate::config::HealpixGrid;
use crate::operators::kernels::regrid::healpix;
use crate::operators::{
    ChunkError, Encoding, FingerprintWriter, Geometry, Operator, OperatorContext, Recipe, Region,
};
use crate::sources::model::{Attr, AttrValue, DType};
use crate::tree::{ArrayNode, GroupNode, Node};
use crate::views::decoded::{attr_f64, float_bytes, into_chunk, nan_fill_bytes};
use crate::views::Builder;

/// The dimension of a HEALPix target.
pub(crate) const CELL_DIM: &str = "cell";

/// The coordinate names a HEALPix target's variables list in `coordinates`.
pub(crate) const COORDINATES: &str = "cell_ids latitude longitude";

/// Which coordinate of the cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Quantity {
    Ids,
    Latitude,
    Longitude,
}

/// One coordinate of the cells of `level`.
#[derive(Debug)]
struct CellCoordinate {
    level: u8,
    quantity: Quantity,
}

impl Operator for CellCoordinate {
    fn describe(&self, _: &Geometry) -> String {
        format!("HEALPix level {} {:?}", self.level, self.quantity)
    }

    fn fingerprint(&self, out: &mut FingerprintWriter<'_>) {
        out.write(&("healpix-cells", 1u32, self.level));
        out.write(&format!("{:?}", self.quantity));
    }

    fn chunk_identity(&self, _: &[u128], _: &Region, _: &[u64], _: &mut Xxh3) {}

    fn check(&self, _: &Geometry, _: &[u64], _: &OperatorContext<'_>) -> Result<(), ChunkError> {
        Ok(())
    }

    fn compute(
        &self,
        geometry: &Geometry,
        index: &[u64],
        _: &OperatorContext<'_>,
    ) -> Result<Vec<u8>, ChunkError> {
        let region = geometry.chunk_region(index);
        let start = region.start.first().copied().unwrap_or(0);
        let cells = start..start + region.count.first().copied().unwrap_or(0);
        let bytes = match self.quantity {
            Quantity::Ids => cells.flat_map(u64::to_le_bytes).collect(),
            quantity => {
                let values: Vec<f64> = cells
                    .map(|c| {
                        let (lon, lat) = healpix::centre(self.level, c);
                        match quantity {
                            Quantity::Latitude => lat,
                            _ => lon,
                        }
                    })
                    .collect();
                float_bytes(&values, DType::F64)
            }
        };
        Ok(into_chunk(bytes, &region, &geometry.chunks, &geometry.fill))
    }
}

fn text(name: &str, value: &str) -> Attr {
    Attr {
        name: name.into(),
        value: AttrValue::Text(value.into()),
    }
}

/// The HEALPix grid of `group`, when its `cell_ids` array says it is one as xdggs writes it
/// (`grid_name = "healpix"`, `indexing_scheme = "nested"`, an integer `level`; what a regrid to
/// HEALPix cells serves) along a `cell` dimension of all 12·4^level cells.
///
/// # Errors
/// A message when `cell_ids` names HEALPix cells atlasfs cannot target (another indexing
/// scheme, a bad level, or only some of the cells).
pub(crate) fn grid_of(group: &GroupNode) -> Option<Result<HealpixGrid, String>> {
    let Some(Node::Array(ids)) = group.children.get("cell_ids") else {
        return None;
    };
    let text = |name: &str| {
        ids.attrs
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.value.as_text())
            .map(str::to_ascii_lowercase)
    };
    if text("grid_name").as_deref() != Some("healpix") {
        return None;
    }
    let grid = match attr_f64(&ids.attrs, "level") {
        Some(level) if level.fract() == 0.0 && (0.0..=20.0).contains(&level) => HealpixGrid {
            level: level as i64,
        },
        _ => return Some(Err("its cell_ids have no HEALPix level within 0-20".into())),
    };
    let scheme = text("indexing_scheme");
    if scheme.as_deref() != Some("nested") {
        return Some(Err(format!(
            "its HEALPix cells are indexed {}; only nested cells can be a target",
            scheme.as_deref().unwrap_or("(no indexing_scheme)")
        )));
    }
    let whole = grid
        .depth()
        .map(healpix::cell_count)
        .is_some_and(|n| ids.geometry.shape == [n]);
    if !whole {
        return Some(Err(format!(
            "its cell_ids hold {:?} cells, not all 12·4^{} of level {}",
            ids.geometry.shape, grid.level, grid.level
        )));
    }
    Some(Ok(grid))
}

/// The `cell_ids`, `latitude` and `longitude` arrays of a level-`level` target at `path`,
/// chunked by `chunk` cells.
pub(crate) fn coordinates(
    builder: &mut Builder<'_>,
    path: &str,
    level: u8,
    chunk: u64,
) -> Vec<(String, Arc<ArrayNode>)> {
    let n = healpix::cell_count(level);
    let arrays = [
        (
            "cell_ids",
            Quantity::Ids,
            DType::U64,
            vec![
                text("grid_name", "healpix"),
                Attr {
                    name: "level".into(),
                    value: AttrValue::I64(vec![i64::from(level)]),
                },
                text("indexing_scheme", "nested"),
                text("long_name", "nested HEALPix cell id"),
            ],
        ),
        (
            "latitude",
            Quantity::Latitude,
            DType::F64,
            vec![
                text("standard_name", "latitude"),
                text("long_name", "latitude of the cell centre"),
                text("units", "degrees_north"),
            ],
        ),
        (
            "longitude",
            Quantity::Longitude,
            DType::F64,
            vec![
                text("standard_name", "longitude"),
                text("long_name", "longitude of the cell centre"),
                text("units", "degrees_east"),
            ],
        ),
    ];
    arrays
        .into_iter()
        .map(|(name, quantity, dtype, attrs)| {
            let fill = match dtype {
                DType::U64 => vec![0; 8],
                _ => nan_fill_bytes(dtype),
            };
            let array = builder.array(
                format!("{path}/{name}"),
                vec![CELL_DIM.to_owned()],
                Geometry {
                    shape: vec![n],
                    chunks: vec![chunk.clamp(1, n)],
                    dtype,
                    fill,
                },
                attrs,
                Recipe::new(
                    Arc::new(CellCoordinate { level, quantity }),
                    Encoding::Bytes,
                ),
            );
            (name.to_owned(), array)
        })
        .collect()
}
