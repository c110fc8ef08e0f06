//! `switchboard-bench`: starts a built `switchboard` server (over a fresh SQLite file or
//! PostgreSQL database) for each scenario, drives it through its real HTTP and websocket
//! interfaces, and reports throughput, latency percentiles, server CPU time per message and
//! memory, as a table on the terminal and as JSON (`bench/results.json`).
//!
//! It builds nothing: it runs the binary given by `--server-bin` (by default the release build in
//! `$CARGO_TARGET_DIR`, else `target/release/switchboard`).

mod channel;
mod connections;
mod floor;
mod live;
mod load;
mod portal;
mod procfs;
mod recovery;
mod report;
mod server;
mod stats;
mod webchat;
mod webhook;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde_json::{json, Value};

use server::{Db, Options, Server};
use stats::{round1, round3, Phase};

/// Errors are messages for the operator.
pub type Result<T> = std::result::Result<T, String>;

#[derive(Parser, Debug)]
#[command(
    name = "switchboard-bench",
    about = "Benchmarks a built switchboard server through its real interfaces",
    after_help = "Build the server first: cargo build --release -p switchboard"
)]
struct Args {
    /// Which scenario to run.
    #[arg(long, value_enum, default_value = "all")]
    scenario: Scenario,
    /// The server's database: a fresh temp SQLite file, or a fresh database on the PostgreSQL
    /// server of TEST_DATABASE_URL.
    #[arg(long, value_enum, default_value = "sqlite")]
    db: Db,
    /// tiny: a few seconds, to check that the bench works; full: the published figures.
    #[arg(long, value_enum, default_value = "full")]
    scale: Scale,
    /// The server binary [default: $CARGO_TARGET_DIR/release/switchboard, else
    /// target/release/switchboard].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Where the JSON results go.
    #[arg(long, default_value = "bench/results.json")]
    out: PathBuf,
    /// The offered rate of the `live` scenario's first phase, activities/s [default: 200 tiny,
    /// 1000 full].
    #[arg(long)]
    rate: Option<u64>,
    /// The `connections` scenario's idle sockets [default: 100 tiny, 10000 full]. The bench raises
    /// its own open-file limit to fit them.
    #[arg(long)]
    connections: Option<usize>,
    /// Run the server with its live bus on this Redis (REDIS_URL), as a multi-node deployment does.
    #[arg(long)]
    redis: Option<String>,
    /// Where RESULTS.md and its chart go [default: beside --out]; none is written at scale tiny.
    #[arg(long)]
    report_dir: Option<PathBuf>,
    /// An admin URL of PostgreSQL, for --db postgres.
    #[arg(long, env = "TEST_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Server processes sharing the database (and Redis) in the `webhook`, `live` and
    /// `recovery` scenarios, posts spread over them as by a load balancer: more than 1 needs
    /// `--db postgres` (and `--redis` for `live`). The other scenarios run one.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// The offered rate of the `webhook` scenario's first phase, activities/s [default: 100 tiny,
    /// 200 full].
    #[arg(long)]
    webhook_rate: Option<u64>,
    /// One more environment variable for the server processes, `NAME=value` (repeatable), e.g.
    /// `RUST_LOG=info,sqlx::query=debug` to log every statement when profiling.
    #[arg(long = "server-env", value_parser = parse_env)]
    server_env: Vec<(String, String)>,
    /// Keep each server's log in this directory (`<scenario>-node<n>.log`), e.g. to count the
    /// statements logged with `--server-env RUST_LOG=info,sqlx::query=debug`.
    #[arg(long)]
    keep_logs: Option<PathBuf>,
}

/// `NAME=value`.
fn parse_env(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected NAME=value, got {s}")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Portal,
    Live,
    Webhook,
    Connections,
    Recovery,
    Channel,
    Webchat,
    All,
}

