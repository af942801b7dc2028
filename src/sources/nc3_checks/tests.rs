//! Unit tests of the NetCDF-3 header checks, on headers written byte by byte from the format
//! specification: a valid one for each version and one for each rule broken.

use super::*;
use crate::sources::model::{Attr, AttrValue, DType, DimMeta, Storage, VarMeta};

/// A variable of a hand-written header: name, dimension ids, type code, begin.
type Var<'a> = (&'a str, &'a [u64], u32, u64);

/// Writes a NetCDF-3 header by the format specification.
struct Writer {
    version: u8,
    buf: Vec<u8>,
}

impl Writer {
    fn count(&mut self, n: u64) {
        if self.version == 5 {
            self.buf.extend_from_slice(&n.to_be_bytes());
        } else {
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }

    fn tag(&mut self, tag: u32) {
        self.buf.extend_from_slice(&tag.to_be_bytes());
    }

    fn name(&mut self, name: &str) {
        self.count(name.len() as u64);
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
    }
}

/// A header with `dims`, one global text attribute of `attr_len` bytes and `vars`.
fn header_with(version: u8, dims: &[(&str, u64)], attr_len: usize, vars: &[Var]) -> Vec<u8> {
    let mut w = Writer {
        version,
        buf: vec![b'C', b'D', b'F', version],
    };
    w.count(2); // numrecs
    w.tag(NC_DIMENSION);
    w.count(dims.len() as u64);
    for (name, size) in dims {
        w.name(name);
        w.count(*size);
    }
    w.tag(NC_ATTRIBUTE);
    w.count(1);
    w.name("title");
    w.tag(2);
    w.count(attr_len as u64);
    w.buf
        .resize(w.buf.len() + attr_len.next_multiple_of(4), b'x');
    w.tag(NC_VARIABLE);
    w.count(vars.len() as u64);
    for (name, dimids, code, begin) in vars {
        w.name(name);
        w.count(dimids.len() as u64);
        for id in *dimids {
            w.count(*id);
        }
        w.tag(0); // no attributes
        w.count(0);
        w.tag(*code);
        w.count(0); // vsize is not read
        if version == 1 {
            w.buf.extend_from_slice(&(*begin as u32).to_be_bytes());
        } else {
            w.buf.extend_from_slice(&begin.to_be_bytes());
        }
    }
    w.buf
}

fn header(version: u8, dims: &[(&str, u64)], vars: &[Var]) -> Vec<u8> {
    header_with(version, dims, 5, vars)
}

/// Checks `bytes` as a whole file, padded with `data` zero bytes after the header.
fn check(mut bytes: Vec<u8>, data: usize) -> Result<(), Nc3Error> {
    bytes.resize(bytes.len() + data, 0);
    let size = bytes.len() as u64;
    check_header(
        |buf, at| {
            let at = at as usize;
            buf.copy_from_slice(&bytes[at..at + buf.len()]);
            Ok(())
        },
        size,
    )
}

const DIMS: &[(&str, u64)] = &[("time", 0), ("x", 4)];

/// The size of the valid header below: the same for any begin values.
fn size(version: u8) -> u64 {
    header(version, DIMS, &valid(version, 0)).len() as u64
}

/// a(x) int, then the records t(time) double and r(time, x) short.
fn valid(version: u8, h: u64) -> Vec<Var<'static>> {
    let _ = version;
    vec![
        ("a", &[1], 4, h),
        ("t", &[0], 6, h + 16),
        ("r", &[0, 1], 3, h + 24),
    ]
}

fn with_begin(version: u8, var: usize, begin: impl Fn(u64) -> u64) -> Vec<u8> {
    let h = size(version);
    let mut vars = valid(version, h);
    vars[var].3 = begin(h);
    header(version, DIMS, &vars)
}

