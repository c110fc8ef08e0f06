//! WebChat (SPEC 7.18, tests of 7.21): origins and CORS, sessions, and the widget socket, over
//! HTTP and websockets against a real server; the two-node case on PostgreSQL and Redis.
//!
//! Session tokens are read and, where a test needs one the server would not issue (expired,
//! another audience, another key), signed here with ed25519-dalek, apart from the server's code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

const SHOP: &str = "https://shop.example.com";

struct Setup {
    hub: String,
    webchat: String,
    agent: String,
}

/// A hub with an Agent (Direct, live) and a WebChat integration allowing `shop.example.com`
/// and `*.example.org`, with more configuration from `extra`.
async fn setup(s: &TestServer, extra: Value) -> Setup {
    let hub = s
        .hub(&s.a.portal, &format!("web {}", uuid::Uuid::new_v4()))
        .await;
    let agent = s
        .direct(&s.a.portal, &hub, "agents", "Agent", json!({}))
        .await["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut configuration = json!({ "allowedOrigins": ["shop.example.com", "*.example.org"] });
    if let (Some(c), Some(e)) = (configuration.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    let webchat = s
        .integration(
            &s.a.portal,
            &hub,
            json!({ "channelId": "WebChat", "name": "Chat", "configuration": configuration }),
        )
        .await["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    Setup {
        hub,
        webchat,
        agent,
    }
}

/// `POST /webchat/v1/{id}/sessions` from `origin` with `body`: status, headers, body.
async fn session_at(
    base: &str,
    http: &reqwest::Client,
    id: &str,
    origin: Option<&str>,
    body: Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = http
        .post(format!("{base}/webchat/v1/{id}/sessions"))
        .header("user-agent", "Mozilla/5.0 (test widget)")
        .json(&body);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let resp = req.send().await.expect("send");
    let headers = resp.headers().clone();
    let (status, body) = read(resp).await;
    (status, headers, body)
}

async fn session(
    s: &TestServer,
    id: &str,
    origin: Option<&str>,
    body: Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    session_at(&s.base, &s.http, id, origin, body).await
}

/// A session from [`SHOP`]; panics unless 200.
async fn new_session(s: &TestServer, id: &str, body: Value) -> Value {
    let (status, _, body) = session(s, id, Some(SHOP), body).await;
    assert_eq!(status, StatusCode::OK, "session: {body}");
    body
}

/// The claims of a JWT, read without verifying.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

/// A compact EdDSA JWT of `claims` signed with `seed`, written here apart from the server.
fn sign_jwt(seed: &[u8; 32], claims: &Value) -> String {
    use ed25519_dalek::Signer;
    let key = ed25519_dalek::SigningKey::from_bytes(seed);
    let mut out = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","typ":"JWT"}"#);
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
    let sig = key.sign(out.as_bytes());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig.to_bytes()));
    out
}

/// The server's token signing seed, read from its database.
async fn server_seed(s: &TestServer) -> [u8; 32] {
    let store = switchboard_storage::Store::connect(
        &s.database_url,
        switchboard_storage::EncryptionKey(s.key),
    )
    .await
    .expect("connect");
    store.token_signing_seed().await.expect("seed")
}

/// Opens the widget socket at `base` with `token` (raw query value) and `origin`.
async fn widget_at(
    base: &str,
    id: &str,
    token: Option<&str>,
    origin: Option<&str>,
) -> Result<Ws, (StatusCode, Value)> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let query = token
        .map(|t| {
            format!(
                "?sessionToken={}",
                url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
            )
        })
        .unwrap_or_default();
    let url = format!(
        "{}/webchat/v1/{id}/ws{query}",
        base.replacen("http://", "ws://", 1)
    );
    let mut req = url.into_client_request().expect("request");
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", o.parse().expect("header"));
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

async fn widget(s: &TestServer, id: &str, token: &str) -> Ws {
    match widget_at(&s.base, id, Some(token), Some(SHOP)).await {
        Ok(ws) => ws,
        Err((status, body)) => panic!("widget socket refused: {status} {body}"),
    }
}

