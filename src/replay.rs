//! `gridpatrol replay`: what a tlog holds, summarised or as a message stream.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mavlink::Message;

use crate::link::{LinkStats, Parsed, TlogReader};
use crate::vehicle::{severity_name, TelemetryReducer, VehicleEvent};

/// The summary of one tlog.
#[derive(Debug, Default)]
pub struct ReplaySummary {
    pub frames: u64,
    pub first_us: u64,
    pub last_us: u64,
    pub by_name: BTreeMap<&'static str, u64>,
    pub stats: crate::link::LinkStatsSnapshot,
    /// Vehicle events in order, with seconds since the first frame.
    pub events: Vec<(f64, u8, VehicleEvent)>,
}

/// Reads a whole tlog; `each` sees every decoded message with its time in µs.
pub fn replay(
    data: &[u8],
    mut each: impl FnMut(u64, &crate::link::Frame, &mavlink::dialects::common::MavMessage),
) -> ReplaySummary {
    let stats = LinkStats::default();
    let mut s = ReplaySummary::default();
    let mut reducer = TelemetryReducer::new();
    let t0 = Instant::now();
    for entry in TlogReader::new(data) {
        let f = match entry.item {
            Parsed::Frame(f) => f,
            Parsed::Skipped(k) => {
                stats.count_skip(k);
                continue;
            }
        };
        if s.frames == 0 {
            s.first_us = entry.time_us;
        }
        s.frames += 1;
        s.last_us = entry.time_us;
        if !f.known() {
            stats.count_skip(crate::link::Skip::UnknownId(f.msgid()));
            continue;
        }
        let Ok(msg) = f.decode() else {
            stats
                .decode_errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            continue;
        };
        *s.by_name.entry(msg.message_name()).or_default() += 1;
        each(entry.time_us, &f, &msg);
        let rel = entry.time_us.saturating_sub(s.first_us);
        let at = t0 + Duration::from_micros(rel);
        if let Some((sysid, evs)) = reducer.apply(0, &f, &msg, at) {
            for e in evs {
                s.events.push((rel as f64 / 1e6, sysid, e));
            }
        }
    }
    s.stats = stats.snapshot();
    s
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.last_us.saturating_sub(self.first_us) as f64 / 1e6;
        writeln!(f, "{} frames over {:.1} s", self.frames, secs)?;
        writeln!(
            f,
            "skipped: {} unknown-id frames {:?}, {} bad CRC, {} garbage bytes, {} truncated",
            self.stats.unknown_id,
            self.stats.unknown_ids,
            self.stats.bad_crc,
            self.stats.garbage_bytes,
            self.stats.truncated
        )?;
        writeln!(f, "messages:")?;
        let mut by: Vec<_> = self.by_name.iter().collect();
        by.sort_by(|a, b| b.1.cmp(a.1));
        for (name, n) in by {
            writeln!(f, "  {name:<28} {n:>8}")?;
        }
        writeln!(f, "events:")?;
        for (t, sysid, e) in &self.events {
            let text = match e {
                VehicleEvent::StatusText { severity, text } => {
                    format!("{}: {text}", severity_name(*severity))
                }
                other => format!("{other:?}"),
            };
            writeln!(f, "  {t:>8.2} s  vehicle {sysid}  {text}")?;
        }
        Ok(())
    }
}
