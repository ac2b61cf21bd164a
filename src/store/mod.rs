//! Storage: one SQL interface over two engines. SQLite is the embedded default for one
//! machine; PostgreSQL is the shared store when several controllers run (`--db
//! postgres://…`). Callers write SQL once, in the portable subset both engines take
//! (`?N` parameters, `ON CONFLICT`, `RETURNING`, `greatest`/`least`), and get owned rows
//! back; [`dialect`] rewrites it for PostgreSQL.
//!
//! Every [`Db::transaction`] writes alone: SQLite has one writer by design, and on
//! PostgreSQL each transaction first takes one advisory lock, so the merge of sightings,
//! the run queue and the leases see what the transaction before them committed, whichever
//! controller ran it. Reads ([`Db::read`]) take no lock.

pub mod dialect;
mod postgres;
pub use postgres::IDLE_IN_TRANSACTION;
mod sqlite;

use std::fmt;
use std::path::{Path, PathBuf};

/// A value bound to a parameter or read from a column. Integers are 64-bit and reals are
/// doubles in both engines (PostgreSQL's columns are BIGINT and DOUBLE PRECISION).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// What can be bound to a parameter.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_to_value!(i8, i16, i32, i64, u8, u16, u32, usize, bool);

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl ToValue for f32 {
    fn to_value(&self) -> Value {
        Value::Real(f64::from(*self))
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

/// The parameters of a statement: `args![a, b, c]` binds `?1`, `?2`, `?3` (borrowed,
/// not moved).
#[macro_export]
macro_rules! args {
    ($($v:expr),* $(,)?) => {
        &[$($crate::store::ToValue::to_value(&$v)),*][..]
    };
}

/// A column value as a Rust type.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
    /// What the column should have held, for the error.
    const WANT: &'static str;
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &Value) -> Option<Self> {
                match v {
                    Value::Int(i) => <$t>::try_from(*i).ok(),
                    _ => None,
                }
            }
            const WANT: &'static str = stringify!($t);
        }
    )*};
}
int_from_value!(i8, i16, i32, i64, u8, u16, u32, usize);

impl FromValue for bool {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
    const WANT: &'static str = "bool";
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Real(x) => Some(*x),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
    const WANT: &'static str = "f64";
}

impl FromValue for f32 {
    fn from_value(v: &Value) -> Option<Self> {
        f64::from_value(v).map(|x| x as f32)
    }
    const WANT: &'static str = "f32";
}

impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
    const WANT: &'static str = "text";
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
    const WANT: &'static str = T::WANT;
}

/// One row of a result, owned.
#[derive(Clone, Debug, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// Column `i` as a `T`; an error naming the column when it is missing or of another
    /// type (NULL is only an `Option`).
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T> {
        let v = self.0.get(i).ok_or(DbError::Decode {
            column: i,
            want: T::WANT,
            got: "no such column".into(),
        })?;
        T::from_value(v).ok_or_else(|| DbError::Decode {
            column: i,
            want: T::WANT,
            got: format!("{v:?}"),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL pool: {0}")]
    Pool(String),
    #[error("column {column}: expected {want}, found {got}")]
    Decode {
        column: usize,
        want: &'static str,
        got: String,
    },
    #[error("no row")]
    NoRow,
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the database was written by a newer gridpatrol (schema {found}, this one knows {known})"
    )]
    TooNew { found: i64, known: i64 },
}

impl DbError {
    /// The same write may succeed later: SQLite's database is held by another connection
    /// (SQLITE_BUSY or SQLITE_LOCKED past the busy timeout) or its disk is full
    /// (SQLITE_FULL); PostgreSQL is unreachable, restarting, out of disk, or chose this
    /// transaction as a deadlock's or serialization conflict's victim.
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::DiskFull
            ),
            DbError::Postgres(e) => postgres::is_transient(e),
            DbError::Pool(_) => true,
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, DbError>;

/// The migrations still to apply to a database at schema `version`, with the version
/// each brings it to; an error when the database is newer than this program.
fn pending<'a>(version: i64, migrations: &'a [&'a str]) -> Result<Vec<(i64, &'a str)>> {
    let known = migrations.len() as i64;
    if version > known {
        return Err(DbError::TooNew {
            found: version,
            known,
        });
    }
    Ok((version.max(0)..known)
        .map(|i| (i + 1, migrations[i as usize]))
        .collect())
}

/// This machine's name, the default name of a controller in leases and claims: a
/// controller restarted on the same machine takes back what it held at once.
pub fn default_holder() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gridpatrol".into())
}

