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
//!
//! Quiet time (SPEC section 5b) is fed to the rules like the control plane's downtime: the
//! maintenance windows of the due licenses' tenants are read in one query per sweep and each
//! expanded once; a license covered by a window or snoozed gets its alive spans minus its quiet
//! spans, and the end of the quiet time it is in. A license with neither costs nothing extra.

use super::alive;
use crate::{
    domain::{
        notify_policy::{self, Decision, OpenEpisode, Settings},
        quiet::{self, Expanded, Snooze},
    },
    store::{
        self,
        notifications::{self, Candidate, SweepWrites},
    },
};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use std::{borrow::Cow, collections::HashMap};
use uuid::Uuid;

/// Licenses decided per transaction; a backlog is worked off over the following sweeps.
pub const MAX_PER_SWEEP: i64 = 20_000;

/// How far past now quiet spans are looked for, to find where the current quiet time ends. A
/// window (or one occurrence) lasts at most 31 days, so the end of any one is found; a chain of
/// back-to-back windows longer than this ends here for the rules, and the license is looked at
/// again then.
pub const QUIET_HORIZON: Duration = Duration::days(32);

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
    // Quiet spans from the oldest baseline a candidate without an episode needs (an open
    // episode needs only now) to the horizon.
    let quiet_from = candidates
        .iter()
        .filter(|c| c.episode_id.is_none())
        .filter_map(|c| c.last_activity_at.max(c.enabled_at))
        .min()
        .map_or(now, |t| t.min(now));
    let horizon = notify_policy::later(now, QUIET_HORIZON);
    let windows = tenant_windows(&mut tx, &candidates, quiet_from, horizon).await?;

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
        // An open episode needs only whether it is quiet now; otherwise the time since the
        // baseline counts (`decide` takes the later of the last activity and `enabled_at`).
        let from = if episode.is_some() {
            now
        } else {
            c.last_activity_at.max(c.enabled_at).unwrap_or(now)
        };
        let spans = quiet::quiet_spans_expanded(
            windows.get(&c.tenant_id).map_or(&[], Vec::as_slice),
            c.license_id,
            &c.tags,
            snooze(c),
            from,
            horizon,
        );
        let (counting, quiet_until) = if spans.is_empty() {
            (Cow::Borrowed(alive.as_slice()), None)
        } else {
            let (counting, until) = notify_policy::with_quiet(&alive, &spans, now);
            (Cow::Owned(counting), until)
        };
        match notify_policy::decide(
            &settings,
            c.last_activity_at,
            episode.as_ref(),
            &counting,
            quiet_until,
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

/// The maintenance windows of the candidates' tenants (one query), each expanded once over
/// `[from, to)`, by tenant. Tenants without windows are not in the map.
async fn tenant_windows(
    conn: &mut sqlx::PgConnection,
    candidates: &[Candidate],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<HashMap<Uuid, Vec<Expanded>>, sqlx::Error> {
    let mut tenants: Vec<Uuid> = candidates.iter().map(|c| c.tenant_id).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let mut by_tenant: HashMap<Uuid, Vec<Expanded>> = HashMap::new();
    for (tenant, window) in store::windows::windows_of(conn, &tenants).await? {
        by_tenant
            .entry(tenant)
            .or_default()
            .push(Expanded::new(window, from, to));
    }
    Ok(by_tenant)
}

/// The candidate's latest snooze (its time still counts as quiet after it ended).
fn snooze(c: &Candidate) -> Option<Snooze> {
    match (c.snoozed_at, c.snoozed_until) {
        (Some(since), Some(until)) => Some(Snooze { since, until }),
        _ => None,
    }
}