impl Scenario {
    const EVERY: [Scenario; 7] = [
        Scenario::Portal,
        Scenario::Live,
        Scenario::Webhook,
        Scenario::Connections,
        Scenario::Recovery,
        Scenario::Channel,
        Scenario::Webchat,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Portal => "portal",
            Scenario::Live => "live",
            Scenario::Webhook => "webhook",
            Scenario::Connections => "connections",
            Scenario::Recovery => "recovery",
            Scenario::Channel => "channel",
            Scenario::Webchat => "webchat",
            Scenario::All => "all",
        }
    }

    /// Whether the scenario runs on several nodes with `--nodes`.
    fn multi_node(self) -> bool {
        matches!(
            self,
            Scenario::Webhook | Scenario::Live | Scenario::Recovery
        )
    }

    /// The server settings the scenario needs beyond the defaults.
    fn env(self) -> Vec<(String, String)> {
        match self {
            Scenario::Webhook | Scenario::Recovery => webhook::env(),
            _ => Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scale {
    Tiny,
    Full,
}

impl Scale {
    fn name(self) -> &'static str {
        match self {
            Scale::Tiny => "tiny",
            Scale::Full => "full",
        }
    }

    fn portal(self) -> portal::Plan {
        match self {
            Scale::Tiny => portal::Plan {
                concurrency: 32,
                healthz: 500,
                create: 200,
                get: 500,
                cap: Duration::from_secs(5),
            },
            Scale::Full => portal::Plan {
                concurrency: 32,
                healthz: 100_000,
                create: 10_000,
                get: 100_000,
                cap: Duration::from_secs(20),
            },
        }
    }

    fn live(self, rate: Option<u64>) -> live::Plan {
        match self {
            Scale::Tiny => live::Plan {
                hubs: 2,
                conversations_per_hub: 4,
                rate: rate.unwrap_or(200),
                offered: Duration::from_secs(1),
                in_flight: 256,
                max_count: 400,
                max_concurrency: 32,
                cap: Duration::from_secs(5),
                drain: Duration::from_secs(10),
            },
            Scale::Full => live::Plan {
                hubs: 8,
                conversations_per_hub: 16,
                // The rate the p99 target is stated at.
                rate: rate.unwrap_or(5000),
                offered: Duration::from_secs(10),
                in_flight: 256,
                max_count: 50_000,
                max_concurrency: 64,
                cap: Duration::from_secs(20),
                drain: Duration::from_secs(10),
            },
        }
    }
}

impl Scale {
    fn webhook(self, rate: Option<u64>) -> webhook::Plan {
        let mut plan = self.webhook_default();
        if let Some(rate) = rate {
            plan.rate = rate.max(1);
        }
        plan
    }

    fn webhook_default(self) -> webhook::Plan {
        match self {
            Scale::Tiny => webhook::Plan {
                hubs: 2,
                conversations_per_hub: 8,
                rate: 100,
                offered: Duration::from_secs(1),
                in_flight: 64,
                activities: 200,
                concurrency: 16,
                cap: Duration::from_secs(10),
                drain: Duration::from_secs(5),
            },
            Scale::Full => webhook::Plan {
                hubs: 4,
                conversations_per_hub: 32,
                rate: 200,
                offered: Duration::from_secs(10),
                in_flight: 256,
                activities: 20_000,
                concurrency: 64,
                cap: Duration::from_secs(60),
                drain: Duration::from_secs(10),
            },
        }
    }

    fn connections(self, n: Option<usize>) -> connections::Plan {
        match self {
            Scale::Tiny => connections::Plan {
                connections: n.unwrap_or(100),
                rounds: 5,
                cap: Duration::from_secs(20),
            },
            Scale::Full => connections::Plan {
                connections: n.unwrap_or(10_000),
                rounds: 10,
                cap: Duration::from_secs(120),
            },
        }
    }

    fn channel(self) -> channel::Plan {
        match self {
            Scale::Tiny => channel::Plan {
                chats: 8,
                rate: 100,
                offered: Duration::from_secs(1),
                in_flight: 64,
                rounds: 2,
                cap: Duration::from_secs(5),
                drain: Duration::from_secs(5),
            },
            // Three phases of 5 s each (five slices of 1 s, inbound and direct alternating), the
            // same rate in each, below what the server sustains, so that the CPU per message of
            // the inbound and direct phases compare like for like.
            Scale::Full => channel::Plan {
                chats: 64,
                rate: 1000,
                offered: Duration::from_secs(5),
                in_flight: 256,
                rounds: 5,
                cap: Duration::from_secs(20),
                drain: Duration::from_secs(10),
            },
        }
    }

    fn webchat(self) -> webchat::Plan {
        match self {
            Scale::Tiny => webchat::Plan {
                sessions: 200,
                concurrency: 16,
                sockets: 20,
                load: channel::Plan {
                    chats: 8,
                    rate: 100,
                    offered: Duration::from_secs(1),
                    in_flight: 64,
                    rounds: 2,
                    cap: Duration::from_secs(5),
                    drain: Duration::from_secs(5),
                },
            },
            // The widget and direct phases as the channel scenario's: 5 s each at 1000/s in
            // slices of 1 s; 300 widget sockets keep each under its 20 activities per 10 s.
            // 20,000 sessions take a few seconds, long enough for their CPU per session.
            Scale::Full => webchat::Plan {
                sessions: 20_000,
                concurrency: 32,
                sockets: 300,
                load: channel::Plan {
                    chats: 64,
                    rate: 1000,
                    offered: Duration::from_secs(5),
                    in_flight: 256,
                    rounds: 5,
                    cap: Duration::from_secs(20),
                    drain: Duration::from_secs(10),
                },
            },
        }
    }

    fn recovery(self) -> recovery::Plan {
        match self {
            // The receiver holds each attempt 1 s until the kill, so the server delivers at
            // most 64 a second: posting at twice the rate (two deliveries each) builds the backlog
            // in about a second (tiny) or a few (full).
            Scale::Tiny => recovery::Plan {
                hubs: 2,
                conversations_per_hub: 8,
                activities: 300,
                rate: 150,
                concurrency: 8,
                backlog: 100,
                cap: Duration::from_secs(60),
            },
            Scale::Full => recovery::Plan {
                hubs: 4,
                conversations_per_hub: 32,
                activities: 5_000,
                rate: 400,
                concurrency: 32,
                backlog: 2_000,
                cap: Duration::from_secs(300),
            },
        }
    }
}

fn main() {
    let args = Args::parse();
    // Before any server starts, as it inherits the limit: the connections scenario needs a file
    // per socket on both sides.
    if let Err(e) = connections::raise_open_files() {
        eprintln!("warning: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => fail(&format!("cannot start the runtime: {e}")),
    };
    if let Err(e) = runtime.block_on(run(args)) {
        fail(&e);
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}

/// The server binary: the flag, else the release build in `$CARGO_TARGET_DIR` or `target`.
fn server_bin(arg: Option<PathBuf>) -> Result<PathBuf> {
    let bin = arg.unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target"));
        target.join("release").join("switchboard")
    });
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "no server binary at {}: build it with `cargo build --release -p switchboard` (the bench measures a release build), or name one with --server-bin",
            bin.display()
        ))
    }
}

