//! The regrid view: every data variable of a group on the view's target grid, computed per
//! output chunk from only the source window its weights read. [`grid`] finds the source grid
//! from CF attributes, [`pair`] holds the weights between the two grids (computed once,
//! persisted), [`operator`] computes chunks. The target's dimensions and coordinates are named
//! after the target grid (`lat`/`lon`, `y`/`x`, those of the `like` group, or one `cell`
//! dimension with xdggs's coordinates for nested HEALPix cells, [`healpix`]).

mod cells;
pub(crate) mod grid;
mod healpix;
pub(crate) use healpix::grid_of as healpix_grid_of;
mod operator;
mod pair;
mod target;
pub(crate) mod tiles;
pub(crate) mod weights_store;

use std::sync::Arc;

use super::decoded::{nan_fill_attr, nan_fill_bytes, without_encoding_attrs, Decoding};
use super::{arrays_of, is_coordinate, provenance, Builder};
use crate::config::{RegridMethod, RegridParams, TargetGrid};
use crate::operators::{Geometry, Recipe};
use crate::sources::model::{Attr, AttrValue};
use crate::tree::{GroupNode, Node, TreeError};
use grid::SourceGrid;
use operator::Regrid;
use pair::GridPair;

/// The first grid any data variable of `group` lies on: what `like = "<path>"` names.
pub(crate) fn grid_of(group: &GroupNode) -> Result<SourceGrid, String> {
    let mut why = String::from("it holds no data variable");
    for (name, array) in arrays_of(group) {
        if is_coordinate(group, name, array) || array.dims.len() < 2 {
            continue;
        }
        match grid::find(group, array, None) {
            Ok(grid) => return Ok(grid),
            Err(e) => why = e,
        }
    }
    Err(why)
}

