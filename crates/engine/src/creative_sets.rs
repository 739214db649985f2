//! `[[creative_set]]` (DESIGN §7): which platform object shows which creative variants to a segment on a
//! destination, how often it rotates and by which strategy. Validated as a whole at start-up, with
//! errors naming the set and the key, so a typo never surfaces as a failed swap weeks later.
//!
//! ```toml
//! [[creative_set]]
//! name = "abandoners-meta"
//! segment = "cart_abandoners"
//! destination = "meta_ads"
//! ad_id = "120200000000001"        # Meta: the ad whose creative is swapped
//! rotate_every = "14d"
//! strategy = "round_robin"         # or "best_ctr", "thompson", "discounted_thompson"
//! fatigue = { metric = "ctr", below = 0.7, min_impressions = 1000, window = "3d" }
//! variants = [
//!   { id = "urgency",  name = "Your items are almost gone!", creative_id = "900001" },
//!   { id = "reminder", name = "Still thinking about it?",    creative_id = "900002" },
//! ]
//! ```

use std::collections::BTreeSet;

use serde::Deserialize;
use thiserror::Error;

use campaignd_core::rotation::{
    self, FatigueBaseline, FatigueMetric, FatigueRule, Policy, Strategy,
};

use crate::settings::Settings;

/// `rotate_every` when not given: two weeks, the usual fatigue horizon.
pub const DEFAULT_ROTATE_EVERY: &str = "14d";
/// `min_impressions` when not given: enough delivery to judge a CTR of 1-3%.
pub const DEFAULT_MIN_IMPRESSIONS: i64 = 1_000;

/// The keys that can name the platform object whose creative changes, in the order they are checked.
pub const OBJECT_KEYS: [&str; 5] = [
    "ad_id",
    "ad_group_id",
    "campaign_id",
    "template_id",
    "object_id",
];

/// One `[[creative_set]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreativeSetSettings {
    /// Unique name, the key of the set's rotation history.
    pub name: String,
    /// The segment that sees these creatives (metrics are attributed to it).
    pub segment: String,
    /// The `[destinations.NAME]` whose object is rotated.
    pub destination: String,
    /// Meta / TikTok: the ad whose creative is swapped.
    #[serde(default)]
    pub ad_id: Option<String>,
    /// Google Ads: the ad group whose ads are enabled/paused.
    #[serde(default)]
    pub ad_group_id: Option<String>,
    /// LinkedIn, Mailchimp, Klaviyo: the campaign whose creative/content changes.
    #[serde(default)]
    pub campaign_id: Option<String>,
    /// Mailchimp / Klaviyo: a template (recurring campaigns).
    #[serde(default)]
    pub template_id: Option<String>,
    /// Any other destination (webhook, sandbox): the object's id.
    #[serde(default)]
    pub object_id: Option<String>,
    /// How long each variant stays live (`14d`, `2w`, `36h`).
    #[serde(default = "default_rotate_every")]
    pub rotate_every: String,
    /// `round_robin` (default), `best_ctr` or `thompson`.
    #[serde(default)]
    pub strategy: Strategy,
    /// Impressions before `best_ctr` judges a variant or retirement applies.
    #[serde(default = "default_min_impressions")]
    pub min_impressions: i64,
    /// Retire variants whose CVR is under this once they have `min_impressions`.
    #[serde(default)]
    pub retire_below_cvr: Option<f64>,
    /// Thompson sampling seed (default: derived from the set's name), so reruns choose the same.
    #[serde(default)]
    pub seed: Option<u64>,
    /// `discounted_thompson`: weight of evidence one `rotate_every` old (0 < discount ≤ 1).
    #[serde(default = "default_discount")]
    pub discount: f64,
    /// Rotate early when the live variant wears out (see [`FatigueSettings`]).
    #[serde(default)]
    pub fatigue: Option<FatigueSettings>,
    /// The creatives to rotate through, in order; the first goes live first.
    pub variants: Vec<VariantSettings>,
}

/// One creative variant of a set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSettings {
    /// Stable id within the set; reports and history use it.
    pub id: String,
    /// Human-readable label (the headline, say).
    #[serde(default)]
    pub name: Option<String>,
    /// The platform's id of the creative (Meta ad creative, Google Ads ad, Mailchimp template, ...).
    pub creative_id: String,
}

