//! The operators' web UI (SPEC section 8): server-rendered pages (askama templates compiled
//! into the binary), CSS and a little JS embedded, no CDN. Pages work without JS; the JS adds
//! only the 10-second refresh with its pause control and the copy buttons.
//!
//! Security: a session cookie (`session`), a CSRF token on every form, a strict
//! Content-Security-Policy (no inline script or style), and askama's escaping of all output.
//! Every page is tenant-scoped through the session; another tenant's id is a 404.
//!
//! # Layout
//!
//! One module per page, each with its handlers, its template's struct and its form:
//! `monitoring`, `activity` (Activity Status, its snooze and Acknowledge buttons), `notifications` (Setup
//! Notification), `licenses` (the license form, delete, agent tokens), `maintenance`
//! (maintenance windows), `channels` (alert channels), `users`, `api_keys`, `login` (login and logout). `page` holds what they share (navigation, message pages, the CSRF and role check,
//! the tenant transaction, time formatting), `form` the checking and parsing of posted forms,
//! `session` the cookie and CSRF tokens, `assets` the embedded CSS and JS.

pub mod activity;
pub mod api_keys;
pub mod assets;
pub mod channels;
pub mod error;
pub mod form;
pub mod licenses;
pub mod login;
pub mod maintenance;
pub mod monitoring;
pub mod notifications;
pub mod page;
pub mod session;
pub mod users;

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
    "/licenses/{id}/snooze",
    "/licenses/{id}/snooze/end",
    "/licenses/{id}/acknowledge",
    "/licenses/{id}/cameras/{camera_id}/snapshot",
    "/maintenance-windows",
    "/maintenance-windows/{id}/delete",
    "/users",
    "/users/{id}/role",
    "/users/{id}/delete",
    "/api-keys",
    "/api-keys/{id}/revoke",
    "/channels",
    "/channels/new",
    "/channels/{id}/edit",
    "/channels/{id}/delete",
    "/channels/{id}/test",
    "/static/app.css",
    "/static/app.js",
];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(monitoring::monitoring))
        .route("/login", get(login::login_page).post(login::login))
        .route("/logout", post(login::logout))
        .route("/licenses", post(licenses::create_license))
        .route("/licenses/new", get(licenses::new_license))
        .route("/licenses/{id}", get(activity::activity))
        .route(
            "/licenses/{id}/edit",
            get(licenses::edit_license).post(licenses::update_license),
        )
        .route("/licenses/{id}/delete", post(licenses::delete_license))
        .route(
            "/licenses/{id}/notifications",
            get(notifications::notification_page).post(notifications::save_notifications),
        )
        .route(
            "/licenses/{id}/agent-tokens",
            post(licenses::create_agent_token),
        )
        .route(
            "/licenses/{id}/agent-tokens/{token_id}/revoke",
            post(licenses::revoke_agent_token),
        )
        .route("/licenses/{id}/snooze", post(activity::snooze))
        .route("/licenses/{id}/snooze/end", post(activity::end_snooze))
        .route("/licenses/{id}/acknowledge", post(activity::acknowledge))
        .route(
            "/licenses/{id}/cameras/{camera_id}/snapshot",
            get(activity::camera_snapshot),
        )
        .route(
            "/maintenance-windows",
            get(maintenance::maintenance_page).post(maintenance::create_window),
        )
        .route(
            "/maintenance-windows/{id}/delete",
            post(maintenance::delete_window),
        )
        .route("/users", get(users::users).post(users::create_user))
        .route("/users/{id}/role", post(users::change_role))
        .route("/users/{id}/delete", post(users::delete_user))
        .route(
            "/api-keys",
            get(api_keys::api_keys).post(api_keys::create_api_key),
        )
        .route("/api-keys/{id}/revoke", post(api_keys::revoke_api_key))
        .route(
            "/channels",
            get(channels::channels_page).post(channels::create_channel),
        )
        .route("/channels/new", get(channels::new_channel))
        .route(
            "/channels/{id}/edit",
            get(channels::edit_channel).post(channels::update_channel),
        )
        .route("/channels/{id}/delete", post(channels::delete_channel))
        .route("/channels/{id}/test", post(channels::test_channel))
        .route("/static/app.css", get(assets::css))
        .route("/static/app.js", get(assets::js))
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
        .layer(axum::middleware::from_fn_with_state(state, session::slide))
}
