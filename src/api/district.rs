//! The district through the API: its cells, no-fly zones, dock and hotspots as GeoJSON
//! (WGS-84, or GCJ-02 for Chinese web maps), grid files checked before they are used, a
//! patrol's plan previewed without flying it, and the fleet's live state.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use geo::CoordsIter;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::patrols::patrol_from;
use super::{ApiError, ApiResult, ErrorBody};
use crate::grid::{Datum, GridCell, GridMap};
use crate::plan::Sortie;
use crate::schedule::service::Service;
use crate::schedule::PatrolDef;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DatumQuery {
    /// `wgs84` (default) or `gcj02` (AMap, Tencent and other Chinese web maps).
    datum: Option<String>,
}

fn datum(q: &DatumQuery) -> Result<Datum, ApiError> {
    q.datum
        .as_deref()
        .map_or(Ok(Datum::Wgs84), str::parse)
        .map_err(ApiError::bad_request)
}

/// A ring as GeoJSON positions ([lon, lat]) in `datum`.
fn ring(poly: &geo::Polygon<f64>, datum: Datum) -> Vec<Vec<[f64; 2]>> {
    std::iter::once(poly.exterior())
        .chain(poly.interiors())
        .map(|r| {
            r.coords_iter()
                .map(|c| {
                    let (lat, lon) = datum.from_wgs84(c.y, c.x);
                    [lon, lat]
                })
                .collect()
        })
        .collect()
}

fn cell_feature(c: &GridCell, datum: Datum) -> Value {
    json!({
        "type": "Feature",
        "id": c.id,
        "geometry": {"type": "Polygon", "coordinates": ring(&c.polygon, datum)},
        "properties": {"layer": "cell", "cell": c},
    })
}

/// The district as one FeatureCollection: each feature's `properties.layer` is `cell`,
/// `no_fly`, `road`, `home` or `hotspot`.
fn district_geojson(map: &GridMap, datum: Datum) -> Value {
    let point = |lat: f64, lon: f64| {
        let (lat, lon) = datum.from_wgs84(lat, lon);
        json!({"type": "Point", "coordinates": [lon, lat]})
    };
    let mut features: Vec<Value> = map.cells.iter().map(|c| cell_feature(c, datum)).collect();
    features.extend(map.no_fly.iter().map(|z| {
        json!({
            "type": "Feature",
            "id": z.id,
            "geometry": {"type": "Polygon", "coordinates": ring(&z.polygon, datum)},
            "properties": {"layer": "no_fly", "id": z.id, "name": z.name},
        })
    }));
    features.extend(map.roads.iter().map(|r| {
        let line: Vec<[f64; 2]> = r
            .line
            .points()
            .map(|p| {
                let (lat, lon) = datum.from_wgs84(p.y(), p.x());
                [lon, lat]
            })
            .collect();
        json!({"type": "Feature", "geometry": {"type": "LineString", "coordinates": line},
               "properties": {"layer": "road", "name": r.name}})
    }));
    features.extend(map.hotspots.iter().map(|h| {
        json!({"type": "Feature", "id": h.id, "geometry": point(h.lat, h.lon),
               "properties": {"layer": "hotspot", "hotspot": h}})
    }));
    if let Some(h) = map.home {
        features.push(
            json!({"type": "Feature", "id": "home", "geometry": point(h.lat, h.lon),
                             "properties": {"layer": "home", "alt_m": h.alt_m}}),
        );
    }
    json!({"type": "FeatureCollection", "datum": datum, "features": features})
}

#[utoipa::path(
    get,
    path = "/api/v1/grids",
    tag = "district",
    params(DatumQuery),
    responses(
        (status = 200, description = "viewer: a GeoJSON FeatureCollection of the cells (with their grid workers), no-fly zones, hotspots and the dock", body = Object),
        (status = 400, description = "An unknown datum", body = ErrorBody)
    )
)]
pub async fn grids(State(s): State<Arc<Service>>, Query(q): Query<DatumQuery>) -> ApiResult {
    Ok(Json(district_geojson(s.map(), datum(&q)?)))
}

#[utoipa::path(
    get,
    path = "/api/v1/grids/{id}",
    tag = "district",
    params(("id" = String, Path, description = "Cell id"), DatumQuery),
    responses(
        (status = 200, description = "viewer: one cell as a GeoJSON Feature", body = Object),
        (status = 404, description = "No such cell", body = ErrorBody)
    )
)]
pub async fn grid(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
    Query(q): Query<DatumQuery>,
) -> ApiResult {
    let d = datum(&q)?;
    let cell = s
        .map()
        .cells
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no cell {id:?} in the district")))?;
    Ok(Json(cell_feature(cell, d)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanPreview {
    /// The sorties as they would be flown from the district's dock.
    #[schema(value_type = Vec<Object>)]
    pub sorties: Vec<Sortie>,
    /// Total route length, metres.
    pub length_m: f64,
    /// Total flight time, seconds.
    pub flight_time_s: f64,
    pub photos: u32,
    /// One LineString per sortie and the dock, in the asked datum.
    #[schema(value_type = Object)]
    pub geojson: Value,
}

#[utoipa::path(
    post,
    path = "/api/v1/plans/preview",
    tag = "district",
    params(DatumQuery),
    request_body = PatrolDef,
    responses(
        (status = 200, description = "viewer: the patrol checked against the district and planned from its dock, nothing flown or stored", body = PlanPreview),
        (status = 400, description = "Malformed, not valid for the district, or not plannable (the reason is named)", body = ErrorBody)
    )
)]
pub async fn preview_plan(
    State(s): State<Arc<Service>>,
    Query(q): Query<DatumQuery>,
    body: Result<Json<PatrolDef>, JsonRejection>,
) -> ApiResult<PlanPreview> {
    let d = datum(&q)?;
    let def = patrol_from(&s, body)?;
    let opts = def
        .plan_options()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let svc = s.clone();
    let plan = tokio::task::spawn_blocking(move || {
        crate::plan::plan_coverage(svc.map(), &def.cells, &opts)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::bad_request(format!("not plannable: {e}")))?;
    Ok(Json(PlanPreview {
        length_m: plan.sorties.iter().map(|s| s.length_m).sum(),
        flight_time_s: plan.sorties.iter().map(|s| s.flight_time_s).sum(),
        photos: plan.sorties.iter().map(|s| s.photos).sum(),
        geojson: crate::plan::export::geojson(&plan, d),
        sorties: plan.sorties,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VehicleList {
    /// Each vehicle's live state: link, mode, armed, position, battery, mission progress.
    #[schema(value_type = Vec<Object>)]
    pub vehicles: Vec<crate::vehicle::Telemetry>,
}

#[utoipa::path(
    get,
    path = "/api/v1/vehicles",
    tag = "vehicles",
    responses((status = 200, description = "viewer: the fleet's live state", body = VehicleList))
)]
pub async fn vehicles(State(s): State<Arc<Service>>) -> ApiResult<VehicleList> {
    let vehicles = s
        .fleet()
        .sysids()
        .into_iter()
        .filter_map(|id| s.fleet().vehicle(id))
        .map(|v| v.telemetry())
        .collect();
    Ok(Json(VehicleList { vehicles }))
}
