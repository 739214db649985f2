//! Holdout groups (DESIGN §6, §8): which members of a sync are kept out of the audience so lift can be
//! measured against them.
//!
//! The bucket is the first 8 bytes of SHA-256(`salt` ‖ 0x00 ‖ `customer_id`) read as a big-endian
//! integer and scaled to [0, 1); a member is held out when the bucket is under the sync's share. The
//! same customer therefore lands in the same group on every run and every replica, with no state; a
//! different salt per sync (default: its segment and destination) makes the groups of two syncs
//! independent. Changing the salt or the share reshuffles the groups.

use sha2::{Digest, Sha256};

/// The default salt of a sync: its segment and destination, so each sync draws its own holdout.
pub fn default_salt(segment: &str, destination: &str) -> String {
    format!("{segment}\u{1f}{destination}")
}

/// A member's bucket in [0, 1), stable for a given salt.
pub fn bucket(salt: &str, customer_id: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(customer_id.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits keep the value exactly representable as f64.
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether `customer_id` is in the holdout of a sync holding out `share` (0 ≤ share < 1) with `salt`.
pub fn held_out(salt: &str, share: f64, customer_id: &str) -> bool {
    share > 0.0 && bucket(salt, customer_id) < share
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_stable_and_uniform_enough() {
        let salt = default_salt("vip", "meta");
        assert_eq!(bucket(&salt, "c1"), bucket(&salt, "c1"));
        assert_ne!(
            bucket(&salt, "c1"),
            bucket(&default_salt("vip", "tiktok"), "c1")
        );
        let n = 20_000;
        let held = (0..n)
            .filter(|i| held_out(&salt, 0.1, &format!("c{i}")))
            .count();
        // Binomial(20000, 0.1): sd ≈ 42, so ±200 is a > 4 sd band.
        assert!((1_800..=2_200).contains(&held), "{held}");
        assert!(!held_out(&salt, 0.0, "c1"));
        assert!((0..1000).all(|i| {
            let b = bucket(&salt, &format!("x{i}"));
            (0.0..1.0).contains(&b)
        }));
    }

    #[test]
    fn bucket_known_value() {
        // printf 's\0c1' | sha256sum → fefb3a14d6ddd6f3…; (0xfefb3a14d6ddd6f3 >> 11) / 2^53. Pinned so a
        // change of the hashing (which would reshuffle every holdout) fails here.
        assert_eq!(bucket("s", "c1"), 0.9960209179761172);
    }
}
