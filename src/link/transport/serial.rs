//! Serial radios and USB links, through tokio-serial.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_serial::{SerialPortBuilderExt, SerialStream};

use super::{RxChunk, Transport, TransportFuture};
use crate::link::LinkError;

pub struct Serial {
    port: SerialStream,
}

impl Serial {
    pub fn open(path: &str, baud: u32) -> Result<Self, LinkError> {
        if !std::path::Path::new(path).exists() {
            return Err(LinkError::NoSerialDevice(path.to_string()));
        }
        let port = tokio_serial::new(path, baud)
            .open_native_async()
            .map_err(|e| LinkError::Open {
                addr: format!("serial:{path}:{baud}"),
                source: std::io::Error::other(e.to_string()),
            })?;
        Ok(Self { port })
    }
}

impl Transport for Serial {
    fn local_addr(&self) -> Option<SocketAddr> {
        None
    }

    fn run(
        self: Box<Self>,
        rx: mpsc::Sender<RxChunk>,
        mut tx: mpsc::Receiver<Vec<u8>>,
    ) -> TransportFuture {
        Box::pin(async move {
            let (mut r, mut w) = tokio::io::split(self.port);
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
