//! Sending the outbox. A sender *claims* due rows with a lease in one statement
//! (`FOR UPDATE SKIP LOCKED`, so replicas never claim the same row) and delivers them: e-mail
//! rows as one message per (tenant, recipient) group (a digest when a group has several rows),
//! HTTP channel rows (webhook, Slack, Teams, PagerDuty, ntfy) as one request each.
//!
//! - A sender that dies after claiming leaves leased rows; when the lease runs out another
//!   sender claims them again, and exactly one delivery goes out.
//! - E-mail: a group's rows stay locked while its message is sent, so a slow but live sender is
//!   never doubled; one that dies after sending but before marking re-sends after the lease,
//!   with the same Message-ID (derived from the rows' keys), so that receivers can de-duplicate.
//! - HTTP: no lock is held during a request (a slow endpoint must not hold a database
//!   connection). A request lasts at most 10 s and a claim's lease 5 min; rows not started
//!   well within the lease are left for the next claim, and a row is marked only if it is still
//!   this claim's (`attempts` is the fencing token). A sender frozen mid-request for longer than
//!   the lease could therefore repeat a request; it carries the same event id
//!   (`Streamwatch-Event-Id`, PagerDuty's `dedup_key`), so receivers can de-duplicate.
//! - Failures put rows back with exponential backoff (1 min doubling, at most 1 h; at least what
//!   a 429's `Retry-After` asks); rows still failing 24 h after they were decided, and HTTP
//!   rows a receiver refused for good (a 4xx other than 408 and 429, a redirect, a forbidden
//!   target), are marked `failed`. Every state shows in `GET /licenses/{id}/notifications`.
//! - Deliveries run concurrently: e-mail groups over lettre's connection pool, HTTP channels
//!   side by side with each channel's rows in order, so one slow endpoint delays only its own.
//!
//! The statements are in `store::outbox`; the lease, the backoff and the grouping are here.

use super::{
    ack::{self, AckKeys, AckToken},
    email::{self, CameraLine, Item, Kind, Unsubscribe, UnsubscribeKeys},
    mailer::Mailer,
    outbound::{Outbound, Outcome},
};
use crate::{
    domain::{
        alert_event::{
            AlertEvent, EventCamera, EventEpisode, EventLicense, EventTenant, EventType,
        },
        channel::{ChannelConfig, ChannelKind},
        status::LicenseStatus,
    },
    store::{
        self,
        outbox::{self, FailedAttempt, OutboxRow},
    },
};
use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, stream};
use lettre::{
    Message,
    message::{
        Mailbox, MultiPart,
        header::{Header, HeaderName, HeaderValue},
    },
};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use streamwatch_protocol::CameraStatus;
use uuid::Uuid;

/// How long a claim holds its rows.
pub const LEASE: Duration = Duration::minutes(5);
/// Rows that could not be delivered for this long are given up (`failed`).
pub const GIVE_UP_AFTER: Duration = Duration::hours(24);
/// Rows claimed per round.
const CLAIM_LIMIT: i64 = 500;
/// E-mail groups sent at once (each holds a pooled SMTP connection and a database connection).
pub const EMAIL_CONCURRENCY: usize = 8;
/// HTTP channels served at once (no database connection is held during a request).
const HTTP_CONCURRENCY: usize = 32;
/// An HTTP row is started only this long into its claim's lease, so that it ends (10 s at
/// most) well before another sender may claim it again.
const HTTP_START_WITHIN: std::time::Duration = std::time::Duration::from_secs(240);

/// Everything a sender needs besides the database.
#[derive(Clone, Debug)]
pub struct Sender {
    pub mailer: Mailer,
    pub from: Mailbox,
    /// Base URL for links in e-mails.
    pub public_url: String,
    pub unsubscribe: UnsubscribeKeys,
    /// HTTP channels (webhook, Slack, Teams, PagerDuty, ntfy).
    pub outbound: Outbound,
    /// Signs the one-click acknowledgement link of every alert.
    pub ack: AckKeys,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub emails_sent: usize,
    pub rows_sent: usize,
    pub rows_failed_attempt: usize,
    /// HTTP channel requests answered with 2xx.
    pub requests_delivered: usize,
}

