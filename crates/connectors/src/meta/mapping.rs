//! Pure mapping of a contact to Meta's customer-file row (platforms.md "Meta"): every value normalised, then
//! SHA-256 hex. The payload is an object keyed by Meta schema key with only the known values, so the stored
//! ledger payload is independent of the column order we send.

use crate::model::{Contact, PreparedMember};
use campaignd_core::identifiers::{
    meta_phone_input, normalize_country, normalize_email, normalize_name_meta, normalize_phone,
    normalize_postal_code, sha256_hex,
};
use serde_json::{Map, Value};

/// The columns of every `/users` and `/usersreplace` payload, in this order. Unknown values are `""`.
pub const SCHEMA: [&str; 6] = ["EMAIL", "PHONE", "FN", "LN", "COUNTRY", "ZIP"];

/// Maps a contact; `None` when it has neither a valid email nor a valid phone (names, country and zip alone
/// are too weak to match on).
pub fn prepare(contact: &Contact) -> Option<PreparedMember> {
    let country = contact.country.as_deref();
    let email = contact
        .email
        .as_deref()
        .and_then(normalize_email)
        .map(|e| sha256_hex(&e));
    let phone = contact
        .phone
        .as_deref()
        .and_then(|p| normalize_phone(p, country))
        .map(|e164| sha256_hex(&meta_phone_input(&e164)));
    if email.is_none() && phone.is_none() {
        return None;
    }
    let first = contact
        .first_name
        .as_deref()
        .and_then(normalize_name_meta)
        .map(|n| sha256_hex(&n));
    let last = contact
        .last_name
        .as_deref()
        .and_then(normalize_name_meta)
        .map(|n| sha256_hex(&n));
    let ctry = country.and_then(normalize_country).map(|c| sha256_hex(&c));
    let zip = contact
        .postal_code
        .as_deref()
        .and_then(|z| normalize_postal_code(z, country))
        .map(|z| sha256_hex(&z));

    let mut payload = Map::new();
    for (key, value) in SCHEMA.iter().zip([email, phone, first, last, ctry, zip]) {
        if let Some(v) = value {
            payload.insert((*key).to_string(), Value::String(v));
        }
    }
    Some(PreparedMember::new(
        contact.customer_id.clone(),
        Value::Object(payload),
    ))
}

/// Turns a stored payload back into a row in [`SCHEMA`] order; `None` if the payload is not a Meta payload
/// (a corrupted ledger entry), which the client reports as a rejection.
pub fn row(payload: &Value) -> Option<Vec<String>> {
    let map = payload.as_object()?;
    if map.keys().any(|k| !SCHEMA.contains(&k.as_str())) || map.is_empty() {
        return None;
    }
    SCHEMA
        .iter()
        .map(|k| match map.get(*k) {
            None => Some(String::new()),
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_mapping_hashes_normalised_values() {
        let c = Contact {
            customer_id: "c1".into(),
            email: Some(" Test@Example.com ".into()),
            phone: Some("(555) 987-6543".into()),
            first_name: Some("Mary-Ann".into()),
            last_name: None,
            country: Some("US".into()),
            postal_code: Some("94025-1234".into()),
        };
        let m = prepare(&c).expect("usable");
        let r = row(&m.payload).expect("row");
        assert_eq!(
            r[0],
            "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
        );
        assert_eq!(
            r[1],
            "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e"
        );
        assert_eq!(r[2], sha256_hex("maryann"));
        assert_eq!(r[3], "");
        assert_eq!(r[4], sha256_hex("us"));
        assert_eq!(r[5], sha256_hex("94025"));
        assert_eq!(m.fingerprint.len(), 64);

        let mut changed = c.clone();
        changed.email = Some("other@example.com".into());
        assert_ne!(
            prepare(&changed).expect("usable").fingerprint,
            m.fingerprint
        );

        let none = Contact {
            customer_id: "c2".into(),
            first_name: Some("x".into()),
            ..Default::default()
        };
        assert!(prepare(&none).is_none());
        assert!(row(&serde_json::json!({"EMAIL_SHA": "x"})).is_none());
    }
}
