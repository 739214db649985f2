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
//! Channel: ads (`consent_ads`). Minimum audience size: 100 (Meta drops matches under ~100).

mod client;
mod config;
mod mapping;

#[cfg(test)]
mod tests;

pub use client::{MetaDestination, MetaPolicy};
pub use config::{MetaConfig, DEFAULT_BASE_URL};
pub use mapping::{prepare, row, SCHEMA};
