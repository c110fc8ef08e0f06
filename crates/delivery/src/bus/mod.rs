//! The live bus: carries [`LiveMessage`]s to every node, where the node's [`LiveRegistry`] hands
//! them to its websocket sessions.
//!
//! Two implementations of one trait, chosen at start-up: [`MemoryBus`] for a single node and
//! [`RedisBus`] (pub/sub per integration) when nodes share live delivery. The bus is best effort:
//! activities are already stored when they are published, and a client that misses one gets it
//! on `resume`.
//!
//! [`LiveRegistry`]: crate::live::LiveRegistry

mod memory;
mod redis;

use crate::live::LiveMessage;

pub use memory::MemoryBus;
pub use redis::RedisBus;

/// A failure of the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Redis refused, failed or did not answer in time.
    #[error("redis: {0}")]
    Redis(String),
    /// A message could not be serialized for the wire.
    #[error("cannot encode a live message: {0}")]
    Encode(String),
}

/// Carries live messages to every node.
#[async_trait::async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes to every node, this one included (the local `LiveRegistry` gets it via
    /// `dispatch`).
    async fn publish(&self, messages: Vec<LiveMessage>) -> Result<(), BusError>;
    /// For /readyz: Ok when the bus can publish.
    async fn ping(&self) -> Result<(), BusError>;
}
