//! Pushing heartbeats to the central service (SPEC sections 3 and 7).
//!
//! Every interval the pusher takes one heartbeat of every configured camera, gives it the next
//! seq, appends it to the [spool](crate::spool) (fsynced), and only then sends the oldest
//! pending heartbeats, up to 500 and 1 MiB per request, oldest first. A 2xx removes exactly the
//! heartbeats it covered. So the spool is the only path to the server: a heartbeat sent live and
//! one replayed after a week take the same road, and nothing is sent before it is on disk.
//!
//! What each answer makes the pusher do:
//!
//! | answer | what happens |
//! |---|---|
//! | 2xx | the batch leaves the spool; `next_interval_seconds` becomes the interval; the next batch goes at once |
//! | 429, 503 | wait at least `Retry-After`, and at least the backoff |
//! | other 5xx, no answer | exponential backoff with jitter (1 s doubling, up to `[central] retry_max_seconds`) |
//! | 413, 422 with several heartbeats | split: the next request carries half as many (until one alone) |
//! | 413, 422 with one heartbeat | it can never be accepted: dropped with a loud log and counted (`rejected`) |
//! | 401, 403, other 4xx | keep spooling and retry slowly (every minute at most), logging what to fix |
//!
//! `agent.sent_at` is set at every attempt, so the server measures the clock offset right even
//! for replays. Bodies over 1 KiB are gzipped.
//!
//! A camera changing state (see [`crate::health::Condition`]) sends a heartbeat early, at most
//! one per `[agent] min_heartbeat_gap_seconds`, so the central view follows a camera going
//! offline within seconds even when the interval is a minute.

use crate::backoff::{Backoff, jitter};
use crate::cameras::Cameras;
use crate::config::Central;
use crate::http_error_chain;
use crate::spool::{Spool, SpoolStats};
use crate::state::AgentState;
use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streamwatch_protocol::{
    AgentInfo, Heartbeat, HeartbeatBatch, IngestResponse, MAX_BODY_BYTES_COMPRESSED,
    PROTOCOL_HEADER, PROTOCOL_VERSION,
};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Bodies bigger than this are gzipped.
pub const GZIP_ABOVE: usize = 1024;
/// Heartbeats of one request take at most this many bytes of JSON (room left for `agent`), so
/// the body stays under the server's 1 MiB even before gzip.
pub const MAX_BATCH_JSON: u64 = (MAX_BODY_BYTES_COMPRESSED - 16 * 1024) as u64;
/// The wait between retries after 401, 403 and other client errors.
pub const SLOW_RETRY: Duration = Duration::from_secs(60);
/// A `Retry-After` longer than this is not believed.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The durable part: the sequence counter and the spool, used together under one lock.
#[derive(Debug)]
pub struct Store {
    pub state: AgentState,
    pub spool: Spool,
}

/// What the dashboard and tests see of the pusher.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PushStatus {
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// The latest failure, a sentence for operators; cleared by a success.
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    /// Heartbeats taken (spooled) since the agent started.
    pub heartbeats_recorded: u64,
    /// Requests that got a 2xx.
    pub batches_acknowledged: u64,
    /// Heartbeats the server stored, and those it already had (duplicates).
    pub heartbeats_accepted: u64,
    pub heartbeats_duplicate: u64,
    /// The reporting interval in use.
    pub interval_seconds: u64,
    /// The agent's clock minus the server's, from the last answer (network delay included).
    pub clock_offset_ms: Option<i64>,
    /// The spool as of the last operation.
    pub spool: SpoolStats,
}

/// Shared handle on [`PushStatus`].
pub type SharedPushStatus = Arc<Mutex<PushStatus>>;

/// What to do with an answer (see the table in the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Committed: remove the batch from the spool.
    Ack,
    /// Too big or invalid with several heartbeats: send half as many.
    Split,
    /// Invalid alone: drop it for good.
    Reject,
    /// Try the same batch again later, waiting at least `at_least`; `slow` for answers that
    /// need an operator (bad token, suspended tenant).
    Retry {
        at_least: Option<Duration>,
        slow: bool,
    },
}

