//! The contract every audience destination keeps, run against each platform's stateful fake (the way
//! Vector runs one compliance suite against every sink): create an audience that is absent, adopt one
//! found only on a later listing page without creating a duplicate, split a batch larger than the
//! platform's cap into requests no larger than it, retry a throttle answer without losing or resending
//! anything, report partially rejected rows with the platform's reason while keeping the accepted ones,
//! reject a corrupt stored payload without sending it, refuse a contact without an identifier the
//! platform matches on, and remove members.
//!
//! Each platform (in [`platforms`]) starts its fake, builds the destination through the platform test
//! module's own constructor, and hands the suite a [`Harness`]: a [`Spec`] declaring what the platform
//! stores and does, and a [`Fake`] that reads back what the fake holds and injects rejections. A
//! platform without a behaviour (a webhook has no listing) declares that scenario a [`Skip`] naming
//! why; the suite prints the reason and checks nothing else for it.
//! Platform-specific behaviour (spec fidelity, hashing rules, odd error bodies) stays in each platform's
//! `tests.rs`.

mod platforms;

use crate::model::{AudienceRef, Channel, Contact, NoIdentifier, PreparedMember};
use crate::AudienceDestination;
use campaignd_fakes::{Faults, RequestLog};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The audience name the scenarios work on (safe as a file destination's directory name too).
const NAME: &str = "campaignd-contract";

/// Why a platform has no such behaviour, so the scenario does not apply to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Skip(pub(crate) &'static str);

/// When a created audience exists on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Creation {
    /// `find_or_create_audience` creates it.
    Immediate,
    /// The first batch creates it (TikTok creates an audience from its first customer file).
    OnFirstBatch,
}

/// How the platform lists its audiences, for the adoption scenario.
#[derive(Debug, Clone)]
pub(crate) struct Listing {
    /// Audiences per listing page the fake answers with.
    pub(crate) page_size: usize,
    /// Method of a listing request.
    pub(crate) method: &'static str,
    /// Path suffix of a listing request.
    pub(crate) path: String,
}

/// How the platform takes member uploads, for the capped-batch scenario.
#[derive(Debug, Clone)]
pub(crate) struct Batching {
    /// Rows one upload request may carry on this platform (as configured in the harness).
    pub(crate) cap: usize,
    /// Method of an upload request.
    pub(crate) method: &'static str,
    /// Path suffix of an upload request.
    pub(crate) path: String,
}

/// What a platform declares to the suite, as data: what it stores, its limits, and each scenario it
/// has (with the request shape to count) or the reason it has none.
pub(crate) struct Spec {
    /// Platform label for failure messages.
    pub(crate) platform: &'static str,
    /// The key the fake stores contact `i` under (a hash, an email or the customer id).
    pub(crate) key: fn(usize) -> String,
    /// Channel, batch size and minimum audience size the destination must declare.
    pub(crate) limits: (Channel, usize, usize),
    /// Whether a contact with only a phone is usable (the platform matches on phones, not emails only).
    pub(crate) takes_phones: bool,
    /// Whether audiences are remote objects, and when they come to exist.
    pub(crate) creation: Result<Creation, Skip>,
    /// How the platform lists audiences.
    pub(crate) listing: Result<Listing, Skip>,
    /// How uploads are capped.
    pub(crate) batching: Result<Batching, Skip>,
    /// Whether the fake's `throttle_next` has the platform's own throttling reply to give.
    pub(crate) throttles: Result<(), Skip>,
    /// Text the platform's reason for refusing a row carries.
    pub(crate) rejection: Result<&'static str, Skip>,
    /// Stored payloads this platform cannot take (corrupted ledger rows), each refused alone.
    pub(crate) corrupt: Result<Vec<serde_json::Value>, Skip>,
}

/// How the suite reads and steers one platform's fake.
pub(crate) trait Fake: Send + Sync {
    /// The remote id of the audience called `name`, if the platform holds one.
    fn audience_id(&self, name: &str) -> Option<String>;
    /// Audiences the platform holds.
    fn audience_count(&self) -> usize;
    /// Member keys the platform holds for an audience.
    fn members(&self, remote_id: &str) -> BTreeSet<String>;
    /// The fake's request log; `None` for a destination that makes no requests.
    fn requests(&self) -> Option<&RequestLog>;
    /// The fake's fault knobs; `None` without a server.
    fn faults(&self) -> Option<&Faults>;
    /// Creates audiences directly on the platform (as if made in its UI); returns their remote ids.
    fn seed_audiences(&self, names: &[String]) -> Vec<String>;
    /// The most rows the fake saw in one upload request.
    fn max_rows_seen(&self) -> usize;
    /// Makes the platform refuse the members stored under `keys`.
    fn reject(&self, keys: Vec<String>);
}

