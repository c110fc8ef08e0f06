//! Configuration by flags and environment variables (SPEC 6). Every flag has its variable; each
//! field's doc comment is its `--help` text. Values are parsed once, here, into typed values,
//! and a bad value stops the start with a message that names the variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use poem::http::HeaderName;
use switchboard_domain::rate::Rate;
use switchboard_storage::EncryptionKey;

/// Switchboard: a hub-centric, multi-tenant unified messaging platform.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

// Parsed once at start-up: the size of the `serve` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server (the default when no command is given).
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate(DbArgs),
    /// Print the OpenAPI document.
    Openapi,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage account keys of the Smooch-compatible API (SPEC 8.3).
    #[command(name = "smooch-key")]
    SmoochKey {
        #[command(subcommand)]
        command: SmoochKeyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SmoochKeyCommand {
    /// Create an account key (`act_…`) of a tenant and print `{ tenantId, keyId, name, secret }`
    /// as JSON. The secret signs HS256 tokens for `/v1` and `/v1.1` (as Smooch's account keys).
    Create {
        /// The tenant's id.
        #[arg(long)]
        tenant: String,
        /// A name to tell the key apart.
        #[arg(long, default_value = "default")]
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant with a portal and an engine client, and print their credentials as JSON.
    Create {
        /// The tenant's name (unique).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Where the data lives.
#[derive(Clone, Debug, Args)]
pub struct DbArgs {
    /// The database: a SQLite file path (default `switchboard.db` in the working directory), a
    /// `sqlite:` URL, or a `postgres://` URL.
    #[arg(long, env = "DATABASE_URL", default_value = "switchboard.db")]
    pub database_url: String,

    /// Base64 of the 32-byte AES-256-GCM key that encrypts credentials at rest. Absent: generated
    /// once and kept beside the SQLite file (`<file>.key`); required with PostgreSQL.
    #[arg(long, env = "SWITCHBOARD_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
}

/// Whether channel adapters call their providers (SPEC 7.5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProvidersMode {
    Live,
    Offline,
}

/// Parses an absolute http(s) base URL and drops its trailing slash.
pub fn parse_base_url(s: &str) -> Result<String, String> {
    let trimmed = s.trim().trim_end_matches('/');
    match url::Url::parse(trimmed) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Ok(trimmed.to_owned())
        }
        _ => Err(format!("'{s}' is not an absolute http or https URL")),
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings of `serve`.
#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,

    /// Address and port to listen on.
    #[arg(long, env = "SWITCHBOARD_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Redis URL. Unset: one node with an in-process bus; set: nodes share live delivery.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Lifetime of access tokens in seconds (1 to 2592000, i.e. 30 days).
    #[arg(long, env = "SWITCHBOARD_TOKEN_TTL", default_value_t = 3600, value_parser = clap::value_parser!(i64).range(1..=2_592_000))]
    pub token_ttl: i64,

    /// Webhook retry delays, one per attempt, comma-separated (`0s,2m,…,24h`; units ms, s, m, h, d).
    #[arg(long, env = "SWITCHBOARD_RETRY_SCHEDULE", default_value = "0s,2m,4m,6m,8m,10m,30m,2h,6h,12h,24h", value_parser = parse_schedule)]
    pub retry_schedule: Schedule,

    /// Timeout of one webhook attempt (e.g. `10s`).
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub webhook_timeout: Duration,

    /// Allow webhook URLs that resolve to loopback, private, link-local or unspecified addresses
    /// (for development and tests; refused by default against server-side request forgery).
    #[arg(long, env = "SWITCHBOARD_ALLOW_PRIVATE_WEBHOOKS", default_value_t = false, action = ArgAction::Set)]
    pub allow_private_webhooks: bool,

    /// The proxy (URL, e.g. `http://proxy.internal:3128`) that every webhook goes through; none
    /// by default. `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` are never used for webhooks.
    /// Through a proxy, webhook URLs that are private IP literals are still refused (unless
    /// private webhooks are allowed), but host names are resolved by the proxy.
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_PROXY")]
    pub webhook_proxy: Option<String>,

    /// The public host name of this deployment, sent as `x-source-system` on webhooks.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_HOST", default_value = "switchboard")]
    pub public_host: String,

    /// Base URL of Slack's Web API, for the OAuth exchange of Slack integrations.
    #[arg(
        long,
        env = "SWITCHBOARD_SLACK_API_URL",
        default_value = "https://slack.com/api"
    )]
    pub slack_api_url: String,

    /// The Slack app's client id, sent with the OAuth exchange of `code` and `nonce`.
    #[arg(long, env = "SWITCHBOARD_SLACK_CLIENT_ID", default_value = "")]
    pub slack_client_id: String,

    /// The Slack app's client secret, sent with the OAuth exchange.
    #[arg(
        long,
        env = "SWITCHBOARD_SLACK_CLIENT_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    pub slack_client_secret: String,

    /// How often a websocket session pings its client (a client silent for two intervals is
    /// disconnected).
    #[arg(long, env = "SWITCHBOARD_WS_PING_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub ws_ping_interval: Duration,

    /// Frames a websocket client may have waiting on the server before it is disconnected with
    /// close code 4008 (it reconnects and resumes).
    #[arg(long, env = "SWITCHBOARD_WS_QUEUE", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub ws_queue: u64,

    /// Bytes of frames a websocket client may have waiting on the server (past it: 4008).
    #[arg(long, env = "SWITCHBOARD_WS_QUEUE_BYTES", default_value_t = 16 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..=1_073_741_824))]
    pub ws_queue_bytes: u64,

    /// How often the sweeper closes dormant conversations and forgets expired idempotency
    /// keys and signatures.
    #[arg(long, env = "SWITCHBOARD_SWEEP_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub sweep_interval: Duration,

    /// Rate limit of each tenant's portal API requests, as `COUNT/UNIT:BURST` (UNIT `s`, `m` or
    /// `h`): on average COUNT per UNIT, up to BURST at once; past it 429 with `Retry-After`.
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_PORTAL", default_value = "100/s:500", value_parser = Rate::parse)]
    pub rate_limit_portal: Rate,

    /// Rate limit of each tenant's engine API requests (`/api/v1/…` with an engine token,
    /// `/inbound/…`, websocket upgrades), as `COUNT/UNIT:BURST`.
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_ENGINE", default_value = "1000/s:2000", value_parser = Rate::parse)]
    pub rate_limit_engine: Rate,

    /// Rate limit of the websocket frames sent by each tenant's clients, as `COUNT/UNIT:BURST`;
    /// past it a frame is answered by an `error` frame with status 429 and not executed.
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_WS_FRAMES", default_value = "500/s:1000", value_parser = Rate::parse)]
    pub rate_limit_ws_frames: Rate,

    /// Rate limit of `POST /connect/token` per client IP address, as `COUNT/UNIT:BURST`.
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_TOKEN", default_value = "10/s:100", value_parser = Rate::parse)]
    pub rate_limit_token: Rate,

    /// Rate limit of requests without credentials, or with refused ones (401), per client IP
    /// address (all routes but `/connect/token`, `/healthz`, `/readyz` and `/metrics`), as
    /// `COUNT/UNIT:BURST`.
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_PUBLIC", default_value = "50/s:500", value_parser = Rate::parse)]
    pub rate_limit_public: Rate,

    /// Rate limit of a provider's calls to one integration's public channel routes
    /// (`/channels/…`), as `COUNT/UNIT:BURST`. These routes are not limited per client IP
    /// address (providers call from few addresses) unless their signature is refused.
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_CHANNEL", default_value = "100/s:1000", value_parser = Rate::parse)]
    pub rate_limit_channel: Rate,

    /// The oldest a token of the Smooch-compatible API may be, in seconds (SPEC 8.3): when set,
    /// tokens must carry `iat` and older ones are refused. 0 (the default) turns it off, as
    /// smooch-core's tokens carry no `exp` and are valid while their key lives.
    #[arg(long, env = "SWITCHBOARD_SMOOCH_TOKEN_MAX_AGE", default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    pub smooch_token_max_age: i64,

    /// Rate limit of WebChat session requests per `clientId` (SPEC 7.18.2), as
    /// `COUNT/UNIT:BURST`.
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_WEBCHAT_CLIENT", default_value = "10/m:10", value_parser = Rate::parse)]
    pub rate_limit_webchat_client: Rate,

    /// Rate limit of WebChat session requests per client IP address (SPEC 7.18.2), as
    /// `COUNT/UNIT:BURST`.
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_WEBCHAT_IP", default_value = "60/m:60", value_parser = Rate::parse)]
    pub rate_limit_webchat_ip: Rate,

    /// The request header that holds the client's IP address, set by the operator's proxy
    /// (e.g. `X-Forwarded-For`: its last address counts). Unset: the peer address of the
    /// connection. Set it only behind a proxy that sets the header: clients can send it too.
    #[arg(long, env = "SWITCHBOARD_CLIENT_IP_HEADER", value_parser = parse_header_name)]
    pub client_ip_header: Option<HeaderName>,

    /// The longest a client may take to send a request's line and headers, from their first
    /// byte (for a connection's first request, from its opening); past it the connection is
    /// closed.
    #[arg(long, env = "SWITCHBOARD_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// The longest a request body the server is reading may go without a byte arriving, and a
    /// response without the client taking a byte; past it the connection is closed.
    #[arg(long, env = "SWITCHBOARD_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,

    /// How long a keep-alive connection may stay idle between two requests before it is closed.
    /// Websockets are not subject to it (nor to the header and body timeouts).
    #[arg(long, env = "SWITCHBOARD_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Open connections (websockets included) this node holds at most; past it a new
    /// connection is answered 503 (code 100) with `Connection: close` at once. The process also
    /// needs as many open files (`ulimit -n`).
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS", default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_connections: u64,

    /// Absolute base URL under which providers and browsers reach this server
    /// (`https://sb.example.com`): every URL registered with a provider, Twilio's signature URL
    /// and media links are built from it. Default: `http://` + `SWITCHBOARD_BIND`.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL", value_parser = parse_base_url)]
    pub public_url: Option<String>,

    /// `live`: channel adapters call their providers. `offline` (development without
    /// providers): no provisioning call, provider deliveries held until a live start.
    #[arg(
        long,
        env = "SWITCHBOARD_PROVIDERS",
        value_enum,
        default_value = "live"
    )]
    pub providers: ProvidersMode,

    /// Base URL of Twilio's API.
    #[arg(long, env = "SWITCHBOARD_PROVIDER_TWILIO_URL", default_value = "https://api.twilio.com", value_parser = parse_base_url)]
    pub provider_twilio_url: String,

    /// Base URL of Meta's Graph API for Messenger, version segment included.
    #[arg(long, env = "SWITCHBOARD_PROVIDER_MESSENGER_URL", default_value = switchboard_delivery::provider::DEFAULT_GRAPH_URL, value_parser = parse_base_url)]
    pub provider_messenger_url: String,

    /// Base URL of Meta's Graph API for WhatsApp, version segment included.
    #[arg(long, env = "SWITCHBOARD_PROVIDER_WHATSAPP_URL", default_value = switchboard_delivery::provider::DEFAULT_GRAPH_URL, value_parser = parse_base_url)]
    pub provider_whatsapp_url: String,

    /// Base URL of Telegram's Bot API.
    #[arg(long, env = "SWITCHBOARD_PROVIDER_TELEGRAM_URL", default_value = "https://api.telegram.org", value_parser = parse_base_url)]
    pub provider_telegram_url: String,

    /// The secret of Switchboard's own Facebook app: verifies Messenger and WhatsApp webhooks
    /// of integrations whose configuration has no `appSecret`.
    #[arg(long, env = "SWITCHBOARD_MESSENGER_APP_SECRET", hide_env_values = true)]
    pub messenger_app_secret: Option<String>,

    /// Tests only: provider calls to any host but loopback are refused, so that a missing
    /// base-URL override fails loudly instead of calling a real provider.
    #[arg(long, env = "SWITCHBOARD_PROVIDERS_LOOPBACK_ONLY", default_value_t = false, action = ArgAction::Set, hide = true)]
    pub providers_loopback_only: bool,

    /// Log format: `text` or `json`. The level comes from `RUST_LOG` (default `info`).
    #[arg(
        long,
        env = "SWITCHBOARD_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

