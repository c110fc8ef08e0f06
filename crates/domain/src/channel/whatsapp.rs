//! The WhatsApp adapter (SPEC 7.8a): the Cloud API's `messages` webhooks in (messages and
//! statuses), `/{phoneNumberId}/messages` out under the 24-hour customer service window, the phone
//! number and webhook override for provisioning, and media ids served through media links. The
//! handshake and signature are Meta's shared ones ([`super::meta`]).

use serde_json::{json, Map, Value};

use super::adapter::{
    config_str, Adapter, Answer, HttpMethod, Inbound, InboundError, InboundItem, InboundNotice,
    InboundRequest, MediaLinker, MediaLocation, Outcome, ProviderAuth, ProviderRequest,
    ProviderResponse, ProvisionError, Rendered, RequestBody, SendContext, Target,
};
use super::meta::{self, encode, GraphError};
use super::parts::{self, MediaKind};
use super::render;
use crate::activity::{Action, Event, Item, MediaMessage, Message, Payload};
use crate::time::Millis;

/// Characters per text message (SPEC 7.8a).
pub const TEXT_LIMIT: usize = 4096;
/// Characters of an interactive message's body: longer texts with actions use the fallback.
pub const INTERACTIVE_BODY_LIMIT: usize = 1024;
/// Reply buttons of one `button` interactive message.
pub const BUTTONS_MAX: usize = 3;
/// Characters of a reply button's title.
pub const BUTTON_TITLE_MAX: usize = 20;
/// Rows of a `list` interactive message (fewer than this use buttons).
pub const LIST_ROWS_MIN: usize = 4;
/// Rows of a `list` interactive message at most.
pub const LIST_ROWS_MAX: usize = 10;
/// Characters of a list row's title.
pub const ROW_TITLE_MAX: usize = 24;
/// The list's button label.
pub const LIST_BUTTON: &str = "Options";
/// Characters of a `cta_url` button's label **[unconfirmed: 20-char label limit]**.
pub const CTA_TITLE_MAX: usize = 20;
/// Characters of a reply button's id.
pub const BUTTON_ID_MAX: usize = 256;
/// Characters of a list row's id.
pub const ROW_ID_MAX: usize = 200;
/// What begins the id of a button or row for a `reply` action (followed by its title).
pub const REPLY_ID_PREFIX: &str = "r:";
/// What begins the id of a button or row for a `postback` action (followed by its payload); an
/// inbound reply with such an id is a payload event.
pub const POSTBACK_ID_PREFIX: &str = "p:";
/// Characters of a template's text parameter, the last being `…` when cut **[unconfirmed:
/// Meta's exact rules and length limit for a text parameter]**.
pub const TEMPLATE_TEXT_MAX: usize = 1024;
/// `templateLanguage` when the configuration has none.
pub const DEFAULT_TEMPLATE_LANGUAGE: &str = "en_US";
/// The customer service window: free-form messages while the customer's last message is at
/// most this old.
pub const WINDOW_MS: Millis = 24 * 60 * 60 * 1000;
/// Why a message outside the window without a template fails (also a 131047 answer's reason).
pub const OUTSIDE_WINDOW: &str = "outside WhatsApp's 24-hour customer service window (131047)";

/// The Graph error code of a message outside the window ("Re-engagement message").
const OUTSIDE_WINDOW_CODE: i64 = 131_047;
/// Retried: 1, 2 (temporary), 4, 80007 (API call limits), 130429 (throughput), 131056 (pair
/// rate limit), 131000 (unknown), 131016 (service unavailable).
const RETRY_CODES: &[i64] = &[1, 2, 4, 80_007, 130_429, 131_056, 131_000, 131_016];
/// Credentials: 0, 190 (token), 3, 10, 131005 (permissions), 131031, 368 (account locked or
/// restricted), and 200–299 (see [`is_credential_code`]).
const CREDENTIAL_CODES: &[i64] = &[0, 190, 3, 10, 131_005, 131_031, 368];
/// Permanent whatever the HTTP status: 131026 (undeliverable), 131030 (recipient not allowed in
/// test mode), 131048 (spam rate limit), 131049, 131051–131053 (type and media), 100, 131008,
/// 131009, and 132000–132016 (templates, see [`is_permanent_code`]).
const PERMANENT_CODES: &[i64] = &[
    131_026, 131_030, 131_048, 131_049, 131_051, 131_052, 131_053, 100, 131_008, 131_009,
];

