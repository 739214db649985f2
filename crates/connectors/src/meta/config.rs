//! `[destinations.NAME]` keys for `kind = "meta"`.

use crate::http::{HttpSettings, RetrySettings};
use crate::secret::SecretRef;
use serde::Deserialize;

/// Default Graph API base URL: the version this connector was written and tested against.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com/v25.0";

/// Meta destination config. Unknown keys are rejected so typos surface at startup.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaConfig {
    /// Graph API base including the version; tests point it at the fake.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Ad account id, `act_123` or `123`.
    pub ad_account_id: String,
    /// System-user or long-lived token.
    pub access_token: SecretRef,
    /// Connect timeout in milliseconds.
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    /// Whole-request timeout in milliseconds.
    #[serde(default)]
    pub request_timeout_ms: Option<u64>,
    /// Retry budget.
    #[serde(default)]
    pub retry: Option<RetrySettings>,
    /// Request pacing (default 10/s, well under Meta's mutation QPS limits).
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    /// Rows per `/users` call (default and maximum 10,000): smaller batches make each acknowledged step
    /// of a large sync smaller.
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Insights `action_type` counted as conversions and revenue. Unset: the first present of
    /// `omni_purchase` (Ads Manager's "Purchases"), `purchase`, `offsite_conversion.fb_pixel_purchase`.
    #[serde(default)]
    pub purchase_action_type: Option<String>,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_string()
}

impl MetaConfig {
    /// The account id in the `act_` form the Graph API paths use, or `None` if it is not numeric.
    pub fn account_path(&self) -> Option<String> {
        let id = self.ad_account_id.trim();
        let digits = id.strip_prefix("act_").unwrap_or(id);
        (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
            .then(|| format!("act_{digits}"))
    }

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
