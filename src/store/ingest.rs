//! The statements of the ingest writer's transaction (`ingest::batch::write_batch`), which
//! spans tenants by design and so runs on the owner's connection, not in a tenant transaction.
//! They are set-based: each takes column arrays and writes every row of a batch at once
//! (`unnest`). Together with [`crate::store::rollup`], in this order:
//!
//! 1. [`lock_licenses`]: the batch's license rows, in key order, and its agent tokens;
//! 2. [`rows_of`]: every instance and camera row of those licenses; then, for new instances
//!    only, [`insert_new_instances`];
//! 3. [`History::insert`]: the accepted heartbeats, appended to `heartbeats`;
//! 4. [`update_instances`]: each instance's mark, activity and newest reports;
//! 5. [`delete_cameras`] and [`write_camera_states`] for the camera rows that change (their
//!    owner or state), none in the steady state;
//! 6. if a camera row changed or an instance is new, `rollup::recount_instances` (camera rows
//!    only) and `rollup::refresh_licenses`; else `rollup::write_licenses`, the roll-up the
//!    writer computed from the rows of step 2.
//!
//! What is new, which instance owns a camera and the time rules are the writer's to decide.
//!
//! [`prune_silent_instances`], run by the hourly maintenance, takes the same license locks in
//! the same order.

use crate::domain::status::CameraState;
use crate::store::rollup::InstanceTotals;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashMap};
use streamwatch_protocol::CameraReport;
use uuid::Uuid;

/// (tenant, license, instance): the key of an agent instance row.
pub type InstanceKey = (Uuid, Uuid, Uuid);

/// What [`lock_licenses`] locked and read.
#[derive(Debug, Default)]
pub struct Locked {
    /// The license rows that still exist, as (tenant, license), with their check intervals.
    pub licenses: HashMap<(Uuid, Uuid), i32>,
    /// Where each of them is (its `ctid`, as text), for `rollup::write_licenses`.
    pub license_tids: HashMap<(Uuid, Uuid), String>,
    /// The agent tokens asked about that are still valid (not revoked, their license not
    /// deleted: a license's tokens go with it), with whether their tenant is suspended.
    pub live_tokens: HashMap<Uuid, bool>,
}

/// Locks the license rows of `licenses` (tenant, license), in key order, and reads the agent
/// tokens `tokens` (tenant, token id), in one statement.
///
/// The license lock is the one lock of the ingest path: every writer of a license's instance
/// and camera rows (the ingest writer, the instance pruning) and the license's deletion take it
/// first, so whoever holds it may read and write those rows without locking them one by one,
/// and nobody else changes them until it commits. Read them in a later statement
/// ([`rows_of`]): this statement's snapshot was taken before it waited for the locks.
///
/// The tokens: the token cache answers a request before its body is read; this read, in the
/// transaction that stores the heartbeats, is what makes a revocation, a suspension or a
/// license's deletion take effect at once on every replica, whether or not its cache has heard
/// of it yet. (Its snapshot is older than the lock wait, but newer than the request: anything
/// committed before the request arrived is seen.) Each lookup is a LATERAL subquery fenced with
/// `OFFSET 0`, so that the planner cannot flatten it into a join: flattened, it once took
/// `agent_tokens_license_idx` on `tenant_id` alone and filtered every token of the tenant for
/// each request (50 to 100 ms per batch for one tenant with 1,000 agents, seen with auto_explain
/// in `scripts/bench`).
pub async fn lock_licenses(
    conn: &mut PgConnection,
    licenses: &[(Uuid, Uuid)],
    tokens: &[(Uuid, Uuid)],
) -> Result<Locked, sqlx::Error> {
    // (tenant, license or token id, check interval, suspended, ctid): a license row has no
    // `suspended`, a token row no interval and no ctid.
    type Row = (Uuid, Uuid, Option<i32>, Option<bool>, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "WITH locked_licenses AS MATERIALIZED (
             SELECT l.tenant_id, l.id, l.check_interval_seconds, l.ctid FROM licenses l
             WHERE (l.tenant_id, l.id) IN (SELECT u.t, u.l FROM unnest($1::uuid[], $2::uuid[]) AS u(t, l))
             ORDER BY l.tenant_id, l.id
             FOR NO KEY UPDATE OF l)
         SELECT tenant_id, id, check_interval_seconds, NULL::bool, ctid::text FROM locked_licenses
         UNION ALL
         SELECT u.t, a.id, NULL::int4, s.suspended, NULL::text
         FROM unnest($3::uuid[], $4::uuid[]) AS u(t, i)
         CROSS JOIN LATERAL (
             SELECT a.id FROM agent_tokens a
             WHERE a.tenant_id = u.t AND a.id = u.i AND a.revoked_at IS NULL
             OFFSET 0) a
         CROSS JOIN LATERAL (
             SELECT t.suspended_at IS NOT NULL AS suspended FROM tenants t WHERE t.id = u.t
             OFFSET 0) s",
    )
    .bind(column(licenses, |k| k.0))
    .bind(column(licenses, |k| k.1))
    .bind(column(tokens, |k| k.0))
    .bind(column(tokens, |k| k.1))
    .fetch_all(conn)
    .await?;
    let mut locked = Locked::default();
    for (t, id, interval, suspended, tid) in rows {
        match (interval, suspended) {
            (_, Some(suspended)) => {
                locked.live_tokens.insert(id, suspended);
            }
            (interval, None) => {
                locked
                    .licenses
                    .insert((t, id), interval.unwrap_or_default());
                if let Some(tid) = tid {
                    locked.license_tids.insert((t, id), tid);
                }
            }
        }
    }
    Ok(locked)
}

