//! The link and the plan transfers against real PX4 v1.16 SITL (../shared/px4-sitl; a test
//! skips with one line where it is absent, and fails in CI). Each test has its own PX4
//! instance and GCS port, so they run in parallel.

mod common;

use std::time::Duration;

use common::px4::{free_udp_port, launcher, Px4, DOCK};
use gridpatrol::link::{Hub, HubConfig, LinkConfig};
use gridpatrol::vehicle::{
    Fleet, FleetConfig, MissionError, MissionItem, MissionStage, MissionType, Vehicle,
};
use mavlink::dialects::common::{MavMessage, MavMissionResult, MavMissionType};

const WAIT: Duration = Duration::from_secs(30);

/// PX4 instance `instance` at `speed`× and a fleet listening for it on `link` (an address
/// with port 0, or a proxy's port through `gcs_port`).
async fn px4_and_fleet(instance: u8, speed: f64) -> Option<(Px4, Fleet, Vehicle)> {
    let launcher = launcher()?;
    let hub = Hub::connect(
        HubConfig::default(),
        &[LinkConfig::new("udpin:127.0.0.1:0".parse().unwrap())],
    )
    .await
    .unwrap();
    let port = hub.links()[0].local_addr.unwrap().port();
    let px4 = Px4::start(&launcher, instance, speed, DOCK, port);
    let fleet = Fleet::new(hub, FleetConfig::default());
    let v = fleet.wait_vehicle(Some(px4.sysid()), WAIT).await.unwrap();
    Some((px4, fleet, v))
}

/// `n` waypoints on a line north of the dock, 30 m up.
fn line(n: usize) -> Vec<MissionItem> {
    let mut items = vec![MissionItem::takeoff(DOCK.0, DOCK.1, 30.0)];
    items.extend((1..n).map(|i| MissionItem::waypoint(DOCK.0 + i as f64 * 2e-5, DOCK.1, 30.0)));
    items
}

