//! The fault table (docs/faults.md) is made of what the fault tests measure: each writes
//! one line, the fault, what was lost and how long recovery took, to
//! `target/test-output/faults.jsonl` (and stderr).

use std::io::Write;

/// Records one row of the fault table from test `test`.
pub fn record(test: &str, fault: &str, lost: &str, recovery: &str) {
    eprintln!("fault table | {fault} | lost: {lost} | recovery: {recovery}");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../test-output");
    let _ = std::fs::create_dir_all(&dir);
    let line = serde_json::json!({
        "test": test, "fault": fault, "lost": lost, "recovery": recovery,
    });
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("faults.jsonl"))
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Seconds, to one decimal.
pub fn secs(d: std::time::Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
