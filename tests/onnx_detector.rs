//! The ONNX backend (cargo feature `onnx`) with a small detector this test builds itself:
//! 16 anchors on a 4 × 4 grid over a 64 × 64 input, each scoring "mobile vendor" (yellow)
//! and "garbage" (green) from the mean colour under it, YOLOv8 output `[1, 4 + 2, 16]`.
#![cfg(feature = "onnx")]

use gridpatrol::detect::onnx::pb;
use gridpatrol::detect::onnx::OnnxDetector;
use gridpatrol::detect::{Category, Detector};
use prost::Message;

fn floats(name: &str, dims: &[i64], data: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1, // FLOAT
        float_data: data,
        ..Default::default()
    }
}

fn ints_attr(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: 7, // INTS
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn node(
    op: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: output.into(),
        attribute,
        ..Default::default()
    }
}

fn value(name: &str, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension, Dimension};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(dimension::Value::DimValue(*d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The model's bytes.
fn tiny_detector() -> Vec<u8> {
    // Class 0 (yellow): 12 (R + G − 2B) − 9; class 1 (green): 20 (2G − R − B) − 14.
    let w = vec![12.0, 12.0, -24.0, -20.0, 40.0, -20.0];
    let b = vec![-9.0, -14.0];
    let mut boxes = vec![0f32; 4 * 16];
    for i in 0..16 {
        let (r, c) = ((i / 4) as f32, (i % 4) as f32);
        boxes[i] = (c + 0.5) * 16.0;
        boxes[16 + i] = (r + 0.5) * 16.0;
        boxes[32 + i] = 16.0;
        boxes[48 + i] = 16.0;
    }
    let graph = pb::GraphProto {
        name: "tiny".into(),
        node: vec![
            node(
                "AveragePool",
                &["images"],
                "pooled",
                vec![
                    ints_attr("kernel_shape", &[16, 16]),
                    ints_attr("strides", &[16, 16]),
                ],
            ),
            node("Conv", &["pooled", "w", "b"], "logits", vec![]),
            node("Sigmoid", &["logits"], "scores", vec![]),
            node("Reshape", &["scores", "flat"], "scores_flat", vec![]),
            node(
                "Concat",
                &["boxes", "scores_flat"],
                "output0",
                vec![pb::AttributeProto {
                    name: "axis".into(),
                    r#type: 2, // INT
                    i: 1,
                    ..Default::default()
                }],
            ),
        ],
        initializer: vec![
            floats("w", &[2, 3, 1, 1], w),
            floats("b", &[2], b),
            floats("boxes", &[1, 4, 16], boxes),
            pb::TensorProto {
                name: "flat".into(),
                dims: vec![3],
                data_type: 7, // INT64
                int64_data: vec![1, 2, 16],
                ..Default::default()
            },
        ],
        input: vec![value("images", &[1, 3, 64, 64])],
        output: vec![value("output0", &[1, 6, 16])],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        producer_name: "gridpatrol tests".into(),
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A 640 × 640 grey photo with a yellow square on anchor (row 1, col 2) and a green one on
/// anchor (row 3, col 0).
fn photo() -> Vec<u8> {
    let mut rgb = vec![0u8; 640 * 640 * 3];
    for y in 0..640 {
        for x in 0..640 {
            let px = if (320..480).contains(&x) && (160..320).contains(&y) {
                [235, 200, 25]
            } else if x < 160 && y >= 480 {
                [45, 165, 65]
            } else {
                [108, 108, 104]
            };
            rgb[(y * 640 + x) * 3..(y * 640 + x) * 3 + 3].copy_from_slice(&px);
        }
    }
    gridpatrol_sim::camera::to_jpeg(&rgb, 640, 640, 95).unwrap()
}

#[test]
fn a_tiny_yolo_model_finds_its_two_objects_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.onnx"), tiny_detector()).unwrap();
    let cfg = dir.path().join("tiny.json");
    std::fs::write(
        &cfg,
        r#"{"model": "tiny.onnx", "input": [64, 64], "layout": "yolov8",
            "classes": ["mobile_vendor", "garbage"], "min_score": 0.5}"#,
    )
    .unwrap();
    let det = OnnxDetector::load(&cfg).unwrap();
    let mut found = det.detect(&photo()).unwrap();
    found.sort_by(|a, b| a.bbox[1].total_cmp(&b.bbox[1]));
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].category, Category::MobileVendor);
    assert_eq!(found[0].bbox, [320.0, 160.0, 480.0, 320.0]);
    assert!(found[0].confidence > 0.95);
    assert_eq!(found[1].category, Category::Garbage);
    assert_eq!(found[1].bbox, [0.0, 480.0, 160.0, 640.0]);
}

#[test]
fn bad_models_and_configs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(
        &cfg,
        r#"{"model": "missing.onnx", "input": [64, 64], "classes": ["garbage"]}"#,
    )
    .unwrap();
    let e = OnnxDetector::load(&cfg).err().unwrap().to_string();
    assert!(e.contains("missing.onnx"), "{e}");
    std::fs::write(dir.path().join("tiny.onnx"), tiny_detector()).unwrap();
    // Three classes configured, the model has two: the output does not fit.
    std::fs::write(
        &cfg,
        r#"{"model": "tiny.onnx", "input": [64, 64], "classes": ["garbage", "crowd", null]}"#,
    )
    .unwrap();
    let det = OnnxDetector::load(&cfg).unwrap();
    let e = det.detect(&photo()).unwrap_err().to_string();
    assert!(e.contains("does not fit 3 classes"), "{e}");
    std::fs::write(
        &cfg,
        r#"{"model": "tiny.onnx", "input": [64, 64], "classes": ["dragons"]}"#,
    )
    .unwrap();
    let e = OnnxDetector::load(&cfg).err().unwrap().to_string();
    assert!(e.contains("c.json"), "{e}");
}
