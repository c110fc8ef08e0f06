//! `RESULTS.md` and its chart `results.svg`, drawn from the results JSON of a run (the same value
//! that goes to `bench/results.json`). The chart is SVG text written here, with no drawing crate:
//! for every phase of every scenario, its latency percentiles and its throughput, on log scales.
//!
//! Everything is read defensively: a scenario, phase or figure that is absent is shown as "not
//! measured", never as a failure of the report.

use std::path::Path;

use serde_json::Value;

use crate::Result;

/// Writes `RESULTS.md` and `results.svg` into `dir` from the results of a run.
pub fn write(results: &Value, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let svg_path = dir.join("results.svg");
    std::fs::write(&svg_path, svg(results))
        .map_err(|e| format!("write {}: {e}", svg_path.display()))?;
    let md_path = dir.join("RESULTS.md");
    std::fs::write(&md_path, markdown(results))
        .map_err(|e| format!("write {}: {e}", md_path.display()))
}

// ---------------------------------------------------------------------------------------------
// Reading the results.

/// Every (scenario name, phase) of the results, in order.
fn phases(results: &Value) -> Vec<(&str, &Value)> {
    scenarios(results)
        .flat_map(|s| {
            let name = s["scenario"].as_str().unwrap_or("?");
            s["phases"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |p| (name, p))
        })
        .collect()
}

fn scenarios(results: &Value) -> impl Iterator<Item = &Value> {
    results["scenarios"].as_array().into_iter().flatten()
}

fn scenario<'a>(results: &'a Value, name: &str) -> Option<&'a Value> {
    scenarios(results).find(|s| s["scenario"] == name)
}

fn phase<'a>(scenario: &'a Value, name: &str) -> Option<&'a Value> {
    scenario["phases"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
}

/// The phase of a scenario with the highest throughput.
fn fastest(scenario: &Value) -> Option<&Value> {
    scenario["phases"].as_array()?.iter().max_by(|a, b| {
        let (a, b) = (num(&a["per_second"]), num(&b["per_second"]));
        a.unwrap_or(0.0).total_cmp(&b.unwrap_or(0.0))
    })
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// A CPU figure, when it was measured. The bench writes null for one it could not measure; 0
/// (as older runs wrote for a window under one clock tick) is no measurement either.
fn cpu(v: &Value) -> Option<f64> {
    num(v).filter(|x| *x > 0.0)
}

/// The errors of some phases.
fn errors<'a>(phases: impl IntoIterator<Item = &'a Value>) -> u64 {
    phases
        .into_iter()
        .filter_map(|p| p["errors"].as_u64())
        .sum()
}

/// The verdict on a figure of phases with `errors`: met or missed as `met` says, except that
/// phases with errors cannot meet a target, the figure leaving out what failed.
fn judged(errors: u64, met: bool) -> Verdict {
    if met && errors > 0 {
        Verdict::NotJudged(format!("{} errors in the phase", grouped(errors)))
    } else {
        Verdict::of(met)
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

// ---------------------------------------------------------------------------------------------
// Formatting.

/// `unix` seconds as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(unix: u64) -> String {
    let (mut days, secs) = (unix / 86_400, unix % 86_400);
    let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut year = 1970;
    loop {
        let length = if leap(year) { 366 } else { 365 };
        if days < length {
            break;
        }
        days -= length;
        year += 1;
    }
    let february = if leap(year) { 29 } else { 28 };
    let lengths = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 1;
    for length in lengths {
        if days < length {
            break;
        }
        days -= length;
        month += 1;
    }
    format!(
        "{year:04}-{month:02}-{:02} {:02}:{:02}:{:02} UTC",
        days + 1,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Digits grouped by thousands: `12345` → `12,345`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A figure with as many decimals as its size deserves.
fn fmt(x: f64) -> String {
    if !x.is_finite() {
        return "?".to_owned();
    }
    let a = x.abs();
    let sign = if x < 0.0 { "-" } else { "" };
    if a >= 1000.0 || (a.fract() == 0.0 && a < 1e15) {
        format!("{sign}{}", grouped(a.round() as u64))
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a == 0.0 {
        "0".to_owned()
    } else {
        format!("{x:.3}")
    }
}

fn fmt_or(v: &Value) -> String {
    num(v).map_or_else(|| "–".to_owned(), fmt)
}

/// A markdown table cell: no pipe or line break may leak out.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A scalar JSON value as text (`None` for objects and arrays of objects).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("not measured".to_owned()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.as_f64().map_or_else(|| n.to_string(), fmt)),
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Object(_) | Value::Array(_) => None,
                other => scalar(other),
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(", ")),
        Value::Object(_) => None,
    }
}

// ---------------------------------------------------------------------------------------------
// RESULTS.md

/// The text of `RESULTS.md`.
pub fn markdown(results: &Value) -> String {
    let mut md = String::new();
    md.push_str("# Switchboard benchmark results\n\n");

    let when = results["unix_time"]
        .as_u64()
        .map_or_else(|| "an unknown date".to_owned(), utc);
    let machine = &results["machine"];
    let bus = if results["redis"].as_bool() == Some(true) {
        "Redis"
    } else {
        "in-process"
    };
    md.push_str(&format!(
        "Run on {when}, scale `{}`, database `{}`, live bus {bus}, server build `{}`.\n\n",
        text(&results["scale"]),
        text(&results["db"]),
        text(&results["server"]["profile"]),
    ));
    md.push_str(&format!(
        "Machine: {} CPUs ({}), Linux {}.\n\n",
        fmt_or(&machine["nproc"]),
        machine["cpu"]
            .as_str()
            .filter(|c| !c.is_empty())
            .unwrap_or("unknown model"),
        machine["kernel"]
            .as_str()
            .filter(|k| !k.is_empty())
            .unwrap_or("?"),
    ));
    if results["server"]["profile"].as_str() == Some("debug") {
        md.push_str(
            "**The server was a debug build: these figures say nothing about its speed.**\n\n",
        );
    }

    let command = results["command"].as_str().unwrap_or("");
    md.push_str("## Command\n\n```sh\n");
    md.push_str(command);
    md.push_str("\n```\n\nTo reproduce (from the repository's root");
    if results["db"] == "postgres" {
        md.push_str(", with `TEST_DATABASE_URL` naming a PostgreSQL admin URL");
    }
    md.push_str("):\n\n```sh\n");
    let args = command.split_once(' ').map_or("", |(_, args)| args);
    md.push_str(&format!(
        "cargo build --release -p switchboard && cargo run --release -p switchboard-bench -- {args}\n"
    ));
    md.push_str("```\n\n![chart](results.svg)\n\n");

    md.push_str("## Phases\n\n");
    md.push_str(
        "Latency is per message, in ms; CPU is the server's (and PostgreSQL's, when it is the \
         database) per message, in ms, \"not measured\" when the phase used too few clock ticks \
         to tell (`cpu_ticks`) or a process could not be read. `results.json` has every \
         figure.\n\n",
    );
    md.push_str(
        "| scenario | phase | unit | count | errors | per s | p50 ms | p90 ms | p99 ms | CPU ms per message |\n",
    );
    md.push_str("|---|---|---|--:|--:|--:|--:|--:|--:|--:|\n");
    for (scenario, p) in phases(results) {
        let lat = &p["latency_ms"];
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            cell(scenario),
            cell(text(&p["name"])),
            cell(p["unit"].as_str().unwrap_or("")),
            p["count"].as_u64().map_or_else(|| "–".to_owned(), grouped),
            p["errors"].as_u64().map_or_else(|| "–".to_owned(), grouped),
            fmt_or(&p["per_second"]),
            fmt_or(&lat["p50"]),
            fmt_or(&lat["p90"]),
            fmt_or(&lat["p99"]),
            cpu(&p["cpu_ms_per_message"]).map_or_else(|| "not measured".to_owned(), fmt),
        ));
    }

    md.push_str("\n## Targets\n\n");
    md.push_str("| target | measured | met |\n|---|---|---|\n");
    for t in targets(results) {
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            cell(&t.what),
            cell(&t.measured),
            t.verdict.show()
        ));
    }

    if let Some(w) = scenario(results, "webchat") {
        md.push_str(&webchat_section(w));
    }

    md.push_str("\n## Scenario figures\n");
    for s in scenarios(results) {
        md.push_str(&format!("\n### {}\n\n", text(&s["scenario"])));
        md.push_str("| figure | value |\n|---|--:|\n");
        let Some(fields) = s.as_object() else {
            continue;
        };
        for (key, value) in fields {
            if key == "scenario" || key == "phases" {
                continue;
            }
            if let Some(v) = scalar(value) {
                md.push_str(&format!("| {} | {} |\n", cell(key), cell(&v)));
            } else if let Some(inner) = value.as_object() {
                for (k, v) in inner {
                    if let Some(v) = scalar(v) {
                        md.push_str(&format!(
                            "| {} | {} |\n",
                            cell(&format!("{key}.{k}")),
                            cell(&v)
                        ));
                    }
                }
            }
        }
    }
    md
}

