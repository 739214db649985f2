//! End-to-end tests of `campaignd run`, the daemon, through the real binary: seconds-level cron ticks
//! recorded as runs, a failing job that does not stop the others, two replicas sharing one Postgres
//! (each tick run once, hand-over after a kill -9), SIGTERM during a slow sync (exit 0, ledger
//! consistent, the next run completes), the admin API (auth, JSON shapes, Prometheus text) and the
//! report page rendered by headless Chromium.
//!
//! Nothing here asserts wall-clock durations: every wait polls for a condition with a generous limit.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use campaignd_fakes::FakeMeta;
use campaignd_store::runs::Job;
use campaignd_store::Store;
use common::{blocking, Env};

const LIMIT: Duration = Duration::from_secs(120);

/// A running `campaignd run` and its admin address.
struct Daemon {
    child: Child,
    addr: Option<String>,
    log: PathBuf,
}

impl Daemon {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            self.addr.as_deref().expect("admin enabled")
        )
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn sigterm(&self) {
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM failed");
    }

    /// Waits (polling) for the process to exit.
    async fn exit(mut self) -> (ExitStatus, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.log_text());
            }
            assert!(
                started.elapsed() < LIMIT,
                "daemon did not exit; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the daemon; `name` tells log files apart. Waits for its "running" line on stdout.
async fn start(env: &Env, name: &str, vars: &[(&str, &str)]) -> Daemon {
    let log = env.dir.path().join(format!("{name}.log"));
    let mut cmd = env.std_cmd();
    cmd.arg("run")
        .env("CAMPAIGND_LOG", "info,campaignd_engine=debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("campaignd running") {
                let addr = line
                    .split("http://")
                    .nth(1)
                    .map(|s| s.trim_end_matches('/').to_string());
                let _ = tx.send(addr);
            }
        }
    });
    let addr = blocking(move || rx.recv_timeout(LIMIT)).await;
    let mut daemon = Daemon {
        child,
        addr: None,
        log,
    };
    match addr {
        Ok(addr) => daemon.addr = addr,
        Err(_) => panic!("daemon {name} did not start; log:\n{}", daemon.log_text()),
    }
    daemon
}

