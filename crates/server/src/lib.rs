//! The `switchboard` binary's library: configuration, wiring of the crates, the HTTP server with
//! its metrics and request logs, graceful shutdown. Tests start [`run`] on an ephemeral port with
//! the production wiring.

mod acceptor;
pub mod config;
pub mod sweeper;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use poem::EndpointExt;
use switchboard_api::rate_limit::{Limits, RedisBuckets};
use switchboard_api::{ApiConfig, AppState};
use switchboard_delivery::bus::{Bus, MemoryBus, RedisBus};
use switchboard_delivery::live::{LiveRegistry, QueueLimits};
use switchboard_delivery::provider::ProviderConfig;
use switchboard_delivery::webhook::{WebhookConfig, WebhookWorker};
use switchboard_domain::time::now_millis;
use switchboard_domain::webhook::Schedule;
use switchboard_engine::Engine;
use switchboard_storage::{EncryptionKey, NewTenant, Store};
use tokio::sync::watch;

pub use config::{Cli, Command, DbArgs, ServeArgs, TenantCommand};

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Storage(#[from] switchboard_storage::Error),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    #[error("webhook worker: {0}")]
    Webhook(#[from] switchboard_delivery::WorkerError),
}

/// What `run` needs, already parsed.
#[derive(Clone, Debug)]
pub struct Settings {
    pub serve: ServeArgs,
    pub database_url: String,
    pub encryption_key: EncryptionKeyDebug,
    /// Print the `default` tenant's credentials on stdout when the database has no tenant.
    pub create_default_tenant: bool,
}

/// The encryption key, never printed.
#[derive(Clone)]
pub struct EncryptionKeyDebug(pub [u8; 32]);

impl std::fmt::Debug for EncryptionKeyDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey(…)")
    }
}

impl Settings {
    /// From the parsed `serve` arguments.
    pub fn from_args(serve: ServeArgs) -> Result<Self, Error> {
        let key = serve.db.encryption_key().map_err(Error::Config)?;
        Ok(Self {
            database_url: serve.db.url(),
            encryption_key: EncryptionKeyDebug(key.0),
            serve,
            create_default_tenant: true,
        })
    }
}

/// Connects to the database and applies the migrations.
pub async fn open_store(url: &str, key: EncryptionKey) -> Result<Store, Error> {
    let store = Store::connect(url, key).await?;
    store.migrate().await?;
    Ok(store)
}

/// The JSON object printed for a new tenant (SPEC 2).
pub fn tenant_json(t: &NewTenant) -> serde_json::Value {
    serde_json::json!({
        "tenantId": t.tenant_id,
        "portal": { "clientId": t.portal.client_id, "clientSecret": t.portal.client_secret },
        "engine": { "clientId": t.engine.client_id, "clientSecret": t.engine.client_secret },
    })
}

