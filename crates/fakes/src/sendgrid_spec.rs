//! Request bodies of the SendGrid endpoints the fake serves, copied from twilio/sendgrid-oai at commit
//! `dbe0e0d2e67a0c3c55b222d54df2acda2b9027a7` (2026-01-22): `spec/json/tsg_mc_contacts_v3.json`
//! (`UpdateContact`: `PUT /v3/marketing/contacts`, `contacts` required with 1..30,000 `ContactRequest`
//! items, `list_ids` an array of UUIDs; `ListContactByEmail`: `POST /v3/marketing/contacts/search/emails`,
//! `emails` required, each ≤ 100 characters) and `spec/json/tsg_mc_lists_v3.json` (`CreateMarketingList`:
//! `name` required, 1..100 characters; `ListMarketingList`: `page_size` 1..1000; `DeleteContact`:
//! `contact_ids` required). `maxLength`s are the spec's. The spec leaves the objects open; the fake closes
//! them (an undeclared contact field would be dropped or refused by SendGrid, and never means what the
//! sender wanted), so it is stricter than the spec there. `custom_fields` is taken as any object.
//!
//! A child of `sendgrid`: only its fake reads these tables.

use crate::schema::{field, required, Shape};

/// `PUT /v3/marketing/contacts` takes at most this many bytes ("up to 30,000 contacts, or 6MB of data,
/// whichever is lower"; read as 6,000,000 bytes, the stricter reading).
pub const MAX_UPSERT_BYTES: usize = 6_000_000;

/// `ContactRequest`.
const CONTACT_REQUEST: Shape = Shape::Object(&[
    field("address_line_1", &Shape::StrMax(100)),
    field("address_line_2", &Shape::StrMax(100)),
    field("alternate_emails", &Shape::Array(&Shape::StrMax(254))),
    field("city", &Shape::StrMax(60)),
    field("country", &Shape::StrMax(50)),
    field("email", &Shape::StrMax(254)),
    field("phone_number_id", &Shape::Str),
    field("external_id", &Shape::StrMax(254)),
    field("anonymous_id", &Shape::StrMax(254)),
    field("first_name", &Shape::StrMax(50)),
    field("last_name", &Shape::StrMax(50)),
    field("postal_code", &Shape::Str),
    field("state_province_region", &Shape::StrMax(50)),
    field("custom_fields", &Shape::Any),
]);

/// `UpdateContact` body (item counts checked by the handler).
pub const UPSERT: Shape = Shape::Object(&[
    field("list_ids", &Shape::Array(&Shape::Str)),
    required("contacts", &Shape::Array(&CONTACT_REQUEST)),
]);

/// `ListContactByEmail` body.
pub const SEARCH_EMAILS: Shape = Shape::Object(&[
    required("emails", &Shape::Array(&Shape::StrMax(100))),
    field("phone_number_id", &Shape::Str),
    field("external_id", &Shape::StrMax(254)),
    field("anonymous_id", &Shape::StrMax(254)),
]);

/// `CreateMarketingList` body (the 1-character minimum is checked by the handler).
pub const CREATE_LIST: Shape = Shape::Object(&[required("name", &Shape::StrMax(100))]);

/// Whether `id` has the UUID form the spec gives list ids (`format: uuid`, 36 characters).
pub fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}
