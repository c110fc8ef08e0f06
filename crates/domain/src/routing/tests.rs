use super::*;
use crate::activity::{ActivityKind, EventTrigger, MediaMessage};
use proptest::prelude::*;
use serde_json::json;
use std::collections::HashSet;

fn member(t: IntegrationType, channel: Channel) -> HubMember {
    HubMember {
        id: IntegrationId::new(),
        integration_type: t,
        channel,
        status: IntegrationStatus::Active,
        echo: false,
        webhook_url: None,
        filters: Vec::new(),
        smooch_triggers: None,
    }
}

fn paused(mut m: HubMember) -> HubMember {
    m.status = IntegrationStatus::Paused;
    m
}

fn echoing(mut m: HubMember) -> HubMember {
    m.echo = true;
    m
}

fn system(filters: &[EventFilter]) -> HubMember {
    HubMember {
        webhook_url: Some("https://sys.example/hook".into()),
        filters: filters.to_vec(),
        ..member(IntegrationType::System, Channel::System)
    }
}

fn conversation(customer: &HubMember, mode: Mode) -> ConversationView {
    ConversationView {
        id: ConversationId::new(),
        customer_integration: customer.id,
        customer_token: "customer-token".into(),
        mode,
        open: true,
    }
}

fn message_from(sender: Option<&HubMember>) -> InboundActivity {
    InboundActivity {
        external_id: None,
        sender: sender.map(|s| s.id),
        payload: Payload::Message(Message::text("hi")),
    }
}

fn event_from(sender: &HubMember, e: Event) -> InboundActivity {
    InboundActivity {
        external_id: None,
        sender: Some(sender.id),
        payload: Payload::Event(e),
    }
}

fn ids(route: &Route) -> Vec<(IntegrationId, bool)> {
    route
        .recipients
        .iter()
        .map(|r| (r.integration_id, r.is_echo))
        .collect()
}

struct Hub {
    customer: HubMember,
    bot: HubMember,
    agent: HubMember,
    members: Vec<HubMember>,
}

fn hub() -> Hub {
    let customer = member(IntegrationType::Customer, Channel::WebChat);
    let bot = member(IntegrationType::Bot, Channel::Direct);
    let agent = member(IntegrationType::Agent, Channel::Direct);
    let members = vec![customer.clone(), bot.clone(), agent.clone()];
    Hub {
        customer,
        bot,
        agent,
        members,
    }
}

#[test]
fn a_customer_message_in_bot_mode_goes_to_every_active_bot() {
    let h = hub();
    let bot2 = member(IntegrationType::Bot, Channel::Direct);
    let bot3 = paused(member(IntegrationType::Bot, Channel::Direct));
    let mut members = h.members.clone();
    members.extend([bot2.clone(), bot3]);
    let c = conversation(&h.customer, Mode::Bot);
    let r = route(HubStatus::Active, &members, &c, &message_from(None)).unwrap();
    assert_eq!(ids(&r), vec![(h.bot.id, false), (bot2.id, false)]);
    assert_eq!(
        r.activity.event_trigger,
        EventTrigger::Message(SenderRole::Customer)
    );
    assert_eq!(r.new_mode, None);
}

#[test]
fn a_customer_message_in_bot_mode_without_an_active_bot_goes_to_the_agents() {
    let h = hub();
    let members = vec![h.customer.clone(), paused(h.bot.clone()), h.agent.clone()];
    let c = conversation(&h.customer, Mode::Bot);
    let r = route(HubStatus::Active, &members, &c, &message_from(None)).unwrap();
    assert_eq!(ids(&r), vec![(h.agent.id, false)]);
}

#[test]
fn a_customer_message_in_agent_mode_goes_to_the_active_agents_only() {
    let h = hub();
    let slack = member(IntegrationType::Agent, Channel::Slack);
    let off = paused(member(IntegrationType::Agent, Channel::Direct));
    let mut members = h.members.clone();
    members.extend([slack.clone(), off]);
    let c = conversation(&h.customer, Mode::Agent);
    let r = route(HubStatus::Active, &members, &c, &message_from(None)).unwrap();
    assert_eq!(ids(&r), vec![(h.agent.id, false), (slack.id, false)]);
}

