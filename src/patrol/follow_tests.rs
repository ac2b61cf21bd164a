//! Following a sortie against a scripted vehicle on an in-memory link, on tokio's paused
//! clock: what the controller concludes when it was held up while the vehicle flew.

use std::sync::Arc;
use std::time::Duration;

use mavlink::dialects::common::*;
use mavlink::MavHeader;
use tokio::io::{AsyncWriteExt, WriteHalf};

use super::*;
use crate::link::{Hub, HubConfig};
use crate::vehicle::{Fleet, FleetConfig, MissionItem, Vehicle};

struct Peer {
    writer: WriteHalf<tokio::io::DuplexStream>,
    seq: u8,
}

impl Peer {
    async fn send(&mut self, msg: MavMessage) {
        let mut buf = Vec::new();
        let h = MavHeader {
            system_id: 1,
            component_id: 1,
            sequence: self.seq,
        };
        self.seq = self.seq.wrapping_add(1);
        mavlink::write_v2_msg(&mut buf, h, &msg).expect("encode");
        self.writer.write_all(&buf).await.expect("peer write");
    }

    async fn heartbeat(&mut self, armed: bool) {
        let mut base_mode = MavModeFlag::MAV_MODE_FLAG_CUSTOM_MODE_ENABLED;
        if armed {
            base_mode |= MavModeFlag::MAV_MODE_FLAG_SAFETY_ARMED;
        }
        self.send(MavMessage::HEARTBEAT(HEARTBEAT_DATA {
            custom_mode: Px4Mode::AutoMission.custom_mode(),
            mavtype: MavType::MAV_TYPE_QUADROTOR,
            autopilot: MavAutopilot::MAV_AUTOPILOT_PX4,
            base_mode,
            system_status: MavState::MAV_STATE_ACTIVE,
            mavlink_version: 3,
        }))
        .await;
    }

    async fn landed(&mut self, state: MavLandedState) {
        self.send(MavMessage::EXTENDED_SYS_STATE(EXTENDED_SYS_STATE_DATA {
            vtol_state: MavVtolState::MAV_VTOL_STATE_UNDEFINED,
            landed_state: state,
        }))
        .await;
    }

    async fn current(&mut self, seq: u16, total: u16) {
        self.send(MavMessage::MISSION_CURRENT(MISSION_CURRENT_DATA {
            seq,
            total,
            ..Default::default()
        }))
        .await;
    }

    async fn reached(&mut self, seq: u16) {
        self.send(MavMessage::MISSION_ITEM_REACHED(
            MISSION_ITEM_REACHED_DATA { seq },
        ))
        .await;
    }
}

fn context(dir: &std::path::Path) -> RunContext {
    let store = Arc::new(EventStore::open(&dir.join("events.db")).expect("store"));
    let wake = Arc::new(Notify::new());
    let run_id = "run-1".to_string();
    let (_tx, abort) = watch::channel(false);
    RunContext {
        recorder: CaptureRecorder::start(store.clone(), run_id.clone(), wake.clone()),
        run_id,
        store,
        wake,
        abort,
        min_battery_pct: 50,
        preflight_wait: Duration::from_secs(10),
        battery_wait: Duration::from_secs(60),
        sortie_timeout: Duration::from_secs(60),
        progress: indicatif::MultiProgress::with_draw_target(
            indicatif::ProgressDrawTarget::hidden(),
        ),
        observer: None,
        divert: Default::default(),
        detached: Default::default(),
        take_over_airborne: false,
    }
}

/// Takeoff, `n` waypoints, return: the patrol ends at item `n`.
fn sortie(n: usize) -> SortieJob {
    let mut mission = vec![MissionItem::takeoff(36.56, 103.68, 30.0)];
    mission.extend((0..n).map(|i| MissionItem::waypoint(36.56 + i as f64 * 1e-4, 103.68, 30.0)));
    mission.push(MissionItem::return_to_launch());
    SortieJob {
        index: 0,
        mission,
        fence: Vec::new(),
        cells: Vec::new(),
        flight_time_s: 60.0,
    }
}

