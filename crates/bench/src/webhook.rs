//! Scenario `webhook`: customer activities delivered by the server's webhook worker to an HTTP
//! receiver inside the bench (SPEC 5.5). Each hub has a Direct Customer integration (the
//! customers' side), a Direct Agent integration whose `webhookUrl` is the receiver's
//! `/agent/{hub}`, and a System integration (filter `message:customer`) on `/system/{hub}`, so
//! every activity makes two deliveries. Conversations are spread over the hubs: one
//! conversation's deliveries to one endpoint go one at a time, so throughput needs many.
//!
//! The text of each activity carries `bench:<phase>:<seq>:<µs posted>`. The receiver answers 200
//! at once and keeps each POST as it came; after the phase every POST is checked (the Ed25519
//! signature over `{webhook-id}.{webhook-timestamp}.{body}` with the public key the API
//! answered, the SPEC 5.5 headers against the body and the endpoint), so the checks take no CPU
//! from the server while it is measured. Latency runs from the post's 200 to the delivery's
//! arrival; what arrives twice is told apart: a re-send of the same `webhook-id` (allowed:
//! at-least-once) or the same activity under two `webhook-id`s at one endpoint (a bug).
//!
//! Two phases, as in `live`: a fixed offered rate (latency below saturation), then the maximum
//! rate (a closed loop of posters: deliveries/s and server CPU per delivery, posting included).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::load::{closed_loop, Progress};
use crate::procfs::CpuSnapshot;
use crate::server::{spread, Api, PgCounters, Server};
use crate::stats::{round1, round3, Percentiles, Phase};
use crate::Result;

/// The size of the scenario.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Hubs, each with an Agent and a System endpoint.
    pub hubs: usize,
    pub conversations_per_hub: usize,
    /// The offered rate (activities/s, two deliveries each) and how long it is offered.
    pub rate: u64,
    pub offered: Duration,
    /// The most posts in flight during the offered phase.
    pub in_flight: usize,
    /// The maximum-rate phase: this many activities (or `cap`) from this many posters.
    pub activities: u64,
    pub concurrency: usize,
    pub cap: Duration,
    /// After the last post, the deliveries still on their way are waited for until they are all
    /// in, or none has come for this long (or [`MAX_DRAIN`] has passed).
    pub drain: Duration,
}

/// The longest wait for a phase's deliveries after its last post.
pub const MAX_DRAIN: Duration = Duration::from_secs(600);

/// The endpoint kinds every activity reaches, as the first segment of the receiver's paths.
pub const KINDS: [&str; 2] = ["agent", "system"];

/// A fast retry schedule (the default waits 2 minutes after a failed first attempt), so that
/// an attempt lost in a crash or a timeout comes again within the scenario.
pub const RETRY_SCHEDULE: &str = "0s,100ms,200ms,500ms,1s,1s,1s,1s,1s,1s,1s";

/// One attempt's timeout; on PostgreSQL a dead node's leases expire 5 s after it.
pub const WEBHOOK_TIMEOUT: &str = "2s";

