//! `gridpatrol alert`: raise an alert with the running service (`serve`), which sends the
//! nearest ready drone to the point; `--wait` follows it to its conclusion.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use gridpatrol::alert::Priority;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct AlertArgs {
    /// The point, `LAT,LON` in degrees.
    point: String,
    /// What was seen: fire_smoke, crowd, garbage, piled_objects, …
    #[arg(long)]
    category: String,
    /// `urgent` and above take a vehicle off a routine patrol.
    #[arg(long, value_enum, default_value = "urgent")]
    priority: Priority,
    /// The point's datum: wgs84, or gcj02 as Chinese web maps give it.
    #[arg(long, default_value = "wgs84")]
    datum: String,
    /// Where it came from, `KIND:ID`: camera:CAM-7, hotline:12345-0001, platform:REF.
    #[arg(long, default_value = "hotline:cli")]
    source: String,
    /// The service, as `serve` printed it (`api:`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// An operator's token (`gridpatrol token create --role operator`).
    #[arg(long, env = "GRIDPATROL_TOKEN", hide_env_values = true)]
    token: String,
    /// Follow the alert until it is concluded: confirmed, not confirmed or refused.
    #[arg(long)]
    wait: bool,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The service's answer: its JSON, or its error message.
fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>, server: &str) -> Result<Value> {
    let mut r = r.with_context(|| {
        format!("no answer from {server}; is `gridpatrol serve` running there?")
    })?;
    let status = r.status();
    let body: Value = r
        .body_mut()
        .read_to_string()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "{status}: {}",
            body["message"]
                .as_str()
                .unwrap_or("the service refused the alert")
        );
    }
    Ok(body)
}

fn line(a: &Value) -> String {
    format!(
        "alert {}: {} ({})",
        a["id"],
        a["state"].as_str().unwrap_or("?"),
        a["reason"].as_str().unwrap_or("")
    )
}

pub async fn alert(args: AlertArgs) -> Result<()> {
    let (lat, lon) = args
        .point
        .split_once(',')
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)))
        .with_context(|| format!("{:?}: give the point as LAT,LON in degrees", args.point))?;
    let Some((kind, id)) = args.source.split_once(':') else {
        bail!(
            "--source {:?}: give it as KIND:ID, e.g. hotline:12345-0001",
            args.source
        );
    };
    let body = json!({
        "lat": lat, "lon": lon, "datum": args.datum,
        "category": args.category, "priority": args.priority,
        "source": { "kind": kind, "id": id },
    });
    let server = args.server.trim_end_matches('/').to_string();
    let auth = format!("Bearer {}", args.token);
    let (s, a) = (server.clone(), auth.clone());
    let raised = tokio::task::spawn_blocking(move || {
        answer(
            agent()
                .post(&format!("{s}/api/v1/alerts"))
                .header("Authorization", &a)
                .content_type("application/json")
                .send(body.to_string()),
            &s,
        )
    })
    .await??;
    println!("{}", line(&raised));
    if !args.wait {
        return Ok(());
    }
    let id = raised["merged_into"]
        .as_i64()
        .or(raised["id"].as_i64())
        .unwrap_or(0);
    let mut last = raised["state"].as_str().unwrap_or("").to_string();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (s, a) = (server.clone(), auth.clone());
        let now = tokio::task::spawn_blocking(move || {
            answer(
                agent()
                    .get(&format!("{s}/api/v1/alerts/{id}"))
                    .header("Authorization", &a)
                    .call(),
                &s,
            )
        })
        .await??;
        let state = now["state"].as_str().unwrap_or("").to_string();
        if state != last {
            println!("{}", line(&now));
            last = state.clone();
        }
        if !matches!(state.as_str(), "dispatching" | "en_route" | "on_scene") {
            let t = &now["times"];
            if let Some(total) = t["total_s"].as_f64() {
                println!(
                    "time to scene {total:.1} s: decision {:.1} s, upload {:.1} s, takeoff {:.1} s, transit {:.1} s",
                    t["decision_s"].as_f64().unwrap_or(f64::NAN),
                    t["upload_s"].as_f64().unwrap_or(f64::NAN),
                    t["takeoff_s"].as_f64().unwrap_or(f64::NAN),
                    t["transit_s"].as_f64().unwrap_or(f64::NAN),
                );
            }
            if let Some(ev) = now["events"].as_array().filter(|e| !e.is_empty()) {
                println!(
                    "events linked: {}",
                    ev.iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            return Ok(());
        }
    }
}