/// Serves until `shutdown` completes, then drains: stops accepting, lets in-flight requests
/// finish (up to 10 s), and returns.
pub async fn run(
    settings: Settings,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    listener.set_nonblocking(true)?;
    let store = open_store(
        &settings.database_url,
        EncryptionKey(settings.encryption_key.0),
    )
    .await?;
    if settings.create_default_tenant && store.count_tenants().await? == 0 {
        match store.create_tenant("default").await {
            // One line on stdout, once: the credentials of the first tenant.
            Ok(t) => println!("{}", tenant_json(&t)),
            // Another node created it at the same moment.
            Err(switchboard_storage::Error::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let seed = store.token_signing_seed().await?;
    let serve = &settings.serve;
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let schedule =
        Schedule::new(serve.retry_schedule.0.iter().map(|d| millis(*d))).unwrap_or_default();
    let live_providers = serve.providers == config::ProvidersMode::Live;
    let store = store
        .with_first_delivery_delay(schedule.first_delay())
        .with_providers_offline(!live_providers);
    if live_providers {
        // Provider deliveries written while providers were offline are due now (SPEC 7.5.3).
        let released = store.release_held_deliveries(now_millis()).await?;
        if released > 0 {
            tracing::info!(released, "provider deliveries held while offline are due");
        }
    }
    if !store.is_postgres() {
        // One node on SQLite: a lease left by a previous run is no one's.
        store.release_leases().await?;
    }
    let api_config = ApiConfig {
        token_ttl_secs: serve.token_ttl,
        slack_api_url: serve.slack_api_url.clone(),
        slack_client_id: serve.slack_client_id.clone(),
        slack_client_secret: serve.slack_client_secret.clone(),
        ws_ping_interval: serve.ws_ping_interval.max(MIN_INTERVAL),
        rate_limits: Limits {
            portal: serve.rate_limit_portal,
            engine: serve.rate_limit_engine,
            frames: serve.rate_limit_ws_frames,
            token: serve.rate_limit_token,
            public: serve.rate_limit_public,
            channel: serve.rate_limit_channel,
            webchat_client: serve.rate_limit_webchat_client,
            webchat_ip: serve.rate_limit_webchat_ip,
        },
        client_ip_header: serve.client_ip_header.clone(),
        providers: provider_config(serve, listener.local_addr().ok()),
        smooch_token_max_age: serve.smooch_token_max_age,
    };
    let live = LiveRegistry::new(QueueLimits {
        max_frames: usize::try_from(serve.ws_queue).unwrap_or(usize::MAX),
        max_bytes: usize::try_from(serve.ws_queue_bytes).unwrap_or(usize::MAX),
    });
    let bus: Arc<dyn Bus> = match &serve.redis_url {
        Some(url) if !url.is_empty() => Arc::new(
            RedisBus::connect(url, live.clone())
                .await
                .map_err(|e| Error::Config(format!("REDIS_URL: {e}")))?,
        ),
        _ => Arc::new(MemoryBus::new(live.clone())),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let engine = Engine::new(store, bus);
    let state = AppState::new(engine.clone(), seed, api_config, live, stop_rx.clone())
        .map_err(|e| Error::Config(format!("the HTTP client for outgoing API calls: {e}")))?;
    if let Some(url) = serve.redis_url.as_deref().filter(|u| !u.is_empty()) {
        let shared = RedisBuckets::connect(url)
            .await
            .map_err(|e| Error::Config(format!("REDIS_URL (rate limits): {e}")))?;
        state.limiter.share(shared);
    }
    let worker = WebhookWorker::new(
        engine.store().clone(),
        WebhookConfig {
            schedule,
            timeout: serve.webhook_timeout.max(MIN_INTERVAL),
            allow_private: serve.allow_private_webhooks,
            public_host: serve.public_host.clone(),
            proxy: serve.webhook_proxy.clone(),
            ..WebhookConfig::default()
        },
        engine.deliveries_due(),
        state.providers.clone(),
    )?;
    let worker = tokio::spawn(worker.run(stop_rx.clone()));
    let sweeper = tokio::spawn(sweeper::run(
        engine,
        serve.sweep_interval.max(MIN_INTERVAL),
        stop_rx,
    ));
    let render = telemetry::metrics_renderer();
    let live = state.live.clone();
    let open = acceptor::OpenConnections::default();
    let open_gauge = open.clone();
    let metrics = switchboard_api::MetricsRenderer(Arc::new(move || {
        live.export_gauges();
        metrics::gauge!("switchboard_connections_open").set(open_gauge.get() as f64);
        (render.0)()
    }));
    let app = switchboard_api::app(state.clone(), metrics).with(telemetry::RequestMetrics);

    let listener = tokio::net::TcpListener::from_std(listener)?;
    tracing::info!(addr = ?listener.local_addr().ok(), "switchboard listening");
    let limits = acceptor::Limits {
        header_timeout: serve.header_timeout.max(MIN_INTERVAL),
        body_timeout: serve.body_timeout.max(MIN_INTERVAL),
        idle_timeout: serve.idle_timeout.max(MIN_INTERVAL),
        max_connections: usize::try_from(serve.max_connections).unwrap_or(usize::MAX),
    };
    // On shutdown, websocket sessions are told first (they close with 1001), then the server
    // stops accepting and drains the requests in flight.
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    acceptor::serve(
        listener,
        app,
        limits,
        open,
        shutdown,
        Duration::from_secs(10),
    )
    .await;
    let _ = sweeper.await;
    // In-flight webhook attempts finish (or are left claimable); nothing unanswered is done.
    let _ = worker.await;
    tracing::info!("switchboard stopped");
    Ok(())
}

/// The provider settings of SPEC 7.2.
fn provider_config(serve: &ServeArgs, bound: Option<std::net::SocketAddr>) -> ProviderConfig {
    ProviderConfig {
        // Default: the address this node listens on (`SWITCHBOARD_BIND`).
        public_url: serve
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", bound.unwrap_or(serve.bind))),
        live: serve.providers == config::ProvidersMode::Live,
        twilio_url: serve.provider_twilio_url.clone(),
        messenger_url: serve.provider_messenger_url.clone(),
        whatsapp_url: serve.provider_whatsapp_url.clone(),
        telegram_url: serve.provider_telegram_url.clone(),
        messenger_app_secret: serve.messenger_app_secret.clone().filter(|s| !s.is_empty()),
        timeout: serve.webhook_timeout.max(MIN_INTERVAL),
        loopback_only: serve.providers_loopback_only,
    }
}

/// The shortest ping or sweep interval (a zero interval would spin).
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown requested: draining");
}
