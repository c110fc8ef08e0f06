//! Scenario `channel`: one provider channel end to end, Telegram (SPEC 7.9). The bench holds a
//! fake Bot API (an HTTP server on loopback that answers every method `{ ok: true, result }` and
//! keeps the `sendMessage` calls with their arrival times); the server is pointed at it
//! (`SWITCHBOARD_PROVIDER_TELEGRAM_URL`, loopback only). One hub has a Direct Agent integration
//! held by one websocket, a Telegram integration (whose `webhookSecret` signs the updates) and a
//! Direct Customer integration; each has `chats` conversations.
//!
//! Three phases, each an open loop at the same offered rate and count:
//! 1. `inbound`: Telegram updates posted to `/channels/telegram/{id}` with the secret token, each
//!    a new `message_id`; latency runs from the POST to the frame on the agent's socket.
//! 2. `direct`: the same number of customer activities as `POST /inbound/…/activity/{id}` into
//!    the Direct Customer conversations, to the same socket: the reference cost of a message.
//! 3. `outbound`: the agent's replies into the Telegram conversations, until the fake got every
//!    `sendMessage`: provider deliveries/s, latency from the POST to the fake's arrival.
//!
//! The texts carry `bench:<phase>:<seq>:<µs posted>` (as in `live` and `webhook`), so arrivals are
//! matched to posts and what is lost or duplicated is counted. The target: an inbound webhook
//! costs the server no more than 1.5 × the CPU of a `POST /inbound` activity.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::load::Progress;
use crate::procfs::{CpuSnapshot, CpuUsed};
use crate::server::{Api, Server};
use crate::stats::{round1, round3, round6, Percentiles, Phase};
use crate::webhook::{self, markers, Posted};
use crate::Result;

/// The size of the scenario.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Telegram chats, and as many Direct Customer conversations.
    pub chats: usize,
    /// The offered rate of every phase (messages/s) and how long it is offered.
    pub rate: u64,
    pub offered: Duration,
    /// The most requests in flight: past it the schedule slips, and the rate sent is reported.
    pub in_flight: usize,
    /// Each phase is posted in this many slices; the inbound and direct slices alternate.
    pub rounds: u32,
    /// The longest a slice may post.
    pub cap: Duration,
    /// After the last post, arrivals are waited for until they are all in, or none has come for
    /// this long.
    pub drain: Duration,
}

/// The bot token the Telegram integration is created with; the fake accepts no other.
const TOKEN: &str = "424242:AAbenchBenchBenchBenchBenchBenchBen";

/// The target: CPU of an inbound webhook over the CPU of a `POST /inbound` activity.
pub const TARGET_RATIO: f64 = 1.5;

