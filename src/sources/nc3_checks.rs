//! Index-time validation of a NetCDF-3 header (classic, 64-bit offset, CDF-5) by the rules
//! libnetcdf applies when it opens one (`nc_get_NC`, `NC_var_shape`, `NC_computeshapes`,
//! `NC_check_vlens`, `NC_check_voffs`): list tags, type codes, dimension ids, the unlimited
//! dimension first, variable sizes within the format's limits, and every variable's data after
//! the header, in definition order, clear of its neighbours and of the record section. A file
//! libnetcdf refuses is refused here, naming the rule, so none of its bytes are served.
//!
//! It reads the header bytes again through the caller's reader (the parsed model of
//! `netcdf-reader` does not keep the header's size, the list tags or the dimension ids) and
//! holds at most one read window. Sizes and offsets use checked arithmetic; a size or offset
//! that overflows is refused, where libnetcdf's signed arithmetic would wrap. Things libnetcdf
//! opens but a Zarr tree cannot name (empty names) are left out with a warning instead.
//! It touches nothing but the header and the group it is given.

use super::model::GroupMeta;

/// Most dimensions a NetCDF-3 variable may have (libnetcdf's `NC_MAX_VAR_DIMS`).
const NC_MAX_VAR_DIMS: u64 = 1024;
/// Bytes read from the file at a time while walking the header.
const WINDOW: u64 = 64 * 1024;
/// Header list tags.
const NC_DIMENSION: u32 = 0x0A;
const NC_VARIABLE: u32 = 0x0B;
const NC_ATTRIBUTE: u32 = 0x0C;
/// Bytes of a name kept for messages.
const NAME_SHOWN: u64 = 256;

/// Why libnetcdf would refuse a NetCDF-3 file (its error code in parentheses).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Nc3Error {
    /// The header could not be read.
    #[error("NetCDF-3 header could not be read: {0}")]
    Io(#[from] std::io::Error),
    /// The header does not start with a NetCDF-3 magic number.
    #[error("not a NetCDF-3 header (magic {0:02x?})")]
    Magic([u8; 4]),
    /// The header runs past the end of the file.
    #[error("NetCDF-3 header runs past the end of the file ({file_size} bytes)")]
    PastEnd {
        /// The file's size.
        file_size: u64,
    },
    /// A non-empty list under the wrong tag.
    #[error("NetCDF-3 header: the {list} list has {count} entries under tag {tag:#x} (EINVAL)")]
    ListTag {
        /// Which list.
        list: &'static str,
        /// The tag found.
        tag: u32,
        /// Its entry count.
        count: u64,
    },
    /// A type code that is no NetCDF-3 type.
    #[error("NetCDF-3 header: {owner} has type code {code}, no NetCDF-3 type (NC_EINVAL)")]
    Type {
        /// The attribute or variable.
        owner: String,
        /// The code found.
        code: u32,
    },
    /// Too many dimensions.
    #[error("variable {var}: {ndims} dimensions, more than {NC_MAX_VAR_DIMS} (NC_EMAXDIMS)")]
    MaxDims {
        /// The variable.
        var: String,
        /// Its rank.
        ndims: u64,
    },
    /// A dimension id naming no dimension.
    #[error("variable {var}: dimension id {id} names none of the {count} dimensions (NC_EBADDIM)")]
    BadDim {
        /// The variable.
        var: String,
        /// The id found.
        id: u64,
        /// How many dimensions the file defines.
        count: usize,
    },
    /// An unlimited (zero-length) dimension other than a variable's first.
    #[error(
        "variable {var}: its dimension {index} is unlimited (length 0) but only the first may \
         be (NC_EUNLIMPOS: NC_UNLIMITED in the wrong index)"
    )]
    UnlimitedPosition {
        /// The variable.
        var: String,
        /// The position of the dimension.
        index: usize,
    },
    /// A variable too large for the format, or whose size overflows.
    #[error("variable {var}: {why} (NC_EVARSIZE)")]
    VarSize {
        /// The variable.
        var: String,
        /// Which limit.
        why: String,
    },
    /// A variable's data offset libnetcdf reads as negative.
    #[error("variable {var}: data offset {begin} is negative as a file offset (NC_ENOTNC)")]
    NegativeBegin {
        /// The variable.
        var: String,
        /// The offset as stored.
        begin: i64,
    },
    /// The first variable's data starts inside the header.
    #[error(
        "variable {var}: data begins at byte {begin}, inside the {header}-byte header (NC_ENOTNC)"
    )]
    InHeader {
        /// The variable.
        var: String,
        /// Its data offset.
        begin: u64,
        /// The header's size.
        header: u64,
    },
    /// A variable's data starts before the previous one's ends.
    #[error(
        "variable {var}: data begins at byte {begin}, before the data before it ends at byte \
         {prev_end} (NC_ENOTNC)"
    )]
    Overlap {
        /// The variable.
        var: String,
        /// Its data offset.
        begin: u64,
        /// Where the data before it ends.
        prev_end: u64,
    },
    /// The record section starts before the fixed-size data ends.
    #[error(
        "record data begins at byte {records}, before the fixed-size data ends at byte \
         {fixed_end} (NC_ENOTNC)"
    )]
    RecordsInFixed {
        /// Where the first record variable's data begins.
        records: u64,
        /// Where the fixed-size data ends.
        fixed_end: u64,
    },
    /// The fixed-size data starts after the record section.
    #[error("fixed-size data begins at byte {fixed}, after the record data at byte {records} (NC_ENOTNC)")]
    FixedAfterRecords {
        /// Where the first fixed-size variable's data begins.
        fixed: u64,
        /// Where the first record variable's data begins.
        records: u64,
    },
}