/// The WhatsApp adapter.
pub struct WhatsApp;

impl Adapter for WhatsApp {
    fn provider(&self) -> &'static str {
        "WhatsApp"
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
        media: MediaLinker<'_>,
    ) -> Result<Inbound, InboundError> {
        parse(configuration, request.body, media)
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
                "/{}?fields=display_phone_number,verified_name",
                encode(phone_number_id(configuration))
            ),
            bearer(configuration),
            RequestBody::None,
            "verify",
        ))
    }

    fn learn(
        &self,
        _configuration: &Map<String, Value>,
        response: &ProviderResponse<'_>,
    ) -> Result<Map<String, Value>, ProvisionError> {
        learn(response)
    }

    fn register(&self, configuration: &Map<String, Value>, url: &str) -> Vec<ProviderRequest> {
        let mut calls = Vec::new();
        if let Some(account) =
            config_str(configuration, "businessAccountId").filter(|a| !a.is_empty())
        {
            calls.push(ProviderRequest::new(
                HttpMethod::Post,
                format!("/{}/subscribed_apps", encode(account)),
                bearer(configuration),
                RequestBody::None,
                "register",
            ));
        }
        let secret = config_str(configuration, "webhookSecret").unwrap_or_default();
        calls.push(ProviderRequest::new(
            HttpMethod::Post,
            format!("/{}", encode(phone_number_id(configuration))),
            bearer(configuration),
            RequestBody::Json(json!({ "webhook_configuration": {
                "override_callback_uri": url, "verify_token": secret } })),
            "register",
        ));
        calls
    }

    fn registered(&self, response: &ProviderResponse<'_>) -> Result<(), ProvisionError> {
        meta::registered("WhatsApp", response)
    }

    fn media_lookup(
        &self,
        configuration: &Map<String, Value>,
        reference: &str,
    ) -> Option<ProviderRequest> {
        Some(ProviderRequest::new(
            HttpMethod::Get,
            format!("/{}", encode(reference)),
            bearer(configuration),
            RequestBody::None,
            "media",
        ))
    }

    fn media_location(
        &self,
        configuration: &Map<String, Value>,
        response: &ProviderResponse<'_>,
    ) -> MediaLocation {
        media_location(configuration, response)
    }
}

/// `Authorization: Bearer {accessToken}`.
fn bearer(configuration: &Map<String, Value>) -> ProviderAuth {
    ProviderAuth::Bearer(
        config_str(configuration, "accessToken")
            .unwrap_or_default()
            .to_owned(),
    )
}

fn phone_number_id(configuration: &Map<String, Value>) -> &str {
    config_str(configuration, "phoneNumberId").unwrap_or_default()
}

/// A string, or a number written as digits (Graph ids and timestamps come as either).
fn string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Inbound

fn parse(
    configuration: &Map<String, Value>,
    body: &[u8],
    media: MediaLinker<'_>,
) -> Result<Inbound, InboundError> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| InboundError::Unparseable(format!("the body is not JSON: {e}")))?;
    if root.get("object").and_then(Value::as_str) != Some("whatsapp_business_account") {
        return Ok(Inbound::default());
    }
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| InboundError::Unparseable("`entry` is not an array".to_owned()))?;
    let phone = phone_number_id(configuration);
    let mut inbound = Inbound::default();
    let changes = entries
        .iter()
        .filter_map(|e| e.get("changes").and_then(Value::as_array))
        .flatten();
    for change in changes {
        if change.get("field").and_then(Value::as_str) != Some("messages") {
            continue;
        }
        let Some(value) = change.get("value") else {
            continue;
        };
        let number = string(value.get("metadata").and_then(|m| m.get("phone_number_id")));
        if phone.is_empty() || number.as_deref() != Some(phone) {
            continue;
        }
        let list = |k: &str| {
            value
                .get(k)
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
        };
        let contacts = list("contacts");
        for message in list("messages") {
            inbound
                .items
                .extend(message_items(message, contacts, media));
        }
        for status in list("statuses") {
            read_status(status, &mut inbound);
        }
        // `errors[]` is only logged, by the caller.
    }
    Ok(inbound)
}

