//! Rate limits (SPEC 1, code 429): one service, [`RateLimiter`], asked with a [`Limit`] (which
//! rate, and the name counted in `/metrics`) and a [`Key`] (whose bucket). Every caller goes
//! through it: the tenant's portal and engine requests (at authentication), its websocket
//! frames, and requests per client IP ([`ClientLimits`]); the public channel routes use it too.
//!
//! The buckets' arithmetic is `switchboard_domain::rate`. Buckets live in this process
//! ([`memory`]) or, when nodes share Redis, in Redis ([`redis`], one script call per check). A
//! Redis that fails does not refuse anything: the check falls back to this node's buckets,
//! counted in `switchboard_rate_limit_fallbacks_total` and logged at most every 10 s.

mod client;
mod memory;
mod redis;

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use switchboard_domain::ids::{IntegrationId, TenantId};
use switchboard_domain::rate::{retry_after_secs, Rate, Taken};

pub use client::{client_ip, ClientLimits};
pub use memory::MemoryBuckets;
pub use redis::RedisBuckets;

/// The limits: a closed set, each with its rate in [`Limits`] and its label in `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Portal API requests of one tenant.
    Portal,
    /// Engine API requests of one tenant (`/api/v1/…` with an engine token, `/inbound/…`,
    /// websocket upgrades).
    Engine,
    /// Websocket frames sent by one tenant's clients.
    Frames,
    /// `POST /connect/token` requests of one client IP.
    Token,
    /// Requests without credentials of one client IP.
    Public,
    /// A provider's calls to one integration's public channel routes (SPEC 7.3.2 step 2).
    Channel,
    /// WebChat sessions of one `clientId` (SPEC 7.18.2).
    WebChatClient,
    /// WebChat sessions of one client IP address (SPEC 7.18.2).
    WebChatIp,
}

impl Limit {
    /// The label of `switchboard_rate_limited_total` and the name in Redis keys.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Portal => "portal",
            Self::Engine => "engine",
            Self::Frames => "ws_frames",
            Self::Token => "token",
            Self::Public => "public",
            Self::Channel => "channel",
            Self::WebChatClient => "webchat_client",
            Self::WebChatIp => "webchat_ip",
        }
    }

    /// What is counted, for the error's description.
    const fn counts(self) -> &'static str {
        match self {
            Self::Portal => "portal API requests per tenant",
            Self::Engine => "engine API requests per tenant",
            Self::Frames => "websocket frames per tenant",
            Self::Token => "token requests per client IP address",
            Self::Public => "requests without credentials per client IP address",
            Self::Channel => "provider requests per integration",
            Self::WebChatClient => "WebChat sessions per clientId",
            Self::WebChatIp => "WebChat sessions per client IP address",
        }
    }
}

/// The rate of each [`Limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub portal: Rate,
    pub engine: Rate,
    pub frames: Rate,
    pub token: Rate,
    pub public: Rate,
    pub channel: Rate,
    pub webchat_client: Rate,
    pub webchat_ip: Rate,
}

impl Default for Limits {
    /// What a normal tenant never meets and a runaway script does (the server's defaults).
    fn default() -> Self {
        Self {
            portal: Rate::per_second(100, 500),
            engine: Rate::per_second(1000, 2000),
            frames: Rate::per_second(500, 1000),
            token: Rate::per_second(10, 100),
            public: Rate::per_second(50, 500),
            channel: Rate::per_second(100, 1000),
            webchat_client: Rate::per_minute(10, 10),
            webchat_ip: Rate::per_minute(60, 60),
        }
    }
}

impl Limits {
    pub const fn rate(&self, limit: Limit) -> Rate {
        match limit {
            Limit::Portal => self.portal,
            Limit::Engine => self.engine,
            Limit::Frames => self.frames,
            Limit::Token => self.token,
            Limit::Public => self.public,
            Limit::Channel => self.channel,
            Limit::WebChatClient => self.webchat_client,
            Limit::WebChatIp => self.webchat_ip,
        }
    }
}

/// Whose bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Tenant(TenantId),
    /// A client address; see [`Key::client`].
    Ip(IpAddr),
    /// An integration (a provider's calls to its channel routes).
    Integration(IntegrationId),
    /// A WebChat `clientId` of an integration, by a hash of both (the id is a bearer secret
    /// and is not kept, in memory or in Redis).
    WebChatClient(u64),
    /// A key of the Smooch-compatible API (SPEC 8.1: the portal API's limit, per key), by the
    /// 32 hex digits of its id.
    SmoochKey(u128),
}

