use super::*;
use crate::activity::{
    ActivityDraft, ConversationReason, ConversationStatus, FlowProcess, MediaMessage, Message,
    Party,
};
use crate::channel::Channel;
use crate::channel::IntegrationType;
use crate::ids::IntegrationId;
use crate::ViolationKind;

fn pairs(v: &Violations) -> Vec<(ViolationKind, String)> {
    v.0.iter().map(|x| (x.kind, x.property.clone())).collect()
}

fn customer() -> Party {
    Party::customer(IntegrationId::new(), Channel::WebChat, "tok")
}

fn agent(conversation: ConversationId) -> Party {
    Party::business(
        conversation,
        IntegrationId::new(),
        IntegrationType::Agent,
        Channel::Direct,
    )
}

fn activity(sender: Party, payload: Payload, flow: FlowProcess) -> Activity {
    let recipient = Party::business(
        ConversationId::new(),
        IntegrationId::new(),
        IntegrationType::System,
        Channel::System,
    );
    ActivityDraft::new(sender, payload, None, flow).to_activity(1_731_900_000_123, recipient, false)
}

fn facts(conversation: ConversationId) -> BodyFacts {
    BodyFacts {
        hub_id: HubId::new(),
        conversation_id: conversation,
        app_user_id: "au-1".into(),
        user_id: None,
        full_app_user: None,
        client: None,
        author_name: Some("Ada Lovelace".into()),
    }
}

#[test]
fn every_named_trigger_parses_and_prints_back() {
    for name in FIRED_TRIGGERS.iter().chain(SILENT_TRIGGERS) {
        assert_eq!(Trigger::parse(name).map(Trigger::as_str), Some(*name));
    }
    for bad in [
        "",
        "Message",
        "message:appuser",
        "typing",
        "conversation:closed",
    ] {
        assert_eq!(Trigger::parse(bad), None, "{bad}");
    }
}

#[test]
fn triggers_are_a_non_empty_array_of_distinct_known_names() {
    assert_eq!(
        parse_triggers(&json!(["message:appUser", "postback"]), "triggers").unwrap(),
        [Trigger::MessageAppUser, Trigger::Postback]
    );
    let err = parse_triggers(&json!([]), "triggers").unwrap_err();
    assert_eq!(pairs(&err), [(ViolationKind::Empty, "triggers".into())]);
    let err = parse_triggers(&json!("message"), "triggers").unwrap_err();
    assert_eq!(pairs(&err), [(ViolationKind::WrongType, "triggers".into())]);
    let err = parse_triggers(
        &json!(["message", "nope", 3, "message", "client:add"]),
        "triggers",
    )
    .unwrap_err();
    assert_eq!(
        pairs(&err),
        [
            (ViolationKind::OutOfRange, "triggers[1]".into()),
            (ViolationKind::WrongType, "triggers[2]".into()),
            (ViolationKind::OutOfRange, "triggers[3]".into()),
        ]
    );
    assert!(err.0[0].message.contains("'nope'"), "{}", err.0[0].message);
    assert!(
        err.0[2].message.contains("distinct"),
        "{}",
        err.0[2].message
    );
}

#[test]
fn events_are_derived_from_triggers_in_catalogue_order() {
    let t = |names: &[&str]| -> Vec<Trigger> {
        names.iter().map(|n| Trigger::parse(n).unwrap()).collect()
    };
    assert_eq!(
        derived_events(&t(&["message:appUser"])),
        ["message:customer"]
    );
    assert_eq!(
        derived_events(&t(&["typing:appUser", "message:appMaker", "postback"])),
        ["message:agent", "message:bot", "event:customer"]
    );
    assert_eq!(
        derived_events(&t(&["*"])),
        ["message", "event:customer", "conversation:opened"]
    );
    assert!(derived_events(&t(&["client:add", "link:match"])).is_empty());
}

