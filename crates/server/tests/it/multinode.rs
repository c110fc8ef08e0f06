//! Several nodes (SPEC 5.6 and 6; ARCHITECTURE "One machine, then many"): two real
//! `switchboard serve` processes share one fresh PostgreSQL database and one Redis, and what
//! enters one node reaches the websockets held by the other.
//!
//! Needs `TEST_DATABASE_URL` (an admin URL: a database `sb_it_…` is created and dropped) and
//! `TEST_REDIS_URL`; without them a `SKIPPED` line on stderr names the test, which passes.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::node::Node;
use crate::support::*;

/// The PostgreSQL admin URL and the Redis URL, or `None` after a `SKIPPED` line naming the test.
fn services(test: &str) -> Option<(String, String)> {
    let redis = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    match (postgres_url(), redis) {
        (Some(pg), Some(redis)) => Some((pg, redis)),
        _ => {
            skipped(
                test,
                "PostgreSQL and Redis",
                "TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test and TEST_REDIS_URL=redis://127.0.0.1:6379",
            );
            None
        }
    }
}

/// Opens `/engine-chat-hub?{query}` with a bearer token; panics unless upgraded.
async fn ws(node: &Node, query: &str, token: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!(
        "{}/engine-chat-hub?{query}",
        node.base.replacen("http://", "ws://", 1)
    );
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("{}: websocket refused: {e}", node.name));
    // The session registers for live frames once the upgrade has completed on the server:
    // one round trip (a frame type it refuses, answered by an `error` frame) proves it is
    // listening before anything is sent to it.
    send_frame(&mut ws, json!({ "type": "sync", "ref": "sync" })).await;
    let answer = frame(&mut ws).await;
    assert_eq!(
        (&answer["type"], &answer["ref"]),
        (&json!("error"), &json!("sync")),
        "{answer}"
    );
    ws
}

/// POSTs a JSON body with a bearer token; answers status and body.
async fn post(
    http: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    read(
        http.post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("send"),
    )
    .await
}

/// The body that creates a Direct integration of `kind`.
fn direct(name: &str, kind: &str) -> Value {
    json!({ "channelId": "Direct", "name": name,
            "configuration": { "integrationType": kind } })
}

