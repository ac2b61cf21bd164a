//! gridpatrol-sim: simulated PX4 multicopters that behave on the wire like PX4 SITL.
//!
//! Each vehicle is one tokio task with its own UDP socket, laid out as PX4 SITL lays
//! out instance `i`: system id `1 + i`, sending its GCS link from port `18570 + i` to
//! 14550. Tests bind port 0 instead and point the vehicles at their own GCS port.

pub mod camera;
pub mod cli;
pub mod failsafe;
pub mod ftp;
pub mod mission;
pub mod params;
pub mod photo;
pub mod px4_camera;
pub mod px4_sitl;
pub mod rng;
pub mod streams;
pub mod vehicle;
pub mod wire;
pub mod world;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mavlink::dialects::common::MavMessage;
use mavlink::{SigningConfig, SigningData};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

pub use wire::Faults;

use camera::Camera;
use photo::PhotoService;
use rng::Rng;
use std::path::PathBuf;
use std::sync::Arc;
use vehicle::SimVehicle;
use world::World;

/// A bind failure that says which port: PX4's fixed ports may be held by a PX4 SITL
/// instance or another simulator.
fn bind_error(e: std::io::Error, vehicle: usize, link: &str, at: SocketAddr) -> std::io::Error {
    std::io::Error::new(
        e.kind(),
        format!("vehicle {vehicle}: its {link} link cannot bind UDP {at}: {e} (is a PX4 SITL instance or another simulator using it?)"),
    )
}

/// PX4 SITL's first GCS-link local port (instance i uses 18570 + i).
pub const PX4_SITL_GCS_PORT_BASE: u16 = 18570;

/// PX4 SITL's API link: instance i sends from 14580 + i to 14540 + i.
pub const PX4_SITL_API_PORT_BASE: u16 = 14580;
pub const PX4_SITL_API_REMOTE_BASE: u16 = 14540;

/// Most bytes packed into one UDP datagram (PX4 fills datagrams up to the MTU).
const MAX_DATAGRAM: usize = 1200;

/// Simulated seconds per fixed step (50 Hz, the fastest PX4 stream rate).
pub const STEP_S: f64 = 0.02;

#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The dock charges a landed, disarmed vehicle's battery at this rate, percent of a
    /// full one per simulated minute (0: no dock).
    pub dock_charge_pct_per_min: f64,
    pub vehicles: usize,
    /// Where vehicles send until they hear from a GCS (PX4: 127.0.0.1:14550).
    pub gcs: SocketAddr,
    pub bind_ip: IpAddr,
    /// First local GCS-link port; `None` binds ephemeral ports (what tests use).
    pub base_port: Option<u16>,
    /// Also open PX4's API link: (first local port, first remote port), e.g. (14580, 14540).
    pub api_link: Option<(u16, u16)>,
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
    pub faults: Vec<Faults>,
    /// Signing key per vehicle (the last applies to the rest); empty: unsigned.
    pub signing: Vec<Option<[u8; 32]>>,
    /// Whether vehicles start without a GPS fix.
    pub no_gps: bool,
    /// Wind north/east in m/s.
    pub wind: (f64, f64),
    /// GPS error model (defaults: 1.2 m bias, 0.3 m noise).
    pub gps_noise: vehicle::GpsNoise,
    /// Multiplies every default stream rate (1.0 = PX4's).
    pub rate_scale: f64,
    /// The world the cameras see; `None`: no camera.
    pub world: Option<Arc<World>>,
    pub camera: Camera,
    /// Where images and ground truth go (default: a new folder in the temp directory).
    pub image_dir: Option<PathBuf>,
    /// Also publish what an onboard (companion computer) detector found in each photo,
    /// as JSON beside it (`000012.jpg.json`): the objects at least half in view, with
    /// their boxes.
    pub companion_detections: bool,
    /// Announce photos as `mftp://[;comp=100]/images/NNNNNN.jpg`, served by MAVLink FTP
    /// on the camera component, instead of over HTTP.
    pub mftp_urls: bool,
    /// Standard deviation of the attitude error reported with each photo, degrees.
    pub attitude_noise_deg: f64,
    /// More ground stations, each on a GCS link of its own (after the API link), as PX4
    /// gives each GCS a MAVLink instance of its own: several controllers hear every
    /// vehicle and may command it.
    pub more_gcs: Vec<SocketAddr>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            vehicles: 1,
            gcs: wire::default_gcs(),
            bind_ip: [127, 0, 0, 1].into(),
            base_port: Some(PX4_SITL_GCS_PORT_BASE),
            api_link: None,
            dock_charge_pct_per_min: 0.0,
            speed: 1.0,
            seed: 1,
            // Home of the sample district (the Wenqu area of Lanzhou New Area).
            home: (36.56, 103.68, 1800.0),
            mission_limit: 10_000,
            mission_retry_s: 0.25,
            faults: Vec::new(),
            signing: Vec::new(),
            no_gps: false,
            wind: (0.0, 0.0),
            gps_noise: vehicle::GpsNoise::default(),
            rate_scale: 1.0,
            world: None,
            camera: Camera::default(),
            image_dir: None,
            companion_detections: false,
            mftp_urls: false,
            attitude_noise_deg: 0.5,
            more_gcs: Vec::new(),
        }
    }
}

