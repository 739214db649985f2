//! Turns a `[destinations.NAME]` config section into a ready destination: `kind` picks the platform, the
//! rest of the section is deserialised into that platform's `Config` (unknown keys rejected), secrets are
//! resolved. Errors name the destination and the offending key.

use crate::error::ConfigError;
use crate::file::{FileConfig, FileDestination};
use crate::google_ads::{GoogleAdsConfig, GoogleAdsDestination};
use crate::klaviyo::{KlaviyoConfig, KlaviyoDestination};
use crate::linkedin::{LinkedInConfig, LinkedInDestination};
use crate::mailchimp::{MailchimpConfig, MailchimpDestination};
use crate::meta::{MetaConfig, MetaDestination};
use crate::sandbox::{SandboxConfig, SandboxDestination};
use crate::secret::SecretResolver;
use crate::sendgrid::{SendGridConfig, SendGridDestination};
use crate::tiktok::{TikTokConfig, TikTokDestination};
use crate::traits::{AudienceDestination, CreativeSwapper, MetricsSource};
use crate::webhook::{WebhookConfig, WebhookDestination};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Every `kind` this build can construct.
pub const KNOWN_KINDS: &[&str] = &[
    "meta",
    "webhook",
    "file",
    "sandbox",
    "google_ads",
    "tiktok",
    "linkedin",
    "mailchimp",
    "klaviyo",
    "sendgrid",
];

/// One configured destination with each capability its platform has. Built once per section, so a sync,
/// a creative swap and a metrics pull to the same destination share one HTTP client, rate limiter and
/// token.
#[derive(Clone)]
pub struct Platform {
    /// Audience sync (every kind).
    pub destination: Arc<dyn AudienceDestination>,
    /// Creative swap (DESIGN §7), where the platform has it; `rotate` reports sets on other kinds.
    pub swapper: Option<Arc<dyn CreativeSwapper>>,
    /// Daily metrics (DESIGN §8), where the platform reports them; `metrics pull` skips other kinds.
    pub metrics: Option<Arc<dyn MetricsSource>>,
}

impl Platform {
    /// A platform with every capability.
    fn full<T>(platform: T) -> Platform
    where
        T: AudienceDestination + CreativeSwapper + MetricsSource + 'static,
    {
        let platform = Arc::new(platform);
        Platform {
            destination: platform.clone(),
            swapper: Some(platform.clone()),
            metrics: Some(platform),
        }
    }

    /// A platform that only holds audiences.
    fn audience_only<T: AudienceDestination + 'static>(platform: T) -> Platform {
        Platform {
            destination: Arc::new(platform),
            swapper: None,
            metrics: None,
        }
    }
}

/// Builds destination `name` from its `[destinations.NAME]` section (a JSON value, e.g. converted from
/// TOML): `kind` picks the platform, the rest is deserialised into its `Config` (unknown keys rejected),
/// secrets are resolved. Errors name the destination and the offending key. One arm per platform.
pub fn build_platform(
    name: &str,
    section: &serde_json::Value,
    secrets: &SecretResolver,
) -> Result<Platform, ConfigError> {
    let (kind, rest) = split_kind(name, section)?;
    Ok(match kind.as_str() {
        "meta" => Platform::full(MetaDestination::from_config(
            name,
            parse::<MetaConfig>(name, rest)?,
            secrets,
        )?),
        "google_ads" => Platform::full(GoogleAdsDestination::from_config(
            name,
            parse::<GoogleAdsConfig>(name, rest)?,
            secrets,
        )?),
        "tiktok" => Platform::full(TikTokDestination::from_config(
            name,
            parse::<TikTokConfig>(name, rest)?,
            secrets,
        )?),
        "linkedin" => Platform::full(LinkedInDestination::from_config(
            name,
            parse::<LinkedInConfig>(name, rest)?,
            secrets,
        )?),
        "mailchimp" => Platform::full(MailchimpDestination::from_config(
            name,
            parse::<MailchimpConfig>(name, rest)?,
            secrets,
        )?),
        "klaviyo" => Platform::full(KlaviyoDestination::from_config(
            name,
            parse::<KlaviyoConfig>(name, rest)?,
            secrets,
        )?),
        "sandbox" => Platform::full(SandboxDestination::from_config(
            name,
            parse::<SandboxConfig>(name, rest)?,
        )?),
        "sendgrid" => Platform::audience_only(SendGridDestination::from_config(
            name,
            parse::<SendGridConfig>(name, rest)?,
            secrets,
        )?),
        "webhook" => Platform::audience_only(WebhookDestination::from_config(
            name,
            parse::<WebhookConfig>(name, rest)?,
            secrets,
        )?),
        "file" => Platform::audience_only(FileDestination::from_config(
            name,
            parse::<FileConfig>(name, rest)?,
        )?),
        other => {
            return Err(ConfigError::UnknownKind {
                destination: name.to_string(),
                kind: other.to_string(),
                known: KNOWN_KINDS.join(", "),
            })
        }
    })
}

