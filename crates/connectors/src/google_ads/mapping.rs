//! Pure mapping of a contact to Google's user identifiers, normalised as Google's own `UserDataFormatter`
//! does (googleads/data-manager-java commit b15171a, 2026-06-25; see `campaignd_core::identifiers`):
//! the email trimmed and lower-cased, Gmail/Googlemail local parts without dots and `+tag`; the phone as
//! E.164 **with** its `+`; each SHA-256 as 64 lowercase hex. When first name, last name, country and
//! postal code are all known, an address is added: names hashed (given-name titles and family-name
//! suffixes removed), country as upper-case ISO alpha-2 and postal code trimmed, both **unhashed**, as the
//! protos define them (Google Ads v25 `OfflineUserAddressInfo`: `hashed_first_name`, `hashed_last_name`,
//! `country_code`, `postal_code`; Data Manager v1 `AddressInfo`: `given_name`, `family_name`,
//! `region_code`, `postal_code`).
//!
//! The stored payload `{"hashedEmail", "hashedPhoneNumber", "addressInfo"}` (known values only) is shared
//! by both APIs; [`cm_identifiers`] and [`dm_identifiers`] turn it into each API's `userIdentifiers`.

use crate::model::{Contact, IdentifierKinds, NoIdentifier, PreparedMember};
use campaignd_core::identifiers::{
    country_alpha2, google_phone_input, is_sha256_hex, normalize_email_google,
    normalize_family_name_google, normalize_given_name_google, normalize_phone,
    normalize_postal_code_google, normalize_region_code_google, sha256_hex,
};
use serde_json::{json, Map, Value};

/// Payload key of the hashed email.
pub const EMAIL: &str = "hashedEmail";
/// Payload key of the hashed phone.
pub const PHONE: &str = "hashedPhoneNumber";
/// Payload key of the address (`hashedFirstName`, `hashedLastName`, `countryCode`, `postalCode`).
pub const ADDRESS: &str = "addressInfo";

/// Maps a contact; `Err` without a valid email or phone (an address alone is not sent), with the reason.
pub fn prepare(contact: &Contact) -> Result<PreparedMember, NoIdentifier> {
    let email = contact
        .email
        .as_deref()
        .and_then(normalize_email_google)
        .map(|e| sha256_hex(&e));
    let country = contact.country.as_deref().and_then(country_alpha2);
    let phone = contact
        .phone
        .as_deref()
        .and_then(|p| normalize_phone(p, country))
        .map(|e164| sha256_hex(&google_phone_input(&e164)));
    if email.is_none() && phone.is_none() {
        return Err(contact.no_identifier(true));
    }
    let address = (|| {
        let first = normalize_given_name_google(contact.first_name.as_deref()?)?;
        let last = normalize_family_name_google(contact.last_name.as_deref()?)?;
        let country = normalize_region_code_google(contact.country.as_deref()?)?;
        let postal = normalize_postal_code_google(contact.postal_code.as_deref()?)?;
        Some(json!({
            "hashedFirstName": sha256_hex(&first),
            "hashedLastName": sha256_hex(&last),
            "countryCode": country,
            "postalCode": postal,
        }))
    })();
    let kinds = IdentifierKinds {
        email: email.is_some(),
        phone: phone.is_some(),
        address: address.is_some(),
    };
    let mut payload = Map::new();
    for (key, value) in [(EMAIL, email), (PHONE, phone)] {
        if let Some(v) = value {
            payload.insert(key.to_string(), Value::String(v));
        }
    }
    if let Some(a) = address {
        payload.insert(ADDRESS.to_string(), a);
    }
    Ok(PreparedMember::new(contact.customer_id.clone(), Value::Object(payload)).with_kinds(kinds))
}

/// One identifier of a stored payload, checked.
enum Identifier {
    Email(String),
    Phone(String),
    Address {
        first: String,
        last: String,
        country: String,
        postal: String,
    },
}

/// The identifiers of a stored payload in a stable order; `None` if it is not a Google payload (a
/// corrupted ledger entry), which the client reports as a rejection.
fn checked(payload: &Value) -> Option<Vec<Identifier>> {
    let map = payload.as_object()?;
    if map.is_empty() || map.keys().any(|k| k != EMAIL && k != PHONE && k != ADDRESS) {
        return None;
    }
    let hash = |v: &Value| v.as_str().filter(|s| is_sha256_hex(s)).map(str::to_string);
    let mut out = Vec::new();
    if let Some(v) = map.get(EMAIL) {
        out.push(Identifier::Email(hash(v)?));
    }
    if let Some(v) = map.get(PHONE) {
        out.push(Identifier::Phone(hash(v)?));
    }
    if let Some(a) = map.get(ADDRESS) {
        let text = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
        let country = text("countryCode")?;
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return None;
        }
        out.push(Identifier::Address {
            first: hash(a.get("hashedFirstName")?)?,
            last: hash(a.get("hashedLastName")?)?,
            country,
            postal: text("postalCode").filter(|p| !p.is_empty())?,
        });
    }
    (!out.is_empty()).then_some(out)
}

