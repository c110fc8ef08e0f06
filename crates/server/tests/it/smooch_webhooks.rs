//! Smooch webhooks (SPEC 8.7) at a real receiver: created through the compat routes with an
//! account key's HS256 token, fed by customer and agent activities, their bodies and headers
//! checked, the `/v1` and `/v1.1` defaults, a retry that keeps the order, the deliveries list.

use base64::Engine;
use hmac::Mac;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;
use crate::webhooks::{until, verifies, Receiver, Reply};

/// An HS256 token of `scope` signed with the key (SPEC 8.3), made here as smooch-core does.
fn jwt(key_id: &str, secret: &str, scope: &str) -> String {
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let input = format!(
        "{}.{}",
        b64(&json!({ "alg": "HS256", "typ": "JWT", "kid": key_id })),
        b64(&json!({ "scope": scope }))
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{input}.{sig}")
}

async fn account_token(s: &TestServer) -> String {
    let (status, key) = s
        .post(
            "/api/v1/tenants/smooch-keys",
            &s.a.portal,
            json!({ "name": "hooks" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    jwt(
        key["keyId"].as_str().unwrap(),
        key["secret"].as_str().unwrap(),
        "account",
    )
}

/// A hub with a customer and an agent Direct integration: `(hub, customer, agent)`.
async fn hub(s: &TestServer) -> (String, String, String) {
    let hub = s
        .hub(&s.a.portal, &format!("h-{}", uuid::Uuid::now_v7()))
        .await;
    let id = |v: Value| v["integrationId"].as_str().unwrap().to_owned();
    let customer = id(s
        .direct(&s.a.portal, &hub, "customers", "Customer", json!({}))
        .await);
    let agent = id(s
        .direct(&s.a.portal, &hub, "desk", "Agent", json!({}))
        .await);
    (hub, customer, agent)
}

#[tokio::test]
async fn webhooks_get_8_7_bodies_with_the_api_key_for_their_triggers_only() {
    for backend in backends("webhooks_get_8_7_bodies_with_the_api_key_for_their_triggers_only") {
        webhooks_get_8_7_bodies_with_the_api_key_for_their_triggers_only_on(backend).await;
    }
}

async fn webhooks_get_8_7_bodies_with_the_api_key_for_their_triggers_only_on(backend: Backend) {
    let r = Receiver::start().await;
    let s = server_on(backend).await;
    let token = account_token(&s).await;
    let (hub, customer, agent) = hub(&s).await;

    // /v1.1 defaults: message:appUser, short app user.
    let (st, made) = s
        .post(
            &format!("/v1.1/apps/{hub}/webhooks"),
            &token,
            json!({ "target": r.url("/v11") }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    let w = &made["webhook"];
    assert_eq!(w["triggers"], json!(["message:appUser"]));
    assert_eq!(w["includeFullAppUser"], false);
    assert_eq!(w["includeClient"], false);
    assert_eq!(w["version"], "v1.1");
    let secret = w["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 40);
    // /v1 defaults: message, the whole app user.
    let (st, v1) = s
        .post(
            &format!("/v1/apps/{hub}/webhooks"),
            &token,
            json!({ "target": r.url("/v1"), "includeClient": true }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v1}");
    assert_eq!(v1["webhook"]["triggers"], json!(["message"]));
    assert_eq!(v1["webhook"]["includeFullAppUser"], true);
    // Typing only, on PUT; the others are kept.
    let (st, typing) = s
        .post(
            &format!("/v1.1/apps/{hub}/webhooks"),
            &token,
            json!({ "target": r.url("/typing"), "triggers": ["postback"] }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{typing}");
    let typing_id = typing["webhook"]["_id"].as_str().unwrap().to_owned();
    let (st, put) = s
        .put(
            &format!("/v1.1/apps/{hub}/webhooks/{typing_id}"),
            &token,
            json!({ "triggers": ["typing:appUser", "conversation:start"] }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{put}");
    assert_eq!(put["webhook"]["target"], r.url("/typing"));
    assert_eq!(put["webhook"]["secret"], typing["webhook"]["secret"]);
    let (st, list) = s.get(&format!("/v1.1/apps/{hub}/webhooks"), &token).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 3);
    // Bad input.
    let (st, bad) = s
        .post(
            &format!("/v1.1/apps/{hub}/webhooks"),
            &token,
            json!({ "target": "ftp://x", "triggers": ["nope"] }),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
    let (st, _) = s
        .get(&format!("/v1.1/apps/{hub}/webhooks/{customer}"), &token)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // conversation:start (typing hook), a customer message (v1.1 and v1), typing (typing hook),
    // an agent message (v1 only).
    let c = s.establish(&s.a.engine, &customer, "cust-1").await;
    let conversation = c["conversationId"].as_str().unwrap().to_owned();
    s.say(&s.a.engine, &conversation, "Hi there!").await;
    let (st, b) = s
        .send(
            &s.a.engine,
            &conversation,
            json!({ "type": "event", "event": { "type": "typing_on" } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (st, b) = s
        .send(
            &s.a.engine,
            &conversation,
            json!({ "type": "message", "sender": { "integrationId": agent },
                    "message": { "type": "text", "text": "Hello!" } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let got = r.wait_for(5).await;
    let on = |path: &str| -> Vec<_> { got.iter().filter(|g| g.path == path).cloned().collect() };

    let v11 = on("/v11");
    assert_eq!(v11.len(), 1, "{v11:?}");
    let m = &v11[0];
    assert_eq!(m.header("x-api-key"), secret);
    assert!(!m.header("webhook-id").is_empty());
    let body = m.json();
    assert_eq!(body["trigger"], "message:appUser");
    assert_eq!(body["version"], "v1.1");
    assert_eq!(body["app"], json!({ "_id": hub }));
    assert_eq!(body["conversation"], json!({ "_id": conversation }));
    assert_eq!(body["appUser"]["userId"], Value::Null);
    assert_eq!(body["appUser"]["conversationStarted"], true);
    assert!(body["appUser"].get("clients").is_none(), "{body}");
    let msg = &body["messages"][0];
    assert_eq!(msg["type"], "text");
    assert_eq!(msg["text"], "Hi there!");
    assert_eq!(msg["role"], "appUser");
    assert_eq!(msg["authorId"], body["appUser"]["_id"]);
    assert_eq!(msg["source"], json!({ "type": "api" }));
    assert!(body["timestamp"].as_f64().unwrap() > 1.0e9);
    assert!(body.get("client").is_none());

    let v1 = on("/v1");
    assert_eq!(v1.len(), 2, "{v1:?}");
    let (first, second) = (v1[0].json(), v1[1].json());
    assert_eq!(first["trigger"], "message:appUser");
    assert_eq!(first["appUser"]["_id"], body["appUser"]["_id"]);
    assert_eq!(first["appUser"]["clients"][0]["externalId"], "cust-1");
    assert_eq!(first["client"]["integrationId"], customer);
    assert_eq!(second["trigger"], "message:appMaker");
    assert_eq!(second["messages"][0]["role"], "appMaker");
    assert_eq!(second["messages"][0]["authorId"], agent);
    assert_eq!(second["messages"][0]["name"], "desk");

    let t = on("/typing");
    assert_eq!(t.len(), 2, "{t:?}");
    let (start, typing) = (t[0].json(), t[1].json());
    assert_eq!(start["trigger"], "conversation:start");
    assert_eq!(start["source"], json!({ "type": "api" }));
    assert_eq!(typing["trigger"], "typing:appUser");
    assert_eq!(typing["activity"], json!({ "type": "typing:start" }));
    assert!(typing.get("messages").is_none());

    // The deliveries are SPEC 5.5's.
    let list = until(
        &s,
        &format!("integrationId={}", made["webhook"]["_id"].as_str().unwrap()),
        |b| b["total"] == 1 && b["results"][0]["status"] == "succeeded",
    )
    .await;
    assert_eq!(list["results"][0]["webhookId"], m.header("webhook-id"));

    let (st, gone) = s
        .delete(&format!("/v1.1/apps/{hub}/webhooks/{typing_id}"), &token)
        .await;
    assert_eq!((st, gone), (StatusCode::OK, json!({})));
    s.stop().await;
}

#[tokio::test]
async fn a_retry_after_a_500_keeps_the_order_and_the_signature_headers() {
    for backend in backends("a_retry_after_a_500_keeps_the_order_and_the_signature_headers") {
        a_retry_after_a_500_keeps_the_order_and_the_signature_headers_on(backend).await;
    }
}

async fn a_retry_after_a_500_keeps_the_order_and_the_signature_headers_on(backend: Backend) {
    let r = Receiver::start().await;
    r.script([Reply::Status(500)]);
    let s = server_on(backend).await;
    let token = account_token(&s).await;
    let (hub, customer, _) = hub(&s).await;
    let (st, made) = s
        .post(
            &format!("/v1.1/apps/{hub}/webhooks"),
            &token,
            json!({ "target": r.url("/h") }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    let id = made["webhook"]["_id"].as_str().unwrap().to_owned();
    let c = s.establish(&s.a.engine, &customer, "cust-2").await;
    let conversation = c["conversationId"].as_str().unwrap().to_owned();
    s.say(&s.a.engine, &conversation, "one").await;
    s.say(&s.a.engine, &conversation, "two").await;
    let got = r.wait_for(3).await;
    let texts: Vec<Value> = got
        .iter()
        .map(|g| g.json()["messages"][0]["text"].clone())
        .collect();
    assert_eq!(texts, [json!("one"), json!("one"), json!("two")]);
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let (_, integration) = s
        .get(&format!("/api/v1/integrations/{id}"), &s.a.portal)
        .await;
    let public = integration["configuration"]["publicSigningKey"]
        .as_str()
        .unwrap();
    assert!(got.iter().all(|g| verifies(public, g)));
    assert_eq!(integration["configuration"]["format"], "smooch");
    assert_eq!(
        integration["configuration"]["events"],
        json!(["message:customer"])
    );
    s.stop().await;
}

/// A server on `backend` whose webhooks may reach the local receiver, retried quickly.
async fn server_on(backend: Backend) -> TestServer {
    let schedule = switchboard::config::parse_schedule("0s,100ms,100ms").unwrap();
    TestServer::start_with(backend, move |args| {
        args.allow_private_webhooks = true;
        args.retry_schedule = schedule;
        args.webhook_timeout = std::time::Duration::from_secs(2);
        args.public_host = "sb-test".to_owned();
    })
    .await
}
