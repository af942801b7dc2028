//! The mountpoint as the kernel sees it: the mount table, whether a directory can be mounted on
//! (it exists, is a directory, is empty and is not already a mountpoint), clearing a FUSE mount
//! whose daemon died, unmounting (lazily when asked) and naming the processes that keep a mount
//! busy. It knows nothing of configs or daemons; `mount.rs` drives it.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    /// Where it is mounted.
    pub target: PathBuf,
    /// The filesystem type (`fuse.atlasfs`, `tmpfs`, …).
    pub fstype: String,
    /// The mount source (`atlasfs` for ours).
    pub source: String,
}

impl MountEntry {
    /// Whether atlasfs serves this mount.
    pub(super) fn is_atlasfs(&self) -> bool {
        self.source == "atlasfs" || self.fstype == "fuse.atlasfs"
    }

    fn is_fuse(&self) -> bool {
        self.fstype == "fuse" || self.fstype.starts_with("fuse.")
    }
}

/// The mount table of this process's namespace (empty if it cannot be read).
fn mount_table() -> Vec<MountEntry> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|text| parse_mountinfo(&text))
        .unwrap_or_default()
}

/// Parses mountinfo lines: `id parent major:minor root target options [optional…] - fstype
/// source super-options`.
fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (head, tail) = line.split_once(" - ")?;
            let target = head.split(' ').nth(4)?;
            let mut tail = tail.split(' ');
            let (fstype, source) = (tail.next()?, tail.next()?);
            Some(MountEntry {
                target: PathBuf::from(unescape(target)),
                fstype: unescape(fstype),
                source: unescape(source),
            })
        })
        .collect()
}

/// Mount-table fields escape space, tab, newline and backslash as `\ooo` (octal).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| {
            bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The absolute path with symbolic links resolved, without looking at `path` itself when that
/// fails (a mount whose daemon died answers `ENOTCONN`): then its parent is resolved instead.
pub(crate) fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    if let Ok(canonical) = std::fs::canonicalize(path) {
        return Ok(canonical);
    }
    let absolute = std::path::absolute(path)?;
    Ok(match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .unwrap_or_else(|_| parent.to_owned())
            .join(name),
        _ => absolute,
    })
}

/// The topmost mount at `path`, if `path` is a mountpoint.
pub(crate) fn mounted_at(path: &Path) -> Option<MountEntry> {
    let target = resolve(path).ok()?;
    mount_table().into_iter().rev().find(|m| m.target == target)
}

/// Whether an OS error number says a FUSE mount has lost its daemon: `ENOTCONN` for every
/// request after the daemon died, `ECONNABORTED` for one that was in flight when it died.
pub(crate) fn is_disconnected(errno: Option<i32>) -> bool {
    matches!(errno, Some(libc::ENOTCONN | libc::ECONNABORTED))
}

/// Whether the FUSE mount at `path` has lost its daemon. Its root's attributes may still come
/// from the kernel's cache, so the root is opened: that answers `ENOTCONN`.
fn is_dead(path: &Path) -> bool {
    matches!(std::fs::read_dir(path), Err(e) if is_disconnected(e.raw_os_error()))
}

/// FUSE mounts whose daemon has died.
pub(crate) fn dead_fuse_mounts() -> Vec<PathBuf> {
    mount_table()
        .into_iter()
        .filter(|m| m.is_fuse() && is_dead(&m.target))
        .map(|m| m.target)
        .collect()
}

/// What `atlasfs mount` may do to the mountpoint.
pub(crate) struct Prepare {
    /// Mount over a directory that has entries.
    pub allow_non_empty: bool,
    /// Create the directory when it does not exist.
    pub mkdir: bool,
}

