//! Accepting one activity into a conversation (SPEC 4, 5.1–5.2): the sender is checked against
//! the caller, routing is decided from the conversation and its hub *before* the write, the
//! copies and their outbox rows are stored in one transaction (with the `Idempotency-Key` claim
//! when there is one), and only then are the live copies published.
//!
//! The answer is an [`Accepted`]; how it is written (the inbound route's JSON, a websocket
//! `ack`, a provider's reply) is the caller's business. For a keyed request the caller supplies
//! the text stored with the key ([`Keyed::respond`]) and gets that text back on a replay.

use switchboard_domain::activity::InboundActivity;
use switchboard_domain::ids::{ConversationId, HubId, IntegrationId, InteractionId, TenantId};
use switchboard_domain::routing::{self, RouteError};
use switchboard_domain::time::now_millis;
use switchboard_storage::{AppendOutcome, Appended, Idempotency};

use crate::error::{or_missing, Error};
use crate::Engine;

/// An activity stored and its deliveries queued.
#[derive(Clone, Debug, PartialEq)]
pub struct Accepted {
    /// The `eventId` of its copies.
    pub event_id: i64,
    /// The caller's own id of the activity, echoed back.
    pub external_id: Option<String>,
    pub hub_id: HubId,
    pub conversation_id: ConversationId,
    /// The sender.
    pub integration_id: IntegrationId,
    /// Messages only.
    pub interaction_id: Option<InteractionId>,
}

/// What an accept ended with: a new activity, or the first answer to a repeated request.
#[derive(Clone, Debug, PartialEq)]
pub enum AcceptOutcome {
    Accepted(Accepted),
    /// The text stored with the `Idempotency-Key` by the first request (its
    /// [`Keyed::respond`]); nothing new was stored.
    Replayed(String),
}

/// An `Idempotency-Key` claimed by an accept, with the answer to keep for it.
pub struct Keyed<'a> {
    /// The key and the hash of the request it came with.
    pub claim: Idempotency,
    /// The text stored with the key, made from the accepted activity inside the write
    /// transaction; a repeated request gets it back as [`AcceptOutcome::Replayed`].
    pub respond: &'a (dyn Fn(&Accepted) -> String + Sync),
}

impl Engine {
    /// The answer stored for the tenant's `claim.key` within the last 24 hours, when there is
    /// one: `Ok(Some(text))` for the same request, [`Error::IdempotencyKeyReused`] for another
    /// path or body. Callers check this before validating the request, so a reused key answers
    /// the same whatever the new body holds.
    pub async fn replay(
        &self,
        tenant: TenantId,
        claim: &Idempotency,
    ) -> Result<Option<String>, Error> {
        match self
            .store()
            .find_idempotency(tenant, &claim.key, now_millis())
            .await?
        {
            Some((hash, response)) => replayed(claim, &hash, response).map(Some),
            None => Ok(None),
        }
    }

    /// Accepts one inbound activity into the tenant's conversation (SPEC 4, 5.1–5.2).
    ///
    /// `acting_as`: the integration a signed request or a websocket speaks for; the activity's
    /// sender defaults to it and may not name another ([`Error::ForeignSender`]). Routing
    /// runs before the write; the conversation must still be open when the copies are stored
    /// ([`Error::ConversationClosed`] otherwise). With `keyed`, the key is claimed in the same
    /// transaction; a key that a concurrent request committed first answers its stored text.
    pub async fn accept(
        &self,
        tenant: TenantId,
        conversation_id: ConversationId,
        mut inbound: InboundActivity,
        acting_as: Option<IntegrationId>,
        keyed: Option<Keyed<'_>>,
    ) -> Result<AcceptOutcome, Error> {
        if let Some(me) = acting_as {
            match inbound.sender {
                None => inbound.sender = Some(me),
                Some(s) if s == me => {}
                Some(_) => return Err(Error::ForeignSender),
            }
        }
        let conversation = self
            .store()
            .get_conversation(tenant, conversation_id)
            .await
            .map_err(or_missing(Error::ConversationNotFound(conversation_id)))?;
        self.accept_into(conversation, inbound, keyed.map(Claim::Keyed))
            .await
    }

