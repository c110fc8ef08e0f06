//! Activities (SPEC 4): the one common format of every message or event that enters a hub.
//!
//! Three layers:
//! - [`validate_inbound`] reads a raw inbound body (`{ type*, externalId?, sender?, message |
//!   event }`) into an [`InboundActivity`], reporting every violation with a dotted path;
//! - [`ActivityDraft`] is an accepted activity before storage numbers it: trigger, sender block,
//!   payload, `interactionId`;
//! - [`Activity`] is one stored and delivered copy, serialized exactly as SPEC 4 shows.
//!
//! It stays out of who receives an activity ([`crate::routing`]) and of storage and delivery.
//! Nothing here fetches anything: the URL-to-type conversion ([`Message::convert_url_text`])
//! looks at the text alone.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::channel::{Channel, IntegrationType};
use crate::error::{Violation, ViolationKind, Violations};
use crate::ids::{ConversationId, IntegrationId, InteractionId};
use crate::json;
use crate::time::Millis;

/// `type` of an activity: it carries a `message` or an `event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivityKind {
    Message,
    Event,
}

impl ActivityKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Event => "event",
        }
    }
}

/// The party an activity comes from, as it appears in `eventTrigger` (`message:customer`):
/// System integrations never send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SenderRole {
    Customer,
    Agent,
    Bot,
}

impl SenderRole {
    /// Every role.
    pub const ALL: [SenderRole; 3] = [Self::Customer, Self::Agent, Self::Bot];

    /// Lower case, as in `eventTrigger`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Agent => "agent",
            Self::Bot => "bot",
        }
    }

    /// The role of an integration type; `None` for System, which never sends.
    pub const fn from_type(t: IntegrationType) -> Option<Self> {
        match t {
            IntegrationType::Customer => Some(Self::Customer),
            IntegrationType::Agent => Some(Self::Agent),
            IntegrationType::Bot => Some(Self::Bot),
            IntegrationType::System => None,
        }
    }

    /// The integration type of this role.
    pub const fn integration_type(self) -> IntegrationType {
        match self {
            Self::Customer => IntegrationType::Customer,
            Self::Agent => IntegrationType::Agent,
            Self::Bot => IntegrationType::Bot,
        }
    }

    /// Parses `customer`, `agent`, `bot` (lower case only, as in the wire format).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// `eventTrigger`: what happened and, for messages and events, who sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventTrigger {
    /// `message:customer`, `message:agent`, `message:bot`.
    Message(SenderRole),
    /// `event:customer`, `event:agent`, `event:bot`.
    Event(SenderRole),
    /// `conversation:opened` (system-generated, System integrations only).
    ConversationOpened,
    /// `conversation:closed` (system-generated, System integrations only).
    ConversationClosed,
}

impl EventTrigger {
    /// The trigger of an activity of `kind` sent by `role`.
    pub const fn of(kind: ActivityKind, role: SenderRole) -> Self {
        match kind {
            ActivityKind::Message => Self::Message(role),
            ActivityKind::Event => Self::Event(role),
        }
    }

    /// Whether the activity carries a message or an event (conversation triggers are events).
    pub const fn kind(self) -> ActivityKind {
        match self {
            Self::Message(_) => ActivityKind::Message,
            _ => ActivityKind::Event,
        }
    }

    /// Parses the wire form (`message:customer`, `conversation:opened`, …).
    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once(':')? {
            ("message", role) => SenderRole::parse(role).map(Self::Message),
            ("event", role) => SenderRole::parse(role).map(Self::Event),
            ("conversation", "opened") => Some(Self::ConversationOpened),
            ("conversation", "closed") => Some(Self::ConversationClosed),
            _ => None,
        }
    }
}

impl fmt::Display for EventTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Message(r) => write!(f, "message:{}", r.as_str()),
            Self::Event(r) => write!(f, "event:{}", r.as_str()),
            Self::ConversationOpened => f.write_str("conversation:opened"),
            Self::ConversationClosed => f.write_str("conversation:closed"),
        }
    }
}

impl Serialize for EventTrigger {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventTrigger {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown eventTrigger '{s}'")))
    }
}

/// `flowProcess`: `Default`, or `AutoReply` for start messages (SPEC 5.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FlowProcess {
    #[default]
    Default,
    AutoReply,
}

// ---------------------------------------------------------------------------------------------
// Messages

/// The properties of a message, action or item that the model does not name, kept as given
/// so that nothing a client sends is lost on the way to the recipient.
pub type Extra = Map<String, Value>;

/// A message (SPEC 4), tagged by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Message {
    /// `text`, `items`, `actions`: at least one of them.
    Text(TextMessage),
    Image(MediaMessage),
    Video(MediaMessage),
    Audio(MediaMessage),
    Attachment(MediaMessage),
    Youtube(MediaMessage),
    Vimeo(MediaMessage),
    /// `address` and/or `latitude` + `longitude`.
    Location(LocationMessage),
    /// Contact details; their shape is the client's (any properties).
    Contact(Extra),
    /// One item: optional `title`, optional `actions`, any other properties.
    Card(Item),
    /// `items`*, one or more.
    Carousel(ItemsMessage),
    /// `items`*, one or more.
    List(ItemsMessage),
}

/// Every message `type`, in the order of SPEC 4.
pub const MESSAGE_TYPES: &[&str] = &[
    "text",
    "image",
    "video",
    "audio",
    "attachment",
    "youtube",
    "vimeo",
    "location",
    "contact",
    "card",
    "carousel",
    "list",
];

/// A `text` message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Item>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<Action>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An `image`, `video`, `audio`, `attachment`, `youtube` or `vimeo` message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaMessage {
    /// An absolute http or https URL.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `location` message: an address, coordinates, or both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Degrees, -90..=90; given together with `longitude`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Degrees, -180..=180; given together with `latitude`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `carousel` or `list` message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemsMessage {
    /// One or more.
    pub items: Vec<Item>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An item of a `text`, `carousel` or `list`, or the body of a `card`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<Action>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A button of a message, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Action {
    /// Sends `payload` back as the customer's answer.
    Postback(PayloadAction),
    /// A quick reply carrying `payload`.
    Reply(PayloadAction),
    /// Opens `url`.
    Link(LinkAction),
}

/// Every action `type`.
pub const ACTION_TYPES: &[&str] = &["postback", "reply", "link"];

/// A `postback` or `reply` action.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadAction {
    pub title: String,
    pub payload: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `link` action.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkAction {
    pub title: String,
    /// An absolute http or https URL.
    pub url: String,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Message {
    /// The wire `type` (`text`, `image`, …).
    pub const fn type_name(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Image(_) => "image",
            Self::Video(_) => "video",
            Self::Audio(_) => "audio",
            Self::Attachment(_) => "attachment",
            Self::Youtube(_) => "youtube",
            Self::Vimeo(_) => "vimeo",
            Self::Location(_) => "location",
            Self::Contact(_) => "contact",
            Self::Card(_) => "card",
            Self::Carousel(_) => "carousel",
            Self::List(_) => "list",
        }
    }

    /// A plain text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(TextMessage {
            text: Some(text.into()),
            ..TextMessage::default()
        })
    }

    /// SPEC 4's URL conversion: a `text` without items or actions whose whole (trimmed) text is
    /// one http(s) URL becomes an `image`, `video`, `audio`, `youtube` or `vimeo` message with
    /// `url` set (see [`media_type_of_url`]); anything else comes back unchanged. Never fetches;
    /// idempotent.
    ///
    /// Other properties of the text (`title`, `caption`, unknown keys) are kept.
    pub fn convert_url_text(self) -> Self {
        let Self::Text(t) = self else { return self };
        let convertible = t.items.is_none() && t.actions.is_none();
        let target = t
            .text
            .as_deref()
            .filter(|_| convertible)
            .and_then(|s| media_type_of_url(s).map(|kind| (kind, s.trim().to_owned())));
        let Some((kind, url)) = target else {
            return Self::Text(t);
        };
        let mut extra = t.extra;
        let mut take = |key: &str| match extra.remove(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let title = take("title");
        let caption = take("caption");
        extra.remove("url");
        let media = MediaMessage {
            url,
            title,
            caption,
            extra,
        };
        match kind {
            UrlMedia::Image => Self::Image(media),
            UrlMedia::Video => Self::Video(media),
            UrlMedia::Audio => Self::Audio(media),
            UrlMedia::Youtube => Self::Youtube(media),
            UrlMedia::Vimeo => Self::Vimeo(media),
        }
    }
}

