//! PostgreSQL for the tests: the server `GRIDPATROL_PG_URL` names (`.ci/run` starts a
//! throwaway cluster and sets it), with a fresh database for each test so that tests run
//! in parallel.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use gridpatrol::store::DbSpec;

/// A new, empty database on the test server, named after `test`; None, after one line
/// saying so, where no server is set (in CI that fails instead).
pub fn database(test: &str) -> Option<DbSpec> {
    let Some(url) = std::env::var("GRIDPATROL_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        super::skip(&format!(
            "{test}: not on PostgreSQL (no GRIDPATROL_PG_URL; .ci/run starts a server)"
        ));
        return None;
    };
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "gp_{}_{}_{}",
        test.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(30)
            .collect::<String>()
            .to_lowercase(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    // On a thread of its own: the caller may be on a runtime already.
    let admin = url.clone();
    let db = name.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("GRIDPATROL_PG_URL {admin}: {e}"));
            tokio::spawn(conn);
            // One statement each: a multi-statement string is one transaction.
            for sql in [
                format!("DROP DATABASE IF EXISTS {db}"),
                format!("CREATE DATABASE {db}"),
            ] {
                client.batch_execute(&sql).await.unwrap();
            }
        })
    })
    .join()
    .unwrap();
    let (base, _) = url
        .rsplit_once('/')
        .expect("GRIDPATROL_PG_URL ends in /DATABASE");
    Some(DbSpec::Postgres(format!("{base}/{name}")))
}

/// The engines a store test runs on: SQLite in `dir`, and PostgreSQL where there is one.
pub fn engines(dir: &Path, test: &str) -> Vec<DbSpec> {
    let mut v = vec![DbSpec::Sqlite(dir.join("sqlite").join("gridpatrol.db"))];
    v.extend(database(test));
    v
}
