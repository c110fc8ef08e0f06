//! The bus shared by nodes through Redis pub/sub.
//!
//! Each message is PUBLISHed as JSON on `switchboard:live:{integrationId}` over a multiplexed
//! connection (one pipeline per `publish`). Each node holds one more connection, PSUBSCRIBEd to
//! `switchboard:live:*`, whose task dispatches every message to the node's registry. Pub/sub keeps
//! nothing for an absent subscriber: when that connection is lost the task subscribes again
//! (backing off from 100 ms to 5 s) and then closes every local websocket with 1012, so that
//! clients reconnect and `resume` from storage what they missed in the gap.

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use ::redis::{Client, Msg, Value};
use futures_util::StreamExt;
use tokio::task::AbortHandle;
use tokio::time::{timeout, Instant};

use super::{Bus, BusError};
use crate::live::{IntegrationId, LiveMessage, LiveRegistry};

/// Prefix of the channel of one integration; the subscriber's pattern is this and `*`.
const CHANNEL_PREFIX: &str = "switchboard:live:";
/// How long connecting (TCP, AUTH, SELECT, PSUBSCRIBE) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a command may wait for its answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the subscriber checks that its connection still answers (no TCP keepalive is set, so
/// a silently dropped connection would otherwise go unnoticed).
const PING_EVERY: Duration = Duration::from_secs(30);
/// First and last delay between attempts to subscribe again.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Close code and reason for local sessions after the subscription was lost and restored.
const CLOSE_RESUBSCRIBED: u16 = 1012;
const CLOSE_RESUBSCRIBED_REASON: &str = "live bus reconnected; resume";

/// The live bus over Redis pub/sub, for several nodes. Cheap to clone; the subscriber task stops
/// when the last clone is dropped, or at [`RedisBus::shutdown`].
#[derive(Clone)]
pub struct RedisBus {
    publisher: ConnectionManager,
    subscriber: Arc<Subscriber>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus").finish_non_exhaustive()
    }
}

/// Owns the subscriber task: dropping it stops the task.
struct Subscriber(AbortHandle);

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RedisBus {
    /// Connects to Redis at `url`, subscribes, and starts dispatching every node's messages to
    /// `registry`. Returns once the subscription is active, so nothing published afterwards is
    /// missed; fails (within a few seconds) when Redis cannot be reached.
    pub async fn connect(url: &str, registry: LiveRegistry) -> Result<Self, BusError> {
        let client =
            Client::open(url).map_err(|e| BusError::Redis(format!("invalid Redis URL: {e}")))?;
        let pubsub = subscribe(&client).await?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT)
            .set_number_of_retries(3)
            .set_factor(2)
            .set_max_delay(BACKOFF_MAX.as_millis() as u64);
        let publisher = timeout(
            CONNECT_TIMEOUT,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| BusError::Redis("cannot connect: timed out".into()))?
        .map_err(|e| BusError::Redis(format!("cannot connect: {e}")))?;
        let task = tokio::spawn(run(client, pubsub, registry));
        Ok(Self {
            publisher,
            subscriber: Arc::new(Subscriber(task.abort_handle())),
        })
    }

    /// Stops the subscriber task (also done when the last clone is dropped). Publishing still
    /// works, but this node's registry gets nothing more.
    pub fn shutdown(&self) {
        self.subscriber.0.abort();
    }
}

#[async_trait::async_trait]
impl Bus for RedisBus {
    async fn publish(&self, messages: Vec<LiveMessage>) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut pipe = ::redis::pipe();
        for message in &messages {
            let payload =
                serde_json::to_string(message).map_err(|e| BusError::Encode(e.to_string()))?;
            pipe.cmd("PUBLISH")
                .arg(channel(message.integration_id()))
                .arg(payload)
                .ignore();
        }
        let mut conn = self.publisher.clone();
        pipe.exec_async(&mut conn)
            .await
            .map_err(|e| BusError::Redis(format!("PUBLISH failed: {e}")))
    }

    async fn ping(&self) -> Result<(), BusError> {
        let mut conn = self.publisher.clone();
        ::redis::cmd("PING")
            .exec_async(&mut conn)
            .await
            .map_err(|e| BusError::Redis(format!("PING failed: {e}")))
    }
}

/// The channel of one integration.
fn channel(integration: IntegrationId) -> String {
    format!("{CHANNEL_PREFIX}{integration}")
}

/// A new pub/sub connection, PSUBSCRIBEd (and confirmed) to every integration's channel.
async fn subscribe(client: &Client) -> Result<PubSub, BusError> {
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.psubscribe(format!("{CHANNEL_PREFIX}*")).await?;
        Ok::<_, ::redis::RedisError>(pubsub)
    };
    match timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok(pubsub)) => Ok(pubsub),
        Ok(Err(e)) => Err(BusError::Redis(format!("cannot subscribe: {e}"))),
        Err(_) => Err(BusError::Redis("cannot subscribe: timed out".into())),
    }
}

/// The subscriber task: dispatches until the connection is lost, then subscribes again and makes
/// the local clients resume. Ends only when aborted.
async fn run(client: Client, mut pubsub: PubSub, registry: LiveRegistry) {
    loop {
        let lost = listen(pubsub, &registry).await;
        tracing::warn!(cause = %lost, "live bus: lost the Redis subscription; subscribing again");
        let mut delay = BACKOFF_MIN;
        pubsub = loop {
            match subscribe(&client).await {
                Ok(pubsub) => break pubsub,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "live bus: Redis unavailable");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(BACKOFF_MAX);
                }
            }
        };
        // Messages published in the gap are lost to this node: its clients resume from storage.
        registry.close_all(CLOSE_RESUBSCRIBED, CLOSE_RESUBSCRIBED_REASON);
        tracing::info!("live bus: subscribed again; local websockets closed with 1012 to resume");
    }
}

/// Dispatches the messages of one connection until it is lost; answers why.
async fn listen(pubsub: PubSub, registry: &LiveRegistry) -> String {
    let (mut sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(msg) => deliver(registry, &msg),
                None => return "connection closed".into(),
            },
            _ = ping.tick() => match timeout(RESPONSE_TIMEOUT, sink.ping::<Value>()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return format!("PING failed: {e}"),
                Err(_) => return "PING not answered in time".into(),
            },
        }
    }
}

/// Hands one pub/sub message to the registry; a payload that is not a [`LiveMessage`] (another
/// version's, or not ours) is logged and skipped.
fn deliver(registry: &LiveRegistry, msg: &Msg) {
    match serde_json::from_slice::<LiveMessage>(msg.get_payload_bytes()) {
        Ok(message) => registry.dispatch(&message),
        Err(e) => tracing::warn!(
            channel = msg.get_channel_name(),
            error = %e,
            "live bus: skipped a message that is not a live message"
        ),
    }
}