#[test]
fn valid_headers_of_every_version_pass() {
    for version in [1, 2, 5] {
        let h = size(version);
        check(header(version, DIMS, &valid(version, h)), 64).unwrap();
        // fixed-size data may start after a gap (h_minfree, v_align)
        let gap = header(
            version,
            DIMS,
            &[
                ("a", &[1], 4, h + 100),
                ("t", &[0], 6, h + 200),
                ("r", &[0, 1], 3, h + 208),
            ],
        );
        check(gap, 512).unwrap();
    }
    // no variables, no dimensions
    check(header(1, &[], &[]), 0).unwrap();
}

#[test]
fn data_inside_the_header_is_refused() {
    for version in [1, 2, 5] {
        let err = check(with_begin(version, 0, |h| h - 4), 64).unwrap_err();
        assert!(
            matches!(err, Nc3Error::InHeader { ref var, .. } if var == "a"),
            "{err}"
        );
        // only record variables, the first inside the header
        let h = header(version, DIMS, &[("t", &[0], 6, 8)]).len() as u64;
        let vars = [("t", &[0u64][..], 6, h - 8)];
        let err = check(header(version, DIMS, &vars), 64).unwrap_err();
        assert!(matches!(err, Nc3Error::InHeader { .. }), "{err}");
    }
}

#[test]
fn overlapping_or_reordered_data_is_refused() {
    for version in [1, 2, 5] {
        // the fixed-size variable shifted by one byte runs into the record section
        let err = check(with_begin(version, 0, |h| h + 1), 64).unwrap_err();
        assert!(matches!(err, Nc3Error::RecordsInFixed { .. }), "{err}");
        // a record variable starting inside the previous one
        let err = check(with_begin(version, 2, |h| h + 23), 64).unwrap_err();
        assert!(
            matches!(err, Nc3Error::Overlap { ref var, prev_end, .. }
                if var == "r" && prev_end == size(version) + 24),
            "{err}"
        );
        // the first record variable inside the fixed-size data
        let err = check(with_begin(version, 1, |h| h + 12), 64).unwrap_err();
        assert!(matches!(err, Nc3Error::RecordsInFixed { .. }), "{err}");
    }
    // two fixed-size variables, the second inside the first
    let vars = |h: u64, b: u64| vec![("a", &[1u64][..], 4, h), ("b", &[1][..], 4, h + b)];
    let h = header(2, DIMS, &vars(0, 0)).len() as u64;
    check(header(2, DIMS, &vars(h, 16)), 64).unwrap();
    let err = check(header(2, DIMS, &vars(h, 15)), 64).unwrap_err();
    assert!(
        matches!(err, Nc3Error::Overlap { ref var, .. } if var == "b"),
        "{err}"
    );
    // fixed-size data after the records
    let vars = |h: u64| vec![("a", &[1u64][..], 4, h + 8), ("t", &[0][..], 6, h)];
    let h = header(2, DIMS, &vars(0)).len() as u64;
    let err = check(header(2, DIMS, &vars(h)), 64).unwrap_err();
    assert!(matches!(err, Nc3Error::RecordsInFixed { .. }), "{err}");
}

#[test]
fn offsets_libnetcdf_reads_as_negative_are_refused() {
    let err = check(with_begin(1, 0, |_| 0x8000_0000), 64).unwrap_err();
    assert!(matches!(err, Nc3Error::NegativeBegin { .. }), "{err}");
    let err = check(with_begin(2, 1, |_| u64::MAX - 7), 64).unwrap_err();
    assert!(matches!(err, Nc3Error::NegativeBegin { .. }), "{err}");
    // large positive offsets are fine as long as they keep their order
    check(with_begin(2, 2, |_| 1 << 40), 64).unwrap();
}

#[test]
fn the_unlimited_dimension_must_come_first() {
    for version in [1, 2, 5] {
        let h = size(version);
        let mut vars = valid(version, h);
        vars[2].1 = &[1, 0];
        let err = check(header(version, DIMS, &vars), 64).unwrap_err();
        assert!(
            matches!(err, Nc3Error::UnlimitedPosition { ref var, index: 1 } if var == "r"),
            "{err}"
        );
        // a second zero-length dimension behaves as the unlimited one
        let dims = [("time", 0), ("x", 0)];
        let err = check(header(version, &dims, &valid(version, h)), 64).unwrap_err();
        assert!(matches!(err, Nc3Error::UnlimitedPosition { .. }), "{err}");
    }
}

