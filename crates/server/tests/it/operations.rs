//! Operations (SPEC 6): health, readiness, metrics, the OpenAPI document and the explorer, the
//! CLI, the default tenant on first start, configuration errors, graceful shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::node::Node;
use crate::support::*;

fn openapi_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi/openapi.json")
}

#[tokio::test]
async fn committed_openapi_document_is_the_generated_one() {
    let generated = switchboard_api::openapi_json();
    let path = openapi_path();
    if std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(&path, format!("{generated}\n")).expect("write openapi.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json differs from the code's document: run `UPDATE_OPENAPI=1 cargo test -p switchboard --test it openapi` and commit it"
    );
    // It is what the server serves, and it documents every route.
    let s = TestServer::start().await;
    let served: Value = s
        .http
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file: Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(served, file);
    let paths = file["paths"].as_object().unwrap();
    for (method, p) in ROUTES {
        assert!(
            paths
                .get(*p)
                .and_then(|ops| ops.get(method.to_lowercase()))
                .is_some(),
            "openapi.json lacks {method} {p}"
        );
    }
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path} has no summary"
            );
            assert!(
                op["operationId"].as_str().is_some(),
                "{method} {path} has no operationId"
            );
        }
    }
    s.stop().await;
}

/// Every route of SPEC 2 to 6 with its method (the websocket upgrade, `/engine-chat-hub`, is
/// not an OpenAPI operation).
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/connect/token"),
    ("GET", "/api/v1/tenants/clients/{clientId}"),
    ("POST", "/api/v1/tenants/clients/{clientId}/tokens"),
    (
        "DELETE",
        "/api/v1/tenants/clients/{clientId}/tokens/{tokenId}",
    ),
    ("POST", "/api/v1/hubs"),
    ("GET", "/api/v1/hubs"),
    ("GET", "/api/v1/hubs/{hubId}"),
    ("PUT", "/api/v1/hubs/{hubId}"),
    ("DELETE", "/api/v1/hubs/{hubId}"),
    ("GET", "/api/v1/integrations"),
    ("POST", "/api/v1/integrations/hubs/{id}"),
    ("GET", "/api/v1/integrations/{integrationId}"),
    ("PUT", "/api/v1/integrations/{integrationId}"),
    ("DELETE", "/api/v1/integrations/{integrationId}"),
    ("GET", "/api/v1/integrations/hubs/{hubId}/{channelType}"),
    ("POST", "/api/v1/conversations/establish"),
    ("GET", "/api/v1/conversations/{conversationId}"),
    ("POST", "/api/v1/conversations/{conversationId}/close"),
    (
        "POST",
        "/inbound/customer/v1/direct/activity/{conversationId}",
    ),
    ("GET", "/api/v1/interactions/activities/{conversationId}"),
    ("GET", "/api/v1/deliveries"),
    ("POST", "/api/v1/deliveries/{deliveryId}/retry"),
    ("GET", "/api/v1/notifications"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
];

/// Routes anyone may call; every other route wants a token.
const PUBLIC: &[&str] = &["/connect/token", "/healthz", "/readyz", "/metrics"];

#[tokio::test]
async fn every_documented_route_is_served_and_wants_a_token_unless_public() {
    let s = TestServer::start().await;
    for (method, template) in ROUTES {
        if PUBLIC.contains(template) {
            continue;
        }
        // Path parameters filled with ids that exist nowhere.
        let mut path = (*template).to_owned();
        while let Some(open) = path.find('{') {
            let close = open + path[open..].find('}').unwrap();
            let value = if &path[open..=close] == "{channelType}" {
                "Direct".to_owned()
            } else {
                uuid::Uuid::now_v7().to_string()
            };
            path.replace_range(open..=close, &value);
        }
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let body =
            matches!(method, reqwest::Method::POST | reqwest::Method::PUT).then(|| json!({}));
        let (status, body) = s.call(method.clone(), &path, None, body.as_ref()).await;
        let prefix = if path.starts_with("/api/v1/tenants/") {
            "IDT"
        } else if path.starts_with("/api/v1/conversations/")
            || path.starts_with("/api/v1/interactions/")
            || path.starts_with("/inbound/")
        {
            "ENG"
        } else {
            "PRT"
        };
        // A route that is not served would answer 404/105 (or 405/105): it answers 401/102.
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        assert_error(status, &body, 401, prefix, &[102]);
    }
    // The public ones answer without a token.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let resp = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
    }
    let (status, body) = s
        .form("/connect/token", &[("grant_type", "client_credentials")])
        .await;
    assert_error(status, &body, 400, "IDT", &[301, 301]);
    s.stop().await;
}

