//! The group-commit writer: requests that arrive together share one transaction and one
//! commit, and each request is answered only after its data is committed (a 2xx means
//! committed).
//!
//! A commit costs an fsync, so a writer that commits once per request tops out at the disk's
//! fsync rate. Here a writer task takes every request waiting in its queue (up to a bound),
//! writes them with a handful of set-based statements ([`batch::write_batch`]: what one
//! transaction does, and exactly-once), commits once, and then answers them all. Under light
//! load a batch is one request and nothing waits; under heavy load batches grow by themselves.
//! This file is the queue, its byte budget, the writer tasks and their supervision.

use super::batch::{self, IngestRequest, Outcome, Refused};
use crate::config::IngestFaults;
use sqlx::PgPool;
use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

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
    /// The batch's transaction refused this request and stored nothing of it: a new instance
    /// over the cap (409), or a token revoked (401) or a tenant suspended (403) after the token
    /// cache let the request in.
    #[error("{0}")]
    Refused(Refused),
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
    match batch::write_batch(pool, &requests, max_instances).await {
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
                let result = match batch::write_batch(pool, &[&job.request], max_instances).await {
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
        Err(refused) => {
            if matches!(refused, Refused::TooManyInstances(_)) {
                metrics::counter!("ingest_instances_refused_total").increment(1);
            }
            Err(SubmitError::Refused(refused))
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::batch::AgentLicense;
    use chrono::{DateTime, TimeZone, Utc};
    use uuid::Uuid;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
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
