//! One `switchboard serve` process on a free port over a fresh database, its `default` tenant's
//! credentials and tokens, and the few API calls the scenarios set up with.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use std::sync::Arc;

use crate::procfs::{self, CpuSnapshot, Database};
use crate::Result;

/// Which database the server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    pub fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "sqlite",
            Db::Postgres => "postgres",
        }
    }
}

/// How to start the server beyond its database: Redis for the live bus, and settings of the
/// scenario (`SWITCHBOARD_*` variables).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `REDIS_URL`: the live bus goes through Redis, as on a multi-node deployment.
    pub redis_url: Option<String>,
    /// More environment variables for the server process.
    pub env: Vec<(String, String)>,
    /// Server processes over the one database (and Redis): 1, or more for a multi-node
    /// deployment (PostgreSQL only).
    pub nodes: usize,
    /// Where each node's log is copied when the server stops (profiling), as
    /// `<label>-node<n>.log`.
    pub keep_logs: Option<(PathBuf, String)>,
}

/// A running server. Stop it with [`Server::stop`]; dropping it kills the process. It can be
/// killed and started again over the same database and port ([`Server::kill`],
/// [`Server::restart`]).
pub struct Server {
    pub pid: u32,
    /// The database processes whose CPU counts with the server's.
    pub database: Database,
    /// A client for the set-up calls, and the tokens of the `default` tenant.
    pub api: Api,
    child: Child,
    dir: PathBuf,
    /// The PostgreSQL database to drop afterwards: (admin URL, name).
    postgres: Option<(String, String)>,
    /// How it was started, to start it again: the binary and its environment.
    bin: PathBuf,
    env: Vec<(String, String)>,
    /// The other nodes of a multi-node run (`--nodes`), beside this first one: same database,
    /// same Redis, same encryption key, each on its own port.
    others: Vec<Node>,
    keep_logs: Option<(PathBuf, String)>,
}

/// A node beyond the first of a multi-node run.
struct Node {
    pid: u32,
    child: Child,
    base: String,
    dir: PathBuf,
}

/// The server's rate limits, each set to [`UNMET_RATE`] for the bench.
const RATE_LIMITS: [&str; 8] = [
    "SWITCHBOARD_RATE_LIMIT_PORTAL",
    "SWITCHBOARD_RATE_LIMIT_ENGINE",
    "SWITCHBOARD_RATE_LIMIT_WS_FRAMES",
    "SWITCHBOARD_RATE_LIMIT_TOKEN",
    "SWITCHBOARD_RATE_LIMIT_PUBLIC",
    "SWITCHBOARD_RATE_LIMIT_CHANNEL",
    "SWITCHBOARD_RATE_LIMIT_WEBCHAT_CLIENT",
    "SWITCHBOARD_RATE_LIMIT_WEBCHAT_IP",
];
/// The highest rate the server accepts, far above what the bench offers.
const UNMET_RATE: &str = "1000000/s:1000000";

/// Where the server writes its logs, for error messages.
fn log_path(dir: &Path) -> PathBuf {
    dir.join("server.log")
}

