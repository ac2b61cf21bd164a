//! Loading grid cells: the sample district, datums, the spatial index, and every kind of
//! bad input with an error that names the feature and the problem.

use gridpatrol::grid::{wgs84_to_gcj02, Datum, GridError, GridMap};
use serde_json::{json, Value};

fn sample_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("missions/wenqu.geojson")
}

fn cell(id: &str, ring: Value) -> Value {
    json!({"type": "Feature", "properties": {"grid_id": id, "name": id}, "geometry": {"type": "Polygon", "coordinates": [ring]}})
}

/// A square cell of `d` degrees at (lat, lon), counter-clockwise.
fn square(lat: f64, lon: f64, d: f64) -> Value {
    json!([
        [lon, lat],
        [lon + d, lat],
        [lon + d, lat + d],
        [lon, lat + d],
        [lon, lat]
    ])
}

fn load(features: Vec<Value>) -> Result<GridMap, GridError> {
    GridMap::from_geojson(
        &json!({"type": "FeatureCollection", "features": features}).to_string(),
        Datum::Wgs84,
    )
}

fn err(features: Vec<Value>) -> String {
    match load(features) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_sample_district_loads_with_its_cells_zones_home_and_hole() {
    let map = GridMap::load(&sample_path(), Datum::Wgs84).unwrap();
    assert!((40..=60).contains(&map.cells.len()));
    assert!((15.0..17.0).contains(&map.area_km2()), "{}", map.area_km2());
    assert_eq!(map.no_fly.len(), 2);
    let home = map.home.expect("home");
    assert!(map.warnings.is_empty(), "{:?}", map.warnings);
    // Home sits in a cell; every cell has its worker and department.
    assert!(map.cell_at(home.lat, home.lon).is_some());
    assert!(map
        .cells
        .iter()
        .all(|c| !c.grid_worker.is_empty() && !c.department.is_empty()));
    // The courtyard is a hole: its centre is in no cell, a point beside it is.
    let yard = map
        .cells
        .iter()
        .find(|c| !c.polygon.interiors().is_empty())
        .expect("a cell with a hole");
    let hole = &yard.polygon.interiors()[0].0;
    let (lat, lon) = ((hole[0].y + hole[2].y) / 2.0, (hole[0].x + hole[2].x) / 2.0);
    assert!(map.cell_at(lat, lon).is_none());
    let outer = &yard.polygon.exterior().0[0];
    assert_eq!(
        map.cell_at(outer.y + 1e-5, outer.x + 1e-5)
            .map(|c| c.id.as_str()),
        Some(yard.id.as_str())
    );
    assert!(map.cell_at(0.0, 0.0).is_none());
    let z = &map.no_fly[0];
    let c = &z.polygon.exterior().0[0];
    let centre = z
        .polygon
        .exterior()
        .0
        .iter()
        .fold((0.0, 0.0), |a, p| (a.0 + p.y, a.1 + p.x));
    let n = z.polygon.exterior().0.len() as f64;
    assert!(map.in_no_fly(centre.0 / n, centre.1 / n).is_some());
    assert!(map.in_no_fly(c.y + 0.01, c.x).is_none());
}

#[test]
fn gcj02_input_lands_within_half_a_metre_of_the_wgs84_cells() {
    let text = std::fs::read_to_string(sample_path()).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let shift = |p: &mut Value| {
        let (lon, lat) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
        let (glat, glon) = wgs84_to_gcj02(lat, lon);
        *p = json!([glon, glat]);
    };
    for f in v["features"].as_array_mut().unwrap() {
        match f["geometry"]["type"].as_str() {
            Some("Point") => shift(&mut f["geometry"]["coordinates"]),
            Some("LineString") => f["geometry"]["coordinates"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .for_each(shift),
            _ => {
                for ring in f["geometry"]["coordinates"].as_array_mut().unwrap() {
                    ring.as_array_mut().unwrap().iter_mut().for_each(shift);
                }
            }
        }
    }
    let wgs = GridMap::load(&sample_path(), Datum::Wgs84).unwrap();
    let gcj = GridMap::from_geojson(&v.to_string(), Datum::Gcj02).unwrap();
    for (a, b) in wgs.cells.iter().zip(&gcj.cells) {
        for (p, q) in a.polygon.exterior().0.iter().zip(&b.polygon.exterior().0) {
            let dn = (p.y - q.y) * 111_320.0;
            let de = (p.x - q.x) * 111_320.0 * p.y.to_radians().cos();
            assert!(
                (dn * dn + de * de).sqrt() < 0.5,
                "{} off by {dn} m N, {de} m E",
                a.id
            );
        }
    }
    assert_eq!(wgs.roads.len(), 10, "the sample district's streets");
    for (a, b) in wgs.roads.iter().zip(&gcj.roads) {
        for (p, q) in a.line.0.iter().zip(&b.line.0) {
            let dn = (p.y - q.y) * 111_320.0;
            let de = (p.x - q.x) * 111_320.0 * p.y.to_radians().cos();
            assert!((dn * dn + de * de).sqrt() < 0.5, "street {}", a.name);
        }
    }
}

#[test]
fn a_street_that_is_not_a_line_is_named() {
    let doc = r#"{"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"kind": "grid", "grid_id": "A"},
         "geometry": {"type": "Polygon", "coordinates": [[[103.0, 36.0], [103.001, 36.0], [103.001, 36.001], [103.0, 36.001], [103.0, 36.0]]]}},
        {"type": "Feature", "properties": {"kind": "road", "name": "学府路"},
         "geometry": {"type": "Point", "coordinates": [103.0, 36.0]}}]}"#;
    let e = GridMap::from_geojson(doc, Datum::Wgs84).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("学府路") && text.contains("road must be a LineString, found Point"),
        "{text}"
    );
}

