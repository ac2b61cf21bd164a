//! Planner benchmark on the sample district: planning time for every cell, and the route
//! against its lower bound (area / line spacing) and an estimate of the transit the
//! battery forces, turns and photos, printed once.

use criterion::{criterion_group, criterion_main, Criterion};
use gridpatrol::grid::{Datum, GridMap};
use gridpatrol::plan::{plan_coverage, route_lower_bound, PlanOptions};

fn district(c: &mut Criterion) {
    let map = GridMap::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("missions/wenqu.geojson"),
        Datum::Wgs84,
    )
    .expect("sample district");
    let opts = PlanOptions::default();
    let plan = plan_coverage(&map, &[], &opts).expect("plan");
    let length: f64 = plan.sorties.iter().map(|s| s.length_m).sum();
    let turns: u32 = plan.sorties.iter().map(|s| s.turns).sum();
    let photos: u32 = plan.sorties.iter().map(|s| s.photos).sum();
    let bound = route_lower_bound(&map, &[], &opts, &plan.survey);
    eprintln!(
        "district {:.2} km², {} cells at {} m: sweep {:.1} km vs lower bound {:.1} km ({:+.2} %), total route {:.1} km vs estimate {:.1} km (sweep bound + battery-forced transit estimate; {:+.1} %) in {} sorties, {} turns, {} photos",
        map.area_km2(),
        map.cells.len(),
        opts.altitude_m,
        plan.sweep_m / 1000.0,
        plan.sweep_lower_bound_m / 1000.0,
        100.0 * (plan.sweep_m / plan.sweep_lower_bound_m - 1.0),
        length / 1000.0,
        bound.total_m() / 1000.0,
        100.0 * (length / bound.total_m() - 1.0),
        plan.sorties.len(),
        turns,
        photos
    );
    let mut g = c.benchmark_group("plan");
    g.sample_size(20);
    g.bench_function("whole_district_coverage", |b| {
        b.iter(|| plan_coverage(&map, &[], &opts).expect("plan"))
    });
    g.finish();
}

criterion_group!(benches, district);
criterion_main!(benches);