/// Polls `check` until it returns `Some`, failing with `what` after [`LIMIT`].
async fn poll<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(started.elapsed() < LIMIT, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn customers_csv(n: usize) -> String {
    let mut s = String::from("id,email,country,consent_ads,consent_email,created_at\n");
    for i in 1..=n {
        s.push_str(&format!(
            "c{i:04},user{i}@example.com,US,true,true,2024-01-01T00:00:00Z\n"
        ));
    }
    s
}

fn orders_csv(n: usize) -> String {
    let mut s = String::from("id,customer_id,placed_at,total\n");
    for i in 1..=n {
        s.push_str(&format!("o{i:04},c{i:04},2024-03-01T00:00:00Z,10\n"));
    }
    s
}

/// Imports `n` customers with one order each through the CLI.
async fn import_shop(env: &std::sync::Arc<Env>, n: usize) {
    env.write("customers.csv", &customers_csv(n));
    env.write("orders.csv", &orders_csv(n));
    for kind in ["customers", "orders"] {
        let env = env.clone();
        blocking(move || {
            env.cmd()
                .args(["import", kind, &format!("{kind}.csv")])
                .assert()
                .success();
        })
        .await;
    }
}

async fn store_of(url: &str, dir: &Path) -> Store {
    Store::connect(&url.replace("{DIR}", &dir.display().to_string()))
        .await
        .unwrap()
}

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_fire_on_a_seconds_cron_and_a_failing_job_does_not_stop_the_others() {
    let env = std::sync::Arc::new(Env::new(
        r#"
[store]
url = "sqlite://{DIR}/shop.db"

[schedule]
recompute_sync = "*/2 * * * * *"
run_on_start = false

[admin]
bind = "127.0.0.1:0"

[[segment]]
name = "buyers"
rule = "orders.count() >= 1"

[destinations.sandbox]
kind = "sandbox"
path = "{DIR}/sandbox"

[destinations.hook]
kind = "webhook"
url = "http://127.0.0.1:9/unreachable"
secret = { env = "HOOK_SECRET" }
connect_timeout_ms = 500
retry = { max_attempts = 1 }

[[sync]]
segment = "buyers"
destination = "sandbox"

[[sync]]
segment = "buyers"
destination = "hook"
audience_name = "buyers-hook"
schedule = "*/3 * * * * *"
"#,
    ));
    import_shop(&env, 30).await;
    let daemon = start(&env, "d", &[("HOOK_SECRET", "hook-secret-value")]).await;
    let store = store_of("sqlite://{DIR}/shop.db", env.dir.path()).await;

    // The broken hook fails tick after tick; the hourly-style job keeps succeeding meanwhile.
    let runs = poll(
        "two failed hook syncs and later successful recompute + sandbox syncs",
        || {
            let store = store.clone();
            async move {
                let runs = store.recent_runs(500, None).await.ok()?;
                let hook_failed: Vec<i64> = runs
                    .iter()
                    .filter(|r| {
                        r.job == Job::Sync
                            && r.target.as_deref() == Some("buyers -> hook")
                            && r.outcome.as_str() == "failed"
                    })
                    .map(|r| r.id)
                    .collect();
                let first_failure = *hook_failed.iter().min()?;
                let ok_after = |job: Job, target: Option<&str>| {
                    runs.iter()
                        .filter(|r| {
                            r.job == job
                                && r.target.as_deref() == target
                                && r.outcome.as_str() == "success"
                                && r.id > first_failure
                        })
                        .count()
                };
                (hook_failed.len() >= 2
                    && ok_after(Job::Recompute, None) >= 2
                    && ok_after(Job::Sync, Some("buyers -> sandbox")) >= 2)
                    .then_some(runs)
            }
        },
    )
    .await;
    // Every finished run has an outcome and the failures say why, without the secret.
    let failed = runs
        .iter()
        .find(|r| r.outcome.as_str() == "failed")
        .unwrap();
    let error = failed.error.clone().unwrap_or_default();
    assert!(!error.is_empty(), "{failed:?}");
    assert!(!error.contains("hook-secret-value"));
    // The per-[[sync]] job recomputed its own segment before syncing.
    assert!(runs
        .iter()
        .any(|r| r.job == Job::Recompute && r.target.as_deref() == Some("buyers")));

    // The metrics agree.
    let (status, text) = get(&daemon.url("/metrics"), None).await;
    assert_eq!(status, 200);
    let samples = parse_prometheus(&text);
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
            .unwrap_or(0.0)
    };
    assert!(
        value(
            "campaignd_job_runs_total",
            &[("job", "sync:hook:buyers-hook"), ("outcome", "failed")]
        ) >= 2.0,
        "{text}"
    );
    assert!(
        value(
            "campaignd_job_runs_total",
            &[("job", "recompute_sync"), ("outcome", "success")]
        ) >= 2.0,
        "{text}"
    );
    assert!(
        value("campaignd_sync_failures_total", &[("destination", "hook")]) >= 2.0,
        "{text}"
    );
    assert!(
        value(
            "campaignd_members_synced_total",
            &[("destination", "sandbox"), ("action", "added")]
        ) >= 30.0,
        "{text}"
    );
    assert!(
        value(
            "campaignd_destination_requests_total",
            &[("destination", "hook")]
        ) >= 1.0,
        "{text}"
    );

    daemon.sigterm();
    let (status, log) = daemon.exit().await;
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        !log.contains("hook-secret-value"),
        "the secret leaked into the log"
    );
    assert!(
        !log.contains("user1@example.com"),
        "an email leaked into the log"
    );
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_postgres_run_each_tick_once_and_hand_over_after_a_kill() {
    let Some(url) = campaignd_store::testkit::fresh_pg_database().await.unwrap() else {
        eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
        return;
    };
    let env = std::sync::Arc::new(Env::new(&format!(
        r#"
[store]
url = "{url}"

[schedule]
recompute_sync = "*/2 * * * * *"
# Leases are kept in whole seconds and renewed by each claim: a lease five ticks long lets the leader
# keep it through a scheduling stall of several seconds on a loaded machine (a lease shorter than one
# tick and a stall hand leadership over, which is correct but not what this test watches).
lease_secs = 10
run_on_start = false

[admin]
enabled = false

[[segment]]
name = "buyers"
rule = "orders.count() >= 1"
"#
    )));
    import_shop(&env, 20).await;
    let store = store_of(&url, env.dir.path()).await;
    let ticks_by = |holder_pid: u32| {
        let store = store.clone();
        async move {
            let ticks = store
                .claimed_ticks(Some("recompute_sync"), 10_000)
                .await
                .unwrap();
            ticks
                .iter()
                .filter(|t| t.holder.contains(&format!(":{holder_pid}:")))
                .count()
        }
    };

    let a = start(&env, "a", &[]).await;
    let a_pid = a.pid();
    poll("A runs two ticks", || {
        let f = ticks_by(a_pid);
        async move { (f.await >= 2).then_some(()) }
    })
    .await;
    let b = start(&env, "b", &[]).await;
    let b_pid = b.pid();
    // While A lives it keeps the lease: three more ticks, all A's.
    let a_now = ticks_by(a_pid).await;
    poll("A runs three more ticks with B up", || {
        let f = ticks_by(a_pid);
        async move { (f.await >= a_now + 3).then_some(()) }
    })
    .await;
    assert_eq!(
        ticks_by(b_pid).await,
        0,
        "B ran a tick while A held the lease"
    );

    // kill -9 the leader: its lease lapses and B takes over.
    drop(a);
    poll("B takes over and runs three ticks", || {
        let f = ticks_by(b_pid);
        async move { (f.await >= 3).then_some(()) }
    })
    .await;
    b.sigterm();
    let (status, log) = b.exit().await;
    assert_eq!(status.code(), Some(0), "{log}");
    // While A led, B's skipped ticks were logged at info (issue 12: not at debug only).
    assert!(
        log.lines().any(|l| l.contains("INFO")
            && l.contains("tick skipped: another live replica holds this job's lease")),
        "B logged no skipped tick at info:\n{log}"
    );

    let ticks = store
        .claimed_ticks(Some("recompute_sync"), 10_000)
        .await
        .unwrap();
    let distinct: BTreeSet<i64> = ticks.iter().map(|t| t.tick).collect();
    assert_eq!(
        distinct.len(),
        ticks.len(),
        "a tick was run twice: {ticks:?}"
    );
    // Leadership moved once, from A to B.
    let holders: Vec<u32> = ticks
        .iter()
        .map(|t| {
            if t.holder.contains(&format!(":{a_pid}:")) {
                a_pid
            } else {
                b_pid
            }
        })
        .collect();
    let switches = holders.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(switches, 1, "{holders:?}");
    assert_eq!(holders[0], a_pid);
    // Every claimed tick is one recompute run (A may have died between a claim and its run record).
    let runs = store
        .recent_runs(10_000, Some(Job::Recompute))
        .await
        .unwrap();
    assert!(
        runs.len() == ticks.len() || runs.len() + 1 == ticks.len(),
        "{} runs for {} ticks",
        runs.len(),
        ticks.len()
    );
}

