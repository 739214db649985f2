//! Identifier normalisation and hashing per platform (platforms.md, "Cross-platform rules").
//!
//! Platforms match people by comparing hashes, so two spellings of one email or phone only match when both
//! sides normalise identically *before* hashing. Everything here is pure and deterministic: the connectors
//! call these functions to build what they send, and the engine compares the resulting fingerprints to
//! detect a changed identifier.
//!
//! Known simplifications (documented rather than guessed):
//! - Gmail dot-stripping is **not** applied: it is documented for Google enhanced conversions, not for
//!   Customer Match (platforms.md marks it "check").
//! - A national phone number that already starts with its country code but has no `+` / `00` (e.g.
//!   `4930123456` for a German customer) is taken as national, as the platforms' own normalisers do;
//!   the only exception is the NANP trunk prefix `1`, which coincides with the country code.

use md5::Md5;
use sha2::{Digest, Sha256};

/// Normalises an email the way every platform expects (trim, lower-case) and rejects values that do not
/// look like `local@domain.tld`, so garbage is counted as "no identifier" instead of hashed and sent.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    if local.is_empty() || domain.contains('@') || local.len() > 64 {
        return None;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels
            .iter()
            .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
    {
        return None;
    }
    let tld = labels[labels.len() - 1];
    if tld.chars().count() < 2
        || !tld.chars().all(char::is_alphanumeric)
        || tld.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return None;
    }
    Some(email)
}

/// One row of the calling-code table: the country, its E.164 calling code and its national trunk prefix
/// (what a locally written number starts with and E.164 drops), if any.
struct CountryCode {
    alpha2: &'static str,
    calling_code: &'static str,
    trunk: Option<&'static str>,
}

const fn cc(
    alpha2: &'static str,
    calling_code: &'static str,
    trunk: Option<&'static str>,
) -> CountryCode {
    CountryCode {
        alpha2,
        calling_code,
        trunk,
    }
}

/// Country calling codes and trunk prefixes of the shops' common markets. Italy, San Marino and the Vatican
/// keep their leading `0` in E.164, so they have no trunk prefix; NANP countries use `1`, Russia and
/// Kazakhstan `8`, Hungary `06`.
const COUNTRY_CODES: &[CountryCode] = &[
    cc("US", "1", Some("1")),
    cc("CA", "1", Some("1")),
    cc("PR", "1", Some("1")),
    cc("DO", "1", Some("1")),
    cc("JM", "1", Some("1")),
    cc("TT", "1", Some("1")),
    cc("MX", "52", None),
    cc("GB", "44", Some("0")),
    cc("IE", "353", Some("0")),
    cc("DE", "49", Some("0")),
    cc("AT", "43", Some("0")),
    cc("CH", "41", Some("0")),
    cc("LI", "423", None),
    cc("FR", "33", Some("0")),
    cc("MC", "377", None),
    cc("BE", "32", Some("0")),
    cc("NL", "31", Some("0")),
    cc("LU", "352", None),
    cc("IT", "39", None),
    cc("SM", "378", None),
    cc("VA", "39", None),
    cc("ES", "34", None),
    cc("PT", "351", None),
    cc("GR", "30", None),
    cc("CY", "357", None),
    cc("MT", "356", None),
    cc("DK", "45", None),
    cc("NO", "47", None),
    cc("SE", "46", Some("0")),
    cc("FI", "358", Some("0")),
    cc("IS", "354", None),
    cc("EE", "372", None),
    cc("LV", "371", None),
    cc("LT", "370", Some("8")),
    cc("PL", "48", None),
    cc("CZ", "420", None),
    cc("SK", "421", Some("0")),
    cc("HU", "36", Some("06")),
    cc("SI", "386", Some("0")),
    cc("HR", "385", Some("0")),
    cc("RS", "381", Some("0")),
    cc("RO", "40", Some("0")),
    cc("BG", "359", Some("0")),
    cc("UA", "380", Some("0")),
    cc("RU", "7", Some("8")),
    cc("KZ", "7", Some("8")),
    cc("TR", "90", Some("0")),
    cc("IL", "972", Some("0")),
    cc("AE", "971", Some("0")),
    cc("SA", "966", Some("0")),
    cc("QA", "974", None),
    cc("KW", "965", None),
    cc("BH", "973", None),
    cc("OM", "968", None),
    cc("JO", "962", Some("0")),
    cc("LB", "961", Some("0")),
    cc("EG", "20", Some("0")),
    cc("MA", "212", Some("0")),
    cc("DZ", "213", Some("0")),
    cc("TN", "216", None),
    cc("ZA", "27", Some("0")),
    cc("NG", "234", Some("0")),
    cc("GH", "233", Some("0")),
    cc("KE", "254", Some("0")),
    cc("TZ", "255", Some("0")),
    cc("UG", "256", Some("0")),
    cc("ET", "251", Some("0")),
    cc("IN", "91", Some("0")),
    cc("PK", "92", Some("0")),
    cc("BD", "880", Some("0")),
    cc("LK", "94", Some("0")),
    cc("CN", "86", Some("0")),
    cc("HK", "852", None),
    cc("MO", "853", None),
    cc("TW", "886", Some("0")),
    cc("JP", "81", Some("0")),
    cc("KR", "82", Some("0")),
    cc("SG", "65", None),
    cc("MY", "60", Some("0")),
    cc("TH", "66", Some("0")),
    cc("VN", "84", Some("0")),
    cc("PH", "63", Some("0")),
    cc("ID", "62", Some("0")),
    cc("AU", "61", Some("0")),
    cc("NZ", "64", Some("0")),
    cc("BR", "55", Some("0")),
    cc("AR", "54", Some("0")),
    cc("CL", "56", None),
    cc("CO", "57", None),
    cc("PE", "51", Some("0")),
    cc("UY", "598", Some("0")),
    cc("EC", "593", Some("0")),
    cc("VE", "58", Some("0")),
    cc("CR", "506", None),
    cc("PA", "507", None),
    cc("GT", "502", None),
];