#[test]
fn a_customer_activity_without_an_active_handler_is_5501() {
    let h = hub();
    let members = vec![
        h.customer.clone(),
        paused(h.bot.clone()),
        paused(h.agent.clone()),
    ];
    for mode in [Mode::Bot, Mode::Agent] {
        let err = route(
            HubStatus::Active,
            &members,
            &conversation(&h.customer, mode),
            &message_from(None),
        )
        .unwrap_err();
        assert_eq!(err, RouteError::NoHandler);
    }
}

#[test]
fn an_agent_or_bot_activity_goes_to_the_customer() {
    let h = hub();
    let c = conversation(&h.customer, Mode::Bot);
    for sender in [&h.agent, &h.bot] {
        let r = route(
            HubStatus::Active,
            &h.members,
            &c,
            &message_from(Some(sender)),
        )
        .unwrap();
        assert_eq!(ids(&r), vec![(h.customer.id, false)]);
        let to = &r.recipients[0];
        assert_eq!(to.token_id, "customer-token");
        assert_eq!(to.reach, Reach::Live);
        assert_eq!(
            r.activity.sender.token_id,
            format!("{}.{}", c.id, sender.id)
        );
    }
}

#[test]
fn a_paused_customer_integration_receives_nothing_but_systems_still_do() {
    let h = hub();
    let sys = system(&[EventFilter::AnyMessage]);
    let members = vec![paused(h.customer.clone()), h.agent.clone(), sys.clone()];
    let c = conversation(&h.customer, Mode::Agent);
    let r = route(
        HubStatus::Active,
        &members,
        &c,
        &message_from(Some(&h.agent)),
    )
    .unwrap();
    assert_eq!(ids(&r), vec![(sys.id, false)]);
}

#[test]
fn matching_systems_get_one_copy_however_many_filters_match() {
    let h = hub();
    let all = system(&[
        EventFilter::AnyMessage,
        EventFilter::Message(SenderRole::Customer),
        EventFilter::AnyEvent,
    ]);
    let bots_only = system(&[EventFilter::Message(SenderRole::Bot)]);
    let off = paused(system(&[EventFilter::AnyMessage]));
    let mut members = h.members.clone();
    members.extend([all.clone(), bots_only.clone(), off]);
    let c = conversation(&h.customer, Mode::Agent);
    let r = route(HubStatus::Active, &members, &c, &message_from(None)).unwrap();
    assert_eq!(ids(&r), vec![(h.agent.id, false), (all.id, false)]);
    assert_eq!(
        r.recipients[1].reach,
        Reach::Webhook {
            url: "https://sys.example/hook".into()
        }
    );
    assert_eq!(r.recipients[1].token_id, format!("{}.{}", c.id, all.id));
    let r = route(HubStatus::Active, &members, &c, &message_from(Some(&h.bot))).unwrap();
    assert_eq!(
        ids(&r),
        vec![
            (h.customer.id, false),
            (all.id, false),
            (bots_only.id, false)
        ]
    );
}

#[test]
fn a_sender_with_echo_gets_its_own_copy_marked_as_echo() {
    let h = hub();
    let agent = echoing(h.agent.clone());
    let customer = echoing(h.customer.clone());
    let members = vec![customer.clone(), agent.clone()];
    let c = conversation(&customer, Mode::Agent);
    let r = route(HubStatus::Active, &members, &c, &message_from(Some(&agent))).unwrap();
    assert_eq!(ids(&r), vec![(customer.id, false), (agent.id, true)]);
    assert_eq!(r.recipients[1].reach, Reach::Live);
    let r = route(HubStatus::Active, &members, &c, &message_from(None)).unwrap();
    assert_eq!(ids(&r), vec![(agent.id, false), (customer.id, true)]);
    let copies = r.activities(42);
    assert!(copies[1].is_echo);
    assert_eq!(copies[1].recipient.token_id, "customer-token");
    assert_eq!(copies[1].sender, copies[1].recipient);
}

#[test]
fn a_sender_without_echo_never_receives_its_own_activity() {
    let h = hub();
    let c = conversation(&h.customer, Mode::Agent);
    let r = route(
        HubStatus::Active,
        &h.members,
        &c,
        &message_from(Some(&h.agent)),
    )
    .unwrap();
    assert!(r.recipients.iter().all(|x| x.integration_id != h.agent.id));
}