/// A run's context, and a scripted vehicle on the ground, disarmed, heard by a fleet.
async fn on_the_ground() -> (tempfile::TempDir, RunContext, Fleet, Vehicle, Peer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(dir.path());
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let hub = Hub::new(HubConfig::default()).expect("hub");
    hub.add_stream("scripted-peer", ours, None);
    let fleet = Fleet::new(hub, FleetConfig::default());
    let (_r, w) = tokio::io::split(theirs);
    let mut peer = Peer { writer: w, seq: 0 };
    peer.heartbeat(false).await;
    peer.landed(MavLandedState::MAV_LANDED_STATE_ON_GROUND)
        .await;
    let v = fleet
        .wait_vehicle(Some(1), Duration::from_secs(5))
        .await
        .expect("vehicle heard");
    assert!(v.wait_for(Duration::from_secs(5), |t| t.on_ground()).await);
    (dir, ctx, fleet, v, peer)
}

/// Follows `job` as a run does after starting it.
async fn follow(
    v: &Vehicle,
    listening: Listening,
    job: &SortieJob,
    ctx: &RunContext,
) -> Result<(), String> {
    let bar = bar_for(ctx, v.sysid(), job.mission.len() as u64);
    let (mut tracker, mut rep) = (IndexTracker::default(), VehicleReport::default());
    follow_sortie(
        v,
        listening,
        job,
        ctx,
        &bar,
        &mut tracker,
        &mut rep,
        Joined::Started,
    )
    .await
}

/// The vehicle armed, flew the whole sortie, landed and disarmed while the controller
/// was held up (here: not yet following, then not polled): everything it reported was
/// queued, and the telemetry already says "landed, disarmed". The sortie counts as flown.
#[tokio::test(start_paused = true)]
async fn a_sortie_flown_while_the_controller_was_held_up_counts_as_flown() {
    let (_dir, ctx, _fleet, v, mut peer) = on_the_ground().await;
    let job = sortie(10);
    let total = job.mission.len() as u16;
    // What the run does before it starts the sortie.
    let listening = Listening::to(&v);
    // Armed and in the air before the controller follows.
    peer.heartbeat(true).await;
    peer.landed(MavLandedState::MAV_LANDED_STATE_IN_AIR).await;
    peer.current(0, total).await;
    assert!(
        v.wait_for(Duration::from_secs(5), |t| t.armed && !t.on_ground())
            .await
    );
    let follow = follow(&v, listening, &job, &ctx);
    tokio::pin!(follow);
    // Its first round: the tick sees the vehicle armed in the air.
    assert!(
        tokio::time::timeout(Duration::ZERO, &mut follow)
            .await
            .is_err(),
        "the sortie ended at once"
    );
    // Then it is not polled while the vehicle flies the whole sortie and disarms.
    for s in 0..total - 1 {
        peer.reached(s).await;
        peer.current(s + 1, total).await;
    }
    peer.landed(MavLandedState::MAV_LANDED_STATE_ON_GROUND)
        .await;
    peer.heartbeat(false).await;
    assert!(
        v.wait_for(Duration::from_secs(5), |t| !t.armed && t.on_ground())
            .await
    );
    // Past a tick: the tick and the queued events are both ready when it wakes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outcome = tokio::time::timeout(Duration::from_secs(5), follow)
        .await
        .expect("the sortie's end was seen");
    assert_eq!(outcome, Ok(()));
}

/// What a vehicle on the ground still says of its last mission before this sortie arms
/// is not this sortie's progress: a sortie that never took off is not counted as flown.
#[tokio::test(start_paused = true)]
async fn items_reached_before_the_arm_belong_to_the_last_mission() {
    let (_dir, ctx, _fleet, v, mut peer) = on_the_ground().await;
    let job = sortie(10);
    let total = job.mission.len() as u16;
    let listening = Listening::to(&v);
    // The last mission's final item, repeated late; then this sortie arms and disarms
    // on the ground without flying.
    peer.reached(total - 1).await;
    peer.current(total - 1, total).await;
    peer.heartbeat(true).await;
    peer.heartbeat(false).await;
    let outcome = tokio::time::timeout(Duration::from_secs(5), follow(&v, listening, &job, &ctx))
        .await
        .expect("the sortie's end was seen");
    let err = outcome.expect_err("a sortie that never flew");
    assert!(err.contains("last item reached: none"), "{err}");
}
