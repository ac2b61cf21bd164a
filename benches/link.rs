//! Link benchmarks.
//! - decode: frames framed, CRC-checked, decoded and dispatched into per-vehicle
//!   telemetry per second, from the real PX4 SITL tlog (or a synthetic one without it).
//! - upload: time to upload 500 mission items to the simulator over loopback UDP,
//!   against the ideal of one round trip per item.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gridpatrol::link::{frame::encode_v2, Hub, HubConfig, LinkConfig, Parsed, TlogReader};
use gridpatrol::vehicle::{Fleet, FleetConfig, MissionItem, MissionType, TelemetryReducer};
use mavlink::dialects::common::{
    MavMessage, ATTITUDE_DATA, GLOBAL_POSITION_INT_DATA, HEARTBEAT_DATA,
};
use mavlink::MavHeader;

fn load_tlog() -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/px4-sitl/px4_sih_mission_flight.tlog");
    if let Ok(d) = std::fs::read(&p) {
        return d;
    }
    eprintln!("{} absent: benchmarking a synthetic tlog", p.display());
    let mut out = Vec::new();
    let msgs = [
        MavMessage::HEARTBEAT(HEARTBEAT_DATA::default()),
        MavMessage::GLOBAL_POSITION_INT(GLOBAL_POSITION_INT_DATA {
            lat: 365_600_000,
            lon: 1_036_800_000,
            ..Default::default()
        }),
        MavMessage::ATTITUDE(ATTITUDE_DATA {
            roll: 0.1,
            pitch: 0.2,
            yaw: 0.3,
            ..Default::default()
        }),
    ];
    for i in 0..150_000u32 {
        out.extend_from_slice(&u64::from(i).to_be_bytes());
        let h = MavHeader {
            system_id: 1,
            component_id: 1,
            sequence: i as u8,
        };
        encode_v2(h, &msgs[i as usize % 3], &mut out);
    }
    out
}

fn decode(c: &mut Criterion) {
    let data = load_tlog();
    let frames = TlogReader::new(&data)
        .filter(|e| matches!(e.item, Parsed::Frame(_)))
        .count() as u64;
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(frames));
    g.sample_size(20);
    g.bench_function("tlog_frame_decode_dispatch", |b| {
        b.iter(|| {
            let mut reducer = TelemetryReducer::new();
            let now = Instant::now();
            let mut n = 0u64;
            for e in TlogReader::new(&data) {
                if let Parsed::Frame(f) = e.item {
                    if let Ok(m) = f.decode() {
                        reducer.apply(0, &f, &m, now);
                        n += 1;
                    }
                }
            }
            n
        })
    });
    g.finish();
}

fn upload(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (fleet, _sim) = rt.block_on(async {
        let hub = Hub::new(HubConfig::default()).expect("hub");
        let link = hub
            .add_link(LinkConfig::new("udpin:127.0.0.1:0".parse().expect("addr")))
            .await
            .expect("bind");
        let sim = gridpatrol_sim::Sim::start(gridpatrol_sim::SimConfig {
            gcs: link.local_addr.expect("addr"),
            base_port: None,
            ..Default::default()
        })
        .await
        .expect("sim");
        (Fleet::new(hub, FleetConfig::default()), sim)
    });
    let v = rt
        .block_on(fleet.wait_vehicle(Some(1), Duration::from_secs(5)))
        .expect("vehicle");
    // One request/reply round trip, measured the same way (PARAM_REQUEST_READ → PARAM_VALUE).
    let rtt = rt.block_on(async {
        let n = 200;
        let t = Instant::now();
        for _ in 0..n {
            v.param_get("NAV_ACC_RAD").await.expect("param");
        }
        t.elapsed() / n
    });
    let items: Vec<MissionItem> = (0..500)
        .map(|i| MissionItem::waypoint(36.56 + i as f64 * 1e-5, 103.68, 30.0))
        .collect();
    eprintln!(
        "round trip {:?}; ideal 500-item upload (one round trip per item) {:?}",
        rtt,
        rtt * 500
    );
    let mut g = c.benchmark_group("upload");
    g.sample_size(20);
    g.bench_function("500_items_loopback", |b| {
        b.iter(|| {
            rt.block_on(v.upload(MissionType::Mission, &items))
                .expect("upload")
        })
    });
    g.finish();
}

criterion_group!(benches, decode, upload);
criterion_main!(benches);
