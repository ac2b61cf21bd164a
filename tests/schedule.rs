//! The scheduler on a real store (SQLite, and PostgreSQL where there is one), its clock driven by the test: a simulated day's
//! firings land on the right instants; a restart skips or runs late what it missed and
//! books nothing twice; bad definitions are refused with the patrol and field named.

mod common;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use gridpatrol::events::store::EventStore;
use gridpatrol::schedule::scheduler::{from_us, us};
use gridpatrol::schedule::{
    ManualClock, PatrolDef, RunBook, RunFilter, RunState, Scheduler, Trigger,
};
use gridpatrol::store::DbSpec;

fn shanghai(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn def(toml: &str) -> PatrolDef {
    PatrolDef::from_toml(toml, "test").unwrap()
}

fn book(db: &DbSpec) -> RunBook {
    RunBook::new(Arc::new(EventStore::connect(db).unwrap()))
}

const WEEKDAYS: &str = r#"
name = "weekdays"
cells = ["WQ-04"]
[schedule]
cron = ["0 7 * * 1-5", "30 17 * * 1-5", "30 9 * * 6,0"]
"#;

const EVERY_90: &str = r#"
name = "every-90"
cells = ["WQ-01"]
pattern = "perimeter"
[schedule]
every_min = 90
start = "2026-01-01 06:00"
windows = ["06:00-20:00"]
blackout = ["2026-12-05"]
"#;

/// Ticks `s` once a simulated minute from `from` to `to`.
fn drive(s: &Scheduler, clock: &ManualClock, from: DateTime<Utc>, to: DateTime<Utc>) {
    clock.set(from);
    while clock.now_utc() < to {
        clock.advance(Duration::minutes(1));
        s.tick(clock.now_utc()).unwrap();
    }
}

trait Now {
    fn now_utc(&self) -> DateTime<Utc>;
}
impl Now for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        gridpatrol::schedule::Clock::now(self)
    }
}

#[test]
fn a_schedule_fires_at_the_right_instants_over_a_simulated_day() {
    let dir = tempfile::tempdir().unwrap();
    for db in common::pg::engines(dir.path(), "schedule_fires") {
        a_schedule_fires_on(&db);
    }
}

fn a_schedule_fires_on(db: &DbSpec) {
    let s = Scheduler::new(book(db), vec![def(WEEKDAYS), def(EVERY_90)]).unwrap();
    let clock = ManualClock::new(shanghai(2026, 12, 4, 0, 0));
    // Friday 4 December 2026 (Shanghai) and the Saturday after, a blackout for every-90.
    s.tick(shanghai(2026, 12, 4, 0, 0)).unwrap();
    drive(
        &s,
        &clock,
        shanghai(2026, 12, 4, 0, 0),
        shanghai(2026, 12, 6, 0, 0),
    );
    let planned = |patrol: &str| -> Vec<DateTime<Utc>> {
        s.book()
            .list(&RunFilter {
                patrol: Some(patrol.into()),
                ..Default::default()
            })
            .unwrap()
            .iter()
            .map(|r| from_us(r.planned_us))
            .collect()
    };
    assert_eq!(
        planned("weekdays"),
        vec![
            shanghai(2026, 12, 4, 7, 0),
            shanghai(2026, 12, 4, 17, 30),
            shanghai(2026, 12, 5, 9, 30),
        ]
    );
    // Every 90 min from 06:00 inside 06:00-20:00: 06:00, 07:30 … 19:30 (10 on Friday),
    // nothing on the blackout Saturday.
    let every = planned("every-90");
    assert_eq!(every.len(), 10, "{every:?}");
    assert_eq!(every[0], shanghai(2026, 12, 4, 6, 0));
    assert_eq!(every[1], shanghai(2026, 12, 4, 7, 30));
    assert_eq!(every[9], shanghai(2026, 12, 4, 19, 30));
    for r in s.book().list(&RunFilter::default()).unwrap() {
        assert_eq!(r.state, RunState::Waiting, "{r:?}");
        assert_eq!(r.trigger, Trigger::Schedule);
        let late = r.created_us - r.planned_us;
        assert!(
            (0..=60_000_000).contains(&late),
            "booked within the minute it fired: {r:?}"
        );
        let changes = s.book().changes(r.id).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].reason, "scheduled");
    }
    // What comes next, from the Saturday night.
    let next: Vec<_> = s.upcoming(shanghai(2026, 12, 5, 23, 0));
    assert!(next.contains(&("weekdays".into(), Some(shanghai(2026, 12, 6, 9, 30)))));
    assert!(next.contains(&("every-90".into(), Some(shanghai(2026, 12, 6, 6, 0)))));
}

