//! A Zarr store's hierarchy from its metadata documents: v3 `zarr.json` (its inline
//! `consolidated_metadata` when present, else every node's `zarr.json` found by the listing),
//! v2 `.zmetadata` when present, else the `.zgroup`, `.zarray` and `.zattrs` found by the
//! listing. Each array is mapped to what the tree serves ([`super::array`]); arrays atlasfs
//! cannot serve are left out with a note.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::{Map, Value};

use super::array::served_array;
use super::attrs::{attributes, parse_document};
use super::listing::StoreListing;
use super::{ZarrGroupMeta, ZarrStoreError, ZarrVersion};

/// One node as its documents describe it.
#[derive(Debug, Clone)]
enum NodeDoc {
    Group(Map<String, Value>),
    Array {
        /// The array's metadata document without its attributes.
        doc: Value,
        attrs: Map<String, Value>,
    },
}

/// The hierarchy read from a store's metadata documents.
#[derive(Debug)]
pub struct Hierarchy {
    /// Zarr format of the store.
    pub format: ZarrVersion,
    /// Whether it came from consolidated metadata.
    pub consolidated: bool,
    /// The root group, its arrays without chunk versions yet.
    pub root: ZarrGroupMeta,
    /// Nodes left out and why.
    pub warnings: Vec<String>,
}

