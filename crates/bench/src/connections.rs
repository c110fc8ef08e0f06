//! Scenario `connections`: many idle websocket connections held at once, all clients of one
//! Direct Agent integration (each gets every activity). It measures the server's resident memory
//! per socket (RSS before opening, and once all are open and idle), then posts one customer
//! activity at a time and times its fan-out: post to the first, the median and the last socket's
//! frame. Every socket must get every activity; a frame missing is an error.
//!
//! Each socket takes a file descriptor in the bench and one in the server, so the bench raises its
//! open-file limit at start-up (the server inherits it) and refuses to start when it cannot.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::floor;
use crate::load::Progress;
use crate::procfs::{self, CpuSnapshot, Database};
use crate::server::{Api, Server};
use crate::stats::{round1, round3, Percentiles, Phase};
use crate::Result;

/// The size of the scenario.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Idle sockets held at once.
    pub connections: usize,
    /// Activities fanned out to all of them, one at a time (after one warm-up activity).
    pub rounds: u64,
    /// The longest the opening may take, and the longest one activity may take to reach all.
    pub cap: Duration,
}

/// Upgrades in flight at once while the sockets are opened.
const CONNECT_CONCURRENCY: usize = 128;
/// Files the bench and the server use beside the sockets (HTTP clients, database, logs).
const HEADROOM: u64 = 256;
/// Activities posted first and left out of the figures (cold caches, lazy set-up).
const WARMUP_ROUNDS: u64 = 1;
/// The wait before each memory reading, so the figure is of a quiet server.
const SETTLE: Duration = Duration::from_secs(1);
/// The quiet time between two activities.
const PAUSE: Duration = Duration::from_millis(100);
/// The bench's read buffer per socket. tungstenite's default (128 KiB, written through at the
/// first read) would make the bench hold ~130 kB per idle socket; its frames here are small.
const CLIENT_READ_BUFFER: usize = 4096;
/// A per-socket arrival that has not happened.
const NONE: u64 = u64::MAX;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Raises this process's soft limit on open files to its hard limit; answers the new soft limit.
/// Child processes (the server) inherit it.
pub fn raise_open_files() -> Result<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    // No hard limit (not on Linux, where nr_open caps it): ask for a generous one.
    let target = now.maximum.unwrap_or(1 << 20);
    if now.current.is_some_and(|c| c >= target) {
        return Ok(target);
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: now.maximum,
        },
    )
    .map_err(|e| format!("raise the open-file limit to {target}: {e}"))?;
    Ok(target)
}

/// The soft open-file limit of a process, from `/proc/<pid>/limits` (`None`: unknown or
/// unlimited).
fn open_files_of(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    parse_open_files(&limits)
}

fn parse_open_files(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok())
}

/// Both the bench and the server may open `n` sockets and their headroom, or an error that says
/// how to allow it.
fn check_open_files(server_pid: u32, n: usize) -> Result<(u64, Option<u64>)> {
    let need = n as u64 + HEADROOM;
    let fix = format!(
        "raise it in the shell that runs the bench (`ulimit -n {need}`; past the hard limit that needs root or /etc/security/limits.conf) and run again, or ask for fewer sockets with --connections"
    );
    let bench = raise_open_files()?;
    if bench < need {
        return Err(format!(
            "{n} sockets need about {need} open files, but the bench may open only {bench} (its hard limit): {fix}"
        ));
    }
    let server = open_files_of(server_pid);
    if let Some(s) = server.filter(|s| *s < need) {
        return Err(format!(
            "{n} sockets need about {need} open files, but the server process may open only {s} (it inherits the bench's limit): {fix}"
        ));
    }
    Ok((bench, server))
}

/// What the sockets received for the activity being fanned out.
struct Tally {
    round: u64,
    posted: Instant,
    /// Per socket: µs from the post to its frame, or [`NONE`].
    arrivals: Vec<u64>,
    duplicates: u64,
    /// Frames of an earlier round that came after it was counted.
    late: u64,
}

/// State shared by the socket readers.
struct Shared {
    tally: Mutex<Tally>,
    received: AtomicU64,
    /// The length of the last counted frame, bytes.
    frame_bytes: AtomicU64,
    /// How sockets ended while held: close code (or error) → count.
    ends: Mutex<BTreeMap<String, u64>>,
    ended: AtomicU64,
}

