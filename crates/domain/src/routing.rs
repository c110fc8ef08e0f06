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
//! 3. every active System integration whose filters match gets it too, once (a smooch-format
//!    one: when one of its triggers covers the activity, SPEC 8.7);
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
use crate::smooch::webhook::{self as smooch, Trigger};
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
    /// `triggers` of a System integration of format `smooch` (SPEC 8.7), which decide instead
    /// of `filters`; `None` for any other.
    pub smooch_triggers: Option<Vec<Trigger>>,
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
        let system = integration_type == IntegrationType::System;
        let filters = if system {
            filter::stored_filters(configuration.get("events"))
        } else {
            Vec::new()
        };
        let smooch_triggers = system
            .then(|| smooch::configured_triggers(configuration))
            .flatten();
        Self {
            id,
            integration_type,
            channel,
            status,
            echo,
            webhook_url,
            filters,
            smooch_triggers,
        }
    }

    /// Whether this System integration subscribes to `draft`: a smooch-format one when one of
    /// its triggers covers what the activity fires, any other when one of its filters matches.
    pub fn subscribes(&self, draft: &ActivityDraft) -> bool {
        match &self.smooch_triggers {
            Some(triggers) => {
                smooch::matching(triggers, draft.event_trigger, &draft.payload).is_some()
            }
            None => filter::matches(&self.filters, draft.event_trigger),
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
            // The widget's sockets (SPEC 7.18.3): live only, `resume` replays from the store.
            (Channel::WebChat, _) => Reach::Live,
            (channel, _) if crate::channel::adapter::adapter(channel).is_some() => Reach::Provider,
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
    /// The live bus to the integration's websockets (and `resume`): Direct without `webhookUrl`,
    /// and WebChat (the widget's sockets of the conversation).
    Live,
    /// Through the outbox to the channel's adapter (SPEC 7.4): the provider channels that have
    /// one (TwilioSMS, Messenger, WhatsApp, Telegram).
    Provider,
    /// Stored only, readable back: the channels without an adapter yet (Slack, …).
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

/// Why an activity cannot be routed; nothing is stored for any of them. Its SPEC 1 code and
/// status are the API's to decide.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// `sender.integrationId` names no integration of the conversation's hub.
    #[error("Integration '{0}' does not exist.")]
    SenderNotInHub(IntegrationId),
    /// `sender.integrationId` names an integration of the tenant in another hub than the
    /// conversation's: it exists, but only the conversation's hub's integrations send to it. The
    /// domain sees one hub only: the engine turns [`Self::SenderNotInHub`] into this one when the
    /// integration exists elsewhere.
    #[error("Integration '{0}' belongs to another hub: the sender must be an integration of the conversation's hub.")]
    SenderInAnotherHub(IntegrationId),
    /// The named sender is a Customer integration other than the conversation's, or a System
    /// integration; only the conversation's customer, Agents and Bots send.
    #[error("Integration '{0}' cannot send to this conversation: only its customer integration or an Agent or Bot integration of its hub can.")]
    SenderNotAllowed(IntegrationId),
    /// The sender is paused (3002).
    #[error("Integration '{0}' is paused.")]
    SenderPaused(IntegrationId),
    /// The hub is paused (2002).
    #[error("The hub is paused.")]
    HubPaused,
    /// The conversation is closed.
    #[error("Conversation '{0}' is closed.")]
    ConversationClosed(ConversationId),
    /// A customer activity and no active Agent or Bot integration to handle it.
    #[error("The hub has no active Agent or Bot integration to receive customer activities.")]
    NoHandler,
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
/// exists in the hub and may send (`SenderNotInHub`, `SenderNotAllowed`), the hub or the sender
/// paused (`HubPaused`, `SenderPaused`), the conversation closed (`ConversationClosed`), a customer
/// activity without a handler (`NoHandler`). Their SPEC 1 codes are decided in the API.
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

/// The hub's active System integrations that subscribe to the draft: their filters match its
/// trigger, or (format `smooch`) one of their webhook triggers covers it.
fn systems_matching<'a>(
    members: &'a [HubMember],
    draft: &'a ActivityDraft,
) -> impl Iterator<Item = &'a HubMember> + 'a {
    members.iter().filter(move |m| {
        m.integration_type == IntegrationType::System && m.is_active() && m.subscribes(draft)
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
mod tests;