/// The server settings the scenario needs: the fake Bot API, reached on loopback only.
pub fn env(fake_base: &str) -> Vec<(String, String)> {
    [
        ("SWITCHBOARD_PROVIDER_TELEGRAM_URL", fake_base),
        ("SWITCHBOARD_PROVIDERS_LOOPBACK_ONLY", "true"),
        ("SWITCHBOARD_PROVIDERS", "live"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

// ---------------------------------------------------------------------------------------------
// Arrivals: frames on the agent's socket and calls at the fake, counted per phase.

/// Where a phase's messages arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Socket,
    Provider,
}

struct Tally {
    phase: u64,
    source: Source,
    /// The first sequence number counted: `seen[i]` is `first + i`.
    first: u64,
    seen: Vec<bool>,
    micros: Vec<u64>,
    duplicates: u64,
    last_us: Option<u64>,
}

/// What arrived in the current phase, on the clock the markers are written with.
pub struct Arrivals {
    clock: Instant,
    tally: Mutex<Tally>,
    received: AtomicU64,
    /// Sockets the server closed or that failed.
    pub(crate) closed: AtomicU64,
}

impl Arrivals {
    pub(crate) fn new() -> Self {
        Self {
            clock: Instant::now(),
            tally: Mutex::new(Tally {
                phase: u64::MAX,
                source: Source::Socket,
                first: 0,
                seen: Vec::new(),
                micros: Vec::new(),
                duplicates: 0,
                last_us: None,
            }),
            received: AtomicU64::new(0),
            closed: AtomicU64::new(0),
        }
    }

    pub(crate) fn now_us(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }

    /// Starts counting the messages `seqs` of `phase` as they arrive at `source`.
    pub(crate) fn count(&self, phase: u64, seqs: std::ops::Range<u64>, source: Source) {
        let count = seqs.end.saturating_sub(seqs.start);
        if let Ok(mut t) = self.tally.lock() {
            *t = Tally {
                phase,
                source,
                first: seqs.start,
                seen: vec![false; count as usize],
                micros: Vec::with_capacity(count as usize),
                duplicates: 0,
                last_us: None,
            };
        }
        self.received.store(0, Ordering::Relaxed);
    }

    /// A frame or a call with `text` arrived at `source`: its first marker counts, when it is of
    /// the counted phase and source.
    fn arrive(&self, source: Source, text: &str) {
        let now = self.now_us();
        let Some(&(phase, seq, sent)) = markers(text).first() else {
            return;
        };
        let Ok(mut t) = self.tally.lock() else {
            return;
        };
        if phase != t.phase || source != t.source {
            return;
        }
        let Some(i) = seq.checked_sub(t.first) else {
            return;
        };
        match t.seen.get_mut(i as usize) {
            Some(seen) if !*seen => {
                *seen = true;
                t.micros.push(now.saturating_sub(sent));
                t.last_us = Some(now);
                self.received.fetch_add(1, Ordering::Relaxed);
            }
            Some(_) => t.duplicates += 1,
            None => {}
        }
    }

    /// The latencies (µs), duplicates and the last arrival (µs) of the counted phase.
    fn take(&self) -> (Vec<u64>, u64, Option<u64>) {
        match self.tally.lock() {
            Ok(mut t) => (std::mem::take(&mut t.micros), t.duplicates, t.last_us),
            Err(_) => (Vec::new(), 0, None),
        }
    }

    /// Waits until `due` have arrived, or none has come for `quiet`.
    pub(crate) async fn wait_for(&self, due: u64, quiet: Duration) {
        let (mut seen, mut since) = (self.received.load(Ordering::Relaxed), Instant::now());
        while seen < due && since.elapsed() < quiet {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let now = self.received.load(Ordering::Relaxed);
            if now != seen {
                (seen, since) = (now, Instant::now());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The fake Bot API.

/// What the fake was asked: calls per method, and requests that break the Bot API's rules.
#[derive(Default)]
struct Calls {
    methods: BTreeMap<String, u64>,
    problems: Vec<String>,
}

struct Bot {
    arrivals: Arc<Arrivals>,
    next_id: AtomicU64,
    calls: Mutex<Calls>,
}

impl Bot {
    fn problem(&self, p: String) {
        if let Ok(mut c) = self.calls.lock() {
            if c.problems.len() < 20 {
                c.problems.push(p);
            }
        }
    }
}

fn bot_answer(status: u16, body: Value) -> poem::Response {
    poem::Response::builder()
        .status(poem::http::StatusCode::from_u16(status).unwrap_or_default())
        .content_type("application/json")
        .body(body.to_string())
}

/// `POST /bot{token}/{method}`: `{ ok: true, result }`; 401 to another token, 400 to a body that
/// is not what the method takes.
#[poem::handler]
async fn bot_call(
    req: &poem::Request,
    poem::web::Path((bot, method)): poem::web::Path<(String, String)>,
    body: Vec<u8>,
    state: poem::web::Data<&Arc<Bot>>,
) -> poem::Response {
    if let Ok(mut c) = state.calls.lock() {
        *c.methods.entry(method.clone()).or_default() += 1;
    }
    let refuse = |code: u16, why: &str| {
        state.problem(format!("{} {}: {why}", req.method(), req.uri().path()));
        bot_answer(
            code,
            json!({ "ok": false, "error_code": code, "description": why }),
        )
    };
    if bot.strip_prefix("bot") != Some(TOKEN) {
        return refuse(401, "Unauthorized");
    }
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return refuse(400, "Bad Request: the body is not JSON"),
        }
    };
    let result = match method.as_str() {
        "getMe" => json!({ "id": 424242, "is_bot": true, "first_name": "Bench",
                           "username": "sb_bench_bot" }),
        "setWebhook" | "deleteWebhook" | "sendChatAction" | "answerCallbackQuery" => json!(true),
        "sendMessage" => {
            let text = body["text"].as_str().unwrap_or_default();
            if body["chat_id"].is_null() || text.is_empty() {
                return refuse(400, "Bad Request: sendMessage needs chat_id and text");
            }
            state.arrivals.arrive(Source::Provider, text);
            json!({ "message_id": state.next_id.fetch_add(1, Ordering::Relaxed),
                    "date": 1_700_000_000, "chat": { "id": body["chat_id"], "type": "private" },
                    "text": text })
        }
        other => {
            return refuse(
                400,
                &format!("Bad Request: the bench's fake has no {other}"),
            )
        }
    };
    bot_answer(200, json!({ "ok": true, "result": result }))
}

/// The fake Bot API on 127.0.0.1:0; stopped when dropped.
pub struct FakeTelegram {
    pub base: String,
    bot: Arc<Bot>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeTelegram {
    pub async fn start() -> Result<Self> {
        use poem::EndpointExt;
        let bot = Arc::new(Bot {
            arrivals: Arc::new(Arrivals::new()),
            next_id: AtomicU64::new(1),
            calls: Mutex::new(Calls::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind the fake Telegram: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("the fake Telegram's address: {e}"))?;
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener)
            .map_err(|e| format!("the fake Telegram's acceptor: {e}"))?;
        let app = poem::Route::new()
            .at("/:bot/:method", bot_call)
            .data(bot.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = poem::Server::new_with_acceptor(acceptor).run(app).await {
                eprintln!("  the fake Telegram stopped: {e}");
            }
        });
        Ok(Self {
            base: format!("http://{addr}"),
            bot,
            task,
        })
    }

    fn calls(&self) -> (BTreeMap<String, u64>, Vec<String>) {
        self.bot
            .calls
            .lock()
            .map(|c| (c.methods.clone(), c.problems.clone()))
            .unwrap_or_default()
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Set-up.

/// The agent's socket: every text frame goes to `arrivals`, until it closes.
pub(crate) async fn agent_socket(
    api: &Api,
    agent: &str,
    arrivals: Arc<Arrivals>,
) -> Result<tokio::task::JoinHandle<()>> {
    let mut ws = crate::live::connect_agent(api, agent).await?;
    Ok(tokio::spawn(async move {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Text(t)) => arrivals.arrive(Source::Socket, t.as_str()),
                Ok(Message::Close(_)) | Err(_) => {
                    eprintln!("  channel: the agent socket closed: {msg:?}");
                    arrivals.closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(_) => {}
            }
        }
    }))
}

/// What the scenario set up.
struct Setup {
    agent: String,
    telegram: String,
    secret: String,
    /// The Telegram webhook route of the integration.
    inbound: String,
    /// The Telegram chats' ids and their conversations' activity URLs.
    chats: Vec<(i64, String)>,
    /// The Direct Customer conversations' activity URLs.
    direct: Vec<String>,
}

async fn set_up(api: &Api, chats: usize) -> Result<Setup> {
    let hub = api.hub("channel").await?;
    let agent = api.direct(&hub, "agents", "Agent").await?;
    let customers = api.direct(&hub, "customers", "Customer").await?;
    let created = api
        .post(
            &format!("/api/v1/integrations/hubs/{hub}"),
            &api.portal,
            &json!({ "name": "telegram", "channelId": "Telegram",
                     "configuration": { "token": TOKEN } }),
        )
        .await?;
    let telegram = created["integrationId"]
        .as_str()
        .ok_or_else(|| format!("no integrationId in {created}"))?
        .to_owned();
    let secret = created["configuration"]["webhookSecret"]
        .as_str()
        .ok_or_else(|| format!("no configuration.webhookSecret in {created}"))?
        .to_owned();
    let mut setup = Setup {
        agent,
        inbound: api.url(&format!("/channels/telegram/{telegram}")),
        telegram,
        secret,
        chats: Vec::with_capacity(chats),
        direct: Vec::with_capacity(chats),
    };
    for c in 0..chats {
        let chat = 700_000_000 + c as i64;
        let conversation = api.establish(&setup.telegram, &chat.to_string()).await?;
        setup.chats.push((chat, activity_url(api, &conversation)));
        let id = api.establish(&customers, &format!("visitor {c}")).await?;
        setup.direct.push(activity_url(api, &id));
    }
    Ok(setup)
}

pub(crate) fn activity_url(api: &Api, conversation: &str) -> String {
    api.url(&format!(
        "/inbound/customer/v1/direct/activity/{conversation}"
    ))
}

/// The Telegram update of message `seq` of `phase` in `chat`, posted at `us`.
fn update(phase: u64, seq: u64, chat: i64, us: u64) -> String {
    // Unique per phase and message: the server takes a repeated message_id for a re-send.
    let id = phase * 10_000_000 + seq;
    json!({
        "update_id": id,
        "message": {
            "message_id": id,
            "date": 1_700_000_000,
            "chat": { "id": chat, "type": "private", "first_name": "Bench" },
            "from": { "id": chat, "is_bot": false, "first_name": "Bench" },
            "text": format!("bench:{phase}:{seq}:{us}"),
        }
    })
    .to_string()
}

/// The agent's reply `seq` of `phase`, posted at `us`.
fn reply(agent: &str, phase: u64, seq: u64, us: u64) -> String {
    json!({
        "type": "message",
        "sender": { "integrationId": agent },
        "message": { "type": "text", "text": format!("bench:{phase}:{seq}:{us}") },
    })
    .to_string()
}

/// Posts one Telegram update; Ok once it is accepted.
async fn post_update(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    body: String,
) -> std::result::Result<(), String> {
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-telegram-bot-api-secret-token", secret)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let text = resp.bytes().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{status} {}", String::from_utf8_lossy(&text)))
    }
}

/// Posts an engine activity; Ok once it is accepted.
pub(crate) async fn post_activity(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: String,
) -> std::result::Result<(), String> {
    match webhook::post(http, url, token, body, None).await {
        Posted::Accepted => Ok(()),
        Posted::Refused(_, e) | Posted::Unanswered(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Phases.

/// What an open loop did.
pub(crate) struct Sent {
    /// Latency of each accepted request, µs.
    pub(crate) answered: Vec<u64>,
    pub(crate) errors: Vec<String>,
    pub(crate) started: u64,
    sending: Duration,
    max_lag: Duration,
}

/// `call(seq)` for each seq of `seqs`, started on a schedule of `rate` per second whatever the
/// answers do (at most `in_flight` at once, at most `cap` long); returns when all are answered.
pub(crate) async fn open_loop<F, Fut>(
    label: &str,
    plan: &Plan,
    seqs: std::ops::Range<u64>,
    call: F,
) -> Sent
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = std::result::Result<(), String>> + Send + 'static,
{
    let count = seqs.end.saturating_sub(seqs.start);
    let answered = Arc::new(Mutex::new(Vec::with_capacity(count as usize)));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicU64::new(0));
    let limit = Arc::new(Semaphore::new(plan.in_flight));
    let progress = Progress::start(label, count, done.clone());
    let start = Instant::now();
    let mut max_lag = Duration::ZERO;
    let mut started = 0u64;
    for seq in seqs {
        let due = start + Duration::from_secs_f64(started as f64 / plan.rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        max_lag = max_lag.max(due.elapsed());
        if start.elapsed() > plan.cap {
            break;
        }
        let request = call(seq);
        let (answered, errors, done) = (answered.clone(), errors.clone(), done.clone());
        started += 1;
        tokio::spawn(async move {
            let t = Instant::now();
            let result = request.await;
            let us = t.elapsed().as_micros() as u64;
            match result {
                Ok(()) => answered.lock().map(|mut a| a.push(us)).unwrap_or(()),
                Err(e) => errors.lock().map(|mut e2| e2.push(e)).unwrap_or(()),
            }
            done.fetch_add(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    let sending = start.elapsed();
    let _ = limit.acquire_many(plan.in_flight as u32).await;
    progress.finish();
    Sent {
        answered: taken(&answered),
        errors: taken(&errors),
        started,
        sending,
        max_lag,
    }
}

/// What a shared list holds, taken out.
fn taken<T>(list: &Mutex<Vec<T>>) -> Vec<T> {
    list.lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default()
}

/// A phase's figures, summed over its slices.
#[derive(Default)]
pub(crate) struct Acc {
    slices: u32,
    sent: Vec<u64>,
    errors: Vec<String>,
    started: u64,
    sending: Duration,
    max_lag: Duration,
    accepted: u64,
    micros: Vec<u64>,
    duplicates: u64,
    /// From each slice's first post to its last arrival, summed.
    seconds: f64,
    cpu: Option<CpuUsed>,
}

/// One slice of a phase: the requests `seqs` made by `call` at the plan's rate, arriving where
/// `kind` does; counted into `acc` once all have arrived (or none came for `plan.drain`). The
/// CPU counts from the first post to the last arrival, so the pauses between slices do not.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn slice<F, Fut>(
    server: &Server,
    plan: &Plan,
    arrivals: &Arrivals,
    kind: Kind,
    number: u64,
    seqs: std::ops::Range<u64>,
    call: F,
    acc: &mut Acc,
) where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = std::result::Result<(), String>> + Send + 'static,
{
    let name = kind.name();
    arrivals.count(number, seqs.clone(), kind.source());
    let before = CpuSnapshot::take(server.pid, server.database);
    let start_us = arrivals.now_us();
    let label = format!(
        "channel {name} {}/{}: {}/s",
        acc.slices + 1,
        plan.rounds,
        plan.rate
    );
    let sent = open_loop(&label, plan, seqs, call).await;
    let accepted = sent.answered.len() as u64;
    arrivals.wait_for(accepted, plan.drain).await;
    let after = CpuSnapshot::take(server.pid, server.database);
    if acc.errors.is_empty() {
        for e in sent.errors.iter().take(3) {
            eprintln!("  channel {name}: request refused: {e}");
        }
    }
    let (micros, duplicates, last_us) = arrivals.take();
    let used = before.used_until(&after);
    acc.slices += 1;
    acc.sent.extend(sent.answered);
    acc.errors.extend(sent.errors);
    acc.started += sent.started;
    acc.sending += sent.sending;
    acc.max_lag = acc.max_lag.max(sent.max_lag);
    acc.accepted += accepted;
    acc.micros.extend(micros);
    acc.duplicates += duplicates;
    acc.seconds += last_us
        .unwrap_or_else(|| arrivals.now_us())
        .saturating_sub(start_us) as f64
        / 1e6;
    acc.cpu = Some(acc.cpu.map_or(used, |c| c.plus(used)));
}

/// The phase of `kind` from its slices.
pub(crate) fn phase(plan: &Plan, kind: Kind, acc: Acc) -> Phase {
    let received = acc.micros.len() as u64;
    let missing = acc.accepted.saturating_sub(received);
    let mut extra = serde_json::Map::new();
    extra.insert("offered_per_second".into(), json!(plan.rate));
    extra.insert(
        "sent_per_second".into(),
        json!(round1(
            acc.started as f64 / acc.sending.as_secs_f64().max(1e-9)
        )),
    );
    extra.insert("slices".into(), json!(acc.slices));
    extra.insert(
        "max_schedule_lag_ms".into(),
        json!(round3(acc.max_lag.as_secs_f64() * 1000.0)),
    );
    extra.insert("accepted".into(), json!(acc.accepted));
    extra.insert("post_errors".into(), json!(acc.errors.len()));
    extra.insert("missing".into(), json!(missing));
    extra.insert("duplicated".into(), json!(acc.duplicates));
    extra.insert(
        "post_latency_ms".into(),
        Percentiles::of_micros(acc.sent).to_json(),
    );
    Phase {
        name: kind.name().to_owned(),
        unit: kind.unit(),
        count: received,
        errors: acc.errors.len() as u64 + missing + acc.duplicates,
        seconds: acc.seconds,
        latency: Percentiles::of_micros(acc.micros),
        cpu: acc.cpu.unwrap_or_default(),
        extra,
    }
}

/// The scenario's figures: its three phases, the rates, the CPU per message of each and the
/// ratio the target is judged on.
pub async fn run(server: &Server, plan: &Plan, fake: &FakeTelegram) -> Result<(Vec<Phase>, Value)> {
    let api = server.api.clone();
    let arrivals = fake.bot.arrivals.clone();
    let setup = Arc::new(set_up(&api, plan.chats).await?);
    let reader = agent_socket(&api, &setup.agent, arrivals.clone()).await?;
    let count = ((plan.rate as f64) * plan.offered.as_secs_f64())
        .round()
        .max(1.0) as u64;
    let chats = setup.chats.len() as u64;

    // Not reported: one message of each kind per conversation, so that no measured phase pays
    // for a first use (the first update of a chat, caches, the fake's connections).
    for kind in KINDS {
        arrivals.count(0, 0..chats, kind.source());
        let label = format!("channel warm-up, {}", kind.name());
        let sent = open_loop(
            &label,
            plan,
            0..chats,
            requests(&api, &setup, &arrivals, kind, 0),
        )
        .await;
        if let Some(e) = sent.errors.first() {
            reader.abort();
            return Err(format!("channel warm-up, {}: refused: {e}", kind.name()));
        }
        arrivals.wait_for(chats, plan.drain).await;
    }

    // The inbound and direct phases in alternating slices (inbound first in even rounds, direct
    // first in odd ones), so that whatever else the machine does weighs on both alike and
    // neither always runs first; then the outbound phase, in as many slices.
    let rounds = u64::from(plan.rounds.max(1));
    let per_slice = count.div_ceil(rounds);
    let mut accs: [Acc; 3] = Default::default();
    for round in 0..rounds {
        let seqs = round * per_slice..((round + 1) * per_slice).min(count);
        let pair = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in pair {
            let (kind, number) = (KINDS[i], i as u64 + 1);
            let call = requests(&api, &setup, &arrivals, kind, number);
            slice(
                server,
                plan,
                &arrivals,
                kind,
                number,
                seqs.clone(),
                call,
                &mut accs[i],
            )
            .await;
        }
    }
    for round in 0..rounds {
        let seqs = round * per_slice..((round + 1) * per_slice).min(count);
        let call = requests(&api, &setup, &arrivals, Kind::Outbound, 3);
        slice(
            server,
            plan,
            &arrivals,
            Kind::Outbound,
            3,
            seqs,
            call,
            &mut accs[2],
        )
        .await;
    }
    reader.abort();
    let mut phases: Vec<Phase> = KINDS
        .into_iter()
        .zip(accs)
        .map(|(kind, acc)| phase(plan, kind, acc))
        .collect();

    // A request the fake refused is a fault of the server's calls: it counts with the outbound
    // phase's errors.
    let (methods, problems) = fake.calls();
    for p in problems.iter().take(3) {
        eprintln!("  channel: the fake Telegram refused {p}");
    }
    if let Some(outbound) = phases.last_mut() {
        outbound.errors += problems.len() as u64;
        outbound
            .extra
            .insert("provider_problems".into(), json!(problems.len()));
    }
    let cpu = |i: usize| phases.get(i).and_then(Phase::cpu_ms_per_message);
    let (inbound_cpu, direct_cpu, outbound_cpu) = (cpu(0), cpu(1), cpu(2));
    let ratio = match (inbound_cpu, direct_cpu) {
        (Some(i), Some(d)) if d > 0.0 => Some(i / d),
        _ => None,
    };
    let judged_errors = phases.iter().take(2).map(|p| p.errors).sum::<u64>();
    let rate = |i: usize| phases.get(i).map(|p| round1(p.per_second()));
    let summary = json!({
        "parameters": {
            "channel": "Telegram",
            "chats": plan.chats,
            "direct_conversations": plan.chats,
            "offered_rate": plan.rate,
            "offered_seconds": plan.offered.as_secs_f64(),
            "messages_per_phase": count,
            "slices_per_phase": rounds,
            "order": "inbound and direct in alternating 1/rounds slices (ABBA), then outbound",
            "in_flight_limit": plan.in_flight,
            "cap_seconds_per_slice": plan.cap.as_secs(),
        },
        "inbound_per_s": rate(0),
        "direct_per_s": rate(1),
        "deliveries_per_s": rate(2),
        "inbound_cpu_ms_per_message": inbound_cpu.map(round6),
        "direct_cpu_ms_per_message": direct_cpu.map(round6),
        "outbound_cpu_ms_per_delivery": outbound_cpu.map(round6),
        "inbound_cpu_to_direct_cpu": ratio.map(round3),
        "target": { "inbound_cpu_to_direct_cpu": TARGET_RATIO },
        "meets_target": meets_target(ratio, judged_errors),
        "provider_calls": methods,
        "sockets_closed_by_server": arrivals.closed.load(Ordering::Relaxed),
    });
    Ok((phases, summary))
}

/// Whether the inbound/direct CPU ratio meets the target: `None` when it was not measured or the
/// phases had errors (their figures leave out what failed).
fn meets_target(ratio: Option<f64>, errors: u64) -> Option<bool> {
    if errors > 0 {
        return None;
    }
    Some(ratio? <= TARGET_RATIO)
}

/// What one request of a phase is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A Telegram update to the webhook route.
    Inbound,
    /// A customer activity to `POST /inbound/…`.
    Direct,
    /// The agent's reply into a Telegram conversation.
    Outbound,
}

/// The phases, in order.
const KINDS: [Kind; 3] = [Kind::Inbound, Kind::Direct, Kind::Outbound];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Inbound => "inbound",
            Kind::Direct => "direct",
            Kind::Outbound => "outbound",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Kind::Inbound => "update",
            Kind::Direct => "activity",
            Kind::Outbound => "delivery",
        }
    }

    fn source(self) -> Source {
        match self {
            Kind::Outbound => Source::Provider,
            _ => Source::Socket,
        }
    }
}

type Request = std::pin::Pin<Box<dyn Future<Output = std::result::Result<(), String>> + Send>>;

/// The requests of `kind` marked with `phase`: request `seq` goes to conversation `seq % chats`.
fn requests(
    api: &Api,
    setup: &Arc<Setup>,
    arrivals: &Arc<Arrivals>,
    kind: Kind,
    phase: u64,
) -> impl Fn(u64) -> Request {
    let (http, token, setup, arrivals) = (
        api.http.clone(),
        api.engine.clone(),
        setup.clone(),
        arrivals.clone(),
    );
    move |seq: u64| -> Request {
        let (http, token, setup, arrivals) =
            (http.clone(), token.clone(), setup.clone(), arrivals.clone());
        Box::pin(async move {
            let i = (seq % setup.chats.len() as u64) as usize;
            let us = arrivals.now_us();
            match kind {
                Kind::Inbound => {
                    let body = update(phase, seq, setup.chats[i].0, us);
                    post_update(&http, &setup.inbound, &setup.secret, body).await
                }
                Kind::Direct => {
                    let body = webhook::activity(phase, seq, us);
                    post_activity(&http, &setup.direct[i], &token, body).await
                }
                Kind::Outbound => {
                    let body = reply(&setup.agent, phase, seq, us);
                    post_activity(&http, &setup.chats[i].1, &token, body).await
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_count_the_phase_at_its_source_once() {
        let a = Arrivals::new();
        a.count(3, 10..12, Source::Provider);
        let text = |seq: u64| format!(r#"{{"text":"bench:3:{seq}:0"}}"#);
        // The agent's own reply echoed on its socket is not a delivery to the provider.
        a.arrive(Source::Socket, &text(10));
        assert_eq!(a.received.load(Ordering::Relaxed), 0);
        a.arrive(Source::Provider, &text(10));
        a.arrive(Source::Provider, &text(10));
        a.arrive(Source::Provider, &text(11));
        // Another phase, a sequence number of another slice, or no marker: not counted.
        a.arrive(Source::Provider, r#"{"text":"bench:2:11:0"}"#);
        a.arrive(Source::Provider, &text(9));
        a.arrive(Source::Provider, &text(12));
        a.arrive(Source::Provider, "hello");
        let (micros, duplicates, last) = a.take();
        assert_eq!((micros.len(), duplicates), (2, 1));
        assert!(last.is_some());
        assert_eq!(a.received.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn an_update_is_a_private_text_message_with_its_marker() {
        let u: Value = serde_json::from_str(&update(1, 42, 700_000_003, 99)).expect("JSON");
        let m = &u["message"];
        assert_eq!(u["update_id"], m["message_id"]);
        assert_eq!(m["message_id"], 10_000_042);
        assert_eq!(m["chat"]["type"], "private");
        assert_eq!(m["chat"]["id"], 700_000_003);
        assert_eq!(m["from"]["is_bot"], false);
        assert_eq!(
            markers(m["text"].as_str().expect("text")),
            vec![(1, 42, 99)]
        );
        // Another phase never repeats a message_id.
        let w: Value = serde_json::from_str(&update(0, 42, 700_000_003, 0)).expect("JSON");
        assert_ne!(w["message"]["message_id"], m["message_id"]);
    }

    #[test]
    fn the_target_is_met_only_when_measured_without_errors() {
        assert_eq!(meets_target(Some(1.2), 0), Some(true));
        assert_eq!(meets_target(Some(1.5), 0), Some(true));
        assert_eq!(meets_target(Some(1.6), 0), Some(false));
        assert_eq!(meets_target(None, 0), None);
        assert_eq!(meets_target(Some(1.2), 1), None);
    }
}
