use super::*;
use crate::error::ViolationKind;
use proptest::prelude::*;
use serde_json::json;

/// A violation as (kind, property), comparable with `(ViolationKind, &str)` pairs.
#[derive(Debug)]
struct At(ViolationKind, String);

impl PartialEq<(ViolationKind, &str)> for At {
    fn eq(&self, other: &(ViolationKind, &str)) -> bool {
        self.0 == other.0 && self.1 == other.1
    }
}

fn kinds(body: Value) -> Vec<At> {
    validate_inbound(&body)
        .unwrap_err()
        .0
        .into_iter()
        .map(|v| At(v.kind, v.property))
        .collect()
}

fn message(m: Value) -> Result<Message, Vec<(ViolationKind, String)>> {
    let mut v = Violations::default();
    validate_message(&m, "message", &mut v)
        .ok_or_else(|| v.0.into_iter().map(|v| (v.kind, v.property)).collect())
}

fn message_kinds(m: Value) -> Vec<(ViolationKind, String)> {
    message(m).unwrap_err()
}

fn event(e: Value) -> Result<Event, Vec<(ViolationKind, String)>> {
    let mut v = Violations::default();
    validate_event(&e, "event", &mut v)
        .ok_or_else(|| v.0.into_iter().map(|v| (v.kind, v.property)).collect())
}

fn p(kind: ViolationKind, path: &str) -> (ViolationKind, String) {
    (kind, path.to_owned())
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
    assert_eq!(kinds(json!([1])), vec![(ViolationKind::InvalidBody, "")]);
}

#[test]
fn both_message_and_event_is_5003() {
    assert_eq!(
        kinds(
            json!({ "type": "message", "message": { "type": "text", "text": "a" }, "event": { "type": "seen" } })
        ),
        vec![(ViolationKind::MessageOrEvent, "message")]
    );
}

#[test]
fn neither_message_nor_event_is_5003() {
    assert_eq!(
        kinds(json!({ "type": "message" })),
        vec![(ViolationKind::MessageOrEvent, "message")]
    );
    assert_eq!(
        kinds(json!({ "type": "message", "message": null })),
        vec![(ViolationKind::MessageOrEvent, "message")]
    );
}

#[test]
fn a_missing_type_is_301_and_an_unknown_one_206() {
    assert_eq!(
        kinds(json!({ "event": { "type": "seen" } })),
        vec![(ViolationKind::Required, "type")]
    );
    assert_eq!(
        kinds(json!({ "type": "note", "event": { "type": "seen" } })),
        vec![(ViolationKind::OutOfRange, "type")]
    );
    assert_eq!(
        kinds(json!({ "type": 1, "event": { "type": "seen" } })),
        vec![(ViolationKind::WrongType, "type")]
    );
}

#[test]
fn a_type_that_disagrees_with_the_payload_is_206() {
    assert_eq!(
        kinds(json!({ "type": "event", "message": { "type": "text", "text": "a" } })),
        vec![(ViolationKind::OutOfRange, "type")]
    );
    assert_eq!(
        kinds(json!({ "type": "message", "event": { "type": "seen" } })),
        vec![(ViolationKind::OutOfRange, "type")]
    );
}

#[test]
fn a_bad_sender_is_203_302_or_301() {
    assert_eq!(
        kinds(
            json!({ "type": "event", "sender": { "integrationId": "nope" }, "event": { "type": "seen" } })
        ),
        vec![(ViolationKind::InvalidUuid, "sender.integrationId")]
    );
    assert_eq!(
        kinds(
            json!({ "type": "event", "sender": { "integrationId": 5 }, "event": { "type": "seen" } })
        ),
        vec![(ViolationKind::WrongType, "sender.integrationId")]
    );
    assert_eq!(
        kinds(json!({ "type": "event", "sender": "me", "event": { "type": "seen" } })),
        vec![(ViolationKind::WrongType, "sender")]
    );
    assert_eq!(
        kinds(json!({ "type": "event", "sender": {}, "event": { "type": "seen" } })),
        vec![(ViolationKind::Required, "sender.integrationId")]
    );
}

#[test]
fn an_external_id_must_be_a_string() {
    assert_eq!(
        kinds(json!({ "type": "event", "externalId": 7, "event": { "type": "seen" } })),
        vec![(ViolationKind::WrongType, "externalId")]
    );
}

