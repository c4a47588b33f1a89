//! Snapshot upload (SPEC section 7, `docs/PROTOCOL.md` section 8a): every
//! [`CHECK_INTERVAL`] the uploader looks at each camera's latest snapshot and `PUT`s it to
//! `/api/v1/ingest/snapshots/{camera_id}` when its bytes or its picture state changed since the
//! last upload the server stored, at most once per [`MIN_UPLOAD_GAP`] per camera.
//!
//! | answer | what happens |
//! |---|---|
//! | 2xx | stored: the spooled copy (if any) is removed; the next upload of this camera waits a minute |
//! | 429, 503, other 5xx, 408, no answer | the newest snapshot goes to the spool, retried with backoff (honouring `Retry-After`) |
//! | 404 | the camera is not known to the server yet (its first heartbeat is on the way): kept, retried with backoff |
//! | 401, 403 | bad token, suspended tenant: kept, retried slowly (at least a minute) |
//! | other 4xx, 507 | refused for good: logged and dropped; the next changed snapshot tries again |
//!
//! The spool keeps only the newest snapshot per camera, as `state_dir/snapshot-spool/<id>.jpg`
//! and `<id>.json` (its picture state, when it was taken and its SHA-256), each written
//! atomically. A restarted agent sends what it finds there, unless the camera has a newer
//! snapshot by then. A crash between the two writes leaves a JPEG whose SHA-256 does not match
//! the metadata: it is sent without the optional headers rather than with wrong ones.
//!
//! Snapshots are only taken every `snapshot_interval_seconds`, and a picture is small (at
//! most [`MAX_SNAPSHOT_BYTES`]), so one task uploads for every camera, one request at a time.

use crate::backoff::{Backoff, jitter};
use crate::cameras::Cameras;
use crate::config::Central;
use crate::http_error_chain;
use crate::push::{SLOW_RETRY, parse_retry_after, problem_detail};
use crate::snapshots::CameraPicture;
use crate::state::write_atomically;
use anyhow::Context;
use axum::body::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use streamwatch_protocol::is_valid_camera_id;
use streamwatch_protocol::picture::{
    MAX_SNAPSHOT_BYTES, PICTURE_STATE_HEADER, PictureState, TAKEN_AT_HEADER,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the uploader looks at the cameras' latest snapshots.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// The shortest time between two stored uploads of one camera (SPEC section 7).
pub const MIN_UPLOAD_GAP: Duration = Duration::from_secs(60);
/// The folder under `state_dir` that holds snapshots waiting for the server.
pub const SPOOL_DIR: &str = "snapshot-spool";

/// One snapshot as it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub jpeg: Bytes,
    /// The picture state seen in this picture (`Streamwatch-Picture-State`), when known.
    pub state: Option<PictureState>,
    /// When the picture was taken (`Streamwatch-Taken-At`), when known.
    pub taken_at: Option<DateTime<Utc>>,
    /// Hex SHA-256 of `jpeg`.
    pub sha256: String,
}

/// What makes two snapshots "the same" for uploading: the bytes and the picture state.
pub type UploadKey = (String, Option<PictureState>);

impl Upload {
    pub fn new(jpeg: Bytes, state: Option<PictureState>, taken_at: Option<DateTime<Utc>>) -> Self {
        let sha256 = hex::encode(Sha256::digest(&jpeg));
        Self {
            jpeg,
            state,
            taken_at,
            sha256,
        }
    }

    pub fn key(&self) -> UploadKey {
        (self.sha256.clone(), self.state)
    }
}

/// What to do with the server's answer to an upload (see the table in the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Stored.
    Stored,
    /// Refused for good: drop this snapshot.
    Drop,
    /// The camera is not known to the server yet: keep it, retry with backoff.
    NotYet,
    /// Needs an operator (bad token, suspended tenant): keep it, retry slowly.
    Slow,
    /// The server is away or overloaded: spool it, retry with backoff.
    Away,
}

