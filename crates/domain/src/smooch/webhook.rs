//! Smooch webhooks (SPEC 8.7): a System integration with `format: "smooch"` is a Smooch
//! webhook. This module owns its triggers (the fired ones and those accepted but never fired),
//! which activity fires which trigger, the System filters derived from triggers (`events`), the
//! `/v1` and `/v1.1` defaults, and the one POST body such an integration gets per activity.
//!
//! It stays out of storage (the worker gathers the app user and names, [`BodyFacts`]) and of
//! HTTP (the `api::smooch::webhooks` routes translate a `webhook` to a configuration).

use serde_json::{json, Map, Value};

use crate::activity::{Activity, Event, EventTrigger, Payload, SenderRole};
use crate::error::{Violation, Violations};
use crate::ids::{ConversationId, HubId};
use crate::smooch::message::{self, smooch_type};

/// `format` of a System configuration.
pub const FORMAT: &str = "format";
/// The default format: SPEC 5.5's batched body.
pub const FORMAT_SWITCHBOARD: &str = "switchboard";
/// SPEC 8.7's body, one POST per activity.
pub const FORMAT_SMOOCH: &str = "smooch";
/// The formats a System configuration takes.
pub const FORMATS: &[&str] = &[FORMAT_SWITCHBOARD, FORMAT_SMOOCH];
/// `triggers` of a smooch-format configuration.
pub const TRIGGERS: &str = "triggers";
/// `includeClient` of a smooch-format configuration.
pub const INCLUDE_CLIENT: &str = "includeClient";
/// `includeFullAppUser` of a smooch-format configuration.
pub const INCLUDE_FULL_APP_USER: &str = "includeFullAppUser";
/// The keys a System configuration takes only with `format: "smooch"`.
pub const SMOOCH_ONLY_KEYS: &[&str] = &[TRIGGERS, INCLUDE_CLIENT, INCLUDE_FULL_APP_USER];
/// The `version` of every webhook and body.
pub const VERSION: &str = "v1.1";

/// The triggers that fire, in the order of SPEC 8.7's table.
pub const FIRED_TRIGGERS: &[&str] = &[
    "message",
    "message:appUser",
    "message:appMaker",
    "conversation:start",
    "conversation:read",
    "typing:appUser",
    "postback",
    "*",
];

/// Triggers accepted and never fired (SPEC 8.7).
pub const SILENT_TRIGGERS: &[&str] = &[
    "merge:appUser",
    "payment:success",
    "conversation:referral",
    "appUser:delete",
    "delivery:success",
    "delivery:failure",
    "message:delivery:channel",
    "message:delivery:user",
    "message:delivery:failure",
    "notification:delivery:channel",
    "notification:delivery:user",
    "notification:delivery:failure",
    "link:match",
    "link:success",
    "link:failure",
    "client:add",
    "client:remove",
];

/// One trigger of a webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// `*`: every fired trigger.
    All,
    /// `message`: every message.
    Message,
    /// `message:appUser`: customer messages.
    MessageAppUser,
    /// `message:appMaker`: agent and bot messages, start messages too.
    MessageAppMaker,
    /// `conversation:start`: a conversation opened.
    ConversationStart,
    /// `conversation:read`: the customer's `seen`.
    ConversationRead,
    /// `typing:appUser`: the customer's `typing_on` / `typing_off`.
    TypingAppUser,
    /// `postback`: the customer's `payload` event.
    Postback,
    /// One of [`SILENT_TRIGGERS`]: accepted, never fired.
    Silent(&'static str),
}

