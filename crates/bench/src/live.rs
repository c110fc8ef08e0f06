//! Scenario `live`: customer activities posted over HTTP and delivered to agent websocket
//! clients. Each hub has a Direct Customer integration (the customers' side) and a Direct Agent
//! integration without a webhook URL, held by one websocket; conversations are spread over the
//! hubs, so every activity makes exactly one frame. The text of each activity carries its phase,
//! its sequence number and the time it was posted (`bench:<phase>:<seq>:<µs>`), so the reader
//! measures post-to-frame latency and counts what is lost or duplicated.
//!
//! Two phases: a fixed offered rate (an open loop: activities are posted on a schedule, whatever
//! the answers do, with a bound on those in flight), then the maximum rate (a closed loop at a
//! fixed concurrency).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::load::{closed_loop, Progress};
use crate::procfs::CpuSnapshot;
use crate::server::{spread, Api, Server};
use crate::stats::{round1, round3, Percentiles, Phase};
use crate::Result;

/// The size of the scenario.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Hubs, each with one agent socket.
    pub hubs: usize,
    pub conversations_per_hub: usize,
    /// The offered rate (activities/s) and how long it is offered.
    pub rate: u64,
    pub offered: Duration,
    /// The most posts in flight during the offered phase: past it the schedule slips, and the
    /// rate actually sent is reported.
    pub in_flight: usize,
    /// The maximum-rate phase: this many activities (or `cap`) at this concurrency.
    pub max_count: u64,
    pub max_concurrency: usize,
    pub cap: Duration,
    /// How long to wait, after the last post, for the frames still on their way.
    pub drain: Duration,
}

/// What the agent sockets received in the current phase.
struct Tally {
    phase: u64,
    seen: Vec<bool>,
    micros: Vec<u64>,
    duplicates: u64,
    last: Option<Instant>,
}

struct Collector {
    base: Instant,
    tally: Mutex<Tally>,
    received: AtomicU64,
    closed: AtomicU64,
}

impl Collector {
    fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    /// Starts counting `phase`, whose activities are numbered 0..count.
    fn reset(&self, phase: u64, count: u64) {
        if let Ok(mut t) = self.tally.lock() {
            *t = Tally {
                phase,
                seen: vec![false; count as usize],
                micros: Vec::with_capacity(count as usize),
                duplicates: 0,
                last: None,
            };
        }
        self.received.store(0, Ordering::Relaxed);
    }

    /// Records one frame's `bench:<phase>:<seq>:<µs>` marker.
    fn frame(&self, text: &str) {
        let now = self.now_us();
        let Some((phase, seq, sent)) = marker(text) else {
            return;
        };
        let Ok(mut t) = self.tally.lock() else {
            return;
        };
        if phase != t.phase {
            return;
        }
        match t.seen.get_mut(seq as usize) {
            Some(seen) if !*seen => {
                *seen = true;
                t.micros.push(now.saturating_sub(sent));
                t.last = Some(Instant::now());
                self.received.fetch_add(1, Ordering::Relaxed);
            }
            Some(_) => t.duplicates += 1,
            None => {}
        }
    }
}

/// The marker in a frame: (phase, sequence, µs since the bench's base instant).
fn marker(frame: &str) -> Option<(u64, u64, u64)> {
    let rest = &frame[frame.find("bench:")? + "bench:".len()..];
    let end = rest.find('"')?;
    let mut parts = rest[..end].split(':').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// The body of one customer activity.
fn activity(collector: &Collector, phase: u64, seq: u64) -> String {
    format!(
        r#"{{"type":"message","message":{{"type":"text","text":"bench:{phase}:{seq}:{}"}}}}"#,
        collector.now_us()
    )
}

/// Posts one activity; Ok once it is accepted (200).
async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: String,
) -> std::result::Result<(), String> {
    let resp = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
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

/// An agent's websocket: `/engine-chat-hub?iId={integration}` with the engine token.
pub(crate) async fn connect_agent(
    api: &Api,
    integration: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let url = format!(
        "{}/engine-chat-hub?iId={integration}",
        api.base.replacen("http://", "ws://", 1)
    );
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("websocket request: {e}"))?;
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", api.engine)
            .parse()
            .map_err(|_| "a token that is no header value")?,
    );
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| format!("websocket to {url}: {e}"))?;
    Ok(ws)
}

/// Opens the agent socket of `integration` and counts its frames until it closes.
async fn agent_socket(
    api: &Api,
    integration: &str,
    collector: Arc<Collector>,
) -> Result<tokio::task::JoinHandle<()>> {
    let mut ws = connect_agent(api, integration).await?;
    Ok(tokio::spawn(async move {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Text(t)) => collector.frame(t.as_str()),
                Ok(Message::Close(f)) => {
                    eprintln!("  live: the server closed an agent socket: {f:?}");
                    collector.closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("  live: an agent socket failed: {e}");
                    collector.closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }))
}

