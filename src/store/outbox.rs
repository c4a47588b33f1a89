//! The notification outbox (`notification_outbox`): e-mails the sweep decided, one row per
//! recipient, and their delivery state. The sweep enqueues rows ([`enqueue`], in its own
//! transaction); senders claim them with a lease ([`claim`]), hold a claimed group locked while
//! its e-mail goes out ([`hold`]) and record the outcome ([`mark_sent`], [`mark_attempt_failed`]).
//! The lease, backoff and give-up rules are the sender's (`notify::sender`).
//! [`history`] lists a license's rows for the API and the Activity Status page.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, types::Json};
use std::collections::BTreeMap;
use streamwatch_protocol::CameraReport;
use utoipa::ToSchema;
use uuid::Uuid;

/// A claimed outbox row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub license_id: Uuid,
    pub episode_id: Uuid,
    /// `inactive`, `reminder`, `escalated`, `recovery`, `partial` or `partial_recovered`.
    pub kind: String,
    /// The reminder's or escalation step's number (0 for the others).
    pub k: i32,
    /// The e-mail address, or the HTTP channel's id.
    pub recipient: String,
    pub created_at: DateTime<Utc>,
    /// Claims so far, this one included: the claim's fencing token.
    pub attempts: i32,
    /// `None` for a license's plain recipients.
    pub channel_id: Option<Uuid>,
    /// `email`, or the HTTP channel's kind.
    pub channel_kind: String,
}

/// Column arrays of new outbox rows, for one `unnest` insert.
#[derive(Debug, Default)]
pub struct NewDeliveries {
    tenant: Vec<Uuid>,
    id: Vec<Uuid>,
    license: Vec<Uuid>,
    episode: Vec<Uuid>,
    kind: Vec<String>,
    k: Vec<i32>,
    recipient: Vec<String>,
    due: Vec<DateTime<Utc>>,
    channel: Vec<Option<Uuid>>,
    channel_kind: Vec<String>,
}

/// One delivery (an e-mail to one address, or one request to one HTTP channel), as the sweep
/// decided it.
#[derive(Debug, Clone, Copy)]
pub struct NewDelivery<'a> {
    pub tenant_id: Uuid,
    pub license_id: Uuid,
    pub episode_id: Uuid,
    /// `inactive`, `reminder`, `escalated`, `recovery`, `partial` or `partial_recovered`.
    pub kind: &'a str,
    /// The reminder's number, or the escalation step's (0 for the others).
    pub k: i32,
    /// The e-mail address, or the HTTP channel's id as text: with the episode, kind and `k`,
    /// the row's unique key.
    pub recipient: &'a str,
    pub due_at: DateTime<Utc>,
    /// `None` for a license's plain recipients.
    pub channel_id: Option<Uuid>,
    /// `email` for every e-mail, else the channel's kind.
    pub channel_kind: &'a str,
}

impl NewDeliveries {
    pub fn push(&mut self, e: NewDelivery<'_>) {
        self.tenant.push(e.tenant_id);
        self.id.push(Uuid::now_v7());
        self.license.push(e.license_id);
        self.episode.push(e.episode_id);
        self.kind.push(e.kind.to_owned());
        self.k.push(e.k);
        self.recipient.push(e.recipient.to_owned());
        self.due.push(e.due_at);
        self.channel.push(e.channel_id);
        self.channel_kind.push(e.channel_kind.to_owned());
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    pub fn len(&self) -> usize {
        self.id.len()
    }
}

/// Inserts the rows, pending from `now`. A row whose (episode, kind, k, recipient) is already
/// in the outbox is left out (the constraint `notification_outbox_once`), so that two sweeps
/// that decided the same delivery insert it once.
pub async fn enqueue(
    conn: &mut PgConnection,
    rows: &NewDeliveries,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO notification_outbox (tenant_id, id, license_id, episode_id, kind, k, recipient, due_at, channel_id, channel_kind, created_at, next_attempt_at)
         SELECT u.t, u.id, u.l, u.ep, u.kind, u.k, u.rcpt, u.due, u.ch, u.chk, $11, $11
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::int4[], $7::text[], $8::timestamptz[], $9::uuid[], $10::text[])
              AS u(t, id, l, ep, kind, k, rcpt, due, ch, chk)
         ON CONFLICT ON CONSTRAINT notification_outbox_once DO NOTHING",
    )
    .bind(&rows.tenant)
    .bind(&rows.id)
    .bind(&rows.license)
    .bind(&rows.episode)
    .bind(&rows.kind)
    .bind(&rows.k)
    .bind(&rows.recipient)
    .bind(&rows.due)
    .bind(&rows.channel)
    .bind(&rows.channel_kind)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims up to `limit` due rows (pending, or sending with an expired lease) for `lease`, in
