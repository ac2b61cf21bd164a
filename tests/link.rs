//! Transports and hub: TCP both ways, address and device errors.

use std::time::Duration;

use gridpatrol::link::{Hub, HubConfig, LinkConfig, LinkError};
use mavlink::dialects::common::MavMessage;

async fn next_from(hub: &Hub, sysid: u8) -> Option<MavMessage> {
    let mut rx = hub.subscribe();
    tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            let inb = rx.recv().await.ok()?;
            if inb.frame.sysid() == sysid {
                return Some(inb.msg.clone());
            }
        }
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test]
async fn tcpin_and_tcpout_carry_frames_both_ways() {
    let server = Hub::new(HubConfig {
        sysid: 200,
        ..HubConfig::default()
    })
    .unwrap();
    let info = server
        .add_link(LinkConfig::new("tcpin:127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let addr = info.local_addr.unwrap();
    let client = Hub::new(HubConfig {
        sysid: 201,
        heartbeat: Some(Duration::from_millis(100)),
        ..HubConfig::default()
    })
    .unwrap();
    client
        .add_link(LinkConfig::new(format!("tcpout:{addr}").parse().unwrap()))
        .await
        .unwrap();
    // The client's heartbeat reaches the server…
    assert!(matches!(
        next_from(&server, 201).await,
        Some(MavMessage::HEARTBEAT(_))
    ));
    // …and the server's reaches the client over the accepted connection.
    assert!(matches!(
        next_from(&client, 200).await,
        Some(MavMessage::HEARTBEAT(_))
    ));
    assert_eq!(server.route(201), Some(0));
}

#[tokio::test]
async fn udpout_reaches_a_udpin_peer_that_answers_back() {
    let a = Hub::new(HubConfig {
        sysid: 10,
        heartbeat: Some(Duration::from_millis(100)),
        ..HubConfig::default()
    })
    .unwrap();
    let info = a
        .add_link(LinkConfig::new("udpin:127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let b = Hub::new(HubConfig {
        sysid: 11,
        heartbeat: Some(Duration::from_millis(100)),
        ..HubConfig::default()
    })
    .unwrap();
    b.add_link(LinkConfig::new(
        format!("udpout:{}", info.local_addr.unwrap())
            .parse()
            .unwrap(),
    ))
    .await
    .unwrap();
    assert!(next_from(&a, 11).await.is_some());
    assert!(
        next_from(&b, 10).await.is_some(),
        "udpin answers the peer it heard"
    );
}

#[tokio::test]
async fn a_missing_serial_device_says_so() {
    let hub = Hub::new(HubConfig::default()).unwrap();
    let err = hub
        .add_link(LinkConfig::new(
            "serial:/dev/ttyNOSUCHDEVICE0:57600".parse().unwrap(),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LinkError::NoSerialDevice(ref p) if p == "/dev/ttyNOSUCHDEVICE0"),
        "{err}"
    );
    assert!(err.to_string().contains("does not exist"));
}

#[tokio::test]
async fn a_port_in_use_names_the_address() {
    let hub = Hub::new(HubConfig::default()).unwrap();
    let info = hub
        .add_link(LinkConfig::new("tcpin:127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let addr = format!("tcpin:{}", info.local_addr.unwrap());
    let err = hub
        .add_link(LinkConfig::new(addr.parse().unwrap()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&addr), "{err}");
}

#[tokio::test]
async fn garbage_on_a_live_link_is_counted_and_skipped() {
    use gridpatrol::link::frame::encode_v2;
    let hub = Hub::new(HubConfig::default()).unwrap();
    let info = hub
        .add_link(LinkConfig::new("udpin:127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = info.local_addr.unwrap();
    let mut good = Vec::new();
    let hb = gridpatrol::link::gcs_heartbeat();
    encode_v2(
        mavlink::MavHeader {
            system_id: 9,
            component_id: 1,
            sequence: 0,
        },
        &hb,
        &mut good,
    );
    let mut bad_crc = good.clone();
    bad_crc[12] ^= 0xFF;
    let mut rx = hub.subscribe();
    sock.send_to(b"hello, not mavlink", to).await.unwrap();
    sock.send_to(&bad_crc, to).await.unwrap();
    sock.send_to(&good[..good.len() - 3], to).await.unwrap();
    sock.send_to(&good, to).await.unwrap();
    let inb = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inb.frame.sysid(), 9);
    let s = hub.link_stats(0).unwrap();
    assert!(s.garbage_bytes >= 18, "{s:?}");
    assert_eq!(s.bad_crc, 1, "{s:?}");
    assert!(s.truncated >= 1, "{s:?}");
    assert_eq!(s.frames_in, 1);
}
