//! campaignd-connectors: everything that talks to an ad or email platform.
//!
//! The engine sees platforms only through the traits in [`traits`] — [`AudienceDestination`] (audience
//! sync), [`CreativeSwapper`] (creative rotation) and [`MetricsSource`] (daily performance and audience
//! sizes) — so diffing, consent, the ledger and resume logic stay platform-free. Each platform is one
//! folder (`meta`, `webhook`, `file`, ...) shaped the same way: config.rs with its typed config (the
//! four HTTP keys in a shared [`http::HttpConfig`]) implementing [`PlatformConfig`], mapping (normalise +
//! hash per platform rules, see platforms.md) and a client built on the shared [`http`] kit (timeouts,
//! retry with backoff and Retry-After, rate limiting, token refresh, redaction).
//!
//! From config to HTTP request: settings loading types each `[destinations.NAME]` section through
//! [`registry::deserialize_destinations`] into a [`DestinationConfig`] (the platform's config, chosen by
//! `kind` from [`PLATFORMS`]); [`DestinationConfig::build`] calls the platform's
//! [`PlatformConfig::build`], which makes the client and its [`http::HttpKit`].
//!
//! Adding a platform: write `src/<platform>/` (config.rs with a `deny_unknown_fields` config and its
//! [`PlatformConfig`], mapping.rs with a pure `prepare`, client.rs implementing [`AudienceDestination`]
//! over [`http::HttpKit`], or, for an email-list platform shaped like Klaviyo, SendGrid and Mailchimp,
//! the smaller `ListPlatform` trait of `list_audience.rs`, which implements the destination for it),
//! declare the module below, add one `Registration::of` line to [`PLATFORMS`], and add a stateful fake
//! to `campaignd-fakes` on its shared skeleton so the tests run over loopback HTTP.

pub mod ack;
mod common;
pub mod error;
pub mod file;
pub mod google_ads;
pub mod http;
pub mod klaviyo;
pub mod linkedin;
mod list_audience;
pub mod mailchimp;
pub mod meta;
pub mod model;
pub mod registry;
pub mod sandbox;
pub mod secret;
pub mod sendgrid;
pub mod tiktok;
pub mod traits;
pub mod webhook;

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
pub(crate) use test_support::{build_creative_swapper, build_destination, build_metrics_source};

#[cfg(test)]
mod contract;

pub use error::{ConfigError, ConnectorError};
pub use model::{
    AudienceRef, AudienceSize, BatchOutcome, Channel, Contact, DestinationLimits, IdentifierKinds,
    JobAction, MetricsRow, NoIdentifier, PreparedMember, Rejection, ReplaceSession, SubmittedJob,
    SyncContext,
};
pub use registry::{
    deserialize_destinations, known_kinds, DestinationConfig, Platform, PlatformConfig,
    Registration, PLATFORMS,
};
pub use secret::{Secret, SecretRef, SecretResolver};
pub use traits::{AudienceDestination, CreativeSwapper, MetricsRange, MetricsSource};
