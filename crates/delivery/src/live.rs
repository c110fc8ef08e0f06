//! The node-local registry of websocket sessions: what the bus hands to the sessions held here.
//!
//! Each session has its own bounded queue, filled by [`LiveRegistry::dispatch`] (which never
//! blocks, so one slow client cannot stall the bus or the other clients) and emptied by its
//! [`Subscription`]. A session whose queue would go over [`QueueLimits`] is cut off: its queue is
//! released at once and it is told to close with 4008, so that the client reconnects and
//! `resume`s from storage (SPEC 5.6). Memory held for live delivery is therefore bounded by
//! sessions × limits. Sockets, frames on the wire and authentication stay in `api`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use switchboard_domain::webhook::{self, BodyHead};
use tokio::sync::Notify;

pub use switchboard_domain::ids::{ConversationId, IntegrationId};

/// Gauge of the frames queued on this node and not yet taken by their sessions.
pub const QUEUED_FRAMES_GAUGE: &str = "switchboard_ws_queued_frames";
/// Gauge of the websocket sessions registered on this node.
pub const SESSIONS_GAUGE: &str = "switchboard_ws_sessions";

/// Close code of a session that did not keep up with its queue (SPEC 5.6).
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Reason sent with [`CLOSE_TOO_SLOW`].
pub const CLOSE_TOO_SLOW_REASON: &str = "client too slow; reconnect and resume";

/// The websocket `activity` frame of SPEC 5.6 for one copy: `{"type":"activity","payload":…}`
/// whose payload is the Direct body of SPEC 5.5 (the one builder, `domain::webhook::write_body`).
/// `properties` and `activity` are JSON text, spliced as they are.
pub fn activity_frame(head: &BodyHead, properties: &str, activity: &str) -> String {
    let mut frame = String::with_capacity(240 + properties.len() + activity.len());
    frame.push_str("{\"type\":\"activity\",\"payload\":");
    webhook::write_body(
        &mut frame,
        webhook::DeliveryKind::Direct,
        head,
        properties,
        &[activity],
    );
    frame.push('}');
    frame
}

/// The widget socket's `activity` frame of a WebChat copy (SPEC 7.18.3): the Direct body with
/// `tenantId` and `conversationProperties` null (not shown to the browser).
pub fn webchat_frame(head: &BodyHead, activity: &str) -> String {
    let mut frame = String::with_capacity(240 + activity.len());
    frame.push_str("{\"type\":\"activity\",\"payload\":");
    frame.push_str(&format!(
        "{{\"hubId\":\"{}\",\"tenantId\":null,\"integrationId\":\"{}\",\"conversationId\":\"{}\",\"conversationProperties\":null,\"activity\":",
        head.hub_id, head.integration_id, head.conversation_id
    ));
    frame.push_str(activity);
    frame.push_str("}}");
    frame
}

/// One message on the bus.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum LiveMessage {
    /// A copy for a Direct integration; `frame` is the complete JSON text of the websocket frame to
    /// send as is.
    Activity {
        /// The recipient integration.
        integration_id: IntegrationId,
        /// The conversation of the activity, for sessions opened with `cId`.
        conversation_id: ConversationId,
        /// The `eventId` of this copy, the client's `leid` for `resume`.
        event_id: i64,
        /// The frame, serialized once and shared by every session that gets it.
        frame: Arc<str>,
    },
    /// Close the sockets of `integration_id` limited to `conversation_id` with `code` (a
    /// WebChat conversation closed: 4410).
    CloseConversation {
        /// The integration whose sockets close.
        integration_id: IntegrationId,
        /// The conversation whose sockets close.
        conversation_id: ConversationId,
        /// The websocket close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Close every socket of `integration_id` with `code` (4403 when it or its hub was deleted or
    /// paused).
    Close {
        /// The integration whose sockets close.
        integration_id: IntegrationId,
        /// The websocket close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
}

impl LiveMessage {
    /// The integration the message is for.
    pub fn integration_id(&self) -> IntegrationId {
        match self {
            Self::Activity { integration_id, .. }
            | Self::Close { integration_id, .. }
            | Self::CloseConversation { integration_id, .. } => *integration_id,
        }
    }
}

/// Limits of one session's queue: over either one, the session is cut off with close code 4008.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// Frames queued and not yet taken.
    pub max_frames: usize,
    /// Bytes of those frames.
    pub max_bytes: usize,
}