/// An instance row as [`rows_of`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceNow {
    pub high_water: i64,
    /// Where the row is (its `ctid`, as text), for [`update_instances`].
    pub tid: String,
    /// What it contributes to its license's roll-up; `None` for a row whose activity is not a
    /// finite time (a placeholder of [`insert_new_instances`]), which only the SQL roll-up
    /// handles.
    pub totals: Option<InstanceTotals>,
}

/// What [`rows_of`] read.
#[derive(Debug, Default)]
pub struct LicenseRows {
    /// Every instance of the licenses.
    pub instances: HashMap<InstanceKey, InstanceNow>,
    /// Every camera row of the licenses, with its owner instance and its `state_if_fresh`.
    pub cameras: Vec<(CameraKey, Uuid, String)>,
}

/// Every instance row and every camera row of `licenses` (tenant, license), in one statement.
/// The caller holds the licenses' locks ([`lock_licenses`], an earlier statement), so this
/// statement sees everything committed by whoever held them before, and these rows stay as
/// read until it commits: the writer decides in memory what is new, which instance is new,
/// and which camera rows change (none in the steady state). Each license's rows are a
/// primary-key range, read by a fenced lookup per license.
pub async fn rows_of(
    conn: &mut PgConnection,
    licenses: &[(Uuid, Uuid)],
) -> Result<LicenseRows, sqlx::Error> {
    // (tenant, license, instance, then the instance's mark and roll-up columns, or the camera's
    // id and state): an instance row has no camera, a camera row no mark.
    type Row = (
        Uuid,
        Uuid,
        Uuid,
        Option<i64>,
        Option<DateTime<Utc>>,
        Option<i32>,
        Option<i32>,
        Option<i32>,
        Option<i32>,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let (t, l): (Vec<Uuid>, Vec<Uuid>) = licenses.iter().copied().unzip();
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT a.tenant_id, a.license_id, a.instance_id, a.high_water_seq,
                -- A placeholder's '-infinity' has no chrono value.
                CASE WHEN isfinite(a.last_activity_at) THEN a.last_activity_at END,
                a.cameras_total, a.cameras_active_if_fresh, a.cameras_working_if_fresh,
                a.webhooks_failing, a.webhooks_cached, NULL::text, NULL::text, a.ctid::text
         FROM unnest($1::uuid[], $2::uuid[]) AS u(t, l)
         CROSS JOIN LATERAL (
             -- The columns it needs only: the fenced subquery would carry every column of the
             -- row, the camera reports (jsonb) among them.
             SELECT a.tenant_id, a.license_id, a.instance_id, a.high_water_seq,
                    a.last_activity_at, a.cameras_total, a.cameras_active_if_fresh,
                    a.cameras_working_if_fresh, a.webhooks_failing, a.webhooks_cached, a.ctid
             FROM agent_instances a WHERE a.tenant_id = u.t AND a.license_id = u.l
             OFFSET 0) a
         UNION ALL
         SELECT c.tenant_id, c.license_id, c.instance_id, NULL::int8, NULL::timestamptz,
                NULL::int4, NULL::int4, NULL::int4, NULL::int4, NULL::int8,
                c.camera_id, c.state_if_fresh, NULL::text
         FROM unnest($1::uuid[], $2::uuid[]) AS u(t, l)
         CROSS JOIN LATERAL (
             SELECT c.tenant_id, c.license_id, c.camera_id, c.instance_id, c.state_if_fresh
             FROM camera_state c WHERE c.tenant_id = u.t AND c.license_id = u.l
             OFFSET 0) c",
    )
    .bind(&t)
    .bind(&l)
    .fetch_all(conn)
    .await?;
    let mut read = LicenseRows::default();
    for (t, l, i, hw, activity, total, active, working, failing, cached, camera, state, tid) in rows
    {
        match (hw, camera, state) {
            (Some(high_water), _, _) => {
                let totals = activity.map(|last_activity_at| InstanceTotals {
                    last_activity_at,
                    // NOT NULL columns: the defaults are for the type only.
                    cameras_total: total.unwrap_or_default(),
                    cameras_active: active.unwrap_or_default(),
                    cameras_working: working.unwrap_or_default(),
                    webhooks_failing: failing.unwrap_or_default(),
                    webhooks_cached: cached.unwrap_or_default(),
                });
                read.instances.insert(
                    (t, l, i),
                    InstanceNow {
                        high_water,
                        tid: tid.unwrap_or_default(),
                        totals,
                    },
                );
            }
            (None, Some(camera), Some(state)) => read.cameras.push(((t, l, camera), i, state)),
            (None, _, _) => {}
        }
    }
    Ok(read)
}

