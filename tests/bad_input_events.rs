//! Bad input on the capture → event path, over a real HTTP server and a real SQLite file:
//! a corrupt JPEG, an unreachable file_url, a NaN pose, an illegal transition and an
//! unreachable webhook each give a clear error, and nothing is lost.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use gridpatrol::capture::Capture;
use gridpatrol::detect::colour::ColourDetector;
use gridpatrol::detect::Category;
use gridpatrol::events::webhook::Webhook;
use gridpatrol::events::{now_us, Action, EventState, EventStore, StoreError};
use gridpatrol::geotag::camera_quaternion;
use gridpatrol::grid::{Datum, GridMap};
use gridpatrol::patrol::pipeline::DataDir;
use gridpatrol::patrol::Pipeline;
use gridpatrol::plan::Camera;

mod common;

use gridpatrol::store::DbSpec;

/// Serves `/good.jpg` (a rendered simulator photo with one vendor cart below) and
/// `/bad.jpg` (not a JPEG) on 127.0.0.1:0.
async fn image_server() -> SocketAddr {
    use gridpatrol_sim::camera::{to_jpeg, Camera as SimCamera, Pose};
    use gridpatrol_sim::world::{Category as SimCat, IssueObject, World};
    let (lat, lon) = (common::patrol::HOME.0, common::patrol::HOME.1);
    let world = World {
        name: "one cart".into(),
        ground_alt_m: 1800.0,
        objects: vec![IssueObject {
            id: 1,
            category: SimCat::MobileVendor,
            lat,
            lon,
            size_m: (2.0, 1.5),
            heading_deg: 0.0,
        }],
    };
    let cam = SimCamera::default();
    let pose = Pose {
        lat,
        lon,
        height_m: 60.0,
        roll: 0.0,
        pitch: 0.0,
        yaw: 0.0,
    };
    let (rgb, _) = cam.render(&pose, &world);
    let good = to_jpeg(&rgb, cam.width, cam.height, 90).unwrap();
    let app = axum::Router::new()
        .route(
            "/good.jpg",
            axum::routing::get(move || {
                let g = good.clone();
                async move { g }
            }),
        )
        .route(
            "/bad.jpg",
            axum::routing::get(|| async { b"\xFF\xD8\xFF\xE0 this is not an image".to_vec() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn capture(index: i32, url: String) -> Capture {
    Capture {
        sysid: 1,
        index,
        time_utc_us: 1_700_000_000_000_000 + index as u64 * 1_000_000,
        lat: common::patrol::HOME.0,
        lon: common::patrol::HOME.1,
        alt_msl: 1860.0,
        alt_rel: 60.0,
        q: camera_quaternion(0.0, 0.0, 0.0, -std::f64::consts::FRAC_PI_2),
        file_url: url,
    }
}

fn pipeline(dir: &std::path::Path, db: &DbSpec) -> Pipeline {
    let map = GridMap::from_geojson(&common::patrol::square_district(300.0), Datum::Wgs84).unwrap();
    Pipeline::open_in(
        db,
        &DataDir(dir.to_path_buf()).images_spec(),
        &Camera::find("sim").unwrap(),
        Arc::new(map),
        Arc::new(ColourDetector::default()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_images_unreachable_urls_and_nan_poses_are_kept_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for db in common::pg::engines(dir.path(), "corrupt_images") {
        let engine = tempfile::tempdir().unwrap();
        corrupt_images_on(engine.path(), &db).await;
    }
}

async fn corrupt_images_on(dir: &std::path::Path, db: &DbSpec) {
    let addr = image_server().await;
    let p = Arc::new(pipeline(dir, db));
    let s = p.store.clone();
    let now = now_us();
    // An unused port: nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut nan = capture(3, format!("http://{addr}/good.jpg"));
    nan.q[1] = f64::NAN;
    for c in [
        capture(0, format!("http://{addr}/good.jpg")),
        capture(1, format!("http://{addr}/bad.jpg")),
        capture(2, format!("http://{dead}/images/1/000002.jpg")),
        nan,
    ] {
        assert!(s.record_capture("run", &c, now).unwrap());
    }
    assert!(
        !s.record_capture("run", &capture(0, "x".into()), now)
            .unwrap(),
        "a duplicate"
    );
    let p2 = p.clone();
    let pass = tokio::task::spawn_blocking(move || p2.drain(now))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pass.processed, 1);
    assert_eq!(pass.new_events, 1, "{pass:?}");
    assert_eq!(pass.unusable, 2, "{pass:?}");
    assert_eq!(pass.retrying, 1, "{pass:?}");
    let text = pass.errors.join("\n");
    assert!(
        text.contains("capture 1/1") && text.contains("not a readable JPEG"),
        "{text}"
    );
    assert!(
        text.contains("capture 1/2") && text.contains("will retry"),
        "{text}"
    );
    assert!(
        text.contains("capture 1/3") && text.contains("not a number"),
        "{text}"
    );
    // The vendor cart below the camera became one event, in the cell, with its photo.
    let events = s.list(None, None, None).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].category, Category::MobileVendor);
    assert!(
        gridpatrol::geotag::distance_m(
            events[0].lat,
            events[0].lon,
            common::patrol::HOME.0,
            common::patrol::HOME.1
        ) < 1.0
    );
    // Nothing is dropped: the unreachable one waits for a retry, the unusable ones are kept.
    let (pending, processed, failed) = s.capture_counts().unwrap();
    assert_eq!((pending, processed, failed), (1, 1, 2));
    // The corrupt image itself was stored (content-addressed) for whoever looks into it.
    let stored = walk(&dir.join("images"));
    assert_eq!(stored, 2, "the good photo and the corrupt one");
    // Retries back off: not due again at once, due after the backoff.
    let p3 = p.clone();
    let again = tokio::task::spawn_blocking(move || p3.drain(now + 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.retrying, 0);
    let p4 = p.clone();
    let later = tokio::task::spawn_blocking(move || p4.drain(now + 3_000_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(later.retrying, 1);
    assert_eq!(
        s.capture_counts().unwrap().0,
        1,
        "still pending, never dropped"
    );
    // Filing the same capture again changes nothing.
    let events_before = s.list(None, None, None).unwrap();
    let first_id = 1;
    let again = s
        .file_capture(
            first_id,
            &[],
            None,
            &|_, _, _| None,
            Default::default(),
            now,
        )
        .unwrap();
    assert!(again.already);
    assert_eq!(s.list(None, None, None).unwrap(), events_before);
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        usize::from(e.path().extension().is_some_and(|x| x == "jpg"))
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn illegal_transitions_are_refused_and_the_loop_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    for db in common::pg::engines(dir.path(), "illegal_transitions") {
        illegal_transitions_on(&db);
    }
}

fn illegal_transitions_on(db: &DbSpec) {
    let s = EventStore::connect(db).unwrap();
    let t0 = 1_700_000_000_000_000;
    let e = s
        .report_manual(
            Category::Garbage,
            36.56,
            103.68,
            Some("T-1".into()),
            "grid worker",
            t0,
        )
        .unwrap();
    let err = s.apply(e.id, &Action::Close, "王", "", t0).unwrap_err();
    assert!(matches!(err, StoreError::IllegalTransition { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "event {} is reported: cannot close it (allowed from evaluated)",
            e.id
        )
    );
    assert!(matches!(
        s.apply(999, &Action::Sign, "王", "", t0),
        Err(StoreError::NoEvent(999))
    ));
    assert!(
        s.apply(e.id, &Action::Sign, " ", "", t0).is_err(),
        "nobody acting"
    );
    let h = 3_600_000_000i64;
    s.apply(e.id, &Action::Sign, "赵艳", "签收", t0 + h)
        .unwrap();
    let d = s
        .apply(
            e.id,
            &Action::Dispatch {
                department: "环卫所".into(),
                handler: "李师傅".into(),
                deadline_hours: None,
            },
            "赵艳",
            "",
            t0 + 2 * h,
        )
        .unwrap();
    // Garbage is due within a day of dispatch.
    assert_eq!(d.deadline_us, Some(t0 + 26 * h));
    assert!(!d.overdue(t0 + 25 * h) && d.overdue(t0 + 27 * h));
    s.apply(e.id, &Action::Start, "李师傅", "", t0 + 3 * h)
        .unwrap();
    s.apply(
        e.id,
        &Action::Resolve {
            feedback: "清运完毕".into(),
            photos: vec!["after.jpg".into()],
        },
        "李师傅",
        "",
        t0 + 5 * h,
    )
    .unwrap();
    assert!(s
        .apply(e.id, &Action::Evaluate { rating: 9 }, "赵艳", "", t0)
        .is_err());
    s.apply(
        e.id,
        &Action::Evaluate { rating: 5 },
        "赵艳",
        "",
        t0 + 6 * h,
    )
    .unwrap();
    let closed = s
        .apply(e.id, &Action::Close, "中心", "结案", t0 + 7 * h)
        .unwrap();
    assert_eq!(closed.state, EventState::Closed);
    let trail: Vec<String> = s
        .audit(e.id)
        .unwrap()
        .iter()
        .map(|a| a.to.clone())
        .collect();
    assert_eq!(
        trail,
        [
            "reported",
            "signed_for",
            "dispatched",
            "in_progress",
            "resolved",
            "evaluated",
            "closed"
        ]
    );
    let st = s.stats(t0 + 8 * h).unwrap();
    assert_eq!((st.total, st.closed), (1, 1));
    assert_eq!(st.median_hours_to_close, Some(7.0));
    assert_eq!(st.drone_share, 0.0);
    // Reopened after a restart: the same state (WAL, committed).
    drop(s);
    let s = EventStore::connect(db).unwrap();
    assert_eq!(s.get(e.id).unwrap().state, EventState::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_outbox_keeps_every_message_while_the_platform_is_down() {
    let dir = tempfile::tempdir().unwrap();
    for db in common::pg::engines(dir.path(), "webhook_outbox") {
        webhook_outbox_on(&db).await;
    }
}

async fn webhook_outbox_on(db: &DbSpec) {
    let s = EventStore::connect(db).unwrap();
    let t0 = now_us();
    let e = s
        .report_manual(Category::FireSmoke, 36.56, 103.68, None, "citizen", t0)
        .unwrap();
    s.apply(e.id, &Action::Sign, "值班员", "", t0).unwrap();
    // The platform is down: nothing listens on this port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let hook = Webhook::new(&format!("http://{dead}/events"), Duration::from_secs(2));
    let d = hook.deliver_due(&s, t0).unwrap();
    assert_eq!((d.delivered, d.failed), (0, 1));
    assert!(d.last_error.unwrap().contains(&dead.to_string()));
    assert_eq!(s.stats(t0).unwrap().outbox_pending, 2, "both messages kept");
    // Backoff: nothing is due a moment later.
    assert_eq!(hook.deliver_due(&s, t0 + 10).unwrap(), Default::default());
    // The platform comes up (answering 500 first, then 200): delivered in order, each with
    // its own idempotency key.
    let seen: Arc<Mutex<Vec<(String, String)>>> = Default::default();
    let fail_first = Arc::new(Mutex::new(true));
    let (seen2, ff) = (seen.clone(), fail_first.clone());
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (seen, ff) = (seen2.clone(), ff.clone());
            async move {
                let mut first = ff.lock().unwrap();
                if *first {
                    *first = false;
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let kind = serde_json::from_str::<serde_json::Value>(&body).unwrap()["kind"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                seen.lock().unwrap().push((key, kind));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let hook = Webhook::new(&format!("http://{up}/events"), Duration::from_secs(2));
    let later = t0 + 600_000_000;
    let d = tokio::task::spawn_blocking({
        let s2 = EventStore::connect(db).unwrap();
        move || {
            let first = hook.deliver_due(&s2, later).unwrap();
            let second = hook.deliver_due(&s2, later + 600_000_000).unwrap();
            (first, second, s2.stats(later).unwrap().outbox_pending)
        }
    })
    .await
    .unwrap();
    assert_eq!(
        (d.0.delivered, d.0.failed),
        (0, 1),
        "a 500 is not a delivery"
    );
    assert_eq!(d.1.delivered, 2);
    assert_eq!(d.2, 0);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|s| s.1.as_str()).collect::<Vec<_>>(),
        ["created", "sign"]
    );
    assert!(seen[0].0.starts_with("gridpatrol-event-") && seen[0].0 != seen[1].0);
}
