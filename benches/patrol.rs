//! The patrol, measured: a coverage patrol of a seeded simulated world (three vehicles,
//! 60 m, the simulator's default GPS and attitude noise), scored against the world's
//! ground truth: recall, precision, duplicate rate, geotag error (median, p95) and the
//! capture-to-event latency; then criterion times the per-photo stages (detect, geotag).

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, Criterion};
use gridpatrol::detect::colour::ColourDetector;
use gridpatrol::detect::Detector;

fn accuracy() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    for seed in [3u64, 5, 9] {
        let f = rt.block_on(common::patrol::fly_square(180.0, 40, seed, 3, 40.0, 5.0));
        let events = f.store.list(None, None, None).expect("events");
        let s = common::patrol::score(&f.world, &events, 8.0);
        let lat = f.store.capture_latencies_us().expect("latencies");
        let photos: usize = f.report.vehicles.iter().map(|v| v.photos).sum();
        let q = |p: f64| {
            lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
                .map_or(f64::NAN, |v| *v as f64 / 1000.0)
        };
        println!(
            "patrol seed {seed}: {photos} photos, {} issues, {} events: recall {:.1} %, precision {:.1} %, duplicates {:.1} %, geotag error median {:.2} m p95 {:.2} m, capture-to-event latency median {:.0} ms p95 {:.0} ms",
            s.objects,
            s.events,
            s.recall * 100.0,
            s.precision * 100.0,
            s.duplicate_rate * 100.0,
            s.median_error_m,
            s.p95_error_m,
            q(0.5),
            q(0.95)
        );
        rows.push(s);
    }
    let n = rows.len() as f64;
    println!(
        "patrol over {} runs: recall {:.1} %, precision {:.1} %, duplicates {:.1} %, median geotag error {:.2} m (targets: >= 95 %, >= 95 %, <= 2 %, <= 2 m)",
        rows.len(),
        rows.iter().map(|s| s.recall).sum::<f64>() / n * 100.0,
        rows.iter().map(|s| s.precision).sum::<f64>() / n * 100.0,
        rows.iter().map(|s| s.duplicate_rate).sum::<f64>() / n * 100.0,
        rows.iter().map(|s| s.median_error_m).sum::<f64>() / n,
    );
}

fn stages(c: &mut Criterion) {
    let world = gridpatrol_sim::world::World::sample();
    let o = &world.objects[0];
    let jpeg = common::patrol::photo_above(&world, o.lat, o.lon, 60.0);
    let det = ColourDetector::default();
    c.bench_function(
        "detect one 1280x853 photo (decode + colour analysis)",
        |b| b.iter(|| det.detect(&jpeg).expect("detect")),
    );
    let k = gridpatrol::geotag::Intrinsics::from_camera(
        &gridpatrol::plan::Camera::find("sim").expect("camera"),
    );
    let p = gridpatrol::geotag::CameraPose {
        lat: o.lat,
        lon: o.lon,
        height_m: 60.0,
        q: gridpatrol::geotag::camera_quaternion(0.02, -0.03, 1.0, -std::f64::consts::FRAC_PI_2),
    };
    let acc = gridpatrol::geotag::PoseAccuracy::default();
    c.bench_function("geotag one pixel", |b| {
        b.iter(|| gridpatrol::geotag::locate(&k, &p, &acc, 100.0, 700.0).expect("fix"))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = stages
}

fn main() {
    // `cargo bench -- --list` (and CI's test runs) should not fly three patrols.
    if !std::env::args().any(|a| a == "--list" || a == "--test") {
        accuracy();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
