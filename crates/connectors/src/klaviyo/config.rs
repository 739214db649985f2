//! `[destinations.NAME]` keys for `kind = "klaviyo"`.

use super::KlaviyoDestination;
use crate::http::{http_platform_config, HttpSettings};
use crate::registry::platform_config;
use crate::secret::SecretRef;

/// Default API base URL.
pub const DEFAULT_BASE_URL: &str = "https://a.klaviyo.com/api";
/// API revision this connector was written and tested against (the `revision` header).
pub const DEFAULT_REVISION: &str = "2026-07-15";

http_platform_config! {
    /// Klaviyo destination config, typed when the settings load. Unknown keys are rejected so typos
    /// surface at startup; the four HTTP keys live in `http`.
    pub struct KlaviyoConfig {
        /// API base; tests point it at the fake.
        #[serde(default = "default_base_url")]
        pub base_url: String,
        /// Private API key (scopes `lists:write`, `profiles:write`).
        pub api_key: SecretRef,
        /// `revision` header, `YYYY-MM-DD` (default [`DEFAULT_REVISION`]).
        #[serde(default = "default_revision")]
        pub revision: String,
        /// Delay between import-job status polls in milliseconds (default 2,000).
        #[serde(default)]
        pub poll_interval_ms: Option<u64>,
        /// How long to wait for one import job before handing the batch back (default 900 s).
        #[serde(default)]
        pub poll_timeout_secs: Option<u64>,
        /// Metric id campaign reports count conversions and conversion value by (the account's "Placed
        /// Order" metric); required for metrics.
        #[serde(default)]
        pub conversion_metric_id: Option<String>,
    }
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_string()
}

fn default_revision() -> String {
    DEFAULT_REVISION.to_string()
}

impl KlaviyoConfig {
    /// Whether `revision` looks like `YYYY-MM-DD` (optionally with a `.pre` style suffix).
    pub fn revision_is_valid(&self) -> bool {
        let r = self.revision.as_bytes();
        r.len() >= 10
            && r[..10].iter().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    *b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            })
    }

    /// HTTP kit settings; pacing defaults to 10/s, Klaviyo's burst limit for lists and import jobs.
    pub fn http_settings(&self) -> HttpSettings {
        self.http.settings(Some(10.0))
    }
}

platform_config!(KlaviyoConfig => KlaviyoDestination, full, creative_keys = ["campaign_id", "template_id"]);