#[test]
fn unknown_types_dimension_ids_and_list_tags_are_refused() {
    let h = size(1);
    for code in [0, 12, 13, 0xFFFF] {
        let mut vars = valid(1, h);
        vars[0].2 = code;
        let err = check(header(1, DIMS, &vars), 64).unwrap_err();
        assert!(
            matches!(err, Nc3Error::Type { code: c, .. } if c == code),
            "{err}"
        );
    }
    let mut vars = valid(1, h);
    vars[0].1 = &[2];
    let err = check(header(1, DIMS, &vars), 64).unwrap_err();
    assert!(matches!(err, Nc3Error::BadDim { id: 2, .. }), "{err}");
    // CDF-1 ids are C ints: 0xFFFFFFFF is -1, no dimension
    vars[0].1 = &[0xFFFF_FFFF];
    let err = check(header(1, DIMS, &vars), 64).unwrap_err();
    assert!(matches!(err, Nc3Error::BadDim { .. }), "{err}");
    // the global attribute list with its tag zeroed but its count kept
    let mut bytes = header(1, DIMS, &valid(1, h));
    let tag_at = bytes
        .windows(8)
        .position(|w| w == [0, 0, 0, 0x0C, 0, 0, 0, 1])
        .unwrap();
    bytes[tag_at + 3] = 0;
    let err = check(bytes, 64).unwrap_err();
    assert!(
        matches!(
            err,
            Nc3Error::ListTag {
                list: "attribute",
                count: 1,
                ..
            }
        ),
        "{err}"
    );
    let mut vars = valid(1, h);
    vars[0].1 = &[1; 1025];
    let err = check(header(1, DIMS, &vars), 64).unwrap_err();
    assert!(
        matches!(err, Nc3Error::MaxDims { ndims: 1025, .. }),
        "{err}"
    );
}

#[test]
fn cdf5_types_in_classic_files_are_read_as_libnetcdf_reads_them() {
    // libnetcdf opens them and reads the values with the type's size
    let h = size(1);
    let mut vars = valid(1, h);
    vars[0].2 = 9; // uint: 4 bytes like int
    check(header(1, DIMS, &vars), 64).unwrap();
    vars[0].2 = 10; // int64: 8 bytes, runs into the records
    let err = check(header(1, DIMS, &vars), 64).unwrap_err();
    assert!(matches!(err, Nc3Error::RecordsInFixed { .. }), "{err}");
}

