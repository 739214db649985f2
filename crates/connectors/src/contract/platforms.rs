//! One [`Harness`] per audience destination: each starts its platform's fake and builds the destination
//! through that platform test module's constructor (the one place it is configured), and says which
//! scenarios do not apply to it and why.

use super::{Batching, Creation, Harness, Listing, Skip};
use crate::model::{Channel, PreparedMember};
use crate::test_support::{email, email_hash};
use crate::{file, AudienceDestination};
use crate::{google_ads, klaviyo, linkedin, mailchimp, meta, sendgrid, tiktok, webhook};
use campaignd_fakes::{
    FakeGoogleAds, FakeKlaviyo, FakeLinkedIn, FakeMailchimp, FakeMeta, FakeSendGrid, FakeTikTok,
    FakeWebhook, Faults, RequestLog,
};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Ad platforms store a member under the SHA-256 of its normalised email.
fn hashed(i: usize) -> String {
    email_hash(i)
}

fn customer_id(i: usize) -> String {
    format!("c{i}")
}

fn strings(names: &[String]) -> impl Iterator<Item = String> + '_ {
    names.iter().cloned()
}

pub(super) struct Meta {
    fake: FakeMeta,
    d: Arc<dyn AudienceDestination>,
}

pub(super) async fn meta() -> Box<dyn Harness> {
    let fake = meta::tests::fake().await;
    let d = meta::tests::destination(&fake, meta::tests::TOKEN, 3);
    Box::new(Meta { fake, d })
}

impl Harness for Meta {
    fn platform(&self) -> &'static str {
        "meta"
    }
    fn destination(&self) -> &dyn AudienceDestination {
        self.d.as_ref()
    }
    fn key(&self, i: usize) -> String {
        hashed(i)
    }
    fn expected_limits(&self) -> (Channel, usize, usize) {
        // Marketing API: 10,000 rows per `/users` call; Meta serves no audience under 100 people.
        (Channel::Ads, 10_000, 100)
    }
    fn audience_id(&self, name: &str) -> Option<String> {
        self.fake.audience_id(name)
    }
    fn audience_count(&self) -> usize {
        self.fake.audiences().len()
    }
    fn members(&self, remote_id: &str) -> BTreeSet<String> {
        self.fake.members(remote_id)
    }
    fn requests(&self) -> Option<&RequestLog> {
        Some(self.fake.requests())
    }
    fn creation(&self) -> Result<Creation, Skip> {
        Ok(Creation::Immediate)
    }
    fn listing(&self) -> Result<Listing, Skip> {
        Ok(Listing {
            page_size: 25,
            method: "GET",
            path: "/act_1234/customaudiences".into(),
        })
    }
    fn seed_audiences(&self, names: &[String]) -> Vec<String> {
        self.fake.seed_audiences(strings(names))
    }
    fn batching(&self) -> Result<Batching, Skip> {
        Ok(Batching {
            cap: 10_000,
            method: "POST",
            path: "/users".into(),
        })
    }
    fn max_rows_seen(&self) -> usize {
        self.fake.max_rows_per_call()
    }
    fn throttling(&self) -> Result<&Faults, Skip> {
        Ok(self.fake.faults())
    }
    fn reject(&self, indices: &[usize]) -> Result<&'static str, Skip> {
        self.fake.reject_emails(indices.iter().map(|&i| hashed(i)));
        Ok("Invalid EMAIL")
    }
    fn corrupt_payload(&self) -> Result<PreparedMember, Skip> {
        Ok(PreparedMember::new("cx", json!({"NOT_META": "x"})))
    }
}

pub(super) struct Google {
    fake: FakeGoogleAds,
    d: Arc<dyn AudienceDestination>,
    data_manager: bool,
}

async fn google(api: &str) -> Box<dyn Harness> {
    let fake = google_ads::tests::fake(None).await;
    let d = google_ads::tests::destination(&fake, api);
    Box::new(Google {
        fake,
        d,
        data_manager: api == "data_manager",
    })
}

pub(super) async fn google_customer_match() -> Box<dyn Harness> {
    google("customer_match").await
}

pub(super) async fn google_data_manager() -> Box<dyn Harness> {
    google("data_manager").await
}