/// A running fleet. Dropping it stops every vehicle.
pub struct Sim {
    vehicles: Vec<SimHandle>,
    photos: Option<Arc<PhotoService>>,
}

pub struct SimHandle {
    pub sysid: u8,
    /// The GCS-link socket.
    pub local_addr: SocketAddr,
    /// The API-link socket, if opened.
    pub api_addr: Option<SocketAddr>,
    /// What each link told this vehicle to do, in order.
    pub commands: Arc<std::sync::Mutex<Vec<CommandRecord>>>,
    task: JoinHandle<()>,
}

/// A message that commands a vehicle (arms it, changes its mode, uploads or starts a
/// mission, moves it) addressed to it, as the simulator received it. Requests for
/// information are not recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandRecord {
    /// Simulated seconds.
    pub t: f64,
    /// The link it came on: 0 the GCS link, then the API link if opened, then
    /// [`SimConfig::more_gcs`] in order.
    pub link: usize,
    /// The sender's MAVLink system id.
    pub from: u8,
    /// The message, or the command's name.
    pub what: String,
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
        let photos = match &cfg.world {
            Some(world) => {
                let dir = cfg.image_dir.clone().unwrap_or_else(|| {
                    let nanos = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos())
                        .unwrap_or(0);
                    std::env::temp_dir()
                        .join(format!("gridpatrol-sim-{}-{nanos}", std::process::id()))
                });
                Some(
                    PhotoService::start(
                        cfg.camera,
                        world.clone(),
                        dir,
                        SocketAddr::new(cfg.bind_ip, 0),
                        cfg.companion_detections,
                        cfg.mftp_urls,
                    )
                    .await?,
                )
            }
            None => None,
        };
        for i in 0..cfg.vehicles {
            let port = cfg.base_port.map_or(0, |p| p + i as u16);
            let at = SocketAddr::new(cfg.bind_ip, port);
            // Another simulator or a PX4 SITL instance may hold PX4's fixed ports.
            let gcs_sock = UdpSocket::bind(at)
                .await
                .map_err(|e| bind_error(e, i + 1, "GCS", at))?;
            let local_addr = gcs_sock.local_addr()?;
            let mut links = vec![Link {
                sock: Arc::new(gcs_sock),
                peer: cfg.gcs,
            }];
            if let Some((local, remote)) = cfg.api_link {
                // A local base of 0 binds ephemeral ports (tests).
                let port = if local == 0 { 0 } else { local + i as u16 };
                let at = SocketAddr::new(cfg.bind_ip, port);
                let sock = UdpSocket::bind(at)
                    .await
                    .map_err(|e| bind_error(e, i + 1, "API", at))?;
                links.push(Link {
                    sock: Arc::new(sock),
                    peer: SocketAddr::new(cfg.gcs.ip(), remote + i as u16),
                });
            }
            let api_addr = cfg
                .api_link
                .and_then(|_| links.get(1))
                .and_then(|l| l.sock.local_addr().ok());
            let first_more = links.len();
            for &gcs in &cfg.more_gcs {
                let sock = UdpSocket::bind(SocketAddr::new(cfg.bind_ip, 0))
                    .await
                    .map_err(|e| bind_error(e, i + 1, "GCS", gcs))?;
                links.push(Link {
                    sock: Arc::new(sock),
                    peer: gcs,
                });
            }
            let sysid = (1 + i) as u8;
            // Fleet members stand 5 m apart east of the first home.
            let home = (
                cfg.home.0,
                cfg.home.1 + i as f64 * 5.0 / (111_320.0 * cfg.home.0.to_radians().cos()),
                cfg.home.2,
            );
            let seed = cfg.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
            let mut v = SimVehicle::new(sysid, home, cfg.mission_limit, seed);
            v.params.speed_factor(cfg.speed);
            v.mission.retry_s = cfg.mission_retry_s;
            v.gps_fix = !cfg.no_gps;
            v.wind = cfg.wind;
            v.gps_noise = cfg.gps_noise;
            v.streams = (0..links.len())
                .map(|l| {
                    let mode = if l == 0 || l >= first_more {
                        streams::LinkMode::Normal
                    } else {
                        streams::LinkMode::Onboard
                    };
                    streams::Streams::new(mode, cfg.rate_scale)
                })
                .collect();
            v.attitude_noise_deg = cfg.attitude_noise_deg;
            v.gimbal_pitch_deg = cfg.camera.gimbal_pitch_deg;
            v.dock_charge_per_s = cfg.dock_charge_pct_per_min / 100.0 / 60.0;
            let faults = pick(&cfg.faults, i);
            v.mission.stall_after = faults.mission_stall_after;
            v.faults = vehicle::VehicleFaults {
                gps_loss: faults.gps_loss,
                battery_failure_at: faults.battery_failure_at,
                battery_low_after_airborne_s: faults.battery_low_after_airborne_s,
            };
            let key = pick(&cfg.signing, i);
            let commands = Arc::new(std::sync::Mutex::new(Vec::new()));
            let runner = Runner {
                commands: commands.clone(),
                v,
                links,
                speed: cfg.speed,
                rng: Rng::new(seed ^ 0x5EED),
                faults,
                signing: key
                    .map(|k| SigningData::from_config(SigningConfig::new(k, 0, true, false))),
                seq: [0; 256],
                ftp: photos
                    .as_ref()
                    .map(|p| ftp::FtpServer::new(p.dir().join(sysid.to_string()))),
                autopilot_ftp: ftp::FtpServer::autopilot(),
                photos: photos.clone(),
                captured: Vec::new(),
            };
            let task = tokio::spawn(runner.run());
            vehicles.push(SimHandle {
                sysid,
                local_addr,
                api_addr,
                commands,
                task,
            });
        }
        Ok(Self { vehicles, photos })
    }

    pub fn vehicles(&self) -> &[SimHandle] {
        &self.vehicles
    }

    /// Where photos and `ground_truth.jsonl` are written, when there is a camera.
    pub fn image_dir(&self) -> Option<&std::path::Path> {
        self.photos.as_ref().map(|p| p.dir())
    }
}

