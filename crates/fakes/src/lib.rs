//! campaignd-fakes: stateful local fakes of the platforms campaignd syncs to, for tests over real loopback
//! HTTP. Each fake enforces its platform's contract (auth, payload shape, hash format, batch caps, paging)
//! the way the real API does, keeps the resulting state so tests can assert the final audience, and offers
//! fault-injection knobs (throttling, 429 with Retry-After, 5xx, delays, row rejections).
//!
//! All fakes share [`skeleton`]: a [`skeleton::FakeServer`] bound to `127.0.0.1:0` that nests the
//! platform's router under its API prefix, records requests and applies the generic [`skeleton::Faults`]
//! before the platform handlers run. The skeleton also holds what several platforms do alike: the OAuth2
//! token issuer ([`skeleton::OAuthIssuer`]), identifier checks ([`skeleton::identifiers`]) and the
//! audience bookkeeping of the ad fakes. Adding a platform = a module with its state, an axum `Router`,
//! and a `throttle` responder in that platform's error shape, started through `FakeServer::start`.

pub mod google_ads;
pub mod klaviyo;
pub mod linkedin;
pub mod mailchimp;
pub mod meta;
pub mod schema;
pub mod sendgrid;
pub mod skeleton;
pub mod tiktok;
pub mod webhook;

pub use google_ads::FakeGoogleAds;
pub use klaviyo::FakeKlaviyo;
pub use linkedin::FakeLinkedIn;
pub use mailchimp::FakeMailchimp;
pub use meta::FakeMeta;
pub use sendgrid::FakeSendGrid;
pub use skeleton::{FakeServer, Faults, RecordedRequest, RequestLog};
pub use tiktok::FakeTikTok;
pub use webhook::FakeWebhook;