/// One scenario's results: its phases and its own summary (parameters, ratios).
struct Outcome {
    name: &'static str,
    phases: Vec<Phase>,
    summary: Value,
    rss_kb: u64,
    rss_peak_kb: u64,
    shutdown_ms: f64,
}

async fn run(args: Args) -> Result<()> {
    let bin = server_bin(args.server_bin.clone())?;
    let scenarios: Vec<Scenario> = match args.scenario {
        Scenario::All => Scenario::EVERY.to_vec(),
        one => vec![one],
    };
    let profile = if bin.components().any(|c| c.as_os_str() == "debug") {
        "debug"
    } else if bin.components().any(|c| c.as_os_str() == "release") {
        "release"
    } else {
        "unknown"
    };
    eprintln!(
        "switchboard-bench: {} on {} at scale {}, server {} ({profile} build)",
        scenario_names(&scenarios),
        args.db.name(),
        args.scale.name(),
        bin.display()
    );
    if profile == "debug" {
        eprintln!("  (a debug build: the figures say nothing about the server's speed)");
    }

    if args.nodes == 0 {
        return Err("--nodes must be at least 1".to_owned());
    }
    if args.nodes > 1 {
        if args.db != Db::Postgres {
            return Err(
                "--nodes above 1 needs --db postgres: nodes share their state through PostgreSQL"
                    .to_owned(),
            );
        }
        if args.redis.is_none() && scenarios.contains(&Scenario::Live) {
            return Err("--nodes above 1 with the live scenario needs --redis: frames cross nodes on the Redis bus".to_owned());
        }
        eprintln!(
            "  {} nodes in the webhook, live and recovery scenarios; one in the others",
            args.nodes
        );
    }

    let mut outcomes = Vec::new();
    for &scenario in &scenarios {
        let mut env = scenario.env();
        // The channel scenario's fake provider runs before the server, which is pointed at it.
        let fake = match scenario {
            Scenario::Channel => {
                let fake = channel::FakeTelegram::start().await?;
                env.extend(channel::env(&fake.base));
                Some(fake)
            }
            _ => None,
        };
        env.extend(args.server_env.iter().cloned());
        let options = Options {
            redis_url: args.redis.clone(),
            env,
            nodes: if scenario.multi_node() { args.nodes } else { 1 },
            keep_logs: args
                .keep_logs
                .clone()
                .map(|dir| (dir, scenario.name().to_owned())),
        };
        let mut server =
            Server::start(&bin, args.db, args.database_url.as_deref(), &options).await?;
        let result = match scenario {
            Scenario::Portal => portal::run(&server, &args.scale.portal()).await,
            Scenario::Live => live::run(&server, &args.scale.live(args.rate)).await,
            Scenario::Webhook => {
                webhook::run(&server, &args.scale.webhook(args.webhook_rate)).await
            }
            Scenario::Connections => {
                connections::run(&server, &args.scale.connections(args.connections)).await
            }
            Scenario::Recovery => recovery::run(&mut server, &args.scale.recovery()).await,
            Scenario::Channel => match &fake {
                Some(fake) => channel::run(&server, &args.scale.channel(), fake).await,
                None => Err("the channel scenario has no fake provider".to_owned()),
            },
            Scenario::Webchat => webchat::run(&server, &args.scale.webchat()).await,
            Scenario::All => Ok((Vec::new(), Value::Null)),
        };
        let (rss_kb, rss_peak_kb) = procfs::memory_kb(server.pid);
        let (phases, summary) = match result {
            Ok(r) => r,
            Err(e) => {
                let log = server.log_tail();
                let _ = server.stop().await;
                return Err(format!("{e}\nthe server's log ends with:\n{log}"));
            }
        };
        let shutdown = server.stop().await?;
        outcomes.push(Outcome {
            name: scenario.name(),
            phases,
            summary,
            rss_kb,
            rss_peak_kb,
            shutdown_ms: shutdown.as_secs_f64() * 1000.0,
        });
    }

    print_table(&outcomes);
    let results = json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "unix_time": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        "machine": machine(),
        "server": { "bin": bin.display().to_string(), "profile": profile },
        "db": args.db.name(),
        "redis": args.redis.is_some(),
        "nodes": args.nodes,
        "scale": args.scale.name(),
        "scenarios": outcomes.iter().map(outcome_json).collect::<Vec<_>>(),
    });
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    std::fs::write(&args.out, text + "\n")
        .map_err(|e| format!("write {}: {e}", args.out.display()))?;
    eprintln!("results written to {}", args.out.display());
    if args.scale == Scale::Full || args.report_dir.is_some() {
        let dir = args.report_dir.clone().unwrap_or_else(|| {
            args.out
                .parent()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
        });
        report::write(&results, &dir)?;
        eprintln!("report written to {}", dir.join("RESULTS.md").display());
    }
    // Figures over failed requests or lost frames mean nothing: say so by the exit status.
    let failed: u64 = outcomes
        .iter()
        .flat_map(|o| &o.phases)
        .map(|p| p.errors)
        .sum();
    if failed > 0 {
        return Err(format!(
            "{failed} errors: requests failed, frames or deliveries were missing or duplicated, or a scenario lacked what it tests (see the errors column)"
        ));
    }
    Ok(())
}

