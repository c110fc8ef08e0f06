//! Routing (SPEC 5.1–5.4): who receives an activity, how each recipient is reached, and the
//! bot/agent hand-off, as pure functions of the hub, its integrations and the conversation.
//!
//! It stays out of storage (the caller appends the copies and outbox rows in one transaction)
//! and of delivery (webhook worker, websocket bus). Its inputs are small views
//! ([`HubMember`], [`ConversationView`]) that storage fills from its rows.
//!
//! The rules, for an inbound activity:
//! 1. a customer activity goes to every active integration of the handler: the active Bot
//!    integrations while the conversation is in bot mode and one is active, else the active
//!    Agent integrations; none is [`RouteError::NoHandler`] and nothing is stored;
//! 2. an agent or bot activity goes to the conversation's customer integration;
//! 3. every active System integration whose filters match gets it too, once;
//! 4. a sender with `echo` on gets it back with `isEcho: true`;
//! 5. a paused integration never receives, and nothing of a paused hub sends or receives; the
//!    sender never receives except as its echo.

use serde_json::{Map, Value};

use crate::activity::{
    ActivityDraft, ConversationReason, ConversationStatus, Event, FlowProcess, InboundActivity,
    Message, Party, Payload, SenderRole,
};
use crate::channel::{Channel, IntegrationType};
use crate::error::Violations;
use crate::filter::{self, EventFilter};
use crate::hub::HubStatus;
use crate::ids::{ConversationId, IntegrationId};
use crate::integration::{Integration, IntegrationStatus};
use crate::time::Millis;

/// Who handles a conversation's customer activities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The hub's active Bot integrations (falling back to Agents when none is active).
    Bot,
    /// The hub's active Agent integrations.
    Agent,
}

impl Mode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Bot => "bot",
            Self::Agent => "agent",
        }
    }

    /// Parses `bot` or `agent` (any case), as storage keeps them.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Bot, Self::Agent]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
    }
}

/// What routing needs to know of one integration of the hub.
#[derive(Clone, Debug, PartialEq)]
pub struct HubMember {
    pub id: IntegrationId,
    pub integration_type: IntegrationType,
    pub channel: Channel,
    pub status: IntegrationStatus,
    /// `echo` of its configuration (Direct and WebChat; false elsewhere).
    pub echo: bool,
    /// `webhookUrl` of its configuration (Direct: optional; System: always).
    pub webhook_url: Option<String>,
    /// `events` of a System integration; empty for any other.
    pub filters: Vec<EventFilter>,
}

impl HubMember {
    /// The routing view of a stored integration, read from its configuration.
    pub fn from_integration(i: &Integration) -> Self {
        Self::from_parts(
            i.id,
            i.integration_type,
            i.channel,
            i.status,
            &i.configuration,
        )
    }

    /// The routing view from an integration's parts and its stored configuration.
    pub fn from_parts(
        id: IntegrationId,
        integration_type: IntegrationType,
        channel: Channel,
        status: IntegrationStatus,
        configuration: &Map<String, Value>,
    ) -> Self {
        let echo = configuration
            .get("echo")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let webhook_url = configuration
            .get("webhookUrl")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let filters = if integration_type == IntegrationType::System {
            filter::stored_filters(configuration.get("events"))
        } else {
            Vec::new()
        };
        Self {
            id,
            integration_type,
            channel,
            status,
            echo,
            webhook_url,
            filters,
        }
    }

    /// Active (3000).
    pub fn is_active(&self) -> bool {
        self.status == IntegrationStatus::Active
    }

    /// How an activity reaches this integration.
    pub fn reach(&self) -> Reach {
        match (self.channel, &self.webhook_url) {
            (Channel::Direct | Channel::System, Some(url)) => Reach::Webhook { url: url.clone() },
            // A System integration always has a webhookUrl; without one there is nowhere to
            // post, so its copy is only stored.
            (Channel::System, None) => Reach::Stored,
            (Channel::Direct, None) => Reach::Live,
            _ => Reach::Stored,
        }
    }
}

