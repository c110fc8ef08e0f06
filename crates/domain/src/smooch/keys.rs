//! Keys and tokens of the Smooch-compatible API (SPEC 8.3).
//!
//! A key is `{ keyId, secret }`: `act_` (account key, the whole tenant) or `app_` (app key, one
//! hub) + 32 lower-case hex, and 32 random bytes as base64url without padding. Tokens are
//! compact JWTs signed with HMAC-SHA256 by the UTF-8 bytes of the secret (as smooch-core signs
//! them), named by `kid`. Only `HS256` is read here, whatever the token says: the algorithm is
//! fixed by the route family, so `none`, RSA, EC or EdDSA tokens are refused by construction.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use serde_json::{Map, Value};
use sha2::Sha256;

/// Leeway of `exp` and `nbf`, seconds.
pub const LEEWAY_SECS: i64 = 60;

/// A key as stored (its secret opened).
#[derive(Clone, PartialEq, Eq)]
pub struct SmoochKey {
    pub key_id: String,
    pub tenant_id: crate::ids::TenantId,
    /// The app of an app key; `None` for an account key.
    pub hub_id: Option<crate::ids::HubId>,
    pub name: String,
    pub secret: String,
    /// Epoch milliseconds.
    pub created: i64,
}

impl std::fmt::Debug for SmoochKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmoochKey")
            .field("key_id", &self.key_id)
            .field("hub_id", &self.hub_id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Which kind of key a `keyId` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// `act_…`: the whole tenant.
    Account,
    /// `app_…`: one app (hub).
    App,
}

impl KeyKind {
    const fn prefix(self) -> &'static str {
        match self {
            Self::Account => "act_",
            Self::App => "app_",
        }
    }

    /// The kind of a key id of the right shape (prefix + 32 lower-case hex), else `None`.
    pub fn of(key_id: &str) -> Option<KeyKind> {
        let kind = if key_id.starts_with("act_") {
            Self::Account
        } else if key_id.starts_with("app_") {
            Self::App
        } else {
            return None;
        };
        let hex = &key_id[4..];
        (hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then_some(kind)
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A new key id of `kind`.
pub fn new_key_id(kind: KeyKind) -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{}{}", kind.prefix(), hex_lower(&bytes))
}

/// A new key secret: 32 random bytes, base64url without padding (43 characters).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A secret as the key lists show it: its first 6 characters and `...`.
pub fn masked_secret(secret: &str) -> String {
    let head: String = secret.chars().take(6).collect();
    format!("{head}...")
}

/// A new app token: 25 characters of `[a-z0-9]` (public, grants nothing).
pub fn new_app_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..25)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A new webhook secret: 40 lower-case hex characters (SPEC 8.7).
pub fn new_webhook_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex_lower(&bytes)
}

/// Reads a key's `name` from a body (an account key's, SPEC 8.3, or an app key's, 8.5):
/// required, a string of 1 to [`crate::limits::MAX_NAME_LEN`] characters, not blank.
pub fn read_name(body: &Map<String, Value>) -> Result<String, crate::Violations> {
    let mut v = crate::Violations::default();
    let name = crate::json::string(body, "", "name", true, &mut v);
    if name
        .as_deref()
        .is_some_and(|n| n.trim().is_empty() || n.chars().count() > crate::limits::MAX_NAME_LEN)
    {
        v.push(crate::Violation::out_of_range(
            "name",
            &format!(
                "must be 1 to {} characters long",
                crate::limits::MAX_NAME_LEN
            ),
        ));
    }
    match (name, v.is_empty()) {
        (Some(n), true) => Ok(n),
        _ => Err(v),
    }
}

/// What a token may reach (SPEC 8.3's table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenScope {
    /// `account` (or its alias `appMaker`), signed by an account key.
    Account,
    /// `app`, signed by an app key.
    App,
    /// `appUser`, signed by an app key, for the app user with this `userId`.
    AppUser(String),
}

/// Why a token is refused; every case answers 401 (code 102).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's algorithm must be HS256")]
    Algorithm,
    #[error("the token has no 'kid' naming a key")]
    NoKid,
    #[error("the token names no key")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token has no valid 'scope' for its key")]
    Scope,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYet,
    #[error("the token has no 'iat' or is older than the server allows")]
    TooOld,
}

