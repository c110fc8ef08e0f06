//! `TestServer`: a real server on 127.0.0.1:0 over a fresh database (a temp SQLite file, or a
//! fresh PostgreSQL database when `TEST_DATABASE_URL` is set and the test asks for it), with two
//! tenants and their tokens.

#![allow(dead_code)]

use std::net::TcpListener;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use switchboard::{ServeArgs, Settings};
use switchboard_storage::{EncryptionKey, NewTenant, Store};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Which database a test server uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL admin URL for tests, when configured.
pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// The name of the running test: the harness names each test's thread after it (`module::test`);
/// `fallback` when the thread has no such name.
pub fn test_name(fallback: &str) -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => fallback.to_owned(),
    }
}

/// Says on stderr that (a part of) the running test did not run `on` a service, and what turns
/// it on: one line per skipped test, written straight to stderr, past the test harness's
/// capture, so that a reader of `cargo test` sees how many did not run.
pub fn skipped(test: &str, on: &str, how: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {} on {on}: set {how} to run it",
        test_name(test)
    );
}

/// What turns the PostgreSQL runs on.
pub const POSTGRES_HOW: &str = "TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test";

/// The backends to run a test body on: SQLite always, PostgreSQL when `TEST_DATABASE_URL` is set
/// (else a `SKIPPED` line names the test).
pub fn backends(test: &str) -> Vec<Backend> {
    if postgres_url().is_some() {
        vec![Backend::Sqlite, Backend::Postgres]
    } else {
        skipped(test, "PostgreSQL", POSTGRES_HOW);
        vec![Backend::Sqlite]
    }
}

/// A tenant's credentials and tokens.
pub struct Tenant {
    pub creds: NewTenant,
    pub portal: String,
    pub engine: String,
}

impl Tenant {
    pub fn id(&self) -> String {
        self.creds.tenant_id.to_string()
    }
}

pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub a: Tenant,
    pub b: Tenant,
    pub database_url: String,
    pub key: [u8; 32],
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), switchboard::Error>>>,
    _dir: tempfile::TempDir,
}

/// A fresh database URL for `backend`.
pub async fn fresh_database(backend: Backend, dir: &tempfile::TempDir) -> String {
    match backend {
        Backend::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("switchboard.db").display()
        ),
        Backend::Postgres => {
            use sea_orm::ConnectionTrait;
            let admin = postgres_url().expect("TEST_DATABASE_URL");
            let name = format!("sb_it_{}", uuid::Uuid::new_v4().simple());
            let conn = sea_orm::Database::connect(&admin)
                .await
                .expect("connect to TEST_DATABASE_URL");
            conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            let (base, _) = admin
                .rsplit_once('/')
                .expect("a database URL ends with /name");
            format!("{base}/{name}")
        }
    }
}

impl TestServer {
    /// A server on SQLite with default settings.
    pub async fn start() -> Self {
        Self::start_with(Backend::Sqlite, |_| {}).await
    }

