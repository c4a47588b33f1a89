//! Webhooks: signed JSON POSTs on camera transitions, with failed deliveries cached on disk and
//! retried (SPEC section 7).
//!
//! # Events
//!
//! The agent checks every camera once a second and derives its [`Condition`] (the SPEC
//! section 4 camera states, as the agent sees them). A change of condition is an event:
//!
//! | new condition | event |
//! |---|---|
//! | offline (stopped, offline or error) | `camera.offline` |
//! | active | `camera.online` |
//! | starving | `camera.starving` |
//! | degraded | `camera.degraded` |
//!
//! `starting` sends nothing: it is the reconnect after an `offline`, and the next condition
//! tells how that went. So a camera that fails, retries and fails again sends one
//! `camera.offline`, and every camera sends one event once it settles after the agent starts.
//!
//! # Delivery
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! X-Streamwatch-Event: camera.offline
//! X-Streamwatch-Delivery: <event id>
//! X-Streamwatch-Timestamp: <unix seconds of this attempt>
//! X-Streamwatch-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with the webhook's secret>
//!
//! {"id": "...", "event": "camera.offline", "camera_id": "camera-2", "at": "...", ...}
//! ```
//!
//! Any 2xx is a delivery. Otherwise (or without an answer) the event goes to the webhook's
//! cache, `<state_dir>/webhooks/<hash of the URL>/`, one file per event, written atomically, and
//! is retried oldest first with exponential backoff (1 s doubling to 5 min). While a webhook has
//! cached events, new ones queue behind them, so a receiver sees each camera's events in order.
//! A receiver de-duplicates on `id` (an event is sent again if the agent stops between a
//! delivery and deleting its cache file).
//!
//! In heartbeats each camera reports `webhooks`: `none` without any webhook, `failing` while
//! events of that camera wait in a cache (`cached` says how many), else `ok`; `last_error` is
//! the latest failed delivery of one of its events.

use crate::backoff::Backoff;
use crate::config::Webhook;
use crate::health::Condition;
use crate::http_error_chain;
use crate::state::{sync_dir, write_atomically};
use anyhow::Context;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::{
    collections::{HashMap, VecDeque},
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};
use streamwatch_protocol::{CameraStatus, WebhookReport, WebhookStatus, redact_url_origin};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Header with the HMAC-SHA256 signature of the body.
pub const SIGNATURE_HEADER: &str = "X-Streamwatch-Signature";
/// Header with the Unix time of the delivery attempt.
pub const TIMESTAMP_HEADER: &str = "X-Streamwatch-Timestamp";
/// Header with the event name.
pub const EVENT_HEADER: &str = "X-Streamwatch-Event";
/// Header with the event id (the same on every retry).
pub const DELIVERY_HEADER: &str = "X-Streamwatch-Delivery";

/// Time limit of one delivery.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between retries.
pub const RETRY_MAX: Duration = Duration::from_secs(300);
/// At most this many events are cached per webhook; beyond, the oldest are dropped.
pub const MAX_CACHED: usize = 10_000;

/// The events a webhook can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    CameraOffline,
    CameraOnline,
    CameraStarving,
    CameraDegraded,
}

impl EventKind {
    /// Every event, in documentation order.
    pub const ALL: [EventKind; 4] = [
        Self::CameraOffline,
        Self::CameraOnline,
        Self::CameraStarving,
        Self::CameraDegraded,
    ];

    /// The wire name, e.g. `camera.offline`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CameraOffline => "camera.offline",
            Self::CameraOnline => "camera.online",
            Self::CameraStarving => "camera.starving",
            Self::CameraDegraded => "camera.degraded",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// The event of entering `condition`; `None` for `starting`.
    pub fn entering(condition: Condition) -> Option<Self> {
        match condition {
            Condition::Starting => None,
            Condition::Active => Some(Self::CameraOnline),
            Condition::Degraded => Some(Self::CameraDegraded),
            Condition::Starving => Some(Self::CameraStarving),
            Condition::Offline => Some(Self::CameraOffline),
        }
    }
}

/// Remembers the last announced condition of every camera and says when to announce a new one.
#[derive(Debug, Default)]
pub struct Transitions {
    announced: HashMap<String, Condition>,
}

impl Transitions {
    /// The event (and the previous condition) if `condition` is news for `camera_id`.
    pub fn observe(
        &mut self,
        camera_id: &str,
        condition: Condition,
    ) -> Option<(EventKind, Option<Condition>)> {
        let event = EventKind::entering(condition)?;
        let previous = self.announced.get(camera_id).copied();
        if previous == Some(condition) {
            return None;
        }
        self.announced.insert(camera_id.to_owned(), condition);
        Some((event, previous))
    }
}

