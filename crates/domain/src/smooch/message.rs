//! SPEC 8.9 messages: a Smooch message body in ([`incoming`]: the SPEC 4 message it becomes and
//! its role), and a stored activity out ([`outgoing`]: the Smooch `message` object answered by
//! getMessages and carried by webhook bodies, 8.7). Plain inputs, no I/O: the API and the
//! webhook worker look up names and ids and pass them in.

use serde_json::{json, Map, Value};

use crate::activity::{validate_message, Action, Activity, Item, Message, Payload, TextMessage};
use crate::channel::{Channel, IntegrationType};
use crate::error::{Violation, Violations};
use crate::json;
use crate::time::Millis;

/// The fields `POST …/messages` takes (8.9).
pub const MESSAGE_FIELDS: &[&str] = &[
    "role",
    "type",
    "text",
    "mediaUrl",
    "actions",
    "items",
    "coordinates",
    "location",
];

/// Smooch message fields Switchboard drops, with a `Warning` (8.1).
pub const MESSAGE_IGNORED: &[&str] = &[
    "name",
    "email",
    "avatarUrl",
    "metadata",
    "mediaType",
    "payload",
    "destination",
    "override",
];

/// Who a Smooch message is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The customer.
    AppUser,
    /// The business: an agent or a bot.
    AppMaker,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AppUser => "appUser",
            Self::AppMaker => "appMaker",
        }
    }

    /// `appUser` for a customer, `appMaker` for agents and bots (and anything else).
    pub const fn of(sender: IntegrationType) -> Self {
        match sender {
            IntegrationType::Customer => Self::AppUser,
            _ => Self::AppMaker,
        }
    }
}

/// A Smooch message read from a request: its role and the SPEC 4 message it becomes (URL
/// conversion applied).
#[derive(Clone, Debug, PartialEq)]
pub struct Incoming {
    pub role: Role,
    pub message: Message,
}

/// Reads a Smooch message body (unknown and ignored fields are the API's, 8.1: they are not
/// looked at here) into the SPEC 4 message, reporting every violation at once:
/// `role` (`appUser` | `appMaker`), `type` (`text`, `image`, `file`, `location`, `carousel`,
/// `list`; others OutOfRange), each type's fields (8.9's table), actions (`reply`, `postback`,
/// `link`, `webview`; `buy`, `share`, `locationRequest` and others OutOfRange). The SPEC 4
/// message is then checked by [`validate_message`] (URLs, lengths), whose paths name the SPEC 4
/// properties.
pub fn incoming(body: &Map<String, Value>) -> Result<Incoming, Violations> {
    let mut v = Violations::default();
    let role = match json::string(body, "", "role", true, &mut v).as_deref() {
        Some("appUser") => Some(Role::AppUser),
        Some("appMaker") => Some(Role::AppMaker),
        Some(other) => {
            v.push(Violation::out_of_range(
                "role",
                &format!("must be 'appUser' or 'appMaker', not '{other}'"),
            ));
            None
        }
        None => None,
    };
    let spec4 = match json::string(body, "", "type", true, &mut v) {
        Some(t) => spec4_message(&t, body, &mut v),
        None => None,
    };
    let message = match spec4 {
        Some(m) if v.is_empty() => validate_message(&m, "message", &mut v),
        _ => None,
    };
    match (role, message) {
        (Some(role), Some(message)) if v.is_empty() => Ok(Incoming {
            role,
            message: message.convert_url_text(),
        }),
        _ => Err(v),
    }
}

