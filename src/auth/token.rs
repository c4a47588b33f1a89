//! Opaque secrets: API keys (`swk_...`) and agent tokens (`swa_...`).
//!
//! A secret is a prefix and 32 random bytes in base64url. Only its SHA-256 is stored: with
//! 256 bits of entropy a fast hash cannot be brute-forced, and lookups stay one index probe.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    ApiKey,
    Agent,
}

impl TokenKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::ApiKey => "swk_",
            Self::Agent => "swa_",
        }
    }

    /// Which kind of opaque token `raw` claims to be, by its prefix.
    pub fn of(raw: &str) -> Option<Self> {
        [Self::ApiKey, Self::Agent]
            .into_iter()
            .find(|k| raw.starts_with(k.prefix()))
    }
}

/// A freshly generated secret: shown to its owner once, then only its hash remains.
pub struct NewToken {
    pub plain: String,
    pub hash: Vec<u8>,
    /// The first characters, stored to tell keys apart in lists.
    pub display_prefix: String,
}

pub fn generate(kind: TokenKind) -> NewToken {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let plain = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes));
    let display_prefix = plain.chars().take(kind.prefix().len() + 6).collect();
    NewToken {
        hash: hash(&plain),
        plain,
        display_prefix,
    }
}

pub fn hash(plain: &str) -> Vec<u8> {
    Sha256::digest(plain.as_bytes()).to_vec()
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Hashing first makes the lengths equal, so the length is not leaked either.
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_their_prefix_and_hash() {
        let t = generate(TokenKind::Agent);
        assert!(t.plain.starts_with("swa_"));
        assert_eq!(t.plain.len(), 4 + 43);
        assert_eq!(t.hash, hash(&t.plain));
        assert!(t.plain.starts_with(&t.display_prefix));
        assert_ne!(generate(TokenKind::Agent).plain, t.plain);
        assert_eq!(TokenKind::of(&t.plain), Some(TokenKind::Agent));
        assert_eq!(TokenKind::of("swk_abc"), Some(TokenKind::ApiKey));
        assert_eq!(TokenKind::of("eyJ..."), None);
    }

    #[test]
    fn constant_time_eq_compares_contents() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