#[test]
fn a_paused_sender_or_hub_is_6502_and_a_closed_conversation_6501() {
    let h = hub();
    let c = conversation(&h.customer, Mode::Bot);
    let err = route(HubStatus::Paused, &h.members, &c, &message_from(None)).unwrap_err();
    assert_eq!(err, RouteError::HubPaused);
    let members = vec![h.customer.clone(), h.bot.clone(), paused(h.agent.clone())];
    let err = route(
        HubStatus::Active,
        &members,
        &c,
        &message_from(Some(&h.agent)),
    )
    .unwrap_err();
    assert_eq!(err, RouteError::SenderPaused(h.agent.id));
    let members = vec![paused(h.customer.clone()), h.bot.clone()];
    assert_eq!(
        route(HubStatus::Active, &members, &c, &message_from(None)).unwrap_err(),
        RouteError::SenderPaused(h.customer.id)
    );
    let closed = ConversationView { open: false, ..c };
    let err = route(HubStatus::Active, &h.members, &closed, &message_from(None)).unwrap_err();
    assert_eq!(err, RouteError::ConversationClosed(closed.id));
}

#[test]
fn a_sender_from_another_hub_is_6000_and_a_foreign_customer_or_system_206() {
    let h = hub();
    let c = conversation(&h.customer, Mode::Bot);
    let stranger = member(IntegrationType::Agent, Channel::Direct);
    let err = route(
        HubStatus::Active,
        &h.members,
        &c,
        &message_from(Some(&stranger)),
    )
    .unwrap_err();
    assert_eq!(err, RouteError::SenderNotInHub(stranger.id));
    let other_customer = member(IntegrationType::Customer, Channel::Direct);
    let sys = system(&[EventFilter::AnyMessage]);
    let mut members = h.members.clone();
    members.extend([other_customer.clone(), sys.clone()]);
    for s in [&other_customer, &sys] {
        let err = route(HubStatus::Active, &members, &c, &message_from(Some(s))).unwrap_err();
        assert_eq!(err, RouteError::SenderNotAllowed(s.id));
    }
}

#[test]
fn naming_the_customer_integration_as_sender_is_the_same_as_leaving_it_out() {
    let h = hub();
    let c = conversation(&h.customer, Mode::Bot);
    let named = route(
        HubStatus::Active,
        &h.members,
        &c,
        &message_from(Some(&h.customer)),
    )
    .unwrap();
    let implicit = route(HubStatus::Active, &h.members, &c, &message_from(None)).unwrap();
    assert_eq!(named.recipients, implicit.recipients);
    assert_eq!(named.activity.sender, implicit.activity.sender);
    assert_eq!(named.activity.sender.token_id, "customer-token");
}

#[test]
fn handover_and_takeover_set_agent_mode_and_release_sets_bot_mode() {
    let h = hub();
    let bot_mode = conversation(&h.customer, Mode::Bot);
    let agent_mode = ConversationView {
        mode: Mode::Agent,
        ..bot_mode.clone()
    };
    let cases = [
        (&h.bot, Event::Handover, &bot_mode, Some(Mode::Agent)),
        (&h.agent, Event::Takeover, &bot_mode, Some(Mode::Agent)),
        (&h.agent, Event::Release, &agent_mode, Some(Mode::Bot)),
        (&h.agent, Event::Release, &bot_mode, None),
        (&h.bot, Event::Handover, &agent_mode, None),
        (&h.agent, Event::Handover, &bot_mode, None),
        (&h.bot, Event::Takeover, &bot_mode, None),
        (&h.bot, Event::Release, &agent_mode, None),
        (&h.agent, Event::Seen, &bot_mode, None),
    ];
    for (sender, e, c, expected) in cases {
        let r = route(
            HubStatus::Active,
            &h.members,
            c,
            &event_from(sender, e.clone()),
        )
        .unwrap();
        assert_eq!(
            r.new_mode, expected,
            "{e:?} from {:?}",
            sender.integration_type
        );
        // Delivered like any other event.
        assert_eq!(ids(&r), vec![(h.customer.id, false)]);
        assert_eq!(r.activity.kind(), ActivityKind::Event);
        assert_eq!(r.activity.interaction_id, None);
    }
    let customer_handover = InboundActivity {
        external_id: None,
        sender: None,
        payload: Payload::Event(Event::Handover),
    };
    let r = route(HubStatus::Active, &h.members, &bot_mode, &customer_handover).unwrap();
    assert_eq!(r.new_mode, None);
}

