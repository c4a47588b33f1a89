//! Login and logout. The login form has no session yet, so its CSRF token is the MAC of a
//! random nonce kept in a short-lived cookie (double submit).

use super::{
    page::{CsrfForm, Nav, failure, guard, with_tenant},
    session::{self, COOKIE, LOGIN_CSRF_COOKIE, UiSession},
};
use crate::{
    app::{
        AppError, AppState,
        login::{self, LoginError},
    },
    auth::{rate_limit::ClientAddr, token::constant_time_eq},
    domain::{Role, status::human_duration},
    store::users,
};
use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use chrono::Utc;
use rand::RngCore;
use serde::Deserialize;

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub nav: Option<Nav>,
    pub error: Option<String>,
    pub email: String,
    pub next: String,
    pub csrf: String,
}

#[derive(Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

/// Only local paths: `next` must not send people to another site after login.
pub(super) fn safe_next(next: Option<&str>) -> String {
    match next {
        // Browsers drop tabs and newlines from URLs, so `/\t/evil.test` would become
        // `//evil.test`: refuse any control or white-space character.
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn login_form(
    state: &AppState,
    error: Option<String>,
    email: String,
    next: String,
    status: StatusCode,
) -> Response {
    // Login CSRF: a random nonce in a cookie, its MAC in the form (double submit).
    let mut nonce = [0u8; 16];
    rand::rng().fill_bytes(&mut nonce);
    let nonce = hex::encode(nonce);
    let page = LoginPage {
        nav: None,
        error,
        email,
        next,
        csrf: state.ui.csrf_for(&nonce),
    };
    let mut response = (status, page).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        state.ui.cookie(LOGIN_CSRF_COOKIE, &nonce, 3600),
    );
    response
}

pub async fn login_page(State(state): State<AppState>, Query(q): Query<NextParam>) -> Response {
    login_form(
        &state,
        None,
        String::new(),
        safe_next(q.next.as_deref()),
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
    /// Missing counts as wrong (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    let nonce = session::read_cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if nonce.is_empty() || !constant_time_eq(state.ui.csrf_for(nonce).as_bytes(), f.csrf.as_bytes())
    {
        return login_form(
            &state,
            Some("The form expired. Please try again.".to_owned()),
            f.email,
            next,
            StatusCode::FORBIDDEN,
        );
    }
    let bad = |state: &AppState, email: String| {
        login_form(
            state,
            Some("Wrong e-mail address or password.".to_owned()),
            email,
            next.clone(),
            StatusCode::UNAUTHORIZED,
        )
    };
    let who = match login::login(&state, &f.email, f.password, addr).await {
        Ok(who) => who,
        Err(LoginError::BadCredentials) => return bad(&state, f.email),
        Err(LoginError::TooManyAttempts(wait)) => {
            let text = format!(
                "Too many attempts. Try again in {}.",
                human_duration(wait.as_secs() as i64)
            );
            return login_form(
                &state,
                Some(text),
                f.email,
                next,
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
        Err(LoginError::Suspended) => {
            return login_form(
                &state,
                Some("Your organisation is suspended.".to_owned()),
                f.email,
                next,
                StatusCode::FORBIDDEN,
            );
        }
        Err(LoginError::Failed(e)) => return failure(e),
    };
    let Ok((token, max_age)) = state.ui.start_session(
        who.user_id,
        who.tenant_id,
        who.role,
        who.token_version,
        Utc::now().timestamp(),
    ) else {
        return failure(AppError::Internal(anyhow::anyhow!("issuing a session")));
    };
    let mut response = Redirect::to(&next).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, state.ui.cookie(COOKIE, &token, max_age));
    headers.append(
        header::SET_COOKIE,
        state.ui.cookie(LOGIN_CSRF_COOKIE, "", 0),
    );
    response
}

pub async fn logout(
    State(state): State<AppState>,
    s: UiSession,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Viewer) {
        return r;
    }
    // Revoked on the server, not only forgotten by this browser: a copied cookie dies too. The
    // token version is the one revocation the sessions have, so this ends the user's other
    // sessions and access tokens as well (as "log out everywhere" does).
    let revoked = with_tenant(&state, &s, async |tx| {
        users::bump_token_version(tx, s.tenant_id, s.user_id).await
    })
    .await;
    if let Err(e) = revoked {
        return failure(e);
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, state.ui.cookie(COOKIE, "", 0));
    response
}
