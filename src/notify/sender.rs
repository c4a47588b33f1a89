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
//!
//! The statements are in `store::outbox`; the lease, the backoff and the grouping are here.

use super::{
    email::{self, CameraLine, Item, Kind, Unsubscribe, UnsubscribeKeys},
    mailer::Mailer,
};
use crate::store::outbox::{self, FailedAttempt, OutboxRow};
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
use uuid::Uuid;

/// How long a claim holds its rows.
pub const LEASE: Duration = Duration::minutes(5);
/// Rows that could not be delivered for this long are given up (`failed`).
pub const GIVE_UP_AFTER: Duration = Duration::hours(24);
/// Rows claimed per round.
const CLAIM_LIMIT: i64 = 500;

/// Everything a sender needs besides the database.
#[derive(Clone, Debug)]
pub struct Sender {
    pub mailer: Mailer,
    pub from: Mailbox,
    /// Base URL for links in e-mails.
    pub public_url: String,
    pub unsubscribe: UnsubscribeKeys,
    /// HTTP channels (webhook, Slack, Teams, PagerDuty, ntfy).
    pub outbound: super::outbound::Outbound,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub emails_sent: usize,
    pub rows_sent: usize,
    pub rows_failed_attempt: usize,
}

/// Claims up to `limit` due rows (pending, or sending with an expired lease) for [`LEASE`].
/// Public so that tests can claim and then "crash".
pub async fn claim(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    outbox::claim(pool, now, limit, LEASE).await
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
            let held = outbox::hold(&mut tx, tenant_id, &ids, &attempts).await?;
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
                    outbox::mark_sent(&mut tx, tenant_id, &ids, now, &message_id).await?;
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
                    let attempt = FailedAttempt {
                        now,
                        backoff,
                        give_up_after: GIVE_UP_AFTER,
                        error: &error,
                    };
                    outbox::mark_attempt_failed(&mut tx, tenant_id, &ids, attempt).await?;
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
        let facts = outbox::email_facts(pool, rows).await?;
        let mut instances: HashMap<(Uuid, Uuid), (DateTime<Utc>, Vec<CameraLine>)> = HashMap::new();
        for (t, l, at, cams) in facts.newest_instances {
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
            timezones: facts
                .timezones
                .into_iter()
                .map(|(id, tz)| (id, tz.parse().unwrap_or(chrono_tz::UTC)))
                .collect(),
            licenses: facts
                .licenses
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
            baselines: facts
                .baselines
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
