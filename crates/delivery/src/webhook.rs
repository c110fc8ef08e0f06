//! The webhook worker (SPEC 5.5): claims due deliveries from the outbox, builds the Direct or
//! System body (with the one builder of `domain::webhook`), signs it (Standard Webhooks
//! headers, `v1a` Ed25519), POSTs it over pooled keep-alive connections with a timeout, and
//! records the attempt: succeeded, retried on the schedule (jitter, `Retry-After`), or failed
//! for good (schedule exhausted, or 410 Gone, which also pauses the integration) with a
//! notification for the tenant.
//!
//! Nothing is marked done that was not answered 2xx: a worker that stops (or dies) mid-attempt
//! leaves the delivery's lease to expire, and it is claimed again (at-least-once). Addresses
//! are checked after DNS, at connect time, against the private-address guard unless allowed;
//! a client that cannot be built with that guard is an error ([`WorkerError`]) that stops the
//! server's start, never a default client without it.
//!
//! The client ignores `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` (a proxy resolves names
//! itself, out of the guard's reach): only the operator's [`WebhookConfig::proxy`] is used, and
//! then IP literals are still checked. Every destination refused or not resolved reads the same
//! ([`REFUSED_DESTINATION`]), so that an attempt's error does not tell a tenant which internal
//! names exist.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_domain::activity::Activity;
use switchboard_domain::channel_config::{PRIVATE_SIGNING_KEY, PUBLIC_SIGNING_KEY, WEBHOOK_SECRET};
use switchboard_domain::ids::IntegrationId;
use switchboard_domain::integration::IntegrationStatus;
use switchboard_domain::smooch::webhook as smooch;
use switchboard_domain::smooch::{appuser, message};
use switchboard_domain::time::now_millis;
use switchboard_domain::webhook::{self, Schedule, Verdict};
use switchboard_storage::{Attempt, Claimed, Settle, Store};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

/// The most of a receiver's answer read (to keep the connection); the rest is dropped.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Free slots worth a claim of their own while attempts are in flight.
const CLAIM_BATCH: usize = 8;
/// The longest a claim waits for [`CLAIM_BATCH`] slots to free up.
const CLAIM_GATHER: Duration = Duration::from_millis(2);

/// How the worker runs.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub schedule: Schedule,
    /// Timeout of one attempt.
    pub timeout: Duration,
    /// Allow webhook URLs that resolve to private addresses.
    pub allow_private: bool,
    /// `x-source-system`.
    pub public_host: String,
    /// Attempts in flight at once, per node.
    pub concurrency: usize,
    /// How often the outbox is polled when nothing wakes the worker (deliveries of other
    /// nodes, retries coming due).
    pub poll_interval: Duration,
    /// Attempts in flight at once to one endpoint (integration), so that a slow or silent
    /// receiver cannot take every slot from the others.
    pub per_endpoint: usize,
    /// The proxy (URL) that every webhook goes through, set by the operator; none by default,
    /// and the environment's proxy variables are never used.
    pub proxy: Option<String>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            schedule: Schedule::default(),
            timeout: Duration::from_secs(10),
            allow_private: false,
            public_host: "switchboard".to_owned(),
            concurrency: 64,
            poll_interval: Duration::from_millis(500),
            per_endpoint: 16,
            proxy: None,
        }
    }
}

/// The one error of every destination refused by the guard or not resolved, whatever the
/// reason: a tenant cannot tell a name that resolves to a private address from one that does
/// not exist.
pub const REFUSED_DESTINATION: &str = "destination refused: the webhook URL's host does not resolve, or is a private or special-purpose address (allowed only with SWITCHBOARD_ALLOW_PRIVATE_WEBHOOKS=true)";

/// A destination refused or not resolved (see [`REFUSED_DESTINATION`]).
#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REFUSED_DESTINATION)
    }
}

impl std::error::Error for Refused {}