#[tokio::test]
async fn readiness_is_503_while_the_database_is_unreachable_and_200_once_it_is_back() {
    let Some(admin) = postgres_url() else {
        // On SQLite the check (`SELECT 1` on a pooled connection) never reads the file: no real
        // way to make it fail from outside the process.
        skipped(
            "readiness_is_503_while_the_database_is_unreachable_and_200_once_it_is_back",
            "PostgreSQL",
            POSTGRES_HOW,
        );
        return;
    };
    use sea_orm::ConnectionTrait;
    let s = TestServer::start_on(Backend::Postgres).await;
    let ready = |s: &TestServer| {
        let req = s
            .http
            .get(s.url("/readyz"))
            .timeout(Duration::from_secs(30));
        async move { read(req.send().await.expect("/readyz answers")).await }
    };
    assert_eq!(ready(&s).await, (StatusCode::OK, json!({ "status": "ok" })));

    // The database goes away: no new connection is allowed and the server's are cut.
    let (_, name) = s.database_url.rsplit_once('/').unwrap();
    let name = name.to_owned();
    let conn = sea_orm::Database::connect(&admin).await.unwrap();
    conn.execute_unprepared(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .await
        .unwrap();
    conn.execute_unprepared(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ))
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (status, body) = loop {
        let (status, body) = ready(&s).await;
        if status != StatusCode::OK || Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_error(status, &body, 503, "PRT", &[100]);
    assert!(
        body["errors"][0]["description"]
            .as_str()
            .unwrap()
            .contains("database"),
        "{body}"
    );
    // The process is still up.
    let (status, _) = s.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);

    // Back: ready again, without a restart.
    conn.execute_unprepared(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = ready(&s).await;
        if status == StatusCode::OK {
            assert_eq!(body, json!({ "status": "ok" }));
            break;
        }
        assert_error(status, &body, 503, "PRT", &[100]);
        assert!(
            Instant::now() < deadline,
            "not ready 60 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

/// A `redis-server` of the test's own on `port`, killed when dropped.
struct OwnRedis(Child);

impl OwnRedis {
    /// Starts it and waits until it accepts connections; `None` without a `redis-server`.
    async fn start(port: u16) -> Option<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let redis = Self(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server never listened");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(redis)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `/readyz` until it answers other than `now`; panics after 60 s.
async fn readiness_changes_from(s: &TestServer, now: StatusCode) -> (StatusCode, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let resp = s
            .http
            .get(s.url("/readyz"))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("/readyz answers");
        let (status, body) = read(resp).await;
        if status != now {
            return (status, body);
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {now} after 60 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn readiness_is_503_while_redis_is_unreachable_and_200_once_it_is_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some(redis) = OwnRedis::start(port).await else {
        skipped(
            "readiness_is_503_while_redis_is_unreachable_and_200_once_it_is_back",
            "Redis",
            "PATH to hold a redis-server",
        );
        return;
    };
    let url = format!("redis://127.0.0.1:{port}");
    let s = TestServer::start_with(Backend::Sqlite, move |args| args.redis_url = Some(url)).await;
    let (status, body) = s.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));

    drop(redis);
    let (status, body) = readiness_changes_from(&s, StatusCode::OK).await;
    assert_error(status, &body, 503, "PRT", &[100]);
    assert!(
        body["errors"][0]["description"]
            .as_str()
            .unwrap()
            .contains("Redis"),
        "{body}"
    );
    let (status, _) = s.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK, "the process is still up");

    let _redis = OwnRedis::start(port).await.expect("redis-server again");
    let (status, body) = readiness_changes_from(&s, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));
    s.stop().await;
}

#[tokio::test]
async fn health_readiness_metrics_and_docs_answer() {
    let s = TestServer::start().await;
    let (status, body) = s.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));
    let (status, body) = s.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));
    // A request to count, then the counter in the Prometheus text.
    let (status, _) = s.get("/api/v1/hubs", &s.a.portal).await;
    assert_eq!(status, StatusCode::OK);
    let resp = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("# TYPE http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",status="200"}"#),
        "{text}"
    );
    // The websocket gauges are read from the live registry when the metrics are read.
    for gauge in ["switchboard_ws_sessions", "switchboard_ws_queued_frames"] {
        assert!(text.contains(&format!("# TYPE {gauge} gauge")), "{text}");
    }
    let resp = s.http.get(s.url("/docs/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.unwrap();
    assert!(page.to_lowercase().contains("swagger"));
    // The explorer shows the served document, links included.
    assert!(page.contains("EstablishConversation"));
    s.stop().await;
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
}

/// Starts `switchboard serve` in `dir` on a free port; answers the child and its base URL.
fn spawn_serve(dir: &std::path::Path, extra_env: &[(&str, &str)]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = binary();
    cmd.arg("serve")
        .current_dir(dir)
        .env("SWITCHBOARD_BIND", format!("127.0.0.1:{port}"))
        .env_remove("DATABASE_URL")
        .env_remove("SWITCHBOARD_ENCRYPTION_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    (
        cmd.spawn().expect("spawn switchboard"),
        format!("http://127.0.0.1:{port}"),
    )
}

async fn wait_ready(base: &str) {
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("server at {base} never answered");
}

fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::test]
async fn first_start_prints_default_tenant_once_and_readme_walkthrough_works() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = spawn_serve(dir.path(), &[]);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let creds: Value = serde_json::from_str(line.trim()).expect("one JSON line on stdout");
    for k in ["tenantId", "portal", "engine"] {
        assert!(creds.get(k).is_some(), "{k} in {creds}");
    }
    wait_ready(&base).await;
    // The README's walk-through: token, hub, integration.
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{base}/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", creds["portal"]["clientId"].as_str().unwrap()),
            (
                "client_secret",
                creds["portal"]["clientSecret"].as_str().unwrap(),
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = token["access_token"].as_str().unwrap().to_owned();
    let hub: Value = http
        .post(format!("{base}/api/v1/hubs"))
        .bearer_auth(&bearer)
        .json(&json!({ "name": "Support", "description": "Main support hub" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hub_id = hub["hubId"].as_str().unwrap();
    let resp = http
        .post(format!("{base}/api/v1/integrations/hubs/{hub_id}"))
        .bearer_auth(&bearer)
        .json(&json!({ "channelId": "Direct", "name": "Agent desk", "configuration": { "integrationType": "Agent" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let integration: Value = resp.json().await.unwrap();
    assert_eq!(integration["integrationTypeId"], "Agent");

    // SIGTERM drains and exits promptly with success.
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(10)).expect("exits after SIGTERM");
    assert!(status.success(), "{status}");
    assert!(dir.path().join("switchboard.db").exists());
    assert!(dir.path().join("switchboard.db.key").exists());

    // A second start on the same database prints nothing: the tenant exists.
    let (mut child, base) = spawn_serve(dir.path(), &[]);
    wait_ready(&base).await;
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(10)).expect("exits");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut rest).unwrap();
    assert_eq!(rest, "", "nothing printed on a second start");
}

#[test]
fn tenant_create_prints_credentials_that_work_and_refuses_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let out = binary()
        .args(["tenant", "create", "--name", "acme"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert!(v["tenantId"].as_str().is_some());
    assert!(v["portal"]["clientSecret"]
        .as_str()
        .is_some_and(|s| s.len() >= 43));
    assert!(v["engine"]["clientId"].as_str().is_some());
    let again = binary()
        .args(["tenant", "create", "--name", "acme"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn bad_configuration_stops_the_start_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("SWITCHBOARD_TOKEN_TTL", "0"),
        ("SWITCHBOARD_RETRY_SCHEDULE", "1x"),
        ("SWITCHBOARD_WEBHOOK_TIMEOUT", "soon"),
        ("SWITCHBOARD_ALLOW_PRIVATE_WEBHOOKS", "maybe"),
        ("SWITCHBOARD_BIND", "not-an-address"),
        ("SWITCHBOARD_LOG_FORMAT", "xml"),
        ("SWITCHBOARD_ENCRYPTION_KEY", "c2hvcnQ="),
    ] {
        let out = binary()
            .arg("serve")
            .current_dir(dir.path())
            .env(var, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={value} must stop the start");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var), "{var}={value}: {err}");
    }
}

#[test]
fn openapi_command_prints_the_document() {
    let out = binary().arg("openapi").output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["info"]["title"], "Switchboard");
}

#[tokio::test]
async fn a_token_lifetime_over_30_days_stops_the_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    // One second over 30 days, as a variable and as a flag: the start stops, saying why,
    // before it opens a database.
    for (how, args, env) in [
        (
            "SWITCHBOARD_TOKEN_TTL",
            vec!["serve"],
            vec![("SWITCHBOARD_TOKEN_TTL", "2592001")],
        ),
        (
            "--token-ttl",
            vec!["serve", "--token-ttl", "2592001"],
            vec![],
        ),
    ] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = binary();
        cmd.args(&args)
            .current_dir(dir.path())
            .env("SWITCHBOARD_BIND", format!("127.0.0.1:{port}"))
            .env_remove("DATABASE_URL")
            .env_remove("SWITCHBOARD_TOKEN_TTL")
            .env_remove("SWITCHBOARD_ENCRYPTION_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let Some(status) = wait_exit(&mut child, Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{how}=2592001: the server started with a token lifetime over 30 days");
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(!status.success(), "{how}=2592001 must stop the start");
        assert!(err.contains(how), "{how}=2592001: {err}");
        assert!(err.contains("2592000"), "the limit is named: {err}");
        assert!(
            !dir.path().join("switchboard.db").exists(),
            "{how}: refused before a database is opened"
        );
    }

    // 30 days exactly is accepted, and is the lifetime of the tokens.
    let mut node = Node::spawn(
        "ttl-30-days",
        dir.path(),
        &[("SWITCHBOARD_TOKEN_TTL", "2592000")],
    );
    let creds = node.credentials().await;
    node.wait_ready().await;
    let (status, body) = read(
        reqwest::Client::new()
            .post(node.url("/connect/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", creds["portal"]["clientId"].as_str().unwrap()),
                (
                    "client_secret",
                    creds["portal"]["clientSecret"].as_str().unwrap(),
                ),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 2_592_000, "{body}");
    assert!(node.stop().success());
}

#[tokio::test]
async fn the_json_log_format_writes_one_json_object_per_line_at_the_level_of_rust_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::spawn(
        "json-logs",
        dir.path(),
        &[
            ("SWITCHBOARD_LOG_FORMAT", "json"),
            ("RUST_LOG", "info,switchboard=debug"),
        ],
    );
    node.credentials().await;
    node.wait_ready().await;
    let resp = reqwest::Client::new()
        .get(node.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(node.stop().success());

    let log = std::fs::read_to_string(&node.log).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| panic!("a log line that is not a JSON object: {l}"))
        })
        .collect();
    assert!(!lines.is_empty(), "nothing logged");
    for line in &lines {
        let time = line["timestamp"].as_str().unwrap_or_default();
        assert!(
            switchboard_domain::time::parse_rfc3339(time).is_some(),
            "an RFC 3339 timestamp in {line}"
        );
        let level = line["level"].as_str().unwrap_or_default();
        assert!(
            ["ERROR", "WARN", "INFO", "DEBUG"].contains(&level),
            "a level in {line}"
        );
        let target = line["target"].as_str().unwrap_or_default();
        assert!(!target.is_empty(), "a target in {line}");
        assert!(
            line["fields"]["message"].is_string(),
            "a message in the fields of {line}"
        );
        // The level comes from RUST_LOG: debug for the server's own targets only.
        if level == "DEBUG" {
            assert!(target.starts_with("switchboard"), "{line}");
        }
    }
    let said = |message: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["message"] == message)
            .unwrap_or_else(|| panic!("no line says {message:?} in {log}"))
    };
    assert_eq!(said("switchboard listening")["level"], "INFO");
    assert_eq!(said("shutdown requested: draining")["level"], "INFO");
    // A request, with its fields as JSON values.
    let request = lines
        .iter()
        .find(|l| l["fields"]["message"] == "request" && l["fields"]["path"] == "/healthz")
        .unwrap_or_else(|| panic!("no request line for /healthz in {log}"));
    assert_eq!(request["level"], "DEBUG");
    assert_eq!(request["fields"]["method"], "GET");
    assert_eq!(request["fields"]["status"], 200);
    assert!(request["fields"]["ms"].is_number(), "{request}");
}