impl Server {
    /// Starts `bin serve` over a fresh database (a temp SQLite file, or a new database on the
    /// PostgreSQL server of `postgres_admin`), reads the `default` tenant from its first stdout
    /// line, waits for `/healthz` and gets a portal and an engine token.
    pub async fn start(
        bin: &Path,
        db: Db,
        postgres_admin: Option<&str>,
        options: &Options,
    ) -> Result<Self> {
        let admin = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(postgres_admin.ok_or(
                "--db postgres needs TEST_DATABASE_URL (an admin URL such as postgres://postgres@127.0.0.1:5432/test): a fresh database is created next to it and dropped afterwards",
            )?),
        };
        let dir = std::env::temp_dir().join(format!("switchboard-bench-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("find a free port: {e}"))?
            .port();

        let mut env = vec![("SWITCHBOARD_BIND".to_owned(), format!("127.0.0.1:{port}"))];
        // One tenant pushes thousands of requests and frames a second from one address: limits
        // it never meets, so that the limiter runs (and its cost is measured) without refusing.
        env.extend(
            RATE_LIMITS
                .iter()
                .map(|v| ((*v).to_owned(), UNMET_RATE.to_owned())),
        );
        if let Some(url) = &options.redis_url {
            env.push(("REDIS_URL".to_owned(), url.clone()));
        }
        env.extend(options.env.iter().cloned());
        let mut postgres = None;
        let mut database = Database::InProcess;
        match admin {
            None => {
                // The encryption key file goes beside it, in `dir`, and stays for a restart.
                env.push((
                    "DATABASE_URL".to_owned(),
                    dir.join("switchboard.db").display().to_string(),
                ));
            }
            Some(admin) => {
                let (url, name, postmaster) = match create_database(admin).await {
                    Ok(created) => created,
                    Err(e) => {
                        let _ = std::fs::remove_dir_all(&dir);
                        return Err(e);
                    }
                };
                postgres = Some((admin.to_owned(), name));
                database = match postmaster {
                    Some(pid) => Database::Postmaster(pid),
                    None => {
                        eprintln!("  warning: the PostgreSQL of TEST_DATABASE_URL has no process on this machine that the bench can read: CPU figures that include the database will read \"not measured\"");
                        Database::Unseen
                    }
                };
                env.push(("DATABASE_URL".to_owned(), url));
                env.push(("SWITCHBOARD_ENCRYPTION_KEY".to_owned(), random_key()));
            }
        }
        let launched = match command(bin, &dir, &env, false) {
            Ok(cmd) => launch(cmd, bin, &dir, port).await,
            Err(e) => Err(e),
        };
        match launched {
            Ok((child, pid, api)) => {
                let mut server = Self {
                    pid,
                    database,
                    api,
                    child,
                    dir,
                    postgres,
                    bin: bin.to_owned(),
                    env,
                    others: Vec::new(),
                    keep_logs: options.keep_logs.clone(),
                };
                for n in 1..options.nodes.max(1) {
                    if let Err(e) = server.start_node(n).await {
                        let _ = server.stop().await;
                        return Err(e);
                    }
                }
                Ok(server)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                if let Some((admin, name)) = postgres {
                    drop_database(&admin, &name).await;
                }
                Err(e)
            }
        }
    }

    /// Starts node `n` (from 1) beside the first, over its database: the first node has made the
    /// tenant, so it prints no credentials line; it is ready once `/healthz` answers.
    async fn start_node(&mut self, n: usize) -> Result<()> {
        let dir = self.dir.join(format!("node{n}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("find a free port: {e}"))?
            .port();
        let env: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(k, v)| match k.as_str() {
                "SWITCHBOARD_BIND" => (k.clone(), format!("127.0.0.1:{port}")),
                _ => (k.clone(), v.clone()),
            })
            .collect();
        let mut child = command(&self.bin, &dir, &env, false)?
            .spawn()
            .map_err(|e| format!("start node {n}: {e}"))?;
        let pid = child.id().ok_or("a node exited at once")?;
        if let Some(stdout) = child.stdout.take() {
            let mut lines = BufReader::new(stdout).lines();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        }
        let base = format!("http://127.0.0.1:{port}");
        healthy(&mut child, &base, &dir).await?;
        self.others.push(Node {
            pid,
            child,
            base,
            dir,
        });
        Ok(())
    }

    /// How many server processes run (`--nodes`).
    pub fn nodes(&self) -> usize {
        1 + self.others.len()
    }

    /// The base URL of every node, the first one's first: posts are spread over them with
    /// [`spread`], as a load balancer would.
    pub fn bases(&self) -> Arc<Vec<String>> {
        let mut bases = vec![self.api.base.clone()];
        bases.extend(self.others.iter().map(|n| n.base.clone()));
        Arc::new(bases)
    }

    /// The CPU of every node (summed) and of the database's processes, now.
    pub fn cpu(&self) -> CpuSnapshot {
        let mut pids = vec![self.pid];
        pids.extend(self.others.iter().map(|n| n.pid));
        CpuSnapshot::take_all(&pids, self.database)
    }

    /// The counters of this run's PostgreSQL database (`pg_stat_database`), read through the
    /// admin URL; `None` on SQLite or when they cannot be read. PostgreSQL's backends publish
    /// them at most once a second (and an idle one within 10 s), so a phase's deltas are
    /// blurred by about a second at each end.
    pub async fn pg_counters(&self) -> Option<PgCounters> {
        use sea_orm::{ConnectionTrait, Statement};
        let (admin, name) = self.postgres.as_ref()?;
        let conn = sea_orm::Database::connect(admin.as_str()).await.ok()?;
        let row = conn
            .query_one(Statement::from_sql_and_values(
                conn.get_database_backend(),
                "SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, \
                 tup_updated, tup_deleted, blks_hit, blks_read FROM pg_stat_database WHERE datname = $1",
                [name.as_str().into()],
            ))
            .await
            .ok()
            .flatten();
        let _ = conn.close().await;
        let row = row?;
        let mut values = [0i64; PG_COUNTERS.len()];
        for (v, name) in values.iter_mut().zip(PG_COUNTERS) {
            *v = row.try_get::<i64>("", name).ok()?;
        }
        Some(PgCounters(values))
    }

    /// SIGKILL, as a crash: no shutdown, leases and connections left as they are.
    pub async fn kill(&mut self) -> Result<()> {
        self.child
            .start_kill()
            .map_err(|e| format!("SIGKILL the server: {e}"))?;
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .map_err(|_| "the server did not die within 10 s of SIGKILL".to_owned())?
            .map_err(|e| format!("reap the server: {e}"))?;
        Ok(())
    }

    /// Starts the server again after [`Server::kill`]: the same binary, database, encryption
    /// key and port, so the receiver's URLs and the tokens still hold. A database that has a
    /// tenant makes the server print nothing, so no credentials line is read. Answers how long
    /// it took to answer `/healthz`.
    pub async fn restart(&mut self) -> Result<Duration> {
        let start = Instant::now();
        let mut cmd = command(&self.bin, &self.dir, &self.env, true)?;
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("start {} again: {e}", self.bin.display()))?;
        let pid = child.id().ok_or("the restarted server exited at once")?;
        if let Some(stdout) = child.stdout.take() {
            let mut lines = BufReader::new(stdout).lines();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        }
        self.child = child;
        self.pid = pid;
        healthy(&mut self.child, &self.api.base, &self.dir).await?;
        Ok(start.elapsed())
    }

    /// SIGTERM, the time the process took to exit, then the temp files and the database go.
    pub async fn stop(mut self) -> Result<Duration> {
        let start = Instant::now();
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        let took = match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(_) => start.elapsed(),
            Err(_) => {
                let _ = self.child.kill().await;
                return Err("the server did not exit within 30 s of SIGTERM".to_owned());
            }
        };
        if let Some((keep, label)) = &self.keep_logs {
            let _ = std::fs::create_dir_all(keep);
            let _ = std::fs::copy(log_path(&self.dir), keep.join(format!("{label}-node0.log")));
        }
        for (i, mut node) in std::mem::take(&mut self.others).into_iter().enumerate() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(node.pid.to_string())
                .status();
            if tokio::time::timeout(Duration::from_secs(30), node.child.wait())
                .await
                .is_err()
            {
                let _ = node.child.kill().await;
            }
            if let Some((keep, label)) = &self.keep_logs {
                let name = format!("{label}-node{}.log", i + 1);
                let _ = std::fs::copy(log_path(&node.dir), keep.join(name));
            }
            let _ = std::fs::remove_dir_all(&node.dir);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((admin, name)) = self.postgres.take() {
            drop_database(&admin, &name).await;
        }
        Ok(took)
    }

