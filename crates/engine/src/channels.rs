//! Activities that arrive from a provider channel (SPEC 7.3.2 steps 7–9): deduplicated by the
//! provider's message id in the activity's transaction, established on the customer's binding,
//! and routed exactly like `POST /inbound/customer/v1/direct/activity`; the special outcomes
//! (paused, no handler, a binding that cannot be established) store nothing and raise their
//! notification instead. Verifying and parsing the provider's call is the API's, with the
//! channel's adapter.

use serde_json::{Map, Value};
use switchboard_domain::activity::InboundActivity;
use switchboard_domain::channel::adapter::{InboundItem, InboundNotice};
use switchboard_domain::conversation::{merge_properties, Establish, MAX_BINDING_LEN};
use switchboard_domain::integration::Integration;
use switchboard_domain::routing::{self, RouteError};
use switchboard_storage::{Idempotency, IDEMPOTENCY_TTL_MS};

use crate::activities::Claim;
use crate::conversations::check_active;
use crate::error::Error;
use crate::{AcceptOutcome, Engine};

/// `inbound_dropped` is raised at most once per integration in this time (SPEC 7.3.2).
const DROPPED_NOTICE_WINDOW_MS: i64 = 3_600_000;

/// What became of one inbound item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// Stored and routed.
    Stored,
    /// Its provider message id arrived within the last 24 hours: nothing new.
    Duplicate,
    /// Nothing to do (a read receipt for a binding without an open conversation).
    Ignored,
    /// The integration or its hub is paused: nothing stored.
    Dropped,
    /// Refused (no handler, a binding that cannot be established): nothing stored.
    Rejected(String),
}

impl Received {
    /// The `outcome` label of `switchboard_channel_inbound_total`.
    pub const fn label(&self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Dropped => "dropped",
            Self::Rejected(_) => "rejected",
        }
    }
}

/// The key that deduplicates `external_id` on `integration`: an `Idempotency-Key` of the tenant
/// that no client can send (a header value cannot hold a newline).
fn dedupe_key(integration: &Integration, external_id: &str) -> Idempotency {
    Idempotency {
        key: format!("\nchannel:{}:{external_id}", integration.id),
        request_hash: "channel".to_owned(),
    }
}

