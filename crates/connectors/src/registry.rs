//! From a `[destinations.NAME]` section to a ready platform, in one place.
//!
//! Each platform folder's `config.rs` holds its typed config (unknown keys rejected) and implements
//! [`PlatformConfig`] for it: how to build the platform (resolving secrets, checking values), which
//! creative-set object keys it takes, and whether it is the sandbox. [`PLATFORMS`] lists every platform
//! once, as `kind` → config type; that list is the only place a new platform is registered.
//!
//! Settings are typed when they are loaded: [`deserialize_destinations`] (the `deserialize_with` of
//! `Settings.destinations`) reads each section's `kind`, finds its [`Registration`] and deserialises the
//! rest into that platform's config, so a missing or unknown kind, a misspelt key or a bad value fails
//! the load with an error naming the destination and the key. [`DestinationConfig::build`] later turns
//! the typed config into a [`Platform`].
//!
//! Adding a platform: write `src/<platform>/` shaped like the others (config.rs with the config and its
//! `PlatformConfig`, for an HTTP platform one `platform_config!` line; mapping.rs; client.rs), declare
//! the module in lib.rs and add one `Registration::of::<TheConfig>("kind")` line to [`PLATFORMS`].

use crate::common;
use crate::error::ConfigError;
use crate::file::FileConfig;
use crate::google_ads::GoogleAdsConfig;
use crate::klaviyo::KlaviyoConfig;
use crate::linkedin::LinkedInConfig;
use crate::mailchimp::MailchimpConfig;
use crate::meta::MetaConfig;
use crate::sandbox::SandboxConfig;
use crate::secret::SecretResolver;
use crate::sendgrid::SendGridConfig;
use crate::tiktok::TikTokConfig;
use crate::traits::{AudienceDestination, CreativeSwapper, MetricsSource};
use crate::webhook::WebhookConfig;
use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Every platform this build can construct: the `kind` a section names and the config type its keys
/// deserialise into. Adding a platform is one line here.
pub const PLATFORMS: &[Registration] = &[
    Registration::of::<MetaConfig>("meta"),
    Registration::of::<WebhookConfig>("webhook"),
    Registration::of::<FileConfig>("file"),
    Registration::of::<SandboxConfig>("sandbox"),
    Registration::of::<GoogleAdsConfig>("google_ads"),
    Registration::of::<TikTokConfig>("tiktok"),
    Registration::of::<LinkedInConfig>("linkedin"),
    Registration::of::<MailchimpConfig>("mailchimp"),
    Registration::of::<KlaviyoConfig>("klaviyo"),
    Registration::of::<SendGridConfig>("sendgrid"),
];

/// The kinds of [`PLATFORMS`], comma-separated, for error messages.
pub fn known_kinds() -> String {
    PLATFORMS
        .iter()
        .map(|p| p.kind)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a platform's typed config does: the way a sink config builds its sink, each platform folder's
/// config.rs implements this for its config, and the engine and binary use only these methods.
pub trait PlatformConfig: fmt::Debug + Send + Sync + 'static {
    /// Builds destination `name` with the capabilities its platform has, resolving secrets and checking
    /// the values a type cannot (ids, URLs, ranges); errors name the destination and the key.
    fn build(&self, name: &str, secrets: &SecretResolver) -> Result<Platform, ConfigError>;

    /// The `[[creative_set]]` object keys (`ad_id`, `ad_group_id`, `campaign_id`, `template_id`) that
    /// name the object whose creative this platform swaps, besides the generic `object_id`; `None` when
    /// the platform does not restrict them (the sandbox takes any, and `rotate` reports sets on platforms
    /// that cannot swap).
    fn creative_object_keys(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// The sandbox config when this is the sandbox, whose files the demo and the simulated response
    /// read; `None` for every real platform.
    fn as_sandbox(&self) -> Option<&SandboxConfig> {
        None
    }
}

/// Implements [`PlatformConfig`] for a platform config the way every HTTP platform builds: resolve
/// secrets and check values in `Destination::from_config(name, config, secrets)`, then wrap the
/// destination as [`Platform::full`] or [`Platform::audience_only`]. `creative_keys` lists the
/// `[[creative_set]]` object keys the platform swaps creatives on (see
/// [`PlatformConfig::creative_object_keys`]); without it the platform takes no restriction.
macro_rules! platform_config {
    ($config:ty => $destination:ty, $wrap:ident $(, creative_keys = [$($key:literal),+ $(,)?])? $(,)?) => {
        impl $crate::registry::PlatformConfig for $config {
            fn build(
                &self,
                name: &str,
                secrets: &$crate::secret::SecretResolver,
            ) -> Result<$crate::registry::Platform, $crate::error::ConfigError> {
                Ok($crate::registry::Platform::$wrap(<$destination>::from_config(
                    name,
                    self.clone(),
                    secrets,
                )?))
            }

            $(
                fn creative_object_keys(&self) -> Option<&'static [&'static str]> {
                    Some(&[$($key),+])
                }
            )?
        }
    };
}
pub(crate) use platform_config;

