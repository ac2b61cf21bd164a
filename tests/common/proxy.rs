//! A UDP proxy on loopback between a vehicle (which sends to the proxy's port) and a
//! ground station at `gcs`: it drops a seeded fraction of the datagrams each way, can cut
//! either direction on demand, and counts the MAVLink 2 messages going up by id.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

pub struct Proxy {
    /// Where the vehicle sends.
    pub port: u16,
    /// Ground → vehicle passes while true.
    pub uplink: Arc<AtomicBool>,
    /// Vehicle → ground passes while true.
    pub downlink: Arc<AtomicBool>,
    up_ids: Arc<Mutex<HashMap<u32, u64>>>,
    /// The fraction dropped each way, as f64 bits.
    loss: Arc<AtomicU64>,
}

impl Proxy {
    /// Cuts (false) or restores (true) both directions.
    pub fn set_open(&self, open: bool) {
        self.uplink.store(open, Ordering::SeqCst);
        self.downlink.store(open, Ordering::SeqCst);
    }

    /// Drops `loss` (0..1) of the datagrams each way from now on.
    pub fn set_loss(&self, loss: f64) {
        self.loss.store(loss.to_bits(), Ordering::SeqCst);
    }

    /// How many messages with this id the ground station sent (passed or not).
    pub fn sent_up(&self, msgid: u32) -> u64 {
        self.up_ids
            .lock()
            .unwrap()
            .get(&msgid)
            .copied()
            .unwrap_or(0)
    }
}

/// SplitMix64 in [0, 1): a seeded, repeatable loss pattern.
fn uniform(s: &mut u64) -> f64 {
    *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as f64 / u64::MAX as f64
}

/// The message id of a MAVLink 2 frame at the start of `b` (0xFD, len, incompat, compat,
/// seq, sysid, compid, msgid × 3).
fn msgid(b: &[u8]) -> Option<u32> {
    (b.len() >= 10 && b[0] == 0xFD).then(|| u32::from_le_bytes([b[7], b[8], b[9], 0]))
}

pub async fn start(loss: f64, gcs: SocketAddr, seed: u64) -> Proxy {
    let outer = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let inner = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    inner.connect(gcs).await.unwrap();
    let proxy = Proxy {
        port: outer.local_addr().unwrap().port(),
        uplink: Arc::new(AtomicBool::new(true)),
        downlink: Arc::new(AtomicBool::new(true)),
        up_ids: Arc::default(),
        loss: Arc::new(AtomicU64::new(loss.to_bits())),
    };
    let drop_now =
        |l: &AtomicU64, s: &mut u64| uniform(s) < f64::from_bits(l.load(Ordering::SeqCst));
    let vehicle: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
    let (o, i, veh, open, l) = (
        outer.clone(),
        inner.clone(),
        vehicle.clone(),
        proxy.downlink.clone(),
        proxy.loss.clone(),
    );
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        let mut s = seed;
        loop {
            // A socket error (an ICMP answer to an earlier datagram) ends nothing.
            let Ok((n, from)) = o.recv_from(&mut buf).await else {
                continue;
            };
            *veh.lock().unwrap() = Some(from);
            if !drop_now(&l, &mut s) && open.load(Ordering::SeqCst) {
                let _ = i.send(&buf[..n]).await;
            }
        }
    });
    let (open, ids, l) = (
        proxy.uplink.clone(),
        proxy.up_ids.clone(),
        proxy.loss.clone(),
    );
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        let mut s = seed ^ 0xFFFF;
        loop {
            let Ok(n) = inner.recv(&mut buf).await else {
                continue;
            };
            if let Some(id) = msgid(&buf[..n]) {
                *ids.lock().unwrap().entry(id).or_default() += 1;
            }
            let to = *vehicle.lock().unwrap();
            if let Some(to) = to {
                if !drop_now(&l, &mut s) && open.load(Ordering::SeqCst) {
                    let _ = outer.send_to(&buf[..n], to).await;
                }
            }
        }
    });
    proxy
}