/// Checks that `path` can be mounted on, creating it with `--mkdir` and clearing a dead atlasfs
/// mount on it; returns what it did, to tell the user.
///
/// # Errors
/// The reason `path` cannot be mounted on, with what to do about it.
pub(crate) fn prepare(path: &Path, options: &Prepare) -> anyhow::Result<Vec<String>> {
    let mut done = Vec::new();
    if let Some(mounted) = mounted_at(path) {
        if mounted.is_fuse() && is_dead(path) {
            if !mounted.is_atlasfs() {
                bail!(
                    "{} is a {} mount whose daemon has died (transport endpoint is not \
                     connected); unmount it first (fusermount3 -u {})",
                    path.display(),
                    mounted.fstype,
                    path.display()
                );
            }
            unmount(path, true).map_err(|e| {
                anyhow::anyhow!(
                    "{} is a stale atlasfs mount (its daemon died) and clearing it failed: {e}",
                    path.display()
                )
            })?;
            done.push(format!(
                "cleared a stale atlasfs mount at {} (its daemon had died)",
                path.display()
            ));
            // What was underneath is checked like any mountpoint.
            done.extend(prepare(path, options)?);
            return Ok(done);
        }
        if mounted.is_atlasfs() {
            bail!(
                "{} is already an atlasfs mount; unmount it first (atlasfs unmount {}) or \
                 choose another directory",
                path.display(),
                path.display()
            );
        }
        bail!(
            "{} is already a mountpoint ({} from {}); choose a directory that is not",
            path.display(),
            mounted.fstype,
            mounted.source
        );
    }
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => bail!("mountpoint {} is not a directory", path.display()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && options.mkdir => {
            std::fs::create_dir_all(path)
                .with_context(|| format!("creating mountpoint {}", path.display()))?;
            done.push(format!("created mountpoint {}", path.display()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "mountpoint {} does not exist; create it, or pass --mkdir",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("mountpoint {}", path.display())),
    }
    if !options.allow_non_empty {
        let mut entries = std::fs::read_dir(path)
            .with_context(|| format!("listing mountpoint {}", path.display()))?;
        if let Some(Ok(entry)) = entries.next() {
            bail!(
                "mountpoint {} is not empty (it holds {}{}); mount on an empty directory, or \
                 pass --allow-non-empty to hide its contents while mounted",
                path.display(),
                entry.file_name().to_string_lossy(),
                if entries.next().is_some() {
                    ", …"
                } else {
                    ""
                }
            );
        }
    }
    Ok(done)
}

/// Why an unmount failed.
#[derive(Debug)]
pub(crate) enum UnmountError {
    /// Files under the mount are open, or processes work in it.
    Busy,
    /// Anything else, as the system said it.
    Failed(String),
}

impl std::fmt::Display for UnmountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnmountError::Busy => f.write_str("it is busy"),
            UnmountError::Failed(reason) => f.write_str(reason),
        }
    }
}

/// Unmounts the mount at `path`; `lazy` detaches it at once, the kernel finishing the unmount
/// when the last file under it is closed. Root unmounts directly; other users through
/// `fusermount3`.
pub(crate) fn unmount(path: &Path, lazy: bool) -> Result<(), UnmountError> {
    let target = resolve(path).unwrap_or_else(|_| path.to_owned());
    let c_path = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| UnmountError::Failed("the path holds a NUL byte".to_owned()))?;
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    // SAFETY: `c_path` is a valid NUL-terminated string for the duration of the call.
    if unsafe { libc::umount2(c_path.as_ptr(), flags) } == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EBUSY) => return Err(UnmountError::Busy),
        Some(libc::EPERM) => {}
        _ => return Err(UnmountError::Failed(error.to_string())),
    }
    // Not root: the setuid helper may unmount the user's own FUSE mounts.
    let flag = if lazy { "-uz" } else { "-u" };
    let output = ["fusermount3", "fusermount"].iter().find_map(|tool| {
        Command::new(tool)
            .arg(flag)
            .arg(&target)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .ok()
    });
    match output {
        Some(output) if output.status.success() => Ok(()),
        Some(output) => {
            let said = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            if said.to_lowercase().contains("busy") {
                Err(UnmountError::Busy)
            } else {
                Err(UnmountError::Failed(said))
            }
        }
        None => Err(UnmountError::Failed(format!(
            "{error}, and no fusermount3 was found"
        ))),
    }
}

