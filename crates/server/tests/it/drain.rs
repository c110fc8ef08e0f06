//! SIGTERM with work in flight (SPEC 6: "stop accepting, finish in-flight requests and delivery
//! attempts, close websockets with code 1001, then exit"), on the real binary: at the signal a
//! request waits on an outgoing call held by the test, a webhook attempt is held by its receiver,
//! and an agent holds a websocket.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::gate::Gate;
use crate::node::Node;
use crate::support::*;

async fn token(http: &reqwest::Client, node: &Node, client: &Value) -> String {
    let (status, body) = read(
        http.post(node.url("/connect/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client["clientId"].as_str().unwrap()),
                ("client_secret", client["clientSecret"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "token: {body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn call(
    http: &reqwest::Client,
    node: &Node,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http.request(method, node.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    read(req.send().await.expect("send")).await
}

/// Creates an integration in `hub`; answers its id.
async fn integration(
    http: &reqwest::Client,
    node: &Node,
    portal: &str,
    hub: &str,
    body: Value,
) -> String {
    let (status, created) = call(
        http,
        node,
        reqwest::Method::POST,
        &format!("/api/v1/integrations/hubs/{hub}"),
        portal,
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    created["integrationId"].as_str().unwrap().to_owned()
}

async fn ws(node: &Node, query: &str, token: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!(
        "{}/engine-chat-hub?{query}",
        node.base.replacen("http://", "ws://", 1)
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket upgraded")
        .0
}

#[tokio::test]
async fn sigterm_finishes_the_request_and_the_webhook_attempt_in_flight_and_closes_sockets_with_1001(
) {
    let dir = tempfile::tempdir().unwrap();
    let mut slack = Gate::start().await;
    let mut receiver = Gate::start().await;
    let slack_url = slack.base.clone();
    let env = [
        ("SWITCHBOARD_ALLOW_PRIVATE_WEBHOOKS", "true"),
        ("SWITCHBOARD_SLACK_API_URL", slack_url.as_str()),
    ];
    let mut node = Node::spawn("drain", dir.path(), &env);
    let creds = node.credentials().await;
    node.wait_ready().await;
    let http = reqwest::Client::new();
    let portal = token(&http, &node, &creds["portal"]).await;
    let engine = token(&http, &node, &creds["engine"]).await;

    let (status, hub) = call(
        &http,
        &node,
        reqwest::Method::POST,
        "/api/v1/hubs",
        &portal,
        Some(json!({ "name": "Support", "description": "drain" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{hub}");
    let hub = hub["hubId"].as_str().unwrap().to_owned();
    let customer = integration(
        &http,
        &node,
        &portal,
        &hub,
        json!({ "channelId": "Direct", "name": "customers", "configuration": { "integrationType": "Customer" } }),
    )
    .await;
    let desk = integration(
        &http,
        &node,
        &portal,
        &hub,
        json!({ "channelId": "Direct", "name": "desk", "configuration": { "integrationType": "Agent" } }),
    )
    .await;
    let hooked = integration(
        &http,
        &node,
        &portal,
        &hub,
        json!({ "channelId": "Direct", "name": "hooked", "configuration": {
            "integrationType": "Agent", "webhookUrl": format!("{}/hook", receiver.base) } }),
    )
    .await;
    let (status, conv) = call(
        &http,
        &node,
        reqwest::Method::POST,
        "/api/v1/conversations/establish",
        &engine,
        Some(json!({ "integrationId": customer, "binding": "visitor" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{conv}");
    let conv = conv["conversationId"].as_str().unwrap().to_owned();

    // An agent's websocket, and a customer message that reaches it and the webhook.
    let mut socket = ws(&node, &format!("iId={desk}"), &engine).await;
    let (status, sent) = call(
        &http,
        &node,
        reqwest::Method::POST,
        &format!("/inbound/customer/v1/direct/activity/{conv}"),
        &engine,
        Some(json!({ "type": "message", "message": { "type": "text", "text": "in flight" } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let event_id = sent["eventId"].as_i64().unwrap();
    assert_eq!(
        frame(&mut socket).await["payload"]["activity"]["eventId"],
        event_id
    );
    // The webhook attempt: held by the receiver.
    let attempt = receiver.next().await;
    assert_eq!(attempt.header("x-integration-id"), Some(hooked.as_str()));
    // A request in flight: creating a Slack integration waits on Slack's OAuth exchange, which
    // the test holds.
    let creating = {
        let http = http.clone();
        let url = node.url(&format!("/api/v1/integrations/hubs/{hub}"));
        let portal = portal.clone();
        tokio::spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(portal)
                .json(&json!({ "channelId": "Slack", "name": "Slack",
                               "configuration": { "code": "drain-code", "nonce": "n-1" } }))
                .send()
                .await
                .expect("the request in flight gets its answer");
            read(resp).await
        })
    };
    let exchange = slack.next().await;
    assert_eq!(exchange.path, "/oauth.v2.access");
    assert!(
        String::from_utf8_lossy(&exchange.body).contains("code=drain-code"),
        "the exchange of the request's code"
    );

    node.sigterm();
    // It stops accepting: the event that says the signal was taken.
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(node.addr()).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "still accepting connections 30 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(node.running(), "it waits for the work in flight");
    let closing = tokio::spawn(async move { close_code(&mut socket).await });

    // The request in flight finishes, with its answer.
    exchange.answer(
        200,
        json!({ "ok": true, "access_token": "xoxb-drained", "token_type": "bot",
                "scope": "chat:write", "bot_user_id": "U0BOT", "app_id": "A0APP",
                "team": { "id": "T0DRAIN", "name": "Acme" } }),
    );
    let (status, created) = creating.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["inboundId"], "T0DRAIN", "{created}");
    // The webhook attempt in flight finishes.
    attempt.answer(200, json!({}));
    // The websocket was closed with 1001.
    assert_eq!(closing.await.unwrap().0, 1001);
    let status = node
        .exited(Duration::from_secs(30))
        .await
        .expect("it exits once the work in flight is done");
    assert!(status.success(), "{status}");

    // Started again on the same database (the receiver now holds whatever comes: a delivery
    // left undone would be re-sent and stay pending): the request's integration was stored,
    // and the delivery succeeded with its one attempt.
    let mut again = Node::spawn("drain-again", dir.path(), &env);
    again.wait_ready().await;
    let portal = token(&http, &again, &creds["portal"]).await;
    let (status, got) = call(
        &http,
        &again,
        reqwest::Method::GET,
        &format!(
            "/api/v1/integrations/{}",
            created["integrationId"].as_str().unwrap()
        ),
        &portal,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let (status, deliveries) = call(
        &http,
        &again,
        reqwest::Method::GET,
        &format!("/api/v1/deliveries?integrationId={hooked}"),
        &portal,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{deliveries}");
    assert_eq!(deliveries["total"], 1, "{deliveries}");
    let delivery = &deliveries["results"][0];
    assert_eq!(delivery["eventIds"], json!([event_id]), "{delivery}");
    assert_eq!(delivery["status"], "succeeded", "{delivery}");
    assert_eq!(delivery["attemptCount"], 1, "{delivery}");
    assert_eq!(delivery["attempts"][0]["statusCode"], 200, "{delivery}");
    again.sigterm();
    let status = again.exited(Duration::from_secs(30)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}
