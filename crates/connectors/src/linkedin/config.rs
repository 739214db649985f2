//! `[destinations.NAME]` keys for `kind = "linkedin"`.

use super::LinkedInDestination;
use crate::http::{http_platform_config, HttpSettings};
use crate::registry::platform_config;
use crate::secret::SecretRef;

/// Default LinkedIn Marketing API base URL (versioned REST; the version travels in a header).
pub const DEFAULT_BASE_URL: &str = "https://api.linkedin.com/rest";
/// The `LinkedIn-Version` this connector was written against (versions are supported for about a year).
pub const DEFAULT_VERSION: &str = "202610";
/// LinkedIn's OAuth2 token endpoint.
pub const DEFAULT_TOKEN_URL: &str = "https://www.linkedin.com/oauth/v2/accessToken";

http_platform_config! {
    /// LinkedIn destination config, typed when the settings load. Unknown keys are rejected so typos
    /// surface at startup; the four HTTP keys live in `http`.
    pub struct LinkedInConfig {
        /// REST base; tests point it at the fake.
        #[serde(default = "default_base_url")]
        pub base_url: String,
        /// `LinkedIn-Version` header value (`YYYYMM`).
        #[serde(default = "default_version")]
        pub linkedin_version: String,
        /// OAuth2 token endpoint (refresh-token grant).
        #[serde(default = "default_token_url")]
        pub token_url: String,
        /// Sponsored (ad) account id, digits or `urn:li:sponsoredAccount:<digits>`.
        pub ad_account_id: String,
        /// OAuth2 client id.
        pub client_id: SecretRef,
        /// OAuth2 client secret.
        pub client_secret: SecretRef,
        /// OAuth2 refresh token (scope `rw_dmp_segments`).
        pub refresh_token: SecretRef,
        /// `sourcePlatform` of segments campaignd creates (default `LIST_UPLOAD`; LinkedIn assigns partner
        /// values to approved integrations).
        #[serde(default)]
        pub source_platform: Option<String>,
        /// Elements per `/users` batch (default and maximum 5,000).
        #[serde(default)]
        pub batch_size: Option<usize>,
        /// Wait after creating a segment before adding users (LinkedIn asks for 5 s; default 5,000 ms).
        #[serde(default)]
        pub post_create_delay_ms: Option<u64>,
    }
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_string()
}

fn default_version() -> String {
    DEFAULT_VERSION.to_string()
}

fn default_token_url() -> String {
    DEFAULT_TOKEN_URL.to_string()
}

impl LinkedInConfig {
    /// The account URN, or `None` if the id is not numeric.
    pub fn account_urn(&self) -> Option<String> {
        let id = self.ad_account_id.trim();
        let digits = id.strip_prefix("urn:li:sponsoredAccount:").unwrap_or(id);
        (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
            .then(|| format!("urn:li:sponsoredAccount:{digits}"))
    }

    /// HTTP kit settings; pacing defaults to 8/s, under the 600 requests/min per member on `/users`.
    pub fn http_settings(&self) -> HttpSettings {
        self.http.settings(Some(8.0))
    }
}

platform_config!(LinkedInConfig => LinkedInDestination, full, creative_keys = ["campaign_id"]);
