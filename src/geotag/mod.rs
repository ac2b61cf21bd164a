//! Geotagging: from a pixel in a photo to a point on the ground.
//!
//! A pinhole camera whose orientation is the quaternion CAMERA_IMAGE_CAPTURED carries
//! (camera frame forward-right-down in NED, forward = optical axis, so a nadir camera
//! has pitch −90°, as MAVLink's gimbal protocol and PX4 report it), and a ray-ground
//! intersection with flat ground at home altitude (terrain is not modelled yet).

use serde::{Deserialize, Serialize};

use crate::plan::Camera;

/// Mean Earth radius, metres (the spherical model used for local offsets).
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Pinhole intrinsics in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Intrinsics {
    /// Image size, pixels.
    pub width: u32,
    pub height: u32,
    /// Focal length, pixels, across (x) and down (y) the image.
    pub fx: f64,
    pub fy: f64,
    /// Principal point, pixels.
    pub cx: f64,
    pub cy: f64,
}

impl Intrinsics {
    /// The intrinsics a camera reports of itself (CAMERA_INFORMATION: focal length and
    /// sensor size in mm, resolution in px), principal point at the image centre.
    pub fn from_info(c: &crate::vehicle::CameraInfo) -> Self {
        let (w, h) = (f64::from(c.width), f64::from(c.height));
        Self {
            width: u32::from(c.width),
            height: u32::from(c.height),
            fx: f64::from(c.focal_mm) / f64::from(c.sensor_w_mm) * w,
            fy: f64::from(c.focal_mm) / f64::from(c.sensor_h_mm) * h,
            cx: w / 2.0,
            cy: h / 2.0,
        }
    }

    /// The intrinsics of a survey camera with its principal point at the image centre.
    pub fn from_camera(c: &Camera) -> Self {
        Self {
            width: c.image_width_px,
            height: c.image_height_px,
            fx: c.focal_length_mm / c.sensor_width_mm * f64::from(c.image_width_px),
            fy: c.focal_length_mm / c.sensor_height_mm * f64::from(c.image_height_px),
            cx: f64::from(c.image_width_px) / 2.0,
            cy: f64::from(c.image_height_px) / 2.0,
        }
    }
}

/// Where the camera was and how it was turned when the photo was taken.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CameraPose {
    /// Degrees, WGS-84.
    pub lat: f64,
    pub lon: f64,
    /// Metres above the ground (above home: the ground is taken as flat at home altitude).
    pub height_m: f64,
    /// Camera orientation (w, x, y, z), NED; forward-right-down with forward the optical axis.
    pub q: [f64; 4],
}

/// How good the inputs are, for the uncertainty radius.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoseAccuracy {
    /// Horizontal position error (1 σ), metres; PX4's GPS eph on a plain receiver is 1–2 m.
    pub horizontal_m: f64,
    /// Attitude error (1 σ), degrees.
    pub attitude_deg: f64,
    /// Error of the height above ground (1 σ), metres: baro drift and terrain.
    pub height_m: f64,
}

impl Default for PoseAccuracy {
    fn default() -> Self {
        Self {
            horizontal_m: 1.5,
            attitude_deg: 0.5,
            height_m: 0.5,
        }
    }
}

