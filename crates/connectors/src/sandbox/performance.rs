//! The sandbox as an ad platform that runs ads: creative swaps ([`CreativeSwapper`]) and simulated daily
//! delivery metrics ([`MetricsSource`]), so rotation, metrics pulls and the report work end to end with
//! no account anywhere.
//!
//! Swaps are kept in `{path}/creatives.json` = `{"format", "objects": {object_id: {"creative_id",
//! "active", "swaps": [{"at", "creative_id"}]}}}`, written atomically. A swap is stamped with the
//! simulated clock ([`with_clock`], which `rotate --as-of` sets) or the wall clock, so simulated weeks
//! attribute the right creative to each day.
//!
//! Metrics are deterministic (a hash of object, creative and day, no RNG state) and believable: 4 to 6
//! impressions per audience member per day (frequency of a retargeting ad) (an object whose id equals a sandbox audience's id or
//! name delivers to that audience; any other object to 2,000 simulated people), a per-creative CTR of
//! 1-3%, a per-creative CVR of 2-10% (or the pinned `creative_cvr`), CPM 6-12 and an order value of
//! 40-120 per conversion. A day is attributed to the creative live at 12:00 UTC that day; an object that
//! has been swapped delivers nothing before its first swap.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::client::{audiences, write_atomic, SandboxDestination};
use crate::error::ConnectorError;
use crate::model::MetricsRow;
use crate::traits::{CreativeSwapper, MetricsRange, MetricsSource};

/// Version of `creatives.json`.
pub const CREATIVES_FORMAT_VERSION: u32 = 1;

/// People an object delivers to when it names no sandbox audience.
pub const DEFAULT_REACH: u64 = 2_000;

tokio::task_local! {
    static SIM_NOW: i64;
}

/// Runs `fut` with the sandbox's clock pinned to `now` (unix seconds): swaps made inside are stamped
/// with it and days after it are not reported. `rotate --as-of` and the demo's simulated weeks use this;
/// real platforms ignore it.
pub async fn with_clock<F: Future>(now: i64, fut: F) -> F::Output {
    SIM_NOW.scope(now, fut).await
}

/// The simulated clock if one is set for this task, else the wall clock.
fn now() -> i64 {
    SIM_NOW
        .try_with(|t| *t)
        .unwrap_or_else(|_| Utc::now().timestamp())
}

/// One swap on the simulated platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSwap {
    /// When it happened (unix seconds, simulated clock).
    pub at: i64,
    /// The creative made live.
    pub creative_id: String,
}

/// One ad (or any object whose creative rotates) on the simulated platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxObject {
    /// The live creative.
    pub creative_id: String,
    /// Whether the object is running.
    pub active: bool,
    /// Every swap, oldest first.
    #[serde(default)]
    pub swaps: Vec<SandboxSwap>,
}

/// The whole `creatives.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxCreatives {
    /// Layout version ([`CREATIVES_FORMAT_VERSION`]).
    pub format: u32,
    /// Objects by id.
    #[serde(default)]
    pub objects: BTreeMap<String, SandboxObject>,
}

impl Default for SandboxCreatives {
    fn default() -> Self {
        SandboxCreatives {
            format: CREATIVES_FORMAT_VERSION,
            objects: BTreeMap::new(),
        }
    }
}

fn creatives_path(root: &Path) -> PathBuf {
    root.join("creatives.json")
}

/// The swap state under the sandbox directory `path` (empty when nothing was swapped yet), for tests
/// and the demo.
pub fn creatives(path: &Path) -> std::io::Result<SandboxCreatives> {
    match std::fs::read(creatives_path(path)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SandboxCreatives::default()),
        Err(e) => Err(e),
    }
}

