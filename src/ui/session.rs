//! The web UI's session: an HttpOnly, SameSite=Lax cookie (Secure behind TLS) holding a JWT
//! with its own audience (`streamwatch-ui`), checked against the user row on every request like
//! an access token (token version, role, suspension). It slides: [`slide`] reissues it while
//! the operator works, within the bound after login (see `auth::session`). Every form carries
//! a CSRF token derived from the session.

use crate::{
    app::{
        AppState,
        identity::{self, IdentityError},
    },
    auth::token::constant_time_eq,
    domain::Role,
};
use axum::{
    extract::{FromRequestParts, Request, State},
    http::{HeaderMap, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use chrono::Utc;
use uuid::Uuid;

pub const COOKIE: &str = "sw_session";
pub const LOGIN_CSRF_COOKIE: &str = "sw_login_csrf";
pub use crate::auth::session::UiKeys;

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
        let user = match identity::current_user(state, &claims).await {
            Ok(user) => user,
            Err(IdentityError::Failed(e)) => return Err(super::error::plain(&e)),
            Err(_) => return Err(to_login()),
        };
        Ok(Self {
            user_id: user.user_id,
            tenant_id: user.tenant_id,
            role: user.role,
            email: user.email,
            tenant_name: user.tenant_name,
            tz: user.timezone.parse().unwrap_or(chrono_tz::UTC),
            csrf: state.ui.csrf_for_session(&claims),
        })
    }
}

/// Middleware of the UI router: when the request's session is half spent, the response
/// carries the reissued session cookie. A response that sets the session cookie itself (login,
/// logout) is left alone. The token is only checked for its signature and expiry here; whether
/// its user still holds it (token version, suspension) is the [`UiSession`] extractor's job, and
/// a reissued token keeps the version it had, so sliding cannot revive a revoked session.
pub async fn slide(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let reissued = read_cookie(request.headers(), COOKIE)
        .and_then(|token| state.ui.sessions.verify(token).ok())
        .and_then(|claims| state.ui.slide(&claims, Utc::now().timestamp()));
    let mut response = next.run(request).await;
    if let Some((token, max_age)) = reissued {
        let prefix = format!("{COOKIE}=");
        let sets_session = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|v| v.as_bytes().starts_with(prefix.as_bytes()));
        if !sets_session {
            let cookie = state.ui.cookie(COOKIE, &token, max_age);
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    response
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