/// The SPEC 4 message JSON of a Smooch message of type `kind`.
fn spec4_message(kind: &str, body: &Map<String, Value>, v: &mut Violations) -> Option<Value> {
    let text = json::string(body, "", "text", false, v);
    let mut out = Map::new();
    match kind {
        "text" => {
            let actions = actions(body, "", v);
            if text.is_none() && actions.is_none() && json::field(body, "text").is_none() {
                v.push(Violation::required("text"));
            }
            out.insert("type".into(), json!("text"));
            if let Some(t) = text {
                out.insert("text".into(), Value::String(t));
            }
            if let Some(a) = actions {
                out.insert("actions".into(), Value::Array(a));
            }
        }
        "image" | "file" => {
            let url = json::string(body, "", "mediaUrl", true, v);
            let t = if kind == "image" {
                "image"
            } else {
                "attachment"
            };
            out.insert("type".into(), json!(t));
            out.insert("url".into(), json!(url.unwrap_or_default()));
            if let Some(t) = text {
                out.insert("caption".into(), Value::String(t));
            }
        }
        "location" => {
            out.insert("type".into(), json!("location"));
            match json::field(body, "coordinates") {
                None => v.push(Violation::required("coordinates")),
                Some(Value::Object(c)) => {
                    for (from, to) in [("lat", "latitude"), ("long", "longitude")] {
                        match json::field(c, from) {
                            None => v.push(Violation::required(&format!("coordinates.{from}"))),
                            Some(n @ Value::Number(_)) => {
                                out.insert(to.into(), n.clone());
                            }
                            Some(_) => v.push(Violation::wrong_type(
                                &format!("coordinates.{from}"),
                                "a number",
                            )),
                        }
                    }
                }
                Some(_) => v.push(Violation::wrong_type("coordinates", "an object")),
            }
            match json::field(body, "location") {
                None => {}
                Some(Value::Object(l)) => {
                    if let Some(a) = json::string(l, "location", "address", false, v) {
                        out.insert("address".into(), Value::String(a));
                    }
                }
                Some(_) => v.push(Violation::wrong_type("location", "an object")),
            }
        }
        "carousel" | "list" => {
            out.insert("type".into(), json!(kind));
            match json::field(body, "items") {
                None => v.push(Violation::required("items")),
                Some(Value::Array(items)) if items.is_empty() => v.push(Violation::empty("items")),
                Some(Value::Array(items)) => {
                    let items: Vec<Value> = items
                        .iter()
                        .enumerate()
                        .map(|(i, it)| item(it, &format!("items[{i}]"), v))
                        .collect();
                    out.insert("items".into(), Value::Array(items));
                }
                Some(_) => v.push(Violation::wrong_type("items", "an array")),
            }
            if let Some(a) = actions(body, "", v) {
                out.insert("actions".into(), Value::Array(a));
            }
        }
        other => {
            v.push(Violation::out_of_range(
                "type",
                &format!(
                    "is not a supported message type: '{other}' (expected one of text, image, \
                     file, location, carousel, list)"
                ),
            ));
            return None;
        }
    }
    Some(Value::Object(out))
}

/// A Smooch item (`title`*, `description`, `mediaUrl`, `actions`) as a SPEC 4 item (`title`,
/// `description`, `url`, `actions`).
fn item(value: &Value, path: &str, v: &mut Violations) -> Value {
    let Some(obj) = value.as_object() else {
        v.push(Violation::wrong_type(path, "an object"));
        return Value::Null;
    };
    let mut out = Map::new();
    if let Some(t) = json::string(obj, path, "title", true, v) {
        out.insert("title".into(), Value::String(t));
    }
    if let Some(d) = json::string(obj, path, "description", false, v) {
        out.insert("description".into(), Value::String(d));
    }
    if let Some(u) = json::string(obj, path, "mediaUrl", false, v) {
        out.insert("url".into(), Value::String(u));
    }
    if let Some(a) = actions(obj, path, v) {
        out.insert("actions".into(), Value::Array(a));
    }
    Value::Object(out)
}

