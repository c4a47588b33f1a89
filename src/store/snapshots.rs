//! Camera snapshots (`camera_snapshots`): the latest JPEG of each camera and the one of its
//! bad-picture episode. Every function runs in a tenant transaction and filters by tenant.

use crate::domain::snapshot::SnapshotKind;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A stored snapshot without its bytes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SnapshotMeta {
    pub camera_id: String,
    pub kind: String,
    pub size_bytes: i32,
    pub sha256: Vec<u8>,
    pub taken_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub picture_state: Option<String>,
}

/// A stored snapshot with its bytes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Snapshot {
    #[sqlx(flatten)]
    pub meta: SnapshotMeta,
    pub jpeg: Vec<u8>,
}

/// What one upload writes.
pub struct NewSnapshot<'a> {
    pub tenant_id: Uuid,
    pub license_id: Uuid,
    pub camera_id: &'a str,
    pub kind: SnapshotKind,
    pub jpeg: &'a [u8],
    pub sha256: &'a [u8],
    pub taken_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub picture_state: Option<&'a str>,
}

const META: &str = "camera_id, kind, size_bytes, sha256, taken_at, received_at, picture_state";

/// Serialises the uploads of one tenant until the transaction ends, so that two uploads cannot
/// both pass the size bound on the same old total.
pub async fn lock_tenant(conn: &mut PgConnection, tenant_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('camera_snapshots:' || $1::text, 0))",
    )
    .bind(tenant_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a heartbeat of the license has listed the camera (and it is not retired).
pub async fn camera_known(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
    camera_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM camera_state
                         WHERE tenant_id = $1 AND license_id = $2 AND camera_id = $3)",
    )
    .bind(tenant_id)
    .bind(license_id)
    .bind(camera_id)
    .fetch_one(conn)
    .await
}

/// The bytes the tenant's snapshots take.
pub async fn tenant_bytes(conn: &mut PgConnection, tenant_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(sum(size_bytes), 0)::bigint FROM camera_snapshots WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_one(conn)
    .await
}

/// The stored snapshots of one camera, without bytes.
pub async fn of_camera(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
    camera_id: &str,
) -> Result<Vec<SnapshotMeta>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {META} FROM camera_snapshots
          WHERE tenant_id = $1 AND license_id = $2 AND camera_id = $3"
    )))
    .bind(tenant_id)
    .bind(license_id)
    .bind(camera_id)
    .fetch_all(conn)
    .await
}

/// The stored snapshots of every camera of a license, without bytes (the Activity Status
/// page's thumbnails).
pub async fn of_license(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
) -> Result<Vec<SnapshotMeta>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {META} FROM camera_snapshots
          WHERE tenant_id = $1 AND license_id = $2 ORDER BY camera_id, kind"
    )))
    .bind(tenant_id)
    .bind(license_id)
    .fetch_all(conn)
    .await
}

/// One snapshot with its bytes.
pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
    camera_id: &str,
    kind: SnapshotKind,
) -> Result<Option<Snapshot>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {META}, jpeg FROM camera_snapshots
          WHERE tenant_id = $1 AND license_id = $2 AND camera_id = $3 AND kind = $4"
    )))
    .bind(tenant_id)
    .bind(license_id)
    .bind(camera_id)
    .bind(kind.as_str())
    .fetch_optional(conn)
    .await
}

/// Stores a snapshot, replacing the camera's one of the same kind. `Ok(false)` when the camera
/// row is gone (retired meanwhile: the foreign key refused it).
pub async fn put(conn: &mut PgConnection, s: &NewSnapshot<'_>) -> Result<bool, sqlx::Error> {
    let size = i32::try_from(s.jpeg.len()).unwrap_or(i32::MAX);
    let result = sqlx::query(
        "INSERT INTO camera_snapshots (tenant_id, license_id, camera_id, kind, jpeg, size_bytes,
                                       sha256, taken_at, received_at, picture_state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (tenant_id, license_id, camera_id, kind) DO UPDATE
            SET jpeg = EXCLUDED.jpeg, size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256,
                taken_at = EXCLUDED.taken_at, received_at = EXCLUDED.received_at,
                picture_state = EXCLUDED.picture_state",
    )
    .bind(s.tenant_id)
    .bind(s.license_id)
    .bind(s.camera_id)
    .bind(s.kind.as_str())
    .bind(s.jpeg)
    .bind(size)
    .bind(s.sha256)
    .bind(s.taken_at)
    .bind(s.received_at)
    .bind(s.picture_state)
    .execute(conn)
    .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if crate::db::violated_constraint(&e) == Some("camera_snapshots_camera_fk") => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
