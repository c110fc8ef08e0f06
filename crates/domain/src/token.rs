//! Access tokens (SPEC 2): compact JWTs signed with EdDSA (Ed25519) by the server's own key.
//!
//! A small encoder over ed25519-dalek rather than a JWT crate: only one algorithm is ever
//! accepted, so `alg` confusion cannot happen by construction.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::identity::Scope;
use crate::ids::{ClientId, SecretId, TenantId};

const HEADER: &str = r#"{"alg":"EdDSA","typ":"JWT"}"#;

/// The claims of an access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Tenant.
    pub tid: TenantId,
    /// Client (also `sub`).
    pub sub: ClientId,
    /// `portal-api` or `engine-api`.
    pub scope: String,
    /// The client secret the token was issued from; revoking it revokes the token.
    pub sid: SecretId,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
}

impl Claims {
    /// The scope, when it is one we know.
    pub fn scope(&self) -> Option<Scope> {
        Scope::parse(&self.scope)
    }
}

/// Why a token was refused; every case answers 401/102.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's algorithm is not EdDSA")]
    Algorithm,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token has expired")]
    Expired,
}

/// Signs the claims into a compact JWT.
pub fn encode(key: &SigningKey, claims: &Claims) -> String {
    encode_json(key, claims)
}

/// Signs any claims into a compact EdDSA JWT (the access tokens, and WebChat's session tokens
/// with their own claims).
pub fn encode_json<T: Serialize>(key: &SigningKey, claims: &T) -> String {
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let mut out = String::with_capacity(256);
    out.push_str(&URL_SAFE_NO_PAD.encode(HEADER));
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let sig = key.sign(out.as_bytes());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig.to_bytes()));
    out
}

/// Verifies a compact JWT: EdDSA only, signature by `key`, not expired at `now` (Unix seconds).
pub fn decode(key: &VerifyingKey, token: &str, now: i64) -> Result<Claims, TokenError> {
    let claims: Claims = decode_json(key, token)?;
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// Verifies a compact JWT (EdDSA only, signature by `key`) and reads its claims as `T`; the
/// caller checks their times.
pub fn decode_json<T: serde::de::DeserializeOwned>(
    key: &VerifyingKey,
    token: &str,
) -> Result<T, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Malformed)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("EdDSA") {
        return Err(TokenError::Algorithm);
    }
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| TokenError::Malformed)?;
    let sig = Signature::from_slice(&sig).map_err(|_| TokenError::Malformed)?;
    let signed = &token[..h.len() + 1 + p.len()];
    key.verify(signed.as_bytes(), &sig)
        .map_err(|_| TokenError::Signature)?;
    URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            tid: TenantId::new(),
            sub: ClientId::new(),
            scope: "portal-api".into(),
            sid: SecretId::new(),
            iat: 100,
            exp,
            jti: "j".into(),
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let c = claims(200);
        let t = encode(&key, &c);
        assert_eq!(decode(&key.verifying_key(), &t, 150), Ok(c));
        assert_eq!(
            decode(&key.verifying_key(), &t, 200),
            Err(TokenError::Expired)
        );
        let other = SigningKey::from_bytes(&[8u8; 32]);
        assert_eq!(
            decode(&other.verifying_key(), &t, 150),
            Err(TokenError::Signature)
        );
        assert_eq!(
            decode(&key.verifying_key(), "a.b", 150),
            Err(TokenError::Malformed)
        );
        // Same payload and signature under an `alg: none` header is refused.
        let mut parts: Vec<&str> = t.split('.').collect();
        let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        parts[0] = &none;
        assert_eq!(
            decode(&key.verifying_key(), &parts.join("."), 150),
            Err(TokenError::Algorithm)
        );
    }
}
