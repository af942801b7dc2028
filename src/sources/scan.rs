//! Indexes one NetCDF file (NetCDF-3 classic / 64-bit offset / CDF-5, or NetCDF-4) into a
//! [`FileMeta`]: the data model from `netcdf-reader`, the byte layout from the NetCDF-3 header or
//! the HDF5 chunk index, and small coordinate, scalar and string variables inlined.

use std::path::Path;

use hdf5_reader::Hdf5File;
use netcdf_reader::{NcAttrValue, NcAttribute, NcFile, NcFormat, NcGroup, NcType, NcVariable};

use super::hdf5_checks::validate_file;
use super::hdf5_dataspace::{dataspace_mismatch, empty_with_data, past_maximum, Mismatch};
use super::hdf5_extents::{truncation, FileExtents, MetadataRecorder};
use super::hdf5_layout::{contiguous_size, read_layout, Layout};
use super::model::{
    Attr, AttrValue, DType, DimMeta, Endian, FileFormat, FileMeta, FileVersion, GroupMeta,
    InlineData, Storage, VarMeta,
};
use super::nc3_checks;

/// Coordinate variables up to this many bytes are kept in the catalog.
const INLINE_COORDINATE_BYTES: u64 = 1 << 20;
/// Any variable up to this many bytes is kept in the catalog.
const INLINE_ANY_BYTES: u64 = 256;
/// HDF5 keeps compact data in a 64 KiB object header message.
const MAX_COMPACT_BYTES: u64 = 1 << 16;
/// String variables (always read into the catalog) of more elements are not served.
const MAX_INLINE_STRINGS: u64 = 1 << 22;

/// Why a file could not be indexed.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct ScanError {
    /// What went wrong, for the index report.
    pub reason: String,
}

impl ScanError {
    fn new(reason: impl std::fmt::Display) -> Self {
        ScanError {
            reason: reason.to_string(),
        }
    }
}

/// Where a file being indexed is read from.
#[derive(Clone)]
pub enum ScanSource<'a> {
    /// A local file.
    Local(&'a Path),
    /// Ranged storage (a remote granule), known by `name` in the catalog.
    Storage {
        /// The granule's URL.
        name: &'a str,
        /// Its bytes.
        storage: hdf5_reader::storage::DynStorage,
    },
}

impl ScanSource<'_> {
    fn name(&self) -> String {
        match self {
            ScanSource::Local(path) => path.to_string_lossy().into_owned(),
            ScanSource::Storage { name, .. } => (*name).to_owned(),
        }
    }

    /// Reads `buf.len()` bytes at `offset`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self {
            ScanSource::Local(path) => {
                use std::os::unix::fs::FileExt;
                std::fs::File::open(path)?.read_exact_at(buf, offset)
            }
            ScanSource::Storage { storage, .. } => {
                let bytes = storage
                    .read_range(offset, buf.len())
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                buf.copy_from_slice(&bytes);
                Ok(())
            }
        }
    }
}

/// Indexes the file at `path`, whose size and mtime are `version`.
///
/// Variables of types atlasfs cannot serve (compound, opaque, vlen of numbers) are left out
/// and named in `warnings`.
///
/// # Errors
/// [`ScanError`] when the file is not NetCDF, is truncated or corrupt.
pub fn scan_file(
    path: &Path,
    version: FileVersion,
    warnings: &mut Vec<String>,
) -> Result<FileMeta, ScanError> {
    scan(ScanSource::Local(path), version, warnings)
}

/// Indexes a file read from `source`, whose version is `version`. See [`scan_file`].
///
/// # Errors
/// As [`scan_file`].
pub fn scan(
    source: ScanSource<'_>,
    version: FileVersion,
    warnings: &mut Vec<String>,
) -> Result<FileMeta, ScanError> {
    let nc = match &source {
        ScanSource::Local(path) => NcFile::open(path),
        ScanSource::Storage { storage, .. } => NcFile::from_storage(storage.clone()),
    }
    .map_err(ScanError::new)?;
    let format = match nc.format() {
        NcFormat::Classic => FileFormat::Classic,
        NcFormat::Offset64 => FileFormat::Offset64,
        NcFormat::Cdf5 => FileFormat::Cdf5,
        NcFormat::Nc4 | NcFormat::Nc4Classic => FileFormat::Netcdf4,
    };
    let group = nc.root_group().map_err(ScanError::new)?;
    let root = match format {
        FileFormat::Netcdf4 => nc4_root(&nc, group, &source, version.size, warnings)?,
        _ => {
            let root = classic_group(&nc, group, &source, version.size, warnings)?;
            check_extents(&root, version.size)?;
            root
        }
    };
    Ok(FileMeta {
        path: source.name(),
        version,
        format,
        root,
    })
}