/// The scenario's figures: its two phases and its parameters.
pub async fn run(server: &Server, plan: &Plan) -> Result<(Vec<Phase>, Value)> {
    let api = server.api.clone();
    let collector = Arc::new(Collector {
        base: Instant::now(),
        tally: Mutex::new(Tally {
            phase: u64::MAX,
            seen: Vec::new(),
            micros: Vec::new(),
            duplicates: 0,
            last: None,
        }),
        received: AtomicU64::new(0),
        closed: AtomicU64::new(0),
    });

    // Hubs, their integrations, the agent sockets and the conversations (spread round robin, so
    // consecutive activities go to different hubs).
    let mut customers = Vec::new();
    let mut readers = Vec::new();
    for h in 0..plan.hubs {
        let hub = api.hub(&format!("live {h}")).await?;
        customers.push(api.direct(&hub, "customers", "Customer").await?);
        let agent = api.direct(&hub, "agents", "Agent").await?;
        readers.push(agent_socket(&api, &agent, collector.clone()).await?);
    }
    let mut conversations = Vec::new();
    for c in 0..plan.conversations_per_hub {
        for (h, customer) in customers.iter().enumerate() {
            let url = format!(
                "/inbound/customer/v1/direct/activity/{}",
                api.establish(customer, &format!("visitor {h}-{c}")).await?
            );
            conversations.push(api.url(&url));
        }
    }
    let conversations = Arc::new(conversations);

    let mut phases = Vec::new();
    let offered_count = ((plan.rate as f64) * plan.offered.as_secs_f64()).round() as u64;
    phases.push(offered(server, plan, &collector, &conversations, offered_count).await);
    phases.push(maximum(server, plan, &collector, &conversations).await);

    for r in readers {
        r.abort();
    }
    let summary = json!({
        "parameters": {
            "hubs": plan.hubs,
            "nodes": server.nodes(),
            "agent_sockets": plan.hubs,
            "conversations": conversations.len(),
            "offered_rate": plan.rate,
            "offered_seconds": plan.offered.as_secs_f64(),
            "offered_in_flight_limit": plan.in_flight,
            "max_count": plan.max_count,
            "max_concurrency": plan.max_concurrency,
            "cap_seconds_per_phase": plan.cap.as_secs(),
        },
        "sockets_closed_by_server": collector.closed.load(Ordering::Relaxed),
    });
    Ok((phases, summary))
}

