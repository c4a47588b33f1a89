//! The scheduler (tokio-cron-scheduler): every minute, one [`tick`]: refresh the shared clock,
//! sweep, and deliver what is due; once an hour of the tick also runs [`maintenance`]: the
//! heartbeat history (partitions and retention) and the pruning of silent agent instances.
//!
//! Every replica runs it. tokio-cron-scheduler has no coordination between replicas, so
//! PostgreSQL decides: the sweep takes a transaction-level advisory lock (one decides, the
//! others skip), and senders claim outbox rows with `FOR UPDATE SKIP LOCKED`.

use crate::{clock::Clock, store, store::ingest::PRUNE_SILENT_INSTANCES_AFTER_DAYS};
use anyhow::Context;
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

/// The hourly maintenance at `now`: the heartbeat history's partitions and retention, then the
/// agent instances silent for [`PRUNE_SILENT_INSTANCES_AFTER_DAYS`] days are pruned (which frees
/// their places under the instance cap, `ingest.max_instances_per_license`). Public so that
/// tests run it directly. Each step takes its own locks, so every replica may run it.
pub async fn maintenance(
    pool: &PgPool,
    now: DateTime<Utc>,
    heartbeat_retention_days: u32,
) -> anyhow::Result<()> {
    store::heartbeats::maintain(pool, now, heartbeat_retention_days)
        .await
        .context("heartbeat history maintenance")?;
    // Checked: a simulated clock may be anywhere; at the start of time nothing is that old.
    let cutoff = chrono::TimeDelta::try_days(PRUNE_SILENT_INSTANCES_AFTER_DAYS)
        .and_then(|d| now.checked_sub_signed(d));
    if let Some(cutoff) = cutoff {
        let pruned = store::ingest::prune_silent_instances(pool, cutoff)
            .await
            .context("pruning silent agent instances")?;
        if pruned > 0 {
            tracing::info!(pruned, "agent instances silent for a week pruned");
        }
    }
    Ok(())
}

/// How long a tick that found the database unavailable keeps retrying within its minute.
const RETRY_WITHIN_MINUTE: std::time::Duration = std::time::Duration::from_secs(45);
/// How often.
const RETRY_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

enum TickOutcome {
    Ok,
    /// The database was unavailable (`db::is_unavailable`): worth retrying soon.
    Unavailable,
    Failed,
}

/// One tick in its own task, so that a panic is caught here, counted and retried next minute
/// like an error, instead of silently ending this minute's run.
async fn run_tick(state: &SchedulerDeps) -> TickOutcome {
    let ticked = {
        let state = state.clone();
        tokio::spawn(async move { tick(&state).await }).await
    };
    match ticked {
        Ok(Ok(report)) => {
            tracing::debug!(?report, "scheduler tick");
            TickOutcome::Ok
        }
        Ok(Err(e)) => {
            let unavailable = e
                .chain()
                .filter_map(|c| c.downcast_ref::<sqlx::Error>())
                .any(crate::db::is_unavailable);
            tracing::warn!(error = %e, unavailable, "scheduler tick failed; retrying");
            if unavailable {
                TickOutcome::Unavailable
            } else {
                TickOutcome::Failed
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "scheduler tick panicked; the next minute retries");
            metrics::counter!("scheduler_restarts_total").increment(1);
            TickOutcome::Failed
        }
    }
}

/// Starts the per-minute job. The returned scheduler must be kept alive; `shutdown` it on exit.
pub async fn start(state: SchedulerDeps) -> anyhow::Result<JobScheduler> {
    let scheduler = JobScheduler::new().await?;
    let job = Job::new_async("0 * * * * *", move |_, _| {
        let state = state.clone();
        Box::pin(async move {
            // A tick that failed because the database was unavailable (a failover, a
            // restart) is retried within the minute, every few seconds: readiness (`/readyz`
            // counts a failing scheduler) then comes back within seconds of the primary, not
            // at the next minute. Other failures wait for the next minute.
            let started = std::time::Instant::now();
            let ok = loop {
                match run_tick(&state).await {
                    TickOutcome::Ok => break true,
                    TickOutcome::Failed => break false,
                    TickOutcome::Unavailable if started.elapsed() < RETRY_WITHIN_MINUTE => {
                        tokio::time::sleep(RETRY_EVERY).await;
                    }
                    TickOutcome::Unavailable => break false,
                }
            };
            state.health.failing.store(!ok, Ordering::Relaxed);
            // Hourly by the wall clock (a simulated clock may jump over minute 0).
            if Utc::now().minute() == 0
                && let Err(e) = maintenance(
                    &state.pool,
                    state.clock.now(),
                    state.heartbeat_retention_days,
                )
                .await
            {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "maintenance failed; retrying next hour"
                );
            }
        })
    })?;
    scheduler.add(job).await?;
    scheduler.start().await?;
    Ok(scheduler)
}