async fn token(http: &reqwest::Client, node: &Node, client: &Value) -> String {
    let (status, body) = read(
        http.post(node.url("/connect/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client["clientId"].as_str().expect("clientId")),
                (
                    "client_secret",
                    client["clientSecret"].as_str().expect("clientSecret"),
                ),
            ])
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "token: {body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

#[tokio::test]
async fn an_activity_posted_to_one_node_reaches_a_websocket_on_another() {
    let Some((admin, redis)) =
        services("an_activity_posted_to_one_node_reaches_a_websocket_on_another")
    else {
        return;
    };
    // Dropped last: the nodes (declared after it) go first.
    let db = Database::create(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    let key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(switchboard_storage::EncryptionKey::generate().0)
    };
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("REDIS_URL", redis.as_str()),
        ("SWITCHBOARD_ENCRYPTION_KEY", key.as_str()),
    ];

    // Node 1 first: it migrates the empty database and prints the default tenant; then node 2.
    let mut one = Node::spawn("node 1", dir.path(), &env);
    let creds = one.credentials().await;
    one.wait_ready().await;
    let mut two = Node::spawn("node 2", dir.path(), &env);
    two.wait_ready().await;

    let http = reqwest::Client::new();
    for node in [&one, &two] {
        let (status, body) = read(http.get(node.url("/readyz")).send().await.unwrap()).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!({ "status": "ok" })),
            "{} /readyz with Redis",
            node.name
        );
    }

    // One tenant, one token-signing key: a token from either node works on both.
    let portal = token(&http, &one, &creds["portal"]).await;
    let engine = token(&http, &two, &creds["engine"]).await;
    let (status, hub) = post(
        &http,
        one.url("/api/v1/hubs"),
        &portal,
        json!({ "name": "Support", "description": "two nodes" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{hub}");
    let hub = hub["hubId"].as_str().unwrap().to_owned();
    let integrations = one.url(&format!("/api/v1/integrations/hubs/{hub}"));
    let (status, customer) = post(
        &http,
        integrations.clone(),
        &portal,
        direct("customers", "Customer"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{customer}");
    let customer = customer["integrationId"].as_str().unwrap().to_owned();
    let (status, agent) = post(&http, integrations, &portal, direct("agents", "Agent")).await;
    assert_eq!(status, StatusCode::OK, "{agent}");
    let agent = agent["integrationId"].as_str().unwrap().to_owned();

    // The agent app holds a socket on node 2, and another one on node 1.
    let mut on_two = ws(&two, &format!("iId={agent}"), &engine).await;
    let mut on_one = ws(&one, &format!("iId={agent}"), &engine).await;

    // A customer writes through node 1.
    let (status, c) = post(
        &http,
        one.url("/api/v1/conversations/establish"),
        &engine,
        json!({ "integrationId": customer, "binding": "cust-1" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    let conversation = c["conversationId"].as_str().unwrap().to_owned();
    let inbound = one.url(&format!(
        "/inbound/customer/v1/direct/activity/{conversation}"
    ));
    let (status, sent) = post(
        &http,
        inbound.clone(),
        &engine,
        json!({ "type": "message", "message": { "type": "text", "text": "Hello from node 1" } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let first = sent["eventId"].as_i64().unwrap();

    for (name, ws) in [("node 2", &mut on_two), ("node 1", &mut on_one)] {
        let got = frame(ws).await;
        assert_eq!(got["type"], "activity", "{name}: {got}");
        let p = &got["payload"];
        assert_eq!(p["hubId"], hub, "{name}: {got}");
        assert_eq!(p["tenantId"], creds["tenantId"], "{name}: {got}");
        assert_eq!(p["integrationId"], agent, "{name}: {got}");
        assert_eq!(p["conversationId"], conversation, "{name}: {got}");
        let a = &p["activity"];
        assert_eq!(a["eventId"], first, "{name}: {got}");
        assert_eq!(a["interactionId"], sent["interactionId"], "{name}: {got}");
        assert_eq!(a["eventTrigger"], "message:customer", "{name}: {got}");
        assert_eq!(a["sender"]["integrationId"], customer, "{name}: {got}");
        assert_eq!(a["sender"]["tokenId"], c["tokenId"], "{name}: {got}");
        assert_eq!(a["recipient"]["integrationId"], agent, "{name}: {got}");
        assert_eq!(a["message"]["text"], "Hello from node 1", "{name}: {got}");
    }

    // The agent answers on node 2's socket, as its integration.
    send_frame(
        &mut on_two,
        json!({ "type": "activity", "ref": "r-1", "conversationId": conversation,
                "activity": { "type": "message",
                              "message": { "type": "text", "text": "Hi, node 2 here" } } }),
    )
    .await;
    let ack = frame(&mut on_two).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["ref"], "r-1", "{ack}");
    let answer = ack["eventId"].as_i64().expect("eventId");
    assert!(answer > first, "{ack}");
    assert!(ack["interactionId"].as_str().is_some(), "{ack}");
    // Not an echo: neither agent socket gets its own message.
    quiet(&mut on_two, 300).await;
    quiet(&mut on_one, 300).await;
    // The customer's side reads it through node 1.
    let (status, copies) = read(
        http.get(one.url(&format!(
            "/api/v1/interactions/activities/{conversation}?type=Customer&leid={first}"
        )))
        .bearer_auth(&engine)
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{copies}");
    let copies = copies.as_array().unwrap();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(copies[0]["eventId"], answer);
    assert_eq!(copies[0]["eventTrigger"], "message:agent");
    assert_eq!(copies[0]["sender"]["integrationId"], agent);
    assert_eq!(copies[0]["recipient"]["integrationId"], customer);
    assert_eq!(copies[0]["message"]["text"], "Hi, node 2 here");

    // Pausing the agent through node 1 closes its sockets on both nodes with 4403.
    let agent_url = one.url(&format!("/api/v1/integrations/{agent}"));
    let (status, body) = read(
        http.put(&agent_url)
            .bearer_auth(&portal)
            .json(&json!({ "statusId": 3002 }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(close_code(&mut on_two).await.0, 4403, "node 2");
    assert_eq!(close_code(&mut on_one).await.0, 4403, "node 1");

    // Active again, the agent reconnects to node 2 and resumes from storage what it got on
    // node 1.
    let (status, body) = read(
        http.put(&agent_url)
            .bearer_auth(&portal)
            .json(&json!({ "statusId": 3000 }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut again = ws(&two, &format!("iId={agent}"), &engine).await;
    send_frame(&mut again, json!({ "type": "resume", "leid": 0 })).await;
    let replayed = frame(&mut again).await;
    assert_eq!(replayed["type"], "activity", "{replayed}");
    assert_eq!(
        replayed["payload"]["activity"]["eventId"], first,
        "{replayed}"
    );
    assert_eq!(
        replayed["payload"]["activity"]["message"]["text"],
        "Hello from node 1"
    );
    quiet(&mut again, 300).await;

    // SIGTERM drains node 2: its socket closes with 1001, it exits 0; node 1 still serves.
    two.sigterm();
    assert_eq!(close_code(&mut again).await.0, 1001);
    let status = two
        .wait_exit(Duration::from_secs(15))
        .expect("node 2 exits after SIGTERM");
    assert!(status.success(), "node 2: {status}");
    assert_eq!(two.rest_of_stdout(), "", "node 2 printed no second tenant");
    let (status, _) = read(http.get(one.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let status = one.stop();
    assert!(status.success(), "node 1: {status}");
    drop((one, two));
    drop(db);
}
