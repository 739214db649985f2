//! Creative rotation strategies (DESIGN §7), pure so they can be tested with tables of cases and so a
//! `rotate --as-of` run is reproducible.
//!
//! A creative set shows one variant at a time. When its period is over ([`period_over`]) the engine asks
//! [`choose_next`] which variant goes live next:
//! - `round_robin`: the next active variant in the configured order;
//! - `best_ctr`: explores in round-robin order until every active variant has `min_impressions`, then
//!   picks the highest click-through rate;
//! - `thompson`: samples each active variant's Beta(1 + conversions, 1 + clicks − conversions) posterior of
//!   conversions per click with a seeded ChaCha RNG and picks the highest draw, so better converters
//!   are shown more often while weaker ones still get the occasional period;
//! - `discounted_thompson`: the same draw on evidence where each day counts `discount`^(age in
//!   periods) ([`discounted_totals`]), so a variant that has worn out loses its lead and the rotator
//!   follows performance that changes over time.
//!
//! Fatigue ([`fatigue`]): the live variant's recent CTR (or CPA) compared with its own first period
//! (or the set's best variant); past the configured share the set rotates before its period is over.
//!
//! Retired variants are never chosen. [`retirements`] says which variants to retire: those whose CVR
//! is under `retire_below_cvr` once they have `min_impressions`, never the last active one.

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::metrics::Totals;

/// How a creative set picks the next variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Every active variant in turn, in the configured order.
    #[default]
    RoundRobin,
    /// The best click-through rate once every variant has enough impressions to judge.
    BestCtr,
    /// Thompson sampling on conversions per click (seeded, reproducible).
    Thompson,
    /// Thompson sampling on evidence discounted by age (`discount` per period), for creatives whose
    /// performance changes over time (fatigue, seasons).
    DiscountedThompson,
}

impl Strategy {
    /// The config spelling, for messages and run counts.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::BestCtr => "best_ctr",
            Strategy::Thompson => "thompson",
            Strategy::DiscountedThompson => "discounted_thompson",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = RotationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "round_robin" => Ok(Strategy::RoundRobin),
            "best_ctr" => Ok(Strategy::BestCtr),
            "thompson" => Ok(Strategy::Thompson),
            "discounted_thompson" => Ok(Strategy::DiscountedThompson),
            other => Err(RotationError::UnknownStrategy(other.to_string())),
        }
    }
}

/// Bad rotation input, reported against the creative set by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RotationError {
    /// `strategy` is none of the known ones.
    #[error("unknown strategy \"{0}\" (expected round_robin, best_ctr, thompson or discounted_thompson)")]
    UnknownStrategy(String),
    /// `rotate_every` is not a positive duration like `14d`.
    #[error("\"{0}\" is not a period like 14d, 2w, 36h or 90m")]
    BadPeriod(String),
}

/// Parses a rotation period (`90m`, `36h`, `14d`, `2w`) into seconds, so `rotate_every` uses the same
/// units as rule windows.
pub fn parse_period(s: &str) -> Result<i64, RotationError> {
    let bad = || RotationError::BadPeriod(s.to_string());
    let t = s.trim();
    let split = t.len().checked_sub(1).ok_or_else(bad)?;
    if !t.is_char_boundary(split) {
        return Err(bad());
    }
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().map_err(|_| bad())?;
    let unit_secs = match unit {
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    if n <= 0 {
        return Err(bad());
    }
    n.checked_mul(unit_secs).ok_or_else(bad)
}

/// Whether the variant live since `live_from` has had its full period at `as_of` (unix seconds), i.e.
/// the set is due to rotate.
pub fn period_over(live_from: i64, period_secs: i64, as_of: i64) -> bool {
    as_of >= live_from.saturating_add(period_secs)
}

/// The knobs of one creative set that the strategies need.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Which strategy picks the next variant.
    pub strategy: Strategy,
    /// Impressions a variant needs before `best_ctr` judges it or retirement applies.
    pub min_impressions: i64,
    /// Retire a variant whose CVR falls under this once it has `min_impressions`.
    pub retire_below_cvr: Option<f64>,
    /// Seed of Thompson sampling, so reruns choose the same.
    pub seed: u64,
}

/// What the strategies know about one variant: its lifetime figures and whether it is retired.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantState {
    /// The variant's id in the creative set.
    pub id: String,
    /// Everything delivered while it was live.
    pub totals: Totals,
    /// Retired variants never go live again.
    pub retired: bool,
}

