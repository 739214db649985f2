//! End-to-end tests of the real `campaignd` binary on a real SQLite file (and Postgres when
//! `CAMPAIGND_TEST_PG_URL` is set): migrate, import, recompute, list, show, members, and the exit codes
//! and messages of bad input.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

const SEGMENTS: &str = r#"
[[segment]]
name = "repeat"
template = "repeat_customer"

[[segment]]
name = "big_spenders"
rule = "orders.sum() >= 100"

[[segment]]
name = "repeat_small"
rule = 'in_segment("repeat")'
exclude = ["big_spenders"]

[[segment]]
name = "never_ordered"
sql = "SELECT id AS customer_id FROM customers WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = customers.id)"
"#;

fn env_with(store_url: Option<String>, extra: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url =
        store_url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("shop.db").display()));
    let config = dir.path().join("campaignd.toml");
    std::fs::write(
        &config,
        format!("[store]\nurl = \"{url}\"\n{SEGMENTS}{extra}"),
    )
    .unwrap();
    Env { dir, config }
}

impl Env {
    fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("campaignd").unwrap();
        cmd.arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path());
        cmd
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

const CUSTOMERS: &str = "id,email,phone,country,created_at,consent_ads,consent_email\n\
c1,ann@example.com,+15551230001,US,2024-01-01T00:00:00Z,true,yes\n\
c2,bob@example.com,,us,2024-01-02T00:00:00Z,0,1\n\
c3,not-an-email,,DE,2024-01-03T00:00:00Z,no,no\n\
c4,dan@example.com,,CA,2024-01-04T00:00:00Z,1,0\n";

const ORDERS: &str = "{\"id\":\"o1\",\"customer_id\":\"c1\",\"placed_at\":\"2024-02-01T10:00:00Z\",\"total\":60.5}\n\
{\"id\":\"o2\",\"customer_id\":\"c1\",\"placed_at\":\"2024-03-01T10:00:00Z\",\"total\":70}\n\
{\"id\":\"o3\",\"customer_id\":\"c2\",\"placed_at\":\"2024-02-05T10:00:00Z\",\"total\":20}\n\
{\"id\":\"o4\",\"customer_id\":\"c2\",\"placed_at\":\"2024-02-06T10:00:00Z\",\"total\":25,\"discount_code\":\"SAVE10\"}\n\
{\"id\":\"o5\",\"customer_id\":\"c4\",\"placed_at\":\"2024-02-07T10:00:00Z\",\"total\":500}\n";

fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .map(str::to_string)
        .collect()
}

