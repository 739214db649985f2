//! The context every command runs in, built once at start: the configuration read and validated
//! (segments, syncs and creative sets — `settings_load::load` checks them all), the secret resolver
//! anchored at the configuration's directory, and the one way to open the store. Commands, the
//! daemon and the reports take what they need from it instead of re-reading the file or rebuilding
//! the resolver.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use campaignd_connectors::SecretResolver;
use campaignd_engine::Settings;
use campaignd_store::Store;

use crate::{settings_load, Failure};

/// What a command needs from its start: validated settings and how to resolve their secrets.
pub struct App {
    /// The configuration, loaded with its environment overrides and validated.
    pub settings: Settings,
    /// Resolves `{ env = ... }` / `{ file = ... }` secrets; relative files from the config's directory.
    pub secrets: SecretResolver,
}

impl App {
    /// Loads and validates the configuration at `config` (exit 2 with the offending key when it is
    /// wrong).
    pub fn load(config: &Path) -> Result<App, Failure> {
        let settings = settings_load::load(config).map_err(|e| Failure::usage(anyhow!(e)))?;
        Ok(App {
            settings,
            secrets: secrets_for(config),
        })
    }
}

/// The secret resolver for a configuration file: relative `file` secrets resolve from its directory,
/// so a config and its secret files can move together.
fn secrets_for(config: &Path) -> SecretResolver {
    let base = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    SecretResolver::from_process_env().with_base_dir(base)
}

/// Opens and migrates the configured store with its `[store]` timeouts, then closes the runs of dead
/// processes as `abandoned` (every command does this on start, so no run stays `running` forever).
pub async fn open_store(settings: &Settings) -> Result<Store, Failure> {
    let store = Store::connect_with(&settings.store.url, &settings.store.options())
        .await
        .map_err(Failure::job)?;
    store.migrate().await.map_err(Failure::job)?;
    close_abandoned_runs(&store).await;
    Ok(store)
}

/// Marks the runs of dead processes `abandoned`; a failure here is logged, never fatal to the command.
pub async fn close_abandoned_runs(store: &Store) {
    if let Err(e) = store.abandon_dead_runs().await {
        tracing::warn!(error = %e, "cannot check for abandoned runs");
    }
}
