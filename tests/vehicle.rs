//! The vehicle client against the simulator, over real UDP on 127.0.0.1.

mod common;

use std::time::Duration;

use common::proxy::Proxy;
use common::{fast_fleet, rig, simple, with_faults};
use gridpatrol::link::{Hub, HubConfig, Inbound, LinkConfig, SigningKey};
use gridpatrol::vehicle::{
    CommandError, Fleet, FleetConfig, LinkState, MissionError, MissionItem, MissionStage,
    MissionType, ParamValue, Px4Mode, Vehicle, VehicleEvent,
};
use gridpatrol_sim::{Faults, SimConfig};
use mavlink::dialects::common::MavMessage;
use mavlink::dialects::common::MavMissionResult;

const WAIT: Duration = Duration::from_secs(5);

fn line(n: usize) -> Vec<MissionItem> {
    (0..n)
        .map(|i| {
            MissionItem::waypoint(
                36.56 + i as f64 * 1e-5,
                103.68 + (i % 7) as f64 * 1e-5,
                30.0 + (i % 13) as f32,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_and_download_1000_items_with_20_percent_loss_each_way() {
    let faults = Faults {
        loss_in: 0.2,
        loss_out: 0.2,
        ..Default::default()
    };
    // Three vehicles, each losing frames with its own random sequence, transfer at once.
    let sim = SimConfig {
        vehicles: 3,
        faults: vec![faults],
        mission_retry_s: 0.02,
        seed: 7,
        ..Default::default()
    };
    // Short ground timeouts: a lost request or item costs one timeout, and there are hundreds.
    let fleet = FleetConfig {
        mission_timeout: Duration::from_millis(15),
        mission_retries: 100,
        ..fast_fleet()
    };
    let r = rig(sim, fleet, HubConfig::default(), None).await;
    let vs = r.fleet.wait_vehicles(3, WAIT).await.unwrap();
    let items = line(1000);
    // upload_verified downloads all 1000 items again and compares them one by one.
    let runs = vs
        .iter()
        .map(|v| v.upload_verified(MissionType::Mission, &items));
    for (v, res) in vs.iter().zip(futures::future::join_all(runs).await) {
        res.unwrap_or_else(|e| panic!("vehicle {}: {e}", v.sysid()));
        assert!(
            v.telemetry().quality.lost > 0,
            "the link really lost frames"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geofence_and_rally_plans_are_separate() {
    let r = simple(SimConfig::default()).await;
    let v = r.fleet.wait_vehicle(Some(1), WAIT).await.unwrap();
    let mut fence = line(4);
    for f in &mut fence {
        f.command = 5001; // NAV_FENCE_POLYGON_VERTEX_INCLUSION
        f.params = [4.0, 0.0, 0.0, 0.0];
    }
    v.upload_verified(MissionType::Fence, &fence).await.unwrap();
    v.upload_verified(MissionType::Mission, &line(3))
        .await
        .unwrap();
    assert_eq!(v.download(MissionType::Fence).await.unwrap().len(), 4);
    assert_eq!(v.download(MissionType::Rally).await.unwrap().len(), 0);
    v.clear(MissionType::Fence).await.unwrap();
    assert!(v.download(MissionType::Fence).await.unwrap().is_empty());
    assert_eq!(v.download(MissionType::Mission).await.unwrap().len(), 3);
    v.set_current(2).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vehicle_that_never_answers_gives_a_clean_timeout() {
    let (_r, v) = with_faults(Faults {
        loss_in: 1.0,
        ..Default::default()
    })
    .await;
    let err = v.upload(MissionType::Mission, &line(5)).await.unwrap_err();
    assert!(
        matches!(
            err,
            MissionError::Timeout {
                stage: MissionStage::Upload,
                item: None,
                ..
            }
        ),
        "{err}"
    );
    let err = v.arm().await.unwrap_err();
    assert!(
        matches!(err, CommandError::Timeout { attempts: 6, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_ack_names_its_result() {
    let r = simple(SimConfig {
        mission_limit: 10,
        ..Default::default()
    })
    .await;
    let v = r.fleet.wait_vehicle(Some(1), WAIT).await.unwrap();
    let err = v.upload(MissionType::Mission, &line(20)).await.unwrap_err();
    assert_eq!(
        err,
        MissionError::Rejected {
            stage: MissionStage::Upload,
            item: None,
            result: MavMissionResult::MAV_MISSION_NO_SPACE
        }
    );
    // A bad item is refused at that item.
    let mut items = line(5);
    items[3].frame = 1; // MAV_FRAME_LOCAL_NED: PX4 refuses it for a waypoint
    let err = v.upload(MissionType::Mission, &items).await.unwrap_err();
    assert_eq!(
        err,
        MissionError::Rejected {
            stage: MissionStage::Upload,
            item: Some(3),
            result: MavMissionResult::MAV_MISSION_UNSUPPORTED_FRAME
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_is_retried_then_acked() {
    let (_r, v) = with_faults(Faults {
        drop_first_commands: 2,
        ..Default::default()
    })
    .await;
    let ack = v.set_mode(Px4Mode::AutoLoiter).await.unwrap();
    assert_eq!(ack.attempts, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arming_without_gps_is_refused_with_px4s_reason() {
    let r = simple(SimConfig {
        no_gps: true,
        ..Default::default()
    })
    .await;
    let v = r.fleet.wait_vehicle(Some(1), WAIT).await.unwrap();
    match v.arm().await.unwrap_err() {
        CommandError::TemporarilyRejected {
            reason: Some(reason),
            ..
        } => {
            assert!(reason.contains("global position"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!v.telemetry().armed);
    assert!(matches!(
        v.command_long(gridpatrol::vehicle::CommandSpec::new(
            mavlink::dialects::common::MavCmd::MAV_CMD_DO_FENCE_ENABLE,
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        ))
        .await,
        Err(CommandError::Unsupported { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_lost_and_regained() {
    let faults = Faults {
        outage: Some((1.0, 1.5)),
        ..Default::default()
    };
    let r = simple(SimConfig {
        faults: vec![faults],
        ..Default::default()
    })
    .await;
    let mut events = r.fleet.events();
    let v = r.fleet.wait_vehicle(Some(1), WAIT).await.unwrap();
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(e) = events.recv().await {
            if matches!(e.event, VehicleEvent::LinkLost | VehicleEvent::LinkRegained) {
                seen.push(e.event);
                if seen.len() == 2 {
                    break;
                }
            }
        }
    })
    .await;
    assert_eq!(
        seen,
        vec![VehicleEvent::LinkLost, VehicleEvent::LinkRegained]
    );
    assert_eq!(v.telemetry().link, LinkState::Connected);
    assert!(
        v.telemetry().quality.lost > 0,
        "the outage shows as lost frames"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_vehicles_on_one_link() {
    let r = simple(SimConfig {
        vehicles: 2,
        ..Default::default()
    })
    .await;
    let vs = r.fleet.wait_vehicles(2, WAIT).await.unwrap();
    assert_eq!(r.fleet.sysids(), vec![1, 2]);
    vs[0]
        .upload_verified(MissionType::Mission, &line(3))
        .await
        .unwrap();
    vs[1]
        .upload_verified(MissionType::Mission, &line(7))
        .await
        .unwrap();
    assert_eq!(vs[0].download(MissionType::Mission).await.unwrap().len(), 3);
    assert_eq!(vs[1].download(MissionType::Mission).await.unwrap().len(), 7);
    vs[1].arm().await.unwrap();
    assert!(vs[1].wait_for(WAIT, |t| t.armed).await);
    assert!(!vs[0].telemetry().armed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_accepts_the_key_and_rejects_a_wrong_one() {
    let key = SigningKey::from_passphrase("gridpatrol test key");
    let wrong = SigningKey::from_passphrase("not the key");
    let sim = SimConfig {
        vehicles: 2,
        signing: vec![Some(key.0), Some(wrong.0)],
        ..Default::default()
    };
    let r = rig(sim, fast_fleet(), HubConfig::default(), Some(key)).await;
    let v = r.fleet.wait_vehicle(Some(1), WAIT).await.unwrap();
    // Our signed command reaches the signed vehicle and its signed ack reaches us.
    v.set_mode(Px4Mode::AutoLoiter).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        r.fleet.vehicle(2).is_none(),
        "the wrongly signed vehicle must not appear"
    );
    let stats = r.fleet.hub().link_stats(0).unwrap();
    assert!(stats.bad_signature > 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_frames_are_rejected_on_a_signed_link() {
    let key = SigningKey::from_passphrase("k");
    let r = rig(
        SimConfig::default(),
        fast_fleet(),
        HubConfig::default(),
        Some(key),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(r.fleet.sysids().is_empty());
    assert!(r.fleet.hub().link_stats(0).unwrap().bad_signature > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_read_set_and_list() {
    let r = simple(SimConfig::default()).await;
    let v = r.fleet.wait_vehicle(Some(1), WAIT).await.unwrap();
    assert_eq!(
        v.param_get("COM_DL_LOSS_T").await.unwrap(),
        ParamValue::Int(10),
        "PX4 SITL's value at speed 1"
    );
    v.param_set("MPC_XY_CRUISE", ParamValue::Float(8.5))
        .await
        .unwrap();
    assert_eq!(
        v.param_get("MPC_XY_CRUISE").await.unwrap(),
        ParamValue::Float(8.5)
    );
    let all = v.param_list().await.unwrap();
    assert_eq!(all.len(), 900, "PX4 v1.16 SITL's list");
    assert_eq!(all["MPC_XY_CRUISE"], ParamValue::Float(8.5));
    assert!(v.param_get("NO_SUCH_PARAM").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mission_flies_to_landing_and_the_tlog_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let tlog = dir.path().join("run.tlog");
    let hub_cfg = HubConfig {
        tlog: Some(tlog.clone()),
        ..HubConfig::default()
    };
    let r = rig(
        SimConfig {
            speed: 20.0,
            ..Default::default()
        },
        fast_fleet(),
        hub_cfg,
        None,
    )
    .await;
    let v = r.fleet.wait_vehicle(Some(1), WAIT).await.unwrap();
    assert!(v.wait_for(WAIT, |t| t.home.is_some()).await);
    let h = v.telemetry().home.unwrap();
    let items = vec![
        MissionItem::takeoff(h.lat, h.lon, 20.0),
        MissionItem::waypoint(h.lat + 0.0005, h.lon, 20.0),
        MissionItem::return_to_launch(),
    ];
    v.upload_verified(MissionType::Mission, &items)
        .await
        .unwrap();
    let mut events = v.events();
    v.start_mission_armed(Duration::from_secs(10))
        .await
        .unwrap();
    let mut reached = Vec::new();
    let mut modes = Vec::new();
    let landed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(e) = events.next().await {
            match e {
                VehicleEvent::MissionItemReached(s) => reached.push(s),
                VehicleEvent::ModeChanged(m) => modes.push(m),
                VehicleEvent::Armed(false) => return true,
                _ => {}
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(landed, "disarmed after landing; modes {modes:?}");
    assert_eq!(
        reached,
        vec![0, 1],
        "each item reported once although PX4 repeats them"
    );
    assert!(modes.contains(&Px4Mode::AutoRtl));
    r.fleet.hub().flush_tlog();
    let data = std::fs::read(&tlog).unwrap();
    let summary = gridpatrol::replay::replay(&data, |_, _, _| {});
    assert!(summary.by_name["MISSION_ITEM_INT"] >= 6, "3 up, 3 down");
    assert!(summary.by_name["HEARTBEAT"] > 5, "both directions");
    assert!(summary
        .events
        .iter()
        .any(|(_, _, e)| *e == VehicleEvent::Armed(true)));
    assert_eq!(summary.stats.bad_crc, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_progress_acks_are_followed_without_resending() {
    let r = simple(SimConfig::default()).await;
    let v = r.fleet.wait_vehicle(Some(1), WAIT).await.unwrap();
    let spec = gridpatrol::vehicle::CommandSpec::new(
        mavlink::dialects::common::MavCmd::MAV_CMD_PREFLIGHT_CALIBRATION,
        [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    );
    let ack = v.command_long(spec).await.unwrap();
    assert_eq!(ack.progress, vec![0, 50]);
    assert_eq!(ack.attempts, 1);
    // COMMAND_INT takes the same path.
    v.command_int(gridpatrol::vehicle::CommandSpec::new(
        mavlink::dialects::common::MavCmd::MAV_CMD_NAV_RETURN_TO_LAUNCH,
        [0.0; 7],
    ))
    .await
    .unwrap();
    assert!(v.wait_for(WAIT, |t| t.mode == Px4Mode::AutoRtl).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vehicle_that_stops_requesting_times_out_at_that_item() {
    let (_r, v) = with_faults(Faults {
        mission_stall_after: Some(4),
        ..Default::default()
    })
    .await;
    let err = v.upload(MissionType::Mission, &line(10)).await.unwrap_err();
    assert!(
        matches!(
            err,
            MissionError::Timeout {
                stage: MissionStage::Upload,
                item: Some(4),
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeoff_pause_land_and_auto_disarm() {
    let r = simple(SimConfig {
        speed: 20.0,
        ..Default::default()
    })
    .await;
    let v = r.fleet.wait_vehicle(Some(1), WAIT).await.unwrap();
    v.arm().await.unwrap();
    v.takeoff(f32::NAN).await.unwrap();
    assert!(v.wait_for(WAIT, |t| t.mode == Px4Mode::AutoTakeoff).await);
    assert!(
        v.wait_for(WAIT, |t| t.position.is_some_and(|p| p.alt_rel > 1.0))
            .await,
        "climbing"
    );
    v.pause().await.unwrap();
    assert!(v.wait_for(WAIT, |t| t.mode == Px4Mode::AutoLoiter).await);
    v.land().await.unwrap();
    assert!(
        v.wait_for(WAIT, |t| t.mode == Px4Mode::AutoLand || !t.armed)
            .await
    );
    assert!(
        v.wait_for(Duration::from_secs(10), |t| !t.armed && t.on_ground())
            .await,
        "auto-disarmed on the ground"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parameter_list_fills_its_gaps_under_loss() {
    let faults = Faults {
        loss_out: 0.3,
        ..Default::default()
    };
    let r = simple(SimConfig {
        faults: vec![faults],
        seed: 3,
        ..Default::default()
    })
    .await;
    let v = r.fleet.wait_vehicle(Some(1), WAIT).await.unwrap();
    let all = v.param_list().await.unwrap();
    assert_eq!(all.len(), 900, "every PX4 parameter the simulator has");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vehicle_heard_on_two_links_is_one_vehicle() {
    use gridpatrol::link::{Hub, LinkConfig};
    let hub = Hub::new(HubConfig::default()).unwrap();
    let a = hub
        .add_link(LinkConfig::new("udpin:127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let b = hub
        .add_link(LinkConfig::new("udpin:127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    // The same aircraft (system 1) over two radios.
    let _radio = gridpatrol_sim::Sim::start(SimConfig {
        gcs: a.local_addr.unwrap(),
        base_port: None,
        ..Default::default()
    })
    .await
    .unwrap();
    let _lte = gridpatrol_sim::Sim::start(SimConfig {
        gcs: b.local_addr.unwrap(),
        base_port: None,
        ..Default::default()
    })
    .await
    .unwrap();
    let fleet = gridpatrol::vehicle::Fleet::new(hub.clone(), fast_fleet());
    let v = fleet.wait_vehicle(Some(1), WAIT).await.unwrap();
    assert!(v.wait_for(WAIT, |t| t.links.len() == 2).await);
    assert_eq!(fleet.sysids(), vec![1]);
    assert!(hub.route(1).is_some());
    v.param_get("NAV_ACC_RAD").await.unwrap();
}

/// A fleet at its default timeouts, and the simulator at `speed`× behind a proxy that can
/// cut the link.
async fn behind_proxy(speed: f64) -> (Fleet, gridpatrol_sim::Sim, Proxy, Vehicle) {
    let hub = Hub::new(HubConfig {
        heartbeat: Some(Duration::from_secs(1)),
        ..HubConfig::default()
    })
    .unwrap();
    let link = hub
        .add_link(LinkConfig::new("udpin:127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let proxy = common::proxy::start(0.0, link.local_addr.unwrap(), 1).await;
    let sim = gridpatrol_sim::Sim::start(SimConfig {
        gcs: ([127, 0, 0, 1], proxy.port).into(),
        base_port: None,
        speed,
        ..Default::default()
    })
    .await
    .unwrap();
    let fleet = Fleet::new(hub, FleetConfig::default());
    let v = fleet.wait_vehicle(Some(1), WAIT).await.unwrap();
    // The fleet scales its timeouts by the vehicle's clock rate: let it measure it.
    v.wait_for(Duration::from_secs(5), |t| t.clock_rate.is_some())
        .await;
    (fleet, sim, proxy, v)
}

/// Waits until the vehicle sends a message `pred` accepts.
async fn heard(
    rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<Inbound>>,
    pred: impl Fn(&MavMessage) -> bool,
) {
    loop {
        match rx.recv().await {
            Ok(inb) if pred(&inb.msg) => return,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

/// Item 200 or later of a download went out.
fn item_200(m: &MavMessage) -> bool {
    matches!(m, MavMessage::MISSION_ITEM_INT(i) if i.seq >= 200)
}

/// Keeps the link cut until `vehicle_s` seconds of the vehicle's clock have passed (as the
/// fleet measured its rate).
async fn cut_for(proxy: &Proxy, v: &Vehicle, vehicle_s: f64, uplink_only: bool) {
    if uplink_only {
        proxy
            .uplink
            .store(false, std::sync::atomic::Ordering::SeqCst);
    } else {
        proxy.set_open(false);
    }
    let t0 = std::time::Instant::now();
    while t0.elapsed().as_secs_f64() * v.telemetry().clock_rate.unwrap_or(1.0) < vehicle_s {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.set_open(true);
}

const MISSION_REQUEST_LIST: u32 = 43;
const MISSION_COUNT: u32 = 44;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_the_vehicle_dropped_in_a_silent_outage_starts_over_and_completes() {
    let (fleet, _sim, proxy, v) = behind_proxy(10.0).await;
    let items = line(600);
    v.upload(MissionType::Mission, &items).await.unwrap();
    let mut rx = fleet.hub().subscribe();
    let download = tokio::spawn({
        let v = v.clone();
        async move { v.download(MissionType::Mission).await }
    });
    heard(&mut rx, item_200).await;
    // 6.5 s of silence both ways: past PX4's 5 s protocol timeout, so the vehicle has
    // dropped the transfer and its "Operation timeout" was lost with the rest.
    cut_for(&proxy, &v, 6.5, false).await;
    let read = download.await.unwrap().expect("the download completes");
    gridpatrol::vehicle::compare_missions(&items, &read).unwrap();
    assert!(
        proxy.sent_up(MISSION_REQUEST_LIST) >= 2,
        "the download started over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_start_over_when_the_vehicle_says_operation_timeout() {
    let (fleet, _sim, proxy, v) = behind_proxy(10.0).await;
    let items = line(600);
    // Upload: our items stop reaching the vehicle; it re-requests, then gives up and says so.
    let mut rx = fleet.hub().subscribe();
    let upload = tokio::spawn({
        let (v, items) = (v.clone(), items.clone());
        async move { v.upload(MissionType::Mission, &items).await }
    });
    heard(
        &mut rx,
        |m| matches!(m, MavMessage::MISSION_REQUEST_INT(r) if r.seq >= 200),
    )
    .await;
    cut_for(&proxy, &v, 5.5, true).await;
    upload.await.unwrap().expect("the upload completes");
    assert!(proxy.sent_up(MISSION_COUNT) >= 2, "the upload started over");
    assert!(
        v.telemetry()
            .statustext
            .iter()
            .any(|(_, t)| t.starts_with("Operation timeout")),
        "the vehicle said why"
    );
    // Download: the same, one way.
    let mut rx = fleet.hub().subscribe();
    let download = tokio::spawn({
        let v = v.clone();
        async move { v.download(MissionType::Mission).await }
    });
    heard(&mut rx, item_200).await;
    let lists = proxy.sent_up(MISSION_REQUEST_LIST);
    cut_for(&proxy, &v, 5.5, true).await;
    let read = download.await.unwrap().expect("the download completes");
    gridpatrol::vehicle::compare_missions(&items, &read).unwrap();
    assert!(
        proxy.sent_up(MISSION_REQUEST_LIST) > lists,
        "the download started over"
    );
}
