//! Snapshots: once per `snapshot_interval_seconds` each camera's source is asked for one
//! decoded picture, which is classified ([`crate::picture`]), encoded as JPEG (at most
//! [`MAX_SNAPSHOT_WIDTH`] px wide) and kept as the camera's latest snapshot, in memory and in
//! `state_dir/snapshots/<camera id>.jpg`.
//!
//! ```text
//!   sampler (one task per camera)          source task
//!     every interval: request ─────────▶ PictureSlot::wanted()? decode one picture
//!                     wait (bounded) ◀─── PictureSlot::offer(picture)
//!     classify → CameraPicture::report     (heartbeats, /status/, the dashboard)
//!     JPEG → CameraPicture::snapshot + disk (GET /api/streams/{id}/snapshot)
//! ```
//!
//! Asking instead of receiving every frame keeps the cost at one decoded picture per camera
//! per interval: a source only does the work when [`PictureSlot::wanted`] says so. A source
//! that cannot decode (today `rtsp://` and `file://`) never offers one, and the camera's
//! picture is `unknown`. Relayed cameras (`stream-status+http://`) get no sampler at all.

use crate::picture::{Classifier, LumaImage, PictureSettings};
use crate::state::write_atomically;
use anyhow::Context;
use axum::body::Bytes;
use chrono::{DateTime, Utc};
use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use streamwatch_protocol::PictureReport;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Snapshots wider than this are scaled down (SPEC section 7).
pub const MAX_SNAPSHOT_WIDTH: usize = 1280;
/// JPEG quality, 1..100: small files (a 1280x720 picture is some 100 KiB) that still show
/// whether the camera points where it should.
pub const JPEG_QUALITY: u8 = 80;
/// The longest wait for a source to hand over a picture. A decoder waits for the next
/// keyframe, which cameras send every one to four seconds.
pub const MAX_PICTURE_WAIT: Duration = Duration::from_secs(10);
/// The folder under `state_dir` that holds the latest snapshot of every camera.
pub const SNAPSHOT_DIR: &str = "snapshots";

/// Where a source leaves a decoded picture when the sampler wants one.
#[derive(Debug, Default)]
pub struct PictureSlot {
    wanted: AtomicBool,
    latest: Mutex<Option<LumaImage>>,
    ready: Notify,
}

impl PictureSlot {
    /// Whether a picture is wanted now: sources check this before decoding anything.
    pub fn wanted(&self) -> bool {
        self.wanted.load(Ordering::Acquire)
    }

    /// Hands over a picture (only taken when one is wanted).
    pub fn offer(&self, picture: LumaImage) {
        if self.wanted.swap(false, Ordering::AcqRel) {
            *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(picture);
            self.ready.notify_one();
        }
    }

    fn take(&self) -> Option<LumaImage> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Asks the source for a picture and waits at most `within` for it.
    pub async fn request(&self, within: Duration) -> Option<LumaImage> {
        // A picture left over from a request that timed out is stale.
        self.take();
        self.wanted.store(true, Ordering::Release);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(picture) = self.take() {
                return Some(picture);
            }
            // A stored wake-up from an earlier round may end this wait early: loop and look.
            if tokio::time::timeout_at(deadline, self.ready.notified())
                .await
                .is_err()
            {
                self.wanted.store(false, Ordering::Release);
                return self.take();
            }
        }
    }
}

/// A camera's latest snapshot, as JPEG.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub jpeg: Bytes,
    pub taken_at: DateTime<Utc>,
    pub width: usize,
    pub height: usize,
}

/// A camera's picture health and latest snapshot, shared by its sampler (which writes) and
/// the heartbeats and local API (which read).
#[derive(Debug, Default)]
pub struct CameraPicture {
    /// Where the camera's source hands over pictures.
    pub slot: Arc<PictureSlot>,
    report: Mutex<Option<PictureReport>>,
    snapshot: Mutex<Option<Snapshot>>,
}

impl CameraPicture {
    /// The latest check; `None` before the first (and always for relayed cameras).
    pub fn report(&self) -> Option<PictureReport> {
        self.report
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The latest snapshot; `None` until a picture was decoded.
    pub fn snapshot(&self) -> Option<Snapshot> {
        self.snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_report(&self, report: PictureReport) {
        *self.report.lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
    }

    fn set_snapshot(&self, snapshot: Snapshot) {
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(snapshot);
    }
}

/// Encodes `picture` as a greyscale JPEG, scaled down to at most [`MAX_SNAPSHOT_WIDTH`] wide.
/// Returns the bytes and the encoded size.
pub fn encode_jpeg(picture: &LumaImage) -> anyhow::Result<(Vec<u8>, usize, usize)> {
    let scaled = picture.scaled_to_width(MAX_SNAPSHOT_WIDTH);
    let (width, height) = (scaled.width(), scaled.height());
    let w = u16::try_from(width).context("picture too wide for JPEG")?;
    let h = u16::try_from(height)
        .with_context(|| format!("picture too tall for JPEG ({height} px at {width} px wide)"))?;
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, JPEG_QUALITY)
        .encode(scaled.data(), w, h, jpeg_encoder::ColorType::Luma)
        .context("cannot encode the snapshot as JPEG")?;
    Ok((jpeg, width, height))
}

/// The file of a camera's latest snapshot under `dir` (camera ids are safe file names: see
/// `streamwatch_protocol::is_valid_camera_id`).
pub fn snapshot_file(dir: &Path, camera_id: &str) -> PathBuf {
    dir.join(format!("{camera_id}.jpg"))
}

/// One camera's periodic check.
pub struct Sampler {
    camera_id: String,
    classifier: Classifier,
    picture: Arc<CameraPicture>,
    /// `state_dir/snapshots`.
    dir: PathBuf,
    /// How long one check waits for the source.
    wait: Duration,
}

impl Sampler {
    pub fn new(
        camera_id: String,
        settings: PictureSettings,
        interval: Duration,
        picture: Arc<CameraPicture>,
        dir: PathBuf,
    ) -> Self {
        Self {
            camera_id,
            classifier: Classifier::new(settings),
            picture,
            dir,
            wait: (interval / 2).min(MAX_PICTURE_WAIT),
        }
    }

