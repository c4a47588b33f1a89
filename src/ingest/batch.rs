//! One step of the group-commit writer: a batch of requests written in one transaction, and the
//! time rules of SPEC section 3 it applies.
//!
//! Exactly-once: each agent instance has a sequence high-water mark. The batch locks the
//! license rows it touches (in key order, so two writers cannot deadlock), reads the marks of
//! their instances after it holds the locks, drops every heartbeat at or below the mark as a
//! duplicate, and raises the mark in the same transaction.
//! A retry of a committed request therefore finds its heartbeats duplicates, and a retry of a
//! failed one finds nothing of it stored. Each request's agent token is read again in the same
//! transaction, so a revocation acts even before the token cache hears of it.
//!
//! The statements are in `store::ingest` and `store::rollup`; what is new, which instance owns
//! a camera, and the time rules are decided here. The queue, the writer tasks and their
//! supervision are in `ingest::writer`.

use crate::{
    domain::status::{self, CameraState},
    store::{
        ingest::{self, CameraKey, InstanceKey},
        rollup,
    },
};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use streamwatch_protocol::{Heartbeat, HeartbeatBatch};
use uuid::Uuid;

/// The license an agent token belongs to, as the ingest route resolved it.
#[derive(Debug, Clone, Copy)]
pub struct AgentLicense {
    pub tenant_id: Uuid,
    pub license_id: Uuid,
}

/// One authenticated, validated request.
#[derive(Debug)]
pub struct IngestRequest {
    pub license: AgentLicense,
    /// The agent token the request came with (of `license.tenant_id`). The writer checks in its
    /// transaction that it is still valid, so that a revocation takes effect at once on every
    /// replica even before its token cache hears of it. `None` for the server's own writes
    /// (the demo's seed, tests of the writer).
    pub token_id: Option<Uuid>,
    pub batch: HeartbeatBatch,
    /// Server receive time: the only trusted clock for activity.
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    pub accepted: u32,
    pub duplicates: u32,
    /// The license's check interval as the writer's transaction read it with the token (the
    /// answer's `next_interval_seconds` follows it at once); `None` without a token.
    pub check_interval_seconds: Option<i32>,
}

/// Why the writer refused one request of a batch; the batch's other requests are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0}")]
    TooManyInstances(#[from] InstanceCapReached),
    #[error("invalid or revoked agent token")]
    TokenRevoked,
    #[error("this license's tenant is suspended")]
    TenantSuspended,
}

/// Why a request of a new agent instance was refused: its license already has the most
/// instances allowed (`ingest.max_instances_per_license`, SPEC section 2). Nothing of the
/// request is stored; the license's other instances are served as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "this license already has {limit} agent instances, the most allowed \
     (STREAMWATCH__INGEST__MAX_INSTANCES_PER_LICENSE); nothing of this batch was stored. \
     An instance silent for {days} days is pruned and frees its place. An agent that loses \
     its state directory reports as a new instance: stop agents that no longer run, or raise \
     the setting",
    days = ingest::PRUNE_SILENT_INSTANCES_AFTER_DAYS
)]
pub struct InstanceCapReached {
    pub limit: usize,
}

/// The time rules of SPEC section 3, for one request.
///
/// `offset` is the agent's clock minus the server's, measured on this request: the agent's
/// `sent_at` (or, from agents that do not send it, its newest observation) minus the receive
/// time. A heartbeat counts as activity at `min(observed_at - offset, received_at)`. A
/// replayed heartbeat keeps its (corrected) observation time, and one from the future is
/// clamped to the receive time.
pub fn clock_offset(batch: &HeartbeatBatch, received_at: DateTime<Utc>) -> chrono::Duration {
    let agent_now = batch
        .agent
        .sent_at
        .or_else(|| batch.heartbeats.iter().map(|h| h.observed_at).max());
    agent_now.map_or(chrono::Duration::zero(), |t| t - received_at)
}

pub fn activity_time(
    observed_at: DateTime<Utc>,
    offset: chrono::Duration,
    received_at: DateTime<Utc>,
) -> DateTime<Utc> {
    on_server_clock(observed_at, offset).min(received_at)
}

