//! `[destinations.NAME]` keys for `kind = "sandbox"`.

use super::SandboxDestination;
use crate::error::ConfigError;
use crate::registry::{Platform, PlatformConfig};
use crate::secret::SecretResolver;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Directory the sandbox keeps its audiences in when `path` is not given (relative to the working
/// directory).
pub const DEFAULT_PATH: &str = "sandbox";
/// Members per add/remove call the engine plans with when `batch_size` is not given.
pub const DEFAULT_BATCH_SIZE: usize = 1000;

/// Sandbox destination config. Unknown keys are rejected so typos surface at startup.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// Directory holding one JSON file per audience (created if missing).
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// Simulated minimum audience size: segments under it are reported, not pushed (default 0).
    #[serde(default)]
    pub min_audience_size: usize,
    /// Most members per add/remove call (default 1000, at least 1).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Pins the simulated conversion rate (conversions per click) of creatives by id, e.g.
    /// `creative_cvr = { "900002" = 0.08 }`, so tests and demos know which creative is better. Other
    /// creatives get a stable rate between 2% and 10% derived from a hash of their id.
    #[serde(default)]
    pub creative_cvr: BTreeMap<String, f64>,
    /// Creative ids the simulated platform refuses to swap in (as if disapproved), to exercise failed
    /// swaps.
    #[serde(default)]
    pub reject_creatives: BTreeSet<String>,
    /// Simulated creative fatigue: a creative's CTR shrinks by this share per day it has been live
    /// since its last swap-in, e.g. `creative_fatigue = { "900001" = 0.15 }` (default: none).
    #[serde(default)]
    pub creative_fatigue: BTreeMap<String, f64>,
    /// The simulated shop's response to the campaign (`campaignd demo`'s lift): the share of members
    /// this audience holds who order in the days after the sync (default 0: no simulated response).
    #[serde(default)]
    pub treated_conversion: f64,
    /// The same share for members of a sync the audience does not hold (its holdout): the shop's
    /// baseline without the campaign. `treated_conversion - baseline_conversion` is the true lift.
    #[serde(default)]
    pub baseline_conversion: f64,
}

fn default_path() -> PathBuf {
    PathBuf::from(DEFAULT_PATH)
}

fn default_batch_size() -> usize {
    DEFAULT_BATCH_SIZE
}

impl PlatformConfig for SandboxConfig {
    fn build(&self, name: &str, _secrets: &SecretResolver) -> Result<Platform, ConfigError> {
        Ok(Platform::full(SandboxDestination::from_config(
            name,
            self.clone(),
        )?))
    }

    fn as_sandbox(&self) -> Option<&SandboxConfig> {
        Some(self)
    }
}
