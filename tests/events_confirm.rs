//! A later patrol that no longer sees a resolved issue confirms the fix; one that still
//! sees it adds a sighting instead; an event that is not resolved is never "confirmed".

mod common;

use gridpatrol::capture::Capture;
use gridpatrol::detect::{Category, Detection};
use gridpatrol::events::store::MergePolicy;
use gridpatrol::events::{Action, EventStore, FiledDetection};
use gridpatrol::geotag::GroundFix;

const T0: i64 = 1_800_000_000_000_000;
const H: i64 = 3_600_000_000;

fn capture(store: &EventStore, index: i32, t: i64) -> i64 {
    let c = Capture {
        sysid: 1,
        index,
        time_utc_us: t as u64,
        lat: 36.56,
        lon: 103.68,
        alt_msl: 1860.0,
        alt_rel: 60.0,
        q: [1.0, 0.0, 0.0, 0.0],
        file_url: format!("file:///x/{index}.jpg"),
    };
    assert!(store.record_capture("r", &c, t).unwrap());
    store
        .due_captures(i64::MAX, 100)
        .unwrap()
        .into_iter()
        .find(|p| p.capture.index == index)
        .unwrap()
        .id
}

fn garbage_at(lat: f64, lon: f64) -> FiledDetection {
    FiledDetection {
        detection: Detection {
            category: Category::Garbage,
            confidence: 0.9,
            bbox: [600.0, 400.0, 640.0, 440.0],
        },
        fix: GroundFix {
            lat,
            lon,
            uncertainty_m: 3.0,
            range_m: 5.0,
        },
        at_edge: false,
        extent_m: 1.0,
    }
}

#[test]
fn absence_confirms_a_resolved_fix_and_presence_does_not() {
    let dir = tempfile::tempdir().unwrap();
    for spec in common::pg::engines(dir.path(), "absence_confirms_a_resolved_fi") {
        absence_confirms_a_resolved_fix_and_presence_does_not_on(
            EventStore::connect(&spec).unwrap(),
        );
    }
}

fn absence_confirms_a_resolved_fix_and_presence_does_not_on(s: EventStore) {
    let none = |_: f64, _: f64, _: f64| Some("T-1".to_string());
    let p = MergePolicy::default();
    // First patrol: two piles of garbage.
    let c = capture(&s, 0, T0);
    let o = s
        .file_capture(
            c,
            &[garbage_at(36.56, 103.68), garbage_at(36.5603, 103.68)],
            None,
            &none,
            p,
            T0,
        )
        .unwrap();
    assert_eq!(o.new_events, vec![1, 2]);
    // Event 1 is worked to resolved; event 2 is left open.
    for a in [
        Action::Sign,
        Action::Dispatch {
            department: "环卫".into(),
            handler: "李".into(),
            deadline_hours: None,
        },
        Action::Start,
        Action::Resolve {
            feedback: "done".into(),
            photos: vec![],
        },
    ] {
        s.apply(1, &a, "w", "", T0 + H).unwrap();
    }
    // A later patrol: a photo over both places, finding nothing.
    let c = capture(&s, 1, T0 + 24 * H);
    let o = s
        .file_capture(
            c,
            &[],
            Some((36.56015, 103.68, 60.0)),
            &none,
            p,
            T0 + 24 * H,
        )
        .unwrap();
    assert_eq!(o.confirmed, vec![1], "only the resolved one is confirmed");
    let e1 = s.get(1).unwrap();
    assert!(e1.confirmed);
    assert!(s
        .audit(1)
        .unwrap()
        .last()
        .unwrap()
        .note
        .contains("fix confirmed"));
    assert!(!s.get(2).unwrap().confirmed);
    // A photo that does not cover it confirms nothing; one that still shows garbage at a
    // resolved place adds a sighting instead.
    let c = capture(&s, 2, T0 + 25 * H);
    let o = s
        .file_capture(
            c,
            &[garbage_at(36.5603, 103.68)],
            Some((36.5603, 103.68, 10.0)),
            &none,
            p,
            T0 + 25 * H,
        )
        .unwrap();
    assert!(o.confirmed.is_empty());
    assert_eq!(o.merged, vec![2]);
    assert_eq!(s.get(2).unwrap().sightings, 2);
}

#[test]
fn two_events_that_turn_out_to_be_one_object_are_folded_into_the_older() {
    let dir = tempfile::tempdir().unwrap();
    for spec in common::pg::engines(dir.path(), "two_events_that_turn_out_to_be") {
        two_events_that_turn_out_to_be_one_object_are_folded_into_the_older_on(
            EventStore::connect(&spec).unwrap(),
        );
    }
}

fn two_events_that_turn_out_to_be_one_object_are_folded_into_the_older_on(s: EventStore) {
    let cell = |_: f64, _: f64, _: f64| Some("T-1".to_string());
    let p = MergePolicy::default();
    // 1.5 × √2 × 3 m ≈ 6.4 m gate. Two sightings 8 m apart: two events.
    let north = |m: f64| 36.56 + m / 111_195.0;
    let c = capture(&s, 0, T0);
    assert_eq!(
        s.file_capture(c, &[garbage_at(north(0.0), 103.68)], None, &cell, p, T0)
            .unwrap()
            .new_events,
        vec![1]
    );
    let c = capture(&s, 1, T0 + 1);
    assert_eq!(
        s.file_capture(c, &[garbage_at(north(8.0), 103.68)], None, &cell, p, T0 + 1)
            .unwrap()
            .new_events,
        vec![2]
    );
    // More photos of the second one place it 4.5 m from the first: within the gate, so they
    // were one object all along.
    let c = capture(&s, 2, T0 + 2);
    let o = s
        .file_capture(c, &[garbage_at(north(1.0), 103.68)], None, &cell, p, T0 + 2)
        .unwrap();
    assert_eq!(o.merged, vec![1], "the nearer one took the sighting");
    let c = capture(&s, 3, T0 + 3);
    let o = s
        .file_capture(c, &[garbage_at(north(5.5), 103.68)], None, &cell, p, T0 + 3)
        .unwrap();
    assert_eq!(o.folded, vec![2], "{o:?}");
    let list = s.list(None, None, None).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, 1);
    assert_eq!(list[0].sightings, 4);
    assert_eq!(s.evidence(1).unwrap().len(), 4);
    let two = s.get(2).unwrap();
    assert_eq!(two.merged_into, Some(1));
    assert!(s
        .audit(2)
        .unwrap()
        .last()
        .unwrap()
        .note
        .contains("same object as event 1"));
    let e = s
        .apply(2, &Action::Sign, "w", "", T0 + 4)
        .unwrap_err()
        .to_string();
    assert!(e.contains("merged into it"), "{e}");
    assert_eq!(s.stats(T0 + 5).unwrap().total, 1);
}