/// Returns the E.164 calling code (digits, no `+`) of an ISO alpha-2 country, so callers can tell whether
/// a customer's country is supported for phone matching.
pub fn country_calling_code(alpha2: &str) -> Option<&'static str> {
    lookup_country(alpha2).map(|c| c.calling_code)
}

fn lookup_country(alpha2: &str) -> Option<&'static CountryCode> {
    let a = alpha2.trim();
    COUNTRY_CODES
        .iter()
        .find(|c| c.alpha2.eq_ignore_ascii_case(a))
}

/// Normalises a phone number to E.164 (`+15559876543`), using the customer's country (ISO alpha-2) as the
/// default region for numbers written nationally. Handles a leading `+`, the `00` (and NANP `011`)
/// international prefix, a national trunk prefix, a `(0)` written inside an international number, and
/// trailing extensions. Returns `None` when the number cannot be placed or has an implausible length,
/// so it is counted as "no identifier" rather than sent wrong.
pub fn normalize_phone(raw: &str, default_country: Option<&str>) -> Option<String> {
    let lowered = raw.trim().to_lowercase();
    // Drop extensions: everything from "ext", "x", "#" or ";" on.
    let cut = ["ext", "x", "#", ";"]
        .iter()
        .filter_map(|m| lowered.find(m))
        .min()
        .unwrap_or(lowered.len());
    let number = lowered[..cut].replace("(0)", "");
    let number = number.trim();
    let country = default_country.and_then(lookup_country);

    let (international, digits) = if let Some(rest) = number.strip_prefix('+') {
        (true, only_digits(rest))
    } else {
        let digits = only_digits(number);
        let nanp = country.is_some_and(|c| c.calling_code == "1");
        if let Some(rest) = digits.strip_prefix("00") {
            (true, rest.to_string())
        } else if nanp && digits.starts_with("011") {
            (true, digits[3..].to_string())
        } else {
            (false, digits)
        }
    };

    let e164_digits = if international {
        digits
    } else {
        let country = country?;
        let mut national = digits.as_str();
        match country.trunk {
            // NANP: the trunk prefix "1" only precedes a full 10-digit number.
            Some("1") if national.len() == 11 => {
                national = national.strip_prefix('1').unwrap_or(national);
            }
            Some("1") | None => {}
            Some(trunk) => {
                national = national.strip_prefix(trunk).unwrap_or(national);
            }
        }
        if national.len() < 4 {
            return None;
        }
        format!("{}{}", country.calling_code, national)
    };

    if !(8..=15).contains(&e164_digits.len()) || e164_digits.starts_with('0') {
        return None;
    }
    Some(format!("+{e164_digits}"))
}

