//! Pure mapping of a contact to a SendGrid contact: the normalised plain email (SendGrid takes emails
//! unhashed and matches contacts on them) plus first and last name as display fields (trimmed, case
//! kept: they appear in greetings, they are not match keys).
//!
//! Limits from twilio/sendgrid-oai `spec/json/tsg_mc_contacts_v3.json` at commit `dbe0e0d`
//! (`ContactRequest`): `email` ≤ 254 characters, but `POST /v3/marketing/contacts/search/emails`, the only
//! way to find a contact again for removal, takes emails of ≤ 100: a longer email could be added and never
//! removed (an opt-out could not be honoured), so it is no usable email here. `first_name` and
//! `last_name` ≤ 50 characters (a longer name is left out rather than cut: the contact still gets in).
//! One request takes at most 6 MB, and a batch is [`super::BATCH_SIZE`] contacts, so one serialised
//! contact is held to [`MAX_CONTACT_BYTES`]: names are left out (last name first) until it fits, and an
//! email that alone does not fit is not usable.

use crate::common::EMAIL_ONLY;
use crate::model::{Contact, NoIdentifier, PreparedMember};
use campaignd_core::identifiers::normalize_email;
use serde_json::{Map, Value};

/// The longest email sent: the search's `emails[]` `maxLength` (100; `ContactRequest.email` takes 254),
/// so every contact added can be found and removed.
pub const MAX_EMAIL_CHARS: usize = 100;
/// `ContactRequest.first_name` / `last_name` `maxLength`.
pub const MAX_NAME_CHARS: usize = 50;
/// Serialised bytes one contact may take, so [`super::BATCH_SIZE`] of them (with commas and the
/// `list_ids` envelope) stay under SendGrid's 6,000,000-byte request limit: 10,000 × 591 + 100 bytes.
pub const MAX_CONTACT_BYTES: usize = 590;

fn serialised_len(payload: &Map<String, Value>) -> usize {
    serde_json::to_vec(payload).map_or(usize::MAX, |b| b.len())
}

/// Maps a contact; `Err` (with the reason) without a valid email SendGrid takes.
pub fn prepare(contact: &Contact) -> Result<PreparedMember, NoIdentifier> {
    let email = crate::common::email_only(contact)?;
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err(NoIdentifier::InvalidEmail);
    }
    let mut payload = Map::new();
    payload.insert("email".into(), Value::String(email));
    if serialised_len(&payload) > MAX_CONTACT_BYTES {
        return Err(NoIdentifier::InvalidEmail);
    }
    for (key, value) in [
        ("first_name", &contact.first_name),
        ("last_name", &contact.last_name),
    ] {
        if let Some(v) = value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.chars().count() <= MAX_NAME_CHARS)
        {
            payload.insert(key.into(), Value::String(v.to_string()));
        }
    }
    for key in ["last_name", "first_name"] {
        if serialised_len(&payload) > MAX_CONTACT_BYTES {
            payload.remove(key);
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
    use crate::test_support::{email, email_contact};

    /// A contact without an email is the contract suite's (`contract::sendgrid`:
    /// `refuses_contacts_without_an_identifier`).
    #[test]
    fn sendgrid_mapping_keeps_plain_email_and_names() {
        let c = Contact {
            first_name: Some(" Ann ".into()),
            last_name: Some("".into()),
            ..email_contact(1)
        };
        let m = prepare(&c).expect("usable");
        assert_eq!(
            m.payload,
            serde_json::json!({"email": email(1), "first_name": "Ann"})
        );
        assert_eq!(email_of(&m.payload), Some(email(1)));
    }

    /// The spec's `maxLength`s and the 6 MB request budget, per field.
    #[test]
    fn sendgrid_mapping_respects_the_spec_limits() {
        let contact = |email: String, first: String, last: String| Contact {
            customer_id: "c".into(),
            email: Some(email),
            first_name: Some(first),
            last_name: Some(last),
            ..Contact::default()
        };
        let fifty = "a".repeat(50);
        let ok = prepare(&contact("a@x.io".into(), fifty.clone(), "Lee".into())).expect("fits");
        assert_eq!(ok.payload["first_name"], fifty.as_str());
        // 51 characters is over `maxLength`: left out, the contact still goes.
        let long = prepare(&contact("a@x.io".into(), "b".repeat(51), "Lee".into())).expect("fits");
        assert!(long.payload.get("first_name").is_none());
        assert_eq!(long.payload["last_name"], "Lee");
        // An email over 100 characters could not be searched for removal: not sent.
        let at_limit = format!("{}@{}.io", "l".repeat(60), "d".repeat(36));
        assert_eq!(at_limit.chars().count(), 100);
        assert!(prepare(&contact(at_limit.clone(), String::new(), String::new())).is_ok());
        let over = format!("{}@{}.io", "l".repeat(60), "d".repeat(37));
        assert!(matches!(
            prepare(&contact(over, String::new(), String::new())),
            Err(NoIdentifier::InvalidEmail)
        ));
        // 4-byte characters (200 bytes a name) fit beside a 100-character email ...
        let emoji = "😀".repeat(50);
        let m = prepare(&contact(at_limit.clone(), emoji.clone(), emoji)).expect("fits");
        assert!(m.payload.get("last_name").is_some());
        // ... names JSON escapes six bytes a character do not: the last name goes first.
        let escaped = format!("a{}", "\u{1}".repeat(49));
        let m = prepare(&contact(at_limit, escaped.clone(), escaped)).expect("email fits");
        assert!(serde_json::to_vec(&m.payload).expect("json").len() <= MAX_CONTACT_BYTES);
        assert!(m.payload.get("last_name").is_none());
        assert!(m.payload.get("first_name").is_some());
    }
}