impl Default for QueueLimits {
    /// 1024 frames, 16 MiB.
    fn default() -> Self {
        Self {
            max_frames: 1024,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Node-local fan-out to the sessions held on this node. Cheap to clone (Arc inside).
#[derive(Clone)]
pub struct LiveRegistry {
    inner: Arc<Registry>,
}

impl std::fmt::Debug for LiveRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRegistry")
            .field("limits", &self.inner.limits)
            .field("sessions", &self.sessions())
            .field("queued_frames", &self.queued_frames())
            .finish()
    }
}

struct Registry {
    limits: QueueLimits,
    next_id: AtomicU64,
    /// The registered sessions by integration. Lock order: this map, then a session's queue.
    sessions: Mutex<HashMap<IntegrationId, HashMap<u64, Arc<Session>>>>,
}

/// The part of a session shared by the registry (producer) and its [`Subscription`] (consumer).
struct Session {
    conversation: Option<ConversationId>,
    queue: Mutex<Queue>,
    notify: Notify,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<Queued>,
    bytes: usize,
    /// Set once; reported before any queued frame (there are none left by then anyway).
    close: Option<(u16, String)>,
    /// The close was handed to the subscriber: nothing more comes.
    finished: bool,
}

struct Queued {
    conversation_id: ConversationId,
    event_id: i64,
    frame: Arc<str>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves the data consistent enough to go on.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    /// Tells one session (already removed from the map) to close, releasing its queue.
    fn close_session(&self, session: &Session, code: u16, reason: &str) {
        {
            let mut queue = lock(&session.queue);
            if queue.close.is_some() || queue.finished {
                return;
            }
            queue.close = Some((code, reason.to_owned()));
            queue.bytes = 0;
            queue.frames = VecDeque::new();
        }
        session.notify.notify_one();
    }
}

impl LiveRegistry {
    /// An empty registry whose sessions queue at most `limits`.
    pub fn new(limits: QueueLimits) -> Self {
        Self {
            inner: Arc::new(Registry {
                limits,
                next_id: AtomicU64::new(0),
                sessions: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Registers a session of `integration`; with `conversation` Some, only that conversation's
    /// activities reach it.
    pub fn register(
        &self,
        integration: IntegrationId,
        conversation: Option<ConversationId>,
    ) -> Subscription {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(Session {
            conversation,
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
        });
        lock(&self.inner.sessions)
            .entry(integration)
            .or_default()
            .insert(id, session.clone());
        Subscription {
            registry: self.inner.clone(),
            integration,
            id,
            session,
        }
    }

    /// Hands one bus message to the matching local sessions, never blocking: a session whose queue
    /// is full (frames or bytes over the limit) is removed and told to close with 4008 ("client
    /// too slow; reconnect and resume"). A Close message tells every session of that integration
    /// to close with its code.
    pub fn dispatch(&self, msg: &LiveMessage) {
        let inner = &*self.inner;
        // Held for the whole message, so every session of an integration sees the same order.
        let mut map = lock(&inner.sessions);
        match msg {
            LiveMessage::Activity {
                integration_id,
                conversation_id,
                event_id,
                frame,
            } => {
                let Some(sessions) = map.get_mut(integration_id) else {
                    return;
                };
                let limits = inner.limits;
                sessions.retain(|_, session| {
                    if session
                        .conversation
                        .is_some_and(|only| only != *conversation_id)
                    {
                        return true;
                    }
                    let queued = {
                        let mut queue = lock(&session.queue);
                        let fits = queue.frames.len() < limits.max_frames
                            && queue.bytes.saturating_add(frame.len()) <= limits.max_bytes;
                        if fits {
                            queue.bytes += frame.len();
                            queue.frames.push_back(Queued {
                                conversation_id: *conversation_id,
                                event_id: *event_id,
                                frame: frame.clone(),
                            });
                        }
                        fits
                    };
                    if queued {
                        session.notify.notify_one();
                        return true;
                    }
                    tracing::info!(
                        integration = %integration_id,
                        "websocket session too slow for its queue; closing it with 4008"
                    );
                    inner.close_session(session, CLOSE_TOO_SLOW, CLOSE_TOO_SLOW_REASON);
                    false
                });
                if sessions.is_empty() {
                    map.remove(integration_id);
                }
            }
            LiveMessage::CloseConversation {
                integration_id,
                conversation_id,
                code,
                reason,
            } => {
                let Some(sessions) = map.get_mut(integration_id) else {
                    return;
                };
                sessions.retain(|_, session| {
                    if session.conversation != Some(*conversation_id) {
                        return true;
                    }
                    inner.close_session(session, *code, reason);
                    false
                });
                if sessions.is_empty() {
                    map.remove(integration_id);
                }
            }
            LiveMessage::Close {
                integration_id,
                code,
                reason,
            } => {
                for session in map
                    .remove(integration_id)
                    .into_iter()
                    .flat_map(|s| s.into_values())
                {
                    inner.close_session(&session, *code, reason);
                }
            }
        }
    }

    /// Tells every local session to close with `code` and `reason` (1001 on shutdown, 1012 when
    /// the bus lost messages).
    pub fn close_all(&self, code: u16, reason: &str) {
        let all = std::mem::take(&mut *lock(&self.inner.sessions));
        for session in all.into_values().flat_map(HashMap::into_values) {
            self.inner.close_session(&session, code, reason);
        }
    }

    /// Frames queued on this node and not yet taken by their sessions (all sessions).
    pub fn queued_frames(&self) -> usize {
        lock(&self.inner.sessions)
            .values()
            .flat_map(HashMap::values)
            .map(|session| lock(&session.queue).frames.len())
            .sum()
    }

    /// Sets the gauges [`QUEUED_FRAMES_GAUGE`] and [`SESSIONS_GAUGE`] from the registry; called
    /// when the metrics are read. Kept up to date on every frame instead, they cost a lookup in
    /// the metrics registry and an atomic shared by every core per frame and per session.
    pub fn export_gauges(&self) {
        let (mut sessions, mut frames) = (0usize, 0usize);
        for session in lock(&self.inner.sessions)
            .values()
            .flat_map(HashMap::values)
        {
            sessions += 1;
            frames += lock(&session.queue).frames.len();
        }
        metrics::gauge!(QUEUED_FRAMES_GAUGE).set(frames as f64);
        metrics::gauge!(SESSIONS_GAUGE).set(sessions as f64);
    }

    /// Sessions registered on this node and not yet closed or dropped.
    pub fn sessions(&self) -> usize {
        lock(&self.inner.sessions).values().map(HashMap::len).sum()
    }

    /// The per-session queue limits.
    pub fn limits(&self) -> QueueLimits {
        self.inner.limits
    }
}

/// What a session receives, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionEvent {
    /// An activity frame to send as is.
    Frame {
        /// The conversation of the activity.
        conversation_id: ConversationId,
        /// The `eventId` of the copy.
        event_id: i64,
        /// The complete websocket frame text.
        frame: Arc<str>,
    },
    /// Close the socket with this code and reason; nothing more will come.
    Close {
        /// The websocket close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
}

/// A registered session; dropping it unregisters it.
pub struct Subscription {
    registry: Arc<Registry>,
    integration: IntegrationId,
    id: u64,
    session: Arc<Session>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("integration", &self.integration)
            .field("conversation", &self.session.conversation)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next event. A pending close is reported before any queued frame (a cut-off session must
    /// not first drain a full queue). `None` never happens while registered except after a Close
    /// was returned.
    pub async fn next(&mut self) -> Option<SessionEvent> {
        loop {
            if let Some(event) = self.take() {
                return event;
            }
            // `notify_one` keeps a permit when nobody waits, so a push between the unlock in
            // `take` and this await is not missed.
            self.session.notify.notified().await;
        }
    }

    /// The next event if one is ready, without waiting: a writer drains what is queued and
    /// flushes it in one write.
    pub fn try_next(&mut self) -> Option<SessionEvent> {
        self.take().flatten()
    }

    /// `Some(event)` when the queue has one (`Some(None)` once finished), `None` when empty.
    fn take(&mut self) -> Option<Option<SessionEvent>> {
        let mut queue = lock(&self.session.queue);
        if let Some((code, reason)) = queue.close.take() {
            queue.finished = true;
            return Some(Some(SessionEvent::Close { code, reason }));
        }
        if queue.finished {
            return Some(None);
        }
        let queued = queue.frames.pop_front()?;
        queue.bytes -= queued.frame.len();
        drop(queue);
        Some(Some(SessionEvent::Frame {
            conversation_id: queued.conversation_id,
            event_id: queued.event_id,
            frame: queued.frame,
        }))
    }

    /// The integration this session belongs to.
    pub fn integration(&self) -> IntegrationId {
        self.integration
    }

    /// The conversation this session is limited to, if any.
    pub fn conversation(&self) -> Option<ConversationId> {
        self.session.conversation
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        {
            let mut map = lock(&self.registry.sessions);
            if let Some(sessions) = map.get_mut(&self.integration) {
                sessions.remove(&self.id);
                if sessions.is_empty() {
                    map.remove(&self.integration);
                }
            }
        }
        let mut queue = lock(&self.session.queue);
        queue.finished = true;
        queue.bytes = 0;
        queue.frames = VecDeque::new();
    }
}

#[cfg(test)]
mod frame_tests {
    use super::*;

    #[test]
    fn a_webchat_frame_hides_the_tenant_and_the_properties() {
        let head = BodyHead {
            hub_id: switchboard_domain::ids::HubId::new(),
            tenant_id: switchboard_domain::ids::TenantId::new(),
            integration_id: IntegrationId::new(),
            conversation_id: ConversationId::new(),
        };
        let frame = webchat_frame(&head, r#"{"eventId":7}"#);
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["type"], "activity");
        let p = &v["payload"];
        assert!(p["tenantId"].is_null() && p["conversationProperties"].is_null());
        assert_eq!(p["hubId"], head.hub_id.to_string());
        assert_eq!(p["integrationId"], head.integration_id.to_string());
        assert_eq!(p["conversationId"], head.conversation_id.to_string());
        assert_eq!(p["activity"]["eventId"], 7);
    }

    #[tokio::test]
    async fn closing_a_conversation_closes_only_its_sessions() {
        let registry = LiveRegistry::new(QueueLimits::default());
        let integration = IntegrationId::new();
        let (one, two) = (ConversationId::new(), ConversationId::new());
        let mut a = registry.register(integration, Some(one));
        let mut b = registry.register(integration, Some(two));
        let mut all = registry.register(integration, None);
        registry.dispatch(&LiveMessage::CloseConversation {
            integration_id: integration,
            conversation_id: one,
            code: 4410,
            reason: "conversation closed".into(),
        });
        assert_eq!(
            a.next().await,
            Some(SessionEvent::Close {
                code: 4410,
                reason: "conversation closed".into()
            })
        );
        assert_eq!(b.try_next(), None);
        assert_eq!(all.try_next(), None);
        assert_eq!(registry.sessions(), 2);
    }

    #[test]
    fn an_activity_frame_wraps_the_direct_body() {
        let head = BodyHead {
            hub_id: switchboard_domain::ids::HubId::new(),
            tenant_id: switchboard_domain::ids::TenantId::new(),
            integration_id: IntegrationId::new(),
            conversation_id: ConversationId::new(),
        };
        let frame = activity_frame(&head, "{}", r#"{"eventId":5}"#);
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["type"], "activity");
        assert_eq!(v["payload"]["activity"]["eventId"], 5);
        assert_eq!(
            v["payload"]["integrationId"],
            head.integration_id.to_string()
        );
        let body = webhook::body(
            webhook::DeliveryKind::Direct,
            &head,
            "{}",
            &[r#"{"eventId":5}"#],
        );
        assert_eq!(
            v["payload"],
            serde_json::from_str::<serde_json::Value>(&body).unwrap()
        );
    }
}
