//! Provider deliveries (SPEC 7.4) and every HTTP call to a provider: the one client (rustls, the
//! webhook timeout, no private-address guard: provider hosts come from the operator), the
//! settings it is given ([`ProviderConfig`]), and the attempt of a claimed provider delivery:
//! render with the channel's adapter (`domain::channel::<provider>`), send the parts not yet
//! accepted, record each accepted part before the next, and settle like a webhook.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_domain::activity::{Activity, Payload, SenderRole};
use switchboard_domain::channel::adapter::{
    self, Adapter, HttpMethod, Outcome, ProviderAuth, ProviderRequest, ProviderResponse, Rendered,
    RequestBody, SendContext, Target,
};
use switchboard_domain::channel::{Channel, IntegrationType};
use switchboard_domain::integration::IntegrationStatus;
use switchboard_domain::time::now_millis;
use switchboard_domain::webhook::Schedule;
use switchboard_storage::{Attempt, Claimed, Settle, Store, HELD};

/// The most of a provider's answer that is read.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The provider settings of SPEC 7.2, as the server parsed them.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// Absolute base URL under which providers reach this server, without trailing slash.
    pub public_url: String,
    /// `SWITCHBOARD_PROVIDERS=live` (else offline: no provider call, deliveries held).
    pub live: bool,
    pub twilio_url: String,
    pub messenger_url: String,
    pub whatsapp_url: String,
    pub telegram_url: String,
    /// `SWITCHBOARD_MESSENGER_APP_SECRET`.
    pub messenger_app_secret: Option<String>,
    /// Per-attempt timeout (`SWITCHBOARD_WEBHOOK_TIMEOUT`).
    pub timeout: Duration,
    /// Refuse every host but loopback (tests: a missing base-URL override fails loudly
    /// instead of calling a real provider).
    pub loopback_only: bool,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".to_owned(),
            live: true,
            twilio_url: "https://api.twilio.com".to_owned(),
            messenger_url: DEFAULT_GRAPH_URL.to_owned(),
            whatsapp_url: DEFAULT_GRAPH_URL.to_owned(),
            telegram_url: "https://api.telegram.org".to_owned(),
            messenger_app_secret: None,
            timeout: Duration::from_secs(10),
            loopback_only: false,
        }
    }
}

/// Meta's Graph API with its version segment, for Messenger and WhatsApp. **[unconfirmed:
/// current version]** (SPEC 7.2).
pub const DEFAULT_GRAPH_URL: &str = "https://graph.facebook.com/v25.0";

impl ProviderConfig {
    /// The base URL of `channel`'s provider, without trailing slash.
    pub fn base_url(&self, channel: Channel) -> Option<&str> {
        let url = match channel {
            Channel::TwilioSms => &self.twilio_url,
            Channel::Messenger => &self.messenger_url,
            Channel::WhatsApp => &self.whatsapp_url,
            Channel::Telegram => &self.telegram_url,
            _ => return None,
        };
        Some(url.trim_end_matches('/'))
    }

    /// The URL a provider calls for `integration` of `channel`: `{PUBLIC_URL}/channels/{route}/{id}`.
    pub fn inbound_url(&self, channel: Channel, integration: impl std::fmt::Display) -> String {
        format!(
            "{}/channels/{}/{integration}",
            self.public_url.trim_end_matches('/'),
            route_name(channel)
        )
    }
}

/// The path segment of `channel`'s inbound route (`/channels/{segment}/{id}`).
pub fn route_name(channel: Channel) -> &'static str {
    match channel {
        Channel::TwilioSms => "twilio",
        Channel::Messenger => "messenger",
        Channel::WhatsApp => "whatsapp",
        Channel::Telegram => "telegram",
        Channel::Line => "line",
        Channel::Viber => "viber",
        Channel::WeChat => "wechat",
        Channel::Twitter => "twitter",
        Channel::Mailgun => "mailgun",
        Channel::MessageBird => "messagebird",
        Channel::Email => "email",
        Channel::Slack => "slack",
        _ => "unknown",
    }
}

/// A provider's answer.
#[derive(Clone, Debug)]
pub struct Answered {
    pub status: u16,
    /// `Retry-After`, as milliseconds from now.
    pub retry_after_ms: Option<i64>,
    pub body: Vec<u8>,
}

