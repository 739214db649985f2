//! campaignd-connectors: everything that talks to an ad or email platform.
//!
//! The engine sees platforms only through the traits in [`traits`] — [`AudienceDestination`] (audience
//! sync), [`CreativeSwapper`] (creative rotation) and [`MetricsSource`] (daily performance and audience
//! sizes) — so diffing, consent, the ledger and resume logic stay platform-free. Each platform is one module (`meta`, `webhook`, `file`, ...) with its own
//! serde `Config`, mapping (normalise + hash per platform rules, see platforms.md) and client built on the
//! shared [`http`] kit (timeouts, retry with backoff and Retry-After, rate limiting, token refresh,
//! redaction). [`registry::build_destination`] turns a `[destinations.NAME]` config section into a
//! ready destination.
//!
//! Adding a platform: write `src/<platform>/` (config.rs with a `deny_unknown_fields` Config, mapping.rs
//! with a pure `prepare`, client.rs implementing [`AudienceDestination`] over [`http::HttpKit`], or, for
//! an email-list platform shaped like Klaviyo, SendGrid and Mailchimp, the smaller `ListPlatform` trait
//! of `list_audience.rs`, which implements the destination for it), add one
//! arm to [`registry::build_destination`], and add a stateful fake to `campaignd-fakes` on its shared
//! skeleton so the tests run over loopback HTTP.

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
mod contract;

pub use error::{ConfigError, ConnectorError};
pub use model::{
    AudienceRef, AudienceSize, BatchOutcome, Channel, Contact, DestinationLimits, IdentifierKinds,
    JobAction, MetricsRow, NoIdentifier, PreparedMember, Rejection, ReplaceSession, SubmittedJob,
    SyncContext,
};
pub use registry::{
    build_creative_swapper, build_destination, build_metrics_source, build_platform, Platform,
    KNOWN_KINDS,
};
pub use secret::{Secret, SecretRef, SecretResolver};
pub use traits::{AudienceDestination, CreativeSwapper, MetricsSource};
