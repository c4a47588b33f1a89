use super::TenantRow;
use crate::domain::{CheckInterval, DisplayName, LicenseKey, LicenseKind};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A license row: one site running one edge agent. The API shows it with its status
/// (`store::status::License`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LicenseRow {
    pub id: Uuid,
    /// The customer's own key, unique in the tenant.
    pub key: String,
    pub name: String,
    pub kind: LicenseKind,
    /// A heartbeat is fresh when received within this many seconds (60..86400).
    pub check_interval_seconds: i32,
    /// Checked by `domain::quiet::parse_tags`: sorted, without duplicates.
    pub tags: Vec<String>,
    /// The latest snooze: quiet from `snoozed_at` until `snoozed_until` (both or neither).
    pub snoozed_at: Option<DateTime<Utc>>,
    pub snoozed_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TenantRow for LicenseRow {
    const TABLE: &'static str = "licenses";
    const COLUMNS: &'static str = "id, key, name, kind, check_interval_seconds, tags, snoozed_at, \
         snoozed_until, created_at, updated_at";
}

pub struct NewLicense {
    pub key: LicenseKey,
    pub name: DisplayName,
    pub kind: LicenseKind,
    pub check_interval: CheckInterval,
    /// Checked by `domain::quiet::parse_tags`.
    pub tags: Vec<String>,
}

#[derive(Default)]
pub struct LicensePatch {
    pub key: Option<LicenseKey>,
    pub name: Option<DisplayName>,
    pub kind: Option<LicenseKind>,
    pub check_interval: Option<CheckInterval>,
    /// Replaces every tag (checked by `domain::quiet::parse_tags`).
    pub tags: Option<Vec<String>>,
}

pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    new: &NewLicense,
) -> Result<LicenseRow, sqlx::Error> {
    sqlx::query_as(super::returning::<LicenseRow>(
        "INSERT INTO licenses (tenant_id, id, key, name, kind, check_interval_seconds, tags)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    ))
    .bind(tenant_id)
    .bind(Uuid::now_v7())
    .bind(new.key.as_str())
    .bind(new.name.as_str())
    .bind(new.kind)
    .bind(new.check_interval.seconds())
    .bind(&new.tags)
    .fetch_one(conn)
    .await
}

pub async fn update(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    patch: &LicensePatch,
) -> Result<Option<LicenseRow>, sqlx::Error> {
    sqlx::query_as(super::returning::<LicenseRow>(
        "UPDATE licenses SET
             key = COALESCE($3, key),
             name = COALESCE($4, name),
             kind = COALESCE($5, kind),
             check_interval_seconds = COALESCE($6, check_interval_seconds),
             tags = COALESCE($7, tags),
             updated_at = now()
         WHERE tenant_id = $1 AND id = $2",
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(patch.key.as_ref().map(LicenseKey::as_str))
    .bind(patch.name.as_ref().map(DisplayName::as_str))
    .bind(patch.kind)
    .bind(patch.check_interval.map(CheckInterval::seconds))
    .bind(&patch.tags)
    .fetch_optional(conn)
    .await
}

/// The id of the tenant's license with this key, if there is one.
pub async fn find_by_key(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    key: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM licenses WHERE tenant_id = $1 AND key = $2")
        .bind(tenant_id)
        .bind(key)
        .fetch_optional(conn)
        .await
}

/// The tenant's licenses with any of these keys: `(key, id)`.
pub async fn ids_by_keys(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    keys: &[String],
) -> Result<Vec<(String, Uuid)>, sqlx::Error> {
    sqlx::query_as("SELECT key, id FROM licenses WHERE tenant_id = $1 AND key = ANY($2)")
        .bind(tenant_id)
        .bind(keys)
        .fetch_all(conn)
        .await
}

/// The keys of those of `ids` that are licenses of the tenant: `(id, key)`.
pub async fn keys_by_ids(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, key FROM licenses WHERE tenant_id = $1 AND id = ANY($2)")
        .bind(tenant_id)
        .bind(ids)
        .fetch_all(conn)
        .await
}

/// Which of `ids` are licenses of the tenant.
pub async fn existing_ids(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM licenses WHERE tenant_id = $1 AND id = ANY($2)")
        .bind(tenant_id)
        .bind(ids)
        .fetch_all(conn)
        .await
}

/// Snoozes the license from `now` until `until`: `(snoozed_at, snoozed_until)`, or `None` if
/// the license is not the tenant's. A snooze still in force keeps its start, so that the time
/// it has already been quiet stays quiet for the sweep's accounting.
pub async fn snooze(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE licenses SET
             snoozed_at = CASE WHEN snoozed_at <= $3 AND snoozed_until > $3 THEN snoozed_at ELSE $3 END,
             snoozed_until = $4
         WHERE tenant_id = $1 AND id = $2
         RETURNING snoozed_at, snoozed_until",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(now)
    .bind(until)
    .fetch_optional(conn)
    .await
}

/// Ends the license's snooze at `now` if it is still in force (the time it was in force stays
/// quiet); `false` if the license is not the tenant's.
pub async fn end_snooze(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE licenses
            SET snoozed_until = CASE WHEN snoozed_until > $3 THEN GREATEST($3, snoozed_at)
                                     ELSE snoozed_until END
          WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