/// A token split and its header read: what the key lookup needs.
#[derive(Debug)]
pub struct Unverified<'a> {
    /// The `kid` of the header.
    pub kid: String,
    signed: &'a str,
    payload: &'a str,
    signature: &'a str,
}

/// Splits a compact JWS and reads its header: `alg` must be `HS256` and `kid` a non-empty
/// string; `typ` is ignored.
pub fn read(token: &str) -> Result<Unverified<'_>, Refusal> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let header: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(h.trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(Refusal::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(Refusal::Algorithm);
    }
    let kid = match header.get("kid").and_then(Value::as_str) {
        Some(k) if !k.is_empty() => k.to_owned(),
        _ => return Err(Refusal::NoKid),
    };
    Ok(Unverified {
        kid,
        signed: &token[..h.len() + 1 + p.len()],
        payload: p,
        signature: s,
    })
}

fn mac(secret: &str, signed: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(signed.as_bytes());
    mac
}

/// The checks of a token's times.
#[derive(Clone, Copy, Debug)]
pub struct TimeRules {
    /// Now, Unix seconds.
    pub now: i64,
    /// `SWITCHBOARD_SMOOCH_TOKEN_MAX_AGE`: 0 = off, else `iat` is required and may be at most
    /// this many seconds old.
    pub max_age: i64,
}

impl<'a> Unverified<'a> {
    /// Checks the signature with the key's `secret` (constant time), then the times and the
    /// scope for a key of `kind`.
    pub fn verify(
        &self,
        kind: KeyKind,
        secret: &str,
        rules: TimeRules,
    ) -> Result<TokenScope, Refusal> {
        let signature = URL_SAFE_NO_PAD
            .decode(self.signature.trim_end_matches('='))
            .map_err(|_| Refusal::Signature)?;
        mac(secret, self.signed)
            .verify_slice(&signature)
            .map_err(|_| Refusal::Signature)?;
        let claims: Map<String, Value> = URL_SAFE_NO_PAD
            .decode(self.payload.trim_end_matches('='))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(Refusal::Malformed)?;
        let time = |name: &str| -> Result<Option<i64>, Refusal> {
            match claims.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .or_else(|| v.as_f64().map(|f| f as i64))
                    .map(Some)
                    .ok_or(Refusal::Malformed),
            }
        };
        if let Some(exp) = time("exp")? {
            if rules.now > exp + LEEWAY_SECS {
                return Err(Refusal::Expired);
            }
        }
        if let Some(nbf) = time("nbf")? {
            if rules.now + LEEWAY_SECS < nbf {
                return Err(Refusal::NotYet);
            }
        }
        if rules.max_age > 0 {
            match time("iat")? {
                Some(iat) if rules.now - iat <= rules.max_age => {}
                _ => return Err(Refusal::TooOld),
            }
        }
        let scope = claims.get("scope").and_then(Value::as_str);
        match (kind, scope) {
            (KeyKind::Account, Some("account" | "appMaker")) => Ok(TokenScope::Account),
            (KeyKind::App, Some("app")) => Ok(TokenScope::App),
            (KeyKind::App, Some("appUser")) => match claims.get("userId").and_then(Value::as_str) {
                Some(user) if !user.is_empty() => Ok(TokenScope::AppUser(user.to_owned())),
                _ => Err(Refusal::Scope),
            },
            _ => Err(Refusal::Scope),
        }
    }
}

