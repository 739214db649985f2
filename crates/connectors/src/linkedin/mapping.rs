//! Pure mapping of a contact to LinkedIn's user id: the normalised email (trim, lower-case), SHA-256 as
//! 64 lowercase hex, sent as `{idType: "SHA256_EMAIL", idValue}`. Contacts without an email are skipped.

use crate::model::{Contact, NoIdentifier, PreparedMember};
use serde_json::{json, Value};

/// Payload key (and LinkedIn `idType`) of the hashed email.
pub const SHA256_EMAIL: &str = "SHA256_EMAIL";

/// Maps a contact; `Err` (with the reason) without a valid email.
pub fn prepare(contact: &Contact) -> Result<PreparedMember, NoIdentifier> {
    crate::common::hashed_email_only(contact, SHA256_EMAIL)
}

/// The `userIds` of a stored payload; `None` if it is not a LinkedIn payload (a corrupted ledger entry).
pub fn user_ids(payload: &Value) -> Option<Value> {
    let h = crate::common::only_hash(payload, SHA256_EMAIL)?;
    Some(json!([{ "idType": SHA256_EMAIL, "idValue": h }]))
}
