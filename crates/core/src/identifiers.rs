//! Identifier normalisation and hashing per platform (platforms.md, "Cross-platform rules").
//!
//! Platforms match people by comparing hashes, so two spellings of one email or phone only match when both
//! sides normalise identically *before* hashing. Everything here is pure and deterministic: the connectors
//! call these functions to build what they send, and the engine compares the resulting fingerprints to
//! detect a changed identifier.
//!
//! Sources (the platforms' own normalisers; versions as checked):
//! - Phones: Google's libphonenumber through the `rlibphonenumber` crate (2.2.15, a port of
//!   libphonenumber 9.0.8 with metadata 9.0.42, differential-fuzzed against the C++ library; its
//!   regexes compile lazily per metadata entry, so parallel callers share no lock):
//!   the customer's country is the default region, a number typed with its country code but without `+`
//!   keeps the code once, `00`/IDD prefixes and extensions are handled by libphonenumber's parser, and a
//!   number libphonenumber does not consider valid is not sent.
//! - Google (Customer Match and Data Manager): `UserDataFormatter` of googleads/data-manager-java
//!   (commit b15171a, 2026-06-25) and its `UserDataFormatterTest`: Gmail/Googlemail local parts lose
//!   dots and `+tag`; given names lose `mr.`/`mrs.`/`ms.`/`dr.`, family names lose `jr.`, `sr.`, `ii`, ...
//!   suffixes; region codes are upper-case ISO alpha-2; postal codes are only trimmed.
//! - Meta: `CustomAudienceMixin.normalize_key` of facebook/facebook-python-business-sdk 25.0.2
//!   (`facebook_business/adobjects/helpers/customaudiencemixin.py`) and the Conversions API
//!   `serverside/normalize.py` of the same release, plus Meta's customer-file key table. Where the SDK and
//!   the documentation differ, the documentation wins and it is said here: the SDK's FN/LN/CT/ST keep
//!   ASCII letters only (`[^a-zA-Z]` removed) while Meta's table says "special characters in UTF-8", so
//!   letters of any script are kept (`García` → `garcía`).
//! - Countries: ISO 3166-1 from the `celes` crate plus a small table of common English aliases.

use celes::LookupTable;
use md5::Md5;
use rlibphonenumber::{PhoneNumberFormat, Region, PHONE_NUMBER_UTIL};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::OnceLock;

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

/// Normalises an email the way Google's `UserDataFormatter.formatEmailAddress` does before hashing: the
/// common rules, then for `gmail.com` and `googlemail.com` the `+tag` and every `.` of the local part are
/// dropped (Gmail delivers all those spellings to one inbox, and Google hashes the canonical one).
pub fn normalize_email_google(raw: &str) -> Option<String> {
    let email = normalize_email(raw)?;
    let (local, domain) = email.split_once('@')?;
    if domain != "gmail.com" && domain != "googlemail.com" {
        return Some(email);
    }
    let local = local.split('+').next().unwrap_or_default().replace('.', "");
    (!local.is_empty()).then(|| format!("{local}@{domain}"))
}

/// Normalises a phone number to E.164 (`+16502530000`) with libphonenumber's metadata, using the
/// customer's country (ISO alpha-2, or any spelling [`country_alpha2`] knows) as the default region for
/// numbers written nationally. Returns `None` for a number libphonenumber cannot parse or does not
/// consider valid for its region, so it is counted as an invalid phone rather than sent wrong.
pub fn normalize_phone(raw: &str, default_country: Option<&str>) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.len() > 64 {
        return None;
    }
    let region = default_country.and_then(phone_region);
    let number = PHONE_NUMBER_UTIL.parse(trimmed, region).ok()?;
    if !number.is_valid() {
        return None;
    }
    let e164 = number.format_as(PhoneNumberFormat::E164);
    (e164.starts_with('+') && e164.len() > 2).then(|| e164.into_owned())
}

/// The libphonenumber region of a country (any spelling [`country_alpha2`] knows). A region without
/// metadata is accepted: libphonenumber then parses only numbers written with their country code, as
/// with no region at all.
fn phone_region(country: &str) -> Option<Region> {
    Region::from_code(country_alpha2(country)?).ok()
}

/// Returns the E.164 calling code (digits, no `+`) of a country from libphonenumber's metadata, so callers
/// can tell whether a customer's country is known for phone matching.
pub fn country_calling_code(country: &str) -> Option<String> {
    PHONE_NUMBER_UTIL
        .get_country_code_for_region(phone_region(country)?)
        .map(|code| code.to_string())
}

