//! Issue 12 items 3, 4 and 12 through the real binary: the HTTP kit follows no redirect (a 307 or 302 to
//! another host fails the sync and that host receives nothing), no secret leaves in any derived form
//! when a server echoes our requests back (one test per destination kind, token endpoints included), and
//! a hung platform or an endless reply body ends the sync with a clear error instead of hanging it.

mod common;

use std::sync::Arc;

use campaignd_fakes::{
    google_ads::GoogleFakeConfig, FakeGoogleAds, FakeLinkedIn, FakeMeta, FakeServer,
};
use common::{blocking, Env};

/// Customers in the segment: above every platform's minimum audience size (Google and TikTok: 1,000).
const N: usize = 1_200;

/// A secret whose raw, URL-encoded, JSON-escaped and base64 forms all differ.
fn nasty(tag: &str) -> String {
    format!("{tag}-S3cr/et+v=al&ue\"q\\z")
}

fn customers_csv() -> String {
    let mut s = String::from("id,email,phone,country,consent_ads,consent_email,created_at\n");
    for i in 1..=N {
        s.push_str(&format!(
            "c{i:05},user{i}@example.com,+1415555{:04},US,true,true,2024-01-01T00:00:00Z\n",
            i % 10_000
        ));
    }
    s
}

fn config(destination: &str) -> String {
    format!(
        r#"
[store]
url = "sqlite://{{DIR}}/shop.db"

[[segment]]
name = "everyone"
rule = 'customer.country == "US"'

[destinations.dest]
{destination}
retry = {{ max_attempts = 2, initial_backoff_ms = 5, max_backoff_ms = 10, max_total_ms = 20000 }}

[[sync]]
segment = "everyone"
destination = "dest"
mode = "mirror"
audience_name = "Everyone"
"#
    )
}

