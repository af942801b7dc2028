//! The FUSE adapter: each handler resolves an inode to a key-space path, makes one key-space
//! call and turns the result into a reply or an errno. Read-only; long TTLs because each
//! snapshot is immutable and a swap ([`Swapper`]) tells the kernel what to forget; failed chunks
//! get `EIO` and one log line naming the source and chunk.
//!
//! A chunk whose entry is in the disk cache, with unchanged sources, is handed to the kernel
//! with FUSE passthrough: the kernel reads the entry's file directly, at local-disk speed. That
//! needs the kernel to offer it (≥ 6.9) and `CAP_SYS_ADMIN`; without either, or when handing a
//! file over fails, chunks are served through `read` as before.
//!
//! With [`FuseOptions::kernel_opens`], the first `open` answers `ENOSYS`, after which the kernel
//! opens files itself, keeping their pages, and sends no `open` or `release` again: reads that
//! miss its page cache arrive without a file handle and resolve by inode.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, INodeNo, InitFlags,
    KernelConfig, LockOwner, MountOption, Notifier, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyEntry, ReplyOpen, Request,
};

use super::errno::errno;
use super::handles::{Handles, Io, OpenFile};
use super::inodes::child_path;
use super::snapshot::{Resolved, Snapshots};
use crate::keyspace::{KeyError, KeySpace, Kind, OpenKey};

/// Attribute and entry lifetime in the kernel: a snapshot never changes, and a swap retires the
/// inodes whose paths change and invalidates their entries.
const TTL: Duration = Duration::from_secs(24 * 3600);

/// The file handle of reads of files the kernel opened itself (ours start at 1).
const NO_HANDLE: u64 = 0;

/// Mount options, threading and kernel tuning for [`mount`].
#[derive(Debug, Clone)]
pub struct FuseOptions {
    /// FUSE worker threads.
    pub threads: usize,
    /// Let users other than the mounting one read the mount.
    pub allow_other: bool,
    /// The kernel's read-ahead window for the mount in bytes (0 keeps the kernel's default).
    pub read_ahead: u64,
    /// The kernel opens files without asking the daemon (`[mount] open = "kernel"`): no round
    /// trip per open, no passthrough, and a file's pages are kept until a reload retires it.
    pub kernel_opens: bool,
}

impl Default for FuseOptions {
    fn default() -> Self {
        FuseOptions {
            threads: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2)
                * 2,
            allow_other: false,
            read_ahead: 4 << 20,
            kernel_opens: false,
        }
    }
}

/// The filesystem served to the kernel.
pub struct AtlasFs {
    snapshots: Arc<Snapshots>,
    handles: Handles,
    uid: u32,
    gid: u32,
    mounted_at: SystemTime,
    /// Whether verified disk-cache entries are handed to the kernel (decided at `init`, turned
    /// off if the kernel refuses a backing file).
    passthrough: AtomicBool,
    /// Whether the kernel opens files itself (see the module doc).
    kernel_opens: bool,
}

impl AtlasFs {
    /// A filesystem serving the current snapshot of `snapshots`.
    pub fn new(snapshots: Arc<Snapshots>, kernel_opens: bool) -> Self {
        // SAFETY: getuid/getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        AtlasFs {
            snapshots,
            handles: Handles::default(),
            uid,
            gid,
            mounted_at: SystemTime::now(),
            passthrough: AtomicBool::new(false),
            kernel_opens,
        }
    }

    /// How the kernel should read a first open file of an inode: passed through to the chunk's
    /// disk-cache entry when there is an intact one (and passthrough is on), else through us.
    fn first_io(&self, reply: &ReplyOpen, keys: &KeySpace, open: &crate::keyspace::OpenKey) -> Io {
        if !self.passthrough.load(Ordering::Relaxed) {
            return Io::Daemon;
        }
        let Some(file) = keys.passthrough_file(open) else {
            return Io::Daemon;
        };
        match reply.open_backing(&file) {
            Ok(backing) => Io::Passthrough(Arc::new(backing)),
            Err(e) => {
                if self.passthrough.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        "passthrough: off, the kernel refused a backing file ({e}); \
                         serving cached chunks through the daemon"
                    );
                }
                Io::Daemon
            }
        }
    }

    /// Replies to a read of `size` bytes at `offset` of an open key; a chunk that fails gets
    /// `EIO` and one log line naming the file.
    fn reply_read(
        &self,
        keys: &KeySpace,
        key: &OpenKey,
        ino: INodeNo,
        offset: u64,
        size: u32,
        reply: ReplyData,
    ) {
        match keys.read_open(key, offset, size as usize) {
            Ok(bytes) => reply.data(&bytes),
            Err(e) => {
                if matches!(e, KeyError::Chunk { .. }) {
                    let path = self.snapshots.path(ino.0).unwrap_or_default();
                    tracing::error!("read {path}: {e}");
                }
                reply.error(errno(&e))
            }
        }
    }

    /// A read of a file the kernel opened itself: resolved by inode in the current snapshot,
    /// and read from the chunk's disk-cache entry when it has one (through a buffer each FUSE
    /// thread reuses), else as an open file's. An inode a reload retired no longer names what
    /// the reader opened: `ESTALE`.
    fn read_unopened(&self, ino: INodeNo, offset: u64, size: u32, reply: ReplyData) {
        thread_local! {
            static ENTRY_READS: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
        }
        let (path, keys) = match self.snapshots.resolve(ino.0) {
            Some(Resolved::Current { path, keys }) => (path, keys),
            Some(Resolved::Retired(_)) => return reply.error(Errno::ESTALE),
            None => return reply.error(Errno::ENOENT),
        };
        let Some(key) = keys.open(&path) else {
            return reply.error(Errno::ENOENT);
        };
        let mut buf = ENTRY_READS.take();
        match keys.read_cached_entry(&key, offset, size as usize, &mut buf) {
            Some(Ok(n)) => reply.data(&buf[..n]),
            Some(Err(e)) => {
                tracing::warn!("read {path}: its disk-cache entry: {e}; computing it instead");
                self.reply_read(&keys, &key, ino, offset, size, reply);
            }
            None => self.reply_read(&keys, &key, ino, offset, size, reply),
        }
        ENTRY_READS.set(buf);
    }

    fn attr(&self, ino: u64, kind: Kind) -> FileAttr {
        let (kind, size, perm, nlink) = match kind {
            Kind::Dir => (FileType::Directory, 0, 0o555, 2),
            Kind::File(size) => (FileType::RegularFile, size, 0o444, 1),
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: self.mounted_at,
            mtime: self.mounted_at,
            ctime: self.mounted_at,
            crtime: self.mounted_at,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            flags: 0,
            blksize: 1 << 20,
        }
    }
}

