//! Photos: render each capture, store the JPEG, record the ground truth beside it, serve
//! it over HTTP on 127.0.0.1, and announce it with CAMERA_IMAGE_CAPTURED (component 100).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use mavlink::dialects::common::{MavBool, MavMessage, CAMERA_IMAGE_CAPTURED_DATA};
use mavlink::types::CharArray;
use serde::Serialize;

use crate::camera::{to_jpeg, Camera, Pose, Seen};
use crate::vehicle::CaptureRequest;
use crate::world::World;

/// Ground truth of one image (for tests and accuracy figures only).
#[derive(Debug, Serialize)]
struct Truth<'a> {
    sysid: u8,
    index: i32,
    file: String,
    t: f64,
    true_pose: Pose,
    objects: &'a [Seen],
}

/// The camera service shared by a fleet's vehicles.
pub struct PhotoService {
    pub camera: Camera,
    pub world: Arc<World>,
    pub dir: PathBuf,
    /// e.g. `http://127.0.0.1:40123`
    pub base_url: String,
    /// Microseconds since the Unix epoch at simulated time zero.
    pub epoch_us: u64,
    /// Publish companion-computer detections beside each image.
    pub companion: bool,
    /// Announce `mftp://` URLs (MAVLink FTP on the camera) instead of `http://`.
    pub mftp: bool,
    truth: Mutex<std::fs::File>,
}

impl PhotoService {
    /// Creates the image directory and starts the HTTP server on `bind`.
    pub async fn start(
        camera: Camera,
        world: Arc<World>,
        dir: PathBuf,
        bind: SocketAddr,
        companion: bool,
        mftp: bool,
    ) -> std::io::Result<Arc<Self>> {
        std::fs::create_dir_all(&dir)?;
        let truth = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("ground_truth.jsonl"))?;
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .route("/images/{sysid}/{file}", get(serve))
            .with_state(Arc::new(dir.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let epoch_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        Ok(Arc::new(Self {
            camera,
            world,
            dir,
            base_url: format!("http://{addr}"),
            epoch_us,
            companion,
            mftp,
            truth: Mutex::new(truth),
        }))
    }

    /// Renders and stores one capture; returns its CAMERA_IMAGE_CAPTURED.
    pub fn take(&self, sysid: u8, c: &CaptureRequest) -> std::io::Result<MavMessage> {
        let pose = Pose {
            lat: c.lat,
            lon: c.lon,
            height_m: c.alt - self.world.ground_alt_m,
            roll: c.roll,
            pitch: c.pitch,
            yaw: c.yaw,
        };
        let (rgb, seen) = self.camera.render(&pose, &self.world);
        let jpeg = to_jpeg(&rgb, self.camera.width, self.camera.height, 90)
            .map_err(std::io::Error::other)?;
        let name = format!("{:06}.jpg", c.index);
        let dir = self.dir.join(sysid.to_string());
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(&name), jpeg)?;
        if self.companion {
            // What an onboard detector reports: the objects at least half in the picture.
            let found: Vec<serde_json::Value> = seen
                .iter()
                .filter(|s| s.visible >= 0.5)
                .map(|s| {
                    serde_json::json!({
                        "category": s.category,
                        "confidence": 0.9,
                        "bbox": s.bbox,
                    })
                })
                .collect();
            std::fs::write(
                dir.join(format!("{name}.json")),
                serde_json::to_vec(&serde_json::json!({ "detections": found }))?,
            )?;
        }
        let truth = Truth {
            sysid,
            index: c.index,
            file: format!("{sysid}/{name}"),
            t: c.t,
            true_pose: pose,
            objects: &seen,
        };
        if let (Ok(mut f), Ok(line)) = (self.truth.lock(), serde_json::to_string(&truth)) {
            writeln!(f, "{line}")?;
        }
        let url = if self.mftp {
            // QGroundControl's form for a file on a vehicle component.
            format!("mftp://[;comp=100]/images/{name}")
        } else {
            format!("{}/images/{sysid}/{name}", self.base_url)
        };
        let mut url_bytes = [0u8; 205];
        let n = url.len().min(205);
        url_bytes[..n].copy_from_slice(&url.as_bytes()[..n]);
        Ok(MavMessage::CAMERA_IMAGE_CAPTURED(
            CAMERA_IMAGE_CAPTURED_DATA {
                time_utc: self.epoch_us + (c.t * 1e6) as u64,
                time_boot_ms: (c.t * 1000.0) as u32,
                lat: (c.reported_lat * 1e7).round() as i32,
                lon: (c.reported_lon * 1e7).round() as i32,
                alt: (c.reported_alt * 1000.0).round() as i32,
                relative_alt: (c.reported_rel_alt * 1000.0).round() as i32,
                q: c.reported_q,
                image_index: c.index,
                camera_id: 0,
                capture_result: MavBool::MAV_BOOL_TRUE,
                file_url: CharArray::new(url_bytes),
            },
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

async fn serve(
    State(dir): State<Arc<PathBuf>>,
    UrlPath((sysid, file)): UrlPath<(u8, String)>,
) -> impl IntoResponse {
    // Only our own names: six digits and .jpg (or .jpg.json), so no path can escape the
    // directory.
    let ok = (file.len() == 10 && file.ends_with(".jpg")
        || file.len() == 15 && file.ends_with(".jpg.json"))
        && file[..6].bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain")],
            Vec::new(),
        );
    }
    match tokio::fs::read(dir.join(sysid.to_string()).join(&file)).await {
        Ok(bytes) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                if file.ends_with(".json") {
                    "application/json"
                } else {
                    "image/jpeg"
                },
            )],
            bytes,
        ),
        Err(_) => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain")],
            Vec::new(),
        ),
    }
}
