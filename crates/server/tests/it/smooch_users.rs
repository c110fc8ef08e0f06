//! SPEC 8.8 app users and 8.9 messages over raw HTTP, against a real server (SQLite, and
//! PostgreSQL when configured): create/get/update/409, messages of each type as `appUser` and
//! `appMaker`, getMessages paging past 100, an `appMaker` message to a Telegram customer held as
//! a provider delivery, typing activity, and the scopes' 403s.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use switchboard_domain::ids::{HubId, IntegrationId, TenantId};
use switchboard_storage::{EncryptionKey, Store};

use crate::channels::{create, deliveries_when};
use crate::support::*;

/// An HS256 compat token of `kid` signed with `secret` (SPEC 8.3).
fn jwt(kid: &str, secret: &str, payload: Value) -> String {
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let head = b64(&json!({ "alg": "HS256", "typ": "JWT", "kid": kid }));
    let body = b64(&payload);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{head}.{body}").as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{head}.{body}.{sig}")
}

/// A hub of tenant A with its app key: `(hub, app token, store, key id, secret)`.
struct App {
    hub: String,
    app: String,
    account: String,
    kid: String,
    secret: String,
    store: Store,
}

impl App {
    fn user_token(&self, user_id: &str) -> String {
        jwt(
            &self.kid,
            &self.secret,
            json!({ "scope": "appUser", "userId": user_id }),
        )
    }

    fn path(&self, rest: &str) -> String {
        format!("/v1.1/apps/{}/{rest}", self.hub)
    }
}

async fn app(s: &TestServer) -> App {
    let hub = s
        .hub(&s.a.portal, &format!("app-{}", uuid::Uuid::new_v4()))
        .await;
    let store = Store::connect(&s.database_url, EncryptionKey(s.key))
        .await
        .unwrap();
    let tenant: TenantId = s.a.id().parse().unwrap();
    let key = store
        .create_smooch_key(tenant, Some(hub.parse::<HubId>().unwrap()), "test")
        .await
        .unwrap();
    let account = store.create_smooch_key(tenant, None, "acct").await.unwrap();
    App {
        app: jwt(&key.key_id, &key.secret, json!({ "scope": "app" })),
        account: jwt(
            &account.key_id,
            &account.secret,
            json!({ "scope": "account" }),
        ),
        hub,
        kid: key.key_id,
        secret: key.secret,
        store,
    }
}

async fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    s.call_full(method, path, Some(token), body.as_ref()).await
}

async fn post(s: &TestServer, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let (st, _, b) = call(s, Method::POST, path, token, Some(body)).await;
    (st, b)
}

async fn get(s: &TestServer, path: &str, token: &str) -> (StatusCode, Value) {
    let (st, _, b) = call(s, Method::GET, path, token, None).await;
    (st, b)
}

async fn make_user(s: &TestServer, a: &App, user_id: &str) -> Value {
    let (st, body) = post(s, &a.path("appusers"), &a.app, json!({ "userId": user_id })).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    body["appUser"].clone()
}