/// one statement; rows another sender holds locked are skipped (`FOR UPDATE SKIP LOCKED`).
pub async fn claim(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
    lease: Duration,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE notification_outbox o
            SET state = 'sending', lease_until = $1 + make_interval(secs => $3), attempts = o.attempts + 1
          WHERE (o.tenant_id, o.id) IN (
                SELECT tenant_id, id FROM notification_outbox
                 WHERE state IN ('pending', 'sending') AND next_attempt_at <= $1
                   AND (state = 'pending' OR lease_until < $1)
                   -- Decided before the tenant was suspended: held until it is reinstated.
                   AND NOT EXISTS (SELECT 1 FROM tenants t
                                    WHERE t.id = notification_outbox.tenant_id AND t.suspended_at IS NOT NULL)
                 ORDER BY tenant_id, recipient, created_at
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED)
          RETURNING o.tenant_id, o.id, o.license_id, o.episode_id, o.kind, o.k, o.recipient, o.created_at, o.attempts,
                    o.channel_id, o.channel_kind",
    )
    .bind(now)
    .bind(limit)
    .bind(lease.num_seconds() as f64)
    .fetch_all(pool)
    .await
}

/// Locks, for the rest of the transaction, those of the rows `ids` that are still `sending`
/// with the given `attempts` (the claim's fencing token, one per id) and not locked elsewhere.
/// Returns the ids it locked.
pub async fn hold(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    ids: &[Uuid],
    attempts: &[i32],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM notification_outbox
          WHERE tenant_id = $1 AND state = 'sending'
            AND (id, attempts) IN (SELECT * FROM unnest($2::uuid[], $3::int4[]))
          FOR UPDATE SKIP LOCKED",
    )
    .bind(tenant_id)
    .bind(ids)
    .bind(attempts)
    .fetch_all(conn)
    .await
}

/// Marks the rows sent at `now` in the e-mail `message_id`.
pub async fn mark_sent(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    ids: &[Uuid],
    now: DateTime<Utc>,
    message_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notification_outbox SET state = 'sent', sent_at = $3, message_id = $4, lease_until = NULL, last_error = NULL
         WHERE tenant_id = $1 AND id = ANY($2)",
    )
    .bind(tenant_id)
    .bind(ids)
    .bind(now)
    .bind(message_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A failed delivery attempt of some rows.
#[derive(Debug, Clone, Copy)]
pub struct FailedAttempt<'a> {
    pub now: DateTime<Utc>,
    /// The next attempt comes this long after `now`.
    pub backoff: Duration,
    /// Rows created this long before `now` or longer are given up (`failed`).
    pub give_up_after: Duration,
    pub error: &'a str,
}

/// Puts the rows back (`pending`, next attempt after the backoff), or gives them up
/// (`failed`) once they are old enough; either way with the error.
pub async fn mark_attempt_failed(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    ids: &[Uuid],
    attempt: FailedAttempt<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notification_outbox
            SET state = CASE WHEN created_at + make_interval(secs => $5) <= $3 THEN 'failed' ELSE 'pending' END,
                next_attempt_at = $3 + make_interval(secs => $4), lease_until = NULL, last_error = $6
          WHERE tenant_id = $1 AND id = ANY($2)",
    )
    .bind(tenant_id)
    .bind(ids)
    .bind(attempt.now)
    .bind(attempt.backoff.num_seconds() as f64)
    .bind(attempt.give_up_after.num_seconds() as f64)
    .bind(attempt.error)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks one HTTP delivery sent, if it is still this claim's (`attempts` is the claim's fencing
