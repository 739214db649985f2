//! SendGrid Marketing Campaigns contact lists over the Twilio SendGrid **v3** API
//! (`https://api.sendgrid.com/v3`, the default `base_url`), per the reference pages "Lists", "Add or
//! Update a Contact", "Import Contacts Status", "Get Contacts by Emails" and "Remove Contacts from a List".
//! Every request checked against twilio/sendgrid-oai at commit `dbe0e0d2e67a0c3c55b222d54df2acda2b9027a7`
//! (2026-01-22), `spec/json/tsg_mc_lists_v3.json` (`GET /v3/marketing/lists` `page_size` 1..1000 /
//! `page_token`; `POST` `{name}` required, 1..100 characters; list ids UUIDs of 36 characters;
//! `DELETE /v3/marketing/lists/{id}/contacts` `contact_ids` required, comma separated, → 202 `{job_id}`)
//! and `spec/json/tsg_mc_contacts_v3.json` (`PUT /v3/marketing/contacts` `{list_ids, contacts}`:
//! `contacts` required, 1..30,000 items, "up to 30,000 contacts, or 6MB of data, whichever is lower";
//! `ContactRequest` declares `email` ≤ 254, `first_name`/`last_name` ≤ 50 characters; → 202 `{job_id}`.
//! `POST /v3/marketing/contacts/search/emails` `{emails}` required, each ≤ 100 characters, "up to 100
//! contacts"; 404 when none matches. `GET /v3/marketing/contacts/imports/{id}`: `status` `pending`,
//! `completed`, `errored` or `failed`, `results.errored_count` a number, `results.errors_url`).
//! What did not match before: names over 50 characters and emails over 254 were sent as they were, and
//! nothing bounded a request's bytes; the mapping now leaves such names out and refuses such emails, and
//! holds every contact to a byte budget that keeps a full batch under 6 MB (see `mapping`). The fake
//! (`campaignd_fakes::sendgrid`) enforces the same tables.
//!
//! - auth: `Authorization: Bearer {api key}`;
//! - audiences: `GET /marketing/lists?page_size=1000`, following `_metadata.next` (its `page_token` is
//!   re-sent against our own base URL, so the key never goes to a host the reply named), matched by exact
//!   name (adopted), else `POST /marketing/lists {"name"}` → `{id}`;
//! - add: `PUT /marketing/contacts {"list_ids": [id], "contacts": [{"email", "first_name", "last_name"}]}`
//!   in chunks of ≤ 10,000 (SendGrid takes 30,000 or 6 MB) → 202 `{job_id}`, then
//!   `GET /marketing/contacts/imports/{job_id}` every `poll_interval_ms` until `completed`, `errored` or
//!   `failed`. Refused rows of an `errored`/`failed` job are read from its `errors_url` (a CSV with an
//!   email column and an error column; the format is not formally documented, so the parser looks the
//!   columns up by name) and become [`crate::Rejection`]s; if that file cannot be read, every member of
//!   the chunk is reported rejected so the next run resends them (the upsert is idempotent). A
//!   synchronous 400 naming `contacts[i].email` rejects those rows and the rest is sent again;
//! - remove: contact ids from `POST /marketing/contacts/search/emails {"emails"}` (≤ 100 per call; a 404
//!   means none exists, i.e. already absent), then `DELETE /marketing/lists/{id}/contacts?contact_ids=…`
//!   (≤ 100 ids per call; SendGrid answers 202 with a job id and applies it shortly after: not polled);
//! - pacing: every reply carries `X-RateLimit-Limit/Remaining/Reset` (epoch seconds). When `Remaining`
//!   reaches 0 the destination waits until `Reset` before its next request, and a 429 is retried by the
//!   HTTP kit after `Reset` (or `Retry-After`) through [`SendGridPolicy`];
//! - job ids are not persisted: a poll that outlives `poll_timeout_secs` hands the batch back as a
//!   transient error and the next run sends it again.
//!
//! Channel: email (`consent_email`). No minimum audience size.

mod client;
mod config;
mod mapping;

#[cfg(test)]
pub(crate) mod tests;

pub use client::{SendGridDestination, SendGridPolicy, BATCH_SIZE};
pub use config::{SendGridConfig, DEFAULT_BASE_URL};
pub use mapping::{email_of, prepare};