impl Answered {
    /// The adapter's view of it.
    pub fn response(&self) -> ProviderResponse<'_> {
        ProviderResponse {
            status: self.status,
            retry_after_ms: self.retry_after_ms,
            body: &self.body,
        }
    }
}

/// The one HTTP client of provider calls. Cheap to clone.
#[derive(Clone)]
pub struct ProviderClient {
    client: reqwest::Client,
    config: Arc<ProviderConfig>,
}

impl std::fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ProviderClient {
    /// The client for `config`; fails when the TLS backend cannot be set up.
    pub fn new(config: ProviderConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()?;
        Ok(Self {
            client,
            config: Arc::new(config),
        })
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// Sends `request` to `channel`'s provider and reads its answer, or says why no answer came
    /// (connection error, timeout): the reason, without secrets.
    pub async fn call(
        &self,
        channel: Channel,
        request: &ProviderRequest,
    ) -> Result<Answered, String> {
        let started = Instant::now();
        let result = async {
            let response = self.open(channel, request).await?;
            let status = response.status().as_u16();
            let retry_after_ms = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| switchboard_domain::webhook::parse_retry_after(v, now_millis()));
            let mut response = response;
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Answered {
                status,
                retry_after_ms,
                body,
            })
        }
        .await;
        metrics::histogram!(
            "switchboard_provider_request_seconds",
            "channel" => channel.name(),
            "operation" => request.operation
        )
        .record(started.elapsed().as_secs_f64());
        result
    }

    /// Sends `request` and answers the response as it arrives (media are streamed).
    pub async fn open(
        &self,
        channel: Channel,
        request: &ProviderRequest,
    ) -> Result<reqwest::Response, String> {
        let url = match &request.target {
            Target::Path(path) => {
                let base = self
                    .config
                    .base_url(channel)
                    .ok_or_else(|| format!("{channel} has no provider URL"))?;
                format!("{base}{path}")
            }
            Target::Absolute(url) => url.clone(),
        };
        let parsed =
            reqwest::Url::parse(&url).map_err(|_| "the provider URL is invalid".to_owned())?;
        if self.config.loopback_only && !is_loopback(&parsed) {
            return Err(format!(
                "provider host {} refused: only loopback hosts are allowed here",
                parsed.host_str().unwrap_or_default()
            ));
        }
        let method = match request.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.client.request(method, parsed);
        builder = match &request.auth {
            ProviderAuth::None => builder,
            ProviderAuth::Basic { user, password } => builder.basic_auth(user, Some(password)),
            ProviderAuth::Bearer(token) => builder.bearer_auth(token),
        };
        builder = match &request.body {
            RequestBody::None => builder,
            RequestBody::Json(value) => builder.json(value),
            RequestBody::Form(pairs) => builder.form(pairs),
        };
        builder.send().await.map_err(|e| describe(&e))
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Why a provider call got no answer, without the URL (it may hold a token).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else if e.is_body() || e.is_decode() {
        "the answer was cut short".to_owned()
    } else {
        "request failed".to_owned()
    }
}

/// One attempt of a claimed provider delivery, settled (SPEC 7.4).
pub(crate) async fn attempt(
    client: &ProviderClient,
    store: &Store,
    schedule: &Schedule,
    c: Claimed,
) {
    let started = Instant::now();
    let at = now_millis();
    let channel = c.integration.channel;
    let (status_code, error, settle) = send(client, store, schedule, &c, at).await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let outcome = match &settle {
        Settle::Succeeded => "succeeded",
        Settle::Retry { .. } => "retry",
        Settle::Failed { kind, .. } if kind == "provider_auth_failed" => "credentials",
        Settle::Failed { kind, .. } if kind == "exhausted" => "exhausted",
        Settle::Failed { .. } | Settle::Abandoned => "failed",
    };
    metrics::counter!(
        "switchboard_channel_outbound_total",
        "channel" => channel.name(),
        "outcome" => outcome
    )
    .increment(1);
    let settle = match settle {
        Settle::Retry { next_at } => Settle::Retry {
            next_at: next_at.max(at + duration_ms),
        },
        other => other,
    };
    let attempt = Attempt {
        at,
        status_code,
        error,
        duration_ms,
    };
    if let Err(e) = store
        .settle_delivery(c.delivery.id, &attempt, &settle)
        .await
    {
        tracing::warn!(delivery = %c.delivery.id, error = %e, "recording a provider attempt failed");
    }
}

