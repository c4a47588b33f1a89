//! Sending the outbox. A sender *claims* due rows with a lease in one statement
//! (`FOR UPDATE SKIP LOCKED`, so replicas never claim the same row), sends one e-mail per
//! (tenant, recipient) group (a digest when a group has several rows), and marks the rows sent.
//!
//! - A sender that dies after claiming leaves leased rows; when the lease runs out another
//!   sender claims them again, and exactly one e-mail goes out.
//! - A sender that dies after sending but before marking re-sends after the lease, with the
//!   same Message-ID (derived from the rows' keys), so that receivers can de-duplicate.
//! - An SMTP failure puts the rows back with exponential backoff (1 min doubling, at most 1 h);
//!   rows still failing 24 h after they were decided are marked `failed`. Every state shows in
//!   `GET /licenses/{id}/notifications`.

use super::{
    email::{self, CameraLine, Item, Kind, Unsubscribe, UnsubscribeKeys},
    mailer::Mailer,
};
use chrono::{DateTime, Duration, Utc};
use lettre::{
    Message,
    message::{
        Mailbox, MultiPart,
        header::{Header, HeaderName, HeaderValue},
    },
};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use streamwatch_protocol::CameraReport;
use uuid::Uuid;

/// How long a claim holds its rows.
pub const LEASE: Duration = Duration::minutes(5);
/// Rows that could not be delivered for this long are given up (`failed`).
pub const GIVE_UP_AFTER: Duration = Duration::hours(24);
/// Rows claimed per round.
const CLAIM_LIMIT: i64 = 500;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub license_id: Uuid,
    pub episode_id: Uuid,
    pub kind: String,
    pub k: i32,
    pub recipient: String,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
}

/// Everything a sender needs besides the database.
#[derive(Clone, Debug)]
pub struct Sender {
    pub mailer: Mailer,
    pub from: Mailbox,
    /// Base URL for links in e-mails.
    pub public_url: String,
    pub unsubscribe: UnsubscribeKeys,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub emails_sent: usize,
    pub rows_sent: usize,
    pub rows_failed_attempt: usize,
}

/// Claims up to `limit` due rows (pending, or sending with an expired lease). Public so that
/// tests can claim and then "crash".
pub async fn claim(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE notification_outbox o
            SET state = 'sending', lease_until = $1 + make_interval(secs => $3), attempts = o.attempts + 1
          WHERE (o.tenant_id, o.id) IN (
                SELECT tenant_id, id FROM notification_outbox
                 WHERE state IN ('pending', 'sending') AND next_attempt_at <= $1
                   AND (state = 'pending' OR lease_until < $1)
                 ORDER BY tenant_id, recipient, created_at
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED)
          RETURNING o.tenant_id, o.id, o.license_id, o.episode_id, o.kind, o.k, o.recipient, o.created_at, o.attempts",
    )
    .bind(now)
    .bind(limit)
    .bind(LEASE.num_seconds() as f64)
    .fetch_all(pool)
    .await
}

impl Sender {
    /// Claims and sends everything due, round after round, until nothing due is left.
    pub async fn deliver_due(
        &self,
        pool: &PgPool,
        now: DateTime<Utc>,
    ) -> Result<DeliveryReport, sqlx::Error> {
        let mut report = DeliveryReport::default();
        loop {
            let rows = claim(pool, now, CLAIM_LIMIT).await?;
            if rows.is_empty() {
                return Ok(report);
            }
            let more = rows.len() as i64 == CLAIM_LIMIT;
            let r = self.deliver(pool, rows, now).await?;
            report.emails_sent += r.emails_sent;
            report.rows_sent += r.rows_sent;
            report.rows_failed_attempt += r.rows_failed_attempt;
            if !more {
                return Ok(report);
            }
        }
    }

