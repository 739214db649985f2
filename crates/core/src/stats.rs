//! Interval statistics for lift (DESIGN §8): how sure campaignd is that a segment's treated members
//! (sent to the platform) convert and spend more than its holdout (kept back), pure so every figure
//! can be checked against published values.
//!
//! Methods, all two-sided at the given confidence (campaignd reports 95 %):
//! - one proportion: the **Wilson score interval** (Wilson 1927; Newcombe 1998, "Two-sided confidence
//!   intervals for the single proportion", Stat. Med. 17:857, method 3), which behaves at 0 and near
//!   0/1 where the Wald interval collapses;
//! - difference of two independent proportions: **Newcombe's hybrid score interval** (Newcombe 1998,
//!   "Interval estimation for the difference between independent proportions", Stat. Med. 17:873,
//!   method 10), built from the two Wilson intervals;
//! - relative difference of proportions (p₁/p₂ − 1): the **Katz log interval** of the risk ratio;
//! - difference of two means (revenue per member, AOV): **Welch's t interval** with the
//!   Welch–Satterthwaite degrees of freedom (no equal-variance assumption);
//! - relative difference of means (m₁/m₂ − 1): the **delta-method interval on the log ratio**.
//!
//! The Student t quantile is computed by bisection on the exact CDF (regularised incomplete beta by
//! Lentz's continued fraction, Numerical Recipes §6.4), the normal quantile by Acklam's rational
//! approximation (relative error < 1.2e-9).

use serde::Serialize;

/// A two-sided interval `[low, high]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

impl Interval {
    /// True when the interval contains 0: the difference is not distinguishable from none.
    pub fn contains_zero(&self) -> bool {
        self.low <= 0.0 && self.high >= 0.0
    }
}

/// The standard normal quantile (inverse CDF) at `p` in (0, 1), by Acklam's algorithm.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.02425;
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if p < P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// z for a two-sided interval at `confidence` (0.95 → 1.95996…).
pub fn z_two_sided(confidence: f64) -> f64 {
    normal_quantile(1.0 - (1.0 - confidence) / 2.0)
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The regularised incomplete beta function I_x(a, b).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

/// P(T ≤ t) for Student's t with `df` degrees of freedom (df may be fractional, as Welch's is).
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The Student t quantile at `p` in (0, 1), by bisection on [`student_t_cdf`] to 1e-12.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) || df <= 0.0 || df.is_nan() {
        return f64::NAN;
    }
    if p == 0.5 {
        return 0.0;
    }
    if p < 0.5 {
        return -student_t_quantile(1.0 - p, df);
    }
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while student_t_cdf(hi, df) < p {
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Wilson score interval of `successes` out of `n` at `confidence`; `None` when `n` is 0.
pub fn wilson(successes: u64, n: u64, confidence: f64) -> Option<Interval> {
    if n == 0 || successes > n {
        return None;
    }
    let z = z_two_sided(confidence);
    let (x, n) = (successes as f64, n as f64);
    let p = x / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(Interval {
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    })
}

/// Newcombe's hybrid score interval (method 10) for p₁ − p₂ of two independent groups; `None` when
/// either group is empty.
pub fn newcombe_difference(
    x1: u64,
    n1: u64,
    x2: u64,
    n2: u64,
    confidence: f64,
) -> Option<Interval> {
    let (l1, u1) = wilson(x1, n1, confidence).map(|i| (i.low, i.high))?;
    let (l2, u2) = wilson(x2, n2, confidence).map(|i| (i.low, i.high))?;
    let p1 = x1 as f64 / n1 as f64;
    let p2 = x2 as f64 / n2 as f64;
    let d = p1 - p2;
    Some(Interval {
        low: d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(),
        high: d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt(),
    })
}

/// Katz log interval of the relative difference p₁/p₂ − 1; `None` when either group has no success
/// (the ratio or its variance is undefined).
pub fn relative_difference_of_proportions(
    x1: u64,
    n1: u64,
    x2: u64,
    n2: u64,
    confidence: f64,
) -> Option<Interval> {
    if x1 == 0 || x2 == 0 || n1 == 0 || n2 == 0 {
        return None;
    }
    let (x1f, n1f, x2f, n2f) = (x1 as f64, n1 as f64, x2 as f64, n2 as f64);
    let ln_rr = ((x1f / n1f) / (x2f / n2f)).ln();
    let se = (1.0 / x1f - 1.0 / n1f + 1.0 / x2f - 1.0 / n2f)
        .max(0.0)
        .sqrt();
    let z = z_two_sided(confidence);
    Some(Interval {
        low: (ln_rr - z * se).exp() - 1.0,
        high: (ln_rr + z * se).exp() - 1.0,
    })
}

/// A sample summarised by count, sum and sum of squares — what set-based SQL returns per group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Sample {
    /// Observations.
    pub n: u64,
    /// Σx.
    pub sum: f64,
    /// Σx².
    pub sum_sq: f64,
}