/// Where the database is: `sqlite:PATH` (or a bare path) or `postgres://…`.
#[derive(Clone, PartialEq, Eq)]
pub enum DbSpec {
    Sqlite(PathBuf),
    /// A libpq-style connection URL.
    Postgres(String),
}

impl DbSpec {
    /// The SQLite database in a data directory (the default).
    pub fn in_dir(data: &Path) -> Self {
        DbSpec::Sqlite(data.join("gridpatrol.db"))
    }
}

impl std::str::FromStr for DbSpec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(DbSpec::Postgres(s.to_string()));
        }
        let path = s.strip_prefix("sqlite:").unwrap_or(s);
        if path.is_empty() {
            return Err(format!(
                "{s:?}: give sqlite:PATH or postgres://USER@HOST:PORT/DATABASE"
            ));
        }
        if let Some((scheme, _)) = path.split_once("://") {
            return Err(format!(
                "{s:?}: unknown database scheme {scheme:?} (sqlite:PATH or postgres://…)"
            ));
        }
        Ok(DbSpec::Sqlite(PathBuf::from(path)))
    }
}

impl fmt::Display for DbSpec {
    /// Without the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbSpec::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            DbSpec::Postgres(url) => f.write_str(&postgres::redact(url)),
        }
    }
}

impl fmt::Debug for DbSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Which engine a [`Db`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// An open database with its schema migrated.
pub struct Db {
    inner: Inner,
}

enum Inner {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

impl Db {
    /// Opens the database, creating it (SQLite) and applying `migrations` (SQLite SQL, in
    /// order; each runs once, in its own transaction).
    pub fn open(spec: &DbSpec, migrations: &[&str]) -> Result<Self> {
        let inner = match spec {
            DbSpec::Sqlite(path) => Inner::Sqlite(sqlite::Sqlite::open(path, migrations)?),
            DbSpec::Postgres(url) => Inner::Postgres(postgres::Postgres::open(url, migrations)?),
        };
        Ok(Self { inner })
    }

    pub fn engine(&self) -> Engine {
        match self.inner {
            Inner::Sqlite(_) => Engine::Sqlite,
            Inner::Postgres(_) => Engine::Postgres,
        }
    }

    /// Runs `f` in one writing transaction: committed when it returns Ok, rolled back
    /// otherwise. Writing transactions run one at a time, across controllers.
    pub fn transaction<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Tx) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        match &self.inner {
            Inner::Sqlite(s) => s.transaction(f),
            Inner::Postgres(p) => p.transaction(true, f),
        }
    }

    /// Runs `f` in a transaction that only reads (PostgreSQL takes no lock for it).
    pub fn read<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Tx) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        match &self.inner {
            Inner::Sqlite(s) => s.transaction(f),
            Inner::Postgres(p) => p.transaction(false, f),
        }
    }
}

/// A transaction on either engine.
pub struct Tx<'a> {
    inner: TxInner<'a>,
}

enum TxInner<'a> {
    Sqlite(&'a rusqlite::Transaction<'a>),
    Postgres(&'a postgres::PgTx<'a>),
}

impl Tx<'_> {
    pub fn engine(&self) -> Engine {
        match self.inner {
            TxInner::Sqlite(_) => Engine::Sqlite,
            TxInner::Postgres(_) => Engine::Postgres,
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, args: &[Value]) -> Result<u64> {
        match &self.inner {
            TxInner::Sqlite(t) => sqlite::execute(t, sql, args),
            TxInner::Postgres(t) => t.execute(sql, args),
        }
    }

    /// Every row of a query.
    pub fn query(&self, sql: &str, args: &[Value]) -> Result<Vec<Row>> {
        match &self.inner {
            TxInner::Sqlite(t) => sqlite::query(t, sql, args),
            TxInner::Postgres(t) => t.query(sql, args),
        }
    }

    /// Every row of a query, each mapped by `f`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        args: &[Value],
        f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.query(sql, args)?.iter().map(f).collect()
    }

    /// The first row of a query, mapped by `f`; None when there is none.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        args: &[Value],
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        self.query(sql, args)?.first().map(f).transpose()
    }

    /// The first row of a query, mapped by `f`; [`DbError::NoRow`] when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        args: &[Value],
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        self.query_opt(sql, args, f)?.ok_or(DbError::NoRow)
    }

    /// The first column of the first row.
    pub fn query_value<T: FromValue>(&self, sql: &str, args: &[Value]) -> Result<T> {
        self.query_row(sql, args, |r| r.get(0))
    }
}