impl Harness for Google {
    fn platform(&self) -> &'static str {
        if self.data_manager {
            "google_ads (data_manager)"
        } else {
            "google_ads (customer_match)"
        }
    }
    fn destination(&self) -> &dyn AudienceDestination {
        self.d.as_ref()
    }
    fn key(&self, i: usize) -> String {
        hashed(i)
    }
    fn expected_limits(&self) -> (Channel, usize, usize) {
        // Data Manager: 10,000 members per request (Customer Match plans the same); Google serves no
        // list under 1,000 matched people.
        (Channel::Ads, 10_000, 1_000)
    }
    fn audience_id(&self, name: &str) -> Option<String> {
        self.fake.list_id(name)
    }
    fn audience_count(&self) -> usize {
        self.fake.lists().len()
    }
    fn members(&self, remote_id: &str) -> BTreeSet<String> {
        self.fake.members(remote_id)
    }
    fn requests(&self) -> Option<&RequestLog> {
        Some(self.fake.requests())
    }
    fn creation(&self) -> Result<Creation, Skip> {
        Ok(Creation::Immediate)
    }
    fn listing(&self) -> Result<Listing, Skip> {
        let (method, path) = if self.data_manager {
            ("GET", "/userLists")
        } else {
            ("POST", "/googleAds:search")
        };
        Ok(Listing {
            page_size: campaignd_fakes::google_ads::PAGE_SIZE,
            method,
            path: path.into(),
        })
    }
    fn seed_audiences(&self, names: &[String]) -> Vec<String> {
        self.fake.seed_lists(strings(names))
    }
    fn batching(&self) -> Result<Batching, Skip> {
        let path = if self.data_manager {
            "/audienceMembers:ingest"
        } else {
            ":addOperations"
        };
        Ok(Batching {
            cap: 10_000,
            method: "POST",
            path: path.into(),
        })
    }
    fn max_rows_seen(&self) -> usize {
        if self.data_manager {
            self.fake.max_members_per_request()
        } else {
            // One identifier per row: the contacts have an email only.
            self.fake.max_identifiers_per_call()
        }
    }
    fn throttling(&self) -> Result<&Faults, Skip> {
        Ok(self.fake.faults())
    }
    fn reject(&self, indices: &[usize]) -> Result<&'static str, Skip> {
        self.fake.reject_emails(indices.iter().map(|&i| hashed(i)));
        Ok("INVALID_EMAIL_ADDRESS")
    }
    fn corrupt_payload(&self) -> Result<PreparedMember, Skip> {
        Ok(PreparedMember::new(
            "cx",
            json!({"hashedEmail": "NOT-A-HASH"}),
        ))
    }
}

pub(super) struct TikTok {
    fake: FakeTikTok,
    d: Arc<dyn AudienceDestination>,
}

/// Rows per customer file the harness configures (TikTok caps files by size; 100 keeps the test small).
const TIKTOK_BATCH: usize = 100;

pub(super) async fn tiktok() -> Box<dyn Harness> {
    let fake = tiktok::tests::fake().await;
    let d = tiktok::tests::destination(&fake, tiktok::tests::TOKEN, TIKTOK_BATCH, 3);
    Box::new(TikTok { fake, d })
}

