//! The Messenger adapter end to end (SPEC 7.8, 7.21) against the fake Graph API: provisioning
//! (live with `/me` and `subscribed_apps`, a token of another Page, refused, unreachable,
//! offline, the app secret from the configuration or the server), the subscription handshake,
//! inbound webhooks (`X-Hub-Signature-256`, text, attachments, quick replies, postbacks, read
//! receipts, echoes, other Pages, duplicates, the new customer's profile), outbound renders
//! (text, quick replies, generic template, text fallback, split, sender actions,
//! `messaging_type`), retries on 5xx and rate limits, permanent and credential refusals, order.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::channels::*;
use crate::fakes::graph::{self, PAGE_ID, PAGE_NAME, TOKEN};
use crate::fakes::{Fake, Mode};
use crate::support::*;

/// The app secret in the integrations' configuration.
const APP_SECRET: &str = "d41d8cd98f00b204e9800998ecf8427e";
/// The server's `SWITCHBOARD_MESSENGER_APP_SECRET` where a test sets one.
const SERVER_SECRET: &str = "0123456789abcdef0123456789abcdef";

struct Ms {
    s: TestServer,
    fake: Fake,
    hub: String,
    agent: String,
    /// The Messenger integration.
    id: String,
    /// Its `webhookSecret` (the handshake's verify token).
    verify_token: String,
    /// The secret signing its webhooks.
    secret: String,
}

async fn server_with(
    backend: Backend,
    fake: &Fake,
    server_secret: Option<&str>,
    offline: bool,
) -> TestServer {
    let url = fake.url.clone();
    let server_secret = server_secret.map(str::to_owned);
    server(backend, "0s,100ms,100ms,100ms", move |a| {
        a.provider_messenger_url = url;
        a.messenger_app_secret = server_secret;
        if offline {
            a.providers = switchboard::config::ProvidersMode::Offline;
        }
    })
    .await
}

