//! Helpers that let one query text serve both backends.
//!
//! Queries use `$N` placeholders, which both sqlx drivers accept. campaignd's own tables keep unix
//! seconds on both backends; only the shop's input tables differ (TIMESTAMPTZ/BOOLEAN on Postgres), and
//! rule-compiled parameters are bound per backend here.

use campaignd_core::rules::SqlParam;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Postgres, Sqlite};

/// Runs `$body` with `$pool` bound to whichever concrete pool the store holds; the body is compiled
/// once per backend, so it must only use APIs both drivers share. On Postgres the body runs within the
/// store's operation timeout ([`crate::Store::bounded`]), so no store call can hang on a silent database.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.pool() {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => {
                $store
                    .bounded(async { Ok::<_, $crate::StoreError>($body) })
                    .await?
            }
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

impl crate::Store {
    /// The statement that opens a transaction that will write on this store: [`SQLITE_BEGIN_WRITE`]
    /// on SQLite, a plain `BEGIN` on Postgres (which locks rows, not the database).
    pub(crate) fn begin_write_sql(&self) -> &'static str {
        match self.pool() {
            crate::Pool::Sqlite(_) => SQLITE_BEGIN_WRITE,
            crate::Pool::Postgres(_) => "BEGIN",
        }
    }
}
