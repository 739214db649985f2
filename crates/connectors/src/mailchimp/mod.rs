//! Mailchimp audiences as **static segments** of one Mailchimp audience list, over the Marketing API.
//!
//! Coded against **Mailchimp Marketing API 3.0** (`https://{dc}.api.mailchimp.com/3.0`; the default
//! `base_url` is derived from the API key's `-{dc}` suffix), per the reference pages "Lists/Audiences:
//! Batch subscribe or unsubscribe", "List segments" and "Batch add or remove members from static segment".
//!
//! Checked against Mailchimp's own SDKs, generated from its OpenAPI file (the file itself,
//! `spec/marketing.json` of mailchimp/mailchimp-client-lib-codegen, could not be read: its blob is absent
//! from every stored commit): mailchimp/mailchimp-marketing-typescript-sdk at `436abdb` / `70ec18f`
//! (`BatchSubscribeOrUnsubscribeListsRequest` `{members (required), sync_tags, update_existing}`,
//! `BatchAddOrRemoveMembersListsRequest` `{members_to_add, members_to_remove}` of strings,
//! `CreateSegmentListsRequest` `{name (required), options, static_segment}`, member `status` enum
//! `subscribed, unsubscribed, cleaned, pending, transactional`), mailchimp/mailchimp-marketing-rust-sdk at
//! `35dbcb0` (paths and methods: `POST 3.0/lists/{list_id}` with query `skip_merge_validation` /
//! `skip_duplicate_check`, "Up to 500 members may be added or updated with each API call"; `count` "Maximum
//! value is 1000") and mailchimp/mailchimp-marketing-python 3.0.80 at `3305fa4` (`lists_api.py`,
//! `campaigns_api.py`, `reports_api.py`: the same paths; Basic auth as `('user', api_key)`). What we send
//! matches. One statement of this module was wrong and is corrected below: the batch member does take a
//! `status_if_new` (the SDKs carry its enum); we still send `status` with `update_existing = false`,
//! which never changes an existing member. The SDKs leave the batch member item opaque, so its field set
//! and `email_address`/`status` being required are from the reference page, not a machine-readable spec.
//!
//! - auth: HTTP Basic with any user name and the API key as password;
//! - audiences: a segment maps to a static segment on the configured list, found by paging
//!   `GET /lists/{list_id}/segments?type=static&count=1000&offset=N` by exact name (adopted), else created
//!   with `POST /lists/{list_id}/segments {"name", "static_segment": []}` (segment ids are integers);
//! - add: only list members can be in a segment, so each chunk of ≤ 500 first goes through batch
//!   subscribe `POST /lists/{list_id} {"members": [{"email_address", "status": "subscribed"}],
//!   "update_existing": false}`. `status` is required there and `update_existing = false` is what keeps
//!   an existing member's status untouched (`status_if_new` would only matter with `update_existing =
//!   true`, which could re-subscribe), so
//!   someone who unsubscribed in Mailchimp is never re-subscribed by a sync; such members come back as
//!   `ERROR_CONTACT_EXISTS` entries, which mean "already on the list" and are fine. Every other `errors`
//!   entry of the 200 reply is a [`crate::Rejection`] and that email is not sent on. Then
//!   `POST /lists/{list_id}/segments/{id} {"members_to_add": [...]}` (≤ 500); its `errors` entries
//!   (`{"email_addresses", "error"}`) are rejections too;
//! - remove: `{"members_to_remove": [...]}` (≤ 500); an error saying the address is not a list member
//!   means it is already absent and counts as done, other errors are rejections;
//! - payload: `{"email": normalised plain email, "subscriber_hash": md5 of it}` (Mailchimp takes emails
//!   unhashed; the MD5 member id is the path key of `/lists/{id}/members/{hash}`, kept for lookups);
//! - limits: 10 simultaneous connections per user, past which Mailchimp answers a bare 429 (sometimes a
//!   403) with no `Retry-After`. The destination holds a semaphore of `max_connections` (default and
//!   maximum 10) around every request and the [`MailchimpPolicy`] treats both replies as throttling, so
//!   the HTTP kit backs off exponentially with jitter.
//!
//! - creative rotation (same API 3.0, "Campaign content: set"): the object is a campaign, a creative a
//!   template id; `PUT /campaigns/{id}/content` `{"template": {"id": N}}`. No pause/resume;
//! - metrics ("Reports: get campaign report"): `GET /reports/{campaign_id}`: `emails_sent` → impressions
//!   (delivered), `clicks.clicks_total` → clicks, `ecommerce.total_orders` → conversions,
//!   `ecommerce.total_revenue` → revenue; one row per campaign, dated on its `send_time`.
//!
//! Channel: email (`consent_email`). No minimum audience size.

mod client;
mod config;
mod mapping;

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod rotation_tests;

pub use client::{MailchimpDestination, MailchimpPolicy, MAX_MEMBERS};
pub use config::{data_center, default_base_url, MailchimpConfig, API_VERSION, MAX_CONNECTIONS};
pub use mapping::{email_of, prepare};
