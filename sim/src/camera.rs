//! The simulated camera: a pinhole on a gimbal. It renders the ground as seen from the
//! vehicle's *true* pose (flat ground at the world's altitude, a procedural texture, and
//! each issue object at its true position and size), and reports where each object fell
//! in the image as ground truth.

use serde::{Deserialize, Serialize};

use crate::vehicle::ne_m;
use crate::world::{Category, IssueObject, World};

/// Pinhole camera intrinsics.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    /// Image size in pixels.
    pub width: u32,
    pub height: u32,
    /// Sensor size in millimetres.
    pub sensor_w_mm: f64,
    pub sensor_h_mm: f64,
    /// Focal length in millimetres.
    pub focal_mm: f64,
    /// Gimbal pitch in degrees: -90 looks straight down (nadir), 0 forward.
    pub gimbal_pitch_deg: f64,
}

impl Default for Camera {
    /// A 1-inch, 8.8 mm camera (the class of common survey drones) at 1280 × 853 px:
    /// at 60 m it sees 90 m × 60 m at 7 cm per pixel.
    fn default() -> Self {
        Self {
            width: 1280,
            height: 853,
            sensor_w_mm: 13.2,
            sensor_h_mm: 8.8,
            focal_mm: 8.8,
            gimbal_pitch_deg: -90.0,
        }
    }
}

/// Where the camera is and how it is turned.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pose {
    /// Degrees, WGS-84.
    pub lat: f64,
    pub lon: f64,
    /// Metres above the ground.
    pub height_m: f64,
    /// Vehicle attitude, radians.
    pub roll: f64,
    pub pitch: f64,
    pub yaw: f64,
}

/// One object as it appears in one image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub object_id: u32,
    pub category: Category,
    /// Pixel box [x0, y0, x1, y1], clipped to the image.
    pub bbox: [u32; 4],
    /// Share of the object's box inside the image, 0..1.
    pub visible: f64,
}

type Mat3 = [[f64; 3]; 3];

fn mul(a: &Mat3, v: [f64; 3]) -> [f64; 3] {
    [
        a[0][0] * v[0] + a[0][1] * v[1] + a[0][2] * v[2],
        a[1][0] * v[0] + a[1][1] * v[1] + a[1][2] * v[2],
        a[2][0] * v[0] + a[2][1] * v[1] + a[2][2] * v[2],
    ]
}

fn transpose(a: &Mat3) -> Mat3 {
    [
        [a[0][0], a[1][0], a[2][0]],
        [a[0][1], a[1][1], a[2][1]],
        [a[0][2], a[1][2], a[2][2]],
    ]
}

fn matmul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut m = [[0.0; 3]; 3];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

/// Body (forward-right-down) to NED rotation for ZYX Euler angles.
fn r_nb(roll: f64, pitch: f64, yaw: f64) -> Mat3 {
    let (sr, cr) = roll.sin_cos();
    let (sp, cp) = pitch.sin_cos();
    let (sy, cy) = yaw.sin_cos();
    [
        [cp * cy, sr * sp * cy - cr * sy, cr * sp * cy + sr * sy],
        [cp * sy, sr * sp * sy + cr * cy, cr * sp * sy - sr * cy],
        [-sp, sr * cp, cr * cp],
    ]
}

impl Camera {
    /// Focal length in pixels (x, y).
    pub fn focal_px(&self) -> (f64, f64) {
        (
            self.focal_mm / self.sensor_w_mm * f64::from(self.width),
            self.focal_mm / self.sensor_h_mm * f64::from(self.height),
        )
    }

    /// Camera (x right, y down, z optical axis) to NED rotation for a vehicle attitude.
    pub fn r_nc(&self, pose: &Pose) -> Mat3 {
        let t = self.gimbal_pitch_deg.to_radians();
        // Columns: camera x, y, z axes in the body frame.
        let z = [t.cos(), 0.0, -t.sin()];
        let x = [0.0, 1.0, 0.0];
        let y = [
            z[1] * x[2] - z[2] * x[1],
            z[2] * x[0] - z[0] * x[2],
            z[0] * x[1] - z[1] * x[0],
        ];
        let r_bc = [[x[0], y[0], z[0]], [x[1], y[1], z[1]], [x[2], y[2], z[2]]];
        matmul(&r_nb(pose.roll, pose.pitch, pose.yaw), &r_bc)
    }

