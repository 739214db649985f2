//! Pure mapping of a contact to a Klaviyo profile: plain normalised email, phone as E.164 with the `+`
//! (platforms.md, "phone for Klaviyo"), and first/last name as display fields (trimmed, case kept).

use crate::model::{Contact, NoIdentifier, PreparedMember};
use campaignd_core::identifiers::normalize_email;
use serde_json::{Map, Value};

/// Maps a contact; `Err` (with the reason) when it has neither a valid email nor a valid phone.
pub fn prepare(contact: &Contact) -> Result<PreparedMember, NoIdentifier> {
    let (email, phone) = crate::common::email_and_phone(contact)?;
    let kinds = crate::common::kinds_of(&email, &phone);
    let mut payload = Map::new();
    if let Some(e) = email {
        payload.insert("email".into(), Value::String(e));
    }
    if let Some(p) = phone {
        payload.insert("phone_number".into(), Value::String(p));
    }
    for (key, value) in [
        ("first_name", &contact.first_name),
        ("last_name", &contact.last_name),
    ] {
        if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            payload.insert(key.into(), Value::String(v.to_string()));
        }
    }
    Ok(PreparedMember::new(contact.customer_id.clone(), Value::Object(payload)).with_kinds(kinds))
}

/// The (email, phone) of a stored payload; `None` if it has neither (not a Klaviyo payload).
pub fn identifiers_of(payload: &Value) -> Option<(Option<String>, Option<String>)> {
    let email = payload
        .get("email")
        .and_then(Value::as_str)
        .and_then(normalize_email);
    let phone = payload
        .get("phone_number")
        .and_then(Value::as_str)
        .filter(|p| p.starts_with('+') && p.len() > 8 && p[1..].chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string);
    (email.is_some() || phone.is_some()).then_some((email, phone))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{email, email_contact};

    /// A contact with neither identifier and a payload that is not Klaviyo's are the contract suite's
    /// (`contract::klaviyo`: `refuses_contacts_without_an_identifier`, `rejects_corrupt_payloads_locally`).
    #[test]
    fn klaviyo_mapping_keeps_plain_email_and_e164_phone() {
        let c = Contact {
            phone: Some("(650) 253-0000".into()),
            country: Some("US".into()),
            first_name: Some("Ann".into()),
            ..email_contact(1)
        };
        let m = prepare(&c).expect("usable");
        assert_eq!(
            m.payload,
            serde_json::json!({"email": email(1), "phone_number": "+16502530000", "first_name": "Ann"})
        );
        let phone = Some("+16502530000".to_string());
        assert_eq!(
            identifiers_of(&m.payload),
            Some((Some(email(1)), phone.clone()))
        );
        let phone_only = Contact { email: None, ..c };
        let m = prepare(&phone_only).expect("phone is enough");
        assert_eq!(identifiers_of(&m.payload), Some((None, phone)));
    }
}
