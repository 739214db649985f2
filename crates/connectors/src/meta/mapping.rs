//! Pure mapping of a contact to Meta's customer-file row (platforms.md "Meta"): every value normalised, then
//! SHA-256 hex. The payload is an object keyed by Meta schema key with only the known values, so the stored
//! ledger payload is independent of the column order we send.
//!
//! Keys and rules (Meta's "Customer File Custom Audiences" key table and `CustomAudienceMixin.normalize_key`
//! of facebook-python-business-sdk 25.0.2; see `campaignd_core::identifiers` for each rule): `EMAIL`
//! trimmed + lower-case; `PHONE` E.164 digits without `+`; `FN`/`LN` lower-case letters of any script, no
//! spaces or punctuation; `CT` the same; `ST` the same, US two-letter codes only; `ZIP` lower-case without
//! spaces, US first five digits, UK area/district/sector (`SW1A 1AA` → `sw1a1`, Meta's key table),
//! elsewhere before the first `-` (both SDK normalisers); `COUNTRY` lower-case ISO alpha-2; `GEN` `m`/`f`;
//! `DOBY` `YYYY`, `DOBM` `MM`, `DOBD` `DD`.
//!
//! **Decision, FN/LN/CT/ST outside ASCII**: the SDK's `normalize_key` strips everything but `[a-zA-Z]`
//! (`García` → `garca`); Meta's key table says "special characters in UTF-8 format" are accepted, and
//! issue 9 asks for letters of any script, so campaignd keeps them (`García Márquez` → `garcíamárquez`),
//! tested in `campaignd_core::identifiers` and below. Not verifiable offline: whether Meta's matcher also
//! folds accents; if it does, the ASCII form would match more often.

use crate::model::{Contact, IdentifierKinds, NoIdentifier, PreparedMember};
use campaignd_core::identifiers::{
    country_alpha2, meta_birth_date_parts, meta_phone_input, normalize_city_meta,
    normalize_country, normalize_email, normalize_gender_meta, normalize_name_meta,
    normalize_phone, normalize_postal_code, normalize_region_meta, sha256_hex,
};
use serde_json::{Map, Value};

/// The columns of every `/users` and `/usersreplace` payload, in this order. Unknown values are `""`.
pub const SCHEMA: [&str; 12] = [
    "EMAIL", "PHONE", "FN", "LN", "COUNTRY", "ZIP", "CT", "ST", "GEN", "DOBY", "DOBM", "DOBD",
];

/// Maps a contact; `Err` when it has neither a valid email nor a valid phone (names, places and birth
/// dates alone are too weak to match on), with the reason.
pub fn prepare(contact: &Contact) -> Result<PreparedMember, NoIdentifier> {
    let country = contact.country.as_deref().and_then(country_alpha2);
    let email = contact.email.as_deref().and_then(normalize_email);
    let phone = contact
        .phone
        .as_deref()
        .and_then(|p| normalize_phone(p, country))
        .map(|e164| meta_phone_input(&e164));
    if email.is_none() && phone.is_none() {
        return Err(contact.no_identifier(true));
    }
    let text = |v: &Option<String>, f: fn(&str) -> Option<String>| v.as_deref().and_then(f);
    let first = text(&contact.first_name, normalize_name_meta);
    let last = text(&contact.last_name, normalize_name_meta);
    let zip = contact
        .postal_code
        .as_deref()
        .and_then(|z| normalize_postal_code(z, country));
    let kinds = IdentifierKinds {
        email: email.is_some(),
        phone: phone.is_some(),
        address: (first.is_some() || last.is_some()) && zip.is_some(),
    };
    let (doby, dobm, dobd) = match contact.birth_date.map(meta_birth_date_parts) {
        Some((y, m, d)) => (Some(y), Some(m), Some(d)),
        None => (None, None, None),
    };
    let values = [
        email,
        phone,
        first,
        last,
        country.and_then(normalize_country),
        zip,
        text(&contact.city, normalize_city_meta),
        contact
            .region
            .as_deref()
            .and_then(|r| normalize_region_meta(r, country)),
        contact
            .gender
            .as_deref()
            .and_then(normalize_gender_meta)
            .map(str::to_string),
        doby,
        dobm,
        dobd,
    ];
    let mut payload = Map::new();
    for (key, value) in SCHEMA.iter().zip(values) {
        if let Some(v) = value {
            payload.insert((*key).to_string(), Value::String(sha256_hex(&v)));
        }
    }
    Ok(PreparedMember::new(contact.customer_id.clone(), Value::Object(payload)).with_kinds(kinds))
}

