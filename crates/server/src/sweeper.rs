//! The sweeper: every interval, asks the engine to close the conversations that stayed idle for
//! their hub's `closeDormantConversation` days (reason `dormant`) and to forget idempotency keys
//! older than 24 hours and signatures past their window. Every node runs one; closing is
//! conditional on the conversation still being open and idle, so two nodes never close one
//! twice.

use std::time::Duration;

use switchboard_domain::time::now_millis;
use switchboard_engine::Engine;
use tokio::sync::watch;

/// Conversations closed per round at most (the next round takes the rest).
const BATCH: u64 = 500;

/// Runs until `stop` turns true.
pub async fn run(engine: Engine, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => sweep(&engine).await,
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

async fn sweep(engine: &Engine) {
    let now = now_millis();
    if let Err(e) = engine.close_dormant(now, BATCH).await {
        tracing::warn!(error = %e, "listing dormant conversations failed");
    }
    if let Err(e) = engine.forget_expired(now).await {
        tracing::warn!(error = %e, "forgetting expired idempotency keys failed");
    }
    // Integrations whose provisioning died half-way (SPEC 7.5.1).
    if let Err(e) = engine
        .store()
        .sweep_pending_integrations(now - PENDING_TTL_MS)
        .await
    {
        tracing::warn!(error = %e, "deleting stale pending integrations failed");
    }
}

/// A pending integration older than this was left by a process that died while provisioning.
const PENDING_TTL_MS: i64 = 10 * 60 * 1000;