/// Whether a target was met.
#[derive(Debug, PartialEq)]
enum Verdict {
    Met,
    Missed,
    NotMeasured,
    /// Measured, but not in the conditions of the target.
    NotJudged(String),
}

impl Verdict {
    fn of(met: bool) -> Self {
        if met {
            Verdict::Met
        } else {
            Verdict::Missed
        }
    }

    fn show(&self) -> String {
        match self {
            Verdict::Met => "yes".to_owned(),
            Verdict::Missed => "**no**".to_owned(),
            Verdict::NotMeasured => "not measured".to_owned(),
            Verdict::NotJudged(why) => format!("n/a ({why})"),
        }
    }
}

struct Target {
    what: String,
    measured: String,
    verdict: Verdict,
    /// A figure of speed or size, judged only at scale full (a loss counts at any scale).
    scaled: bool,
}

impl Target {
    fn new(what: &str, found: Option<(String, Verdict)>) -> Self {
        let (measured, verdict) =
            found.unwrap_or_else(|| ("not measured".to_owned(), Verdict::NotMeasured));
        Self {
            what: what.to_owned(),
            measured,
            verdict,
            scaled: true,
        }
    }

    /// Judged at any scale.
    fn at_any_scale(mut self) -> Self {
        self.scaled = false;
        self
    }
}

