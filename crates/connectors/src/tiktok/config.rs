//! `[destinations.NAME]` keys for `kind = "tiktok"`.

use crate::http::{HttpSettings, RetrySettings};
use crate::secret::SecretRef;
use serde::Deserialize;

/// Default TikTok Marketing API base URL: the version this connector was written against.
pub const DEFAULT_BASE_URL: &str = "https://business-api.tiktok.com/open_api/v1.3";

/// TikTok destination config. Unknown keys are rejected so typos surface at startup.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TikTokConfig {
    /// API base including the version; tests point it at the fake.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Advertiser id (digits).
    pub advertiser_id: String,
    /// Long-lived Marketing API access token, sent as `Access-Token`.
    pub access_token: SecretRef,
    /// Hashed ids per uploaded file (default 50,000).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Connect timeout in milliseconds.
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    /// Whole-request timeout in milliseconds.
    #[serde(default)]
    pub request_timeout_ms: Option<u64>,
    /// Retry budget.
    #[serde(default)]
    pub retry: Option<RetrySettings>,
    /// Request pacing (default 5/s).
    #[serde(default)]
    pub requests_per_second: Option<f64>,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_string()
}

impl TikTokConfig {
    /// HTTP kit settings from the optional keys.
    pub fn http_settings(&self) -> HttpSettings {
        HttpSettings::from_config(
            self.connect_timeout_ms,
            self.request_timeout_ms,
            self.retry.clone(),
            Some(self.requests_per_second.unwrap_or(5.0)),
        )
    }
}
