//! `[destinations.NAME]` keys for `kind = "tiktok"`.

use super::TikTokDestination;
use crate::http::{http_platform_config, HttpSettings};
use crate::registry::platform_config;
use crate::secret::SecretRef;

/// Default TikTok Marketing API base URL: the version this connector was written against.
pub const DEFAULT_BASE_URL: &str = "https://business-api.tiktok.com/open_api/v1.3";

http_platform_config! {
    /// TikTok destination config, typed when the settings load. Unknown keys are rejected so typos
    /// surface at startup; the four HTTP keys live in `http`.
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
    }
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_string()
}

impl TikTokConfig {
    /// HTTP kit settings; pacing defaults to 5/s.
    pub fn http_settings(&self) -> HttpSettings {
        self.http.settings(Some(5.0))
    }
}

platform_config!(TikTokConfig => TikTokDestination, full, creative_keys = ["ad_id"]);
