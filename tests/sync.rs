//! End-to-end audience sync through the real binary against a stateful fake Meta over loopback HTTP:
//! first sync, data changes (joins, leaves, suppressions, withdrawn consent), dry runs, faults, a
//! crash with `kill -9` mid-sync, and consent/suppression asserted on the fake's side.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use campaignd_core::identifiers::{normalize_email, sha256_hex};
use campaignd_fakes::FakeMeta;
use common::{blocking, Env};
use predicates::prelude::*;

/// Imports the written customers.csv and orders.csv, then recomputes with `recompute` (its arguments):
/// the setup the remote-job tests repeat before each sync, through their own `cmd` (which carries
/// their platform's secrets).
async fn import_and_recompute<F>(
    cmd: impl Fn(&'static [&'static str]) -> F,
    recompute: &'static [&'static str],
) where
    F: FnOnce() -> String + Send + 'static,
{
    blocking(cmd(&["import", "customers", "customers.csv"])).await;
    blocking(cmd(&["import", "orders", "orders.csv"])).await;
    blocking(cmd(recompute)).await;
}

const TOKEN: &str = "meta-test-token-123";
const N: usize = 400;

/// Customer i: consent_ads unless i % 10 == 0; country US for i odd, else CA; malformed email when
/// i % 25 == 0; messy case and whitespace on some emails (normalisation must fix them).
fn email(i: usize) -> String {
    if i.is_multiple_of(25) {
        format!("broken-{i}")
    } else if i.is_multiple_of(7) {
        format!("  User{i}@Example.COM ")
    } else {
        format!("user{i}@example.com")
    }
}

fn customers_csv(us_from: usize) -> String {
    let mut s = String::from("id,email,country,consent_ads,consent_email,created_at\n");
    for i in 1..=N {
        let country = if i % 2 == 1 || i >= us_from {
            "US"
        } else {
            "CA"
        };
        let consent = if i % 10 == 0 { "false" } else { "true" };
        s.push_str(&format!(
            "c{i:04},\"{}\",{country},{consent},true,2024-01-01T00:00:00Z\n",
            email(i)
        ));
    }
    s
}

fn orders_csv() -> String {
    let mut s = String::from("id,customer_id,placed_at,total\n");
    for i in 1..=N {
        s.push_str(&format!("o{i:04},c{i:04},2024-03-01T00:00:00Z,10\n"));
    }
    s
}

fn config(store_url: &str, base_url: &str, extra: &str) -> String {
    format!(
        r#"
[store]
url = "{store_url}"

[[segment]]
name = "us_buyers"
rule = 'orders.count() >= 1 and customer.country == "US"'

[destinations.meta_ads]
kind = "meta"
base_url = "{base_url}"
ad_account_id = "act_1234567890"
access_token = {{ env = "META_ACCESS_TOKEN" }}
{extra}

[[sync]]
segment = "us_buyers"
destination = "meta_ads"
mode = "mirror"
audience_name = "US buyers"
"#
    )
}

/// The email hashes the audience must hold: US buyers with consent, a valid email, not suppressed.
fn expected(
    us_from: usize,
    suppressed: &BTreeSet<usize>,
    consent_withdrawn: &BTreeSet<usize>,
) -> BTreeSet<String> {
    (1..=N)
        .filter(|i| i % 2 == 1 || *i >= us_from)
        .filter(|i| i % 10 != 0 && !consent_withdrawn.contains(i))
        .filter(|i| !suppressed.contains(i))
        .filter_map(|i| normalize_email(&email(i)))
        .map(|e| sha256_hex(&e))
        .collect()
}

/// Every email hash that must never reach the platform.
fn forbidden(suppressed: &BTreeSet<usize>) -> Vec<String> {
    (1..=N)
        .filter(|i| i % 10 == 0 || suppressed.contains(i))
        .filter_map(|i| normalize_email(&email(i)))
        .map(|e| sha256_hex(&e))
        .collect()
}

/// Asserts two member sets are equal, printing only the differences.
fn assert_same(actual: &BTreeSet<String>, expected: &BTreeSet<String>, what: &str) {
    let missing: Vec<_> = expected.difference(actual).take(5).collect();
    let extra: Vec<_> = actual.difference(expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: platform has {} members, expected {}; missing {missing:?}, extra {extra:?}",
        actual.len(),
        expected.len()
    );
}

fn run_ok(
    env: &Arc<Env>,
    args: &'static [&'static str],
) -> impl FnOnce() -> String + Send + 'static {
    let env = env.clone();
    move || {
        let out = env
            .cmd()
            .env("META_ACCESS_TOKEN", TOKEN)
            .args(args)
            .assert()
            .success();
        String::from_utf8_lossy(&out.get_output().stdout).to_string()
    }
}

async fn setup(fake: &FakeMeta, extra: &str) -> Arc<Env> {
    setup_on("sqlite://{DIR}/shop.db", fake, extra).await
}

