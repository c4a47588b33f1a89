//! Building and running the application: the door end-to-end tests use (`Application` on
//! port 0) and the one `streamwatch serve` uses.

use crate::{
    app::AppState,
    auth::{jwt::JwtKeys, rate_limit::LoginLimiter, session::UiKeys},
    config::{Environment, Settings},
    db, http,
    ingest::{
        limits::IngestLimits,
        token_cache::{self, TokenCache},
        writer::{Writer, WriterConfig},
    },
    notify::{
        ack::AckKeys, email::UnsubscribeKeys, mailer::Mailer, outbound::Outbound, sender::Sender,
    },
    store, telemetry,
};
use anyhow::Context;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::net::TcpListener;

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Connects to PostgreSQL, applies migrations if configured, and binds the listen address.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = db::connect(&settings).await?;
        if settings.database.migrate_on_start {
            db::migrate(&pool).await?;
        }
        Self::build_with_pool(settings, pool).await
    }

    /// Like `build`, with a pool the caller made (tests: one fresh database per test).
    pub async fn build_with_pool(settings: Settings, pool: PgPool) -> anyhow::Result<Self> {
        let state = app_state(settings, pool)?;
        let listener = TcpListener::bind(state.settings.http.addr)
            .await
            .with_context(|| {
                format!(
                    "binding {} (STREAMWATCH__HTTP__ADDR)",
                    state.settings.http.addr
                )
            })?;
        Ok(Self { listener, state })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops accepting and lets in-flight requests
    /// finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        // History partitions must exist before heartbeats arrive; the scheduler keeps them up.
        self.state.clock.refresh(&self.state.pool).await?;
        store::heartbeats::maintain(
            &self.state.pool,
            self.state.clock.now(),
            self.state.settings.retention.heartbeat_days,
        )
        .await
        .context("creating heartbeat history partitions")?;
        // Every minute: sweep, deliver, and (hourly) maintain the history. Every replica runs
        // it; PostgreSQL coordinates them (see notify::scheduler).
        let mut scheduler = crate::notify::scheduler::start(self.state.scheduler_deps()).await?;
        tracing::info!(%addr, "listening");
        let app = router(self.state);
        axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("HTTP server")?;
        scheduler.shutdown().await?;
        Ok(())
    }
}

/// The whole application's router: the JSON API and the web UI, with every layer. This is the
/// one place that knows both adapters.
pub fn router(state: AppState) -> axum::Router {
    let ui = crate::ui::router(state.clone());
    http::router_with(state, ui)
}

/// Everything handlers share, built once from configuration.
pub fn app_state(settings: Settings, pool: PgPool) -> anyhow::Result<AppState> {
    let ingest = Writer::spawn(
        &pool,
        WriterConfig {
            queue_capacity: settings.ingest.queue_capacity,
            queue_bytes: settings.ingest.queue_bytes,
            writers: settings.ingest.writers,
            max_batch_heartbeats: settings.ingest.max_batch_heartbeats,
            max_instances_per_license: settings.ingest.max_instances_per_license,
            faults: settings.ingest.faults,
        },
    );
    // Bypassed until its listener is connected and has heard itself (see ingest::token_cache);
    // without the listener, for good.
    let agent_tokens = Arc::new(TokenCache::default());
    if settings.ingest.agent_token_cache {
        token_cache::spawn_listener(
            pool.clone(),
            Arc::clone(&agent_tokens),
            settings.ingest.token_listener_faults.clone(),
        );
    }
    let secret = match &settings.auth.jwt_secret {
        Some(secret) => secret.expose_secret().as_bytes().to_vec(),
        None => {
            // Settings::validate refuses this in production; in development a random secret
            // keeps things working, at the price of tokens that die with the process.
            anyhow::ensure!(
                settings.environment != Environment::Production,
                "production requires STREAMWATCH__AUTH__JWT_SECRET"
            );
            tracing::warn!(
                "no STREAMWATCH__AUTH__JWT_SECRET: using a random one; access tokens will not survive a restart"
            );
            let mut bytes = vec![0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            bytes
        }
    };
    let auth = &settings.auth;
    let ttl = i64::try_from(auth.access_token_ttl_seconds).unwrap_or(3600);
    let jwt = JwtKeys::new(&secret, &auth.jwt_issuer, &auth.jwt_audience, ttl);
    let login_limiter = LoginLimiter::new(
        Duration::from_secs(auth.login_window_seconds),
        auth.login_max_failures_per_account,
        auth.login_max_attempts_per_address,
    );
    let mailer = match (&settings.smtp.url, settings.environment) {
        (Some(url), _) => Mailer::smtp(url.expose_secret())?,
        (None, Environment::Development) => {
            tracing::info!(folder = %settings.smtp.mailbox_dir, "no STREAMWATCH__SMTP__URL: e-mails go to the development mailbox folder");
            Mailer::Folder(settings.smtp.mailbox_dir.clone().into())
        }
        (None, Environment::Production) => {
            tracing::error!(
                "no STREAMWATCH__SMTP__URL in production: notification e-mails cannot be sent until it is set"
            );
            Mailer::Unconfigured
        }
    };
    let sender = Sender {
        mailer,
        from: settings
            .smtp
            .from
            .parse()
            .context("STREAMWATCH__SMTP__FROM")?,
        public_url: settings.public_url(),
        unsubscribe: UnsubscribeKeys::new(&secret),
        outbound: Outbound::new(settings.channels.allow_private_targets),
        ack: AckKeys::new(&secret),
    };
    let ui = UiKeys::new(
        &secret,
        &auth.jwt_issuer,
        settings.public_url().starts_with("https://"),
    );
    Ok(AppState {
        ui: Arc::new(ui),
        ack: Arc::new(AckKeys::new(&secret)),
        sender: Arc::new(sender),
        pool,
        admin_token: auth.admin_token.clone().map(|t: SecretString| Arc::new(t)),
        jwt: Arc::new(jwt),
        login_limiter: Arc::new(login_limiter),
        metrics: telemetry::prometheus(),
        clock: if settings.clock.simulated {
            crate::clock::Clock::simulated()
        } else {
            crate::clock::Clock::system()
        },
        ingest,
        ingest_limits: Arc::new(IngestLimits::new(
            settings.ingest.requests_per_token_per_minute,
            settings.ingest.requests_per_license_per_minute,
        )),
        agent_tokens,
        scheduler: Arc::default(),
        channel_tests: Arc::default(),
        settings: Arc::new(settings),
    })
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (what systemd and container runtimes send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
