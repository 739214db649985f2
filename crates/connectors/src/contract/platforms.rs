//! Each audience destination's entry to the contract suite: start its platform's fake, build the
//! destination through that platform test module's constructor (the one place it is configured), and
//! declare in a [`Spec`] what the platform stores and does — or, per scenario, why it has no such
//! behaviour. The [`Fake`] impls read back what each fake holds.

use super::{Batching, Creation, Fake, Harness, Listing, Skip, Spec};
use crate::model::Channel;
use crate::test_support::{email, email_hash};
use crate::{file, google_ads, klaviyo, linkedin, mailchimp, meta, sendgrid, tiktok, webhook};
use campaignd_fakes::{
    FakeGoogleAds, FakeKlaviyo, FakeLinkedIn, FakeMailchimp, FakeMeta, FakeSendGrid, FakeTikTok,
    FakeWebhook, Faults, RequestLog,
};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;

fn customer_id(i: usize) -> String {
    format!("c{i}")
}

fn harness(
    spec: Spec,
    fake: impl Fake + 'static,
    d: Arc<dyn crate::AudienceDestination>,
) -> Harness {
    Harness {
        spec,
        fake: Box::new(fake),
        destination: d,
    }
}

fn listing(page_size: usize, method: &'static str, path: &str) -> Result<Listing, Skip> {
    Ok(Listing {
        page_size,
        method,
        path: path.to_string(),
    })
}

fn batching(cap: usize, method: &'static str, path: &str) -> Result<Batching, Skip> {
    Ok(Batching {
        cap,
        method,
        path: path.to_string(),
    })
}

pub(super) async fn meta() -> Harness {
    let fake = meta::tests::fake().await;
    let d = meta::tests::destination(&fake, meta::tests::TOKEN, 3);
    let spec = Spec {
        platform: "meta",
        key: email_hash,
        // Marketing API: 10,000 rows per `/users` call; Meta serves no audience under 100 people.
        limits: (Channel::Ads, 10_000, 100),
        takes_phones: true,
        creation: Ok(Creation::Immediate),
        listing: listing(25, "GET", "/act_1234/customaudiences"),
        batching: batching(10_000, "POST", "/users"),
        throttles: Ok(()),
        rejection: Ok("Invalid EMAIL"),
        corrupt: Ok(vec![json!({"NOT_META": "x"})]),
    };
    harness(spec, fake, d)
}

/// A [`Fake`] over an HTTP fake, from one accessor per question (each fake names them its own way).
macro_rules! fake_view {
    ($fake:ty {
        audience_id: $id:expr,
        audience_count: $count:expr,
        members: $members:expr,
        seed: $seed:expr,
        max_rows: $max:expr,
        reject: $reject:expr $(,)?
    }) => {
        impl Fake for $fake {
            fn requests(&self) -> Option<&RequestLog> {
                Some(self.requests())
            }
            fn faults(&self) -> Option<&Faults> {
                Some(self.faults())
            }
            fn audience_id(&self, name: &str) -> Option<String> {
                let f: fn(&$fake, &str) -> Option<String> = $id;
                f(self, name)
            }
            fn audience_count(&self) -> usize {
                let f: fn(&$fake) -> usize = $count;
                f(self)
            }
            fn members(&self, remote_id: &str) -> BTreeSet<String> {
                let f: fn(&$fake, &str) -> BTreeSet<String> = $members;
                f(self, remote_id)
            }
            fn seed_audiences(&self, names: &[String]) -> Vec<String> {
                let f: fn(&$fake, &[String]) -> Vec<String> = $seed;
                f(self, names)
            }
            fn max_rows_seen(&self) -> usize {
                let f: fn(&$fake) -> usize = $max;
                f(self)
            }
            fn reject(&self, keys: Vec<String>) {
                let f: fn(&$fake, Vec<String>) = $reject;
                f(self, keys)
            }
        }
    };
}

fake_view!(FakeMeta {
    audience_id: |f, name| f.audience_id(name),
    audience_count: |f| f.audiences().len(),
    members: |f, id| f.members(id),
    seed: |f, names| f.seed_audiences(names.iter().cloned()),
    max_rows: |f| f.max_rows_per_call(),
    reject: |f, keys| f.reject_emails(keys),
});

