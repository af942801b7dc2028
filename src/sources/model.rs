//! The catalog's data model of one source file: its groups, dimensions, variables, attributes
//! and where each variable's bytes live. Pure data (serde-serialisable); no I/O here.

use serde::{Deserialize, Serialize};

use super::chunk_table::ChunkTable;

/// Size and modification time (and for objects, the ETag) of a source when it was indexed; a
/// chunk recipe depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileVersion {
    /// Length in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Hash of an object's ETag (xxh3); 0 for local files and objects without one.
    pub etag: u64,
}

/// On-disk format of a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileFormat {
    /// NetCDF-3 classic (CDF-1).
    Classic,
    /// NetCDF-3 64-bit offset (CDF-2).
    Offset64,
    /// NetCDF-3 64-bit data (CDF-5).
    Cdf5,
    /// NetCDF-4 (HDF5).
    Netcdf4,
}

/// Element type of a variable as served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    /// int8 (NC_BYTE)
    I8,
    /// uint8
    U8,
    /// int16
    I16,
    /// uint16
    U16,
    /// int32
    I32,
    /// uint32
    U32,
    /// int64
    I64,
    /// uint64
    U64,
    /// float32
    F32,
    /// float64
    F64,
    /// A single character (NC_CHAR), served as one-byte strings.
    Char,
    /// Variable-length UTF-8 string (NC_STRING).
    String,
}

impl DType {
    /// Bytes per element as served; `None` for variable-length strings.
    pub fn size(self) -> Option<usize> {
        Some(match self {
            DType::I8 | DType::U8 | DType::Char => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
            DType::String => return None,
        })
    }

    /// Whether values are floating point.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// The netCDF default fill value's bytes (little-endian), as libnetcdf uses for unwritten data.
    pub fn default_fill(self) -> Vec<u8> {
        match self {
            DType::I8 => (-127i8).to_le_bytes().to_vec(),
            DType::U8 => 255u8.to_le_bytes().to_vec(),
            DType::I16 => (-32767i16).to_le_bytes().to_vec(),
            DType::U16 => 65535u16.to_le_bytes().to_vec(),
            DType::I32 => (-2147483647i32).to_le_bytes().to_vec(),
            DType::U32 => 4294967295u32.to_le_bytes().to_vec(),
            DType::I64 => (-9223372036854775806i64).to_le_bytes().to_vec(),
            DType::U64 => 18446744073709551614u64.to_le_bytes().to_vec(),
            DType::F32 => 9.969_21e36_f32.to_le_bytes().to_vec(),
            DType::F64 => 9.969_209_968_386_869e36f64.to_le_bytes().to_vec(),
            DType::Char => vec![0],
            DType::String => Vec::new(),
        }
    }
}

/// Byte order of stored values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Endian {
    /// Least significant byte first.
    Little,
    /// Most significant byte first (all NetCDF-3 data).
    Big,
}

/// One attribute value, typed as in the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AttrValue {
    /// NC_BYTE values.
    I8(Vec<i8>),
    /// NC_UBYTE values.
    U8(Vec<u8>),
    /// NC_SHORT values.
    I16(Vec<i16>),
    /// NC_USHORT values.
    U16(Vec<u16>),
    /// NC_INT values.
    I32(Vec<i32>),
    /// NC_UINT values.
    U32(Vec<u32>),
    /// NC_INT64 values.
    I64(Vec<i64>),
    /// NC_UINT64 values.
    U64(Vec<u64>),
    /// NC_FLOAT values.
    F32(Vec<f32>),
    /// NC_DOUBLE values.
    F64(Vec<f64>),
    /// NC_CHAR text.
    Text(String),
    /// NC_STRING values.
    Strings(Vec<String>),
    /// Any other JSON value of a Zarr source (booleans, null, objects, mixed or one-element
    /// lists), as JSON text in which non-finite floats are the strings [`JSON_NAN`],
    /// [`JSON_INFINITY`] and [`JSON_NEG_INFINITY`].
    Json(String),
}

/// Stands for NaN inside [`AttrValue::Json`] text (JSON has no token for it; Python writes `NaN`).
pub const JSON_NAN: &str = "\u{0}NaN\u{0}";
/// Stands for +infinity inside [`AttrValue::Json`] text.
pub const JSON_INFINITY: &str = "\u{0}Infinity\u{0}";
/// Stands for -infinity inside [`AttrValue::Json`] text.
pub const JSON_NEG_INFINITY: &str = "\u{0}-Infinity\u{0}";

