//! campaignd-store: the one place campaignd talks to its database.
//!
//! A shop runs campaignd either on an embedded SQLite file (a laptop, a small shop) or on the Postgres it
//! already has; both carry the same tables (DESIGN §4) and every query here is written for both. The
//! store owns migrations, import, segment materialisation and the run log; the rule compiler in
//! `campaignd-core` supplies the SQL that decides who is in a segment.

mod bind;
pub mod creatives;
mod error;
pub mod experiments;
pub mod fatigue;
pub mod history;
pub mod import;
pub mod kpis;
pub mod lease;
pub mod ledger;
pub mod load;
pub mod metrics;
pub mod runs;
pub mod segments;
pub mod testkit;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use campaignd_core::rules::Dialect;
pub use error::StoreError;

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

/// A handle on campaignd's database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Opens the store named by `url` (`sqlite://path`, `sqlite::memory:`, `postgres://...`), creating a
    /// SQLite file on first use so a new user needs no server at all.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
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
            Ok(Store {
                pool: Pool::Sqlite(pool),
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::BadUrl(redact_url(url), e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await
                .map_err(|e| StoreError::Connect(redact_url(url), e.to_string()))?;
            Ok(Store {
                pool: Pool::Postgres(pool),
            })
        } else {
            Err(StoreError::BadUrl(
                redact_url(url),
                "expected a sqlite:// or postgres:// URL".into(),
            ))
        }
    }

    /// Applies the backend's migrations; safe to run on every start.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await?,
            Pool::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await?,
        }
        Ok(())
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

    /// Closes every connection, flushing SQLite's WAL.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
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