/// One platform's fake and destination, as the scenarios drive them.
pub(crate) struct Harness {
    spec: Spec,
    fake: Box<dyn Fake>,
    destination: Arc<dyn AudienceDestination>,
}

impl Harness {
    fn platform(&self) -> &'static str {
        self.spec.platform
    }

    fn destination(&self) -> &dyn AudienceDestination {
        self.destination.as_ref()
    }

    /// Contact `i`: an email only, written un-normalised.
    fn contact(&self, i: usize) -> Contact {
        crate::test_support::email_contact(i)
    }

    fn key(&self, i: usize) -> String {
        (self.spec.key)(i)
    }

    /// Fault knobs whose `throttle_next` answers with the platform's own throttling reply.
    fn throttling(&self) -> Result<&Faults, Skip> {
        self.spec.throttles?;
        Ok(self
            .fake
            .faults()
            .unwrap_or_else(|| panic!("{}: throttling needs a server", self.platform())))
    }

    /// Makes the platform refuse contacts `indices`; returns the text its reason carries.
    fn reject(&self, indices: &[usize]) -> Result<&'static str, Skip> {
        let reason = self.spec.rejection?;
        self.fake
            .reject(indices.iter().map(|&i| self.key(i)).collect());
        Ok(reason)
    }

    fn corrupt_payloads(&self) -> Result<Vec<PreparedMember>, Skip> {
        let payloads = self.spec.corrupt.clone()?;
        Ok(payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| PreparedMember::new(format!("cx{i}"), payload))
            .collect())
    }
}

fn skipped(h: &Harness, scenario: &str, skip: Skip) {
    eprintln!("contract: {} skips {scenario}: {}", h.platform(), skip.0);
}

fn prepare(h: &Harness, range: std::ops::Range<usize>) -> Vec<PreparedMember> {
    range
        .map(|i| h.destination().prepare(&h.contact(i)).expect("usable"))
        .collect()
}

fn keys(h: &Harness, indices: impl IntoIterator<Item = usize>) -> BTreeSet<String> {
    indices.into_iter().map(|i| h.key(i)).collect()
}

/// What the platform holds for the audience called `name`.
fn held(h: &Harness, name: &str) -> BTreeSet<String> {
    h.fake
        .audience_id(name)
        .map(|id| h.fake.members(&id))
        .unwrap_or_default()
}

fn request_total(h: &Harness) -> usize {
    h.fake.requests().map_or(0, |log| log.all().len())
}

/// Upload requests so far, or every request where the harness names no upload request.
fn uploads(h: &Harness) -> usize {
    match (h.spec.batching.clone(), h.fake.requests()) {
        (Ok(b), Some(log)) => log.count(b.method, &b.path),
        _ => request_total(h),
    }
}

async fn audience(h: &Harness) -> AudienceRef {
    h.destination()
        .find_or_create_audience(NAME, "made by the contract suite")
        .await
        .unwrap_or_else(|e| panic!("{}: audience: {e}", h.platform()))
}

/// The destination declares the platform's channel, batch cap and minimum audience size.
pub(crate) async fn declares_the_platform_limits(h: &Harness) {
    let d = h.destination();
    let (channel, max_batch, min_size) = h.spec.limits;
    let limits = d.limits();
    assert_eq!(
        (d.channel(), limits.max_batch, limits.min_audience_size),
        (channel, max_batch, min_size),
        "{}",
        h.platform()
    );
}

/// A contact with no identifier the platform matches on is refused by `prepare` as having none: one with
/// only a name and country everywhere, one with only a phone where the platform takes emails only.
pub(crate) async fn refuses_contacts_without_an_identifier(h: &Harness) {
    let p = h.platform();
    let d = h.destination();
    let name_only = Contact {
        customer_id: "n".into(),
        first_name: Some("Ann".into()),
        country: Some("US".into()),
        ..Contact::default()
    };
    assert_eq!(d.prepare(&name_only).err(), Some(NoIdentifier::None), "{p}");
    let phone_only = d.prepare(&Contact {
        phone: Some("+1 (650) 253-0000".into()),
        ..name_only
    });
    if h.spec.takes_phones {
        assert!(phone_only.is_ok(), "{p}: {phone_only:?}");
    } else {
        assert_eq!(phone_only.err(), Some(NoIdentifier::None), "{p}");
    }
}

