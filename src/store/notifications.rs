//! Notifications in the database (SPEC section 5): a license's settings, as the API and the web
//! UI read and write them; and the sweep's reads and writes: the licenses due for a decision
//! ([`due_candidates`], under [`try_lock_sweep`]) and, in one go, what it decided
//! ([`SweepWrites`]: episodes opened, reminded and closed, e-mails for the outbox, next
//! checks). The decisions themselves are pure (`domain::notify_policy`), made by the sweep
//! (`notify::sweep`).

use crate::domain::notify_settings::{self, NotifySettings};
use crate::store::outbox::{self, NewDeliveries, NewDelivery};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Postgres, postgres::PgArguments, query::Query, types::Json};
use std::collections::HashMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// One escalation step (SPEC section 5a), as stored in `notification_settings.escalation`
/// (jsonb) and shown by the API.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EscalationStepView {
    /// After the episode has been open this long without an acknowledgement: 300..2592000 s,
    /// each step later than the one before.
    #[schema(example = 14400)]
    pub after_seconds: i32,
    /// 1..20 channels of the tenant that get `license.escalated`, once per episode.
    pub channels: Vec<Uuid>,
}

/// Camera-level alerts (SPEC section 5a).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct PartialSettings {
    /// Off by default.
    #[sqlx(rename = "partial_enabled")]
    pub enabled: bool,
    /// A `partial` episode opens once the license has been Partially Active this long without a
    /// break: 300..2592000 s (default 3600).
    #[sqlx(rename = "partial_after_seconds")]
    #[schema(example = 3600)]
    pub after_seconds: i32,
}

/// A license's notification settings.
#[derive(Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct NotificationSettings {
    /// Off by default.
    pub enabled: bool,
    /// Without activity this long the license counts as inactive for e-mail: 3600..2592000 s.
    #[schema(example = 3600)]
    pub inactivity_interval_seconds: i32,
    /// While still inactive, remind every this long: 3600..2592000 s (8 h or more suggested).
    #[schema(example = 28800)]
    pub notification_interval_seconds: i32,
    /// 1..20 addresses when enabled; de-duplicated case-insensitively.
    pub recipients: Vec<String>,
    /// One e-mail when activity resumes; on by default.
    pub notify_on_recovery: bool,
    /// 0..20 channels of the tenant (SPEC section 5a) that get every alert besides the
    /// recipients. When enabled, recipients and channels together must not be empty.
    pub channels: Vec<Uuid>,
    /// 0..3 escalation steps, later and later.
    #[sqlx(json)]
    pub escalation: Vec<EscalationStepView>,
    #[sqlx(flatten)]
    pub partial: PartialSettings,
}

/// The columns [`NotificationSettings`] is read from.
const SETTINGS_COLUMNS: &str = "enabled, inactivity_interval_seconds, notification_interval_seconds, recipients, \
     notify_on_recovery, channels, escalation, partial_enabled, partial_after_seconds";

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            inactivity_interval_seconds: notify_settings::DEFAULT_INACTIVITY_SECONDS,
            notification_interval_seconds: notify_settings::DEFAULT_NOTIFICATION_SECONDS,
            recipients: Vec::new(),
            notify_on_recovery: true,
            channels: Vec::new(),
            escalation: Vec::new(),
            partial: PartialSettings {
                enabled: false,
                after_seconds: notify_settings::DEFAULT_PARTIAL_AFTER_SECONDS,
            },
        }
    }
}

impl From<NotifySettings> for NotificationSettings {
    fn from(s: NotifySettings) -> Self {
        Self {
            enabled: s.enabled,
            inactivity_interval_seconds: s.inactivity_interval_seconds,
            notification_interval_seconds: s.notification_interval_seconds,
            recipients: s.recipients.iter().map(|e| e.as_str().to_owned()).collect(),
            notify_on_recovery: s.notify_on_recovery,
            channels: s.channels,
            escalation: s
                .escalation
                .into_iter()
                .map(|step| EscalationStepView {
                    after_seconds: step.after_seconds,
                    channels: step.channels,
                })
                .collect(),
            partial: PartialSettings {
                enabled: s.partial.enabled,
                after_seconds: s.partial.after_seconds,
            },
        }
    }
}