impl Default for ServeArgs {
    fn default() -> Self {
        match Cli::try_parse_from(["switchboard", "serve"]) {
            Ok(Cli {
                command: Some(Command::Serve(args)),
            }) => args,
            _ => unreachable!("the defaults of serve parse"),
        }
    }
}

/// Webhook retry delays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule(pub Vec<Duration>);

/// Parses `500ms`, `10s`, `2m`, `2h`, `1d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration such as 10s, 2m or 1h"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("'{s}' has an unknown unit (use ms, s, m, h or d)")),
    };
    Ok(Duration::from_secs(secs))
}

/// Parses an HTTP header name.
pub fn parse_header_name(s: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(s.trim().as_bytes())
        .map_err(|_| format!("'{s}' is not an HTTP header name such as X-Forwarded-For"))
}

/// Parses a comma-separated retry schedule (at least one delay, each at most 24 h).
pub fn parse_schedule(s: &str) -> Result<Schedule, String> {
    let delays = s
        .split(',')
        .map(parse_duration)
        .collect::<Result<Vec<_>, _>>()?;
    if delays.is_empty() {
        return Err("the schedule needs at least one delay".to_owned());
    }
    if delays.iter().any(|d| *d > Duration::from_secs(86_400)) {
        return Err("a delay is longer than 24h".to_owned());
    }
    Ok(Schedule(delays))
}