/// token); returns whether it was.
pub async fn mark_delivered(
    pool: &PgPool,
    row: &OutboxRow,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE notification_outbox SET state = 'sent', sent_at = $4, lease_until = NULL, last_error = NULL
         WHERE tenant_id = $1 AND id = $2 AND attempts = $3 AND state = 'sending'",
    )
    .bind(row.tenant_id)
    .bind(row.id)
    .bind(row.attempts)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed attempt of one HTTP delivery, if it is still this claim's: back to
/// `pending` after the backoff, or `failed` when `permanent` or old enough.
pub async fn mark_delivery_failed(
    pool: &PgPool,
    row: &OutboxRow,
    attempt: FailedAttempt<'_>,
    permanent: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notification_outbox
            SET state = CASE WHEN $8 OR created_at + make_interval(secs => $6) <= $4 THEN 'failed' ELSE 'pending' END,
                next_attempt_at = $4 + make_interval(secs => $5), lease_until = NULL, last_error = $7
          WHERE tenant_id = $1 AND id = $2 AND attempts = $3 AND state = 'sending'",
    )
    .bind(row.tenant_id)
    .bind(row.id)
    .bind(row.attempts)
    .bind(attempt.now)
    .bind(attempt.backoff.num_seconds() as f64)
    .bind(attempt.give_up_after.num_seconds() as f64)
    .bind(attempt.error)
    .bind(permanent)
    .execute(pool)
    .await?;
    Ok(())
}

/// A stored channel, as the sender reads it: (tenant, id, name, kind, config with secrets).
pub type ChannelRow = (Uuid, Uuid, String, String, Json<serde_json::Value>);

/// The channels `keys` (tenant, channel) that still exist.
pub async fn channels_of(
    conn: &mut PgConnection,
    keys: &[(Uuid, Uuid)],
) -> Result<Vec<ChannelRow>, sqlx::Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let (t, c): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
    sqlx::query_as(
        "SELECT tenant_id, id, name, kind, config FROM channels
         WHERE (tenant_id, id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))",
    )
    .bind(&t)
    .bind(&c)
    .fetch_all(conn)
    .await
}

/// Every channel of `tenants` (the sweep resolves routing with them).
pub async fn channels_of_tenants(
    conn: &mut PgConnection,
    tenants: &[Uuid],
) -> Result<Vec<ChannelRow>, sqlx::Error> {
    if tenants.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT tenant_id, id, name, kind, config FROM channels WHERE tenant_id = ANY($1)",
    )
    .bind(tenants)
    .fetch_all(conn)
    .await
}

/// The newest instance of a license: its activity and its camera reports at last contact.
pub type NewestInstance = (
    Uuid,
    Uuid,
    DateTime<Utc>,
    Json<BTreeMap<String, CameraReport>>,
);

/// An episode as deliveries describe it: (tenant, episode, kind, baseline, opened,
/// acknowledged at, the cameras a partial episode named when it opened).
pub type EpisodeFacts = (
    Uuid,
    Uuid,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Json<serde_json::Value>,
);

/// The newest reporting instance of each license (`tenants[i]`, `licenses[i]`): its activity
/// and camera reports at last contact.
pub async fn newest_instances(
    conn: &mut PgConnection,
    tenants: &[Uuid],
    licenses: &[Uuid],
) -> Result<Vec<NewestInstance>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT ON (tenant_id, license_id) tenant_id, license_id, last_activity_at, cameras
         FROM agent_instances
         WHERE (tenant_id, license_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[])) AND high_water_seq >= 0
         ORDER BY tenant_id, license_id, last_activity_at DESC",
    )
    .bind(tenants)
    .bind(licenses)
    .fetch_all(conn)
    .await
}

