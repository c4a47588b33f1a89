//! The group-commit writer: requests that arrive together share one transaction and one
//! commit, and each request is answered only after its data is committed (a 2xx means
//! committed).
//!
//! A commit costs an fsync, so a writer that commits once per request tops out at the disk's
//! fsync rate. Here a writer task takes every request waiting in its queue (up to a bound),
//! writes them with a handful of set-based statements, commits once, and then answers them
//! all. Under light load a batch is one request and nothing waits; under heavy load batches
//! grow by themselves.
//!
//! Exactly-once: each agent instance has a sequence high-water mark. The writer locks the
//! instance rows of a batch (in key order, so two writers cannot deadlock), drops every
//! heartbeat at or below the mark as a duplicate, and raises the mark in the same
//! transaction. A retry of a committed request therefore finds its heartbeats duplicates, and a
//! retry of a failed one finds nothing of it stored.
//!
//! The statements are in `store::ingest` and `store::rollup`; what is new, which instance owns
//! a camera, and the time rules are decided here.

use crate::{
    config::IngestFaults,
    domain::status::{self, CameraState},
    store::{
        ingest::{self, InstanceKey},
        rollup,
    },
};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};
use streamwatch_protocol::{Heartbeat, HeartbeatBatch};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
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

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The queue is full: shed load (429).
    #[error("the ingest queue is full")]
    Overloaded,
    /// PostgreSQL is unreachable or cannot take writes (a failover, 503). Not acknowledged; at
    /// most a commit whose answer was lost with its connection got in, and a retry finds those
    /// heartbeats duplicates.
    #[error("PostgreSQL is unavailable")]
    Unavailable,
    /// Storing failed for another reason (500); nothing of the request was committed.
    #[error("storing heartbeats failed: {0}")]
    Failed(String),
    /// The writer dropped the request unanswered: it is shutting down, or the batch's task
    /// failed (503; nothing of it was committed).
    #[error("the ingest writer has stopped")]
    Stopped,
    /// The request's agent instance is new and its license already has `limit` instances
    /// (409; nothing of it was stored).
    #[error("{0}")]
    TooManyInstances(InstanceCapReached),
    /// The agent token was revoked (or its license deleted) after the request was
    /// authenticated from the token cache (401; nothing stored).
    #[error("invalid or revoked agent token")]
    TokenRevoked,
    /// The tenant was suspended after the request was authenticated (403; nothing stored).
    #[error("this license's tenant is suspended")]
    TenantSuspended,
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

/// One queued request and where its answer goes.
pub struct Job {
    pub request: IngestRequest,
    reply: oneshot::Sender<Result<Outcome, SubmitError>>,
    /// Its share of the queue's byte budget, given back when the job is dropped (answered).
    _bytes: OwnedSemaphorePermit,
}

impl Job {
    /// Answers the request (a closed channel means its submitter gave up: nothing to do).
    pub fn answer(self, result: Result<Outcome, SubmitError>) {
        let _ = self.reply.send(result);
    }
}

/// Bounds of the writer (configured by `[ingest]`, see `config::IngestSettings`).
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Requests waiting beyond this are refused with 429.
    pub queue_capacity: usize,
    /// Decoded request bytes waiting or being written beyond this are refused with 429: the
    /// request count alone would let 4,096 requests of 8 MiB each fill memory.
    pub queue_bytes: usize,
    /// At most this many heartbeats go into one transaction.
    pub max_batch_heartbeats: usize,
    /// Writer tasks (each one transaction at a time).
    pub writers: usize,
    /// A new agent instance of a license that already has this many is refused (409).
    pub max_instances_per_license: usize,
    /// Failures injected by the integration tests; none outside them.
    pub faults: IngestFaults,
}

/// What readiness and the metrics know of the writer tasks.
#[derive(Debug, Default)]
pub struct WriterHealth {
    /// Writer tasks waiting out their backoff after a failure.
    restarting: AtomicUsize,
    /// Failures (panics) since start.
    restarts: AtomicU64,
}

impl WriterHealth {
    /// Every writer task is taking work.
    pub fn is_ready(&self) -> bool {
        self.restarting.load(Ordering::Relaxed) == 0
    }

    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }
}

/// The handle request handlers submit to. Cloning is cheap.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    /// One permit per decoded byte of the requests queued or being written.
    bytes: Arc<Semaphore>,
    /// The semaphore's size: what one request may take at most.
    budget: usize,
    health: Arc<WriterHealth>,
}

/// The first wait after a writer failed; it doubles up to [`MAX_BACKOFF`] while failures go on.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

