//! Pure mapping of a contact to a sandbox member, the way a hashed customer-file platform (Meta) wants it:
//! `{"email_sha256", "phone_sha256"}` with only the known values, each SHA-256 hex of the normalised
//! identifier (email trimmed and lower-cased; phone E.164 digits without `+`).

use crate::model::{Contact, NoIdentifier, PreparedMember};
use campaignd_core::identifiers::{is_sha256_hex, meta_phone_input};
use serde_json::Value;

/// Maps a contact; `Err` (with the reason) when it has neither a valid email nor a valid phone.
pub fn prepare(contact: &Contact) -> Result<PreparedMember, NoIdentifier> {
    crate::common::hashed_email_and_phone(contact, meta_phone_input, false)
}

/// The key a stored payload is kept under: the email hash, else `phone:<hash>`. `None` when the payload
/// is not a sandbox payload (a corrupted ledger entry), which the destination reports as a rejection.
pub fn member_key(payload: &Value) -> Option<String> {
    let map = payload.as_object()?;
    if map
        .keys()
        .any(|k| k != "email_sha256" && k != "phone_sha256")
    {
        return None;
    }
    let field = |k: &str| match map.get(k) {
        None => Some(None),
        Some(Value::String(s)) if is_sha256_hex(s) => Some(Some(s.clone())),
        Some(_) => None,
    };
    match (field("email_sha256")?, field("phone_sha256")?) {
        (Some(e), _) => Some(e),
        (None, Some(p)) => Some(format!("phone:{p}")),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use campaignd_core::identifiers::sha256_hex;

    #[test]
    fn sandbox_mapping_hashes_normalised_identifiers() {
        let c = Contact {
            customer_id: "c1".into(),
            email: Some(" Test@Example.com ".into()),
            phone: Some("(650) 253-0000".into()),
            country: Some("US".into()),
            ..Contact::default()
        };
        let m = prepare(&c).expect("usable");
        assert_eq!(
            m.payload["email_sha256"],
            "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
        );
        assert_eq!(m.payload["phone_sha256"], sha256_hex("16502530000"));
        assert_eq!(
            member_key(&m.payload).as_deref(),
            Some("973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b")
        );

        let phone_only = Contact {
            email: Some("not an email".into()),
            ..c.clone()
        };
        let m = prepare(&phone_only).expect("phone is enough");
        assert_eq!(
            member_key(&m.payload),
            Some(format!("phone:{}", sha256_hex("16502530000")))
        );

        assert!(prepare(&Contact {
            customer_id: "c2".into(),
            ..Contact::default()
        })
        .is_err());
        assert!(member_key(&serde_json::json!({"email_sha256": "x"})).is_none());
        assert!(member_key(&serde_json::json!({"EMAIL": sha256_hex("a")})).is_none());
    }
}
