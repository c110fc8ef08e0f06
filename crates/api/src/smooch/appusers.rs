//! SPEC 8.8: app users and their conversation. An app user is one customer (a Customer
//! integration and a binding): made here on the hub's *Smooch API users* integration, or by
//! storage for any other customer when SPEC 8 first needs it. Its Smooch conversation is all
//! the Switchboard conversations of the pair; the open one, else the latest, gives the `_id`.
//! Messages (8.9) are in [`super::messages`].

use poem::http::Method;
use serde_json::{json, Value};
use switchboard_domain::activity::{Event, InboundActivity, Payload};
use switchboard_domain::conversation::Conversation;
use switchboard_domain::hub::Hub;
use switchboard_domain::smooch::appuser::{
    self, app_user_json, channel_json, AppUser, AppUserView,
};
use switchboard_domain::smooch::message::smooch_type;
use switchboard_domain::Violation;

use super::{compat_integrations, created, forbidden, messages, no_route, ok, Answer, Ctx, Scope};
use crate::error::{ApiError, Code};

/// The routes after `…/appusers`.
pub async fn route(ctx: &mut Ctx<'_>, hub: Hub, rest: &[&str]) -> Answer {
    let user_scope = matches!(ctx.caller.scope, Scope::AppUser { .. });
    let method = ctx.method.clone();
    match (method, rest) {
        (Method::POST, []) => {
            if user_scope {
                return Err(forbidden());
            }
            create(ctx, hub).await
        }
        (Method::GET, [id]) => {
            let found = find(ctx, hub, id).await?;
            ok(json!({ "appUser": found.json() }))
        }
        (Method::PUT, [id]) => update(ctx, hub, id).await,
        (Method::GET, [id, "channels"]) => {
            if user_scope {
                return Err(forbidden());
            }
            let found = find(ctx, hub, id).await?;
            ok(json!({ "channels": [ channel_json(&found.user, found.platform) ] }))
        }
        (Method::GET, [id, "conversation"]) => {
            let found = find(ctx, hub, id).await?;
            let conversation = found.conversation_json()?;
            let page = messages::page(ctx, &found, messages::latest()).await?;
            ok(json!({ "conversation": conversation, "messages": page.messages }))
        }
        (Method::POST, [id, "conversation", "read"]) => {
            let found = find(ctx, hub, id).await?;
            let conversation = found.conversation_json()?;
            ctx.fields(&[], &[])?;
            ok(json!({ "conversation": conversation }))
        }
        (Method::POST, [id, "conversation", "activity"]) => {
            if user_scope {
                return Err(forbidden());
            }
            activity(ctx, hub, id).await
        }
        (Method::POST, [id, "messages"]) => {
            let found = find(ctx, hub, id).await?;
            messages::post(ctx, found, id).await
        }
        (Method::GET, [id, "messages"]) => {
            let found = find(ctx, hub, id).await?;
            messages::list(ctx, found, id).await
        }
        _ => Err(no_route()),
    }
}

/// An app user of an app, with its integration's Smooch type and its conversations.
pub struct Found {
    pub hub: Hub,
    pub user: AppUser,
    /// The Smooch type of its integration (`api` for Direct).
    pub platform: &'static str,
    /// Its conversations, oldest first.
    pub conversations: Vec<Conversation>,
}

impl Found {
    /// The Smooch `conversation`: the open one, else the latest; `None` without any.
    pub fn conversation(&self) -> Option<&Conversation> {
        self.conversations
            .iter()
            .rev()
            .find(|c| c.is_open())
            .or_else(|| self.conversations.last())
    }

    /// `{ _id, unreadCount: 0 }`, or 404 without any conversation.
    pub fn conversation_json(&self) -> Result<Value, ApiError> {
        let c = self.conversation().ok_or_else(no_conversation)?;
        Ok(json!({ "_id": c.id.to_string(), "unreadCount": 0 }))
    }

    /// 8.8's `appUser`.
    pub fn json(&self) -> Value {
        let last_activity = self.conversations.iter().map(|c| c.last_activity).max();
        app_user_json(
            &self.user,
            &AppUserView {
                platform: self.platform,
                conversation_started: !self.conversations.is_empty(),
                last_activity,
            },
        )
    }
}

/// 404 for the conversation routes of an app user without any conversation.
pub fn no_conversation() -> ApiError {
    ApiError::new(
        Code::ConversationNotFound,
        "The app user has no conversation.",
    )
}