fn full_flow(env: &Env) {
    env.cmd()
        .arg("migrate")
        .assert()
        .success()
        .stdout(predicate::str::contains("migrations applied"));
    let customers = env.write("customers.csv", CUSTOMERS);
    let orders = env.write("orders.jsonl", ORDERS);
    env.cmd()
        .args(["import", "customers"])
        .arg(&customers)
        .assert()
        .success()
        .stdout(predicate::str::contains("4 rows imported, 0 rejected"));
    env.cmd()
        .args(["import", "orders"])
        .arg(&orders)
        .assert()
        .success()
        .stdout(predicate::str::contains("5 rows imported"));
    env.cmd()
        .args(["segments", "recompute", "--as-of", "2024-06-01T00:00:00Z"])
        .assert()
        .success()
        .stdout(predicate::str::contains("run "));
    let members = |name: &str| -> Vec<String> {
        let out = env
            .cmd()
            .args(["segments", "members", name])
            .assert()
            .success();
        lines(&out.get_output().stdout)
    };
    assert_eq!(members("repeat"), vec!["c1", "c2"]);
    assert_eq!(members("big_spenders"), vec!["c1", "c4"]);
    assert_eq!(members("repeat_small"), vec!["c2"]);
    assert_eq!(members("never_ordered"), vec!["c3"]);

    let csv = env
        .cmd()
        .args(["segments", "members", "repeat", "--format", "csv"])
        .assert()
        .success();
    let csv = lines(&csv.get_output().stdout);
    assert_eq!(csv[0], "customer_id,email,phone,joined_at");
    assert!(
        csv[1].starts_with("c1,ann@example.com,+15551230001,2024-06-01T00:00:00"),
        "{}",
        csv[1]
    );

    env.cmd()
        .args(["segments", "list"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"repeat\s+2\s+2\s+0").unwrap());
    env.cmd()
        .args(["segments", "show", "big_spenders"])
        .assert()
        .success()
        .stdout(predicate::str::contains("orders.sum() >= 100"))
        .stdout(predicate::str::contains("SELECT c.id AS customer_id"))
        .stdout(predicate::str::contains("size:        2"));

    // A later recompute after new data records who joined and who left.
    let more = env.write(
        "orders2.csv",
        "id,customer_id,placed_at,total\no6,c4,2024-06-10T00:00:00Z,5\n",
    );
    env.cmd()
        .args(["import", "orders"])
        .arg(&more)
        .assert()
        .success();
    env.cmd()
        .args(["segments", "recompute", "--as-of", "2024-07-01T00:00:00Z"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"repeat\s+3\s+1\s+0").unwrap());
    env.cmd()
        .args(["runs", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"job\": \"recompute\""));
    // One job's runs only; a job name nothing records is bad usage, not an empty list.
    env.cmd()
        .args(["runs", "--json", "--job", "sync"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"job\": \"recompute\"").not());
    env.cmd()
        .args(["runs", "--job", "syncs"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("syncs"));
}

#[test]
fn sqlite_end_to_end() {
    let env = env_with(None, "");
    full_flow(&env);
    assert!(env.dir.path().join("shop.db").exists());
}

#[test]
fn postgres_end_to_end() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = rt
        .block_on(campaignd_store::testkit::fresh_pg_database())
        .unwrap()
    else {
        eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping");
        return;
    };
    full_flow(&env_with(Some(url), ""));
}

#[test]
fn bad_rule_exits_2_with_line_and_column() {
    let env = env_with(None, "\n[[segment]]\nname = \"broken\"\nrule = \"orders.count() >= 1 and\\n  orders.sum(7d) foo 3\"\n");
    env.cmd()
        .args(["segments", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "segment \"broken\" (rule): line 2, column 18",
        ));
}

#[test]
fn type_error_exits_2_before_any_sql() {
    let env = env_with(
        None,
        "\n[[segment]]\nname = \"typed\"\nrule = 'orders.count() == \"three\"'\n",
    );
    env.cmd()
        .args(["segments", "recompute"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "segment \"typed\" (rule): line 1, column",
        ));
    assert!(
        !env.dir.path().join("shop.db").exists(),
        "nothing may be written for a bad config"
    );
}

/// A segment whose rule is `rule` (a TOML literal string, so no escaping).
fn rule_segment(name: &str, rule: &str) -> String {
    format!("\n[[segment]]\nname = \"{name}\"\nrule = '''\n{rule}'''\n")
}

/// Rules beyond the size or depth limit are refused at their line and column with exit 2 by
/// every command (they used to overflow the stack and abort with 134), and nothing is written.
#[test]
fn oversized_and_overnested_rules_exit_2_with_line_and_column() {
    let chain = vec!["orders.count() >= 1"; 25_000].join("\n  and ");
    let huge = env_with(None, &rule_segment("huge", &chain));
    for command in [
        &["segments", "list"][..],
        &["segments", "recompute"],
        &["run"],
    ] {
        huge.cmd()
            .args(command)
            .timeout(std::time::Duration::from_secs(60))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "segment \"huge\" (rule): line 3334, column 25: rule is too large (more than 10000",
            ));
    }
    let deep = format!("{}true{}", "(".repeat(30_000), ")".repeat(30_000));
    let deep = env_with(
        None,
        &rule_segment("deep", &format!("rfm.r >= 1 and\n  {deep}")),
    );
    deep.cmd()
        .args(["segments", "recompute"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
        "segment \"deep\" (rule): line 2, column 67: rule is nested too deeply (at most 64 levels)",
    ));
    for env in [huge, deep] {
        assert!(!env.dir.path().join("shop.db").exists());
    }
}

