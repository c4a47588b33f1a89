//! Alert channels (SPEC section 5a) as use cases: create, read, change and delete a tenant's
//! channels, and send one a `test` event at once. The JSON API and the web UI both call these.
//!
//! A channel is checked twice when saved: by `domain::channel::ChannelConfig::parse` (each
//! kind's fields, the syntactic outbound rules) and by the outbound client's
//! `check_target` (what a host name resolves to), so a tenant cannot point the server at a
//! private address. Its secrets are stored and never shown again: every answer carries
//! `ChannelConfig::redacted()`.
//!
//! Deleting a channel removes it from the routing of every license of the tenant in the same
//! transaction, and is refused (409) when an enabled license would be left with no target.

use super::{AppError, AppResult, AppState, pagination};
use crate::{
    db,
    domain::{
        DisplayName, FieldError,
        alert_event::{AlertEvent, EventTenant, EventType},
        channel::{ChannelConfig, ChannelKind},
    },
    notify::outbound::Outcome,
    store::{
        self,
        channels::{self, ChannelRow},
        tenants,
    },
};
use chrono::{DateTime, Utc};
use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use lettre::{Message, message::header::ContentType};
use serde::Serialize;
use serde_json::Value;
use std::{num::NonZeroU32, time::Duration};
use utoipa::ToSchema;
use uuid::Uuid;

/// Test sends per tenant and minute (also the burst). A test makes the server call a URL the
/// tenant chose, at once and outside the outbox's pacing: without a bound, a tenant could
/// turn the server into a request cannon aimed at someone else's endpoint.
pub const TESTS_PER_MINUTE: u32 = 10;

/// A channel as the API shows it: the config without its secrets.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelView {
    pub id: Uuid,
    #[schema(example = "Ops hook")]
    pub name: String,
    pub kind: ChannelKind,
    /// The kind's settings with secrets shown as `"[redacted]"` (or `null` when not set) and
    /// URLs by their origin only (a Slack or Teams webhook URL is a credential itself).
    #[schema(value_type = Object, example = json!({"url": "https://hooks.example.com/[redacted]", "secret": "[redacted]"}))]
    pub config: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The answer of a test send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChannelTestResult {
    /// `delivered`: the receiver accepted it (2xx, or the SMTP server took every e-mail);
    /// `retry`: a failure the outbox would retry (timeout, 408, 429, 5xx, a connection or
    /// SMTP error); `failed`: one it would not (another 4xx, a refused target).
    #[schema(example = "delivered")]
    pub outcome: ChannelTestOutcome,
    /// The receiver's HTTP status when it accepted the event (`null` for e-mail, and for a
    /// failure: its status, if any, is in `error`).
    pub status: Option<u16>,
    /// What went wrong (`null` when delivered); URLs without path, query or credentials.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelTestOutcome {
    Delivered,
    Retry,
    Failed,
}

impl ChannelTestOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Failed => "failed",
        }
    }
}

impl From<Outcome> for ChannelTestResult {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Delivered { status } => Self {
                outcome: ChannelTestOutcome::Delivered,
                status: Some(status),
                error: None,
            },
            Outcome::Retry { error, .. } => Self {
                outcome: ChannelTestOutcome::Retry,
                status: None,
                error: Some(error),
            },
            Outcome::Failed { error } => Self {
                outcome: ChannelTestOutcome::Failed,
                status: None,
                error: Some(error),
            },
        }
    }
}

/// Test sends per tenant, kept in memory (GCRA, like the ingest limits): each replica limits
/// on its own.
#[derive(Debug)]
pub struct TestLimiter(DefaultKeyedRateLimiter<Uuid>);

impl Default for TestLimiter {
    fn default() -> Self {
        Self::new(TESTS_PER_MINUTE)
    }
}

