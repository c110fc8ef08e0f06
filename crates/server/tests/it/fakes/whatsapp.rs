//! A fake of Meta's Graph API for the WhatsApp Cloud API (SPEC 7.8a, 7.21), under the version
//! segment [`VERSION`] (the server's base URL is [`WhatsAppFake::graph_url`]):
//!
//! - `GET /{phoneNumberId}?fields=display_phone_number,verified_name` → the number's details;
//! - `POST /{businessAccountId}/subscribed_apps` → `{ success: true }`;
//! - `POST /{phoneNumberId}` `{ webhook_configuration: { override_callback_uri, verify_token } }`:
//!   before answering, the fake sends the subscription handshake
//!   `GET override_callback_uri?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` and
//!   answers `{ success: true }` only when the challenge came back (else Graph's 2200
//!   "Callback verification failed");
//! - `POST /{phoneNumberId}/messages` (every message type Switchboard sends, with Meta's limits,
//!   and `status: "read"`) → `{ messaging_product, contacts, messages: [ { id: "wamid.…" } ] }`;
//! - `GET /{mediaId}` → `{ url, mime_type, sha256, file_size, id }`, the `url` being
//!   `{fake}/media-download/{id}` (standing in for Meta's media host), which answers the bytes
//!   with the same Bearer token.
//!
//! Every call needs `Authorization: Bearer {token}`; errors are Graph's
//! `{ error: { message, type, code, error_subcode?, error_data: { details }, fbtrace_id } }`.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use poem::{Endpoint, Request, Response};
use serde_json::{json, Value};

use super::{check, json, Fake, FakeEndpoint, FakeState, Mode, Recorded};

/// The Graph version segment the fake serves under.
pub const VERSION: &str = "v25.0";
/// The business phone number the token can see.
pub const PHONE_ID: &str = "106540352242922";
/// A second number of the same account (another integration, or another number's webhooks).
pub const OTHER_PHONE_ID: &str = "106540352242999";
/// The WhatsApp Business Account.
pub const WABA_ID: &str = "102290129340398";
/// What the fake answers for the numbers.
pub const DISPLAY_PHONE_NUMBER: &str = "+1 555-078-3881";
pub const VERIFIED_NAME: &str = "Switchboard Test";
/// A media id the fake knows (an image), its type and bytes.
pub const MEDIA_ID: &str = "1013859600285441";
pub const MEDIA_MIME: &str = "image/jpeg";
pub const MEDIA_BYTES: &[u8] = b"\xff\xd8\xff\xe0 fake whatsapp jpeg";
/// A media id whose lookup works but whose download is gone (the 5-minute URL expired).
pub const EXPIRED_MEDIA_ID: &str = "1013859600285999";

/// What one handshake the fake sent got back.
#[derive(Clone, Debug)]
pub struct Handshake {
    /// The URL called (with its query).
    pub url: String,
    pub challenge: String,
    /// Switchboard's status and body (`None`: no answer).
    pub status: Option<u16>,
    pub body: String,
}

impl Handshake {
    /// Whether Switchboard echoed the challenge.
    pub fn echoed(&self) -> bool {
        self.status == Some(200) && self.body == self.challenge
    }
}

/// What the WhatsApp fake keeps beside the framework's state.
#[derive(Default)]
pub struct Extra {
    pub handshakes: Mutex<Vec<Handshake>>,
    /// When set, the handshake sends this verify token instead of the one registered (a
    /// Switchboard that checks it then refuses, and the override fails like Meta's).
    pub tamper_verify_token: Mutex<Option<String>>,
    /// When set, a signed webhook (body, `X-Hub-Signature-256`) the fake also POSTs to the
    /// callback URL while the override is being answered (the integration is still pending);
    /// Switchboard's answers are kept in `probe_answers`.
    pub probe: Mutex<Option<(Vec<u8>, String)>>,
    pub probe_answers: Mutex<Vec<(u16, String)>>,
}