/// The verdict on an HTTP status for a batch of `batch_len` heartbeats.
pub fn classify(status: u16, retry_after: Option<Duration>, batch_len: usize) -> Verdict {
    match status {
        200..=299 => Verdict::Ack,
        413 | 422 if batch_len > 1 => Verdict::Split,
        413 | 422 => Verdict::Reject,
        429 | 503 => Verdict::Retry {
            at_least: retry_after,
            slow: false,
        },
        500..=599 => Verdict::Retry {
            at_least: retry_after,
            slow: false,
        },
        _ => Verdict::Retry {
            at_least: None,
            slow: true,
        },
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by streamwatch), bounded.
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// The request body and whether it is gzipped (bodies over [`GZIP_ABOVE`] bytes are).
pub fn encode_body(batch: &HeartbeatBatch) -> anyhow::Result<(Vec<u8>, bool)> {
    let json = serde_json::to_vec(batch).context("cannot encode a heartbeat batch")?;
    if json.len() <= GZIP_ABOVE {
        return Ok((json, false));
    }
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(&json)?;
    Ok((encoder.finish()?, true))
}

/// What one send attempt did.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// Nothing was pending.
    Idle,
    /// The server acknowledged the batch.
    Acked {
        heartbeats: usize,
        accepted: u32,
        duplicates: u32,
    },
    /// The batch was too big or invalid: the next one is smaller.
    Split,
    /// A lone heartbeat was refused for good and dropped.
    Rejected,
    /// The batch stays; try again after this long.
    Wait(Duration),
}

/// Takes heartbeats and sends the spool (see the module docs).
pub struct Pusher {
    client: reqwest::Client,
    central: Central,
    agent: AgentInfo,
    store: Arc<Mutex<Store>>,
    cameras: Arc<Cameras>,
    status: SharedPushStatus,
    backoff: Backoff,
    /// Heartbeats per request now (shrinks on 413/422, back to the maximum after a 2xx).
    batch_limit: usize,
    interval: Duration,
    min_gap: Duration,
}

impl Pusher {
    pub fn new(
        central: Central,
        agent: AgentInfo,
        store: Store,
        cameras: Arc<Cameras>,
        interval: Duration,
        min_gap: Duration,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(central.timeout)
            .connect_timeout(central.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("streamwatch-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot start the HTTP client")?;
        let status = PushStatus {
            interval_seconds: interval.as_secs(),
            spool: store.spool.stats(),
            ..PushStatus::default()
        };
        Ok(Self {
            client,
            backoff: Backoff::new(Duration::from_secs(1), central.retry_max),
            batch_limit: central.max_batch_heartbeats,
            central,
            agent,
            store: Arc::new(Mutex::new(store)),
            cameras,
            status: Arc::new(Mutex::new(status)),
            interval,
            min_gap,
        })
    }

    /// The shared status, for the local API.
    pub fn status(&self) -> SharedPushStatus {
        self.status.clone()
    }

    fn update(&self, f: impl FnOnce(&mut PushStatus)) {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut status);
    }

