//! Stored and delivered activities: the `sender`/`recipient` blocks ([`Party`]), an accepted
//! activity before storage numbers it ([`ActivityDraft`]: trigger, sender, payload,
//! `interactionId`), and one stored and delivered copy ([`Activity`]), serialized exactly as
//! SPEC 4 shows. Who receives the copies is [`crate::routing`]'s; the `eventId` is
//! [`crate::clock`]'s.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    ActivityKind, ConversationStatus, Event, EventTrigger, FlowProcess, Message, Payload,
    SenderRole,
};
use crate::channel::{Channel, IntegrationType};
use crate::ids::{ConversationId, IntegrationId, InteractionId};
use crate::time::Millis;

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
    use crate::activity::ConversationReason;
    use serde_json::json;

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
}