/// What routing needs to know of the conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationView {
    pub id: ConversationId,
    /// The Customer integration the conversation was established on.
    pub customer_integration: IntegrationId,
    /// The customer's `tokenId` in this conversation.
    pub customer_token: String,
    pub mode: Mode,
    /// `false` once closed.
    pub open: bool,
}

/// How a recipient is reached.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reach {
    /// A signed POST to `url` through the outbox: Direct with `webhookUrl`, every System.
    Webhook { url: String },
    /// The live bus to the integration's websockets (and `resume`): Direct without `webhookUrl`.
    Live,
    /// Stored only, readable back: provider channels (WebChat, Messenger, TwilioSMS, Slack, …)
    /// until their adapters exist.
    Stored,
}

/// One recipient of an activity: it gets its own copy with its own `recipient` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub integration_id: IntegrationId,
    pub integration_type: IntegrationType,
    pub channel: Channel,
    /// The sender's own copy (SPEC 5.1 rule 4).
    pub is_echo: bool,
    pub reach: Reach,
    /// `tokenId` of its `recipient` block.
    pub token_id: String,
}

impl Recipient {
    /// Its `recipient` block.
    pub fn party(&self) -> Party {
        Party {
            integration_id: self.integration_id,
            integration_type: self.integration_type,
            channel_type: self.channel,
            token_id: self.token_id.clone(),
        }
    }

    fn of(member: &HubMember, conversation: &ConversationView, is_echo: bool) -> Self {
        Self {
            integration_id: member.id,
            integration_type: member.integration_type,
            channel: member.channel,
            is_echo,
            reach: member.reach(),
            token_id: token_id(member, conversation),
        }
    }
}

/// `tokenId` of an integration's block in `conversation`: the customer token for the
/// conversation's customer integration, `{conversationId}.{integrationId}` for any other.
pub fn token_id(member: &HubMember, conversation: &ConversationView) -> String {
    if member.id == conversation.customer_integration {
        conversation.customer_token.clone()
    } else {
        crate::activity::business_token_id(conversation.id, member.id)
    }
}

/// The block of `member` in `conversation`.
pub fn party(member: &HubMember, conversation: &ConversationView) -> Party {
    Party {
        integration_id: member.id,
        integration_type: member.integration_type,
        channel_type: member.channel,
        token_id: token_id(member, conversation),
    }
}

/// A routed activity: the draft its copies share, who gets a copy, and the conversation's new
/// mode when the activity hands it over.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub activity: ActivityDraft,
    /// In a stable order: handler or customer, then System integrations, then the echo; each
    /// integration at most once.
    pub recipients: Vec<Recipient>,
    /// `Some` when the conversation's mode changes (SPEC 5.2); storage writes it with the
    /// activity.
    pub new_mode: Option<Mode>,
}

impl Route {
    /// One copy per recipient, in the order of [`Route::recipients`], numbered `event_id`.
    pub fn activities(&self, event_id: Millis) -> Vec<crate::activity::Activity> {
        self.recipients
            .iter()
            .map(|r| self.activity.to_activity(event_id, r.party(), r.is_echo))
            .collect()
    }
}

/// Why an activity cannot be routed; nothing is stored for any of them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// 6000 (404): `sender.integrationId` names no integration of the conversation's hub.
    #[error("Integration '{0}' does not exist.")]
    SenderNotInHub(IntegrationId),
    /// 206 (400): the named sender is a Customer integration other than the conversation's, or
    /// a System integration; only the conversation's customer, Agents and Bots send.
    #[error("Integration '{0}' cannot send to this conversation: only its customer integration or an Agent or Bot integration of its hub can.")]
    SenderNotAllowed(IntegrationId),
    /// 6502 (400): the sender is paused (3002).
    #[error("Integration '{0}' is paused.")]
    SenderPaused(IntegrationId),
    /// 6502 (400): the hub is paused (2002).
    #[error("The hub is paused.")]
    HubPaused,
    /// 6501 (400): the conversation is closed.
    #[error("Conversation '{0}' is closed.")]
    ConversationClosed(ConversationId),
    /// 5501 (400): a customer activity and no active Agent or Bot integration to handle it.
    #[error("The hub has no active Agent or Bot integration to receive customer activities.")]
    NoHandler,
}