// ---------------------------------------------------------------------------------------------

const META_TOKEN: &str = "meta-daemon-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_sync_exits_0_with_a_consistent_ledger_and_the_next_run_completes() {
    let fake = FakeMeta::start(META_TOKEN, "act_1234567890").await.unwrap();
    let env = std::sync::Arc::new(Env::new(&format!(
        r#"
[store]
url = "sqlite://{{DIR}}/shop.db"

[schedule]
recompute_sync = "0 0 0 1 1 *"
run_on_start = true

[admin]
enabled = false

[[segment]]
name = "buyers"
rule = "orders.count() >= 1"

[destinations.meta_ads]
kind = "meta"
base_url = "{}"
ad_account_id = "act_1234567890"
access_token = {{ env = "META_ACCESS_TOKEN" }}
batch_size = 20

[[sync]]
segment = "buyers"
destination = "meta_ads"
audience_name = "Buyers"
"#,
        fake.base_url()
    )));
    const N: usize = 300;
    import_shop(&env, N).await;
    fake.faults().set_delay(Duration::from_millis(300));
    let vars = [("META_ACCESS_TOKEN", META_TOKEN)];

    let daemon = start(&env, "first", &vars).await;
    poll("a few batches acknowledged", || {
        let n = fake.users_calls();
        async move { (n >= 3).then_some(()) }
    })
    .await;
    daemon.sigterm();
    let (status, log) = daemon.exit().await;
    assert_eq!(status.code(), Some(0), "{log}");

    let store = store_of("sqlite://{DIR}/shop.db", env.dir.path()).await;
    let id = fake.audience_id("Buyers").expect("audience created");
    let on_platform = fake.members(&id).len();
    assert!(
        on_platform > 0 && on_platform < N,
        "stopped too early or too late: {on_platform} of {N}"
    );
    // The batch in flight finished and was recorded: the ledger holds exactly what the platform has.
    assert_eq!(ledger_count(&store).await, on_platform as i64);
    let syncs = store.recent_runs(10, Some(Job::Sync)).await.unwrap();
    assert_eq!(syncs[0].outcome.as_str(), "partial", "{syncs:?}");
    assert!(syncs[0].finished_at.is_some());
    assert!(
        syncs[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("interrupted"),
        "{syncs:?}"
    );
    store.close().await;

    fake.faults().set_delay(Duration::ZERO);
    let daemon = start(&env, "second", &vars).await;
    let store = store_of("sqlite://{DIR}/shop.db", env.dir.path()).await;
    poll("the next run completes the sync", || {
        let store = store.clone();
        async move {
            let runs = store.recent_runs(1, Some(Job::Sync)).await.ok()?;
            (runs.first()?.outcome.as_str() == "success").then_some(())
        }
    })
    .await;
    assert_eq!(fake.members(&id).len(), N);
    assert_eq!(ledger_count(&store).await, N as i64);
    daemon.sigterm();
    let (status, log) = daemon.exit().await;
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!log.contains(META_TOKEN), "the token leaked into the log");
}

