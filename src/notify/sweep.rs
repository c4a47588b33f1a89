//! The sweep: decides which notification e-mails are due and writes them to the outbox, in one
//! transaction, under a transaction-level advisory lock.
//!
//! Every replica runs the sweep every minute. Only one at a time gets the lock; the others
//! skip that minute, which costs nothing because the winner sweeps everything due. Even if two
//! sweeps did decide the same e-mail, the outbox's unique key (episode, e-mail, recipient)
//! would insert it once.
//!
//! The sweep reads only licenses whose `next_check_at` has come (a partial index), so its cost
//! follows what is due, not how many licenses exist.

use super::alive;
use crate::domain::notify_policy::{self, Decision, OpenEpisode, Settings};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

const SWEEP_LOCK: i64 = 0x5354_5741_5443_4803;

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

#[derive(sqlx::FromRow)]
struct Candidate {
    tenant_id: Uuid,
    license_id: Uuid,
    enabled: bool,
    inactivity_interval_seconds: i32,
    notification_interval_seconds: i32,
    recipients: Vec<String>,
    notify_on_recovery: bool,
    enabled_at: Option<DateTime<Utc>>,
    last_activity_at: Option<DateTime<Utc>>,
    episode_id: Option<Uuid>,
    opened_at: Option<DateTime<Utc>>,
    baseline_at: Option<DateTime<Utc>>,
    last_sent: Option<i32>,
}

/// Column arrays for the set-based writes of one sweep.
#[derive(Default)]
struct Writes {
    // settings: next_check_at updates
    next_t: Vec<Uuid>,
    next_l: Vec<Uuid>,
    next_at: Vec<Option<DateTime<Utc>>>,
    // new episodes
    ep_t: Vec<Uuid>,
    ep_id: Vec<Uuid>,
    ep_l: Vec<Uuid>,
    ep_baseline: Vec<DateTime<Utc>>,
    ep_opened: Vec<DateTime<Utc>>,
    // reminders: episode last_sent
    rem_t: Vec<Uuid>,
    rem_id: Vec<Uuid>,
    rem_k: Vec<i32>,
    // closed episodes
    close_t: Vec<Uuid>,
    close_id: Vec<Uuid>,
    // outbox rows
    out_t: Vec<Uuid>,
    out_id: Vec<Uuid>,
    out_l: Vec<Uuid>,
    out_ep: Vec<Uuid>,
    out_kind: Vec<String>,
    out_k: Vec<i32>,
    out_to: Vec<String>,
    out_due: Vec<DateTime<Utc>>,
}

impl Writes {
    fn next_check(&mut self, c: &Candidate, at: Option<DateTime<Utc>>) {
        self.next_t.push(c.tenant_id);
        self.next_l.push(c.license_id);
        self.next_at.push(at);
    }

    fn emails(
        &mut self,
        c: &Candidate,
        episode: Uuid,
        kind: &str,
        k: i32,
        due: DateTime<Utc>,
    ) -> usize {
        for to in &c.recipients {
            self.out_t.push(c.tenant_id);
            self.out_id.push(Uuid::now_v7());
            self.out_l.push(c.license_id);
            self.out_ep.push(episode);
            self.out_kind.push(kind.to_owned());
            self.out_k.push(k);
            self.out_to.push(to.clone());
            self.out_due.push(due);
        }
        c.recipients.len()
    }
}

/// The licenses due for a decision, with their newest activity and open episode. Public so
/// that the notification benchmark explains exactly this query.
pub const CANDIDATES: &str = "SELECT s.tenant_id, s.license_id, s.enabled, s.inactivity_interval_seconds, s.notification_interval_seconds,
         s.recipients, s.notify_on_recovery, s.enabled_at,
         (SELECT max(a.last_activity_at) FROM agent_instances a
           WHERE a.tenant_id = s.tenant_id AND a.license_id = s.license_id AND a.high_water_seq >= 0) AS last_activity_at,
         e.id AS episode_id, e.opened_at, e.baseline_at, e.last_sent
  FROM notification_settings s
  LEFT JOIN notification_episodes e
    ON e.tenant_id = s.tenant_id AND e.license_id = s.license_id AND e.closed_at IS NULL
  WHERE s.next_check_at <= $1
  ORDER BY s.next_check_at
  LIMIT $2";