/// The Customer Match (`OfflineUserDataJob`) `userIdentifiers` of a stored payload: one field per entry
/// (`hashedEmail`, `hashedPhoneNumber`, `addressInfo`); `None` for a corrupted ledger entry.
pub fn cm_identifiers(payload: &Value) -> Option<Vec<Value>> {
    Some(
        checked(payload)?
            .into_iter()
            .map(|id| match id {
                Identifier::Email(h) => json!({ "hashedEmail": h }),
                Identifier::Phone(h) => json!({ "hashedPhoneNumber": h }),
                Identifier::Address {
                    first,
                    last,
                    country,
                    postal,
                } => json!({ "addressInfo": {
                    "hashedFirstName": first,
                    "hashedLastName": last,
                    "countryCode": country,
                    "postalCode": postal,
                }}),
            })
            .collect(),
    )
}

/// The Data Manager (`AudienceMember.userData`) `userIdentifiers` of a stored payload: `emailAddress`,
/// `phoneNumber`, `address` (`givenName`, `familyName`, `regionCode`, `postalCode`); `None` for a
/// corrupted ledger entry.
pub fn dm_identifiers(payload: &Value) -> Option<Vec<Value>> {
    Some(
        checked(payload)?
            .into_iter()
            .map(|id| match id {
                Identifier::Email(h) => json!({ "emailAddress": h }),
                Identifier::Phone(h) => json!({ "phoneNumber": h }),
                Identifier::Address {
                    first,
                    last,
                    country,
                    postal,
                } => json!({ "address": {
                    "givenName": first,
                    "familyName": last,
                    "regionCode": country,
                    "postalCode": postal,
                }}),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact() -> Contact {
        Contact {
            customer_id: "c1".into(),
            email: Some(" Cloudy.SanFrancisco+shopping@Gmail.com ".into()),
            phone: Some("(650) 253-0000".into()),
            first_name: Some(" Dr. Alex ".into()),
            last_name: Some("Quinn, Jr.".into()),
            country: Some("usa".into()),
            postal_code: Some(" 94045 ".into()),
            ..Default::default()
        }
    }

    #[test]
    fn google_mapping_follows_the_user_data_formatter() {
        let m = prepare(&contact()).expect("usable");
        assert_eq!(m.payload[EMAIL], sha256_hex("cloudysanfrancisco@gmail.com"));
        assert_eq!(m.payload[PHONE], sha256_hex("+16502530000"));
        assert_eq!(
            m.payload[ADDRESS],
            json!({
                "hashedFirstName": sha256_hex("alex"),
                "hashedLastName": sha256_hex("quinn"),
                "countryCode": "US",
                "postalCode": "94045",
            })
        );
        assert_eq!(
            m.kinds,
            IdentifierKinds {
                email: true,
                phone: true,
                address: true
            }
        );
        let cm = cm_identifiers(&m.payload).expect("ids");
        assert_eq!(cm.len(), 3);
        assert_eq!(cm[2]["addressInfo"]["countryCode"], "US");
        let dm = dm_identifiers(&m.payload).expect("ids");
        assert_eq!(
            dm[0],
            json!({"emailAddress": sha256_hex("cloudysanfrancisco@gmail.com")})
        );
        assert_eq!(dm[1], json!({"phoneNumber": sha256_hex("+16502530000")}));
        assert_eq!(dm[2]["address"]["regionCode"], "US");
        assert_eq!(dm[2]["address"]["givenName"], sha256_hex("alex"));

        // Other domains keep dots and tags; no address without all four parts.
        let other = Contact {
            email: Some("first.last+x@example.com".into()),
            postal_code: None,
            ..contact()
        };
        let m = prepare(&other).expect("usable");
        assert_eq!(m.payload[EMAIL], sha256_hex("first.last+x@example.com"));
        assert!(m.payload.get(ADDRESS).is_none());
        assert!(!m.kinds.address);

        let none = Contact {
            customer_id: "c2".into(),
            first_name: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(prepare(&none), Err(NoIdentifier::None));
        assert!(cm_identifiers(&json!({"EMAIL": "x"})).is_none());
        assert!(dm_identifiers(&json!({EMAIL: "NOTHEX"})).is_none());
        let lower_country = json!({EMAIL: sha256_hex("a"), ADDRESS: {
            "hashedFirstName": sha256_hex("a"), "hashedLastName": sha256_hex("b"),
            "countryCode": "us", "postalCode": "1"}});
        assert!(cm_identifiers(&lower_country).is_none());
    }
}
