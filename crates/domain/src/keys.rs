//! Ed25519 key pairs of Direct and System integrations and their signatures (SPEC 3, 4, 5.5).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// A key pair as the API shows it: 64 upper-case hex characters each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPairHex {
    /// The 32-byte public key.
    pub public: String,
    /// The 32-byte private seed.
    pub private: String,
}

/// A fresh random key pair.
pub fn generate() -> KeyPairHex {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    KeyPairHex {
        public: hex_upper(key.verifying_key().as_bytes()),
        private: hex_upper(&key.to_bytes()),
    }
}

/// Upper-case hex.
pub fn hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Decodes hex (either case) into exactly 32 bytes.
pub fn hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// The signing key of a hex seed.
pub fn signing_key(private_hex: &str) -> Option<SigningKey> {
    hex32(private_hex).map(|seed| SigningKey::from_bytes(&seed))
}

/// Base64 (standard, padded) Ed25519 signature of `message` by the hex seed.
pub fn sign_b64(private_hex: &str, message: &[u8]) -> Option<String> {
    signing_key(private_hex).map(|k| STANDARD.encode(k.sign(message).to_bytes()))
}

/// Checks a base64 signature of `message` against a hex public key.
pub fn verify_b64(public_hex: &str, message: &[u8], signature_b64: &str) -> bool {
    let Some(pk) = hex32(public_hex).and_then(|b| VerifyingKey::from_bytes(&b).ok()) else {
        return false;
    };
    let Ok(sig) = STANDARD.decode(signature_b64.trim()) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&sig) else {
        return false;
    };
    pk.verify(message, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pair_signs_and_verifies() {
        let kp = generate();
        assert_eq!(kp.public.len(), 64);
        assert!(kp
            .public
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        let sig = sign_b64(&kp.private, b"hello").unwrap();
        assert!(verify_b64(&kp.public, b"hello", &sig));
        assert!(!verify_b64(&kp.public, b"hellp", &sig));
        assert!(!verify_b64(&generate().public, b"hello", &sig));
    }

    #[test]
    fn hex_round_trip() {
        let bytes = [0xABu8; 32];
        assert_eq!(hex32(&hex_upper(&bytes)), Some(bytes));
        assert_eq!(hex32("zz"), None);
    }
}
