//! Events (SPEC 4): the event types a client may send, and the system-only `conversation`
//! event with its status and reason (SPEC 5.4). Validation of a raw event is in
//! [`super::validate_event`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
