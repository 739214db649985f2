//! Shared helpers of the end-to-end tests: a temp workspace with a config file, and the binary.

#![allow(dead_code)]

use std::path::PathBuf;

use assert_cmd::Command;

/// A temporary directory holding a config file and whatever the test writes.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Env {
    /// A workspace whose config is `body`, with `{DIR}` replaced by the workspace path.
    pub fn new(body: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("campaignd.toml");
        std::fs::write(
            &config,
            body.replace("{DIR}", &dir.path().display().to_string()),
        )
        .unwrap();
        Env { dir, config }
    }

    /// The binary with `--config` set, run in the workspace.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("campaignd").unwrap();
        cmd.arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path());
        cmd
    }

    /// Same as [`Env::cmd`] as a std command (for spawning and killing).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("campaignd"));
        cmd.arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path());
        cmd
    }

    /// Writes a file into the workspace.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// Runs a blocking assert_cmd call off the async runtime so in-process fakes keep serving.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Stdout as lines.
pub fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The lift of every sync in a store, computed again by plain SQL on its tables: per (audience,
/// group) the members, converters (an order in `(since, since + 30d]`, not after now), orders and
/// revenue. Timestamps are unix seconds on SQLite.
pub async fn sqlite_lift_figures(
    db: &std::path::Path,
) -> std::collections::BTreeMap<(String, String), (u64, u64, u64, f64)> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let rows: Vec<(String, String, i64, i64, i64, f64)> = sqlx::query_as(
        "SELECT g.audience_name, g.grp, COUNT(*), \
                SUM(CASE WHEN p.n > 0 THEN 1 ELSE 0 END), SUM(p.n), SUM(p.revenue) \
         FROM holdout_members g JOIN ( \
             SELECT h.destination, h.audience_name, h.customer_id, COUNT(o.id) AS n, \
                    COALESCE(SUM(o.total), 0.0) AS revenue \
             FROM holdout_members h LEFT JOIN orders o ON o.customer_id = h.customer_id \
                  AND o.placed_at > h.since AND o.placed_at <= h.since + 30 * 86400 AND o.placed_at <= ? \
             GROUP BY h.destination, h.audience_name, h.customer_id) p \
           ON p.destination = g.destination AND p.audience_name = g.audience_name AND p.customer_id = g.customer_id \
         GROUP BY g.audience_name, g.grp",
    )
    .bind(now)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter()
        .map(|(a, g, m, c, n, r)| ((a, g), (m as u64, c as u64, n as u64, r)))
        .collect()
}
