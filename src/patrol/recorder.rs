//! Records announced captures in the store off the vehicles' event loops. A database
//! held by another process (a backup, an `events` command, the sqlite3 shell) past
//! SQLite's busy timeout, or on a full disk, delays a photo's record; it never drops it,
//! and it never stalls the loop that follows the vehicle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};

use crate::capture::Capture;
use crate::events::EventStore;

/// Wait between attempts while the database is busy or full (ms).
const BUSY_RETRY: Duration = Duration::from_millis(500);

pub struct CaptureRecorder {
    tx: mpsc::UnboundedSender<(Capture, i64)>,
    queued: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

impl CaptureRecorder {
    /// Starts the recording task for run `run`; `wake` is notified after each record (the
    /// pipeline). Needs a Tokio runtime.
    pub fn start(store: Arc<EventStore>, run: String, wake: Arc<Notify>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Capture, i64)>();
        let queued = Arc::new(AtomicUsize::new(0));
        let idle = Arc::new(Notify::new());
        let (q, done) = (queued.clone(), idle.clone());
        tokio::spawn(async move {
            while let Some((cap, received_us)) = rx.recv().await {
                let mut warned = false;
                loop {
                    let (s, r, c) = (store.clone(), run.clone(), cap.clone());
                    let res =
                        tokio::task::spawn_blocking(move || s.record_capture(&r, &c, received_us))
                            .await;
                    match res {
                        Ok(Err(e)) if e.is_transient() => {
                            if !warned {
                                tracing::warn!(
                                    "recording capture {}/{}: {e}; waiting for the database",
                                    cap.sysid,
                                    cap.index
                                );
                                warned = true;
                            }
                            tokio::time::sleep(BUSY_RETRY).await;
                        }
                        Ok(Err(e)) => {
                            // The camera keeps it: a run re-attached later asks for it again.
                            tracing::error!("recording capture {}/{}: {e}", cap.sysid, cap.index);
                            break;
                        }
                        Ok(Ok(_)) => {
                            wake.notify_one();
                            break;
                        }
                        Err(_) => break,
                    }
                }
                q.fetch_sub(1, Ordering::SeqCst);
                done.notify_waiters();
            }
        });
        Self { tx, queued, idle }
    }

    /// Queues a capture announced at `received_us` (µs since the epoch).
    pub fn record(&self, cap: Capture, received_us: i64) {
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.tx.send((cap, received_us)).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Captures queued and not yet recorded.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Waits until every queued capture is recorded, up to `limit`; the number left.
    pub async fn flushed(&self, limit: Duration) -> usize {
        let until = tokio::time::Instant::now() + limit;
        loop {
            let idle = self.idle.notified();
            let left = self.queued();
            if left == 0 {
                return 0;
            }
            if tokio::time::timeout_at(until, idle).await.is_err() {
                return self.queued();
            }
        }
    }
}