/// One column of `rows`, as the array an `unnest` takes.
fn column<'r, R, T>(rows: &'r [R], field: impl Fn(&'r R) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
}

/// Inserts a placeholder row (high-water mark -1) for each of `keys`, in key order, unless one
/// exists; returns the keys it inserted. The caller gives them real values later in the same
/// transaction.
pub async fn insert_new_instances(
    conn: &mut PgConnection,
    keys: &[InstanceKey],
) -> Result<Vec<InstanceKey>, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO agent_instances (tenant_id, license_id, instance_id, high_water_seq, first_seen_at,
             last_received_at, last_activity_at, last_seq, last_observed_at)
         SELECT u.t, u.l, u.i, -1, now(), '-infinity', '-infinity', -1, '-infinity'
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS u(t, l, i)
         ORDER BY u.t, u.l, u.i
         ON CONFLICT DO NOTHING
         RETURNING tenant_id, license_id, instance_id",
    )
    .bind(column(keys, |k| k.0))
    .bind(column(keys, |k| k.1))
    .bind(column(keys, |k| k.2))
    .fetch_all(conn)
    .await
}

/// Rows for the `heartbeats` history, as column arrays for one `unnest` insert.
#[derive(Debug, Default)]
pub struct History {
    tenant: Vec<Uuid>,
    license: Vec<Uuid>,
    instance: Vec<Uuid>,
    seq: Vec<i64>,
    activity_at: Vec<DateTime<Utc>>,
    received_at: Vec<DateTime<Utc>>,
    observed_at: Vec<DateTime<Utc>>,
    total: Vec<i16>,
    active: Vec<i16>,
}

