//! Delivery of activities to their recipients: the webhook worker (signed, retried, ordered,
//! at-least-once, from the outbox written with each activity) and the live bus that carries
//! activities to websocket sessions on every node.
//!
//! The live path: after an activity's commit, the engine's service (`switchboard-engine`)
//! publishes its live copies, framed by [`activity_frame`], on a [`Bus`] ([`MemoryBus`] on one
//! node, [`RedisBus`] across nodes); every node's [`LiveRegistry`] hands them to the websocket
//! sessions it holds, each through a bounded queue read by its [`Subscription`].
//! The bus is best effort by design: a client that misses frames is closed and `resume`s from
//! storage. Sockets, frame parsing and authentication stay in `api`.
//!
//! The webhook path: the activity's transaction writes one outbox row per webhook recipient;
//! the [`WebhookWorker`] claims, signs, POSTs and records them. A worker whose HTTP client
//! cannot be built is a [`WorkerError`], which stops the server's start.

pub mod bus;
pub mod live;
pub mod provider;
pub mod webhook;

pub use bus::{Bus, BusError, MemoryBus, RedisBus};
pub use live::{
    activity_frame, LiveMessage, LiveRegistry, QueueLimits, SessionEvent, Subscription,
};
pub use provider::{ProviderClient, ProviderConfig};
pub use webhook::{WebhookConfig, WebhookWorker, WorkerError};
