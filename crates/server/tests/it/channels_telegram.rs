//! The Telegram adapter end to end (SPEC 7.9, 7.21) against the fake Bot API: provisioning
//! (live, refused, unreachable, offline), inbound updates (secret token, text, photo as a media
//! link, unsupported kinds, duplicates, ignored chats, callback queries), outbound renders and
//! their parts, retries with Telegram's `retry_after`, permanent and credential failures, media
//! links, order, and resuming after an accepted part.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::channels::*;
use crate::fakes::{telegram, Fake, Mode};
use crate::support::*;

const TOKEN: &str = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

struct Tg {
    s: TestServer,
    fake: Fake,
    hub: String,
    agent: String,
    /// The Telegram integration.
    id: String,
    secret: String,
}

async fn setup_on(backend: Backend) -> Tg {
    let fake = telegram::start(TOKEN).await;
    let url = fake.url.clone();
    let s = server(backend, "0s,100ms,100ms,100ms", move |a| {
        a.provider_telegram_url = url;
    })
    .await;
    let (hub, agent) = hub_with_agent(&s).await;
    let (status, body) = create(&s, &hub, "Telegram", json!({ "token": TOKEN })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Tg {
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

async fn setup() -> Tg {
    setup_on(Backend::Sqlite).await
}

impl Tg {
    async fn update(&self, update: Value) -> (StatusCode, String) {
        self.update_with(&self.secret.clone(), update).await
    }

    async fn update_with(&self, secret: &str, update: Value) -> (StatusCode, String) {
        provider_post(
            &self.s,
            &format!("/channels/telegram/{}", self.id),
            "application/json",
            &[("x-telegram-bot-api-secret-token", secret)],
            update.to_string().into_bytes(),
        )
        .await
    }

    async fn conversation(&self, chat: i64) -> String {
        conversation_of(&self.s, &self.id, &chat.to_string()).await
    }
}

fn message(chat: i64, id: i64, extra: Value) -> Value {
    let mut m = json!({
        "message_id": id,
        "date": 1_700_000_000,
        "chat": { "id": chat, "type": "private", "first_name": "Ada" },
        "from": { "id": chat, "is_bot": false, "first_name": "Ada", "last_name": "Lovelace",
                  "username": "ada", "language_code": "en" },
    });
    m.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({ "update_id": id + 1000, "message": m })
}

#[tokio::test]
async fn create_live_learns_the_username_and_sets_the_webhook_with_its_secret() {
    let t = setup().await;
    let (status, body) =
        t.s.get(&format!("/api/v1/integrations/{}", t.id), &t.s.a.portal)
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["configuration"]["username"], "sb_test_bot");
    assert_eq!(t.secret.len(), 32);
    assert!(t
        .secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    assert_eq!(t.fake.to("/getMe").len(), 1);
    let set = t.fake.to("/setWebhook");
    assert_eq!(set.len(), 1);
    let sent = set[0].json();
    assert_eq!(sent["secret_token"], t.secret.as_str());
    assert_eq!(
        sent["url"],
        format!("{}/channels/telegram/{}", t.s.base, t.id)
    );
    assert_eq!(
        sent["allowed_updates"],
        json!(["message", "callback_query"])
    );
    assert!(t.fake.problems().is_empty(), "{:?}", t.fake.problems());

    // Delete deregisters, best effort.
    let (status, _) =
        t.s.delete(&format!("/api/v1/integrations/{}", t.id), &t.s.a.portal)
            .await;
    assert_eq!(status, StatusCode::OK);
    t.fake.wait_for("/deleteWebhook", 1).await;
    // Telegram's later calls find nothing: 404/6000.
    let (status, body) = t.update(message(7, 1, json!({ "text": "late" }))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(code(&body), 6000);
}

#[tokio::test]
async fn create_refused_or_unreachable_stores_nothing() {
    let t = setup().await;
    let before = integrations(&t.s, &t.hub).await.len();
    // Telegram answers 401 to another token: refused, 400/206 with its reason.
    let (status, body) = create(&t.s, &t.hub, "Telegram", json!({ "token": "1:wrong" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], 206, "{body}");
    let description = body["errors"][0]["description"].as_str().unwrap();
    assert!(
        description.starts_with("Telegram refused the configuration: Unauthorized"),
        "{description}"
    );
    // setWebhook refused by Telegram (as for a URL on a port it does not allow).
    t.fake.script([
        Mode::Success,
        Mode::Refuse(
            400,
            json!({ "ok": false, "error_code": 400,
                    "description": "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443" }),
        ),
    ]);
    let (status, body) = create(&t.s, &t.hub, "Telegram", json!({ "token": TOKEN })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["errors"][0]["description"]
        .as_str()
        .unwrap()
        .contains("Webhook can be set up only on ports"));
    // 5xx: unreachable, 503/100.
    t.fake.script([Mode::ServerError]);
    let (status, body) = create(&t.s, &t.hub, "Telegram", json!({ "token": TOKEN })).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["errors"][0]["code"], 100, "{body}");
    assert!(body["errors"][0]["description"]
        .as_str()
        .unwrap()
        .starts_with("Telegram is unreachable"));
    assert_eq!(integrations(&t.s, &t.hub).await.len(), before);
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let s = server(Backend::Sqlite, "0s", move |a| {
        a.provider_telegram_url = url
    })
    .await;
    let (hub, _) = hub_with_agent(&s).await;
    let (status, body) = create(&s, &hub, "Telegram", json!({ "token": TOKEN })).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["errors"][0]["code"], 100);
    assert_eq!(integrations(&s, &hub).await.len(), 1, "only the agent");
}

#[tokio::test]
async fn offline_makes_no_call_takes_read_only_keys_as_given_and_holds_deliveries() {
    let fake = telegram::start(TOKEN).await;
    let url = fake.url.clone();
    let s = server(Backend::Sqlite, "0s", move |a| {
        a.provider_telegram_url = url;
        a.providers = switchboard::config::ProvidersMode::Offline;
    })
    .await;
    let (hub, agent) = hub_with_agent(&s).await;
    let (status, body) = create(
        &s,
        &hub,
        "Telegram",
        json!({ "token": TOKEN, "username": "given_bot" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["configuration"]["username"], "given_bot");
    let id = body["integrationId"].as_str().unwrap().to_owned();
    let conversation = conversation_of(&s, &id, "42").await;
    let (status, body) = agent_sends(&s, &conversation, &agent, text("held")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let list = deliveries(&s, &id).await;
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["status"], "pending");
    assert_eq!(list[0]["nextAttemptAt"], Value::Null);
    assert_eq!(list[0]["lastError"], "providers offline");
    assert_eq!(list[0]["channel"], "Telegram");
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[tokio::test]
async fn inbound_needs_the_secret_token() {
    let t = setup().await;
    for secret in [None, Some("wrong"), Some("")] {
        let mut req =
            t.s.http
                .post(t.s.url(&format!("/channels/telegram/{}", t.id)))
                .header("content-type", "application/json")
                .body(message(5, 1, json!({ "text": "hi" })).to_string());
        if let Some(sec) = secret {
            req = req.header("x-telegram-bot-api-secret-token", sec);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let body = resp.text().await.unwrap();
        assert_eq!(code(&body), 102, "{body}");
        assert!(body.contains("ENG000102"), "{body}");
    }
    // Nothing was stored: the chat has no conversation yet (a new one is opened now).
    let conversation = t.conversation(5).await;
    assert!(customer_activities(&t.s, &conversation, &t.agent)
        .await
        .is_empty());
    // Bad ids: 400/203; unknown: 404/6000.
    let (status, body) = provider_post(
        &t.s,
        "/channels/telegram/nope",
        "application/json",
        &[],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, 203),
        "{body}"
    );
    let unknown = uuid::Uuid::new_v4();
    let (status, body) = provider_post(
        &t.s,
        &format!("/channels/telegram/{unknown}"),
        "application/json",
        &[],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, 6000),
        "{body}"
    );
    // The route of another channel: 404/6000 as well.
    let (status, body) = provider_post(
        &t.s,
        &format!("/channels/twilio/{}", t.id),
        "application/x-www-form-urlencoded",
        &[],
        b"a=b".to_vec(),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, 6000),
        "{body}"
    );
    // Valid secret, unparseable body: 400/300.
    let (status, body) = provider_post(
        &t.s,
        &format!("/channels/telegram/{}", t.id),
        "application/json",
        &[("x-telegram-bot-api-secret-token", &t.secret)],
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, 300),
        "{body}"
    );
    // Over 1 MiB: 413/304.
    let (status, body) = provider_post(
        &t.s,
        &format!("/channels/telegram/{}", t.id),
        "application/json",
        &[("x-telegram-bot-api-secret-token", &t.secret)],
        vec![b' '; 1024 * 1024 + 1],
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, 304),
        "{body}"
    );
}

#[tokio::test]
async fn inbound_messages_become_activities_once() {
    let t = setup().await;
    let (status, body) = t
        .update(message(77, 1, json!({ "text": "hello there" })))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.is_empty(), "{body}");
    // The same update again (Telegram retries): nothing new.
    let (status, _) = t
        .update(message(77, 1, json!({ "text": "hello there" })))
        .await;
    assert_eq!(status, StatusCode::OK);
    // A photo with a caption: one image activity whose URL is a media link.
    let photo = json!({ "caption": "look", "photo": [
        { "file_id": "small", "file_unique_id": "s", "width": 90, "height": 90 },
        { "file_id": "large", "file_unique_id": "l", "width": 800, "height": 800 } ] });
    assert_eq!(t.update(message(77, 2, photo)).await.0, StatusCode::OK);
    // An unsupported kind.
    let poll = json!({ "poll": { "id": "1", "question": "?", "options": [] } });
    assert_eq!(t.update(message(77, 3, poll)).await.0, StatusCode::OK);
    // Ignored: a group chat, an edited message, a bot.
    let mut group = message(77, 4, json!({ "text": "group" }));
    group["message"]["chat"]["type"] = json!("group");
    assert_eq!(t.update(group).await.0, StatusCode::OK);
    let edited = json!({ "update_id": 9, "edited_message": message(77, 1, json!({ "text": "edited" }))["message"] });
    assert_eq!(t.update(edited).await.0, StatusCode::OK);

    let conversation = t.conversation(77).await;
    let got = customer_activities(&t.s, &conversation, &t.agent).await;
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(got[0]["message"]["text"], "hello there");
    assert_eq!(got[0]["externalId"], "77:1");
    assert_eq!(got[0]["sender"]["channelType"], "Telegram");
    assert_eq!(got[1]["message"]["type"], "image");
    assert_eq!(got[1]["message"]["caption"], "look");
    let link = got[1]["message"]["url"].as_str().unwrap().to_owned();
    assert!(
        link.starts_with(&format!("{}/channels/media/{}/", t.s.base, t.id)),
        "{link}"
    );
    assert_eq!(got[2]["message"]["text"], "[poll not supported]");
    // The conversation got the sender's profile.
    let (_, c) =
        t.s.get(
            &format!("/api/v1/conversations/{conversation}"),
            &t.s.a.engine,
        )
        .await;
    assert_eq!(
        c["properties"]["profile"]["full name"], "Ada Lovelace",
        "{c}"
    );
    assert_eq!(c["properties"]["channel"]["username"], "ada", "{c}");

    // The media link fetches the largest photo through getFile.
    let resp = t.s.http.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.headers()["content-disposition"], "inline");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), telegram::FILE_BYTES);
    assert_eq!(t.fake.to("/getFile")[0].json()["file_id"], "large");
    // A changed signature finds nothing.
    let bad = format!(
        "{}x",
        link.trim_end_matches(|c| c != '=').trim_end_matches('=')
    );
    let resp = t.s.http.get(&bad).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_callback_query_is_a_postback_and_is_answered_after() {
    let t = setup().await;
    let update = json!({ "update_id": 50, "callback_query": {
        "id": "cbq-1", "data": "BUY_RED",
        "from": { "id": 88, "is_bot": false, "first_name": "Bo" },
        "message": { "message_id": 9, "date": 1, "chat": { "id": 88, "type": "private" } } } });
    assert_eq!(t.update(update).await.0, StatusCode::OK);
    let answered = t.fake.wait_for("/answerCallbackQuery", 1).await;
    assert_eq!(answered[0].json()["callback_query_id"], "cbq-1");
    let conversation = t.conversation(88).await;
    let got = customer_activities(&t.s, &conversation, &t.agent).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["event"]["type"], "payload");
    assert_eq!(got[0]["event"]["payloadType"], "postback");
    assert_eq!(got[0]["event"]["payload"], "BUY_RED");
}

