//! Metric math of the rollups (DESIGN §8): CTR, CVR, CPA and ROAS.
//!
//! Every ratio is `None` when its denominator is zero, so a report shows an empty cell rather than `0`
//! (which would claim a measured zero) or `NaN`/`inf` (which break CSV and JSON consumers). Kept pure
//! so the store's rollup, the rotation strategies and the report all compute them the same way.

use serde::{Deserialize, Serialize};

/// `numerator / denominator`, or `None` when the denominator is zero (or not a finite number).
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    if denominator == 0.0 || !denominator.is_finite() || !numerator.is_finite() {
        None
    } else {
        Some(numerator / denominator)
    }
}

/// Click-through rate = clicks / impressions: how often people who saw the creative clicked it.
pub fn ctr(clicks: i64, impressions: i64) -> Option<f64> {
    ratio(clicks as f64, impressions as f64)
}

/// Conversion rate = conversions / clicks: how often a click turned into a purchase.
pub fn cvr(conversions: f64, clicks: i64) -> Option<f64> {
    ratio(conversions, clicks as f64)
}

/// Cost per acquisition = spend / conversions.
pub fn cpa(spend: f64, conversions: f64) -> Option<f64> {
    ratio(spend, conversions)
}

/// Return on ad spend = revenue / spend.
pub fn roas(revenue: f64, spend: f64) -> Option<f64> {
    ratio(revenue, spend)
}

/// Summed delivery figures of some slice (a day, a creative, a segment), the input of every ratio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Impressions (for email: delivered).
    pub impressions: i64,
    /// Clicks.
    pub clicks: i64,
    /// Conversions (fractional on some platforms).
    pub conversions: f64,
    /// Spend in major units.
    pub spend: f64,
    /// Attributed revenue in major units.
    pub revenue: f64,
}

impl Totals {
    /// Adds another slice, so totals across channels are sums of the parts (never averages of ratios).
    pub fn add(&mut self, other: &Totals) {
        self.impressions += other.impressions;
        self.clicks += other.clicks;
        self.conversions += other.conversions;
        self.spend += other.spend;
        self.revenue += other.revenue;
    }

    /// [`ctr`] of these totals.
    pub fn ctr(&self) -> Option<f64> {
        ctr(self.clicks, self.impressions)
    }

    /// [`cvr`] of these totals.
    pub fn cvr(&self) -> Option<f64> {
        cvr(self.conversions, self.clicks)
    }

    /// [`cpa`] of these totals.
    pub fn cpa(&self) -> Option<f64> {
        cpa(self.spend, self.conversions)
    }

    /// [`roas`] of these totals.
    pub fn roas(&self) -> Option<f64> {
        roas(self.revenue, self.spend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(x), Some(y)) => (x - y).abs() < 1e-12,
            _ => false,
        }
    }

    #[test]
    fn ratios_are_empty_on_zero_denominators() {
        // (clicks, impressions, conversions, spend, revenue) -> (ctr, cvr, cpa, roas)
        type Case = ((i64, i64, f64, f64, f64), [Option<f64>; 4]);
        let cases: &[Case] = &[
            ((0, 0, 0.0, 0.0, 0.0), [None, None, None, None]),
            (
                (10, 1000, 2.0, 50.0, 200.0),
                [Some(0.01), Some(0.2), Some(25.0), Some(4.0)],
            ),
            (
                (0, 1000, 0.0, 12.5, 0.0),
                [Some(0.0), None, None, Some(0.0)],
            ),
            ((5, 100, 0.0, 0.0, 0.0), [Some(0.05), Some(0.0), None, None]),
            (
                (4, 100, 1.5, 3.0, 0.0),
                [Some(0.04), Some(0.375), Some(2.0), Some(0.0)],
            ),
            ((0, 0, 0.0, 0.0, 99.0), [None, None, None, None]),
        ];
        for ((clicks, imps, conv, spend, rev), want) in cases {
            let t = Totals {
                impressions: *imps,
                clicks: *clicks,
                conversions: *conv,
                spend: *spend,
                revenue: *rev,
            };
            let got = [t.ctr(), t.cvr(), t.cpa(), t.roas()];
            for (g, w) in got.iter().zip(want) {
                assert!(close(*g, *w), "{t:?}: got {got:?}, want {want:?}");
            }
        }
    }

    #[test]
    fn ratio_refuses_non_finite_inputs() {
        assert_eq!(ratio(1.0, f64::NAN), None);
        assert_eq!(ratio(f64::INFINITY, 2.0), None);
        assert_eq!(ratio(1.0, -0.0), None);
    }

    #[test]
    fn totals_add_sums_parts() {
        let mut a = Totals {
            impressions: 100,
            clicks: 2,
            conversions: 1.0,
            spend: 1.5,
            revenue: 10.0,
        };
        a.add(&Totals {
            impressions: 300,
            clicks: 6,
            conversions: 0.5,
            spend: 2.5,
            revenue: 0.0,
        });
        assert_eq!(a.impressions, 400);
        assert_eq!(a.clicks, 8);
        assert!(close(a.ctr(), Some(0.02)));
        assert!(close(a.cvr(), Some(1.5 / 8.0)));
        assert!(close(a.roas(), Some(2.5)));
    }
}