/// The `actions` of `obj` as SPEC 4 actions; `None` when absent.
fn actions(obj: &Map<String, Value>, prefix: &str, v: &mut Violations) -> Option<Vec<Value>> {
    let path = json::path(prefix, "actions");
    match json::field(obj, "actions") {
        None => None,
        Some(Value::Array(list)) => Some(
            list.iter()
                .enumerate()
                .map(|(i, a)| action(a, &format!("{path}[{i}]"), v))
                .collect(),
        ),
        Some(_) => {
            v.push(Violation::wrong_type(&path, "an array"));
            None
        }
    }
}

/// A Smooch action: `reply`/`postback { text, payload }` → `{ title, payload }`;
/// `link`/`webview { text, uri }` → `link { title, url }`.
fn action(value: &Value, path: &str, v: &mut Violations) -> Value {
    let Some(obj) = value.as_object() else {
        v.push(Violation::wrong_type(path, "an object"));
        return Value::Null;
    };
    let Some(kind) = json::string(obj, path, "type", true, v) else {
        return Value::Null;
    };
    let title = json::string(obj, path, "text", true, v).unwrap_or_default();
    match kind.as_str() {
        "reply" | "postback" => {
            let payload = json::string(obj, path, "payload", true, v).unwrap_or_default();
            json!({ "type": kind, "title": title, "payload": payload })
        }
        "link" | "webview" => {
            let url = json::string(obj, path, "uri", true, v).unwrap_or_default();
            json!({ "type": "link", "title": title, "url": url })
        }
        other => {
            v.push(Violation::out_of_range(
                &json::path(path, "type"),
                &format!(
                    "is not a supported action type: '{other}' (expected one of reply, \
                     postback, link, webview)"
                ),
            ));
            Value::Null
        }
    }
}

/// The Smooch type of a channel (8.9's `source.type`, 8.8's `platform`): 8.6's table name
/// (`twilio`, `frontendEmail`, …), else `api` (Direct, System), `web` (WebChat), `whatsapp`,
/// `slack`, `kik`.
pub fn smooch_type(channel: Channel) -> &'static str {
    if let Some(t) = crate::smooch::integrations::for_channel(channel) {
        return t.name;
    }
    match channel {
        Channel::WebChat => "web",
        Channel::WhatsApp => "whatsapp",
        Channel::Slack => "slack",
        Channel::Kik => "kik",
        _ => "api",
    }
}

/// `received`/`timestamp` (8.1): Unix seconds with millisecond decimals.
pub fn seconds(event_id: Millis) -> f64 {
    event_id as f64 / 1000.0
}

/// Where getMessages starts (8.9), as `eventId` bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessagesFrom {
    /// The latest messages with `eventId` < the value (`before`, or neither: `i64::MAX`).
    Before(Millis),
    /// The earliest messages with `eventId` > the value (`after`).
    After(Millis),
}

/// getMessages' `before`/`after` (Unix seconds, decimals allowed): `received` < S is `eventId`
/// < 1000·S, `received` > S is `eventId` > 1000·S, read exactly from the decimal text (no
/// float rounding). Both given, or a value that is not a non-negative decimal number:
/// a violation.
pub fn messages_from(before: Option<&str>, after: Option<&str>) -> Result<MessagesFrom, Violation> {
    match (before, after) {
        (Some(_), Some(_)) => Err(Violation::out_of_range(
            "before",
            "cannot be given with 'after'",
        )),
        (Some(b), None) => {
            let (ms, exact) = seconds_to_millis(b)
                .ok_or_else(|| Violation::invalid_format("before", "must be Unix seconds"))?;
            Ok(MessagesFrom::Before(if exact {
                ms
            } else {
                ms.saturating_add(1)
            }))
        }
        (None, Some(a)) => {
            let (ms, _) = seconds_to_millis(a)
                .ok_or_else(|| Violation::invalid_format("after", "must be Unix seconds"))?;
            Ok(MessagesFrom::After(ms))
        }
        (None, None) => Ok(MessagesFrom::Before(Millis::MAX)),
    }
}

