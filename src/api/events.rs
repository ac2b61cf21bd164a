//! Grid events through the API: listed, read with their photos and audit trail, and moved
//! through the closed loop (sign, dispatch, start, transfer, resolve, evaluate, close) by
//! grid workers in their own cells and by operators anywhere; their images; the figures.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::{Principal, Role};
use super::{blocking, need, parse_opt, path_id, ApiError, ApiResult, ErrorBody};
use crate::events::store::{AuditEntry, Evidence, Stats, StoreError};
use crate::events::{Action, GridEvent};
use crate::schedule::service::Service;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events in this state (reported, signed_for, dispatched, in_progress,
    /// transferred, resolved, evaluated, closed).
    state: Option<String>,
    /// Only this category (piled_objects, out_of_store_business, mobile_vendor,
    /// bike_parking, illegal_poster, crowd, garbage, fire_smoke).
    category: Option<String>,
    /// Only this cell's.
    cell: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventList {
    pub events: Vec<GridEvent>,
}

/// Whether `p` may see an event in `cell`: a grid worker sees their own cells' only.
fn sees(p: &Principal, cell: Option<&String>) -> bool {
    p.role != Role::GridWorker || cell.is_some_and(|c| p.cells.contains(c))
}

#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(EventQuery),
    responses(
        (status = 200, description = "viewer: events (merged duplicates left out); a grid worker gets their own cells' only", body = EventList),
        (status = 400, description = "A bad filter", body = ErrorBody)
    )
)]
pub async fn list(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    Query(q): Query<EventQuery>,
) -> ApiResult<EventList> {
    let state = parse_opt(q.state.as_deref())?;
    let category = parse_opt(q.category.as_deref())?;
    let store = s.book().store().clone();
    let mut events = blocking(move || store.list(state, category, q.cell.as_deref())).await?;
    events.retain(|e| sees(&p, e.cell_id.as_ref()));
    Ok(Json(EventList { events }))
}

fn event_id(id: &str) -> Result<i64, ApiError> {
    path_id(id, "an event id")
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventDetail {
    pub event: GridEvent,
    /// Every lifecycle transition: who, when, from and to, with the note.
    pub audit: Vec<AuditEntry>,
    /// Every photo that showed it (images at /api/v1/images/{capture_id}).
    pub photos: Vec<Evidence>,
}

/// The event, or 403 for a grid worker outside its cell.
fn visible(p: &Principal, ev: GridEvent) -> Result<GridEvent, ApiError> {
    if sees(p, ev.cell_id.as_ref()) {
        Ok(ev)
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("event {} is not in {}'s cells", ev.id, p.holder),
        ))
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    tag = "events",
    params(("id" = i64, Path, description = "Event id")),
    responses(
        (status = 200, description = "viewer (a grid worker: their cells'): the event, its audit trail and photos", body = EventDetail),
        (status = 403, description = "A grid worker asking outside their cells", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody)
    )
)]
pub async fn get(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<EventDetail> {
    let id = event_id(&id)?;
    let store = s.book().store().clone();
    let (event, audit, photos) = blocking(move || {
        Ok::<_, StoreError>((store.get(id)?, store.audit(id)?, store.evidence(id)?))
    })
    .await?;
    let event = visible(&p, event)?;
    Ok(Json(EventDetail {
        event,
        audit,
        photos,
    }))
}

/// An action on an event, with the actor's note.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ActionRequest {
    /// `{"action": "sign"}`, `{"action": "dispatch", "department": …, "handler": …,
    /// "deadline_hours": …}`, `{"action": "start"}`, `{"action": "transfer", …}`,
    /// `{"action": "resolve", "feedback": …, "photos": […]}`, `{"action": "evaluate",
    /// "rating": 1-5}`, `{"action": "close"}`.
    #[serde(flatten)]
    pub action: Action,
    #[serde(default)]
    pub note: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/events/{id}/actions",
    tag = "events",
    params(("id" = i64, Path, description = "Event id")),
    request_body = ActionRequest,
    responses(
        (status = 200, description = "grid_worker (their cells) or operator: the event in its new state; audited with the token's holder and queued for the platform", body = GridEvent),
        (status = 400, description = "Malformed, or a bad value (e.g. a rating of 7)", body = ErrorBody),
        (status = 403, description = "A viewer, or a grid worker outside their cells", body = ErrorBody),
        (status = 409, description = "Not allowed from the event's state (the allowed states are named)", body = ErrorBody)
    )
)]
pub async fn act(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: Result<Json<ActionRequest>, JsonRejection>,
) -> ApiResult<GridEvent> {
    need(&p, Role::GridWorker)?;
    let id = event_id(&id)?;
    let Json(req) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let store = s.book().store().clone();
    let ev = blocking(move || store.get(id)).await?;
    visible(&p, ev)?;
    let store = s.book().store().clone();
    let holder = p.holder.clone();
    let ev =
        blocking(move || store.apply(id, &req.action, &holder, &req.note, crate::events::now_us()))
            .await?;
    tracing::info!(event = id, state = %ev.state.as_str(), by = %p.holder, "event moved");
    Ok(Json(ev))
}

