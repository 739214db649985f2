//! Identifier checks and encodings several fakes apply the same way: the SHA-256 hex form the ad
//! platforms take hashes in, the E.164 phone form, the outline of an email address, and the base64 of
//! HTTP Basic credentials. A fake that refuses more than these (SendGrid refuses whitespace in an email)
//! adds its own rule on top, next to its spec citation.

/// Whether `s` is a SHA-256 hash as the ad platforms want it: 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Standard base64 (with padding), for HTTP Basic client authentication.
pub fn base64_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional), as an `Authorization: Basic` header carries it; `None`
/// for a character outside the alphabet.
pub fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in input.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Whether `e` has the outline every email platform checks: a non-empty local part, one `@`, and a
/// domain with a dot.
pub fn email_shape(e: &str) -> bool {
    match e.split_once('@') {
        Some((local, domain)) => !local.is_empty() && domain.contains('.') && !domain.contains('@'),
        None => false,
    }
}

/// Whether `p` is an E.164 number: `+` and 8 to 15 digits.
pub fn is_e164(p: &str) -> bool {
    p.strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_and_encodings() {
        let hash = "a".repeat(64);
        for (s, ok) in [
            (hash.as_str(), true),
            (&hash[..63], false),
            ("A".repeat(64).as_str(), false),
            ("g".repeat(64).as_str(), false),
        ] {
            assert_eq!(is_sha256_hex(s), ok, "{s}");
        }
        for (e, ok) in [
            ("a@example.com", true),
            ("@example.com", false),
            ("a@example", false),
            ("a@b@example.com", false),
            ("a.example.com", false),
        ] {
            assert_eq!(email_shape(e), ok, "{e}");
        }
        for (p, ok) in [
            ("+16502530000", true),
            ("16502530000", false),
            ("+1650", false),
            ("+1650253000000000", false),
            ("+1650-253-0000", false),
        ] {
            assert_eq!(is_e164(p), ok, "{p}");
        }
        for raw in ["", "f", "fo", "foo", "client:secret"] {
            let encoded = base64_encode(raw.as_bytes());
            assert_eq!(base64_decode(&encoded).as_deref(), Some(raw.as_bytes()));
        }
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
        assert_eq!(base64_decode("Zm9v!"), None);
    }
}