/// A 1,000-term chain passed validation and then failed on SQLite with "Expression tree is too
/// large"; it now recomputes.
#[test]
fn a_thousand_term_rule_recomputes_on_sqlite() {
    let mut terms: Vec<String> = (0..999)
        .map(|i| format!("customer.country == \"X{i}\""))
        .collect();
    terms.push("customer.country == \"CA\"".into());
    let env = env_with(None, &rule_segment("wide", &terms.join("\n  or ")));
    let customers = env.write("customers.csv", CUSTOMERS);
    env.cmd()
        .args(["import", "customers"])
        .arg(&customers)
        .assert()
        .success();
    env.cmd()
        .args(["segments", "recompute", "--as-of", "2024-06-01T00:00:00Z"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"wide\s+1\s+1\s+0").unwrap());
    let out = env
        .cmd()
        .args(["segments", "members", "wide"])
        .assert()
        .success();
    assert_eq!(lines(&out.get_output().stdout), vec!["c4"]);
}

/// `segments show` prints the canonical form, and that text, configured as the rule, is the same
/// rule: it shows the same canonical form again.
#[test]
fn segments_show_canonical_form_parses_back_to_the_same_rule() {
    // A combining accent as is, a tab and an escape character as rule escapes (TOML literal
    // strings take no control characters), an instant in year 10000 in UTC, a float of 1e16.
    let rule = "# aged 30 to 50, or big spenders\ncustomer.age >= 30 and (customer.age <= 50)\n  or orders.sum(1y) > 10000000000000000.0\n  or customer.city == 'Montre\u{301}al\\t\\u{1b}'\n  or customer.created_at < 9999-12-31T23:30:00-05:00";
    let canonical = "canonical:   customer.age >= 30 and customer.age <= 50 or orders.sum(1y) > 10000000000000000.0 or customer.city == \"Montre\u{301}al\\t\\u{1b}\" or customer.created_at < 9999-12-31T04:31:00-23:59";
    let show = |env: &Env| -> String {
        let out = env
            .cmd()
            .args(["segments", "show", "aged"])
            .assert()
            .success();
        let out = lines(&out.get_output().stdout);
        out.into_iter()
            .find(|l| l.starts_with("canonical:"))
            .expect("a canonical line")
    };
    let first = show(&env_with(None, &rule_segment("aged", rule)));
    assert_eq!(first, canonical);
    let again = env_with(
        None,
        &rule_segment("aged", first.trim_start_matches("canonical:").trim()),
    );
    assert_eq!(show(&again), canonical);
}

