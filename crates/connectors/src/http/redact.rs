//! Redaction of secret values from anything we format: platforms sometimes echo tokens in error bodies and
//! URLs carry `access_token=` parameters, so every message passes through here before it reaches an error
//! or a log line.
//!
//! A secret rarely comes back the way we configured it: a server echoing our request shows it inside a
//! JSON string (escaped), a form body or query string (URL-encoded), or an HTTP Basic credential (base64 of
//! `user:secret`, with OAuth2 URL-encoding both halves first, RFC 6749 §2.3.1). So the redactor masks
//! every *derived form* of each registered secret ([`derived_forms`]), the Basic credentials the kit
//! itself sent ([`Redactor::add_basic_credential`]) and the base64 of every `a:b` pair of registered
//! secrets (an OAuth2 client id and secret, sent by the token exchange). A secret cut in half by an
//! excerpt's truncation (`…`) is masked too.

use crate::secret::Secret;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use std::sync::{Arc, RwLock};

/// Replaces every registered secret value, in each of its derived forms, and any `access_token=` query
/// value, with `[REDACTED]`.
#[derive(Clone, Default)]
pub struct Redactor {
    inner: Arc<RwLock<Registry>>,
}

#[derive(Default)]
struct Registry {
    /// Registered secrets (deduplicated by value), for pair forms.
    secrets: Vec<Secret>,
    /// Every form to mask, longest first so a longer form is never half-masked by a shorter one.
    forms: Vec<Secret>,
}

impl Registry {
    fn push_forms(&mut self, forms: impl IntoIterator<Item = String>) {
        for f in forms {
            if f.len() >= MIN_LEN && !self.forms.iter().any(|s| s.expose() == f) {
                self.forms.push(Secret::new(f));
            }
        }
        self.forms
            .sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
    }
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor")
    }
}

const MASK: &str = "[REDACTED]";

/// Values shorter than this are not masked, so ordinary text is not mangled.
const MIN_LEN: usize = 4;

/// The forms in which `value` can come back to us: raw, JSON-escaped (serde's escapes, plus `\/` as
/// some servers write), URL-encoded (form style with `+`, and `%20` style in upper and lower case hex)
/// and base64 (standard and URL-safe alphabets, with and without padding).
pub fn derived_forms(value: &str) -> Vec<String> {
    let mut out = vec![value.to_string()];
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or(value)
        .to_string();
    out.push(json.replace('/', "\\/"));
    out.push(json);
    out.push(url::form_urlencoded::byte_serialize(value.as_bytes()).collect());
    let percent = percent_encode(value);
    out.push(percent.to_ascii_lowercase_hex());
    out.push(percent.into());
    out.extend(base64_forms(value.as_bytes()));
    out.sort();
    out.dedup();
    out
}

fn base64_forms(bytes: &[u8]) -> Vec<String> {
    vec![
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ]
}

/// The base64 forms of the HTTP Basic credential `user:secret`, as sent both plainly and OAuth2-style
/// (both halves form-URL-encoded first).
fn basic_forms(user: &str, secret: &str) -> Vec<String> {
    let enc = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    let mut out = base64_forms(format!("{user}:{secret}").as_bytes());
    out.extend(base64_forms(
        format!("{}:{}", enc(user), enc(secret)).as_bytes(),
    ));
    out
}

/// Percent-encodes every byte outside RFC 3986's unreserved set, upper-case hex.
fn percent_encode(value: &str) -> PercentEncoded {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    PercentEncoded(out)
}

/// A percent-encoded string, so its lower-case-hex twin can be derived without touching other letters.
struct PercentEncoded(String);

impl PercentEncoded {
    fn to_ascii_lowercase_hex(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        let mut chars = self.0.chars();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == '%' {
                for h in chars.by_ref().take(2) {
                    out.push(h.to_ascii_lowercase());
                }
            }
        }
        out
    }
}

impl From<PercentEncoded> for String {
    fn from(p: PercentEncoded) -> String {
        p.0
    }
}

impl Redactor {
    /// Registers a secret (idempotent) with all its derived forms, and the base64 `a:b` credentials it
    /// forms with every secret registered before it. Values shorter than 4 characters are ignored to avoid
    /// masking ordinary text.
    pub fn add(&self, secret: &Secret) {
        let value = secret.expose();
        if value.len() < MIN_LEN {
            return;
        }
        if let Ok(mut reg) = self.inner.write() {
            if reg.secrets.iter().any(|s| s.expose() == value) {
                return;
            }
            let mut forms = derived_forms(value);
            for other in &reg.secrets {
                forms.extend(basic_forms(other.expose(), value));
                forms.extend(basic_forms(value, other.expose()));
            }
            reg.push_forms(forms);
            reg.secrets.push(secret.clone());
        }
    }