#[test]
fn variable_sizes_follow_the_format_limits() {
    let h = |version, dims: &[(&str, u64)], vars: &[Var]| header(version, dims, vars).len() as u64;
    // a dimension of 2^64 - 1 in CDF-5: the size overflows
    let dims = [("time", u64::MAX), ("x", 4)];
    let vars = |h| vec![("t", &[0u64][..], 6, h)];
    let size = h(5, &dims, &vars(0));
    let err = check(header(5, &dims, &vars(size)), 64).unwrap_err();
    assert!(
        matches!(err, Nc3Error::VarSize { ref var, .. } if var == "t"),
        "{err}"
    );
    // CDF-5: 2^61 doubles exceed the limit even as the only variable
    let dims = [("big", 1 << 61)];
    let size = h(5, &dims, &vars(0));
    let err = check(header(5, &dims, &vars(size)), 64).unwrap_err();
    assert!(matches!(err, Nc3Error::VarSize { .. }), "{err}");
    // CDF-1: a 4 GiB variable is allowed as the last fixed-size one, without records
    let dims = [("time", 0), ("big", 1 << 29)];
    let last = |h| vec![("a", &[0u64][..], 4, h), ("big", &[1][..], 6, h + 4)];
    let size = h(1, &dims, &last(0));
    let err = check(header(1, &dims, &last(size)), 64).unwrap_err();
    assert!(
        matches!(err, Nc3Error::VarSize { ref var, .. } if var == "big"),
        "{err}"
    );
    let fixed_only = |h| vec![("a", &[][..], 4, h), ("big", &[1u64][..], 6, h + 4)];
    let size = h(1, &dims, &fixed_only(0));
    check(header(1, &dims, &fixed_only(size)), 64).unwrap();
    // ... but not before another variable
    let first = |h| vec![("big", &[1u64][..], 6, h), ("a", &[][..], 4, h + (1 << 32))];
    let size = h(2, &dims, &first(0));
    let err = check(header(2, &dims, &first(size)), 64).unwrap_err();
    assert!(
        matches!(err, Nc3Error::VarSize { ref var, ref why } if var == "big"
            && why.contains("only to the last")),
        "{err}"
    );
    // 64-bit offset: 2^29 doubles (4 GiB) exceed 2^32 - 4 bytes as well
    let size = h(2, &dims, &last(0));
    let err = check(header(2, &dims, &last(size)), 64).unwrap_err();
    assert!(matches!(err, Nc3Error::VarSize { .. }), "{err}");
}

#[test]
fn a_header_past_the_end_of_the_file_is_refused() {
    let mut bytes = header(2, DIMS, &valid(2, size(2)));
    bytes.truncate(bytes.len() - 3);
    let err = check(bytes, 0).unwrap_err();
    assert!(matches!(err, Nc3Error::PastEnd { .. }), "{err}");
    let err = check(b"CDF\x03\0\0\0\0".to_vec(), 0).unwrap_err();
    assert!(matches!(err, Nc3Error::Magic(_)), "{err}");
}

#[test]
fn headers_longer_than_the_read_window_are_walked() {
    let attr = WINDOW as usize + 1001;
    let vars = |h: u64| {
        vec![
            ("a", &[1u64][..], 4, h),
            ("t", &[0][..], 6, h + 16),
            ("r", &[0, 1][..], 3, h + 24),
        ]
    };
    let h = header_with(2, DIMS, attr, &vars(0)).len() as u64;
    check(header_with(2, DIMS, attr, &vars(h)), 64).unwrap();
    let err = check(header_with(2, DIMS, attr, &vars(h - 1)), 64).unwrap_err();
    assert!(
        matches!(err, Nc3Error::InHeader { header, .. } if header == h),
        "{err}"
    );
}

fn var(name: &str, dims: &[&str]) -> VarMeta {
    VarMeta {
        name: name.to_owned(),
        dims: dims.iter().map(|d| d.to_string()).collect(),
        shape: vec![4; dims.len()],
        dtype: DType::I32,
        attrs: vec![
            Attr {
                name: String::new(),
                value: AttrValue::Text("x".into()),
            },
            Attr {
                name: "units".into(),
                value: AttrValue::Text("m".into()),
            },
        ],
        fill: vec![0; 4],
        storage: Storage::Unwritten,
    }
}

#[test]
fn unnamed_variables_dimensions_and_attributes_are_left_out() {
    let dim = |name: &str| DimMeta {
        name: name.to_owned(),
        len: 4,
        unlimited: false,
    };
    let mut group = GroupMeta {
        dims: vec![dim("x"), dim("")],
        vars: vec![var("a", &["x"]), var("", &["x"]), var("b", &["x", ""])],
        attrs: var("g", &[]).attrs,
        ..GroupMeta::default()
    };
    let mut warnings = Vec::new();
    leave_out_unnamed(&mut group, &mut warnings);
    assert_eq!(group.dims, vec![dim("x")]);
    let names: Vec<&str> = group.vars.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["a"]);
    assert_eq!(group.vars[0].attrs.len(), 1);
    assert_eq!(group.attrs.len(), 1);
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.contains("variable b")),
        "{warnings:?}"
    );
}
