//! Alerts through the API: raised by an operator's token (a camera system, the hotline's
//! bridge, the grid platform's webhook), listed and read by any token.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::auth::{Principal, Role};
use super::{blocking, need, path_id, ApiError, ApiResult, ErrorBody};
use crate::alert::{Alert, AlertRequest, SceneTimes};
use crate::schedule::service::Service;

/// An alert with its time to scene and its parts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertDetail {
    #[serde(flatten)]
    pub alert: Alert,
    pub times: SceneTimes,
}

impl From<Alert> for AlertDetail {
    fn from(alert: Alert) -> Self {
        let times = alert.scene_times();
        Self { alert, times }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertList {
    pub alerts: Vec<AlertDetail>,
}

#[utoipa::path(
    post,
    path = "/api/v1/alerts",
    tag = "alerts",
    request_body = AlertRequest,
    responses(
        (status = 201, description = "operator: the alert, dispatched at once (en_route), waiting for a busy fleet (dispatching), merged into an open alert for the same place (merged), or refused with each vehicle's reason (refused)", body = AlertDetail),
        (status = 400, description = "Malformed, an unknown category or source, or a point outside the district or in a no-fly zone", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody)
    )
)]
pub async fn raise(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    body: Result<Json<AlertRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<AlertDetail>), ApiError> {
    need(&p, Role::Operator)?;
    let Json(req) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let holder = p.holder.clone();
    let a = blocking(move || s.raise_alert(&req, &holder)).await?;
    tracing::info!(alert = a.id, state = a.state.as_str(), by = %p.holder, "alert raised");
    Ok((StatusCode::CREATED, Json(a.into())))
}

#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    tag = "alerts",
    responses((status = 200, description = "viewer: the newest 200 alerts, newest first", body = AlertList))
)]
pub async fn list(State(s): State<Arc<Service>>) -> ApiResult<AlertList> {
    let alerts = blocking(move || s.alerts().list(200)).await?;
    Ok(Json(AlertList {
        alerts: alerts.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/alerts/{id}",
    tag = "alerts",
    params(("id" = i64, Path, description = "Alert id")),
    responses(
        (status = 200, description = "viewer: the alert, its state and reason, its run, the events linked to it and its time to scene", body = AlertDetail),
        (status = 404, description = "No such alert", body = ErrorBody)
    )
)]
pub async fn get(State(s): State<Arc<Service>>, Path(id): Path<String>) -> ApiResult<AlertDetail> {
    let id = path_id(&id, "an alert id")?;
    let a = blocking(move || s.alerts().get(id)).await?;
    Ok(Json(a.into()))
}