/// One sweep at `now`: record that the service is alive, then (if this replica gets the lock)
/// decide every due license. Public so that tests and `POST /admin/sweep` drive it directly.
pub async fn sweep(pool: &PgPool, now: DateTime<Utc>) -> Result<SweepReport, sqlx::Error> {
    alive::record(pool, now, None).await?;
    let mut tx = pool.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(SWEEP_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Ok(SweepReport {
            skipped: true,
            ..SweepReport::default()
        });
    }
    let candidates: Vec<Candidate> = sqlx::query_as(CANDIDATES)
        .bind(now)
        .bind(MAX_PER_SWEEP)
        .fetch_all(&mut *tx)
        .await?;
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
    let alive = alive::spans_since(pool, oldest).await?;

    let mut w = Writes::default();
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
        match notify_policy::decide(&settings, c.last_activity_at, episode.as_ref(), &alive, now) {
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
                let id = Uuid::now_v7();
                w.ep_t.push(c.tenant_id);
                w.ep_id.push(id);
                w.ep_l.push(c.license_id);
                w.ep_baseline.push(baseline);
                w.ep_opened.push(opened_at);
                report.opened += 1;
                report.emails += w.emails(c, id, "inactive", 0, opened_at);
                w.next_check(c, Some(now + notify_policy::OPEN_EPISODE_RECHECK));
            }
            Decision::Remind { k, next_check } => {
                let (Some(id), Some(ep)) = (c.episode_id, episode) else {
                    continue;
                };
                w.rem_t.push(c.tenant_id);
                w.rem_id.push(id);
                w.rem_k.push(k);
                report.reminders += 1;
                let due = ep.opened_at + settings.notification_interval * k;
                report.emails += w.emails(c, id, "reminder", k, due);
                w.next_check(c, Some(next_check));
            }
            Decision::Close { notify } => {
                let Some(id) = c.episode_id else { continue };
                w.close_t.push(c.tenant_id);
                w.close_id.push(id);
                report.closed += 1;
                if notify {
                    report.emails += w.emails(c, id, "recovery", 0, now);
                }
                // Look again next sweep: a new silence starts from the new activity.
                w.next_check(
                    c,
                    if c.enabled {
                        Some(now + notify_policy::OPEN_EPISODE_RECHECK)
                    } else {
                        None
                    },
                );
            }
        }
    }
    write(&mut tx, &w, now).await?;
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

async fn write(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    w: &Writes,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if !w.ep_id.is_empty() {
        sqlx::query(
            "INSERT INTO notification_episodes (tenant_id, id, license_id, baseline_at, opened_at)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::timestamptz[])",
        )
        .bind(&w.ep_t)
        .bind(&w.ep_id)
        .bind(&w.ep_l)
        .bind(&w.ep_baseline)
        .bind(&w.ep_opened)
        .execute(&mut **tx)
        .await?;
    }
    if !w.rem_id.is_empty() {
        sqlx::query(
            "UPDATE notification_episodes e SET last_sent = GREATEST(e.last_sent, u.k)
             FROM unnest($1::uuid[], $2::uuid[], $3::int4[]) AS u(t, id, k)
             WHERE e.tenant_id = u.t AND e.id = u.id",
        )
        .bind(&w.rem_t)
        .bind(&w.rem_id)
        .bind(&w.rem_k)
        .execute(&mut **tx)
        .await?;
    }
    if !w.close_id.is_empty() {
        sqlx::query(
            "UPDATE notification_episodes e SET closed_at = $3
             FROM unnest($1::uuid[], $2::uuid[]) AS u(t, id)
             WHERE e.tenant_id = u.t AND e.id = u.id AND e.closed_at IS NULL",
        )
        .bind(&w.close_t)
        .bind(&w.close_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    if !w.out_id.is_empty() {
        sqlx::query(
            "INSERT INTO notification_outbox (tenant_id, id, license_id, episode_id, kind, k, recipient, due_at, created_at, next_attempt_at)
             SELECT u.t, u.id, u.l, u.ep, u.kind, u.k, u.rcpt, u.due, $9, $9
             FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::int4[], $7::text[], $8::timestamptz[])
                  AS u(t, id, l, ep, kind, k, rcpt, due)
             ON CONFLICT ON CONSTRAINT notification_outbox_once DO NOTHING",
        )
        .bind(&w.out_t)
        .bind(&w.out_id)
        .bind(&w.out_l)
        .bind(&w.out_ep)
        .bind(&w.out_kind)
        .bind(&w.out_k)
        .bind(&w.out_to)
        .bind(&w.out_due)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    if !w.next_l.is_empty() {
        sqlx::query(
            "UPDATE notification_settings s SET next_check_at = u.at
             FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS u(t, l, at)
             WHERE s.tenant_id = u.t AND s.license_id = u.l",
        )
        .bind(&w.next_t)
        .bind(&w.next_l)
        .bind(&w.next_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
