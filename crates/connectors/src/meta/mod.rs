//! Meta (Facebook/Instagram) customer-file custom audiences over the Graph/Marketing API.
//!
//! Coded against **Graph API v25.0** (`https://graph.facebook.com/v25.0`, the default `base_url`), per
//! the Meta reference pages "Custom Audience Users" (`/{custom_audience_id}/users`, ≤ 10,000 rows per
//! call, form field `payload` holding JSON) and "Customer File Custom Audiences".
//!
//! - audiences: `GET /act_{id}/customaudiences?fields=id,name` paged by `paging.cursors.after` while
//!   `paging.next` is present; created with `POST /act_{id}/customaudiences` (`subtype=CUSTOM`,
//!   `customer_file_source=USER_PROVIDED_ONLY`);
//! - members: `POST`/`DELETE /{audience_id}/users` with `payload={"schema":[EMAIL,PHONE,FN,LN,COUNTRY,ZIP],
//!   "data":[[sha256 hex or ""...]]}`; `num_invalid_entries`/`invalid_entry_samples` become rejections;
//! - replace-all: `POST /{audience_id}/usersreplace` with `session={session_id, batch_seq (from 1),
//!   last_batch_flag, estimated_num_total}`;
//! - throttling is in the JSON body (codes 4, 17, 613, 80000–80014, `1`/`2`/`is_transient`), with
//!   `X-Business-Use-Case-Usage` `estimated_time_to_regain_access` (minutes) as the wait; code 190 is a
//!   bad or expired token (static token: no refresh).
//!
//! - creative rotation (same API version, "Ad" reference): `POST /{ad_id}` with
//!   `creative={"creative_id":"..."}` swaps the ad's creative, `status=PAUSED|ACTIVE` pauses or resumes it;
//! - metrics ("Insights API", same version): `GET /{ad_id}/insights?fields=impressions,clicks,spend,actions,
//!   action_values,account_currency&time_increment=1&time_range={"since","until"}`, paged; numbers arrive
//!   as strings; conversions and revenue are the `actions` / `action_values` of `purchase_action_type`
//!   (config), or else the first present of `omni_purchase`, `purchase`,
//!   `offsite_conversion.fb_pixel_purchase`; 80000 (insights throttle) is retried;
//! - audience size: `GET /{audience_id}?fields=approximate_count_lower_bound,approximate_count_upper_bound`
//!   (`AudienceSizeSource`).
//!
//! Requests checked against facebook/facebook-business-sdk-codegen `api_specs/specs` at commit
//! `ad2b0b6fdfbe4d73ed0754cb4562ef20b72b40d4` (2026-04-15): `AdAccount.json` (`POST customaudiences`:
//! `name`, `subtype`, `description`, `customer_file_source`; `GET customaudiences`: `fields`),
//! `CustomAudience.json` (`POST`/`DELETE users`: `payload`, `session`; `POST usersreplace`: `payload` and
//! `session` required; fields `approximate_count_lower_bound` / `_upper_bound`), `Ad.json` (`#update`:
//! `creative`, `status`; `GET insights` params) and `AdsInsights.json` (fields). The fake refuses insights
//! and audience fields those specs do not declare.
//!
//! Channel: ads (`consent_ads`). Minimum audience size: 100 (Meta drops matches under ~100).

mod client;
mod config;
mod mapping;

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod rotation_tests;

pub use client::{MetaDestination, MetaPolicy, DEFAULT_PURCHASE_ACTION_TYPES};
pub use config::{MetaConfig, DEFAULT_BASE_URL};
pub use mapping::{prepare, row, SCHEMA};
