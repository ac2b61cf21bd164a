//! The planner on the sample district: budgets, item limits, the ceiling, no-fly zones,
//! and .plan files that read back to the same mission.

use gridpatrol::grid::{Datum, GridMap};
use gridpatrol::plan::{plan_coverage, qgc, Pattern, PlanError, PlanOptions, MAX_ITEMS};
use gridpatrol::vehicle::compare_missions;

fn district() -> GridMap {
    GridMap::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("missions/wenqu.geojson"),
        Datum::Wgs84,
    )
    .unwrap()
}

#[test]
fn every_sortie_fits_its_battery_item_limit_and_ceiling() {
    let map = district();
    let opts = PlanOptions::default();
    let plan = plan_coverage(&map, &[], &opts).unwrap();
    assert!(
        plan.sweep_m >= plan.sweep_lower_bound_m * 0.99,
        "{} vs {}",
        plan.sweep_m,
        plan.sweep_lower_bound_m
    );
    assert!(
        plan.sweep_m <= plan.sweep_lower_bound_m * 1.05,
        "{} vs {}",
        plan.sweep_m,
        plan.sweep_lower_bound_m
    );
    for s in &plan.sorties {
        assert!(s.items.len() <= MAX_ITEMS);
        assert!(
            s.flight_time_s <= opts.battery_min * 60.0 * (1.0 - opts.reserve_pct / 100.0) + 1e-6
        );
        assert!(s.items.iter().all(|i| f64::from(i.z) <= opts.ceiling_m));
        assert_eq!(
            s.items.first().map(|i| i.command),
            Some(22),
            "takes off first"
        );
        assert_eq!(
            s.items.last().map(|i| i.command),
            Some(20),
            "returns home last"
        );
    }
    // Every cell is covered by some sortie.
    for c in &map.cells {
        assert!(
            plan.sorties.iter().any(|s| s.cells.contains(&c.id)),
            "{} not planned",
            c.id
        );
    }
}

#[test]
fn no_leg_of_any_sortie_enters_a_no_fly_zone() {
    let map = district();
    let plan = plan_coverage(&map, &[], &PlanOptions::default()).unwrap();
    let home = map.home.unwrap();
    let mut checked = 0;
    let mut detours = 0;
    for s in &plan.sorties {
        // The path flown: home, every waypoint in order, and straight back home (RTL).
        let mut path = vec![(home.lat, home.lon)];
        path.extend(
            s.items
                .iter()
                .filter(|i| i.command == 16)
                .map(|i| (i.lat(), i.lon())),
        );
        path.push((home.lat, home.lon));
        let sweeps = s.items.iter().filter(|i| i.command == 206).count() / 2;
        detours += path.len() - 2 - 2 * sweeps;
        for w in path.windows(2) {
            for k in 0..=200 {
                let f = k as f64 / 200.0;
                let lat = w[0].0 + (w[1].0 - w[0].0) * f;
                let lon = w[0].1 + (w[1].1 - w[0].1) * f;
                assert!(
                    map.in_no_fly(lat, lon).is_none(),
                    "a leg crosses a no-fly zone at {lat},{lon}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 50_000);
    assert!(
        detours > 0,
        "the district's zones lie across some transits, so some detours are expected"
    );
}

#[test]
fn a_plan_file_reads_back_to_the_same_mission() {
    let map = district();
    let plan = plan_coverage(&map, &["WQ-24".to_string()], &PlanOptions::default()).unwrap();
    let s = &plan.sorties[0];
    let doc = qgc::plan_json(&s.items, plan.home, 8.0, &s.fence_items);
    assert_eq!(doc["fileType"], "Plan");
    // The .plan carries exactly the fence that is uploaded: the inclusion polygon first.
    assert_eq!(doc["geoFence"]["polygons"][0]["inclusion"], true);
    compare_missions(&s.fence_items, &qgc::fence_from_plan(&doc).unwrap()).unwrap();
    let text = serde_json::to_string_pretty(&doc).unwrap();
    let back = qgc::items_from_plan(&serde_json::from_str(&text).unwrap()).unwrap();
    compare_missions(&s.items, &back).unwrap();
    assert!(qgc::items_from_plan(&serde_json::json!({"fileType": "Survey"})).is_err());
}

#[test]
fn bad_requests_are_refused_clearly() {
    let map = district();
    let e = plan_coverage(&map, &["WQ-99".to_string()], &PlanOptions::default()).unwrap_err();
    assert_eq!(e, PlanError::UnknownCell("WQ-99".into()));
    let high = PlanOptions {
        altitude_m: 150.0,
        ..PlanOptions::default()
    };
    assert_eq!(
        plan_coverage(&map, &[], &high).unwrap_err(),
        PlanError::AboveCeiling {
            alt: 150.0,
            ceiling: 120.0
        }
    );
}

#[test]
fn a_points_patrol_hovers_photographs_and_orbits_each_hotspot() {
    let map = district();
    assert_eq!(map.hotspots.len(), 4);
    let opts = PlanOptions {
        pattern: Pattern::Points,
        ..PlanOptions::default()
    };
    let plan = plan_coverage(&map, &[], &opts).unwrap();
    let items: Vec<_> = plan.sorties.iter().flat_map(|s| s.items.iter()).collect();
    for h in &map.hotspots {
        // A waypoint on the hotspot holding for its hover time, then one photo.
        let at = items
            .iter()
            .position(|i| {
                i.command == 16 && (i.lat() - h.lat).abs() < 1e-6 && (i.lon() - h.lon).abs() < 1e-6
            })
            .unwrap_or_else(|| panic!("{} not visited", h.id));
        assert_eq!(items[at].params[0], h.hover_s as f32);
        assert_eq!(
            items[at + 1].command,
            2000,
            "IMAGE_START_CAPTURE after {}",
            h.id
        );
        if let Some(r) = h.orbit_radius_m {
            // Trigger on, then a ring of waypoints at the orbit radius.
            assert_eq!(items[at + 2].command, 206);
            let ring = &items[at + 3];
            let dn = (ring.lat() - h.lat) * 111_320.0;
            let de = (ring.lon() - h.lon) * 111_320.0 * h.lat.to_radians().cos();
            assert!(((dn * dn + de * de).sqrt() - r).abs() < 1.0);
        }
    }
    // Cells without hotspots are not flown.
    let none = plan_coverage(&map, &["WQ-01".to_string()], &opts).unwrap();
    assert!(none.sorties.is_empty());
}

#[test]
fn every_sortie_flies_inside_its_own_inclusion_fence() {
    use geo::Contains;
    let map = district();
    let plan = plan_coverage(&map, &[], &PlanOptions::default()).unwrap();
    let home = map.home.unwrap();
    for s in &plan.sorties {
        // Home, every waypoint and the whole of its cells lie inside the fence, so the
        // vehicle never meets the fence on the way out, on the sweeps or on the way back.
        assert!(s.fence.contains(&geo::Point::new(home.lon, home.lat)));
        for i in s.items.iter().filter(|i| i.command == 16) {
            assert!(
                s.fence.contains(&geo::Point::new(i.lon(), i.lat())),
                "waypoint outside the fence"
            );
        }
        for id in &s.cells {
            assert!(
                s.fence.contains(&map.cell(id).unwrap().polygon),
                "{id} outside the fence"
            );
        }
    }
}
