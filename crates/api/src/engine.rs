//! The engine's service (SPEC 4, 5): what the HTTP routes and the websocket share to accept an
//! activity, establish and close a conversation: load the hub, route with `domain::routing`,
//! store in one transaction, then publish the live copies on the bus.

use std::sync::Arc;

use serde_json::{json, Value};
use switchboard_delivery::live::{activity_frame, LiveMessage};
use switchboard_domain::activity::{ConversationReason, ConversationStatus, InboundActivity};
use switchboard_domain::channel::Channel;
use switchboard_domain::conversation::Conversation;
use switchboard_domain::hub::Hub;
use switchboard_domain::ids::{ConversationId, IntegrationId, TenantId};
use switchboard_domain::integration::Integration;
use switchboard_domain::routing::{self, HubMember, Route, RouteError};
use switchboard_domain::webhook::BodyHead;
use switchboard_storage::{AppendOutcome, Appended, Idempotency};

use crate::error::{ApiError, Code, Resource};
use crate::state::AppState;

/// A hub with all its integrations (paused ones included), as routing needs them.
pub struct HubContext {
    pub hub: Hub,
    pub integrations: Vec<Integration>,
    pub members: Vec<HubMember>,
}

impl HubContext {
    /// The tenant's hub and its integrations, from this node's cache while it is current (see
    /// [`AppState::cached_hub`]), else from the database.
    pub async fn load(
        state: &AppState,
        tenant: TenantId,
        hub: switchboard_domain::ids::HubId,
    ) -> Result<Arc<Self>, ApiError> {
        // Read before loading: a write committed meanwhile makes this load stale at once.
        let generation = state.store.hub_generation();
        if let Some(ctx) = state.cached_hub(tenant, hub, generation) {
            return Ok(ctx);
        }
        let hub = state
            .store
            .get_hub(tenant, hub)
            .await
            .map_err(ApiError::storage(Resource::Hub))?;
        let integrations = state
            .store
            .list_hub_integrations(tenant, hub.id, None)
            .await?;
        let members = integrations
            .iter()
            .map(HubMember::from_integration)
            .collect();
        let ctx = Arc::new(Self {
            hub,
            integrations,
            members,
        });
        state.remember_hub(ctx.clone(), generation);
        Ok(ctx)
    }

    pub fn integration(&self, id: IntegrationId) -> Option<&Integration> {
        self.integrations.iter().find(|i| i.id == id)
    }
}

/// The answer to an accepted activity.
#[derive(Clone, Debug, PartialEq)]
pub struct Accepted {
    pub event_id: i64,
    pub external_id: Option<String>,
    pub hub_id: switchboard_domain::ids::HubId,
    pub conversation_id: ConversationId,
    /// The sender.
    pub integration_id: IntegrationId,
    pub interaction_id: Option<switchboard_domain::ids::InteractionId>,
}

impl Accepted {
    /// The JSON answer of the inbound route (`interactionId` only for messages).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "status": 200,
            "eventId": self.event_id,
            "externalId": self.external_id,
            "hubId": self.hub_id,
            "conversationId": self.conversation_id,
            "integrationId": self.integration_id,
        });
        if let (Some(id), Some(obj)) = (self.interaction_id, v.as_object_mut()) {
            obj.insert("interactionId".to_owned(), json!(id));
        }
        v
    }
}

/// What an accept ended with: a new activity, or the first answer to a repeated request.
pub enum AcceptOutcome {
    Accepted(Accepted),
    /// The stored answer of an earlier request with the same `Idempotency-Key`.
    Replayed(Value),
}

/// Maps a routing refusal to its SPEC code.
pub fn route_error(e: RouteError) -> ApiError {
    let code = match e {
        RouteError::SenderNotInHub(_) => Code::IntegrationNotFound,
        RouteError::SenderNotAllowed(_) => Code::OutOfRange,
        RouteError::SenderPaused(_) | RouteError::HubPaused => Code::Paused,
        RouteError::ConversationClosed(_) => Code::ConversationClosed,
        RouteError::NoHandler => Code::NoHandler,
    };
    ApiError::new(code, e.to_string())
}