/// An absent audience is created once; asking again adopts it instead of creating another.
pub(crate) async fn creates_when_absent(h: &Harness) {
    let creation = match h.spec.creation {
        Ok(c) => c,
        Err(s) => return skipped(h, "creates_when_absent", s),
    };
    let p = h.platform();
    let d = h.destination();
    let before = h.fake.audience_count();
    let first = audience(h).await;
    assert!(!first.adopted, "{p}: {first:?}");
    match creation {
        Creation::Immediate => {
            assert_eq!(
                h.fake.audience_id(NAME),
                Some(first.remote_id.clone()),
                "{p}"
            )
        }
        Creation::OnFirstBatch => assert_eq!(h.fake.audience_id(NAME), None, "{p}"),
    }
    let out = d
        .add_members(&first, &prepare(h, 0..1))
        .await
        .unwrap_or_else(|e| panic!("{p}: add: {e}"));
    assert_eq!((out.accepted, out.rejected.len()), (1, 0), "{p}");
    let id = h
        .fake
        .audience_id(NAME)
        .unwrap_or_else(|| panic!("{p}: not created"));
    assert_eq!(h.fake.members(&id), keys(h, [0]), "{p}");
    let again = audience(h).await;
    assert_eq!(
        again,
        AudienceRef {
            remote_id: id,
            adopted: true
        },
        "{p}"
    );
    assert_eq!(
        h.fake.audience_count(),
        before + 1,
        "{p}: one audience created"
    );
}

/// An audience that appears only on the last listing page is adopted, every page read, none created.
pub(crate) async fn adopts_from_a_later_page(h: &Harness) {
    let listing = match h.spec.listing.clone() {
        Ok(l) => l,
        Err(s) => return skipped(h, "adopts_from_a_later_page", s),
    };
    let p = h.platform();
    let log = h
        .fake
        .requests()
        .unwrap_or_else(|| panic!("{p}: a listing needs requests"));
    let n = 2 * listing.page_size + 3;
    let names: Vec<String> = (0..n).map(|i| format!("existing {i}")).collect();
    let ids = h.fake.seed_audiences(&names);
    assert_eq!(ids.len(), n, "{p}: seeded");
    let before = h.fake.audience_count();
    let lists = log.count(listing.method, &listing.path);
    let got = h
        .destination()
        .find_or_create_audience(&names[n - 1], "x")
        .await
        .unwrap_or_else(|e| panic!("{p}: adopt: {e}"));
    assert_eq!(
        got,
        AudienceRef {
            remote_id: ids[n - 1].clone(),
            adopted: true
        },
        "{p}"
    );
    assert_eq!(
        log.count(listing.method, &listing.path) - lists,
        3,
        "{p}: {n} audiences at {} a page are three listing requests",
        listing.page_size
    );
    assert_eq!(h.fake.audience_count(), before, "{p}: nothing created");
}

/// A batch of `2 × cap + 1` goes as three uploads, none above the platform's cap, and all of it lands.
pub(crate) async fn splits_batches_at_the_cap(h: &Harness) {
    let batching = match h.spec.batching.clone() {
        Ok(b) => b,
        Err(s) => return skipped(h, "splits_batches_at_the_cap", s),
    };
    let p = h.platform();
    let log = h
        .fake
        .requests()
        .unwrap_or_else(|| panic!("{p}: uploads need requests"));
    let d = h.destination();
    assert_eq!(d.limits().max_batch, batching.cap, "{p}");
    let aud = audience(h).await;
    let n = 2 * batching.cap + 1;
    let before = log.count(batching.method, &batching.path);
    let out = d
        .add_members(&aud, &prepare(h, 0..n))
        .await
        .unwrap_or_else(|e| panic!("{p}: add: {e}"));
    assert_eq!((out.accepted, out.rejected.len()), (n, 0), "{p}");
    assert_eq!(
        log.count(batching.method, &batching.path) - before,
        3,
        "{p}: {n} rows at {} a request",
        batching.cap
    );
    assert_eq!(h.fake.max_rows_seen(), batching.cap, "{p}: largest upload");
    assert_eq!(held(h, NAME), keys(h, 0..n), "{p}");
}

/// Two throttle answers cost exactly two more requests than the same batch unthrottled: each throttled
/// request is retried once, nothing is resent or lost.
pub(crate) async fn retries_throttling_without_loss(h: &Harness) {
    let faults = match h.throttling() {
        Ok(f) => f,
        Err(s) => return skipped(h, "retries_throttling_without_loss", s),
    };
    let p = h.platform();
    let d = h.destination();
    let aud = audience(h).await;
    // The first batch may create the audience (TikTok); the second is the unthrottled baseline.
    for range in [0..10, 10..20] {
        d.add_members(&aud, &prepare(h, range))
            .await
            .unwrap_or_else(|e| panic!("{p}: add: {e}"));
    }
    let start = request_total(h);
    d.add_members(&aud, &prepare(h, 20..30))
        .await
        .unwrap_or_else(|e| panic!("{p}: baseline add: {e}"));
    let baseline = request_total(h) - start;
    let throttled = d.http_stats().map_or(0, |s| s.throttled);
    faults.throttle_next(2);
    let start = request_total(h);
    let out = d
        .add_members(&aud, &prepare(h, 30..40))
        .await
        .unwrap_or_else(|e| panic!("{p}: add after throttling: {e}"));
    assert_eq!((out.accepted, out.rejected.len()), (10, 0), "{p}");
    assert_eq!(
        request_total(h) - start,
        baseline + 2,
        "{p}: requests for a throttled batch"
    );
    assert_eq!(
        d.http_stats().map_or(0, |s| s.throttled) - throttled,
        2,
        "{p}: throttles counted"
    );
    assert_eq!(held(h, NAME), keys(h, 0..40), "{p}");
}

