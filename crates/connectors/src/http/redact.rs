//! Redaction of secret values from anything we format: platforms sometimes echo tokens in error bodies and
//! URLs carry `access_token=` parameters, so every message passes through here before it reaches an error
//! or a log line.

use crate::secret::Secret;
use std::sync::{Arc, RwLock};

/// Replaces every registered secret value, and any `access_token=` query value, with `[REDACTED]`.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<Secret>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor")
    }
}

const MASK: &str = "[REDACTED]";

impl Redactor {
    /// Registers a secret (idempotent). Values shorter than 4 characters are ignored to avoid masking
    /// ordinary text.
    pub fn add(&self, secret: &Secret) {
        if secret.expose().len() < 4 {
            return;
        }
        if let Ok(mut list) = self.secrets.write() {
            if !list.iter().any(|s| s.expose() == secret.expose()) {
                list.push(secret.clone());
            }
        }
    }

    /// Returns `text` with secrets masked.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        if let Ok(list) = self.secrets.read() {
            for s in list.iter() {
                if out.contains(s.expose()) {
                    out = out.replace(s.expose(), MASK);
                }
            }
        }
        mask_param(&out, "access_token=")
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
