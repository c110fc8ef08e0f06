use super::*;
use crate::error::ViolationKind;
use proptest::prelude::*;
use serde_json::json;

const TRIGGERS: [EventTrigger; 8] = [
    EventTrigger::Message(SenderRole::Customer),
    EventTrigger::Message(SenderRole::Agent),
    EventTrigger::Message(SenderRole::Bot),
    EventTrigger::Event(SenderRole::Customer),
    EventTrigger::Event(SenderRole::Agent),
    EventTrigger::Event(SenderRole::Bot),
    EventTrigger::ConversationOpened,
    EventTrigger::ConversationClosed,
];

fn all_filters() -> Vec<EventFilter> {
    EVENT_FILTERS
        .iter()
        .map(|s| EventFilter::parse(s).unwrap())
        .collect()
}

#[test]
fn every_configured_filter_name_parses_and_displays_back() {
    for s in EVENT_FILTERS {
        assert_eq!(EventFilter::parse(s).unwrap().to_string(), *s);
    }
    for s in [
        "Message",
        "message:system",
        "conversation",
        "conversation:*",
        "",
        "event:",
    ] {
        assert_eq!(EventFilter::parse(s), None, "{s}");
    }
}

#[test]
fn message_matches_every_message_and_nothing_else() {
    for t in TRIGGERS {
        assert_eq!(
            EventFilter::AnyMessage.matches(t),
            matches!(t, EventTrigger::Message(_))
        );
    }
}

#[test]
fn event_matches_every_event_but_not_conversation_activities() {
    for t in TRIGGERS {
        assert_eq!(
            EventFilter::AnyEvent.matches(t),
            matches!(t, EventTrigger::Event(_)),
            "{t}"
        );
    }
    assert!(!EventFilter::AnyEvent.matches(EventTrigger::ConversationOpened));
}

#[test]
fn a_role_filter_matches_only_its_own_trigger() {
    for f in all_filters() {
        for t in TRIGGERS {
            if !matches!(f, EventFilter::AnyMessage | EventFilter::AnyEvent) {
                assert_eq!(f.matches(t), f.to_string() == t.to_string(), "{f} {t}");
            }
        }
    }
}

#[test]
fn conversation_filters_match_only_themselves() {
    for t in TRIGGERS {
        assert_eq!(
            EventFilter::ConversationOpened.matches(t),
            t == EventTrigger::ConversationOpened
        );
        assert_eq!(
            EventFilter::ConversationClosed.matches(t),
            t == EventTrigger::ConversationClosed
        );
    }
}

#[test]
fn a_list_matches_when_any_filter_does() {
    let f = [
        EventFilter::Message(SenderRole::Bot),
        EventFilter::ConversationClosed,
    ];
    assert!(matches(&f, EventTrigger::Message(SenderRole::Bot)));
    assert!(matches(&f, EventTrigger::ConversationClosed));
    assert!(!matches(&f, EventTrigger::Message(SenderRole::Agent)));
    assert!(!matches(&[], EventTrigger::Message(SenderRole::Agent)));
}

#[test]
fn parsing_a_list_reports_every_bad_filter() {
    let err = parse_filters(
        &json!(["message", "nope", 3, "event:robot"]),
        "configuration.events",
    )
    .unwrap_err();
    let got: Vec<_> = err
        .0
        .iter()
        .map(|v| (v.kind, v.property.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (ViolationKind::OutOfRange, "configuration.events[1]"),
            (ViolationKind::WrongType, "configuration.events[2]"),
            (ViolationKind::OutOfRange, "configuration.events[3]"),
        ]
    );
}

#[test]
fn an_empty_list_is_306_and_a_non_list_302() {
    let e = parse_filters(&json!([]), "events").unwrap_err();
    assert_eq!(
        (e.0[0].kind, e.0[0].property.as_str()),
        (ViolationKind::Empty, "events")
    );
    let e = parse_filters(&json!("message"), "events").unwrap_err();
    assert_eq!(
        (e.0[0].kind, e.0[0].property.as_str()),
        (ViolationKind::WrongType, "events")
    );
}

#[test]
fn duplicates_are_removed_keeping_the_first() {
    assert_eq!(
        parse_filters(&json!(["event", "message", "event"]), "events").unwrap(),
        vec![EventFilter::AnyEvent, EventFilter::AnyMessage]
    );
}

#[test]
fn stored_filters_skip_what_is_unknown() {
    assert_eq!(
        stored_filters(Some(&json!(["message:bot", "x", 1, "message:bot"]))),
        vec![EventFilter::Message(SenderRole::Bot)]
    );
    assert_eq!(stored_filters(None), vec![]);
    assert_eq!(stored_filters(Some(&json!("message"))), vec![]);
}

proptest! {
    #[test]
    fn matching_follows_the_filter_names(
        picks in proptest::collection::vec(0..EVENT_FILTERS.len(), 0..12),
        t in 0..TRIGGERS.len(),
    ) {
        let names: Vec<&str> = picks.iter().map(|i| EVENT_FILTERS[*i]).collect();
        let trigger = TRIGGERS[t];
        let filters = parse_filters(&json!(names), "events");
        if names.is_empty() {
            prop_assert!(filters.is_err());
            return Ok(());
        }
        let filters = filters.unwrap();
        prop_assert!(filters.len() <= names.len());
        // The oracle works on the names: `message` and `event` are prefixes of the
        // trigger (never of `conversation:*`), the rest must be equal to it.
        let wire = trigger.to_string();
        let expected = names.iter().any(|n| {
            wire == *n || ((*n == "message" || *n == "event") && wire.starts_with(&format!("{n}:")))
        });
        prop_assert_eq!(matches(&filters, trigger), expected);
    }

    #[test]
    fn parsing_arbitrary_strings_never_panics(names in proptest::collection::vec(".{0,20}", 0..6)) {
        if let Ok(filters) = parse_filters(&json!(names), "events") {
            for f in filters {
                prop_assert!(EVENT_FILTERS.contains(&f.to_string().as_str()));
            }
        }
    }
}
