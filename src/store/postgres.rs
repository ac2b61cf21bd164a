//! The PostgreSQL engine: tokio-postgres with a deadpool pool, on a runtime of its own so
//! that the store's callers stay synchronous (like SQLite's) whether or not they run on
//! the application's runtime. Migrations are counted in `gridpatrol_schema`.

use std::error::Error as StdError;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use tokio_postgres::NoTls;

use super::dialect;
use super::{DbError, Result, Row, Tx, TxInner, Value};

/// The advisory lock every writing transaction takes (an arbitrary number, "gp").
const WRITE_LOCK: i64 = 0x6770_0001;
/// How long PostgreSQL lets a session sit idle inside a transaction before it ends the
/// session (`idle_in_transaction_session_timeout`). A controller frozen mid-transaction
/// (a stopped process, a paused VM) holds the write lock, and with it every other
/// controller's writes and takeovers, no longer than this; none of ours idles a second.
/// A URL that sets the parameter in its `options` keeps its own.
pub const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(5);
/// The advisory lock held while migrating, so two controllers starting together migrate
/// once.
const MIGRATE_LOCK: i64 = 0x6770_0002;

pub(super) struct Postgres {
    /// Always Some but in `drop`.
    rt: Option<tokio::runtime::Runtime>,
    pool: Pool,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Without waiting: the store may be dropped on another runtime's thread, where a
        // blocking shutdown panics.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl ToSql for Value {
    /// Converted to the type PostgreSQL inferred for the parameter: an integer binds to
    /// any integer, real, boolean or text parameter, a real to a real, a text to a text.
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT4) => (*i as f32).to_sql(ty, out),
            (Value::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Int(i), t) if is_text(t) => i.to_string().to_sql(&Type::TEXT, out),
            (Value::Real(x), &Type::FLOAT8) => x.to_sql(ty, out),
            (Value::Real(x), &Type::FLOAT4) => (*x as f32).to_sql(ty, out),
            (Value::Real(x), t) if is_text(t) => x.to_string().to_sql(&Type::TEXT, out),
            (Value::Text(s), t) if is_text(t) => s.as_str().to_sql(&Type::TEXT, out),
            (v, t) => Err(format!("cannot bind {v:?} to a parameter of type {t}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn is_text(t: &Type) -> bool {
    matches!(
        *t,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

/// A NUMERIC (what `sum` and `avg` of integers give) as a double.
struct Numeric(f64);

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn StdError + Sync + Send>> {
        // ndigits, weight, sign, dscale, then base-10000 digits (all big-endian i16/u16).
        let word = |i: usize| -> std::result::Result<i16, Box<dyn StdError + Sync + Send>> {
            raw.get(2 * i..2 * i + 2)
                .map(|b| i16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| "a truncated NUMERIC".into())
        };
        let (n, weight, sign) = (word(0)? as usize, word(1)?, word(2)? as u16);
        if sign == 0xC000 {
            return Ok(Numeric(f64::NAN));
        }
        let mut x = 0.0;
        for k in 0..n {
            x += f64::from(word(4 + k)?) * 10_000f64.powi(i32::from(weight) - k as i32);
        }
        Ok(Numeric(if sign == 0x4000 { -x } else { x }))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

fn row_of(r: &tokio_postgres::Row) -> Result<Row> {
    let mut out = Vec::with_capacity(r.len());
    for (i, c) in r.columns().iter().enumerate() {
        let v = match *c.type_() {
            Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Int),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(i)?
                .map(|x| Value::Int(x.into())),
            Type::INT2 => r
                .try_get::<_, Option<i16>>(i)?
                .map(|x| Value::Int(x.into())),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)?
                .map(|x| Value::Int(x.into())),
            Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map(Value::Real),
            Type::FLOAT4 => r
                .try_get::<_, Option<f32>>(i)?
                .map(|x| Value::Real(x.into())),
            Type::NUMERIC => r.try_get::<_, Option<Numeric>>(i)?.map(|x| {
                // Whole numbers stay integers, as SQLite's sums of integers do.
                if x.0.fract() == 0.0 && x.0.abs() < 9.0e15 {
                    Value::Int(x.0 as i64)
                } else {
                    Value::Real(x.0)
                }
            }),
            Type::VOID => None,
            ref t if is_text(t) => r.try_get::<_, Option<String>>(i)?.map(Value::Text),
            ref t => {
                return Err(DbError::Decode {
                    column: i,
                    want: "a column type gridpatrol reads",
                    got: t.to_string(),
                })
            }
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(out))
}

pub(super) fn is_transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(c) => [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::DISK_FULL,
            SqlState::OUT_OF_MEMORY,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::LOCK_NOT_AVAILABLE,
        ]
        .contains(c),
        // No SQLSTATE: the connection itself failed (refused, reset).
        None => e
            .source()
            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some()),
    }
}

/// `url` with its password replaced by `***`.
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or("");
            format!("{scheme}://{name}:***@{host}")
        }
        _ => url.to_string(),
    }
}

