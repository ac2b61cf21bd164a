//! The hub: every link's decoded frames fan out to subscribers through one broadcast
//! channel; frames we send are routed to the link where their target was last heard.
//! It also sends the GCS HEARTBEAT and writes the tlog.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use mavlink::dialects::common::{
    MavAutopilot, MavMessage, MavModeFlag, MavState, MavType, HEARTBEAT_DATA,
};
use mavlink::MavHeader;
use tokio::sync::{broadcast, mpsc};

use super::frame::{encode_v2, FrameParser, Parsed};
use super::signing::{LinkSigning, SigningKey};
use super::tlog::TlogWriter;
use super::transport::{self, Outgoing, RxChunk};
use super::{Inbound, LinkAddr, LinkError, LinkId, LinkStats, LinkStatsSnapshot};

/// Our system id. 255 is the ground-station id QGroundControl uses by default.
pub const GCS_SYSID: u8 = 255;
/// Our component id: MAV_COMP_ID_MISSIONPLANNER (190), as QGroundControl and MAVSDK use.
pub const GCS_COMPID: u8 = 190;

#[derive(Clone, Debug)]
pub struct HubConfig {
    pub sysid: u8,
    pub compid: u8,
    /// GCS heartbeat period; PX4 starts its data-link-loss failsafe without one. `None` sends none.
    pub heartbeat: Option<Duration>,
    /// Where to write the tlog, if anywhere.
    pub tlog: Option<PathBuf>,
    /// Frames buffered per subscriber before the slowest one starts losing them.
    pub inbound_capacity: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            sysid: GCS_SYSID,
            compid: GCS_COMPID,
            heartbeat: Some(Duration::from_secs(1)),
            tlog: None,
            inbound_capacity: 16384,
        }
    }
}

#[derive(Clone, Debug)]
pub struct LinkConfig {
    pub addr: LinkAddr,
    /// Sign what we send and accept only frames signed with this key.
    pub signing: Option<SigningKey>,
}

