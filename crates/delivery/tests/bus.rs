//! The live bus and the node-local registry, end to end: the same test bodies run on the
//! in-process bus always and on Redis when `TEST_REDIS_URL` is set (else a line names each test
//! skipped there). Redis is shared between tests, so each test uses integration ids of its own.

#![allow(clippy::unwrap_used)] // a failing unwrap is a failing test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_delivery::live::{ConversationId, IntegrationId};
use switchboard_delivery::{
    Bus, BusError, LiveMessage, LiveRegistry, MemoryBus, QueueLimits, RedisBus, SessionEvent,
    Subscription,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio::time::timeout;

/// How long a test waits for something that should happen.
const WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug)]
enum Kind {
    Memory,
    Redis,
}

fn redis_url() -> Option<String> {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// The buses to run a test body on: in-process always, Redis when `TEST_REDIS_URL` is set (else a
/// line names the test as skipped on Redis).
fn kinds(test: &str) -> Vec<Kind> {
    if redis_url().is_some() {
        vec![Kind::Memory, Kind::Redis]
    } else {
        note_skipped(test);
        vec![Kind::Memory]
    }
}

/// Says, past the test harness's capture, that `test` did not run on Redis, and how to run it: one
/// line per test, `SKIPPED <test> …`, which `.ci/run` counts.
fn note_skipped(test: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test} on Redis: set TEST_REDIS_URL=redis://127.0.0.1:6379 to run it"
    );
}

/// One node: its registry and its bus.
struct Node {
    registry: LiveRegistry,
    bus: Arc<dyn Bus>,
}

async fn node(kind: Kind, limits: QueueLimits) -> Node {
    let registry = LiveRegistry::new(limits);
    let bus: Arc<dyn Bus> = match kind {
        Kind::Memory => Arc::new(MemoryBus::new(registry.clone())),
        Kind::Redis => Arc::new(redis_node(&redis_url().unwrap(), registry.clone()).await),
    };
    Node { registry, bus }
}

async fn redis_node(url: &str, registry: LiveRegistry) -> RedisBus {
    timeout(WAIT, RedisBus::connect(url, registry))
        .await
        .expect("connect timed out")
        .expect("connect")
}

/// The frame of event `event_id`, always of the same length.
fn frame(event_id: i64) -> Arc<str> {
    format!(r#"{{"type":"activity","payload":{{"eventId":{event_id:06},"text":"hello"}}}}"#).into()
}

fn activity(
    integration: IntegrationId,
    conversation: ConversationId,
    event_id: i64,
) -> LiveMessage {
    LiveMessage::Activity {
        integration_id: integration,
        conversation_id: conversation,
        event_id,
        frame: frame(event_id),
    }
}

fn frame_event(conversation: ConversationId, event_id: i64) -> SessionEvent {
    SessionEvent::Frame {
        conversation_id: conversation,
        event_id,
        frame: frame(event_id),
    }
}

fn close_event(code: u16, reason: &str) -> SessionEvent {
    SessionEvent::Close {
        code,
        reason: reason.into(),
    }
}

/// The next event of `sub`, failing the test when none comes in time.
async fn next(sub: &mut Subscription) -> SessionEvent {
    timeout(WAIT, sub.next())
        .await
        .expect("no event in time")
        .expect("subscription ended")
}

/// The event ids of the next `n` frames of `sub`.
async fn event_ids(sub: &mut Subscription, n: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        match next(sub).await {
            SessionEvent::Frame { event_id, .. } => ids.push(event_id),
            other => panic!("expected a frame, got {other:?}"),
        }
    }
    ids
}

async fn publish(node: &Node, messages: Vec<LiveMessage>) {
    node.bus.publish(messages).await.expect("publish");
}

#[tokio::test]
async fn an_activity_reaches_sessions_of_its_integration_only() {
    for kind in kinds("an_activity_reaches_sessions_of_its_integration_only") {
        let node = node(kind, QueueLimits::default()).await;
        let (a, b, conversation) = (
            IntegrationId::new(),
            IntegrationId::new(),
            ConversationId::new(),
        );
        let mut sa = node.registry.register(a, None);
        let mut sb = node.registry.register(b, None);
        assert_eq!(sa.integration(), a);

        publish(&node, vec![activity(a, conversation, 1)]).await;
        publish(&node, vec![activity(b, conversation, 2)]).await;

        assert_eq!(
            next(&mut sa).await,
            frame_event(conversation, 1),
            "{kind:?}"
        );
        // b's first frame is its own, published after a's: a's never reached it.
        assert_eq!(
            next(&mut sb).await,
            frame_event(conversation, 2),
            "{kind:?}"
        );
        assert_eq!(node.registry.queued_frames(), 0, "{kind:?}");
    }
}