/// The harness itself: a test server that cannot start stops the test there, saying why,
/// instead of letting it go on against nothing.
#[tokio::test]
#[should_panic(expected = "stopped before it answered /healthz")]
async fn a_test_server_that_cannot_start_stops_the_test_saying_so() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    TestServer::start_with(Backend::Sqlite, move |args| {
        args.redis_url = Some(format!("redis://{closed}"));
    })
    .await;
}

#[tokio::test]
async fn an_invented_method_is_counted_as_other() {
    let s = TestServer::start().await;
    let method = reqwest::Method::from_bytes(b"FOOBAR").expect("a method");
    let resp = s
        .http
        .request(method, s.url("/healthz"))
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let text = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains(&format!(
            r#"http_requests_total{{method="other",status="{status}"}}"#
        )),
        "{text}"
    );
    assert!(!text.contains("FOOBAR"), "{text}");
    assert!((400..500).contains(&status), "{status}");
    s.stop().await;
}

/// Fills a path template's parameters with ids that exist nowhere (`Direct` for a channel).
fn concrete(template: &str) -> String {
    let mut path = template.to_owned();
    while let Some(open) = path.find('{') {
        let close = open + path[open..].find('}').unwrap();
        let value = if &path[open..=close] == "{channelType}" {
            "Direct".to_owned()
        } else {
            uuid::Uuid::now_v7().to_string()
        };
        path.replace_range(open..=close, &value);
    }
    path
}