/// An agent's time on the server's clock: `t - offset`. Validation keeps both within decades
/// of now, so this cannot overflow; if it ever could, the uncorrected time is kept rather than
/// a panic taking the writer down.
pub fn on_server_clock(t: DateTime<Utc>, offset: chrono::Duration) -> DateTime<Utc> {
    t.checked_sub_signed(offset).unwrap_or(t)
}

/// A stored offset in milliseconds as a duration (zero for one out of chrono's range).
pub fn offset_from_ms(ms: i64) -> chrono::Duration {
    chrono::Duration::try_milliseconds(ms).unwrap_or_default()
}

/// The state each camera of a report would have if the report is fresh (SPEC section 4).
pub fn camera_states(hb: &Heartbeat, observed_at: DateTime<Utc>) -> Vec<(String, CameraState)> {
    hb.cameras
        .iter()
        .map(|(id, cam)| {
            (
                id.clone(),
                status::camera_state(&status::CameraReport::from_wire(id, cam, observed_at), true),
            )
        })
        .collect()
}

/// What one instance's part of a batch changes.
struct InstanceUpdate<'a> {
    key: InstanceKey,
    hostname: &'a str,
    version: &'a str,
    high_water: i64,
    received_at: DateTime<Utc>,
    activity_at: DateTime<Utc>,
    offset_ms: i64,
    newest: &'a Heartbeat,
    newest_observed_at: DateTime<Utc>,
    accepted: i64,
}