#[test]
fn a_new_conversation_starts_in_bot_mode_only_with_an_active_bot() {
    let h = hub();
    assert_eq!(initial_mode(&h.members), Mode::Bot);
    assert_eq!(
        initial_mode(&[h.customer.clone(), paused(h.bot.clone()), h.agent.clone()]),
        Mode::Agent
    );
    assert_eq!(initial_mode(&[]), Mode::Agent);
}

#[test]
fn reach_follows_channel_and_webhook_url() {
    let mut direct = member(IntegrationType::Agent, Channel::Direct);
    assert_eq!(direct.reach(), Reach::Live);
    direct.webhook_url = Some("https://a.io".into());
    assert_eq!(
        direct.reach(),
        Reach::Webhook {
            url: "https://a.io".into()
        }
    );
    assert_eq!(
        system(&[]).reach(),
        Reach::Webhook {
            url: "https://sys.example/hook".into()
        }
    );
    for c in [Channel::Line, Channel::Kik] {
        assert_eq!(member(IntegrationType::Customer, c).reach(), Reach::Stored);
    }
    // WebChat: the widget's sockets, live (SPEC 7.18.3).
    assert_eq!(
        member(IntegrationType::Customer, Channel::WebChat).reach(),
        Reach::Live
    );
    assert_eq!(
        member(IntegrationType::Agent, Channel::Slack).reach(),
        Reach::Stored
    );
    // The channels with an adapter go through the outbox to their provider (SPEC 7.4).
    for c in [
        Channel::Messenger,
        Channel::TwilioSms,
        Channel::WhatsApp,
        Channel::Telegram,
    ] {
        assert_eq!(
            member(IntegrationType::Customer, c).reach(),
            Reach::Provider
        );
    }
}

#[test]
fn a_member_is_read_from_a_stored_configuration() {
    let conf = json!({ "integrationType": "Agent", "echo": true, "webhookUrl": "https://a.io/h" });
    let m = HubMember::from_parts(
        IntegrationId::new(),
        IntegrationType::Agent,
        Channel::Direct,
        IntegrationStatus::Active,
        conf.as_object().unwrap(),
    );
    assert!(m.echo);
    assert_eq!(m.webhook_url.as_deref(), Some("https://a.io/h"));
    let conf =
        json!({ "webhookUrl": "https://s.io", "events": ["message", "conversation:opened"] });
    let s = HubMember::from_parts(
        IntegrationId::new(),
        IntegrationType::System,
        Channel::System,
        IntegrationStatus::Paused,
        conf.as_object().unwrap(),
    );
    assert!(!s.echo && !s.is_active());
    assert_eq!(
        s.filters,
        vec![EventFilter::AnyMessage, EventFilter::ConversationOpened]
    );
    let bare = HubMember::from_parts(
        IntegrationId::new(),
        IntegrationType::Customer,
        Channel::Telegram,
        IntegrationStatus::Active,
        &Map::new(),
    );
    assert!(!bare.echo && bare.webhook_url.is_none() && bare.filters.is_empty());
}

#[test]
fn route_copies_share_the_draft_and_differ_by_recipient() {
    let h = hub();
    let sys = system(&[EventFilter::AnyMessage]);
    let mut members = h.members.clone();
    members.push(sys.clone());
    let c = conversation(&h.customer, Mode::Bot);
    let r = route(HubStatus::Active, &members, &c, &message_from(None)).unwrap();
    let copies = r.activities(7);
    assert_eq!(copies.len(), 2);
    assert!(copies
        .iter()
        .all(|a| a.event_id == 7 && a.interaction_id.is_some()));
    assert_eq!(copies[0].interaction_id, copies[1].interaction_id);
    assert_eq!(copies[0].recipient.integration_id, h.bot.id);
    assert_eq!(copies[1].recipient.integration_id, sys.id);
    assert_eq!(
        copies[0].recipient.token_id,
        format!("{}.{}", c.id, h.bot.id)
    );
}