    /// The last lines of the server's log (of each node's, on several).
    pub fn log_tail(&self) -> String {
        let mut out = tail(&log_path(&self.dir));
        for (i, node) in self.others.iter().enumerate() {
            out.push_str(&format!(
                "\n-- node {}:\n{}",
                i + 1,
                tail(&log_path(&node.dir))
            ));
        }
        out
    }
}

/// `url` (of the first node) on the node that request `seq` goes to: round robin, shifted by
/// one on each pass over `every` conversations, so each conversation's activities reach every
/// node in turn.
pub fn spread(bases: &[String], seq: u64, every: usize, url: &str) -> String {
    if bases.len() < 2 {
        return url.to_owned();
    }
    let n = bases.len() as u64;
    let node = ((seq + seq / every.max(1) as u64) % n) as usize;
    match url.strip_prefix(bases[0].as_str()) {
        Some(path) => format!("{}{path}", bases[node]),
        None => url.to_owned(),
    }
}

/// The counters of `pg_stat_database` a phase reports, in this order.
pub const PG_COUNTERS: [&str; 9] = [
    "xact_commit",
    "xact_rollback",
    "tup_returned",
    "tup_fetched",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "blks_hit",
    "blks_read",
];

/// A reading of [`PG_COUNTERS`].
#[derive(Clone, Copy, Debug)]
pub struct PgCounters(pub [i64; PG_COUNTERS.len()]);

