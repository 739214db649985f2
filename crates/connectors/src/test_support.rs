//! Generators and setup shared by the platform tests, so each test file keeps only what is specific to
//! its platform (which contact fields it maps, which secrets it needs).

use crate::model::{Contact, PreparedMember};
use crate::{AudienceDestination, SecretResolver};
use campaignd_core::identifiers::sha256_hex;
use std::collections::HashMap;

/// A resolver over fixed `(env name, value)` pairs, standing in for the process environment.
pub(crate) fn secrets(pairs: &[(&str, &str)]) -> SecretResolver {
    SecretResolver::from_map(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
    )
}

/// Adds (or overrides) the keys of `extra` in a destination config `section`.
pub(crate) fn extend_section(section: &mut serde_json::Value, extra: &serde_json::Value) {
    if let (Some(s), Some(e)) = (section.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
}

/// Contact `i` with only an email, written un-normalised (padding and capitals) so tests see the
/// connector normalise it to [`email`].
pub(crate) fn email_contact(i: usize) -> Contact {
    Contact {
        customer_id: format!("c{i}"),
        email: Some(format!(" Person{i}@Example.com")),
        ..Contact::default()
    }
}

/// The normalised email of contact `i`.
pub(crate) fn email(i: usize) -> String {
    format!("person{i}@example.com")
}

/// The SHA-256 of [`email`], as hashing platforms receive it.
pub(crate) fn email_hash(i: usize) -> String {
    sha256_hex(&email(i))
}

/// Prepares contacts `range` built by `contact`, expecting every one to be usable.
pub(crate) fn prepare_all(
    d: &dyn AudienceDestination,
    range: std::ops::Range<usize>,
    contact: fn(usize) -> Contact,
) -> Vec<PreparedMember> {
    range
        .map(|i| d.prepare(&contact(i)).expect("usable"))
        .collect()
}