/// Phase 1: `count` activities posted on a schedule of `plan.rate` per second.
async fn offered(
    server: &Server,
    plan: &Plan,
    collector: &Arc<Collector>,
    conversations: &Arc<Vec<String>>,
    count: u64,
) -> Phase {
    const PHASE: u64 = 1;
    let api = &server.api;
    collector.reset(PHASE, count);
    let posted = Arc::new(Mutex::new(Vec::with_capacity(count as usize)));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicU64::new(0));
    let limit = Arc::new(Semaphore::new(plan.in_flight));
    let label = format!("live: {}/s offered", plan.rate);
    let progress = Progress::start(&label, count, done.clone());

    let bases = server.bases();
    let before = server.cpu();
    let start = Instant::now();
    let mut max_lag = Duration::ZERO;
    for i in 0..count {
        let due = start + Duration::from_secs_f64(i as f64 / plan.rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        max_lag = max_lag.max(due.elapsed());
        if start.elapsed() > plan.cap {
            break;
        }
        let url = spread(
            &bases,
            i,
            conversations.len(),
            &conversations[(i % conversations.len() as u64) as usize],
        );
        let (http, token) = (api.http.clone(), api.engine.clone());
        let (collector, posted, errors, done) = (
            collector.clone(),
            posted.clone(),
            errors.clone(),
            done.clone(),
        );
        tokio::spawn(async move {
            let t = Instant::now();
            let result = post(&http, &url, &token, activity(&collector, PHASE, i)).await;
            let us = t.elapsed().as_micros() as u64;
            match result {
                Ok(()) => {
                    if let Ok(mut p) = posted.lock() {
                        p.push(us);
                    }
                }
                Err(e) => {
                    if let Ok(mut errs) = errors.lock() {
                        errs.push(e);
                    }
                }
            }
            done.fetch_add(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    let sending = start.elapsed();
    // Every post answered.
    let _ = limit.acquire_many(plan.in_flight as u32).await;
    progress.finish();
    let posted = posted.lock().map(|p| p.clone()).unwrap_or_default();
    let errors = errors.lock().map(|e| e.clone()).unwrap_or_default();
    let mut extra = serde_json::Map::new();
    extra.insert("offered_per_second".into(), json!(plan.rate));
    extra.insert(
        "sent_per_second".into(),
        json!(round1(
            (posted.len() + errors.len()) as f64 / sending.as_secs_f64().max(1e-9)
        )),
    );
    extra.insert(
        "max_schedule_lag_ms".into(),
        json!(round3(max_lag.as_secs_f64() * 1000.0)),
    );
    finish(
        server,
        plan,
        collector,
        "offered",
        start,
        &before,
        posted,
        (errors.len() as u64, errors),
        extra,
    )
    .await
}

/// Phase 2: as fast as `plan.max_concurrency` posters go.
async fn maximum(
    server: &Server,
    plan: &Plan,
    collector: &Arc<Collector>,
    conversations: &Arc<Vec<String>>,
) -> Phase {
    const PHASE: u64 = 2;
    let api = &server.api;
    collector.reset(PHASE, plan.max_count);
    let (http, token, conversations, c) = (
        api.http.clone(),
        api.engine.clone(),
        conversations.clone(),
        collector.clone(),
    );
    let bases = server.bases();
    let before = server.cpu();
    let start = Instant::now();
    let run = closed_loop(
        &format!("live: max rate, {} posters", plan.max_concurrency),
        plan.max_concurrency,
        plan.max_count,
        plan.cap,
        move |i| {
            let url = spread(
                &bases,
                i,
                conversations.len(),
                &conversations[(i % conversations.len() as u64) as usize],
            );
            let body = activity(&c, PHASE, i);
            let (http, token) = (http.clone(), token.clone());
            async move { post(&http, &url, &token, body).await }
        },
    )
    .await;
    let mut extra = serde_json::Map::new();
    extra.insert("concurrency".into(), json!(plan.max_concurrency));
    finish(
        server,
        plan,
        collector,
        "max",
        start,
        &before,
        run.micros,
        (run.errors, run.first_errors),
        extra,
    )
    .await
}

/// Waits for the frames still on their way, then the phase's figures: `count` is the frames
/// received, `seconds` the time from the first post to the last frame.
#[allow(clippy::too_many_arguments)]
async fn finish(
    server: &Server,
    plan: &Plan,
    collector: &Collector,
    name: &str,
    start: Instant,
    before: &CpuSnapshot,
    posted: Vec<u64>,
    (errors, first_errors): (u64, Vec<String>),
    mut extra: serde_json::Map<String, Value>,
) -> Phase {
    let accepted = posted.len() as u64;
    let deadline = Instant::now() + plan.drain;
    while collector.received.load(Ordering::Relaxed) < accepted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let after = server.cpu();
    for e in first_errors.iter().take(3) {
        eprintln!("  live {name}: post refused: {e}");
    }
    let (micros, duplicates, last) = match collector.tally.lock() {
        Ok(mut t) => (std::mem::take(&mut t.micros), t.duplicates, t.last),
        Err(_) => (Vec::new(), 0, None),
    };
    let received = micros.len() as u64;
    let seconds = last.map_or(start.elapsed(), |l| l - start).as_secs_f64();
    extra.insert("accepted".into(), json!(accepted));
    extra.insert("post_errors".into(), json!(errors));
    extra.insert(
        "frames_missing".into(),
        json!(accepted.saturating_sub(received)),
    );
    extra.insert("frames_duplicated".into(), json!(duplicates));
    extra.insert(
        "post_latency_ms".into(),
        Percentiles::of_micros(posted).to_json(),
    );
    Phase {
        name: name.to_owned(),
        unit: "activity",
        count: received,
        errors: frame_errors(errors, accepted, received, duplicates),
        seconds,
        latency: Percentiles::of_micros(micros),
        cpu: before.used_until(&after),
        extra,
    }
}

/// The errors of a phase: posts that failed, and frames missing or duplicated (one activity
/// delivered twice to the agents' sockets).
fn frame_errors(post_errors: u64, accepted: u64, received: u64, duplicates: u64) -> u64 {
    post_errors + accepted.saturating_sub(received) + duplicates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicated_frame_is_an_error() {
        let collector = Collector {
            base: Instant::now(),
            tally: Mutex::new(Tally {
                phase: 0,
                seen: Vec::new(),
                micros: Vec::new(),
                duplicates: 0,
                last: None,
            }),
            received: AtomicU64::new(0),
            closed: AtomicU64::new(0),
        };
        collector.reset(1, 2);
        let frame = |seq: u64| format!(r#"{{"text":"bench:1:{seq}:0"}}"#);
        collector.frame(&frame(0));
        collector.frame(&frame(1));
        collector.frame(&frame(1));
        let t = collector.tally.lock().expect("tally");
        let received = t.micros.len() as u64;
        assert_eq!((received, t.duplicates), (2, 1));
        assert_eq!(frame_errors(0, 2, received, t.duplicates), 1);
    }

    #[test]
    fn marker_in_a_frame() {
        let frame = r#"{"payload":{"activity":{"message":{"text":"bench:2:17:123456","type":"text"}}},"type":"activity"}"#;
        assert_eq!(marker(frame), Some((2, 17, 123456)));
        assert_eq!(marker(r#"{"text":"hello"}"#), None);
        assert_eq!(marker(r#"{"text":"bench:x:1:2"}"#), None);
    }
}
