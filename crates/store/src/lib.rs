//! campaignd-store: the one place campaignd talks to its database.
//!
//! A shop runs campaignd either on an embedded SQLite file (a laptop, a small shop) or on the Postgres it
//! already has; both carry the same tables (DESIGN §4) and every query here is written for both. The
//! store owns migrations, import, segment materialisation and the run log; the rule compiler in
//! `campaignd-core` supplies the SQL that decides who is in a segment.

pub mod audience_sizes;
mod bind;
pub mod creatives;
mod error;
pub mod experiments;
pub mod fatigue;
pub mod history;
pub mod holder;
pub mod import;
pub mod kpis;
pub mod lease;
pub mod ledger;
pub mod load;
pub mod metrics;
pub mod remote_jobs;
pub mod runs;
pub mod segments;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use campaignd_core::rules::Dialect;
pub use error::StoreError;

use crate::runs::RunTracker;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The connection pool of whichever backend `[store] url` names.
#[derive(Clone, Debug)]
pub enum Pool {
    /// Embedded SQLite file (WAL mode), the default.
    Sqlite(SqlitePool),
    /// A Postgres database shared with the shop's other systems or with other campaignd replicas.
    Postgres(PgPool),
}

/// How long the store waits for its database, and how it keeps the run log honest (`[store]` keys).
///
/// A database that stops answering — a network partition, a failover, a proxy that keeps the socket open
/// but forwards nothing — must fail the job clearly instead of holding it forever, so on Postgres every
/// store operation is bounded three ways: the server cancels any statement after `statement_timeout` (and
/// ends a session idle inside a transaction after `idle_in_transaction_timeout`, releasing its row locks
/// for the next run), the server probes a silent client with TCP keepalives and drops it, and campaignd
/// gives up on any one operation (a query or a transaction, including waiting for a connection) after
/// `operation_timeout`, client side: that is the bound that holds even when the server's answer never
/// arrives. sqlx 0.8 offers no client-side keepalive option, which is why the client bound is a timer.
/// SQLite has no network and keeps only its `busy_timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Postgres `statement_timeout`: the server cancels a statement running longer.
    pub statement_timeout: Duration,
    /// Postgres `idle_in_transaction_session_timeout`: the server ends a session that sits inside an
    /// open transaction this long (a partitioned client's locks are released).
    pub idle_in_transaction_timeout: Duration,
    /// Client side: the most any one store operation may take before it fails with
    /// [`StoreError::Timeout`].
    pub operation_timeout: Duration,
    /// Waiting for a pooled connection, including opening a new one.
    pub acquire_timeout: Duration,
    /// Postgres `tcp_keepalives_idle`: seconds of silence before the server probes the client (then
    /// every `keepalive / 3`, giving up after 3 unanswered probes).
    pub keepalive: Duration,
    /// How often a process refreshes the heartbeat of the runs it is executing.
    pub heartbeat: Duration,
    /// A run still `running` whose heartbeat is older than this is `abandoned` by the next start.
    pub abandon_after: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            statement_timeout: Duration::from_secs(300),
            idle_in_transaction_timeout: Duration::from_secs(60),
            operation_timeout: Duration::from_secs(600),
            acquire_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(60),
            heartbeat: Duration::from_secs(15),
            abandon_after: Duration::from_secs(120),
        }
    }
}

/// A handle on campaignd's database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    options: Arc<StoreOptions>,
    runs: Arc<RunTracker>,
}

impl Store {
    /// Opens the store named by `url` (`sqlite://path`, `sqlite::memory:`, `postgres://...`) with the
    /// default [`StoreOptions`], creating a SQLite file on first use so a new user needs no server at all.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, &StoreOptions::default()).await
    }

    /// Opens the store named by `url` with explicit timeouts (the `[store]` section).
    pub async fn connect_with(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::BadUrl(redact_url(url), e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(opts)
                .await
                .map_err(|e| StoreError::Connect(redact_url(url), e.to_string()))?;
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::BadUrl(redact_url(url), e.to_string()))?
                .options(pg_session_settings(options));
            let connect = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(opts);
            // The pool's first connection is made here, outside `acquire`: bound it too.
            let pool = tokio::time::timeout(options.acquire_timeout, connect)
                .await
                .map_err(|_| {
                    StoreError::Connect(
                        redact_url(url),
                        format!(
                            "no answer within {} s ([store] acquire_timeout_secs)",
                            options.acquire_timeout.as_secs()
                        ),
                    )
                })?
                .map_err(|e| StoreError::Connect(redact_url(url), e.to_string()))?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::BadUrl(
                redact_url(url),
                "expected a sqlite:// or postgres:// URL".into(),
            ));
        };
        Ok(Store {
            pool,
            options: Arc::new(options.clone()),
            runs: Arc::new(RunTracker::default()),
        })
    }

    /// The timeouts this store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// Runs one store operation within [`StoreOptions::operation_timeout`] on Postgres, so a database
    /// that stops answering fails the operation instead of hanging it; SQLite operations run as they are.
    pub(crate) async fn bounded<T>(
        &self,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match self.pool {
            Pool::Sqlite(_) => op.await,
            Pool::Postgres(_) => {
                let limit = self.options.operation_timeout;
                tokio::time::timeout(limit, op)
                    .await
                    .map_err(|_| StoreError::Timeout(limit.as_secs()))?
            }
        }
    }

    /// Applies the backend's migrations; safe to run on every start.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.bounded(async {
            match &self.pool {
                Pool::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await?,
                Pool::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await?,
            }
            Ok(())
        })
        .await
    }

    /// The SQL dialect the rule compiler must emit for this store.
    pub fn dialect(&self) -> Dialect {
        match self.pool {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The underlying pool, for the rare caller (benchmarks, tests) that must run SQL of its own.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Folds SQLite's write-ahead log back into the database file after a bulk write, so the next reads
    /// don't wade through a large WAL and no later commit pays for the whole checkpoint. No-op on Postgres.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if let Pool::Sqlite(p) = &self.pool {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(p)
                .await?;
        }
        Ok(())
    }

    /// True once [`Store::close`] was called.
    pub fn is_closed(&self) -> bool {
        match &self.pool {
            Pool::Sqlite(p) => p.is_closed(),
            Pool::Postgres(p) => p.is_closed(),
        }
    }

    /// Closes every connection, flushing SQLite's WAL. On Postgres the wait is bounded by the acquire
    /// timeout: a connection stuck on a silent database is abandoned rather than waited for.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => {
                if tokio::time::timeout(self.options.acquire_timeout, p.close())
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        "the database did not answer while closing; connections dropped"
                    );
                }
            }
        }
    }
}

/// The server settings every Postgres session starts with (sent in the startup packet's `options`).
fn pg_session_settings(o: &StoreOptions) -> Vec<(&'static str, String)> {
    let ms = |d: Duration| d.as_millis().to_string();
    let keepalive = o.keepalive.as_secs().max(1);
    vec![
        ("statement_timeout", ms(o.statement_timeout)),
        (
            "idle_in_transaction_session_timeout",
            ms(o.idle_in_transaction_timeout),
        ),
        ("tcp_keepalives_idle", keepalive.to_string()),
        (
            "tcp_keepalives_interval",
            (keepalive / 3).max(1).to_string(),
        ),
        ("tcp_keepalives_count", "3".to_string()),
    ]
}

/// Hides the password of a database URL so it can appear in an error message.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_only() {
        let cases = [
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("sqlite://campaignd.db", "sqlite://campaignd.db"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want);
        }
    }
}
