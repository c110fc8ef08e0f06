//! Scenario `recovery`: the `webhook` set-up under a crash. Activities are posted at a steady
//! rate to a slow receiver (it holds each request for [`HOLD`]), so the server's deliveries fall
//! behind and queue in its outbox. Once at least `Plan::backlog` due deliveries are queued and
//! attempts are in flight, the server is killed with SIGKILL and started again on the same
//! database and port (the receiver's URLs and the tokens hold), the receiver answers at once
//! from then on, and posting goes on. Then every accepted activity must reach both of its
//! endpoints (SPEC 5.5: at-least-once across a crash). How many were queued at the kill is
//! reported; a kill without that backlog is an error of the run, not "0 lost".
//!
//! A post that gets no answer (the server was down, or died during it) is sent again with the
//! same body and `Idempotency-Key`, so it makes one activity whether or not the first try was
//! stored. Counted: activities accepted, deliveries received, lost (the run fails unless 0),
//! re-sends of a `webhook-id` (allowed: an attempt the crash cut short is made again) apart from
//! true duplicates (one activity under two `webhook-id`s at one endpoint: a bug).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server::{spread, Server};
use crate::stats::{round1, Percentiles, Phase};
use crate::webhook::{
    activity, check_all, delivered, due, post, report, wait_for, Ledger, Posted, Posts, Receiver,
    Setup, KINDS, RETRY_SCHEDULE, WEBHOOK_TIMEOUT,
};
use crate::Result;

/// The size of the scenario.
#[derive(Clone, Debug)]
pub struct Plan {
    pub hubs: usize,
    pub conversations_per_hub: usize,
    pub activities: u64,
    /// The rate posts are started at (activities/s), so that posting goes on across the kill.
    pub rate: u64,
    /// Concurrent posters (the most posts in flight).
    pub concurrency: usize,
    /// The kill waits for at least this many due deliveries not yet arrived (queued).
    pub backlog: u64,
    /// The whole run, from the first post to the last delivery.
    pub cap: Duration,
}

/// The one phase.
const PHASE: u64 = 1;

/// How long the receiver holds each request before answering, until the kill: a slow receiver,
/// so that the server's attempts (64 in flight at most) fall behind the posts and a backlog
/// builds up in its outbox, with attempts always in flight for the kill to cut short (they are
/// sent again). Under the attempt timeout ([`WEBHOOK_TIMEOUT`]). After the kill it answers at
/// once, and the backlog drains.
const HOLD: Duration = Duration::from_millis(1000);

/// What the posters did.
#[derive(Default)]
struct Posting {
    /// Tries that got no answer (each is tried again).
    unanswered: AtomicU64,
    /// Activities given up: an answer other than 200 and 5xx, or no 200 within the cap.
    refused: AtomicU64,
    first_refusals: Mutex<Vec<String>>,
    /// Posts answered 200.
    done: AtomicU64,
}

