//! MAVLink FTP reads from the simulated camera over real UDP: whole files byte for byte,
//! on a clean link and with a fifth of the frames lost each way; a missing file is a
//! clear refusal.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{fast_fleet, rig, Rig};
use gridpatrol::link::HubConfig;
use gridpatrol::vehicle::ftp::FtpError;
use gridpatrol::vehicle::Vehicle;
use gridpatrol_sim::world::World;
use gridpatrol_sim::{Faults, SimConfig};

fn file(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A simulated camera serving `files` (name, bytes) under /images/, over a link with
/// these faults, and its vehicle, already heard.
async fn camera(files: &[(String, Vec<u8>)], faults: Faults) -> (Rig, Vehicle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("1")).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join("1").join(name), bytes).unwrap();
    }
    let r = rig(
        SimConfig {
            world: Some(Arc::new(World::sample())),
            image_dir: Some(dir.path().to_path_buf()),
            faults: vec![faults],
            ..Default::default()
        },
        fast_fleet(),
        HubConfig::default(),
        None,
    )
    .await;
    let v = r
        .fleet
        .wait_vehicle(Some(1), Duration::from_secs(5))
        .await
        .unwrap();
    (r, v, dir)
}

async fn read_with(faults: Faults, size: usize) -> (Result<Vec<u8>, FtpError>, Vec<u8>, Duration) {
    let want = file(size);
    let (_rig, v, _dir) = camera(&[("000007.jpg".to_string(), want.clone())], faults).await;
    let t = std::time::Instant::now();
    let got = v.ftp_read(100, "/images/000007.jpg").await;
    (got, want, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_is_read_whole_over_a_clean_link() {
    let (got, want, took) = read_with(Faults::default(), 150_000).await;
    assert_eq!(got.unwrap(), want);
    eprintln!("150 kB by MAVLink FTP in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_is_read_whole_with_a_fifth_of_the_frames_lost() {
    let (got, want, _) = read_with(
        Faults {
            loss_in: 0.2,
            loss_out: 0.2,
            ..Faults::default()
        },
        40_000,
    )
    .await;
    assert_eq!(got.unwrap(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_is_refused_by_name() {
    let (_rig, v, _dir) = camera(&[], Faults::default()).await;
    let e = v.ftp_read(100, "/images/000999.jpg").await.unwrap_err();
    assert_eq!(
        e,
        FtpError::Nak {
            op: "OpenFileRO",
            code: 10,
            meaning: "file not found"
        }
    );
    assert!(
        v.ftp_read(100, "/etc/passwd").await.is_err(),
        "only the photos are served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_asked_for_at_once_are_taken_in_turn_and_each_is_whole() {
    let files: Vec<Vec<u8>> = (0..4).map(|k| file(20_000 + 997 * k)).collect();
    let named: Vec<(String, Vec<u8>)> = files
        .iter()
        .enumerate()
        .map(|(k, f)| (format!("00000{k}.jpg"), f.clone()))
        .collect();
    let (_rig, v, _dir) = camera(&named, Faults::default()).await;
    let reads = (0..4).map(|k| {
        let v = v.clone();
        tokio::spawn(async move { v.ftp_read(100, &format!("/images/00000{k}.jpg")).await })
    });
    for (k, t) in reads.enumerate() {
        assert_eq!(t.await.unwrap().unwrap(), files[k], "file {k}");
    }
}
