//! The HTTP inference-service backend against a real HTTP service (which runs the colour
//! analysis on what it receives), and its errors.

use std::time::Duration;

use gridpatrol::detect::colour::ColourDetector;
use gridpatrol::detect::http::HttpDetector;
use gridpatrol::detect::{Category, Detector};

fn photo() -> Vec<u8> {
    use gridpatrol_sim::camera::{to_jpeg, Camera, Pose};
    use gridpatrol_sim::world::{Category as C, IssueObject, World};
    let world = World {
        name: "two".into(),
        ground_alt_m: 0.0,
        objects: vec![
            IssueObject {
                id: 1,
                category: C::Garbage,
                lat: 36.56,
                lon: 103.68,
                size_m: (2.0, 1.5),
                heading_deg: 10.0,
            },
            IssueObject {
                id: 2,
                category: C::FireSmoke,
                lat: 36.5601,
                lon: 103.6801,
                size_m: (4.0, 3.0),
                heading_deg: 0.0,
            },
        ],
    };
    let cam = Camera::default();
    let pose = Pose {
        lat: 36.56005,
        lon: 103.68005,
        height_m: 60.0,
        roll: 0.0,
        pitch: 0.0,
        yaw: 0.0,
    };
    let (rgb, _) = cam.render(&pose, &world);
    to_jpeg(&rgb, cam.width, cam.height, 90).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inference_service_is_asked_over_http_and_its_answer_used() {
    let app = axum::Router::new()
        .route(
            "/infer",
            axum::routing::post(|body: axum::body::Bytes| async move {
                let found = ColourDetector::default().detect(&body).unwrap();
                serde_json::json!({ "detections": found }).to_string()
            }),
        )
        .route(
            "/broken",
            // Reads the whole upload first, as a real service does, then answers nonsense.
            axum::routing::post(|_body: axum::body::Bytes| async { "<html>oops</html>" }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let jpeg = photo();
    let (remote, broken, dead) = tokio::task::spawn_blocking({
        let jpeg = jpeg.clone();
        move || {
            let unused = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            (
                HttpDetector::new(&format!("http://{addr}/infer"), Duration::from_secs(5))
                    .detect(&jpeg),
                HttpDetector::new(&format!("http://{addr}/broken"), Duration::from_secs(5))
                    .detect(&jpeg),
                HttpDetector::new(&format!("http://{unused}/infer"), Duration::from_secs(5))
                    .detect(&jpeg),
            )
        }
    })
    .await
    .unwrap();
    let remote = remote.unwrap();
    assert_eq!(remote, ColourDetector::default().detect(&jpeg).unwrap());
    let mut cats: Vec<Category> = remote.iter().map(|d| d.category).collect();
    cats.sort();
    assert_eq!(cats, [Category::Garbage, Category::FireSmoke]);
    let e = broken.unwrap_err().to_string();
    assert!(
        e.contains("/broken") && e.contains("not a detection list"),
        "{e}"
    );
    let e = dead.unwrap_err().to_string();
    assert!(e.contains("inference service at http://127.0.0.1:"), "{e}");
}