/// `S` in milliseconds, truncated, and whether that was exact: `"12.3456"` → `(12345, false)`.
fn seconds_to_millis(s: &str) -> Option<(Millis, bool)> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || int.len() > 15 {
        return None;
    }
    let mut ms: Millis = int.parse::<Millis>().ok()?.checked_mul(1000)?;
    let head: String = frac.chars().take(3).collect();
    if !head.is_empty() {
        let scale = 10_i64.pow(3 - head.len() as u32);
        ms += head.parse::<Millis>().ok()? * scale;
    }
    let exact = frac.chars().skip(3).all(|c| c == '0');
    Some((ms, exact))
}

/// The text of [`seconds`] for a URL (`1731900000.123`), read back exactly by
/// [`messages_from`].
pub fn seconds_text(event_id: Millis) -> String {
    let (s, ms) = (event_id.div_euclid(1000), event_id.rem_euclid(1000));
    if ms == 0 {
        s.to_string()
    } else {
        format!("{s}.{ms:03}").trim_end_matches('0').to_owned()
    }
}

/// What [`outgoing`] needs besides the message: plain values the caller looked up.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope<'a> {
    /// `_id`: the activity's `interactionId`.
    pub id: &'a str,
    pub role: Role,
    /// The app user's `_id` (`appUser`), else the sending integration's id.
    pub author_id: &'a str,
    /// 8.9's `name`; `None` leaves it out.
    pub name: Option<&'a str>,
    /// The activity's `eventId`.
    pub event_id: Millis,
    /// The Smooch type of the sender's channel ([`smooch_type`]).
    pub source_type: &'a str,
}

/// The 8.9 `message` object of a SPEC 4 message: `_id`, `type`, the type's fields, `role`,
/// `authorId`, `name`, `received`, `source { type }`. Types Smooch lacks: `attachment`,
/// `video`, `audio` → `file`; `youtube`, `vimeo` → `text` with the URL; `contact`, `card` →
/// `text` with their text, else `[contact]`, `[card]`.
pub fn outgoing(message: &Message, env: &Envelope<'_>) -> Value {
    let mut out = Map::new();
    out.insert("_id".into(), json!(env.id));
    let mut put = |k: &str, v: Value| {
        out.insert(k.into(), v);
    };
    match message {
        Message::Text(TextMessage {
            text,
            items,
            actions,
            ..
        }) => {
            put("type", json!("text"));
            put("text", json!(text.clone().unwrap_or_default()));
            if let Some(items) = items {
                put("items", Value::Array(items.iter().map(item_out).collect()));
            }
            if let Some(a) = actions {
                put("actions", actions_out(a));
            }
        }
        Message::Image(m) => {
            put("type", json!("image"));
            put("text", json!(m.caption.clone().unwrap_or_default()));
            put("mediaUrl", json!(m.url));
        }
        Message::Attachment(m) | Message::Video(m) | Message::Audio(m) => {
            put("type", json!("file"));
            put("text", json!(m.caption.clone().unwrap_or_default()));
            put("mediaUrl", json!(m.url));
        }
        Message::Youtube(m) | Message::Vimeo(m) => {
            put("type", json!("text"));
            put("text", json!(m.url));
        }
        Message::Location(l) => {
            put("type", json!("location"));
            put("text", json!(l.address.clone().unwrap_or_default()));
            if let (Some(lat), Some(long)) = (l.latitude, l.longitude) {
                put("coordinates", json!({ "lat": lat, "long": long }));
            }
            if let Some(a) = &l.address {
                put("location", json!({ "address": a }));
            }
        }
        Message::Contact(extra) => {
            put("type", json!("text"));
            let text = extra
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or("[contact]");
            put("text", json!(text));
        }
        Message::Card(card) => {
            put("type", json!("text"));
            let text = card
                .extra
                .get("text")
                .and_then(Value::as_str)
                .or(card.title.as_deref())
                .unwrap_or("[card]");
            put("text", json!(text));
            if let Some(a) = &card.actions {
                put("actions", actions_out(a));
            }
        }
        Message::Carousel(m) | Message::List(m) => {
            put("type", json!(message.type_name()));
            put(
                "items",
                Value::Array(m.items.iter().map(item_out).collect()),
            );
            if let Some(Value::Array(a)) = m.extra.get("actions") {
                let parsed: Vec<Action> = a
                    .iter()
                    .filter_map(|a| serde_json::from_value(a.clone()).ok())
                    .collect();
                put("actions", actions_out(&parsed));
            }
        }
    }
    out.insert("role".into(), json!(env.role.as_str()));
    out.insert("authorId".into(), json!(env.author_id));
    if let Some(n) = env.name {
        out.insert("name".into(), json!(n));
    }
    out.insert("received".into(), json!(seconds(env.event_id)));
    out.insert("source".into(), json!({ "type": env.source_type }));
    Value::Object(out)
}