#[test]
fn start_messages_are_auto_replies_from_the_integration_as_a_bot() {
    let customer = member(IntegrationType::Customer, Channel::WebChat);
    let bots = system(&[EventFilter::Message(SenderRole::Bot)]);
    let customers = system(&[EventFilter::Message(SenderRole::Customer)]);
    let members = vec![customer.clone(), bots.clone(), customers];
    let c = conversation(&customer, Mode::Agent);
    let start = json!([
        { "type": "text", "text": "Welcome!" },
        { "type": "image" },
        { "type": "text", "text": "https://x.io/logo.png" },
    ]);
    let (routes, skipped) = start_routes(HubStatus::Active, &members, &c, Some(&start));
    assert_eq!(routes.len(), 2);
    assert_eq!(skipped.0.len(), 1);
    assert_eq!(skipped.0[0].property, "configuration.start[1].url");
    for r in &routes {
        let a = &r.activity;
        assert_eq!(a.flow_process, FlowProcess::AutoReply);
        assert_eq!(a.event_trigger, EventTrigger::Message(SenderRole::Bot));
        assert_eq!(a.sender.integration_id, customer.id);
        assert_eq!(a.sender.integration_type, IntegrationType::Bot);
        assert_eq!(a.sender.channel_type, Channel::WebChat);
        assert_eq!(a.sender.token_id, format!("{}.{}", c.id, customer.id));
        assert!(a.interaction_id.is_some());
        assert_eq!(ids(r), vec![(customer.id, false), (bots.id, false)]);
        assert_eq!(r.recipients[0].party().token_id, "customer-token");
        assert_eq!(r.recipients[0].integration_type, IntegrationType::Customer);
    }
    assert_eq!(
        routes[0].activity.payload,
        Payload::Message(Message::text("Welcome!"))
    );
    assert_eq!(
        routes[1].activity.payload,
        Payload::Message(Message::Image(MediaMessage {
            url: "https://x.io/logo.png".into(),
            ..MediaMessage::default()
        }))
    );
    let copy = &routes[0].activities(1)[0];
    assert_eq!(
        serde_json::to_value(copy).unwrap()["flowProcess"],
        "AutoReply"
    );
}

#[test]
fn no_start_messages_without_start_or_in_a_paused_hub() {
    let customer = member(IntegrationType::Customer, Channel::Direct);
    let c = conversation(&customer, Mode::Agent);
    let members = vec![customer.clone()];
    assert!(start_routes(HubStatus::Active, &members, &c, None)
        .0
        .is_empty());
    assert!(
        start_routes(HubStatus::Active, &members, &c, Some(&json!([])))
            .0
            .is_empty()
    );
    let start = json!([{ "type": "text", "text": "hi" }]);
    assert!(start_routes(HubStatus::Paused, &members, &c, Some(&start))
        .0
        .is_empty());
    assert_eq!(
        start_routes(HubStatus::Active, &members, &c, Some(&start))
            .0
            .len(),
        1
    );
}

#[test]
fn conversation_activities_go_to_matching_systems_only() {
    let h = hub();
    let opened = system(&[EventFilter::ConversationOpened]);
    let closed = system(&[EventFilter::ConversationClosed, EventFilter::AnyMessage]);
    let events = system(&[EventFilter::AnyEvent]);
    let mut members = h.members.clone();
    members.extend([opened.clone(), closed.clone(), events]);
    let c = conversation(&h.customer, Mode::Bot);
    let r = conversation_route(
        HubStatus::Active,
        &members,
        &c,
        Channel::WebChat,
        ConversationStatus::Opened,
        ConversationReason::Establish,
    );
    assert_eq!(ids(&r), vec![(opened.id, false)]);
    assert_eq!(r.activity.event_trigger, EventTrigger::ConversationOpened);
    assert_eq!(
        r.activity.sender,
        Party::customer(h.customer.id, Channel::WebChat, "customer-token")
    );
    let v = serde_json::to_value(&r.activities(3)[0]).unwrap();
    assert_eq!(v["eventTrigger"], "conversation:opened");
    assert_eq!(
        v["event"],
        json!({ "type": "conversation", "status": "opened", "reason": "establish" })
    );
    assert!(v.get("interactionId").is_none());
    let r = conversation_route(
        HubStatus::Active,
        &members,
        &c,
        Channel::WebChat,
        ConversationStatus::Closed,
        ConversationReason::Dormant,
    );
    assert_eq!(ids(&r), vec![(closed.id, false)]);
    let r = conversation_route(
        HubStatus::Paused,
        &members,
        &c,
        Channel::WebChat,
        ConversationStatus::Closed,
        ConversationReason::Api,
    );
    assert!(r.recipients.is_empty());
}