impl TestLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self(RateLimiter::keyed(Quota::per_minute(
            NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN),
        )))
    }

    /// Admits one test of `tenant_id`, or says how long to wait.
    pub fn check(&self, tenant_id: Uuid) -> Result<(), Duration> {
        if self.0.len() > 100_000 {
            self.0.retain_recent();
        }
        self.0
            .check_key(&tenant_id)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// The stored row as the API shows it.
pub fn view(row: ChannelRow) -> ChannelView {
    let kind = ChannelKind::parse(&row.kind);
    let config = kind
        .and_then(|k| ChannelConfig::from_stored(k, &row.config.0))
        .map_or_else(
            // A row that no longer reads (it cannot, short of a hand edit) shows nothing of
            // its config rather than something unredacted.
            || Value::Object(serde_json::Map::new()),
            |c| c.redacted(),
        );
    ChannelView {
        id: row.id,
        name: row.name,
        // The kind column has a CHECK constraint naming exactly the kinds there are.
        kind: kind.unwrap_or(ChannelKind::Webhook),
        config,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// The pointer of the field a kind's target URL is given in.
fn url_field(config: &ChannelConfig) -> Option<&'static str> {
    match config {
        ChannelConfig::Email { .. } => None,
        ChannelConfig::Webhook { .. } | ChannelConfig::Ntfy { .. } => Some("url"),
        ChannelConfig::Slack { .. } | ChannelConfig::Teams { .. } => Some("webhook_url"),
        // PagerDuty's own endpoint needs no check; one the tenant names does.
        ChannelConfig::Pagerduty { events_url, .. } => events_url.as_ref().map(|_| "events_url"),
    }
}

/// Checks `config` for `kind` with the outbound rules, including what the target's host name
/// resolves to (422 with a pointer into `/config` otherwise).
pub async fn check_config(
    state: &AppState,
    kind: ChannelKind,
    config: &Value,
) -> AppResult<ChannelConfig> {
    let allow_private = state.settings.channels.allow_private_targets;
    let parsed = ChannelConfig::parse(kind, config, "/config", allow_private)?;
    if let (Some(field), Some(url)) = (url_field(&parsed), parsed.target_url())
        && let Err(e) = state.sender.outbound.check_target(url).await
    {
        return Err(AppError::invalid(format!("/config/{field}"), e));
    }
    Ok(parsed)
}

fn check_name(name: &str) -> AppResult<String> {
    DisplayName::parse(name)
        .map(|n| n.as_str().to_owned())
        .map_err(|e| AppError::invalid("/name", e))
}

fn name_taken() -> AppError {
    AppError::invalid("/name", "another channel of this tenant has this name")
}

/// One page of the tenant's channels in creation order, and the next page's cursor.
pub async fn list(
    state: &AppState,
    tenant_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> AppResult<(Vec<ChannelView>, Option<String>)> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let rows = store::list::<ChannelRow>(&mut tx, tenant_id, after, limit).await?;
    tx.commit().await?;
    let (rows, next) = pagination::page(rows, limit, "id", |c| (String::new(), c.id));
    Ok((rows.into_iter().map(view).collect(), next))
}

/// One channel of the tenant (404 for another tenant's).
pub async fn get(state: &AppState, tenant_id: Uuid, id: Uuid) -> AppResult<ChannelView> {
    Ok(view(row(state, tenant_id, id).await?))
}

async fn row(state: &AppState, tenant_id: Uuid, id: Uuid) -> AppResult<ChannelRow> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let row = store::get::<ChannelRow>(&mut tx, tenant_id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok(row)
}

/// Creates a channel: a name (1..200 characters, unique in the tenant) and the kind's config.
/// Every problem is a 422 with its pointer; the name's and the config's are reported together.
pub async fn create(
    state: &AppState,
    tenant_id: Uuid,
    name: &str,
    kind: ChannelKind,
    config: &Value,
) -> AppResult<ChannelView> {
    let (name, config) = match (check_name(name), check_config(state, kind, config).await) {
        (Ok(n), Ok(c)) => (n, c),
        (n, c) => return Err(merge_problems([n.err(), c.err()])),
    };
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let row = match channels::insert(
        &mut tx,
        tenant_id,
        &name,
        kind.as_str(),
        &config.to_stored(),
    )
    .await
    {
        Err(e) if db::violated_constraint(&e) == Some(channels::NAME_UNIQUE) => {
            return Err(name_taken());
        }
        other => other?,
    };
    tx.commit().await?;
    Ok(view(row))
}

/// The problems of several checks as one 422 (the first other error as is).
fn merge_problems(errors: impl IntoIterator<Item = Option<AppError>>) -> AppError {
    let mut problems: Vec<FieldError> = Vec::new();
    for e in errors.into_iter().flatten() {
        match e {
            AppError::Invalid(p) => problems.extend(p),
            other => return other,
        }
    }
    AppError::Invalid(problems)
}

/// A change: the new name, and fields of the config to replace (those left out, or given as
/// `"[redacted]"`, keep their stored values: a client need not know the secrets to rename a
/// channel or move its URL). `kind`, when given, must be the channel's own.
#[derive(Debug, Default, Clone)]
pub struct ChannelPatch {
    pub name: Option<String>,
    pub kind: Option<ChannelKind>,
    pub config: Option<Value>,
}

/// Changes a channel (404 for another tenant's).
pub async fn update(
    state: &AppState,
    tenant_id: Uuid,
    id: Uuid,
    patch: &ChannelPatch,
) -> AppResult<ChannelView> {
    let stored = row(state, tenant_id, id).await?;
    let kind = ChannelKind::parse(&stored.kind)
        .ok_or_else(|| anyhow::anyhow!("channel {id} has an unknown kind"))?;
    let mut problems: Vec<Option<AppError>> = Vec::new();
    if let Some(k) = patch.kind
        && k != kind
    {
        problems.push(Some(AppError::invalid(
            "/kind",
            format!(
                "cannot change a {} channel into a {} one: create a new channel",
                kind.as_str(),
                k.as_str()
            ),
        )));
    }
    let name = match &patch.name {
        Some(n) => check_name(n).map_err(|e| problems.push(Some(e))).ok(),
        None => Some(stored.name.clone()),
    };
    let config = match &patch.config {
        Some(p) if !p.is_object() => {
            problems.push(Some(AppError::invalid(
                "/config",
                "must be an object with the settings to change",
            )));
            None
        }
        Some(p) => {
            let merged = ChannelConfig::merged(&stored.config.0, p);
            check_config(state, kind, &merged)
                .await
                .map_err(|e| problems.push(Some(e)))
                .ok()
                .map(|c| c.to_stored())
        }
        None => Some(stored.config.0.clone()),
    };
    if !problems.is_empty() {
        return Err(merge_problems(problems));
    }
    let (Some(name), Some(config)) = (name, config) else {
        return Err(AppError::invalid("", "the change is not valid"));
    };
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let row = match channels::update(&mut tx, tenant_id, id, &name, &config).await {
        Err(e) if db::violated_constraint(&e) == Some(channels::NAME_UNIQUE) => {
            return Err(name_taken());
        }
        other => other?.ok_or(AppError::NotFound)?,
    };
    tx.commit().await?;
    Ok(view(row))
}

/// Deletes a channel and removes it from every license's routing (its channels and its
/// escalation steps; a step left without channels goes), all in one transaction. Refused with
/// a 409 naming the licenses when an enabled license would be left with neither recipients
/// nor channels: nothing is changed then.
pub async fn delete(state: &AppState, tenant_id: Uuid, id: Uuid) -> AppResult<()> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    if channels::lock(&mut tx, tenant_id, id).await?.is_none() {
        return Err(AppError::NotFound);
    }
    let stranded = channels::stranded_by_removal(&mut tx, tenant_id, id).await?;
    if !stranded.is_empty() {
        let names: Vec<String> = stranded
            .iter()
            .map(|l| format!("{} ({})", l.key, l.name))
            .collect();
        return Err(AppError::Conflict {
            detail: format!(
                "the channel is the only target of these enabled licenses: {}; give them \
                 recipients or another channel, or turn their notifications off, first",
                names.join(", ")
            ),
            pointer: String::new(),
        });
    }
    channels::unlink(&mut tx, tenant_id, id).await?;
    if !store::delete::<ChannelRow>(&mut tx, tenant_id, id).await? {
        return Err(AppError::NotFound);
    }
    tx.commit().await?;
    Ok(())
}

/// Sends the channel a `test` event now, outside the outbox (nothing is recorded), and says
/// what came of it. An HTTP channel gets the event through the outbound client; an e-mail
/// channel one plain e-mail per recipient. At most [`TESTS_PER_MINUTE`] per tenant (429).
pub async fn test(state: &AppState, tenant_id: Uuid, id: Uuid) -> AppResult<ChannelTestResult> {
    let stored = row(state, tenant_id, id).await?;
    state
        .channel_tests
        .check(tenant_id)
        .map_err(AppError::TooManyRequests)?;
    let config = ChannelKind::parse(&stored.kind)
        .and_then(|k| ChannelConfig::from_stored(k, &stored.config.0))
        .ok_or_else(|| anyhow::anyhow!("channel {id} no longer reads"))?;
    let tenant = {
        let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
        let t = tenants::get(&mut tx, tenant_id)
            .await?
            .ok_or(AppError::NotFound)?;
        tx.commit().await?;
        t
    };
    let now = state.clock.now();
    let event = AlertEvent {
        id: Uuid::now_v7(),
        event_type: EventType::Test,
        occurred_at: now,
        tenant: EventTenant {
            id: tenant.id,
            name: tenant.name,
        },
        license: None,
        episode: None,
        last_activity_at: None,
        cameras: Vec::new(),
        acknowledge_url: None,
    };
    let result = match &config {
        ChannelConfig::Email { recipients } => {
            let addresses: Vec<&str> = recipients.iter().map(|a| a.as_str()).collect();
            send_test_emails(state, &event, &addresses, now).await
        }
        other => ChannelTestResult::from(state.sender.outbound.deliver(other, &event, now).await),
    };
    tracing::info!(channel_id = %id, kind = %stored.kind, outcome = result.outcome.as_str(), "channel test sent");
    Ok(result)
}

/// One plain-text e-mail per recipient. Delivered when every one was accepted; otherwise the
/// first failure, `failed` when the SMTP server refused it for good (5xx) and `retry` when
/// the outbox would try again.
async fn send_test_emails(
    state: &AppState,
    event: &AlertEvent,
    recipients: &[&str],
    now: DateTime<Utc>,
) -> ChannelTestResult {
    for to in recipients {
        let message = match test_email(state, event, to, now) {
            Ok(m) => m,
            Err(e) => {
                return ChannelTestResult {
                    outcome: ChannelTestOutcome::Failed,
                    status: None,
                    error: Some(format!("cannot build the e-mail to {to}: {e:#}")),
                };
            }
        };
        if let Err(e) = state.sender.mailer.send(message).await {
            let permanent = e
                .chain()
                .filter_map(|c| c.downcast_ref::<lettre::transport::smtp::Error>())
                .any(lettre::transport::smtp::Error::is_permanent);
            return ChannelTestResult {
                outcome: if permanent {
                    ChannelTestOutcome::Failed
                } else {
                    ChannelTestOutcome::Retry
                },
                status: None,
                error: Some(format!("e-mail to {to}: {e:#}")),
            };
        }
    }
    ChannelTestResult {
        outcome: ChannelTestOutcome::Delivered,
        status: None,
        error: None,
    }
}

fn test_email(
    state: &AppState,
    event: &AlertEvent,
    to: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Message> {
    let host = state
        .sender
        .from
        .email
        .domain()
        .trim_matches(['[', ']'])
        .to_owned();
    let text = format!(
        "{}\n\nEvent id: {}\nSent at: {}\n",
        event.summary(),
        event.id,
        now.format("%Y-%m-%d %H:%M:%S UTC")
    );
    Ok(Message::builder()
        .from(state.sender.from.clone())
        .to(to.parse()?)
        .subject("streamwatch test alert")
        .message_id(Some(format!("<test-{}@{host}>", event.id)))
        .date(now.into())
        .header(ContentType::TEXT_PLAIN)
        .body(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_past_its_tests_waits_while_another_is_served() {
        let l = TestLimiter::new(2);
        let (busy, calm) = (Uuid::now_v7(), Uuid::now_v7());
        assert!(l.check(busy).is_ok() && l.check(busy).is_ok());
        assert!(l.check(busy).is_err());
        assert!(l.check(calm).is_ok());
    }
}
