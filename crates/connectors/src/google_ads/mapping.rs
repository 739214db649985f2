//! Pure mapping of a contact to Google's user identifiers (platforms.md "Cross-platform rules"): the email
//! normalised (trim, lower-case) and the phone as E.164 **with** its `+`, each SHA-256 as 64 lowercase
//! hex. The payload `{"hashedEmail", "hashedPhoneNumber"}` (known values only) is shared by both APIs;
//! the Data Manager client renames the keys to `emailAddress` / `phoneNumber`.
//!
//! Gmail dot-stripping is not applied (documented for enhanced conversions, not for Customer Match).

use crate::model::{Contact, PreparedMember};
use campaignd_core::identifiers::{
    google_phone_input, normalize_email, normalize_phone, sha256_hex,
};
use serde_json::{Map, Value};

/// Payload key of the hashed email.
pub const EMAIL: &str = "hashedEmail";
/// Payload key of the hashed phone.
pub const PHONE: &str = "hashedPhoneNumber";

/// Maps a contact; `None` without a valid email or phone.
pub fn prepare(contact: &Contact) -> Option<PreparedMember> {
    let email = contact
        .email
        .as_deref()
        .and_then(normalize_email)
        .map(|e| sha256_hex(&e));
    let phone = contact
        .phone
        .as_deref()
        .and_then(|p| normalize_phone(p, contact.country.as_deref()))
        .map(|e164| sha256_hex(&google_phone_input(&e164)));
    if email.is_none() && phone.is_none() {
        return None;
    }
    let mut payload = Map::new();
    for (key, value) in [(EMAIL, email), (PHONE, phone)] {
        if let Some(v) = value {
            payload.insert(key.to_string(), Value::String(v));
        }
    }
    Some(PreparedMember::new(
        contact.customer_id.clone(),
        Value::Object(payload),
    ))
}

fn is_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The (key, hash) identifiers of a stored payload, in a stable order; `None` if it is not a Google
/// payload (a corrupted ledger entry), which the client reports as a rejection.
pub fn identifiers(payload: &Value) -> Option<Vec<(&'static str, String)>> {
    let map = payload.as_object()?;
    if map.is_empty() || map.keys().any(|k| k != EMAIL && k != PHONE) {
        return None;
    }
    let mut out = Vec::new();
    for key in [EMAIL, PHONE] {
        match map.get(key) {
            None => {}
            Some(Value::String(s)) if is_hash(s) => out.push((key, s.clone())),
            Some(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_mapping_hashes_phone_with_plus() {
        let c = Contact {
            customer_id: "c1".into(),
            email: Some(" Test@Example.com ".into()),
            phone: Some("(555) 987-6543".into()),
            country: Some("US".into()),
            ..Default::default()
        };
        let m = prepare(&c).expect("usable");
        assert_eq!(m.payload[EMAIL], sha256_hex("test@example.com"));
        assert_eq!(m.payload[PHONE], sha256_hex("+15559876543"));
        let ids = identifiers(&m.payload).expect("ids");
        assert_eq!(ids.len(), 2);
        let none = Contact {
            customer_id: "c2".into(),
            first_name: Some("x".into()),
            ..Default::default()
        };
        assert!(prepare(&none).is_none());
        assert!(identifiers(&serde_json::json!({"EMAIL": "x"})).is_none());
        assert!(identifiers(&serde_json::json!({EMAIL: "NOTHEX"})).is_none());
    }
}
