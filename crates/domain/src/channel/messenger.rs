//! The Messenger adapter (SPEC 7.8): Page webhooks in, the Send API out, `/me` and
//! `subscribed_apps` for provisioning. The handshake and signature are Meta's shared ones
//! ([`super::meta`]).

use serde_json::{json, Map, Value};

use super::adapter::{
    config_str, Adapter, Answer, HttpMethod, Inbound, InboundError, InboundItem, InboundRequest,
    MediaLinker, Outcome, ProviderAuth, ProviderRequest, ProviderResponse, ProvisionError,
    Rendered, RequestBody, SendContext,
};
use super::meta::{self, encode, GraphError};
use super::parts::{self, MediaKind};
use super::render;
use crate::activity::{
    Action, Event, Item, MediaMessage, Message, Payload, PayloadAction, SenderRole,
};
use crate::time::Millis;

/// Characters per text message **[unconfirmed]** (SPEC 7.8).
pub const TEXT_LIMIT: usize = 2000;
/// Quick replies per message (SPEC 7.8).
pub const QUICK_REPLIES_MAX: usize = 13;
/// Buttons of a button template or of one generic template element (SPEC 7.8).
pub const BUTTONS_MAX: usize = 3;
/// Elements of one generic template (SPEC 7.8); more items go in further messages.
pub const ELEMENTS_MAX: usize = 10;
/// Characters of a button template's `text`: Meta's documented limit, not in SPEC 7.8
/// **[unconfirmed]**. A longer text is sent as the text fallback (actions as lines) instead of
/// a template Meta would refuse.
pub const BUTTON_TEXT_LIMIT: usize = 640;
/// The user profile fields asked for a new conversation **[unconfirmed: field availability
/// depends on app permissions]**.
pub const PROFILE_FIELDS: &str = "first_name,last_name,profile_pic";
/// The fields `register` subscribes the Page to **[unconfirmed: exact fields list]**.
pub const SUBSCRIBED_FIELDS: &str = "messages,messaging_postbacks,message_reads";

/// The standard messaging window: the customer's last activity is at most this old.
const STANDARD_WINDOW_MS: Millis = 24 * 60 * 60 * 1000;
/// The `HUMAN_AGENT` tag's window for Agent senders.
const HUMAN_AGENT_WINDOW_MS: Millis = 7 * STANDARD_WINDOW_MS;

/// Graph error codes that are retried (1, 2 temporary; 4, 17, 32, 613 rate limits).
const RETRY_CODES: &[i64] = &[1, 2, 4, 17, 32, 613];
/// Graph error codes that mean the token was refused.
const CREDENTIAL_CODES: &[i64] = &[190];
/// Code 10 with this subcode: outside the messaging window (permanent).
const OUTSIDE_WINDOW_SUBCODE: i64 = 2_018_278;
/// Graph error codes that are permanent even under HTTP 401/403.
const PERMANENT_CODES: &[i64] = &[551, 100];

/// The Messenger adapter.
pub struct Messenger;

impl Adapter for Messenger {
    fn provider(&self) -> &'static str {
        "Messenger"
    }

    /// SPEC 7.4.1: the events this channel maps.
    fn delivers_event(&self, event: &crate::activity::Event) -> bool {
        use crate::activity::Event;
        matches!(event, Event::TypingOn | Event::TypingOff | Event::Seen)
    }

    fn verify(
        &self,
        configuration: &Map<String, Value>,
        app_secret: Option<&str>,
        request: &InboundRequest<'_>,
    ) -> bool {
        meta::verify(configuration, app_secret, request)
    }

    fn handshake(
        &self,
        configuration: &Map<String, Value>,
        query: &str,
    ) -> Option<Result<Answer, ()>> {
        Some(meta::handshake(configuration, query).ok_or(()))
    }

    fn parse(
        &self,
        configuration: &Map<String, Value>,
        request: &InboundRequest<'_>,
        _media: MediaLinker<'_>,
    ) -> Result<Inbound, InboundError> {
        parse(configuration, request.body)
    }

    fn answer(&self) -> Answer {
        Answer {
            status: 200,
            content_type: "text/plain",
            body: "EVENT_RECEIVED".to_owned(),
        }
    }

    fn profile(&self, body: &[u8]) -> Map<String, Value> {
        profile(body)
    }

    fn render(&self, context: &SendContext<'_>, payload: &Payload) -> Rendered {
        render_payload(context, payload)
    }

    fn outcome(&self, response: &ProviderResponse<'_>) -> Outcome {
        outcome(response)
    }

    fn verify_credentials(&self, configuration: &Map<String, Value>) -> Option<ProviderRequest> {
        Some(ProviderRequest::new(
            HttpMethod::Get,
            format!(
                "/me?fields=id,name&access_token={}",
                encode(token(configuration))
            ),
            ProviderAuth::None,
            RequestBody::None,
            "verify",
        ))
    }

    fn learn(
        &self,
        configuration: &Map<String, Value>,
        response: &ProviderResponse<'_>,
    ) -> Result<Map<String, Value>, ProvisionError> {
        learn(configuration, response)
    }

    fn register(&self, configuration: &Map<String, Value>, _url: &str) -> Vec<ProviderRequest> {
        vec![ProviderRequest::new(
            HttpMethod::Post,
            format!(
                "/{}/subscribed_apps?subscribed_fields={SUBSCRIBED_FIELDS}&access_token={}",
                encode(page(configuration)),
                encode(token(configuration))
            ),
            ProviderAuth::None,
            RequestBody::None,
            "register",
        )]
    }

    fn registered(&self, response: &ProviderResponse<'_>) -> Result<(), ProvisionError> {
        meta::registered("Messenger", response)
    }
}

/// The configuration's `pageAccessToken` (empty when absent: Meta refuses it).
fn token(configuration: &Map<String, Value>) -> &str {
    config_str(configuration, "pageAccessToken").unwrap_or_default()
}

/// The configured `pageId`, `me` (the token's own Page) when unknown (offline mode).
fn page(configuration: &Map<String, Value>) -> &str {
    config_str(configuration, "pageId")
        .filter(|p| !p.is_empty())
        .unwrap_or("me")
}

// ---------------------------------------------------------------------------------------------
// Inbound