/// One entry of [`PLATFORMS`]: a `kind` and how to deserialise its section's keys.
pub struct Registration {
    /// The `kind = "..."` that selects this platform.
    pub kind: &'static str,
    parse: fn(config::Value) -> Result<Arc<dyn PlatformConfig>, ParseError>,
}

/// A platform config's deserialisation error with the dotted path of the failing key (boxed: the
/// `config` crate's error is large and travels only on the failure path).
type ParseError = Box<serde_path_to_error::Error<config::ConfigError>>;

impl Registration {
    /// The registration of config type `C` under `kind`.
    pub const fn of<C: PlatformConfig + DeserializeOwned>(kind: &'static str) -> Registration {
        Registration {
            kind,
            parse: parse_as::<C>,
        }
    }
}

fn parse_as<C: PlatformConfig + DeserializeOwned>(
    value: config::Value,
) -> Result<Arc<dyn PlatformConfig>, ParseError> {
    let config: C = serde_path_to_error::deserialize(value).map_err(Box::new)?;
    Ok(Arc::new(config))
}

/// One `[destinations.NAME]` section, typed: its `kind` and that platform's config.
#[derive(Debug, Clone)]
pub struct DestinationConfig {
    kind: &'static str,
    config: Arc<dyn PlatformConfig>,
}

impl DestinationConfig {
    /// Types section `name` (a table as the `config` crate read it from the file and the environment):
    /// `kind` picks the platform in [`PLATFORMS`], the other keys are deserialised into its config.
    /// Scalars convert the way every other settings key does (`config`'s own deserialiser), so an
    /// environment override `CAMPAIGND__DESTINATIONS__FB__AD_ACCOUNT_ID=123` is the string `"123"` and
    /// `..._REQUESTS_PER_SECOND=3` the number 3. Errors name the destination and the offending key.
    pub fn parse(name: &str, section: config::Value) -> Result<DestinationConfig, ConfigError> {
        let invalid = common::invalid_key(name);
        let config::ValueKind::Table(mut map) = section.kind else {
            return Err(invalid(".", "expected a table".into()));
        };
        let kind = match map.remove("kind").map(|k| k.kind) {
            None => {
                return Err(ConfigError::MissingKind {
                    destination: name.to_string(),
                    known: known_kinds(),
                })
            }
            Some(config::ValueKind::String(k)) => k,
            Some(_) => return Err(invalid("kind", "expected a string".into())),
        };
        let Some(registration) = PLATFORMS.iter().find(|p| p.kind == kind) else {
            return Err(ConfigError::UnknownKind {
                destination: name.to_string(),
                kind,
                known: known_kinds(),
            });
        };
        let keys = config::Value::new(None, config::ValueKind::Table(map));
        let config = (registration.parse)(keys).map_err(|e| {
            let key = e.path().to_string();
            invalid(&key, e.inner().to_string())
        })?;
        Ok(DestinationConfig {
            kind: registration.kind,
            config,
        })
    }

    /// The `kind` the section named.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Builds destination `name` (see [`PlatformConfig::build`]).
    pub fn build(&self, name: &str, secrets: &SecretResolver) -> Result<Platform, ConfigError> {
        self.config.build(name, secrets)
    }

    /// The creative-set object keys the platform takes (see [`PlatformConfig::creative_object_keys`]).
    pub fn creative_object_keys(&self) -> Option<&'static [&'static str]> {
        self.config.creative_object_keys()
    }

    /// The sandbox config, when this destination is the sandbox.
    pub fn as_sandbox(&self) -> Option<&SandboxConfig> {
        self.config.as_sandbox()
    }
}

/// `deserialize_with` for `[destinations]`: every section typed by [`DestinationConfig::parse`], so a
/// bad section fails the settings load. The error is raised while the section's value is read, so a
/// path-tracking deserialiser reports it at `destinations.NAME`.
pub fn deserialize_destinations<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, DestinationConfig>, D::Error> {
    deserializer.deserialize_map(SectionsVisitor)
}

struct SectionsVisitor;

