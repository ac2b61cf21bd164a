//! Records a run for the Rerun viewer (cargo feature `rerun`): grid cells, planned routes,
//! vehicle tracks and poses, each photo with its camera frustum and detections, and the
//! events filed, on one `run_time` timeline (seconds since the run started). Map data uses
//! Rerun's GeoPoints / GeoLineStrings (lat/lon); the 3-D view is east-north-up metres
//! around home.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use rerun::{
    Boxes2D, Color, EncodedImage, GeoLineStrings, GeoPoints, Pinhole, RecordingStream, TextLog,
    Transform3D,
};

use super::observe::RunObserver;
use super::SortieJob;
use crate::capture::Capture;
use crate::events::store::FileOutcome;
use crate::events::FiledDetection;
use crate::geotag::{ne_between, Intrinsics};
use crate::grid::GridMap;
use crate::vehicle::Telemetry;

pub struct RerunRecorder {
    rec: RecordingStream,
    start: Instant,
    /// Home (lat, lon, alt MSL): the origin of the 3-D view.
    origin: Mutex<Option<(f64, f64, f64)>>,
    tracks: Mutex<std::collections::BTreeMap<u8, Vec<[f64; 2]>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("rerun: {0}")]
pub struct RecordError(String);

fn category_color(name: &str) -> Color {
    let rgb = match name {
        "piled_objects" => [160, 100, 45],
        "out_of_store_business" => [205, 30, 35],
        "mobile_vendor" => [235, 200, 25],
        "bike_parking" => [30, 80, 220],
        "illegal_poster" => [215, 40, 175],
        "crowd" => [120, 60, 160],
        "garbage" => [45, 165, 65],
        _ => [255, 125, 0],
    };
    Color::from_rgb(rgb[0], rgb[1], rgb[2])
}

impl RerunRecorder {
    /// Records to an .rrd file.
    pub fn to_file(path: &Path) -> Result<Self, RecordError> {
        let rec = rerun::RecordingStreamBuilder::new("gridpatrol")
            .save(path)
            .map_err(|e| RecordError(e.to_string()))?;
        Ok(Self {
            rec,
            start: Instant::now(),
            origin: Mutex::new(None),
            tracks: Mutex::default(),
        })
    }

    fn tick(&self) {
        self.rec
            .set_duration_secs("run_time", self.start.elapsed().as_secs_f64());
    }

    fn log(&self, path: &str, what: &impl rerun::AsComponents) {
        if let Err(e) = self.rec.log(path, what) {
            tracing::warn!("rerun: {path}: {e}");
        }
    }

    /// East, north, up metres from home.
    fn enu(&self, lat: f64, lon: f64, alt_msl: f64) -> [f32; 3] {
        let o = *self.origin.lock().unwrap_or_else(|p| p.into_inner());
        let (olat, olon, oalt) = o.unwrap_or((lat, lon, alt_msl));
        let (n, e) = ne_between(olat, olon, lat, lon);
        [e as f32, n as f32, (alt_msl - oalt) as f32]
    }

    /// Flushes everything to the file.
    pub fn flush(&self) {
        self.rec.flush_blocking();
    }
}

/// A polygon's outer ring as Rerun's [lat, lon] points.
fn lat_lon_ring(p: &geo::Polygon<f64>) -> Vec<[f64; 2]> {
    p.exterior().points().map(|p| [p.y(), p.x()]).collect()
}