fake_view!(FakeTikTok {
    audience_id: |f, name| f.audience_id(name),
    audience_count: |f| f.audiences().len(),
    members: |f, id| f.members(id),
    seed: |f, names| f.seed_audiences(names.iter().cloned()),
    max_rows: |f| f.max_lines_per_file(),
    reject: |_, _| unreachable!("the spec declares no rejection"),
});

fake_view!(FakeLinkedIn {
    audience_id: |f, name| f.segment_id(name),
    audience_count: |f| f.segments().len(),
    members: |f, id| f.members(id),
    seed: |f, names| f.seed_segments(names.iter().cloned()),
    max_rows: |f| f.max_batch_seen(),
    reject: |f, keys| f.reject_emails(keys),
});

fake_view!(FakeMailchimp {
    // Only a static segment is an audience campaignd can fill.
    audience_id: |f, name| {
        f.segments()
            .into_iter()
            .find(|s| s.name == name && s.kind == "static")
            .map(|s| s.id.to_string())
    },
    audience_count: |f| f.segments().len(),
    members: |f, id| f.segment_members(id),
    seed: |f, names| {
        f.seed_segments(names.iter().cloned(), "static")
            .into_iter()
            .map(|id| id.to_string())
            .collect()
    },
    max_rows: |f| f.max_batch_seen(),
    reject: |f, keys| f.reject_emails(keys),
});

fake_view!(FakeKlaviyo {
    audience_id: |f, name| f.list_id(name),
    audience_count: |f| f.list_count(),
    members: |f, id| f.list_members(id),
    seed: |f, names| f.seed_lists(names.iter().cloned()),
    max_rows: |f| f.max_import_seen(),
    reject: |f, keys| f.reject_emails(keys),
});

fake_view!(FakeSendGrid {
    audience_id: |f, name| f.list_id(name),
    audience_count: |f| f.list_count(),
    members: |f, id| f.list_members(id),
    seed: |f, names| f.seed_lists(names.iter().cloned()),
    max_rows: |f| f.max_contacts_seen(),
    reject: |f, keys| f.reject_emails(keys),
});

fake_view!(FakeWebhook {
    // The audience is its name.
    audience_id: |_, name| Some(name.to_string()),
    audience_count: |_| 0,
    members: |f, id| f.members(id).into_keys().collect(),
    seed: |_, _| unreachable!("the spec declares no listing"),
    max_rows: |f| {
        f.batches()
            .iter()
            .filter_map(|b| b["members"].as_array().map(Vec::len))
            .max()
            .unwrap_or(0)
    },
    reject: |_, _| unreachable!("the spec declares no rejection"),
});

/// Both Google APIs on one fake: Customer Match (Ads API jobs) and Data Manager.
struct Google {
    fake: FakeGoogleAds,
    data_manager: bool,
}

async fn google(api: &'static str) -> Harness {
    let fake = google_ads::tests::fake(None).await;
    let d = google_ads::tests::destination(&fake, api);
    let data_manager = api == "data_manager";
    let (platform, list, upload) = if data_manager {
        (
            "google_ads (data_manager)",
            ("GET", "/userLists"),
            "/audienceMembers:ingest",
        )
    } else {
        (
            "google_ads (customer_match)",
            ("POST", "/googleAds:search"),
            ":addOperations",
        )
    };
    let spec = Spec {
        platform,
        key: email_hash,
        // Data Manager: 10,000 members per request (Customer Match plans the same); Google serves no
        // list under 1,000 matched people.
        limits: (Channel::Ads, 10_000, 1_000),
        takes_phones: true,
        creation: Ok(Creation::Immediate),
        listing: listing(campaignd_fakes::google_ads::PAGE_SIZE, list.0, list.1),
        batching: batching(10_000, "POST", upload),
        throttles: Ok(()),
        rejection: Ok("INVALID_EMAIL_ADDRESS"),
        corrupt: Ok(vec![json!({"hashedEmail": "NOT-A-HASH"})]),
    };
    harness(spec, Google { fake, data_manager }, d)
}

pub(super) async fn google_customer_match() -> Harness {
    google("customer_match").await
}

pub(super) async fn google_data_manager() -> Harness {
    google("data_manager").await
}