fn scenario_names(scenarios: &[Scenario]) -> String {
    scenarios
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn outcome_json(o: &Outcome) -> Value {
    let mut out = json!({
        "scenario": o.name,
        "phases": o.phases.iter().map(Phase::to_json).collect::<Vec<_>>(),
        "rss_kb": o.rss_kb,
        "rss_peak_kb": o.rss_peak_kb,
        "shutdown_ms": round1(o.shutdown_ms),
    });
    if let (Some(out), Some(summary)) = (out.as_object_mut(), o.summary.as_object()) {
        out.extend(summary.clone());
    }
    out
}

/// `nproc`, the CPU model and the kernel.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": model,
        "kernel": kernel.trim(),
        "clock_ticks_per_second": procfs::clock_ticks(),
    })
}

fn print_table(outcomes: &[Outcome]) {
    println!();
    println!(
        "{:<11} {:<8} {:>8} {:>6} {:>10} {:>8} {:>8} {:>8} {:>8} {:>11}",
        "scenario",
        "phase",
        "count",
        "errors",
        "per s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "cpu ms/msg"
    );
    for o in outcomes {
        for p in &o.phases {
            println!(
                "{:<11} {:<8} {:>8} {:>6} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>11}",
                o.name,
                p.name,
                p.count,
                p.errors,
                p.per_second(),
                p.latency.p50,
                p.latency.p90,
                p.latency.p99,
                p.latency.max,
                p.cpu_ms_per_message()
                    .map_or_else(|| "n/m".to_owned(), |ms| format!("{ms:.4}")),
            );
        }
    }
    println!(
        "(cpu n/m: not measured, from fewer than {} clock ticks or a process that could not be read)",
        procfs::MIN_TICKS
    );
    println!();
    for o in outcomes {
        let mut notes = vec![
            format!("rss {} kB (peak {} kB)", o.rss_kb, o.rss_peak_kb),
            format!("shutdown {:.0} ms", o.shutdown_ms),
        ];
        for key in [
            "get_to_healthz_ratio",
            "create_to_healthz_ratio",
            "inbound_cpu_to_direct_cpu",
            "widget_cpu_to_direct_cpu",
            "widget_js_bytes",
        ] {
            if let Some(r) = o.summary[key].as_f64() {
                notes.push(format!("{key} {}", round3(r)));
            }
        }
        for (key, label) in [
            ("rss_per_connection_bytes", "server RSS per socket, bytes"),
            ("fanout_to_all_p50_ms", "one activity to all, p50 ms"),
            ("fanout_to_all_max_ms", "max ms"),
            ("server_cpu_us_per_frame", "server CPU per frame, µs"),
            (
                "loopback_floor_us_per_write",
                "floor: the bench's own CPU per loopback write, µs",
            ),
        ] {
            if let Some(r) = o.summary[key].as_f64() {
                notes.push(format!("{label} {}", round3(r)));
            }
        }
        for p in &o.phases {
            if let Some(missing) = p.extra.get("frames_missing").and_then(Value::as_u64) {
                notes.push(format!("{}: {missing} frames missing", p.name));
            }
            if let Some(rate) = p.extra.get("sent_per_second").and_then(Value::as_f64) {
                notes.push(format!("{}: sent {rate}/s", p.name));
            }
            if let Some(verified) = p.extra.get("verified").and_then(Value::as_u64) {
                let n = |key: &str| p.extra.get(key).and_then(Value::as_u64);
                let (gone, how) = match n("lost") {
                    Some(lost) => (lost, "lost"),
                    None => (n("missing").unwrap_or(0), "missing"),
                };
                notes.push(format!(
                    "{}: {verified} deliveries verified, {gone} {how}, {} re-sent, {} duplicates",
                    p.name,
                    n("resent").unwrap_or(0),
                    n("duplicates").unwrap_or(0)
                ));
            }
            if let Some(ms) = p.extra.get("restart_ms").and_then(Value::as_f64) {
                notes.push(format!("{}: restarted in {ms} ms", p.name));
            }
        }
        println!("{}: {}", o.name, notes.join(", "));
    }
}
