//! A camera for a real PX4 SITL instance, which has none: a MAVLink camera component
//! (compid 100) on PX4's onboard payload link (PX4 v1.16 SITL sends from UDP 14280+N to
//! 14030+N). It follows PX4's own telemetry on that link (GLOBAL_POSITION_INT, ATTITUDE),
//! obeys the camera commands PX4's mission sends (MAV_CMD_DO_SET_CAM_TRIGG_DIST,
//! MAV_CMD_IMAGE_START_CAPTURE / _STOP_CAPTURE), photographs a world with the same
//! renderer and photo service as the simulated fleet, and announces each photo with
//! CAMERA_IMAGE_CAPTURED, which PX4 forwards to its ground stations. It answers
//! MAV_CMD_REQUEST_MESSAGE for a missed CAMERA_IMAGE_CAPTURED and CAMERA_INFORMATION.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use mavlink::dialects::common::{
    CameraCapFlags, MavCmd, MavMessage, MavResult, CAMERA_INFORMATION_DATA, COMMAND_ACK_DATA,
};
use tokio::net::UdpSocket;

use crate::camera::Camera;
use crate::photo::PhotoService;
use crate::vehicle::{camera_quaternion, ne_m, CaptureRequest};
use crate::wire::{decode_datagram, encode};

/// PX4 SITL's onboard payload link: PX4 sends from this base + N to the remote base + N.
pub const PX4_PAYLOAD_LOCAL_BASE: u16 = 14280;
pub const PX4_PAYLOAD_REMOTE_BASE: u16 = 14030;

/// MAV_COMP_ID_CAMERA.
const CAMERA_COMPID: u8 = 100;

/// What the camera knows of the vehicle, from PX4's telemetry.
#[derive(Clone, Copy, Debug, Default)]
struct Follow {
    /// PX4's time, seconds since boot.
    t: f64,
    lat: f64,
    lon: f64,
    /// Metres AMSL and above home.
    alt: f64,
    rel_alt: f64,
    roll: f64,
    pitch: f64,
    yaw: f64,
    have_position: bool,
}

/// Photos by distance or by time, as the last camera command set.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Trigger {
    Off,
    /// Every `metres` travelled.
    Distance {
        metres: f64,
        travelled: f64,
    },
    /// Every `interval` seconds of PX4's time, `left` more (None: until stopped).
    Interval {
        interval: f64,
        next: f64,
        left: Option<u32>,
    },
}

/// A camera component attached to PX4 SITL instance `instance`.
pub struct Px4Camera {
    sock: UdpSocket,
    px4: Option<SocketAddr>,
    sysid: Option<u8>,
    seq: u8,
    follow: Follow,
    trigger: Trigger,
    /// The last position a distance was measured from.
    last_pos: Option<(f64, f64)>,
    next_index: i32,
    sent: HashMap<i32, MavMessage>,
    photos: Arc<PhotoService>,
    gimbal_pitch_deg: f64,
    /// The last camera command acted on (command, params), so PX4's retransmissions of it
    /// (rising `confirmation`) do not take a second photo.
    last_command: Option<(MavCmd, [u32; 7])>,
}

impl Px4Camera {
    /// Binds the payload link's remote end for PX4 instance `instance` on 127.0.0.1.
    pub async fn bind(instance: u8, photos: Arc<PhotoService>) -> std::io::Result<Self> {
        let port = PX4_PAYLOAD_REMOTE_BASE + u16::from(instance);
        let sock = UdpSocket::bind(("127.0.0.1", port)).await?;
        Ok(Self {
            sock,
            px4: None,
            sysid: None,
            seq: 0,
            follow: Follow::default(),
            trigger: Trigger::Off,
            last_pos: None,
            next_index: 0,
            sent: HashMap::new(),
            gimbal_pitch_deg: photos.camera.gimbal_pitch_deg,
            photos,
            last_command: None,
        })
    }

