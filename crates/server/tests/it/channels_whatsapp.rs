//! The WhatsApp adapter end to end (SPEC 7.8a, 7.21) against the fake Graph API: provisioning
//! (live with the handshake answered for the pending integration, refused, unreachable, offline,
//! digits), inbound webhooks (`X-Hub-Signature-256`, text, media links through the media
//! lookup, replies to buttons, unsupported kinds, duplicates, other numbers ignored, `read` and
//! `failed` statuses), outbound renders (text, reply buttons, lists, the text fallback, split
//! texts), retries, refusals, order, the 24-hour window and its template, and business-scoped
//! user ids.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::channels::*;
use crate::fakes::whatsapp::{self, WhatsAppFake, MEDIA_ID, OTHER_PHONE_ID, PHONE_ID, WABA_ID};
use crate::fakes::Mode;
use crate::support::*;

const TOKEN: &str = "EAAGm0PX4ZCpsBAsystemusertoken";
const APP_SECRET: &str = "a3c1f0e2d4b6978812f0e1d2c3b4a596";
/// The customer's WhatsApp id (their phone number).
const CUSTOMER: &str = "16505551234";

struct Wa {
    s: TestServer,
    fake: WhatsAppFake,
    hub: String,
    agent: String,
    /// The WhatsApp integration.
    id: String,
    /// Its generated verify token.
    secret: String,
}

fn configuration(extra: Value) -> Value {
    let mut c = json!({ "accessToken": TOKEN, "phoneNumberId": PHONE_ID,
                        "businessAccountId": WABA_ID, "appSecret": APP_SECRET });
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    c
}

