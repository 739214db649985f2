//! Reads the configuration file, applies `CAMPAIGND__SECTION__KEY` environment overrides and turns
//! any problem into a message that names the key.

use std::path::Path;

use campaignd_engine::Settings;
use config::{Config, Environment, File, FileFormat};

/// The configuration shipped with campaignd, used when `config/default.toml` is not on disk (the
/// binary run outside a checkout).
const EMBEDDED_DEFAULT: &str = include_str!("../../../config/default.toml");

/// Where `--config` points when not given.
pub const DEFAULT_CONFIG: &str = "config/default.toml";

/// Loads and validates settings; the error text is shown to the user as is.
pub fn load(path: &Path) -> Result<Settings, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(_) if path == Path::new(DEFAULT_CONFIG) => EMBEDDED_DEFAULT.to_string(),
        Err(e) => return Err(format!("cannot read config {}: {e}", path.display())),
    };
    let built = Config::builder()
        .add_source(File::from_str(&text, FileFormat::Toml))
        .add_source(
            Environment::with_prefix("CAMPAIGND")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        )
        .build()
        .map_err(|e| format!("config {}: {e}", path.display()))?;
    let value: config::Value = built
        .try_deserialize()
        .map_err(|e| format!("config {}: {e}", path.display()))?;
    let settings: Settings = serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e.path().to_string();
        format!("config {}: key `{key}`: {}", path.display(), e.inner())
    })?;
    settings
        .segment_defs()
        .map_err(|e| format!("config {}: {e}", path.display()))?;
    settings
        .validate_syncs()
        .map_err(|e| format!("config {}: {e}", path.display()))?;
    settings
        .validate_creative_sets()
        .map_err(|e| format!("config {}: {e}", path.display()))?;
    Ok(settings)
}