fn only_digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Normalises a first or last name for platforms that take names as-is apart from case (Google's
/// `addressInfo`): trim and lower-case; empty means unknown.
pub fn normalize_name(raw: &str) -> Option<String> {
    let name = raw.trim().to_lowercase();
    (!name.is_empty()).then_some(name)
}

/// Normalises a name Meta's way: lower-case with punctuation removed (`O'Brien` → `obrien`); letters of any
/// script are kept (Meta wants UTF-8), runs of whitespace collapse to one space.
pub fn normalize_name_meta(raw: &str) -> Option<String> {
    let lowered = raw.trim().to_lowercase();
    let stripped: String = lowered
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect();
    let name = stripped.split_whitespace().collect::<Vec<_>>().join(" ");
    (!name.is_empty()).then_some(name)
}

/// Normalises a country to lower-case ISO alpha-2 (`DE` → `de`), the form Meta hashes; anything that is not
/// two ASCII letters is unknown.
pub fn normalize_country(raw: &str) -> Option<String> {
    let c = raw.trim();
    (c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic())).then(|| c.to_ascii_lowercase())
}

/// Normalises a postal code for hashing: lower-case without whitespace; for the US only the first five
/// digits (ZIP+4 dropped), as Meta asks. Empty means unknown.
pub fn normalize_postal_code(raw: &str, country: Option<&str>) -> Option<String> {
    let code: String = raw
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if code.is_empty() {
        return None;
    }
    let is_us = country.is_some_and(|c| c.trim().eq_ignore_ascii_case("us"));
    if is_us {
        let digits: String = code.chars().take_while(char::is_ascii_digit).collect();
        return (digits.len() >= 5).then(|| digits[..5].to_string());
    }
    Some(code)
}

/// SHA-256 of the UTF-8 bytes as 64 lowercase hex digits: the hash every ad platform matches on.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Meta's phone hash input: the E.164 digits without the `+` (`15559876543`).
pub fn meta_phone_input(e164: &str) -> String {
    e164.trim_start_matches('+').to_string()
}

/// Google's phone hash input: E.164 with the leading `+` (`+15559876543`).
pub fn google_phone_input(e164: &str) -> String {
    if e164.starts_with('+') {
        e164.to_string()
    } else {
        format!("+{e164}")
    }
}