/// Common English names and abbreviations of countries that are not ISO 3166-1 codes or names, keyed in
/// the folded form of [`fold_country`]. `UK` is reserved by ISO for the United Kingdom (`GB`).
const COUNTRY_ALIASES: &[(&str, &str)] = &[
    ("uk", "GB"),
    ("unitedkingdom", "GB"),
    ("greatbritain", "GB"),
    ("britain", "GB"),
    ("england", "GB"),
    ("scotland", "GB"),
    ("wales", "GB"),
    ("northernireland", "GB"),
    ("us", "US"),
    ("usa", "US"),
    ("unitedstates", "US"),
    ("unitedstatesofamerica", "US"),
    ("america", "US"),
    ("holland", "NL"),
    ("netherlands", "NL"),
    ("southkorea", "KR"),
    ("korea", "KR"),
    ("northkorea", "KP"),
    ("russia", "RU"),
    ("vietnam", "VN"),
    ("iran", "IR"),
    ("syria", "SY"),
    ("laos", "LA"),
    ("bolivia", "BO"),
    ("venezuela", "VE"),
    ("tanzania", "TZ"),
    ("moldova", "MD"),
    ("czechrepublic", "CZ"),
    ("czechia", "CZ"),
    ("uae", "AE"),
    ("unitedarabemirates", "AE"),
    ("taiwan", "TW"),
    ("macedonia", "MK"),
    ("northmacedonia", "MK"),
    ("ivorycoast", "CI"),
    ("côtedivoire", "CI"),
    ("curaçao", "CW"),
    ("réunion", "RE"),
    ("ålandislands", "AX"),
    ("saintbarthélemy", "BL"),
    ("sãotoméandpríncipe", "ST"),
    ("vatican", "VA"),
    ("palestine", "PS"),
    ("brunei", "BN"),
    ("turkey", "TR"),
    ("turkiye", "TR"),
    ("türkiye", "TR"),
    ("hongkong", "HK"),
    ("macau", "MO"),
    ("macao", "MO"),
    ("philippines", "PH"),
    ("dominicanrepublic", "DO"),
    ("bahamas", "BS"),
    ("gambia", "GM"),
];

/// Folds a country spelling for lookup: lower-case, letters and digits only (`U.S.A.` → `usa`,
/// `United States` → `unitedstates`), a leading `the` dropped.
fn fold_country(raw: &str) -> String {
    let folded: String = raw
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    match folded.strip_prefix("the") {
        Some(rest) if rest.len() > 3 => rest.to_string(),
        _ => folded,
    }
}

/// Every ISO name, alias and code `celes` knows plus [`COUNTRY_ALIASES`], folded, to its alpha-2 code.
fn country_table() -> &'static HashMap<String, &'static str> {
    static TABLE: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = HashMap::new();
        for c in celes::Country::get_countries() {
            table.insert(fold_country(c.long_name), c.alpha2);
            for alias in c.aliases.iter() {
                table.insert(fold_country(alias), c.alpha2);
            }
            table.insert(c.alpha3.to_ascii_lowercase(), c.alpha2);
        }
        // Codes last, so a two-letter alias can never shadow an ISO code.
        for c in celes::Country::get_countries() {
            table.insert(c.alpha2.to_ascii_lowercase(), c.alpha2);
        }
        for (alias, code) in COUNTRY_ALIASES {
            table.entry((*alias).to_string()).or_insert(*code);
        }
        table
    })
}

/// Maps a country as shops type it — ISO alpha-2 in any case, alpha-3, the English name, or a common
/// alias (`UK`, `U.S.A.`, `United States`, `Germany`) — to its upper-case ISO 3166-1 alpha-2 code, the
/// form the store keeps. `None` when the value names no country, so import can report the row.
pub fn country_alpha2(raw: &str) -> Option<&'static str> {
    let folded = fold_country(raw);
    if folded.is_empty() {
        return None;
    }
    country_table().get(&folded).copied()
}

/// Normalises a first or last name for platforms that take names as-is apart from case: trim and
/// lower-case; empty means unknown.
pub fn normalize_name(raw: &str) -> Option<String> {
    let name = raw.trim().to_lowercase();
    (!name.is_empty()).then_some(name)
}

