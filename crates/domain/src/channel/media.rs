//! Media links (SPEC 7.3.5): a provider file that needs credentials is served by
//! `GET /channels/media/{integrationId}/{ref}?sig={sig}`, `ref` = base64url (no padding) of the
//! provider's reference, `sig` = base64url(HMAC-SHA256(K, "{integrationId}/{ref}")) with
//! K = HMAC-SHA256(the credentials-at-rest key, "switchboard media v1"). Links do not expire.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ids::IntegrationId;

type HmacSha256 = Hmac<Sha256>;

/// The label K is derived with.
const LABEL: &[u8] = b"switchboard media v1";

/// K, the key of media link signatures, from the credentials-at-rest key.
pub fn media_key(at_rest_key: &[u8]) -> [u8; 32] {
    hmac(at_rest_key, LABEL)
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `ref` of a provider reference.
pub fn encode_ref(reference: &str) -> String {
    URL_SAFE_NO_PAD.encode(reference.as_bytes())
}

/// The provider reference of a `ref`, `None` when it is not base64url of UTF-8.
pub fn decode_ref(encoded: &str) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(encoded.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// `sig` of `ref` for `integration`.
pub fn signature(key: &[u8; 32], integration: IntegrationId, encoded_ref: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac(key, format!("{integration}/{encoded_ref}").as_bytes()))
}

/// Whether `sig` is the signature of `ref` for `integration`, compared in constant time.
pub fn verify(key: &[u8; 32], integration: IntegrationId, encoded_ref: &str, sig: &str) -> bool {
    let Ok(given) = URL_SAFE_NO_PAD.decode(sig.as_bytes()) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(format!("{integration}/{encoded_ref}").as_bytes());
    mac.verify_slice(&given).is_ok()
}

/// The absolute link: `{public_url}/channels/media/{integration}/{ref}?sig={sig}`.
pub fn link(
    public_url: &str,
    key: &[u8; 32],
    integration: IntegrationId,
    reference: &str,
) -> String {
    let encoded = encode_ref(reference);
    let sig = signature(key, integration, &encoded);
    format!(
        "{}/channels/media/{integration}/{encoded}?sig={sig}",
        public_url.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_verifies_and_a_changed_one_does_not() {
        let key = media_key(b"at rest");
        let id = IntegrationId::new();
        let link = link("https://sb.example.com/", &key, id, "AgADBAAD");
        let (path, sig) = link.split_once("?sig=").unwrap();
        let encoded = path.rsplit('/').next().unwrap();
        assert_eq!(decode_ref(encoded).as_deref(), Some("AgADBAAD"));
        assert!(verify(&key, id, encoded, sig));
        assert!(!verify(&key, IntegrationId::new(), encoded, sig));
        assert!(!verify(&media_key(b"other"), id, encoded, sig));
        assert!(!verify(&key, id, encoded, "AAAA"));
        assert!(link.starts_with("https://sb.example.com/channels/media/"));
    }
}
