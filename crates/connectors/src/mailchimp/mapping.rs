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
    use crate::test_support::{email, email_contact};

    /// A contact without an email and a payload that is not Mailchimp's are the contract suite's
    /// (`contract::mailchimp`: `refuses_contacts_without_an_identifier`, `rejects_corrupt_payloads_locally`).
    #[test]
    fn mailchimp_mapping_keeps_plain_lowercase_email_and_md5_id() {
        let m = prepare(&email_contact(1)).expect("usable");
        assert_eq!(m.payload["email"], email(1));
        // md5("person1@example.com")
        assert_eq!(
            m.payload["subscriber_hash"],
            "5c39b564d82e54df1f39bd2c9f3c0e11"
        );
        assert_eq!(email_of(&m.payload), Some(email(1)));
    }
}
