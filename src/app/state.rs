//! The application state: everything the adapters (`http`, `ui`) share, built once at start
//! (`startup::app_state`). Cheap to clone: everything heavy is behind an `Arc` or a pool.
//!
//! It lives here, below the adapters, so that both adapters and the use cases of `app` can
//! take it without importing each other. The engines below (`ingest`, `notify`) do not see it:
//! each takes its own small dependency struct.

use crate::{
    auth::{jwt::JwtKeys, rate_limit::LoginLimiter, session::UiKeys},
    clock::Clock,
    config::Settings,
    ingest::{limits::IngestLimits, token_cache::TokenCache, writer::Writer},
    notify::{
        ack::AckKeys,
        scheduler::{SchedulerDeps, SchedulerHealth},
        sender::Sender,
    },
};
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    /// Signing and verification keys for access tokens.
    pub jwt: Arc<JwtKeys>,
    /// The platform admin token; `None` disables the admin API.
    pub admin_token: Option<Arc<SecretString>>,
    pub login_limiter: Arc<LoginLimiter>,
    pub metrics: PrometheusHandle,
    /// What "now" is for activity and status.
    pub clock: Clock,
    /// The web UI's session and CSRF keys. Behind an `Arc`, like everything here that is not a
    /// handle already: axum clones the state for every request, and a by-value copy of the
    /// keys (with their `jsonwebtoken` validation sets) showed in the live-ingest profile.
    pub ui: Arc<UiKeys>,
    /// Sends notification e-mails from the outbox.
    pub sender: Arc<Sender>,
    /// Signs and checks the one-click acknowledgement links of alerts (derived from the same
    /// secret as the unsubscribe keys, under another label).
    pub ack: Arc<AckKeys>,
    /// The group-commit heartbeat writer.
    pub ingest: Writer,
    /// Ingest rate limits per agent token and per license.
    pub ingest_limits: Arc<IngestLimits>,
    /// Verified agent tokens, kept in step with the database by a listener.
    pub agent_tokens: Arc<TokenCache>,
    /// How the scheduler's ticks go (for `/readyz`).
    pub scheduler: Arc<SchedulerHealth>,
    /// Test sends of alert channels per tenant (`POST /channels/{id}/test`).
    pub channel_tests: Arc<crate::app::channels::TestLimiter>,
}

impl AppState {
    /// What the scheduler needs of the state, and nothing more.
    pub fn scheduler_deps(&self) -> SchedulerDeps {
        SchedulerDeps {
            pool: self.pool.clone(),
            clock: self.clock.clone(),
            sender: Arc::clone(&self.sender),
            heartbeat_retention_days: self.settings.retention.heartbeat_days,
            health: Arc::clone(&self.scheduler),
        }
    }
}
