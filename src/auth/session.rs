//! The web UI's session keys: a JWT with its own audience (`streamwatch-ui`) for the session
//! cookie, and an HMAC key that derives each session's CSRF token. They live here, not in `ui`,
//! because the application state that holds them is built below the adapters.
//!
//! Sessions slide within a bound: a session token lives [`SESSION_IDLE_SECONDS`] and is
//! reissued (same login time in `iat`, a later `exp`) once half of that has passed, so an
//! operator who keeps working stays logged in, one who walks away is logged out after an hour,
//! and nobody stays logged in longer than [`SESSION_MAX_SECONDS`] after typing the password.

use crate::{auth::jwt::Claims, auth::jwt::JwtKeys, domain::Role};
use axum::http::HeaderValue;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// How long a UI session lasts without a request.
pub const SESSION_IDLE_SECONDS: i64 = 3600;
/// How long a UI session can last at most after the login, however busy.
pub const SESSION_MAX_SECONDS: i64 = 12 * 3600;

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
            sessions: JwtKeys::new(secret, issuer, "streamwatch-ui", SESSION_IDLE_SECONDS),
            csrf: mac.finalize().into_bytes().to_vec(),
            secure,
        }
    }

    /// A new session for a login at `now`: the token and its cookie's `Max-Age`.
    pub fn start_session(
        &self,
        user_id: Uuid,
        tenant_id: Uuid,
        role: Role,
        token_version: i32,
        now: i64,
    ) -> anyhow::Result<(String, i64)> {
        self.session_token(user_id, tenant_id, role, token_version, now, now)
    }

    /// The session's token reissued at `now` with a later expiry, when at least half of its
    /// idle time has passed and the bound after login still leaves room to extend it; `None`
    /// when it is young enough or cannot be extended.
    pub fn slide(&self, claims: &Claims, now: i64) -> Option<(String, i64)> {
        let half_spent = claims.exp.saturating_sub(now) < SESSION_IDLE_SECONDS / 2;
        let bound = claims.iat.saturating_add(SESSION_MAX_SECONDS);
        if !half_spent || claims.exp >= bound {
            return None;
        }
        self.session_token(
            claims.sub,
            claims.tid,
            claims.role,
            claims.ver,
            claims.iat,
            now,
        )
        .ok()
    }

    /// A session token whose login time is `login_at`, valid until an idle time after `now`
    /// or the bound after login, whichever comes first.
    fn session_token(
        &self,
        user_id: Uuid,
        tenant_id: Uuid,
        role: Role,
        token_version: i32,
        login_at: i64,
        now: i64,
    ) -> anyhow::Result<(String, i64)> {
        let exp = now
            .saturating_add(SESSION_IDLE_SECONDS)
            .min(login_at.saturating_add(SESSION_MAX_SECONDS));
        let token =
            self.sessions
                .issue_until(user_id, tenant_id, role, token_version, login_at, exp)?;
        Ok((token, exp.saturating_sub(now).max(0)))
    }

    /// The CSRF token of a logged-in session. It is derived from what stays the same while
    /// the session slides (user, login time, token version), so a form opened before the
    /// session token was reissued still submits.
    pub fn csrf_for_session(&self, claims: &Claims) -> String {
        self.csrf_for(&format!(
            "session:{}:{}:{}",
            claims.sub, claims.iat, claims.ver
        ))
    }

    /// The CSRF token of a pre-login nonce (or of any other value).
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

#[cfg(test)]
mod tests {
    use super::*;

    const LOGIN: i64 = 1_800_000_000;

    fn keys() -> UiKeys {
        UiKeys::new(&[9u8; 32], "streamwatch", false)
    }

    fn session(keys: &UiKeys, login_at: i64, now: i64) -> Claims {
        let user = Uuid::from_u128(1);
        let (token, _) = keys
            .session_token(user, Uuid::from_u128(2), Role::Admin, 3, login_at, now)
            .unwrap();
        // Decoded without the expiry check (`verify` checks against the wall clock, and these
        // times are made up).
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.validate_exp = false;
        validation.set_audience(&["streamwatch-ui"]);
        jsonwebtoken::decode::<Claims>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(&[9u8; 32]),
            &validation,
        )
        .unwrap()
        .claims
    }

    #[test]
    fn a_new_session_lasts_the_idle_time() {
        let k = keys();
        let c = session(&k, LOGIN, LOGIN);
        assert_eq!(c.iat, LOGIN);
        assert_eq!(c.exp, LOGIN + SESSION_IDLE_SECONDS);
    }

    #[test]
    fn a_young_session_is_not_reissued() {
        let k = keys();
        let c = session(&k, LOGIN, LOGIN);
        assert!(k.slide(&c, LOGIN + SESSION_IDLE_SECONDS / 2 - 1).is_none());
    }

    #[test]
    fn a_half_spent_session_slides_and_keeps_its_login_time_and_csrf() {
        let k = keys();
        let c = session(&k, LOGIN, LOGIN);
        let now = LOGIN + SESSION_IDLE_SECONDS / 2 + 1;
        let (_, max_age) = k.slide(&c, now).expect("reissued");
        assert_eq!(max_age, SESSION_IDLE_SECONDS);
        let later = session(&k, LOGIN, now);
        assert_eq!(later.iat, LOGIN);
        assert_eq!(later.exp, now + SESSION_IDLE_SECONDS);
        assert_eq!(k.csrf_for_session(&c), k.csrf_for_session(&later));
    }

    #[test]
    fn no_session_slides_past_the_bound_after_login() {
        let k = keys();
        let bound = LOGIN + SESSION_MAX_SECONDS;
        // Twenty minutes before the bound, a token that ends in five: reissued only up to
        // the bound.
        let now = bound - 20 * 60;
        let c = session(&k, LOGIN, now - 55 * 60);
        let (_, max_age) = k.slide(&c, now).expect("reissued up to the bound");
        assert_eq!(max_age, 20 * 60);
        let capped = session(&k, LOGIN, now);
        assert_eq!(capped.exp, bound);
        // A token that already ends at the bound is not reissued again.
        assert!(k.slide(&capped, bound - 60).is_none());
    }

    #[test]
    fn a_new_login_or_a_password_change_gives_another_csrf_token() {
        let k = keys();
        let a = session(&k, LOGIN, LOGIN);
        let b = session(&k, LOGIN + 1, LOGIN + 1);
        assert_ne!(k.csrf_for_session(&a), k.csrf_for_session(&b));
        let mut c = a.clone();
        c.ver += 1;
        assert_ne!(k.csrf_for_session(&a), k.csrf_for_session(&c));
    }
}
