//! Buckets in this process: a map sharded by key, one small lock per shard, no allocation once a
//! bucket exists. Full buckets are forgotten when a shard grows past [`PRUNE_AT`], so clients
//! that come and go (IP addresses) do not grow it for ever.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

use switchboard_domain::rate::{self, Rate, Taken};

use super::{Key, Limit};

/// Shards of the map: checks of different keys rarely wait for each other.
const SHARDS: usize = 32;
/// Buckets in one shard past which full ones are forgotten before a new one is added.
const PRUNE_AT: usize = 4096;

type Shard = Mutex<HashMap<(Limit, Key), u64>>;

/// This node's buckets: each bucket's TAT (see `switchboard_domain::rate`).
pub struct MemoryBuckets {
    hasher: std::collections::hash_map::RandomState,
    shards: Box<[Shard]>,
}

impl Default for MemoryBuckets {
    fn default() -> Self {
        Self {
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl MemoryBuckets {
    /// Takes a token from the bucket of `limit` and `key` at `now` (µs).
    pub fn take(&self, limit: Limit, key: Key, rate: Rate, now: u64) -> Taken {
        let id = (limit, key);
        let shard = (self.hasher.hash_one(id) % SHARDS as u64) as usize;
        let Some(Ok(mut buckets)) = self.shards.get(shard).map(Mutex::lock) else {
            // A poisoned shard (a panic while held) limits nothing rather than everything.
            return Taken::Allowed { tat: now };
        };
        let tat = buckets.get(&id).copied().unwrap_or(0);
        let taken = rate::take(rate, tat, now);
        if let Taken::Allowed { tat } = taken {
            if buckets.len() >= PRUNE_AT && !buckets.contains_key(&id) {
                buckets.retain(|_, tat| !rate::is_full(*tat, now));
            }
            buckets.insert(id, tat);
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::ids::TenantId;

    #[test]
    fn buckets_are_per_limit_and_key_and_full_ones_are_forgotten() {
        let buckets = MemoryBuckets::default();
        let rate = Rate::per_second(1, 1);
        let a = Key::Tenant(TenantId::new());
        let b = Key::Tenant(TenantId::new());
        let now = 1_000_000_000;
        assert!(matches!(
            buckets.take(Limit::Portal, a, rate, now),
            Taken::Allowed { .. }
        ));
        assert!(matches!(
            buckets.take(Limit::Portal, a, rate, now),
            Taken::Refused { .. }
        ));
        assert!(matches!(
            buckets.take(Limit::Engine, a, rate, now),
            Taken::Allowed { .. }
        ));
        assert!(matches!(
            buckets.take(Limit::Portal, b, rate, now),
            Taken::Allowed { .. }
        ));
        // Many clients later, the old buckets (full again) are gone, the new ones bounded.
        let later = now + 10_000_000;
        for i in 0..(SHARDS * PRUNE_AT * 2) as u32 {
            let ip = Key::Ip(std::net::IpAddr::V4(i.into()));
            buckets.take(Limit::Public, ip, rate, later + u64::from(i) * 2_000_000);
        }
        let total: usize = buckets.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(total <= SHARDS * (PRUNE_AT + 1), "{total}");
    }
}
