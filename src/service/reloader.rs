//! The thread that runs a service's reloads: on request (a front end's signal, SIGHUP for a
//! mount) and every `[mount] refresh` when set. Reloads run one at a time on their own thread;
//! requests that arrive during one are folded into one more. What a reload does is
//! [`Service::reload_logged`](super::Service::reload_logged); this only schedules it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The thread that reloads a mount on request and every `refresh`.
pub struct Reloader {
    requests: SyncSender<()>,
    stopped: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Reloader {
    /// Starts a thread that calls `reload` on request and every `refresh` when set; `reload`
    /// gets the interval in force and returns the one to use from then on.
    ///
    /// # Errors
    /// The I/O error when the thread cannot be started.
    pub fn start(
        refresh: Option<Duration>,
        mut reload: impl FnMut(Option<Duration>) -> Option<Duration> + Send + 'static,
    ) -> std::io::Result<Self> {
        // One slot: a request during a reload queues exactly one more run.
        let (requests, received) = mpsc::sync_channel::<()>(1);
        let stopped = Arc::new(AtomicBool::new(false));
        let stop = stopped.clone();
        let thread = std::thread::Builder::new()
            .name("atlasfs-reload".into())
            .spawn(move || {
                let mut refresh = refresh;
                let mut due = refresh.map(|every| Instant::now() + every);
                loop {
                    let woken = match due {
                        Some(due) => {
                            received.recv_timeout(due.saturating_duration_since(Instant::now()))
                        }
                        None => received.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    };
                    if woken == Err(RecvTimeoutError::Disconnected) || stop.load(Ordering::Relaxed)
                    {
                        return;
                    }
                    refresh = reload(refresh);
                    due = refresh.map(|every| Instant::now() + every);
                }
            })?;
        Ok(Reloader {
            requests,
            stopped,
            thread,
        })
    }

    /// Reloads `service` on request and every `[mount] refresh` of the config it started with.
    ///
    /// # Errors
    /// The I/O error when the thread cannot be started.
    pub fn for_service(service: Arc<super::Service>) -> std::io::Result<Self> {
        let refresh = service.snapshot().config().mount.refresh;
        if let Some(every) = refresh {
            tracing::info!("refreshing every {every:?}");
        }
        Reloader::start(refresh, move |refresh| service.reload_logged(refresh))
    }

    /// Asks for a reload; one already waiting absorbs this one.
    pub fn request(&self) {
        match self.requests.try_send(()) {
            Ok(()) => tracing::info!("reload requested"),
            Err(TrySendError::Full(())) => {
                tracing::info!("reload requested: one is already queued")
            }
            Err(TrySendError::Disconnected(())) => {}
        }
    }

    /// Stops reloading, after the reload in progress if any (a queued one is dropped).
    pub fn stop(self) {
        self.stopped.store(true, Ordering::Relaxed);
        drop(self.requests);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc::channel;

    use super::*;

    const LONG: Duration = Duration::from_secs(10);

    #[test]
    fn requests_during_a_reload_queue_exactly_one_more() {
        let (started, starts) = channel();
        let (finish, finishes) = channel::<()>();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let reloader = Reloader::start(None, move |refresh| {
            counted.fetch_add(1, Ordering::SeqCst);
            started.send(()).unwrap();
            finishes.recv_timeout(LONG).unwrap();
            refresh
        })
        .unwrap();
        reloader.request();
        starts.recv_timeout(LONG).unwrap();
        for _ in 0..5 {
            reloader.request();
        }
        finish.send(()).unwrap();
        starts.recv_timeout(LONG).unwrap();
        finish.send(()).unwrap();
        assert!(starts.recv_timeout(Duration::from_millis(300)).is_err());
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        reloader.stop();
    }

    #[test]
    fn refresh_reloads_without_requests_until_turned_off() {
        let (started, starts) = channel();
        let reloader = Reloader::start(Some(Duration::from_millis(20)), move |refresh| {
            started.send(()).unwrap();
            refresh.filter(|_| false)
        })
        .unwrap();
        starts.recv_timeout(LONG).unwrap();
        assert!(starts.recv_timeout(Duration::from_millis(300)).is_err());
        reloader.request();
        starts.recv_timeout(LONG).unwrap();
        reloader.stop();
    }
}