/// The variants to retire now (indexes into `variants`): active ones with at least `min_impressions`
/// whose CVR (conversions per click; no clicks counts as 0) is under `retire_below_cvr`. The last active
/// variant is never retired — a set must keep something to show — so when all would go, the best
/// converter among them stays.
pub fn retirements(policy: &Policy, variants: &[VariantState]) -> Vec<usize> {
    let Some(threshold) = policy.retire_below_cvr else {
        return Vec::new();
    };
    let active: Vec<usize> = (0..variants.len())
        .filter(|&i| !variants[i].retired)
        .collect();
    let cvr_of = |i: usize| variants[i].totals.cvr().unwrap_or(0.0);
    let mut out: Vec<usize> = active
        .iter()
        .copied()
        .filter(|&i| {
            variants[i].totals.impressions >= policy.min_impressions && cvr_of(i) < threshold
        })
        .collect();
    if !active.is_empty() && out.len() == active.len() {
        // Keep the best of them (the first on ties).
        let mut keep = out[0];
        for &i in &out[1..] {
            if cvr_of(i) > cvr_of(keep) {
                keep = i;
            }
        }
        out.retain(|&i| i != keep);
    }
    out
}

/// The next active variant after `current` in configured order (wrapping), or the first active one.
fn next_active(
    variants: &[VariantState],
    current: Option<usize>,
    pred: impl Fn(usize) -> bool,
) -> Option<usize> {
    let n = variants.len();
    if n == 0 {
        return None;
    }
    let start = current.map(|c| c + 1).unwrap_or(0);
    (0..n)
        .map(|k| (start + k) % n)
        .find(|&i| !variants[i].retired && pred(i))
}

/// Picks the variant to make live for the period numbered `round` (0 = the set's first period), given
/// the currently live one. `None` only when every variant is retired or there are none.
///
/// The first period always shows the first active variant, whatever the strategy, so a new set starts
/// predictably. The choice may equal `current` (the best stays live for another period).
pub fn choose_next(
    policy: &Policy,
    variants: &[VariantState],
    current: Option<usize>,
    round: u64,
) -> Option<usize> {
    if current.is_none() {
        return next_active(variants, None, |_| true);
    }
    match policy.strategy {
        Strategy::RoundRobin => next_active(variants, current, |_| true),
        Strategy::BestCtr => {
            let unjudged = |i: usize| variants[i].totals.impressions < policy.min_impressions;
            if let Some(i) = next_active(variants, current, unjudged) {
                return Some(i);
            }
            let mut best: Option<(usize, f64)> = None;
            for (i, v) in variants.iter().enumerate() {
                if v.retired {
                    continue;
                }
                let ctr = v.totals.ctr().unwrap_or(-1.0);
                if best.is_none_or(|(_, b)| ctr > b) {
                    best = Some((i, ctr));
                }
            }
            best.map(|(i, _)| i)
        }
        // Discounted Thompson receives discounted totals ([`discounted_totals`]); the draw is the same.
        Strategy::Thompson | Strategy::DiscountedThompson => {
            let mut rng =
                ChaCha8Rng::seed_from_u64(policy.seed ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut best: Option<(usize, f64)> = None;
            for (i, v) in variants.iter().enumerate() {
                // Draw for every variant (retired too) so one retirement does not reshuffle the others'
                // draws; retired ones just cannot win.
                let conversions = v.totals.conversions.max(0.0);
                let failures = (v.totals.clicks as f64 - conversions).max(0.0);
                let draw = sample_beta(&mut rng, 1.0 + conversions, 1.0 + failures);
                if v.retired {
                    continue;
                }
                if best.is_none_or(|(_, b)| draw > b) {
                    best = Some((i, draw));
                }
            }
            best.map(|(i, _)| i)
        }
    }
}

/// A variant's evidence with each day weighted by `discount`^(age / period): a day `period_secs` old
/// counts `discount` times a day's worth, two periods old `discount²`, and so on. `days` holds
/// (unix seconds of the day, that day's totals). Counts are rounded back to whole impressions and
/// clicks; conversions, spend and revenue stay fractional.
pub fn discounted_totals(
    days: &[(i64, Totals)],
    as_of: i64,
    period_secs: i64,
    discount: f64,
) -> Totals {
    let (mut imp, mut clk, mut out) = (0.0_f64, 0.0_f64, Totals::default());
    for (day, t) in days {
        let age = (as_of - day).max(0) as f64 / period_secs.max(1) as f64;
        let w = discount.clamp(0.0, 1.0).powf(age);
        imp += w * t.impressions as f64;
        clk += w * t.clicks as f64;
        out.conversions += w * t.conversions;
        out.spend += w * t.spend;
        out.revenue += w * t.revenue;
    }
    out.impressions = imp.round() as i64;
    out.clicks = clk.round() as i64;
    out
}

/// Which figure a fatigue rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FatigueMetric {
    /// Click-through rate; higher is better.
    #[default]
    Ctr,
    /// Cost per acquisition; lower is better.
    Cpa,
}

