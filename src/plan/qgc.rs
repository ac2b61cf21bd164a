//! QGroundControl's .plan format (fileType "Plan", version 1): mission, geofence and
//! rally points, as QGroundControl writes and opens it.

use serde_json::{json, Value};

use crate::grid::{Home, NoFlyZone};
use crate::vehicle::MissionItem;

/// PX4 in QGroundControl's MAV_AUTOPILOT numbering, and a multicopter (MAV_TYPE_QUADROTOR).
const FIRMWARE_PX4: u8 = 12;
const VEHICLE_QUAD: u8 = 2;

fn ring(polygon: &geo::Polygon<f64>) -> Value {
    // QGC polygons are [lat, lon] pairs without the closing repeat.
    let pts = &polygon.exterior().0;
    Value::Array(
        pts[..pts.len().saturating_sub(1)]
            .iter()
            .map(|c| json!([c.y, c.x]))
            .collect(),
    )
}

/// A .plan document for one sortie: its items, its inclusion fence and an exclusion
/// fence for each no-fly zone.
pub fn plan_json(
    items: &[MissionItem],
    home: Home,
    speed_mps: f64,
    inclusion: &geo::Polygon<f64>,
    no_fly: &[NoFlyZone],
) -> Value {
    let items: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let mut v = serde_json::to_value(it).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("type".into(), json!("SimpleItem"));
                m.insert("doJumpId".into(), json!(i + 1));
                m.insert("AMSLAltAboveTerrain".into(), Value::Null);
                m.insert("Altitude".into(), json!(it.z));
                m.insert("AltitudeMode".into(), json!(1));
            }
            v
        })
        .collect();
    // fenceAction 2 (hold) is QGroundControl's default, which newer QGroundControl
    // versions require on every fence polygon (QGCFencePolygon::loadFromJson).
    let mut polygons = vec![
        json!({"inclusion": true, "polygon": ring(inclusion), "version": 1, "fenceAction": 2}),
    ];
    polygons.extend(
        no_fly
            .iter()
            .map(|z| {
                json!({"inclusion": false, "polygon": ring(&z.polygon), "version": 1, "fenceAction": 2})
            }),
    );
    json!({
        "fileType": "Plan",
        "version": 1,
        "groundStation": "gridpatrol",
        "mission": {
            "version": 2,
            "firmwareType": FIRMWARE_PX4,
            // Altitudes relative to home, as every item here is.
            "globalPlanAltitudeMode": 1,
            "vehicleType": VEHICLE_QUAD,
            "cruiseSpeed": speed_mps,
            "hoverSpeed": 5,
            "plannedHomePosition": [home.lat, home.lon, home.alt_m],
            "items": items,
        },
        "geoFence": {"version": 2, "circles": [], "polygons": polygons},
        "rallyPoints": {"version": 2, "points": []},
    })
}

/// The mission items of a .plan document (SimpleItems only).
pub fn items_from_plan(doc: &Value) -> Result<Vec<MissionItem>, String> {
    if doc.get("fileType").and_then(Value::as_str) != Some("Plan") {
        return Err("not a QGroundControl plan: fileType is not \"Plan\"".into());
    }
    let items = doc
        .pointer("/mission/items")
        .and_then(Value::as_array)
        .ok_or("plan has no mission.items")?;
    items
        .iter()
        .enumerate()
        .map(|(i, it)| match it.get("type").and_then(Value::as_str) {
            Some("SimpleItem") => {
                serde_json::from_value(it.clone()).map_err(|e| format!("item {i}: {e}"))
            }
            Some(other) => Err(format!(
                "item {i}: {other} items are not supported yet (only SimpleItem)"
            )),
            None => Err(format!("item {i}: no type")),
        })
        .collect()
}

/// The geofence of a .plan document as fence items (polygon vertices with their count in
/// param1, circles with their radius), in QGroundControl's upload order.
pub fn fence_from_plan(doc: &Value) -> Result<Vec<MissionItem>, String> {
    let mut items = Vec::new();
    let fence = doc.get("geoFence");
    let polygons = fence
        .and_then(|f| f.get("polygons"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, p) in polygons.iter().enumerate() {
        let inclusion = p.get("inclusion").and_then(Value::as_bool).unwrap_or(true);
        let pts = p
            .get("polygon")
            .and_then(Value::as_array)
            .ok_or(format!("fence polygon {i} has no points"))?;
        if pts.len() < 3 {
            return Err(format!(
                "fence polygon {i} has {} points; a polygon needs 3",
                pts.len()
            ));
        }
        for v in pts {
            let (Some(lat), Some(lon)) = (
                v.get(0).and_then(Value::as_f64),
                v.get(1).and_then(Value::as_f64),
            ) else {
                return Err(format!("fence polygon {i}: {v} is not [lat, lon]"));
            };
            let mut it = MissionItem::waypoint(lat, lon, 0.0);
            it.command = if inclusion { 5001 } else { 5002 };
            it.params = [pts.len() as f32, 0.0, 0.0, 0.0];
            items.push(it);
        }
    }
    let circles = fence
        .and_then(|f| f.get("circles"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, c) in circles.iter().enumerate() {
        let centre = c
            .pointer("/circle/center")
            .and_then(Value::as_array)
            .ok_or(format!("fence circle {i} has no center"))?;
        let radius = c
            .pointer("/circle/radius")
            .and_then(Value::as_f64)
            .ok_or(format!("fence circle {i} has no radius"))?;
        let (Some(lat), Some(lon)) = (
            centre.first().and_then(Value::as_f64),
            centre.get(1).and_then(Value::as_f64),
        ) else {
            return Err(format!("fence circle {i}: center is not [lat, lon]"));
        };
        let inclusion = c.get("inclusion").and_then(Value::as_bool).unwrap_or(true);
        let mut it = MissionItem::waypoint(lat, lon, 0.0);
        it.command = if inclusion { 5003 } else { 5004 };
        it.params = [radius as f32, 0.0, 0.0, 0.0];
        items.push(it);
    }
    Ok(items)
}
