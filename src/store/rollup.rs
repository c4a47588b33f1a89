//! The two derived counts the license list reads instead of `camera_state` and the instance
//! rows: each agent instance's camera counts (migration `instance_camera_counts`) and each
//! license's roll-up of its instances (migration `license_rollup`).
//!
//! The ingest writer keeps both exact, in the transaction that changed what they count
//! (`ingest::batch::write_batch`). The benchmarks that seed rows directly in SQL call the same
//! functions afterwards, so that their rows have exactly the shape the writer gives them. (The
//! two migrations computed them once for existing rows with their own, older copies of these
//! statements; migrations are append-only.)

use sqlx::PgConnection;
use uuid::Uuid;

/// Recounts the cameras each instance of `licenses` (tenant, license) owns, by the state they would
/// have if fresh: `cameras_total`, `cameras_active_if_fresh`, `cameras_working_if_fresh`. Every
/// instance of those licenses, because a camera taken over moves from a sibling instance. Only rows
/// whose counts differ are written.
///
/// It writes instance rows without locking them first: the writer calls it holding the locks
/// of every instance of these licenses, taken in its one lock order
/// (`store::ingest::lock_licenses_and_instances`). Any other caller must be alone with these
/// licenses (a seed).
pub async fn recount_instances(
    conn: &mut PgConnection,
    licenses: &[(Uuid, Uuid)],
) -> Result<(), sqlx::Error> {
    let (t, l): (Vec<Uuid>, Vec<Uuid>) = licenses.iter().copied().unzip();
    sqlx::query(
        "UPDATE agent_instances a
         SET cameras_total = n.total, cameras_active_if_fresh = n.active,
             cameras_working_if_fresh = n.working
         FROM (SELECT i.tenant_id, i.license_id, i.instance_id,
                      count(c.camera_id)::int AS total,
                      count(*) FILTER (WHERE c.state_if_fresh = 'active')::int AS active,
                      count(*) FILTER (WHERE c.state_if_fresh IN ('active', 'degraded'))::int AS working
               FROM agent_instances i
               LEFT JOIN camera_state c
                 ON c.tenant_id = i.tenant_id AND c.license_id = i.license_id
                AND c.instance_id = i.instance_id
               WHERE (i.tenant_id, i.license_id) IN
                     (SELECT DISTINCT u.t, u.l FROM unnest($1::uuid[], $2::uuid[]) AS u(t, l))
               GROUP BY i.tenant_id, i.license_id, i.instance_id) n
         WHERE a.tenant_id = n.tenant_id AND a.license_id = n.license_id
           AND a.instance_id = n.instance_id
           AND (a.cameras_total, a.cameras_active_if_fresh, a.cameras_working_if_fresh)
               IS DISTINCT FROM (n.total, n.active, n.working)",
    )
    .bind(&t)
    .bind(&l)
    .execute(conn)
    .await?;
    Ok(())
}

/// Recomputes the roll-up on the rows of `licenses` (tenant, license) from all their instances: the
/// number of instances, the newest and the oldest activity, and the sums of their camera and
/// webhook counts. A license without instances is left as it is.
///
/// The writer calls it as the last statement of its transaction, after [`recount_instances`]
/// when cameras changed, holding the license locks
/// (`store::ingest::lock_licenses_and_instances`). The rows are updated in key order, like every
/// other lock the writer takes, whatever order `licenses` comes in.
pub async fn refresh_licenses(
    conn: &mut PgConnection,
    licenses: &[(Uuid, Uuid)],
) -> Result<(), sqlx::Error> {
    let mut keys = licenses.to_vec();
    keys.sort();
    keys.dedup();
    let (t, l): (Vec<Uuid>, Vec<Uuid>) = keys.into_iter().unzip();
    sqlx::query(
        "UPDATE licenses l
         SET instances = r.instances, activity_newest = r.newest, activity_oldest = r.oldest,
             cameras_total = r.total, cameras_active_if_fresh = r.active,
             cameras_working_if_fresh = r.working, webhooks_failing = r.failing,
             webhooks_cached = r.cached
         FROM (SELECT a.tenant_id, a.license_id, count(*)::int AS instances,
                      max(a.last_activity_at) AS newest, min(a.last_activity_at) AS oldest,
                      sum(a.cameras_total)::int AS total,
                      sum(a.cameras_active_if_fresh)::int AS active,
                      sum(a.cameras_working_if_fresh)::int AS working,
                      sum(a.webhooks_failing)::int AS failing,
                      sum(a.webhooks_cached)::int8 AS cached
               FROM agent_instances a
               JOIN unnest($1::uuid[], $2::uuid[]) AS u(t, l)
                 ON a.tenant_id = u.t AND a.license_id = u.l
               GROUP BY a.tenant_id, a.license_id) r
         WHERE l.tenant_id = r.tenant_id AND l.id = r.license_id",
    )
    .bind(&t)
    .bind(&l)
    .execute(conn)
    .await?;
    Ok(())
}