/// The regrid of one group.
pub(super) fn apply(
    builder: &mut Builder<'_>,
    params: &RegridParams,
    source: &GroupNode,
    path: &str,
) -> Result<GroupNode, TreeError> {
    // `like` a group of HEALPix cells: the same view as naming their level.
    let cells_like;
    let params = match (&params.grid, builder.like_cells) {
        (TargetGrid::Like { .. }, Some(healpix)) => {
            cells_like = RegridParams {
                grid: TargetGrid::Healpix { healpix },
                ..params.clone()
            };
            &cells_like
        }
        _ => params,
    };
    let arrays = arrays_of(source);
    let candidates = builder.gridded(source);
    let mut found = Err(format!(
        "{path}: no numeric data variable has two dimensions"
    ));
    for (_, array) in &candidates {
        found = grid::find(source, array, params.source_crs.as_deref());
        if found.is_ok() {
            break;
        }
    }
    let grid = found.map_err(|e| builder.config_error(format!("{path}: {e}")))?;
    let chunk = params.chunk_len();
    let target = target::target(builder, &params.grid, &grid, path, chunk)
        .map_err(|e| builder.config_error(format!("{path}: {e}")))?;
    let cells = matches!(target.axes, pair::TargetAxes::Healpix { .. });
    if cells && params.method == RegridMethod::Conservative {
        return Err(builder.config_error(format!(
            "{path}: conservative regridding to HEALPix cells is not supported; use mean or \
             nearest"
        )));
    }
    if cells && !params.method.is_statistic() && grid.kind == grid::GridKind::Curvilinear {
        return Err(builder.config_error(format!(
            "{path}: {:?} to HEALPix cells needs a rectilinear source; use mean",
            params.method
        )));
    }
    if params.method.is_statistic() && matches!(target.axes, pair::TargetAxes::Cells { .. }) {
        return Err(builder.config_error(format!(
            "{path}: {:?} bins source centres, which needs a target grid of the source's kind",
            params.method
        )));
    }
    let store = builder.scans.weights();
    let pair = Arc::new(GridPair::new(
        grid.clone(),
        target.axes,
        params.method,
        store,
    ));
    let mut out = GroupNode::default();
    for (name, array) in &arrays {
        let along: Vec<usize> = grid
            .dims
            .iter()
            .filter_map(|d| array.dims.iter().position(|a| a == d))
            .collect();
        let rank = array.dims.len();
        // HEALPix cells replace the grid's two dimensions, which must be the last two.
        let placed = !cells || along == [rank.saturating_sub(2), rank.saturating_sub(1)];
        let regridded = along.len() == 2 && placed && candidates.iter().any(|(n, _)| n == name);
        if !regridded {
            let replaced =
                target.dims.contains(name) || target.arrays.iter().any(|(n, _)| n == *name);
            if along.is_empty() && !replaced {
                let alias = builder.alias(array, format!("{path}/{name}"));
                out.children.insert((*name).clone(), Node::Array(alias));
            }
            // Along the source grid but not regridded (its coordinates, bounds, variables
            // not selected): left out, so every array's dimensions agree.
            continue;
        }
        let Some(decoding) = Decoding::of(array) else {
            continue;
        };
        let axes = [along[0], along[1]];
        let float = decoding.float;
        let mut dims = array.dims.clone();
        let mut shape = array.geometry.shape.clone();
        let mut chunks = vec![1; shape.len()];
        // The positions of the target's dimensions: the source's y and x, or one `cell`
        // dimension in place of the last two.
        let (layout, positions) = match cells {
            true => {
                dims.truncate(rank - 1);
                shape.truncate(rank - 1);
                chunks.truncate(rank - 1);
                (operator::Layout::Cells, vec![rank - 2])
            }
            false => (operator::Layout::Plane, axes.to_vec()),
        };
        for (k, &a) in positions.iter().enumerate() {
            if let (Some(dim), Some(&len)) = (target.dims.get(k), target.lens.get(k)) {
                dims[a] = dim.clone();
                shape[a] = len;
                chunks[a] = chunk.min(len).max(1);
            }
        }
        let chunks = super::override_chunks(chunks, &dims, &shape, &params.chunks);
        let mut attrs: Vec<Attr> = without_encoding_attrs(&array.attrs)
            .into_iter()
            .filter(|a| {
                !matches!(
                    a.name.as_str(),
                    "coordinates" | "grid_mapping" | "cell_measures"
                )
            })
            .collect();
        attrs.extend(nan_fill_attr(float));
        if cells {
            attrs.push(Attr {
                name: "coordinates".into(),
                value: AttrValue::Text(healpix::COORDINATES.into()),
            });
        }
        if let Some(mapping) = &target.grid_mapping {
            attrs.push(Attr {
                name: "grid_mapping".into(),
                value: AttrValue::Text(mapping.clone()),
            });
        }
        let operator = Regrid {
            source: (*array).clone(),
            decoding,
            axes,
            layout,
            pair: pair.clone(),
            nan_threshold: params.nan_threshold,
        };
        let node = builder.array(
            format!("{path}/{name}"),
            dims,
            Geometry {
                shape,
                chunks,
                dtype: float,
                fill: nan_fill_bytes(float),
            },
            attrs,
            Recipe::new(
                Arc::new(operator),
                super::encoding(params.codec, params.level, float),
            ),
        );
        out.children.insert((*name).clone(), Node::Array(node));
    }
    for (name, coord) in target.arrays {
        out.children.insert(name, Node::Array(coord));
    }
    builder.check_chunk_dims(&params.chunks, &out, path)?;
    out.attrs = provenance(
        &source.attrs,
        builder.view,
        &format!(
            "method {:?}, grid {}",
            params.method,
            describe(&params.grid)
        ),
    );
    Ok(out)
}

fn describe(grid: &TargetGrid) -> String {
    match grid {
        TargetGrid::LatLon { lat, lon } => format!(
            "lat {}..{} step {}, lon {}..{} step {}",
            lat.start, lat.stop, lat.step, lon.start, lon.stop, lon.step
        ),
        TargetGrid::Projected { crs, x, y } => format!(
            "{crs} x {}..{} step {}, y {}..{} step {}",
            x.start, x.stop, x.step, y.start, y.stop, y.step
        ),
        TargetGrid::Like { like } => format!("like {like}"),
        TargetGrid::Healpix { healpix } => format!("nested HEALPix level {}", healpix.level),
    }
}