/// A number in [0, 1) fixed by `parts`, the sandbox's only source of "randomness".
fn unit(parts: &[&str]) -> f64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Rounds `x` up or down with probability given by its fraction, so sums keep the expectation.
fn stochastic_round(x: f64, parts: &[&str]) -> u64 {
    let floor = x.max(0.0).floor();
    let up = unit(parts) < x - floor;
    floor as u64 + u64::from(up)
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl SandboxDestination {
    /// The simulated conversion rate of a creative: the pinned `creative_cvr`, else 2-10% by hash.
    pub fn creative_cvr(&self, creative: &str) -> f64 {
        self.creative_cvr
            .get(creative)
            .copied()
            .unwrap_or_else(|| 0.02 + 0.08 * unit(&["cvr", creative]))
    }

    fn load_creatives(&self) -> Result<SandboxCreatives, ConnectorError> {
        creatives(&self.root).map_err(self.io("reading creatives.json".into()))
    }

    fn save_creatives(&self, state: &SandboxCreatives) -> Result<(), ConnectorError> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| ConnectorError::Invalid {
            destination: self.name.clone(),
            message: format!("cannot encode creatives.json: {e}"),
        })?;
        let path = creatives_path(&self.root);
        write_atomic(&path, &bytes).map_err(self.io(format!("writing {}", path.display())))
    }

    fn check_object(&self, object_id: &str) -> Result<(), ConnectorError> {
        if object_id.trim().is_empty() {
            return Err(ConnectorError::Invalid {
                destination: self.name.clone(),
                message: "empty object id".into(),
            });
        }
        Ok(())
    }

    /// One object's simulated day, or `None` when it did not run that day.
    fn day_row(
        &self,
        object_id: &str,
        object: Option<&SandboxObject>,
        reach: Option<(&str, u64)>,
        day: NaiveDate,
    ) -> Option<MetricsRow> {
        let noon = day
            .and_time(NaiveTime::from_hms_opt(12, 0, 0)?)
            .and_utc()
            .timestamp();
        let (creative, live_since) = match object {
            Some(o) => {
                let swap = o.swaps.iter().rev().find(|s| s.at <= noon)?;
                (Some(swap.creative_id.clone()), Some(swap.at))
            }
            None => (None, None),
        };
        let c = creative.as_deref().unwrap_or(object_id);
        let d = day.to_string();
        let people = reach.map(|(_, n)| n).unwrap_or(DEFAULT_REACH).max(1) as f64;
        let impressions = (people * (4.0 + 2.0 * unit(&["imp", object_id, &d]))).round() as u64;
        let ctr =
            (0.01 + 0.02 * unit(&["ctr", c])) * (0.85 + 0.3 * unit(&["ctr", object_id, c, &d]));
        // Fatigue: the CTR shrinks by the creative's daily decay for every day it has been live.
        let days_live = live_since.map(|at| (noon - at).max(0) as f64 / 86_400.0);
        let ctr = match (self.creative_fatigue.get(c), days_live) {
            (Some(decay), Some(days)) => ctr * (1.0 - decay).powf(days),
            _ => ctr,
        };
        let clicks = stochastic_round(impressions as f64 * ctr, &["clk", object_id, c, &d]);
        let cvr = self.creative_cvr(c) * (0.8 + 0.4 * unit(&["cvr", object_id, c, &d]));
        let conversions = stochastic_round(clicks as f64 * cvr, &["cnv", object_id, c, &d]);
        let cpm = 6.0 + 6.0 * unit(&["cpm", object_id]);
        let aov =
            (40.0 + 80.0 * unit(&["aov", object_id])) * (0.9 + 0.2 * unit(&["aov", object_id, &d]));
        Some(MetricsRow {
            date: day,
            audience_id: reach.map(|(id, _)| id.to_string()),
            ad_id: Some(object_id.to_string()),
            creative_id: creative,
            impressions,
            clicks,
            conversions: conversions as f64,
            spend: cents(impressions as f64 * cpm / 1000.0),
            revenue: cents(conversions as f64 * aov),
            currency: Some("USD".into()),
        })
    }
}