/// One variable of a header, as libnetcdf sees it.
#[derive(Debug)]
struct HeaderVar {
    name: String,
    dimids: Vec<u64>,
    /// Bytes per element.
    elem: u64,
    begin: i64,
}

/// What the checks need of a header.
#[derive(Debug)]
struct Header {
    /// 1 (classic), 2 (64-bit offset) or 5 (CDF-5).
    version: u8,
    dims: Vec<u64>,
    vars: Vec<HeaderVar>,
    /// Bytes from the start of the file to the end of the header.
    size: u64,
}

/// Validates the NetCDF-3 header of a file of `file_size` bytes read through `read_at`
/// (fills a buffer from an offset).
///
/// # Errors
/// [`Nc3Error`] naming the first rule the header breaks, or the read that failed.
pub(crate) fn check_header(
    read_at: impl Fn(&mut [u8], u64) -> std::io::Result<()>,
    file_size: u64,
) -> Result<(), Nc3Error> {
    let header = HeaderCursor::new(read_at, file_size).header()?;
    let lens = shapes(&header)?;
    check_vlens(&header, &lens)?;
    check_offsets(&header, &lens)
}

/// Leaves out of a NetCDF-3 root group what has an empty name (libnetcdf opens such files, but
/// a Zarr tree cannot name it): variables, variables on an unnamed dimension, dimensions and
/// attributes. Names each in `warnings`.
pub(crate) fn leave_out_unnamed(group: &mut GroupMeta, warnings: &mut Vec<String>) {
    if group.dims.iter().any(|d| d.name.is_empty()) {
        warnings.push("a dimension with an empty name is not served".to_owned());
        group.dims.retain(|d| !d.name.is_empty());
    }
    group.vars.retain(|v| {
        let unnamed_dim = v.dims.iter().any(String::is_empty);
        if v.name.is_empty() {
            warnings.push("a variable with an empty name is not served".to_owned());
        } else if unnamed_dim {
            warnings.push(format!(
                "variable {}: it lies on a dimension with an empty name and is not served",
                v.name
            ));
        }
        !v.name.is_empty() && !unnamed_dim
    });
    let mut dropped_attrs = drop_unnamed_attrs(&mut group.attrs);
    for var in &mut group.vars {
        dropped_attrs += drop_unnamed_attrs(&mut var.attrs);
    }
    if dropped_attrs > 0 {
        warnings.push(format!(
            "{dropped_attrs} attribute(s) with an empty name are not served"
        ));
    }
}

fn drop_unnamed_attrs(attrs: &mut Vec<super::model::Attr>) -> usize {
    let before = attrs.len();
    attrs.retain(|a| !a.name.is_empty());
    before - attrs.len()
}

