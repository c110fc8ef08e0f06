//! A websocket lives no longer than its credentials (SPEC 2, SPEC 5.6): a token-opened socket
//! closes with 4401 at the token's `exp` and within 5 s of its client secret's revocation; a
//! socket opened with the integration's signature closes with 4401 when the integration's keys
//! are regenerated; sockets with valid credentials stay open and keep working.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

const CREDENTIALS_GONE: u16 = 4401;

struct Setup {
    conversation: String,
    agent: Value,
}

impl Setup {
    fn agent_id(&self) -> String {
        self.agent["integrationId"].as_str().unwrap().to_owned()
    }
}

async fn setup(s: &TestServer, portal: &str, engine: &str) -> Setup {
    let hub = s.hub(portal, "h").await;
    let customer = s
        .direct(portal, &hub, "customers", "Customer", json!({}))
        .await["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent = s.direct(portal, &hub, "agents", "Agent", json!({})).await;
    let c = s.establish(engine, &customer, "cust").await;
    Setup {
        conversation: c["conversationId"].as_str().unwrap().to_owned(),
        agent,
    }
}

/// Sends an agent text over the socket and answers the reply frame.
async fn speak(ws: &mut Ws, conversation: &str, text: &str) -> Value {
    send_frame(
        ws,
        json!({ "type": "activity", "ref": text, "conversationId": conversation,
                "activity": { "type": "message", "message": { "type": "text", "text": text } } }),
    )
    .await;
    frame(ws).await
}

async fn works(ws: &mut Ws, conversation: &str, text: &str) {
    let answer = speak(ws, conversation, text).await;
    assert_eq!(answer["type"], "ack", "{answer}");
    assert_eq!(answer["ref"], text, "{answer}");
}

/// The close code of a socket the server closes within `secs` seconds (text frames before it
/// are skipped); panics otherwise, keep-alive pings and all.
async fn closed_within(ws: &mut Ws, secs: u64) -> u16 {
    tokio::time::timeout(Duration::from_secs(secs), close_code(ws))
        .await
        .expect("the socket is closed in time")
        .0
}

/// The `exp` claim of a token.
fn exp(token: &str) -> i64 {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice::<Value>(&json).expect("claims")["exp"]
        .as_i64()
        .expect("exp")
}

async fn fresh(s: &TestServer, t: &switchboard_storage::NewTenant) -> (String, String) {
    let portal = s
        .token(&t.portal.client_id.to_string(), &t.portal.client_secret)
        .await;
    let engine = s
        .token(&t.engine.client_id.to_string(), &t.engine.client_secret)
        .await;
    (portal, engine)
}

#[tokio::test]
async fn a_socket_closes_with_4401_at_its_tokens_exp() {
    let s = TestServer::start_with(Backend::Sqlite, |a| a.token_ttl = 3).await;
    let (portal, engine) = fresh(&s, &s.a.creds).await;
    let x = setup(&s, &portal, &engine).await;
    let (_, engine) = fresh(&s, &s.a.creds).await;
    let exp = exp(&engine);
    let mut ws = s.ws(&format!("iId={}", x.agent_id()), Some(&engine)).await;
    works(&mut ws, &x.conversation, "before exp").await;

    let code = closed_within(&mut ws, 10).await;
    assert_eq!(code, CREDENTIALS_GONE);
    assert!(
        unix_now() >= exp,
        "closed at {} before exp {exp}",
        unix_now()
    );
    // Plain HTTP with the same token says the same.
    let (status, body) = s.send(&engine, &x.conversation, json!({})).await;
    assert_error(status, &body, 401, "ENG", &[102]);
    s.stop().await;
}

#[tokio::test]
async fn a_revoked_secret_closes_its_sockets_within_5_seconds_and_others_stay() {
    for backend in backends("a_revoked_secret_closes_its_sockets_within_5_seconds_and_others_stay")
    {
        let s = TestServer::start_on(backend).await;
        let x = setup(&s, &s.a.portal, &s.a.engine).await;
        let engine_client = s.a.creds.engine.client_id.to_string();
        let tokens = format!("/api/v1/tenants/clients/{engine_client}/tokens");
        let (status, created) = s
            .post(&tokens, &s.a.portal, json!({ "name": "temp" }))
            .await;
        assert_eq!(status, StatusCode::OK, "{created}");
        let secret_id = created["id"].as_str().unwrap().to_owned();
        let access = s
            .token(&engine_client, created["token"].as_str().unwrap())
            .await;
        let q = format!("iId={}", x.agent_id());
        let mut doomed = s.ws(&q, Some(&access)).await;
        let mut by_query = s.ws(&format!("{q}&access_token={access}"), None).await;
        let mut kept = s.ws(&q, Some(&s.a.engine)).await;
        works(&mut doomed, &x.conversation, "doomed").await;
        works(&mut kept, &x.conversation, "kept").await;

        let (status, body) = s
            .delete(&format!("{tokens}/{secret_id}"), &s.a.portal)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let revoked_at = Instant::now();
        for ws in [&mut doomed, &mut by_query] {
            let code = closed_within(ws, 10).await;
            assert_eq!(code, CREDENTIALS_GONE, "{backend:?}");
        }
        let closed = revoked_at.elapsed();
        assert!(
            closed <= Duration::from_secs(5),
            "{backend:?}: closed after {closed:?}"
        );

        // The socket of another secret lived through the same checks and still works.
        works(&mut kept, &x.conversation, "still kept").await;
        s.stop().await;
    }
}

#[tokio::test]
async fn regenerated_keys_close_a_signature_opened_socket() {
    let s = TestServer::start().await;
    let x = setup(&s, &s.a.portal, &s.a.engine).await;
    let id = x.agent_id();
    let private = x.agent["configuration"]["privateSigningKey"]
        .as_str()
        .unwrap();
    let open_signed = || async {
        let ts = unix_now().to_string();
        let sig = sign(private, format!("{id}.{ts}").as_bytes());
        let sig: String = url::form_urlencoded::byte_serialize(sig.as_bytes()).collect();
        s.ws(&format!("iId={id}&ts={ts}&sig={sig}"), None).await
    };
    let mut signed = open_signed().await;
    let mut by_token = s.ws(&format!("iId={id}"), Some(&s.a.engine)).await;
    works(&mut signed, &x.conversation, "signed").await;

    // An update that keeps the keys keeps the socket: it outlives a check.
    let mut configuration = x.agent["configuration"].clone();
    let (status, body) = s
        .put(
            &format!("/api/v1/integrations/{id}"),
            &s.a.portal,
            json!({ "configuration": configuration.clone() }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    quiet(&mut signed, 2500).await;
    works(&mut signed, &x.conversation, "same keys").await;

    configuration["regenerateKeys"] = json!(true);
    let (status, body) = s
        .put(
            &format!("/api/v1/integrations/{id}"),
            &s.a.portal,
            json!({ "configuration": configuration }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let code = closed_within(&mut signed, 10).await;
    assert_eq!(code, CREDENTIALS_GONE);
    // A token-opened socket of the same integration is not bound to the keys.
    works(&mut by_token, &x.conversation, "token").await;
    s.stop().await;
}