    /// Runs until the socket fails: follows PX4, takes photos, answers requests.
    pub async fn run(mut self) -> std::io::Result<()> {
        let mut buf = vec![0u8; 65536];
        let mut heartbeat = tokio::time::interval(std::time::Duration::from_secs(1));
        let (photo_tx, mut photo_rx) = tokio::sync::mpsc::channel::<MavMessage>(64);
        loop {
            let mut requests = Vec::new();
            tokio::select! {
                r = self.sock.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    self.px4 = Some(from);
                    for (h, msg) in decode_datagram(&buf[..n], None) {
                        requests.extend(self.handle(h.system_id as u8, h.component_id, &msg));
                    }
                }
                _ = heartbeat.tick() => {
                    self.send(&crate::camera_heartbeat()).await;
                }
                Some(msg) = photo_rx.recv() => {
                    if let MavMessage::CAMERA_IMAGE_CAPTURED(c) = &msg {
                        self.sent.insert(c.image_index, msg.clone());
                    }
                    self.send(&msg).await;
                }
            }
            for out in requests {
                match out {
                    Out::Send(m) => self.send(&m).await,
                    Out::Photo(c) => {
                        let (photos, tx) = (self.photos.clone(), photo_tx.clone());
                        let sysid = self.sysid.unwrap_or(1);
                        tokio::task::spawn_blocking(move || match photos.take(sysid, &c) {
                            Ok(m) => {
                                let _ = tx.blocking_send(m);
                            }
                            Err(e) => tracing::warn!(index = c.index, "photo not stored: {e}"),
                        });
                    }
                }
            }
        }
    }

    async fn send(&mut self, msg: &MavMessage) {
        let (Some(to), Some(sysid)) = (self.px4, self.sysid) else {
            return;
        };
        let bytes = encode(sysid, CAMERA_COMPID, self.seq, msg, None);
        self.seq = self.seq.wrapping_add(1);
        let _ = self.sock.send_to(&bytes, to).await;
    }

    fn handle(&mut self, sysid: u8, compid: u8, msg: &MavMessage) -> Vec<Out> {
        let mut out = Vec::new();
        match msg {
            MavMessage::HEARTBEAT(_) if compid == 1 => self.sysid = Some(sysid),
            MavMessage::GLOBAL_POSITION_INT(p) if compid == 1 => {
                let f = &mut self.follow;
                f.t = f64::from(p.time_boot_ms) / 1000.0;
                f.lat = f64::from(p.lat) * 1e-7;
                f.lon = f64::from(p.lon) * 1e-7;
                f.alt = f64::from(p.alt) / 1000.0;
                f.rel_alt = f64::from(p.relative_alt) / 1000.0;
                f.have_position = true;
                out.extend(self.moved());
            }
            MavMessage::ATTITUDE(a) if compid == 1 => {
                self.follow.roll = f64::from(a.roll);
                self.follow.pitch = f64::from(a.pitch);
                self.follow.yaw = f64::from(a.yaw);
                self.follow.t = self.follow.t.max(f64::from(a.time_boot_ms) / 1000.0);
                out.extend(self.timed());
            }
            MavMessage::COMMAND_LONG(c)
                if Some(c.target_system) == self.sysid
                    && (c.target_component == 0 || c.target_component == CAMERA_COMPID) =>
            {
                out.extend(self.command(
                    sysid,
                    compid,
                    c.command,
                    [
                        c.param1, c.param2, c.param3, c.param4, c.param5, c.param6, c.param7,
                    ],
                    c.target_component == CAMERA_COMPID,
                ));
            }
            _ => {}
        }
        out
    }

    /// A camera command from PX4's mission (broadcast) or from a ground station (to us).
    fn command(
        &mut self,
        from_sys: u8,
        from_comp: u8,
        cmd: MavCmd,
        p: [f32; 7],
        to_us: bool,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        let key = (cmd, p.map(f32::to_bits));
        let repeat = self.last_command == Some(key);
        let result = match cmd {
            MavCmd::MAV_CMD_DO_SET_CAM_TRIGG_DIST => {
                if !repeat {
                    self.trigger = if p[0] > 0.0 {
                        Trigger::Distance {
                            metres: f64::from(p[0]),
                            travelled: 0.0,
                        }
                    } else {
                        Trigger::Off
                    };
                    if p[2] >= 1.0 && p[0] > 0.0 {
                        out.extend(self.capture());
                    }
                }
                Some(MavResult::MAV_RESULT_ACCEPTED)
            }
            MavCmd::MAV_CMD_IMAGE_START_CAPTURE => {
                if !repeat {
                    let (interval, count) = (f64::from(p[1]), p[2].max(0.0) as u32);
                    out.extend(self.capture());
                    self.trigger = if count == 1 {
                        Trigger::Off
                    } else {
                        Trigger::Interval {
                            interval: interval.max(0.1),
                            next: self.follow.t + interval.max(0.1),
                            left: (count > 1).then(|| count - 1),
                        }
                    };
                }
                Some(MavResult::MAV_RESULT_ACCEPTED)
            }
            MavCmd::MAV_CMD_IMAGE_STOP_CAPTURE => {
                self.trigger = Trigger::Off;
                Some(MavResult::MAV_RESULT_ACCEPTED)
            }
            MavCmd::MAV_CMD_REQUEST_MESSAGE if to_us => match p[0] as u32 {
                263 => match self.sent.get(&(p[1] as i32)) {
                    Some(m) => {
                        out.push(Out::Send(m.clone()));
                        Some(MavResult::MAV_RESULT_ACCEPTED)
                    }
                    None => Some(MavResult::MAV_RESULT_DENIED),
                },
                259 => {
                    out.push(Out::Send(camera_information(&self.photos.camera)));
                    Some(MavResult::MAV_RESULT_ACCEPTED)
                }
                262 => {
                    // Counted when taken, as a camera counts: a photo still rendering is
                    // one the ground can ask for again.
                    out.push(Out::Send(capture_status(self.next_index)));
                    Some(MavResult::MAV_RESULT_ACCEPTED)
                }
                _ => Some(MavResult::MAV_RESULT_UNSUPPORTED),
            },
            // Commands for other components (the gimbal, the autopilot) are not ours.
            _ => None,
        };
        self.last_command = Some(key);
        if let Some(result) = result {
            out.push(Out::Send(MavMessage::COMMAND_ACK(COMMAND_ACK_DATA {
                command: cmd,
                result,
                progress: 0,
                result_param2: 0,
                target_system: from_sys,
                target_component: from_comp,
            })));
        }
        out
    }

    /// Distance triggering, on each new position.
    fn moved(&mut self) -> Vec<Out> {
        let here = (self.follow.lat, self.follow.lon);
        let step = self.last_pos.map_or(0.0, |(lat, lon)| {
            let (n, e) = ne_m(lat, lon, here.0, here.1);
            n.hypot(e)
        });
        self.last_pos = Some(here);
        if let Trigger::Distance { metres, travelled } = &mut self.trigger {
            *travelled += step;
            if *travelled >= *metres {
                *travelled -= *metres;
                return self.capture();
            }
        }
        Vec::new()
    }

    /// Interval triggering, on each attitude sample (PX4's fastest stream here).
    fn timed(&mut self) -> Vec<Out> {
        let t = self.follow.t;
        if let Trigger::Interval {
            interval,
            next,
            left,
        } = &mut self.trigger
        {
            if t >= *next {
                *next += *interval;
                if let Some(l) = left {
                    *l = l.saturating_sub(1);
                    if *l == 0 {
                        self.trigger = Trigger::Off;
                    }
                }
                return self.capture();
            }
        }
        Vec::new()
    }

    fn capture(&mut self) -> Vec<Out> {
        let f = self.follow;
        if !f.have_position {
            return Vec::new();
        }
        let index = self.next_index;
        self.next_index += 1;
        let q = camera_quaternion(f.roll, f.pitch, f.yaw, self.gimbal_pitch_deg.to_radians());
        vec![Out::Photo(CaptureRequest {
            index,
            t: f.t,
            lat: f.lat,
            lon: f.lon,
            alt: f.alt,
            roll: f.roll,
            pitch: f.pitch,
            yaw: f.yaw,
            height: f.alt - self.photos.world.ground_alt_m,
            reported_lat: f.lat,
            reported_lon: f.lon,
            reported_alt: f.alt,
            reported_rel_alt: f.rel_alt,
            reported_q: q,
        })]
    }
}

