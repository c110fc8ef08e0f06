//! What every handler shares: the engine's service, the store (for the portal's reads and
//! writes), the server's token key, configuration, this node's websocket sessions, the rate
//! limiter, and the caches of verified tokens and client secrets. The hub cache belongs to the engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::{SigningKey, VerifyingKey};
use switchboard_delivery::live::LiveRegistry;
use switchboard_domain::ids::SecretId;
use switchboard_domain::time::now_millis;
use switchboard_domain::token::Claims;
use switchboard_engine::Engine;
use switchboard_storage::Store;
use tokio::sync::watch;

/// How long a node trusts what it learnt about a client secret. Revocation takes effect on
/// every node within this time (SPEC 2 asks for 5 s).
pub const SECRET_CACHE_TTL: Duration = Duration::from_secs(2);

/// Most verified tokens a node remembers; past it the cache starts afresh.
const CACHE_MAX: usize = 10_000;

/// Settings of the API layer.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Lifetime of access tokens, seconds.
    pub token_ttl_secs: i64,
    /// Base URL of Slack's Web API (for the OAuth exchange), without trailing slash.
    pub slack_api_url: String,
    /// The Slack app's client id and secret, sent with the OAuth exchange.
    pub slack_client_id: String,
    pub slack_client_secret: String,
    /// How often a websocket session pings its client; a client silent for two intervals is
    /// disconnected.
    pub ws_ping_interval: Duration,
    /// The rate of each rate limit.
    pub rate_limits: crate::rate_limit::Limits,
    /// The header that holds the client's IP address, set by the operator's proxy (its last
    /// address counts); `None`: the peer address of the connection.
    pub client_ip_header: Option<poem::http::HeaderName>,
    /// The providers of the channel adapters (SPEC 7.2).
    pub providers: switchboard_delivery::ProviderConfig,
    /// `SWITCHBOARD_SMOOCH_TOKEN_MAX_AGE`: seconds; 0 = compat tokens need no `iat` (SPEC 8.3).
    pub smooch_token_max_age: i64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            token_ttl_secs: 3600,
            slack_api_url: "https://slack.com/api".to_owned(),
            slack_client_id: String::new(),
            slack_client_secret: String::new(),
            ws_ping_interval: Duration::from_secs(30),
            rate_limits: crate::rate_limit::Limits::default(),
            client_ip_header: None,
            providers: switchboard_delivery::ProviderConfig::default(),
            smooch_token_max_age: 0,
        }
    }
}

/// Shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// The engine's service: accept, establish, close, publish, revoke.
    pub engine: Engine,
    /// The engine's store, for the routes that read and write hubs, integrations, identity
    /// and deliveries.
    pub store: Store,
    pub signing: SigningKey,
    pub verifying: VerifyingKey,
    pub config: ApiConfig,
    pub http: reqwest::Client,
    /// This node's websocket sessions.
    pub live: LiveRegistry,
    /// Turns true when the server shuts down: sessions close with 1001.
    pub shutdown: watch::Receiver<bool>,
    /// The credentials of this node's websockets, checked while they are open.
    pub ws_credentials: Arc<crate::chat_hub::CredentialWatch>,
    /// The client of every provider call (provisioning, inbound follow-ups, media links).
    pub providers: switchboard_delivery::ProviderClient,
    /// The rate limits of every route and websocket (SPEC 1, code 429).
    pub limiter: crate::rate_limit::RateLimiter,
    /// The compat API's keys this node read lately (SPEC 8.3).
    pub smooch_keys: crate::smooch::SmoochKeyCache,
    secrets: Mutex<HashMap<SecretId, (bool, Instant)>>,
    /// Tokens whose signature was verified, with their claims: a token's signature is checked
    /// once, its expiry and its secret's revocation on every use.
    tokens: Mutex<HashMap<Box<str>, Claims>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        engine: Engine,
        token_seed: [u8; 32],
        config: ApiConfig,
        live: LiveRegistry,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, reqwest::Error> {
        let signing = SigningKey::from_bytes(&token_seed);
        let verifying = signing.verifying_key();
        // A client that cannot be built stops the start: a default client would lack the timeout.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let providers = switchboard_delivery::ProviderClient::new(config.providers.clone())?;
        Ok(Self(Arc::new(Inner {
            store: engine.store().clone(),
            engine,
            limiter: crate::rate_limit::RateLimiter::new(config.rate_limits),
            providers,
            signing,
            verifying,
            config,
            http,
            live,
            shutdown,
            ws_credentials: Arc::default(),
            smooch_keys: crate::smooch::SmoochKeyCache::default(),
            secrets: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })))
    }

    /// Whether a client secret still exists and has not expired, cached for [`SECRET_CACHE_TTL`].
    pub async fn secret_is_active(&self, id: SecretId) -> Result<bool, switchboard_storage::Error> {
        if let Ok(cache) = self.secrets.lock() {
            if let Some((active, at)) = cache.get(&id) {
                if at.elapsed() < SECRET_CACHE_TTL {
                    return Ok(*active);
                }
            }
        }
        let active = self.store.secret_is_active(id, now_millis()).await?;
        if let Ok(mut cache) = self.secrets.lock() {
            if cache.len() > 100_000 {
                cache.retain(|_, (_, at)| at.elapsed() < SECRET_CACHE_TTL);
            }
            cache.insert(id, (active, Instant::now()));
        }
        Ok(active)
    }

    /// The claims of a token whose signature was verified before.
    pub fn verified_token(&self, token: &str) -> Option<Claims> {
        self.tokens.lock().ok()?.get(token).cloned()
    }

    /// Remembers a token whose signature holds.
    pub fn remember_token(&self, token: &str, claims: &Claims) {
        if let Ok(mut tokens) = self.tokens.lock() {
            if tokens.len() >= CACHE_MAX {
                tokens.clear();
            }
            tokens.insert(token.into(), claims.clone());
        }
    }

    /// Forgets what this node knows of a secret (after revoking it here).
    pub fn forget_secret(&self, id: SecretId) {
        if let Ok(mut cache) = self.secrets.lock() {
            cache.remove(&id);
        }
    }
}