#[tokio::test]
async fn every_session_of_an_integration_gets_every_frame_in_publish_order() {
    for kind in kinds("every_session_of_an_integration_gets_every_frame_in_publish_order") {
        let node = node(kind, QueueLimits::default()).await;
        let (integration, conversation) = (IntegrationId::new(), ConversationId::new());
        let mut first = node.registry.register(integration, None);
        let mut second = node.registry.register(integration, None);
        assert_eq!(node.registry.sessions(), 2);

        let batch = (1..=10)
            .map(|e| activity(integration, conversation, e))
            .collect();
        publish(&node, batch).await;
        for e in 11..=20 {
            publish(&node, vec![activity(integration, conversation, e)]).await;
        }

        let expected: Vec<i64> = (1..=20).collect();
        assert_eq!(event_ids(&mut first, 20).await, expected, "{kind:?}");
        assert_eq!(event_ids(&mut second, 20).await, expected, "{kind:?}");
    }
}

#[tokio::test]
async fn a_session_with_a_conversation_gets_only_that_conversation() {
    for kind in kinds("a_session_with_a_conversation_gets_only_that_conversation") {
        let node = node(kind, QueueLimits::default()).await;
        let integration = IntegrationId::new();
        let (c1, c2) = (ConversationId::new(), ConversationId::new());
        let mut all = node.registry.register(integration, None);
        let mut only_c1 = node.registry.register(integration, Some(c1));

        publish(
            &node,
            vec![
                activity(integration, c1, 1),
                activity(integration, c2, 2),
                activity(integration, c1, 3),
            ],
        )
        .await;

        assert_eq!(next(&mut only_c1).await, frame_event(c1, 1), "{kind:?}");
        assert_eq!(next(&mut only_c1).await, frame_event(c1, 3), "{kind:?}");
        assert_eq!(next(&mut all).await, frame_event(c1, 1), "{kind:?}");
        assert_eq!(next(&mut all).await, frame_event(c2, 2), "{kind:?}");
        assert_eq!(next(&mut all).await, frame_event(c1, 3), "{kind:?}");
        assert_eq!(node.registry.queued_frames(), 0, "{kind:?}");
    }
}

/// Publishes frames one at a time, each read by `reader` and never by `slow`, until `slow` is cut
/// off; checks the node's queue stayed within `bound` all along. Answers how many were published.
async fn publish_until_cut_off(
    node: &Node,
    integration: IntegrationId,
    conversation: ConversationId,
    reader: &mut Subscription,
    bound: usize,
) -> i64 {
    let mut published = 0;
    while node.registry.sessions() == 2 {
        assert!(published < 10_000, "the slow session was never cut off");
        published += 1;
        publish(node, vec![activity(integration, conversation, published)]).await;
        assert_eq!(next(reader).await, frame_event(conversation, published));
        assert!(
            node.registry.queued_frames() <= bound,
            "{} frames queued, over {bound}",
            node.registry.queued_frames()
        );
    }
    published
}