impl Sample {
    /// Summarises a slice of observations.
    pub fn of(xs: &[f64]) -> Sample {
        Sample {
            n: xs.len() as u64,
            sum: xs.iter().sum(),
            sum_sq: xs.iter().map(|x| x * x).sum(),
        }
    }

    /// The mean; `None` for an empty sample.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// The unbiased sample variance; `None` under two observations.
    pub fn variance(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let n = self.n as f64;
        Some(((self.sum_sq - self.sum * self.sum / n) / (n - 1.0)).max(0.0))
    }
}

/// Welch's t interval for mean₁ − mean₂; `None` under two observations in either sample, or when
/// both variances are 0 (the difference is then exact and no interval is meaningful).
pub fn welch_difference(a: &Sample, b: &Sample, confidence: f64) -> Option<Interval> {
    let (m1, m2) = (a.mean()?, b.mean()?);
    let (v1, v2) = (a.variance()? / a.n as f64, b.variance()? / b.n as f64);
    let se2 = v1 + v2;
    if se2 <= 0.0 {
        return None;
    }
    let df = se2 * se2 / (v1 * v1 / (a.n as f64 - 1.0) + v2 * v2 / (b.n as f64 - 1.0));
    let t = student_t_quantile(1.0 - (1.0 - confidence) / 2.0, df);
    let d = m1 - m2;
    let half = t * se2.sqrt();
    Some(Interval {
        low: d - half,
        high: d + half,
    })
}

/// Delta-method interval of mean₁/mean₂ − 1 on the log scale; `None` when a mean is not positive or
/// a variance is missing.
pub fn relative_difference_of_means(a: &Sample, b: &Sample, confidence: f64) -> Option<Interval> {
    let (m1, m2) = (a.mean()?, b.mean()?);
    if m1 <= 0.0 || m2 <= 0.0 {
        return None;
    }
    let se =
        (a.variance()? / (a.n as f64 * m1 * m1) + b.variance()? / (b.n as f64 * m2 * m2)).sqrt();
    let z = z_two_sided(confidence);
    let ln_r = (m1 / m2).ln();
    Some(Interval {
        low: (ln_r - z * se).exp() - 1.0,
        high: (ln_r + z * se).exp() - 1.0,
    })
}

/// Members a group needs before campaignd reports its interval as meaningful.
pub const MIN_GROUP_MEMBERS: u64 = 30;
/// Successes and failures a proportion needs (the usual np ≥ 5 rule) before the interval is trusted.
pub const MIN_GROUP_EVENTS: u64 = 5;

/// Why a group is too small for its interval to mean much, or `None` when it is large enough.
pub fn small_group_warning(label: &str, successes: u64, n: u64) -> Option<String> {
    if n < MIN_GROUP_MEMBERS {
        return Some(format!(
            "{label} has {n} members (< {MIN_GROUP_MEMBERS}): the interval is not meaningful"
        ));
    }
    if successes < MIN_GROUP_EVENTS || n - successes < MIN_GROUP_EVENTS {
        return Some(format!(
            "{label} has {successes} converters of {n} (fewer than {MIN_GROUP_EVENTS} converters or non-converters): the interval is rough"
        ));
    }
    None
}