fn closed(id: ConversationId) -> ApiError {
    ApiError::new(
        Code::ConversationClosed,
        format!("Conversation '{id}' is closed."),
    )
}

/// Publishes the copies of stored routes whose recipient is a Direct integration on the live
/// bus (its websockets: the live path, or a mirror of its webhook). A failure is logged: the
/// copies are stored, so a client gets them on `resume`.
pub async fn publish(
    state: &AppState,
    conversation: &Conversation,
    routes: &[Route],
    appended: &[Appended],
) {
    let mut messages = Vec::new();
    let queued = routes
        .iter()
        .flat_map(|r| &r.recipients)
        .any(|r| matches!(r.reach, routing::Reach::Webhook { .. }));
    if queued {
        state.deliveries_due.notify_one();
    }
    // The conversation's properties, serialized once for every frame.
    let mut properties: Option<String> = None;
    for (route, stored) in routes.iter().zip(appended) {
        for (recipient, activity) in route.recipients.iter().zip(&stored.activities) {
            if recipient.channel != Channel::Direct {
                continue;
            }
            let props = match &properties {
                Some(p) => p,
                None => properties.insert(json_text(&conversation.properties)),
            };
            let head = BodyHead {
                hub_id: conversation.hub_id,
                tenant_id: conversation.tenant_id,
                integration_id: activity.recipient.integration_id,
                conversation_id: conversation.id,
            };
            let frame = activity_frame(&head, props, &json_text(activity));
            messages.push(LiveMessage::Activity {
                integration_id: recipient.integration_id,
                conversation_id: conversation.id,
                event_id: stored.event_id,
                frame: Arc::from(frame),
            });
        }
    }
    if messages.is_empty() {
        return;
    }
    if let Err(e) = state.bus.publish(messages).await {
        tracing::warn!(error = %e, conversation = %conversation.id, "live publish failed; clients recover with resume");
    }
}

/// Accepts one inbound activity into the tenant's conversation (SPEC 4, 5.1–5.2).
///
/// `acting_as`: the integration a signed request or a websocket speaks for; the activity's
/// sender defaults to it and may not name another (403/101). `idempotency`: the key and the
/// hash of the request.
pub async fn accept(
    state: &AppState,
    tenant: TenantId,
    conversation_id: ConversationId,
    mut inbound: InboundActivity,
    acting_as: Option<IntegrationId>,
    idempotency: Option<Idempotency>,
) -> Result<AcceptOutcome, ApiError> {
    if let Some(me) = acting_as {
        match inbound.sender {
            None => inbound.sender = Some(me),
            Some(s) if s == me => {}
            Some(_) => {
                return Err(ApiError::forbidden(
                    "A signed request or a websocket acts as its own integration only: \
                     'sender.integrationId' names another integration.",
                ))
            }
        }
    }
    let conversation = state
        .store
        .get_conversation(tenant, conversation_id)
        .await
        .map_err(ApiError::storage(Resource::Conversation))?;
    let ctx = HubContext::load(state, tenant, conversation.hub_id).await?;
    let route = routing::route(ctx.hub.status, &ctx.members, &conversation.view(), &inbound)
        .map_err(route_error)?;
    let sender = route.activity.sender.integration_id;
    let template = Accepted {
        event_id: 0,
        external_id: inbound.external_id.clone(),
        hub_id: conversation.hub_id,
        conversation_id,
        integration_id: sender,
        interaction_id: route.activity.interaction_id,
    };
    let respond = |appended: &[Appended]| {
        let mut a = template.clone();
        a.event_id = appended.first().map(|x| x.event_id).unwrap_or_default();
        a.to_json().to_string()
    };
    let routes = [route];
    match state
        .store
        .append_activities(&conversation, &routes, idempotency.as_ref(), &respond)
        .await?
    {
        AppendOutcome::Appended(appended) => {
            publish(state, &conversation, &routes, &appended).await;
            let mut a = template;
            a.event_id = appended.first().map(|x| x.event_id).unwrap_or_default();
            metrics::counter!("switchboard_activities_accepted_total").increment(1);
            Ok(AcceptOutcome::Accepted(a))
        }
        AppendOutcome::Replay {
            request_hash,
            response,
        } => replay(idempotency.as_ref(), &request_hash, &response),
        AppendOutcome::Closed => Err(closed(conversation_id)),
    }
}