impl Filesystem for AtlasFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // The kernel offers its current window (128 KiB) as the most it accepts here; the mount
        // widens it afterwards through sysfs (see `kernel.rs`).
        if let Err(max) = config.set_max_readahead(4 << 20) {
            let _ = config.set_max_readahead(max);
        }
        let on = if self.kernel_opens {
            Err("the kernel opens files itself, [mount] open = \"kernel\"")
        } else if !self.snapshots.current().has_disk_cache() {
            Err("no disk cache")
        } else if !config.capabilities().contains(InitFlags::FUSE_PASSTHROUGH) {
            Err("the kernel does not offer it (needs 6.9 or later)")
        } else if !has_cap_sys_admin() {
            Err("needs CAP_SYS_ADMIN (root)")
        } else if config.set_max_stack_depth(1).is_err()
            || config
                .add_capabilities(InitFlags::FUSE_PASSTHROUGH)
                .is_err()
        {
            Err("the kernel refused it")
        } else {
            Ok(())
        };
        match on {
            Ok(()) => tracing::info!(
                "passthrough: on, the kernel reads verified disk-cache entries directly"
            ),
            Err(why) => tracing::info!(
                "passthrough: off ({why}); cached chunks are served through the daemon"
            ),
        }
        self.passthrough.store(on.is_ok(), Ordering::Relaxed);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let (Some(parent), Some(name)) = (self.snapshots.path(parent.0), name.to_str()) else {
            return reply.error(Errno::ENOENT);
        };
        match self.snapshots.lookup(&child_path(&parent, name)) {
            Some((ino, kind)) => reply.entry(&TTL, &self.attr(ino, kind), fuser::Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        // A retired inode keeps what it was, for the files still open through it.
        let kind = match self.snapshots.resolve(ino.0) {
            Some(Resolved::Current { path, keys }) => keys.stat(&path),
            Some(Resolved::Retired(was)) => was,
            None => None,
        };
        match kind {
            Some(kind) => reply.attr(&TTL, &self.attr(ino.0, kind)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        if self.kernel_opens {
            // The kernel takes this open as done and handles every later one itself.
            return reply.error(Errno::ENOSYS);
        }
        let (path, keys) = match self.snapshots.resolve(ino.0) {
            Some(Resolved::Current { path, keys }) => (path, keys),
            // Its path serves something else now: the kernel looks the path up again.
            Some(Resolved::Retired(_)) => return reply.error(Errno::ESTALE),
            None => return reply.error(Errno::ENOENT),
        };
        let Some(open) = keys.open(&path) else {
            return match keys.stat(&path) {
                Some(Kind::Dir) => reply.error(Errno::EISDIR),
                _ => reply.error(Errno::ENOENT),
            };
        };
        // Keep the kernel's page cache only while the sources are unchanged; otherwise the
        // kernel drops it and reads come to us (and fail with EIO) instead of serving stale bytes.
        let current = open.is_current();
        let io = match self
            .handles
            .io_for_open(ino.0, current, || self.first_io(&reply, &keys, &open))
        {
            Ok(io) => io,
            Err(e) => {
                tracing::error!("open {path}: {e}");
                return reply.error(Errno::EIO);
            }
        };
        if matches!(io, Io::Passthrough(_)) {
            keys.count_passthrough();
        }
        let fh = FileHandle(self.handles.insert(OpenFile {
            keys,
            key: open,
            ino: ino.0,
        }));
        match io {
            Io::Passthrough(backing) => reply.opened_passthrough(fh, FopenFlags::empty(), &backing),
            Io::Daemon if current => reply.opened(fh, FopenFlags::FOPEN_KEEP_CACHE),
            Io::Daemon => reply.opened(fh, FopenFlags::empty()),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        tracing::trace!("read {ino:?} at {offset}: {size} bytes");
        if self.kernel_opens && fh.0 == NO_HANDLE {
            return self.read_unopened(ino, offset, size, reply);
        }
        let Some(open) = self.handles.get(fh.0) else {
            return reply.error(Errno::EBADF);
        };
        self.reply_read(&open.keys, &open.key, ino, offset, size, reply);
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: fuser::ReplyEmpty,
    ) {
        self.handles.remove(fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let (path, keys) = match self.snapshots.resolve(ino.0) {
            Some(Resolved::Current { path, keys }) => (path, keys),
            Some(Resolved::Retired(_)) => return reply.error(Errno::ESTALE),
            None => return reply.error(Errno::ENOENT),
        };
        match keys.stat(&path) {
            Some(Kind::Dir) => {
                let fh = self.handles.insert_dir(keys);
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
            }
            Some(Kind::File(_)) => reply.error(Errno::ENOTDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        // The snapshot the directory was opened on, so a listing spanning a swap stays whole.
        let (Some(path), Some(keys)) = (self.snapshots.path(ino.0), self.handles.dir(fh.0)) else {
            return reply.error(Errno::EBADF);
        };
        let Some(listing) = keys.list(&path) else {
            return reply.error(match keys.stat(&path) {
                Some(_) => Errno::ENOTDIR,
                None => Errno::ENOENT,
            });
        };
        // Offsets 0 and 1 are "." and ".."; entry i of the listing has offset i + 2.
        let mut position = offset;
        loop {
            let (name, is_dir) = match position {
                0 => (".".to_owned(), true),
                1 => ("..".to_owned(), true),
                p => match listing.get(p - 2) {
                    Some(entry) => entry,
                    None => break,
                },
            };
            let kind = if is_dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
            // Inodes of children are handed out on lookup; readdir reports the parent's as a hint.
            if reply.add(ino, position + 1, kind, &name) {
                break;
            }
            position += 1;
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: fuser::ReplyEmpty,
    ) {
        self.handles.remove_dir(fh.0);
        reply.ok();
    }
}

/// Whether this process has `CAP_SYS_ADMIN` in its effective set (the kernel requires it to
/// register passthrough backing files).
fn has_cap_sys_admin() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// Swaps the snapshot a mount serves, from any thread but a FUSE handler's.
#[derive(Clone)]
pub struct Swapper {
    snapshots: Arc<Snapshots>,
    notifier: Notifier,
}

impl Swapper {
    /// The key space served now.
    pub fn current(&self) -> Arc<KeySpace> {
        self.snapshots.current()
    }

    /// Serves `next` from now on: files already open keep reading the snapshot they were opened
    /// on, and the kernel forgets the entries of paths that changed or vanished (their next
    /// lookup gets a new inode, or `ENOENT`). Returns how many entries it forgot.
    pub fn swap(&self, next: Arc<KeySpace>) -> usize {
        let swapped = self.snapshots.swap(next);
        for (parent, path) in &swapped.retired {
            let name = path.rsplit('/').next().unwrap_or(path);
            if let Err(e) = self
                .notifier
                .inval_entry(INodeNo(*parent), OsStr::new(name))
            {
                tracing::debug!("cannot invalidate the kernel's entry of {path}: {e}");
            }
        }
        swapped.retired.len()
    }
}

impl crate::service::FrontEnd for Swapper {
    fn swap(&self, next: Arc<KeySpace>) -> usize {
        Swapper::swap(self, next)
    }
}

/// Mounts `keys` read-only at `mountpoint` in background threads; dropping or unmounting the
/// returned session ends it, and the [`Swapper`] replaces the snapshot it serves.
///
/// # Errors
/// The I/O error when FUSE is unavailable or the mount is refused.
pub fn mount(
    keys: Arc<KeySpace>,
    mountpoint: &Path,
    options: &FuseOptions,
) -> std::io::Result<(fuser::BackgroundSession, Swapper)> {
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::FSName("atlasfs".into()),
        MountOption::Subtype("atlasfs".into()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
    ];
    if options.allow_other {
        config.acl = fuser::SessionACL::All;
    }
    config.n_threads = Some(options.threads.max(1));
    config.clone_fd = true;
    let snapshots = Arc::new(Snapshots::new(keys));
    let session = fuser::spawn_mount(
        AtlasFs::new(snapshots.clone(), options.kernel_opens),
        mountpoint,
        &config,
    )?;
    let swapper = Swapper {
        snapshots,
        notifier: session.notifier(),
    };
    // A first request completes only after INIT, which would reset the window; tune after it.
    if options.read_ahead > 0 && std::fs::metadata(mountpoint).is_ok() {
        super::kernel::set_read_ahead(mountpoint, options.read_ahead);
    }
    Ok((session, swapper))
}
