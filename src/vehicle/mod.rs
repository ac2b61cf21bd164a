//! Vehicles: one [`Fleet`] follows every vehicle heard on a hub; a [`Vehicle`] handle
//! runs commands, mission transfers and parameter operations against one of them.
//!
//! Concurrency: one fleet task reduces every frame into per-vehicle [`Telemetry`]
//! (published on a `watch` channel) and [`VehicleEvent`]s (on a `broadcast` channel).
//! Operations run in the caller's task as small async state machines that send through
//! the hub and read the hub's frame stream; a per-vehicle lock keeps one transaction at
//! a time, as the MAVLink command and mission protocols expect.

mod command;
pub mod ftp;
mod mission;
mod mode;
mod param;
mod telemetry;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use mavlink::dialects::common::MavMessage;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

pub use command::{CommandAck, CommandError, CommandSpec};
pub use mission::{
    compare_missions, MissionError, MissionItem, MissionPlan, MissionStage, MissionType,
};
pub use mode::{auto_sub_mode, main_mode, Px4Mode};
pub use param::{ParamError, ParamValue};
pub use telemetry::{
    severity_name, Attitude, Battery, CameraInfo, Gps, Home, ImageCapture, LinkQuality, LinkState,
    Position, Sensors, Telemetry, TelemetryReducer, VehicleEvent, SENSOR_PREARM_CHECK,
};

use crate::link::{Hub, Inbound};

/// Timeouts and retries. Defaults follow QGroundControl where it documents them.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    /// A vehicle is lost after this long without HEARTBEAT (QGroundControl: 3.5 s; we use 3 s).
    pub link_timeout: Duration,
    /// COMMAND_ACK wait per attempt (QGroundControl 1.5 s; MAVSDK 0.5 s).
    pub command_timeout: Duration,
    /// Retransmissions of a command after the first send (QGroundControl 5; MAVSDK 3).
    pub command_retries: u32,
    /// Wait for the next mission-protocol message (QGroundControl PlanManager: 1.5 s). A
    /// transfer waits at most a fifth of PX4's 5 s protocol timeout (of the vehicle's
    /// clock) before it sends again, with as many more retries.
    pub mission_timeout: Duration,
    /// Mission-protocol retries per step (QGroundControl PlanManager: 5).
    pub mission_retries: u32,
    /// How long an upload keeps trying while the vehicle's mission manager is busy
    /// (MAV_MISSION_ERROR to MISSION_COUNT). PX4 stays busy until its 5 s protocol timeout
    /// after a transfer its partner did not close, so this must be longer.
    pub mission_busy_for: Duration,
    /// Parameter read/set wait per attempt.
    pub param_timeout: Duration,
    pub param_retries: u32,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            link_timeout: Duration::from_secs(3),
            command_timeout: Duration::from_millis(1500),
            command_retries: 5,
            mission_timeout: Duration::from_millis(1500),
            mission_retries: 5,
            mission_busy_for: Duration::from_secs(8),
            param_timeout: Duration::from_millis(1000),
            param_retries: 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VehicleError {
    #[error("no vehicle heard within {0:?}")]
    NotHeard(Duration),
    #[error("vehicle {0} has not been heard")]
    Unknown(u8),
}

/// A vehicle's event, with the vehicle it came from.
#[derive(Clone, Debug)]
pub struct FleetEvent {
    pub sysid: u8,
    pub event: VehicleEvent,
}

struct Shared {
    hub: Hub,
    cfg: FleetConfig,
    vehicles: Mutex<HashMap<u8, VehicleSlot>>,
    events: broadcast::Sender<FleetEvent>,
}

#[derive(Clone)]
struct VehicleSlot {
    telemetry: watch::Receiver<Telemetry>,
    txn: Arc<tokio::sync::Mutex<()>>,
    /// One MAVLink FTP transfer at a time (the server answers a repeated sequence number
    /// with its last reply, so two clients would read each other's data); holds the last
    /// sequence number used, which carries on across transfers.
    ftp: Arc<tokio::sync::Mutex<u16>>,
}

/// Every vehicle heard on one hub.
#[derive(Clone)]
pub struct Fleet {
    shared: Arc<Shared>,
}

