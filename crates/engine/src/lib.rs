//! The engine's service: what every way into Switchboard shares to move activities. It
//! accepts an activity into a conversation, establishes and closes conversations (and sweeps
//! the dormant ones), publishes the live copies on the bus after each commit, wakes the
//! webhook worker when deliveries were queued, and closes the websockets of revoked
//! integrations. It keeps this node's cache of hubs as routing needs them.
//!
//! Its callers are the HTTP routes and the websocket (`switchboard-api`), the sweeper
//! (`switchboard`), and the channel adapters to come. It speaks domain types and its own
//! [`Error`], never HTTP: statuses, SPEC 1 codes and reply bodies belong to the caller (the
//! API maps [`Error`] in `api/src/error.rs`). Rules live in `switchboard-domain` (routing
//! decides an activity's recipients before the write), SQL in `switchboard-storage`, the bus
//! and the webhook worker in `switchboard-delivery`.
//!
//! ```text
//! let engine = Engine::new(store, bus);
//! let outcome = engine.accept(tenant, conversation, inbound, acting_as, None).await?;
//! ```

mod activities;
mod channels;
mod conversations;
mod error;
mod hubs;
mod live;

use std::sync::Arc;

use switchboard_delivery::bus::Bus;
use switchboard_domain::ids::{HubId, IntegrationId, TenantId};
use switchboard_storage::Store;
use tokio::sync::Notify;

pub use activities::{AcceptOutcome, Accepted, Keyed};
pub use channels::Received;
pub use conversations::{check_active, lifecycle_routes, Established};
pub use error::Error;
pub use hubs::{HubContext, HUB_CACHE_TTL};
pub use live::{CLOSE_CONVERSATION_CLOSED, CLOSE_REVOKED};
pub use switchboard_storage::Idempotency;

/// The engine of one node; cheap to clone (every clone shares the store, the bus, the wake-up
/// of the webhook worker and the hub cache).
#[derive(Clone)]
pub struct Engine(Arc<Inner>);

struct Inner {
    store: Store,
    bus: Arc<dyn Bus>,
    deliveries_due: Arc<Notify>,
    hubs: hubs::HubCache,
}

impl Engine {
    /// An engine over `store` that publishes live copies on `bus`.
    pub fn new(store: Store, bus: Arc<dyn Bus>) -> Self {
        Self(Arc::new(Inner {
            store,
            bus,
            deliveries_due: Arc::new(Notify::new()),
            hubs: hubs::HubCache::default(),
        }))
    }

    /// The store the engine writes to.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The live bus between nodes (in-process on one node).
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.0.bus
    }

    /// Notified after a commit that queued webhook deliveries: give it to this node's webhook
    /// worker so that it claims them at once rather than at its next poll.
    pub fn deliveries_due(&self) -> Arc<Notify> {
        self.0.deliveries_due.clone()
    }

    /// Wakes this node's webhook worker (after queueing deliveries, e.g. a replay).
    pub fn wake_deliveries(&self) {
        self.0.deliveries_due.notify_one();
    }

    /// The tenant's hub and its integrations, as routing needs them: from this node's cache
    /// while it is current (see [`HUB_CACHE_TTL`]), else from the database.
    pub async fn hub(&self, tenant: TenantId, hub: HubId) -> Result<Arc<HubContext>, Error> {
        self.0.hubs.load(&self.0.store, tenant, hub).await
    }

    /// The ids of the tenant's hub's integrations (empty when none, when the hub is not the
    /// tenant's, or when they cannot be read): whose websockets to close with the hub.
    pub async fn hub_integration_ids(&self, tenant: TenantId, hub: HubId) -> Vec<IntegrationId> {
        self.0
            .store
            .list_hub_integrations(tenant, hub, None)
            .await
            .map(|list| list.into_iter().map(|i| i.id).collect())
            .unwrap_or_default()
    }
}