async fn setup_on(store_url: &str, fake: &FakeMeta, extra: &str) -> Arc<Env> {
    let env = Arc::new(Env::new(&config(store_url, fake.base_url(), extra)));
    env.write("customers.csv", &customers_csv(N + 1));
    env.write("orders.csv", &orders_csv());
    blocking(run_ok(&env, &["import", "customers", "customers.csv"])).await;
    blocking(run_ok(&env, &["import", "orders", "orders.csv"])).await;
    blocking(run_ok(
        &env,
        &["segments", "recompute", "--as-of", "2024-06-01T00:00:00Z"],
    ))
    .await;
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_audience_follows_the_segment_sqlite() {
    audience_follows_the_segment("sqlite://{DIR}/shop.db").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_audience_follows_the_segment_postgres() {
    let Some(url) = campaignd_store::testkit::fresh_pg_database().await.unwrap() else {
        eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
        return;
    };
    audience_follows_the_segment(&url).await;
}

async fn audience_follows_the_segment(store_url: &str) {
    let fake = FakeMeta::start(TOKEN, "act_1234567890").await.unwrap();
    // An account with many audiences: find-or-create must page through them.
    fake.seed_audiences((0..60).map(|i| format!("Existing audience {i}")));
    let env = setup_on(store_url, &fake, "").await;

    // Dry run: prints the plan, sends nothing, creates nothing.
    let before = fake.requests().all().len();
    let plan = blocking(run_ok(&env, &["sync", "--dry-run"])).await;
    assert!(plan.contains("dry run: nothing sent"), "{plan}");
    assert_eq!(
        fake.requests().all().len(),
        before,
        "a dry run must not call the platform"
    );
    assert!(fake.audience_id("US buyers").is_none());

    // First sync creates the audience and sends everyone eligible.
    let out = blocking(run_ok(&env, &["sync"])).await;
    assert!(out.contains("done"), "{out}");
    let id = fake.audience_id("US buyers").expect("audience created");
    let none = BTreeSet::new();
    assert_same(
        &fake.members(&id),
        &expected(N + 1, &none, &none),
        "audience",
    );

    // Nothing changed: nothing is sent.
    let users_calls = fake.users_calls();
    blocking(run_ok(&env, &["sync"])).await;
    assert_eq!(
        fake.users_calls(),
        users_calls,
        "an unchanged segment sends no batch"
    );

    // Data changes: even customers from 300 on move to the US (join), a suppression arrives, and
    // customer 3 withdraws consent.
    env.write(
        "customers.csv",
        &customers_csv(300).replace(
            "c0003,\"user3@example.com\",US,true",
            "c0003,\"user3@example.com\",US,false",
        ),
    );
    env.write("suppressions.csv", "identifier_kind,identifier,reason\nemail,  USER5@example.com,opt-out\ncustomer_id,c0009,erasure\n");
    blocking(run_ok(&env, &["import", "customers", "customers.csv"])).await;
    blocking(run_ok(
        &env,
        &["import", "suppressions", "suppressions.csv"],
    ))
    .await;
    blocking(run_ok(
        &env,
        &["segments", "recompute", "--as-of", "2024-06-02T00:00:00Z"],
    ))
    .await;
    let plan = blocking(run_ok(&env, &["sync", "--dry-run"])).await;
    assert!(plan.lines().any(|l| l.starts_with("us_buyers")), "{plan}");
    blocking(run_ok(&env, &["sync"])).await;
    let suppressed: BTreeSet<usize> = [5, 9].into();
    let withdrawn: BTreeSet<usize> = [3].into();
    assert_same(
        &fake.members(&id),
        &expected(300, &suppressed, &withdrawn),
        "audience",
    );

    // Nobody without consent ever reached the platform, and the suppressed were only ever sent while
    // they were still allowed (before their suppression arrived); no raw value left either.
    let sent = fake.added_values();
    for hash in forbidden(&BTreeSet::new()) {
        assert!(
            !sent.contains(&hash),
            "{hash} (no consent) reached the fake"
        );
    }
    assert!(
        sent.iter().all(|v| v.len() == 64
            && v.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())),
        "only lowercase SHA-256 hex may leave"
    );

    // The run log is honest.
    let runs = blocking(run_ok(&env, &["runs", "--json"])).await;
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    let last_sync = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["job"] == "sync")
        .unwrap();
    assert_eq!(last_sync["outcome"], "success");
    assert!(
        last_sync["counts"]["removed"].as_i64().unwrap() >= 3,
        "{last_sync}"
    );
    assert!(
        last_sync["counts"]["skipped"]["no_identifier"]
            .as_i64()
            .unwrap()
            > 0
    );
    // Identifier counts for match rates: kinds of the members, and the reasons summing to the total.
    let counts = &last_sync["counts"];
    let n = |v: &serde_json::Value| v.as_i64().unwrap_or_else(|| panic!("count in {counts}"));
    let reasons = &counts["no_identifier_reasons"];
    assert_eq!(
        n(&reasons["invalid_phone"]) + n(&reasons["invalid_email"]) + n(&reasons["none"]),
        n(&counts["skipped"]["no_identifier"]),
        "{counts}"
    );
    assert!(n(&counts["identifiers"]["email"]) > 0, "{counts}");
    n(&counts["identifiers"]["phone"]);
    n(&counts["identifiers"]["address"]);
    let table = blocking(run_ok(&env, &["runs"])).await;
    assert!(
        table.contains("identifiers: email ") && table.contains("no identifier: invalid_phone "),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppressed_before_first_sync_never_leave() {
    let fake = FakeMeta::start(TOKEN, "act_1234567890").await.unwrap();
    let env = setup(&fake, "").await;
    env.write("suppressions.jsonl", "{\"identifier_kind\":\"email\",\"identifier\":\"user1@example.com\"}\n{\"identifier_kind\":\"customer_id\",\"identifier\":\"c0003\"}\n");
    blocking(run_ok(
        &env,
        &["import", "suppressions", "suppressions.jsonl"],
    ))
    .await;
    blocking(run_ok(&env, &["sync"])).await;
    let suppressed: BTreeSet<usize> = [1, 3].into();
    let id = fake.audience_id("US buyers").unwrap();
    assert_same(
        &fake.members(&id),
        &expected(N + 1, &suppressed, &BTreeSet::new()),
        "audience",
    );
    let sent = fake.added_values();
    for hash in forbidden(&suppressed) {
        assert!(!sent.contains(&hash), "{hash} reached the fake");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_are_retried() {
    let fake = FakeMeta::start(TOKEN, "act_1234567890").await.unwrap();
    let env = setup(
        &fake,
        "retry = { max_attempts = 6, initial_backoff_ms = 10, max_backoff_ms = 50 }",
    )
    .await;
    fake.faults().throttle_next(2);
    fake.faults().server_error_next(1);
    fake.faults().too_many_requests_next(1, 1);
    blocking(run_ok(&env, &["sync"])).await;
    let id = fake.audience_id("US buyers").unwrap();
    let none = BTreeSet::new();
    assert_same(
        &fake.members(&id),
        &expected(N + 1, &none, &none),
        "audience",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_rows_are_recorded_and_retried_next_run() {
    let fake = FakeMeta::start(TOKEN, "act_1234567890").await.unwrap();
    let env = setup(&fake, "").await;
    let victim = sha256_hex("user1@example.com");
    fake.reject_emails([victim.clone()]);
    blocking(run_ok(&env, &["sync"])).await;
    let id = fake.audience_id("US buyers").unwrap();
    assert!(!fake.members(&id).contains(&victim));
    let runs = blocking(run_ok(&env, &["runs", "--json"])).await;
    assert!(runs.contains("\"rejected\": 1"), "{runs}");
    // `runs` shows which row was rejected and the platform's reason.
    let table = blocking(run_ok(&env, &["runs"])).await;
    assert!(table.contains("rejected add of c0001: "), "{table}");
    // The platform accepts it now: the next run retries the rejected row only.
    fake.accept_all_emails();
    let out = blocking(run_ok(&env, &["sync"])).await;
    assert!(fake.members(&id).contains(&victim), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_fails_the_sync_without_leaking_it() {
    let fake = FakeMeta::start(TOKEN, "act_1234567890").await.unwrap();
    let env = setup(&fake, "").await;
    let env2 = env.clone();
    let out = blocking(move || {
        env2.cmd()
            .env("META_ACCESS_TOKEN", "wrong-secret-token-xyz")
            .arg("sync")
            .assert()
            .code(1)
            .stdout(predicate::str::contains("FAILED"))
            .get_output()
            .clone()
    })
    .await;
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains("wrong-secret-token-xyz"),
        "the token leaked: {all}"
    );
    let runs = blocking(run_ok(&env, &["runs", "--json"])).await;
    assert!(runs.contains("\"outcome\": \"failed\""));
    assert!(!runs.contains("wrong-secret-token-xyz"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopted_audience_is_replaced_on_first_mirror_sync() {
    let fake = FakeMeta::start(TOKEN, "act_1234567890").await.unwrap();
    let ids = fake.seed_audiences(["US buyers"]);
    fake.seed_members(&ids[0], ["stranger-hash-not-in-segment".to_string()]);
    let env = setup(&fake, "").await;
    blocking(run_ok(&env, &["sync"])).await;
    let none = BTreeSet::new();
    assert_same(
        &fake.members(&ids[0]),
        &expected(N + 1, &none, &none),
        "audience",
    );
    assert!(fake.requests().count("POST", "/usersreplace") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_sync_resumes_without_loss_or_more_than_one_batch_resent() {
    let fake = FakeMeta::start(TOKEN, "act_1234567890").await.unwrap();
    let env = setup(&fake, "batch_size = 20").await;
    let none = BTreeSet::new();
    let want = expected(N + 1, &none, &none);
    fake.faults()
        .set_delay(std::time::Duration::from_millis(250));
    let mut child = env
        .std_cmd()
        .env("META_ACCESS_TOKEN", TOKEN)
        .arg("sync")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a few batches were acknowledged, then kill -9 in the middle of the run.
    let started = std::time::Instant::now();
    while fake.users_calls() < 4 && started.elapsed() < std::time::Duration::from_secs(60) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let id = fake.audience_id("US buyers").unwrap();
    let partial = fake.members(&id).len();
    assert!(
        partial > 0 && partial < want.len(),
        "killed too early or too late: {partial} of {}",
        want.len()
    );

    fake.faults().set_delay(std::time::Duration::ZERO);
    blocking(run_ok(&env, &["sync"])).await;
    assert_same(&fake.members(&id), &want, "audience after resume");
    let sent = fake.added_rows();
    assert!(
        sent <= want.len() + 20,
        "{sent} rows sent for {} members: more than one batch was resent",
        want.len()
    );
    // The killed run is closed as abandoned by the next command (its pid is gone); the resumed one
    // succeeded.
    let runs = blocking(run_ok(&env, &["runs", "--json"])).await;
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    let syncs: Vec<_> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["job"] == "sync")
        .collect();
    assert_eq!(syncs[0]["outcome"], "success");
    assert_eq!(syncs[1]["outcome"], "abandoned", "{:?}", syncs[1]);
    assert!(
        syncs[1]["error"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("pid {} on", child.id())),
        "{:?}",
        syncs[1]
    );
    let table = blocking(run_ok(&env, &["runs"])).await;
    assert!(table.contains("abandoned"), "{table}");
}

/// The ledger rows of the Meta audience, read from the store the binary wrote.
async fn ledger_len(env: &Env, destination: &str, audience: &str) -> usize {
    let url = format!("sqlite://{}/shop.db", env.dir.path().display());
    let store = campaignd_store::Store::connect(&url).await.unwrap();
    store
        .ledger_page(destination, audience, "", 100_000)
        .await
        .unwrap()
        .len()
}

/// A sync expected to fail (exit 1); returns its stdout.
fn run_failing(env: &Arc<Env>) -> impl FnOnce() -> String + Send + 'static {
    let env = env.clone();
    move || {
        let out = env
            .cmd()
            .env("META_ACCESS_TOKEN", TOKEN)
            .arg("sync")
            .assert()
            .code(1)
            .stdout(predicate::str::contains("FAILED"));
        String::from_utf8_lossy(&out.get_output().stdout).to_string()
    }
}

/// Issue 12 item 1: a 200 from `/users` that is not Meta's count (`{}`, or an `error` body) is no
/// acknowledgement: the run fails with the reply's text, the ledger records nobody, the next run sends
/// the whole batch.
async fn unacknowledged_users_reply_is_a_failed_batch(body: &str, why: &str) {
    let fake = FakeMeta::start(TOKEN, "act_1234567890").await.unwrap();
    let env = setup(&fake, "").await;
    fake.faults().ok_with_body_next(1, "/users", body);
    let out = blocking(run_failing(&env)).await;
    assert!(out.contains(why), "{out}");
    let id = fake.audience_id("US buyers").unwrap();
    assert!(fake.members(&id).is_empty());
    assert_eq!(ledger_len(&env, "meta_ads", "US buyers").await, 0);
    let runs = blocking(run_ok(&env, &["runs", "--json"])).await;
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    let sync = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["job"] == "sync")
        .unwrap();
    assert_eq!(sync["outcome"], "failed", "{sync}");
    assert!(sync["error"].as_str().unwrap().contains(why), "{sync}");
    // A reply that acknowledges nothing is no platform hiccup: the run says a person must look.
    assert_eq!(
        sync["counts"]["status"]["failed"]["transient"], false,
        "{sync}"
    );

    let none = BTreeSet::new();
    let want = expected(N + 1, &none, &none);
    blocking(run_ok(&env, &["sync"])).await;
    assert_same(&fake.members(&id), &want, "audience after the retry");
    assert_eq!(
        fake.added_rows(),
        want.len(),
        "the whole batch is sent again"
    );
    assert_eq!(ledger_len(&env, "meta_ads", "US buyers").await, want.len());
}

/// Server errors past the retry budget fail the sync as transient: the run records it so, nobody in the
/// unacknowledged batch is held, and the next run sends the whole batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_past_the_retries_fail_the_sync_as_transient() {
    let fake = FakeMeta::start(TOKEN, "act_1234567890").await.unwrap();
    let env = setup(
        &fake,
        "retry = { max_attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 20 }",
    )
    .await;
    // Every request answers 500 (the listing first), more often than the client retries.
    fake.faults().server_error_next(1_000);
    let out = blocking(run_failing(&env)).await;
    assert!(out.contains("transient"), "{out}");
    let runs = blocking(run_ok(&env, &["runs", "--json"])).await;
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    let sync = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["job"] == "sync")
        .unwrap();
    assert_eq!(
        sync["counts"]["status"]["failed"]["transient"], true,
        "{sync}"
    );
    assert!(
        sync["error"].as_str().unwrap().contains("retried next run"),
        "{sync}"
    );
    assert_eq!(ledger_len(&env, "meta_ads", "US buyers").await, 0);

    fake.faults().server_error_next(0);
    blocking(run_ok(&env, &["sync"])).await;
    let id = fake.audience_id("US buyers").unwrap();
    let none = BTreeSet::new();
    let want = expected(N + 1, &none, &none);
    assert_same(&fake.members(&id), &want, "audience after the retry");
    assert_eq!(ledger_len(&env, "meta_ads", "US buyers").await, want.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_users_reply_is_not_an_acknowledgement() {
    unacknowledged_users_reply_is_a_failed_batch("{}", "no num_received").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_body_with_200_is_not_an_acknowledgement() {
    unacknowledged_users_reply_is_a_failed_batch(
        r#"{"error": {"message": "Audience upload halted by the fault", "type": "OAuthException", "code": 2650}}"#,
        "Audience upload halted by the fault",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_num_received_is_not_an_acknowledgement() {
    unacknowledged_users_reply_is_a_failed_batch(
        r#"{"audience_id": "1", "num_received": "3", "num_invalid_entries": 0}"#,
        "num_received 3 for",
    )
    .await;
}

/// Issue 12 item 2: a receiver answering every batch with 401/404 fails the sync (exit 1) and writes no
/// per-row rejection; the next run sends everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_refusing_whole_batches_fails_the_sync_without_rejections() {
    const SECRET: &str = "hook-secret-for-e2e";
    let hook = campaignd_fakes::FakeWebhook::start(SECRET).await.unwrap();
    let body = format!(
        r#"
[store]
url = "sqlite://{{DIR}}/shop.db"

[[segment]]
name = "us_buyers"
rule = 'orders.count() >= 1 and customer.country == "US"'

[destinations.hook]
kind = "webhook"
url = "{}"
secret = {{ env = "HOOK_SECRET" }}
batch_size = 50
retry = {{ max_attempts = 1 }}

[[sync]]
segment = "us_buyers"
destination = "hook"
mode = "mirror"
audience_name = "US buyers"
"#,
        hook.url()
    );
    let env = Arc::new(Env::new(&body));
    env.write("customers.csv", &customers_csv(N + 1));
    env.write("orders.csv", &orders_csv());
    let cmd = |args: &'static [&'static str], code: i32| {
        let env = env.clone();
        move || {
            let out = env
                .cmd()
                .env("HOOK_SECRET", SECRET)
                .args(args)
                .assert()
                .code(code);
            String::from_utf8_lossy(&out.get_output().stdout).to_string()
        }
    };
    blocking(cmd(&["import", "customers", "customers.csv"], 0)).await;
    blocking(cmd(&["import", "orders", "orders.csv"], 0)).await;
    blocking(cmd(
        &["segments", "recompute", "--as-of", "2024-06-01T00:00:00Z"],
        0,
    ))
    .await;
    for (status, why) in [(401u16, "credentials rejected"), (404, "HTTP 404")] {
        hook.reject_next(100, status);
        let out = blocking(cmd(&["sync"], 1)).await;
        assert!(out.contains("FAILED") && out.contains(why), "{out}");
        let runs = blocking(cmd(&["runs", "--json"], 0)).await;
        let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
        let sync = runs
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["job"] == "sync")
            .unwrap();
        assert_eq!(sync["outcome"], "failed", "{sync}");
        assert_eq!(sync["counts"]["rejected"], 0, "{sync}");
        let id = sync["id"].as_i64().unwrap();
        let url = format!("sqlite://{}/shop.db", env.dir.path().display());
        let store = campaignd_store::Store::connect(&url).await.unwrap();
        assert!(store.run_rejections(id).await.unwrap().is_empty());
        assert_eq!(ledger_len(&env, "hook", "US buyers").await, 0);
    }
    hook.reject_next(0, 422);
    blocking(cmd(&["sync"], 0)).await;
    let want = (1..=N)
        .filter(|i| i % 2 == 1)
        .filter(|i| i % 10 != 0)
        .filter(|i| normalize_email(&email(*i)).is_some())
        .count();
    assert_eq!(hook.members("US buyers").len(), want);
}

/// Issue 12 item 9: a SendGrid import job submitted by a process that was killed before the job
/// finished is polled by the next run, not submitted again; the ledger then holds its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sendgrid_job_survives_a_kill_and_is_polled_not_resent() {
    const KEY: &str = "SG.test-key-for-durable-jobs";
    let sg = campaignd_fakes::FakeSendGrid::start(KEY).await.unwrap();
    let body = format!(
        r#"
[store]
url = "sqlite://{{DIR}}/shop.db"

[[segment]]
name = "us_buyers"
rule = 'orders.count() >= 1 and customer.country == "US"'

[destinations.mail]
kind = "sendgrid"
base_url = "{}"
api_key = {{ env = "SENDGRID_API_KEY" }}
poll_interval_ms = 20

[[sync]]
segment = "us_buyers"
destination = "mail"
mode = "mirror"
audience_name = "US buyers"
"#,
        sg.base_url()
    );
    let env = Arc::new(Env::new(&body));
    env.write("customers.csv", &customers_csv(N + 1));
    env.write("orders.csv", &orders_csv());
    let cmd = |args: &'static [&'static str]| {
        let env = env.clone();
        move || {
            let out = env
                .cmd()
                .env("SENDGRID_API_KEY", KEY)
                .args(args)
                .assert()
                .success();
            String::from_utf8_lossy(&out.get_output().stdout).to_string()
        }
    };
    import_and_recompute(
        &cmd,
        &["segments", "recompute", "--as-of", "2024-06-01T00:00:00Z"],
    )
    .await;

    sg.hold_jobs(true);
    let mut child = env
        .std_cmd()
        .env("SENDGRID_API_KEY", KEY)
        .arg("sync")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the job was submitted and is being polled (it is stored before the first poll).
    let started = std::time::Instant::now();
    while sg
        .requests()
        .all()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/marketing/contacts/imports/"))
        .count()
        < 2
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the job was never polled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL while the job is still pending
    child.wait().unwrap();
    assert_eq!(sg.jobs_submitted(), 1);
    let list = sg.list_id("US buyers").unwrap();
    assert!(
        sg.list_members(&list).is_empty(),
        "the job had not finished"
    );
    assert_eq!(ledger_len(&env, "mail", "US buyers").await, 0);

    sg.hold_jobs(false);
    blocking(cmd(&["sync"])).await;
    assert_eq!(sg.jobs_submitted(), 1, "the batch was submitted again");
    let want: BTreeSet<String> = (1..=N)
        .filter(|i| i % 2 == 1)
        .filter_map(|i| normalize_email(&email(i)))
        .collect();
    assert_eq!(sg.list_members(&list), want);
    assert_eq!(ledger_len(&env, "mail", "US buyers").await, want.len());
    let url = format!("sqlite://{}/shop.db", env.dir.path().display());
    let store = campaignd_store::Store::connect(&url).await.unwrap();
    assert!(store
        .remote_jobs("mail", "US buyers")
        .await
        .unwrap()
        .is_empty());
    // Nothing changed since: the next run sends nothing at all.
    blocking(cmd(&["sync"])).await;
    assert_eq!(sg.jobs_submitted(), 1);
}

/// Issue 9: Google Data Manager requests are asynchronous. Each `audienceMembers:ingest` `requestId` is
/// stored as a remote job and polled with `requestStatus:retrieve`; a process killed while the request is
/// still `PROCESSING` leaves the job stored, and the next run polls the same request instead of
/// ingesting again. A request Google settles as `PARTIAL_SUCCESS` holds none of its (unnamed) rows: they
/// are the run's rejections, with Google's counts, and go out again next run.
async fn google_data_manager_request_survives_a_kill(store_url: &str) {
    use campaignd_fakes::google_ads::{DmOutcome, GoogleFakeConfig};
    const PEOPLE: usize = 1_100; // over Google's 1,000-member minimum
    let fake = campaignd_fakes::FakeGoogleAds::start(GoogleFakeConfig {
        developer_token: "unused-by-data-manager".into(),
        customer_id: "1234567890".into(),
        login_customer_id: None,
        client_id: "g-client".into(),
        client_secret: "g-SECRET".into(),
        refresh_token: "g-refresh-SECRET".into(),
    })
    .await
    .unwrap();
    let body = format!(
        r#"
[store]
url = "{store_url}"

[[segment]]
name = "buyers"
rule = "orders.count() >= 1"

[destinations.gads]
kind = "google_ads"
base_url = "{}"
token_url = "{}"
customer_id = "123-456-7890"
client_id = {{ env = "G_ID" }}
client_secret = {{ env = "G_SECRET" }}
refresh_token = {{ env = "G_REFRESH" }}
job_poll_interval_ms = 20

[[sync]]
segment = "buyers"
destination = "gads"
mode = "mirror"
audience_name = "Buyers"
"#,
        fake.data_manager_url(),
        fake.token_url()
    );
    let env = Arc::new(Env::new(&body));
    let mut customers = String::from("id,email,country,consent_ads,consent_email,created_at\n");
    let mut orders = String::from("id,customer_id,placed_at,total\n");
    for i in 1..=PEOPLE {
        customers.push_str(&format!(
            "c{i:05},buyer{i}@example.com,US,true,true,2024-01-01T00:00:00Z\n"
        ));
        orders.push_str(&format!("o{i:05},c{i:05},2024-03-01T00:00:00Z,10\n"));
    }
    env.write("customers.csv", &customers);
    env.write("orders.csv", &orders);
    let cmd = |args: &'static [&'static str]| {
        let env = env.clone();
        move || {
            let out = env
                .cmd()
                .env("G_ID", "g-client")
                .env("G_SECRET", "g-SECRET")
                .env("G_REFRESH", "g-refresh-SECRET")
                .args(args)
                .assert()
                .success();
            String::from_utf8_lossy(&out.get_output().stdout).to_string()
        }
    };
    import_and_recompute(
        &cmd,
        &["segments", "recompute", "--as-of", "2024-06-01T00:00:00Z"],
    )
    .await;

    fake.hold_dm_requests(true);
    let mut child = env
        .std_cmd()
        .env("G_ID", "g-client")
        .env("G_SECRET", "g-SECRET")
        .env("G_REFRESH", "g-refresh-SECRET")
        .arg("sync")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The request id is stored before the first poll: wait for two polls, then kill.
    let started = std::time::Instant::now();
    while fake.requests().count("GET", "/requestStatus:retrieve") < 2 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the request was never polled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL while the request is PROCESSING
    child.wait().unwrap();
    assert_eq!(fake.dm_requests_submitted(), 1);
    let list = fake.list_id("Buyers").expect("list created");
    assert!(fake.members(&list).is_empty(), "not processed yet");
    let url = store_url.replace("{DIR}", &env.dir.path().display().to_string());
    let store = campaignd_store::Store::connect(&url).await.unwrap();
    let jobs = store.remote_jobs("gads", "Buyers").await.unwrap();
    assert_eq!(jobs.len(), 1, "the request is stored as a remote job");
    assert_eq!(jobs[0].members.len(), PEOPLE);

    fake.hold_dm_requests(false);
    blocking(cmd(&["sync"])).await;
    assert_eq!(
        fake.dm_requests_submitted(),
        1,
        "the batch was ingested again"
    );
    assert_eq!(fake.members(&list).len(), PEOPLE);
    assert!(store
        .remote_jobs("gads", "Buyers")
        .await
        .unwrap()
        .is_empty());
    let held = store
        .ledger_page("gads", "Buyers", "", 100_000)
        .await
        .unwrap()
        .len();
    assert_eq!(held, PEOPLE);

    // Ten more buyers; Google settles their request as PARTIAL_SUCCESS (3 of 10 failed).
    for i in PEOPLE + 1..=PEOPLE + 10 {
        customers.push_str(&format!(
            "c{i:05},buyer{i}@example.com,US,true,true,2024-01-01T00:00:00Z\n"
        ));
        orders.push_str(&format!("o{i:05},c{i:05},2024-03-01T00:00:00Z,10\n"));
    }
    env.write("customers.csv", &customers);
    env.write("orders.csv", &orders);
    import_and_recompute(
        &cmd,
        &["segments", "recompute", "--as-of", "2024-06-02T00:00:00Z"],
    )
    .await;
    fake.dm_outcomes_next([DmOutcome::PartialSuccess {
        failed: 3,
        reason: "PROCESSING_ERROR_REASON_INVALID_FORMAT".into(),
    }]);
    blocking(cmd(&["sync"])).await;
    let runs = blocking(cmd(&["runs", "--json"])).await;
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    let last = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["job"] == "sync")
        .unwrap();
    assert_eq!(last["counts"]["rejected"], 10, "{last}");
    assert_eq!(last["counts"]["added"], 0, "{last}");
    let rejections = store
        .run_rejections(last["id"].as_i64().unwrap())
        .await
        .unwrap();
    assert_eq!(rejections.len(), 10);
    assert!(
        rejections[0]
            .2
            .contains("3 of 10 records failed (PROCESSING_ERROR_REASON_INVALID_FORMAT ×3)"),
        "{rejections:?}"
    );
    // The next run sends the ten again and Google takes them.
    blocking(cmd(&["sync"])).await;
    assert_eq!(fake.members(&list).len(), PEOPLE + 10);
    assert_eq!(
        store
            .ledger_page("gads", "Buyers", "", 100_000)
            .await
            .unwrap()
            .len(),
        PEOPLE + 10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_data_manager_request_survives_a_kill_sqlite() {
    google_data_manager_request_survives_a_kill("sqlite://{DIR}/shop.db").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_data_manager_request_survives_a_kill_postgres() {
    let Some(url) = campaignd_store::testkit::fresh_pg_database().await.unwrap() else {
        eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
        return;
    };
    google_data_manager_request_survives_a_kill(&url).await;
}

/// Runs SQL on the store the way a shop's own pipeline would (not through campaignd).
async fn pipeline_sql(store_url: &str, env: &Env, sql: &str) {
    if store_url.starts_with("sqlite:") {
        let url = store_url.replace("{DIR}", &env.dir.path().display().to_string());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(store_url).await.unwrap();
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

/// The counts of the newest sync run.
fn last_sync_counts(env: &Arc<Env>) -> impl FnOnce() -> serde_json::Value + Send + 'static {
    let run = run_ok(env, &["runs", "--json", "--job", "sync", "--limit", "1"]);
    move || {
        let runs: serde_json::Value = serde_json::from_str(&run()).unwrap();
        runs[0]["counts"].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_sync_prepares_only_what_changed_sqlite() {
    incremental_sync_prepares_only_what_changed("sqlite://{DIR}/shop.db").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_sync_prepares_only_what_changed_postgres() {
    let Some(url) = campaignd_store::testkit::fresh_pg_database().await.unwrap() else {
        eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
        return;
    };
    incremental_sync_prepares_only_what_changed(&url).await;
}

/// The diff is done in the database: a second sync with nothing changed prepares only the members
/// with no usable identifier (never held, so always looked at again) and sends nothing, yet reports
/// the same identifier counts; identifiers the shop's pipeline rewrites in SQL are noticed (an email
/// changed is removed and re-added, a phone rewritten to the same number is only re-recorded);
/// withdrawn consent removes without preparing anyone.
async fn incremental_sync_prepares_only_what_changed(store_url: &str) {
    let fake = FakeMeta::start(TOKEN, "act_1234567890").await.unwrap();
    let env = setup_on(store_url, &fake, "").await;
    pipeline_sql(
        store_url,
        &env,
        "UPDATE customers SET phone = '+1 650 253 0001' WHERE id = 'c0011'",
    )
    .await;
    blocking(run_ok(&env, &["sync"])).await;
    let first = blocking(last_sync_counts(&env)).await;
    let id = fake.audience_id("US buyers").expect("audience created");
    let none = BTreeSet::new();
    assert_same(
        &fake.members(&id),
        &expected(N + 1, &none, &none),
        "first sync",
    );
    let n = |c: &serde_json::Value, k: &str| c[k].as_i64().unwrap_or_else(|| panic!("{k} in {c}"));
    let no_identifier = first["skipped"]["no_identifier"].as_i64().unwrap();
    assert!(no_identifier > 0, "{first}");
    assert_eq!(n(&first, "prepared"), n(&first, "eligible"), "{first}");

    // Nothing changed: only the members without an identifier are prepared again.
    let users_calls = fake.users_calls();
    blocking(run_ok(&env, &["sync"])).await;
    let second = blocking(last_sync_counts(&env)).await;
    assert_eq!(
        fake.users_calls(),
        users_calls,
        "nothing changed, nothing sent"
    );
    assert_eq!(n(&second, "prepared"), no_identifier, "{second}");
    assert_eq!(second["identifiers"], first["identifiers"], "{second}");
    assert_eq!(second["added"], 0);
    assert_eq!(second["removed"], 0);

    // The pipeline rewrites identifiers directly: a new email for c0001, the same phone written
    // differently for c0011.
    pipeline_sql(
        store_url,
        &env,
        "UPDATE customers SET email = 'renamed1@example.com' WHERE id = 'c0001'; \
         UPDATE customers SET phone = '(650) 253-0001' WHERE id = 'c0011'",
    )
    .await;
    blocking(run_ok(&env, &["sync"])).await;
    let third = blocking(last_sync_counts(&env)).await;
    assert_eq!(n(&third, "prepared"), no_identifier + 2, "{third}");
    assert_eq!(n(&third, "added"), 1, "{third}");
    assert_eq!(n(&third, "removed"), 1, "{third}");
    let members = fake.members(&id);
    assert!(members.contains(&sha256_hex("renamed1@example.com")));
    assert!(!members.contains(&sha256_hex("user1@example.com")));
    // ... and the re-recorded phone is not looked at again.
    blocking(run_ok(&env, &["sync"])).await;
    let fourth = blocking(last_sync_counts(&env)).await;
    assert_eq!(n(&fourth, "prepared"), no_identifier, "{fourth}");

    // Consent withdrawn in SQL: removed, nobody prepared beyond the usual.
    pipeline_sql(
        store_url,
        &env,
        "UPDATE customers SET consent_ads = FALSE WHERE id = 'c0003'",
    )
    .await;
    blocking(run_ok(&env, &["sync"])).await;
    let fifth = blocking(last_sync_counts(&env)).await;
    assert_eq!(n(&fifth, "prepared"), no_identifier, "{fifth}");
    assert_eq!(n(&fifth, "removed"), 1, "{fifth}");
    assert!(!fake.members(&id).contains(&sha256_hex("user3@example.com")));

    // `--full` compares everyone again and finds the audience already right.
    blocking(run_ok(&env, &["sync", "--full"])).await;
    let full = blocking(last_sync_counts(&env)).await;
    assert_eq!(n(&full, "prepared"), n(&full, "eligible"), "{full}");
    let mut want = expected(N + 1, &none, &[3].into());
    want.remove(&sha256_hex("user1@example.com"));
    want.insert(sha256_hex("renamed1@example.com"));
    assert_same(&fake.members(&id), &want, "after --full");
}