/// The 8.9 `message` of a stored activity copy, or `None` for an event. `author_id` is the app
/// user's `_id` for customer messages (the sender integration's id is used otherwise), `name`
/// as 8.9 says (the caller knows the names).
pub fn outgoing_activity(
    activity: &Activity,
    app_user_id: &str,
    name: Option<&str>,
) -> Option<Value> {
    let Payload::Message(message) = &activity.payload else {
        return None;
    };
    let role = Role::of(activity.sender.integration_type);
    let sender_id = activity.sender.integration_id.to_string();
    let interaction = activity
        .interaction_id
        .map(|i| i.to_string())
        .unwrap_or_default();
    let env = Envelope {
        id: &interaction,
        role,
        author_id: match role {
            Role::AppUser => app_user_id,
            Role::AppMaker => &sender_id,
        },
        name,
        event_id: activity.event_id,
        source_type: smooch_type(activity.sender.channel_type),
    };
    Some(outgoing(message, &env))
}

fn item_out(item: &Item) -> Value {
    let mut out = Map::new();
    out.insert(
        "title".into(),
        json!(item.title.clone().unwrap_or_default()),
    );
    if let Some(Value::String(d)) = item.extra.get("description") {
        out.insert("description".into(), json!(d));
    }
    if let Some(Value::String(u)) = item.extra.get("url") {
        out.insert("mediaUrl".into(), json!(u));
    }
    if let Some(a) = &item.actions {
        out.insert("actions".into(), actions_out(a));
    }
    Value::Object(out)
}

