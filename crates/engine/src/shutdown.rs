//! A shared "please stop" flag: jobs check it between batches, so a SIGTERM lets the batch in flight
//! finish and be recorded in the ledger before the process exits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Cloneable handle on the shutdown request.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// A handle that has not been triggered.
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Asks every job holding a clone to stop at its next batch boundary.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
