//! The Telegram adapter (SPEC 7.9): Bot API webhooks authenticated by the secret token header,
//! outbound through `sendMessage` and its siblings, files through `getFile` and media links.
//!
//! Choices the SPEC leaves open, kept here:
//! - a `callback_query` becomes a payload event with `externalId` = `cb:{callback_query.id}`
//!   (the id is unique per query, so Telegram's redelivery of the same update deduplicates);
//!   its binding is `message.chat.id` (`from.id` when the message is absent);
//! - a message's buttons: Telegram takes one `reply_markup`, so `link` and short `postback`
//!   actions make an inline keyboard; `reply` actions make a reply keyboard only when there is
//!   no inline button, else they are written as text lines like long postbacks;
//! - a caption longer than Telegram's caption limit is sent as text parts after the media.

use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;

use super::adapter::{
    config_str, Adapter, HttpMethod, Inbound, InboundError, InboundItem, InboundRequest,
    MediaLinker, MediaLocation, Outcome, ProviderAuth, ProviderRequest, ProviderResponse,
    ProvisionError, Rendered, RequestBody, SendContext,
};
use super::parts::{self, MediaKind};
use super::render;
use crate::activity::{Action, Event, Item, MediaMessage, Message, Payload, TextMessage};

/// Characters of `text` per `sendMessage` part **[unconfirmed]**.
pub const TEXT_LIMIT: usize = 4096;

/// The longest `callback_data`, in bytes **[unconfirmed]**; longer postbacks become text.
pub const CALLBACK_DATA_LIMIT: usize = 64;

/// The longest media caption, in characters **[unconfirmed: Bot API documentation, not in
/// SPEC 7.9]**; a longer caption is sent as text after the media.
pub const CAPTION_LIMIT: usize = 1024;

/// The secret token header (lowercase).
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// The updates Switchboard asks for.
const ALLOWED_UPDATES: [&str; 2] = ["message", "callback_query"];

/// Keys of a `Message` that are not content: a message with none of the known parts is
/// `[<first other key> not supported]`.
const META_KEYS: &[&str] = &[
    "message_id",
    "message_thread_id",
    "from",
    "sender_chat",
    "sender_boost_count",
    "sender_business_bot",
    "date",
    "business_connection_id",
    "chat",
    "forward_origin",
    "forward_from",
    "forward_from_chat",
    "forward_from_message_id",
    "forward_signature",
    "forward_sender_name",
    "forward_date",
    "is_topic_message",
    "is_automatic_forward",
    "reply_to_message",
    "external_reply",
    "quote",
    "reply_to_story",
    "via_bot",
    "edit_date",
    "has_protected_content",
    "is_from_offline",
    "media_group_id",
    "author_signature",
    "entities",
    "caption_entities",
    "link_preview_options",
    "effect_id",
    "show_caption_above_media",
    "has_media_spoiler",
    "reply_markup",
    "text",
    "caption",
];

/// The Telegram adapter.
pub struct Telegram;

/// `/bot{token}/{method}`.
fn method_path(configuration: &Map<String, Value>, method: &str) -> String {
    format!(
        "/bot{}/{method}",
        config_str(configuration, "token").unwrap_or_default()
    )
}

/// A Bot API call: `POST /bot{token}/{method}` with a JSON body.
fn call(
    configuration: &Map<String, Value>,
    method: &str,
    body: Value,
    operation: &'static str,
) -> ProviderRequest {
    ProviderRequest::new(
        HttpMethod::Post,
        method_path(configuration, method),
        ProviderAuth::None,
        RequestBody::Json(body),
        operation,
    )
}

/// `chat_id`: the binding as an integer when it is one, else as given.
fn chat_id(binding: &str) -> Value {
    binding
        .parse::<i64>()
        .map_or_else(|_| Value::String(binding.to_owned()), Value::from)
}

/// A JSON integer or string id as a decimal string.
fn id_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// What an answer says: `(ok, error_code, description, retry_after seconds)`.
struct BotAnswer {
    ok: bool,
    code: Option<i64>,
    description: String,
    retry_after: Option<i64>,
    result: Value,
}

fn read_answer(response: &ProviderResponse<'_>) -> BotAnswer {
    let v: Value = serde_json::from_slice(response.body).unwrap_or(Value::Null);
    let description = str_at(&v, "description").map_or_else(
        || {
            let raw = String::from_utf8_lossy(response.body);
            let raw = raw.trim();
            if raw.is_empty() || v.is_object() {
                "no description given".to_owned()
            } else {
                raw.chars().take(200).collect()
            }
        },
        str::to_owned,
    );
    BotAnswer {
        ok: v.get("ok").and_then(Value::as_bool).unwrap_or(false),
        code: v.get("error_code").and_then(Value::as_i64),
        description,
        retry_after: v
            .get("parameters")
            .and_then(|p| p.get("retry_after"))
            .and_then(Value::as_i64),
        result: v.get("result").cloned().unwrap_or(Value::Null),
    }
}

/// Whether the call succeeded (2xx and `ok`), else the provisioning error.
fn provision_result(response: &ProviderResponse<'_>) -> Result<Value, ProvisionError> {
    let a = read_answer(response);
    let status = response.status;
    if (200..300).contains(&status) && a.ok {
        return Ok(a.result);
    }
    let code = a.code.unwrap_or_else(|| i64::from(status));
    if status == 429 || status >= 500 || code == 429 {
        Err(ProvisionError::Unreachable(format!(
            "Telegram is unreachable: Telegram {code}: {}",
            a.description
        )))
    } else {
        Err(ProvisionError::Refused(format!(
            "Telegram refused the configuration: {} ({code})",
            a.description
        )))
    }
}

/// The properties of a sender `from`, for `binding`.
fn properties_of(binding: &str, from: Option<&Value>) -> Map<String, Value> {
    let from = from.unwrap_or(&Value::Null);
    let name = [str_at(from, "first_name"), str_at(from, "last_name")]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let username = str_at(from, "username").unwrap_or_default();
    parts::properties(
        binding,
        Some(&name),
        None,
        str_at(from, "language_code"),
        &[("username", username)],
    )
}

