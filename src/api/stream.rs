//! The live stream behind `GET /api/v1/stream` (Server-Sent Events): vehicle telemetry
//! (each vehicle `--telemetry-hz` times a second, 2 by default), run state changes and grid event changes. Changes carry a
//! growing id and the last 4,096 are kept, so a client that reconnects with
//! `Last-Event-ID` gets what it missed (one that fell further behind gets a `reset`
//! first); telemetry carries no id and is not kept: a fresh sample comes soon anyway,
//! and twenty vehicles' would push the changes out of the buffer in minutes.
//! Run and event changes are read from the store (their tables' row ids), so whatever
//! writes them, this process or another controller, is streamed.

use crate::args;
use crate::store::DbError;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::events::store::EventStore;
use crate::vehicle::Fleet;

/// How many items are kept for clients that reconnect.
const KEEP: usize = 4096;

/// One item of the stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub id: u64,
    /// `telemetry`, `run` or `event`.
    pub kind: &'static str,
    pub data: Value,
}

pub struct LiveStream {
    inner: Mutex<(u64, VecDeque<Item>)>,
    tx: broadcast::Sender<Item>,
}

impl LiveStream {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new((0, VecDeque::new())),
            tx: broadcast::channel(KEEP).0,
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, (u64, VecDeque<Item>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends a passing state (telemetry) to the clients connected now, without an id.
    pub fn publish_volatile(&self, kind: &'static str, data: Value) {
        let _ = self.tx.send(Item { id: 0, kind, data });
    }

    /// Sends a change, with the next id, and keeps it for clients that reconnect.
    pub fn publish(&self, kind: &'static str, data: Value) {
        let mut g = self.inner();
        g.0 += 1;
        let item = Item {
            id: g.0,
            kind,
            data,
        };
        if g.1.len() == KEEP {
            g.1.pop_front();
        }
        g.1.push_back(item.clone());
        let _ = self.tx.send(item);
    }

    /// The items after `last_id` still kept (None: nothing to replay), whether some were
    /// lost to the limit, and a receiver for what comes next; taken under one lock, so
    /// nothing falls between the two.
    pub fn subscribe(&self, last_id: Option<u64>) -> (Vec<Item>, bool, broadcast::Receiver<Item>) {
        let g = self.inner();
        let rx = self.tx.subscribe();
        let Some(last) = last_id else {
            return (Vec::new(), false, rx);
        };
        let oldest = g.1.front().map_or(g.0 + 1, |i| i.id);
        let lost = last + 1 < oldest && last < g.0;
        let replay = g.1.iter().filter(|i| i.id > last).cloned().collect();
        (replay, lost, rx)
    }

    /// Feeds the stream until the process ends: telemetry from the fleet `asked_hz`
    /// times a second per vehicle (within [`telemetry_hz`]'s bounds), and run and event changes from the store
    /// (polled every `every`).
    pub fn feed(
        self: Arc<Self>,
        fleet: Fleet,
        store: Arc<EventStore>,
        every: Duration,
        asked_hz: f64,
    ) {
        let me = self.clone();
        let period = Duration::from_secs_f64(1.0 / telemetry_hz(asked_hz));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                for id in fleet.sysids() {
                    if let Some(v) = fleet.vehicle(id) {
                        me.publish_volatile("telemetry", json!(v.telemetry()));
                    }
                }
            }
        });
        tokio::spawn(async move {
            let (mut runs, mut audit) = store
                .read(|tx| {
                    Ok::<_, DbError>((
                        tx.query_value("SELECT coalesce(max(rowid), 0) FROM run_changes", args![])?,
                        tx.query_value("SELECT coalesce(max(id), 0) FROM audit", args![])?,
                    ))
                })
                .unwrap_or((0, 0));
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let s = store.clone();
                let got = tokio::task::spawn_blocking(move || new_changes(&s, runs, audit)).await;
                if let Ok(Ok((r, a, items))) = got {
                    (runs, audit) = (r, a);
                    for (kind, data) in items {
                        self.publish(kind, data);
                    }
                }
            }
        });
    }
}

/// The telemetry rate the stream sends, samples per second per vehicle: as asked, within
/// 0.1 to 10 (the map glides between samples, so more would only load the browser).
pub fn telemetry_hz(asked: f64) -> f64 {
    if asked.is_nan() {
        return 2.0;
    }
    asked.clamp(0.1, 10.0)
}

/// Run changes after row `runs` and event audit rows after `audit`, with the new cursors.
#[allow(clippy::type_complexity)]
fn new_changes(
    store: &EventStore,
    runs: i64,
    audit: i64,
) -> Result<(i64, i64, Vec<(&'static str, Value)>), DbError> {
    store.read(|tx| {
        let mut out = Vec::new();
        let (mut r, mut a) = (runs, audit);
        let rows = tx.query_map(
            "SELECT c.rowid, c.run_id, r.patrol, c.from_state, c.to_state, c.reason, c.at_us, r.sysid
             FROM run_changes c JOIN runs r ON r.id = c.run_id WHERE c.rowid > ?1 ORDER BY c.rowid",
            args![runs], |x| {
            Ok((
                x.get::<i64>(0)?,
                json!({
                    "run": x.get::<i64>(1)?,
                    "patrol": x.get::<String>(2)?,
                    "from": x.get::<Option<String>>(3)?,
                    "to": x.get::<String>(4)?,
                    "reason": x.get::<String>(5)?,
                    "at_us": x.get::<i64>(6)?,
                    "sysid": x.get::<Option<i64>>(7)?,
                }),
            ))
        })?;
        for (id, v) in rows {
            r = r.max(id);
            out.push(("run", v));
        }
        let rows = tx.query_map(
            "SELECT a.id, a.event_id, e.category, e.cell_id, a.from_state, a.to_state, a.actor, a.at_us, e.lat, e.lon
             FROM audit a JOIN events e ON e.id = a.event_id WHERE a.id > ?1 ORDER BY a.id",
            args![audit], |x| {
            Ok((
                x.get::<i64>(0)?,
                json!({
                    "event": x.get::<i64>(1)?,
                    "category": x.get::<String>(2)?,
                    "cell_id": x.get::<Option<String>>(3)?,
                    "from": x.get::<Option<String>>(4)?,
                    "to": x.get::<String>(5)?,
                    "actor": x.get::<String>(6)?,
                    "at_us": x.get::<i64>(7)?,
                    "lat": x.get::<f64>(8)?,
                    "lon": x.get::<f64>(9)?,
                }),
            ))
        })?;
        for (id, v) in rows {
            a = a.max(id);
            out.push(("event", v));
        }
        Ok((r, a, out))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconnect_gets_what_it_missed_or_a_reset() {
        let s = LiveStream::new();
        for i in 0..5 {
            s.publish("run", json!(i));
        }
        let (replay, lost, _) = s.subscribe(Some(3));
        assert_eq!(replay.iter().map(|i| i.id).collect::<Vec<_>>(), vec![4, 5]);
        assert!(!lost);
        let (replay, _, _) = s.subscribe(None);
        assert!(replay.is_empty());
        for i in 0..KEEP {
            s.publish("run", json!(i));
        }
        let (replay, lost, _) = s.subscribe(Some(2));
        assert!(lost);
        assert_eq!(replay.len(), KEEP);
    }
}
