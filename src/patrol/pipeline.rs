//! The capture → event pipeline: each recorded capture is fetched, stored with GPS EXIF,
//! run through the detector, geotagged, assigned to its cell and filed. Captures are
//! taken from the store, so the pipeline picks up after a restart exactly where it was.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::capture::{exif, fetch::Fetcher, ImageSpec, ImageStore};
use crate::detect::{Detector, Thresholds};
use crate::events::store::{FileOutcome, MergePolicy, PendingCapture, Retry};
use crate::events::{EventStore, FiledDetection, StoreError};
use crate::geotag::{self, CameraPose, Intrinsics, PoseAccuracy};
use crate::grid::GridMap;

/// Fetch attempts before a capture whose image cannot be fetched is reported (it stays
/// pending and keeps being retried with backoff; it is never dropped).
pub const WARN_AFTER_ATTEMPTS: i64 = 3;

pub struct Pipeline {
    pub store: Arc<EventStore>,
    pub images: ImageStore,
    pub fetcher: Fetcher,
    pub detector: Arc<dyn Detector>,
    pub thresholds: Thresholds,
    /// The camera model for vehicles whose camera did not describe itself.
    pub intrinsics: Intrinsics,
    /// Each vehicle's camera as it described itself (CAMERA_INFORMATION).
    pub cameras: std::sync::RwLock<std::collections::HashMap<u8, Intrinsics>>,
    pub accuracy: PoseAccuracy,
    pub map: Arc<GridMap>,
    pub policy: MergePolicy,
    /// Told about each photo and what was filed from it (e.g. the Rerun recorder).
    pub observer: Option<Arc<dyn super::observe::RunObserver>>,
    /// The vehicles, for images served by MAVLink FTP (`mftp://` URLs).
    pub fleet: Option<crate::vehicle::Fleet>,
    /// This controller's name on the captures its workers claim.
    pub holder: String,
}