#[test]
fn which_activity_fires_which_trigger() {
    let c = ConversationId::new();
    let text = || Payload::Message(Message::text("hi"));
    let ev = |e: Event| Payload::Event(e);
    let cases: Vec<(Activity, Option<Trigger>)> = vec![
        (
            activity(customer(), text(), FlowProcess::Default),
            Some(Trigger::MessageAppUser),
        ),
        (
            activity(agent(c), text(), FlowProcess::Default),
            Some(Trigger::MessageAppMaker),
        ),
        (
            activity(
                Party::business(
                    c,
                    IntegrationId::new(),
                    IntegrationType::Bot,
                    Channel::WebChat,
                ),
                text(),
                FlowProcess::AutoReply,
            ),
            Some(Trigger::MessageAppMaker),
        ),
        (
            activity(
                customer(),
                ev(Event::Conversation {
                    status: ConversationStatus::Opened,
                    reason: ConversationReason::Establish,
                }),
                FlowProcess::Default,
            ),
            Some(Trigger::ConversationStart),
        ),
        (
            activity(
                customer(),
                ev(Event::Conversation {
                    status: ConversationStatus::Closed,
                    reason: ConversationReason::Api,
                }),
                FlowProcess::Default,
            ),
            None,
        ),
        (
            activity(customer(), ev(Event::Seen), FlowProcess::Default),
            Some(Trigger::ConversationRead),
        ),
        (
            activity(customer(), ev(Event::TypingOn), FlowProcess::Default),
            Some(Trigger::TypingAppUser),
        ),
        (
            activity(customer(), ev(Event::TypingOff), FlowProcess::Default),
            Some(Trigger::TypingAppUser),
        ),
        (
            activity(
                customer(),
                ev(Event::Payload {
                    payload_type: "buy".into(),
                    payload: json!({"sku": 1}),
                }),
                FlowProcess::Default,
            ),
            Some(Trigger::Postback),
        ),
        (
            activity(agent(c), ev(Event::Seen), FlowProcess::Default),
            None,
        ),
        (
            activity(agent(c), ev(Event::TypingOn), FlowProcess::Default),
            None,
        ),
        (
            activity(agent(c), ev(Event::Takeover), FlowProcess::Default),
            None,
        ),
    ];
    for (a, want) in cases {
        assert_eq!(fired(a.event_trigger, &a.payload), want, "{a:?}");
    }
}

#[test]
fn a_webhook_gets_what_one_of_its_triggers_covers() {
    let customer_text = Payload::Message(Message::text("hi"));
    let m = |names: &[&str], t: EventTrigger, p: &Payload| {
        let triggers: Vec<Trigger> = names.iter().map(|n| Trigger::parse(n).unwrap()).collect();
        matching(&triggers, t, p)
    };
    let from_customer = EventTrigger::Message(SenderRole::Customer);
    let from_agent = EventTrigger::Message(SenderRole::Agent);
    assert_eq!(
        m(&["message:appUser"], from_customer, &customer_text),
        Some(Trigger::MessageAppUser)
    );
    assert_eq!(m(&["message:appUser"], from_agent, &customer_text), None);
    assert_eq!(
        m(&["message"], from_agent, &customer_text),
        Some(Trigger::MessageAppMaker)
    );
    assert_eq!(
        m(&["*"], from_customer, &customer_text),
        Some(Trigger::MessageAppUser)
    );
    assert_eq!(
        m(&["postback", "client:add"], from_customer, &customer_text),
        None
    );
    let seen = Payload::Event(Event::Seen);
    let customer_event = EventTrigger::Event(SenderRole::Customer);
    assert_eq!(
        m(&["*"], customer_event, &seen),
        Some(Trigger::ConversationRead)
    );
    assert_eq!(m(&["message"], customer_event, &seen), None);
    assert_eq!(m(&["typing:appUser"], customer_event, &seen), None);
}

