//! The group of a resolved sample set: per data variable an array `(sample, *shape)` chunked
//! one sample per chunk and stored uncompressed, per dimension with a coordinate variable its
//! per-sample labels, per `_`-key an array `(sample,)`, and the set's provenance in the group
//! attribute `atlas_samples`.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::descriptor::{Extra, Header};
use super::labels::Pick;
use super::operator::Sample;
use super::resolve::{Resolved, Source};
use crate::config::SamplesConfig;
use crate::operators::{Encoding, Geometry, Part, Recipe};
use crate::sources::model::{Attr, AttrValue, DType, FileVersion, InlineData, Storage, VarMeta};
use crate::tree::{ArrayNode, GroupNode, Node};
use crate::views::decoded::{
    float_bytes, nan_fill_attr, nan_fill_bytes, without_encoding_attrs, Decoding,
};

/// Coordinate chunks hold up to this many bytes of samples.
const COORDINATE_CHUNK_BYTES: u64 = 4 << 20;

/// Attributes that name variables a sample set does not serve.
const DANGLING: [&str; 4] = ["coordinates", "grid_mapping", "bounds", "cell_measures"];

/// The picks of every sample along `dims`, in that order.
fn picks_along(resolved: &Resolved, dims: &[String]) -> Arc<Vec<Vec<Pick>>> {
    Arc::new(
        resolved
            .picks
            .iter()
            .map(|picks| {
                dims.iter()
                    .map(|d| picks.get(d).cloned().unwrap_or(Pick::whole(0)))
                    .collect()
            })
            .collect(),
    )
}

/// The order of `kept`'s axes the header's `dims` asks for: listed dimensions first, in the
/// header's order, then the others in the source's.
fn axis_order(kept: &[String], header: &Header) -> Vec<usize> {
    let rank = |d: &String| {
        header
            .dims
            .iter()
            .position(|h| h == d)
            .unwrap_or(usize::MAX)
    };
    let mut order: Vec<usize> = (0..kept.len()).collect();
    order.sort_by_key(|&i| (rank(&kept[i]), i));
    order
}

/// The kept dimensions of `dims` and their lengths in the set's shape.
fn kept(resolved: &Resolved, dims: &[String]) -> (Vec<String>, Vec<u64>) {
    dims.iter()
        .filter_map(|d| {
            resolved
                .shape
                .get(d)
                .copied()
                .flatten()
                .map(|n| (d.clone(), n))
        })
        .unzip()
}

/// The set's group.
pub(super) fn group(
    source: &Source<'_>,
    resolved: &Resolved,
    header: &Header,
    set: &SamplesConfig,
    next_id: &mut usize,
    text: &str,
) -> GroupNode {
    let n = resolved.picks.len() as u64;
    let mut out = GroupNode::default();
    let base = set.name.trim_matches('/');
    let mut dims_used: BTreeSet<String> = BTreeSet::new();
    for (name, input) in source.variables() {
        if !resolved.variables.contains(name) {
            continue;
        }
        let Some(decoding) = Decoding::of(input) else {
            continue;
        };
        let decoding = match header.dtype {
            Some(dtype) => decoding.served_as(dtype),
            None => decoding,
        };
        dims_used.extend(input.dims.iter().cloned());
        let (kept_dims, lengths) = kept(resolved, &input.dims);
        let order = axis_order(&kept_dims, header);
        let out_dims: Vec<String> = order.iter().map(|&i| kept_dims[i].clone()).collect();
        let out_lengths: Vec<u64> = order.iter().map(|&i| lengths[i]).collect();
        let dtype = decoding.float;
        let pad = float_bytes(&[header.fill.unwrap_or(f64::NAN)], dtype);
        let operator = Sample {
            input: input.clone(),
            picks: picks_along(resolved, &input.dims),
            lengths,
            order,
            decoding: Some(decoding),
            pad,
            per_chunk: 1,
        };
        let mut attrs: Vec<Attr> = without_encoding_attrs(&input.attrs)
            .into_iter()
            .filter(|a| !DANGLING.contains(&a.name.as_str()))
            .collect();
        attrs.extend(nan_fill_attr(dtype));
        let shape: Vec<u64> = std::iter::once(n)
            .chain(out_lengths.iter().copied())
            .collect();
        let chunks: Vec<u64> = std::iter::once(1).chain(out_lengths).collect();
        let array = ArrayNode::numbered(
            next_id,
            format!("{base}/{name}"),
            std::iter::once("sample".to_owned())
                .chain(out_dims)
                .collect(),
            Geometry {
                shape,
                chunks,
                dtype,
                fill: nan_fill_bytes(dtype),
            },
            attrs,
            Recipe::new(Arc::new(operator), Encoding::Bytes),
        );
        out.children.insert(name.clone(), Node::Array(array));
    }
    for dim in &dims_used {
        let Some(coord) = source.coordinate(dim) else {
            continue;
        };
        let dims = std::slice::from_ref(dim);
        let (kept_dims, lengths) = kept(resolved, dims);
        let elem = coord.geometry.dtype.size().unwrap_or(8) as u64;
        let per_sample = lengths.iter().product::<u64>().max(1) * elem;
        let per_chunk = (COORDINATE_CHUNK_BYTES / per_sample).clamp(1, n.max(1));
        let operator = Sample {
            input: coord.clone(),
            picks: picks_along(resolved, dims),
            lengths: lengths.clone(),
            order: (0..lengths.len()).collect(),
            decoding: None,
            pad: coord.geometry.fill.clone(),
            per_chunk,
        };
        let attrs: Vec<Attr> = coord
            .attrs
            .iter()
            .filter(|a| !DANGLING.contains(&a.name.as_str()))
            .cloned()
            .collect();
        let array = ArrayNode::numbered(
            next_id,
            format!("{base}/{dim}"),
            std::iter::once("sample".to_owned())
                .chain(kept_dims)
                .collect(),
            Geometry {
                shape: std::iter::once(n).chain(lengths.iter().copied()).collect(),
                chunks: std::iter::once(per_chunk).chain(lengths).collect(),
                dtype: coord.geometry.dtype,
                fill: coord.geometry.fill.clone(),
            },
            attrs,
            Recipe::new(Arc::new(operator), Encoding::Bytes),
        );
        out.children.insert(dim.clone(), Node::Array(array));
    }
    let keys: BTreeSet<&String> = resolved.extras.iter().flat_map(|e| e.keys()).collect();
    for key in keys {
        let values: Vec<Option<&Extra>> = resolved.extras.iter().map(|e| e.get(key)).collect();
        let array = extra_array(next_id, &format!("{base}/{key}"), key, &values);
        out.children.insert(key.clone(), Node::Array(array));
    }
    out.attrs = source
        .group
        .attrs
        .iter()
        .filter(|a| a.name != "multiscales")
        .cloned()
        .collect();
    let provenance = serde_json::json!({
        "from": set.from,
        "descriptors": set.file_name(),
        "descriptor_hash": format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes())),
        "source_fingerprint": format!("{:032x}", crate::operators::fingerprint_hash(&source_identity(&out))),
        "samples": n,
        "lines_left_out": resolved.bad.iter().map(|(lines, _)| lines.len()).sum::<usize>(),
    });
    out.attrs.retain(|a| a.name != "atlas_samples");
    out.attrs.push(Attr {
        name: "atlas_samples".into(),
        value: AttrValue::Json(provenance.to_string()),
    });
    out
}

