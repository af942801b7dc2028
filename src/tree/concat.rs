//! Joining files along an existing dimension: ordering files by their coordinate values
//! (compared through each file's CF time units), refusing overlaps, checking that the parts of a
//! variable agree, and re-encoding time variables whose units differ to the first file's units.

use std::collections::HashMap;
use std::sync::Arc;

use super::plan::VarPlan;
use super::time::{encode, encoding, values, TimeEncoding};
use crate::operators::{Part, Transform};
use crate::sources::model::{
    Attr, AttrValue, DType, FileMeta, GroupMeta, InlineData, Storage, VarMeta,
};

/// The same group of one file, with the value transforms its fixes call for.
#[derive(Clone, Copy)]
pub(super) struct Source<'a> {
    /// The file.
    pub file: &'a Arc<FileMeta>,
    /// The group within it.
    pub group: &'a GroupMeta,
    /// Transforms of the group's variables, by name.
    pub transforms: &'a HashMap<String, Transform>,
}

/// Attributes that say how stored values decode; joined files must agree on them.
const ENCODING_ATTRS: [&str; 4] = ["scale_factor", "add_offset", "_FillValue", "missing_value"];

/// Sorts files by the first value of their `dim` coordinate and rejects overlaps.
/// Files without the coordinate keep path order.
///
/// # Errors
/// A message naming the files when coordinates overlap or repeat, or time units cannot be compared.
pub(super) fn order<T: Clone>(
    items: &[T],
    file_of: impl Fn(&T) -> &FileMeta,
    dim: &str,
) -> Result<Vec<T>, String> {
    let files: Vec<&FileMeta> = items.iter().map(&file_of).collect();
    let coords: Option<Vec<&VarMeta>> = files.iter().map(|f| f.root.var(dim)).collect();
    let Some(coords) = coords else {
        return Ok(items.to_vec());
    };
    let reference = encoding(coords[0], None)?;
    let mut keyed = Vec::with_capacity(files.len());
    for ((item, file), coord) in items.iter().zip(&files).zip(&coords) {
        let Some(mut vals) = values(coord) else {
            return Ok(items.to_vec());
        };
        if let Some(reference) = &reference {
            let own = encoding(coord, None)?
                .ok_or_else(|| format!("{}: {dim} has no time units", file.path))?;
            for v in &mut vals {
                *v = own
                    .parsed
                    .convert(*v, &reference.parsed)
                    .map_err(|e| format!("{} and {}: {e}", files[0].path, file.path))?;
            }
        }
        let first = vals.first().copied().unwrap_or(f64::INFINITY);
        let last = vals.last().copied().unwrap_or(f64::NEG_INFINITY);
        keyed.push((first, last, *file, item));
    }
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.2.path.cmp(&b.2.path)));
    for pair in keyed.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.1 >= b.0 {
            let what = if a.0 == b.0 {
                "duplicate"
            } else {
                "overlapping"
            };
            return Err(format!(
                "files {} and {} have {what} {dim} values ({} ends at {}, {} starts at {})",
                a.2.path, b.2.path, a.2.path, a.1, b.2.path, b.0
            ));
        }
    }
    Ok(keyed
        .into_iter()
        .map(|(_, _, _, item)| item.clone())
        .collect())
}