/// What a bare URL in a text turns into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlMedia {
    Image,
    Video,
    Audio,
    Youtube,
    Vimeo,
}

const IMAGE_EXTENSIONS: &[&str] = &[".png", ".jpg", ".jpeg", ".gif", ".webp"];
const VIDEO_EXTENSIONS: &[&str] = &[".mp4", ".webm", ".mov"];
const AUDIO_EXTENSIONS: &[&str] = &[".mp3", ".wav", ".ogg", ".m4a"];

/// What `text` is when, trimmed, it is exactly one http(s) URL (no inner whitespace) of a known
/// media kind: `youtube` (`youtube.com/watch?v=…` on the bare, `www.` or `m.` host, or
/// `youtu.be/<id>`), `vimeo` (`vimeo.com/<digits>`), else by the path's extension, compared
/// case-insensitively: image (.png .jpg .jpeg .gif .webp), video (.mp4 .webm .mov), audio (.mp3
/// .wav .ogg .m4a). `None` for anything else.
pub fn media_type_of_url(text: &str) -> Option<UrlMedia> {
    let s = text.trim();
    if s.is_empty() || s.chars().any(char::is_whitespace) {
        return None;
    }
    let url = url::Url::parse(s).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let path = url.path();
    match host.as_str() {
        "youtube.com" | "www.youtube.com" | "m.youtube.com" if path == "/watch" => {
            let has_video = url.query_pairs().any(|(k, v)| k == "v" && !v.is_empty());
            return has_video.then_some(UrlMedia::Youtube);
        }
        "youtu.be" => {
            let id = path.trim_start_matches('/').trim_end_matches('/');
            return (!id.is_empty() && !id.contains('/')).then_some(UrlMedia::Youtube);
        }
        "vimeo.com" | "www.vimeo.com" => {
            let id = path.trim_start_matches('/').trim_end_matches('/');
            if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
                return Some(UrlMedia::Vimeo);
            }
        }
        _ => {}
    }
    let path = path.to_ascii_lowercase();
    let ends = |exts: &[&str]| exts.iter().any(|e| path.ends_with(e));
    if ends(IMAGE_EXTENSIONS) {
        Some(UrlMedia::Image)
    } else if ends(VIDEO_EXTENSIONS) {
        Some(UrlMedia::Video)
    } else if ends(AUDIO_EXTENSIONS) {
        Some(UrlMedia::Audio)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Events

/// An event (SPEC 4), tagged by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Seen,
    TypingOn,
    TypingOff,
    /// An application event: `payloadType`* (a string) and `payload`* (any JSON).
    Payload {
        #[serde(rename = "payloadType")]
        payload_type: String,
        payload: Value,
    },
    /// A bot hands the conversation to agents (SPEC 5.2).
    Handover,
    /// An agent takes the conversation from the bot (SPEC 5.2).
    Takeover,
    /// An agent returns the conversation to the bot (SPEC 5.2).
    Release,
    /// System-only: a conversation opened or closed (SPEC 5.4). Built by the server, never
    /// accepted inbound.
    Conversation {
        status: ConversationStatus,
        reason: ConversationReason,
    },
}

/// Event `type`s a client may send (`conversation` is system-only).
pub const INBOUND_EVENT_TYPES: &[&str] = &[
    "seen",
    "typing_on",
    "typing_off",
    "payload",
    "handover",
    "takeover",
    "release",
];

impl Event {
    /// The wire `type`.
    pub const fn type_name(&self) -> &'static str {
        match self {
            Self::Seen => "seen",
            Self::TypingOn => "typing_on",
            Self::TypingOff => "typing_off",
            Self::Payload { .. } => "payload",
            Self::Handover => "handover",
            Self::Takeover => "takeover",
            Self::Release => "release",
            Self::Conversation { .. } => "conversation",
        }
    }
}

/// `status` of a `conversation` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationStatus {
    Opened,
    Closed,
}

/// `reason` of a `conversation` event: why it opened or closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationReason {
    /// Opened by `POST /api/v1/conversations/establish`.
    Establish,
    /// Closed by `POST /api/v1/conversations/{id}/close`.
    Api,
    /// Closed after `closeDormantConversation` days of idleness.
    Dormant,
}

// ---------------------------------------------------------------------------------------------
// Inbound

/// The `message` or the `event` of an activity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    Message(Message),
    Event(Event),
}

impl Payload {
    pub const fn kind(&self) -> ActivityKind {
        match self {
            Self::Message(_) => ActivityKind::Message,
            Self::Event(_) => ActivityKind::Event,
        }
    }
}

/// A validated inbound body (`POST /inbound/.../activity/{conversationId}` or a websocket
/// `activity` frame).
#[derive(Clone, Debug, PartialEq)]
pub struct InboundActivity {
    /// The client's own id of the activity, echoed back; `None` when not given.
    pub external_id: Option<String>,
    /// `sender.integrationId`; `None` means the conversation's customer integration.
    pub sender: Option<IntegrationId>,
    /// The message (URL conversion applied) or the event.
    pub payload: Payload,
}

impl InboundActivity {
    /// `message` or `event`.
    pub const fn kind(&self) -> ActivityKind {
        self.payload.kind()
    }
}