    /// The pixel where a ground point (north, east metres from the camera's nadir) appears.
    fn project(&self, r_cn: &Mat3, height: f64, n: f64, e: f64) -> Option<(f64, f64)> {
        let p = mul(r_cn, [n, e, height]);
        if p[2] <= 0.1 {
            return None;
        }
        let (fx, fy) = self.focal_px();
        Some((
            fx * p[0] / p[2] + f64::from(self.width) / 2.0,
            fy * p[1] / p[2] + f64::from(self.height) / 2.0,
        ))
    }

    /// Renders the image (RGB, row-major) and lists the objects in it.
    pub fn render(&self, pose: &Pose, world: &World) -> (Vec<u8>, Vec<Seen>) {
        let r_nc = self.r_nc(pose);
        let r_cn = transpose(&r_nc);
        let (fx, fy) = self.focal_px();
        let (w, h) = (self.width as usize, self.height as usize);
        let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
        // Objects near enough to matter, in local north/east around the camera.
        let reach = pose.height_m * 4.0 + 50.0;
        let local: Vec<(&IssueObject, f64, f64)> = world
            .objects
            .iter()
            .filter_map(|o| {
                let (n, e) = ne_m(pose.lat, pose.lon, o.lat, o.lon);
                (n.abs() < reach && e.abs() < reach).then_some((o, n, e))
            })
            .collect();
        let seen: Vec<Seen> = local
            .iter()
            .filter_map(|(o, on, oe)| self.seen(o, *on, *oe, &r_cn, pose.height_m))
            .collect();
        // Only objects in the picture are drawn, each with its rotation and a quick
        // bounding-circle test precomputed.
        let drawn: Vec<Placed> = local
            .iter()
            .filter(|(o, _, _)| seen.iter().any(|s| s.object_id == o.id))
            .map(|(o, n, e)| {
                let (sin, cos) = o.heading_deg.to_radians().sin_cos();
                let r = 0.5 * (o.size_m.0.powi(2) + o.size_m.1.powi(2)).sqrt();
                Placed {
                    o,
                    n: *n,
                    e: *e,
                    sin,
                    cos,
                    r2: r * r,
                }
            })
            .collect();
        // The ground texture is anchored to the world, not the camera.
        let (gn0, ge0) = ne_m(36.0, 103.0, pose.lat, pose.lon);
        let mut rgb = vec![0u8; w * h * 3];
        for v in 0..h {
            for u in 0..w {
                let d = mul(
                    &r_nc,
                    [(u as f64 + 0.5 - cx) / fx, (v as f64 + 0.5 - cy) / fy, 1.0],
                );
                let px = &mut rgb[(v * w + u) * 3..(v * w + u) * 3 + 3];
                if d[2] <= 1e-6 {
                    px.copy_from_slice(&[150, 180, 220]); // sky
                    continue;
                }
                let t = pose.height_m / d[2];
                let (n, e) = (t * d[0], t * d[1]);
                let mut color = None;
                for p in &drawn {
                    let (dn, de) = (n - p.n, e - p.e);
                    if dn * dn + de * de <= p.r2 {
                        if let Some(c) =
                            object_color(p.o, dn * p.cos + de * p.sin, -dn * p.sin + de * p.cos)
                        {
                            color = Some(c);
                        }
                    }
                }
                px.copy_from_slice(&color.unwrap_or_else(|| ground(gn0 + n, ge0 + e)));
            }
        }
        (rgb, seen)
    }

