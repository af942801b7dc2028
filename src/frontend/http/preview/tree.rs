//! The tree as the preview page browses it: one JSON document per node — a group's attributes
//! and children, an array's shape, chunks, type, dimensions and attributes. A large tree is
//! cut after [`MAX_NODES`] nodes: the groups not described further have `"children": null`
//! and the page asks for them when opened. Non-finite attribute values are the strings
//! `"NaN"`, `"Infinity"`, `"-Infinity"` (browsers' JSON has no such numbers).

use serde_json::{json, Map, Value};

use super::error::PreviewError;
use crate::keyspace::json;
use crate::sources::model::{Attr, DType};
use crate::tree::{ArrayNode, GroupNode, Node, NodeRef, Tree};

/// Nodes described in one document, at most.
const MAX_NODES: usize = 5000;

/// The JSON document of the node at `path` (`""` the root) and its descendants.
///
/// # Errors
/// [`PreviewError::NoNode`] when there is no node at `path`.
pub(crate) fn describe(tree: &Tree, path: &str) -> Result<Vec<u8>, PreviewError> {
    let path = path.trim_matches('/');
    let name = path.rsplit('/').next().unwrap_or_default();
    let value = match tree.node(path) {
        Some(NodeRef::Group(g)) => group(name, path, g, &mut { MAX_NODES }),
        Some(NodeRef::Array(a)) => array(name, a),
        None => {
            return Err(PreviewError::NoNode {
                kind: "group or array",
                path: path.to_owned(),
            })
        }
    };
    Ok(serde_json::to_vec(&value).unwrap_or_default())
}

/// A group and, while `budget` lasts, its descendants.
fn group(name: &str, path: &str, node: &GroupNode, budget: &mut usize) -> Value {
    let children = if *budget >= node.children.len() {
        *budget -= node.children.len();
        let described: Vec<Value> = node
            .children
            .iter()
            .map(|(child, n)| {
                let child_path = join(path, child);
                match n {
                    Node::Group(g) => group(child, &child_path, g, budget),
                    Node::Array(a) => array(child, a),
                }
            })
            .collect();
        Value::Array(described)
    } else {
        Value::Null
    };
    json!({
        "name": name,
        "path": path,
        "kind": "group",
        "attrs": attrs(&node.attrs),
        "children": children,
    })
}

fn array(name: &str, node: &ArrayNode) -> Value {
    let geometry = &node.geometry;
    json!({
        "name": name,
        "path": node.path,
        "kind": "array",
        "shape": geometry.shape,
        "chunks": geometry.chunks,
        "dtype": dtype_name(geometry.dtype),
        "dims": node.dims,
        "attrs": attrs(&node.attrs),
    })
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}/{name}")
    }
}

fn attrs(attrs: &[Attr]) -> Value {
    let map: Map<String, Value> = attrs
        .iter()
        .map(|a| (a.name.clone(), finite_json(json::attr(&a.value))))
        .collect();
    Value::Object(map)
}

/// `value` with the placeholders of non-finite floats as the plain strings they stand for.
fn finite_json(value: Value) -> Value {
    match value {
        Value::String(s) if s.starts_with('\0') && s.ends_with('\0') && s.len() > 2 => {
            Value::String(s.trim_matches('\0').to_owned())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(finite_json).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, finite_json(v))).collect())
        }
        other => other,
    }
}

/// The numpy name of a type.
fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::I8 => "int8",
        DType::U8 => "uint8",
        DType::I16 => "int16",
        DType::U16 => "uint16",
        DType::I32 => "int32",
        DType::U32 => "uint32",
        DType::I64 => "int64",
        DType::U64 => "uint64",
        DType::F32 => "float32",
        DType::F64 => "float64",
        DType::Char => "char",
        DType::String => "string",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::model::AttrValue;

    #[test]
    fn non_finite_attributes_are_strings() {
        let value = attrs(&[
            Attr {
                name: "_FillValue".into(),
                value: AttrValue::F32(vec![f32::NAN]),
            },
            Attr {
                name: "range".into(),
                value: AttrValue::F64(vec![1.5, f64::NEG_INFINITY]),
            },
        ]);
        assert_eq!(
            value,
            json!({"_FillValue": "NaN", "range": [1.5, "-Infinity"]})
        );
    }

    #[test]
    fn groups_past_the_budget_are_not_listed() {
        let mut root = GroupNode::default();
        for name in ["a", "b"] {
            root.children
                .insert(name.into(), Node::Group(GroupNode::default()));
        }
        let listed = group("", "", &root, &mut 2);
        assert_eq!(listed["children"][1]["path"], "b");
        let cut = group("", "", &root, &mut 1);
        assert_eq!(cut["children"], Value::Null);
    }
}