impl DbArgs {
    /// The URL the store connects to: a bare path becomes a SQLite URL that creates the file.
    pub fn url(&self) -> String {
        let u = self.database_url.trim();
        if u.starts_with("postgres://")
            || u.starts_with("postgresql://")
            || u.starts_with("sqlite:")
        {
            u.to_owned()
        } else {
            format!("sqlite://{u}?mode=rwc")
        }
    }

    fn is_postgres(&self) -> bool {
        let u = self.database_url.trim();
        u.starts_with("postgres://") || u.starts_with("postgresql://")
    }

    /// The SQLite file, when the database is one.
    fn sqlite_file(&self) -> Option<PathBuf> {
        let u = self.database_url.trim();
        if self.is_postgres() {
            return None;
        }
        let path = u
            .strip_prefix("sqlite://")
            .or_else(|| u.strip_prefix("sqlite:"))
            .unwrap_or(u);
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || path == ":memory:" {
            return None;
        }
        Some(PathBuf::from(path))
    }

    /// The encryption key: from `SWITCHBOARD_ENCRYPTION_KEY`, else the key file beside the
    /// SQLite file (created on first use), else, for an in-memory database, a fresh one.
    pub fn encryption_key(&self) -> Result<EncryptionKey, String> {
        if let Some(text) = &self.encryption_key {
            return EncryptionKey::from_base64(text).ok_or_else(|| {
                "SWITCHBOARD_ENCRYPTION_KEY must be the base64 of exactly 32 bytes".to_owned()
            });
        }
        if self.is_postgres() {
            return Err("SWITCHBOARD_ENCRYPTION_KEY is required with PostgreSQL (base64 of 32 bytes; every node needs the same key)".to_owned());
        }
        match self.sqlite_file() {
            Some(db) => key_file(&key_path(&db)),
            None => Ok(EncryptionKey::generate()),
        }
    }
}