#[tokio::test]
async fn agent_replies_are_sent_and_recorded_with_telegram_ids() {
    let t = setup().await;
    let conversation = t.conversation(901).await;
    // Text with buttons, a card (photo + caption + keyboard), a contact (text fallback), a
    // text longer than one part.
    let sends = [
        json!({ "type": "message", "message": { "type": "text", "text": "Pick one",
            "actions": [ { "type": "link", "title": "Site", "url": "https://example.com" },
                         { "type": "postback", "title": "Red", "payload": "RED" } ] } }),
        json!({ "type": "message", "message": { "type": "card", "title": "Shoe",
            "description": "A red shoe", "mediaUrl": "https://example.com/shoe.png" } }),
        json!({ "type": "message", "message": { "type": "location", "latitude": 48.85, "longitude": 2.35 } }),
        json!({ "type": "message", "message": { "type": "contact", "name": "Ada", "phone": "+15551234" } }),
        text(&"word ".repeat(1000)),
    ];
    for body in sends {
        let (status, b) = agent_sends(&t.s, &conversation, &t.agent, body).await;
        assert_eq!(status, StatusCode::OK, "{b}");
    }
    let list = deliveries_when(&t.s, &t.id, 5, settled).await;
    assert!(list.iter().all(|d| d["status"] == "succeeded"), "{list:#?}");
    assert!(list.iter().all(|d| d["channel"] == "Telegram"));
    // The long text went in two parts, each id recorded.
    assert_eq!(
        list[4]["providerMessageIds"].as_array().unwrap().len(),
        2,
        "{list:#?}"
    );
    assert_eq!(list[0]["providerMessageIds"].as_array().unwrap().len(), 1);
    let sent = t.fake.requests();
    let methods: Vec<&str> = sent
        .iter()
        .map(|r| r.path.rsplit('/').next().unwrap())
        .filter(|m| m.starts_with("send"))
        .collect();
    assert_eq!(
        methods,
        [
            "sendMessage",
            "sendPhoto",
            "sendLocation",
            "sendMessage",
            "sendMessage",
            "sendMessage"
        ]
    );
    let first = sent
        .iter()
        .find(|r| r.path.ends_with("/sendMessage"))
        .unwrap()
        .json();
    assert_eq!(first["chat_id"], 901);
    let keyboard = &first["reply_markup"]["inline_keyboard"];
    assert!(
        keyboard.to_string().contains("https://example.com"),
        "{first}"
    );
    assert!(
        keyboard.to_string().contains("\"callback_data\":\"RED\""),
        "{first}"
    );
    assert!(t.fake.problems().is_empty(), "{:?}", t.fake.problems());
    // A typing indicator is one sendChatAction.
    let (status, _) = agent_sends(
        &t.s,
        &conversation,
        &t.agent,
        json!({ "type": "event", "event": { "type": "typing_on" } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let typing = t.fake.wait_for("/sendChatAction", 1).await;
    assert_eq!(typing[0].json()["action"], "typing");
    // Other events make no delivery.
    let (status, _) = agent_sends(&t.s, &conversation, &t.agent, json!({ "type": "event", "event": { "type": "payload", "payloadType": "x", "payload": 1 } })).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(deliveries(&t.s, &t.id).await.len(), 6);
}

#[tokio::test]
async fn a_5xx_is_retried_and_429_waits_for_retry_after() {
    let t = setup().await;
    let conversation = t.conversation(333).await;
    t.fake.script([Mode::ServerError]);
    agent_sends(&t.s, &conversation, &t.agent, text("one")).await;
    let list = deliveries_when(&t.s, &t.id, 1, settled).await;
    assert_eq!(list[0]["status"], "succeeded", "{list:#?}");
    assert_eq!(list[0]["attemptCount"], 2);
    assert_eq!(list[0]["attempts"][0]["statusCode"], 500);
    assert!(list[0]["attempts"][0]["error"]
        .as_str()
        .unwrap()
        .starts_with("Telegram 500: "));
    assert_eq!(list[0]["providerMessageIds"].as_array().unwrap().len(), 1);

    // 429 with retry_after 2: the next attempt waits at least 2 s (the schedule says 100 ms).
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
    let next = millis(d["nextAttemptAt"].as_str().unwrap());
    let last = millis(d["attempts"][0]["at"].as_str().unwrap());
    assert!(next - last >= 2000, "waited {} ms: {d:#}", next - last);
    let list = deliveries_when(&t.s, &t.id, 2, settled).await;
    assert_eq!(list[1]["status"], "succeeded");
}

#[tokio::test]
async fn refusals_fail_at_once_with_their_notification() {
    let t = setup().await;
    let conversation = t.conversation(444).await;
    t.fake.script([Mode::Refuse(
        403,
        json!({ "ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user" }),
    )]);
    agent_sends(&t.s, &conversation, &t.agent, text("blocked")).await;
    let list = deliveries_when(&t.s, &t.id, 1, settled).await;
    assert_eq!(list[0]["status"], "failed");
    assert_eq!(list[0]["attemptCount"], 1);
    assert_eq!(
        list[0]["lastError"],
        "Telegram 403: Forbidden: bot was blocked by the user"
    );
    let failed = notifications(&t.s, "delivery_failed").await;
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(failed[0]["description"]
        .as_str()
        .unwrap()
        .contains("bot was blocked"));

    t.fake.script([Mode::Refuse(
        401,
        json!({ "ok": false, "error_code": 401, "description": "Unauthorized" }),
    )]);
    agent_sends(&t.s, &conversation, &t.agent, text("token revoked")).await;
    let list = deliveries_when(&t.s, &t.id, 2, settled).await;
    assert_eq!(list[1]["status"], "failed");
    assert_eq!(notifications(&t.s, "provider_auth_failed").await.len(), 1);
    // The integration is not paused.
    let (_, i) =
        t.s.get(&format!("/api/v1/integrations/{}", t.id), &t.s.a.portal)
            .await;
    assert_eq!(i["statusId"], 3000, "{i}");
}

#[tokio::test]
async fn a_retry_resumes_after_the_accepted_part_and_order_holds() {
    let t = setup().await;
    let conversation = t.conversation(555).await;
    // Two parts: the first accepted, the second refused with 500, then accepted.
    t.fake.script([Mode::Success, Mode::ServerError]);
    agent_sends(&t.s, &conversation, &t.agent, text(&"long ".repeat(1000))).await;
    agent_sends(&t.s, &conversation, &t.agent, text("after")).await;
    let list = deliveries_when(&t.s, &t.id, 2, settled).await;
    assert_eq!(list[0]["status"], "succeeded", "{list:#?}");
    assert_eq!(list[0]["attemptCount"], 2);
    assert_eq!(list[0]["providerMessageIds"].as_array().unwrap().len(), 2);
    let texts: Vec<String> = t
        .fake
        .to("/sendMessage")
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().chars().take(5).collect())
        .collect();
    // Part 1, part 2 refused, part 2 again, then the next activity: part 1 was sent once.
    assert_eq!(texts, ["long ", "long ", "long ", "after"], "{texts:?}");
    let firsts = t.fake.to("/sendMessage");
    assert_ne!(firsts[0].json()["text"], firsts[1].json()["text"]);
    assert_eq!(firsts[1].json()["text"], firsts[2].json()["text"]);

    // The retry route replays a provider delivery with its parts all accepted: nothing is sent
    // again but it succeeds.
    let id = list[1]["deliveryId"].as_str().unwrap();
    let (status, body) =
        t.s.post(
            &format!("/api/v1/deliveries/{id}/retry"),
            &t.s.a.portal,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_adapter_works_on_postgres() {
    if postgres_url().is_none() {
        skipped(
            "channels_telegram::the_adapter_works_on_postgres",
            "PostgreSQL",
            POSTGRES_HOW,
        );
        return;
    }
    let t = setup_on(Backend::Postgres).await;
    assert_eq!(
        t.update(message(12, 1, json!({ "text": "pg" }))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        t.update(message(12, 1, json!({ "text": "pg" }))).await.0,
        StatusCode::OK
    );
    let conversation = t.conversation(12).await;
    assert_eq!(
        customer_activities(&t.s, &conversation, &t.agent)
            .await
            .len(),
        1
    );
    agent_sends(&t.s, &conversation, &t.agent, text("reply")).await;
    let list = deliveries_when(&t.s, &t.id, 1, settled).await;
    assert_eq!(list[0]["status"], "succeeded", "{list:#?}");
}

/// SPEC 7.21: a crash between two parts of one delivery. The real binary sends part 1 (accepted)
/// and is killed (SIGKILL) while Telegram holds part 2; the restarted process sends part 2 only.
#[tokio::test]
async fn a_crash_between_parts_resumes_after_the_accepted_part() {
    use crate::node::Node;
    use crate::webhook_crash::{post, token};

    let fake = telegram::start(TOKEN).await;
    // getMe and setWebhook, part 1, then part 2 held far longer than the test waits.
    fake.script([
        Mode::Success,
        Mode::Success,
        Mode::Success,
        Mode::Slow(Duration::from_secs(120)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SWITCHBOARD_PROVIDER_TELEGRAM_URL", fake.url.as_str()),
        ("SWITCHBOARD_PROVIDERS_LOOPBACK_ONLY", "true"),
        ("SWITCHBOARD_RETRY_SCHEDULE", "0s,100ms,100ms"),
        ("SWITCHBOARD_WEBHOOK_TIMEOUT", "60s"),
    ];
    let mut node = Node::spawn("before the crash", dir.path(), &env);
    let creds = node.credentials().await;
    node.wait_ready().await;
    let http = reqwest::Client::new();
    let base = node.base.clone();
    let portal = token(&http, &base, &creds["portal"]).await;
    let engine = token(&http, &base, &creds["engine"]).await;
    let (_, hub) = post(
        &http,
        format!("{base}/api/v1/hubs"),
        &portal,
        json!({ "name": "crash", "description": "d" }),
    )
    .await;
    let hub = hub["hubId"].as_str().unwrap().to_owned();
    let integrations = format!("{base}/api/v1/integrations/hubs/{hub}");
    let (_, agent) = post(&http, integrations.clone(), &portal, json!({ "channelId": "Direct", "name": "agent", "configuration": { "integrationType": "Agent" } })).await;
    let (status, tg) = post(
        &http,
        integrations,
        &portal,
        json!({ "channelId": "Telegram", "name": "tg", "configuration": { "token": TOKEN } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tg}");
    let tg = tg["integrationId"].as_str().unwrap().to_owned();
    let (_, c) = post(
        &http,
        format!("{base}/api/v1/conversations/establish"),
        &engine,
        json!({ "integrationId": tg, "binding": "4242" }),
    )
    .await;
    let conversation = c["conversationId"].as_str().unwrap().to_owned();
    let mut body = text(&"part ".repeat(1000));
    body["sender"] = json!({ "integrationId": agent["integrationId"] });
    let (status, b) = post(
        &http,
        format!("{base}/inbound/customer/v1/direct/activity/{conversation}"),
        &engine,
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");

    // Part 1 answered, part 2 on its way: crash.
    let sent = fake.wait_for("/sendMessage", 2).await;
    node.kill9();
    let (first, second) = (
        sent[0].json()["text"].clone(),
        sent[1].json()["text"].clone(),
    );
    assert_ne!(first, second);

    let mut node = Node::spawn("after the crash", dir.path(), &env);
    node.wait_ready().await;
    let base = node.base.clone();
    let portal = token(&http, &base, &creds["portal"]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let delivery = loop {
        let (_, list) = crate::support::read(
            http.get(format!("{base}/api/v1/deliveries?integrationId={tg}"))
                .bearer_auth(&portal)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let d = list["results"][0].clone();
        if d["status"] == "succeeded" {
            break d;
        }
        assert!(tokio::time::Instant::now() < deadline, "{list:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let texts: Vec<Value> = fake
        .to("/sendMessage")
        .iter()
        .map(|r| r.json()["text"].clone())
        .collect();
    assert_eq!(
        texts,
        [first, second.clone(), second],
        "part 1 went once, part 2 again"
    );
    assert_eq!(
        delivery["providerMessageIds"].as_array().unwrap().len(),
        2,
        "{delivery:#}"
    );
    assert!(fake.problems().is_empty(), "{:?}", fake.problems());
}

/// SPEC 7.3.2's special outcomes, answered 2xx so that Telegram neither retries nor drops the
/// webhook: a paused integration or hub stores nothing and says so once an hour; a hub without
/// an active handler stores nothing and names 5501.
#[tokio::test]
async fn paused_or_unhandled_messages_are_answered_ok_stored_nowhere_and_notified() {
    let t = setup().await;
    // Paused integration: two messages, one notification.
    let (status, body) =
        t.s.put(
            &format!("/api/v1/integrations/{}", t.id),
            &t.s.a.portal,
            json!({ "statusId": 3002 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for id in [1, 2] {
        let (status, body) = t
            .update(message(600, id, json!({ "text": "anyone?" })))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let dropped = notifications(&t.s, "inbound_dropped").await;
    assert_eq!(dropped.len(), 1, "{dropped:#?}");
    assert_eq!(dropped[0]["integrationId"], t.id.as_str());
    // Active again, but the hub's only handler is paused: 5501.
    t.s.put(
        &format!("/api/v1/integrations/{}", t.id),
        &t.s.a.portal,
        json!({ "statusId": 3000 }),
    )
    .await;
    let (status, body) =
        t.s.put(
            &format!("/api/v1/integrations/{}", t.agent),
            &t.s.a.portal,
            json!({ "statusId": 3002 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = t.update(message(600, 3, json!({ "text": "hello?" }))).await;
    assert_eq!(status, StatusCode::OK);
    let rejected = notifications(&t.s, "inbound_rejected").await;
    assert_eq!(rejected.len(), 1, "{rejected:#?}");
    assert!(rejected[0]["description"]
        .as_str()
        .unwrap()
        .contains("5501"));
    // Nothing was stored: the chat's conversation (opened now) has no customer message, and
    // once the agent is back, the messages still come in (the ids were not used up).
    t.s.put(
        &format!("/api/v1/integrations/{}", t.agent),
        &t.s.a.portal,
        json!({ "statusId": 3000 }),
    )
    .await;
    let (status, _) = t.update(message(600, 3, json!({ "text": "hello?" }))).await;
    assert_eq!(status, StatusCode::OK);
    let conversation = t.conversation(600).await;
    let got = customer_activities(&t.s, &conversation, &t.agent).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["externalId"], "600:3");
}

/// SPEC 7.3.2 step 2: a provider's calls are limited per integration (here 2 at once), with
/// 429 and `Retry-After` past it; another integration has its own bucket.
#[tokio::test]
async fn a_provider_s_calls_are_limited_per_integration() {
    let fake = telegram::start(TOKEN).await;
    let url = fake.url.clone();
    let s = server(Backend::Sqlite, "0s", move |a| {
        a.provider_telegram_url = url;
        a.rate_limit_channel = switchboard_domain::rate::Rate::parse("1/m:2").unwrap();
    })
    .await;
    let (hub, _) = hub_with_agent(&s).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, body) = create(&s, &hub, "Telegram", json!({ "token": TOKEN })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push((
            body["integrationId"].as_str().unwrap().to_owned(),
            body["configuration"]["webhookSecret"]
                .as_str()
                .unwrap()
                .to_owned(),
        ));
    }
    let post = |(id, secret): &(String, String), n: i64| {
        let body = message(70, n, json!({ "text": "hi" })).to_string();
        s.http
            .post(s.url(&format!("/channels/telegram/{id}")))
            .header("content-type", "application/json")
            .header("x-telegram-bot-api-secret-token", secret.clone())
            .body(body)
            .send()
    };
    for n in 1..=2 {
        assert_eq!(post(&ids[0], n).await.unwrap().status(), StatusCode::OK);
    }
    let refused = post(&ids[0], 3).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(code(&refused.text().await.unwrap()), 429);
    assert_eq!(post(&ids[1], 1).await.unwrap().status(), StatusCode::OK);
}

/// The case: the server is killed after it stored a provider's message but before
/// Telegram had the answer; Telegram sends the update again to the restarted server, which
/// stores nothing new (the message id was kept in the activity's transaction).
#[tokio::test]
async fn a_retried_update_after_a_crash_creates_one_activity() {
    use crate::node::Node;
    use crate::webhook_crash::{post, token};

    let fake = telegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SWITCHBOARD_PROVIDER_TELEGRAM_URL", fake.url.as_str()),
        ("SWITCHBOARD_PROVIDERS_LOOPBACK_ONLY", "true"),
    ];
    let mut node = Node::spawn("before the crash", dir.path(), &env);
    let creds = node.credentials().await;
    node.wait_ready().await;
    let http = reqwest::Client::new();
    let base = node.base.clone();
    let portal = token(&http, &base, &creds["portal"]).await;
    let (_, hub) = post(
        &http,
        format!("{base}/api/v1/hubs"),
        &portal,
        json!({ "name": "crash", "description": "d" }),
    )
    .await;
    let integrations = format!(
        "{base}/api/v1/integrations/hubs/{}",
        hub["hubId"].as_str().unwrap()
    );
    post(&http, integrations.clone(), &portal, json!({ "channelId": "Direct", "name": "agent", "configuration": { "integrationType": "Agent" } })).await;
    let (status, tg) = post(
        &http,
        integrations,
        &portal,
        json!({ "channelId": "Telegram", "name": "tg", "configuration": { "token": TOKEN } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tg}");
    let id = tg["integrationId"].as_str().unwrap().to_owned();
    let secret = tg["configuration"]["webhookSecret"]
        .as_str()
        .unwrap()
        .to_owned();
    let update = message(31, 7, json!({ "text": "are you open?" })).to_string();
    let send = |base: String| {
        http.post(format!("{base}/channels/telegram/{id}"))
            .header("content-type", "application/json")
            .header("x-telegram-bot-api-secret-token", secret.clone())
            .body(update.clone())
            .send()
    };
    // Stored (its answer is what the crash takes from Telegram), then killed.
    assert_eq!(send(base).await.unwrap().status(), StatusCode::OK);
    node.kill9();

    let mut node = Node::spawn("after the crash", dir.path(), &env);
    node.wait_ready().await;
    let base = node.base.clone();
    assert_eq!(send(base.clone()).await.unwrap().status(), StatusCode::OK);
    let engine = token(&http, &base, &creds["engine"]).await;
    let (_, c) = post(
        &http,
        format!("{base}/api/v1/conversations/establish"),
        &engine,
        json!({ "integrationId": id, "binding": "31" }),
    )
    .await;
    let (_, list) = crate::support::read(
        http.get(format!(
            "{base}/api/v1/interactions/activities/{}?type=Customer",
            c["conversationId"].as_str().unwrap()
        ))
        .bearer_auth(&engine)
        .send()
        .await
        .unwrap(),
    )
    .await;
    let messages: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "message" && a["sender"]["integrationType"] == "Customer")
        .collect();
    assert_eq!(messages.len(), 1, "{list:#}");
    assert_eq!(messages[0]["externalId"], "31:7");
}