    /// [`Engine::accept`] into a conversation the caller has just read (the channel adapters,
    /// which found it by its binding): routed and stored the same way.
    pub(crate) async fn accept_into(
        &self,
        conversation: switchboard_domain::conversation::Conversation,
        inbound: InboundActivity,
        claim: Option<Claim<'_>>,
    ) -> Result<AcceptOutcome, Error> {
        let (keyed, once) = match claim {
            Some(Claim::Keyed(k)) => (Some(k), None),
            Some(Claim::Once(key)) => (None, Some(key)),
            None => (None, None),
        };
        let (tenant, conversation_id) = (conversation.tenant_id, conversation.id);
        let ctx = self.hub(tenant, conversation.hub_id).await?;
        let route =
            match routing::route(ctx.hub.status, &ctx.members, &conversation.view(), &inbound) {
                Ok(route) => route,
                Err(RouteError::SenderNotInHub(id)) => {
                    return Err(self.sender_outside_hub(tenant, id).await)
                }
                Err(e) => return Err(e.into()),
            };
        let mut accepted = Accepted {
            event_id: 0,
            external_id: inbound.external_id,
            hub_id: conversation.hub_id,
            conversation_id,
            integration_id: route.activity.sender.integration_id,
            interaction_id: route.activity.interaction_id,
        };
        let first_event = |appended: &[Appended]| appended.first().map_or(0, |x| x.event_id);
        let routes = [route];
        let outcome = match (&keyed, &once) {
            (None, Some(key)) => {
                self.store()
                    .append_once(&conversation, &routes, key)
                    .await?
            }
            (None, None) => {
                self.store()
                    .append_activities(&conversation, &routes, None, &|_| String::new())
                    .await?
            }
            (Some(k), _) => {
                let respond = |appended: &[Appended]| {
                    let mut a = accepted.clone();
                    a.event_id = first_event(appended);
                    (k.respond)(&a)
                };
                self.store()
                    .append_activities(&conversation, &routes, Some(&k.claim), &respond)
                    .await?
            }
        };
        match outcome {
            AppendOutcome::Appended(appended) => {
                self.publish(&conversation, &routes, &appended).await;
                accepted.event_id = first_event(&appended);
                metrics::counter!("switchboard_activities_accepted_total").increment(1);
                Ok(AcceptOutcome::Accepted(accepted))
            }
            AppendOutcome::Replay {
                request_hash,
                response,
            } => match &keyed {
                Some(k) => replayed(&k.claim, &request_hash, response).map(AcceptOutcome::Replayed),
                // A key used once before: this is a repeat, nothing new was stored.
                None if once.is_some() => Ok(AcceptOutcome::Replayed(response)),
                None => Err(Error::IdempotencyKeyReused),
            },
            AppendOutcome::Closed => Err(Error::ConversationClosed(conversation_id)),
        }
    }

    /// Why a sender named by `sender.integrationId` is not in the conversation's hub: it names
    /// no integration of the tenant ([`RouteError::SenderNotInHub`]), or one of another hub of
    /// the tenant ([`RouteError::SenderInAnotherHub`]). Read on this refusal only.
    async fn sender_outside_hub(&self, tenant: TenantId, id: IntegrationId) -> Error {
        match self.store().find_integration(tenant, id).await {
            Ok(Some(_)) => RouteError::SenderInAnotherHub(id).into(),
            Ok(None) => RouteError::SenderNotInHub(id).into(),
            Err(e) => Error::Storage(e),
        }
    }
}

/// How an accept claims its request: an `Idempotency-Key` with the answer to keep, or a key
/// that may be used once (a provider's message id), claimed in a group commit.
pub(crate) enum Claim<'a> {
    Keyed(Keyed<'a>),
    Once(Idempotency),
}

/// The stored answer to a key used before, when the request is the same one.
fn replayed(claim: &Idempotency, request_hash: &str, response: String) -> Result<String, Error> {
    if claim.request_hash == request_hash {
        Ok(response)
    } else {
        Err(Error::IdempotencyKeyReused)
    }
}