/// Writes a batch of requests in one transaction; returns each request's outcome, in order:
/// a request whose agent token is no longer valid, or of a new agent instance whose license
/// already has `max_instances` instances, is refused, and nothing of it is written. This is the
/// writer's single step, public so that tests drive it directly.
pub async fn write_batch(
    pool: &PgPool,
    requests: &[&IngestRequest],
    max_instances: usize,
) -> Result<Vec<Result<Outcome, Refused>>, sqlx::Error> {
    let mut attempt = 1;
    loop {
        let mut conn = pool.acquire().await?;
        match write_batch_on(&mut conn, requests, max_instances).await {
            Err(e) if crate::db::is_stale_connection(&e) => {
                // The connection broke, or it reaches a server that cannot take writes (a
                // standby, or a primary shutting down: a failover). Never back into the pool;
                // a fresh one goes through the proxy to whichever node is primary now. Safe to
                // repeat: a first attempt that did commit makes the heartbeats duplicates here.
                conn.close_on_drop();
                drop(conn);
                if attempt >= STALE_CONNECTION_ATTEMPTS {
                    return Err(e);
                }
                tracing::warn!(error = %e, attempt, "ingest batch failed on a stale connection; retrying on a fresh one");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Attempts of one batch while its connection turns out stale (see [`write_batch`]): a failover
/// that lasts longer is answered 503, and the agents retry after `Retry-After`.
const STALE_CONNECTION_ATTEMPTS: u32 = 3;

async fn write_batch_on(
    conn: &mut PgConnection,
    requests: &[&IngestRequest],
    max_instances: usize,
) -> Result<Vec<Result<Outcome, Refused>>, sqlx::Error> {
    use sqlx::Connection as _;
    let mut tx = conn.begin().await?;
    let Admitted {
        tokens: token_refusals,
        marks,
        refused,
        intervals,
        totals,
        cameras: camera_rows,
        instance_tids,
        license_tids,
        instances_added,
    } = admit(&mut tx, requests, max_instances).await?;

    // Decide, in memory, what is new. Requests of one instance are applied in arrival order.
    let mut high_water: HashMap<InstanceKey, i64> = marks;
    let mut updates: BTreeMap<InstanceKey, InstanceUpdate<'_>> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(requests.len());
    let mut history = ingest::History::default();
    for (req, token_refusal) in requests.iter().zip(token_refusals) {
        if let Some(refusal) = token_refusal {
            outcomes.push(Err(refusal));
            continue;
        }
        let key = (
            req.license.tenant_id,
            req.license.license_id,
            req.batch.agent.instance_id,
        );
        if refused.contains(&key) {
            outcomes.push(Err(Refused::TooManyInstances(InstanceCapReached {
                limit: max_instances,
            })));
            continue;
        }
        let offset = clock_offset(&req.batch, req.received_at);
        let mut heartbeats: Vec<&Heartbeat> = req.batch.heartbeats.iter().collect();
        heartbeats.sort_by_key(|h| h.seq);
        let mut outcome = Outcome {
            check_interval_seconds: req
                .token_id
                .and_then(|_| intervals.get(&(key.0, key.1)).copied()),
            ..Outcome::default()
        };
        for hb in heartbeats {
            let seq = i64::try_from(hb.seq).unwrap_or(i64::MAX);
            let mark = high_water.entry(key).or_insert(-1);
            if seq <= *mark {
                outcome.duplicates += 1;
                continue;
            }
            *mark = seq;
            outcome.accepted += 1;
            let activity_at = activity_time(hb.observed_at, offset, req.received_at);
            let observed_at = on_server_clock(hb.observed_at, offset);
            let states = camera_states(hb, observed_at);
            history.push(
                key,
                seq,
                activity_at,
                req.received_at,
                hb.observed_at,
                &states,
            );
            let entry = updates.entry(key).or_insert_with(|| InstanceUpdate {
                key,
                hostname: &req.batch.agent.hostname,
                version: &req.batch.agent.version,
                high_water: seq,
                received_at: req.received_at,
                activity_at,
                offset_ms: offset.num_milliseconds(),
                newest: hb,
                newest_observed_at: observed_at,
                accepted: 0,
            });
            entry.hostname = &req.batch.agent.hostname;
            entry.version = &req.batch.agent.version;
            entry.high_water = seq;
            entry.received_at = req.received_at;
            entry.activity_at = entry.activity_at.max(activity_at);
            entry.offset_ms = offset.num_milliseconds();
            entry.newest = hb;
            entry.newest_observed_at = observed_at;
            entry.accepted += 1;
        }
        outcomes.push(Ok(outcome));
    }

    if !updates.is_empty() {
        history.insert(&mut tx).await?;
        let updates: Vec<&InstanceUpdate<'_>> = updates.values().collect();
        update_instances(&mut tx, &updates, &instance_tids).await?;
        // The batch's licenses, in key order (`updates` is).
        let mut licenses: Vec<(Uuid, Uuid)> = updates.iter().map(|u| (u.key.0, u.key.1)).collect();
        licenses.dedup();
        // The counts the license list reads: each instance's cameras, recounted when a camera
        // row changed (every instance of the licenses, since a camera taken over moves from a
        // sibling); and, as the last statement, the licenses' roll-up of their instances. The
        // license locks taken by `admit` keep every other writer away from all these rows.
        let cameras_changed = update_cameras(&mut tx, &updates, camera_rows).await?;
        if cameras_changed {
            rollup::recount_instances(&mut tx, &licenses).await?;
        }
        // The steady state: the writer read every instance of these licenses with its roll-up
        // columns and knows what it changed in them (activity, webhooks), so it computes the
        // same roll-up in memory and writes it where the lock found each row. Instance rows
        // written in ways it does not track (camera counts, placeholders) are read back by the
        // SQL roll-up.
        match license_totals(&licenses, totals, &updates) {
            Some(rows) if !cameras_changed && !instances_added => {
                let rows: Vec<rollup::LicenseRollupRow<'_>> = rows
                    .into_iter()
                    .map(|(key, totals)| (key, license_tids.get(&key).map(String::as_str), totals))
                    .collect();
                rollup::write_licenses(&mut tx, &rows).await?;
            }
            _ => rollup::refresh_licenses(&mut tx, &licenses).await?,
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// What [`admit`] decided and read, holding the batch's license locks.
struct Admitted {
    /// Each request's refusal for its token (`None`: valid, or no token).
    tokens: Vec<Option<Refused>>,
    /// Each instance's high-water mark (-1 for a new one).
    marks: HashMap<InstanceKey, i64>,
    /// The new instances refused by the cap.
    refused: HashSet<InstanceKey>,
    /// Each license's check interval.
    intervals: HashMap<(Uuid, Uuid), i32>,
    /// Each instance that existed before the batch, with its roll-up columns (`None`: see
    /// [`ingest::InstanceNow`]).
    totals: HashMap<InstanceKey, Option<rollup::InstanceTotals>>,
    /// Every camera row of the batch's licenses, as (key, owner, state).
    cameras: Vec<(CameraKey, Uuid, String)>,
    /// Where each instance row and each license row is (`ctid`), for the updates.
    instance_tids: HashMap<InstanceKey, String>,
    license_tids: HashMap<(Uuid, Uuid), String>,
    /// Whether the batch inserted an instance row (its license's roll-up is then read back).
    instances_added: bool,
}

/// Locks the batch's licenses (see [`ingest::lock_licenses`]: the ingest path's one lock) and
/// checks its tokens, reads the licenses' instance and camera rows, and creates missing
/// instance rows, at most up to `max_instances` per license.
///
/// A request whose token is no longer valid is refused; the license of every request is
/// locked, whether or not its token holds (a lock more is harmless; a second statement would
/// not be). A license deleted since its request was authenticated fails the batch.
///
/// The cap (SPEC section 2) is checked here, under the license locks: every writer of every
/// replica takes a license's lock before it creates an instance of it, so two new instances can
/// never both see room for one. A known instance (the steady state, one heartbeat per request)
/// costs nothing more: only a batch with a new instance runs the insert.
async fn admit(
    conn: &mut PgConnection,
    requests: &[&IngestRequest],
    max_instances: usize,
) -> Result<Admitted, sqlx::Error> {
    let mut licenses: Vec<(Uuid, Uuid)> = requests
        .iter()
        .map(|r| (r.license.tenant_id, r.license.license_id))
        .collect();
    licenses.sort();
    licenses.dedup();
    let mut tokens: Vec<(Uuid, Uuid)> = requests
        .iter()
        .filter_map(|r| r.token_id.map(|id| (r.license.tenant_id, id)))
        .collect();
    tokens.sort();
    tokens.dedup();
    let locked = ingest::lock_licenses(conn, &licenses, &tokens).await?;
    let token_refusals: Vec<Option<Refused>> = requests
        .iter()
        .map(|r| {
            let id = r.token_id?;
            match locked.live_tokens.get(&id) {
                None => Some(Refused::TokenRevoked),
                Some(true) => Some(Refused::TenantSuspended),
                Some(false) => None,
            }
        })
        .collect();
    // The admitted requests' instances, in arrival order: when a batch holds more new
    // instances of a license than there is room for, the first ones get in.
    let arrival: Vec<InstanceKey> = requests
        .iter()
        .zip(&token_refusals)
        .filter(|(_, refused)| refused.is_none())
        .map(|(r, _)| {
            (
                r.license.tenant_id,
                r.license.license_id,
                r.batch.agent.instance_id,
            )
        })
        .collect();
    // A license deleted since its request was authenticated (its instance rows went with it):
    // fail the batch, so that the other requests are written one by one without it. (The
    // placeholder insert below would fail on its foreign key too; this says why, and spares
    // the statement.)
    if let Some((t, l, _)) = arrival
        .iter()
        .find(|k| !locked.licenses.contains_key(&(k.0, k.1)))
    {
        return Err(sqlx::Error::Protocol(format!(
            "license {l} of tenant {t} was deleted while its heartbeats were being written"
        )));
    }
    let mut admitted_licenses: Vec<(Uuid, Uuid)> = arrival.iter().map(|k| (k.0, k.1)).collect();
    admitted_licenses.sort();
    admitted_licenses.dedup();
    let rows = if admitted_licenses.is_empty() {
        ingest::LicenseRows::default()
    } else {
        ingest::rows_of(conn, &admitted_licenses).await?
    };
    let mut marks: HashMap<InstanceKey, i64> = HashMap::with_capacity(rows.instances.len());
    let mut totals = HashMap::with_capacity(rows.instances.len());
    let mut instance_tids = HashMap::with_capacity(rows.instances.len());
    let mut present: HashMap<(Uuid, Uuid), usize> = HashMap::new();
    for (key, now) in rows.instances {
        marks.insert(key, now.high_water);
        totals.insert(key, now.totals);
        instance_tids.insert(key, now.tid);
        *present.entry((key.0, key.1)).or_default() += 1;
    }
    let mut refused = HashSet::new();
    let mut new: Vec<InstanceKey> = Vec::new();
    for key in arrival {
        if marks.contains_key(&key) || new.contains(&key) || refused.contains(&key) {
            continue;
        }
        let count = present.entry((key.0, key.1)).or_default();
        if *count >= max_instances {
            refused.insert(key);
        } else {
            *count += 1;
            new.push(key);
        }
    }
    // A placeholder row for each admitted new instance; it gets real values below, in this
    // transaction. Nobody else can have inserted one: the rows above were read holding the
    // license locks that every writer takes first.
    let instances_added = !new.is_empty();
    if instances_added {
        new.sort();
        let inserted = ingest::insert_new_instances(conn, &new).await?;
        if inserted.len() != new.len() {
            return Err(sqlx::Error::Protocol(
                "an agent instance row appeared under its license's lock".to_owned(),
            ));
        }
        for k in inserted {
            marks.insert(k, -1);
        }
    }
    Ok(Admitted {
        tokens: token_refusals,
        marks,
        refused,
        intervals: locked.licenses,
        totals,
        cameras: rows.cameras,
        instance_tids,
        license_tids: locked.license_tids,
        instances_added,
    })
}

/// The roll-up of each of `licenses` (every one has an instance in `updates`): the instances
/// as `admit` read them (`read`), with the activity and webhook columns `update_instances`
/// gives the batch's instances; `None` if an instance came without totals. Only valid when the
/// batch inserted no instance and changed no camera row (the camera counts are then as read).
fn license_totals(
    licenses: &[(Uuid, Uuid)],
    read: HashMap<InstanceKey, Option<rollup::InstanceTotals>>,
    updates: &[&InstanceUpdate<'_>],
) -> Option<Vec<((Uuid, Uuid), rollup::LicenseTotals)>> {
    let mut by_license: BTreeMap<(Uuid, Uuid), Vec<rollup::InstanceTotals>> =
        licenses.iter().map(|k| (*k, Vec::new())).collect();
    let mut locked: HashMap<InstanceKey, rollup::InstanceTotals> = HashMap::new();
    for (key, totals) in read {
        if by_license.contains_key(&(key.0, key.1)) {
            locked.insert(key, totals?);
        }
    }
    for u in updates {
        if let Some(t) = locked.get_mut(&u.key) {
            // As `update_instances` writes them.
            t.last_activity_at = t.last_activity_at.max(u.activity_at);
            let (failing, cached) = webhook_counts(u.newest);
            t.webhooks_failing = failing;
            t.webhooks_cached = cached;
        }
    }
    for ((t, l, _), totals) in locked {
        if let Some(v) = by_license.get_mut(&(t, l)) {
            v.push(totals);
        }
    }
    Some(
        by_license
            .into_iter()
            .filter_map(|(k, v)| rollup::LicenseTotals::of(&v).map(|r| (k, r)))
            .collect(),
    )
}

/// An instance's webhook columns from its newest heartbeat: cameras whose webhooks are failing,
/// and the deliveries they hold cached.
fn webhook_counts(newest: &Heartbeat) -> (i32, i64) {
    let cams = newest.cameras.values();
    let failing = cams
        .clone()
        .filter(|c| c.webhooks.status == streamwatch_protocol::WebhookStatus::Failing)
        .count();
    (
        i32::try_from(failing).unwrap_or(i32::MAX),
        cams.map(|c| c.webhooks.cached.max(0)).sum(),
    )
}

/// Each instance's row as the batch leaves it, addressed where `admit` found it (`tids`).
async fn update_instances(
    conn: &mut PgConnection,
    updates: &[&InstanceUpdate<'_>],
    tids: &HashMap<InstanceKey, String>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<ingest::InstanceRow<'_>> = updates
        .iter()
        .map(|u| {
            let (webhooks_failing, webhooks_cached) = webhook_counts(u.newest);
            ingest::InstanceRow {
                key: u.key,
                hostname: u.hostname,
                version: u.version,
                high_water: u.high_water,
                received_at: u.received_at,
                activity_at: u.activity_at,
                offset_ms: u.offset_ms,
                observed_at: u.newest_observed_at,
                cameras: &u.newest.cameras,
                accepted: u.accepted,
                webhooks_failing,
                webhooks_cached,
                tid: tids.get(&u.key).map(String::as_str),
            }
        })
        .collect();
    ingest::update_instances(conn, &rows).await
}

/// Camera rows follow each instance's newest heartbeat: a listed camera is (re)assigned to
/// the instance with the state its report implies, written only when that changes; a camera
/// the instance reported before but no longer lists is retired. Returns whether any camera row
/// changed.
///
/// The rows (`current`: every camera row of the batch's licenses, read by `admit` under their
/// locks, so nobody else changes them until we commit) are compared in memory, so that the
/// steady state (every camera with the same owner and state) runs no write statement at all; a
/// row that does change still goes through `write_camera_states`, whose SQL keeps the takeover
/// rule.
async fn update_cameras(
    conn: &mut PgConnection,
    updates: &[&InstanceUpdate<'_>],
    current: Vec<(CameraKey, Uuid, String)>,
) -> Result<bool, sqlx::Error> {
    // One row per (license, camera): if two instances of a license list the same camera in
    // one batch, the later activity wins (ON CONFLICT cannot touch a row twice).
    let mut cameras: BTreeMap<CameraKey, (Uuid, CameraState, DateTime<Utc>)> = BTreeMap::new();
    let mut listed: HashMap<InstanceKey, HashSet<&str>> = HashMap::with_capacity(updates.len());
    for u in updates {
        for (id, state) in camera_states(u.newest, u.newest_observed_at) {
            let entry =
                cameras
                    .entry((u.key.0, u.key.1, id))
                    .or_insert((u.key.2, state, u.activity_at));
            if u.activity_at >= entry.2 {
                *entry = (u.key.2, state, u.activity_at);
            }
        }
        listed.insert(u.key, u.newest.cameras.keys().map(String::as_str).collect());
    }
    let mut current: HashMap<CameraKey, (Uuid, String)> = current
        .into_iter()
        .map(|(key, instance, state)| (key, (instance, state)))
        .collect();
    // Retired: a row owned by an instance of this batch whose newest heartbeat leaves it out.
    let retired: Vec<CameraKey> = current
        .iter()
        .filter(|((t, l, camera), (owner, _))| {
            listed
                .get(&(*t, *l, *owner))
                .is_some_and(|ids| !ids.contains(camera.as_str()))
        })
        .map(|(key, _)| key.clone())
        .collect();
    if !retired.is_empty() {
        ingest::delete_cameras(conn, &retired).await?;
        for key in &retired {
            current.remove(key);
        }
    }
    let rows: Vec<ingest::CameraRow> = cameras
        .into_iter()
        .filter(|(key, (instance, state, _))| {
            current
                .get(key)
                .is_none_or(|(owner, stored)| owner != instance || stored != state.as_str())
        })
        .map(
            |((tenant_id, license_id, camera_id), (instance_id, state, changed_at))| {
                ingest::CameraRow {
                    tenant_id,
                    license_id,
                    camera_id,
                    instance_id,
                    state,
                    changed_at,
                }
            },
        )
        .collect();
    let written = if rows.is_empty() {
        0
    } else {
        ingest::write_camera_states(conn, &rows).await?
    };
    Ok(!retired.is_empty() || written > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn a_live_heartbeat_counts_at_receive_time_even_with_a_fast_clock() {
        let offset = chrono::Duration::seconds(300); // agent clock 5 min ahead
        assert_eq!(activity_time(t(300), offset, t(0)), t(0));
    }

    #[test]
    fn a_replayed_heartbeat_counts_at_its_corrected_observation_time() {
        let offset = chrono::Duration::seconds(300);
        // Observed an hour ago by the agent's (fast) clock.
        assert_eq!(activity_time(t(300 - 3600), offset, t(0)), t(-3600));
    }

    #[test]
    fn a_heartbeat_from_the_future_is_clamped_to_receive_time() {
        assert_eq!(
            activity_time(t(10_000), chrono::Duration::zero(), t(0)),
            t(0)
        );
    }
}