#[test]
fn a_restart_skips_or_runs_late_what_it_missed_and_books_nothing_twice() {
    let (dir, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = common::pg::engines(dir.path(), "restart_skips");
    let second = common::pg::engines(dir2.path(), "restart_skips_2");
    for (db, db2) in first.iter().zip(&second) {
        a_restart_skips_on(db, db2);
    }
}

/// `db` and `db2`: two empty databases of one engine.
fn a_restart_skips_on(db: &DbSpec, db2: &DbSpec) {
    let late = r#"
name = "late"
[schedule]
cron = ["0 7 * * *", "0 8 * * *"]
missed = "late"
late_within_min = 90
"#;
    let skip = r#"
name = "skip"
[schedule]
cron = ["0 7 * * *"]
"#;
    let defs = || vec![def(late), def(skip)];
    {
        let s = Scheduler::new(book(db), defs()).unwrap();
        s.tick(shanghai(2026, 12, 4, 6, 0)).unwrap();
        s.tick(shanghai(2026, 12, 4, 6, 1)).unwrap();
        // The service goes down here (the store is dropped, as by a crash).
    }
    let s = Scheduler::new(book(db), defs()).unwrap();
    let booked = s.tick(shanghai(2026, 12, 4, 9, 0)).unwrap();
    let find = |p: &str, h: u32| {
        booked
            .iter()
            .find(|r| r.patrol == p && r.planned_us == us(shanghai(2026, 12, 4, h, 0)))
            .unwrap_or_else(|| panic!("no {p} run at {h}:00 in {booked:?}"))
    };
    let skipped = find("skip", 7);
    assert_eq!(skipped.state, RunState::Skipped);
    assert!(
        skipped
            .reason
            .contains("2026-12-04 07:00 while the service was down"),
        "{}",
        skipped.reason
    );
    let older = find("late", 7);
    assert_eq!(older.state, RunState::Skipped, "only the latest runs late");
    let latest = find("late", 8);
    assert_eq!(
        (latest.state, latest.trigger),
        (RunState::Waiting, Trigger::Late)
    );
    assert!(latest.reason.starts_with("late: "), "{}", latest.reason);
    assert_eq!(booked.len(), 3);
    // Another restart at the same instant books nothing again.
    drop(s);
    let s = Scheduler::new(book(db), defs()).unwrap();
    assert!(s.tick(shanghai(2026, 12, 4, 9, 0)).unwrap().is_empty());
    assert_eq!(s.book().list(&RunFilter::default()).unwrap().len(), 3);
    // Too late for `late` too: 8:00 missed by more than 90 min is skipped.
    Scheduler::new(book(db2), defs())
        .unwrap()
        .tick(shanghai(2026, 12, 4, 6, 0))
        .unwrap();
    let s = Scheduler::new(book(db2), defs()).unwrap();
    let booked = s.tick(shanghai(2026, 12, 4, 11, 0)).unwrap();
    assert!(
        booked.iter().all(|r| r.state == RunState::Skipped),
        "{booked:?}"
    );
}

#[test]
fn run_states_change_only_as_allowed_and_leases_keep_one_run_per_vehicle() {
    let dir = tempfile::tempdir().unwrap();
    for db in common::pg::engines(dir.path(), "run_states") {
        run_states_on(&db);
    }
}

fn run_states_on(db: &DbSpec) {
    let s = Scheduler::new(book(db), vec![def(WEEKDAYS)]).unwrap();
    let now = shanghai(2026, 12, 4, 10, 0);
    let a = s.start_now("weekdays", "赵艳", now).unwrap().unwrap();
    assert_eq!(a.reason, "started by 赵艳");
    let b = s
        .start_now("weekdays", "赵艳", now + Duration::seconds(1))
        .unwrap()
        .unwrap();
    assert!(s
        .start_now("no-such-patrol", "赵艳", now)
        .unwrap()
        .is_none());
    let book = s.book();
    let t = us(now);
    book.lease(1, a.id, "serve-1", t, t + 60_000_000).unwrap();
    let err = book
        .lease(1, b.id, "serve-2", t, t + 60_000_000)
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!("leased to run {}", a.id)),
        "{err}"
    );
    // An expired lease is taken over.
    book.lease(1, b.id, "serve-2", t + 61_000_000, t + 120_000_000)
        .unwrap();
    assert_eq!(book.lease_holder(1, t + 61_000_000).unwrap(), Some(b.id));
    let r = book
        .transition(b.id, RunState::Preparing, "vehicle 1 ready", Some(1), t)
        .unwrap();
    assert_eq!(r.sysid, Some(1));
    let err = book
        .transition(b.id, RunState::Success, "?", None, t)
        .unwrap_err();
    assert!(err.to_string().contains("cannot become success"), "{err}");
    book.transition(b.id, RunState::Executing, "armed", None, t)
        .unwrap();
    book.transition(b.id, RunState::Success, "all flown", None, t)
        .unwrap();
    // A finished run gives its vehicle back.
    assert_eq!(book.lease_holder(1, t + 61_000_000).unwrap(), None);
    let states: Vec<_> = book.changes(b.id).unwrap().iter().map(|c| c.to).collect();
    assert_eq!(
        states,
        vec![
            RunState::Waiting,
            RunState::Preparing,
            RunState::Executing,
            RunState::Success
        ]
    );
}