fn refused(r: Result<Ws, (StatusCode, Value)>) -> (StatusCode, Value) {
    match r {
        Ok(_) => panic!("the upgrade was accepted"),
        Err(e) => e,
    }
}

fn text(reference: &str, words: &str) -> Value {
    json!({ "type": "activity", "ref": reference,
            "activity": { "type": "message", "message": { "type": "text", "text": words } } })
}

/// Reads `n` frames; answers them.
async fn frames(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(frame(ws).await);
    }
    out
}

fn of_type<'a>(fs: &'a [Value], t: &str) -> Vec<&'a Value> {
    fs.iter().filter(|f| f["type"] == t).collect()
}

async fn pause(s: &TestServer, id: &str) {
    let (status, body) = s
        .put(
            &format!("/api/v1/integrations/{id}"),
            &s.a.portal,
            json!({ "statusId": 3002 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "pause: {body}");
}

// ---------------------------------------------------------------------------------------------
// 7.18.1 Origins and CORS

#[tokio::test]
async fn origins_match_exactly_or_by_wildcard_ignoring_the_port() {
    let s = TestServer::start().await;
    let x = setup(&s, json!({})).await;
    for origin in [
        SHOP,
        "http://shop.example.com",
        "https://SHOP.example.com:8443",
        "https://help.example.org",
        "https://a.b.example.org:3000",
    ] {
        let (status, headers, body) = session(&s, &x.webchat, Some(origin), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{origin}: {body}");
        assert_eq!(headers["access-control-allow-origin"], origin);
        assert_eq!(headers["vary"], "Origin");
        assert!(headers.get("access-control-allow-credentials").is_none());
    }
    // Missing, `null`, the wildcard's own parent, another host, another scheme.
    for origin in [
        None,
        Some("null"),
        Some("https://example.org"),
        Some("https://evil.example.com"),
        Some("https://shop.example.com.evil.io"),
        Some("file://shop.example.com"),
    ] {
        let (status, headers, body) = session(&s, &x.webchat, origin, json!({})).await;
        assert_error(status, &body, 403, "ENG", &[101]);
        assert!(
            headers.get("access-control-allow-origin").is_none(),
            "{origin:?}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn preflight_answers_allowed_origins_only() {
    let s = TestServer::start().await;
    let x = setup(&s, json!({})).await;
    let preflight = |id: String, origin: Option<&'static str>| {
        let mut req = s
            .http
            .request(
                Method::OPTIONS,
                s.url(&format!("/webchat/v1/{id}/sessions")),
            )
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let resp = preflight(x.webchat.clone(), Some("https://help.example.org:8080"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let h = resp.headers();
    assert_eq!(
        h["access-control-allow-origin"],
        "https://help.example.org:8080"
    );
    assert_eq!(h["access-control-allow-methods"], "POST");
    assert_eq!(h["access-control-allow-headers"], "Content-Type");
    assert_eq!(h["access-control-max-age"], "600");
    assert_eq!(h["vary"], "Origin");
    for origin in [None, Some("null"), Some("https://evil.io")] {
        let resp = preflight(x.webchat.clone(), origin).await.unwrap();
        assert!(resp.headers().get("access-control-allow-origin").is_none());
        let (status, body) = read(resp).await;
        assert_error(status, &body, 403, "ENG", &[101]);
    }
    // Unknown, or not WebChat: 404/6000.
    for id in [uuid::Uuid::new_v4().to_string(), x.agent.clone()] {
        let (status, body) = read(preflight(id, Some(SHOP)).await.unwrap()).await;
        assert_error(status, &body, 404, "ENG", &[6000]);
    }
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 7.18.2 Sessions

#[tokio::test]
async fn a_session_opens_a_conversation_and_the_same_client_id_renews_it() {
    for backend in backends("a_session_opens_a_conversation_and_the_same_client_id_renews_it") {
        let s = TestServer::start_on(backend).await;
        let x = setup(
            &s,
            json!({ "start": [ { "type": "text", "text": "Welcome!" } ], "sessionTTL": 600 }),
        )
        .await;
        let first = new_session(
            &s,
            &x.webchat,
            json!({ "profile": { "email": "ann@example.com" } }),
        )
        .await;
        let client_id = first["clientId"].as_str().unwrap().to_owned();
        assert_eq!(client_id.len(), 22, "{first}");
        assert!(client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        assert_eq!(first["integrationId"], x.webchat);
        assert_eq!(first["isNew"], true);
        let cid = first["conversationId"].as_str().unwrap().to_owned();
        assert_eq!(
            first["websocketUrl"],
            format!(
                "{}/webchat/v1/{}/ws",
                s.base.replacen("http://", "ws://", 1),
                x.webchat
            )
        );
        // The token: EdDSA, aud webchat, its claims, signed by the server's key.
        let token = first["sessionToken"].as_str().unwrap().to_owned();
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "EdDSA");
        let c = claims(&token);
        assert_eq!(c["aud"], "webchat");
        assert_eq!(c["sub"], first["tokenId"]);
        assert_eq!(c["tid"], s.a.id());
        assert_eq!(c["iid"], x.webchat);
        assert_eq!(c["cid"], cid);
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);
        assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
        let exp =
            chrono::DateTime::parse_from_rfc3339(first["expiresAt"].as_str().unwrap()).unwrap();
        assert_eq!(exp.timestamp(), c["exp"].as_i64().unwrap());
        {
            use ed25519_dalek::Verifier;
            let seed = server_seed(&s).await;
            let key = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
            let (signed, sig) = token.rsplit_once('.').unwrap();
            let sig = ed25519_dalek::Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap())
                .unwrap();
            assert!(key.verify(signed.as_bytes(), &sig).is_ok());
        }
        // The session token is for the widget socket only.
        let (status, body) = s.get(&format!("/api/v1/conversations/{cid}"), &token).await;
        assert_error(status, &body, 401, "ENG", &[102]);

        // The conversation: binding = clientId, profile merged, channel.origin and userAgent.
        let (status, conv) = s
            .get(&format!("/api/v1/conversations/{cid}"), &s.a.engine)
            .await;
        assert_eq!(status, StatusCode::OK, "{conv}");
        let props = &conv["properties"];
        assert_eq!(props["profile"]["email"], "ann@example.com", "{conv}");
        assert_eq!(props["channel"]["origin"], "shop.example.com", "{conv}");
        assert_eq!(props["channel"]["userAgent"], "Mozilla/5.0 (test widget)");
        assert!(
            !conv.to_string().contains(&client_id) || conv["binding"] == client_id.as_str(),
            "the clientId appears only as the binding: {conv}"
        );

        // The same clientId: the same open conversation, a new token; the profile merged in.
        let again = new_session(
            &s,
            &x.webchat,
            json!({ "clientId": client_id, "profile": { "language": "fr" } }),
        )
        .await;
        assert_eq!(again["isNew"], false);
        assert_eq!(again["conversationId"], cid.as_str());
        assert_eq!(again["tokenId"], first["tokenId"]);
        assert_eq!(again["clientId"], client_id.as_str());
        assert_ne!(
            claims(again["sessionToken"].as_str().unwrap())["jti"],
            c["jti"]
        );
        let (_, conv) = s
            .get(&format!("/api/v1/conversations/{cid}"), &s.a.engine)
            .await;
        assert_eq!(conv["properties"]["profile"]["email"], "ann@example.com");
        assert_eq!(conv["properties"]["profile"]["language"], "fr");

        // A given new clientId opens another conversation.
        let other = new_session(&s, &x.webchat, json!({ "clientId": "A".repeat(30) })).await;
        assert_eq!(other["isNew"], true);
        assert_ne!(other["conversationId"], cid.as_str());
        assert_eq!(other["clientId"], "A".repeat(30));

        // The start message went to the new conversation: the widget replays it.
        let mut ws = widget(&s, &x.webchat, again["sessionToken"].as_str().unwrap()).await;
        send_frame(&mut ws, json!({ "type": "resume", "leid": 0 })).await;
        let f = frame(&mut ws).await;
        assert_eq!(f["type"], "activity", "{f}");
        let p = &f["payload"];
        assert_eq!(p["tenantId"], Value::Null);
        assert_eq!(p["conversationProperties"], Value::Null);
        assert_eq!(p["integrationId"], x.webchat);
        assert_eq!(p["conversationId"], cid.as_str());
        assert_eq!(p["hubId"], x.hub);
        assert_eq!(p["activity"]["message"]["text"], "Welcome!", "{f}");
        quiet(&mut ws, 200).await;
        s.stop().await;
    }
}

#[tokio::test]
async fn session_requests_are_checked() {
    let s = TestServer::start().await;
    let x = setup(&s, json!({})).await;
    // Unknown integration, or not WebChat.
    for id in [
        uuid::Uuid::new_v4().to_string(),
        x.agent.clone(),
        "not-a-uuid".to_owned(),
    ] {
        let (status, _, body) = session(&s, &id, Some(SHOP), json!({})).await;
        assert_error(status, &body, 404, "ENG", &[6000]);
    }
    let many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (json!({ "clientId": "short" }), 201),
        (json!({ "clientId": "a".repeat(65) }), 201),
        (json!({ "clientId": "abcdefghijklmnopqrstuvw+" }), 201),
        (json!({ "clientId": 12 }), 201),
        (json!({ "profile": { "age": 3 } }), 302),
        (json!({ "profile": ["x"] }), 302),
        (json!({ "profile": many }), 206),
        (json!({ "profile": { "note": "x".repeat(257) } }), 206),
    ];
    for (body, code) in cases {
        let (status, headers, err) = session(&s, &x.webchat, Some(SHOP), body.clone()).await;
        assert_error(status, &err, 400, "ENG", &[code]);
        // An allowed origin reads its errors.
        assert_eq!(headers["access-control-allow-origin"], SHOP, "{body}");
    }
    // Paused integration, then paused hub: 400/6502.
    pause(&s, &x.webchat).await;
    let (status, _, body) = session(&s, &x.webchat, Some(SHOP), json!({})).await;
    assert_error(status, &body, 400, "ENG", &[6502]);
    s.stop().await;
}

#[tokio::test]
async fn sessions_are_limited_per_client_id() {
    let s = TestServer::start().await;
    let x = setup(&s, json!({})).await;
    let client_id = "c".repeat(22);
    for _ in 0..10 {
        new_session(&s, &x.webchat, json!({ "clientId": client_id })).await;
    }
    let (status, headers, body) =
        session(&s, &x.webchat, Some(SHOP), json!({ "clientId": client_id })).await;
    assert_error(status, &body, 429, "ENG", &[429]);
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // The page that asked can read the refusal and its wait (CORS).
    assert_eq!(headers["access-control-allow-origin"], SHOP);
    assert_eq!(headers["access-control-expose-headers"], "Retry-After");
    // Another clientId from the same address goes on.
    new_session(&s, &x.webchat, json!({ "clientId": "d".repeat(22) })).await;
    s.stop().await;
}

#[tokio::test]
async fn sessions_are_limited_per_client_ip() {
    // The default is 60 a minute; a lower setting keeps the test short.
    let s = TestServer::start_with(Backend::Sqlite, |a| {
        a.rate_limit_webchat_ip = switchboard_domain::rate::Rate::parse("3/m:3").unwrap();
    })
    .await;
    let x = setup(&s, json!({})).await;
    for _ in 0..3 {
        new_session(&s, &x.webchat, json!({})).await;
    }
    let (status, headers, body) = session(&s, &x.webchat, Some(SHOP), json!({})).await;
    assert_error(status, &body, 429, "ENG", &[429]);
    assert!(headers.get("retry-after").is_some());
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 7.18.3 The socket

#[tokio::test]
async fn the_socket_refuses_bad_tokens_origins_paused_and_closed() {
    let s = TestServer::start().await;
    let x = setup(&s, json!({})).await;
    let y = setup(&s, json!({})).await;
    let first = new_session(&s, &x.webchat, json!({})).await;
    let token = first["sessionToken"].as_str().unwrap().to_owned();
    let seed = server_seed(&s).await;
    let c = claims(&token);
    let with = |k: &str, v: Value| {
        let mut c = c.clone();
        c[k] = v;
        c
    };
    let now = unix_now();
    let other_key = [9u8; 32];
    let bad_tokens: Vec<String> = vec![
        String::new(),
        "garbage".to_owned(),
        // Expired, another audience, signed by another key.
        sign_jwt(&seed, &with("exp", json!(now - 1))),
        sign_jwt(&seed, &with("aud", json!("engine"))),
        sign_jwt(&other_key, &c),
        // An engine access token.
        s.a.engine.clone(),
    ];
    for t in &bad_tokens {
        let t = (!t.is_empty()).then_some(t.as_str());
        let (status, body) = refused(widget_at(&s.base, &x.webchat, t, Some(SHOP)).await);
        assert_error(status, &body, 401, "ENG", &[102]);
    }
    // A token of another integration.
    let (status, body) = refused(widget_at(&s.base, &y.webchat, Some(&token), Some(SHOP)).await);
    assert_error(status, &body, 401, "ENG", &[102]);
    // Origin.
    for origin in [None, Some("null"), Some("https://evil.io")] {
        let (status, body) = refused(widget_at(&s.base, &x.webchat, Some(&token), origin).await);
        assert_error(status, &body, 403, "ENG", &[101]);
    }
    // The conversation closed: 400/6501.
    let cid = first["conversationId"].as_str().unwrap();
    let (status, body) = s
        .post(
            &format!("/api/v1/conversations/{cid}/close"),
            &s.a.engine,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = refused(widget_at(&s.base, &x.webchat, Some(&token), Some(SHOP)).await);
    assert_error(status, &body, 400, "ENG", &[6501]);
    // Paused: 400/6502.
    let fresh = new_session(&s, &x.webchat, json!({})).await;
    pause(&s, &x.webchat).await;
    let (status, body) = refused(
        widget_at(
            &s.base,
            &x.webchat,
            fresh["sessionToken"].as_str(),
            Some(SHOP),
        )
        .await,
    );
    assert_error(status, &body, 400, "ENG", &[6502]);
    s.stop().await;
}

#[tokio::test]
async fn echo_reaches_every_socket_of_the_conversation_and_agents_answer_live() {
    for backend in backends("echo_reaches_every_socket_of_the_conversation_and_agents_answer_live")
    {
        let s = TestServer::start_on(backend).await;
        let x = setup(&s, json!({})).await;
        let first = new_session(&s, &x.webchat, json!({})).await;
        let token = first["sessionToken"].as_str().unwrap().to_owned();
        let cid = first["conversationId"].as_str().unwrap().to_owned();
        let mut one = widget(&s, &x.webchat, &token).await;
        let mut two = widget(&s, &x.webchat, &token).await;
        // Another conversation's socket gets nothing of this one.
        let other = new_session(&s, &x.webchat, json!({})).await;
        let mut stranger = widget(&s, &x.webchat, other["sessionToken"].as_str().unwrap()).await;

        send_frame(&mut one, text("r1", "hello")).await;
        let got = frames(&mut one, 2).await;
        let ack = of_type(&got, "ack");
        assert_eq!(ack.len(), 1, "{got:?}");
        assert_eq!(ack[0]["ref"], "r1");
        let event_id = ack[0]["eventId"].as_i64().unwrap();
        let echo = of_type(&got, "activity")[0];
        for echo in [echo.clone(), frame(&mut two).await] {
            let p = &echo["payload"];
            assert_eq!(p["tenantId"], Value::Null, "{echo}");
            assert_eq!(p["conversationProperties"], Value::Null);
            assert_eq!(p["conversationId"], cid.as_str());
            assert_eq!(p["activity"]["isEcho"], true, "{echo}");
            assert_eq!(p["activity"]["eventId"], event_id);
            assert_eq!(p["activity"]["message"]["text"], "hello");
            assert_eq!(p["activity"]["sender"]["channelType"], "WebChat");
        }
        // The conversationId may be given when it is the session's.
        let mut with_id = text("r2", "again");
        with_id["conversationId"] = json!(cid);
        send_frame(&mut two, with_id).await;
        let got = frames(&mut two, 2).await;
        assert_eq!(of_type(&got, "ack").len(), 1, "{got:?}");
        assert_eq!(
            frame(&mut one).await["payload"]["activity"]["message"]["text"],
            "again"
        );

        // The agent answers over HTTP: both sockets get it, live.
        let (status, body) = s
            .send(
                &s.a.engine,
                &cid,
                json!({ "type": "message", "sender": { "integrationId": x.agent },
                    "message": { "type": "text", "text": "How can I help?" } }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for ws in [&mut one, &mut two] {
            let f = frame(ws).await;
            assert_eq!(
                f["payload"]["activity"]["message"]["text"], "How can I help?",
                "{f}"
            );
            assert_eq!(f["payload"]["activity"]["sender"]["integrationId"], x.agent);
            assert_eq!(f["payload"]["activity"]["isEcho"], false);
            assert_eq!(f["payload"]["tenantId"], Value::Null);
        }
        quiet(&mut stranger, 200).await;

        // Refused frames: another conversation, a sender, a type the widget may not send.
        let mut foreign = text("f1", "x");
        foreign["conversationId"] = other["conversationId"].clone();
        let mut sender = text("f2", "x");
        sender["activity"]["sender"] = json!({ "integrationId": x.agent });
        let card = json!({ "type": "activity", "ref": "f3",
        "activity": { "type": "message", "message": { "type": "card", "title": "t" } } });
        let event = json!({ "type": "activity", "ref": "f4",
        "activity": { "type": "event", "event": { "type": "conversation:closed" } } });
        for (f, status, code) in [
            (foreign, 403, 101),
            (sender, 403, 101),
            (card, 400, 206),
            (event, 400, 206),
        ] {
            let reference = f["ref"].clone();
            send_frame(&mut one, f).await;
            let e = frame(&mut one).await;
            assert_eq!(e["type"], "error", "{e}");
            assert_eq!(e["ref"], reference);
            assert_eq!(e["status"], status, "{e}");
            assert_eq!(e["errors"][0]["code"], code, "{e}");
        }
        // Events the widget may send.
        send_frame(
        &mut one,
        json!({ "type": "activity", "ref": "t", "activity": { "type": "event", "event": { "type": "typing_on" } } }),
    )
    .await;
        let got = frames(&mut one, 2).await;
        assert_eq!(of_type(&got, "ack").len(), 1, "{got:?}");
        s.stop().await;
    }
}

#[tokio::test]
async fn with_echo_off_only_the_ack_comes_back() {
    let s = TestServer::start().await;
    let x = setup(&s, json!({ "echo": false })).await;
    let first = new_session(&s, &x.webchat, json!({})).await;
    let token = first["sessionToken"].as_str().unwrap().to_owned();
    let mut one = widget(&s, &x.webchat, &token).await;
    let mut two = widget(&s, &x.webchat, &token).await;
    send_frame(&mut one, text("r1", "hello")).await;
    let ack = frame(&mut one).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    quiet(&mut one, 300).await;
    quiet(&mut two, 100).await;
    s.stop().await;
}

#[tokio::test]
async fn resume_replays_the_conversation_after_leid() {
    for backend in backends("resume_replays_the_conversation_after_leid") {
        let s = TestServer::start_on(backend).await;
        let x = setup(
            &s,
            json!({ "start": [ { "type": "text", "text": "Welcome!" } ] }),
        )
        .await;
        let first = new_session(&s, &x.webchat, json!({})).await;
        let token = first["sessionToken"].as_str().unwrap().to_owned();
        let cid = first["conversationId"].as_str().unwrap().to_owned();
        let mut ws = widget(&s, &x.webchat, &token).await;
        send_frame(&mut ws, text("r1", "one")).await;
        let got = frames(&mut ws, 2).await;
        let mine = of_type(&got, "ack")[0]["eventId"].as_i64().unwrap();
        drop(ws);
        // While no socket is open, the agent answers: stored, replayed on resume.
        let (status, body) = s
            .send(
                &s.a.engine,
                &cid,
                json!({ "type": "message", "sender": { "integrationId": x.agent },
                    "message": { "type": "text", "text": "answer" } }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let mut ws = widget(&s, &x.webchat, &token).await;
        send_frame(&mut ws, json!({ "type": "resume", "leid": 0 })).await;
        let all = frames(&mut ws, 3).await;
        let texts: Vec<&Value> = all
            .iter()
            .map(|f| &f["payload"]["activity"]["message"]["text"])
            .collect();
        assert_eq!(
            texts,
            [&json!("Welcome!"), &json!("one"), &json!("answer")],
            "{all:?}"
        );
        let ids: Vec<i64> = all
            .iter()
            .map(|f| f["payload"]["activity"]["eventId"].as_i64().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert_eq!(all[1]["payload"]["activity"]["isEcho"], true);
        assert!(all.iter().all(|f| f["payload"]["tenantId"].is_null()));
        quiet(&mut ws, 200).await;
        // From the customer's own message on: only the answer.
        send_frame(&mut ws, json!({ "type": "resume", "leid": mine })).await;
        let f = frame(&mut ws).await;
        assert_eq!(f["payload"]["activity"]["message"]["text"], "answer");
        quiet(&mut ws, 200).await;
        s.stop().await;
    }
}

#[tokio::test]
async fn the_socket_closes_at_the_token_expiry() {
    // `sessionTTL` is at least 300 s: the test signs a session token with the server's key
    // that expires in 2 s (the claims the server issued, another `exp`), and waits for it.
    let s = TestServer::start().await;
    let x = setup(&s, json!({})).await;
    let first = new_session(&s, &x.webchat, json!({})).await;
    let mut c = claims(first["sessionToken"].as_str().unwrap());
    let exp = unix_now() + 2;
    c["exp"] = json!(exp);
    let token = sign_jwt(&server_seed(&s).await, &c);
    let mut ws = widget(&s, &x.webchat, &token).await;
    let (code, _) = close_code(&mut ws).await;
    assert_eq!(code, 4401);
    assert!(unix_now() >= exp);
    s.stop().await;
}

#[tokio::test]
async fn pausing_closes_with_4403_and_closing_the_conversation_with_4410() {
    let s = TestServer::start().await;
    let x = setup(&s, json!({})).await;
    let a = new_session(&s, &x.webchat, json!({})).await;
    let b = new_session(&s, &x.webchat, json!({})).await;
    let mut wa = widget(&s, &x.webchat, a["sessionToken"].as_str().unwrap()).await;
    let mut wb = widget(&s, &x.webchat, b["sessionToken"].as_str().unwrap()).await;
    let cid = a["conversationId"].as_str().unwrap();
    let (status, body) = s
        .post(
            &format!("/api/v1/conversations/{cid}/close"),
            &s.a.engine,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(close_code(&mut wa).await.0, 4410);
    // The other conversation's socket stays open until the integration is paused.
    send_frame(&mut wb, text("r", "still here")).await;
    assert_eq!(of_type(&frames(&mut wb, 2).await, "ack").len(), 1);
    pause(&s, &x.webchat).await;
    assert_eq!(close_code(&mut wb).await.0, 4403);

    // A paused hub, and a deleted integration: 4403 too; so is a session afterwards 400/6502.
    let y = setup(&s, json!({})).await;
    let c = new_session(&s, &y.webchat, json!({})).await;
    let mut wc = widget(&s, &y.webchat, c["sessionToken"].as_str().unwrap()).await;
    let (status, body) = s
        .put(
            &format!("/api/v1/hubs/{}", y.hub),
            &s.a.portal,
            json!({ "statusId": 2002 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(close_code(&mut wc).await.0, 4403);
    let (status, _, body) = session(&s, &y.webchat, Some(SHOP), json!({})).await;
    assert_error(status, &body, 400, "ENG", &[6502]);
    let z = setup(&s, json!({})).await;
    let d = new_session(&s, &z.webchat, json!({})).await;
    let mut wd = widget(&s, &z.webchat, d["sessionToken"].as_str().unwrap()).await;
    let (status, body) = s
        .delete(&format!("/api/v1/integrations/{}", z.webchat), &s.a.portal)
        .await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(close_code(&mut wd).await.0, 4403);
    s.stop().await;
}

#[tokio::test]
async fn frame_limits_close_big_frames_and_refuse_fast_activities() {
    let s = TestServer::start().await;
    let x = setup(&s, json!({ "echo": false })).await;
    let first = new_session(&s, &x.webchat, json!({})).await;
    let token = first["sessionToken"].as_str().unwrap().to_owned();
    let mut ws = widget(&s, &x.webchat, &token).await;
    // 20 activities in 10 s, then 429 error frames; the socket stays open.
    for i in 0..20 {
        send_frame(&mut ws, text(&format!("r{i}"), "x")).await;
        let f = frame(&mut ws).await;
        assert_eq!(f["type"], "ack", "{i}: {f}");
    }
    send_frame(&mut ws, text("r20", "x")).await;
    let e = frame(&mut ws).await;
    assert_eq!(
        (&e["type"], &e["status"], &e["ref"]),
        (&json!("error"), &json!(429), &json!("r20")),
        "{e}"
    );
    assert_eq!(e["errors"][0]["code"], 429);
    // Still open: another frame is answered.
    send_frame(&mut ws, json!({ "type": "dance", "ref": "d" })).await;
    assert_eq!(frame(&mut ws).await["ref"], "d");
    // A text frame over 64 KiB: 1009.
    let mut ws = widget(&s, &x.webchat, &token).await;
    let big = text("big", &"x".repeat(64 * 1024 + 1));
    {
        use futures_util::SinkExt;
        let _ = ws
            .send(tokio_tungstenite::tungstenite::Message::text(
                big.to_string(),
            ))
            .await;
    }
    assert_eq!(close_code(&mut ws).await.0, 1009);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Two nodes

#[tokio::test]
async fn an_agent_reply_on_one_node_reaches_a_widget_on_another() {
    let redis = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let (Some(_), Some(redis)) = (postgres_url(), redis) else {
        skipped(
            "webchat::an_agent_reply_on_one_node_reaches_a_widget_on_another",
            "PostgreSQL and Redis",
            "TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test and TEST_REDIS_URL=redis://127.0.0.1:6379",
        );
        return;
    };
    let r = redis.clone();
    let a = TestServer::start_with(Backend::Postgres, |args| args.redis_url = Some(r)).await;
    let b = Peer::start_with(&a, |args| {
        args.redis_url = Some(redis);
        args.providers = switchboard::config::ProvidersMode::Offline;
    })
    .await;
    let x = setup(&a, json!({})).await;
    // The session on node B, the widget on node A.
    let (status, _, first) = session_at(&b.base, &a.http, &x.webchat, Some(SHOP), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let cid = first["conversationId"].as_str().unwrap().to_owned();
    let mut ws = widget(&a, &x.webchat, first["sessionToken"].as_str().unwrap()).await;
    // The agent answers through node B.
    let (status, body) = read(
        a.http
            .post(format!(
                "{}/inbound/customer/v1/direct/activity/{cid}",
                b.base
            ))
            .bearer_auth(&a.a.engine)
            .json(
                &json!({ "type": "message", "sender": { "integrationId": x.agent },
                           "message": { "type": "text", "text": "from node B" } }),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let f = frame(&mut ws).await;
    assert_eq!(
        f["payload"]["activity"]["message"]["text"], "from node B",
        "{f}"
    );
    assert_eq!(f["payload"]["tenantId"], Value::Null);
    // And the widget's message on node A is acked; its echo comes back through the bus.
    send_frame(&mut ws, text("r1", "thanks")).await;
    let got = frames(&mut ws, 2).await;
    assert_eq!(of_type(&got, "ack").len(), 1, "{got:?}");
    b.stop().await;
    a.stop().await;
}
