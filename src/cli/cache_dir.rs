//! Whether a mount may take its cache dir: refused while another process serves from it, but
//! a mount just unmounted is waited for. Such a daemon holds the lock until it has written its
//! cache out and exited, so `atlasfs unmount` followed at once by `atlasfs mount` would
//! otherwise fail for a moment.

use std::path::Path;
use std::time::{Duration, Instant};

use atlasfs::cache::{CacheLock, Holder, LockError, LockMode};

/// How long a mount waits for unmounted daemons to let go of its cache dir.
const LEAVING_WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

/// Ok when the cache dir at `dir` is free, or once the unmounted daemons holding it exit.
///
/// # Errors
/// [`LockError::Busy`] when a process that still serves (or any other process) holds it, or
/// the daemons did not exit within [`LEAVING_WAIT`]. Other errors are left to the daemon,
/// which takes the lock for real.
pub(super) fn ensure_free(dir: &Path) -> Result<(), LockError> {
    let deadline = Instant::now() + LEAVING_WAIT;
    let mut told = false;
    loop {
        match CacheLock::acquire(dir, LockMode::Exclusive) {
            Err(LockError::Busy { holders, .. })
                if !holders.is_empty()
                    && holders.iter().all(is_unmounted_daemon)
                    && Instant::now() < deadline =>
            {
                if !told {
                    let pids: Vec<String> = holders.iter().map(|h| h.pid.to_string()).collect();
                    eprintln!(
                        "atlasfs: waiting for the unmounted daemon (pid {}) to finish with cache dir {}",
                        pids.join(", "),
                        dir.display()
                    );
                    told = true;
                }
                std::thread::sleep(POLL);
            }
            Err(busy @ LockError::Busy { .. }) => return Err(busy),
            Ok(_) | Err(_) => return Ok(()),
        }
    }
}

/// A mount daemon whose FUSE session has ended: it no longer holds `/dev/fuse` open.
fn is_unmounted_daemon(holder: &Holder) -> bool {
    let is_mount = holder.command.split(' ').nth(1) == Some("mount");
    is_mount && !holds_fuse_device(holder.pid)
}

/// Whether process `pid` has `/dev/fuse` open (true when its descriptors cannot be read,
/// so an unknown process is never waited for).
fn holds_fuse_device(pid: u32) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return true;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| target == Path::new("/dev/fuse"))
    })
}