/// Camera (right, down, forward) to east-north-up, from the camera quaternion
/// (forward-right-down in NED), as Rerun's column-major 3×3.
fn rdf_to_enu(q: [f64; 4]) -> [[f32; 3]; 3] {
    // A zero quaternion (no attitude yet) draws the camera unrotated.
    let r =
        crate::geotag::rotation(q).unwrap_or([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
    // Column j of r: camera FRD axis j in NED. RDF axes are FRD's 1, 2, 0.
    let ned_to_enu = |v: [f64; 3]| [v[1] as f32, v[0] as f32, -v[2] as f32];
    let col = |j: usize| ned_to_enu([r[0][j], r[1][j], r[2][j]]);
    [col(1), col(2), col(0)]
}

impl RunObserver for RerunRecorder {
    fn plan(&self, map: &GridMap, jobs: &[SortieJob]) {
        if let Some(h) = map.home {
            *self.origin.lock().unwrap_or_else(|p| p.into_inner()) = Some((h.lat, h.lon, h.alt_m));
            let _ = self.rec.log_static(
                "map/home",
                &GeoPoints::from_lat_lon([[h.lat, h.lon]])
                    .with_radii([rerun::Radius::new_ui_points(8.0)]),
            );
        }
        let rings: Vec<Vec<[f64; 2]>> =
            map.cells.iter().map(|c| lat_lon_ring(&c.polygon)).collect();
        let _ = self.rec.log_static(
            "map/cells",
            &GeoLineStrings::from_lat_lon(rings).with_colors([Color::from_rgb(90, 90, 90)]),
        );
        let nfz: Vec<Vec<[f64; 2]>> = map
            .no_fly
            .iter()
            .map(|z| lat_lon_ring(&z.polygon))
            .collect();
        let _ = self.rec.log_static(
            "map/no_fly",
            &GeoLineStrings::from_lat_lon(nfz).with_colors([Color::from_rgb(220, 0, 0)]),
        );
        for j in jobs {
            let route: Vec<[f64; 2]> = j
                .mission
                .iter()
                .filter(|i| i.x != 0 || i.y != 0)
                .map(|i| [f64::from(i.x) / 1e7, f64::from(i.y) / 1e7])
                .collect();
            let _ = self.rec.log_static(
                format!("map/route/sortie_{}", j.index + 1),
                &GeoLineStrings::from_lat_lon([route]).with_colors([Color::from_rgb(0, 140, 255)]),
            );
        }
    }

    fn vehicle(&self, t: &Telemetry) {
        let Some(p) = t.position else { return };
        self.tick();
        let track = {
            let mut tracks = self.tracks.lock().unwrap_or_else(|p| p.into_inner());
            let v = tracks.entry(t.sysid).or_default();
            v.push([p.lat, p.lon]);
            v.clone()
        };
        self.log(
            &format!("map/vehicle/{}", t.sysid),
            &GeoPoints::from_lat_lon([[p.lat, p.lon]])
                .with_radii([rerun::Radius::new_ui_points(6.0)]),
        );
        self.log(
            &format!("map/track/{}", t.sysid),
            &GeoLineStrings::from_lat_lon([track]),
        );
        let pos = self.enu(p.lat, p.lon, f64::from(p.alt_msl));
        if let Some(a) = t.attitude {
            let q = crate::geotag::camera_quaternion(
                f64::from(a.roll),
                f64::from(a.pitch),
                f64::from(a.yaw),
                0.0,
            );
            self.log(
                &format!("world/vehicle/{}", t.sysid),
                &Transform3D::from_translation_mat3x3(pos, rdf_to_enu(q)),
            );
        }
    }

    fn photo(
        &self,
        c: &Capture,
        jpeg: &[u8],
        k: &Intrinsics,
        footprint: &[(f64, f64)],
        found: &[FiledDetection],
    ) {
        self.tick();
        let base = format!("world/camera/{}", c.sysid);
        let pos = self.enu(c.lat, c.lon, c.alt_msl);
        self.log(
            &base,
            &Transform3D::from_translation_mat3x3(pos, rdf_to_enu(c.q)),
        );
        self.log(
            &format!("{base}/image"),
            &Pinhole::from_focal_length_and_resolution(
                [k.fx as f32, k.fy as f32],
                [k.width as f32, k.height as f32],
            )
            .with_image_plane_distance(10.0),
        );
        self.log(
            &format!("{base}/image"),
            &EncodedImage::from_file_contents(jpeg.to_vec()),
        );
        let boxes = Boxes2D::from_mins_and_sizes(
            found
                .iter()
                .map(|f| (f.detection.bbox[0], f.detection.bbox[1])),
            found.iter().map(|f| {
                (
                    f.detection.bbox[2] - f.detection.bbox[0],
                    f.detection.bbox[3] - f.detection.bbox[1],
                )
            }),
        )
        .with_labels(found.iter().map(|f| {
            format!(
                "{} {:.2}",
                f.detection.category.as_str(),
                f.detection.confidence
            )
        }))
        .with_colors(
            found
                .iter()
                .map(|f| category_color(f.detection.category.as_str())),
        );
        self.log(&format!("{base}/image/detections"), &boxes);
        let mut ring: Vec<[f64; 2]> = footprint.iter().map(|p| [p.0, p.1]).collect();
        if let Some(first) = ring.first().copied() {
            ring.push(first);
        }
        self.log(
            &format!("map/footprint/{}", c.sysid),
            &GeoLineStrings::from_lat_lon([ring]).with_colors([Color::from_rgb(255, 255, 255)]),
        );
        self.log(
            "map/detections",
            &GeoPoints::from_lat_lon(found.iter().map(|f| [f.fix.lat, f.fix.lon])).with_colors(
                found
                    .iter()
                    .map(|f| category_color(f.detection.category.as_str())),
            ),
        );
    }

    fn filed(&self, c: &Capture, outcome: &FileOutcome, events: &[(i64, String, f64, f64)]) {
        self.tick();
        for (id, cat, lat, lon) in events {
            self.log(
                &format!("map/events/{id}"),
                &GeoPoints::from_lat_lon([[*lat, *lon]])
                    .with_colors([category_color(cat)])
                    .with_radii([rerun::Radius::new_ui_points(7.0)]),
            );
        }
        if !outcome.new_events.is_empty() {
            self.log(
                "events",
                &TextLog::new(format!(
                    "photo {}/{}: new events {:?}",
                    c.sysid, c.index, outcome.new_events
                )),
            );
        }
    }
}