async fn setup_on(backend: Backend) -> Wa {
    let fake = whatsapp::start(TOKEN).await;
    let url = fake.graph_url();
    let s = server(backend, "0s,100ms,100ms,100ms", move |a| {
        a.provider_whatsapp_url = url;
        // No SWITCHBOARD_MESSENGER_APP_SECRET: the configuration's appSecret signs.
        a.messenger_app_secret = None;
    })
    .await;
    let (hub, agent) = hub_with_agent(&s).await;
    let (status, body) = create(&s, &hub, "WhatsApp", configuration(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Wa {
        id: body["integrationId"].as_str().unwrap().to_owned(),
        secret: body["configuration"]["webhookSecret"]
            .as_str()
            .unwrap()
            .to_owned(),
        s,
        fake,
        hub,
        agent,
    }
}

async fn setup() -> Wa {
    setup_on(Backend::Sqlite).await
}

/// `X-Hub-Signature-256` of `body` under `secret`: `sha256=` + lowercase hex of the HMAC.
fn signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", to_hex(&hmac_sha256(secret.as_bytes(), body)))
}

#[test]
fn the_signature_helper_matches_a_published_vector() {
    // RFC 4231 test case 2.
    assert_eq!(
        signature("Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

// ---------------------------------------------------------------------------------------------
// Webhook bodies

/// A `messages` change of the phone number `phone` carrying `value` (metadata added).
fn change_of(phone: &str, mut value: Value) -> Value {
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({ "display_phone_number": "15550783881", "phone_number_id": phone });
    json!({ "object": "whatsapp_business_account", "entry": [ { "id": WABA_ID,
        "changes": [ { "field": "messages", "value": value } ] } ] })
}

/// A message of `kind` from the customer `wa_id` named `name`.
fn message_from(wa_id: &str, wamid: &str, kind: &str, body: Value) -> Value {
    let mut m = json!({ "from": wa_id, "id": wamid, "timestamp": "1700000000", "type": kind });
    m[kind] = body;
    change_of(
        PHONE_ID,
        json!({ "contacts": [ { "profile": { "name": "Sheena Nelson" }, "wa_id": wa_id } ],
                "messages": [ m ] }),
    )
}

fn text_from(wa_id: &str, wamid: &str, text: &str) -> Value {
    message_from(wa_id, wamid, "text", json!({ "body": text }))
}

/// A `statuses[]` entry about the message `wamid` sent to `recipient`.
fn status_of(wamid: &str, status: &str, recipient: &str, errors: Option<Value>) -> Value {
    let mut st = json!({ "id": wamid, "status": status, "timestamp": "1700000100",
                         "recipient_id": recipient });
    if let Some(e) = errors {
        st["errors"] = e;
    }
    change_of(PHONE_ID, json!({ "statuses": [ st ] }))
}

impl Wa {
    /// Posts a webhook signed with the app secret.
    async fn post(&self, body: &Value) -> (StatusCode, String) {
        let bytes = body.to_string().into_bytes();
        let sig = signature(APP_SECRET, &bytes);
        self.post_raw(&[("x-hub-signature-256", &sig)], bytes).await
    }

    async fn post_raw(&self, headers: &[(&str, &str)], body: Vec<u8>) -> (StatusCode, String) {
        provider_post(
            &self.s,
            &format!("/channels/whatsapp/{}", self.id),
            "application/json",
            headers,
            body,
        )
        .await
    }

    /// The customer `wa_id` writes `text` (answered 200 with an empty body).
    async fn says(&self, wa_id: &str, wamid: &str, text: &str) {
        let (status, body) = self.post(&text_from(wa_id, wamid, text)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.is_empty(), "{body}");
    }

    async fn conversation(&self, binding: &str) -> String {
        conversation_of(&self.s, &self.id, binding).await
    }

    /// A conversation in which the customer has just written (the window is open).
    async fn open_conversation(&self, wa_id: &str) -> String {
        self.says(
            wa_id,
            &format!("wamid.in-{wa_id}-{}", uuid::Uuid::new_v4()),
            "hi",
        )
        .await;
        self.conversation(wa_id).await
    }

    async fn handshake(&self, query: &str) -> (StatusCode, String, Option<String>) {
        let resp = self
            .s
            .http
            .get(
                self.s
                    .url(&format!("/channels/whatsapp/{}?{query}", self.id)),
            )
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, resp.text().await.unwrap(), ct)
    }

    fn assert_no_problems(&self) {
        assert!(
            self.fake.problems().is_empty(),
            "{:?}",
            self.fake.problems()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Provisioning

#[tokio::test]
async fn create_live_answers_the_handshake_of_the_pending_integration_and_stores_the_number() {
    let fake = whatsapp::start(TOKEN).await;
    let url = fake.graph_url();
    let s = server(Backend::Sqlite, "0s", move |a| {
        a.provider_whatsapp_url = url
    })
    .await;
    let (hub, _) = hub_with_agent(&s).await;
    // Values a client sends for the read-only keys are ignored in live mode.
    let (status, body) = create(
        &s,
        &hub,
        "WhatsApp",
        configuration(json!({ "displayPhoneNumber": "+1 000", "verifiedName": "Mine" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["integrationId"].as_str().unwrap().to_owned();
    let c = &body["configuration"];
    assert_eq!(
        c["displayPhoneNumber"],
        whatsapp::DISPLAY_PHONE_NUMBER,
        "{body}"
    );
    assert_eq!(c["verifiedName"], whatsapp::VERIFIED_NAME, "{body}");
    assert_eq!(c["templateLanguage"], "en_US", "{body}");
    let secret = c["webhookSecret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32);
    assert!(
        secret.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{secret}"
    );

    // Verify, subscribe the app, then the override, in this order.
    let calls: Vec<(String, String)> = fake
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let v = whatsapp::VERSION;
    assert_eq!(
        calls,
        [
            ("GET".to_owned(), format!("/{v}/{PHONE_ID}")),
            ("POST".to_owned(), format!("/{v}/{WABA_ID}/subscribed_apps")),
            ("POST".to_owned(), format!("/{v}/{PHONE_ID}")),
        ]
    );
    let requests = fake.requests();
    assert_eq!(
        requests[0].query_param("fields").as_deref(),
        Some("display_phone_number,verified_name")
    );
    assert!(requests
        .iter()
        .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}"))));
    let callback = format!("{}/channels/whatsapp/{id}", s.base);
    assert_eq!(
        requests[2].json(),
        json!({ "webhook_configuration": { "override_callback_uri": callback, "verify_token": secret } })
    );
    // The fake sent the handshake before answering the override: the integration, still
    // pending, was found and the challenge echoed.
    let handshakes = fake.handshakes();
    assert_eq!(handshakes.len(), 1, "{handshakes:?}");
    assert!(handshakes[0].echoed(), "{handshakes:?}");
    assert!(handshakes[0].url.starts_with(&callback), "{handshakes:?}");
    assert!(fake.problems().is_empty(), "{:?}", fake.problems());

    // Stored as answered.
    let (status, got) = s
        .get(&format!("/api/v1/integrations/{id}"), &s.a.portal)
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(
        got["configuration"]["displayPhoneNumber"],
        whatsapp::DISPLAY_PHONE_NUMBER
    );
    assert_eq!(got["channelId"], "WhatsApp");

    // Delete: no deregistration call; Meta's later calls find nothing (404/6000).
    let before = fake.requests().len();
    let (status, _) = s
        .delete(&format!("/api/v1/integrations/{id}"), &s.a.portal)
        .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.requests().len(), before);
    let resp = s
        .http
        .get(format!(
            "{callback}?hub.mode=subscribe&hub.verify_token={secret}&hub.challenge=5"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(&resp.text().await.unwrap()), 6000);
    let bytes = text_from(CUSTOMER, "wamid.late", "late").to_string();
    let sig = signature(APP_SECRET, bytes.as_bytes());
    let (status, body) = provider_post(
        &s,
        &format!("/channels/whatsapp/{id}"),
        "application/json",
        &[("x-hub-signature-256", &sig)],
        bytes.into_bytes(),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, 6000),
        "{body}"
    );
}

#[tokio::test]
async fn a_pending_integration_is_found_only_by_the_handshake() {
    let t = setup().await;
    // While the next create registers its override, Meta also POSTs a (validly signed)
    // message to the pending integration: only handshakes find it, so this is 404/6000.
    let bytes = text_from(CUSTOMER, "wamid.early", "too early")
        .to_string()
        .into_bytes();
    let sig = signature(APP_SECRET, &bytes);
    *t.fake.extra.probe.lock().unwrap() = Some((bytes, sig));
    let (status, body) = create(
        &t.s,
        &t.hub,
        "WhatsApp",
        configuration(json!({ "phoneNumberId": OTHER_PHONE_ID })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answers = t.fake.extra.probe_answers.lock().unwrap().clone();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(
        (answers[0].0, code(&answers[0].1)),
        (404, 6000),
        "{answers:?}"
    );
    assert!(t.fake.handshakes().last().unwrap().echoed());
    // Nothing was stored for it.
    let id = body["integrationId"].as_str().unwrap();
    let conversation = conversation_of(&t.s, id, CUSTOMER).await;
    assert!(customer_activities(&t.s, &conversation, &t.agent)
        .await
        .is_empty());
}

#[tokio::test]
async fn the_handshake_route_checks_mode_and_verify_token() {
    let t = setup().await;
    let (status, body, ct) = t
        .handshake(&format!(
            "hub.mode=subscribe&hub.verify_token={}&hub.challenge=1158201444",
            t.secret
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "1158201444");
    assert!(ct.unwrap().starts_with("text/plain"));
    for q in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1".to_owned(),
        format!(
            "hub.mode=unsubscribe&hub.verify_token={}&hub.challenge=1",
            t.secret
        ),
        format!("hub.mode=subscribe&hub.verify_token={}", t.secret),
        "hub.mode=subscribe&hub.challenge=1".to_owned(),
    ] {
        let (status, body, _) = t.handshake(&q).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::FORBIDDEN, 101),
            "{q}: {body}"
        );
    }
    // An unknown id: 404/6000; not a UUID: 400/203.
    let resp =
        t.s.http
            .get(t.s.url(&format!(
                "/channels/whatsapp/{}?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1",
                uuid::Uuid::new_v4()
            )))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp =
        t.s.http
            .get(t.s.url("/channels/whatsapp/nope"))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(&resp.text().await.unwrap()), 203);
}

#[tokio::test]
async fn without_a_business_account_only_the_override_is_registered() {
    let t = setup().await;
    let before = t.fake.requests().len();
    let mut c = configuration(json!({ "phoneNumberId": OTHER_PHONE_ID }));
    c.as_object_mut().unwrap().remove("businessAccountId");
    let (status, body) = create(&t.s, &t.hub, "WhatsApp", c).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let paths: Vec<String> = t.fake.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    let v = whatsapp::VERSION;
    assert_eq!(
        paths,
        [
            format!("/{v}/{OTHER_PHONE_ID}"),
            format!("/{v}/{OTHER_PHONE_ID}")
        ]
    );
    assert_eq!(t.fake.handshakes().len(), 2);
    assert!(t.fake.handshakes()[1].echoed());
    assert_eq!(body["configuration"]["businessAccountId"], Value::Null);
    t.assert_no_problems();
}

#[tokio::test]
async fn create_refused_or_unreachable_stores_nothing() {
    let t = setup().await;
    let before = integrations(&t.s, &t.hub).await.len();
    // The description without the trailing " (code: …)" of SPEC 1.
    let refused = |body: &Value| {
        assert_eq!(body["errors"][0]["code"], 206, "{body}");
        let d = body["errors"][0]["description"].as_str().unwrap();
        d.rsplit_once(" (code: ").map_or(d, |(d, _)| d).to_owned()
    };

    // A token Graph does not accept (190).
    let (status, body) = create(
        &t.s,
        &t.hub,
        "WhatsApp",
        configuration(json!({ "accessToken": "EAAexpired" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let d = refused(&body);
    assert!(
        d.starts_with("WhatsApp refused the configuration: Invalid OAuth access token")
            && d.ends_with("(190)"),
        "{d}"
    );

    // A number the token cannot see (100).
    let (status, body) = create(
        &t.s,
        &t.hub,
        "WhatsApp",
        configuration(json!({ "phoneNumberId": "999999999" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let d = refused(&body);
    assert!(
        d.starts_with("WhatsApp refused the configuration: Unsupported get request")
            && d.ends_with("(100)"),
        "{d}"
    );

    // A business account the token cannot see: subscribed_apps refused.
    let (status, body) = create(
        &t.s,
        &t.hub,
        "WhatsApp",
        configuration(json!({ "businessAccountId": "123456" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(refused(&body).contains("Object with ID '123456'"), "{body}");

    // The handshake fails (Meta sends a verify token Switchboard does not know): Meta refuses
    // the override with 2200, create answers its refusal and forgets the pending row.
    *t.fake.extra.tamper_verify_token.lock().unwrap() = Some("not-the-secret".into());
    let (status, body) = create(&t.s, &t.hub, "WhatsApp", configuration(json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let d = refused(&body);
    assert!(
        d.contains("Callback verification failed") && d.ends_with("(2200)"),
        "{d}"
    );
    let last = t.fake.handshakes().pop().unwrap();
    assert_eq!(last.status, Some(403), "{last:?}");
    *t.fake.extra.tamper_verify_token.lock().unwrap() = None;
    // The pending integration is gone: the handshake with the real token finds nothing.
    let override_call = t.fake.to(&format!("/{PHONE_ID}")).pop().unwrap().json();
    let uri = override_call["webhook_configuration"]["override_callback_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = override_call["webhook_configuration"]["verify_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp =
        t.s.http
            .get(format!(
                "{uri}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=7"
            ))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // 5xx on the verification, 429 on the subscription: unreachable, 503/100.
    for script in [
        vec![Mode::ServerError],
        vec![Mode::Success, Mode::RateLimited(1)],
    ] {
        t.fake.script(script);
        let (status, body) = create(&t.s, &t.hub, "WhatsApp", configuration(json!({}))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["errors"][0]["code"], 100, "{body}");
        assert!(body["errors"][0]["description"]
            .as_str()
            .unwrap()
            .starts_with("WhatsApp is unreachable"));
    }
    assert_eq!(integrations(&t.s, &t.hub).await.len(), before);
    t.assert_no_problems();
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v25.0", closed.local_addr().unwrap());
    drop(closed);
    let s = server(Backend::Sqlite, "0s", move |a| {
        a.provider_whatsapp_url = url
    })
    .await;
    let (hub, _) = hub_with_agent(&s).await;
    let (status, body) = create(&s, &hub, "WhatsApp", configuration(json!({}))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["errors"][0]["code"], 100);
    assert!(body["errors"][0]["description"]
        .as_str()
        .unwrap()
        .starts_with("WhatsApp is unreachable"));
    assert_eq!(integrations(&s, &hub).await.len(), 1, "only the agent");
}

#[tokio::test]
async fn ids_must_be_digits_and_an_app_secret_is_required() {
    let t = setup().await;
    let before = t.fake.requests().len();
    for extra in [
        json!({ "phoneNumberId": "10654-0352242922" }),
        json!({ "phoneNumberId": "abc" }),
        json!({ "businessAccountId": "WABA1" }),
    ] {
        let (status, body) = create(&t.s, &t.hub, "WhatsApp", configuration(extra.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}: {body}");
        assert_eq!(body["errors"][0]["code"], 201, "{extra}: {body}");
    }
    // No appSecret and no SWITCHBOARD_MESSENGER_APP_SECRET: refused before any call.
    let mut c = configuration(json!({}));
    c.as_object_mut().unwrap().remove("appSecret");
    let (status, body) = create(&t.s, &t.hub, "WhatsApp", c).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("appSecret"), "{body}");
    assert_eq!(t.fake.requests().len(), before, "no provider call");
}

#[tokio::test]
async fn the_server_app_secret_signs_when_the_configuration_has_none() {
    let fake = whatsapp::start(TOKEN).await;
    let url = fake.graph_url();
    let s = server(Backend::Sqlite, "0s", move |a| {
        a.provider_whatsapp_url = url;
        a.messenger_app_secret = Some("server-app-secret".into());
    })
    .await;
    let (hub, agent) = hub_with_agent(&s).await;
    let mut c = configuration(json!({}));
    c.as_object_mut().unwrap().remove("appSecret");
    let (status, body) = create(&s, &hub, "WhatsApp", c).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["integrationId"].as_str().unwrap();
    let bytes = text_from(CUSTOMER, "wamid.env1", "signed by the server's app").to_string();
    let path = format!("/channels/whatsapp/{id}");
    let wrong = signature(APP_SECRET, bytes.as_bytes());
    let (status, _) = provider_post(
        &s,
        &path,
        "application/json",
        &[("x-hub-signature-256", &wrong)],
        bytes.clone().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let right = signature("server-app-secret", bytes.as_bytes());
    let (status, body) = provider_post(
        &s,
        &path,
        "application/json",
        &[("x-hub-signature-256", &right)],
        bytes.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let conversation = conversation_of(&s, id, CUSTOMER).await;
    let got = customer_activities(&s, &conversation, &agent).await;
    assert_eq!(got.len(), 1, "{got:#?}");
}

#[tokio::test]
async fn offline_makes_no_call_takes_read_only_keys_as_given_and_holds_deliveries() {
    let fake = whatsapp::start(TOKEN).await;
    let url = fake.graph_url();
    let s = server(Backend::Sqlite, "0s", move |a| {
        a.provider_whatsapp_url = url;
        a.providers = switchboard::config::ProvidersMode::Offline;
    })
    .await;
    let (hub, agent) = hub_with_agent(&s).await;
    let (status, body) = create(
        &s,
        &hub,
        "WhatsApp",
        configuration(json!({ "displayPhoneNumber": "+1 555 0100" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["configuration"]["displayPhoneNumber"], "+1 555 0100");
    assert_eq!(body["configuration"]["verifiedName"], Value::Null);
    let id = body["integrationId"].as_str().unwrap().to_owned();
    // Inbound works unchanged (signature included).
    let bytes = text_from(CUSTOMER, "wamid.off1", "hello offline").to_string();
    let sig = signature(APP_SECRET, bytes.as_bytes());
    let (status, b) = provider_post(
        &s,
        &format!("/channels/whatsapp/{id}"),
        "application/json",
        &[("x-hub-signature-256", &sig)],
        bytes.into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    let conversation = conversation_of(&s, &id, CUSTOMER).await;
    let (status, b) = agent_sends(&s, &conversation, &agent, text("held")).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let list = deliveries(&s, &id).await;
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["status"], "pending");
    assert_eq!(list[0]["nextAttemptAt"], Value::Null);
    assert_eq!(list[0]["lastError"], "providers offline");
    assert_eq!(list[0]["channel"], "WhatsApp");
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

// ---------------------------------------------------------------------------------------------
// Inbound

#[tokio::test]
async fn inbound_needs_meta_s_signature() {
    let t = setup().await;
    let body = text_from(CUSTOMER, "wamid.sig1", "hi")
        .to_string()
        .into_bytes();
    let good = signature(APP_SECRET, &body);
    let mut changed = body.clone();
    let at = changed.len() - 5;
    changed[at] ^= 1;
    // (headers, body) sent.
    type Case<'a> = (Vec<(&'a str, String)>, Vec<u8>);
    let cases: Vec<Case> = vec![
        (vec![], body.clone()),
        (
            vec![("x-hub-signature-256", signature("another secret", &body))],
            body.clone(),
        ),
        (vec![("x-hub-signature-256", good.clone())], changed),
        (
            vec![("x-hub-signature-256", good.replace("sha256=", ""))],
            body.clone(),
        ),
        (
            vec![("x-hub-signature-256", good.replace("sha256=", "sha1="))],
            body.clone(),
        ),
        (vec![("x-hub-signature", good.clone())], body.clone()),
    ];
    for (headers, b) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, answer) = t.post_raw(&h, b).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {answer}");
        assert_eq!(code(&answer), 102, "{answer}");
        assert!(answer.contains("ENG000102"), "{answer}");
    }
    // Nothing was stored.
    let conversation = t.conversation(CUSTOMER).await;
    assert!(customer_activities(&t.s, &conversation, &t.agent)
        .await
        .is_empty());
    // Signed but unparseable: 400/300. Signed, another object: ignored, 200.
    let junk = b"{not json".to_vec();
    let sig = signature(APP_SECRET, &junk);
    let (status, answer) = t.post_raw(&[("x-hub-signature-256", &sig)], junk).await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::BAD_REQUEST, 300),
        "{answer}"
    );
    let (status, _) = t.post(&json!({ "object": "page", "entry": [] })).await;
    assert_eq!(status, StatusCode::OK);
    // Over 1 MiB: 413/304.
    let (status, answer) = t
        .post_raw(
            &[("x-hub-signature-256", &good)],
            vec![b' '; 1024 * 1024 + 1],
        )
        .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::PAYLOAD_TOO_LARGE, 304),
        "{answer}"
    );
}

#[tokio::test]
async fn inbound_messages_become_activities_once() {
    let t = setup().await;
    t.says(CUSTOMER, "wamid.t1", "hello there").await;
    // Meta delivers the same message again: nothing new.
    t.says(CUSTOMER, "wamid.t1", "hello there").await;
    let sends = [
        message_from(
            CUSTOMER,
            "wamid.t2",
            "image",
            json!({ "id": MEDIA_ID, "mime_type": "image/jpeg", "sha256": "x", "caption": "look" }),
        ),
        message_from(
            CUSTOMER,
            "wamid.t3",
            "document",
            json!({ "id": MEDIA_ID, "mime_type": "application/pdf", "filename": "invoice.pdf" }),
        ),
        message_from(
            CUSTOMER,
            "wamid.t4",
            "location",
            json!({ "latitude": 48.85, "longitude": 2.35, "name": "Louvre", "address": "Rue de Rivoli" }),
        ),
        message_from(
            CUSTOMER,
            "wamid.t5",
            "contacts",
            json!([ { "name": { "formatted_name": "Ada Lovelace" }, "phones": [ { "phone": "+1 555 0101" } ] } ]),
        ),
        message_from(
            CUSTOMER,
            "wamid.t6",
            "order",
            json!({ "catalog_id": "1", "product_items": [] }),
        ),
        message_from(
            CUSTOMER,
            "wamid.t7",
            "reaction",
            json!({ "message_id": "wamid.x", "emoji": "👍" }),
        ),
        // Ignored: a removed reaction, a system message.
        message_from(
            CUSTOMER,
            "wamid.t8",
            "reaction",
            json!({ "message_id": "wamid.x", "emoji": "" }),
        ),
        message_from(
            CUSTOMER,
            "wamid.t9",
            "system",
            json!({ "body": "changed number" }),
        ),
    ];
    for body in &sends {
        let (status, answer) = t.post(body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(answer.is_empty());
    }
    // Ignored: another number of the same account, another field, a group message.
    let mut other = text_from(CUSTOMER, "wamid.o1", "to the other number");
    other["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = json!(OTHER_PHONE_ID);
    let mut field = text_from(CUSTOMER, "wamid.o2", "another field");
    field["entry"][0]["changes"][0]["field"] = json!("message_echoes");
    let mut group = text_from(CUSTOMER, "wamid.o3", "in a group");
    group["entry"][0]["changes"][0]["value"]["messages"][0]["group_id"] =
        json!("120363000000000000");
    let revoke = message_from(
        CUSTOMER,
        "wamid.o4",
        "revoke",
        json!({ "original_message_id": "wamid.t1" }),
    );
    let errors = change_of(
        PHONE_ID,
        json!({ "errors": [ { "code": 131051, "title": "Unsupported message type" } ] }),
    );
    for body in [other, field, group, revoke, errors] {
        assert_eq!(t.post(&body).await.0, StatusCode::OK);
    }
    // One webhook with two customers' messages: each in their own conversation, named.
    let batch = change_of(
        PHONE_ID,
        json!({ "contacts": [ { "profile": { "name": "Ana" }, "wa_id": "5511987654321" },
                              { "profile": { "name": "Bea" }, "wa_id": "5511912345678" } ],
                "messages": [
                  { "from": "5511912345678", "id": "wamid.bea", "timestamp": "1", "type": "text",
                    "text": { "body": "from Bea" }, "context": { "from": PHONE_ID, "id": "wamid.x" } },
                  { "from": "5511987654321", "id": "wamid.ana", "timestamp": "1", "type": "interactive",
                    "interactive": { "type": "nfm_reply", "nfm_reply": { "response_json": "{}" } } } ] }),
    );
    assert_eq!(t.post(&batch).await.0, StatusCode::OK);
    for (wa_id, name, what) in [
        ("5511912345678", "Bea", "from Bea"),
        ("5511987654321", "Ana", "[interactive not supported]"),
    ] {
        let conversation = t.conversation(wa_id).await;
        let got = customer_activities(&t.s, &conversation, &t.agent).await;
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(got[0]["message"]["text"], what);
        let (_, c) =
            t.s.get(
                &format!("/api/v1/conversations/{conversation}"),
                &t.s.a.engine,
            )
            .await;
        assert_eq!(c["properties"]["profile"]["full name"], name, "{c}");
    }

    let conversation = t.conversation(CUSTOMER).await;
    let got = customer_activities(&t.s, &conversation, &t.agent).await;
    let summary: Vec<String> = got.iter().map(|a| a["message"].to_string()).collect();
    assert_eq!(got.len(), 7, "{summary:#?}");
    assert_eq!(got[0]["message"]["text"], "hello there");
    assert_eq!(got[0]["externalId"], "wamid.t1");
    assert_eq!(got[0]["sender"]["channelType"], "WhatsApp");
    assert_eq!(got[1]["message"]["type"], "image");
    assert_eq!(got[1]["message"]["caption"], "look");
    assert_eq!(got[2]["message"]["type"], "attachment");
    assert_eq!(got[2]["message"]["title"], "invoice.pdf");
    assert_eq!(got[3]["message"]["type"], "location");
    assert_eq!(got[3]["message"]["address"], "Louvre, Rue de Rivoli");
    assert_eq!(got[4]["message"]["text"], "Ada Lovelace\n+1 555 0101");
    assert_eq!(got[5]["message"]["text"], "[order not supported]");
    assert_eq!(got[6]["message"]["text"], "👍");
    // Properties: the profile name and the phone.
    let (_, c) =
        t.s.get(
            &format!("/api/v1/conversations/{conversation}"),
            &t.s.a.engine,
        )
        .await;
    assert_eq!(
        c["properties"]["profile"]["full name"], "Sheena Nelson",
        "{c}"
    );
    assert_eq!(c["properties"]["channel"]["phone"], CUSTOMER, "{c}");
    assert_eq!(c["properties"]["channel"]["userId"], CUSTOMER, "{c}");
    // No profile call was made (WhatsApp has none), nothing else was called.
    assert!(t.fake.to("/messages").is_empty());
    t.assert_no_problems();
}

#[tokio::test]
async fn a_media_link_resolves_the_id_then_downloads_from_the_returned_url() {
    let t = setup().await;
    let image = message_from(
        CUSTOMER,
        "wamid.m1",
        "image",
        json!({ "id": MEDIA_ID, "mime_type": "image/jpeg" }),
    );
    assert_eq!(t.post(&image).await.0, StatusCode::OK);
    let expired = message_from(
        CUSTOMER,
        "wamid.m2",
        "video",
        json!({ "id": whatsapp::EXPIRED_MEDIA_ID, "mime_type": "video/mp4" }),
    );
    assert_eq!(t.post(&expired).await.0, StatusCode::OK);
    let unknown = message_from(
        CUSTOMER,
        "wamid.m3",
        "audio",
        json!({ "id": "424242", "voice": true }),
    );
    assert_eq!(t.post(&unknown).await.0, StatusCode::OK);
    let conversation = t.conversation(CUSTOMER).await;
    let got = customer_activities(&t.s, &conversation, &t.agent).await;
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(got[1]["message"]["type"], "video");
    assert_eq!(got[2]["message"]["type"], "audio");
    let link = got[0]["message"]["url"].as_str().unwrap().to_owned();
    assert!(
        link.starts_with(&format!("{}/channels/media/{}/", t.s.base, t.id)),
        "{link}"
    );

    let before = t.fake.requests().len();
    let resp = t.s.http.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], whatsapp::MEDIA_MIME);
    assert_eq!(resp.headers()["content-disposition"], "inline");
    assert_eq!(resp.headers()["cache-control"], "private, max-age=3600");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), whatsapp::MEDIA_BYTES);
    // The lookup, then the download from the URL it answered, both with the Bearer token.
    let calls = &t.fake.requests()[before..];
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].method, "GET");
    assert_eq!(calls[0].path, format!("/{}/{MEDIA_ID}", whatsapp::VERSION));
    assert_eq!(calls[1].path, format!("/media-download/{MEDIA_ID}"));
    for c in calls {
        assert_eq!(
            c.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    // Graph failing on the lookup: 503/100.
    t.fake.script([Mode::ServerError]);
    let resp = t.s.http.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&resp.text().await.unwrap()), 100);
    // An expired download, an unknown id, a changed signature: 404/105.
    for url in [
        got[1]["message"]["url"].as_str().unwrap().to_owned(),
        got[2]["message"]["url"].as_str().unwrap().to_owned(),
        format!(
            "{}x",
            link.trim_end_matches(|c| c != '=').trim_end_matches('=')
        ),
    ] {
        let resp = t.s.http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{url}");
        assert_eq!(code(&resp.text().await.unwrap()), 105);
    }
    t.assert_no_problems();
}

#[tokio::test]
async fn replies_to_buttons_are_payloads_or_texts() {
    let t = setup().await;
    let bodies = [
        message_from(
            CUSTOMER,
            "wamid.b1",
            "interactive",
            json!({ "type": "button_reply",
            "button_reply": { "id": "p:BUY_RED", "title": "Red" } }),
        ),
        message_from(
            CUSTOMER,
            "wamid.b2",
            "interactive",
            json!({ "type": "button_reply",
            "button_reply": { "id": "r:Yes", "title": "Yes" } }),
        ),
        message_from(
            CUSTOMER,
            "wamid.b3",
            "interactive",
            json!({ "type": "list_reply",
            "list_reply": { "id": "p:{\"size\":42}", "title": "Size 42", "description": "d" } }),
        ),
        message_from(
            CUSTOMER,
            "wamid.b4",
            "interactive",
            json!({ "type": "list_reply",
            "list_reply": { "id": "custom-7", "title": "Seven" } }),
        ),
        message_from(
            CUSTOMER,
            "wamid.b5",
            "button",
            json!({ "text": "Stop promotions", "payload": "STOP" }),
        ),
    ];
    for b in &bodies {
        assert_eq!(t.post(b).await.0, StatusCode::OK);
    }
    let conversation = t.conversation(CUSTOMER).await;
    let got = customer_activities(&t.s, &conversation, &t.agent).await;
    assert_eq!(got.len(), 5, "{got:#?}");
    assert_eq!(got[0]["type"], "event");
    assert_eq!(got[0]["event"]["type"], "payload");
    assert_eq!(got[0]["event"]["payloadType"], "postback");
    assert_eq!(got[0]["event"]["payload"], "BUY_RED");
    assert_eq!(got[1]["message"]["text"], "Yes");
    assert_eq!(got[2]["event"]["payload"], "{\"size\":42}");
    assert_eq!(got[3]["message"]["text"], "Seven");
    assert_eq!(got[4]["message"]["text"], "Stop promotions");
}

#[tokio::test]
async fn read_and_failed_statuses() {
    let t = setup().await;
    let conversation = t.open_conversation(CUSTOMER).await;
    agent_sends(&t.s, &conversation, &t.agent, text("our answer")).await;
    let list = deliveries_when(&t.s, &t.id, 1, settled).await;
    assert_eq!(list[0]["status"], "succeeded", "{list:#?}");
    let wamid = list[0]["providerMessageIds"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(wamid.starts_with("wamid."), "{wamid}");

    // sent and delivered are ignored; read (twice) is one seen event.
    for st in ["sent", "delivered", "read", "read"] {
        let (status, answer) = t.post(&status_of(&wamid, st, CUSTOMER, None)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let got = customer_activities(&t.s, &conversation, &t.agent).await;
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[1]["type"], "event");
    assert_eq!(got[1]["event"]["type"], "seen");
    assert_eq!(got[1]["externalId"], format!("read:{wamid}"));
    // A read status for someone with no open conversation: nothing.
    assert_eq!(
        t.post(&status_of("wamid.elsewhere", "read", "4915112345678", None))
            .await
            .0,
        StatusCode::OK
    );
    let other = t.conversation("4915112345678").await;
    assert!(customer_activities(&t.s, &other, &t.agent).await.is_empty());

    // failed, delivered twice (and twice in one body): one delivery_failed.
    let errors = json!([ { "code": 131026, "title": "Message undeliverable",
        "message": "Message undeliverable", "error_data": { "details": "Receiver is incapable of receiving this message" } } ]);
    let failed = status_of(&wamid, "failed", CUSTOMER, Some(errors));
    let mut twice = failed.clone();
    let st = twice["entry"][0]["changes"][0]["value"]["statuses"][0].clone();
    twice["entry"][0]["changes"][0]["value"]["statuses"] = json!([st.clone(), st]);
    for body in [&failed, &failed, &twice] {
        assert_eq!(t.post(body).await.0, StatusCode::OK);
    }
    let notes = notifications(&t.s, "delivery_failed").await;
    assert_eq!(notes.len(), 1, "{notes:#?}");
    let d = notes[0]["description"].as_str().unwrap();
    assert!(d.contains(&wamid) && d.contains(CUSTOMER), "{d}");
    assert!(
        d.contains("131026") && d.contains("Message undeliverable"),
        "{d}"
    );
    assert!(d.contains("Receiver is incapable"), "{d}");
    // The delivery Meta had accepted stays succeeded.
    let list = deliveries(&t.s, &t.id).await;
    assert_eq!(list[0]["status"], "succeeded");
}

// ---------------------------------------------------------------------------------------------
// Outbound

fn actions(n: usize, title_len: usize) -> Value {
    let list: Vec<Value> = (0..n)
        .map(|i| {
            let title = format!("{i}{}", "x".repeat(title_len - 1));
            if i % 2 == 0 {
                json!({ "type": "reply", "title": title, "payload": title })
            } else {
                json!({ "type": "postback", "title": title, "payload": format!("PAY{i}") })
            }
        })
        .collect();
    Value::Array(list)
}

fn with_actions(t: &str, actions: Value) -> Value {
    json!({ "type": "message", "message": { "type": "text", "text": t, "actions": actions } })
}

#[tokio::test]
async fn agent_messages_are_rendered_and_recorded_with_wamids() {
    let t = setup().await;
    let conversation = t.open_conversation(CUSTOMER).await;
    let sends = [
        text("plain"),
        with_actions("Three buttons", actions(3, 20)),
        with_actions("A list", actions(5, 24)),
        with_actions("Eleven choices", actions(11, 5)),
        with_actions("Titles too long", actions(3, 25)),
        with_actions(
            "Visit",
            json!([ { "type": "link", "title": "Our site", "url": "https://example.com" } ]),
        ),
        json!({ "type": "message", "message": { "type": "image", "url": "https://example.com/a.png", "caption": "An image" } }),
        json!({ "type": "message", "message": { "type": "audio", "url": "https://example.com/a.mp3", "title": "A song" } }),
        json!({ "type": "message", "message": { "type": "attachment", "url": "https://example.com/a.pdf", "title": "a.pdf" } }),
        json!({ "type": "message", "message": { "type": "location", "latitude": 48.85, "longitude": 2.35 } }),
        json!({ "type": "message", "message": { "type": "contact", "name": "Ada", "phone": "+15551234" } }),
        json!({ "type": "message", "message": { "type": "card", "title": "Shoe", "description": "A red shoe",
            "mediaUrl": "https://example.com/shoe.png",
            "actions": [ { "type": "postback", "title": "Buy", "payload": "BUY" } ] } }),
        text(&"word ".repeat(1000)),
    ];
    let n = sends.len();
    for body in sends {
        let (status, b) = agent_sends(&t.s, &conversation, &t.agent, body).await;
        assert_eq!(status, StatusCode::OK, "{b}");
    }
    let list = deliveries_when(&t.s, &t.id, n, settled).await;
    assert!(
        list.iter().all(|d| d["status"] == "succeeded"),
        "{list:#?}; {:?}",
        t.fake.problems()
    );
    assert!(list.iter().all(|d| d["channel"] == "WhatsApp"));
    for d in &list {
        let ids = d["providerMessageIds"].as_array().unwrap();
        assert!(
            !ids.is_empty()
                && ids
                    .iter()
                    .all(|i| i.as_str().unwrap().starts_with("wamid.")),
            "{d:#}"
        );
    }
    // The audio's title went first as a text; the long text in two parts.
    assert_eq!(list[7]["providerMessageIds"].as_array().unwrap().len(), 2);
    assert_eq!(
        list[n - 1]["providerMessageIds"].as_array().unwrap().len(),
        2
    );
    t.assert_no_problems();

    let m = t.fake.messages();
    assert!(m.iter().all(|b| b["to"] == CUSTOMER
        && b["recipient_type"] == "individual"
        && b["messaging_product"] == "whatsapp"));
    let kinds: Vec<String> = m
        .iter()
        .map(|b| match b["type"].as_str().unwrap() {
            "interactive" => format!("interactive/{}", b["interactive"]["type"].as_str().unwrap()),
            k => k.to_owned(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "text",
            "interactive/button",
            "interactive/list",
            "text",
            "text",
            "interactive/cta_url",
            "image",
            "text",
            "audio",
            "document",
            "location",
            "text",
            "interactive/button",
            "text",
            "text"
        ]
    );
    assert_eq!(m[0]["text"]["body"], "plain");
    let buttons = &m[1]["interactive"];
    assert_eq!(buttons["body"]["text"], "Three buttons");
    let ids: Vec<&str> = buttons["action"]["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["reply"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            format!("r:0{}", "x".repeat(19)),
            "p:PAY1".to_owned(),
            format!("r:2{}", "x".repeat(19))
        ]
    );
    let list_rows = m[2]["interactive"]["action"]["sections"][0]["rows"]
        .as_array()
        .unwrap();
    assert_eq!(list_rows.len(), 5);
    assert_eq!(m[2]["interactive"]["action"]["button"], "Options");
    assert_eq!(list_rows[1]["id"], "p:PAY1");
    // Beyond the interactive limits: the text fallback with the choices as lines.
    let eleven = m[3]["text"]["body"].as_str().unwrap();
    assert!(
        eleven.starts_with("Eleven choices\n• 0xxxx\n• 1xxxx"),
        "{eleven}"
    );
    assert_eq!(eleven.lines().count(), 12, "{eleven}");
    assert!(m[4]["text"]["body"]
        .as_str()
        .unwrap()
        .starts_with("Titles too long\n• "));
    assert_eq!(
        m[5]["interactive"]["action"]["parameters"]["url"],
        "https://example.com"
    );
    assert_eq!(
        m[6]["image"],
        json!({ "link": "https://example.com/a.png", "caption": "An image" })
    );
    assert_eq!(m[7]["text"]["body"], "A song");
    assert_eq!(
        m[8]["audio"],
        json!({ "link": "https://example.com/a.mp3" })
    );
    assert_eq!(m[9]["document"]["filename"], "a.pdf");
    assert_eq!(m[10]["location"]["latitude"], 48.85);
    assert!(m[11]["text"]["body"].as_str().unwrap().contains("Ada"));
    let card = &m[12]["interactive"];
    assert_eq!(
        card["header"]["image"]["link"],
        "https://example.com/shoe.png"
    );
    assert_eq!(card["body"]["text"], "Shoe\nA red shoe");
    assert_eq!(card["action"]["buttons"][0]["reply"]["id"], "p:BUY");
    let (a, b) = (
        m[13]["text"]["body"].as_str().unwrap(),
        m[14]["text"]["body"].as_str().unwrap(),
    );
    assert!(a.chars().count() <= 4096 && b.chars().count() <= 4096);
    assert_eq!(format!("{a} {b}").split_whitespace().count(), 1000);
}

#[tokio::test]
async fn beyond_the_interactive_limits_the_text_fallback_is_sent() {
    let t = setup().await;
    let conversation = t.open_conversation(CUSTOMER).await;
    let postbacks = |n: usize, payload_len: usize| {
        Value::Array(
            (0..n)
                .map(|i| {
                    json!({ "type": "postback", "title": format!("Option {i}"),
                                 "payload": format!("{i}{}", "p".repeat(payload_len - 1)) })
                })
                .collect(),
        )
    };
    let sends = [
        // A body over 1024 characters with buttons.
        with_actions(&"long body ".repeat(110), actions(2, 5)),
        // A link and a reply together.
        with_actions(
            "Mixed",
            json!([ { "type": "link", "title": "Site", "url": "https://example.com" },
                    { "type": "reply", "title": "Yes", "payload": "Yes" } ]),
        ),
        // A link whose label is over 20 characters.
        with_actions(
            "Long label",
            json!([ { "type": "link", "title": "A label far too long for it", "url": "https://example.com" } ]),
        ),
        // Two postbacks with 232-character ids: buttons allow 256.
        with_actions("Long ids", postbacks(2, 230)),
        // Five: rows allow 200, so the fallback.
        with_actions("Longer ids", postbacks(5, 230)),
        // A carousel: a card with an image and a button, then one without an image.
        json!({ "type": "message", "message": { "type": "carousel", "items": [
            { "title": "Red", "description": "A red shoe", "mediaUrl": "https://example.com/r.png",
              "actions": [ { "type": "postback", "title": "Buy red", "payload": "RED" } ] },
            { "title": "Blue", "description": "A blue shoe",
              "actions": [ { "type": "postback", "title": "Buy blue", "payload": "BLUE" } ] } ] } }),
        json!({ "type": "message", "message": { "type": "video", "url": "https://example.com/v.mp4", "title": "Clip" } }),
    ];
    let n = sends.len();
    for body in sends {
        let (status, b) = agent_sends(&t.s, &conversation, &t.agent, body).await;
        assert_eq!(status, StatusCode::OK, "{b}");
    }
    let list = deliveries_when(&t.s, &t.id, n, settled).await;
    assert!(
        list.iter().all(|d| d["status"] == "succeeded"),
        "{list:#?}; {:?}",
        t.fake.problems()
    );
    t.assert_no_problems();
    let m = t.fake.messages();
    let kinds: Vec<String> = m
        .iter()
        .map(|b| match b["type"].as_str().unwrap() {
            "interactive" => format!("interactive/{}", b["interactive"]["type"].as_str().unwrap()),
            k => k.to_owned(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "text",
            "text",
            "text",
            "interactive/button",
            "text",
            "interactive/button",
            "text",
            "video"
        ]
    );
    let body = |i: usize| m[i]["text"]["body"].as_str().unwrap().to_owned();
    assert!(body(0).ends_with("\n• 0xxxx\n• 1xxxx"), "{}", body(0));
    assert_eq!(body(1), "Mixed\nSite: https://example.com\n• Yes");
    assert_eq!(
        body(2),
        "Long label\nA label far too long for it: https://example.com"
    );
    assert_eq!(
        m[3]["interactive"]["action"]["buttons"][1]["reply"]["id"],
        format!("p:1{}", "p".repeat(229))
    );
    assert!(
        body(4).starts_with("Longer ids\n• Option 0\n"),
        "{}",
        body(4)
    );
    assert_eq!(
        m[5]["interactive"]["header"]["image"]["link"],
        "https://example.com/r.png"
    );
    assert_eq!(body(6), "Blue\nA blue shoe\n• Buy blue");
    assert_eq!(
        m[7]["video"],
        json!({ "link": "https://example.com/v.mp4", "caption": "Clip" })
    );
}

#[tokio::test]
async fn seen_and_typing_mark_the_customer_s_last_message_read() {
    let t = setup().await;
    t.says(CUSTOMER, "wamid.first", "one").await;
    t.says(CUSTOMER, "wamid.last", "two").await;
    let conversation = t.conversation(CUSTOMER).await;
    for ev in ["seen", "typing_on", "typing_off"] {
        let (status, b) = agent_sends(
            &t.s,
            &conversation,
            &t.agent,
            json!({ "type": "event", "event": { "type": ev } }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{b}");
    }
    let calls = t.fake.wait_for("/messages", 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = t.fake.messages();
    assert_eq!(m.len(), 2, "typing_off makes no call: {m:#?}");
    assert_eq!(
        calls[0].json(),
        json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.last" })
    );
    assert_eq!(m[1]["typing_indicator"], json!({ "type": "text" }));
    assert_eq!(m[1]["message_id"], "wamid.last");
    // A failed read receipt is one attempt, never retried, with no notification.
    let n = deliveries_when(&t.s, &t.id, 1, settled).await.len();
    t.fake.script([Mode::ServerError]);
    agent_sends(
        &t.s,
        &conversation,
        &t.agent,
        json!({ "type": "event", "event": { "type": "seen" } }),
    )
    .await;
    let list = deliveries_when(&t.s, &t.id, n + 1, settled).await;
    assert_eq!(list[n]["attemptCount"], 1, "{list:#?}");
    assert_ne!(list[n]["status"], "succeeded", "{list:#?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(deliveries(&t.s, &t.id).await[n]["attemptCount"], 1);
    assert!(notifications(&t.s, "delivery_failed").await.is_empty());
    assert!(notifications(&t.s, "exhausted").await.is_empty());
    t.assert_no_problems();
}

#[tokio::test]
async fn a_5xx_is_retried_and_429_waits_for_its_hint() {
    let t = setup().await;
    let conversation = t.open_conversation(CUSTOMER).await;
    t.fake.script([Mode::ServerError]);
    agent_sends(&t.s, &conversation, &t.agent, text("one")).await;
    let list = deliveries_when(&t.s, &t.id, 1, settled).await;
    assert_eq!(list[0]["status"], "succeeded", "{list:#?}");
    assert_eq!(list[0]["attemptCount"], 2);
    assert_eq!(list[0]["attempts"][0]["statusCode"], 500);
    let error = list[0]["attempts"][0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("WhatsApp 500: An unknown error has occurred."),
        "{error}"
    );
    assert_eq!(list[0]["providerMessageIds"].as_array().unwrap().len(), 1);
    assert_eq!(t.fake.to("/messages").len(), 2);

    // 429 (130429) with a wait hint of 2 s: the next attempt waits for it (the schedule says
    // 100 ms).
    t.fake.script([Mode::RateLimited(2)]);
    agent_sends(&t.s, &conversation, &t.agent, text("two")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let d = loop {
        let list = deliveries(&t.s, &t.id).await;
        if let Some(d) = list
            .get(1)
            .filter(|d| d["attemptCount"] == 1 && d["status"] == "pending")
        {
            break d.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{list:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(d["attempts"][0]["statusCode"], 429);
    assert!(d["lastError"].as_str().unwrap().contains("130429"), "{d:#}");
    let wait = millis(d["nextAttemptAt"].as_str().unwrap())
        - millis(d["attempts"][0]["at"].as_str().unwrap());
    assert!(wait >= 2000, "waited {wait} ms: {d:#}");
    let list = deliveries_when(&t.s, &t.id, 2, settled).await;
    assert_eq!(list[1]["status"], "succeeded");
    t.assert_no_problems();
}

#[tokio::test]
async fn graph_codes_decide_over_the_http_status() {
    let t = setup().await;
    let conversation = t.open_conversation(CUSTOMER).await;
    // 131016 (service unavailable) with HTTP 400: retried.
    t.fake.script([Mode::Refuse(
        400,
        whatsapp::error_body(
            131_016,
            None,
            "(#131016) Service unavailable",
            "A service is temporarily unavailable.",
        ),
    )]);
    agent_sends(&t.s, &conversation, &t.agent, text("again")).await;
    let list = deliveries_when(&t.s, &t.id, 1, settled).await;
    assert_eq!(list[0]["status"], "succeeded", "{list:#?}");
    assert_eq!(list[0]["attemptCount"], 2);
    // 131031 (account locked) with HTTP 400: credentials.
    t.fake.script([Mode::Refuse(
        400,
        whatsapp::error_body(
            131_031,
            None,
            "(#131031) Account has been locked",
            "Business Account locked.",
        ),
    )]);
    agent_sends(&t.s, &conversation, &t.agent, text("locked")).await;
    let list = deliveries_when(&t.s, &t.id, 2, settled).await;
    assert_eq!(list[1]["status"], "failed", "{list:#?}");
    assert_eq!(notifications(&t.s, "provider_auth_failed").await.len(), 1);
    assert!(notifications(&t.s, "delivery_failed").await.is_empty());
    // 100 (invalid parameter) with HTTP 400: permanent, with the details in the reason.
    t.fake.script([Mode::Refuse(
        400,
        whatsapp::error_body(
            100,
            None,
            "(#100) Invalid parameter",
            "Parameter value is not valid",
        ),
    )]);
    agent_sends(&t.s, &conversation, &t.agent, text("bad")).await;
    let list = deliveries_when(&t.s, &t.id, 3, settled).await;
    assert_eq!(list[2]["status"], "failed", "{list:#?}");
    assert_eq!(
        list[2]["lastError"],
        "WhatsApp 400: (#100) Invalid parameter: Parameter value is not valid (100)"
    );
    assert_eq!(notifications(&t.s, "delivery_failed").await.len(), 1);
    t.assert_no_problems();
}

#[tokio::test]
async fn refusals_fail_at_once_with_their_notification() {
    let t = setup().await;
    let conversation = t.open_conversation(CUSTOMER).await;
    // 131026: permanent.
    t.fake
        .script([Mode::Refuse(400, whatsapp::undeliverable())]);
    agent_sends(&t.s, &conversation, &t.agent, text("undeliverable")).await;
    let list = deliveries_when(&t.s, &t.id, 1, settled).await;
    assert_eq!(list[0]["status"], "failed", "{list:#?}");
    assert_eq!(list[0]["attemptCount"], 1);
    assert_eq!(
        list[0]["lastError"],
        "WhatsApp 400: (#131026) Message undeliverable: Message Undeliverable. (131026)"
    );
    let failed = notifications(&t.s, "delivery_failed").await;
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(failed[0]["description"]
        .as_str()
        .unwrap()
        .contains("131026"));

    // 190: credentials; the integration stays active.
    t.fake
        .script([Mode::Refuse(401, whatsapp::invalid_token())]);
    agent_sends(&t.s, &conversation, &t.agent, text("token revoked")).await;
    let list = deliveries_when(&t.s, &t.id, 2, settled).await;
    assert_eq!(list[1]["status"], "failed");
    assert!(
        list[1]["lastError"].as_str().unwrap().contains("(190)"),
        "{list:#?}"
    );
    assert_eq!(notifications(&t.s, "provider_auth_failed").await.len(), 1);
    let (_, i) =
        t.s.get(&format!("/api/v1/integrations/{}", t.id), &t.s.a.portal)
            .await;
    assert_eq!(i["statusId"], 3000, "{i}");

    // 131047 although Switchboard thought the window open: permanent, with the window's reason.
    t.fake
        .script([Mode::Refuse(400, whatsapp::outside_window())]);
    agent_sends(&t.s, &conversation, &t.agent, text("late")).await;
    let list = deliveries_when(&t.s, &t.id, 3, settled).await;
    assert_eq!(list[2]["status"], "failed");
    assert_eq!(
        list[2]["lastError"],
        "WhatsApp 400: outside WhatsApp's 24-hour customer service window (131047)"
    );
    assert_eq!(notifications(&t.s, "delivery_failed").await.len(), 2);
    // Never a secret in what is recorded.
    let recorded = format!(
        "{:?}{:?}",
        deliveries(&t.s, &t.id).await,
        t.s.get("/api/v1/notifications?pageSize=100", &t.s.a.portal)
            .await
            .1
    );
    assert!(!recorded.contains(TOKEN) && !recorded.contains(APP_SECRET));
    t.assert_no_problems();
}

#[tokio::test]
async fn a_retry_resumes_after_the_accepted_part_and_order_holds() {
    let t = setup().await;
    let conversation = t.open_conversation(CUSTOMER).await;
    t.fake.script([Mode::Success, Mode::ServerError]);
    agent_sends(&t.s, &conversation, &t.agent, text(&"long ".repeat(1000))).await;
    agent_sends(&t.s, &conversation, &t.agent, text("after")).await;
    let list = deliveries_when(&t.s, &t.id, 2, settled).await;
    assert_eq!(list[0]["status"], "succeeded", "{list:#?}");
    assert_eq!(list[0]["attemptCount"], 2);
    assert_eq!(list[0]["providerMessageIds"].as_array().unwrap().len(), 2);
    let bodies: Vec<String> = t
        .fake
        .messages()
        .iter()
        .map(|b| b["text"]["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bodies.len(), 4, "{bodies:?}");
    // Part 1, part 2 refused, part 2 again, then the next activity.
    assert_ne!(bodies[0], bodies[1]);
    assert_eq!(bodies[1], bodies[2]);
    assert_eq!(bodies[3], "after");
    t.assert_no_problems();
}

// ---------------------------------------------------------------------------------------------
// The 24-hour window, templates and business-scoped ids

#[tokio::test]
async fn the_window_closes_24_hours_after_the_customer_s_last_message() {
    const HOUR: i64 = 3_600_000;
    let t = setup().await;
    let conversation = t.open_conversation(CUSTOMER).await;
    // 23 h 59 min after the customer's message: free-form text.
    age_conversation(&t.s, &conversation, 24 * HOUR - 60_000).await;
    agent_sends(&t.s, &conversation, &t.agent, text("just in time")).await;
    let list = deliveries_when(&t.s, &t.id, 1, settled).await;
    assert_eq!(list[0]["status"], "succeeded", "{list:#?}");
    assert_eq!(t.fake.messages()[0]["type"], "text");

    // 24 h + 1 s (the agent's own messages do not count): no call, failed with 131047.
    age_conversation(&t.s, &conversation, 60_000 + 1_000).await;
    agent_sends(&t.s, &conversation, &t.agent, text("too late")).await;
    let list = deliveries_when(&t.s, &t.id, 2, settled).await;
    assert_eq!(list[1]["status"], "failed", "{list:#?}");
    assert_eq!(
        list[1]["lastError"],
        "outside WhatsApp's 24-hour customer service window (131047)"
    );
    assert_eq!(
        list[1]["attempts"][0]["statusCode"],
        Value::Null,
        "{list:#?}"
    );
    assert_eq!(t.fake.messages().len(), 1, "no call");
    let notes = notifications(&t.s, "delivery_failed").await;
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(notes[0]["description"].as_str().unwrap().contains("131047"));
    // Events go regardless of the window: a seen marks the old message read.
    agent_sends(
        &t.s,
        &conversation,
        &t.agent,
        json!({ "type": "event", "event": { "type": "seen" } }),
    )
    .await;
    let read = t.fake.wait_for("/messages", 2).await;
    assert_eq!(read[1].json()["status"], "read");

    // With templateName: the same message goes out as the template (default language en_US),
    // its one body parameter the flattened text.
    let (status, body) =
        t.s.put(
            &format!("/api/v1/integrations/{}", t.id),
            &t.s.a.portal,
            json!({ "configuration": configuration(json!({ "templateName": "reopen" })) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let n = deliveries(&t.s, &t.id).await.len();
    agent_sends(&t.s, &conversation, &t.agent, text("Line one\nline two")).await;
    let list = deliveries_when(&t.s, &t.id, n + 1, settled).await;
    assert_eq!(list[n]["status"], "succeeded", "{list:#?}");
    let sent = t.fake.messages().pop().unwrap();
    assert_eq!(
        sent["template"],
        json!({ "name": "reopen", "language": { "code": "en_US" }, "components": [
            { "type": "body", "parameters": [ { "type": "text", "text": "Line one line two" } ] } ] })
    );
    // The customer writes again: the window is open, free-form text again.
    t.says(CUSTOMER, "wamid.back", "I'm back").await;
    agent_sends(&t.s, &conversation, &t.agent, text("welcome back")).await;
    let list = deliveries_when(&t.s, &t.id, n + 2, settled).await;
    assert_eq!(list[n + 1]["status"], "succeeded", "{list:#?}");
    let sent = t.fake.messages().pop().unwrap();
    assert_eq!(sent["text"]["body"], "welcome back");
    t.assert_no_problems();
}

#[tokio::test]
async fn outside_the_window_a_message_fails_without_a_call_or_goes_as_the_template() {
    let t = setup().await;
    // Established through the API: the customer never wrote, the window is closed.
    let conversation = t.conversation(CUSTOMER).await;
    agent_sends(&t.s, &conversation, &t.agent, text("are you there?")).await;
    // Events go regardless of the window; a seen with no customer message makes no call.
    agent_sends(
        &t.s,
        &conversation,
        &t.agent,
        json!({ "type": "event", "event": { "type": "seen" } }),
    )
    .await;
    let list = deliveries_when(&t.s, &t.id, 1, settled).await;
    let d = list
        .iter()
        .find(|d| d["status"] == "failed")
        .expect("a failed delivery");
    let reason = d["lastError"].as_str().unwrap();
    assert!(
        reason.contains("131047") && reason.contains("24-hour"),
        "{reason}"
    );
    assert!(t.fake.to("/messages").is_empty(), "no call");
    let notes = notifications(&t.s, "delivery_failed").await;
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(notes[0]["description"].as_str().unwrap().contains("131047"));

    // The customer's read receipt is an event (a seen activity): it does not open the window.
    let (status, _) = t
        .post(&status_of("wamid.earlier", "read", CUSTOMER, None))
        .await;
    assert_eq!(status, StatusCode::OK);
    let got = customer_activities(&t.s, &conversation, &t.agent).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["event"]["type"], "seen");
    let n = deliveries(&t.s, &t.id).await.len();
    agent_sends(&t.s, &conversation, &t.agent, text("still there?")).await;
    let list = deliveries_when(&t.s, &t.id, n + 1, settled).await;
    assert_eq!(list[n]["status"], "failed", "{list:#?}");
    assert!(t.fake.to("/messages").is_empty(), "no call");

    // An update Meta refuses keeps the old configuration.
    let (status, body) =
        t.s.put(
            &format!("/api/v1/integrations/{}", t.id),
            &t.s.a.portal,
            json!({ "configuration": configuration(json!({ "accessToken": "EAAexpired",
                                                              "templateName": "follow_up" })) }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], 206, "{body}");
    let (_, i) =
        t.s.get(&format!("/api/v1/integrations/{}", t.id), &t.s.a.portal)
            .await;
    assert_eq!(i["configuration"]["templateName"], Value::Null, "{i}");

    // With templateName (an update, which verifies and registers again): the template, whose
    // one body parameter is the flattened text fallback.
    let before_handshakes = t.fake.handshakes().len();
    let (status, body) =
        t.s.put(
            &format!("/api/v1/integrations/{}", t.id),
            &t.s.a.portal,
            json!({ "configuration": configuration(json!({ "templateName": "follow_up",
                                                              "templateLanguage": "de" })) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["configuration"]["templateName"], "follow_up");
    assert_eq!(
        body["configuration"]["webhookSecret"],
        t.secret.as_str(),
        "the verify token is kept"
    );
    assert_eq!(t.fake.handshakes().len(), before_handshakes + 1);
    assert!(t.fake.handshakes().last().unwrap().echoed());
    let n = deliveries(&t.s, &t.id).await.len();
    agent_sends(
        &t.s,
        &conversation,
        &t.agent,
        with_actions(
            "Your order\n\tshipped.   Track it:",
            json!([ { "type": "link", "title": "Track", "url": "https://example.com/t" } ]),
        ),
    )
    .await;
    let list = deliveries_when(&t.s, &t.id, n + 1, settled).await;
    assert_eq!(
        list[n]["status"],
        "succeeded",
        "{list:#?}; {:?}",
        t.fake.problems()
    );
    let m = t.fake.messages();
    assert_eq!(m.len(), 1, "{m:#?}");
    assert_eq!(m[0]["to"], CUSTOMER);
    assert_eq!(m[0]["type"], "template");
    assert_eq!(
        m[0]["template"],
        json!({ "name": "follow_up", "language": { "code": "de" }, "components": [
            { "type": "body", "parameters": [ { "type": "text",
              "text": "Your order shipped. Track it: Track: https://example.com/t" } ] } ] })
    );

    // A business-scoped user id, established through the API: the template goes in `recipient`.
    let scoped = t.conversation("CC.abc123").await;
    let n = deliveries(&t.s, &t.id).await.len();
    agent_sends(&t.s, &scoped, &t.agent, text("hello")).await;
    let list = deliveries_when(&t.s, &t.id, n + 1, settled).await;
    assert_eq!(
        list[n]["status"],
        "succeeded",
        "{list:#?}; {:?}",
        t.fake.problems()
    );
    let m = t.fake.messages();
    let last = m.last().unwrap();
    assert_eq!(last["recipient"], "CC.abc123", "{last:#}");
    assert!(last.get("to").is_none(), "{last:#}");
    assert_eq!(last["type"], "template");

    // A phone number written with its plus (established through the API by the tenant) is
    // not a business-scoped id: it goes in `to`.
    let plus = t.conversation("+4915112345678").await;
    let n = deliveries(&t.s, &t.id).await.len();
    agent_sends(&t.s, &plus, &t.agent, text("hallo")).await;
    let list = deliveries_when(&t.s, &t.id, n + 1, settled).await;
    let m = t.fake.messages();
    let last = m.last().unwrap();
    assert_eq!(last["to"], "+4915112345678", "{last:#}; {list:#?}");
    assert!(last.get("recipient").is_none(), "{last:#}");

    // A long text is cut to 1024 characters ending in an ellipsis.
    let n = deliveries(&t.s, &t.id).await.len();
    agent_sends(&t.s, &conversation, &t.agent, text(&"abc ".repeat(400))).await;
    let list = deliveries_when(&t.s, &t.id, n + 1, settled).await;
    assert_eq!(list[n]["status"], "succeeded", "{list:#?}");
    let m = t.fake.messages();
    let param = m.last().unwrap()["template"]["components"][0]["parameters"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(param.chars().count(), 1024, "{param}");
    assert!(
        param.ends_with('…') && param.starts_with("abc abc"),
        "{param}"
    );
    t.assert_no_problems();
}

#[tokio::test]
async fn a_customer_without_a_phone_number_is_answered_by_recipient() {
    let t = setup().await;
    // A user behind a username: contacts[].user_id, no wa_id, no from.
    let body = change_of(
        PHONE_ID,
        json!({ "contacts": [ { "profile": { "name": "Hidden" }, "user_id": "CC.xyz789" } ],
                "messages": [ { "id": "wamid.u1", "timestamp": "1700000000", "type": "text",
                                "text": { "body": "from a username" } } ] }),
    );
    let (status, answer) = t.post(&body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let conversation = t.conversation("CC.xyz789").await;
    let got = customer_activities(&t.s, &conversation, &t.agent).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["message"]["text"], "from a username");
    let (_, c) =
        t.s.get(
            &format!("/api/v1/conversations/{conversation}"),
            &t.s.a.engine,
        )
        .await;
    assert_eq!(c["properties"]["profile"]["full name"], "Hidden", "{c}");
    assert!(
        c["properties"]["channel"]
            .get("phone")
            .is_none_or(Value::is_null),
        "{c}"
    );
    // Inside the window: a free-form text, sent to `recipient`.
    agent_sends(&t.s, &conversation, &t.agent, text("hi there")).await;
    let list = deliveries_when(&t.s, &t.id, 1, settled).await;
    assert_eq!(
        list[0]["status"],
        "succeeded",
        "{list:#?}; {:?}",
        t.fake.problems()
    );
    let m = t.fake.messages();
    assert_eq!(m[0]["recipient"], "CC.xyz789");
    assert_eq!(m[0]["type"], "text");
    assert!(m[0].get("to").is_none());
    t.assert_no_problems();
}

#[tokio::test]
async fn the_adapter_works_on_postgres() {
    if postgres_url().is_none() {
        skipped(
            "channels_whatsapp::the_adapter_works_on_postgres",
            "PostgreSQL",
            POSTGRES_HOW,
        );
        return;
    }
    let t = setup_on(Backend::Postgres).await;
    assert!(t.fake.handshakes()[0].echoed());
    t.says(CUSTOMER, "wamid.pg1", "pg").await;
    t.says(CUSTOMER, "wamid.pg1", "pg").await;
    let conversation = t.conversation(CUSTOMER).await;
    assert_eq!(
        customer_activities(&t.s, &conversation, &t.agent)
            .await
            .len(),
        1
    );
    agent_sends(&t.s, &conversation, &t.agent, text("reply")).await;
    let list = deliveries_when(&t.s, &t.id, 1, settled).await;
    assert_eq!(list[0]["status"], "succeeded", "{list:#?}");
    let wamid = list[0]["providerMessageIds"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = status_of(
        &wamid,
        "failed",
        CUSTOMER,
        Some(json!([ { "code": 131026, "title": "Message undeliverable" } ])),
    );
    t.post(&failed).await;
    t.post(&failed).await;
    assert_eq!(notifications(&t.s, "delivery_failed").await.len(), 1);
    // 24 h + 1 s after the customer's message: outside the window, no call.
    age_conversation(&t.s, &conversation, 24 * 3_600_000 + 1_000).await;
    agent_sends(&t.s, &conversation, &t.agent, text("cold")).await;
    let list = deliveries_when(&t.s, &t.id, 2, settled).await;
    assert_eq!(list[1]["status"], "failed", "{list:#?}");
    assert!(list[1]["lastError"].as_str().unwrap().contains("131047"));
    assert_eq!(t.fake.to("/messages").len(), 1);
}
