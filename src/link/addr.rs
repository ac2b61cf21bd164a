//! Link address strings, in the form MAVProxy and rust-mavlink operators already know.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// The accepted forms, quoted in every parse error.
pub const ACCEPTED_FORMS: &str = "udpin:HOST:PORT (listen, reply to the last sender), \
udpout:HOST:PORT (send to a fixed peer), tcpin:HOST:PORT (listen for TCP clients), \
tcpout:HOST:PORT (connect to a TCP server), serial:DEVICE:BAUD (e.g. serial:/dev/ttyUSB0:57600)";

/// Where a link goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LinkAddr {
    /// Bind here and answer whoever last sent to us (how a GCS listens on 14550).
    UdpIn(SocketAddr),
    /// Send to this peer from an ephemeral port (how one reaches PX4's 14540 API link).
    UdpOut(SocketAddr),
    TcpIn(SocketAddr),
    TcpOut(SocketAddr),
    /// A serial device and its baud rate.
    Serial {
        path: String,
        baud: u32,
    },
    /// A byte stream handed to the hub in code (see `Hub::add_stream`); not parsed from text.
    Stream(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bad link address {input:?}: {problem}. Accepted forms: {ACCEPTED_FORMS}")]
pub struct AddrError {
    pub input: String,
    pub problem: String,
}

impl FromStr for LinkAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, AddrError> {
        let err = |problem: String| AddrError {
            input: s.to_string(),
            problem,
        };
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| err("no scheme".to_string()))?;
        let socket = |rest: &str| -> Result<SocketAddr, AddrError> {
            rest.parse::<SocketAddr>()
                .map_err(|e| err(format!("{rest:?} is not HOST:PORT with a numeric IP ({e})")))
        };
        match scheme {
            "udpin" => Ok(LinkAddr::UdpIn(socket(rest)?)),
            "udpout" | "udp" => Ok(LinkAddr::UdpOut(socket(rest)?)),
            "tcpin" => Ok(LinkAddr::TcpIn(socket(rest)?)),
            "tcpout" | "tcp" => Ok(LinkAddr::TcpOut(socket(rest)?)),
            "serial" => {
                let (path, baud) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| err("serial needs DEVICE:BAUD".to_string()))?;
                let baud = baud
                    .parse::<u32>()
                    .map_err(|_| err(format!("baud rate {baud:?} is not a number")))?;
                if path.is_empty() {
                    return Err(err("serial device path is empty".to_string()));
                }
                Ok(LinkAddr::Serial {
                    path: path.to_string(),
                    baud,
                })
            }
            other => Err(err(format!("unknown scheme {other:?}"))),
        }
    }
}

impl fmt::Display for LinkAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkAddr::UdpIn(a) => write!(f, "udpin:{a}"),
            LinkAddr::UdpOut(a) => write!(f, "udpout:{a}"),
            LinkAddr::TcpIn(a) => write!(f, "tcpin:{a}"),
            LinkAddr::TcpOut(a) => write!(f, "tcpout:{a}"),
            LinkAddr::Serial { path, baud } => write!(f, "serial:{path}:{baud}"),
            LinkAddr::Stream(name) => write!(f, "stream:{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_round_trips() {
        for s in [
            "udpin:0.0.0.0:14550",
            "udpout:127.0.0.1:14540",
            "tcpin:0.0.0.0:5760",
            "tcpout:127.0.0.1:5760",
            "serial:/dev/ttyUSB0:57600",
        ] {
            let a: LinkAddr = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn bad_strings_list_the_accepted_forms() {
        for s in [
            "14550",
            "udp-in:1.2.3.4:5",
            "udpin:localhost",
            "serial:/dev/x:fast",
        ] {
            let e = s.parse::<LinkAddr>().unwrap_err().to_string();
            assert!(e.contains("udpin:HOST:PORT"), "{e}");
            assert!(e.contains(s), "{e}");
        }
    }
}
