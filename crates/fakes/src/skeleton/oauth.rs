//! The OAuth2 authorization server the token-issuing fakes (Google, LinkedIn) share: the refresh-token
//! grant with client authentication by HTTP Basic or form fields, tokens that expire after a
//! configurable TTL, and a knob that expires every issued token at once. Each fake answers a refused
//! bearer token in its own error shape.

use super::credentials;
use super::identifiers::base64_encode;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// An OAuth2 authorization server for the refresh-token grant, shared by the Google and LinkedIn fakes:
/// client authentication by HTTP Basic or form fields, tokens that expire after a configurable TTL, and a
/// knob that expires every issued token at once (so the next API call gets a 401).
pub struct OAuthIssuer {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    prefix: String,
    form_only: bool,
    ttl_secs: AtomicU64,
    issued: AtomicUsize,
    tokens: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for OAuthIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthIssuer")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a token this issuer handed out.
    Invalid,
    /// Issued, but past its lifetime (or expired by the knob).
    Expired,
}

impl OAuthIssuer {
    /// An issuer accepting these client credentials and refresh token; issued tokens start with `prefix`.
    pub fn new(client_id: &str, client_secret: &str, refresh_token: &str, prefix: &str) -> Self {
        OAuthIssuer {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            refresh_token: refresh_token.to_string(),
            prefix: prefix.to_string(),
            form_only: false,
            ttl_secs: AtomicU64::new(3600),
            issued: AtomicUsize::new(0),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Accepts client credentials only as `client_id` / `client_secret` form fields, as LinkedIn's token
    /// endpoint does: a request carrying them only in an HTTP Basic header is refused with
    /// `invalid_request` (Microsoft Learn, "Refresh Tokens with OAuth 2.0", LinkedIn authentication docs).
    pub fn require_form_credentials(mut self) -> Self {
        self.form_only = true;
        self
    }

    fn tokens(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lifetime (`expires_in`) of tokens issued from now on.
    pub fn set_ttl(&self, ttl: Duration) {
        self.ttl_secs.store(ttl.as_secs(), Ordering::SeqCst);
    }

    /// Makes every token issued so far expired.
    pub fn expire_all(&self) {
        let past = Instant::now();
        for v in self.tokens().values_mut() {
            *v = past;
        }
    }

    /// Number of tokens issued.
    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }

    /// Checks `Authorization: Bearer <token>`.
    pub fn check_bearer(&self, headers: &HeaderMap) -> Result<(), TokenProblem> {
        let token = credentials(headers, "Bearer ").ok_or(TokenProblem::Missing)?;
        match self.tokens().get(token) {
            None => Err(TokenProblem::Invalid),
            Some(exp) if Instant::now() >= *exp => Err(TokenProblem::Expired),
            Some(_) => Ok(()),
        }
    }

    /// Handles a token request (`application/x-www-form-urlencoded`, RFC 6749 §6).
    pub fn token_endpoint(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        let oauth_error = |status: StatusCode, error: &str, description: &str| {
            (
                status,
                Json(json!({"error": error, "error_description": description})),
            )
                .into_response()
        };
        let form: HashMap<String, String> = match serde_urlencoded::from_bytes(body) {
            Ok(f) => f,
            Err(_) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "body must be form-encoded",
                )
            }
        };
        // RFC 6749 §2.3.1: the client id and secret are form-URL-encoded before the Basic encoding
        // (the oauth2 crate does so); a client that skips it is accepted for ids/secrets without
        // special characters, where both are the same.
        let enc =
            |s: &str| serde_urlencoded::to_string([("", s)]).unwrap_or_default()[1..].to_string();
        let basic = format!(
            "Basic {}",
            base64_encode(
                format!("{}:{}", enc(&self.client_id), enc(&self.client_secret)).as_bytes()
            )
        );
        let plain = format!(
            "Basic {}",
            base64_encode(format!("{}:{}", self.client_id, self.client_secret).as_bytes())
        );
        let sent = headers.get("authorization").and_then(|v| v.to_str().ok());
        let header_ok = sent == Some(basic.as_str()) || sent == Some(plain.as_str());
        let form_ok = form.get("client_id") == Some(&self.client_id)
            && form.get("client_secret") == Some(&self.client_secret);
        if self.form_only {
            for field in ["client_id", "client_secret"] {
                if !form.contains_key(field) {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        &format!("A required parameter \"{field}\" is missing"),
                    );
                }
            }
        }
        let authenticated = form_ok || (header_ok && !self.form_only);
        if !authenticated {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The OAuth client was not found.",
            );
        }
        if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Invalid grant_type",
            );
        }
        if form.get("refresh_token") != Some(&self.refresh_token) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Token has been expired or revoked.",
            );
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("{}{n:04}-{:x}", self.prefix, n * 7919 + 17);
        let ttl = self.ttl_secs.load(Ordering::SeqCst);
        self.tokens()
            .insert(token.clone(), Instant::now() + Duration::from_secs(ttl));
        Json(json!({"access_token": token, "expires_in": ttl, "token_type": "Bearer"}))
            .into_response()
    }
}