async fn ledger_count(store: &Store) -> i64 {
    const SQL: &str = "SELECT COUNT(*) FROM sync_ledger";
    match store.pool() {
        campaignd_store::Pool::Sqlite(p) => sqlx::query_scalar(SQL).fetch_one(p).await.unwrap(),
        campaignd_store::Pool::Postgres(p) => sqlx::query_scalar(SQL).fetch_one(p).await.unwrap(),
    }
}

// ---------------------------------------------------------------------------------------------

/// Parses Prometheus text exposition: every sample line is `name{labels} value`, every family declared
/// by `# TYPE` before its samples. Panics on anything else.
fn parse_prometheus(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            typed.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert_eq!(chars.next(), Some('"'), "{line}");
                    let mut val = String::new();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => val.push(chars.next().expect("escape")),
                            '"' => break,
                            c => val.push(c),
                        }
                    }
                    labels.insert(key, val);
                    if chars.peek() == Some(&',') {
                        chars.next();
                    }
                }
                (name.to_string(), labels)
            }
            None => (series.to_string(), BTreeMap::new()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(&name);
        assert!(
            typed.contains_key(family),
            "sample before its # TYPE: {line}"
        );
        out.push((name, labels, value));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_refuses_without_the_token_on_a_non_loopback_bind_and_serves_json_and_metrics() {
    let config = r#"
[store]
url = "sqlite://{DIR}/shop.db"

[schedule]
run_on_start = true

[admin]
bind = "0.0.0.0:0"
token = { env = "ADMIN_TOKEN" }

[[segment]]
name = "buyers"
rule = "orders.count() >= 1"

[destinations.sandbox]
kind = "sandbox"
path = "{DIR}/sandbox"

[[sync]]
segment = "buyers"
destination = "sandbox"
"#;
    let env = std::sync::Arc::new(Env::new(config));
    import_shop(&env, 25).await;

    // Without a token configured, a non-loopback bind is refused at start-up (exit 2).
    let no_token = std::sync::Arc::new(Env::new(
        &config.replace("token = { env = \"ADMIN_TOKEN\" }\n", ""),
    ));
    let out = blocking(move || {
        no_token
            .cmd()
            .arg("run")
            .timeout(Duration::from_secs(60))
            .assert()
            .code(2)
            .get_output()
            .clone()
    })
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[admin]") && stderr.contains("token"),
        "{stderr}"
    );

    let token = "admin-test-token-0123";
    let daemon = start(&env, "admin", &[("ADMIN_TOKEN", token)]).await;
    // Bound on every interface; reach it through loopback.
    let port = daemon
        .addr
        .as_deref()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let base = format!("http://127.0.0.1:{port}");
    let store = store_of("sqlite://{DIR}/shop.db", env.dir.path()).await;
    poll("the start-up sync recorded", || {
        let store = store.clone();
        async move {
            store
                .recent_runs(1, Some(Job::Sync))
                .await
                .ok()?
                .first()
                .filter(|r| r.outcome.as_str() == "success")
                .map(|_| ())
        }
    })
    .await;

    for path in [
        "/metrics",
        "/api/runs",
        "/api/segments",
        "/api/status",
        "/api/creatives",
        "/api/report?since=30d&by=segment,channel",
    ] {
        let (status, _) = get(&format!("{base}{path}"), None).await;
        assert_eq!(status, 401, "{path} without a token");
        let (status, _) = get(&format!("{base}{path}"), Some("wrong-token")).await;
        assert_eq!(status, 401, "{path} with a wrong token");
        let (status, _) = get(&format!("{base}{path}"), Some(token)).await;
        assert_eq!(status, 200, "{path} with the token");
    }
    // Health and the page's static files carry no data and stay open.
    let (status, body) = get(&format!("{base}/healthz"), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["status"],
        "ok"
    );
    let (status, body) = get(&format!("{base}/"), None).await;
    assert_eq!(status, 200);
    assert!(body.contains("/assets/app.js"));

    let json = |path: &'static str| {
        let base = base.clone();
        async move {
            let (status, body) = get(&format!("{base}{path}"), Some(token)).await;
            assert_eq!(status, 200, "{path}: {body}");
            serde_json::from_str::<serde_json::Value>(&body).unwrap()
        }
    };
    let runs = json("/api/runs?limit=10").await;
    let run = &runs["runs"][0];
    for key in [
        "id",
        "job",
        "target",
        "started_at",
        "finished_at",
        "outcome",
        "counts",
        "error",
    ] {
        assert!(run.get(key).is_some(), "run lacks {key}: {run}");
    }
    let report = json("/api/report?since=30d&by=segment,channel").await;
    assert!(report.is_array(), "{report}");
    let segments = json("/api/segments?since=30d").await;
    let seg = &segments["segments"][0];
    assert_eq!(seg["name"], "buyers");
    assert_eq!(seg["size"], 25);
    let point = &seg["history"][0];
    assert_eq!(point["size"], 25);
    assert!(point["at"].is_string());
    let status = json("/api/status").await;
    assert!(status["holder"]
        .as_str()
        .unwrap()
        .contains(&format!(":{}:", daemon.pid())));
    assert_eq!(status["jobs"][0]["name"], "recompute_sync");
    assert!(status["jobs"][0]["next"].is_string());
    let leases = status["leases"].as_array().unwrap();
    assert!(
        leases
            .iter()
            .any(|l| l["job"] == "recompute_sync" && l["holder"] == status["holder"]),
        "{leases:?}"
    );
    assert_eq!(status["destinations"][0]["name"], "sandbox");
    let (_, bad) = get(&format!("{base}/api/segments?since=yesterday"), Some(token)).await;
    assert!(bad.contains("since"), "{bad}");

    let (_, text) = get(&format!("{base}/metrics"), Some(token)).await;
    let samples = parse_prometheus(&text);
    let names: BTreeSet<&str> = samples.iter().map(|(n, _, _)| n.as_str()).collect();
    for want in [
        "campaignd_up",
        "campaignd_job_runs_total",
        "campaignd_job_duration_seconds_bucket",
        "campaignd_job_duration_seconds_count",
        "campaignd_members_synced_total",
        "campaignd_sync_rejections_total",
        "campaignd_segment_size",
        "campaignd_lease_held",
    ] {
        assert!(names.contains(want), "{want} missing from:\n{text}");
    }
    assert!(samples
        .iter()
        .any(|(n, l, v)| n == "campaignd_segment_size" && l["segment"] == "buyers" && *v == 25.0));

    daemon.sigterm();
    let (status, log) = daemon.exit().await;
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!log.contains(token), "the admin token leaked into the log");
}

