//! The engine over HTTP (SPEC 4, 5.1–5.3): conversations, the inbound route, idempotency,
//! integration-signed requests, the activities list, routing rules and the dormancy sweeper.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

/// A hub with a Direct Customer integration and a Direct Agent integration (live).
struct Hub {
    hub: String,
    customer: String,
    agent: Value,
}

impl Hub {
    fn agent_id(&self) -> String {
        self.agent["integrationId"].as_str().unwrap().to_owned()
    }
}

async fn hub_with_agent(s: &TestServer, name: &str) -> Hub {
    let hub = s.hub(&s.a.portal, name).await;
    let customer = s
        .direct(&s.a.portal, &hub, "customers", "Customer", json!({}))
        .await["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent = s
        .direct(&s.a.portal, &hub, "agents", "Agent", json!({}))
        .await;
    Hub {
        hub,
        customer,
        agent,
    }
}

fn text(t: &str) -> Value {
    json!({ "type": "message", "message": { "type": "text", "text": t } })
}

async fn activities(s: &TestServer, conversation: &str, query: &str) -> Vec<Value> {
    let (status, body) = s
        .get(
            &format!("/api/v1/interactions/activities/{conversation}?{query}"),
            &s.a.engine,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

#[tokio::test]
async fn establish_reuses_the_open_conversation_merges_properties_and_reopens_after_close() {
    for backend in backends("establish") {
        let s = TestServer::start_on(backend).await;
        let h = hub_with_agent(&s, "h").await;
        let (status, first) = s
            .post(
                "/api/v1/conversations/establish",
                &s.a.engine,
                json!({ "integrationId": h.customer, "binding": "cust-1",
                        "properties": { "profile": { "email": "a@example.com" } } }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(first["isNew"], true);
        assert_eq!(first["tenantId"], s.a.id());
        assert_eq!(first["hubId"], h.hub);
        assert_eq!(first["integrationId"], h.customer);
        assert_eq!(first["properties"]["profile"]["device"], "Direct");
        assert_eq!(first["properties"]["profile"]["email"], "a@example.com");
        let name = first["properties"]["profile"]["full name"]
            .as_str()
            .unwrap();
        assert_eq!(name.split(' ').count(), 2, "{name}");
        assert!(first["tokenId"].as_str().unwrap().len() >= 16);
        assert!(first["openedDateTime"].as_str().unwrap().ends_with('Z'));
        let id = first["conversationId"].as_str().unwrap();

        let (_, again) = s
            .post(
                "/api/v1/conversations/establish",
                &s.a.engine,
                json!({ "integrationId": h.customer, "binding": "cust-1",
                        "properties": { "profile": { "email": "b@example.com", "plan": "gold" },
                                        "crm": { "id": "42" } } }),
            )
            .await;
        assert_eq!(again["isNew"], false);
        assert_eq!(again["conversationId"], id);
        assert_eq!(again["tokenId"], first["tokenId"]);
        assert_eq!(again["properties"]["profile"]["email"], "b@example.com");
        assert_eq!(again["properties"]["profile"]["plan"], "gold");
        assert_eq!(again["properties"]["profile"]["full name"], name);
        assert_eq!(again["properties"]["crm"]["id"], "42");

        let other = s.establish(&s.a.engine, &h.customer, "cust-2").await;
        assert_ne!(other["conversationId"], id);

        let (status, got) = s
            .get(&format!("/api/v1/conversations/{id}"), &s.a.engine)
            .await;
        assert_eq!(status, StatusCode::OK, "{got}");
        assert_eq!(got["status"], "open");
        assert_eq!(got["closedDateTime"], Value::Null);
        assert_eq!(got["integration"]["integrationId"], h.customer);
        assert!(got["integration"].get("configuration").is_none(), "{got}");
        assert_eq!(got["integration"]["hub"]["hubId"], h.hub);
        assert_eq!(got["properties"]["crm"]["id"], "42");

        let (status, closed) = s
            .post(
                &format!("/api/v1/conversations/{id}/close"),
                &s.a.engine,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{closed}");
        assert_eq!(closed["status"], "closed");
        assert!(closed["closedDateTime"].as_str().is_some());
        // Closing again changes nothing.
        let (status, again) = s
            .post(
                &format!("/api/v1/conversations/{id}/close"),
                &s.a.engine,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(again["closedDateTime"], closed["closedDateTime"]);

        let reopened = s.establish(&s.a.engine, &h.customer, "cust-1").await;
        assert_eq!(reopened["isNew"], true);
        assert_ne!(reopened["conversationId"], id);
        s.stop().await;
    }
}

#[tokio::test]
async fn establish_refuses_what_it_cannot_open() {
    let s = TestServer::start().await;
    let h = hub_with_agent(&s, "h").await;
    let post = |body: Value| {
        let s = &s;
        async move {
            s.post("/api/v1/conversations/establish", &s.a.engine, body)
                .await
        }
    };
    let (st, b) = post(json!({ "integrationId": h.agent_id(), "binding": "x" })).await;
    assert_error(st, &b, 400, "ENG", &[206]);
    let (st, b) = post(json!({ "integrationId": uuid::Uuid::now_v7(), "binding": "x" })).await;
    assert_error(st, &b, 404, "ENG", &[6000]);
    let (st, b) = post(json!({ "integrationId": "nope", "binding": 3 })).await;
    assert_error(st, &b, 400, "ENG", &[203, 302]);
    let (st, b) = post(json!({})).await;
    assert_error(st, &b, 400, "ENG", &[301, 301]);
    let (st, b) = post(json!({ "integrationId": h.customer, "binding": "x",
                               "properties": { "profile": { "age": 3 } } }))
    .await;
    assert_error(st, &b, 400, "ENG", &[302]);

    // Another tenant's integration does not exist for this one.
    let other_hub = s.hub(&s.b.portal, "theirs").await;
    let theirs = s
        .direct(&s.b.portal, &other_hub, "c", "Customer", json!({}))
        .await;
    let (st, b) = post(json!({ "integrationId": theirs["integrationId"], "binding": "x" })).await;
    assert_error(st, &b, 404, "ENG", &[6000]);

    // Tokens.
    let (st, b) = s
        .post(
            "/api/v1/conversations/establish",
            &s.a.portal,
            json!({ "integrationId": h.customer, "binding": "x" }),
        )
        .await;
    assert_error(st, &b, 403, "ENG", &[101]);
    let (st, b) = s
        .call(
            Method::POST,
            "/api/v1/conversations/establish",
            None,
            Some(&json!({})),
        )
        .await;
    assert_error(st, &b, 401, "ENG", &[102]);

    // Paused integration, then paused hub.
    let (st, _) = s
        .put(
            &format!("/api/v1/integrations/{}", h.customer),
            &s.a.portal,
            json!({ "statusId": 3002 }),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, b) = post(json!({ "integrationId": h.customer, "binding": "x" })).await;
    assert_error(st, &b, 400, "ENG", &[6502]);
    s.put(
        &format!("/api/v1/integrations/{}", h.customer),
        &s.a.portal,
        json!({ "statusId": 3000 }),
    )
    .await;
    s.put(
        &format!("/api/v1/hubs/{}", h.hub),
        &s.a.portal,
        json!({ "statusId": 2002 }),
    )
    .await;
    let (st, b) = post(json!({ "integrationId": h.customer, "binding": "x" })).await;
    assert_error(st, &b, 400, "ENG", &[6502]);

    // Unknown and foreign conversations.
    let (st, b) = s
        .get(
            &format!("/api/v1/conversations/{}", uuid::Uuid::now_v7()),
            &s.a.engine,
        )
        .await;
    assert_error(st, &b, 404, "ENG", &[6500]);
    let theirs = s
        .establish(&s.b.engine, theirs["integrationId"].as_str().unwrap(), "b")
        .await;
    let id = theirs["conversationId"].as_str().unwrap();
    let (st, b) = s
        .get(&format!("/api/v1/conversations/{id}"), &s.a.engine)
        .await;
    assert_error(st, &b, 404, "ENG", &[6500]);
    let (st, b) = s
        .post(
            &format!("/api/v1/conversations/{id}/close"),
            &s.a.engine,
            json!({}),
        )
        .await;
    assert_error(st, &b, 404, "ENG", &[6500]);
    let (st, b) = s.get("/api/v1/conversations/not-a-uuid", &s.a.engine).await;
    assert_error(st, &b, 400, "ENG", &[203]);
    s.stop().await;
}

#[tokio::test]
async fn a_customer_message_reaches_the_agent_and_reads_back() {
    for backend in backends("inbound") {
        let s = TestServer::start_on(backend).await;
        let h = hub_with_agent(&s, "h").await;
        let c = s.establish(&s.a.engine, &h.customer, "cust").await;
        let id = c["conversationId"].as_str().unwrap();

        let (st, out) = s
            .send(
                &s.a.engine,
                id,
                json!({ "type": "message", "externalId": "ext-1",
                        "message": { "type": "text", "text": "https://example.com/cat.png" } }),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{out}");
        assert_eq!(out["status"], 200);
        assert_eq!(out["externalId"], "ext-1");
        assert_eq!(out["hubId"], h.hub);
        assert_eq!(out["conversationId"], id);
        assert_eq!(out["integrationId"], h.customer);
        assert!(out["interactionId"].as_str().is_some());
        let first = out["eventId"].as_i64().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((now - first).abs() < 60_000, "eventId {first} is epoch ms");

        // An agent answers, naming itself.
        let (st, reply) = s
            .send(
                &s.a.engine,
                id,
                json!({ "type": "message", "sender": { "integrationId": h.agent_id() },
                        "message": { "type": "text", "text": "Hello!" } }),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{reply}");
        assert_eq!(reply["integrationId"], h.agent_id());
        assert!(reply["eventId"].as_i64().unwrap() > first);
        // An event has no interactionId.
        let (st, seen) = s
            .send(
                &s.a.engine,
                id,
                json!({ "type": "event", "event": { "type": "seen" } }),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{seen}");
        assert!(seen.get("interactionId").is_none(), "{seen}");

        let copies = activities(&s, id, "type=Customer").await;
        assert_eq!(copies.len(), 3, "{copies:?}");
        let a = &copies[0];
        assert_eq!(a["type"], "message");
        assert_eq!(a["eventTrigger"], "message:customer");
        assert_eq!(a["eventId"], first);
        assert_eq!(a["externalId"], "ext-1");
        assert_eq!(a["isEcho"], false);
        assert_eq!(a["interactionId"], out["interactionId"]);
        assert_eq!(a["flowProcess"], "Default");
        assert_eq!(a["sender"]["integrationId"], h.customer);
        assert_eq!(a["sender"]["integrationType"], "Customer");
        assert_eq!(a["sender"]["channelType"], "Direct");
        assert_eq!(a["sender"]["tokenId"], c["tokenId"]);
        assert_eq!(a["recipient"]["integrationId"], h.agent_id());
        assert_eq!(a["recipient"]["integrationType"], "Agent");
        assert_eq!(a["recipient"]["tokenId"], format!("{id}.{}", h.agent_id()));
        // The URL became an image.
        assert_eq!(a["message"]["type"], "image");
        assert_eq!(a["message"]["url"], "https://example.com/cat.png");
        assert_eq!(copies[1]["eventTrigger"], "message:agent");
        assert_eq!(copies[1]["recipient"]["integrationId"], h.customer);
        assert_eq!(copies[2]["eventTrigger"], "event:customer");
        assert!(copies[2].get("interactionId").is_none());

        let after = activities(&s, id, &format!("type=Agent&leid={first}")).await;
        assert_eq!(after.len(), 2, "{after:?}");
        assert_eq!(after[0]["eventTrigger"], "message:agent");
        assert_eq!(after[1]["eventTrigger"], "event:customer");
        let last = after[1]["eventId"].as_i64().unwrap();
        assert_eq!(
            activities(&s, id, &format!("type=Agent&leid={last}"))
                .await
                .len(),
            0
        );
        assert_eq!(activities(&s, id, "type=Bot").await.len(), 0);

        let (st, b) = s
            .get(
                &format!("/api/v1/interactions/activities/{id}"),
                &s.a.engine,
            )
            .await;
        assert_error(st, &b, 400, "ENG", &[200]);
        let (st, b) = s
            .get(
                &format!("/api/v1/interactions/activities/{id}?type=System"),
                &s.a.engine,
            )
            .await;
        assert_error(st, &b, 400, "ENG", &[206]);
        let (st, b) = s
            .get(
                &format!("/api/v1/interactions/activities/{id}?type=Customer&leid=x"),
                &s.a.engine,
            )
            .await;
        assert_error(st, &b, 400, "ENG", &[201]);
        let (st, b) = s
            .get(
                &format!(
                    "/api/v1/interactions/activities/{}?type=Customer",
                    uuid::Uuid::now_v7()
                ),
                &s.a.engine,
            )
            .await;
        assert_error(st, &b, 404, "ENG", &[6500]);
        s.stop().await;
    }
}

#[tokio::test]
async fn bad_activities_get_their_codes_and_store_nothing() {
    let s = TestServer::start().await;
    let h = hub_with_agent(&s, "h").await;
    let c = s.establish(&s.a.engine, &h.customer, "cust").await;
    let id = c["conversationId"].as_str().unwrap().to_owned();

    let cases: Vec<(Value, u16, Vec<u32>)> = vec![
        (
            json!({ "type": "message", "message": { "type": "hologram" } }),
            400,
            vec![206],
        ),
        (
            json!({ "type": "event", "event": { "type": "dance" } }),
            400,
            vec![206],
        ),
        (
            json!({ "type": "message", "message": { "type": "text", "text": "a" },
                    "event": { "type": "seen" } }),
            400,
            vec![5003],
        ),
        (json!({ "type": "message" }), 400, vec![5003]),
        (
            json!({ "message": { "type": "text", "text": "a" } }),
            400,
            vec![301],
        ),
        (
            json!({ "type": "message", "message": { "type": "image" } }),
            400,
            vec![301],
        ),
        (
            json!({ "type": "message", "sender": { "integrationId": uuid::Uuid::now_v7() },
                    "message": { "type": "text", "text": "a" } }),
            404,
            vec![6000],
        ),
    ];
    for (body, status, codes) in cases {
        let (st, b) = s.send(&s.a.engine, &id, body.clone()).await;
        assert_error(st, &b, status, "ENG", &codes);
    }
    // An Agent of another hub of the same tenant.
    let other = hub_with_agent(&s, "other").await;
    let (st, b) = s
        .send(
            &s.a.engine,
            &id,
            json!({ "type": "message", "sender": { "integrationId": other.agent_id() },
                    "message": { "type": "text", "text": "a" } }),
        )
        .await;
    assert_error(st, &b, 400, "ENG", &[206]);
    // Unknown conversation; another tenant's token.
    let (st, b) = s
        .send(&s.a.engine, &uuid::Uuid::now_v7().to_string(), text("a"))
        .await;
    assert_error(st, &b, 404, "ENG", &[6500]);
    let (st, b) = s.send(&s.b.engine, &id, text("a")).await;
    assert_error(st, &b, 404, "ENG", &[6500]);
    let (st, b) = s
        .raw(
            Method::POST,
            &format!("/inbound/customer/v1/direct/activity/{id}"),
            Some(&s.a.engine),
            Some("application/json"),
            "{not json",
        )
        .await;
    assert_error(st, &b, 400, "ENG", &[300]);
    assert_eq!(activities(&s, &id, "type=Customer").await.len(), 0);

    // A paused agent can neither send nor receive: with no other handler, 5501.
    s.put(
        &format!("/api/v1/integrations/{}", h.agent_id()),
        &s.a.portal,
        json!({ "statusId": 3002 }),
    )
    .await;
    let (st, b) = s
        .send(
            &s.a.engine,
            &id,
            json!({ "type": "message", "sender": { "integrationId": h.agent_id() },
                    "message": { "type": "text", "text": "a" } }),
        )
        .await;
    assert_error(st, &b, 400, "ENG", &[6502]);
    let (st, b) = s.send(&s.a.engine, &id, text("anyone?")).await;
    assert_error(st, &b, 400, "ENG", &[5501]);
    assert_eq!(activities(&s, &id, "type=Customer").await.len(), 0);

    // A paused hub: 6502.
    s.put(
        &format!("/api/v1/integrations/{}", h.agent_id()),
        &s.a.portal,
        json!({ "statusId": 3000 }),
    )
    .await;
    s.put(
        &format!("/api/v1/hubs/{}", h.hub),
        &s.a.portal,
        json!({ "statusId": 2002 }),
    )
    .await;
    let (st, b) = s.send(&s.a.engine, &id, text("a")).await;
    assert_error(st, &b, 400, "ENG", &[6502]);
    s.put(
        &format!("/api/v1/hubs/{}", h.hub),
        &s.a.portal,
        json!({ "statusId": 2000 }),
    )
    .await;

    // A closed conversation: 6501.
    s.post(
        &format!("/api/v1/conversations/{id}/close"),
        &s.a.engine,
        json!({}),
    )
    .await;
    let (st, b) = s.send(&s.a.engine, &id, text("a")).await;
    assert_error(st, &b, 400, "ENG", &[6501]);
    assert_eq!(activities(&s, &id, "type=Customer").await.len(), 0);
    s.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_answers_the_first_result_once() {
    for backend in backends("idempotency") {
        let s = TestServer::start_on(backend).await;
        let h = hub_with_agent(&s, "h").await;
        let c = s.establish(&s.a.engine, &h.customer, "cust").await;
        let id = c["conversationId"].as_str().unwrap().to_owned();
        let other = s.establish(&s.a.engine, &h.customer, "cust-2").await;
        let other = other["conversationId"].as_str().unwrap().to_owned();
        let send = |conversation: String, body: Value, key: &'static str, token: String| {
            let s = &s;
            async move {
                let resp = s
                    .http
                    .post(s.url(&format!(
                        "/inbound/customer/v1/direct/activity/{conversation}"
                    )))
                    .bearer_auth(token)
                    .header("Idempotency-Key", key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                read(resp).await
            }
        };
        let (st, first) = send(id.clone(), text("once"), "k-1", s.a.engine.clone()).await;
        assert_eq!(st, StatusCode::OK, "{first}");
        let (st, second) = send(id.clone(), text("once"), "k-1", s.a.engine.clone()).await;
        assert_eq!(st, StatusCode::OK, "{second}");
        assert_eq!(first, second);
        assert_eq!(activities(&s, &id, "type=Customer").await.len(), 1);

        let (st, b) = send(id.clone(), text("twice"), "k-1", s.a.engine.clone()).await;
        assert_error(st, &b, 409, "ENG", &[106]);
        let (st, b) = send(other.clone(), text("once"), "k-1", s.a.engine.clone()).await;
        assert_error(st, &b, 409, "ENG", &[106]);
        // Keys are per tenant.
        let hb = s.hub(&s.b.portal, "hb").await;
        let cb = s.direct(&s.b.portal, &hb, "c", "Customer", json!({})).await;
        s.direct(&s.b.portal, &hb, "a", "Agent", json!({})).await;
        let conv_b = s
            .establish(&s.b.engine, cb["integrationId"].as_str().unwrap(), "x")
            .await;
        let (st, b) = send(
            conv_b["conversationId"].as_str().unwrap().to_owned(),
            text("once"),
            "k-1",
            s.b.engine.clone(),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(activities(&s, &id, "type=Customer").await.len(), 1);
        s.stop().await;
    }
}

#[tokio::test]
async fn an_integration_signs_its_own_requests() {
    let s = TestServer::start().await;
    let h = hub_with_agent(&s, "h").await;
    let c = s.establish(&s.a.engine, &h.customer, "cust").await;
    let id = c["conversationId"].as_str().unwrap().to_owned();
    let private = h.agent["configuration"]["privateSigningKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/inbound/customer/v1/direct/activity/{id}");
    let signed = |body: String, ts: i64, signature: Option<String>| {
        let s = &s;
        let path = path.clone();
        let private = private.clone();
        let agent = h.agent_id();
        async move {
            let sig = signature
                .unwrap_or_else(|| sign(&private, format!("{ts}.POST.{path}.{body}").as_bytes()));
            let resp = s
                .http
                .post(s.url(&path))
                .header("content-type", "application/json")
                .header("x-integration-id", agent)
                .header("x-timestamp", ts.to_string())
                .header("x-signature", sig.clone())
                .body(body)
                .send()
                .await
                .unwrap();
            (read(resp).await, sig)
        }
    };
    let body = text("signed hello").to_string();
    let ((st, out), sig) = signed(body.clone(), unix_now(), None).await;
    assert_eq!(st, StatusCode::OK, "{out}");
    assert_eq!(out["integrationId"], h.agent_id(), "acts as the signer");
    // The same signature again, inside the window: a replay.
    let ((st, b), _) = signed(body.clone(), unix_now(), Some(sig)).await;
    assert_error(st, &b, 401, "ENG", &[102]);
    // Outside the window.
    let ((st, b), _) = signed(body.clone(), unix_now() - 301, None).await;
    assert_error(st, &b, 401, "ENG", &[102]);
    let ((st, b), _) = signed(body.clone(), unix_now() + 301, None).await;
    assert_error(st, &b, 401, "ENG", &[102]);
    // A signature over another body.
    let ((st, b), _) = signed(
        text("tampered").to_string(),
        unix_now(),
        Some(sign(&private, b"something else")),
    )
    .await;
    assert_error(st, &b, 401, "ENG", &[102]);
    // Naming another sender.
    let other = json!({ "type": "message", "sender": { "integrationId": h.customer },
                        "message": { "type": "text", "text": "x" } });
    let ((st, b), _) = signed(other.to_string(), unix_now(), None).await;
    assert_error(st, &b, 403, "ENG", &[101]);
    assert_eq!(activities(&s, &id, "type=Agent").await.len(), 1);
    s.stop().await;
}

/// Every listed copy: each one has the customer as sender or recipient (echo and System
/// copies are left out of the list).
async fn all(s: &TestServer, id: &str) -> Vec<Value> {
    activities(s, id, "type=Customer").await
}

#[tokio::test]
async fn bot_mode_hand_off_and_echo() {
    let s = TestServer::start().await;
    let hub = s.hub(&s.a.portal, "h").await;
    let customer = s
        .direct(&s.a.portal, &hub, "c", "Customer", json!({}))
        .await["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent = s
        .direct(&s.a.portal, &hub, "agent", "Agent", json!({ "echo": true }))
        .await["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let bot = s.direct(&s.a.portal, &hub, "bot", "Bot", json!({})).await["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = s.establish(&s.a.engine, &customer, "cust").await;
    let id = c["conversationId"].as_str().unwrap().to_owned();
    let recipients_of = |copies: &[Value], event: i64| -> Vec<(String, bool)> {
        copies
            .iter()
            .filter(|c| c["eventId"] == event)
            .map(|c| {
                (
                    c["recipient"]["integrationId"].as_str().unwrap().to_owned(),
                    c["isEcho"].as_bool().unwrap(),
                )
            })
            .collect()
    };

    // Bot mode: the bot handles.
    let e1 = s.say(&s.a.engine, &id, "hi").await;
    assert_eq!(
        recipients_of(&all(&s, &id).await, e1),
        vec![(bot.clone(), false)]
    );
    // The bot hands over.
    let (st, b) = s
        .send(
            &s.a.engine,
            &id,
            json!({ "type": "event", "sender": { "integrationId": bot }, "event": { "type": "handover" } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let e2 = s.say(&s.a.engine, &id, "human please").await;
    let got = recipients_of(&all(&s, &id).await, e2);
    assert!(
        got.contains(&(agent.clone(), false)) && !got.iter().any(|r| r.0 == bot),
        "{got:?}"
    );
    // The agent answers: the customer gets it (its echo is stored but not listed).
    let (st, b) = s
        .send(
            &s.a.engine,
            &id,
            json!({ "type": "message", "sender": { "integrationId": agent },
                    "message": { "type": "text", "text": "hello" } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let e3 = b["eventId"].as_i64().unwrap();
    let got = recipients_of(&all(&s, &id).await, e3);
    assert!(got.iter().all(|r| r.0 == customer), "{got:?}");
    // The agent releases: back to the bot.
    s.send(
        &s.a.engine,
        &id,
        json!({ "type": "event", "sender": { "integrationId": agent }, "event": { "type": "release" } }),
    )
    .await;
    let e4 = s.say(&s.a.engine, &id, "again").await;
    assert_eq!(
        recipients_of(&all(&s, &id).await, e4),
        vec![(bot.clone(), false)]
    );
    // With the bot paused, the agents handle even in bot mode.
    s.put(
        &format!("/api/v1/integrations/{bot}"),
        &s.a.portal,
        json!({ "statusId": 3002 }),
    )
    .await;
    let e5 = s.say(&s.a.engine, &id, "still there?").await;
    assert_eq!(
        recipients_of(&all(&s, &id).await, e5),
        vec![(agent.clone(), false)]
    );
    s.stop().await;
}

#[tokio::test]
async fn the_sweeper_closes_dormant_conversations() {
    let s = TestServer::start_with(Backend::Sqlite, |args| {
        args.sweep_interval = std::time::Duration::from_millis(100);
    })
    .await;
    let hub = s.hub(&s.a.portal, "h").await;
    s.put(
        &format!("/api/v1/hubs/{hub}"),
        &s.a.portal,
        json!({ "closeDormantConversation": 1 }),
    )
    .await;
    let customer = s
        .direct(&s.a.portal, &hub, "c", "Customer", json!({}))
        .await["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    s.direct(&s.a.portal, &hub, "a", "Agent", json!({})).await;
    let idle = s.establish(&s.a.engine, &customer, "idle").await;
    let busy = s.establish(&s.a.engine, &customer, "busy").await;
    // Make one look idle for two days, straight in the database.
    {
        use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
        let db = Database::connect(&s.database_url).await.unwrap();
        let two_days_ago = (unix_now() - 2 * 86_400) * 1000;
        let id = uuid::Uuid::parse_str(idle["conversationId"].as_str().unwrap()).unwrap();
        db.execute(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "UPDATE conversations SET last_activity = ? WHERE id = ?",
            [two_days_ago.into(), id.into()],
        ))
        .await
        .unwrap();
    }
    let path = format!(
        "/api/v1/conversations/{}",
        idle["conversationId"].as_str().unwrap()
    );
    let mut status = Value::Null;
    for _ in 0..100 {
        status = s.get(&path, &s.a.engine).await.1["status"].clone();
        if status == "closed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "closed");
    let busy = s
        .get(
            &format!(
                "/api/v1/conversations/{}",
                busy["conversationId"].as_str().unwrap()
            ),
            &s.a.engine,
        )
        .await
        .1;
    assert_eq!(busy["status"], "open");
    s.stop().await;
}

#[tokio::test]
async fn another_tenants_conversation_activities_are_404_6500_as_if_it_did_not_exist() {
    for backend in
        backends("another_tenants_conversation_activities_are_404_6500_as_if_it_did_not_exist")
    {
        let s = TestServer::start_on(backend).await;
        let a = hub_with_agent(&s, "A").await;
        let conv = s.establish(&s.a.engine, &a.customer, "visitor").await;
        let id = conv["conversationId"].as_str().unwrap().to_owned();
        s.say(&s.a.engine, &id, "private to A").await;
        assert_eq!(activities(&s, &id, "type=Customer").await.len(), 1);
        // B's own conversation and message, so that B's reads have something to find.
        let b_hub = s.hub(&s.b.portal, "B").await;
        let b_customer = s
            .direct(&s.b.portal, &b_hub, "customers", "Customer", json!({}))
            .await["integrationId"]
            .as_str()
            .unwrap()
            .to_owned();
        s.direct(&s.b.portal, &b_hub, "agents", "Agent", json!({}))
            .await;
        let b_conv = s.establish(&s.b.engine, &b_customer, "visitor").await["conversationId"]
            .as_str()
            .unwrap()
            .to_owned();
        s.say(&s.b.engine, &b_conv, "B's own").await;
        let (status, own) = s
            .get(
                &format!("/api/v1/interactions/activities/{b_conv}?type=Customer"),
                &s.b.engine,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{own}");
        assert_eq!(own.as_array().unwrap().len(), 1, "{own}");

        let unknown = uuid::Uuid::now_v7().to_string();
        for query in [
            "type=Customer",
            "type=Agent",
            "type=Bot",
            "type=Customer&leid=0",
        ] {
            let (status, body) = s
                .get(
                    &format!("/api/v1/interactions/activities/{id}?{query}"),
                    &s.b.engine,
                )
                .await;
            assert_error(status, &body, 404, "ENG", &[6500]);
            // Exactly as for a conversation that exists nowhere (its id aside).
            let (_, none) = s
                .get(
                    &format!("/api/v1/interactions/activities/{unknown}?{query}"),
                    &s.b.engine,
                )
                .await;
            assert_eq!(
                body.to_string().replace(&id, "ID"),
                none.to_string().replace(&unknown, "ID"),
                "{query}"
            );
        }
        s.stop().await;
    }
}
