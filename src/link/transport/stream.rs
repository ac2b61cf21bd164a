//! Any byte stream: serial ports use it, and so can pipes, ptys or an in-memory duplex.
//! `pump` is also the inner loop of a `tcpout` connection.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{Outgoing, RxChunk, Transport, TransportFuture};

pub struct Stream<S> {
    io: S,
}

impl<S> Stream<S> {
    pub fn new(io: S) -> Self {
        Self { io }
    }
}

/// Why `pump` stopped.
pub(super) enum End {
    /// The stream reached its end: it may be reopened.
    StreamClosed,
    /// The link above went away: stop for good.
    LinkClosed,
}

/// Moves bytes both ways until the stream ends, fails, or the link closes.
pub(super) async fn pump<S: AsyncRead + AsyncWrite>(
    io: S,
    rx: &mpsc::Sender<RxChunk>,
    tx: &mut mpsc::Receiver<Outgoing>,
) -> io::Result<End> {
    let (mut r, mut w) = tokio::io::split(io);
    let mut buf = vec![0u8; 16384];
    loop {
        tokio::select! {
            got = r.read(&mut buf) => {
                let n = got?;
                if n == 0 {
                    return Ok(End::StreamClosed);
                }
                if rx.send(RxChunk::Stream(buf[..n].to_vec())).await.is_err() {
                    return Ok(End::LinkClosed);
                }
            }
            out = tx.recv() => {
                let Some(Outgoing { bytes, .. }) = out else { return Ok(End::LinkClosed) };
                w.write_all(&bytes).await?;
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Send + 'static> Transport for Stream<S> {
    fn local_addr(&self) -> Option<SocketAddr> {
        None
    }

    fn run(
        self: Box<Self>,
        rx: mpsc::Sender<RxChunk>,
        mut tx: mpsc::Receiver<Outgoing>,
    ) -> TransportFuture {
        Box::pin(async move { pump(self.io, &rx, &mut tx).await.map(|_| ()) })
    }
}