impl History {
    /// One accepted heartbeat, with the state each of its cameras would have if fresh.
    pub fn push(
        &mut self,
        key: InstanceKey,
        seq: i64,
        activity_at: DateTime<Utc>,
        received_at: DateTime<Utc>,
        observed_at: DateTime<Utc>,
        states: &[(String, CameraState)],
    ) {
        self.tenant.push(key.0);
        self.license.push(key.1);
        self.instance.push(key.2);
        self.seq.push(seq);
        self.activity_at.push(activity_at);
        self.received_at.push(received_at);
        self.observed_at.push(observed_at);
        // At most 256 cameras per heartbeat, so these fit.
        self.total
            .push(i16::try_from(states.len()).unwrap_or(i16::MAX));
        self.active.push(
            i16::try_from(
                states
                    .iter()
                    .filter(|(_, s)| *s == CameraState::Active)
                    .count(),
            )
            .unwrap_or(i16::MAX),
        );
    }

    pub async fn insert(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO heartbeats (tenant_id, license_id, instance_id, seq, activity_at, received_at, observed_at, cameras_total, cameras_active)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int8[], $5::timestamptz[], $6::timestamptz[], $7::timestamptz[], $8::int2[], $9::int2[])",
        )
        .bind(&self.tenant)
        .bind(&self.license)
        .bind(&self.instance)
        .bind(&self.seq)
        .bind(&self.activity_at)
        .bind(&self.received_at)
        .bind(&self.observed_at)
        .bind(&self.total)
        .bind(&self.active)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// What one batch changes on one instance row.
#[derive(Debug)]
pub struct InstanceRow<'a> {
    pub key: InstanceKey,
    pub hostname: &'a str,
    pub version: &'a str,
    /// The new high-water mark (and `last_seq`).
    pub high_water: i64,
    pub received_at: DateTime<Utc>,
    /// Activity time of the newest accepted heartbeat; the row keeps the later of this and its own.
    pub activity_at: DateTime<Utc>,
    pub offset_ms: i64,
    /// The newest heartbeat's observation time, corrected to the server's clock.
    pub observed_at: DateTime<Utc>,
    /// The newest heartbeat's camera reports, serialized straight into the `jsonb` parameter
    /// (no `serde_json::Value` tree in between).
    pub cameras: &'a BTreeMap<String, CameraReport>,
    /// Heartbeats accepted, added to `heartbeats_total`.
    pub accepted: i64,
    pub webhooks_failing: i32,
    pub webhooks_cached: i64,
    /// Where [`rows_of`] found the row (its `ctid`), if it did: see [`update_instances`].
    pub tid: Option<&'a str>,
}

/// The `UPDATE` of [`update_instances`], with the row condition `$where`.
macro_rules! update_instances_sql {
    ($where:literal) => {
        concat!(
            "UPDATE agent_instances a SET
                 hostname = u.hostname, version = u.version,
                 high_water_seq = u.hw, last_seq = u.last_seq,
                 first_seen_at = CASE WHEN a.high_water_seq < 0 THEN u.received ELSE a.first_seen_at END,
                 last_received_at = u.received,
                 last_activity_at = GREATEST(a.last_activity_at, u.activity),
                 clock_offset_ms = u.offset_ms,
                 last_observed_at = u.observed,
                 cameras = u.cameras,
                 webhooks_failing = u.wh_failing,
                 webhooks_cached = u.wh_cached,
                 heartbeats_total = a.heartbeats_total + u.n
             FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::int8[], $7::timestamptz[],
                         $8::timestamptz[], $9::int8[], $10::timestamptz[], $11::jsonb[], $12::int8[], $13::int8[],
                         $14::int4[], $15::int8[], $16::text[]::tid[])
                  AS u(t, l, i, hostname, version, hw, received, activity, offset_ms, observed, cameras, n, last_seq,
                       wh_failing, wh_cached, tid)
             WHERE a.tenant_id = u.t AND a.license_id = u.l AND a.instance_id = u.i AND ",
            $where,
            " RETURNING a.tenant_id, a.license_id, a.instance_id"
        )
    };
}