impl Shared {
    /// Starts counting `round` over `sockets` sockets, posted now.
    fn reset(&self, round: u64, sockets: usize) {
        if let Ok(mut t) = self.tally.lock() {
            *t = Tally {
                round,
                posted: Instant::now(),
                arrivals: vec![NONE; sockets],
                duplicates: 0,
                late: 0,
            };
        }
        self.received.store(0, Ordering::Relaxed);
    }

    /// Records the frame socket `idx` received.
    fn frame(&self, idx: usize, text: &str) {
        let at = Instant::now();
        let Some(round) = marker(text) else {
            return;
        };
        let Ok(mut t) = self.tally.lock() else {
            return;
        };
        if round != t.round {
            t.late += 1;
            return;
        }
        let us = at.saturating_duration_since(t.posted).as_micros() as u64;
        match t.arrivals.get_mut(idx) {
            Some(a) if *a == NONE => {
                *a = us;
                self.received.fetch_add(1, Ordering::Relaxed);
                self.frame_bytes.store(text.len() as u64, Ordering::Relaxed);
            }
            Some(_) => t.duplicates += 1,
            None => {}
        }
    }

    /// Records how a socket ended; the first few are shown.
    fn end(&self, how: String) {
        let n = self.ended.fetch_add(1, Ordering::Relaxed);
        if n < 3 {
            eprintln!("  connections: a socket ended while held: {how}");
        }
        if let Ok(mut ends) = self.ends.lock() {
            *ends.entry(how).or_insert(0) += 1;
        }
    }
}

/// The round in a frame's `bench-conn:<round>` marker.
fn marker(frame: &str) -> Option<u64> {
    let rest = &frame[frame.find("bench-conn:")? + "bench-conn:".len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Opens one agent socket of `integration`.
async fn connect(api: &Api, integration: &str) -> std::result::Result<Socket, String> {
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
    let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true)
        .await
        .map_err(|e| format!("websocket to {url}: {e}"))?;
    Ok(ws)
}

/// Reads socket `idx` until it ends, recording its frames.
async fn hold(mut ws: Socket, idx: usize, shared: Arc<Shared>) {
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(Message::Text(t)) => shared.frame(idx, t.as_str()),
            Ok(Message::Close(f)) => {
                shared.end(match f {
                    Some(f) => format!("closed with code {}", u16::from(f.code)),
                    None => "closed without a code".to_owned(),
                });
                return;
            }
            Ok(_) => {}
            Err(e) => {
                shared.end(format!("error: {e}"));
                return;
            }
        }
    }
    shared.end("ended without a close frame".to_owned());
}

/// Server RSS after a quiet moment, in kB.
async fn settled_rss(pid: u32) -> u64 {
    tokio::time::sleep(SETTLE).await;
    procfs::memory_kb(pid).0
}

