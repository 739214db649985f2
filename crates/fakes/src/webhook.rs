//! A fake webhook receiver for campaignd's own contract: verifies `X-Campaignd-Signature` (HMAC-SHA256 of
//! the raw body), requires `Idempotency-Key`, drops resent batches by key, and keeps members per audience
//! by customer id.

use crate::skeleton::{FakeServer, Faults, RequestLog};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Inner {
    seen_keys: HashSet<String>,
    batches: Vec<Value>,
    duplicates: usize,
    bad_signatures: usize,
    members: BTreeMap<String, BTreeMap<String, Value>>,
}

struct HookState {
    secret: Vec<u8>,
    reject_next: AtomicU32,
    reject_status: AtomicU32,
    inner: Mutex<Inner>,
}

impl HookState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The fake receiver; POST batches to [`FakeWebhook::url`].
pub struct FakeWebhook {
    server: FakeServer,
    state: Arc<HookState>,
}

impl std::fmt::Debug for FakeWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeWebhook")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl FakeWebhook {
    /// Starts a receiver sharing `secret` with the sender.
    pub async fn start(secret: &str) -> std::io::Result<FakeWebhook> {
        let state = Arc::new(HookState {
            secret: secret.as_bytes().to_vec(),
            reject_next: AtomicU32::new(0),
            reject_status: AtomicU32::new(422),
            inner: Mutex::new(Inner::default()),
        });
        let router = Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let throttle = Arc::new(|| (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response());
        let server = FakeServer::start("", router, throttle).await?;
        Ok(FakeWebhook { server, state })
    }

    /// The URL to configure as the webhook's `url`.
    pub fn url(&self) -> String {
        format!("{}/hook", self.server.base_url())
    }

    /// Generic fault knobs.
    pub fn faults(&self) -> &Faults {
        self.server.faults()
    }

    /// Requests received.
    pub fn requests(&self) -> &RequestLog {
        self.server.requests()
    }

    /// Answers the next `n` correctly signed batches with `status` (a 4xx) and an error body.
    pub fn reject_next(&self, n: u32, status: u16) {
        self.state
            .reject_status
            .store(u32::from(status), Ordering::SeqCst);
        self.state.reject_next.store(n, Ordering::SeqCst);
    }

    /// Current members of an audience, by customer id.
    pub fn members(&self, audience: &str) -> BTreeMap<String, Value> {
        self.state
            .lock()
            .members
            .get(audience)
            .cloned()
            .unwrap_or_default()
    }

    /// Batches applied (duplicates excluded), as received.
    pub fn batches(&self) -> Vec<Value> {
        self.state.lock().batches.clone()
    }

    /// Batches dropped as resends of an already-applied idempotency key.
    pub fn duplicates(&self) -> usize {
        self.state.lock().duplicates
    }

    /// Requests refused for a missing or wrong signature.
    pub fn bad_signatures(&self) -> usize {
        self.state.lock().bad_signatures
    }
}

fn verify(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn receive(State(st): State<Arc<HookState>>, headers: HeaderMap, body: Bytes) -> Response {
    let sig = headers
        .get("x-campaignd-signature")
        .and_then(|v| v.to_str().ok());
    if !verify(&st.secret, &body, sig) {
        st.lock().bad_signatures += 1;
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "bad signature"})),
        )
            .into_response();
    }
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "Idempotency-Key required"})),
        )
            .into_response();
    };
    let batch: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("bad JSON: {e}")})),
            )
                .into_response()
        }
    };
    let action = batch
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let audience = batch
        .get("audience")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let members = batch.get("members").and_then(Value::as_array).cloned();
    let (Some(members), true, false) = (
        members,
        matches!(action.as_str(), "add" | "remove"),
        audience.is_empty(),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "need audience, action add|remove and members"})),
        )
            .into_response();
    };
    if st
        .reject_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        let status = u16::try_from(st.reject_status.load(Ordering::SeqCst))
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok());
        return (
            status.unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
            Json(json!({"error": "receiver refused this batch"})),
        )
            .into_response();
    }
    let mut inner = st.lock();
    if !inner.seen_keys.insert(key) {
        inner.duplicates += 1;
        return Json(json!({"status": "duplicate"})).into_response();
    }
    let set = inner.members.entry(audience).or_default();
    for m in &members {
        let Some(cid) = m.get("customer_id").and_then(Value::as_str) else {
            continue;
        };
        if action == "add" {
            set.insert(cid.to_string(), m.clone());
        } else {
            set.remove(cid);
        }
    }
    inner.batches.push(batch);
    Json(json!({"status": "ok", "received": members.len()})).into_response()
}