#[test]
fn every_violation_is_reported_at_once_with_dotted_paths() {
    let got = kinds(json!({
        "type": "mail",
        "externalId": [],
        "sender": { "integrationId": "x" },
        "message": { "type": "text", "actions": [ { "type": "reply" }, { "type": "link", "title": "t", "url": "ftp://x" } ] }
    }));
    assert_eq!(
        got,
        vec![
            (ViolationKind::OutOfRange, "type"),
            (ViolationKind::WrongType, "externalId"),
            (ViolationKind::InvalidUuid, "sender.integrationId"),
            (ViolationKind::Required, "message.actions[0].title"),
            (ViolationKind::Required, "message.actions[0].payload"),
            (ViolationKind::InvalidFormat, "message.actions[1].url"),
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
        message_kinds(json!({ "type": "text" })),
        vec![p(ViolationKind::Required, "message.text")]
    );
    assert!(message(json!({ "type": "text", "items": [ { "title": "a" } ] })).is_ok());
    assert!(message(
        json!({ "type": "text", "actions": [ { "type": "postback", "title": "Yes", "payload": "Y" } ] })
    )
    .is_ok());
    assert_eq!(
        message_kinds(json!({ "type": "text", "text": "" })),
        vec![p(ViolationKind::OutOfRange, "message.text")]
    );
    assert_eq!(
        message_kinds(json!({ "type": "text", "text": 3 })),
        vec![p(ViolationKind::WrongType, "message.text")]
    );
}

#[test]
fn empty_items_or_actions_are_306() {
    assert_eq!(
        message_kinds(json!({ "type": "text", "text": "a", "items": [], "actions": [] })),
        vec![
            p(ViolationKind::Empty, "message.items"),
            p(ViolationKind::Empty, "message.actions")
        ]
    );
}

#[test]
fn every_media_type_needs_an_http_url() {
    for t in ["image", "video", "audio", "attachment", "youtube", "vimeo"] {
        let m =
            message(json!({ "type": t, "url": "https://x.io/a", "title": "T", "caption": "C" }))
                .unwrap();
        assert_eq!(m.type_name(), t);
        assert_eq!(
            message_kinds(json!({ "type": t })),
            vec![p(ViolationKind::Required, "message.url")]
        );
        assert_eq!(
            message_kinds(json!({ "type": t, "url": "mailto:a@b.c" })),
            vec![p(ViolationKind::InvalidFormat, "message.url")]
        );
        assert_eq!(
            message_kinds(json!({ "type": t, "url": "http://a.b", "title": 1, "caption": false })),
            vec![
                p(ViolationKind::WrongType, "message.title"),
                p(ViolationKind::WrongType, "message.caption")
            ]
        );
    }
}

#[test]
fn location_takes_an_address_or_both_coordinates_in_range() {
    assert!(message(json!({ "type": "location", "address": "1 Main St" })).is_ok());
    assert!(message(json!({ "type": "location", "latitude": 45.5, "longitude": -73 })).is_ok());
    assert!(message(json!({ "type": "location", "latitude": -90, "longitude": 180 })).is_ok());
    assert_eq!(
        message_kinds(json!({ "type": "location" })),
        vec![p(ViolationKind::Required, "message.address")]
    );
    assert_eq!(
        message_kinds(json!({ "type": "location", "latitude": 1 })),
        vec![p(ViolationKind::Required, "message.longitude")]
    );
    assert_eq!(
        message_kinds(json!({ "type": "location", "longitude": 1 })),
        vec![p(ViolationKind::Required, "message.latitude")]
    );
    assert_eq!(
        message_kinds(json!({ "type": "location", "latitude": 90.1, "longitude": -181 })),
        vec![
            p(ViolationKind::OutOfRange, "message.latitude"),
            p(ViolationKind::OutOfRange, "message.longitude")
        ]
    );
    assert_eq!(
        message_kinds(json!({ "type": "location", "latitude": "1", "longitude": 2 })),
        vec![p(ViolationKind::WrongType, "message.latitude")]
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
        message_kinds(json!({ "type": "card", "actions": [ { "type": "link", "title": "Buy" } ] })),
        vec![p(ViolationKind::Required, "message.actions[0].url")]
    );
}

#[test]
fn carousel_and_list_need_one_or_more_items() {
    for t in ["carousel", "list"] {
        assert!(message(json!({ "type": t, "items": [ { "title": "a" } ] })).is_ok());
        assert_eq!(
            message_kinds(json!({ "type": t })),
            vec![p(ViolationKind::Required, "message.items")]
        );
        assert_eq!(
            message_kinds(json!({ "type": t, "items": [] })),
            vec![p(ViolationKind::Empty, "message.items")]
        );
        assert_eq!(
            message_kinds(json!({ "type": t, "items": {} })),
            vec![p(ViolationKind::WrongType, "message.items")]
        );
        assert_eq!(
            message_kinds(
                json!({ "type": t, "items": [ 1, { "actions": [ { "type": "reply", "title": "a" } ] } ] })
            ),
            vec![
                p(ViolationKind::WrongType, "message.items[0]"),
                p(
                    ViolationKind::Required,
                    "message.items[1].actions[0].payload"
                )
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
        message_kinds(
            json!({ "type": "text", "actions": [ { "type": "call", "title": "x" }, "x", {} ] })
        ),
        vec![
            p(ViolationKind::OutOfRange, "message.actions[0].type"),
            p(ViolationKind::WrongType, "message.actions[1]"),
            p(ViolationKind::Required, "message.actions[2].type"),
            p(ViolationKind::Required, "message.actions[2].title"),
        ]
    );
    assert_eq!(
        message_kinds(
            json!({ "type": "text", "actions": [ { "type": "link", "title": 1, "url": "x" } ] })
        ),
        vec![
            p(ViolationKind::WrongType, "message.actions[0].title"),
            p(ViolationKind::InvalidFormat, "message.actions[0].url")
        ]
    );
}

#[test]
fn an_unknown_message_type_is_206() {
    assert_eq!(
        message_kinds(json!({ "type": "sticker" })),
        vec![p(ViolationKind::OutOfRange, "message.type")]
    );
    assert_eq!(
        message_kinds(json!({})),
        vec![p(ViolationKind::Required, "message.type")]
    );
    assert_eq!(
        message_kinds(json!("hi")),
        vec![p(ViolationKind::WrongType, "message")]
    );
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

// --- URL conversion of validated messages

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
        vec![
            p(ViolationKind::Required, "event.payloadType"),
            p(ViolationKind::Required, "event.payload")
        ]
    );
    assert_eq!(
        event(json!({ "type": "payload", "payloadType": 1, "payload": "x" })).unwrap_err(),
        vec![p(ViolationKind::WrongType, "event.payloadType")]
    );
    let e = event(json!({ "type": "payload", "payloadType": "t", "payload": [1, "a"] })).unwrap();
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
            vec![p(ViolationKind::OutOfRange, "event.type")]
        );
    }
}