/// The saved settings, or `None` if they were never set (callers show the defaults).
pub async fn get_settings(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
) -> Result<Option<NotificationSettings>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SETTINGS_COLUMNS} FROM notification_settings WHERE tenant_id = $1 AND license_id = $2"
    )))
    .bind(tenant_id)
    .bind(license_id)
    .fetch_optional(conn)
    .await
}

/// Replaces the settings (already validated by the caller) and returns what was stored.
pub async fn upsert_settings(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
    settings: &NotificationSettings,
    now: DateTime<Utc>,
) -> Result<NotificationSettings, sqlx::Error> {
    // enabled_at restarts when notifications are turned on (the baseline of a license that never
    // reported); next_check_at = now lets the next sweep apply the new settings. Routing
    // (channels, escalation, camera-level alerts) is only stored: an open episode keeps going,
    // and the sweep reads the new routing from these columns. `partial_since` is the sweep's.
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO notification_settings AS s (tenant_id, license_id, enabled, inactivity_interval_seconds,
             notification_interval_seconds, recipients, notify_on_recovery, channels, escalation,
             partial_enabled, partial_after_seconds, enabled_at, next_check_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $9, $10, $11, $12, CASE WHEN $3 THEN $8 END, $8, $8)
         ON CONFLICT (tenant_id, license_id) DO UPDATE SET
             enabled = EXCLUDED.enabled,
             inactivity_interval_seconds = EXCLUDED.inactivity_interval_seconds,
             notification_interval_seconds = EXCLUDED.notification_interval_seconds,
             recipients = EXCLUDED.recipients,
             notify_on_recovery = EXCLUDED.notify_on_recovery,
             channels = EXCLUDED.channels,
             escalation = EXCLUDED.escalation,
             partial_enabled = EXCLUDED.partial_enabled,
             partial_after_seconds = EXCLUDED.partial_after_seconds,
             enabled_at = CASE WHEN EXCLUDED.enabled AND NOT s.enabled THEN $8 ELSE s.enabled_at END,
             next_check_at = $8,
             updated_at = $8
         RETURNING {SETTINGS_COLUMNS}"
    )))
    .bind(tenant_id)
    .bind(license_id)
    .bind(settings.enabled)
    .bind(settings.inactivity_interval_seconds)
    .bind(settings.notification_interval_seconds)
    .bind(&settings.recipients)
    .bind(settings.notify_on_recovery)
    .bind(now)
    .bind(&settings.channels)
    .bind(sqlx::types::Json(&settings.escalation))
    .bind(settings.partial.enabled)
    .bind(settings.partial.after_seconds)
    .fetch_one(conn)
    .await
}

/// A channel a license can route to, as the Setup Notification page offers it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChannelChoice {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
}

/// The tenant's channels by name, for the routing choices.
pub async fn channel_choices(
    conn: &mut PgConnection,
    tenant_id: Uuid,
) -> Result<Vec<ChannelChoice>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, kind FROM channels WHERE tenant_id = $1 ORDER BY name, id")
        .bind(tenant_id)
        .fetch_all(conn)
        .await
}

/// Which of `ids` are channels of the tenant. The rows stay share-locked until the caller's
/// transaction ends, so a channel deleted meanwhile (which removes itself from every
/// license's lists) waits for the settings that name it to be saved first.
pub async fn lock_existing_channels(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM channels WHERE tenant_id = $1 AND id = ANY($2) ORDER BY id FOR SHARE",
    )
    .bind(tenant_id)
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Any constant works; it only has to be the same in every replica.
const SWEEP_LOCK: i64 = 0x5354_5741_5443_4803;

/// Takes the sweep's transaction-level advisory lock if no other transaction holds it; returns
/// whether it did. One replica at a time sweeps; the others skip that minute.
pub async fn try_lock_sweep(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(SWEEP_LOCK)
        .fetch_one(conn)
        .await
}