/// The verdict on an HTTP status of an upload.
pub fn classify(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Stored,
        404 => Verdict::NotYet,
        401 | 403 => Verdict::Slow,
        408 | 429 => Verdict::Away,
        // 507: over the tenant's quota; this one is dropped, the next changed one tries again.
        507 => Verdict::Drop,
        500..=599 => Verdict::Away,
        _ => Verdict::Drop,
    }
}

/// What [`Schedule::offer`] did with a camera's latest snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// Nothing new: the same bytes and state as what is pending or already stored.
    Unchanged,
    /// It is the new pending snapshot (replacing an older pending one, if any).
    Pending,
    /// The server already has it: an older pending snapshot was dropped in its favour.
    AlreadyStored,
}

/// One camera's upload bookkeeping, without I/O (unit-tested; the uploader drives it).
#[derive(Debug, Default)]
pub struct Schedule {
    /// What the server stored last (or what it refused for good): never sent again.
    done: Option<UploadKey>,
    /// The newest snapshot not yet stored.
    pending: Option<Upload>,
    /// When the server last stored an upload of this camera.
    last_stored_at: Option<Instant>,
    /// No attempt before this (backoff, `Retry-After`).
    not_before: Option<Instant>,
}

impl Schedule {
    /// Offers the camera's latest snapshot: only the newest one is ever kept.
    pub fn offer(&mut self, upload: Upload) -> Offered {
        let key = upload.key();
        if self.done.as_ref() == Some(&key) {
            return if self.pending.take().is_some() {
                Offered::AlreadyStored
            } else {
                Offered::Unchanged
            };
        }
        if self.pending.as_ref().is_some_and(|p| p.key() == key) {
            return Offered::Unchanged;
        }
        self.pending = Some(upload);
        Offered::Pending
    }

    /// The snapshot waiting to be sent.
    pub fn pending(&self) -> Option<&Upload> {
        self.pending.as_ref()
    }

    /// Whether the pending snapshot may be sent at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.pending.is_some()
            && self.not_before.is_none_or(|t| now >= t)
            && self
                .last_stored_at
                .is_none_or(|t| now >= t + MIN_UPLOAD_GAP)
    }

    /// The server stored the pending snapshot at `now`.
    pub fn stored(&mut self, now: Instant) {
        self.done = self.pending.take().map(|p| p.key());
        self.last_stored_at = Some(now);
        self.not_before = None;
    }

    /// The server refused the pending snapshot for good.
    pub fn dropped(&mut self) {
        self.done = self.pending.take().map(|p| p.key());
        self.not_before = None;
    }

    /// Try again no sooner than `at`.
    pub fn retry_at(&mut self, at: Instant) {
        self.not_before = Some(at);
    }
}

/// The metadata next to a spooled JPEG.
#[derive(Debug, Serialize, Deserialize)]
struct SpoolMeta {
    sha256: String,
    picture_state: Option<PictureState>,
    taken_at: Option<DateTime<Utc>>,
}

/// `state_dir/snapshot-spool`: the newest unsent snapshot of each camera.
#[derive(Debug, Clone)]
pub struct SnapshotSpool {
    dir: PathBuf,
}

impl SnapshotSpool {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn jpeg_name(camera_id: &str) -> String {
        format!("{camera_id}.jpg")
    }

    fn meta_name(camera_id: &str) -> String {
        format!("{camera_id}.json")
    }