impl Trigger {
    /// Parses a trigger name (exact case, as Smooch spells it); `None` for an unknown one.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "*" => Self::All,
            "message" => Self::Message,
            "message:appUser" => Self::MessageAppUser,
            "message:appMaker" => Self::MessageAppMaker,
            "conversation:start" => Self::ConversationStart,
            "conversation:read" => Self::ConversationRead,
            "typing:appUser" => Self::TypingAppUser,
            "postback" => Self::Postback,
            _ => Self::Silent(SILENT_TRIGGERS.iter().find(|t| **t == s)?),
        })
    }

    /// The name, as given and answered.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::All => "*",
            Self::Message => "message",
            Self::MessageAppUser => "message:appUser",
            Self::MessageAppMaker => "message:appMaker",
            Self::ConversationStart => "conversation:start",
            Self::ConversationRead => "conversation:read",
            Self::TypingAppUser => "typing:appUser",
            Self::Postback => "postback",
            Self::Silent(s) => s,
        }
    }

    /// The SPEC 5.4 filters that cover this trigger (SPEC 8.7's table); none for a silent one.
    pub const fn filters(self) -> &'static [&'static str] {
        match self {
            Self::All => &["message", "event:customer", "conversation:opened"],
            Self::Message => &["message"],
            Self::MessageAppUser => &["message:customer"],
            Self::MessageAppMaker => &["message:agent", "message:bot"],
            Self::ConversationStart => &["conversation:opened"],
            Self::ConversationRead | Self::TypingAppUser | Self::Postback => &["event:customer"],
            Self::Silent(_) => &[],
        }
    }

    /// Whether a webhook subscribed to this trigger gets an activity that fired `fired` (one of
    /// [`fired`]'s answers).
    pub fn covers(self, fired: Trigger) -> bool {
        match self {
            Self::All => true,
            Self::Message => matches!(fired, Self::MessageAppUser | Self::MessageAppMaker),
            Self::Silent(_) => false,
            t => t == fired,
        }
    }
}

/// Validates `triggers` at `property`: an array (WrongType) of one or more (Empty) distinct
/// (OutOfRange) known trigger names (each a string, WrongType; known, OutOfRange). Every
/// violation is reported.
pub fn parse_triggers(value: &Value, property: &str) -> Result<Vec<Trigger>, Violations> {
    let Some(items) = value.as_array() else {
        return Err(Violation::wrong_type(property, "an array of webhook triggers").into());
    };
    if items.is_empty() {
        return Err(Violation::empty(property).into());
    }
    let mut v = Violations::default();
    let mut triggers = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{property}[{i}]");
        match item {
            Value::String(s) => match Trigger::parse(s) {
                Some(t) if triggers.contains(&t) => v.push(Violation::out_of_range(
                    &at,
                    &format!("repeats the trigger '{s}': triggers must be distinct"),
                )),
                Some(t) => triggers.push(t),
                None => v.push(Violation::out_of_range(
                    &at,
                    &format!(
                        "is not a supported webhook trigger: '{s}' (expected one of {}, {})",
                        FIRED_TRIGGERS.join(", "),
                        SILENT_TRIGGERS.join(", ")
                    ),
                )),
            },
            _ => v.push(Violation::wrong_type(&at, "a string")),
        }
    }
    v.into_result(triggers)
}

/// The triggers of a stored configuration, leniently (it was validated when stored).
pub fn stored_triggers(value: Option<&Value>) -> Vec<Trigger> {
    let mut triggers = Vec::new();
    for t in value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(Trigger::parse)
    {
        if !triggers.contains(&t) {
            triggers.push(t);
        }
    }
    triggers
}

/// `events` derived from `triggers`: the SPEC 5.4 filters that cover them, each once, in the
/// catalogue's order; empty when only silent triggers are set.
pub fn derived_events(triggers: &[Trigger]) -> Vec<&'static str> {
    crate::channel_config::EVENT_FILTERS
        .iter()
        .copied()
        .filter(|f| triggers.iter().any(|t| t.filters().contains(f)))
        .collect()
}

/// Whether a System configuration is smooch-format.
pub fn is_smooch(configuration: &Map<String, Value>) -> bool {
    configuration.get(FORMAT).and_then(Value::as_str) == Some(FORMAT_SMOOCH)
}

/// The triggers of a smooch-format System configuration; `None` for any other.
pub fn configured_triggers(configuration: &Map<String, Value>) -> Option<Vec<Trigger>> {
    is_smooch(configuration).then(|| stored_triggers(configuration.get(TRIGGERS)))
}

/// The trigger an activity fires, if any: customer messages `message:appUser`; agent and bot
/// messages (start messages too) `message:appMaker`; a conversation opened
/// `conversation:start`; the customer's `seen` `conversation:read`, `typing_on` / `typing_off`
/// `typing:appUser`, `payload` `postback`. Nothing else fires.
pub fn fired(trigger: EventTrigger, payload: &Payload) -> Option<Trigger> {
    match (trigger, payload) {
        (EventTrigger::Message(SenderRole::Customer), _) => Some(Trigger::MessageAppUser),
        (EventTrigger::Message(_), _) => Some(Trigger::MessageAppMaker),
        (EventTrigger::ConversationOpened, _) => Some(Trigger::ConversationStart),
        (EventTrigger::Event(SenderRole::Customer), Payload::Event(e)) => match e {
            Event::Seen => Some(Trigger::ConversationRead),
            Event::TypingOn | Event::TypingOff => Some(Trigger::TypingAppUser),
            Event::Payload { .. } => Some(Trigger::Postback),
            _ => None,
        },
        _ => None,
    }
}