/// A license due for a decision: its settings, its newest activity, its open episode, and what
/// its quiet time depends on.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Candidate {
    pub tenant_id: Uuid,
    pub license_id: Uuid,
    pub enabled: bool,
    pub inactivity_interval_seconds: i32,
    pub notification_interval_seconds: i32,
    pub recipients: Vec<String>,
    pub notify_on_recovery: bool,
    pub enabled_at: Option<DateTime<Utc>>,
    /// The newest activity of any instance that ever reported; `None` if none did.
    pub last_activity_at: Option<DateTime<Utc>>,
    /// The open episode, if any (all four or none).
    pub episode_id: Option<Uuid>,
    pub opened_at: Option<DateTime<Utc>>,
    pub baseline_at: Option<DateTime<Utc>>,
    pub last_sent: Option<i32>,
    /// The license's tags now: a window scoped by tags covers it by these (SPEC section 5b).
    pub tags: Vec<String>,
    /// The license's latest snooze, if any (both or neither).
    pub snoozed_at: Option<DateTime<Utc>>,
    pub snoozed_until: Option<DateTime<Utc>>,
    /// Routing (SPEC section 5a): channels besides the plain recipients, escalation steps,
    /// camera-level alerts and since when the sweep has seen the license Partially Active.
    pub channels: Vec<Uuid>,
    pub escalation: Json<Vec<EscalationStep>>,
    pub partial_enabled: bool,
    pub partial_after_seconds: i32,
    pub partial_since: Option<DateTime<Utc>>,
    /// The open episode's kind (`inactive` or `partial`), acknowledgement and escalation
    /// steps decided.
    pub episode_kind: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub escalated: Option<i32>,
}

/// One escalation step as stored in `notification_settings.escalation`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EscalationStep {
    pub after_seconds: i64,
    pub channels: Vec<Uuid>,
}

/// The licenses due for a decision, with their newest activity, open episode, tags and snooze:
/// `$1` now, `$2` the most to return. It reads through the partial index
/// `notification_settings_due_idx`, so its cost follows what is due, not how many licenses
/// exist (each due license costs a primary-key lookup in `licenses` and one in
/// `agent_instances`). Public so that the notification benchmark explains exactly this query.
pub const CANDIDATES: &str = "SELECT s.tenant_id, s.license_id, s.enabled, s.inactivity_interval_seconds, s.notification_interval_seconds,
         s.recipients, s.notify_on_recovery, s.enabled_at,
         (SELECT max(a.last_activity_at) FROM agent_instances a
           WHERE a.tenant_id = s.tenant_id AND a.license_id = s.license_id AND a.high_water_seq >= 0) AS last_activity_at,
         e.id AS episode_id, e.opened_at, e.baseline_at, e.last_sent,
         l.tags, l.snoozed_at, l.snoozed_until,
         s.channels, s.escalation, s.partial_enabled, s.partial_after_seconds, s.partial_since,
         e.kind AS episode_kind, e.acknowledged_at, e.escalated
  FROM notification_settings s
  JOIN licenses l ON l.tenant_id = s.tenant_id AND l.id = s.license_id
  LEFT JOIN notification_episodes e
    ON e.tenant_id = s.tenant_id AND e.license_id = s.license_id AND e.closed_at IS NULL
  WHERE s.next_check_at <= $1
    -- A suspended tenant gets no e-mail: its agents are refused, so every license would look
    -- quiet. Its settings wait, due, until it is reinstated.
    AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = s.tenant_id AND t.suspended_at IS NOT NULL)
  ORDER BY s.next_check_at
  LIMIT $2";

