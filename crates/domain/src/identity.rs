//! Identity (SPEC 2): client scopes, client secrets and how they are kept.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The scope of an API client and of the tokens issued to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `portal-api`: tenant administration.
    Portal,
    /// `engine-api`: conversations, activities, websockets.
    Engine,
}

impl Scope {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Portal => "portal-api",
            Self::Engine => "engine-api",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "portal-api" => Some(Self::Portal),
            "engine-api" => Some(Self::Engine),
            _ => None,
        }
    }
}

/// A new client secret: 32 random bytes, base64url (43 characters).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// How a secret is stored: SHA-256, hex. A secret has 256 bits of entropy, so a fast hash is
/// enough (no dictionary to attack), and it keeps token issuance cheap.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a stored secret shows of itself: its first 6 characters and `...`.
pub fn secret_preview(secret: &str) -> String {
    let head: String = secret.chars().take(6).collect();
    format!("{head}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hashed() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_eq!(hash_secret(&a), hash_secret(&a.clone()));
        assert_ne!(hash_secret(&a), hash_secret(&b));
        assert_eq!(secret_preview("abcdefghij"), "abcdef...");
    }

    #[test]
    fn a_secret_is_stored_as_its_sha256_in_lowercase_hex() {
        // FIPS 180-2's test vector for "abc": the stored form is exactly this digest, so a
        // constant, a truncated or a differently encoded hash all fail.
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(hash_secret("abc"), hash_secret("abd"));
    }

    #[test]
    fn secrets_are_base64url_without_padding() {
        for _ in 0..64 {
            let s = generate_secret();
            assert!(s
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
            assert_eq!(URL_SAFE_NO_PAD.decode(&s).unwrap().len(), 32);
        }
    }
}
