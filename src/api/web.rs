//! The command centre's page (一张图), served at `/`: static files embedded in the binary
//! (so `serve` alone is enough) and the page's configuration. The page itself talks to
//! `/api/v1` with the token its user signs in with.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// What the page needs to know before sign-in.
#[derive(Clone, Debug, Serialize)]
pub struct WebConfig {
    /// A base-map tile URL (`{z}/{x}/{y}` template); none: the district alone is drawn.
    pub tiles: Option<String>,
    /// The datum of those tiles: Chinese web maps are in GCJ-02, and what is drawn over
    /// them is shifted to match.
    pub tiles_datum: crate::grid::Datum,
    /// Attribution shown with the tiles.
    pub tiles_attribution: String,
    /// Telemetry samples per second per vehicle on the live stream (at most 10).
    pub telemetry_hz: f64,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            tiles: None,
            tiles_datum: crate::grid::Datum::Wgs84,
            tiles_attribution: String::new(),
            telemetry_hz: 2.0,
        }
    }
}

/// The embedded files: path, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("../../web/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/app.js"),
    ),
    (
        "/app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/app.css"),
    ),
    (
        "/vendor/leaflet/leaflet.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/vendor/leaflet/leaflet.js"),
    ),
    (
        "/vendor/leaflet/leaflet.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/vendor/leaflet/leaflet.css"),
    ),
    (
        "/vendor/leaflet/LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../../web/vendor/leaflet/LICENSE"),
    ),
    (
        "/vendor/leaflet/images/layers.png",
        "image/png",
        include_bytes!("../../web/vendor/leaflet/images/layers.png"),
    ),
    (
        "/vendor/leaflet/images/layers-2x.png",
        "image/png",
        include_bytes!("../../web/vendor/leaflet/images/layers-2x.png"),
    ),
    (
        "/vendor/leaflet/images/marker-icon.png",
        "image/png",
        include_bytes!("../../web/vendor/leaflet/images/marker-icon.png"),
    ),
    (
        "/vendor/leaflet/images/marker-icon-2x.png",
        "image/png",
        include_bytes!("../../web/vendor/leaflet/images/marker-icon-2x.png"),
    ),
    (
        "/vendor/leaflet/images/marker-shadow.png",
        "image/png",
        include_bytes!("../../web/vendor/leaflet/images/marker-shadow.png"),
    ),
];

fn file(kind: &'static str, body: &'static [u8]) -> Response {
    // The page is small and changes with the binary: revalidate each load.
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The page's routes: its files and `/config.json`, none needing a token.
pub fn routes<S: Clone + Send + Sync + 'static>(config: WebConfig) -> Router<S> {
    let mut r = Router::new();
    for &(path, kind, body) in FILES {
        r = r.route(path, get(move || async move { file(kind, body) }));
    }
    let mut config = config;
    config.telemetry_hz = super::stream::telemetry_hz(config.telemetry_hz);
    r.route(
        "/config.json",
        get(move || std::future::ready(Json(config.clone()))),
    )
}