/// How long a worker's claim on a batch of captures lasts, µs: a controller that dies
/// leaves its batch to the others after this.
const CLAIM_US: i64 = 60_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("capture {sysid}/{index}: fetching {url}: {problem} (will retry)")]
    Fetch {
        sysid: u8,
        index: i32,
        url: String,
        problem: String,
    },
    /// The image could not be written (a full disk): the camera still has it, so it is
    /// fetched again once there is room.
    #[error("capture {sysid}/{index}: storing its image in {dir}: {problem} (will retry)")]
    Storage {
        sysid: u8,
        index: i32,
        dir: String,
        problem: String,
    },
    #[error("capture {sysid}/{index}: {problem} (kept, not filed)")]
    Unusable {
        sysid: u8,
        index: i32,
        problem: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one pass over the due captures did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PassSummary {
    pub processed: usize,
    pub detections: usize,
    pub new_events: usize,
    pub merged: usize,
    pub retrying: usize,
    pub unusable: usize,
    pub errors: Vec<String>,
}

impl PassSummary {
    /// Adds another pass's figures to these.
    pub fn add(&mut self, s: PassSummary) {
        self.processed += s.processed;
        self.detections += s.detections;
        self.new_events += s.new_events;
        self.merged += s.merged;
        self.retrying += s.retrying;
        self.unusable += s.unusable;
        self.errors.extend(s.errors);
    }
}

impl Pipeline {
    /// The camera model photos of vehicle `sysid` are geotagged with: its own
    /// CAMERA_INFORMATION when it gave one, else the configured model.
    pub fn intrinsics_for(&self, sysid: u8) -> Intrinsics {
        self.cameras
            .read()
            .ok()
            .and_then(|m| m.get(&sysid).copied())
            .unwrap_or(self.intrinsics)
    }

    /// Fetches, detects, geotags and files one capture. Blocking.
    pub fn process(&self, p: &PendingCapture, now: i64) -> Result<FileOutcome, ProcessError> {
        let c = &p.capture;
        let unusable = |problem: String| ProcessError::Unusable {
            sysid: c.sysid,
            index: c.index,
            problem,
        };
        let jpeg = match &p.image_sha {
            Some(sha) => self.images.get(sha).map_err(|e| ProcessError::Fetch {
                sysid: c.sysid,
                index: c.index,
                url: c.file_url.clone(),
                problem: format!("stored image {sha} unreadable: {e}"),
            })?,
            None => {
                let fetch_err = |problem: String| ProcessError::Fetch {
                    sysid: c.sysid,
                    index: c.index,
                    url: c.file_url.clone(),
                    problem,
                };
                let raw = if c.file_url.starts_with("mftp://") {
                    self.fetch_mftp(c).map_err(fetch_err)?
                } else {
                    self.fetcher
                        .fetch(&c.file_url)
                        .map_err(|e| fetch_err(e.to_string()))?
                };
                // The image is kept even when it cannot be tagged (a corrupt JPEG).
                let tagged = exif::with_gps(&raw, c.lat, c.lon, c.alt_msl).unwrap_or(raw);
                let sha = self
                    .images
                    .put(&tagged)
                    .map_err(|e| ProcessError::Storage {
                        sysid: c.sysid,
                        index: c.index,
                        dir: self.images.spec().to_string(),
                        problem: e.to_string(),
                    })?;
                self.store.capture_fetched(p.id, &sha)?;
                tagged
            }
        };
        let pose = CameraPose {
            lat: c.lat,
            lon: c.lon,
            height_m: c.alt_rel,
            q: c.q,
        };
        let described = self
            .cameras
            .read()
            .ok()
            .and_then(|m| m.get(&c.sysid).copied());
        let intrinsics = described.unwrap_or(self.intrinsics);
        let k = &intrinsics;
        // A photo of another size than the camera model would be geotagged far off.
        if let Some((w, h)) = crate::capture::jpeg_size(&jpeg) {
            if (w, h) != (k.width, k.height) {
                return Err(unusable(format!(
                    "the photo is {w} x {h} px but the camera model{} is {} x {} px; geotagging it with that model would misplace every finding (give the camera's own model with --camera)",
                    if described.is_some() { " the camera reported" } else { "" },
                    k.width,
                    k.height
                )));
            }
        }
        // The pose must be usable before anything is filed from this photo.
        let centre = geotag::locate(k, &pose, &self.accuracy, k.cx, k.cy)
            .map_err(|e| unusable(format!("pose: {e}")))?;
        let found = self
            .detector
            .detect_capture(&jpeg, &c.file_url)
            .map_err(|e| match e {
                // The drone's list may not be up yet: try again later, like an image.
                crate::detect::DetectError::Companion(problem) => ProcessError::Fetch {
                    sysid: c.sysid,
                    index: c.index,
                    url: c.file_url.clone(),
                    problem,
                },
                e => unusable(e.to_string()),
            })?;
        let mut filed = Vec::new();
        for d in found.into_iter().filter(|d| self.thresholds.passes(d)) {
            let (u, v) = d.centre();
            let Ok(fix) = geotag::locate(k, &pose, &self.accuracy, u, v) else {
                continue; // above the horizon: nothing on the ground to place
            };
            let corner = |x: f32, y: f32| {
                geotag::locate(k, &pose, &self.accuracy, f64::from(x), f64::from(y)).ok()
            };
            let extent_m = match (corner(d.bbox[0], d.bbox[1]), corner(d.bbox[2], d.bbox[3])) {
                (Some(a), Some(b)) => geotag::distance_m(a.lat, a.lon, b.lat, b.lon) / 2.0,
                _ => 0.0,
            };
            let at_edge = d.at_edge(k.width, k.height, 2.0);
            filed.push(FiledDetection {
                detection: d,
                fix,
                at_edge,
                extent_m,
            });
        }
        // Absence counts only well inside the picture: a circle of 35 % of its shorter side.
        let edge = geotag::locate(k, &pose, &self.accuracy, k.cx, 0.0)
            .map(|f| geotag::distance_m(centre.lat, centre.lon, f.lat, f.lon))
            .unwrap_or(0.0);
        let view = Some((centre.lat, centre.lon, 0.7 * edge));
        let map = self.map.clone();
        let cell_of =
            move |lat: f64, lon: f64, r: f64| map.cell_near(lat, lon, r).map(|c| c.id.clone());
        let outcome = self
            .store
            .file_capture(p.id, &filed, view, &cell_of, self.policy, now)?;
        if let Some(o) = &self.observer {
            let (w, h) = (f64::from(k.width), f64::from(k.height));
            let footprint: Vec<(f64, f64)> = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
                .iter()
                .filter_map(|&(u, v)| geotag::locate(k, &pose, &self.accuracy, u, v).ok())
                .map(|f| (f.lat, f.lon))
                .collect();
            o.photo(c, &jpeg, k, &footprint, &filed);
            let touched: Vec<(i64, String, f64, f64)> = outcome
                .new_events
                .iter()
                .chain(&outcome.merged)
                .filter_map(|id| self.store.get(*id).ok())
                .map(|e| (e.id, e.category.as_str().to_string(), e.lat, e.lon))
                .collect();
            o.filed(c, &outcome, &touched);
        }
        Ok(outcome)
    }

    /// The image over MAVLink FTP from the vehicle that took it. Blocking: runs the
    /// transfer on the runtime from this (blocking) thread.
    fn fetch_mftp(&self, c: &crate::capture::Capture) -> Result<Vec<u8>, String> {
        let (comp, path) =
            crate::vehicle::ftp::parse_mftp(&c.file_url).map_err(|e| e.to_string())?;
        let v = self
            .fleet
            .as_ref()
            .and_then(|f| f.vehicle(c.sysid))
            .ok_or_else(|| format!("vehicle {} is not connected for MAVLink FTP", c.sysid))?;
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| "no runtime for MAVLink FTP".to_string())?;
        rt.block_on(v.ftp_read(comp, &path))
            .map_err(|e| e.to_string())
    }

    /// Processes every due capture once. Blocking.
    pub fn drain(&self, now: i64) -> Result<PassSummary, StoreError> {
        self.drain_part(now, 0, 1)
    }

    /// Processes this worker's share (capture id modulo `parts`) of the due captures.
    pub fn drain_part(&self, now: i64, part: u32, parts: u32) -> Result<PassSummary, StoreError> {
        let mut s = PassSummary::default();
        loop {
            let due = self.store.claim_captures(
                &self.holder,
                now,
                crate::events::now_us().max(now) + CLAIM_US,
                16,
                part,
                parts,
            )?;
            if due.is_empty() {
                return Ok(s);
            }
            for p in &due {
                match self.process(p, now.max(crate::events::now_us())) {
                    Ok(o) => {
                        s.processed += 1;
                        s.detections += o.detections;
                        s.new_events += o.new_events.len();
                        s.merged += o.merged.len();
                    }
                    Err(ProcessError::Store(e)) => return Err(e),
                    Err(e @ ProcessError::Fetch { .. }) => {
                        s.retrying += 1;
                        if p.attempts + 1 >= WARN_AFTER_ATTEMPTS {
                            tracing::warn!("{e}");
                        }
                        self.store
                            .capture_failed(p.id, &e.to_string(), Retry::Backoff, now)?;
                        s.errors.push(e.to_string());
                    }
                    Err(e @ ProcessError::Storage { .. }) => {
                        // The operator must act (free space), and the pipeline must notice
                        // soon when they have.
                        s.retrying += 1;
                        tracing::error!("{e}");
                        self.store
                            .capture_failed(p.id, &e.to_string(), Retry::Soon, now)?;
                        s.errors.push(e.to_string());
                    }
                    Err(e @ ProcessError::Unusable { .. }) => {
                        s.unusable += 1;
                        tracing::warn!("{e}");
                        self.store
                            .capture_failed(p.id, &e.to_string(), Retry::Never, now)?;
                        s.errors.push(e.to_string());
                    }
                }
            }
        }
    }

    /// Runs until `stop` turns true, draining whenever `wake` is notified (a capture was
    /// recorded) and at least every `every` (for retries), with one worker per core: each
    /// fetches, detects and geotags its share in parallel; filing is serialised by SQLite.
    pub async fn run(
        self: Arc<Self>,
        wake: Arc<tokio::sync::Notify>,
        every: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> PassSummary {
        let parts = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4) as u32;
        let bells: Vec<Arc<tokio::sync::Notify>> = (0..parts)
            .map(|_| Arc::new(tokio::sync::Notify::new()))
            .collect();
        // One wake-up reaches every worker.
        let relay = {
            let (bells, mut stop) = (bells.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = wake.notified() => bells.iter().for_each(|b| b.notify_one()),
                        _ = stop.changed() => return,
                    }
                }
            })
        };
        let workers: Vec<_> = bells
            .into_iter()
            .enumerate()
            .map(|(k, bell)| {
                let (me, mut stop) = (self.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut total = PassSummary::default();
                    loop {
                        let m = me.clone();
                        let pass = tokio::task::spawn_blocking(move || {
                            m.drain_part(crate::events::now_us(), k as u32, parts)
                        })
                        .await;
                        if let Ok(Ok(s)) = pass {
                            total.add(s);
                        }
                        if *stop.borrow() {
                            return total;
                        }
                        tokio::select! {
                            _ = bell.notified() => {}
                            _ = tokio::time::sleep(every) => {}
                            _ = stop.changed() => {}
                        }
                    }
                })
            })
            .collect();
        let mut total = PassSummary::default();
        for w in workers {
            if let Ok(s) = w.await {
                total.add(s);
            }
        }
        relay.abort();
        total
    }
}

