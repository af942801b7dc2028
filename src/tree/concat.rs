//! Joining files along an existing dimension: ordering files by their coordinate values
//! (compared through each file's CF time units), refusing overlaps, checking that the parts of a
//! variable agree, and re-encoding time variables whose units differ to the first file's units.

use std::sync::Arc;

use super::time::{encode, encoding, values, TimeEncoding};
use crate::operators::Part;
use crate::sources::model::{AttrValue, DType, FileMeta, GroupMeta, InlineData, Storage, VarMeta};

/// A variable's parts in order along the concat axis, ready to become an array.
pub struct Joined {
    /// Served shape.
    pub shape: Vec<u64>,
    /// Served element type (time variables may be promoted to f64 when re-encoded).
    pub dtype: DType,
    /// The parts.
    pub parts: Vec<Part>,
}

/// Sorts files by the first value of their `dim` coordinate and rejects overlaps.
/// Files without the coordinate keep path order.
///
/// # Errors
/// A message naming the files when coordinates overlap or repeat, or time units cannot be compared.
pub fn order(files: &[Arc<FileMeta>], dim: &str) -> Result<Vec<Arc<FileMeta>>, String> {
    let coords: Option<Vec<&VarMeta>> = files.iter().map(|f| f.root.var(dim)).collect();
    let Some(coords) = coords else {
        return Ok(files.to_vec());
    };
    let reference = encoding(coords[0], None)?;
    let mut keyed = Vec::with_capacity(files.len());
    for (file, coord) in files.iter().zip(&coords) {
        let Some(mut vals) = values(coord) else {
            return Ok(files.to_vec());
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
        keyed.push((first, last, file.clone()));
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
    Ok(keyed.into_iter().map(|(_, _, f)| f).collect())
}

/// Joins variable `name` of the same group of each file along `axis`.
///
/// # Errors
/// A message naming the files when the variable is missing or disagrees in type or shape.
pub fn join(
    groups: &[(&Arc<FileMeta>, &GroupMeta)],
    name: &str,
    axis: usize,
    dim: &str,
) -> Result<Joined, String> {
    let (first_file, first_group) = groups[0];
    let first = first_group
        .var(name)
        .expect("caller picks variables of the first group");
    let mut parts = Vec::with_capacity(groups.len());
    let mut offset = 0;
    for (file, group) in groups {
        let var = group.var(name).ok_or_else(|| {
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
        if var.dtype != first.dtype || !same_frame {
            return Err(format!(
                "variable {name} disagrees between {} ({:?} {:?} {:?}) and {} ({:?} {:?} {:?})",
                first_file.path,
                first.dtype,
                first.dims,
                first.shape,
                file.path,
                var.dtype,
                var.dims,
                var.shape
            ));
        }
        parts.push(Part {
            path: file.path.as_str().into(),
            version: file.version,
            var: Arc::new(var.clone()),
            offset,
        });
        offset += var.shape[axis];
    }
    let mut shape = first.shape.clone();
    shape[axis] = offset;
    let mut joined = Joined {
        shape,
        dtype: first.dtype,
        parts,
    };
    reencode_time(&mut joined, groups, name, dim)?;
    Ok(joined)
}

/// Re-encodes every part of a time variable (or the bounds of the time coordinate) into the
/// first part's units when the files' units differ.
fn reencode_time(
    joined: &mut Joined,
    groups: &[(&Arc<FileMeta>, &GroupMeta)],
    name: &str,
    dim: &str,
) -> Result<(), String> {
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
    joined.dtype = dtype;
    Ok(())
}