/// What the deliveries of some outbox rows show, as stored, loaded with a few queries.
#[derive(Debug, Default)]
pub struct EmailFacts {
    /// (tenant, name, IANA time zone).
    pub tenants: Vec<(Uuid, String, String)>,
    /// (tenant, license, key, name) of the licenses that still exist.
    pub licenses: Vec<(Uuid, Uuid, String, String)>,
    /// (tenant, license, activity, reports) of each license's newest reporting instance.
    pub newest_instances: Vec<NewestInstance>,
    pub episodes: Vec<EpisodeFacts>,
}

/// The facts the e-mails of `rows` need: their tenants' time zones, their licenses, each
/// license's newest instance, and their episodes' baselines.
pub async fn email_facts(pool: &PgPool, rows: &[OutboxRow]) -> Result<EmailFacts, sqlx::Error> {
    let tenants: Vec<Uuid> = rows.iter().map(|r| r.tenant_id).collect();
    let licenses: Vec<Uuid> = rows.iter().map(|r| r.license_id).collect();
    let episodes: Vec<Uuid> = rows.iter().map(|r| r.episode_id).collect();
    let tenant_rows = sqlx::query_as("SELECT id, name, timezone FROM tenants WHERE id = ANY($1)")
        .bind(&tenants)
        .fetch_all(pool)
        .await?;
    let license_rows =
        sqlx::query_as("SELECT tenant_id, id, key, name FROM licenses WHERE (tenant_id, id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))")
            .bind(&tenants)
            .bind(&licenses)
            .fetch_all(pool)
            .await?;
    let mut conn = pool.acquire().await?;
    let newest_instances = newest_instances(&mut conn, &tenants, &licenses).await?;
    let episode_rows =
        sqlx::query_as("SELECT tenant_id, id, kind, baseline_at, opened_at, acknowledged_at, cameras FROM notification_episodes WHERE (tenant_id, id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))")
            .bind(&tenants)
            .bind(&episodes)
            .fetch_all(pool)
            .await?;
    Ok(EmailFacts {
        tenants: tenant_rows,
        licenses: license_rows,
        newest_instances,
        episodes: episode_rows,
    })
}

// ---- history: what the API and the Activity Status page list ----

/// One delivery decided for a license (an e-mail to a recipient, or a message to a channel),
/// and its delivery state.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct NotificationView {
    pub id: Uuid,
    pub episode_id: Uuid,
    /// `inactive` (the first alert), `reminder`, `recovery`, `escalated`, `partial` or
    /// `partial_recovered`.
    pub kind: String,
    /// 0 for the first alert, k for reminder k (or escalation step k).
    pub k: i32,
    /// The e-mail address; for an HTTP channel, the channel id.
    pub recipient: String,
    /// The channel it went through; `null` for the license's plain recipients.
    pub channel_id: Option<Uuid>,
    /// `email` (plain recipients and e-mail channels), `webhook`, `slack`, `teams`,
    /// `pagerduty` or `ntfy`.
    #[schema(example = "email")]
    pub channel_kind: String,
    /// The channel's name now; `null` for plain recipients or a channel deleted since.
    pub channel_name: Option<String>,
    /// When the e-mail became due.
    pub due_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// `pending`, `sending`, `sent` or `failed` (gave up after 24 h).
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub message_id: Option<String>,
}

/// The license's newest `limit` outbox rows, newest first.
pub async fn history(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
    limit: i64,
) -> Result<Vec<NotificationView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT o.id, o.episode_id, o.kind, o.k, o.recipient, o.channel_id, o.channel_kind, c.name AS channel_name,
                o.due_at, o.created_at, o.state, o.attempts, o.next_attempt_at, o.last_error, o.sent_at, o.message_id
         FROM notification_outbox o
         LEFT JOIN channels c ON c.tenant_id = o.tenant_id AND c.id = o.channel_id
         WHERE o.tenant_id = $1 AND o.license_id = $2
         ORDER BY o.created_at DESC, o.id DESC LIMIT $3",
    )
    .bind(tenant_id)
    .bind(license_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}
