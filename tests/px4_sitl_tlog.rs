//! Replays real PX4 v1.16 SITL traffic from ../shared/px4-sitl (skipped where absent).

mod common;

use std::path::Path;

use gridpatrol::link::{Parsed, TlogReader};
use gridpatrol::vehicle::{Px4Mode, VehicleEvent};
use mavlink::dialects::common::MavMessage;

fn tlog() -> Option<Vec<u8>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/px4-sitl/px4_sih_mission_flight.tlog");
    match std::fs::read(&p) {
        Ok(d) => Some(d),
        Err(_) => {
            common::skip(&format!("{} is absent", p.display()));
            None
        }
    }
}

#[test]
fn every_frame_of_real_px4_traffic_is_framed_and_the_flight_is_understood() {
    let Some(data) = tlog() else { return };
    let mut mission_up = Vec::new();
    let summary = gridpatrol::replay::replay(&data, |_, f, m| {
        if let MavMessage::MISSION_ITEM_INT(i) = m {
            if f.sysid() == 255 {
                mission_up.push(i.seq);
            }
        }
    });
    assert_eq!(summary.frames, 167_045);
    assert_eq!(
        summary.stats.bad_crc + summary.stats.truncated + summary.stats.garbage_bytes,
        0
    );
    // The ground sent 9 items (with a repeat or two): every seq 0..9 was uploaded.
    for s in 0..9u16 {
        assert!(mission_up.contains(&s), "item {s} uploaded");
    }
    let ev: Vec<_> = summary.events.iter().map(|(_, _, e)| e.clone()).collect();
    let reached: Vec<u16> = ev
        .iter()
        .filter_map(|e| match e {
            VehicleEvent::MissionItemReached(s) => Some(*s),
            _ => None,
        })
        .collect();
    // PX4 sends MISSION_ITEM_REACHED 63 times; each item is one event.
    assert_eq!(reached, (0..8).collect::<Vec<u16>>());
    assert!(ev.contains(&VehicleEvent::ModeChanged(Px4Mode::AutoMission)));
    assert!(ev.contains(&VehicleEvent::ModeChanged(Px4Mode::AutoRtl)));
    let armed: Vec<_> = ev
        .iter()
        .filter(|e| matches!(e, VehicleEvent::Armed(_)))
        .collect();
    assert_eq!(
        armed,
        vec![&VehicleEvent::Armed(true), &VehicleEvent::Armed(false)]
    );
    assert!(
        ev.iter()
            .filter(|e| matches!(e, VehicleEvent::HomeChanged(_)))
            .count()
            >= 2,
        "home moves after landing"
    );
}

#[test]
fn a_truncated_or_corrupted_tlog_never_panics() {
    let Some(data) = tlog() else { return };
    let cut = &data[..100_003];
    let n = TlogReader::new(cut)
        .filter(|e| matches!(e.item, Parsed::Frame(_)))
        .count();
    assert!(n > 1000);
    let last = TlogReader::new(cut).last().unwrap();
    assert!(matches!(last.item, Parsed::Skipped(_)));
    let mut bad = data[..200_000].to_vec();
    for i in (0..bad.len()).step_by(97) {
        bad[i] ^= 0xA5;
    }
    let frames = TlogReader::new(&bad)
        .filter(|e| matches!(e.item, Parsed::Frame(_)))
        .count();
    assert!(frames > 0);
}
