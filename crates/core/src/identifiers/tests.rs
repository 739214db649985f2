//! Table tests of the identifier rules. Cases marked with a source come from the platforms' own material:
//! - GOOGLE: googleads/data-manager-java commit b15171a (2026-06-25),
//!   `data-manager-util/src/test/java/com/google/ads/datamanager/util/UserDataFormatterTest.java`.
//! - META-SDK: facebook/facebook-python-business-sdk 25.0.2,
//!   `facebook_business/adobjects/serverside/tests/normalize_test.py` and the rules of
//!   `facebook_business/adobjects/helpers/customaudiencemixin.py` (`normalize_key`).
//!
//! Other cases are the shop spellings issue 9 reported, checked against libphonenumber's metadata.

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
        // Gmail rules are Google's only: everyone else keeps dots and tags.
        (
            "Jefferson.Loves.Hiking+x@gmail.com",
            Some("jefferson.loves.hiking+x@gmail.com"),
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
fn identifiers_google_email_table() {
    let cases: &[(&str, Option<&str>)] = &[
        // GOOGLE testFormatEmailAddress_validInputs
        ("QuinnY@example.com", Some("quinny@example.com")),
        ("QuinnY@EXAMPLE.com", Some("quinny@example.com")),
        (
            "user.name+NYC@Example.com",
            Some("user.name+nyc@example.com"),
        ),
        // GOOGLE testFormatEmailAddress_gmailVariations
        (
            "jefferson.Loves.hiking@gmail.com",
            Some("jeffersonloveshiking@gmail.com"),
        ),
        (
            "jefferson.Loves.hiking@googlemail.com",
            Some("jeffersonloveshiking@googlemail.com"),
        ),
        (
            "Cloudy.SanFrancisco+shopping@gmail.com",
            Some("cloudysanfrancisco@gmail.com"),
        ),
        (
            "Cloudy.SanFrancisco+shopping@googlemail.com",
            Some("cloudysanfrancisco@googlemail.com"),
        ),
        // GOOGLE testProcessEmailAddress_validInputs_hexEncoding variants
        ("  ALEXZ@example.com   ", Some("alexz@example.com")),
        ("  alexz@EXAMPLE.com   ", Some("alexz@example.com")),
        // GOOGLE testFormatEmailAddress_invalidInput_throwsException
        ("@example.com", None),
        ("quinn", None),
        // Nothing left of the local part.
        ("+promo@gmail.com", None),
        // Other domains are untouched, sub-domains of gmail.com included.
        ("a.b+c@mail.gmail.com", Some("a.b+c@mail.gmail.com")),
    ];
    for (raw, want) in cases {
        assert_eq!(
            normalize_email_google(raw).as_deref(),
            *want,
            "google email {raw:?}"
        );
    }
    // GOOGLE testHashString_validInputs (upper-case hex there; we send lower-case).
    assert_eq!(
        sha256_hex(&normalize_email_google("  alexz@example.com").expect("valid")),
        "509E933019BB285A134A9334B8BB679DFF79D0CE023D529AF4BD744D47B4FD8A".to_lowercase()
    );
}

#[test]
fn identifiers_phone_table() {
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        // GOOGLE testFormatPhoneNumber_validInputs (with the customer's country as region).
        ("1 800 555 0100", Some("US"), Some("+18005550100")),
        ("18005550100", Some("US"), Some("+18005550100")),
        ("+1 800-555-0100", None, Some("+18005550100")),
        ("441134960987", Some("GB"), Some("+441134960987")),
        ("+441134960987", None, Some("+441134960987")),
        ("+44-113-496-0987", Some("DE"), Some("+441134960987")),
        // Issue 9: the country code typed without `+` is kept once.
        ("44 20 7946 0961", Some("GB"), Some("+442079460961")),
        ("919876543212", Some("IN"), Some("+919876543212")),
        ("98765 43212", Some("IN"), Some("+919876543212")),
        // National numbers take the customer's country; trunk prefixes go.
        ("020 7946 0958", Some("GB"), Some("+442079460958")),
        (
            "020 7946 0958",
            Some("United Kingdom"),
            Some("+442079460958"),
        ),
        ("020 7946 0958", Some("UK"), Some("+442079460958")),
        ("(650) 253-0000", Some("US"), Some("+16502530000")),
        ("650.253.0000", Some("us"), Some("+16502530000")),
        ("1-650-253-0000", Some("US"), Some("+16502530000")),
        ("030 123456", Some("DE"), Some("+4930123456")),
        ("030 123456", Some("Germany"), Some("+4930123456")),
        ("0151 23456789", Some("DE"), Some("+4915123456789")),
        ("06 1234 5678", Some("IT"), Some("+390612345678")),
        ("0412 345 678", Some("AU"), Some("+61412345678")),
        ("612 345 678", Some("ES"), Some("+34612345678")),
        // International prefixes: `+`, `00`, the region's IDD (US `011`).
        ("011 44 20 7946 0958", Some("US"), Some("+442079460958")),
        ("0044 20 7946 0958", Some("DE"), Some("+442079460958")),
        ("+44 (0)20 7946 0958", Some("GB"), Some("+442079460958")),
        // Extensions are dropped.
        ("+1 650 253 0000 ext. 12", None, Some("+16502530000")),
        ("+1 650 253 0000 x12", None, Some("+16502530000")),
        // Invalid: not sent.
        ("6502530000", None, None),
        ("6502530000", Some("ZZ"), None),
        ("+1 555 987 6543", None, None),
        ("555", Some("US"), None),
        ("", Some("US"), None),
        ("abc", Some("US"), None),
        // GOOGLE testFormatPhoneNumber_invalidInput_throwsException
        ("+abc-DEF", None, None),
        ("++++", None, None),
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
    assert_eq!(country_calling_code("de").as_deref(), Some("49"));
    assert_eq!(country_calling_code("India").as_deref(), Some("91"));
    assert_eq!(country_calling_code("XX"), None);
}

#[test]
fn identifiers_per_platform_phone_inputs() {
    let e164 = normalize_phone("+1 (650) 253-0000", None).expect("valid");
    assert_eq!(meta_phone_input(&e164), "16502530000");
    assert_eq!(google_phone_input(&e164), "+16502530000");
    assert_eq!(google_phone_input("16502530000"), "+16502530000");
    // Values computed with `printf '...' | sha256sum`.
    assert_eq!(
        sha256_hex(&meta_phone_input(&e164)),
        "67d3cb9e9b1b64b913a5f2508beac167cfa7d3fb943f6a52e6767392d425a536"
    );
    assert_eq!(
        sha256_hex(&google_phone_input(&e164)),
        "3ad9f10d73829a714b1383221691d4dbf08484f3ceeae884f53053a1c7bb0a92"
    );
    // GOOGLE testHashString_validInputs
    assert_eq!(
        sha256_hex(&normalize_phone("+1 800-555-0100", None).expect("valid")),
        "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30"
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
    assert!(is_sha256_hex(&sha256_hex("x")));
    assert!(!is_sha256_hex(&sha256_hex("x").to_uppercase()));
    assert!(!is_sha256_hex("uk"));
    assert_eq!(
        mailchimp_member_id("Test@Example.com"),
        "55502f40dc8b7c769880b10874abc9d0"
    );
}

#[test]
fn identifiers_countries_table() {
    let cases: &[(&str, Option<&str>)] = &[
        ("DE", Some("DE")),
        (" us ", Some("US")),
        ("gb", Some("GB")),
        ("DEU", Some("DE")),
        ("usa", Some("US")),
        ("U.S.A.", Some("US")),
        ("U.S.", Some("US")),
        ("United States", Some("US")),
        ("united states of america", Some("US")),
        ("UK", Some("GB")),
        ("United Kingdom", Some("GB")),
        ("Great Britain", Some("GB")),
        ("Germany", Some("DE")),
        ("france", Some("FR")),
        ("The Netherlands", Some("NL")),
        ("Netherlands", Some("NL")),
        ("India", Some("IN")),
        ("South Korea", Some("KR")),
        ("Côte d'Ivoire", Some("CI")),
        ("Australia", Some("AU")),
        ("Canada", Some("CA")),
        ("Atlantis", None),
        ("XX", None),
        ("D1", None),
        ("", None),
        ("  ", None),
    ];
    for (raw, want) in cases {
        assert_eq!(country_alpha2(raw), *want, "country {raw:?}");
        assert_eq!(
            normalize_country(raw),
            want.map(str::to_ascii_lowercase),
            "meta country {raw:?}"
        );
    }
    // GOOGLE testFormatRegionCode_validInputs / invalidInputs
    let google: &[(&str, Option<&str>)] = &[
        ("us", Some("US")),
        ("us  ", Some("US")),
        ("  us  ", Some("US")),
        ("", None),
        ("  ", None),
        ("u", None),
        (" u2 ", None),
    ];
    for (raw, want) in google {
        assert_eq!(
            normalize_region_code_google(raw).as_deref(),
            *want,
            "google region {raw:?}"
        );
    }
}

#[test]
fn identifiers_meta_names_places_table() {
    let names: &[(&str, Option<&str>)] = &[
        ("  Mary ", Some("mary")),
        ("Mary Ann", Some("maryann")),
        ("Mary-Ann  Smith", Some("maryannsmith")),
        ("O'Brien", Some("obrien")),
        ("García Márquez", Some("garcíamárquez")),
        ("Jürgen", Some("jürgen")),
        ("  ", None),
        ("...", None),
        // META-SDK normalize_key: strip + lower-case first.
        ("\tJOHN\n", Some("john")),
    ];
    for (raw, want) in names {
        assert_eq!(
            normalize_name_meta(raw).as_deref(),
            *want,
            "meta name {raw:?}"
        );
    }
    assert_eq!(
        sha256_hex("maryann"),
        sha256_hex(&normalize_name_meta("Mary Ann").expect("name"))
    );
    assert_eq!(
        sha256_hex(&normalize_name_meta("García Márquez").expect("name")),
        "b58c578405e0cba820c23585208b3d18c30bd7abbf7c5550ddb69b80e84309ce"
    );
    // META-DOCS FN/LN "special characters in UTF-8 format" wins over META-SDK normalize_key's
    // `[^a-zA-Z]` removal: the SDK's ASCII-only form of the same names is not what we hash.
    let sdk_ascii_only = |raw: &str| -> String {
        raw.to_lowercase()
            .chars()
            .filter(char::is_ascii_alphabetic)
            .collect()
    };
    for raw in ["García Márquez", "Jürgen", "Zoë", "Ólafsdóttir", "Дмитрий"] {
        let ours = normalize_name_meta(raw).expect("name");
        assert_ne!(ours, sdk_ascii_only(raw), "{raw:?} keeps its letters");
        assert_eq!(
            ours.chars().count(),
            raw.chars().filter(|c| c.is_alphabetic()).count()
        );
    }

    let cities: &[(&str, Option<&str>)] = &[
        ("New York", Some("newyork")),
        ("Frankfurt am Main", Some("frankfurtammain")),
        ("St. Louis", Some("stlouis")),
        ("München", Some("münchen")),
        ("", None),
    ];
    for (raw, want) in cities {
        assert_eq!(normalize_city_meta(raw).as_deref(), *want, "city {raw:?}");
    }
    let regions: &[(&str, Option<&str>, Option<&str>)] = &[
        ("CA", Some("US"), Some("ca")),
        (" n.y. ", Some("US"), Some("ny")),
        ("California", Some("US"), None),
        ("Bayern", Some("DE"), Some("bayern")),
        ("Île-de-France", Some("FR"), Some("îledefrance")),
        ("", Some("US"), None),
    ];
    for (raw, country, want) in regions {
        assert_eq!(
            normalize_region_meta(raw, *country).as_deref(),
            *want,
            "region {raw:?}"
        );
    }
    let genders: &[(&str, Option<&str>)] = &[
        ("F", Some("f")),
        ("male", Some("m")),
        (" Female ", Some("f")),
        ("x", None),
        ("other", None),
        ("", None),
    ];
    for (raw, want) in genders {
        assert_eq!(normalize_gender_meta(raw), *want, "gender {raw:?}");
    }
    // META-SDK test_normalize_field_dobd / dobm / doby: zero-padded two digits, four-digit year.
    let d = chrono::NaiveDate::from_ymd_opt(1990, 1, 9).expect("date");
    assert_eq!(
        meta_birth_date_parts(d),
        ("1990".to_string(), "01".to_string(), "09".to_string())
    );

    let postal: &[(&str, Option<&str>, Option<&str>)] = &[
        ("94025-1234", Some("US"), Some("94025")),
        ("94025 1234", Some("US"), Some("94025")),
        ("94025", Some("us"), Some("94025")),
        ("94025", Some("United States"), Some("94025")),
        ("940", Some("US"), None),
        // META-DOCS "Hashing and Normalizing Data", ZIP: U.K. in Area/District/Sector format.
        ("SW1A 1AA", Some("GB"), Some("sw1a1")),
        ("sw1a1aa", Some("UK"), Some("sw1a1")),
        ("M1 1AE", Some("United Kingdom"), Some("m11")),
        ("EC1A 1", Some("GB"), Some("ec1a1")),
        // META-DOCS ZIP: lowercase, no white space (elsewhere).
        (" 10115 ", Some("DE"), Some("10115")),
        ("K1A 0B1", Some("CA"), Some("k1a0b1")),
        ("SW1A 1AA", None, Some("sw1a1aa")),
        // META-SDK normalize_key and serverside normalize.py zp: the part before the first `-`.
        ("1229-076", Some("PT"), Some("1229")),
        ("", Some("DE"), None),
    ];
    for (raw, country, want) in postal {
        assert_eq!(
            normalize_postal_code(raw, *country).as_deref(),
            *want,
            "postal {raw:?}"
        );
    }
}

#[test]
fn identifiers_google_names_postal_table() {
    // GOOGLE testFormatGivenName_validInputs / invalidInput
    let given: &[(&str, Option<&str>)] = &[
        (" Alex   ", Some("alex")),
        (" Mr. Alex   ", Some("alex")),
        (" Mrs. Alex   ", Some("alex")),
        (" Dr. Alex   ", Some("alex")),
        (" Alex Dr.", Some("alex")),
        (" Mralex   ", Some("mralex")),
        (" ", None),
        (" Mr. ", None),
    ];
    for (raw, want) in given {
        assert_eq!(
            normalize_given_name_google(raw).as_deref(),
            *want,
            "given {raw:?}"
        );
    }
    // GOOGLE testFormatFamilyName_validInputs / invalidInput
    let family: &[(&str, Option<&str>)] = &[
        (" Quinn   ", Some("quinn")),
        ("Quinn-Alex", Some("quinn-alex")),
        (" Quinn, Jr.   ", Some("quinn")),
        (" Quinn,Jr.   ", Some("quinn")),
        (" Quinn Sr.  ", Some("quinn")),
        ("quinn, jr. dds", Some("quinn")),
        ("quinn, jr., dds", Some("quinn")),
        ("Boardds", Some("boardds")),
        ("lacparm", Some("lacparm")),
        (" ", None),
        (", Jr. ", None),
        (",Jr.,DDS ", None),
    ];
    for (raw, want) in family {
        assert_eq!(
            normalize_family_name_google(raw).as_deref(),
            *want,
            "family {raw:?}"
        );
    }
    // GOOGLE testFormatPostalCode_validInputs / invalidInputs
    let postal: &[(&str, Option<&str>)] = &[
        ("94045", Some("94045")),
        (" 94045  ", Some("94045")),
        ("1229-076", Some("1229-076")),
        ("  1229-076  ", Some("1229-076")),
        ("", None),
        ("  ", None),
    ];
    for (raw, want) in postal {
        assert_eq!(
            normalize_postal_code_google(raw).as_deref(),
            *want,
            "google postal {raw:?}"
        );
    }
    assert_eq!(normalize_name("  Mary ").as_deref(), Some("mary"));
    assert_eq!(normalize_name("  "), None);
}

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
