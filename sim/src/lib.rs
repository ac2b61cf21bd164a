//! gridpatrol-sim: simulated PX4 multicopters that behave on the wire like PX4 SITL.
//!
//! Each vehicle is one tokio task with its own UDP socket, laid out as PX4 SITL lays
//! out instance `i`: system id `1 + i`, sending its GCS link from port `18570 + i` to
//! 14550. Tests bind port 0 instead and point the vehicles at their own GCS port.

pub mod mission;
pub mod rng;
pub mod vehicle;
pub mod wire;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mavlink::dialects::common::MavMessage;
use mavlink::{SigningConfig, SigningData};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

pub use wire::LinkFaults;

use rng::Rng;
use vehicle::SimVehicle;

/// PX4 SITL's first GCS-link local port (instance i uses 18570 + i).
pub const PX4_SITL_GCS_PORT_BASE: u16 = 18570;

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub vehicles: usize,
    /// Where vehicles send until they hear from a GCS (PX4: 127.0.0.1:14550).
    pub gcs: SocketAddr,
    pub bind_ip: IpAddr,
    /// First local port; `None` binds ephemeral ports (what tests use).
    pub base_port: Option<u16>,
    /// Simulated seconds per real second.
    pub speed: f64,
    pub seed: u64,
    /// Home of vehicle 0: latitude, longitude in degrees, altitude in metres AMSL.
    pub home: (f64, f64, f64),
    /// Most items a plan may hold (PX4 flight controllers: 500; SITL far more).
    pub mission_limit: usize,
    /// Mission re-request period in simulated seconds (PX4: 0.25 s).
    pub mission_retry_s: f64,
    /// Faults per vehicle (index i applies to vehicle i; the last applies to the rest).
    pub faults: Vec<LinkFaults>,
    /// Signing key per vehicle (the last applies to the rest); empty: unsigned.
    pub signing: Vec<Option<[u8; 32]>>,
    /// Whether vehicles start without a GPS fix.
    pub no_gps: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            vehicles: 1,
            gcs: wire::default_gcs(),
            bind_ip: [127, 0, 0, 1].into(),
            base_port: Some(PX4_SITL_GCS_PORT_BASE),
            speed: 1.0,
            seed: 1,
            // Home of the sample district (the Wenqu area of Lanzhou New Area).
            home: (36.56, 103.68, 1800.0),
            mission_limit: 10_000,
            mission_retry_s: 0.25,
            faults: Vec::new(),
            signing: Vec::new(),
            no_gps: false,
        }
    }
}

/// A running fleet. Dropping it stops every vehicle.
pub struct Sim {
    vehicles: Vec<SimHandle>,
}

pub struct SimHandle {
    pub sysid: u8,
    pub local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        for v in &self.vehicles {
            v.task.abort();
        }
    }
}

fn pick<T: Clone + Default>(v: &[T], i: usize) -> T {
    v.get(i).or(v.last()).cloned().unwrap_or_default()
}

impl Sim {
    pub async fn start(cfg: SimConfig) -> std::io::Result<Self> {
        let mut vehicles = Vec::new();
        for i in 0..cfg.vehicles {
            let port = cfg.base_port.map_or(0, |p| p + i as u16);
            let sock = UdpSocket::bind(SocketAddr::new(cfg.bind_ip, port)).await?;
            let local_addr = sock.local_addr()?;
            let sysid = (1 + i) as u8;
            // Fleet members stand 5 m apart east of the first home.
            let home = (
                cfg.home.0,
                cfg.home.1 + i as f64 * 5.0 / (111_320.0 * cfg.home.0.to_radians().cos()),
                cfg.home.2,
            );
            let mut v = SimVehicle::new(sysid, home, cfg.mission_limit);
            v.mission.retry_s = cfg.mission_retry_s;
            v.gps_fix = !cfg.no_gps;
            let faults = pick(&cfg.faults, i);
            v.mission.stall_after = faults.mission_stall_after;
            let key = pick(&cfg.signing, i);
            let task = tokio::spawn(run_vehicle(
                v,
                sock,
                cfg.gcs,
                cfg.speed,
                Rng::new(cfg.seed.wrapping_add(i as u64)),
                faults,
                key,
            ));
            vehicles.push(SimHandle {
                sysid,
                local_addr,
                task,
            });
        }
        Ok(Self { vehicles })
    }

    pub fn vehicles(&self) -> &[SimHandle] {
        &self.vehicles
    }
}

async fn run_vehicle(
    mut v: SimVehicle,
    sock: UdpSocket,
    mut gcs: SocketAddr,
    speed: f64,
    mut rng: Rng,
    faults: LinkFaults,
    key: Option<[u8; 32]>,
) {
    let signing = key.map(|k| SigningData::from_config(SigningConfig::new(k, 0, true, false)));
    let start = tokio::time::Instant::now();
    let sim_now = || start.elapsed().as_secs_f64() * speed;
    let mut seq: u8 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut prev = -1.0;
    let mut commands_dropped = 0u32;
    let mut buf = vec![0u8; 4096];
    loop {
        let mut outgoing: Vec<MavMessage> = Vec::new();
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                let now = sim_now();
                for (_h, msg) in wire::decode_datagram(&buf[..n], signing.as_ref()) {
                    if !wire::passes(&mut rng, faults.loss_in, faults.outage, now) {
                        continue;
                    }
                    // Like PX4, answer whoever talks to us.
                    gcs = from;
                    if matches!(msg, MavMessage::COMMAND_LONG(_) | MavMessage::COMMAND_INT(_))
                        && commands_dropped < faults.drop_first_commands
                    {
                        commands_dropped += 1;
                        continue;
                    }
                    outgoing.extend(v.handle(&msg, now));
                }
            }
            _ = tick.tick() => {
                let now = sim_now();
                let dt = if prev < 0.0 { 0.0 } else { now - prev };
                if dt > 0.0 {
                    outgoing.extend(v.step(dt, now));
                }
                outgoing.extend(v.mission.tick(now));
                outgoing.extend(v.telemetry(prev, now, 0.0));
                prev = now;
            }
        }
        let now = sim_now();
        for msg in outgoing {
            if !wire::passes(&mut rng, faults.loss_out, faults.outage, now) {
                seq = seq.wrapping_add(1);
                continue;
            }
            let bytes = wire::encode(v.sysid, 1, seq, &msg, signing.as_ref());
            seq = seq.wrapping_add(1);
            let _ = sock.send_to(&bytes, gcs).await;
        }
    }
}
