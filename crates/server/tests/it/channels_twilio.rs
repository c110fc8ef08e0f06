//! The TwilioSMS adapter end to end (SPEC 7.7, 7.21) against the fake Twilio REST API:
//! provisioning (live, refused, unreachable, offline), inbound calls (signature, `AccountSid`,
//! text, MMS media used directly, duplicates, the TwiML answer), outbound sends (text, MMS or
//! its text fallback, long texts in parts), retries with `Retry-After`, permanent and
//! credential refusals, and order.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::channels::*;
use crate::fakes::{twilio, Fake, Mode};
use crate::support::*;

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "f00dfeedbeefcafe0123456789abcdef";
/// A number with MMS.
const NUMBER: &str = "PN11111111111111111111111111111111";
const PHONE: &str = "+15005550006";
/// A number without MMS.
const SMS_ONLY: &str = "PN22222222222222222222222222222222";
const SMS_ONLY_PHONE: &str = "+15005550007";
/// The customer.
const CUSTOMER: &str = "+14155550123";

fn numbers() -> Vec<twilio::Number> {
    vec![
        twilio::Number {
            sid: NUMBER.into(),
            phone: PHONE.into(),
            sms: true,
            mms: true,
            voice: true,
        },
        twilio::Number {
            sid: SMS_ONLY.into(),
            phone: SMS_ONLY_PHONE.into(),
            sms: true,
            mms: false,
            voice: false,
        },
    ]
}

fn config(number: &str) -> Value {
    json!({ "accountSid": ACCOUNT, "authToken": TOKEN, "numberSid": number })
}

struct Tw {
    s: TestServer,
    fake: Fake,
    hub: String,
    agent: String,
    /// The TwilioSMS integration (number with MMS).
    id: String,
}

async fn setup_on(backend: Backend) -> Tw {
    let fake = twilio::start(ACCOUNT, TOKEN, numbers()).await;
    let url = fake.url.clone();
    let s = server(backend, "0s,100ms,100ms,100ms", move |a| {
        a.provider_twilio_url = url;
    })
    .await;
    let (hub, agent) = hub_with_agent(&s).await;
    let (status, body) = create(&s, &hub, "TwilioSMS", config(NUMBER)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Tw {
        id: body["integrationId"].as_str().unwrap().to_owned(),
        s,
        fake,
        hub,
        agent,
    }
}

async fn setup() -> Tw {
    setup_on(Backend::Sqlite).await
}

// ---- Twilio's request signature, written from Twilio's documentation -------------------------

/// `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + each POST parameter sorted by name,
/// name then value)).
fn twilio_signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in &sorted {
        data.push_str(k);
        data.push_str(v);
    }
    STANDARD.encode(hmac_sha1(token.as_bytes(), data.as_bytes()))
}

// ---- Inbound calls -----------------------------------------------------------------------------

/// The form Twilio posts for an incoming SMS `sid` from `from` to `PHONE`, with `extra` fields.
fn sms(sid: &str, from: &str, body: Option<&str>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = [
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", "94105"),
        ("SmsSid", sid),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("FromCountry", "US"),
        ("To", PHONE),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    if let Some(b) = body {
        p.push(("Body".into(), b.into()));
    }
    for (k, v) in extra {
        p.retain(|(n, _)| n != k);
        p.push(((*k).into(), (*v).into()));
    }
    p
}

fn encode(params: &[(String, String)]) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
        .into_bytes()
}

struct Answered {
    status: StatusCode,
    content_type: String,
    body: String,
}

impl Tw {
    fn webhook_url(&self) -> String {
        format!("{}/channels/twilio/{}", self.s.base, self.id)
    }