/// Rows the platform refuses come back as rejections with its reason; the others are held.
pub(crate) async fn reports_partial_rejection(h: &Harness) {
    let reason = match h.reject(&[3, 7]) {
        Ok(r) => r,
        Err(s) => return skipped(h, "reports_partial_rejection", s),
    };
    let p = h.platform();
    let aud = audience(h).await;
    let out = h
        .destination()
        .add_members(&aud, &prepare(h, 0..10))
        .await
        .unwrap_or_else(|e| panic!("{p}: add: {e}"));
    assert_eq!(out.accepted, 8, "{p}: {out:?}");
    let mut ids: Vec<&str> = out
        .rejected
        .iter()
        .map(|r| r.customer_id.as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["c3", "c7"], "{p}");
    for r in &out.rejected {
        assert!(r.reason.contains(reason), "{p}: {r:?} lacks {reason:?}");
    }
    let kept = (0..10).filter(|i| ![3, 7].contains(i));
    assert_eq!(held(h, NAME), keys(h, kept), "{p}");
}

/// A corrupt stored payload is rejected locally: no upload carries it, the rest of its batch lands.
pub(crate) async fn rejects_corrupt_payloads_locally(h: &Harness) {
    let bad = match h.corrupt_payloads() {
        Ok(b) => b,
        Err(s) => return skipped(h, "rejects_corrupt_payloads_locally", s),
    };
    let p = h.platform();
    let d = h.destination();
    let aud = audience(h).await;
    for one in &bad {
        let start = uploads(h);
        let out = d
            .add_members(&aud, std::slice::from_ref(one))
            .await
            .unwrap_or_else(|e| panic!("{p}: local rejection: {e}"));
        assert_eq!((out.accepted, out.rejected.len()), (0, 1), "{p}: {one:?}");
        assert_eq!(out.rejected[0].customer_id, one.customer_id, "{p}");
        assert_eq!(uploads(h), start, "{p}: nothing uploaded for {one:?}");
    }
    let mut batch = prepare(h, 0..2);
    batch.splice(1..1, bad.iter().cloned());
    let out = d
        .add_members(&aud, &batch)
        .await
        .unwrap_or_else(|e| panic!("{p}: add: {e}"));
    assert_eq!((out.accepted, out.rejected.len()), (2, bad.len()), "{p}");
    assert_eq!(held(h, NAME), keys(h, 0..2), "{p}");
}

/// Removing takes members out; removing people who are not members is harmless.
pub(crate) async fn removes_members(h: &Harness) {
    let p = h.platform();
    let d = h.destination();
    let aud = audience(h).await;
    let all = prepare(h, 0..20);
    d.add_members(&aud, &all)
        .await
        .unwrap_or_else(|e| panic!("{p}: add: {e}"));
    let out = d
        .remove_members(&aud, &all[..5])
        .await
        .unwrap_or_else(|e| panic!("{p}: remove: {e}"));
    assert_eq!((out.accepted, out.rejected.len()), (5, 0), "{p}");
    assert_eq!(held(h, NAME), keys(h, 5..20), "{p}");
    let out = d
        .remove_members(&aud, &prepare(h, 1_000..1_003))
        .await
        .unwrap_or_else(|e| panic!("{p}: remove strangers: {e}"));
    assert_eq!((out.accepted, out.rejected.len()), (3, 0), "{p}");
    assert_eq!(held(h, NAME), keys(h, 5..20), "{p}");
}

/// The scenario tests of one platform, each on a freshly started fake.
macro_rules! scenario_tests {
    ($platform:ident: $($scenario:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $scenario() {
            super::$scenario(&super::platforms::$platform().await).await
        }
    )*};
}

/// One module per platform, one test per scenario.
macro_rules! contract_suite {
    ($($platform:ident),* $(,)?) => {$(
        mod $platform {
            scenario_tests!(
                $platform:
                declares_the_platform_limits,
                refuses_contacts_without_an_identifier,
                creates_when_absent,
                adopts_from_a_later_page,
                splits_batches_at_the_cap,
                retries_throttling_without_loss,
                reports_partial_rejection,
                rejects_corrupt_payloads_locally,
                removes_members,
            );
        }
    )*};
}

contract_suite!(
    meta,
    google_customer_match,
    google_data_manager,
    tiktok,
    linkedin,
    mailchimp,
    klaviyo,
    sendgrid,
    webhook,
    file,
);