// ---------------------------------------------------------------------------------------------

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn headless(browser: &str, profile: &Path, args: &[&str], url: &str) -> std::process::Output {
    std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1200,900",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_page_draws_its_charts_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!(
            "chromium not installed (apt-get install -y chromium): skipping the report page test"
        );
        return;
    };
    let env = std::sync::Arc::new(Env::new(
        r#"
[store]
url = "sqlite://{DIR}/shop.db"

[schedule]
demo_if_empty = true

[admin]
bind = "127.0.0.1:0"

[[segment]]
name = "repeat_customers"
template = "repeat_customer"

[[segment]]
name = "cart_abandoners"
template = "cart_abandoner"

[[segment]]
name = "vip"
template = "high_value"

[destinations.sandbox]
kind = "sandbox"
path = "{DIR}/sandbox"

[[sync]]
segment = "vip"
destination = "sandbox"
audience_name = "VIP"
"#,
    ));
    let daemon = start(&env, "page", &[]).await;
    let store = store_of("sqlite://{DIR}/shop.db", env.dir.path()).await;
    poll("the start-up sync recorded", || {
        let store = store.clone();
        async move {
            store
                .recent_runs(1, Some(Job::Sync))
                .await
                .ok()?
                .first()
                .filter(|r| r.outcome.as_str() == "success")
                .map(|_| ())
        }
    })
    .await;
    let url = daemon.url("/");
    let profile = tempfile::tempdir().unwrap();

    let (b, p, u) = (
        browser.to_string(),
        profile.path().to_path_buf(),
        url.clone(),
    );
    let dom = blocking(move || headless(&b, &p, &["--dump-dom"], &u)).await;
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    assert!(
        dom.contains("data-loaded=\"true\""),
        "the page's script did not finish:\n{dom}"
    );
    let chart = |id: &str| -> String {
        let start = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id}"));
        dom[start..]
            .split("</section>")
            .next()
            .unwrap_or("")
            .to_string()
    };
    let sizes = chart("chart-sizes");
    assert!(
        sizes.contains("<svg") && sizes.matches("class=\"series\"").count() == 3,
        "{sizes}"
    );
    let runs = chart("chart-runs");
    assert!(
        runs.contains("<svg") && runs.contains("class=\"bar\""),
        "{runs}"
    );
    assert!(dom.contains("VIP"), "the audience table is missing");

    let shot = artifacts_dir().join("report-page.png");
    let _ = std::fs::remove_file(&shot);
    let (b, p, u, s) = (
        browser.to_string(),
        profile.path().to_path_buf(),
        url,
        shot.clone(),
    );
    let out =
        blocking(move || headless(&b, &p, &[&format!("--screenshot={}", s.display())], &u)).await;
    assert!(
        shot.metadata().map(|m| m.len() > 10_000).unwrap_or(false),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("screenshot saved to {}", shot.display());

    daemon.sigterm();
    let (status, log) = daemon.exit().await;
    assert_eq!(status.code(), Some(0), "{log}");
}