    /// Sends claimed rows: one e-mail per (tenant, recipient).
    pub async fn deliver(
        &self,
        pool: &PgPool,
        rows: Vec<OutboxRow>,
        now: DateTime<Utc>,
    ) -> Result<DeliveryReport, sqlx::Error> {
        let mut report = DeliveryReport::default();
        let context = Context::load(pool, &rows).await?;
        let mut groups: BTreeMap<(Uuid, String), Vec<OutboxRow>> = BTreeMap::new();
        for row in rows {
            groups
                .entry((row.tenant_id, row.recipient.clone()))
                .or_default()
                .push(row);
        }
        for ((tenant_id, recipient), rows) in groups {
            let keys: Vec<(Uuid, String, i32, String)> = rows
                .iter()
                .map(|r| (r.episode_id, r.kind.clone(), r.k, r.recipient.clone()))
                .collect();
            let message_id = email::message_id(&keys);
            let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
            let attempts: Vec<i32> = rows.iter().map(|r| r.attempts).collect();
            // Hold the group's rows locked while its e-mail is sent. A claim elsewhere skips
            // locked rows (SKIP LOCKED) even when their lease ran out, so a slow but live sender
            // is never doubled; a crashed one drops its connection and with it the lock. The
            // attempts count is the claim's fencing token: rows re-claimed meanwhile by another
            // sender (or already sent) are not ours any more, and this e-mail is skipped.
            let mut tx = pool.begin().await?;
            let held: Vec<Uuid> = sqlx::query_scalar(
                "SELECT id FROM notification_outbox
                  WHERE tenant_id = $1 AND state = 'sending'
                    AND (id, attempts) IN (SELECT * FROM unnest($2::uuid[], $3::int4[]))
                  FOR UPDATE SKIP LOCKED",
            )
            .bind(tenant_id)
            .bind(&ids)
            .bind(&attempts)
            .fetch_all(&mut *tx)
            .await?;
            if held.len() != ids.len() {
                tracing::info!(
                    rows = ids.len(),
                    held = held.len(),
                    "notification rows were re-claimed by another sender; skipping them here"
                );
                tx.rollback().await?;
                continue;
            }
            let result = match self.build(&context, tenant_id, &recipient, &rows, &message_id, now)
            {
                Ok(message) => self.mailer.send(message).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    sqlx::query(
                        "UPDATE notification_outbox SET state = 'sent', sent_at = $3, message_id = $4, lease_until = NULL, last_error = NULL
                         WHERE tenant_id = $1 AND id = ANY($2)",
                    )
                    .bind(tenant_id)
                    .bind(&ids)
                    .bind(now)
                    .bind(&message_id)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    metrics::counter!("notification_emails_sent_total").increment(1);
                    report.emails_sent += 1;
                    report.rows_sent += rows.len();
                }
                Err(e) => {
                    let most = attempts.iter().copied().max().unwrap_or(1);
                    let backoff =
                        Duration::minutes(1 << (most - 1).clamp(0, 6)).min(Duration::hours(1));
                    let error = format!("{e:#}");
                    tracing::warn!(error = %error, rows = rows.len(), "notification e-mail failed; will retry");
                    sqlx::query(
                        "UPDATE notification_outbox
                            SET state = CASE WHEN created_at + make_interval(secs => $5) <= $3 THEN 'failed' ELSE 'pending' END,
                                next_attempt_at = $3 + make_interval(secs => $4), lease_until = NULL, last_error = $6
                          WHERE tenant_id = $1 AND id = ANY($2)",
                    )
                    .bind(tenant_id)
                    .bind(&ids)
                    .bind(now)
                    .bind(backoff.num_seconds() as f64)
                    .bind(GIVE_UP_AFTER.num_seconds() as f64)
                    .bind(error)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    metrics::counter!("notification_emails_failed_total").increment(1);
                    report.rows_failed_attempt += rows.len();
                }
            }
        }
        Ok(report)
    }

    fn build(
        &self,
        context: &Context,
        tenant_id: Uuid,
        recipient: &str,
        rows: &[OutboxRow],
        message_id: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Message> {
        let tz = context
            .timezones
            .get(&tenant_id)
            .copied()
            .unwrap_or(chrono_tz::UTC);
        let items: Vec<Item> = rows
            .iter()
            .filter_map(|r| {
                let license = context.licenses.get(&(r.tenant_id, r.license_id))?;
                Some(Item {
                    kind: Kind::from_row(&r.kind, r.k),
                    license_id: r.license_id,
                    license_key: license.key.clone(),
                    license_name: license.name.clone(),
                    last_activity_at: license.last_activity_at,
                    baseline_at: context
                        .baselines
                        .get(&(r.tenant_id, r.episode_id))
                        .copied()
                        .unwrap_or(now),
                    cameras: license.cameras.clone(),
                })
            })
            .collect();
        anyhow::ensure!(
            !items.is_empty(),
            "the licenses of these notifications no longer exist"
        );
        let mut licenses: Vec<Uuid> = rows.iter().map(|r| r.license_id).collect();
        licenses.sort();
        licenses.dedup();
        let token = self.unsubscribe.sign(&Unsubscribe {
            tenant_id,
            recipient: recipient.to_owned(),
            licenses,
        });
        let unsubscribe_url = format!("{}/unsubscribe?token={token}", self.public_url);
        let rendered = email::render(&items, tz, now, &self.public_url, &unsubscribe_url);
        Ok(Message::builder()
            .from(self.from.clone())
            .to(recipient.parse()?)
            .subject(rendered.subject)
            .message_id(Some(message_id.to_owned()))
            // The clock's time (simulated in tests and demos), like everything else.
            .date(now.into())
            .header(ListUnsubscribe(format!("<{unsubscribe_url}>")))
            .header(ListUnsubscribePost)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))?)
    }
}