/// What identifies the sources of a set's arrays: the fingerprints of the arrays they read,
/// which cover the versions (size and mtime, or ETag) of every file and object behind them.
fn source_identity(group: &GroupNode) -> Vec<u128> {
    use crate::operators::ArrayFingerprints;
    let keys = crate::keyspace::FreshKeys::default();
    group
        .children
        .values()
        .filter_map(|node| match node {
            Node::Array(a) => Some(keys.digest(a)),
            Node::Group(_) => None,
        })
        .collect()
}

/// An array `(sample,)` of a `_`-key's values: int64 when all are integers, float64 when all
/// are numbers (NaN where a line leaves the key out), else text.
fn extra_array(
    next_id: &mut usize,
    path: &str,
    name: &str,
    values: &[Option<&Extra>],
) -> Arc<ArrayNode> {
    let n = values.len() as u64;
    let numbers: Option<Vec<f64>> = values
        .iter()
        .map(|v| match v {
            Some(Extra::Number(x)) => Some(*x),
            None => Some(f64::NAN),
            Some(Extra::Text(_)) => None,
        })
        .collect();
    let (dtype, storage, fill) = match numbers {
        Some(xs) if xs.iter().all(|x| x.fract() == 0.0 && x.abs() < 9e15) => {
            let bytes = xs.iter().flat_map(|&x| (x as i64).to_le_bytes()).collect();
            (DType::I64, InlineData::Bytes(bytes), vec![0; 8])
        }
        Some(xs) => (
            DType::F64,
            InlineData::Bytes(float_bytes(&xs, DType::F64)),
            nan_fill_bytes(DType::F64),
        ),
        None => {
            let texts = values
                .iter()
                .map(|v| match v {
                    Some(Extra::Text(t)) => t.clone(),
                    Some(Extra::Number(x)) => x.to_string(),
                    None => String::new(),
                })
                .collect();
            (DType::String, InlineData::Strings(texts), Vec::new())
        }
    };
    let var = Arc::new(VarMeta {
        name: name.to_owned(),
        dims: vec!["sample".to_owned()],
        shape: vec![n],
        dtype,
        attrs: Vec::new(),
        fill: fill.clone(),
        storage: Storage::Inline(storage),
    });
    let part = Part {
        path: Arc::from(""),
        version: FileVersion {
            size: 0,
            mtime_ns: 0,
            etag: 0,
        },
        var,
        origin: vec![0],
        transform: None,
    };
    ArrayNode::numbered(
        next_id,
        path.to_owned(),
        vec!["sample".to_owned()],
        Geometry {
            shape: vec![n],
            chunks: vec![n.max(1)],
            dtype,
            fill,
        },
        Vec::new(),
        Recipe::from_parts(vec![part], dtype),
    )
}