enum Out {
    Send(MavMessage),
    Photo(CaptureRequest),
}

/// CAMERA_CAPTURE_STATUS with the number of images taken so far (MAVLink camera protocol;
/// MAVSDK reads image_count to find images it never heard of).
pub fn capture_status(image_count: i32) -> MavMessage {
    MavMessage::CAMERA_CAPTURE_STATUS(mavlink::dialects::common::CAMERA_CAPTURE_STATUS_DATA {
        available_capacity: 1.0e5,
        image_count,
        ..Default::default()
    })
}

/// CAMERA_INFORMATION for the camera's intrinsics (MAVLink camera protocol).
pub fn camera_information(c: &Camera) -> MavMessage {
    let mut vendor = [0u8; 32];
    vendor[..10].copy_from_slice(b"gridpatrol");
    let mut model = [0u8; 32];
    model[..3].copy_from_slice(b"sim");
    MavMessage::CAMERA_INFORMATION(CAMERA_INFORMATION_DATA {
        time_boot_ms: 0,
        firmware_version: 0,
        focal_length: c.focal_mm as f32,
        sensor_size_h: c.sensor_w_mm as f32,
        sensor_size_v: c.sensor_h_mm as f32,
        flags: CameraCapFlags::CAMERA_CAP_FLAGS_CAPTURE_IMAGE,
        resolution_h: c.width as u16,
        resolution_v: c.height as u16,
        cam_definition_version: 0,
        vendor_name: vendor,
        model_name: model,
        lens_id: 0,
        cam_definition_uri: mavlink::types::CharArray::new([0u8; 140]),
        ..Default::default()
    })
}
