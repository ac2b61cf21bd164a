//! The HTTP API of `gridpatrol serve` (axum), versioned under `/api/v1`, JSON in and out.
//! Routes only shape requests and answers over the library: the scheduler's service, the
//! run book, the fleet and the event store. Every error has one shape:
//! `{"code": "...", "message": "...", "details": ...}`. Everything under `/api/v1` needs a
//! bearer token ([`auth`]); only `/healthz` and `/readyz` answer without one.

pub mod auth;
pub mod metrics;
pub mod stream;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Extension, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::schedule::service::Service;
use crate::schedule::{RunError, RunFilter, RunState};
use auth::{Principal, Role, Throttle};
use stream::{Item, LiveStream};

/// An error as the API answers it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    fn bad_request(what: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", what)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"code": self.code, "message": self.message, "details": self.details})),
        )
            .into_response()
    }
}

impl From<RunError> for ApiError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::NoRun(id) => ApiError::not_found(format!("no run {id}")),
            RunError::Illegal { .. } => {
                ApiError::new(StatusCode::CONFLICT, "illegal_transition", e.to_string())
            }
            RunError::Leased { .. } => ApiError::new(StatusCode::CONFLICT, "leased", e.to_string()),
            RunError::Sql(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string())
            }
        }
    }
}

impl From<crate::events::store::StoreError> for ApiError {
    fn from(e: crate::events::store::StoreError) -> Self {
        use crate::events::store::StoreError;
        match e {
            StoreError::NoEvent(id) => ApiError::not_found(format!("no event {id}")),
            StoreError::IllegalTransition { .. } => {
                ApiError::new(StatusCode::CONFLICT, "illegal_transition", e.to_string())
            }
            StoreError::Invalid(m) => ApiError::bad_request(m),
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()),
        }
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// An optional query value parsed, or a 400 naming it.
fn parse_opt<T: std::str::FromStr<Err = String>>(v: Option<&str>) -> Result<Option<T>, ApiError> {
    v.map(str::parse).transpose().map_err(ApiError::bad_request)
}

/// Refused unless the caller's role allows `needed`.
fn need(p: &Principal, needed: Role) -> Result<(), ApiError> {
    if p.role.allows(needed) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} is a {}; this needs {}",
                p.holder,
                p.role.as_str(),
                needed.as_str()
            ),
        ))
    }
}

#[derive(Clone)]
struct AuthState {
    service: Arc<Service>,
    throttle: Arc<Throttle>,
}

/// Checks the bearer token and hands the caller on as a [`Principal`]; a client that
/// keeps sending bad tokens is refused for a while (429).
async fn authenticate(
    State(a): State<AuthState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let ip = peer.ip();
    if a.throttle.blocked(ip) {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_bad_tokens",
            "too many bad tokens from this address; wait a minute",
        )
        .into_response();
    }
    let token = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let Some(token) = token else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "an API token is needed: Authorization: Bearer gp_… (gridpatrol token create)",
        )
        .into_response();
    };
    let store = a.service.book().store().clone();
    match tokio::task::spawn_blocking(move || auth::verify(&store, &token)).await {
        Ok(Ok(Some(p))) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Ok(Ok(None)) => {
            a.throttle.failed(ip);
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the token is unknown or revoked",
            )
            .into_response()
        }
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            .into_response(),
    }
}

/// The routes, over `service`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` (the throttle keys on the
/// client's address).
pub fn router(service: Arc<Service>, live: Arc<LiveStream>) -> Router {
    let auth_state = AuthState {
        service: service.clone(),
        throttle: Arc::new(Throttle::new(10, std::time::Duration::from_secs(60))),
    };
    let api = Router::new()
        .route("/api/v1/patrols", get(patrols))
        .route("/api/v1/patrols", post(create_patrol))
        .route(
            "/api/v1/patrols/{name}",
            get(patrol).put(replace_patrol).delete(delete_patrol),
        )
        .route("/api/v1/patrols/{name}/runs", post(start_run))
        .route("/api/v1/runs", get(runs))
        .route("/api/v1/runs/{id}", get(run))
        .route("/api/v1/runs/{id}/cancel", post(cancel_run))
        .route("/api/v1/vehicles", get(vehicles))
        .route("/api/v1/events", get(events))
        .route("/api/v1/events/{id}", get(event))
        .route("/api/v1/stream", get(live_stream))
        .route("/metrics", get(prometheus))
        .fallback(|| async { ApiError::not_found("no such route") })
        .route_layer(axum::middleware::from_fn_with_state(
            auth_state,
            authenticate,
        ))
        .layer(Extension(live));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(api)
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(service)
}