/// The fake with its handshakes.
pub struct WhatsAppFake {
    pub fake: Fake,
    pub extra: Arc<Extra>,
}

impl Deref for WhatsAppFake {
    type Target = Fake;
    fn deref(&self) -> &Fake {
        &self.fake
    }
}

impl WhatsAppFake {
    /// The base URL to give the server (`SWITCHBOARD_PROVIDER_WHATSAPP_URL`).
    pub fn graph_url(&self) -> String {
        format!("{}/{VERSION}", self.fake.url)
    }

    /// The handshakes sent so far.
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.extra.handshakes.lock().unwrap().clone()
    }

    /// The message calls (`POST /{phoneNumberId}/messages`) so far, as JSON.
    pub fn messages(&self) -> Vec<Value> {
        self.fake
            .to("/messages")
            .iter()
            .map(Recorded::json)
            .collect()
    }
}

tokio::task_local! {
    /// The outcome of the handshake sent for the request being answered.
    static HANDSHAKE: Option<Handshake>;
}

/// Sends the handshake of an override request before the framework answers it.
struct HandshakingEndpoint {
    inner: FakeEndpoint,
    extra: Arc<Extra>,
    http: reqwest::Client,
}

impl Endpoint for HandshakingEndpoint {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let body = req.take_body().into_vec().await.unwrap_or_default();
        let mut handshake = None;
        let is_override = req.method() == poem::http::Method::POST
            && req
                .uri()
                .path()
                .strip_prefix(&format!("/{VERSION}/"))
                .is_some_and(|id| !id.is_empty() && !id.contains('/'));
        if is_override {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let w = &v["webhook_configuration"];
            if let (Some(uri), Some(token)) = (
                w["override_callback_uri"].as_str(),
                w["verify_token"].as_str(),
            ) {
                let token = self
                    .extra
                    .tamper_verify_token
                    .lock()
                    .unwrap()
                    .clone()
                    .unwrap_or_else(|| token.to_owned());
                handshake = Some(self.handshake(uri, &token).await);
                let probe = self.extra.probe.lock().unwrap().clone();
                if let Some((body, signature)) = probe {
                    let answer = match self
                        .http
                        .post(uri)
                        .header("content-type", "application/json")
                        .header("x-hub-signature-256", signature)
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                        Err(e) => (0, e.to_string()),
                    };
                    self.extra.probe_answers.lock().unwrap().push(answer);
                }
            }
        }
        if let Some(h) = &handshake {
            self.extra.handshakes.lock().unwrap().push(h.clone());
        }
        req.set_body(body);
        HANDSHAKE.scope(handshake, self.inner.call(req)).await
    }
}

impl HandshakingEndpoint {
    async fn handshake(&self, uri: &str, token: &str) -> Handshake {
        let challenge = format!("{}", rand::random::<u32>());
        let mut url = match url::Url::parse(uri) {
            Ok(u) => u,
            Err(_) => {
                return Handshake {
                    url: uri.to_owned(),
                    challenge,
                    status: None,
                    body: "not a URL".into(),
                }
            }
        };
        url.query_pairs_mut()
            .append_pair("hub.mode", "subscribe")
            .append_pair("hub.verify_token", token)
            .append_pair("hub.challenge", &challenge);
        let (status, body) = match self.http.get(url.clone()).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (Some(status), r.text().await.unwrap_or_default())
            }
            Err(e) => (None, e.to_string()),
        };
        Handshake {
            url: url.to_string(),
            challenge,
            status,
            body,
        }
    }
}

/// The media the fake serves: id → (MIME type, bytes).
type Media = Mutex<HashMap<String, (String, Vec<u8>)>>;