struct Link {
    sock: Arc<UdpSocket>,
    /// Where this link sends: the configured remote until someone talks to us.
    peer: SocketAddr,
}

/// A frame waiting out its injected delay.
struct Delayed {
    due: tokio::time::Instant,
    link: usize,
    bytes: Vec<u8>,
    inbound: bool,
}

struct Runner {
    v: SimVehicle,
    links: Vec<Link>,
    speed: f64,
    rng: Rng,
    faults: Faults,
    signing: Option<SigningData>,
    /// MAVLink sequence numbers count per sending component.
    seq: [u8; 256],
    photos: Option<Arc<PhotoService>>,
    /// Every CAMERA_IMAGE_CAPTURED sent, for MAV_CMD_REQUEST_MESSAGE re-requests.
    captured: Vec<MavMessage>,
    /// MAVLink FTP on the camera component, serving this vehicle's photos.
    ftp: Option<ftp::FtpServer>,
    autopilot_ftp: ftp::FtpServer,
    commands: Arc<std::sync::Mutex<Vec<CommandRecord>>>,
}

/// The reader tasks of a vehicle's links, stopped with it.
struct Readers(Vec<JoinHandle<()>>);

impl Drop for Readers {
    fn drop(&mut self) {
        for r in &self.0 {
            r.abort();
        }
    }
}

