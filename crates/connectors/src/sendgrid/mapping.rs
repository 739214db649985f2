//! Pure mapping of a contact to a SendGrid contact: the normalised plain email (SendGrid takes emails
//! unhashed and matches contacts on them) plus first and last name as display fields (trimmed, case
//! kept: they appear in greetings, they are not match keys).

use crate::common::EMAIL_ONLY;
use crate::model::{Contact, NoIdentifier, PreparedMember};
use campaignd_core::identifiers::normalize_email;
use serde_json::{Map, Value};

/// Maps a contact; `Err` (with the reason) without a valid email.
pub fn prepare(contact: &Contact) -> Result<PreparedMember, NoIdentifier> {
    let email = crate::common::email_only(contact)?;
    let mut payload = Map::new();
    payload.insert("email".into(), Value::String(email));
    for (key, value) in [
        ("first_name", &contact.first_name),
        ("last_name", &contact.last_name),
    ] {
        if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            payload.insert(key.into(), Value::String(v.to_string()));
        }
    }
    Ok(
        PreparedMember::new(contact.customer_id.clone(), Value::Object(payload))
            .with_kinds(EMAIL_ONLY),
    )
}

/// The email of a stored payload; `None` if the payload is not a SendGrid payload.
pub fn email_of(payload: &Value) -> Option<String> {
    normalize_email(payload.get("email")?.as_str()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendgrid_mapping_keeps_plain_email_and_names() {
        let c = Contact {
            customer_id: "c1".into(),
            email: Some(" Ann.Lee@Example.COM".into()),
            first_name: Some(" Ann ".into()),
            last_name: Some("".into()),
            ..Contact::default()
        };
        let m = prepare(&c).expect("usable");
        assert_eq!(
            m.payload,
            serde_json::json!({"email": "ann.lee@example.com", "first_name": "Ann"})
        );
        assert_eq!(email_of(&m.payload).as_deref(), Some("ann.lee@example.com"));
        assert!(prepare(&Contact {
            customer_id: "c2".into(),
            phone: Some("+15551234567".into()),
            ..Contact::default()
        })
        .is_err());
    }
}
