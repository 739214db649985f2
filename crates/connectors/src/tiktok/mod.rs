//! TikTok customer-file custom audiences over the TikTok Marketing (Business) API.
//!
//! Coded against **Marketing API v1.3** (`https://business-api.tiktok.com/open_api/v1.3`, the default
//! `base_url`), per platforms.md and TikTok's DMP custom-audience reference:
//! - auth: header `Access-Token: <token>` (no `Bearer`), a long-lived advertiser token (static: a
//!   40104/40105 reply is a credentials error, not refreshed);
//! - every reply is `{code, message, request_id, data}`, and `code != 0` is an error even at HTTP 200;
//!   40100 ("too many requests", platforms.md marks it "likely") and 40133 are retried as throttling through
//!   the kit's body classifier, 50000–51999 as server errors;
//! - audiences: `GET /dmp/custom_audience/list/?advertiser_id&page&page_size=100` paged by
//!   `page_info.total_page`; created by `POST /dmp/custom_audience/create/` `{advertiser_id,
//!   custom_audience_name (≤ 128), file_paths, calculate_type}` — TikTok creates audiences from a file, so
//!   a new audience's reference is `pending:<name>` until the first batch creates it;
//! - members: each batch is a file uploaded with `POST /dmp/custom_audience/file/upload/` (multipart
//!   `advertiser_id`, `file` = one SHA-256 hex per line, `file_signature` = MD5 hex of the file,
//!   `calculate_type = EMAIL_SHA256`) → `data.file_path`, then `POST /dmp/custom_audience/update/`
//!   `{advertiser_id, custom_audience_id, file_paths, action: APPEND | REMOVE | REPLACE, calculate_type}`;
//! - replace-all: the session's first file uses `REPLACE`, later files `APPEND`;
//! - no per-member rejections come back (files are matched asynchronously); payloads that are not a
//!   64-hex email hash are rejected locally.
//!
//! - creative rotation (same v1.3): the object is an ad group, a creative an ad in it; `GET /ad/get/`
//!   lists the group's ads, `POST /ad/status/update/` `ENABLE`s the new one, then `DISABLE`s the others;
//! - metrics: `GET /report/integrated/get/` (`BASIC`, `AUCTION_AD`, dimensions `ad_id` + `stat_time_day`,
//!   filtered by `adgroup_ids`, paged `page`/`page_size` ≤ 1000, ≤ 30 days per request), string numbers;
//!   revenue from `total_purchase_value` (check).
//!
//! Batch: 50,000 lines per file by default (`batch_size`; TikTok limits customer files by size — check).
//! Channel: ads. Minimum audience: about 1,000 matched users (check).

mod client;
mod config;
mod mapping;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod rotation_tests;

pub use client::{TikTokDestination, TikTokPolicy, DEFAULT_BATCH, MIN_AUDIENCE, PENDING_PREFIX};
pub use config::{TikTokConfig, DEFAULT_BASE_URL};
pub use mapping::{line, prepare, CALCULATE_TYPE};
