//! Property tests of coverage: for random cells, the photos' footprints cover at least
//! 99.5 % of the cell (measured by rasterising at 1 m), and no sweep leaves the cell by
//! more than the turnaround.

use geo::{coord, Contains, LineString, Point, Polygon};
use gridpatrol::plan::coverage::Frame;
use gridpatrol::plan::{coverage_route, Camera};
use proptest::prelude::*;

/// A star-shaped (often concave) polygon of `radii.len()` corners around the origin.
fn star(frame: &Frame, radii: &[f64], twist: f64) -> Polygon<f64> {
    let n = radii.len();
    let mut pts: Vec<_> = radii
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let a = twist + 2.0 * std::f64::consts::PI * i as f64 / n as f64;
            let (lat, lon) = frame.to_geo(r * a.cos(), r * a.sin());
            coord! { x: lon, y: lat }
        })
        .collect();
    pts.push(pts[0]);
    Polygon::new(LineString::new(pts), vec![])
}

fn coverage_share(cell: &Polygon<f64>, frame: &Frame, camera: &Camera, alt: f64) -> f64 {
    let survey = camera.survey(alt, 75.0, 65.0).unwrap();
    let route = coverage_route(cell, survey.line_spacing_m, None, 0.0).unwrap();
    // Photos every trigger distance from the start of each sweep, footprint across track.
    let mut shots = Vec::new();
    for leg in route.legs.iter().filter(|l| l.camera) {
        let a = frame.to_local(leg.from.0, leg.from.1);
        let b = frame.to_local(leg.to.0, leg.to.1);
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let dir = ((b.0 - a.0) / len.max(1e-9), (b.1 - a.1) / len.max(1e-9));
        let n = (len / survey.trigger_distance_m).floor() as usize;
        for k in 0..=n {
            let t = k as f64 * survey.trigger_distance_m;
            shots.push(((a.0 + dir.0 * t, a.1 + dir.1 * t), dir));
        }
    }
    let (hs, hf) = (
        survey.footprint_side_m / 2.0,
        survey.footprint_frontal_m / 2.0,
    );
    let (mut inside, mut covered) = (0u64, 0u64);
    for x in -700..700 {
        for y in -700..700 {
            let (e, n) = (x as f64 + 0.5, y as f64 + 0.5);
            let (lat, lon) = frame.to_geo(e, n);
            if !cell.contains(&Point::new(lon, lat)) {
                continue;
            }
            inside += 1;
            let hit = shots.iter().any(|((px, py), (dx, dy))| {
                let (rx, ry) = (e - px, n - py);
                let along = rx * dx + ry * dy;
                let across = -rx * dy + ry * dx;
                along.abs() <= hf && across.abs() <= hs
            });
            if hit {
                covered += 1;
            }
        }
    }
    covered as f64 / inside.max(1) as f64
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn photos_cover_at_least_99_5_percent_of_a_cell(
        radii in proptest::collection::vec(120.0f64..600.0, 4..9),
        twist in 0.0f64..std::f64::consts::TAU,
        alt in 40.0f64..100.0,
    ) {
        let frame = Frame::new(36.56, 103.68);
        let cell = star(&frame, &radii, twist);
        let share = coverage_share(&cell, &frame, &Camera::find("1inch-20mp").unwrap(), alt);
        prop_assert!(share >= 0.995, "covered {:.4}", share);
    }
}