impl Harness for TikTok {
    fn platform(&self) -> &'static str {
        "tiktok"
    }
    fn destination(&self) -> &dyn AudienceDestination {
        self.d.as_ref()
    }
    fn key(&self, i: usize) -> String {
        hashed(i)
    }
    fn expected_limits(&self) -> (Channel, usize, usize) {
        (Channel::Ads, TIKTOK_BATCH, 1_000)
    }
    fn audience_id(&self, name: &str) -> Option<String> {
        self.fake.audience_id(name)
    }
    fn audience_count(&self) -> usize {
        self.fake.audiences().len()
    }
    fn members(&self, remote_id: &str) -> BTreeSet<String> {
        self.fake.members(remote_id)
    }
    fn requests(&self) -> Option<&RequestLog> {
        Some(self.fake.requests())
    }
    fn creation(&self) -> Result<Creation, Skip> {
        Ok(Creation::OnFirstBatch)
    }
    fn listing(&self) -> Result<Listing, Skip> {
        Ok(Listing {
            page_size: 100,
            method: "GET",
            path: "/dmp/custom_audience/list/".into(),
        })
    }
    fn seed_audiences(&self, names: &[String]) -> Vec<String> {
        self.fake.seed_audiences(strings(names))
    }
    fn batching(&self) -> Result<Batching, Skip> {
        Ok(Batching {
            cap: TIKTOK_BATCH,
            method: "POST",
            path: "/dmp/custom_audience/file/upload/".into(),
        })
    }
    fn max_rows_seen(&self) -> usize {
        self.fake.max_lines_per_file()
    }
    fn throttling(&self) -> Result<&Faults, Skip> {
        Ok(self.fake.faults())
    }
    fn reject(&self, _indices: &[usize]) -> Result<&'static str, Skip> {
        Err(Skip(
            "TikTok takes each batch as one customer file and reports no outcome per row",
        ))
    }
    fn corrupt_payload(&self) -> Result<PreparedMember, Skip> {
        Ok(PreparedMember::new(
            "cx",
            json!({"email_sha256": "NOT-HEX"}),
        ))
    }
}

pub(super) struct LinkedIn {
    fake: FakeLinkedIn,
    d: Arc<dyn AudienceDestination>,
}

pub(super) async fn linkedin() -> Box<dyn Harness> {
    let fake = linkedin::tests::fake().await;
    let d = linkedin::tests::destination(&fake, linkedin::tests::REFRESH, json!({}));
    Box::new(LinkedIn { fake, d })
}

impl Harness for LinkedIn {
    fn platform(&self) -> &'static str {
        "linkedin"
    }
    fn destination(&self) -> &dyn AudienceDestination {
        self.d.as_ref()
    }
    fn key(&self, i: usize) -> String {
        hashed(i)
    }
    fn expected_limits(&self) -> (Channel, usize, usize) {
        // 5,000 elements per `/users` batch; LinkedIn serves no segment under 300 members.
        (Channel::Ads, 5_000, 300)
    }
    fn audience_id(&self, name: &str) -> Option<String> {
        self.fake.segment_id(name)
    }
    fn audience_count(&self) -> usize {
        self.fake.segments().len()
    }
    fn members(&self, remote_id: &str) -> BTreeSet<String> {
        self.fake.members(remote_id)
    }
    fn requests(&self) -> Option<&RequestLog> {
        Some(self.fake.requests())
    }
    fn creation(&self) -> Result<Creation, Skip> {
        Ok(Creation::Immediate)
    }
    fn listing(&self) -> Result<Listing, Skip> {
        Ok(Listing {
            page_size: campaignd_fakes::linkedin::MAX_COUNT,
            method: "GET",
            path: "/dmpSegments".into(),
        })
    }
    fn seed_audiences(&self, names: &[String]) -> Vec<String> {
        self.fake.seed_segments(strings(names))
    }
    fn batching(&self) -> Result<Batching, Skip> {
        Ok(Batching {
            cap: 5_000,
            method: "POST",
            path: "/users".into(),
        })
    }
    fn max_rows_seen(&self) -> usize {
        self.fake.max_batch_seen()
    }
    fn throttling(&self) -> Result<&Faults, Skip> {
        Ok(self.fake.faults())
    }
    fn reject(&self, indices: &[usize]) -> Result<&'static str, Skip> {
        self.fake.reject_emails(indices.iter().map(|&i| hashed(i)));
        Ok("could not be processed")
    }
    fn corrupt_payload(&self) -> Result<PreparedMember, Skip> {
        Ok(PreparedMember::new("cx", json!({"EMAIL": "x"})))
    }
}

pub(super) struct Mailchimp {
    fake: FakeMailchimp,
    d: Arc<dyn AudienceDestination>,
}

pub(super) async fn mailchimp() -> Box<dyn Harness> {
    let fake = mailchimp::tests::fake().await;
    let d = mailchimp::tests::destination(&fake);
    Box::new(Mailchimp { fake, d })
}

