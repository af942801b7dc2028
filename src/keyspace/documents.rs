//! All metadata documents of a tree, built once per snapshot: per-node documents plus the
//! consolidated metadata of every dataset group and subgroup (`zarr.json` inline in v3,
//! `.zmetadata` in v2). Keys are paths from the mount root, e.g. `sst/lat/.zarray`.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::json::to_bytes;
use super::metadata::{array_v3, attributes, group_v3, zarray, zattrs_array};
use crate::config::ZarrFormat;
use crate::tree::{GroupNode, Node, Tree};

/// Metadata documents by key.
pub(super) type Documents = HashMap<String, Arc<Vec<u8>>>;

/// Builds every metadata document of `tree` in `format`.
pub(super) fn build(tree: &Tree, format: ZarrFormat) -> Documents {
    let mut docs = Documents::new();
    let mut values: Vec<(String, Value)> = Vec::new();
    walk(&tree.root, "", format, &mut values, true);
    for (key, value) in values {
        docs.insert(key, Arc::new(to_bytes(&value)));
    }
    docs
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Emits the documents of `group` at `path` and below; returns the group's descendants'
/// documents keyed relative to it (what its consolidated metadata holds).
fn walk(
    group: &GroupNode,
    path: &str,
    format: ZarrFormat,
    out: &mut Vec<(String, Value)>,
    is_root: bool,
) -> Vec<(String, Value)> {
    let mut below: Vec<(String, Value)> = Vec::new();
    for (name, child) in &group.children {
        let child_path = join(path, name);
        match (child, format) {
            (Node::Array(a), ZarrFormat::V3) => {
                let doc = array_v3(a);
                out.push((join(&child_path, "zarr.json"), doc.clone()));
                below.push((name.clone(), doc));
            }
            (Node::Array(a), ZarrFormat::V2) => {
                let (za, zt) = (zarray(a), zattrs_array(a));
                out.push((join(&child_path, ".zarray"), za.clone()));
                out.push((join(&child_path, ".zattrs"), zt.clone()));
                below.push((format!("{name}/.zarray"), za));
                below.push((format!("{name}/.zattrs"), zt));
            }
            (Node::Group(g), _) => {
                let nested = walk(g, &child_path, format, out, false);
                match format {
                    ZarrFormat::V3 => {
                        below.push((name.clone(), group_v3(&g.attrs, Some(Map::new()))));
                    }
                    ZarrFormat::V2 => {
                        below.push((format!("{name}/.zgroup"), json!({"zarr_format": 2})));
                        below.push((
                            format!("{name}/.zattrs"),
                            Value::Object(attributes(&g.attrs)),
                        ));
                    }
                }
                below.extend(nested.into_iter().map(|(k, v)| (format!("{name}/{k}"), v)));
            }
        }
    }
    match format {
        ZarrFormat::V3 => {
            let consolidated = (!is_root).then(|| below.iter().cloned().collect::<Map<_, _>>());
            out.push((
                join(path, "zarr.json"),
                group_v3(&group.attrs, consolidated),
            ));
        }
        ZarrFormat::V2 => {
            let zgroup = json!({"zarr_format": 2});
            let zattrs = Value::Object(attributes(&group.attrs));
            if !is_root {
                let mut metadata: Map<String, Value> = below.iter().cloned().collect();
                metadata.insert(".zgroup".into(), zgroup.clone());
                metadata.insert(".zattrs".into(), zattrs.clone());
                out.push((
                    join(path, ".zmetadata"),
                    json!({"zarr_consolidated_format": 1, "metadata": metadata}),
                ));
            }
            out.push((join(path, ".zgroup"), zgroup));
            out.push((join(path, ".zattrs"), zattrs));
        }
    }
    below
}