    /// Keeps `upload` as the camera's spooled snapshot, replacing any older one.
    pub fn put(&self, camera_id: &str, upload: &Upload) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let meta = serde_json::to_vec(&SpoolMeta {
            sha256: upload.sha256.clone(),
            picture_state: upload.state,
            taken_at: upload.taken_at,
        })?;
        write_atomically(&self.dir, &Self::jpeg_name(camera_id), &upload.jpeg)?;
        write_atomically(&self.dir, &Self::meta_name(camera_id), &meta)
    }

    /// Forgets the camera's spooled snapshot (nothing to do when there is none).
    pub fn remove(&self, camera_id: &str) -> anyhow::Result<()> {
        for name in [Self::jpeg_name(camera_id), Self::meta_name(camera_id)] {
            let path = self.dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()));
                }
            }
        }
        Ok(())
    }

    /// The spooled snapshots, by camera id. A JPEG whose metadata is missing, unreadable or
    /// of other bytes comes without picture state and time; files that are not a camera's
    /// snapshot are left alone.
    pub fn load(&self) -> anyhow::Result<Vec<(String, Upload)>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.dir.display()));
            }
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(camera_id) = name.to_str().and_then(|n| n.strip_suffix(".jpg")) else {
                continue;
            };
            if !is_valid_camera_id(camera_id) {
                continue;
            }
            let jpeg = match std::fs::read(entry.path()) {
                Ok(bytes) => Bytes::from(bytes),
                Err(e) => {
                    tracing::warn!(camera = camera_id, error = %e, "cannot read a spooled snapshot; skipping it");
                    continue;
                }
            };
            let mut upload = Upload::new(jpeg, None, None);
            let meta = std::fs::read(self.dir.join(Self::meta_name(camera_id)))
                .ok()
                .and_then(|m| serde_json::from_slice::<SpoolMeta>(&m).ok());
            match meta {
                Some(meta) if meta.sha256 == upload.sha256 => {
                    upload.state = meta.picture_state;
                    upload.taken_at = meta.taken_at;
                }
                _ => tracing::warn!(
                    camera = camera_id,
                    "a spooled snapshot has no matching metadata; it is sent without picture state and time"
                ),
            }
            found.push((camera_id.to_owned(), upload));
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }
}

/// Whether a snapshot of `len` bytes may be uploaded at all.
pub fn fits(len: usize) -> bool {
    len <= MAX_SNAPSHOT_BYTES
}

/// One camera, as the uploader sees it.
struct CameraUploads {
    id: String,
    picture: Arc<CameraPicture>,
    schedule: Schedule,
    backoff: Backoff,
    /// Whether the pending snapshot is in the spool.
    spooled: bool,
    /// `taken_at` of the last snapshot offered to the schedule.
    last_seen: Option<DateTime<Utc>>,
    /// The last snapshot found too big (logged once).
    too_big: Option<String>,
}

/// What one upload request came back with.
enum Answer {
    Status {
        status: u16,
        retry_after: Option<Duration>,
        detail: String,
    },
    NoAnswer(String),
}

/// Uploads the cameras' snapshots (see the module docs).
pub struct Uploader {
    client: reqwest::Client,
    central: Central,
    spool: SnapshotSpool,
    cameras: Vec<CameraUploads>,
}

impl Uploader {
    /// An uploader for every camera that takes snapshots, spooling under `state_dir`.
    pub fn new(central: Central, state_dir: &Path, cameras: &Cameras) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(central.timeout)
            .connect_timeout(central.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("streamwatch-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot start the HTTP client")?;
        let cameras = cameras
            .entries
            .iter()
            .filter(|e| e.takes_snapshots())
            .map(|e| CameraUploads {
                id: e.config.id.clone(),
                picture: e.picture.clone(),
                schedule: Schedule::default(),
                backoff: Backoff::new(Duration::from_secs(1), central.retry_max),
                spooled: false,
                last_seen: None,
                too_big: None,
            })
            .collect();
        Ok(Self {
            client,
            spool: SnapshotSpool::new(state_dir.join(SPOOL_DIR)),
            central,
            cameras,
        })
    }