/// The server settings the webhook scenarios need: a receiver on loopback, and short timeouts.
pub fn env() -> Vec<(String, String)> {
    [
        ("SWITCHBOARD_ALLOW_PRIVATE_WEBHOOKS", "true"),
        ("SWITCHBOARD_RETRY_SCHEDULE", RETRY_SCHEDULE),
        ("SWITCHBOARD_WEBHOOK_TIMEOUT", WEBHOOK_TIMEOUT),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

// ---------------------------------------------------------------------------------------------
// The receiver.

/// One POST as the receiver got it, checked later.
pub struct Arrival {
    /// µs since the inbox's clock started.
    pub at_us: u64,
    pub path: String,
    pub headers: poem::http::HeaderMap,
    pub body: Vec<u8>,
}

/// Which (kind, seq) pairs of the counted phase have arrived at least once.
struct Seen {
    phase: u64,
    bits: Vec<u8>,
}

/// What the receiver got: every POST in order of arrival, and a running count of the counted
/// phase's distinct deliveries (to know when they are all in).
pub struct Inbox {
    clock: Instant,
    /// Unix time (s) when `clock` started, to check `webhook-timestamp`.
    unix_at_clock: f64,
    arrivals: Mutex<Vec<Arrival>>,
    seen: Mutex<Seen>,
    /// Distinct (kind, seq) pairs of the counted phase so far.
    pub delivered: Arc<AtomicU64>,
    /// Requests recorded and not answered yet (held).
    pub holding: AtomicU64,
    /// How long each request is held before its answer, µs.
    hold_us: AtomicU64,
}

impl Inbox {
    fn new() -> Self {
        let unix_at_clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Self {
            clock: Instant::now(),
            unix_at_clock,
            arrivals: Mutex::new(Vec::new()),
            seen: Mutex::new(Seen {
                phase: u64::MAX,
                bits: Vec::new(),
            }),
            delivered: Arc::new(AtomicU64::new(0)),
            holding: AtomicU64::new(0),
            hold_us: AtomicU64::new(0),
        }
    }

    /// µs since the clock started: the time base of markers and arrivals.
    pub fn now_us(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }

    /// Starts counting `phase`, whose activities are numbered 0..count.
    pub fn count(&self, phase: u64, count: u64) {
        if let Ok(mut s) = self.seen.lock() {
            *s = Seen {
                phase,
                bits: vec![0; count as usize],
            };
        }
        self.delivered.store(0, Ordering::Relaxed);
    }

    /// The POSTs received since the last call.
    pub fn take(&self) -> Vec<Arrival> {
        self.arrivals
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default()
    }

    fn record(&self, path: String, headers: poem::http::HeaderMap, body: Vec<u8>) {
        let at_us = self.now_us();
        let kind = KINDS.iter().position(|k| {
            path.strip_prefix('/')
                .and_then(|p| p.strip_prefix(k))
                .is_some_and(|r| r.starts_with('/'))
        });
        if let (Some(kind), Ok(text), Ok(mut seen)) =
            (kind, std::str::from_utf8(&body), self.seen.lock())
        {
            for (phase, seq, _) in markers(text) {
                if phase != seen.phase {
                    continue;
                }
                if let Some(bits) = seen.bits.get_mut(seq as usize) {
                    let bit = 1u8 << kind;
                    if *bits & bit == 0 {
                        *bits |= bit;
                        self.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        if let Ok(mut a) = self.arrivals.lock() {
            a.push(Arrival {
                at_us,
                path,
                headers,
                body,
            });
        }
    }
}

/// Every `bench:<phase>:<seq>:<µs>` marker in a text: (phase, seq, µs).
pub fn markers(text: &str) -> Vec<(u64, u64, u64)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("bench:") {
        rest = &rest[i + "bench:".len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit() && c != ':')
            .unwrap_or(rest.len());
        let mut parts = rest[..end].split(':').map(|p| p.parse::<u64>().ok());
        if let (Some(Some(phase)), Some(Some(seq)), Some(Some(us)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            out.push((phase, seq, us));
        }
    }
    out
}

/// An HTTP server on 127.0.0.1:0 that answers 200 to `POST /{kind}/{hub}` (after holding each
/// request for a while, if asked) and keeps what it got in its inbox; stopped when dropped.
pub struct Receiver {
    pub base: String,
    pub inbox: Arc<Inbox>,
    task: tokio::task::JoinHandle<()>,
}

#[poem::handler]
async fn hook(
    req: &poem::Request,
    body: Vec<u8>,
    inbox: poem::web::Data<&Arc<Inbox>>,
) -> poem::http::StatusCode {
    inbox.record(req.uri().path().to_owned(), req.headers().clone(), body);
    let hold = Duration::from_micros(inbox.hold_us.load(Ordering::Relaxed));
    if !hold.is_zero() {
        inbox.holding.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(hold).await;
        inbox.holding.fetch_sub(1, Ordering::Relaxed);
    }
    poem::http::StatusCode::OK
}

impl Receiver {
    /// A receiver that answers at once, or after `hold` (a slow receiver keeps attempts in
    /// flight); [`Receiver::hold`] changes it.
    pub async fn start(hold: Duration) -> Result<Self> {
        use poem::EndpointExt;
        let inbox = Arc::new(Inbox::new());
        inbox
            .hold_us
            .store(hold.as_micros() as u64, Ordering::Relaxed);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind the webhook receiver: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("the receiver's address: {e}"))?;
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener)
            .map_err(|e| format!("the receiver's acceptor: {e}"))?;
        let app = poem::Route::new()
            .at("/:kind/:hub", poem::post(hook))
            .data(inbox.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = poem::Server::new_with_acceptor(acceptor).run(app).await {
                eprintln!("  webhook receiver stopped: {e}");
            }
        });
        Ok(Self {
            base: format!("http://{addr}"),
            inbox,
            task,
        })
    }

    /// From now on, each request is held this long before its answer.
    pub fn hold(&self, hold: Duration) {
        self.inbox
            .hold_us
            .store(hold.as_micros() as u64, Ordering::Relaxed);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// The hubs, their integrations and conversations.

/// A webhook endpoint: the integration behind one receiver path, and its public key as the
/// API answered it.
pub struct Endpoint {
    pub integration: String,
    pub hub: String,
    pub public_hex: String,
    pub key: ed25519_dalek::VerifyingKey,
}

/// One conversation: the URL its activities are posted to, and the receiver paths they reach.
pub struct Conversation {
    pub url: String,
    pub paths: [String; 2],
}

/// What the scenario set up.
pub struct Setup {
    /// By receiver path.
    pub endpoints: HashMap<String, Endpoint>,
    /// Spread round robin over the hubs: activity `seq` goes to `seq % len`.
    pub conversations: Vec<Conversation>,
}

impl Setup {
    /// `hubs` hubs with their three integrations and `per_hub` conversations each.
    pub async fn create(
        api: &Api,
        receiver: &Receiver,
        label: &str,
        hubs: usize,
        per_hub: usize,
    ) -> Result<Self> {
        let mut endpoints = HashMap::new();
        let mut customers = Vec::new();
        let mut hub_paths = Vec::new();
        for h in 0..hubs {
            let hub = api.hub(&format!("{label} {h}")).await?;
            customers.push(api.direct(&hub, "customers", "Customer").await?);
            let paths = KINDS.map(|k| format!("/{k}/{h}"));
            let bodies = [
                json!({ "name": "agents", "channelId": "Direct",
                        "configuration": { "integrationType": "Agent",
                                           "webhookUrl": format!("{}{}", receiver.base, paths[0]) } }),
                json!({ "name": "crm", "channelId": "System",
                        "configuration": { "webhookUrl": format!("{}{}", receiver.base, paths[1]),
                                           "events": ["message:customer"] } }),
            ];
            for (path, body) in paths.iter().zip(bodies) {
                let created = api
                    .post(
                        &format!("/api/v1/integrations/hubs/{hub}"),
                        &api.portal,
                        &body,
                    )
                    .await?;
                endpoints.insert(path.clone(), endpoint(&created, &hub)?);
            }
            hub_paths.push(paths);
        }
        let mut conversations = Vec::new();
        for c in 0..per_hub {
            for (h, customer) in customers.iter().enumerate() {
                let id = api.establish(customer, &format!("visitor {h}-{c}")).await?;
                conversations.push(Conversation {
                    url: api.url(&format!("/inbound/customer/v1/direct/activity/{id}")),
                    paths: hub_paths[h].clone(),
                });
            }
        }
        Ok(Self {
            endpoints,
            conversations,
        })
    }

    /// The conversation activity `seq` is posted to.
    pub fn conversation(&self, seq: u64) -> &Conversation {
        &self.conversations[(seq % self.conversations.len() as u64) as usize]
    }
}

/// The endpoint of a created integration: its id and `publicSigningKey`.
fn endpoint(created: &Value, hub: &str) -> Result<Endpoint> {
    let integration = created["integrationId"]
        .as_str()
        .ok_or_else(|| format!("no integrationId in {created}"))?;
    let public_hex = created["configuration"]["publicSigningKey"]
        .as_str()
        .ok_or_else(|| format!("no configuration.publicSigningKey in {created}"))?;
    let key = hex32(public_hex)
        .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| format!("publicSigningKey {public_hex} is no Ed25519 public key"))?;
    Ok(Endpoint {
        integration: integration.to_owned(),
        hub: hub.to_owned(),
        public_hex: public_hex.to_owned(),
        key,
    })
}

/// 32 bytes from 64 hex characters.
fn hex32(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Posting.

/// How a post ended.
pub enum Posted {
    Accepted,
    /// An answer other than 200.
    Refused(u16, String),
    /// No answer (the server is down, or died during the request).
    Unanswered(String),
}

/// The body of activity `seq` of `phase`, posted at `us`.
pub fn activity(phase: u64, seq: u64, us: u64) -> String {
    format!(r#"{{"type":"message","message":{{"type":"text","text":"bench:{phase}:{seq}:{us}"}}}}"#)
}

/// Posts one activity, with an `Idempotency-Key` when given (so that a retry after no answer
/// makes no second activity).
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: String,
    key: Option<&str>,
) -> Posted {
    let mut req = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return Posted::Unanswered(e.to_string()),
    };
    let status = resp.status();
    match resp.bytes().await {
        Ok(_) if status.is_success() => Posted::Accepted,
        Ok(text) => Posted::Refused(
            status.as_u16(),
            format!("{status} {}", String::from_utf8_lossy(&text)),
        ),
        Err(e) => Posted::Unanswered(e.to_string()),
    }
}

/// When each activity of a phase was posted and accepted (µs on the inbox clock; 0 = not
/// accepted).
pub struct Posts {
    pub sent: Vec<AtomicU64>,
    pub accepted: Vec<AtomicU64>,
}

impl Posts {
    pub fn new(count: u64) -> Arc<Self> {
        Arc::new(Self {
            sent: (0..count).map(|_| AtomicU64::new(0)).collect(),
            accepted: (0..count).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    pub fn accept(&self, seq: u64, sent_us: u64, now_us: u64) {
        if let (Some(s), Some(a)) = (self.sent.get(seq as usize), self.accepted.get(seq as usize)) {
            s.store(sent_us, Ordering::Relaxed);
            a.store(now_us.max(1), Ordering::Relaxed);
        }
    }

    /// The accepted activities: (seq, accepted µs).
    pub fn accepted(&self) -> Vec<(u64, u64)> {
        self.accepted
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                let at = a.load(Ordering::Relaxed);
                (at > 0).then_some((i as u64, at))
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Checking what arrived.

/// One activity in a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub phase: u64,
    pub seq: u64,
    pub sent_us: u64,
    pub event_id: i64,
}

/// A POST that passed every check.
#[derive(Clone, Debug)]
pub struct Checked {
    pub path: String,
    pub webhook_id: String,
    pub conversation: String,
    pub at_us: u64,
    pub marks: Vec<Mark>,
}

/// The checks of SPEC 5.5 on one POST: answers what it carried, or what is wrong with it.
fn check(
    a: &Arrival,
    endpoints: &HashMap<String, Endpoint>,
    unix_at_clock: f64,
) -> std::result::Result<Checked, String> {
    use base64::Engine;
    let header = |name: &str| {
        a.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("{}: no {name} header", a.path))
    };
    let e = endpoints
        .get(&a.path)
        .ok_or_else(|| format!("a POST to {}, which no integration has", a.path))?;
    let id = header("webhook-id")?;
    let what = |problem: String| format!("{} {id}: {problem}", a.path);
    if !header("content-type")?.starts_with("application/json") {
        return Err(what("content-type is not application/json".to_owned()));
    }
    let ts = header("webhook-timestamp")?;
    let unix: i64 = ts
        .parse()
        .map_err(|_| what(format!("webhook-timestamp {ts} is not Unix seconds")))?;
    let now = unix_at_clock + a.at_us as f64 / 1e6;
    if (unix as f64 - now).abs() > 300.0 {
        return Err(what(format!(
            "webhook-timestamp {unix} is {now:.0} ± 300 s"
        )));
    }
    // The signature, with the key the API answered (not the one the request names).
    let mut content = format!("{id}.{ts}.").into_bytes();
    content.extend_from_slice(&a.body);
    let signature = header("webhook-signature")?;
    let holds = signature
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1a,"))
        .filter_map(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .filter_map(|b| <[u8; 64]>::try_from(b).ok())
        .any(|sig| {
            e.key
                .verify_strict(&content, &ed25519_dalek::Signature::from_bytes(&sig))
                .is_ok()
        });
    if !holds {
        return Err(what(format!(
            "webhook-signature {signature} does not verify"
        )));
    }
    if !header("x-public-key")?.eq_ignore_ascii_case(&e.public_hex) {
        return Err(what("x-public-key is not the integration's key".to_owned()));
    }
    header("x-source-system")?;
    let body: Value =
        serde_json::from_slice(&a.body).map_err(|e| what(format!("the body is not JSON: {e}")))?;
    let conversation = header("x-conversation-id")?;
    for (field, name, want) in [
        ("hubId", "x-hub-id", e.hub.as_str()),
        ("integrationId", "x-integration-id", e.integration.as_str()),
        ("conversationId", "x-conversation-id", conversation),
    ] {
        let got = header(name)?;
        if got != want || body[field] != want {
            return Err(what(format!(
                "{name} {got} and {field} {} where {want} was due",
                body[field]
            )));
        }
    }
    if !body["tenantId"].is_string() || !body["conversationProperties"].is_object() {
        return Err(what(
            "no tenantId or conversationProperties in the body".to_owned(),
        ));
    }
    let activities: Vec<&Value> = if a.path.starts_with("/system/") {
        if body.get("activity").is_some() {
            return Err(what("a System body with `activity`".to_owned()));
        }
        body["activities"]
            .as_array()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| what("no activities in a System body".to_owned()))?
            .iter()
            .collect()
    } else {
        if body.get("activities").is_some() {
            return Err(what("a Direct body with `activities`".to_owned()));
        }
        vec![&body["activity"]]
    };
    let mut marks = Vec::with_capacity(activities.len());
    for activity in activities {
        if activity["recipient"]["integrationId"] != e.integration.as_str() {
            return Err(what(format!(
                "an activity for recipient {}",
                activity["recipient"]["integrationId"]
            )));
        }
        let event_id = activity["eventId"]
            .as_i64()
            .ok_or_else(|| what("an activity without eventId".to_owned()))?;
        let text = activity["message"]["text"].as_str().unwrap_or_default();
        let (phase, seq, sent_us) = match markers(text).as_slice() {
            [one] => *one,
            _ => return Err(what(format!("no marker in the activity text {text:?}"))),
        };
        marks.push(Mark {
            phase,
            seq,
            sent_us,
            event_id,
        });
    }
    Ok(Checked {
        path: a.path.clone(),
        webhook_id: id.to_owned(),
        conversation: conversation.to_owned(),
        at_us: a.at_us,
        marks,
    })
}

/// Checks every POST, on blocking threads (one chunk per core), keeping their order: the
/// ones that passed, and what was wrong with the others.
pub async fn check_all(
    arrivals: Vec<Arrival>,
    setup: &Arc<Setup>,
    inbox: &Inbox,
) -> (Vec<Checked>, Vec<String>) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let size = arrivals.len().div_ceil(cores).max(1);
    let unix = inbox.unix_at_clock;
    let mut tasks = Vec::new();
    let mut arrivals = arrivals.into_iter().peekable();
    while arrivals.peek().is_some() {
        let chunk: Vec<Arrival> = arrivals.by_ref().take(size).collect();
        let setup = setup.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            chunk
                .iter()
                .map(|a| check(a, &setup.endpoints, unix))
                .collect::<Vec<_>>()
        }));
    }
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    for t in tasks {
        match t.await {
            Ok(results) => {
                for r in results {
                    match r {
                        Ok(c) => passed.push(c),
                        Err(e) => failed.push(e),
                    }
                }
            }
            Err(e) => failed.push(format!("a check failed: {e}")),
        }
    }
    (passed, failed)
}

/// The first arrival of one activity at one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct First {
    pub at_us: u64,
    pub sent_us: u64,
}

/// The checked POSTs added up, in order of arrival: each activity's first arrival per endpoint,
/// re-sends, duplicates and order.
#[derive(Default)]
pub struct Ledger {
    /// POSTs added.
    pub posts: u64,
    /// A `webhook-id` that came again with the same activities: a re-send (at-least-once).
    pub resent: u64,
    /// An activity that came again at one endpoint under another `webhook-id`: a bug.
    pub duplicates: u64,
    /// A `webhook-id` that came again with other activities or at another endpoint: a bug.
    pub changed: u64,
    /// A first arrival older (by `eventId`) than an earlier one of its conversation and
    /// endpoint: a bug.
    pub out_of_order: u64,
    /// The first few problems, described.
    pub problems: Vec<String>,
    /// (path, phase, seq) → its first arrival.
    pub first: HashMap<(String, u64, u64), First>,
    /// webhook-id → (path, [(phase, seq)]) of its first arrival.
    by_webhook: HashMap<String, (String, Vec<(u64, u64)>)>,
    /// (path, conversation) → the latest `eventId` that arrived first.
    lanes: HashMap<(String, String), i64>,
}

impl Ledger {
    pub fn add(&mut self, c: &Checked) {
        self.posts += 1;
        let carried: Vec<(u64, u64)> = c.marks.iter().map(|m| (m.phase, m.seq)).collect();
        if let Some((path, before)) = self.by_webhook.get(&c.webhook_id) {
            self.resent += 1;
            if *path != c.path || *before != carried {
                self.changed += 1;
                self.problem(format!(
                    "webhook-id {} came to {path} with {before:?}, then to {} with {carried:?}",
                    c.webhook_id, c.path
                ));
            }
            return;
        }
        self.by_webhook
            .insert(c.webhook_id.clone(), (c.path.clone(), carried));
        for m in &c.marks {
            let key = (c.path.clone(), m.phase, m.seq);
            if self.first.contains_key(&key) {
                self.duplicates += 1;
                self.problem(format!(
                    "activity {}:{} came to {} again under another webhook-id ({})",
                    m.phase, m.seq, c.path, c.webhook_id
                ));
                continue;
            }
            self.first.insert(
                key,
                First {
                    at_us: c.at_us,
                    sent_us: m.sent_us,
                },
            );
            let lane = self
                .lanes
                .entry((c.path.clone(), c.conversation.clone()))
                .or_insert(i64::MIN);
            let latest = *lane;
            *lane = latest.max(m.event_id);
            if m.event_id < latest {
                self.out_of_order += 1;
                self.problem(format!(
                    "eventId {} came to {} after {latest} of the same conversation",
                    m.event_id, c.path
                ));
            }
        }
    }

    /// The running totals, to tell what one phase added.
    pub fn counts(&self) -> Counts {
        Counts {
            posts: self.posts,
            resent: self.resent,
            duplicates: self.duplicates,
            changed: self.changed,
            out_of_order: self.out_of_order,
        }
    }

    fn problem(&mut self, p: String) {
        if self.problems.len() < 10 {
            self.problems.push(p);
        }
    }

    /// Problems that are bugs of the server.
    pub fn faults(&self) -> u64 {
        self.counts().faults()
    }
}

/// The totals of a [`Ledger`], or what was added to them between two moments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub posts: u64,
    pub resent: u64,
    pub duplicates: u64,
    pub changed: u64,
    pub out_of_order: u64,
}

impl Counts {
    /// What was added since `earlier`.
    pub fn since(self, earlier: Counts) -> Counts {
        Counts {
            posts: self.posts - earlier.posts,
            resent: self.resent - earlier.resent,
            duplicates: self.duplicates - earlier.duplicates,
            changed: self.changed - earlier.changed,
            out_of_order: self.out_of_order - earlier.out_of_order,
        }
    }

    /// Duplicates, changed re-sends and disorder: bugs of the server.
    pub fn faults(self) -> u64 {
        self.duplicates + self.changed + self.out_of_order
    }
}

/// One phase's deliveries against what was accepted.
#[derive(Debug, Default, PartialEq)]
pub struct Delivered {
    /// Accepted activities that reached an endpoint they were due at.
    pub count: u64,
    /// Due (path, seq) pairs that never arrived.
    pub missing: Vec<(String, u64)>,
    /// First arrivals of this phase that were not due (an activity whose post got no 200).
    pub unconfirmed: u64,
    /// µs from the post's 200 to the first arrival, per delivery.
    pub from_accepted_us: Vec<u64>,
    /// µs from the post's start to the first arrival.
    pub from_sent_us: Vec<u64>,
    /// Deliveries that arrived before the post's answer did.
    pub before_answer: u64,
    /// The last first arrival, µs.
    pub last_us: Option<u64>,
    /// When each delivery first arrived, µs.
    pub at_us: Vec<u64>,
}

/// Matches the ledger's first arrivals of `phase` with the due deliveries: (path, seq,
/// accepted µs).
pub fn delivered(ledger: &Ledger, phase: u64, due: &[(&str, u64, u64)]) -> Delivered {
    let mut out = Delivered::default();
    for &(path, seq, accepted_us) in due {
        match ledger.first.get(&(path.to_owned(), phase, seq)) {
            Some(f) => {
                out.count += 1;
                if f.at_us < accepted_us {
                    out.before_answer += 1;
                }
                out.from_accepted_us
                    .push(f.at_us.saturating_sub(accepted_us));
                out.from_sent_us.push(f.at_us.saturating_sub(f.sent_us));
                out.last_us = out.last_us.max(Some(f.at_us));
                out.at_us.push(f.at_us);
            }
            None => out.missing.push((path.to_owned(), seq)),
        }
    }
    let of_phase = ledger.first.keys().filter(|k| k.1 == phase).count() as u64;
    out.unconfirmed = of_phase.saturating_sub(out.count);
    out
}

/// The deliveries due for the accepted activities: each at its conversation's two endpoints.
pub fn due<'a>(setup: &'a Setup, accepted: &[(u64, u64)]) -> Vec<(&'a str, u64, u64)> {
    accepted
        .iter()
        .flat_map(|&(seq, at)| {
            setup
                .conversation(seq)
                .paths
                .iter()
                .map(move |p| (p.as_str(), seq, at))
        })
        .collect()
}