impl RouteError {
    /// The code of SPEC 1.
    pub const fn code(&self) -> u32 {
        match self {
            Self::SenderNotInHub(_) => 6000,
            Self::SenderNotAllowed(_) => 206,
            Self::SenderPaused(_) | Self::HubPaused => 6502,
            Self::ConversationClosed(_) => 6501,
            Self::NoHandler => 5501,
        }
    }

    /// The HTTP status of SPEC 1.
    pub const fn status(&self) -> u16 {
        match self {
            Self::SenderNotInHub(_) => 404,
            _ => 400,
        }
    }
}

/// The initial mode of a new conversation: bot when the hub has an active Bot integration,
/// else agent (SPEC 5.1).
pub fn initial_mode(members: &[HubMember]) -> Mode {
    if members
        .iter()
        .any(|m| m.integration_type == IntegrationType::Bot && m.is_active())
    {
        Mode::Bot
    } else {
        Mode::Agent
    }
}

/// The integrations that handle customer activities now: the active Bots in bot mode when one
/// is active, else the active Agents (possibly none).
pub fn handlers(members: &[HubMember], mode: Mode) -> Vec<&HubMember> {
    let active = |t: IntegrationType| {
        members
            .iter()
            .filter(move |m| m.integration_type == t && m.is_active())
    };
    if mode == Mode::Bot && active(IntegrationType::Bot).next().is_some() {
        active(IntegrationType::Bot).collect()
    } else {
        active(IntegrationType::Agent).collect()
    }
}

/// The mode an event sets (SPEC 5.2): a bot's `handover` and an agent's `takeover` set agent
/// mode, an agent's `release` sets bot mode. `None` for anything else, including these events
/// from another role, and when the mode would not change.
pub fn mode_change(role: SenderRole, payload: &Payload, current: Mode) -> Option<Mode> {
    let wanted = match (role, payload) {
        (SenderRole::Bot, Payload::Event(Event::Handover)) => Mode::Agent,
        (SenderRole::Agent, Payload::Event(Event::Takeover)) => Mode::Agent,
        (SenderRole::Agent, Payload::Event(Event::Release)) => Mode::Bot,
        _ => return None,
    };
    (wanted != current).then_some(wanted)
}

/// Finds the sender of `activity`: `sender.integrationId`, or the conversation's customer
/// integration when absent, with its role.
pub fn resolve_sender<'a>(
    members: &'a [HubMember],
    conversation: &ConversationView,
    activity: &InboundActivity,
) -> Result<(&'a HubMember, SenderRole), RouteError> {
    let id = activity.sender.unwrap_or(conversation.customer_integration);
    let member = members
        .iter()
        .find(|m| m.id == id)
        .ok_or(RouteError::SenderNotInHub(id))?;
    let role = match member.integration_type {
        IntegrationType::Customer if id == conversation.customer_integration => {
            SenderRole::Customer
        }
        IntegrationType::Agent => SenderRole::Agent,
        IntegrationType::Bot => SenderRole::Bot,
        IntegrationType::Customer | IntegrationType::System => {
            return Err(RouteError::SenderNotAllowed(id))
        }
    };
    Ok((member, role))
}