/// The targets of the issue against the figures that measure them, where the run has them.
fn targets(results: &Value) -> Vec<Target> {
    // The phase the bench's own `meets_target` is judged on.
    let webhook = scenario(results, "webhook").and_then(|s| phase(s, "max").or_else(|| fastest(s)));
    let live = scenario(results, "live");
    let portal = scenario(results, "portal");
    let connections = scenario(results, "connections");
    let fanout = connections.and_then(|c| phase(c, "fanout"));
    let sockets = connections
        .and_then(|c| c["connections_open"].as_u64())
        .or_else(|| fanout.and_then(|f| f["sockets"].as_u64()));
    let at_scale = |sockets: u64| {
        if sockets >= 10_000 {
            None
        } else {
            Some(format!("{} sockets, not 10,000", grouped(sockets)))
        }
    };

    let mut out = Vec::new();
    out.push(Target::new(
        "webhook: ≥ 5,000 deliveries/s",
        webhook.and_then(|p| {
            let rate = num(&p["per_second"])?;
            Some((
                format!("{}/s (phase {})", fmt(rate), text(&p["name"])),
                judged(errors([p]), rate >= 5000.0),
            ))
        }),
    ));
    out.push(Target::new(
        "webhook: ≤ 0.3 ms CPU per delivery",
        webhook.and_then(|p| {
            let cpu = cpu(&p["cpu_ms_per_message"])?;
            Some((
                format!("{} ms (phase {})", fmt(cpu), text(&p["name"])),
                judged(errors([p]), cpu <= 0.3),
            ))
        }),
    ));
    out.push(Target::new(
        "live: ≥ 10,000 activities/s",
        live.and_then(|s| phase(s, "max").or_else(|| fastest(s)))
            .and_then(|p| {
                let rate = num(&p["per_second"])?;
                Some((
                    format!("{}/s (phase {})", fmt(rate), text(&p["name"])),
                    judged(errors([p]), rate >= 10_000.0),
                ))
            }),
    ));
    out.push(Target::new(
        "live: p99 < 25 ms at 5,000 activities/s",
        live.and_then(|s| {
            // The phase offered the highest rate.
            let p = s["phases"]
                .as_array()?
                .iter()
                .filter(|p| num(&p["offered_per_second"]).is_some())
                .max_by(|a, b| {
                    let (a, b) = (num(&a["offered_per_second"]), num(&b["offered_per_second"]));
                    a.unwrap_or(0.0).total_cmp(&b.unwrap_or(0.0))
                })?;
            let offered = num(&p["offered_per_second"])?;
            // Percentiles of no frame read 0: no latency was measured.
            p["count"].as_u64().filter(|c| *c > 0)?;
            let p99 = num(&p["latency_ms"]["p99"])?;
            let sent = num(&p["sent_per_second"]).unwrap_or(offered);
            let measured = format!(
                "p99 {} ms at {}/s offered ({}/s sent)",
                fmt(p99),
                fmt(offered),
                fmt(sent)
            );
            let verdict = if offered >= 5000.0 && sent >= 0.95 * 5000.0 {
                judged(errors([p]), p99 < 25.0)
            } else {
                Verdict::NotJudged("not offered 5,000/s: run with --rate 5000".to_owned())
            };
            Some((measured, verdict))
        }),
    ));
    out.push(Target::new(
        "live: ≤ 5 µs CPU per delivered frame beyond ingest",
        fanout.and_then(|f| {
            let us = cpu(&f["server_cpu_us_per_frame"])?;
            let floor = match connections.and_then(|c| num(&c["loopback_floor_us_per_write"])) {
                Some(floor) => format!(
                    "; a bare write to a loopback socket costs {} µs on this machine",
                    fmt(floor)
                ),
                None => String::new(),
            };
            Some((
                format!(
                    "{} µs server CPU per frame (connections fan-out: one post to {} sockets){floor}",
                    fmt(us),
                    grouped(sockets.unwrap_or(0))
                ),
                judged(errors([f]), us <= 5.0),
            ))
        }),
    ));
    out.push(Target::new(
        "portal: GET ≥ half the rate of /healthz",
        portal.and_then(|s| {
            let (get_phase, healthz_phase) = (phase(s, "get")?, phase(s, "healthz")?);
            let get = num(&get_phase["per_second"])?;
            let healthz = num(&healthz_phase["per_second"])?;
            if healthz <= 0.0 {
                return None;
            }
            let ratio = get / healthz;
            Some((
                format!(
                    "GET {}/s = {} × /healthz {}/s",
                    fmt(get),
                    fmt(ratio),
                    fmt(healthz)
                ),
                judged(errors([get_phase, healthz_phase]), ratio >= 0.5),
            ))
        }),
    ));
    out.push(Target::new(
        "connections: 10,000 idle sockets at < 10 KB of server memory each",
        connections.and_then(|c| {
            let bytes = num(&c["rss_per_connection_bytes"])?;
            let n = sockets.unwrap_or(0);
            let measured = format!(
                "{} KB per socket over {} sockets (server RSS)",
                fmt(bytes / 1024.0),
                grouped(n)
            );
            let verdict = match at_scale(n) {
                None => Verdict::of(bytes < 10.0 * 1024.0),
                Some(why) => Verdict::NotJudged(why),
            };
            Some((measured, verdict))
        }),
    ));
    out.push(Target::new(
        "connections: one activity reaches all 10,000 in < 150 ms",
        fanout.and_then(|f| {
            // Percentiles of no round read 0: nothing was measured.
            f["count"].as_u64().filter(|c| *c > 0)?;
            let to_all = &f["to_all_ms"];
            let p50 = num(&to_all["p50"])?;
            let n = sockets.unwrap_or(0);
            let measured = format!(
                "median {} ms, worst {} ms over {} activities, to {} sockets",
                fmt(p50),
                fmt_or(&to_all["max"]),
                fmt_or(&f["rounds"]),
                grouped(n)
            );
            let verdict = match at_scale(n) {
                None => judged(errors([f]), p50 < 150.0),
                Some(why) => Verdict::NotJudged(why),
            };
            Some((measured, verdict))
        }),
    ));
    out.push(Target::new(
        "channel: inbound webhook ≤ 1.5 × CPU of POST /inbound",
        scenario(results, "channel").and_then(channel),
    ));
    out.push(
        Target::new(
            "webchat: widget.js ≤ 32 KiB uncompressed",
            scenario(results, "webchat").and_then(widget_weight),
        )
        .at_any_scale(),
    );
    out.push(
        Target::new(
            "recovery: 0 deliveries lost across a crash",
            scenario(results, "recovery").and_then(recovery),
        )
        .at_any_scale(),
    );
    out.push(
        Target::new(
            "idle shutdown < 1 s",
            scenarios(results)
                .filter_map(|s| Some((text(&s["scenario"]), num(&s["shutdown_ms"])?)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(name, ms)| {
                    let all: Vec<String> = scenarios(results)
                        .filter_map(|s| {
                            Some(format!(
                                "{} {}",
                                text(&s["scenario"]),
                                fmt(num(&s["shutdown_ms"])?)
                            ))
                        })
                        .collect();
                    (
                        format!(
                            "slowest {} ms (after {name}); per scenario, ms: {}",
                            fmt(ms),
                            all.join(", ")
                        ),
                        Verdict::of(ms < 1000.0),
                    )
                }),
        )
        .at_any_scale(),
    );
    let scale = results["scale"].as_str().unwrap_or("?");
    if scale != "full" {
        for t in out.iter_mut().filter(|t| t.scaled) {
            if matches!(t.verdict, Verdict::Met | Verdict::Missed) {
                t.verdict = Verdict::NotJudged(format!("scale {scale}"));
            }
        }
    }
    out
}

/// The channel target: the server's CPU per Telegram update (phase `inbound`) over its CPU per
/// `POST /inbound` activity at the same rate (phase `direct`), at most 1.5.
fn channel(s: &Value) -> Option<(String, Verdict)> {
    let (inbound, direct) = (phase(s, "inbound")?, phase(s, "direct")?);
    let (i, d) = (
        cpu(&inbound["cpu_ms_per_message"])?,
        cpu(&direct["cpu_ms_per_message"])?,
    );
    let ratio = i / d;
    Some((
        format!(
            "{} × ({} ms per Telegram update, {} ms per POST /inbound activity, at {}/s each)",
            fmt(ratio),
            fmt(i),
            fmt(d),
            fmt_or(&inbound["offered_per_second"])
        ),
        judged(errors([inbound, direct]), ratio <= 1.5),
    ))
}

/// The widget's weight (SPEC 7.18.4: at most 32 KiB): its bytes as served, and gzip-encoded
/// when the server answered that encoding.
fn widget_weight(s: &Value) -> Option<(String, Verdict)> {
    let bytes = s["widget_js_bytes"].as_u64()?;
    Some((
        format!("{} bytes{}", grouped(bytes), gzip_note(s)),
        Verdict::of(bytes <= 32 * 1024),
    ))
}

fn gzip_note(s: &Value) -> String {
    match s["widget_js_gzip_bytes"].as_u64() {
        Some(gz) => format!(" ({} bytes gzip-encoded)", grouped(gz)),
        None => " (the server did not answer it gzip-encoded)".to_owned(),
    }
}

/// The WebChat figures of issue 17: the widget's weight, the session create rate and the cost of
/// a widget message next to an agent's `POST /inbound/…` activity.
fn webchat_section(s: &Value) -> String {
    let mut md = String::from("\n## WebChat\n\n| figure | measured |\n|---|---|\n");
    let cpu_of = |p: &Value, unit: &str| {
        cpu(&p["cpu_ms_per_message"]).map_or_else(
            || "server CPU not measured".to_owned(),
            |ms| format!("{} ms server CPU per {unit}", fmt(ms)),
        )
    };
    let latency = |p: &Value, what: &str| {
        let lat = &p["latency_ms"];
        format!(
            "p50 {} ms, p99 {} ms {what}",
            fmt_or(&lat["p50"]),
            fmt_or(&lat["p99"])
        )
    };
    let weight = match s["widget_js_bytes"].as_u64() {
        Some(bytes) => format!("{} bytes{}", grouped(bytes), gzip_note(s)),
        None => format!(
            "not measured (`GET /webchat/v1/widget.js` answered {})",
            fmt_or(&s["widget_js_status"])
        ),
    };
    md.push_str(&format!("| widget.js | {} |\n", cell(&weight)));
    if let Some(p) = phase(s, "sessions") {
        md.push_str(&format!(
            "| session create rate | {}/s at concurrency {} ({}); {}; {} errors |\n",
            fmt_or(&p["per_second"]),
            fmt_or(&p["concurrency"]),
            latency(p, "per request"),
            cpu_of(p, "session"),
            fmt_or(&p["errors"]),
        ));
    }
    if let Some(p) = phase(s, "widget") {
        md.push_str(&format!(
            "| widget message (socket `activity` frame) | {}; {} at {}/s offered over {} sockets; {} errors |\n",
            cpu_of(p, "message"),
            latency(p, "from the send to the agent's socket"),
            fmt_or(&p["offered_per_second"]),
            fmt_or(&p["sockets"]),
            fmt_or(&p["errors"]),
        ));
    }
    if let Some(p) = phase(s, "direct") {
        md.push_str(&format!(
            "| agent's `POST /inbound/…` activity (reference) | {}; {} at {}/s offered; {} errors |\n",
            cpu_of(p, "activity"),
            latency(p, "from the POST to the agent's socket"),
            fmt_or(&p["offered_per_second"]),
            fmt_or(&p["errors"]),
        ));
    }
    let ratio = num(&s["widget_cpu_to_direct_cpu"])
        .map_or_else(|| "not measured".to_owned(), |r| format!("{} ×", fmt(r)));
    md.push_str(&format!(
        "| widget message CPU / `POST /inbound` CPU | {ratio} |\n"
    ));
    md
}

/// The recovery target: 0 lost, over a kill that had a backlog queued.
fn recovery(s: &Value) -> Option<(String, Verdict)> {
    let phases = s["phases"].as_array()?;
    let sum = |key: &str| phases.iter().map(|p| p[key].as_u64()).sum::<Option<u64>>();
    let lost = s["lost"].as_u64().or_else(|| sum("lost"))?;
    let mut measured = match sum("deliveries_due") {
        Some(due) => format!("{} lost of {} due", grouped(lost), grouped(due)),
        None => format!("{} lost", grouped(lost)),
    };
    let queued = sum("undelivered_at_kill").unwrap_or(0);
    measured.push_str(&format!(", {} queued at the kill", grouped(queued)));
    if let Some(held) = sum("held_at_kill") {
        measured.push_str(&format!(" ({} in flight)", grouped(held)));
    }
    let short = phases
        .iter()
        .any(|p| p["backlog_at_kill_met"].as_bool() == Some(false));
    let verdict = if lost > 0 {
        Verdict::Missed
    } else if queued == 0 {
        // Nothing queued: re-sends after a crash, not an outbox surviving one.
        Verdict::NotMeasured
    } else if short {
        let required = sum("backlog_required_at_kill").unwrap_or(0);
        Verdict::NotJudged(format!(
            "a backlog of {} and an attempt in flight were required at the kill",
            grouped(required)
        ))
    } else {
        judged(errors(phases), true)
    };
    Some((measured, verdict))
}

// ---------------------------------------------------------------------------------------------
// results.svg

/// Escapes text for SVG content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A log-scale axis from `lo` to `hi` (powers of ten), mapped onto pixels `bottom`..`top`.
struct LogAxis {
    lo: f64,
    hi: f64,
    top: f64,
    bottom: f64,
}

impl LogAxis {
    /// An axis holding every positive value of `values` (1 to 10 when there is none).
    fn fit(values: impl Iterator<Item = f64>, top: f64, bottom: f64) -> Self {
        let positive: Vec<f64> = values.filter(|v| v.is_finite() && *v > 0.0).collect();
        let min = positive.iter().copied().fold(f64::INFINITY, f64::min);
        let max = positive.iter().copied().fold(0.0, f64::max);
        let (mut lo, mut hi) = if positive.is_empty() {
            (1.0, 10.0)
        } else {
            (
                10f64.powf(min.log10().floor()),
                10f64.powf(max.log10().ceil()),
            )
        };
        if hi <= lo {
            hi = lo * 10.0;
        }
        lo = lo.max(1e-6);
        Self {
            lo,
            hi,
            top,
            bottom,
        }
    }

    /// The pixel height of `v` (clamped to the axis).
    fn y(&self, v: f64) -> f64 {
        let v = v.clamp(self.lo, self.hi);
        let share = (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10());
        self.bottom - share * (self.bottom - self.top)
    }

    /// The powers of ten from `lo` to `hi`.
    fn decades(&self) -> Vec<f64> {
        let (a, b) = (
            self.lo.log10().round() as i32,
            self.hi.log10().round() as i32,
        );
        (a..=b).map(|e| 10f64.powi(e)).collect()
    }
}

/// SVG text, built element by element.
struct Svg {
    out: String,
}

impl Svg {
    fn text(&mut self, x: f64, y: f64, anchor: &str, size: u32, fill: &str, content: &str) {
        self.out.push_str(&format!(
            "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" font-size=\"{size}\" fill=\"{fill}\">{}</text>\n",
            esc(content)
        ));
    }

    /// Text turned to read upwards, starting at (x, y).
    fn vtext(&mut self, x: f64, y: f64, size: u32, fill: &str, content: &str) {
        self.out.push_str(&format!(
            "<text transform=\"translate({x:.1},{y:.1}) rotate(-90)\" font-size=\"{size}\" fill=\"{fill}\">{}</text>\n",
            esc(content)
        ));
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, title: &str) {
        self.out.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{fill}\"><title>{}</title></rect>\n",
            h.max(0.0),
            esc(title)
        ));
    }

    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str) {
        self.out.push_str(&format!(
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{stroke}\" stroke-width=\"1\"/>\n"
        ));
    }
}