fn key_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".key");
    db.with_file_name(name)
}

fn key_file(path: &Path) -> Result<EncryptionKey, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => EncryptionKey::from_base64(&text).ok_or_else(|| {
            format!(
                "the key file {} does not hold a base64 32-byte key",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = EncryptionKey::generate();
            write_private(path, &key.to_base64())
                .map_err(|e| format!("cannot write the key file {}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!("cannot read the key file {}: {e}", path.display())),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_schedules() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
        assert_eq!(parse_schedule("0s,2m,24h").map(|s| s.0.len()), Ok(3));
        assert!(parse_schedule("0s,25h").is_err());
    }

    #[test]
    fn bad_values_name_their_variable() {
        let err = Cli::try_parse_from(["switchboard", "serve", "--token-ttl", "0"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("token-ttl"), "{err}");
        let err = Cli::try_parse_from(["switchboard", "serve", "--rate-limit-portal", "fast"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rate-limit-portal") && err.contains("100/s:500"),
            "{err}"
        );
        let err = Cli::try_parse_from(["switchboard", "serve", "--client-ip-header", "a b"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("client-ip-header"), "{err}");
        let db = DbArgs {
            database_url: "postgres://x/y".into(),
            encryption_key: None,
        };
        assert!(db
            .encryption_key()
            .unwrap_err()
            .contains("SWITCHBOARD_ENCRYPTION_KEY"));
        let db = DbArgs {
            database_url: "x.db".into(),
            encryption_key: Some("short".into()),
        };
        assert!(db
            .encryption_key()
            .unwrap_err()
            .contains("SWITCHBOARD_ENCRYPTION_KEY"));
    }

    #[test]
    fn urls() {
        let db = |u: &str| DbArgs {
            database_url: u.into(),
            encryption_key: None,
        };
        assert_eq!(
            db("switchboard.db").url(),
            "sqlite://switchboard.db?mode=rwc"
        );
        assert_eq!(db("postgres://h/d").url(), "postgres://h/d");
        assert_eq!(key_path(Path::new("/a/b.db")), PathBuf::from("/a/b.db.key"));
        assert_eq!(
            db("sqlite://x.db?mode=rwc").sqlite_file(),
            Some(PathBuf::from("x.db"))
        );
        assert_eq!(db("sqlite::memory:").sqlite_file(), None);
    }
}
