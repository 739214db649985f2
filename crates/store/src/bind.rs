//! Helpers that let one query text serve both backends.
//!
//! Queries use `$N` placeholders, which both sqlx drivers accept. campaignd's own tables keep unix
//! seconds on both backends; only the shop's input tables differ (TIMESTAMPTZ/BOOLEAN on Postgres), and
//! rule-compiled parameters are bound per backend here.

use campaignd_core::rules::SqlParam;
use futures::future::BoxFuture;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Postgres, Sqlite};

/// Runs `$body` with `$pool` bound to whichever concrete pool the store holds; the body is compiled
/// once per backend, so it must only use APIs both drivers share.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.pool() {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Binds a compiled rule's parameters in order, in the form each backend stores them.
pub(crate) trait BindParams<'q>: Sized {
    /// Appends `params` to the query's arguments.
    fn bind_params(self, params: &'q [SqlParam]) -> Self;
}

impl<'q> BindParams<'q> for Query<'q, Sqlite, SqliteArguments<'q>> {
    /// SQLite keeps timestamps as unix seconds.
    fn bind_params(mut self, params: &'q [SqlParam]) -> Self {
        for p in params {
            self = match p {
                SqlParam::Int(v) => self.bind(*v),
                SqlParam::Float(v) => self.bind(*v),
                SqlParam::Text(v) => self.bind(v.as_str()),
                SqlParam::Bool(v) => self.bind(*v),
                SqlParam::Timestamp(v) => self.bind(v.timestamp()),
            };
        }
        self
    }
}

impl<'q> BindParams<'q> for Query<'q, Postgres, PgArguments> {
    /// Postgres input tables use `timestamptz`.
    fn bind_params(mut self, params: &'q [SqlParam]) -> Self {
        for p in params {
            self = match p {
                SqlParam::Int(v) => self.bind(*v),
                SqlParam::Float(v) => self.bind(*v),
                SqlParam::Text(v) => self.bind(v.as_str()),
                SqlParam::Bool(v) => self.bind(*v),
                SqlParam::Timestamp(v) => self.bind(*v),
            };
        }
        self
    }
}

/// The statement that opens a SQLite write transaction. A deferred `BEGIN` starts as a reader and
/// upgrades at its first write; if another process committed in between, SQLite answers
/// `SQLITE_BUSY_SNAPSHOT` at once, without waiting for the busy timeout (the snapshot cannot be
/// upgraded, so waiting would not help). `BEGIN IMMEDIATE` takes the write lock up front, where the
/// busy timeout applies: two processes on one file then take turns instead of failing.
pub(crate) const SQLITE_BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// Opens a transaction that will write, the way each backend needs it (see [`SQLITE_BEGIN_WRITE`]).
/// The futures are boxed as `Send` so that jobs using them can run on spawned tasks.
pub(crate) trait BeginWrite {
    /// The backend.
    type Db: sqlx::Database;
    /// Starts the write transaction on a connection of the pool.
    fn begin_write(&self) -> BoxFuture<'_, Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>>;
}

impl BeginWrite for sqlx::SqlitePool {
    type Db = Sqlite;
    /// `BEGIN IMMEDIATE`: the write lock is taken (or waited for) before anything is read.
    fn begin_write(&self) -> BoxFuture<'_, Result<sqlx::Transaction<'static, Sqlite>, sqlx::Error>> {
        Box::pin(self.begin_with(SQLITE_BEGIN_WRITE))
    }
}

impl BeginWrite for sqlx::PgPool {
    type Db = Postgres;
    /// Postgres locks rows, not the database: a plain `BEGIN`.
    fn begin_write(&self) -> BoxFuture<'_, Result<sqlx::Transaction<'static, Postgres>, sqlx::Error>> {
        Box::pin(self.begin())
    }
}

/// [`BeginWrite`] on a connection already taken from the pool (one that holds temporary tables).
pub(crate) trait BeginWriteOn {
    /// The backend.
    type Db: sqlx::Database;
    /// Starts the write transaction on this connection.
    fn begin_with_write(&mut self) -> BoxFuture<'_, Result<sqlx::Transaction<'_, Self::Db>, sqlx::Error>>;
}

impl BeginWriteOn for sqlx::pool::PoolConnection<Sqlite> {
    type Db = Sqlite;
    /// `BEGIN IMMEDIATE`, as [`BeginWrite`] for the pool.
    fn begin_with_write(&mut self) -> BoxFuture<'_, Result<sqlx::Transaction<'_, Sqlite>, sqlx::Error>> {
        sqlx::Connection::begin_with(&mut **self, SQLITE_BEGIN_WRITE)
    }
}

impl BeginWriteOn for sqlx::pool::PoolConnection<Postgres> {
    type Db = Postgres;
    /// A plain `BEGIN`.
    fn begin_with_write(&mut self) -> BoxFuture<'_, Result<sqlx::Transaction<'_, Postgres>, sqlx::Error>> {
        sqlx::Connection::begin(&mut **self)
    }
}
