//! Wiring: one [`Agent`] runs every part until shutdown.
//!
//! ```text
//!   sources (one task per camera) ──writes──▶ CameraMetrics
//!        ▲ └── a picture when asked ──▶ snapshot sampler (one per camera): picture state,
//!        └──────── asks every interval ─┘  JPEG in memory and in state_dir/snapshots/
//!                                                │ observe (health, liveness, condition, picture)
//!            ┌───────────────────────────────────┼─────────────────────────────┐
//!   monitor (1 Hz): condition changes       pusher: heartbeat every interval   local API
//!     ├─▶ webhook workers (signed POSTs,      ├─▶ state (seq) + spool (fsync)   /status/ /monitor
//!     │    disk cache, retries)               └─▶ POST batches to the server    /api/... and /
//!     └─▶ wakes the pusher early
//!   uploader (every 5 s): changed snapshots ─▶ PUT to the server (snapshot spool while away)
//! ```
//!
//! Shutdown is a [`CancellationToken`] passed in (main cancels it on SIGINT/SIGTERM): every task
//! watches it and returns, and [`Agent::run`] waits for them (bounded) before it returns.
//! Nothing needs flushing at shutdown: whatever was not acknowledged is already in the spool.

use crate::cameras::Cameras;
use crate::config::Config;
use crate::local_api::{self, ApiState};
use crate::push::{Pusher, SharedPushStatus, Store};
use crate::snapshots::Sampler;
use crate::spool::{Spool, SpoolLimits};
use crate::state::AgentState;
use crate::upload::Uploader;
use crate::webhooks::{
    self, Dispatcher, Event, EventAgent, EventPayload, Transitions, WebhookBoard,
};
use anyhow::Context;
use chrono::Utc;
use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};
use streamwatch_protocol::{AgentInfo, WebhookStatus};
use tokio::sync::Notify;
use uuid::Uuid;

/// The shutdown signal [`run`] takes (re-exported so that callers need not depend on
/// `tokio-util` themselves).
pub use tokio_util::sync::CancellationToken;

/// How often the monitor looks at every camera (webhook events, early heartbeats).
pub const MONITOR_INTERVAL: Duration = Duration::from_secs(1);
/// How long shutdown waits for the tasks.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The software version sent with heartbeats and shown locally.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs an agent with `config` until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    Agent::build(config).await?.run(shutdown).await
}

/// An agent that has opened its state and bound its port, ready to run.
pub struct Agent {
    config: Config,
    listener: tokio::net::TcpListener,
    cameras: Arc<Cameras>,
    board: Arc<WebhookBoard>,
    pusher: Pusher,
    instance_id: Uuid,
}