#[async_trait]
impl CreativeSwapper for SandboxDestination {
    /// Records `new_creative_id` as the object's live creative, stamped with the (simulated) clock. A
    /// creative listed in `reject_creatives` is refused like a disapproved creative, changing nothing.
    async fn swap_creative(
        &self,
        object_id: &str,
        new_creative_id: &str,
    ) -> Result<(), ConnectorError> {
        self.check_object(object_id)?;
        if self.reject_creatives.contains(new_creative_id) {
            return Err(ConnectorError::Api {
                destination: self.name.clone(),
                operation: format!("swap creative of {object_id}"),
                status: 400,
                code: None,
                message: format!("creative {new_creative_id} was disapproved"),
            });
        }
        let _guard = self.lock.lock().await;
        let mut state = self.load_creatives()?;
        let at = now();
        let object = state
            .objects
            .entry(object_id.to_string())
            .or_insert_with(|| SandboxObject {
                creative_id: new_creative_id.to_string(),
                active: true,
                swaps: Vec::new(),
            });
        object.creative_id = new_creative_id.to_string();
        object.swaps.push(SandboxSwap {
            at,
            creative_id: new_creative_id.to_string(),
        });
        self.save_creatives(&state)
    }

    async fn set_active(&self, object_id: &str, active: bool) -> Result<(), ConnectorError> {
        self.check_object(object_id)?;
        let _guard = self.lock.lock().await;
        let mut state = self.load_creatives()?;
        match state.objects.get_mut(object_id) {
            Some(o) => o.active = active,
            None => {
                return Err(ConnectorError::Api {
                    destination: self.name.clone(),
                    operation: format!("set status of {object_id}"),
                    status: 404,
                    code: None,
                    message: format!("object {object_id} has no creative yet"),
                })
            }
        }
        self.save_creatives(&state)
    }
}

