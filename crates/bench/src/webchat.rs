//! Scenario `webchat`: the WebChat widget's side of the server (SPEC 7.18). One hub has a Direct
//! Agent integration held by one websocket, a WebChat integration allowing `bench.example` and a
//! Direct Customer integration.
//!
//! - `sessions`: `POST /webchat/v1/{id}/sessions` from an allowed `Origin`, each with its own
//!   generated `clientId` (so each opens a conversation), at a fixed concurrency: sessions/s,
//!   latency, server CPU per session.
//! - `widget`: customer messages sent as `activity` frames over widget sockets
//!   (`/webchat/v1/{id}/ws` with the first sessions' tokens), at a fixed offered rate; latency
//!   from the send to the frame on the agent's socket; server CPU per message.
//! - `direct`: as many customer activities as `POST /inbound/customer/v1/direct/activity/{id}`
//!   into the Direct Customer conversations, at the same rate, to the same socket: the
//!   reference cost. The widget and direct phases alternate in slices, as in the `channel`
//!   scenario, whose open loop, slices, arrivals and agent socket this one calls.
//!
//! And the widget's weight: the bytes of `GET /webchat/v1/widget.js`, and of its gzip encoding
//! when the server answers one (the bench does not compress); "not measured" when the route
//! does not answer 200 (the widget may not be built yet), without failing the scenario.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::channel::{self, Acc, Arrivals, Kind, Source};
use crate::load::Progress;
use crate::procfs::CpuSnapshot;
use crate::server::{Api, Server};
use crate::stats::{round1, round3, round6, Percentiles, Phase};
use crate::webhook;
use crate::Result;

/// The size of the scenario.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Sessions created in the `sessions` phase, and how many requests are in flight at once.
    pub sessions: usize,
    pub concurrency: usize,
    /// Widget sockets the `widget` phase sends over (the first sessions'), at most `sessions`.
    pub sockets: usize,
    /// The widget and direct phases: `load.chats` Direct Customer conversations, the offered
    /// rate and duration, the slices.
    pub load: channel::Plan,
}

/// The host the integration allows, and the `Origin` the bench sends.
const ALLOWED: &str = "bench.example";
const ORIGIN: &str = "https://bench.example";

/// A widget socket takes at most this many activities per 10 s (SPEC 7.18.3): each socket is
/// given no more than this, warm-up included, over the whole phase.
const PER_SOCKET: u64 = 18;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Answer = std::result::Result<(), String>;
type Request = std::pin::Pin<Box<dyn std::future::Future<Output = Answer> + Send>>;

// ---------------------------------------------------------------------------------------------
// Widget sockets.

/// One widget socket: frames are sent under a lock; a reader task answers each sent `ref` with
/// its `ack` (or its `error`).
struct Widget {
    sink: tokio::sync::Mutex<SplitSink<Ws, Message>>,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<Answer>>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Widget {
    async fn open(
        api: &Api,
        integration: &str,
        token: &str,
        closed: Arc<AtomicU64>,
    ) -> Result<Self> {
        let base = api.base.replacen("http://", "ws://", 1);
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/webchat/v1/{integration}/ws"),
            [("sessionToken", token)],
        )
        .map_err(|e| format!("widget socket URL: {e}"))?;
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("widget socket request: {e}"))?;
        req.headers_mut().insert(
            "origin",
            ORIGIN
                .parse()
                .map_err(|_| "an origin that is no header value")?,
        );
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| format!("widget socket to {integration}: {e}"))?;
        let (sink, mut stream) = ws.split();
        let pending: Arc<Mutex<HashMap<String, oneshot::Sender<Answer>>>> = Arc::default();
        let waiting = pending.clone();
        let reader = tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(Message::Text(t)) => {
                        let Ok(frame) = serde_json::from_str::<Value>(t.as_str()) else {
                            continue;
                        };
                        let answer = match frame["type"].as_str() {
                            Some("ack") => Ok(()),
                            Some("error") => Err(format!("error frame {frame}")),
                            _ => continue,
                        };
                        let Some(reference) = frame["ref"].as_str() else {
                            continue;
                        };
                        let tx = waiting.lock().ok().and_then(|mut p| p.remove(reference));
                        if let Some(tx) = tx {
                            let _ = tx.send(answer);
                        }
                    }
                    Ok(Message::Close(_)) | Err(_) => {
                        eprintln!("  webchat: a widget socket closed: {msg:?}");
                        closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Ok(_) => {}
                }
            }
            // Whatever waits gets no ack: dropping the senders says so.
            if let Ok(mut p) = waiting.lock() {
                p.clear();
            }
        });
        Ok(Self {
            sink: tokio::sync::Mutex::new(sink),
            pending,
            reader,
        })
    }

    /// Sends a text message as an `activity` frame; Ok at its `ack`.
    async fn send(&self, reference: String, text: String) -> Answer {
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| "a poisoned lock".to_owned())?
            .insert(reference.clone(), tx);
        let frame = json!({ "type": "activity", "ref": reference,
            "activity": { "type": "message", "message": { "type": "text", "text": text } } });
        self.sink
            .lock()
            .await
            .send(Message::text(frame.to_string()))
            .await
            .map_err(|e| format!("widget send: {e}"))?;
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("the widget socket closed before the ack".to_owned()),
            Err(_) => Err("no ack within 10 s".to_owned()),
        }
    }
}