fn smooch(triggers: &[&str]) -> HubMember {
    let configuration = json!({
        "webhookUrl": "https://smooch.example/hook", "format": "smooch",
        "triggers": triggers, "events": ["message"],
    });
    HubMember::from_parts(
        IntegrationId::new(),
        IntegrationType::System,
        Channel::System,
        IntegrationStatus::Active,
        configuration.as_object().unwrap(),
    )
}

#[test]
fn smooch_webhooks_get_only_what_their_triggers_cover() {
    let h = hub();
    let app_user = smooch(&["message:appUser"]);
    let app_maker = smooch(&["message:appMaker"]);
    let typing = smooch(&["typing:appUser"]);
    let all = smooch(&["*"]);
    let silent = smooch(&["client:add"]);
    assert!(app_user.filters.contains(&EventFilter::AnyMessage));
    let mut members = h.members.clone();
    members.extend([
        app_user.clone(),
        app_maker.clone(),
        typing.clone(),
        all.clone(),
        silent,
    ]);
    let c = conversation(&h.customer, Mode::Agent);
    let r = route(HubStatus::Active, &members, &c, &message_from(None)).unwrap();
    assert_eq!(
        ids(&r),
        vec![(h.agent.id, false), (app_user.id, false), (all.id, false)]
    );
    let r = route(
        HubStatus::Active,
        &members,
        &c,
        &message_from(Some(&h.agent)),
    )
    .unwrap();
    assert_eq!(
        ids(&r),
        vec![
            (h.customer.id, false),
            (app_maker.id, false),
            (all.id, false)
        ]
    );
    let mut typing_on = event_from(&h.customer, Event::TypingOn);
    typing_on.sender = None;
    let r = route(HubStatus::Active, &members, &c, &typing_on).unwrap();
    assert_eq!(
        ids(&r),
        vec![(h.agent.id, false), (typing.id, false), (all.id, false)]
    );
    // An agent's typing fires nothing.
    let r = route(
        HubStatus::Active,
        &members,
        &c,
        &event_from(&h.agent, Event::TypingOn),
    )
    .unwrap();
    assert_eq!(ids(&r), vec![(h.customer.id, false)]);
    let start = json!([{ "type": "text", "text": "Welcome!" }]);
    let (routes, _) = start_routes(HubStatus::Active, &members, &c, Some(&start));
    assert_eq!(
        ids(&routes[0]),
        vec![
            (h.customer.id, false),
            (app_maker.id, false),
            (all.id, false)
        ]
    );
    let r = conversation_route(
        HubStatus::Active,
        &members,
        &c,
        Channel::WebChat,
        ConversationStatus::Opened,
        ConversationReason::Establish,
    );
    assert_eq!(ids(&r), vec![(all.id, false)]);
}

// --- properties

/// (type, channel) pairs the catalogue allows.
fn arb_member() -> impl Strategy<Value = HubMember> {
    let kinds = prop_oneof![
        Just((IntegrationType::Customer, Channel::Direct)),
        Just((IntegrationType::Customer, Channel::WebChat)),
        Just((IntegrationType::Customer, Channel::TwilioSms)),
        Just((IntegrationType::Agent, Channel::Direct)),
        Just((IntegrationType::Agent, Channel::Slack)),
        Just((IntegrationType::Bot, Channel::Direct)),
        Just((IntegrationType::System, Channel::System)),
    ];
    let filters = proptest::collection::vec(
        proptest::sample::select(crate::channel_config::EVENT_FILTERS),
        1..4,
    );
    (
        kinds,
        proptest::bool::weighted(0.75),
        any::<bool>(),
        any::<bool>(),
        filters,
    )
        .prop_map(|((t, channel), active, echo, webhook, names)| {
            let system = t == IntegrationType::System;
            HubMember {
                id: IntegrationId::new(),
                integration_type: t,
                channel,
                status: if active {
                    IntegrationStatus::Active
                } else {
                    IntegrationStatus::Paused
                },
                echo: echo && !system,
                webhook_url: (system || (webhook && channel == Channel::Direct))
                    .then(|| "https://h.example".to_owned()),
                filters: if system {
                    names.iter().filter_map(|n| EventFilter::parse(n)).collect()
                } else {
                    Vec::new()
                },
                smooch_triggers: None,
            }
        })
}

