//! Delivery of new and changed events to an external grid-management platform through the
//! durable outbox: each message is POSTed as JSON with an `Idempotency-Key` header (so
//! the platform can drop a repeat after a lost reply), retried with exponential backoff
//! while the platform is down, and marked delivered only on a 2xx answer.

use std::sync::Arc;
use std::time::Duration;

use super::store::{EventStore, StoreError};

/// Backoff after `attempts` failures: 1 s doubling, at most 5 minutes.
pub fn backoff_us(attempts: i64) -> i64 {
    (1_000_000i64 << attempts.clamp(0, 9)).min(300_000_000)
}

/// The duty of draining the outbox ([`EventStore::hold`]).
const OUTBOX: &str = "outbox";
/// How long a controller's hold on the outbox outlives its last pass, µs: another
/// controller takes over the outbox this long after the holder dies.
const HOLD_US: i64 = 30_000_000;

pub struct Webhook {
    url: String,
    agent: ureq::Agent,
}

/// What one delivery pass did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delivery {
    pub delivered: usize,
    pub failed: usize,
    pub last_error: Option<String>,
}

impl Webhook {
    pub fn new(url: &str, timeout: Duration) -> Self {
        Self {
            url: url.to_string(),
            agent: crate::capture::fetch::http_agent(timeout),
        }
    }

    /// Sends every due message once, in order; stops at the first failure so the platform
    /// sees an event's changes in the order they happened. Blocking.
    pub fn deliver_due(&self, store: &EventStore, now: i64) -> Result<Delivery, StoreError> {
        let mut d = Delivery::default();
        for item in store.outbox_due(now, 100)? {
            let sent = self
                .agent
                .post(&self.url)
                .header("Idempotency-Key", &item.idempotency_key)
                .content_type("application/json")
                .send(item.payload.as_bytes());
            match sent {
                Ok(_) => {
                    store.outbox_delivered(item.id, now)?;
                    d.delivered += 1;
                }
                Err(e) => {
                    let msg = format!("{}: {e}", self.url);
                    store.outbox_failed(item.id, &msg, backoff_us(item.attempts), now)?;
                    d.failed += 1;
                    d.last_error = Some(msg);
                    break;
                }
            }
        }
        Ok(d)
    }

    /// Delivers what is due if `holder` holds the outbox (taking it if it is free or its
    /// holder's hold lapsed): one controller drains it at a time, so each message is
    /// posted by one, in order. None when another controller holds it. Blocking.
    pub fn deliver_held(
        &self,
        store: &EventStore,
        holder: &str,
        now: i64,
    ) -> Result<Option<Delivery>, StoreError> {
        if !store.hold(OUTBOX, holder, now, now + HOLD_US)? {
            return Ok(None);
        }
        self.deliver_due(store, now).map(Some)
    }

    /// Delivers as `holder` ([`Webhook::deliver_held`]) until `stop` turns true, polling
    /// every `every`.
    pub async fn run(
        self,
        store: Arc<EventStore>,
        holder: String,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let hook = Arc::new(self);
        let holder = Arc::new(holder);
        loop {
            let (h, s, who) = (hook.clone(), store.clone(), holder.clone());
            let res =
                tokio::task::spawn_blocking(move || h.deliver_held(&s, &who, super::now_us()))
                    .await;
            if let Ok(Ok(Some(d))) = &res {
                if let Some(e) = &d.last_error {
                    tracing::warn!("webhook: {e}; will retry");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}
