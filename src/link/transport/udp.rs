//! UDP: `udpin` listens and answers the peers it has heard (several vehicles may share
//! one GCS port, as a PX4 SITL fleet does on 14550): what is for one system goes only to
//! the addresses that system speaks from, the rest to every peer. `udpout` sends to one
//! fixed peer.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::{Outgoing, RxChunk, Transport, TransportFuture};

/// The most peers a `udpin` link answers; the oldest is forgotten beyond it.
const MAX_PEERS: usize = 64;

pub struct Udp {
    sock: Arc<UdpSocket>,
    peers: Vec<SocketAddr>,
    /// The addresses each system id has spoken from (an autopilot and its camera may
    /// each have their own).
    systems: HashMap<u8, Vec<SocketAddr>>,
    fixed: bool,
}

/// The system id of the first MAVLink frame in a datagram, if it starts with one.
fn first_sysid(datagram: &[u8]) -> Option<u8> {
    match datagram.first()? {
        0xFD => datagram.get(5).copied(),
        0xFE => datagram.get(3).copied(),
        _ => None,
    }
}

/// Receive buffer asked of the kernel, bytes: a SITL fleet at 10× sends over a megabyte a
/// second of telemetry, and a burst must not push out the mission replies among it.
const RECV_BUFFER: usize = 4 << 20;

/// Grows the socket's receive buffer (best effort: the kernel caps it at rmem_max).
fn grow_recv_buffer(sock: &UdpSocket) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let size = RECV_BUFFER as libc::c_int;
        // SAFETY: setsockopt on a socket we own, with a c_int option value of the right size.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

impl Udp {
    pub async fn bind_in(addr: SocketAddr) -> io::Result<Self> {
        let sock = UdpSocket::bind(addr).await?;
        grow_recv_buffer(&sock);
        Ok(Self {
            sock: Arc::new(sock),
            peers: Vec::new(),
            systems: HashMap::new(),
            fixed: false,
        })
    }

    pub async fn connect_out(peer: SocketAddr) -> io::Result<Self> {
        let local: SocketAddr = if peer.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let sock = UdpSocket::bind(local).await?;
        grow_recv_buffer(&sock);
        Ok(Self {
            sock: Arc::new(sock),
            peers: vec![peer],
            systems: HashMap::new(),
            fixed: true,
        })
    }
}

impl Udp {
    /// Remembers `from` as a peer, and as an address of system `sysid`.
    fn learn(&mut self, from: SocketAddr, sysid: Option<u8>) {
        if !self.peers.contains(&from) {
            if self.peers.len() == MAX_PEERS {
                let gone = self.peers.remove(0);
                self.systems.retain(|_, addrs| {
                    addrs.retain(|a| *a != gone);
                    !addrs.is_empty()
                });
            }
            self.peers.push(from);
        }
        if let Some(sysid) = sysid {
            let addrs = self.systems.entry(sysid).or_default();
            if !addrs.contains(&from) {
                addrs.push(from);
            }
        }
    }
}

impl Transport for Udp {
    fn local_addr(&self) -> Option<SocketAddr> {
        self.sock.local_addr().ok()
    }

    fn run(
        mut self: Box<Self>,
        rx: mpsc::Sender<RxChunk>,
        mut tx: mpsc::Receiver<Outgoing>,
    ) -> TransportFuture {
        Box::pin(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                tokio::select! {
                    r = self.sock.recv_from(&mut buf) => {
                        let (n, from) = match r {
                            Ok(x) => x,
                            // ICMP port unreachable from an earlier send: not fatal for UDP.
                            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused
                                || e.kind() == io::ErrorKind::ConnectionReset => continue,
                            Err(e) => return Err(e),
                        };
                        if !self.fixed {
                            self.learn(from, first_sysid(&buf[..n]));
                        }
                        if rx.send(RxChunk::Datagram(buf[..n].to_vec())).await.is_err() {
                            return Ok(());
                        }
                    }
                    out = tx.recv() => {
                        let Some(out) = out else { return Ok(()) };
                        let to = match out.to.and_then(|s| self.systems.get(&s)) {
                            Some(addrs) => addrs,
                            None => &self.peers,
                        };
                        for peer in to {
                            // A peer that has gone away must not stop the others.
                            let _ = self.sock.send_to(&out.bytes, peer).await;
                        }
                    }
                }
            }
        })
    }
}
