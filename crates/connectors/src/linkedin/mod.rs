//! LinkedIn Matched Audiences: streaming DMP segments of hashed emails over the LinkedIn Marketing API.
//!
//! Coded against the versioned REST API (`https://api.linkedin.com/rest`) with header
//! **`LinkedIn-Version: 202610`** (configurable as `linkedin_version`; LinkedIn sunsets each monthly
//! version after about a year) and `X-Restli-Protocol-Version: 2.0.0`, per the "DMP Segments" and
//! "DMP Segment Users" pages of LinkedIn's Marketing API documentation:
//! - auth: OAuth2 refresh token → bearer (token endpoint `https://www.linkedin.com/oauth/v2/accessToken`,
//!   scope `rw_dmp_segments`); the refresh is a form POST of `grant_type=refresh_token`, `refresh_token`,
//!   `client_id` and `client_secret` — all in the body, as Microsoft Learn's "Refresh Tokens with OAuth 2.0"
//!   page (learn.microsoft.com/linkedin/shared/authentication/programmatic-refresh-tokens) specifies; an
//!   HTTP Basic header alone is answered `invalid_request`. A 401 refreshes once;
//! - segments: `GET /dmpSegments?q=account&account=urn:li:sponsoredAccount:{id}&start&count` paged by
//!   `start`/`count` against `paging.total`; created with `POST /dmpSegments` `{name, account, type: USER,
//!   sourcePlatform, destinations: [{destination: LINKEDIN}]}` → id in `x-restli-id`, then a 5 s wait
//!   (`post_create_delay_ms`) before users are added, as LinkedIn asks;
//! - members: `POST /dmpSegments/{id}/users` with `X-RestLi-Method: BATCH_CREATE` and `{elements:
//!   [{action: ADD | REMOVE, userIds: [{idType: SHA256_EMAIL, idValue}]}]}`; per-element statuses ≥ 300
//!   become rejections;
//! - throttling: a bare 429 (600 requests/min per member on `/users`), retried with backoff by the kit;
//! - no native replace-all (the engine does a full resync of adopted segments).
//!
//! - creative rotation (same version, "Ad Creatives"): the object is a campaign, a creative one of its
//!   creatives; `GET /adAccounts/{id}/creatives?q=criteria&campaigns=List(...)`, then Rest.li
//!   `PARTIAL_UPDATE`s of `intendedStatus` (`ACTIVE` for the new creative, then `PAUSED` for the others);
//! - metrics ("Ads Reporting"): `GET /adAnalytics?q=analytics&pivot=CREATIVE&timeGranularity=DAILY
//!   &dateRange=...&campaigns=List(...)&fields=...` (scope `r_ads_reporting`, no pagination), one row per
//!   creative and day; revenue from `conversionValueInLocalCurrency`.
//!
//! Batch: 5,000 elements (the size LinkedIn cites for streaming batches — check). Channel: ads. Minimum
//! audience: 300 matched members. `sourcePlatform` defaults to `LIST_UPLOAD` (check: LinkedIn assigns
//! partner values; configurable as `source_platform`).

mod client;
mod config;
mod mapping;

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod rotation_tests;

pub use client::{LinkedInDestination, MAX_BATCH, MIN_AUDIENCE};
pub use config::{LinkedInConfig, DEFAULT_BASE_URL, DEFAULT_TOKEN_URL, DEFAULT_VERSION};
pub use mapping::{prepare, user_ids};
