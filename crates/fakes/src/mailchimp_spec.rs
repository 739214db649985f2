//! Request bodies of the Mailchimp Marketing API 3.0 endpoints the fake serves. Mailchimp's OpenAPI file
//! (`spec/marketing.json` in mailchimp/mailchimp-client-lib-codegen) is not readable here (its blob is
//! absent from every stored commit), so the shapes come from Mailchimp's official SDKs generated from it:
//! - mailchimp/mailchimp-marketing-typescript-sdk at commit `436abdbbe5e0d9aa5f3db502ef28e3c590ab1f96`,
//!   `src/serialization/resources/lists/client/requests/`: `BatchSubscribeOrUnsubscribeListsRequest`
//!   (`members` required, `sync_tags` and `update_existing` optional nullable booleans),
//!   `BatchAddOrRemoveMembersListsRequest` (`members_to_add`, `members_to_remove`: optional arrays of
//!   strings), and at `70ec18f86a3462de7e96f301e9cc6ffae0ac0682` `CreateSegmentListsRequest` (`name`
//!   required string, `options` an object, `static_segment` an array of strings); the member
//!   `status` / `status_if_new` enums from `types/BatchSubscribeOrUnsubscribeListsRequestMembersItem
//!   Status(IfNew).ts` (`subscribed, unsubscribed, cleaned, pending, transactional`);
//! - mailchimp/mailchimp-marketing-rust-sdk at `35dbcb085d0339d01da0f1b5fb642d2f00aebb85`
//!   (`src/api/resources/lists/lists.rs`): the paths, methods and query parameters
//!   (`skip_merge_validation`, `skip_duplicate_check` on `POST /lists/{list_id}`; "Up to 500 members");
//! - mailchimp/mailchimp-marketing-python 3.0.80 at `3305fa45b3f436767a539c5fba9cb2b0a083d761`
//!   (`api/lists_api.py`, `api/campaigns_api.py`): the same paths, HTTP Basic auth `('user', api_key)`.
//!
//! The SDKs leave the batch member item opaque, so its field set is the reference page's ("Batch
//! subscribe or unsubscribe": `email_address`, `email_type`, `status`, `status_if_new`, `merge_fields`,
//! `interests`, `language`, `vip`, `location`, `marketing_permissions`, `ip_signup`, `timestamp_signup`,
//! `ip_opt`, `timestamp_opt`, `tags`) and `email_address` plus `status` are held required (the reference
//! marks both required); the objects are closed, which is stricter than Mailchimp (it ignores unknown
//! keys): a key the spec does not declare never does what the sender meant.
//!
//! A child of `mailchimp`: only its fake reads these tables.

use crate::schema::{field, required, Shape};

/// `status` and `status_if_new` values.
pub const STATUSES: &[&str] = &[
    "subscribed",
    "unsubscribed",
    "cleaned",
    "pending",
    "transactional",
];

/// One member of a batch subscribe.
const BATCH_MEMBER: Shape = Shape::Object(&[
    required("email_address", &Shape::Str),
    field("email_type", &Shape::Enum(&["html", "text"])),
    required("status", &Shape::Enum(STATUSES)),
    field("status_if_new", &Shape::Enum(STATUSES)),
    field("merge_fields", &Shape::Any),
    field("interests", &Shape::Any),
    field("language", &Shape::Str),
    field("vip", &Shape::Bool),
    field("location", &Shape::Any),
    field("marketing_permissions", &Shape::Any),
    field("ip_signup", &Shape::Str),
    field("timestamp_signup", &Shape::Any),
    field("ip_opt", &Shape::Str),
    field("timestamp_opt", &Shape::Any),
    field("tags", &Shape::Array(&Shape::Str)),
]);

/// `BatchSubscribeOrUnsubscribeListsRequest` (`POST /lists/{list_id}`; ≤ 500 members, checked by the
/// handler).
pub const BATCH_SUBSCRIBE: Shape = Shape::Object(&[
    required("members", &Shape::Array(&BATCH_MEMBER)),
    field("sync_tags", &Shape::Nullable(&Shape::Bool)),
    field("update_existing", &Shape::Nullable(&Shape::Bool)),
]);

/// `BatchAddOrRemoveMembersListsRequest` (`POST /lists/{list_id}/segments/{segment_id}`).
pub const SEGMENT_MEMBERS: Shape = Shape::Object(&[
    field(
        "members_to_add",
        &Shape::Nullable(&Shape::Array(&Shape::Str)),
    ),
    field(
        "members_to_remove",
        &Shape::Nullable(&Shape::Array(&Shape::Str)),
    ),
]);

/// `CreateSegmentListsRequest` (`POST /lists/{list_id}/segments`).
pub const CREATE_SEGMENT: Shape = Shape::Object(&[
    required("name", &Shape::Str),
    field("options", &Shape::Any),
    field(
        "static_segment",
        &Shape::Nullable(&Shape::Array(&Shape::Str)),
    ),
]);

/// "Set campaign content" (`PUT /campaigns/{campaign_id}/content`): the template form takes an integer
/// `id` and optional `sections`; the other content forms are not modelled beyond their names.
pub const SET_CONTENT: Shape = Shape::Object(&[
    field("plain_text", &Shape::Str),
    field("html", &Shape::Str),
    field("url", &Shape::Str),
    field(
        "template",
        &Shape::Object(&[required("id", &Shape::Int), field("sections", &Shape::Any)]),
    ),
    field("archive", &Shape::Any),
    field("variate_contents", &Shape::Any),
]);
