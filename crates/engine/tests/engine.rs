//! The engine's service over a real store (a temp-file SQLite database) and the in-process bus:
//! what a route, the websocket, the sweeper or a channel adapter gets from each call. The HTTP
//! face of the same calls is tested end to end in `crates/server/tests/it`.

#![allow(clippy::unwrap_used)] // a failing unwrap is a failing test

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_delivery::bus::MemoryBus;
use switchboard_delivery::live::{LiveRegistry, QueueLimits, SessionEvent, Subscription};
use switchboard_domain::activity::{validate_inbound, ConversationReason};
use switchboard_domain::conversation::{validate_establish, ConversationState};
use switchboard_domain::ids::{ConversationId, TenantId};
use switchboard_domain::integration::{validate_create, Integration};
use switchboard_engine::{AcceptOutcome, Accepted, Engine, Error, Idempotency, Keyed};
use switchboard_storage::{EncryptionKey, Store};
use uuid::Uuid;

/// A tenant with one hub (a Direct customer and a Direct agent), over a fresh database.
struct Fixture {
    engine: Engine,
    live: LiveRegistry,
    tenant: TenantId,
    customer: Integration,
    agent: Integration,
    dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Fixture {
    async fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("switchboard-engine-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("test.db").display());
        let store = Store::connect(&url, EncryptionKey([7; 32])).await.unwrap();
        store.migrate().await.unwrap();
        let tenant = store.create_tenant("engine test").await.unwrap().tenant_id;
        let hub = switchboard_domain::hub::validate_create(
            &json!({ "name": "support", "description": "Support" }),
        )
        .unwrap();
        let hub = store.create_hub(tenant, &hub).await.unwrap();
        let add = |name: &str, kind: &str| {
            validate_create(&json!({
                "channelId": "Direct", "name": name,
                "configuration": { "integrationType": kind },
            }))
            .unwrap()
        };
        let customer = store
            .create_integration(tenant, hub.id, &add("web", "Customer"))
            .await
            .unwrap();
        let agent = store
            .create_integration(tenant, hub.id, &add("desk", "Agent"))
            .await
            .unwrap();
        let live = LiveRegistry::new(QueueLimits {
            max_frames: 100,
            max_bytes: 1 << 20,
        });
        let engine = Engine::new(store, Arc::new(MemoryBus::new(live.clone())));
        Self {
            engine,
            live,
            tenant,
            customer,
            agent,
            dir,
        }
    }

    async fn conversation(&self, binding: &str) -> ConversationId {
        let request = validate_establish(&json!({
            "integrationId": self.customer.id, "binding": binding,
        }))
        .unwrap();
        let est = self.engine.establish(self.tenant, request).await.unwrap();
        assert!(est.is_new);
        est.conversation.id
    }

    async fn send(
        &self,
        conversation: ConversationId,
        body: Value,
        keyed: Option<Keyed<'_>>,
    ) -> Result<AcceptOutcome, Error> {
        let inbound = validate_inbound(&body).unwrap();
        self.engine
            .accept(self.tenant, conversation, inbound, None, keyed)
            .await
    }
}

fn text(t: &str) -> Value {
    json!({ "type": "message", "message": { "type": "text", "text": t } })
}

async fn next_frame(sub: &mut Subscription) -> Value {
    match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
        Ok(Some(SessionEvent::Frame { frame, .. })) => serde_json::from_str(&frame).unwrap(),
        other => panic!("expected a frame, got {other:?}"),
    }
}

fn accepted(outcome: AcceptOutcome) -> Accepted {
    match outcome {
        AcceptOutcome::Accepted(a) => a,
        AcceptOutcome::Replayed(r) => panic!("expected a new activity, got a replay of {r}"),
    }
}