#[test]
fn bad_geojson_says_so() {
    let e = GridMap::from_geojson("{not json", Datum::Wgs84).unwrap_err();
    assert!(matches!(e, GridError::Parse(_)), "{e}");
    let e = GridMap::from_geojson(r#"{"type": "Point", "coordinates": [1, 2]}"#, Datum::Wgs84)
        .unwrap_err();
    assert!(
        e.to_string().contains("expected a FeatureCollection"),
        "{e}"
    );
    assert_eq!(load(vec![]).unwrap_err(), GridError::Empty);
}

#[test]
fn a_non_polygon_geometry_is_named() {
    let line = json!({"type": "Feature", "properties": {"grid_id": "WQ-7"}, "geometry": {"type": "LineString", "coordinates": [[103.68, 36.56], [103.69, 36.57]]}});
    let e = err(vec![cell("WQ-1", square(36.56, 103.68, 0.001)), line]);
    assert_eq!(
        e,
        "feature 1 (WQ-7): geometry is LineString, expected Polygon"
    );
}

#[test]
fn out_of_range_and_swapped_coordinates_get_a_hint() {
    let swapped = json!([
        [36.56, 103.68],
        [36.561, 103.68],
        [36.561, 103.681],
        [36.56, 103.68]
    ]);
    let e = err(vec![cell("A", swapped)]);
    assert!(e.contains("feature 0 (A)") && e.contains("swapped"), "{e}");
    let metres = json!([
        [500000.0, 4046000.0],
        [500100.0, 4046000.0],
        [500100.0, 4046100.0],
        [500000.0, 4046000.0]
    ]);
    assert!(err(vec![cell("B", metres)]).contains("projected metres"));
}

#[test]
fn unclosed_and_too_short_rings_are_refused() {
    let open = json!([
        [103.68, 36.56],
        [103.681, 36.56],
        [103.681, 36.561],
        [103.68, 36.561]
    ]);
    assert!(err(vec![cell("A", open)]).contains("outer ring is not closed"));
    let short = json!([[103.68, 36.56], [103.681, 36.56], [103.68, 36.56]]);
    assert!(err(vec![cell("A", short)]).contains("has 3 positions"));
}

#[test]
fn a_self_intersecting_ring_is_refused() {
    let bowtie = json!([
        [103.68, 36.56],
        [103.681, 36.561],
        [103.681, 36.56],
        [103.68, 36.561],
        [103.68, 36.56]
    ]);
    let e = err(vec![cell("BT", bowtie)]);
    assert!(
        e.contains("feature 0 (BT): outer ring crosses itself"),
        "{e}"
    );
}

#[test]
fn a_clockwise_ring_is_fixed_with_a_warning() {
    let cw = json!([
        [103.68, 36.56],
        [103.68, 36.561],
        [103.681, 36.561],
        [103.681, 36.56],
        [103.68, 36.56]
    ]);
    let map = load(vec![cell("CW", cw)]).unwrap();
    assert_eq!(map.warnings.len(), 1);
    assert!(map.warnings[0].contains("feature 0 (CW)") && map.warnings[0].contains("clockwise"));
    assert!(map.cell_at(36.5605, 103.6805).is_some());
    // 0.001° × 0.001° is 111.3 m north by 89.4 m east here: about 9,950 m².
    let expected = 111.32 * 111.32 * 36.5605f64.to_radians().cos();
    assert!(
        (map.cells[0].area_m2 - expected).abs() < 20.0,
        "{}",
        map.cells[0].area_m2
    );
}

#[test]
fn duplicate_ids_name_both_features() {
    let e = load(vec![
        cell("X", square(36.56, 103.68, 0.001)),
        cell("X", square(36.57, 103.68, 0.001)),
    ])
    .unwrap_err();
    assert_eq!(
        e,
        GridError::DuplicateId {
            id: "X".into(),
            first: 0,
            second: 1
        }
    );
}

#[test]
fn overlapping_cells_are_refused_and_touching_ones_are_not() {
    let e = err(vec![
        cell("A", square(36.56, 103.68, 0.001)),
        cell("B", square(36.5605, 103.6805, 0.001)),
    ]);
    assert!(e.starts_with("cells A and B overlap by"), "{e}");
    load(vec![
        cell("A", square(36.56, 103.68, 0.001)),
        cell("B", square(36.56, 103.681, 0.001)),
    ])
    .unwrap();
}

#[test]
fn a_cell_far_from_the_others_hints_at_coordinates_or_datum() {
    let e = err(vec![
        cell("A", square(36.56, 103.68, 0.001)),
        cell("B", square(36.57, 103.68, 0.001)),
        cell("C", square(39.90, 116.40, 0.001)),
    ]);
    assert!(e.starts_with("cell C is") && e.contains("datum"), "{e}");
}
