//! What was decided and sent for a license: the outbox rows, newest first. The JSON API's
//! history and the Activity Status page's last notifications both read it here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// One e-mail decided for a license, and its delivery state.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct NotificationView {
    pub id: Uuid,
    pub episode_id: Uuid,
    /// `inactive` (the first e-mail), `reminder` or `recovery`.
    pub kind: String,
    /// 0 for the first e-mail, k for reminder k.
    pub k: i32,
    pub recipient: String,
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
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
    limit: i64,
) -> Result<Vec<NotificationView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, episode_id, kind, k, recipient, due_at, created_at, state, attempts, next_attempt_at, last_error, sent_at, message_id
         FROM notification_outbox WHERE tenant_id = $1 AND license_id = $2
         ORDER BY created_at DESC, id DESC LIMIT $3",
    )
    .bind(tenant_id)
    .bind(license_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}