impl AttrValue {
    /// The values as f64 when numeric.
    pub fn as_f64s(&self) -> Option<Vec<f64>> {
        Some(match self {
            AttrValue::I8(v) => v.iter().map(|&x| x as f64).collect(),
            AttrValue::U8(v) => v.iter().map(|&x| x as f64).collect(),
            AttrValue::I16(v) => v.iter().map(|&x| x as f64).collect(),
            AttrValue::U16(v) => v.iter().map(|&x| x as f64).collect(),
            AttrValue::I32(v) => v.iter().map(|&x| x as f64).collect(),
            AttrValue::U32(v) => v.iter().map(|&x| x as f64).collect(),
            AttrValue::I64(v) => v.iter().map(|&x| x as f64).collect(),
            AttrValue::U64(v) => v.iter().map(|&x| x as f64).collect(),
            AttrValue::F32(v) => v.iter().map(|&x| x as f64).collect(),
            AttrValue::F64(v) => v.clone(),
            AttrValue::Text(_) | AttrValue::Strings(_) | AttrValue::Json(_) => return None,
        })
    }

    /// The value as text when it is a string.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            AttrValue::Text(s) => Some(s),
            AttrValue::Strings(v) if v.len() == 1 => Some(&v[0]),
            _ => None,
        }
    }
}

/// A named attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attr {
    /// Attribute name.
    pub name: String,
    /// Attribute value.
    pub value: AttrValue,
}

/// A dimension of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimMeta {
    /// Dimension name.
    pub name: String,
    /// Current length.
    pub len: u64,
    /// Whether the dimension is unlimited (record dimension).
    pub unlimited: bool,
}

/// An HDF5 filter in a chunked variable's pipeline, in the order applied when writing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Filter {
    /// zlib deflate.
    Deflate,
    /// Byte shuffle with the given element size.
    Shuffle {
        /// Element size in bytes.
        element_size: u32,
    },
    /// Fletcher-32 checksum appended to each chunk.
    Fletcher32,
}

/// Where a variable's bytes live in its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Storage {
    /// Values read at index time and kept in the catalog (small variables, strings, compact).
    Inline(InlineData),
    /// Uncompressed values in C order. With `record_stride`, the first dimension is the NetCDF-3
    /// record dimension and record `r` starts at `offset + r * record_stride`.
    Contiguous {
        /// Byte offset of the first element.
        offset: u64,
        /// Byte order of the stored values.
        endian: Endian,
        /// Distance between records for NetCDF-3 record variables.
        record_stride: Option<u64>,
    },
    /// HDF5 chunked storage.
    Chunked {
        /// Chunk shape in elements.
        chunk_shape: Vec<u64>,
        /// Filter pipeline, in write order.
        filters: Vec<Filter>,
        /// Byte order of the stored values.
        endian: Endian,
        /// Where each stored chunk lives; absent chunks read as the fill value.
        chunks: ChunkTable,
    },
    /// Never written: every element is the fill value.
    Unwritten,
    /// The variable cannot be served; reads fail with this reason (e.g. an unsupported filter,
    /// a corrupt chunk index, contiguous data at an impossible address).
    Unsupported {
        /// Why.
        reason: String,
    },
}

/// Values kept in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InlineData {
    /// Fixed-size values, little-endian, C order.
    Bytes(Vec<u8>),
    /// Variable-length strings, C order.
    Strings(Vec<String>),
}

/// A variable of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VarMeta {
    /// Variable name.
    pub name: String,
    /// Dimension names, outermost first.
    pub dims: Vec<String>,
    /// Shape in elements.
    pub shape: Vec<u64>,
    /// Element type.
    pub dtype: DType,
    /// Attributes, in file order.
    pub attrs: Vec<Attr>,
    /// Fill value for unwritten data (little-endian bytes of one element).
    pub fill: Vec<u8>,
    /// Where the values live.
    pub storage: Storage,
}

impl VarMeta {
    /// Looks up an attribute by name.
    pub fn attr(&self, name: &str) -> Option<&AttrValue> {
        self.attrs.iter().find(|a| a.name == name).map(|a| &a.value)
    }

    /// Number of elements.
    pub fn len(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Whether the variable has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the values in bytes (strings count as 8 bytes each, a rough in-memory size).
    pub fn nbytes(&self) -> u64 {
        self.len() * self.dtype.size().unwrap_or(8) as u64
    }
}

/// A group (the root group has an empty name).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupMeta {
    /// Group name.
    pub name: String,
    /// Dimensions defined in this group.
    pub dims: Vec<DimMeta>,
    /// Variables of this group.
    pub vars: Vec<VarMeta>,
    /// Attributes of this group.
    pub attrs: Vec<Attr>,
    /// Child groups.
    pub groups: Vec<GroupMeta>,
}

impl GroupMeta {
    /// Looks up a variable by name.
    pub fn var(&self, name: &str) -> Option<&VarMeta> {
        self.vars.iter().find(|v| v.name == name)
    }
}

/// Everything the catalog knows of one source file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Absolute path.
    pub path: String,
    /// Version when indexed.
    pub version: FileVersion,
    /// On-disk format.
    pub format: FileFormat,
    /// The root group.
    pub root: GroupMeta,
}
