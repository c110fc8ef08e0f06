//! What an activity is and who sent it: `type` ([`ActivityKind`]), the sender's role, the
//! `eventTrigger` and `flowProcess` every stored copy carries.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::channel::IntegrationType;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
