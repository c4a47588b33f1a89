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

use super::{alive, routing::Routing};
use crate::{
    domain::{
        alert_event::EventCamera,
        alert_policy::{self, PartialDecision, PartialEpisode, PartialSettings},
        notify_policy::{self, Decision, OPEN_EPISODE_RECHECK, OpenEpisode, Settings, later},
        quiet::{self, Expanded, Snooze},
        status::{self, LicenseStatus},
    },
    store::{
        self,
        notifications::{self, Candidate, SweepWrites},
        outbox,
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
    /// Outbox rows written (one per e-mail address or HTTP channel), escalations excepted.
    pub emails: usize,
    /// Outbox rows written for escalation steps.
    pub escalations: usize,
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

    let routing =
        Routing::new(outbox::channels_of_tenants(&mut tx, &tenants_of(&candidates)).await?);
    let camera_level = CameraLevel::load(&mut tx, &candidates, now).await?;

    let mut w = SweepWrites::default();
    for c in &candidates {
        let settings = Settings {
            enabled: c.enabled,
            inactivity_interval: Duration::seconds(i64::from(c.inactivity_interval_seconds)),
            notification_interval: Duration::seconds(i64::from(c.notification_interval_seconds)),
            notify_on_recovery: c.notify_on_recovery,
            enabled_at: c.enabled_at.unwrap_or(now),
        };
        let partial_episode = c.episode_kind.as_deref() == Some("partial");
        let episode = match (c.episode_id, c.opened_at, c.baseline_at, c.last_sent) {
            (Some(_), Some(opened_at), Some(baseline), Some(last_sent)) => Some(OpenEpisode {
                opened_at,
                baseline,
                last_sent,
            }),
            _ => None,
        };
        // The inactivity rules see only an inactivity episode: a partial episode is open while
        // heartbeats arrive, which `decide` would read as a recovery.
        let inactivity_episode = if partial_episode { None } else { episode };
        let acknowledged = c.acknowledged_at.is_some();
        // An open episode needs only whether it is quiet now; otherwise the time since the
        // baseline counts (`decide` takes the later of the last activity and `enabled_at`).
        let from = if inactivity_episode.is_some() {
            now
        } else {
            c.last_activity_at.max(c.enabled_at).unwrap_or(now)
        };
        let from = c.partial_since.map_or(from, |p| p.min(from));
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
        let decision = notify_policy::decide(
            &settings,
            c.last_activity_at,
            inactivity_episode.as_ref(),
            &counting,
            quiet_until,
            now,
        );
        match decision {
            Decision::Wait { next_check } => {
                let watching = c.enabled || episode.is_some();
                let mut next = watching.then_some(next_check);
                if let (Some(id), Some(ep)) = (c.episode_id, inactivity_episode) {
                    report.escalations += escalate(
                        &mut w,
                        &routing,
                        c,
                        id,
                        ep.opened_at,
                        quiet_until.is_some(),
                        now,
                    );
                } else if (c.enabled && c.partial_enabled) || partial_episode {
                    let status = camera_level.status(c);
                    let partial = PartialSettings {
                        enabled: c.enabled && c.partial_enabled,
                        after: Duration::seconds(i64::from(c.partial_after_seconds)),
                        notification_interval: settings.notification_interval,
                    };
                    let open = match (partial_episode, episode) {
                        (true, Some(ep)) => Some(PartialEpisode {
                            opened_at: ep.opened_at,
                            last_sent: ep.last_sent,
                            acknowledged,
                        }),
                        _ => None,
                    };
                    let d = alert_policy::decide_partial(
                        &partial,
                        status,
                        c.partial_since,
                        open.as_ref(),
                        &counting,
                        quiet_until.is_some(),
                        now,
                    );
                    apply_partial(&mut w, &mut report, &routing, &camera_level, c, d, now);
                    if let (Some(id), Some(ep)) = (c.episode_id, open) {
                        report.escalations += escalate(
                            &mut w,
                            &routing,
                            c,
                            id,
                            ep.opened_at,
                            quiet_until.is_some(),
                            now,
                        );
                    }
                    // Camera-level alerts are looked at every sweep: the status can change
                    // with any heartbeat.
                    next = Some(next.map_or(later(now, OPEN_EPISODE_RECHECK), |n| {
                        n.min(later(now, OPEN_EPISODE_RECHECK))
                    }));
                }
                w.next_check(c, next);
            }
            Decision::Open {
                baseline,
                opened_at,
            } => {
                if let (true, Some(partial_id)) = (partial_episode, c.episode_id) {
                    // The license went silent: its partial episode ends without a message
                    // (PagerDuty still gets its resolve) and an inactivity episode takes over.
                    w.close_episode(c, partial_id);
                    report.emails += w.deliveries(
                        c,
                        partial_id,
                        "partial_recovered",
                        0,
                        now,
                        &routing.recovery(c, false),
                    );
                }
                w.partial_since(c, None);
                let id = w.open_episode(c, "inactive", baseline, opened_at, serde_json::json!([]));
                report.opened += 1;
                report.emails += w.deliveries(c, id, "inactive", 0, opened_at, &routing.base(c));
                w.next_check(
                    c,
                    Some(notify_policy::later(
                        now,
                        notify_policy::OPEN_EPISODE_RECHECK,
                    )),
                );
            }
            Decision::Remind { k, next_check } => {
                let (Some(id), Some(ep)) = (c.episode_id, inactivity_episode) else {
                    continue;
                };
                if acknowledged {
                    // Acknowledged: no more reminders (nor escalations); still looked at every
                    // sweep for the recovery.
                    w.next_check(c, Some(later(now, OPEN_EPISODE_RECHECK)));
                    continue;
                }
                w.remind(c, id, k);
                report.reminders += 1;
                // Reminder k was decided because it is due by now, so `now` bounds it; that
                // also keeps an overflow (`NEVER`) from holding back an e-mail decided now.
                let due =
                    notify_policy::reminder_due(ep.opened_at, settings.notification_interval, k)
                        .min(now);
                report.emails += w.deliveries(c, id, "reminder", k, due, &routing.base(c));
                report.escalations += escalate(
                    &mut w,
                    &routing,
                    c,
                    id,
                    ep.opened_at,
                    quiet_until.is_some(),
                    now,
                );
                w.next_check(c, Some(next_check));
            }
            Decision::Close { notify } => {
                let Some(id) = c.episode_id else { continue };
                w.close_episode(c, id);
                report.closed += 1;
                report.emails +=
                    w.deliveries(c, id, "recovery", 0, now, &routing.recovery(c, notify));
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

/// Decides the escalation steps of an open episode that fell due (SPEC section 5a) and writes
/// their deliveries; returns how many rows.
fn escalate(
    w: &mut SweepWrites,
    routing: &Routing,
    c: &Candidate,
    episode: Uuid,
    opened_at: DateTime<Utc>,
    quiet: bool,
    now: DateTime<Utc>,
) -> usize {
    let steps: Vec<Duration> = c
        .escalation
        .0
        .iter()
        .map(|s| Duration::seconds(s.after_seconds))
        .collect();
    let due = alert_policy::escalations_due(
        opened_at,
        &steps,
        c.escalated.unwrap_or(0),
        c.acknowledged_at.is_some(),
        quiet,
        now,
    );
    let mut rows = 0;
    for step in &due {
        rows += w.deliveries(c, episode, "escalated", *step, now, &routing.step(c, *step));
    }
    if let Some(last) = due.last() {
        w.escalate(c, episode, *last);
    }
    rows
}

/// Writes a camera-level decision.
fn apply_partial(
    w: &mut SweepWrites,
    report: &mut SweepReport,
    routing: &Routing,
    cameras: &CameraLevel,
    c: &Candidate,
    d: PartialDecision,
    now: DateTime<Utc>,
) {
    match d {
        PartialDecision::Track { since } => w.partial_since(c, since),
        PartialDecision::Open { since, opened_at } => {
            w.partial_since(c, Some(since));
            let id = w.open_episode(c, "partial", since, opened_at, cameras.not_active(c));
            report.opened += 1;
            report.emails += w.deliveries(c, id, "partial", 0, now, &routing.base(c));
        }
        PartialDecision::Remind { k } => {
            let Some(id) = c.episode_id else { return };
            w.remind(c, id, k);
            report.reminders += 1;
            report.emails += w.deliveries(c, id, "reminder", k, now, &routing.base(c));
        }
        PartialDecision::Recover => {
            let Some(id) = c.episode_id else { return };
            w.partial_since(c, None);
            w.close_episode(c, id);
            report.closed += 1;
            report.emails += w.deliveries(
                c,
                id,
                "partial_recovered",
                0,
                now,
                &routing.recovery(c, c.notify_on_recovery),
            );
        }
        PartialDecision::CloseSilently => {
            let Some(id) = c.episode_id else { return };
            w.partial_since(c, None);
            w.close_episode(c, id);
            report.closed += 1;
            // Silent for people; PagerDuty still gets its resolve.
            report.emails += w.deliveries(
                c,
                id,
                "partial_recovered",
                0,
                now,
                &routing.recovery(c, false),
            );
        }
    }
}

/// The tenants of the candidates, sorted and distinct.
fn tenants_of(candidates: &[Candidate]) -> Vec<Uuid> {
    let mut tenants: Vec<Uuid> = candidates.iter().map(|c| c.tenant_id).collect();
    tenants.sort_unstable();
    tenants.dedup();
    tenants
}

/// What camera-level alerts need of the licenses that have them: their status now (by the
/// same SQL rules as the license list) and, for those Partially Active, the cameras that are
/// not active and why.
#[derive(Debug, Default)]
struct CameraLevel {
    statuses: HashMap<(Uuid, Uuid), LicenseStatus>,
    not_active: HashMap<(Uuid, Uuid), serde_json::Value>,
}

impl CameraLevel {
    async fn load(
        conn: &mut sqlx::PgConnection,
        candidates: &[Candidate],
        now: DateTime<Utc>,
    ) -> Result<Self, sqlx::Error> {
        let keys: Vec<(Uuid, Uuid)> = candidates
            .iter()
            .filter(|c| {
                (c.enabled && c.partial_enabled) || c.episode_kind.as_deref() == Some("partial")
            })
            .map(|c| (c.tenant_id, c.license_id))
            .collect();
        if keys.is_empty() {
            return Ok(Self::default());
        }
        let statuses: HashMap<(Uuid, Uuid), LicenseStatus> =
            store::status::statuses_of(conn, &keys, now)
                .await?
                .into_iter()
                .map(|(t, l, s)| ((t, l), s))
                .collect();
        let (tenants, licenses): (Vec<Uuid>, Vec<Uuid>) = keys
            .iter()
            .filter(|k| statuses.get(k) == Some(&LicenseStatus::PartiallyActive))
            .copied()
            .unzip();
        let mut not_active = HashMap::new();
        for (t, l, observed_at, reports) in
            outbox::newest_instances(conn, &tenants, &licenses).await?
        {
            let cameras: Vec<EventCamera> = reports
                .0
                .iter()
                .filter_map(|(id, wire)| {
                    let r = status::CameraReport::from_wire(id, wire, observed_at);
                    let state = status::camera_state(&r, true);
                    status::camera_reason(&r, state).map(|reason| EventCamera {
                        camera_id: id.clone(),
                        state: state.as_str().to_owned(),
                        reason: Some(reason),
                        snapshot_url: None,
                    })
                })
                .collect();
            not_active.insert((t, l), serde_json::to_value(cameras).unwrap_or_default());
        }
        Ok(Self {
            statuses,
            not_active,
        })
    }

    fn status(&self, c: &Candidate) -> LicenseStatus {
        self.statuses
            .get(&(c.tenant_id, c.license_id))
            .copied()
            .unwrap_or(LicenseStatus::NotInstalled)
    }

    fn not_active(&self, c: &Candidate) -> serde_json::Value {
        self.not_active
            .get(&(c.tenant_id, c.license_id))
            .cloned()
            .unwrap_or_else(|| serde_json::json!([]))
    }
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