/// One member's customer-file row: a value (or `""`) per [`SCHEMA`] column, borrowed from its stored
/// payload so a 10,000-row request is serialised without copying a hash.
pub type Row<'a> = [&'a str; SCHEMA.len()];

/// Turns a stored payload back into a row in [`SCHEMA`] order; `None` if the payload is not a Meta payload
/// (a corrupted ledger entry: empty, a key outside the schema, a value that is not a string), which the
/// client reports as a rejection.
pub fn row(payload: &Value) -> Option<Row<'_>> {
    let map = payload.as_object()?;
    let mut row = [""; SCHEMA.len()];
    let mut found = 0;
    for (cell, key) in row.iter_mut().zip(SCHEMA) {
        match map.get(key) {
            None => {}
            Some(Value::String(s)) => {
                *cell = s;
                found += 1;
            }
            Some(_) => return None,
        }
    }
    // Every key was one of the schema's: a payload with any other key is not ours.
    (found > 0 && found == map.len()).then_some(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_mapping_hashes_normalised_values() {
        let c = Contact {
            customer_id: "c1".into(),
            email: Some(" Test@Example.com ".into()),
            phone: Some("(650) 253-0000".into()),
            first_name: Some("Mary Ann".into()),
            last_name: Some("García Márquez".into()),
            country: Some("United States".into()),
            postal_code: Some("94025-1234".into()),
            city: Some("Menlo Park".into()),
            region: Some("CA".into()),
            gender: Some("Female".into()),
            birth_date: chrono::NaiveDate::from_ymd_opt(1990, 1, 9),
        };
        let m = prepare(&c).expect("usable");
        let r = row(&m.payload).expect("row");
        assert_eq!(
            r[0],
            "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
        );
        // sha256("16502530000")
        assert_eq!(
            r[1],
            "67d3cb9e9b1b64b913a5f2508beac167cfa7d3fb943f6a52e6767392d425a536"
        );
        let want = [
            "maryann",
            "garcíamárquez",
            "us",
            "94025",
            "menlopark",
            "ca",
            "f",
            "1990",
            "01",
            "09",
        ];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(r[i + 2], sha256_hex(w), "{} is {w:?}", SCHEMA[i + 2]);
        }
        assert_eq!(
            m.kinds,
            IdentifierKinds {
                email: true,
                phone: true,
                address: true
            }
        );
        assert_eq!(m.fingerprint.len(), 64);

        let mut changed = c.clone();
        changed.email = Some("other@example.com".into());
        assert_ne!(
            prepare(&changed).expect("usable").fingerprint,
            m.fingerprint
        );

        // "UK" is sent as gb, never as uk (issue 9).
        let uk = Contact {
            country: Some("UK".into()),
            phone: Some("020 7946 0958".into()),
            ..c.clone()
        };
        let uk = prepare(&uk).expect("usable");
        let r = row(&uk.payload).expect("row");
        assert_eq!(r[4], sha256_hex("gb"));
        assert_eq!(r[1], sha256_hex("442079460958"));

        let none = Contact {
            customer_id: "c2".into(),
            first_name: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(prepare(&none), Err(NoIdentifier::None));
        let bad_phone = Contact {
            phone: Some("12345".into()),
            ..none.clone()
        };
        assert_eq!(prepare(&bad_phone), Err(NoIdentifier::InvalidPhone));
        let bad_email = Contact {
            email: Some("nobody-at-example".into()),
            ..bad_phone
        };
        assert_eq!(prepare(&bad_email), Err(NoIdentifier::InvalidEmail));
        for corrupt in [
            serde_json::json!({"EMAIL_SHA": "x"}),
            serde_json::json!({"EMAIL": "x", "EMAIL_SHA": "x"}),
            serde_json::json!({"EMAIL": 1}),
            serde_json::json!({}),
            serde_json::json!(["x"]),
        ] {
            assert!(row(&corrupt).is_none(), "{corrupt}");
        }
    }
}
