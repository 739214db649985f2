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
