//! How a destination proves who it is. The kit owns this value and applies it to every request it sends
//! (issue 10), so no client writes its own `Authorization` header, and a missing credential is a typed
//! error before anything goes on the wire instead of an empty `Bearer ` header.

use super::token::{StaticToken, TokenSource};
use crate::secret::Secret;
use reqwest::header::{HeaderName, HeaderValue};
use std::sync::Arc;

/// The credentials the kit puts on every request of one destination.
#[derive(Clone, Default)]
pub enum Auth {
    /// No credentials (webhooks sign their bodies; files send nothing).
    #[default]
    None,
    /// `Authorization: Bearer <token>` from a token source (a static key or an OAuth2 grant, which the
    /// kit refreshes once after a 401).
    Bearer(Arc<dyn TokenSource>),
    /// The token in a named header, after a fixed scheme prefix: TikTok's `Access-Token: <token>`,
    /// Klaviyo's `Authorization: Klaviyo-API-Key <key>`.
    Header {
        /// The header's name.
        name: HeaderName,
        /// Text before the token (empty for none).
        prefix: &'static str,
        /// Where the token comes from.
        source: Arc<dyn TokenSource>,
    },
    /// `Authorization: Basic base64(user:secret)` (Mailchimp's `anystring:<api key>`).
    Basic {
        /// The user part (not secret).
        user: String,
        /// The password part.
        secret: Secret,
    },
}

impl Auth {
    /// Bearer auth with a key that never changes.
    pub fn static_bearer(token: Secret) -> Self {
        Auth::Bearer(Arc::new(StaticToken::new(token)))
    }

    /// Bearer auth from a refreshing source.
    pub fn bearer(source: impl TokenSource + 'static) -> Self {
        Auth::Bearer(Arc::new(source))
    }

    /// A static key sent in header `name` after `prefix`.
    pub fn static_header(name: &'static str, prefix: &'static str, token: Secret) -> Self {
        Auth::Header {
            name: HeaderName::from_static(name),
            prefix,
            source: Arc::new(StaticToken::new(token)),
        }
    }

    /// Basic auth with `user` and a secret password.
    pub fn basic(user: &str, secret: Secret) -> Self {
        Auth::Basic {
            user: user.to_string(),
            secret,
        }
    }

    /// The source that can be refreshed after a 401, if this auth has one.
    pub(crate) fn source(&self) -> Option<&dyn TokenSource> {
        match self {
            Auth::Bearer(s) | Auth::Header { source: s, .. } => Some(s.as_ref()),
            Auth::None | Auth::Basic { .. } => None,
        }
    }

    /// The static secrets this auth holds, for the redactor.
    pub(crate) fn secret(&self) -> Option<&Secret> {
        match self {
            Auth::Basic { secret, .. } => Some(secret),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(..)"),
            Auth::Header { name, prefix, .. } => f
                .debug_struct("Header")
                .field("name", name)
                .field("prefix", prefix)
                .finish_non_exhaustive(),
            Auth::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .finish_non_exhaustive(),
        }
    }
}

/// Applies `auth` with the current `token` (from [`Auth::source`]) to a request. `Err` names what is
/// missing: an empty token or secret, or a token a header cannot carry; the caller turns it into a
/// credentials error and sends nothing.
pub(crate) fn apply(
    auth: &Auth,
    token: Option<&Secret>,
    req: reqwest::RequestBuilder,
) -> Result<reqwest::RequestBuilder, &'static str> {
    let present = |t: Option<&Secret>| -> Result<String, &'static str> {
        match t {
            Some(t) if !t.expose().trim().is_empty() => Ok(t.expose().to_string()),
            _ => Err("no access token to send (the token source gave an empty one)"),
        }
    };
    Ok(match auth {
        Auth::None => req,
        Auth::Bearer(_) => req.bearer_auth(present(token)?),
        Auth::Header { name, prefix, .. } => {
            let mut value = HeaderValue::from_str(&format!("{prefix}{}", present(token)?))
                .map_err(|_| "the access token has characters a header cannot carry")?;
            value.set_sensitive(true);
            req.header(name.clone(), value)
        }
        Auth::Basic { user, secret } => {
            if secret.expose().trim().is_empty() {
                return Err("no password to send for basic auth (the secret is empty)");
            }
            req.basic_auth(user, Some(secret.expose()))
        }
    })
}
