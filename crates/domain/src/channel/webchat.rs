//! WebChat (SPEC 7.18): the pure rules of Switchboard's own browser channel: which `Origin`
//! may call an integration's public routes, what a session request may carry, and the session
//! token (an EdDSA JWT with `aud: "webchat"`, accepted on the widget socket only).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Violation, ViolationKind, Violations};
use crate::ids::{ConversationId, IntegrationId, TenantId};
use crate::token::{self, TokenError};

/// The `aud` of a session token.
pub const AUDIENCE: &str = "webchat";
/// `sessionTTL` when the configuration has none, seconds.
pub const DEFAULT_SESSION_TTL: i64 = 3600;
/// The shortest and longest `sessionTTL`, seconds.
pub const SESSION_TTL_RANGE: std::ops::RangeInclusive<i64> = 300..=86_400;
/// Most keys of a session's `profile`.
pub const MAX_PROFILE_KEYS: usize = 20;
/// Longest value of a session's `profile`, characters.
pub const MAX_PROFILE_VALUE: usize = 256;
/// Longest `User-Agent` kept in `channel.userAgent`, characters.
pub const MAX_USER_AGENT: usize = 256;

/// The host of an `Origin` header when its scheme is `http` or `https` (lowercase, port and
/// brackets dropped); `None` for `null`, other schemes or anything that is not an origin.
pub fn origin_host(origin: &str) -> Option<String> {
    let origin = origin.trim();
    let (scheme, rest) = origin.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    // An origin has no path, query or user part.
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split_once(']').map(|(h, _)| h)?
    } else {
        match rest.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            Some(_) => return None,
            None => rest,
        }
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Whether `host` (as [`origin_host`] answers it) matches an `allowedOrigins` entry: the same
/// host name, case-insensitively, or for `*.example.com` any subdomain of `example.com` (not
/// `example.com` itself).
pub fn entry_matches(entry: &str, host: &str) -> bool {
    let entry = entry.trim();
    match entry.strip_prefix("*.") {
        Some(parent) => {
            host.len() > parent.len() + 1
                && host.ends_with(&parent.to_ascii_lowercase())
                && host.as_bytes()[host.len() - parent.len() - 1] == b'.'
        }
        None => entry.eq_ignore_ascii_case(host),
    }
}

/// The origin host of a request allowed by `allowed` (the integration's `allowedOrigins`), or
/// `None`: a missing header, `null`, a scheme other than http(s), or no matching entry.
pub fn allowed_origin(allowed: &[String], origin: Option<&str>) -> Option<String> {
    let host = origin_host(origin?)?;
    allowed
        .iter()
        .any(|entry| entry_matches(entry, &host))
        .then_some(host)
}