/// The app user `id` (an `_id`, else a `userId`) of the app, as the caller may reach it: an
/// `appUser` token only its own (403 for any other id, whether it names one or not).
pub async fn find(ctx: &Ctx<'_>, hub: Hub, id: &str) -> Result<Found, ApiError> {
    let store = &ctx.state.store;
    let user = store.find_app_user(hub.tenant_id, hub.id, id).await?;
    if let Scope::AppUser { user_id, .. } = &ctx.caller.scope {
        if user.as_ref().and_then(|u| u.user_id.as_deref()) != Some(user_id.as_str()) {
            return Err(ApiError::forbidden(
                "An appUser token reaches only its own app user.",
            ));
        }
    }
    let user = user.ok_or_else(|| ApiError::not_found("app user"))?;
    let integration = store
        .get_integration(hub.tenant_id, user.integration_id)
        .await
        .map_err(ApiError::storage(crate::error::Resource::Integration))?;
    let conversations = store
        .binding_conversations(hub.tenant_id, user.integration_id, &user.binding)
        .await?;
    Ok(Found {
        hub,
        user,
        platform: smooch_type(integration.channel),
        conversations,
    })
}

/// `POST …/appusers`: a customer of *Smooch API users* whose binding is the `userId`.
async fn create(ctx: &mut Ctx<'_>, hub: Hub) -> Answer {
    ctx.fields(appuser::CREATE_FIELDS, appuser::IGNORED_FIELDS)?;
    let new = appuser::validate_create(&ctx.body)?;
    let (users, _) = compat_integrations(ctx.state, &hub).await?;
    let user = ctx
        .state
        .store
        .create_app_user(
            hub.tenant_id,
            hub.id,
            users,
            &new.user_id,
            Some(&new.user_id),
            &new.fields,
        )
        .await
        .map_err(|e| match e {
            switchboard_storage::Error::Conflict => ApiError::conflict(&format!(
                "An app user with userId '{}' already exists.",
                new.user_id
            )),
            other => other.into(),
        })?;
    let found = Found {
        hub,
        user,
        platform: smooch_type(switchboard_domain::channel::Channel::Direct),
        conversations: Vec::new(),
    };
    created(json!({ "appUser": found.json() }))
}

/// `PUT …/appusers/{id}`: given fields replace, `properties` merge by key.
async fn update(ctx: &mut Ctx<'_>, hub: Hub, id: &str) -> Answer {
    let mut found = find(ctx, hub, id).await?;
    ctx.fields(appuser::UPDATE_FIELDS, appuser::IGNORED_FIELDS)?;
    let update = appuser::validate_update(&ctx.body)?;
    let fields = found.user.updated(update)?;
    found.user = ctx
        .state
        .store
        .update_app_user(&found.user, &fields)
        .await
        .map_err(|e| match e {
            switchboard_storage::Error::NotFound => ApiError::not_found("app user"),
            other => other.into(),
        })?;
    ok(json!({ "appUser": found.json() }))
}

/// `POST …/conversation/activity`: *Smooch API business* sends `typing_on`, `typing_off` or
/// `seen` into the open conversation.
async fn activity(ctx: &mut Ctx<'_>, hub: Hub, id: &str) -> Answer {
    let found = find(ctx, hub, id).await?;
    let conversation = found.conversation_json()?;
    ctx.fields(&["role", "type"], &["name", "avatarUrl"])?;
    let mut v = switchboard_domain::Violations::default();
    match switchboard_domain::json::string(&ctx.body, "", "role", true, &mut v).as_deref() {
        Some("appMaker") | None => {}
        Some(other) => v.push(Violation::out_of_range(
            "role",
            &format!("must be 'appMaker', not '{other}'"),
        )),
    }
    let event =
        match switchboard_domain::json::string(&ctx.body, "", "type", true, &mut v).as_deref() {
            Some("typing:start") => Some(Event::TypingOn),
            Some("typing:stop") => Some(Event::TypingOff),
            Some("conversation:read") => Some(Event::Seen),
            Some(other) => {
                v.push(Violation::out_of_range(
                    "type",
                    &format!(
                    "must be 'typing:start', 'typing:stop' or 'conversation:read', not '{other}'"
                ),
                ));
                None
            }
            None => None,
        };
    let event = v.into_result(event)?.ok_or_else(ApiError::internal)?;
    let Some(open) = found.conversations.iter().rev().find(|c| c.is_open()) else {
        return Err(ApiError::new(
            Code::ConversationClosed,
            "The app user has no open conversation.",
        ));
    };
    let (_, business) = compat_integrations(ctx.state, &found.hub).await?;
    let inbound = InboundActivity {
        external_id: None,
        sender: Some(business),
        payload: Payload::Event(event),
    };
    ctx.state
        .engine
        .accept(found.hub.tenant_id, open.id, inbound, None, None)
        .await?;
    ok(json!({ "conversation": conversation }))
}
