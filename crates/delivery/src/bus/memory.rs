//! The in-process bus of a single node: publishing is dispatching to the local registry.

use super::{Bus, BusError};
use crate::live::{LiveMessage, LiveRegistry};

/// The bus of a single node: `publish` hands each message to the local [`LiveRegistry`].
#[derive(Clone, Debug)]
pub struct MemoryBus {
    registry: LiveRegistry,
}

impl MemoryBus {
    /// A bus that dispatches to `registry`.
    pub fn new(registry: LiveRegistry) -> Self {
        Self { registry }
    }
}

#[async_trait::async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, messages: Vec<LiveMessage>) -> Result<(), BusError> {
        for message in &messages {
            self.registry.dispatch(message);
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }
}