/// `fatigue = { ... }` of a creative set: when the live variant's recent `metric` performs at under
/// `below` of its baseline (its own first `window` live, or the set's best variant), the set rotates
/// before its period is over and records why.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FatigueSettings {
    /// `ctr` (default) or `cpa`.
    #[serde(default)]
    pub metric: FatigueMetric,
    /// Share of the baseline under which the variant is fatigued (0.7 = 70 %).
    pub below: f64,
    /// Impressions the baseline and the recent window each need before judging.
    #[serde(default = "default_min_impressions")]
    pub min_impressions: i64,
    /// `first` (default: the variant's own first window live) or `best` (the set's best variant).
    #[serde(default)]
    pub against: FatigueBaseline,
    /// Length of the baseline and the recent window (`3d`).
    #[serde(default = "default_fatigue_window")]
    pub window: String,
}

impl FatigueSettings {
    /// The pure rule.
    pub fn rule(&self) -> FatigueRule {
        FatigueRule {
            metric: self.metric,
            below: self.below,
            min_impressions: self.min_impressions,
            baseline: self.against,
        }
    }

    /// `window` in seconds (validated; 3 days otherwise).
    pub fn window_secs(&self) -> i64 {
        rotation::parse_period(&self.window).unwrap_or(3 * 86_400)
    }
}

fn default_fatigue_window() -> String {
    "3d".into()
}

fn default_discount() -> f64 {
    0.8
}

fn default_rotate_every() -> String {
    DEFAULT_ROTATE_EVERY.into()
}

fn default_min_impressions() -> i64 {
    DEFAULT_MIN_IMPRESSIONS
}

/// A `[[creative_set]]` problem, naming the set and key.
#[derive(Debug, Error)]
#[error("creative_set \"{set}\" ({key}): {message}")]
pub struct CreativeSetError {
    /// The set's name (or `#N` when it has none).
    pub set: String,
    /// The offending key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl CreativeSetSettings {
    /// The key naming the object (`ad_id`, ...) and its value; the first given one (validation makes
    /// sure there is exactly one).
    pub fn object(&self) -> Option<(&'static str, &str)> {
        let values = [
            &self.ad_id,
            &self.ad_group_id,
            &self.campaign_id,
            &self.template_id,
            &self.object_id,
        ];
        OBJECT_KEYS
            .iter()
            .zip(values)
            .find_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
    }

    /// The platform object's id (empty only for an unvalidated set).
    pub fn object_id(&self) -> &str {
        self.object().map(|(_, v)| v).unwrap_or("")
    }

    /// `rotate_every` in seconds (validation guarantees it parses; 14 days otherwise).
    pub fn period_secs(&self) -> i64 {
        rotation::parse_period(&self.rotate_every).unwrap_or(14 * 86_400)
    }

    /// The knobs the rotation strategies need; the default seed is a hash of the set's name so every
    /// set has its own reproducible sequence.
    pub fn policy(&self) -> Policy {
        // FNV-1a: stable across builds and platforms, unlike std's hasher.
        let seed = self.seed.unwrap_or_else(|| {
            self.name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
        });
        Policy {
            strategy: self.strategy,
            min_impressions: self.min_impressions,
            retire_below_cvr: self.retire_below_cvr,
            seed,
        }
    }
}

