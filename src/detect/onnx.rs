//! An ONNX detector with YOLO-style output, run in-process by tract (pure Rust; cargo
//! feature `onnx`). A JSON config names the model, its input size, the output layout and
//! the class map (model class index → category):
//!
//! ```json
//! { "model": "detector.onnx", "input": [640, 640],
//!   "layout": "yolov8", "classes": ["piled_objects", "garbage", null],
//!   "min_score": 0.25, "iou": 0.45 }
//! ```
//!
//! `yolov8`: output `[1, 4 + C, N]` (cx, cy, w, h in input pixels, then class scores, as
//! Ultralytics exports it); `yolov5`: `[1, N, 5 + C]` (box, objectness, class scores).
//! A `null` class is one the city does not file (the model may know more classes).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tract_onnx::prelude::*;

use super::{decode_jpeg, Category, DetectError, Detection, Detector};

/// ONNX's protobuf messages, for building models in code (tests do).
pub use tract_onnx::pb;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Yolov8,
    Yolov5,
}

#[derive(Clone, Debug, Deserialize)]
pub struct OnnxConfig {
    /// The .onnx file, relative to the config file.
    pub model: PathBuf,
    /// Model input width and height, pixels.
    pub input: [usize; 2],
    #[serde(default = "default_layout")]
    pub layout: Layout,
    /// Category of each model class, by index; `null` for classes not filed.
    pub classes: Vec<Option<Category>>,
    #[serde(default = "default_min_score")]
    pub min_score: f32,
    #[serde(default = "default_iou")]
    pub iou: f32,
}

fn default_layout() -> Layout {
    Layout::Yolov8
}
fn default_min_score() -> f32 {
    0.25
}
fn default_iou() -> f32 {
    0.45
}

type Plan = SimplePlan<TypedFact, Box<dyn TypedOp>, Graph<TypedFact, Box<dyn TypedOp>>>;

pub struct OnnxDetector {
    cfg: OnnxConfig,
    plan: Plan,
}

fn bad(path: &Path, problem: impl std::fmt::Display) -> DetectError {
    DetectError::Model(format!("{}: {problem}", path.display()))
}

impl OnnxDetector {
    /// Loads the config file and the model it names, fixed to the configured input size.
    pub fn load(config: &Path) -> Result<Self, DetectError> {
        let text = std::fs::read_to_string(config).map_err(|e| bad(config, e))?;
        let mut cfg: OnnxConfig = serde_json::from_str(&text).map_err(|e| bad(config, e))?;
        if cfg.classes.is_empty() || cfg.input.contains(&0) {
            return Err(bad(config, "needs a non-empty class map and an input size"));
        }
        if cfg.model.is_relative() {
            cfg.model = config.parent().unwrap_or(Path::new(".")).join(&cfg.model);
        }
        let [w, h] = cfg.input;
        let plan = tract_onnx::onnx()
            .model_for_path(&cfg.model)
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, h, w]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| bad(&cfg.model, format!("{e:#}")))?;
        Ok(Self { cfg, plan })
    }

    /// Runs the model on RGB pixels (w × h), boxes in the image's pixels.
    pub fn detect_rgb(
        &self,
        w: usize,
        h: usize,
        rgb: &[u8],
    ) -> Result<Vec<Detection>, DetectError> {
        let [iw, ih] = self.cfg.input;
        // Box-filter resize to the model's input, channels first, scaled to 0..1.
        let input = tract_ndarray::Array4::from_shape_fn((1, 3, ih, iw), |(_, c, y, x)| {
            let (x0, x1) = (x * w / iw, ((x + 1) * w / iw).max(x * w / iw + 1).min(w));
            let (y0, y1) = (y * h / ih, ((y + 1) * h / ih).max(y * h / ih + 1).min(h));
            let mut sum = 0u32;
            for yy in y0..y1 {
                for xx in x0..x1 {
                    sum += u32::from(rgb[(yy * w + xx) * 3 + c]);
                }
            }
            sum as f32 / ((x1 - x0) * (y1 - y0)) as f32 / 255.0
        });
        let out = self
            .plan
            .run(tvec!(Tensor::from(input).into()))
            .map_err(|e| DetectError::Model(format!("running the model: {e:#}")))?;
        let view = out[0]
            .to_array_view::<f32>()
            .map_err(|e| DetectError::Model(format!("output: {e:#}")))?;
        let shape = view.shape().to_vec();
        let nc = self.cfg.classes.len();
        let (sx, sy) = (w as f32 / iw as f32, h as f32 / ih as f32);
        let mut found = Vec::new();
        let expect = |want: usize, got: usize| {
            if want == got {
                Ok(())
            } else {
                Err(DetectError::Model(format!(
                    "output shape {shape:?} does not fit {nc} classes in the {:?} layout",
                    self.cfg.layout
                )))
            }
        };
        match (self.cfg.layout, shape.as_slice()) {
            (Layout::Yolov8, [1, f, n]) => {
                expect(4 + nc, *f)?;
                for i in 0..*n {
                    let get = |k: usize| view[[0, k, i]];
                    self.push(
                        &mut found,
                        [get(0), get(1), get(2), get(3)],
                        (0..nc).map(|c| get(4 + c)),
                        1.0,
                        sx,
                        sy,
                    );
                }
            }
            (Layout::Yolov5, [1, n, f]) => {
                expect(5 + nc, *f)?;
                for i in 0..*n {
                    let get = |k: usize| view[[0, i, k]];
                    self.push(
                        &mut found,
                        [get(0), get(1), get(2), get(3)],
                        (0..nc).map(|c| get(5 + c)),
                        get(4),
                        sx,
                        sy,
                    );
                }
            }
            _ => {
                return Err(DetectError::Model(format!(
                    "output shape {shape:?} is not a {:?} detection output",
                    self.cfg.layout
                )))
            }
        }
        Ok(nms(found, self.cfg.iou))
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &self,
        out: &mut Vec<Detection>,
        b: [f32; 4],
        scores: impl Iterator<Item = f32>,
        objectness: f32,
        sx: f32,
        sy: f32,
    ) {
        let Some((cls, score)) = scores.enumerate().max_by(|a, b| a.1.total_cmp(&b.1)) else {
            return;
        };
        let score = score * objectness;
        let Some(Some(category)) = self.cfg.classes.get(cls) else {
            return;
        };
        if score.is_nan() || score < self.cfg.min_score {
            return;
        }
        let [cx, cy, bw, bh] = b;
        out.push(Detection {
            category: *category,
            confidence: score.clamp(0.0, 1.0),
            bbox: [
                (cx - bw / 2.0) * sx,
                (cy - bh / 2.0) * sy,
                (cx + bw / 2.0) * sx,
                (cy + bh / 2.0) * sy,
            ],
        });
    }
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    inter / (area(a) + area(b) - inter).max(1e-9)
}

/// Non-maximum suppression per category: the best box of each overlapping group stays.
pub fn nms(mut d: Vec<Detection>, iou_max: f32) -> Vec<Detection> {
    d.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let mut keep: Vec<Detection> = Vec::new();
    for x in d {
        if !keep
            .iter()
            .any(|k| k.category == x.category && iou(&k.bbox, &x.bbox) > iou_max)
        {
            keep.push(x);
        }
    }
    keep
}

impl Detector for OnnxDetector {
    fn name(&self) -> &str {
        "onnx"
    }

    fn detect(&self, jpeg: &[u8]) -> Result<Vec<Detection>, DetectError> {
        let (w, h, rgb) = decode_jpeg(jpeg)?;
        self.detect_rgb(w as usize, h as usize, &rgb)
    }
}
