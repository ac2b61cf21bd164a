//! Same seed, same inputs at the same steps: the same bytes on the wire.

#![allow(deprecated)]

use gridpatrol_sim::vehicle::SimVehicle;
use gridpatrol_sim::{wire, STEP_S};
use mavlink::dialects::common::*;

fn gcs_inputs(step: u32) -> Vec<MavMessage> {
    let cmd = |command, p1: f32| {
        MavMessage::COMMAND_LONG(COMMAND_LONG_DATA {
            param1: p1,
            command,
            target_system: 1,
            target_component: 1,
            ..Default::default()
        })
    };
    let item = |seq: u16, command, lat: f64| {
        MavMessage::MISSION_ITEM_INT(MISSION_ITEM_INT_DATA {
            seq,
            x: (lat * 1e7) as i32,
            y: 1_036_800_000,
            z: 20.0,
            command,
            target_system: 1,
            target_component: 1,
            frame: MavFrame::MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
            autocontinue: 1,
            ..Default::default()
        })
    };
    match step {
        10 => vec![MavMessage::MISSION_COUNT(MISSION_COUNT_DATA {
            count: 3,
            target_system: 1,
            target_component: 1,
            ..Default::default()
        })],
        11 => vec![item(0, MavCmd::MAV_CMD_NAV_TAKEOFF, 36.56)],
        12 => vec![item(1, MavCmd::MAV_CMD_NAV_WAYPOINT, 36.5612)],
        13 => vec![item(2, MavCmd::MAV_CMD_NAV_RETURN_TO_LAUNCH, 0.0)],
        20 => vec![cmd(MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, 1.0)],
        21 => vec![cmd(MavCmd::MAV_CMD_MISSION_START, 0.0)],
        _ => vec![],
    }
}

/// Runs one vehicle for `steps` fixed steps and returns every byte it sent.
fn run(seed: u64, steps: u32) -> (Vec<u8>, SimVehicle) {
    let mut v = SimVehicle::new(1, (36.56, 103.68, 1800.0), 500, seed);
    let mut wire_out = Vec::new();
    let mut seq = 0u8;
    for step in 0..steps {
        let mut out: Vec<MavMessage> = v.tick(STEP_S).into_iter().map(|(_, m)| m).collect();
        for m in gcs_inputs(step) {
            out.extend(v.handle(&m, v.t));
        }
        for m in out {
            wire_out.extend(wire::encode(1, 1, seq, &m, None));
            seq = seq.wrapping_add(1);
        }
    }
    (wire_out, v)
}

#[test]
fn the_same_seed_gives_the_same_telemetry_and_another_seed_does_not() {
    // 300 simulated seconds: take off, fly 130 m, return at 30 m (RTL_RETURN_ALT), land, disarm.
    let (a, va) = run(42, 15000);
    let (b, _) = run(42, 15000);
    let (c, _) = run(43, 15000);
    assert!(
        !va.armed && !va.in_air(),
        "the flight finished: armed {} mode {} alt {}",
        va.armed,
        va.sub_mode,
        va.alt
    );
    assert!(a.len() > 100_000);
    assert_eq!(a, b, "same seed, same bytes");
    assert_ne!(a, c, "the GPS noise follows the seed");
}

#[test]
fn a_hovering_vehicle_leans_into_the_wind() {
    let mut v = SimVehicle::new(1, (36.56, 103.68, 1800.0), 500, 1);
    v.wind = (5.0, 0.0); // from the south, blowing north
    for (command, p1) in [
        (MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, 1.0),
        (MavCmd::MAV_CMD_NAV_TAKEOFF, 0.0),
    ] {
        v.handle(
            &MavMessage::COMMAND_LONG(COMMAND_LONG_DATA {
                param1: p1,
                command,
                target_system: 1,
                target_component: 1,
                ..Default::default()
            }),
            0.0,
        );
    }
    let mut pitch = 0.0;
    for _ in 0..1500 {
        for (_, m) in v.tick(STEP_S) {
            if let MavMessage::ATTITUDE(a) = m {
                pitch = a.pitch;
            }
        }
    }
    assert!(v.in_air());
    // Facing north, the wind drags it north; holding position takes thrust to the south:
    // nose up (positive pitch): atan(0.15 × 5 / 9.81) ≈ 4.4°.
    assert!(
        (pitch.to_degrees() - 4.4).abs() < 0.3,
        "{}",
        pitch.to_degrees()
    );
}