fn parse(configuration: &Map<String, Value>, body: &[u8]) -> Result<Inbound, InboundError> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| InboundError::Unparseable(format!("the body is not JSON: {e}")))?;
    if root.get("object").and_then(Value::as_str) != Some("page") {
        return Ok(Inbound::default());
    }
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| InboundError::Unparseable("`entry` is not an array".to_owned()))?;
    // Without a known pageId (offline mode) every entry of the signed call is read.
    let page_id = config_str(configuration, "pageId").filter(|p| !p.is_empty());
    let mut inbound = Inbound::default();
    for entry in entries {
        let id = id_string(entry.get("id"));
        if page_id.is_some_and(|p| id.as_deref() != Some(p)) {
            continue;
        }
        let Some(events) = entry.get("messaging").and_then(Value::as_array) else {
            continue;
        };
        for event in events {
            inbound.items.extend(messaging_items(event));
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for item in &inbound.items {
        if !seen.contains(&item.binding.as_str()) {
            seen.push(&item.binding);
        }
    }
    inbound.profile_requests = seen
        .into_iter()
        .map(|psid| (psid.to_owned(), profile_request(configuration, psid)))
        .collect();
    Ok(inbound)
}

/// A Graph id given as a string or a number.
fn id_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The activities of one `messaging[]` event.
fn messaging_items(event: &Value) -> Vec<InboundItem> {
    let Some(sender) = id_string(event.get("sender").and_then(|s| s.get("id"))) else {
        return Vec::new();
    };
    let timestamp = id_string(event.get("timestamp")).unwrap_or_default();
    let item = |external_id: String, payload: Payload| InboundItem {
        binding: sender.clone(),
        external_id,
        payload,
        properties: parts::properties(&sender, None, None, None, &[]),
        existing_only: false,
    };
    if let Some(message) = event.get("message") {
        if message.get("is_echo").and_then(Value::as_bool) == Some(true) {
            return Vec::new();
        }
        let mid = id_string(message.get("mid")).unwrap_or_else(|| format!("{sender}:{timestamp}"));
        let messages = message_parts(message);
        let ids = parts::external_ids(&mid, messages.len());
        return ids
            .into_iter()
            .zip(messages)
            .map(|(id, m)| item(id, Payload::Message(m)))
            .collect();
    }
    if let Some(postback) = event.get("postback") {
        let mid = id_string(postback.get("mid"))
            .unwrap_or_else(|| format!("postback:{sender}:{timestamp}"));
        let payload = postback
            .get("payload")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return vec![item(
            mid,
            Payload::Event(Event::Payload {
                payload_type: "postback".to_owned(),
                payload: Value::String(payload.to_owned()),
            }),
        )];
    }
    if let Some(read) = event.get("read") {
        // A read receipt has no id of its own: the reader and the watermark make one.
        let watermark = id_string(read.get("watermark")).unwrap_or(timestamp);
        return vec![item(
            format!("read:{sender}:{watermark}"),
            Payload::Event(Event::Seen),
        )];
    }
    // `delivery`, and every other event (optins, referrals, reactions, …): ignored.
    Vec::new()
}

/// The messages of one provider message (SPEC 7.3.4): its text (a quick reply's text is its
/// label) and its attachments.
fn message_parts(message: &Value) -> Vec<Message> {
    let text = message
        .get("text")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            message
                .get("quick_reply")
                .and_then(|q| q.get("payload"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    let media = message
        .get("attachments")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(attachment).collect())
        .unwrap_or_default();
    parts::messages(text, media)
}

/// One `attachments[]` entry.
fn attachment(a: &Value) -> Message {
    let kind = a.get("type").and_then(Value::as_str).unwrap_or("unknown");
    let payload = a.get("payload");
    let str_of = |v: Option<&Value>, k: &str| {
        v.and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let url = str_of(payload, "url");
    let media_kind = match kind {
        "image" => Some(MediaKind::Image),
        "video" => Some(MediaKind::Video),
        "audio" => Some(MediaKind::Audio),
        "file" => Some(MediaKind::Attachment),
        _ => None,
    };
    if let (Some(k), Some(url)) = (media_kind, url.clone()) {
        let title = str_of(payload, "title").or_else(|| str_of(Some(a), "title"));
        return parts::media(k, url, title.filter(|_| k == MediaKind::Attachment));
    }
    match kind {
        "location" => {
            let c = payload.and_then(|p| p.get("coordinates"));
            let num = |k: &str| c.and_then(|c| c.get(k)).and_then(Value::as_f64);
            match (num("lat"), num("long")) {
                (Some(lat), Some(long)) => parts::location(lat, long, None),
                _ => parts::not_supported(kind),
            }
        }
        "fallback" => {
            let url = url.or_else(|| str_of(Some(a), "url"));
            let title = str_of(Some(a), "title").or_else(|| str_of(payload, "title"));
            let text = match (title, url) {
                (Some(t), Some(u)) => format!("{t}\n{u}"),
                (Some(t), None) => t,
                (None, Some(u)) => u,
                (None, None) => return parts::not_supported(kind),
            };
            Message::text(text).convert_url_text()
        }
        _ => parts::not_supported(kind),
    }
}

/// `GET /{psid}?fields=first_name,last_name,profile_pic&access_token=…`.
fn profile_request(configuration: &Map<String, Value>, psid: &str) -> ProviderRequest {
    ProviderRequest::new(
        HttpMethod::Get,
        format!(
            "/{}?fields={PROFILE_FIELDS}&access_token={}",
            encode(psid),
            encode(token(configuration))
        ),
        ProviderAuth::None,
        RequestBody::None,
        "profile",
    )
}

/// `{ profile: { "full name", avatar } }` from a user profile answer; empty when it has none.
fn profile(body: &[u8]) -> Map<String, Value> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Map::new();
    };
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let name = [field("first_name"), field("last_name")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let mut profile = Map::new();
    if !name.is_empty() {
        profile.insert("full name".to_owned(), Value::String(name));
    }
    if let Some(pic) = field("profile_pic") {
        profile.insert("avatar".to_owned(), Value::String(pic.to_owned()));
    }
    let mut out = Map::new();
    if !profile.is_empty() {
        out.insert("profile".to_owned(), Value::Object(profile));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Outbound

/// `messaging_type` and `tag` (SPEC 7.8): `RESPONSE` within 24 h of the customer's last
/// activity; an Agent between 24 h and 7 days: `MESSAGE_TAG` + `HUMAN_AGENT`; otherwise
/// `RESPONSE` (Meta refuses it, permanently).
pub fn messaging_type(context: &SendContext<'_>) -> (&'static str, Option<&'static str>) {
    let Some(last) = context.last_customer_activity else {
        return ("RESPONSE", None);
    };
    let age = context.now.saturating_sub(last);
    if age > STANDARD_WINDOW_MS
        && age <= HUMAN_AGENT_WINDOW_MS
        && context.sender == SenderRole::Agent
    {
        ("MESSAGE_TAG", Some("HUMAN_AGENT"))
    } else {
        ("RESPONSE", None)
    }
}

fn render_payload(context: &SendContext<'_>, payload: &Payload) -> Rendered {
    let message = match payload {
        Payload::Message(m) => m,
        Payload::Event(e) => {
            let action = match e {
                Event::TypingOn => "typing_on",
                Event::TypingOff => "typing_off",
                Event::Seen => "mark_seen",
                _ => return Rendered::Nothing,
            };
            return Rendered::Parts(vec![send(context, "sender_action", json!(action))]);
        }
    };
    let messages = render_message(message);
    if messages.is_empty() {
        return Rendered::Nothing;
    }
    Rendered::Parts(
        messages
            .into_iter()
            .map(|m| send(context, "message", m))
            .collect(),
    )
}

/// One Send API call: `{ recipient: { id }, messaging_type, tag?, <key>: value }`.
fn send(context: &SendContext<'_>, key: &str, value: Value) -> ProviderRequest {
    let (messaging_type, tag) = messaging_type(context);
    let mut body = Map::new();
    body.insert("recipient".to_owned(), json!({ "id": context.binding }));
    body.insert("messaging_type".to_owned(), json!(messaging_type));
    if let Some(tag) = tag {
        body.insert("tag".to_owned(), json!(tag));
    }
    body.insert(key.to_owned(), value);
    ProviderRequest::new(
        HttpMethod::Post,
        format!(
            "/{}/messages?access_token={}",
            encode(page(context.configuration)),
            encode(token(context.configuration))
        ),
        ProviderAuth::None,
        RequestBody::Json(Value::Object(body)),
        "send",
    )
}

/// The Send API `message` objects of one message, in order.
fn render_message(message: &Message) -> Vec<Value> {
    match message {
        Message::Text(t) => {
            let actions = t.actions.as_deref().unwrap_or_default();
            with_actions(message, actions).unwrap_or_else(|| fallback(message))
        }
        Message::Image(m) => media("image", m),
        Message::Video(m) => media("video", m),
        Message::Audio(m) => media("audio", m),
        Message::Attachment(m) => media("file", m),
        Message::Card(item) => {
            generic(std::slice::from_ref(item)).unwrap_or_else(|| fallback(message))
        }
        Message::Carousel(items) | Message::List(items) => {
            generic(&items.items).unwrap_or_else(|| fallback(message))
        }
        Message::Location(_) | Message::Contact(_) | Message::Youtube(_) | Message::Vimeo(_) => {
            fallback(message)
        }
    }
}

/// The text fallback without buttons, split into text messages.
fn fallback(message: &Message) -> Vec<Value> {
    texts(&render::text_fallback(message, false))
}

fn texts(text: &str) -> Vec<Value> {
    render::split(text, TEXT_LIMIT)
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| json!({ "text": p }))
        .collect()
}

/// A text with its actions as quick replies (`reply`) and a button template (`link`,
/// `postback`); `None` when they do not fit (the caller sends the text fallback).
fn with_actions(message: &Message, actions: &[Action]) -> Option<Vec<Value>> {
    if actions.is_empty() {
        return None;
    }
    let (replies, buttons) = split_actions(actions);
    if replies.len() > QUICK_REPLIES_MAX || buttons.len() > BUTTONS_MAX {
        return None;
    }
    let text = render::text_fallback(message, true);
    if text.trim().is_empty() {
        return None;
    }
    let mut out = if buttons.is_empty() {
        texts(&text)
    } else {
        if text.chars().count() > BUTTON_TEXT_LIMIT {
            return None;
        }
        vec![json!({ "attachment": { "type": "template", "payload": {
            "template_type": "button", "text": text, "buttons": buttons } } })]
    };
    add_quick_replies(out.last_mut()?, &replies);
    Some(out)
}

/// `reply` actions, and the others as buttons.
fn split_actions(actions: &[Action]) -> (Vec<&PayloadAction>, Vec<Value>) {
    let mut replies = Vec::new();
    let mut buttons = Vec::new();
    for a in actions {
        match a {
            Action::Reply(r) => replies.push(r),
            Action::Postback(p) => buttons.push(json!({
                "type": "postback", "title": p.title, "payload": p.payload })),
            Action::Link(l) => buttons.push(json!({
                "type": "web_url", "url": l.url, "title": l.title })),
        }
    }
    (replies, buttons)
}

fn add_quick_replies(message: &mut Value, replies: &[&PayloadAction]) {
    if replies.is_empty() {
        return;
    }
    let quick: Vec<Value> = replies
        .iter()
        .map(|r| json!({ "content_type": "text", "title": r.title, "payload": r.title }))
        .collect();
    if let Some(m) = message.as_object_mut() {
        m.insert("quick_replies".to_owned(), Value::Array(quick));
    }
}

/// A media attachment; a caption goes first as its own text (attachments take none).
fn media(kind: &str, m: &MediaMessage) -> Vec<Value> {
    let mut out = m.caption.as_deref().map(texts).unwrap_or_default();
    out.push(json!({ "attachment": { "type": kind, "payload": {
        "url": m.url, "is_reusable": false } } }));
    out
}

/// Generic templates of `items`, ≤ 10 elements each, the items' `reply` actions as quick replies
/// of the last; `None` when an item cannot be an element (no title, > 3 buttons) or there are
/// more than 13 replies.
fn generic(items: &[Item]) -> Option<Vec<Value>> {
    if items.is_empty() {
        return None;
    }
    let mut elements = Vec::new();
    let mut replies = Vec::new();
    for item in items {
        let (element, r) = element(item)?;
        elements.push(element);
        replies.extend(r);
    }
    if replies.len() > QUICK_REPLIES_MAX {
        return None;
    }
    let mut out: Vec<Value> = elements
        .chunks(ELEMENTS_MAX)
        .map(|chunk| {
            json!({ "attachment": { "type": "template", "payload": {
                "template_type": "generic", "elements": chunk } } })
        })
        .collect();
    add_quick_replies(out.last_mut()?, &replies);
    Some(out)
}

/// `{ title, subtitle, image_url, buttons }` of an item, and its `reply` actions.
fn element(item: &Item) -> Option<(Value, Vec<&PayloadAction>)> {
    let title = item.title.as_deref().filter(|t| !t.trim().is_empty())?;
    let (replies, buttons) = split_actions(item.actions.as_deref().unwrap_or_default());
    if buttons.len() > BUTTONS_MAX {
        return None;
    }
    let mut e = Map::new();
    e.insert("title".to_owned(), json!(title));
    let extra = |k: &str| {
        item.extra
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if let Some(d) = extra("description") {
        e.insert("subtitle".to_owned(), json!(d));
    }
    if let Some(u) = extra("mediaUrl") {
        e.insert("image_url".to_owned(), json!(u));
    }
    if !buttons.is_empty() {
        e.insert("buttons".to_owned(), Value::Array(buttons));
    }
    Some((Value::Object(e), replies))
}

// ---------------------------------------------------------------------------------------------
// Outcomes and provisioning

fn outcome(response: &ProviderResponse<'_>) -> Outcome {
    let status = response.status;
    let error = GraphError::read(response.body);
    if (200..300).contains(&status) && error.is_none() {
        let id = serde_json::from_slice::<Value>(response.body)
            .ok()
            .and_then(|v| id_string(v.get("message_id")));
        return Outcome::Accepted { id };
    }
    let reason = format!("Messenger {status}: {}", meta::reason_text(response));
    let retry = || Outcome::Retry {
        reason: reason.clone(),
        wait_ms: response.retry_after_ms,
    };
    if meta::retryable_status(status) {
        return retry();
    }
    let code = error.as_ref().and_then(|e| e.code);
    let subcode = error.as_ref().and_then(|e| e.subcode);
    match code {
        Some(c) if RETRY_CODES.contains(&c) => retry(),
        Some(c) if CREDENTIAL_CODES.contains(&c) => Outcome::Credentials { reason },
        Some(10) if subcode == Some(OUTSIDE_WINDOW_SUBCODE) => Outcome::Permanent { reason },
        Some(c) if PERMANENT_CODES.contains(&c) => Outcome::Permanent { reason },
        _ if matches!(status, 401 | 403) => Outcome::Credentials { reason },
        _ => Outcome::Permanent { reason },
    }
}

fn learn(
    configuration: &Map<String, Value>,
    response: &ProviderResponse<'_>,
) -> Result<Map<String, Value>, ProvisionError> {
    if !meta::is_success(response) {
        return Err(meta::provision_error("Messenger", response));
    }
    let v: Value = serde_json::from_slice(response.body).unwrap_or(Value::Null);
    let Some(id) = id_string(v.get("id")) else {
        return Err(meta::refused(
            "Messenger",
            "the token's Page has no id in Graph's answer",
        ));
    };
    let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
    if let Some(configured) = config_str(configuration, "pageId").filter(|p| !p.is_empty()) {
        if configured != id {
            let owner = if name.is_empty() {
                id.clone()
            } else {
                format!("{id} ({name})")
            };
            return Err(ProvisionError::Refused(format!(
                "pageAccessToken belongs to page {owner}"
            )));
        }
    }
    let mut out = Map::new();
    out.insert("pageId".to_owned(), Value::String(id));
    if !name.is_empty() {
        out.insert("pageName".to_owned(), Value::String(name.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::{ItemsMessage, LocationMessage};

    const NOW: Millis = 1_800_000_000_000;
    const HOUR: Millis = 60 * 60 * 1000;

    fn config() -> Map<String, Value> {
        json!({ "pageAccessToken": "EAAB/x+y", "pageId": "1013889883", "appSecret": "s3cret",
                "webhookSecret": "Abc123" })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn no_media(r: &str) -> String {
        panic!("no media link expected for Messenger ({r})")
    }

    fn parse_body(body: &Value) -> Inbound {
        let bytes = body.to_string();
        let request = InboundRequest {
            url: "https://sb.example.com/channels/messenger/x",
            query: "",
            headers: &[],
            body: bytes.as_bytes(),
        };
        Messenger.parse(&config(), &request, &no_media).unwrap()
    }

    fn page(messaging: Value) -> Value {
        json!({ "object": "page", "entry": [ { "id": "1013889883", "time": 1458692752478_i64,
                "messaging": messaging } ] })
    }

    fn from_user(extra: Value) -> Value {
        let mut e = json!({ "sender": { "id": "6789012345" }, "recipient": { "id": "1013889883" },
                            "timestamp": 1458692752478_i64 });
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    }

    fn payloads(inbound: &Inbound) -> Vec<(String, Value)> {
        inbound
            .items
            .iter()
            .map(|i| {
                let p = match &i.payload {
                    Payload::Message(m) => serde_json::to_value(m).unwrap(),
                    Payload::Event(e) => serde_json::to_value(e).unwrap(),
                };
                (i.external_id.clone(), p)
            })
            .collect()
    }

    fn ctx<'a>(
        configuration: &'a Map<String, Value>,
        properties: &'a Map<String, Value>,
        sender: SenderRole,
        last: Option<Millis>,
    ) -> SendContext<'a> {
        SendContext {
            configuration,
            binding: "6789012345",
            properties,
            now: NOW,
            sender,
            last_customer_activity: last,
            last_customer_message: last,
            last_customer_external_id: None,
        }
    }

    /// The bodies of the rendered calls, after checking each call's target and shape.
    fn bodies(payload: &Payload) -> Vec<Value> {
        let c = config();
        let p = Map::new();
        match Messenger.render(&ctx(&c, &p, SenderRole::Agent, Some(NOW - HOUR)), payload) {
            Rendered::Parts(parts) => parts
                .into_iter()
                .map(|r| {
                    assert_eq!(r.method, HttpMethod::Post);
                    assert_eq!(
                        r.target,
                        super::super::adapter::Target::Path(
                            "/1013889883/messages?access_token=EAAB%2Fx%2By".into()
                        )
                    );
                    assert_eq!(r.auth, ProviderAuth::None);
                    assert_eq!(r.operation, "send");
                    let RequestBody::Json(body) = r.body else {
                        panic!("{:?}", r.body)
                    };
                    assert_eq!(body["recipient"], json!({ "id": "6789012345" }));
                    assert_eq!(body["messaging_type"], json!("RESPONSE"));
                    body
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    fn messages(m: Message) -> Vec<Value> {
        bodies(&Payload::Message(m))
            .into_iter()
            .map(|b| b["message"].clone())
            .collect()
    }

    fn reply(title: &str) -> Action {
        Action::reply(title, format!("{title}-payload"))
    }

    fn postback(title: &str, payload: &str) -> Action {
        Action::postback(title, payload)
    }

    fn link(title: &str, url: &str) -> Action {
        Action::link(title, url)
    }

    fn text_with(text: &str, actions: Vec<Action>) -> Message {
        Message::text_with(text, actions)
    }

    fn item(title: Option<&str>, actions: Vec<Action>) -> Item {
        let mut extra = Map::new();
        extra.insert("description".into(), json!("A fine thing"));
        extra.insert("mediaUrl".into(), json!("https://x.io/thing.png"));
        Item {
            title: title.map(str::to_owned),
            actions: Some(actions),
            extra,
        }
    }

    fn response(status: u16, body: &Value) -> (u16, Vec<u8>) {
        (status, body.to_string().into_bytes())
    }

    fn outcome_of(status: u16, body: &Value, retry_after_ms: Option<i64>) -> Outcome {
        let (status, bytes) = response(status, body);
        Messenger.outcome(&ProviderResponse {
            status,
            retry_after_ms,
            body: &bytes,
        })
    }

    fn graph_error(code: i64, subcode: Option<i64>, message: &str) -> Value {
        let mut e = json!({ "error": { "message": message, "type": "OAuthException", "code": code,
                                      "fbtrace_id": "AbCdEf" } });
        if let Some(s) = subcode {
            e["error"]["error_subcode"] = json!(s);
        }
        e
    }

    // --- handshake, signature, answer

    #[test]
    fn handshake_and_signature_use_the_configuration() {
        let c = config();
        let ok = Messenger.handshake(
            &c,
            "hub.mode=subscribe&hub.verify_token=Abc123&hub.challenge=42",
        );
        assert_eq!(ok.map(|r| r.map(|a| a.body)), Some(Ok("42".to_owned())));
        assert_eq!(
            Messenger.handshake(
                &c,
                "hub.mode=subscribe&hub.verify_token=abc123&hub.challenge=42"
            ),
            Some(Err(()))
        );
        let body = br#"{"object":"page","entry":[]}"#;
        let headers = vec![(
            "x-hub-signature-256".to_owned(),
            meta::signature(b"s3cret", body),
        )];
        let request = |body: &'static [u8]| InboundRequest {
            url: "https://sb.example.com/channels/messenger/x",
            query: "",
            headers: &headers,
            body,
        };
        assert!(Messenger.verify(&c, Some("env"), &request(body)));
        assert!(!Messenger.verify(&c, None, &request(br#"{"object":"page","entry":[ ]}"#)));
        assert_eq!(
            Messenger.answer(),
            Answer {
                status: 200,
                content_type: "text/plain",
                body: "EVENT_RECEIVED".into()
            }
        );
    }

    // --- inbound

    #[test]
    fn a_text_message_becomes_a_text_activity_with_the_psid_binding() {
        let inbound = parse_body(&page(json!([from_user(json!({
            "message": { "mid": "m_AG5Hz2U", "text": "hello, world!" } }))])));
        assert_eq!(
            payloads(&inbound),
            vec![(
                "m_AG5Hz2U".into(),
                json!({ "type": "text", "text": "hello, world!" })
            )]
        );
        let item = &inbound.items[0];
        assert_eq!(item.binding, "6789012345");
        assert!(!item.existing_only);
        assert_eq!(
            Value::Object(item.properties.clone()),
            json!({ "channel": { "userId": "6789012345" } })
        );
        assert_eq!(inbound.profile_requests.len(), 1);
        let (binding, req) = &inbound.profile_requests[0];
        assert_eq!(binding, "6789012345");
        assert_eq!(req.method, HttpMethod::Get);
        assert_eq!(req.operation, "profile");
        assert_eq!(
            req.target,
            super::super::adapter::Target::Path(
                "/6789012345?fields=first_name,last_name,profile_pic&access_token=EAAB%2Fx%2By"
                    .into()
            )
        );
    }

    #[test]
    fn echoes_deliveries_and_other_pages_are_ignored() {
        let echo = from_user(
            json!({ "message": { "is_echo": true, "app_id": 1517776481860111_i64,
                                                  "mid": "m_echo", "text": "our own" } }),
        );
        let delivery =
            from_user(json!({ "delivery": { "mids": ["m_1"], "watermark": 1458668856253_i64 } }));
        assert_eq!(
            parse_body(&page(json!([echo, delivery]))),
            Inbound::default()
        );
        let other = json!({ "object": "page", "entry": [ { "id": "999", "time": 1,
            "messaging": [ from_user(json!({ "message": { "mid": "m_2", "text": "hi" } })) ] } ] });
        assert_eq!(parse_body(&other), Inbound::default());
        let instagram = json!({ "object": "instagram", "entry": [] });
        assert_eq!(parse_body(&instagram), Inbound::default());
    }

    #[test]
    fn a_numeric_page_id_in_the_entry_still_matches() {
        let body = json!({ "object": "page", "entry": [ { "id": 1013889883_i64, "time": 1,
            "messaging": [ from_user(json!({ "message": { "mid": "m_3", "text": "hi" } })) ] } ] });
        assert_eq!(parse_body(&body).items.len(), 1);
    }

    #[test]
    fn attachments_map_to_media_location_and_text() {
        let inbound = parse_body(&page(json!([from_user(json!({ "message": {
            "mid": "m_media", "text": "see these",
            "attachments": [
                { "type": "image", "payload": { "url": "https://scontent.xx.fbcdn.net/a.jpg", "sticker_id": 369239263222822_i64 } },
                { "type": "video", "payload": { "url": "https://video.xx.fbcdn.net/b.mp4" } },
                { "type": "audio", "payload": { "url": "https://cdn.fbsbx.com/c.mp4" } },
                { "type": "file", "payload": { "url": "https://cdn.fbsbx.com/d.pdf", "title": "d.pdf" } },
                { "type": "location", "payload": { "coordinates": { "lat": 52.52, "long": 13.405 } } },
                { "type": "fallback", "title": "A shared link", "url": "https://example.com/story",
                  "payload": null },
                { "type": "template", "payload": { "template_type": "generic" } }
            ] } }))])));
        assert_eq!(
            payloads(&inbound),
            vec![
                (
                    "m_media".into(),
                    json!({ "type": "text", "text": "see these" })
                ),
                (
                    "m_media#1".into(),
                    json!({ "type": "image", "url": "https://scontent.xx.fbcdn.net/a.jpg" })
                ),
                (
                    "m_media#2".into(),
                    json!({ "type": "video", "url": "https://video.xx.fbcdn.net/b.mp4" })
                ),
                (
                    "m_media#3".into(),
                    json!({ "type": "audio", "url": "https://cdn.fbsbx.com/c.mp4" })
                ),
                (
                    "m_media#4".into(),
                    json!({ "type": "attachment", "url": "https://cdn.fbsbx.com/d.pdf", "title": "d.pdf" })
                ),
                (
                    "m_media#5".into(),
                    json!({ "type": "location", "latitude": 52.52, "longitude": 13.405 })
                ),
                (
                    "m_media#6".into(),
                    json!({ "type": "text", "text": "A shared link\nhttps://example.com/story" })
                ),
                (
                    "m_media#7".into(),
                    json!({ "type": "text", "text": "[template not supported]" })
                ),
            ]
        );
        // One profile call for the one sender, however many items.
        assert_eq!(inbound.profile_requests.len(), 1);
    }

    #[test]
    fn one_image_with_text_is_one_captioned_image() {
        let inbound = parse_body(&page(json!([from_user(json!({ "message": {
            "mid": "m_cap", "text": "look",
            "attachments": [ { "type": "image", "payload": { "url": "https://x.fbcdn.net/a.jpg" } } ]
        } }))])));
        assert_eq!(
            payloads(&inbound),
            vec![(
                "m_cap".into(),
                json!({ "type": "image", "url": "https://x.fbcdn.net/a.jpg", "caption": "look" })
            )]
        );
    }

    #[test]
    fn quick_replies_are_their_label_and_postbacks_are_payload_events() {
        let inbound = parse_body(&page(json!([
            from_user(json!({ "message": { "mid": "m_qr", "text": "Red",
                                           "quick_reply": { "payload": "Red" } } })),
            from_user(json!({ "postback": { "mid": "m_pb", "title": "Start",
                                            "payload": "GET_STARTED" } })),
        ])));
        assert_eq!(
            payloads(&inbound),
            vec![
                ("m_qr".into(), json!({ "type": "text", "text": "Red" })),
                (
                    "m_pb".into(),
                    json!({ "type": "payload", "payloadType": "postback", "payload": "GET_STARTED" })
                ),
            ]
        );
    }

    #[test]
    fn a_read_receipt_is_a_seen_event_keyed_by_reader_and_watermark() {
        let inbound = parse_body(&page(json!([from_user(json!({
            "read": { "watermark": 1458668856253_i64 } }))])));
        assert_eq!(
            payloads(&inbound),
            vec![(
                "read:6789012345:1458668856253".into(),
                json!({ "type": "seen" })
            )]
        );
    }

    #[test]
    fn several_senders_get_one_profile_call_each() {
        let mut second = from_user(json!({ "message": { "mid": "m_b", "text": "b" } }));
        second["sender"]["id"] = json!("111");
        let inbound = parse_body(&page(json!([
            from_user(json!({ "message": { "mid": "m_a", "text": "a" } })),
            second,
            from_user(json!({ "message": { "mid": "m_c", "text": "c" } })),
        ])));
        let bindings: Vec<&str> = inbound
            .profile_requests
            .iter()
            .map(|(b, _)| b.as_str())
            .collect();
        assert_eq!(bindings, vec!["6789012345", "111"]);
    }

    #[test]
    fn an_unparseable_body_is_refused() {
        let request = InboundRequest {
            url: "https://sb.example.com/channels/messenger/x",
            query: "",
            headers: &[],
            body: b"not json",
        };
        assert!(matches!(
            Messenger.parse(&config(), &request, &no_media),
            Err(InboundError::Unparseable(_))
        ));
        let request = InboundRequest {
            body: br#"{"object":"page"}"#,
            ..request
        };
        assert!(matches!(
            Messenger.parse(&config(), &request, &no_media),
            Err(InboundError::Unparseable(_))
        ));
    }

    #[test]
    fn the_profile_answer_gives_full_name_and_avatar() {
        let body = json!({ "first_name": "Peter", "last_name": "Chang",
                           "profile_pic": "https://platform-lookaside.fbsbx.com/p.jpg", "id": "6789012345" });
        assert_eq!(
            Value::Object(Messenger.profile(body.to_string().as_bytes())),
            json!({ "profile": { "full name": "Peter Chang",
                                 "avatar": "https://platform-lookaside.fbsbx.com/p.jpg" } })
        );
        assert_eq!(
            Value::Object(Messenger.profile(br#"{"first_name":"Peter"}"#)),
            json!({ "profile": { "full name": "Peter" } })
        );
        assert!(Messenger.profile(br#"{"id":"1"}"#).is_empty());
        assert!(Messenger.profile(b"oops").is_empty());
    }

    // --- outbound

    #[test]
    fn messaging_type_follows_the_24_hour_and_7_day_windows() {
        let c = config();
        let p = Map::new();
        let day = 24 * HOUR;
        for (sender, last, expected) in [
            (SenderRole::Agent, None, ("RESPONSE", None)),
            (SenderRole::Agent, Some(NOW - HOUR), ("RESPONSE", None)),
            (SenderRole::Agent, Some(NOW - day), ("RESPONSE", None)),
            (
                SenderRole::Agent,
                Some(NOW - day - 1),
                ("MESSAGE_TAG", Some("HUMAN_AGENT")),
            ),
            (
                SenderRole::Agent,
                Some(NOW - 7 * day),
                ("MESSAGE_TAG", Some("HUMAN_AGENT")),
            ),
            (
                SenderRole::Agent,
                Some(NOW - 7 * day - 1),
                ("RESPONSE", None),
            ),
            (SenderRole::Bot, Some(NOW - 2 * day), ("RESPONSE", None)),
        ] {
            assert_eq!(
                messaging_type(&ctx(&c, &p, sender, last)),
                expected,
                "{sender:?} {last:?}"
            );
        }
        // The tag is in the body.
        let Rendered::Parts(parts) = Messenger.render(
            &ctx(&c, &p, SenderRole::Agent, Some(NOW - 3 * day)),
            &Payload::Message(Message::text("hi")),
        ) else {
            panic!()
        };
        let RequestBody::Json(body) = &parts[0].body else {
            panic!()
        };
        assert_eq!(
            body,
            &json!({ "recipient": { "id": "6789012345" }, "messaging_type": "MESSAGE_TAG",
                     "tag": "HUMAN_AGENT", "message": { "text": "hi" } })
        );
    }

    #[test]
    fn a_plain_text_is_one_text_message_and_a_long_one_is_split() {
        assert_eq!(
            messages(Message::text("hello")),
            vec![json!({ "text": "hello" })]
        );
        let long = "word ".repeat(900);
        let m = Message::text(long.trim());
        let expected: Vec<Value> = render::split(&render::text_fallback(&m, false), TEXT_LIMIT)
            .into_iter()
            .map(|p| json!({ "text": p }))
            .collect();
        assert!(expected.len() >= 3);
        assert_eq!(messages(m), expected);
    }

    #[test]
    fn reply_actions_become_quick_replies() {
        let m = text_with("Pick a colour", vec![reply("Red"), reply("Blue")]);
        let out = messages(m.clone());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["text"], json!(render::text_fallback(&m, true)));
        assert_eq!(
            out[0]["quick_replies"],
            json!([ { "content_type": "text", "title": "Red", "payload": "Red" },
                    { "content_type": "text", "title": "Blue", "payload": "Blue" } ])
        );
    }

    #[test]
    fn link_and_postback_actions_become_a_button_template() {
        let m = text_with(
            "What next?",
            vec![
                link("Docs", "https://x.io/docs"),
                postback("Talk", "TALK"),
                reply("Later"),
            ],
        );
        let out = messages(m.clone());
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0]["attachment"],
            json!({ "type": "template", "payload": { "template_type": "button",
                "text": render::text_fallback(&m, true),
                "buttons": [ { "type": "web_url", "url": "https://x.io/docs", "title": "Docs" },
                             { "type": "postback", "title": "Talk", "payload": "TALK" } ] } })
        );
        assert_eq!(out[0]["quick_replies"][0]["title"], json!("Later"));
    }

    #[test]
    fn too_many_actions_fall_back_to_text() {
        let four = text_with(
            "Too many",
            (0..4).map(|i| postback(&format!("B{i}"), "P")).collect(),
        );
        let fourteen = text_with(
            "Too many",
            (0..14).map(|i| reply(&format!("R{i}"))).collect(),
        );
        for m in [four, fourteen] {
            let out = messages(m.clone());
            assert_eq!(
                out,
                vec![json!({ "text": render::text_fallback(&m, false) })]
            );
            assert!(out[0].get("quick_replies").is_none());
        }
        let thirteen = text_with("Ok", (0..13).map(|i| reply(&format!("R{i}"))).collect());
        assert_eq!(
            messages(thirteen)[0]["quick_replies"]
                .as_array()
                .unwrap()
                .len(),
            13
        );
    }

    #[test]
    fn a_button_text_over_640_chars_falls_back_to_text() {
        let m = text_with(&"x".repeat(641), vec![postback("Go", "GO")]);
        let out = messages(m.clone());
        assert!(out.iter().all(|o| o.get("attachment").is_none()));
        assert_eq!(
            out[0]["text"],
            json!(render::split(&render::text_fallback(&m, false), TEXT_LIMIT)[0])
        );
    }

    #[test]
    fn media_are_attachments_with_the_caption_first() {
        let media = |url: &str, caption: Option<&str>| MediaMessage {
            url: url.into(),
            caption: caption.map(str::to_owned),
            title: Some("file.pdf".into()),
            ..MediaMessage::default()
        };
        assert_eq!(
            messages(Message::Image(media("https://x.io/a.png", None))),
            vec![json!({ "attachment": { "type": "image",
                         "payload": { "url": "https://x.io/a.png", "is_reusable": false } } })]
        );
        let out = messages(Message::Attachment(media(
            "https://x.io/f.pdf",
            Some("the report"),
        )));
        assert_eq!(out[0], json!({ "text": "the report" }));
        assert_eq!(out[1]["attachment"]["type"], json!("file"));
        assert_eq!(
            messages(Message::Video(media("https://x.io/v.mp4", None)))[0]["attachment"]["type"],
            json!("video")
        );
        assert_eq!(
            messages(Message::Audio(media("https://x.io/a.mp3", None)))[0]["attachment"]["type"],
            json!("audio")
        );
    }

    #[test]
    fn a_card_is_a_generic_template_with_one_element() {
        let card = Message::Card(item(
            Some("Thing"),
            vec![
                link("Buy", "https://x.io/buy"),
                postback("More", "MORE"),
                reply("No"),
            ],
        ));
        assert_eq!(
            messages(card),
            vec![
                json!({ "attachment": { "type": "template", "payload": { "template_type": "generic",
                "elements": [ { "title": "Thing", "subtitle": "A fine thing",
                    "image_url": "https://x.io/thing.png",
                    "buttons": [ { "type": "web_url", "url": "https://x.io/buy", "title": "Buy" },
                                 { "type": "postback", "title": "More", "payload": "MORE" } ] } ] } },
                "quick_replies": [ { "content_type": "text", "title": "No", "payload": "No" } ] })
            ]
        );
        let untitled = Message::Card(item(None, vec![]));
        assert_eq!(
            messages(untitled.clone()),
            vec![json!({ "text": render::text_fallback(&untitled, false) })]
        );
    }

    #[test]
    fn a_carousel_of_twelve_is_two_generic_templates() {
        let items: Vec<Item> = (0..12)
            .map(|i| {
                item(
                    Some(&format!("T{i}")),
                    vec![postback("Pick", &format!("P{i}"))],
                )
            })
            .collect();
        let out = messages(Message::Carousel(ItemsMessage {
            items,
            ..ItemsMessage::default()
        }));
        assert_eq!(out.len(), 2);
        let count = |m: &Value| {
            m["attachment"]["payload"]["elements"]
                .as_array()
                .unwrap()
                .len()
        };
        assert_eq!((count(&out[0]), count(&out[1])), (10, 2));
        assert_eq!(
            out[1]["attachment"]["payload"]["elements"][1]["title"],
            json!("T11")
        );
        let list = Message::List(ItemsMessage {
            items: vec![
                item(Some("A"), vec![]),
                item(Some("B"), (0..4).map(|_| postback("x", "y")).collect()),
            ],
            ..ItemsMessage::default()
        });
        let expected = texts(&render::text_fallback(&list, false));
        assert_eq!(messages(list), expected);
    }

    #[test]
    fn location_contact_and_video_links_use_the_text_fallback() {
        let mut contact = Map::new();
        contact.insert("name".into(), json!("Ada"));
        contact.insert("phone".into(), json!("+44 20 7946 0000"));
        for m in [
            Message::Location(LocationMessage {
                address: Some("Alexanderplatz".into()),
                latitude: Some(52.52),
                longitude: Some(13.41),
                ..LocationMessage::default()
            }),
            Message::Contact(contact),
            Message::Youtube(MediaMessage {
                url: "https://youtu.be/dQw4w9WgXcQ".into(),
                ..MediaMessage::default()
            }),
        ] {
            let text = render::text_fallback(&m, false);
            assert!(!text.is_empty());
            assert_eq!(messages(m), vec![json!({ "text": text })]);
        }
    }

    #[test]
    fn typing_and_seen_are_sender_actions_and_other_events_nothing() {
        for (event, action) in [
            (Event::TypingOn, "typing_on"),
            (Event::TypingOff, "typing_off"),
            (Event::Seen, "mark_seen"),
        ] {
            let out = bodies(&Payload::Event(event));
            assert_eq!(out.len(), 1);
            assert_eq!(out[0]["sender_action"], json!(action));
            assert!(out[0].get("message").is_none());
        }
        let c = config();
        let p = Map::new();
        for event in [
            Event::Handover,
            Event::Payload {
                payload_type: "x".into(),
                payload: json!(1),
            },
        ] {
            assert_eq!(
                Messenger.render(&ctx(&c, &p, SenderRole::Bot, None), &Payload::Event(event)),
                Rendered::Nothing
            );
        }
    }

    #[test]
    fn without_a_page_id_the_token_s_own_page_is_used() {
        let c: Map<String, Value> = json!({ "pageAccessToken": "t" })
            .as_object()
            .cloned()
            .unwrap();
        let p = Map::new();
        let Rendered::Parts(parts) = Messenger.render(
            &ctx(&c, &p, SenderRole::Bot, None),
            &Payload::Message(Message::text("x")),
        ) else {
            panic!()
        };
        assert_eq!(
            parts[0].target,
            super::super::adapter::Target::Path("/me/messages?access_token=t".into())
        );
    }

    // --- outcomes

    #[test]
    fn success_records_the_message_id() {
        assert_eq!(
            outcome_of(
                200,
                &json!({ "recipient_id": "6789012345", "message_id": "m_AG5Hz2U" }),
                None
            ),
            Outcome::Accepted {
                id: Some("m_AG5Hz2U".into())
            }
        );
        assert_eq!(
            outcome_of(200, &json!({ "recipient_id": "6789012345" }), None),
            Outcome::Accepted { id: None }
        );
    }

    #[test]
    fn graph_error_codes_decide_the_outcome() {
        for code in [1, 2, 4, 17, 32, 613] {
            assert!(
                matches!(
                    outcome_of(400, &graph_error(code, None, "slow down"), None),
                    Outcome::Retry { .. }
                ),
                "{code}"
            );
        }
        assert_eq!(
            outcome_of(
                400,
                &graph_error(190, Some(460), "Error validating access token"),
                None
            ),
            Outcome::Credentials {
                reason: "Messenger 400: Error validating access token (190)".into()
            }
        );
        assert_eq!(
            outcome_of(
                400,
                &graph_error(
                    10,
                    Some(2018278),
                    "This message is sent outside of allowed window."
                ),
                None
            ),
            Outcome::Permanent {
                reason: "Messenger 400: This message is sent outside of allowed window. (10)"
                    .into()
            }
        );
        for code in [551, 100, 200] {
            assert!(
                matches!(
                    outcome_of(400, &graph_error(code, None, "no"), None),
                    Outcome::Permanent { .. }
                ),
                "{code}"
            );
        }
        // Documented permanent codes win over a 403.
        assert!(matches!(
            outcome_of(403, &graph_error(10, Some(2018278), "w"), None),
            Outcome::Permanent { .. }
        ));
        assert!(matches!(
            outcome_of(403, &json!({}), None),
            Outcome::Credentials { .. }
        ));
        assert!(matches!(
            outcome_of(401, &graph_error(10, None, "perm"), None),
            Outcome::Credentials { .. }
        ));
        assert!(matches!(
            outcome_of(404, &json!({}), None),
            Outcome::Permanent { .. }
        ));
    }

    #[test]
    fn server_errors_and_429_retry_with_the_wait_hint() {
        assert_eq!(
            outcome_of(503, &json!({}), Some(30_000)),
            Outcome::Retry {
                reason: "Messenger 503: Service Unavailable".into(),
                wait_ms: Some(30_000)
            }
        );
        assert!(matches!(
            outcome_of(
                429,
                &graph_error(613, None, "Calls to this api have exceeded the rate limit."),
                None
            ),
            Outcome::Retry { wait_ms: None, .. }
        ));
        // The reason never holds the token, whatever the body says around it.
        let Outcome::Retry { reason, .. } = outcome_of(500, &json!("EAAB/x+y"), None) else {
            panic!()
        };
        assert!(!reason.contains("EAAB"), "{reason}");
    }

    // --- provisioning

    #[test]
    fn credentials_are_verified_with_me_and_learn_page_id_and_name() {
        let c = config();
        let req = Messenger.verify_credentials(&c).unwrap();
        assert_eq!(req.method, HttpMethod::Get);
        assert_eq!(
            req.target,
            super::super::adapter::Target::Path(
                "/me?fields=id,name&access_token=EAAB%2Fx%2By".into()
            )
        );
        let learn = |c: &Map<String, Value>, status, body: Value| {
            let bytes = body.to_string();
            Messenger.learn(
                c,
                &ProviderResponse {
                    status,
                    retry_after_ms: None,
                    body: bytes.as_bytes(),
                },
            )
        };
        assert_eq!(
            learn(
                &c,
                200,
                json!({ "id": "1013889883", "name": "Acme Support" })
            )
            .map(Value::Object),
            Ok(json!({ "pageId": "1013889883", "pageName": "Acme Support" }))
        );
        assert_eq!(
            learn(&c, 200, json!({ "id": "42", "name": "Other Page" })),
            Err(ProvisionError::Refused(
                "pageAccessToken belongs to page 42 (Other Page)".into()
            ))
        );
        let unset: Map<String, Value> = json!({ "pageAccessToken": "t" })
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(
            learn(&unset, 200, json!({ "id": "42", "name": "Other Page" })).map(Value::Object),
            Ok(json!({ "pageId": "42", "pageName": "Other Page" }))
        );
        assert_eq!(
            learn(
                &c,
                400,
                graph_error(190, None, "Invalid OAuth access token.")
            ),
            Err(ProvisionError::Refused(
                "Messenger refused the configuration: Invalid OAuth access token. (190)".into()
            ))
        );
        assert!(matches!(
            learn(&c, 502, json!({})),
            Err(ProvisionError::Unreachable(_))
        ));
    }

    #[test]
    fn register_subscribes_the_page_and_needs_success() {
        let reqs = Messenger.register(&config(), "https://sb.example.com/channels/messenger/x");
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].method, HttpMethod::Post);
        assert_eq!(reqs[0].operation, "register");
        assert_eq!(
            reqs[0].target,
            super::super::adapter::Target::Path(
                "/1013889883/subscribed_apps?subscribed_fields=messages,messaging_postbacks,message_reads&access_token=EAAB%2Fx%2By".into()
            )
        );
        let ok = br#"{"success":true}"#;
        assert_eq!(
            Messenger.registered(&ProviderResponse {
                status: 200,
                retry_after_ms: None,
                body: ok
            }),
            Ok(())
        );
        let bad = graph_error(200, None, "Permissions error").to_string();
        assert!(matches!(
            Messenger.registered(&ProviderResponse {
                status: 403,
                retry_after_ms: None,
                body: bad.as_bytes()
            }),
            Err(ProvisionError::Refused(_))
        ));
        assert_eq!(Messenger.deregister(&config()), None);
    }
}