/// Environment variables as owned pairs, to move into a blocking task.
fn owned(env_vars: &[(&str, String)]) -> Vec<(String, String)> {
    env_vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// A workspace with the customers imported and the segment computed.
async fn workspace(destination: &str, env_vars: &[(&str, String)]) -> Arc<Env> {
    let env = Arc::new(Env::new(&config(destination)));
    env.write("customers.csv", &customers_csv());
    for args in [
        &["import", "customers", "customers.csv"][..],
        &["segments", "recompute", "--as-of", "2024-06-01T00:00:00Z"][..],
    ] {
        let (env, vars, args) = (env.clone(), owned(env_vars), args.to_vec());
        blocking(move || {
            let mut cmd = env.cmd();
            for (k, v) in &vars {
                cmd.env(k, v);
            }
            cmd.args(&args).assert().success();
        })
        .await;
    }
    env
}

/// What one `campaignd sync` left behind: its exit code and every text a user or attacker could read
/// (stdout, stderr at debug, `runs`, `runs --json`, the database files' bytes).
struct Traces {
    code: Option<i32>,
    output: String,
    database: Vec<u8>,
}

async fn sync(env: &Arc<Env>, env_vars: &[(&str, String)]) -> Traces {
    let (env, vars) = (env.clone(), owned(env_vars));
    blocking(move || {
        let run = |args: &[&str]| {
            let mut cmd = env.std_cmd();
            cmd.env("CAMPAIGND_LOG", "debug");
            for (k, v) in &vars {
                cmd.env(k, v);
            }
            cmd.args(args).output().expect("run campaignd")
        };
        let out = run(&["sync"]);
        let mut output = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for args in [&["runs"][..], &["runs", "--json"][..]] {
            let o = run(args);
            output.push_str(&String::from_utf8_lossy(&o.stdout));
            output.push_str(&String::from_utf8_lossy(&o.stderr));
        }
        let mut database = Vec::new();
        for entry in std::fs::read_dir(env.dir.path()).expect("workspace") {
            let path = entry.expect("entry").path();
            let name = path.file_name().map(|n| n.to_string_lossy().to_string());
            if name.is_some_and(|n| n.starts_with("shop.db")) {
                database.extend(std::fs::read(&path).expect("read database"));
            }
        }
        Traces {
            code: out.status.code(),
            output,
            database,
        }
    })
    .await
}

/// `application/x-www-form-urlencoded` encoding (WHATWG URL §5.2), as OAuth2 applies to Basic halves.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'*' | b'-' | b'.' | b'_' => (b as char).to_string(),
            b' ' => "+".to_string(),
            b if b.is_ascii_alphanumeric() => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The forms in which a secret can come back, computed here rather than by the redactor's own
/// `derived_forms`, so a form the redactor forgets is still looked for: raw, JSON-escaped (also with
/// `\/`), form-URL-encoded, percent-encoded (upper and lower hex) and base64 (standard and URL-safe,
/// padded and not).
fn derived_forms(value: &str) -> Vec<String> {
    let json = serde_json::to_string(value).expect("a string serialises");
    let json = json[1..json.len() - 1].to_string();
    let percent: String = value
        .bytes()
        .map(|b| match b {
            b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            b if b.is_ascii_alphanumeric() => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect();
    let lower = percent
        .split('%')
        .enumerate()
        .map(|(i, part)| match i {
            0 => part.to_string(),
            _ => format!(
                "%{}{}",
                part.get(..2).unwrap_or(part).to_ascii_lowercase(),
                part.get(2..).unwrap_or("")
            ),
        })
        .collect::<String>();
    let mut out = vec![
        value.to_string(),
        json.replace('/', "\\/"),
        json,
        enc(value),
        percent,
        lower,
    ];
    out.extend(base64_forms(value.as_bytes()));
    out.sort();
    out.dedup();
    out
}

/// Base64 of `bytes`: standard and URL-safe alphabets, with and without padding.
fn base64_forms(bytes: &[u8]) -> Vec<String> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut padded = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                padded.push(STD[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                padded.push('=');
            }
        }
    }
    let url_safe = padded.replace('+', "-").replace('/', "_");
    vec![
        padded.trim_end_matches('=').to_string(),
        url_safe.trim_end_matches('=').to_string(),
        padded,
        url_safe,
    ]
}

/// The oracle itself, on values whose forms are known (RFC 4648 §10 for base64).
#[test]
fn the_forms_looked_for_are_the_known_ones() {
    assert_eq!(
        base64_forms(b"foob"),
        ["Zm9vYg", "Zm9vYg", "Zm9vYg==", "Zm9vYg=="]
    );
    assert_eq!(base64_forms(b"\xfb\xff")[1], "-_8");
    let forms = derived_forms("a/b c\"\u{e9}");
    for want in [
        "a/b c\"\u{e9}",
        "a/b c\\\"\u{e9}",
        "a\\/b c\\\"\u{e9}",
        "a%2Fb+c%22%C3%A9",
        "a%2Fb%20c%22%C3%A9",
        "a%2fb%20c%22%c3%a9",
        "YS9iIGMiw6k=",
    ] {
        assert!(forms.contains(&want.to_string()), "{want} not in {forms:?}");
    }
}

/// Every form in which `secrets` (and the HTTP Basic pairs built from them) could appear.
fn forbidden_forms(secrets: &[String], basic_pairs: &[(String, String)]) -> Vec<String> {
    let mut forms: Vec<String> = secrets.iter().flat_map(|s| derived_forms(s)).collect();
    for (user, secret) in basic_pairs {
        forms.extend(derived_forms(&format!("{user}:{secret}")));
        forms.extend(derived_forms(&format!("{}:{}", enc(user), enc(secret))));
    }
    forms.sort();
    forms.dedup();
    forms
}

fn assert_no_secret(traces: &Traces, forms: &[String], what: &str) {
    for form in forms {
        assert!(
            !traces.output.contains(form.as_str()),
            "{what}: secret form {form:?} in the output:\n{}",
            traces.output
        );
        let bytes = form.as_bytes();
        assert!(
            !traces.database.windows(bytes.len()).any(|w| w == bytes),
            "{what}: secret form {form:?} in the database file"
        );
    }
}

/// An echoing server: every request is answered 400 with the whole request in the body.
async fn echo_server() -> FakeServer {
    let echo = FakeServer::bare().await.expect("echo server");
    echo.faults().echo_next(u32::MAX, 400);
    echo
}

/// Runs a sync of a static-credential destination against the echo server and checks every trace.
async fn echo_case(kind: &str, destination: impl Fn(&str) -> String, secrets: &[(&str, String)]) {
    let echo = echo_server().await;
    let env = workspace(&destination(echo.base_url()), secrets).await;
    let traces = sync(&env, secrets).await;
    assert!(
        !echo.requests().all().is_empty(),
        "{kind}: the echo server was never called:\n{}",
        traces.output
    );
    // The webhook's secret is an HMAC key: only the signature travels, so there is nothing to mask.
    assert!(
        kind == "webhook" || traces.output.contains("[REDACTED]"),
        "{kind}: the echoed request should show as masked:\n{}",
        traces.output
    );
    let values: Vec<String> = secrets.iter().map(|(_, v)| v.clone()).collect();
    let pairs: Vec<(String, String)> = values
        .iter()
        .map(|v| ("campaignd".to_string(), v.clone()))
        .collect();
    assert_no_secret(&traces, &forbidden_forms(&values, &pairs), kind);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_meta_token_never_leaks() {
    echo_case(
        "meta",
        |base| {
            format!(
                "kind = \"meta\"\nbase_url = \"{base}\"\nad_account_id = \"act_1234567890\"\naccess_token = {{ env = \"META_TOKEN\" }}"
            )
        },
        &[("META_TOKEN", nasty("meta"))],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_tiktok_token_never_leaks() {
    echo_case(
        "tiktok",
        |base| {
            format!(
                "kind = \"tiktok\"\nbase_url = \"{base}\"\nadvertiser_id = \"7000000000000000000\"\naccess_token = {{ env = \"TIKTOK_TOKEN\" }}"
            )
        },
        &[("TIKTOK_TOKEN", nasty("tiktok"))],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_mailchimp_key_never_leaks_even_as_basic_auth() {
    echo_case(
        "mailchimp",
        |base| {
            format!(
                "kind = \"mailchimp\"\nbase_url = \"{base}\"\nlist_id = \"a1b2c3d4\"\napi_key = {{ env = \"MC_KEY\" }}"
            )
        },
        &[("MC_KEY", format!("{}-us21", nasty("mailchimp")))],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_klaviyo_key_never_leaks() {
    echo_case(
        "klaviyo",
        |base| {
            format!(
                "kind = \"klaviyo\"\nbase_url = \"{base}\"\napi_key = {{ env = \"KL_KEY\" }}\npoll_interval_ms = 10"
            )
        },
        &[("KL_KEY", nasty("pk_klaviyo"))],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_sendgrid_key_never_leaks() {
    echo_case(
        "sendgrid",
        |base| {
            format!(
                "kind = \"sendgrid\"\nbase_url = \"{base}\"\napi_key = {{ env = \"SG_KEY\" }}\npoll_interval_ms = 10"
            )
        },
        &[("SG_KEY", nasty("SG.sendgrid"))],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_webhook_secret_never_leaks() {
    echo_case(
        "webhook",
        |base| {
            format!(
                "kind = \"webhook\"\nurl = \"{base}/hook\"\nsecret = {{ env = \"HOOK_SECRET\" }}"
            )
        },
        &[("HOOK_SECRET", nasty("webhook"))],
    )
    .await;
}

/// The OAuth2 destinations' secrets: client id, client secret, refresh token (plus Google's developer
/// token), as env vars.
fn oauth_secrets(tag: &str, developer_token: bool) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("OAUTH_CLIENT_ID", nasty(&format!("{tag}-id"))),
        ("OAUTH_CLIENT_SECRET", nasty(&format!("{tag}-secret"))),
        ("OAUTH_REFRESH_TOKEN", nasty(&format!("{tag}-refresh"))),
    ];
    if developer_token {
        v.push(("GOOGLE_DEV_TOKEN", nasty(&format!("{tag}-devtoken"))));
    }
    v
}

const OAUTH_KEYS: &str = "client_id = { env = \"OAUTH_CLIENT_ID\" }\nclient_secret = { env = \"OAUTH_CLIENT_SECRET\" }\nrefresh_token = { env = \"OAUTH_REFRESH_TOKEN\" }";

/// Two runs of an OAuth2 destination: the token endpoint echoes (its error carries the refresh token,
/// the client secret in the form body and `client_id:client_secret` in Basic auth), then a real token
/// endpoint (the platform's fake) issues a token and the API echoes (the bearer token comes back).
async fn oauth_echo_case(
    kind: &str,
    secrets: &[(&'static str, String)],
    issued_token: &str,
    token_url_of_fake: String,
    destination: impl Fn(&str, &str) -> String,
) {
    let values: Vec<String> = secrets.iter().map(|(_, v)| v.clone()).collect();
    let pairs = vec![(values[0].clone(), values[1].clone())];
    let mut all = values.clone();
    all.push(issued_token.to_string());
    let forms = forbidden_forms(&all, &pairs);

    let echo = echo_server().await;
    let token_url = format!("{}/oauth/token", echo.base_url());
    let env = workspace(&destination(echo.base_url(), &token_url), secrets).await;
    let traces = sync(&env, secrets).await;
    assert_eq!(traces.code, Some(1), "{kind}: {}", traces.output);
    assert!(
        echo.requests().count("POST", "/oauth/token") >= 1,
        "{kind}: the token endpoint was never called:\n{}",
        traces.output
    );
    assert!(
        traces.output.contains("token endpoint refused the refresh"),
        "{kind}: {}",
        traces.output
    );
    assert_no_secret(&traces, &forms, &format!("{kind} token endpoint"));

    let echo = echo_server().await;
    let env = workspace(&destination(echo.base_url(), &token_url_of_fake), secrets).await;
    let traces = sync(&env, secrets).await;
    assert!(
        !echo.requests().all().is_empty(),
        "{kind}: the API was never called:\n{}",
        traces.output
    );
    assert!(
        traces.output.contains("[REDACTED]"),
        "{kind}: {}",
        traces.output
    );
    assert_no_secret(&traces, &forms, &format!("{kind} API"));
}

/// The first token the fakes' OAuth issuer hands out, with `prefix`.
fn first_token(prefix: &str) -> String {
    format!("{prefix}0001-{:x}", 7919 + 17)
}

async fn google_case(api: &str) {
    let secrets = oauth_secrets(&format!("google-{api}"), true);
    let fake = FakeGoogleAds::start(GoogleFakeConfig {
        developer_token: secrets[3].1.clone(),
        customer_id: "1234567890".into(),
        login_customer_id: None,
        client_id: secrets[0].1.clone(),
        client_secret: secrets[1].1.clone(),
        refresh_token: secrets[2].1.clone(),
    })
    .await
    .expect("fake google");
    oauth_echo_case(
        &format!("google_ads {api}"),
        &secrets,
        &first_token("ya29.fake-"),
        fake.token_url(),
        |base, token_url| {
            format!(
                "kind = \"google_ads\"\napi = \"{api}\"\nbase_url = \"{base}\"\nads_base_url = \"{base}\"\ntoken_url = \"{token_url}\"\ncustomer_id = \"123-456-7890\"\ndeveloper_token = {{ env = \"GOOGLE_DEV_TOKEN\" }}\njob_poll_interval_ms = 10\n{OAUTH_KEYS}"
            )
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_google_customer_match_secrets_never_leak() {
    google_case("customer_match").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_google_data_manager_secrets_never_leak() {
    google_case("data_manager").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_linkedin_secrets_never_leak() {
    let secrets = oauth_secrets("linkedin", false);
    let fake = FakeLinkedIn::start("512345678", &secrets[0].1, &secrets[1].1, &secrets[2].1)
        .await
        .expect("fake linkedin");
    oauth_echo_case(
        "linkedin",
        &secrets,
        &first_token("AQV-fake-"),
        fake.token_url(),
        |base, token_url| {
            format!(
                "kind = \"linkedin\"\nbase_url = \"{base}\"\ntoken_url = \"{token_url}\"\nad_account_id = \"512345678\"\npost_create_delay_ms = 0\n{OAUTH_KEYS}"
            )
        },
    )
    .await;
}

// ---- redirects, hung platforms, endless bodies (Meta) ----

const META_TOKEN: &str = "meta-test-token-123";

fn meta_destination(base: &str, extra: &str) -> String {
    format!(
        "kind = \"meta\"\nbase_url = \"{base}\"\nad_account_id = \"act_1234567890\"\naccess_token = {{ env = \"META_TOKEN\" }}\n{extra}"
    )
}

fn meta_env() -> Vec<(&'static str, String)> {
    vec![("META_TOKEN", META_TOKEN.to_string())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_host_fails_the_sync_and_sends_nothing_there() {
    for status in [307u16, 302] {
        let fake = FakeMeta::start(META_TOKEN, "act_1234567890")
            .await
            .expect("fake meta");
        let other = FakeServer::bare().await.expect("other host");
        fake.faults().redirect_next(
            u32::MAX,
            status,
            &format!(
                "{}/collect?access_token=secret-in-location",
                other.base_url()
            ),
        );
        let env = workspace(&meta_destination(fake.base_url(), ""), &meta_env()).await;
        let traces = sync(&env, &meta_env()).await;
        assert_eq!(traces.code, Some(1), "{status}: {}", traces.output);
        assert!(
            traces.output.contains(&format!(
                "HTTP {status} redirect to {}/collect",
                other.base_url()
            )) && traces.output.contains("follows no redirects"),
            "{status}: {}",
            traces.output
        );
        assert!(
            !traces.output.contains("secret-in-location"),
            "{}",
            traces.output
        );
        assert!(
            other.requests().all().is_empty(),
            "{status}: the other host received {:?}",
            other.requests().all()
        );
        assert_eq!(
            fake.requests().all().len(),
            1,
            "{status}: one request, not retried"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_platform_ends_the_sync_within_the_call_budget() {
    let fake = FakeMeta::start(META_TOKEN, "act_1234567890")
        .await
        .expect("fake meta");
    fake.faults()
        .set_delay(std::time::Duration::from_secs(3_600));
    let extra = "request_timeout_ms = 3600000";
    let env = workspace(&meta_destination(fake.base_url(), extra), &meta_env()).await;
    // A short budget for this test (the default is 5 minutes).
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        config.replace("max_total_ms = 20000", "max_total_ms = 1500"),
    )
    .expect("config");
    let traces = sync(&env, &meta_env()).await;
    assert_eq!(traces.code, Some(1), "{}", traces.output);
    assert!(
        traces
            .output
            .contains("no answer within the 1500 ms budget of this call"),
        "{}",
        traces.output
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_reply_body_is_refused() {
    let fake = FakeMeta::start(META_TOKEN, "act_1234567890")
        .await
        .expect("fake meta");
    fake.faults().endless_body_next(u32::MAX);
    let env = workspace(&meta_destination(fake.base_url(), ""), &meta_env()).await;
    let traces = sync(&env, &meta_env()).await;
    assert_eq!(traces.code, Some(1), "{}", traces.output);
    assert!(
        traces
            .output
            .contains("reply body exceeds the 67108864-byte limit"),
        "{}",
        traces.output
    );
    assert_eq!(fake.requests().all().len(), 1, "refused, not retried");
}