/// Validates an inbound activity body, reporting every violation at once:
/// - not an object: 300; `type` missing 301, not a string 302, not `message`/`event` 206, or
///   not the kind of the payload given 206;
/// - both or neither of `message` and `event`: 5003 (property `message`);
/// - `externalId` not a string: 302; `sender` not an object 302, `sender.integrationId` missing
///   301, not a string 302, not a UUID 203;
/// - the message or event by [`validate_message`] / [`validate_event`].
///
/// A valid text message that is only a URL is converted ([`Message::convert_url_text`]).
pub fn validate_inbound(body: &Value) -> Result<InboundActivity, Violations> {
    let obj = json::object(body, "").map_err(Violations::from)?;
    let mut v = Violations::default();

    let declared = match json::string(obj, "", "type", true, &mut v) {
        Some(t) => match t.as_str() {
            "message" => Some(ActivityKind::Message),
            "event" => Some(ActivityKind::Event),
            _ => {
                v.push(Violation::out_of_range(
                    "type",
                    &format!("must be 'message' or 'event', not '{t}'"),
                ));
                None
            }
        },
        None => None,
    };

    let external_id = json::string(obj, "", "externalId", false, &mut v);

    let sender = match json::field(obj, "sender") {
        None => None,
        Some(Value::Object(s)) => json::string(s, "sender", "integrationId", true, &mut v)
            .and_then(|id| match id.parse::<IntegrationId>() {
                Ok(id) => Some(id),
                Err(_) => {
                    v.push(Violation::new(
                        ViolationKind::InvalidUuid,
                        "sender.integrationId",
                        format!("Property 'sender.integrationId' must be a UUID, not '{id}'."),
                    ));
                    None
                }
            }),
        Some(_) => {
            v.push(Violation::wrong_type("sender", "an object"));
            None
        }
    };

    let payload = match (json::field(obj, "message"), json::field(obj, "event")) {
        (Some(m), None) => validate_message(m, "message", &mut v).map(Payload::Message),
        (None, Some(e)) => validate_event(e, "event", &mut v).map(Payload::Event),
        (m, _) => {
            let which = if m.is_some() { "both" } else { "neither" };
            v.push(Violation::new(
                ViolationKind::MessageOrEvent,
                "message",
                format!(
                    "An activity must contain exactly one of 'message' or 'event' (it has {which})."
                ),
            ));
            None
        }
    };

    let given = match (json::field(obj, "message"), json::field(obj, "event")) {
        (Some(_), None) => Some(ActivityKind::Message),
        (None, Some(_)) => Some(ActivityKind::Event),
        _ => None,
    };
    if let (Some(declared), Some(given)) = (declared, given) {
        if declared != given {
            v.push(Violation::out_of_range(
                "type",
                &format!(
                    "must be '{}' for an activity that carries {} '{}'",
                    given.as_str(),
                    if given == ActivityKind::Message {
                        "a"
                    } else {
                        "an"
                    },
                    given.as_str()
                ),
            ));
        }
    }

    match payload {
        Some(payload) if v.is_empty() => Ok(InboundActivity {
            external_id,
            sender,
            payload: match payload {
                Payload::Message(m) => Payload::Message(m.convert_url_text()),
                other => other,
            },
        }),
        _ => Err(v),
    }
}

/// Validates one message at `path` (`message`, `configuration.start[0]`), recording every
/// violation in `v`; `None` when anything was violated. No URL conversion.
///
/// Unknown `type` is 206; a missing required property 301, a wrong JSON type 302, a URL that is
/// not absolute http(s) 201, an empty collection 306, a coordinate out of range 206. Properties
/// the model does not name are kept in `extra`.
pub fn validate_message(value: &Value, path: &str, v: &mut Violations) -> Option<Message> {
    let Some(obj) = value.as_object() else {
        v.push(Violation::wrong_type(path, "an object"));
        return None;
    };
    let before = v.0.len();
    let type_name = json::string(obj, path, "type", true, v)?;
    let message = match type_name.as_str() {
        "text" => text_message(obj, path, v).map(Message::Text),
        "image" => media_message(obj, path, v).map(Message::Image),
        "video" => media_message(obj, path, v).map(Message::Video),
        "audio" => media_message(obj, path, v).map(Message::Audio),
        "attachment" => media_message(obj, path, v).map(Message::Attachment),
        "youtube" => media_message(obj, path, v).map(Message::Youtube),
        "vimeo" => media_message(obj, path, v).map(Message::Vimeo),
        "location" => location_message(obj, path, v).map(Message::Location),
        "contact" => Some(Message::Contact(extra(obj, &[]))),
        "card" => item(obj, path, v).map(Message::Card),
        "carousel" => items_message(obj, path, v).map(Message::Carousel),
        "list" => items_message(obj, path, v).map(Message::List),
        other => {
            v.push(Violation::out_of_range(
                &json::path(path, "type"),
                &format!(
                    "is not a supported message type: '{other}' (expected one of {})",
                    MESSAGE_TYPES.join(", ")
                ),
            ));
            None
        }
    };
    message.filter(|_| v.0.len() == before)
}

/// Validates one inbound event at `path`; `None` when anything was violated. `conversation`
/// is system-only and refused like an unknown type (206).
pub fn validate_event(value: &Value, path: &str, v: &mut Violations) -> Option<Event> {
    let Some(obj) = value.as_object() else {
        v.push(Violation::wrong_type(path, "an object"));
        return None;
    };
    let type_name = json::string(obj, path, "type", true, v)?;
    match type_name.as_str() {
        "seen" => Some(Event::Seen),
        "typing_on" => Some(Event::TypingOn),
        "typing_off" => Some(Event::TypingOff),
        "handover" => Some(Event::Handover),
        "takeover" => Some(Event::Takeover),
        "release" => Some(Event::Release),
        "payload" => {
            let payload_type = json::string(obj, path, "payloadType", true, v);
            let payload = json::field(obj, "payload").cloned();
            if payload.is_none() {
                v.push(Violation::required(&json::path(path, "payload")));
            }
            Some(Event::Payload {
                payload_type: payload_type?,
                payload: payload?,
            })
        }
        other => {
            v.push(Violation::out_of_range(
                &json::path(path, "type"),
                &format!(
                    "is not a supported event type: '{other}' (expected one of {})",
                    INBOUND_EVENT_TYPES.join(", ")
                ),
            ));
            None
        }
    }
}

/// The properties of `obj` other than `type` and `known`.
fn extra(obj: &Map<String, Value>, known: &[&str]) -> Extra {
    obj.iter()
        .filter(|(k, _)| k.as_str() != "type" && !known.contains(&k.as_str()))
        .map(|(k, val)| (k.clone(), val.clone()))
        .collect()
}

fn text_message(obj: &Map<String, Value>, path: &str, v: &mut Violations) -> Option<TextMessage> {
    let before = v.0.len();
    let text = json::string(obj, path, "text", false, v);
    if text.as_deref().is_some_and(str::is_empty) {
        v.push(Violation::out_of_range(
            &json::path(path, "text"),
            "must not be empty",
        ));
    }
    let items = optional_list(obj, path, "items", v, item_at);
    let actions = optional_list(obj, path, "actions", v, action_at);
    let given = ["text", "items", "actions"]
        .iter()
        .any(|k| json::field(obj, k).is_some());
    if !given {
        v.push(Violation::new(
            ViolationKind::Required,
            json::path(path, "text"),
            format!("A text message at '{path}' must have 'text', 'items' or 'actions'."),
        ));
    }
    (v.0.len() == before).then(|| TextMessage {
        text,
        items,
        actions,
        extra: extra(obj, &["text", "items", "actions"]),
    })
}

fn media_message(obj: &Map<String, Value>, path: &str, v: &mut Violations) -> Option<MediaMessage> {
    let before = v.0.len();
    let url = http_url(obj, path, "url", true, v);
    let title = json::string(obj, path, "title", false, v);
    let caption = json::string(obj, path, "caption", false, v);
    (v.0.len() == before).then(|| MediaMessage {
        url: url.unwrap_or_default(),
        title,
        caption,
        extra: extra(obj, &["url", "title", "caption"]),
    })
}

