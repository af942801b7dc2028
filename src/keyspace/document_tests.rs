//! Metadata documents rendered on demand: byte for byte what serialising the whole tree of JSON
//! values writes (v2 and v3, nested groups, non-finite attributes, odd names), lengths exact
//! before anything is rendered, and a bounded number of rendered bytes kept.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::documents::Documents;
use super::json::to_bytes;
use super::metadata::{array_v3, attributes, group_v3, zarray, zattrs_array};
use super::KeySpace;
use crate::config::ZarrFormat;
use crate::operators::{Geometry, Recipe};
use crate::sources::model::{Attr, AttrValue, DType};
use crate::tree::{ArrayNode, GroupNode, Node, Tree};

fn attr(name: &str, value: AttrValue) -> Attr {
    Attr {
        name: name.into(),
        value,
    }
}

fn array(id: usize, path: &str, dtype: DType, attrs: Vec<Attr>) -> Node {
    Node::Array(Arc::new(ArrayNode {
        id,
        path: path.into(),
        dims: vec!["time".into(), "x".into()],
        geometry: Geometry {
            shape: vec![3, 12],
            chunks: vec![1, 12],
            dtype,
            fill: vec![0; dtype.size().unwrap_or(1)],
        },
        attrs,
        recipe: Recipe::native(Vec::new()),
    }))
}

/// `models` groups of `experiments` leaf groups of `variables` arrays, plus odd cases: a
/// non-finite attribute, a name that needs escaping, an empty group, a root array.
fn tree(models: usize, experiments: usize, variables: usize) -> Arc<Tree> {
    let mut id = 0;
    let mut next = |path: &str, dtype, attrs| {
        id += 1;
        array(id, path, dtype, attrs)
    };
    let mut ds = GroupNode {
        attrs: vec![attr("title", AttrValue::Text("tree \"quoted\"\n".into()))],
        children: BTreeMap::new(),
    };
    for m in 0..models {
        let mut model = GroupNode {
            attrs: vec![attr("source", AttrValue::Text(format!("M{m}")))],
            children: BTreeMap::new(),
        };
        for e in 0..experiments {
            let mut exp = GroupNode::default();
            for v in 0..variables {
                let path = format!("ds/M{m}/exp{e}/v{v}");
                let attrs = vec![
                    attr("_FillValue", AttrValue::F32(vec![9.96921e36])),
                    attr("valid_range", AttrValue::F64(vec![f64::NAN, f64::INFINITY])),
                    attr("long_name", AttrValue::Text(format!("v{v} of M{m}"))),
                ];
                exp.children
                    .insert(format!("v{v}"), next(&path, DType::F32, attrs));
            }
            model.children.insert(format!("exp{e}"), Node::Group(exp));
        }
        ds.children.insert(format!("M{m}"), Node::Group(model));
    }
    ds.children
        .insert("empty".into(), Node::Group(GroupNode::default()));
    ds.children.insert(
        "naïve \\ name".into(),
        next("ds/naïve \\ name", DType::I16, Vec::new()),
    );
    let mut root = GroupNode::default();
    root.children.insert("ds".into(), Node::Group(ds));
    root.children
        .insert("top".into(), next("top", DType::U8, Vec::new()));
    Arc::new(Tree {
        root,
        ..Tree::default()
    })
}

/// Every document as the whole tree of JSON values serialises it (the reference).
fn reference(tree: &Tree, format: ZarrFormat) -> BTreeMap<String, Vec<u8>> {
    fn join(prefix: &str, name: &str) -> String {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        }
    }
    fn walk(
        group: &GroupNode,
        path: &str,
        format: ZarrFormat,
        out: &mut BTreeMap<String, Vec<u8>>,
        is_root: bool,
    ) -> Vec<(String, Value)> {
        let mut below = Vec::new();
        for (name, child) in &group.children {
            let child_path = join(path, name);
            match (child, format) {
                (Node::Array(a), ZarrFormat::V3) => {
                    out.insert(join(&child_path, "zarr.json"), to_bytes(&array_v3(a)));
                    below.push((name.clone(), array_v3(a)));
                }
                (Node::Array(a), ZarrFormat::V2) => {
                    out.insert(join(&child_path, ".zarray"), to_bytes(&zarray(a)));
                    out.insert(join(&child_path, ".zattrs"), to_bytes(&zattrs_array(a)));
                    below.push((format!("{name}/.zarray"), zarray(a)));
                    below.push((format!("{name}/.zattrs"), zattrs_array(a)));
                }
                (Node::Group(g), _) => {
                    let nested = walk(g, &child_path, format, out, false);
                    if format == ZarrFormat::V3 {
                        below.push((name.clone(), group_v3(&g.attrs, Some(json!({})))));
                    } else {
                        below.push((format!("{name}/.zgroup"), json!({"zarr_format": 2})));
                        below.push((
                            format!("{name}/.zattrs"),
                            Value::Object(attributes(&g.attrs)),
                        ));
                    }
                    below.extend(nested.into_iter().map(|(k, v)| (format!("{name}/{k}"), v)));
                }
            }
        }
        let mut metadata: Map<String, Value> = below.iter().cloned().collect();
        if format == ZarrFormat::V3 {
            let consolidated = (!is_root).then_some(Value::Object(metadata));
            out.insert(
                join(path, "zarr.json"),
                to_bytes(&group_v3(&group.attrs, consolidated)),
            );
        } else {
            let attrs = Value::Object(attributes(&group.attrs));
            metadata.insert(".zgroup".into(), json!({"zarr_format": 2}));
            metadata.insert(".zattrs".into(), attrs.clone());
            if !is_root {
                let doc = json!({"zarr_consolidated_format": 1, "metadata": metadata});
                out.insert(join(path, ".zmetadata"), to_bytes(&doc));
            }
            out.insert(join(path, ".zgroup"), to_bytes(&json!({"zarr_format": 2})));
            out.insert(join(path, ".zattrs"), to_bytes(&attrs));
        }
        below
    }
    let mut out = BTreeMap::new();
    walk(&tree.root, "", format, &mut out, true);
    out
}

