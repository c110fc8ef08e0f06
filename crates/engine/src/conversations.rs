//! Establishing and closing a conversation (SPEC 4), and the dormancy sweep: each stores the
//! conversation's change with its lifecycle routes (`conversation:opened` and the start
//! messages, or `conversation:closed`) in one transaction, then publishes their live copies.
//!
//! Routing is decided before the write, by [`lifecycle_routes`] (a pure function of the hub
//! loaded first): an establish builds the conversation it would open and its routes, and
//! storage stores both unless the binding has a conversation open (then the routes are
//! dropped); a close reads the conversation and builds its routes for it closed, and storage
//! closes it only if it is still as it was read. When it was not (its properties or mode
//! changed meanwhile), the close reads it again and builds its routes again, a few times.

use switchboard_domain::activity::{ConversationReason, ConversationStatus};
use switchboard_domain::channel::{Channel, IntegrationType};
use switchboard_domain::conversation::{
    self, dormant_before, Conversation, ConversationState, Establish,
};
use switchboard_domain::hub::HubStatus;
use switchboard_domain::ids::{ConversationId, TenantId};
use switchboard_domain::integration::{Integration, IntegrationStatus};
use switchboard_domain::routing::{self, Route};
use switchboard_domain::time::{now_millis, Millis};
use switchboard_domain::Violations;
use switchboard_storage::{CloseOutcome, Closing, NewConversation};

use crate::error::{or_missing, Error};
use crate::hubs::HubContext;
use crate::Engine;

/// How many times a close is tried again when its conversation changed between the read and
/// the write.
const CLOSE_RETRIES: usize = 3;

/// The conversation of an establish.
#[derive(Clone, Debug, PartialEq)]
pub struct Established {
    pub conversation: Conversation,
    /// True when this call opened it.
    pub is_new: bool,
}

/// [`Error::HubPaused`] or [`Error::IntegrationPaused`] when the integration or its hub is
/// paused (the hub first).
pub fn check_active(integration: &Integration, hub: HubStatus) -> Result<(), Error> {
    if hub == HubStatus::Paused {
        return Err(Error::HubPaused);
    }
    if integration.status == IntegrationStatus::Paused {
        return Err(Error::IntegrationPaused(integration.id));
    }
    Ok(())
}

/// The `conversation:opened`/`closed` route and, for an opening, the start messages of the
/// customer integration's configuration, leaving out routes that reach no one. Start messages
/// that are not valid messages are left out and logged.
pub fn lifecycle_routes(
    ctx: &HubContext,
    conversation: &Conversation,
    status: ConversationStatus,
    reason: ConversationReason,
) -> Vec<Route> {
    let (routes, problems) = routes_and_problems(ctx, conversation, status, reason);
    log_left_out(conversation, &problems);
    routes
}

/// [`lifecycle_routes`], with the violations of the start messages left out, unlogged.
fn routes_and_problems(
    ctx: &HubContext,
    conversation: &Conversation,
    status: ConversationStatus,
    reason: ConversationReason,
) -> (Vec<Route>, Violations) {
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
    let mut problems = Violations::default();
    if status == ConversationStatus::Opened {
        let start = customer.and_then(|i| i.configuration.get("start"));
        let starts;
        (starts, problems) = routing::start_routes(ctx.hub.status, &ctx.members, &view, start);
        routes.extend(starts);
    }
    routes.retain(|r| !r.recipients.is_empty());
    (routes, problems)
}

fn log_left_out(conversation: &Conversation, problems: &Violations) {
    if !problems.is_empty() {
        tracing::warn!(conversation = %conversation.id, problems = %problems, "start messages left out");
    }
}