fn location_message(
    obj: &Map<String, Value>,
    path: &str,
    v: &mut Violations,
) -> Option<LocationMessage> {
    let before = v.0.len();
    let address = json::string(obj, path, "address", false, v);
    let latitude = coordinate(obj, path, "latitude", 90.0, v);
    let longitude = coordinate(obj, path, "longitude", 180.0, v);
    let lat_given = json::field(obj, "latitude").is_some();
    let lon_given = json::field(obj, "longitude").is_some();
    match (lat_given, lon_given) {
        (true, false) => v.push(Violation::required(&json::path(path, "longitude"))),
        (false, true) => v.push(Violation::required(&json::path(path, "latitude"))),
        (false, false) if json::field(obj, "address").is_none() => v.push(Violation::new(
            ViolationKind::Required,
            json::path(path, "address"),
            format!(
                "A location message at '{path}' must have 'address', or 'latitude' and 'longitude'."
            ),
        )),
        _ => {}
    }
    (v.0.len() == before).then(|| LocationMessage {
        address,
        latitude,
        longitude,
        extra: extra(obj, &["address", "latitude", "longitude"]),
    })
}

/// A number within `-limit..=limit`.
fn coordinate(
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
    limit: f64,
    v: &mut Violations,
) -> Option<f64> {
    let at = json::path(path, key);
    match json::field(obj, key) {
        None => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if (-limit..=limit).contains(&x) => Some(x),
            _ => {
                v.push(Violation::out_of_range(
                    &at,
                    &format!("must be between -{limit} and {limit}"),
                ));
                None
            }
        },
        Some(_) => {
            v.push(Violation::wrong_type(&at, "a number"));
            None
        }
    }
}

fn items_message(obj: &Map<String, Value>, path: &str, v: &mut Violations) -> Option<ItemsMessage> {
    let before = v.0.len();
    if json::field(obj, "items").is_none() {
        v.push(Violation::required(&json::path(path, "items")));
        return None;
    }
    let items = optional_list(obj, path, "items", v, item_at);
    (v.0.len() == before).then(|| ItemsMessage {
        items: items.unwrap_or_default(),
        extra: extra(obj, &["items"]),
    })
}

/// An optional array property whose elements `each` validates; given, it must hold one or more
/// elements (306).
fn optional_list<T>(
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
    v: &mut Violations,
    each: fn(&Value, &str, &mut Violations) -> Option<T>,
) -> Option<Vec<T>> {
    let at = json::path(path, key);
    match json::field(obj, key)? {
        Value::Array(a) if a.is_empty() => {
            v.push(Violation::empty(&at));
            None
        }
        Value::Array(a) => {
            let out: Vec<Option<T>> = a
                .iter()
                .enumerate()
                .map(|(i, x)| each(x, &format!("{at}[{i}]"), v))
                .collect();
            out.into_iter().collect()
        }
        _ => {
            v.push(Violation::wrong_type(&at, "an array"));
            None
        }
    }
}

fn item_at(value: &Value, path: &str, v: &mut Violations) -> Option<Item> {
    match value.as_object() {
        Some(obj) => item(obj, path, v),
        None => {
            v.push(Violation::wrong_type(path, "an object"));
            None
        }
    }
}

fn item(obj: &Map<String, Value>, path: &str, v: &mut Violations) -> Option<Item> {
    let before = v.0.len();
    let title = json::string(obj, path, "title", false, v);
    let actions = optional_list(obj, path, "actions", v, action_at);
    (v.0.len() == before).then(|| Item {
        title,
        actions,
        extra: extra(obj, &["title", "actions"]),
    })
}

fn action_at(value: &Value, path: &str, v: &mut Violations) -> Option<Action> {
    let Some(obj) = value.as_object() else {
        v.push(Violation::wrong_type(path, "an object"));
        return None;
    };
    let before = v.0.len();
    let type_name = json::string(obj, path, "type", true, v);
    let title = json::string(obj, path, "title", true, v);
    let action = match type_name.as_deref() {
        Some(t @ ("postback" | "reply")) => {
            let payload = json::string(obj, path, "payload", true, v);
            let a = PayloadAction {
                title: title.unwrap_or_default(),
                payload: payload.unwrap_or_default(),
                extra: extra(obj, &["title", "payload"]),
            };
            Some(if t == "postback" {
                Action::Postback(a)
            } else {
                Action::Reply(a)
            })
        }
        Some("link") => {
            let url = http_url(obj, path, "url", true, v);
            Some(Action::Link(LinkAction {
                title: title.unwrap_or_default(),
                url: url.unwrap_or_default(),
                extra: extra(obj, &["title", "url"]),
            }))
        }
        Some(other) => {
            v.push(Violation::out_of_range(
                &json::path(path, "type"),
                &format!(
                    "is not a supported action type: '{other}' (expected one of {})",
                    ACTION_TYPES.join(", ")
                ),
            ));
            None
        }
        None => None,
    };
    action.filter(|_| v.0.len() == before)
}