/// Joins variable `name` of the same group of each file along `axis`.
///
/// # Errors
/// A message naming the files when the variable is missing or disagrees in type or shape.
pub(super) fn join(
    sources: &[Source<'_>],
    name: &str,
    axis: usize,
    dim: &str,
) -> Result<VarPlan, String> {
    let first_file = sources[0].file;
    let first = sources[0]
        .group
        .var(name)
        .expect("caller picks variables of the first group");
    let served =
        |s: &Source<'_>, v: &VarMeta| s.transforms.get(&v.name).map_or(v.dtype, |t| t.output);
    let first_dtype = served(&sources[0], first);
    let mut parts = Vec::with_capacity(sources.len());
    let mut offset = 0;
    for source in sources {
        let file = source.file;
        let var = source.group.var(name).ok_or_else(|| {
            format!(
                "variable {name} is in {} but not in {}",
                first_file.path, file.path
            )
        })?;
        let same_frame = var.dims == first.dims
            && var
                .shape
                .iter()
                .enumerate()
                .all(|(d, &n)| d == axis || n == first.shape[d]);
        if served(source, var) != first_dtype || !same_frame {
            return Err(format!(
                "variable {name} disagrees between {} ({:?} {:?} {:?}) and {} ({:?} {:?} {:?})",
                first_file.path,
                first_dtype,
                first.dims,
                first.shape,
                file.path,
                served(source, var),
                var.dims,
                var.shape
            ));
        }
        let mut origin = vec![0u64; var.shape.len()];
        origin[axis] = offset;
        parts.push(Part {
            path: file.path.as_str().into(),
            version: file.version,
            var: Arc::new(var.clone()),
            origin,
            transform: source.transforms.get(name).cloned().map(Arc::new),
        });
        offset += var.shape[axis];
    }
    let mut shape = first.shape.clone();
    shape[axis] = offset;
    let mut joined = VarPlan {
        dims: first.dims.clone(),
        shape,
        dtype: first_dtype,
        fill: if first_dtype == first.dtype {
            first.fill.clone()
        } else {
            first_dtype.default_fill()
        },
        attrs: first.attrs.clone(),
        parts,
        concat_axis: Some(axis),
        decoded: false,
    };
    reencode_time(&mut joined, sources, name, dim)?;
    unify_encodings(&mut joined, sources, name)?;
    Ok(joined)
}

/// When joined files encode a variable differently (`scale_factor`, `add_offset`,
/// `_FillValue`, `missing_value`), serves it decoded: float64 values with NaN where a file
/// marked them missing, so no file's values are read with another file's encoding.
fn unify_encodings(joined: &mut VarPlan, sources: &[Source<'_>], name: &str) -> Result<(), String> {
    let encoding_of = |var: &VarMeta| encoding_attrs(&var.attrs);
    let first = encoding_of(&joined.parts[0].var);
    let differing = joined
        .parts
        .iter()
        .position(|p| encoding_of(&p.var) != first);
    let Some(other) = differing else {
        return Ok(());
    };
    if joined.dtype == DType::String || joined.dtype == DType::Char {
        return Err(format!(
            "variable {name} has different fill values in {} and {}",
            sources[0].file.path, sources[other].file.path
        ));
    }
    tracing::info!(
        "variable {name}: encodings differ between {} and {}; serving decoded float64",
        sources[0].file.path,
        sources[other].file.path
    );
    decode(joined);
    Ok(())
}

/// Re-encodes every part of a time variable (or the bounds of the time coordinate) into the
/// first part's units when the files' units differ.
fn reencode_time(
    joined: &mut VarPlan,
    sources: &[Source<'_>],
    name: &str,
    dim: &str,
) -> Result<(), String> {
    let groups: Vec<(&Arc<FileMeta>, &GroupMeta)> =
        sources.iter().map(|s| (s.file, s.group)).collect();
    let groups = groups.as_slice();
    let mut encodings: Vec<Option<TimeEncoding>> = Vec::with_capacity(groups.len());
    for ((file, group), part) in groups.iter().zip(&joined.parts) {
        let coord = group.var(dim);
        let is_bounds = coord
            .and_then(|c| c.attr("bounds"))
            .and_then(AttrValue::as_text)
            == Some(name);
        let fallback = coord.filter(|_| is_bounds).and_then(|c| {
            let units = c.attr("units").and_then(AttrValue::as_text)?;
            Some((units, c.attr("calendar").and_then(AttrValue::as_text)))
        });
        let enc = encoding(&part.var, fallback)
            .map_err(|e| format!("{}: variable {name}: {e}", file.path))?;
        encodings.push(enc);
    }
    let Some(Some(target)) = encodings.first().cloned() else {
        return Ok(());
    };
    let all_same = encodings.iter().all(|e| {
        e.as_ref().is_some_and(|e| {
            e.units == target.units && e.parsed.calendar() == target.parsed.calendar()
        })
    });
    if all_same {
        return Ok(());
    }
    // Convert what differs; a part already in the target units keeps its storage unless the
    // whole variable must be promoted to f64 (integers that no longer come out whole).
    let first_path = &groups[0].0.path;
    let mut converted: Vec<Option<Vec<f64>>> = Vec::with_capacity(joined.parts.len());
    for ((enc, part), (file, _)) in encodings.iter().zip(&joined.parts).zip(groups) {
        let enc = enc.as_ref().ok_or_else(|| {
            format!(
                "variable {name} has time units in {first_path} but not in {}",
                file.path
            )
        })?;
        if enc.parsed.calendar() != target.parsed.calendar() {
            return Err(format!(
                "variable {name} uses calendar {} in {first_path} but {} in {}",
                target.parsed.calendar().cf_name(),
                enc.parsed.calendar().cf_name(),
                file.path
            ));
        }
        if enc.units == target.units {
            converted.push(None);
            continue;
        }
        let vals = values(&part.var).ok_or_else(|| {
            format!(
                "variable {name} in {} has time units {:?} unlike {:?} in {first_path}, and is too large to re-encode",
                file.path, enc.units, target.units
            )
        })?;
        let vals: Result<Vec<f64>, String> = vals
            .iter()
            .map(|&v| {
                enc.parsed
                    .convert(v, &target.parsed)
                    .map_err(|e| format!("{}: {e}", file.path))
            })
            .collect();
        converted.push(Some(vals?));
    }
    let integral = converted
        .iter()
        .flatten()
        .flatten()
        .all(|v| v.fract() == 0.0);
    let dtype = if joined.dtype.is_float() || integral {
        joined.dtype
    } else {
        DType::F64
    };
    for ((part, vals), (file, _)) in joined.parts.iter_mut().zip(converted).zip(groups) {
        let vals = match vals {
            Some(vals) => vals,
            None if dtype == joined.dtype => continue,
            None => values(&part.var).ok_or_else(|| {
                format!(
                    "variable {name} in {} is too large to promote to float64",
                    file.path
                )
            })?,
        };
        let mut var = (*part.var).clone();
        var.storage = Storage::Inline(InlineData::Bytes(encode(&vals, dtype)));
        if dtype != var.dtype {
            var.dtype = dtype;
            var.fill = dtype.default_fill();
        }
        part.var = Arc::new(var);
    }
    if dtype != joined.dtype {
        joined.fill = dtype.default_fill();
    }
    joined.dtype = dtype;
    Ok(())
}

/// The encoding attributes of a variable, to compare files by: the values' bit patterns, so
/// that `_FillValue = NaN` in two files (xarray's default for floats) compares equal.
pub(super) fn encoding_attrs(attrs: &[Attr]) -> Vec<Option<Vec<u64>>> {
    let bits = |v: f64| {
        if v.is_nan() {
            f64::NAN.to_bits()
        } else {
            v.to_bits()
        }
    };
    ENCODING_ATTRS
        .iter()
        .map(|a| {
            attrs
                .iter()
                .find(|x| x.name == *a)
                .and_then(|x| x.value.as_f64s())
                .map(|values| values.into_iter().map(bits).collect())
        })
        .collect()
}

/// Serves `plan` decoded: each part unpacked with its own file's encoding into float64, NaN
/// where that file marks values missing. A plan decoded already is left as it is.
pub(super) fn decode(plan: &mut VarPlan) {
    if plan.decoded {
        return;
    }
    for part in &mut plan.parts {
        let attr = |n: &str| part.var.attr(n).and_then(AttrValue::as_f64s);
        let scale = attr("scale_factor")
            .and_then(|v| v.first().copied())
            .unwrap_or(1.0);
        let offset = attr("add_offset")
            .and_then(|v| v.first().copied())
            .unwrap_or(0.0);
        let mask: Vec<f64> = ["_FillValue", "missing_value"]
            .iter()
            .filter_map(|n| attr(n))
            .flatten()
            .collect();
        let fix = part
            .transform
            .as_deref()
            .cloned()
            .unwrap_or_else(|| Transform::identity(part.var.dtype));
        // Fixed values are (raw * s + o); decoding multiplies the stored encoding in first.
        part.transform = Some(Arc::new(Transform {
            flip: fix.flip.clone(),
            mask,
            scale: scale * fix.scale,
            offset: offset * fix.scale + fix.offset,
            output: DType::F64,
        }));
    }
    plan.dtype = DType::F64;
    plan.fill = f64::NAN.to_le_bytes().to_vec();
    plan.attrs
        .retain(|a| !ENCODING_ATTRS.contains(&a.name.as_str()));
    plan.attrs.push(Attr {
        name: "_FillValue".into(),
        value: AttrValue::F64(vec![f64::NAN]),
    });
    plan.decoded = true;
}