/// The audience-sync capability of destination `name` (see [`build_platform`]).
pub fn build_destination(
    name: &str,
    section: &serde_json::Value,
    secrets: &SecretResolver,
) -> Result<Arc<dyn AudienceDestination>, ConfigError> {
    Ok(build_platform(name, section, secrets)?.destination)
}

/// The creative-swap capability of destination `name`; `Ok(None)` when its platform cannot swap
/// creatives, so `rotate` reports the creative set instead of failing at startup.
pub fn build_creative_swapper(
    name: &str,
    section: &serde_json::Value,
    secrets: &SecretResolver,
) -> Result<Option<Arc<dyn CreativeSwapper>>, ConfigError> {
    Ok(build_platform(name, section, secrets)?.swapper)
}

/// The daily-metrics capability of destination `name`; `Ok(None)` when its platform reports no
/// performance, so `metrics pull` skips it.
pub fn build_metrics_source(
    name: &str,
    section: &serde_json::Value,
    secrets: &SecretResolver,
) -> Result<Option<Arc<dyn MetricsSource>>, ConfigError> {
    Ok(build_platform(name, section, secrets)?.metrics)
}

/// Splits a `[destinations.NAME]` section into its `kind` and the remaining keys.
fn split_kind(
    name: &str,
    section: &serde_json::Value,
) -> Result<(String, serde_json::Value), ConfigError> {
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        destination: name.to_string(),
        key: key.to_string(),
        message,
    };
    let mut map = section
        .as_object()
        .cloned()
        .ok_or_else(|| invalid(".", "expected a table".into()))?;
    match map.remove("kind") {
        None => Err(ConfigError::MissingKind {
            destination: name.to_string(),
            known: KNOWN_KINDS.join(", "),
        }),
        Some(serde_json::Value::String(k)) => Ok((k, serde_json::Value::Object(map))),
        Some(_) => Err(invalid("kind", "expected a string".into())),
    }
}

