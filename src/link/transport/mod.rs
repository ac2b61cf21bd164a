//! Transports: one file each, all behind [`Transport`]. A transport only moves bytes;
//! framing, signing, statistics and the tlog live in the link above it.

mod serial;
mod stream;
mod tcp;
mod udp;

pub use stream::Stream;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::sync::mpsc;

use super::{LinkAddr, LinkError};

/// Bytes from a transport. Datagrams are framed alone; stream chunks join up.
#[derive(Debug)]
pub enum RxChunk {
    Datagram(Vec<u8>),
    Stream(Vec<u8>),
}

/// Bytes to send, with the system they are for where there is one: a transport with
/// several peers (`udpin`) sends them only to the peers that system speaks from, as
/// mavlink-router routes by system id; `None` goes to every peer.
#[derive(Debug)]
pub struct Outgoing {
    pub bytes: Vec<u8>,
    pub to: Option<u8>,
}

pub type TransportFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// An open transport.
pub trait Transport: Send {
    /// The local socket address, for network transports (useful when bound to port 0).
    fn local_addr(&self) -> Option<SocketAddr>;
    /// Moves bytes until `tx` closes: what arrives goes to `rx`, what comes from `tx` is sent.
    fn run(
        self: Box<Self>,
        rx: mpsc::Sender<RxChunk>,
        tx: mpsc::Receiver<Outgoing>,
    ) -> TransportFuture;
}

/// Opens (binds, connects) the transport for `addr`, so that errors surface here.
pub async fn open(addr: &LinkAddr) -> Result<Box<dyn Transport>, LinkError> {
    let io_err = |e: io::Error| LinkError::Open {
        addr: addr.to_string(),
        source: e,
    };
    Ok(match addr {
        LinkAddr::UdpIn(a) => Box::new(udp::Udp::bind_in(*a).await.map_err(io_err)?),
        LinkAddr::UdpOut(a) => Box::new(udp::Udp::connect_out(*a).await.map_err(io_err)?),
        LinkAddr::TcpIn(a) => Box::new(tcp::TcpIn::bind(*a).await.map_err(io_err)?),
        LinkAddr::TcpOut(a) => Box::new(tcp::TcpOut::connect(*a).await.map_err(io_err)?),
        LinkAddr::Serial { path, baud } => Box::new(Stream::new(serial::open(path, *baud)?)),
        LinkAddr::Stream(name) => {
            return Err(LinkError::Open {
                addr: addr.to_string(),
                source: io::Error::other(format!(
                    "stream link {name:?} can only be attached in code"
                )),
            })
        }
    })
}
