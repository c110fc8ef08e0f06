//! The engine's storage (SPEC 4, 5.1–5.4): conversations, the hub's `eventId` clock, activity
//! copies, idempotency keys and used signatures, the same test bodies on both backends (see
//! `common`). Routes are built by the real domain functions (`routing::route`,
//! `conversation_route`, `start_routes`) over integrations stored through the [`Store`], the way
//! the engine's service builds them.

#![allow(clippy::unwrap_used)] // a failing unwrap is a failing test

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{hub_draft, on_both_backends, tenant, unique, TestDb};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{json, Map, Value};
use switchboard_domain::activity::{
    validate_inbound, Activity, ConversationReason, ConversationStatus, Event, EventTrigger,
    FlowProcess, Payload, SenderRole,
};
use switchboard_domain::channel::{Channel, IntegrationType};
use switchboard_domain::conversation::{
    initial_properties, new_token_id, Conversation, ConversationState,
};
use switchboard_domain::hub::{Hub, MAX_DORMANT_DAYS};
use switchboard_domain::ids::{ConversationId, IntegrationId, TenantId};
use switchboard_domain::integration::{validate_create, Integration};
use switchboard_domain::paging::CopyBound;
use switchboard_domain::routing::{self, HubMember, Mode, Route};
use switchboard_domain::time::{now_millis, Millis};
use switchboard_storage::{
    AppendOutcome, Appended, CloseOutcome, Closed, Closing, Error, Established, Idempotency,
    NewConversation, Result, ResumeItem, Store, IDEMPOTENCY_TTL_MS,
};

on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    establish_opens_once_per_binding_and_merges_properties,
    concurrent_establishes_of_one_binding_share_one_conversation,
    event_ids_increase_within_a_hub_and_follow_the_clock,
    concurrent_appends_get_distinct_ids_in_commit_order,
    appends_that_share_a_group_commit_keep_their_own_outcome,
    append_to_a_closed_conversation_stores_nothing,
    idempotency_key_replays_the_first_answer,
    idempotency_keys_expire_after_a_day,
    handover_release_and_takeover_persist_the_mode,
    conversation_activities_filter_by_party_and_page,
    integration_activities_are_per_recipient,
    idle_conversations_close_only_when_still_idle,
    a_close_stores_nothing_when_the_conversation_changed_since_it_was_read,
    signatures_are_used_once,
    deleting_an_integration_or_hub_removes_its_conversations,
);

const DAY: Millis = 86_400_000;

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A tenant with one hub of its own, and the store.
struct Ctx {
    store: Store,
    tenant: TenantId,
    hub: Hub,
}

impl Ctx {
    async fn new(db: &TestDb) -> Ctx {
        Self::with_dormancy(db, 0).await
    }

    /// A hub that closes conversations idle for `days` days (0: never).
    async fn with_dormancy(db: &TestDb, days: i64) -> Ctx {
        let tenant = tenant(&db.store).await;
        let mut draft = hub_draft(&unique("hub"));
        draft.close_dormant_conversation = days;
        let hub = db.store.create_hub(tenant, &draft).await.unwrap();
        Ctx {
            store: db.store.clone(),
            tenant,
            hub,
        }
    }

    /// Creates an integration from a portal create body, validated by the domain.
    async fn add(&self, body: Value) -> Integration {
        let draft = validate_create(&body).unwrap();
        self.store
            .create_integration(self.tenant, self.hub.id, &draft)
            .await
            .unwrap()
    }

    async fn members(&self) -> Vec<HubMember> {
        self.store
            .list_hub_integrations(self.tenant, self.hub.id, None)
            .await
            .unwrap()
            .iter()
            .map(HubMember::from_integration)
            .collect()
    }

    /// What the engine's establish would ask for: a new conversation of `binding` on the
    /// Customer integration, with `given` properties, opened now, and its routes.
    async fn prepare(
        &self,
        customer: &Integration,
        binding: &str,
        given: &Value,
    ) -> NewConversation {
        let given = given.as_object().unwrap();
        let members = self.members().await;
        let now = now_millis();
        let conversation = Conversation {
            id: ConversationId::new(),
            tenant_id: self.tenant,
            hub_id: self.hub.id,
            integration_id: customer.id,
            binding: binding.to_owned(),
            token_id: new_token_id(),
            mode: routing::initial_mode(&members),
            state: ConversationState::Open,
            properties: initial_properties(given, customer.channel),
            opened: now,
            closed: None,
            last_activity: now,
        };
        let routes = lifecycle_routes(
            &self.hub,
            &members,
            customer,
            &conversation,
            ConversationStatus::Opened,
        );
        NewConversation {
            conversation,
            routes,
        }
    }

    async fn try_establish(
        &self,
        customer: &Integration,
        binding: &str,
        given: Value,
    ) -> Result<Established> {
        let new = self.prepare(customer, binding, &given).await;
        let given = given.as_object().unwrap().clone();
        self.store.establish_conversation(&new, &given).await
    }

    async fn establish(&self, customer: &Integration, binding: &str, given: Value) -> Established {
        self.try_establish(customer, binding, given).await.unwrap()
    }

    /// What the engine's close would ask for, from the conversation as `read`: its
    /// `conversation:closed` route, built for it closed now for `reason`.
    async fn closing(
        &self,
        read: &Conversation,
        reason: ConversationReason,
        idle_since: Option<Millis>,
    ) -> Closing {
        let integrations = self
            .store
            .list_hub_integrations(self.tenant, self.hub.id, None)
            .await
            .unwrap();
        let members: Vec<_> = integrations
            .iter()
            .map(HubMember::from_integration)
            .collect();
        let channel = integrations
            .iter()
            .find(|i| i.id == read.integration_id)
            .map_or(Channel::Direct, |i| i.channel);
        let at = now_millis();
        let closed = Conversation {
            state: ConversationState::Closed,
            closed: Some(at),
            ..read.clone()
        };
        let mut routes = vec![routing::conversation_route(
            self.hub.status,
            &members,
            &closed.view(),
            channel,
            ConversationStatus::Closed,
            reason,
        )];
        routes.retain(|r| !r.recipients.is_empty());
        Closing {
            read: read.clone(),
            reason,
            at,
            idle_since,
            routes,
        }
    }

    /// Closes the conversation as `read`; a conversation that changed since is a failure.
    async fn close_read(
        &self,
        read: &Conversation,
        reason: ConversationReason,
        idle_since: Option<Millis>,
    ) -> Result<Closed> {
        let closing = self.closing(read, reason, idle_since).await;
        self.store
            .close_conversation(&closing)
            .await
            .map(close_done)
    }

    /// Reads the conversation and closes it (one that does not exist is asked for under the
    /// id, as a caller holding a stale copy would).
    async fn close(
        &self,
        id: ConversationId,
        reason: ConversationReason,
        idle_since: Option<Millis>,
    ) -> Result<Closed> {
        let read = match self.store.find_conversation(self.tenant, id).await.unwrap() {
            Some(read) => read,
            None => Conversation {
                id,
                tenant_id: self.tenant,
                hub_id: self.hub.id,
                integration_id: IntegrationId::new(),
                binding: "gone".to_owned(),
                token_id: new_token_id(),
                mode: Mode::Agent,
                state: ConversationState::Open,
                properties: Map::new(),
                opened: 0,
                closed: None,
                last_activity: 0,
            },
        };
        self.close_read(&read, reason, idle_since).await
    }

    async fn conversation(&self, id: ConversationId) -> Conversation {
        self.store.get_conversation(self.tenant, id).await.unwrap()
    }

    /// Routes an inbound body in the conversation as it is stored now.
    async fn route(&self, conversation: &Conversation, body: Value) -> Route {
        let inbound = validate_inbound(&body).unwrap();
        routing::route(
            self.hub.status,
            &self.members().await,
            &conversation.view(),
            &inbound,
        )
        .unwrap()
    }

    /// Accepts an inbound body into the conversation: routed, then appended.
    async fn send(&self, id: ConversationId, body: Value) -> Appended {
        let conversation = self.conversation(id).await;
        let route = self.route(&conversation, body).await;
        let mut appended = appended(
            self.store
                .append_activities(&conversation, &[route], None, &no_answer)
                .await
                .unwrap(),
        );
        assert_eq!(appended.len(), 1);
        appended.remove(0)
    }
}

/// The `conversation:opened`/`closed` route and, for an opening, the start messages, leaving
/// out routes that reach no one (as the engine's service does).
fn lifecycle_routes(
    hub: &Hub,
    members: &[HubMember],
    customer: &Integration,
    conversation: &Conversation,
    status: ConversationStatus,
) -> Vec<Route> {
    let view = conversation.view();
    let reason = match status {
        ConversationStatus::Opened => ConversationReason::Establish,
        ConversationStatus::Closed => ConversationReason::Api,
    };
    let mut routes = vec![routing::conversation_route(
        hub.status,
        members,
        &view,
        customer.channel,
        status,
        reason,
    )];
    if status == ConversationStatus::Opened {
        let (starts, problems) = routing::start_routes(
            hub.status,
            members,
            &view,
            customer.configuration.get("start"),
        );
        assert!(problems.is_empty(), "{problems:?}");
        routes.extend(starts);
    }
    routes.retain(|r| !r.recipients.is_empty());
    routes
}

/// The answer of a close that found the conversation as it was read.
fn close_done(outcome: CloseOutcome) -> Closed {
    match outcome {
        CloseOutcome::Done(closed) => closed,
        CloseOutcome::Changed => panic!("the conversation changed since it was read"),
    }
}

fn no_answer(_: &[Appended]) -> String {
    String::new()
}

