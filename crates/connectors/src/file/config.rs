//! `[destinations.NAME]` keys for `kind = "file"`.

use super::FileDestination;
use crate::error::ConfigError;
use crate::model::Channel;
use crate::registry::{Platform, PlatformConfig};
use crate::secret::SecretResolver;
use serde::Deserialize;
use std::path::PathBuf;

/// Output format of snapshots and diffs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// CSV with a header row.
    Csv,
}

impl FileFormat {
    /// The file extension of the format.
    pub(crate) fn ext(self) -> &'static str {
        match self {
            FileFormat::Jsonl => "jsonl",
            FileFormat::Csv => "csv",
        }
    }
}

/// File destination config, typed when the settings load. Unknown keys are rejected so typos surface
/// at startup.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Output directory (created if missing).
    pub path: PathBuf,
    /// `jsonl` (default) or `csv`.
    #[serde(default)]
    pub format: FileFormat,
    /// Also write the normalised plain email and phone (off by default: files travel).
    #[serde(default)]
    pub include_plain: bool,
    /// Which consent applies (default ads).
    #[serde(default)]
    pub channel: Option<Channel>,
}

impl PlatformConfig for FileConfig {
    fn build(&self, name: &str, _secrets: &SecretResolver) -> Result<Platform, ConfigError> {
        Ok(Platform::audience_only(FileDestination::from_config(
            name,
            self.clone(),
        )?))
    }
}