/// The `allowedOrigins` of a WebChat configuration (strings only).
pub fn allowed_origins(configuration: &Map<String, Value>) -> Vec<String> {
    configuration
        .get("allowedOrigins")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `sessionTTL` of a WebChat configuration, seconds (default [`DEFAULT_SESSION_TTL`]).
pub fn session_ttl(configuration: &Map<String, Value>) -> i64 {
    configuration
        .get("sessionTTL")
        .and_then(Value::as_i64)
        .filter(|t| SESSION_TTL_RANGE.contains(t))
        .unwrap_or(DEFAULT_SESSION_TTL)
}

/// `echo` of a WebChat configuration (default true).
pub fn echo(configuration: &Map<String, Value>) -> bool {
    configuration
        .get("echo")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// A fresh `clientId`: 128 random bits as 22 base64url characters.
pub fn new_client_id() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether a `clientId` is 22..64 characters of `[A-Za-z0-9_-]`.
pub fn is_client_id(s: &str) -> bool {
    (22..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A validated session request.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRequest {
    /// The given `clientId`, if any.
    pub client_id: Option<String>,
    /// The given `profile` (strings only), empty when absent.
    pub profile: Map<String, Value>,
}

/// Validates `{ clientId?, profile? }`: `clientId` 22..64 of `[A-Za-z0-9_-]` (201), `profile`
/// an object of strings (302) with at most 20 keys and values of at most 256 characters (206).
/// An empty or absent body is a request without either.
pub fn validate_session(body: &Value) -> Result<SessionRequest, Violations> {
    let mut v = Violations::default();
    let empty = Map::new();
    let obj = match body {
        Value::Null => &empty,
        Value::Object(o) => o,
        _ => {
            return Err(Violation::new(
                ViolationKind::InvalidBody,
                "",
                "The body must be a JSON object.",
            )
            .into())
        }
    };
    let client_id = match obj.get("clientId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_client_id(s) => Some(s.clone()),
        Some(_) => {
            v.push(Violation::invalid_format(
                "clientId",
                "must be 22 to 64 characters of A-Z, a-z, 0-9, '_' and '-'",
            ));
            None
        }
    };
    let mut profile = Map::new();
    match obj.get("profile") {
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) => {
            if p.values().any(|x| !x.is_string()) {
                v.push(Violation::wrong_type("profile", "an object of strings"));
            } else if p.len() > MAX_PROFILE_KEYS {
                v.push(Violation::out_of_range(
                    "profile",
                    &format!("has more than {MAX_PROFILE_KEYS} keys"),
                ));
            } else if let Some((k, _)) = p.iter().find(|(_, x)| {
                x.as_str()
                    .is_some_and(|s| s.chars().count() > MAX_PROFILE_VALUE)
            }) {
                v.push(Violation::out_of_range(
                    &format!("profile.{k}"),
                    &format!("is longer than {MAX_PROFILE_VALUE} characters"),
                ));
            } else {
                profile = p.clone();
            }
        }
        Some(_) => v.push(Violation::wrong_type("profile", "an object of strings")),
    }
    v.into_result(SessionRequest { client_id, profile })
}

/// The conversation properties a session merges in (SPEC 7.18.2): `profile`, and `channel`
/// with `origin` (the origin host) and `userAgent` (cut to 256 characters). The `clientId` (a
/// bearer secret) is not among them.
pub fn session_properties(
    profile: &Map<String, Value>,
    origin: &str,
    user_agent: Option<&str>,
) -> Map<String, Value> {
    let mut channel = Map::new();
    channel.insert("origin".into(), Value::String(origin.to_owned()));
    if let Some(ua) = user_agent.filter(|u| !u.is_empty()) {
        let cut: String = ua.chars().take(MAX_USER_AGENT).collect();
        channel.insert("userAgent".into(), Value::String(cut));
    }
    let mut props = Map::new();
    if !profile.is_empty() {
        props.insert("profile".into(), Value::Object(profile.clone()));
    }
    props.insert("channel".into(), Value::Object(channel));
    props
}

/// The claims of a session token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// The customer's `tokenId` in the conversation.
    pub sub: String,
    /// Tenant.
    pub tid: TenantId,
    /// The WebChat integration.
    pub iid: IntegrationId,
    /// The conversation.
    pub cid: ConversationId,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
}

impl SessionClaims {
    /// Claims issued at `now` for `ttl` seconds.
    pub fn new(
        tenant: TenantId,
        integration: IntegrationId,
        conversation: ConversationId,
        token_id: &str,
        now: i64,
        ttl: i64,
    ) -> Self {
        Self {
            aud: AUDIENCE.to_owned(),
            sub: token_id.to_owned(),
            tid: tenant,
            iid: integration,
            cid: conversation,
            iat: now,
            exp: now + ttl,
            jti: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// Signs a session token.
pub fn encode_session(key: &SigningKey, claims: &SessionClaims) -> String {
    token::encode_json(key, claims)
}

/// Why a session token was refused; every case answers 401/102.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionTokenError {
    /// Malformed, other algorithm or bad signature.
    Token(TokenError),
    /// Another audience (an access token, say).
    Audience,
    /// Past `exp`.
    Expired,
    /// Issued for another integration.
    Integration,
}

/// Verifies a session token for `integration` at `now` (Unix seconds).
pub fn decode_session(
    key: &VerifyingKey,
    token: &str,
    integration: IntegrationId,
    now: i64,
) -> Result<SessionClaims, SessionTokenError> {
    let raw: Value = token::decode_json(key, token).map_err(SessionTokenError::Token)?;
    if raw.get("aud").and_then(Value::as_str) != Some(AUDIENCE) {
        return Err(SessionTokenError::Audience);
    }
    let claims: SessionClaims =
        serde_json::from_value(raw).map_err(|_| SessionTokenError::Token(TokenError::Malformed))?;
    if claims.exp <= now {
        return Err(SessionTokenError::Expired);
    }
    if claims.iid != integration {
        return Err(SessionTokenError::Integration);
    }
    Ok(claims)
}

/// The message types a widget may send.
pub const MESSAGE_TYPES: &[&str] = &["text", "image", "video", "audio", "attachment", "location"];
/// The event types a widget may send.
pub const EVENT_TYPES: &[&str] = &["typing_on", "typing_off", "seen", "payload"];

/// Whether a widget may send this activity body (`{type, message | event}`): a message of
/// [`MESSAGE_TYPES`] or an event of [`EVENT_TYPES`]; otherwise the violation (206). The rest of
/// the body is checked as any inbound activity.
pub fn check_widget_activity(body: &Value) -> Result<(), Violation> {
    let kind = |part: &str| {
        body.get(part)
            .and_then(|m| m.get("type"))
            .and_then(Value::as_str)
    };
    if let Some(t) = kind("message") {
        if !MESSAGE_TYPES.contains(&t) {
            return Err(Violation::out_of_range(
                "activity.message.type",
                &format!(
                    "'{t}' cannot be sent from the widget (one of {})",
                    MESSAGE_TYPES.join(", ")
                ),
            ));
        }
    }
    if let Some(t) = kind("event") {
        if !EVENT_TYPES.contains(&t) {
            return Err(Violation::out_of_range(
                "activity.event.type",
                &format!(
                    "'{t}' cannot be sent from the widget (one of {})",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn origins_match_hosts_exactly_or_by_wildcard_ignoring_port_and_case() {
        let allowed = vec!["shop.example.com".to_owned(), "*.example.org".to_owned()];
        let ok = |o: &str| allowed_origin(&allowed, Some(o));
        assert_eq!(
            ok("https://shop.example.com"),
            Some("shop.example.com".into())
        );
        assert_eq!(
            ok("http://SHOP.example.com:8080"),
            Some("shop.example.com".into())
        );
        assert_eq!(
            ok("https://a.b.example.org"),
            Some("a.b.example.org".into())
        );
        assert_eq!(ok("https://example.org"), None);
        assert_eq!(ok("https://badexample.org"), None);
        assert_eq!(ok("https://other.example.com"), None);
        assert_eq!(ok("null"), None);
        assert_eq!(ok("ftp://shop.example.com"), None);
        assert_eq!(ok("https://shop.example.com/path"), None);
        assert_eq!(allowed_origin(&allowed, None), None);
        let local = vec!["localhost".to_owned(), "::1".to_owned()];
        assert!(allowed_origin(&local, Some("http://localhost:3000")).is_some());
        assert!(allowed_origin(&local, Some("http://[::1]:3000")).is_some());
    }

    #[test]
    fn client_ids_and_profiles_are_checked() {
        let id = new_client_id();
        assert_eq!(id.len(), 22);
        assert!(is_client_id(&id));
        assert!(!is_client_id("short"));
        assert!(!is_client_id(&"a".repeat(65)));
        assert!(!is_client_id("abcdefghijklmnopqrstuv+"));
        let kind = |b: Value| validate_session(&b).unwrap_err().0[0].kind;
        assert_eq!(kind(json!({"clientId": "x"})), ViolationKind::InvalidFormat);
        assert_eq!(kind(json!({"clientId": 5})), ViolationKind::InvalidFormat);
        assert_eq!(kind(json!({"profile": {"a": 1}})), ViolationKind::WrongType);
        assert_eq!(kind(json!({"profile": "x"})), ViolationKind::WrongType);
        let many: Map<String, Value> = (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(kind(json!({ "profile": many })), ViolationKind::OutOfRange);
        assert_eq!(
            kind(json!({"profile": {"a": "x".repeat(257)}})),
            ViolationKind::OutOfRange
        );
        let ok = validate_session(&json!({"clientId": id, "profile": {"email": "a@b.c"}})).unwrap();
        assert_eq!(ok.client_id.as_deref(), Some(id.as_str()));
        assert_eq!(validate_session(&Value::Null).unwrap().client_id, None);
    }

    #[test]
    fn session_tokens_carry_the_audience_and_the_integration() {
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let iid = IntegrationId::new();
        let c = SessionClaims::new(TenantId::new(), iid, ConversationId::new(), "t", 1000, 300);
        let t = encode_session(&key, &c);
        let vk = key.verifying_key();
        assert_eq!(decode_session(&vk, &t, iid, 1100), Ok(c.clone()));
        assert_eq!(
            decode_session(&vk, &t, iid, 1300),
            Err(SessionTokenError::Expired)
        );
        assert_eq!(
            decode_session(&vk, &t, IntegrationId::new(), 1100),
            Err(SessionTokenError::Integration)
        );
        let mut other = c;
        other.aud = "engine".into();
        let t = encode_session(&key, &other);
        assert_eq!(
            decode_session(&vk, &t, iid, 1100),
            Err(SessionTokenError::Audience)
        );
        // A session token is no access token.
        assert!(token::decode(
            &vk,
            &encode_session(
                &key,
                &SessionClaims::new(TenantId::new(), iid, ConversationId::new(), "t", 1000, 300)
            ),
            1100
        )
        .is_err());
    }

    #[test]
    fn widgets_send_only_their_types() {
        assert!(check_widget_activity(
            &json!({"type":"message","message":{"type":"text","text":"x"}})
        )
        .is_ok());
        assert!(
            check_widget_activity(&json!({"type":"message","message":{"type":"card"}})).is_err()
        );
        assert!(check_widget_activity(&json!({"type":"event","event":{"type":"seen"}})).is_ok());
        assert!(check_widget_activity(
            &json!({"type":"event","event":{"type":"conversation:closed"}})
        )
        .is_err());
    }
}
