//! Patrol definitions through the API: read by any token, made, replaced and deleted by an
//! admin, checked against the district before anything is written.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::auth::{Principal, Role};
use super::{need, ApiError, ApiResult, ErrorBody};
use crate::schedule::book::PatrolChange;
use crate::schedule::service::Service;
use crate::schedule::{PatrolDef, Run};

/// A patrol and when it fires next.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PatrolEntry {
    pub definition: PatrolDef,
    /// RFC 3339; none when nothing is due (disabled, or no firing left).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next: Option<DateTime<Utc>>,
    /// Who made and changed it through the API (one patrol's read only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<PatrolChange>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PatrolList {
    pub patrols: Vec<PatrolEntry>,
}

#[utoipa::path(
    get,
    path = "/api/v1/patrols",
    tag = "patrols",
    responses((status = 200, description = "viewer: every patrol with its next firing", body = PatrolList))
)]
pub async fn list(State(s): State<Arc<Service>>) -> ApiResult<PatrolList> {
    let upcoming = s.scheduler().upcoming(s.now());
    let patrols = s
        .scheduler()
        .patrols()
        .into_iter()
        .map(|d| {
            let next = upcoming
                .iter()
                .find(|(n, _)| *n == d.name)
                .and_then(|(_, t)| *t);
            PatrolEntry {
                definition: d,
                next,
                changes: None,
            }
        })
        .collect();
    Ok(Json(PatrolList { patrols }))
}

#[utoipa::path(
    get,
    path = "/api/v1/patrols/{name}",
    tag = "patrols",
    params(("name" = String, Path, description = "The patrol's name")),
    responses(
        (status = 200, description = "viewer: the patrol, its next firing and who changed it through the API", body = PatrolEntry),
        (status = 404, description = "No such patrol", body = ErrorBody)
    )
)]
pub async fn get(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> ApiResult<PatrolEntry> {
    let definition = s
        .scheduler()
        .patrol(&name)
        .ok_or_else(|| ApiError::not_found(format!("no patrol {name:?}")))?;
    let next = s
        .scheduler()
        .upcoming(s.now())
        .into_iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, t)| t);
    let changes = Some(s.book().patrol_changes(&name)?);
    Ok(Json(PatrolEntry {
        definition,
        next,
        changes,
    }))
}

/// A patrol definition from a request body, checked against the district: malformed JSON,
/// an unknown field, a bad schedule or a cell not in the district is a 400 naming it.
pub(super) fn patrol_from(
    s: &Service,
    body: Result<Json<PatrolDef>, JsonRejection>,
) -> Result<PatrolDef, ApiError> {
    let Json(def) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    def.validate(Some(&s.cells())).map_err(|e| {
        let mut err = ApiError::bad_request(e.to_string());
        err.details = json!({"patrol": e.patrol, "field": e.field, "problem": e.problem});
        err
    })?;
    Ok(def)
}

/// Stores `def` with who did what to it, and puts it in the scheduler.
fn save_patrol(s: &Service, def: PatrolDef, action: &str, holder: &str) -> Result<bool, ApiError> {
    s.book()
        .save_patrol(&def, action, holder, crate::events::now_us())?;
    s.scheduler()
        .put(def)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PatrolBody {
    pub definition: PatrolDef,
}

#[utoipa::path(
    post,
    path = "/api/v1/patrols",
    tag = "patrols",
    request_body = PatrolDef,
    responses(
        (status = 201, description = "admin: made, and scheduled", body = PatrolBody),
        (status = 400, description = "Malformed, or not valid for the district (the field is named)", body = ErrorBody),
        (status = 409, description = "A patrol of that name exists", body = ErrorBody)
    )
)]
pub async fn create(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    body: Result<Json<PatrolDef>, JsonRejection>,
) -> Result<(StatusCode, Json<PatrolBody>), ApiError> {
    need(&p, Role::Admin)?;
    let def = patrol_from(&s, body)?;
    if s.scheduler().patrol(&def.name).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "exists",
            format!(
                "patrol {:?} exists: PUT /api/v1/patrols/{} to change it",
                def.name, def.name
            ),
        ));
    }
    save_patrol(&s, def.clone(), "created", &p.holder)?;
    tracing::info!(patrol = %def.name, by = %p.holder, "patrol created");
    Ok((StatusCode::CREATED, Json(PatrolBody { definition: def })))
}

#[utoipa::path(
    put,
    path = "/api/v1/patrols/{name}",
    tag = "patrols",
    params(("name" = String, Path, description = "The patrol's name, as in the body")),
    request_body = PatrolDef,
    responses(
        (status = 200, description = "admin: replaced (or made)", body = PatrolBody),
        (status = 400, description = "Malformed, not valid, or another name than the path's", body = ErrorBody)
    )
)]
pub async fn replace(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    body: Result<Json<PatrolDef>, JsonRejection>,
) -> ApiResult<PatrolBody> {
    need(&p, Role::Admin)?;
    let def = patrol_from(&s, body)?;
    if def.name != name {
        return Err(ApiError::bad_request(format!(
            "the body names patrol {:?}, the path {name:?}",
            def.name
        )));
    }
    save_patrol(&s, def.clone(), "replaced", &p.holder)?;
    tracing::info!(patrol = %def.name, by = %p.holder, "patrol replaced");
    Ok(Json(PatrolBody { definition: def }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/patrols/{name}",
    tag = "patrols",
    params(("name" = String, Path, description = "The patrol's name")),
    responses(
        (status = 204, description = "admin: deleted; its runs stay"),
        (status = 404, description = "No such patrol", body = ErrorBody)
    )
)]
pub async fn delete(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    need(&p, Role::Admin)?;
    if !s.scheduler().remove(&name) {
        return Err(ApiError::not_found(format!("no patrol {name:?}")));
    }
    s.book()
        .delete_patrol(&name, &p.holder, crate::events::now_us())?;
    tracing::info!(patrol = %name, by = %p.holder, "patrol deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/patrols/{name}/runs",
    tag = "runs",
    params(("name" = String, Path, description = "The patrol to run now")),
    responses(
        (status = 201, description = "operator: a run booked now (FlightHub 2's immediate task)", body = Run),
        (status = 404, description = "No such patrol", body = ErrorBody)
    )
)]
pub async fn start_run(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    need(&p, Role::Operator)?;
    let run = s
        .start_now(&name, &p.holder)?
        .ok_or_else(|| ApiError::not_found(format!("no patrol {name:?}")))?;
    Ok((StatusCode::CREATED, Json(run)))
}
