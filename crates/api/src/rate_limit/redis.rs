//! Buckets in Redis, shared by every node: one atomic script call per check (`EVALSHA` of a
//! script loaded at start-up, loaded again when Redis answers `NOSCRIPT`), one key per bucket
//! that expires once the bucket is full again.
//!
//! A Redis that fails or is slow never refuses a request: the check answers `None` (the caller
//! falls back to this node's buckets), the cause is logged at most every [`LOG_EVERY`], and
//! Redis is left alone for [`PAUSE`] so that an outage costs requests nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, ErrorKind, RedisError};
use switchboard_domain::rate::{Rate, Taken};
use tokio::time::timeout;

use super::{Key, Limit};

/// Prefix of the bucket keys: `switchboard:rate:{limit}:{key}`.
const KEY_PREFIX: &str = "switchboard:rate:";
/// How long connecting may take at start-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one check may wait for Redis before it falls back.
const CHECK_TIMEOUT: Duration = Duration::from_millis(250);
/// How long checks skip Redis after it failed.
const PAUSE: Duration = Duration::from_secs(1);
/// Least time between two log lines about a failing Redis.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The step of `switchboard_domain::rate::take` on a bucket kept in Redis: KEYS[1] holds the
/// TAT; ARGV: now, interval and tolerance (µs, from the domain's `Rate`). Answers 0 when
/// allowed (the new TAT is kept until the bucket is full again), else the wait in µs. Numbers
/// are written with `%.0f`: Lua's default format would round microsecond timestamps.
const SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0) or 0
if tat < now then tat = now end
local nxt = tat + tonumber(ARGV[2])
local ahead = nxt - now
local over = ahead - tonumber(ARGV[3])
if over > 0 then return over end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.floor(ahead / 1000) + 1)
return 0
";

/// The buckets kept in Redis.
pub struct RedisBuckets {
    conn: ConnectionManager,
    /// The SHA-1 of [`SCRIPT`], as Redis answered `SCRIPT LOAD`.
    sha: String,
    /// Until when (µs) checks skip Redis after a failure.
    paused_until: AtomicU64,
    /// When (µs) a failure was last logged.
    logged_at: AtomicU64,
}

impl RedisBuckets {
    /// Connects to Redis at `url` and loads the script; fails within a few seconds when Redis
    /// cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, String> {
        let client = Client::open(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(CHECK_TIMEOUT)
            .set_number_of_retries(1)
            .set_max_delay(1000);
        let mut conn = timeout(
            CONNECT_TIMEOUT,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| "cannot connect: timed out".to_owned())?
        .map_err(|e| format!("cannot connect: {e}"))?;
        let sha = timeout(CONNECT_TIMEOUT, load(&mut conn))
            .await
            .map_err(|_| "SCRIPT LOAD timed out".to_owned())?
            .map_err(|e| format!("SCRIPT LOAD failed: {e}"))?;
        Ok(Self {
            conn,
            sha,
            paused_until: AtomicU64::new(0),
            logged_at: AtomicU64::new(0),
        })
    }

    /// Takes a token from the shared bucket; `None` when Redis failed (the caller falls back).
    pub async fn take(&self, limit: Limit, key: Key, rate: Rate, now: u64) -> Option<Taken> {
        if now < self.paused_until.load(Ordering::Relaxed) {
            return None;
        }
        let bucket = format!("{KEY_PREFIX}{}:{key}", limit.name());
        let args = [now, rate.interval_micros(), rate.tolerance_micros()];
        match timeout(CHECK_TIMEOUT, self.eval(&bucket, args)).await {
            Ok(Ok(0)) => Some(Taken::Allowed { tat: 0 }),
            Ok(Ok(wait)) => Some(Taken::Refused { wait_micros: wait }),
            Ok(Err(e)) => self.failed(now, &e.to_string()),
            Err(_) => self.failed(now, "no answer in time"),
        }
    }

    /// `EVALSHA`, after loading the script again if Redis lost it (a restart, `SCRIPT FLUSH`).
    async fn eval(&self, bucket: &str, args: [u64; 3]) -> Result<u64, RedisError> {
        let mut conn = self.conn.clone();
        let cmd = || {
            let mut cmd = ::redis::cmd("EVALSHA");
            cmd.arg(&self.sha).arg(1).arg(bucket).arg(&args[..]);
            cmd
        };
        match cmd().query_async(&mut conn).await {
            Err(e) if e.kind() == ErrorKind::NoScriptError => {
                load(&mut conn).await?;
                cmd().query_async(&mut conn).await
            }
            other => other,
        }
    }

    /// Notes a failure: Redis is skipped for [`PAUSE`], and the cause logged unless it was
    /// within [`LOG_EVERY`].
    fn failed(&self, now: u64, cause: &str) -> Option<Taken> {
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.paused_until
            .store(now.saturating_add(micros(PAUSE)), Ordering::Relaxed);
        let last = self.logged_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= micros(LOG_EVERY)
            && self
                .logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                cause,
                "rate limits: Redis failed; checks use this node's buckets (allowing more than \
                 the shared limit) until it answers again (logged at most every 10 s)"
            );
        }
        None
    }
}

/// `SCRIPT LOAD`: the script's SHA-1.
async fn load(conn: &mut ConnectionManager) -> Result<String, RedisError> {
    ::redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(SCRIPT)
        .query_async(conn)
        .await
}