/// `NC_var_shape`: every dimension id names a dimension and only the first may be unlimited.
/// Returns each variable's `len` as libnetcdf computes it (bytes of the whole variable, or of
/// one record for record variables, rounded up to 4), `None` where that overflows.
fn shapes(header: &Header) -> Result<Vec<Option<u64>>, Nc3Error> {
    let mut lens = Vec::with_capacity(header.vars.len());
    for var in &header.vars {
        let mut product = Some(1u64);
        for (index, &id) in var.dimids.iter().enumerate() {
            let size = usize::try_from(id)
                .ok()
                .and_then(|i| header.dims.get(i))
                .copied()
                .ok_or_else(|| Nc3Error::BadDim {
                    var: var.name.clone(),
                    id,
                    count: header.dims.len(),
                })?;
            if size == 0 && index > 0 {
                return Err(Nc3Error::UnlimitedPosition {
                    var: var.name.clone(),
                    index,
                });
            }
            if index > 0 || size > 0 {
                product = product.and_then(|p| p.checked_mul(size));
            }
        }
        let len = product
            .and_then(|p| p.checked_mul(var.elem))
            .and_then(|n| n.checked_next_multiple_of(4));
        lens.push(len);
    }
    Ok(lens)
}

/// Whether a variable's first dimension is the unlimited one (`IS_RECVAR`).
fn is_record(header: &Header, var: &HeaderVar) -> bool {
    var.dimids
        .first()
        .and_then(|&id| header.dims.get(usize::try_from(id).ok()?))
        == Some(&0)
}

/// `NC_check_vlens`: a variable (one record of it, for record variables) larger than the
/// format allows is only accepted as the last fixed-size variable of a file without record
/// variables, or as the last record variable, and never in CDF-5. A variable whose size
/// overflows 64 bits is refused wherever it is.
fn check_vlens(header: &Header, lens: &[Option<u64>]) -> Result<(), Nc3Error> {
    let vlen_max: u64 = match header.version {
        5 => i64::MAX as u64 - 3,
        2 => u64::from(u32::MAX) - 3,
        _ => i32::MAX as u64 - 3,
    };
    let too_large = |var: &HeaderVar| {
        let skip = usize::from(is_record(header, var));
        let mut prod = var.elem;
        for &id in var.dimids.iter().skip(skip) {
            let size = usize::try_from(id)
                .ok()
                .and_then(|i| header.dims.get(i))
                .copied()
                .unwrap_or(u64::MAX);
            if prod == 0 || size > vlen_max / prod {
                return true;
            }
            prod *= size;
        }
        false
    };
    let refuse = |var: &HeaderVar, why: &str| Nc3Error::VarSize {
        var: var.name.clone(),
        why: why.to_owned(),
    };
    for (var, len) in header.vars.iter().zip(lens) {
        if len.is_none() {
            return Err(refuse(var, "its size in bytes overflows 64 bits"));
        }
    }
    let has_records = header.vars.iter().any(|v| is_record(header, v));
    for records in [false, true] {
        let group: Vec<&HeaderVar> = header
            .vars
            .iter()
            .filter(|v| is_record(header, v) == records)
            .collect();
        let large: Vec<usize> = (0..group.len()).filter(|&i| too_large(group[i])).collect();
        let Some(&first) = large.first() else {
            continue;
        };
        let var = group[first];
        let limit = format!(
            "{} bytes exceed the format's limit of {vlen_max}",
            kind(records)
        );
        if header.version == 5 {
            return Err(refuse(var, &limit));
        }
        if large.len() > 1 || first + 1 != group.len() {
            return Err(refuse(
                var,
                &format!("{limit}, allowed only to the last one"),
            ));
        }
        if !records && has_records {
            return Err(refuse(
                var,
                &format!("{limit}, allowed only in a file without record variables"),
            ));
        }
    }
    Ok(())
}

fn kind(records: bool) -> &'static str {
    if records {
        "its record's"
    } else {
        "its"
    }
}

