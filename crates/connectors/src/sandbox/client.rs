//! The sandbox destination: audiences as JSON files, written atomically, read back on every call so two
//! destination instances (or two processes, one after the other) on the same directory see one state.

use super::config::SandboxConfig;
use super::mapping;
use crate::common;
use crate::error::{ConfigError, ConnectorError};
use crate::model::{
    AudienceRef, BatchOutcome, Channel, Contact, DestinationLimits, PreparedMember, Rejection,
    ReplaceSession,
};
use crate::traits::AudienceDestination;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::sync::Mutex;

/// Version of the audience file layout, stored in every file as `format`.
pub const FORMAT_VERSION: u32 = 1;

/// One simulated audience as stored on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxAudience {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format: u32,
    /// Audience id (`sbx_` + 16 hex digits), also the file stem.
    pub id: String,
    /// Name the audience was created under.
    pub name: String,
    /// Description given at creation.
    #[serde(default)]
    pub description: String,
    /// Members keyed by email hash (or `phone:<hash>`), each with the payload that added it.
    #[serde(default)]
    pub members: BTreeMap<String, Value>,
}

/// A sandbox directory of simulated audiences.
#[derive(Debug)]
pub struct SandboxDestination {
    pub(super) name: String,
    pub(super) root: PathBuf,
    min_audience_size: usize,
    batch_size: usize,
    /// Pinned conversion rates by creative id (`creative_cvr`).
    pub(super) creative_cvr: BTreeMap<String, f64>,
    /// Creative ids whose swap is refused (`reject_creatives`).
    pub(super) reject_creatives: BTreeSet<String>,
    /// Daily CTR decay of creatives by id while live (`creative_fatigue`).
    pub(super) creative_fatigue: BTreeMap<String, f64>,
    /// Serialises this instance's read-modify-write cycles.
    pub(super) lock: Mutex<()>,
}

fn audiences_dir(root: &Path) -> PathBuf {
    root.join("audiences")
}

fn audience_path(root: &Path, id: &str) -> Option<PathBuf> {
    let safe = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    safe.then(|| audiences_dir(root).join(format!("{id}.json")))
}

pub(super) fn read_audience(path: &Path) -> std::io::Result<SandboxAudience> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Every audience stored under the sandbox directory `path`, sorted by id. A missing directory is an
/// empty sandbox.
pub fn audiences(path: &Path) -> std::io::Result<Vec<SandboxAudience>> {
    let dir = audiences_dir(path);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let p = entry?.path();
        let is_json = p.extension().is_some_and(|e| e == "json");
        let hidden = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if is_json && !hidden {
            out.push(read_audience(&p)?);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The member keys (email hashes, `phone:<hash>` for phone-only members) of one audience under the
/// sandbox directory `path`.
pub fn audience_members(path: &Path, audience_id: &str) -> std::io::Result<BTreeSet<String>> {
    let file = audience_path(path, audience_id).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a sandbox audience id",
        )
    })?;
    Ok(read_audience(&file)?.members.into_keys().collect())
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory, fsync, then rename.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no parent"))?;
    std::fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{file_name}.tmp-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[derive(Clone, Copy)]
enum Op {
    Add,
    Remove,
    /// Replace-all: the first slice of a session sets the members, later slices add.
    Replace {
        first: bool,
    },
}

impl SandboxDestination {
    /// Builds the destination and creates its directory.
    pub fn from_config(name: &str, config: SandboxConfig) -> Result<Self, ConfigError> {
        if config.batch_size == 0 {
            return Err(ConfigError::Invalid {
                destination: name.to_string(),
                key: "batch_size".into(),
                message: "must be at least 1".into(),
            });
        }
        if let Some((id, rate)) = config
            .creative_cvr
            .iter()
            .find(|(_, r)| !(0.0..=1.0).contains(*r))
        {
            return Err(ConfigError::Invalid {
                destination: name.to_string(),
                key: format!("creative_cvr.{id}"),
                message: format!("{rate} is not a rate between 0 and 1"),
            });
        }
        if let Some((id, rate)) = config
            .creative_fatigue
            .iter()
            .find(|(_, r)| !(0.0..1.0).contains(*r))
        {
            return Err(ConfigError::Invalid {
                destination: name.to_string(),
                key: format!("creative_fatigue.{id}"),
                message: format!("{rate} is not a daily decay in [0, 1)"),
            });
        }
        std::fs::create_dir_all(audiences_dir(&config.path)).map_err(|e| ConfigError::Invalid {
            destination: name.to_string(),
            key: "path".into(),
            message: format!("cannot create {}: {e}", config.path.display()),
        })?;
        Ok(SandboxDestination {
            name: name.to_string(),
            root: config.path,
            min_audience_size: config.min_audience_size,
            batch_size: config.batch_size,
            creative_cvr: config.creative_cvr,
            reject_creatives: config.reject_creatives,
            creative_fatigue: config.creative_fatigue,
            lock: Mutex::new(()),
        })
    }