#[test]
fn a_customer_message_body_carries_one_message_and_the_short_app_user() {
    let c = ConversationId::new();
    let a = activity(
        customer(),
        Payload::Message(Message::text("Hi there!")),
        FlowProcess::Default,
    );
    let f = facts(c);
    let body = body(Trigger::MessageAppUser, &a, &f);
    assert_eq!(
        body,
        json!({
            "trigger": "message:appUser", "version": "v1.1",
            "app": { "_id": f.hub_id.to_string() },
            "appUser": { "_id": "au-1", "userId": null, "conversationStarted": true },
            "conversation": { "_id": c.to_string() },
            "messages": [{
                "_id": a.interaction_id.unwrap().to_string(), "type": "text", "text": "Hi there!",
                "role": "appUser", "authorId": "au-1", "name": "Ada Lovelace",
                "received": 1_731_900_000.123, "source": { "type": "web" },
            }],
            "timestamp": 1_731_900_000.123,
        })
    );
    assert_eq!(body["timestamp"].to_string(), "1731900000.123");
}

#[test]
fn an_agent_image_is_an_app_maker_message_with_a_media_url() {
    let c = ConversationId::new();
    let sender = agent(c);
    let a = activity(
        sender.clone(),
        Payload::Message(Message::Image(MediaMessage {
            url: "https://x.io/a.png".into(),
            caption: Some("look".into()),
            ..MediaMessage::default()
        })),
        FlowProcess::Default,
    );
    let mut f = facts(c);
    f.author_name = Some("desk".into());
    let m = &body(Trigger::MessageAppMaker, &a, &f)["messages"][0];
    assert_eq!(m["type"], "image");
    assert_eq!(m["mediaUrl"], "https://x.io/a.png");
    assert_eq!(m["text"], "look");
    assert_eq!(m["role"], "appMaker");
    assert_eq!(m["authorId"], sender.integration_id.to_string());
    assert_eq!(m["source"], json!({ "type": "api" }));
}

#[test]
fn event_bodies_carry_source_and_their_extras() {
    let c = ConversationId::new();
    let mut f = facts(c);
    f.client = Some(json!({ "id": "au-1", "platform": "web" }));
    f.full_app_user = Some(json!({ "_id": "au-1", "clients": [] }));

    let typing = activity(
        customer(),
        Payload::Event(Event::TypingOff),
        FlowProcess::Default,
    );
    let b = body(Trigger::TypingAppUser, &typing, &f);
    assert_eq!(b["source"], json!({ "type": "web" }));
    assert_eq!(b["activity"], json!({ "type": "typing:stop" }));
    assert_eq!(b["appUser"], json!({ "_id": "au-1", "clients": [] }));
    assert_eq!(b["client"], json!({ "id": "au-1", "platform": "web" }));
    assert!(b.get("messages").is_none());

    let postback = activity(
        customer(),
        Payload::Event(Event::Payload {
            payload_type: "buy".into(),
            payload: json!({ "sku": 1 }),
        }),
        FlowProcess::Default,
    );
    let b = body(Trigger::Postback, &postback, &f);
    assert_eq!(
        b["postbacks"],
        json!([{ "action": { "type": "postback", "text": "buy", "payload": "{\"sku\":1}" } }])
    );
    let plain = activity(
        customer(),
        Payload::Event(Event::Payload {
            payload_type: "buy".into(),
            payload: json!("sku-1"),
        }),
        FlowProcess::Default,
    );
    assert_eq!(
        body(Trigger::Postback, &plain, &f)["postbacks"][0]["action"]["payload"],
        "sku-1"
    );

    let start = activity(
        customer(),
        Payload::Event(Event::Conversation {
            status: ConversationStatus::Opened,
            reason: ConversationReason::Establish,
        }),
        FlowProcess::Default,
    );
    let b = body(Trigger::ConversationStart, &start, &f);
    assert_eq!(b["trigger"], "conversation:start");
    assert_eq!(b["source"], json!({ "type": "web" }));
    assert!(b.get("activity").is_none() && b.get("postbacks").is_none());
}

#[test]
fn defaults_differ_by_version() {
    let v1 = V1_DEFAULTS;
    let v1_1 = V1_1_DEFAULTS;
    assert_eq!(
        (v1.triggers, v1.include_full_app_user),
        (&["message"][..], true)
    );
    assert_eq!(
        (v1_1.triggers, v1_1.include_full_app_user),
        (&["message:appUser"][..], false)
    );
    assert_eq!(integration_name("x"), "smooch-webhook-x");
}
