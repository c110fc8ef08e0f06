//! The sweeper: every interval, closes the conversations that stayed idle for their hub's
//! `closeDormantConversation` days (reason `dormant`), and forgets idempotency keys older than
//! 24 hours and signatures past their window. Every node runs one; closing is conditional on
//! the conversation still being open and idle, so two nodes never close one twice.

use std::time::Duration;

use switchboard_api::engine;
use switchboard_api::AppState;
use switchboard_domain::activity::ConversationReason;
use switchboard_domain::conversation::dormant_before;
use switchboard_domain::time::now_millis;
use tokio::sync::watch;

/// Conversations closed per round at most (the next round takes the rest).
const BATCH: u64 = 500;

/// Runs until `stop` turns true.
pub async fn run(state: AppState, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => sweep(&state).await,
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

async fn sweep(state: &AppState) {
    let now = now_millis();
    match state.store.dormant_conversations(now, BATCH).await {
        Ok(list) => {
            for c in list {
                let Some(hub) = state
                    .store
                    .find_hub(c.tenant_id, c.hub_id)
                    .await
                    .ok()
                    .flatten()
                else {
                    continue;
                };
                let Some(idle_since) = dormant_before(hub.close_dormant_conversation, now) else {
                    continue;
                };
                if let Err(e) = engine::close(
                    state,
                    c.tenant_id,
                    c.id,
                    ConversationReason::Dormant,
                    Some(idle_since),
                )
                .await
                {
                    tracing::warn!(conversation = %c.id, error = ?e, "closing a dormant conversation failed");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "listing dormant conversations failed"),
    }
    if let Err(e) = state.store.sweep_expired(now).await {
        tracing::warn!(error = %e, "forgetting expired idempotency keys failed");
    }
}