    /// A server on `backend` with default settings.
    pub async fn start_on(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// A server on `backend`, with settings adjusted by `adjust`.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut ServeArgs)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = fresh_database(backend, &dir).await;
        let key = EncryptionKey::generate().0;
        let store = Store::connect(&database_url, EncryptionKey(key))
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        let ta = store
            .create_tenant(&format!("a-{}", uuid::Uuid::new_v4()))
            .await
            .expect("tenant a");
        let tb = store
            .create_tenant(&format!("b-{}", uuid::Uuid::new_v4()))
            .await
            .expect("tenant b");
        drop(store);

        let mut serve = ServeArgs::default();
        serve.allow_private_webhooks = true;
        // No test reaches a real provider: channel tests turn providers live and point them at
        // their fakes; every other test creates provider integrations offline (SPEC 7.5.3).
        serve.providers = switchboard::config::ProvidersMode::Offline;
        serve.providers_loopback_only = true;
        // Messenger and WhatsApp need an app secret (SPEC 7.6): the server's, unless a test
        // takes it away.
        serve.messenger_app_secret = Some("server-app-secret".to_owned());
        adjust(&mut serve);
        let settings = Settings {
            serve,
            database_url: database_url.clone(),
            encryption_key: switchboard::EncryptionKeyDebug(key),
            create_default_tenant: false,
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(switchboard::run(settings, listener, async move {
            let _ = rx.await;
        }));
        let http = reqwest::Client::new();
        // Wait until it answers; a server that stopped, or never answers, stops the test here.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if handle.is_finished() {
                let outcome = handle.await;
                panic!(
                    "the test server at {base} stopped before it answered /healthz: {outcome:?}"
                );
            }
            if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
                if r.status() == StatusCode::OK {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the test server at {base} did not answer /healthz with 200 within 30 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let mut server = Self {
            base,
            http,
            a: Tenant {
                creds: ta,
                portal: String::new(),
                engine: String::new(),
            },
            b: Tenant {
                creds: tb,
                portal: String::new(),
                engine: String::new(),
            },
            database_url,
            key,
            shutdown: Some(tx),
            handle: Some(handle),
            _dir: dir,
        };
        server.a.portal = server
            .token(
                &server.a.creds.portal.client_id.to_string(),
                &server.a.creds.portal.client_secret.clone(),
            )
            .await;
        server.a.engine = server
            .token(
                &server.a.creds.engine.client_id.to_string(),
                &server.a.creds.engine.client_secret.clone(),
            )
            .await;
        server.b.portal = server
            .token(
                &server.b.creds.portal.client_id.to_string(),
                &server.b.creds.portal.client_secret.clone(),
            )
            .await;
        server.b.engine = server
            .token(
                &server.b.creds.engine.client_id.to_string(),
                &server.b.creds.engine.client_secret.clone(),
            )
            .await;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A token for client credentials; panics unless 200.
    pub async fn token(&self, client_id: &str, secret: &str) -> String {
        let (status, body) = self
            .form(
                "/connect/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", secret),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "token: {body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// POSTs a form to `path` without a token.
    pub async fn form(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .expect("send");
        read(resp).await
    }

    /// Sends `method path` with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.call_full(method, path, token, body).await;
        (status, body)
    }

    /// Like [`call`], also answering the response headers.
    pub async fn call_full(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("send");
        let headers = resp.headers().clone();
        let (status, body) = read(resp).await;
        (status, headers, body)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(&body))
            .await
    }
    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(token), Some(&body)).await
    }
    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Sends `method path` with an optional bearer token and a raw body with an optional
    /// `Content-Type`, for requests `call` cannot make (bad JSON, other media types, huge bodies).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path)).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        read(req.send().await.expect("send")).await
    }

    /// Sends `method path` with a raw `Authorization` header value (or none) and no body.
    pub async fn with_authorization(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(a) = authorization {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        read(req.send().await.expect("send")).await
    }

    /// Creates a hub for the tenant of `token`; answers its id.
    pub async fn hub(&self, token: &str, name: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/hubs",
                token,
                serde_json::json!({ "name": name, "description": "test hub" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "create hub: {body}");
        body["hubId"].as_str().expect("hubId").to_owned()
    }

    /// Creates an integration in `hub`; answers the whole body.
    pub async fn integration(&self, token: &str, hub: &str, body: Value) -> Value {
        let (status, out) = self
            .post(&format!("/api/v1/integrations/hubs/{hub}"), token, body)
            .await;
        assert_eq!(status, StatusCode::OK, "create integration: {out}");
        out
    }

    /// Stops the server gracefully, waits for it, and drops its PostgreSQL database.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
        if let (Some(admin), Some((_, name))) = (postgres_url(), self.database_url.rsplit_once('/'))
        {
            if name.starts_with("sb_it_") {
                use sea_orm::ConnectionTrait;
                if let Ok(conn) = sea_orm::Database::connect(&admin).await {
                    let _ = conn
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Status and JSON body (Null when empty, a string when not JSON).
pub async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Asserts a whole SPEC 1 error body: the status, and each error's code and description suffix.
pub fn assert_error(
    status: StatusCode,
    body: &Value,
    want_status: u16,
    prefix: &str,
    codes: &[u32],
) {
    assert_eq!(status.as_u16(), want_status, "status of {body}");
    assert_eq!(body["status"], want_status, "body status of {body}");
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors in {body}"));
    let got: Vec<u64> = errors
        .iter()
        .map(|e| e["code"].as_u64().unwrap_or(0))
        .collect();
    let want: Vec<u64> = codes.iter().map(|c| u64::from(*c)).collect();
    assert_eq!(got, want, "codes of {body}");
    for e in errors {
        let code = e["code"].as_u64().unwrap_or(0);
        let d = e["description"].as_str().unwrap_or("");
        assert!(
            d.ends_with(&format!("(code: {prefix}{code:06})")),
            "description suffix of {d}"
        );
        assert_eq!(
            e.as_object().map(|o| o.len()),
            Some(2),
            "only code and description in {e}"
        );
    }
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(2),
        "only status and errors in {body}"
    );
}

// ---------------------------------------------------------------------------------------------
// The engine: conversations, activities and websockets.

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl TestServer {
    /// Creates a Direct integration of `integration_type` (Customer, Agent, Bot) with more
    /// configuration keys from `extra`; answers the whole body.
    pub async fn direct(
        &self,
        token: &str,
        hub: &str,
        name: &str,
        integration_type: &str,
        extra: Value,
    ) -> Value {
        let mut configuration = serde_json::json!({ "integrationType": integration_type });
        if let (Some(c), Some(e)) = (configuration.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        self.integration(
            token,
            hub,
            serde_json::json!({ "name": name, "channelId": "Direct", "configuration": configuration }),
        )
        .await
    }

    /// Establishes the conversation of `binding` on `integration`; panics unless 200.
    pub async fn establish(&self, engine: &str, integration: &str, binding: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/conversations/establish",
                engine,
                serde_json::json!({ "integrationId": integration, "binding": binding }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "establish: {body}");
        body
    }

    /// Sends an activity into a conversation over HTTP.
    pub async fn send(&self, engine: &str, conversation: &str, body: Value) -> (StatusCode, Value) {
        self.post(
            &format!("/inbound/customer/v1/direct/activity/{conversation}"),
            engine,
            body,
        )
        .await
    }

    /// Sends a customer text; panics unless 200; answers the `eventId`.
    pub async fn say(&self, engine: &str, conversation: &str, text: &str) -> i64 {
        let (status, body) = self
            .send(
                engine,
                conversation,
                serde_json::json!({ "type": "message", "message": { "type": "text", "text": text } }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "send: {body}");
        body["eventId"].as_i64().expect("eventId")
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!(
            "{}/engine-chat-hub?{query}",
            self.base.replacen("http://", "ws://", 1)
        )
    }

    /// Opens a websocket with an optional bearer token; panics unless upgraded.
    pub async fn ws(&self, query: &str, token: Option<&str>) -> Ws {
        match self.ws_try(query, token).await {
            Ok(ws) => ws,
            Err((status, body)) => panic!("websocket refused: {status} {body}"),
        }
    }

    /// Opens a websocket, or answers the HTTP error of a refused upgrade.
    pub async fn ws_try(
        &self,
        query: &str,
        token: Option<&str>,
    ) -> Result<Ws, (StatusCode, Value)> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = self.ws_url(query).into_client_request().expect("request");
        if let Some(t) = token {
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {t}").parse().expect("header"),
            );
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let status = StatusCode::from_u16(resp.status().as_u16()).expect("status");
                let body = resp
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                Err((status, body))
            }
            Err(e) => panic!("websocket connect failed: {e}"),
        }
    }
}

/// The next JSON text frame (pings and pongs skipped); panics after 10 s or on a close.
pub async fn frame(ws: &mut Ws) -> Value {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = std::time::Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout(deadline, ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .expect("a frame");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Sends a JSON text frame.
pub async fn send_frame(ws: &mut Ws, frame: Value) {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        frame.to_string(),
    ))
    .await
    .expect("send frame");
}

/// Reads until the server closes; answers the close code (text frames before it are skipped
/// and counted in the second value).
pub async fn close_code(ws: &mut Ws) -> (u16, usize) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut skipped = 0;
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(30), ws.next())
            .await
            .expect("a close within 30 s");
        match msg {
            Some(Ok(Message::Close(Some(f)))) => return (u16::from(f.code), skipped),
            Some(Ok(Message::Close(None))) => return (1005, skipped),
            Some(Ok(Message::Text(_))) => skipped += 1,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("socket failed before a close frame: {e}"),
            None => panic!("socket ended without a close frame"),
        }
    }
}

