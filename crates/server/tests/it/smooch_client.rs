//! The Smooch compatibility API (SPEC 8) driven by the real npm client (SPEC 8.12):
//! `tests/smooch/client.mjs` runs every call of 8.4-8.9 that `smooch-core` 8.11.4 (`/v1.1`) and
//! 6.6.0 (`/v1`) offer against a server with providers offline, with an account key made by the
//! portal route (8.3); a real receiver then checks 8.7's webhook bodies and `X-API-Key`. The
//! README's "Coming from Smooch" example is `tests/smooch/example.mjs`, run here too and checked
//! to be in the README verbatim. Without `node` and `npm` the client tests print a `SKIPPED` line.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;
use crate::webhooks::{Received, Receiver};

const SKIP_HOW: &str = "install node (apt-get install nodejs npm) to run it";

fn smooch_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smooch")
}

fn runs(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `true` when node and npm exist; else a `SKIPPED` line names the test.
fn have_node(test: &str) -> bool {
    if runs("node") && runs("npm") {
        return true;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {} : {SKIP_HOW}",
        test_name(test)
    );
    false
}

/// Runs `program args` in `dir` with `envs`; answers its success and its output.
async fn run(program: &str, args: &[&str], dir: &Path, envs: &[(&str, String)]) -> (bool, String) {
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `npm install` of the pinned smooch-core versions into `tests/smooch`, once at a time.
async fn npm_install() {
    static INSTALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _once = INSTALL.lock().await;
    let (ok, out) = run(
        "npm",
        &["install", "--no-audit", "--no-fund", "--loglevel=error"],
        &smooch_dir(),
        &[],
    )
    .await;
    assert!(ok, "npm install in tests/smooch failed:\n{out}");
}

/// An account key of tenant a, made by the portal route (SPEC 8.3): `(keyId, secret)`.
async fn account_key(s: &TestServer, name: &str) -> (String, String) {
    let (status, body) = s
        .post(
            "/api/v1/tenants/smooch-keys",
            &s.a.portal,
            json!({ "name": name }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "POST /api/v1/tenants/smooch-keys: {body}"
    );
    let key_id = body["keyId"].as_str().expect("keyId").to_owned();
    let secret = body["secret"].as_str().expect("secret").to_owned();
    assert!(key_id.starts_with("act_"), "{body}");
    assert_eq!(body["name"], name, "{body}");
    (key_id, secret)
}

/// Waits (10 s at most) for a POST on `path` whose first message has `text`; answers the POSTs
/// on `path` up to and including it, their bodies read as JSON.
async fn wait_for_text(r: &Receiver, path: &str, text: &str) -> Vec<Received> {
    for _ in 0..400 {
        let on_path: Vec<Received> = r.seen().into_iter().filter(|g| g.path == path).collect();
        if let Some(i) = on_path
            .iter()
            .position(|g| g.json()["messages"][0]["text"] == text)
        {
            return on_path[..=i].to_vec();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "no webhook POST on {path} with the message {text:?}; got {} POSTs",
        r.seen().len()
    );
}

/// The `RESULT {…}` line client.mjs prints last.
fn result_line(out: &str) -> Value {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in client.mjs's output:\n{out}"));
    serde_json::from_str(line).unwrap()
}

/// Runs client.mjs for smooch-core `client` (8 or 6); panics with its steps unless all passed.
async fn run_client(s: &TestServer, key: &(String, String), client: &str, receiver: &str) -> Value {
    let (ok, out) = run(
        "node",
        &["client.mjs"],
        &smooch_dir(),
        &[
            ("SB_URL", s.base.clone()),
            ("SB_KEY_ID", key.0.clone()),
            ("SB_KEY_SECRET", key.1.clone()),
            ("SB_CLIENT", client.to_owned()),
            ("SB_RECEIVER", receiver.to_owned()),
        ],
    )
    .await;
    assert!(
        ok && out.contains("all steps passed"),
        "client.mjs with smooch-core {client} failed:\n{out}"
    );
    result_line(&out)
}

/// SPEC 8.7 at a real receiver: the kept webhook of a client run (default triggers of its
/// prefix) got the app user's message, Smooch-shaped, with `X-API-Key` and §5.5's headers.
async fn check_webhook(r: &Receiver, client: &str, result: &Value) {
    let path = format!("/v{client}");
    let hook = &result["webhook"];
    let secret = hook["secret"].as_str().expect("webhook secret");
    let user_text = result["userText"].as_str().unwrap();
    let got = wait_for_text(r, &path, user_text).await;
    let d = got.last().unwrap();

    assert_eq!(d.header("x-api-key"), secret, "{d:#?}");
    assert!(
        d.header("content-type").starts_with("application/json"),
        "{d:#?}"
    );
    assert!(!d.header("webhook-id").is_empty(), "{d:#?}");
    assert!(!d.header("webhook-timestamp").is_empty(), "{d:#?}");
    assert!(!d.header("webhook-signature").is_empty(), "{d:#?}");

    let b = &d.json();
    if client == "8" {
        assert_eq!(hook["triggers"], json!(["message:appUser"]), "{hook}");
        assert_eq!(b["trigger"], "message:appUser", "{b:#}");
    } else {
        // `/v1`'s default trigger is `message`; the body names the trigger the message fired.
        assert_eq!(hook["triggers"], json!(["message"]), "{hook}");
        assert_eq!(b["trigger"], "message:appUser", "{b:#}");
    }
    assert_eq!(b["version"], "v1.1", "{b:#}");
    assert_eq!(b["app"]["_id"], result["appId"], "{b:#}");
    assert_eq!(b["appUser"]["_id"], result["appUser"]["_id"], "{b:#}");
    assert_eq!(b["appUser"]["userId"], result["appUser"]["userId"], "{b:#}");
    assert_eq!(b["appUser"]["conversationStarted"], true, "{b:#}");
    assert!(b["conversation"]["_id"].is_string(), "{b:#}");
    assert!(b["timestamp"].is_f64() || b["timestamp"].is_u64(), "{b:#}");
    assert!(b.get("client").is_none(), "includeClient is false: {b:#}");
    let messages = b["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "{b:#}");
    let m = &messages[0];
    assert_eq!(m["type"], "text", "{b:#}");
    assert_eq!(m["text"], user_text, "{b:#}");
    assert_eq!(m["role"], "appUser", "{b:#}");
    assert_eq!(m["authorId"], result["appUser"]["_id"], "{b:#}");
    assert_eq!(m["source"]["type"], "api", "{b:#}");
    assert!(m["received"].is_f64() || m["received"].is_u64(), "{b:#}");
    assert!(m["_id"].is_string(), "{b:#}");

    // Deliveries keep order (§5.5): the business's first message came before the user's.
    let biz: Vec<&Received> = got
        .iter()
        .filter(|r| r.json()["messages"][0]["text"] == result["bizText"])
        .collect();
    if client == "8" {
        // `/v1.1`: only `message:appUser`, and a whole app user only when asked.
        assert!(
            biz.is_empty(),
            "message:appUser fired on an appMaker message: {biz:#?}"
        );
        assert!(b["appUser"].get("clients").is_none(), "{b:#}");
        assert!(
            got.iter().all(|r| r.json()["trigger"] == "message:appUser"),
            "{got:#?}"
        );
    } else {
        // `/v1`: `message` fires on both sides, and v1 payloads hold the whole app user.
        assert_eq!(biz.len(), 1, "{got:#?}");
        assert_eq!(biz[0].json()["messages"][0]["role"], "appMaker", "{got:#?}");
        assert_eq!(biz[0].json()["trigger"], "message:appMaker", "{got:#?}");
        assert!(b["appUser"]["clients"].is_array(), "{b:#}");
        assert_eq!(b["appUser"]["givenName"], "Augusta", "{b:#}");
    }
}

/// SPEC 8.12: smooch-core 8.11.4 and 6.6.0 through every call of 8.4-8.9 they offer, on SQLite
/// and (with `TEST_DATABASE_URL`) PostgreSQL, and 8.7's webhooks at a real receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smooch_core_8_and_6_drive_every_call() {
    const TEST: &str = "smooch_client::smooch_core_8_and_6_drive_every_call";
    if !have_node(TEST) {
        return;
    }
    npm_install().await;
    for backend in backends(TEST) {
        let s = TestServer::start_on(backend).await;
        let r = Receiver::start().await;
        let key = account_key(&s, "smooch-core").await;
        for client in ["8", "6"] {
            let result = run_client(&s, &key, client, &r.url("")).await;
            check_webhook(&r, client, &result).await;
        }
        s.stop().await;
    }
}

/// The README's example (`tests/smooch/example.mjs`) runs as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_runs() {
    if !have_node("smooch_client::the_readme_example_runs") {
        return;
    }
    npm_install().await;
    let s = TestServer::start().await;
    let r = Receiver::start().await;
    let (key_id, secret) = account_key(&s, "example").await;
    let (ok, out) = run(
        "node",
        &["example.mjs"],
        &smooch_dir(),
        &[
            ("SB_URL", s.base.clone()),
            ("SB_KEY_ID", key_id),
            ("SB_KEY_SECRET", secret),
            ("SB_WEBHOOK_TARGET", r.url("/example")),
        ],
    )
    .await;
    assert!(ok, "example.mjs failed:\n{out}");
    let line = out.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {out}"));
    for k in [
        "appId",
        "keyId",
        "integrationId",
        "appUserId",
        "messageId",
        "conversationId",
    ] {
        assert!(v[k].is_string(), "{k}: {v}");
    }
    assert_eq!(v["webhook"]["triggers"], json!(["message:appUser"]), "{v}");
    // The app exists as a hub of the tenant, with the integration in it.
    let (status, hub) = s
        .get(
            &format!("/api/v1/hubs/{}", v["appId"].as_str().unwrap()),
            &s.a.portal,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{hub}");
    s.stop().await;
}

/// The README carries `tests/smooch/example.mjs` verbatim (so the documented script is the tested
/// one).
#[test]
fn the_readme_carries_the_example_verbatim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let example = std::fs::read_to_string(smooch_dir().join("example.mjs")).unwrap();
    assert!(
        readme.contains(&format!("```js\n{example}```")),
        "README.md must include crates/server/tests/smooch/example.mjs verbatim in a ```js block"
    );
    assert!(readme.contains("## Coming from Smooch"), "README section");
}
