//! The sweep: decides which notification e-mails are due and writes them to the outbox, in one
//! transaction, under a transaction-level advisory lock.
//!
//! Every replica runs the sweep every minute. Only one at a time gets the lock; the others
//! skip that minute, which costs nothing because the winner sweeps everything due. Even if two
//! sweeps did decide the same e-mail, the outbox's unique key (episode, e-mail, recipient)
//! would insert it once.
//!
//! The sweep reads only licenses whose `next_check_at` has come (a partial index), so its cost
//! follows what is due, not how many licenses exist. Its SQL is in `store::notifications`.

use super::alive;
use crate::{
    domain::notify_policy::{self, Decision, OpenEpisode, Settings},
    store::{
        self,
        notifications::{self, SweepWrites},
    },
};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

/// Licenses decided per transaction; a backlog is worked off over the following sweeps.
pub const MAX_PER_SWEEP: i64 = 20_000;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Another replica held the sweep lock; this one did nothing.
    pub skipped: bool,
    pub examined: usize,
    pub opened: usize,
    pub reminders: usize,
    pub closed: usize,
    /// Outbox rows written (one per recipient).
    pub emails: usize,
}

/// One sweep at `now`: record that the service is alive, then (if this replica gets the lock)
/// decide every due license. Public so that tests and `POST /admin/sweep` drive it directly.
pub async fn sweep(pool: &PgPool, now: DateTime<Utc>) -> Result<SweepReport, sqlx::Error> {
    alive::record(pool, now, None).await?;
    let mut tx = pool.begin().await?;
    if !notifications::try_lock_sweep(&mut tx).await? {
        return Ok(SweepReport {
            skipped: true,
            ..SweepReport::default()
        });
    }
    let candidates = notifications::due_candidates(&mut tx, now, MAX_PER_SWEEP).await?;
    let mut report = SweepReport {
        examined: candidates.len(),
        ..SweepReport::default()
    };
    if candidates.is_empty() {
        tx.commit().await?;
        return Ok(report);
    }
    // Alive spans from the oldest baseline any candidate could need.
    let oldest = candidates
        .iter()
        .filter_map(|c| c.baseline_at.or(c.last_activity_at.max(c.enabled_at)))
        .min()
        .unwrap_or(now);
    let alive = store::alive::spans_since(pool, oldest).await?;

    let mut w = SweepWrites::default();
    for c in &candidates {
        let settings = Settings {
            enabled: c.enabled,
            inactivity_interval: Duration::seconds(i64::from(c.inactivity_interval_seconds)),
            notification_interval: Duration::seconds(i64::from(c.notification_interval_seconds)),
            notify_on_recovery: c.notify_on_recovery,
            enabled_at: c.enabled_at.unwrap_or(now),
        };
        let episode = match (c.episode_id, c.opened_at, c.baseline_at, c.last_sent) {
            (Some(_), Some(opened_at), Some(baseline), Some(last_sent)) => Some(OpenEpisode {
                opened_at,
                baseline,
                last_sent,
            }),
            _ => None,
        };
        match notify_policy::decide(
            &settings,
            c.last_activity_at,
            episode.as_ref(),
            &alive,
            None,
            now,
        ) {
            Decision::Wait { next_check } => {
                w.next_check(
                    c,
                    if c.enabled || episode.is_some() {
                        Some(next_check)
                    } else {
                        None
                    },
                );
            }
            Decision::Open {
                baseline,
                opened_at,
            } => {
                let id = w.open_episode(c, baseline, opened_at);
                report.opened += 1;
                report.emails += w.emails(c, id, "inactive", 0, opened_at);
                w.next_check(
                    c,
                    Some(notify_policy::later(
                        now,
                        notify_policy::OPEN_EPISODE_RECHECK,
                    )),
                );
            }
            Decision::Remind { k, next_check } => {
                let (Some(id), Some(ep)) = (c.episode_id, episode) else {
                    continue;
                };
                w.remind(c, id, k);
                report.reminders += 1;
                // Reminder k was decided because it is due by now, so `now` bounds it; that
                // also keeps an overflow (`NEVER`) from holding back an e-mail decided now.
                let due =
                    notify_policy::reminder_due(ep.opened_at, settings.notification_interval, k)
                        .min(now);
                report.emails += w.emails(c, id, "reminder", k, due);
                w.next_check(c, Some(next_check));
            }
            Decision::Close { notify } => {
                let Some(id) = c.episode_id else { continue };
                w.close_episode(c, id);
                report.closed += 1;
                if notify {
                    report.emails += w.emails(c, id, "recovery", 0, now);
                }
                // Look again next sweep: a new silence starts from the new activity.
                w.next_check(
                    c,
                    if c.enabled {
                        Some(notify_policy::later(
                            now,
                            notify_policy::OPEN_EPISODE_RECHECK,
                        ))
                    } else {
                        None
                    },
                );
            }
        }
    }
    notifications::write_sweep(&mut tx, &w, now).await?;
    tx.commit().await?;
    if report.emails > 0 || report.closed > 0 {
        tracing::info!(
            examined = report.examined,
            opened = report.opened,
            reminders = report.reminders,
            closed = report.closed,
            emails = report.emails,
            "notification sweep"
        );
    }
    Ok(report)
}
