//! The engine's error: why an activity, an establish or a close was refused, in domain terms.
//! No HTTP status or code lives here: `api/src/error.rs` maps each variant to SPEC 1, and a
//! channel adapter maps it to what its provider expects. The `Display` text of a refusal is
//! the sentence a client may see.

use switchboard_domain::channel::IntegrationType;
use switchboard_domain::ids::{ConversationId, HubId, IntegrationId};
use switchboard_domain::routing::RouteError;

/// Why the engine refused or failed a call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tenant has no such conversation.
    #[error("The conversation does not exist.")]
    ConversationNotFound(ConversationId),
    /// The tenant has no such integration (or it was deleted meanwhile).
    #[error("The integration does not exist.")]
    IntegrationNotFound(IntegrationId),
    /// The tenant has no such hub.
    #[error("The hub does not exist.")]
    HubNotFound(HubId),
    /// Conversations are established on Customer integrations only.
    #[error("Integration '{integration}' is of type {}: conversations are established on Customer integrations.", .integration_type.as_str())]
    NotCustomer {
        integration: IntegrationId,
        integration_type: IntegrationType,
    },
    /// The hub is paused.
    #[error("The hub is paused.")]
    HubPaused,
    /// The integration is paused.
    #[error("Integration '{0}' is paused.")]
    IntegrationPaused(IntegrationId),
    /// The conversation is closed (or was closed while the activity was being stored).
    #[error("Conversation '{0}' is closed.")]
    ConversationClosed(ConversationId),
    /// A caller that acts as one integration (a signed request, a websocket) named another
    /// integration as the sender.
    #[error("A signed request or a websocket acts as its own integration only: 'sender.integrationId' names another integration.")]
    ForeignSender,
    /// Routing refused the activity (sender not in the hub or not allowed, paused, closed,
    /// no handler).
    #[error(transparent)]
    Refused(#[from] RouteError),
    /// The `Idempotency-Key` was first used with another request (path or body).
    #[error("This Idempotency-Key was already used with another path or body.")]
    IdempotencyKeyReused,
    /// The database failed; for logs, not for clients.
    #[error(transparent)]
    Storage(#[from] switchboard_storage::Error),
}

/// A storage error where absence means `missing`.
pub(crate) fn or_missing(missing: Error) -> impl FnOnce(switchboard_storage::Error) -> Error {
    move |e| match e {
        switchboard_storage::Error::NotFound => missing,
        other => Error::Storage(other),
    }
}
