//! The sync's holdout step (DESIGN §6): before a sync with `holdout > 0` builds its plan, every
//! eligible member is assigned to the holdout or the treatment by a stable hash
//! (`campaignd_core::holdout`), the assignment is recorded in `holdout_members` (new members, and
//! members whose group changed with the salt or share), and held-out members are taken out of the
//! desired audience. A held-out member the platform already holds is therefore removed by the merge
//! like anyone who left the segment — nothing about them is sent again.

use campaignd_core::model::Channel;
use campaignd_store::experiments::Group;
use campaignd_store::ledger::Candidate;
use campaignd_store::{Store, StoreError};
use chrono::{DateTime, Utc};

use crate::settings::{HoldoutPlan, SyncSettings};

/// Members read per page while assigning.
const PAGE: i64 = 5_000;

/// Assigns (or, without `run_id` — a dry run — only counts) the groups of the sync's eligible
/// members; returns how many are held out. Without a plan nothing is held out. New and changed
/// assignments are dated `as_of` (the sync's as-of, normally the wall clock): lift counts each
/// member's orders from then on.
pub async fn assign(
    store: &Store,
    cfg: &SyncSettings,
    consent: Channel,
    plan: Option<&HoldoutPlan>,
    run_id: Option<i64>,
    as_of: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let Some(plan) = plan else {
        return Ok(0);
    };
    let (destination, audience) = (cfg.destination.as_str(), cfg.audience());
    let since = as_of.timestamp();
    let mut after = String::new();
    let mut held = 0i64;
    loop {
        let page = store
            .holdout_page(&cfg.segment, consent, destination, audience, &after, PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.customer_id.clone();
        let mut changed = Vec::new();
        for a in &page {
            let group = if plan.holds_out(&a.customer_id) {
                held += 1;
                Group::Holdout
            } else {
                Group::Treatment
            };
            if a.group != Some(group) {
                changed.push((a.customer_id.clone(), group));
            }
        }
        if let Some(run_id) = run_id {
            if !changed.is_empty() {
                store
                    .assign_groups(destination, audience, &cfg.segment, &changed, since, run_id)
                    .await?;
            }
        }
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    Ok(held)
}

/// The candidates of a page minus the held-out ones: the filter between the store and the connector,
/// so a held-out member's identifiers are never even prepared.
pub fn without_held_out(rows: Vec<Candidate>, plan: Option<&HoldoutPlan>) -> Vec<Candidate> {
    match plan {
        None => rows,
        Some(p) => rows
            .into_iter()
            .filter(|c| !p.holds_out(&c.contact.customer_id))
            .collect(),
    }
}