/// The scenario's figures: the opening and the fan-out phases, and the memory per socket.
pub async fn run(server: &Server, plan: &Plan) -> Result<(Vec<Phase>, Value)> {
    let api = server.api.clone();
    let watch_db = server.database;
    let (bench_files, server_files) = check_open_files(server.pid, plan.connections)?;

    let hub = api.hub("connections").await?;
    let customer = api.direct(&hub, "customers", "Customer").await?;
    let agent = api.direct(&hub, "agents", "Agent").await?;
    let conversation = api.establish(&customer, "visitor").await?;
    let activity_path = format!("/inbound/customer/v1/direct/activity/{conversation}");

    let shared = Arc::new(Shared {
        tally: Mutex::new(Tally {
            round: u64::MAX,
            posted: Instant::now(),
            arrivals: Vec::new(),
            duplicates: 0,
            late: 0,
        }),
        received: AtomicU64::new(0),
        frame_bytes: AtomicU64::new(0),
        ends: Mutex::new(BTreeMap::new()),
        ended: AtomicU64::new(0),
    });

    let rss_before = settled_rss(server.pid).await;
    let client_rss_before = procfs::memory_kb(std::process::id()).0;
    let (open, readers) = open_all(server, plan, &api, &agent, &shared, watch_db).await;
    let opened = readers.len();

    let idle_cpu = CpuSnapshot::take(server.pid, watch_db);
    let rss_open = settled_rss(server.pid).await;
    let idle = idle_cpu.used_until(&CpuSnapshot::take(server.pid, watch_db));
    let client_rss_open = procfs::memory_kb(std::process::id()).0;
    let ended_idle = shared.ended.load(Ordering::Relaxed);

    let fanout = fan_out(
        server,
        plan,
        &api,
        &activity_path,
        &shared,
        opened,
        watch_db,
    )
    .await;
    let rss_after = procfs::memory_kb(server.pid).0;

    // Drop every socket, and let the server see them go before it is stopped, so the shutdown
    // that follows is of an idle server.
    for r in readers {
        r.abort();
    }
    let rss_closed = settled_rss(server.pid).await;

    // The floor under the fan-out: as many loopback sockets as the open-file limit allows
    // (two descriptors each, both ends being the bench's), frames of the fan-out's size.
    let frame_bytes = match shared.frame_bytes.load(Ordering::Relaxed) {
        0 => 400,
        n => n as usize,
    };
    let floor_sockets = opened.min((bench_files.saturating_sub(HEADROOM) / 2) as usize);
    let floor = floor::loopback_writes(floor_sockets, plan.rounds as usize, frame_bytes).await;
    if let Err(e) = &floor {
        eprintln!("  connections: {e}");
    }
    // Null when not measured: no socket, or a memory reading of 0 (the process unread).
    let per_connection = |before: u64, after: u64| {
        if opened == 0 || before == 0 || after == 0 {
            None
        } else {
            Some(round1(
                after.saturating_sub(before) as f64 * 1024.0 / opened as f64,
            ))
        }
    };
    let extra = |key: &str, field: &str| fanout.extra.get(key).map(|v| v[field].clone());
    let ends = shared.ends.lock().map(|e| e.clone()).unwrap_or_default();
    let summary = json!({
        "parameters": {
            "connections": plan.connections,
            "connect_concurrency": CONNECT_CONCURRENCY,
            "client_read_buffer_bytes": CLIENT_READ_BUFFER,
            "rounds": plan.rounds,
            "warmup_rounds": WARMUP_ROUNDS,
            "settle_ms": SETTLE.as_millis() as u64,
            "cap_seconds": plan.cap.as_secs(),
        },
        "connections_open": opened,
        "open_files_limit_bench": bench_files,
        "open_files_limit_server": server_files,
        "server_rss_before_kb": rss_before,
        "server_rss_open_kb": rss_open,
        "server_rss_after_fanout_kb": rss_after,
        "server_rss_closed_kb": rss_closed,
        "rss_per_connection_bytes": per_connection(rss_before, rss_open),
        "rss_per_connection_after_fanout_bytes": per_connection(rss_before, rss_after),
        "client_rss_per_connection_bytes": per_connection(client_rss_before, client_rss_open),
        // Null unless the idle second used enough clock ticks to tell; its ticks say how few.
        "idle_server_cpu_ms_per_second": idle.server_ms().map(|ms| round3(ms / SETTLE.as_secs_f64())),
        "idle_server_cpu_ticks": idle.server,
        "sockets_ended_while_idle": ended_idle,
        "sockets_ended": shared.ended.load(Ordering::Relaxed),
        "socket_ends": ends,
        "fanout_to_all_p50_ms": extra("to_all_ms", "p50"),
        "fanout_to_all_max_ms": extra("to_all_ms", "max"),
        "fanout_to_first_p50_ms": extra("to_first_ms", "p50"),
        "fanout_to_median_p50_ms": extra("to_median_ms", "p50"),
        "server_cpu_us_per_frame": fanout.extra.get("server_cpu_us_per_frame").cloned(),
        "frame_bytes": frame_bytes,
        "loopback_floor_sockets": floor.as_ref().map(|f| f.sockets).ok(),
        "loopback_floor_writes": floor.as_ref().map(|f| f.writes).ok(),
        "loopback_floor_us_per_write": floor.as_ref().map(|f| round3(f.us_per_write)).ok(),
    });
    Ok((vec![open, fanout], summary))
}