/// Deserialises a platform config, reporting the dotted path of the failing key.
fn parse<T: DeserializeOwned>(name: &str, value: serde_json::Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::Invalid {
            destination: name.to_string(),
            key,
            message: e.into_inner().to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolver() -> SecretResolver {
        SecretResolver::from_map(HashMap::from([(
            "META_TOKEN".to_string(),
            "tok-secret-value".to_string(),
        )]))
    }

    #[test]
    fn registry_builds_meta_from_toml() {
        let section: toml::Value = toml::from_str(
            r#"
            kind = "meta"
            ad_account_id = "123"
            access_token = { env = "META_TOKEN" }
            retry = { max_attempts = 2 }
            "#,
        )
        .expect("toml");
        let section = serde_json::to_value(section).expect("toml as json");
        let d = build_destination("fb", &section, &resolver()).expect("built");
        assert_eq!(d.kind(), "meta");
        assert_eq!(d.name(), "fb");
        assert_eq!(d.limits().max_batch, 10_000);
        assert_eq!(d.channel(), crate::Channel::Ads);
    }

    #[test]
    fn capability_builders_cover_the_ad_and_email_platforms() {
        use serde_json::json;
        let secrets = SecretResolver::from_map(HashMap::from([
            ("T".to_string(), "tok-secret-value".to_string()),
            ("MC".to_string(), "key-secret-us21".to_string()),
        ]));
        let t = json!({"env": "T"});
        let sections = [
            json!({"kind": "meta", "ad_account_id": "1", "access_token": t}),
            json!({"kind": "google_ads", "customer_id": "1", "developer_token": t, "client_id": t,
                   "client_secret": t, "refresh_token": t}),
            json!({"kind": "mailchimp", "list_id": "abc", "api_key": {"env": "MC"}}),
            json!({"kind": "tiktok", "advertiser_id": "7", "access_token": t}),
            json!({"kind": "linkedin", "ad_account_id": "5", "client_id": t, "client_secret": t,
                   "refresh_token": t}),
            json!({"kind": "klaviyo", "api_key": t, "conversion_metric_id": "VevE7N"}),
        ];
        for section in sections {
            let kind = section["kind"].clone();
            let swapper = build_creative_swapper("d", &section, &secrets).expect("config");
            assert_eq!(swapper.expect("swapper").name(), "d", "{kind}");
            let metrics = build_metrics_source("d", &section, &secrets).expect("config");
            assert_eq!(metrics.expect("metrics").name(), "d", "{kind}");
        }
        let webhook = json!({"kind": "webhook", "url": "https://x.example/h", "secret": t});
        assert!(build_creative_swapper("d", &webhook, &secrets)
            .expect("config")
            .is_none());
        let bad =
            json!({"kind": "meta", "ad_account_id": "1", "access_token": t, "purchase_action": 1});
        let e = build_metrics_source("d", &bad, &secrets)
            .err()
            .expect("unknown key");
        assert!(e.to_string().contains("purchase_action"), "{e}");
    }

    fn err(section: serde_json::Value) -> String {
        match build_destination("fb", &section, &resolver()) {
            Ok(_) => String::from("built"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn registry_errors_name_destination_and_key() {
        use serde_json::json;
        let e = err(json!({"ad_account_id": "1"}));
        assert!(e.contains("`fb`") && e.contains("kind"), "{e}");
        let e = err(json!({"kind": "myspace"}));
        assert!(e.contains("myspace") && e.contains("meta"), "{e}");
        let e = err(
            json!({"kind": "meta", "ad_account_id": "1", "access_token": {"env": "META_TOKEN"}, "acess_tokn": 1}),
        );
        assert!(e.contains("`fb`") && e.contains("acess_tokn"), "{e}");
        let e = err(json!({"kind": "meta", "ad_account_id": "1"}));
        assert!(e.contains("access_token"), "{e}");
        let e = err(
            json!({"kind": "meta", "ad_account_id": "1", "access_token": {"env": "META_TOKEN"}, "retry": {"max_attempts": "x"}}),
        );
        assert!(e.contains("retry.max_attempts"), "{e}");
        let e = err(
            json!({"kind": "meta", "ad_account_id": "abc", "access_token": {"env": "META_TOKEN"}}),
        );
        assert!(e.contains("ad_account_id"), "{e}");
        let e = err(json!({"kind": "meta", "ad_account_id": "1", "access_token": {"env": "NOPE"}}));
        assert!(e.contains("access_token") && e.contains("NOPE"), "{e}");
        let e =
            err(json!({"kind": "meta", "ad_account_id": "1", "access_token": "tok-secret-value"}));
        assert!(
            e.contains("access_token") && !e.contains("tok-secret-value"),
            "{e}"
        );
        let e = err(json!({"kind": "webhook", "url": "ftp://x", "secret": {"env": "META_TOKEN"}}));
        assert!(e.contains("url"), "{e}");
    }
}