#[test]
fn unknown_config_key_is_named() {
    let env = env_with(
        None,
        "\n[[segment]]\nname = \"typo\"\nrul = \"orders.count() >= 1\"\n",
    );
    env.cmd()
        .args(["segments", "list"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("segment[4]")
                .and(predicate::str::contains("unknown field `rul`")),
        );
}

#[test]
fn a_misspelt_destination_key_fails_every_command_at_load() {
    let env = env_with(
        None,
        "\n[destinations.fb]\nkind = \"meta\"\nad_account_id = \"1\"\naccess_token = { env = \"META_TOKEN\" }\nrequest_timout_ms = 5000\n",
    );
    env.cmd()
        .args(["segments", "list"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("destinations.fb")
                .and(predicate::str::contains("request_timout_ms")),
        );
    let env = env_with(None, "\n[destinations.fb]\nkind = \"myspace\"\n");
    env.cmd()
        .args(["segments", "list"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("destinations.fb")
                .and(predicate::str::contains("myspace"))
                .and(predicate::str::contains("sandbox")),
        );
}

#[test]
fn env_var_overrides_reach_destination_keys() {
    let env = env_with(
        None,
        "\n[destinations.out]\nkind = \"file\"\npath = \"exports\"\nformat = \"csv\"\n",
    );
    env.cmd().args(["segments", "list"]).assert().success();
    env.cmd()
        .env("CAMPAIGND__DESTINATIONS__OUT__FORMAT", "xlsx")
        .args(["segments", "list"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("destinations.out")
                .and(predicate::str::contains("format"))
                .and(predicate::str::contains("xlsx")),
        );
    // A numeric-looking value for a string key (an ad account id) is that string, as for every other
    // settings key; a value a number key cannot take still names the key.
    let env = env_with(
        None,
        "\n[destinations.fb]\nkind = \"meta\"\nad_account_id = \"1\"\naccess_token = { env = \"META_TOKEN\" }\n",
    );
    env.cmd()
        .env("CAMPAIGND__DESTINATIONS__FB__AD_ACCOUNT_ID", "123")
        .env("CAMPAIGND__DESTINATIONS__FB__BATCH_SIZE", "500")
        .args(["segments", "list"])
        .assert()
        .success();
    env.cmd()
        .env("CAMPAIGND__DESTINATIONS__FB__BATCH_SIZE", "lots")
        .args(["segments", "list"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("destinations.fb").and(predicate::str::contains("batch_size")),
        );
}

#[test]
fn dependency_cycle_is_named() {
    let env = env_with(None, "\n[[segment]]\nname = \"a\"\nrule = 'in_segment(\"b\")'\n[[segment]]\nname = \"b\"\nrule = 'in_segment(\"a\")'\n");
    env.cmd()
        .args(["segments", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cycle"));
}

#[test]
fn env_var_overrides_store_url() {
    let env = env_with(None, "");
    let other = env.dir.path().join("other.db");
    env.cmd()
        .env(
            "CAMPAIGND__STORE__URL",
            format!("sqlite://{}", other.display()),
        )
        .arg("migrate")
        .assert()
        .success();
    assert!(other.exists());
    assert!(!env.dir.path().join("shop.db").exists());
}

#[test]
fn bad_import_rows_are_reported_and_strict_writes_nothing() {
    let env = env_with(None, "");
    let customers = env.write("customers.csv", CUSTOMERS);
    env.cmd()
        .args(["import", "customers"])
        .arg(&customers)
        .assert()
        .success();
    let bad = env.write(
        "orders.csv",
        "id,customer_id,placed_at,total\no1,c1,2024-02-01T10:00:00Z,10\no2,c9,2024-02-01T10:00:00Z,10\no3,c1,yesterday,10\n",
    );
    env.cmd()
        .args(["import", "orders", "--strict"])
        .arg(&bad)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("orders.csv:3:"))
        .stderr(predicate::str::contains("orders.csv:4:"));
    env.cmd()
        .args(["segments", "recompute", "--as-of", "2024-06-01T00:00:00Z"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"big_spenders\s+0\s").unwrap());
    env.cmd()
        .args(["import", "orders"])
        .arg(&bad)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("1 rows imported, 2 rejected"));
}

#[test]
fn demo_prints_segment_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::cargo_bin("campaignd")
        .unwrap()
        .current_dir(dir.path())
        .arg("--config")
        .arg(root.join("config/default.toml"))
        .args([
            "demo",
            "--customers",
            "600",
            "--as-of",
            "2025-06-01T00:00:00Z",
            "--db",
        ])
        .arg(&db)
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"cart_abandoners\s+[1-9]\d*\s").unwrap())
        .stdout(predicate::str::is_match(r"repeat_customers\s+[1-9]\d*\s").unwrap())
        .stdout(predicate::str::is_match(r"cart_abandoners\s+sandbox\s+\d+\s+\d+").unwrap());
    assert!(
        dir.path().join("sandbox").exists(),
        "the sandbox keeps its audiences on disk"
    );
    assert!(
        dir.path().join("exports/repeat_customers").exists(),
        "the file destination wrote its snapshot"
    );
}

/// Every shipped example config parses, builds its destination and plans a dry run (which contacts no
/// platform), so the examples can't rot.
#[test]
fn every_example_config_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let examples = root.join("config/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        seen += 1;
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::cargo_bin("campaignd").unwrap();
        cmd.current_dir(dir.path())
            .arg("--config")
            .arg(&path)
            .args(["sync", "--dry-run"]);
        for var in [
            "META_ACCESS_TOKEN",
            "GOOGLE_ADS_DEVELOPER_TOKEN",
            "GOOGLE_ADS_CLIENT_ID",
            "GOOGLE_ADS_CLIENT_SECRET",
            "GOOGLE_ADS_REFRESH_TOKEN",
            "TIKTOK_ACCESS_TOKEN",
            "LINKEDIN_CLIENT_ID",
            "LINKEDIN_CLIENT_SECRET",
            "LINKEDIN_REFRESH_TOKEN",
            "MAILCHIMP_API_KEY",
            "KLAVIYO_PRIVATE_KEY",
            "SENDGRID_API_KEY",
            "CAMPAIGND_WEBHOOK_SECRET",
        ] {
            cmd.env(var, "dummy-secret-us21");
        }
        cmd.assert()
            .success()
            .stdout(predicate::str::contains("cart_abandoners"));
    }
    assert_eq!(seen, 10, "one example per destination kind");
}

#[test]
fn a_missing_secret_is_a_config_error_naming_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("campaignd")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("META_ACCESS_TOKEN")
        .arg("--config")
        .arg(root.join("config/examples/meta.toml"))
        .args(["sync", "--dry-run"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("META_ACCESS_TOKEN"));
}

/// Stores for the backend-generic CLI tests below: SQLite always, Postgres when configured.
fn store_urls() -> Vec<Option<String>> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut urls = vec![None];
    if let Some(url) = rt
        .block_on(campaignd_store::testkit::fresh_pg_database())
        .unwrap()
    {
        urls.push(Some(url));
    }
    urls
}

