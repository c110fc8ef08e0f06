//! SPEC 8.6 over raw HTTP: `{A}/integrations` of the Smooch compatibility API against a real
//! server (providers offline, SPEC 7.5.3): each type of the table created with its fields and
//! answered with public fields only, the `types` filter, paging, updates (merge, `type` change,
//! ignored Twilio configuration), deletes, other channels' ids as 404, 409 on a taken
//! `displayName`, 400s, and the `Warning` header of ignored fields.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::*;

/// An HS256 JWS of `payload` signed with a compat key (SPEC 8.3).
fn jwt(key_id: &str, secret: &str, payload: &Value) -> String {
    let header = json!({ "alg": "HS256", "typ": "JWT", "kid": key_id });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// An account-scope token of tenant A, from a key made through the portal route.
async fn account_token(s: &TestServer) -> String {
    let (status, key) = s
        .post(
            "/api/v1/tenants/smooch-keys",
            &s.a.portal,
            json!({ "name": "it" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    jwt(
        key["keyId"].as_str().unwrap(),
        key["secret"].as_str().unwrap(),
        &json!({ "scope": "account" }),
    )
}

struct Smooch {
    s: TestServer,
    token: String,
    hub: String,
}

impl Smooch {
    async fn start(backend: Backend) -> Self {
        let s = TestServer::start_on(backend).await;
        let token = account_token(&s).await;
        let hub = s.hub(&s.a.portal, "smooch app").await;
        Self { s, token, hub }
    }

    fn path(&self, tail: &str) -> String {
        format!("/v1.1/apps/{}/integrations{tail}", self.hub)
    }

    async fn call(
        &self,
        method: Method,
        tail: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        self.s
            .call_full(method, &self.path(tail), Some(&self.token), body.as_ref())
            .await
    }

    async fn create(&self, body: Value) -> (StatusCode, HeaderMap, Value) {
        self.call(Method::POST, "", Some(body)).await
    }

    /// Creates; panics unless 201; answers the integration.
    async fn created(&self, body: Value) -> Value {
        let (status, _, out) = self.create(body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body} -> {out}");
        out["integration"].clone()
    }
}

/// Asserts 8.2's error shape: status, `error.code`, and the §1 codes.
fn assert_smooch_error(status: StatusCode, body: &Value, want: u16, name: &str, codes: &[u64]) {
    assert_eq!(status.as_u16(), want, "{body}");
    assert_eq!(body["status"], want, "{body}");
    assert_eq!(body["error"]["code"], name, "{body}");
    let got: Vec<u64> = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors in {body}"))
        .iter()
        .map(|e| e["code"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(got, codes, "{body}");
}

fn warning(headers: &HeaderMap) -> Option<String> {
    headers
        .get("warning")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Each type's create body, the public fields it must answer (besides `_id`, `type`,
/// `displayName`, `status`), and the secret values it must never answer.
fn catalogue() -> Vec<(Value, Vec<&'static str>, Vec<&'static str>)> {
    vec![
        (
            json!({ "type": "messenger", "pageAccessToken": "EAAsecret1", "appId": "1234",
                    "appSecret": "appsecret1" }),
            vec!["appId"],
            vec!["EAAsecret1", "appsecret1"],
        ),
        (
            json!({ "type": "twilio", "accountSid": "AC0001", "authToken": "twiliosecret",
                    "phoneNumberSid": "PN0001" }),
            vec!["accountSid", "phoneNumberSid"],
            vec!["twiliosecret"],
        ),
        (
            json!({ "type": "telegram", "token": "123456:telegramsecret" }),
            vec![],
            vec!["123456:telegramsecret"],
        ),
        (
            json!({ "type": "line", "channelAccessToken": "linetoken", "channelSecret": "linesecret" }),
            vec![],
            vec!["linetoken", "linesecret"],
        ),
        (
            json!({ "type": "viber", "token": "vibersecret" }),
            vec![],
            vec!["vibersecret"],
        ),
        (
            json!({ "type": "wechat", "appId": "wx0001", "appSecret": "wechatsecret" }),
            vec!["appId", "webhookSecret"],
            vec!["wechatsecret"],
        ),
        (
            json!({ "type": "twitter", "consumerKey": "ck1", "consumerSecret": "cssecret",
                    "accessTokenKey": "atk1", "accessTokenSecret": "atssecret", "envName": "prod" }),
            vec!["consumerKey", "accessTokenKey"],
            vec!["cssecret", "atssecret"],
        ),
        (
            json!({ "type": "mailgun", "apiKey": "mailgunsecret", "domain": "mg.example.com",
                    "incomingAddress": "in@mg.example.com" }),
            vec!["domain", "incomingAddress"],
            vec!["mailgunsecret"],
        ),
        (
            json!({ "type": "messagebird", "accessKey": "birdsecret", "originator": "Shop",
                    "signingKey": "birdsigning" }),
            vec!["originator", "webhookSecret"],
            vec!["birdsecret", "birdsigning"],
        ),
        (
            json!({ "type": "frontendEmail", "fromAddress": "help@shop.example" }),
            vec!["fromAddress", "smoochAddress", "shortId"],
            vec![],
        ),
        (
            json!({ "type": "apn", "certificate": "TUlJQ2VydA==", "password": "apnsecret",
                    "production": true }),
            vec!["autoUpdateBadge", "production"],
            vec!["TUlJQ2VydA==", "apnsecret"],
        ),
        (
            json!({ "type": "fcm", "serverKey": "fcmsecret", "senderId": "4242" }),
            vec!["senderId"],
            vec!["fcmsecret"],
        ),
    ]
}

#[tokio::test]
async fn each_type_creates_with_its_fields_and_answers_public_fields_only() {
    for backend in backends("each_type_creates_with_its_fields_and_answers_public_fields_only") {
        let t = Smooch::start(backend).await;
        let mut ids = Vec::new();
        for (body, public, secrets) in catalogue() {
            let (status, headers, out) = t.create(body.clone()).await;
            assert_eq!(status, StatusCode::CREATED, "{body} -> {out}");
            assert_eq!(warning(&headers), None, "{body}");
            let i = &out["integration"];
            let id = i["_id"].as_str().unwrap().to_owned();
            let ty = body["type"].as_str().unwrap();
            assert_eq!(i["type"], ty);
            assert_eq!(i["displayName"], format!("{ty} {id}"), "default name");
            assert_eq!(i["status"], "active");
            let mut keys: Vec<&str> = i.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            let mut want: Vec<&str> = ["_id", "type", "displayName", "status"]
                .into_iter()
                .chain(public.iter().copied())
                .collect();
            want.sort_unstable();
            assert_eq!(keys, want, "{ty}: {i}");
            let text = out.to_string();
            for secret in secrets {
                assert!(!text.contains(secret), "{ty} answered a secret: {text}");
            }
            // Given public fields come back as given, under Smooch names.
            for field in &public {
                if let Some(given) = body.get(*field) {
                    assert_eq!(&i[*field], given, "{ty}.{field}");
                }
            }
            // The same integration through GET, and through the portal under its own names.
            let (status, _, got) = t.call(Method::GET, &format!("/{id}"), None).await;
            assert_eq!(status, StatusCode::OK, "{got}");
            assert_eq!(&got["integration"], i);
            ids.push(id);
        }
        // Renames and generated values, seen from the portal.
        let (_, twilio) =
            t.s.get(&format!("/api/v1/integrations/{}", ids[1]), &t.s.a.portal)
                .await;
        assert_eq!(twilio["channelId"], "TwilioSMS");
        assert_eq!(twilio["configuration"]["numberSid"], "PN0001");
        let (_, email) =
            t.s.get(&format!("/api/v1/integrations/{}", ids[9]), &t.s.a.portal)
                .await;
        let address = email["configuration"]["incomingAddress"].as_str().unwrap();
        let (_, _, got) = t.call(Method::GET, &format!("/{}", ids[9]), None).await;
        assert_eq!(got["integration"]["smoochAddress"], address);
        assert_eq!(
            got["integration"]["shortId"],
            address.split('@').next().unwrap()
        );
        let (_, _, apn) = t.call(Method::GET, &format!("/{}", ids[10]), None).await;
        assert_eq!(apn["integration"]["production"], true);
        assert_eq!(apn["integration"]["autoUpdateBadge"], false);

        // The list: all, oldest first, without `limit`.
        let (status, _, list) = t.call(Method::GET, "", None).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let listed: Vec<&str> = list["integrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["_id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, ids.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(list["hasMore"], false);
        assert_eq!(list["offset"], 0);
        t.s.stop().await;
    }
}

#[tokio::test]
async fn types_filter_and_paging() {
    for backend in backends("types_filter_and_paging") {
        let t = Smooch::start(backend).await;
        let twilio = t
            .created(
                json!({ "type": "twilio", "accountSid": "AC1", "authToken": "a",
                             "phoneNumberSid": "PN1" }),
            )
            .await;
        let line = t
            .created(json!({ "type": "line", "channelAccessToken": "t", "channelSecret": "s" }))
            .await;
        let viber = t.created(json!({ "type": "viber", "token": "v" })).await;
        let ids = |list: &Value| -> Vec<String> {
            list["integrations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["_id"].as_str().unwrap().to_owned())
                .collect()
        };

        // One name, a comma list (percent-encoded comma too); unsupported types match nothing.
        let (status, _, list) = t.call(Method::GET, "?types=line", None).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(ids(&list), [line["_id"].as_str().unwrap()]);
        let (_, _, list) = t.call(Method::GET, "?types=twilio%2Cviber", None).await;
        assert_eq!(
            ids(&list),
            [
                twilio["_id"].as_str().unwrap(),
                viber["_id"].as_str().unwrap()
            ]
        );
        let (_, _, list) = t.call(Method::GET, "?types=viber,web,ios", None).await;
        assert_eq!(ids(&list), [viber["_id"].as_str().unwrap()]);
        let (status, _, list) = t.call(Method::GET, "?types=web", None).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["integrations"], json!([]));
        for bad in ["?types=fax", "?types=twilio,fax", "?types="] {
            let (status, _, body) = t.call(Method::GET, bad, None).await;
            assert_smooch_error(status, &body, 400, "bad_request", &[206]);
        }

        // Paging with `limit`: hasMore and offset as requested.
        let (_, _, page) = t.call(Method::GET, "?limit=2", None).await;
        assert_eq!(ids(&page).len(), 2);
        assert_eq!(page["hasMore"], true);
        assert_eq!(page["offset"], 0);
        let (_, _, page) = t.call(Method::GET, "?limit=2&offset=2", None).await;
        assert_eq!(ids(&page), [viber["_id"].as_str().unwrap()]);
        assert_eq!(page["hasMore"], false);
        assert_eq!(page["offset"], 2);
        for bad in ["?limit=0", "?limit=101", "?limit=x", "?offset=-1"] {
            let (status, _, body) = t.call(Method::GET, bad, None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        }
        t.s.stop().await;
    }
}

#[tokio::test]
async fn other_channels_ids_are_not_found() {
    for backend in backends("other_channels_ids_are_not_found") {
        let t = Smooch::start(backend).await;
        let direct =
            t.s.integration(
                &t.s.a.portal,
                &t.hub,
                json!({ "channelId": "Direct", "name": "agents",
                        "configuration": { "integrationType": "Agent" } }),
            )
            .await;
        let direct = direct["integrationId"].as_str().unwrap();
        let other_hub = t.s.hub(&t.s.a.portal, "other").await;
        let (_, _, elsewhere) =
            t.s.call_full(
                Method::POST,
                &format!("/v1.1/apps/{other_hub}/integrations"),
                Some(&t.token),
                Some(&json!({ "type": "viber", "token": "v" })),
            )
            .await;
        let elsewhere = elsewhere["integration"]["_id"].as_str().unwrap().to_owned();
        for id in [
            direct,
            elsewhere.as_str(),
            "00000000-0000-0000-0000-000000000000",
            "not-a-uuid",
        ] {
            for method in [Method::GET, Method::PUT, Method::DELETE] {
                let body = (method == Method::PUT).then(|| json!({ "displayName": "x" }));
                let (status, _, out) = t.call(method.clone(), &format!("/{id}"), body).await;
                assert_smooch_error(status, &out, 404, "not_found", &[6000]);
            }
        }
        // Nor are they listed.
        let (_, _, list) = t.call(Method::GET, "", None).await;
        assert_eq!(list["integrations"], json!([]));
        // The Direct integration is still there.
        let (status, _) =
            t.s.get(&format!("/api/v1/integrations/{direct}"), &t.s.a.portal)
                .await;
        assert_eq!(status, StatusCode::OK);
        t.s.stop().await;
    }
}

#[tokio::test]
async fn update_merges_fields_and_delete_removes() {
    for backend in backends("update_merges_fields_and_delete_removes") {
        let t = Smooch::start(backend).await;
        let i = t
            .created(
                json!({ "type": "wechat", "displayName": "WeChat", "appId": "wx1",
                             "appSecret": "s1" }),
            )
            .await;
        let id = i["_id"].as_str().unwrap();
        let (status, headers, out) = t
            .call(
                Method::PUT,
                &format!("/{id}"),
                Some(json!({ "type": "wechat", "appId": "wx2", "displayName": "Renamed" })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(warning(&headers), None);
        let u = &out["integration"];
        assert_eq!(u["appId"], "wx2");
        assert_eq!(u["displayName"], "Renamed");
        assert_eq!(u["webhookSecret"], i["webhookSecret"], "generated, kept");
        let (_, portal) =
            t.s.get(&format!("/api/v1/integrations/{id}"), &t.s.a.portal)
                .await;
        assert_eq!(
            portal["configuration"]["appSecret"], "s1",
            "merged, not replaced"
        );
        assert_eq!(portal["name"], "Renamed");

        // A type change is 400, as are bad values; nothing changes.
        let (status, _, out) = t
            .call(
                Method::PUT,
                &format!("/{id}"),
                Some(json!({ "type": "line" })),
            )
            .await;
        assert_smooch_error(status, &out, 400, "bad_request", &[206]);
        let (status, _, out) = t
            .call(Method::PUT, &format!("/{id}"), Some(json!({ "appId": 7 })))
            .await;
        assert_smooch_error(status, &out, 400, "bad_request", &[302]);

        // Delete: `{}`, then 404.
        let (status, _, out) = t.call(Method::DELETE, &format!("/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(out, json!({}));
        let (status, _, out) = t.call(Method::GET, &format!("/{id}"), None).await;
        assert_smooch_error(status, &out, 404, "not_found", &[6000]);
        t.s.stop().await;
    }
}

#[tokio::test]
async fn twilio_configuration_changes_are_ignored_with_a_warning() {
    for backend in backends("twilio_configuration_changes_are_ignored_with_a_warning") {
        let t = Smooch::start(backend).await;
        let i = t
            .created(
                json!({ "type": "twilio", "accountSid": "AC1", "authToken": "a",
                             "phoneNumberSid": "PN1" }),
            )
            .await;
        let id = i["_id"].as_str().unwrap();
        let (status, headers, out) = t
            .call(
                Method::PUT,
                &format!("/{id}"),
                Some(json!({ "phoneNumberSid": "PN2", "displayName": "SMS" })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        let w = warning(&headers).expect("a Warning");
        assert!(w.starts_with("299 switchboard \""), "{w}");
        assert!(w.contains("TwilioSMS"), "{w}");
        assert_eq!(out["integration"]["phoneNumberSid"], "PN1");
        assert_eq!(out["integration"]["displayName"], "SMS");
        // A rename alone changes no configuration: no Warning.
        let (_, headers, _) = t
            .call(
                Method::PUT,
                &format!("/{id}"),
                Some(json!({ "displayName": "SMS 2" })),
            )
            .await;
        assert_eq!(warning(&headers), None);
        t.s.stop().await;
    }
}

#[tokio::test]
async fn bad_bodies_taken_names_and_ignored_fields() {
    for backend in backends("bad_bodies_taken_names_and_ignored_fields") {
        let t = Smooch::start(backend).await;

        // Ignored fields are dropped and named in the Warning.
        let (status, headers, out) = t
            .create(
                json!({ "type": "line", "displayName": "Line", "channelAccessToken": "t",
                            "channelSecret": "s", "channelId": "c", "serviceCode": "x" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
        let w = warning(&headers).expect("a Warning");
        assert!(w.starts_with("299 switchboard \""), "{w}");
        assert!(w.contains("channelId") && w.contains("serviceCode"), "{w}");
        let id = out["integration"]["_id"].as_str().unwrap().to_owned();

        // displayName taken in the hub: 409, on create and on update.
        let (status, _, out) = t
            .create(json!({ "type": "viber", "token": "v", "displayName": "Line" }))
            .await;
        assert_smooch_error(status, &out, 409, "conflict", &[106]);
        let viber = t
            .created(json!({ "type": "viber", "token": "v", "displayName": "Viber" }))
            .await;
        let (status, _, out) = t
            .call(
                Method::PUT,
                &format!("/{}", viber["_id"].as_str().unwrap()),
                Some(json!({ "displayName": "Line" })),
            )
            .await;
        assert_smooch_error(status, &out, 409, "conflict", &[106]);

        // 400s: no type, an unsupported or unknown type, an unknown field, a wrong JSON type,
        // a missing required field (named as Smooch names it), a body that is not an object.
        for (body, codes) in [
            (json!({ "token": "v" }), vec![301]),
            (json!({ "type": "web" }), vec![206]),
            (json!({ "type": "whatsapp" }), vec![206]),
            (json!({ "type": "fax" }), vec![206]),
            (
                json!({ "type": "viber", "token": "v", "pageId": "p" }),
                vec![303],
            ),
            (json!({ "type": "viber", "token": 5 }), vec![302]),
            (
                json!({ "type": "apn", "certificate": "TUlJQw==", "production": "yes" }),
                vec![302],
            ),
        ] {
            let (status, _, out) = t.create(body.clone()).await;
            assert_smooch_error(status, &out, 400, "bad_request", &codes);
        }
        let (status, _, out) = t
            .create(json!({ "type": "twilio", "accountSid": "AC1", "authToken": "a" }))
            .await;
        assert_smooch_error(status, &out, 400, "bad_request", &[301]);
        let description = out["error"]["description"].as_str().unwrap();
        assert!(description.contains("'phoneNumberSid'"), "{description}");
        let (status, out) =
            t.s.raw(Method::POST, &t.path(""), Some(&t.token), None, "[1]")
                .await;
        assert_smooch_error(status, &out, 400, "bad_request", &[300]);

        // The `/v1` prefix serves the same.
        let (status, _, out) =
            t.s.call_full(
                Method::GET,
                &format!("/v1/apps/{}/integrations/{id}/", t.hub),
                Some(&t.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(out["integration"]["displayName"], "Line");
        t.s.stop().await;
    }
}