/// Keeps the letters of any script, lower-cased, and drops everything else (spaces, punctuation,
/// digits): Meta's rule for FN, LN, CT and ST. Empty means unknown.
fn letters_lower(raw: &str) -> Option<String> {
    let out: String = raw
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphabetic())
        .collect();
    (!out.is_empty()).then_some(out)
}

/// Normalises a name Meta's way (FN, LN): lower-case with spaces and punctuation removed, letters of any
/// script kept (`Mary Ann` → `maryann`, `O'Brien` → `obrien`, `García Márquez` → `garcíamárquez`).
///
/// A deliberate departure from the Python SDK: `CustomAudienceMixin.normalize_key` (facebook-python-
/// business-sdk `94914f9`) keeps only `[a-zA-Z]`, which turns `García` into `garca`, a name nobody has.
/// Meta's own customer-file key table says of FN/LN "lowercase only, no punctuation; special characters
/// in UTF-8 format", i.e. accented and non-Latin letters are accepted as UTF-8, so they are kept (issue 9).
pub fn normalize_name_meta(raw: &str) -> Option<String> {
    letters_lower(raw)
}

/// Normalises a city Meta's way (CT): lower-case letters only, no spaces or punctuation
/// (`New York` → `newyork`, `München` → `münchen`).
pub fn normalize_city_meta(raw: &str) -> Option<String> {
    letters_lower(raw)
}

/// Normalises a state or region Meta's way (ST): lower-case letters only; in the US Meta takes the
/// two-letter ANSI abbreviation, so a US value that is not two letters is not sent (its hash could not
/// match).
pub fn normalize_region_meta(raw: &str, country: Option<&str>) -> Option<String> {
    let region = letters_lower(raw)?;
    let is_us = country.and_then(country_alpha2) == Some("US");
    if is_us && region.chars().count() != 2 {
        return None;
    }
    Some(region)
}

/// Normalises a gender Meta's way (GEN): `m` or `f`. Other values are not sent, as Meta matches only
/// those two.
pub fn normalize_gender_meta(raw: &str) -> Option<&'static str> {
    match raw.trim().to_lowercase().as_str() {
        "m" | "male" | "man" => Some("m"),
        "f" | "female" | "woman" => Some("f"),
        _ => None,
    }
}

/// Meta's birth-date keys DOBY (`YYYY`), DOBM (`MM`) and DOBD (`DD`), zero-padded as the SDK pads them.
pub fn meta_birth_date_parts(date: chrono::NaiveDate) -> (String, String, String) {
    (
        date.format("%Y").to_string(),
        date.format("%m").to_string(),
        date.format("%d").to_string(),
    )
}

/// Normalises a country to lower-case ISO alpha-2 (`DE` → `de`, `Germany` → `de`, `UK` → `gb`), the form
/// Meta hashes; anything that names no country is unknown.
pub fn normalize_country(raw: &str) -> Option<String> {
    country_alpha2(raw).map(str::to_ascii_lowercase)
}

/// Normalises a postal code Meta's way (ZIP), following Meta's "Hashing and Normalizing Data" table for
/// customer-file audiences ("use lowercase with no white space; for U.S. zip codes only use the first 5
/// digits; for U.K. zip codes use the Area/District/Sector format") and, where that table says nothing,
/// the SDK's normalisers (facebook-python-business-sdk `94914f9`, `CustomAudienceMixin.normalize_key` and
/// `serverside/normalize.py` `zp`: whitespace removed, the part before the first `-`):
/// - US: the first five digits (ZIP+4 dropped; fewer than five digits is not a ZIP);
/// - GB: area, district and sector, i.e. the full postcode without its two-letter unit
///   (`SW1A 1AA` → `sw1a1`; an already-cut `SW1A 1` stays `sw1a1`);
/// - elsewhere: lower-case, whitespace removed, cut at the first `-` as both SDK normalisers cut it.
///
/// Empty means unknown.
pub fn normalize_postal_code(raw: &str, country: Option<&str>) -> Option<String> {
    let code: String = raw
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let code = code.split('-').next().unwrap_or_default().to_string();
    if code.is_empty() {
        return None;
    }
    match country.and_then(country_alpha2) {
        Some("US") => {
            let digits: String = code.chars().take_while(char::is_ascii_digit).collect();
            (digits.len() >= 5).then(|| digits[..5].to_string())
        }
        Some("GB") => Some(uk_sector(&code)),
        _ => Some(code),
    }
}