/// The messages of one Telegram `Message` (SPEC 7.9 parts, then SPEC 7.3.4).
fn message_parts(message: &Value, media: MediaLinker<'_>) -> Vec<Message> {
    let file = |kind: MediaKind, v: &Value, title: Option<String>| {
        str_at(v, "file_id").map(|id| parts::media(kind, media(id), title))
    };
    let mut found = Vec::new();
    if let Some(sizes) = message.get("photo").and_then(Value::as_array) {
        let area = |p: &Value| {
            let dim = |k| p.get(k).and_then(Value::as_u64).unwrap_or(0);
            (dim("width") * dim("height"), dim("file_size"))
        };
        // Telegram lists sizes smallest first; the largest area wins, the last on a tie.
        let largest = sizes
            .iter()
            .enumerate()
            .max_by_key(|(i, p)| (area(p), *i))
            .map(|(_, p)| p);
        if let Some(m) = largest.and_then(|p| file(MediaKind::Image, p, None)) {
            found.push(m);
        }
    }
    for (key, kind) in [
        ("video", MediaKind::Video),
        ("video_note", MediaKind::Video),
        ("voice", MediaKind::Audio),
        ("audio", MediaKind::Audio),
        ("sticker", MediaKind::Image),
    ] {
        if let Some(m) = message.get(key).and_then(|v| file(kind, v, None)) {
            found.push(m);
        }
    }
    if let Some(doc) = message.get("document") {
        let title = str_at(doc, "file_name").map(str::to_owned);
        if let Some(m) = file(MediaKind::Attachment, doc, title) {
            found.push(m);
        }
    }
    let point = |v: &Value| {
        let lat = v.get("latitude").and_then(Value::as_f64)?;
        let lon = v.get("longitude").and_then(Value::as_f64)?;
        Some((lat, lon))
    };
    // A venue carries its `location` too: read once, as the venue.
    if let Some(venue) = message.get("venue") {
        let address = [str_at(venue, "title"), str_at(venue, "address")]
            .into_iter()
            .flatten()
            .filter(|s| !s.trim().is_empty())
            .collect::<Vec<_>>()
            .join(", ");
        if let Some((lat, lon)) = venue.get("location").and_then(point) {
            found.push(parts::location(lat, lon, Some(address)));
        }
    } else if let Some((lat, lon)) = message.get("location").and_then(point) {
        found.push(parts::location(lat, lon, None));
    }
    let mut text = str_at(message, "text")
        .or_else(|| str_at(message, "caption"))
        .map(str::to_owned);
    if let Some(contact) = message.get("contact") {
        let name = [str_at(contact, "first_name"), str_at(contact, "last_name")]
            .into_iter()
            .flatten()
            .filter(|s| !s.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let lines: Vec<&str> = [Some(name.as_str()), str_at(contact, "phone_number")]
            .into_iter()
            .flatten()
            .filter(|s| !s.trim().is_empty())
            .collect();
        if !lines.is_empty() {
            let contact_text = lines.join("\n");
            text = Some(match text {
                Some(t) if !t.trim().is_empty() => format!("{t}\n{contact_text}"),
                _ => contact_text,
            });
        }
    }
    let out = parts::messages(text, found);
    if !out.is_empty() {
        return out;
    }
    let kind = message
        .as_object()
        .and_then(|o| o.keys().find(|k| !META_KEYS.contains(&k.as_str())));
    kind.map(|k| vec![parts::not_supported(k)])
        .unwrap_or_default()
}

fn parse_message(message: &Value, media: MediaLinker<'_>) -> Result<Vec<InboundItem>, String> {
    let chat = message.get("chat").unwrap_or(&Value::Null);
    if str_at(chat, "type") != Some("private") {
        return Ok(Vec::new());
    }
    let from = message.get("from");
    if from
        .and_then(|f| f.get("is_bot"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Ok(Vec::new());
    }
    let binding = id_string(chat.get("id")).ok_or("message.chat.id is missing")?;
    let message_id = id_string(message.get("message_id")).ok_or("message.message_id is missing")?;
    let messages = message_parts(message, media);
    let ids = parts::external_ids(&format!("{binding}:{message_id}"), messages.len());
    let properties = properties_of(&binding, from);
    Ok(messages
        .into_iter()
        .zip(ids)
        .map(|(m, external_id)| InboundItem {
            binding: binding.clone(),
            external_id,
            payload: Payload::Message(m),
            properties: properties.clone(),
            existing_only: false,
        })
        .collect())
}

/// The payload event of a `callback_query` (none outside private chats, from bots, or without
/// `data`) and its `answerCallbackQuery`.
fn parse_callback(
    configuration: &Map<String, Value>,
    query: &Value,
) -> Result<(Option<InboundItem>, ProviderRequest), String> {
    let id = id_string(query.get("id")).ok_or("callback_query.id is missing")?;
    let answer = call(
        configuration,
        "answerCallbackQuery",
        json!({ "callback_query_id": id }),
        "answer",
    );
    let from = query.get("from");
    let chat = query.get("message").and_then(|m| m.get("chat"));
    let private = chat.is_none_or(|c| str_at(c, "type") == Some("private"));
    let bot = from
        .and_then(|f| f.get("is_bot"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let binding = chat
        .and_then(|c| id_string(c.get("id")))
        .or_else(|| from.and_then(|f| id_string(f.get("id"))));
    let item = match (str_at(query, "data"), binding) {
        (Some(data), Some(binding)) if private && !bot => Some(InboundItem {
            properties: properties_of(&binding, from),
            binding,
            external_id: format!("cb:{id}"),
            payload: Payload::Event(Event::Payload {
                payload_type: "postback".to_owned(),
                payload: Value::String(data.to_owned()),
            }),
            existing_only: false,
        }),
        _ => None,
    };
    Ok((item, answer))
}

/// A message's buttons: the `reply_markup` and the actions left to write as text lines, in
/// their order. `link` and `postback` (payload ≤ [`CALLBACK_DATA_LIMIT`] bytes) make an inline
/// keyboard; without one, `reply` actions make a one-time reply keyboard.
fn keyboard(actions: &[Action]) -> (Option<Value>, Vec<&Action>) {
    let inline_button = |a: &Action| match a {
        Action::Link(l) => Some(json!([{ "text": l.title, "url": l.url }])),
        Action::Postback(p) if p.payload.len() <= CALLBACK_DATA_LIMIT => {
            Some(json!([{ "text": p.title, "callback_data": p.payload }]))
        }
        _ => None,
    };
    let inline: Vec<Value> = actions.iter().filter_map(inline_button).collect();
    if !inline.is_empty() {
        let rest = actions
            .iter()
            .filter(|a| inline_button(a).is_none())
            .collect();
        return (Some(json!({ "inline_keyboard": inline })), rest);
    }
    let replies: Vec<Value> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply(p) => Some(json!([{ "text": p.title }])),
            _ => None,
        })
        .collect();
    let rest = actions
        .iter()
        .filter(|a| !matches!(a, Action::Reply(_)))
        .collect();
    if replies.is_empty() {
        return (None, rest);
    }
    (
        Some(json!({ "keyboard": replies, "one_time_keyboard": true, "resize_keyboard": true })),
        rest,
    )
}

impl Telegram {
    /// `sendMessage` parts of `text` (split per [`TEXT_LIMIT`]), `markup` on the last one.
    fn texts(
        configuration: &Map<String, Value>,
        chat: &Value,
        text: &str,
        markup: Option<Value>,
    ) -> Vec<ProviderRequest> {
        let pieces = render::split(text, TEXT_LIMIT);
        let last = pieces.len().saturating_sub(1);
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, piece)| {
                let mut body = json!({ "chat_id": chat, "text": piece });
                if let (true, Some(m)) = (i == last, &markup) {
                    body["reply_markup"] = m.clone();
                }
                call(configuration, "sendMessage", body, "send")
            })
            .collect()
    }

    /// A text message: its text and items, the actions as buttons where they fit.
    fn text(
        configuration: &Map<String, Value>,
        chat: &Value,
        t: &TextMessage,
    ) -> Vec<ProviderRequest> {
        let (markup, as_text) = keyboard(t.actions.as_deref().unwrap_or_default());
        let bare = Message::Text(TextMessage {
            actions: None,
            ..t.clone()
        });
        let mut lines: Vec<String> = Some(render::text_fallback(&bare, true))
            .filter(|s| !s.is_empty())
            .into_iter()
            .collect();
        lines.extend(as_text.into_iter().map(render::action_line));
        let mut text = lines.join("\n");
        if text.trim().is_empty() {
            // Telegram refuses an empty text: the buttons' titles stand in.
            text = render::text_fallback(&Message::Text(t.clone()), false);
        }
        Self::texts(configuration, chat, &text, markup)
    }

    /// `sendPhoto` & co. with `caption` (caption or title); a caption too long for Telegram
    /// follows as text.
    fn media(
        configuration: &Map<String, Value>,
        chat: &Value,
        method: &str,
        field: &str,
        m: &MediaMessage,
    ) -> Vec<ProviderRequest> {
        let caption = m
            .caption
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .or(m.title.as_deref())
            .unwrap_or_default();
        Self::with_caption(configuration, chat, method, field, &m.url, caption, None)
    }

    fn with_caption(
        configuration: &Map<String, Value>,
        chat: &Value,
        method: &str,
        field: &str,
        url: &str,
        caption: &str,
        markup: Option<Value>,
    ) -> Vec<ProviderRequest> {
        let mut body = json!({ "chat_id": chat, field: url });
        let long = caption.chars().count() > CAPTION_LIMIT;
        if !caption.is_empty() && !long {
            body["caption"] = Value::String(caption.to_owned());
        }
        if long {
            let mut out = vec![call(configuration, method, body, "send")];
            out.extend(Self::texts(configuration, chat, caption, markup));
            return out;
        }
        if let Some(m) = markup {
            body["reply_markup"] = m;
        }
        vec![call(configuration, method, body, "send")]
    }

    /// A card: `sendPhoto` with caption `title\ndescription` and its buttons; no image:
    /// `sendMessage`.
    fn card(configuration: &Map<String, Value>, chat: &Value, item: &Item) -> Vec<ProviderRequest> {
        let (markup, as_text) = keyboard(item.actions.as_deref().unwrap_or_default());
        let description = item.extra.get("description").and_then(Value::as_str);
        let mut lines: Vec<String> = [item.title.as_deref(), description]
            .into_iter()
            .flatten()
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
            .collect();
        lines.extend(as_text.into_iter().map(render::action_line));
        let text = lines.join("\n");
        let image = item
            .extra
            .get("mediaUrl")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty());
        match image {
            Some(url) => Self::with_caption(
                configuration,
                chat,
                "sendPhoto",
                "photo",
                url,
                &text,
                markup,
            ),
            None if text.trim().is_empty() => Self::texts(
                configuration,
                chat,
                &render::card_fallback(item, false),
                markup,
            ),
            None => Self::texts(configuration, chat, &text, markup),
        }
    }
}

