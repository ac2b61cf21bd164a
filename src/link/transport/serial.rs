//! Serial radios and USB links, through tokio-serial; the bytes then flow as any stream.

use tokio_serial::{SerialPortBuilderExt, SerialStream};

use crate::link::LinkError;

pub fn open(path: &str, baud: u32) -> Result<SerialStream, LinkError> {
    if !std::path::Path::new(path).exists() {
        return Err(LinkError::NoSerialDevice(path.to_string()));
    }
    tokio_serial::new(path, baud)
        .open_native_async()
        .map_err(|e| LinkError::Open {
            addr: format!("serial:{path}:{baud}"),
            source: std::io::Error::other(e.to_string()),
        })
}
