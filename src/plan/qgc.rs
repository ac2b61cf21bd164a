//! QGroundControl's .plan format (fileType "Plan", version 1): mission, geofence and
//! rally points, as QGroundControl writes and opens it.

use serde_json::{json, Value};

use crate::grid::Home;
use crate::vehicle::MissionItem;

/// PX4 in QGroundControl's MAV_AUTOPILOT numbering, and a multicopter (MAV_TYPE_QUADROTOR).
const FIRMWARE_PX4: u8 = 12;
const VEHICLE_QUAD: u8 = 2;

/// QGroundControl's geoFence polygons and circles for fence items (the inverse of
/// [`fence_from_plan`]): consecutive vertices of one polygon, circles one item each.
fn fence_json(fence: &[MissionItem]) -> (Vec<Value>, Vec<Value>) {
    // fenceAction 2 (hold) is QGroundControl's default, which newer QGroundControl
    // versions require on every fence polygon (QGCFencePolygon::loadFromJson).
    let (mut polygons, mut circles) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < fence.len() {
        let it = &fence[i];
        match it.command {
            5001 | 5002 => {
                let n = (it.params[0].max(1.0) as usize).min(fence.len() - i);
                let pts: Vec<Value> = fence[i..i + n]
                    .iter()
                    .map(|v| json!([v.lat(), v.lon()]))
                    .collect();
                polygons.push(json!({"inclusion": it.command == 5001, "polygon": pts, "version": 1, "fenceAction": 2}));
                i += n;
            }
            5003 | 5004 => {
                circles.push(json!({
                    "inclusion": it.command == 5003,
                    "version": 1,
                    "circle": {"center": [it.lat(), it.lon()], "radius": it.params[0]},
                }));
                i += 1;
            }
            _ => i += 1,
        }
    }
    (polygons, circles)
}

/// A .plan document for one sortie: its items and its geofence items.
pub fn plan_json(
    items: &[MissionItem],
    home: Home,
    speed_mps: f64,
    fence: &[MissionItem],
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
    let (polygons, circles) = fence_json(fence);
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
        "geoFence": {"version": 2, "circles": circles, "polygons": polygons},
        "rallyPoints": {"version": 2, "points": []},
    })
}

/// The mission items of a .plan document (SimpleItems only).
/// A mission file as `mission upload` takes it: a QGroundControl `.plan` (its mission,
/// and its geofence when it has one), a `{"mission_type": …, "items": […]}` plan, or a
/// bare list of items.
pub fn mission_file(text: &str) -> Result<Vec<crate::vehicle::MissionPlan>, String> {
    use crate::vehicle::{MissionPlan, MissionType};
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if value.get("fileType").is_some() {
        let mut v = vec![MissionPlan {
            mission_type: MissionType::Mission,
            items: items_from_plan(&value)?,
        }];
        let fence = fence_from_plan(&value)?;
        if !fence.is_empty() {
            v.push(MissionPlan {
                mission_type: MissionType::Fence,
                items: fence,
            });
        }
        return Ok(v);
    }
    if let Ok(p) = serde_json::from_value::<MissionPlan>(value.clone()) {
        return Ok(vec![p]);
    }
    let items = serde_json::from_value(value)
        .map_err(|e| format!("not a .plan, a mission plan or an item list: {e}"))?;
    Ok(vec![MissionPlan {
        mission_type: MissionType::Mission,
        items,
    }])
}

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
