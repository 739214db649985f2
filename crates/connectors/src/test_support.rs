//! Generators and setup shared by the platform tests, so each test file keeps only what is specific to
//! its platform (which contact fields it maps, which secrets it needs).

use crate::model::{Contact, PreparedMember};
use crate::{
    AudienceDestination, ConfigError, CreativeSwapper, DestinationConfig, MetricsSource, Platform,
    SecretResolver,
};
use campaignd_core::identifiers::sha256_hex;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Types destination `name`'s section as a settings load does, then builds it: the whole path from a
/// `[destinations.NAME]` section (as JSON) to a platform, in one call for tests.
pub(crate) fn build_platform(
    name: &str,
    section: &serde_json::Value,
    secrets: &SecretResolver,
) -> Result<Platform, ConfigError> {
    let section =
        config::Value::deserialize(section.clone()).map_err(|e| ConfigError::Invalid {
            destination: name.to_string(),
            key: ".".into(),
            message: e.to_string(),
        })?;
    DestinationConfig::parse(name, section)?.build(name, secrets)
}

/// The audience-sync capability of a section (see [`build_platform`]).
pub(crate) fn build_destination(
    name: &str,
    section: &serde_json::Value,
    secrets: &SecretResolver,
) -> Result<Arc<dyn AudienceDestination>, ConfigError> {
    Ok(build_platform(name, section, secrets)?.destination)
}

/// The creative-swap capability of a section; `None` where the platform has none.
pub(crate) fn build_creative_swapper(
    name: &str,
    section: &serde_json::Value,
    secrets: &SecretResolver,
) -> Result<Option<Arc<dyn CreativeSwapper>>, ConfigError> {
    Ok(build_platform(name, section, secrets)?.swapper)
}

/// The daily-metrics capability of a section; `None` where the platform reports none.
pub(crate) fn build_metrics_source(
    name: &str,
    section: &serde_json::Value,
    secrets: &SecretResolver,
) -> Result<Option<Arc<dyn MetricsSource>>, ConfigError> {
    Ok(build_platform(name, section, secrets)?.metrics)
}

/// A resolver over fixed `(env name, value)` pairs, standing in for the process environment.
pub(crate) fn secrets(pairs: &[(&str, &str)]) -> SecretResolver {
    SecretResolver::from_map(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
    )
}

/// Adds (or overrides) the keys of `extra` in a destination config `section`.
pub(crate) fn extend_section(section: &mut serde_json::Value, extra: &serde_json::Value) {
    if let (Some(s), Some(e)) = (section.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
}

/// Contact `i` with only an email, written un-normalised (padding and capitals) so tests see the
/// connector normalise it to [`email`].
pub(crate) fn email_contact(i: usize) -> Contact {
    Contact {
        customer_id: format!("c{i}"),
        email: Some(format!(" Person{i}@Example.com")),
        ..Contact::default()
    }
}

/// The normalised email of contact `i`.
pub(crate) fn email(i: usize) -> String {
    format!("person{i}@example.com")
}

/// The SHA-256 of [`email`], as hashing platforms receive it.
pub(crate) fn email_hash(i: usize) -> String {
    sha256_hex(&email(i))
}

/// Prepares contacts `range` built by `contact`, expecting every one to be usable.
pub(crate) fn prepare_all(
    d: &dyn AudienceDestination,
    range: std::ops::Range<usize>,
    contact: fn(usize) -> Contact,
) -> Vec<PreparedMember> {
    range
        .map(|i| d.prepare(&contact(i)).expect("usable"))
        .collect()
}

/// `section` with the HTTP keys the platform tests share: pacing far above any test's request count, and
/// `max_attempts` tries with millisecond backoff (and at most 3 s of honoured `Retry-After`), so retry
/// scenarios finish quickly; `request_timeout_ms` is each test's own.
pub(crate) fn with_test_http(
    mut section: serde_json::Value,
    request_timeout_ms: u64,
    max_attempts: u32,
) -> serde_json::Value {
    extend_section(
        &mut section,
        &serde_json::json!({
            "request_timeout_ms": request_timeout_ms,
            "requests_per_second": 1000.0,
            "retry": {
                "max_attempts": max_attempts,
                "initial_backoff_ms": 5,
                "max_backoff_ms": 20,
                "max_retry_after_secs": 3,
            },
        }),
    );
    section
}

/// `section` plus the keys of `extra`, deserialised into platform config `C` the way a settings load
/// types a section (without its `kind`): how the tests that need the concrete destination type build one.
pub(crate) fn config_from<C: serde::de::DeserializeOwned>(
    mut section: serde_json::Value,
    extra: &serde_json::Value,
) -> C {
    extend_section(&mut section, extra);
    serde_json::from_value(section).expect("config")
}