impl Fake for Google {
    fn requests(&self) -> Option<&RequestLog> {
        Some(self.fake.requests())
    }
    fn faults(&self) -> Option<&Faults> {
        Some(self.fake.faults())
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
    fn seed_audiences(&self, names: &[String]) -> Vec<String> {
        self.fake.seed_lists(names.iter().cloned())
    }
    fn max_rows_seen(&self) -> usize {
        if self.data_manager {
            self.fake.max_members_per_request()
        } else {
            // One identifier per row: the contacts have an email only.
            self.fake.max_identifiers_per_call()
        }
    }
    fn reject(&self, keys: Vec<String>) {
        self.fake.reject_emails(keys);
    }
}

/// Rows per customer file the harness configures (TikTok caps files by size; 100 keeps the test small).
const TIKTOK_BATCH: usize = 100;

pub(super) async fn tiktok() -> Harness {
    let fake = tiktok::tests::fake().await;
    let d = tiktok::tests::destination(&fake, tiktok::tests::TOKEN, TIKTOK_BATCH, 3);
    let spec = Spec {
        platform: "tiktok",
        key: email_hash,
        limits: (Channel::Ads, TIKTOK_BATCH, 1_000),
        takes_phones: false,
        creation: Ok(Creation::OnFirstBatch),
        listing: listing(100, "GET", "/dmp/custom_audience/list/"),
        batching: batching(TIKTOK_BATCH, "POST", "/dmp/custom_audience/file/upload/"),
        throttles: Ok(()),
        rejection: Err(Skip(
            "TikTok takes each batch as one customer file and reports no outcome per row",
        )),
        corrupt: Ok(vec![json!({"email_sha256": "NOT-HEX"})]),
    };
    harness(spec, fake, d)
}

pub(super) async fn linkedin() -> Harness {
    let fake = linkedin::tests::fake().await;
    let d = linkedin::tests::destination(&fake, linkedin::tests::REFRESH, json!({}));
    let spec = Spec {
        platform: "linkedin",
        key: email_hash,
        // 5,000 elements per `/users` batch; LinkedIn serves no segment under 300 members.
        limits: (Channel::Ads, 5_000, 300),
        takes_phones: false,
        creation: Ok(Creation::Immediate),
        listing: listing(campaignd_fakes::linkedin::MAX_COUNT, "GET", "/dmpSegments"),
        batching: batching(5_000, "POST", "/users"),
        throttles: Ok(()),
        rejection: Ok("could not be processed"),
        // Not LinkedIn's key; LinkedIn's key without a SHA-256 hex value.
        corrupt: Ok(vec![json!({"EMAIL": "x"}), json!({"SHA256_EMAIL": "abc"})]),
    };
    harness(spec, fake, d)
}

/// Listing page size the harness sets on the fakes that let it be set (Mailchimp, SendGrid).
const EMAIL_PAGE: usize = 10;

pub(super) async fn mailchimp() -> Harness {
    let fake = mailchimp::tests::fake().await;
    fake.set_page_cap(EMAIL_PAGE);
    let d = mailchimp::tests::destination(&fake);
    let spec = Spec {
        platform: "mailchimp",
        key: email,
        // Batch subscribe takes 500 members a call.
        limits: (Channel::Email, 500, 0),
        takes_phones: false,
        creation: Ok(Creation::Immediate),
        listing: listing(EMAIL_PAGE, "GET", "/segments"),
        batching: batching(500, "POST", &format!("/lists/{}", mailchimp::tests::LIST)),
        throttles: Ok(()),
        rejection: Ok("looks fake or invalid"),
        corrupt: Ok(vec![json!({"EMAIL": "x"})]),
    };
    harness(spec, fake, d)
}

pub(super) async fn klaviyo() -> Harness {
    let fake = klaviyo::tests::fake().await;
    let d = klaviyo::tests::destination(&fake);
    let spec = Spec {
        platform: "klaviyo",
        key: email,
        // A bulk import job takes 10,000 profiles.
        limits: (Channel::Email, 10_000, 0),
        takes_phones: true,
        creation: Ok(Creation::Immediate),
        listing: listing(campaignd_fakes::klaviyo::LIST_PAGE, "GET", "/lists"),
        batching: batching(10_000, "POST", "/profile-bulk-import-jobs"),
        throttles: Ok(()),
        rejection: Ok("Invalid email"),
        corrupt: Ok(vec![json!({"EMAIL": "x"})]),
    };
    harness(spec, fake, d)
}

pub(super) async fn sendgrid() -> Harness {
    let fake = sendgrid::tests::fake().await;
    fake.set_page_cap(EMAIL_PAGE);
    let d = sendgrid::tests::destination(&fake);
    let spec = Spec {
        platform: "sendgrid",
        key: email,
        // An upsert takes 30,000 contacts or 6 MB; 10,000 stays under the size limit.
        limits: (Channel::Email, 10_000, 0),
        takes_phones: false,
        creation: Ok(Creation::Immediate),
        listing: listing(EMAIL_PAGE, "GET", "/marketing/lists"),
        batching: batching(10_000, "PUT", "/marketing/contacts"),
        throttles: Ok(()),
        rejection: Ok("blocked domain"),
        corrupt: Ok(vec![json!({"EMAIL": "x"})]),
    };
    harness(spec, fake, d)
}

/// Members per POST the harness configures.
const WEBHOOK_BATCH: usize = 4;

const WEBHOOK_HAS_NO_AUDIENCES: Skip =
    Skip("a webhook has no remote audience objects: the audience is the name batches carry");

pub(super) async fn webhook() -> Harness {
    let fake = FakeWebhook::start(webhook::tests::SECRET)
        .await
        .expect("fake webhook");
    let d = webhook::tests::destination(&fake.url(), webhook::tests::SECRET, WEBHOOK_BATCH);
    let spec = Spec {
        platform: "webhook",
        key: customer_id,
        limits: (Channel::Ads, WEBHOOK_BATCH, 0),
        takes_phones: true,
        creation: Err(WEBHOOK_HAS_NO_AUDIENCES),
        listing: Err(WEBHOOK_HAS_NO_AUDIENCES),
        batching: batching(WEBHOOK_BATCH, "POST", "/hook"),
        throttles: Ok(()),
        rejection: Err(Skip(
            "a receiver answers for the whole batch (a 4xx fails the call, see webhook/tests.rs); \
             there is no outcome per row",
        )),
        corrupt: Err(Skip(
            "the webhook forwards stored payloads as they are; the receiver judges them",
        )),
    };
    harness(spec, fake, d)
}

const FILE_IS_LOCAL: Skip =
    Skip("the file destination writes local files: no requests to cap or throttle");

pub(super) async fn file() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = file::tests::destination(dir.path(), "jsonl", false);
    let spec = Spec {
        platform: "file",
        key: customer_id,
        limits: (Channel::Ads, 50_000, 0),
        takes_phones: true,
        creation: Ok(Creation::Immediate),
        listing: Err(Skip(
            "the file destination's audiences are directories it names itself; there is no listing",
        )),
        batching: Err(FILE_IS_LOCAL),
        throttles: Err(FILE_IS_LOCAL),
        rejection: Err(Skip("a file takes every row; nothing refuses one")),
        corrupt: Err(Skip(
            "the file destination writes stored payloads as they are",
        )),
    };
    harness(spec, Files(dir), d)
}

/// The file destination's output directory, read as the platform.
struct Files(tempfile::TempDir);

impl Fake for Files {
    fn requests(&self) -> Option<&RequestLog> {
        None
    }
    fn faults(&self) -> Option<&Faults> {
        None
    }
    /// An audience is a directory named after it (the suite's names need no escaping).
    fn audience_id(&self, name: &str) -> Option<String> {
        self.0.path().join(name).is_dir().then(|| name.to_string())
    }
    fn audience_count(&self) -> usize {
        std::fs::read_dir(self.0.path())
            .expect("output dir")
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
            .count()
    }
    /// Customer ids in the audience's `members.jsonl` snapshot.
    fn members(&self, remote_id: &str) -> BTreeSet<String> {
        let path = self.0.path().join(remote_id).join("members.jsonl");
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
    fn seed_audiences(&self, _names: &[String]) -> Vec<String> {
        unreachable!("the spec declares no listing")
    }
    fn max_rows_seen(&self) -> usize {
        unreachable!("the spec declares no batching")
    }
    fn reject(&self, _keys: Vec<String>) {
        unreachable!("the spec declares no rejection")
    }
}
