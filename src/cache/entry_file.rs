//! An entry file on disk: the chunk's bytes alone (so the kernel can read it directly), with
//! its header (see [`super::entry`]) in the extended attribute `user.atlasfs.entry`. Reading,
//! checking and labelling such files; the disk tier ([`super::disk`]) decides which exist.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::SystemTime;

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

/// Reads and checks the entry file at `path` for `key`; returns the chunk bytes and the
/// file's mtime.
///
/// # Errors
/// [`ReadError`]: unreadable, or damaged in any way.
pub fn read_entry(path: &Path, key: ChunkKey) -> Result<(Vec<u8>, SystemTime), ReadError> {
    let mut file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    let data = check_file(&mut file, meta.len(), key)?;
    Ok((data, meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
}

/// Reads an open entry file of `len` bytes from its start and checks it with its header;
/// returns its bytes.
fn check_file(file: &mut std::fs::File, len: u64, key: ChunkKey) -> Result<Vec<u8>, ReadError> {
    let header = get_header(file).map_err(ReadError::Io)?;
    let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut data).map_err(ReadError::Io)?;
    entry::check(&data, header.as_deref(), key).map_err(ReadError::Damaged)?;
    Ok(data)
}

/// Checks an open entry file of `len` bytes from its start with its header, hashing it through
/// a small reused buffer (no chunk-sized allocation to fault in).
pub(super) fn check_streamed(
    file: &mut std::fs::File,
    len: u64,
    key: ChunkKey,
) -> Result<(), ReadError> {
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
    expected.check_data(read, hash).map_err(ReadError::Damaged)
}

/// Sets the header attribute of an entry file.
pub(super) fn set_header(file: &std::fs::File, header: &[u8]) -> std::io::Result<()> {
    // SAFETY: the fd is open for the call's duration, the name is NUL-terminated and `header`
    // is valid for `header.len()` bytes.
    let rc = unsafe {
        libc::fsetxattr(
            file.as_raw_fd(),
            entry::XATTR_NAME.as_ptr(),
            header.as_ptr().cast(),
            header.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The header attribute of an entry file; `None` when it has none.
pub(super) fn get_header(file: &std::fs::File) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = [0u8; 2 * HEADER_LEN];
    // SAFETY: the fd is open for the call's duration, the name is NUL-terminated and `buf` is
    // valid for writes of `buf.len()` bytes.
    let rc = unsafe {
        libc::fgetxattr(
            file.as_raw_fd(),
            entry::XATTR_NAME.as_ptr(),
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
                // Longer than any header: damaged, reported by its length.
                Some(libc::ERANGE) => Ok(Some(vec![0; buf.len() + 1])),
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
