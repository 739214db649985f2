//! TikTok customer-file custom audiences over the TikTok Marketing (Business) API.
//!
//! Coded against **Marketing API v1.3** (`https://business-api.tiktok.com/open_api/v1.3`, the default
//! `base_url`), per platforms.md and TikTok's DMP custom-audience reference. Every request was checked
//! against the OpenAPI files of tiktok/tiktok-business-api-sdk at commit `f809c396` (2026-02-28):
//! `yml_files/dmp_custom_audience_{create,update,file_upload,list,get}.yml`,
//! `yml_files/report_integrated_get.yml` and the SDK models `AdStatusUpdateBody` / `AdGet` parameters;
//! the fake refuses fields those files do not declare.
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
//!   `{advertiser_id, custom_audience_id, file_paths, action: APPEND | REMOVE | REPLACE}` (the spec declares
//!   no `calculate_type` on update: the audience keeps the type it was created with);
//! - audience size: `GET /dmp/custom_audience/get/?advertiser_id&custom_audience_ids=[...]` (≤ 100 ids),
//!   `data.list[].audience_details.cover_num` (`AudienceSizeSource`);
//! - replace-all: the session's first file uses `REPLACE`, later files `APPEND`;
//! - no per-member rejections come back (files are matched asynchronously); payloads that are not a
//!   64-hex email hash are rejected locally.
//!
//! - creative rotation (same v1.3): the object is an ad group, a creative an ad in it; `GET /ad/get/`
//!   lists the group's ads, `POST /ad/status/update/` `ENABLE`s the new one, then `DISABLE`s the others;
//! - metrics: `GET /report/integrated/get/` (`BASIC`, `AUCTION_AD`, dimensions `ad_id` + `stat_time_day`,
//!   filtered by `adgroup_ids`, paged `page`/`page_size` ≤ 1000, ≤ 30 days per request), string numbers;
//!   revenue = `total_complete_payment_rate` (the **web** "Complete Payment" value, despite the name) +
//!   `total_purchase_value` (the **App** "Purchase" event's value). Source: the SDK's metric enum in
//!   `yml_files/smart_plus_material_report_breakdown.yml`, which maps `total_complete_payment_rate` to
//!   `time_attr_total_shopping_value` (web shopping = Complete Payment), `complete_payment` to
//!   `time_attr_shopping` and `total_purchase_value` to `time_attr_total_repetitive_active_pay_value`
//!   (`active_pay` = the in-app purchase event); `report_integrated_get.yml` itself does not enumerate
//!   metric names, so that the same names hold there is taken from the shared reporting metric list.
//!
//! Batch: 50,000 lines per file by default (`batch_size`; TikTok limits customer files by size — check).
//! Channel: ads. Minimum audience: about 1,000 matched users (check).

mod client;
mod config;
mod mapping;

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod rotation_tests;

pub use client::{TikTokDestination, TikTokPolicy, DEFAULT_BATCH, MIN_AUDIENCE, PENDING_PREFIX};
pub use config::{TikTokConfig, DEFAULT_BASE_URL};
pub use mapping::{line, prepare, CALCULATE_TYPE};