/// Reads the hierarchy of the store at `location` from the documents `listing` names, fetching
/// each with `fetch` (key relative to the store root to bytes).
///
/// # Errors
/// [`ZarrStoreError`] when the store has no Zarr metadata at its root, its root is an array,
/// or the root document cannot be read.
pub fn read(
    location: &str,
    listing: &StoreListing,
    fetch: &(dyn Fn(&str) -> Result<Vec<u8>, String> + Sync),
) -> Result<Hierarchy, ZarrStoreError> {
    let document = |key: &str| -> Result<Value, String> { parse_document(&fetch(key)?) };
    let root_error = |key: &str, reason: String| ZarrStoreError::Document {
        location: location.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let has = |key: &str| listing.objects.contains_key(key);
    let mut warnings = Vec::new();
    let (format, consolidated, nodes) = if has("zarr.json") {
        let root = document("zarr.json").map_err(|e| root_error("zarr.json", e))?;
        match root.get("node_type").and_then(Value::as_str) {
            Some("group") => {}
            Some("array") => {
                return Err(ZarrStoreError::RootIsArray {
                    location: location.to_owned(),
                })
            }
            _ => return Err(root_error("zarr.json", "no node_type group".to_owned())),
        }
        let inline = root
            .pointer("/consolidated_metadata/metadata")
            .and_then(Value::as_object);
        let mut nodes = BTreeMap::new();
        let root_node = v3_node(root.clone()).map_err(|e| root_error("zarr.json", e))?;
        nodes.insert(String::new(), root_node);
        match inline {
            Some(metadata) => {
                for (path, doc) in metadata {
                    match v3_node(doc.clone()) {
                        Ok(node) => {
                            nodes.insert(path.trim_matches('/').to_owned(), node);
                        }
                        Err(reason) => warnings.push(format!("left out {path}: {reason}")),
                    }
                }
            }
            None => {
                let keys: Vec<&String> = listing
                    .objects
                    .keys()
                    .filter(|k| k.ends_with("/zarr.json"))
                    .collect();
                let read: Vec<(String, Result<NodeDoc, String>)> = keys
                    .par_iter()
                    .map(|key| {
                        let path = key.trim_end_matches("/zarr.json").to_owned();
                        (path, document(key).and_then(v3_node))
                    })
                    .collect();
                for (path, node) in read {
                    match node {
                        Ok(node) => {
                            nodes.insert(path, node);
                        }
                        Err(reason) => warnings.push(format!("left out {path}: {reason}")),
                    }
                }
            }
        }
        (ZarrVersion::V3, inline.is_some(), nodes)
    } else if has(".zmetadata") {
        let root = document(".zmetadata").map_err(|e| root_error(".zmetadata", e))?;
        let metadata = root
            .get("metadata")
            .and_then(Value::as_object)
            .ok_or_else(|| root_error(".zmetadata", "no \"metadata\" object".to_owned()))?;
        let docs: Vec<(String, Value)> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (
            ZarrVersion::V2,
            true,
            v2_nodes(location, docs, &mut warnings)?,
        )
    } else if has(".zgroup") {
        let keys: Vec<&String> = listing
            .objects
            .keys()
            .filter(|k| {
                let name = k.rsplit('/').next().unwrap_or(k);
                matches!(name, ".zgroup" | ".zarray" | ".zattrs")
            })
            .collect();
        let read: Vec<(String, Result<Value, String>)> = keys
            .par_iter()
            .map(|key| (key.to_string(), document(key)))
            .collect();
        let mut docs = Vec::with_capacity(read.len());
        for (key, doc) in read {
            match doc {
                Ok(doc) => docs.push((key, doc)),
                Err(_) if key == ".zgroup" => {
                    return Err(root_error(".zgroup", "unreadable".to_owned()))
                }
                Err(reason) => warnings.push(format!("left out {key}: {reason}")),
            }
        }
        (
            ZarrVersion::V2,
            false,
            v2_nodes(location, docs, &mut warnings)?,
        )
    } else if has(".zarray") {
        return Err(ZarrStoreError::RootIsArray {
            location: location.to_owned(),
        });
    } else {
        return Err(ZarrStoreError::NoMetadata {
            location: location.to_owned(),
        });
    };
    let root = assemble(format, &nodes, &mut warnings);
    Ok(Hierarchy {
        format,
        consolidated,
        root,
        warnings,
    })
}

/// A v3 node from its `zarr.json`.
fn v3_node(mut doc: Value) -> Result<NodeDoc, String> {
    let attrs = match doc.as_object_mut().and_then(|d| d.remove("attributes")) {
        Some(Value::Object(attrs)) => attrs,
        _ => Map::new(),
    };
    match doc.get("node_type").and_then(Value::as_str) {
        Some("group") => Ok(NodeDoc::Group(attrs)),
        Some("array") => Ok(NodeDoc::Array { doc, attrs }),
        other => Err(format!("unknown node_type {other:?}")),
    }
}

/// v2 nodes from `(key, document)` pairs of `.zgroup`, `.zarray` and `.zattrs` documents.
fn v2_nodes(
    location: &str,
    docs: Vec<(String, Value)>,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, NodeDoc>, ZarrStoreError> {
    let mut groups = Vec::new();
    let mut arrays = BTreeMap::new();
    let mut attrs: HashMap<String, Map<String, Value>> = HashMap::new();
    for (key, doc) in docs {
        let (dir, name) = match key.rsplit_once('/') {
            Some((dir, name)) => (dir.to_owned(), name),
            None => (String::new(), key.as_str()),
        };
        match (name, doc) {
            (".zgroup", _) => groups.push(dir),
            (".zarray", doc) => {
                arrays.insert(dir, doc);
            }
            (".zattrs", Value::Object(map)) => {
                attrs.insert(dir, map);
            }
            (".zattrs", _) => warnings.push(format!("left out {key}: not a JSON object")),
            _ => {}
        }
    }
    if arrays.contains_key("") {
        return Err(ZarrStoreError::RootIsArray {
            location: location.to_owned(),
        });
    }
    let mut nodes = BTreeMap::new();
    for dir in groups {
        let group_attrs = attrs.get(&dir).cloned().unwrap_or_default();
        nodes.insert(dir, NodeDoc::Group(group_attrs));
    }
    nodes
        .entry(String::new())
        .or_insert(NodeDoc::Group(Map::new()));
    for (dir, doc) in arrays {
        let array_attrs = attrs.get(&dir).cloned().unwrap_or_default();
        if nodes.contains_key(&dir) {
            warnings.push(format!("left out {dir}: both a group and an array"));
            continue;
        }
        nodes.insert(
            dir,
            NodeDoc::Array {
                doc,
                attrs: array_attrs,
            },
        );
    }
    Ok(nodes)
}

/// The group tree of `nodes` (keyed by path, `""` the root); nodes whose parent is not a group
/// and arrays that cannot be served are left out with a warning.
fn assemble(
    format: ZarrVersion,
    nodes: &BTreeMap<String, NodeDoc>,
    warnings: &mut Vec<String>,
) -> ZarrGroupMeta {
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for path in nodes.keys().filter(|p| !p.is_empty()) {
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        children.entry(parent).or_default().push(path);
    }
    let mut reached = 0;
    let root = group(format, "", nodes, &children, &mut reached, warnings);
    if reached + 1 < nodes.len() {
        for path in nodes.keys().filter(|p| !p.is_empty()) {
            let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
            if !matches!(nodes.get(parent), Some(NodeDoc::Group(_))) {
                warnings.push(format!("left out {path}: its parent is not a group"));
            }
        }
    }
    root
}

fn group(
    format: ZarrVersion,
    path: &str,
    nodes: &BTreeMap<String, NodeDoc>,
    children: &HashMap<&str, Vec<&str>>,
    reached: &mut usize,
    warnings: &mut Vec<String>,
) -> ZarrGroupMeta {
    let mut out = ZarrGroupMeta {
        attrs: match nodes.get(path) {
            Some(NodeDoc::Group(attrs)) => attributes(attrs),
            _ => Vec::new(),
        },
        ..ZarrGroupMeta::default()
    };
    for &child in children.get(path).map(Vec::as_slice).unwrap_or_default() {
        let name = child.rsplit('/').next().unwrap_or(child).to_owned();
        *reached += 1;
        match &nodes[child] {
            NodeDoc::Group(_) => {
                let sub = group(format, child, nodes, children, reached, warnings);
                out.groups.insert(name, sub);
            }
            NodeDoc::Array { doc, attrs } => match served_array(format, child, doc, attrs) {
                Ok((array, notes)) => {
                    warnings.extend(notes.into_iter().map(|n| format!("array {child}: {n}")));
                    out.arrays.insert(name, Arc::new(array));
                }
                Err(reason) => warnings.push(format!("left out array {child}: {reason}")),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sources::model::{AttrValue, DType, FileVersion};

    fn v3_array(data_type: Value, fill: Value, attrs: Value) -> Value {
        json!({
            "zarr_format": 3, "node_type": "array", "shape": [4, 3], "data_type": data_type,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2, 3]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": fill,
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "zstd", "configuration": {"level": 0, "checksum": false}}],
            "attributes": attrs, "dimension_names": ["time", "lat"],
        })
    }

    /// A listing holding `docs` and a fetch serving them.
    fn store(docs: Vec<(&str, Value)>) -> (StoreListing, HashMap<String, Vec<u8>>) {
        let mut listing = StoreListing::default();
        let mut bytes = HashMap::new();
        for (key, doc) in docs {
            let text = doc.to_string().into_bytes();
            listing.objects.insert(
                key.to_owned(),
                FileVersion {
                    size: text.len() as u64,
                    mtime_ns: 0,
                    etag: 0,
                },
            );
            bytes.insert(key.to_owned(), text);
        }
        (listing, bytes)
    }

    fn read_docs(docs: Vec<(&str, Value)>) -> Result<Hierarchy, ZarrStoreError> {
        let (listing, bytes) = store(docs);
        read("/s.zarr", &listing, &|key: &str| {
            bytes.get(key).cloned().ok_or_else(|| "gone".to_owned())
        })
    }

    #[test]
    fn v3_consolidated_metadata_maps_types_fill_values_dims_and_attributes() {
        let sst = v3_array(
            json!("float32"),
            json!("NaN"),
            json!({"units": "K", "_FillValue": "AAAAAAA4j8A="}),
        );
        let flags = v3_array(json!("bool"), json!(false), json!({}));
        let root = json!({
            "zarr_format": 3, "node_type": "group", "attributes": {"title": "t"},
            "consolidated_metadata": {"kind": "inline", "must_understand": false, "metadata": {
                "sst": sst, "flags": flags,
                "sub": {"zarr_format": 3, "node_type": "group", "attributes": {"level": 2}},
                "sub/x": v3_array(json!("int16"), json!(0), json!({})),
            }},
        });
        let h = read_docs(vec![("zarr.json", root)]).unwrap();
        assert_eq!(h.format, ZarrVersion::V3);
        assert!(h.consolidated);
        assert_eq!(h.root.attrs[0].value, AttrValue::Text("t".into()));
        let sst = &h.root.arrays["sst"];
        assert_eq!(sst.dtype, DType::F32);
        assert_eq!(sst.shape, vec![4, 3]);
        assert_eq!(sst.chunks, vec![2, 3]);
        assert_eq!(sst.dims, vec!["time", "lat"]);
        assert!(f32::from_le_bytes(sst.fill.clone().try_into().unwrap()).is_nan());
        let fill = sst.attrs.iter().find(|a| a.name == "_FillValue").unwrap();
        assert_eq!(fill.value, AttrValue::F64(vec![-999.0]));
        assert!(
            !sst.metadata.contains("units"),
            "attributes are not in the codec metadata"
        );
        assert!(!h.root.arrays.contains_key("flags"));
        assert!(
            h.warnings
                .iter()
                .any(|w| w.contains("flags") && w.contains("bool")),
            "{:?}",
            h.warnings
        );
        let sub = &h.root.groups["sub"];
        assert_eq!(sub.attrs[0].name, "level");
        assert_eq!(sub.arrays["x"].dtype, DType::I16);
    }

    #[test]
    fn v3_without_consolidated_metadata_reads_every_node() {
        let root = json!({"zarr_format": 3, "node_type": "group"});
        let h = read_docs(vec![
            ("zarr.json", root),
            (
                "a/zarr.json",
                v3_array(json!("float64"), json!(0.0), json!({})),
            ),
            (
                "g/zarr.json",
                json!({"zarr_format": 3, "node_type": "group"}),
            ),
            (
                "g/b/zarr.json",
                v3_array(json!("uint8"), json!(7), json!({})),
            ),
            ("a/c/0/0", json!(1)),
        ])
        .unwrap();
        assert!(!h.consolidated);
        assert_eq!(h.root.arrays["a"].dtype, DType::F64);
        assert_eq!(h.root.groups["g"].arrays["b"].fill, vec![7]);
    }

    #[test]
    fn v2_stores_take_the_cf_fill_value_from_fill_value() {
        let zarray = |dtype: &str, fill: Value| {
            json!({"zarr_format": 2, "shape": [4], "chunks": [2], "dtype": dtype, "fill_value": fill,
                   "order": "C", "filters": null, "compressor": {"id": "zlib", "level": 1}})
        };
        let docs = vec![
            (".zgroup", json!({"zarr_format": 2})),
            (".zattrs", json!({"title": "v2"})),
            ("t/.zarray", zarray("<i8", Value::Null)),
            (
                "t/.zattrs",
                json!({"_ARRAY_DIMENSIONS": ["time"], "units": "days"}),
            ),
            ("v/.zarray", zarray(">f4", json!(-1.5))),
            ("v/.zattrs", json!({"_ARRAY_DIMENSIONS": ["time"]})),
            ("s/.zarray", zarray("<U2", Value::Null)),
        ];
        let h = read_docs(docs.clone()).unwrap();
        assert_eq!(h.format, ZarrVersion::V2);
        assert!(!h.consolidated);
        let t = &h.root.arrays["t"];
        assert_eq!(t.dims, vec!["time"]);
        assert_eq!(t.attrs.len(), 1, "no _FillValue for a null fill_value");
        let v = &h.root.arrays["v"];
        assert_eq!(v.dtype, DType::F32);
        assert_eq!(v.fill, (-1.5f32).to_le_bytes().to_vec());
        assert!(v
            .attrs
            .iter()
            .any(|a| a.name == "_FillValue" && a.value == AttrValue::F32(vec![-1.5])));
        assert!(!h.root.arrays.contains_key("s"));
        // The same documents consolidated.
        let metadata: Map<String, Value> =
            docs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let consolidated = read_docs(vec![(
            ".zmetadata",
            json!({"zarr_consolidated_format": 1, "metadata": metadata}),
        )])
        .unwrap();
        assert!(consolidated.consolidated);
        assert_eq!(consolidated.root.arrays["v"], h.root.arrays["v"]);
    }

    #[test]
    fn huge_chunks_are_left_out() {
        let mut huge = v3_array(json!("float64"), json!(0.0), json!({}));
        huge["shape"] = json!([1u64 << 40, 1u64 << 40]);
        huge["chunk_grid"]["configuration"]["chunk_shape"] = json!([1u64 << 20, 1u64 << 20]);
        let root = json!({"zarr_format": 3, "node_type": "group"});
        let h = read_docs(vec![("zarr.json", root), ("big/zarr.json", huge)]).unwrap();
        assert!(h.root.arrays.is_empty());
        assert!(h.warnings[0].contains("2 GiB"), "{:?}", h.warnings);
    }

    #[test]
    fn stores_without_a_root_group_are_errors() {
        assert!(matches!(
            read_docs(vec![("x/c/0", json!(1))]),
            Err(ZarrStoreError::NoMetadata { .. })
        ));
        let array = v3_array(json!("int8"), json!(0), json!({}));
        assert!(matches!(
            read_docs(vec![("zarr.json", array)]),
            Err(ZarrStoreError::RootIsArray { .. })
        ));
    }
}
