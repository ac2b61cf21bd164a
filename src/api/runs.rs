//! Runs through the API: listed and read by any token; started, cancelled, paused and
//! resumed by an operator; each with its media (photos and the events they showed) and its
//! track, as FlightHub 2 keeps them per task.

use std::sync::Arc;

use axum::extract::{Extension, Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::{Principal, Role};
use super::{blocking, need, parse_opt, path_id, ApiError, ApiResult, ErrorBody};
use crate::events::store::{RunPhoto, TrackPoint};
use crate::schedule::service::{capture_run_key, Service};
use crate::schedule::{Run, RunChange, RunFilter, RunState};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Only this patrol's runs.
    patrol: Option<String>,
    /// Only runs in this state (waiting, preparing, executing, paused, success,
    /// failed_to_start, skipped, terminated, timeout, partially_done).
    state: Option<String>,
    /// Only runs flown by this vehicle.
    sysid: Option<u8>,
    /// At most this many (default 200, at most 1000).
    limit: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RunList {
    pub runs: Vec<Run>,
}

#[utoipa::path(
    get,
    path = "/api/v1/runs",
    tag = "runs",
    params(RunQuery),
    responses(
        (status = 200, description = "viewer: runs, oldest planned first", body = RunList),
        (status = 400, description = "A bad filter", body = ErrorBody)
    )
)]
pub async fn list(State(s): State<Arc<Service>>, Query(q): Query<RunQuery>) -> ApiResult<RunList> {
    let state: Option<RunState> = parse_opt(q.state.as_deref())?;
    let runs = s.book().list(&RunFilter {
        patrol: q.patrol,
        state,
        sysid: q.sysid,
        limit: Some(q.limit.unwrap_or(200).min(1000)),
        ..Default::default()
    })?;
    Ok(Json(RunList { runs }))
}

fn run_id(id: &str) -> Result<i64, ApiError> {
    path_id(id, "a run id")
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RunDetail {
    pub run: Run,
    /// Every change of its state, with the reason.
    pub changes: Vec<RunChange>,
}

#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id")),
    responses(
        (status = 200, description = "viewer: the run and its history", body = RunDetail),
        (status = 404, description = "No such run", body = ErrorBody)
    )
)]
pub async fn get(State(s): State<Arc<Service>>, Path(id): Path<String>) -> ApiResult<RunDetail> {
    let id = run_id(&id)?;
    let run = s.book().get(id)?;
    let changes = s.book().changes(id)?;
    Ok(Json(RunDetail { run, changes }))
}

#[utoipa::path(
    post,
    path = "/api/v1/runs/{id}/cancel",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id")),
    responses(
        (status = 200, description = "operator: a queued run is terminated; one in the air returns, lands and then ends terminated", body = Run),
        (status = 409, description = "It has ended", body = ErrorBody)
    )
)]
pub async fn cancel(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Run> {
    need(&p, Role::Operator)?;
    Ok(Json(s.cancel(run_id(&id)?, &p.holder)?))
}

#[utoipa::path(
    post,
    path = "/api/v1/runs/{id}/pause",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id")),
    responses(
        (status = 200, description = "operator: held; a vehicle flying it returns to its dock and lands, keeping where it stopped", body = Run),
        (status = 409, description = "It has ended", body = ErrorBody)
    )
)]
pub async fn pause(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Run> {
    need(&p, Role::Operator)?;
    Ok(Json(s.pause(run_id(&id)?, &p.holder)?))
}

#[utoipa::path(
    post,
    path = "/api/v1/runs/{id}/resume",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id")),
    responses(
        (status = 200, description = "operator: let go; it resumes from its breakpoint on the best ready vehicle", body = Run),
        (status = 409, description = "It is not paused, or has ended", body = ErrorBody)
    )
)]
pub async fn resume(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Run> {
    need(&p, Role::Operator)?;
    Ok(Json(s.resume(run_id(&id)?, &p.holder)?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RunMedia {
    pub run: i64,
    /// In the order taken, by vehicle.
    pub photos: Vec<RunPhoto>,
}

#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}/media",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id")),
    responses(
        (status = 200, description = "viewer: the run's photos and the events each showed (images at /api/v1/images/{capture_id})", body = RunMedia),
        (status = 404, description = "No such run", body = ErrorBody)
    )
)]
pub async fn media(State(s): State<Arc<Service>>, Path(id): Path<String>) -> ApiResult<RunMedia> {
    let run = s.book().get(run_id(&id)?)?;
    let store = s.book().store().clone();
    let key = capture_run_key(&run);
    let mut photos = blocking(move || store.run_media(&key)).await?;
    for p in &mut photos {
        p.footprint = footprint(&s.pipeline().intrinsics_for(p.sysid), p);
    }
    Ok(Json(RunMedia {
        run: run.id,
        photos,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RunTrack {
    pub run: i64,
    /// About one point a second while armed, by vehicle then time.
    pub points: Vec<TrackPoint>,
}

#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}/track",
    tag = "runs",
    params(("id" = i64, Path, description = "Run id")),
    responses(
        (status = 200, description = "viewer: where the run's vehicles flew", body = RunTrack),
        (status = 404, description = "No such run", body = ErrorBody)
    )
)]
pub async fn track(State(s): State<Arc<Service>>, Path(id): Path<String>) -> ApiResult<RunTrack> {
    let run = s.book().get(run_id(&id)?)?;
    let store = s.book().store().clone();
    let key = capture_run_key(&run);
    let points = blocking(move || store.track(&key)).await?;
    Ok(Json(RunTrack {
        run: run.id,
        points,
    }))
}

/// The ground a photo covers: where its four corners' rays meet flat ground at home
/// altitude; none when a corner looks at or above the horizon.
fn footprint(
    k: &crate::geotag::Intrinsics,
    p: &crate::events::store::RunPhoto,
) -> Option<Vec<[f64; 2]>> {
    let pose = crate::geotag::CameraPose {
        lat: p.lat,
        lon: p.lon,
        height_m: p.alt_rel,
        q: p.q,
    };
    let acc = crate::geotag::PoseAccuracy::default();
    let (w, h) = (f64::from(k.width), f64::from(k.height));
    [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
        .into_iter()
        .map(|(u, v)| {
            crate::geotag::locate(k, &pose, &acc, u, v)
                .ok()
                .map(|g| [g.lat, g.lon])
        })
        .collect()
}