impl<'de> Visitor<'de> for SectionsVisitor {
    type Value = BTreeMap<String, DestinationConfig>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a table of [destinations.NAME] sections")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(name) = map.next_key::<String>()? {
            let section = map.next_value_seed(Section { name: &name })?;
            out.insert(name, section);
        }
        Ok(out)
    }
}

/// The seed that types one section, knowing its name for the error.
struct Section<'a> {
    name: &'a str,
}

impl<'de> DeserializeSeed<'de> for Section<'_> {
    type Value = DestinationConfig;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let value = config::Value::deserialize(deserializer)?;
        DestinationConfig::parse(self.name, value).map_err(serde::de::Error::custom)
    }
}

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
    /// A platform with every capability (audiences, creative swaps, metrics).
    pub fn full<T>(platform: T) -> Platform
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
    pub fn audience_only<T: AudienceDestination + 'static>(platform: T) -> Platform {
        Platform {
            destination: Arc::new(platform),
            swapper: None,
            metrics: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{build_creative_swapper, build_destination, build_metrics_source};
    use std::collections::HashMap;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sections {
        #[serde(deserialize_with = "deserialize_destinations")]
        destinations: BTreeMap<String, DestinationConfig>,
    }

    fn load(text: &str) -> Result<Sections, String> {
        let de = toml::Deserializer::new(text);
        serde_path_to_error::deserialize(de)
            .map_err(|e| format!("key `{}`: {}", e.path(), e.inner().message()))
    }

    #[test]
    fn sections_are_typed_at_load_and_errors_name_the_section_and_key() {
        let s = load(
            r#"
            [destinations.fb]
            kind = "meta"
            ad_account_id = "1"
            access_token = { env = "META_TOKEN" }
            requests_per_second = 3
            [destinations.box]
            kind = "sandbox"
            path = "elsewhere"
            "#,
        )
        .expect("typed");
        assert_eq!(s.destinations["fb"].kind(), "meta");
        assert!(s.destinations["fb"].as_sandbox().is_none());
        assert_eq!(
            s.destinations["fb"].creative_object_keys(),
            Some(&["ad_id"][..])
        );
        let sandbox = s.destinations["box"].as_sandbox().expect("sandbox");
        assert_eq!(sandbox.path, std::path::PathBuf::from("elsewhere"));
        let fb = s.destinations["fb"]
            .build("fb", &resolver())
            .expect("built");
        assert_eq!(fb.destination.limits().requests_per_second, 3.0);

        let e = load("[destinations.fb]\nkind = \"meta\"\nad_account_id = \"1\"\naccess_token = { env = \"T\" }\nrequest_timout_ms = 5\n")
            .expect_err("misspelt key");
        assert!(
            e.contains("destinations.fb") && e.contains("request_timout_ms"),
            "{e}"
        );
        let e = load("[destinations.fb]\nkind = \"meta\"\nad_account_id = \"1\"\naccess_token = { env = \"T\" }\nretry = { max_attempts = \"x\" }\n")
            .expect_err("bad value");
        assert!(
            e.contains("destinations.fb") && e.contains("retry.max_attempts"),
            "{e}"
        );
        let e = load("[destinations.fb]\nkind = \"myspace\"\n").expect_err("unknown kind");
        assert!(e.contains("myspace") && e.contains(&known_kinds()), "{e}");
    }

    /// Environment overrides reach a section as whatever the `config` crate parsed them as (`123` is a
    /// number, `"3"` from a file a string): each key converts to its declared type the way every other
    /// settings key does, and a value that cannot convert still names the key.
    #[test]
    fn section_scalars_convert_to_the_declared_type() {
        let s = load(
            "[destinations.fb]\nkind = \"meta\"\nad_account_id = 123\naccess_token = { env = \"META_TOKEN\" }\nrequests_per_second = \"4\"\nbatch_size = \"500\"\n",
        )
        .expect("numbers and numeric strings convert");
        let fb = s.destinations["fb"]
            .build("fb", &resolver())
            .expect("built");
        assert_eq!(fb.destination.limits().requests_per_second, 4.0);
        assert_eq!(fb.destination.limits().max_batch, 500);
        let e = load(
            "[destinations.fb]\nkind = \"meta\"\nad_account_id = \"1\"\naccess_token = { env = \"T\" }\nbatch_size = \"many\"\n",
        )
        .expect_err("not a number");
        assert!(
            e.contains("destinations.fb") && e.contains("batch_size"),
            "{e}"
        );
    }

    #[test]
    fn every_platform_is_registered_once() {
        let mut kinds: Vec<&str> = PLATFORMS.iter().map(|p| p.kind).collect();
        let n = kinds.len();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), n, "{kinds:?}");
    }

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
