//! Detection: finding city issues in photos. One `Detector` trait, several backends:
//! colour analysis for the simulator's images (`colour`), an ONNX model run in-process
//! (`onnx`, cargo feature `onnx`), an external HTTP inference service (`http`), and the
//! detections the drone's companion computer publishes beside each photo (`companion`).

pub mod colour;
pub mod companion;
pub mod http;
#[cfg(feature = "onnx")]
pub mod onnx;

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The issue categories the city files events for.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 占道堆物: road occupation / piled objects.
    PiledObjects,
    /// 跨门经营: out-of-store business.
    OutOfStoreBusiness,
    /// 流动摊点: mobile vendors.
    MobileVendor,
    /// 非机动车乱停放: illegal bike parking.
    BikeParking,
    /// 城市牛皮癣: illegal posters.
    IllegalPoster,
    /// 人员聚集: crowd gathering.
    Crowd,
    /// 环境卫生: garbage / sanitation.
    Garbage,
    /// 火情: fire and smoke.
    FireSmoke,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Self::PiledObjects,
        Self::OutOfStoreBusiness,
        Self::MobileVendor,
        Self::BikeParking,
        Self::IllegalPoster,
        Self::Crowd,
        Self::Garbage,
        Self::FireSmoke,
    ];

    /// The snake_case name used in files, the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PiledObjects => "piled_objects",
            Self::OutOfStoreBusiness => "out_of_store_business",
            Self::MobileVendor => "mobile_vendor",
            Self::BikeParking => "bike_parking",
            Self::IllegalPoster => "illegal_poster",
            Self::Crowd => "crowd",
            Self::Garbage => "garbage",
            Self::FireSmoke => "fire_smoke",
        }
    }

    /// The largest an issue of this category usually is on the ground, metres (a crowd
    /// spreads wider than a poster): how far a box cut by the image border may be from
    /// the object's centre.
    pub fn typical_max_size_m(self) -> f64 {
        match self {
            Self::PiledObjects => 3.0,
            Self::OutOfStoreBusiness => 4.5,
            Self::MobileVendor => 2.5,
            Self::BikeParking => 5.0,
            Self::IllegalPoster => 1.5,
            Self::Crowd => 8.0,
            Self::Garbage => 2.5,
            Self::FireSmoke => 5.0,
        }
    }

    /// The name the city's platform uses.
    pub fn chinese(self) -> &'static str {
        match self {
            Self::PiledObjects => "占道堆物",
            Self::OutOfStoreBusiness => "跨门经营",
            Self::MobileVendor => "流动摊点",
            Self::BikeParking => "非机动车乱停放",
            Self::IllegalPoster => "城市牛皮癣",
            Self::Crowd => "人员聚集",
            Self::Garbage => "环境卫生",
            Self::FireSmoke => "火情",
        }
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s || c.chinese() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|c| c.as_str()).collect();
                format!("unknown category {s:?}: one of {}", names.join(", "))
            })
    }
}

/// One issue found in one image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub category: Category,
    /// 0..1.
    pub confidence: f32,
    /// Pixel box [x0, y0, x1, y1] from the top-left corner.
    pub bbox: [f32; 4],
}

impl Detection {
    /// The box centre, pixels.
    pub fn centre(&self) -> (f64, f64) {
        (
            f64::from(self.bbox[0] + self.bbox[2]) / 2.0,
            f64::from(self.bbox[1] + self.bbox[3]) / 2.0,
        )
    }

    /// True when the box touches the image border (the object may be cut off, so its
    /// centre is biased).
    pub fn at_edge(&self, width: u32, height: u32, margin_px: f32) -> bool {
        self.bbox[0] <= margin_px
            || self.bbox[1] <= margin_px
            || self.bbox[2] >= width as f32 - margin_px
            || self.bbox[3] >= height as f32 - margin_px
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("the image is not a readable JPEG: {0}")]
    Image(String),
    #[error("companion detections: {0}")]
    Companion(String),
    #[error("the detection model: {0}")]
    Model(String),
    #[error("the inference service at {url} failed: {problem}")]
    Service { url: String, problem: String },
}

/// A detector: image bytes (JPEG) in, detections out.
pub trait Detector: Send + Sync {
    fn name(&self) -> &str;
    fn detect(&self, jpeg: &[u8]) -> Result<Vec<Detection>, DetectError>;

    /// Detections for a capture: the image and where it came from. Image backends look
    /// at the pixels; the companion backend fetches what the drone found.
    fn detect_capture(&self, jpeg: &[u8], _file_url: &str) -> Result<Vec<Detection>, DetectError> {
        self.detect(jpeg)
    }
}

/// Minimum confidence per category; detections below it are dropped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub default: f32,
    #[serde(default)]
    pub per_category: BTreeMap<Category, f32>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            default: 0.5,
            per_category: BTreeMap::new(),
        }
    }
}

impl Thresholds {
    pub fn passes(&self, d: &Detection) -> bool {
        d.confidence >= *self.per_category.get(&d.category).unwrap_or(&self.default)
    }
}