fn appended(outcome: AppendOutcome) -> Vec<Appended> {
    match outcome {
        AppendOutcome::Appended(a) => a,
        other => panic!("expected stored activities, got {other:?}"),
    }
}

/// A Direct integration of `kind` (Customer, Agent, Bot) with more `configuration`.
fn direct_with(name: &str, kind: &str, more: Value) -> Value {
    let mut configuration = more.as_object().unwrap().clone();
    configuration.insert("integrationType".into(), json!(kind));
    json!({ "channelId": "Direct", "name": name, "configuration": configuration })
}

fn direct(name: &str, kind: &str) -> Value {
    direct_with(name, kind, json!({}))
}

fn system(name: &str, events: &[&str]) -> Value {
    json!({
        "channelId": "System", "name": name,
        "configuration": { "webhookUrl": "https://sys.example/hook", "events": events },
    })
}

fn text_from(sender: Option<&Integration>, text: &str) -> Value {
    let mut body = json!({ "type": "message", "message": { "type": "text", "text": text } });
    if let Some(s) = sender {
        body["sender"] = json!({ "integrationId": s.id });
    }
    body
}

fn text(text: &str) -> Value {
    text_from(None, text)
}

fn event_from(sender: Option<&Integration>, kind: &str) -> Value {
    let mut body = json!({ "type": "event", "event": { "type": kind } });
    if let Some(s) = sender {
        body["sender"] = json!({ "integrationId": s.id });
    }
    body
}

/// A stored copy's text, or its event's type.
fn label(copy: &str) -> String {
    let v: Value = serde_json::from_str(copy).unwrap();
    v["message"]["text"]
        .as_str()
        .or(v["event"]["type"].as_str())
        .unwrap()
        .to_owned()
}

fn activity(copy: &str) -> Activity {
    serde_json::from_str(copy).unwrap()
}

fn event_ids(items: &[ResumeItem]) -> Vec<Millis> {
    items.iter().map(|i| i.event_id).collect()
}

fn recipients(a: &Appended) -> Vec<IntegrationId> {
    a.activities
        .iter()
        .map(|x| x.recipient.integration_id)
        .collect()
}