impl Fleet {
    /// Starts following the vehicles on `hub`. Must be called inside a tokio runtime.
    pub fn new(hub: Hub, cfg: FleetConfig) -> Self {
        let (events, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            hub: hub.clone(),
            cfg,
            vehicles: Mutex::new(HashMap::new()),
            events,
        });
        tokio::spawn(fleet_loop(Arc::downgrade(&shared), hub.subscribe()));
        Self { shared }
    }

    pub fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    pub fn config(&self) -> &FleetConfig {
        &self.shared.cfg
    }

    /// System ids heard so far, sorted.
    pub fn sysids(&self) -> Vec<u8> {
        let v = self
            .shared
            .vehicles
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<u8> = v.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub fn vehicle(&self, sysid: u8) -> Option<Vehicle> {
        let v = self
            .shared
            .vehicles
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        v.get(&sysid).map(|slot| Vehicle {
            sysid,
            shared: self.shared.clone(),
            slot: slot.clone(),
        })
    }

    /// Every vehicle's events, from now on.
    pub fn events(&self) -> broadcast::Receiver<FleetEvent> {
        self.shared.events.subscribe()
    }

    /// Waits until `sysid` (or, with `None`, any vehicle) has been heard.
    pub async fn wait_vehicle(
        &self,
        sysid: Option<u8>,
        timeout: Duration,
    ) -> Result<Vehicle, VehicleError> {
        if let Some(id) = sysid {
            let deadline = Instant::now() + timeout;
            let mut events = self.events();
            loop {
                if let Some(v) = self.vehicle(id) {
                    return Ok(v);
                }
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Err(_) | Ok(Err(broadcast::error::RecvError::Closed)) => {
                        return Err(VehicleError::NotHeard(timeout))
                    }
                    Ok(_) => {}
                }
            }
        }
        let mut all = self.wait_vehicles(1, timeout).await?;
        Ok(all.swap_remove(0))
    }

    /// Waits until at least `n` vehicles have been heard, and for a whole heartbeat period
    /// so that every vehicle on the links is known; returns them all, lowest system id first.
    /// Which vehicles are first in the list must not depend on whose HEARTBEAT came first.
    pub async fn wait_vehicles(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Vehicle>, VehicleError> {
        let deadline = Instant::now() + timeout;
        let mut events = self.events();
        loop {
            let heard: Vec<Vehicle> = self
                .sysids()
                .iter()
                .filter_map(|id| self.vehicle(*id))
                .collect();
            let enough = heard.len() >= n.max(1);
            // A vehicle's second HEARTBEAT: a whole period since it was first heard, so
            // every live vehicle on the links has spoken.
            if enough && heard.iter().any(|v| v.telemetry().heartbeats >= 2) {
                return Ok(heard);
            }
            // HEARTBEATs raise no event: look again at least every 50 ms.
            let wake = deadline.min(Instant::now() + Duration::from_millis(50));
            let got = tokio::time::timeout_at(wake, events.recv()).await;
            if Instant::now() >= deadline
                || matches!(got, Ok(Err(broadcast::error::RecvError::Closed)))
            {
                return if enough {
                    Ok(heard)
                } else {
                    Err(VehicleError::NotHeard(timeout))
                };
            }
        }
    }
}

async fn fleet_loop(shared: Weak<Shared>, mut inbound: broadcast::Receiver<Arc<Inbound>>) {
    let mut reducer = TelemetryReducer::new();
    let mut senders: HashMap<u8, watch::Sender<Telemetry>> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        let (changed, events): (Vec<u8>, Vec<(u8, VehicleEvent)>) = tokio::select! {
            got = inbound.recv() => match got {
                Ok(inb) => match reducer.apply(inb.link, &inb.frame, &inb.msg, inb.at) {
                    Some((sysid, evs)) => (vec![sysid], evs.into_iter().map(|e| (sysid, e)).collect()),
                    None => continue,
                },
                // Lagging only loses telemetry samples; the next frames refresh the state.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                let Some(s) = shared.upgrade() else { return };
                let evs = reducer.check_links(std::time::Instant::now(), s.cfg.link_timeout);
                // Keep the heartbeat at 1 Hz of the fastest vehicle's clock.
                let fastest = reducer
                    .sysids()
                    .iter()
                    .filter_map(|id| reducer.get(*id).and_then(|t| t.clock_rate))
                    .fold(1.0, f64::max);
                if (fastest - s.hub.time_scale()).abs() > 0.05 * fastest {
                    s.hub.set_time_scale(fastest);
                }
                (reducer.sysids(), evs)
            }
        };
        let Some(s) = shared.upgrade() else { return };
        for sysid in changed {
            let Some(t) = reducer.get(sysid) else {
                continue;
            };
            match senders.get(&sysid) {
                Some(tx) => {
                    tx.send_replace(t.clone());
                }
                None => {
                    let (tx, rx) = watch::channel(t.clone());
                    senders.insert(sysid, tx);
                    s.vehicles.lock().unwrap_or_else(|e| e.into_inner()).insert(
                        sysid,
                        VehicleSlot {
                            telemetry: rx,
                            txn: Arc::default(),
                            ftp: Arc::default(),
                        },
                    );
                }
            }
        }
        for (sysid, event) in events {
            match &event {
                VehicleEvent::Discovered | VehicleEvent::LinkRegained => {
                    tracing::info!(sysid, ?event, "vehicle heard")
                }
                VehicleEvent::LinkLost => tracing::warn!(sysid, "vehicle link lost"),
                _ => tracing::debug!(sysid, ?event),
            }
            let _ = s.events.send(FleetEvent { sysid, event });
        }
    }
}

