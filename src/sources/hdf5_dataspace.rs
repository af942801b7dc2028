//! A NetCDF-4 variable's HDF5 dataspace against its dimensions. libnetcdf opens every dataset
//! when it opens a file, so a dataspace libhdf5 refuses (an extent past its own maximum) or of
//! another rank than the variable makes the whole file unusable; the indexer refuses it too,
//! naming the variable, the dimension and the lengths. An extent that merely differs from its
//! fixed dimension's length opens, but the variable's bytes are not laid out on its dimensions'
//! grid (libnetcdf fails reads past a shorter extent and reads a longer one through libhdf5's
//! selection), so the indexer keeps the variable and fails its reads. Shorter than an unlimited
//! dimension is normal: the longest variable sets its length, the others read fill past theirs.

use netcdf_reader::NcDimension;

/// How a variable's dataspace disagrees with its dimensions.
#[derive(Debug, PartialEq)]
pub(crate) enum Mismatch {
    /// libnetcdf refuses to open the file.
    Refused(String),
    /// The variable's extents differ from its fixed dimensions: its reads fail.
    Unreadable(String),
}

/// How the dataspace (current extents `shape`, maximum extents `max_dims`) of the variable at
/// `path`, whose dimensions are `dims`, disagrees with those dimensions, if it does.
pub(crate) fn dataspace_mismatch(
    path: &str,
    dims: &[NcDimension],
    shape: &[u64],
    max_dims: Option<&[u64]>,
) -> Option<Mismatch> {
    if shape.len() != dims.len() {
        return Some(Mismatch::Refused(format!(
            "variable {path} has {} dimensions but its HDF5 dataspace has {}",
            dims.len(),
            shape.len()
        )));
    }
    let names: Vec<&str> = dims.iter().map(|d| d.name.as_str()).collect();
    if let Some(why) = past_maximum(&format!("variable {path}"), &names, shape, max_dims) {
        return Some(Mismatch::Refused(why));
    }
    dims.iter().zip(shape).find_map(|(dim, &extent)| {
        let wrong = if dim.is_unlimited {
            extent > dim.size
        } else {
            extent != dim.size
        };
        let kind = if dim.is_unlimited {
            "unlimited"
        } else {
            "fixed"
        };
        wrong.then(|| {
            Mismatch::Unreadable(format!(
                "variable {path}: its HDF5 dataspace has length {extent} along the {kind} \
                 dimension {} of length {}",
                dim.name, dim.size
            ))
        })
    })
}

/// Why libhdf5 refuses the dataspace of `what` (current extents `shape` along dimensions
/// `names`, maximum extents `max_dims`): an extent past its maximum.
pub(crate) fn past_maximum(
    what: &str,
    names: &[&str],
    shape: &[u64],
    max_dims: Option<&[u64]>,
) -> Option<String> {
    shape.iter().enumerate().find_map(|(i, &extent)| {
        let max = *max_dims?.get(i)?;
        let name = names.get(i).copied().unwrap_or("?");
        (max != u64::MAX && extent > max).then(|| {
            format!(
                "{what}: its HDF5 dataspace has length {extent} along dimension {name}, past \
                 its maximum {max}"
            )
        })
    })
}

/// Why libhdf5 refuses to open `what`, a contiguous dataset of no elements (current extents
/// `shape`) whose layout still claims `stored` bytes, if it does.
pub(crate) fn empty_with_data(what: &str, shape: &[u64], stored: Option<u64>) -> Option<String> {
    let stored = stored.filter(|&n| n > 0)?;
    shape.contains(&0).then(|| {
        format!(
            "{what}: its HDF5 dataspace {shape:?} holds no elements but its contiguous layout \
             claims {stored} bytes"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dim(name: &str, size: u64, is_unlimited: bool) -> NcDimension {
        NcDimension {
            name: name.to_owned(),
            size,
            is_unlimited,
        }
    }

    fn refused(m: Option<Mismatch>) -> String {
        match m {
            Some(Mismatch::Refused(why)) => why,
            other => panic!("not refused: {other:?}"),
        }
    }

    fn unreadable(m: Option<Mismatch>) -> String {
        match m {
            Some(Mismatch::Unreadable(why)) => why,
            other => panic!("not unreadable: {other:?}"),
        }
    }

    #[test]
    fn extents_other_than_a_fixed_dimension_fail_the_variable() {
        let dims = [dim("y", 10, false), dim("x", 12, false)];
        assert_eq!(dataspace_mismatch("/v", &dims, &[10, 12], None), None);
        let why = unreadable(dataspace_mismatch("/v", &dims, &[20, 12], None));
        assert!(why.contains("length 20 along the fixed dimension y of length 10"));
        let why = unreadable(dataspace_mismatch("/v", &dims, &[10, 0], None));
        assert!(why.contains("length 0 along the fixed dimension x of length 12"));
    }

    #[test]
    fn unlimited_dimensions_may_be_longer_than_a_variable() {
        let dims = [dim("time", 6, true), dim("x", 12, false)];
        let max = [u64::MAX, 12];
        assert_eq!(dataspace_mismatch("/v", &dims, &[3, 12], Some(&max)), None);
        assert_eq!(dataspace_mismatch("/v", &dims, &[6, 12], Some(&max)), None);
        let why = unreadable(dataspace_mismatch("/v", &dims, &[7, 12], Some(&max)));
        assert!(
            why.contains("unlimited dimension time of length 6"),
            "{why}"
        );
    }

    #[test]
    fn an_empty_dataspace_with_stored_bytes_is_named() {
        assert!(empty_with_data("variable /m", &[0], Some(20))
            .unwrap()
            .contains("[0] holds no elements but its contiguous layout claims 20 bytes"));
        assert_eq!(empty_with_data("variable /m", &[0], Some(0)), None);
        assert_eq!(empty_with_data("variable /m", &[0], None), None);
        assert_eq!(empty_with_data("variable /m", &[5], Some(20)), None);
    }

    #[test]
    fn extents_past_their_maximum_and_rank_mismatches_are_refused() {
        let dims = [dim("y", 25, false), dim("x", 3, false)];
        let why = refused(dataspace_mismatch("/v", &dims, &[20, 3], Some(&[10, 3])));
        assert!(
            why.contains("length 20 along dimension y, past its maximum 10"),
            "{why}"
        );
        let why = refused(dataspace_mismatch("/v", &dims[..1], &[25, 1], None));
        assert!(why.contains("has 1 dimensions but its HDF5 dataspace has 2"));
    }
}
