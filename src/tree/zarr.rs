//! A dataset that re-exposes a Zarr store: a group mirroring the store's hierarchy, each array
//! with the store's shape, chunk grid, type, fill value, dimension names and attributes, its
//! chunks read one for one from the store's chunk objects ([`ZarrRead`]).

use std::sync::Arc;

use super::{ArrayNode, GroupNode, Node};
use crate::operators::{Encoding, Geometry, Recipe, ZarrRead};
use crate::sources::zarr_store::{ZarrGroupMeta, ZarrStoreMeta};

/// The group of a dataset served from `store`, at tree path `name`.
pub(super) fn dataset(store: &ZarrStoreMeta, name: &str, next_id: &mut usize) -> GroupNode {
    group(&store.root, &store.location, name, next_id)
}

fn group(meta: &ZarrGroupMeta, location: &str, path: &str, next_id: &mut usize) -> GroupNode {
    let mut node = GroupNode {
        attrs: meta.attrs.clone(),
        ..GroupNode::default()
    };
    for (name, array) in &meta.arrays {
        let id = *next_id;
        *next_id += 1;
        let served = ArrayNode {
            id,
            path: format!("{path}/{name}"),
            dims: array.dims.clone(),
            geometry: Geometry {
                shape: array.shape.clone(),
                chunks: array.chunks.clone(),
                dtype: array.dtype,
                fill: array.fill.clone(),
            },
            attrs: array.attrs.clone(),
            recipe: Recipe::new(
                Arc::new(ZarrRead::new(location, array.clone())),
                Encoding::Bytes,
            ),
        };
        node.children
            .insert(name.clone(), Node::Array(Arc::new(served)));
    }
    for (name, sub) in &meta.groups {
        let child = group(sub, location, &format!("{path}/{name}"), next_id);
        node.children.insert(name.clone(), Node::Group(child));
    }
    node
}