/// Who sends the events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventAgent {
    pub instance_id: Uuid,
    pub hostname: String,
    pub version: String,
}

/// The JSON body of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPayload {
    /// Unique per event, the same on every retry: receivers de-duplicate on it.
    pub id: Uuid,
    /// `camera.offline`, `camera.online`, `camera.starving` or `camera.degraded`.
    pub event: String,
    pub camera_id: String,
    /// When the agent saw the change.
    pub at: DateTime<Utc>,
    /// The new condition: `active`, `degraded`, `starving` or `offline`.
    pub condition: String,
    /// The previously announced condition; `null` for the first event after the agent started.
    pub previous: Option<String>,
    /// The camera's status, health and feed at that moment.
    pub status: CameraStatus,
    pub health: i32,
    pub is_live: bool,
    pub last_frame_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The camera URL without credentials.
    pub url: String,
    pub agent: EventAgent,
}

/// An event ready to deliver: its camera, name and exact body (the bytes that are signed).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Uuid,
    pub kind: EventKind,
    pub camera_id: String,
    pub body: Vec<u8>,
}

impl Event {
    pub fn new(kind: EventKind, payload: &EventPayload) -> anyhow::Result<Self> {
        Ok(Self {
            id: payload.id,
            kind,
            camera_id: payload.camera_id.clone(),
            body: serde_json::to_vec(payload).context("cannot encode a webhook event")?,
        })
    }
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, the value of [`SIGNATURE_HEADER`].
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a [`SIGNATURE_HEADER`] value in constant time, as a receiver would.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(given) = header
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// Per camera: how its webhook deliveries go, for the `webhooks` field of heartbeats.
#[derive(Debug)]
pub struct WebhookBoard {
    configured: bool,
    inner: Mutex<BoardInner>,
}

#[derive(Debug, Default)]
struct BoardInner {
    /// (webhook index, camera id) → cached events.
    cached: HashMap<(usize, String), i64>,
    /// camera id → the latest failed delivery's error, cleared by a success.
    last_error: HashMap<String, String>,
}

impl WebhookBoard {
    /// `configured`: whether any webhook exists (else every camera reports `none`).
    pub fn new(configured: bool) -> Self {
        Self {
            configured,
            inner: Mutex::default(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut BoardInner) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner)
    }

    /// The `webhooks` field of `camera_id`'s report.
    pub fn report(&self, camera_id: &str) -> WebhookReport {
        if !self.configured {
            return WebhookReport::default();
        }
        self.with(|i| {
            let cached: i64 = i
                .cached
                .iter()
                .filter(|((_, c), _)| c == camera_id)
                .map(|(_, n)| *n)
                .sum();
            WebhookReport {
                status: if cached > 0 {
                    WebhookStatus::Failing
                } else {
                    WebhookStatus::Ok
                },
                cached,
                last_error: i.last_error.get(camera_id).cloned(),
            }
        })
    }

    fn set_cached(&self, webhook: usize, counts: &HashMap<String, i64>) {
        self.with(|i| {
            i.cached.retain(|(w, _), _| *w != webhook);
            for (camera, n) in counts {
                i.cached.insert((webhook, camera.clone()), *n);
            }
        });
    }

    fn delivered(&self, camera_id: &str) {
        self.with(|i| i.last_error.remove(camera_id));
    }

    fn failed(&self, camera_id: &str, error: &str) {
        self.with(|i| i.last_error.insert(camera_id.to_owned(), error.to_owned()));
    }
}

/// One webhook's cache of failed deliveries on disk (one file per event, oldest first).
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    /// (file, camera id), oldest first.
    queue: VecDeque<(PathBuf, String)>,
    counter: u64,
}

impl Outbox {
    /// The cache directory of the webhook with `url` below `root`: named by a hash of the URL,
    /// so that reordering the configuration keeps each cache with its webhook.
    pub fn dir_for(root: &Path, url: &url::Url) -> PathBuf {
        let digest = Sha256::digest(url.as_str().as_bytes());
        root.join(hex::encode(&digest[..8]))
    }