/// A district of 2 × 2 square cells of `size` metres, a circular no-fly zone and a home.
fn district(frame: &Frame, size: f64, zone: (f64, f64, f64)) -> String {
    let geo = |e: f64, n: f64| {
        let (lat, lon) = frame.to_geo(e, n);
        serde_json::json!([lon, lat])
    };
    let mut features = Vec::new();
    for (i, (e0, n0)) in [(0.0, 0.0), (size, 0.0), (0.0, size), (size, size)]
        .iter()
        .enumerate()
    {
        let ring = vec![
            geo(*e0, *n0),
            geo(e0 + size, *n0),
            geo(e0 + size, n0 + size),
            geo(*e0, n0 + size),
            geo(*e0, *n0),
        ];
        features.push(serde_json::json!({"type": "Feature", "properties": {"grid_id": format!("C{i}")}, "geometry": {"type": "Polygon", "coordinates": [ring]}}));
    }
    let (ze, zn, zr) = zone;
    let mut circle: Vec<_> = (0..24)
        .map(|k| {
            let a = std::f64::consts::TAU * k as f64 / 24.0;
            geo(ze + zr * a.cos(), zn + zr * a.sin())
        })
        .collect();
    circle.push(circle[0].clone());
    features.push(serde_json::json!({"type": "Feature", "properties": {"kind": "no_fly", "zone_id": "Z"}, "geometry": {"type": "Polygon", "coordinates": [circle]}}));
    features.push(serde_json::json!({"type": "Feature", "properties": {"kind": "home", "alt_m": 1800.0}, "geometry": {"type": "Point", "coordinates": geo(-100.0, -100.0)}}));
    serde_json::json!({"type": "FeatureCollection", "features": features}).to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn plans_avoid_no_fly_zones_and_keep_every_limit(
        size in 200.0f64..700.0,
        ze in 0.0f64..1.0,
        zn in 0.0f64..1.0,
        zr in 30.0f64..150.0,
        alt in 30.0f64..120.0,
        battery in 8.0f64..30.0,
    ) {
        use gridpatrol::grid::{Datum, GridMap};
        use gridpatrol::plan::{plan_coverage, PlanOptions, MAX_ITEMS};
        let frame = Frame::new(36.56, 103.68);
        let text = district(&frame, size, (ze * 2.0 * size, zn * 2.0 * size, zr));
        let map = GridMap::from_geojson(&text, Datum::Wgs84).unwrap();
        let opts = PlanOptions { altitude_m: alt, battery_min: battery, ..PlanOptions::default() };
        // Out to the farthest corner and back (with 20 % for a detour), climb and descent:
        // when even that exceeds the battery, refusing is the right answer.
        let far = 2.0f64.sqrt() * (2.0 * size + 100.0);
        let needed = 2.0 * far * 1.2 / opts.speed_mps + alt / 3.0 + alt / 1.5 + 10.0;
        let reachable = needed <= opts.battery_min * 60.0 * (1.0 - opts.reserve_pct / 100.0);
        let plan = match plan_coverage(&map, &[], &opts) {
            Ok(p) => p,
            Err(gridpatrol::plan::PlanError::BatteryTooSmall(_)) if !reachable => return Ok(()),
            // A cell wholly under the zone is a clear refusal, not a bad plan.
            Err(gridpatrol::plan::PlanError::AllNoFly(_)) => return Ok(()),
            // So is a home under the zone.
            Err(gridpatrol::plan::PlanError::HomeInNoFly(_)) => return Ok(()),
            Err(e) => panic!("{e}"),
        };
        let home = map.home.unwrap();
        let budget = opts.battery_min * 60.0 * (1.0 - opts.reserve_pct / 100.0);
        for s in &plan.sorties {
            prop_assert!(s.items.len() <= MAX_ITEMS);
            prop_assert!(s.flight_time_s <= budget + 1e-6);
            prop_assert!(s.items.iter().all(|i| f64::from(i.z) <= opts.ceiling_m));
            let mut path = vec![(home.lat, home.lon)];
            path.extend(s.items.iter().filter(|i| i.command == 16).map(|i| (i.lat(), i.lon())));
            path.push((home.lat, home.lon));
            for w in path.windows(2) {
                for k in 0..=100 {
                    let f = k as f64 / 100.0;
                    let (lat, lon) = (w[0].0 + (w[1].0 - w[0].0) * f, w[0].1 + (w[1].1 - w[0].1) * f);
                    prop_assert!(map.in_no_fly(lat, lon).is_none(), "leg through the zone at {},{}", lat, lon);
                }
            }
        }
    }
}

#[test]
fn photos_cover_the_concave_and_courtyard_cells_of_the_sample_district() {
    use gridpatrol::grid::{Datum, GridMap};
    let map = GridMap::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("missions/wenqu.geojson"),
        Datum::Wgs84,
    )
    .unwrap();
    let camera = Camera::find("1inch-20mp").unwrap();
    // Three L-shaped cells, the campus quad with a courtyard hole, and a plain block.
    for id in ["WQ-09", "WQ-19", "WQ-41", "WQ-30", "WQ-24"] {
        let cell = &map.cell(id).unwrap().polygon;
        let c = geo::Centroid::centroid(cell).unwrap();
        let frame = Frame::new(c.y(), c.x());
        let share = coverage_share(cell, &frame, &camera, 60.0);
        assert!(share >= 0.995, "{id}: covered {share:.4}");
    }
}
