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
