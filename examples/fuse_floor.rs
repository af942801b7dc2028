//! A FUSE filesystem that does no work per request: it serves the regular files of one
//! directory from memory, read-only, with the mount options and worker threads `atlasfs mount`
//! uses. Reading files through it measures what FUSE itself costs on a machine (a lookup per
//! new name, an open, the `isatty()` ioctl of Python's `open()`, reads the page cache cannot
//! serve): a floor no FUSE daemon goes below. The sample-set benchmark measures it beside
//! atlasfs in the same run.
//!
//! `fuse_floor SOURCE_DIR MOUNTPOINT [--no-open]` serves until the mountpoint is unmounted.
//! With `--no-open` it answers `open` with `ENOSYS`, after which the kernel opens files itself,
//! as with atlasfs's `[mount] open = "kernel"`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyEntry, ReplyOpen, Request,
};

/// Entry and attribute lifetime, as atlasfs's.
const TTL: Duration = Duration::from_secs(24 * 3600);
const ROOT: u64 = 1;

/// The files served: inode `i + 2` is `files[i]`.
struct Floor {
    files: Vec<Vec<u8>>,
    inodes: HashMap<String, u64>,
    no_open: bool,
}

impl Floor {
    fn load(dir: &PathBuf, no_open: bool) -> std::io::Result<Floor> {
        let mut floor = Floor {
            files: Vec::new(),
            inodes: HashMap::new(),
            no_open,
        };
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                let name = entry.file_name().to_string_lossy().into_owned();
                floor.inodes.insert(name, floor.files.len() as u64 + 2);
                floor.files.push(std::fs::read(entry.path())?);
            }
        }
        Ok(floor)
    }

    fn file(&self, ino: INodeNo) -> Option<&[u8]> {
        let index = usize::try_from(ino.0.checked_sub(2)?).ok()?;
        self.files.get(index).map(Vec::as_slice)
    }

    fn attr(&self, ino: INodeNo) -> Option<FileAttr> {
        let (kind, size, perm) = if ino.0 == ROOT {
            (FileType::Directory, 0, 0o555)
        } else {
            (FileType::RegularFile, self.file(ino)?.len() as u64, 0o444)
        };
        Some(FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: SystemTime::UNIX_EPOCH,
            mtime: SystemTime::UNIX_EPOCH,
            ctime: SystemTime::UNIX_EPOCH,
            crtime: SystemTime::UNIX_EPOCH,
            kind,
            perm,
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: 0,
            flags: 0,
            blksize: 1 << 20,
        })
    }
}

impl Filesystem for Floor {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = (parent.0 == ROOT)
            .then(|| name.to_str().and_then(|name| self.inodes.get(name)))
            .flatten()
            .and_then(|&ino| self.attr(INodeNo(ino)));
        match found {
            Some(attr) => reply.entry(&TTL, &attr, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(ino) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if self.no_open {
            reply.error(Errno::ENOSYS);
        } else {
            reply.opened(FileHandle(1), FopenFlags::FOPEN_KEEP_CACHE);
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(data) = self.file(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let start = usize::try_from(offset).map_or(data.len(), |o| o.min(data.len()));
        let end = start.saturating_add(size as usize).min(data.len());
        reply.data(&data[start..end]);
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let no_open = args.iter().any(|a| a == "--no-open");
    let paths: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [source, mountpoint] = paths[..] else {
        eprintln!("usage: fuse_floor SOURCE_DIR MOUNTPOINT [--no-open]");
        std::process::exit(2);
    };
    let floor = Floor::load(&PathBuf::from(source), no_open)?;
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::FSName("fuse_floor".into()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
    ];
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    config.n_threads = Some(cores.max(2) * 2);
    config.clone_fd = true;
    fuser::mount(floor, mountpoint, &config)
}
