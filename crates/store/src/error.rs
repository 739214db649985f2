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
    /// A query failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
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
    /// A file could not be read.
    #[error("{0}")]
    Io(String),
}
