//! Kernel-facing tuning of a mount that is not part of the FUSE protocol: the read-ahead
//! window of the mount's own backing device (`/sys/class/bdi/<major>:<minor>/read_ahead_kb`).
//! FUSE starts every mount at 128 KiB, which the daemon cannot raise through `init`; with a
//! window the size of a chunk the kernel asks for 1 MiB per request instead of 128 KiB (see the
//! README for the measurements). Needs root; without it the default stays.

use std::path::Path;

/// The `major:minor` of the filesystem mounted at `mountpoint`, from `/proc/self/mountinfo`.
fn device_of(mountpoint: &Path) -> Option<String> {
    let target = std::fs::canonicalize(mountpoint).ok()?;
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    table.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        (fields.len() > 4 && unescape(fields[4]) == target.to_string_lossy())
            .then(|| fields[2].to_owned())
    })
}

/// Mount-table paths escape space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Sets the read-ahead window of the mount at `mountpoint` to `bytes` (best effort; logs the
/// outcome).
pub(super) fn set_read_ahead(mountpoint: &Path, bytes: u64) {
    let Some(device) = device_of(mountpoint) else {
        tracing::debug!(
            "read-ahead: {} not in the mount table",
            mountpoint.display()
        );
        return;
    };
    let knob = format!("/sys/class/bdi/{device}/read_ahead_kb");
    match std::fs::write(&knob, format!("{}\n", bytes / 1024)) {
        Ok(()) => tracing::info!("kernel: read-ahead window {} KiB ({knob})", bytes / 1024),
        Err(e) => tracing::info!(
            "kernel: read-ahead window left at the default ({knob}: {e}; needs root)"
        ),
    }
}