    /// One check: ask the source for a picture, classify it, keep and store the snapshot.
    /// The periodic task is this in a loop; tests call it directly.
    #[tracing::instrument(skip_all, fields(camera = %self.camera_id))]
    pub async fn step(&mut self) -> PictureReport {
        let picture = self.picture.slot.request(self.wait).await;
        let now = Utc::now();
        let view = picture.as_ref().map(LumaImage::view);
        let report = self.classifier.observe(now, view.as_ref());
        let previous = self.picture.report().map(|r| r.state);
        if previous != Some(report.state) {
            tracing::info!(
                state = report.state.as_str(),
                previous = previous.map(|p| p.as_str()),
                luma_mean = report.luma_mean,
                change_pct = report.change_pct,
                "picture state changed"
            );
        }
        self.picture.set_report(report.clone());
        if let Some(picture) = picture {
            match self.store(picture, now).await {
                Ok(snapshot) => self.picture.set_snapshot(snapshot),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot store the snapshot"),
            }
        }
        report
    }

    /// Encodes and writes the snapshot off the runtime (JPEG encoding and fsync both block).
    async fn store(&self, picture: LumaImage, now: DateTime<Utc>) -> anyhow::Result<Snapshot> {
        let dir = self.dir.clone();
        let name = format!("{}.jpg", self.camera_id);
        tokio::task::spawn_blocking(move || -> anyhow::Result<Snapshot> {
            let (jpeg, width, height) = encode_jpeg(&picture)?;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            write_atomically(&dir, &name, &jpeg)?;
            Ok(Snapshot {
                jpeg: Bytes::from(jpeg),
                taken_at: now,
                width,
                height,
            })
        })
        .await
        .context("encoding the snapshot panicked")?
    }

    /// Checks every `interval` until `shutdown`, the first check right away.
    pub async fn run(mut self, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = self.step() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_dir;
    use streamwatch_protocol::PictureState;

    fn flat(width: usize, height: usize, level: u8) -> LumaImage {
        LumaImage::new(width, height, vec![level; width * height]).unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn a_request_takes_the_picture_the_source_offers() {
        let slot = Arc::new(PictureSlot::default());
        assert!(!slot.wanted());
        slot.offer(flat(2, 2, 1));
        let source = slot.clone();
        let task = tokio::spawn(async move {
            while !source.wanted() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            source.offer(flat(4, 4, 9));
        });
        let picture = slot.request(Duration::from_secs(5)).await;
        assert_eq!(picture, Some(flat(4, 4, 9)), "not the unrequested offer");
        assert!(!slot.wanted());
        task.await.unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn a_request_nobody_answers_ends_empty_and_unwanted() {
        let slot = PictureSlot::default();
        assert_eq!(slot.request(Duration::from_millis(50)).await, None);
        assert!(!slot.wanted(), "a late source does not decode for nobody");
    }

    #[test]
    fn wide_pictures_are_encoded_at_most_1280_wide() {
        let (jpeg, width, height) =
            encode_jpeg(&flat(1920, 1080, 128)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((width, height), (1280, 720));
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "JPEG start of image");
        assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9], "JPEG end of image");
        let (_, width, height) = encode_jpeg(&flat(640, 360, 0)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((width, height), (640, 360));
    }

    #[test]
    fn a_picture_too_tall_for_jpeg_is_an_error() {
        let err = encode_jpeg(&flat(1, 70_000, 0))
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            err.as_deref().is_some_and(|e| e.contains("too tall")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_step_classifies_and_stores_the_snapshot_atomically() {
        let dir = temp_dir("snapshots");
        let picture = Arc::new(CameraPicture::default());
        let mut sampler = Sampler::new(
            "cam-1".to_owned(),
            PictureSettings::default(),
            Duration::from_secs(5),
            picture.clone(),
            dir.join(SNAPSHOT_DIR),
        );
        let slot = picture.slot.clone();
        let source = tokio::spawn(async move {
            while !slot.wanted() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            slot.offer(flat(64, 36, 2));
        });
        let report = sampler.step().await;
        source.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.state, PictureState::Black);
        assert_eq!(picture.report(), Some(report));
        let snapshot = picture.snapshot().unwrap_or_else(|| panic!("a snapshot"));
        assert_eq!((snapshot.width, snapshot.height), (64, 36));
        let file = snapshot_file(&dir.join(SNAPSHOT_DIR), "cam-1");
        let on_disk = std::fs::read(&file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(on_disk, snapshot.jpeg.to_vec());
        let names: Vec<_> = std::fs::read_dir(dir.join(SNAPSHOT_DIR))
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("cam-1.jpg")],
            "no temp file left"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_step_without_a_picture_is_unknown_and_keeps_the_last_snapshot() {
        let dir = temp_dir("snapshots-unknown");
        let picture = Arc::new(CameraPicture::default());
        let mut sampler = Sampler::new(
            "cam-1".to_owned(),
            PictureSettings::default(),
            Duration::from_millis(100),
            picture.clone(),
            dir.clone(),
        );
        let report = sampler.step().await;
        assert_eq!(report.state, PictureState::Unknown);
        assert_eq!(picture.snapshot(), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
