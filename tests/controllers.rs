//! Several controllers on one PostgreSQL. Two `serve` processes share the database and a
//! simulated fleet of six vehicles (each vehicle streams to both, as PX4 does to two
//! ground stations); six patrols start at once and the controllers share them out. One
//! controller is killed with SIGKILL mid-run; the other takes over its runs once their
//! leases lapse, re-attaching to the vehicles in the air. Then: every photo was filed
//! once, no vehicle was commanded by both controllers or launched twice, no webhook
//! message was posted twice, and the events are those one controller alone files.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::px4::free_udp_port;
use common::serve::{spawn, start_run, states, wait_final, Serve};
use gridpatrol::events::store::EventStore;
use gridpatrol::events::GridEvent;
use gridpatrol::geotag::{distance_m, offset};
use gridpatrol::store::DbSpec;
use gridpatrol_sim::world::World;
use gridpatrol_sim::{Sim, SimConfig};

const HOME: (f64, f64, f64) = common::patrol::HOME;
const CELLS: usize = 6;
/// Seconds: short, so that the takeover comes soon after the kill.
const LEASE_TTL: &str = "6";

/// Six 150 m cells round the dock, two rows of three: (id, ring as (lat, lon)).
fn cells() -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out = Vec::new();
    for (k, (n, e)) in [
        (120.0, -200.0),
        (120.0, 0.0),
        (120.0, 200.0),
        (-120.0, -200.0),
        (-120.0, 0.0),
        (-120.0, 200.0),
    ]
    .into_iter()
    .enumerate()
    {
        let (clat, clon) = offset(HOME.0, HOME.1, n, e);
        let ring = [(-75.0, -75.0), (-75.0, 75.0), (75.0, 75.0), (75.0, -75.0)]
            .iter()
            .chain(std::iter::once(&(-75.0, -75.0)))
            .map(|&(dn, de)| offset(clat, clon, dn, de))
            .collect();
        out.push((format!("C-{}", k + 1), ring));
    }
    out
}

/// The district of [`cells`] with the dock: a GeoJSON file in `dir`.
fn district(dir: &Path) -> PathBuf {
    let features: Vec<String> = cells()
        .iter()
        .map(|(id, ring)| {
            let coords: Vec<String> = ring
                .iter()
                .map(|(lat, lon)| format!("[{lon}, {lat}]"))
                .collect();
            format!(
                r#"{{"type": "Feature", "properties": {{"kind": "grid", "grid_id": "{id}", "name": "{id}", "type": "residential"}},
                   "geometry": {{"type": "Polygon", "coordinates": [[{}]]}}}}"#,
                coords.join(", ")
            )
        })
        .chain(std::iter::once(format!(
            r#"{{"type": "Feature", "properties": {{"kind": "home", "name": "dock", "alt_m": {}}},
               "geometry": {{"type": "Point", "coordinates": [{}, {}]}}}}"#,
            HOME.2, HOME.1, HOME.0
        )))
        .collect();
    let path = dir.join("district.geojson");
    std::fs::write(
        &path,
        format!(
            r#"{{"type": "FeatureCollection", "features": [{}]}}"#,
            features.join(",\n")
        ),
    )
    .unwrap();
    path
}