/// Who sent a message: the binding, the `wa_id` (`channel.phone`) and the profile name.
struct Sender {
    binding: String,
    wa_id: Option<String>,
    name: Option<String>,
}

/// The sender of `message` from `contacts[]`: `wa_id` (also `from`), else the business-scoped
/// user id `user_id` **[unconfirmed: field names taken from a client library]**.
fn sender(message: &Value, contacts: &[Value]) -> Option<Sender> {
    let from = str_at(message, &["from"]);
    let contact = contacts
        .iter()
        .find(|c| {
            from.is_some() && (str_at(c, &["wa_id"]) == from || str_at(c, &["user_id"]) == from)
        })
        .or_else(|| (contacts.len() == 1).then(|| &contacts[0]));
    let of_contact = |path: &[&str]| contact.and_then(|c| str_at(c, path));
    let wa_id = of_contact(&["wa_id"])
        .or(from.filter(|f| f.bytes().all(|b| b.is_ascii_digit())))
        .map(str::to_owned);
    let binding = wa_id
        .clone()
        .or_else(|| of_contact(&["user_id"]).map(str::to_owned))
        .or_else(|| from.map(str::to_owned))?;
    Some(Sender {
        binding,
        wa_id,
        name: of_contact(&["profile", "name"]).map(str::to_owned),
    })
}

/// The activities of one `messages[]` entry.
fn message_items(message: &Value, contacts: &[Value], media: MediaLinker<'_>) -> Vec<InboundItem> {
    if message.get("group_id").is_some_and(|g| !g.is_null()) {
        return Vec::new();
    }
    let (Some(sender), Some(id)) = (sender(message, contacts), string(message.get("id"))) else {
        return Vec::new();
    };
    let payloads = payloads(message, media);
    let phone: Vec<(&str, &str)> = sender
        .wa_id
        .as_deref()
        .map(|p| vec![("phone", p)])
        .unwrap_or_default();
    let properties = parts::properties(&sender.binding, sender.name.as_deref(), None, None, &phone);
    parts::external_ids(&id, payloads.len())
        .into_iter()
        .zip(payloads)
        .map(|(external_id, payload)| InboundItem {
            binding: sender.binding.clone(),
            external_id,
            payload,
            properties: properties.clone(),
            existing_only: false,
        })
        .collect()
}

/// What one message carries (SPEC 7.8a's table), `context` ignored.
fn payloads(message: &Value, media: MediaLinker<'_>) -> Vec<Payload> {
    let kind = message
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let body = message.get(kind).unwrap_or(&Value::Null);
    let text = |t: Option<&str>| parts::messages(t.map(str::to_owned), Vec::new());
    let messages = match kind {
        "text" => text(str_at(body, &["body"])),
        "image" | "sticker" | "video" | "audio" | "document" => {
            let media_kind = match kind {
                "video" => MediaKind::Video,
                "audio" => MediaKind::Audio,
                "document" => MediaKind::Attachment,
                _ => MediaKind::Image,
            };
            match str_at(body, &["id"]) {
                Some(media_id) => {
                    let title = str_at(body, &["filename"])
                        .filter(|_| media_kind == MediaKind::Attachment)
                        .map(str::to_owned);
                    let m = parts::media(media_kind, media(media_id), title);
                    parts::messages(str_at(body, &["caption"]).map(str::to_owned), vec![m])
                }
                None => vec![parts::not_supported(kind)],
            }
        }
        "location" => {
            let num = |k: &str| body.get(k).and_then(Value::as_f64);
            match (num("latitude"), num("longitude")) {
                (Some(lat), Some(long)) => {
                    let address = [str_at(body, &["name"]), str_at(body, &["address"])]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(", ");
                    vec![parts::location(lat, long, Some(address))]
                }
                _ => vec![parts::not_supported(kind)],
            }
        }
        "contacts" => {
            let mut lines = Vec::new();
            for c in body.as_array().map(Vec::as_slice).unwrap_or_default() {
                lines.extend(str_at(c, &["name", "formatted_name"]).map(str::to_owned));
                for p in c
                    .get("phones")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    lines.extend(str_at(p, &["phone"]).map(str::to_owned));
                }
            }
            text(Some(&lines.join("\n")))
        }
        "interactive" => {
            let reply = ["button_reply", "list_reply"]
                .into_iter()
                .find_map(|k| body.get(k));
            let Some(reply) = reply else {
                return vec![Payload::Message(parts::not_supported(kind))];
            };
            let id = str_at(reply, &["id"]).unwrap_or_default();
            if let Some(payload) = id.strip_prefix(POSTBACK_ID_PREFIX) {
                return vec![Payload::Event(Event::Payload {
                    payload_type: "postback".to_owned(),
                    payload: Value::String(payload.to_owned()),
                })];
            }
            text(str_at(reply, &["title"]))
        }
        "button" => text(str_at(body, &["text"])),
        "reaction" => text(str_at(body, &["emoji"])),
        "system" | "edit" | "revoke" | "request_welcome" => Vec::new(),
        other => vec![parts::not_supported(other)],
    };
    messages.into_iter().map(Payload::Message).collect()
}