/// Sends the parts not yet accepted: the last HTTP status, the error, and how it settles.
async fn send(
    client: &ProviderClient,
    store: &Store,
    schedule: &Schedule,
    c: &Claimed,
    at: i64,
) -> (Option<u16>, Option<String>, Settle) {
    let d = &c.delivery;
    let i = &c.integration;
    let failed = |kind: &str, reason: String| {
        let description = format!("Delivery {} to integration {} failed: {reason}", d.id, i.id);
        (
            None,
            Some(reason),
            Settle::Failed {
                kind: kind.to_owned(),
                description,
                pause_integration: false,
            },
        )
    };
    let Some(adapter) = adapter::adapter(i.channel) else {
        return failed("delivery_failed", format!("{} has no adapter", i.channel));
    };
    let Some(activity) = c
        .activities
        .first()
        .and_then(|a| serde_json::from_str::<Activity>(a).ok())
    else {
        return failed("delivery_failed", "the activity is unreadable".to_owned());
    };
    let fleeting = matches!(&activity.payload, Payload::Event(e) if adapter::is_fleeting(e));
    let retry = |attempts: usize, reason: String, wait: Option<i64>| {
        if fleeting {
            return (None, Some(reason), Settle::Abandoned);
        }
        let jitter = rand::random::<f64>() * 2.0 - 1.0;
        match schedule.next_delay(attempts, wait, jitter) {
            Some(delay) => (
                None,
                Some(reason),
                Settle::Retry {
                    next_at: at + delay,
                },
            ),
            None => {
                let description = format!(
                    "Delivery {} to integration {} failed after {} attempts: {reason}.",
                    d.id,
                    i.id,
                    d.attempt_count + 1
                );
                (
                    None,
                    Some(reason),
                    Settle::Failed {
                        kind: "exhausted".to_owned(),
                        description,
                        pause_integration: false,
                    },
                )
            }
        }
    };
    let made = usize::try_from(d.round_attempts).unwrap_or(0) + 1;
    if !client.config().live {
        // Offline: held again until a live start (SPEC 7.5.3).
        return (
            None,
            Some("providers offline".to_owned()),
            Settle::Retry { next_at: HELD },
        );
    }
    if i.status == IntegrationStatus::Paused {
        return retry(made, "the integration is paused".to_owned(), None);
    }
    let facts = c.conversation.clone().unwrap_or_default();
    let properties = serde_json::from_str(&c.properties).unwrap_or_default();
    let sender = match activity.sender.integration_type {
        IntegrationType::Bot => SenderRole::Bot,
        IntegrationType::Customer => SenderRole::Customer,
        _ => SenderRole::Agent,
    };
    let context = SendContext {
        configuration: &i.configuration,
        binding: &facts.binding,
        properties: &properties,
        now: now_millis(),
        sender,
        last_customer_activity: facts.last_customer_activity,
        last_customer_message: facts.last_customer_message,
        last_customer_external_id: facts.last_customer_external_id.as_deref(),
    };
    let parts = match adapter.render(&context, &activity.payload) {
        Rendered::Parts(parts) => parts,
        Rendered::Nothing => return (None, None, Settle::Succeeded),
        Rendered::Refused(reason) => {
            if fleeting {
                return (None, Some(reason), Settle::Abandoned);
            }
            return failed("delivery_failed", reason);
        }
    };
    let mut accepted = usize::try_from(d.parts_accepted).unwrap_or(0);
    let mut ids = d.provider_ids.clone();
    let mut last_status = None;
    for part in parts.iter().skip(accepted) {
        let answered = match client.call(i.channel, part).await {
            Ok(a) => a,
            Err(e) => {
                let (_, error, settle) = retry(
                    made,
                    format!("{} unreachable: {e}", adapter.provider()),
                    None,
                );
                return (last_status, error, settle);
            }
        };
        last_status = Some(answered.status);
        match adapter.outcome(&answered.response()) {
            Outcome::Accepted { id } => {
                accepted += 1;
                ids.extend(id);
                if let Err(e) = store
                    .record_parts(d.id, i32::try_from(accepted).unwrap_or(i32::MAX), &ids)
                    .await
                {
                    // The lease expires; the part may be sent again (at least once).
                    tracing::warn!(delivery = %d.id, error = %e, "recording an accepted part failed");
                }
            }
            Outcome::Retry { reason, wait_ms } => {
                let (_, error, settle) = retry(made, reason, wait_ms.or(answered.retry_after_ms));
                return (last_status, error, settle);
            }
            Outcome::Permanent { reason } => {
                if fleeting {
                    return (last_status, Some(reason), Settle::Abandoned);
                }
                let (_, error, settle) = failed("delivery_failed", reason);
                return (last_status, error, settle);
            }
            Outcome::Credentials { reason } => {
                if fleeting {
                    return (last_status, Some(reason), Settle::Abandoned);
                }
                let (_, error, settle) = failed("provider_auth_failed", reason);
                return (last_status, error, settle);
            }
        }
    }
    (last_status, None, Settle::Succeeded)
}