#[derive(Clone, Debug)]
struct Case {
    hub: HubStatus,
    members: Vec<HubMember>,
    conversation: ConversationView,
    activity: InboundActivity,
}

fn arb_case() -> impl Strategy<Value = Case> {
    let payload = prop_oneof![
        Just(Payload::Message(Message::text("hi"))),
        Just(Payload::Event(Event::Seen)),
        Just(Payload::Event(Event::Handover)),
        Just(Payload::Event(Event::Takeover)),
        Just(Payload::Event(Event::Release)),
    ];
    (
        proptest::collection::vec(arb_member(), 0..10),
        arb_member(),
        prop_oneof![9 => Just(HubStatus::Active), 1 => Just(HubStatus::Paused)],
        prop_oneof![Just(Mode::Bot), Just(Mode::Agent)],
        proptest::bool::weighted(0.9),
        payload,
        // 0: no sender; 1: a stranger; else the member at that index (mod len).
        0usize..20,
        0usize..20,
    )
        .prop_map(
            |(mut members, mut customer, hub, mode, open, payload, pick, place)| {
                customer.integration_type = IntegrationType::Customer;
                customer.channel = Channel::WebChat;
                customer.webhook_url = None;
                customer.filters.clear();
                let at = place % (members.len() + 1);
                members.insert(at, customer.clone());
                let sender = match pick {
                    0 => None,
                    1 => Some(IntegrationId::new()),
                    n => Some(members[n % members.len()].id),
                };
                Case {
                    hub,
                    conversation: ConversationView {
                        id: ConversationId::new(),
                        customer_integration: customer.id,
                        customer_token: "tok".into(),
                        mode,
                        open,
                    },
                    activity: InboundActivity {
                        external_id: None,
                        sender,
                        payload,
                    },
                    members,
                }
            },
        )
}