/// Routes an inbound activity in a conversation of a hub (SPEC 5.1, 5.2).
///
/// `members` are all the hub's integrations, paused ones included. Checks, in order: the sender
/// exists in the hub and may send (6000, 206), sender or hub paused (6502), conversation closed
/// (6501), a customer activity without handler (5501).
///
/// A message gets a new `interactionId` in [`Route::activity`].
pub fn route(
    hub: HubStatus,
    members: &[HubMember],
    conversation: &ConversationView,
    activity: &InboundActivity,
) -> Result<Route, RouteError> {
    let (sender, role) = resolve_sender(members, conversation, activity)?;
    if hub == HubStatus::Paused {
        return Err(RouteError::HubPaused);
    }
    if !sender.is_active() {
        return Err(RouteError::SenderPaused(sender.id));
    }
    if !conversation.open {
        return Err(RouteError::ConversationClosed(conversation.id));
    }

    let mut recipients: Vec<Recipient> = Vec::new();
    let mut add = |m: &HubMember, is_echo: bool| {
        let fresh = is_echo || !recipients.iter().any(|r| r.integration_id == m.id);
        if m.is_active() && (is_echo || m.id != sender.id) && fresh {
            recipients.push(Recipient::of(m, conversation, is_echo));
        }
    };

    match role {
        SenderRole::Customer => {
            let handlers = handlers(members, conversation.mode);
            if handlers.is_empty() {
                return Err(RouteError::NoHandler);
            }
            handlers.into_iter().for_each(|m| add(m, false));
        }
        SenderRole::Agent | SenderRole::Bot => {
            if let Some(customer) = members
                .iter()
                .find(|m| m.id == conversation.customer_integration)
            {
                add(customer, false);
            }
        }
    }

    let draft = ActivityDraft::new(
        party(sender, conversation),
        activity.payload.clone(),
        activity.external_id.clone(),
        FlowProcess::Default,
    );
    for m in systems_matching(members, &draft) {
        add(m, false);
    }
    if sender.echo {
        add(sender, true);
    }

    Ok(Route {
        new_mode: mode_change(role, &draft.payload, conversation.mode),
        activity: draft,
        recipients,
    })
}

/// The hub's active System integrations whose filters match the draft's trigger.
fn systems_matching<'a>(
    members: &'a [HubMember],
    draft: &'a ActivityDraft,
) -> impl Iterator<Item = &'a HubMember> + 'a {
    members.iter().filter(move |m| {
        m.integration_type == IntegrationType::System
            && m.is_active()
            && filter::matches(&m.filters, draft.event_trigger)
    })
}

/// The start messages of a new conversation (SPEC 5.3): one AutoReply activity per valid
/// message of the establishing integration's `start` (URL conversion applied), sent as a Bot in
/// the name of that integration (`message:bot`, `tokenId` `{conversationId}.{integrationId}`)
/// to the customer, and to the active System integrations whose filters match `message:bot`.
///
/// Start messages were checked loosely when the configuration was stored; one that is not a
/// valid message now is left out, and its violations come back (paths
/// `configuration.start[i]…`) for the caller to log. Nothing is sent in a paused hub.
pub fn start_routes(
    hub: HubStatus,
    members: &[HubMember],
    conversation: &ConversationView,
    start: Option<&Value>,
) -> (Vec<Route>, Violations) {
    let mut v = Violations::default();
    let Some(establishing) = members
        .iter()
        .find(|m| m.id == conversation.customer_integration)
    else {
        return (Vec::new(), v);
    };
    let messages: Vec<Message> = start
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, m)| {
            crate::activity::validate_message(m, &format!("configuration.start[{i}]"), &mut v)
        })
        .map(Message::convert_url_text)
        .collect();
    if hub == HubStatus::Paused || !establishing.is_active() {
        return (Vec::new(), v);
    }
    let bot = Party::business(
        conversation.id,
        establishing.id,
        IntegrationType::Bot,
        establishing.channel,
    );
    let routes = messages
        .into_iter()
        .map(|m| {
            let draft = ActivityDraft::new(
                bot.clone(),
                Payload::Message(m),
                None,
                FlowProcess::AutoReply,
            );
            let mut recipients = vec![Recipient::of(establishing, conversation, false)];
            recipients.extend(
                systems_matching(members, &draft).map(|s| Recipient::of(s, conversation, false)),
            );
            Route {
                activity: draft,
                recipients,
                new_mode: None,
            }
        })
        .collect();
    (routes, v)
}

