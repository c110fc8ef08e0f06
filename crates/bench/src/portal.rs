//! Scenario `portal`: `/healthz` (the ceiling of the HTTP stack), then creating Direct Agent
//! integrations with unique names, then getting them back, each at one fixed concurrency.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::load::{closed_loop, Run};
use crate::procfs::{CpuSnapshot, Database};
use crate::server::{direct_body, Server};
use crate::stats::{round3, Percentiles, Phase};
use crate::Result;

/// The size of the scenario.
#[derive(Clone, Debug)]
pub struct Plan {
    pub concurrency: usize,
    pub healthz: u64,
    pub create: u64,
    pub get: u64,
    /// The most one phase may take.
    pub cap: Duration,
}

/// The scenario's figures: its phases, the ratios, and its parameters.
pub async fn run(server: &Server, plan: &Plan) -> Result<(Vec<Phase>, Value)> {
    let api = server.api.clone();
    let hub = api.hub("portal").await?;
    let watch_db = server.database;
    let mut phases = Vec::new();

    // 1. The HTTP ceiling.
    let healthz = api.url("/healthz");
    let http = api.http.clone();
    let before = CpuSnapshot::take(server.pid, watch_db);
    let run = closed_loop(
        "portal: GET /healthz",
        plan.concurrency,
        plan.healthz,
        plan.cap,
        move |_| {
            let req = http.get(healthz.clone());
            async move { expect_ok(req.send().await).await }
        },
    )
    .await;
    phases.push(phase("healthz", run, &before, server.pid, watch_db));

    // 2. Create integrations.
    let ids = Arc::new(Mutex::new(Vec::with_capacity(plan.create as usize)));
    let (http, url, token, ids_in) = (
        api.http.clone(),
        api.url(&format!("/api/v1/integrations/hubs/{hub}")),
        api.portal.clone(),
        ids.clone(),
    );
    let before = CpuSnapshot::take(server.pid, watch_db);
    let run = closed_loop(
        "portal: create integration",
        plan.concurrency,
        plan.create,
        plan.cap,
        move |i| {
            let req = http
                .post(url.clone())
                .bearer_auth(&token)
                .json(&direct_body(&format!("bench agent {i}"), "Agent"));
            let ids = ids_in.clone();
            async move {
                let resp = req.send().await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let body: Value = resp.json().await.map_err(|e| e.to_string())?;
                if !status.is_success() {
                    return Err(format!("{status} {body}"));
                }
                let id = body["integrationId"]
                    .as_str()
                    .ok_or_else(|| format!("no integrationId in {body}"))?;
                if let Ok(mut ids) = ids.lock() {
                    ids.push(id.to_owned());
                }
                Ok(())
            }
        },
    )
    .await;
    phases.push(phase("create", run, &before, server.pid, watch_db));

    // 3. Get them back, round robin.
    let ids: Arc<Vec<String>> = Arc::new(ids.lock().map(|v| v.clone()).unwrap_or_default());
    if ids.is_empty() {
        return Err("no integration was created".to_owned());
    }
    let (http, base, token) = (
        api.http.clone(),
        api.url("/api/v1/integrations/"),
        api.portal.clone(),
    );
    let before = CpuSnapshot::take(server.pid, watch_db);
    let run = closed_loop(
        "portal: get integration",
        plan.concurrency,
        plan.get,
        plan.cap,
        move |i| {
            let id = &ids[(i % ids.len() as u64) as usize];
            let req = http.get(format!("{base}{id}")).bearer_auth(&token);
            async move { expect_ok(req.send().await).await }
        },
    )
    .await;
    phases.push(phase("get", run, &before, server.pid, watch_db));

    let rate = |name: &str| {
        phases
            .iter()
            .find(|p| p.name == name)
            .map(Phase::per_second)
            .unwrap_or(0.0)
    };
    let ceiling = rate("healthz");
    let ratio = |name: &str| {
        if ceiling > 0.0 {
            round3(rate(name) / ceiling)
        } else {
            0.0
        }
    };
    let summary = json!({
        "parameters": {
            "concurrency": plan.concurrency,
            "healthz_requests": plan.healthz,
            "create_requests": plan.create,
            "get_requests": plan.get,
            "cap_seconds_per_phase": plan.cap.as_secs(),
        },
        "get_to_healthz_ratio": ratio("get"),
        "create_to_healthz_ratio": ratio("create"),
    });
    Ok((phases, summary))
}

/// Turns a closed-loop run into a phase, with the CPU used since `before`.
pub fn phase(name: &str, run: Run, before: &CpuSnapshot, pid: u32, watch_db: Database) -> Phase {
    let after = CpuSnapshot::take(pid, watch_db);
    for e in &run.first_errors {
        eprintln!("  {name}: error: {e}");
    }
    Phase {
        name: name.to_owned(),
        unit: "request",
        count: run.ok,
        errors: run.errors,
        seconds: run.elapsed.as_secs_f64(),
        latency: Percentiles::of_micros(run.micros),
        cpu: before.used_until(&after),
        extra: serde_json::Map::new(),
    }
}

/// Ok when the request got a 2xx answer, whose body is read whole.
async fn expect_ok(resp: reqwest::Result<reqwest::Response>) -> std::result::Result<(), String> {
    let resp = resp.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{status} {}", String::from_utf8_lossy(&body)))
    }
}