    /// Posts `body` with the signature header `signature` (none when `None`).
    async fn post_raw(&self, signature: Option<&str>, body: Vec<u8>) -> Answered {
        let mut req = self
            .s
            .http
            .post(self.webhook_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(sig) = signature {
            req = req.header("x-twilio-signature", sig);
        }
        let resp = req.send().await.unwrap();
        Answered {
            status: resp.status(),
            content_type: resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            body: resp.text().await.unwrap(),
        }
    }

    /// Posts `params` signed as Twilio does with `token`.
    async fn inbound_with(&self, token: &str, params: &[(String, String)]) -> Answered {
        let sig = twilio_signature(token, &self.webhook_url(), params);
        self.post_raw(Some(&sig), encode(params)).await
    }

    async fn inbound(&self, params: &[(String, String)]) -> Answered {
        self.inbound_with(TOKEN, params).await
    }

    async fn conversation(&self, binding: &str) -> String {
        conversation_of(&self.s, &self.id, binding).await
    }
}

fn assert_twiml(a: &Answered) {
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(
        a.content_type.starts_with("text/xml"),
        "content type {}",
        a.content_type
    );
    assert_eq!(a.body, "<Response></Response>");
}

// ---- Provisioning ------------------------------------------------------------------------------

#[tokio::test]
async fn create_live_learns_the_number_and_points_its_sms_url_here() {
    let t = setup().await;
    let (status, body) =
        t.s.get(&format!("/api/v1/integrations/{}", t.id), &t.s.a.portal)
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["configuration"]["phoneNumber"], PHONE, "{body}");
    assert_eq!(
        body["configuration"]["capabilities"],
        json!({ "sms": true, "mms": true, "voice": true }),
        "{body}"
    );
    assert_eq!(body["inboundId"], ACCOUNT, "{body}");
    let calls = t.fake.requests();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/IncomingPhoneNumbers/{NUMBER}.json");
    assert_eq!(
        (calls[0].method.as_str(), calls[0].path.as_str()),
        ("GET", path.as_str())
    );
    assert_eq!(
        (calls[1].method.as_str(), calls[1].path.as_str()),
        ("POST", path.as_str())
    );
    assert_eq!(calls[1].field("SmsUrl").unwrap(), t.webhook_url());
    assert_eq!(calls[1].field("SmsMethod").unwrap(), "POST");
    let basic = format!("Basic {}", STANDARD.encode(format!("{ACCOUNT}:{TOKEN}")));
    assert!(calls
        .iter()
        .all(|c| c.header("authorization") == Some(basic.as_str())));
    assert!(t.fake.problems().is_empty(), "{:?}", t.fake.problems());

    // Values given for the read-only keys are ignored in live mode.
    let mut given = config(SMS_ONLY);
    given["phoneNumber"] = json!("+19999999999");
    given["capabilities"] = json!({ "sms": true, "mms": true, "voice": true });
    let (status, body) = create(&t.s, &t.hub, "TwilioSMS", given).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["configuration"]["phoneNumber"], SMS_ONLY_PHONE,
        "{body}"
    );
    assert_eq!(
        body["configuration"]["capabilities"],
        json!({ "sms": true, "mms": false, "voice": false }),
        "{body}"
    );

    // Delete makes no call (no deregistration), and Twilio's later calls find nothing.
    let before = t.fake.requests().len();
    let (status, _) =
        t.s.delete(&format!("/api/v1/integrations/{}", t.id), &t.s.a.portal)
            .await;
    assert_eq!(status, StatusCode::OK);
    let a = t.inbound(&sms("SMlate", CUSTOMER, Some("late"), &[])).await;
    assert_eq!(
        (a.status, code(&a.body)),
        (StatusCode::NOT_FOUND, 6000),
        "{}",
        a.body
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(t.fake.requests().len(), before);
}

#[tokio::test]
async fn create_refused_or_unreachable_stores_nothing() {
    let t = setup().await;
    let before = integrations(&t.s, &t.hub).await.len();
    // A wrong auth token: Twilio's 401 code 20003, refused with its reason.
    let mut wrong = config(NUMBER);
    wrong["authToken"] = json!("not-the-token");
    let (status, body) = create(&t.s, &t.hub, "TwilioSMS", wrong).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], 206, "{body}");
    let description = body["errors"][0]["description"].as_str().unwrap();
    assert!(
        description.starts_with("Twilio refused the configuration: Authenticate (20003)"),
        "{body}"
    );
    // A number that is not the account's: 404 code 20404.
    let (status, body) = create(
        &t.s,
        &t.hub,
        "TwilioSMS",
        config("PN99999999999999999999999999999999"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], 206, "{body}");
    assert!(body["errors"][0]["description"]
        .as_str()
        .unwrap()
        .contains("(20404)"));
    // The update refused.
    t.fake.script([
        Mode::Success,
        Mode::Refuse(400, twilio::error(400, 21502, "Invalid SmsUrl")),
    ]);
    let (status, body) = create(&t.s, &t.hub, "TwilioSMS", config(NUMBER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["errors"][0]["description"]
            .as_str()
            .unwrap()
            .starts_with("Twilio refused the configuration: Invalid SmsUrl (21502)"),
        "{body}"
    );
    // 5xx on the fetch, then on the update, then 429: unreachable, 503/100.
    for script in [
        vec![Mode::ServerError],
        vec![Mode::Success, Mode::ServerError],
        vec![Mode::RateLimited(1)],
    ] {
        t.fake.script(script);
        let (status, body) = create(&t.s, &t.hub, "TwilioSMS", config(NUMBER)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["errors"][0]["code"], 100, "{body}");
        assert!(
            body["errors"][0]["description"]
                .as_str()
                .unwrap()
                .starts_with("Twilio is unreachable"),
            "{body}"
        );
    }
    assert_eq!(integrations(&t.s, &t.hub).await.len(), before);
    assert!(t.fake.problems().is_empty(), "{:?}", t.fake.problems());
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let s = server(Backend::Sqlite, "0s", move |a| a.provider_twilio_url = url).await;
    let (hub, _) = hub_with_agent(&s).await;
    let (status, body) = create(&s, &hub, "TwilioSMS", config(NUMBER)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["errors"][0]["code"], 100);
    assert_eq!(integrations(&s, &hub).await.len(), 1, "only the agent");
}

