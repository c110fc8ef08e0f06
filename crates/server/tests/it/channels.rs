//! What the channel adapters' end-to-end tests share (SPEC 7.21): a server pointed at the
//! providers' fakes, with a short retry schedule and provider calls limited to loopback; a hub
//! with an Agent to receive customer messages and send replies; reading deliveries,
//! notifications and a conversation's activities back.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

/// A server whose provider calls may only go to loopback, with `schedule` and `adjust`.
pub async fn server(
    backend: Backend,
    schedule: &str,
    adjust: impl FnOnce(&mut switchboard::ServeArgs),
) -> TestServer {
    let schedule = switchboard::config::parse_schedule(schedule).unwrap();
    TestServer::start_with(backend, move |args| {
        args.retry_schedule = schedule;
        args.webhook_timeout = Duration::from_secs(2);
        args.providers_loopback_only = true;
        args.providers = switchboard::config::ProvidersMode::Live;
        adjust(args);
    })
    .await
}

/// A hub of tenant a with a live Direct Agent (no webhook): answers (hub, agent id).
pub async fn hub_with_agent(s: &TestServer) -> (String, String) {
    let hub = s
        .hub(&s.a.portal, &format!("hub-{}", uuid::Uuid::new_v4()))
        .await;
    let agent = s
        .direct(&s.a.portal, &hub, "Agent", "Agent", json!({}))
        .await;
    (hub, agent["integrationId"].as_str().unwrap().to_owned())
}

/// Creates an integration; answers the status and body.
pub async fn create(
    s: &TestServer,
    hub: &str,
    channel: &str,
    configuration: Value,
) -> (StatusCode, Value) {
    s.post(
        &format!("/api/v1/integrations/hubs/{hub}"),
        &s.a.portal,
        json!({ "name": format!("{channel}-{}", uuid::Uuid::new_v4()), "channelId": channel, "configuration": configuration }),
    )
    .await
}

/// The integrations of a hub.
pub async fn integrations(s: &TestServer, hub: &str) -> Vec<Value> {
    let (status, body) = s
        .get(&format!("/api/v1/integrations?hubId={hub}"), &s.a.portal)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["results"].as_array().cloned().unwrap_or_default()
}

/// The open conversation of `binding` on `integration` (established through the API, which
/// merges nothing when it is open already): its id.
pub async fn conversation_of(s: &TestServer, integration: &str, binding: &str) -> String {
    s.establish(&s.a.engine, integration, binding).await["conversationId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The copies of a conversation whose sender or recipient is of `party`.
pub async fn activities(s: &TestServer, conversation: &str, party: &str) -> Vec<Value> {
    let (status, body) = s
        .get(
            &format!("/api/v1/interactions/activities/{conversation}?type={party}"),
            &s.a.engine,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array()
        .cloned()
        .or_else(|| body["results"].as_array().cloned())
        .unwrap_or_default()
}

/// The customer's messages and events in a conversation, as received by the Agent `agent`.
pub async fn customer_activities(s: &TestServer, conversation: &str, agent: &str) -> Vec<Value> {
    activities(s, conversation, "Customer")
        .await
        .into_iter()
        .filter(|a| {
            a["recipient"]["integrationId"] == agent && a["sender"]["integrationType"] == "Customer"
        })
        .collect()
}

/// The agent sends `body` (a message or event) into the conversation; answers the status.
pub async fn agent_sends(
    s: &TestServer,
    conversation: &str,
    agent: &str,
    mut body: Value,
) -> (StatusCode, Value) {
    body["sender"] = json!({ "integrationId": agent });
    s.send(&s.a.engine, conversation, body).await
}

/// A text message body.
pub fn text(t: &str) -> Value {
    json!({ "type": "message", "message": { "type": "text", "text": t } })
}

/// The deliveries to `integration`, oldest first.
pub async fn deliveries(s: &TestServer, integration: &str) -> Vec<Value> {
    let (status, body) = s
        .get(
            &format!("/api/v1/deliveries?integrationId={integration}&pageSize=100"),
            &s.a.portal,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["results"].as_array().cloned().unwrap_or_default()
}

/// Waits (at most 20 s) until `integration` has `n` deliveries and every one satisfies `done`.
pub async fn deliveries_when(
    s: &TestServer,
    integration: &str,
    n: usize,
    done: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list = deliveries(s, integration).await;
        if list.len() >= n && list.iter().all(&done) {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries of {integration} did not settle: {list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a delivery has ended (succeeded or failed).
pub fn settled(d: &Value) -> bool {
    d["status"] != "pending"
}

/// The tenant's notifications of `kind`.
pub async fn notifications(s: &TestServer, kind: &str) -> Vec<Value> {
    let (status, body) = s
        .get("/api/v1/notifications?pageSize=100", &s.a.portal)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["results"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n["kind"] == kind)
        .collect()
}

/// POSTs a provider's call to `/channels/…` with its headers.
pub async fn provider_post(
    s: &TestServer,
    path: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, String) {
    let mut req = s
        .http
        .post(s.url(path))
        .header("content-type", content_type)
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap_or_default())
}

/// The `code` of a SPEC 1 error body.
pub fn code(body: &str) -> i64 {
    serde_json::from_str::<Value>(body).unwrap_or_default()["errors"][0]["code"]
        .as_i64()
        .unwrap_or_default()
}

/// Moves the stored activities of a conversation `ms` into the past (the server's clock cannot
/// be moved): the customer's last message then looks that old to the provider windows
/// (Messenger's 24 hours and 7 days, WhatsApp's 24 hours).
pub async fn age_conversation(s: &TestServer, conversation: &str, ms: i64) {
    use sea_orm::ConnectionTrait;
    let conn = sea_orm::Database::connect(&s.database_url).await.unwrap();
    let id = uuid::Uuid::parse_str(conversation).unwrap();
    let sql = if s.database_url.starts_with("postgres") {
        format!("UPDATE activities SET created = created - {ms} WHERE conversation_id = '{id}'")
    } else {
        format!(
            "UPDATE activities SET created = created - {ms} WHERE conversation_id = X'{}'",
            id.simple()
        )
    };
    conn.execute_unprepared(&sql).await.unwrap();
}

/// HMAC-SHA1 (Twilio's signature).
pub fn hmac_sha1(key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA256 (Meta's `X-Hub-Signature-256`).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds since the epoch of an RFC 3339 time (`2026-12-07T16:45:09.123Z`).
pub fn millis(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("{t}: {e}"))
        .timestamp_millis()
}