impl Key {
    /// The bucket of a client address: an IPv4 address (IPv4-mapped IPv6 included) alone, an
    /// IPv6 address by its /64 network, which one subscriber usually holds whole.
    pub fn client(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let net = u128::from(v6) & (u128::MAX << 64);
                Self::Ip(IpAddr::V6(Ipv6Addr::from(net)))
            }
            v4 => Self::Ip(v4),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tenant(id) => write!(f, "tenant:{id}"),
            Self::Ip(ip) => write!(f, "ip:{ip}"),
            Self::Integration(id) => write!(f, "integration:{id}"),
            Self::WebChatClient(hash) => write!(f, "webchat:{hash:016x}"),
            Self::SmoochKey(id) => write!(f, "smooch:{id:032x}"),
        }
    }
}

/// A request over its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub limit: Limit,
    pub rate: Rate,
    /// Whole seconds until a token is back (at least 1), for `Retry-After`.
    pub retry_after: u64,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.rate.per_secs {
            60 => "minute",
            3600 => "hour",
            _ => "second",
        };
        write!(
            f,
            "Too many requests: the limit of {} {} per {unit} (bursts of {}) is reached; retry in {} s.",
            self.rate.count,
            self.limit.counts(),
            self.rate.burst,
            self.retry_after
        )
    }
}

/// The rate limiter of a node: in-process buckets, shared through Redis once [`share`] was
/// called. In process, checking a bucket that exists allocates nothing.
///
/// [`share`]: RateLimiter::share
pub struct RateLimiter {
    limits: Limits,
    memory: MemoryBuckets,
    shared: OnceLock<RedisBuckets>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limits", &self.limits)
            .field("shared", &self.shared.get().is_some())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter with its buckets in this process.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            memory: MemoryBuckets::default(),
            shared: OnceLock::new(),
        }
    }

    /// Keeps the buckets in Redis from now on, shared by every node (this process's buckets
    /// stay as the fallback). Only the first call counts.
    pub fn share(&self, redis: RedisBuckets) {
        let _ = self.shared.set(redis);
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Takes a token from `key`'s bucket of `limit`; refused when it is empty (counted in
    /// `switchboard_rate_limited_total{limit}`).
    pub async fn check(&self, limit: Limit, key: Key) -> Result<(), Refused> {
        let rate = self.limits.rate(limit);
        let now = now_micros();
        let shared = match self.shared.get() {
            Some(redis) => redis.take(limit, key, rate, now).await,
            None => None,
        };
        let taken = match shared {
            Some(taken) => taken,
            None => {
                if self.shared.get().is_some() {
                    metrics::counter!("switchboard_rate_limit_fallbacks_total").increment(1);
                }
                self.memory.take(limit, key, rate, now)
            }
        };
        match taken {
            Taken::Allowed { .. } => Ok(()),
            Taken::Refused { wait_micros } => {
                metrics::counter!("switchboard_rate_limited_total", "limit" => limit.name())
                    .increment(1);
                Err(Refused {
                    limit,
                    rate,
                    retry_after: retry_after_secs(wait_micros),
                })
            }
        }
    }
}

/// Microseconds since the Unix epoch: the clock of every node's buckets.
fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Key::client(a), Key::client(b));
        assert_ne!(Key::client(a), Key::client(c));
        assert_eq!(Key::client(a).to_string(), "ip:2001:db8:1:2::");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(Key::client(mapped), Key::Ip("192.0.2.7".parse().unwrap()));
    }

    #[tokio::test]
    async fn refusals_name_the_limit_and_the_wait() {
        let limits = Limits {
            token: Rate::per_second(1, 2),
            ..Limits::default()
        };
        let limiter = RateLimiter::new(limits);
        let ip = Key::client("192.0.2.1".parse().unwrap());
        assert!(limiter.check(Limit::Token, ip).await.is_ok());
        assert!(limiter.check(Limit::Token, ip).await.is_ok());
        let refused = limiter.check(Limit::Token, ip).await.unwrap_err();
        assert_eq!((refused.limit, refused.retry_after), (Limit::Token, 1));
        assert_eq!(
            refused.to_string(),
            "Too many requests: the limit of 1 token requests per client IP address per second \
             (bursts of 2) is reached; retry in 1 s."
        );
        // Another key, another limit: their own buckets.
        let other = Key::client("192.0.2.2".parse().unwrap());
        assert!(limiter.check(Limit::Token, other).await.is_ok());
        assert!(limiter.check(Limit::Public, ip).await.is_ok());
    }
}
