//! campaignd-engine: the jobs campaignd runs (recompute, sync, rotate, metrics pull) and the settings
//! that describe them.
//!
//! Each job is a plain async function over a [`campaignd_store::Store`] and the parsed [`Settings`], so
//! the CLI and the scheduler run exactly the same code.

pub mod creative_sets;
pub mod holdout;
pub mod lease;
pub mod lift;
pub mod match_rates;
pub mod metrics_pull;
pub mod platforms;
pub mod recompute;
pub mod report;
pub mod rotate;
pub mod scheduler;
pub mod settings;
pub mod shutdown;
pub mod sync;

pub use settings::{Settings, SettingsError};
