//! `[destinations.NAME]` keys for `kind = "mailchimp"`.

use super::MailchimpDestination;
use crate::http::{http_platform_config, HttpSettings, RetrySettings};
use crate::registry::platform_config;
use crate::secret::SecretRef;

/// Marketing API version this connector was written and tested against; part of every default base URL.
pub const API_VERSION: &str = "3.0";
/// Mailchimp allows this many simultaneous connections per user.
pub const MAX_CONNECTIONS: usize = 10;

http_platform_config! {
    /// Mailchimp destination config, typed when the settings load. Unknown keys are rejected so typos
    /// surface at startup; the four HTTP keys live in `http`.
    pub struct MailchimpConfig {
        /// API base including the version, e.g. `https://us21.api.mailchimp.com/3.0`. Defaults to the real
        /// one for the data centre named by the API key's suffix (`…-us21`); tests point it at the fake.
        #[serde(default)]
        pub base_url: Option<String>,
        /// The audience list whose static segments campaignd manages.
        pub list_id: String,
        /// API key (HTTP Basic password).
        pub api_key: SecretRef,
        /// Simultaneous requests this destination opens (1–10, default 10).
        #[serde(default)]
        pub max_connections: Option<usize>,
    }
}

/// The data centre named by an API key's suffix (`0123…-us21` → `us21`), if it has a plausible one.
pub fn data_center(api_key: &str) -> Option<String> {
    let (_, dc) = api_key.trim().rsplit_once('-')?;
    let ok = !dc.is_empty() && dc.len() <= 10 && dc.chars().all(|c| c.is_ascii_alphanumeric());
    ok.then(|| dc.to_ascii_lowercase())
}

/// The real API base for a data centre.
pub fn default_base_url(dc: &str) -> String {
    format!("https://{dc}.api.mailchimp.com/{API_VERSION}")
}

impl MailchimpConfig {
    /// HTTP kit settings: pacing defaults to 10/s, and retrying to 8 attempts from 1 s (Mailchimp's
    /// throttle carries no wait hint).
    pub fn http_settings(&self) -> HttpSettings {
        self.http.settings_with_retry(
            Some(10.0),
            RetrySettings {
                max_attempts: 8,
                initial_backoff_ms: 1_000,
                ..RetrySettings::default()
            },
        )
    }
}

platform_config!(MailchimpConfig => MailchimpDestination, full, creative_keys = ["campaign_id", "template_id"]);