/// What `msg` commands, if it commands the vehicle rather than asks it something.
// Older ground stations still send the superseded forms.
#[allow(deprecated)]
fn commanding(sysid: u8, msg: &MavMessage) -> Option<String> {
    use mavlink::dialects::common::MavCmd;
    let asks = |c: MavCmd| {
        matches!(
            c,
            MavCmd::MAV_CMD_REQUEST_MESSAGE
                | MavCmd::MAV_CMD_SET_MESSAGE_INTERVAL
                | MavCmd::MAV_CMD_REQUEST_CAMERA_INFORMATION
                | MavCmd::MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES
                | MavCmd::MAV_CMD_REQUEST_PROTOCOL_VERSION
        )
    };
    // Only what is addressed to this vehicle (or to every system) commands it, as PX4
    // ignores the rest.
    let target = match msg {
        MavMessage::COMMAND_LONG(c) => c.target_system,
        MavMessage::COMMAND_INT(c) => c.target_system,
        MavMessage::SET_MODE(m) => m.target_system,
        MavMessage::MISSION_COUNT(m) => m.target_system,
        MavMessage::MISSION_CLEAR_ALL(m) => m.target_system,
        MavMessage::MISSION_SET_CURRENT(m) => m.target_system,
        MavMessage::PARAM_SET(m) => m.target_system,
        _ => return None,
    };
    if target != sysid && target != 0 {
        return None;
    }
    match msg {
        // Arming shows its direction: "MAV_CMD_COMPONENT_ARM_DISARM 1" arms; a
        // retransmission of the same command (rising `confirmation`) says "(again)".
        MavMessage::COMMAND_LONG(c) if c.command == MavCmd::MAV_CMD_COMPONENT_ARM_DISARM => {
            let again = if c.confirmation > 0 { " (again)" } else { "" };
            Some(format!("{:?} {}{again}", c.command, c.param1 as i32))
        }
        MavMessage::COMMAND_LONG(c) if !asks(c.command) => Some(format!("{:?}", c.command)),
        MavMessage::COMMAND_INT(c) if !asks(c.command) => Some(format!("{:?}", c.command)),
        MavMessage::SET_MODE(_) => Some("SET_MODE".into()),
        MavMessage::MISSION_COUNT(_) => Some("MISSION_COUNT".into()),
        MavMessage::MISSION_CLEAR_ALL(_) => Some("MISSION_CLEAR_ALL".into()),
        MavMessage::MISSION_SET_CURRENT(_) => Some("MISSION_SET_CURRENT".into()),
        MavMessage::PARAM_SET(_) => Some("PARAM_SET".into()),
        _ => None,
    }
}