const PERCENTILES: [(&str, &str); 3] = [("p50", "#4e79a7"), ("p90", "#f28e2b"), ("p99", "#e15759")];
const THROUGHPUT_COLOUR: &str = "#59a14f";
const LEFT: f64 = 84.0;
const RIGHT: f64 = 24.0;
const GROUP: f64 = 96.0;
const PANEL: f64 = 240.0;
const LABELS: f64 = 64.0;
/// Room above the highest grid line for the value printed over a bar.
const HEADROOM: f64 = 28.0;

/// The chart: latency percentiles (top panel) and throughput (bottom panel) of every phase.
pub fn svg(results: &Value) -> String {
    let rows = phases(results);
    let n = rows.len().max(1) as f64;
    let width = (LEFT + n * GROUP + RIGHT).max(640.0);
    let top1 = 80.0;
    let bottom1 = top1 + PANEL;
    let top2 = bottom1 + LABELS + 48.0;
    let bottom2 = top2 + PANEL;
    let height = bottom2 + LABELS + 24.0;

    let mut svg = Svg { out: String::new() };
    svg.out.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
    ));
    svg.rect(0.0, 0.0, width, height, "#ffffff", "background");
    let when = results["unix_time"]
        .as_u64()
        .map_or_else(String::new, |t| format!(", {}", utc(t)));
    svg.text(
        width / 2.0,
        26.0,
        "middle",
        17,
        "#222222",
        &format!(
            "Switchboard benchmark: scale {}, {}{when}",
            text(&results["scale"]),
            text(&results["db"])
        ),
    );

    // Panel 1: latency.
    let latency = LogAxis::fit(
        rows.iter().flat_map(|(_, p)| {
            PERCENTILES
                .iter()
                .filter_map(|(k, _)| num(&p["latency_ms"][*k]))
        }),
        top1 + HEADROOM,
        bottom1,
    );
    svg.text(
        LEFT,
        top1 - 18.0,
        "start",
        14,
        "#222222",
        "Latency per message, ms (log scale)",
    );
    // Legend, top right.
    let mut lx = width - RIGHT - 3.0 * 64.0;
    for (name, colour) in PERCENTILES {
        svg.rect(lx, top1 - 30.0, 12.0, 12.0, colour, name);
        svg.text(lx + 16.0, top1 - 19.5, "start", 12, "#222222", name);
        lx += 64.0;
    }
    axis(&mut svg, &latency, width, "ms");
    let bar = (GROUP - 24.0) / 3.0;
    for (i, (scenario, p)) in rows.iter().enumerate() {
        let x0 = LEFT + i as f64 * GROUP + 12.0;
        for (j, (k, colour)) in PERCENTILES.iter().enumerate() {
            let Some(v) = num(&p["latency_ms"][*k]).filter(|v| *v > 0.0) else {
                continue;
            };
            let x = x0 + j as f64 * bar;
            let y = latency.y(v);
            let title = format!("{scenario} {} {k}: {} ms", text(&p["name"]), fmt(v));
            svg.rect(x + 1.0, y, bar - 2.0, bottom1 - y, colour, &title);
            svg.vtext(x + bar / 2.0 + 3.5, y - 3.0, 10, "#333333", &fmt(v));
        }
        group_label(&mut svg, x0, bottom1, scenario, p, None);
    }

    // Panel 2: throughput.
    let rate = LogAxis::fit(
        rows.iter().filter_map(|(_, p)| num(&p["per_second"])),
        top2 + HEADROOM,
        bottom2,
    );
    svg.text(
        LEFT,
        top2 - 18.0,
        "start",
        14,
        "#222222",
        "Throughput, messages per second (log scale)",
    );
    svg.rect(
        width - RIGHT - 3.0 * 64.0,
        top2 - 30.0,
        12.0,
        12.0,
        THROUGHPUT_COLOUR,
        "per second",
    );
    svg.text(
        width - RIGHT - 3.0 * 64.0 + 16.0,
        top2 - 19.5,
        "start",
        12,
        "#222222",
        "per second",
    );
    axis(&mut svg, &rate, width, "per s");
    for (i, (scenario, p)) in rows.iter().enumerate() {
        let x0 = LEFT + i as f64 * GROUP + 12.0;
        if let Some(v) = num(&p["per_second"]).filter(|v| *v > 0.0) {
            let w = GROUP - 24.0;
            let y = rate.y(v);
            let title = format!("{scenario} {}: {}/s", text(&p["name"]), fmt(v));
            svg.rect(
                x0 + w / 4.0,
                y,
                w / 2.0,
                bottom2 - y,
                THROUGHPUT_COLOUR,
                &title,
            );
            svg.text(x0 + w / 2.0, y - 4.0, "middle", 10, "#333333", &fmt(v));
        }
        let unit = p["unit"].as_str().map(|u| format!("{u}/s"));
        group_label(&mut svg, x0, bottom2, scenario, p, unit.as_deref());
    }
    svg.out.push_str("</svg>\n");
    svg.out
}

