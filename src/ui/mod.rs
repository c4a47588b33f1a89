//! The operators' web UI (SPEC section 8): server-rendered pages (askama templates compiled
//! into the binary), CSS and a little JS embedded, no CDN. Pages work without JS; the JS adds
//! only the 10-second refresh with its pause control and the copy buttons.
//!
//! Security: a session cookie (`session`), a CSRF token on every form, a strict
//! Content-Security-Policy (no inline script or style), and askama's escaping of all output.
//! Every page is tenant-scoped through the session; another tenant's id is a 404.

pub mod error;
pub mod pages;
pub mod session;

use crate::app::AppState;
use axum::{
    Router,
    http::{HeaderValue, header},
    routing::{get, post},
};
use tower_http::set_header::SetResponseHeaderLayer;

/// The route templates of the UI's pages (HTML, not part of the JSON API's contract).
pub const PAGES: &[&str] = &[
    "/",
    "/login",
    "/logout",
    "/licenses",
    "/licenses/new",
    "/licenses/{id}",
    "/licenses/{id}/edit",
    "/licenses/{id}/delete",
    "/licenses/{id}/notifications",
    "/licenses/{id}/agent-tokens",
    "/licenses/{id}/agent-tokens/{token_id}/revoke",
    "/users",
    "/users/{id}/role",
    "/users/{id}/delete",
    "/api-keys",
    "/api-keys/{id}/revoke",
    "/static/app.css",
    "/static/app.js",
];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::monitoring))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/licenses", post(pages::create_license))
        .route("/licenses/new", get(pages::new_license))
        .route("/licenses/{id}", get(pages::activity))
        .route(
            "/licenses/{id}/edit",
            get(pages::edit_license).post(pages::update_license),
        )
        .route("/licenses/{id}/delete", post(pages::delete_license))
        .route(
            "/licenses/{id}/notifications",
            get(pages::notification_page).post(pages::save_notifications),
        )
        .route(
            "/licenses/{id}/agent-tokens",
            post(pages::create_agent_token),
        )
        .route(
            "/licenses/{id}/agent-tokens/{token_id}/revoke",
            post(pages::revoke_agent_token),
        )
        .route("/users", get(pages::users).post(pages::create_user))
        .route("/users/{id}/role", post(pages::change_role))
        .route("/users/{id}/delete", post(pages::delete_user))
        .route(
            "/api-keys",
            get(pages::api_keys).post(pages::create_api_key),
        )
        .route("/api-keys/{id}/revoke", post(pages::revoke_api_key))
        .route("/static/app.css", get(pages::css))
        .route("/static/app.js", get(pages::js))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
}