/// Decodes a JPEG into RGB pixels: (width, height, rgb).
/// A detection list as JSON from outside (a companion computer or an inference
/// service): a plain list or `{"detections": [...]}`, each checked: a confidence in 0..1
/// and a box of finite pixels whose corners are in order. The problem names the entry.
pub fn parse_detections(json: &[u8]) -> Result<Vec<Detection>, String> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum List {
        Plain(Vec<Detection>),
        Wrapped { detections: Vec<Detection> },
    }
    let v = match serde_json::from_slice::<List>(json) {
        Ok(List::Plain(v) | List::Wrapped { detections: v }) => v,
        Err(e) => return Err(format!("not a detection list: {e}")),
    };
    for (i, d) in v.iter().enumerate() {
        if !(0.0..=1.0).contains(&d.confidence) {
            return Err(format!(
                "detection {i}: confidence {} is not between 0 and 1",
                d.confidence
            ));
        }
        let [x0, y0, x1, y1] = d.bbox;
        if d.bbox.iter().any(|v| !v.is_finite()) || x1 < x0 || y1 < y0 {
            return Err(format!(
                "detection {i}: box {:?} is not [x0, y0, x1, y1] with x0 ≤ x1 and y0 ≤ y1",
                d.bbox
            ));
        }
    }
    Ok(v)
}

/// The most pixels a photo may have: a 100 MP camera's; a header that claims more is a
/// broken or hostile file, and decoding it would take gigabytes.
pub const MAX_PIXELS: u64 = 100_000_000;

pub fn decode_jpeg(jpeg: &[u8]) -> Result<(u32, u32, Vec<u8>), DetectError> {
    let mut dec = jpeg_decoder::Decoder::new(jpeg);
    dec.read_info()
        .map_err(|e| DetectError::Image(e.to_string()))?;
    if let Some(i) = dec.info() {
        let px = u64::from(i.width) * u64::from(i.height);
        if px > MAX_PIXELS {
            return Err(DetectError::Image(format!(
                "{} x {} px is over the {} MP a photo may have",
                i.width,
                i.height,
                MAX_PIXELS / 1_000_000
            )));
        }
    }
    dec.set_max_decoding_buffer_size(MAX_PIXELS as usize * 3);
    let pixels = dec
        .decode()
        .map_err(|e| DetectError::Image(e.to_string()))?;
    let info = dec
        .info()
        .ok_or_else(|| DetectError::Image("no frame header".into()))?;
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        other => return Err(DetectError::Image(format!("unsupported pixels {other:?}"))),
    };
    Ok((u32::from(info.width), u32::from(info.height), rgb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_claiming_more_pixels_than_any_camera_is_refused_before_decoding() {
        // Found by the fuzz target jpeg_exif: 1.6 kB claiming 16518 x 11008 px.
        let jpeg =
            include_bytes!("../../tests/__fuzz__/fuzz/jpeg_exif/crashes/claims-181-megapixels.jpg");
        let e = decode_jpeg(jpeg).unwrap_err().to_string();
        assert!(e.contains("16518 x 11008 px is over the 100 MP"), "{e}");
    }

    #[test]
    fn detection_lists_are_checked_entry_by_entry() {
        let ok = br#"{"detections": [{"category": "garbage", "confidence": 0.5, "bbox": [1, 2, 3, 4]}]}"#;
        assert_eq!(parse_detections(ok).unwrap().len(), 1);
        let e = parse_detections(
            br#"[{"category": "garbage", "confidence": 1.5, "bbox": [1, 2, 3, 4]}]"#,
        )
        .unwrap_err();
        assert!(e.contains("detection 0: confidence 1.5"), "{e}");
        let e = parse_detections(
            br#"[{"category": "crowd", "confidence": 0.5, "bbox": [9, 2, 3, 4]}]"#,
        )
        .unwrap_err();
        assert!(e.contains("detection 0: box"), "{e}");
        assert!(parse_detections(b"{}")
            .unwrap_err()
            .contains("not a detection list"));
    }

    #[test]
    fn categories_parse_by_name_in_english_and_chinese() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
            assert_eq!(c.chinese().parse::<Category>(), Ok(c));
        }
        assert!("dragons"
            .parse::<Category>()
            .unwrap_err()
            .contains("fire_smoke"));
    }

    #[test]
    fn thresholds_are_per_category() {
        let mut t = Thresholds::default();
        t.per_category.insert(Category::FireSmoke, 0.2);
        let d = |category, confidence| Detection {
            category,
            confidence,
            bbox: [0.0; 4],
        };
        assert!(t.passes(&d(Category::FireSmoke, 0.3)));
        assert!(!t.passes(&d(Category::Garbage, 0.3)));
    }

    #[test]
    fn a_corrupt_jpeg_is_a_clear_error() {
        let e = decode_jpeg(b"\xFF\xD8not really").unwrap_err();
        assert!(e.to_string().contains("not a readable JPEG"), "{e}");
    }
}
