//! Authentication of the compat routes (SPEC 8.3): `Authorization: Bearer <JWS>`, HS256 only,
//! the key named by `kid` (an account or app key, never the server's Ed25519 key), its secret's
//! HMAC compared in constant time, then the token's times and scope. A deleted key's tokens are
//! refused at once on the node that deleted it and, through a cache of [`KEY_CACHE_TTL`],
//! within 5 s on every other node.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use poem::http::header;
use poem::Request;
use switchboard_domain::smooch::keys::{self, KeyKind, SmoochKey, TimeRules, TokenScope};

use super::{Caller, Scope};
use crate::error::ApiError;
use crate::rate_limit::{Key, Limit};
use crate::state::AppState;

/// How long a node trusts what it read of a key.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(2);

/// Most keys a node remembers; past it the cache starts afresh.
const CACHE_MAX: usize = 10_000;

/// The keys this node read lately (a missing key too), by id.
#[derive(Default)]
pub struct SmoochKeyCache(Mutex<HashMap<String, (Option<SmoochKey>, Instant)>>);

impl SmoochKeyCache {
    /// The key of this id, read from the store unless read less than [`KEY_CACHE_TTL`] ago.
    pub async fn get(&self, state: &AppState, key_id: &str) -> Result<Option<SmoochKey>, ApiError> {
        if let Ok(cache) = self.0.lock() {
            if let Some((key, at)) = cache.get(key_id) {
                if at.elapsed() < KEY_CACHE_TTL {
                    return Ok(key.clone());
                }
            }
        }
        let key = state.store.find_smooch_key(key_id).await?;
        if let Ok(mut cache) = self.0.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(key_id.to_owned(), (key.clone(), Instant::now()));
        }
        Ok(key)
    }

    /// Forgets a key (deleted on this node): its tokens are refused at once here.
    pub fn forget(&self, key_id: &str) {
        if let Ok(mut cache) = self.0.lock() {
            cache.remove(key_id);
        }
    }
}

fn refused(why: impl std::fmt::Display) -> ApiError {
    ApiError::unauthorized(&format!("The token is invalid: {why}."))
}

/// Verifies the request's token: the caller, or 401 (code 102); past the key's rate limit 429.
pub async fn authenticate(state: &AppState, req: &Request) -> Result<Caller, ApiError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or_else(|| {
            ApiError::unauthorized("A bearer token (an HS256 JWT signed with a key) is required.")
        })?;
    let unverified = keys::read(token).map_err(refused)?;
    let kind = KeyKind::of(&unverified.kid).ok_or_else(|| refused(keys::Refusal::UnknownKey))?;
    let key = state
        .smooch_keys
        .get(state, &unverified.kid)
        .await?
        .ok_or_else(|| refused(keys::Refusal::UnknownKey))?;
    let rules = TimeRules {
        now: chrono::Utc::now().timestamp(),
        max_age: state.config.smooch_token_max_age,
    };
    let scope = unverified
        .verify(kind, &key.secret, rules)
        .map_err(refused)?;
    let scope = match (scope, key.hub_id) {
        (TokenScope::Account, None) => Scope::Account,
        (TokenScope::App, Some(hub)) => Scope::App { hub },
        (TokenScope::AppUser(user_id), Some(hub)) => Scope::AppUser { hub, user_id },
        _ => return Err(refused(keys::Refusal::Scope)),
    };
    let id = u128::from_str_radix(&key.key_id[4..], 16).unwrap_or_default();
    state
        .limiter
        .check(Limit::Portal, Key::SmoochKey(id))
        .await?;
    Ok(Caller {
        tenant: key.tenant_id,
        scope,
        key_id: key.key_id,
    })
}
