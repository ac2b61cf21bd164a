//! TCP: `tcpin` serves any number of clients (all get every frame we send); `tcpout`
//! connects to a server and reconnects once a second if it drops.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{Outgoing, RxChunk, Transport, TransportFuture};

pub struct TcpIn {
    listener: TcpListener,
}

impl TcpIn {
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
        })
    }
}

fn spawn_reader(mut read: tokio::net::tcp::OwnedReadHalf, rx: mpsc::Sender<RxChunk>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16384];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if rx.send(RxChunk::Stream(buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
}

impl Transport for TcpIn {
    fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    fn run(
        self: Box<Self>,
        rx: mpsc::Sender<RxChunk>,
        mut tx: mpsc::Receiver<Outgoing>,
    ) -> TransportFuture {
        Box::pin(async move {
            let mut clients: Vec<OwnedWriteHalf> = Vec::new();
            loop {
                tokio::select! {
                    acc = self.listener.accept() => {
                        let (stream, _) = acc?;
                        let _ = stream.set_nodelay(true);
                        let (r, w) = stream.into_split();
                        spawn_reader(r, rx.clone());
                        clients.push(w);
                    }
                    out = tx.recv() => {
                        let Some(Outgoing { bytes, .. }) = out else { return Ok(()) };
                        let mut alive = Vec::with_capacity(clients.len());
                        for mut c in clients.drain(..) {
                            if c.write_all(&bytes).await.is_ok() {
                                alive.push(c);
                            }
                        }
                        clients = alive;
                    }
                }
            }
        })
    }
}

pub struct TcpOut {
    peer: SocketAddr,
    first: Option<TcpStream>,
}

impl TcpOut {
    pub async fn connect(peer: SocketAddr) -> io::Result<Self> {
        let s = TcpStream::connect(peer).await?;
        let _ = s.set_nodelay(true);
        Ok(Self {
            peer,
            first: Some(s),
        })
    }
}

impl Transport for TcpOut {
    fn local_addr(&self) -> Option<SocketAddr> {
        self.first.as_ref().and_then(|s| s.local_addr().ok())
    }

    fn run(
        mut self: Box<Self>,
        rx: mpsc::Sender<RxChunk>,
        mut tx: mpsc::Receiver<Outgoing>,
    ) -> TransportFuture {
        Box::pin(async move {
            loop {
                let stream = match self.first.take() {
                    Some(s) => s,
                    None => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        match TcpStream::connect(self.peer).await {
                            Ok(s) => s,
                            Err(_) => {
                                // Drain what we could not send while down: stale commands are worse than none.
                                while tx.try_recv().is_ok() {}
                                if tx.is_closed() {
                                    return Ok(());
                                }
                                continue;
                            }
                        }
                    }
                };
                // A dropped connection is reopened; only the link going away ends this.
                if let Ok(super::stream::End::LinkClosed) =
                    super::stream::pump(stream, &rx, &mut tx).await
                {
                    return Ok(());
                }
            }
        })
    }
}