/// Writes each instance's part of a batch on its (locked) row. A row whose mark was -1 (a new
/// instance) is first seen at this receive time.
///
/// Rows are addressed by where [`rows_of`] found them (`tid`, their `ctid`) when it did: a TID
/// scan reads one heap page per row, where the primary-key lookup first walks the index (the
/// live shape writes one instance per heartbeat, so this is a lookup per heartbeat). The
/// address cannot go stale: every writer of these rows holds the license lock first, and a row
/// keeps its `ctid` until it is updated. Should it ever be stale anyway, the key condition
/// (checked as well) makes the row a miss, and the misses, with the rows that had no address
/// (new instances), are written by primary key.
pub async fn update_instances(
    conn: &mut PgConnection,
    rows: &[InstanceRow<'_>],
) -> Result<(), sqlx::Error> {
    let by_tid: Vec<&InstanceRow<'_>> = rows.iter().filter(|r| r.tid.is_some()).collect();
    let mut done: std::collections::HashSet<InstanceKey> = std::collections::HashSet::new();
    if !by_tid.is_empty() {
        done = bind_instance_rows(
            sqlx::query_as(update_instances_sql!("a.ctid = u.tid")),
            &by_tid,
        )
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    }
    let by_key: Vec<&InstanceRow<'_>> = rows.iter().filter(|r| !done.contains(&r.key)).collect();
    if !by_key.is_empty() {
        bind_instance_rows(sqlx::query_as(update_instances_sql!("TRUE")), &by_key)
            .fetch_all(&mut *conn)
            .await?;
    }
    Ok(())
}

type InstanceKeyQuery<'q> =
    sqlx::query::QueryAs<'q, sqlx::Postgres, InstanceKey, sqlx::postgres::PgArguments>;

fn bind_instance_rows<'q>(
    query: InstanceKeyQuery<'q>,
    rows: &[&InstanceRow<'q>],
) -> InstanceKeyQuery<'q> {
    query
        .bind(column(rows, |u| u.key.0))
        .bind(column(rows, |u| u.key.1))
        .bind(column(rows, |u| u.key.2))
        .bind(column(rows, |u| u.hostname))
        .bind(column(rows, |u| u.version))
        .bind(column(rows, |u| u.high_water))
        .bind(column(rows, |u| u.received_at))
        .bind(column(rows, |u| u.activity_at))
        .bind(column(rows, |u| u.offset_ms))
        .bind(column(rows, |u| u.observed_at))
        .bind(column(rows, |u| sqlx::types::Json(u.cameras)))
        .bind(column(rows, |u| u.accepted))
        .bind(column(rows, |u| u.high_water))
        .bind(column(rows, |u| u.webhooks_failing))
        .bind(column(rows, |u| u.webhooks_cached))
        .bind(column(rows, |u| u.tid))
}

/// (tenant, license, camera): the key of a camera row.
pub type CameraKey = (Uuid, Uuid, String);

/// Deletes the camera rows `keys` (retired cameras). Returns how many it deleted.
pub async fn delete_cameras(
    conn: &mut PgConnection,
    keys: &[CameraKey],
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM camera_state c
         USING unnest($1::uuid[], $2::uuid[], $3::text[]) AS u(t, l, id)
         WHERE c.tenant_id = u.t AND c.license_id = u.l AND c.camera_id = u.id",
    )
    .bind(column(keys, |k| k.0))
    .bind(column(keys, |k| k.1))
    .bind(column(keys, |k| k.2.as_str()))
    .execute(conn)
    .await?
    .rows_affected())
}

/// A camera as its owner's newest report shows it.
#[derive(Debug)]
pub struct CameraRow {
    pub tenant_id: Uuid,
    pub license_id: Uuid,
    pub camera_id: String,
    pub instance_id: Uuid,
    /// The state the camera would have if its report is fresh.
    pub state: CameraState,
    /// The activity time of the report.
    pub changed_at: DateTime<Utc>,
}

