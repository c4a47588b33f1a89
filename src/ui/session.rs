//! The web UI's session: an HttpOnly, SameSite=Lax cookie (Secure behind TLS) holding a JWT
//! with its own audience (`streamwatch-ui`, 12 h), checked against the user row on every
//! request like an access token (token version, role, suspension). Every form carries a CSRF
//! token derived from the session.

use crate::{
    auth::{jwt::JwtKeys, token::constant_time_eq},
    domain::Role,
    http::AppState,
};
use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

pub const COOKIE: &str = "sw_session";
pub const LOGIN_CSRF_COOKIE: &str = "sw_login_csrf";
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

pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A logged-in operator.
#[derive(Debug, Clone)]
pub struct UiSession {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub role: Role,
    pub email: String,
    pub tenant_name: String,
    pub tz: chrono_tz::Tz,
    /// The token to put in every form of this session.
    pub csrf: String,
}

impl UiSession {
    pub fn can_edit(&self) -> bool {
        self.role.at_least(Role::Admin)
    }

    pub fn is_owner(&self) -> bool {
        self.role == Role::Owner
    }

    pub fn check_csrf(&self, submitted: &str) -> bool {
        constant_time_eq(self.csrf.as_bytes(), submitted.as_bytes())
    }
}

impl FromRequestParts<AppState> for UiSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let to_login =
            || Redirect::to(&format!("/login?next={}", urlencode(&next))).into_response();
        let Some(token) = read_cookie(&parts.headers, COOKIE) else {
            return Err(to_login());
        };
        let Ok(claims) = state.ui.sessions.verify(token) else {
            return Err(to_login());
        };
        type Row = (Role, i32, String, String, String, Option<DateTime<Utc>>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT u.role, u.token_version, u.email, t.name, t.timezone, t.suspended_at
             FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.tenant_id = $1 AND u.id = $2",
        )
        .bind(claims.tid)
        .bind(claims.sub)
        .fetch_optional(&state.pool)
        .await
        .map_err(|e| crate::http::error::ApiError::from(e).into_response())?;
        let Some((role, version, email, tenant_name, tz, suspended)) = row else {
            return Err(to_login());
        };
        if version != claims.ver || suspended.is_some() {
            return Err(to_login());
        }
        Ok(Self {
            user_id: claims.sub,
            tenant_id: claims.tid,
            role,
            email,
            tenant_name,
            tz: tz.parse().unwrap_or(chrono_tz::UTC),
            csrf: state.ui.csrf_for(token),
        })
    }
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
