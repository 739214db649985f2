//! The four HTTP keys every platform that talks HTTP takes in its `[destinations.NAME]` section
//! (`connect_timeout_ms`, `request_timeout_ms`, `retry`, `requests_per_second`), parsed once into
//! [`HttpConfig`] and turned into the kit's [`HttpSettings`] with the platform's own defaults.
//!
//! serde's `flatten` cannot be combined with `deny_unknown_fields`, so a platform declares its config
//! with [`http_platform_config!`](crate::http::http_platform_config): the macro adds the `http` field
//! and derives `Deserialize` through a private twin struct that lists the platform's keys and the four
//! shared ones at the same level, with `deny_unknown_fields` — a misspelt key is still rejected by name,
//! and the keys keep their names in TOML.

use super::{HttpSettings, RetrySettings, MAX_REPLY_BYTES};
use std::time::Duration;

/// The shared HTTP keys of a destination section; each is optional, the platform supplies the
/// defaults when it builds its kit ([`HttpConfig::settings`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpConfig {
    /// `connect_timeout_ms`: TCP/TLS connect timeout in milliseconds (default [`DEFAULT_CONNECT_TIMEOUT_MS`]).
    pub connect_timeout_ms: Option<u64>,
    /// `request_timeout_ms`: whole-request timeout in milliseconds (default
    /// [`DEFAULT_REQUEST_TIMEOUT_MS`]).
    pub request_timeout_ms: Option<u64>,
    /// `retry = { ... }`: retry budget (default: the platform's, see [`HttpConfig::settings`]).
    pub retry: Option<RetrySettings>,
    /// `requests_per_second`: request pacing (default: the platform's).
    pub requests_per_second: Option<f64>,
}

/// Connect timeout when `connect_timeout_ms` is absent.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Whole-request timeout when `request_timeout_ms` is absent: a 10,000-row upload is several MB.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 120_000;

impl HttpConfig {
    /// The kit settings these keys ask for; an absent key takes the default timeouts, the default
    /// retry budget and the platform's `default_requests_per_second` (`None` = no pacing).
    pub fn settings(&self, default_requests_per_second: Option<f64>) -> HttpSettings {
        self.settings_with_retry(default_requests_per_second, RetrySettings::default())
    }

    /// [`HttpConfig::settings`] for a platform whose retry budget differs from the kit's default.
    pub fn settings_with_retry(
        &self,
        default_requests_per_second: Option<f64>,
        default_retry: RetrySettings,
    ) -> HttpSettings {
        HttpSettings {
            connect_timeout: Duration::from_millis(
                self.connect_timeout_ms
                    .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
            ),
            request_timeout: Duration::from_millis(
                self.request_timeout_ms
                    .unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS),
            ),
            retry: self.retry.clone().unwrap_or(default_retry),
            requests_per_second: self.requests_per_second.or(default_requests_per_second),
            max_reply_bytes: MAX_REPLY_BYTES,
        }
    }
}

/// Declares a platform's config struct whose section also takes the four [`HttpConfig`] keys.
///
/// Write the struct as usual (doc comments, `#[serde(default ...)]` on fields, every field `pub`), with
/// no derive: the macro derives `Debug`, `Clone` and `Deserialize`, appends `pub http: HttpConfig`, and
/// deserialises through a private struct `Wire` in the same module holding the platform's fields plus
/// the four shared keys under `deny_unknown_fields`, so an unknown key is refused by name and error
/// paths (`retry.max_attempts`) stay intact.
macro_rules! http_platform_config {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident : $ty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, ::serde::Deserialize)]
        #[serde(from = "Wire")]
        pub struct $name {
            $(
                $(#[$field_meta])*
                pub $field: $ty,
            )*
            /// The shared HTTP keys (`connect_timeout_ms`, `request_timeout_ms`, `retry`,
            /// `requests_per_second`), written at the same level as the keys above.
            pub http: $crate::http::HttpConfig,
        }

        /// The section as written: the platform's keys and the shared HTTP keys side by side.
        #[derive(::serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire {
            $(
                $(#[$field_meta])*
                $field: $ty,
            )*
            #[serde(default)]
            connect_timeout_ms: Option<u64>,
            #[serde(default)]
            request_timeout_ms: Option<u64>,
            #[serde(default)]
            retry: Option<$crate::http::RetrySettings>,
            #[serde(default)]
            requests_per_second: Option<f64>,
        }

        impl From<Wire> for $name {
            fn from(wire: Wire) -> Self {
                $name {
                    $($field: wire.$field,)*
                    http: $crate::http::HttpConfig {
                        connect_timeout_ms: wire.connect_timeout_ms,
                        request_timeout_ms: wire.request_timeout_ms,
                        retry: wire.retry,
                        requests_per_second: wire.requests_per_second,
                    },
                }
            }
        }
    };
}

pub(crate) use http_platform_config;