/// The `conversation:opened` or `conversation:closed` activity (SPEC 5.4): an event from the
/// conversation's customer integration to the hub's active System integrations whose filters
/// match, and to no one else. No recipients in a paused hub (the activity may still be stored).
pub fn conversation_route(
    hub: HubStatus,
    members: &[HubMember],
    conversation: &ConversationView,
    customer_channel: Channel,
    status: ConversationStatus,
    reason: ConversationReason,
) -> Route {
    let sender = Party::customer(
        conversation.customer_integration,
        customer_channel,
        &conversation.customer_token,
    );
    let draft = ActivityDraft::new(
        sender,
        Payload::Event(Event::Conversation { status, reason }),
        None,
        FlowProcess::Default,
    );
    let recipients = if hub == HubStatus::Paused {
        Vec::new()
    } else {
        systems_matching(members, &draft)
            .map(|s| Recipient::of(s, conversation, false))
            .collect()
    };
    Route {
        activity: draft,
        recipients,
        new_mode: None,
    }
}

#[cfg(test)]
mod tests {
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
            assert_eq!((err.code(), err.status()), (5501, 400));
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
            assert_eq!(to.reach, Reach::Stored);
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
        assert_eq!((err.clone(), err.code()), (RouteError::HubPaused, 6502));
        let members = vec![h.customer.clone(), h.bot.clone(), paused(h.agent.clone())];
        let err = route(
            HubStatus::Active,
            &members,
            &c,
            &message_from(Some(&h.agent)),
        )
        .unwrap_err();
        assert_eq!(
            (err.clone(), err.code()),
            (RouteError::SenderPaused(h.agent.id), 6502)
        );
        let members = vec![paused(h.customer.clone()), h.bot.clone()];
        assert_eq!(
            route(HubStatus::Active, &members, &c, &message_from(None)).unwrap_err(),
            RouteError::SenderPaused(h.customer.id)
        );
        let closed = ConversationView { open: false, ..c };
        let err = route(HubStatus::Active, &h.members, &closed, &message_from(None)).unwrap_err();
        assert_eq!(
            (err.clone(), err.code()),
            (RouteError::ConversationClosed(closed.id), 6501)
        );
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
        assert_eq!(
            (err.clone(), err.code(), err.status()),
            (RouteError::SenderNotInHub(stranger.id), 6000, 404)
        );
        let other_customer = member(IntegrationType::Customer, Channel::Direct);
        let sys = system(&[EventFilter::AnyMessage]);
        let mut members = h.members.clone();
        members.extend([other_customer.clone(), sys.clone()]);
        for s in [&other_customer, &sys] {
            let err = route(HubStatus::Active, &members, &c, &message_from(Some(s))).unwrap_err();
            assert_eq!(
                (err.clone(), err.code()),
                (RouteError::SenderNotAllowed(s.id), 206)
            );
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
        for c in [
            Channel::WebChat,
            Channel::Messenger,
            Channel::TwilioSms,
            Channel::Slack,
        ] {
            assert_eq!(member(IntegrationType::Customer, c).reach(), Reach::Stored);
        }
    }

    #[test]
    fn a_member_is_read_from_a_stored_configuration() {
        let conf =
            json!({ "integrationType": "Agent", "echo": true, "webhookUrl": "https://a.io/h" });
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
    fn expected(case: &Case) -> Result<HashSet<(IntegrationId, bool)>, u32> {
        let Case {
            hub,
            members,
            conversation,
            activity,
        } = case;
        let sender_id = activity.sender.unwrap_or(conversation.customer_integration);
        let Some(sender) = members.iter().find(|m| m.id == sender_id) else {
            return Err(6000);
        };
        let active = |m: &&HubMember| m.status == IntegrationStatus::Active;
        let role = match sender.integration_type {
            IntegrationType::Customer if sender.id == conversation.customer_integration => {
                "customer"
            }
            IntegrationType::Agent => "agent",
            IntegrationType::Bot => "bot",
            _ => return Err(206),
        };
        if *hub == HubStatus::Paused || !active(&sender) {
            return Err(6502);
        }
        if !conversation.open {
            return Err(6501);
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
                return Err(5501);
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
                (Err(e), Err(code)) => prop_assert_eq!(e.code(), code),
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
}