impl Postgres {
    pub(super) fn open(url: &str, migrations: &[&str]) -> Result<Self> {
        let mut cfg = tokio_postgres::Config::from_str(url)
            .map_err(|e| DbError::Invalid(format!("{}: not a PostgreSQL URL: {e}", redact(url))))?;
        let options = cfg.get_options().unwrap_or("").to_string();
        if !options.contains("idle_in_transaction_session_timeout") {
            cfg.options(
                format!(
                    "{options} -c idle_in_transaction_session_timeout={}",
                    IDLE_IN_TRANSACTION.as_millis()
                )
                .trim(),
            );
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gridpatrol-postgres")
            .enable_all()
            .build()
            .map_err(|e| DbError::Invalid(format!("a runtime for PostgreSQL: {e}")))?;
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = {
            let _in = rt.enter();
            Pool::builder(mgr)
                .max_size(16)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(Duration::from_secs(30)))
                .create_timeout(Some(Duration::from_secs(10)))
                .build()
                .map_err(|e| DbError::Pool(e.to_string()))?
        };
        let pg = Self { rt: Some(rt), pool };
        pg.migrate(migrations)?;
        Ok(pg)
    }

    /// Runs `f` on the pool's runtime and waits for it on this thread. Waiting on a
    /// channel works on any thread, one of another runtime's too (it blocks it, as a SQLite
    /// call does), and everything `f` touches (connections, timers) is driven by the
    /// runtime that owns it.
    fn run<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let stopped = || DbError::Pool("the PostgreSQL runtime has stopped".into());
        let rt = self.rt.as_ref().ok_or_else(stopped)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv().map_err(|_| stopped())?
    }

    fn client(&self) -> Result<Object> {
        let pool = self.pool.clone();
        self.run(async move { pool.get().await.map_err(|e| DbError::Pool(e.to_string())) })
    }

    fn migrate(&self, migrations: &[&str]) -> Result<()> {
        let client = self.client()?;
        let migrations: Vec<String> = migrations.iter().map(|m| m.to_string()).collect();
        self.run(async move {
            client
                .batch_execute(&format!(
                    "SELECT pg_advisory_lock({MIGRATE_LOCK});
                     CREATE TABLE IF NOT EXISTS gridpatrol_schema (version BIGINT NOT NULL);
                     INSERT INTO gridpatrol_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM gridpatrol_schema);"
                ))
                .await?;
            let result = async {
                let version: i64 = client
                    .query_one("SELECT version FROM gridpatrol_schema", &[])
                    .await?
                    .get(0);
                let all: Vec<&str> = migrations.iter().map(String::as_str).collect();
                for (to, m) in super::pending(version, &all)? {
                    let ddl = dialect::postgres_ddl(m);
                    client
                        .batch_execute(&format!(
                            "BEGIN; {ddl}; UPDATE gridpatrol_schema SET version = {to}; COMMIT;"
                        ))
                        .await
                        .map_err(|e| DbError::Invalid(format!("PostgreSQL migration {to}: {e}")))?;
                }
                Ok(())
            }
            .await;
            if result.is_err() {
                let _ = client.batch_execute("ROLLBACK").await;
            }
            client
                .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATE_LOCK})"))
                .await?;
            result
        })
    }

    pub(super) fn transaction<T, E: From<DbError>>(
        &self,
        write: bool,
        f: impl FnOnce(&Tx) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let client = self.client()?;
        let begin = if write {
            format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")
        } else {
            "BEGIN".to_string()
        };
        let client = self.run(async move {
            client.batch_execute(&begin).await?;
            Ok(client)
        })?;
        let tx = PgTx {
            pg: self,
            client: std::sync::Mutex::new(Some(client)),
        };
        match f(&Tx {
            inner: TxInner::Postgres(&tx),
        }) {
            Ok(v) => {
                tx.finish("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                // The caller's error says more than a failed rollback would.
                let _ = tx.finish("ROLLBACK");
                Err(e)
            }
        }
    }
}

/// A transaction on a pooled connection. Dropped unfinished (a panic in the caller's
/// closure), its connection is closed rather than returned, which rolls it back.
pub(super) struct PgTx<'a> {
    pg: &'a Postgres,
    /// Lent to the runtime for each statement.
    client: std::sync::Mutex<Option<Object>>,
}

impl PgTx<'_> {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Object>> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `op` with the connection on the pool's runtime, then takes it back.
    fn with<T: Send + 'static, F>(&self, op: impl FnOnce(Object) -> F) -> Result<T>
    where
        F: Future<Output = (Object, Result<T>)> + Send + 'static,
    {
        let c = self
            .slot()
            .take()
            .ok_or_else(|| DbError::Invalid("the transaction has ended".into()))?;
        let fut = op(c);
        let (c, out) = self.pg.run(async move { Ok(fut.await) })?;
        *self.slot() = Some(c);
        out
    }

    fn finish(self, how: &'static str) -> Result<()> {
        // A connection that failed mid-transaction is not put back in the pool (Drop).
        self.with(|c| async move {
            let r = c.batch_execute(how).await.map_err(DbError::from);
            (c, r)
        })?;
        if let Some(c) = self.slot().take() {
            drop(c); // back to the pool
        }
        Ok(())
    }

    pub(super) fn execute(&self, sql: &str, args: &[Value]) -> Result<u64> {
        let (sql, args) = (dialect::postgres_sql(sql), args.to_vec());
        self.with(|c| async move {
            let r = async {
                let st = c.prepare_cached(&sql).await?;
                let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as _).collect();
                Ok(c.execute(&st, &params).await?)
            }
            .await;
            (c, r)
        })
    }

    pub(super) fn query(&self, sql: &str, args: &[Value]) -> Result<Vec<Row>> {
        let (sql, args) = (dialect::postgres_sql(sql), args.to_vec());
        self.with(|c| async move {
            let r = async {
                let st = c.prepare_cached(&sql).await?;
                let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as _).collect();
                c.query(&st, &params).await?.iter().map(row_of).collect()
            }
            .await;
            (c, r)
        })
    }
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.slot().take() {
            drop(Object::take(c));
        }
    }
}
