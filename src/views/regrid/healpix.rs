//! A HEALPix target's coordinates on its one `cell` dimension, as xdggs reads them:
//! `cell_ids` (uint64 nested ids, with `grid_name`, `level` and `indexing_scheme`) and the cell
//! centres' `latitude` and `longitude` (degrees), each computed per chunk from the level alone.

use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

use crate::operators::kernels::regrid::healpix;
use crate::operators::{
    ChunkError, Encoding, FingerprintWriter, Geometry, Operator, OperatorContext, Recipe, Region,
};
use crate::sources::model::{Attr, AttrValue, DType};
use crate::tree::ArrayNode;
use crate::views::decoded::{float_bytes, into_chunk, nan_fill_bytes};
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