/// Signs `claims` as an HS256 JWT named `kid` (the header is `{"alg":"HS256","typ":"JWT","kid"}`,
/// as `GET …/keys/{keyId}/jwt` answers and smooch-core makes them).
pub fn sign(kid: &str, secret: &str, claims: &Value) -> String {
    let header = serde_json::json!({ "alg": "HS256", "typ": "JWT", "kid": kid });
    let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
    let tag = mac(secret, &out).finalize().into_bytes();
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(tag));
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const RULES: TimeRules = TimeRules {
        now: 1_000_000,
        max_age: 0,
    };

    #[test]
    fn key_ids_and_secrets_have_their_shapes() {
        let act = new_key_id(KeyKind::Account);
        assert_eq!(KeyKind::of(&act), Some(KeyKind::Account));
        assert_eq!(act.len(), 36);
        assert_eq!(KeyKind::of(&new_key_id(KeyKind::App)), Some(KeyKind::App));
        assert_eq!(KeyKind::of("app_ABCDEF0123456789abcdef0123456789"), None);
        assert_eq!(KeyKind::of("app_0123"), None);
        assert_eq!(KeyKind::of("key_0123456789abcdef0123456789abcdef"), None);
        assert_eq!(new_secret().len(), 43);
        assert_eq!(masked_secret("abcdefghij"), "abcdef...");
        let token = new_app_token();
        assert_eq!(token.len(), 25);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        let hook = new_webhook_secret();
        assert_eq!(hook.len(), 40);
        assert!(hook
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn a_key_name_is_required_and_not_blank() {
        let body = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(read_name(&body(json!({ "name": "ops" }))).unwrap(), "ops");
        for bad in [
            json!({}),
            json!({ "name": " " }),
            json!({ "name": 3 }),
            json!({ "name": "x".repeat(201) }),
        ] {
            assert!(read_name(&body(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_signed_token_verifies_with_its_scope() {
        let t = sign("act_x", "s3cret", &json!({ "scope": "appMaker" }));
        let u = read(&t).unwrap();
        assert_eq!(u.kid, "act_x");
        assert_eq!(
            u.verify(KeyKind::Account, "s3cret", RULES),
            Ok(TokenScope::Account)
        );
        assert_eq!(
            u.verify(KeyKind::Account, "other", RULES),
            Err(Refusal::Signature)
        );
        // An account key cannot sign `app`, an app key not `account`.
        assert_eq!(u.verify(KeyKind::App, "s3cret", RULES), Err(Refusal::Scope));
        let t = sign("app_x", "k", &json!({ "scope": "appUser", "userId": "u1" }));
        assert_eq!(
            read(&t).unwrap().verify(KeyKind::App, "k", RULES),
            Ok(TokenScope::AppUser("u1".into()))
        );
        let t = sign("app_x", "k", &json!({ "scope": "appUser", "userId": "" }));
        assert_eq!(
            read(&t).unwrap().verify(KeyKind::App, "k", RULES),
            Err(Refusal::Scope)
        );
        let t = sign("app_x", "k", &json!({ "userId": "u" }));
        assert_eq!(
            read(&t).unwrap().verify(KeyKind::App, "k", RULES),
            Err(Refusal::Scope)
        );
    }

    #[test]
    fn times_are_enforced_when_present() {
        let at = |claims: Value, rules: TimeRules| {
            read(&sign("app_x", "k", &claims))
                .unwrap()
                .verify(KeyKind::App, "k", rules)
        };
        let now = RULES.now;
        assert!(at(json!({ "scope": "app", "exp": now - 30 }), RULES).is_ok());
        assert_eq!(
            at(json!({ "scope": "app", "exp": now - 61 }), RULES),
            Err(Refusal::Expired)
        );
        assert_eq!(
            at(json!({ "scope": "app", "nbf": now + 61 }), RULES),
            Err(Refusal::NotYet)
        );
        let strict = TimeRules { now, max_age: 300 };
        assert_eq!(at(json!({ "scope": "app" }), strict), Err(Refusal::TooOld));
        assert_eq!(
            at(json!({ "scope": "app", "iat": now - 301 }), strict),
            Err(Refusal::TooOld)
        );
        assert!(at(json!({ "scope": "app", "iat": now - 10 }), strict).is_ok());
        assert_eq!(
            at(json!({ "scope": "app", "exp": "soon" }), RULES),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn only_hs256_with_a_kid_is_read() {
        let b = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        for alg in ["none", "RS256", "ES256", "EdDSA", "HS512"] {
            let t = format!("{}.{}.", b(json!({ "alg": alg, "kid": "k" })), b(json!({})));
            assert_eq!(read(&t).unwrap_err(), Refusal::Algorithm, "{alg}");
        }
        let t = format!("{}.{}.x", b(json!({ "alg": "HS256" })), b(json!({})));
        assert_eq!(read(&t).unwrap_err(), Refusal::NoKid);
        assert_eq!(read("a.b").unwrap_err(), Refusal::Malformed);
        assert_eq!(read("").unwrap_err(), Refusal::Malformed);
    }
}
