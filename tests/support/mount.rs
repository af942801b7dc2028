//! Real mounts for the integration tests: runs the release binary's `atlasfs mount` on a config
//! in a temporary directory, and unmounts when dropped (even after a failed assertion). Also the
//! process helpers they need: running a command with a deadline, the project's Python.

// Each test binary uses part of this module.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const MOUNT_TIMEOUT: Duration = Duration::from_secs(180);
const UNMOUNT_TIMEOUT: Duration = Duration::from_secs(30);

/// The repository root.
pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd` to completion within `timeout`, its output going to files (a daemon that keeps
/// inherited descriptors open cannot make this hang). Returns the status, stdout and stderr.
pub(crate) fn run(
    cmd: &mut Command,
    dir: &Path,
    timeout: Duration,
) -> (ExitStatus, String, String) {
    let out_path = dir.join("cmd.stdout");
    let err_path = dir.join("cmd.stderr");
    let out = File::create(&out_path).expect("creating a stdout file");
    let err = File::create(&err_path).expect("creating a stderr file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    (status, read(&out_path), read(&err_path))
}

/// The project's virtualenv interpreter (or `$ATLASFS_PYTHON`).
pub(crate) fn python() -> PathBuf {
    let python = std::env::var_os("ATLASFS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    assert!(
        python.is_file(),
        "Python interpreter {} not found: run scripts/setup (it creates .venv with the \
         fixture generator's requirements) or set ATLASFS_PYTHON",
        python.display()
    );
    python
}

/// Undoes the octal escapes of /proc/self/mountinfo.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|o| {
            std::str::from_utf8(o)
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a file system is mounted at `path`.
pub(crate) fn is_mounted(path: &Path) -> bool {
    let Ok(target) = path.canonicalize() else {
        return false;
    };
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|mp| Path::new(&unescape_mountinfo(mp)) == target)
}

/// `s` as a TOML basic string.
pub(crate) fn toml_string(s: &str) -> String {
    assert!(!s.chars().any(char::is_control), "odd path {s:?}");
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A running mount in its own temporary directory; dropping it unmounts (even when an
/// assertion failed), then removes the directory.
pub(crate) struct Mount {
    bin: PathBuf,
    pub(crate) mountpoint: PathBuf,
    log: PathBuf,
    // Declared last: removed only after `drop` has unmounted.
    dir: tempfile::TempDir,
}

impl Mount {
    /// A fresh temporary directory for a mount: write the config and its companions there,
    /// then call [`Mount::start`].
    pub(crate) fn tempdir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("atlasfs-mount-")
            .tempdir()
            .expect("creating a tempdir")
    }

    /// The `[mount]` and `[cache]` tables of a config whose cache lives in `dir`.
    pub(crate) fn config_head(dir: &Path, zarr_format: u8) -> String {
        format!(
            "[mount]\nzarr_format = {zarr_format}\n\n[cache]\ndir = {}\n",
            toml_string(&dir.join("cache").to_string_lossy())
        )
    }

    /// Mounts `config` (written to `dir/atlasfs.toml`, its cache from [`Mount::config_head`])
    /// on `dir/mnt`, with `env` set for the daemon.
    pub(crate) fn start(dir: tempfile::TempDir, config: &str, env: &[(&str, &str)]) -> Mount {
        let mountpoint = dir.path().join("mnt");
        std::fs::create_dir(&mountpoint).expect("creating the mountpoint");
        let config_path = dir.path().join("atlasfs.toml");
        std::fs::write(&config_path, config).expect("writing the config");
        // The guard exists before `mount` runs, so a half-made mount is cleaned up too.
        let mount = Mount {
            bin: PathBuf::from(env!("CARGO_BIN_EXE_atlasfs")),
            log: dir.path().join("cache").join("atlasfs.log"),
            mountpoint,
            dir,
        };
        let (status, stdout, stderr) = run(
            Command::new(&mount.bin)
                .envs(env.iter().copied())
                .arg("mount")
                .arg(&config_path)
                .arg(&mount.mountpoint),
            mount.dir.path(),
            MOUNT_TIMEOUT,
        );
        assert!(
            status.success() && is_mounted(&mount.mountpoint),
            "`atlasfs mount` exited {status}, mounted: {}\nconfig:\n{config}\nstdout:\n{stdout}\n\
             stderr:\n{stderr}\nlog tail:\n{}",
            is_mounted(&mount.mountpoint),
            mount.log_tail()
        );
        mount
    }

    /// The last lines of the daemon's log.
    pub(crate) fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if !is_mounted(&self.mountpoint) {
            return;
        }
        // No panics here: this may run while unwinding from a failed assertion.
        let attempts: [(&Path, &[&str]); 3] = [
            (&self.bin, &["unmount"]),
            (Path::new("fusermount3"), &["-uz"]),
            (Path::new("umount"), &["-l"]),
        ];
        for (program, args) in attempts {
            let child = Command::new(program)
                .args(args)
                .arg(&self.mountpoint)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            if let Ok(mut child) = child {
                let deadline = Instant::now() + UNMOUNT_TIMEOUT;
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if matches!(child.try_wait(), Ok(None)) {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            if !is_mounted(&self.mountpoint) {
                return;
            }
            eprintln!(
                "{} still mounted after {} {}",
                self.mountpoint.display(),
                program.display(),
                args.join(" ")
            );
        }
    }
}