impl PgCounters {
    /// The counters' growth from `self` to `later`, each also per `n` messages.
    pub fn per(&self, later: &Self, n: u64) -> Value {
        let mut out = serde_json::Map::new();
        for ((name, a), b) in PG_COUNTERS.iter().zip(self.0).zip(later.0) {
            let d = b - a;
            out.insert((*name).to_owned(), json!(d));
            if n > 0 {
                out.insert(
                    format!("{name}_per_message"),
                    json!(crate::stats::round3(d as f64 / n as f64)),
                );
            }
        }
        Value::Object(out)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `bin serve` in `dir` with exactly the variables of `env` that the server reads from ours,
/// logging to `dir/server.log` (appended to when `append`, as on a restart).
fn command(bin: &Path, dir: &Path, env: &[(String, String)], append: bool) -> Result<Command> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(log_path(dir))
        .map_err(|e| format!("open the server log: {e}"))?;
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("RUST_LOG")
        .env_remove("SWITCHBOARD_ENCRYPTION_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ok(cmd)
}

/// Runs the prepared command: the process, its pid, and the API with the `default` tenant's
/// tokens once `/healthz` answers.
async fn launch(mut cmd: Command, bin: &Path, dir: &Path, port: u16) -> Result<(Child, u32, Api)> {
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("start {}: {e}", bin.display()))?;
    let pid = child.id().ok_or("the server exited at once")?;

    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await;
    let line = match first {
        Ok(Ok(Some(line))) => line,
        _ => {
            let _ = child.kill().await;
            return Err(format!(
                "the server printed no credentials line; its log:\n{}",
                tail(&log_path(dir))
            ));
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let tenant: Value = serde_json::from_str(line.trim())
        .map_err(|_| format!("the server's first line is not JSON: {line}"))?;

    let base = format!("http://127.0.0.1:{port}");
    healthy(&mut child, &base, dir).await?;
    let mut api = Api {
        base,
        http: client(),
        portal: String::new(),
        engine: String::new(),
    };
    api.portal = api.token(&tenant["portal"]).await?;
    api.engine = api.token(&tenant["engine"]).await?;
    Ok((child, pid, api))
}

/// Waits (up to 60 s) until the server at `base` answers `/healthz`; an error if it exits.
async fn healthy(child: &mut Child, base: &str, dir: &Path) -> Result<()> {
    let http = client();
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the server exited at start ({status}); its log:\n{}",
                tail(&log_path(dir))
            ));
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("the server at {base} never answered /healthz"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An HTTP client for many concurrent keep-alive connections to one host.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_default()
}

/// The base URL, a client and the tokens of the `default` tenant.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub portal: String,
    pub engine: String,
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A token for one client of the credentials line (`{clientId, clientSecret}`).
    async fn token(&self, client: &Value) -> Result<String> {
        let id = client["clientId"].as_str().ok_or("no clientId")?;
        let secret = client["clientSecret"].as_str().ok_or("no clientSecret")?;
        let resp = self
            .http
            .post(self.url("/connect/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .map_err(|e| format!("POST /connect/token: {e}"))?;
        let body = ok_json("POST /connect/token", resp).await?;
        Ok(body["access_token"]
            .as_str()
            .ok_or("no access_token")?
            .to_owned())
    }

    /// POSTs JSON with a token; the answer's body, or an error unless 200.
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Result<Value> {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        ok_json(&format!("POST {path}"), resp).await
    }

    /// GETs with a token; the answer's body, or an error unless 200.
    pub async fn get(&self, path: &str, token: &str) -> Result<Value> {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        ok_json(&format!("GET {path}"), resp).await
    }

    /// Creates a hub; answers its id.
    pub async fn hub(&self, name: &str) -> Result<String> {
        let body = self
            .post(
                "/api/v1/hubs",
                &self.portal,
                &json!({ "name": name, "description": "benchmark hub" }),
            )
            .await?;
        id(&body, "hubId")
    }

    /// Creates a Direct integration of `integration_type` without a webhook URL; answers its id.
    pub async fn direct(&self, hub: &str, name: &str, integration_type: &str) -> Result<String> {
        let body = self
            .post(
                &format!("/api/v1/integrations/hubs/{hub}"),
                &self.portal,
                &direct_body(name, integration_type),
            )
            .await?;
        id(&body, "integrationId")
    }

    /// Establishes the conversation of `binding` on a Customer integration; answers its id.
    pub async fn establish(&self, integration: &str, binding: &str) -> Result<String> {
        let body = self
            .post(
                "/api/v1/conversations/establish",
                &self.engine,
                &json!({ "integrationId": integration, "binding": binding }),
            )
            .await?;
        id(&body, "conversationId")
    }
}

/// The body that creates a Direct integration reached over a websocket.
pub fn direct_body(name: &str, integration_type: &str) -> Value {
    json!({
        "name": name,
        "channelId": "Direct",
        "configuration": { "integrationType": integration_type },
    })
}

fn id(body: &Value, field: &str) -> Result<String> {
    body[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no {field} in {body}"))
}

async fn ok_json(what: &str, resp: reqwest::Response) -> Result<Value> {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("{what}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|_| format!("{what}: not JSON: {text}"))
}

/// base64 of 32 random bytes, for `SWITCHBOARD_ENCRYPTION_KEY`.
fn random_key() -> String {
    use base64::Engine;
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// Creates `sb_bench_<uuid>` on the server of the admin URL; answers its URL and name, and the
/// postmaster of that server when it runs on this machine (the parent of this connection's
/// backend), whose processes are the database's CPU.
async fn create_database(admin: &str) -> Result<(String, String, Option<u32>)> {
    use sea_orm::{ConnectionTrait, Statement};
    let name = format!("sb_bench_{}", uuid::Uuid::new_v4().simple());
    let conn = sea_orm::Database::connect(admin)
        .await
        .map_err(|e| format!("connect to TEST_DATABASE_URL: {e}"))?;
    conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|e| format!("create database {name}: {e}"))?;
    let backend = conn
        .query_one(Statement::from_string(
            conn.get_database_backend(),
            "SELECT pg_backend_pid() AS pid",
        ))
        .await
        .ok()
        .flatten()
        .and_then(|row| row.try_get::<i32>("", "pid").ok())
        .and_then(|pid| u32::try_from(pid).ok());
    let postmaster = backend.and_then(procfs::postmaster_of);
    let _ = conn.close().await;
    let (base, _) = admin
        .rsplit_once('/')
        .ok_or("TEST_DATABASE_URL must end with /<database>")?;
    Ok((format!("{base}/{name}"), name, postmaster))
}

async fn drop_database(admin: &str, name: &str) {
    use sea_orm::ConnectionTrait;
    if let Ok(conn) = sea_orm::Database::connect(admin).await {
        let _ = conn
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
        let _ = conn.close().await;
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