/// The answer to a request whose `Idempotency-Key` was used before: the first answer when
/// the request is the same, 409/106 when it is not.
pub fn replay(
    claim: Option<&Idempotency>,
    request_hash: &str,
    response: &str,
) -> Result<AcceptOutcome, ApiError> {
    let same = claim.is_some_and(|c| c.request_hash == request_hash);
    if !same {
        return Err(ApiError::conflict(
            "This Idempotency-Key was already used with another path or body.",
        ));
    }
    serde_json::from_str(response)
        .map(AcceptOutcome::Replayed)
        .map_err(|_| ApiError::internal())
}

/// The `conversation:opened`/`closed` route and, for an opening, the start messages, leaving
/// out routes that reach no one.
pub fn lifecycle_routes(
    ctx: &HubContext,
    conversation: &Conversation,
    status: ConversationStatus,
    reason: ConversationReason,
) -> Vec<Route> {
    let view = conversation.view();
    let customer = ctx.integration(conversation.integration_id);
    let channel = customer.map(|i| i.channel).unwrap_or(Channel::Direct);
    let mut routes = vec![routing::conversation_route(
        ctx.hub.status,
        &ctx.members,
        &view,
        channel,
        status,
        reason,
    )];
    if status == ConversationStatus::Opened {
        let start = customer.and_then(|i| i.configuration.get("start"));
        let (starts, problems) = routing::start_routes(ctx.hub.status, &ctx.members, &view, start);
        if !problems.is_empty() {
            tracing::warn!(conversation = %conversation.id, problems = %problems, "start messages left out");
        }
        routes.extend(starts);
    }
    routes.retain(|r| !r.recipients.is_empty());
    routes
}

/// Closes the tenant's conversation (`reason` api or dormant) and tells the System
/// integrations. With `idle_since`, only if it is still idle since then.
pub async fn close(
    state: &AppState,
    tenant: TenantId,
    id: ConversationId,
    reason: ConversationReason,
    idle_since: Option<i64>,
) -> Result<Conversation, ApiError> {
    let conversation = state
        .store
        .get_conversation(tenant, id)
        .await
        .map_err(ApiError::storage(Resource::Conversation))?;
    let ctx = HubContext::load(state, tenant, conversation.hub_id).await?;
    let closed = state
        .store
        .close_conversation(tenant, id, reason, idle_since, |c| {
            lifecycle_routes(&ctx, c, ConversationStatus::Closed, reason)
        })
        .await
        .map_err(ApiError::storage(Resource::Conversation))?;
    if closed.closed_now {
        publish(
            state,
            &closed.conversation,
            &closed.routes,
            &closed.appended,
        )
        .await;
    }
    Ok(closed.conversation)
}

/// Closes the websockets of these integrations on every node with 4403 (deleted or paused).
pub async fn revoke(state: &AppState, integrations: &[IntegrationId], why: &str) {
    let messages: Vec<LiveMessage> = integrations
        .iter()
        .map(|id| LiveMessage::Close {
            integration_id: *id,
            code: 4403,
            reason: why.to_owned(),
        })
        .collect();
    if messages.is_empty() {
        return;
    }
    if let Err(e) = state.bus.publish(messages).await {
        tracing::warn!(error = %e, "could not close the websockets of revoked integrations");
    }
}

/// The ids of the tenant's hub's integrations (empty when none or not the tenant's).
pub async fn hub_integration_ids(
    state: &AppState,
    tenant: TenantId,
    hub: switchboard_domain::ids::HubId,
) -> Vec<IntegrationId> {
    state
        .store
        .list_hub_integrations(tenant, hub, None)
        .await
        .map(|list| list.into_iter().map(|i| i.id).collect())
        .unwrap_or_default()
}

/// The JSON text of a value that always serializes (maps with string keys, activities).
fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a live frame could not be serialized");
        "null".to_owned()
    })
}