    fn seen(&self, o: &IssueObject, on: f64, oe: f64, r_cn: &Mat3, height: f64) -> Option<Seen> {
        let (hl, hw) = (o.size_m.0 / 2.0, o.size_m.1 / 2.0);
        let (s, c) = o.heading_deg.to_radians().sin_cos();
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for (a, b) in [(hl, hw), (hl, -hw), (-hl, hw), (-hl, -hw)] {
            // Long side along the heading (clockwise from north).
            let (n, e) = (on + a * c - b * s, oe + a * s + b * c);
            let (x, y) = self.project(r_cn, height, n, e)?;
            xs.push(x);
            ys.push(y);
        }
        let fold = |v: &[f64], f: fn(f64, f64) -> f64, init| v.iter().copied().fold(init, f);
        let (x0, x1) = (fold(&xs, f64::min, f64::MAX), fold(&xs, f64::max, f64::MIN));
        let (y0, y1) = (fold(&ys, f64::min, f64::MAX), fold(&ys, f64::max, f64::MIN));
        let (w, h) = (f64::from(self.width), f64::from(self.height));
        let (cx0, cx1, cy0, cy1) = (x0.max(0.0), x1.min(w), y0.max(0.0), y1.min(h));
        if cx1 <= cx0 || cy1 <= cy0 {
            return None;
        }
        let visible = ((cx1 - cx0) * (cy1 - cy0)) / ((x1 - x0) * (y1 - y0)).max(1e-9);
        Some(Seen {
            object_id: o.id,
            category: o.category,
            bbox: [cx0 as u32, cy0 as u32, cx1.ceil() as u32, cy1.ceil() as u32],
            visible,
        })
    }
}

/// A cheap hash to [0, 1) of integer cell coordinates.
fn hash01(a: i64, b: i64, salt: u64) -> f64 {
    let mut z = (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (b as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ salt;
    z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 29)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 32)) >> 11) as f64 / (1u64 << 53) as f64
}

/// The ground at (north, east) metres: dull asphalt, paving and grass patches, with fine grain.
fn ground(n: f64, e: f64) -> [u8; 3] {
    let patch = hash01((n / 12.0).floor() as i64, (e / 12.0).floor() as i64, 1);
    let base: [f64; 3] = if patch < 0.55 {
        [108.0, 108.0, 104.0] // asphalt
    } else if patch < 0.85 {
        [150.0, 146.0, 136.0] // paving
    } else {
        [96.0, 112.0, 84.0] // grass
    };
    let grain = (hash01((n / 0.25).floor() as i64, (e / 0.25).floor() as i64, 2) - 0.5) * 18.0;
    [
        (base[0] + grain).clamp(0.0, 255.0) as u8,
        (base[1] + grain).clamp(0.0, 255.0) as u8,
        (base[2] + grain).clamp(0.0, 255.0) as u8,
    ]
}

/// An object ready to draw: its centre in local metres and its rotation.
struct Placed<'a> {
    o: &'a IssueObject,
    n: f64,
    e: f64,
    sin: f64,
    cos: f64,
    /// Squared radius of its bounding circle, m².
    r2: f64,
}

/// The colour of object `o` at (a, b) metres from its centre along and across its
/// length, if the point is on it.
fn object_color(o: &IssueObject, a: f64, b: f64) -> Option<[u8; 3]> {
    let (hl, hw) = (o.size_m.0 / 2.0, o.size_m.1 / 2.0);
    if a.abs() > hl || b.abs() > hw {
        return None;
    }
    let (fa, fb) = (a + hl, b + hw);
    Some(match o.category {
        Category::PiledObjects => {
            // Brown boxes with darker seams every 0.6 m.
            if fa % 0.6 < 0.06 || fb % 0.6 < 0.06 {
                [95, 55, 25]
            } else {
                [160, 100, 45]
            }
        }
        Category::OutOfStoreBusiness => {
            if (fa / 0.4) as i64 % 2 == 0 {
                [205, 30, 35]
            } else {
                [240, 236, 230]
            }
        }
        Category::MobileVendor => {
            if a.abs() < hl * 0.5 && b.abs() < hw * 0.5 {
                [60, 50, 30]
            } else {
                [235, 200, 25]
            }
        }
        Category::BikeParking => {
            if fa % 0.6 < 0.22 {
                [30, 80, 220]
            } else {
                return None; // ground shows between the bikes
            }
        }
        Category::IllegalPoster => {
            if (fa / 0.15) as i64 % 3 == 1 && (fb / 0.1) as i64 % 2 == 0 {
                [215, 40, 175]
            } else {
                [250, 250, 248]
            }
        }
        Category::Crowd => {
            // People as dots on a jittered 0.8 m grid.
            let (ia, ib) = ((fa / 0.8).floor() as i64, (fb / 0.8).floor() as i64);
            let ca = ia as f64 * 0.8 + 0.2 + 0.4 * hash01(ia, ib, u64::from(o.id));
            let cb = ib as f64 * 0.8 + 0.2 + 0.4 * hash01(ib, ia, u64::from(o.id) + 7);
            if (fa - ca).powi(2) + (fb - cb).powi(2) < 0.22 * 0.22 {
                [75, 25, 105]
            } else {
                return None;
            }
        }
        Category::Garbage => {
            if hash01((fa / 0.2) as i64, (fb / 0.2) as i64, u64::from(o.id)) < 0.3 {
                [25, 45, 25]
            } else {
                [45, 165, 65]
            }
        }
        Category::FireSmoke => {
            let r = ((a / hl).powi(2) + (b / hw).powi(2)).sqrt();
            if r > 1.0 {
                return None;
            } else if r < 0.45 {
                [255, 125, 0]
            } else {
                [175, 172, 168]
            }
        }
    })
}