impl Engine {
    /// The open conversation of the customer `binding` on a Customer integration of the
    /// tenant, with the given properties merged in, or a new one (SPEC 4): a new conversation
    /// is stored with its `conversation:opened` event and start messages, then published.
    pub async fn establish(
        &self,
        tenant: TenantId,
        request: Establish,
    ) -> Result<Established, Error> {
        let integration = self
            .store()
            .get_integration(tenant, request.integration_id)
            .await
            .map_err(or_missing(Error::IntegrationNotFound(
                request.integration_id,
            )))?;
        if integration.integration_type != IntegrationType::Customer {
            return Err(Error::NotCustomer {
                integration: integration.id,
                integration_type: integration.integration_type,
            });
        }
        let ctx = self.hub(tenant, integration.hub_id).await?;
        check_active(&integration, ctx.hub.status)?;
        // The conversation this establish opens if the binding has none open, and its routes.
        let now = now_millis();
        let opening = Conversation {
            id: ConversationId::new(),
            tenant_id: tenant,
            hub_id: integration.hub_id,
            integration_id: integration.id,
            binding: request.binding,
            token_id: conversation::new_token_id(),
            mode: routing::initial_mode(&ctx.members),
            state: ConversationState::Open,
            properties: conversation::initial_properties(&request.properties, integration.channel),
            opened: now,
            closed: None,
            last_activity: now,
        };
        let (routes, problems) = routes_and_problems(
            &ctx,
            &opening,
            ConversationStatus::Opened,
            ConversationReason::Establish,
        );
        let new = NewConversation {
            conversation: opening,
            routes,
        };
        let est = self
            .store()
            .establish_conversation(&new, &request.properties)
            .await
            .map_err(or_missing(Error::IntegrationNotFound(integration.id)))?;
        if est.is_new {
            log_left_out(&est.conversation, &problems);
            self.publish(&est.conversation, &est.routes, &est.appended)
                .await;
        }
        Ok(Established {
            conversation: est.conversation,
            is_new: est.is_new,
        })
    }

    /// Closes the tenant's conversation (`reason` api or dormant) and tells the System
    /// integrations. With `idle_since`, only if its last activity is still at or before then
    /// (an activity that came in meanwhile keeps it open). A closed conversation is answered
    /// as it is.
    ///
    /// The conversation is read and its `conversation:closed` routes built before the write;
    /// if it changed in between (say, an establish merged properties into it), it is read
    /// again, up to [`CLOSE_RETRIES`] more times.
    pub async fn close(
        &self,
        tenant: TenantId,
        id: ConversationId,
        reason: ConversationReason,
        idle_since: Option<Millis>,
    ) -> Result<Conversation, Error> {
        let missing = || Error::ConversationNotFound(id);
        for _ in 0..=CLOSE_RETRIES {
            let read = self
                .store()
                .get_conversation(tenant, id)
                .await
                .map_err(or_missing(missing()))?;
            if !read.is_open() {
                // Closed for good: nothing to write.
                return Ok(read);
            }
            let ctx = self.hub(tenant, read.hub_id).await?;
            let webchat = ctx
                .integration(read.integration_id)
                .is_some_and(|i| i.channel == Channel::WebChat);
            let at = now_millis();
            let closed = Conversation {
                state: ConversationState::Closed,
                closed: Some(at),
                ..read.clone()
            };
            let routes = lifecycle_routes(&ctx, &closed, ConversationStatus::Closed, reason);
            let closing = Closing {
                read,
                reason,
                at,
                idle_since,
                routes,
            };
            match self
                .store()
                .close_conversation(&closing)
                .await
                .map_err(or_missing(missing()))?
            {
                CloseOutcome::Done(closed) => {
                    if closed.closed_now {
                        self.publish(&closed.conversation, &closed.routes, &closed.appended)
                            .await;
                        if webchat {
                            self.close_conversation_sockets(&closed.conversation).await;
                        }
                    }
                    return Ok(closed.conversation);
                }
                CloseOutcome::Changed => continue,
            }
        }
        Err(Error::Storage(switchboard_storage::Error::Db(format!(
            "conversation {id} changed under every try to close it"
        ))))
    }

    /// Closes (reason `dormant`) at most `limit` open conversations, of any tenant, idle for
    /// their hub's `closeDormantConversation` days at `now`, longest idle first; the next call
    /// takes the rest. Closing is conditional on the conversation still being idle, so two
    /// nodes sweeping at once never close one twice. A conversation that fails to close is
    /// logged and left for the next sweep. Answers how many were looked at.
    pub async fn close_dormant(&self, now: Millis, limit: u64) -> Result<usize, Error> {
        let list = self.store().dormant_conversations(now, limit).await?;
        let found = list.len();
        for c in list {
            let Some(hub) = self
                .store()
                .find_hub(c.tenant_id, c.hub_id)
                .await
                .ok()
                .flatten()
            else {
                continue;
            };
            let Some(idle_since) = dormant_before(hub.close_dormant_conversation, now) else {
                continue;
            };
            if let Err(e) = self
                .close(
                    c.tenant_id,
                    c.id,
                    ConversationReason::Dormant,
                    Some(idle_since),
                )
                .await
            {
                tracing::warn!(conversation = %c.id, error = ?e, "closing a dormant conversation failed");
            }
        }
        Ok(found)
    }

    /// Forgets idempotency keys older than 24 hours and used signatures past their window.
    pub async fn forget_expired(&self, now: Millis) -> Result<(), Error> {
        Ok(self.store().sweep_expired(now).await?)
    }
}