impl FatigueMetric {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FatigueMetric::Ctr => "ctr",
            FatigueMetric::Cpa => "cpa",
        }
    }

    fn value(self, t: &Totals) -> Option<f64> {
        match self {
            FatigueMetric::Ctr => t.ctr(),
            FatigueMetric::Cpa => t.cpa(),
        }
    }
}

/// What a fatigue rule compares the live variant's recent figures with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FatigueBaseline {
    /// The variant's own first period live.
    #[default]
    First,
    /// The set's best variant over its lifetime.
    Best,
}

/// A fatigue rule: rotate early once the live variant has performed at under `below` of its baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FatigueRule {
    /// The figure watched.
    pub metric: FatigueMetric,
    /// Share of the baseline under which the variant is fatigued (0.7 = 70 %).
    pub below: f64,
    /// Impressions both the baseline and the recent window need before the rule judges.
    pub min_impressions: i64,
    /// What "baseline" means.
    pub baseline: FatigueBaseline,
}

/// Why a variant counts as fatigued: the figures that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fatigue {
    /// The figure watched.
    pub metric: FatigueMetric,
    /// Its recent value.
    pub current: f64,
    /// Its baseline value.
    pub baseline: f64,
    /// Performance relative to the baseline (current/baseline for CTR, baseline/current for CPA).
    pub share: f64,
}

impl Fatigue {
    /// The reason recorded with the early rotation and shown on the page.
    pub fn reason(&self, rule: &FatigueRule) -> String {
        let against = match rule.baseline {
            FatigueBaseline::First => "its first period",
            FatigueBaseline::Best => "the set's best",
        };
        format!(
            "fatigue: {} {:.4} performs at {:.0}% of {against} ({:.4}), under {:.0}%",
            self.metric.as_str(),
            self.current,
            self.share * 100.0,
            self.baseline,
            rule.below * 100.0
        )
    }
}

/// Whether the live variant is fatigued: both windows have `min_impressions`, both figures are
/// defined, and the recent one performs at under `below` of the baseline. CPA is judged inversely
/// (a CPA that grows to 1/0.7 of the baseline is 70 % performance).
pub fn fatigue(rule: &FatigueRule, baseline: &Totals, recent: &Totals) -> Option<Fatigue> {
    if baseline.impressions < rule.min_impressions || recent.impressions < rule.min_impressions {
        return None;
    }
    let (b, c) = (rule.metric.value(baseline)?, rule.metric.value(recent)?);
    let share = match rule.metric {
        FatigueMetric::Ctr if b > 0.0 => c / b,
        FatigueMetric::Cpa if c > 0.0 => b / c,
        _ => return None,
    };
    (share < rule.below).then_some(Fatigue {
        metric: rule.metric,
        current: c,
        baseline: b,
        share,
    })
}

/// One draw from Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
pub fn sample_beta<R: Rng>(rng: &mut R, a: f64, b: f64) -> f64 {
    let x = sample_gamma(rng, a);
    let y = sample_gamma(rng, b);
    if x + y <= 0.0 {
        0.5
    } else {
        x / (x + y)
    }
}