#[test]
fn documents_are_byte_identical_to_the_serialised_tree_with_exact_sizes() {
    let tree = tree(3, 2, 4);
    for format in [ZarrFormat::V3, ZarrFormat::V2] {
        let want = reference(&tree, format);
        let docs = Documents::new(format, 1 << 20);
        let mut keys = docs.keys(&tree);
        keys.sort_unstable();
        assert_eq!(keys, want.keys().cloned().collect::<Vec<_>>());
        assert_eq!(docs.held_bytes(), 0, "nothing is rendered to index");
        let dataset = match format {
            ZarrFormat::V3 => "ds/zarr.json",
            ZarrFormat::V2 => "ds/.zmetadata",
        };
        assert!(docs.len_of(&tree, dataset).is_some());
        assert_eq!(
            docs.held_bytes(),
            0,
            "a consolidated document is measured, not rendered"
        );
        for key in [
            "nope/zarr.json",
            "ds//zarr.json",
            "/zarr.json",
            ".zmetadata",
            "ds/c/0",
        ] {
            assert_eq!(docs.len_of(&tree, key), None, "{format:?} {key}");
        }
        for (key, bytes) in &want {
            assert_eq!(
                docs.len_of(&tree, key),
                Some(bytes.len() as u64),
                "{format:?} {key}"
            );
            let got = docs.bytes(&tree, key).unwrap();
            assert!(
                *got == *bytes,
                "{format:?} {key}:\n{}\n---\n{}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(bytes)
            );
        }
        // The key space serves the same bytes and sizes.
        let keys = KeySpace::new(tree.clone(), format);
        let root = if format == ZarrFormat::V3 {
            "ds/zarr.json"
        } else {
            "ds/.zmetadata"
        };
        let stat = keys.stat(root);
        assert_eq!(stat, Some(super::Kind::File(want[root].len() as u64)));
        assert_eq!(&*keys.read(root, 0, usize::MAX).unwrap(), &want[root][..]);
    }
}

#[test]
fn rendered_documents_are_bounded() {
    // 2,000 arrays: their documents add up to far more than the 64 KiB kept.
    let tree = tree(10, 10, 20);
    let cap = 64 << 10;
    let docs = Documents::new(ZarrFormat::V3, cap);
    assert_eq!(docs.held_bytes(), 0);
    let mut total = 0u64;
    for key in &docs.keys(&tree) {
        let bytes = docs.bytes(&tree, key).unwrap();
        assert_eq!(Some(bytes.len() as u64), docs.len_of(&tree, key), "{key}");
        total += bytes.len() as u64;
        assert!(docs.held_bytes() <= cap, "{} > {cap}", docs.held_bytes());
    }
    assert!(total > 20 * cap as u64, "{total}");
    assert!(docs.held_bytes() > 0);
    // The dataset's consolidated document is larger than the bound: served whole, not kept.
    let root = docs.len_of(&tree, "ds/zarr.json").unwrap();
    assert!(root > cap as u64);
    let held = docs.held_bytes();
    assert_eq!(
        docs.bytes(&tree, "ds/zarr.json").unwrap().len() as u64,
        root
    );
    assert_eq!(docs.held_bytes(), held);
}

#[test]
fn dataset_documents_are_rendered_ahead_of_their_reads() {
    let tree = tree(3, 2, 4);
    let v2 = Documents::new(ZarrFormat::V2, 1 << 20);
    let names = |docs: &Documents| -> Vec<String> {
        docs.dataset_documents(&tree)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(names(&v2), ["ds/.zmetadata"]);
    let keys = KeySpace::new(tree.clone(), ZarrFormat::V3);
    assert_eq!(names(&keys.documents), ["ds/zarr.json"]);
    assert_eq!(keys.documents.held_bytes(), 0);
    assert_eq!(keys.prerender_dataset_documents(), 1);
    // Held as rendered: the first read finds it.
    let len = keys.documents.len_of(&tree, "ds/zarr.json").unwrap();
    assert_eq!(keys.documents.held_bytes() as u64, len);
}