fn actions_out(actions: &[Action]) -> Value {
    Value::Array(
        actions
            .iter()
            .map(|a| match a {
                Action::Postback(p) => {
                    json!({ "type": "postback", "text": p.title, "payload": p.payload })
                }
                Action::Reply(p) => {
                    json!({ "type": "reply", "text": p.title, "payload": p.payload })
                }
                Action::Link(l) => json!({ "type": "link", "text": l.title, "uri": l.url }),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(v: Value) -> Result<Incoming, Violations> {
        incoming(v.as_object().unwrap())
    }

    fn spec4(v: Value) -> Value {
        serde_json::to_value(read(v).unwrap().message).unwrap()
    }

    fn props(e: &Violations) -> Vec<&str> {
        e.0.iter().map(|v| v.property.as_str()).collect()
    }

    #[test]
    fn text_with_actions_becomes_text_with_spec4_actions() {
        let r = read(json!({ "role": "appMaker", "type": "text", "text": "Pick", "actions": [
            { "type": "reply", "text": "Yes", "payload": "Y" },
            { "type": "postback", "text": "No", "payload": "N" },
            { "type": "link", "text": "Site", "uri": "https://x.io" },
            { "type": "webview", "text": "View", "uri": "https://x.io/v", "fallback": "https://x.io" }
        ]}))
        .unwrap();
        assert_eq!(r.role, Role::AppMaker);
        assert_eq!(
            serde_json::to_value(&r.message).unwrap(),
            json!({ "type": "text", "text": "Pick", "actions": [
                { "type": "reply", "title": "Yes", "payload": "Y" },
                { "type": "postback", "title": "No", "payload": "N" },
                { "type": "link", "title": "Site", "url": "https://x.io" },
                { "type": "link", "title": "View", "url": "https://x.io/v" }
            ]})
        );
        assert_eq!(
            spec4(json!({ "role": "appUser", "type": "text", "actions": [
                { "type": "reply", "text": "a", "payload": "b" } ] })),
            json!({ "type": "text", "actions": [ { "type": "reply", "title": "a", "payload": "b" } ] })
        );
    }

    #[test]
    fn media_location_and_items_map_to_spec4() {
        assert_eq!(
            spec4(
                json!({ "role": "appUser", "type": "image", "mediaUrl": "https://x.io/a.png", "text": "cap" })
            ),
            json!({ "type": "image", "url": "https://x.io/a.png", "caption": "cap" })
        );
        assert_eq!(
            spec4(json!({ "role": "appUser", "type": "file", "mediaUrl": "https://x.io/a.pdf" })),
            json!({ "type": "attachment", "url": "https://x.io/a.pdf" })
        );
        assert_eq!(
            spec4(json!({ "role": "appUser", "type": "location",
                          "coordinates": { "lat": 45.5, "long": -73.6 }, "location": { "address": "Montréal" } })),
            json!({ "type": "location", "latitude": 45.5, "longitude": -73.6, "address": "Montréal" })
        );
        assert_eq!(
            spec4(json!({ "role": "appMaker", "type": "carousel", "items": [
                { "title": "A", "description": "d", "mediaUrl": "https://x.io/a.png",
                  "actions": [ { "type": "postback", "text": "Buy A", "payload": "A" } ] },
                { "title": "B" } ] })),
            json!({ "type": "carousel", "items": [
                { "title": "A", "description": "d", "url": "https://x.io/a.png",
                  "actions": [ { "type": "postback", "title": "Buy A", "payload": "A" } ] },
                { "title": "B" } ] })
        );
        assert_eq!(
            spec4(
                json!({ "role": "appMaker", "type": "list", "items": [ { "title": "A" } ],
                          "actions": [ { "type": "link", "text": "More", "uri": "https://x.io" } ] })
            )["type"],
            json!("list")
        );
    }

    #[test]
    fn a_lone_url_text_is_converted() {
        assert_eq!(
            spec4(json!({ "role": "appUser", "type": "text", "text": "https://x.io/a.png" })),
            json!({ "type": "image", "url": "https://x.io/a.png" })
        );
    }

    #[test]
    fn bad_bodies_report_every_violation() {
        let e = read(json!({ "role": "whisper", "type": "form" })).unwrap_err();
        assert_eq!(props(&e), ["role", "type"]);
        let e = read(json!({ "type": "text" })).unwrap_err();
        assert_eq!(props(&e), ["role", "text"]);
        let e = read(json!({ "role": "appUser", "type": "image" })).unwrap_err();
        assert_eq!(props(&e), ["mediaUrl"]);
        let e =
            read(json!({ "role": "appUser", "type": "location", "coordinates": { "lat": "x" } }))
                .unwrap_err();
        assert_eq!(props(&e), ["coordinates.lat", "coordinates.long"]);
        let e = read(json!({ "role": "appUser", "type": "location" })).unwrap_err();
        assert_eq!(props(&e), ["coordinates"]);
        let e = read(json!({ "role": "appUser", "type": "carousel", "items": [] })).unwrap_err();
        assert_eq!(props(&e), ["items"]);
        let e =
            read(json!({ "role": "appUser", "type": "list", "items": [ { "description": "d" } ] }))
                .unwrap_err();
        assert_eq!(props(&e), ["items[0].title"]);
        for t in ["buy", "share", "locationRequest", "whatever"] {
            let e = read(json!({ "role": "appMaker", "type": "text", "text": "x",
                                 "actions": [ { "type": t, "text": "t" } ] }))
            .unwrap_err();
            assert_eq!(props(&e), ["actions[0].type"], "{t}");
        }
        let e = read(json!({ "role": "appUser", "type": "image", "mediaUrl": "not a url" }))
            .unwrap_err();
        assert_eq!(e.0.len(), 1);
        let e = read(json!({ "role": "appUser", "type": "text", "text": 3 })).unwrap_err();
        assert_eq!(props(&e), ["text"]);
    }

    fn env(role: Role) -> Envelope<'static> {
        Envelope {
            id: "iid",
            role,
            author_id: "author",
            name: Some("Ada"),
            event_id: 1_731_900_000_123,
            source_type: "api",
        }
    }

    fn out(m: Value) -> Value {
        let m: Message = serde_json::from_value(m).unwrap();
        outgoing(&m, &env(Role::AppMaker))
    }

    #[test]
    fn outgoing_has_the_envelope() {
        let m = outgoing(&Message::text("hi"), &env(Role::AppUser));
        assert_eq!(
            m,
            json!({ "_id": "iid", "type": "text", "text": "hi", "role": "appUser",
                    "authorId": "author", "name": "Ada", "received": 1_731_900_000.123,
                    "source": { "type": "api" } })
        );
    }

    #[test]
    fn outgoing_maps_each_type() {
        let pick = |m: Value, keys: &[&str]| {
            let o = out(m);
            keys.iter().map(|k| o[*k].clone()).collect::<Vec<_>>()
        };
        assert_eq!(
            pick(
                json!({ "type": "text", "text": "a", "actions": [
                { "type": "reply", "title": "Y", "payload": "y" },
                { "type": "link", "title": "L", "url": "https://x.io" } ] }),
                &["type", "actions"]
            ),
            [
                json!("text"),
                json!([ { "type": "reply", "text": "Y", "payload": "y" },
                                    { "type": "link", "text": "L", "uri": "https://x.io" } ])
            ]
        );
        assert_eq!(
            pick(
                json!({ "type": "image", "url": "https://x.io/a.png", "caption": "c" }),
                &["type", "mediaUrl", "text"]
            ),
            [json!("image"), json!("https://x.io/a.png"), json!("c")]
        );
        for t in ["attachment", "video", "audio"] {
            assert_eq!(
                pick(
                    json!({ "type": t, "url": "https://x.io/f" }),
                    &["type", "mediaUrl"]
                ),
                [json!("file"), json!("https://x.io/f")],
                "{t}"
            );
        }
        for t in ["youtube", "vimeo"] {
            assert_eq!(
                pick(
                    json!({ "type": t, "url": "https://vimeo.com/1" }),
                    &["type", "text"]
                ),
                [json!("text"), json!("https://vimeo.com/1")]
            );
        }
        assert_eq!(
            pick(
                json!({ "type": "contact", "name": "Bob" }),
                &["type", "text"]
            ),
            [json!("text"), json!("[contact]")]
        );
        assert_eq!(
            pick(json!({ "type": "contact", "text": "Bob, 555" }), &["text"]),
            [json!("Bob, 555")]
        );
        assert_eq!(
            pick(json!({ "type": "card" }), &["type", "text"]),
            [json!("text"), json!("[card]")]
        );
        assert_eq!(
            pick(json!({ "type": "card", "text": "hello" }), &["text"]),
            [json!("hello")]
        );
        assert_eq!(
            pick(
                json!({ "type": "location", "latitude": 1.5, "longitude": 2.0, "address": "here" }),
                &["type", "coordinates", "location"]
            ),
            [
                json!("location"),
                json!({ "lat": 1.5, "long": 2.0 }),
                json!({ "address": "here" })
            ]
        );
        assert_eq!(
            pick(
                json!({ "type": "carousel", "items": [ { "title": "A", "description": "d", "url": "https://x.io/a.png",
                   "actions": [ { "type": "postback", "title": "P", "payload": "p" } ] } ] }),
                &["type", "items"]
            ),
            [
                json!("carousel"),
                json!([ { "title": "A", "description": "d", "mediaUrl": "https://x.io/a.png",
                   "actions": [ { "type": "postback", "text": "P", "payload": "p" } ] } ])
            ]
        );
    }

    #[test]
    fn incoming_then_outgoing_round_trips_smooch_shapes() {
        for body in [
            json!({ "type": "text", "text": "hi", "actions": [ { "type": "postback", "text": "t", "payload": "p" } ] }),
            json!({ "type": "image", "text": "c", "mediaUrl": "https://x.io/a.png" }),
            json!({ "type": "file", "text": "c", "mediaUrl": "https://x.io/a.pdf" }),
            json!({ "type": "location", "text": "here", "coordinates": { "lat": 1.5, "long": 2.5 }, "location": { "address": "here" } }),
            json!({ "type": "list", "items": [ { "title": "A", "mediaUrl": "https://x.io/a.png" } ] }),
        ] {
            let mut with_role = body.clone();
            with_role["role"] = json!("appMaker");
            let o = outgoing(&read(with_role).unwrap().message, &env(Role::AppMaker));
            for (k, v) in body.as_object().unwrap() {
                assert_eq!(&o[k], v, "{k} of {body}");
            }
        }
    }

    #[test]
    fn messages_from_reads_seconds_exactly() {
        assert_eq!(
            messages_from(None, None),
            Ok(MessagesFrom::Before(Millis::MAX))
        );
        assert_eq!(
            messages_from(Some("1731900000.123"), None),
            Ok(MessagesFrom::Before(1_731_900_000_123))
        );
        assert_eq!(
            messages_from(Some("1731900000.1231"), None),
            Ok(MessagesFrom::Before(1_731_900_000_124))
        );
        assert_eq!(
            messages_from(Some("17"), None),
            Ok(MessagesFrom::Before(17_000))
        );
        assert_eq!(
            messages_from(None, Some("17.5")),
            Ok(MessagesFrom::After(17_500))
        );
        assert_eq!(
            messages_from(None, Some("17.5009")),
            Ok(MessagesFrom::After(17_500))
        );
        for bad in ["", "x", "-1", "1e9", "1.2.3", ".5", "99999999999999999999"] {
            assert!(messages_from(Some(bad), None).is_err(), "{bad}");
        }
        assert!(messages_from(Some("1"), Some("2")).is_err());
        for ms in [
            0,
            1,
            10,
            100,
            1_731_900_000_123,
            1_731_900_000_120,
            1_731_900_000_000,
        ] {
            assert_eq!(
                messages_from(None, Some(&seconds_text(ms))),
                Ok(MessagesFrom::After(ms))
            );
            assert_eq!(seconds_text(ms).parse::<f64>().unwrap(), seconds(ms));
        }
    }

    #[test]
    fn smooch_types_of_channels() {
        for (c, t) in [
            (Channel::Direct, "api"),
            (Channel::System, "api"),
            (Channel::WebChat, "web"),
            (Channel::TwilioSms, "twilio"),
            (Channel::Email, "frontendEmail"),
            (Channel::Telegram, "telegram"),
            (Channel::WhatsApp, "whatsapp"),
            (Channel::Slack, "slack"),
            (Channel::Kik, "kik"),
            (Channel::Messenger, "messenger"),
        ] {
            assert_eq!(smooch_type(c), t, "{c:?}");
        }
    }

    #[test]
    fn seconds_keep_milliseconds() {
        assert_eq!(seconds(1_731_900_000_123), 1_731_900_000.123);
        assert_eq!(json!(seconds(1_000)), json!(1.0));
    }
}