#[tokio::test]
async fn an_accepted_activity_is_published_to_the_agent_with_its_event_id() {
    let f = Fixture::new().await;
    let conversation = f.conversation("jane").await;
    let mut agent = f.live.register(f.agent.id, None);
    let a = accepted(f.send(conversation, text("hello"), None).await.unwrap());
    assert_eq!(a.conversation_id, conversation);
    assert_eq!(
        a.integration_id, f.customer.id,
        "the sender defaults to the customer"
    );
    assert!(a.interaction_id.is_some(), "a message has an interaction");
    let frame = next_frame(&mut agent).await;
    assert_eq!(frame["type"], "activity");
    let payload = &frame["payload"];
    assert_eq!(payload["integrationId"], json!(f.agent.id));
    assert_eq!(payload["conversationId"], json!(conversation));
    assert_eq!(payload["tenantId"], json!(f.tenant));
    assert_eq!(payload["activity"]["message"]["text"], "hello");
    assert_eq!(payload["activity"]["eventId"], json!(a.event_id));
    // The live frame is the one `resume` replays from storage, built by the same builder.
    let stored = f
        .engine
        .store()
        .integration_activities(f.agent.id, Some(conversation), 0, 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let replayed: Value = serde_json::from_str(&stored[0].activity).unwrap();
    assert_eq!(payload["activity"], replayed);
}

#[tokio::test]
async fn refusals_are_typed_and_store_nothing() {
    let f = Fixture::new().await;
    let conversation = f.conversation("jane").await;
    let inbound = validate_inbound(&json!({
        "type": "message", "sender": { "integrationId": f.agent.id },
        "message": { "type": "text", "text": "hi" },
    }))
    .unwrap();
    let err = f
        .engine
        .accept(f.tenant, conversation, inbound, Some(f.customer.id), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ForeignSender), "{err:?}");

    let missing = ConversationId::new();
    let err = f.send(missing, text("hi"), None).await.unwrap_err();
    assert!(
        matches!(err, Error::ConversationNotFound(id) if id == missing),
        "{err:?}"
    );

    let on_agent =
        validate_establish(&json!({ "integrationId": f.agent.id, "binding": "x" })).unwrap();
    let err = f.engine.establish(f.tenant, on_agent).await.unwrap_err();
    assert!(matches!(err, Error::NotCustomer { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "Integration '{}' is of type Agent: conversations are established on Customer integrations.",
            f.agent.id
        )
    );

    let closed = f
        .engine
        .close(f.tenant, conversation, ConversationReason::Api, None)
        .await
        .unwrap();
    assert_eq!(closed.state, ConversationState::Closed);
    let err = f.send(conversation, text("late"), None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Conversation '{conversation}' is closed.")
    );
    let again = f
        .engine
        .close(f.tenant, conversation, ConversationReason::Api, None)
        .await
        .unwrap();
    assert_eq!(again.closed, closed.closed, "closing twice changes nothing");
    let stored = f
        .engine
        .store()
        .integration_activities(f.agent.id, Some(conversation), 0, 10)
        .await
        .unwrap();
    assert!(stored.is_empty(), "nothing was stored: {stored:?}");
}

#[tokio::test]
async fn a_keyed_accept_keeps_the_callers_answer_and_replays_it() {
    let f = Fixture::new().await;
    let conversation = f.conversation("jane").await;
    let respond = |a: &Accepted| format!("answer {}", a.event_id);
    let claim = |hash: &str| Idempotency {
        key: "k1".to_owned(),
        request_hash: hash.to_owned(),
    };
    assert_eq!(f.engine.replay(f.tenant, &claim("h1")).await.unwrap(), None);
    let keyed = Keyed {
        claim: claim("h1"),
        respond: &respond,
    };
    let a = accepted(
        f.send(conversation, text("once"), Some(keyed))
            .await
            .unwrap(),
    );
    let expected = format!("answer {}", a.event_id);
    assert_eq!(
        f.engine.replay(f.tenant, &claim("h1")).await.unwrap(),
        Some(expected.clone())
    );
    assert!(matches!(
        f.engine.replay(f.tenant, &claim("h2")).await,
        Err(Error::IdempotencyKeyReused)
    ));
    // A request that lost the race to the key (it checked before the first one committed).
    let keyed = Keyed {
        claim: claim("h1"),
        respond: &respond,
    };
    let outcome = f
        .send(conversation, text("once"), Some(keyed))
        .await
        .unwrap();
    assert_eq!(outcome, AcceptOutcome::Replayed(expected));
}