/// Upserts the camera rows (at most one per license and camera). An instance takes a camera
/// over from another only with newer activity than the owner's. Returns how many rows it
/// inserted or updated.
///
/// The caller passes only rows whose owner or state differs from the stored one (read with
/// [`rows_of`]): `ON CONFLICT DO UPDATE` locks a conflicting row (a write and a WAL record)
/// even when its `WHERE` rejects the update, so unchanged rows must not come here. It relies on
/// the caller holding the locks of these licenses ([`lock_licenses`]), so that no other writer
/// changes these rows meanwhile.
pub async fn write_camera_states(
    conn: &mut PgConnection,
    cameras: &[CameraRow],
) -> Result<u64, sqlx::Error> {
    // Counts inserted and updated rows, not conflicts the WHERE clause left alone.
    Ok(sqlx::query(
        "INSERT INTO camera_state (tenant_id, license_id, camera_id, instance_id, state_if_fresh, changed_at)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::timestamptz[])
                 AS u(t, l, id, i, state, at)
         ON CONFLICT (tenant_id, license_id, camera_id) DO UPDATE
             SET instance_id = EXCLUDED.instance_id, state_if_fresh = EXCLUDED.state_if_fresh, changed_at = EXCLUDED.changed_at
             WHERE (camera_state.instance_id, camera_state.state_if_fresh) IS DISTINCT FROM (EXCLUDED.instance_id, EXCLUDED.state_if_fresh)
               -- Another instance takes a camera over only with newer activity than its owner's:
               -- a late replay must not steal a camera from the agent reporting it now.
               AND (camera_state.instance_id = EXCLUDED.instance_id
                    OR EXCLUDED.changed_at >= (SELECT a.last_activity_at FROM agent_instances a
                                               WHERE a.tenant_id = camera_state.tenant_id
                                                 AND a.license_id = camera_state.license_id
                                                 AND a.instance_id = camera_state.instance_id))",
    )
    .bind(column(cameras, |c| c.tenant_id))
    .bind(column(cameras, |c| c.license_id))
    .bind(column(cameras, |c| c.camera_id.as_str()))
    .bind(column(cameras, |c| c.instance_id))
    .bind(column(cameras, |c| c.state.as_str()))
    .bind(column(cameras, |c| c.changed_at))
    .execute(conn)
    .await?
    .rows_affected())
}

/// Agent instances silent (no request received) for this many days are deleted by the hourly
/// maintenance ([`prune_silent_instances`]), which frees their places under the instance cap
/// (`ingest::batch::InstanceCapReached`).
pub const PRUNE_SILENT_INSTANCES_AFTER_DAYS: i64 = 7;

/// Licenses handled per transaction by [`prune_silent_instances`], so that no transaction holds
/// many licenses' locks (and so blocks their heartbeats) for long.
const PRUNE_CHUNK: i64 = 500;

