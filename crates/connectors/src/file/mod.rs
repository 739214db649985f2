//! The file destination: keeps, per audience, a snapshot of the current members plus one diff file per run
//! (adds and removes) under a directory, for shops that move audiences by file (SFTP drops, spreadsheets)
//! and for dry runs. Writes are atomic (temp file + rename) so a reader never sees half a file and a crash
//! leaves the previous snapshot intact. Only hashed identifiers are written unless `include_plain = true`.
//!
//! Layout: `{path}/{audience}/members.{csv|jsonl}` and `{path}/{audience}/diffs/{run_id}.{csv|jsonl}`.
//! The run id comes from [`AudienceDestination::begin_sync`], else a UTC timestamp taken at this process's
//! first write to the audience.

mod config;
#[cfg(test)]
pub(crate) mod tests;

pub use config::{FileConfig, FileFormat};

use crate::error::{ConfigError, ConnectorError};
use crate::model::{
    AudienceRef, BatchOutcome, Channel, Contact, DestinationLimits, PreparedMember, SyncContext,
};
use crate::traits::AudienceDestination;
use async_trait::async_trait;
use campaignd_core::identifiers::google_phone_input;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tokio::sync::Mutex;

/// Columns of the CSV files (diffs prepend `action`).
const COLUMNS: [&str; 5] = [
    "customer_id",
    "email_sha256",
    "phone_sha256",
    "email",
    "phone",
];

/// A directory of audience files.
#[derive(Debug)]
pub struct FileDestination {
    name: String,
    root: PathBuf,
    format: FileFormat,
    include_plain: bool,
    channel: Channel,
    /// Serialises writers and remembers each audience's current run id.
    runs: Mutex<HashMap<String, String>>,
}