pub async fn run(server: &mut Server, plan: &Plan) -> Result<(Vec<Phase>, Value)> {
    let receiver = Receiver::start(HOLD).await?;
    let setup = Arc::new(
        Setup::create(
            &server.api,
            &receiver,
            "recovery",
            plan.hubs,
            plan.conversations_per_hub,
        )
        .await?,
    );
    let inbox = receiver.inbox.clone();
    inbox.count(PHASE, plan.activities);
    let posts = Posts::new(plan.activities);
    let posting = Arc::new(Posting::default());
    let before = server.cpu();
    let start = Instant::now();
    let deadline = start + plan.cap;
    let start_us = inbox.now_us();

    // The posters: each takes the next activity and posts it until it is accepted.
    let next = Arc::new(AtomicU64::new(0));
    let mut posters = Vec::new();
    let bases = server.bases();
    for _ in 0..plan.concurrency {
        let (http, token) = (server.api.http.clone(), server.api.engine.clone());
        let bases = bases.clone();
        let (setup, posts, posting, inbox, next) = (
            setup.clone(),
            posts.clone(),
            posting.clone(),
            inbox.clone(),
            next.clone(),
        );
        let (count, rate) = (plan.activities, plan.rate.max(1));
        posters.push(tokio::spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= count {
                    break;
                }
                let due = start + Duration::from_secs_f64(seq as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
                let url = &setup.conversation(seq).url;
                let every = setup.conversations.len();
                let mut tries = 0;
                let key = format!("bench-recovery-{seq}");
                let sent = inbox.now_us();
                let body = activity(PHASE, seq, sent);
                loop {
                    if Instant::now() > deadline {
                        posting.refused.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    // A try that got no answer goes to the next node (on several), as a
                    // load balancer's retry would.
                    let url = spread(&bases, seq + tries, every, url);
                    tries += 1;
                    match post(&http, &url, &token, body.clone(), Some(&key)).await {
                        Posted::Accepted => {
                            posts.accept(seq, sent, inbox.now_us());
                            posting.done.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Posted::Refused(status, e) if status < 500 => {
                            posting.refused.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut r) = posting.first_refusals.lock() {
                                if r.len() < 3 {
                                    r.push(e);
                                }
                            }
                            break;
                        }
                        Posted::Refused(..) | Posted::Unanswered(_) => {
                            posting.unanswered.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        }));
    }

    // The kill, once a backlog is queued and attempts are in flight (or when posting is over,
    // whichever is first): a kill with nothing queued would show re-sends after a crash, not an
    // outbox surviving one.
    let posted = |p: &Posting| {
        p.done.load(Ordering::Relaxed) + p.refused.load(Ordering::Relaxed) >= plan.activities
    };
    while Instant::now() < deadline && !posted(&posting) {
        let queued = (posting.done.load(Ordering::Relaxed) * KINDS.len() as u64)
            .saturating_sub(inbox.delivered.load(Ordering::Relaxed));
        if backlog_there(queued, inbox.holding.load(Ordering::Relaxed), plan.backlog) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The server's own count of its queue, just before the kill.
    let pending_at_kill = server
        .api
        .get(
            "/api/v1/deliveries?status=pending&pageSize=1",
            &server.api.portal,
        )
        .await
        .map(|page| page["total"].clone())
        .unwrap_or(Value::Null);
    let at_kill = server.cpu();
    server.kill().await?;
    let killed_us = inbox.now_us();
    let delivered_at_kill = inbox.delivered.load(Ordering::Relaxed);
    let held_at_kill = inbox.holding.load(Ordering::Relaxed);
    let accepted_at_kill = posts.accepted().len() as u64;
    let undelivered_at_kill =
        (accepted_at_kill * KINDS.len() as u64).saturating_sub(delivered_at_kill);
    let backlog_met = backlog_there(undelivered_at_kill, held_at_kill, plan.backlog);
    // The receiver answers at once from now on, so that the backlog drains.
    receiver.hold(Duration::ZERO);
    eprintln!(
        "  recovery: SIGKILL with {accepted_at_kill} activities accepted, {delivered_at_kill} of their {} deliveries arrived, {undelivered_at_kill} queued (the server said {pending_at_kill} pending), {held_at_kill} attempts held by the receiver",
        accepted_at_kill * KINDS.len() as u64
    );
    if !backlog_met {
        eprintln!(
            "  recovery: no backlog at the kill: {undelivered_at_kill} deliveries queued (at least {} needed) and {held_at_kill} attempts in flight (at least 1 needed); what follows shows re-sends, not a queue surviving a crash",
            plan.backlog
        );
    }
    let restart = server.restart().await?;
    let after_restart = server.cpu();
    let restarted_us = inbox.now_us();

    for p in posters {
        if let Err(e) = p.await {
            return Err(format!("a poster failed: {e}"));
        }
    }
    let accepted = posts.accepted();
    wait_for(
        &inbox,
        accepted.len() as u64 * KINDS.len() as u64,
        deadline,
        None,
        "recovery: deliveries",
    )
    .await;
    let after = server.cpu();
    // What the server's outbox says at the end (asked only when something is missing, as a
    // delivery still pending is late rather than gone).
    let outbox = if (inbox.delivered.load(Ordering::Relaxed) as usize)
        < posts.accepted().len() * KINDS.len()
    {
        let mut outbox = serde_json::Map::new();
        for status in ["pending", "failed"] {
            let page = server
                .api
                .get(
                    &format!("/api/v1/deliveries?status={status}&pageSize=1"),
                    &server.api.portal,
                )
                .await?;
            outbox.insert(format!("{status}_at_end"), page["total"].clone());
        }
        outbox
    } else {
        serde_json::Map::new()
    };

    let (checked, failures) = check_all(inbox.take(), &setup, &inbox).await;
    let mut ledger = Ledger::default();
    for c in &checked {
        ledger.add(c);
    }
    let d = delivered(&ledger, PHASE, &due(&setup, &accepted));
    let delivered_after_kill = d.count.saturating_sub(delivered_at_kill);
    let refused = posting.refused.load(Ordering::Relaxed);
    if let Ok(r) = posting.first_refusals.lock() {
        for e in r.iter() {
            eprintln!("  recovery: post refused: {e}");
        }
    }

    let mut extra = serde_json::Map::new();
    report(
        &mut extra,
        accepted.len() as u64,
        &d,
        ledger.counts(),
        &failures,
        &ledger.problems,
        "lost",
    );
    extra.extend(outbox);
    extra.insert(
        "post_retries".into(),
        json!(posting.unanswered.load(Ordering::Relaxed)),
    );
    extra.insert("posts_given_up".into(), json!(refused));
    extra.insert("accepted_at_kill".into(), json!(accepted_at_kill));
    extra.insert("delivered_at_kill".into(), json!(delivered_at_kill));
    extra.insert("held_at_kill".into(), json!(held_at_kill));
    extra.insert("undelivered_at_kill".into(), json!(undelivered_at_kill));
    extra.insert("pending_at_kill".into(), pending_at_kill);
    extra.insert("backlog_required_at_kill".into(), json!(plan.backlog));
    extra.insert("backlog_at_kill_met".into(), json!(backlog_met));
    extra.insert("delivered_after_kill".into(), json!(delivered_after_kill));
    extra.insert(
        "restart_ms".into(),
        json!(round1(restart.as_secs_f64() * 1000.0)),
    );
    extra.insert(
        "down_ms".into(),
        json!(round1(
            restarted_us.saturating_sub(killed_us) as f64 / 1000.0
        )),
    );
    let last = d.last_us.unwrap_or_else(|| inbox.now_us());
    extra.insert(
        "last_delivery_after_restart_ms".into(),
        json!(round1(last.saturating_sub(restarted_us) as f64 / 1000.0)),
    );
    // Two processes: the killed one up to the kill, the new one from its start.
    let cpu = before
        .used_until(&at_kill)
        .plus(after_restart.used_until(&after));
    let seconds = last.saturating_sub(start_us) as f64 / 1e6;
    let lost = d.missing.len() as u64;
    if lost > 0 {
        eprintln!(
            "  recovery: {lost} of {} due deliveries did not arrive within the cap ({} s); the server then had {} pending and {} failed",
            accepted.len() * KINDS.len(),
            plan.cap.as_secs(),
            extra["pending_at_end"],
            extra["failed_at_end"],
        );
    }
    let phase = Phase {
        name: "crash".to_owned(),
        unit: "delivery",
        count: d.count,
        errors: lost + failures.len() as u64 + ledger.faults() + refused + u64::from(!backlog_met),
        seconds,
        latency: Percentiles::of_micros(d.from_accepted_us.clone()),
        cpu,
        extra,
    };
    if accepted.is_empty() {
        return Err("recovery: no activity was accepted".to_owned());
    }
    let summary = json!({
        "parameters": {
            "hubs": plan.hubs,
            "nodes": server.nodes(),
            "endpoints": plan.hubs * KINDS.len(),
            "conversations": setup.conversations.len(),
            "activities": plan.activities,
            "rate": plan.rate,
            "concurrency": plan.concurrency,
            "backlog_at_kill": plan.backlog,
            "cap_seconds": plan.cap.as_secs(),
            "retry_schedule": RETRY_SCHEDULE,
            "webhook_timeout": WEBHOOK_TIMEOUT,
            "restart": "same database and port, after SIGKILL",
            "receiver_hold_until_kill_ms": HOLD.as_millis() as u64,
        },
        "lost": lost,
    });
    Ok((vec![phase], summary))
}

/// Whether the kill has what it is meant to test: at least `required` due deliveries not yet
/// arrived (queued in the server's outbox) and some attempts in flight (held by the receiver).
fn backlog_there(queued: u64, held: u64, required: u64) -> bool {
    queued >= required.max(1) && held > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kill_needs_a_backlog_and_attempts_in_flight() {
        assert!(backlog_there(2000, 5, 2000));
        assert!(!backlog_there(1999, 5, 2000));
        assert!(!backlog_there(5000, 0, 2000));
        // Even with nothing asked for, an empty queue is no backlog.
        assert!(!backlog_there(0, 5, 0));
    }
}