proptest! {
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

#[test]
fn strings_payloads_and_own_properties_have_maxima() {
    use crate::limits::{MAX_EVENT_PAYLOAD_BYTES, MAX_OTHER_TEXT_LEN, MAX_TEXT_LEN};
    let range = |p: &str| vec![(ViolationKind::OutOfRange, p.to_owned())];
    assert!(message(json!({ "type": "text", "text": "é".repeat(MAX_TEXT_LEN) })).is_ok());
    assert_eq!(
        message_kinds(json!({ "type": "text", "text": "é".repeat(MAX_TEXT_LEN + 1) })),
        range("message.text")
    );
    // Properties the model keeps as given, however deep.
    let contact = |n: usize| json!({ "type": "contact", "phones": [{ "note": "x".repeat(n) }] });
    assert!(message(contact(MAX_OTHER_TEXT_LEN)).is_ok());
    assert_eq!(
        message_kinds(contact(MAX_OTHER_TEXT_LEN + 1)),
        range("message.phones[0].note")
    );
    // A payload event's payload, as JSON: `"…"` is two bytes more than its text.
    let payload =
        |n: usize| json!({ "type": "payload", "payloadType": "t", "payload": "x".repeat(n) });
    assert!(event(payload(MAX_EVENT_PAYLOAD_BYTES - 2)).is_ok());
    assert_eq!(
        event(payload(MAX_EVENT_PAYLOAD_BYTES - 1)).unwrap_err(),
        range("event.payload")
    );
}