/// Encodes RGB pixels as a JPEG.
pub fn to_jpeg(
    rgb: &[u8],
    width: u32,
    height: u32,
    quality: u8,
) -> Result<Vec<u8>, jpeg_encoder::EncodingError> {
    let mut out = Vec::new();
    let enc = jpeg_encoder::Encoder::new(&mut out, quality);
    enc.encode(
        rgb,
        width as u16,
        height as u16,
        jpeg_encoder::ColorType::Rgb,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::IssueObject;

    fn world_with(o: IssueObject) -> World {
        World {
            name: "t".into(),
            ground_alt_m: 1800.0,
            objects: vec![o],
        }
    }

    #[test]
    fn a_nadir_camera_sees_an_object_below_at_the_image_centre_and_its_size_follows_height() {
        let cam = Camera::default();
        let o = IssueObject {
            id: 1,
            category: Category::MobileVendor,
            lat: 36.56,
            lon: 103.68,
            size_m: (2.0, 2.0),
            heading_deg: 0.0,
        };
        let pose = Pose {
            lat: 36.56,
            lon: 103.68,
            height_m: 60.0,
            roll: 0.0,
            pitch: 0.0,
            yaw: 0.0,
        };
        let (rgb, seen) = cam.render(&pose, &world_with(o.clone()));
        assert_eq!(seen.len(), 1);
        let b = seen[0].bbox;
        let (mx, my) = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2);
        assert!(
            (mx as i32 - 640).abs() <= 1 && (my as i32 - 426).abs() <= 1,
            "{b:?}"
        );
        // 2 m at 60 m with 1280 px over 90 m: about 28 px.
        let side = b[2] - b[0];
        assert!((27..=30).contains(&side), "{side}");
        let centre = &rgb[(426 * 1280 + 640) * 3..(426 * 1280 + 640) * 3 + 3];
        assert_eq!(centre, &[60, 50, 30], "the cart's dark middle");
        // North is up when the vehicle faces north: an object 20 m north is above the centre.
        let north = IssueObject {
            lat: 36.56 + 20.0 / 111_195.0,
            ..o
        };
        let (_, seen) = cam.render(&pose, &world_with(north));
        assert!(seen[0].bbox[3] < 426);
        let jpeg = to_jpeg(&rgb, 1280, 853, 85).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    }

    #[test]
    fn attitude_moves_the_image() {
        let cam = Camera::default();
        let o = IssueObject {
            id: 1,
            category: Category::Garbage,
            lat: 36.56,
            lon: 103.68,
            size_m: (2.0, 2.0),
            heading_deg: 0.0,
        };
        let level = Pose {
            lat: 36.56,
            lon: 103.68,
            height_m: 60.0,
            roll: 0.0,
            pitch: 0.0,
            yaw: 0.0,
        };
        let rolled = Pose {
            roll: 5f64.to_radians(),
            ..level
        };
        let (_, a) = cam.render(&level, &world_with(o.clone()));
        let (_, b) = cam.render(&rolled, &world_with(o));
        // Rolling right (right side down) turns the camera's view to the left, so the point
        // below moves right in the image, by f·tan(5°) = 853 px × 0.0875 ≈ 75 px.
        let shift = b[0].bbox[0] as i64 - a[0].bbox[0] as i64;
        assert!(
            (72..=78).contains(&shift),
            "{:?} vs {:?}",
            a[0].bbox,
            b[0].bbox
        );
    }
}
