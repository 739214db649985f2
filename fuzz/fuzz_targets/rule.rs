//! Fuzz target for the rule language: any UTF-8 text through
//! [`campaignd_core::rules::invariants::check`] — parsing never panics or overflows the stack,
//! errors point inside the text, an accepted rule type-checks or fails cleanly, its canonical form
//! parses back to the same rule, and it compiles for SQLite and Postgres.
//!
//! `cargo +nightly fuzz run rule -- -max_len=4096` from the repository root; seed inputs are in
//! `fuzz/corpus/rule/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        if let Err(broken) = campaignd_core::rules::invariants::check(src) {
            panic!("rule invariant broken for {src:?}: {broken}");
        }
    }
});