/// The adapter of `channel`, for callers outside this crate.
pub fn adapter_of(channel: Channel) -> Option<&'static dyn Adapter> {
    adapter::adapter(channel)
}

/// Provisioning (SPEC 7.5.1 steps 2 and 4, `live` mode only): what the server does with a
/// channel's provider around storing one of its integrations.
pub mod provisioning {
    use serde_json::{Map, Value};
    use switchboard_domain::channel::adapter::{self, ProvisionError};
    use switchboard_domain::channel::Channel;
    use switchboard_domain::channel_config::read_only_keys as read_only;

    use super::ProviderClient;

    /// Step 2: verifies the credentials and puts the read-only keys learned into
    /// `configuration` (a client's values for them are dropped). Nothing to do for a channel
    /// without an adapter or in offline mode (the read-only keys stay as given).
    pub async fn verify(
        client: &ProviderClient,
        channel: Channel,
        configuration: &mut Map<String, Value>,
    ) -> Result<(), ProvisionError> {
        let Some(adapter) = adapter::adapter(channel) else {
            return Ok(());
        };
        if !client.config().live {
            return Ok(());
        }
        let mut learned = Map::new();
        if let Some(request) = adapter.verify_credentials(configuration) {
            let answered = client.call(channel, &request).await.map_err(|e| {
                ProvisionError::Unreachable(format!("{} is unreachable: {e}", adapter.provider()))
            })?;
            learned = adapter.learn(configuration, &answered.response())?;
        }
        for key in read_only(channel) {
            configuration.remove(*key);
        }
        configuration.extend(learned);
        Ok(())
    }

    /// Step 4: registers Switchboard's URL for the integration where the channel says so.
    pub async fn register(
        client: &ProviderClient,
        channel: Channel,
        configuration: &Map<String, Value>,
        integration: impl std::fmt::Display,
    ) -> Result<(), ProvisionError> {
        let Some(adapter) = adapter::adapter(channel) else {
            return Ok(());
        };
        if !client.config().live {
            return Ok(());
        }
        let url = client.config().inbound_url(channel, integration);
        for request in adapter.register(configuration, &url) {
            let answered = client.call(channel, &request).await.map_err(|e| {
                ProvisionError::Unreachable(format!("{} is unreachable: {e}", adapter.provider()))
            })?;
            adapter.registered(&answered.response())?;
        }
        Ok(())
    }

    /// Best-effort deregistration after a delete (SPEC 7.5.2): failures are logged only.
    pub async fn deregister(
        client: &ProviderClient,
        channel: Channel,
        configuration: &Map<String, Value>,
    ) {
        let Some(adapter) = adapter::adapter(channel) else {
            return;
        };
        if !client.config().live {
            return;
        }
        if let Some(request) = adapter.deregister(configuration) {
            match client.call(channel, &request).await {
                Ok(a) if (200..300).contains(&a.status) => {}
                Ok(a) => {
                    tracing::info!(channel = %channel, status = a.status, "deregistration refused")
                }
                Err(e) => tracing::info!(channel = %channel, error = %e, "deregistration failed"),
            }
        }
    }
}