impl DeliveryReport {
    fn add(&mut self, other: DeliveryReport) {
        self.emails_sent += other.emails_sent;
        self.rows_sent += other.rows_sent;
        self.rows_failed_attempt += other.rows_failed_attempt;
        self.requests_delivered += other.requests_delivered;
    }
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

/// The backoff after a failed attempt: 1 min doubling per attempt, at most 1 h.
fn backoff(attempts: i32) -> Duration {
    Duration::minutes(1 << (attempts - 1).clamp(0, 6)).min(Duration::hours(1))
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
            report.add(self.deliver(pool, rows, now).await?);
            if !more {
                return Ok(report);
            }
        }
    }

    /// Sends claimed rows: one e-mail per (tenant, recipient), one request per HTTP row.
    pub async fn deliver(
        &self,
        pool: &PgPool,
        rows: Vec<OutboxRow>,
        now: DateTime<Utc>,
    ) -> Result<DeliveryReport, sqlx::Error> {
        let claimed_at = std::time::Instant::now();
        let context = Context::load(pool, &rows, now).await?;
        let mut groups: BTreeMap<(Uuid, String), Vec<OutboxRow>> = BTreeMap::new();
        let mut channels: BTreeMap<(Uuid, Option<Uuid>), Vec<OutboxRow>> = BTreeMap::new();
        for row in rows {
            if row.channel_kind == ChannelKind::Email.as_str() {
                groups
                    .entry((row.tenant_id, row.recipient.clone()))
                    .or_default()
                    .push(row);
            } else {
                channels
                    .entry((row.tenant_id, row.channel_id))
                    .or_default()
                    .push(row);
            }
        }
        let context = &context;
        let emails = stream::iter(groups)
            .map(|((tenant_id, recipient), rows)| {
                self.send_group(pool, context, tenant_id, recipient, rows, now)
            })
            .buffer_unordered(EMAIL_CONCURRENCY);
        let requests = stream::iter(channels)
            .map(|(_, rows)| self.send_channel(pool, context, rows, now, claimed_at))
            .buffer_unordered(HTTP_CONCURRENCY);
        let (emails, requests): (Vec<_>, Vec<_>) =
            futures::join!(emails.collect::<Vec<_>>(), requests.collect::<Vec<_>>());
        let mut report = DeliveryReport::default();
        for r in emails.into_iter().chain(requests) {
            report.add(r?);
        }
        Ok(report)
    }

    /// Sends one e-mail for a (tenant, recipient) group of rows.
    async fn send_group(
        &self,
        pool: &PgPool,
        context: &Context,
        tenant_id: Uuid,
        recipient: String,
        rows: Vec<OutboxRow>,
        now: DateTime<Utc>,
    ) -> Result<DeliveryReport, sqlx::Error> {
        let mut report = DeliveryReport::default();
        let keys: Vec<(Uuid, String, i32, String)> = rows
            .iter()
            .map(|r| (r.episode_id, r.kind.clone(), r.k, r.recipient.clone()))
            .collect();
        let message_id = email::message_id(&keys);
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let attempts: Vec<i32> = rows.iter().map(|r| r.attempts).collect();
        // Hold the group's rows locked while its e-mail is sent. A claim elsewhere skips
        // locked rows (SKIP LOCKED) even when their lease ran out, so a slow but live sender is
        // never doubled; a crashed one drops its connection and with it the lock. The attempts
        // count is the claim's fencing token: rows re-claimed meanwhile by another sender (or
        // already sent) are not ours any more, and this e-mail is skipped.
        let mut tx = pool.begin().await?;
        let held = outbox::hold(&mut tx, tenant_id, &ids, &attempts).await?;
        if held.len() != ids.len() {
            tracing::info!(
                rows = ids.len(),
                held = held.len(),
                "notification rows were re-claimed by another sender; skipping them here"
            );
            tx.rollback().await?;
            return Ok(report);
        }
        let result = match self.build(context, tenant_id, &recipient, &rows, &message_id, now) {
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
                let error = format!("{e:#}");
                tracing::warn!(error = %error, rows = rows.len(), "notification e-mail failed; will retry");
                let attempt = FailedAttempt {
                    now,
                    backoff: backoff(most),
                    give_up_after: GIVE_UP_AFTER,
                    error: &error,
                };
                outbox::mark_attempt_failed(&mut tx, tenant_id, &ids, attempt).await?;
                tx.commit().await?;
                metrics::counter!("notification_emails_failed_total").increment(1);
                report.rows_failed_attempt += rows.len();
            }
        }
        Ok(report)
    }

    /// Sends one HTTP channel's rows, one request each, in order.
    async fn send_channel(
        &self,
        pool: &PgPool,
        context: &Context,
        rows: Vec<OutboxRow>,
        now: DateTime<Utc>,
        claimed_at: std::time::Instant,
    ) -> Result<DeliveryReport, sqlx::Error> {
        let mut report = DeliveryReport::default();
        for row in rows {
            if claimed_at.elapsed() > HTTP_START_WITHIN {
                // Left leased: the next claim after the lease takes it (see the module docs).
                continue;
            }
            let channel = row
                .channel_id
                .and_then(|id| context.channels.get(&(row.tenant_id, id)));
            let outcome = match channel {
                None => Outcome::Failed {
                    error: "the channel was deleted".to_owned(),
                },
                Some((name, config)) => {
                    let via = format!("{} channel {name}", config.kind().label());
                    match context.event(&self.public_url, &row, self.ack_url(&row, via)) {
                        None => Outcome::Failed {
                            error: "the license of this alert no longer exists".to_owned(),
                        },
                        Some(event) => self.outbound.deliver(config, &event, now).await,
                    }
                }
            };
            let kind = row.channel_kind.clone();
            match outcome {
                Outcome::Delivered { .. } => {
                    if outbox::mark_delivered(pool, &row, now).await? {
                        metrics::counter!("notification_requests_delivered_total", "channel" => kind)
                            .increment(1);
                        report.requests_delivered += 1;
                        report.rows_sent += 1;
                    }
                }
                Outcome::Retry { error, retry_after } => {
                    let asked = retry_after
                        .and_then(|d| Duration::from_std(d).ok())
                        .unwrap_or_else(Duration::zero)
                        .min(Duration::hours(1));
                    tracing::warn!(channel = %kind, error = %error, "alert delivery failed; will retry");
                    let attempt = FailedAttempt {
                        now,
                        backoff: backoff(row.attempts).max(asked),
                        give_up_after: GIVE_UP_AFTER,
                        error: &error,
                    };
                    outbox::mark_delivery_failed(pool, &row, attempt, false).await?;
                    metrics::counter!("notification_requests_failed_total", "channel" => kind)
                        .increment(1);
                    report.rows_failed_attempt += 1;
                }
                Outcome::Failed { error } => {
                    tracing::warn!(channel = %kind, error = %error, "alert delivery refused; not retried");
                    let attempt = FailedAttempt {
                        now,
                        backoff: Duration::zero(),
                        give_up_after: GIVE_UP_AFTER,
                        error: &error,
                    };
                    outbox::mark_delivery_failed(pool, &row, attempt, true).await?;
                    metrics::counter!("notification_requests_failed_total", "channel" => kind)
                        .increment(1);
                    report.rows_failed_attempt += 1;
                }
            }
        }
        Ok(report)
    }

    /// The signed one-click link that acknowledges the row's episode, for an alert that is not
    /// a recovery; `via` says where the alert went.
    fn ack_url(&self, row: &OutboxRow, via: String) -> Option<String> {
        let recovery = EventType::from_outbox_kind(&row.kind).is_none_or(EventType::is_recovery);
        (!recovery).then(|| {
            let token = self.ack.sign(&AckToken {
                tenant_id: row.tenant_id,
                license_id: row.license_id,
                episode_id: row.episode_id,
                via,
            });
            ack::ack_url(&self.public_url, &token)
        })
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
            .tenants
            .get(&tenant_id)
            .map_or(chrono_tz::UTC, |t| t.timezone);
        let items: Vec<Item> = rows
            .iter()
            .filter_map(|r| {
                let license = context.licenses.get(&(r.tenant_id, r.license_id))?;
                let episode = context.episodes.get(&(r.tenant_id, r.episode_id));
                Some(Item {
                    kind: Kind::from_row(
                        &r.kind,
                        r.k,
                        episode.map_or("inactive", |e| e.kind.as_str()),
                    ),
                    license_id: r.license_id,
                    license_key: license.key.clone(),
                    license_name: license.name.clone(),
                    last_activity_at: license.last_activity_at,
                    baseline_at: episode.map_or(now, |e| e.baseline_at),
                    cameras: license.cameras.clone(),
                    acknowledge_url: self.ack_url(r, recipient.to_owned()),
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

struct TenantFacts {
    name: String,
    timezone: chrono_tz::Tz,
}

struct LicenseFacts {
    key: String,
    name: String,
    last_activity_at: Option<DateTime<Utc>>,
    cameras: Vec<CameraLine>,
    /// As reported at last contact, for HTTP events.
    reports: Vec<EventCamera>,
    status: Option<LicenseStatus>,
}

struct EpisodeFacts {
    kind: String,
    baseline_at: DateTime<Utc>,
    opened_at: DateTime<Utc>,
    acknowledged_at: Option<DateTime<Utc>>,
    /// For a partial episode: the cameras it named when it opened.
    cameras: Vec<EventCamera>,
}

/// A license's newest activity and its cameras then, for e-mails and for events.
type AtLastContact = (DateTime<Utc>, Vec<CameraLine>, Vec<EventCamera>);

/// What the deliveries of one batch of rows need, loaded with a few queries.
struct Context {
    tenants: HashMap<Uuid, TenantFacts>,
    licenses: HashMap<(Uuid, Uuid), LicenseFacts>,
    episodes: HashMap<(Uuid, Uuid), EpisodeFacts>,
    /// HTTP channels by (tenant, id): their name and configuration.
    channels: HashMap<(Uuid, Uuid), (String, ChannelConfig)>,
}

impl Context {
    async fn load(
        pool: &PgPool,
        rows: &[OutboxRow],
        now: DateTime<Utc>,
    ) -> Result<Self, sqlx::Error> {
        let facts = outbox::email_facts(pool, rows).await?;
        let http: Vec<&OutboxRow> = rows
            .iter()
            .filter(|r| r.channel_kind != ChannelKind::Email.as_str())
            .collect();
        let mut conn = pool.acquire().await?;
        let channel_keys: Vec<(Uuid, Uuid)> = http
            .iter()
            .filter_map(|r| Some((r.tenant_id, r.channel_id?)))
            .collect();
        let channels = outbox::channels_of(&mut conn, &channel_keys)
            .await?
            .into_iter()
            .filter_map(|(t, id, name, kind, config)| {
                Some((
                    (t, id),
                    (
                        name,
                        ChannelConfig::from_stored(ChannelKind::parse(&kind)?, &config.0)?,
                    ),
                ))
            })
            .collect();
        let license_keys: Vec<(Uuid, Uuid)> =
            http.iter().map(|r| (r.tenant_id, r.license_id)).collect();
        let statuses: HashMap<(Uuid, Uuid), LicenseStatus> =
            store::status::statuses_of(&mut conn, &license_keys, now)
                .await?
                .into_iter()
                .map(|(t, l, s)| ((t, l), s))
                .collect();
        drop(conn);
        let mut instances: HashMap<(Uuid, Uuid), AtLastContact> = HashMap::new();
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
            let reports = cams
                .0
                .iter()
                .map(|(id, c)| EventCamera {
                    camera_id: id.clone(),
                    state: c.status.as_str().to_owned(),
                    reason: (c.status != CameraStatus::Running).then(|| {
                        c.last_error
                            .as_deref()
                            .map(str::trim)
                            .filter(|e| !e.is_empty())
                            .map_or_else(
                                || c.status.as_str().to_owned(),
                                streamwatch_protocol::redact::redact_urls_in_text,
                            )
                    }),
                    snapshot_url: None,
                })
                .collect();
            instances.insert((t, l), (at, lines, reports));
        }
        Ok(Self {
            tenants: facts
                .tenants
                .into_iter()
                .map(|(id, name, tz)| {
                    (
                        id,
                        TenantFacts {
                            name,
                            timezone: tz.parse().unwrap_or(chrono_tz::UTC),
                        },
                    )
                })
                .collect(),
            licenses: facts
                .licenses
                .into_iter()
                .map(|(t, id, key, name)| {
                    let (last_activity_at, cameras, reports) = instances
                        .remove(&(t, id))
                        .map_or((None, Vec::new(), Vec::new()), |(a, c, r)| (Some(a), c, r));
                    (
                        (t, id),
                        LicenseFacts {
                            key,
                            name,
                            last_activity_at,
                            cameras,
                            reports,
                            status: statuses.get(&(t, id)).copied(),
                        },
                    )
                })
                .collect(),
            episodes: facts
                .episodes
                .into_iter()
                .map(
                    |(t, id, kind, baseline_at, opened_at, acknowledged_at, cameras)| {
                        (
                            (t, id),
                            EpisodeFacts {
                                kind,
                                baseline_at,
                                opened_at,
                                acknowledged_at,
                                cameras: serde_json::from_value(cameras.0).unwrap_or_default(),
                            },
                        )
                    },
                )
                .collect(),
            channels,
        })
    }

    /// The event an HTTP row delivers (SPEC section 5a); `None` if its license is gone. Its id
    /// is the row's, so a redelivery carries the same id.
    fn event(
        &self,
        public_url: &str,
        row: &OutboxRow,
        acknowledge_url: Option<String>,
    ) -> Option<AlertEvent> {
        let license = self.licenses.get(&(row.tenant_id, row.license_id))?;
        let episode = self.episodes.get(&(row.tenant_id, row.episode_id));
        let event_type = EventType::from_outbox_kind(&row.kind)?;
        let partial = episode.is_some_and(|e| e.kind == "partial");
        let mut cameras = match episode {
            Some(e) if partial && !event_type.is_recovery() => e.cameras.clone(),
            _ => license.reports.clone(),
        };
        for camera in &mut cameras {
            // Camera ids are validated at ingest (`[A-Za-z0-9._-]`): safe in a path as they are.
            camera.snapshot_url = Some(format!(
                "{public_url}/licenses/{}/cameras/{}/snapshot",
                row.license_id, camera.camera_id
            ));
        }
        Some(AlertEvent {
            id: row.id,
            event_type,
            occurred_at: row.created_at,
            tenant: EventTenant {
                id: row.tenant_id,
                name: self
                    .tenants
                    .get(&row.tenant_id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
            },
            license: Some(EventLicense {
                id: row.license_id,
                key: license.key.clone(),
                name: license.name.clone(),
                status: license
                    .status
                    .map_or("not_installed", LicenseStatus::as_str)
                    .to_owned(),
                url: format!("{public_url}/licenses/{}", row.license_id),
            }),
            episode: episode.map(|e| EventEpisode {
                id: row.episode_id,
                kind: e.kind.clone(),
                opened_at: e.opened_at,
                acknowledged_at: e.acknowledged_at,
            }),
            last_activity_at: license.last_activity_at,
            cameras,
            acknowledge_url,
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