/// The trigger a webhook with `triggers` is sent for an activity, if any: the one the activity
/// fires, when one of `triggers` covers it.
pub fn matching(triggers: &[Trigger], trigger: EventTrigger, payload: &Payload) -> Option<Trigger> {
    fired(trigger, payload).filter(|f| triggers.iter().any(|t| t.covers(*f)))
}

/// A webhook's defaults, which differ by the route's prefix (SPEC 8.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defaults {
    pub triggers: &'static [&'static str],
    pub include_client: bool,
    pub include_full_app_user: bool,
}

/// `/v1`: `["message"]`, the whole app user (v1 payloads held it).
pub const V1_DEFAULTS: Defaults = Defaults {
    triggers: &["message"],
    include_client: false,
    include_full_app_user: true,
};

/// `/v1.1`: `["message:appUser"]`, the short app user.
pub const V1_1_DEFAULTS: Defaults = Defaults {
    triggers: &["message:appUser"],
    include_client: false,
    include_full_app_user: false,
};

/// The name of the System integration behind webhook `id`.
pub fn integration_name(id: impl std::fmt::Display) -> String {
    format!("smooch-webhook-{id}")
}

/// What the body needs beyond the activity, gathered by the worker from storage.
#[derive(Clone, Debug, PartialEq)]
pub struct BodyFacts {
    pub hub_id: HubId,
    pub conversation_id: ConversationId,
    /// The app user of the conversation's customer: its `_id` and `userId`.
    pub app_user_id: String,
    pub user_id: Option<String>,
    /// 8.8's whole `appUser`, sent instead of the short one with `includeFullAppUser`.
    pub full_app_user: Option<Value>,
    /// 8.8's client of the conversation's customer, sent with `includeClient`.
    pub client: Option<Value>,
    /// A message's `name` (8.9), when known.
    pub author_name: Option<String>,
}

/// The body of SPEC 8.7 for an activity that fired `trigger`: `trigger`, `version`, `app`,
/// `appUser` (short, or the whole one when given), `conversation`, then `messages` (one 8.9
/// message) for message triggers or `source` for the others, `activity` for typing,
/// `postbacks` for a postback, `client` when given, and `timestamp`. The message is 8.9's
/// ([`message::outgoing_activity`]).
pub fn body(trigger: Trigger, activity: &Activity, facts: &BodyFacts) -> Value {
    let mut out = Map::new();
    out.insert("trigger".into(), json!(trigger.as_str()));
    out.insert("version".into(), json!(VERSION));
    out.insert("app".into(), json!({ "_id": facts.hub_id.to_string() }));
    let app_user = facts.full_app_user.clone().unwrap_or_else(|| {
        json!({ "_id": facts.app_user_id, "userId": facts.user_id, "conversationStarted": true })
    });
    out.insert("appUser".into(), app_user);
    out.insert(
        "conversation".into(),
        json!({ "_id": facts.conversation_id.to_string() }),
    );
    match &activity.payload {
        Payload::Message(_) => {
            let message = message::outgoing_activity(
                activity,
                &facts.app_user_id,
                facts.author_name.as_deref(),
            );
            out.insert("messages".into(), json!([message]));
        }
        Payload::Event(event) => {
            out.insert(
                "source".into(),
                json!({ "type": smooch_type(activity.sender.channel_type) }),
            );
            match event {
                Event::TypingOn => {
                    out.insert("activity".into(), json!({ "type": "typing:start" }));
                }
                Event::TypingOff => {
                    out.insert("activity".into(), json!({ "type": "typing:stop" }));
                }
                Event::Payload {
                    payload_type,
                    payload,
                } => {
                    let payload = match payload {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    out.insert(
                        "postbacks".into(),
                        json!([{ "action": { "type": "postback", "text": payload_type, "payload": payload } }]),
                    );
                }
                _ => {}
            }
        }
    }
    if let Some(client) = &facts.client {
        out.insert("client".into(), client.clone());
    }
    out.insert(
        "timestamp".into(),
        json!(message::seconds(activity.event_id)),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests;
