//! The web UI's session keys: a JWT with its own audience (`streamwatch-ui`, 12 h) for the
//! session cookie, and an HMAC key that derives each session's CSRF token. They live here, not
//! in `ui`, because the application state that holds them is built below the adapters.

use crate::auth::jwt::JwtKeys;
use axum::http::HeaderValue;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SESSION_TTL_SECONDS: i64 = 12 * 3600;

/// Keys of the UI: session tokens and CSRF.
#[derive(Clone)]
pub struct UiKeys {
    pub sessions: JwtKeys,
    csrf: Vec<u8>,
    /// Set `Secure` on cookies (the public URL is https).
    pub secure: bool,
}

impl std::fmt::Debug for UiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UiKeys([REDACTED])")
    }
}

impl UiKeys {
    pub fn new(secret: &[u8], issuer: &str, secure: bool) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"streamwatch csrf v1");
        Self {
            sessions: JwtKeys::new(secret, issuer, "streamwatch-ui", SESSION_TTL_SECONDS),
            csrf: mac.finalize().into_bytes().to_vec(),
            secure,
        }
    }

    /// The CSRF token of a session (or of a pre-login nonce).
    pub fn csrf_for(&self, session: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.csrf)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(session.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    pub fn cookie(&self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("sw_session=; Path=/; Max-Age=0"))
    }
}