async fn setup_on(backend: Backend) -> Ms {
    let fake = graph::start().await;
    let s = server_with(backend, &fake, None, false).await;
    let (hub, agent) = hub_with_agent(&s).await;
    let (status, body) = create(
        &s,
        &hub,
        "Messenger",
        json!({ "pageAccessToken": TOKEN, "appSecret": APP_SECRET }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ms {
        id: body["integrationId"].as_str().unwrap().to_owned(),
        verify_token: body["configuration"]["webhookSecret"]
            .as_str()
            .unwrap()
            .to_owned(),
        secret: APP_SECRET.to_owned(),
        s,
        fake,
        hub,
        agent,
    }
}

async fn setup() -> Ms {
    setup_on(Backend::Sqlite).await
}

impl Ms {
    /// POSTs `body` to the webhook, signed with the integration's app secret.
    async fn webhook(&self, body: &Value) -> (StatusCode, String) {
        let raw = body.to_string().into_bytes();
        let signature = hub_signature(self.secret.as_bytes(), &raw);
        self.webhook_raw(Some(&signature), raw).await
    }

    async fn webhook_raw(&self, signature: Option<&str>, raw: Vec<u8>) -> (StatusCode, String) {
        webhook_to(&self.s, &self.id, signature, raw).await
    }

    async fn conversation(&self, psid: &str) -> String {
        conversation_of(&self.s, &self.id, psid).await
    }

    /// The Send API bodies the fake received, in order.
    fn sent(&self) -> Vec<Value> {
        self.fake.to("/messages").iter().map(|r| r.json()).collect()
    }

    /// A customer of a new PSID writes first (so the conversation exists and the customer's
    /// last activity is recent); answers the conversation.
    async fn customer_says(&self, psid: &str, mid: &str, text: &str) -> String {
        let (status, body) = self
            .webhook(&page_body(vec![entry(
                PAGE_ID,
                vec![event(
                    psid,
                    json!({ "message": { "mid": mid, "text": text } }),
                )],
            )]))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // The new customer's profile is asked after the answer: wait for it, so that it does
        // not take an answer the test scripts next.
        self.fake.wait_for(&format!("/{psid}"), 1).await;
        self.conversation(psid).await
    }

    fn no_problems(&self) {
        assert!(
            self.fake.problems().is_empty(),
            "{:?}",
            self.fake.problems()
        );
    }
}

async fn webhook_to(
    s: &TestServer,
    id: &str,
    signature: Option<&str>,
    raw: Vec<u8>,
) -> (StatusCode, String) {
    let headers: Vec<(&str, &str)> = signature
        .map(|sig| vec![("x-hub-signature-256", sig)])
        .unwrap_or_default();
    provider_post(
        s,
        &format!("/channels/messenger/{id}"),
        "application/json",
        &headers,
        raw,
    )
    .await
}

/// `{ object: "page", entry }`.
fn page_body(entries: Vec<Value>) -> Value {
    json!({ "object": "page", "entry": entries })
}

fn entry(page: &str, messaging: Vec<Value>) -> Value {
    json!({ "id": page, "time": 1_765_000_000_000_i64, "messaging": messaging })
}

/// One `messaging[]` event from `psid` to the Page.
fn event(psid: &str, extra: Value) -> Value {
    let mut e = json!({ "sender": { "id": psid }, "recipient": { "id": PAGE_ID },
                        "timestamp": 1_765_000_000_123_i64 });
    e.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    e
}

/// A text message event.
fn text_event(psid: &str, mid: &str, text: &str) -> Value {
    event(psid, json!({ "message": { "mid": mid, "text": text } }))
}

// ---------------------------------------------------------------------------------------------
// X-Hub-Signature-256, computed here with the hmac crate, apart from the server's verifier.

/// `sha256=` + lowercase hex(HMAC-SHA256(app secret, raw body)).
fn hub_signature(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", to_hex(&hmac_sha256(secret, body)))
}

// ---------------------------------------------------------------------------------------------
// Provisioning

#[tokio::test]
async fn create_live_learns_the_page_subscribes_it_and_generates_the_verify_token() {
    let m = setup().await;
    let (status, body) =
        m.s.get(&format!("/api/v1/integrations/{}", m.id), &m.s.a.portal)
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let c = &body["configuration"];
    assert_eq!(c["pageId"], PAGE_ID, "{body}");
    assert_eq!(c["pageName"], PAGE_NAME, "{body}");
    assert_eq!(c["webhookSecret"], m.verify_token.as_str());
    assert_eq!(m.verify_token.len(), 32);
    assert!(m.verify_token.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(body["inboundId"], PAGE_ID, "{body}");

    let me = m.fake.to("/me");
    assert_eq!(me.len(), 1);
    assert_eq!(me[0].method, "GET");
    assert_eq!(me[0].query_param("fields").as_deref(), Some("id,name"));
    assert_eq!(me[0].query_param("access_token").as_deref(), Some(TOKEN));
    let subscribed = m.fake.to("/subscribed_apps");
    assert_eq!(subscribed.len(), 1);
    assert_eq!(subscribed[0].method, "POST");
    assert_eq!(subscribed[0].path, format!("/{PAGE_ID}/subscribed_apps"));
    assert_eq!(
        subscribed[0].query_param("subscribed_fields").as_deref(),
        Some("messages,messaging_postbacks,message_reads")
    );
    assert_eq!(
        subscribed[0].query_param("access_token").as_deref(),
        Some(TOKEN)
    );
    m.no_problems();

    // A second integration generates another verify token; a configured pageId that is the
    // token's own Page is accepted.
    let (status, body) = create(
        &m.s,
        &m.hub,
        "Messenger",
        json!({ "pageAccessToken": TOKEN, "appSecret": APP_SECRET, "pageId": PAGE_ID }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(
        body["configuration"]["webhookSecret"],
        m.verify_token.as_str()
    );
    assert_eq!(body["configuration"]["pageName"], PAGE_NAME);

    // Live, a client's values for the read-only and generated keys are not taken.
    let (status, body) = create(
        &m.s,
        &m.hub,
        "Messenger",
        json!({ "pageAccessToken": TOKEN, "appSecret": APP_SECRET,
                "pageName": "Not the Page's name", "webhookSecret": "chosen-by-the-client" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["configuration"]["pageName"], PAGE_NAME, "{body}");
    let generated = body["configuration"]["webhookSecret"].as_str().unwrap();
    assert_ne!(generated, "chosen-by-the-client");
    assert_eq!(generated.len(), 32);

    // Delete: Messenger names no deregistration, so Graph is not called; Meta's later calls
    // find nothing (404/6000).
    let calls = m.fake.requests().len();
    let (status, _) =
        m.s.delete(&format!("/api/v1/integrations/{}", m.id), &m.s.a.portal)
            .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = m
        .webhook(&page_body(vec![entry(
            PAGE_ID,
            vec![text_event("3001", "m_late", "late")],
        )]))
        .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::NOT_FOUND, 6000),
        "{answer}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(m.fake.requests().len(), calls, "{:?}", m.fake.requests());
    m.no_problems();
}

#[tokio::test]
async fn create_refused_unreachable_or_for_another_page_stores_nothing() {
    let m = setup().await;
    let before = integrations(&m.s, &m.hub).await.len();
    let calls = m.fake.requests().len();

    // A configured pageId that is not the token's Page: 400/206, nothing subscribed.
    let (status, body) = create(
        &m.s,
        &m.hub,
        "Messenger",
        json!({ "pageAccessToken": TOKEN, "appSecret": APP_SECRET, "pageId": "999000111" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], 206, "{body}");
    let description = body["errors"][0]["description"].as_str().unwrap();
    assert!(
        description.contains("pageAccessToken belongs to page") && description.contains(PAGE_ID),
        "{description}"
    );
    assert_eq!(m.fake.to("/subscribed_apps").len(), 1, "only the setup's");

    // A token Graph refuses (190 at HTTP 400): 400/206 with Graph's reason and code.
    let (status, body) = create(
        &m.s,
        &m.hub,
        "Messenger",
        json!({ "pageAccessToken": "EAAnot-a-token", "appSecret": APP_SECRET }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], 206, "{body}");
    let description = body["errors"][0]["description"].as_str().unwrap();
    assert!(
        description.starts_with("Messenger refused the configuration: Invalid OAuth access token")
            && description.contains("(190)"),
        "{description}"
    );

    // subscribed_apps refused (the token lacks pages_messaging): 400/206.
    m.fake.script([
        Mode::Success,
        Mode::Refuse(
            403,
            graph::error(
                200,
                None,
                "OAuthException",
                "(#200) The user must be an administrator of the Page",
            ),
        ),
    ]);
    let (status, body) = create(
        &m.s,
        &m.hub,
        "Messenger",
        json!({ "pageAccessToken": TOKEN, "appSecret": APP_SECRET }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], 206, "{body}");
    assert!(
        body["errors"][0]["description"]
            .as_str()
            .unwrap()
            .contains("must be an administrator"),
        "{body}"
    );

    // 5xx: unreachable, 503/100.
    m.fake.script([Mode::ServerError]);
    let (status, body) = create(
        &m.s,
        &m.hub,
        "Messenger",
        json!({ "pageAccessToken": TOKEN, "appSecret": APP_SECRET }),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["errors"][0]["code"], 100, "{body}");
    assert!(body["errors"][0]["description"]
        .as_str()
        .unwrap()
        .starts_with("Messenger is unreachable"));
    // 429 with the rate-limit code while subscribing: unreachable too.
    m.fake.script([Mode::Success, Mode::RateLimited(1)]);
    let (status, body) = create(
        &m.s,
        &m.hub,
        "Messenger",
        json!({ "pageAccessToken": TOKEN, "appSecret": APP_SECRET }),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["errors"][0]["code"], 100, "{body}");

    assert_eq!(integrations(&m.s, &m.hub).await.len(), before);
    assert!(m.fake.requests().len() > calls);
    m.no_problems();
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let s = server(Backend::Sqlite, "0s", move |a| {
        a.provider_messenger_url = url
    })
    .await;
    let (hub, _) = hub_with_agent(&s).await;
    let (status, body) = create(
        &s,
        &hub,
        "Messenger",
        json!({ "pageAccessToken": TOKEN, "appSecret": APP_SECRET }),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["errors"][0]["code"], 100, "{body}");
    assert_eq!(integrations(&s, &hub).await.len(), 1, "only the agent");
}

#[tokio::test]
async fn the_app_secret_comes_from_the_configuration_or_the_server() {
    // Neither: 400/301 before any provider call.
    let fake = graph::start().await;
    let s = server_with(Backend::Sqlite, &fake, None, false).await;
    let (hub, _) = hub_with_agent(&s).await;
    let (status, body) = create(&s, &hub, "Messenger", json!({ "pageAccessToken": TOKEN })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], 301, "{body}");
    assert!(
        body["errors"][0]["description"]
            .as_str()
            .unwrap()
            .contains("appSecret"),
        "{body}"
    );
    // An empty appSecret is refused by the catalogue's own rule (a Text value is not empty).
    let (status, body) = create(
        &s,
        &hub,
        "Messenger",
        json!({ "pageAccessToken": TOKEN, "appSecret": "" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], 206, "{body}");
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());

    // The server has SWITCHBOARD_MESSENGER_APP_SECRET: the configuration may omit it, and the
    // server's secret verifies the webhooks.
    let fake = graph::start().await;
    let s = server_with(Backend::Sqlite, &fake, Some(SERVER_SECRET), false).await;
    let (hub, agent) = hub_with_agent(&s).await;
    let (status, body) = create(&s, &hub, "Messenger", json!({ "pageAccessToken": TOKEN })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["integrationId"].as_str().unwrap().to_owned();
    let raw = page_body(vec![entry(PAGE_ID, vec![text_event("4001", "m_s1", "hi")])])
        .to_string()
        .into_bytes();
    let (status, answer) = webhook_to(
        &s,
        &id,
        Some(&hub_signature(APP_SECRET.as_bytes(), &raw)),
        raw.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let (status, answer) = webhook_to(
        &s,
        &id,
        Some(&hub_signature(SERVER_SECRET.as_bytes(), &raw)),
        raw.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let conversation = conversation_of(&s, &id, "4001").await;
    assert_eq!(
        customer_activities(&s, &conversation, &agent).await.len(),
        1
    );

    // An integration with its own appSecret is verified with it, not with the server's.
    let (status, body) = create(
        &s,
        &hub,
        "Messenger",
        json!({ "pageAccessToken": TOKEN, "appSecret": APP_SECRET }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let own = body["integrationId"].as_str().unwrap().to_owned();
    let (status, _) = webhook_to(
        &s,
        &own,
        Some(&hub_signature(SERVER_SECRET.as_bytes(), &raw)),
        raw.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = webhook_to(
        &s,
        &own,
        Some(&hub_signature(APP_SECRET.as_bytes(), &raw)),
        raw,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn offline_makes_no_call_takes_the_page_as_given_and_holds_deliveries() {
    let fake = graph::start().await;
    let s = server_with(Backend::Sqlite, &fake, None, true).await;
    let (hub, agent) = hub_with_agent(&s).await;
    let (status, body) = create(
        &s,
        &hub,
        "Messenger",
        json!({ "pageAccessToken": TOKEN, "appSecret": APP_SECRET,
                "pageId": "555000", "pageName": "Given Page" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["configuration"]["pageId"], "555000");
    assert_eq!(body["configuration"]["pageName"], "Given Page");
    let verify_token = body["configuration"]["webhookSecret"].as_str().unwrap();
    assert_eq!(verify_token.len(), 32);
    let id = body["integrationId"].as_str().unwrap().to_owned();

    // Inbound works unchanged (signature included), with no profile call.
    let raw = page_body(vec![entry(
        "555000",
        vec![text_event("7001", "m_off", "hi")],
    )])
    .to_string()
    .into_bytes();
    let (status, answer) = webhook_to(
        &s,
        &id,
        Some(&hub_signature(APP_SECRET.as_bytes(), &raw)),
        raw,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let conversation = conversation_of(&s, &id, "7001").await;
    assert_eq!(
        customer_activities(&s, &conversation, &agent).await.len(),
        1
    );

    let (status, body) = agent_sends(&s, &conversation, &agent, text("held")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = deliveries_when(&s, &id, 1, |d| d["lastError"] == "providers offline").await;
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["status"], "pending");
    assert_eq!(list[0]["nextAttemptAt"], Value::Null);
    assert_eq!(list[0]["channel"], "Messenger");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

// ---------------------------------------------------------------------------------------------
// Handshake and signature

#[tokio::test]
async fn the_handshake_echoes_the_challenge_for_the_verify_token_only() {
    let m = setup().await;
    let get = |query: String| {
        let url = m.s.url(&format!("/channels/messenger/{}?{query}", m.id));
        let http = m.s.http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    let resp = get(format!(
        "hub.mode=subscribe&hub.verify_token={}&hub.challenge=1158201444",
        m.verify_token
    ))
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(resp.text().await.unwrap(), "1158201444");

    for query in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1".to_owned(),
        format!(
            "hub.mode=unsubscribe&hub.verify_token={}&hub.challenge=1",
            m.verify_token
        ),
        "hub.mode=subscribe&hub.challenge=1".to_owned(),
    ] {
        let resp = get(query.clone()).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{query}");
        let body = resp.text().await.unwrap();
        assert_eq!(code(&body), 101, "{query}: {body}");
    }
    // An unknown integration: 404/6000.
    let resp =
        m.s.http
            .get(m.s.url(&format!(
                "/channels/messenger/{}?hub.mode=subscribe&hub.verify_token={}&hub.challenge=1",
                uuid::Uuid::new_v4(),
                m.verify_token
            )))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(&resp.text().await.unwrap()), 6000);
}

#[tokio::test]
async fn inbound_needs_the_hub_signature() {
    let m = setup().await;
    let raw = page_body(vec![entry(
        PAGE_ID,
        vec![text_event("5001", "m_sig", "hi")],
    )])
    .to_string()
    .into_bytes();
    let good = hub_signature(APP_SECRET.as_bytes(), &raw);
    let mut changed = raw.clone();
    let at = changed.iter().position(|&b| b == b'h').unwrap();
    changed[at] = b'H';
    let sha1_style = format!("sha1={}", &good["sha256=".len()..]);
    let cases: Vec<(Option<String>, Vec<u8>)> = vec![
        (None, raw.clone()),
        (
            Some(hub_signature(b"another app's secret", &raw)),
            raw.clone(),
        ),
        (Some(good.clone()), changed),
        (Some(sha1_style), raw.clone()),
        (Some("sha256=".to_owned()), raw.clone()),
    ];
    for (signature, body) in cases {
        let (status, answer) = m.webhook_raw(signature.as_deref(), body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{signature:?}: {answer}");
        assert_eq!(code(&answer), 102, "{answer}");
    }
    // Each failure is counted (the registry is the process's: at least these five).
    let metrics = m.s.http.get(m.s.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let failures: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("switchboard_channel_signature_failures_total")
                && l.contains(r#"channel="Messenger""#)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Messenger signature failures counted: {metrics}"));
    assert!(failures >= 5.0, "{failures}");
    // Nothing was stored and no profile was asked.
    let conversation = m.conversation("5001").await;
    assert!(customer_activities(&m.s, &conversation, &m.agent)
        .await
        .is_empty());
    assert!(m.fake.to("/5001").is_empty());
    let (status, answer) = m.webhook_raw(Some(&good), raw.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // A valid signature over an unparseable body: 400/300.
    let junk = b"{\"object\":\"page\",\"entry\":".to_vec();
    let sig = hub_signature(APP_SECRET.as_bytes(), &junk);
    let (status, answer) = m.webhook_raw(Some(&sig), junk).await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::BAD_REQUEST, 300),
        "{answer}"
    );
}

// ---------------------------------------------------------------------------------------------
// Inbound

#[tokio::test]
async fn inbound_events_become_activities_once_and_the_new_customer_s_profile_is_merged() {
    let m = setup().await;
    let psid = "6001";
    let image = "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg?_nc_cat=1&oh=abc";
    let events = vec![
        text_event(psid, "m_text", "hello there"),
        event(
            psid,
            json!({ "message": { "mid": "m_img", "attachments": [
                { "type": "image", "payload": { "url": image } } ] } }),
        ),
        event(
            psid,
            json!({ "message": { "mid": "m_capt", "text": "look at this", "attachments": [
                { "type": "image", "payload": { "url": image } } ] } }),
        ),
        event(
            psid,
            json!({ "message": { "mid": "m_quick", "text": "Red please",
                                 "quick_reply": { "payload": "RED" } } }),
        ),
        event(
            psid,
            json!({ "postback": { "mid": "m_post", "title": "Buy", "payload": "BUY_RED" } }),
        ),
        event(
            psid,
            json!({ "read": { "watermark": 1_765_000_000_999_i64 } }),
        ),
        // Ignored: an echo of the Page's own send (from the Page to the customer), a delivery
        // receipt.
        json!({ "sender": { "id": PAGE_ID }, "recipient": { "id": psid },
                "timestamp": 1_765_000_000_500_i64,
                "message": { "mid": "m_echo", "is_echo": true, "app_id": 1517776481860111_i64,
                             "text": "our own reply" } }),
        event(
            psid,
            json!({ "delivery": { "mids": ["m_x"], "watermark": 1_765_000_000_000_i64 } }),
        ),
    ];
    let body = page_body(vec![
        entry(PAGE_ID, events),
        // Another Page's entry in the same call: ignored.
        entry("424242", vec![text_event(psid, "m_other", "not for us")]),
    ]);
    let raw = body.to_string().into_bytes();
    let resp =
        m.s.http
            .post(m.s.url(&format!("/channels/messenger/{}", m.id)))
            .header("content-type", "application/json")
            .header(
                "x-hub-signature-256",
                hub_signature(APP_SECRET.as_bytes(), &raw),
            )
            .body(raw)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(resp.text().await.unwrap(), "EVENT_RECEIVED");

    // Meta delivers the text again: one activity all the same.
    let (status, answer) = m
        .webhook(&page_body(vec![entry(
            PAGE_ID,
            vec![text_event(psid, "m_text", "hello there")],
        )]))
        .await;
    assert_eq!(
        (status, answer.as_str()),
        (StatusCode::OK, "EVENT_RECEIVED")
    );

    // The profile of the new customer is asked once, after the answer, and merged.
    let asked = m.fake.wait_for(&format!("/{psid}"), 1).await;
    assert_eq!(asked[0].method, "GET");
    assert_eq!(
        asked[0].query_param("fields").as_deref(),
        Some("first_name,last_name,profile_pic")
    );
    assert_eq!(asked[0].query_param("access_token").as_deref(), Some(TOKEN));
    let conversation = m.conversation(psid).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let c = loop {
        let (status, c) =
            m.s.get(
                &format!("/api/v1/conversations/{conversation}"),
                &m.s.a.engine,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{c}");
        if c["properties"]["profile"]["full name"] == "Ada Lovelace" {
            break c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the profile was not merged: {c:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        c["properties"]["profile"]["avatar"],
        graph::picture(psid),
        "{c:#}"
    );
    assert_eq!(c["properties"]["channel"]["userId"], psid, "{c:#}");

    let got = customer_activities(&m.s, &conversation, &m.agent).await;
    assert_eq!(got.len(), 6, "{got:#?}");
    assert_eq!(
        got[0]["message"],
        json!({ "type": "text", "text": "hello there" })
    );
    assert_eq!(got[0]["externalId"], "m_text");
    assert_eq!(got[0]["sender"]["channelType"], "Messenger");
    assert_eq!(got[0]["sender"]["integrationId"], m.id.as_str());
    // The CDN URL is used as given.
    assert_eq!(got[1]["message"]["type"], "image");
    assert_eq!(got[1]["message"]["url"], image);
    assert_eq!(got[1]["externalId"], "m_img");
    // Text and one image: one image captioned with the text.
    assert_eq!(got[2]["message"]["type"], "image");
    assert_eq!(got[2]["message"]["url"], image);
    assert_eq!(got[2]["message"]["caption"], "look at this");
    assert_eq!(got[2]["externalId"], "m_capt");
    // A quick reply is the label's text.
    assert_eq!(got[3]["message"]["type"], "text");
    assert_eq!(got[3]["message"]["text"], "Red please");
    // A postback is a payload event.
    assert_eq!(
        got[4]["event"],
        json!({ "type": "payload", "payloadType": "postback", "payload": "BUY_RED" }),
        "{:#}",
        got[4]
    );
    assert_eq!(got[4]["externalId"], "m_post");
    // A read receipt is a seen event.
    assert_eq!(got[5]["event"]["type"], "seen");

    // A second message of the same customer asks no profile again.
    let (status, _) = m
        .webhook(&page_body(vec![entry(
            PAGE_ID,
            vec![text_event(psid, "m_again", "again")],
        )]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        customer_activities(&m.s, &conversation, &m.agent)
            .await
            .len(),
        7
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(m.fake.to(&format!("/{psid}")).len(), 1);
    m.no_problems();
}

#[tokio::test]
async fn other_attachments_map_to_their_kinds() {
    let m = setup().await;
    let psid = "6002";
    let events = vec![
        event(
            psid,
            json!({ "message": { "mid": "m_many", "text": "two files", "attachments": [
                { "type": "file", "payload": { "url": "https://cdn.example.com/a.pdf" } },
                { "type": "audio", "payload": { "url": "https://cdn.example.com/a.mp4" } } ] } }),
        ),
        event(
            psid,
            json!({ "message": { "mid": "m_loc", "attachments": [ { "type": "location",
                "payload": { "coordinates": { "lat": 48.85, "long": 2.35 } } } ] } }),
        ),
        event(
            psid,
            json!({ "message": { "mid": "m_fb", "attachments": [ { "type": "fallback",
                "title": "Shared link", "url": "https://example.com/page", "payload": null } ] } }),
        ),
        event(
            psid,
            json!({ "message": { "mid": "m_stk", "attachments": [
                { "type": "ig_reel", "payload": { "reel_video_id": "1" } } ] } }),
        ),
    ];
    let (status, answer) = m.webhook(&page_body(vec![entry(PAGE_ID, events)])).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let conversation = m.conversation(psid).await;
    let got = customer_activities(&m.s, &conversation, &m.agent).await;
    let ids: Vec<&str> = got
        .iter()
        .map(|a| a["externalId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["m_many", "m_many#1", "m_many#2", "m_loc", "m_fb", "m_stk"],
        "{got:#?}"
    );
    assert_eq!(got[0]["message"]["text"], "two files");
    assert_eq!(got[1]["message"]["type"], "attachment");
    assert_eq!(got[1]["message"]["url"], "https://cdn.example.com/a.pdf");
    assert_eq!(got[2]["message"]["type"], "audio");
    assert_eq!(got[3]["message"]["type"], "location");
    assert_eq!(got[3]["message"]["latitude"], 48.85);
    assert_eq!(got[3]["message"]["longitude"], 2.35);
    assert_eq!(got[4]["message"]["type"], "text");
    assert!(
        got[4]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("Shared link"),
        "{:#}",
        got[4]
    );
    assert_eq!(got[5]["message"]["text"], "[ig_reel not supported]");
}

#[tokio::test]
async fn the_profile_is_asked_after_the_answer_and_a_refusal_is_ignored() {
    let m = setup().await;
    // Graph takes 10 s to answer the profile (longer than the server's 2 s provider timeout):
    // the webhook is answered all the same, as the call runs after the answer.
    m.fake.script([Mode::Slow(Duration::from_secs(10))]);
    let started = tokio::time::Instant::now();
    let (status, answer) = m
        .webhook(&page_body(vec![entry(
            PAGE_ID,
            vec![text_event("6101", "m_slow", "hi")],
        )]))
        .await;
    assert_eq!(
        (status, answer.as_str()),
        (StatusCode::OK, "EVENT_RECEIVED")
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the answer waited for the profile: {:?}",
        started.elapsed()
    );
    m.fake.wait_for("/6101", 1).await;

    // A profile Graph refuses (the app lacks the permission) changes nothing: the activity is
    // stored and the conversation keeps its own name.
    m.fake.script([Mode::Refuse(
        400,
        graph::error(
            100,
            Some(33),
            "GraphMethodException",
            "Unsupported get request. Object with ID '6102' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
        ),
    )]);
    let (status, _) = m
        .webhook(&page_body(vec![entry(
            PAGE_ID,
            vec![text_event("6102", "m_noprofile", "hi")],
        )]))
        .await;
    assert_eq!(status, StatusCode::OK);
    m.fake.wait_for("/6102", 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let conversation = m.conversation("6102").await;
    assert_eq!(
        customer_activities(&m.s, &conversation, &m.agent)
            .await
            .len(),
        1
    );
    let (_, c) =
        m.s.get(
            &format!("/api/v1/conversations/{conversation}"),
            &m.s.a.engine,
        )
        .await;
    assert_ne!(
        c["properties"]["profile"]["full name"], "Ada Lovelace",
        "{c:#}"
    );
    assert!(c["properties"]["profile"]["avatar"].is_null(), "{c:#}");
    m.no_problems();
}

// ---------------------------------------------------------------------------------------------
// Outbound

#[tokio::test]
async fn agent_replies_are_rendered_for_the_send_api_and_recorded_with_message_ids() {
    let m = setup().await;
    let psid = "8001";
    let conversation = m.customer_says(psid, "m_first", "hi").await;
    let sends = [
        text("Hello Ada"),
        json!({ "type": "message", "message": { "type": "text", "text": "Which colour?",
            "actions": [ { "type": "reply", "title": "Red", "payload": "RED" },
                         { "type": "reply", "title": "Blue", "payload": "BLUE" } ] } }),
        json!({ "type": "message", "message": { "type": "card", "title": "Shoe",
            "description": "A red shoe", "mediaUrl": "https://example.com/shoe.png",
            "actions": [ { "type": "link", "title": "Buy", "url": "https://example.com/buy" },
                         { "type": "postback", "title": "More", "payload": "MORE" } ] } }),
        json!({ "type": "message", "message": { "type": "location", "latitude": 48.85, "longitude": 2.35,
            "address": "Paris" } }),
        text(&"word ".repeat(500)),
        json!({ "type": "message", "message": { "type": "image",
            "url": "https://example.com/shoe.png" } }),
    ];
    for body in sends {
        let (status, b) = agent_sends(&m.s, &conversation, &m.agent, body).await;
        assert_eq!(status, StatusCode::OK, "{b}");
    }
    let list = deliveries_when(&m.s, &m.id, 6, settled).await;
    assert!(list.iter().all(|d| d["status"] == "succeeded"), "{list:#?}");
    assert!(list.iter().all(|d| d["channel"] == "Messenger"));
    let ids = |d: &Value| -> Vec<String> {
        d["providerMessageIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&list[0]).len(), 1);
    assert!(ids(&list[0])[0].starts_with("m_"), "{list:#?}");
    assert_eq!(ids(&list[4]).len(), 2, "the long text in two parts");

    let requests = m.fake.to("/messages");
    assert!(requests.iter().all(|r| r.method == "POST"
        && r.path == format!("/{PAGE_ID}/messages")
        && r.query_param("access_token").as_deref() == Some(TOKEN)));
    let sent = m.sent();
    assert_eq!(sent.len(), 7, "{sent:#?}");
    // Every part goes to the PSID as a RESPONSE (the customer wrote a moment ago).
    for body in &sent {
        assert_eq!(body["recipient"], json!({ "id": psid }), "{body}");
        assert_eq!(body["messaging_type"], "RESPONSE", "{body}");
        assert!(body.get("tag").is_none(), "{body}");
    }
    assert_eq!(sent[0]["message"], json!({ "text": "Hello Ada" }));
    // Reply actions: quick replies whose payload is the title.
    assert_eq!(sent[1]["message"]["text"], "Which colour?");
    assert_eq!(
        sent[1]["message"]["quick_replies"],
        json!([ { "content_type": "text", "title": "Red", "payload": "Red" },
                { "content_type": "text", "title": "Blue", "payload": "Blue" } ])
    );
    // A card: a generic template of one element with its buttons.
    let payload = &sent[2]["message"]["attachment"]["payload"];
    assert_eq!(sent[2]["message"]["attachment"]["type"], "template");
    assert_eq!(payload["template_type"], "generic");
    assert_eq!(
        payload["elements"],
        json!([ { "title": "Shoe", "subtitle": "A red shoe",
                  "image_url": "https://example.com/shoe.png",
                  "buttons": [ { "type": "web_url", "url": "https://example.com/buy", "title": "Buy" },
                               { "type": "postback", "title": "More", "payload": "MORE" } ] } ])
    );
    // A location: the text fallback.
    assert_eq!(
        sent[3]["message"]["text"],
        "Paris\n48.85,2.35\nhttps://www.openstreetmap.org/?mlat=48.85&mlon=2.35"
    );
    // The long text: two parts of at most 2000 characters, nothing lost.
    let a = sent[4]["message"]["text"].as_str().unwrap();
    let b = sent[5]["message"]["text"].as_str().unwrap();
    assert!(a.chars().count() <= 2000 && b.chars().count() <= 2000);
    assert_eq!(
        format!("{a} {b}").split_whitespace().count(),
        500,
        "{a:?} / {b:?}"
    );
    // An image: an attachment by URL.
    assert_eq!(
        sent[6]["message"],
        json!({ "attachment": { "type": "image",
                "payload": { "url": "https://example.com/shoe.png", "is_reusable": false } } })
    );
    m.no_problems();

    // typing_on is a sender action, one attempt.
    let (status, _) = agent_sends(
        &m.s,
        &conversation,
        &m.agent,
        json!({ "type": "event", "event": { "type": "typing_on" } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let typing = m.fake.wait_for("/messages", 8).await;
    assert_eq!(
        typing[7].json(),
        json!({ "recipient": { "id": psid }, "messaging_type": "RESPONSE",
                "sender_action": "typing_on" })
    );
    // Other events make no delivery.
    let (status, _) = agent_sends(
        &m.s,
        &conversation,
        &m.agent,
        json!({ "type": "event", "event": { "type": "payload", "payloadType": "x", "payload": 1 } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(m.fake.to("/messages").len(), 8);
    // seen and typing_off too; each a single attempt: a refused sender action is not retried.
    m.fake.script([Mode::ServerError]);
    for kind in ["seen", "typing_off"] {
        let (status, _) = agent_sends(
            &m.s,
            &conversation,
            &m.agent,
            json!({ "type": "event", "event": { "type": kind } }),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let actions = m.fake.wait_for("/messages", 10).await;
    assert_eq!(actions[8].json()["sender_action"], "mark_seen");
    assert_eq!(actions[9].json()["sender_action"], "typing_off");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        m.fake.to("/messages").len(),
        10,
        "mark_seen was not retried"
    );
    let notes = notifications(&m.s, "delivery_failed").await;
    assert!(notes.is_empty(), "{notes:#?}");
    m.no_problems();
}

#[tokio::test]
async fn buttons_carousels_and_what_does_not_fit() {
    let m = setup().await;
    let psid = "8002";
    let conversation = m.customer_says(psid, "m_b", "hi").await;
    let items: Vec<Value> = (1..=12)
        .map(|i| json!({ "title": format!("Item {i}"), "description": format!("no. {i}"),
                         "actions": [ { "type": "postback", "title": "Pick", "payload": format!("PICK_{i}") } ] }))
        .collect();
    let replies: Vec<Value> = (1..=14)
        .map(|i| json!({ "type": "reply", "title": format!("R{i}"), "payload": format!("R{i}") }))
        .collect();
    let sends = [
        // link and postback actions: a button template.
        json!({ "type": "message", "message": { "type": "text", "text": "Pick one",
            "actions": [ { "type": "link", "title": "Site", "url": "https://example.com" },
                         { "type": "postback", "title": "Red", "payload": "RED" } ] } }),
        // 12 items: a generic template of 10, then one of 2.
        json!({ "type": "message", "message": { "type": "carousel", "items": items } }),
        // 14 replies are more than Messenger's 13: the text fallback with the titles as lines.
        json!({ "type": "message", "message": { "type": "text", "text": "So many", "actions": replies } }),
        // A video with a caption: the caption as text, then the attachment.
        json!({ "type": "message", "message": { "type": "video",
            "url": "https://example.com/clip.mp4", "caption": "Watch" } }),
    ];
    for body in sends {
        let (status, b) = agent_sends(&m.s, &conversation, &m.agent, body).await;
        assert_eq!(status, StatusCode::OK, "{b}");
    }
    let list = deliveries_when(&m.s, &m.id, 4, settled).await;
    assert!(list.iter().all(|d| d["status"] == "succeeded"), "{list:#?}");
    let sent = m.sent();
    assert_eq!(sent.len(), 6, "{sent:#?}");
    assert_eq!(
        sent[0]["message"]["attachment"],
        json!({ "type": "template", "payload": { "template_type": "button", "text": "Pick one",
                "buttons": [ { "type": "web_url", "url": "https://example.com", "title": "Site" },
                             { "type": "postback", "title": "Red", "payload": "RED" } ] } })
    );
    let elements = |i: usize| {
        sent[i]["message"]["attachment"]["payload"]["elements"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert_eq!(elements(1).len(), 10);
    assert_eq!(elements(2).len(), 2);
    assert_eq!(elements(2)[1]["title"], "Item 12");
    assert_eq!(elements(2)[1]["buttons"][0]["payload"], "PICK_12");
    assert_eq!(list[1]["providerMessageIds"].as_array().unwrap().len(), 2);
    let fallback = sent[3]["message"]["text"].as_str().unwrap();
    assert!(
        fallback.starts_with("So many\n• R1\n") && fallback.ends_with("• R14"),
        "{fallback:?}"
    );
    assert!(sent[3]["message"].get("quick_replies").is_none());
    assert_eq!(sent[4]["message"], json!({ "text": "Watch" }));
    assert_eq!(
        sent[5]["message"]["attachment"],
        json!({ "type": "video", "payload": { "url": "https://example.com/clip.mp4", "is_reusable": false } })
    );
    m.no_problems();
}

/// A customer who wrote a moment ago is answered as `RESPONSE`, by an Agent and by a Bot alike
/// (the older cases: the next test, and the domain's unit test with a fixed clock). The fake
/// refuses a `tag` without `MESSAGE_TAG` and `MESSAGE_TAG` without a tag.
#[tokio::test]
async fn a_customer_who_wrote_recently_is_answered_as_a_response() {
    let m = setup().await;
    let conversation = m.customer_says("8101", "m_recent", "are you there?").await;
    let bot =
        m.s.direct(&m.s.a.portal, &m.hub, "Bot", "Bot", json!({}))
            .await;
    let bot = bot["integrationId"].as_str().unwrap().to_owned();
    let (status, b) = agent_sends(&m.s, &conversation, &m.agent, text("from the agent")).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    let (status, b) = agent_sends(&m.s, &conversation, &bot, text("from the bot")).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    let sent = m.fake.wait_for("/messages", 2).await;
    for r in &sent {
        let body = r.json();
        assert_eq!(body["messaging_type"], "RESPONSE", "{body}");
        assert!(body.get("tag").is_none(), "{body}");
    }
    m.no_problems();
}

/// The windows end to end: the stored activities are moved into the past (the server's clock
/// cannot be), so the customer's last message looks 25 hours, then 8 days old.
#[tokio::test]
async fn after_24_hours_an_agent_uses_the_human_agent_tag_and_after_7_days_a_response() {
    let m = setup().await;
    let conversation = m.customer_says("8102", "m_old", "hello?").await;
    let bot =
        m.s.direct(&m.s.a.portal, &m.hub, "Bot", "Bot", json!({}))
            .await;
    let bot = bot["integrationId"].as_str().unwrap().to_owned();
    age_conversation(&m.s, &conversation, 25 * 3_600_000).await;
    // A read receipt now does not reopen the window.
    let read = page_body(vec![entry(
        PAGE_ID,
        vec![event(
            "8102",
            json!({ "read": { "watermark": 1_700_000_000_000_i64 } }),
        )],
    )]);
    assert_eq!(m.webhook(&read).await.0, StatusCode::OK);
    agent_sends(&m.s, &conversation, &m.agent, text("an agent, a day later")).await;
    agent_sends(&m.s, &conversation, &bot, text("a bot, a day later")).await;
    let sent = m.fake.wait_for("/messages", 2).await;
    let (agent, bot_body) = (sent[0].json(), sent[1].json());
    assert_eq!(agent["messaging_type"], "MESSAGE_TAG", "{agent}");
    assert_eq!(agent["tag"], "HUMAN_AGENT", "{agent}");
    assert_eq!(bot_body["messaging_type"], "RESPONSE", "{bot_body}");
    assert!(bot_body.get("tag").is_none(), "{bot_body}");
    age_conversation(&m.s, &conversation, 7 * 24 * 3_600_000).await;
    agent_sends(
        &m.s,
        &conversation,
        &m.agent,
        text("an agent, a week later"),
    )
    .await;
    let sent = m.fake.wait_for("/messages", 3).await;
    assert_eq!(
        sent[2].json()["messaging_type"],
        "RESPONSE",
        "{}",
        sent[2].json()
    );
    m.no_problems();
}

#[tokio::test]
async fn a_5xx_and_rate_limits_are_retried() {
    let m = setup().await;
    let conversation = m.customer_says("8201", "m_r", "hi").await;

    // HTTP 500 (Graph code 2), then success: one delivery, two attempts.
    m.fake.script([Mode::ServerError]);
    agent_sends(&m.s, &conversation, &m.agent, text("one")).await;
    let list = deliveries_when(&m.s, &m.id, 1, settled).await;
    assert_eq!(list[0]["status"], "succeeded", "{list:#?}");
    assert_eq!(list[0]["attemptCount"], 2);
    assert_eq!(list[0]["attempts"][0]["statusCode"], 500);
    let error = list[0]["attempts"][0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("Messenger 500: An unexpected error has occurred"),
        "{error}"
    );
    assert!(!error.contains(TOKEN), "{error}");
    let ids = list[0]["providerMessageIds"].as_array().unwrap();
    assert_eq!(ids.len(), 1);
    assert!(ids[0].as_str().unwrap().starts_with("m_"));

    // HTTP 429 with code 613, and code 613 under HTTP 400 (Graph's usual rate-limit answer):
    // both retried, then success.
    m.fake.script([
        Mode::RateLimited(1),
        Mode::Refuse(
            400,
            graph::error(
                613,
                None,
                "OAuthException",
                "Calls to this api have exceeded the rate limit.",
            ),
        ),
    ]);
    agent_sends(&m.s, &conversation, &m.agent, text("two")).await;
    let list = deliveries_when(&m.s, &m.id, 2, settled).await;
    assert_eq!(list[1]["status"], "succeeded", "{list:#?}");
    assert_eq!(list[1]["attemptCount"], 3, "{list:#?}");
    assert_eq!(list[1]["attempts"][0]["statusCode"], 429);
    assert_eq!(list[1]["attempts"][1]["statusCode"], 400);
    assert!(list[1]["attempts"][1]["error"]
        .as_str()
        .unwrap()
        .contains("(613)"));
    let texts: Vec<Value> = m
        .sent()
        .iter()
        .map(|b| b["message"]["text"].clone())
        .collect();
    assert_eq!(texts, ["one", "one", "two", "two", "two"]);

    // Graph too slow (past the 2 s provider timeout): retried.
    m.fake.script([Mode::Slow(Duration::from_secs(3))]);
    agent_sends(&m.s, &conversation, &m.agent, text("three")).await;
    let list = deliveries_when(&m.s, &m.id, 3, settled).await;
    assert_eq!(list[2]["status"], "succeeded", "{list:#?}");
    assert_eq!(list[2]["attemptCount"], 2, "{list:#?}");
    assert!(
        list[2]["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("timeout"),
        "{list:#?}"
    );
    assert!(notifications(&m.s, "delivery_failed").await.is_empty());
    m.no_problems();
}

#[tokio::test]
async fn refusals_fail_at_once_with_their_notification() {
    let m = setup().await;
    let conversation = m.customer_says("8301", "m_p", "hi").await;

    // 551: the person is unavailable: permanent.
    m.fake.script([Mode::Refuse(
        400,
        graph::error(
            551,
            Some(1_545_041),
            "OAuthException",
            "This person isn't available right now.",
        ),
    )]);
    agent_sends(&m.s, &conversation, &m.agent, text("gone")).await;
    let list = deliveries_when(&m.s, &m.id, 1, settled).await;
    assert_eq!(list[0]["status"], "failed", "{list:#?}");
    assert_eq!(list[0]["attemptCount"], 1);
    assert_eq!(
        list[0]["lastError"],
        "Messenger 400: This person isn't available right now. (551)"
    );
    let failed = notifications(&m.s, "delivery_failed").await;
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(failed[0]["description"]
        .as_str()
        .unwrap()
        .contains("isn't available"));

    // Code 10, subcode 2018278: outside the allowed window: permanent.
    m.fake.script([Mode::Refuse(
        400,
        graph::error(
            10,
            Some(2_018_278),
            "OAuthException",
            "(#10) This message is sent outside of allowed window.",
        ),
    )]);
    agent_sends(&m.s, &conversation, &m.agent, text("late")).await;
    let list = deliveries_when(&m.s, &m.id, 2, settled).await;
    assert_eq!(list[1]["status"], "failed", "{list:#?}");
    assert_eq!(list[1]["attemptCount"], 1);
    assert!(list[1]["lastError"]
        .as_str()
        .unwrap()
        .contains("outside of allowed window"));
    assert_eq!(notifications(&m.s, "delivery_failed").await.len(), 2);

    // 190: the token was invalidated: credentials, the integration stays active.
    m.fake.script([Mode::Refuse(
        400,
        graph::error(
            190,
            Some(460),
            "OAuthException",
            "Error validating access token: The session has been invalidated because the user changed their password.",
        ),
    )]);
    agent_sends(&m.s, &conversation, &m.agent, text("token revoked")).await;
    let list = deliveries_when(&m.s, &m.id, 3, settled).await;
    assert_eq!(list[2]["status"], "failed", "{list:#?}");
    assert_eq!(list[2]["attemptCount"], 1);
    assert!(list[2]["lastError"]
        .as_str()
        .unwrap()
        .starts_with("Messenger 400: Error validating access token"));
    let auth = notifications(&m.s, "provider_auth_failed").await;
    assert_eq!(auth.len(), 1, "{auth:#?}");
    assert_eq!(notifications(&m.s, "delivery_failed").await.len(), 2);
    let (_, i) =
        m.s.get(&format!("/api/v1/integrations/{}", m.id), &m.s.a.portal)
            .await;
    assert_eq!(i["statusId"], 3000, "{i}");
    m.no_problems();
}

#[tokio::test]
async fn two_activities_keep_their_order_through_a_retry() {
    let m = setup().await;
    let conversation = m.customer_says("8401", "m_o", "hi").await;
    m.fake.script([Mode::ServerError]);
    agent_sends(&m.s, &conversation, &m.agent, text("first")).await;
    agent_sends(&m.s, &conversation, &m.agent, text("second")).await;
    let list = deliveries_when(&m.s, &m.id, 2, settled).await;
    assert!(list.iter().all(|d| d["status"] == "succeeded"), "{list:#?}");
    let texts: Vec<Value> = m
        .sent()
        .iter()
        .map(|b| b["message"]["text"].clone())
        .collect();
    assert_eq!(texts, ["first", "first", "second"]);

    // A split text whose second part fails resumes after the accepted part.
    m.fake.script([Mode::Success, Mode::ServerError]);
    agent_sends(&m.s, &conversation, &m.agent, text(&"long ".repeat(500))).await;
    agent_sends(&m.s, &conversation, &m.agent, text("after")).await;
    let list = deliveries_when(&m.s, &m.id, 4, settled).await;
    assert_eq!(list[2]["status"], "succeeded", "{list:#?}");
    assert_eq!(list[2]["attemptCount"], 2);
    assert_eq!(list[2]["providerMessageIds"].as_array().unwrap().len(), 2);
    let texts: Vec<String> = m.sent()[3..]
        .iter()
        .map(|b| {
            b["message"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .take(5)
                .collect()
        })
        .collect();
    assert_eq!(texts, ["long ", "long ", "long ", "after"]);
    let sent = m.sent();
    assert_ne!(sent[3], sent[4]);
    assert_eq!(sent[4], sent[5]);
    m.no_problems();
}

#[tokio::test]
async fn the_adapter_works_on_postgres() {
    if postgres_url().is_none() {
        skipped(
            "channels_messenger::the_adapter_works_on_postgres",
            "PostgreSQL",
            POSTGRES_HOW,
        );
        return;
    }
    let m = setup_on(Backend::Postgres).await;
    let body = page_body(vec![entry(PAGE_ID, vec![text_event("9001", "m_pg", "pg")])]);
    assert_eq!(m.webhook(&body).await.0, StatusCode::OK);
    assert_eq!(m.webhook(&body).await.0, StatusCode::OK);
    let conversation = m.conversation("9001").await;
    assert_eq!(
        customer_activities(&m.s, &conversation, &m.agent)
            .await
            .len(),
        1
    );
    agent_sends(&m.s, &conversation, &m.agent, text("reply")).await;
    let list = deliveries_when(&m.s, &m.id, 1, settled).await;
    assert_eq!(list[0]["status"], "succeeded", "{list:#?}");
    m.no_problems();
}
