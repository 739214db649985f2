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

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Connection};

    use super::SQLITE_BEGIN_WRITE;
    use crate::Pool;

    /// Issue 12 item 11, without timing: a write transaction that has read takes no `SQLITE_BUSY_SNAPSHOT`
    /// when another connection writes in between. The other connection waits for no lock (busy timeout
    /// 0), so the interleaving is fixed, not left to the scheduler: with `BEGIN IMMEDIATE` its write is
    /// refused while ours is open and ours then writes and commits; with a deferred `BEGIN` its write
    /// would commit and ours would fail at once with `SQLITE_BUSY_SNAPSHOT` (extended code 517), which
    /// no busy timeout can wait out. Both openers are checked: [`crate::Store::begin_write_sql`] and
    /// [`SQLITE_BEGIN_WRITE`] (used directly by the segment and load paths).
    #[tokio::test]
    async fn a_write_transaction_survives_a_commit_by_another_connection() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::testkit::fresh_sqlite_store(dir.path())
            .await
            .unwrap();
        let Pool::Sqlite(pool) = store.pool() else {
            unreachable!("a SQLite store")
        };
        sqlx::query("CREATE TABLE busy_probe (who TEXT NOT NULL)")
            .execute(pool)
            .await
            .unwrap();
        let url = format!("sqlite://{}", dir.path().join("campaignd.db").display());
        let mut other = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .busy_timeout(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap();
        for opener in [store.begin_write_sql(), SQLITE_BEGIN_WRITE] {
            let mut tx = pool.begin_with(opener).await.unwrap();
            let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM busy_probe")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            let theirs = sqlx::query("INSERT INTO busy_probe (who) VALUES ('other')")
                .execute(&mut other)
                .await;
            let ours = sqlx::query("INSERT INTO busy_probe (who) VALUES ('store')")
                .execute(&mut *tx)
                .await;
            assert!(
                ours.is_ok(),
                "{opener}: our write after a read failed ({:?}); the other connection's write was {:?}",
                ours.err(),
                theirs.map(|r| r.rows_affected())
            );
            assert!(
                theirs.is_err(),
                "{opener}: another connection wrote inside our write transaction"
            );
            tx.commit().await.unwrap();
            let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM busy_probe")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(after, before + 1, "{opener}");
        }
        other.close().await.unwrap();
        store.close().await;
    }
}
