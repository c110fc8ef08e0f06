//! Inbound activities: [`validate_inbound`] reads a raw body (`{ type*, externalId?, sender?,
//! message | event }`) into an [`InboundActivity`], reporting every violation at once with a
//! dotted path; [`validate_message`] and [`validate_event`] check one message or event (also
//! used for the start messages of a configuration).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    Action, ActivityKind, Event, Extra, Item, ItemsMessage, LinkAction, LocationMessage,
    MediaMessage, Message, PayloadAction, TextMessage, ACTION_TYPES, INBOUND_EVENT_TYPES,
    MESSAGE_TYPES,
};
use crate::error::{Violation, ViolationKind, Violations};
use crate::ids::IntegrationId;
use crate::json;
use crate::limits::{
    self, MAX_EVENT_PAYLOAD_BYTES, MAX_EXTERNAL_ID_LEN, MAX_PAYLOAD_LEN, MAX_TEXT_LEN,
    MAX_TITLE_LEN, MAX_URL_LEN,
};

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
/// - not an object: InvalidBody; `type` missing Required, not a string WrongType, not
///   `message`/`event` OutOfRange, or not the kind of the payload given OutOfRange;
/// - both or neither of `message` and `event`: MessageOrEvent (property `message`);
/// - `externalId` not a string: WrongType; `sender` not an object WrongType, `sender.integrationId`
///   missing Required, not a string WrongType, not a UUID InvalidUuid;
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

    let external_id = json::text(obj, "", "externalId", false, MAX_EXTERNAL_ID_LEN, &mut v);

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
/// Unknown `type` is OutOfRange; a missing required property Required, a wrong JSON type WrongType,
/// a URL that is not absolute http(s) InvalidFormat, an empty collection Empty, a coordinate out of
/// range OutOfRange, a string longer than its limit in [`crate::limits`] OutOfRange. Properties
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
        "contact" => Some(Message::Contact(extra(obj, path, &[], v))),
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
/// is system-only and refused like an unknown type (OutOfRange).
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
            let payload_type = json::text(obj, path, "payloadType", true, MAX_PAYLOAD_LEN, v);
            let at = json::path(path, "payload");
            let payload = json::field(obj, "payload")
                .filter(|p| limits::check_json_bytes(&at, p, MAX_EVENT_PAYLOAD_BYTES, v))
                .cloned();
            if json::field(obj, "payload").is_none() {
                v.push(Violation::required(&at));
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

/// The properties of `obj` other than `type` and `known`, kept as given; a `subtitle` string
/// is held to [`MAX_TITLE_LEN`], every other string in them to
/// [`limits::MAX_OTHER_TEXT_LEN`].
fn extra(obj: &Map<String, Value>, path: &str, known: &[&str], v: &mut Violations) -> Extra {
    obj.iter()
        .filter(|(k, _)| k.as_str() != "type" && !known.contains(&k.as_str()))
        .map(|(k, val)| {
            let at = json::path(path, k);
            match val {
                Value::String(s) if k == "subtitle" => {
                    limits::check_len(&at, s, MAX_TITLE_LEN, v);
                }
                _ => {
                    limits::check_len(&at, k, limits::MAX_OTHER_TEXT_LEN, v);
                    limits::check_other_strings(&at, val, v);
                }
            }
            (k.clone(), val.clone())
        })
        .collect()
}

fn text_message(obj: &Map<String, Value>, path: &str, v: &mut Violations) -> Option<TextMessage> {
    let before = v.0.len();
    let text = json::text(obj, path, "text", false, MAX_TEXT_LEN, v);
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
    let extra = extra(obj, path, &["text", "items", "actions"], v);
    (v.0.len() == before).then_some(TextMessage {
        text,
        items,
        actions,
        extra,
    })
}

fn media_message(obj: &Map<String, Value>, path: &str, v: &mut Violations) -> Option<MediaMessage> {
    let before = v.0.len();
    let url = http_url(obj, path, "url", true, v);
    let title = json::text(obj, path, "title", false, MAX_TITLE_LEN, v);
    let caption = json::text(obj, path, "caption", false, MAX_TITLE_LEN, v);
    let extra = extra(obj, path, &["url", "title", "caption"], v);
    (v.0.len() == before).then(|| MediaMessage {
        url: url.unwrap_or_default(),
        title,
        caption,
        extra,
    })
}

fn location_message(
    obj: &Map<String, Value>,
    path: &str,
    v: &mut Violations,
) -> Option<LocationMessage> {
    let before = v.0.len();
    let address = json::text(obj, path, "address", false, MAX_TITLE_LEN, v);
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
    let extra = extra(obj, path, &["address", "latitude", "longitude"], v);
    (v.0.len() == before).then_some(LocationMessage {
        address,
        latitude,
        longitude,
        extra,
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
    let extra = extra(obj, path, &["items"], v);
    (v.0.len() == before).then(|| ItemsMessage {
        items: items.unwrap_or_default(),
        extra,
    })
}

/// An optional array property whose elements `each` validates; given, it must hold one or more
/// elements (Empty).
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
    let title = json::text(obj, path, "title", false, MAX_TITLE_LEN, v);
    let actions = optional_list(obj, path, "actions", v, action_at);
    let extra = extra(obj, path, &["title", "actions"], v);
    (v.0.len() == before).then_some(Item {
        title,
        actions,
        extra,
    })
}

fn action_at(value: &Value, path: &str, v: &mut Violations) -> Option<Action> {
    let Some(obj) = value.as_object() else {
        v.push(Violation::wrong_type(path, "an object"));
        return None;
    };
    let before = v.0.len();
    let type_name = json::string(obj, path, "type", true, v);
    let title = json::text(obj, path, "title", true, MAX_TITLE_LEN, v);
    let action = match type_name.as_deref() {
        Some(t @ ("postback" | "reply")) => {
            let payload = json::text(obj, path, "payload", true, MAX_PAYLOAD_LEN, v);
            let a = PayloadAction {
                title: title.unwrap_or_default(),
                payload: payload.unwrap_or_default(),
                extra: extra(obj, path, &["title", "payload"], v),
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
                extra: extra(obj, path, &["title", "url"], v),
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

/// A string property holding an absolute http(s) URL (InvalidFormat otherwise) of at most
/// [`MAX_URL_LEN`] characters (OutOfRange).
fn http_url(
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
    required: bool,
    v: &mut Violations,
) -> Option<String> {
    let s = json::text(obj, path, key, required, MAX_URL_LEN, v)?;
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

#[cfg(test)]
mod tests;