fn props(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// Makes the tenant's idempotency key look `by` ms older, with a connection of its own.
async fn backdate_idempotency_key(db: &TestDb, tenant: TenantId, key: &str, by: Millis) {
    let conn = Database::connect(&db.url).await.unwrap();
    let backend = conn.get_database_backend();
    let sql =
        "UPDATE idempotency_keys SET created = created - $1 WHERE tenant_id = $2 AND key = $3";
    let sql = match backend {
        DbBackend::Postgres => sql.to_owned(),
        _ => sql.replace('$', "?"),
    };
    let done = conn
        .execute(Statement::from_sql_and_values(
            backend,
            sql,
            [by.into(), tenant.as_uuid().into(), key.into()],
        ))
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
    conn.close().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Conversations

async fn establish_opens_once_per_binding_and_merges_properties(db: &TestDb) {
    let ctx = Ctx::new(db).await;
    let customer = ctx.add(direct("Customer", "Customer")).await;
    let agent = ctx.add(direct("Agent", "Agent")).await;
    let opened = ctx.add(system("Opened", &["conversation:opened"])).await;
    let closed = ctx.add(system("Closed", &["conversation:closed"])).await;
    let messages = ctx.add(system("Messages", &["message", "event"])).await;

    let before = now_millis();
    let given = json!({"profile": {"email": "jane@example.com"}, "crm": {"id": "7"}});
    let new = ctx.prepare(&customer, "cust-1", &given).await;
    let first = ctx
        .store
        .establish_conversation(&new, &props(given))
        .await
        .unwrap();
    let after = now_millis();
    assert!(first.is_new);
    // Stored exactly as prepared, with exactly the prepared routes.
    assert_eq!(first.conversation, new.conversation);
    assert_eq!(first.routes, new.routes);
    let c = first.conversation.clone();
    assert_eq!(
        (c.tenant_id, c.hub_id, c.integration_id, c.binding.as_str()),
        (ctx.tenant, ctx.hub.id, customer.id, "cust-1")
    );
    assert_eq!(c.state, ConversationState::Open);
    assert_eq!(c.mode, Mode::Agent, "no Bot in the hub");
    assert_eq!(c.closed, None);
    assert!(before <= c.opened && c.opened <= after);
    assert_eq!(c.last_activity, c.opened);
    assert_eq!(c.properties["profile"]["email"], "jane@example.com");
    assert_eq!(c.properties["profile"]["device"], "Direct");
    assert!(c.properties["profile"]["full name"].is_string());
    assert_eq!(c.properties["crm"], json!({"id": "7"}));

    // The route from the closure is stored: the `conversation:opened` System gets its copy.
    assert_eq!(first.routes.len(), 1);
    assert_eq!(first.appended.len(), 1);
    let opened_copy = &first.appended[0];
    assert_eq!(recipients(opened_copy), vec![opened.id]);
    let a = &opened_copy.activities[0];
    assert_eq!(a.event_trigger, EventTrigger::ConversationOpened);
    assert_eq!(a.event_id, opened_copy.event_id);
    assert!(opened_copy.event_id >= before && opened_copy.event_id >= c.opened);
    assert_eq!(
        (a.sender.integration_id, a.sender.token_id.as_str()),
        (customer.id, c.token_id.as_str())
    );
    assert_eq!(
        a.payload,
        Payload::Event(Event::Conversation {
            status: ConversationStatus::Opened,
            reason: ConversationReason::Establish,
        })
    );
    let stored = ctx
        .store
        .integration_activities(opened.id, Some(c.id), 0, 100)
        .await
        .unwrap();
    assert_eq!(event_ids(&stored), vec![opened_copy.event_id]);
    assert_eq!(activity(&stored[0].activity), *a);
    for other in [closed.id, messages.id, agent.id, customer.id] {
        assert!(ctx
            .store
            .integration_activities(other, None, 0, 100)
            .await
            .unwrap()
            .is_empty());
    }
    assert_eq!(ctx.conversation(c.id).await, c);

    // The same binding again: the same conversation, properties merged key by key, nothing new
    // (the prepared conversation and its routes are dropped).
    let given =
        json!({"profile": {"email": "new@example.com", "phone": "123"}, "tags": {"vip": "yes"}});
    let dropped = ctx.prepare(&customer, "cust-1", &given).await;
    assert_eq!(dropped.routes.len(), 1);
    let again = ctx
        .store
        .establish_conversation(&dropped, &props(given))
        .await
        .unwrap();
    assert!(!again.is_new);
    assert_eq!(
        ctx.store
            .find_conversation(ctx.tenant, dropped.conversation.id)
            .await
            .unwrap(),
        None
    );
    assert!(again.routes.is_empty() && again.appended.is_empty());
    assert_eq!(again.conversation.id, c.id);
    assert_eq!(again.conversation.token_id, c.token_id);
    let mut merged = c.properties.clone();
    merged.insert(
        "profile".into(),
        json!({"email": "new@example.com", "phone": "123",
               "device": "Direct", "full name": c.properties["profile"]["full name"]}),
    );
    merged.insert("tags".into(), json!({"vip": "yes"}));
    assert_eq!(again.conversation.properties, merged);
    let stored_now = ctx.conversation(c.id).await;
    assert_eq!(stored_now.properties, merged);
    assert_eq!(stored_now.opened, c.opened);
    // Without properties: as it is.
    let plain = ctx.establish(&customer, "cust-1", json!({})).await;
    assert!(!plain.is_new);
    assert_eq!(plain.conversation.properties, merged);
    assert_eq!(
        ctx.store
            .integration_activities(opened.id, None, 0, 100)
            .await
            .unwrap()
            .len(),
        1,
        "a second establish stores nothing"
    );

    // Another binding, or the same binding on another integration: other conversations.
    let customer2 = ctx.add(direct("Customer 2", "Customer")).await;
    let other_binding = ctx.establish(&customer, "cust-2", json!({})).await;
    let other_integration = ctx.establish(&customer2, "cust-1", json!({})).await;
    assert!(other_binding.is_new && other_integration.is_new);
    let ids: BTreeSet<_> = [
        c.id,
        other_binding.conversation.id,
        other_integration.conversation.id,
    ]
    .into();
    assert_eq!(ids.len(), 3);
    assert_eq!(other_integration.conversation.integration_id, customer2.id);
    assert_ne!(other_binding.conversation.token_id, c.token_id);

    // Another tenant sees none of it.
    let stranger = tenant(&ctx.store).await;
    assert!(matches!(
        ctx.store.get_conversation(stranger, c.id).await,
        Err(Error::NotFound)
    ));
    assert_eq!(
        ctx.store.find_conversation(stranger, c.id).await.unwrap(),
        None
    );
    let mut forged = ctx.closing(&c, ConversationReason::Api, None).await;
    assert_eq!(forged.routes.len(), 1);
    forged.read.tenant_id = stranger;
    assert!(matches!(
        ctx.store.close_conversation(&forged).await,
        Err(Error::NotFound)
    ));
    assert!(ctx.conversation(c.id).await.is_open());
    assert!(matches!(
        ctx.store
            .get_conversation(ctx.tenant, ConversationId::new())
            .await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        ctx.close(ConversationId::new(), ConversationReason::Api, None)
            .await,
        Err(Error::NotFound)
    ));

    // Close: the `conversation:closed` System gets its copy; closing again changes nothing.
    let done = ctx
        .close(c.id, ConversationReason::Api, None)
        .await
        .unwrap();
    assert!(done.closed_now);
    assert_eq!(done.conversation.state, ConversationState::Closed);
    assert!(done.conversation.closed.unwrap() >= c.opened);
    assert_eq!(done.appended.len(), 1);
    assert_eq!(recipients(&done.appended[0]), vec![closed.id]);
    assert_eq!(
        done.appended[0].activities[0].payload,
        Payload::Event(Event::Conversation {
            status: ConversationStatus::Closed,
            reason: ConversationReason::Api,
        })
    );
    assert!(done.appended[0].event_id > opened_copy.event_id);
    assert_eq!(ctx.conversation(c.id).await, done.conversation);
    let twice = ctx
        .close(c.id, ConversationReason::Api, None)
        .await
        .unwrap();
    assert!(!twice.closed_now);
    assert!(twice.routes.is_empty() && twice.appended.is_empty());
    assert_eq!(twice.conversation, done.conversation);
    assert_eq!(
        ctx.store
            .integration_activities(closed.id, None, 0, 100)
            .await
            .unwrap()
            .len(),
        1
    );

    // Closes racing each other: one closes it, the others find it closed.
    let racing = ctx
        .establish(&customer, "race", json!({}))
        .await
        .conversation;
    // Each read it open and built its routes before any of them wrote.
    let mut closings = Vec::new();
    for _ in 0..4 {
        closings.push(ctx.closing(&racing, ConversationReason::Api, None).await);
    }
    let closers: Vec<_> = closings
        .into_iter()
        .map(|closing| {
            let store = ctx.store.clone();
            tokio::spawn(async move {
                close_done(store.close_conversation(&closing).await.unwrap()).closed_now
            })
        })
        .collect();
    let mut closed_now = 0;
    for c in closers {
        closed_now += usize::from(c.await.unwrap());
    }
    assert_eq!(closed_now, 1);
    assert_eq!(
        ctx.store
            .integration_activities(closed.id, Some(racing.id), 0, 100)
            .await
            .unwrap()
            .len(),
        1,
        "one conversation:closed"
    );

    // After a close, the same binding opens a new conversation, with fresh properties.
    let reopened = ctx.establish(&customer, "cust-1", json!({})).await;
    assert!(reopened.is_new);
    assert_ne!(reopened.conversation.id, c.id);
    assert_ne!(reopened.conversation.token_id, c.token_id);
    assert!(!reopened.conversation.properties.contains_key("crm"));
    assert_eq!(reopened.appended.len(), 1);
    assert!(ctx.conversation(reopened.conversation.id).await.is_open());
    assert_eq!(
        ctx.conversation(c.id).await.state,
        ConversationState::Closed
    );
    let opened_ids = event_ids(
        &ctx.store
            .integration_activities(opened.id, None, 0, 100)
            .await
            .unwrap(),
    );
    // c, cust-2, Customer 2's, the raced one and the reopened one.
    assert_eq!(opened_ids.len(), 5);
    assert!(opened_ids.windows(2).all(|w| w[0] < w[1]));
}

async fn concurrent_establishes_of_one_binding_share_one_conversation(db: &TestDb) {
    let ctx = Ctx::new(db).await;
    let customer = ctx.add(direct("Customer", "Customer")).await;
    ctx.add(direct("Agent", "Agent")).await;
    let opened = ctx.add(system("Opened", &["conversation:opened"])).await;

    // Each prepared its own conversation and routes before any of them wrote.
    let mut prepared = Vec::new();
    for i in 0..8 {
        let given = json!({ "tags": { format!("k{i}"): "v" } });
        prepared.push((ctx.prepare(&customer, "shared", &given).await, props(given)));
    }
    let tasks: Vec<_> = prepared
        .iter()
        .cloned()
        .map(|(new, given)| {
            let store = ctx.store.clone();
            tokio::spawn(async move { store.establish_conversation(&new, &given).await.unwrap() })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let ids: BTreeSet<_> = results.iter().map(|r| r.conversation.id).collect();
    assert_eq!(ids.len(), 1, "one conversation for one binding");
    assert_eq!(results.iter().filter(|r| r.is_new).count(), 1);
    let id = results[0].conversation.id;
    assert_eq!(
        ctx.store
            .integration_activities(opened.id, None, 0, 100)
            .await
            .unwrap()
            .len(),
        1,
        "one conversation:opened"
    );
    // No merge was lost.
    let tags = ctx.conversation(id).await.properties["tags"].clone();
    let keys: BTreeSet<_> = tags.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, (0..8).map(|i| format!("k{i}")).collect());
}

// ---------------------------------------------------------------------------------------------
// eventId

/// Returns once the wall clock reads past `event_id` (ids may run ahead of it after a burst).
async fn clock_past(event_id: Millis) {
    while now_millis() <= event_id {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn event_ids_increase_within_a_hub_and_follow_the_clock(db: &TestDb) {
    let ctx = Ctx::new(db).await;
    let customer = ctx.add(direct("Customer", "Customer")).await;
    let agent = ctx.add(direct("Agent", "Agent")).await;
    let audit = ctx
        .add(system("Audit", &["message", "conversation:opened"]))
        .await;
    let a = ctx.establish(&customer, "a", json!({})).await;
    let b = ctx.establish(&customer, "b", json!({})).await;
    let mut sent = vec![a.appended[0].event_id, b.appended[0].event_id];
    assert!(sent[1] > sent[0]);

    // Across the hub's conversations, each new activity has a greater id; all its copies share it.
    for i in 0..10 {
        let id = if i % 2 == 0 {
            a.conversation.id
        } else {
            b.conversation.id
        };
        let got = ctx.send(id, text(&format!("m{i}"))).await;
        assert!(got.event_id > *sent.last().unwrap());
        assert_eq!(recipients(&got), vec![agent.id, audit.id]);
        assert!(got.activities.iter().all(|x| x.event_id == got.event_id));
        sent.push(got.event_id);
    }

    // Once the clock is past them, an id is the clock.
    clock_past(*sent.last().unwrap()).await;
    let before = now_millis();
    let got = ctx.send(a.conversation.id, text("on time")).await;
    let after = now_millis();
    assert!(
        before <= got.event_id && got.event_id <= after,
        "{before} <= {} <= {after}",
        got.event_id
    );
    sent.push(got.event_id);

    // One call, many routes: consecutive ids from the clock on, running ahead of it.
    let conversation = ctx.conversation(a.conversation.id).await;
    let members = ctx.members().await;
    let route = |t: &str| {
        let inbound = validate_inbound(&text(t)).unwrap();
        routing::route(ctx.hub.status, &members, &conversation.view(), &inbound).unwrap()
    };
    let routes: Vec<Route> = (0..50).map(|i| route(&format!("batch {i}"))).collect();
    clock_past(*sent.last().unwrap()).await;
    let before = now_millis();
    let batch = appended(
        ctx.store
            .append_activities(&conversation, &routes, None, &no_answer)
            .await
            .unwrap(),
    );
    assert_eq!(batch.len(), 50);
    let first = batch[0].event_id;
    assert!(first >= before && first > *sent.last().unwrap());
    for (i, x) in batch.iter().enumerate() {
        assert_eq!(x.event_id, first + i as Millis, "consecutive ids");
        assert_eq!(recipients(x), vec![agent.id, audit.id]);
        assert!(x.activities.iter().all(|c| c.event_id == x.event_id));
        sent.push(x.event_id);
    }
    assert!(batch[49].event_id >= before + 49);

    // A tight loop (more than one activity per millisecond): still strictly increasing, and
    // never below the clock.
    for i in 0..200 {
        let before = now_millis();
        let got = appended(
            ctx.store
                .append_activities(
                    &conversation,
                    &[route(&format!("tight {i}"))],
                    None,
                    &no_answer,
                )
                .await
                .unwrap(),
        );
        assert!(got[0].event_id > *sent.last().unwrap());
        assert!(got[0].event_id >= before);
        sent.push(got[0].event_id);
    }

    // What the System got is exactly what was appended, in order.
    let read = ctx
        .store
        .integration_activities(audit.id, None, 0, 10_000)
        .await
        .unwrap();
    assert_eq!(event_ids(&read), sent);
    assert!(read.iter().all(|r| r.hub_id == ctx.hub.id));

    // Another hub has a clock of its own: it does not run ahead with this one.
    let other = Ctx::new(db).await;
    let other_customer = other.add(direct("Customer", "Customer")).await;
    other.add(direct("Agent", "Agent")).await;
    let c = other.establish(&other_customer, "x", json!({})).await;
    let before = now_millis();
    let got = other.send(c.conversation.id, text("hi")).await;
    assert!(before <= got.event_id && got.event_id <= now_millis());
}

async fn concurrent_appends_get_distinct_ids_in_commit_order(db: &TestDb) {
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    let ctx = Ctx::new(db).await;
    let customer = ctx.add(direct("Customer", "Customer")).await;
    let agent = ctx.add(direct("Agent", "Agent")).await;
    let members = ctx.members().await;
    let mut conversations = Vec::new();
    for i in 0..WRITERS {
        conversations.push(
            ctx.establish(&customer, &format!("c{i}"), json!({}))
                .await
                .conversation,
        );
    }

    // A reader during the appends: what it sees of the hub is always a prefix (no smaller id
    // missing once a larger one is visible).
    // Halfway, the writers wait for one snapshot taken while they are appending, so the check
    // below never passes on snapshots taken only before or after the appends.
    let done = Arc::new(AtomicBool::new(false));
    let (mid_append, mid_append_seen) = tokio::sync::watch::channel(0usize);
    let reader = {
        let (store, done, agent) = (ctx.store.clone(), done.clone(), agent.id);
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !done.load(Ordering::SeqCst) {
                let read = store
                    .integration_activities(agent, None, 0, 10_000)
                    .await
                    .unwrap();
                if !read.is_empty() && read.len() < WRITERS * EACH {
                    mid_append.send_modify(|n| *n += 1);
                }
                seen.push(event_ids(&read));
            }
            seen
        })
    };
    let writers: Vec<_> = conversations
        .iter()
        .cloned()
        .map(|c| {
            let (store, members, status) = (ctx.store.clone(), members.clone(), ctx.hub.status);
            let mut mid_append_seen = mid_append_seen.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for k in 0..EACH {
                    if k == EACH / 2 {
                        tokio::time::timeout(
                            Duration::from_secs(60),
                            mid_append_seen.wait_for(|n| *n > 0),
                        )
                        .await
                        .expect("the reader took no snapshot while the writers were appending")
                        .unwrap();
                    }
                    let inbound = validate_inbound(&text(&format!("{} {k}", c.binding))).unwrap();
                    let route = routing::route(status, &members, &c.view(), &inbound).unwrap();
                    let got = appended(
                        store
                            .append_activities(&c, &[route], None, &no_answer)
                            .await
                            .unwrap(),
                    );
                    ids.push((got[0].event_id, c.id, format!("{} {k}", c.binding)));
                }
                ids
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in writers {
        let ids = w.await.unwrap();
        assert!(ids.windows(2).all(|p| p[0].0 < p[1].0));
        all.extend(ids);
    }
    done.store(true, Ordering::SeqCst);
    let snapshots = reader.await.unwrap();

    all.sort();
    let sorted: Vec<Millis> = all.iter().map(|x| x.0).collect();
    let distinct: BTreeSet<_> = sorted.iter().collect();
    assert_eq!(distinct.len(), WRITERS * EACH, "every eventId is distinct");

    // Read back: all of them, ascending, each copy the one appended.
    let read = ctx
        .store
        .integration_activities(agent.id, None, 0, 10_000)
        .await
        .unwrap();
    assert_eq!(event_ids(&read), sorted);
    for (r, (id, conversation, label_sent)) in read.iter().zip(&all) {
        assert_eq!((r.event_id, r.conversation_id), (*id, *conversation));
        assert_eq!(&label(&r.activity), label_sent);
        assert_eq!(activity(&r.activity).event_id, *id);
    }
    // A cursor in the middle gives exactly the rest.
    let mid = sorted[WRITERS * EACH / 2];
    let rest = ctx
        .store
        .integration_activities(agent.id, None, mid, 10_000)
        .await
        .unwrap();
    assert_eq!(event_ids(&rest), sorted[WRITERS * EACH / 2 + 1..]);

    // Commit order: every snapshot the reader took was a prefix of the final order.
    assert!(!snapshots.is_empty());
    for snapshot in &snapshots {
        assert_eq!(
            snapshot[..],
            sorted[..snapshot.len()],
            "a reader saw a larger eventId before a smaller one"
        );
    }
    let partial = snapshots
        .iter()
        .filter(|s| !s.is_empty() && s.len() < sorted.len())
        .count();
    assert!(partial > 0, "no snapshot was taken while appending");
}

// ---------------------------------------------------------------------------------------------
// append_activities

/// Many appends at once, over two tenants' hubs, fall into shared transactions (group commit):
/// each still gets its own outcome (a closed conversation, or one named under another tenant,
/// is `Closed` and stores nothing), every hub's eventIds stay distinct and in order per
/// conversation, and every webhook recipient gets one delivery per copy.
async fn appends_that_share_a_group_commit_keep_their_own_outcome(db: &TestDb) {
    const CONVERSATIONS: usize = 4;
    const EACH: usize = 24;
    let mut jobs = Vec::new();
    let mut expected = Vec::new();
    for _ in 0..2 {
        let ctx = Ctx::new(db).await;
        let customer = ctx.add(direct("Customer", "Customer")).await;
        ctx.add(direct("Agent", "Agent")).await;
        let crm = ctx.add(system("CRM", &["message:customer"])).await;
        let mut open = Vec::new();
        for i in 0..CONVERSATIONS {
            open.push(
                ctx.establish(&customer, &format!("g{i}"), json!({}))
                    .await
                    .conversation,
            );
        }
        let closed = ctx
            .establish(&customer, "closed", json!({}))
            .await
            .conversation;
        let route = ctx.route(&closed, text("too late")).await;
        ctx.close(closed.id, ConversationReason::Api, None)
            .await
            .unwrap();
        let mut forged = open[0].clone();
        forged.tenant_id = tenant(&ctx.store).await;
        for k in 0..EACH {
            for c in &open {
                let route = ctx.route(c, text(&format!("{} {k}", c.binding))).await;
                jobs.push((ctx.store.clone(), c.clone(), route, true));
            }
            jobs.push((ctx.store.clone(), closed.clone(), route.clone(), false));
            jobs.push((ctx.store.clone(), forged.clone(), route.clone(), false));
        }
        expected.push((ctx, open, crm));
    }

    // All at once, so that they queue behind each other's commits.
    let barrier = Arc::new(tokio::sync::Barrier::new(jobs.len()));
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(|(store, c, route, open)| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let outcome = store
                    .append_activities(&c, &[route], None, &no_answer)
                    .await
                    .unwrap();
                (c.id, open, outcome)
            })
        })
        .collect();
    let mut per_conversation: std::collections::HashMap<ConversationId, Vec<Millis>> =
        std::collections::HashMap::new();
    for t in tasks {
        let (id, open, outcome) = t.await.unwrap();
        if open {
            let got = appended(outcome);
            per_conversation
                .entry(id)
                .or_default()
                .push(got[0].event_id);
        } else {
            assert_eq!(outcome, AppendOutcome::Closed);
        }
    }

    for (ctx, open, crm) in &expected {
        let mut hub_ids = BTreeSet::new();
        for c in open {
            let ids = &per_conversation[&c.id];
            assert_eq!(ids.len(), EACH);
            hub_ids.extend(ids.iter().copied());
            // Stored: exactly what was answered, for the customer's side.
            let stored = ctx
                .store
                .conversation_activities(
                    ctx.tenant,
                    c.id,
                    IntegrationType::Customer,
                    0,
                    count_bound(1000),
                )
                .await
                .unwrap()
                .bodies;
            let mut answered = ids.clone();
            answered.sort_unstable();
            let stored_ids: Vec<Millis> = stored.iter().map(|s| activity(s).event_id).collect();
            assert_eq!(stored_ids, answered);
        }
        assert_eq!(
            hub_ids.len(),
            CONVERSATIONS * EACH,
            "eventIds are distinct in a hub"
        );
        let deliveries = ctx
            .store
            .list_deliveries(
                ctx.tenant,
                Some(crm.id),
                None,
                switchboard_domain::paging::PageRequest {
                    number: 1,
                    size: 1000,
                },
            )
            .await
            .unwrap();
        assert_eq!(deliveries.total, (CONVERSATIONS * EACH) as u64);
    }
}

async fn append_to_a_closed_conversation_stores_nothing(db: &TestDb) {
    let ctx = Ctx::new(db).await;
    let customer = ctx.add(direct("Customer", "Customer")).await;
    let agent = ctx.add(direct("Agent", "Agent")).await;
    let c = ctx.establish(&customer, "b", json!({})).await.conversation;
    let route = ctx.route(&c, text("too late")).await;
    assert_eq!(recipients_of(&route), vec![agent.id]);

    ctx.close(c.id, ConversationReason::Api, None)
        .await
        .unwrap();
    let claim = Idempotency {
        key: unique("key"),
        request_hash: "hash".to_owned(),
    };
    // The conversation the caller read was open; it was closed meanwhile.
    let outcome = ctx
        .store
        .append_activities(&c, &[route], Some(&claim), &|_: &[Appended]| {
            "answer".to_owned()
        })
        .await
        .unwrap();
    assert_eq!(outcome, AppendOutcome::Closed);
    assert!(ctx
        .store
        .integration_activities(agent.id, None, 0, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(ctx
        .store
        .conversation_activities(
            ctx.tenant,
            c.id,
            IntegrationType::Customer,
            0,
            count_bound(100)
        )
        .await
        .unwrap()
        .bodies
        .is_empty());
    assert_eq!(
        ctx.store
            .find_idempotency(ctx.tenant, &claim.key, now_millis())
            .await
            .unwrap(),
        None,
        "the key of a refused append is not kept"
    );
    let after = ctx.conversation(c.id).await;
    assert_eq!(after.state, ConversationState::Closed);
    assert_eq!(after.last_activity, c.last_activity);

    // A conversation named under another tenant is not appended to either.
    let open = ctx.establish(&customer, "b", json!({})).await.conversation;
    let route = ctx.route(&open, text("wrong tenant")).await;
    let mut forged = open.clone();
    forged.tenant_id = tenant(&ctx.store).await;
    assert_eq!(
        ctx.store
            .append_activities(&forged, &[route], None, &no_answer)
            .await
            .unwrap(),
        AppendOutcome::Closed
    );
    assert!(ctx
        .store
        .integration_activities(agent.id, None, 0, 100)
        .await
        .unwrap()
        .is_empty());
}

fn recipients_of(route: &Route) -> Vec<IntegrationId> {
    route.recipients.iter().map(|r| r.integration_id).collect()
}

fn answer(a: &[Appended]) -> String {
    json!({ "eventId": a[0].event_id }).to_string()
}

async fn idempotency_key_replays_the_first_answer(db: &TestDb) {
    let ctx = Ctx::new(db).await;
    let customer = ctx.add(direct("Customer", "Customer")).await;
    let agent = ctx.add(direct("Agent", "Agent")).await;
    let c = ctx.establish(&customer, "b", json!({})).await.conversation;
    let key = unique("idem");
    let claim = Idempotency {
        key: key.clone(),
        request_hash: "hash-1".to_owned(),
    };

    let first = appended(
        ctx.store
            .append_activities(
                &c,
                &[ctx.route(&c, text("once")).await],
                Some(&claim),
                &answer,
            )
            .await
            .unwrap(),
    );
    let first_answer = answer(&first);
    assert_eq!(
        ctx.store
            .find_idempotency(ctx.tenant, &key, now_millis())
            .await
            .unwrap(),
        Some(("hash-1".to_owned(), first_answer.clone()))
    );
    let touched = ctx.conversation(c.id).await.last_activity;

    // The same key again: the first answer, nothing stored.
    let second = ctx
        .store
        .append_activities(
            &c,
            &[ctx.route(&c, text("once")).await],
            Some(&claim),
            &answer,
        )
        .await
        .unwrap();
    let replay = AppendOutcome::Replay {
        request_hash: "hash-1".to_owned(),
        response: first_answer.clone(),
    };
    assert_eq!(second, replay);
    // With another request hash: the same replay (the caller tells it is a conflict).
    let other = Idempotency {
        key: key.clone(),
        request_hash: "hash-2".to_owned(),
    };
    assert_eq!(
        ctx.store
            .append_activities(
                &c,
                &[ctx.route(&c, text("other")).await],
                Some(&other),
                &answer
            )
            .await
            .unwrap(),
        replay
    );
    let stored = ctx
        .store
        .integration_activities(agent.id, None, 0, 100)
        .await
        .unwrap();
    assert_eq!(event_ids(&stored), vec![first[0].event_id]);
    assert_eq!(ctx.conversation(c.id).await.last_activity, touched);

    // Several at once with a new key: one is stored, the others replay its answer.
    let key2 = unique("idem");
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let (store, c) = (ctx.store.clone(), c.clone());
            let (tenant, hub) = (ctx.tenant, ctx.hub.clone());
            let claim = Idempotency {
                key: key2.clone(),
                request_hash: "same".to_owned(),
            };
            tokio::spawn(async move {
                let members: Vec<_> = store
                    .list_hub_integrations(tenant, hub.id, None)
                    .await
                    .unwrap()
                    .iter()
                    .map(HubMember::from_integration)
                    .collect();
                let inbound = validate_inbound(&text(&format!("race {i}"))).unwrap();
                let route = routing::route(hub.status, &members, &c.view(), &inbound).unwrap();
                store
                    .append_activities(&c, &[route], Some(&claim), &answer)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let stored: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            AppendOutcome::Appended(a) => Some(a.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(stored.len(), 1, "{outcomes:?}");
    let winner = answer(&stored[0]);
    for o in &outcomes {
        if !matches!(o, AppendOutcome::Appended(_)) {
            assert_eq!(
                *o,
                AppendOutcome::Replay {
                    request_hash: "same".to_owned(),
                    response: winner.clone(),
                }
            );
        }
    }
    assert_eq!(
        ctx.store
            .integration_activities(agent.id, None, 0, 100)
            .await
            .unwrap()
            .len(),
        2
    );

    // Keys are per tenant: the same key in another tenant is its own.
    let other_ctx = Ctx::new(db).await;
    let other_customer = other_ctx.add(direct("Customer", "Customer")).await;
    let other_agent = other_ctx.add(direct("Agent", "Agent")).await;
    let oc = other_ctx
        .establish(&other_customer, "b", json!({}))
        .await
        .conversation;
    assert_eq!(
        other_ctx
            .store
            .find_idempotency(other_ctx.tenant, &key, now_millis())
            .await
            .unwrap(),
        None
    );
    let theirs = appended(
        other_ctx
            .store
            .append_activities(
                &oc,
                &[other_ctx.route(&oc, text("mine")).await],
                Some(&claim),
                &answer,
            )
            .await
            .unwrap(),
    );
    assert_eq!(
        other_ctx
            .store
            .integration_activities(other_agent.id, None, 0, 100)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        ctx.store
            .find_idempotency(other_ctx.tenant, &key, now_millis())
            .await
            .unwrap(),
        Some(("hash-1".to_owned(), answer(&theirs)))
    );
    assert_eq!(
        ctx.store
            .find_idempotency(ctx.tenant, &key, now_millis())
            .await
            .unwrap(),
        Some(("hash-1".to_owned(), first_answer))
    );

    // Without a key, a repeat is a new activity.
    ctx.send(c.id, text("again")).await;
    ctx.send(c.id, text("again")).await;
    assert_eq!(
        ctx.store
            .integration_activities(agent.id, None, 0, 100)
            .await
            .unwrap()
            .len(),
        4
    );
}

async fn idempotency_keys_expire_after_a_day(db: &TestDb) {
    let ctx = Ctx::new(db).await;
    let customer = ctx.add(direct("Customer", "Customer")).await;
    let agent = ctx.add(direct("Agent", "Agent")).await;
    let c = ctx.establish(&customer, "b", json!({})).await.conversation;
    let key = unique("idem");
    let claim = Idempotency {
        key: key.clone(),
        request_hash: "hash-1".to_owned(),
    };
    let before = now_millis();
    let first = appended(
        ctx.store
            .append_activities(
                &c,
                &[ctx.route(&c, text("one")).await],
                Some(&claim),
                &answer,
            )
            .await
            .unwrap(),
    );
    let after = now_millis();
    let found = Some(("hash-1".to_owned(), answer(&first)));
    // Kept for 24 hours from its use, not a millisecond more.
    assert_eq!(
        ctx.store
            .find_idempotency(
                ctx.tenant,
                &key,
                after + IDEMPOTENCY_TTL_MS - (after - before) - 1
            )
            .await
            .unwrap(),
        found
    );
    assert_eq!(
        ctx.store
            .find_idempotency(ctx.tenant, &key, after + IDEMPOTENCY_TTL_MS)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        ctx.store
            .find_idempotency(ctx.tenant, &key, now_millis() + 25 * 3_600_000)
            .await
            .unwrap(),
        None
    );

    // Used 25 hours ago: gone, and a new request with the key takes it over.
    backdate_idempotency_key(db, ctx.tenant, &key, 25 * 3_600_000).await;
    assert_eq!(
        ctx.store
            .find_idempotency(ctx.tenant, &key, now_millis())
            .await
            .unwrap(),
        None
    );
    let claim2 = Idempotency {
        key: key.clone(),
        request_hash: "hash-2".to_owned(),
    };
    let second = appended(
        ctx.store
            .append_activities(
                &c,
                &[ctx.route(&c, text("two")).await],
                Some(&claim2),
                &answer,
            )
            .await
            .unwrap(),
    );
    assert!(second[0].event_id > first[0].event_id);
    assert_eq!(
        ctx.store
            .find_idempotency(ctx.tenant, &key, now_millis())
            .await
            .unwrap(),
        Some(("hash-2".to_owned(), answer(&second)))
    );
    assert_eq!(
        ctx.store
            .integration_activities(agent.id, None, 0, 100)
            .await
            .unwrap()
            .len(),
        2
    );
    // Taken over, it replays its new answer.
    assert_eq!(
        ctx.store
            .append_activities(
                &c,
                &[ctx.route(&c, text("two")).await],
                Some(&claim2),
                &answer
            )
            .await
            .unwrap(),
        AppendOutcome::Replay {
            request_hash: "hash-2".to_owned(),
            response: answer(&second),
        }
    );

    // The sweep forgets expired keys and keeps fresh ones.
    let fresh = unique("idem");
    let fresh_claim = Idempotency {
        key: fresh.clone(),
        request_hash: "fresh".to_owned(),
    };
    let kept = appended(
        ctx.store
            .append_activities(
                &c,
                &[ctx.route(&c, text("three")).await],
                Some(&fresh_claim),
                &answer,
            )
            .await
            .unwrap(),
    );
    let used = now_millis();
    backdate_idempotency_key(db, ctx.tenant, &key, 25 * 3_600_000).await;
    ctx.store.sweep_expired(now_millis()).await.unwrap();
    // Asked as of 25 h ago, the swept key would still have been valid: it is gone, not hidden.
    assert_eq!(
        ctx.store
            .find_idempotency(ctx.tenant, &key, used - 25 * 3_600_000 + 1)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        ctx.store
            .find_idempotency(ctx.tenant, &fresh, now_millis())
            .await
            .unwrap(),
        Some(("fresh".to_owned(), answer(&kept)))
    );
}

// ---------------------------------------------------------------------------------------------
// Routing as stored

async fn handover_release_and_takeover_persist_the_mode(db: &TestDb) {
    let ctx = Ctx::new(db).await;
    let customer = ctx.add(direct("Customer", "Customer")).await;
    let bot = ctx.add(direct("Bot", "Bot")).await;
    let agent = ctx.add(direct("Agent", "Agent")).await;
    let c = ctx.establish(&customer, "b", json!({})).await.conversation;
    assert_eq!(c.mode, Mode::Bot);
    assert_eq!(ctx.conversation(c.id).await.mode, Mode::Bot);
    let id = c.id;

    assert_eq!(recipients(&ctx.send(id, text("hello")).await), vec![bot.id]);
    let handover = ctx
        .route(
            &ctx.conversation(id).await,
            event_from(Some(&bot), "handover"),
        )
        .await;
    assert_eq!(handover.new_mode, Some(Mode::Agent));
    ctx.send(id, event_from(Some(&bot), "handover")).await;
    assert_eq!(ctx.conversation(id).await.mode, Mode::Agent);
    assert_eq!(
        recipients(&ctx.send(id, text("human?")).await),
        vec![agent.id]
    );

    ctx.send(id, event_from(Some(&agent), "release")).await;
    assert_eq!(ctx.conversation(id).await.mode, Mode::Bot);
    assert_eq!(recipients(&ctx.send(id, text("bot?")).await), vec![bot.id]);

    ctx.send(id, event_from(Some(&agent), "takeover")).await;
    let now = ctx.conversation(id).await;
    assert_eq!(now.mode, Mode::Agent);
    assert!(now.is_open());
    // A re-establish answers the stored mode.
    let again = ctx.establish(&customer, "b", json!({})).await;
    assert_eq!(again.conversation.mode, Mode::Agent);
}

/// A bound of `count` copies and no byte limit.
fn count_bound(count: u64) -> CopyBound {
    CopyBound {
        count,
        bytes: u64::MAX,
    }
}

async fn conversation_activities_filter_by_party_and_page(db: &TestDb) {
    let ctx = Ctx::new(db).await;
    let customer = ctx
        .add(direct_with(
            "Customer",
            "Customer",
            json!({"echo": true, "start": [{"type": "text", "text": "Welcome"}]}),
        ))
        .await;
    let bot = ctx.add(direct("Bot", "Bot")).await;
    let agent = ctx.add(direct("Agent", "Agent")).await;
    let audit = ctx
        .add(system(
            "Audit",
            &["message", "event", "conversation:opened"],
        ))
        .await;
    let est = ctx.establish(&customer, "b", json!({})).await;
    // Opened (to the System) and the start message (to the customer and the System).
    assert_eq!(est.appended.len(), 2);
    assert_eq!(recipients(&est.appended[1]), vec![customer.id, audit.id]);
    let id = est.conversation.id;

    let c1 = ctx.send(id, text("c1")).await;
    assert_eq!(recipients(&c1), vec![bot.id, audit.id, customer.id]);
    assert!(c1.activities[2].is_echo);
    let b1 = ctx.send(id, text_from(Some(&bot), "b1")).await;
    ctx.send(id, event_from(Some(&bot), "handover")).await;
    let c2 = ctx.send(id, text("c2")).await;
    assert_eq!(recipients(&c2), vec![agent.id, audit.id, customer.id]);
    ctx.send(id, text_from(Some(&agent), "a1")).await;
    ctx.send(id, event_from(None, "typing_on")).await;
    // Another conversation of the hub is not mixed in.
    let other = ctx.establish(&customer, "other", json!({})).await;
    ctx.send(other.conversation.id, text("elsewhere")).await;

    let list = |t: IntegrationType, after: Millis, limit: u64| {
        let store = ctx.store.clone();
        let tenant = ctx.tenant;
        async move {
            store
                .conversation_activities(tenant, id, t, after, count_bound(limit))
                .await
                .unwrap()
                .bodies
        }
    };
    let labels = |copies: &[String]| copies.iter().map(|c| label(c)).collect::<Vec<_>>();

    // System and echo copies left out, oldest first.
    let all = list(IntegrationType::Customer, 0, 100).await;
    assert_eq!(
        labels(&all),
        ["Welcome", "c1", "b1", "handover", "c2", "a1", "typing_on"]
    );
    let parsed: Vec<Activity> = all.iter().map(|c| activity(c)).collect();
    assert!(parsed.iter().all(|a| !a.is_echo));
    assert!(parsed
        .iter()
        .all(|a| a.recipient.integration_type != IntegrationType::System));
    assert!(parsed.windows(2).all(|w| w[0].event_id < w[1].event_id));
    assert_eq!(parsed[0].flow_process, FlowProcess::AutoReply);
    assert_eq!(
        parsed[0].event_trigger,
        EventTrigger::Message(SenderRole::Bot)
    );
    assert_eq!(parsed[0].sender.token_id, format!("{id}.{}", customer.id));
    assert_eq!(parsed[1], c1.activities[0]);
    assert_eq!(parsed[2], b1.activities[0]);

    // By the sender's or the recipient's type.
    assert_eq!(
        labels(&list(IntegrationType::Bot, 0, 100).await),
        ["Welcome", "c1", "b1", "handover"]
    );
    assert_eq!(
        labels(&list(IntegrationType::Agent, 0, 100).await),
        ["c2", "a1", "typing_on"]
    );

    // After a cursor, and at most `limit`.
    assert_eq!(
        labels(&list(IntegrationType::Customer, b1.event_id, 100).await),
        ["handover", "c2", "a1", "typing_on"]
    );
    assert_eq!(
        labels(&list(IntegrationType::Customer, 0, 3).await),
        ["Welcome", "c1", "b1"]
    );
    assert_eq!(
        labels(&list(IntegrationType::Agent, c2.event_id, 1).await),
        ["a1"]
    );
    assert!(list(IntegrationType::Customer, parsed[6].event_id, 100)
        .await
        .is_empty());
    // No limit to speak of.
    assert_eq!(list(IntegrationType::Customer, 0, u64::MAX).await, all);

    // Not another tenant's.
    let stranger = tenant(&ctx.store).await;
    assert!(ctx
        .store
        .conversation_activities(stranger, id, IntegrationType::Customer, 0, count_bound(100))
        .await
        .unwrap()
        .bodies
        .is_empty());
}

async fn integration_activities_are_per_recipient(db: &TestDb) {
    let ctx = Ctx::new(db).await;
    let customer = ctx.add(direct("Customer", "Customer")).await;
    let agent1 = ctx.add(direct("Agent 1", "Agent")).await;
    let agent2 = ctx.add(direct("Agent 2", "Agent")).await;
    let audit = ctx.add(system("Audit", &["message"])).await;
    let c1 = ctx
        .establish(&customer, "one", json!({"crm": {"id": "1"}}))
        .await
        .conversation;
    let c2 = ctx
        .establish(&customer, "two", json!({}))
        .await
        .conversation;

    let sent = [
        ctx.send(c1.id, text("first")).await,
        ctx.send(c2.id, text("second")).await,
        ctx.send(c1.id, text("third")).await,
    ];
    for s in &sent {
        assert_eq!(recipients(s), vec![agent1.id, agent2.id, audit.id]);
    }

    let of = |i: IntegrationId, c: Option<ConversationId>, after: Millis, limit: u64| {
        let store = ctx.store.clone();
        async move {
            store
                .integration_activities(i, c, after, limit)
                .await
                .unwrap()
        }
    };
    let ids: Vec<_> = sent.iter().map(|s| s.event_id).collect();
    for (k, agent) in [agent1.id, agent2.id].into_iter().enumerate() {
        let got = of(agent, None, 0, 100).await;
        assert_eq!(event_ids(&got), ids);
        for (item, s) in got.iter().zip(&sent) {
            assert_eq!(item.hub_id, ctx.hub.id);
            // Its own copy, as appended.
            assert_eq!(activity(&item.activity), s.activities[k]);
            assert_eq!(activity(&item.activity).recipient.integration_id, agent);
        }
        assert_eq!(
            got.iter().map(|i| i.conversation_id).collect::<Vec<_>>(),
            [c1.id, c2.id, c1.id]
        );
        let props1: Value = serde_json::from_str(&got[0].properties).unwrap();
        assert_eq!(props1, Value::Object(c1.properties.clone()));
        let props2: Value = serde_json::from_str(&got[1].properties).unwrap();
        assert_eq!(props2, Value::Object(c2.properties.clone()));
    }

    // One conversation, after a cursor, at most `limit`.
    assert_eq!(
        event_ids(&of(agent1.id, Some(c1.id), 0, 100).await),
        [ids[0], ids[2]]
    );
    assert_eq!(
        event_ids(&of(agent1.id, Some(c2.id), 0, 100).await),
        [ids[1]]
    );
    assert_eq!(
        event_ids(&of(agent1.id, Some(c1.id), ids[0], 100).await),
        [ids[2]]
    );
    assert_eq!(
        event_ids(&of(agent1.id, None, ids[0], 100).await),
        &ids[1..]
    );
    assert_eq!(event_ids(&of(agent1.id, None, 0, 2).await), &ids[..2]);
    assert_eq!(event_ids(&of(agent1.id, Some(c1.id), 0, 1).await), [ids[0]]);
    assert!(of(agent1.id, Some(ConversationId::new()), 0, 100)
        .await
        .is_empty());
    assert!(of(IntegrationId::new(), None, 0, 100).await.is_empty());
    assert_eq!(event_ids(&of(audit.id, None, 0, 100).await), ids);

    // The customer has received nothing yet; an agent's reply is its.
    assert!(of(customer.id, None, 0, 100).await.is_empty());
    let reply = ctx.send(c2.id, text_from(Some(&agent2), "reply")).await;
    let got = of(customer.id, None, 0, 100).await;
    assert_eq!(event_ids(&got), [reply.event_id]);
    assert_eq!(got[0].conversation_id, c2.id);
    assert_eq!(label(&got[0].activity), "reply");
    assert!(!event_ids(&of(agent2.id, None, 0, 100).await).contains(&reply.event_id));

    // The properties are the conversation's now.
    ctx.establish(&customer, "one", json!({"crm": {"id": "2"}}))
        .await;
    let got = of(agent1.id, Some(c1.id), 0, 100).await;
    let now: Value = serde_json::from_str(&got[0].properties).unwrap();
    assert_eq!(now["crm"]["id"], "2");
    assert_eq!(now["profile"], c1.properties["profile"]);
}

// ---------------------------------------------------------------------------------------------
// Dormancy, signatures, deletes

async fn idle_conversations_close_only_when_still_idle(db: &TestDb) {
    let sleepy = Ctx::with_dormancy(db, 1).await;
    let customer = sleepy.add(direct("Customer", "Customer")).await;
    sleepy.add(direct("Agent", "Agent")).await;
    let audit = sleepy.add(system("Audit", &["conversation:closed"])).await;
    let never = Ctx::new(db).await;
    let never_customer = never.add(direct("Customer", "Customer")).await;
    never.add(direct("Agent", "Agent")).await;
    // The longest dormancy there is: its days in milliseconds do not overflow.
    let patient = Ctx::with_dormancy(db, MAX_DORMANT_DAYS).await;
    let patient_customer = patient.add(direct("Customer", "Customer")).await;
    patient.add(direct("Agent", "Agent")).await;
    let p = patient
        .establish(&patient_customer, "p", json!({}))
        .await
        .conversation;
    // A hub of another number of days: its cutoff is its own.
    let slow = Ctx::with_dormancy(db, 2).await;
    let slow_customer = slow.add(direct("Customer", "Customer")).await;
    slow.add(direct("Agent", "Agent")).await;
    let c = slow
        .establish(&slow_customer, "c", json!({}))
        .await
        .conversation;
    tokio::time::sleep(Duration::from_millis(5)).await;

    let a = sleepy
        .establish(&customer, "a", json!({}))
        .await
        .conversation;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let b = sleepy
        .establish(&customer, "b", json!({}))
        .await
        .conversation;
    let n = never
        .establish(&never_customer, "n", json!({}))
        .await
        .conversation;
    tokio::time::sleep(Duration::from_millis(5)).await;
    sleepy.send(a.id, text("still here")).await;
    let a_now = sleepy.conversation(a.id).await;
    assert!(a_now.last_activity > a.last_activity && a_now.last_activity > b.last_activity);

    // The sweeper saw it idle, but an activity came in meanwhile: it stays open.
    let kept = sleepy
        .close_read(&a, ConversationReason::Dormant, Some(a.last_activity))
        .await
        .unwrap();
    assert!(!kept.closed_now);
    assert!(kept.routes.is_empty() && kept.appended.is_empty());
    assert_eq!(kept.conversation.state, ConversationState::Open);
    assert!(sleepy.conversation(a.id).await.is_open());
    assert!(sleepy
        .store
        .integration_activities(audit.id, None, 0, 100)
        .await
        .unwrap()
        .is_empty());

    // Two days on: both of the 1-day hub, longest idle first; none of the never-closing hub.
    let dormant = |now: Millis, limit: u64| {
        let store = sleepy.store.clone();
        let mine = [a.id, b.id, c.id, n.id, p.id];
        async move {
            store
                .dormant_conversations(now, limit)
                .await
                .unwrap()
                .into_iter()
                .filter(|c| mine.contains(&c.id))
                .map(|c| c.id)
                .collect::<Vec<_>>()
        }
    };
    let later = now_millis() + 2 * DAY;
    // Hubs of 1 and 2 days, merged longest idle first.
    assert_eq!(dormant(later, u64::MAX).await, [c.id, b.id, a.id]);
    assert_eq!(
        dormant(c.last_activity + 2 * DAY - 1, u64::MAX).await,
        [b.id, a.id]
    );
    assert!(
        slow.close(c.id, ConversationReason::Api, None)
            .await
            .unwrap()
            .closed_now
    );
    assert_eq!(dormant(later, u64::MAX).await, [b.id, a.id]);
    assert_eq!(
        sleepy
            .store
            .dormant_conversations(later, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    // Idle for exactly one day is dormant; a millisecond less is not.
    assert_eq!(dormant(b.last_activity + DAY, u64::MAX).await, [b.id]);
    assert!(dormant(b.last_activity + DAY - 1, u64::MAX)
        .await
        .is_empty());
    assert!(dormant(now_millis(), u64::MAX).await.is_empty());
    let listed = sleepy
        .store
        .dormant_conversations(later, u64::MAX)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().find(|c| c.id == b.id).unwrap(),
        &sleepy.conversation(b.id).await
    );

    // Closed as dormant while still idle: its System copy says so, and it is listed no more.
    let shut = sleepy
        .close(b.id, ConversationReason::Dormant, Some(b.last_activity))
        .await
        .unwrap();
    assert!(shut.closed_now);
    assert_eq!(shut.conversation.state, ConversationState::Closed);
    assert_eq!(
        shut.appended[0].activities[0].payload,
        Payload::Event(Event::Conversation {
            status: ConversationStatus::Closed,
            reason: ConversationReason::Dormant,
        })
    );
    assert_eq!(recipients(&shut.appended[0]), vec![audit.id]);
    assert_eq!(dormant(later, u64::MAX).await, [a.id]);

    // Leave nothing open behind in a shared database.
    let a_closed = sleepy
        .close(a.id, ConversationReason::Dormant, Some(a_now.last_activity))
        .await
        .unwrap();
    assert!(a_closed.closed_now);
    assert!(dormant(later, u64::MAX).await.is_empty());
    assert!(
        never
            .close(n.id, ConversationReason::Api, None)
            .await
            .unwrap()
            .closed_now
    );
    assert!(
        patient
            .close(p.id, ConversationReason::Api, None)
            .await
            .unwrap()
            .closed_now
    );
}

/// A close is prepared from the conversation as read: if it changed since (properties merged,
/// the mode handed over), the close stores nothing and says so; a last activity that moved
/// does not count, but the conversation never closes before it.
async fn a_close_stores_nothing_when_the_conversation_changed_since_it_was_read(db: &TestDb) {
    let ctx = Ctx::new(db).await;
    let customer = ctx.add(direct("Customer", "Customer")).await;
    let bot = ctx.add(direct("Bot", "Bot")).await;
    ctx.add(direct("Agent", "Agent")).await;
    let audit = ctx.add(system("Audit", &["conversation:closed"])).await;
    let c = ctx.establish(&customer, "b", json!({})).await.conversation;
    assert_eq!(c.mode, Mode::Bot);
    let closed_copies = || async {
        ctx.store
            .integration_activities(audit.id, None, 0, 100)
            .await
            .unwrap()
            .len()
    };
    let changed = |outcome: CloseOutcome| matches!(outcome, CloseOutcome::Changed);

    // Properties merged by an establish after the read.
    let stale = ctx.closing(&c, ConversationReason::Api, None).await;
    assert_eq!(stale.routes.len(), 1);
    let merged = ctx
        .establish(&customer, "b", json!({"tags": {"vip": "yes"}}))
        .await;
    assert!(!merged.is_new);
    assert!(changed(ctx.store.close_conversation(&stale).await.unwrap()));
    let now = ctx.conversation(c.id).await;
    assert!(now.is_open());
    assert_eq!(now.properties, merged.conversation.properties);
    assert_eq!(closed_copies().await, 0);

    // The mode handed over after the read.
    let read = ctx.conversation(c.id).await;
    let stale_mode = ctx.closing(&read, ConversationReason::Dormant, None).await;
    ctx.send(c.id, event_from(Some(&bot), "handover")).await;
    assert_eq!(ctx.conversation(c.id).await.mode, Mode::Agent);
    // As the sweeper would close it: still idle at the cutoff, but not as read.
    let stale_mode = Closing {
        idle_since: Some(now_millis()),
        ..stale_mode
    };
    assert!(changed(
        ctx.store.close_conversation(&stale_mode).await.unwrap()
    ));
    assert!(ctx.conversation(c.id).await.is_open());
    assert_eq!(closed_copies().await, 0);

    // Only its last activity moved since the read (a message came in): it closes, at that
    // message's time when that is later than the time the close was prepared for.
    let read = ctx.conversation(c.id).await;
    let mut closing = ctx.closing(&read, ConversationReason::Api, None).await;
    closing.at = read.last_activity;
    clock_past(read.last_activity).await;
    ctx.send(c.id, text("still here")).await;
    let active = ctx.conversation(c.id).await;
    assert!(active.last_activity > closing.at);
    let done = close_done(ctx.store.close_conversation(&closing).await.unwrap());
    assert!(done.closed_now);
    assert_eq!(
        done.conversation,
        Conversation {
            state: ConversationState::Closed,
            closed: Some(active.last_activity),
            ..active.clone()
        }
    );
    assert_eq!(ctx.conversation(c.id).await, done.conversation);
    assert_eq!(done.routes, closing.routes);
    assert_eq!(done.appended.len(), 1);
    assert!(done.appended[0].event_id >= active.last_activity);
    assert_eq!(closed_copies().await, 1);

    // A stale read of a conversation closed since: answered as it is, nothing stored.
    for stale in [&stale, &stale_mode] {
        let again = close_done(ctx.store.close_conversation(stale).await.unwrap());
        assert!(!again.closed_now);
        assert!(again.routes.is_empty() && again.appended.is_empty());
        assert_eq!(again.conversation, done.conversation);
    }
    assert_eq!(closed_copies().await, 1);

    // Unchanged: closed at the time it was prepared for.
    let d = ctx.establish(&customer, "d", json!({})).await.conversation;
    let closing = ctx.closing(&d, ConversationReason::Api, None).await;
    let done = close_done(ctx.store.close_conversation(&closing).await.unwrap());
    assert!(done.closed_now);
    assert_eq!(done.conversation.closed, Some(closing.at));
    assert_eq!(done.conversation.last_activity, d.last_activity);
    assert_eq!(closed_copies().await, 2);
}

async fn signatures_are_used_once(db: &TestDb) {
    let store = &db.store;
    let now = now_millis();
    let live = unique("signature");
    assert!(store.use_signature(&live, now + 300_000).await.unwrap());
    assert!(!store.use_signature(&live, now + 300_000).await.unwrap());
    // Already past its window when swept: forgotten, so usable again (the caller checks the
    // timestamp window itself).
    let old = unique("signature");
    assert!(store.use_signature(&old, now - 1).await.unwrap());
    assert!(!store.use_signature(&old, now - 1).await.unwrap());
    store.sweep_expired(now_millis()).await.unwrap();
    assert!(store.use_signature(&old, now + 300_000).await.unwrap());
    assert!(!store.use_signature(&old, now + 300_000).await.unwrap());
    // One still in its window survives the sweep.
    assert!(!store.use_signature(&live, now + 300_000).await.unwrap());
}

async fn deleting_an_integration_or_hub_removes_its_conversations(db: &TestDb) {
    let ctx = Ctx::new(db).await;
    let first = ctx.add(direct("Customer 1", "Customer")).await;
    let second = ctx.add(direct("Customer 2", "Customer")).await;
    let agent = ctx.add(direct("Agent", "Agent")).await;
    ctx.add(system("Audit", &["message", "conversation:opened"]))
        .await;
    let c1 = ctx.establish(&first, "x", json!({})).await.conversation;
    let c2 = ctx.establish(&second, "y", json!({})).await.conversation;
    ctx.send(c1.id, text("one")).await;
    ctx.send(c2.id, text("two")).await;
    let stale_route = ctx.route(&c1, text("late")).await;
    let stale_new = ctx.prepare(&first, "z", &json!({})).await;

    ctx.store
        .delete_integration(ctx.tenant, first.id)
        .await
        .unwrap();
    assert!(matches!(
        ctx.store.get_conversation(ctx.tenant, c1.id).await,
        Err(Error::NotFound)
    ));
    assert!(ctx.conversation(c2.id).await.is_open());
    assert!(ctx
        .store
        .integration_activities(agent.id, Some(c1.id), 0, 100)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ctx.store
            .integration_activities(agent.id, None, 0, 100)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(ctx
        .store
        .conversation_activities(
            ctx.tenant,
            c1.id,
            IntegrationType::Customer,
            0,
            count_bound(100)
        )
        .await
        .unwrap()
        .bodies
        .is_empty());
    // Whoever still holds it: an append is refused, a close not found, an establish too.
    assert_eq!(
        ctx.store
            .append_activities(&c1, &[stale_route], None, &no_answer)
            .await
            .unwrap(),
        AppendOutcome::Closed
    );
    assert!(matches!(
        ctx.close(c1.id, ConversationReason::Api, None).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        ctx.store
            .establish_conversation(&stale_new, &Map::new())
            .await,
        Err(Error::NotFound)
    ));

    ctx.store.delete_hub(ctx.tenant, ctx.hub.id).await.unwrap();
    assert!(matches!(
        ctx.store.get_conversation(ctx.tenant, c2.id).await,
        Err(Error::NotFound)
    ));
    assert!(ctx
        .store
        .integration_activities(agent.id, None, 0, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        ctx.try_establish(&second, "y", json!({})).await,
        Err(Error::NotFound)
    ));
}

/// Settles that share a group commit: successes are written in a few statements for all of them
/// and each passes its stream on to the next delivery; a retry keeps its stream's turn; a failure
/// passes it on too. Claims then give every delivery once, each stream in order. On a SQLite file
/// only: a claim looks at every tenant's deliveries, and the shared PostgreSQL test database
/// keeps other runs' pending ones (the multi-node webhook tests cover PostgreSQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settle_groups_pass_each_stream_on_in_order() {
    use switchboard_storage::{Attempt, Settle};

    let db = TestDb::sqlite().await;
    let ctx = Ctx::new(&db).await;
    let customer = ctx.add(direct("Customer", "Customer")).await;
    let _agent = ctx.add(direct("Agent", "Agent")).await;
    let audit = ctx.add(system("Audit", &["message"])).await;
    let mut conversations = Vec::new();
    for n in 0..6 {
        let c = ctx
            .establish(&customer, &format!("binding {n}"), json!({}))
            .await
            .conversation;
        conversations.push(c.id);
    }
    let mut sent: std::collections::HashMap<ConversationId, Vec<Millis>> = Default::default();
    for round in 0..4 {
        for c in &conversations {
            let a = ctx.send(*c, text(&format!("{round}"))).await;
            sent.entry(*c).or_default().push(a.event_id);
        }
    }

    let now = now_millis();
    let ok = |at: Millis| Attempt {
        at,
        status_code: Some(200),
        error: None,
        duration_ms: 1,
    };
    let mut got: std::collections::HashMap<ConversationId, Vec<Millis>> = Default::default();
    let mut retried_once = false;
    for pass in 0.. {
        assert!(pass < 50, "deliveries did not drain: {got:?}");
        let claimed = ctx
            .store
            .claim_deliveries(now, 60_000, 100, &[])
            .await
            .unwrap();
        if claimed.is_empty() {
            break;
        }
        // One claim per stream at a time: the heads only.
        let streams: BTreeSet<_> = claimed.iter().map(|c| c.delivery.conversation_id).collect();
        assert_eq!(streams.len(), claimed.len());
        assert!(claimed.iter().all(|c| c.integration.id == audit.id));
        // The first pass retries one stream's head (due at once again) and fails another's;
        // the rest succeed, all settled concurrently so that they share group commits.
        let mut settles = tokio::task::JoinSet::new();
        for (i, c) in claimed.iter().enumerate() {
            let settle = match (pass, i) {
                (0, 0) => Settle::Retry { next_at: now },
                (0, 1) => Settle::Failed {
                    kind: "webhook_failed".to_owned(),
                    description: "gave up".to_owned(),
                    pause_integration: false,
                },
                _ => Settle::Succeeded,
            };
            let attempt = if settle == Settle::Succeeded {
                ok(now)
            } else {
                Attempt {
                    status_code: Some(500),
                    ..ok(now)
                }
            };
            if matches!(settle, Settle::Retry { .. }) {
                retried_once = true;
            } else {
                got.entry(c.delivery.conversation_id)
                    .or_default()
                    .extend(&c.delivery.event_ids);
            }
            let (store, id) = (ctx.store.clone(), c.delivery.id);
            settles.spawn(async move { store.settle_delivery(id, &attempt, &settle).await });
        }
        while let Some(r) = settles.join_next().await {
            r.unwrap().unwrap();
        }
    }
    assert!(retried_once);
    // Every delivery came once, each stream in order (the failed one included: it gave up).
    assert_eq!(got, sent);
    let page = ctx
        .store
        .list_deliveries(
            ctx.tenant,
            Some(audit.id),
            None,
            switchboard_domain::paging::PageRequest {
                number: 0,
                size: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 24);
    let failed = page
        .results
        .iter()
        .filter(|d| d.status == switchboard_domain::webhook::DeliveryStatus::Failed)
        .count();
    assert_eq!(failed, 1);
    for d in &page.results {
        let expected = if d.attempts.len() == 2 { 2 } else { 1 };
        assert_eq!(d.attempt_count, expected, "{d:?}");
        assert!(d.next_attempt_at.is_none(), "{d:?}");
    }
}

/// A SQLite file's writes run on one writer thread, with checkpoints in the background:
/// under appends that keep coming, the WAL still starts over, so its file stays near its bound
/// (4,000 pages, about 16 MB) instead of growing with everything written; every append is
/// stored and readable at once through another connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sqlite_files_wal_stays_bounded_under_sustained_appends() {
    const WRITERS: usize = 8;
    const EACH: usize = 400;
    let db = TestDb::sqlite().await;
    let ctx = Arc::new(Ctx::new(&db).await);
    let customer = ctx.add(direct("Customer", "Customer")).await;
    let _agent = ctx.add(direct("Agent", "Agent")).await;
    let _audit = ctx.add(system("Audit", &["message"])).await;
    let wal = db.sqlite_files()[1].clone();

    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (done, wal) = (done.clone(), wal.clone());
        tokio::spawn(async move {
            let mut largest = 0u64;
            while !done.load(Ordering::Acquire) {
                largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            largest
        })
    };
    // About 12 KB of pages per append (copies, deliveries, their indexes): some 38 MB of WAL
    // frames in all, more than twice the bound.
    let big = "x".repeat(3000);
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let ctx = ctx.clone();
        let c = ctx
            .establish(&customer, &format!("binding {w}"), json!({}))
            .await
            .conversation;
        let big = big.clone();
        writers.spawn(async move {
            for _ in 0..EACH {
                ctx.send(c.id, text(&big)).await;
            }
            c.id
        });
    }
    let mut conversations = Vec::new();
    while let Some(c) = writers.join_next().await {
        conversations.push(c.unwrap());
    }
    done.store(true, Ordering::Release);
    let largest = watcher.await.unwrap();

    let other = db.reopen(common::key()).await;
    for c in conversations {
        let stored = other
            .conversation_activities(
                ctx.tenant,
                c,
                IntegrationType::Customer,
                0,
                count_bound(10_000),
            )
            .await
            .unwrap()
            .bodies;
        // The opening's copies and every message.
        assert!(stored.len() >= EACH, "{} of {EACH} stored", stored.len());
    }
    let bound = 4_000 * (4096 + 24) + 4 * 1024 * 1024;
    assert!(
        largest <= bound,
        "the WAL grew to {largest} bytes, past its bound of {bound}"
    );
    assert!(largest > 0, "no WAL was seen");
}