/// What one group (treatment or holdout) of a sync did in the window after assignment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct GroupData {
    /// Members assigned.
    pub members: u64,
    /// Members who ordered at least once in their window.
    pub converters: u64,
    /// Per-member revenue in the window (zeros included): n = members.
    pub revenue_per_member: Sample,
    /// Totals of the orders placed in the windows: n = orders.
    pub order_totals: Sample,
}

/// One group's point figures with the conversion rate's Wilson interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupSummary {
    /// Members assigned.
    pub members: u64,
    /// Members who ordered in their window.
    pub converters: u64,
    /// converters / members.
    pub conversion_rate: Option<f64>,
    /// Wilson score interval of the conversion rate.
    pub conversion_interval: Option<Interval>,
    /// Orders in the windows.
    pub orders: u64,
    /// Revenue in the windows.
    pub revenue: f64,
    /// revenue / members.
    pub revenue_per_member: Option<f64>,
    /// revenue / orders.
    pub aov: Option<f64>,
}

impl GroupSummary {
    fn of(g: &GroupData, confidence: f64) -> GroupSummary {
        GroupSummary {
            members: g.members,
            converters: g.converters,
            conversion_rate: (g.members > 0).then(|| g.converters as f64 / g.members as f64),
            conversion_interval: wilson(g.converters, g.members, confidence),
            orders: g.order_totals.n,
            revenue: g.revenue_per_member.sum,
            revenue_per_member: g.revenue_per_member.mean(),
            aov: g.order_totals.mean(),
        }
    }
}

/// Treatment minus holdout for one figure, absolute and relative, each with its interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// treatment − holdout.
    pub absolute: Option<f64>,
    /// Its interval.
    pub absolute_interval: Option<Interval>,
    /// treatment / holdout − 1.
    pub relative: Option<f64>,
    /// Its interval.
    pub relative_interval: Option<Interval>,
    /// How the intervals were computed.
    pub method: &'static str,
}

/// Lift of a treatment over its holdout: both groups, the three differences, and warnings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lift {
    /// Confidence of every interval (0.95).
    pub confidence: f64,
    /// The members who were sent.
    pub treatment: GroupSummary,
    /// The members held back.
    pub holdout: GroupSummary,
    /// Conversion rate difference (percentage points as a fraction).
    pub conversion: Difference,
    /// Revenue per member difference.
    pub revenue_per_member: Difference,
    /// Average order value difference.
    pub aov: Difference,
    /// Groups too small for the intervals to mean much.
    pub warnings: Vec<String>,
    /// True when neither the conversion nor the revenue-per-member lift is distinguishable from 0
    /// (both intervals contain 0, or are undefined): a candidate to retire.
    pub indistinguishable: bool,
}

fn mean_difference(a: &Sample, b: &Sample, confidence: f64) -> Difference {
    let absolute = a.mean().zip(b.mean()).map(|(x, y)| x - y);
    let relative = a
        .mean()
        .zip(b.mean())
        .and_then(|(x, y)| (y != 0.0).then(|| x / y - 1.0));
    Difference {
        absolute,
        absolute_interval: welch_difference(a, b, confidence),
        relative,
        relative_interval: relative_difference_of_means(a, b, confidence),
        method: "Welch t interval; relative: delta method on the log ratio",
    }
}