impl LinkConfig {
    pub fn new(addr: LinkAddr) -> Self {
        Self {
            addr,
            signing: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct LinkInfo {
    pub id: LinkId,
    pub addr: LinkAddr,
    /// The bound or connected local address (where a `:0` port ended up).
    pub local_addr: Option<SocketAddr>,
    pub signed: bool,
}

struct Slot {
    info: LinkInfo,
    tx: mpsc::Sender<(MavMessage, Option<u8>)>,
    stats: Arc<LinkStats>,
}

struct Inner {
    cfg: HubConfig,
    /// The fastest vehicle clock heard, in its seconds per wall second (f64 bits): the
    /// heartbeat runs at its period in that clock, or a SITL at speed S would see one
    /// every S of its seconds and, at S ≥ 10, start its data-link-loss failsafe.
    time_scale: std::sync::atomic::AtomicU64,
    links: RwLock<Vec<Slot>>,
    routes: Arc<Mutex<HashMap<u8, LinkId>>>,
    inbound: broadcast::Sender<Arc<Inbound>>,
    tlog: Option<Arc<TlogWriter>>,
}

/// The set of links of one ground station. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Hub {
    /// Creates a hub with no links yet. Must be called inside a tokio runtime.
    pub fn new(cfg: HubConfig) -> Result<Self, LinkError> {
        let tlog = match &cfg.tlog {
            Some(p) => Some(Arc::new(TlogWriter::create(p).map_err(|e| {
                LinkError::Tlog {
                    path: p.display().to_string(),
                    source: e,
                }
            })?)),
            None => None,
        };
        let (inbound, _) = broadcast::channel(cfg.inbound_capacity.max(16));
        let hub = Self {
            inner: Arc::new(Inner {
                cfg,
                time_scale: std::sync::atomic::AtomicU64::new(1f64.to_bits()),
                links: RwLock::new(Vec::new()),
                routes: Arc::default(),
                inbound,
                tlog,
            }),
        };
        if let Some(period) = hub.inner.cfg.heartbeat {
            tokio::spawn(heartbeat_loop(Arc::downgrade(&hub.inner), period));
        }
        Ok(hub)
    }

    /// Runs the GCS heartbeat `scale` times faster than its period (clamped to 1..=1000):
    /// the rate of the fastest vehicle clock on the links.
    pub fn set_time_scale(&self, scale: f64) {
        let s = if scale.is_finite() {
            scale.clamp(1.0, 1000.0)
        } else {
            1.0
        };
        self.inner
            .time_scale
            .store(s.to_bits(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The heartbeat's time scale (see [`Hub::set_time_scale`]).
    pub fn time_scale(&self) -> f64 {
        f64::from_bits(
            self.inner
                .time_scale
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// A hub with default settings and these links.
    pub async fn connect(cfg: HubConfig, links: &[LinkConfig]) -> Result<Self, LinkError> {
        let hub = Self::new(cfg)?;
        for l in links {
            hub.add_link(l.clone()).await?;
        }
        Ok(hub)
    }

    /// Opens a link and starts moving its frames.
    pub async fn add_link(&self, cfg: LinkConfig) -> Result<LinkInfo, LinkError> {
        let transport = transport::open(&cfg.addr).await?;
        Ok(self.attach(cfg, transport))
    }

    /// Adds a link over any byte stream (a pipe, a pty, an in-memory duplex), named `name`.
    pub fn add_stream<S>(&self, name: &str, io: S, signing: Option<SigningKey>) -> LinkInfo
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    {
        let cfg = LinkConfig {
            addr: LinkAddr::Stream(name.to_string()),
            signing,
        };
        self.attach(cfg, Box::new(transport::Stream::new(io)))
    }

    fn attach(&self, cfg: LinkConfig, transport: Box<dyn transport::Transport>) -> LinkInfo {
        let mut links = self.inner.links.write().unwrap_or_else(|e| e.into_inner());
        let id = links.len();
        let info = LinkInfo {
            id,
            addr: cfg.addr.clone(),
            local_addr: transport.local_addr(),
            signed: cfg.signing.is_some(),
        };
        tracing::info!(link = id, addr = %info.addr, local = ?info.local_addr, signed = info.signed, "link open");
        let (tx, out_rx) = mpsc::channel(4096);
        let stats = Arc::new(LinkStats::default());
        let task = LinkTask {
            id,
            header: MavHeader {
                system_id: u32::from(self.inner.cfg.sysid),
                component_id: self.inner.cfg.compid,
                sequence: 0,
            },
            signing: cfg.signing.as_ref().map(|k| LinkSigning::new(k, id as u8)),
            stats: stats.clone(),
            routes: self.inner.routes.clone(),
            inbound: self.inner.inbound.clone(),
            tlog: self.inner.tlog.clone(),
        };
        tokio::spawn(task.run(transport, out_rx));
        links.push(Slot {
            info: info.clone(),
            tx,
            stats,
        });
        info
    }

    /// A new stream of every decoded frame from every link.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Inbound>> {
        self.inner.inbound.subscribe()
    }

    /// Sends to one vehicle, on the link where it was last heard (all links if never heard).
    pub fn send_to(&self, sysid: u8, msg: MavMessage) {
        let route = self
            .inner
            .routes
            .lock()
            .ok()
            .and_then(|r| r.get(&sysid).copied());
        let links = self.inner.links.read().unwrap_or_else(|e| e.into_inner());
        match route.and_then(|id| links.get(id)) {
            Some(slot) => {
                let _ = slot.tx.try_send((msg, Some(sysid)));
            }
            None => {
                for slot in links.iter() {
                    let _ = slot.tx.try_send((msg.clone(), Some(sysid)));
                }
            }
        }
    }

    /// Sends on every link.
    pub fn broadcast(&self, msg: MavMessage) {
        let links = self.inner.links.read().unwrap_or_else(|e| e.into_inner());
        for slot in links.iter() {
            let _ = slot.tx.try_send((msg.clone(), None));
        }
    }

    pub fn links(&self) -> Vec<LinkInfo> {
        let links = self.inner.links.read().unwrap_or_else(|e| e.into_inner());
        links.iter().map(|s| s.info.clone()).collect()
    }

    pub fn link_stats(&self, id: LinkId) -> Option<LinkStatsSnapshot> {
        let links = self.inner.links.read().unwrap_or_else(|e| e.into_inner());
        links.get(id).map(|s| s.stats.snapshot())
    }

    /// The link a vehicle was last heard on.
    pub fn route(&self, sysid: u8) -> Option<LinkId> {
        self.inner.routes.lock().ok()?.get(&sysid).copied()
    }

    pub fn own_ids(&self) -> (u8, u8) {
        (self.inner.cfg.sysid, self.inner.cfg.compid)
    }

    pub fn tlog_path(&self) -> Option<&Path> {
        self.inner.tlog.as_ref().map(|t| t.path())
    }

    pub fn flush_tlog(&self) {
        if let Some(t) = &self.inner.tlog {
            t.flush();
        }
    }
}

/// The GCS heartbeat PX4 expects (MAV_TYPE_GCS, MAV_AUTOPILOT_INVALID), as QGroundControl sends it.
pub fn gcs_heartbeat() -> MavMessage {
    MavMessage::HEARTBEAT(HEARTBEAT_DATA {
        custom_mode: 0,
        mavtype: MavType::MAV_TYPE_GCS,
        autopilot: MavAutopilot::MAV_AUTOPILOT_INVALID,
        base_mode: MavModeFlag::empty(),
        system_status: MavState::MAV_STATE_ACTIVE,
        mavlink_version: 3,
    })
}

async fn heartbeat_loop(hub: Weak<Inner>, period: Duration) {
    // Wakes at least every 50 ms, so a faster clock measured meanwhile takes effect at once.
    let mut last: Option<tokio::time::Instant> = None;
    loop {
        let wait = {
            let Some(inner) = hub.upgrade() else { return };
            let hub = Hub { inner };
            let due = period.div_f64(hub.time_scale());
            let now = tokio::time::Instant::now();
            if last.is_none_or(|l| now >= l + due) {
                hub.broadcast(gcs_heartbeat());
                hub.flush_tlog();
                last = Some(now);
                due
            } else {
                (last.map_or(now, |l| l + due)).saturating_duration_since(now)
            }
        };
        tokio::time::sleep(wait.min(Duration::from_millis(50))).await;
    }
}

struct LinkTask {
    id: LinkId,
    header: MavHeader,
    signing: Option<LinkSigning>,
    stats: Arc<LinkStats>,
    routes: Arc<Mutex<HashMap<u8, LinkId>>>,
    inbound: broadcast::Sender<Arc<Inbound>>,
    tlog: Option<Arc<TlogWriter>>,
}

impl LinkTask {
    async fn run(
        mut self,
        transport: Box<dyn transport::Transport>,
        mut out_rx: mpsc::Receiver<(MavMessage, Option<u8>)>,
    ) {
        let (rx_tx, mut rx) = mpsc::channel(1024);
        let (tx, tx_rx) = mpsc::channel::<Outgoing>(1024);
        let io = tokio::spawn(transport.run(rx_tx, tx_rx));
        let mut parser = FrameParser::new();
        let mut parsed = Vec::new();
        loop {
            tokio::select! {
                chunk = rx.recv() => {
                    let Some(chunk) = chunk else { break };
                    match chunk {
                        RxChunk::Datagram(b) => {
                            self.stats.bytes_in.fetch_add(b.len() as u64, Ordering::Relaxed);
                            parser.push(&b, &mut parsed);
                            parser.end_datagram(&mut parsed);
                        }
                        RxChunk::Stream(b) => {
                            self.stats.bytes_in.fetch_add(b.len() as u64, Ordering::Relaxed);
                            parser.push(&b, &mut parsed);
                        }
                    }
                    for p in parsed.drain(..) {
                        self.take(p);
                    }
                }
                out = out_rx.recv() => {
                    let Some((msg, to)) = out else { break };
                    let mut bytes = Vec::with_capacity(64);
                    match &self.signing {
                        Some(s) => s.encode(self.header, &msg, &mut bytes),
                        None => { encode_v2(self.header, &msg, &mut bytes); }
                    }
                    self.header.sequence = self.header.sequence.wrapping_add(1);
                    if let Some(t) = &self.tlog {
                        t.record(&bytes);
                    }
                    self.stats.frames_out.fetch_add(1, Ordering::Relaxed);
                    let _ = tx.try_send(Outgoing { bytes, to });
                }
            }
        }
        drop(tx);
        io.abort();
    }

    fn take(&self, p: Parsed) {
        let frame = match p {
            Parsed::Frame(f) => f,
            Parsed::Skipped(s) => return self.stats.count_skip(s),
        };
        if let Some(s) = &self.signing {
            if !s.accept(&frame) {
                self.stats.bad_signature.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if let Some(t) = &self.tlog {
            t.record(frame.bytes());
        }
        if !frame.known() {
            return self.stats.count_skip(super::Skip::UnknownId(frame.msgid()));
        }
        let msg = match frame.decode() {
            Ok(m) => m,
            Err(_) => {
                self.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        self.stats.frames_in.fetch_add(1, Ordering::Relaxed);
        if frame.sysid() != self.header.system_id as u8 {
            if let Ok(mut r) = self.routes.lock() {
                r.insert(frame.sysid(), self.id);
            }
        }
        let _ = self.inbound.send(Arc::new(Inbound {
            link: self.id,
            frame,
            msg,
            at: Instant::now(),
        }));
    }
}
