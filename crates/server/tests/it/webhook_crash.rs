//! Webhook delivery under a crash and across nodes (SPEC 5.5: "Nothing is lost … survives a
//! crash or restart of the process at any moment (at-least-once). Deliveries of one
//! conversation to one endpoint arrive in order."), with the real binary and a real HTTP
//! receiver inside the test.
//!
//! The receiver records, for every POST it answers 200, the endpoint (Agent or System), the
//! `webhook-id`, the `x-conversation-id` and the `eventId`s of the body, and checks the
//! signature and the headers against the body on the way. It is slow on purpose (it holds each
//! request before answering), so deliveries queue up and some are in flight at the kill.
//! Checked: every accepted activity arrives at both endpoints; per conversation and endpoint the
//! first arrivals are in `eventId` order; an activity arrives again only in a re-send of the same
//! `webhook-id` (after the crash), and never twice across nodes; no post is refused (a post
//! goes unanswered only when sent to the node the test killed).
//!
//! The crash test runs on SQLite always and on PostgreSQL when `TEST_DATABASE_URL` is set; the
//! two-node test needs `TEST_DATABASE_URL` (without it, a `SKIPPED` line on stderr names it).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::node::Node;
use crate::support::{backends, postgres_url, read, signature_holds, Backend, Database};

/// A fast schedule: a failed attempt is retried within a second or so, eleven attempts.
const SCHEDULE: &str = "0s,100ms,200ms,500ms,1s,1s,1s,1s,1s,1s,1s";

/// Conversations the activities are spread over.
const CONVERSATIONS: usize = 50;

/// Concurrent posters.
const POSTERS: usize = 8;

/// How long the outbox may take to drain after the last post.
const DRAIN: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// The receiver.

/// One POST the receiver answered 200.
#[derive(Clone, Debug)]
struct Arrival {
    /// `agent` or `system` (the last segment of the path).
    endpoint: String,
    webhook_id: String,
    /// The `x-conversation-id` header (checked equal to the body's `conversationId`).
    conversation: String,
    /// `activity.eventId` (Direct) or every `activities[].eventId` (System).
    event_ids: Vec<i64>,
}

#[derive(Default)]
struct Recorded {
    /// In the order the receiver got them (recorded before answering).
    arrivals: Vec<Arrival>,
    /// What was wrong with a request (signature, headers, body), for the test to report.
    problems: Vec<String>,
}

impl Recorded {
    /// How many distinct `eventId`s have arrived at `endpoint`.
    fn distinct(&self, endpoint: &str) -> usize {
        self.arrivals
            .iter()
            .filter(|a| a.endpoint == endpoint)
            .flat_map(|a| a.event_ids.iter().copied())
            .collect::<HashSet<_>>()
            .len()
    }
}

type Log = Arc<Mutex<Recorded>>;

/// How long the receiver holds each request after recording it, before answering 200: a slow
/// receiver keeps deliveries in flight (and some recorded but not yet answered when the server
/// is killed, to be sent again).
#[derive(Clone, Copy)]
struct Delay(Duration);

