//! Every configured destination, built once with the capabilities its platform has, so that in the
//! daemon a sync, a creative swap and a metrics pull to the same platform share one HTTP client, one
//! rate limiter and one token.

use std::collections::BTreeMap;
use std::sync::Arc;

use campaignd_connectors::{
    AudienceDestination, ConfigError, CreativeSwapper, MetricsSource, SecretResolver,
};

use crate::Settings;

/// The destinations of a configuration, by name, split by capability.
#[derive(Clone, Default)]
pub struct Platforms {
    /// Audience sync, for every destination.
    pub destinations: BTreeMap<String, Arc<dyn AudienceDestination>>,
    /// Creative swap, for destinations whose platform has it.
    pub swappers: BTreeMap<String, Arc<dyn CreativeSwapper>>,
    /// Daily metrics, for destinations whose platform reports them.
    pub metrics: BTreeMap<String, Arc<dyn MetricsSource>>,
}

/// Builds every `[destinations.NAME]` once from its typed config; errors (an unresolvable secret, a value
/// the platform refuses) name the destination and key.
pub fn build_platforms(
    settings: &Settings,
    secrets: &SecretResolver,
) -> Result<Platforms, ConfigError> {
    let mut out = Platforms::default();
    for (name, config) in &settings.destinations {
        let platform = config.build(name, secrets)?;
        out.destinations.insert(name.clone(), platform.destination);
        if let Some(s) = platform.swapper {
            out.swappers.insert(name.clone(), s);
        }
        if let Some(m) = platform.metrics {
            out.metrics.insert(name.clone(), m);
        }
    }
    Ok(out)
}