/// Indexes the groups of a NetCDF-4 file of `file_size` bytes, and validates where its
/// variables' bytes are said to lie against the metadata read meanwhile.
fn nc4_root(
    nc: &NcFile,
    group: &NcGroup,
    source: &ScanSource<'_>,
    file_size: u64,
    warnings: &mut Vec<String>,
) -> Result<GroupMeta, ScanError> {
    let storage: hdf5_reader::storage::DynStorage = match source {
        ScanSource::Local(path) => std::sync::Arc::new(
            hdf5_reader::storage::FileStorage::open(path).map_err(ScanError::new)?,
        ),
        ScanSource::Storage { storage, .. } => storage.clone(),
    };
    let recorder = MetadataRecorder::new(storage);
    let h5 = Hdf5File::from_storage(recorder.clone()).map_err(ScanError::new)?;
    if let Some(reason) = truncation(recorder.as_ref(), h5.superblock(), file_size) {
        return Err(ScanError::new(reason));
    }
    recorder.start();
    let mut ctx = Nc4Context {
        nc,
        h5: &h5,
        warnings,
        inlined: Vec::new(),
    };
    let mut root = ctx.group(group, "")?;
    let inlined = ctx.inlined;
    let extents = FileExtents::new(file_size, h5.superblock(), &recorder);
    validate_file(&mut root, inlined, &extents, warnings);
    Ok(root)
}

/// Rejects files whose recorded byte ranges run past their end (truncated copies).
fn check_extents(group: &GroupMeta, file_size: u64) -> Result<(), ScanError> {
    for var in &group.vars {
        let end = match &var.storage {
            Storage::Contiguous {
                offset,
                record_stride,
                ..
            } => {
                let slab =
                    var.nbytes() / var.shape.first().copied().filter(|&n| n > 0).unwrap_or(1);
                match (record_stride, var.shape.first()) {
                    (Some(_), Some(0)) => 0,
                    (Some(stride), Some(&records)) => offset + (records - 1) * stride + slab,
                    _ => offset + var.nbytes(),
                }
            }
            Storage::Chunked { chunks, .. } => chunks.max_end(),
            _ => 0,
        };
        if end > file_size {
            return Err(ScanError::new(format!(
                "truncated: variable {} needs bytes up to {end} but the file has {file_size}",
                var.name
            )));
        }
    }
    group
        .groups
        .iter()
        .try_for_each(|g| check_extents(g, file_size))
}

struct Nc4Context<'a> {
    nc: &'a NcFile,
    h5: &'a Hdf5File,
    warnings: &'a mut Vec<String>,
    /// Variables whose values were read into the catalog, with the layout they were read from.
    inlined: Vec<(String, Storage)>,
}

