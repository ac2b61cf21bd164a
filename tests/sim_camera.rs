//! The simulated camera from the wire: triggering, CAMERA_IMAGE_CAPTURED from component
//! 100, the image over HTTP, re-requests, and ground truth beside the images.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{fast_fleet, rig};
use gridpatrol::link::HubConfig;
use gridpatrol::vehicle::{ImageCapture, MissionItem, MissionType, VehicleEvent};
use gridpatrol_sim::world::World;
use gridpatrol_sim::SimConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET over plain HTTP/1.1; returns (status line, body).
async fn http_get(url: &str) -> (String, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("path");
    let mut s = tokio::net::TcpStream::connect(host).await.expect("connect");
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    (
        head.lines().next().unwrap_or("").to_string(),
        buf[split + 4..].to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survey_leg_takes_photos_that_can_be_fetched_and_are_ground_truthed() {
    let home = (36.56, 103.68, 1800.0);
    let world = World::generate(&[World::square(home.0, home.1, 150.0)], 30, 3, home.2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sim = SimConfig {
        speed: 20.0,
        world: Some(Arc::new(world)),
        image_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let r = rig(sim, fast_fleet(), HubConfig::default(), None).await;
    let v = r
        .fleet
        .wait_vehicle(Some(1), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        v.wait_for(Duration::from_secs(5), |t| t.home.is_some())
            .await
    );
    let h = v.telemetry().home.unwrap();
    let dlat = 120.0 / 111_195.0;
    // DO_SET_CAM_TRIGG_DIST on (every 20 m, first photo now) and off.
    let trig_on = MissionItem::action(206, [20.0, 0.0, 1.0, 0.0]);
    let trig_off = MissionItem::action(206, [0.0; 4]);
    let plan = vec![
        MissionItem::takeoff(h.lat, h.lon, 40.0),
        MissionItem::waypoint(h.lat - dlat, h.lon, 40.0),
        trig_on,
        MissionItem::waypoint(h.lat + dlat, h.lon, 40.0),
        trig_off,
        MissionItem::return_to_launch(),
    ];
    v.upload_verified(MissionType::Mission, &plan)
        .await
        .unwrap();
    let mut events = v.events();
    v.start_mission_armed(Duration::from_secs(10))
        .await
        .unwrap();
    let mut photos: Vec<ImageCapture> = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(40), async {
        while let Some(e) = events.next().await {
            match e {
                VehicleEvent::ImageCaptured(c) => photos.push(c),
                VehicleEvent::Armed(false) => break,
                _ => {}
            }
        }
    })
    .await;
    // 240 m at one photo per 20 m, plus the one when triggering starts.
    assert!((12..=14).contains(&photos.len()), "{} photos", photos.len());
    let mut indices: Vec<i32> = photos.iter().map(|p| p.index).collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..photos.len() as i32).collect::<Vec<_>>());
    for p in &photos {
        assert_eq!(p.compid, 100);
        assert!(p.success);
        assert!((p.alt_rel - 40.0).abs() < 1.5, "{}", p.alt_rel);
        // The camera looks down: the optical axis (the gimbal frame's x) rotated by q
        // points within 20° of straight down even while the vehicle tilts to accelerate.
        let [w, x, y, z] = p.q.map(f64::from);
        let down = 2.0 * (x * z - w * y);
        assert!(down > 20f64.to_radians().cos(), "{:?} (down {down})", p.q);
    }
    let level = photos.iter().filter(|p| {
        let [w, x, y, z] = p.q.map(f64::from);
        // Cruising at 5 m/s a multicopter leans about 4.4° into its own drag.
        2.0 * (x * z - w * y) > 6f64.to_radians().cos()
    });
    assert!(
        level.count() * 2 > photos.len(),
        "most photos are taken in steady flight, tilted only by drag"
    );
    let (status, body) = http_get(&photos[3].file_url).await;
    assert!(status.contains("200"), "{status}");
    assert_eq!(&body[..2], &[0xFF, 0xD8], "a JPEG");
    let (status, _) = http_get(&photos[3].file_url.replace(".jpg", ".png")).await;
    assert!(status.contains("404"), "{status}");
    // A missed announcement can be asked for again by index (as MAVSDK does).
    let mut events = v.events();
    v.request_message(100, 263, 2.0).await.unwrap();
    let again = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(e) = events.next().await {
            if let VehicleEvent::ImageCaptured(c) = e {
                return Some(c);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("re-sent capture");
    assert_eq!(again.index, 2);
    let truth = std::fs::read_to_string(dir.path().join("ground_truth.jsonl")).unwrap();
    assert_eq!(truth.lines().count(), photos.len());
    assert!(truth.contains("\"objects\""));
}