/// A UK postcode (lower-case, no spaces) cut to area/district/sector: a full postcode ends in the
/// inward code `digit letter letter`, whose two letters (the unit) go; anything else is kept as typed.
fn uk_sector(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let n = chars.len();
    let full = n >= 5
        && chars[n - 3].is_ascii_digit()
        && chars[n - 2].is_ascii_alphabetic()
        && chars[n - 1].is_ascii_alphabetic()
        && chars[..n - 3].iter().all(char::is_ascii_alphanumeric);
    if full {
        chars[..n - 2].iter().collect()
    } else {
        code.to_string()
    }
}

/// Normalises a given name Google's way (`formatGivenName`): trim, lower-case, every `mr.`, `mrs.`,
/// `ms.` or `dr.` followed by a space or the end removed. `None` when nothing is left.
pub fn normalize_given_name_google(raw: &str) -> Option<String> {
    let lowered = raw.trim().to_lowercase();
    let mut out = String::with_capacity(lowered.len());
    let mut rest = lowered.as_str();
    'scan: while !rest.is_empty() {
        for title in ["mr.", "mrs.", "ms.", "dr."] {
            if let Some(after) = rest.strip_prefix(title) {
                match after.chars().next() {
                    None => {
                        rest = after;
                        continue 'scan;
                    }
                    Some(c) if c.is_whitespace() => {
                        rest = &after[c.len_utf8()..];
                        continue 'scan;
                    }
                    Some(_) => {}
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    let name = out.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// The family-name suffixes Google's `formatFamilyName` removes.
const FAMILY_SUFFIXES: &[&str] = &[
    "jr.", "sr.", "2nd", "3rd", "ii", "iii", "iv", "v", "vi", "cpa", "dc", "dds", "vm", "jd", "md",
    "phd",
];

/// Normalises a family name Google's way (`formatFamilyName`): trim, lower-case, and trailing suffixes
/// (`, Jr.`, ` Sr.`, ` III`, `, DDS`, ...) removed one after another. `None` when nothing is left.
pub fn normalize_family_name_google(raw: &str) -> Option<String> {
    let mut name = raw.trim().to_lowercase();
    loop {
        // The pattern's optional trailing whitespace.
        let body = match name.chars().last() {
            Some(c) if c.is_whitespace() => &name[..name.len() - c.len_utf8()],
            _ => name.as_str(),
        };
        let mut cut: Option<usize> = None;
        for suffix in FAMILY_SUFFIXES {
            let Some(before) = body.strip_suffix(suffix) else {
                continue;
            };
            let spaced = before.trim_end();
            let start = if spaced.ends_with(',') {
                Some(spaced.len() - 1)
            } else if spaced.len() < before.len() {
                Some(spaced.len())
            } else {
                None
            };
            if let Some(s) = start {
                cut = Some(cut.map_or(s, |c| c.min(s)));
            }
        }
        match cut {
            Some(c) => name.truncate(c),
            None => break,
        }
    }
    (!name.is_empty()).then_some(name)
}

/// Normalises a country Google's way (`formatRegionCode`): upper-case ISO alpha-2 (any spelling
/// [`country_alpha2`] knows is accepted first), sent unhashed as `countryCode` / `regionCode`.
pub fn normalize_region_code_google(raw: &str) -> Option<String> {
    country_alpha2(raw).map(str::to_string)
}

/// Normalises a postal code Google's way (`formatPostalCode`): trimmed only, sent unhashed.
pub fn normalize_postal_code_google(raw: &str) -> Option<String> {
    let code = raw.trim();
    (!code.is_empty()).then(|| code.to_string())
}

/// SHA-256 of the UTF-8 bytes as 64 lowercase hex digits: the hash every ad platform matches on.
pub fn sha256_hex(value: &str) -> String {
    lower_hex(&Sha256::digest(value.as_bytes()))
}

/// Lower-case hex of bytes, written straight into one pre-sized `String`: every hashed identifier goes
/// through here, and `hex::encode`'s per-character iterator was a visible share of a sync's CPU.
pub fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// True for 64 lowercase hex digits: the form every hashed identifier is sent in.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Meta's phone hash input: the E.164 digits without the `+` (`16502530000`).
pub fn meta_phone_input(e164: &str) -> String {
    e164.trim_start_matches('+').to_string()
}

/// Google's phone hash input: E.164 with the leading `+` (`+16502530000`).
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
    lower_hex(&Md5::digest(email.trim().to_lowercase().as_bytes()))
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
mod tests;