impl Drop for Widget {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Set-up and phases.

struct Setup {
    agent: String,
    webchat: String,
    /// The Direct Customer conversations' activity URLs.
    direct: Vec<String>,
}

async fn set_up(api: &Api, conversations: usize) -> Result<Setup> {
    let hub = api.hub("webchat").await?;
    let agent = api.direct(&hub, "agents", "Agent").await?;
    let customers = api.direct(&hub, "customers", "Customer").await?;
    let created = api
        .post(
            &format!("/api/v1/integrations/hubs/{hub}"),
            &api.portal,
            &json!({ "name": "webchat", "channelId": "WebChat",
                     "configuration": { "allowedOrigins": [ALLOWED] } }),
        )
        .await?;
    let webchat = created["integrationId"]
        .as_str()
        .ok_or_else(|| format!("no integrationId in {created}"))?
        .to_owned();
    let mut direct = Vec::with_capacity(conversations);
    for c in 0..conversations {
        let id = api.establish(&customers, &format!("visitor {c}")).await?;
        direct.push(channel::activity_url(api, &id));
    }
    Ok(Setup {
        agent,
        webchat,
        direct,
    })
}

/// The `clientId` of session `i`: 22 characters of the allowed alphabet, distinct per session.
fn client_id(i: usize) -> String {
    format!("bench-{i:016}")
}

/// Creates one session; its token.
async fn session(http: &reqwest::Client, url: &str, i: usize) -> Result<String> {
    let resp = http
        .post(url)
        .header("origin", ORIGIN)
        .header("content-type", "application/json")
        .body(json!({ "clientId": client_id(i) }).to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let text = resp.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status} {}", String::from_utf8_lossy(&text)));
    }
    let body: Value = serde_json::from_slice(&text).map_err(|e| format!("session body: {e}"))?;
    body["sessionToken"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no sessionToken in {body}"))
}

/// The `sessions` phase: `plan.sessions` sessions at `plan.concurrency`; the phase, and the
/// tokens of the first `plan.sockets`.
async fn sessions(server: &Server, plan: &Plan, webchat: &str) -> (Phase, Vec<String>) {
    let url = server.api.url(&format!("/webchat/v1/{webchat}/sessions"));
    let n = plan.sessions;
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(
        &format!("webchat sessions: {n} at concurrency {}", plan.concurrency),
        n as u64,
        done.clone(),
    );
    let before = CpuSnapshot::take(server.pid, server.database);
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..plan.concurrency.max(1) {
        let (http, url, next, done) = (
            server.api.http.clone(),
            url.clone(),
            next.clone(),
            done.clone(),
        );
        let keep = plan.sockets;
        workers.push(tokio::spawn(async move {
            let (mut micros, mut errors, mut tokens) = (Vec::new(), Vec::new(), Vec::new());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    break;
                }
                let t = Instant::now();
                match session(&http, &url, i).await {
                    Ok(token) => {
                        micros.push(t.elapsed().as_micros() as u64);
                        if i < keep {
                            tokens.push((i, token));
                        }
                    }
                    Err(e) => errors.push(e),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            (micros, errors, tokens)
        }));
    }
    let (mut micros, mut errors, mut tokens) = (Vec::new(), Vec::new(), Vec::new());
    for w in workers {
        match w.await {
            Ok((m, e, t)) => {
                micros.extend(m);
                errors.extend(e);
                tokens.extend(t);
            }
            Err(e) => errors.push(format!("a session worker failed: {e}")),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let after = CpuSnapshot::take(server.pid, server.database);
    progress.finish();
    for e in errors.iter().take(3) {
        eprintln!("  webchat sessions: refused: {e}");
    }
    tokens.sort_by_key(|(i, _)| *i);
    let mut extra = serde_json::Map::new();
    extra.insert("concurrency".into(), json!(plan.concurrency));
    extra.insert("client_ids".into(), json!("distinct, generated"));
    let phase = Phase {
        name: "sessions".to_owned(),
        unit: "session",
        count: micros.len() as u64,
        errors: errors.len() as u64,
        seconds,
        latency: Percentiles::of_micros(micros),
        cpu: before.used_until(&after),
        extra,
    };
    (phase, tokens.into_iter().map(|(_, t)| t).collect())
}

/// Widget message `seq` of `phase` goes over socket `seq % sockets`.
fn widget_requests(
    sockets: &Arc<Vec<Widget>>,
    arrivals: &Arc<Arrivals>,
    phase: u64,
) -> impl Fn(u64) -> Request {
    let (sockets, arrivals) = (sockets.clone(), arrivals.clone());
    move |seq: u64| -> Request {
        let (sockets, arrivals) = (sockets.clone(), arrivals.clone());
        Box::pin(async move {
            let socket = &sockets[(seq % sockets.len() as u64) as usize];
            let us = arrivals.now_us();
            socket
                .send(
                    format!("{phase}-{seq}"),
                    format!("bench:{phase}:{seq}:{us}"),
                )
                .await
        })
    }
}

/// Direct activity `seq` of `phase` goes to conversation `seq % conversations`.
fn direct_requests(
    api: &Api,
    urls: &Arc<Vec<String>>,
    arrivals: &Arc<Arrivals>,
    phase: u64,
) -> impl Fn(u64) -> Request {
    let (http, token, urls, arrivals) = (
        api.http.clone(),
        api.engine.clone(),
        urls.clone(),
        arrivals.clone(),
    );
    move |seq: u64| -> Request {
        let (http, token, urls, arrivals) =
            (http.clone(), token.clone(), urls.clone(), arrivals.clone());
        Box::pin(async move {
            let url = &urls[(seq % urls.len() as u64) as usize];
            let body = webhook::activity(phase, seq, arrivals.now_us());
            channel::post_activity(&http, url, &token, body).await
        })
    }
}

/// `GET /webchat/v1/widget.js`, plainly and asking for gzip: (status, raw bytes, gzip bytes when
/// the server answered gzip).
async fn widget_weight(api: &Api) -> (u16, Option<u64>, Option<u64>) {
    let url = api.url("/webchat/v1/widget.js");
    let get = |gzip: bool| {
        let mut req = api.http.get(&url);
        if gzip {
            req = req.header("accept-encoding", "gzip");
        } else {
            req = req.header("accept-encoding", "identity");
        }
        async move {
            let resp = req.send().await.ok()?;
            let status = resp.status().as_u16();
            let encoding = resp
                .headers()
                .get("content-encoding")
                .and_then(|v| v.to_str().ok())
                .map(str::to_ascii_lowercase);
            let bytes = resp.bytes().await.ok()?;
            Some((status, encoding, bytes.len() as u64))
        }
    };
    let Some((status, encoding, raw)) = get(false).await else {
        return (0, None, None);
    };
    if status != 200 || encoding.as_deref().is_some_and(|e| e != "identity") {
        return (status, None, None);
    }
    let gzip = match get(true).await {
        Some((200, Some(e), bytes)) if e == "gzip" => Some(bytes),
        _ => None,
    };
    (status, Some(raw), gzip)
}

/// The scenario's phases and figures.
pub async fn run(server: &Server, plan: &Plan) -> Result<(Vec<Phase>, Value)> {
    let api = server.api.clone();
    let load = &plan.load;
    let count = ((load.rate as f64) * load.offered.as_secs_f64())
        .round()
        .max(1.0) as u64;
    // Enough sockets that none passes its activity limit, warm-up included.
    let needed = (count.div_ceil(PER_SOCKET - 1) as usize).max(plan.sockets);
    if needed > plan.sessions {
        return Err(format!(
            "webchat: {count} widget messages need {needed} sockets (at most {PER_SOCKET} each), \
             more than the {} sessions",
            plan.sessions
        ));
    }
    let plan = &Plan {
        sockets: needed,
        ..plan.clone()
    };

    let (status, raw, gzip) = widget_weight(&api).await;
    if raw.is_none() {
        eprintln!(
            "  webchat: GET /webchat/v1/widget.js answered {status}: its weight is not measured"
        );
    }

    let setup = set_up(&api, load.chats).await?;
    let arrivals = Arc::new(Arrivals::new());
    let reader = channel::agent_socket(&api, &setup.agent, arrivals.clone()).await?;

    let (sessions_phase, tokens) = sessions(server, plan, &setup.webchat).await;
    if tokens.len() < plan.sockets {
        reader.abort();
        return Err(format!(
            "webchat: {} of the first {} sessions were created, the widget phase needs them all",
            tokens.len(),
            plan.sockets
        ));
    }
    let closed = Arc::new(AtomicU64::new(0));
    let mut sockets = Vec::with_capacity(plan.sockets);
    for token in &tokens {
        sockets.push(Widget::open(&api, &setup.webchat, token, closed.clone()).await?);
    }
    let sockets = Arc::new(sockets);
    let urls = Arc::new(setup.direct.clone());

    // Not reported: one message per widget socket and per direct conversation, so that no
    // measured phase pays for a first use.
    let warm = [
        (Kind::Inbound, sockets.len() as u64),
        (Kind::Direct, urls.len() as u64),
    ];
    for (kind, n) in warm {
        arrivals.count(0, 0..n, Source::Socket);
        let sent = if kind == Kind::Inbound {
            channel::open_loop(
                "webchat warm-up, widget",
                load,
                0..n,
                widget_requests(&sockets, &arrivals, 0),
            )
            .await
        } else {
            channel::open_loop(
                "webchat warm-up, direct",
                load,
                0..n,
                direct_requests(&api, &urls, &arrivals, 0),
            )
            .await
        };
        if let Some(e) = sent.errors.first() {
            reader.abort();
            return Err(format!("webchat warm-up: refused: {e}"));
        }
        arrivals.wait_for(n, load.drain).await;
    }

    // The widget and direct phases in alternating slices (widget first in even rounds), as the
    // channel scenario does. The widget's slices go by the channel's `Inbound` kind (a message
    // arriving on the agent's socket), renamed below.
    let rounds = u64::from(load.rounds.max(1));
    let per_slice = count.div_ceil(rounds);
    let mut accs: [Acc; 2] = Default::default();
    for round in 0..rounds {
        let seqs = round * per_slice..((round + 1) * per_slice).min(count);
        let pair = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in pair {
            let number = i as u64 + 1;
            if i == 0 {
                let call = widget_requests(&sockets, &arrivals, number);
                channel::slice(
                    server,
                    load,
                    &arrivals,
                    Kind::Inbound,
                    number,
                    seqs.clone(),
                    call,
                    &mut accs[0],
                )
                .await;
            } else {
                let call = direct_requests(&api, &urls, &arrivals, number);
                channel::slice(
                    server,
                    load,
                    &arrivals,
                    Kind::Direct,
                    number,
                    seqs.clone(),
                    call,
                    &mut accs[1],
                )
                .await;
            }
        }
    }
    reader.abort();
    let [widget_acc, direct_acc] = accs;
    let mut widget = channel::phase(load, Kind::Inbound, widget_acc);
    widget.name = "widget".to_owned();
    widget.unit = "message";
    widget.extra.insert("sockets".into(), json!(sockets.len()));
    let direct = channel::phase(load, Kind::Direct, direct_acc);
    drop(sockets);

    let widget_cpu = widget.cpu_ms_per_message();
    let direct_cpu = direct.cpu_ms_per_message();
    let ratio = match (widget_cpu, direct_cpu) {
        (Some(w), Some(d)) if d > 0.0 => Some(w / d),
        _ => None,
    };
    let summary = json!({
        "parameters": {
            "sessions": plan.sessions,
            "session_concurrency": plan.concurrency,
            "widget_sockets": plan.sockets,
            "direct_conversations": load.chats,
            "offered_rate": load.rate,
            "offered_seconds": load.offered.as_secs_f64(),
            "messages_per_phase": count,
            "slices_per_phase": rounds,
            "order": "widget and direct in alternating 1/rounds slices (ABBA)",
            "in_flight_limit": load.in_flight,
        },
        "widget_js_status": status,
        "widget_js_bytes": raw,
        "widget_js_gzip_bytes": gzip,
        "sessions_per_s": round1(sessions_phase.per_second()),
        "session_cpu_ms": sessions_phase.cpu_ms_per_message().map(round6),
        "widget_per_s": round1(widget.per_second()),
        "direct_per_s": round1(direct.per_second()),
        "widget_cpu_ms_per_message": widget_cpu.map(round6),
        "direct_cpu_ms_per_message": direct_cpu.map(round6),
        "widget_cpu_to_direct_cpu": ratio.map(round3),
        "agent_socket_closed_by_server": arrivals.closed.load(Ordering::Relaxed),
        "widget_sockets_closed_by_server": closed.load(Ordering::Relaxed),
    });
    Ok((vec![sessions_phase, widget, direct], summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_distinct_and_of_the_allowed_form() {
        for i in [0, 7, 123_456] {
            let id = client_id(i);
            assert!((22..=64).contains(&id.len()), "{id}");
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        }
        assert_ne!(client_id(1), client_id(10));
    }
}
