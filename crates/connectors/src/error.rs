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
    /// The platform answered with a redirect (3xx). campaignd follows none: a redirect may name another
    /// host, which would receive the batch (hashed identifiers, for some platforms plain emails) and our
    /// credentials. Not retried; the base URL or the platform needs fixing.
    #[error("{destination}: {operation}: HTTP {status} redirect to {location} refused (campaignd follows no redirects; check base_url)")]
    Redirected {
        /// Destination name.
        destination: String,
        /// What we were doing.
        operation: String,
        /// HTTP status (301, 302, 303, 307, 308, ...).
        status: u16,
        /// Where the redirect pointed: scheme, host, port and path only (its query may carry secrets),
        /// or `(no Location)`.
        location: String,
    },
    /// The call's total time budget (`retry.max_total_ms`, attempts and waits included) ran out, e.g. on
    /// a platform that accepts connections but never answers.
    #[error("{destination}: {operation}: no answer within the {budget_ms} ms budget of this call (retry.max_total_ms) after {attempts} attempt(s): {message}")]
    OutOfTime {
        /// Destination name.
        destination: String,
        /// What we were doing.
        operation: String,
        /// Attempts made.
        attempts: u32,
        /// The budget that ran out, in milliseconds.
        budget_ms: u64,
        /// The last attempt's failure, redacted.
        message: String,
    },
    /// A reply body longer than the kit accepts: read up to the limit, then dropped instead of filling
    /// memory. Not retried.
    #[error(
        "{destination}: {operation}: reply body exceeds the {limit_bytes}-byte limit; refused"
    )]
    ReplyTooLarge {
        /// Destination name.
        destination: String,
        /// What we were doing.
        operation: String,
        /// The limit, in bytes.
        limit_bytes: u64,
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
            ConnectorError::Throttled { .. }
            | ConnectorError::Transport { .. }
            | ConnectorError::OutOfTime { .. } => true,
            ConnectorError::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The same error with every message passed through `redact`, for errors made outside the kit's own
    /// redaction (a token source's, a connector's own message) before they leave a destination.
    pub fn redacted(self, redact: impl Fn(&str) -> String) -> Self {
        use ConnectorError as E;
        match self {
            E::Auth {
                destination,
                operation,
                message,
            } => E::Auth {
                destination,
                operation,
                message: redact(&message),
            },
            E::Api {
                destination,
                operation,
                status,
                code,
                message,
            } => E::Api {
                destination,
                operation,
                status,
                code,
                message: redact(&message),
            },
            E::Throttled {
                destination,
                operation,
                attempts,
                retry_after,
                message,
            } => E::Throttled {
                destination,
                operation,
                attempts,
                retry_after,
                message: redact(&message),
            },
            E::Transport {
                destination,
                operation,
                attempts,
                message,
            } => E::Transport {
                destination,
                operation,
                attempts,
                message: redact(&message),
            },
            E::Redirected {
                destination,
                operation,
                status,
                location,
            } => E::Redirected {
                destination,
                operation,
                status,
                location: redact(&location),
            },
            E::OutOfTime {
                destination,
                operation,
                attempts,
                budget_ms,
                message,
            } => E::OutOfTime {
                destination,
                operation,
                attempts,
                budget_ms,
                message: redact(&message),
            },
            E::InvalidResponse {
                destination,
                operation,
                message,
            } => E::InvalidResponse {
                destination,
                operation,
                message: redact(&message),
            },
            E::Invalid {
                destination,
                message,
            } => E::Invalid {
                destination,
                message: redact(&message),
            },
            E::Io {
                destination,
                message,
                source,
            } => E::Io {
                destination,
                message: redact(&message),
                source,
            },
            other @ (E::ReplyTooLarge { .. } | E::Unsupported { .. }) => other,
        }
    }
}
