//! Reading what ingest stored: agent instances (with their newest camera reports) and which
//! instance owns each camera.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, types::Json};
use std::collections::BTreeMap;
use streamwatch_protocol::CameraReport;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Instance {
    pub license_id: Uuid,
    pub instance_id: Uuid,
    pub hostname: String,
    pub version: String,
    pub first_seen_at: DateTime<Utc>,
    pub last_received_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub clock_offset_ms: i64,
    /// The newest heartbeat's observation time, corrected to the server's clock.
    pub last_observed_at: DateTime<Utc>,
    pub cameras: Json<BTreeMap<String, CameraReport>>,
    pub heartbeats_total: i64,
}

const COLUMNS: &str =
    "license_id, instance_id, hostname, version, first_seen_at, last_received_at, last_activity_at,
    clock_offset_ms, last_observed_at, cameras, heartbeats_total";

/// Whether any agent instance ever reported for the license.
pub async fn any_for_license(
    pool: &sqlx::PgPool,
    tenant_id: Uuid,
    license_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM agent_instances WHERE tenant_id = $1 AND license_id = $2)",
    )
    .bind(tenant_id)
    .bind(license_id)
    .fetch_one(pool)
    .await
}

/// The license's instances, or every instance of the tenant (`license_id` = None).
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Option<Uuid>,
) -> Result<Vec<Instance>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM agent_instances
         WHERE tenant_id = $1 AND ($2::uuid IS NULL OR license_id = $2) AND high_water_seq >= 0
         ORDER BY license_id, instance_id"
    )))
    .bind(tenant_id)
    .bind(license_id)
    .fetch_all(conn)
    .await
}

/// (license, camera, owning instance), in license and camera order.
pub async fn camera_owners(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Option<Uuid>,
) -> Result<Vec<(Uuid, String, Uuid)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT license_id, camera_id, instance_id FROM camera_state
         WHERE tenant_id = $1 AND ($2::uuid IS NULL OR license_id = $2)
         ORDER BY license_id, camera_id",
    )
    .bind(tenant_id)
    .bind(license_id)
    .fetch_all(conn)
    .await
}

/// One bucket of the activity timeline.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub heartbeats: i64,
    pub active_cameras: i32,
    pub cameras: i32,
}

/// Heartbeats per bucket over `[since, until)`, with empty buckets included.
pub async fn activity(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    bucket_seconds: i64,
) -> Result<Vec<Bucket>, sqlx::Error> {
    sqlx::query_as(
        "WITH b AS (
             SELECT generate_series(date_bin(make_interval(secs => $5), $3, $3),
                                    $4 - make_interval(secs => 0.000001),
                                    make_interval(secs => $5)) AS start
         ), h AS (
             SELECT date_bin(make_interval(secs => $5), activity_at, $3) AS start,
                    count(*) AS heartbeats, max(cameras_active)::int4 AS active, max(cameras_total)::int4 AS total
             FROM heartbeats
             WHERE tenant_id = $1 AND license_id = $2 AND activity_at >= $3 AND activity_at < $4
             GROUP BY 1
         )
         SELECT b.start, COALESCE(h.heartbeats, 0) AS heartbeats, COALESCE(h.active, 0) AS active_cameras,
                COALESCE(h.total, 0) AS cameras
         FROM b LEFT JOIN h USING (start) ORDER BY b.start",
    )
    .bind(tenant_id)
    .bind(license_id)
    .bind(since)
    .bind(until)
    .bind(bucket_seconds as f64)
    .fetch_all(conn)
    .await
}
