//! `[destinations.NAME]` keys for `kind = "sendgrid"`.

use crate::http::{HttpSettings, RetrySettings};
use crate::secret::SecretRef;
use serde::Deserialize;

/// Default API base URL: the v3 API this connector was written and tested against.
pub const DEFAULT_BASE_URL: &str = "https://api.sendgrid.com/v3";

/// SendGrid destination config. Unknown keys are rejected so typos surface at startup.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendGridConfig {
    /// API base including the version; tests point it at the fake.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// API key with Marketing permissions.
    pub api_key: SecretRef,
    /// Delay between import-job status polls in milliseconds (default 2,000).
    #[serde(default)]
    pub poll_interval_ms: Option<u64>,
    /// How long to wait for one import job before handing the batch back (default 900 s).
    #[serde(default)]
    pub poll_timeout_secs: Option<u64>,
    /// Connect timeout in milliseconds.
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    /// Whole-request timeout in milliseconds.
    #[serde(default)]
    pub request_timeout_ms: Option<u64>,
    /// Retry budget.
    #[serde(default)]
    pub retry: Option<RetrySettings>,
    /// Request pacing on top of the rate-limit headers (default 10/s).
    #[serde(default)]
    pub requests_per_second: Option<f64>,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_string()
}

impl SendGridConfig {
    /// HTTP kit settings from the optional keys.
    pub fn http_settings(&self) -> HttpSettings {
        HttpSettings::from_config(
            self.connect_timeout_ms,
            self.request_timeout_ms,
            self.retry.clone(),
            Some(self.requests_per_second.unwrap_or(10.0)),
        )
    }
}