impl Nc4Context<'_> {
    fn group(&mut self, group: &NcGroup, prefix: &str) -> Result<GroupMeta, ScanError> {
        self.check_dimension_scales(group, prefix)?;
        let mut vars = Vec::new();
        let axes = axis_variables(group);
        for var in &group.variables {
            let path = format!("{prefix}/{}", var.name);
            let unreadable = self.check_dataspace(var, &path)?;
            if let Some(reason) = &unreadable {
                self.warnings.push(reason.clone());
            }
            match self.variable(var, &path, axes.contains(&var.name.as_str()), unreadable) {
                Ok(Some(v)) => vars.push(v),
                Ok(None) => {}
                Err(reason) => self.warnings.push(format!("variable {path}: {reason}")),
            }
        }
        let mut groups = Vec::new();
        for child in &group.groups {
            groups.push(self.group(child, &format!("{prefix}/{}", child.name))?);
        }
        Ok(GroupMeta {
            name: group.name.clone(),
            dims: dims(group),
            vars,
            attrs: attrs(&group.attributes),
            groups,
        })
    }

    /// The HDF5 dataset holding the variable at `path`: its own name, or the name libnetcdf
    /// gives a variable that shares its name with a dimension it does not index.
    fn dataset_path(&self, path: &str) -> String {
        if self.h5.dataset(path).is_ok() {
            path.to_owned()
        } else {
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            format!("{parent}/_nc4_non_coord_{name}")
        }
    }

    /// Refuses the file, as libnetcdf does, when a dataset of the group at `prefix` that is a
    /// dimension but no variable has a dataspace libhdf5 refuses (its variables are checked
    /// one by one).
    fn check_dimension_scales(&self, group: &NcGroup, prefix: &str) -> Result<(), ScanError> {
        let Ok(h5_group) = self.h5.group(if prefix.is_empty() { "/" } else { prefix }) else {
            return Ok(());
        };
        for dataset in h5_group.datasets().unwrap_or_default() {
            let name = dataset
                .name()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            if group.variables.iter().any(|v| v.name == name) {
                continue;
            }
            // A dimension's own dataset has one dimension: itself.
            let what = format!("dimension {prefix}/{name}");
            let names = [name.as_str()];
            let stored = contiguous_size(self.h5, &dataset);
            if let Some(why) = past_maximum(&what, &names, dataset.shape(), dataset.max_dims())
                .or_else(|| empty_with_data(&what, dataset.shape(), stored))
            {
                return Err(ScanError::new(why));
            }
        }
        Ok(())
    }

    /// Refuses the file, as libnetcdf does, when the variable at `path` has a dataspace libhdf5
    /// refuses; why its reads must fail when its extents differ from its dimensions.
    fn check_dataspace(&self, var: &NcVariable, path: &str) -> Result<Option<String>, ScanError> {
        let Ok(dataset) = self.h5.dataset(&self.dataset_path(path)) else {
            return Ok(None);
        };
        let what = format!("variable {path}");
        let stored = contiguous_size(self.h5, &dataset);
        if let Some(why) = empty_with_data(&what, dataset.shape(), stored) {
            return Err(ScanError::new(why));
        }
        match dataspace_mismatch(path, &var.dimensions, dataset.shape(), dataset.max_dims()) {
            Some(Mismatch::Refused(why)) => Err(ScanError::new(why)),
            Some(Mismatch::Unreadable(why)) => Ok(Some(why)),
            None => Ok(None),
        }
    }

    fn variable(
        &mut self,
        var: &NcVariable,
        path: &str,
        is_axis: bool,
        unreadable: Option<String>,
    ) -> Result<Option<VarMeta>, String> {
        let Some(dtype) = dtype(&var.dtype) else {
            self.warnings.push(format!(
                "variable {path}: type {:?} is not served",
                var.dtype
            ));
            return Ok(None);
        };
        let shape: Vec<u64> = var.dimensions.iter().map(|d| d.size).collect();
        let mut meta = new_var(var, dtype, shape);
        let nbytes = meta.nbytes();
        // Values read into the catalog are read whole: their size must be bounded.
        let too_large = if dtype == DType::String {
            (meta.len() > MAX_INLINE_STRINGS)
                .then(|| format!("{} strings are more than are served", meta.len()))
        } else {
            None
        };
        if let Some(reason) = unreadable.or(too_large) {
            meta.storage = Storage::Unsupported { reason };
            return Ok(Some(meta));
        }
        let layout = if dtype == DType::String {
            Layout::Compact
        } else {
            match read_layout(self.h5, &self.dataset_path(path))? {
                Layout::Compact if nbytes > MAX_COMPACT_BYTES => {
                    Layout::Storage(Storage::Unsupported {
                        reason: format!(
                            "compact data of {nbytes} bytes, but HDF5 keeps compact data under \
                             {MAX_COMPACT_BYTES} bytes"
                        ),
                    })
                }
                layout => layout,
            }
        };
        let inline = matches!(layout, Layout::Compact)
            || nbytes <= INLINE_ANY_BYTES
            || (is_axis && nbytes <= INLINE_COORDINATE_BYTES);
        meta.storage = if inline && !matches!(layout, Layout::Storage(Storage::Unsupported { .. }))
        {
            if let Layout::Storage(storage) = &layout {
                self.inlined.push((path.to_owned(), storage.clone()));
            }
            let nc_path = path.trim_start_matches('/');
            if dtype == DType::String {
                let strings = self
                    .nc
                    .read_variable_as_strings(nc_path)
                    .map_err(|e| e.to_string())?;
                Storage::Inline(InlineData::Strings(strings))
            } else {
                let bytes = self
                    .nc
                    .read_variable_native_bytes(nc_path)
                    .map_err(|e| e.to_string())?;
                Storage::Inline(InlineData::Bytes(native_to_le(bytes, dtype)))
            }
        } else {
            match layout {
                Layout::Storage(storage) => storage,
                Layout::Compact => unreachable!("compact layouts are inlined"),
            }
        };
        Ok(Some(meta))
    }
}

