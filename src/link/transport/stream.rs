//! Any byte stream: serial ports use it, and so can pipes, ptys or an in-memory duplex.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{RxChunk, Transport, TransportFuture};

pub struct Stream<S> {
    io: S,
}

impl<S> Stream<S> {
    pub fn new(io: S) -> Self {
        Self { io }
    }
}

impl<S: AsyncRead + AsyncWrite + Send + 'static> Transport for Stream<S> {
    fn local_addr(&self) -> Option<SocketAddr> {
        None
    }

    fn run(
        self: Box<Self>,
        rx: mpsc::Sender<RxChunk>,
        mut tx: mpsc::Receiver<Vec<u8>>,
    ) -> TransportFuture {
        Box::pin(async move {
            let (mut r, mut w) = tokio::io::split(self.io);
            let mut buf = vec![0u8; 4096];
            loop {
                tokio::select! {
                    got = r.read(&mut buf) => {
                        let n = got?;
                        if n == 0 { return Ok(()) }
                        if rx.send(RxChunk::Stream(buf[..n].to_vec())).await.is_err() { return Ok(()) }
                    }
                    out = tx.recv() => {
                        let Some(bytes) = out else { return Ok(()) };
                        w.write_all(&bytes).await?;
                    }
                }
            }
        })
    }
}