#[test]
fn bad_definitions_name_the_patrol_and_the_field() {
    let err = |toml: &str| PatrolDef::from_toml(toml, "bad.toml").unwrap_err();
    let e = err("name = \"x\"\n[schedule]\ncron = [\"0 25 * * *\"]\n");
    assert_eq!(
        (e.patrol.as_str(), e.field.as_str()),
        ("x", "schedule.cron[0]")
    );
    assert!(e.to_string().contains("\"0 25 * * *\""), "{e}");
    let e = err("name = \"x\"\n[schedule]\ntimezone = \"Asia/Beijing\"\n");
    assert_eq!(e.field, "schedule.timezone");
    let e = err("name = \"x\"\npattern = \"spiral\"\n");
    assert_eq!(e.field, "pattern");
    let e = err("name = \"x\"\nalt_m = 150.0\n");
    assert!(e.to_string().contains("ceiling"), "{e}");
    let e = err("name = \"x\"\naltitude = 60\n");
    assert_eq!(e.patrol, "bad.toml");
    assert!(
        e.to_string().contains("altitude"),
        "unknown field named: {e}"
    );
    let e = err("name = \"no spaces allowed\"\n");
    assert_eq!(e.field, "name");
    let ok = def("name = \"x\"\ncells = [\"WQ-04\", \"WQ-99\"]\n");
    let known = vec!["WQ-04".to_string()];
    let e = ok.validate(Some(&known)).unwrap_err();
    assert_eq!(e.field, "cells");
    assert!(e.problem.contains("WQ-99"), "{e}");
}

#[test]
fn the_example_patrols_in_missions_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("missions/patrols");
    let defs = PatrolDef::load_dir(&dir).unwrap();
    assert!(defs.len() >= 2);
    let cells: Vec<String> = gridpatrol::grid::GridMap::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("missions/wenqu.geojson"),
        gridpatrol::grid::Datum::Wgs84,
    )
    .unwrap()
    .cells
    .iter()
    .map(|c| c.id.clone())
    .collect();
    for d in &defs {
        d.validate(Some(&cells)).unwrap();
    }
}

/// A controller frozen in the middle of a write transaction (a stopped process, a paused
/// VM) holds every other controller's writes, and so their takeover of its runs, back
/// only until PostgreSQL ends its idle transaction; what it had written is rolled back.
#[test]
fn a_controller_frozen_mid_transaction_holds_the_others_back_only_seconds() {
    use gridpatrol::store::{Db, Value};
    let Some(pg) = common::pg::database("frozen_mid_transaction") else {
        return;
    };
    const TABLE: &str = "CREATE TABLE marks (who TEXT NOT NULL)";
    let frozen = Arc::new(Db::open(&pg, &[TABLE]).unwrap());
    let other = Db::open(&pg, &[TABLE]).unwrap();
    let (inside_tx, inside) = std::sync::mpsc::channel();
    let (wake_tx, wake) = std::sync::mpsc::channel::<()>();
    let f = frozen.clone();
    let stalled = std::thread::spawn(move || {
        f.transaction(|tx| {
            tx.execute(
                "INSERT INTO marks (who) VALUES (?1)",
                &[Value::Text("frozen".into())],
            )?;
            inside_tx.send(()).unwrap();
            // Frozen here, in the transaction, until the test wakes it.
            let _ = wake.recv();
            Ok::<_, gridpatrol::store::DbError>(())
        })
    });
    inside.recv().unwrap();
    // The other's write waits for the write lock, then goes through while the frozen one
    // still sleeps: waited for without a time limit of its own (it would hang forever).
    other
        .transaction(|tx| {
            tx.execute(
                "INSERT INTO marks (who) VALUES (?1)",
                &[Value::Text("other".into())],
            )
        })
        .unwrap();
    assert!(
        !stalled.is_finished(),
        "the frozen transaction ended by itself"
    );
    wake_tx.send(()).unwrap();
    let woke = stalled.join().unwrap();
    assert!(woke.is_err(), "a transaction the server ended committed");
    let who: Vec<String> = other
        .read(|tx| tx.query_map("SELECT who FROM marks ORDER BY who", &[], |r| r.get(0)))
        .unwrap();
    assert_eq!(who, ["other"]);
}
