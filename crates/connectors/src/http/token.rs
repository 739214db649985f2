//! Where access tokens come from. Static tokens (Meta system-user tokens, API keys) never refresh;
//! OAuth2 refresh-token platforms (Google, LinkedIn) exchange the refresh token through the `oauth2` crate,
//! driven by our own reqwest client, when the cached token expires or a 401 comes back.

use crate::error::ConnectorError;
use crate::secret::Secret;
use async_trait::async_trait;
use oauth2::basic::BasicClient;
use oauth2::{AuthType, AuthUrl, ClientId, ClientSecret, RefreshToken, TokenResponse, TokenUrl};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A source of access tokens for an [`super::Auth`] (bearer or named header), which the kit asks before
/// every attempt and refreshes once after a 401.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// The token to use now (fetching one if none is cached or it is about to expire).
    async fn access_token(&self) -> Result<Secret, ConnectorError>;

    /// Drops the cached token and obtains a new one after the platform refused it. `Ok(false)` means this
    /// source cannot refresh (a static token), so the 401 is final.
    async fn refresh(&self) -> Result<bool, ConnectorError>;
}

/// A token that never changes.
#[derive(Debug, Clone)]
pub struct StaticToken(Secret);

impl StaticToken {
    /// Wraps a resolved secret.
    pub fn new(token: Secret) -> Self {
        StaticToken(token)
    }
}

#[async_trait]
impl TokenSource for StaticToken {
    async fn access_token(&self) -> Result<Secret, ConnectorError> {
        Ok(self.0.clone())
    }

    async fn refresh(&self) -> Result<bool, ConnectorError> {
        Ok(false)
    }
}

/// OAuth2 refresh-token grant with a cached access token (refreshed 60 s before expiry, or after a 401).
/// A rotated refresh token returned by the server replaces the configured one for this process.
pub struct OAuth2RefreshToken {
    destination: String,
    client: BasicClient,
    http: reqwest::Client,
    refresh_token: Mutex<Secret>,
    current: Mutex<Option<(Secret, Option<Instant>)>>,
}

impl std::fmt::Debug for OAuth2RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2RefreshToken")
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TokenHttpError(String);

/// Longest token-endpoint reply read: a token response is a few hundred bytes; anything near this is not
/// one, and an endless reply must not fill memory.
const TOKEN_REPLY_LIMIT: u64 = 1024 * 1024;

impl OAuth2RefreshToken {
    /// Configures the grant against `token_url`.
    pub fn new(
        destination: &str,
        http: reqwest::Client,
        token_url: &str,
        client_id: &str,
        client_secret: Option<Secret>,
        refresh_token: Secret,
    ) -> Result<Self, ConnectorError> {
        let invalid = |m: String| ConnectorError::Invalid {
            destination: destination.to_string(),
            message: m,
        };
        let token_url = TokenUrl::new(token_url.to_string())
            .map_err(|e| invalid(format!("bad token_url: {e}")))?;
        // The auth URL is only used by the authorization-code flow, which campaignd never runs.
        let auth_url = AuthUrl::new("https://invalid.localhost/authorize".to_string())
            .map_err(|e| invalid(format!("bad auth url: {e}")))?;
        let client = BasicClient::new(
            ClientId::new(client_id.to_string()),
            client_secret.map(|s| ClientSecret::new(s.expose().to_string())),
            auth_url,
            Some(token_url),
        );
        Ok(OAuth2RefreshToken {
            destination: destination.to_string(),
            client,
            http,
            refresh_token: Mutex::new(refresh_token),
            current: Mutex::new(None),
        })
    }

    /// Sends `client_id` and `client_secret` as form fields of the token request instead of an HTTP Basic
    /// header (RFC 6749 §2.3.1 allows both). LinkedIn's token endpoint requires the form fields and answers
    /// a Basic-only refresh with `invalid_request`.
    pub fn with_credentials_in_body(mut self) -> Self {
        self.client = self.client.set_auth_type(AuthType::RequestBody);
        self
    }

    async fn fetch(&self) -> Result<Secret, ConnectorError> {
        let refresh = self.refresh_token.lock().await.clone();
        let http = self.http.clone();
        let response = self
            .client
            .exchange_refresh_token(&RefreshToken::new(refresh.expose().to_string()))
            .request_async(move |req| send_oauth_request(http, req))
            .await
            .map_err(|e| ConnectorError::Auth {
                destination: self.destination.clone(),
                operation: "refresh token".into(),
                // oauth2's messages describe the server error, never the request parameters.
                message: describe_token_error(&e),
            })?;
        let token = Secret::new(response.access_token().secret().clone());
        if let Some(rotated) = response.refresh_token() {
            *self.refresh_token.lock().await = Secret::new(rotated.secret().clone());
        }
        let expiry = response
            .expires_in()
            .map(|d| Instant::now() + d.saturating_sub(Duration::from_secs(60)));
        *self.current.lock().await = Some((token.clone(), expiry));
        Ok(token)
    }
}

fn describe_token_error<RE: std::error::Error>(
    e: &oauth2::RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
) -> String {
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => {
            format!("token endpoint refused the refresh: {r}")
        }
        oauth2::RequestTokenError::Request(r) => format!("token endpoint unreachable: {r}"),
        oauth2::RequestTokenError::Parse(p, _) => format!("token endpoint reply unreadable: {p}"),
        oauth2::RequestTokenError::Other(o) => format!("token refresh failed: {o}"),
    }
}

async fn send_oauth_request(
    http: reqwest::Client,
    req: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, TokenHttpError> {
    let method = reqwest::Method::from_bytes(req.method.as_str().as_bytes())
        .map_err(|e| TokenHttpError(format!("bad method: {e}")))?;
    let mut builder = http.request(method, req.url.as_str()).body(req.body);
    for (name, value) in req.headers.iter() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let resp = builder
        .send()
        .await
        .map_err(|e| TokenHttpError(e.without_url().to_string()))?;
    let status = oauth2::http::StatusCode::from_u16(resp.status().as_u16())
        .map_err(|e| TokenHttpError(format!("bad status: {e}")))?;
    let mut headers = oauth2::http::HeaderMap::new();
    for (name, value) in resp.headers() {
        if let (Ok(n), Ok(v)) = (
            oauth2::http::header::HeaderName::from_bytes(name.as_str().as_bytes()),
            oauth2::http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(n, v);
        }
    }
    let body = match super::read_limited(resp, TOKEN_REPLY_LIMIT).await {
        Ok(body) => body,
        Err(super::BodyError::TooLarge) => {
            return Err(TokenHttpError(format!(
                "reply body exceeds the {TOKEN_REPLY_LIMIT}-byte limit"
            )))
        }
        Err(super::BodyError::Transport(e)) => {
            return Err(TokenHttpError(e.without_url().to_string()))
        }
    };
    Ok(oauth2::HttpResponse {
        status_code: status,
        headers,
        body,
    })
}

#[async_trait]
impl TokenSource for OAuth2RefreshToken {
    async fn access_token(&self) -> Result<Secret, ConnectorError> {
        if let Some((token, expiry)) = self.current.lock().await.as_ref() {
            if expiry.is_none_or(|e| Instant::now() < e) {
                return Ok(token.clone());
            }
        }
        self.fetch().await
    }

    async fn refresh(&self) -> Result<bool, ConnectorError> {
        *self.current.lock().await = None;
        self.fetch().await.map(|_| true)
    }
}