fn classic_group(
    nc: &NcFile,
    group: &NcGroup,
    source: &ScanSource<'_>,
    file_size: u64,
    warnings: &mut Vec<String>,
) -> Result<GroupMeta, ScanError> {
    let classic = nc
        .as_classic()
        .ok_or_else(|| ScanError::new("not a classic file"))?;
    nc3_checks::check_header(|buf, at| source.read_exact_at(buf, at), file_size)
        .map_err(ScanError::new)?;
    let stride = netcdf_reader::classic::data::compute_record_stride(&group.variables)
        .map_err(ScanError::new)?;
    let mut numrecs = classic.numrecs();
    let record_vars: Vec<&NcVariable> =
        group.variables.iter().filter(|v| v.is_record_var).collect();
    if numrecs == 0 && stride > 0 {
        // Streaming files leave numrecs unset: count whole records present.
        if let Some(first) = record_vars.iter().map(|v| v.data_offset).min() {
            numrecs = file_size.saturating_sub(first) / stride;
        }
    }
    let mut vars = Vec::new();
    let axes = axis_variables(group);
    for var in &group.variables {
        let Some(dtype) = dtype(&var.dtype) else {
            warnings.push(format!(
                "variable {}: type {:?} is not served",
                var.name, var.dtype
            ));
            continue;
        };
        let mut shape: Vec<u64> = var.dimensions.iter().map(|d| d.size).collect();
        if var.is_record_var {
            if let Some(first) = shape.first_mut() {
                *first = numrecs;
            }
        }
        let mut meta = new_var(var, dtype, shape);
        let storage = Storage::Contiguous {
            offset: var.data_offset,
            endian: Endian::Big,
            record_stride: var.is_record_var.then_some(stride),
        };
        let nbytes = meta.nbytes();
        meta.storage = if nbytes <= INLINE_ANY_BYTES
            || (axes.contains(&var.name.as_str()) && nbytes <= INLINE_COORDINATE_BYTES)
        {
            let bytes = read_classic(source, &meta, &storage)
                .map_err(|e| ScanError::new(format!("variable {}: {e}", var.name)))?;
            Storage::Inline(InlineData::Bytes(bytes))
        } else {
            storage
        };
        vars.push(meta);
    }
    let mut dims = dims(group);
    for d in &mut dims {
        if d.unlimited {
            d.len = numrecs;
        }
    }
    let mut root = GroupMeta {
        name: String::new(),
        dims,
        vars,
        attrs: attrs(&group.attributes),
        groups: Vec::new(),
    };
    nc3_checks::leave_out_unnamed(&mut root, warnings);
    Ok(root)
}

/// Reads a whole contiguous NetCDF-3 variable as little-endian bytes.
fn read_classic(
    source: &ScanSource<'_>,
    var: &VarMeta,
    storage: &Storage,
) -> std::io::Result<Vec<u8>> {
    let Storage::Contiguous {
        offset,
        record_stride,
        ..
    } = storage
    else {
        return Ok(Vec::new());
    };
    let size = var.dtype.size().unwrap_or(1);
    let total = var.nbytes() as usize;
    let mut out = vec![0u8; total];
    match record_stride {
        None => source.read_exact_at(&mut out, *offset)?,
        Some(stride) => {
            let records = var.shape.first().copied().unwrap_or(0) as usize;
            let slab = total.checked_div(records).unwrap_or(0);
            for r in 0..records {
                source.read_exact_at(
                    &mut out[r * slab..(r + 1) * slab],
                    offset + r as u64 * stride,
                )?;
            }
        }
    }
    if size > 1 {
        for element in out.chunks_exact_mut(size) {
            element.reverse();
        }
    }
    Ok(out)
}

fn new_var(var: &NcVariable, dtype: DType, shape: Vec<u64>) -> VarMeta {
    let attrs = attrs(&var.attributes);
    let fill = attrs
        .iter()
        .find(|a| a.name == "_FillValue")
        .and_then(|a| fill_bytes(&a.value, dtype))
        .unwrap_or_else(|| dtype.default_fill());
    VarMeta {
        name: var.name.clone(),
        dims: var.dimensions.iter().map(|d| d.name.clone()).collect(),
        shape,
        dtype,
        attrs,
        fill,
        storage: Storage::Unwritten,
    }
}

