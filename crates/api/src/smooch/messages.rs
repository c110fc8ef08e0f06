//! SPEC 8.9: an app user's messages. `POST` sends one through the engine like `POST /inbound`
//! (routed, stored, delivered by the channel adapter): as `appMaker` from *Smooch API business*
//! into the open conversation (established if none), as `appUser` from the app user's own
//! integration. `GET` pages the messages of all its conversations by `received`.

use serde_json::{json, Value};
use switchboard_domain::activity::{Activity, InboundActivity, Payload};
use switchboard_domain::channel::adapter::percent_encode;
use switchboard_domain::conversation::{Conversation, Establish};
use switchboard_domain::ids::IntegrationId;
use switchboard_domain::smooch::appuser::establish_properties;
use switchboard_domain::smooch::message::{
    self, messages_from, outgoing, outgoing_activity, seconds_text, Envelope, MessagesFrom, Role,
};
use switchboard_engine::AcceptOutcome;
use switchboard_storage::{MessageCursor, StoredMessage};

use super::appusers::{no_conversation, Found};
use super::{compat_integrations, created, forbidden, ok, Answer, Ctx, Scope, Version};
use crate::error::ApiError;

/// Most messages one answer holds.
const MAX_MESSAGES: usize = 100;

/// A page of getMessages: the messages, and the cursors of the pages beside it.
pub struct MessagesPage {
    pub messages: Vec<Value>,
    /// The first message's `eventId`, when older messages exist.
    pub previous: Option<i64>,
    /// The last message's `eventId`, when newer messages exist.
    pub next: Option<i64>,
}

/// The latest messages (neither `before` nor `after`).
pub const fn latest() -> MessagesFrom {
    MessagesFrom::Before(i64::MAX)
}

/// `POST …/appusers/{id}/messages`.
pub async fn post(ctx: &mut Ctx<'_>, found: Found, _id: &str) -> Answer {
    // Scope before body (8.1): an appUser token never speaks as the business.
    let user_scope = matches!(ctx.caller.scope, Scope::AppUser { .. });
    if user_scope && ctx.body.get("role").and_then(Value::as_str) == Some("appMaker") {
        return Err(forbidden());
    }
    ctx.fields(message::MESSAGE_FIELDS, message::MESSAGE_IGNORED)?;
    let incoming = message::incoming(&ctx.body)?;
    let tenant = found.hub.tenant_id;
    let engine = &ctx.state.engine;
    let establish = || Establish {
        integration_id: found.user.integration_id,
        binding: found.user.binding.clone(),
        properties: establish_properties(&found.user),
    };
    // *Smooch API business* is the hub's handler as well as the appMaker's sender.
    let (_, business) = compat_integrations(ctx.state, &found.hub).await?;
    let (conversation, sender): (Conversation, Option<IntegrationId>) = match incoming.role {
        Role::AppMaker => {
            let open = found
                .conversations
                .iter()
                .rev()
                .find(|c| c.is_open())
                .cloned();
            let conversation = match open {
                Some(c) => c,
                None => engine.establish(tenant, establish()).await?.conversation,
            };
            (conversation, Some(business))
        }
        Role::AppUser => (
            engine.establish(tenant, establish()).await?.conversation,
            None,
        ),
    };
    let inbound = InboundActivity {
        external_id: None,
        sender,
        payload: Payload::Message(incoming.message.clone()),
    };
    let accepted = match engine
        .accept(tenant, conversation.id, inbound, None, None)
        .await?
    {
        AcceptOutcome::Accepted(a) => a,
        AcceptOutcome::Replayed(_) => return Err(ApiError::internal()),
    };
    let interaction = accepted
        .interaction_id
        .map(|i| i.to_string())
        .unwrap_or_default();
    let user_id = found.user.id.to_string();
    let sender_id = accepted.integration_id.to_string();
    let names = Names::load(ctx, &found).await;
    let (author_id, name, source_type) = match incoming.role {
        Role::AppUser => (
            user_id.as_str(),
            names.customer(&found, &conversation),
            found.platform,
        ),
        Role::AppMaker => (
            sender_id.as_str(),
            names.integration(accepted.integration_id),
            "api",
        ),
    };
    let message = outgoing(
        &incoming.message,
        &Envelope {
            id: &interaction,
            role: incoming.role,
            author_id,
            name: name.as_deref(),
            event_id: accepted.event_id,
            source_type,
        },
    );
    created(json!({
        "message": message,
        "conversation": { "_id": conversation.id.to_string(), "unreadCount": 0 },
    }))
}