type Queue = Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>;

impl Writer {
    /// Starts the writer tasks. They stop when every `Writer` handle is dropped, after
    /// finishing what is queued.
    pub fn spawn(pool: &PgPool, config: WriterConfig) -> Self {
        let pool = pool.clone();
        Self::spawn_with(config, move |jobs| {
            let pool = pool.clone();
            async move {
                if let Some(poison) = config.faults.panic_on_instance
                    && jobs
                        .iter()
                        .any(|j| j.request.batch.agent.instance_id == poison)
                {
                    panic!("fault injection: a batch of agent instance {poison} panics its writer");
                }
                run_jobs(pool, jobs, config.max_instances_per_license).await;
            }
        })
    }

    /// Like [`spawn`](Self::spawn), with `run` writing each batch (tests make it fail).
    ///
    /// Supervision: each batch runs in a task of its own. If it panics, its requests are
    /// answered 503 (their reply channels close with the task, see [`SubmitError::Stopped`]),
    /// the failure is logged and counted (`ingest_writer_restarts_total`), and the writer
    /// takes work again after a backoff, so one bad batch cannot stop ingest for every tenant.
    pub fn spawn_with<F, Fut>(config: WriterConfig, run: F) -> Self
    where
        F: Fn(Vec<Job>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Job>(config.queue_capacity);
        let rx: Queue = Arc::new(tokio::sync::Mutex::new(rx));
        let health = Arc::new(WriterHealth::default());
        for _ in 0..config.writers.max(1) {
            let (rx, health, run) = (rx.clone(), health.clone(), run.clone());
            let min_backoff = config.faults.min_backoff.unwrap_or(MIN_BACKOFF);
            tokio::spawn(async move {
                let mut backoff = min_backoff;
                while let Some(jobs) = next_batch(&rx, config.max_batch_heartbeats).await {
                    match tokio::spawn(run(jobs)).await {
                        Ok(()) => backoff = min_backoff,
                        Err(e) => {
                            tracing::error!(error = %e, ?backoff, "an ingest writer failed; its batch was answered 503 and it restarts after the backoff");
                            metrics::counter!("ingest_writer_restarts_total").increment(1);
                            health.restarting.fetch_add(1, Ordering::Relaxed);
                            health.restarts.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(backoff).await;
                            health.restarting.fetch_sub(1, Ordering::Relaxed);
                            backoff = (backoff * 2).min(MAX_BACKOFF.max(min_backoff));
                        }
                    }
                }
            });
        }
        let budget = config.queue_bytes.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            queue: tx,
            bytes: Arc::new(Semaphore::new(budget)),
            budget,
            health,
        }
    }

    pub fn health(&self) -> &WriterHealth {
        &self.health
    }

    /// Queues a request of `decoded_bytes` and waits until it is committed (or failed).
    /// Refused at once (`Overloaded`, 429) when the queue is full by count or by bytes; a
    /// request larger than the whole byte budget is taken alone.
    pub async fn submit(
        &self,
        request: IngestRequest,
        decoded_bytes: usize,
    ) -> Result<Outcome, SubmitError> {
        let share = u32::try_from(decoded_bytes.clamp(1, self.budget)).unwrap_or(u32::MAX);
        let bytes = Arc::clone(&self.bytes)
            .try_acquire_many_owned(share)
            .map_err(|_| SubmitError::Overloaded)?;
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send(Job {
                request,
                reply,
                _bytes: bytes,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => SubmitError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => SubmitError::Stopped,
            })?;
        answer.await.map_err(|_| SubmitError::Stopped)?
    }
}