impl Agent {
    /// Opens the state directory (identity, sequence, spool) and binds the local API.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let state_dir = config.agent.state_dir.clone();
        let limits = SpoolLimits::new(config.agent.spool_max_bytes, config.agent.spool_max_age);
        let store = tokio::task::spawn_blocking(move || -> anyhow::Result<Store> {
            let mut state = AgentState::open(&state_dir)?;
            let spool = Spool::open(&state_dir.join("spool"), limits, Utc::now())?;
            // The spool may hold seqs the counter does not know about (a restored backup, a
            // hand-edited file): never hand them out again.
            state.ensure_above(spool.last_seq())?;
            Ok(Store { state, spool })
        })
        .await
        .context("opening the state directory panicked")??;
        let instance_id = store.state.instance_id();
        if store.state.is_new() {
            tracing::info!(%instance_id, "created a new agent instance");
        }
        let pending = store.spool.pending();
        if pending > 0 {
            tracing::info!(
                pending,
                "heartbeats from an earlier run are waiting in the spool"
            );
        }
        let listener = tokio::net::TcpListener::bind(config.agent.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} ([agent] listen): is another agent running?",
                    config.agent.listen
                )
            })?;
        let board = Arc::new(WebhookBoard::new(!config.webhooks.is_empty()));
        let cameras = Arc::new(Cameras::new(config.cameras.clone(), board.clone()));
        let agent_info = AgentInfo {
            instance_id,
            version: VERSION.to_owned(),
            hostname: config.agent.hostname.clone(),
            sent_at: None,
        };
        let pusher = Pusher::new(
            config.central.clone(),
            agent_info,
            store,
            cameras.clone(),
            config.agent.heartbeat_interval,
            config.agent.min_heartbeat_gap,
        )?;
        Ok(Self {
            config,
            listener,
            cameras,
            board,
            pusher,
            instance_id,
        })
    }

    /// Where the local API listens (useful with port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn instance_id(&self) -> Uuid {
        self.instance_id
    }

    /// The pusher's status (spool, last push), shared with the local API.
    pub fn push_status(&self) -> SharedPushStatus {
        self.pusher.status()
    }

    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            config,
            listener,
            cameras,
            board,
            pusher,
            instance_id,
        } = self;
        let mut tasks = Vec::new();

        let snapshot_dir = config.agent.state_dir.join(crate::snapshots::SNAPSHOT_DIR);
        for entry in &cameras.entries {
            tasks.push(crate::sources::spawn(
                &entry.config,
                entry.metrics.clone(),
                entry.picture.slot.clone(),
                shutdown.child_token(),
            ));
            if entry.takes_snapshots() {
                let sampler = Sampler::new(
                    entry.config.id.clone(),
                    entry.config.picture.clone(),
                    entry.config.snapshot_interval,
                    entry.picture.clone(),
                    snapshot_dir.clone(),
                );
                tasks.push(tokio::spawn(
                    sampler.run(entry.config.snapshot_interval, shutdown.child_token()),
                ));
            }
        }

        let (dispatcher, webhook_tasks) = webhooks::start(
            &config.webhooks,
            &config.agent.state_dir.join("webhooks"),
            &board,
            &shutdown,
        )?;
        tasks.extend(webhook_tasks);

        let early = Arc::new(Notify::new());
        let agent = EventAgent {
            instance_id,
            hostname: config.agent.hostname.clone(),
            version: VERSION.to_owned(),
        };
        tasks.push(tokio::spawn(monitor(
            cameras.clone(),
            dispatcher,
            agent,
            early.clone(),
            shutdown.clone(),
        )));

        let upload_cameras = cameras.clone();
        let cameras_with_snapshots = cameras
            .entries
            .iter()
            .filter(|e| e.takes_snapshots())
            .count();
        let api = ApiState {
            cameras,
            version: VERSION.to_owned(),
            instance_id,
            hostname: config.agent.hostname.clone(),
            started_at: Utc::now(),
            central: config.central.clone(),
            push: pusher.status(),
            clock: Arc::new(Utc::now),
        };
        let router = local_api::router(Arc::new(api));
        let api_shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(api_shutdown.cancelled_owned())
                .await
            {
                tracing::error!(error = %e, "the local API stopped");
            }
        }));

        tasks.push(tokio::spawn(pusher.run(early, shutdown.clone())));
        if cameras_with_snapshots > 0 {
            let uploader = Uploader::new(
                config.central.clone(),
                &config.agent.state_dir,
                &upload_cameras,
            )?;
            tasks.push(tokio::spawn(uploader.run(shutdown.child_token())));
        }

        tracing::info!(
            cameras = config.cameras.len(),
            webhooks = config.webhooks.len(),
            listen = %config.agent.listen,
            central = %streamwatch_protocol::redact_url(config.central.url.as_str()),
            "agent running"
        );
        shutdown.cancelled().await;
        tracing::info!("shutting down");
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            tracing::warn!("some tasks did not stop within {SHUTDOWN_GRACE:?}; leaving them");
        }
        Ok(())
    }
}

/// Looks at every camera once a second: condition changes become webhook events and wake the
/// pusher for an early heartbeat, as do changes of a camera's webhook status (failing makes
/// the camera degraded on the server). Also keeps each camera's fps history filled.
async fn monitor(
    cameras: Arc<Cameras>,
    dispatcher: Dispatcher,
    agent: EventAgent,
    early: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut transitions = Transitions::default();
    let mut webhook_status: HashMap<String, WebhookStatus> = HashMap::new();
    let mut interval = tokio::time::interval(MONITOR_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let now = Utc::now();
        let mut changed = false;
        for entry in &cameras.entries {
            let hooks = cameras.board.report(&entry.config.id).status;
            if webhook_status
                .insert(entry.config.id.clone(), hooks)
                .is_some_and(|before| before != hooks)
            {
                changed = true;
            }
            let o = entry.observe(now);
            let Some((kind, previous)) = transitions.observe(&entry.config.id, o.condition) else {
                continue;
            };
            changed = true;
            tracing::info!(camera = %entry.config.id, event = kind.as_str(), "camera changed");
            let payload = EventPayload {
                id: Uuid::new_v4(),
                event: kind.as_str().to_owned(),
                camera_id: entry.config.id.clone(),
                at: now,
                condition: o.condition.as_str().to_owned(),
                previous: previous.map(|p| p.as_str().to_owned()),
                status: o.snapshot.status,
                health: o.health,
                is_live: o.is_live,
                last_frame_at: o.snapshot.last_frame_at,
                last_error: o.snapshot.last_error.clone(),
                url: entry.config.display_url(),
                agent: agent.clone(),
            };
            match Event::new(kind, &payload) {
                Ok(event) => dispatcher.dispatch(&event),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "cannot build a webhook event");
                }
            }
        }
        if changed {
            early.notify_one();
        }
    }
}