/// A string property holding an absolute http(s) URL (201 otherwise).
fn http_url(
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
    required: bool,
    v: &mut Violations,
) -> Option<String> {
    let s = json::string(obj, path, key, required, v)?;
    let ok = url::Url::parse(&s)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if ok {
        Some(s)
    } else {
        v.push(Violation::invalid_format(
            &json::path(path, key),
            "must be an absolute http or https URL",
        ));
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Stored and delivered activities

/// A `sender` or `recipient` block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Party {
    pub integration_id: IntegrationId,
    #[serde(with = "integration_type_name")]
    pub integration_type: IntegrationType,
    #[serde(with = "channel_name")]
    pub channel_type: Channel,
    /// The conversation's customer `tokenId` for its customer; [`business_token_id`] for a
    /// business integration.
    pub token_id: String,
}

impl Party {
    /// The block of the conversation's customer: its `tokenId` is the conversation's.
    pub fn customer(integration_id: IntegrationId, channel: Channel, token_id: &str) -> Self {
        Self {
            integration_id,
            integration_type: IntegrationType::Customer,
            channel_type: channel,
            token_id: token_id.to_owned(),
        }
    }

    /// The block of a business integration (Agent, Bot, System) in `conversation`.
    pub fn business(
        conversation: ConversationId,
        integration_id: IntegrationId,
        integration_type: IntegrationType,
        channel: Channel,
    ) -> Self {
        Self {
            integration_id,
            integration_type,
            channel_type: channel,
            token_id: business_token_id(conversation, integration_id),
        }
    }
}

/// `tokenId` of a business integration in a conversation: `{conversationId}.{integrationId}`.
pub fn business_token_id(conversation: ConversationId, integration: IntegrationId) -> String {
    format!("{conversation}.{integration}")
}

mod integration_type_name {
    use super::*;

    pub fn serialize<S: Serializer>(t: &IntegrationType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<IntegrationType, D::Error> {
        let s = String::deserialize(d)?;
        IntegrationType::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown integrationType '{s}'")))
    }
}

mod channel_name {
    use super::*;

    pub fn serialize<S: Serializer>(c: &Channel, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Channel, D::Error> {
        let s = String::deserialize(d)?;
        Channel::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown channelType '{s}'")))
    }
}

/// An accepted activity before storage gives it an `eventId`: everything its copies share.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityDraft {
    pub event_trigger: EventTrigger,
    pub external_id: Option<String>,
    /// `Some` exactly for messages.
    pub interaction_id: Option<InteractionId>,
    pub flow_process: FlowProcess,
    pub sender: Party,
    pub payload: Payload,
}

impl ActivityDraft {
    /// A draft of `payload` sent by `sender`; a message gets a new `interactionId`.
    ///
    /// The trigger follows the payload's kind and the sender's type (`message:agent`); a System
    /// sender, which never sends inbound, is recorded as a customer.
    pub fn new(
        sender: Party,
        payload: Payload,
        external_id: Option<String>,
        flow_process: FlowProcess,
    ) -> Self {
        let role = SenderRole::from_type(sender.integration_type).unwrap_or(SenderRole::Customer);
        let event_trigger = match &payload {
            Payload::Event(Event::Conversation {
                status: ConversationStatus::Opened,
                ..
            }) => EventTrigger::ConversationOpened,
            Payload::Event(Event::Conversation {
                status: ConversationStatus::Closed,
                ..
            }) => EventTrigger::ConversationClosed,
            p => EventTrigger::of(p.kind(), role),
        };
        let interaction_id = match payload {
            Payload::Message(_) => Some(InteractionId::new()),
            Payload::Event(_) => None,
        };
        Self {
            event_trigger,
            external_id,
            interaction_id,
            flow_process,
            sender,
            payload,
        }
    }

    /// `message` or `event`.
    pub const fn kind(&self) -> ActivityKind {
        self.payload.kind()
    }

    /// The copy for one recipient.
    pub fn to_activity(&self, event_id: Millis, recipient: Party, is_echo: bool) -> Activity {
        Activity {
            event_trigger: self.event_trigger,
            event_id,
            external_id: self.external_id.clone(),
            is_echo,
            interaction_id: self.interaction_id,
            flow_process: self.flow_process,
            sender: self.sender.clone(),
            recipient,
            payload: self.payload.clone(),
        }
    }
}

/// One stored and delivered copy of an activity, serialized as SPEC 4 shows:
/// `type`, `eventTrigger`, `eventId`, `externalId` (null when absent), `isEcho`,
/// `interactionId` (messages only: absent, not null, for events), `flowProcess`, `sender`,
/// `recipient`, and `message` or `event`.
///
/// `type` is not a field: it follows the payload, so the two cannot disagree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "ActivityWire", try_from = "ActivityWire")]
pub struct Activity {
    pub event_trigger: EventTrigger,
    pub event_id: Millis,
    pub external_id: Option<String>,
    pub is_echo: bool,
    pub interaction_id: Option<InteractionId>,
    pub flow_process: FlowProcess,
    pub sender: Party,
    pub recipient: Party,
    pub payload: Payload,
}

impl Activity {
    /// `message` or `event`.
    pub const fn kind(&self) -> ActivityKind {
        self.payload.kind()
    }
}

/// The wire form of [`Activity`], key order as in SPEC 4.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActivityWire {
    #[serde(rename = "type")]
    kind: ActivityKind,
    event_trigger: EventTrigger,
    event_id: Millis,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    is_echo: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interaction_id: Option<InteractionId>,
    #[serde(default)]
    flow_process: FlowProcess,
    sender: Party,
    recipient: Party,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<Event>,
}

impl From<Activity> for ActivityWire {
    fn from(a: Activity) -> Self {
        let kind = a.kind();
        let (message, event) = match a.payload {
            Payload::Message(m) => (Some(m), None),
            Payload::Event(e) => (None, Some(e)),
        };
        Self {
            kind,
            event_trigger: a.event_trigger,
            event_id: a.event_id,
            external_id: a.external_id,
            is_echo: a.is_echo,
            interaction_id: a.interaction_id,
            flow_process: a.flow_process,
            sender: a.sender,
            recipient: a.recipient,
            message,
            event,
        }
    }
}

impl TryFrom<ActivityWire> for Activity {
    type Error = String;

    fn try_from(w: ActivityWire) -> Result<Self, String> {
        let payload = match (w.message, w.event) {
            (Some(m), None) => Payload::Message(m),
            (None, Some(e)) => Payload::Event(e),
            _ => return Err("an activity carries exactly one of message or event".to_owned()),
        };
        if payload.kind() != w.kind || w.event_trigger.kind() != w.kind {
            return Err(format!(
                "type '{}' does not agree with the payload or eventTrigger",
                w.kind.as_str()
            ));
        }
        Ok(Self {
            event_trigger: w.event_trigger,
            event_id: w.event_id,
            external_id: w.external_id,
            is_echo: w.is_echo,
            interaction_id: w.interaction_id,
            flow_process: w.flow_process,
            sender: w.sender,
            recipient: w.recipient,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// A violation as (code, property), comparable with `(u32, &str)` pairs.
    #[derive(Debug)]
    struct At(u32, String);

    impl PartialEq<(u32, &str)> for At {
        fn eq(&self, other: &(u32, &str)) -> bool {
            self.0 == other.0 && self.1 == other.1
        }
    }

    fn codes(body: Value) -> Vec<At> {
        validate_inbound(&body)
            .unwrap_err()
            .0
            .into_iter()
            .map(|v| At(v.kind.code(), v.property))
            .collect()
    }

    fn message(m: Value) -> Result<Message, Vec<(u32, String)>> {
        let mut v = Violations::default();
        validate_message(&m, "message", &mut v).ok_or_else(|| {
            v.0.into_iter()
                .map(|v| (v.kind.code(), v.property))
                .collect()
        })
    }

    fn message_codes(m: Value) -> Vec<(u32, String)> {
        message(m).unwrap_err()
    }

    fn event(e: Value) -> Result<Event, Vec<(u32, String)>> {
        let mut v = Violations::default();
        validate_event(&e, "event", &mut v).ok_or_else(|| {
            v.0.into_iter()
                .map(|v| (v.kind.code(), v.property))
                .collect()
        })
    }

    fn p(code: u32, path: &str) -> (u32, String) {
        (code, path.to_owned())
    }

    // --- inbound envelope

    #[test]
    fn a_text_message_from_the_customer_is_accepted() {
        let a = validate_inbound(&json!({
            "type": "message", "externalId": "x-1", "message": { "type": "text", "text": "Hi" }
        }))
        .unwrap();
        assert_eq!(a.kind(), ActivityKind::Message);
        assert_eq!(a.external_id.as_deref(), Some("x-1"));
        assert_eq!(a.sender, None);
        assert_eq!(a.payload, Payload::Message(Message::text("Hi")));
    }

    #[test]
    fn a_named_sender_is_read_as_an_integration_id() {
        let id = IntegrationId::new();
        let a = validate_inbound(&json!({
            "type": "event", "sender": { "integrationId": id.to_string() }, "event": { "type": "seen" }
        }))
        .unwrap();
        assert_eq!(a.sender, Some(id));
        assert_eq!(a.kind(), ActivityKind::Event);
        assert_eq!(a.payload, Payload::Event(Event::Seen));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_300() {
        assert_eq!(codes(json!([1])), vec![(300, "")]);
    }

    #[test]
    fn both_message_and_event_is_5003() {
        assert_eq!(
            codes(
                json!({ "type": "message", "message": { "type": "text", "text": "a" }, "event": { "type": "seen" } })
            ),
            vec![(5003, "message")]
        );
    }

    #[test]
    fn neither_message_nor_event_is_5003() {
        assert_eq!(codes(json!({ "type": "message" })), vec![(5003, "message")]);
        assert_eq!(
            codes(json!({ "type": "message", "message": null })),
            vec![(5003, "message")]
        );
    }

    #[test]
    fn a_missing_type_is_301_and_an_unknown_one_206() {
        assert_eq!(
            codes(json!({ "event": { "type": "seen" } })),
            vec![(301, "type")]
        );
        assert_eq!(
            codes(json!({ "type": "note", "event": { "type": "seen" } })),
            vec![(206, "type")]
        );
        assert_eq!(
            codes(json!({ "type": 1, "event": { "type": "seen" } })),
            vec![(302, "type")]
        );
    }

    #[test]
    fn a_type_that_disagrees_with_the_payload_is_206() {
        assert_eq!(
            codes(json!({ "type": "event", "message": { "type": "text", "text": "a" } })),
            vec![(206, "type")]
        );
        assert_eq!(
            codes(json!({ "type": "message", "event": { "type": "seen" } })),
            vec![(206, "type")]
        );
    }

    #[test]
    fn a_bad_sender_is_203_302_or_301() {
        assert_eq!(
            codes(
                json!({ "type": "event", "sender": { "integrationId": "nope" }, "event": { "type": "seen" } })
            ),
            vec![(203, "sender.integrationId")]
        );
        assert_eq!(
            codes(
                json!({ "type": "event", "sender": { "integrationId": 5 }, "event": { "type": "seen" } })
            ),
            vec![(302, "sender.integrationId")]
        );
        assert_eq!(
            codes(json!({ "type": "event", "sender": "me", "event": { "type": "seen" } })),
            vec![(302, "sender")]
        );
        assert_eq!(
            codes(json!({ "type": "event", "sender": {}, "event": { "type": "seen" } })),
            vec![(301, "sender.integrationId")]
        );
    }

    #[test]
    fn an_external_id_must_be_a_string() {
        assert_eq!(
            codes(json!({ "type": "event", "externalId": 7, "event": { "type": "seen" } })),
            vec![(302, "externalId")]
        );
    }

    #[test]
    fn every_violation_is_reported_at_once_with_dotted_paths() {
        let got = codes(json!({
            "type": "mail",
            "externalId": [],
            "sender": { "integrationId": "x" },
            "message": { "type": "text", "actions": [ { "type": "reply" }, { "type": "link", "title": "t", "url": "ftp://x" } ] }
        }));
        assert_eq!(
            got,
            vec![
                (206, "type"),
                (302, "externalId"),
                (203, "sender.integrationId"),
                (301, "message.actions[0].title"),
                (301, "message.actions[0].payload"),
                (201, "message.actions[1].url"),
            ]
        );
    }

    #[test]
    fn an_inbound_text_that_is_a_url_is_converted() {
        let a = validate_inbound(&json!({
            "type": "message", "message": { "type": "text", "text": " https://x.io/cat.PNG " }
        }))
        .unwrap();
        let Payload::Message(Message::Image(m)) = a.payload else {
            panic!("not an image: {:?}", a.payload)
        };
        assert_eq!(m.url, "https://x.io/cat.PNG");
    }

    // --- messages

    #[test]
    fn text_needs_text_items_or_actions() {
        assert_eq!(
            message_codes(json!({ "type": "text" })),
            vec![p(301, "message.text")]
        );
        assert!(message(json!({ "type": "text", "items": [ { "title": "a" } ] })).is_ok());
        assert!(message(
            json!({ "type": "text", "actions": [ { "type": "postback", "title": "Yes", "payload": "Y" } ] })
        )
        .is_ok());
        assert_eq!(
            message_codes(json!({ "type": "text", "text": "" })),
            vec![p(206, "message.text")]
        );
        assert_eq!(
            message_codes(json!({ "type": "text", "text": 3 })),
            vec![p(302, "message.text")]
        );
    }

    #[test]
    fn empty_items_or_actions_are_306() {
        assert_eq!(
            message_codes(json!({ "type": "text", "text": "a", "items": [], "actions": [] })),
            vec![p(306, "message.items"), p(306, "message.actions")]
        );
    }

    #[test]
    fn every_media_type_needs_an_http_url() {
        for t in ["image", "video", "audio", "attachment", "youtube", "vimeo"] {
            let m = message(
                json!({ "type": t, "url": "https://x.io/a", "title": "T", "caption": "C" }),
            )
            .unwrap();
            assert_eq!(m.type_name(), t);
            assert_eq!(
                message_codes(json!({ "type": t })),
                vec![p(301, "message.url")]
            );
            assert_eq!(
                message_codes(json!({ "type": t, "url": "mailto:a@b.c" })),
                vec![p(201, "message.url")]
            );
            assert_eq!(
                message_codes(
                    json!({ "type": t, "url": "http://a.b", "title": 1, "caption": false })
                ),
                vec![p(302, "message.title"), p(302, "message.caption")]
            );
        }
    }

    #[test]
    fn location_takes_an_address_or_both_coordinates_in_range() {
        assert!(message(json!({ "type": "location", "address": "1 Main St" })).is_ok());
        assert!(message(json!({ "type": "location", "latitude": 45.5, "longitude": -73 })).is_ok());
        assert!(message(json!({ "type": "location", "latitude": -90, "longitude": 180 })).is_ok());
        assert_eq!(
            message_codes(json!({ "type": "location" })),
            vec![p(301, "message.address")]
        );
        assert_eq!(
            message_codes(json!({ "type": "location", "latitude": 1 })),
            vec![p(301, "message.longitude")]
        );
        assert_eq!(
            message_codes(json!({ "type": "location", "longitude": 1 })),
            vec![p(301, "message.latitude")]
        );
        assert_eq!(
            message_codes(json!({ "type": "location", "latitude": 90.1, "longitude": -181 })),
            vec![p(206, "message.latitude"), p(206, "message.longitude")]
        );
        assert_eq!(
            message_codes(json!({ "type": "location", "latitude": "1", "longitude": 2 })),
            vec![p(302, "message.latitude")]
        );
    }

    #[test]
    fn contact_and_card_keep_their_properties() {
        let c = message(json!({ "type": "contact", "name": "Ann", "phone": "+1" })).unwrap();
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({ "type": "contact", "name": "Ann", "phone": "+1" })
        );
        let card = json!({ "type": "card", "title": "Shoes", "mediaUrl": "https://x.io/s.png",
            "actions": [ { "type": "link", "title": "Buy", "url": "https://x.io/buy" } ] });
        let m = message(card.clone()).unwrap();
        assert!(matches!(m, Message::Card(_)));
        assert_eq!(serde_json::to_value(&m).unwrap(), card);
        assert_eq!(
            message_codes(
                json!({ "type": "card", "actions": [ { "type": "link", "title": "Buy" } ] })
            ),
            vec![p(301, "message.actions[0].url")]
        );
    }

    #[test]
    fn carousel_and_list_need_one_or_more_items() {
        for t in ["carousel", "list"] {
            assert!(message(json!({ "type": t, "items": [ { "title": "a" } ] })).is_ok());
            assert_eq!(
                message_codes(json!({ "type": t })),
                vec![p(301, "message.items")]
            );
            assert_eq!(
                message_codes(json!({ "type": t, "items": [] })),
                vec![p(306, "message.items")]
            );
            assert_eq!(
                message_codes(json!({ "type": t, "items": {} })),
                vec![p(302, "message.items")]
            );
            assert_eq!(
                message_codes(
                    json!({ "type": t, "items": [ 1, { "actions": [ { "type": "reply", "title": "a" } ] } ] })
                ),
                vec![
                    p(302, "message.items[0]"),
                    p(301, "message.items[1].actions[0].payload")
                ]
            );
        }
    }

    #[test]
    fn actions_are_postback_reply_or_link() {
        let m = message(json!({ "type": "text", "actions": [
            { "type": "postback", "title": "A", "payload": "a" },
            { "type": "reply", "title": "B", "payload": "b" },
            { "type": "link", "title": "C", "url": "https://c.io" },
        ] }))
        .unwrap();
        let Message::Text(t) = m else { panic!() };
        let actions = t.actions.unwrap();
        assert!(matches!(actions[0], Action::Postback(_)));
        assert!(matches!(actions[1], Action::Reply(_)));
        assert!(matches!(actions[2], Action::Link(_)));
        assert_eq!(
            message_codes(
                json!({ "type": "text", "actions": [ { "type": "call", "title": "x" }, "x", {} ] })
            ),
            vec![
                p(206, "message.actions[0].type"),
                p(302, "message.actions[1]"),
                p(301, "message.actions[2].type"),
                p(301, "message.actions[2].title"),
            ]
        );
        assert_eq!(
            message_codes(
                json!({ "type": "text", "actions": [ { "type": "link", "title": 1, "url": "x" } ] })
            ),
            vec![
                p(302, "message.actions[0].title"),
                p(201, "message.actions[0].url")
            ]
        );
    }

    #[test]
    fn an_unknown_message_type_is_206() {
        assert_eq!(
            message_codes(json!({ "type": "sticker" })),
            vec![p(206, "message.type")]
        );
        assert_eq!(message_codes(json!({})), vec![p(301, "message.type")]);
        assert_eq!(message_codes(json!("hi")), vec![p(302, "message")]);
    }

    #[test]
    fn every_message_type_round_trips_through_json() {
        let samples = [
            json!({ "type": "text", "text": "a", "items": [ { "title": "i", "x": 1 } ], "actions": [ { "type": "reply", "title": "t", "payload": "p" } ], "extra": true }),
            json!({ "type": "image", "url": "https://a.io/a.png", "title": "t", "caption": "c" }),
            json!({ "type": "video", "url": "https://a.io/a.mp4" }),
            json!({ "type": "audio", "url": "https://a.io/a.mp3" }),
            json!({ "type": "attachment", "url": "https://a.io/a.pdf", "size": 3 }),
            json!({ "type": "youtube", "url": "https://youtu.be/abc" }),
            json!({ "type": "vimeo", "url": "https://vimeo.com/1" }),
            json!({ "type": "location", "address": "here", "latitude": 1.5, "longitude": 2.5 }),
            json!({ "type": "contact", "name": "n" }),
            json!({ "type": "card", "title": "c" }),
            json!({ "type": "carousel", "items": [ { "title": "a" } ] }),
            json!({ "type": "list", "items": [ { "title": "a", "actions": [ { "type": "link", "title": "l", "url": "http://l.io" } ] } ] }),
        ];
        assert_eq!(samples.len(), MESSAGE_TYPES.len());
        for s in samples {
            let m = message(s.clone()).unwrap();
            assert_eq!(m.type_name(), s["type"]);
            assert_eq!(serde_json::to_value(&m).unwrap(), s);
            let back: Message = serde_json::from_value(s.clone()).unwrap();
            assert_eq!(back, m);
        }
    }

    // --- URL conversion

    fn converted(text: &str) -> Message {
        Message::text(text).convert_url_text()
    }

    #[test]
    fn a_url_text_becomes_image_video_or_audio_by_extension() {
        for (url, t) in [
            ("https://x.io/a.png", "image"),
            ("http://x.io/a/b.JPG", "image"),
            ("https://x.io/a.jpeg?size=2", "image"),
            ("https://x.io/a.gif", "image"),
            ("https://x.io/a.webp#frag", "image"),
            ("https://x.io/a.mp4", "video"),
            ("https://x.io/a.WebM", "video"),
            ("https://x.io/a.mov", "video"),
            ("https://x.io/a.mp3", "audio"),
            ("https://x.io/a.wav", "audio"),
            ("https://x.io/a.ogg", "audio"),
            ("https://x.io/a.m4a", "audio"),
        ] {
            let m = converted(url);
            assert_eq!(m.type_name(), t, "{url}");
            assert_eq!(
                serde_json::to_value(&m).unwrap(),
                json!({ "type": t, "url": url })
            );
        }
    }

    #[test]
    fn youtube_and_vimeo_links_are_recognized() {
        for url in [
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://youtube.com/watch?v=dQw4w9WgXcQ&t=4",
            "http://m.youtube.com/watch?feature=x&v=abc",
            "https://youtu.be/dQw4w9WgXcQ",
        ] {
            assert_eq!(converted(url).type_name(), "youtube", "{url}");
        }
        for url in ["https://vimeo.com/76979871", "https://www.vimeo.com/1/"] {
            assert_eq!(converted(url).type_name(), "vimeo", "{url}");
        }
        for url in [
            "https://www.youtube.com/watch",
            "https://www.youtube.com/watch?v=",
            "https://www.youtube.com/channel/x",
            "https://youtu.be/",
            "https://vimeo.com/channels/staff",
            "https://notyoutube.com/watch?v=x",
        ] {
            assert_eq!(converted(url).type_name(), "text", "{url}");
        }
    }

    #[test]
    fn other_texts_stay_text() {
        for text in [
            "look: https://x.io/a.png",
            "https://x.io/a.png https://x.io/b.png",
            "ftp://x.io/a.png",
            "https://x.io/a.pdf",
            "https://x.io/",
            "x.io/a.png",
            "a.png",
            "",
        ] {
            assert_eq!(converted(text), Message::text(text), "{text}");
        }
    }

    #[test]
    fn a_text_with_actions_or_items_is_not_converted() {
        let m = message(json!({ "type": "text", "text": "https://x.io/a.png",
            "actions": [ { "type": "reply", "title": "t", "payload": "p" } ] }))
        .unwrap();
        assert_eq!(m.clone().convert_url_text(), m);
    }

    #[test]
    fn conversion_keeps_title_caption_and_other_properties() {
        let m = message(json!({ "type": "text", "text": "https://x.io/a.png", "title": "T", "caption": "C", "x": 1 }))
            .unwrap()
            .convert_url_text();
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({ "type": "image", "url": "https://x.io/a.png", "title": "T", "caption": "C", "x": 1 })
        );
    }

    // --- events

    #[test]
    fn every_inbound_event_type_is_accepted() {
        for t in INBOUND_EVENT_TYPES {
            let body = if *t == "payload" {
                json!({ "type": t, "payloadType": "order", "payload": { "id": 1 } })
            } else {
                json!({ "type": t })
            };
            let e = event(body.clone()).unwrap();
            assert_eq!(e.type_name(), *t);
            assert_eq!(serde_json::to_value(&e).unwrap(), body);
        }
    }

    #[test]
    fn a_payload_event_needs_payload_type_and_payload() {
        assert_eq!(
            event(json!({ "type": "payload" })).unwrap_err(),
            vec![p(301, "event.payloadType"), p(301, "event.payload")]
        );
        assert_eq!(
            event(json!({ "type": "payload", "payloadType": 1, "payload": "x" })).unwrap_err(),
            vec![p(302, "event.payloadType")]
        );
        let e =
            event(json!({ "type": "payload", "payloadType": "t", "payload": [1, "a"] })).unwrap();
        assert_eq!(
            e,
            Event::Payload {
                payload_type: "t".into(),
                payload: json!([1, "a"])
            }
        );
    }

    #[test]
    fn unknown_and_conversation_events_are_206_inbound() {
        for t in ["conversation", "wave"] {
            assert_eq!(
                event(json!({ "type": t, "status": "opened", "reason": "api" })).unwrap_err(),
                vec![p(206, "event.type")]
            );
        }
    }

    #[test]
    fn the_conversation_event_serializes_as_spec_5_4() {
        let e = Event::Conversation {
            status: ConversationStatus::Closed,
            reason: ConversationReason::Dormant,
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({ "type": "conversation", "status": "closed", "reason": "dormant" })
        );
    }

    // --- triggers, blocks, stored activities

    #[test]
    fn event_triggers_round_trip() {
        let all = [
            "message:customer",
            "message:agent",
            "message:bot",
            "event:customer",
            "event:agent",
            "event:bot",
            "conversation:opened",
            "conversation:closed",
        ];
        for s in all {
            assert_eq!(EventTrigger::parse(s).unwrap().to_string(), s);
        }
        for s in [
            "message",
            "message:system",
            "conversation:paused",
            "Message:bot",
            "",
        ] {
            assert_eq!(EventTrigger::parse(s), None, "{s}");
        }
    }

    #[test]
    fn a_business_token_id_is_conversation_dot_integration() {
        let c = ConversationId::new();
        let i = IntegrationId::new();
        assert_eq!(business_token_id(c, i), format!("{c}.{i}"));
        assert_eq!(
            Party::business(c, i, IntegrationType::Agent, Channel::Direct).token_id,
            format!("{c}.{i}")
        );
        assert_eq!(Party::customer(i, Channel::WebChat, "tok").token_id, "tok");
    }

    #[test]
    fn a_stored_message_activity_is_exactly_the_spec_4_json() {
        let conversation = ConversationId::new();
        let customer = IntegrationId::new();
        let agent = IntegrationId::new();
        let draft = ActivityDraft::new(
            Party::customer(customer, Channel::WebChat, "tok-1"),
            Payload::Message(Message::text("Hi there!")),
            None,
            FlowProcess::Default,
        );
        let interaction = draft.interaction_id.unwrap();
        let a = draft.to_activity(
            1_731_900_000_123,
            Party::business(conversation, agent, IntegrationType::Agent, Channel::Direct),
            false,
        );
        let expected = json!({ "type": "message", "eventTrigger": "message:customer", "eventId": 1731900000123_i64,
            "externalId": null, "isEcho": false, "interactionId": interaction.to_string(), "flowProcess": "Default",
            "sender":    { "integrationId": customer.to_string(), "integrationType": "Customer", "channelType": "WebChat", "tokenId": "tok-1" },
            "recipient": { "integrationId": agent.to_string(), "integrationType": "Agent", "channelType": "Direct", "tokenId": format!("{conversation}.{agent}") },
            "message": { "type": "text", "text": "Hi there!" } });
        assert_eq!(serde_json::to_value(&a).unwrap(), expected);
        let keys: Vec<String> = serde_json::to_value(&a)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys.len(), 10);
        let back: Activity = serde_json::from_value(expected).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn an_event_activity_has_no_interaction_id_key() {
        let i = IntegrationId::new();
        let draft = ActivityDraft::new(
            Party::business(
                ConversationId::new(),
                i,
                IntegrationType::Bot,
                Channel::Direct,
            ),
            Payload::Event(Event::Handover),
            Some("ext".into()),
            FlowProcess::Default,
        );
        assert_eq!(draft.interaction_id, None);
        assert_eq!(draft.event_trigger, EventTrigger::Event(SenderRole::Bot));
        let a = draft.to_activity(5, Party::customer(i, Channel::Direct, "t"), true);
        let v = serde_json::to_value(&a).unwrap();
        assert!(v.get("interactionId").is_none());
        assert_eq!(v["type"], "event");
        assert_eq!(v["eventTrigger"], "event:bot");
        assert_eq!(v["externalId"], "ext");
        assert_eq!(v["isEcho"], true);
        assert_eq!(v["event"], json!({ "type": "handover" }));
        assert!(v.get("message").is_none());
        assert_eq!(serde_json::from_value::<Activity>(v).unwrap(), a);
    }

    #[test]
    fn a_conversation_event_draft_has_a_conversation_trigger() {
        let draft = ActivityDraft::new(
            Party::customer(IntegrationId::new(), Channel::WebChat, "t"),
            Payload::Event(Event::Conversation {
                status: ConversationStatus::Opened,
                reason: ConversationReason::Establish,
            }),
            None,
            FlowProcess::Default,
        );
        assert_eq!(draft.event_trigger, EventTrigger::ConversationOpened);
        assert_eq!(draft.kind(), ActivityKind::Event);
    }

    #[test]
    fn a_stored_activity_whose_type_disagrees_is_refused() {
        let i = IntegrationId::new().to_string();
        let party = json!({ "integrationId": i, "integrationType": "Customer", "channelType": "Direct", "tokenId": "t" });
        let body = json!({ "type": "event", "eventTrigger": "message:customer", "eventId": 1,
            "externalId": null, "isEcho": false, "flowProcess": "Default",
            "sender": party, "recipient": party, "message": { "type": "text", "text": "a" } });
        assert!(serde_json::from_value::<Activity>(body).is_err());
    }

    proptest! {
        #[test]
        fn url_conversion_never_panics_and_is_idempotent(text in ".{0,60}") {
            let once = converted(&text);
            prop_assert_eq!(once.clone().convert_url_text(), once);
        }

        #[test]
        fn url_conversion_of_built_urls_is_idempotent(
            scheme in prop_oneof![Just("http"), Just("https"), Just("ftp")],
            host in prop_oneof![Just("x.io"), Just("youtube.com"), Just("www.youtube.com"), Just("youtu.be"), Just("vimeo.com")],
            path in "(/[a-zA-Z0-9]{0,8}){0,3}",
            ext in prop_oneof![Just(""), Just(".png"), Just(".JPG"), Just(".mp4"), Just(".mp3"), Just(".pdf")],
            query in prop_oneof![Just(""), Just("?v=abc"), Just("?v=")],
            pad in prop_oneof![Just(""), Just(" "), Just("\n")],
        ) {
            let text = format!("{pad}{scheme}://{host}{path}{ext}{query}{pad}");
            let once = converted(&text);
            if scheme == "ftp" {
                prop_assert_eq!(once.type_name(), "text");
            }
            if once.type_name() != "text" {
                let v = serde_json::to_value(&once).unwrap();
                prop_assert_eq!(v["url"].as_str(), Some(text.trim()));
            }
            prop_assert_eq!(once.clone().convert_url_text(), once);
        }

        #[test]
        fn inbound_validation_never_panics(body in arb_json()) {
            let _ = validate_inbound(&body);
            let _ = validate_inbound(&json!({ "type": "message", "message": body.clone() }));
            let _ = validate_inbound(&json!({ "type": "event", "event": body }));
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            (-200.0f64..200.0).prop_map(Value::from),
            prop_oneof![
                Just("text"),
                Just("image"),
                Just("location"),
                Just("carousel"),
                Just("link"),
                Just("reply"),
                Just("payload"),
                Just("https://x.io/a.png"),
                Just("")
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("type".to_owned()),
                        Just("text".to_owned()),
                        Just("items".to_owned()),
                        Just("actions".to_owned()),
                        Just("url".to_owned()),
                        Just("title".to_owned()),
                        Just("payload".to_owned()),
                        Just("latitude".to_owned()),
                        Just("longitude".to_owned()),
                        Just("address".to_owned()),
                        Just("payloadType".to_owned()),
                        Just("message".to_owned()),
                        Just("event".to_owned()),
                        Just("sender".to_owned()),
                    ],
                    inner,
                    0..5,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