/// The first job (waiting for it), then everything else already queued, up to
/// `max_heartbeats`. `None` once every handle is dropped and the queue is empty.
async fn next_batch(rx: &Queue, max_heartbeats: usize) -> Option<Vec<Job>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut heartbeats = first.request.batch.heartbeats.len();
    let mut jobs = vec![first];
    while heartbeats < max_heartbeats {
        match rx.try_recv() {
            Ok(job) => {
                heartbeats += job.request.batch.heartbeats.len();
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    Some(jobs)
}

async fn run_jobs(pool: PgPool, jobs: Vec<Job>, max_instances: usize) {
    let pool = &pool;
    let started = std::time::Instant::now();
    let requests: Vec<&IngestRequest> = jobs.iter().map(|j| &j.request).collect();
    match write_batch(pool, &requests, max_instances).await {
        Ok(outcomes) => {
            metrics::histogram!("ingest_batch_requests").record(jobs.len() as f64);
            metrics::histogram!("ingest_batch_seconds").record(started.elapsed().as_secs_f64());
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let _ = job.reply.send(counted(outcome));
            }
        }
        Err(e) if jobs.len() > 1 && !is_unavailable(&e) => {
            // One request may have made the whole batch fail (say, its license was deleted a
            // moment ago). Write each alone so that the others still get in.
            tracing::warn!(error = %e, requests = jobs.len(), "ingest batch failed; retrying its requests one by one");
            for job in jobs {
                let result = match write_batch(pool, &[&job.request], max_instances).await {
                    Ok(mut outcomes) => counted(outcomes.remove(0)),
                    Err(e) => Err(submit_error(&e)),
                };
                let _ = job.reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, requests = jobs.len(), "ingest batch failed");
            for job in jobs {
                let _ = job.reply.send(Err(submit_error(&e)));
            }
        }
    }
}

/// One request's outcome as its answer, counted in the metrics.
fn counted(outcome: Result<Outcome, Refused>) -> Result<Outcome, SubmitError> {
    match outcome {
        Ok(outcome) => {
            metrics::counter!("ingest_heartbeats_accepted_total")
                .increment(u64::from(outcome.accepted));
            metrics::counter!("ingest_heartbeats_duplicate_total")
                .increment(u64::from(outcome.duplicates));
            Ok(outcome)
        }
        Err(Refused::TooManyInstances(refused)) => {
            metrics::counter!("ingest_instances_refused_total").increment(1);
            Err(SubmitError::TooManyInstances(refused))
        }
        Err(Refused::TokenRevoked) => Err(SubmitError::TokenRevoked),
        Err(Refused::TenantSuspended) => Err(SubmitError::TenantSuspended),
    }
}

fn submit_error(e: &sqlx::Error) -> SubmitError {
    if is_unavailable(e) {
        SubmitError::Unavailable
    } else {
        SubmitError::Failed(e.to_string())
    }
}

/// No writable primary (PostgreSQL down, a broken connection, a failover): 503, and the batch
/// is not retried request by request (no request of it is to blame).
fn is_unavailable(e: &sqlx::Error) -> bool {
    crate::db::is_unavailable(e)
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
    // Each request's token, read in this transaction: refused ones take no lock and write
    // nothing.
    let token_refusals = check_tokens(&mut tx, requests).await?;
    let admitted: Vec<&IngestRequest> = requests
        .iter()
        .zip(&token_refusals)
        .filter(|(_, refused)| refused.is_none())
        .map(|(r, _)| *r)
        .collect();
    let (marks, refused, intervals) = lock_instances(&mut tx, &admitted, max_instances).await?;

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
        update_instances(&mut tx, &updates).await?;
        // The batch's licenses, in key order (`updates` is).
        let mut licenses: Vec<(Uuid, Uuid)> = updates.iter().map(|u| (u.key.0, u.key.1)).collect();
        licenses.dedup();
        // The counts the license list reads: each instance's cameras, recounted when a camera
        // row changed (every instance of the licenses, since a camera taken over moves from a
        // sibling); and, as the last statement, the licenses' roll-up of their instances. All
        // these rows were locked by `lock_instances`.
        if update_cameras(&mut tx, &updates).await? {
            rollup::recount_instances(&mut tx, &licenses).await?;
        }
        rollup::refresh_licenses(&mut tx, &licenses).await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Each request's refusal for its token (`None`: valid, or no token), read in the writer's
/// transaction.
async fn check_tokens(
    conn: &mut PgConnection,
    requests: &[&IngestRequest],
) -> Result<Vec<Option<Refused>>, sqlx::Error> {
    let mut tokens: Vec<(Uuid, Uuid)> = requests
        .iter()
        .filter_map(|r| r.token_id.map(|id| (r.license.tenant_id, id)))
        .collect();
    if tokens.is_empty() {
        return Ok(vec![None; requests.len()]);
    }
    tokens.sort();
    tokens.dedup();
    let live: HashMap<Uuid, ingest::LiveToken> = ingest::live_tokens(conn, &tokens)
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect();
    Ok(requests
        .iter()
        .map(|r| {
            let id = r.token_id?;
            match live.get(&id) {
                None => Some(Refused::TokenRevoked),
                Some(t) if t.suspended => Some(Refused::TenantSuspended),
                Some(_) => None,
            }
        })
        .collect())
}

/// What [`lock_instances`] locked: each instance's high-water mark (-1 for a new one), the new
/// instances refused by the cap, and each license's check interval.
type Locked = (
    HashMap<InstanceKey, i64>,
    HashSet<InstanceKey>,
    HashMap<(Uuid, Uuid), i32>,
);

/// Locks the batch's licenses and all their instance rows, in key order (see
/// [`ingest::lock_licenses_and_instances`] for why all of them, and licenses first), and
/// creates missing instance rows, at most up to `max_instances` per license.
///
/// The cap (SPEC section 2) is checked here, in the writer's transaction, under the license
/// locks: every writer of every replica takes a license's lock before it creates an instance
/// of it, so two new instances can never both see room for one. A known instance (the steady
/// state, one heartbeat per request) costs nothing more: the lock statement already returns
/// the license's instances, and only a batch with a new instance runs the one extra statement
/// that counts them.
async fn lock_instances(
    conn: &mut PgConnection,
    requests: &[&IngestRequest],
    max_instances: usize,
) -> Result<Locked, sqlx::Error> {
    // In arrival order: when a batch holds more new instances of a license than there is room
    // for, the first ones get in.
    let arrival: Vec<InstanceKey> = requests
        .iter()
        .map(|r| {
            (
                r.license.tenant_id,
                r.license.license_id,
                r.batch.agent.instance_id,
            )
        })
        .collect();
    let mut keys = arrival.clone();
    keys.sort();
    keys.dedup();
    let licenses: Vec<(Uuid, Uuid)> = keys.iter().map(|k| (k.0, k.1)).collect();
    let ingest::Locked {
        licenses,
        mut marks,
    } = ingest::lock_licenses_and_instances(conn, &licenses).await?;
    // A license deleted since its request was authenticated (its instance rows went with it):
    // fail the batch, so that the other requests are written one by one without it. (The
    // placeholder insert below would fail on its foreign key too; this says why, and spares
    // the statement.)
    if let Some((t, l, _)) = keys.iter().find(|k| !licenses.contains_key(&(k.0, k.1))) {
        return Err(sqlx::Error::Protocol(format!(
            "license {l} of tenant {t} was deleted while its heartbeats were being written"
        )));
    }
    let mut refused = HashSet::new();
    let mut new: Vec<InstanceKey> = Vec::new();
    for key in arrival {
        if !marks.contains_key(&key) && !new.contains(&key) {
            new.push(key);
        }
    }
    if new.is_empty() {
        return Ok((marks, refused, licenses));
    }
    // The instances the new ones' licenses have now. A fresh statement, run holding the
    // license locks: the statement above took its snapshot before it waited for them, so it
    // may have missed an instance that a writer holding one of them a moment ago committed.
    // Nobody can add one now until we commit.
    let mut present: HashMap<(Uuid, Uuid), HashSet<Uuid>> = HashMap::new();
    let mut new_licenses: Vec<(Uuid, Uuid)> = new.iter().map(|k| (k.0, k.1)).collect();
    new_licenses.sort();
    new_licenses.dedup();
    for (t, l, i) in ingest::instances_of(conn, &new_licenses).await? {
        present.entry((t, l)).or_default().insert(i);
    }
    new.retain(|key| {
        let ids = present.entry((key.0, key.1)).or_default();
        if ids.contains(&key.2) {
            return true; // committed meanwhile: locked below with its mark
        }
        if ids.len() >= max_instances {
            refused.insert(*key);
            return false;
        }
        ids.insert(key.2);
        true
    });
    new.sort();
    // A placeholder row for each admitted new instance; it gets real values below, in this
    // transaction. Only now, and only when there is one (the steady state has none): the
    // license locks taken above keep every other writer away from these licenses until we
    // commit. A row committed meanwhile (see above) conflicts here, and a fresh statement
    // locks it.
    if !new.is_empty() {
        for k in ingest::insert_new_instances(conn, &new).await? {
            marks.insert(k, -1);
        }
        let existing: Vec<InstanceKey> =
            new.into_iter().filter(|k| !marks.contains_key(k)).collect();
        if !existing.is_empty() {
            for (k, hw) in ingest::lock_instances(conn, &existing).await? {
                marks.insert(k, hw);
            }
        }
    }
    Ok((marks, refused, licenses))
}

/// Each instance's row as the batch leaves it.
async fn update_instances(
    conn: &mut PgConnection,
    updates: &[&InstanceUpdate<'_>],
) -> Result<(), sqlx::Error> {
    let rows: Vec<ingest::InstanceRow<'_>> = updates
        .iter()
        .map(|u| {
            let cams = u.newest.cameras.values();
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
                webhooks_failing: i32::try_from(
                    cams.clone()
                        .filter(|c| {
                            c.webhooks.status == streamwatch_protocol::WebhookStatus::Failing
                        })
                        .count(),
                )
                .unwrap_or(i32::MAX),
                webhooks_cached: cams.map(|c| c.webhooks.cached.max(0)).sum(),
            }
        })
        .collect();
    ingest::update_instances(conn, &rows).await
}

/// Camera rows follow each instance's newest heartbeat: a listed camera is (re)assigned to
/// the instance with the state its report implies, written only when that changes; a camera
/// the instance reported before but no longer lists is retired. Returns whether any camera row
/// changed.
async fn update_cameras(
    conn: &mut PgConnection,
    updates: &[&InstanceUpdate<'_>],
) -> Result<bool, sqlx::Error> {
    // One row per (license, camera): if two instances of a license list the same camera in
    // one batch, the later activity wins (ON CONFLICT cannot touch a row twice).
    type CameraKey = (Uuid, Uuid, String);
    let mut cameras: BTreeMap<CameraKey, (Uuid, CameraState, DateTime<Utc>)> = BTreeMap::new();
    let mut listed = Vec::with_capacity(updates.len());
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
        listed.push((
            u.key,
            u.newest
                .cameras
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        ));
    }
    let retired = ingest::retire_unlisted_cameras(conn, &listed).await?;
    if cameras.is_empty() {
        return Ok(retired > 0);
    }
    let rows: Vec<ingest::CameraRow> = cameras
        .into_iter()
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
    let written = ingest::write_camera_states(conn, &rows).await?;
    Ok(retired > 0 || written > 0)
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

    fn request() -> IngestRequest {
        IngestRequest {
            token_id: None,
            license: AgentLicense {
                tenant_id: Uuid::nil(),
                license_id: Uuid::nil(),
            },
            batch: serde_json::from_value(serde_json::json!({
                "agent": {"instance_id": Uuid::nil()},
                "heartbeats": [{"seq": 1, "observed_at": t(0), "cameras": {}}]
            }))
            .unwrap(),
            received_at: t(0),
        }
    }

    #[tokio::test]
    async fn a_writer_whose_batch_panics_answers_it_503_and_takes_work_again_after_a_backoff() {
        let calls = Arc::new(AtomicUsize::new(0));
        let config = WriterConfig {
            queue_capacity: 8,
            queue_bytes: 1 << 20,
            max_batch_heartbeats: 1,
            writers: 1,
            max_instances_per_license: 8,
            faults: IngestFaults::default(),
        };
        let seen = calls.clone();
        let writer = Writer::spawn_with(config, move |jobs: Vec<Job>| {
            let seen = seen.clone();
            async move {
                // The first batch is the poison one.
                assert!(seen.fetch_add(1, Ordering::SeqCst) > 0, "a forced panic");
                for job in jobs {
                    job.answer(Ok(Outcome::default()));
                }
            }
        });
        assert!(matches!(
            writer.submit(request(), 100).await,
            Err(SubmitError::Stopped)
        ));
        // The next request waits for the writer's backoff, then gets in.
        assert_eq!(
            writer.submit(request(), 100).await.unwrap(),
            Outcome::default()
        );
        assert_eq!(writer.health().restarts(), 1);
        assert!(writer.health().is_ready());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn requests_past_the_queues_byte_budget_are_refused_until_the_queued_ones_are_answered() {
        let config = WriterConfig {
            queue_capacity: 8,
            queue_bytes: 100,
            max_batch_heartbeats: 1,
            writers: 1,
            max_instances_per_license: 8,
            faults: IngestFaults::default(),
        };
        let gate = Arc::new(tokio::sync::Notify::new());
        let open = gate.clone();
        let writer = Writer::spawn_with(config, move |jobs: Vec<Job>| {
            let open = open.clone();
            async move {
                open.notified().await;
                for job in jobs {
                    job.answer(Ok(Outcome::default()));
                }
            }
        });
        let first = tokio::spawn({
            let writer = writer.clone();
            async move { writer.submit(request(), 60).await }
        });
        // The first request holds 60 of the 100 bytes until it is answered.
        while writer.bytes.available_permits() == 100 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            writer.submit(request(), 60).await,
            Err(SubmitError::Overloaded)
        ));
        gate.notify_one();
        assert_eq!(first.await.unwrap().unwrap(), Outcome::default());
        // Answered: its bytes are free again, and an over-budget request is taken alone.
        let second = tokio::spawn({
            let writer = writer.clone();
            async move { writer.submit(request(), 1_000).await }
        });
        while writer.bytes.available_permits() == 100 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        assert_eq!(second.await.unwrap().unwrap(), Outcome::default());
    }
}