struct LicenseFacts {
    key: String,
    name: String,
    last_activity_at: Option<DateTime<Utc>>,
    cameras: Vec<CameraLine>,
}

/// What the e-mails of one batch of rows need, loaded with a few queries.
struct Context {
    timezones: HashMap<Uuid, chrono_tz::Tz>,
    licenses: HashMap<(Uuid, Uuid), LicenseFacts>,
    baselines: HashMap<(Uuid, Uuid), DateTime<Utc>>,
}

impl Context {
    async fn load(pool: &PgPool, rows: &[OutboxRow]) -> Result<Self, sqlx::Error> {
        let tenants: Vec<Uuid> = rows.iter().map(|r| r.tenant_id).collect();
        let licenses: Vec<Uuid> = rows.iter().map(|r| r.license_id).collect();
        let episodes: Vec<Uuid> = rows.iter().map(|r| r.episode_id).collect();
        let tz_rows: Vec<(Uuid, String)> =
            sqlx::query_as("SELECT id, timezone FROM tenants WHERE id = ANY($1)")
                .bind(&tenants)
                .fetch_all(pool)
                .await?;
        let license_rows: Vec<(Uuid, Uuid, String, String)> =
            sqlx::query_as("SELECT tenant_id, id, key, name FROM licenses WHERE (tenant_id, id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))")
                .bind(&tenants)
                .bind(&licenses)
                .fetch_all(pool)
                .await?;
        // The newest instance of each license: its activity and its cameras at last contact.
        type InstanceRow = (
            Uuid,
            Uuid,
            DateTime<Utc>,
            sqlx::types::Json<BTreeMap<String, CameraReport>>,
        );
        let instance_rows: Vec<InstanceRow> = sqlx::query_as(
            "SELECT DISTINCT ON (tenant_id, license_id) tenant_id, license_id, last_activity_at, cameras
             FROM agent_instances
             WHERE (tenant_id, license_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[])) AND high_water_seq >= 0
             ORDER BY tenant_id, license_id, last_activity_at DESC",
        )
        .bind(&tenants)
        .bind(&licenses)
        .fetch_all(pool)
        .await?;
        let baseline_rows: Vec<(Uuid, Uuid, DateTime<Utc>)> =
            sqlx::query_as("SELECT tenant_id, id, baseline_at FROM notification_episodes WHERE (tenant_id, id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))")
                .bind(&tenants)
                .bind(&episodes)
                .fetch_all(pool)
                .await?;
        let mut instances: HashMap<(Uuid, Uuid), (DateTime<Utc>, Vec<CameraLine>)> = HashMap::new();
        for (t, l, at, cams) in instance_rows {
            let lines = cams
                .0
                .iter()
                .map(|(id, c)| CameraLine {
                    id: id.clone(),
                    status: c.status.as_str().to_owned(),
                    health: c.health,
                })
                .collect();
            instances.insert((t, l), (at, lines));
        }
        Ok(Self {
            timezones: tz_rows
                .into_iter()
                .map(|(id, tz)| (id, tz.parse().unwrap_or(chrono_tz::UTC)))
                .collect(),
            licenses: license_rows
                .into_iter()
                .map(|(t, id, key, name)| {
                    let (last_activity_at, cameras) = instances
                        .remove(&(t, id))
                        .map_or((None, Vec::new()), |(a, c)| (Some(a), c));
                    (
                        (t, id),
                        LicenseFacts {
                            key,
                            name,
                            last_activity_at,
                            cameras,
                        },
                    )
                })
                .collect(),
            baselines: baseline_rows
                .into_iter()
                .map(|(t, id, b)| ((t, id), b))
                .collect(),
        })
    }
}

/// `List-Unsubscribe: <https://…/unsubscribe?token=…>` (RFC 2369).
#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058): mail clients may
/// unsubscribe with one POST, without opening a page.
#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}