impl Runner {
    async fn run(mut self) {
        let start = tokio::time::Instant::now();
        let mut steps: u64 = 0;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut commands_dropped = 0u32;
        let mut delayed: Vec<Delayed> = Vec::new();
        let (photo_tx, mut photo_rx) = tokio::sync::mpsc::channel::<MavMessage>(256);
        // One reader per link: any number of ground stations.
        let (in_tx, mut in_rx) = tokio::sync::mpsc::channel::<(usize, Vec<u8>, SocketAddr)>(256);
        let _readers = Readers(
            self.links
                .iter()
                .enumerate()
                .map(|(l, link)| {
                    let (sock, tx) = (link.sock.clone(), in_tx.clone());
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 4096];
                        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                            if tx.send((l, buf[..n].to_vec(), from)).await.is_err() {
                                break;
                            }
                        }
                    })
                })
                .collect(),
        );
        loop {
            let next_due = delayed.iter().map(|d| d.due).min();
            let mut received: Vec<(usize, Vec<u8>)> = Vec::new();
            let mut outgoing: Vec<(u8, usize, MavMessage)> = Vec::new();
            tokio::select! {
                Some((l, bytes, from)) = in_rx.recv() => {
                    self.links[l].peer = from;
                    received.push((l, bytes));
                }
                _ = tick.tick() => {
                    // Fixed steps: simulated time advances in STEP_S increments only.
                    let target = (start.elapsed().as_secs_f64() * self.speed / STEP_S) as u64;
                    // At most two ticks' worth of steps at once: on a stalled host the
                    // simulation slows down instead of jumping ahead of the messages waiting
                    // for it (a jump of COM_DL_LOSS_T would fire the data-link failsafe).
                    let target = target.min(steps + 2 * (self.speed.ceil() as u64).max(1) + 1);
                    while steps < target {
                        steps += 1;
                        for (link, m) in self.v.tick(STEP_S) {
                            let only = link.map_or(0, |l| l + 1);
                            if matches!(m, MavMessage::HEARTBEAT(_)) {
                                outgoing.push((100, only, camera_heartbeat()));
                            }
                            outgoing.push((1, only, m));
                        }
                    }
                }
                _ = sleep_opt(next_due) => {}
                Some(msg) = photo_rx.recv() => {
                    self.captured.push(msg.clone());
                    outgoing.push((100, 0, msg));
                }
            }
            // Photos render off the runtime's threads; each is announced when stored.
            for c in self.v.captures.drain(..) {
                let Some(photos) = self.photos.clone() else {
                    continue;
                };
                let (tx, sysid) = (photo_tx.clone(), self.v.sysid);
                tokio::task::spawn_blocking(move || match photos.take(sysid, &c) {
                    Ok(msg) => {
                        let _ = tx.blocking_send(msg);
                    }
                    Err(e) => tracing::warn!(sysid, index = c.index, "photo not stored: {e}"),
                });
            }
            let sim_t = self.v.t;
            // Frames arriving now, after any injected delay.
            for (link, bytes) in received {
                for delay in self
                    .faults
                    .deliver(&mut self.rng, self.faults.loss_in, sim_t)
                {
                    delayed.push(Delayed {
                        due: tokio::time::Instant::now() + Duration::from_secs_f64(delay),
                        link,
                        bytes: bytes.clone(),
                        inbound: true,
                    });
                }
            }
            let now = tokio::time::Instant::now();
            let mut ready: Vec<Delayed> = Vec::new();
            let mut i = 0;
            while i < delayed.len() {
                if delayed[i].due <= now {
                    ready.push(delayed.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            ready.sort_by_key(|d| d.due);
            for d in ready {
                if !d.inbound {
                    let _ = self.links[d.link]
                        .sock
                        .send_to(&d.bytes, self.links[d.link].peer)
                        .await;
                    continue;
                }
                for (h, msg) in wire::decode_datagram(&d.bytes, self.signing.as_ref()) {
                    if let MavMessage::FILE_TRANSFER_PROTOCOL(req) = &msg {
                        let server = match req.target_component {
                            1 => Some(&mut self.autopilot_ftp),
                            100 => self.ftp.as_mut(),
                            _ => None,
                        };
                        if let (true, Some(server)) = (req.target_system == self.v.sysid, server) {
                            let from = (h.system_id as u8, h.component_id);
                            for m in server.answer(req, from) {
                                outgoing.push((req.target_component, 1 + d.link, m));
                            }
                        }
                        continue;
                    }
                    if matches!(
                        msg,
                        MavMessage::COMMAND_LONG(_) | MavMessage::COMMAND_INT(_)
                    ) && commands_dropped < self.faults.drop_first_commands
                    {
                        commands_dropped += 1;
                        continue;
                    }
                    if let Some(replies) = self.re_request(&msg) {
                        outgoing.extend(replies.into_iter().map(|(c, m)| (c, 1 + d.link, m)));
                        continue;
                    }
                    self.v.inbound = (d.link, h.system_id as u8, h.component_id);
                    if let Some(what) = commanding(self.v.sysid, &msg) {
                        self.commands
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(CommandRecord {
                                t: sim_t,
                                link: d.link,
                                from: h.system_id as u8,
                                what,
                            });
                    }
                    tracing::trace!(link = d.link, from = h.system_id, "{msg:?}");
                    for reply in self.v.handle(&msg, sim_t) {
                        outgoing.push((1, 1 + d.link, reply));
                    }
                }
            }
            // Telemetry goes out on every link; a reply only on the link it answers. Like
            // PX4, frames due together are packed into datagrams of up to ~1200 bytes.
            let mut packs: Vec<Vec<u8>> = vec![Vec::new(); self.links.len()];
            for (compid, only, msg) in outgoing {
                let seq = &mut self.seq[compid as usize];
                let bytes = wire::encode(self.v.sysid, compid, *seq, &msg, self.signing.as_ref());
                *seq = seq.wrapping_add(1);
                for (link, pack) in packs.iter_mut().enumerate() {
                    if only != 0 && only != link + 1 {
                        continue;
                    }
                    for delay in self
                        .faults
                        .deliver(&mut self.rng, self.faults.loss_out, sim_t)
                    {
                        if delay > 0.0 {
                            delayed.push(Delayed {
                                due: tokio::time::Instant::now() + Duration::from_secs_f64(delay),
                                link,
                                bytes: bytes.clone(),
                                inbound: false,
                            });
                            continue;
                        }
                        if pack.len() + bytes.len() > MAX_DATAGRAM {
                            let _ = self.links[link]
                                .sock
                                .send_to(pack, self.links[link].peer)
                                .await;
                            pack.clear();
                        }
                        pack.extend_from_slice(&bytes);
                    }
                }
            }
            for (link, pack) in packs.iter().enumerate() {
                if !pack.is_empty() {
                    let _ = self.links[link]
                        .sock
                        .send_to(pack, self.links[link].peer)
                        .await;
                }
            }
        }
    }
}

impl Runner {
    /// MAV_CMD_REQUEST_MESSAGE for CAMERA_IMAGE_CAPTURED (param2: image index, -1 latest),
    /// answered from the log as MAVSDK expects when it fills gaps.
    fn re_request(&self, msg: &MavMessage) -> Option<Vec<(u8, MavMessage)>> {
        use mavlink::dialects::common::{MavCmd, MavResult, COMMAND_ACK_DATA};
        let MavMessage::COMMAND_LONG(c) = msg else {
            return None;
        };
        if c.command != MavCmd::MAV_CMD_REQUEST_MESSAGE {
            return None;
        }
        let ack = |result| {
            MavMessage::COMMAND_ACK(COMMAND_ACK_DATA {
                command: c.command,
                result,
                target_system: self.v.gcs.0,
                target_component: self.v.gcs.1,
                ..Default::default()
            })
        };
        // The camera describes itself (MAVLink camera protocol), from component 100.
        if c.param1 as u32 == 259 {
            return Some(match &self.photos {
                Some(p) => vec![
                    (100, ack(MavResult::MAV_RESULT_ACCEPTED)),
                    (100, crate::px4_camera::camera_information(&p.camera)),
                ],
                None => vec![(100, ack(MavResult::MAV_RESULT_UNSUPPORTED))],
            });
        }
        if c.param1 as u32 == 262 {
            // Counted when taken, as a camera counts, not when announced: under load the
            // last photos of a sortie are still rendering when the ground asks, and must
            // not be left out of what it asks for again.
            return Some(vec![
                (100, ack(MavResult::MAV_RESULT_ACCEPTED)),
                (100, crate::px4_camera::capture_status(self.v.images)),
            ]);
        }
        if c.param1 as u32 != 263 {
            return None;
        }
        let want = c.param2 as i32;
        let found = self.captured.iter().rev().find(|m| match m {
            MavMessage::CAMERA_IMAGE_CAPTURED(x) => want < 0 || x.image_index == want,
            _ => false,
        });
        Some(match found {
            Some(m) => vec![(1, ack(MavResult::MAV_RESULT_ACCEPTED)), (100, m.clone())],
            None => vec![(1, ack(MavResult::MAV_RESULT_FAILED))],
        })
    }
}

async fn sleep_opt(due: Option<tokio::time::Instant>) {
    match due {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The camera component's HEARTBEAT (component 100, MAV_TYPE_CAMERA), as PX4's camera
/// manager announces a camera.
/// The camera component's HEARTBEAT (MAV_TYPE_CAMERA), for the fleet's and PX4's cameras.
pub(crate) fn camera_heartbeat() -> MavMessage {
    use mavlink::dialects::common::{MavAutopilot, MavModeFlag, MavState, MavType, HEARTBEAT_DATA};
    MavMessage::HEARTBEAT(HEARTBEAT_DATA {
        custom_mode: 0,
        mavtype: MavType::MAV_TYPE_CAMERA,
        autopilot: MavAutopilot::MAV_AUTOPILOT_INVALID,
        base_mode: MavModeFlag::empty(),
        system_status: MavState::MAV_STATE_ACTIVE,
        mavlink_version: 3,
    })
}
