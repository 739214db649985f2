//! Pure mapping of a contact to a Mailchimp member: the normalised plain email (Mailchimp takes emails
//! unhashed) and its MD5 member id (platforms.md, "Mailchimp member id").

use crate::common::EMAIL_ONLY;
use crate::model::{Contact, NoIdentifier, PreparedMember};
use campaignd_core::identifiers::{mailchimp_member_id, normalize_email};
use serde_json::{json, Value};

/// Maps a contact; `Err` (with the reason) without a valid email (Mailchimp lists are email lists).
pub fn prepare(contact: &Contact) -> Result<PreparedMember, NoIdentifier> {
    let email = crate::common::email_only(contact)?;
    let hash = mailchimp_member_id(&email);
    Ok(PreparedMember::new(
        contact.customer_id.clone(),
        json!({"email": email, "subscriber_hash": hash}),
    )
    .with_kinds(EMAIL_ONLY))
}

/// The email of a stored payload; `None` if the payload is not a Mailchimp payload (a corrupted ledger
/// entry), which the client reports as a rejection.
pub fn email_of(payload: &Value) -> Option<String> {
    let email = payload.get("email")?.as_str()?;
    normalize_email(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailchimp_mapping_keeps_plain_lowercase_email_and_md5_id() {
        let c = Contact {
            customer_id: "c1".into(),
            email: Some(" Test@Example.COM ".into()),
            ..Contact::default()
        };
        let m = prepare(&c).expect("usable");
        assert_eq!(m.payload["email"], "test@example.com");
        // md5("test@example.com")
        assert_eq!(
            m.payload["subscriber_hash"],
            "55502f40dc8b7c769880b10874abc9d0"
        );
        assert_eq!(email_of(&m.payload).as_deref(), Some("test@example.com"));
        let phone_only = Contact {
            customer_id: "c2".into(),
            phone: Some("+15551234567".into()),
            ..Contact::default()
        };
        assert_eq!(prepare(&phone_only), Err(NoIdentifier::None));
        assert!(email_of(&json!({"EMAIL": "x"})).is_none());
    }
}