    /// Runs `f` on the store off the async runtime (file I/O and fsync).
    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let store = self.store.clone();
        let (result, stats) = tokio::task::spawn_blocking(move || {
            let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
            let result = f(&mut store);
            (result, store.spool.stats())
        })
        .await
        .context("the spool task panicked")?;
        self.update(|s| s.spool = stats);
        result
    }

    /// Takes one heartbeat of every camera as of now and spools it. Returns its seq.
    pub async fn record(&self) -> anyhow::Result<u64> {
        let now = Utc::now();
        let cameras = self.cameras.reports(now);
        let seq = self
            .with_store(move |store| {
                // The seq is persisted before the heartbeat is: a crash in between leaves a gap,
                // never a seq used twice.
                let seq = store.state.allocate_seq()?;
                let heartbeat = Heartbeat {
                    seq,
                    observed_at: now,
                    cameras,
                };
                store.spool.append(&heartbeat, now)?;
                Ok(seq)
            })
            .await?;
        self.update(|s| s.heartbeats_recorded += 1);
        Ok(seq)
    }

    /// Sends the oldest pending batch once and deals with the answer.
    pub async fn send_once(&mut self) -> Attempt {
        let limit = self.batch_limit;
        let batch = match self
            .with_store(move |store| store.spool.oldest(limit, MAX_BATCH_JSON))
            .await
        {
            Ok(batch) => batch,
            Err(e) => {
                let error = format!("cannot read the spool: {e:#}");
                tracing::error!(%error);
                self.update(|s| s.last_error = Some(error));
                return Attempt::Wait(self.backoff.fail());
            }
        };
        let (Some(first), Some(last)) = (batch.first().map(|h| h.seq), batch.last().map(|h| h.seq))
        else {
            return Attempt::Idle;
        };
        let count = batch.len();
        let sent_at = Utc::now();
        let document = HeartbeatBatch {
            agent: AgentInfo {
                sent_at: Some(sent_at),
                ..self.agent.clone()
            },
            heartbeats: batch,
        };
        let (body, gzipped) = match encode_body(&document) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot encode a batch");
                return Attempt::Wait(self.backoff.fail());
            }
        };
        self.update(|s| s.last_attempt_at = Some(sent_at));
        let mut request = self
            .client
            .post(self.central.ingest_url())
            .bearer_auth(self.central.token.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string());
        if gzipped {
            request = request.header(reqwest::header::CONTENT_ENCODING, "gzip");
        }
        let response = match request.body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                let wait = self.backoff.fail();
                let error = format!(
                    "cannot reach {}: {}",
                    streamwatch_protocol::redact_url(self.central.url.as_str()),
                    http_error_chain(e)
                );
                tracing::warn!(%error, pending_from = first, retry_in = ?wait, "heartbeats stay in the spool");
                self.failed(error);
                return Attempt::Wait(wait);
            }
        };
        let status = response.status();
        let retry_after = parse_retry_after(
            response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
        );
        match classify(status.as_u16(), retry_after, count) {
            Verdict::Ack => {
                let answer = response.json::<IngestResponse>().await.ok();
                self.acked(first, last, count, answer).await
            }
            Verdict::Split => {
                self.batch_limit = (count / 2).max(1);
                let detail = problem_detail(response).await;
                tracing::warn!(%status, heartbeats = count, next = self.batch_limit, detail, "the server refused the batch; splitting it");
                Attempt::Split
            }
            Verdict::Reject => {
                let detail = problem_detail(response).await;
                tracing::error!(%status, seq = first, detail, "the server refused a heartbeat for good; it is dropped (this is a bug in the agent: please report it)");
                if let Err(e) = self
                    .with_store(move |store| store.spool.reject_through(last))
                    .await
                {
                    tracing::error!(error = %format!("{e:#}"), "cannot drop the rejected heartbeat");
                    return Attempt::Wait(self.backoff.fail());
                }
                self.failed(format!(
                    "the server refused heartbeat {first} ({status}): {detail}"
                ));
                Attempt::Rejected
            }
            Verdict::Retry { at_least, slow } => {
                let detail = problem_detail(response).await;
                let mut wait = self.backoff.fail();
                if slow {
                    wait = wait.max(jitter(SLOW_RETRY.min(self.central.retry_max)));
                }
                if let Some(at_least) = at_least {
                    wait = wait.max(at_least);
                }
                let error = match status.as_u16() {
                    401 => format!(
                        "the server refused the agent token (401): check [central] token ({detail})"
                    ),
                    403 => format!(
                        "the license's tenant is suspended (403): heartbeats are kept until it is lifted ({detail})"
                    ),
                    404 => format!(
                        "{} answered 404: is [central] url the streamwatch server?",
                        streamwatch_protocol::redact_url(self.central.url.as_str())
                    ),
                    _ => format!("the server answered {status}: {detail}"),
                };
                if slow {
                    tracing::error!(%error, retry_in = ?wait, "heartbeats stay in the spool");
                } else {
                    tracing::warn!(%error, retry_in = ?wait, "heartbeats stay in the spool");
                }
                self.failed(error);
                Attempt::Wait(wait)
            }
        }
    }

    async fn acked(
        &mut self,
        first: u64,
        last: u64,
        count: usize,
        answer: Option<IngestResponse>,
    ) -> Attempt {
        // A 2xx means committed, whatever the body says; the body only tunes the interval.
        if let Err(e) = self
            .with_store(move |store| store.spool.ack_through(last))
            .await
        {
            // The heartbeats stay pending and are sent again: the server answers them as
            // duplicates. Nothing is lost.
            tracing::error!(error = %format!("{e:#}"), "cannot remove acknowledged heartbeats from the spool");
            return Attempt::Wait(self.backoff.fail());
        }
        self.backoff.reset();
        self.batch_limit = self.central.max_batch_heartbeats;
        let (accepted, duplicates) = answer
            .as_ref()
            .map_or((0, 0), |a| (a.accepted, a.duplicates));
        if let Some(a) = &answer {
            let interval = Duration::from_secs(u64::from(a.next_interval_seconds.max(1)));
            if interval != self.interval {
                tracing::info!(
                    seconds = interval.as_secs(),
                    "the server set the reporting interval"
                );
                self.interval = interval;
            }
        }
        let now = Utc::now();
        let interval = self.interval.as_secs();
        self.update(|s| {
            s.last_success_at = Some(now);
            s.last_error = None;
            s.consecutive_failures = 0;
            s.batches_acknowledged += 1;
            s.heartbeats_accepted += u64::from(accepted);
            s.heartbeats_duplicate += u64::from(duplicates);
            s.interval_seconds = interval;
            if let Some(a) = &answer {
                s.clock_offset_ms = Some((now - a.server_time).num_milliseconds());
            }
        });
        tracing::debug!(first, last, accepted, duplicates, "heartbeats acknowledged");
        Attempt::Acked {
            heartbeats: count,
            accepted,
            duplicates,
        }
    }

    fn failed(&self, error: String) {
        self.update(|s| {
            s.last_error = Some(error);
            s.consecutive_failures += 1;
        });
    }

    /// Records a heartbeat every interval (or early, when `early` is notified) and sends the
    /// spool, until `shutdown`.
    pub async fn run(mut self, early: Arc<Notify>, shutdown: CancellationToken) {
        let mut next_record = Instant::now();
        let mut last_record: Option<Instant> = None;
        let mut retry_at = Instant::now();
        loop {
            let pending = self.status.lock().map(|s| s.spool.pending).unwrap_or(1) > 0;
            let wake = if pending {
                next_record.min(retry_at)
            } else {
                next_record
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = early.notified() => {
                    // As soon as the gap since the last heartbeat allows.
                    let soonest = last_record.map_or_else(Instant::now, |t| t + self.min_gap);
                    next_record = next_record.min(soonest);
                    continue;
                }
                () = tokio::time::sleep_until(wake) => {}
            }
            let now = Instant::now();
            if now >= next_record {
                if let Err(e) = self.record().await {
                    tracing::error!(error = %format!("{e:#}"), "cannot spool a heartbeat; it is lost");
                }
                last_record = Some(now);
                next_record = now + self.interval;
                // A fresh heartbeat goes out at once, unless a failure set a later retry.
                if self.backoff.failures() == 0 {
                    retry_at = retry_at.min(now);
                }
            }
            if Instant::now() >= retry_at {
                retry_at = self.drain(&shutdown).await;
            }
        }
    }

    /// Sends batches until the spool is empty or an attempt fails; returns when to try next.
    async fn drain(&mut self, shutdown: &CancellationToken) -> Instant {
        loop {
            let attempt = tokio::select! {
                () = shutdown.cancelled() => return Instant::now(),
                attempt = self.send_once() => attempt,
            };
            match attempt {
                Attempt::Idle => return Instant::now(),
                Attempt::Acked { .. } | Attempt::Split | Attempt::Rejected => {}
                Attempt::Wait(wait) => return Instant::now() + wait,
            }
        }
    }
}