impl Settings {
    /// Checks every `[[creative_set]]`: unique names, known segment and destination, exactly one object
    /// key (one the destination's platform declares in its `creative_object_keys`), a valid period, rates in 0..=1, and at least one
    /// variant with unique ids and a creative id.
    pub fn validate_creative_sets(&self) -> Result<(), CreativeSetError> {
        let mut names = BTreeSet::new();
        for (i, set) in self.creative_sets.iter().enumerate() {
            let label = if set.name.trim().is_empty() {
                format!("#{}", i + 1)
            } else {
                set.name.clone()
            };
            let err = |key: &str, message: String| CreativeSetError {
                set: label.clone(),
                key: key.to_string(),
                message,
            };
            if set.name.trim().is_empty() {
                return Err(err("name", "a creative set needs a non-empty name".into()));
            }
            if !names.insert(set.name.clone()) {
                return Err(err("name", "defined more than once".into()));
            }
            if !self.segments.iter().any(|s| s.name == set.segment) {
                return Err(err(
                    "segment",
                    format!("no segment named \"{}\"", set.segment),
                ));
            }
            let Some(section) = self.destinations.get(&set.destination) else {
                return Err(err(
                    "destination",
                    format!("no [destinations.{}] section", set.destination),
                ));
            };
            let given: Vec<&str> = OBJECT_KEYS
                .iter()
                .zip([
                    &set.ad_id,
                    &set.ad_group_id,
                    &set.campaign_id,
                    &set.template_id,
                    &set.object_id,
                ])
                .filter(|(_, v)| v.is_some())
                .map(|(k, _)| *k)
                .collect();
            match given.as_slice() {
                [] => {
                    return Err(err(
                        "ad_id",
                        format!(
                            "name the object whose creative changes: one of {}",
                            OBJECT_KEYS.join(", ")
                        ),
                    ))
                }
                [key] => {
                    if set.object_id().trim().is_empty() {
                        return Err(err(key, "must not be empty".into()));
                    }
                    if let Some(allowed) = section.creative_object_keys() {
                        if *key != "object_id" && !allowed.contains(key) {
                            return Err(err(
                                key,
                                format!(
                                    "a {} destination names its object with {} (or object_id)",
                                    section.kind(),
                                    allowed.join(" or ")
                                ),
                            ));
                        }
                    }
                }
                [_, second, ..] => {
                    return Err(err(
                        second,
                        format!("give only one of {}", given.join(", ")),
                    ))
                }
            }
            rotation::parse_period(&set.rotate_every)
                .map_err(|e| err("rotate_every", e.to_string()))?;
            if set.min_impressions < 0 {
                return Err(err("min_impressions", "must be 0 or more".into()));
            }
            if let Some(r) = set.retire_below_cvr {
                if !(0.0..=1.0).contains(&r) {
                    return Err(err(
                        "retire_below_cvr",
                        format!("{r} is not a rate between 0 and 1"),
                    ));
                }
            }
            if !(set.discount > 0.0 && set.discount <= 1.0) {
                return Err(err(
                    "discount",
                    format!("{} is not a weight in (0, 1]", set.discount),
                ));
            }
            if let Some(f) = &set.fatigue {
                if !(f.below > 0.0 && f.below < 1.0) {
                    return Err(err(
                        "fatigue.below",
                        format!("{} is not a share in (0, 1) (0.7 = 70 %)", f.below),
                    ));
                }
                if f.min_impressions < 0 {
                    return Err(err("fatigue.min_impressions", "must be 0 or more".into()));
                }
                rotation::parse_period(&f.window)
                    .map_err(|e| err("fatigue.window", e.to_string()))?;
            }
            if set.variants.is_empty() {
                return Err(err("variants", "list at least one variant".into()));
            }
            let mut ids = BTreeSet::new();
            for (j, v) in set.variants.iter().enumerate() {
                let key = format!("variants[{j}]");
                if v.id.trim().is_empty() {
                    return Err(err(&format!("{key}.id"), "must not be empty".into()));
                }
                if !ids.insert(v.id.as_str()) {
                    return Err(err(
                        &format!("{key}.id"),
                        format!("\"{}\" is listed twice", v.id),
                    ));
                }
                if v.creative_id.trim().is_empty() {
                    return Err(err(
                        &format!("{key}.creative_id"),
                        "must not be empty".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        [[segment]]
        name = "cart_abandoners"
        template = "cart_abandoner"

        [destinations.meta_ads]
        kind = "meta"
        ad_account_id = "1"
        access_token = { env = "META_TOKEN" }

        [destinations.gads]
        kind = "google_ads"
        customer_id = "1"
        client_id = { env = "GOOGLE_CLIENT_ID" }
        client_secret = { env = "GOOGLE_CLIENT_SECRET" }
        refresh_token = { env = "GOOGLE_REFRESH_TOKEN" }

        [destinations.sandbox]
        kind = "sandbox"
    "#;

    fn settings(sets: &str) -> Settings {
        let text = format!("{BASE}\n{sets}");
        toml::from_str(&text).expect("settings")
    }

    fn deserialize_error(sets: &str) -> String {
        let text = format!("{BASE}\n{sets}");
        match toml::from_str::<Settings>(&text) {
            Ok(_) => "parsed".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_documented_shape_parses() {
        let s = settings(
            r#"
            [[creative_set]]
            name = "abandoners-meta"
            segment = "cart_abandoners"
            destination = "meta_ads"
            ad_id = "120200000000001"        # Meta: the ad whose creative is swapped
            rotate_every = "14d"
            strategy = "round_robin"         # or "best_ctr", "thompson"
            variants = [
              { id = "urgency",  name = "Your items are almost gone!", creative_id = "900001" },
              { id = "reminder", name = "Still thinking about it?",    creative_id = "900002" },
            ]
            "#,
        );
        s.validate_creative_sets().expect("valid");
        let set = &s.creative_sets[0];
        assert_eq!(set.object(), Some(("ad_id", "120200000000001")));
        assert_eq!(set.period_secs(), 14 * 86_400);
        assert_eq!(set.strategy, Strategy::RoundRobin);
        assert_eq!(set.min_impressions, DEFAULT_MIN_IMPRESSIONS);
        assert_eq!(set.variants[1].creative_id, "900002");
        assert_eq!(set.policy(), set.policy(), "default seed is stable");
    }

    #[test]
    fn errors_name_the_set_and_key() {
        let set = |extra: &str| {
            format!(
                r#"
                [[creative_set]]
                name = "s1"
                segment = "cart_abandoners"
                destination = "meta_ads"
                {extra}
                variants = [{{ id = "a", creative_id = "1" }}, {{ id = "b", creative_id = "2" }}]
                "#
            )
        };
        // (extra keys, expected fragments)
        let cases: &[(&str, &[&str])] = &[
            ("", &["\"s1\"", "ad_id", "one of"]),
            (
                r#"ad_id = "1"
                campaign_id = "2""#,
                &["\"s1\"", "campaign_id", "only one"],
            ),
            (
                r#"ad_group_id = "1""#,
                &["\"s1\"", "ad_group_id", "meta", "ad_id"],
            ),
            (r#"ad_id = "  ""#, &["\"s1\"", "ad_id", "empty"]),
            (
                r#"ad_id = "1"
                rotate_every = "fortnight""#,
                &["rotate_every", "fortnight"],
            ),
            (
                r#"ad_id = "1"
                retire_below_cvr = 1.5"#,
                &["retire_below_cvr"],
            ),
            (
                r#"ad_id = "1"
                min_impressions = -1"#,
                &["min_impressions"],
            ),
        ];
        for (extra, want) in cases {
            let e = settings(&set(extra))
                .validate_creative_sets()
                .expect_err(extra)
                .to_string();
            for w in *want {
                assert!(e.contains(w), "{extra}: {e} lacks {w}");
            }
        }
        let e = settings(
            r#"
            [[creative_set]]
            name = "s2"
            segment = "nobody"
            destination = "meta_ads"
            ad_id = "1"
            variants = [{ id = "a", creative_id = "1" }]
            "#,
        )
        .validate_creative_sets()
        .expect_err("segment")
        .to_string();
        assert!(
            e.contains("\"s2\"") && e.contains("segment") && e.contains("nobody"),
            "{e}"
        );
        let e = settings(
            r#"
            [[creative_set]]
            name = "s3"
            segment = "cart_abandoners"
            destination = "gads"
            ad_group_id = "77"
            variants = [{ id = "a", creative_id = "1" }, { id = "a", creative_id = "2" }]
            "#,
        )
        .validate_creative_sets()
        .expect_err("dup")
        .to_string();
        assert!(e.contains("\"s3\"") && e.contains("variants[1].id"), "{e}");
        let e = settings(
            r#"
            [[creative_set]]
            name = "s4"
            segment = "cart_abandoners"
            destination = "elsewhere"
            object_id = "1"
            variants = [{ id = "a", creative_id = "1" }]
            "#,
        )
        .validate_creative_sets()
        .expect_err("destination")
        .to_string();
        assert!(e.contains("\"s4\"") && e.contains("destination"), "{e}");
        let e = settings(
            r#"
            [[creative_set]]
            name = "s5"
            segment = "cart_abandoners"
            destination = "sandbox"
            object_id = "1"
            variants = []
            "#,
        )
        .validate_creative_sets()
        .expect_err("variants")
        .to_string();
        assert!(e.contains("\"s5\"") && e.contains("variants"), "{e}");
    }

    #[test]
    fn unknown_keys_and_strategies_are_refused_by_name() {
        let e = deserialize_error(
            r#"
            [[creative_set]]
            name = "s1"
            segment = "cart_abandoners"
            destination = "meta_ads"
            ad_id = "1"
            strategy = "epsilon_greedy"
            variants = [{ id = "a", creative_id = "1" }]
            "#,
        );
        assert!(
            e.contains("strategy") && e.contains("epsilon_greedy"),
            "{e}"
        );
        let e = deserialize_error(
            r#"
            [[creative_set]]
            name = "s1"
            segment = "cart_abandoners"
            destination = "meta_ads"
            ad_id = "1"
            variants = [{ id = "a", creative = "1" }]
            "#,
        );
        assert!(e.contains("creative") && e.contains("unknown field"), "{e}");
    }
}
