//! What zarrs reports about arrays of a mount, the same way in both Zarr formats.

use zarrs::array::Array;
use zarrs::filesystem::FilesystemStore;

/// The dimension names zarrs reports: v3 `dimension_names`, or v2's `_ARRAY_DIMENSIONS`.
pub(crate) fn dimension_names(
    array: &Array<FilesystemStore>,
    zarr_format: u8,
) -> Option<Vec<String>> {
    if zarr_format == 3 {
        array
            .dimension_names()
            .as_ref()?
            .iter()
            .map(Clone::clone)
            .collect()
    } else {
        array
            .attributes()
            .get("_ARRAY_DIMENSIONS")?
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()
    }
}