/// Where a run keeps its things: `gridpatrol.db`, `images/`, `tlogs/`, `runs/`.
#[derive(Clone, Debug)]
pub struct DataDir(pub std::path::PathBuf);

impl DataDir {
    pub fn db(&self) -> std::path::PathBuf {
        self.0.join("gridpatrol.db")
    }
    /// The SQLite database in this directory, the default store.
    pub fn db_spec(&self) -> crate::store::DbSpec {
        crate::store::DbSpec::Sqlite(self.db())
    }
    pub fn images(&self) -> std::path::PathBuf {
        self.0.join("images")
    }
    /// The photos' place when nothing else is said: `images/` here.
    pub fn images_spec(&self) -> ImageSpec {
        ImageSpec::Dir(self.images())
    }
    pub fn runs(&self) -> std::path::PathBuf {
        self.0.join("runs")
    }
}

impl Pipeline {
    /// A pipeline over the data directory's store and images, with the default accuracy
    /// and merge policy.
    pub fn open(
        data: &DataDir,
        camera: &crate::plan::Camera,
        map: Arc<GridMap>,
        detector: Arc<dyn Detector>,
    ) -> Result<Self, StoreError> {
        Self::open_in(&data.db_spec(), &data.images_spec(), camera, map, detector)
    }

    /// The same, with the store in database `db` (SQLite or PostgreSQL) and the photos in
    /// `images` (a directory or a bucket).
    pub fn open_in(
        db: &crate::store::DbSpec,
        images: &ImageSpec,
        camera: &crate::plan::Camera,
        map: Arc<GridMap>,
        detector: Arc<dyn Detector>,
    ) -> Result<Self, StoreError> {
        let store = Arc::new(EventStore::connect(db)?);
        let images = ImageStore::open_spec(images)
            .map_err(|e| StoreError::Invalid(format!("{images}: {e}")))?;
        Ok(Self {
            store,
            images,
            fetcher: Fetcher::new(Duration::from_secs(10)),
            detector,
            thresholds: Thresholds::default(),
            intrinsics: Intrinsics::from_camera(camera),
            cameras: Default::default(),
            accuracy: PoseAccuracy::default(),
            map,
            policy: MergePolicy::default(),
            observer: None,
            fleet: None,
            holder: crate::store::default_holder(),
        })
    }
}
