#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its location"
)]

//! The file source with a real MP4 made by `ffmpeg` (4 s, 25 fps, H.264) during the test setup.

mod support;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
    time::Duration,
};
use streamwatch_agent::{
    metrics::CameraMetrics,
    snapshots::PictureSlot,
    sources::file::{self, FileOptions},
};
use streamwatch_protocol::CameraStatus;
use support::{TempDir, eventually, near, since_last_frame, snapshot, window_full};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The clip shared by every test of this binary, made once (kept in cargo's per-target
/// scratch folder, which `cargo clean` removes).
fn clip() -> &'static Path {
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    CLIP.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join("streamwatch-clip-4s-25fps.mp4");
        // Written under a private name and renamed: concurrent test runs never see half a file.
        let partial = dir.join(format!("streamwatch-clip-{}.mp4", std::process::id()));
        support::make_clip(&partial, 4, 25, "320x240");
        std::fs::rename(&partial, &path).expect("rename the clip");
        path
    })
}

struct Camera {
    metrics: CameraMetrics,
    pictures: Arc<PictureSlot>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Camera {
    fn start(path: &Path, options: FileOptions) -> Self {
        let metrics = CameraMetrics::new();
        let pictures = Arc::new(PictureSlot::default());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(file::run(
            path.to_owned(),
            options,
            metrics.clone(),
            pictures.clone(),
            shutdown.clone(),
        ));
        Self {
            metrics,
            pictures,
            shutdown,
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        let task = self.task.take().expect("task");
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("run() returns within 1 s of shutdown")
            .expect("run() does not panic");
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn speed(speed: f64, looped: bool) -> FileOptions {
    FileOptions { speed, looped }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mp4_plays_at_real_time_with_its_progress() {
    let camera = Camera::start(clip(), FileOptions::default());
    let m = &camera.metrics;
    let early = eventually(m, Duration::from_secs(3), "running with progress", |s| {
        s.status == CameraStatus::Running && s.processed_seconds > 0.0
    })
    .await;
    assert!((early.total_seconds - 4.0).abs() < 0.1, "{early:#?}");
    assert_eq!(early.declared_fps.map(f64::round), Some(25.0), "{early:#?}");
    let later = eventually(m, Duration::from_secs(3), "progress moves on", |s| {
        s.processed_seconds >= early.processed_seconds + 1.0
    })
    .await;
    assert!(later.processed_seconds <= later.total_seconds, "{later:#?}");
    // The fps window is 5 s: full after 5 s of a looping 4 s clip.
    let s = eventually(m, Duration::from_secs(10), "25 fps", |s| {
        window_full(s) && near(s.received_fps, 25.0)
    })
    .await;
    assert!(s.bitrate_kbps > 0.0 && since_last_frame(&s) < 1.0, "{s:#?}");
    camera.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_times_the_speed_plays_the_clip_in_about_a_second() {
    let started = std::time::Instant::now();
    let camera = Camera::start(clip(), speed(4.0, false));
    let s = eventually(
        &camera.metrics,
        Duration::from_secs(4),
        "the end of the clip",
        |s| s.status == CameraStatus::Stopped,
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        (0.8..2.5).contains(&elapsed),
        "4 s of video at 4x took {elapsed:.2} s"
    );
    assert_eq!(s.frames_total, 100, "{s:#?}");
    assert!(
        (s.processed_seconds - s.total_seconds).abs() < 1e-6,
        "{s:#?}"
    );
    assert_eq!(s.last_error.as_deref(), Some("end of file (not looped)"));
    // Stopped, but run() still waits for shutdown.
    assert!(!camera.task.as_ref().unwrap().is_finished());
    camera.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looped_file_keeps_playing_after_its_end() {
    let camera = Camera::start(clip(), speed(4.0, true));
    let s = eventually(
        &camera.metrics,
        Duration::from_secs(5),
        "a second pass",
        |s| s.frames_total > 150,
    )
    .await;
    assert_eq!(s.status, CameraStatus::Running, "{s:#?}");
    assert_eq!(s.restart_count, 0, "looping is not a restart: {s:#?}");
    assert!(s.processed_seconds < s.total_seconds, "{s:#?}");
    eventually(
        &camera.metrics,
        Duration::from_secs(8),
        "100 fps at 4x",
        |s| window_full(s) && near(s.received_fps, 100.0),
    )
    .await;
    camera.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_is_an_error_and_is_retried_until_it_appears() {
    let dir = TempDir::new("missing");
    let path = dir.path().join("later.mp4");
    let camera = Camera::start(&path, FileOptions::default());
    let m = &camera.metrics;
    let s = eventually(m, Duration::from_secs(2), "error status", |s| {
        s.status == CameraStatus::Error
    })
    .await;
    let error = s.last_error.unwrap_or_default();
    assert!(
        error.starts_with("cannot open ") && error.contains("later.mp4"),
        "{error}"
    );
    eventually(m, Duration::from_secs(3), "a retry", |s| {
        s.restart_count >= 1
    })
    .await;

    std::fs::copy(clip(), &path).unwrap();
    // The retry after the copy comes after the current backoff (1 s doubling to 30 s): on a
    // loaded machine several retries may have passed already, so allow a whole capped backoff.
    eventually(
        m,
        Duration::from_secs(45),
        "playing once the file exists",
        |s| s.status == CameraStatus::Running && s.frames_total > 0,
    )
    .await;
    camera.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_files_are_errors_with_a_clear_message() {
    let dir = TempDir::new("corrupt");
    let garbage = dir.path().join("garbage.mp4");
    std::fs::write(&garbage, vec![0x42_u8; 4096]).unwrap();
    // ffmpeg writes the index (moov) at the end: half a file has no index.
    let truncated = dir.path().join("truncated.mp4");
    let bytes = std::fs::read(clip()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();

    for path in [garbage, truncated] {
        let camera = Camera::start(&path, FileOptions::default());
        let s = eventually(
            &camera.metrics,
            Duration::from_secs(3),
            "error status",
            |s| s.status == CameraStatus::Error,
        )
        .await;
        let error = s.last_error.clone().unwrap_or_default();
        assert!(
            error.contains("not a readable MP4"),
            "{}: {error}",
            path.display()
        );
        assert_eq!(s.frames_total, 0);
        camera.stop().await;
    }
}

#[tokio::test]
async fn shutdown_stops_a_playing_file_promptly() {
    let camera = Camera::start(clip(), FileOptions::default());
    eventually(&camera.metrics, Duration::from_secs(3), "frames", |s| {
        s.frames_total > 0
    })
    .await;
    let frames = snapshot(&camera.metrics).frames_total;
    camera.stop().await;
    assert!(frames > 0);
}

/// The mean luma of a decoded picture.
fn mean_luma(picture: &streamwatch_agent::picture::LumaImage) -> f64 {
    picture.data().iter().map(|&b| f64::from(b)).sum::<f64>() / picture.data().len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h264_file_hands_over_a_decoded_keyframe_when_a_picture_is_wanted() {
    let camera = Camera::start(clip(), FileOptions::default());
    // One keyframe a second: a picture well within the sampler's longest wait.
    let picture = camera
        .pictures
        .request(Duration::from_secs(5))
        .await
        .expect("a decoded picture within 5 s");
    assert_eq!((picture.width(), picture.height()), (320, 240));
    let luma = mean_luma(&picture);
    assert!(
        (40.0..220.0).contains(&luma),
        "testsrc2 is colourful: {luma}"
    );
    // Asked again, it decodes again (a later keyframe).
    let again = camera.pictures.request(Duration::from_secs(5)).await;
    assert!(again.is_some());
    camera.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h265_file_is_decoded_through_ffmpeg() {
    support::require_tool("ffmpeg", "ffmpeg");
    let dir = TempDir::new("hevc-clip");
    let path = dir.path().join("hevc.mp4");
    let output = std::process::Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=25")
        .args([
            "-t",
            "3",
            "-c:v",
            "libx265",
            "-x265-params",
            "keyint=25:log-level=error",
        ])
        .args(["-tag:v", "hev1", "-pix_fmt", "yuv420p"])
        .arg(&path)
        .output()
        .expect("run ffmpeg");
    assert!(
        output.status.success(),
        "ffmpeg could not make an H.265 clip: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let camera = Camera::start(&path, FileOptions::default());
    let picture = camera
        .pictures
        .request(Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("a picture within 5 s: {:#?}", snapshot(&camera.metrics)));
    assert_eq!((picture.width(), picture.height()), (320, 240));
    assert!((40.0..220.0).contains(&mean_luma(&picture)));
    camera.stop().await;
}
