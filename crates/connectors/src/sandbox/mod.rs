//! The sandbox destination: an in-process simulated ad platform, so a newcomer and the demo see the whole
//! sync loop (find-or-create, adds, removes, rejections, minimum size) with no account anywhere and no
//! network.
//!
//! It behaves like a customer-file ad platform in the Meta mould (platforms.md, "Cross-platform rules"):
//! members are SHA-256 hex of the normalised email and of the E.164 phone digits (Meta's phone input), built
//! by [`campaignd_core::identifiers`]. No API version applies; the on-disk format is versioned by the
//! `format` field of each file ([`client::FORMAT_VERSION`]).
//!
//! State lives under the configured `path` (default `sandbox`), one JSON file per audience,
//! `{path}/audiences/{id}.json` = `{"format", "id", "name", "description", "members": {key: payload}}`,
//! where `key` is the email hash (or `phone:<hash>` for phone-only members). Every write is atomic (temp
//! file in the same directory, fsync, rename), so a crash leaves the previous state. Find-or-create matches
//! by name across all files; adds and removes are idempotent. [`audience_members`] and [`audiences`] read
//! the state back for tests and the demo.
//!
//! Creatives and metrics: [`performance`] implements [`crate::CreativeSwapper`] (the live creative per
//! object in `{path}/creatives.json`) and [`crate::MetricsSource`] (deterministic simulated daily
//! delivery, sized by the audience files read through [`audiences`]). Replace-all is native here (it is
//! local), so an adopted audience is replaced on the first mirror sync.
//!
//! Channel: ads (`consent_ads`).

mod client;
mod config;
mod mapping;
mod performance;

mod response;
#[cfg(test)]
mod tests;

pub use client::{
    audience_members, audiences, SandboxAudience, SandboxDestination, FORMAT_VERSION,
};
pub use config::{SandboxConfig, DEFAULT_BATCH_SIZE, DEFAULT_PATH};
pub use mapping::{member_key, prepare};
pub use performance::{
    creatives, with_clock, SandboxCreatives, SandboxObject, SandboxSwap, CREATIVES_FORMAT_VERSION,
    DEFAULT_REACH,
};
pub use response::{received_customers, SandboxResponse};