/// The rules of SPEC 5.1, written as set comprehensions, independently of [`route`].
fn expected(case: &Case) -> Result<HashSet<(IntegrationId, bool)>, RouteError> {
    let Case {
        hub,
        members,
        conversation,
        activity,
    } = case;
    let sender_id = activity.sender.unwrap_or(conversation.customer_integration);
    let Some(sender) = members.iter().find(|m| m.id == sender_id) else {
        return Err(RouteError::SenderNotInHub(sender_id));
    };
    let active = |m: &&HubMember| m.status == IntegrationStatus::Active;
    let role = match sender.integration_type {
        IntegrationType::Customer if sender.id == conversation.customer_integration => "customer",
        IntegrationType::Agent => "agent",
        IntegrationType::Bot => "bot",
        _ => return Err(RouteError::SenderNotAllowed(sender.id)),
    };
    if *hub == HubStatus::Paused {
        return Err(RouteError::HubPaused);
    }
    if !active(&sender) {
        return Err(RouteError::SenderPaused(sender.id));
    }
    if !conversation.open {
        return Err(RouteError::ConversationClosed(conversation.id));
    }
    let of_type = |t: IntegrationType| -> HashSet<(IntegrationId, bool)> {
        members
            .iter()
            .filter(active)
            .filter(|m| m.integration_type == t)
            .map(|m| (m.id, false))
            .collect()
    };
    let mut out = if role == "customer" {
        let bots = of_type(IntegrationType::Bot);
        let handlers = if conversation.mode == Mode::Bot && !bots.is_empty() {
            bots
        } else {
            of_type(IntegrationType::Agent)
        };
        if handlers.is_empty() {
            return Err(RouteError::NoHandler);
        }
        handlers
    } else {
        members
            .iter()
            .filter(active)
            .filter(|m| m.id == conversation.customer_integration)
            .map(|m| (m.id, false))
            .collect()
    };
    let trigger = format!(
        "{}:{role}",
        if matches!(activity.payload, Payload::Message(_)) {
            "message"
        } else {
            "event"
        }
    );
    for m in members
        .iter()
        .filter(active)
        .filter(|m| m.integration_type == IntegrationType::System)
    {
        let names: Vec<String> = m.filters.iter().map(|f| f.to_string()).collect();
        let hit = names
            .iter()
            .any(|n| *n == trigger || trigger.starts_with(&format!("{n}:")));
        if hit {
            out.insert((m.id, false));
        }
    }
    if sender.echo {
        out.insert((sender.id, true));
    }
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn every_activity_reaches_exactly_the_recipients_the_rules_name(case in arb_case()) {
        let got = route(case.hub, &case.members, &case.conversation, &case.activity);
        match (got, expected(&case)) {
            (Ok(r), Ok(want)) => {
                let got: Vec<(IntegrationId, bool)> = ids(&r);
                let set: HashSet<_> = got.iter().copied().collect();
                prop_assert_eq!(set.len(), got.len(), "a recipient twice");
                prop_assert_eq!(set, want);
            }
            (Err(e), Err(want)) => prop_assert_eq!(e, want),
            (got, want) => prop_assert!(false, "got {:?}, want {:?}", got, want),
        }
    }

    #[test]
    fn no_paused_integration_and_no_paused_hub_ever_receives(case in arb_case()) {
        if let Ok(r) = route(case.hub, &case.members, &case.conversation, &case.activity) {
            prop_assert_eq!(case.hub, HubStatus::Active);
            for rec in &r.recipients {
                let m = case.members.iter().find(|m| m.id == rec.integration_id).unwrap();
                prop_assert!(m.is_active());
                prop_assert_eq!(rec.reach.clone(), m.reach());
                prop_assert_eq!(rec.integration_type, m.integration_type);
            }
        }
    }

    #[test]
    fn the_sender_receives_only_its_echo_and_systems_at_most_once(case in arb_case()) {
        if let Ok(r) = route(case.hub, &case.members, &case.conversation, &case.activity) {
            let sender = r.activity.sender.integration_id;
            for rec in &r.recipients {
                prop_assert_eq!(rec.integration_id == sender, rec.is_echo);
                if rec.integration_type == IntegrationType::System {
                    let n = r.recipients.iter().filter(|x| x.integration_id == rec.integration_id).count();
                    prop_assert_eq!(n, 1);
                }
                let expected_token = if rec.integration_id == case.conversation.customer_integration {
                    "tok".to_owned()
                } else {
                    format!("{}.{}", case.conversation.id, rec.integration_id)
                };
                prop_assert_eq!(&rec.token_id, &expected_token);
            }
        }
    }

    #[test]
    fn only_hand_off_events_change_the_mode(case in arb_case()) {
        if let Ok(r) = route(case.hub, &case.members, &case.conversation, &case.activity) {
            if let Some(mode) = r.new_mode {
                prop_assert_ne!(mode, case.conversation.mode);
                let t = r.activity.sender.integration_type;
                let ok = match (&r.activity.payload, t) {
                    (Payload::Event(Event::Handover), IntegrationType::Bot) => mode == Mode::Agent,
                    (Payload::Event(Event::Takeover), IntegrationType::Agent) => mode == Mode::Agent,
                    (Payload::Event(Event::Release), IntegrationType::Agent) => mode == Mode::Bot,
                    _ => false,
                };
                prop_assert!(ok);
            }
        }
    }

    #[test]
    fn conversation_activities_reach_only_active_systems_with_their_filter(
        case in arb_case(),
        closed in any::<bool>(),
    ) {
        let (status, filter) = if closed {
            (ConversationStatus::Closed, EventFilter::ConversationClosed)
        } else {
            (ConversationStatus::Opened, EventFilter::ConversationOpened)
        };
        let r = conversation_route(case.hub, &case.members, &case.conversation, Channel::WebChat, status, ConversationReason::Api);
        let got: HashSet<_> = r.recipients.iter().map(|x| x.integration_id).collect();
        prop_assert_eq!(got.len(), r.recipients.len());
        let want: HashSet<_> = case.members.iter()
            .filter(|m| case.hub == HubStatus::Active && m.is_active() && m.filters.contains(&filter))
            .map(|m| m.id)
            .collect();
        prop_assert_eq!(got, want);
    }
}
