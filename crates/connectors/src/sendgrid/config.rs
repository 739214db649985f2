//! `[destinations.NAME]` keys for `kind = "sendgrid"`.

use super::SendGridDestination;
use crate::http::{http_platform_config, HttpSettings};
use crate::registry::platform_config;
use crate::secret::SecretRef;

/// Default API base URL: the v3 API this connector was written and tested against.
pub const DEFAULT_BASE_URL: &str = "https://api.sendgrid.com/v3";

http_platform_config! {
    /// SendGrid destination config, typed when the settings load. Unknown keys are rejected so typos
    /// surface at startup; the four HTTP keys live in `http`.
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
    }
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_string()
}

impl SendGridConfig {
    /// HTTP kit settings; pacing defaults to 10/s, on top of the rate-limit headers.
    pub fn http_settings(&self) -> HttpSettings {
        self.http.settings(Some(10.0))
    }
}

platform_config!(SendGridConfig => SendGridDestination, audience_only);
