//! The HTTP API of `gridpatrol serve` (axum), versioned under `/api/v1`, JSON in and out.
//! Routes only shape requests and answers over the library: the scheduler's service, the
//! run book, the fleet and the event store. Every error has one shape:
//! `{"code": "...", "message": "...", "details": ...}`. Everything under `/api/v1` needs a
//! bearer token ([`auth`]); only `/healthz` and `/readyz` answer without one.

mod alerts;
pub mod auth;
mod district;
mod events;
pub mod metrics;
mod patrols;
mod runs;
pub mod stream;
pub mod web;

pub use events::{ActionRequest, ManualReport};

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Extension, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::schedule::service::Service;
use crate::schedule::RunError;
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

    fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

/// The one shape of every error the API answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable: `bad_request`, `not_found`, `forbidden`, `illegal_transition`, …
    pub code: String,
    /// For people: what was wrong, naming the field or item.
    pub message: String,
    /// More, where there is more (e.g. the field of a patrol definition).
    #[schema(value_type = Object)]
    pub details: Value,
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
            RunError::NotHeld(_) => {
                ApiError::new(StatusCode::CONFLICT, "not_paused", e.to_string())
            }
            RunError::Ended { .. } => ApiError::new(StatusCode::CONFLICT, "ended", e.to_string()),
            RunError::Db(_) | RunError::Alert(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string())
            }
        }
    }
}

impl From<crate::alert::AlertError> for ApiError {
    fn from(e: crate::alert::AlertError) -> Self {
        use crate::alert::AlertError;
        match e {
            AlertError::Invalid(m) => ApiError::bad_request(m),
            AlertError::NoAlert(id) => ApiError::not_found(format!("no alert {id}")),
            AlertError::Store(e) => e.into(),
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

type ApiResult<T = Value> = Result<Json<T>, ApiError>;

/// Runs `f` (blocking: SQLite, files) off the async workers.
async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(Into::into)
}

/// An optional query value parsed, or a 400 naming it.
fn parse_opt<T: std::str::FromStr<Err = String>>(v: Option<&str>) -> Result<Option<T>, ApiError> {
    v.map(str::parse).transpose().map_err(ApiError::bad_request)
}

/// A numeric id from the path, or a 400 saying it is not `what` ("a run id").
fn path_id(id: &str, what: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not {what}")))
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

/// The API's description, completed from the handlers' `#[utoipa::path]`s.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "gridpatrol serve",
        description = "Scheduled drone patrols over a district's grid cells, and the grid events their photos become. Every route needs `Authorization: Bearer <token>` (`gridpatrol token create`); each says the least role it needs: viewer < grid_worker < operator < admin. Times are µs since the Unix epoch unless said otherwise; positions WGS-84 degrees."
    ),
    modifiers(&BearerToken),
    security(("token" = [])),
    tags(
        (name = "district", description = "Grid cells, no-fly zones and plan previews"),
        (name = "patrols", description = "Patrol definitions: what to fly and when"),
        (name = "runs", description = "Runs of patrols, their media and tracks"),
        (name = "vehicles", description = "The fleet's live state"),
        (name = "events", description = "Grid events through their closed loop, their photos and statistics"),
        (name = "alerts", description = "Alerts that send the nearest ready drone to a point"),
        (name = "live", description = "Server-Sent Events and metrics"),
    )
)]
struct ApiDoc;

struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "token",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// Every route under `/api/v1` with its OpenAPI description.
fn documented() -> (Router<Arc<Service>>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(district::grids))
        .routes(routes!(district::grid))
        .routes(routes!(district::preview_plan))
        .routes(routes!(district::vehicles))
        .routes(routes!(patrols::list, patrols::create))
        .routes(routes!(patrols::get, patrols::replace, patrols::delete))
        .routes(routes!(patrols::start_run))
        .routes(routes!(runs::list))
        .routes(routes!(runs::get))
        .routes(routes!(runs::cancel))
        .routes(routes!(runs::pause))
        .routes(routes!(runs::resume))
        .routes(routes!(runs::media))
        .routes(routes!(runs::track))
        .routes(routes!(events::list, events::report))
        .routes(routes!(events::get))
        .routes(routes!(events::act))
        .routes(routes!(events::image))
        .routes(routes!(events::stats))
        .routes(routes!(alerts::raise, alerts::list))
        .routes(routes!(alerts::get))
        .routes(routes!(live_stream))
        .routes(routes!(me))
        .routes(routes!(prometheus))
        .split_for_parts()
}

/// The OpenAPI document of this API (3.1), as `/api/v1/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().1
}

/// The routes, over `service`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` (the throttle keys on the
/// client's address).
pub fn router(service: Arc<Service>, live: Arc<LiveStream>, web: web::WebConfig) -> Router {
    let auth_state = AuthState {
        service: service.clone(),
        throttle: Arc::new(Throttle::new(10, std::time::Duration::from_secs(60))),
    };
    let (api, doc) = documented();
    let doc = serde_json::to_value(&doc).unwrap_or_default();
    let api = api
        .route(
            "/api/v1/openapi.json",
            get(move || std::future::ready(Json(doc.clone()))),
        )
        .fallback(|| async { ApiError::not_found("no such route") })
        .route_layer(axum::middleware::from_fn_with_state(
            auth_state,
            authenticate,
        ))
        .layer(Extension(live));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(web::routes(web))
        .merge(api)
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(service)
}

/// Who the token belongs to, for the page: holder, role and a grid worker's cells.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    pub holder: String,
    /// viewer, grid_worker, operator or admin.
    pub role: String,
    pub cells: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "live",
    responses((status = 200, description = "viewer: the token's holder, role and cells", body = Me))
)]
async fn me(Extension(p): Extension<Principal>) -> Json<Me> {
    Json(Me {
        holder: p.holder,
        role: p.role.as_str().to_string(),
        cells: p.cells,
    })
}

async fn readyz() -> Json<Value> {
    Json(json!({"ready": true}))
}

/// The live stream: one SSE event per telemetry sample, run change or event change.
#[utoipa::path(
    get,
    path = "/api/v1/stream",
    tag = "live",
    params(("Last-Event-ID" = Option<u64>, Header, description = "Resume after this id: run and event changes since are replayed (a `reset` event says when some were lost)")),
    responses((status = 200, description = "viewer: `text/event-stream` of `telemetry`, `run`, `event` and `reset` events (a grid worker gets their own cells' events only)", content_type = "text/event-stream", body = String))
)]
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

/// Prometheus's text format (Prometheus sends a viewer's token as its bearer token).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "live",
    responses((status = 200, description = "viewer: vehicles, battery, link quality, runs and events by state, queues", content_type = "text/plain", body = String))
)]
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
        Err(e) => ApiError::internal(e).into_response(),
    }
}