    /// Takes up what an earlier run left in the spool.
    pub async fn restore(&mut self) {
        let spool = self.spool.clone();
        let found = match tokio::task::spawn_blocking(move || spool.load()).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                tracing::error!(error = %format!("{e:#}"), "cannot read the snapshot spool");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the snapshot spool panicked");
                return;
            }
        };
        for (id, upload) in found {
            match self.cameras.iter_mut().find(|c| c.id == id) {
                Some(camera) => {
                    tracing::info!(camera = %id, "a snapshot from an earlier run is waiting in the spool");
                    camera.schedule.offer(upload);
                    camera.spooled = true;
                }
                None => {
                    tracing::info!(camera = %id, "dropping the spooled snapshot of a camera that is no longer configured");
                    self.blocking_spool(move |s| s.remove(&id)).await;
                }
            }
        }
    }

    /// Runs a spool operation off the runtime (fsync), logging a failure.
    async fn blocking_spool(
        &self,
        f: impl FnOnce(&SnapshotSpool) -> anyhow::Result<()> + Send + 'static,
    ) -> bool {
        let spool = self.spool.clone();
        match tokio::task::spawn_blocking(move || f(&spool)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::error!(error = %format!("{e:#}"), "snapshot spool");
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "the snapshot spool task panicked");
                false
            }
        }
    }

    /// One round: offers every camera's latest snapshot to its schedule and sends those due.
    /// The periodic task is this in a loop.
    pub async fn step(&mut self) {
        for i in 0..self.cameras.len() {
            self.look(i).await;
            if self.cameras[i].schedule.due(Instant::now()) {
                self.send(i).await;
            }
        }
    }

    /// Offers camera `i`'s latest snapshot, if it is new.
    async fn look(&mut self, i: usize) {
        let camera = &mut self.cameras[i];
        let Some(snapshot) = camera.picture.snapshot() else {
            return;
        };
        if camera.last_seen == Some(snapshot.taken_at) {
            return;
        }
        // The sampler writes the report, then the snapshot, both stamped with the same time:
        // a report of another time belongs to another picture.
        let Some(report) = camera
            .picture
            .report()
            .filter(|r| r.checked_at == snapshot.taken_at)
        else {
            return;
        };
        camera.last_seen = Some(snapshot.taken_at);
        let upload = Upload::new(snapshot.jpeg, Some(report.state), Some(snapshot.taken_at));
        if !fits(upload.jpeg.len()) {
            if camera.too_big.as_ref() != Some(&upload.sha256) {
                tracing::warn!(
                    camera = %camera.id,
                    bytes = upload.jpeg.len(),
                    max = MAX_SNAPSHOT_BYTES,
                    "the snapshot is too big to upload; skipping it"
                );
                camera.too_big = Some(upload.sha256);
            }
            return;
        }
        let id = camera.id.clone();
        match camera.schedule.offer(upload.clone()) {
            Offered::Unchanged => {}
            Offered::Pending if camera.spooled => {
                // Only the newest is kept while the server is away.
                self.blocking_spool(move |s| s.put(&id, &upload)).await;
            }
            Offered::Pending => {}
            Offered::AlreadyStored => {
                if camera.spooled && self.blocking_spool(move |s| s.remove(&id)).await {
                    self.cameras[i].spooled = false;
                }
            }
        }
    }

    /// Sends camera `i`'s pending snapshot and deals with the answer.
    #[tracing::instrument(skip_all, fields(camera = %self.cameras[i].id))]
    async fn send(&mut self, i: usize) {
        let Some(upload) = self.cameras[i].schedule.pending().cloned() else {
            return;
        };
        let id = self.cameras[i].id.clone();
        let answer = self.put(&id, &upload).await;
        let now = Instant::now();
        let (verdict, retry_after, what) = match answer {
            Answer::Status {
                status,
                retry_after,
                detail,
            } => (
                classify(status),
                retry_after,
                format!("the server answered {status}: {detail}"),
            ),
            Answer::NoAnswer(error) => (Verdict::Away, None, error),
        };
        let camera = &mut self.cameras[i];
        match verdict {
            Verdict::Stored | Verdict::Drop => {
                if verdict == Verdict::Stored {
                    camera.schedule.stored(now);
                    camera.backoff.reset();
                    tracing::debug!(state = ?upload.state, bytes = upload.jpeg.len(), "snapshot uploaded");
                } else {
                    camera.schedule.dropped();
                    tracing::error!(error = %what, "the server refused the snapshot for good; it is dropped");
                }
                if camera.spooled && self.blocking_spool(move |s| s.remove(&id)).await {
                    self.cameras[i].spooled = false;
                }
            }
            Verdict::NotYet | Verdict::Slow | Verdict::Away => {
                let mut wait = camera.backoff.fail();
                if verdict == Verdict::Slow {
                    wait = wait.max(jitter(SLOW_RETRY.min(self.central.retry_max)));
                }
                if let Some(at_least) = retry_after {
                    wait = wait.max(at_least);
                }
                camera.schedule.retry_at(now + wait);
                match verdict {
                    Verdict::NotYet => {
                        tracing::info!(error = %what, retry_in = ?wait, "the server does not know the camera yet (its first heartbeat is on the way); the snapshot is kept");
                    }
                    Verdict::Slow => {
                        tracing::error!(error = %what, retry_in = ?wait, "the snapshot is kept");
                    }
                    _ => {
                        tracing::warn!(error = %what, retry_in = ?wait, "the snapshot waits in the spool");
                    }
                }
                if !camera.spooled && self.blocking_spool(move |s| s.put(&id, &upload)).await {
                    self.cameras[i].spooled = true;
                }
            }
        }
    }

    /// One `PUT` of `upload` as camera `camera_id`'s snapshot.
    async fn put(&self, camera_id: &str, upload: &Upload) -> Answer {
        let mut request = self
            .client
            .put(self.central.snapshot_upload_url(camera_id))
            .bearer_auth(self.central.token.expose())
            .header(reqwest::header::CONTENT_TYPE, "image/jpeg");
        if let Some(state) = upload.state {
            request = request.header(PICTURE_STATE_HEADER, state.as_str());
        }
        if let Some(taken_at) = upload.taken_at {
            request = request.header(
                TAKEN_AT_HEADER,
                taken_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            );
        }
        match request.body(upload.jpeg.clone()).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = parse_retry_after(
                    response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()),
                );
                let detail = if response.status().is_success() {
                    String::new()
                } else {
                    problem_detail(response).await
                };
                Answer::Status {
                    status,
                    retry_after,
                    detail,
                }
            }
            Err(e) => Answer::NoAnswer(format!(
                "cannot reach {}: {}",
                streamwatch_protocol::redact_url(self.central.url.as_str()),
                http_error_chain(e)
            )),
        }
    }

    /// Takes up the spool, then looks every [`CHECK_INTERVAL`] until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = self.restore() => {}
        }
        let mut ticker = tokio::time::interval(CHECK_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.step() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_dir;

    fn upload(bytes: &[u8], state: PictureState) -> Upload {
        Upload::new(Bytes::copy_from_slice(bytes), Some(state), Some(Utc::now()))
    }

    #[test]
    fn answers_map_to_what_the_protocol_says_to_do() {
        let cases = [
            (204, Verdict::Stored, "stored"),
            (400, Verdict::Drop, "not a JPEG"),
            (401, Verdict::Slow, "bad token"),
            (403, Verdict::Slow, "suspended tenant"),
            (404, Verdict::NotYet, "camera not known yet"),
            (408, Verdict::Away, "timeout"),
            (413, Verdict::Drop, "too big"),
            (415, Verdict::Drop, "not image/jpeg"),
            (422, Verdict::Drop, "bad id or header"),
            (429, Verdict::Away, "shedding load"),
            (500, Verdict::Away, "server error"),
            (503, Verdict::Away, "database down"),
            (507, Verdict::Drop, "over the tenant's quota"),
        ];
        for (status, verdict, what) in cases {
            assert_eq!(classify(status), verdict, "{status}: {what}");
        }
    }

    #[test]
    fn a_snapshot_is_sent_once_and_changes_wait_a_minute() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        assert!(!s.due(t0), "nothing to send");
        assert_eq!(s.offer(upload(b"a", PictureState::Ok)), Offered::Pending);
        assert!(s.due(t0), "the first one goes at once");
        s.stored(t0);
        assert_eq!(
            s.offer(upload(b"a", PictureState::Ok)),
            Offered::Unchanged,
            "the same bytes and state again"
        );
        assert!(!s.due(t0 + Duration::from_secs(120)));
        assert_eq!(
            s.offer(upload(b"a", PictureState::Frozen)),
            Offered::Pending,
            "a new state is a change"
        );
        assert!(
            !s.due(t0 + Duration::from_secs(59)),
            "at most once a minute"
        );
        assert!(s.due(t0 + MIN_UPLOAD_GAP));
        assert_eq!(
            s.offer(upload(b"b", PictureState::Frozen)),
            Offered::Pending,
            "new bytes replace the pending one"
        );
        assert_eq!(s.pending().map(|p| p.jpeg.as_ref()), Some(&b"b"[..]));
        assert_eq!(
            s.offer(upload(b"a", PictureState::Ok)),
            Offered::AlreadyStored,
            "back to what the server has: nothing to send"
        );
        assert!(s.pending().is_none());
    }

    #[test]
    fn a_retry_waits_and_a_dropped_snapshot_is_not_sent_again() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        s.offer(upload(b"a", PictureState::Black));
        s.retry_at(t0 + Duration::from_secs(8));
        assert!(!s.due(t0 + Duration::from_secs(7)));
        assert!(s.due(t0 + Duration::from_secs(8)));
        s.dropped();
        assert!(!s.due(t0 + Duration::from_secs(9)));
        assert_eq!(
            s.offer(upload(b"a", PictureState::Black)),
            Offered::Unchanged
        );
        assert_eq!(s.offer(upload(b"c", PictureState::Black)), Offered::Pending);
        assert!(
            s.due(t0 + Duration::from_secs(9)),
            "a drop is not a success"
        );
    }

    #[test]
    fn only_snapshots_up_to_the_limit_are_sent() {
        assert!(fits(MAX_SNAPSHOT_BYTES));
        assert!(!fits(MAX_SNAPSHOT_BYTES + 1));
    }

    #[test]
    fn the_spool_keeps_only_the_newest_snapshot_per_camera_and_reads_it_back() {
        let dir = temp_dir("snapshot-spool");
        let spool = SnapshotSpool::new(dir.join(SPOOL_DIR));
        assert!(spool.load().unwrap_or_else(|e| panic!("{e}")).is_empty());
        let older = upload(b"older", PictureState::Ok);
        let newer = upload(b"newer", PictureState::Frozen);
        let other = upload(b"other", PictureState::Black);
        for (camera, u) in [("cam-1", &older), ("cam-1", &newer), ("cam-2", &other)] {
            spool.put(camera, u).unwrap_or_else(|e| panic!("{e}"));
        }
        let mut names: Vec<_> = std::fs::read_dir(dir.join(SPOOL_DIR))
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["cam-1.jpg", "cam-1.json", "cam-2.jpg", "cam-2.json"]
        );
        let loaded = spool.load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            loaded,
            vec![("cam-1".to_owned(), newer), ("cam-2".to_owned(), other)]
        );
        spool.remove("cam-1").unwrap_or_else(|e| panic!("{e}"));
        spool.remove("cam-1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spool.load().unwrap_or_else(|e| panic!("{e}")).len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_spooled_snapshot_with_stale_metadata_goes_without_state_and_time() {
        let dir = temp_dir("snapshot-spool-torn");
        let spool = SnapshotSpool::new(dir.clone());
        spool
            .put("cam-1", &upload(b"old", PictureState::Black))
            .unwrap_or_else(|e| panic!("{e}"));
        // A crash between the two writes: the new JPEG, the old metadata.
        std::fs::write(dir.join("cam-1.jpg"), b"new").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("notes.txt"), b"x").unwrap_or_else(|e| panic!("{e}"));
        let loaded = spool.load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            loaded,
            vec![(
                "cam-1".to_owned(),
                Upload::new(Bytes::from_static(b"new"), None, None)
            )]
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