    /// Registers the credentials of an `Authorization: Basic <credential>` header the kit sends: the
    /// base64 credential itself and the password half of what it decodes to (the user half may be a
    /// public constant such as Mailchimp's `anystring`).
    pub fn add_basic_credential(&self, credential: &str) {
        let credential = credential.trim();
        let mut forms = derived_forms(credential);
        let decoded = STANDARD
            .decode(credential)
            .ok()
            .and_then(|d| String::from_utf8(d).ok());
        if let Some((_, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            if password.len() >= MIN_LEN {
                forms.extend(derived_forms(password));
            }
        }
        if let Ok(mut reg) = self.inner.write() {
            if !reg.forms.iter().any(|f| f.expose() == credential) {
                reg.push_forms(forms);
            }
        }
    }

    /// Returns `text` with secrets masked.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        if let Ok(reg) = self.inner.read() {
            for f in reg.forms.iter() {
                if out.contains(f.expose()) {
                    out = out.replace(f.expose(), MASK);
                }
            }
            out = mask_truncated_tail(&out, &reg.forms);
        }
        mask_param(&out, "access_token=")
    }
}

/// An excerpt cut at `…` may end in the first part of a secret: mask that part too.
fn mask_truncated_tail(text: &str, forms: &[Secret]) -> String {
    let Some(head) = text.strip_suffix('…') else {
        return text.to_string();
    };
    let mut cut = None;
    for f in forms {
        let form = f.expose();
        let longest = (MIN_LEN..form.len())
            .rev()
            .filter(|&n| form.is_char_boundary(n))
            .find(|&n| head.ends_with(&form[..n]));
        if let Some(n) = longest {
            cut = Some(cut.map_or(n, |c: usize| c.max(n)));
        }
    }
    match cut {
        Some(n) => format!("{}{MASK}…", &head[..head.len() - n]),
        None => text.to_string(),
    }
}

fn mask_param(text: &str, param: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(param) {
        let (head, tail) = rest.split_at(pos + param.len());
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '&' || c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(tail.len());
        if end > 0 && !tail[..end].starts_with(MASK) {
            out.push_str(MASK);
        } else {
            out.push_str(&tail[..end]);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NASTY: &str = "tok/en+with=odd&chars\"and\\back";

    #[test]
    fn every_derived_form_is_masked() {
        let r = Redactor::default();
        r.add(&Secret::new(NASTY));
        let forms = derived_forms(NASTY);
        // raw, JSON (two), percent (upper and lower hex; form-URL coincides here), base64 (its four
        // variants coincide for 30 bytes of this alphabet).
        assert_eq!(forms.len(), 6, "{forms:?}");
        assert!(forms.contains(&"tok/en+with=odd&chars\\\"and\\\\back".to_string()));
        assert!(forms.contains(&"tok%2Fen%2Bwith%3Dodd%26chars%22and%5Cback".to_string()));
        for f in &forms {
            let out = r.redact(&format!("echo: <{f}> end"));
            assert_eq!(out, "echo: <[REDACTED]> end", "form {f}");
        }
    }

    #[test]
    fn basic_credentials_of_pairs_and_sent_headers_are_masked() {
        let r = Redactor::default();
        r.add(&Secret::new("client-id-1"));
        r.add(&Secret::new("client/secret"));
        // OAuth2 (oauth2 crate): base64(urlencode(id):urlencode(secret)).
        let oauth = STANDARD.encode("client-id-1:client%2Fsecret");
        let plain = STANDARD.encode("client-id-1:client/secret");
        for cred in [oauth, plain] {
            assert_eq!(r.redact(&format!("Basic {cred}")), "Basic [REDACTED]");
        }
        // Mailchimp: a public user name and the key.
        let mc = STANDARD.encode("anystring:abc123def-us21");
        r.add_basic_credential(&mc);
        assert_eq!(r.redact(&format!("Basic {mc}")), "Basic [REDACTED]");
        assert_eq!(r.redact("key abc123def-us21"), "key [REDACTED]");
    }

    #[test]
    fn a_secret_cut_by_truncation_is_masked() {
        let r = Redactor::default();
        r.add(&Secret::new("abcdefghijklmnop"));
        assert_eq!(r.redact("token abcdefgh…"), "token [REDACTED]…");
        assert_eq!(r.redact("token abc…"), "token abc…");
        assert_eq!(r.redact("plain text…"), "plain text…");
    }

    #[test]
    fn short_values_and_access_token_params() {
        let r = Redactor::default();
        r.add(&Secret::new("abc"));
        assert_eq!(r.redact("abc"), "abc");
        assert_eq!(
            r.redact("https://x/y?access_token=abc123&fields=id"),
            "https://x/y?access_token=[REDACTED]&fields=id"
        );
    }
}