/// `NC_computeshapes` and `NC_check_voffs`: fixed-size variables' data starts after the
/// header and runs in definition order without overlap, then the record section, whose
/// variables do the same within the first record.
fn check_offsets(header: &Header, lens: &[Option<u64>]) -> Result<(), Nc3Error> {
    // (name, begin, end) of each variable, fixed-size and record apart, in definition order.
    let mut fixed = Vec::new();
    let mut records = Vec::new();
    for (var, len) in header.vars.iter().zip(lens) {
        let begin = u64::try_from(var.begin).map_err(|_| Nc3Error::NegativeBegin {
            var: var.name.clone(),
            begin: var.begin,
        })?;
        let end = len
            .and_then(|l| begin.checked_add(l))
            .ok_or_else(|| Nc3Error::VarSize {
                var: var.name.clone(),
                why: "its data would end past byte 2^64".to_owned(),
            })?;
        let entry = (var.name.as_str(), begin, end);
        if is_record(header, var) {
            records.push(entry);
        } else {
            fixed.push(entry);
        }
    }
    let in_header = |&(name, begin, _): &(&str, u64, u64)| Nc3Error::InHeader {
        var: name.to_owned(),
        begin,
        header: header.size,
    };
    // NC_computeshapes: the record section starts at the first record variable, after the
    // last fixed-size variable; the first variable's data starts after the header.
    let mut begin_rec = fixed.last().map_or(header.size, |&(_, _, end)| end);
    if let Some(first) = records.first() {
        if begin_rec > first.1 {
            return Err(match fixed.last() {
                None => in_header(first),
                Some(_) => Nc3Error::RecordsInFixed {
                    records: first.1,
                    fixed_end: begin_rec,
                },
            });
        }
        begin_rec = first.1;
    }
    if let Some(first) = fixed.first().or(records.first()) {
        if first.1 < header.size {
            return Err(in_header(first));
        }
        if first.1 > begin_rec {
            return Err(Nc3Error::FixedAfterRecords {
                fixed: first.1,
                records: begin_rec,
            });
        }
    }
    // NC_check_voffs: data in definition order without overlap, fixed-size then records.
    let mut prev_end = fixed.first().map_or(begin_rec, |&(_, begin, _)| begin);
    for (i, section) in [&fixed, &records].into_iter().enumerate() {
        if i == 1 {
            if begin_rec < prev_end {
                return Err(Nc3Error::RecordsInFixed {
                    records: begin_rec,
                    fixed_end: prev_end,
                });
            }
            prev_end = begin_rec;
        }
        for &(name, begin, end) in section {
            if begin < prev_end {
                return Err(Nc3Error::Overlap {
                    var: name.to_owned(),
                    begin,
                    prev_end,
                });
            }
            prev_end = end;
        }
    }
    Ok(())
}

/// Walks a header through a window of the file, as libnetcdf's `v1h_get_*` functions do.
struct HeaderCursor<R> {
    read_at: R,
    file_size: u64,
    pos: u64,
    window: Vec<u8>,
    window_start: u64,
    version: u8,
}

impl<R: Fn(&mut [u8], u64) -> std::io::Result<()>> HeaderCursor<R> {
    fn new(read_at: R, file_size: u64) -> Self {
        HeaderCursor {
            read_at,
            file_size,
            pos: 0,
            window: Vec::new(),
            window_start: 0,
            version: 1,
        }
    }

    fn header(mut self) -> Result<Header, Nc3Error> {
        let magic: [u8; 4] = self.bytes()?;
        self.version = match magic {
            [b'C', b'D', b'F', v @ (1 | 2 | 5)] => v,
            _ => return Err(Nc3Error::Magic(magic)),
        };
        self.count()?; // numrecs
        let mut dims = Vec::new();
        for _ in 0..self.list("dimension", NC_DIMENSION)? {
            self.name()?;
            dims.push(self.count()?);
        }
        self.attributes("global")?;
        let mut vars = Vec::new();
        for _ in 0..self.list("variable", NC_VARIABLE)? {
            vars.push(self.variable()?);
        }
        Ok(Header {
            version: self.version,
            dims,
            vars,
            size: self.pos,
        })
    }

