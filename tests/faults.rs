//! Faults a patrol must come through with nothing lost, measured for the fault table in
//! docs/faults.md: the database held by another process (SQLite busy within its timeout,
//! and locked past it), and a full disk under the image store. Each drives the
//! `gridpatrol fly` binary against the simulator and checks every photo the camera took
//! was recorded and filed once.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::faults::{record, secs};
use common::patrol::{fly_cmd, photos_taken, score, sim_for_cli, wait_for_captures};
use gridpatrol::events::EventStore;

fn count(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row(sql, [], |r| r.get(0)))
        .unwrap_or(0)
}

/// Waits (up to 2 min) until `n` captures are filed; the time it took.
async fn until_filed(db: &Path, n: i64, child: &mut Child) -> Duration {
    let t0 = Instant::now();
    loop {
        if count(
            db,
            "SELECT count(*) FROM captures WHERE state = 'processed'",
        ) >= n
        {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{n} photos not filed in 2 min"
        );
        if child.try_wait().unwrap().is_some() {
            return t0.elapsed(); // the run ended: its own checks follow
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The run's end: it succeeded, every photo the camera took was recorded and filed
/// exactly once, none was asked for in vain, and no issue was filed twice.
fn check_nothing_lost(
    dir: &Path,
    db: &Path,
    child: Child,
    world: &gridpatrol_sim::world::World,
) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let store = EventStore::open(db).unwrap();
    let (pending, processed, failed) = store.capture_counts().unwrap();
    assert_eq!((pending, failed), (0, 0), "{stdout}\n{stderr}");
    assert_eq!(
        processed,
        photos_taken(dir),
        "every photo filed once: {stdout}"
    );
    assert!(stdout.contains("0 never arrived"), "{stdout}");
    let s = score(world, &store.list(None, None, None).unwrap(), 8.0);
    assert_eq!(s.duplicate_events, 0, "{s:?}");
    assert!(s.recall >= 0.9, "{s:?}");
    stderr
}

/// Flies a patrol of a square `half_m` across at `speed`× while another connection holds
/// the database for writing for `hold`.
async fn fly_with_the_database_held(
    hold: Duration,
    half_m: f64,
    speed: f64,
) -> (Duration, String, i64) {
    let dir = tempfile::tempdir().unwrap();
    let (sim, grids, world) = sim_for_cli(dir.path(), half_m, 12, 21, speed).await;
    let conn = format!("udpout:{}", sim.vehicles()[0].local_addr);
    let data = dir.path().join("data");
    let db = data.join("gridpatrol.db");
    let mut child = fly_cmd(&grids, &data, &conn)
        // Waiting for the database is a warning.
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_captures(&db, 8, &mut child).await;
    // Another process writes: the sqlite3 shell, a backup, an `events` command.
    let other = rusqlite::Connection::open(&db).unwrap();
    other.busy_timeout(Duration::from_secs(30)).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // The fault's length, not a wait for a condition.
    tokio::time::sleep(hold).await;
    let by_then = photos_taken(dir.path());
    assert!(
        child.try_wait().unwrap().is_none(),
        "the patrol was still flying when the database was let go"
    );
    other.execute_batch("COMMIT").unwrap();
    drop(other);
    let recovery = until_filed(&db, by_then, &mut child).await;
    let stderr = check_nothing_lost(dir.path(), &db, child, &world);
    (recovery, stderr, by_then)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_busy_within_the_timeout_delays_filing_and_loses_nothing() {
    // 3 s: less than the store's 5 s busy timeout, so every write waits its turn.
    let (recovery, stderr, by_then) =
        fly_with_the_database_held(Duration::from_secs(3), 100.0, 8.0).await;
    assert!(!stderr.contains("database is locked"), "{stderr}");
    record(
        "sqlite_busy_within_the_timeout_delays_filing_and_loses_nothing",
        "SQLite busy: another process holds the write lock 3 s (under the 5 s busy timeout) mid-sortie",
        "0 photos, 0 events",
        &format!("{} from release until the {by_then} photos taken by then were filed", secs(recovery)),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_past_the_timeout_loses_no_photo() {
    // 12 s: over two busy timeouts. Writes fail with "database is locked" and are retried.
    let (recovery, stderr, by_then) =
        fly_with_the_database_held(Duration::from_secs(12), 110.0, 6.0).await;
    assert!(
        stderr.contains("database is locked"),
        "the writes met the lock: {stderr}"
    );
    record(
        "sqlite_locked_past_the_timeout_loses_no_photo",
        "SQLite locked: another process holds the write lock 12 s (over 2 busy timeouts) mid-sortie",
        "0 photos, 0 events",
        &format!(
            "{} from release until the {by_then} photos taken by then were filed",
            secs(recovery)
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_the_image_store_loses_no_photo() {
    // A full disk of its own in a private mount namespace: a tmpfs over data/images,
    // filled. Outside it, nothing sees the mount.
    let probe = Command::new("unshare")
        .args(["-Urm", "true"])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        common::skip(
            "unshare -Urm (a user and mount namespace for a small tmpfs) is not allowed here",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (sim, grids, world) = sim_for_cli(dir.path(), 100.0, 12, 22, 8.0).await;
    let conn = format!("udpout:{}", sim.vehicles()[0].local_addr);
    let data = dir.path().join("data");
    let db = data.join("gridpatrol.db");
    std::fs::create_dir_all(data.join("images")).unwrap();
    let fly = fly_cmd(&grids, &data, &conn);
    // The disk fills before the first photo; `free` (made by this test) frees it.
    let script = r#"
        set -u
        mount -t tmpfs -o size=256m tmpfs "$DATA/images"
        cat /dev/zero > "$DATA/images/filler" 2>/dev/null
        "$@" &
        fly=$!
        while [ ! -e "$WORK/free" ]; do sleep 0.05; done
        rm "$DATA/images/filler"
        wait "$fly"
        rc=$?
        (cd "$DATA/images" && find . -name '*.jpg') > "$WORK/stored.txt"
        exit "$rc"
    "#;
    let mut child = Command::new("unshare")
        .args(["-Urm", "bash", "-c", script, "bash"])
        .arg(fly.get_program())
        .args(fly.get_args())
        .env("DATA", &data)
        .env("WORK", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_captures(&db, 8, &mut child).await;
    // The pipeline met the full disk and kept the photos to try again.
    let t0 = Instant::now();
    while count(
        &db,
        "SELECT count(*) FROM captures WHERE last_error LIKE '%No space left%'",
    ) < 3
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the full disk was never met"
        );
        assert!(child.try_wait().unwrap().is_none(), "fly ended early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM captures WHERE state = 'processed'"
        ),
        0
    );
    let refused = count(&db, "SELECT count(*) FROM captures");
    std::fs::write(dir.path().join("free"), "").unwrap();
    let by_then = photos_taken(dir.path());
    let recovery = until_filed(&db, by_then, &mut child).await;
    let stderr = check_nothing_lost(dir.path(), &db, child, &world);
    assert!(stderr.contains("No space left on device"), "{stderr}");
    // Every filed photo's image is on the (freed) disk, whole: no half-written file
    // stands under a hash.
    let stored = std::fs::read_to_string(dir.path().join("stored.txt")).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut q = conn
        .prepare("SELECT DISTINCT image_sha FROM captures")
        .unwrap();
    let shas: Vec<Option<String>> = q
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for sha in &shas {
        let sha = sha.as_deref().expect("every capture's image was stored");
        assert!(stored.contains(&format!("{sha}.jpg")), "{sha} not on disk");
    }
    assert!(!stored.contains("tmp"), "a partial file was left: {stored}");
    record(
        "a_full_disk_under_the_image_store_loses_no_photo",
        "Full disk under the image store (ENOSPC) from the first photo until freed mid-sortie",
        "0 photos, 0 events",
        &format!(
            "{} from freeing until the {by_then} photos taken by then were filed ({refused} had been refused)",
            secs(recovery)
        ),
    );
}

#[test]
fn the_fault_table_names_tests_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let table = std::fs::read_to_string(root.join("docs/faults.md")).unwrap();
    let mut sources = String::new();
    for e in std::fs::read_dir(root.join("tests")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rs") {
            sources += &std::fs::read_to_string(p).unwrap();
        }
    }
    let mut rows = 0;
    for line in table
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains('`'))
    {
        let Some(name) = line.split('`').nth(1).filter(|n| !n.contains(' ')) else {
            continue;
        };
        let test = name.rsplit("::").next().unwrap();
        assert!(
            sources.contains(&format!("fn {test}(")),
            "docs/faults.md names {name}, which is not a test"
        );
        rows += 1;
    }
    assert!(rows >= 9, "{rows} rows name their test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_platform_down_for_an_hour_loses_and_repeats_nothing() {
    use gridpatrol::detect::Category;
    use gridpatrol::events::webhook::Webhook;
    use gridpatrol::events::Action;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    // The platform answers 503 while `down`; it logs what it accepts.
    let down = Arc::new(AtomicBool::new(true));
    // What the platform accepted: (idempotency key, event id, kind).
    type Accepted = Arc<Mutex<Vec<(String, i64, String)>>>;
    let (seen, refused): (Accepted, Arc<Mutex<u32>>) = Default::default();
    let app = {
        let (down, seen, refused) = (down.clone(), seen.clone(), refused.clone());
        axum::Router::new().route(
            "/events",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let (down, seen, refused) = (down.clone(), seen.clone(), refused.clone());
                async move {
                    if down.load(Ordering::SeqCst) {
                        *refused.lock().unwrap() += 1;
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let key = headers["idempotency-key"].to_str().unwrap().to_string();
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                    let id = v["event"]["id"].as_i64().unwrap();
                    seen.lock()
                        .unwrap()
                        .push((key, id, v["kind"].as_str().unwrap().to_string()));
                    axum::http::StatusCode::OK
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let hour_us = 3_600_000_000i64;
    let t0 = gridpatrol::events::now_us();
    let result = tokio::task::spawn_blocking(move || {
        let store = EventStore::open(&dir.path().join("g.db")).unwrap();
        let hook = Webhook::new(&url, Duration::from_secs(5));
        // The delivery loop's pass each simulated second; an event reported every 5
        // minutes and signed 1 minute later, throughout the hour.
        let (mut sent, mut t, mut last) = (0, t0, 0);
        while t < t0 + hour_us {
            let k = (t - t0) / 1_000_000;
            if k % 300 == 0 {
                let lat = 36.56 + k as f64 * 1e-5;
                last = store
                    .report_manual(Category::FireSmoke, lat, 103.68, None, "12345", t)
                    .unwrap()
                    .id;
                sent += 1;
            }
            if k % 300 == 60 {
                store.apply(last, &Action::Sign, "值班员", "", t).unwrap();
                sent += 1;
            }
            hook.deliver_due(&store, t).unwrap();
            t += 1_000_000;
        }
        assert_eq!(
            store.stats(t).unwrap().outbox_pending,
            sent,
            "all kept while down"
        );
        // The platform is back.
        down.store(false, Ordering::SeqCst);
        let back = t;
        while store.stats(t).unwrap().outbox_pending > 0 {
            assert!(
                t - back < hour_us,
                "not delivered within an hour of its return"
            );
            hook.deliver_due(&store, t).unwrap();
            t += 1_000_000;
        }
        (sent, (t - back) as f64 / 1e6)
    })
    .await
    .unwrap();
    let (sent, recovery_s) = result;
    let seen = seen.lock().unwrap().clone();
    let refused = *refused.lock().unwrap();
    // Every message once, in the order they happened.
    assert_eq!(seen.len() as i64, sent, "{seen:?}");
    let mut keys: Vec<&String> = seen.iter().map(|s| &s.0).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), seen.len(), "an idempotency key twice");
    for (i, s) in seen.iter().enumerate() {
        let want = if i % 2 == 0 { "created" } else { "sign" };
        assert_eq!(s.2, want, "{seen:?}");
    }
    // Backoff: a few dozen tries in the hour, not one a second.
    assert!((5..=40).contains(&refused), "{refused} attempts while down");
    record(
        "the_webhook_platform_down_for_an_hour_loses_and_repeats_nothing",
        "Webhook platform down (HTTP 503) for 1 h of simulated time while 24 messages queue",
        &format!("0 of {sent} messages; none sent twice; order kept ({refused} tries while down)"),
        &format!("{recovery_s:.0} s simulated from the platform's return until the outbox was empty (backoff at most 5 min)"),
    );
}