/// A `statuses[]` entry: `read` → a seen event in the recipient's open conversation, `failed` →
/// one `delivery_failed` notice; others ignored.
fn read_status(status: &Value, inbound: &mut Inbound) {
    let (Some(id), Some(recipient)) =
        (string(status.get("id")), string(status.get("recipient_id")))
    else {
        return;
    };
    match status.get("status").and_then(Value::as_str) {
        Some("read") => inbound.items.push(InboundItem {
            properties: parts::properties(&recipient, None, None, None, &[]),
            binding: recipient,
            external_id: format!("read:{id}"),
            payload: Payload::Event(Event::Seen),
            existing_only: true,
        }),
        Some("failed") => {
            let dedupe_key = format!("failed:{id}");
            if inbound.notices.iter().any(|n| n.dedupe_key == dedupe_key) {
                return;
            }
            let error = status
                .get("errors")
                .and_then(Value::as_array)
                .and_then(|e| e.first());
            let mut description = format!("WhatsApp could not deliver message {id} to {recipient}");
            if let Some(e) = error {
                let title = str_at(e, &["title"])
                    .or_else(|| str_at(e, &["message"]))
                    .unwrap_or("unknown error");
                description.push_str(&format!(": {title}"));
                if let Some(code) = string(e.get("code")) {
                    description.push_str(&format!(" ({code})"));
                }
                if let Some(details) = str_at(e, &["error_data", "details"]) {
                    description.push_str(&format!(": {details}"));
                }
            }
            inbound.notices.push(InboundNotice {
                dedupe_key,
                kind: "delivery_failed",
                description,
            });
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Outbound

/// Whether free-form messages are allowed: the customer's last **message** is at most 24 h old.
pub fn in_window(context: &SendContext<'_>) -> bool {
    context
        .last_customer_message
        .is_some_and(|t| context.now.saturating_sub(t) <= WINDOW_MS)
}

fn render_payload(context: &SendContext<'_>, payload: &Payload) -> Rendered {
    let message = match payload {
        Payload::Event(Event::Seen) => return mark_read(context, false),
        Payload::Event(Event::TypingOn) => return mark_read(context, true),
        Payload::Event(_) => return Rendered::Nothing,
        Payload::Message(m) => m,
    };
    if !in_window(context) {
        return match config_str(context.configuration, "templateName").filter(|n| !n.is_empty()) {
            Some(name) => Rendered::Parts(vec![template(context, message, name)]),
            None => Rendered::Refused(OUTSIDE_WINDOW.to_owned()),
        };
    }
    let parts = render_message(message);
    if parts.is_empty() {
        return Rendered::Nothing;
    }
    Rendered::Parts(
        parts
            .into_iter()
            .map(|(kind, value)| send(context, kind, value))
            .collect(),
    )
}

/// `seen` (and `typing_on`, which also marks read): `status: "read"` for the latest customer
/// message; none known: no call.
fn mark_read(context: &SendContext<'_>, typing: bool) -> Rendered {
    let Some(id) = context
        .last_customer_external_id
        .map(|id| id.split('#').next().unwrap_or(id))
        .filter(|id| !id.is_empty())
    else {
        return Rendered::Nothing;
    };
    let mut body = json!({ "messaging_product": "whatsapp", "status": "read", "message_id": id });
    if typing {
        body["typing_indicator"] = json!({ "type": "text" });
    }
    Rendered::Parts(vec![call(context, body)])
}

/// Whether a binding is a phone number (`wa_id`, digits only); else it is a business-scoped
/// user id and goes in `recipient` **[unconfirmed: parameter name taken from a client library]**.
fn is_phone(binding: &str) -> bool {
    !binding.is_empty() && binding.bytes().all(|b| b.is_ascii_digit())
}

/// One message call: `{ messaging_product, recipient_type, to | recipient, type, <type> }`.
fn send(context: &SendContext<'_>, kind: &str, value: Value) -> ProviderRequest {
    let mut body = Map::new();
    body.insert("messaging_product".to_owned(), json!("whatsapp"));
    body.insert("recipient_type".to_owned(), json!("individual"));
    let to = if is_phone(context.binding) {
        "to"
    } else {
        "recipient"
    };
    body.insert(to.to_owned(), json!(context.binding));
    body.insert("type".to_owned(), json!(kind));
    body.insert(kind.to_owned(), value);
    call(context, Value::Object(body))
}

fn call(context: &SendContext<'_>, body: Value) -> ProviderRequest {
    ProviderRequest::new(
        HttpMethod::Post,
        format!(
            "/{}/messages",
            encode(phone_number_id(context.configuration))
        ),
        bearer(context.configuration),
        RequestBody::Json(body),
        "send",
    )
}

/// The template part sent outside the window: the message's text fallback, flattened, as the
/// one body parameter.
fn template(context: &SendContext<'_>, message: &Message, name: &str) -> ProviderRequest {
    let language = config_str(context.configuration, "templateLanguage")
        .filter(|l| !l.is_empty())
        .unwrap_or(DEFAULT_TEMPLATE_LANGUAGE);
    let text = template_text(&render::text_fallback(message, false));
    send(
        context,
        "template",
        json!({ "name": name, "language": { "code": language }, "components": [
            { "type": "body", "parameters": [ { "type": "text", "text": text } ] } ] }),
    )
}

/// Every run of whitespace (newlines and tabs included) as one space, cut to
/// [`TEMPLATE_TEXT_MAX`] characters ending in `…`.
pub fn template_text(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= TEMPLATE_TEXT_MAX {
        return flat;
    }
    let mut cut: String = flat.chars().take(TEMPLATE_TEXT_MAX - 1).collect();
    cut.push('…');
    cut
}

/// The message objects of one message, as `(type, object)`, in order.
fn render_message(message: &Message) -> Vec<(&'static str, Value)> {
    match message {
        Message::Text(t) => {
            let actions = t.actions.as_deref().unwrap_or_default();
            let body = render::text_fallback(message, true);
            interactive(&body, actions, None)
                .map(|i| vec![("interactive", i)])
                .unwrap_or_else(|| fallback(message))
        }
        Message::Image(m) => vec![("image", linked(m, true))],
        Message::Video(m) => vec![("video", linked(m, true))],
        Message::Audio(m) => {
            let label = label(m).map(texts).unwrap_or_default();
            label
                .into_iter()
                .chain([("audio", linked(m, false))])
                .collect()
        }
        Message::Attachment(m) => {
            let mut d = json!({ "link": m.url });
            if let Some(t) = m.title.as_deref().filter(|t| !t.is_empty()) {
                d["filename"] = json!(t);
            }
            if let Some(c) = m.caption.as_deref().filter(|c| !c.is_empty()) {
                d["caption"] = json!(c);
            }
            vec![("document", d)]
        }
        Message::Location(l) => match (l.latitude, l.longitude) {
            (Some(lat), Some(long)) => {
                let mut v = json!({ "latitude": lat, "longitude": long });
                if let Some(a) = l.address.as_deref().filter(|a| !a.is_empty()) {
                    v["address"] = json!(a);
                }
                vec![("location", v)]
            }
            _ => fallback(message),
        },
        Message::Card(item) => card(item).unwrap_or_else(|| fallback(message)),
        Message::Carousel(m) | Message::List(m) => m
            .items
            .iter()
            .flat_map(|item| card(item).unwrap_or_else(|| fallback(&Message::Card(item.clone()))))
            .collect(),
        Message::Contact(_) | Message::Youtube(_) | Message::Vimeo(_) => fallback(message),
    }
}

/// `caption` or `title`, when not empty.
fn label(m: &MediaMessage) -> Option<&str> {
    m.caption
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .or(m.title.as_deref().filter(|t| !t.trim().is_empty()))
}

/// `{ link, caption? }`, the caption being `caption` or `title`.
fn linked(m: &MediaMessage, with_caption: bool) -> Value {
    let mut v = json!({ "link": m.url });
    if let Some(c) = label(m).filter(|_| with_caption) {
        v["caption"] = json!(c);
    }
    v
}

/// The text fallback without buttons, split into text messages.
fn fallback(message: &Message) -> Vec<(&'static str, Value)> {
    texts(&render::text_fallback(message, false))
}

fn texts(text: &str) -> Vec<(&'static str, Value)> {
    render::split(text, TEXT_LIMIT)
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| ("text", json!({ "body": p })))
        .collect()
}

/// The id and title of a `reply` (`r:` + title) or `postback` (`p:` + payload) action; `None`
/// for a `link`.
fn choice(action: &Action) -> Option<(String, &str)> {
    match action {
        Action::Reply(r) => Some((format!("{REPLY_ID_PREFIX}{}", r.title), &r.title)),
        Action::Postback(p) => Some((format!("{POSTBACK_ID_PREFIX}{}", p.payload), &p.title)),
        Action::Link(_) => None,
    }
}

/// Whether `choices` fit: titles not empty and ≤ `title_max` chars, ids ≤ `id_max` chars and
/// distinct.
fn fits(choices: &[(String, &str)], title_max: usize, id_max: usize) -> bool {
    choices.iter().enumerate().all(|(i, (id, title))| {
        !title.trim().is_empty()
            && title.chars().count() <= title_max
            && id.chars().count() <= id_max
            && !choices[..i].iter().any(|(other, _)| other == id)
    })
}

/// The interactive object of a body and its actions (SPEC 7.8a): reply buttons (1–3), a list
/// (4–10 rows) or one `cta_url`; `header` (a card's image) allows only buttons. `None` when
/// nothing fits (the caller sends the text fallback).
fn interactive(body: &str, actions: &[Action], header: Option<Value>) -> Option<Value> {
    if body.trim().is_empty() || body.chars().count() > INTERACTIVE_BODY_LIMIT {
        return None;
    }
    let choices: Option<Vec<(String, &str)>> = actions.iter().map(choice).collect();
    let mut v = match (choices, actions) {
        (Some(c), _)
            if (1..=BUTTONS_MAX).contains(&c.len())
                && fits(&c, BUTTON_TITLE_MAX, BUTTON_ID_MAX) =>
        {
            let buttons: Vec<Value> = c
                .iter()
                .map(
                    |(id, title)| json!({ "type": "reply", "reply": { "id": id, "title": title } }),
                )
                .collect();
            json!({ "type": "button", "body": { "text": body }, "action": { "buttons": buttons } })
        }
        (Some(c), _)
            if header.is_none()
                && (LIST_ROWS_MIN..=LIST_ROWS_MAX).contains(&c.len())
                && fits(&c, ROW_TITLE_MAX, ROW_ID_MAX) =>
        {
            let rows: Vec<Value> = c
                .iter()
                .map(|(id, title)| json!({ "id": id, "title": title }))
                .collect();
            json!({ "type": "list", "body": { "text": body }, "action": {
                "button": LIST_BUTTON, "sections": [ { "rows": rows } ] } })
        }
        (None, [Action::Link(l)])
            if header.is_none()
                && !l.title.trim().is_empty()
                && l.title.chars().count() <= CTA_TITLE_MAX =>
        {
            json!({ "type": "cta_url", "body": { "text": body }, "action": { "name": "cta_url",
                "parameters": { "display_text": l.title, "url": l.url } } })
        }
        _ => return None,
    };
    if let Some(h) = header {
        v["header"] = h;
    }
    Some(v)
}

/// A card with an image and `reply`/`postback` actions fitting the button rule: reply buttons
/// under an image header, body `title` + newline + `description`. `None` for other cards.
fn card(item: &Item) -> Option<Vec<(&'static str, Value)>> {
    let extra = |k: &str| {
        item.extra
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    let image = extra("mediaUrl")?;
    let actions = item.actions.as_deref().unwrap_or_default();
    if actions.is_empty() || actions.len() > BUTTONS_MAX {
        return None;
    }
    let body = [
        item.title.as_deref().filter(|t| !t.trim().is_empty()),
        extra("description"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("\n");
    let header = json!({ "type": "image", "image": { "link": image } });
    interactive(&body, actions, Some(header)).map(|i| vec![("interactive", i)])
}

// ---------------------------------------------------------------------------------------------
// Outcomes, provisioning and media

fn is_credential_code(code: i64) -> bool {
    CREDENTIAL_CODES.contains(&code) || (200..=299).contains(&code)
}

fn is_permanent_code(code: i64) -> bool {
    PERMANENT_CODES.contains(&code) || (132_000..=132_016).contains(&code)
}

fn outcome(response: &ProviderResponse<'_>) -> Outcome {
    let status = response.status;
    let error = GraphError::read(response.body);
    if (200..300).contains(&status) && error.is_none() {
        let id = serde_json::from_slice::<Value>(response.body)
            .ok()
            .and_then(|v| {
                string(
                    v.get("messages")
                        .and_then(|m| m.get(0))
                        .and_then(|m| m.get("id")),
                )
            });
        return Outcome::Accepted { id };
    }
    let code = error.as_ref().and_then(|e| e.code);
    if code == Some(OUTSIDE_WINDOW_CODE) {
        return Outcome::Permanent {
            reason: format!("WhatsApp {status}: {OUTSIDE_WINDOW}"),
        };
    }
    let reason = format!("WhatsApp {status}: {}", meta::reason_text(response));
    let retry = || Outcome::Retry {
        reason: reason.clone(),
        wait_ms: response.retry_after_ms,
    };
    if meta::retryable_status(status) {
        return retry();
    }
    match code {
        Some(c) if RETRY_CODES.contains(&c) => retry(),
        Some(c) if is_credential_code(c) => Outcome::Credentials { reason },
        Some(c) if is_permanent_code(c) => Outcome::Permanent { reason },
        _ if matches!(status, 401 | 403) => Outcome::Credentials { reason },
        _ => Outcome::Permanent { reason },
    }
}

fn learn(response: &ProviderResponse<'_>) -> Result<Map<String, Value>, ProvisionError> {
    if !meta::is_success(response) {
        return Err(meta::provision_error("WhatsApp", response));
    }
    let v: Value = serde_json::from_slice(response.body).unwrap_or(Value::Null);
    let mut out = Map::new();
    for (from, to) in [
        ("display_phone_number", "displayPhoneNumber"),
        ("verified_name", "verifiedName"),
    ] {
        if let Some(s) = str_at(&v, &[from]) {
            out.insert(to.to_owned(), Value::String(s.to_owned()));
        }
    }
    if out.is_empty() {
        return Err(meta::refused(
            "WhatsApp",
            "the phone number's details are missing from Graph's answer",
        ));
    }
    Ok(out)
}

/// The media lookup's `url`, fetched with the same Bearer token; `Gone` when the lookup failed
/// or gave no http(s) URL.
fn media_location(
    configuration: &Map<String, Value>,
    response: &ProviderResponse<'_>,
) -> MediaLocation {
    if !meta::is_success(response) {
        return MediaLocation::Gone;
    }
    let url = serde_json::from_slice::<Value>(response.body)
        .ok()
        .and_then(|v| str_at(&v, &["url"]).map(str::to_owned))
        .filter(|u| url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https")));
    match url {
        Some(url) => MediaLocation::Fetch(ProviderRequest {
            method: HttpMethod::Get,
            target: Target::Absolute(url),
            auth: bearer(configuration),
            body: RequestBody::None,
            operation: "media",
        }),
        None => MediaLocation::Gone,
    }
}
