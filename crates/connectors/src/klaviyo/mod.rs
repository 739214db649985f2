//! Klaviyo lists over the Klaviyo JSON:API (`https://a.klaviyo.com/api`, the default `base_url`), coded
//! against **revision 2026-07-15** (sent as the `revision` header; configurable), the newest revision
//! published in klaviyo/openapi (`openapi/stable.json` at commit `f0a30ba41254904dc410d84ca497df68f8872276`,
//! 2026-07-23, `info.version` 2026-07-15; re-fetched 2026-12-02, still the newest). The earlier default,
//! 2026-10-15, was a revision no published spec describes. Every request was checked against that file:
//! - `POST /api/lists` (`create_list`): `ListCreateQuery`, `data.type = list`, `attributes.name` required;
//! - `POST /api/profile-bulk-import-jobs` (`bulk_import_profiles`): `ProfileImportJobCreateQuery`,
//!   `data.type = profile-bulk-import-job`, `attributes.profiles.data[]` of `ProfileUpsertQueryResourceObject`
//!   `{type: profile, attributes: {email, phone_number, first_name, last_name}}` (all nullable strings of
//!   the declared attribute set), `relationships.lists.data[]` of `{type: list, id}`;
//! - `GET /api/profile-bulk-import-jobs/{job_id}` and `/{id}/import-errors`: no body; status enum
//!   `cancelled, complete, processing, queued`;
//! - `GET /api/lists` (`fields[list]`, `page[cursor]`; page size default and max 10) and `GET /api/profiles`
//!   (`filter` with `any` on `email`/`phone_number`, `page[size]` ≤ 100);
//! - `DELETE /api/lists/{id}/relationships/profiles`: `ListMembersDeleteQuery`, `data[]` of `{type:
//!   profile, id}`;
//! - every operation declares the `revision` header required; bodies are `application/vnd.api+json`.
//!   No mismatch in what we send. The fake (`campaignd_fakes::klaviyo`) enforces the same tables.
//!
//! - auth: `Authorization: Klaviyo-API-Key {private key}`;
//! - audiences: `GET /lists?fields[list]=name` paged by following `links.next` (its `page[cursor]` is
//!   re-sent against our own base URL), matched by exact name (adopted), else `POST /lists
//!   {data: {type: "list", attributes: {name}}}`;
//! - add: adding a profile to a list needs a profile id, and creating profiles one request at a time hits
//!   every rate limit, so each chunk of ≤ 10,000 goes out as one **bulk profile import job**
//!   (`POST /profile-bulk-import-jobs`, an upsert by email/phone) **with the list attached** as its
//!   `lists` relationship: Klaviyo creates or updates the profiles and adds them to the list in the same
//!   job. This replaces a separate `POST /lists/{id}/relationships/profiles` (which would need the ids
//!   first). The job is polled (`GET /profile-bulk-import-jobs/{id}`, every `poll_interval_ms`) until
//!   `complete` (`cancelled` is an error); when `failed_count > 0` the refused rows are read from
//!   `GET /profile-bulk-import-jobs/{id}/import-errors` (paged) and attributed to members through their
//!   `original_payload` email/phone, becoming [`crate::Rejection`]s. Adding subscribes nobody: consent
//!   (`profile-subscription-bulk-create-jobs`) is deliberately not touched;
//! - remove: profile ids are looked up from the stored payload with `GET /profiles?filter=any(email,
//!   [...])` (or `any(phone_number, [...])` for phone-only members; ≤ 100 values and `page[size]=100`),
//!   then `DELETE /lists/{id}/relationships/profiles {data: [{type: "profile", id}]}` (≤ 1,000 per call).
//!   People without a profile are already absent and count as removed. The ledger payload cannot carry
//!   the profile id (it is fixed at prepare time, before Klaviyo assigns one), hence the lookup;
//! - payload: `{email, phone_number (E.164 with `+`), first_name, last_name}`, only known values;
//! - throttling: 429 with `Retry-After`, honoured by the HTTP kit; 5xx retried;
//! - job ids are not persisted: a job that outlives `poll_timeout_secs` hands the batch back as a
//!   transient error and the next run sends it again (the import is an upsert).
//!
//! - creative rotation (same revision): the object is a campaign, a creative a template id; the
//!   campaign's messages (`GET /campaigns/{id}/campaign-messages`) each get the template through
//!   `POST /campaign-message-assign-template`. No pause/resume;
//! - metrics: `POST /campaign-values-reports` (statistics `delivered, opens, clicks, conversions,
//!   conversion_value`, custom timeframe, `conversion_metric_id` from config, campaign-id filter; 225
//!   calls/day), one row per campaign dated on its `send_time` (`GET /campaigns/{id}`).
//!
//! Channel: email (`consent_email`). No minimum audience size.

mod client;
mod config;
mod mapping;

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod rotation_tests;

pub use client::{KlaviyoDestination, MAX_IMPORT, MAX_RELATIONSHIP};
pub use config::{KlaviyoConfig, DEFAULT_BASE_URL, DEFAULT_REVISION};
pub use mapping::{identifiers_of, prepare};
