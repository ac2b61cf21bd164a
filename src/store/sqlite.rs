//! The SQLite engine: one connection in WAL mode behind a mutex, migrations counted by
//! `PRAGMA user_version`.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::functions::FunctionFlags;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use super::{DbError, Result, Row, Tx, TxInner, Value};

pub(super) struct Sqlite {
    conn: Mutex<Connection>,
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Real(x) => ToSqlOutput::Borrowed(ValueRef::Real(*x)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

/// PostgreSQL's `greatest` and `least`, which SQLite lacks: NULLs are ignored, as there.
fn add_greatest_least(conn: &Connection) -> rusqlite::Result<()> {
    for (name, want) in [
        ("greatest", std::cmp::Ordering::Greater),
        ("least", std::cmp::Ordering::Less),
    ] {
        conn.create_scalar_function(
            name,
            -1,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            move |ctx| {
                let mut best: Option<rusqlite::types::Value> = None;
                for i in 0..ctx.len() {
                    let v: rusqlite::types::Value = ctx.get(i)?;
                    let better = match (&best, &v) {
                        (_, rusqlite::types::Value::Null) => false,
                        (None, _) => true,
                        (Some(b), v) => compare(v, b) == Some(want),
                    };
                    if better {
                        best = Some(v);
                    }
                }
                Ok(best.unwrap_or(rusqlite::types::Value::Null))
            },
        )?;
    }
    Ok(())
}

fn compare(a: &rusqlite::types::Value, b: &rusqlite::types::Value) -> Option<std::cmp::Ordering> {
    use rusqlite::types::Value as V;
    let num = |v: &V| match v {
        V::Integer(i) => Some(*i as f64),
        V::Real(x) => Some(*x),
        _ => None,
    };
    match (a, b) {
        (V::Integer(x), V::Integer(y)) => Some(x.cmp(y)),
        (V::Text(x), V::Text(y)) => Some(x.cmp(y)),
        _ => num(a)?.partial_cmp(&num(b)?),
    }
}

impl Sqlite {
    pub(super) fn open(path: &Path, migrations: &[&str]) -> Result<Self> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| DbError::Invalid(format!("{}: {e}", dir.display())))?;
            }
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a committed event survives power loss, not only a process crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(128);
        add_greatest_least(&conn)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (to, m) in super::pending(version, migrations)? {
            let tx = conn.transaction()?;
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", to)?;
            tx.commit()?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub(super) fn transaction<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Tx) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        // A panic while holding the lock leaves SQLite consistent (the transaction rolls
        // back), so the poisoned guard is still good.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(DbError::from)?;
        let out = f(&Tx {
            inner: TxInner::Sqlite(&tx),
        })?;
        tx.commit().map_err(DbError::from)?;
        Ok(out)
    }
}

pub(super) fn execute(tx: &rusqlite::Transaction, sql: &str, args: &[Value]) -> Result<u64> {
    let mut st = tx.prepare_cached(sql)?;
    Ok(st.execute(rusqlite::params_from_iter(args))? as u64)
}

pub(super) fn query(tx: &rusqlite::Transaction, sql: &str, args: &[Value]) -> Result<Vec<Row>> {
    let mut st = tx.prepare_cached(sql)?;
    let n = st.column_count();
    let mut rows = st.query(rusqlite::params_from_iter(args))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(n);
        for i in 0..n {
            row.push(match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Int(i),
                ValueRef::Real(x) => Value::Real(x),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Text(String::from_utf8_lossy(b).into_owned()),
            });
        }
        out.push(Row(row));
    }
    Ok(out)
}
