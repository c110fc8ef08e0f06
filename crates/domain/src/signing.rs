//! Integration-signed requests (SPEC 4, last part): a Direct integration signs a request with
//! its own Ed25519 private key instead of presenting a bearer token.
//!
//! - HTTP: headers `x-integration-id`, `x-timestamp` (Unix seconds) and `x-signature`, the
//!   base64 signature of `{timestamp}.{METHOD}.{path and query}.{body}`;
//! - websocket: query `iId`, `ts` and `sig`, the signature of `{iId}.{ts}`.
//!
//! The timestamp must be within [`WINDOW_SECS`] of the server's clock, so a captured request
//! cannot be replayed later; within the window, the API refuses a signature it has already
//! accepted.

use crate::keys;

/// How far `x-timestamp` may be from now, either way, in seconds.
pub const WINDOW_SECS: i64 = 300;

/// Why a signed request is refused (all 401/102).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("The timestamp must be Unix seconds.")]
    BadTimestamp,
    #[error("The timestamp is more than {WINDOW_SECS} seconds away from the server's clock.")]
    Stale,
    #[error("The signature does not verify with the integration's public key.")]
    BadSignature,
    #[error("This signature was already used; sign each request anew.")]
    Replayed,
}

/// The signed content of an HTTP request.
pub fn request_message(
    timestamp: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut m =
        Vec::with_capacity(timestamp.len() + method.len() + path_and_query.len() + body.len() + 3);
    m.extend_from_slice(timestamp.as_bytes());
    m.push(b'.');
    m.extend_from_slice(method.to_ascii_uppercase().as_bytes());
    m.push(b'.');
    m.extend_from_slice(path_and_query.as_bytes());
    m.push(b'.');
    m.extend_from_slice(body);
    m
}

/// The signed content of a websocket upgrade: `{iId}.{ts}`.
pub fn socket_message(integration_id: &str, timestamp: &str) -> Vec<u8> {
    format!("{integration_id}.{timestamp}").into_bytes()
}

/// Parses `timestamp` (Unix seconds) and checks it is within the window of `now_secs`.
pub fn check_timestamp(timestamp: &str, now_secs: i64) -> Result<i64, SignatureError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if now_secs.abs_diff(ts) > WINDOW_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    Ok(ts)
}

/// Verifies `signature_b64` over `message` with the integration's public key (hex).
pub fn verify(public_hex: &str, message: &[u8], signature_b64: &str) -> Result<(), SignatureError> {
    if keys::verify_b64(public_hex, message, signature_b64.trim()) {
        Ok(())
    } else {
        Err(SignatureError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_over_the_documented_content_verifies() {
        let pair = keys::generate();
        let msg = request_message("1700000000", "post", "/inbound/x?a=1", b"{\"k\":1}");
        assert_eq!(msg, b"1700000000.POST./inbound/x?a=1.{\"k\":1}".to_vec());
        let sig = keys::sign_b64(&pair.private, &msg).unwrap();
        assert_eq!(verify(&pair.public, &msg, &sig), Ok(()));
        let other = request_message("1700000000", "POST", "/inbound/x?a=2", b"{\"k\":1}");
        assert_eq!(
            verify(&pair.public, &other, &sig),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(&pair.public, &msg, "not base64"),
            Err(SignatureError::BadSignature)
        );
        let stranger = keys::generate();
        assert_eq!(
            verify(&stranger.public, &msg, &sig),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn the_window_is_three_hundred_seconds_either_way() {
        assert_eq!(check_timestamp("1000", 1300), Ok(1000));
        assert_eq!(check_timestamp("1300", 1000), Ok(1300));
        assert_eq!(check_timestamp("999", 1300), Err(SignatureError::Stale));
        assert_eq!(check_timestamp("1301", 1000), Err(SignatureError::Stale));
        assert_eq!(
            check_timestamp("12.5", 1000),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(check_timestamp("", 1000), Err(SignatureError::BadTimestamp));
        assert_eq!(
            check_timestamp("-9223372036854775808", 1000),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn socket_content_is_id_dot_timestamp() {
        assert_eq!(socket_message("abc", "12"), b"abc.12".to_vec());
    }
}