#[tokio::test]
async fn a_session_over_its_frame_limit_is_closed_with_4008_first() {
    for kind in kinds("a_session_over_its_frame_limit_is_closed_with_4008_first") {
        let limits = QueueLimits {
            max_frames: 8,
            max_bytes: 16 * 1024 * 1024,
        };
        let node = node(kind, limits).await;
        let (integration, conversation) = (IntegrationId::new(), ConversationId::new());
        let mut slow = node.registry.register(integration, None);
        let mut reader = node.registry.register(integration, None);

        let published =
            publish_until_cut_off(&node, integration, conversation, &mut reader, 8).await;

        assert_eq!(
            published, 9,
            "{kind:?}: cut off on the first frame over the limit"
        );
        assert_eq!(
            next(&mut slow).await,
            close_event(4008, "client too slow; reconnect and resume"),
            "{kind:?}: the close comes before the queued frames"
        );
        assert_eq!(slow.next().await, None, "{kind:?}");
        assert_eq!(
            node.registry.queued_frames(),
            0,
            "{kind:?}: its queue was released"
        );
        assert_eq!(node.registry.sessions(), 1, "{kind:?}");

        // The reader goes on.
        publish(&node, vec![activity(integration, conversation, 100)]).await;
        assert_eq!(
            next(&mut reader).await,
            frame_event(conversation, 100),
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn a_session_over_its_byte_limit_is_closed_with_4008_first() {
    for kind in kinds("a_session_over_its_byte_limit_is_closed_with_4008_first") {
        let len = frame(1).len();
        let limits = QueueLimits {
            max_frames: 1024,
            max_bytes: 3 * len + len / 2,
        };
        let node = node(kind, limits).await;
        let (integration, conversation) = (IntegrationId::new(), ConversationId::new());
        let mut slow = node.registry.register(integration, None);
        let mut reader = node.registry.register(integration, None);

        let published =
            publish_until_cut_off(&node, integration, conversation, &mut reader, 3).await;

        assert_eq!(
            published, 4,
            "{kind:?}: three frames fit, the fourth does not"
        );
        assert_eq!(
            next(&mut slow).await,
            close_event(4008, "client too slow; reconnect and resume"),
            "{kind:?}"
        );
        assert_eq!(slow.next().await, None, "{kind:?}");
        assert_eq!(node.registry.queued_frames(), 0, "{kind:?}");
    }
}

#[tokio::test]
async fn a_close_message_closes_every_session_of_its_integration_and_no_other() {
    for kind in kinds("a_close_message_closes_every_session_of_its_integration_and_no_other") {
        let node = node(kind, QueueLimits::default()).await;
        let (a, b, conversation) = (
            IntegrationId::new(),
            IntegrationId::new(),
            ConversationId::new(),
        );
        let mut a_all = node.registry.register(a, None);
        let mut a_one = node.registry.register(a, Some(conversation));
        let mut other = node.registry.register(b, None);

        publish(
            &node,
            vec![
                activity(a, conversation, 1),
                LiveMessage::Close {
                    integration_id: a,
                    code: 4403,
                    reason: "integration deleted".into(),
                },
                activity(b, conversation, 2),
            ],
        )
        .await;

        assert_eq!(
            next(&mut other).await,
            frame_event(conversation, 2),
            "{kind:?}"
        );
        for session in [&mut a_all, &mut a_one] {
            assert_eq!(
                next(session).await,
                close_event(4403, "integration deleted"),
                "{kind:?}"
            );
            assert_eq!(session.next().await, None, "{kind:?}");
        }
        assert_eq!(node.registry.sessions(), 1, "{kind:?}");
        assert_eq!(node.registry.queued_frames(), 0, "{kind:?}");

        // The integration's new sessions get its activities again (it may have been resumed).
        let mut again = node.registry.register(a, None);
        publish(&node, vec![activity(a, conversation, 3)]).await;
        assert_eq!(
            next(&mut again).await,
            frame_event(conversation, 3),
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn dropping_a_subscription_unregisters_it_and_releases_its_queue() {
    for kind in kinds("dropping_a_subscription_unregisters_it_and_releases_its_queue") {
        let node = node(kind, QueueLimits::default()).await;
        let (integration, conversation) = (IntegrationId::new(), ConversationId::new());
        let idle = node.registry.register(integration, None);
        let mut reader = node.registry.register(integration, None);
        assert_eq!(node.registry.sessions(), 2);

        let batch = (1..=3)
            .map(|e| activity(integration, conversation, e))
            .collect();
        publish(&node, batch).await;
        assert_eq!(event_ids(&mut reader, 3).await, vec![1, 2, 3], "{kind:?}");
        assert_eq!(
            node.registry.queued_frames(),
            3,
            "{kind:?}: the idle session's"
        );

        drop(idle);
        assert_eq!(node.registry.sessions(), 1, "{kind:?}");
        assert_eq!(node.registry.queued_frames(), 0, "{kind:?}");

        publish(&node, vec![activity(integration, conversation, 4)]).await;
        assert_eq!(
            next(&mut reader).await,
            frame_event(conversation, 4),
            "{kind:?}"
        );
        assert_eq!(node.registry.queued_frames(), 0, "{kind:?}");

        drop(reader);
        assert_eq!(node.registry.sessions(), 0, "{kind:?}");
    }
}

#[tokio::test]
async fn close_all_closes_every_session_of_the_node() {
    for kind in kinds("close_all_closes_every_session_of_the_node") {
        let node = node(kind, QueueLimits::default()).await;
        let (a, b, conversation) = (
            IntegrationId::new(),
            IntegrationId::new(),
            ConversationId::new(),
        );
        let mut sessions = vec![
            node.registry.register(a, None),
            node.registry.register(a, Some(conversation)),
            node.registry.register(b, None),
        ];
        publish(&node, vec![activity(a, conversation, 1)]).await;
        // Wait for the delivery: the first session's frame is there.
        assert_eq!(next(&mut sessions[0]).await, frame_event(conversation, 1));

        node.registry.close_all(1001, "server shutting down");

        assert_eq!(node.registry.sessions(), 0, "{kind:?}");
        assert_eq!(node.registry.queued_frames(), 0, "{kind:?}");
        for session in &mut sessions {
            assert_eq!(
                next(session).await,
                close_event(1001, "server shutting down"),
                "{kind:?}"
            );
            assert_eq!(session.next().await, None, "{kind:?}");
        }
    }
}

#[tokio::test]
async fn ping_answers_when_the_bus_can_publish() {
    for kind in kinds("ping_answers_when_the_bus_can_publish") {
        let node = node(kind, QueueLimits::default()).await;
        node.bus.ping().await.expect("ping");
        node.bus
            .publish(Vec::new())
            .await
            .expect("an empty publish");
    }
}

#[tokio::test]
async fn ping_fails_once_redis_cannot_be_reached() {
    let Some(url) = redis_url() else {
        return note_skipped("ping_fails_once_redis_cannot_be_reached");
    };
    let (proxy, proxied_url) = proxied(&url).await;
    let registry = LiveRegistry::new(QueueLimits::default());
    let bus = redis_node(&proxied_url, registry).await;
    bus.ping().await.expect("ping while Redis answers");

    // Redis is gone for this node: its connections are cut and nothing listens any more.
    drop(proxy);

    let result = timeout(Duration::from_secs(30), bus.ping())
        .await
        .expect("ping must fail, not hang");
    match result {
        Err(BusError::Redis(message)) => assert!(message.contains("PING failed"), "{message}"),
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(()) => panic!("ping answered though Redis cannot be reached"),
    }
}

#[test]
fn a_live_message_travels_as_camel_case_json() {
    let (integration, conversation) = (IntegrationId::new(), ConversationId::new());
    let message = activity(integration, conversation, 7);
    let json = serde_json::to_value(&message).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "kind": "activity",
            "integrationId": integration.to_string(),
            "conversationId": conversation.to_string(),
            "eventId": 7,
            "frame": &*frame(7),
        })
    );
    assert_eq!(
        serde_json::from_value::<LiveMessage>(json).unwrap(),
        message
    );

    let close = LiveMessage::Close {
        integration_id: integration,
        code: 4403,
        reason: "paused".into(),
    };
    let json = serde_json::to_value(&close).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "kind": "close",
            "integrationId": integration.to_string(),
            "code": 4403,
            "reason": "paused",
        })
    );
    assert_eq!(serde_json::from_value::<LiveMessage>(json).unwrap(), close);
}

