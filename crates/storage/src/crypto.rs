//! Encryption at rest (SPEC 3 "Credentials at rest"): AES-256-GCM under the key from the
//! configuration. A sealed value is `nonce (12 bytes) || ciphertext+tag`, with a fresh random
//! nonce per write. The associated data names the row the value belongs to, so a ciphertext
//! copied into another row fails to open instead of decrypting there.

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;

use crate::{Error, Result};

const NONCE_LEN: usize = 12;

/// An AES-256-GCM key (32 bytes). `Debug` does not print it.
#[derive(Clone)]
pub struct EncryptionKey(pub [u8; 32]);

impl EncryptionKey {
    /// A new random key, for a fresh install.
    pub fn generate() -> EncryptionKey {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        EncryptionKey(key)
    }

    /// Parses a key written as base64 (standard, padded or not, or URL-safe); `None` unless it
    /// is exactly 32 bytes.
    pub fn from_base64(text: &str) -> Option<EncryptionKey> {
        let text = text.trim().trim_end_matches('=');
        let bytes = STANDARD_NO_PAD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .ok()?;
        Some(EncryptionKey(bytes.try_into().ok()?))
    }

    /// The key of media link signatures derived from this key (SPEC 7.3.5).
    pub fn media_key(&self) -> [u8; 32] {
        switchboard_domain::channel::media::media_key(&self.0)
    }

    /// The key as standard padded base64 (44 characters), as `from_base64` reads it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey(..)")
    }
}

/// The cipher a `Store` seals and opens values with; cheap to clone.
#[derive(Clone)]
pub(crate) struct Cipher(Arc<Aes256Gcm>);

impl Cipher {
    pub(crate) fn new(key: &EncryptionKey) -> Cipher {
        Cipher(Arc::new(Aes256Gcm::new(&key.0.into())))
    }

    /// Encrypts `plain` for the row named by `aad`: `nonce || ciphertext`.
    pub(crate) fn seal(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .0
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
            .map_err(|_| Error::Db("encryption failed".to_owned()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what `seal` wrote for the same `aad`. Fails (as `Db`) on a wrong key or a
    /// tampered or misplaced value.
    pub(crate) fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::Db("encrypted value too short".to_owned()));
        }
        let (nonce, msg) = sealed.split_at(NONCE_LEN);
        self.0
            .decrypt(Nonce::from_slice(nonce), Payload { msg, aad })
            .map_err(|_| {
                Error::Db(
                    "cannot decrypt a stored value: wrong encryption key, or the value was altered"
                        .to_owned(),
                )
            })
    }
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens() {
        let cipher = Cipher::new(&EncryptionKey::generate());
        let a = cipher.seal(b"secret", b"row-1").unwrap();
        let b = cipher.seal(b"secret", b"row-1").unwrap();
        assert_ne!(a, b, "fresh nonce per write");
        assert_eq!(cipher.open(&a, b"row-1").unwrap(), b"secret");
        assert!(cipher.open(&a, b"row-2").is_err(), "bound to its row");
        let other = Cipher::new(&EncryptionKey::generate());
        assert!(other.open(&a, b"row-1").is_err(), "wrong key");
        assert!(cipher.open(&a[..5], b"row-1").is_err());
    }

    #[test]
    fn key_base64_round_trip() {
        let key = EncryptionKey::generate();
        let text = key.to_base64();
        assert_eq!(text.len(), 44);
        assert_eq!(EncryptionKey::from_base64(&text).unwrap().0, key.0);
        assert_eq!(
            EncryptionKey::from_base64(text.trim_end_matches('='))
                .unwrap()
                .0,
            key.0
        );
        let url = URL_SAFE_NO_PAD.encode(key.0);
        assert_eq!(EncryptionKey::from_base64(&url).unwrap().0, key.0);
        assert!(EncryptionKey::from_base64("c2hvcnQ=").is_none());
        assert!(EncryptionKey::from_base64("not base64!").is_none());
        assert_eq!(format!("{key:?}"), "EncryptionKey(..)");
    }
}