#[tokio::test]
async fn app_users_are_created_read_updated_and_unique() {
    for backend in backends("app_users_are_created_read_updated_and_unique") {
        let s = TestServer::start_on(backend).await;
        let a = app(&s).await;
        let (st, headers, body) = call(
            &s,
            Method::POST,
            &a.path("appusers"),
            &a.app,
            Some(
                json!({ "userId": "u 1", "givenName": "Ada", "surname": "Lovelace",
                         "email": "ada@x.io", "signedUpAt": "2024-11-18T03:20:00.123Z",
                         "properties": { "tier": "gold", "n": 3 }, "credentialRequired": true }),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        assert_eq!(
            headers.get("warning").unwrap().to_str().unwrap(),
            "299 switchboard \"ignored: credentialRequired\""
        );
        let user = &body["appUser"];
        let id = user["_id"].as_str().unwrap().to_owned();
        assert_eq!(user["userId"], "u 1");
        assert_eq!(user["givenName"], "Ada");
        assert_eq!(user["signedUpAt"], "2024-11-18T03:20:00.123Z");
        assert_eq!(user["properties"], json!({ "tier": "gold", "n": 3 }));
        assert_eq!(user["conversationStarted"], false);
        assert_eq!(user["pendingClients"], json!([]));
        assert_eq!(user["clients"][0]["platform"], "api");
        assert_eq!(user["clients"][0]["externalId"], "u 1");
        assert_eq!(user["clients"][0]["id"], id.as_str());

        // By _id and by userId, with or without /apps/{appId}, on /v1 too.
        for path in [
            a.path(&format!("appusers/{id}")),
            a.path("appusers/u%201"),
            "/v1.1/appusers/u%201/".to_owned(),
            format!("/v1/apps/{}/appusers/{id}", a.hub),
        ] {
            let (st, body) = get(&s, &path, &a.app).await;
            assert_eq!(st, StatusCode::OK, "{path}: {body}");
            assert_eq!(body["appUser"]["_id"], id.as_str(), "{path}");
        }
        let (st, body) = get(&s, &a.path(&format!("appusers/{id}")), &a.account).await;
        assert_eq!(st, StatusCode::OK, "{body}");

        // PUT: fields replace, properties merge, null removes.
        let (st, _, body) = call(
            &s,
            Method::PUT,
            &a.path(&format!("appusers/{id}")),
            &a.app,
            Some(json!({ "givenName": "Grace", "surname": null,
                         "properties": { "tier": null, "n": 4, "x": "y" } })),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(body["appUser"]["givenName"], "Grace");
        assert_eq!(body["appUser"]["surname"], Value::Null);
        assert_eq!(body["appUser"]["email"], "ada@x.io");
        assert_eq!(body["appUser"]["properties"], json!({ "n": 4, "x": "y" }));
        let (_, body) = get(&s, &a.path(&format!("appusers/{id}")), &a.app).await;
        assert_eq!(body["appUser"]["properties"], json!({ "n": 4, "x": "y" }));

        // userId is not updatable; taken: 409; missing: 400; unknown: 404.
        let (st, _, body) = call(
            &s,
            Method::PUT,
            &a.path(&format!("appusers/{id}")),
            &a.app,
            Some(json!({ "userId": "other" })),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["errors"][0]["code"], 303);
        let (st, body) = post(&s, &a.path("appusers"), &a.app, json!({ "userId": "u 1" })).await;
        assert_eq!(st, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "conflict");
        let (st, body) = post(&s, &a.path("appusers"), &a.app, json!({ "givenName": "x" })).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["errors"][0]["code"], 301);
        let (st, body) = post(
            &s,
            &a.path("appusers"),
            &a.app,
            json!({ "userId": "z", "signedUpAt": "yesterday" }),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        for missing in ["nobody", &uuid::Uuid::new_v4().to_string()] {
            let (st, body) = get(&s, &a.path(&format!("appusers/{missing}")), &a.app).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
        }

        // Channels; no conversation yet: conversation routes 404.
        let (st, body) = get(&s, &a.path(&format!("appusers/{id}/channels")), &a.app).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(body["channels"][0]["type"], "api");
        assert_eq!(body["channels"][0]["externalId"], "u 1");
        for (method, rest) in [
            (Method::GET, "conversation"),
            (Method::GET, "messages"),
            (Method::POST, "conversation/read"),
        ] {
            let (st, _, body) = call(
                &s,
                method,
                &a.path(&format!("appusers/{id}/{rest}")),
                &a.app,
                None,
            )
            .await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{rest}: {body}");
        }
        s.stop().await;
    }
}

#[tokio::test]
async fn messages_of_each_type_from_both_roles() {
    for backend in backends("messages_of_each_type_from_both_roles") {
        let s = TestServer::start_on(backend).await;
        let a = app(&s).await;
        let user = make_user(&s, &a, "m1").await;
        let id = user["_id"].as_str().unwrap().to_owned();
        let messages = a.path(&format!("appusers/{id}/messages"));
        let cases = [
            json!({ "type": "text", "text": "hello", "actions": [
                { "type": "reply", "text": "Yes", "payload": "Y" },
                { "type": "postback", "text": "Go", "payload": "G" },
                { "type": "link", "text": "Site", "uri": "https://x.io" } ] }),
            json!({ "type": "image", "mediaUrl": "https://x.io/a.png", "text": "pic" }),
            json!({ "type": "file", "mediaUrl": "https://x.io/a.pdf" }),
            json!({ "type": "location", "coordinates": { "lat": 45.5, "long": -73.5 },
                    "location": { "address": "Montréal" } }),
            json!({ "type": "carousel", "items": [
                { "title": "A", "description": "d", "mediaUrl": "https://x.io/a.png",
                  "actions": [ { "type": "postback", "text": "Buy", "payload": "A" } ] },
                { "title": "B", "actions": [ { "type": "webview", "text": "See", "uri": "https://x.io/b" } ] } ] }),
            json!({ "type": "list", "items": [ { "title": "A" }, { "title": "B" } ] }),
        ];
        let mut sent = Vec::new();
        let mut conversation = None;
        for role in ["appUser", "appMaker"] {
            for case in &cases {
                let mut body = case.clone();
                body["role"] = json!(role);
                let (st, answer) = post(&s, &messages, &a.app, body).await;
                assert_eq!(st, StatusCode::CREATED, "{role} {case}: {answer}");
                let m = &answer["message"];
                assert_eq!(m["role"], role);
                assert_eq!(m["type"], case["type"]);
                assert!(m["received"].as_f64().unwrap() > 1.7e9, "{m}");
                assert!(m["_id"].as_str().unwrap().len() == 36, "{m}");
                if role == "appUser" {
                    assert_eq!(m["authorId"], id.as_str());
                    assert_eq!(m["source"]["type"], "api");
                } else {
                    assert_eq!(m["name"], "Smooch API business");
                    assert_ne!(m["authorId"], id.as_str());
                }
                for key in ["text", "mediaUrl", "coordinates", "location", "actions"] {
                    if case.get(key).is_some() {
                        assert_eq!(m[key], case[key], "{key} of {case}");
                    }
                }
                let c = answer["conversation"]["_id"].as_str().unwrap().to_owned();
                assert_eq!(
                    *conversation.get_or_insert(c.clone()),
                    c,
                    "one conversation"
                );
                sent.push(m.clone());
            }
        }
        // The webview came back as a link; items keep their fields.
        assert_eq!(sent[4]["items"][1]["actions"][0]["type"], "link");
        assert_eq!(sent[4]["items"][0]["mediaUrl"], "https://x.io/a.png");

        // getMessages answers the same messages, oldest first, without paging links.
        let (st, body) = get(&s, &messages, &a.app).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(
            body["conversation"]["_id"],
            conversation.clone().unwrap().as_str()
        );
        assert_eq!(body["messages"].as_array().unwrap(), &sent);
        assert!(
            body.get("previous").is_none() && body.get("next").is_none(),
            "{body}"
        );
        let (st, body) = get(&s, &a.path(&format!("appusers/{id}/conversation")), &a.app).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(body["messages"].as_array().unwrap().len(), sent.len());
        let (_, body) = get(&s, &a.path(&format!("appusers/{id}")), &a.app).await;
        assert_eq!(body["appUser"]["conversationStarted"], true);

        // Bad messages: 400 with Smooch-style codes.
        for (bad, code) in [
            (
                json!({ "role": "whisper", "type": "text", "text": "x" }),
                206,
            ),
            (json!({ "role": "appUser", "type": "form" }), 206),
            (json!({ "role": "appUser", "type": "text" }), 301),
            (json!({ "role": "appUser", "type": "image" }), 301),
            (
                json!({ "role": "appUser", "type": "text", "text": "x",
                     "actions": [ { "type": "buy", "text": "b", "amount": 100 } ] }),
                206,
            ),
            (
                json!({ "role": "appUser", "type": "text", "text": "x", "foo": 1 }),
                303,
            ),
        ] {
            let (st, body) = post(&s, &messages, &a.app, bad.clone()).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {body}");
            assert_eq!(body["errors"][0]["code"], code, "{bad}: {body}");
        }
        let (st, headers, _) = call(
            &s,
            Method::POST,
            &messages,
            &a.app,
            Some(json!({ "role": "appUser", "type": "text", "text": "x", "avatarUrl": "https://x.io/a.png" })),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED);
        assert!(headers.get("warning").is_some());
        s.stop().await;
    }
}

#[tokio::test]
async fn get_messages_pages_by_received_past_100() {
    for backend in backends("get_messages_pages_by_received_past_100") {
        let s = TestServer::start_on(backend).await;
        let a = app(&s).await;
        let user = make_user(&s, &a, "pager").await;
        let id = user["_id"].as_str().unwrap().to_owned();
        // A second agent: each customer message is stored as two copies, so a page is read in
        // more than one scan of copies, and each message must still come once.
        s.direct(&s.a.portal, &a.hub, "Second agent", "Agent", json!({}))
            .await;
        let messages = a.path(&format!("appusers/{id}/messages"));
        for i in 0..130 {
            let role = if i % 2 == 0 { "appUser" } else { "appMaker" };
            let (st, body) = post(
                &s,
                &messages,
                &a.app,
                json!({ "role": role, "type": "text", "text": format!("m{i}") }),
            )
            .await;
            assert_eq!(st, StatusCode::CREATED, "{body}");
        }
        let texts = |body: &Value| -> Vec<String> {
            body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["text"].as_str().unwrap().to_owned())
                .collect()
        };
        let want = |range: std::ops::Range<usize>| -> Vec<String> {
            range.map(|i| format!("m{i}")).collect()
        };
        let (st, latest) = get(&s, &messages, &a.app).await;
        assert_eq!(st, StatusCode::OK, "{latest}");
        assert_eq!(texts(&latest), want(30..130));
        assert!(latest.get("next").is_none());
        let previous = latest["previous"].as_str().unwrap();
        assert!(previous.starts_with(&s.base), "{previous} on {}", s.base);
        let first = latest["messages"][0]["received"].as_f64().unwrap();
        let (st, older) = get(&s, previous.strip_prefix(&s.base).unwrap(), &a.app).await;
        assert_eq!(st, StatusCode::OK, "{older}");
        assert_eq!(texts(&older), want(0..30));
        assert!(older.get("previous").is_none(), "{older}");
        let next = older["next"].as_str().unwrap();
        let (_, newer) = get(&s, next.strip_prefix(&s.base).unwrap(), &a.app).await;
        assert_eq!(texts(&newer), want(30..130));
        assert_eq!(newer["messages"][0]["received"].as_f64().unwrap(), first);
        // after= the earliest 100 after S.
        let t0 = older["messages"][0]["received"].as_f64().unwrap();
        let (_, after) = get(&s, &format!("{messages}?after={t0}"), &a.app).await;
        assert_eq!(texts(&after), want(1..101));
        assert!(
            after["previous"].is_string() && after["next"].is_string(),
            "{after}"
        );
        // Both, or not a number: 400.
        for q in ["before=1&after=2", "before=x", "after=-1"] {
            let (st, body) = get(&s, &format!("{messages}?{q}"), &a.app).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {body}");
        }
        s.stop().await;
    }
}

#[tokio::test]
async fn an_app_maker_message_to_a_telegram_customer_is_a_held_provider_delivery() {
    for backend in
        backends("an_app_maker_message_to_a_telegram_customer_is_a_held_provider_delivery")
    {
        let s = TestServer::start_with(backend, |a| {
            a.providers = switchboard::config::ProvidersMode::Offline;
        })
        .await;
        let a = app(&s).await;
        let (st, body) = create(
            &s,
            &a.hub,
            "Telegram",
            json!({ "token": "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "username": "given_bot" }),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let telegram = body["integrationId"].as_str().unwrap().to_owned();
        // The customer writes first through its channel (here: its conversation is established),
        // and becomes an app user when SPEC 8 first needs it.
        let conversation = s.establish(&s.a.engine, &telegram, "4242").await;
        let user = a
            .store
            .ensure_app_user(
                s.a.id().parse().unwrap(),
                a.hub.parse().unwrap(),
                telegram.parse::<IntegrationId>().unwrap(),
                "4242",
                1_731_900_000_000,
            )
            .await
            .unwrap();
        let path = a.path(&format!("appusers/{}", user.id));
        let (st, body) = get(&s, &path, &a.app).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(body["appUser"]["userId"], Value::Null);
        assert_eq!(body["appUser"]["conversationStarted"], true);
        assert_eq!(body["appUser"]["clients"][0]["platform"], "telegram");
        let (st, body) = post(
            &s,
            &format!("{path}/messages"),
            &a.app,
            json!({ "role": "appMaker", "type": "text", "text": "held for you" }),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        assert_eq!(body["conversation"]["_id"], conversation["conversationId"]);
        let list = deliveries_when(&s, &telegram, 1, |d| d["status"] == "pending").await;
        assert_eq!(list.len(), 1, "{list:#?}");
        assert_eq!(list[0]["lastError"], "providers offline");
        assert_eq!(list[0]["channel"], "Telegram");
        let (st, body) = get(&s, &format!("{path}/messages"), &a.app).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(body["messages"][0]["text"], "held for you");
        assert_eq!(body["messages"][0]["role"], "appMaker");
        s.stop().await;
    }
}

#[tokio::test]
async fn typing_activity_is_sent_by_the_business_integration() {
    let s = TestServer::start().await;
    let a = app(&s).await;
    let user = make_user(&s, &a, "typist").await;
    let id = user["_id"].as_str().unwrap().to_owned();
    let activity = a.path(&format!("appusers/{id}/conversation/activity"));
    let (st, body) = post(
        &s,
        &activity,
        &a.app,
        json!({ "role": "appMaker", "type": "typing:start" }),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "no conversation yet: {body}");
    let (st, body) = post(
        &s,
        &a.path(&format!("appusers/{id}/messages")),
        &a.app,
        json!({ "role": "appUser", "type": "text", "text": "hi" }),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let conversation = body["conversation"]["_id"].as_str().unwrap().to_owned();
    for kind in ["typing:start", "typing:stop", "conversation:read"] {
        let (st, body) = post(
            &s,
            &activity,
            &a.app,
            json!({ "role": "appMaker", "type": kind, "name": "Bob" }),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{kind}: {body}");
        assert_eq!(
            body,
            json!({ "conversation": { "_id": conversation, "unreadCount": 0 } })
        );
    }
    let (st, copies) = s
        .get(
            &format!("/api/v1/interactions/activities/{conversation}?type=Customer"),
            &s.a.engine,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{copies}");
    let events: Vec<&str> = copies
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "event" && c["sender"]["integrationType"] == "Agent")
        .map(|c| c["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["typing_on", "typing_off", "seen"]);
    for bad in [
        json!({ "role": "appUser", "type": "typing:start" }),
        json!({ "role": "appMaker", "type": "typing" }),
        json!({ "type": "typing:start" }),
    ] {
        let (st, body) = post(&s, &activity, &a.app, bad.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (st, body) = post(
        &s,
        &a.path(&format!("appusers/{id}/conversation/read")),
        &a.app,
        json!({}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["conversation"]["unreadCount"], 0);
    s.stop().await;
}

#[tokio::test]
async fn app_user_tokens_reach_only_their_own_user_and_never_as_app_maker() {
    let s = TestServer::start().await;
    let a = app(&s).await;
    let own = make_user(&s, &a, "me").await;
    let other = make_user(&s, &a, "you").await;
    let me = a.user_token("me");
    let own_id = own["_id"].as_str().unwrap();
    for path in ["appusers/me", &format!("appusers/{own_id}")] {
        let (st, body) = get(&s, &a.path(path), &me).await;
        assert_eq!(st, StatusCode::OK, "{path}: {body}");
    }
    let (st, body) = get(&s, "/v1.1/appusers/me", &me).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, body) = post(
        &s,
        &a.path("appusers/me/messages"),
        &me,
        json!({ "role": "appUser", "type": "text", "text": "mine" }),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let other_id = other["_id"].as_str().unwrap();
    let forbidden: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "appusers/you".into(), None),
        (Method::GET, format!("appusers/{other_id}"), None),
        (Method::GET, "appusers/nobody".into(), None),
        (
            Method::PUT,
            "appusers/you".into(),
            Some(json!({ "givenName": "x" })),
        ),
        (Method::GET, "appusers/you/messages".into(), None),
        (
            Method::POST,
            "appusers/me/messages".into(),
            Some(json!({ "role": "appMaker", "type": "text", "text": "as business" })),
        ),
        (
            Method::POST,
            "appusers/me/messages".into(),
            Some(json!({ "role": "appMaker", "type": "form", "foo": 1 })),
        ),
        (
            Method::POST,
            "appusers".into(),
            Some(json!({ "userId": "new" })),
        ),
        (Method::GET, "appusers/me/channels".into(), None),
        (
            Method::POST,
            "appusers/me/conversation/activity".into(),
            Some(json!({ "role": "appMaker", "type": "typing:start" })),
        ),
    ];
    for (method, path, body) in forbidden {
        let (st, _, answer) = call(&s, method.clone(), &a.path(&path), &me, body).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "forbidden");
    }
    // An account token reaches app users only under /apps/{appId}.
    let (st, body) = get(&s, "/v1.1/appusers/me", &a.account).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    s.stop().await;
}