/// Waits until `target` distinct deliveries are in, or `until` passes, or (with `stall`) none
/// has come for that long.
pub async fn wait_for(
    inbox: &Inbox,
    target: u64,
    until: Instant,
    stall: Option<Duration>,
    label: &str,
) {
    let progress = Progress::start(label, target, inbox.delivered.clone());
    let (mut seen, mut moved) = (inbox.delivered.load(Ordering::Relaxed), Instant::now());
    while seen < target && Instant::now() < until {
        if stall.is_some_and(|s| moved.elapsed() >= s) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let now = inbox.delivered.load(Ordering::Relaxed);
        if now != seen {
            (seen, moved) = (now, Instant::now());
        }
    }
    progress.finish();
}

/// The figures every webhook phase reports, from its checked arrivals (`counts`: what the
/// phase added to the ledger; `problems`: the ledger's descriptions it added).
pub fn report(
    extra: &mut serde_json::Map<String, Value>,
    accepted: u64,
    d: &Delivered,
    counts: Counts,
    failures: &[String],
    problems: &[String],
    missing: &str,
) {
    extra.insert("activities_accepted".into(), json!(accepted));
    extra.insert(
        "deliveries_due".into(),
        json!(accepted * KINDS.len() as u64),
    );
    extra.insert(
        "deliveries_received".into(),
        json!(counts.posts + failures.len() as u64),
    );
    extra.insert("verified".into(), json!(counts.posts));
    extra.insert("verify_failures".into(), json!(failures.len()));
    extra.insert(missing.into(), json!(d.missing.len()));
    extra.insert("resent".into(), json!(counts.resent));
    extra.insert("duplicates".into(), json!(counts.duplicates));
    extra.insert("resent_changed".into(), json!(counts.changed));
    extra.insert("out_of_order".into(), json!(counts.out_of_order));
    extra.insert("unconfirmed".into(), json!(d.unconfirmed));
    extra.insert("arrived_before_answer".into(), json!(d.before_answer));
    extra.insert(
        "latency_from_post_sent_ms".into(),
        Percentiles::of_micros(d.from_sent_us.clone()).to_json(),
    );
    for f in failures.iter().take(3) {
        eprintln!("  webhook: a delivery failed its checks: {f}");
    }
    for p in problems.iter().take(5) {
        eprintln!("  webhook: {p}");
    }
    if !d.missing.is_empty() {
        eprintln!(
            "  webhook: {} deliveries did not arrive ({missing}), e.g. {:?}",
            d.missing.len(),
            &d.missing[..d.missing.len().min(5)]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The scenario.

/// The scenario's figures: its two phases and its parameters.
pub async fn run(server: &Server, plan: &Plan) -> Result<(Vec<Phase>, Value)> {
    let receiver = Receiver::start(Duration::ZERO).await?;
    let setup = Arc::new(
        Setup::create(
            &server.api,
            &receiver,
            "webhook",
            plan.hubs,
            plan.conversations_per_hub,
        )
        .await?,
    );
    let mut ledger = Ledger::default();
    let offered_count = ((plan.rate as f64) * plan.offered.as_secs_f64()).round() as u64;
    let offered = offered(server, plan, &receiver, &setup, &mut ledger, offered_count).await;
    let maximum = maximum(server, plan, &receiver, &setup, &mut ledger).await;
    let phases = vec![offered, maximum];
    let best = phases
        .iter()
        .map(|p| p.per_second())
        .fold(0.0_f64, f64::max);
    let judged = phases.iter().find(|p| p.name == JUDGED_PHASE);
    let summary = json!({
        "parameters": {
            "hubs": plan.hubs,
            "nodes": server.nodes(),
            "endpoints": plan.hubs * KINDS.len(),
            "endpoint_kinds": KINDS,
            "deliveries_per_activity": KINDS.len(),
            "conversations": setup.conversations.len(),
            "offered_rate": plan.rate,
            "offered_seconds": plan.offered.as_secs_f64(),
            "offered_in_flight_limit": plan.in_flight,
            "max_activities": plan.activities,
            "max_concurrency": plan.concurrency,
            "cap_seconds_per_phase": plan.cap.as_secs(),
            "retry_schedule": RETRY_SCHEDULE,
            "webhook_timeout": WEBHOOK_TIMEOUT,
        },
        "target": { "deliveries_per_second": 5000, "cpu_ms_per_delivery": 0.3 },
        "best_deliveries_per_second": round1(best),
        "target_phase": JUDGED_PHASE,
        "meets_target": judged.and_then(|p| meets_target(p.per_second(), p.cpu_ms_per_message(), p.errors)),
    });
    Ok((phases, summary))
}

/// The phase the targets are judged on, here and in `RESULTS.md`: the maximum rate.
pub const JUDGED_PHASE: &str = "max";

/// Whether a phase meets the targets (≥ 5,000 deliveries/s, ≤ 0.3 ms of CPU each): `None` when
/// that cannot be said, as its CPU was not measured or it had errors, while the rate alone does
/// not already miss.
fn meets_target(per_second: f64, cpu_ms: Option<f64>, errors: u64) -> Option<bool> {
    if per_second < 5000.0 {
        return Some(false);
    }
    if errors > 0 {
        return None;
    }
    Some(cpu_ms? <= 0.3)
}

/// Phase 1: `count` activities posted on a schedule of `plan.rate` per second.
async fn offered(
    server: &Server,
    plan: &Plan,
    receiver: &Receiver,
    setup: &Arc<Setup>,
    ledger: &mut Ledger,
    count: u64,
) -> Phase {
    const PHASE: u64 = 1;
    let inbox = receiver.inbox.clone();
    inbox.count(PHASE, count);
    let posts = Posts::new(count);
    let errors = Arc::new(Mutex::new(Vec::new()));
    let answered = Arc::new(AtomicU64::new(0));
    let limit = Arc::new(Semaphore::new(plan.in_flight));
    let progress = Progress::start(
        &format!("webhook: {}/s offered", plan.rate),
        count,
        answered.clone(),
    );
    let mut span = Span::start(server, &inbox).await;
    let bases = server.bases();
    let start = Instant::now();
    for seq in 0..count {
        let due = start + Duration::from_secs_f64(seq as f64 / plan.rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        if start.elapsed() > plan.cap {
            break;
        }
        let url = spread(
            &bases,
            seq,
            setup.conversations.len(),
            &setup.conversation(seq).url,
        );
        let (http, token) = (server.api.http.clone(), server.api.engine.clone());
        let (inbox, posts, errors, answered) = (
            inbox.clone(),
            posts.clone(),
            errors.clone(),
            answered.clone(),
        );
        tokio::spawn(async move {
            let sent = inbox.now_us();
            match post(&http, &url, &token, activity(PHASE, seq, sent), None).await {
                Posted::Accepted => posts.accept(seq, sent, inbox.now_us()),
                Posted::Refused(_, e) | Posted::Unanswered(e) => {
                    if let Ok(mut errs) = errors.lock() {
                        errs.push(e);
                    }
                }
            }
            answered.fetch_add(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    let sending = start.elapsed();
    let _ = limit.acquire_many(plan.in_flight as u32).await;
    span.posted(server, &inbox);
    progress.finish();
    let errors = errors.lock().map(|e| e.clone()).unwrap_or_default();
    let errors = (errors.len() as u64, errors);
    let mut extra = serde_json::Map::new();
    extra.insert("offered_per_second".into(), json!(plan.rate));
    extra.insert(
        "sent_per_second".into(),
        json!(round1(
            answered.load(Ordering::Relaxed) as f64 / sending.as_secs_f64().max(1e-9)
        )),
    );
    finish(
        server, plan, receiver, setup, ledger, "offered", PHASE, &span, &posts, errors, extra,
    )
    .await
}

/// Phase 2: as fast as `plan.concurrency` posters go.
async fn maximum(
    server: &Server,
    plan: &Plan,
    receiver: &Receiver,
    setup: &Arc<Setup>,
    ledger: &mut Ledger,
) -> Phase {
    const PHASE: u64 = 2;
    let inbox = receiver.inbox.clone();
    inbox.count(PHASE, plan.activities);
    let posts = Posts::new(plan.activities);
    let mut span = Span::start(server, &inbox).await;
    let bases = server.bases();
    let (http, token, s, p, i) = (
        server.api.http.clone(),
        server.api.engine.clone(),
        setup.clone(),
        posts.clone(),
        inbox.clone(),
    );
    let run = closed_loop(
        &format!("webhook: max rate, {} posters", plan.concurrency),
        plan.concurrency,
        plan.activities,
        plan.cap,
        move |seq| {
            let url = spread(&bases, seq, s.conversations.len(), &s.conversation(seq).url);
            let (http, token, posts, inbox) = (http.clone(), token.clone(), p.clone(), i.clone());
            async move {
                let sent = inbox.now_us();
                match post(&http, &url, &token, activity(PHASE, seq, sent), None).await {
                    Posted::Accepted => {
                        posts.accept(seq, sent, inbox.now_us());
                        Ok(())
                    }
                    Posted::Refused(_, e) | Posted::Unanswered(e) => Err(e),
                }
            }
        },
    )
    .await;
    span.posted(server, &inbox);
    let mut extra = serde_json::Map::new();
    extra.insert("concurrency".into(), json!(plan.concurrency));
    extra.insert(
        "posted_per_second".into(),
        json!(round1(run.ok as f64 / run.elapsed.as_secs_f64().max(1e-9))),
    );
    finish(
        server,
        plan,
        receiver,
        setup,
        ledger,
        "max",
        PHASE,
        &span,
        &posts,
        (run.errors, run.first_errors),
        extra,
    )
    .await
}

/// When a phase started and when its posting ended (µs on the inbox clock), with the CPU
/// used by then.
struct Span {
    start_us: u64,
    before: CpuSnapshot,
    posted_us: u64,
    at_posted: CpuSnapshot,
    /// The database's counters at the start, on PostgreSQL.
    pg_before: Option<PgCounters>,
    /// When the phase started, ms since the epoch (to find it in a server's log).
    unix_ms: u128,
}

impl Span {
    async fn start(server: &Server, inbox: &Inbox) -> Self {
        let pg_before = server.pg_counters().await;
        let before = server.cpu();
        let start_us = inbox.now_us();
        Self {
            start_us,
            at_posted: before.clone(),
            before,
            posted_us: start_us,
            pg_before,
            unix_ms: unix_ms(),
        }
    }

    /// The last post was answered.
    fn posted(&mut self, server: &Server, inbox: &Inbox) {
        self.posted_us = inbox.now_us();
        self.at_posted = server.cpu();
    }
}

/// Now, in ms since the epoch.
fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Waits for the deliveries still on their way, checks everything that arrived, and makes the
/// phase: `count` is the deliveries that arrived, `seconds` the time from the first post to the
/// last of them.
#[allow(clippy::too_many_arguments)]
async fn finish(
    server: &Server,
    plan: &Plan,
    receiver: &Receiver,
    setup: &Arc<Setup>,
    ledger: &mut Ledger,
    name: &str,
    phase: u64,
    span: &Span,
    posts: &Posts,
    (errors, first_errors): (u64, Vec<String>),
    mut extra: serde_json::Map<String, Value>,
) -> Phase {
    let inbox = &receiver.inbox;
    let accepted = posts.accepted();
    let target = accepted.len() as u64 * KINDS.len() as u64;
    // However long the server takes, as long as it is getting on with it.
    wait_for(
        inbox,
        target,
        Instant::now() + MAX_DRAIN,
        Some(plan.drain),
        &format!("webhook {name}: deliveries"),
    )
    .await;
    let after = server.cpu();
    let end_ms = unix_ms();
    // Deltas of the database's counters, per delivery (read after a pause, so that the
    // backends have published theirs: see `Server::pg_counters`).
    let pg_after = match span.pg_before {
        Some(_) => {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            server.pg_counters().await
        }
        None => None,
    };
    for e in first_errors.iter().take(3) {
        eprintln!("  webhook {name}: post refused: {e}");
    }
    let (checked, failures) = check_all(inbox.take(), setup, inbox).await;
    let (counts_before, problems_before) = (ledger.counts(), ledger.problems.len());
    for c in &checked {
        ledger.add(c);
    }
    let counts = ledger.counts().since(counts_before);
    let d = delivered(ledger, phase, &due(setup, &accepted));
    let post_latency: Vec<u64> = accepted
        .iter()
        .map(|&(seq, at)| at.saturating_sub(posts.sent[seq as usize].load(Ordering::Relaxed)))
        .collect();
    let seconds = d
        .last_us
        .unwrap_or_else(|| inbox.now_us())
        .saturating_sub(span.start_us) as f64
        / 1e6;
    report(
        &mut extra,
        accepted.len() as u64,
        &d,
        counts,
        &failures,
        &ledger.problems[problems_before..],
        "missing",
    );
    extra.insert("post_errors".into(), json!(errors));
    extra.insert(
        "window_unix_ms".into(),
        json!([span.unix_ms as u64, end_ms as u64]),
    );
    if let (Some(before), Some(after)) = (span.pg_before, pg_after) {
        extra.insert("postgres".into(), before.per(&after, d.count));
    }
    extra.insert(
        "post_latency_ms".into(),
        Percentiles::of_micros(post_latency).to_json(),
    );
    let cpu = span.before.used_until(&after);
    if !accepted.is_empty() {
        extra.insert(
            "cpu_ms_per_activity".into(),
            json!(cpu.ms().map(|ms| round3(ms / accepted.len() as f64))),
        );
    }
    // The backlog left when posting ended, delivered with no posts competing: the cost and
    // pace of delivery alone (when the backlog is big enough to say).
    let backlog = d.at_us.iter().filter(|&&at| at > span.posted_us).count() as u64;
    let drain_cpu = span.at_posted.used_until(&after);
    let drain_seconds = d
        .last_us
        .unwrap_or(span.posted_us)
        .saturating_sub(span.posted_us) as f64
        / 1e6;
    extra.insert("delivered_after_posting".into(), json!(backlog));
    if backlog > 0 && drain_seconds > 0.0 {
        extra.insert(
            "after_posting_deliveries_per_second".into(),
            json!(round1(backlog as f64 / drain_seconds)),
        );
        // Null when the drain was too short for the clock to see (see its ticks).
        extra.insert(
            "after_posting_cpu_ms_per_delivery".into(),
            json!(drain_cpu.ms().map(|ms| round3(ms / backlog as f64))),
        );
        extra.insert("after_posting_cpu_ticks".into(), json!(drain_cpu.ticks()));
    }
    Phase {
        name: name.to_owned(),
        unit: "delivery",
        count: d.count,
        errors: errors + d.missing.len() as u64 + failures.len() as u64 + counts.faults(),
        seconds,
        latency: Percentiles::of_micros(d.from_accepted_us),
        cpu,
        extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_in_a_body() {
        let direct = r#"{"activity":{"message":{"text":"bench:2:17:123456","type":"text"}}}"#;
        assert_eq!(markers(direct), vec![(2, 17, 123456)]);
        let system = r#"{"activities":[{"text":"bench:1:3:9"},{"text":"bench:1:4:10"}]}"#;
        assert_eq!(markers(system), vec![(1, 3, 9), (1, 4, 10)]);
        assert_eq!(markers(r#"{"text":"benchmark hub"}"#), vec![]);
        assert_eq!(markers(r#"{"text":"bench:x:1:2"}"#), vec![]);
        assert_eq!(markers(r#"{"text":"bench:1:2"}"#), vec![]);
        assert_eq!(markers(r#"{"text":"bench:1:2:3:4"}"#), vec![]);
    }

    #[test]
    fn the_target_is_met_only_when_measured() {
        assert_eq!(meets_target(6000.0, Some(0.2), 0), Some(true));
        assert_eq!(meets_target(6000.0, Some(0.4), 0), Some(false));
        assert_eq!(meets_target(4000.0, Some(0.2), 0), Some(false));
        // CPU not measured, or errors: not known.
        assert_eq!(meets_target(6000.0, None, 0), None);
        assert_eq!(meets_target(6000.0, Some(0.2), 3), None);
        assert_eq!(meets_target(4000.0, None, 0), Some(false));
    }

    #[test]
    fn hex_keys() {
        let hex = "00FF".repeat(16);
        let bytes = hex32(&hex).unwrap();
        assert_eq!((bytes[0], bytes[1], bytes[31]), (0, 255, 255));
        assert_eq!(hex32("00"), None);
        assert_eq!(hex32(&"zz".repeat(32)), None);
    }

    fn checked(
        path: &str,
        id: &str,
        conversation: &str,
        at_us: u64,
        marks: &[(u64, i64)],
    ) -> Checked {
        Checked {
            path: path.to_owned(),
            webhook_id: id.to_owned(),
            conversation: conversation.to_owned(),
            at_us,
            marks: marks
                .iter()
                .map(|&(seq, event_id)| Mark {
                    phase: 1,
                    seq,
                    sent_us: 10,
                    event_id,
                })
                .collect(),
        }
    }

    #[test]
    fn a_resend_is_not_a_duplicate() {
        let mut l = Ledger::default();
        l.add(&checked("/agent/0", "msg_a", "c1", 100, &[(0, 1)]));
        l.add(&checked("/system/0", "msg_b", "c1", 110, &[(0, 1)]));
        // The crash: msg_a comes again, unchanged.
        l.add(&checked("/agent/0", "msg_a", "c1", 500, &[(0, 1)]));
        assert_eq!((l.posts, l.resent, l.duplicates, l.changed), (3, 1, 0, 0));
        assert_eq!(l.faults(), 0);
        // The first arrival counts, not the re-send.
        assert_eq!(l.first[&("/agent/0".to_owned(), 1, 0)].at_us, 100);
    }

    #[test]
    fn one_activity_under_two_webhook_ids_is_a_duplicate() {
        let mut l = Ledger::default();
        l.add(&checked("/agent/0", "msg_a", "c1", 100, &[(0, 1)]));
        l.add(&checked("/agent/0", "msg_z", "c1", 200, &[(0, 1)]));
        assert_eq!((l.resent, l.duplicates), (0, 1));
        // A webhook-id that comes back with something else.
        l.add(&checked("/agent/0", "msg_a", "c1", 300, &[(5, 9)]));
        assert_eq!((l.resent, l.changed), (1, 1));
        assert_eq!(l.faults(), 2);
        assert_eq!(l.problems.len(), 2);
    }

    #[test]
    fn order_is_per_conversation_and_endpoint() {
        let mut l = Ledger::default();
        l.add(&checked("/agent/0", "m1", "c1", 1, &[(0, 5)]));
        l.add(&checked("/agent/0", "m2", "c2", 2, &[(1, 3)]));
        l.add(&checked("/system/0", "m3", "c1", 3, &[(2, 4)]));
        assert_eq!(l.out_of_order, 0);
        l.add(&checked("/agent/0", "m4", "c1", 4, &[(3, 4)]));
        assert_eq!(l.out_of_order, 1);
    }

    #[test]
    fn delivered_matches_due_pairs() {
        let mut l = Ledger::default();
        l.add(&checked("/agent/0", "m1", "c1", 100, &[(0, 1)]));
        l.add(&checked("/system/0", "m2", "c1", 40, &[(0, 1)]));
        // Not due: its post got no answer.
        l.add(&checked("/agent/0", "m3", "c1", 120, &[(7, 2)]));
        let d = delivered(
            &l,
            1,
            &[
                ("/agent/0", 0, 50),
                ("/system/0", 0, 50),
                ("/agent/0", 1, 60),
            ],
        );
        assert_eq!(d.count, 2);
        assert_eq!(d.missing, vec![("/agent/0".to_owned(), 1)]);
        assert_eq!(d.unconfirmed, 1);
        assert_eq!(d.before_answer, 1);
        assert_eq!(d.from_accepted_us, vec![50, 0]);
        assert_eq!(d.from_sent_us, vec![90, 30]);
        assert_eq!(d.last_us, Some(100));
        // Another phase sees none of it.
        assert_eq!(delivered(&l, 2, &[]).unconfirmed, 0);
    }
}
