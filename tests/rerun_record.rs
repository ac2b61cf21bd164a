//! `--rerun`: a patrol recorded for the Rerun viewer (only with the `rerun` cargo feature).
#![cfg(feature = "rerun")]

mod common;

use std::sync::Arc;

use gridpatrol::patrol::observe::RunObserver;
use gridpatrol::patrol::rerun_rec::RerunRecorder;
use rerun::external::re_log_encoding::decoder::decode_bytes;
use rerun::external::re_log_types::LogMsg;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_patrol_holds_the_map_route_vehicles_photos_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let rrd = dir.path().join("run.rrd");
    let rec = Arc::new(RerunRecorder::to_file(&rrd).unwrap());
    let observer: Arc<dyn RunObserver> = rec.clone();
    let f = common::patrol::fly_square_with(common::patrol::SquareRun {
        half_m: 80.0,
        issues: 6,
        seed: 4,
        observer: Some(observer),
        ..Default::default()
    })
    .await;
    assert!(f.report.pipeline.new_events > 0);
    rec.flush();
    drop(rec);
    let bytes = std::fs::read(&rrd).unwrap();
    let msgs = decode_bytes(&bytes).expect("a readable .rrd");
    let mut paths = std::collections::BTreeSet::new();
    for m in &msgs {
        if let LogMsg::ArrowMsg(_, a) = m {
            for v in a.batch.schema().metadata().values() {
                paths.insert(v.clone());
            }
        }
    }
    let all = paths.into_iter().collect::<Vec<_>>().join("\n");
    for want in [
        "map/cells",
        "map/route/sortie_1",
        "map/vehicle/1",
        "map/track/1",
        "world/camera/1/image",
        "world/camera/1/image/detections",
        "map/footprint/1",
        "map/events/1",
    ] {
        assert!(
            all.contains(want),
            "{want} missing from the recording:\n{all}"
        );
    }
}