/// Gamma(shape, 1) by Marsaglia and Tsang (2000), boosted for shapes under 1.
fn sample_gamma<R: Rng>(rng: &mut R, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.gen_range(f64::EPSILON..1.0);
        return sample_gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u: f64 = rng.gen_range(f64::EPSILON..1.0);
        if u < 1.0 - 0.0331 * x * x * x * x || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

/// A standard normal draw (Box–Muller).
fn standard_normal<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str, impressions: i64, clicks: i64, conversions: f64, retired: bool) -> VariantState {
        VariantState {
            id: id.into(),
            totals: Totals {
                impressions,
                clicks,
                conversions,
                spend: 0.0,
                revenue: 0.0,
            },
            retired,
        }
    }

    fn policy(strategy: Strategy) -> Policy {
        Policy {
            strategy,
            min_impressions: 1000,
            retire_below_cvr: None,
            seed: 7,
        }
    }

    #[test]
    fn periods_parse_in_rule_units() {
        let cases: &[(&str, Result<i64, ()>)] = &[
            ("14d", Ok(14 * 86_400)),
            ("2w", Ok(14 * 86_400)),
            ("36h", Ok(36 * 3_600)),
            ("90m", Ok(5_400)),
            (" 7d ", Ok(7 * 86_400)),
            ("0d", Err(())),
            ("-1d", Err(())),
            ("14", Err(())),
            ("d", Err(())),
            ("", Err(())),
            ("14x", Err(())),
            ("1.5d", Err(())),
            ("é", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(parse_period(input).map_err(|_| ()), *want, "{input:?}");
        }
    }

    #[test]
    fn period_over_at_and_after_the_boundary() {
        let cases = [
            (0, 100, 99, false),
            (0, 100, 100, true),
            (0, 100, 250, true),
            (1_000, 86_400, 50_000, false),
            (i64::MAX - 5, 100, 0, false),
        ];
        for (from, period, as_of, want) in cases {
            assert_eq!(
                period_over(from, period, as_of),
                want,
                "{from} {period} {as_of}"
            );
        }
    }

    #[test]
    fn strategies_parse_from_config_spelling() {
        for s in [
            Strategy::RoundRobin,
            Strategy::BestCtr,
            Strategy::Thompson,
            Strategy::DiscountedThompson,
        ] {
            assert_eq!(s.as_str().parse::<Strategy>(), Ok(s));
        }
        assert!("epsilon_greedy".parse::<Strategy>().is_err());
    }

    #[test]
    fn round_robin_cycles_and_skips_retired() {
        let p = policy(Strategy::RoundRobin);
        let vs = vec![
            v("a", 0, 0, 0.0, false),
            v("b", 0, 0, 0.0, true),
            v("c", 0, 0, 0.0, false),
        ];
        // (current, want)
        let cases = [
            (None, Some(0)),
            (Some(0), Some(2)),
            (Some(2), Some(0)),
            (Some(1), Some(2)),
        ];
        for (cur, want) in cases {
            assert_eq!(choose_next(&p, &vs, cur, 1), want, "current {cur:?}");
        }
        let all_retired = vec![v("a", 0, 0, 0.0, true), v("b", 0, 0, 0.0, true)];
        assert_eq!(choose_next(&p, &all_retired, Some(0), 1), None);
        assert_eq!(choose_next(&p, &[], None, 0), None);
    }

    #[test]
    fn first_period_is_the_first_active_variant_for_every_strategy() {
        let vs = vec![
            v("a", 0, 0, 0.0, true),
            v("b", 5000, 10, 0.0, false),
            v("c", 5000, 900, 800.0, false),
        ];
        for s in [
            Strategy::RoundRobin,
            Strategy::BestCtr,
            Strategy::Thompson,
            Strategy::DiscountedThompson,
        ] {
            assert_eq!(choose_next(&policy(s), &vs, None, 0), Some(1), "{s}");
        }
    }

    #[test]
    fn best_ctr_explores_until_every_variant_is_judged() {
        let p = policy(Strategy::BestCtr);
        // (variants, current, want)
        let cases: Vec<(Vec<VariantState>, usize, usize)> = vec![
            // b has too few impressions: explore it.
            (
                vec![
                    v("a", 5000, 100, 1.0, false),
                    v("b", 10, 1, 0.0, false),
                    v("c", 5000, 50, 1.0, false),
                ],
                0,
                1,
            ),
            // everyone judged: the best CTR (c), even if it is live already.
            (
                vec![
                    v("a", 5000, 100, 1.0, false),
                    v("b", 2000, 10, 5.0, false),
                    v("c", 1000, 90, 0.0, false),
                ],
                2,
                2,
            ),
            // the best CTR is retired: next best.
            (
                vec![
                    v("a", 5000, 100, 1.0, false),
                    v("b", 2000, 10, 5.0, false),
                    v("c", 1000, 90, 0.0, true),
                ],
                2,
                0,
            ),
            // an unjudged retired variant is not explored.
            (
                vec![
                    v("a", 5000, 100, 1.0, false),
                    v("b", 0, 0, 0.0, true),
                    v("c", 5000, 20, 0.0, false),
                ],
                0,
                0,
            ),
        ];
        for (vs, cur, want) in cases {
            assert_eq!(choose_next(&p, &vs, Some(cur), 3), Some(want), "{vs:?}");
        }
    }

    #[test]
    fn thompson_is_reproducible_and_favours_the_better_converter() {
        let p = policy(Strategy::Thompson);
        let vs = vec![
            v("a", 50_000, 1000, 40.0, false),
            v("b", 50_000, 1000, 80.0, false),
        ];
        let picks: Vec<Option<usize>> = (1..=200)
            .map(|r| choose_next(&p, &vs, Some(0), r))
            .collect();
        let again: Vec<Option<usize>> = (1..=200)
            .map(|r| choose_next(&p, &vs, Some(0), r))
            .collect();
        assert_eq!(picks, again, "same seed and rounds, same choices");
        let b = picks.iter().filter(|p| **p == Some(1)).count();
        // 1000 clicks each at 4% vs 8%: the posteriors barely overlap.
        assert!(b >= 195, "b chosen {b}/200");
        // With no data the draws are uniform-ish: both get chosen.
        let fresh = vec![v("a", 0, 0, 0.0, false), v("b", 0, 0, 0.0, false)];
        let b = (1..=200)
            .filter(|r| choose_next(&p, &fresh, Some(0), *r) == Some(1))
            .count();
        assert!((60..=140).contains(&b), "b chosen {b}/200 without data");
        // A different seed gives a different sequence.
        let other = Policy {
            seed: 8,
            ..p.clone()
        };
        let seq = |p: &Policy| {
            (1..=50)
                .map(|r| choose_next(p, &fresh, Some(0), r))
                .collect::<Vec<_>>()
        };
        assert_ne!(seq(&p), seq(&other));
        // Retired variants never win, whatever the draws.
        let retired = vec![
            v("a", 50_000, 1000, 40.0, false),
            v("b", 50_000, 1000, 80.0, true),
        ];
        assert!((1..=100).all(|r| choose_next(&p, &retired, Some(0), r) == Some(0)));
    }

    #[test]
    fn beta_draws_have_the_right_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for (a, b) in [(1.0, 1.0), (3.0, 7.0), (41.0, 961.0), (0.5, 0.5)] {
            let n = 20_000;
            let mean = (0..n).map(|_| sample_beta(&mut rng, a, b)).sum::<f64>() / n as f64;
            let want = a / (a + b);
            assert!(
                (mean - want).abs() < 0.01,
                "Beta({a},{b}) mean {mean} want {want}"
            );
        }
    }

    #[test]
    fn retirement_after_min_impressions_and_never_the_last() {
        let p = Policy {
            retire_below_cvr: Some(0.05),
            ..policy(Strategy::RoundRobin)
        };
        // (variants, want retired now)
        let cases: Vec<(Vec<VariantState>, Vec<usize>)> = vec![
            // a under threshold with enough impressions; b too few impressions; c fine.
            (
                vec![
                    v("a", 2000, 100, 1.0, false),
                    v("b", 500, 100, 0.0, false),
                    v("c", 2000, 100, 9.0, false),
                ],
                vec![0],
            ),
            // no clicks at all counts as CVR 0.
            (
                vec![v("a", 2000, 0, 0.0, false), v("b", 2000, 100, 9.0, false)],
                vec![0],
            ),
            // already retired variants are not retired again.
            (
                vec![v("a", 2000, 100, 1.0, true), v("b", 2000, 100, 9.0, false)],
                vec![],
            ),
            // all would go: the best converter (b) stays.
            (
                vec![
                    v("a", 2000, 100, 1.0, false),
                    v("b", 2000, 100, 4.0, false),
                    v("c", 2000, 100, 2.0, false),
                ],
                vec![0, 2],
            ),
            // the only active one stays.
            (
                vec![v("a", 2000, 100, 1.0, true), v("b", 2000, 100, 0.0, false)],
                vec![],
            ),
        ];
        for (vs, want) in cases {
            assert_eq!(retirements(&p, &vs), want, "{vs:?}");
        }
        assert!(retirements(
            &policy(Strategy::RoundRobin),
            &[v("a", 9000, 100, 0.0, false)]
        )
        .is_empty());
    }

    fn t(impressions: i64, clicks: i64, conversions: f64, spend: f64) -> Totals {
        Totals {
            impressions,
            clicks,
            conversions,
            spend,
            revenue: 0.0,
        }
    }

    #[test]
    fn fatigue_rule_table() {
        let ctr = FatigueRule {
            metric: FatigueMetric::Ctr,
            below: 0.7,
            min_impressions: 1000,
            baseline: FatigueBaseline::First,
        };
        let cpa = FatigueRule {
            metric: FatigueMetric::Cpa,
            ..ctr
        };
        // (rule, baseline, recent, fatigued share)
        let cases: [(&FatigueRule, Totals, Totals, Option<f64>); 7] = [
            (
                &ctr,
                t(2000, 60, 3.0, 10.0),
                t(2000, 40, 2.0, 10.0),
                Some(40.0 / 60.0),
            ),
            (&ctr, t(2000, 60, 3.0, 10.0), t(2000, 42, 2.0, 10.0), None), // exactly 70 %
            (&ctr, t(2000, 60, 3.0, 10.0), t(999, 1, 0.0, 10.0), None),   // too few impressions
            (&ctr, t(500, 60, 3.0, 10.0), t(2000, 1, 0.0, 10.0), None),   // baseline too thin
            (&ctr, t(2000, 0, 0.0, 10.0), t(2000, 0, 0.0, 10.0), None),   // no baseline CTR
            (
                &cpa,
                t(2000, 60, 10.0, 100.0),
                t(2000, 60, 5.0, 100.0),
                Some(0.5),
            ), // CPA 10 → 20
            (
                &cpa,
                t(2000, 60, 10.0, 100.0),
                t(2000, 60, 0.0, 100.0),
                None,
            ), // no conversions: undefined
        ];
        for (i, (rule, base, recent, want)) in cases.iter().enumerate() {
            let got = fatigue(rule, base, recent).map(|f| f.share);
            match (got, want) {
                (None, None) => {}
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-12, "case {i}: {g} vs {w}"),
                _ => panic!("case {i}: {got:?} vs {want:?}"),
            }
        }
        let f = fatigue(&ctr, &t(2000, 60, 3.0, 10.0), &t(2000, 30, 2.0, 10.0)).expect("fatigued");
        assert_eq!(
            f.reason(&ctr),
            "fatigue: ctr 0.0150 performs at 50% of its first period (0.0300), under 70%"
        );
    }

    #[test]
    fn discounting_weighs_old_days_less() {
        let week = 7 * 86_400;
        let days = [
            (0, t(1000, 100, 10.0, 0.0)),
            (week, t(1000, 100, 10.0, 0.0)),
        ];
        let d = discounted_totals(&days, week, week, 0.5);
        assert_eq!(d.impressions, 1500);
        assert_eq!(d.clicks, 150);
        assert!((d.conversions - 15.0).abs() < 1e-12);
        assert_eq!(discounted_totals(&days, week, week, 1.0).clicks, 200);
    }

    type Evidence<'a> = dyn Fn(&[(i64, Totals)]) -> Totals + 'a;

    #[test]
    fn discounted_thompson_follows_a_variant_that_got_worse() {
        // Variant a converted well long ago and badly lately; b steadily. Plain Thompson on lifetime
        // totals still favours a; discounted evidence favours b.
        let period = 7 * 86_400;
        let now = 20 * period;
        let a_days: Vec<(i64, Totals)> = (0..20)
            .map(|w| {
                let conv = if w < 15 { 30.0 } else { 1.0 };
                (w * period, t(10_000, 200, conv, 0.0))
            })
            .collect();
        let b_days: Vec<(i64, Totals)> = (0..20)
            .map(|w| (w * period, t(10_000, 200, 12.0, 0.0)))
            .collect();
        let lifetime = |d: &[(i64, Totals)]| discounted_totals(d, now, period, 1.0);
        let recent = |d: &[(i64, Totals)]| discounted_totals(d, now, period, 0.5);
        let wins = |strategy: Strategy, f: &Evidence<'_>| {
            let states = vec![
                VariantState {
                    id: "a".into(),
                    totals: f(&a_days),
                    retired: false,
                },
                VariantState {
                    id: "b".into(),
                    totals: f(&b_days),
                    retired: false,
                },
            ];
            (1..201u64)
                .filter(|&r| choose_next(&policy(strategy), &states, Some(0), r) == Some(1))
                .count()
        };
        assert!(wins(Strategy::Thompson, &lifetime) < 20);
        assert!(wins(Strategy::DiscountedThompson, &recent) > 180);
    }
}
