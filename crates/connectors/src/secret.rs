//! Secrets: referenced from config by env var or file, never inline, and held in a type that cannot be
//! printed, so a token cannot leak into logs, errors or `Debug` output by accident.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A resolved secret value. `Debug` prints `Secret([REDACTED])`; there is no `Display`. Read the value
/// only at the point of use with [`Secret::expose`].
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a value (from a resolver, a token endpoint or a test).
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    /// The raw value, for putting into a request header or HMAC key.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// Where a secret lives, as written in config: `{ env = "VAR" }` or `{ file = "path" }`. An inline string is
/// refused with an explanation, so tokens do not end up in config files and backups.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SecretRefRepr")]
pub enum SecretRef {
    /// Read from this environment variable.
    Env(String),
    /// Read from this file (trailing whitespace trimmed); relative paths are resolved against the
    /// resolver's base directory.
    File(PathBuf),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SecretRefRepr {
    Inline(#[allow(dead_code)] String),
    Table {
        env: Option<String>,
        file: Option<PathBuf>,
    },
}

impl TryFrom<SecretRefRepr> for SecretRef {
    type Error = String;

    fn try_from(repr: SecretRefRepr) -> Result<Self, Self::Error> {
        match repr {
            SecretRefRepr::Inline(_) => Err(
                "secrets are never written inline: use { env = \"VAR\" } or { file = \"path\" }"
                    .into(),
            ),
            SecretRefRepr::Table {
                env: Some(env),
                file: None,
            } => Ok(SecretRef::Env(env)),
            SecretRefRepr::Table {
                env: None,
                file: Some(file),
            } => Ok(SecretRef::File(file)),
            SecretRefRepr::Table { .. } => Err("give exactly one of `env` or `file`".into()),
        }
    }
}

/// Why a secret reference could not be read. Never contains the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is unset or not unicode.
    #[error("environment variable `{0}` is not set")]
    EnvMissing(String),
    /// The file could not be read.
    #[error("cannot read `{path}`: {source}")]
    File {
        /// Path tried.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The value is empty.
    #[error("the secret is empty")]
    Empty,
}

type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Resolves [`SecretRef`]s. Tests inject an environment map instead of mutating the process environment.
pub struct SecretResolver {
    env: Box<EnvLookup>,
    base_dir: Option<PathBuf>,
}

impl Default for SecretResolver {
    fn default() -> Self {
        Self::from_process_env()
    }
}

impl fmt::Debug for SecretResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretResolver")
            .field("base_dir", &self.base_dir)
            .finish_non_exhaustive()
    }
}

impl SecretResolver {
    /// Reads env vars from the process environment (the daemon's normal mode).
    pub fn from_process_env() -> Self {
        SecretResolver {
            env: Box::new(|k| std::env::var(k).ok()),
            base_dir: None,
        }
    }

    /// Reads env vars from a fixed map, so tests stay hermetic and parallel-safe.
    pub fn from_map(map: HashMap<String, String>) -> Self {
        SecretResolver {
            env: Box::new(move |k| map.get(k).cloned()),
            base_dir: None,
        }
    }

    /// Resolves relative `file` references against `dir` (normally the config file's directory).
    pub fn with_base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// Reads the secret a reference points at.
    pub fn resolve(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
        let value = match reference {
            SecretRef::Env(var) => {
                (self.env)(var).ok_or_else(|| SecretError::EnvMissing(var.clone()))?
            }
            SecretRef::File(path) => {
                let full = self.full_path(path);
                std::fs::read_to_string(&full)
                    .map_err(|source| SecretError::File { path: full, source })?
            }
        };
        let trimmed = value.trim_end_matches(['\n', '\r', ' ', '\t']);
        if trimmed.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Secret::new(trimmed))
    }

    fn full_path(&self, path: &Path) -> PathBuf {
        match &self.base_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2-token");
        assert_eq!(format!("{s:?}"), "Secret([REDACTED])");
        assert_eq!(s.expose(), "hunter2-token");
    }

    #[test]
    fn secret_refs_parse_and_resolve() {
        #[derive(Deserialize)]
        struct C {
            t: SecretRef,
        }
        let c: C =
            serde_json::from_value(serde_json::json!({"t": {"env": "TOK"}})).expect("env ref");
        assert_eq!(c.t, SecretRef::Env("TOK".into()));
        let err = serde_json::from_value::<C>(serde_json::json!({"t": "inline-token"}))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("never written inline"), "{err}");
        assert!(!err.contains("inline-token"), "{err}");

        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("tok"), "from-file\n").expect("write");
        let r =
            SecretResolver::from_map(HashMap::from([("TOK".to_string(), "from-env".to_string())]))
                .with_base_dir(dir.path());
        assert_eq!(
            r.resolve(&SecretRef::Env("TOK".into()))
                .expect("env")
                .expose(),
            "from-env"
        );
        assert_eq!(
            r.resolve(&SecretRef::File("tok".into()))
                .expect("file")
                .expose(),
            "from-file"
        );
        assert!(matches!(
            r.resolve(&SecretRef::Env("NOPE".into())),
            Err(SecretError::EnvMissing(_))
        ));
    }
}