/// The `detail` of a problem+json answer (or a short piece of the body), for logs.
pub(crate) async fn problem_detail(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            let detail = v.get("detail").and_then(|d| d.as_str()).map(str::to_owned);
            let pointers: Vec<String> = v
                .get("errors")
                .and_then(|e| e.as_array())
                .map(|errors| {
                    errors
                        .iter()
                        .filter_map(|e| {
                            Some(format!(
                                "{}: {}",
                                e.get("pointer")?.as_str()?,
                                e.get("message")?.as_str()?
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            match (detail, pointers.is_empty()) {
                (Some(d), true) => Some(d),
                (Some(d), false) => Some(format!("{d}: {}", pointers.join("; "))),
                (None, false) => Some(pointers.join("; ")),
                (None, true) => None,
            }
        });
    detail.unwrap_or_else(|| text.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Read;

    #[test]
    fn answers_map_to_what_the_protocol_says_to_do() {
        let after = Some(Duration::from_secs(7));
        let cases = [
            (200, None, 3, Verdict::Ack, "committed"),
            (202, None, 1, Verdict::Ack, "any 2xx"),
            (413, None, 10, Verdict::Split, "too big: split"),
            (413, None, 1, Verdict::Reject, "too big alone: drop"),
            (
                422,
                None,
                10,
                Verdict::Split,
                "invalid: isolate the bad one",
            ),
            (422, None, 1, Verdict::Reject, "invalid alone: drop"),
            (
                429,
                after,
                3,
                Verdict::Retry {
                    at_least: after,
                    slow: false,
                },
                "shedding load",
            ),
            (
                503,
                after,
                3,
                Verdict::Retry {
                    at_least: after,
                    slow: false,
                },
                "database down",
            ),
            (
                500,
                None,
                3,
                Verdict::Retry {
                    at_least: None,
                    slow: false,
                },
                "server error",
            ),
            (
                401,
                None,
                3,
                Verdict::Retry {
                    at_least: None,
                    slow: true,
                },
                "bad token",
            ),
            (
                403,
                None,
                3,
                Verdict::Retry {
                    at_least: None,
                    slow: true,
                },
                "suspended",
            ),
            (
                400,
                None,
                3,
                Verdict::Retry {
                    at_least: None,
                    slow: true,
                },
                "version mismatch",
            ),
        ];
        for (status, retry_after, len, verdict, what) in cases {
            assert_eq!(classify(status, retry_after, len), verdict, "{what}");
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_bounded() {
        assert_eq!(parse_retry_after(Some("5")), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_retry_after(Some(" 30 ")),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after(Some("999999")), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2026 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }

    fn batch(cameras: usize) -> HeartbeatBatch {
        HeartbeatBatch {
            agent: AgentInfo {
                instance_id: uuid::Uuid::nil(),
                version: "0.1.0".to_owned(),
                hostname: "box".to_owned(),
                sent_at: None,
            },
            heartbeats: vec![Heartbeat {
                seq: 1,
                observed_at: Utc::now(),
                cameras: (0..cameras)
                    .map(|i| {
                        (
                            format!("camera-{i}"),
                            streamwatch_protocol::CameraReport::default(),
                        )
                    })
                    .collect::<BTreeMap<_, _>>(),
            }],
        }
    }

    #[test]
    fn small_bodies_go_plain_and_big_ones_gzipped() {
        let (body, gzipped) = encode_body(&batch(1)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!gzipped);
        assert!(serde_json::from_slice::<HeartbeatBatch>(&body).is_ok());

        let big = batch(20);
        let (body, gzipped) = encode_body(&big).unwrap_or_else(|e| panic!("{e}"));
        assert!(gzipped);
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut json)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(json.len() > GZIP_ABOVE);
        assert_eq!(
            serde_json::from_slice::<HeartbeatBatch>(&json).ok(),
            Some(big)
        );
    }
}