/// Coordinate variables and the bounds variables they name: small, read when files are ordered
/// and joined, so they are kept in the catalog.
fn axis_variables(group: &NcGroup) -> Vec<&str> {
    let mut out = Vec::new();
    for var in &group.variables {
        if var.dimensions.len() == 1 && var.dimensions[0].name == var.name {
            out.push(var.name.as_str());
            let bounds = var.attributes.iter().find(|a| a.name == "bounds");
            if let Some(NcAttrValue::Chars(name)) = bounds.map(|a| &a.value) {
                out.push(name.as_str());
            }
        }
    }
    out
}

fn dims(group: &NcGroup) -> Vec<DimMeta> {
    group
        .dimensions
        .iter()
        .map(|d| DimMeta {
            name: d.name.clone(),
            len: d.size,
            unlimited: d.is_unlimited,
        })
        .collect()
}

fn dtype(t: &NcType) -> Option<DType> {
    Some(match t {
        NcType::Byte => DType::I8,
        NcType::Char => DType::Char,
        NcType::Short => DType::I16,
        NcType::Int => DType::I32,
        NcType::Float => DType::F32,
        NcType::Double => DType::F64,
        NcType::UByte => DType::U8,
        NcType::UShort => DType::U16,
        NcType::UInt => DType::U32,
        NcType::Int64 => DType::I64,
        NcType::UInt64 => DType::U64,
        NcType::String => DType::String,
        _ => return None,
    })
}

fn attrs(list: &[NcAttribute]) -> Vec<Attr> {
    list.iter()
        .filter_map(|a| {
            let value = match &a.value {
                NcAttrValue::Bytes(v) => AttrValue::I8(v.clone()),
                NcAttrValue::Chars(s) => AttrValue::Text(s.clone()),
                NcAttrValue::Shorts(v) => AttrValue::I16(v.clone()),
                NcAttrValue::Ints(v) => AttrValue::I32(v.clone()),
                NcAttrValue::Floats(v) => AttrValue::F32(v.clone()),
                NcAttrValue::Doubles(v) => AttrValue::F64(v.clone()),
                NcAttrValue::UBytes(v) => AttrValue::U8(v.clone()),
                NcAttrValue::UShorts(v) => AttrValue::U16(v.clone()),
                NcAttrValue::UInts(v) => AttrValue::U32(v.clone()),
                NcAttrValue::Int64s(v) => AttrValue::I64(v.clone()),
                NcAttrValue::UInt64s(v) => AttrValue::U64(v.clone()),
                NcAttrValue::Strings(v) => AttrValue::Strings(v.clone()),
                NcAttrValue::UserDefined { .. } => return None,
            };
            Some(Attr {
                name: a.name.clone(),
                value,
            })
        })
        .collect()
}

/// Little-endian bytes of the first value of a fill-value attribute, converted to `dtype`.
fn fill_bytes(value: &AttrValue, dtype: DType) -> Option<Vec<u8>> {
    if dtype == DType::Char {
        return match value {
            AttrValue::Text(s) => Some(vec![s.bytes().next().unwrap_or(0)]),
            _ => None,
        };
    }
    let v = *value.as_f64s()?.first()?;
    // Integer fill values round-trip exactly through their own type below; f64 only carries them.
    let exact_i64 = match value {
        AttrValue::I64(x) => x.first().copied(),
        _ => None,
    };
    let exact_u64 = match value {
        AttrValue::U64(x) => x.first().copied(),
        _ => None,
    };
    Some(match dtype {
        DType::I8 => (v as i8).to_le_bytes().to_vec(),
        DType::U8 => (v as u8).to_le_bytes().to_vec(),
        DType::I16 => (v as i16).to_le_bytes().to_vec(),
        DType::U16 => (v as u16).to_le_bytes().to_vec(),
        DType::I32 => (v as i32).to_le_bytes().to_vec(),
        DType::U32 => (v as u32).to_le_bytes().to_vec(),
        DType::I64 => exact_i64.unwrap_or(v as i64).to_le_bytes().to_vec(),
        DType::U64 => exact_u64.unwrap_or(v as u64).to_le_bytes().to_vec(),
        DType::F32 => (v as f32).to_le_bytes().to_vec(),
        DType::F64 => v.to_le_bytes().to_vec(),
        DType::Char | DType::String => return None,
    })
}

/// Native-endian bytes as little-endian (a no-op on little-endian hosts).
fn native_to_le(mut bytes: Vec<u8>, dtype: DType) -> Vec<u8> {
    if cfg!(target_endian = "big") {
        if let Some(size) = dtype.size().filter(|&s| s > 1) {
            for element in bytes.chunks_exact_mut(size) {
                element.reverse();
            }
        }
    }
    bytes
}