fn fence_polygon(n: usize, radius_deg: f64) -> Vec<MissionItem> {
    (0..n)
        .map(|i| {
            let a = std::f64::consts::TAU * i as f64 / n as f64;
            let mut it = MissionItem::waypoint(
                DOCK.0 + radius_deg * a.sin(),
                DOCK.1 + radius_deg * a.cos(),
                0.0,
            );
            it.command = 5001;
            it.params = [n as f32, 0.0, 0.0, 0.0];
            it
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_real_px4() {
    let Some(launcher) = launcher() else { return };
    let port = free_udp_port();
    let px4 = Px4::start(&launcher, 0, 4.0, DOCK, port);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridpatrol"))
        .args(["status", "--connect", &format!("udpin:127.0.0.1:{port}")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("vehicle {:>3}", px4.sysid())))
        .unwrap_or_else(|| panic!("no vehicle line in {text}"));
    for want in [
        "disarmed",
        "fix 3",
        "battery 100 %",
        "link connected",
        "36.56",
    ] {
        assert!(line.contains(want), "{want:?} not in {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mission_fence_and_rally_round_trips_at_px4s_capacities() {
    let Some((_px4, _fleet, v)) = px4_and_fleet(1, 4.0).await else {
        return;
    };
    let mission = line(500);
    v.upload_verified(MissionType::Mission, &mission)
        .await
        .unwrap();
    // The fence is read back in PX4's frame (absolute, params 2-4 dropped) and still
    // compares equal; 64 items is PX4's capacity, 65 is refused at MISSION_COUNT.
    let fence = fence_polygon(64, 0.01);
    v.upload_verified(MissionType::Fence, &fence).await.unwrap();
    let read = v.download(MissionType::Fence).await.unwrap();
    assert_eq!(read[0].frame, 5, "PX4 reports fence vertices as GLOBAL_INT");
    assert_eq!(
        v.upload(MissionType::Fence, &fence_polygon(65, 0.01)).await,
        Err(MissionError::Rejected {
            stage: MissionStage::Upload,
            item: None,
            result: MavMissionResult::MAV_MISSION_NO_SPACE
        })
    );
    let rally: Vec<MissionItem> = (0..32)
        .map(|i| {
            let mut it = MissionItem::waypoint(DOCK.0 + i as f64 * 1e-4, DOCK.1, 30.0);
            it.command = 5100;
            it
        })
        .collect();
    v.upload_verified(MissionType::Rally, &rally).await.unwrap();
    // The earlier plans are still there, unchanged by the refused upload.
    assert_eq!(v.download(MissionType::Fence).await.unwrap().len(), 64);
    gridpatrol::vehicle::compare_missions(
        &mission,
        &v.download(MissionType::Mission).await.unwrap(),
    )
    .unwrap();
    for kind in [MissionType::Mission, MissionType::Fence, MissionType::Rally] {
        v.clear(kind).await.unwrap();
        assert!(v.download(kind).await.unwrap().is_empty(), "{kind:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_to_a_busy_mission_manager_is_retried_until_it_frees() {
    let Some((_px4, fleet, v)) = px4_and_fleet(2, 2.0).await else {
        return;
    };
    let mut heard = fleet.hub().subscribe();
    // A download left open (no final ACK) holds PX4's mission manager busy until its 5 s
    // protocol timeout, as another ground station would.
    fleet.hub().send_to(
        v.sysid(),
        MavMessage::MISSION_REQUEST_LIST(mavlink::dialects::common::MISSION_REQUEST_LIST_DATA {
            target_system: v.sysid(),
            target_component: 1,
            mission_type: MavMissionType::MAV_MISSION_TYPE_MISSION,
        }),
    );
    let items = line(20);
    v.upload_verified(MissionType::Mission, &items)
        .await
        .expect("retried until PX4 took it");
    let mut busy = 0;
    while let Ok(inb) = heard.try_recv() {
        if let MavMessage::MISSION_ACK(a) = &inb.msg {
            if a.mavtype == MavMissionResult::MAV_MISSION_ERROR {
                busy += 1;
            }
        }
    }
    assert!(busy > 0, "PX4 answered busy at least once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_lose_nothing_at_10_20_and_30_percent_loss_each_way_through_a_proxy() {
    let Some(launcher) = launcher() else { return };
    let hub = Hub::connect(
        HubConfig {
            tlog: std::env::var_os("PX4_TEST_TLOG").map(Into::into),
            ..HubConfig::default()
        },
        &[LinkConfig::new("udpin:127.0.0.1:0".parse().unwrap())],
    )
    .await
    .unwrap();
    let gcs = hub.links()[0].local_addr.unwrap();
    let proxy = common::proxy::start(0.0, gcs, 20).await;
    // At 2× PX4 drops a transfer after 2.5 s of silence (its 5 s): bursts of loss on a
    // loaded machine do not outlast that.
    let px4 = Px4::start(&launcher, 3, 2.0, DOCK, proxy.port);
    let fleet = Fleet::new(hub, FleetConfig::default());
    let v = fleet.wait_vehicle(Some(px4.sysid()), WAIT).await.unwrap();
    let mission = line(60);
    let fence = fence_polygon(20, 0.01);
    let tail = |px4: &Px4| {
        let log = px4.log();
        log[log.len().saturating_sub(3000)..].to_string()
    };
    let mut times = Vec::new();
    for loss in [0.0, 0.1, 0.2, 0.3] {
        proxy.set_loss(loss);
        let lost_before = v.telemetry().quality.lost;
        let t0 = std::time::Instant::now();
        // Each is read back and compared item by item: nothing lost, nothing changed.
        for (kind, items) in [
            (MissionType::Mission, &mission),
            (MissionType::Fence, &fence),
        ] {
            if let Err(e) = v.upload_verified(kind, items).await {
                panic!("{:.0} % loss, {kind:?}: {e}\n{}", loss * 100.0, tail(&px4));
            }
        }
        times.push(t0.elapsed());
        if loss > 0.0 {
            assert!(
                v.telemetry().quality.lost > lost_before,
                "the proxy dropped frames at {loss}: {:?}",
                v.telemetry().quality
            );
        }
    }
    for (k, loss) in [10, 20, 30].into_iter().enumerate() {
        common::faults::record(
            "transfers_lose_nothing_at_10_20_and_30_percent_loss_each_way_through_a_proxy",
            &format!("{loss} % packet loss each way, mission (60 items) and fence (20) uploaded to PX4 v1.16 SITL and read back"),
            "0 items: both read back identical",
            &format!(
                "transfer and read-back {} ({} with no loss)",
                common::faults::secs(times[k + 1]),
                common::faults::secs(times[0])
            ),
        );
    }
}