#[test]
fn import_exits_1_when_the_database_fails_the_write() {
    for url in store_urls() {
        let env = env_with(url.clone(), "");
        env.cmd().arg("migrate").assert().success();
        // The database refuses every write to customers, as a full disk or a lost lock would.
        let refuse = match &url {
            None => vec![
                "CREATE TRIGGER refuse BEFORE INSERT ON customers BEGIN \
                 SELECT RAISE(ABORT, 'database or disk is full'); END",
            ],
            Some(_) => vec![
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$",
                "CREATE TRIGGER refuse BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION refuse()",
            ],
        };
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let db = env.dir.path().join("shop.db");
            let store_url = url
                .clone()
                .unwrap_or_else(|| format!("sqlite://{}", db.display()));
            let store = campaignd_store::Store::connect(&store_url).await.unwrap();
            for sql in refuse {
                match store.pool() {
                    campaignd_store::Pool::Sqlite(p) => {
                        sqlx::query(sql).execute(p).await.unwrap();
                    }
                    campaignd_store::Pool::Postgres(p) => {
                        sqlx::query(sql).execute(p).await.unwrap();
                    }
                }
            }
            store.close().await;
        });
        let customers = env.write("customers.csv", CUSTOMERS);
        env.cmd()
            .args(["import", "customers"])
            .arg(&customers)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("database error"));
        // A file that cannot be imported as given is still bad usage.
        let wrong = env.write("customers.csv", "id,shoe_size\nc1,42\n");
        env.cmd()
            .args(["import", "customers"])
            .arg(&wrong)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("unknown column(s) shoe_size"));
    }
}