    /// The sandbox directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    pub(super) fn io(&self, message: String) -> impl FnOnce(std::io::Error) -> ConnectorError + '_ {
        move |source| ConnectorError::Io {
            destination: self.name.clone(),
            message,
            source,
        }
    }

    fn write(&self, audience: &SandboxAudience) -> Result<(), ConnectorError> {
        let path =
            audience_path(&self.root, &audience.id).ok_or_else(|| ConnectorError::Invalid {
                destination: self.name.clone(),
                message: format!("not a sandbox audience id: {}", audience.id),
            })?;
        let bytes = serde_json::to_vec_pretty(audience).map_err(|e| ConnectorError::Invalid {
            destination: self.name.clone(),
            message: format!("cannot encode audience {}: {e}", audience.id),
        })?;
        write_atomic(&path, &bytes).map_err(self.io(format!("writing {}", path.display())))
    }

    fn change(
        &self,
        op: Op,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        let path = audience_path(&self.root, &audience.remote_id).ok_or_else(|| {
            ConnectorError::Invalid {
                destination: self.name.clone(),
                message: format!("not a sandbox audience id: {}", audience.remote_id),
            }
        })?;
        let mut stored = match read_audience(&path) {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConnectorError::Api {
                    destination: self.name.clone(),
                    operation: "update audience".into(),
                    status: 404,
                    code: None,
                    message: format!("audience {} does not exist", audience.remote_id),
                })
            }
            Err(e) => return Err(self.io(format!("reading {}", path.display()))(e)),
        };
        let mut outcome = BatchOutcome::default();
        let mut changed = false;
        if let Op::Replace { first: true } = op {
            stored.members.clear();
            changed = true;
        }
        for m in members {
            let Some(key) = mapping::member_key(&m.payload) else {
                outcome.rejected.push(Rejection {
                    customer_id: m.customer_id.clone(),
                    reason: "stored payload is not a sandbox member (email_sha256/phone_sha256)"
                        .into(),
                });
                continue;
            };
            match op {
                Op::Add | Op::Replace { .. } => {
                    stored.members.insert(key, m.payload.clone());
                }
                Op::Remove => {
                    stored.members.remove(&key);
                }
            }
            outcome.accepted += 1;
        }
        if outcome.accepted > 0 || changed {
            self.write(&stored)?;
        }
        Ok(outcome)
    }

    async fn batched(
        &self,
        op: Op,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        let _guard = self.lock.lock().await;
        let mut total = BatchOutcome::default();
        for chunk in members.chunks(self.batch_size) {
            // Small synchronous file I/O; block_in_place keeps the runtime's other tasks moving on
            // multi-threaded runtimes without copying the members into a 'static task.
            let out = match tokio::runtime::Handle::current().runtime_flavor() {
                tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(|| self.change(op, audience, chunk))?
                }
                _ => self.change(op, audience, chunk)?,
            };
            total.merge(out);
        }
        Ok(total)
    }
}

#[async_trait]
impl AudienceDestination for SandboxDestination {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "sandbox"
    }

    fn limits(&self) -> DestinationLimits {
        DestinationLimits {
            max_batch: self.batch_size,
            min_audience_size: self.min_audience_size,
            requests_per_second: 1000.0,
        }
    }

    fn channel(&self) -> Channel {
        Channel::Ads
    }

    fn prepare(&self, contact: &Contact) -> Result<PreparedMember, crate::model::NoIdentifier> {
        mapping::prepare(contact)
    }

    async fn find_or_create_audience(
        &self,
        name: &str,
        description: &str,
    ) -> Result<AudienceRef, ConnectorError> {
        common::require_audience_name(&self.name, name)?;
        let _guard = self.lock.lock().await;
        let existing =
            audiences(&self.root).map_err(self.io(format!("listing {}", self.root.display())))?;
        if let Some(a) = existing.iter().find(|a| a.name == name) {
            tracing::info!(destination = %self.name, audience = name, remote_id = %a.id, "adopting existing sandbox audience");
            return Ok(AudienceRef {
                remote_id: a.id.clone(),
                adopted: true,
            });
        }
        let audience = SandboxAudience {
            format: FORMAT_VERSION,
            id: format!("sbx_{:016x}", rand::random::<u64>()),
            name: name.to_string(),
            description: description.to_string(),
            members: BTreeMap::new(),
        };
        self.write(&audience)?;
        tracing::info!(destination = %self.name, audience = name, remote_id = %audience.id, "created sandbox audience");
        Ok(AudienceRef {
            remote_id: audience.id,
            adopted: false,
        })
    }

    async fn add_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.batched(Op::Add, audience, members).await
    }

    async fn remove_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.batched(Op::Remove, audience, members).await
    }

    /// The sandbox is local, so replacing an adopted audience is native: a re-run demo that adopts an
    /// existing sandbox audience replaces its members instead of resending into unknown contents.
    fn supports_replace_all(&self) -> bool {
        true
    }

    /// The first slice of a session (`next_batch_seq == 1`) clears the audience, every slice adds; the
    /// audience equals the union of the slices once the last one is written.
    async fn replace_all(
        &self,
        audience: &AudienceRef,
        session: &mut ReplaceSession,
        members: &[PreparedMember],
        _last_batch: bool,
    ) -> Result<BatchOutcome, ConnectorError> {
        let first = session.next_batch_seq <= 1;
        let _guard = self.lock.lock().await;
        let out = match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| {
                self.change(Op::Replace { first }, audience, members)
            })?,
            _ => self.change(Op::Replace { first }, audience, members)?,
        };
        session.next_batch_seq += 1;
        Ok(out)
    }
}
