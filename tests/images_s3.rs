//! Photos in an S3-compatible store (moto's server, from PyPI, as `.ci/run` installs it):
//! `serve --images s3://BUCKET/PREFIX` files a patrol's photos there, not in its data
//! directory, and another controller on the same database serves them from there.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::serve::{call_as, patrols, spawn_with_env, start_run, token, wait_final, SHORT};
use sha2::{Digest, Sha256};

/// moto's S3 server on a free port; killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
    python: std::path::PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Option<Moto> {
    let python = common::python_with(&["moto.server", "flask_cors", "boto3"])?;
    let mut child = Command::new(&python)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Werkzeug says where it listens: " * Running on http://127.0.0.1:PORT".
    let endpoint = loop {
        let line = lines.next().expect("moto said where it listens").unwrap();
        if let Some(at) = line.split("Running on ").nth(1) {
            break at.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Some(Moto {
        child,
        endpoint,
        python,
    })
}

/// The keys under `prefix` in `bucket` (ListObjectsV2; moto does not check signatures).
fn keys(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let body = ureq::get(&format!("{endpoint}/{bucket}?list-type=2&prefix={prefix}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    body.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

#[test]
fn photos_go_to_an_s3_bucket_and_another_controller_serves_them_from_there() {
    let Some(moto) = moto() else {
        return;
    };
    let (bucket, prefix) = ("photos", "district-7");
    let made = ureq::put(&format!("{}/{bucket}", moto.endpoint))
        .send_empty()
        .unwrap();
    assert_eq!(made.status(), 200);
    let env = [
        ("AWS_ENDPOINT", moto.endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "gridpatrol"),
        ("AWS_SECRET_ACCESS_KEY", "gridpatrol"),
    ];
    let images = format!("s3://{bucket}/{prefix}");
    let dir = tempfile::tempdir().unwrap();
    let pdir = patrols(dir.path(), &[("short", SHORT)]);
    let data = dir.path().join("data");
    let op = token(&data, "operator", "飞手", "");
    let first = spawn_with_env(
        &data,
        &pdir,
        &["--demo", "--speed", "40", "--images", &images],
        &env,
    );
    let run = start_run(&first.base, &op, "short");
    let done = wait_final(
        &first.base,
        &op,
        run["id"].as_i64().unwrap(),
        Duration::from_secs(600),
    );
    assert_eq!(done["run"]["state"], "success", "{done}");
    // The photos are processed after the run ends: wait for them to be stored.
    let db = rusqlite::Connection::open(data.join("gridpatrol.db")).unwrap();
    let stored = || -> Vec<(i64, String)> {
        let mut st = db
            .prepare("SELECT id, image_sha FROM captures WHERE image_sha IS NOT NULL ORDER BY id")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let end = std::time::Instant::now() + Duration::from_secs(120);
    let captures: i64 = db
        .query_row("SELECT count(*) FROM captures", [], |r| r.get(0))
        .unwrap();
    assert!(captures > 0, "the run took no photo");
    while (stored().len() as i64) < captures {
        assert!(
            std::time::Instant::now() < end,
            "{} of {captures} photos stored",
            stored().len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every photo is an object under the prefix, named by its hash, and none is a file in
    // the data directory.
    let in_bucket = keys(&moto.endpoint, bucket, prefix);
    for (_, sha) in stored() {
        let key = format!("{prefix}/{}/{sha}.jpg", &sha[..2]);
        assert!(in_bucket.contains(&key), "{key} not in {in_bucket:?}");
    }
    assert!(
        !data.join("images").exists(),
        "a local image store was opened: {:?}",
        walk(&data.join("images"))
    );
    // Another controller on the same database and bucket (its own data directory) serves
    // a photo the first filed, from the bucket.
    let data2 = dir.path().join("data2");
    let db_arg = format!("sqlite:{}", data.join("gridpatrol.db").display());
    let second = spawn_with_env(
        &data2,
        &pdir,
        &["--demo", "--db", &db_arg, "--images", &images],
        &env,
    );
    let (id, sha) = stored()[0].clone();
    let mut resp = ureq::get(&format!("{}/api/v1/images/{id}", second.base))
        .header("Authorization", &format!("Bearer {op}"))
        .call()
        .unwrap();
    let jpeg = resp.body_mut().read_to_vec().unwrap();
    let got: String = Sha256::digest(&jpeg)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(got, sha);
    assert!(jpeg.starts_with(&[0xFF, 0xD8]), "not a JPEG");
    // A photo gone from the bucket is a clear 404 naming it, not a hang or a 500.
    let (id2, sha2) = stored()[1].clone();
    let key = format!("{prefix}/{}/{sha2}.jpg", &sha2[..2]);
    // (With boto3, moto's client: moto refuses an unsigned DELETE.)
    let delete = format!(
        "import boto3; boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
         aws_access_key_id='gridpatrol', aws_secret_access_key='gridpatrol')\
         .delete_object(Bucket='{bucket}', Key='{key}')",
        moto.endpoint
    );
    let gone = Command::new(&moto.python)
        .args(["-c", &delete])
        .output()
        .unwrap();
    assert!(
        gone.status.success(),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
    let (code, body) = call_as(
        "GET",
        &format!("{}/api/v1/images/{id2}", second.base),
        Some(&op),
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.to_string().contains(&sha2[..8]), "{body}");
}

/// Every file under `dir` (none when it does not exist).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