/// A point on the ground with its uncertainty.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroundFix {
    /// Degrees, WGS-84.
    pub lat: f64,
    pub lon: f64,
    /// Radius (metres) holding the true point with about 95 % probability (2 σ).
    pub uncertainty_m: f64,
    /// Distance along the ground from the camera's nadir, metres.
    pub range_m: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GeotagError {
    #[error("the camera pose is not a number: {0}")]
    BadPose(&'static str),
    #[error("the camera is {0:.1} m above the ground; it must be above it")]
    NotAboveGround(f64),
    #[error("pixel ({0:.0}, {1:.0}) looks at or above the horizon")]
    AboveHorizon(f64, f64),
    #[error("the quaternion has zero length")]
    ZeroQuaternion,
}

/// Rotation matrix (body → NED) of a quaternion (w, x, y, z), normalised first.
pub(crate) fn rotation(q: [f64; 4]) -> Result<[[f64; 3]; 3], GeotagError> {
    let n = q.iter().map(|v| v * v).sum::<f64>().sqrt();
    if n < 1e-9 {
        return Err(GeotagError::ZeroQuaternion);
    }
    let [w, x, y, z] = q.map(|v| v / n);
    Ok([
        [
            1.0 - 2.0 * (y * y + z * z),
            2.0 * (x * y - w * z),
            2.0 * (x * z + w * y),
        ],
        [
            2.0 * (x * y + w * z),
            1.0 - 2.0 * (x * x + z * z),
            2.0 * (y * z - w * x),
        ],
        [
            2.0 * (x * z - w * y),
            2.0 * (y * z + w * x),
            1.0 - 2.0 * (x * x + y * y),
        ],
    ])
}

/// Moves (lat, lon) degrees by (north, east) metres.
pub fn offset(lat: f64, lon: f64, north_m: f64, east_m: f64) -> (f64, f64) {
    let dlat = (north_m / EARTH_RADIUS_M).to_degrees();
    let dlon = (east_m / (EARTH_RADIUS_M * lat.to_radians().cos())).to_degrees();
    (lat + dlat, lon + dlon)
}

/// (north, east) metres from the first point to the second (equirectangular, fine over km).
pub fn ne_between(lat0: f64, lon0: f64, lat1: f64, lon1: f64) -> (f64, f64) {
    let n = (lat1 - lat0).to_radians() * EARTH_RADIUS_M;
    let e = (lon1 - lon0).to_radians() * EARTH_RADIUS_M * ((lat0 + lat1) / 2.0).to_radians().cos();
    (n, e)
}

/// Distance in metres between two points (degrees).
pub fn distance_m(lat0: f64, lon0: f64, lat1: f64, lon1: f64) -> f64 {
    let (n, e) = ne_between(lat0, lon0, lat1, lon1);
    n.hypot(e)
}

/// The ground point seen at pixel (u, v) (pixels from the top-left corner).
pub fn locate(
    k: &Intrinsics,
    pose: &CameraPose,
    acc: &PoseAccuracy,
    u: f64,
    v: f64,
) -> Result<GroundFix, GeotagError> {
    for (name, val) in [
        ("latitude", pose.lat),
        ("longitude", pose.lon),
        ("height", pose.height_m),
    ] {
        if !val.is_finite() {
            return Err(GeotagError::BadPose(name));
        }
    }
    if pose.q.iter().any(|c| !c.is_finite()) {
        return Err(GeotagError::BadPose("attitude quaternion"));
    }
    if pose.height_m <= 0.5 {
        return Err(GeotagError::NotAboveGround(pose.height_m));
    }
    let r = rotation(pose.q)?;
    // Ray in the camera frame: forward (optical axis), right (image x), down (image y).
    let ray_c = [1.0, (u - k.cx) / k.fx, (v - k.cy) / k.fy];
    let d: Vec<f64> = (0..3)
        .map(|i| (0..3).map(|j| r[i][j] * ray_c[j]).sum())
        .collect();
    // Rays within ~2° of the horizon land kilometres away: refuse them.
    let horiz = d[0].hypot(d[1]);
    if d[2] <= 0.035 * horiz.max(1e-9) || d[2] <= 0.0 {
        return Err(GeotagError::AboveHorizon(u, v));
    }
    let t = pose.height_m / d[2];
    let (n, e) = (t * d[0], t * d[1]);
    let (lat, lon) = offset(pose.lat, pose.lon, n, e);
    // Error budget (1 σ, metres): GPS, attitude (grows with the slant range and the
    // off-nadir angle), and height (scales the offset from nadir).
    let range = n.hypot(e);
    let slant = (range * range + pose.height_m * pose.height_m).sqrt();
    let tilt = (range / pose.height_m).atan();
    let att = acc.attitude_deg.to_radians() * slant / tilt.cos();
    let hgt = acc.height_m * range / pose.height_m;
    let sigma = (acc.horizontal_m.powi(2) + att * att + hgt * hgt).sqrt();
    Ok(GroundFix {
        lat,
        lon,
        uncertainty_m: 2.0 * sigma,
        range_m: range,
    })
}

/// The orientation quaternion (w, x, y, z) of a camera on a vehicle with the given Euler
/// angles (radians) and gimbal pitch (radians, −π/2 nadir): vehicle ⊗ gimbal.
pub fn camera_quaternion(roll: f64, pitch: f64, yaw: f64, gimbal_pitch: f64) -> [f64; 4] {
    let (sr, cr) = (roll / 2.0).sin_cos();
    let (sp, cp) = (pitch / 2.0).sin_cos();
    let (sy, cy) = (yaw / 2.0).sin_cos();
    let v = [
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    ];
    let (s, c) = (gimbal_pitch / 2.0).sin_cos();
    let g = [c, 0.0, s, 0.0];
    [
        v[0] * g[0] - v[1] * g[1] - v[2] * g[2] - v[3] * g[3],
        v[0] * g[1] + v[1] * g[0] + v[2] * g[3] - v[3] * g[2],
        v[0] * g[2] - v[1] * g[3] + v[2] * g[0] + v[3] * g[1],
        v[0] * g[3] + v[1] * g[2] - v[2] * g[1] + v[3] * g[0],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim_camera() -> Intrinsics {
        Intrinsics::from_camera(&Camera::find("sim").unwrap())
    }

    fn pose(q: [f64; 4]) -> CameraPose {
        CameraPose {
            lat: 36.56,
            lon: 103.68,
            height_m: 60.0,
            q,
        }
    }

    #[test]
    fn the_image_centre_of_a_nadir_camera_is_straight_below() {
        let k = sim_camera();
        let q = camera_quaternion(0.0, 0.0, 0.3, -std::f64::consts::FRAC_PI_2);
        let f = locate(&k, &pose(q), &PoseAccuracy::default(), k.cx, k.cy).unwrap();
        assert!(distance_m(f.lat, f.lon, 36.56, 103.68) < 1e-6);
        // 2 σ of the GPS alone (1.5 m) and a little attitude.
        assert!(f.uncertainty_m > 3.0 && f.uncertainty_m < 3.5, "{f:?}");
    }

    #[test]
    fn image_right_is_east_and_image_up_is_north_when_facing_north() {
        let k = sim_camera();
        let q = camera_quaternion(0.0, 0.0, 0.0, -std::f64::consts::FRAC_PI_2);
        // 640 px right of centre at 60 m with a 1280 px, 90 m wide view: 45 m east.
        let f = locate(&k, &pose(q), &PoseAccuracy::default(), k.cx + 640.0, k.cy).unwrap();
        let (n, e) = ne_between(36.56, 103.68, f.lat, f.lon);
        assert!(n.abs() < 0.01 && (e - 45.0).abs() < 0.01, "{n} {e}");
        let f = locate(&k, &pose(q), &PoseAccuracy::default(), k.cx, 0.0).unwrap();
        let (n, e) = ne_between(36.56, 103.68, f.lat, f.lon);
        assert!((n - 30.0).abs() < 0.05 && e.abs() < 0.01, "{n} {e}");
        // Facing east, image up is east.
        let q = camera_quaternion(
            0.0,
            0.0,
            std::f64::consts::FRAC_PI_2,
            -std::f64::consts::FRAC_PI_2,
        );
        let f = locate(&k, &pose(q), &PoseAccuracy::default(), k.cx, 0.0).unwrap();
        let (n, e) = ne_between(36.56, 103.68, f.lat, f.lon);
        assert!(n.abs() < 0.05 && (e - 30.0).abs() < 0.05, "{n} {e}");
    }

    #[test]
    fn a_rolled_vehicle_shifts_the_ground_point() {
        let k = sim_camera();
        let level = camera_quaternion(0.0, 0.0, 0.0, -std::f64::consts::FRAC_PI_2);
        let rolled = camera_quaternion(5f64.to_radians(), 0.0, 0.0, -std::f64::consts::FRAC_PI_2);
        let a = locate(&k, &pose(level), &PoseAccuracy::default(), k.cx, k.cy).unwrap();
        let b = locate(&k, &pose(rolled), &PoseAccuracy::default(), k.cx, k.cy).unwrap();
        // Right side down: the optical axis points left (west) by 60 m × tan 5° = 5.25 m.
        let (_, e) = ne_between(a.lat, a.lon, b.lat, b.lon);
        assert!((e + 5.249).abs() < 0.01, "{e}");
    }

    #[test]
    fn bad_poses_are_refused_by_name() {
        let k = sim_camera();
        let q = camera_quaternion(0.0, 0.0, 0.0, -std::f64::consts::FRAC_PI_2);
        let mut p = pose(q);
        p.lat = f64::NAN;
        assert_eq!(
            locate(&k, &p, &PoseAccuracy::default(), 1.0, 1.0),
            Err(GeotagError::BadPose("latitude"))
        );
        let mut p = pose(q);
        p.q[2] = f64::NAN;
        assert!(matches!(
            locate(&k, &p, &PoseAccuracy::default(), 1.0, 1.0),
            Err(GeotagError::BadPose(_))
        ));
        assert_eq!(
            locate(&k, &pose([0.0; 4]), &PoseAccuracy::default(), 1.0, 1.0),
            Err(GeotagError::ZeroQuaternion)
        );
        // A camera looking at the horizon (gimbal level) cannot place its centre pixel.
        let level = camera_quaternion(0.0, 0.0, 0.0, 0.0);
        assert!(matches!(
            locate(&k, &pose(level), &PoseAccuracy::default(), k.cx, k.cy),
            Err(GeotagError::AboveHorizon(..))
        ));
    }
}
