//! `atlasfs serve` for the Rust integration tests: the release binary on a free loopback port
//! (port 0, read back from its ready line), stopped with SIGTERM when dropped.

// Each test binary uses part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_TIMEOUT: Duration = Duration::from_secs(40);

/// A running `atlasfs serve`.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) url: String,
    /// The ready line, e.g. `serving C at http://127.0.0.1:PORT/ (1 dataset)`.
    pub(crate) ready: String,
    log: PathBuf,
}

impl Server {
    /// Serves `config` with more `args`; panics with the server's log unless it gets ready.
    pub(crate) fn start(config: &Path, args: &[&str]) -> Server {
        let log = config.with_extension("serve.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_atlasfs"))
            .arg("serve")
            .arg(config)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = ready.recv_timeout(READY_TIMEOUT).unwrap_or_default();
        let mut server = Server {
            child,
            url: String::new(),
            ready: line.trim_end().to_owned(),
            log,
        };
        let Some((_, rest)) = line.split_once(" at ") else {
            panic!("no ready line from `atlasfs serve`:\n{}", server.log_text());
        };
        server.url = rest.split(' ').next().unwrap().trim_end_matches('/').into();
        server
    }

    /// What the server logged.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; the exit status once the requests in flight are done (`None`: it had to be
    /// killed).
    pub(crate) fn stop(&mut self) -> Option<ExitStatus> {
        let pid = i32::try_from(self.child.id()).ok()?;
        // SAFETY: signals our own child process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}
