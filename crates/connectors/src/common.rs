//! Small helpers shared by the platform clients, so each platform states only what differs.

use std::future::Future;

use crate::error::{ConfigError, ConnectorError};
use crate::model::{
    AudienceRef, BatchOutcome, Contact, IdentifierKinds, NoIdentifier, PreparedMember, SubmittedJob,
};
use crate::secret::{Secret, SecretRef, SecretResolver};
use campaignd_core::identifiers::{is_sha256_hex, normalize_email, normalize_phone, sha256_hex};

/// Resolves the secret under `key` of destination `name`; a reference that cannot be read is a
/// [`ConfigError::Secret`] naming the key (never the value).
pub(crate) fn resolve_secret(
    name: &str,
    key: &str,
    r: &SecretRef,
    secrets: &SecretResolver,
) -> Result<Secret, ConfigError> {
    secrets.resolve(r).map_err(|e| ConfigError::Secret {
        destination: name.to_string(),
        key: key.to_string(),
        message: e.to_string(),
    })
}

/// Checks a configured `base_url` is an http(s) URL, so a typo is a config error at start rather than a
/// transport error on the first sync.
pub(crate) fn check_base_url(name: &str, base_url: &str) -> Result<(), ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        destination: name.to_string(),
        key: "base_url".into(),
        message,
    };
    let parsed = url::Url::parse(base_url).map_err(|e| invalid(format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("expected an http(s) URL".into()));
    }
    Ok(())
}

/// A maker of [`ConfigError::Invalid`] for destination `name`: `invalid(key, message)` names the key and
/// what is wrong with it, the shape every platform's `from_config` reports a bad value in.
pub(crate) fn invalid_key(name: &str) -> impl Fn(&str, String) -> ConfigError + '_ {
    move |key, message| ConfigError::Invalid {
        destination: name.to_string(),
        key: key.to_string(),
        message,
    }
}

/// Refuses a blank audience name before any request is made: platforms would either reject it with a
/// less helpful error or, worse, create an unnamed audience.
pub(crate) fn require_audience_name(destination: &str, name: &str) -> Result<(), ConnectorError> {
    if name.trim().is_empty() {
        return Err(ConnectorError::Invalid {
            destination: destination.to_string(),
            message: "empty audience name".into(),
        });
    }
    Ok(())
}

/// The common `find_or_create_audience` flow: reject a blank name, adopt an audience that already has
/// this name (so reruns never create duplicates), else create one. `what` names the remote object in
/// logs ("list", "DMP segment", ...). `create` is only polled when nothing was found.
pub(crate) async fn find_or_create<F, C>(
    destination: &str,
    name: &str,
    what: &str,
    find: F,
    create: C,
) -> Result<AudienceRef, ConnectorError>
where
    F: Future<Output = Result<Option<String>, ConnectorError>>,
    C: Future<Output = Result<String, ConnectorError>>,
{
    require_audience_name(destination, name)?;
    if let Some(id) = find.await? {
        tracing::info!(destination = %destination, audience = name, remote_id = %id, "adopting existing {what}");
        return Ok(AudienceRef {
            remote_id: id,
            adopted: true,
        });
    }
    let id = create.await?;
    tracing::info!(destination = %destination, audience = name, remote_id = %id, "created {what}");
    Ok(AudienceRef {
        remote_id: id,
        adopted: false,
    })
}

