//! The scheduler (tokio-cron-scheduler): every minute, one [`tick`]: refresh the shared clock,
//! sweep, and deliver what is due; once an hour of the tick also maintains the heartbeat
//! history (partitions and retention).
//!
//! Every replica runs it. tokio-cron-scheduler has no coordination between replicas, so
//! PostgreSQL decides: the sweep takes a transaction-level advisory lock (one decides, the
//! others skip), and senders claim outbox rows with `FOR UPDATE SKIP LOCKED`.

use crate::{clock::Clock, store};
use chrono::{DateTime, Timelike, Utc};
use sqlx::PgPool;
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};
use tokio_cron_scheduler::{Job, JobScheduler};

/// What a tick needs: the database, the shared clock, the outbox sender and the retention; and
/// where it reports how the last tick went.
#[derive(Clone)]
pub struct SchedulerDeps {
    pub pool: PgPool,
    pub clock: Clock,
    pub sender: Arc<super::sender::Sender>,
    pub heartbeat_retention_days: u32,
    pub health: Arc<SchedulerHealth>,
}

/// How the scheduler's ticks go, for readiness and the metrics.
#[derive(Debug, Default)]
pub struct SchedulerHealth {
    /// The last tick failed (an error or a panic); the next minute retries.
    failing: AtomicBool,
}

impl SchedulerHealth {
    /// The last tick succeeded (or none ran yet).
    pub fn is_ready(&self) -> bool {
        !self.failing.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct TickReport {
    pub sweep: super::sweep::SweepReport,
    pub delivery: super::sender::DeliveryReport,
}

/// One scheduler step at the clock's now. Public so that tests and `POST /admin/sweep` run it
/// directly instead of waiting for the minute.
pub async fn tick(state: &SchedulerDeps) -> anyhow::Result<TickReport> {
    state.clock.refresh(&state.pool).await?;
    let now = state.clock.now();
    let sweep = super::sweep::sweep(&state.pool, now).await?;
    let delivery = state.sender.deliver_due(&state.pool, now).await?;
    Ok(TickReport { sweep, delivery })
}

async fn maintenance(state: &SchedulerDeps, now: DateTime<Utc>) {
    if let Err(e) =
        store::heartbeats::maintain(&state.pool, now, state.heartbeat_retention_days).await
    {
        tracing::warn!(error = %e, "heartbeat history maintenance failed; retrying next hour");
    }
}

/// Starts the per-minute job. The returned scheduler must be kept alive; `shutdown` it on exit.
pub async fn start(state: SchedulerDeps) -> anyhow::Result<JobScheduler> {
    let scheduler = JobScheduler::new().await?;
    let job = Job::new_async("0 * * * * *", move |_, _| {
        let state = state.clone();
        Box::pin(async move {
            // Its own task, so that a panic is caught here, counted and retried next minute
            // like an error, instead of silently ending this minute's run.
            let ticked = {
                let state = state.clone();
                tokio::spawn(async move { tick(&state).await }).await
            };
            let ok = match ticked {
                Ok(Ok(report)) => {
                    tracing::debug!(?report, "scheduler tick");
                    true
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "scheduler tick failed; the next minute retries");
                    false
                }
                Err(e) => {
                    tracing::error!(error = %e, "scheduler tick panicked; the next minute retries");
                    metrics::counter!("scheduler_restarts_total").increment(1);
                    false
                }
            };
            state.health.failing.store(!ok, Ordering::Relaxed);
            // Hourly by the wall clock (a simulated clock may jump over minute 0).
            if Utc::now().minute() == 0 {
                maintenance(&state, state.clock.now()).await;
            }
        })
    })?;
    scheduler.add(job).await?;
    scheduler.start().await?;
    Ok(scheduler)
}
