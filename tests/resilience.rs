//! End-to-end: a partitioned Postgres never hangs a sync (issue 12 item 6). A TCP proxy on loopback sits
//! between campaignd and the test server; mid-sync it stops forwarding in both directions without closing
//! anything — what a partition, a hung failover or a stuck connection pooler looks like to the client
//! (the proxy's kernel keeps acknowledging, so no TCP timer ever fires). The sync must end with exit 1
//! and a clear error within the configured `[store]` bounds, its run must be shown `abandoned` afterwards,
//! and the next sync through a healthy proxy must converge: the platform and the ledger equal the
//! segment.
//!
//! Nothing asserts wall-clock durations: waits poll for a condition with a generous limit.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use campaignd_core::identifiers::sha256_hex;
use campaignd_fakes::FakeMeta;
use campaignd_store::runs::Job;
use campaignd_store::Store;
use common::{blocking, Env};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(120);
const TOKEN: &str = "meta-partition-token";
const N: usize = 300;

/// A loopback TCP proxy that can be told to stop forwarding: connections it is carrying freeze (bytes
/// are swallowed, nothing is closed) and new ones are accepted and frozen at once. Healing lets new
/// connections through again; frozen ones stay frozen, as after a real partition.
struct Proxy {
    addr: SocketAddr,
    blackholed: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let blackholed = Arc::new(AtomicBool::new(false));
        let flag = blackholed.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let flag = flag.clone();
                tokio::spawn(async move {
                    if flag.load(Ordering::SeqCst) {
                        let _held = client;
                        std::future::pending::<()>().await;
                        return;
                    }
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(pump(cr, sw, flag.clone()));
                    tokio::spawn(pump(sr, cw, flag));
                });
            }
        });
        Proxy {
            addr,
            blackholed,
            task,
        }
    }

    fn blackhole(&self, on: bool) {
        self.blackholed.store(on, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to` until EOF; once the proxy is blackholed, swallows what arrives and holds both
/// sockets open forever.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    blackholed: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if blackholed.load(Ordering::SeqCst) {
            let _held = (from, to);
            std::future::pending::<()>().await;
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The Postgres server's address and the URL with the proxy in its place.
fn via_proxy(url: &str, proxy: SocketAddr) -> (SocketAddr, String) {
    let scheme_end = url.find("://").unwrap() + 3;
    let rest = &url[scheme_end..];
    let host_start = rest.find('@').map_or(0, |a| a + 1);
    let host_end = rest[host_start..]
        .find('/')
        .map_or(rest.len(), |s| host_start + s);
    let hostport = &rest[host_start..host_end];
    let with_port = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:5432")
    };
    let upstream: SocketAddr = with_port.replace("localhost", "127.0.0.1").parse().unwrap();
    let proxied = format!(
        "{}{}{proxy}{}",
        &url[..scheme_end],
        &rest[..host_start],
        &rest[host_end..]
    );
    (upstream, proxied)
}

fn shop(n: usize) -> (String, String) {
    let mut customers = String::from("id,email,country,consent_ads,consent_email,created_at\n");
    let mut orders = String::from("id,customer_id,placed_at,total\n");
    for i in 1..=n {
        customers.push_str(&format!(
            "c{i:04},user{i}@example.com,US,true,true,2024-01-01T00:00:00Z\n"
        ));
        orders.push_str(&format!("o{i:04},c{i:04},2024-03-01T00:00:00Z,10\n"));
    }
    (customers, orders)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_postgres_fails_the_sync_within_its_bounds_and_the_next_sync_converges() {
    let Some(url) = campaignd_store::testkit::fresh_pg_database().await.unwrap() else {
        eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
        return;
    };
    let fake = FakeMeta::start(TOKEN, "act_1234567890").await.unwrap();
    let (upstream, _) = via_proxy(&url, "127.0.0.1:1".parse().unwrap());
    let proxy = Proxy::start(upstream).await;
    let (_, proxied) = via_proxy(&url, proxy.addr);
    let env = Arc::new(Env::new(&format!(
        r#"
[store]
url = "{proxied}"
statement_timeout_secs = 2
idle_in_transaction_timeout_secs = 2
operation_timeout_secs = 4
acquire_timeout_secs = 3

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
    let (customers, orders) = shop(N);
    env.write("customers.csv", &customers);
    env.write("orders.csv", &orders);
    for args in [
        &["import", "customers", "customers.csv"][..],
        &["import", "orders", "orders.csv"][..],
        &["segments", "recompute"][..],
    ] {
        let env = env.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        blocking(move || env.cmd().args(&args).assert().success()).await;
    }

    // Mid-sync, the database goes silent.
    fake.faults().set_delay(Duration::from_millis(300));
    let stderr_path = env.dir.path().join("partitioned.err");
    let mut child = env
        .std_cmd()
        .env("META_ACCESS_TOKEN", TOKEN)
        .arg("sync")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while fake.users_calls() < 3 {
        assert!(started.elapsed() < LIMIT, "the sync never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.blackhole(true);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            panic!(
                "the sync hung on the partitioned database; stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("unreachable or partitioned") && stderr.contains("[store]"),
        "the error does not say what happened: {stderr}"
    );
    let id = fake.audience_id("Buyers").expect("audience created");
    let partial = fake.members(&id).len();
    assert!(partial < N, "the sync finished before the partition");

    // The network heals: the next sync converges, and the partitioned run is shown as abandoned.
    proxy.blackhole(false);
    fake.faults().set_delay(Duration::ZERO);
    let e = env.clone();
    blocking(move || {
        e.cmd()
            .env("META_ACCESS_TOKEN", TOKEN)
            .arg("sync")
            .assert()
            .success()
    })
    .await;
    let want: std::collections::BTreeSet<String> = (1..=N)
        .map(|i| sha256_hex(&format!("user{i}@example.com")))
        .collect();
    assert_eq!(
        fake.members(&id),
        want,
        "the audience does not equal the segment"
    );
    let direct = Store::connect(&url).await.unwrap();
    let ledger: i64 = match direct.pool() {
        campaignd_store::Pool::Postgres(p) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM sync_ledger")
                .fetch_one(p)
                .await
                .unwrap()
        }
        campaignd_store::Pool::Sqlite(_) => unreachable!(),
    };
    assert_eq!(ledger, N as i64, "the ledger does not equal the segment");
    let syncs = direct.recent_runs(10, Some(Job::Sync)).await.unwrap();
    assert_eq!(syncs[0].outcome.as_str(), "success", "{syncs:?}");
    assert_eq!(syncs[1].outcome.as_str(), "abandoned", "{syncs:?}");
    direct.close().await;
}