impl Adapter for Telegram {
    fn provider(&self) -> &'static str {
        "Telegram"
    }

    /// SPEC 7.4.1: the events this channel maps.
    fn delivers_event(&self, event: &crate::activity::Event) -> bool {
        use crate::activity::Event;
        matches!(event, Event::TypingOn)
    }

    /// `X-Telegram-Bot-Api-Secret-Token` equals `webhookSecret` (none configured: refused).
    fn verify(
        &self,
        configuration: &Map<String, Value>,
        _app_secret: Option<&str>,
        request: &InboundRequest<'_>,
    ) -> bool {
        let Some(secret) = config_str(configuration, "webhookSecret").filter(|s| !s.is_empty())
        else {
            return false;
        };
        let Some(given) = request.header(SECRET_HEADER) else {
            return false;
        };
        bool::from(given.as_bytes().ct_eq(secret.as_bytes()))
    }

    fn parse(
        &self,
        configuration: &Map<String, Value>,
        request: &InboundRequest<'_>,
        media: MediaLinker<'_>,
    ) -> Result<Inbound, InboundError> {
        let update: Value = serde_json::from_slice(request.body)
            .map_err(|e| InboundError::Unparseable(format!("not JSON: {e}")))?;
        if !update.is_object() {
            return Err(InboundError::Unparseable(
                "the update is not an object".to_owned(),
            ));
        }
        let mut inbound = Inbound::default();
        if let Some(message) = update.get("message") {
            inbound.items = parse_message(message, media).map_err(InboundError::Unparseable)?;
        }
        if let Some(query) = update.get("callback_query") {
            let (item, answer) =
                parse_callback(configuration, query).map_err(InboundError::Unparseable)?;
            inbound.items.extend(item);
            inbound.after.push(answer);
        }
        Ok(inbound)
    }

    fn render(&self, context: &SendContext<'_>, payload: &Payload) -> Rendered {
        let configuration = context.configuration;
        let chat = chat_id(context.binding);
        let message = match payload {
            Payload::Message(m) => m,
            Payload::Event(Event::TypingOn) => {
                return Rendered::Parts(vec![call(
                    configuration,
                    "sendChatAction",
                    json!({ "chat_id": chat, "action": "typing" }),
                    "send",
                )]);
            }
            Payload::Event(_) => return Rendered::Nothing,
        };
        let parts = match message {
            Message::Text(t) => Self::text(configuration, &chat, t),
            Message::Image(m) => Self::media(configuration, &chat, "sendPhoto", "photo", m),
            Message::Video(m) => Self::media(configuration, &chat, "sendVideo", "video", m),
            Message::Audio(m) => Self::media(configuration, &chat, "sendAudio", "audio", m),
            Message::Attachment(m) => {
                Self::media(configuration, &chat, "sendDocument", "document", m)
            }
            Message::Location(l) => match (l.latitude, l.longitude) {
                (Some(lat), Some(lon)) => vec![call(
                    configuration,
                    "sendLocation",
                    json!({ "chat_id": chat, "latitude": lat, "longitude": lon }),
                    "send",
                )],
                _ => Self::texts(
                    configuration,
                    &chat,
                    &render::text_fallback(message, false),
                    None,
                ),
            },
            Message::Card(item) => Self::card(configuration, &chat, item),
            Message::Carousel(m) | Message::List(m) => m
                .items
                .iter()
                .flat_map(|item| Self::card(configuration, &chat, item))
                .collect(),
            Message::Contact(_) | Message::Youtube(_) | Message::Vimeo(_) => Self::texts(
                configuration,
                &chat,
                &render::text_fallback(message, false),
                None,
            ),
        };
        Rendered::Parts(parts)
    }

    fn outcome(&self, response: &ProviderResponse<'_>) -> Outcome {
        let status = response.status;
        let a = read_answer(response);
        if (200..300).contains(&status) && a.ok {
            return Outcome::Accepted {
                id: id_string(a.result.get("message_id")),
            };
        }
        // A 2xx without `ok` is read by its `error_code`.
        let code = match (status, a.code) {
            (200..=299, Some(c)) => c,
            (200..=299, None) => 500,
            _ => i64::from(status),
        };
        let reason = format!("Telegram {}: {}", a.code.unwrap_or(code), a.description);
        if matches!(code, 408 | 425 | 429) || code >= 500 {
            Outcome::Retry {
                reason,
                wait_ms: a
                    .retry_after
                    .map(|s| s.saturating_mul(1000))
                    .or(response.retry_after_ms),
            }
        } else if code == 401 {
            Outcome::Credentials { reason }
        } else {
            Outcome::Permanent { reason }
        }
    }

    fn verify_credentials(&self, configuration: &Map<String, Value>) -> Option<ProviderRequest> {
        Some(ProviderRequest::new(
            HttpMethod::Get,
            method_path(configuration, "getMe"),
            ProviderAuth::None,
            RequestBody::None,
            "verify",
        ))
    }

    /// `username` from `getMe`.
    fn learn(
        &self,
        _configuration: &Map<String, Value>,
        response: &ProviderResponse<'_>,
    ) -> Result<Map<String, Value>, ProvisionError> {
        let result = provision_result(response)?;
        let Some(username) = str_at(&result, "username") else {
            return Err(ProvisionError::Refused(
                "Telegram refused the configuration: getMe gave no username (200)".to_owned(),
            ));
        };
        let mut learned = Map::new();
        learned.insert("username".to_owned(), Value::String(username.to_owned()));
        Ok(learned)
    }

    /// `setWebhook` with the secret token and the updates Switchboard reads.
    fn register(&self, configuration: &Map<String, Value>, url: &str) -> Vec<ProviderRequest> {
        let mut body = json!({ "url": url, "allowed_updates": ALLOWED_UPDATES });
        if let Some(secret) = config_str(configuration, "webhookSecret") {
            body["secret_token"] = Value::String(secret.to_owned());
        }
        vec![call(configuration, "setWebhook", body, "register")]
    }

    fn registered(&self, response: &ProviderResponse<'_>) -> Result<(), ProvisionError> {
        provision_result(response).map(|_| ())
    }

    fn deregister(&self, configuration: &Map<String, Value>) -> Option<ProviderRequest> {
        Some(call(
            configuration,
            "deleteWebhook",
            json!({}),
            "deregister",
        ))
    }

    fn media_lookup(
        &self,
        configuration: &Map<String, Value>,
        reference: &str,
    ) -> Option<ProviderRequest> {
        Some(call(
            configuration,
            "getFile",
            json!({ "file_id": reference }),
            "media",
        ))
    }

    /// `GET /file/bot{token}/{file_path}`; `ok: false` or no `file_path`: gone.
    fn media_location(
        &self,
        configuration: &Map<String, Value>,
        response: &ProviderResponse<'_>,
    ) -> MediaLocation {
        let a = read_answer(response);
        let path = str_at(&a.result, "file_path").filter(|p| !p.is_empty());
        match path {
            Some(p) if a.ok && (200..300).contains(&response.status) => {
                MediaLocation::Fetch(ProviderRequest::new(
                    HttpMethod::Get,
                    format!(
                        "/file/bot{}/{}",
                        config_str(configuration, "token").unwrap_or_default(),
                        p.trim_start_matches('/')
                    ),
                    ProviderAuth::None,
                    RequestBody::None,
                    "media",
                ))
            }
            _ => MediaLocation::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::SenderRole;
    use crate::channel::adapter::Target;

    const TOKEN: &str = "123456:ABC-DEF";

    fn config() -> Map<String, Value> {
        json!({ "token": TOKEN, "webhookSecret": "s3cr3t_-X", "username": "switchboard_bot" })
            .as_object()
            .unwrap()
            .clone()
    }

    fn request<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> InboundRequest<'a> {
        InboundRequest {
            url: "https://sb.io/channels/telegram/x",
            query: "",
            headers,
            body,
        }
    }

    fn header(v: &str) -> Vec<(String, String)> {
        vec![(SECRET_HEADER.to_owned(), v.to_owned())]
    }

    #[test]
    fn verify_compares_the_secret_token() {
        let c = config();
        assert!(Telegram.verify(&c, None, &request(&header("s3cr3t_-X"), b"{}")));
        assert!(!Telegram.verify(&c, None, &request(&header("s3cr3t_-Y"), b"{}")));
        assert!(!Telegram.verify(&c, None, &request(&header("s3cr3t_-"), b"{}")));
        assert!(!Telegram.verify(&c, None, &request(&header(""), b"{}")));
        assert!(!Telegram.verify(&c, None, &request(&[], b"{}")));
        let mut none = config();
        none.remove("webhookSecret");
        assert!(!Telegram.verify(&none, None, &request(&header(""), b"{}")));
        none.insert("webhookSecret".into(), json!(""));
        assert!(!Telegram.verify(&none, None, &request(&header(""), b"{}")));
    }

    fn linker(r: &str) -> String {
        format!("https://sb.io/channels/media/i/{r}")
    }

    fn parse(update: Value) -> Inbound {
        let body = serde_json::to_vec(&update).unwrap();
        Telegram
            .parse(&config(), &request(&[], &body), &linker)
            .unwrap()
    }

    fn from() -> Value {
        json!({ "id": 777, "is_bot": false, "first_name": "Ada", "last_name": "Lovelace",
                "username": "ada", "language_code": "en" })
    }

    fn private(fields: Value) -> Value {
        let mut m = json!({ "message_id": 42, "from": from(), "date": 1_700_000_000,
            "chat": { "id": 777, "type": "private", "first_name": "Ada" } });
        for (k, v) in fields.as_object().unwrap() {
            m[k] = v.clone();
        }
        json!({ "update_id": 1, "message": m })
    }

    fn only_message(inbound: &Inbound) -> &Message {
        assert_eq!(inbound.items.len(), 1, "{inbound:?}");
        match &inbound.items[0].payload {
            Payload::Message(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_a_private_text() {
        let inbound = parse(private(json!({ "text": "Hello" })));
        assert_eq!(only_message(&inbound), &Message::text("Hello"));
        let item = &inbound.items[0];
        assert_eq!(item.binding, "777");
        assert_eq!(item.external_id, "777:42");
        assert_eq!(
            Value::Object(item.properties.clone()),
            json!({ "profile": { "full name": "Ada Lovelace", "language": "en" },
                    "channel": { "userId": "777", "username": "ada" } })
        );
        assert!(inbound.after.is_empty());
    }

    #[test]
    fn ignores_groups_edits_bots_and_other_updates() {
        let mut group = private(json!({ "text": "hi" }));
        group["message"]["chat"] = json!({ "id": -100, "type": "group", "title": "G" });
        assert!(parse(group).items.is_empty());
        let mut channel = private(json!({ "text": "hi" }));
        channel["message"]["chat"]["type"] = json!("channel");
        assert!(parse(channel).items.is_empty());
        let mut bot = private(json!({ "text": "hi" }));
        bot["message"]["from"]["is_bot"] = json!(true);
        assert!(parse(bot).items.is_empty());
        let edited =
            json!({ "update_id": 2, "edited_message": private(json!({ "text": "x" }))["message"] });
        assert_eq!(parse(edited), Inbound::default());
        assert_eq!(
            parse(json!({ "update_id": 3, "my_chat_member": {} })),
            Inbound::default()
        );
    }

    #[test]
    fn unparseable_bodies() {
        let c = config();
        for body in [
            &b"not json"[..],
            b"[1]",
            br#"{"message":{"chat":{"type":"private"},"message_id":1}}"#,
        ] {
            assert!(matches!(
                Telegram.parse(&c, &request(&[], body), &linker),
                Err(InboundError::Unparseable(_))
            ));
        }
    }

    #[test]
    fn the_largest_photo_with_its_caption() {
        let inbound = parse(private(json!({
            "photo": [
                { "file_id": "small", "file_unique_id": "a", "width": 90, "height": 60, "file_size": 1000 },
                { "file_id": "large", "file_unique_id": "b", "width": 1280, "height": 853 },
                { "file_id": "medium", "file_unique_id": "c", "width": 320, "height": 213 }
            ],
            "caption": "Sunset"
        })));
        let Message::Image(m) = only_message(&inbound) else {
            panic!("{inbound:?}")
        };
        assert_eq!(m.url, linker("large"));
        assert_eq!(m.caption.as_deref(), Some("Sunset"));
        assert_eq!(inbound.items[0].external_id, "777:42");
    }

    #[test]
    fn file_parts_become_media_links() {
        let cases = [
            (json!({ "video": { "file_id": "v1" } }), "video", "v1"),
            (json!({ "video_note": { "file_id": "vn" } }), "video", "vn"),
            (json!({ "voice": { "file_id": "vo" } }), "audio", "vo"),
            (json!({ "audio": { "file_id": "au" } }), "audio", "au"),
            (json!({ "sticker": { "file_id": "st" } }), "image", "st"),
            (
                json!({ "document": { "file_id": "doc", "file_name": "a.pdf" } }),
                "attachment",
                "doc",
            ),
        ];
        for (fields, kind, id) in cases {
            let inbound = parse(private(fields));
            let m = only_message(&inbound);
            assert_eq!(m.type_name(), kind);
            let v = serde_json::to_value(m).unwrap();
            assert_eq!(v["url"], json!(linker(id)), "{kind}");
            if kind == "attachment" {
                assert_eq!(v["title"], json!("a.pdf"));
            }
        }
    }

    #[test]
    fn locations_venues_and_contacts() {
        let loc = parse(private(
            json!({ "location": { "latitude": 52.52, "longitude": 13.405 } }),
        ));
        assert_eq!(only_message(&loc), &parts::location(52.52, 13.405, None));
        let venue = parse(private(json!({
            "location": { "latitude": 1.0, "longitude": 2.0 },
            "venue": { "location": { "latitude": 1.0, "longitude": 2.0 }, "title": "Café", "address": "Main St 1" }
        })));
        assert_eq!(
            only_message(&venue),
            &parts::location(1.0, 2.0, Some("Café, Main St 1".into()))
        );
        let contact = parse(private(
            json!({ "contact": { "phone_number": "+4930123", "first_name": "Bob", "last_name": "B" } }),
        ));
        assert_eq!(only_message(&contact), &Message::text("Bob B\n+4930123"));
    }

    #[test]
    fn several_parts_and_unsupported_kinds() {
        // Text first, then media; extra parts numbered.
        let inbound = parse(private(json!({
            "caption": "two things",
            "document": { "file_id": "d" },
            "location": { "latitude": 1.0, "longitude": 2.0 }
        })));
        let ids: Vec<&str> = inbound
            .items
            .iter()
            .map(|i| i.external_id.as_str())
            .collect();
        assert_eq!(ids, ["777:42", "777:42#1", "777:42#2"]);
        let poll = parse(private(json!({ "poll": { "id": "p", "question": "?" } })));
        assert_eq!(only_message(&poll), &Message::text("[poll not supported]"));
        // A bare URL text is converted (SPEC 4).
        let url = parse(private(json!({ "text": "https://x.io/a.png" })));
        assert_eq!(only_message(&url).type_name(), "image");
    }

    #[test]
    fn a_callback_query_is_a_postback_event_then_answered() {
        let inbound = parse(json!({ "update_id": 5, "callback_query": {
            "id": "4382bfdwdsb323b2d9", "from": from(), "chat_instance": "ci",
            "message": { "message_id": 40, "chat": { "id": 777, "type": "private" }, "date": 1, "text": "Pick" },
            "data": "BUY_RED"
        } }));
        assert_eq!(inbound.items.len(), 1);
        let item = &inbound.items[0];
        assert_eq!(item.binding, "777");
        assert_eq!(item.external_id, "cb:4382bfdwdsb323b2d9");
        assert_eq!(
            match &item.payload {
                Payload::Event(e) => serde_json::to_value(e).unwrap(),
                other => panic!("{other:?}"),
            },
            json!({ "type": "payload", "payloadType": "postback", "payload": "BUY_RED" })
        );
        assert_eq!(item.properties["channel"]["username"], json!("ada"));
        assert_eq!(
            inbound.after,
            vec![ProviderRequest::new(
                HttpMethod::Post,
                format!("/bot{TOKEN}/answerCallbackQuery"),
                ProviderAuth::None,
                RequestBody::Json(json!({ "callback_query_id": "4382bfdwdsb323b2d9" })),
                "answer",
            )]
        );
        // Without data (a game button): nothing to store, still answered.
        let inbound = parse(
            json!({ "update_id": 6, "callback_query": { "id": "q2", "from": from(), "game_short_name": "g" } }),
        );
        assert!(inbound.items.is_empty());
        assert_eq!(inbound.after.len(), 1);
        // Without a message: the sender's id.
        let inbound = parse(
            json!({ "update_id": 7, "callback_query": { "id": "q3", "from": from(), "data": "x" } }),
        );
        assert_eq!(inbound.items[0].binding, "777");
    }

    fn render_payload(payload: Payload) -> Rendered {
        let c = config();
        let props = Map::new();
        let context = SendContext {
            configuration: &c,
            binding: "777",
            properties: &props,
            now: 0,
            sender: SenderRole::Bot,
            last_customer_activity: None,
            last_customer_message: None,
            last_customer_external_id: None,
        };
        Telegram.render(&context, &payload)
    }

    /// `(method, body)` of each part.
    fn calls(v: Value) -> Vec<(String, Value)> {
        let m: Message = serde_json::from_value(v).unwrap();
        parts_of(render_payload(Payload::Message(m)))
    }

    fn parts_of(r: Rendered) -> Vec<(String, Value)> {
        let Rendered::Parts(parts) = r else {
            panic!("{r:?}")
        };
        parts
            .into_iter()
            .map(|p| {
                assert_eq!(p.method, HttpMethod::Post);
                assert_eq!(p.operation, "send");
                let Target::Path(path) = p.target else {
                    panic!()
                };
                let method = path
                    .strip_prefix(&format!("/bot{TOKEN}/"))
                    .unwrap()
                    .to_owned();
                let RequestBody::Json(body) = p.body else {
                    panic!()
                };
                (method, body)
            })
            .collect()
    }

    #[test]
    fn a_text_with_buttons() {
        let c = calls(json!({ "type": "text", "text": "Choose", "actions": [
            { "type": "link", "title": "Site", "url": "https://x.io" },
            { "type": "postback", "title": "Red", "payload": "RED" },
            { "type": "postback", "title": "Long", "payload": "x".repeat(65) }
        ] }));
        assert_eq!(
            c,
            vec![(
                "sendMessage".to_owned(),
                json!({ "chat_id": 777, "text": "Choose\n• Long", "reply_markup": { "inline_keyboard": [
                    [{ "text": "Site", "url": "https://x.io" }],
                    [{ "text": "Red", "callback_data": "RED" }]
                ] } })
            )]
        );
        // A 64-byte payload still fits (bytes, not chars).
        let c = calls(json!({ "type": "text", "text": "t", "actions": [
            { "type": "postback", "title": "P", "payload": "é".repeat(32) } ] }));
        assert_eq!(
            c[0].1["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
            json!("é".repeat(32))
        );
        let c = calls(json!({ "type": "text", "text": "t", "actions": [
            { "type": "postback", "title": "P", "payload": "é".repeat(33) } ] }));
        assert_eq!(c[0].1, json!({ "chat_id": 777, "text": "t\n• P" }));
    }

    #[test]
    fn replies_make_a_one_time_keyboard() {
        let c = calls(
            json!({ "type": "text", "text": "Yes?", "items": [{ "title": "Terms", "description": "v2" }],
            "actions": [
                { "type": "reply", "title": "Yes", "payload": "y" },
                { "type": "reply", "title": "No", "payload": "n" } ] }),
        );
        assert_eq!(
            c[0].1,
            json!({ "chat_id": 777, "text": "Yes?\n• Terms — v2", "reply_markup": {
                "keyboard": [[{ "text": "Yes" }], [{ "text": "No" }]],
                "one_time_keyboard": true, "resize_keyboard": true } })
        );
        // Beside inline buttons, replies are written as text.
        let c = calls(json!({ "type": "text", "text": "Mixed", "actions": [
            { "type": "reply", "title": "Yes", "payload": "y" },
            { "type": "link", "title": "Site", "url": "https://x.io" } ] }));
        assert_eq!(c[0].1["text"], json!("Mixed\n• Yes"));
        assert!(c[0].1["reply_markup"].get("inline_keyboard").is_some());
    }

    #[test]
    fn long_texts_split_with_the_keyboard_on_the_last_part() {
        let text = format!("{}\n{}", "a".repeat(4096), "b".repeat(5));
        let c = calls(json!({ "type": "text", "text": text, "actions": [
            { "type": "link", "title": "Site", "url": "https://x.io" } ] }));
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].1, json!({ "chat_id": 777, "text": "a".repeat(4096) }));
        assert_eq!(c[1].1["text"], json!("b".repeat(5)));
        assert!(c[1].1.get("reply_markup").is_some());
    }

    #[test]
    fn media_locations_and_fallbacks() {
        for (t, method, field) in [
            ("image", "sendPhoto", "photo"),
            ("video", "sendVideo", "video"),
            ("audio", "sendAudio", "audio"),
            ("attachment", "sendDocument", "document"),
        ] {
            let c = calls(json!({ "type": t, "url": "https://x.io/f", "title": "T" }));
            assert_eq!(
                c,
                vec![(
                    method.to_owned(),
                    json!({ "chat_id": 777, field: "https://x.io/f", "caption": "T" })
                )]
            );
            let c = calls(json!({ "type": t, "url": "https://x.io/f" }));
            assert_eq!(c[0].1, json!({ "chat_id": 777, field: "https://x.io/f" }));
        }
        let long = "c".repeat(CAPTION_LIMIT + 1);
        let c = calls(json!({ "type": "image", "url": "https://x.io/f", "caption": long }));
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].1, json!({ "chat_id": 777, "photo": "https://x.io/f" }));
        assert_eq!(
            c[1],
            (
                "sendMessage".to_owned(),
                json!({ "chat_id": 777, "text": long })
            )
        );

        let c = calls(
            json!({ "type": "location", "latitude": 52.5, "longitude": 13.4, "address": "Berlin" }),
        );
        assert_eq!(
            c,
            vec![(
                "sendLocation".to_owned(),
                json!({ "chat_id": 777, "latitude": 52.5, "longitude": 13.4 })
            )]
        );
        let c = calls(json!({ "type": "location", "address": "Berlin" }));
        assert_eq!(
            c[0],
            (
                "sendMessage".to_owned(),
                json!({ "chat_id": 777, "text": "Berlin" })
            )
        );
        let c = calls(json!({ "type": "contact", "name": "Bob" }));
        assert_eq!(c[0].1["text"], json!("name: Bob"));
        let c =
            calls(json!({ "type": "youtube", "url": "https://youtu.be/x", "caption": "Watch" }));
        assert_eq!(
            c[0],
            (
                "sendMessage".to_owned(),
                json!({ "chat_id": 777, "text": "Watch\nhttps://youtu.be/x" })
            )
        );
    }

    #[test]
    fn cards_carousels_and_lists() {
        let card = json!({ "type": "card", "title": "Shoes", "description": "Red", "mediaUrl": "https://x.io/s.png",
            "actions": [{ "type": "postback", "title": "Buy", "payload": "BUY" }] });
        let c = calls(card);
        assert_eq!(
            c,
            vec![(
                "sendPhoto".to_owned(),
                json!({ "chat_id": 777, "photo": "https://x.io/s.png", "caption": "Shoes\nRed",
                "reply_markup": { "inline_keyboard": [[{ "text": "Buy", "callback_data": "BUY" }]] } })
            )]
        );
        let c = calls(json!({ "type": "card", "title": "No image" }));
        assert_eq!(
            c,
            vec![(
                "sendMessage".to_owned(),
                json!({ "chat_id": 777, "text": "No image" })
            )]
        );
        for t in ["carousel", "list"] {
            let c = calls(json!({ "type": t, "items": [
                { "title": "A", "mediaUrl": "https://x.io/a.png" },
                { "title": "B", "description": "second" } ] }));
            let methods: Vec<&str> = c.iter().map(|(m, _)| m.as_str()).collect();
            assert_eq!(methods, ["sendPhoto", "sendMessage"], "{t}");
            assert_eq!(c[1].1["text"], json!("B\nsecond"));
        }
    }

    #[test]
    fn typing_on_only_among_events() {
        assert_eq!(
            parts_of(render_payload(Payload::Event(Event::TypingOn))),
            vec![(
                "sendChatAction".to_owned(),
                json!({ "chat_id": 777, "action": "typing" })
            )]
        );
        for e in [Event::TypingOff, Event::Seen, Event::Handover] {
            assert_eq!(render_payload(Payload::Event(e)), Rendered::Nothing);
        }
    }

    #[test]
    fn chat_ids_are_integers_when_they_parse() {
        assert_eq!(chat_id("777"), json!(777));
        assert_eq!(chat_id("-1001234567890"), json!(-1_001_234_567_890_i64));
        assert_eq!(chat_id("@channel"), json!("@channel"));
    }

    fn response(status: u16, body: &str) -> ProviderResponse<'_> {
        ProviderResponse {
            status,
            retry_after_ms: None,
            body: body.as_bytes(),
        }
    }

    #[test]
    fn outcomes_by_status_class() {
        let o = |s, b| Telegram.outcome(&response(s, b));
        assert_eq!(
            o(
                200,
                r#"{"ok":true,"result":{"message_id":1234,"chat":{"id":777}}}"#
            ),
            Outcome::Accepted {
                id: Some("1234".into())
            }
        );
        assert_eq!(
            o(200, r#"{"ok":true,"result":true}"#),
            Outcome::Accepted { id: None }
        );
        assert_eq!(
            o(
                429,
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#
            ),
            Outcome::Retry {
                reason: "Telegram 429: Too Many Requests: retry after 7".into(),
                wait_ms: Some(7000)
            }
        );
        let header_hint = Telegram.outcome(&ProviderResponse {
            status: 502,
            retry_after_ms: Some(3000),
            body: b"Bad Gateway",
        });
        assert_eq!(
            header_hint,
            Outcome::Retry {
                reason: "Telegram 502: Bad Gateway".into(),
                wait_ms: Some(3000)
            }
        );
        assert_eq!(
            o(
                401,
                r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#
            ),
            Outcome::Credentials {
                reason: "Telegram 401: Unauthorized".into()
            }
        );
        assert_eq!(
            o(
                403,
                r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#
            ),
            Outcome::Permanent {
                reason: "Telegram 403: Forbidden: bot was blocked by the user".into()
            }
        );
        assert_eq!(
            o(
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#
            ),
            Outcome::Permanent {
                reason: "Telegram 400: Bad Request: chat not found".into()
            }
        );
        assert!(matches!(
            o(200, r#"{"ok":false,"error_code":400,"description":"x"}"#),
            Outcome::Permanent { .. }
        ));
        // Other 4xx are permanent; the token never shows in a reason.
        let not_found = o(
            404,
            r#"{"ok":false,"error_code":404,"description":"Not Found"}"#,
        );
        assert_eq!(
            not_found,
            Outcome::Permanent {
                reason: "Telegram 404: Not Found".into()
            }
        );
        assert!(!format!("{not_found:?}").contains(TOKEN));
    }

    #[test]
    fn provisioning() {
        let c = config();
        let v = Telegram.verify_credentials(&c).unwrap();
        assert_eq!(
            (v.method, v.target),
            (HttpMethod::Get, Target::Path(format!("/bot{TOKEN}/getMe")))
        );
        let learned = Telegram
            .learn(&c, &response(200, r#"{"ok":true,"result":{"id":1,"is_bot":true,"first_name":"SB","username":"switchboard_bot"}}"#))
            .unwrap();
        assert_eq!(
            Value::Object(learned),
            json!({ "username": "switchboard_bot" })
        );
        assert_eq!(
            Telegram.learn(
                &c,
                &response(
                    401,
                    r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#
                )
            ),
            Err(ProvisionError::Refused(
                "Telegram refused the configuration: Unauthorized (401)".into()
            ))
        );
        assert!(
            matches!(Telegram.learn(&c, &response(502, "")), Err(ProvisionError::Unreachable(r)) if r.starts_with("Telegram is unreachable: "))
        );

        let r = Telegram.register(&c, "https://sb.io/channels/telegram/abc");
        assert_eq!(
            r,
            vec![ProviderRequest::new(
                HttpMethod::Post,
                format!("/bot{TOKEN}/setWebhook"),
                ProviderAuth::None,
                RequestBody::Json(
                    json!({ "url": "https://sb.io/channels/telegram/abc", "secret_token": "s3cr3t_-X",
                    "allowed_updates": ["message", "callback_query"] })
                ),
                "register",
            )]
        );
        assert_eq!(
            Telegram.registered(&response(
                200,
                r#"{"ok":true,"result":true,"description":"Webhook was set"}"#
            )),
            Ok(())
        );
        assert_eq!(
            Telegram.registered(&response(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"}"#)),
            Err(ProvisionError::Refused("Telegram refused the configuration: Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443 (400)".into()))
        );
        let d = Telegram.deregister(&c).unwrap();
        assert_eq!(d.target, Target::Path(format!("/bot{TOKEN}/deleteWebhook")));
    }

    #[test]
    fn media_lookup_and_location() {
        let c = config();
        let l = Telegram.media_lookup(&c, "AgADBAAD").unwrap();
        assert_eq!(l.target, Target::Path(format!("/bot{TOKEN}/getFile")));
        assert_eq!(l.body, RequestBody::Json(json!({ "file_id": "AgADBAAD" })));
        assert_eq!(l.operation, "media");
        let found = Telegram.media_location(&c, &response(200, r#"{"ok":true,"result":{"file_id":"AgADBAAD","file_size":1,"file_path":"photos/file_1.jpg"}}"#));
        let MediaLocation::Fetch(f) = found else {
            panic!("{found:?}")
        };
        assert_eq!(
            (f.method, f.target),
            (
                HttpMethod::Get,
                Target::Path(format!("/file/bot{TOKEN}/photos/file_1.jpg"))
            )
        );
        assert_eq!(f.body, RequestBody::None);
        assert_eq!(
            Telegram.media_location(
                &c,
                &response(
                    400,
                    r#"{"ok":false,"error_code":400,"description":"Bad Request: invalid file_id"}"#
                )
            ),
            MediaLocation::Gone
        );
        assert_eq!(
            Telegram.media_location(
                &c,
                &response(200, r#"{"ok":true,"result":{"file_id":"x"}}"#)
            ),
            MediaLocation::Gone
        );
    }
}
