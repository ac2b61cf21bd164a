//! UDP: `udpin` listens and answers every peer it has heard (several vehicles may share
//! one GCS port, as a PX4 SITL fleet does on 14550); `udpout` sends to one fixed peer.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::{RxChunk, Transport, TransportFuture};

/// The most peers a `udpin` link answers; the oldest is forgotten beyond it.
const MAX_PEERS: usize = 64;

pub struct Udp {
    sock: Arc<UdpSocket>,
    peers: Vec<SocketAddr>,
    fixed: bool,
}

impl Udp {
    pub async fn bind_in(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self {
            sock: Arc::new(UdpSocket::bind(addr).await?),
            peers: Vec::new(),
            fixed: false,
        })
    }

    pub async fn connect_out(peer: SocketAddr) -> io::Result<Self> {
        let local: SocketAddr = if peer.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        Ok(Self {
            sock: Arc::new(UdpSocket::bind(local).await?),
            peers: vec![peer],
            fixed: true,
        })
    }
}

impl Transport for Udp {
    fn local_addr(&self) -> Option<SocketAddr> {
        self.sock.local_addr().ok()
    }

    fn run(
        mut self: Box<Self>,
        rx: mpsc::Sender<RxChunk>,
        mut tx: mpsc::Receiver<Vec<u8>>,
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
                        if !self.fixed && !self.peers.contains(&from) {
                            if self.peers.len() == MAX_PEERS {
                                self.peers.remove(0);
                            }
                            self.peers.push(from);
                        }
                        if rx.send(RxChunk::Datagram(buf[..n].to_vec())).await.is_err() {
                            return Ok(());
                        }
                    }
                    out = tx.recv() => {
                        let Some(bytes) = out else { return Ok(()) };
                        for peer in &self.peers {
                            // A peer that has gone away must not stop the others.
                            let _ = self.sock.send_to(&bytes, peer).await;
                        }
                    }
                }
            }
        })
    }
}
