//! A real `switchboard serve` process for the multi-node and crash tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

/// One `switchboard serve` process on a free port; SIGTERMed (then killed) when dropped, so no
/// process outlives the test, even after a panic.
pub struct Node {
    pub name: String,
    child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Node {
    /// Starts the real binary in `dir` (logs to `dir/{name}.log`), the way operations.rs does:
    /// a port picked free first, passed as `SWITCHBOARD_BIND`.
    pub fn spawn(name: &str, dir: &Path, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join(format!("{name}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        cmd.arg("serve")
            .current_dir(dir)
            .env("SWITCHBOARD_BIND", format!("127.0.0.1:{port}"))
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env_remove("SWITCHBOARD_ENCRYPTION_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self {
            name: name.to_owned(),
            child: cmd.spawn().expect("spawn switchboard"),
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The first line on stdout (the default tenant's credentials), within 60 s.
    pub async fn credentials(&mut self) -> Value {
        let stdout = self.child.stdout.take().expect("stdout");
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("{}: nothing on stdout within 60 s", self.name));
        serde_json::from_str(line.trim())
            .unwrap_or_else(|_| panic!("{}: one JSON line on stdout, got {line:?}", self.name))
    }

    pub async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited at start: {status}", self.name);
            }
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{} at {} never became ready", self.name, self.base);
    }

    /// Whether the process is still running (not exited).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The `host:port` it listens on.
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    pub fn sigterm(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Like [`Node::wait_exit`], without blocking the test's runtime (which may be serving
    /// what the process waits on).
    pub async fn exited(&mut self, within: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// SIGTERM, then its exit status (within 15 s).
    pub fn stop(&mut self) -> ExitStatus {
        self.sigterm();
        self.wait_exit(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("{} did not exit after SIGTERM", self.name))
    }

    /// What the process printed on stdout after its first line (read once it has exited).
    pub fn rest_of_stdout(&mut self) -> String {
        let mut rest = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            let _ = out.read_to_string(&mut rest);
        }
        rest
    }

    /// SIGKILL (what `kill -9` sends), and reaps it.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("reap");
        assert!(!status.success(), "{}: {status}", self.name);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.sigterm();
            if self.wait_exit(Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        if std::thread::panicking() {
            // Its log helps to see why: the last lines, straight to stderr.
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            let _ = writeln!(
                std::io::stderr(),
                "--- {} ({}) log, last lines ---\n{tail}",
                self.name,
                self.base
            );
        }
    }
}