/// Deletes the agent instances that sent nothing since `cutoff` (last request received before
/// it), except each license's newest (by activity): it holds the license's last activity,
/// which its status ("no heartbeat for 9 days", never "Not Installed") and its notification
/// baseline read. Returns how many it deleted.
///
/// Their camera rows go with them (the foreign key cascades): no newer instance lists those
/// cameras (one that did would own them), so they are retired, as when an instance stops
/// listing a camera. Their heartbeat history stays until retention. Each chunk of licenses is
/// one transaction that locks like the writer (licenses, then all their instances, each in key
/// order, [`lock_licenses_and_instances`]) and refreshes the licenses' roll-up, so a prune and
/// a writer never deadlock, and an instance that reports while it is being pruned is either
/// deleted before its heartbeat (which then makes it a new instance) or kept.
///
/// It scans `agent_instances` without an index on `last_received_at`, on purpose: an index on a
/// column every heartbeat updates would cost every heartbeat its HOT update, and this runs once
/// an hour.
pub async fn prune_silent_instances(
    pool: &sqlx::PgPool,
    cutoff: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    // A sibling that is newer: later activity, or the same activity and a larger id.
    const HAS_NEWER_SIBLING: &str = "EXISTS (SELECT 1 FROM agent_instances b
        WHERE b.tenant_id = a.tenant_id AND b.license_id = a.license_id
          AND (b.last_activity_at, b.instance_id) > (a.last_activity_at, a.instance_id))";
    let mut deleted = 0;
    loop {
        let licenses: Vec<(Uuid, Uuid)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT a.tenant_id, a.license_id FROM agent_instances a
             WHERE a.last_received_at < $1 AND {HAS_NEWER_SIBLING}
             ORDER BY 1, 2 LIMIT $2"
        )))
        .bind(cutoff)
        .bind(PRUNE_CHUNK)
        .fetch_all(pool)
        .await?;
        if licenses.is_empty() {
            return Ok(deleted);
        }
        let mut tx = pool.begin().await?;
        let locked = lock_licenses(&mut tx, &licenses, &[]).await?;
        let licenses: Vec<(Uuid, Uuid)> = licenses
            .into_iter()
            .filter(|l| locked.licenses.contains_key(l))
            .collect();
        let (t, l): (Vec<Uuid>, Vec<Uuid>) = licenses.iter().copied().unzip();
        // Decided again under the locks: an instance may have reported since the scan.
        let now_deleted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM agent_instances a
             USING unnest($1::uuid[], $2::uuid[]) AS u(t, l)
             WHERE a.tenant_id = u.t AND a.license_id = u.l
               AND a.last_received_at < $3 AND {HAS_NEWER_SIBLING}"
        )))
        .bind(&t)
        .bind(&l)
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        crate::store::rollup::refresh_licenses(&mut tx, &licenses).await?;
        tx.commit().await?;
        deleted += now_deleted;
        // A short chunk was the last; an empty one means the rest changed under us (reported
        // since the scan): the next hour looks again, rather than this loop spinning.
        if now_deleted == 0 || t.len() < usize::try_from(PRUNE_CHUNK).unwrap_or(usize::MAX) {
            return Ok(deleted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::PgPool;

    /// A tenant with one license; returns (tenant, license).
    async fn license(pool: &PgPool) -> (Uuid, Uuid) {
        let (tenant, license) = (Uuid::now_v7(), Uuid::now_v7());
        sqlx::query("INSERT INTO tenants (id, name, timezone) VALUES ($1, 'T', 'UTC')")
            .bind(tenant)
            .execute(pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO licenses (tenant_id, id, key, name, kind) VALUES ($1, $2, 'L-1', 'L', 'direct')",
        )
        .bind(tenant)
        .bind(license)
        .execute(pool)
        .await
        .unwrap();
        (tenant, license)
    }

    // What the writer reads after taking a license's lock: rows committed while it waited
    // for the lock are there (the lock statement's own snapshot is older), and a placeholder
    // row's infinite activity comes without roll-up totals instead of failing to decode.
    #[sqlx::test]
    async fn rows_read_after_the_license_lock_include_what_the_previous_holder_committed(
        pool: PgPool,
    ) {
        let (t, l) = license(&pool).await;
        let (old, theirs) = ((t, l, Uuid::now_v7()), (t, l, Uuid::now_v7()));
        insert_new_instances(&mut pool.acquire().await.unwrap(), &[old])
            .await
            .unwrap();

        // Another writer holds the license's lock and adds an instance and a camera row.
        let mut other = pool.begin().await.unwrap();
        let locked = lock_licenses(&mut other, &[(t, l)], &[]).await.unwrap();
        assert_eq!(
            locked.licenses.keys().copied().collect::<Vec<_>>(),
            [(t, l)]
        );
        assert_eq!(
            insert_new_instances(&mut other, &[theirs]).await.unwrap(),
            vec![theirs]
        );
        sqlx::query(
            "UPDATE agent_instances SET high_water_seq = 7, last_activity_at = now(),
                                        webhooks_failing = 2
             WHERE instance_id = $1",
        )
        .bind(theirs.2)
        .execute(&mut *other)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO camera_state (tenant_id, license_id, camera_id, instance_id, state_if_fresh, changed_at)
             VALUES ($1, $2, 'cam-1', $3, 'active', now())",
        )
        .bind(t)
        .bind(l)
        .bind(theirs.2)
        .execute(&mut *other)
        .await
        .unwrap();

        // We ask for the same lock meanwhile, and get it once they commit.
        let mine = tokio::spawn({
            let pool = pool.clone();
            async move {
                let mut tx = pool.begin().await.unwrap();
                lock_licenses(&mut tx, &[(t, l)], &[]).await.unwrap();
                let rows = rows_of(&mut tx, &[(t, l)]).await.unwrap();
                tx.commit().await.unwrap();
                rows
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !mine.is_finished(),
            "the license lock must hold the second writer"
        );
        other.commit().await.unwrap();
        let rows = mine.await.unwrap();

        assert_eq!(rows.instances.len(), 2);
        assert_eq!(rows.instances[&old].high_water, -1);
        assert_eq!(
            rows.instances[&old].totals, None,
            "a placeholder's activity is -infinity"
        );
        assert_eq!(rows.instances[&theirs].high_water, 7);
        assert_eq!(
            rows.instances[&theirs].totals.map(|t| t.webhooks_failing),
            Some(2)
        );
        assert_eq!(
            rows.cameras,
            vec![((t, l, "cam-1".to_owned()), theirs.2, "active".to_owned())]
        );
    }

    #[sqlx::test]
    async fn a_deleted_license_is_missing_from_what_is_locked_and_a_revoked_token_from_the_live_ones(
        pool: PgPool,
    ) {
        let (t, l) = license(&pool).await;
        let gone = Uuid::now_v7();
        let (live, revoked) = (Uuid::now_v7(), Uuid::now_v7());
        for (id, revoked_at) in [(live, None), (revoked, Some(chrono::Utc::now()))] {
            sqlx::query(
                "INSERT INTO agent_tokens (tenant_id, license_id, id, name, secret_hash, prefix, revoked_at)
                 VALUES ($1, $2, $3, 'agent', $4, 'swa_test', $5)",
            )
            .bind(t)
            .bind(l)
            .bind(id)
            .bind(id.as_bytes().to_vec())
            .bind(revoked_at)
            .execute(&pool)
            .await
            .unwrap();
        }
        let mut tx = pool.begin().await.unwrap();
        let locked = lock_licenses(&mut tx, &[(t, l), (t, gone)], &[(t, live), (t, revoked)])
            .await
            .unwrap();
        assert_eq!(locked.licenses, HashMap::from([((t, l), 600)]));
        assert_eq!(locked.live_tokens, HashMap::from([(live, false)]));
    }

    // A row's address (`ctid`) cannot go stale under the license lock, but if it ever did, the
    // row would be written by key, once: not lost, not counted twice.
    #[sqlx::test]
    async fn an_instance_row_whose_address_went_stale_is_written_by_key_once(pool: PgPool) {
        let (t, l) = license(&pool).await;
        let (a, b) = ((t, l, Uuid::now_v7()), (t, l, Uuid::now_v7()));
        let mut tx = pool.begin().await.unwrap();
        insert_new_instances(&mut tx, &[a, b]).await.unwrap();
        lock_licenses(&mut tx, &[(t, l)], &[]).await.unwrap();
        let read = rows_of(&mut tx, &[(t, l)]).await.unwrap();
        let cameras = BTreeMap::new();
        let now = Utc::now();
        let row = |key: InstanceKey| InstanceRow {
            key,
            hostname: "h",
            version: "v",
            high_water: 3,
            received_at: now,
            activity_at: now,
            offset_ms: 0,
            observed_at: now,
            cameras: &cameras,
            accepted: 3,
            webhooks_failing: 0,
            webhooks_cached: 0,
            tid: None,
        };
        let rows = [
            InstanceRow {
                tid: Some(&read.instances[&a].tid),
                ..row(a)
            },
            InstanceRow {
                tid: Some("(4000000,1)"),
                ..row(b)
            },
        ];
        update_instances(&mut tx, &rows).await.unwrap();
        let totals: Vec<(Uuid, i64, i64)> = sqlx::query_as(
            "SELECT instance_id, high_water_seq, heartbeats_total FROM agent_instances ORDER BY instance_id",
        )
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        assert_eq!(totals, vec![(a.2, 3, 3), (b.2, 3, 3)]);
    }
}