async fn readyz() -> Json<Value> {
    Json(json!({"ready": true}))
}

async fn patrols(State(s): State<Arc<Service>>) -> ApiResult {
    let now = s.now();
    let upcoming = s.scheduler().upcoming(now);
    let list: Vec<Value> = s
        .scheduler()
        .patrols()
        .into_iter()
        .map(|d| {
            let next = upcoming
                .iter()
                .find(|(n, _)| *n == d.name)
                .and_then(|(_, t)| *t);
            json!({"definition": d, "next": next})
        })
        .collect();
    Ok(Json(json!({ "patrols": list })))
}

async fn patrol(State(s): State<Arc<Service>>, Path(name): Path<String>) -> ApiResult {
    let d = s
        .scheduler()
        .patrol(&name)
        .ok_or_else(|| ApiError::not_found(format!("no patrol {name:?}")))?;
    let next = s
        .scheduler()
        .upcoming(s.now())
        .into_iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, t)| t);
    Ok(Json(json!({"definition": d, "next": next})))
}

async fn start_run(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    need(&p, Role::Operator)?;
    let run = s
        .start_now(&name, &p.holder)?
        .ok_or_else(|| ApiError::not_found(format!("no patrol {name:?}")))?;
    Ok((StatusCode::CREATED, Json(json!(run))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunQuery {
    patrol: Option<String>,
    state: Option<String>,
    sysid: Option<u8>,
    limit: Option<usize>,
}

async fn runs(State(s): State<Arc<Service>>, Query(q): Query<RunQuery>) -> ApiResult {
    let state: Option<RunState> = parse_opt(q.state.as_deref())?;
    let runs = s.book().list(&RunFilter {
        patrol: q.patrol,
        state,
        sysid: q.sysid,
        limit: Some(q.limit.unwrap_or(200).min(1000)),
        ..Default::default()
    })?;
    Ok(Json(json!({ "runs": runs })))
}

fn run_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a run id")))
}

async fn run(State(s): State<Arc<Service>>, Path(id): Path<String>) -> ApiResult {
    let id = run_id(&id)?;
    let run = s.book().get(id)?;
    let changes = s.book().changes(id)?;
    Ok(Json(json!({"run": run, "changes": changes})))
}

async fn cancel_run(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult {
    need(&p, Role::Operator)?;
    let run = s.cancel(run_id(&id)?, &p.holder)?;
    Ok(Json(json!(run)))
}

async fn vehicles(State(s): State<Arc<Service>>) -> ApiResult {
    let list: Vec<Value> = s
        .fleet()
        .sysids()
        .into_iter()
        .filter_map(|id| s.fleet().vehicle(id))
        .map(|v| json!(v.telemetry()))
        .collect();
    Ok(Json(json!({ "vehicles": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    state: Option<String>,
    category: Option<String>,
    cell: Option<String>,
}

async fn events(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    Query(q): Query<EventQuery>,
) -> ApiResult {
    let state = parse_opt(q.state.as_deref())?;
    let category = parse_opt(q.category.as_deref())?;
    let store = s.book().store().clone();
    let mut list =
        tokio::task::spawn_blocking(move || store.list(state, category, q.cell.as_deref()))
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })??;
    // A grid worker sees the events of their own cells only.
    if p.role == Role::GridWorker {
        list.retain(|e| e.cell_id.as_ref().is_some_and(|c| p.cells.contains(c)));
    }
    Ok(Json(json!({ "events": list })))
}

async fn event(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not an event id")))?;
    let store = s.book().store().clone();
    let (ev, audit) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::events::store::StoreError>((store.get(id)?, store.audit(id)?))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    if p.role == Role::GridWorker && !ev.cell_id.as_ref().is_some_and(|c| p.cells.contains(c)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("event {id} is not in {}'s cells", p.holder),
        ));
    }
    Ok(Json(json!({"event": ev, "audit": audit})))
}

/// `GET /api/v1/stream`: Server-Sent Events of telemetry, run and event changes, resumable
/// with `Last-Event-ID`. A grid worker gets the events of their own cells only.
async fn live_stream(
    Extension(live): Extension<Arc<LiveStream>>,
    Extension(p): Extension<Principal>,
    headers: axum::http::HeaderMap,
) -> axum::response::sse::Sse<
    impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::StreamExt;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    let (replay, lost, rx) = live.subscribe(last);
    let reset = || Item {
        id: 0,
        kind: "reset",
        data: json!({"message": "some changes were missed: read the current state again"}),
    };
    let head = futures_util::stream::iter(lost.then(reset).into_iter().chain(replay));
    let tail = futures_util::stream::unfold(rx, move |mut rx| async move {
        match rx.recv().await {
            Ok(i) => Some((i, rx)),
            // Fell behind: say so, and go on from here.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some((reset(), rx)),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    });
    let mine = move |i: &Item| {
        p.role != Role::GridWorker
            || i.kind != "event"
            || i.data["cell_id"]
                .as_str()
                .is_some_and(|c| p.cells.iter().any(|m| m == c))
    };
    let events = head
        .chain(tail)
        .filter(move |i| std::future::ready(mine(i)))
        .map(|i| {
            let e = Event::default().event(i.kind).data(i.data.to_string());
            Ok(if i.id > 0 { e.id(i.id.to_string()) } else { e })
        });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// `GET /metrics` (a viewer's token: Prometheus sends it as its bearer token).
async fn prometheus(State(s): State<Arc<Service>>) -> Response {
    match tokio::task::spawn_blocking(move || metrics::render(&s)).await {
        Ok(Ok(text)) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Ok(Err(e)) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e).into_response()
        }
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            .into_response(),
    }
}

/// A patrol definition from a request body, checked against the district: malformed JSON,
/// an unknown field, a bad schedule or a cell not in the district is a 400 naming it.
fn patrol_from(
    s: &Service,
    body: Result<Json<crate::schedule::PatrolDef>, axum::extract::rejection::JsonRejection>,
) -> Result<crate::schedule::PatrolDef, ApiError> {
    let Json(def) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    def.validate(Some(&s.cells())).map_err(|e| {
        let mut err = ApiError::bad_request(e.to_string());
        err.details = json!({"patrol": e.patrol, "field": e.field, "problem": e.problem});
        err
    })?;
    Ok(def)
}

/// Stores `def` and puts it in the scheduler.
fn save_patrol(s: &Service, def: crate::schedule::PatrolDef) -> Result<bool, ApiError> {
    s.book().save_patrol(&def, crate::events::now_us())?;
    s.scheduler()
        .put(def)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn create_patrol(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    body: Result<Json<crate::schedule::PatrolDef>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    save_patrol(&s, def.clone())?;
    tracing::info!(patrol = %def.name, by = %p.holder, "patrol created");
    Ok((StatusCode::CREATED, Json(json!({ "definition": def }))))
}

async fn replace_patrol(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    body: Result<Json<crate::schedule::PatrolDef>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    need(&p, Role::Admin)?;
    let def = patrol_from(&s, body)?;
    if def.name != name {
        return Err(ApiError::bad_request(format!(
            "the body names patrol {:?}, the path {name:?}",
            def.name
        )));
    }
    save_patrol(&s, def.clone())?;
    tracing::info!(patrol = %def.name, by = %p.holder, "patrol replaced");
    Ok(Json(json!({ "definition": def })))
}

async fn delete_patrol(
    State(s): State<Arc<Service>>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    need(&p, Role::Admin)?;
    if !s.scheduler().remove(&name) {
        return Err(ApiError::not_found(format!("no patrol {name:?}")));
    }
    s.book().delete_patrol(&name)?;
    tracing::info!(patrol = %name, by = %p.holder, "patrol deleted");
    Ok(StatusCode::NO_CONTENT)
}