/// Sends `members` in slices of at most `cap` (the platform's per-request limit), one after another,
/// and sums their outcomes. Stops at the first error so a failed run is resent whole.
pub(crate) async fn in_chunks<'a, F, Fut>(
    members: &'a [PreparedMember],
    cap: usize,
    mut send: F,
) -> Result<BatchOutcome, ConnectorError>
where
    F: FnMut(&'a [PreparedMember]) -> Fut,
    Fut: Future<Output = Result<BatchOutcome, ConnectorError>>,
{
    let mut total = BatchOutcome::default();
    for chunk in members.chunks(cap) {
        total.merge(send(chunk).await?);
    }
    Ok(total)
}

/// The normalised email (trim, lower-case) and E.164 phone (the customer's country as default region) of a
/// contact, for platforms that take either; `Err` with the reason when neither is usable, so every such
/// connector counts "no identifier" the same way.
pub(crate) fn email_and_phone(
    contact: &Contact,
) -> Result<(Option<String>, Option<String>), NoIdentifier> {
    let email = contact.email.as_deref().and_then(normalize_email);
    let phone = contact
        .phone
        .as_deref()
        .and_then(|p| normalize_phone(p, contact.country.as_deref()));
    if email.is_none() && phone.is_none() {
        return Err(contact.no_identifier(true));
    }
    Ok((email, phone))
}

/// The normalised email of a contact, for email-only platforms; `Err` with the reason without one.
pub(crate) fn email_only(contact: &Contact) -> Result<String, NoIdentifier> {
    contact
        .email
        .as_deref()
        .and_then(normalize_email)
        .ok_or_else(|| contact.no_identifier(false))
}

/// The identifier kinds of an email-only platform's member.
pub(crate) const EMAIL_ONLY: IdentifierKinds = IdentifierKinds {
    email: true,
    phone: false,
    address: false,
};

/// The identifier kinds of a member carrying this email and phone (no address).
pub(crate) fn kinds_of(email: &Option<String>, phone: &Option<String>) -> IdentifierKinds {
    IdentifierKinds {
        email: email.is_some(),
        phone: phone.is_some(),
        address: false,
    }
}

/// The payload of an email-only hashed platform (LinkedIn, TikTok): `{key: SHA-256 hex of the normalised
/// email}`; `Err` (with the reason) without a valid email.
pub(crate) fn hashed_email_only(
    contact: &Contact,
    key: &str,
) -> Result<PreparedMember, NoIdentifier> {
    let email = email_only(contact)?;
    let payload = serde_json::json!({ key: sha256_hex(&email) });
    Ok(PreparedMember::new(contact.customer_id.clone(), payload).with_kinds(EMAIL_ONLY))
}

/// The hash of a stored [`hashed_email_only`] payload: `Some` only when `key` is its one field and holds
/// 64 lowercase hex; otherwise the payload is not this platform's (a corrupted ledger entry).
pub(crate) fn only_hash<'a>(payload: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    let map = payload.as_object()?;
    let h = map.get(key)?.as_str()?;
    (map.len() == 1 && is_sha256_hex(h)).then_some(h)
}

/// The `{"email_sha256", "phone_sha256"}` payload of the hashed customer-file shape the sandbox, webhook
/// and file destinations share: each SHA-256 hex of the normalised identifier, the phone as `phone_input`
/// spells it (with or without the `+`), only the known ones; with `plain`, the normalised `email` and
/// `phone` too. `Err` (with the reason) when the contact has neither.
pub(crate) fn hashed_email_and_phone(
    contact: &Contact,
    phone_input: fn(&str) -> String,
    plain: bool,
) -> Result<PreparedMember, NoIdentifier> {
    let (email, phone) = email_and_phone(contact)?;
    let kinds = kinds_of(&email, &phone);
    let mut payload = serde_json::Map::new();
    if let Some(e) = &email {
        payload.insert("email_sha256".into(), sha256_hex(e).into());
    }
    if let Some(p) = &phone {
        payload.insert("phone_sha256".into(), sha256_hex(&phone_input(p)).into());
    }
    if plain {
        payload.extend(email.map(|e| ("email".to_string(), e.into())));
        payload.extend(phone.map(|p| ("phone".to_string(), p.into())));
    }
    Ok(PreparedMember::new(contact.customer_id.clone(), payload.into()).with_kinds(kinds))
}

/// The submit-then-wait shortcut of a job-based batch (what `add_members` does on platforms whose
/// batches are remote jobs): submits `members`, then waits for the job with the rows it holds, and
/// returns one outcome with the up-front refusals included.
pub(crate) async fn submit_and_await<'a, S, SFut, W, WFut>(
    members: &'a [PreparedMember],
    submit: S,
    wait: W,
) -> Result<BatchOutcome, ConnectorError>
where
    S: FnOnce(&'a [PreparedMember]) -> SFut,
    SFut: Future<Output = Result<SubmittedJob, ConnectorError>>,
    W: FnOnce(String, Vec<PreparedMember>) -> WFut,
    WFut: Future<Output = Result<BatchOutcome, ConnectorError>>,
{
    let submitted = submit(members).await?;
    let mut outcome = BatchOutcome {
        accepted: 0,
        rejected: submitted.rejected.clone(),
    };
    let held = submitted.members_in_job(members);
    if let Some(job_id) = submitted.job_id {
        outcome.merge(wait(job_id, held).await?);
    }
    Ok(outcome)
}