/// Makes an audience name safe as a directory name.
fn dir_name(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

impl FileDestination {
    /// Builds the destination and creates the directory.
    pub fn from_config(name: &str, config: FileConfig) -> Result<Self, ConfigError> {
        std::fs::create_dir_all(&config.path).map_err(|e| ConfigError::Invalid {
            destination: name.to_string(),
            key: "path".into(),
            message: format!("cannot create {}: {e}", config.path.display()),
        })?;
        Ok(FileDestination {
            name: name.to_string(),
            root: config.path,
            format: config.format,
            include_plain: config.include_plain,
            channel: config.channel.unwrap_or(Channel::Ads),
            runs: Mutex::new(HashMap::new()),
        })
    }

    fn io(&self, message: String) -> impl FnOnce(std::io::Error) -> ConnectorError + '_ {
        move |source| ConnectorError::Io {
            destination: self.name.clone(),
            message,
            source,
        }
    }

    fn audience_dir(&self, audience: &AudienceRef) -> PathBuf {
        self.root.join(&audience.remote_id)
    }

    fn snapshot_path(&self, audience: &AudienceRef) -> PathBuf {
        self.audience_dir(audience)
            .join(format!("members.{}", self.format.ext()))
    }

    fn read_snapshot(
        &self,
        path: &Path,
    ) -> Result<BTreeMap<String, Map<String, Value>>, ConnectorError> {
        let mut members = BTreeMap::new();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(members),
            Err(e) => return Err(self.io(format!("reading {}", path.display()))(e)),
        };
        let bad = |m: String| ConnectorError::Invalid {
            destination: self.name.clone(),
            message: m,
        };
        match self.format {
            FileFormat::Jsonl => {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let mut obj: Map<String, Value> = serde_json::from_str(line)
                        .map_err(|e| bad(format!("corrupt snapshot {}: {e}", path.display())))?;
                    let id = obj
                        .remove("customer_id")
                        .and_then(|v| v.as_str().map(str::to_string));
                    let id = id.ok_or_else(|| {
                        bad(format!(
                            "snapshot row without customer_id in {}",
                            path.display()
                        ))
                    })?;
                    members.insert(id, obj);
                }
            }
            FileFormat::Csv => {
                let mut reader = csv::Reader::from_reader(text.as_bytes());
                let headers = reader
                    .headers()
                    .map_err(|e| bad(format!("corrupt snapshot: {e}")))?
                    .clone();
                for record in reader.records() {
                    let record = record.map_err(|e| bad(format!("corrupt snapshot: {e}")))?;
                    let mut obj = Map::new();
                    let mut id = None;
                    for (h, v) in headers.iter().zip(record.iter()) {
                        if h == "customer_id" {
                            id = Some(v.to_string());
                        } else if !v.is_empty() {
                            obj.insert(h.to_string(), Value::String(v.to_string()));
                        }
                    }
                    let id = id.ok_or_else(|| bad("snapshot row without customer_id".into()))?;
                    members.insert(id, obj);
                }
            }
        }
        Ok(members)
    }

    fn render(
        &self,
        rows: &[(Option<&str>, &str, &Map<String, Value>)],
    ) -> Result<Vec<u8>, ConnectorError> {
        let with_action = rows.first().is_some_and(|r| r.0.is_some());
        match self.format {
            FileFormat::Jsonl => {
                let mut out = Vec::new();
                for (action, id, payload) in rows {
                    let mut obj = Map::new();
                    if let Some(a) = action {
                        obj.insert("action".into(), Value::String((*a).to_string()));
                    }
                    obj.insert("customer_id".into(), Value::String((*id).to_string()));
                    for (k, v) in payload.iter() {
                        obj.insert(k.clone(), v.clone());
                    }
                    out.extend_from_slice(
                        crate::model::canonical_json(&Value::Object(obj)).as_bytes(),
                    );
                    out.push(b'\n');
                }
                Ok(out)
            }
            FileFormat::Csv => {
                let mut w = csv::Writer::from_writer(Vec::new());
                let cols: Vec<&str> = COLUMNS
                    .iter()
                    .copied()
                    .filter(|c| self.include_plain || !matches!(*c, "email" | "phone"))
                    .collect();
                let csv_err = |e: csv::Error| ConnectorError::Invalid {
                    destination: self.name.clone(),
                    message: e.to_string(),
                };
                let mut header: Vec<&str> = Vec::new();
                if with_action {
                    header.push("action");
                }
                header.extend(&cols);
                w.write_record(&header).map_err(csv_err)?;
                for (action, id, payload) in rows {
                    let mut rec: Vec<String> = Vec::new();
                    if let Some(a) = action {
                        rec.push((*a).to_string());
                    }
                    for c in &cols {
                        rec.push(if *c == "customer_id" {
                            (*id).to_string()
                        } else {
                            payload
                                .get(*c)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string()
                        });
                    }
                    w.write_record(&rec).map_err(csv_err)?;
                }
                w.into_inner().map_err(|e| ConnectorError::Invalid {
                    destination: self.name.clone(),
                    message: e.to_string(),
                })
            }
        }
    }

    /// Writes `bytes` to `path` atomically: a temp file in the same directory, fsync, then rename.
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), ConnectorError> {
        use std::io::Write;
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(dir).map_err(self.io(format!("creating {}", dir.display())))?;
        let file_name = path.file_name().and_then(|f| f.to_str()).unwrap_or("out");
        let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
        let mut f =
            std::fs::File::create(&tmp).map_err(self.io(format!("creating {}", tmp.display())))?;
        f.write_all(bytes)
            .map_err(self.io(format!("writing {}", tmp.display())))?;
        f.sync_all()
            .map_err(self.io(format!("syncing {}", tmp.display())))?;
        std::fs::rename(&tmp, path).map_err(self.io(format!("renaming to {}", path.display())))
    }

    async fn apply(
        &self,
        action: &str,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        let mut runs = self.runs.lock().await;
        let run_id = runs
            .entry(audience.remote_id.clone())
            .or_insert_with(|| chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string())
            .clone();
        let snapshot_path = self.snapshot_path(audience);
        let mut current = self.read_snapshot(&snapshot_path)?;
        let mut diff_rows = Vec::with_capacity(members.len());
        for m in members {
            let payload = m.payload.as_object().cloned().unwrap_or_default();
            if action == "add" {
                current.insert(m.customer_id.clone(), payload.clone());
            } else {
                current.remove(&m.customer_id);
            }
            diff_rows.push((m.customer_id.clone(), payload));
        }
        let snapshot_rows: Vec<(Option<&str>, &str, &Map<String, Value>)> = current
            .iter()
            .map(|(id, p)| (None, id.as_str(), p))
            .collect();
        let bytes = self.render(&snapshot_rows)?;
        // Diff first: if we crash between the two writes, the diff lists a change the snapshot may lack,
        // and the engine resends the batch (at-least-once), which rewrites both.
        let diff_path = self.audience_dir(audience).join("diffs").join(format!(
            "{}.{}",
            dir_name(&run_id),
            self.format.ext()
        ));
        let mut diff = match std::fs::read(&diff_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(self.io(format!("reading {}", diff_path.display()))(e)),
        };
        let new_rows: Vec<(Option<&str>, &str, &Map<String, Value>)> = diff_rows
            .iter()
            .map(|(id, p)| (Some(action), id.as_str(), p))
            .collect();
        let mut rendered = self.render(&new_rows)?;
        if self.format == FileFormat::Csv && !diff.is_empty() {
            // Drop the header of the appended part.
            let cut = rendered
                .iter()
                .position(|b| *b == b'\n')
                .map_or(0, |p| p + 1);
            rendered.drain(..cut);
        }
        diff.extend_from_slice(&rendered);
        self.write_atomic(&diff_path, &diff)?;
        self.write_atomic(&snapshot_path, &bytes)?;
        Ok(BatchOutcome {
            accepted: members.len(),
            rejected: Vec::new(),
        })
    }
}

#[async_trait]
impl AudienceDestination for FileDestination {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "file"
    }

    fn limits(&self) -> DestinationLimits {
        DestinationLimits {
            max_batch: 50_000,
            min_audience_size: 0,
            requests_per_second: 0.0,
        }
    }

    fn channel(&self) -> Channel {
        self.channel
    }

    fn prepare(&self, contact: &Contact) -> Result<PreparedMember, crate::model::NoIdentifier> {
        crate::common::hashed_email_and_phone(contact, google_phone_input, self.include_plain)
    }

    async fn begin_sync(&self, ctx: &SyncContext) -> Result<(), ConnectorError> {
        self.runs
            .lock()
            .await
            .insert(ctx.audience.remote_id.clone(), ctx.run_id.clone());
        Ok(())
    }

    /// The audience is a directory; an existing snapshot means it is adopted.
    async fn find_or_create_audience(
        &self,
        name: &str,
        _description: &str,
    ) -> Result<AudienceRef, ConnectorError> {
        let dir = dir_name(name);
        if dir.is_empty() {
            return Err(ConnectorError::Invalid {
                destination: self.name.clone(),
                message: format!("unusable audience name {name:?}"),
            });
        }
        let audience = AudienceRef {
            remote_id: dir,
            adopted: false,
        };
        let adopted = self.snapshot_path(&audience).exists();
        std::fs::create_dir_all(self.audience_dir(&audience))
            .map_err(self.io("creating audience directory".into()))?;
        Ok(AudienceRef {
            adopted,
            ..audience
        })
    }

    async fn add_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.apply("add", audience, members).await
    }

    async fn remove_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.apply("remove", audience, members).await
    }
}