/// A coverage patrol of each cell.
fn patrols(dir: &Path) -> PathBuf {
    let defs: Vec<(String, String)> = (1..=CELLS)
        .map(|k| {
            (
                format!("cover-{k}"),
                format!(
                    "name = \"cover-{k}\"\ncells = [\"C-{k}\"]\npattern = \"coverage\"\nalt_m = 60.0\n\
                     camera = \"sim\"\noverlap = \"70/50\"\nspeed_m_s = 10.0\n"
                ),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = defs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    common::serve::patrols(dir, &refs)
}

/// The fleet: six vehicles at the dock streaming to each of `ports` (a GCS link each),
/// four issues hidden in every cell, the same world every time.
async fn fleet(dir: &Path, ports: &[u16]) -> (Sim, World) {
    let rings: Vec<Vec<(f64, f64)>> = cells().into_iter().map(|(_, r)| r).collect();
    let world = World::generate(&rings, 4 * CELLS, 11, HOME.2).unwrap();
    let sim = Sim::start(SimConfig {
        vehicles: CELLS,
        gcs: ([127, 0, 0, 1], ports[0]).into(),
        more_gcs: ports[1..]
            .iter()
            .map(|p| ([127, 0, 0, 1], *p).into())
            .collect(),
        base_port: None,
        // Six vehicles' photos rendered on a loaded two-core machine beside two
        // controllers and PostgreSQL: at 40x the vehicles' 5 s mission-protocol timeout
        // would be 125 ms of wall time, and each 250 ms re-request 6 ms, a storm that
        // starves the uploads it repeats. At 10x: 500 ms, and re-requests every 100 ms.
        speed: 10.0,
        mission_retry_s: 1.0,
        home: HOME,
        world: Some(Arc::new(world.clone())),
        image_dir: Some(dir.join("sim-images")),
        dock_charge_pct_per_min: 60.0,
        // Each photo's detections come from the vehicle's companion computer: the two
        // controllers and the simulator share two cores, and the photos' decoding and
        // colour analysis in two debug builds would starve the links (the pipeline's own
        // detector is the patrol and pipeline tests' business).
        companion_detections: true,
        ..Default::default()
    })
    .await
    .unwrap();
    (sim, world)
}

/// `serve` as controller `name` on the fleet's `port`, in database `db`.
fn controller(dir: &Path, port: u16, db: &DbSpec, name: &str, hook: &str) -> Serve {
    let connect = format!("udpin:127.0.0.1:{port}");
    let grids = district(dir);
    let db = db_arg(db);
    let args = [
        "--connect",
        &connect,
        "--grids",
        grids.to_str().unwrap(),
        "--camera",
        "sim",
        "--detector",
        "companion",
        "--db",
        &db,
        "--controller",
        name,
        "--lease-ttl",
        LEASE_TTL,
        "--webhook",
        hook,
    ];
    // One data directory for both: the images are shared there.
    spawn(&dir.join("data"), &patrols(dir), &args)
}

fn db_arg(db: &DbSpec) -> String {
    match db {
        DbSpec::Sqlite(p) => format!("sqlite:{}", p.display()),
        DbSpec::Postgres(url) => url.clone(),
    }
}

/// A platform that records the Idempotency-Key of every message posted to it.
async fn platform() -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::http::{HeaderMap, StatusCode};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post({
            let seen = seen.clone();
            move |h: HeaderMap| async move {
                let key = h
                    .get("Idempotency-Key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                seen.lock().unwrap().push(key);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{at}/events"), seen)
}

/// What a fleet run left: the events, the runs, and the vehicles' own records.
struct Outcome {
    names: usize,
    ids: Vec<i64>,
    events: Vec<GridEvent>,
    runs: Vec<serde_json::Value>,
    store: EventStore,
    sim: Sim,
    posted: Arc<Mutex<Vec<String>>>,
    /// The controller killed, and the GCS link (index) it was on.
    killed: Option<(String, usize)>,
    _dir: tempfile::TempDir,
}

/// What the tests share: the fleet streaming to `controllers` GCS ports, the platform
/// the webhook posts to, the data directory, and an operator's token on `db`.
struct Setup {
    dir: tempfile::TempDir,
    sim: Sim,
    hook: String,
    posted: Arc<Mutex<Vec<String>>>,
    data: PathBuf,
    op: String,
    ports: Vec<u16>,
}

async fn setup(db: &DbSpec, controllers: usize) -> Setup {
    let dir = test_dir();
    let ports: Vec<u16> = (0..controllers).map(|_| free_udp_port()).collect();
    let (sim, _world) = fleet(dir.path(), &ports).await;
    let (hook, posted) = platform().await;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db_s = db_arg(db);
    let op = common::serve::gridpatrol(
        &data,
        &[
            "token", "create", "--role", "operator", "--holder", "飞手", "--db", &db_s,
        ],
    )
    .trim()
    .to_string();
    Setup {
        dir,
        sim,
        hook,
        posted,
        data,
        op,
        ports,
    }
}

/// Six patrols flown by `names.len()` controllers on `db`; with `kill`, the one holding
/// the most runs is killed once each of its runs has taken photos.
/// `kill`: each run's photos in a run alone; the kill comes once each of the victim's runs
/// has taken a few, with one at least not near its end (its vehicle in the air).
async fn fly_six(db: DbSpec, names: &[&str], kill: Option<&[i64]>) -> Outcome {
    let Setup {
        dir,
        sim,
        hook,
        posted,
        data,
        op,
        ports,
    } = setup(&db, names.len()).await;
    let mut serves: Vec<Option<Serve>> = names
        .iter()
        .zip(&ports)
        .map(|(n, p)| Some(controller(dir.path(), *p, &db, n, &hook)))
        .collect();
    let base0 = serves[0].as_ref().unwrap().base.clone();
    let ids: Vec<i64> = {
        let (b, t) = (base0.clone(), op.clone());
        tokio::task::spawn_blocking(move || {
            (1..=CELLS)
                .map(|k| {
                    start_run(&b, &t, &format!("cover-{k}"))["id"]
                        .as_i64()
                        .unwrap()
                })
                .collect()
        })
        .await
        .unwrap()
    };
    let store = EventStore::connect(&db).unwrap();
    let mut killed = None;
    if let Some(alone) = kill {
        // The busier controller dies once each of its runs is in the air with photos
        // taken, and none near its end (the other's runs may be further on).
        let end = Instant::now() + Duration::from_secs(300);
        let mut victim: Option<(String, usize)> = None;
        loop {
            let got = holders_and_photos(&store, &ids);
            if victim.is_none() && got.iter().all(|(h, _)| h.is_some()) {
                let mut count: HashMap<String, usize> = HashMap::new();
                for (h, _) in &got {
                    *count.entry(h.clone().unwrap()).or_default() += 1;
                }
                victim = count
                    .into_iter()
                    .max_by_key(|(h, n)| (*n, std::cmp::Reverse(h.clone())));
            }
            if let Some((v, _)) = &victim {
                let theirs: Vec<(i64, i64)> = got
                    .iter()
                    .zip(alone)
                    .filter(|((h, _), _)| h.as_deref() == Some(v.as_str()))
                    .map(|((_, n), all)| (*n, *all))
                    .collect();
                // A controller starts its runs one after another: one may be done (or
                // nearly) before its last has begun. The kill waits for all to have
                // begun; at least one must then still be mid-flight to be taken over.
                if theirs.iter().all(|(n, _)| *n >= 3) {
                    assert!(
                        theirs.iter().any(|(n, all)| n + 6 < *all),
                        "every run of {v} was near its end before the last had begun: {got:?} of {alone:?}"
                    );
                    break;
                }
            }
            if Instant::now() > end {
                let log = std::fs::read_to_string(data.join("serve.log")).unwrap_or_default();
                let worst: Vec<&str> = log.lines().collect();
                panic!(
                    "the runs never all flew: {got:?}\n{}",
                    worst[worst.len().saturating_sub(150)..].join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (victim, n) = victim.unwrap();
        assert!(n >= 1);
        let link = names.iter().position(|x| *x == victim).unwrap();
        eprintln!("killing controller {victim}, which flies {n} of the {CELLS} runs");
        // SIGKILL: no chance to tidy up.
        serves[link] = None;
        killed = Some((victim, link));
    }
    let live = serves.iter().flatten().next().unwrap().base.clone();
    let runs = {
        let (ids, t) = (ids.clone(), op.clone());
        tokio::task::spawn_blocking(move || {
            ids.iter()
                .map(|id| wait_final(&live, &t, *id, Duration::from_secs(900)))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap()
    };
    // Every photo filed before the events are read.
    let end = Instant::now() + Duration::from_secs(120);
    while store.capture_counts().unwrap().0 > 0 {
        assert!(Instant::now() < end, "photos left unfiled");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The outbox drained (a second without new messages after the last event).
    let end = Instant::now() + Duration::from_secs(60);
    while store
        .stats(gridpatrol::events::now_us())
        .unwrap()
        .outbox_pending
        > 0
    {
        assert!(Instant::now() < end, "the outbox was never drained");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(serves);
    Outcome {
        names: names.len(),
        ids,
        events: store.list(None, None, None).unwrap(),
        runs,
        store,
        sim,
        posted,
        killed,
        _dir: dir,
    }
}

/// Each run's lease holder (None: not leased) and photos so far.
fn holders_and_photos(store: &EventStore, ids: &[i64]) -> Vec<(Option<String>, i64)> {
    ids.iter()
        .map(|id| {
            store
                .read(|tx| {
                    let holder: Option<String> = tx.query_opt(
                        "SELECT l.holder FROM leases l JOIN runs r ON r.id = l.run_id
                         WHERE l.run_id = ?1 AND r.state = 'executing'",
                        gridpatrol::args![id],
                        |r| r.get(0),
                    )?;
                    let photos: i64 = tx.query_value(
                        "SELECT count(*) FROM captures c JOIN runs r ON c.run = r.patrol || '-' || r.id
                         WHERE r.id = ?1",
                        gridpatrol::args![id],
                    )?;
                    Ok::<_, gridpatrol::store::DbError>((holder, photos))
                })
                .unwrap()
        })
        .collect()
}

/// The photos each vehicle's camera took (image files the simulator wrote).
fn taken(sim: &Sim) -> usize {
    let dir = sim.image_dir().unwrap();
    (1..=CELLS)
        .map(|v| {
            std::fs::read_dir(dir.join(v.to_string()))
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter(|e| e.path().extension().is_some_and(|x| x == "jpg"))
                        .count()
                })
                .unwrap_or(0)
        })
        .sum()
}

/// A directory for the test, kept (and its path printed) when GRIDPATROL_KEEP_TEST_DIR is
/// set, to read the controllers' log after a failure.
fn test_dir() -> tempfile::TempDir {
    let keep = std::env::var_os("GRIDPATROL_KEEP_TEST_DIR").is_some();
    let dir = tempfile::Builder::new()
        .disable_cleanup(keep)
        .tempdir()
        .unwrap();
    if keep {
        eprintln!("keeping {}", dir.path().display());
    }
    dir
}

/// The photos a camera took that are not on record, as (vehicle, image index).
fn never_filed(o: &Outcome) -> Vec<(i64, i64)> {
    never_filed_in(&o.sim, &o.store)
}

fn never_filed_in(sim: &Sim, store: &EventStore) -> Vec<(i64, i64)> {
    let dir = sim.image_dir().unwrap();
    let mut out = Vec::new();
    for v in 1..=CELLS as i64 {
        let filed: Vec<i64> = store
            .read(|tx| {
                tx.query_map(
                    "SELECT idx FROM captures WHERE sysid = ?1",
                    gridpatrol::args![v],
                    |r| r.get(0),
                )
            })
            .unwrap();
        for e in std::fs::read_dir(dir.join(v.to_string()))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(i) = name
                .strip_suffix(".jpg")
                .and_then(|n| n.parse::<i64>().ok())
            {
                if !filed.contains(&i) {
                    out.push((v, i));
                }
            }
        }
    }
    out.sort_unstable();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_controllers_share_a_fleet_and_one_takes_over_when_the_other_is_killed() {
    let _one = ONE_FLEET.lock().await;
    let Some(pg) = common::pg::database("controllers") else {
        return;
    };
    // The reference: one controller alone, on SQLite.
    let solo_dir = tempfile::tempdir().unwrap();
    let solo = fly_six(
        DbSpec::Sqlite(solo_dir.path().join("solo.db")),
        &["solo"],
        None,
    )
    .await;
    for r in &solo.runs {
        assert_eq!(r["run"]["state"], "success", "{r}");
    }
    let alone: Vec<i64> = holders_and_photos(&solo.store, &solo.ids)
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    let two = fly_six(pg, &["a", "b"], Some(&alone)).await;
    let (victim, dead_link) = two.killed.clone().unwrap();
    let survivor = ["a", "b"][1 - dead_link];

    // Every run ended in success; those the victim flew were taken over mid-flight.
    let mut taken_over = 0;
    for r in &two.runs {
        assert_eq!(r["run"]["state"], "success", "{r}");
        let reasons: Vec<&str> = r["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["reason"].as_str())
            .collect();
        if reasons.iter().any(|x| x.contains("takes over")) {
            taken_over += 1;
            let why = reasons.iter().find(|x| x.contains("takes over")).unwrap();
            assert!(
                why.starts_with(&format!("{victim} stopped renewing its lease"))
                    && why.contains(&format!("{survivor} takes over")),
                "{why}"
            );
            // Paused in the air and resumed there: executing again without a new run.
            assert_eq!(
                states(r),
                [
                    "waiting",
                    "preparing",
                    "executing",
                    "paused",
                    "preparing",
                    "executing",
                    "success"
                ],
                "{r}"
            );
        }
    }
    assert!(taken_over >= 1, "no run was taken over");

    // Every photo the cameras took is on record and was filed once.
    for o in [&solo, &two] {
        let (pending, processed, failed) = o.store.capture_counts().unwrap();
        assert_eq!((pending, failed), (0, 0));
        assert_eq!(
            processed as usize,
            taken(&o.sim),
            "photos taken vs filed ({} controller(s)); never filed (vehicle, index): {:?}",
            o.names,
            never_filed(o)
        );
        let twice: i64 = o
            .store
            .read(|tx| {
                tx.query_value(
                    "SELECT count(*) FROM (SELECT capture_id FROM detections
                     GROUP BY capture_id, category, bbox HAVING count(*) > 1) AS d",
                    gridpatrol::args![],
                )
            })
            .unwrap();
        assert_eq!(twice, 0, "a detection filed twice");
    }

    // No vehicle was commanded by both controllers, and none was launched twice: the
    // victim's commands to a vehicle all come before the survivor's.
    for v in two.sim.vehicles() {
        let cmds = v.commands.lock().unwrap().clone();
        let links: Vec<usize> = cmds.iter().map(|c| c.link).collect();
        if let Some(first) = links.iter().position(|l| *l != links[0]) {
            assert_eq!(links[0], dead_link, "vehicle {}: {cmds:?}", v.sysid);
            assert!(
                links[first..].iter().all(|l| *l == 1 - dead_link),
                "vehicle {} was commanded by both controllers: {cmds:?}",
                v.sysid
            );
        }
        let arms = cmds
            .iter()
            // Each arm command once: its retransmissions (waiting for an ack) say "again".
            .filter(|c| c.what == "MAV_CMD_COMPONENT_ARM_DISARM 1")
            .count();
        assert_eq!(arms, 1, "vehicle {} armed {arms} times: {cmds:?}", v.sysid);
    }

    // Each message was posted once, by whichever controller held the outbox, but for at
    // most one: the one the killed controller had posted and not yet recorded as
    // delivered when it died, which the next holder posts again with the same
    // Idempotency-Key, for the platform to drop (at-least-once delivery, docs/deploy.md).
    let keys = two.posted.lock().unwrap().clone();
    assert!(!keys.is_empty());
    let mut counts: HashMap<&String, usize> = HashMap::new();
    for k in &keys {
        *counts.entry(k).or_default() += 1;
    }
    let repeated: Vec<(&&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.len() <= 1 && repeated.iter().all(|(_, n)| **n == 2),
        "messages posted more than once: {repeated:?}"
    );
    // Alone and never killed, a controller posts each message once.
    let solo_keys = solo.posted.lock().unwrap().clone();
    let mut unique = solo_keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        solo_keys.len(),
        "a message posted twice without a kill"
    );

    // The events are those one controller alone files: the same categories, each within
    // a few metres (vehicles' GPS errors differ with which vehicle flew which cell).
    assert_eq!(two.events.len(), solo.events.len(), "event counts");
    let mut unmatched: Vec<&GridEvent> = solo.events.iter().collect();
    for e in &two.events {
        let best = unmatched
            .iter()
            .enumerate()
            .filter(|(_, s)| s.category == e.category)
            .map(|(i, s)| (i, distance_m(s.lat, s.lon, e.lat, e.lon)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((i, d)) if d <= 6.0 => {
                unmatched.remove(i);
            }
            other => panic!("event {e:?} has no match in the single-controller run ({other:?})"),
        }
    }
}

/// One heavy fleet at a time in this binary: both tests beside each other would starve
/// the links their timings need on two cores.
static ONE_FLEET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A controller that stalls past its lease (SIGSTOP) while flying a run finds, when it
/// wakes (SIGCONT), that the other controller took the vehicle over: it lets go of the
/// run without one more command to the vehicle or one more change to the run, and the
/// run ends once, in success, flown by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_stalled_past_its_lease_lets_go_when_it_wakes() {
    let _one = ONE_FLEET.lock().await;
    let Some(pg) = common::pg::database("stalled") else {
        return;
    };
    let Setup {
        dir,
        sim,
        hook,
        data,
        op,
        ports,
        ..
    } = setup(&pg, 2).await;
    let names = ["a", "b"];
    let serves: Vec<Serve> = names
        .iter()
        .zip(&ports)
        .map(|(n, p)| controller(dir.path(), *p, &pg, n, &hook))
        .collect();
    let (base, token) = (serves[0].base.clone(), op.clone());
    let id = tokio::task::spawn_blocking(move || {
        start_run(&base, &token, "cover-1")["id"].as_i64().unwrap()
    })
    .await
    .unwrap();
    let store = EventStore::connect(&pg).unwrap();
    // In the air with photos taken: then its controller stalls.
    let end = Instant::now() + Duration::from_secs(300);
    let holder = loop {
        if let [(Some(h), n)] = &holders_and_photos(&store, &[id])[..] {
            if *n >= 3 {
                break h.clone();
            }
        }
        assert!(Instant::now() < end, "the run never flew");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stalled = names.iter().position(|n| *n == holder).unwrap();
    let other = names[1 - stalled];
    let vehicle = sim
        .vehicles()
        .iter()
        .find(|v| v.commands.lock().unwrap().iter().any(|c| c.link == stalled))
        .unwrap();
    let pid = serves[stalled].child.id() as libc::pid_t;
    // SAFETY: signals to our own child process.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let before = vehicle.commands.lock().unwrap().len();
    // The other takes the run over once the lease lapses; then the stalled one wakes.
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let why: Option<String> = store
            .read(|tx| {
                tx.query_opt(
                    "SELECT reason FROM run_changes WHERE run_id = ?1 AND reason LIKE '%takes over%'",
                    gridpatrol::args![id],
                    |r| r.get(0),
                )
            })
            .unwrap();
        if let Some(why) = why {
            assert!(why.contains(&format!("{other} takes over")), "{why}");
            break;
        }
        assert!(Instant::now() < end, "nobody took the run over");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let (base, token) = (serves[1 - stalled].base.clone(), op.clone());
    let run = tokio::task::spawn_blocking(move || {
        wait_final(&base, &token, id, Duration::from_secs(600))
    })
    .await
    .unwrap();
    assert_eq!(run["run"]["state"], "success", "{run}");
    let successes = states(&run).iter().filter(|s| *s == "success").count();
    assert_eq!(successes, 1, "{run}");
    // The stalled controller said it let go, and commanded the vehicle no more.
    let log = std::fs::read_to_string(data.join("serve.log")).unwrap();
    assert!(
        log.contains(&format!("{other} holds its lease now; run {id} left to it")),
        "{}",
        &log[log.len().saturating_sub(6000)..]
    );
    let cmds = vehicle.commands.lock().unwrap().clone();
    assert!(
        cmds[before..].iter().all(|c| c.link != stalled),
        "vehicle {} was commanded by the stalled controller after it stalled: {:?}",
        vehicle.sysid,
        &cmds[before..]
    );
    // Every photo the vehicle took was filed once.
    let filed: i64 = store
        .read(|tx| {
            tx.query_value(
                "SELECT count(DISTINCT idx) FROM captures WHERE sysid = ?1",
                gridpatrol::args![vehicle.sysid as i64],
            )
        })
        .unwrap();
    assert_eq!(
        filed as usize,
        taken(&sim),
        "{:?}",
        never_filed_in(&sim, &store)
    );
}
