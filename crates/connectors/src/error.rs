//! Error types of the connectors: one for configuration (named after the destination and the key, so a
//! user can fix their file) and one for runtime calls (classified so the engine knows whether to retry the
//! batch later or report a hard failure). No variant ever carries a secret value: messages are redacted
//! by the HTTP kit before they get here.

use std::time::Duration;

/// A `[destinations.NAME]` section that cannot be turned into a destination.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The section has no `kind`, so we cannot know which platform it is for.
    #[error("destination `{destination}`: missing key `kind` (one of: {known})")]
    MissingKind {
        /// Destination name from the config.
        destination: String,
        /// Comma-separated supported kinds.
        known: String,
    },
    /// `kind` names a platform this build has no connector for.
    #[error("destination `{destination}`: unknown kind `{kind}` (supported: {known})")]
    UnknownKind {
        /// Destination name from the config.
        destination: String,
        /// The kind given.
        kind: String,
        /// Comma-separated supported kinds.
        known: String,
    },
    /// A key is missing, unknown or has a bad value.
    #[error("destination `{destination}`: key `{key}`: {message}")]
    Invalid {
        /// Destination name from the config.
        destination: String,
        /// Dotted path of the offending key (`.` for the section itself, e.g. an unknown field).
        key: String,
        /// What is wrong (never contains a secret value).
        message: String,
    },
    /// A secret reference could not be resolved.
    #[error("destination `{destination}`: secret `{key}`: {message}")]
    Secret {
        /// Destination name from the config.
        destination: String,
        /// The key holding the secret reference.
        key: String,
        /// Why it could not be read (env var unset, file unreadable, empty). Never the value.
        message: String,
    },
}

/// A failed platform call. `is_transient` tells the engine whether retrying the same batch later makes
/// sense (the kit has already retried within its budget).
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The platform refused our credentials (after one refresh attempt where the platform has refresh).
    #[error("{destination}: {operation}: credentials rejected: {message}")]
    Auth {
        /// Destination name.
        destination: String,
        /// What we were doing.
        operation: String,
        /// Platform's reason, redacted.
        message: String,
    },
    /// The platform answered with an error that retrying will not fix (or 5xx past the retry budget).
    #[error("{destination}: {operation}: HTTP {status}{}: {message}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
    Api {
        /// Destination name.
        destination: String,
        /// What we were doing.
        operation: String,
        /// HTTP status.
        status: u16,
        /// Platform error code, when the body carries one.
        code: Option<i64>,
        /// Platform's reason or the body, redacted and truncated.
        message: String,
    },
    /// Still throttled when the retry budget ran out, or the platform asked us to wait longer than we may.
    #[error("{destination}: {operation}: throttled after {attempts} attempt(s){}: {message}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    Throttled {
        /// Destination name.
        destination: String,
        /// What we were doing.
        operation: String,
        /// Attempts made.
        attempts: u32,
        /// The wait the platform asked for, when known.
        retry_after: Option<Duration>,
        /// Platform's reason, redacted.
        message: String,
    },
    /// Connection failure or timeout past the retry budget.
    #[error("{destination}: {operation}: transport error after {attempts} attempt(s): {message}")]
    Transport {
        /// Destination name.
        destination: String,
        /// What we were doing.
        operation: String,
        /// Attempts made.
        attempts: u32,
        /// Redacted description (URL stripped).
        message: String,
    },
    /// A 2xx whose body is not what the platform documents.
    #[error("{destination}: {operation}: unexpected response: {message}")]
    InvalidResponse {
        /// Destination name.
        destination: String,
        /// What we were doing.
        operation: String,
        /// What did not parse.
        message: String,
    },
    /// The operation does not exist on this platform (e.g. replace-all).
    #[error("{destination}: {operation} is not supported by this platform")]
    Unsupported {
        /// Destination name.
        destination: String,
        /// Operation name.
        operation: &'static str,
    },
    /// Caller misuse, e.g. an empty name or a malformed session.
    #[error("{destination}: {message}")]
    Invalid {
        /// Destination name.
        destination: String,
        /// What is wrong.
        message: String,
    },
    /// Local I/O failure (file destination).
    #[error("{destination}: {message}: {source}")]
    Io {
        /// Destination name.
        destination: String,
        /// What we were doing.
        message: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ConnectorError {
    /// Whether the same call may succeed later (throttling, transport trouble, 5xx): the engine keeps the
    /// batch pending and retries on the next run instead of recording a hard failure.
    pub fn is_transient(&self) -> bool {
        match self {
            ConnectorError::Throttled { .. } | ConnectorError::Transport { .. } => true,
            ConnectorError::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }
}