#[tokio::test]
async fn offline_makes_no_call_and_takes_read_only_keys_as_given() {
    let fake = twilio::start(ACCOUNT, TOKEN, numbers()).await;
    let url = fake.url.clone();
    let s = server(Backend::Sqlite, "0s", move |a| {
        a.provider_twilio_url = url;
        a.providers = switchboard::config::ProvidersMode::Offline;
    })
    .await;
    let (hub, agent) = hub_with_agent(&s).await;
    let mut given = config(NUMBER);
    given["phoneNumber"] = json!("+15550001111");
    given["capabilities"] = json!({ "sms": true, "mms": false, "voice": false });
    let (status, body) = create(&s, &hub, "TwilioSMS", given).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["configuration"]["phoneNumber"], "+15550001111");
    assert_eq!(
        body["configuration"]["capabilities"],
        json!({ "sms": true, "mms": false, "voice": false })
    );
    let id = body["integrationId"].as_str().unwrap().to_owned();
    // Without them: null.
    let (status, body) = create(&s, &hub, "TwilioSMS", config(NUMBER)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["configuration"]["phoneNumber"], Value::Null, "{body}");
    assert_eq!(body["configuration"]["capabilities"], Value::Null, "{body}");

    // Deliveries are held.
    let conversation = conversation_of(&s, &id, CUSTOMER).await;
    let (status, body) = agent_sends(&s, &conversation, &agent, text("held")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let list = deliveries(&s, &id).await;
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["status"], "pending");
    assert_eq!(list[0]["nextAttemptAt"], Value::Null);
    assert_eq!(list[0]["lastError"], "providers offline");
    assert_eq!(list[0]["channel"], "TwilioSMS");
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

// ---- Inbound -----------------------------------------------------------------------------------

#[tokio::test]
async fn inbound_needs_twilios_signature_and_the_account() {
    let t = setup().await;
    let from = "+14155550999";
    let params = sms(
        "SM00000000000000000000000000000001",
        from,
        Some("hello"),
        &[],
    );
    let good = twilio_signature(TOKEN, &t.webhook_url(), &params);
    // One byte of the body changed after signing ("hello" → "hellp").
    let mut changed = encode(&params);
    let at = changed.windows(5).position(|w| w == b"hello").unwrap();
    changed[at + 4] = b'p';
    // Signed over another URL (the route of another integration).
    let other_url = format!("{}/channels/twilio/{}", t.s.base, uuid::Uuid::new_v4());
    let other_url_sig = twilio_signature(TOKEN, &other_url, &params);
    let cases: Vec<(&str, Option<String>, Vec<u8>)> = vec![
        ("missing", None, encode(&params)),
        ("empty", Some(String::new()), encode(&params)),
        ("not base64", Some("!!!".into()), encode(&params)),
        (
            "wrong token",
            Some(twilio_signature(
                "0123456789abcdef0123456789abcdef",
                &t.webhook_url(),
                &params,
            )),
            encode(&params),
        ),
        ("body changed", Some(good.clone()), changed),
        ("other url", Some(other_url_sig), encode(&params)),
    ];
    for (what, sig, body) in cases {
        let a = t.post_raw(sig.as_deref(), body).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}: {}", a.body);
        assert_eq!(code(&a.body), 102, "{what}: {}", a.body);
        assert!(a.body.contains("ENG000102"), "{what}: {}", a.body);
    }
    // Correctly signed with the token, but for another account.
    let foreign = sms(
        "SM00000000000000000000000000000002",
        from,
        Some("hello"),
        &[("AccountSid", "ACffffffffffffffffffffffffffffffff")],
    );
    let a = t.inbound(&foreign).await;
    assert_eq!(
        (a.status, code(&a.body)),
        (StatusCode::UNAUTHORIZED, 102),
        "{}",
        a.body
    );
    // Without AccountSid.
    let mut none = params.clone();
    none.retain(|(k, _)| k != "AccountSid");
    let a = t.inbound(&none).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    // Nothing was stored.
    let conversation = t.conversation(from).await;
    assert!(customer_activities(&t.s, &conversation, &t.agent)
        .await
        .is_empty());
    // The good signature is accepted.
    assert_twiml(&t.post_raw(Some(&good), encode(&params)).await);
    assert_eq!(
        customer_activities(&t.s, &conversation, &t.agent)
            .await
            .len(),
        1
    );
    // Signed, unparseable (no From / no MessageSid): 400/300.
    let mut no_from = sms("SM00000000000000000000000000000003", from, Some("x"), &[]);
    no_from.retain(|(k, _)| k != "From");
    let a = t.inbound(&no_from).await;
    assert_eq!(
        (a.status, code(&a.body)),
        (StatusCode::BAD_REQUEST, 300),
        "{}",
        a.body
    );
    // Bad id: 400/203.
    let (status, body) = provider_post(
        &t.s,
        "/channels/twilio/nope",
        "application/x-www-form-urlencoded",
        &[],
        b"a=b".to_vec(),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, 203),
        "{body}"
    );
}

