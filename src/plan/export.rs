//! Exporting a plan's sorties as GeoJSON or KML, in WGS-84 or GCJ-02.

use serde_json::{json, Value};

use super::route::Plan;
use crate::grid::Datum;

/// The path each sortie flies: home, every waypoint, home; (lat, lon) degrees in `datum`.
fn paths(plan: &Plan, datum: Datum) -> Vec<Vec<(f64, f64)>> {
    let h = datum.from_wgs84(plan.home.lat, plan.home.lon);
    plan.sorties
        .iter()
        .map(|s| {
            let mut p = vec![h];
            p.extend(
                s.items
                    .iter()
                    .filter(|i| i.command == 16)
                    .map(|i| datum.from_wgs84(i.lat(), i.lon())),
            );
            p.push(h);
            p
        })
        .collect()
}

/// A FeatureCollection: one LineString per sortie and the home point.
pub fn geojson(plan: &Plan, datum: Datum) -> Value {
    let mut features: Vec<Value> = paths(plan, datum)
        .into_iter()
        .zip(&plan.sorties)
        .enumerate()
        .map(|(i, (path, s))| {
            json!({
                "type": "Feature",
                "properties": {
                    "sortie": i + 1, "cells": s.cells, "length_m": s.length_m.round(),
                    "flight_time_s": s.flight_time_s.round(), "photos": s.photos, "datum": datum,
                },
                "geometry": {"type": "LineString", "coordinates": path.iter().map(|p| json!([p.1, p.0])).collect::<Vec<_>>()},
            })
        })
        .collect();
    let h = datum.from_wgs84(plan.home.lat, plan.home.lon);
    features.push(json!({"type": "Feature", "properties": {"kind": "home"}, "geometry": {"type": "Point", "coordinates": [h.1, h.0]}}));
    json!({"type": "FeatureCollection", "features": features})
}

/// A KML document: one Placemark LineString per sortie.
pub fn kml(plan: &Plan, datum: Datum) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<kml xmlns=\"http://www.opengis.net/kml/2.2\"><Document>\n");
    for (i, (path, s)) in paths(plan, datum)
        .into_iter()
        .zip(&plan.sorties)
        .enumerate()
    {
        let coords: Vec<String> = path
            .iter()
            .map(|p| format!("{:.7},{:.7},{:.1}", p.1, p.0, plan.survey.altitude_m))
            .collect();
        out.push_str(&format!(
            "<Placemark><name>sortie {}</name><description>{} ({:.0} m, {} photos)</description><LineString><altitudeMode>relativeToGround</altitudeMode><coordinates>{}</coordinates></LineString></Placemark>\n",
            i + 1,
            s.cells.join(", "),
            s.length_m,
            s.photos,
            coords.join(" ")
        ));
    }
    out.push_str("</Document></kml>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::GridMap;
    use crate::plan::{plan_coverage, PlanOptions};

    #[test]
    fn geojson_and_kml_carry_every_sortie_in_the_asked_datum() {
        let map = GridMap::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("missions/wenqu.geojson"),
            Datum::Wgs84,
        )
        .unwrap();
        let plan = plan_coverage(&map, &["WQ-24".into()], &PlanOptions::default()).unwrap();
        let w = geojson(&plan, Datum::Wgs84);
        let g = geojson(&plan, Datum::Gcj02);
        assert_eq!(
            w["features"].as_array().unwrap().len(),
            plan.sorties.len() + 1
        );
        let (lw, lg) = (
            &w["features"][0]["geometry"]["coordinates"][1],
            &g["features"][0]["geometry"]["coordinates"][1],
        );
        let (lat, lon) = (lw[1].as_f64().unwrap(), lw[0].as_f64().unwrap());
        let (glat, glon) = crate::grid::wgs84_to_gcj02(lat, lon);
        assert!(
            (lg[0].as_f64().unwrap() - glon).abs() < 1e-9
                && (lg[1].as_f64().unwrap() - glat).abs() < 1e-9
        );
        let k = kml(&plan, Datum::Wgs84);
        assert_eq!(k.matches("<Placemark>").count(), plan.sorties.len());
        // Our own KML reader does not take LineStrings as cells, but the XML must parse.
        assert!(crate::grid::kml_to_geojson(&k).is_ok());
    }
}