    /// Opens (and reloads) a cache directory.
    pub fn open(dir: PathBuf) -> anyhow::Result<Self> {
        fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the webhook cache {}", dir.display()))?;
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = entry?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
            } else if name.ends_with(".json") {
                files.push(path);
            }
        }
        files.sort();
        let mut queue = VecDeque::new();
        for path in files {
            let camera = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<EventPayload>(&b).ok())
                .map(|p| p.camera_id);
            match camera {
                Some(camera) => queue.push_back((path, camera)),
                None => {
                    tracing::warn!(file = %path.display(), "removing an unreadable cached webhook event");
                    let _ = fs::remove_file(&path);
                }
            }
        }
        Ok(Self {
            dir,
            queue,
            counter: 0,
        })
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Cached events per camera.
    pub fn counts(&self) -> HashMap<String, i64> {
        let mut counts = HashMap::new();
        for (_, camera) in &self.queue {
            *counts.entry(camera.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Caches `event` durably, behind the ones already cached.
    pub fn push(&mut self, event: &Event) -> anyhow::Result<()> {
        self.counter += 1;
        let name = format!(
            "{:013}-{:08}-{}.json",
            Utc::now().timestamp_millis().max(0),
            self.counter,
            event.id
        );
        write_atomically(&self.dir, &name, &event.body)?;
        self.queue
            .push_back((self.dir.join(name), event.camera_id.clone()));
        while self.queue.len() > MAX_CACHED {
            if let Some((path, camera)) = self.queue.pop_front() {
                tracing::warn!(camera = %camera, "the webhook cache is full: dropping its oldest event");
                let _ = fs::remove_file(path);
            }
        }
        Ok(())
    }

    /// The oldest cached event.
    pub fn front(&self) -> anyhow::Result<Option<Event>> {
        let Some((path, _)) = self.queue.front() else {
            return Ok(None);
        };
        let body = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let payload: EventPayload = serde_json::from_slice(&body)
            .with_context(|| format!("{} is not a webhook event", path.display()))?;
        let kind = EventKind::parse(&payload.event).unwrap_or(EventKind::CameraOffline);
        Ok(Some(Event {
            id: payload.id,
            kind,
            camera_id: payload.camera_id,
            body,
        }))
    }

    /// Removes the oldest cached event (delivered, or unreadable).
    pub fn pop_front(&mut self) -> anyhow::Result<()> {
        if let Some((path, _)) = self.queue.pop_front() {
            match fs::remove_file(&path) {
                Ok(()) => sync_dir(&self.dir)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot delete {}", path.display()));
                }
            }
        }
        Ok(())
    }
}

/// Sends events to every webhook that wants them.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    webhooks: Vec<(Webhook, mpsc::Sender<Event>)>,
}

impl Dispatcher {
    /// Hands `event` to every webhook that wants it (never waits).
    pub fn dispatch(&self, event: &Event) {
        for (webhook, queue) in &self.webhooks {
            if webhook.wants(event.kind) && queue.try_send(event.clone()).is_err() {
                tracing::warn!(event = event.kind.as_str(), camera = %event.camera_id, "a webhook's queue is full: event dropped");
            }
        }
    }
}

