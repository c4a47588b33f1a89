//! Alert channels (SPEC section 5a): the `channels` table, and what deleting one does to the
//! routing of the tenant's licenses (`notification_settings.channels` and `escalation`).

use super::TenantRow;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, types::Json};
use uuid::Uuid;

/// A stored channel. `config` holds the kind's fields with their secrets: read it through
/// `domain::channel::ChannelConfig::from_stored`, show it through `redacted()` only.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChannelRow {
    pub id: Uuid,
    pub name: String,
    /// `email`, `webhook`, `slack`, `teams`, `pagerduty` or `ntfy` (a CHECK constraint).
    pub kind: String,
    pub config: Json<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TenantRow for ChannelRow {
    const TABLE: &'static str = "channels";
    const COLUMNS: &'static str = "id, name, kind, config, created_at, updated_at";
}

/// The constraint a second channel with a tenant's existing name violates.
pub const NAME_UNIQUE: &str = "channels_name_unique";

pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    name: &str,
    kind: &str,
    config: &Value,
) -> Result<ChannelRow, sqlx::Error> {
    sqlx::query_as(super::returning::<ChannelRow>(
        "INSERT INTO channels (tenant_id, id, name, kind, config) VALUES ($1, $2, $3, $4, $5)",
    ))
    .bind(tenant_id)
    .bind(Uuid::now_v7())
    .bind(name)
    .bind(kind)
    .bind(Json(config))
    .fetch_one(conn)
    .await
}

/// Replaces the name and the config (the kind never changes); `None` if there is no such
/// channel in the tenant.
pub async fn update(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    name: &str,
    config: &Value,
) -> Result<Option<ChannelRow>, sqlx::Error> {
    sqlx::query_as(super::returning::<ChannelRow>(
        "UPDATE channels SET name = $3, config = $4, updated_at = now()
          WHERE tenant_id = $1 AND id = $2",
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(name)
    .bind(Json(config))
    .fetch_optional(conn)
    .await
}

/// The tenant's channel, locked until the transaction ends (`FOR UPDATE`): a delete holds it
/// while it rewrites the licenses' routing, so a change that names the channel meanwhile
/// (reading it `FOR SHARE`) waits and then finds it gone.
pub async fn lock(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<ChannelRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM channels WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        ChannelRow::COLUMNS
    )))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A license that would be left enabled without any target.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StrandedLicense {
    pub id: Uuid,
    pub key: String,
    pub name: String,
}

/// The enabled licenses whose only target is this channel: no plain recipients and no other
/// channel. Their settings rows stay locked (`FOR UPDATE`) until the transaction ends, so
/// the answer holds for the [`unlink`] that follows.
pub async fn stranded_by_removal(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    channel_id: Uuid,
) -> Result<Vec<StrandedLicense>, sqlx::Error> {
    sqlx::query_as(
        "SELECT l.id, l.key, l.name
           FROM notification_settings n
           JOIN licenses l ON l.tenant_id = n.tenant_id AND l.id = n.license_id
          WHERE n.tenant_id = $1 AND n.enabled AND cardinality(n.recipients) = 0
            AND $2 = ANY (n.channels) AND cardinality(array_remove(n.channels, $2)) = 0
          ORDER BY l.key
            FOR UPDATE OF n",
    )
    .bind(tenant_id)
    .bind(channel_id)
    .fetch_all(conn)
    .await
}

/// Removes the channel from every license's `channels` and from every escalation step of the
/// tenant; a step left without channels is dropped (the later steps keep their order).
/// Returns how many licenses' settings changed.
pub async fn unlink(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    channel_id: Uuid,
) -> Result<u64, sqlx::Error> {
    // Escalation steps hold channel ids as JSON strings; `@>` finds a step naming the channel.
    Ok(sqlx::query(
        "UPDATE notification_settings n
            SET channels = array_remove(n.channels, $2),
                escalation = COALESCE((
                    SELECT jsonb_agg(
                               jsonb_set(s.step, '{channels}', (
                                   SELECT COALESCE(jsonb_agg(c.id ORDER BY c.pos), '[]'::jsonb)
                                     FROM jsonb_array_elements(s.step -> 'channels')
                                          WITH ORDINALITY AS c(id, pos)
                                    WHERE c.id <> to_jsonb($2::text)))
                               ORDER BY s.pos)
                      FROM jsonb_array_elements(n.escalation) WITH ORDINALITY AS s(step, pos)
                     WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(s.step -> 'channels') AS c(id)
                                    WHERE c.id <> to_jsonb($2::text))
                ), '[]'::jsonb),
                updated_at = now()
          WHERE n.tenant_id = $1
            AND ($2 = ANY (n.channels)
                 OR n.escalation @> jsonb_build_array(jsonb_build_object('channels', jsonb_build_array($2::text))))",
    )
    .bind(tenant_id)
    .bind(channel_id)
    .execute(conn)
    .await?
    .rows_affected())
}
