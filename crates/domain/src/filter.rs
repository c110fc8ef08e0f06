//! System event filters (SPEC 5.4): which activities a System integration subscribes to.
//!
//! The accepted names are [`crate::channel_config::EVENT_FILTERS`], the list the configuration
//! validator already checks; this module gives them meaning. It stays out of who else receives
//! an activity ([`crate::routing`]).

use std::fmt;

use serde_json::Value;

use crate::activity::{EventTrigger, SenderRole};
use crate::channel_config::EVENT_FILTERS;
use crate::error::{Violation, Violations};

/// One filter of a System integration's `events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventFilter {
    /// `message`: every message, whoever sent it.
    AnyMessage,
    /// `message:customer`, `message:agent`, `message:bot`.
    Message(SenderRole),
    /// `event`: every event of a customer, agent or bot, but not `conversation:*`.
    AnyEvent,
    /// `event:customer`, `event:agent`, `event:bot`.
    Event(SenderRole),
    /// `conversation:opened`.
    ConversationOpened,
    /// `conversation:closed`.
    ConversationClosed,
}

impl EventFilter {
    /// Parses one of [`EVENT_FILTERS`] (exact, lower case); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        if !EVENT_FILTERS.contains(&s) {
            return None;
        }
        match s {
            "message" => Some(Self::AnyMessage),
            "event" => Some(Self::AnyEvent),
            _ => match EventTrigger::parse(s)? {
                EventTrigger::Message(r) => Some(Self::Message(r)),
                EventTrigger::Event(r) => Some(Self::Event(r)),
                EventTrigger::ConversationOpened => Some(Self::ConversationOpened),
                EventTrigger::ConversationClosed => Some(Self::ConversationClosed),
            },
        }
    }

    /// Whether an activity with `trigger` matches this filter.
    pub fn matches(self, trigger: EventTrigger) -> bool {
        match (self, trigger) {
            (Self::AnyMessage, EventTrigger::Message(_)) => true,
            (Self::AnyEvent, EventTrigger::Event(_)) => true,
            (Self::Message(f), EventTrigger::Message(r)) => f == r,
            (Self::Event(f), EventTrigger::Event(r)) => f == r,
            (Self::ConversationOpened, EventTrigger::ConversationOpened) => true,
            (Self::ConversationClosed, EventTrigger::ConversationClosed) => true,
            _ => false,
        }
    }
}

impl fmt::Display for EventFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AnyMessage => f.write_str("message"),
            Self::AnyEvent => f.write_str("event"),
            Self::Message(r) => EventTrigger::Message(*r).fmt(f),
            Self::Event(r) => EventTrigger::Event(*r).fmt(f),
            Self::ConversationOpened => EventTrigger::ConversationOpened.fmt(f),
            Self::ConversationClosed => EventTrigger::ConversationClosed.fmt(f),
        }
    }
}

/// Whether an activity with `trigger` reaches a System integration with `filters`: one match is
/// enough, and however many match, it is received once (routing adds the integration once).
pub fn matches(filters: &[EventFilter], trigger: EventTrigger) -> bool {
    filters.iter().any(|f| f.matches(trigger))
}

/// Validates `events` at `property`: an array (WrongType) of one or more (Empty) known filters
/// (each a string, WrongType; known, OutOfRange). Duplicates are removed, keeping the first. Every
/// violation is reported.
pub fn parse_filters(value: &Value, property: &str) -> Result<Vec<EventFilter>, Violations> {
    let mut v = Violations::default();
    let Some(items) = value.as_array() else {
        return Err(Violation::wrong_type(property, "an array of event filters").into());
    };
    if items.is_empty() {
        return Err(Violation::empty(property).into());
    }
    let mut filters = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{property}[{i}]");
        match item {
            Value::String(s) => match EventFilter::parse(s) {
                Some(f) if !filters.contains(&f) => filters.push(f),
                Some(_) => {}
                None => v.push(Violation::out_of_range(
                    &at,
                    &format!(
                        "is not a supported event filter: '{s}' (expected one of {})",
                        EVENT_FILTERS.join(", ")
                    ),
                )),
            },
            _ => v.push(Violation::wrong_type(&at, "a string")),
        }
    }
    v.into_result(filters)
}

/// The filters of a stored System configuration's `events`, leniently: the configuration was
/// validated when it was stored, so anything unknown is skipped rather than refused.
pub fn stored_filters(value: Option<&Value>) -> Vec<EventFilter> {
    let mut filters = Vec::new();
    for f in value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(EventFilter::parse)
    {
        if !filters.contains(&f) {
            filters.push(f);
        }
    }
    filters
}

#[cfg(test)]
mod tests;