// ---------------------------------------------------------------------------------------------

/// A daemon killed with `kill -9` while it holds the recompute-then-sync lease (an hour long here) is
/// restarted: the new process proves the holder dead (this host, pid gone), takes the lease over and runs
/// its start-up sync at once instead of waiting out the lease; the killed run shows as `abandoned` in
/// `/api/runs`.
async fn restarted_daemon_takes_over_the_dead_daemons_lease(store_url: &str) {
    let fake = FakeMeta::start(META_TOKEN, "act_1234567890").await.unwrap();
    let env = std::sync::Arc::new(Env::new(&format!(
        r#"
[store]
url = "{store_url}"
heartbeat_secs = 1

[schedule]
recompute_sync = "0 0 0 1 1 *"
run_on_start = true
lease_secs = 3600

[admin]
bind = "127.0.0.1:0"

[[segment]]
name = "buyers"
rule = "orders.count() >= 1"

[destinations.meta_ads]
kind = "meta"
base_url = "{}"
ad_account_id = "act_1234567890"
access_token = {{ env = "META_ACCESS_TOKEN" }}
batch_size = 20

[[sync]]
segment = "buyers"
destination = "meta_ads"
audience_name = "Buyers"
"#,
        fake.base_url()
    )));
    const N: usize = 200;
    import_shop(&env, N).await;
    fake.faults().set_delay(Duration::from_millis(300));
    let vars = [("META_ACCESS_TOKEN", META_TOKEN)];

    let first = start(&env, "killed", &vars).await;
    let first_pid = first.pid();
    poll("a few batches acknowledged", || {
        let n = fake.users_calls();
        async move { (n >= 3).then_some(()) }
    })
    .await;
    drop(first); // kill -9, reaped
    let store = store_of(store_url, env.dir.path()).await;
    let leases = store.leases().await.unwrap();
    let lease = leases.iter().find(|l| l.job == "recompute_sync").unwrap();
    assert!(
        lease.holder.contains(&format!(":{first_pid}:"))
            && lease.expires_at > chrono::Utc::now() + chrono::Duration::minutes(50),
        "the killed daemon's lease should still be valid for most of an hour: {lease:?}"
    );

    fake.faults().set_delay(Duration::ZERO);
    let second = start(&env, "restarted", &vars).await;
    poll("the restarted daemon's start-up sync completes", || {
        let store = store.clone();
        async move {
            let runs = store.recent_runs(1, Some(Job::Sync)).await.ok()?;
            (runs.first()?.outcome.as_str() == "success").then_some(())
        }
    })
    .await;
    let id = fake.audience_id("Buyers").unwrap();
    assert_eq!(fake.members(&id).len(), N);
    assert_eq!(ledger_count(&store).await, N as i64);

    let (status, body) = get(&second.url("/api/runs?job=sync"), None).await;
    assert_eq!(status, 200, "{body}");
    let runs: serde_json::Value = serde_json::from_str(&body).unwrap();
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs[0]["outcome"], "success", "{runs:?}");
    assert_eq!(runs[1]["outcome"], "abandoned", "{runs:?}");
    assert!(
        runs[1]["error"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("pid {first_pid} on")),
        "{runs:?}"
    );
    second.sigterm();
    let (status, log) = second.exit().await;
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains("lease of a dead process on this host released for takeover"),
        "{log}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_daemon_takes_over_the_dead_daemons_lease_sqlite() {
    restarted_daemon_takes_over_the_dead_daemons_lease("sqlite://{DIR}/shop.db").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_daemon_takes_over_the_dead_daemons_lease_postgres() {
    let Some(url) = campaignd_store::testkit::fresh_pg_database().await.unwrap() else {
        eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
        return;
    };
    restarted_daemon_takes_over_the_dead_daemons_lease(&url).await;
}