#[test]
fn sql_segment_ghosts_are_left_out_and_reported() {
    for url in store_urls() {
        let env = env_with(
            url,
            "\n[[segment]]\nname = \"ghosts\"\nsql = \"SELECT id AS customer_id FROM customers UNION ALL SELECT 'ghost' AS customer_id\"\n",
        );
        let customers = env.write("customers.csv", CUSTOMERS);
        env.cmd()
            .args(["import", "customers"])
            .arg(&customers)
            .assert()
            .success();
        env.cmd()
            .args(["segments", "recompute", "--segment", "ghosts"])
            .assert()
            .success()
            .stdout(
                predicate::str::is_match(r"ghosts\s+4\s+4\s+0  \(1 ids returned by its SQL are not customers, left out\)")
                    .unwrap(),
            )
            .stderr(predicate::str::contains("not customers"));
        env.cmd()
            .args(["segments", "list"])
            .assert()
            .success()
            .stdout(predicate::str::contains(
                "(1 ids returned by its SQL are not customers, left out)",
            ));
        env.cmd()
            .args(["segments", "show", "ghosts"])
            .assert()
            .success()
            .stdout(predicate::str::contains("size:        4"))
            .stdout(predicate::str::contains(
                "dropped:     1 ids returned by its SQL are not customers, left out",
            ));
    }
}

#[test]
fn long_work_logs_progress_when_stderr_is_not_a_terminal() {
    let env = env_with(None, "");
    let mut text = String::from("id,email\n");
    for i in 0..12_000 {
        text.push_str(&format!("c{i},m{i}@example.com\n"));
    }
    let customers = env.write("many.csv", &text);
    env.cmd()
        .env("CAMPAIGND_PROGRESS_SECS", "0")
        .args(["import", "customers"])
        .arg(&customers)
        .assert()
        .success()
        .stderr(
            predicate::str::is_match(r"import customers .*many\.csv: \d+/\d+ bytes \(\d+ %\)")
                .unwrap(),
        )
        .stderr(predicate::str::contains("finished in"));
    env.cmd()
        .env("CAMPAIGND_PROGRESS_SECS", "0")
        .args(["segments", "recompute"])
        .assert()
        .success()
        .stderr(predicate::str::contains("recompute: 4/4 segments (100 %)"));
    // Short work within the default interval prints no progress at all.
    env.cmd()
        .args(["segments", "recompute"])
        .assert()
        .success()
        .stderr(predicate::str::contains("campaignd::progress").not());
}

/// Issue 12 item 11: two `campaignd` processes recomputing on one SQLite file at the same time. A
/// deferred transaction that reads and then writes failed at once with SQLITE_BUSY_SNAPSHOT when the
/// other process had committed in between; write transactions now take the lock first and wait.
#[test]
fn two_processes_recompute_one_sqlite_file_without_busy_errors() {
    let env = env_with(None, "");
    let db = env.dir.path().join("shop.db");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::cargo_bin("campaignd")
        .unwrap()
        .current_dir(&root)
        .args(["demo", "--customers", "3000", "--db"])
        .arg(&db)
        .assert()
        .success();
    let config = env.dir.path().join("templates.toml");
    let mut text = format!("[store]\nurl = \"sqlite://{}\"\n", db.display());
    for t in campaignd_core::rules::templates::list() {
        text.push_str(&format!(
            "\n[[segment]]\nname = \"t_{0}\"\ntemplate = \"{0}\"\n",
            t.name
        ));
    }
    std::fs::write(&config, text).unwrap();
    let exe = assert_cmd::cargo::cargo_bin("campaignd");
    for round in 0..4 {
        let spawn = |day: u32| {
            std::process::Command::new(&exe)
                .arg("--config")
                .arg(&config)
                .args(["segments", "recompute", "--as-of"])
                .arg(format!("2025-03-{:02}T00:00:00Z", day))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(1 + round), spawn(10 + round));
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
