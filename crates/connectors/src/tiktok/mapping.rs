//! Pure mapping of a contact to TikTok's customer-file line: the normalised email (trim, lower-case),
//! SHA-256 as 64 lowercase hex, uploaded with `calculate_type = EMAIL_SHA256`. TikTok takes one id type
//! per audience, so phones are not sent (an audience is email-only).

use crate::common::EMAIL_ONLY;
use crate::model::{Contact, NoIdentifier, PreparedMember};
use campaignd_core::identifiers::sha256_hex;
use serde_json::{json, Value};

/// Payload key of the hashed email.
pub const EMAIL_SHA256: &str = "email_sha256";
/// The `calculate_type` of every file and audience this connector makes.
pub const CALCULATE_TYPE: &str = "EMAIL_SHA256";

/// Maps a contact; `Err` (with the reason) without a valid email.
pub fn prepare(contact: &Contact) -> Result<PreparedMember, NoIdentifier> {
    let email = crate::common::email_only(contact)?;
    Ok(PreparedMember::new(
        contact.customer_id.clone(),
        json!({ EMAIL_SHA256: sha256_hex(&email) }),
    )
    .with_kinds(EMAIL_ONLY))
}

/// The hash line of a stored payload; `None` if it is not a TikTok payload (a corrupted ledger entry).
pub fn line(payload: &Value) -> Option<&str> {
    let map = payload.as_object()?;
    if map.len() != 1 {
        return None;
    }
    let h = map.get(EMAIL_SHA256)?.as_str()?;
    (h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiktok_mapping_hashes_email_only() {
        let c = Contact {
            customer_id: "c".into(),
            email: Some(" A@B.com ".into()),
            ..Default::default()
        };
        let m = prepare(&c).expect("email");
        assert_eq!(line(&m.payload), Some(sha256_hex("a@b.com").as_str()));
        let phone_only = Contact {
            customer_id: "p".into(),
            phone: Some("+15551234567".into()),
            ..Default::default()
        };
        assert_eq!(prepare(&phone_only), Err(NoIdentifier::None));
        assert!(line(&json!({EMAIL_SHA256: "XYZ"})).is_none());
    }
}
