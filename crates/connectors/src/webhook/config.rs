//! `[destinations.NAME]` keys for `kind = "webhook"`.

use super::WebhookDestination;
use crate::http::{http_platform_config, HttpSettings};
use crate::model::Channel;
use crate::registry::platform_config;
use crate::secret::SecretRef;

http_platform_config! {
    /// Webhook destination config, typed when the settings load. Unknown keys are rejected so typos
    /// surface at startup; the four HTTP keys live in `http`.
    pub struct WebhookConfig {
        /// Receiver URL.
        pub url: String,
        /// Shared HMAC secret.
        pub secret: SecretRef,
        /// Members per POST (default 1,000).
        #[serde(default)]
        pub batch_size: Option<usize>,
        /// Which consent applies to what the receiver does with the members (default ads).
        #[serde(default)]
        pub channel: Option<Channel>,
        /// Minimum audience size to push (default 0).
        #[serde(default)]
        pub min_audience_size: Option<usize>,
    }
}

impl WebhookConfig {
    /// HTTP kit settings; pacing defaults to unlimited (the receiver is the shop's own).
    pub fn http_settings(&self) -> HttpSettings {
        self.http.settings(None)
    }
}

platform_config!(WebhookConfig => WebhookDestination, audience_only);
