//! The WebChat widget and its demo page (SPEC 7.18.4, 7.21): the assets over HTTP (types,
//! `ETag`/304, CORS and CORP, the demo's CSP and its 400s), and the widget driven in headless
//! Chromium against the demo page by `tests/browser/webchat.mjs` (playwright-core, never a
//! browser download) when `/usr/bin/chromium` (or `SB_CHROMIUM`), `node` and `npm` exist;
//! otherwise the browser test prints a `SKIPPED` line saying what to install.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use reqwest::{header, Method, StatusCode};
use serde_json::json;

use crate::support::*;

const SKIP_HOW: &str = "install chromium and node (apt-get install chromium nodejs npm) to run it";

#[tokio::test]
async fn widget_js_is_served_with_its_headers_and_an_etag() {
    let s = TestServer::start().await;
    let resp = s
        .http
        .get(s.url("/webchat/v1/widget.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    let get = |n: &str| {
        h.get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(get("content-type"), "application/javascript; charset=utf-8");
    assert_eq!(get("cache-control"), "public, max-age=300");
    assert_eq!(get("access-control-allow-origin"), "*");
    assert_eq!(get("cross-origin-resource-policy"), "cross-origin");
    let etag = get("etag");
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "{etag}"
    );
    let body = resp.bytes().await.unwrap();
    assert!(
        body.len() <= 32 * 1024,
        "widget.js weighs {} bytes",
        body.len()
    );
    assert!(std::str::from_utf8(&body)
        .unwrap()
        .contains("Switchboard WebChat widget"));

    // The tag is a hash of the content: the same on every answer, and a 304 when it matches.
    for tag in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
    ] {
        let resp = s
            .http
            .get(s.url("/webchat/v1/widget.js"))
            .header(header::IF_NONE_MATCH, tag.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::NOT_MODIFIED,
            "If-None-Match {tag}"
        );
        assert_eq!(resp.headers()["etag"], etag.as_str());
        assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
        assert!(resp.bytes().await.unwrap().is_empty());
    }
    let resp = s
        .http
        .get(s.url("/webchat/v1/widget.js"))
        .header(header::IF_NONE_MATCH, "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["etag"], etag.as_str());
    assert_eq!(resp.bytes().await.unwrap(), body);
    s.stop().await;
}

#[tokio::test]
async fn the_demo_page_checks_its_integration_id_and_sets_its_csp() {
    let s = TestServer::start().await;
    let (status, body) = s.call(Method::GET, "/webchat/v1/demo", None, None).await;
    assert_error(status, &body, 400, "ENG", &[200]);
    let (status, body) = s
        .call(Method::GET, "/webchat/v1/demo?integrationId=", None, None)
        .await;
    assert_error(status, &body, 400, "ENG", &[200]);
    let (status, body) = s
        .call(
            Method::GET,
            "/webchat/v1/demo?integrationId=nope",
            None,
            None,
        )
        .await;
    assert_error(status, &body, 400, "ENG", &[203]);

    // Any well-formed id gets the page: nothing is looked up.
    let id = uuid::Uuid::new_v4();
    let resp = s
        .http
        .get(s.url(&format!("/webchat/v1/demo?integrationId={}", id.simple())))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        resp.headers()["content-security-policy"],
        "default-src 'self'; connect-src 'self' ws: wss:; img-src * data:; media-src *; \
         style-src 'self' 'unsafe-inline'"
    );
    let page = resp.text().await.unwrap();
    assert!(
        page.contains(&format!(
            "<script src=\"widget.js\" data-integration-id=\"{}\" data-open=\"true\"",
            id.hyphenated()
        )),
        "{page}"
    );
    assert!(page.contains(&format!("{}/webchat/v1/widget.js", s.base)));
    s.stop().await;
}

/// The browser's binary: `SB_CHROMIUM`, else `/usr/bin/chromium`.
fn chromium() -> PathBuf {
    std::env::var_os("SB_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn runs(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `program args` in `dir` with `envs`; panics with its output unless it succeeds.
async fn run(program: &str, args: &[&str], dir: &Path, envs: &[(&str, String)]) -> String {
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{text}",
        out.status
    );
    text
}

/// `npm install` of the browser tests' pinned packages (playwright-core, acorn) into
/// `tests/browser`; never a browser download.
async fn npm_install(dir: &Path) {
    // The tests of this file run in parallel: one install at a time into the folder.
    static INSTALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _once = INSTALL.lock().await;
    run(
        "npm",
        &["install", "--no-audit", "--no-fund", "--loglevel=error"],
        dir,
        &[],
    )
    .await;
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// SPEC 7.18.4: plain ES2018, checked by parsing the served file with acorn at ES2018.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_js_is_plain_es2018() {
    if !runs("node") || !runs("npm") {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {} : install node (apt-get install nodejs npm) to run it",
            test_name("webchat_browser::widget_js_is_plain_es2018")
        );
        return;
    }
    let dir = browser_dir();
    npm_install(&dir).await;
    let widget = Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/assets/widget.js");
    let out = run(
        "node",
        &["es2018.mjs", &widget.display().to_string()],
        &dir,
        &[],
    )
    .await;
    assert!(out.contains("parses as ES2018"), "{out}");
}

/// SPEC 7.21: the demo page opens the widget; a typed message (and typing) reaches an agent's
/// websocket; the agent's typing, text, image and card render, a `reply` button sends its title,
/// a `postback` a payload event; every other message type renders, markup stays text; a reload
/// resumes the conversation with its history; phone-sized layout; 4410 starts a new
/// conversation; a second tab shares it (echo), renews on 4401 and reconnects after a drop with
/// the 1 s backoff; an unread badge; pausing the integration shows the closed state.
/// Screenshots (desktop 1280×800, phone 390×844) go to a temp folder whose paths are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_works_in_chromium() {
    if !chromium().exists() || !runs("node") || !runs("npm") {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {} : {SKIP_HOW}",
            test_name("webchat_browser::the_widget_works_in_chromium")
        );
        return;
    }
    let dir = browser_dir();
    npm_install(&dir).await;

    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "web").await;
    let agent = s
        .direct(&s.a.portal, &hub, "agents", "Agent", json!({}))
        .await["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let webchat = s
        .integration(
            &s.a.portal,
            &hub,
            json!({ "name": "site", "channelId": "WebChat",
                    "configuration": { "allowedOrigins": ["localhost"] } }),
        )
        .await["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    // The page is served from `localhost`, the host the integration allows.
    let base = s.base.replace("127.0.0.1", "localhost");
    let shots = std::env::temp_dir().join(format!("switchboard-webchat-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&shots).unwrap();
    let out = run(
        "node",
        &["webchat.mjs"],
        &dir,
        &[
            ("SB_BASE", base),
            ("SB_WEBCHAT_ID", webchat),
            ("SB_AGENT_ID", agent),
            ("SB_ENGINE_TOKEN", s.a.engine.clone()),
            ("SB_PORTAL_TOKEN", s.a.portal.clone()),
            ("SB_SHOT_DIR", shots.display().to_string()),
            ("SB_CHROMIUM", chromium().display().to_string()),
        ],
    )
    .await;
    // The steps and the screenshots' paths, past the harness's capture.
    {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{out}");
    }
    assert!(out.contains("all steps passed"), "{out}");
    for name in ["desktop", "phone"] {
        let shot = shots.join(format!("webchat-{name}.png"));
        assert!(
            std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000),
            "{}",
            shot.display()
        );
    }
    s.stop().await;
}