impl Engine {
    /// Takes one activity from `integration`'s provider (SPEC 7.3.2 steps 7–9). Answers whether
    /// its conversation is new (for a profile call after the answer) beside what became of it.
    pub async fn receive(
        &self,
        integration: &Integration,
        item: InboundItem,
    ) -> Result<(Received, bool), Error> {
        let tenant = integration.tenant_id;
        let claim = dedupe_key(integration, &item.external_id);
        if self.replay(tenant, &claim).await?.is_some() {
            return Ok((Received::Duplicate, false));
        }
        let ctx = self.hub(tenant, integration.hub_id).await?;
        let fresh = ctx.integration(integration.id).unwrap_or(integration);
        if check_active(fresh, ctx.hub.status).is_err() {
            self.dropped(integration).await;
            return Ok((Received::Dropped, false));
        }
        if routing::handlers(&ctx.members, routing::Mode::Bot).is_empty() {
            return self
                .rejected(integration, format!(
                    "A message from {} on integration {} was not stored: the hub has no active Agent or Bot integration (5501).",
                    item.binding, integration.id
                ))
                .await
                .map(|r| (r, false));
        }
        let len = item.binding.chars().count();
        if len == 0 || len > MAX_BINDING_LEN {
            return self
                .rejected(integration, format!(
                    "A message on integration {} was not stored: its sender's id cannot be a conversation's binding (1 to {MAX_BINDING_LEN} characters).",
                    integration.id
                ))
                .await
                .map(|r| (r, false));
        }
        // The binding's open conversation, when there is one and the item adds nothing to its
        // properties: no establish (and its write) for the common case of a known customer.
        let open = self
            .store()
            .find_open_conversation(tenant, integration.id, &item.binding)
            .await?;
        let unchanged = |c: &switchboard_domain::conversation::Conversation| {
            let mut merged = c.properties.clone();
            merge_properties(&mut merged, &item.properties);
            merged == c.properties
        };
        let (conversation, is_new) = if item.existing_only {
            match open {
                Some(c) => (c, false),
                None => return Ok((Received::Ignored, false)),
            }
        } else if let Some(c) = open.filter(unchanged) {
            (c, false)
        } else {
            let established = match self
                .establish(
                    tenant,
                    Establish {
                        integration_id: integration.id,
                        binding: item.binding.clone(),
                        properties: item.properties.clone(),
                    },
                )
                .await
            {
                Ok(e) => e,
                Err(Error::HubPaused | Error::IntegrationPaused(_)) => {
                    self.dropped(integration).await;
                    return Ok((Received::Dropped, false));
                }
                Err(Error::Storage(switchboard_storage::Error::Invalid(why))) => {
                    return self
                        .rejected(integration, format!(
                            "A message from {} on integration {} was not stored: its conversation cannot be established: {why}",
                            item.binding, integration.id
                        ))
                        .await
                        .map(|r| (r, false));
                }
                Err(e) => return Err(e),
            };
            (established.conversation, established.is_new)
        };
        let inbound = InboundActivity {
            external_id: Some(item.external_id.clone()),
            sender: Some(integration.id),
            payload: item.payload,
        };
        match self
            .accept_into(conversation, inbound, Some(Claim::Once(claim)))
            .await
        {
            Ok(AcceptOutcome::Accepted(_)) => Ok((Received::Stored, is_new)),
            Ok(AcceptOutcome::Replayed(_)) | Err(Error::IdempotencyKeyReused) => {
                Ok((Received::Duplicate, false))
            }
            Err(Error::Refused(RouteError::NoHandler)) => self
                .rejected(integration, format!(
                    "A message from {} on integration {} was not stored: no active handler for its conversation (5501).",
                    item.binding, integration.id
                ))
                .await
                .map(|r| (r, false)),
            Err(Error::Refused(RouteError::HubPaused | RouteError::SenderPaused(_))) => {
                self.dropped(integration).await;
                Ok((Received::Dropped, false))
            }
            Err(Error::ConversationClosed(_)) => self
                .rejected(integration, format!(
                    "A message from {} on integration {} was not stored: its conversation was closed while it arrived.",
                    item.binding, integration.id
                ))
                .await
                .map(|r| (r, false)),
            Err(e) => Err(e),
        }
    }

    /// Records a notice of `integration`'s provider (WhatsApp `failed` statuses), once per key.
    pub async fn notice(
        &self,
        integration: &Integration,
        notice: &InboundNotice,
    ) -> Result<(), Error> {
        self.store()
            .notify(
                integration.tenant_id,
                integration.id,
                notice.kind,
                &notice.description,
                Some((
                    &format!("{}:{}", integration.id, notice.dedupe_key),
                    IDEMPOTENCY_TTL_MS,
                )),
            )
            .await?;
        Ok(())
    }

    /// Merges properties learnt after the answer (a profile call) into the binding's open
    /// conversation, if it is still open.
    pub async fn merge_properties(
        &self,
        integration: &Integration,
        binding: &str,
        properties: Map<String, Value>,
    ) -> Result<(), Error> {
        if properties.is_empty() {
            return Ok(());
        }
        let open = self
            .store()
            .find_open_conversation(integration.tenant_id, integration.id, binding)
            .await?;
        if open.is_some() {
            self.establish(
                integration.tenant_id,
                Establish {
                    integration_id: integration.id,
                    binding: binding.to_owned(),
                    properties,
                },
            )
            .await?;
        }
        Ok(())
    }

    /// `inbound_dropped`, at most once per integration per hour.
    async fn dropped(&self, integration: &Integration) {
        let description = format!(
            "Messages from the provider of integration {} are dropped: the integration or its hub is paused.",
            integration.id
        );
        if let Err(e) = self
            .store()
            .notify(
                integration.tenant_id,
                integration.id,
                "inbound_dropped",
                &description,
                Some((
                    &format!("{}:dropped", integration.id),
                    DROPPED_NOTICE_WINDOW_MS,
                )),
            )
            .await
        {
            tracing::warn!(integration = %integration.id, error = %e, "recording inbound_dropped failed");
        }
    }

    /// `inbound_rejected` with `description`.
    async fn rejected(
        &self,
        integration: &Integration,
        description: String,
    ) -> Result<Received, Error> {
        self.store()
            .notify(
                integration.tenant_id,
                integration.id,
                "inbound_rejected",
                &description,
                None,
            )
            .await?;
        Ok(Received::Rejected(description))
    }
}