impl Harness for Mailchimp {
    fn platform(&self) -> &'static str {
        "mailchimp"
    }
    fn destination(&self) -> &dyn AudienceDestination {
        self.d.as_ref()
    }
    fn key(&self, i: usize) -> String {
        email(i)
    }
    fn expected_limits(&self) -> (Channel, usize, usize) {
        // Batch subscribe takes 500 members a call.
        (Channel::Email, 500, 0)
    }
    /// Only a static segment is an audience campaignd can fill.
    fn audience_id(&self, name: &str) -> Option<String> {
        self.fake
            .segments()
            .into_iter()
            .find(|s| s.name == name && s.kind == "static")
            .map(|s| s.id.to_string())
    }
    fn audience_count(&self) -> usize {
        self.fake.segments().len()
    }
    fn members(&self, remote_id: &str) -> BTreeSet<String> {
        self.fake.segment_members(remote_id)
    }
    fn requests(&self) -> Option<&RequestLog> {
        Some(self.fake.requests())
    }
    fn creation(&self) -> Result<Creation, Skip> {
        Ok(Creation::Immediate)
    }
    fn listing(&self) -> Result<Listing, Skip> {
        self.fake.set_page_cap(10);
        Ok(Listing {
            page_size: 10,
            method: "GET",
            path: "/segments".into(),
        })
    }
    fn seed_audiences(&self, names: &[String]) -> Vec<String> {
        self.fake
            .seed_segments(strings(names), "static")
            .into_iter()
            .map(|id| id.to_string())
            .collect()
    }
    fn batching(&self) -> Result<Batching, Skip> {
        Ok(Batching {
            cap: 500,
            method: "POST",
            path: format!("/lists/{}", mailchimp::tests::LIST),
        })
    }
    fn max_rows_seen(&self) -> usize {
        self.fake.max_batch_seen()
    }
    fn throttling(&self) -> Result<&Faults, Skip> {
        Ok(self.fake.faults())
    }
    fn reject(&self, indices: &[usize]) -> Result<&'static str, Skip> {
        self.fake.reject_emails(indices.iter().map(|&i| email(i)));
        Ok("looks fake or invalid")
    }
    fn corrupt_payload(&self) -> Result<PreparedMember, Skip> {
        Ok(PreparedMember::new("cx", json!({"EMAIL": "x"})))
    }
}

pub(super) struct Klaviyo {
    fake: FakeKlaviyo,
    d: Arc<dyn AudienceDestination>,
}

pub(super) async fn klaviyo() -> Box<dyn Harness> {
    let fake = klaviyo::tests::fake().await;
    let d = klaviyo::tests::destination(&fake);
    Box::new(Klaviyo { fake, d })
}

impl Harness for Klaviyo {
    fn platform(&self) -> &'static str {
        "klaviyo"
    }
    fn destination(&self) -> &dyn AudienceDestination {
        self.d.as_ref()
    }
    fn key(&self, i: usize) -> String {
        email(i)
    }
    fn expected_limits(&self) -> (Channel, usize, usize) {
        // A bulk import job takes 10,000 profiles.
        (Channel::Email, 10_000, 0)
    }
    fn audience_id(&self, name: &str) -> Option<String> {
        self.fake.list_id(name)
    }
    fn audience_count(&self) -> usize {
        self.fake.list_count()
    }
    fn members(&self, remote_id: &str) -> BTreeSet<String> {
        self.fake.list_members(remote_id)
    }
    fn requests(&self) -> Option<&RequestLog> {
        Some(self.fake.requests())
    }
    fn creation(&self) -> Result<Creation, Skip> {
        Ok(Creation::Immediate)
    }
    fn listing(&self) -> Result<Listing, Skip> {
        Ok(Listing {
            page_size: campaignd_fakes::klaviyo::LIST_PAGE,
            method: "GET",
            path: "/lists".into(),
        })
    }
    fn seed_audiences(&self, names: &[String]) -> Vec<String> {
        self.fake.seed_lists(strings(names))
    }
    fn batching(&self) -> Result<Batching, Skip> {
        Ok(Batching {
            cap: 10_000,
            method: "POST",
            path: "/profile-bulk-import-jobs".into(),
        })
    }
    fn max_rows_seen(&self) -> usize {
        self.fake.max_import_seen()
    }
    fn throttling(&self) -> Result<&Faults, Skip> {
        Ok(self.fake.faults())
    }
    fn reject(&self, indices: &[usize]) -> Result<&'static str, Skip> {
        self.fake.reject_emails(indices.iter().map(|&i| email(i)));
        Ok("Invalid email")
    }
    fn corrupt_payload(&self) -> Result<PreparedMember, Skip> {
        Ok(PreparedMember::new("cx", json!({"EMAIL": "x"})))
    }
}