#[utoipa::path(
    get,
    path = "/api/v1/images/{capture_id}",
    tag = "events",
    params(("capture_id" = i64, Path, description = "The capture whose image to send")),
    responses(
        (status = 200, description = "viewer: the JPEG as the drone took it", content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, description = "No such capture, or its image is not fetched yet", body = ErrorBody)
    )
)]
pub async fn image(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "a capture id")?;
    let store = s.book().store().clone();
    let sha = blocking(move || store.capture_image(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("capture {id} has no image (yet)")))?;
    let svc = s.clone();
    let bytes = tokio::task::spawn_blocking(move || svc.images().get(&sha))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::not_found(format!("capture {id}'s image: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            // Stored by content hash: it never changes.
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable",
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiStats {
    /// The closed loop's figures, as the city reports them.
    pub events: Stats,
    /// Runs by state.
    pub runs: BTreeMap<String, usize>,
    /// Alerts by outcome, and their time to scene.
    pub alerts: crate::alert::AlertStats,
}

#[utoipa::path(
    get,
    path = "/api/v1/stats",
    tag = "events",
    responses((status = 200, description = "viewer: events by state, category and cell, closure rate, share found by drones, overdue, median hours to close; runs by state; alerts by outcome with their median and 90th-percentile time to scene", body = ApiStats))
)]
pub async fn stats(State(s): State<Arc<Service>>) -> ApiResult<ApiStats> {
    let store = s.book().store().clone();
    let events = blocking(move || store.stats(crate::events::now_us())).await?;
    let runs = s
        .book()
        .count_by_state()?
        .into_iter()
        .map(|(st, n)| (st.as_str().to_string(), n))
        .collect();
    let alerts = blocking(move || s.alerts().stats()).await?;
    Ok(Json(ApiStats {
        events,
        runs,
        alerts,
    }))
}

/// An event seen on foot, reported by hand (网格员上报).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualReport {
    pub category: crate::detect::Category,
    /// WGS-84 degrees.
    pub lat: f64,
    pub lon: f64,
}

#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "events",
    request_body = ManualReport,
    responses(
        (status = 201, description = "grid_worker (in their cells) or operator: the event, filed in the cell holding the point, reported by the token's holder", body = GridEvent),
        (status = 400, description = "Malformed, an unknown category or a point that is not a position", body = ErrorBody),
        (status = 403, description = "A viewer, or a grid worker reporting outside their cells", body = ErrorBody)
    )
)]
pub async fn report(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    body: Result<Json<ManualReport>, JsonRejection>,
) -> Result<(StatusCode, Json<GridEvent>), ApiError> {
    need(&p, Role::GridWorker)?;
    let Json(r) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let cell = s.map().cell_at(r.lat, r.lon).map(|c| c.id.clone());
    if !sees(&p, cell.as_ref()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{},{} is in {}, not in {}'s cells",
                r.lat,
                r.lon,
                cell.as_deref().unwrap_or("no cell"),
                p.holder
            ),
        ));
    }
    let store = s.book().store().clone();
    let holder = p.holder.clone();
    let ev = blocking(move || {
        store.report_manual(
            r.category,
            r.lat,
            r.lon,
            cell,
            &holder,
            crate::events::now_us(),
        )
    })
    .await?;
    tracing::info!(event = ev.id, by = %p.holder, "event reported by hand");
    Ok((StatusCode::CREATED, Json(ev)))
}
