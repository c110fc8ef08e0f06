//! A hub as routing needs it ([`HubContext`]: the hub, its integrations, paused ones included,
//! and their routing view), and this node's cache of them.
//!
//! The cache is keyed by hub and trusted while the store's hub generation is unchanged (no
//! write to a hub or an integration went through this node since it was loaded) and for at most
//! [`HUB_CACHE_TTL`] (a change made through another node takes effect here within that time).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_domain::hub::Hub;
use switchboard_domain::ids::{HubId, IntegrationId, TenantId};
use switchboard_domain::integration::Integration;
use switchboard_domain::routing::HubMember;
use switchboard_storage::Store;

use crate::error::{or_missing, Error};

/// How long a node trusts a hub and its integrations it loaded, while no write to a hub or an
/// integration went through this node.
pub const HUB_CACHE_TTL: Duration = Duration::from_secs(1);

/// Most hubs a node remembers; past it the cache starts afresh.
const CACHE_MAX: usize = 10_000;

/// A hub with all its integrations (paused ones included), as routing needs them.
#[derive(Clone, Debug)]
pub struct HubContext {
    pub hub: Hub,
    pub integrations: Vec<Integration>,
    /// The integrations as routing sees them, in the same order.
    pub members: Vec<HubMember>,
}

impl HubContext {
    /// The hub's integration `id`, if it is one.
    pub fn integration(&self, id: IntegrationId) -> Option<&Integration> {
        self.integrations.iter().find(|i| i.id == id)
    }
}

/// A hub loaded for routing, with the store's generation when it was loaded.
struct CachedHub {
    tenant: TenantId,
    generation: u64,
    at: Instant,
    ctx: Arc<HubContext>,
}

/// The hubs this node loaded.
#[derive(Default)]
pub(crate) struct HubCache(Mutex<HashMap<HubId, CachedHub>>);

impl HubCache {
    /// The tenant's hub and its integrations, from the cache while it is current, else from
    /// the database.
    pub(crate) async fn load(
        &self,
        store: &Store,
        tenant: TenantId,
        hub: HubId,
    ) -> Result<Arc<HubContext>, Error> {
        // Read before loading: a write committed meanwhile makes this load stale at once.
        let generation = store.hub_generation();
        if let Some(ctx) = self.get(tenant, hub, generation) {
            return Ok(ctx);
        }
        let hub = store
            .get_hub(tenant, hub)
            .await
            .map_err(or_missing(Error::HubNotFound(hub)))?;
        let integrations = store.list_hub_integrations(tenant, hub.id, None).await?;
        let members = integrations
            .iter()
            .map(HubMember::from_integration)
            .collect();
        let ctx = Arc::new(HubContext {
            hub,
            integrations,
            members,
        });
        self.remember(ctx.clone(), generation);
        Ok(ctx)
    }

    /// The tenant's hub as loaded at `generation` of the store, if this node loaded it then
    /// and less than [`HUB_CACHE_TTL`] ago.
    fn get(&self, tenant: TenantId, hub: HubId, generation: u64) -> Option<Arc<HubContext>> {
        let hubs = self.0.lock().ok()?;
        let cached = hubs.get(&hub)?;
        (cached.tenant == tenant
            && cached.generation == generation
            && cached.at.elapsed() < HUB_CACHE_TTL)
            .then(|| cached.ctx.clone())
    }

    /// Remembers a hub loaded at `generation` of the store.
    fn remember(&self, ctx: Arc<HubContext>, generation: u64) {
        if let Ok(mut hubs) = self.0.lock() {
            if hubs.len() >= CACHE_MAX {
                hubs.clear();
            }
            hubs.insert(
                ctx.hub.id,
                CachedHub {
                    tenant: ctx.hub.tenant_id,
                    generation,
                    at: Instant::now(),
                    ctx,
                },
            );
        }
    }
}