/// Resolves names for the webhook client, refusing private addresses unless allowed: the
/// check happens on the addresses actually connected to, so DNS cannot swap them afterwards.
/// The operator's proxy host (`trusted`) is resolved without the check.
struct GuardedResolver {
    allow_private: bool,
    trusted: Option<String>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private
            || self
                .trusted
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(name.as_str()));
        Box::pin(async move {
            let refused = || -> Box<dyn std::error::Error + Send + Sync> { Box::new(Refused) };
            let addrs = tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map_err(|_| refused())?;
            let allowed: Vec<SocketAddr> = addrs
                .filter(|a| allow || !webhook::is_forbidden_address(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(refused());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Attempts in flight per endpoint.
#[derive(Clone, Default)]
struct Endpoints(Arc<std::sync::Mutex<std::collections::HashMap<IntegrationId, usize>>>);

impl Endpoints {
    /// Takes a slot of `endpoint` if it has fewer than `max` in flight.
    fn take(&self, endpoint: IntegrationId, max: usize) -> bool {
        let Ok(mut map) = self.0.lock() else {
            return true;
        };
        let n = map.entry(endpoint).or_insert(0);
        if *n >= max.max(1) {
            return false;
        }
        *n += 1;
        true
    }

    /// The endpoints with `max` attempts in flight.
    fn saturated(&self, max: usize) -> Vec<IntegrationId> {
        self.0
            .lock()
            .map(|map| {
                map.iter()
                    .filter(|(_, n)| **n >= max.max(1))
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn give(&self, endpoint: IntegrationId) {
        if let Ok(mut map) = self.0.lock() {
            if let Some(n) = map.get_mut(&endpoint) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&endpoint);
                }
            }
        }
    }
}

/// Why a webhook worker could not be made.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The HTTP client (with its private-address resolver and no-redirect policy) could not be
    /// built, for example when the TLS backend fails to initialize.
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The webhook client's settings: timeouts, no redirects, pooled keep-alive connections, the
/// resolver that refuses private addresses unless allowed, and no proxy but the operator's.
fn client_builder(config: &WebhookConfig) -> Result<reqwest::ClientBuilder, WorkerError> {
    let builder = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(32)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .no_proxy();
    let Some(proxy) = config.proxy.as_deref() else {
        return Ok(builder.dns_resolver(Arc::new(GuardedResolver {
            allow_private: config.allow_private,
            trusted: None,
        })));
    };
    let trusted = reqwest::Url::parse(proxy)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    Ok(builder
        .proxy(reqwest::Proxy::all(proxy).map_err(WorkerError::Client)?)
        .dns_resolver(Arc::new(GuardedResolver {
            allow_private: config.allow_private,
            trusted,
        })))
}

/// Builds the client, or says why it cannot be: there is no fallback client.
fn finish(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, WorkerError> {
    builder.build().map_err(WorkerError::Client)
}

/// The webhook worker of one node.
#[derive(Clone)]
pub struct WebhookWorker {
    store: Store,
    config: Arc<WebhookConfig>,
    client: reqwest::Client,
    wake: Arc<Notify>,
    /// Provider deliveries (SPEC 7.4) go out through the same claim with this client.
    providers: crate::provider::ProviderClient,
}

impl WebhookWorker {
    /// A worker over `store`, woken early by `wake` (notified after a commit that queued
    /// deliveries).
    ///
    /// Fails when the HTTP client cannot be built: a worker must never run with a client that
    /// lacks the private-address guard or the no-redirect policy, so the server does not start.
    pub fn new(
        store: Store,
        config: WebhookConfig,
        wake: Arc<Notify>,
        providers: crate::provider::ProviderClient,
    ) -> Result<Self, WorkerError> {
        let client = finish(client_builder(&config)?)?;
        Ok(Self {
            store,
            config: Arc::new(config),
            client,
            wake,
            providers,
        })
    }

    /// How long a claim lasts: one attempt's timeout and a margin to record it.
    fn lease_ms(&self) -> i64 {
        i64::try_from(self.config.timeout.as_millis()).unwrap_or(i64::MAX / 4) + 5_000
    }

    /// Runs until `stop` turns true, then lets the attempts in flight finish (up to one
    /// timeout) and returns; an attempt cut short leaves its lease to expire.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let busy = Endpoints::default();
        let mut inflight: JoinSet<()> = JoinSet::new();
        loop {
            if *stop.borrow() {
                break;
            }
            while inflight.try_join_next().is_some() {}
            let free = permits.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = inflight.join_next() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            // A claim costs about the same for one delivery as for many: when attempts are in
            // flight and few slots are free, let a few more finish first (briefly, so a slow
            // endpoint holds up nothing).
            let worth = CLAIM_BATCH.min(self.config.concurrency.max(1));
            if free < worth && !inflight.is_empty() {
                let _ = tokio::time::timeout(CLAIM_GATHER, async {
                    while permits.available_permits() < worth {
                        if inflight.join_next().await.is_none() {
                            break;
                        }
                    }
                })
                .await;
            }
            let free = permits.available_permits();
            let saturated = busy.saturated(self.config.per_endpoint);
            let claimed = match self
                .store
                .claim_deliveries(now_millis(), self.lease_ms(), free as u64, &saturated)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming webhook deliveries failed");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            for c in claimed {
                let endpoint = c.integration.id;
                if !busy.take(endpoint, self.config.per_endpoint) {
                    // The next claim leaves this endpoint out until one of its attempts ends.
                    if let Err(e) = self.store.defer_delivery(c.delivery.id, now_millis()).await {
                        tracing::warn!(error = %e, "deferring a webhook delivery failed");
                    }
                    continue;
                }
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let worker = self.clone();
                let busy = busy.clone();
                inflight.spawn(async move {
                    worker.attempt(c).await;
                    busy.give(endpoint);
                    drop(permit);
                    // A slot is free: the next due delivery need not wait for the poll.
                    worker.wake.notify_one();
                });
            }
        }
        let grace = self.config.timeout + Duration::from_secs(1);
        let _ = tokio::time::timeout(grace, async {
            while inflight.join_next().await.is_some() {}
        })
        .await;
        inflight.abort_all();
    }

    /// One attempt of a claimed delivery, recorded.
    async fn attempt(&self, c: Claimed) {
        if c.delivery.kind == webhook::DeliveryKind::Provider {
            return crate::provider::attempt(
                &self.providers,
                &self.store,
                &self.config.schedule,
                c,
            )
            .await;
        }
        let started = Instant::now();
        let at = now_millis();
        let result = self.post(&c).await;
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (status_code, error, retry_after) = match result {
            Ok((status, retry_after)) => (Some(status), None, retry_after),
            Err(e) => (None, Some(e), None),
        };
        let verdict = status_code.map(webhook::verdict).unwrap_or(Verdict::Retry);
        let made = usize::try_from(c.delivery.round_attempts).unwrap_or(0) + 1;
        let settle = match verdict {
            Verdict::Delivered => Settle::Succeeded,
            Verdict::Gone => Settle::Failed {
                kind: "gone".to_owned(),
                description: format!(
                    "The webhook of integration {} answered 410 Gone to delivery {}: it is paused.",
                    c.integration.id, c.delivery.id
                ),
                pause_integration: true,
            },
            Verdict::Retry => {
                let jitter = rand::random::<f64>() * 2.0 - 1.0;
                match self.config.schedule.next_delay(made, retry_after, jitter) {
                    Some(delay) => Settle::Retry {
                        next_at: at + duration_ms + delay,
                    },
                    None => Settle::Failed {
                        kind: "exhausted".to_owned(),
                        description: format!(
                            "Delivery {} to integration {} failed after {} attempts: {}.",
                            c.delivery.id,
                            c.integration.id,
                            c.delivery.attempt_count + 1,
                            error.clone().unwrap_or_else(|| format!(
                                "HTTP {}",
                                status_code.unwrap_or_default()
                            ))
                        ),
                        pause_integration: false,
                    },
                }
            }
        };
        let outcome = match &settle {
            Settle::Succeeded => "succeeded",
            Settle::Retry { .. } => "retry",
            Settle::Failed { .. } | Settle::Abandoned => "failed",
        };
        metrics::counter!("switchboard_webhook_attempts_total", "outcome" => outcome).increment(1);
        let attempt = Attempt {
            at,
            status_code,
            error,
            duration_ms,
        };
        if let Err(e) = self
            .store
            .settle_delivery(c.delivery.id, &attempt, &settle)
            .await
        {
            // The lease expires and the delivery is attempted again.
            tracing::warn!(delivery = %c.delivery.id, error = %e, "recording a webhook attempt failed");
        }
    }

    /// Sends the delivery; the status and `Retry-After` (ms), or why it could not be sent.
    async fn post(&self, c: &Claimed) -> Result<(u16, Option<i64>), String> {
        let i = &c.integration;
        if i.status == IntegrationStatus::Paused {
            return Err("the integration is paused".to_owned());
        }
        let url = i
            .configuration
            .get("webhookUrl")
            .and_then(|v| v.as_str())
            .filter(|u| !u.is_empty())
            .ok_or("the integration has no webhookUrl")?;
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("webhookUrl: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("webhookUrl is not http(s)".to_owned());
        }
        // An IP literal is never resolved: check it here.
        if !self.config.allow_private {
            let literal = match parsed.host() {
                Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
                Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
                _ => None,
            };
            if literal.is_some_and(webhook::is_forbidden_address) {
                return Err(REFUSED_DESTINATION.to_owned());
            }
        }
        let smooch = smooch::is_smooch(&i.configuration);
        let body = if smooch {
            smooch_body(&self.store, c).await?
        } else {
            body(c)
        };
        let ts = now_millis() / 1000;
        let private = i
            .configuration
            .get(PRIVATE_SIGNING_KEY)
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let public = i
            .configuration
            .get(PUBLIC_SIGNING_KEY)
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let signature = webhook::signature(private, &c.delivery.webhook_id, ts, body.as_bytes())
            .ok_or("the integration has no valid signing key")?;
        let mut request = self.client.post(parsed);
        if smooch {
            // What Smooch receivers check (SPEC 8.7); it neither covers the body nor stops
            // replays, which the signature below does.
            let secret = i
                .configuration
                .get(WEBHOOK_SECRET)
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            request = request.header("x-api-key", secret);
        }
        let response = request
            .header("content-type", "application/json")
            .header("webhook-id", &c.delivery.webhook_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .header("x-hub-id", c.delivery.hub_id.to_string())
            .header("x-integration-id", i.id.to_string())
            .header("x-conversation-id", c.delivery.conversation_id.to_string())
            .header("x-public-key", public)
            .header("x-source-system", &self.config.public_host)
            .body(body)
            .send()
            .await
            .map_err(describe)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| webhook::parse_retry_after(v, now_millis()));
        // Read a little of the answer so the connection can be reused; a huge one is cut.
        let mut response = response;
        let mut read = 0usize;
        while read < MAX_ANSWER_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        Ok((status, retry_after))
    }
}

/// Why a request failed, without the URL's secrets; a refused or unresolved destination is
/// [`REFUSED_DESTINATION`] alone.
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    let mut detail = String::new();
    while let Some(s) = source {
        if s.is::<Refused>() {
            return REFUSED_DESTINATION.to_owned();
        }
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// The delivery's body (SPEC 5.5), built by the one builder of `domain::webhook` from the
/// stored JSON of its properties and copies.
fn body(c: &Claimed) -> String {
    let d = &c.delivery;
    let head = webhook::BodyHead {
        hub_id: d.hub_id,
        tenant_id: d.tenant_id,
        integration_id: d.integration_id,
        conversation_id: d.conversation_id,
    };
    webhook::body(d.kind, &head, &c.properties, &c.activities)
}

/// The body of a smooch-format System delivery (SPEC 8.7): its one activity as the trigger it
/// fires, for the app user of the conversation's customer (made on first need). An activity
/// that fires none of the webhook's triggers now (they changed since it was queued) is sent
/// for the trigger it fires; one that fires none at all cannot be sent.
async fn smooch_body(store: &Store, c: &Claimed) -> Result<String, String> {
    let d = &c.delivery;
    let text = c.activities.first().ok_or("the delivery has no activity")?;
    let activity: Activity =
        serde_json::from_str(text).map_err(|e| format!("unreadable activity: {e}"))?;
    let triggers = smooch::configured_triggers(&c.integration.configuration).unwrap_or_default();
    let trigger = smooch::matching(&triggers, activity.event_trigger, &activity.payload)
        .or_else(|| smooch::fired(activity.event_trigger, &activity.payload))
        .ok_or("the activity fires no webhook trigger")?;
    let unavailable = |e: switchboard_storage::Error| format!("reading the app user failed: {e}");
    let facts = store
        .smooch_facts(d.conversation_id, activity.sender.integration_id)
        .await
        .map_err(unavailable)?
        .ok_or("the conversation is gone")?;
    let user = store
        .ensure_app_user(
            d.tenant_id,
            d.hub_id,
            facts.customer_integration,
            &facts.binding,
            facts.opened,
        )
        .await
        .map_err(unavailable)?;
    let full = appuser::app_user_json(
        &user,
        &appuser::AppUserView {
            platform: message::smooch_type(facts.customer_channel),
            conversation_started: true,
            last_activity: Some(facts.last_activity.max(activity.event_id)),
        },
    );
    let flag = |key: &str| {
        c.integration
            .configuration
            .get(key)
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    };
    let author_name = match message::Role::of(activity.sender.integration_type) {
        message::Role::AppUser => user.display_name().or(facts.full_name),
        message::Role::AppMaker => facts.sender_name,
    };
    let body_facts = smooch::BodyFacts {
        hub_id: d.hub_id,
        conversation_id: d.conversation_id,
        app_user_id: user.id.to_string(),
        user_id: user.user_id.clone(),
        client: flag(smooch::INCLUDE_CLIENT).then(|| full["clients"][0].clone()),
        full_app_user: flag(smooch::INCLUDE_FULL_APP_USER).then_some(full),
        author_name,
    };
    Ok(smooch::body(trigger, &activity, &body_facts).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_builds_with_the_default_settings() {
        assert!(finish(client_builder(&WebhookConfig::default()).unwrap()).is_ok());
    }

    #[test]
    fn a_client_that_cannot_be_built_is_an_error_not_a_default_client() {
        // An invalid header value is one way to make the builder fail at `build`.
        let broken = client_builder(&WebhookConfig::default())
            .unwrap()
            .user_agent("bad\nagent");
        let err = finish(broken).expect_err("a broken builder must not yield a client");
        assert!(
            err.to_string()
                .starts_with("cannot build the webhook HTTP client"),
            "{err}"
        );
    }
}
