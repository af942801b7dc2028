//! Whether the disk tier can currently write: after a failed write (disk full, read-only
//! directory, permissions) writes pause for a while and chunks are served without being cached;
//! warnings say why, without flooding the log.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Pause after a failed write before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// At most one warning per this interval while writes keep failing.
const WARN_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
struct State {
    failures: u64,
    retry_at: Option<Instant>,
    last_warning: Option<Instant>,
    last_error: Option<String>,
}

/// Write health of one disk tier.
#[derive(Default)]
pub(super) struct Health {
    state: Mutex<State>,
}

impl Health {
    /// Whether a write should be attempted now.
    pub(super) fn may_write(&self) -> bool {
        self.state
            .lock()
            .retry_at
            .is_none_or(|at| Instant::now() >= at)
    }

    /// Records a failed write of `what`, warning at most once a minute.
    pub(super) fn failed(
        &self,
        dir: &std::path::Path,
        what: &std::path::Path,
        error: &std::io::Error,
    ) {
        let mut state = self.state.lock();
        let now = Instant::now();
        state.failures += 1;
        state.retry_at = Some(now + RETRY_AFTER);
        state.last_error = Some(format!("{}: {error}", what.display()));
        if state
            .last_warning
            .is_none_or(|at| now.duration_since(at) >= WARN_EVERY)
        {
            state.last_warning = Some(now);
            tracing::warn!(
                "disk cache {}: cannot write {} ({error}); serving chunks without caching them on \
                 disk ({} failed write(s) so far; retrying every {} s)",
                dir.display(),
                what.display(),
                state.failures,
                RETRY_AFTER.as_secs()
            );
        }
    }

    /// Records a successful write; says so once if writes had been failing.
    pub(super) fn succeeded(&self, dir: &std::path::Path) {
        let mut state = self.state.lock();
        if state.retry_at.take().is_some() {
            tracing::info!(
                "disk cache {}: writable again after {} failed write(s)",
                dir.display(),
                state.failures
            );
            state.last_warning = None;
        }
    }

    /// The last write error, if writes are failing now.
    pub(super) fn failing(&self) -> Option<String> {
        let state = self.state.lock();
        state.retry_at.and(state.last_error.clone())
    }
}