/// A handle on one vehicle. Cheap to clone.
#[derive(Clone)]
pub struct Vehicle {
    sysid: u8,
    shared: Arc<Shared>,
    slot: VehicleSlot,
}

impl Vehicle {
    pub fn sysid(&self) -> u8 {
        self.sysid
    }

    /// The latest telemetry.
    pub fn telemetry(&self) -> Telemetry {
        self.slot.telemetry.borrow().clone()
    }

    /// A stream of telemetry updates (latest value semantics).
    pub fn watch(&self) -> watch::Receiver<Telemetry> {
        self.slot.telemetry.clone()
    }

    /// This vehicle's events, from now on.
    pub fn events(&self) -> VehicleEvents {
        VehicleEvents {
            sysid: self.sysid,
            rx: self.shared.events.subscribe(),
        }
    }

    /// Waits until `pred` holds for the telemetry, or `timeout` passes.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&Telemetry) -> bool) -> bool {
        let mut rx = self.watch();
        tokio::time::timeout(timeout, rx.wait_for(|t| pred(t)))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub(crate) fn send(&self, msg: MavMessage) {
        self.shared.hub.send_to(self.sysid, msg);
    }

    /// Starts a transaction: waits for the vehicle's lock and subscribes to its frames.
    pub(crate) async fn txn(&self) -> Txn<'_> {
        // Subscribe first so no reply sent after our request can be missed.
        let rx = self.shared.hub.subscribe();
        let guard = self.slot.txn.clone().lock_owned().await;
        Txn {
            vehicle: self,
            rx,
            _guard: guard,
        }
    }

    pub(crate) fn cfg(&self) -> &FleetConfig {
        &self.shared.cfg
    }

    pub(crate) fn own_ids(&self) -> (u8, u8) {
        self.shared.hub.own_ids()
    }
}

/// One vehicle's event stream.
pub struct VehicleEvents {
    sysid: u8,
    rx: broadcast::Receiver<FleetEvent>,
}

impl VehicleEvents {
    /// The next event, or `None` once the fleet is gone.
    pub async fn next(&mut self) -> Option<VehicleEvent> {
        loop {
            match self.rx.recv().await {
                Ok(e) if e.sysid == self.sysid => return Some(e.event),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// One transaction with one vehicle: its frames, in order, under its lock.
pub(crate) struct Txn<'a> {
    vehicle: &'a Vehicle,
    rx: broadcast::Receiver<Arc<Inbound>>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Txn<'_> {
    pub fn send(&self, msg: MavMessage) {
        self.vehicle.send(msg);
    }

    /// The next frame from this vehicle before `deadline`, or `None` at the deadline.
    pub async fn recv_until(&mut self, deadline: Instant) -> Option<Arc<Inbound>> {
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => return None,
                Ok(Ok(inb)) if inb.frame.sysid() == self.vehicle.sysid => return Some(inb),
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    tokio::time::sleep_until(deadline).await;
                    return None;
                }
            }
        }
    }

    /// Whether a message addressed with `target_system` is for us (0 = broadcast).
    pub fn for_us(&self, target_system: u8) -> bool {
        target_system == 0 || target_system == self.vehicle.own_ids().0
    }
}