/// Asserts that no text frame comes within `ms` milliseconds.
pub async fn quiet(ws: &mut Ws, ms: u64) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(ms);
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("expected nothing, got {other:?}"),
        }
    }
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Returns once the system clock reads `t` or later: for behaviour that turns on a time the
/// server compares with its clock (an `exp`, an expiration, a `modified` that must move).
pub async fn until_system_time(t: std::time::SystemTime) {
    while let Ok(left) = t.duration_since(std::time::SystemTime::now()) {
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left).await;
    }
}

/// Returns once the Unix time in seconds is `secs` or later.
pub async fn until_unix(secs: i64) {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    until_system_time(at).await;
}

/// The base64 Ed25519 signature of `message` by a private key in hex, as an integration signs.
pub fn sign(private_hex: &str, message: &[u8]) -> String {
    use base64::Engine;
    use ed25519_dalek::Signer;
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = u8::from_str_radix(&private_hex[2 * i..2 * i + 2], 16).expect("hex key");
    }
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    base64::engine::general_purpose::STANDARD.encode(key.sign(message).to_bytes())
}

/// A fresh PostgreSQL database, dropped (even after a panic) when this guard goes.
pub struct Database {
    admin: String,
    name: String,
    pub url: String,
}

impl Database {
    pub async fn create(admin: &str) -> Self {
        use sea_orm::ConnectionTrait;
        let name = format!("sb_it_{}", uuid::Uuid::new_v4().simple());
        let conn = sea_orm::Database::connect(admin)
            .await
            .expect("connect to TEST_DATABASE_URL");
        conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let (base, _) = admin
            .rsplit_once('/')
            .expect("a database URL ends with /name");
        Self {
            admin: admin.to_owned(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot block on another future: a thread
        // with a runtime of its own does the work.
        let admin = self.admin.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                use sea_orm::ConnectionTrait;
                if let Ok(conn) = sea_orm::Database::connect(&admin).await {
                    let _ = conn
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        });
        let _ = dropped.join();
    }
}

/// The bytes of a hex string, if it is one.
pub fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether `v1a,<base64>` is an Ed25519 signature of `{id}.{ts}.{body}` by the hex public key,
/// checked with ed25519-dalek directly (not with the product's own helper).
pub fn signature_holds(public_hex: &str, id: &str, ts: &str, body: &[u8], header: &str) -> bool {
    use base64::Engine;
    use ed25519_dalek::Verifier;
    let Some(key) = hex_bytes(public_hex)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok())
    else {
        return false;
    };
    let mut content = format!("{id}.{ts}.").into_bytes();
    content.extend_from_slice(body);
    header
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1a,"))
        .filter_map(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .filter_map(|b| <[u8; 64]>::try_from(b).ok())
        .any(|sig| {
            key.verify(&content, &ed25519_dalek::Signature::from_bytes(&sig))
                .is_ok()
        })
}

/// Another node of the same deployment, in this process (`node::Node` is a child process): a
/// second server on the database of a [`TestServer`],
/// with the same encryption key, on its own port, with `adjust`ed settings.
pub struct Peer {
    pub base: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), switchboard::Error>>,
}

impl Peer {
    /// Starts it and waits until its `/healthz` answers 200 (30 s at most).
    pub async fn start_with(s: &TestServer, adjust: impl FnOnce(&mut ServeArgs)) -> Peer {
        let mut serve = ServeArgs::default();
        adjust(&mut serve);
        let settings = Settings {
            serve,
            database_url: s.database_url.clone(),
            encryption_key: switchboard::EncryptionKeyDebug(s.key),
            create_default_tenant: false,
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(switchboard::run(settings, listener, async move {
            let _ = rx.await;
        }));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            assert!(!handle.is_finished(), "the second node stopped");
            if let Ok(r) = s.http.get(format!("{base}/healthz")).send().await {
                if r.status() == StatusCode::OK {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "second node not up in 30 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        Peer {
            base,
            shutdown: Some(tx),
            handle,
        }
    }

    pub async fn get(&self, s: &TestServer, path: &str, token: &str) -> (StatusCode, Value) {
        read(
            s.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.handle.await;
    }
}