/// Starts one delivery task per webhook; they stop at `shutdown`. `root` is
/// `<state_dir>/webhooks`.
pub fn start(
    webhooks: &[Webhook],
    root: &Path,
    board: &Arc<WebhookBoard>,
    shutdown: &CancellationToken,
) -> anyhow::Result<(Dispatcher, Vec<tokio::task::JoinHandle<()>>)> {
    let client = reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .user_agent(concat!("streamwatch-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot start the webhook HTTP client")?;
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for (index, webhook) in webhooks.iter().enumerate() {
        let outbox = Outbox::open(Outbox::dir_for(root, &webhook.url))?;
        if !outbox.is_empty() {
            tracing::info!(webhook = %redact_url_origin(webhook.url.as_str()), cached = outbox.len(), "webhook events from an earlier run are cached; retrying them");
        }
        board.set_cached(index, &outbox.counts());
        let (tx, rx) = mpsc::channel(1024);
        senders.push((webhook.clone(), tx));
        let worker = Worker {
            index,
            webhook: webhook.clone(),
            outbox,
            board: board.clone(),
            client: client.clone(),
            backoff: Backoff::new(Duration::from_secs(1), RETRY_MAX),
            retry_at: tokio::time::Instant::now(),
        };
        tasks.push(tokio::spawn(worker.run(rx, shutdown.clone())));
    }
    Ok((Dispatcher { webhooks: senders }, tasks))
}

/// Delivers one webhook's events.
struct Worker {
    index: usize,
    webhook: Webhook,
    outbox: Outbox,
    board: Arc<WebhookBoard>,
    client: reqwest::Client,
    backoff: Backoff,
    /// When to retry the oldest cached event.
    retry_at: tokio::time::Instant,
}

impl Worker {
    async fn run(mut self, mut events: mpsc::Receiver<Event>, shutdown: CancellationToken) {
        loop {
            if !self.outbox.is_empty()
                && tokio::time::Instant::now() >= self.retry_at
                && self.retry_oldest(&shutdown).await
            {
                // Delivered: go on with the next cached one at once.
                continue;
            }
            let waiting = !self.outbox.is_empty();
            let retry_at = self.retry_at;
            tokio::select! {
                () = shutdown.cancelled() => return,
                event = events.recv() => match event {
                    Some(event) => self.accept(event, &shutdown).await,
                    None => return,
                },
                () = tokio::time::sleep_until(retry_at), if waiting => {}
            }
        }
    }

    /// A new event: deliver it now, or queue it behind the cached ones.
    async fn accept(&mut self, event: Event, shutdown: &CancellationToken) {
        if self.outbox.is_empty() {
            let result = tokio::select! {
                () = shutdown.cancelled() => Err("the agent stopped".to_owned()),
                r = self.deliver(&event) => r,
            };
            match result {
                Ok(()) => {
                    self.backoff.reset();
                    self.board.delivered(&event.camera_id);
                    return;
                }
                Err(error) => {
                    self.note_failure(&event, &error);
                    self.retry_at = tokio::time::Instant::now() + self.backoff.fail();
                }
            }
        }
        if let Err(e) = self.outbox.push(&event) {
            tracing::error!(error = %format!("{e:#}"), "cannot cache a webhook event; it is lost");
        }
        self.board.set_cached(self.index, &self.outbox.counts());
    }

    /// Tries the oldest cached event once; `true` when it is gone (delivered or unreadable),
    /// `false` when it failed and waits for `retry_at`.
    async fn retry_oldest(&mut self, shutdown: &CancellationToken) -> bool {
        let event = match self.outbox.front() {
            Ok(Some(event)) => event,
            Ok(None) => return true,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "skipping an unreadable cached webhook event");
                let _ = self.outbox.pop_front();
                self.board.set_cached(self.index, &self.outbox.counts());
                return true;
            }
        };
        let result = tokio::select! {
            () = shutdown.cancelled() => return false,
            r = self.deliver(&event) => r,
        };
        match result {
            Ok(()) => {
                self.backoff.reset();
                if let Err(e) = self.outbox.pop_front() {
                    tracing::warn!(error = %format!("{e:#}"), "cannot delete a delivered webhook event; it may be sent again");
                }
                self.board.set_cached(self.index, &self.outbox.counts());
                self.board.delivered(&event.camera_id);
                true
            }
            Err(error) => {
                self.note_failure(&event, &error);
                self.retry_at = tokio::time::Instant::now() + self.backoff.fail();
                false
            }
        }
    }

    fn note_failure(&mut self, event: &Event, error: &str) {
        tracing::warn!(webhook = %redact_url_origin(self.webhook.url.as_str()), event = event.kind.as_str(), camera = %event.camera_id, error, "webhook delivery failed; the event is cached and retried");
        self.board.failed(&event.camera_id, error);
    }

    /// One signed POST. `Err` is a short sentence for operators.
    async fn deliver(&self, event: &Event) -> Result<(), String> {
        let response = self
            .client
            .post(self.webhook.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, event.kind.as_str())
            .header(DELIVERY_HEADER, event.id.to_string())
            .header(TIMESTAMP_HEADER, Utc::now().timestamp().to_string())
            .header(
                SIGNATURE_HEADER,
                sign(self.webhook.secret.expose().as_bytes(), &event.body),
            )
            .body(event.body.clone())
            .send()
            .await
            .map_err(|e| format!("{}: {}", self.shown_url(), http_error_chain(e)))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{} answered {status}", self.shown_url()))
        }
    }

    /// The webhook as `last_error` and logs show it: its origin only, because the path of a
    /// Slack-, Teams- or ntfy-style URL is itself the secret.
    fn shown_url(&self) -> String {
        redact_url_origin(self.webhook.url.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_dir;

    fn payload(camera: &str, event: EventKind) -> EventPayload {
        EventPayload {
            id: Uuid::new_v4(),
            event: event.as_str().to_owned(),
            camera_id: camera.to_owned(),
            at: Utc::now(),
            condition: "offline".to_owned(),
            previous: Some("active".to_owned()),
            status: CameraStatus::Offline,
            health: 0,
            is_live: false,
            last_frame_at: None,
            last_error: Some("connection refused".to_owned()),
            url: "rtsp://10.0.0.5/s".to_owned(),
            agent: EventAgent {
                instance_id: Uuid::nil(),
                hostname: "box".to_owned(),
                version: "0.1.0".to_owned(),
            },
        }
    }

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_receiver_accepts_the_right_signature_and_nothing_else() {
        let body = br#"{"event":"camera.offline"}"#;
        let header = sign(b"secret", body);
        assert!(verify(b"secret", body, &header));
        assert!(!verify(b"other", body, &header), "wrong secret");
        assert!(
            !verify(b"secret", br#"{"event":"camera.online"}"#, &header),
            "changed body"
        );
        assert!(
            !verify(b"secret", body, header.trim_start_matches("sha256=")),
            "no prefix"
        );
        assert!(!verify(b"secret", body, "sha256=zz"), "not hex");
    }

    #[test]
    fn events_fire_on_changes_of_condition_but_not_for_starting() {
        let mut t = Transitions::default();
        assert_eq!(t.observe("c", Condition::Starting), None);
        assert_eq!(
            t.observe("c", Condition::Active),
            Some((EventKind::CameraOnline, None))
        );
        assert_eq!(t.observe("c", Condition::Active), None);
        assert_eq!(
            t.observe("c", Condition::Offline),
            Some((EventKind::CameraOffline, Some(Condition::Active)))
        );
        // Reconnecting and failing again is one outage, not two.
        assert_eq!(t.observe("c", Condition::Starting), None);
        assert_eq!(t.observe("c", Condition::Offline), None);
        assert_eq!(
            t.observe("c", Condition::Starving),
            Some((EventKind::CameraStarving, Some(Condition::Offline)))
        );
        assert_eq!(
            t.observe("c", Condition::Degraded),
            Some((EventKind::CameraDegraded, Some(Condition::Starving)))
        );
        assert_eq!(
            t.observe("other", Condition::Offline),
            Some((EventKind::CameraOffline, None))
        );
    }

    #[test]
    fn event_names_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("camera.exploded"), None);
    }

    #[test]
    fn cached_events_survive_a_restart_in_order() {
        let dir = temp_dir("webhook-outbox");
        let mut outbox = Outbox::open(dir.clone()).unwrap_or_else(|e| panic!("{e:#}"));
        let events: Vec<Event> = [
            ("a", EventKind::CameraOffline),
            ("b", EventKind::CameraOffline),
            ("a", EventKind::CameraOnline),
        ]
        .iter()
        .map(|(c, k)| Event::new(*k, &payload(c, *k)).unwrap_or_else(|e| panic!("{e}")))
        .collect();
        for e in &events {
            outbox.push(e).unwrap_or_else(|e| panic!("{e:#}"));
        }
        drop(outbox);
        let mut outbox = Outbox::open(dir.clone()).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            outbox.counts(),
            HashMap::from([("a".to_owned(), 2), ("b".to_owned(), 1)])
        );
        for expected in &events {
            let front = outbox.front().unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(front.as_ref(), Some(expected));
            outbox.pop_front().unwrap_or_else(|e| panic!("{e:#}"));
        }
        assert!(outbox.is_empty());
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn the_board_reports_failing_per_camera_while_its_events_are_cached() {
        let board = WebhookBoard::new(true);
        assert_eq!(board.report("a").status, WebhookStatus::Ok);
        board.failed("a", "the receiver answered 500 Internal Server Error");
        board.set_cached(0, &HashMap::from([("a".to_owned(), 2)]));
        board.set_cached(1, &HashMap::from([("a".to_owned(), 1)]));
        let a = board.report("a");
        assert_eq!((a.status, a.cached), (WebhookStatus::Failing, 3));
        assert_eq!(
            a.last_error.as_deref(),
            Some("the receiver answered 500 Internal Server Error")
        );
        assert_eq!(board.report("b").status, WebhookStatus::Ok);
        board.set_cached(0, &HashMap::new());
        board.set_cached(1, &HashMap::new());
        board.delivered("a");
        assert_eq!(
            board.report("a"),
            WebhookReport {
                status: WebhookStatus::Ok,
                cached: 0,
                last_error: None
            }
        );
        assert_eq!(
            WebhookBoard::new(false).report("a").status,
            WebhookStatus::None
        );
    }
}
