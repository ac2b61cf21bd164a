//! Camera arithmetic for surveys, with the formulas of QGroundControl's CameraCalc:
//! ground sample distance, footprint, line spacing and trigger distance.

use serde::{Deserialize, Serialize};

/// A camera's intrinsics. Images are taken landscape: the sensor width lies across track.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    pub name: String,
    /// Sensor size in millimetres.
    pub sensor_width_mm: f64,
    pub sensor_height_mm: f64,
    /// Image size in pixels.
    pub image_width_px: u32,
    pub image_height_px: u32,
    /// Focal length in millimetres.
    pub focal_length_mm: f64,
    /// Shortest interval between photos, seconds (limits speed for a trigger distance).
    #[serde(default = "default_interval")]
    pub min_trigger_interval_s: f64,
}

/// True for a positive number (NaN is not).
pub(crate) fn positive(v: f64) -> bool {
    v > 0.0
}

fn default_interval() -> f64 {
    1.0
}

/// Survey geometry derived from a camera, an altitude and overlaps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Survey {
    /// Altitude above ground, metres.
    pub altitude_m: f64,
    /// Ground sample distance, centimetres per pixel.
    pub gsd_cm: f64,
    /// Ground footprint of one image across and along track, metres.
    pub footprint_side_m: f64,
    pub footprint_frontal_m: f64,
    /// Distance between sweep lines, metres (footprint side less the side overlap).
    pub line_spacing_m: f64,
    /// Distance between photos along a line, metres (footprint frontal less the front overlap).
    pub trigger_distance_m: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CameraError {
    #[error("unknown camera {0:?}; presets: {1}")]
    Unknown(String, String),
    #[error("camera file {path}: {problem}")]
    File { path: String, problem: String },
    #[error("overlap {0} % must be between 0 and 95")]
    Overlap(f64),
    #[error("{what} must be positive, got {value}")]
    NotPositive { what: &'static str, value: f64 },
}

impl Camera {
    /// Built-in presets (sensor and lens as their makers publish them).
    pub fn presets() -> Vec<Camera> {
        let cam = |name: &str, sw, sh, iw, ih, f| Camera {
            name: name.to_string(),
            sensor_width_mm: sw,
            sensor_height_mm: sh,
            image_width_px: iw,
            image_height_px: ih,
            focal_length_mm: f,
            min_trigger_interval_s: 1.0,
        };
        vec![
            // 1-inch 20 MP survey cameras (Phantom 4 Pro class).
            cam("1inch-20mp", 13.2, 8.8, 5472, 3648, 8.8),
            // Mavic 3 Enterprise wide camera (4/3, 20 MP).
            cam("m3e", 17.3, 13.0, 5280, 3956, 12.29),
            // Sony RX1R II full frame 42 MP, 35 mm.
            cam("rx1r2", 35.9, 24.0, 7952, 5304, 35.0),
            // The gridpatrol simulator's camera.
            cam("sim", 13.2, 8.8, 1280, 853, 8.8),
        ]
    }

    /// A preset by name, or a camera JSON file.
    pub fn find(name_or_path: &str) -> Result<Camera, CameraError> {
        if let Some(c) = Self::presets().into_iter().find(|c| c.name == name_or_path) {
            return Ok(c);
        }
        let path = std::path::Path::new(name_or_path);
        if path.exists() {
            let err = |problem: String| CameraError::File {
                path: name_or_path.to_string(),
                problem,
            };
            let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
            let c: Camera = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
            c.check().map_err(|e| err(e.to_string()))?;
            return Ok(c);
        }
        let names: Vec<String> = Self::presets().into_iter().map(|c| c.name).collect();
        Err(CameraError::Unknown(
            name_or_path.to_string(),
            names.join(", "),
        ))
    }

    fn check(&self) -> Result<(), CameraError> {
        for (what, value) in [
            ("sensor_width_mm", self.sensor_width_mm),
            ("sensor_height_mm", self.sensor_height_mm),
            ("focal_length_mm", self.focal_length_mm),
            ("image_width_px", f64::from(self.image_width_px)),
            ("image_height_px", f64::from(self.image_height_px)),
        ] {
            if !positive(value) {
                return Err(CameraError::NotPositive { what, value });
            }
        }
        Ok(())
    }

    /// GSD in cm/px at `altitude_m` (QGC: alt · sensorWidth · 100 / (imageWidth · focal)).
    pub fn gsd_cm(&self, altitude_m: f64) -> f64 {
        altitude_m * self.sensor_width_mm * 100.0
            / (f64::from(self.image_width_px) * self.focal_length_mm)
    }

    /// Altitude in metres that gives `gsd_cm` cm/px.
    pub fn altitude_for_gsd(&self, gsd_cm: f64) -> f64 {
        gsd_cm * f64::from(self.image_width_px) * self.focal_length_mm
            / (self.sensor_width_mm * 100.0)
    }

    /// Survey geometry at `altitude_m` with front and side overlap in percent.
    pub fn survey(
        &self,
        altitude_m: f64,
        front_pct: f64,
        side_pct: f64,
    ) -> Result<Survey, CameraError> {
        self.check()?;
        if !positive(altitude_m) {
            return Err(CameraError::NotPositive {
                what: "altitude",
                value: altitude_m,
            });
        }
        for o in [front_pct, side_pct] {
            if !(0.0..=95.0).contains(&o) {
                return Err(CameraError::Overlap(o));
            }
        }
        let side = altitude_m * self.sensor_width_mm / self.focal_length_mm;
        let frontal = altitude_m * self.sensor_height_mm / self.focal_length_mm;
        Ok(Survey {
            altitude_m,
            gsd_cm: self.gsd_cm(altitude_m),
            footprint_side_m: side,
            footprint_frontal_m: frontal,
            line_spacing_m: side * (100.0 - side_pct) / 100.0,
            trigger_distance_m: frontal * (100.0 - front_pct) / 100.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qgroundcontrol_numbers_for_a_one_inch_camera() {
        let c = Camera::find("1inch-20mp").unwrap();
        let s = c.survey(60.0, 75.0, 65.0).unwrap();
        // 60 m × 13.2 mm / 8.8 mm = 90 m across, 60 m along; 1.64 cm/px.
        assert!((s.footprint_side_m - 90.0).abs() < 1e-9);
        assert!((s.footprint_frontal_m - 60.0).abs() < 1e-9);
        assert!((s.gsd_cm - 1.6447).abs() < 1e-3);
        assert!((s.line_spacing_m - 31.5).abs() < 1e-9);
        assert!((s.trigger_distance_m - 15.0).abs() < 1e-9);
        assert!((c.altitude_for_gsd(s.gsd_cm) - 60.0).abs() < 1e-9);
    }

    #[test]
    fn bad_cameras_and_overlaps_are_refused() {
        assert!(Camera::find("nikon-f3")
            .unwrap_err()
            .to_string()
            .contains("1inch-20mp"));
        let c = Camera::find("sim").unwrap();
        assert_eq!(
            c.survey(60.0, 99.0, 65.0).unwrap_err(),
            CameraError::Overlap(99.0)
        );
        assert!(matches!(
            c.survey(0.0, 75.0, 65.0),
            Err(CameraError::NotPositive { .. })
        ));
    }
}