    fn variable(&mut self) -> Result<HeaderVar, Nc3Error> {
        let name = self.name()?;
        let ndims = self.count()?;
        if ndims > NC_MAX_VAR_DIMS {
            return Err(Nc3Error::MaxDims { var: name, ndims });
        }
        let mut dimids = Vec::new();
        for _ in 0..ndims {
            // libnetcdf reads dimension ids as C ints: negative ones name no dimension.
            let id = if self.version == 5 {
                self.u64()?
            } else {
                u64::try_from(i32::from_be_bytes(self.bytes()?)).unwrap_or(u64::MAX)
            };
            dimids.push(id);
        }
        self.attributes(&name)?;
        let elem = self.type_size(&format!("variable {name}"))?;
        self.count()?; // vsize: redundant, recomputed from the dimensions
        let begin = if self.version == 1 {
            i64::from(i32::from_be_bytes(self.bytes()?))
        } else {
            i64::from_be_bytes(self.bytes()?)
        };
        Ok(HeaderVar {
            name,
            dimids,
            elem,
            begin,
        })
    }

    fn attributes(&mut self, owner: &str) -> Result<(), Nc3Error> {
        for _ in 0..self.list("attribute", NC_ATTRIBUTE)? {
            let name = self.name()?;
            let elem = self.type_size(&format!("attribute {owner}:{name}"))?;
            let values = self
                .count()?
                .checked_mul(elem)
                .and_then(|n| n.checked_next_multiple_of(4))
                .ok_or(Nc3Error::PastEnd {
                    file_size: self.file_size,
                })?;
            self.skip(values)?;
        }
        Ok(())
    }

    /// A list's tag and count; a non-empty list must carry its own tag.
    fn list(&mut self, list: &'static str, expected: u32) -> Result<u64, Nc3Error> {
        let tag = self.u32()?;
        let count = self.count()?;
        if count > 0 && tag != expected {
            return Err(Nc3Error::ListTag { list, tag, count });
        }
        Ok(count)
    }

    /// Bytes per element of the type code that comes next.
    fn type_size(&mut self, owner: &str) -> Result<u64, Nc3Error> {
        let code = self.u32()?;
        Ok(match code {
            1 | 2 | 7 => 1,
            3 | 8 => 2,
            4 | 5 | 9 => 4,
            6 | 10 | 11 => 8,
            _ => {
                return Err(Nc3Error::Type {
                    owner: owner.to_owned(),
                    code,
                })
            }
        })
    }

    /// A name (for messages: its first bytes, lossily decoded).
    fn name(&mut self) -> Result<String, Nc3Error> {
        let len = self.count()?;
        let padded = len.checked_next_multiple_of(4).ok_or(Nc3Error::PastEnd {
            file_size: self.file_size,
        })?;
        let shown = len.min(NAME_SHOWN);
        let mut name = Vec::new();
        for _ in 0..shown {
            let [b] = self.bytes()?;
            name.push(b);
        }
        self.skip(padded - shown)?;
        Ok(String::from_utf8_lossy(&name).into_owned())
    }

    /// A count, size or dimension length: 8 bytes in CDF-5, else 4.
    fn count(&mut self) -> Result<u64, Nc3Error> {
        if self.version == 5 {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    fn u32(&mut self) -> Result<u32, Nc3Error> {
        self.bytes().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, Nc3Error> {
        self.bytes().map(u64::from_be_bytes)
    }

    fn skip(&mut self, n: u64) -> Result<(), Nc3Error> {
        self.pos = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.file_size)
            .ok_or(Nc3Error::PastEnd {
                file_size: self.file_size,
            })?;
        Ok(())
    }

    /// The next `N` bytes, reading a new window when they are not in the current one.
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], Nc3Error> {
        let past_end = Nc3Error::PastEnd {
            file_size: self.file_size,
        };
        let end = self
            .pos
            .checked_add(N as u64)
            .filter(|&end| end <= self.file_size)
            .ok_or(past_end)?;
        let window_end = self.window_start + self.window.len() as u64;
        if self.pos < self.window_start || end > window_end {
            let len = (self.file_size - self.pos).min(WINDOW.max(N as u64));
            let mut window = vec![0; usize::try_from(len).unwrap_or(N)];
            (self.read_at)(&mut window, self.pos)?;
            self.window = window;
            self.window_start = self.pos;
        }
        let at = usize::try_from(self.pos - self.window_start).unwrap_or(usize::MAX);
        let mut out = [0u8; N];
        let slice = self
            .window
            .get(at..at.saturating_add(N))
            .ok_or(Nc3Error::PastEnd {
                file_size: self.file_size,
            })?;
        out.copy_from_slice(slice);
        self.pos = end;
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