/// Computes the lift of `treatment` over `holdout` at `confidence`.
pub fn lift(treatment: &GroupData, holdout: &GroupData, confidence: f64) -> Lift {
    let (t, h) = (treatment, holdout);
    let conversion = {
        let pt = (t.members > 0).then(|| t.converters as f64 / t.members as f64);
        let ph = (h.members > 0).then(|| h.converters as f64 / h.members as f64);
        Difference {
            absolute: pt.zip(ph).map(|(a, b)| a - b),
            absolute_interval: newcombe_difference(
                t.converters,
                t.members,
                h.converters,
                h.members,
                confidence,
            ),
            relative: pt.zip(ph).and_then(|(a, b)| (b > 0.0).then(|| a / b - 1.0)),
            relative_interval: relative_difference_of_proportions(
                t.converters,
                t.members,
                h.converters,
                h.members,
                confidence,
            ),
            method:
                "Newcombe hybrid score interval (Wilson per group); relative: Katz log interval",
        }
    };
    let revenue_per_member =
        mean_difference(&t.revenue_per_member, &h.revenue_per_member, confidence);
    let aov = mean_difference(&t.order_totals, &h.order_totals, confidence);
    let warnings: Vec<String> = [
        small_group_warning("treatment", t.converters, t.members),
        small_group_warning("holdout", h.converters, h.members),
    ]
    .into_iter()
    .flatten()
    .collect();
    let no_lift = |d: &Difference| d.absolute_interval.is_none_or(|i| i.contains_zero());
    Lift {
        confidence,
        treatment: GroupSummary::of(t, confidence),
        holdout: GroupSummary::of(h, confidence),
        indistinguishable: no_lift(&conversion) && no_lift(&revenue_per_member),
        conversion,
        revenue_per_member,
        aov,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn normal_quantiles_match_tables() {
        for (p, z) in [
            (0.975, 1.959_963_984_540_054),
            (0.95, 1.644_853_626_951_472),
            (0.995, 2.575_829_303_548_901),
            (0.5, 0.0),
            (0.01, -2.326_347_874_040_841),
        ] {
            assert!(
                close(normal_quantile(p), z, 1e-8),
                "p={p}: {}",
                normal_quantile(p)
            );
        }
    }

    #[test]
    fn student_t_quantiles_match_tables() {
        // Two-sided 95 % critical values, e.g. NIST/SEMATECH e-Handbook §1.3.6.7.2.
        for (df, t) in [
            (1.0, 12.706_204_736),
            (2.0, 4.30265273),
            (5.0, 2.570_581_836),
            (10.0, 2.228_138_852),
            (30.0, 2.042_272_456),
            (100.0, 1.983_971_519),
        ] {
            let q = student_t_quantile(0.975, df);
            assert!(close(q, t, 1e-6), "df={df}: {q}");
        }
        assert!(close(student_t_cdf(0.0, 7.0), 0.5, 1e-12));
        assert!(close(student_t_cdf(-2.228_138_852, 10.0), 0.025, 1e-8));
    }

    #[test]
    fn wilson_matches_newcombe_1998() {
        // Newcombe (1998a) Table I, method 3 (score without continuity correction).
        for (x, n, lo, hi) in [
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0, 0.1611),
            (1, 29, 0.0061, 0.1718),
        ] {
            let i = wilson(x, n, 0.95).expect("n > 0");
            assert!(
                close(i.low, lo, 5e-5) && close(i.high, hi, 5e-5),
                "{x}/{n}: {i:?}"
            );
        }
        assert_eq!(wilson(0, 0, 0.95), None);
    }

    #[test]
    fn newcombe_hybrid_matches_newcombe_1998() {
        // Newcombe (1998b) Table II, method 10, examples (a) and (b); (c) and (d) recomputed from the
        // paper's formula with Python's math module (z = 1.959963984540054).
        for (x1, n1, x2, n2, lo, hi) in [
            (56, 70, 48, 80, 0.0524, 0.3339),
            (9, 10, 3, 10, 0.1705, 0.809),
            (6, 7, 2, 7, 0.0582, 0.8062),
            (5, 56, 0, 29, -0.0381, 0.1926),
        ] {
            let i = newcombe_difference(x1, n1, x2, n2, 0.95).expect("groups");
            assert!(
                close(i.low, lo, 5e-5) && close(i.high, hi, 5e-5),
                "{x1}/{n1} - {x2}/{n2}: {i:?}"
            );
        }
    }

    #[test]
    fn katz_relative_difference_by_hand() {
        // 30/100 vs 20/100: RR = 1.5, se = sqrt(1/30 - 1/100 + 1/20 - 1/100) = 0.251661;
        // exp(ln 1.5 ± 1.959964·0.251661) = 0.915961 .. 2.456437 (Python math module).
        let i = relative_difference_of_proportions(30, 100, 20, 100, 0.95).expect("defined");
        assert!(close(i.low, 0.915_961 - 1.0, 1e-5), "{i:?}");
        assert!(close(i.high, 2.456_437 - 1.0, 1e-5), "{i:?}");
        assert_eq!(
            relative_difference_of_proportions(0, 100, 20, 100, 0.95),
            None
        );
    }

    #[test]
    fn welch_interval_by_hand() {
        // a = 1..=10 (mean 5.5, var 9.1667), b = [2, 4, 6, 8] (mean 5, var 6.6667):
        // se² = 0.916667 + 1.666667 = 2.583333, df = 2.583333² / (0.916667²/9 + 1.666667²/3) = 6.547313,
        // t(0.975, 6.547313) = 2.398174 (Simpson integration of the t density in Python), so
        // 0.5 ± 2.398174·1.607275 = -3.354526 .. 4.354526.
        let a = Sample::of(&(1..=10).map(f64::from).collect::<Vec<_>>());
        let b = Sample::of(&[2.0, 4.0, 6.0, 8.0]);
        let i = welch_difference(&a, &b, 0.95).expect("defined");
        assert!(close(i.low, -3.354_526, 1e-5), "{i:?}");
        assert!(close(i.high, 4.354_526, 1e-5), "{i:?}");
        assert_eq!(welch_difference(&Sample::of(&[1.0]), &b, 0.95), None);
    }

    #[test]
    fn sample_moments() {
        let s = Sample::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.mean(), Some(2.5));
        assert!(close(
            s.variance().unwrap_or_default(),
            1.666_666_666_7,
            1e-9
        ));
        assert_eq!(Sample::default().mean(), None);
    }

    #[test]
    fn relative_means_by_hand() {
        // means 5.5 and 5: ln(1.1) ± 1.959964·sqrt(0.916667/30.25 + 1.666667/25) = 0.09531 ± 0.610373.
        let a = Sample::of(&(1..=10).map(f64::from).collect::<Vec<_>>());
        let b = Sample::of(&[2.0, 4.0, 6.0, 8.0]);
        let i = relative_difference_of_means(&a, &b, 0.95).expect("defined");
        let se = (0.916_666_667_f64 / 30.25 + 1.666_666_667 / 25.0).sqrt();
        let z = 1.959_963_985;
        assert!(
            close(i.low, (1.1_f64.ln() - z * se).exp() - 1.0, 1e-7),
            "{i:?}"
        );
        assert!(
            close(i.high, (1.1_f64.ln() + z * se).exp() - 1.0, 1e-7),
            "{i:?}"
        );
    }

    #[test]
    fn small_groups_are_flagged() {
        assert!(small_group_warning("holdout", 3, 20).is_some());
        assert!(small_group_warning("holdout", 2, 200).is_some());
        assert!(small_group_warning("holdout", 20, 200).is_none());
    }

    #[test]
    fn lift_combines_the_methods() {
        let group = |members: u64, converters: u64, revenue: &[f64]| {
            let mut per_member = revenue.to_vec();
            per_member.resize(members as usize, 0.0);
            GroupData {
                members,
                converters,
                revenue_per_member: Sample::of(&per_member),
                order_totals: Sample::of(revenue),
            }
        };
        let t = group(70, 56, &[10.0; 56]);
        let h = group(80, 48, &[10.0; 48]);
        let l = lift(&t, &h, 0.95);
        let i = l.conversion.absolute_interval.expect("defined");
        assert!(close(i.low, 0.0524, 5e-5) && close(i.high, 0.3339, 5e-5));
        assert!(!l.indistinguishable);
        assert!(l.warnings.is_empty());
        // Every order is 10: AOV has no spread, so no interval.
        assert_eq!(l.aov.absolute, Some(0.0));
        assert_eq!(l.aov.absolute_interval, None);
        let same = lift(&group(40, 10, &[5.0; 10]), &group(40, 10, &[5.0; 10]), 0.95);
        assert!(same.indistinguishable);
        let tiny = lift(&group(10, 2, &[1.0, 2.0]), &group(10, 1, &[3.0]), 0.95);
        assert_eq!(tiny.warnings.len(), 2);
    }
}