/// A webhook receiver on 127.0.0.1:0 answering 200 to `POST /hooks/{endpoint}`; stopped when
/// dropped.
struct Receiver {
    base: String,
    log: Log,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(delay: Duration) -> Self {
        use poem::EndpointExt;
        let log: Log = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let base = format!(
            "http://{}",
            listener.local_addr().expect("receiver address")
        );
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).expect("acceptor");
        let app = poem::Route::new()
            .at("/hooks/:endpoint", poem::post(hook))
            .data(log.clone())
            .data(Delay(delay));
        let task = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self { base, log, task }
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}/hooks/{endpoint}", self.base)
    }

    fn snapshot(&self) -> (Vec<Arrival>, Vec<String>) {
        let log = self.log.lock().unwrap();
        (log.arrivals.clone(), log.problems.clone())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn header<'a>(headers: &'a poem::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks one POST; answers the arrival, or what is wrong with it.
fn arrival(
    endpoint: &str,
    headers: &poem::http::HeaderMap,
    body: &[u8],
) -> Result<Arrival, String> {
    let need = |name: &str| header(headers, name).ok_or_else(|| format!("no {name} header"));
    let id = need("webhook-id")?;
    let ts = need("webhook-timestamp")?;
    let signature = need("webhook-signature")?;
    let conversation = need("x-conversation-id")?;
    let integration = need("x-integration-id")?;
    let hub = need("x-hub-id")?;
    let public = need("x-public-key")?;
    need("x-source-system")?;
    if !signature_holds(public, id, ts, body, signature) {
        return Err(format!("{id}: bad signature {signature}"));
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("{id}: body is not JSON: {e}"))?;
    for (field, want) in [
        ("conversationId", conversation),
        ("integrationId", integration),
        ("hubId", hub),
    ] {
        if v[field] != want {
            return Err(format!("{id}: {field} {} but header {want}", v[field]));
        }
    }
    let event_ids = match endpoint {
        "agent" => vec![v["activity"]["eventId"]
            .as_i64()
            .ok_or_else(|| format!("{id}: no activity.eventId in {v}"))?],
        "system" => {
            let list = v["activities"]
                .as_array()
                .filter(|l| !l.is_empty())
                .ok_or_else(|| format!("{id}: no activities in {v}"))?;
            list.iter()
                .map(|a| {
                    a["eventId"]
                        .as_i64()
                        .ok_or_else(|| format!("{id}: an activity without eventId in {v}"))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        other => return Err(format!("{id}: POST to an unknown endpoint {other}")),
    };
    Ok(Arrival {
        endpoint: endpoint.to_owned(),
        webhook_id: id.to_owned(),
        conversation: conversation.to_owned(),
        event_ids,
    })
}

#[poem::handler]
async fn hook(
    poem::web::Path(endpoint): poem::web::Path<String>,
    headers: &poem::http::HeaderMap,
    body: Vec<u8>,
    poem::web::Data(log): poem::web::Data<&Log>,
    poem::web::Data(delay): poem::web::Data<&Delay>,
) -> poem::http::StatusCode {
    let checked = arrival(&endpoint, headers, &body);
    {
        let mut log = log.lock().unwrap();
        match checked {
            Ok(a) => log.arrivals.push(a),
            Err(problem) => log.problems.push(problem),
        }
    }
    tokio::time::sleep(delay.0).await;
    poem::http::StatusCode::OK
}

// ---------------------------------------------------------------------------------------------
// The real binary and its database.

/// A fresh encryption key, base64.
fn encryption_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .encode(switchboard_storage::EncryptionKey::generate().0)
}

/// How many lines of the nodes' logs say an attempt's outcome could not be recorded (the
/// delivery is then sent again when its lease ends: a duplicate that is not due to a crash).
fn unrecorded_attempts(nodes: &[&Node]) -> usize {
    nodes
        .iter()
        .map(|n| {
            std::fs::read_to_string(&n.log)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("recording a webhook attempt failed"))
                .count()
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// The tenant's side: a hub, its integrations, conversations, posts.

pub(crate) async fn token(http: &reqwest::Client, base: &str, client: &Value) -> String {
    let (status, body) = read(
        http.post(format!("{base}/connect/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client["clientId"].as_str().expect("clientId")),
                (
                    "client_secret",
                    client["clientSecret"].as_str().expect("clientSecret"),
                ),
            ])
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "token: {body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

pub(crate) async fn post(
    http: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    read(
        http.post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("send"),
    )
    .await
}

/// The tenant's tokens, its hub and integrations, and the open conversations.
struct Tenant {
    portal: String,
    engine: String,
    conversations: Vec<String>,
}

/// A hub with a Customer Direct integration, an Agent Direct integration whose webhook is
/// the receiver's `agent` endpoint, and a System integration (every message) on its `system`
/// endpoint; `CONVERSATIONS` conversations opened on the customer integration.
async fn tenant(http: &reqwest::Client, base: &str, creds: &Value, receiver: &Receiver) -> Tenant {
    let portal = token(http, base, &creds["portal"]).await;
    let engine = token(http, base, &creds["engine"]).await;
    let (status, hub) = post(
        http,
        format!("{base}/api/v1/hubs"),
        &portal,
        json!({ "name": "Support", "description": "webhooks under a crash" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{hub}");
    let integrations = format!(
        "{base}/api/v1/integrations/hubs/{}",
        hub["hubId"].as_str().unwrap()
    );
    let mut ids = Vec::new();
    for body in [
        json!({ "channelId": "Direct", "name": "customers",
                "configuration": { "integrationType": "Customer" } }),
        json!({ "channelId": "Direct", "name": "agents",
                "configuration": { "integrationType": "Agent",
                                   "webhookUrl": receiver.url("agent") } }),
        json!({ "channelId": "System", "name": "crm",
                "configuration": { "webhookUrl": receiver.url("system"),
                                   "events": ["message"] } }),
    ] {
        let (status, i) = post(http, integrations.clone(), &portal, body).await;
        assert_eq!(status, StatusCode::OK, "{i}");
        ids.push(i["integrationId"].as_str().unwrap().to_owned());
    }
    let mut conversations = Vec::new();
    for n in 0..CONVERSATIONS {
        let (status, c) = post(
            http,
            format!("{base}/api/v1/conversations/establish"),
            &engine,
            json!({ "integrationId": ids[0], "binding": format!("cust-{n}") }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{c}");
        conversations.push(c["conversationId"].as_str().unwrap().to_owned());
    }
    Tenant {
        portal,
        engine,
        conversations,
    }
}

/// Customer activities posted by concurrent tasks over the conversations, round robin (so
/// one conversation gets posts from several tasks at once), to whichever nodes are current.
struct Posting {
    /// The nodes to post to (post `n` goes to `nodes[n % len]`); swapped on a restart.
    nodes: Mutex<Vec<String>>,
    engine: String,
    conversations: Vec<String>,
    /// Posts started.
    next: AtomicUsize,
    /// Accepted (200) posts: conversation and `eventId`.
    accepted: Mutex<Vec<(String, i64)>>,
    /// The nodes the test killed (marked just before the kill): a post to one of them may get
    /// no answer, and is tried again.
    down: Mutex<HashSet<String>>,
    /// Post attempts that got no answer from a killed node; they are not counted as accepted.
    unanswered: AtomicUsize,
    /// Posts refused: an answer other than 200, or no answer from a node that was not killed.
    /// The first one stops the posting; the tests assert there is none.
    refused: Mutex<Vec<String>>,
    /// Set at the first refused post: every poster stops.
    halted: AtomicBool,
}

impl Posting {
    fn new(nodes: Vec<String>, tenant: &Tenant) -> Arc<Self> {
        Arc::new(Self {
            nodes: Mutex::new(nodes),
            engine: tenant.engine.clone(),
            conversations: tenant.conversations.clone(),
            next: AtomicUsize::new(0),
            accepted: Mutex::default(),
            down: Mutex::default(),
            unanswered: AtomicUsize::new(0),
            refused: Mutex::default(),
            halted: AtomicBool::new(false),
        })
    }

    fn accepted(&self) -> Vec<(String, i64)> {
        self.accepted.lock().unwrap().clone()
    }

    /// Asserts that no post was refused (an answer other than 200, or none from a live node).
    fn assert_none_refused(&self, what: &str) {
        let refused = self.refused.lock().unwrap();
        assert!(
            refused.is_empty(),
            "{what}: {} posts refused (not due to a kill): {:?}",
            refused.len(),
            &refused[..refused.len().min(10)]
        );
    }

    /// Records a refused post and stops the posting.
    fn refuse(&self, why: String) {
        self.refused.lock().unwrap().push(why);
        self.halted.store(true, Ordering::Relaxed);
    }

    /// Starts `POSTERS` tasks that post until `target` posts are accepted.
    fn run(self: &Arc<Self>, target: usize) -> Vec<tokio::task::JoinHandle<()>> {
        (0..POSTERS)
            .map(|_| {
                let me = self.clone();
                tokio::spawn(async move { me.post_until(target).await })
            })
            .collect()
    }

    async fn post_until(&self, target: usize) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let start = Instant::now();
        while self.accepted.lock().unwrap().len() < target && !self.halted.load(Ordering::Relaxed) {
            assert!(
                start.elapsed() < Duration::from_secs(100),
                "posting: {} of {target} accepted in 100 s",
                self.accepted.lock().unwrap().len()
            );
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let conversation = &self.conversations[n % self.conversations.len()];
            let base = {
                let nodes = self.nodes.lock().unwrap();
                nodes[n % nodes.len()].clone()
            };
            let sent = http
                .post(format!(
                    "{base}/inbound/customer/v1/direct/activity/{conversation}"
                ))
                .bearer_auth(&self.engine)
                .json(&json!({ "type": "message",
                               "message": { "type": "text", "text": format!("message {n}") } }))
                .send()
                .await;
            let answer = match sent {
                Ok(resp) => {
                    let status = resp.status();
                    resp.text().await.map(|text| (status, text))
                }
                Err(e) => Err(e),
            };
            match answer {
                Ok((StatusCode::OK, text)) => {
                    let body: Value = serde_json::from_str(&text).expect("JSON answer");
                    let event = body["eventId"].as_i64().expect("eventId");
                    self.accepted
                        .lock()
                        .unwrap()
                        .push((conversation.clone(), event));
                }
                // A node that answers refuses nothing, whatever its load: a 4xx or 5xx fails.
                Ok((status, text)) => self.refuse(format!("{base}: {status} {text}")),
                // No answer (refused connection, or one cut mid-request) from a killed node:
                // try again shortly, on whichever node is current then.
                Err(_) if self.down.lock().unwrap().contains(&base) => {
                    self.unanswered.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => self.refuse(format!("{base} did not answer, not killed: {e}")),
            }
        }
    }
}

/// Waits for the posters; a panic in one fails the test.
async fn join(posters: Vec<tokio::task::JoinHandle<()>>) {
    for p in posters {
        if let Err(e) = p.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// The `total` of `GET /api/v1/deliveries?status={status}`.
async fn deliveries(
    http: &reqwest::Client,
    base: &str,
    portal: &str,
    status: &str,
) -> (u64, Value) {
    let resp = http
        .get(format!(
            "{base}/api/v1/deliveries?status={status}&pageSize=20"
        ))
        .bearer_auth(portal)
        .send()
        .await
        .expect("send");
    let (code, body) = read(resp).await;
    assert_eq!(code, StatusCode::OK, "deliveries: {body}");
    (body["total"].as_u64().expect("total"), body)
}

/// Waits (up to `DRAIN`) until no delivery is pending, then asserts none failed.
async fn drain(http: &reqwest::Client, base: &str, portal: &str) -> Duration {
    let start = Instant::now();
    loop {
        let (pending, page) = deliveries(http, base, portal, "pending").await;
        if pending == 0 {
            break;
        }
        assert!(
            start.elapsed() < DRAIN,
            "{pending} deliveries still pending after {DRAIN:?}; the oldest: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (failed, page) = deliveries(http, base, portal, "failed").await;
    assert_eq!(failed, 0, "failed deliveries: {page}");
    start.elapsed()
}

// ---------------------------------------------------------------------------------------------
// What the receiver got.

/// What the arrivals show.
struct Verdict {
    /// Every problem found (lost, out of order, a repeat that is not a re-send, mismatched
    /// conversation), empty when all is well.
    errors: Vec<String>,
    /// Arrivals whose `webhook-id` had arrived before.
    duplicates: usize,
    arrivals: usize,
}

/// Checks `arrivals` against the `accepted` posts (conversation and `eventId`): each accepted
/// `eventId` arrived at both endpoints; per conversation and endpoint the first arrivals of
/// the `eventId`s are in increasing order; an `eventId` that arrives again comes only in a
/// re-send of the same `webhook-id`, which carries the same `eventId`s and conversation.
fn check(arrivals: &[Arrival], accepted: &[(String, i64)]) -> Verdict {
    let mut errors = Vec::new();
    let mut duplicates = 0;
    // webhook-id → (endpoint, conversation, eventIds) of its first arrival.
    let mut by_webhook: HashMap<&str, &Arrival> = HashMap::new();
    // (endpoint, eventId) → the webhook-id that first brought it.
    let mut first_webhook: HashMap<(&str, i64), &str> = HashMap::new();
    // (endpoint, conversation) → eventIds in the order they first arrived.
    let mut lanes: HashMap<(&str, &str), Vec<i64>> = HashMap::new();
    for a in arrivals {
        if let Some(before) = by_webhook.get(a.webhook_id.as_str()) {
            duplicates += 1;
            if (&before.endpoint, &before.conversation, &before.event_ids)
                != (&a.endpoint, &a.conversation, &a.event_ids)
            {
                errors.push(format!(
                    "webhook-id {} arrived as {}/{}/{:?}, then again as {}/{}/{:?}",
                    a.webhook_id,
                    before.endpoint,
                    before.conversation,
                    before.event_ids,
                    a.endpoint,
                    a.conversation,
                    a.event_ids
                ));
            }
            continue;
        }
        by_webhook.insert(&a.webhook_id, a);
        for &event in &a.event_ids {
            match first_webhook.get(&(a.endpoint.as_str(), event)) {
                Some(earlier) => errors.push(format!(
                    "eventId {event} arrived at {} in two deliveries: {earlier}, then {}",
                    a.endpoint, a.webhook_id
                )),
                None => {
                    first_webhook.insert((&a.endpoint, event), &a.webhook_id);
                    lanes
                        .entry((&a.endpoint, &a.conversation))
                        .or_default()
                        .push(event);
                }
            }
        }
    }
    let mut lane_keys: Vec<_> = lanes.keys().copied().collect();
    lane_keys.sort_unstable();
    for key in lane_keys {
        let events = &lanes[&key];
        if let Some(i) = (1..events.len()).find(|&i| events[i] <= events[i - 1]) {
            errors.push(format!(
                "out of order at {} for conversation {}: {} arrived after {} (arrival {i} of {}; around: {:?})",
                key.0,
                key.1,
                events[i],
                events[i - 1],
                events.len(),
                &events[i.saturating_sub(3)..(i + 3).min(events.len())]
            ));
        }
    }
    for endpoint in ["agent", "system"] {
        let mut missing = Vec::new();
        for (conversation, event) in accepted {
            match lanes.get(&(endpoint, conversation.as_str())) {
                Some(events) if events.contains(event) => {}
                _ => missing.push(*event),
            }
        }
        if !missing.is_empty() {
            missing.sort_unstable();
            errors.push(format!(
                "{} of {} accepted activities never arrived at {endpoint} (or under another conversation): {:?}{}",
                missing.len(),
                accepted.len(),
                &missing[..missing.len().min(20)],
                if missing.len() > 20 { " …" } else { "" }
            ));
        }
    }
    Verdict {
        errors,
        duplicates,
        arrivals: arrivals.len(),
    }
}

fn assert_verdict(what: &str, v: &Verdict, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} requests the receiver found wrong, the first: {:?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );
    assert!(
        v.errors.is_empty(),
        "{what}: {} problems ({} arrivals, {} duplicates):\n{}",
        v.errors.len(),
        v.arrivals,
        v.duplicates,
        v.errors[..v.errors.len().min(30)].join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_loses_no_delivery() {
    // The backends side by side (their own receiver, directory, database and server): the
    // time is mostly spent waiting for deliveries, not computing.
    let runs: Vec<_> = backends("a_killed_server_loses_no_delivery")
        .into_iter()
        .map(|backend| tokio::spawn(killed_server_loses_no_delivery_on(backend)))
        .collect();
    let mut failed = None;
    for run in runs {
        if let Err(e) = run.await {
            failed.get_or_insert(e);
        }
    }
    if let Some(e) = failed {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn killed_server_loses_no_delivery_on(backend: Backend) {
    const TARGET: usize = 1_000;
    let started = Instant::now();
    // Dropped last: the nodes (declared after it) go first.
    let db = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            Some(Database::create(&postgres_url().expect("TEST_DATABASE_URL")).await)
        }
    };
    let receiver = Receiver::start(Duration::from_millis(100)).await;
    let dir = tempfile::tempdir().unwrap();
    let key = encryption_key();
    let mut env = vec![
        ("SWITCHBOARD_RETRY_SCHEDULE", SCHEDULE),
        ("SWITCHBOARD_WEBHOOK_TIMEOUT", "2s"),
        ("SWITCHBOARD_ALLOW_PRIVATE_WEBHOOKS", "true"),
    ];
    // On SQLite: `switchboard.db` in `dir` and the key file beside it, both kept for the
    // restart.
    if let Some(db) = &db {
        env.push(("DATABASE_URL", db.url.as_str()));
        env.push(("SWITCHBOARD_ENCRYPTION_KEY", key.as_str()));
    }

    let mut node = Node::spawn("first run", dir.path(), &env);
    let creds = node.credentials().await;
    node.wait_ready().await;
    let http = reqwest::Client::new();
    let tenant = tenant(&http, &node.base, &creds, &receiver).await;

    let posting = Posting::new(vec![node.base.clone()], &tenant);
    let posters = posting.run(TARGET);

    // SIGKILL while deliveries are in flight: once 150 activities have reached the Agent
    // endpoint, with the slow receiver holding some and many still queued.
    let wait = Instant::now();
    loop {
        let seen = receiver.log.lock().unwrap().distinct("agent");
        if seen >= 150 {
            break;
        }
        assert!(
            wait.elapsed() < Duration::from_secs(60),
            "{backend:?}: {seen} webhooks arrived within 60 s ({} posts accepted)",
            posting.accepted.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    posting.down.lock().unwrap().insert(node.base.clone());
    node.kill9();
    let first = node;
    let before_kill = posting.accepted();
    let (at_kill, _) = receiver.snapshot();
    let seen_at_kill: HashSet<(String, i64)> = at_kill
        .iter()
        .flat_map(|a| a.event_ids.iter().map(|e| (a.endpoint.clone(), *e)))
        .collect();
    let in_flight = before_kill
        .iter()
        .filter(|(_, e)| {
            !seen_at_kill.contains(&("agent".to_owned(), *e))
                || !seen_at_kill.contains(&("system".to_owned(), *e))
        })
        .count();
    // A kill after everything had arrived would prove nothing.
    assert!(
        in_flight > 0,
        "{backend:?}: every accepted activity had arrived before the kill"
    );

    // Restart on the same database (same directory, key and settings); posting goes on.
    let mut node = Node::spawn("after the kill", dir.path(), &env);
    node.wait_ready().await;
    *posting.nodes.lock().unwrap() = vec![node.base.clone()];
    join(posters).await;
    posting.assert_none_refused(&format!("{backend:?}"));
    let posted = started.elapsed();

    let drained = drain(&http, &node.base, &tenant.portal).await;
    let (arrivals, problems) = receiver.snapshot();
    let accepted = posting.accepted();
    let verdict = check(&arrivals, &accepted);
    eprintln!(
        "{backend:?}: killed with {} posts accepted, {in_flight} of them not yet delivered to both endpoints ({} arrivals so far); {} posts accepted in all, {} post attempts unanswered; {} webhook arrivals, {} duplicates (re-sent webhook-ids), {} attempts whose outcome the server failed to record; posting took {posted:?}, the outbox drained {drained:?} later",
        before_kill.len(),
        at_kill.len(),
        accepted.len(),
        posting.unanswered.load(Ordering::Relaxed),
        verdict.arrivals,
        verdict.duplicates,
        unrecorded_attempts(&[&first, &node]),
    );
    assert_verdict(&format!("{backend:?}"), &verdict, &problems);
    assert!(accepted.len() >= TARGET);
    drop((first, node));
    drop(receiver);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_deliveries_without_duplicates() {
    const TARGET: usize = 400;
    let Some(admin) = postgres_url() else {
        return crate::support::skipped(
            "two_nodes_share_deliveries_without_duplicates",
            "PostgreSQL",
            crate::support::POSTGRES_HOW,
        );
    };
    let started = Instant::now();
    let db = Database::create(&admin).await;
    let receiver = Receiver::start(Duration::from_millis(100)).await;
    let dir = tempfile::tempdir().unwrap();
    let key = encryption_key();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("SWITCHBOARD_ENCRYPTION_KEY", key.as_str()),
        ("SWITCHBOARD_RETRY_SCHEDULE", SCHEDULE),
        ("SWITCHBOARD_WEBHOOK_TIMEOUT", "2s"),
        ("SWITCHBOARD_ALLOW_PRIVATE_WEBHOOKS", "true"),
    ];
    // Node 1 migrates the empty database and prints the default tenant; then node 2.
    let mut one = Node::spawn("node 1", dir.path(), &env);
    let creds = one.credentials().await;
    one.wait_ready().await;
    let mut two = Node::spawn("node 2", dir.path(), &env);
    two.wait_ready().await;

    let http = reqwest::Client::new();
    let tenant = tenant(&http, &one.base, &creds, &receiver).await;
    // Posts alternate between the nodes, so both write deliveries (and both workers claim).
    let posting = Posting::new(vec![one.base.clone(), two.base.clone()], &tenant);
    join(posting.run(TARGET)).await;
    posting.assert_none_refused("two nodes");
    let posted = started.elapsed();
    let drained = drain(&http, &two.base, &tenant.portal).await;

    let (arrivals, problems) = receiver.snapshot();
    let accepted = posting.accepted();
    let verdict = check(&arrivals, &accepted);
    eprintln!(
        "two nodes: {} posts accepted ({} unanswered), {} webhook arrivals, {} duplicates, {} attempts whose outcome a node failed to record; setup and posting took {posted:?}, the outbox drained {drained:?} later",
        accepted.len(),
        posting.unanswered.load(Ordering::Relaxed),
        verdict.arrivals,
        verdict.duplicates,
        unrecorded_attempts(&[&one, &two]),
    );
    assert_eq!(
        posting.unanswered.load(Ordering::Relaxed),
        0,
        "no node crashed, every post is answered"
    );
    assert_verdict("two nodes", &verdict, &problems);
    assert_eq!(
        verdict.duplicates, 0,
        "two nodes sent the same webhook-id twice (no crash, no timeout)"
    );
    // Each accepted activity once per endpoint, and nothing else.
    let carried: usize = arrivals.iter().map(|a| a.event_ids.len()).sum();
    assert_eq!(carried, 2 * accepted.len(), "eventIds received in all");
    drop((one, two));
    drop(receiver);
    drop(db);
}