/// `GET …/appusers/{id}/messages?before|after`.
pub async fn list(ctx: &mut Ctx<'_>, found: Found, id: &str) -> Answer {
    let conversation = found.conversation_json()?;
    let from = messages_from(ctx.param("before"), ctx.param("after"))?;
    let page = page(ctx, &found, from).await?;
    let url = |key: &str, event_id: i64| {
        let prefix = match ctx.version {
            Version::V1 => "/v1",
            Version::V1_1 => "/v1.1",
        };
        format!(
            "{}{prefix}/apps/{}/appusers/{}/messages?{key}={}",
            ctx.base_url,
            found.hub.id,
            percent_encode(id),
            seconds_text(event_id)
        )
    };
    let mut answer = json!({ "conversation": conversation, "messages": page.messages });
    if let Some(first) = page.previous {
        answer["previous"] = json!(url("before", first));
    }
    if let Some(last) = page.next {
        answer["next"] = json!(url("after", last));
    }
    ok(answer)
}

/// The messages of the app user's conversations from `from`, at most 100, oldest first, and
/// whether older and newer ones exist. 404 without any conversation.
pub async fn page(
    ctx: &Ctx<'_>,
    found: &Found,
    from: MessagesFrom,
) -> Result<MessagesPage, ApiError> {
    if found.conversations.is_empty() {
        return Err(no_conversation());
    }
    let store = &ctx.state.store;
    let tenant = found.hub.tenant_id;
    let ids: Vec<_> = found.conversations.iter().map(|c| c.id).collect();
    let cursor = match from {
        MessagesFrom::Before(ms) => MessageCursor::Before(ms),
        MessagesFrom::After(ms) => MessageCursor::After(ms),
    };
    let rows = store
        .conversation_messages(tenant, &ids, cursor, MAX_MESSAGES)
        .await?;
    let (mut previous, mut next) = (None, None);
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        let older = store
            .conversation_messages(tenant, &ids, MessageCursor::Before(first.event_id), 1)
            .await?;
        if !older.is_empty() {
            previous = Some(first.event_id);
        }
        let newer = store
            .conversation_messages(tenant, &ids, MessageCursor::After(last.event_id), 1)
            .await?;
        if !newer.is_empty() {
            next = Some(last.event_id);
        }
    }
    let names = Names::load(ctx, found).await;
    let messages = rows
        .iter()
        .filter_map(|row| render(found, &names, row))
        .collect();
    Ok(MessagesPage {
        messages,
        previous,
        next,
    })
}

/// One stored message as 8.9's `message`; `None` for a copy that cannot be read (logged).
fn render(found: &Found, names: &Names, row: &StoredMessage) -> Option<Value> {
    let activity: Activity = match serde_json::from_str(&row.body) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, event_id = row.event_id, "stored activity unreadable");
            return None;
        }
    };
    let name = match message::Role::of(activity.sender.integration_type) {
        Role::AppUser => {
            let conversation = found
                .conversations
                .iter()
                .find(|c| c.id == row.conversation_id)?;
            names.customer(found, conversation)
        }
        Role::AppMaker => names.integration(activity.sender.integration_id),
    };
    outgoing_activity(&activity, &found.user.id.to_string(), name.as_deref())
}

/// The names of the hub's integrations, for `appMaker` messages.
struct Names(Vec<(IntegrationId, String)>);

impl Names {
    async fn load(ctx: &Ctx<'_>, found: &Found) -> Self {
        match ctx
            .state
            .engine
            .hub(found.hub.tenant_id, found.hub.id)
            .await
        {
            Ok(hub) => Self(
                hub.integrations
                    .iter()
                    .map(|i| (i.id, i.name.clone()))
                    .collect(),
            ),
            Err(_) => Self(Vec::new()),
        }
    }

    fn integration(&self, id: IntegrationId) -> Option<String> {
        self.0
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.clone())
    }

    /// The app user's given name and surname, else the conversation's `profile."full name"`.
    fn customer(&self, found: &Found, conversation: &Conversation) -> Option<String> {
        found.user.display_name().or_else(|| {
            conversation
                .properties
                .get("profile")
                .and_then(|p| p.get("full name"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    }
}
