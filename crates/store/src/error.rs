//! The store's error type: every failure names what it was doing, never a secret.

use thiserror::Error;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The `[store] url` could not be understood.
    #[error("store url {0} is not valid: {1}")]
    BadUrl(String, String),
    /// The database did not accept a connection.
    #[error("cannot connect to store {0}: {1}")]
    Connect(String, String),
    /// A migration failed to apply.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database did not answer one operation in time (`[store] operation_timeout_secs`): it is
    /// unreachable or partitioned; the job fails and its next run starts over from the ledger.
    #[error("the database did not answer within {0} s ([store] operation_timeout_secs): it is unreachable or partitioned")]
    Timeout(u64),
    /// No connection could be had within `[store] acquire_timeout_secs`.
    #[error("no database connection within [store] acquire_timeout_secs: it is unreachable or partitioned, or every connection is stuck")]
    Unavailable,
    /// A query failed.
    #[error("database error: {0}")]
    Db(sqlx::Error),
    /// A segment definition could not be evaluated.
    #[error("segment {segment}: {message}")]
    Segment {
        /// The segment's name.
        segment: String,
        /// What went wrong.
        message: String,
    },
    /// A stored value is not one campaignd writes (the row is named; nothing is guessed).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A value handed to a bulk load that the store cannot hold (a NUL character in text, a number that
    /// is not finite); the column is named so the caller can find the row.
    #[error("cannot store value: {0}")]
    Unwritable(String),
    /// A bulk write on SQLite's own handle (see [`crate::load`]) failed; the table is named.
    #[error("database error writing {table}: {source}")]
    SqliteWrite {
        /// The table being written.
        table: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A read on SQLite's own handle (the sync diff's scans, see [`crate::ledger`]) failed.
    #[error("database error reading {what}: {source}")]
    SqliteRead {
        /// What was being read.
        what: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A file could not be read.
    #[error("{0}")]
    Io(String),
}

impl From<sqlx::Error> for StoreError {
    /// A pool timeout says the database is out of reach, not that a query was wrong: name it so.
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut => StoreError::Unavailable,
            other => StoreError::Db(other),
        }
    }
}