pub(super) struct SendGrid {
    fake: FakeSendGrid,
    d: Arc<dyn AudienceDestination>,
}

pub(super) async fn sendgrid() -> Box<dyn Harness> {
    let fake = sendgrid::tests::fake().await;
    let d = sendgrid::tests::destination(&fake);
    Box::new(SendGrid { fake, d })
}

impl Harness for SendGrid {
    fn platform(&self) -> &'static str {
        "sendgrid"
    }
    fn destination(&self) -> &dyn AudienceDestination {
        self.d.as_ref()
    }
    fn key(&self, i: usize) -> String {
        email(i)
    }
    fn expected_limits(&self) -> (Channel, usize, usize) {
        // An upsert takes 30,000 contacts or 6 MB; 10,000 stays under the size limit.
        (Channel::Email, 10_000, 0)
    }
    fn audience_id(&self, name: &str) -> Option<String> {
        self.fake.list_id(name)
    }
    fn audience_count(&self) -> usize {
        self.fake.list_count()
    }
    fn members(&self, remote_id: &str) -> BTreeSet<String> {
        self.fake.list_members(remote_id)
    }
    fn requests(&self) -> Option<&RequestLog> {
        Some(self.fake.requests())
    }
    fn creation(&self) -> Result<Creation, Skip> {
        Ok(Creation::Immediate)
    }
    fn listing(&self) -> Result<Listing, Skip> {
        self.fake.set_page_cap(10);
        Ok(Listing {
            page_size: 10,
            method: "GET",
            path: "/marketing/lists".into(),
        })
    }
    fn seed_audiences(&self, names: &[String]) -> Vec<String> {
        self.fake.seed_lists(strings(names))
    }
    fn batching(&self) -> Result<Batching, Skip> {
        Ok(Batching {
            cap: 10_000,
            method: "PUT",
            path: "/marketing/contacts".into(),
        })
    }
    fn max_rows_seen(&self) -> usize {
        self.fake.max_contacts_seen()
    }
    fn throttling(&self) -> Result<&Faults, Skip> {
        Ok(self.fake.faults())
    }
    fn reject(&self, indices: &[usize]) -> Result<&'static str, Skip> {
        self.fake.reject_emails(indices.iter().map(|&i| email(i)));
        Ok("blocked domain")
    }
    fn corrupt_payload(&self) -> Result<PreparedMember, Skip> {
        Ok(PreparedMember::new("cx", json!({"EMAIL": "x"})))
    }
}

pub(super) struct Webhook {
    fake: FakeWebhook,
    d: Arc<dyn AudienceDestination>,
}

/// Members per POST the harness configures.
const WEBHOOK_BATCH: usize = 4;

pub(super) async fn webhook() -> Box<dyn Harness> {
    let fake = FakeWebhook::start(webhook::tests::SECRET)
        .await
        .expect("fake webhook");
    let d = webhook::tests::destination(&fake.url(), webhook::tests::SECRET, WEBHOOK_BATCH);
    Box::new(Webhook { fake, d })
}

const WEBHOOK_HAS_NO_AUDIENCES: Skip =
    Skip("a webhook has no remote audience objects: the audience is the name batches carry");

