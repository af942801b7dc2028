//! An entry file on disk: the chunk's bytes alone (so the kernel can read it directly), with
//! its header (see [`super::entry`]) in the extended attribute `user.atlasfs.entry`. Reading,
//! checking and labelling such files; the disk tier ([`super::disk`]) decides which exist.

use std::ffi::CStr;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;

use super::entry::{self, HEADER_LEN};
use super::key::ChunkKey;

/// Why an entry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("{0}")]
    Io(std::io::Error),
    /// The file is not an intact entry of the key.
    #[error("{0}")]
    Damaged(entry::EntryError),
}

/// An entry file that passed its check, still open.
pub struct CheckedEntry {
    /// The chunk's bytes.
    pub data: Vec<u8>,
    pub(super) file: std::fs::File,
    pub(super) meta: std::fs::Metadata,
    pub(super) header: Vec<u8>,
}

/// Reads and checks the entry file at `path` for `key`.
///
/// # Errors
/// [`ReadError`]: unreadable, or damaged in any way.
pub fn read_entry(path: &Path, key: ChunkKey) -> Result<CheckedEntry, ReadError> {
    let mut file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    let header = get_header(&file).map_err(ReadError::Io)?;
    let mut data = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut data).map_err(ReadError::Io)?;
    entry::check(&data, header.as_deref(), key).map_err(ReadError::Damaged)?;
    Ok(CheckedEntry {
        data,
        file,
        meta,
        header: header.unwrap_or_default(),
    })
}

/// Checks an open entry file of `len` bytes from its start with its header, hashing it through
/// a small reused buffer (no chunk-sized allocation to fault in); returns the header.
pub(super) fn check_streamed(
    file: &mut std::fs::File,
    len: u64,
    key: ChunkKey,
) -> Result<Vec<u8>, ReadError> {
    const BUFFER: usize = 256 << 10;
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let header = get_header(file).map_err(ReadError::Io)?;
    let expected = entry::check_header(header.as_deref(), key).map_err(ReadError::Damaged)?;
    expected.check_len(len).map_err(ReadError::Damaged)?;
    let (read, hash) = BUF.with_borrow_mut(|buf| {
        buf.resize(BUFFER, 0);
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut read = 0u64;
        loop {
            match file.read(buf) {
                Ok(0) => return Ok((read, hasher.digest())),
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    read += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    })?;
    expected
        .check_data(read, hash)
        .map_err(ReadError::Damaged)?;
    Ok(header.unwrap_or_default())
}

/// Sets the header attribute of an entry file.
pub(super) fn set_header(file: &std::fs::File, header: &[u8]) -> std::io::Result<()> {
    set_xattr(file, entry::XATTR_NAME, header)
}

/// The header attribute of an entry file; `None` when it has none.
pub(super) fn get_header(file: &std::fs::File) -> std::io::Result<Option<Vec<u8>>> {
    get_xattr::<{ 2 * HEADER_LEN }>(file, entry::XATTR_NAME)
}

/// Sets extended attribute `name` of an open file.
pub(super) fn set_xattr(file: &std::fs::File, name: &CStr, value: &[u8]) -> std::io::Result<()> {
    // SAFETY: the fd is open for the call's duration, the name is NUL-terminated and `value`
    // is valid for `value.len()` bytes.
    let rc = unsafe {
        libc::fsetxattr(
            file.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Extended attribute `name` of an open file, read through a `MAX`-byte buffer; `None` when
/// the file has none. A longer value comes back as `MAX + 1` zero bytes (wrong by its length).
pub(super) fn get_xattr<const MAX: usize>(
    file: &std::fs::File,
    name: &CStr,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = [0u8; MAX];
    // SAFETY: the fd is open for the call's duration, the name is NUL-terminated and `buf` is
    // valid for writes of `buf.len()` bytes.
    let rc = unsafe {
        libc::fgetxattr(
            file.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    match usize::try_from(rc) {
        Ok(len) => Ok(Some(buf[..len.min(buf.len())].to_vec())),
        Err(_) => {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENODATA) => Ok(None),
                Some(libc::ERANGE) => Ok(Some(vec![0; MAX + 1])),
                _ => Err(e),
            }
        }
    }
}

/// Fails when the filesystem of `tmp` does not support user extended attributes (entry
/// headers). A directory that cannot be written passes: its entries can still be read, and
/// failed writes are reported as they happen.
pub(super) fn probe_xattrs(tmp: &Path) -> std::io::Result<()> {
    let probe = tmp.join(format!(".xattr-probe.{}", std::process::id()));
    let Ok(file) = std::fs::File::create(&probe) else {
        return Ok(());
    };
    let result = set_header(&file, &[0; HEADER_LEN]);
    drop(file);
    let _ = std::fs::remove_file(&probe);
    match result {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Err(std::io::Error::new(
            e.kind(),
            format!("the filesystem has no user extended attributes, which entries need ({e})"),
        )),
        _ => Ok(()),
    }
}
