//! Pure mapping of a contact to LinkedIn's user id: the normalised email (trim, lower-case), SHA-256 as
//! 64 lowercase hex, sent as `{idType: "SHA256_EMAIL", idValue}`. Contacts without an email are skipped.

use crate::common::EMAIL_ONLY;
use crate::model::{Contact, NoIdentifier, PreparedMember};
use campaignd_core::identifiers::sha256_hex;
use serde_json::{json, Value};

/// Payload key (and LinkedIn `idType`) of the hashed email.
pub const SHA256_EMAIL: &str = "SHA256_EMAIL";

/// Maps a contact; `Err` (with the reason) without a valid email.
pub fn prepare(contact: &Contact) -> Result<PreparedMember, NoIdentifier> {
    let email = crate::common::email_only(contact)?;
    Ok(PreparedMember::new(
        contact.customer_id.clone(),
        json!({ SHA256_EMAIL: sha256_hex(&email) }),
    )
    .with_kinds(EMAIL_ONLY))
}

/// The `userIds` of a stored payload; `None` if it is not a LinkedIn payload (a corrupted ledger entry).
pub fn user_ids(payload: &Value) -> Option<Value> {
    let map = payload.as_object()?;
    if map.len() != 1 {
        return None;
    }
    let h = map.get(SHA256_EMAIL)?.as_str()?;
    let ok = h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| json!([{ "idType": SHA256_EMAIL, "idValue": h }]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linkedin_mapping_hashes_email() {
        let c = Contact {
            customer_id: "c".into(),
            email: Some(" A@B.com".into()),
            ..Default::default()
        };
        let m = prepare(&c).expect("email");
        assert_eq!(
            user_ids(&m.payload),
            Some(json!([{"idType": "SHA256_EMAIL", "idValue": sha256_hex("a@b.com")}]))
        );
        assert!(prepare(&Contact {
            customer_id: "x".into(),
            ..Default::default()
        })
        .is_err());
        assert!(user_ids(&json!({SHA256_EMAIL: "abc"})).is_none());
    }
}