#[tokio::test]
async fn a_405_lists_the_paths_methods_in_allow() {
    let s = TestServer::start().await;
    let doc: Value = s
        .http
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checked = 0;
    for (template, ops) in doc["paths"].as_object().unwrap() {
        // The Smooch-compatible routes check the token before anything else, and answer an
        // unknown route 404 in Smooch's shape (SPEC 8.1): tests/it/smooch_auth.rs.
        if template.starts_with("/v1.1/") {
            continue;
        }
        let mut declared: Vec<String> = ops
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        if declared.iter().any(|m| m == "GET") {
            declared.push("HEAD".to_owned());
        }
        declared.sort();
        // Every undeclared method of RFC 9110 (and PATCH) answers 405 with the declared ones.
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"] {
            if declared.iter().any(|m| m == method) {
                continue;
            }
            let path = concrete(template);
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let resp = s
                .http
                .request(method.clone(), s.url(&path))
                .send()
                .await
                .unwrap();
            let allow = resp
                .headers()
                .get("allow")
                .map(|v| v.to_str().unwrap().to_owned());
            let (status, body) = read(resp).await;
            assert_eq!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {body}"
            );
            assert_eq!(body["status"], 405, "{method} {path}: {body}");
            let allow = allow.unwrap_or_else(|| panic!("{method} {path} has no Allow"));
            let mut allowed: Vec<String> = allow.split(", ").map(str::to_owned).collect();
            allowed.sort();
            assert_eq!(allowed, declared, "Allow of {method} {path}");
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} undeclared methods tried");
    // The routes outside the document too.
    let resp = s.http.post(s.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "GET, HEAD");
    s.stop().await;
}

