//! `GET /metrics` in Prometheus's text format (version 0.0.4), gathered when scraped:
//! vehicles and their link quality and battery, runs by state, grid events by state, the
//! capture and outbox queues, and each link's frame counters (garbage counted and skipped
//! included).

use std::fmt::Write;

use crate::schedule::service::Service;
use crate::schedule::RunState;

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The exposition, or the store's error.
pub fn render(s: &Service) -> Result<String, String> {
    let mut out = String::new();
    let fleet = s.fleet();
    let ids = fleet.sysids();
    family(&mut out, "gridpatrol_vehicles", "gauge", "Vehicles heard.");
    let _ = writeln!(out, "gridpatrol_vehicles {}", ids.len());
    family(
        &mut out,
        "gridpatrol_vehicle_battery_percent",
        "gauge",
        "Battery remaining, percent.",
    );
    let tels: Vec<_> = ids
        .iter()
        .filter_map(|id| fleet.vehicle(*id))
        .map(|v| v.telemetry())
        .collect();
    for t in &tels {
        if let Some(b) = t.battery.remaining {
            let _ = writeln!(
                out,
                "gridpatrol_vehicle_battery_percent{{sysid=\"{}\"}} {b}",
                t.sysid
            );
        }
    }
    family(
        &mut out,
        "gridpatrol_vehicle_link_quality_percent",
        "gauge",
        "Frames received of those sent, by sequence numbers, percent.",
    );
    for t in &tels {
        let _ = writeln!(
            out,
            "gridpatrol_vehicle_link_quality_percent{{sysid=\"{}\"}} {:.2}",
            t.sysid,
            t.quality.percent()
        );
    }
    family(
        &mut out,
        "gridpatrol_vehicle_armed",
        "gauge",
        "1 when armed.",
    );
    for t in &tels {
        let _ = writeln!(
            out,
            "gridpatrol_vehicle_armed{{sysid=\"{}\"}} {}",
            t.sysid,
            u8::from(t.armed)
        );
    }
    family(&mut out, "gridpatrol_runs", "gauge", "Runs by state.");
    let counts = s.book().count_by_state().map_err(|e| e.to_string())?;
    for st in RunState::ALL {
        let n = counts.iter().find(|(c, _)| *c == st).map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "gridpatrol_runs{{state=\"{st}\"}} {n}");
    }
    let stats = s
        .book()
        .store()
        .stats(crate::events::now_us())
        .map_err(|e| e.to_string())?;
    family(
        &mut out,
        "gridpatrol_events",
        "gauge",
        "Grid events by state.",
    );
    for (state, n) in &stats.by_state {
        let _ = writeln!(out, "gridpatrol_events{{state=\"{state}\"}} {n}");
    }
    family(
        &mut out,
        "gridpatrol_events_overdue",
        "gauge",
        "Open events past their deadline.",
    );
    let _ = writeln!(out, "gridpatrol_events_overdue {}", stats.overdue);
    family(
        &mut out,
        "gridpatrol_captures_pending",
        "gauge",
        "Photos not yet analysed.",
    );
    let _ = writeln!(
        out,
        "gridpatrol_captures_pending {}",
        stats.captures_pending
    );
    family(
        &mut out,
        "gridpatrol_outbox_pending",
        "gauge",
        "Messages waiting for the webhook.",
    );
    let _ = writeln!(out, "gridpatrol_outbox_pending {}", stats.outbox_pending);
    family(
        &mut out,
        "gridpatrol_link_frames_total",
        "counter",
        "MAVLink frames per link and kind (in, out, and the ones counted and skipped).",
    );
    let hub = fleet.hub();
    for l in hub.links() {
        let Some(st) = hub.link_stats(l.id) else {
            continue;
        };
        for (kind, n) in [
            ("in", st.frames_in),
            ("out", st.frames_out),
            ("bad_crc", st.bad_crc),
            ("unknown_id", st.unknown_id),
            ("truncated", st.truncated),
            ("bad_signature", st.bad_signature),
            ("decode_error", st.decode_errors),
        ] {
            let _ = writeln!(
                out,
                "gridpatrol_link_frames_total{{link=\"{}\",kind=\"{kind}\"}} {n}",
                l.addr
            );
        }
    }
    Ok(out)
}
