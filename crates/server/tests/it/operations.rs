//! Operations (SPEC 6): health, readiness, metrics, the OpenAPI document and the explorer, the
//! CLI, the default tenant on first start, configuration errors, graceful shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

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
    for p in [
        "/connect/token",
        "/api/v1/tenants/clients/{clientId}",
        "/api/v1/tenants/clients/{clientId}/tokens",
        "/api/v1/tenants/clients/{clientId}/tokens/{tokenId}",
        "/api/v1/hubs",
        "/api/v1/hubs/{hubId}",
        "/api/v1/integrations",
        "/api/v1/integrations/hubs/{id}",
        "/api/v1/integrations/{integrationId}",
        "/api/v1/integrations/hubs/{hubId}/{channelType}",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "openapi.json lacks {p}");
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
    assert!(resp
        .text()
        .await
        .unwrap()
        .to_lowercase()
        .contains("swagger"));
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
