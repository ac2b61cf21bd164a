//! QGroundControl's .plan format (fileType "Plan", version 1): mission, geofence and
//! rally points, as QGroundControl writes and opens it.

use serde_json::{json, Value};

use crate::grid::{GridCell, Home, NoFlyZone};
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

/// A .plan document for one sortie: its items, an inclusion fence around its cells and
/// an exclusion fence for each no-fly zone.
pub fn plan_json(
    items: &[MissionItem],
    home: Home,
    speed_mps: f64,
    fence_cells: &[&GridCell],
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
    let mut polygons: Vec<Value> = fence_cells
        .iter()
        .map(|c| json!({"inclusion": true, "polygon": ring(&c.polygon), "version": 1}))
        .collect();
    polygons.extend(
        no_fly
            .iter()
            .map(|z| json!({"inclusion": false, "polygon": ring(&z.polygon), "version": 1})),
    );
    json!({
        "fileType": "Plan",
        "version": 1,
        "groundStation": "gridpatrol",
        "mission": {
            "version": 2,
            "firmwareType": FIRMWARE_PX4,
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
