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

    /// SPEC 7.4.1: the events this channel maps.
    fn delivers_event(&self, event: &crate::activity::Event) -> bool {
        use crate::activity::Event;
        matches!(event, Event::TypingOn | Event::Seen)
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

/// Whether a binding is a business-scoped user id (`CC.` + up to 128 alphanumerics, `CC` being
/// a country code such as `US`), which goes in `recipient` **[unconfirmed: parameter name taken
/// from a client library]**. Anything else is a phone number for `to`: a `wa_id`, or a number a
/// tenant established through the API with its `+`.
fn is_business_scoped(binding: &str) -> bool {
    binding.split_once('.').is_some_and(|(country, id)| {
        country.len() == 2
            && country.bytes().all(|b| b.is_ascii_uppercase())
            && (1..=128).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// One message call: `{ messaging_product, recipient_type, to | recipient, type, <type> }`.
fn send(context: &SendContext<'_>, kind: &str, value: Value) -> ProviderRequest {
    let mut body = Map::new();
    body.insert("messaging_product".to_owned(), json!("whatsapp"));
    body.insert("recipient_type".to_owned(), json!("individual"));
    let to = if is_business_scoped(context.binding) {
        "recipient"
    } else {
        "to"
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::{ItemsMessage, LocationMessage, SenderRole, TextMessage};

    const NOW: Millis = 1_800_000_000_000;
    const HOUR: Millis = 60 * 60 * 1000;
    const PHONE_ID: &str = "106540352242922";

    fn config_with(extra: Value) -> Map<String, Value> {
        let mut c = json!({ "accessToken": "EAAG-token", "phoneNumberId": PHONE_ID,
                            "businessAccountId": "102290129340398", "appSecret": "s3cret",
                            "webhookSecret": "Verify123" })
        .as_object()
        .cloned()
        .unwrap();
        c.extend(extra.as_object().cloned().unwrap());
        c
    }

    fn config() -> Map<String, Value> {
        config_with(json!({}))
    }

    fn link_of(reference: &str) -> String {
        format!("https://sb.example.com/channels/media/i/{reference}?sig=s")
    }

    fn parse_body(body: &Value) -> Inbound {
        let bytes = body.to_string();
        let request = InboundRequest {
            url: "https://sb.example.com/channels/whatsapp/x",
            query: "",
            headers: &[],
            body: bytes.as_bytes(),
        };
        WhatsApp.parse(&config(), &request, &link_of).unwrap()
    }

    fn change(value: Value) -> Value {
        json!({ "object": "whatsapp_business_account", "entry": [ { "id": "102290129340398",
            "changes": [ { "field": "messages", "value": value } ] } ] })
    }

    fn metadata() -> Value {
        json!({ "display_phone_number": "15550783881", "phone_number_id": PHONE_ID })
    }

    fn contact() -> Value {
        json!({ "profile": { "name": "Sheena Nelson" }, "wa_id": "16505551234" })
    }

    /// A change with one message of `kind` carrying `body`.
    fn one(kind: &str, body: Value) -> Value {
        let mut m = json!({ "from": "16505551234", "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
                            "timestamp": "1749416383", "type": kind });
        m[kind] = body;
        change(
            json!({ "messaging_product": "whatsapp", "metadata": metadata(),
                       "contacts": [contact()], "messages": [m] }),
        )
    }

    const WAMID: &str = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=";

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

    fn only(inbound: &Inbound) -> Value {
        let p = payloads(inbound);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, WAMID);
        p[0].1.clone()
    }

    fn ctx<'a>(
        configuration: &'a Map<String, Value>,
        properties: &'a Map<String, Value>,
        binding: &'a str,
        last_message: Option<Millis>,
        last_id: Option<&'a str>,
    ) -> SendContext<'a> {
        SendContext {
            configuration,
            binding,
            properties,
            now: NOW,
            sender: SenderRole::Agent,
            last_customer_activity: last_message,
            last_customer_message: last_message,
            last_customer_external_id: last_id,
        }
    }

    /// The bodies of a message rendered inside the window, after checking each call.
    fn bodies(payload: &Payload) -> Vec<Value> {
        let c = config();
        let p = Map::new();
        let context = ctx(&c, &p, "16505551234", Some(NOW - HOUR), Some(WAMID));
        match WhatsApp.render(&context, payload) {
            Rendered::Parts(parts) => parts.into_iter().map(checked).collect(),
            other => panic!("{other:?}"),
        }
    }

    fn checked(r: ProviderRequest) -> Value {
        assert_eq!(r.method, HttpMethod::Post);
        assert_eq!(r.target, Target::Path(format!("/{PHONE_ID}/messages")));
        assert_eq!(r.auth, ProviderAuth::Bearer("EAAG-token".into()));
        assert_eq!(r.operation, "send");
        let RequestBody::Json(body) = r.body else {
            panic!("{:?}", r.body)
        };
        assert_eq!(body["messaging_product"], json!("whatsapp"));
        body
    }

    /// `(type, object)` of each rendered message part.
    fn rendered(m: Message) -> Vec<(String, Value)> {
        bodies(&Payload::Message(m))
            .into_iter()
            .map(|b| {
                assert_eq!(b["recipient_type"], json!("individual"));
                assert_eq!(b["to"], json!("16505551234"));
                let kind = b["type"].as_str().unwrap().to_owned();
                let v = b[&kind].clone();
                (kind, v)
            })
            .collect()
    }

    fn fallback_parts(m: &Message) -> Vec<(String, Value)> {
        render::split(&render::text_fallback(m, false), TEXT_LIMIT)
            .into_iter()
            .map(|p| ("text".to_owned(), json!({ "body": p })))
            .collect()
    }

    fn reply(title: &str) -> Action {
        Action::reply(title, "ignored")
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

    fn item(title: &str, image: Option<&str>, actions: Vec<Action>) -> Item {
        let mut extra = Map::new();
        extra.insert("description".into(), json!("Fresh today"));
        if let Some(i) = image {
            extra.insert("mediaUrl".into(), json!(i));
        }
        Item {
            title: Some(title.into()),
            actions: Some(actions),
            extra,
        }
    }

    fn media(url: &str, title: Option<&str>, caption: Option<&str>) -> MediaMessage {
        MediaMessage {
            url: url.into(),
            title: title.map(str::to_owned),
            caption: caption.map(str::to_owned),
            ..MediaMessage::default()
        }
    }

    fn respond(status: u16, body: &Value, retry_after_ms: Option<i64>) -> Outcome {
        let bytes = body.to_string();
        WhatsApp.outcome(&ProviderResponse {
            status,
            retry_after_ms,
            body: bytes.as_bytes(),
        })
    }

    fn graph_error(code: i64, message: &str, details: Option<&str>) -> Value {
        let mut e = json!({ "error": { "message": message, "type": "OAuthException",
                                      "code": code, "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam" } });
        if let Some(d) = details {
            e["error"]["error_data"] = json!({ "messaging_product": "whatsapp", "details": d });
        }
        e
    }

    // --- handshake and signature

    #[test]
    fn handshake_and_signature_use_the_configuration() {
        let c = config();
        assert_eq!(
            WhatsApp.handshake(
                &c,
                "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=Verify123"
            ),
            Some(Ok(Answer {
                status: 200,
                content_type: "text/plain",
                body: "1158201444".into()
            }))
        );
        assert_eq!(
            WhatsApp.handshake(
                &c,
                "hub.mode=subscribe&hub.challenge=1&hub.verify_token=Verify12"
            ),
            Some(Err(()))
        );
        let body = one("text", json!({ "body": "hi" })).to_string();
        let headers = vec![(
            "x-hub-signature-256".to_owned(),
            meta::signature(b"s3cret", body.as_bytes()),
        )];
        let request = |body: &[u8]| {
            WhatsApp.verify(
                &c,
                None,
                &InboundRequest {
                    url: "https://sb.example.com/channels/whatsapp/x",
                    query: "",
                    headers: &headers,
                    body,
                },
            )
        };
        assert!(request(body.as_bytes()));
        let mut changed = body.clone().into_bytes();
        let at = changed.iter().position(|b| *b == b'h').unwrap();
        changed[at] = b'H';
        assert!(!request(&changed));
        assert_eq!(WhatsApp.answer(), Answer::empty());
    }

    // --- inbound messages

    #[test]
    fn a_text_message_binds_the_wa_id_with_name_and_phone() {
        let inbound = parse_body(&one("text", json!({ "body": "Hello there" })));
        assert_eq!(
            only(&inbound),
            json!({ "type": "text", "text": "Hello there" })
        );
        let item = &inbound.items[0];
        assert_eq!(item.binding, "16505551234");
        assert!(!item.existing_only);
        assert_eq!(
            Value::Object(item.properties.clone()),
            json!({ "profile": { "full name": "Sheena Nelson" },
                    "channel": { "userId": "16505551234", "phone": "16505551234" } })
        );
        assert!(inbound.profile_requests.is_empty());
        assert!(inbound.notices.is_empty());
    }

    #[test]
    fn a_text_that_is_a_media_url_is_converted() {
        let inbound = parse_body(&one("text", json!({ "body": "https://x.io/cat.png" })));
        assert_eq!(
            only(&inbound),
            json!({ "type": "image", "url": "https://x.io/cat.png" })
        );
    }

    #[test]
    fn media_become_media_links_with_their_caption() {
        let cases = [
            (
                "image",
                json!({ "id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "x", "caption": "My cat" }),
                json!({ "type": "image", "url": link_of("1479537139650973"), "caption": "My cat" }),
            ),
            (
                "sticker",
                json!({ "id": "2", "mime_type": "image/webp", "animated": false }),
                json!({ "type": "image", "url": link_of("2") }),
            ),
            (
                "video",
                json!({ "id": "3", "mime_type": "video/mp4" }),
                json!({ "type": "video", "url": link_of("3") }),
            ),
            (
                "audio",
                json!({ "id": "4", "mime_type": "audio/ogg; codecs=opus", "voice": true }),
                json!({ "type": "audio", "url": link_of("4") }),
            ),
            (
                "document",
                json!({ "id": "5", "mime_type": "application/pdf", "filename": "invoice.pdf", "caption": "April" }),
                json!({ "type": "attachment", "url": link_of("5"), "title": "invoice.pdf", "caption": "April" }),
            ),
        ];
        for (kind, body, expected) in cases {
            assert_eq!(only(&parse_body(&one(kind, body))), expected, "{kind}");
        }
    }

    #[test]
    fn location_joins_name_and_address() {
        let inbound = parse_body(&one(
            "location",
            json!({ "latitude": 37.483307, "longitude": 122.148981,
            "name": "Philz Coffee", "address": "101 Forest Ave, Palo Alto, CA 94301" }),
        ));
        assert_eq!(
            only(&inbound),
            json!({ "type": "location", "latitude": 37.483307, "longitude": 122.148981,
                    "address": "Philz Coffee, 101 Forest Ave, Palo Alto, CA 94301" })
        );
        let bare = parse_body(&one(
            "location",
            json!({ "latitude": 1.5, "longitude": 2.5 }),
        ));
        assert_eq!(
            only(&bare),
            json!({ "type": "location", "latitude": 1.5, "longitude": 2.5 })
        );
    }

    #[test]
    fn contacts_are_names_and_phones_one_per_line() {
        let inbound = parse_body(&one(
            "contacts",
            json!([
                { "name": { "formatted_name": "Barbara Johnson", "first_name": "Barbara" },
                  "phones": [ { "phone": "+1 (940) 555-1234", "type": "HOME" },
                              { "phone": "+1 (650) 555-1234", "wa_id": "16505551234", "type": "WORK" } ] },
                { "name": { "formatted_name": "Ann" }, "phones": [] }
            ]),
        ));
        assert_eq!(
            only(&inbound),
            json!({ "type": "text", "text": "Barbara Johnson\n+1 (940) 555-1234\n+1 (650) 555-1234\nAnn" })
        );
    }

    #[test]
    fn interactive_replies_with_p_ids_are_payload_events_others_text() {
        let button = parse_body(&one(
            "interactive",
            json!({ "type": "button_reply",
            "button_reply": { "id": "p:ORDER_42", "title": "Order" } }),
        ));
        assert_eq!(
            only(&button),
            json!({ "type": "payload", "payloadType": "postback", "payload": "ORDER_42" })
        );
        let list = parse_body(&one(
            "interactive",
            json!({ "type": "list_reply",
            "list_reply": { "id": "r:Tomorrow", "title": "Tomorrow", "description": "x" } }),
        ));
        assert_eq!(only(&list), json!({ "type": "text", "text": "Tomorrow" }));
        let foreign = parse_body(&one(
            "interactive",
            json!({ "type": "button_reply",
            "button_reply": { "id": "something-else", "title": "Yes" } }),
        ));
        assert_eq!(only(&foreign), json!({ "type": "text", "text": "Yes" }));
        let flow = parse_body(&one(
            "interactive",
            json!({ "type": "nfm_reply",
            "nfm_reply": { "response_json": "{}" } }),
        ));
        assert_eq!(
            only(&flow),
            json!({ "type": "text", "text": "[interactive not supported]" })
        );
    }

    #[test]
    fn template_buttons_and_reactions_are_text_and_others_ignored_or_unsupported() {
        let button = parse_body(&one(
            "button",
            json!({ "payload": "Stop promotions", "text": "Stop promotions" }),
        ));
        assert_eq!(
            only(&button),
            json!({ "type": "text", "text": "Stop promotions" })
        );
        let reaction = parse_body(&one(
            "reaction",
            json!({ "message_id": "wamid.x", "emoji": "👍" }),
        ));
        assert_eq!(only(&reaction), json!({ "type": "text", "text": "👍" }));
        let removed = parse_body(&one("reaction", json!({ "message_id": "wamid.x" })));
        assert!(removed.items.is_empty());
        for kind in ["system", "edit", "revoke", "request_welcome"] {
            assert!(parse_body(&one(kind, json!({}))).items.is_empty(), "{kind}");
        }
        let order = parse_body(&one("order", json!({ "catalog_id": "1" })));
        assert_eq!(
            only(&order),
            json!({ "type": "text", "text": "[order not supported]" })
        );
        let unsupported = parse_body(&one("unsupported", json!(null)));
        assert_eq!(
            only(&unsupported),
            json!({ "type": "text", "text": "[unsupported not supported]" })
        );
    }

    #[test]
    fn group_messages_other_numbers_and_other_fields_are_ignored() {
        let mut group = one("text", json!({ "body": "hi all" }));
        group["entry"][0]["changes"][0]["value"]["messages"][0]["group_id"] = json!("120363");
        assert_eq!(parse_body(&group), Inbound::default());
        let mut other = one("text", json!({ "body": "hi" }));
        other["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = json!("999");
        assert_eq!(parse_body(&other), Inbound::default());
        let mut echo = one("text", json!({ "body": "hi" }));
        echo["entry"][0]["changes"][0]["field"] = json!("smb_message_echoes");
        assert_eq!(parse_body(&echo), Inbound::default());
        let page = json!({ "object": "page", "entry": [] });
        assert_eq!(parse_body(&page), Inbound::default());
    }

    #[test]
    fn a_user_without_wa_id_is_bound_by_business_scoped_id() {
        let body = change(
            json!({ "messaging_product": "whatsapp", "metadata": metadata(),
            "contacts": [ { "profile": { "name": "Hidden" }, "user_id": "US.13491208655302741918" } ],
            "messages": [ { "from": "US.13491208655302741918", "id": WAMID, "timestamp": "1",
                            "type": "text", "text": { "body": "hi" } } ] }),
        );
        let inbound = parse_body(&body);
        assert_eq!(inbound.items.len(), 1);
        assert_eq!(inbound.items[0].binding, "US.13491208655302741918");
        assert_eq!(
            Value::Object(inbound.items[0].properties.clone()),
            json!({ "profile": { "full name": "Hidden" },
                    "channel": { "userId": "US.13491208655302741918" } })
        );
    }

    #[test]
    fn messages_match_their_own_contact() {
        let body = change(
            json!({ "messaging_product": "whatsapp", "metadata": metadata(),
            "contacts": [ { "profile": { "name": "A" }, "wa_id": "111" },
                          { "profile": { "name": "B" }, "wa_id": "222" } ],
            "messages": [
                { "from": "222", "id": "wamid.b", "timestamp": "1", "type": "text", "text": { "body": "b" } },
                { "from": "111", "id": "wamid.a", "timestamp": "1", "type": "text", "text": { "body": "a" } } ] }),
        );
        let inbound = parse_body(&body);
        let names: Vec<(&str, &Value)> = inbound
            .items
            .iter()
            .map(|i| (i.binding.as_str(), &i.properties["profile"]["full name"]))
            .collect();
        assert_eq!(names, vec![("222", &json!("B")), ("111", &json!("A"))]);
    }

    // --- inbound statuses

    #[test]
    fn a_read_status_is_a_seen_event_for_an_open_conversation_only() {
        let body = change(
            json!({ "messaging_product": "whatsapp", "metadata": metadata(),
            "statuses": [
                { "id": "wamid.out1", "status": "read", "timestamp": "1750263773", "recipient_id": "16505551234" },
                { "id": "wamid.out2", "status": "delivered", "timestamp": "1750263773", "recipient_id": "16505551234" },
                { "id": "wamid.out3", "status": "sent", "timestamp": "1750263773", "recipient_id": "16505551234" } ] }),
        );
        let inbound = parse_body(&body);
        assert_eq!(
            payloads(&inbound),
            vec![("read:wamid.out1".into(), json!({ "type": "seen" }))]
        );
        assert_eq!(inbound.items[0].binding, "16505551234");
        assert!(inbound.items[0].existing_only);
        assert!(inbound.notices.is_empty());
    }

    #[test]
    fn a_failed_status_is_one_delivery_failed_notice() {
        let failed = json!({ "id": "wamid.out9", "status": "failed", "timestamp": "1750263773",
            "recipient_id": "16505551234",
            "errors": [ { "code": 131026, "title": "Message undeliverable",
                          "message": "Message undeliverable",
                          "error_data": { "details": "Message Undeliverable." } } ] });
        let body = change(
            json!({ "messaging_product": "whatsapp", "metadata": metadata(),
            "statuses": [failed.clone(), failed] }),
        );
        let inbound = parse_body(&body);
        assert!(inbound.items.is_empty());
        assert_eq!(
            inbound.notices,
            vec![InboundNotice {
                dedupe_key: "failed:wamid.out9".into(),
                kind: "delivery_failed",
                description: "WhatsApp could not deliver message wamid.out9 to 16505551234: \
                              Message undeliverable (131026): Message Undeliverable."
                    .into(),
            }]
        );
    }

    #[test]
    fn an_unparseable_body_is_refused() {
        let request = InboundRequest {
            url: "https://sb.example.com/channels/whatsapp/x",
            query: "",
            headers: &[],
            body: b"{",
        };
        assert!(matches!(
            WhatsApp.parse(&config(), &request, &link_of),
            Err(InboundError::Unparseable(_))
        ));
    }

    // --- the window

    #[test]
    fn outside_the_window_a_message_is_refused_without_a_call() {
        let c = config();
        let p = Map::new();
        for last in [Some(NOW - 24 * HOUR - 1000), None] {
            assert_eq!(
                WhatsApp.render(
                    &ctx(&c, &p, "16505551234", last, Some(WAMID)),
                    &Payload::Message(Message::text("hi"))
                ),
                Rendered::Refused(
                    "outside WhatsApp's 24-hour customer service window (131047)".into()
                )
            );
        }
        // Exactly 24 h is still inside.
        assert!(matches!(
            WhatsApp.render(
                &ctx(&c, &p, "16505551234", Some(NOW - 24 * HOUR), None),
                &Payload::Message(Message::text("hi"))
            ),
            Rendered::Parts(_)
        ));
        // Events go regardless of the window.
        assert!(matches!(
            WhatsApp.render(
                &ctx(&c, &p, "16505551234", None, Some(WAMID)),
                &Payload::Event(Event::Seen)
            ),
            Rendered::Parts(_)
        ));
    }

    #[test]
    fn outside_the_window_with_a_template_the_flattened_text_goes_as_its_parameter() {
        let c =
            config_with(json!({ "templateName": "reopen_conversation", "templateLanguage": "de" }));
        let p = Map::new();
        let m = text_with(
            "Your order\n\tshipped  today",
            vec![link("Track", "https://x.io/t")],
        );
        let Rendered::Parts(parts) = WhatsApp.render(
            &ctx(&c, &p, "16505551234", Some(NOW - 25 * HOUR), None),
            &Payload::Message(m.clone()),
        ) else {
            panic!()
        };
        assert_eq!(parts.len(), 1);
        let body = checked(parts.into_iter().next().unwrap());
        let flat = render::text_fallback(&m, false)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(flat.starts_with("Your order shipped today"), "{flat}");
        assert_eq!(
            body,
            json!({ "messaging_product": "whatsapp", "recipient_type": "individual",
                    "to": "16505551234", "type": "template",
                    "template": { "name": "reopen_conversation", "language": { "code": "de" },
                        "components": [ { "type": "body",
                            "parameters": [ { "type": "text", "text": flat } ] } ] } })
        );
        // The language defaults to en_US.
        let c = config_with(json!({ "templateName": "reopen_conversation" }));
        let Rendered::Parts(parts) = WhatsApp.render(
            &ctx(&c, &p, "16505551234", None, None),
            &Payload::Message(Message::text("hi")),
        ) else {
            panic!()
        };
        let RequestBody::Json(body) = &parts[0].body else {
            panic!()
        };
        assert_eq!(body["template"]["language"]["code"], json!("en_US"));
    }

    #[test]
    fn template_text_is_flattened_and_cut_to_1024_chars() {
        assert_eq!(template_text("  a\n\nb\t c  "), "a b c");
        let long = "é".repeat(2000);
        let cut = template_text(&long);
        assert_eq!(cut.chars().count(), 1024);
        assert!(cut.ends_with("é…"));
        assert_eq!(template_text(&"x".repeat(1024)), "x".repeat(1024));
    }

    // --- rendering

    #[test]
    fn a_text_is_a_text_body_and_a_long_one_is_split() {
        assert_eq!(
            rendered(Message::text("hello")),
            vec![("text".into(), json!({ "body": "hello" }))]
        );
        let m = Message::text("word ".repeat(2000).trim());
        let expected = fallback_parts(&m);
        assert!(expected.len() >= 3);
        assert_eq!(rendered(m), expected);
    }

    #[test]
    fn up_to_three_short_choices_are_reply_buttons() {
        let m = text_with(
            "Confirm?",
            vec![reply("Yes"), postback("No thanks", "DECLINE")],
        );
        assert_eq!(
            rendered(m.clone()),
            vec![(
                "interactive".into(),
                json!({ "type": "button",
                "body": { "text": render::text_fallback(&m, true) },
                "action": { "buttons": [
                    { "type": "reply", "reply": { "id": "r:Yes", "title": "Yes" } },
                    { "type": "reply", "reply": { "id": "p:DECLINE", "title": "No thanks" } } ] } })
            )]
        );
    }

    #[test]
    fn four_to_ten_choices_are_a_list() {
        let actions: Vec<Action> = (1..=4)
            .map(|i| reply(&format!("Option number {i}")))
            .collect();
        let m = text_with("Choose", actions);
        let out = rendered(m.clone());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "interactive");
        assert_eq!(out[0].1["type"], json!("list"));
        assert_eq!(
            out[0].1["body"]["text"],
            json!(render::text_fallback(&m, true))
        );
        assert_eq!(out[0].1["action"]["button"], json!("Options"));
        assert_eq!(
            out[0].1["action"]["sections"][0]["rows"][3],
            json!({ "id": "r:Option number 4", "title": "Option number 4" })
        );
        // Eleven choices, or a title over 24 chars, fall back to text.
        let eleven = text_with("Choose", (0..11).map(|i| reply(&format!("O{i}"))).collect());
        let long_title = text_with(
            "Choose",
            vec![
                reply("a"),
                reply("b"),
                reply("c"),
                reply("This title is 25 chars..."),
            ],
        );
        for m in [eleven, long_title] {
            assert_eq!(rendered(m.clone()), fallback_parts(&m));
        }
    }

    #[test]
    fn button_limits_fall_back_to_text() {
        let long_title = text_with("Pick", vec![reply("A title of 21 chars!!")]);
        let long_id = text_with("Pick", vec![postback("Go", &"x".repeat(255))]);
        let duplicate = text_with("Pick", vec![reply("Same"), reply("Same")]);
        let mixed = text_with("Pick", vec![reply("Yes"), link("Docs", "https://x.io")]);
        let long_body = text_with(&"y".repeat(1025), vec![reply("Yes")]);
        let no_body = Message::Text(TextMessage {
            actions: Some(vec![reply("Yes")]),
            ..TextMessage::default()
        });
        for m in [long_title, long_id, duplicate, mixed, long_body, no_body] {
            let out = rendered(m.clone());
            assert_eq!(out, fallback_parts(&m));
            assert!(out.iter().all(|(k, _)| k == "text"));
        }
        // 20-char titles and a 256-char id fit.
        let fits = text_with(
            "Pick",
            vec![postback("A title of 20 chars!", &"x".repeat(254))],
        );
        assert_eq!(rendered(fits)[0].0, "interactive");
    }

    #[test]
    fn one_short_link_is_a_cta_url() {
        let m = text_with(
            "Your invoice is ready",
            vec![link("Open invoice", "https://x.io/inv/1")],
        );
        assert_eq!(
            rendered(m.clone()),
            vec![(
                "interactive".into(),
                json!({ "type": "cta_url",
                "body": { "text": render::text_fallback(&m, true) },
                "action": { "name": "cta_url",
                    "parameters": { "display_text": "Open invoice", "url": "https://x.io/inv/1" } } })
            )]
        );
        let two = text_with(
            "x",
            vec![link("A", "https://a.io"), link("B", "https://b.io")],
        );
        let long = text_with("x", vec![link("A label of 21 chars!!", "https://a.io")]);
        for m in [two, long] {
            assert_eq!(rendered(m.clone()), fallback_parts(&m));
        }
    }

    #[test]
    fn media_are_linked_with_caption_or_title() {
        assert_eq!(
            rendered(Message::Image(media(
                "https://x.io/a.png",
                Some("a.png"),
                Some("Look")
            ))),
            vec![(
                "image".into(),
                json!({ "link": "https://x.io/a.png", "caption": "Look" })
            )]
        );
        assert_eq!(
            rendered(Message::Video(media(
                "https://x.io/v.mp4",
                Some("Clip"),
                None
            ))),
            vec![(
                "video".into(),
                json!({ "link": "https://x.io/v.mp4", "caption": "Clip" })
            )]
        );
        assert_eq!(
            rendered(Message::Image(media("https://x.io/a.png", None, None))),
            vec![("image".into(), json!({ "link": "https://x.io/a.png" }))]
        );
        assert_eq!(
            rendered(Message::Attachment(media(
                "https://x.io/f.pdf",
                Some("f.pdf"),
                Some("Invoice")
            ))),
            vec![(
                "document".into(),
                json!({ "link": "https://x.io/f.pdf", "filename": "f.pdf", "caption": "Invoice" })
            )]
        );
    }

    #[test]
    fn audio_sends_its_caption_first_as_text() {
        assert_eq!(
            rendered(Message::Audio(media(
                "https://x.io/a.mp3",
                None,
                Some("Listen")
            ))),
            vec![
                ("text".into(), json!({ "body": "Listen" })),
                ("audio".into(), json!({ "link": "https://x.io/a.mp3" })),
            ]
        );
        assert_eq!(
            rendered(Message::Audio(media("https://x.io/a.mp3", None, None))),
            vec![("audio".into(), json!({ "link": "https://x.io/a.mp3" }))]
        );
    }

    #[test]
    fn location_with_coordinates_is_native_else_text() {
        let with = Message::Location(LocationMessage {
            address: Some("1 Main St".into()),
            latitude: Some(52.52),
            longitude: Some(13.405),
            ..LocationMessage::default()
        });
        assert_eq!(
            rendered(with),
            vec![(
                "location".into(),
                json!({ "latitude": 52.52, "longitude": 13.405, "address": "1 Main St" })
            )]
        );
        let without = Message::Location(LocationMessage {
            address: Some("1 Main St".into()),
            ..LocationMessage::default()
        });
        assert_eq!(rendered(without.clone()), fallback_parts(&without));
    }

    #[test]
    fn a_card_with_image_and_buttons_is_interactive_others_text() {
        let card = Message::Card(item(
            "Croissant",
            Some("https://x.io/c.jpg"),
            vec![postback("Order", "ORDER_C"), reply("Later")],
        ));
        assert_eq!(
            rendered(card),
            vec![(
                "interactive".into(),
                json!({ "type": "button",
                "header": { "type": "image", "image": { "link": "https://x.io/c.jpg" } },
                "body": { "text": "Croissant\nFresh today" },
                "action": { "buttons": [
                    { "type": "reply", "reply": { "id": "p:ORDER_C", "title": "Order" } },
                    { "type": "reply", "reply": { "id": "r:Later", "title": "Later" } } ] } })
            )]
        );
        let no_image = Message::Card(item("Croissant", None, vec![reply("Later")]));
        let link_action = Message::Card(item(
            "Croissant",
            Some("https://x.io/c.jpg"),
            vec![link("Web", "https://x.io")],
        ));
        let no_actions = Message::Card(item("Croissant", Some("https://x.io/c.jpg"), vec![]));
        let four = Message::Card(item(
            "Croissant",
            Some("https://x.io/c.jpg"),
            (0..4).map(|i| reply(&format!("R{i}"))).collect(),
        ));
        for m in [no_image, link_action, no_actions, four] {
            assert_eq!(rendered(m.clone()), fallback_parts(&m));
        }
    }

    #[test]
    fn a_carousel_is_one_card_per_item() {
        let items = vec![
            item("A", Some("https://x.io/a.jpg"), vec![reply("Pick A")]),
            item("B", None, vec![reply("Pick B")]),
        ];
        let out = rendered(Message::Carousel(ItemsMessage {
            items: items.clone(),
            ..ItemsMessage::default()
        }));
        assert_eq!(out[0].0, "interactive");
        assert_eq!(
            out[0].1["header"]["image"]["link"],
            json!("https://x.io/a.jpg")
        );
        assert_eq!(
            out[1..].to_vec(),
            fallback_parts(&Message::Card(items[1].clone()))
        );
        let list = rendered(Message::List(ItemsMessage {
            items,
            ..ItemsMessage::default()
        }));
        assert_eq!(list, out);
    }

    #[test]
    fn contact_and_video_links_use_the_text_fallback() {
        let mut contact = Map::new();
        contact.insert("name".into(), json!("Ada"));
        for m in [
            Message::Contact(contact),
            Message::Youtube(media("https://youtu.be/dQw4w9WgXcQ", None, None)),
            Message::Vimeo(media("https://vimeo.com/76979871", Some("Talk"), None)),
        ] {
            let out = rendered(m.clone());
            assert!(!out.is_empty());
            assert_eq!(out, fallback_parts(&m));
        }
    }

    #[test]
    fn seen_and_typing_on_mark_the_latest_customer_message_read() {
        let c = config();
        let p = Map::new();
        let seen = bodies(&Payload::Event(Event::Seen));
        assert_eq!(
            seen,
            vec![json!({ "messaging_product": "whatsapp", "status": "read", "message_id": WAMID })]
        );
        let typing = bodies(&Payload::Event(Event::TypingOn));
        assert_eq!(
            typing,
            vec![
                json!({ "messaging_product": "whatsapp", "status": "read", "message_id": WAMID,
                         "typing_indicator": { "type": "text" } })
            ]
        );
        let suffixed = ctx(&c, &p, "16505551234", None, Some("wamid.abc#2"));
        let Rendered::Parts(parts) = WhatsApp.render(&suffixed, &Payload::Event(Event::Seen))
        else {
            panic!()
        };
        assert_eq!(checked(parts[0].clone())["message_id"], json!("wamid.abc"));
        let none = ctx(&c, &p, "16505551234", Some(NOW), None);
        for e in [Event::Seen, Event::TypingOn] {
            assert_eq!(
                WhatsApp.render(&none, &Payload::Event(e)),
                Rendered::Nothing
            );
        }
        let known = ctx(&c, &p, "16505551234", Some(NOW), Some(WAMID));
        for e in [Event::TypingOff, Event::Handover, Event::Release] {
            assert_eq!(
                WhatsApp.render(&known, &Payload::Event(e)),
                Rendered::Nothing
            );
        }
    }

    #[test]
    fn a_business_scoped_binding_goes_in_recipient() {
        let c = config();
        let p = Map::new();
        let context = ctx(&c, &p, "US.13491208655302741918", Some(NOW - HOUR), None);
        let Rendered::Parts(parts) =
            WhatsApp.render(&context, &Payload::Message(Message::text("hi")))
        else {
            panic!()
        };
        let body = checked(parts[0].clone());
        assert_eq!(
            body,
            json!({ "messaging_product": "whatsapp", "recipient_type": "individual",
                    "recipient": "US.13491208655302741918", "type": "text", "text": { "body": "hi" } })
        );
    }

    #[test]
    fn a_phone_number_with_its_plus_goes_in_to() {
        let c = config();
        let p = Map::new();
        for binding in ["+4915112345678", "16505551234"] {
            let context = ctx(&c, &p, binding, Some(NOW - HOUR), None);
            let Rendered::Parts(parts) =
                WhatsApp.render(&context, &Payload::Message(Message::text("hi")))
            else {
                panic!()
            };
            let body = checked(parts[0].clone());
            assert_eq!(body["to"], json!(binding), "{body}");
            assert!(body.get("recipient").is_none(), "{body}");
        }
        assert!(is_business_scoped("CC.abc123"));
        assert!(!is_business_scoped("us.123"));
        assert!(!is_business_scoped("USA.123"));
        assert!(!is_business_scoped("US."));
    }

    // --- outcomes

    #[test]
    fn success_records_the_wamid() {
        let ok = json!({ "messaging_product": "whatsapp",
            "contacts": [ { "input": "16505551234", "wa_id": "16505551234" } ],
            "messages": [ { "id": "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA" } ] });
        assert_eq!(
            respond(200, &ok, None),
            Outcome::Accepted {
                id: Some("wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA".into())
            }
        );
        assert_eq!(
            respond(200, &json!({ "success": true }), None),
            Outcome::Accepted { id: None }
        );
    }

    #[test]
    fn a_131047_answer_is_permanent_with_the_window_reason() {
        let body = graph_error(131047, "Re-engagement message",
            Some("Message failed to send because more than 24 hours have passed since the customer last replied to this number."));
        assert_eq!(
            respond(400, &body, None),
            Outcome::Permanent {
                reason: "WhatsApp 400: outside WhatsApp's 24-hour customer service window (131047)"
                    .into()
            }
        );
    }

    #[test]
    fn error_codes_decide_retry_credentials_or_permanent() {
        for code in [1, 2, 4, 80007, 130429, 131056, 131000, 131016] {
            assert!(
                matches!(
                    respond(400, &graph_error(code, "later", None), None),
                    Outcome::Retry { .. }
                ),
                "{code}"
            );
        }
        for code in [0, 190, 3, 10, 200, 250, 299, 131005, 131031, 368] {
            assert!(
                matches!(
                    respond(400, &graph_error(code, "auth", None), None),
                    Outcome::Credentials { .. }
                ),
                "{code}"
            );
        }
        for code in [
            131026, 131030, 131048, 131049, 131051, 131052, 131053, 100, 131008, 131009, 132000,
            132007, 132016, 12345,
        ] {
            assert!(
                matches!(
                    respond(400, &graph_error(code, "no", None), None),
                    Outcome::Permanent { .. }
                ),
                "{code}"
            );
        }
        // Permanent codes win over a 403; an unexplained 401/403 is credentials.
        assert!(matches!(
            respond(403, &graph_error(131030, "test mode", None), None),
            Outcome::Permanent { .. }
        ));
        assert!(matches!(
            respond(401, &json!({}), None),
            Outcome::Credentials { .. }
        ));
        assert!(matches!(
            respond(403, &json!({}), None),
            Outcome::Credentials { .. }
        ));
        assert!(matches!(
            respond(404, &json!({}), None),
            Outcome::Permanent { .. }
        ));
        assert_eq!(
            respond(400, &graph_error(131026, "Message undeliverable", Some("Receiver is incapable of receiving this message")), None),
            Outcome::Permanent {
                reason: "WhatsApp 400: Message undeliverable: Receiver is incapable of receiving this message (131026)".into()
            }
        );
    }

    #[test]
    fn server_errors_and_429_retry_with_the_wait_hint() {
        assert_eq!(
            respond(
                429,
                &graph_error(130429, "Rate limit hit", None),
                Some(2000)
            ),
            Outcome::Retry {
                reason: "WhatsApp 429: Rate limit hit (130429)".into(),
                wait_ms: Some(2000)
            }
        );
        assert_eq!(
            respond(502, &json!(null), None),
            Outcome::Retry {
                reason: "WhatsApp 502: Bad Gateway".into(),
                wait_ms: None
            }
        );
    }

    // --- provisioning

    fn answer<'a>(status: u16, body: &'a [u8]) -> ProviderResponse<'a> {
        ProviderResponse {
            status,
            retry_after_ms: None,
            body,
        }
    }

    #[test]
    fn credentials_are_verified_on_the_phone_number() {
        let req = WhatsApp.verify_credentials(&config()).unwrap();
        assert_eq!(req.method, HttpMethod::Get);
        assert_eq!(
            req.target,
            Target::Path(format!(
                "/{PHONE_ID}?fields=display_phone_number,verified_name"
            ))
        );
        assert_eq!(req.auth, ProviderAuth::Bearer("EAAG-token".into()));
        assert_eq!(req.operation, "verify");
        let ok = br#"{"verified_name":"Jasper's Market","display_phone_number":"+1 631-555-5555","id":"106540352242922","quality_rating":"GREEN"}"#;
        assert_eq!(
            WhatsApp
                .learn(&config(), &answer(200, ok))
                .map(Value::Object),
            Ok(
                json!({ "displayPhoneNumber": "+1 631-555-5555", "verifiedName": "Jasper's Market" })
            )
        );
        let refused = graph_error(
            100,
            "Unsupported get request. Object with ID '1' does not exist",
            None,
        )
        .to_string();
        assert_eq!(
            WhatsApp.learn(&config(), &answer(400, refused.as_bytes())),
            Err(ProvisionError::Refused(
                "WhatsApp refused the configuration: Unsupported get request. Object with ID '1' does not exist (100)".into()
            ))
        );
        assert!(matches!(
            WhatsApp.learn(&config(), &answer(500, b"")),
            Err(ProvisionError::Unreachable(_))
        ));
        assert!(matches!(
            WhatsApp.learn(&config(), &answer(200, b"{}")),
            Err(ProvisionError::Refused(_))
        ));
    }

    #[test]
    fn register_subscribes_the_account_then_overrides_the_number_s_callback() {
        let url = "https://sb.example.com/channels/whatsapp/0b8e";
        let calls = WhatsApp.register(&config(), url);
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls[0].target,
            Target::Path("/102290129340398/subscribed_apps".into())
        );
        assert_eq!(calls[0].method, HttpMethod::Post);
        assert_eq!(calls[0].body, RequestBody::None);
        assert_eq!(calls[1].target, Target::Path(format!("/{PHONE_ID}")));
        assert_eq!(
            calls[1].body,
            RequestBody::Json(json!({ "webhook_configuration": {
                "override_callback_uri": url, "verify_token": "Verify123" } }))
        );
        for c in &calls {
            assert_eq!(c.auth, ProviderAuth::Bearer("EAAG-token".into()));
            assert_eq!(c.operation, "register");
        }
        let mut without = config();
        without.remove("businessAccountId");
        assert_eq!(WhatsApp.register(&without, url).len(), 1);
        assert_eq!(
            WhatsApp.registered(&answer(200, br#"{"success":true}"#)),
            Ok(())
        );
        assert!(WhatsApp
            .registered(&answer(200, br#"{"success":false}"#))
            .is_err());
        assert_eq!(WhatsApp.deregister(&config()), None);
    }

    // --- media

    #[test]
    fn media_are_looked_up_then_fetched_from_the_returned_url_with_the_token() {
        let lookup = WhatsApp
            .media_lookup(&config(), "1479537139650973")
            .unwrap();
        assert_eq!(lookup.method, HttpMethod::Get);
        assert_eq!(lookup.target, Target::Path("/1479537139650973".into()));
        assert_eq!(lookup.auth, ProviderAuth::Bearer("EAAG-token".into()));
        assert_eq!(lookup.operation, "media");
        let body = br#"{"messaging_product":"whatsapp","url":"https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1479537139650973&ext=1","mime_type":"image/jpeg","sha256":"x","file_size":303833,"id":"1479537139650973"}"#;
        assert_eq!(
            WhatsApp.media_location(&config(), &answer(200, body)),
            MediaLocation::Fetch(ProviderRequest {
                method: HttpMethod::Get,
                target: Target::Absolute(
                    "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1479537139650973&ext=1".into()
                ),
                auth: ProviderAuth::Bearer("EAAG-token".into()),
                body: RequestBody::None,
                operation: "media",
            })
        );
        let gone = graph_error(100, "Unsupported get request.", None).to_string();
        assert_eq!(
            WhatsApp.media_location(&config(), &answer(404, gone.as_bytes())),
            MediaLocation::Gone
        );
        assert_eq!(
            WhatsApp.media_location(&config(), &answer(200, br#"{"url":"file:///etc/passwd"}"#)),
            MediaLocation::Gone
        );
    }
}
