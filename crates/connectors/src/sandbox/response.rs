//! The sandbox's simulated campaign response (issue 11): which of a sync's members the simulated
//! platform actually received — read from its own audience files, by the member key it stores — and
//! the conversion rates the synthetic shop gives them (`treated_conversion`) and everyone else
//! (`baseline_conversion`). Because the answer comes from what the platform holds, a held-out member
//! can only ever get the baseline rate: the demo's lift is measured, not assumed.

use std::collections::BTreeSet;
use std::path::Path;

use super::client::audiences;
use super::config::SandboxConfig;
use super::mapping::{member_key, prepare};
use crate::model::Contact;

/// The conversion rates of a sandbox destination.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SandboxResponse {
    /// Members the audience holds.
    pub treated_conversion: f64,
    /// Members it does not hold.
    pub baseline_conversion: f64,
}

impl SandboxResponse {
    /// Reads the rates from a `kind = "sandbox"` destination's config, checking each is a share.
    pub fn from_config(config: &SandboxConfig) -> Result<SandboxResponse, String> {
        for (key, v) in [
            ("treated_conversion", config.treated_conversion),
            ("baseline_conversion", config.baseline_conversion),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{key}: {v} is not a share between 0 and 1"));
            }
        }
        Ok(SandboxResponse {
            treated_conversion: config.treated_conversion,
            baseline_conversion: config.baseline_conversion,
        })
    }
}

/// The customer ids among `contacts` whose member key the audience named `audience_name` holds.
pub fn received_customers(
    path: &Path,
    audience_name: &str,
    contacts: &[Contact],
) -> std::io::Result<BTreeSet<String>> {
    let held: BTreeSet<String> = audiences(path)?
        .into_iter()
        .filter(|a| a.name == audience_name)
        .flat_map(|a| a.members.into_keys())
        .collect();
    Ok(contacts
        .iter()
        .filter(|c| {
            prepare(c)
                .ok()
                .and_then(|m| member_key(&m.payload))
                .is_some_and(|k| held.contains(&k))
        })
        .map(|c| c.customer_id.clone())
        .collect())
}