#[tokio::test]
async fn inbound_messages_become_activities_once() {
    let t = setup().await;
    // A text, twice (Twilio retries): one activity.
    let first = sms(
        "SM10000000000000000000000000000001",
        CUSTOMER,
        Some("hello there"),
        &[],
    );
    assert_twiml(&t.inbound(&first).await);
    assert_twiml(&t.inbound(&first).await);
    // MMS: one image and a Body → one image with a caption, its URL used directly.
    let image_url = format!(
        "https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/MM20000000000000000000000000000002/Media/ME20000000000000000000000000000002"
    );
    let mms = sms(
        "MM20000000000000000000000000000002",
        CUSTOMER,
        Some("look"),
        &[
            ("NumMedia", "1"),
            ("MediaUrl0", &image_url),
            ("MediaContentType0", "image/jpeg"),
        ],
    );
    assert_twiml(&t.inbound(&mms).await);
    // A PDF without Body → one attachment.
    let pdf_url = format!(
        "https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/MM30000000000000000000000000000003/Media/ME30000000000000000000000000000003"
    );
    let pdf = sms(
        "MM30000000000000000000000000000003",
        CUSTOMER,
        Some(""),
        &[
            ("NumMedia", "1"),
            ("MediaUrl0", &pdf_url),
            ("MediaContentType0", "application/pdf"),
        ],
    );
    assert_twiml(&t.inbound(&pdf).await);

    let conversation = t.conversation(CUSTOMER).await;
    let got = customer_activities(&t.s, &conversation, &t.agent).await;
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(got[0]["message"]["type"], "text");
    assert_eq!(got[0]["message"]["text"], "hello there");
    assert_eq!(got[0]["externalId"], "SM10000000000000000000000000000001");
    assert_eq!(got[0]["sender"]["channelType"], "TwilioSMS");
    assert_eq!(got[0]["sender"]["integrationId"], t.id.as_str());
    assert_eq!(got[1]["message"]["type"], "image", "{:#}", got[1]);
    assert_eq!(got[1]["message"]["url"], image_url.as_str());
    assert_eq!(got[1]["message"]["caption"], "look");
    assert_eq!(got[1]["externalId"], "MM20000000000000000000000000000002");
    assert_eq!(got[2]["message"]["type"], "attachment", "{:#}", got[2]);
    assert_eq!(got[2]["message"]["url"], pdf_url.as_str());
    // The conversation's channel properties.
    let (_, c) =
        t.s.get(
            &format!("/api/v1/conversations/{conversation}"),
            &t.s.a.engine,
        )
        .await;
    assert_eq!(c["properties"]["channel"]["phone"], CUSTOMER, "{c}");
    assert_eq!(c["properties"]["channel"]["userId"], CUSTOMER, "{c}");
    // Inbound makes no call to Twilio.
    assert_eq!(t.fake.requests().len(), 2);
}

// ---- Outbound ----------------------------------------------------------------------------------

fn sent(fake: &Fake) -> Vec<crate::fakes::Recorded> {
    fake.to("/Messages.json")
}