// ---------------------------------------------------------------------------------------------

/// Raises this test process's open-file limit so it can hold `want` sockets; returns how many it may.
fn allow_sockets(want: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on this process with a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        let target = ((want + 200) as libc::rlim_t).min(lim.rlim_max);
        if lim.rlim_cur < target {
            lim.rlim_cur = target;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    (lim.rlim_cur as usize).saturating_sub(200).min(want)
}

/// Sends `request` on a fresh connection and returns what the server answers until it closes.
async fn raw_exchange(addr: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(LIMIT, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_port_survives_half_open_connections_and_refuses_large_bodies() {
    let env = std::sync::Arc::new(Env::new(
        r#"
[store]
url = "sqlite://{DIR}/shop.db"

[schedule]
run_on_start = false

[admin]
bind = "127.0.0.1:0"
header_read_timeout_secs = 3
max_connections = 64
max_body_bytes = 1024

[[segment]]
name = "buyers"
rule = "orders.count() >= 1"
"#,
    ));
    import_shop(&env, 5).await;
    let daemon = start(&env, "admin-limits", &[]).await;
    let addr = daemon.addr.clone().unwrap();

    // 1,100 clients (as many as this process may open) that start a request and never finish its headers.
    let n = allow_sockets(1100);
    assert!(n >= 200, "cannot open enough sockets for the test ({n})");
    let mut half_open = Vec::new();
    for _ in 0..n {
        use tokio::io::AsyncWriteExt;
        match tokio::net::TcpStream::connect(&addr).await {
            Ok(mut s) => {
                let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
                half_open.push(s);
            }
            Err(e) => panic!("connect #{}: {e}", half_open.len()),
        }
    }
    // /healthz still answers, and the daemon holds no more sockets than its cap.
    let (status, body) = get(&daemon.url("/healthz"), None).await;
    assert_eq!(status, 200, "{body}");
    let fds = std::fs::read_dir(format!("/proc/{}/fd", daemon.pid()))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        fds < 64 + 64,
        "the daemon holds {fds} descriptors with [admin] max_connections = 64"
    );
    drop(half_open);

    // A client that never finishes its headers is disconnected by the header-read timeout: the server
    // closes the connection (without answering 200) well within LIMIT, instead of holding it open.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let closed = tokio::time::timeout(LIMIT, s.read_to_end(&mut out)).await;
        let reply = String::from_utf8_lossy(&out);
        assert!(
            closed.is_ok(),
            "the server kept a request without complete headers open; it sent {reply:?}"
        );
        assert!(
            !reply.contains("200 OK"),
            "a request without complete headers was answered: {reply}"
        );
    }

    // Bodies over the limit are refused, declared or chunked.
    let mut declared =
        b"GET /api/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".to_vec();
    declared.extend(std::iter::repeat_n(b'a', 512));
    let reply = raw_exchange(&addr, &declared).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    let mut chunked =
        b"GET /api/runs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    for _ in 0..4 {
        chunked.extend(b"400\r\n");
        chunked.extend(std::iter::repeat_n(b'b', 0x400));
        chunked.extend(b"\r\n");
    }
    chunked.extend(b"0\r\n\r\n");
    let reply = raw_exchange(&addr, &chunked).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    // A small body is fine.
    let small =
        b"GET /api/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let reply = raw_exchange(&addr, small).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    // `limit` is capped.
    let (status, body) = get(&daemon.url("/api/runs?limit=1000000"), None).await;
    assert_eq!(status, 200, "{body}");
    let runs: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(runs["limit"], 1000, "{body}");

    daemon.sigterm();
    let (status, log) = daemon.exit().await;
    assert_eq!(status.code(), Some(0), "{log}");
}
