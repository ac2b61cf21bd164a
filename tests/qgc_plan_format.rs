//! Every .plan the planner writes for the sample district passes the checks
//! QGroundControl's loader makes, key by key and type by type (QGroundControl itself cannot
//! run here): PlanMasterController (fileType "Plan", version 1, mission / geoFence /
//! rallyPoints objects), MissionController::_loadJsonMissionFileV2 (plannedHomePosition,
//! items, firmwareType required; vehicleType, cruiseSpeed, hoverSpeed,
//! globalPlanAltitudeMode numbers), MissionItem::load after _convertJsonV2ToV3 (type
//! "SimpleItem", frame, command, seven params each a number or null, autoContinue, an
//! optional doJumpId), GeoFenceController (version 2, polygons, circles), QGCFencePolygon
//! (version 1, inclusion, fenceAction, a polygon of [lat, lon] with at least 3 vertices)
//! and RallyPointController (version 2, points).

use gridpatrol::grid::{Datum, GridMap};
use gridpatrol::plan::{plan_coverage, qgc, PlanOptions};
use serde_json::Value;

fn need<'a>(v: &'a Value, key: &str, what: &str, kind: fn(&Value) -> bool) -> &'a Value {
    let x = v
        .get(key)
        .unwrap_or_else(|| panic!("{what}: required key {key} missing"));
    assert!(kind(x), "{what}: {key} has the wrong type: {x}");
    x
}

fn optional(v: &Value, key: &str, what: &str, kind: fn(&Value) -> bool) {
    if let Some(x) = v.get(key) {
        assert!(kind(x), "{what}: {key} has the wrong type: {x}");
    }
}

fn check_plan(doc: &Value) {
    assert_eq!(need(doc, "fileType", "plan", Value::is_string), "Plan");
    assert_eq!(need(doc, "version", "plan", Value::is_number), 1);
    need(doc, "groundStation", "plan", Value::is_string);
    let mission = need(doc, "mission", "plan", Value::is_object);
    let fence = need(doc, "geoFence", "plan", Value::is_object);
    let rally = need(doc, "rallyPoints", "plan", Value::is_object);

    assert_eq!(need(mission, "version", "mission", Value::is_number), 2);
    let home = need(mission, "plannedHomePosition", "mission", Value::is_array);
    assert_eq!(home.as_array().unwrap().len(), 3, "home is lat, lon, alt");
    need(mission, "firmwareType", "mission", Value::is_number);
    for k in [
        "vehicleType",
        "cruiseSpeed",
        "hoverSpeed",
        "globalPlanAltitudeMode",
    ] {
        optional(mission, k, "mission", Value::is_number);
    }
    let items = need(mission, "items", "mission", Value::is_array)
        .as_array()
        .unwrap();
    assert!(!items.is_empty());
    for (i, it) in items.iter().enumerate() {
        let what = format!("item {i}");
        assert_eq!(need(it, "type", &what, Value::is_string), "SimpleItem");
        need(it, "frame", &what, Value::is_number);
        need(it, "command", &what, Value::is_number);
        need(it, "autoContinue", &what, Value::is_boolean);
        optional(it, "doJumpId", &what, Value::is_number);
        let params = need(it, "params", &what, Value::is_array)
            .as_array()
            .unwrap();
        assert_eq!(params.len(), 7, "{what}: params must contain 7 values");
        for (k, p) in params.iter().enumerate() {
            assert!(
                p.is_number() || p.is_null(),
                "{what}: param {} is {p}",
                k + 1
            );
        }
    }

    assert_eq!(need(fence, "version", "geoFence", Value::is_number), 2);
    let circles = need(fence, "circles", "geoFence", Value::is_array)
        .as_array()
        .unwrap();
    // QGCFenceCircle::loadFromJson, then QGCMapCircle::loadFromJson for "circle".
    for (i, c) in circles.iter().enumerate() {
        let what = format!("fence circle {i}");
        assert_eq!(need(c, "version", &what, Value::is_number), 1);
        need(c, "inclusion", &what, Value::is_boolean);
        let circle = need(c, "circle", &what, Value::is_object);
        let centre = need(circle, "center", &what, Value::is_array)
            .as_array()
            .unwrap();
        assert!(
            centre.len() == 2 && centre.iter().all(Value::is_number),
            "{what}: center is [lat, lon]"
        );
        let r = need(circle, "radius", &what, Value::is_number);
        assert!(r.as_f64().is_some_and(|r| r > 0.0), "{what}: radius {r}");
    }
    let polygons = need(fence, "polygons", "geoFence", Value::is_array)
        .as_array()
        .unwrap();
    assert!(
        polygons.iter().any(|p| p["inclusion"] == true),
        "an inclusion fence"
    );
    for (i, p) in polygons.iter().enumerate() {
        let what = format!("fence polygon {i}");
        assert_eq!(need(p, "version", &what, Value::is_number), 1);
        need(p, "inclusion", &what, Value::is_boolean);
        need(p, "fenceAction", &what, Value::is_number);
        let ring = need(p, "polygon", &what, Value::is_array)
            .as_array()
            .unwrap();
        assert!(ring.len() >= 3, "{what}: {} vertices", ring.len());
        for v in ring {
            let v = v.as_array().expect("a vertex is an array");
            assert_eq!(v.len(), 2, "{what}: a vertex is [lat, lon]");
            let (lat, lon) = (v[0].as_f64().unwrap(), v[1].as_f64().unwrap());
            assert!(lat.abs() <= 90.0 && lon.abs() <= 180.0);
        }
    }

    assert_eq!(need(rally, "version", "rallyPoints", Value::is_number), 2);
    need(rally, "points", "rallyPoints", Value::is_array);
}

#[test]
fn every_sortie_of_the_district_is_a_plan_qgroundcontrol_loads() {
    let map = GridMap::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("missions/wenqu.geojson"),
        Datum::Wgs84,
    )
    .unwrap();
    let plan = plan_coverage(&map, &[], &PlanOptions::default()).unwrap();
    assert!(plan.sorties.len() > 100);
    for s in &plan.sorties {
        let doc = qgc::plan_json(&s.items, plan.home, 8.0, &s.fence_items);
        // Through text, as QGroundControl reads it from disk.
        let text = serde_json::to_string_pretty(&doc).unwrap();
        check_plan(&serde_json::from_str(&text).unwrap());
    }
}