#[test]
fn the_default_queue_limits_are_1024_frames_and_16_mib() {
    let limits = QueueLimits::default();
    assert_eq!(
        (limits.max_frames, limits.max_bytes),
        (1024, 16 * 1024 * 1024)
    );
    assert_eq!(LiveRegistry::new(limits).limits(), limits);
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_with_an_error() {
    // Needs no Redis: nothing listens on port 1.
    let result = timeout(
        Duration::from_secs(10),
        RedisBus::connect(
            "redis://127.0.0.1:1",
            LiveRegistry::new(QueueLimits::default()),
        ),
    )
    .await
    .expect("connect must fail, not hang");
    match result {
        Err(BusError::Redis(message)) => assert!(message.contains("cannot subscribe"), "{message}"),
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("connected to a closed port"),
    }
}

#[tokio::test]
async fn a_publish_on_one_node_reaches_sessions_on_the_others() {
    let Some(url) = redis_url() else {
        return note_skipped("a_publish_on_one_node_reaches_sessions_on_the_others");
    };
    let (one, two) = (
        LiveRegistry::new(QueueLimits::default()),
        LiveRegistry::new(QueueLimits::default()),
    );
    let bus_one = redis_node(&url, one.clone()).await;
    let bus_two = redis_node(&url, two.clone()).await;
    let (integration, conversation) = (IntegrationId::new(), ConversationId::new());
    let mut on_one = one.register(integration, None);
    let mut on_two = two.register(integration, None);

    bus_one
        .publish(vec![activity(integration, conversation, 1)])
        .await
        .unwrap();
    bus_two
        .publish(vec![activity(integration, conversation, 2)])
        .await
        .unwrap();

    for session in [&mut on_one, &mut on_two] {
        assert_eq!(event_ids(session, 2).await, vec![1, 2]);
    }

    // After shutdown, a node gets nothing more, and the others go on.
    bus_two.shutdown();
    bus_one
        .publish(vec![activity(integration, conversation, 3)])
        .await
        .unwrap();
    assert_eq!(next(&mut on_one).await, frame_event(conversation, 3));
    assert!(timeout(Duration::from_millis(300), on_two.next())
        .await
        .is_err());
}

#[tokio::test]
async fn a_payload_that_is_not_a_live_message_is_skipped() {
    let Some(url) = redis_url() else {
        return note_skipped("a_payload_that_is_not_a_live_message_is_skipped");
    };
    let registry = LiveRegistry::new(QueueLimits::default());
    let bus = redis_node(&url, registry.clone()).await;
    let (integration, conversation) = (IntegrationId::new(), ConversationId::new());
    let mut session = registry.register(integration, None);

    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("PUBLISH")
        .arg(format!("switchboard:live:{integration}"))
        .arg(r#"{"kind":"somethingNew"}"#)
        .exec_async(&mut conn)
        .await
        .unwrap();
    bus.publish(vec![activity(integration, conversation, 1)])
        .await
        .unwrap();

    assert_eq!(next(&mut session).await, frame_event(conversation, 1));
}

/// A TCP proxy to Redis whose connections the test can cut, as a network failure would.
struct Proxy {
    port: u16,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    async fn start(upstream: (String, u16)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let tracked = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    let mut outbound = TcpStream::connect(upstream).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                tracked.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy {
            port,
            connections,
            accept: accept.abort_handle(),
        }
    }

    /// Drops every connection made so far; new ones are accepted.
    fn cut(&self) {
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

/// A proxy to the Redis of `url`, and the URL that reaches the same database through it.
async fn proxied(url: &str) -> (Proxy, String) {
    let info = redis::Client::open(url)
        .unwrap()
        .get_connection_info()
        .clone();
    let redis::ConnectionAddr::Tcp(host, port) = info.addr else {
        panic!("TEST_REDIS_URL must be a redis:// URL");
    };
    let proxy = Proxy::start((host, port)).await;
    let auth = match (&info.redis.username, &info.redis.password) {
        (Some(user), Some(password)) => format!("{user}:{password}@"),
        (None, Some(password)) => format!(":{password}@"),
        _ => String::new(),
    };
    let proxied_url = format!("redis://{auth}127.0.0.1:{}/{}", proxy.port, info.redis.db);
    (proxy, proxied_url)
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

#[tokio::test]
async fn after_losing_its_subscription_a_node_subscribes_again_and_closes_its_sessions_with_1012() {
    let Some(url) = redis_url() else {
        return note_skipped(
            "after_losing_its_subscription_a_node_subscribes_again_and_closes_its_sessions_with_1012",
        );
    };
    let (proxy, proxied_url) = proxied(&url).await;

    let direct = redis_node(&url, LiveRegistry::new(QueueLimits::default())).await;
    let registry = LiveRegistry::new(QueueLimits::default());
    let _proxied = redis_node(&proxied_url, registry.clone()).await;
    let (integration, conversation) = (IntegrationId::new(), ConversationId::new());
    let mut before = registry.register(integration, None);

    proxy.cut();

    assert_eq!(
        next(&mut before).await,
        close_event(1012, "live bus reconnected; resume")
    );
    assert_eq!(registry.sessions(), 0);
    // Subscribed again before that close: a new session gets what is published now.
    let mut after = registry.register(integration, None);
    direct
        .publish(vec![activity(integration, conversation, 1)])
        .await
        .unwrap();
    assert_eq!(next(&mut after).await, frame_event(conversation, 1));
}
