//! Activities (SPEC 4): the one common format of every message or event that enters a hub.
//!
//! One file per part, every public item re-exported here (`activity::Message`,
//! `activity::validate_inbound`, …):
//! - `trigger`: the activity's `type`, its sender's role, `eventTrigger` and `flowProcess`;
//! - `message`: the message types, and the conversion of a text that is only a media URL
//!   ([`Message::convert_url_text`]), which looks at the text alone and never fetches;
//! - `event`: the event types, and the system-only `conversation` event;
//! - `inbound`: [`validate_inbound`] reads a raw inbound body into an [`InboundActivity`],
//!   reporting every violation with a dotted path;
//! - `stored`: [`ActivityDraft`], an accepted activity before storage numbers it, and
//!   [`Activity`], one stored and delivered copy, serialized exactly as SPEC 4 shows.
//!
//! It stays out of who receives an activity ([`crate::routing`]), of the `eventId` clock
//! ([`crate::clock`]), and of storage and delivery.

mod event;
mod inbound;
mod message;
mod stored;
mod trigger;

pub use event::{ConversationReason, ConversationStatus, Event, INBOUND_EVENT_TYPES};
pub use inbound::{validate_event, validate_inbound, validate_message, InboundActivity, Payload};
pub use message::{
    media_type_of_url, Action, Extra, Item, ItemsMessage, LinkAction, LocationMessage,
    MediaMessage, Message, PayloadAction, TextMessage, UrlMedia, ACTION_TYPES, MESSAGE_TYPES,
};
pub use stored::{business_token_id, Activity, ActivityDraft, Party};
pub use trigger::{ActivityKind, EventTrigger, FlowProcess, SenderRole};