/// A fake Graph API for the system-user `token`.
pub async fn start(token: &str) -> WhatsAppFake {
    let token = token.to_owned();
    let media: Arc<Media> = Arc::new(Mutex::new(
        [
            (
                MEDIA_ID.to_owned(),
                (MEDIA_MIME.to_owned(), MEDIA_BYTES.to_vec()),
            ),
            (
                EXPIRED_MEDIA_ID.to_owned(),
                (MEDIA_MIME.to_owned(), MEDIA_BYTES.to_vec()),
            ),
        ]
        .into_iter()
        .collect(),
    ));
    let handler: super::Handler = Arc::new(move |r: &Recorded, mode: &Mode, s: &FakeState| {
        answer(&token, &media, r, mode, s)
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(FakeState::default());
    *state.url.lock().unwrap() = url.clone();
    let extra = Arc::new(Extra::default());
    let endpoint = HandshakingEndpoint {
        inner: FakeEndpoint {
            state: state.clone(),
            handler,
        },
        extra: extra.clone(),
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap(),
    };
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let handle = tokio::spawn(async move {
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        let _ = poem::Server::new_with_acceptor(acceptor)
            .run(endpoint)
            .await;
    });
    WhatsAppFake {
        fake: Fake { url, state, handle },
        extra,
    }
}

/// A Graph error body.
pub fn error_body(code: i64, subcode: Option<i64>, message: &str, details: &str) -> Value {
    let mut e = json!({ "message": message, "type": "OAuthException", "code": code,
        "error_data": { "messaging_product": "whatsapp", "details": details },
        "fbtrace_id": "AbCdEfGhIjKlMnOpQrStUvW" });
    if let Some(sub) = subcode {
        e["error_subcode"] = json!(sub);
    }
    json!({ "error": e })
}

/// Graph's answer to a token it does not accept (190, HTTP 401).
pub fn invalid_token() -> Value {
    error_body(
        190,
        None,
        "Invalid OAuth access token - Cannot parse access token",
        "Invalid OAuth access token",
    )
}

/// Graph's answer to an id the token cannot see (100/33, HTTP 400).
pub fn unknown_object(id: &str) -> Value {
    error_body(
        100,
        Some(33),
        &format!("Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."),
        "Unsupported request",
    )
}

/// Graph's "Re-engagement message" refusal (outside the window).
pub fn outside_window() -> Value {
    error_body(
        131_047,
        None,
        "(#131047) Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
    )
}

/// Graph's "Message undeliverable".
pub fn undeliverable() -> Value {
    error_body(
        131_026,
        None,
        "(#131026) Message undeliverable",
        "Message Undeliverable.",
    )
}

fn problem_if(cond: bool, what: impl Into<String>) -> Result<(), String> {
    check(!cond, what)
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

fn non_empty(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.trim().is_empty())
}

fn is_url(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
}

fn answer(
    token: &str,
    media: &Media,
    r: &Recorded,
    mode: &Mode,
    s: &FakeState,
) -> Result<Response, String> {
    let bearer = r.header("authorization").unwrap_or_default();
    let authorized = bearer.strip_prefix("Bearer ") == Some(token);
    // The media host (Meta's lookaside.fbsbx.com in production).
    if let Some(id) = r.path.strip_prefix("/media-download/") {
        check(r.method == "GET", "media downloads are GET")?;
        if !authorized {
            return Ok(json(401, invalid_token()));
        }
        if id == EXPIRED_MEDIA_ID {
            return Ok(Response::builder()
                .status(poem::http::StatusCode::NOT_FOUND)
                .body("URL signature expired"));
        }
        let Some((mime, bytes)) = media.lock().unwrap().get(id).cloned() else {
            return Ok(Response::builder()
                .status(poem::http::StatusCode::NOT_FOUND)
                .body(""));
        };
        return Ok(Response::builder().content_type(mime).body(bytes));
    }
    let Some(rest) = r.path.strip_prefix(&format!("/{VERSION}/")) else {
        return Err(format!(
            "not under the Graph version /{VERSION}: {}",
            r.path
        ));
    };
    check(
        !r.query.contains("access_token"),
        "the token goes in the Authorization header, not the query",
    )?;
    if !authorized {
        return Ok(json(401, invalid_token()));
    }
    match mode {
        Mode::Refuse(status, body) => return Ok(json(*status, body.clone())),
        Mode::ServerError => {
            return Ok(json(
                500,
                error_body(
                    1,
                    None,
                    "An unknown error has occurred.",
                    "An unknown error has occurred.",
                ),
            ))
        }
        Mode::RateLimited(secs) => {
            let mut resp = json(
                429,
                error_body(
                    130_429,
                    None,
                    "(#130429) Rate limit hit",
                    "Cloud API message throughput has been reached.",
                ),
            );
            // Graph documents no wait hint; the fake sends the standard header so the server's
            // handling of one can be seen.
            resp.headers_mut()
                .insert("retry-after", secs.to_string().parse().unwrap());
            return Ok(resp);
        }
        Mode::Success | Mode::Slow(_) => {}
    }
    let segments: Vec<&str> = rest.split('/').collect();
    match (r.method.as_str(), segments.as_slice()) {
        ("GET", [id]) if r.query_param("fields").is_some() => {
            let fields = r.query_param("fields").unwrap_or_default();
            let fields: Vec<&str> = fields.split(',').collect();
            check(
                fields.contains(&"display_phone_number") && fields.contains(&"verified_name"),
                "the number's fields are display_phone_number and verified_name",
            )?;
            if *id != PHONE_ID && *id != OTHER_PHONE_ID {
                return Ok(json(400, unknown_object(id)));
            }
            Ok(json(
                200,
                json!({ "display_phone_number": DISPLAY_PHONE_NUMBER,
                        "verified_name": VERIFIED_NAME, "id": id }),
            ))
        }
        ("GET", [id]) => {
            let Some((mime, bytes)) = media.lock().unwrap().get(*id).cloned() else {
                return Ok(json(400, unknown_object(id)));
            };
            Ok(json(
                200,
                json!({ "url": format!("{}/media-download/{id}", s.url.lock().unwrap()),
                        "mime_type": mime,
                        "sha256": "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
                        "file_size": bytes.len(), "id": id,
                        "messaging_product": "whatsapp" }),
            ))
        }
        ("POST", [account, "subscribed_apps"]) => {
            if *account != WABA_ID {
                return Ok(json(400, unknown_object(account)));
            }
            Ok(json(200, json!({ "success": true })))
        }
        ("POST", [phone]) => {
            json_body(r)?;
            let body = r.json();
            let w = &body["webhook_configuration"];
            check(
                w.is_object(),
                "a phone number update has webhook_configuration",
            )?;
            check(
                is_url(&w["override_callback_uri"]),
                "override_callback_uri is an http(s) URL",
            )?;
            check(non_empty(&w["verify_token"]), "verify_token is not empty")?;
            if *phone != PHONE_ID && *phone != OTHER_PHONE_ID {
                return Ok(json(400, unknown_object(phone)));
            }
            let handshake = HANDSHAKE.try_with(Clone::clone).ok().flatten();
            match handshake {
                Some(h) if h.echoed() => Ok(json(200, json!({ "success": true }))),
                Some(h) => Ok(json(
                    400,
                    error_body(
                        2200,
                        None,
                        &format!(
                            "(#2200) Callback verification failed with the following errors: HTTP Status Code = {}; HTTP Message = {}",
                            h.status.map_or("none".to_owned(), |s| s.to_string()),
                            h.body.chars().take(80).collect::<String>()
                        ),
                        "Callback verification failed",
                    ),
                )),
                None => Err("no handshake could be sent".into()),
            }
        }
        ("POST", [phone, "messages"]) => {
            json_body(r)?;
            if *phone != PHONE_ID && *phone != OTHER_PHONE_ID {
                return Ok(json(400, unknown_object(phone)));
            }
            message(&r.json(), s)
        }
        (m, _) => Err(format!("no Graph call {m} {rest}")),
    }
}

fn json_body(r: &Recorded) -> Result<(), String> {
    check(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "the body is JSON (Content-Type application/json)",
    )?;
    check(r.json().is_object(), "the body is a JSON object")
}

/// Checks a `/messages` body as the Cloud API does, and answers its success shape.
fn message(b: &Value, s: &FakeState) -> Result<Response, String> {
    check(
        b["messaging_product"] == "whatsapp",
        "messaging_product is \"whatsapp\"",
    )?;
    if b.get("status").is_some() {
        // Mark as read (and typing indicator).
        check(b["status"] == "read", "status is \"read\"")?;
        check(
            b["message_id"]
                .as_str()
                .is_some_and(|m| m.starts_with("wamid.")),
            "message_id is a wamid",
        )?;
        if let Some(t) = b.get("typing_indicator") {
            check(t["type"] == "text", "typing_indicator.type is \"text\"")?;
        }
        problem_if(
            b.get("to").is_some() || b.get("type").is_some(),
            "a read receipt has no to or type",
        )?;
        return Ok(json(200, json!({ "success": true })));
    }
    if let Some(t) = b.get("recipient_type") {
        check(t == "individual", "recipient_type is \"individual\"")?;
    }
    let (to, wa) = match (b.get("to"), b.get("recipient")) {
        (Some(to), None) => {
            check(
                to.as_str().is_some_and(|t| {
                    let d = t.strip_prefix('+').unwrap_or(t);
                    !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())
                }),
                "to is a phone number",
            )?;
            (to.clone(), "wa_id")
        }
        (None, Some(rec)) => {
            check(
                rec.as_str().is_some_and(|t| {
                    t.split_once('.').is_some_and(|(country, rest)| {
                        country.len() == 2
                            && country.bytes().all(|c| c.is_ascii_uppercase())
                            && (1..=128).contains(&rest.len())
                            && rest.bytes().all(|c| c.is_ascii_alphanumeric())
                    })
                }),
                "recipient is a business-scoped user id (country code, dot, alphanumerics)",
            )?;
            (rec.clone(), "user_id")
        }
        _ => return Err("exactly one of to and recipient".into()),
    };
    let kind = b["type"].as_str().unwrap_or("text");
    let v = &b[kind];
    check(v.is_object(), format!("the message has a {kind} object"))?;
    match kind {
        "text" => {
            check(non_empty(&v["body"]), "text.body is not empty")?;
            check(
                chars(&v["body"]) <= 4096,
                "text.body is at most 4096 characters",
            )?;
        }
        "image" | "video" | "audio" | "document" | "sticker" => {
            check(
                is_url(&v["link"]) || non_empty(&v["id"]),
                format!("{kind} has a link or an id"),
            )?;
            if let Some(c) = v.get("caption") {
                check(
                    kind != "audio" && kind != "sticker",
                    format!("{kind} takes no caption"),
                )?;
                check(chars(c) <= 1024, "a caption is at most 1024 characters")?;
            }
            if v.get("filename").is_some() {
                check(kind == "document", "only a document has a filename")?;
            }
        }
        "location" => check(
            v["latitude"].is_number() && v["longitude"].is_number(),
            "location has numeric latitude and longitude",
        )?,
        "interactive" => interactive(v)?,
        "template" => {
            check(non_empty(&v["name"]), "template.name is not empty")?;
            check(
                non_empty(&v["language"]["code"]),
                "template.language.code is not empty",
            )?;
            if let Some(components) = v.get("components") {
                let components = components.as_array().ok_or("components is an array")?;
                for c in components {
                    check(
                        matches!(c["type"].as_str(), Some("header" | "body" | "button")),
                        "a component's type is header, body or button",
                    )?;
                    for p in c["parameters"].as_array().ok_or("parameters is an array")? {
                        check(p["type"] == "text", "a parameter is text")?;
                        let text = p["text"].as_str().unwrap_or_default();
                        check(!text.trim().is_empty(), "a text parameter is not empty")?;
                        check(
                            !text.contains(['\n', '\t']) && !text.contains("     "),
                            "Param text cannot have new-line/tab characters or more than 4 consecutive spaces",
                        )?;
                    }
                }
            }
        }
        other => return Err(format!("the fake does not know type {other}")),
    }
    let id = format!("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI{:016X}", s.id());
    Ok(json(
        200,
        json!({ "messaging_product": "whatsapp",
                "contacts": [ { "input": to, wa: to.as_str().unwrap_or_default().trim_start_matches('+') } ],
                "messages": [ { "id": id } ] }),
    ))
}

fn interactive(v: &Value) -> Result<(), String> {
    let body = &v["body"]["text"];
    check(non_empty(body), "interactive.body.text is not empty")?;
    check(
        chars(body) <= 1024,
        "interactive.body.text is at most 1024 characters",
    )?;
    if let Some(h) = v.get("header") {
        check(
            h["type"] == "image" && is_url(&h["image"]["link"]),
            "the header is an image with a link",
        )?;
    }
    let action = &v["action"];
    let unique = |ids: &[&str]| {
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        sorted.len() == ids.len()
    };
    match v["type"].as_str() {
        Some("button") => {
            let buttons = action["buttons"]
                .as_array()
                .ok_or("action.buttons is an array")?;
            check((1..=3).contains(&buttons.len()), "1 to 3 reply buttons")?;
            let mut ids = Vec::new();
            for b in buttons {
                check(b["type"] == "reply", "a button's type is reply")?;
                let id = b["reply"]["id"].as_str().unwrap_or_default();
                check(
                    !id.is_empty() && id.chars().count() <= 256,
                    "a button id is 1-256 characters",
                )?;
                let title = &b["reply"]["title"];
                check(
                    non_empty(title) && chars(title) <= 20,
                    "a button title is 1-20 characters",
                )?;
                ids.push(id);
            }
            check(unique(&ids), "button ids are unique")?;
        }
        Some("list") => {
            check(v.get("header").is_none(), "a list has no image header")?;
            let button = &action["button"];
            check(
                non_empty(button) && chars(button) <= 20,
                "the list's button is 1-20 characters",
            )?;
            let sections = action["sections"]
                .as_array()
                .ok_or("action.sections is an array")?;
            check((1..=10).contains(&sections.len()), "1 to 10 sections")?;
            let rows: Vec<&Value> = sections
                .iter()
                .flat_map(|s| s["rows"].as_array().into_iter().flatten())
                .collect();
            check((1..=10).contains(&rows.len()), "1 to 10 rows in all")?;
            if sections.len() > 1 {
                check(
                    sections.iter().all(|s| non_empty(&s["title"])),
                    "several sections each have a title",
                )?;
            }
            let mut ids = Vec::new();
            for row in rows {
                let id = row["id"].as_str().unwrap_or_default();
                check(
                    !id.is_empty() && id.chars().count() <= 200,
                    "a row id is 1-200 characters",
                )?;
                check(
                    non_empty(&row["title"]) && chars(&row["title"]) <= 24,
                    "a row title is 1-24 characters",
                )?;
                if let Some(d) = row.get("description") {
                    check(chars(d) <= 72, "a row description is at most 72 characters")?;
                }
                ids.push(id);
            }
            check(unique(&ids), "row ids are unique")?;
        }
        Some("cta_url") => {
            check(action["name"] == "cta_url", "action.name is cta_url")?;
            let p = &action["parameters"];
            check(
                non_empty(&p["display_text"]) && chars(&p["display_text"]) <= 20,
                "display_text is 1-20 characters",
            )?;
            check(is_url(&p["url"]), "the cta url is an http(s) URL")?;
        }
        other => {
            return Err(format!(
                "interactive type {other:?} is not one Switchboard sends"
            ))
        }
    }
    Ok(())
}