/// The grid lines and labels of a log axis, and its unit.
fn axis(svg: &mut Svg, axis: &LogAxis, width: f64, unit: &str) {
    for d in axis.decades() {
        let y = axis.y(d);
        svg.line(LEFT, y, width - RIGHT, y, "#dddddd");
        svg.text(LEFT - 6.0, y + 4.0, "end", 11, "#444444", &fmt(d));
    }
    svg.line(LEFT, axis.top, LEFT, axis.bottom, "#888888");
    svg.line(LEFT, axis.bottom, width - RIGHT, axis.bottom, "#888888");
    svg.vtext(
        18.0,
        (axis.top + axis.bottom) / 2.0 + 12.0,
        12,
        "#444444",
        unit,
    );
}

/// The scenario and phase under a group of bars (errors in red), and a third line if given.
fn group_label(
    svg: &mut Svg,
    x0: f64,
    bottom: f64,
    scenario: &str,
    p: &Value,
    third: Option<&str>,
) {
    let centre = x0 + (GROUP - 24.0) / 2.0;
    svg.text(centre, bottom + 16.0, "middle", 11, "#222222", scenario);
    svg.text(
        centre,
        bottom + 30.0,
        "middle",
        12,
        "#000000",
        text(&p["name"]),
    );
    let mut y = bottom + 44.0;
    if let Some(third) = third {
        svg.text(centre, y, "middle", 10, "#666666", third);
        y += 14.0;
    }
    if let Some(errors) = p["errors"].as_u64().filter(|e| *e > 0) {
        svg.text(
            centre,
            y,
            "middle",
            10,
            "#c00000",
            &format!("{} errors", grouped(errors)),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn results() -> Value {
        json!({
            "command": "target/release/switchboard-bench --scenario all --scale full",
            "unix_time": 1_700_000_000u64,
            "machine": { "nproc": 2, "cpu": "Test CPU <fast> & \"cheap\"", "kernel": "6.1.0" },
            "server": { "bin": "target/release/switchboard", "profile": "release" },
            "db": "sqlite",
            "redis": false,
            "scale": "full",
            "scenarios": [
                {
                    "scenario": "portal",
                    "phases": [
                        { "name": "healthz", "unit": "request", "count": 100000, "errors": 0,
                          "per_second": 60000.0,
                          "latency_ms": { "p50": 0.45, "p90": 0.75, "p99": 1.13, "max": 5.0 },
                          "cpu_ms_per_message": 0.0119 },
                        { "name": "get", "unit": "request", "count": 100000, "errors": 0,
                          "per_second": 12000.0,
                          "latency_ms": { "p50": 2.47, "p90": 3.71, "p99": 4.9, "max": 9.7 },
                          "cpu_ms_per_message": 0.1236 },
                        { "name": "odd <name> & co", "unit": "request", "count": 0,
                          "errors": 0, "per_second": 0.0, "latency_ms": {} }
                    ],
                    "get_to_healthz_ratio": 0.2,
                    "parameters": { "concurrency": 32 },
                    "shutdown_ms": 12.0
                },
                {
                    "scenario": "connections",
                    "phases": [
                        { "name": "open", "unit": "socket", "count": 10000, "errors": 0,
                          "per_second": 2167.8,
                          "latency_ms": { "p50": 49.7, "p90": 78.4, "p99": 174.3, "max": 235.8 },
                          "cpu_ms_per_message": 0.376 },
                        { "name": "fanout", "unit": "frame", "count": 100000, "errors": 3,
                          "per_second": 20163.9,
                          "latency_ms": { "p50": 211.5, "p90": 514.0, "p99": 602.1, "max": 625.8 },
                          "cpu_ms_per_message": 0.0274, "server_cpu_us_per_frame": 27.4,
                          "rounds": 10, "to_all_ms": { "p50": 530.8, "max": 625.8 } }
                    ],
                    "connections_open": 10000,
                    "loopback_floor_us_per_write": 5.1,
                    "rss_per_connection_bytes": 138908.5,
                    "socket_ends": {},
                    "parameters": { "connections": 10000, "rounds": 10 },
                    "shutdown_ms": 1488.8
                }
            ]
        })
    }

    /// Tags open and close in order; answers the names of the elements seen.
    fn balanced(svg: &str) -> Vec<String> {
        let mut stack: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("a tag is closed") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "a '<' inside a tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name.trim()), "closing {name}");
            } else {
                let name = tag
                    .split_whitespace()
                    .next()
                    .expect("a name")
                    .trim_end_matches('/');
                seen.push(name.to_owned());
                if !tag.ends_with('/') {
                    stack.push(name.to_owned());
                }
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        seen
    }

    #[test]
    fn svg_is_balanced_and_names_every_phase() {
        let svg = svg(&results());
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        let elements = balanced(&svg);
        assert_eq!(elements.first().map(String::as_str), Some("svg"));
        for phase in [
            "healthz",
            "get",
            "odd &lt;name&gt; &amp; co",
            "open",
            "fanout",
        ] {
            assert!(svg.contains(&format!(">{phase}</text>")), "{phase} missing");
        }
        assert!(!svg.contains("odd <name>"));
        // Every '&' starts an entity.
        for (i, _) in svg.match_indices('&') {
            let entity = &svg[i..svg.len().min(i + 6)];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                    .iter()
                    .any(|e| entity.starts_with(e)),
                "a bare & at {entity}"
            );
        }
        assert!(svg.contains("3 errors"));
    }

    #[test]
    fn svg_of_empty_results() {
        let svg = svg(&json!({}));
        balanced(&svg);
        assert!(svg.ends_with("</svg>\n"));
    }

    #[test]
    fn markdown_has_the_rows_and_targets() {
        let md = markdown(&results());
        assert!(md.contains("2023-11-14 22:13:20 UTC"), "{md}");
        assert!(md.contains(
            "| portal | healthz | request | 100,000 | 0 | 60,000 | 0.450 | 0.750 | 1.13 | 0.012 |"
        ), "{md}");
        assert!(
            md.contains(
                "| connections | fanout | frame | 100,000 | 3 | 20,164 | 212 | 514 | 602 | 0.027 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("cargo run --release -p switchboard-bench -- --scenario all --scale full")
        );
        assert!(md.contains("![chart](results.svg)"));
        // Targets: met, missed, and absent scenarios.
        assert!(md.contains("| portal: GET ≥ half the rate of /healthz | GET 12,000/s = 0.200 × /healthz 60,000/s | **no** |"), "{md}");
        assert!(md.contains("| webhook: ≥ 5,000 deliveries/s | not measured | not measured |"));
        assert!(md.contains(
            "| recovery: 0 deliveries lost across a crash | not measured | not measured |"
        ));
        assert!(md.contains("136 KB per socket over 10,000 sockets"), "{md}");
        assert!(md.contains("| live: ≤ 5 µs CPU per delivered frame beyond ingest | 27.4 µs server CPU per frame (connections fan-out: one post to 10,000 sockets); a bare write to a loopback socket costs 5.10 µs on this machine | **no** |"), "{md}");
        assert!(
            md.contains("median 531 ms, worst 626 ms over 10 activities"),
            "{md}"
        );
        assert!(md.contains("slowest 1,489 ms (after connections)"), "{md}");
        // Scenario figures, flattened one level; empty objects left out.
        assert!(
            md.contains("| rss_per_connection_bytes | 138,909 |"),
            "{md}"
        );
        assert!(md.contains("| parameters.connections | 10,000 |"), "{md}");
        assert!(!md.contains("socket_ends"));
    }

    /// The results with these scenarios added.
    fn with(scenarios: Vec<Value>) -> Value {
        let mut r = results();
        r["scenarios"]
            .as_array_mut()
            .expect("array")
            .extend(scenarios);
        r
    }

    fn crash(undelivered: u64, met: bool) -> Value {
        json!({ "scenario": "recovery", "lost": 0,
                "phases": [ { "name": "crash", "lost": 0, "errors": u64::from(!met),
                              "deliveries_due": 400, "undelivered_at_kill": undelivered,
                              "held_at_kill": 12, "backlog_required_at_kill": 100,
                              "backlog_at_kill_met": met } ] })
    }

    #[test]
    fn recovery_and_webhook_figures_when_present() {
        let md = markdown(&with(vec![
            json!({ "scenario": "webhook", "phases": [
                { "name": "offered", "per_second": 900.0, "cpu_ms_per_message": 0.5 },
                { "name": "max", "per_second": 6000.0, "cpu_ms_per_message": 0.25 } ] }),
            crash(150, true),
        ]));
        assert!(
            md.contains("| webhook: ≥ 5,000 deliveries/s | 6,000/s (phase max) | yes |"),
            "{md}"
        );
        assert!(md.contains("| webhook: ≤ 0.3 ms CPU per delivery | 0.250 ms (phase max) | yes |"));
        assert!(
            md.contains("| recovery: 0 deliveries lost across a crash | 0 lost of 400 due, 150 queued at the kill (12 in flight) | yes |"),
            "{md}"
        );
    }

    #[test]
    fn a_crash_with_nothing_queued_proves_nothing() {
        let md = markdown(&with(vec![crash(0, false)]));
        assert!(
            md.contains("| recovery: 0 deliveries lost across a crash | 0 lost of 400 due, 0 queued at the kill (12 in flight) | not measured |"),
            "{md}"
        );
        // Results from before the backlog was reported.
        let md = markdown(&with(vec![json!({ "scenario": "recovery", "lost": 0,
            "phases": [ { "name": "crash", "lost": 0, "deliveries_due": 400 } ] })]));
        assert!(md.contains("0 queued at the kill | not measured |"), "{md}");
        // Some queued, but fewer than required.
        let md = markdown(&with(vec![crash(40, false)]));
        assert!(
            md.contains("40 queued at the kill (12 in flight) | n/a (a backlog of 100 and an attempt in flight were required at the kill) |"),
            "{md}"
        );
    }

    #[test]
    fn webhook_targets_are_judged_on_the_max_phase() {
        // The offered phase is the faster here; `meets_target` is of the max phase, and so are
        // the verdicts.
        let md = markdown(&with(vec![json!({ "scenario": "webhook", "phases": [
            { "name": "offered", "per_second": 7000.0, "cpu_ms_per_message": 0.1 },
            { "name": "max", "per_second": 4000.0, "cpu_ms_per_message": 0.5 } ] })]));
        assert!(
            md.contains("| webhook: ≥ 5,000 deliveries/s | 4,000/s (phase max) | **no** |"),
            "{md}"
        );
        assert!(
            md.contains("| webhook: ≤ 0.3 ms CPU per delivery | 0.500 ms (phase max) | **no** |"),
            "{md}"
        );
    }

    #[test]
    fn a_cpu_figure_not_measured_is_never_met() {
        for cpu in [json!(null), json!(0.0)] {
            let mut r = with(vec![json!({ "scenario": "webhook", "phases": [
                { "name": "max", "per_second": 6000.0, "cpu_ms_per_message": cpu } ] })]);
            r["scenarios"][1]["phases"][1]["server_cpu_us_per_frame"] = cpu.clone();
            let md = markdown(&r);
            assert!(
                md.contains("| webhook: ≤ 0.3 ms CPU per delivery | not measured | not measured |"),
                "{md}"
            );
            assert!(
                md.contains("| live: ≤ 5 µs CPU per delivered frame beyond ingest | not measured | not measured |"),
                "{md}"
            );
            assert!(
                md.contains("| webhook | max |  | – | – | 6,000 | – | – | – | not measured |"),
                "{md}"
            );
        }
    }

    #[test]
    fn a_figure_of_nothing_or_of_errors_is_never_met() {
        let mut r = with(vec![json!({ "scenario": "live", "phases": [
            { "name": "offered", "count": 0, "errors": 0, "per_second": 0.0,
              "offered_per_second": 5000, "sent_per_second": 5000.0,
              "latency_ms": { "p50": 0.0, "p90": 0.0, "p99": 0.0 } },
            { "name": "max", "count": 50000, "errors": 2, "per_second": 12000.0 } ] })]);
        // A fan-out that reached no socket: percentiles of nothing.
        let fanout = &mut r["scenarios"][1]["phases"][1];
        fanout["count"] = json!(0);
        fanout["to_all_ms"] = json!({ "p50": 0.0, "max": 0.0 });
        let md = markdown(&r);
        assert!(
            md.contains(
                "| live: p99 < 25 ms at 5,000 activities/s | not measured | not measured |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| connections: one activity reaches all 10,000 in < 150 ms | not measured | not measured |"),
            "{md}"
        );
        assert!(
            md.contains("| live: ≥ 10,000 activities/s | 12,000/s (phase max) | n/a (2 errors in the phase) |"),
            "{md}"
        );
    }

    #[test]
    fn figures_of_a_tiny_run_are_not_judged() {
        let mut r = results();
        r["scale"] = json!("tiny");
        let md = markdown(&r);
        // Speed and size: shown, not judged; the shutdown still is.
        assert!(
            md.contains("0.200 × /healthz 60,000/s | n/a (scale tiny) |"),
            "{md}"
        );
        assert!(
            md.contains("over 10,000 sockets (server RSS) | n/a (scale tiny) |"),
            "{md}"
        );
        assert!(md.contains("connections 1,489 | **no** |"), "{md}");
    }

    fn channel_run(inbound_cpu: Value, errors: u64) -> Value {
        with(vec![json!({ "scenario": "channel", "phases": [
            { "name": "inbound", "per_second": 1000.0, "offered_per_second": 1000,
              "cpu_ms_per_message": inbound_cpu, "errors": errors },
            { "name": "direct", "per_second": 1000.0, "offered_per_second": 1000,
              "cpu_ms_per_message": 0.4, "errors": 0 },
            { "name": "outbound", "per_second": 990.0, "cpu_ms_per_message": 0.8,
              "errors": 0 } ] })])
    }

    #[test]
    fn the_channel_target_is_the_cpu_ratio_of_inbound_to_direct() {
        let row = "| channel: inbound webhook ≤ 1.5 × CPU of POST /inbound |";
        let md = markdown(&channel_run(json!(0.5), 0));
        assert!(
            md.contains(&format!("{row} 1.25 × (0.500 ms per Telegram update, 0.400 ms per POST /inbound activity, at 1,000/s each) | yes |")),
            "{md}"
        );
        let md = markdown(&channel_run(json!(0.7), 0));
        assert!(md.contains(&format!("{row} 1.75 × (")), "{md}");
        assert!(md.contains("at 1,000/s each) | **no** |"), "{md}");
        let md = markdown(&channel_run(json!(0.5), 2));
        assert!(md.contains("| n/a (2 errors in the phase) |"), "{md}");
        let md = markdown(&channel_run(json!(null), 0));
        assert!(
            md.contains(&format!("{row} not measured | not measured |")),
            "{md}"
        );
        let mut r = channel_run(json!(0.5), 0);
        r["scale"] = json!("tiny");
        assert!(markdown(&r).contains("at 1,000/s each) | n/a (scale tiny) |"));
    }

    #[test]
    fn the_webchat_figures_are_shown_and_the_weight_judged() {
        let run = |bytes: Value, gzip: Value| {
            let mut r = with(vec![json!({ "scenario": "webchat",
                "widget_js_status": 200, "widget_js_bytes": bytes, "widget_js_gzip_bytes": gzip,
                "widget_cpu_to_direct_cpu": 1.25,
                "phases": [
                { "name": "sessions", "per_second": 480.5, "concurrency": 16, "errors": 0,
                  "cpu_ms_per_message": 0.5, "latency_ms": { "p50": 23.16, "p99": 96.3 } },
                { "name": "widget", "per_second": 1000.0, "offered_per_second": 1000,
                  "sockets": 300, "cpu_ms_per_message": 0.5, "errors": 0,
                  "latency_ms": { "p50": 2.4, "p99": 9.0 } },
                { "name": "direct", "per_second": 1000.0, "offered_per_second": 1000,
                  "cpu_ms_per_message": 0.4, "errors": 0,
                  "latency_ms": { "p50": 2.0, "p99": 8.0 } } ] })]);
            r["scale"] = json!("tiny");
            markdown(&r)
        };
        let md = run(json!(32191), json!(null));
        let row = "| webchat: widget.js ≤ 32 KiB uncompressed |";
        assert!(
            md.contains(&format!(
                "{row} 32,191 bytes (the server did not answer it gzip-encoded) | yes |"
            )),
            "{md}"
        );
        assert!(md.contains("| session create rate | 480/s at concurrency 16 (p50 23.2 ms, p99 96.3 ms per request); 0.500 ms server CPU per session; 0 errors |"), "{md}");
        assert!(md.contains("| widget message (socket `activity` frame) | 0.500 ms server CPU per message; p50 2.40 ms, p99 9 ms from the send to the agent's socket at 1,000/s offered over 300 sockets; 0 errors |"), "{md}");
        assert!(md.contains("| agent's `POST /inbound/…` activity (reference) | 0.400 ms server CPU per activity;"), "{md}");
        assert!(
            md.contains("| widget message CPU / `POST /inbound` CPU | 1.25 × |"),
            "{md}"
        );
        let md = run(json!(40000), json!(9000));
        assert!(
            md.contains(&format!(
                "{row} 40,000 bytes (9,000 bytes gzip-encoded) | **no** |"
            )),
            "{md}"
        );
        // A widget not served yet: not measured, not a failure.
        let md = run(json!(null), json!(null));
        assert!(
            md.contains(&format!("{row} not measured | not measured |")),
            "{md}"
        );
        assert!(
            md.contains("| widget.js | not measured (`GET /webchat/v1/widget.js` answered 200) |"),
            "{md}"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }

    #[test]
    fn figures() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(fmt(64898.9), "64,899");
        assert_eq!(fmt(0.0119), "0.012");
        assert_eq!(fmt(12.34), "12.3");
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
