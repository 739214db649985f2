//! campaignd-core: the pure domain of campaignd.
//!
//! Everything here is deterministic and free of I/O so it can be tested with tables of cases:
//! the rule language (parse, type-check, compile to SQL per dialect), identifier normalisation and
//! hashing, the synthetic shop generator used by `demo` and benchmarks, and the shared row types.

pub mod holdout;
pub mod identifiers;
pub mod metrics;
pub mod model;
pub mod money;
pub mod progress;
pub mod rotation;
pub mod rules;
pub mod stats;
pub mod synth;
