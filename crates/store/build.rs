//! Rebuilds the store when a migration is added or changed: `sqlx::migrate!` embeds the
//! `migrations/` folders at compile time, and on stable Rust cargo does not see those files unless
//! told, so a new migration would otherwise be left out of an incremental build.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