/// The schema keywords of `name`'s property `property` in the served document.
fn declared(doc: &Value, schema: &str, property: &str) -> Value {
    doc["components"]["schemas"][schema]["properties"][property].clone()
}

/// The schema of query parameter `name` of `operation_id`.
fn declared_parameter(doc: &Value, operation_id: &str, name: &str) -> Value {
    for ops in doc["paths"].as_object().unwrap().values() {
        for op in ops.as_object().unwrap().values() {
            if op["operationId"] == operation_id {
                for p in op["parameters"].as_array().unwrap() {
                    if p["name"] == name {
                        return p.clone();
                    }
                }
            }
        }
    }
    panic!("{operation_id} has no parameter {name}")
}

#[tokio::test]
async fn the_documents_bounds_are_the_servers() {
    for backend in backends("the_documents_bounds_are_the_servers") {
        let s = TestServer::start_on(backend).await;
        let doc: Value = serde_json::from_str(&switchboard_api::openapi_json()).unwrap();
        let t = &s.a.portal;

        // pageSize and pageNumber: each bound accepted, one past it refused.
        let size = declared_parameter(&doc, "hubs.list", "pageSize")["schema"].clone();
        let number = declared_parameter(&doc, "hubs.list", "pageNumber")["schema"].clone();
        let (min, max) = (
            size["minimum"].as_i64().unwrap(),
            size["maximum"].as_i64().unwrap(),
        );
        assert_eq!((min, max), (1, 100));
        for (query, ok) in [
            (format!("pageSize={min}"), true),
            (format!("pageSize={max}"), true),
            (format!("pageSize={}", min - 1), false),
            (format!("pageSize={}", max + 1), false),
            (format!("pageNumber={}", number["minimum"]), true),
            (format!("pageNumber={}", number["maximum"]), true),
            ("pageNumber=-1".to_owned(), false),
        ] {
            let (st, b) = s.get(&format!("/api/v1/hubs?{query}"), t).await;
            if ok {
                assert_eq!(st, StatusCode::OK, "{query}: {b}");
            } else {
                assert_error(st, &b, 400, "PRT", &[206]);
            }
        }

        // A hub's statusId, closeDormantConversation and name.
        let status = declared(&doc, "HubIn", "statusId");
        for id in status["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| !v.is_null())
        {
            let (st, b) = s
                .post(
                    "/api/v1/hubs",
                    t,
                    json!({ "name": format!("s{id}"), "description": "", "statusId": id }),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "statusId {id}: {b}");
        }
        let (st, b) = s
            .post(
                "/api/v1/hubs",
                t,
                json!({ "name": "s", "description": "", "statusId": 2001 }),
            )
            .await;
        assert_error(st, &b, 400, "PRT", &[206]);
        let max = declared(&doc, "HubIn", "closeDormantConversation")["maximum"]
            .as_i64()
            .unwrap();
        let (st, b) = s
            .post(
                "/api/v1/hubs",
                t,
                json!({ "name": "d", "description": "", "closeDormantConversation": max }),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        let (st, b) = s
            .post(
                "/api/v1/hubs",
                t,
                json!({ "name": "e", "description": "", "closeDormantConversation": max + 1 }),
            )
            .await;
        assert_error(st, &b, 400, "PRT", &[206]);
        let name = declared(&doc, "HubIn", "name");
        let longest = name["maxLength"].as_u64().unwrap() as usize;
        let (st, b) = s
            .post(
                "/api/v1/hubs",
                t,
                json!({ "name": "n".repeat(longest), "description": "" }),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        for bad in [
            "n".repeat(longest + 1),
            String::new(),
            " \u{3000}\t".to_owned(),
        ] {
            let (st, b) = s
                .post("/api/v1/hubs", t, json!({ "name": bad, "description": "" }))
                .await;
            assert_error(st, &b, 400, "PRT", &[206]);
        }
        // `null` is absent wherever the document says nullable.
        assert_eq!(declared(&doc, "HubIn", "statusId")["nullable"], true);
        let (st, b) = s
            .post(
                "/api/v1/hubs",
                t,
                json!({ "name": "null", "description": "", "statusId": null }),
            )
            .await;
        assert_eq!((st, &b["statusId"]), (StatusCode::OK, &json!(2000)), "{b}");

        // Deliveries' filters: a UUID and a status of the enum; empty ones are refused.
        let filter = declared_parameter(&doc, "deliveries.list", "integrationId");
        assert_eq!(filter["schema"]["format"], "uuid");
        let statuses =
            declared_parameter(&doc, "deliveries.list", "status")["schema"]["enum"].clone();
        for st in statuses.as_array().unwrap() {
            let (code, b) = s
                .get(
                    &format!("/api/v1/deliveries?status={}", st.as_str().unwrap()),
                    t,
                )
                .await;
            assert_eq!(code, StatusCode::OK, "{b}");
        }
        for query in [
            "status=",
            "status=lost",
            "integrationId=",
            "integrationId=x",
        ] {
            let (code, b) = s.get(&format!("/api/v1/deliveries?{query}"), t).await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{query}: {b}");
        }

        // The activities list: `type` is required, `leid` an integer.
        let party = declared_parameter(&doc, "activities.list", "type");
        assert_eq!(party["required"], true);
        assert_eq!(
            declared_parameter(&doc, "activities.list", "leid")["schema"]["type"],
            "integer"
        );
        s.stop().await;
    }
}
