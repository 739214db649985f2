//! `[destinations.NAME]` keys for `kind = "google_ads"`.

use super::GoogleAdsDestination;
use crate::http::{http_platform_config, HttpSettings};
use crate::registry::platform_config;
use crate::secret::SecretRef;
use serde::Deserialize;

/// Default Google Ads API base URL: the version this connector was written and tested against.
pub const DEFAULT_ADS_BASE_URL: &str = "https://googleads.googleapis.com/v25";
/// Default Data Manager API base URL.
pub const DEFAULT_DATA_MANAGER_BASE_URL: &str = "https://datamanager.googleapis.com/v1";
/// Google's OAuth2 token endpoint.
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// Which Google API carries the audience members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoogleApi {
    /// Google Ads API Customer Match (`OfflineUserDataJobService`): needs an allowlisted developer token
    /// since 2026-04-01 (Google refuses new Customer Match adopters), so only for accounts that have it.
    CustomerMatch,
    /// Data Manager API (`audienceMembers:ingest` / `:remove`): Google's path for new integrations, hence
    /// the default.
    #[default]
    DataManager,
}

http_platform_config! {
    /// Google Ads destination config, typed when the settings load. Unknown keys are rejected so typos
    /// surface at startup; the four HTTP keys live in `http`.
    pub struct GoogleAdsConfig {
        /// `data_manager` (default) or `customer_match` (allowlisted developer tokens only).
        #[serde(default)]
        pub api: GoogleApi,
        /// API base including the version; defaults to [`DEFAULT_ADS_BASE_URL`] for `customer_match` and
        /// [`DEFAULT_DATA_MANAGER_BASE_URL`] for `data_manager`. Tests point it at the fake.
        #[serde(default)]
        pub base_url: Option<String>,
        /// OAuth2 token endpoint (refresh-token grant).
        #[serde(default = "default_token_url")]
        pub token_url: String,
        /// Advertiser customer id (`123-456-7890` or digits).
        pub customer_id: String,
        /// Manager account id, sent as `login-customer-id` (Ads API) or `loginAccount` (Data Manager).
        #[serde(default)]
        pub login_customer_id: Option<String>,
        /// Google Ads developer token; required for `customer_match`, unused by `data_manager`.
        #[serde(default)]
        pub developer_token: Option<SecretRef>,
        /// OAuth2 client id.
        pub client_id: SecretRef,
        /// OAuth2 client secret.
        pub client_secret: SecretRef,
        /// OAuth2 refresh token (scope `adwords` for Customer Match, `datamanager` for Data Manager).
        pub refresh_token: SecretRef,
        /// An existing user list to write to instead of finding or creating one by name.
        #[serde(default)]
        pub user_list_id: Option<String>,
        /// Customer Match: time between job status polls (default 10,000 ms).
        #[serde(default)]
        pub job_poll_interval_ms: Option<u64>,
        /// Customer Match: how long to wait for a job before handing the batch back as transient (default
        /// 3,600 s; jobs can take hours, and resending a batch is harmless).
        #[serde(default)]
        pub job_timeout_secs: Option<u64>,
        /// Google Ads API base for creative rotation and metrics when `api = "data_manager"` (default
        /// [`DEFAULT_ADS_BASE_URL`]; with `customer_match` they use `base_url`). Needs `developer_token`.
        #[serde(default)]
        pub ads_base_url: Option<String>,
    }
}

fn default_token_url() -> String {
    DEFAULT_TOKEN_URL.to_string()
}

/// Strips dashes from a customer id and checks it is all digits.
pub fn normalize_customer_id(raw: &str) -> Option<String> {
    let digits: String = raw.trim().chars().filter(|c| *c != '-').collect();
    (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())).then_some(digits)
}

impl GoogleAdsConfig {
    /// The base URL in force for the selected API.
    pub fn effective_base_url(&self) -> String {
        let default = match self.api {
            GoogleApi::CustomerMatch => DEFAULT_ADS_BASE_URL,
            GoogleApi::DataManager => DEFAULT_DATA_MANAGER_BASE_URL,
        };
        self.base_url
            .as_deref()
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_string()
    }

    /// The Google Ads API base that creative rotation and metrics use.
    pub fn effective_ads_base_url(&self) -> String {
        match (self.api, &self.ads_base_url) {
            (_, Some(u)) => u.trim_end_matches('/').to_string(),
            (GoogleApi::CustomerMatch, None) => self.effective_base_url(),
            (GoogleApi::DataManager, None) => DEFAULT_ADS_BASE_URL.to_string(),
        }
    }

    /// HTTP kit settings; pacing defaults to 5/s.
    pub fn http_settings(&self) -> HttpSettings {
        self.http.settings(Some(5.0))
    }
}

platform_config!(GoogleAdsConfig => GoogleAdsDestination, full, creative_keys = ["ad_group_id"]);
