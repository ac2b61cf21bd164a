//! Simulator benchmarks: vehicle steps (flight model, failsafes, PX4-rate telemetry,
//! MAVLink encoding) per second on one core, and camera images rendered per second.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gridpatrol_sim::camera::{to_jpeg, Camera, Pose};
use gridpatrol_sim::vehicle::SimVehicle;
use gridpatrol_sim::world::World;
use gridpatrol_sim::{wire, STEP_S};
use mavlink::dialects::common::{MavCmd, MavMessage, COMMAND_LONG_DATA};

fn flying_vehicle() -> SimVehicle {
    let mut v = SimVehicle::new(1, (36.56, 103.68, 1800.0), 500, 1);
    for (cmd, p1) in [
        (MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, 1.0),
        (MavCmd::MAV_CMD_NAV_TAKEOFF, 0.0),
    ] {
        v.handle(
            &MavMessage::COMMAND_LONG(COMMAND_LONG_DATA {
                param1: p1,
                command: cmd,
                target_system: 1,
                target_component: 1,
                ..Default::default()
            }),
            0.0,
        );
    }
    v
}

fn steps(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim");
    let n = 50 * 60; // one simulated minute at 50 Hz
    g.throughput(Throughput::Elements(n));
    g.bench_function("vehicle_minute_steps_with_telemetry", |b| {
        b.iter(|| {
            let mut v = flying_vehicle();
            let mut frames = 0usize;
            let mut bytes = 0usize;
            for _ in 0..n {
                for (_, m) in v.tick(STEP_S) {
                    bytes += wire::encode(1, 1, 0, &m, None).len();
                    frames += 1;
                }
            }
            (frames, bytes)
        })
    });
    g.finish();
}

fn render(c: &mut Criterion) {
    let world =
        World::generate(&[World::square(36.56, 103.68, 200.0)], 40, 1, 1800.0).expect("world");
    let cam = Camera::default();
    let pose = Pose {
        lat: 36.56,
        lon: 103.68,
        height_m: 60.0,
        roll: 0.02,
        pitch: -0.03,
        yaw: 0.5,
    };
    let world = Arc::new(world);
    let mut g = c.benchmark_group("camera");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.bench_function("render_1280x853", |b| b.iter(|| cam.render(&pose, &world)));
    let (rgb, _) = cam.render(&pose, &world);
    g.bench_function("jpeg_1280x853", |b| {
        b.iter(|| to_jpeg(&rgb, 1280, 853, 90).expect("jpeg"))
    });
    g.finish();
}

criterion_group!(benches, steps, render);
criterion_main!(benches);