/// Mailchimp's member id: MD5 hex of the lower-cased email. A path key Mailchimp requires, not a privacy
/// measure.
pub fn mailchimp_member_id(email: &str) -> String {
    hex::encode(Md5::digest(email.trim().to_lowercase().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_email_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("test@example.com", Some("test@example.com")),
            ("  Test@Example.COM \n", Some("test@example.com")),
            (
                "first.last+tag@sub.example.co.uk",
                Some("first.last+tag@sub.example.co.uk"),
            ),
            ("", None),
            ("   ", None),
            ("no-at-sign.example.com", None),
            ("a@b", None),
            ("a@b.c", None),
            ("@example.com", None),
            ("a@@example.com", None),
            ("a b@example.com", None),
            ("a@example..com", None),
            ("a@.example.com", None),
            ("a..b@example.com", None),
            ("a@example.123", None),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_email(raw).as_deref(), *want, "email {raw:?}");
        }
    }

    #[test]
    fn identifiers_phone_table() {
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            // Meta's published example.
            ("+1 (555) 987-6543", None, Some("+15559876543")),
            ("+1 (555) 987-6543", Some("DE"), Some("+15559876543")),
            ("(555) 987-6543", Some("US"), Some("+15559876543")),
            ("555.987.6543", Some("us"), Some("+15559876543")),
            ("1-555-987-6543", Some("US"), Some("+15559876543")),
            ("011 44 20 7946 0958", Some("US"), Some("+442079460958")),
            ("020 7946 0958", Some("GB"), Some("+442079460958")),
            ("+44 (0)20 7946 0958", Some("GB"), Some("+442079460958")),
            ("0044 20 7946 0958", Some("DE"), Some("+442079460958")),
            ("030 123456", Some("DE"), Some("+4930123456")),
            ("0151/234-56789", Some("DE"), Some("+4915123456789")),
            ("06 1234 5678", Some("IT"), Some("+390612345678")),
            ("8 912 345 67 89", Some("RU"), Some("+79123456789")),
            ("06 30 123 4567", Some("HU"), Some("+36301234567")),
            ("0412 345 678", Some("AU"), Some("+61412345678")),
            ("612 345 678", Some("ES"), Some("+34612345678")),
            ("+1 555 987 6543 ext. 12", None, Some("+15559876543")),
            ("+1 555 987 6543 x12", None, Some("+15559876543")),
            ("5559876543", None, None),
            ("5559876543", Some("ZZ"), None),
            ("555", Some("US"), None),
            ("", Some("US"), None),
            ("abc", Some("US"), None),
            ("+1234", None, None),
            ("+1234567890123456", None, None),
        ];
        for (raw, country, want) in cases {
            assert_eq!(
                normalize_phone(raw, *country).as_deref(),
                *want,
                "phone {raw:?} in {country:?}"
            );
        }
    }

    #[test]
    fn identifiers_per_platform_phone_inputs() {
        let e164 = normalize_phone("+1 (555) 987-6543", None).expect("valid");
        assert_eq!(meta_phone_input(&e164), "15559876543");
        assert_eq!(google_phone_input(&e164), "+15559876543");
        assert_eq!(google_phone_input("15559876543"), "+15559876543");
        // Values computed with `printf '...' | sha256sum`.
        assert_eq!(
            sha256_hex(&meta_phone_input(&e164)),
            "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e"
        );
        assert_eq!(
            sha256_hex(&google_phone_input(&e164)),
            "a6e349c7a8850f27ebcfa1865854e845c074da83ff19384d4b4c9df78357fa5a"
        );
    }

    #[test]
    fn identifiers_hashes() {
        assert_eq!(
            sha256_hex("test@example.com"),
            "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
        );
        let normalised = normalize_email("  TEST@example.com ").expect("valid");
        assert_eq!(sha256_hex(&normalised), sha256_hex("test@example.com"));
        assert_eq!(sha256_hex("").len(), 64);
        assert_eq!(
            mailchimp_member_id("Test@Example.com"),
            "55502f40dc8b7c769880b10874abc9d0"
        );
    }

    #[test]
    fn identifiers_names_country_postal() {
        let names: &[(&str, Option<&str>, Option<&str>)] = &[
            ("  Mary ", Some("mary"), Some("mary")),
            ("O'Brien", Some("o'brien"), Some("obrien")),
            (
                "Mary-Ann  Smith",
                Some("mary-ann  smith"),
                Some("maryann smith"),
            ),
            ("Jürgen", Some("jürgen"), Some("jürgen")),
            ("  ", None, None),
            ("...", Some("..."), None),
        ];
        for (raw, plain, meta) in names {
            assert_eq!(normalize_name(raw).as_deref(), *plain, "name {raw:?}");
            assert_eq!(
                normalize_name_meta(raw).as_deref(),
                *meta,
                "meta name {raw:?}"
            );
        }
        let countries: &[(&str, Option<&str>)] = &[
            ("DE", Some("de")),
            (" us ", Some("us")),
            ("Germany", None),
            ("D1", None),
            ("", None),
        ];
        for (raw, want) in countries {
            assert_eq!(normalize_country(raw).as_deref(), *want, "country {raw:?}");
        }
        let postal: &[(&str, Option<&str>, Option<&str>)] = &[
            ("94025-1234", Some("US"), Some("94025")),
            ("94025", Some("us"), Some("94025")),
            ("940", Some("US"), None),
            ("SW1A 1AA", Some("GB"), Some("sw1a1aa")),
            (" 10115 ", Some("DE"), Some("10115")),
            ("", Some("DE"), None),
        ];
        for (raw, country, want) in postal {
            assert_eq!(
                normalize_postal_code(raw, *country).as_deref(),
                *want,
                "postal {raw:?}"
            );
        }
        assert_eq!(country_calling_code("de"), Some("49"));
        assert_eq!(country_calling_code("XX"), None);
        assert!(COUNTRY_CODES.len() >= 60);
    }
}

/// The stored form of a suppression, so the sync can match it with an index lookup: emails trimmed and
/// lower-cased, phones reduced to their digits (the form `sync` compares customers' phones in), ids
/// trimmed; the kind lower-cased.
pub fn suppression_key(kind: &str, identifier: &str) -> (String, String) {
    let kind = kind.trim().to_ascii_lowercase();
    let identifier = match kind.as_str() {
        "email" => identifier.trim().to_lowercase(),
        "phone" => identifier.chars().filter(char::is_ascii_digit).collect(),
        _ => identifier.trim().to_string(),
    };
    (kind, identifier)
}

#[cfg(test)]
mod suppression_tests {
    use super::suppression_key;

    #[test]
    fn suppression_keys_are_normalised() {
        let cases = [
            (
                ("email", "  USER5@Example.com "),
                ("email", "user5@example.com"),
            ),
            (("Phone", "+1 (555) 987-6543"), ("phone", "15559876543")),
            (("customer_id", " c0009 "), ("customer_id", "c0009")),
        ];
        for ((kind, id), (want_kind, want_id)) in cases {
            assert_eq!(
                suppression_key(kind, id),
                (want_kind.to_string(), want_id.to_string())
            );
        }
    }
}