/// Up to `limit` licenses whose next check has come by `now`, the longest due first
/// ([`CANDIDATES`]).
pub async fn due_candidates(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Candidate>, sqlx::Error> {
    sqlx::query_as(CANDIDATES)
        .bind(now)
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// What one sweep decided, as column arrays for a few set-based statements ([`write_sweep`]).
#[derive(Debug, Default)]
pub struct SweepWrites {
    // settings: next_check_at updates
    next_t: Vec<Uuid>,
    next_l: Vec<Uuid>,
    next_at: Vec<Option<DateTime<Utc>>>,
    next_partial_since: Vec<Option<DateTime<Utc>>>,
    // new episodes
    ep_t: Vec<Uuid>,
    ep_id: Vec<Uuid>,
    ep_l: Vec<Uuid>,
    ep_baseline: Vec<DateTime<Utc>>,
    ep_opened: Vec<DateTime<Utc>>,
    ep_kind: Vec<String>,
    ep_cameras: Vec<Json<serde_json::Value>>,
    // escalations: episode escalated
    esc_t: Vec<Uuid>,
    esc_id: Vec<Uuid>,
    esc_step: Vec<i32>,
    // settings: partial_since, where a decision changed it
    partial_since: HashMap<(Uuid, Uuid), Option<DateTime<Utc>>>,
    // reminders: episode last_sent
    rem_t: Vec<Uuid>,
    rem_id: Vec<Uuid>,
    rem_k: Vec<i32>,
    // closed episodes
    close_t: Vec<Uuid>,
    close_id: Vec<Uuid>,
    // outbox rows
    deliveries: NewDeliveries,
}

/// Where one delivery goes: an e-mail address (`channel_kind` `email`) or an HTTP channel
/// (`recipient` is its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub recipient: String,
    pub channel_id: Option<Uuid>,
    pub channel_kind: &'static str,
}

impl SweepWrites {
    /// The license's next check: at `at`, or never (`None`) until its settings change.
    pub fn next_check(&mut self, c: &Candidate, at: Option<DateTime<Utc>>) {
        self.next_t.push(c.tenant_id);
        self.next_l.push(c.license_id);
        self.next_at.push(at);
        self.next_partial_since.push(c.partial_since);
    }

    /// Stores `since` as the license's `partial_since` (see `domain::alert_policy`).
    pub fn partial_since(&mut self, c: &Candidate, since: Option<DateTime<Utc>>) {
        if since != c.partial_since {
            self.partial_since
                .insert((c.tenant_id, c.license_id), since);
        }
    }

    /// Opens an episode of `kind` (`inactive` or `partial`, naming `cameras`) for the
    /// license; returns its id.
    pub fn open_episode(
        &mut self,
        c: &Candidate,
        kind: &str,
        baseline: DateTime<Utc>,
        opened_at: DateTime<Utc>,
        cameras: serde_json::Value,
    ) -> Uuid {
        let id = Uuid::now_v7();
        self.ep_t.push(c.tenant_id);
        self.ep_id.push(id);
        self.ep_l.push(c.license_id);
        self.ep_baseline.push(baseline);
        self.ep_opened.push(opened_at);
        self.ep_kind.push(kind.to_owned());
        self.ep_cameras.push(Json(cameras));
        id
    }

    /// Records that escalation step `step` of the episode was decided.
    pub fn escalate(&mut self, c: &Candidate, episode: Uuid, step: i32) {
        self.esc_t.push(c.tenant_id);
        self.esc_id.push(episode);
        self.esc_step.push(step);
    }

    /// Records that reminder `k` of the episode was sent (the episode's `last_sent` only grows).
    pub fn remind(&mut self, c: &Candidate, episode: Uuid, k: i32) {
        self.rem_t.push(c.tenant_id);
        self.rem_id.push(episode);
        self.rem_k.push(k);
    }

    /// Closes the episode.
    pub fn close_episode(&mut self, c: &Candidate, episode: Uuid) {
        self.close_t.push(c.tenant_id);
        self.close_id.push(episode);
    }

    /// One outbox row per target; returns how many.
    pub fn deliveries(
        &mut self,
        c: &Candidate,
        episode: Uuid,
        kind: &str,
        k: i32,
        due: DateTime<Utc>,
        targets: &[Target],
    ) -> usize {
        for to in targets {
            self.deliveries.push(NewDelivery {
                tenant_id: c.tenant_id,
                license_id: c.license_id,
                episode_id: episode,
                kind,
                k,
                recipient: &to.recipient,
                due_at: due,
                channel_id: to.channel_id,
                channel_kind: to.channel_kind,
            });
        }
        targets.len()
    }
}

/// Writes what a sweep decided at `now`, in the caller's transaction: closed episodes, new
/// episodes, reminders, escalations, outbox rows, next checks (in that order: outbox rows refer
/// to episodes).
pub async fn write_sweep(
    conn: &mut PgConnection,
    w: &SweepWrites,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    // Closed first: a license's partial episode closes in the sweep that opens its
    // inactivity episode, and at most one episode per license may be open.
    let closed = sqlx::query(
        "UPDATE notification_episodes e SET closed_at = $3
         FROM unnest($1::uuid[], $2::uuid[]) AS u(t, id)
         WHERE e.tenant_id = u.t AND e.id = u.id AND e.closed_at IS NULL",
    )
    .bind(&w.close_t)
    .bind(&w.close_id)
    .bind(now);
    execute_unless_empty(&mut *conn, w.close_id.len(), closed).await?;
    let opened = sqlx::query(
        "INSERT INTO notification_episodes (tenant_id, id, license_id, baseline_at, opened_at, kind, cameras)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::timestamptz[], $6::text[], $7::jsonb[])",
    )
    .bind(&w.ep_t)
    .bind(&w.ep_id)
    .bind(&w.ep_l)
    .bind(&w.ep_baseline)
    .bind(&w.ep_opened)
    .bind(&w.ep_kind)
    .bind(&w.ep_cameras);
    execute_unless_empty(&mut *conn, w.ep_id.len(), opened).await?;
    let reminded = sqlx::query(
        "UPDATE notification_episodes e SET last_sent = GREATEST(e.last_sent, u.k)
         FROM unnest($1::uuid[], $2::uuid[], $3::int4[]) AS u(t, id, k)
         WHERE e.tenant_id = u.t AND e.id = u.id",
    )
    .bind(&w.rem_t)
    .bind(&w.rem_id)
    .bind(&w.rem_k);
    execute_unless_empty(&mut *conn, w.rem_id.len(), reminded).await?;
    let escalated = sqlx::query(
        "UPDATE notification_episodes e SET escalated = GREATEST(e.escalated, u.step)
         FROM unnest($1::uuid[], $2::uuid[], $3::int4[]) AS u(t, id, step)
         WHERE e.tenant_id = u.t AND e.id = u.id",
    )
    .bind(&w.esc_t)
    .bind(&w.esc_id)
    .bind(&w.esc_step);
    execute_unless_empty(&mut *conn, w.esc_id.len(), escalated).await?;
    outbox::enqueue(&mut *conn, &w.deliveries, now).await?;
    let partial_since: Vec<Option<DateTime<Utc>>> = w
        .next_t
        .iter()
        .zip(&w.next_l)
        .zip(&w.next_partial_since)
        .map(|((t, l), stored)| w.partial_since.get(&(*t, *l)).copied().unwrap_or(*stored))
        .collect();
    let next_checks = sqlx::query(
        "UPDATE notification_settings s SET next_check_at = u.at, partial_since = u.ps
         FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::timestamptz[]) AS u(t, l, at, ps)
         WHERE s.tenant_id = u.t AND s.license_id = u.l",
    )
    .bind(&w.next_t)
    .bind(&w.next_l)
    .bind(&w.next_at)
    .bind(&partial_since);
    execute_unless_empty(&mut *conn, w.next_l.len(), next_checks).await
}

/// Runs one of the sweep's set-based statements, unless it has no rows (most sweeps decide
/// little: a skipped statement is a round trip saved).
async fn execute_unless_empty(
    conn: &mut PgConnection,
    rows: usize,
    statement: Query<'_, Postgres, PgArguments>,
) -> Result<(), sqlx::Error> {
    if rows > 0 {
        statement.execute(conn).await?;
    }
    Ok(())
}