#[async_trait]
impl MetricsSource for SandboxDestination {
    /// One row per object and day it ran, up to the (simulated) clock's day.
    async fn metrics_in_range(
        &self,
        object_ids: &[String],
        MetricsRange { since, until }: MetricsRange,
    ) -> Result<Vec<MetricsRow>, ConnectorError> {
        let state = self.load_creatives()?;
        let listed =
            audiences(&self.root).map_err(self.io(format!("listing {}", self.root.display())))?;
        let today = DateTime::from_timestamp(now(), 0)
            .map(|t| t.date_naive())
            .unwrap_or(until);
        let until = until.min(today);
        let mut rows = Vec::new();
        for object_id in object_ids {
            let reach = listed
                .iter()
                .find(|a| a.id == *object_id || a.name == *object_id)
                .map(|a| (a.id.as_str(), a.members.len() as u64));
            let object = state.objects.get(object_id);
            let mut day = since;
            while day <= until {
                if let Some(row) = self.day_row(object_id, object, reach, day) {
                    rows.push(row);
                }
                day += Duration::days(1);
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AudienceRef, PreparedMember, ReplaceSession};
    use crate::sandbox::SandboxConfig;
    use crate::test_support::config_from;
    use crate::traits::AudienceDestination;
    use serde_json::json;

    fn sandbox(dir: &Path, extra: serde_json::Value) -> SandboxDestination {
        let cfg: SandboxConfig = config_from(json!({ "path": dir }), &extra);
        SandboxDestination::from_config("sbx", cfg).expect("sandbox")
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn ts(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).expect("time").timestamp()
    }

    #[tokio::test]
    async fn swaps_are_stamped_with_the_simulated_clock_and_attribute_days() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = sandbox(dir.path(), json!({ "creative_cvr": { "c2": 0.5 } }));
        with_clock(ts("2025-03-03T00:00:00Z"), s.swap_creative("ad1", "c1"))
            .await
            .expect("swap");
        with_clock(ts("2025-03-05T00:00:00Z"), s.swap_creative("ad1", "c2"))
            .await
            .expect("swap");
        let state = creatives(dir.path()).expect("state");
        assert_eq!(state.objects["ad1"].creative_id, "c2");
        assert_eq!(state.objects["ad1"].swaps.len(), 2);
        let ids = vec!["ad1".to_string(), "other".to_string()];
        let rows = with_clock(
            ts("2025-03-10T00:00:00Z"),
            s.daily_metrics(&ids, day("2025-03-01"), day("2025-03-31")),
        )
        .await
        .expect("metrics");
        let ad1: Vec<&MetricsRow> = rows
            .iter()
            .filter(|r| r.ad_id.as_deref() == Some("ad1"))
            .collect();
        // Nothing before the first swap, nothing after the clock's day.
        assert_eq!(ad1.first().map(|r| r.date), Some(day("2025-03-03")));
        assert_eq!(ad1.last().map(|r| r.date), Some(day("2025-03-10")));
        let creative_of = |d: &str| {
            ad1.iter()
                .find(|r| r.date == day(d))
                .and_then(|r| r.creative_id.clone())
        };
        assert_eq!(creative_of("2025-03-04").as_deref(), Some("c1"));
        assert_eq!(creative_of("2025-03-05").as_deref(), Some("c2"));
        // Never-swapped objects deliver every day without a creative.
        assert_eq!(
            rows.iter()
                .filter(|r| r.ad_id.as_deref() == Some("other"))
                .count(),
            10
        );
        for r in &rows {
            let ctr = r.clicks as f64 / r.impressions as f64;
            assert!(r.impressions >= 8_000 && r.impressions <= 12_000, "{r:?}");
            assert!((0.005..=0.04).contains(&ctr), "{r:?}");
            assert!(r.conversions <= r.clicks as f64 && r.spend > 0.0, "{r:?}");
        }
        // Pinned CVR: c2 converts about half of its clicks.
        let (clicks, conv) = ad1
            .iter()
            .filter(|r| r.creative_id.as_deref() == Some("c2"))
            .fold((0.0, 0.0), |(c, v), r| {
                (c + r.clicks as f64, v + r.conversions)
            });
        assert!((conv / clicks - 0.5).abs() < 0.1, "{conv}/{clicks}");
        // Deterministic: the same pull gives the same rows.
        let again = with_clock(
            ts("2025-03-10T00:00:00Z"),
            s.daily_metrics(&ids, day("2025-03-01"), day("2025-03-31")),
        )
        .await
        .expect("metrics");
        assert_eq!(rows, again);
    }

    #[tokio::test]
    async fn rejected_creatives_change_nothing_and_bad_rates_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = sandbox(dir.path(), json!({ "reject_creatives": ["bad"] }));
        s.swap_creative("ad1", "good").await.expect("swap");
        let err = s.swap_creative("ad1", "bad").await.expect_err("refused");
        assert!(err.to_string().contains("disapproved"), "{err}");
        assert_eq!(
            creatives(dir.path()).expect("state").objects["ad1"].creative_id,
            "good"
        );
        s.set_active("ad1", false).await.expect("pause");
        assert!(!creatives(dir.path()).expect("state").objects["ad1"].active);
        let cfg: SandboxConfig =
            serde_json::from_value(json!({ "path": dir.path(), "creative_cvr": { "x": 1.5 } }))
                .expect("config");
        let e = SandboxDestination::from_config("sbx", cfg).expect_err("rate");
        assert!(e.to_string().contains("creative_cvr.x"), "{e}");
    }

    #[tokio::test]
    async fn replace_all_replaces_an_adopted_audience() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = sandbox(dir.path(), json!({}));
        assert!(s.supports_replace_all());
        let aud: AudienceRef = s
            .find_or_create_audience("VIP", "")
            .await
            .expect("audience");
        let member = |i: usize| PreparedMember {
            customer_id: format!("c{i}"),
            payload: json!({ "email_sha256": format!("{i:064x}") }),
            fingerprint: format!("f{i}"),
            kinds: Default::default(),
        };
        let old: Vec<PreparedMember> = (0..5).map(member).collect();
        s.add_members(&aud, &old).await.expect("add");
        let mut session = ReplaceSession::new(4);
        let first: Vec<PreparedMember> = (3..5).map(member).collect();
        let second: Vec<PreparedMember> = (5..7).map(member).collect();
        s.replace_all(&aud, &mut session, &first, false)
            .await
            .expect("slice 1");
        s.replace_all(&aud, &mut session, &second, true)
            .await
            .expect("slice 2");
        assert_eq!(session.next_batch_seq, 3);
        let members =
            crate::sandbox::audience_members(dir.path(), &aud.remote_id).expect("members");
        let want: std::collections::BTreeSet<String> =
            (3..7).map(|i| format!("{i:064x}")).collect();
        assert_eq!(members, want);
    }
}