/// Phase `open`: the sockets opened, at most [`CONNECT_CONCURRENCY`] upgrades at once; each
/// opened socket gets a reader task.
async fn open_all(
    server: &Server,
    plan: &Plan,
    api: &Api,
    agent: &str,
    shared: &Arc<Shared>,
    watch_db: Database,
) -> (Phase, Vec<tokio::task::JoinHandle<()>>) {
    let done = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(
        &format!("connections: opening {}", plan.connections),
        plan.connections as u64,
        done.clone(),
    );
    let before = CpuSnapshot::take(server.pid, watch_db);
    let start = Instant::now();
    let mut connects = futures_util::stream::iter(0..plan.connections)
        .map(|_| {
            let done = done.clone();
            async move {
                let result = if start.elapsed() > plan.cap {
                    Err(format!("not opened within {} s", plan.cap.as_secs()))
                } else {
                    let t = Instant::now();
                    connect(api, agent)
                        .await
                        .map(|ws| (ws, t.elapsed().as_micros() as u64))
                };
                done.fetch_add(1, Ordering::Relaxed);
                result
            }
        })
        .buffer_unordered(CONNECT_CONCURRENCY);
    let mut readers = Vec::with_capacity(plan.connections);
    let mut micros = Vec::with_capacity(plan.connections);
    let mut errors = 0u64;
    let mut first_errors = Vec::new();
    while let Some(result) = connects.next().await {
        match result {
            Ok((ws, us)) => {
                micros.push(us);
                let idx = readers.len();
                readers.push(tokio::spawn(hold(ws, idx, shared.clone())));
            }
            Err(e) => {
                errors += 1;
                if first_errors.len() < 3 {
                    first_errors.push(e);
                }
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu = before.used_until(&CpuSnapshot::take(server.pid, watch_db));
    progress.finish();
    for e in &first_errors {
        eprintln!("  connections: a socket did not open: {e}");
    }
    let mut extra = serde_json::Map::new();
    extra.insert("concurrency".into(), json!(CONNECT_CONCURRENCY));
    extra.insert("connect_errors".into(), json!(errors));
    let phase = Phase {
        name: "open".to_owned(),
        unit: "socket",
        count: micros.len() as u64,
        errors,
        seconds,
        latency: Percentiles::of_micros(micros),
        cpu,
        extra,
    };
    (phase, readers)
}

/// Phase `fanout`: one activity at a time reaches every open socket. `count` is the frames
/// received, `seconds` the sum over rounds of post-to-last-frame, the latency that of each frame.
async fn fan_out(
    server: &Server,
    plan: &Plan,
    api: &Api,
    path: &str,
    shared: &Arc<Shared>,
    sockets: usize,
    watch_db: Database,
) -> Phase {
    let total = WARMUP_ROUNDS + plan.rounds;
    let done = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(
        &format!("connections: fan-out to {sockets}"),
        total,
        done.clone(),
    );
    let wait = plan.cap.min(Duration::from_secs(30));
    let mut frames = Vec::with_capacity(sockets * plan.rounds as usize);
    let (mut to_first, mut to_median, mut to_all, mut posts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut missing, mut duplicates, mut late, mut post_errors) = (0u64, 0u64, 0u64, 0u64);
    let mut first_errors = Vec::new();
    let mut warmup_ms = None;
    let mut before = CpuSnapshot::take(server.pid, watch_db);
    for round in 0..total {
        let counted = round >= WARMUP_ROUNDS;
        if round == WARMUP_ROUNDS {
            before = CpuSnapshot::take(server.pid, watch_db);
        }
        shared.reset(round, sockets);
        let body = json!({
            "type": "message",
            "message": { "type": "text", "text": format!("bench-conn:{round}") },
        });
        let t = Instant::now();
        let posted = api.post(path, &api.engine, &body).await;
        let post_us = t.elapsed().as_micros() as u64;
        if let Err(e) = posted {
            post_errors += u64::from(counted);
            if first_errors.len() < 3 {
                first_errors.push(e);
            }
            missing += if counted { sockets as u64 } else { 0 };
            done.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let deadline = Instant::now() + wait;
        while shared.received.load(Ordering::Relaxed) < sockets as u64 && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (mut arrivals, dup, lt) = match shared.tally.lock() {
            Ok(mut t) => (std::mem::take(&mut t.arrivals), t.duplicates, t.late),
            Err(_) => (Vec::new(), 0, 0),
        };
        arrivals.retain(|a| *a != NONE);
        arrivals.sort_unstable();
        let last = arrivals.last().copied().unwrap_or(0);
        if !counted {
            warmup_ms = Some(round3(last as f64 / 1000.0));
        } else {
            missing += sockets.saturating_sub(arrivals.len()) as u64;
            duplicates += dup;
            late += lt;
            posts.push(post_us);
            if let (Some(first), Some(median)) =
                (arrivals.first(), arrivals.get(arrivals.len() / 2))
            {
                to_first.push(*first);
                to_median.push(*median);
                to_all.push(last);
            }
            frames.extend_from_slice(&arrivals);
        }
        done.fetch_add(1, Ordering::Relaxed);
        if round + 1 == total {
            break;
        }
        tokio::time::sleep(PAUSE).await;
    }
    let cpu = before.used_until(&CpuSnapshot::take(server.pid, watch_db));
    progress.finish();
    for e in &first_errors {
        eprintln!("  connections: the activity post failed: {e}");
    }
    let received = frames.len() as u64;
    let seconds = to_all.iter().sum::<u64>() as f64 / 1e6;
    // Null when not measured: no frame, or too few clock ticks to tell.
    let per_frame_us = |ms: Option<f64>| {
        if received == 0 {
            None
        } else {
            Some(round3(ms? * 1000.0 / received as f64))
        }
    };
    let mut extra = serde_json::Map::new();
    extra.insert("sockets".into(), json!(sockets));
    extra.insert("rounds".into(), json!(plan.rounds));
    extra.insert("warmup_to_all_ms".into(), json!(warmup_ms));
    // Null when no round reached any socket, rather than percentiles of nothing (all 0).
    let rounds = |us: Vec<u64>| {
        if us.is_empty() {
            Value::Null
        } else {
            Percentiles::of_micros(us).to_json()
        }
    };
    extra.insert("to_all_ms".into(), rounds(to_all));
    extra.insert("to_first_ms".into(), rounds(to_first));
    extra.insert("to_median_ms".into(), rounds(to_median));
    extra.insert(
        "post_latency_ms".into(),
        Percentiles::of_micros(posts).to_json(),
    );
    extra.insert("post_errors".into(), json!(post_errors));
    extra.insert("frames_missing".into(), json!(missing));
    extra.insert("frames_duplicated".into(), json!(duplicates));
    extra.insert("frames_late".into(), json!(late));
    extra.insert(
        "server_cpu_us_per_frame".into(),
        json!(per_frame_us(cpu.server_ms())),
    );
    extra.insert("server_cpu_ticks".into(), json!(cpu.server));
    extra.insert(
        "client_cpu_us_per_frame".into(),
        json!(per_frame_us(cpu.client_ms())),
    );
    Phase {
        name: "fanout".to_owned(),
        unit: "frame",
        count: received,
        errors: fanout_errors(missing, duplicates, post_errors),
        seconds,
        latency: Percentiles::of_micros(frames),
        cpu,
        extra,
    }
}

/// The errors of the fan-out: frames missing or duplicated (a socket got one activity twice),
/// and posts that failed.
fn fanout_errors(missing: u64, duplicates: u64, post_errors: u64) -> u64 {
    missing + duplicates + post_errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_in_a_frame() {
        let frame = r#"{"payload":{"activity":{"message":{"text":"bench-conn:12","type":"text"}}},"type":"activity"}"#;
        assert_eq!(marker(frame), Some(12));
        assert_eq!(marker(r#"{"text":"bench-conn:"}"#), None);
        assert_eq!(marker(r#"{"text":"hello"}"#), None);
    }

    #[test]
    fn a_duplicated_frame_is_an_error() {
        let shared = Shared {
            tally: Mutex::new(Tally {
                round: 0,
                posted: Instant::now(),
                arrivals: Vec::new(),
                duplicates: 0,
                late: 0,
            }),
            received: AtomicU64::new(0),
            frame_bytes: AtomicU64::new(0),
            ends: Mutex::new(BTreeMap::new()),
            ended: AtomicU64::new(0),
        };
        shared.reset(3, 2);
        let frame = r#"{"payload":{"activity":{"message":{"text":"bench-conn:3"}}}}"#;
        shared.frame(0, frame);
        shared.frame(1, frame);
        shared.frame(1, frame);
        let duplicates = shared.tally.lock().expect("tally").duplicates;
        assert_eq!(duplicates, 1);
        assert_eq!(fanout_errors(0, duplicates, 0), 1);
    }

    #[test]
    fn open_files_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             127473               127473               processes \n\
                      Max open files            20000                524288               files     \n";
        assert_eq!(parse_open_files(limits), Some(20000));
        assert_eq!(
            parse_open_files("Max open files unlimited unlimited files"),
            None
        );
    }

    #[test]
    fn raising_the_limit_reaches_the_hard_limit() {
        let soft = raise_open_files().expect("raise");
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        assert_eq!(Some(soft), hard.or(Some(soft)));
    }
}