#[tokio::test]
async fn agent_replies_are_sent_and_recorded_with_twilio_sids() {
    let t = setup().await;
    let conversation = t.conversation(CUSTOMER).await;
    let long = "word ".repeat(400); // 2000 characters
    let sends = [
        text("Hello from the agent"),
        json!({ "type": "message", "message": { "type": "image",
            "url": "https://example.com/shoe.png", "caption": "A red shoe" } }),
        json!({ "type": "message", "message": { "type": "location",
            "latitude": 48.85, "longitude": 2.35 } }),
        text(&long),
    ];
    for body in sends {
        let (status, b) = agent_sends(&t.s, &conversation, &t.agent, body).await;
        assert_eq!(status, StatusCode::OK, "{b}");
    }
    let list = deliveries_when(&t.s, &t.id, 4, settled).await;
    assert!(list.iter().all(|d| d["status"] == "succeeded"), "{list:#?}");
    assert!(list.iter().all(|d| d["channel"] == "TwilioSMS"));
    let calls = sent(&t.fake);
    assert_eq!(calls.len(), 5, "{calls:?}");
    assert!(t.fake.problems().is_empty(), "{:?}", t.fake.problems());
    let basic = format!("Basic {}", STANDARD.encode(format!("{ACCOUNT}:{TOKEN}")));
    for c in &calls {
        assert_eq!(
            c.path,
            format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
        );
        assert_eq!(c.header("authorization"), Some(basic.as_str()));
        assert_eq!(c.field("To").unwrap(), CUSTOMER);
        assert_eq!(c.field("From").unwrap(), PHONE);
    }
    // Text.
    assert_eq!(calls[0].field("Body").unwrap(), "Hello from the agent");
    assert_eq!(calls[0].field("MediaUrl"), None);
    // Image with MMS: MediaUrl and the caption as Body.
    assert_eq!(
        calls[1].field("MediaUrl").unwrap(),
        "https://example.com/shoe.png"
    );
    assert_eq!(calls[1].field("Body").unwrap(), "A red shoe");
    // Location: the text fallback.
    assert_eq!(
        calls[2].field("Body").unwrap(),
        "48.85,2.35\nhttps://www.openstreetmap.org/?mlat=48.85&mlon=2.35"
    );
    assert_eq!(calls[2].field("MediaUrl"), None);
    // The long text in two parts of at most 1600 characters, in order, nothing lost.
    let p1 = calls[3].field("Body").unwrap();
    let p2 = calls[4].field("Body").unwrap();
    assert!(p1.chars().count() <= twilio::BODY_LIMIT && p2.chars().count() <= twilio::BODY_LIMIT);
    assert_eq!(
        format!("{p1} {p2}").split_whitespace().count(),
        400,
        "{p1:?} / {p2:?}"
    );
    // Each delivery records the sids Twilio answered.
    let ids: Vec<Vec<String>> = list
        .iter()
        .map(|d| {
            d["providerMessageIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(
        ids.iter().map(Vec::len).collect::<Vec<_>>(),
        [1, 1, 1, 2],
        "{list:#?}"
    );
    let all: Vec<&String> = ids.iter().flatten().collect();
    // The fake hands out SM + 32 hex digits of a counter, in order of acceptance.
    let expected: Vec<String> = (1..=5).map(|i| format!("SM{i:032x}")).collect();
    assert_eq!(all, expected.iter().collect::<Vec<_>>());
}

/// SPEC 7.4.1: typing and seen events make a delivery only where the channel section maps them;
/// §7.7 maps no event for Twilio.
#[tokio::test]
async fn events_make_no_delivery() {
    let t = setup().await;
    let conversation = t.conversation(CUSTOMER).await;
    for event in ["typing_on", "typing_off", "seen"] {
        let (status, b) = agent_sends(
            &t.s,
            &conversation,
            &t.agent,
            json!({ "type": "event", "event": { "type": event } }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{b}");
    }
    // A message after them is the first and only delivery.
    agent_sends(&t.s, &conversation, &t.agent, text("after")).await;
    let list = deliveries_when(&t.s, &t.id, 1, settled).await;
    assert!(sent(&t.fake).len() == 1, "{:?}", sent(&t.fake));
    assert_eq!(list.len(), 1, "{list:#?}");
}

#[tokio::test]
async fn without_mms_media_goes_as_the_text_fallback() {
    let t = setup().await;
    let (status, body) = create(&t.s, &t.hub, "TwilioSMS", config(SMS_ONLY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["configuration"]["capabilities"]["mms"], false);
    let id = body["integrationId"].as_str().unwrap().to_owned();
    let conversation = conversation_of(&t.s, &id, CUSTOMER).await;
    let (status, b) = agent_sends(
        &t.s,
        &conversation,
        &t.agent,
        json!({ "type": "message", "message": { "type": "image",
            "url": "https://example.com/shoe.png", "caption": "A red shoe" } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    let list = deliveries_when(&t.s, &id, 1, settled).await;
    assert_eq!(list[0]["status"], "succeeded", "{list:#?}");
    let calls = sent(&t.fake);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].field("From").unwrap(), SMS_ONLY_PHONE);
    assert_eq!(calls[0].field("MediaUrl"), None);
    assert_eq!(
        calls[0].field("Body").unwrap(),
        "A red shoe\nhttps://example.com/shoe.png"
    );
    assert!(t.fake.problems().is_empty(), "{:?}", t.fake.problems());
}

#[tokio::test]
async fn a_5xx_is_retried_and_429_waits_for_retry_after() {
    let t = setup().await;
    let conversation = t.conversation(CUSTOMER).await;
    t.fake.script([Mode::ServerError]);
    agent_sends(&t.s, &conversation, &t.agent, text("one")).await;
    let list = deliveries_when(&t.s, &t.id, 1, settled).await;
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["status"], "succeeded", "{list:#?}");
    assert_eq!(list[0]["attemptCount"], 2);
    assert_eq!(list[0]["attempts"][0]["statusCode"], 500);
    assert_eq!(
        list[0]["attempts"][0]["error"],
        "Twilio 500: Internal Server Error (20500)"
    );
    assert_eq!(list[0]["providerMessageIds"].as_array().unwrap().len(), 1);
    assert_eq!(sent(&t.fake).len(), 2);

    // 429 with Retry-After: 2 → the next attempt waits at least 2 s (the schedule says 100 ms).
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
    assert_eq!(d["attempts"][0]["statusCode"], 429, "{d:#}");
    let next = millis(d["nextAttemptAt"].as_str().unwrap());
    let last = millis(d["attempts"][0]["at"].as_str().unwrap());
    assert!(next - last >= 2000, "waited {} ms: {d:#}", next - last);
    let list = deliveries_when(&t.s, &t.id, 2, settled).await;
    assert_eq!(list[1]["status"], "succeeded", "{list:#?}");
    assert_eq!(list[1]["attemptCount"], 2);
    assert!(t.fake.problems().is_empty(), "{:?}", t.fake.problems());
}

#[tokio::test]
async fn refusals_fail_at_once_with_their_notification() {
    let t = setup().await;
    // Twilio's own refusal of an invalid To (21211), permanent.
    let bad = t.conversation("12345").await;
    agent_sends(&t.s, &bad, &t.agent, text("to nowhere")).await;
    let list = deliveries_when(&t.s, &t.id, 1, settled).await;
    assert_eq!(list[0]["status"], "failed", "{list:#?}");
    assert_eq!(list[0]["attemptCount"], 1);
    assert_eq!(list[0]["attempts"][0]["statusCode"], 400);
    let last_error = list[0]["lastError"].as_str().unwrap();
    assert!(last_error.starts_with("Twilio 400: "), "{last_error}");
    assert!(last_error.contains("21211"), "{last_error}");
    let failed = notifications(&t.s, "delivery_failed").await;
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0]["description"]
            .as_str()
            .unwrap()
            .contains("Invalid 'To' Phone Number"),
        "{failed:#?}"
    );

    // Credentials refused (20003): failed at once, provider_auth_failed, not paused.
    let conversation = t.conversation(CUSTOMER).await;
    t.fake
        .script([Mode::Refuse(401, twilio::error(401, 20003, "Authenticate"))]);
    agent_sends(&t.s, &conversation, &t.agent, text("token revoked")).await;
    let list = deliveries_when(&t.s, &t.id, 2, settled).await;
    assert_eq!(list[1]["status"], "failed", "{list:#?}");
    assert_eq!(list[1]["attemptCount"], 1);
    assert_eq!(list[1]["lastError"], "Twilio 401: Authenticate (20003)");
    assert_eq!(notifications(&t.s, "provider_auth_failed").await.len(), 1);
    assert_eq!(notifications(&t.s, "delivery_failed").await.len(), 1);
    let (_, i) =
        t.s.get(&format!("/api/v1/integrations/{}", t.id), &t.s.a.portal)
            .await;
    assert_eq!(i["statusId"], 3000, "{i}");
    assert!(t.fake.problems().is_empty(), "{:?}", t.fake.problems());
}

#[tokio::test]
async fn order_holds_across_a_retry_and_parts_resume() {
    let t = setup().await;
    let conversation = t.conversation(CUSTOMER).await;
    // Two activities, the first retried once: Twilio sees first, first, second.
    t.fake.script([Mode::ServerError]);
    agent_sends(&t.s, &conversation, &t.agent, text("first")).await;
    agent_sends(&t.s, &conversation, &t.agent, text("second")).await;
    let list = deliveries_when(&t.s, &t.id, 2, settled).await;
    assert!(list.iter().all(|d| d["status"] == "succeeded"), "{list:#?}");
    let bodies: Vec<String> = sent(&t.fake)
        .iter()
        .map(|r| r.field("Body").unwrap())
        .collect();
    assert_eq!(bodies, ["first", "first", "second"]);

    // A long text whose second part fails once: the first part is not sent again.
    t.fake.script([Mode::Success, Mode::ServerError]);
    agent_sends(&t.s, &conversation, &t.agent, text(&"long ".repeat(400))).await;
    agent_sends(&t.s, &conversation, &t.agent, text("after")).await;
    let list = deliveries_when(&t.s, &t.id, 4, settled).await;
    assert_eq!(list[2]["status"], "succeeded", "{list:#?}");
    assert_eq!(list[2]["attemptCount"], 2);
    assert_eq!(list[2]["providerMessageIds"].as_array().unwrap().len(), 2);
    let bodies: Vec<String> = sent(&t.fake)
        .iter()
        .skip(3)
        .map(|r| r.field("Body").unwrap())
        .collect();
    assert_eq!(bodies.len(), 4, "{bodies:?}");
    assert_ne!(bodies[0], bodies[1]);
    assert_eq!(bodies[1], bodies[2]);
    assert_eq!(bodies[3], "after");
    assert!(t.fake.problems().is_empty(), "{:?}", t.fake.problems());
}

#[tokio::test]
async fn the_adapter_works_on_postgres() {
    if postgres_url().is_none() {
        skipped(
            "channels_twilio::the_adapter_works_on_postgres",
            "PostgreSQL",
            POSTGRES_HOW,
        );
        return;
    }
    let t = setup_on(Backend::Postgres).await;
    let params = sms(
        "SM40000000000000000000000000000004",
        CUSTOMER,
        Some("pg"),
        &[],
    );
    assert_twiml(&t.inbound(&params).await);
    assert_twiml(&t.inbound(&params).await);
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
    assert!(t.fake.problems().is_empty(), "{:?}", t.fake.problems());
}

#[tokio::test]
async fn the_signature_url_is_the_public_url_with_or_without_the_default_port() {
    let fake = twilio::start(ACCOUNT, TOKEN, numbers()).await;
    let url = fake.url.clone();
    let s = server(Backend::Sqlite, "0s", move |a| {
        a.provider_twilio_url = url;
        a.public_url = Some("https://sb.example.com".to_owned());
    })
    .await;
    let (hub, agent) = hub_with_agent(&s).await;
    let (status, body) = create(&s, &hub, "TwilioSMS", config(NUMBER)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["integrationId"].as_str().unwrap().to_owned();
    let public = format!("https://sb.example.com/channels/twilio/{id}");
    // The number's SMS URL is built from the public URL.
    assert_eq!(fake.to(".json")[1].field("SmsUrl").unwrap(), public);
    let post = |sig: String, params: &[(String, String)]| {
        s.http
            .post(s.url(&format!("/channels/twilio/{id}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", sig)
            .body(encode(params))
            .send()
    };
    // Signed over the public URL, then over it with :443 (as some of Twilio's SDKs do).
    let p1 = sms(
        "SM50000000000000000000000000000001",
        CUSTOMER,
        Some("one"),
        &[],
    );
    let resp = post(twilio_signature(TOKEN, &public, &p1), &p1)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let with_port = format!("https://sb.example.com:443/channels/twilio/{id}");
    let p2 = sms(
        "SM50000000000000000000000000000002",
        CUSTOMER,
        Some("two"),
        &[],
    );
    let resp = post(twilio_signature(TOKEN, &with_port, &p2), &p2)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Signed over the address the request really went to: not the public URL, refused.
    let p3 = sms(
        "SM50000000000000000000000000000003",
        CUSTOMER,
        Some("three"),
        &[],
    );
    let local = s.url(&format!("/channels/twilio/{id}"));
    let resp = post(twilio_signature(TOKEN, &local, &p3), &p3)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let conversation = conversation_of(&s, &id, CUSTOMER).await;
    let got = customer_activities(&s, &conversation, &agent).await;
    let texts: Vec<&Value> = got.iter().map(|a| &a["message"]["text"]).collect();
    assert_eq!(texts, [&json!("one"), &json!("two")], "{got:#?}");
}

#[tokio::test]
async fn several_media_make_one_activity_each_after_the_text() {
    let t = setup().await;
    let media = |i: u32| {
        format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/MM6/Media/ME{i}")
    };
    let (m0, m1, m2) = (media(0), media(1), media(2));
    let params = sms(
        "MM60000000000000000000000000000006",
        CUSTOMER,
        Some("three files"),
        &[
            ("NumMedia", "3"),
            ("MediaUrl0", &m0),
            ("MediaContentType0", "image/png"),
            ("MediaUrl1", &m1),
            ("MediaContentType1", "video/mp4"),
            ("MediaUrl2", &m2),
            ("MediaContentType2", "audio/ogg"),
        ],
    );
    assert_twiml(&t.inbound(&params).await);
    assert_twiml(&t.inbound(&params).await);
    let conversation = t.conversation(CUSTOMER).await;
    let got = customer_activities(&t.s, &conversation, &t.agent).await;
    let seen: Vec<(Value, Value, Value)> = got
        .iter()
        .map(|a| {
            (
                a["message"]["type"].clone(),
                a["externalId"].clone(),
                a["message"]["url"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                json!("text"),
                json!("MM60000000000000000000000000000006"),
                Value::Null
            ),
            (
                json!("image"),
                json!("MM60000000000000000000000000000006#1"),
                json!(m0)
            ),
            (
                json!("video"),
                json!("MM60000000000000000000000000000006#2"),
                json!(m1)
            ),
            (
                json!("audio"),
                json!("MM60000000000000000000000000000006#3"),
                json!(m2)
            ),
        ],
        "{got:#?}"
    );
    assert_eq!(got[0]["message"]["text"], "three files");
    // Over 1 MiB: 413/304.
    let a = t.post_raw(Some("x"), vec![b'a'; 1024 * 1024 + 1]).await;
    assert_eq!(
        (a.status, code(&a.body)),
        (StatusCode::PAYLOAD_TOO_LARGE, 304),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn rich_messages_use_mms_or_the_text_fallback_within_ten_parts() {
    let t = setup().await;
    let conversation = t.conversation(CUSTOMER).await;
    let sends = [
        // Buttons: Twilio has none, so they are lines of the text.
        json!({ "type": "message", "message": { "type": "text", "text": "Pick one",
            "actions": [ { "type": "link", "title": "Site", "url": "https://example.com" },
                         { "type": "postback", "title": "Red", "payload": "RED" } ] } }),
        // An attachment over MMS: its title as Body.
        json!({ "type": "message", "message": { "type": "attachment",
            "url": "https://example.com/terms.pdf", "title": "Terms" } }),
        // More than ten parts' worth: ten parts, the tenth ending in "…".
        text(&"0123456789 ".repeat(2000)),
    ];
    for body in sends {
        let (status, b) = agent_sends(&t.s, &conversation, &t.agent, body).await;
        assert_eq!(status, StatusCode::OK, "{b}");
    }
    let list = deliveries_when(&t.s, &t.id, 3, settled).await;
    assert!(list.iter().all(|d| d["status"] == "succeeded"), "{list:#?}");
    let calls = sent(&t.fake);
    assert_eq!(
        calls[0].field("Body").unwrap(),
        "Pick one\nSite: https://example.com\n• Red"
    );
    assert_eq!(
        calls[1].field("MediaUrl").unwrap(),
        "https://example.com/terms.pdf"
    );
    assert_eq!(calls[1].field("Body").unwrap(), "Terms");
    let parts = &calls[2..];
    assert_eq!(parts.len(), 10, "{} parts", parts.len());
    assert_eq!(list[2]["providerMessageIds"].as_array().unwrap().len(), 10);
    assert!(parts[9].field("Body").unwrap().ends_with('…'));
    assert!(t.fake.problems().is_empty(), "{:?}", t.fake.problems());
}

#[tokio::test]
async fn a_timeout_is_retried_and_an_exhausted_schedule_fails() {
    let t = setup().await;
    let conversation = t.conversation(CUSTOMER).await;
    // Slower than the 2 s timeout, then accepted.
    t.fake.script([Mode::Slow(Duration::from_secs(3))]);
    agent_sends(&t.s, &conversation, &t.agent, text("slow")).await;
    let list = deliveries_when(&t.s, &t.id, 1, settled).await;
    assert_eq!(list[0]["status"], "succeeded", "{list:#?}");
    assert_eq!(list[0]["attemptCount"], 2);
    assert_eq!(list[0]["attempts"][0]["statusCode"], Value::Null);
    // 5xx on every attempt of the schedule (4): failed, "exhausted".
    t.fake.script([
        Mode::ServerError,
        Mode::ServerError,
        Mode::ServerError,
        Mode::ServerError,
    ]);
    agent_sends(&t.s, &conversation, &t.agent, text("doomed")).await;
    let list = deliveries_when(&t.s, &t.id, 2, settled).await;
    assert_eq!(list[1]["status"], "failed", "{list:#?}");
    assert_eq!(list[1]["attemptCount"], 4);
    assert_eq!(
        list[1]["lastError"],
        "Twilio 500: Internal Server Error (20500)"
    );
    assert_eq!(notifications(&t.s, "exhausted").await.len(), 1);
    assert!(notifications(&t.s, "delivery_failed").await.is_empty());
}

#[tokio::test]
async fn a_configuration_update_is_ignored_with_a_warning_and_no_call() {
    let t = setup().await;
    let before = t.fake.requests().len();
    let mut changed = config(SMS_ONLY);
    changed["authToken"] = json!("another-token");
    let (status, headers, body) =
        t.s.call_full(
            reqwest::Method::PUT,
            &format!("/api/v1/integrations/{}", t.id),
            Some(&t.s.a.portal),
            Some(&json!({ "configuration": changed })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(headers.get("warning").is_some(), "{headers:?}");
    assert_eq!(body["configuration"]["numberSid"], NUMBER, "{body}");
    assert_eq!(body["configuration"]["phoneNumber"], PHONE, "{body}");
    assert_eq!(t.fake.requests().len(), before);
    // The old token still signs.
    let params = sms(
        "SM70000000000000000000000000000007",
        CUSTOMER,
        Some("still"),
        &[],
    );
    assert_twiml(&t.inbound(&params).await);
}