/// A process keeping a mount busy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    /// Its process id.
    pub pid: u32,
    /// Its command name.
    pub command: String,
    /// What it holds: an open file's path, or its working directory.
    pub holds: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({}) {}", self.pid, self.command, self.holds)
    }
}

/// The processes with an open file or their working directory under `mountpoint` (read from
/// `/proc/*/fd` and `/proc/*/cwd`; processes this user may not inspect are not seen).
pub(crate) fn holders(mountpoint: &Path) -> Vec<Holder> {
    let Ok(root) = resolve(mountpoint) else {
        return Vec::new();
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut found: Vec<Holder> = procs
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| holding(pid, &root))
        .collect();
    found.sort_by_key(|h| h.pid);
    found
}

/// What process `pid` holds under `root`, if anything.
fn holding(pid: u32, root: &Path) -> Option<Holder> {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let under = |link: &Path| {
        std::fs::read_link(link)
            .ok()
            .filter(|target| target.starts_with(root))
    };
    let holds = match under(&dir.join("cwd")) {
        Some(cwd) => format!("works in {}", cwd.display()),
        None => {
            let open = std::fs::read_dir(dir.join("fd"))
                .ok()?
                .flatten()
                .find_map(|fd| under(&fd.path()))?;
            format!("has {} open", open.display())
        }
    };
    let command = std::fs::read_to_string(dir.join("comm"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned());
    Some(Holder {
        pid,
        command,
        holds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_target_type_and_source() {
        let text =
            "36 35 98:0 / /mnt/with\\040space rw,noatime master:1 - fuse.atlasfs atlasfs ro\n\
                    22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                    broken line\n";
        assert_eq!(
            parse_mountinfo(text),
            [
                MountEntry {
                    target: PathBuf::from("/mnt/with space"),
                    fstype: "fuse.atlasfs".into(),
                    source: "atlasfs".into(),
                },
                MountEntry {
                    target: PathBuf::from("/proc"),
                    fstype: "proc".into(),
                    source: "proc".into(),
                },
            ]
        );
    }

    #[test]
    fn octal_escapes_are_decoded_and_other_backslashes_kept() {
        assert_eq!(unescape("a\\011b\\012c\\134d"), "a\tb\nc\\d");
        assert_eq!(unescape("a\\9b\\"), "a\\9b\\");
    }

    #[test]
    fn a_missing_mountpoint_is_named_and_created_with_mkdir() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("atlas");
        let keep = Prepare {
            allow_non_empty: false,
            mkdir: false,
        };
        let message = format!("{:#}", prepare(&missing, &keep).unwrap_err());
        assert!(message.contains("does not exist"), "{message}");
        assert!(message.contains("--mkdir"), "{message}");
        let create = Prepare {
            allow_non_empty: false,
            mkdir: true,
        };
        assert_eq!(prepare(&missing, &create).unwrap().len(), 1);
        assert!(missing.is_dir());
        assert!(prepare(&missing, &keep).unwrap().is_empty());
    }

    #[test]
    fn a_non_empty_directory_needs_allow_non_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let strict = Prepare {
            allow_non_empty: false,
            mkdir: false,
        };
        let message = format!("{:#}", prepare(dir.path(), &strict).unwrap_err());
        assert!(message.contains("not empty"), "{message}");
        assert!(message.contains("notes.txt"), "{message}");
        let lenient = Prepare {
            allow_non_empty: true,
            mkdir: false,
        };
        assert!(prepare(dir.path(), &lenient).is_ok());
    }

    #[test]
    fn a_process_working_under_a_directory_is_a_holder() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("sleep")
            .arg("30")
            .current_dir(dir.path())
            .spawn()
            .unwrap();
        let found = holders(dir.path());
        child.kill().unwrap();
        child.wait().unwrap();
        let holder = found.iter().find(|h| h.pid == child.id()).expect("holder");
        assert_eq!(holder.command, "sleep");
        assert!(holder.holds.starts_with("works in"), "{holder}");
    }
}
