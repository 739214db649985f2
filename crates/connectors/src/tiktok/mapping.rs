//! Pure mapping of a contact to TikTok's customer-file line: the normalised email (trim, lower-case),
//! SHA-256 as 64 lowercase hex, uploaded with `calculate_type = EMAIL_SHA256`. TikTok takes one id type
//! per audience, so phones are not sent (an audience is email-only).

use crate::model::{Contact, NoIdentifier, PreparedMember};
use serde_json::Value;

/// Payload key of the hashed email.
pub const EMAIL_SHA256: &str = "email_sha256";
/// The `calculate_type` of every file and audience this connector makes.
pub const CALCULATE_TYPE: &str = "EMAIL_SHA256";

/// Maps a contact; `Err` (with the reason) without a valid email.
pub fn prepare(contact: &Contact) -> Result<PreparedMember, NoIdentifier> {
    crate::common::hashed_email_only(contact, EMAIL_SHA256)
}

/// The hash line of a stored payload; `None` if it is not a TikTok payload (a corrupted ledger entry).
pub fn line(payload: &Value) -> Option<&str> {
    crate::common::only_hash(payload, EMAIL_SHA256)
}