impl Harness for Webhook {
    fn platform(&self) -> &'static str {
        "webhook"
    }
    fn destination(&self) -> &dyn AudienceDestination {
        self.d.as_ref()
    }
    fn key(&self, i: usize) -> String {
        customer_id(i)
    }
    fn expected_limits(&self) -> (Channel, usize, usize) {
        (Channel::Ads, WEBHOOK_BATCH, 0)
    }
    /// The audience is its name.
    fn audience_id(&self, name: &str) -> Option<String> {
        Some(name.to_string())
    }
    fn audience_count(&self) -> usize {
        0
    }
    fn members(&self, remote_id: &str) -> BTreeSet<String> {
        self.fake.members(remote_id).into_keys().collect()
    }
    fn requests(&self) -> Option<&RequestLog> {
        Some(self.fake.requests())
    }
    fn creation(&self) -> Result<Creation, Skip> {
        Err(WEBHOOK_HAS_NO_AUDIENCES)
    }
    fn listing(&self) -> Result<Listing, Skip> {
        Err(WEBHOOK_HAS_NO_AUDIENCES)
    }
    fn seed_audiences(&self, _names: &[String]) -> Vec<String> {
        Vec::new()
    }
    fn batching(&self) -> Result<Batching, Skip> {
        Ok(Batching {
            cap: WEBHOOK_BATCH,
            method: "POST",
            path: "/hook".into(),
        })
    }
    fn max_rows_seen(&self) -> usize {
        self.fake
            .batches()
            .iter()
            .filter_map(|b| b["members"].as_array().map(Vec::len))
            .max()
            .unwrap_or(0)
    }
    fn throttling(&self) -> Result<&Faults, Skip> {
        Ok(self.fake.faults())
    }
    fn reject(&self, _indices: &[usize]) -> Result<&'static str, Skip> {
        Err(Skip(
            "a receiver answers for the whole batch (a 4xx fails the call, see webhook/tests.rs); \
             there is no outcome per row",
        ))
    }
    fn corrupt_payload(&self) -> Result<PreparedMember, Skip> {
        Err(Skip(
            "the webhook forwards stored payloads as they are; the receiver judges them",
        ))
    }
}

pub(super) struct File {
    dir: tempfile::TempDir,
    d: Arc<dyn AudienceDestination>,
}

pub(super) async fn file() -> Box<dyn Harness> {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = file::tests::destination(dir.path(), "jsonl", false);
    Box::new(File { dir, d })
}

const FILE_IS_LOCAL: Skip =
    Skip("the file destination writes local files: no requests to cap or throttle");

impl Harness for File {
    fn platform(&self) -> &'static str {
        "file"
    }
    fn destination(&self) -> &dyn AudienceDestination {
        self.d.as_ref()
    }
    fn key(&self, i: usize) -> String {
        customer_id(i)
    }
    fn expected_limits(&self) -> (Channel, usize, usize) {
        (Channel::Ads, 50_000, 0)
    }
    /// An audience is a directory named after it (the suite's names need no escaping).
    fn audience_id(&self, name: &str) -> Option<String> {
        self.dir
            .path()
            .join(name)
            .is_dir()
            .then(|| name.to_string())
    }
    fn audience_count(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .expect("output dir")
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
            .count()
    }
    /// Customer ids in the audience's `members.jsonl` snapshot.
    fn members(&self, remote_id: &str) -> BTreeSet<String> {
        let path = self.dir.path().join(remote_id).join("members.jsonl");
        let Ok(text) = std::fs::read_to_string(path) else {
            return BTreeSet::new();
        };
        text.lines()
            .map(|l| {
                let row: serde_json::Value = serde_json::from_str(l).expect("snapshot row");
                row["customer_id"]
                    .as_str()
                    .expect("customer_id")
                    .to_string()
            })
            .collect()
    }
    fn requests(&self) -> Option<&RequestLog> {
        None
    }
    fn creation(&self) -> Result<Creation, Skip> {
        Ok(Creation::Immediate)
    }
    fn listing(&self) -> Result<Listing, Skip> {
        Err(Skip(
            "the file destination's audiences are directories it names itself; there is no listing",
        ))
    }
    fn seed_audiences(&self, _names: &[String]) -> Vec<String> {
        Vec::new()
    }
    fn batching(&self) -> Result<Batching, Skip> {
        Err(FILE_IS_LOCAL)
    }
    fn max_rows_seen(&self) -> usize {
        0
    }
    fn throttling(&self) -> Result<&Faults, Skip> {
        Err(FILE_IS_LOCAL)
    }
    fn reject(&self, _indices: &[usize]) -> Result<&'static str, Skip> {
        Err(Skip("a file takes every row; nothing refuses one"))
    }
    fn corrupt_payload(&self) -> Result<PreparedMember, Skip> {
        Err(Skip(
            "the file destination writes stored payloads as they are",
        ))
    }
}
