//! `file://` sources: an MP4 read at real-time speed (or `speed` times faster), like a camera
//! that replays a recording. The `mp4` crate gives each video sample's timestamp and size, and
//! the task waits until the sample's time has come before counting it as a frame.
//!
//! Snapshots: while the camera's sampler wants a picture, the next sync sample (keyframe) is
//! decoded when its time comes ([`crate::decode`]): H.264 in-process from the sample and the
//! `avcC` parameter sets; any other codec by the system's ffmpeg, which reads the file itself
//! at the sample's time.
//!
//! Progress goes to `file_processing` (`processed_seconds` of `total_seconds`, media time). A
//! looped file (the default) starts again from its first sample, progress back at 0. A file that
//! is not looped ends as `stopped` ("end of file") and the task then waits for shutdown. A missing
//! or unreadable file is an `error` with the reason, retried with backoff (1 s doubling to 30 s):
//! the file may appear later.
//!
//! File I/O and the `mp4` parser run on tokio's blocking pool, a batch of samples at a time, so a
//! slow disk never stalls the runtime. The parser panics on some malformed files; such a panic is
//! caught there and reported as a corrupt file.

use super::rtsp::{RECONNECT_BASE, RECONNECT_CAP};
use crate::{
    backoff::Backoff,
    decode::{Keyframe, KeyframeDecoder, START_CODE, avcc_to_annex_b},
    metrics::CameraMetrics,
    snapshots::PictureSlot,
};
use chrono::Utc;
use mp4::{Mp4Reader, TrackType};
use std::{
    fs::File,
    io::BufReader,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use streamwatch_protocol::CameraStatus;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Per-camera file settings.
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// Playback speed: 1.0 is real time, 4.0 four times faster.
    pub speed: f64,
    /// Start again at the end (a camera never ends).
    pub looped: bool,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            speed: 1.0,
            looped: true,
        }
    }
}

/// Samples read from disk per trip to the blocking pool.
const BATCH: u32 = 32;

/// Replays `path` until `shutdown` is cancelled, writing what it measures into `metrics` and
/// handing a decoded keyframe to `pictures` whenever it wants one.
pub async fn run(
    path: PathBuf,
    options: FileOptions,
    metrics: CameraMetrics,
    pictures: Arc<PictureSlot>,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("file", path = %path.display());
    let decoder = KeyframeDecoder::new(pictures, span.clone());
    async move {
        let speed = if options.speed.is_finite() && options.speed > 0.0 {
            options.speed
        } else {
            tracing::warn!(speed = options.speed, "invalid speed; playing at real time");
            1.0
        };
        let mut backoff = Backoff::new(RECONNECT_BASE, RECONNECT_CAP);
        loop {
            let mut played_frames = false;
            let outcome = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                outcome = play(&path, speed, options.looped, &metrics, &decoder, &mut played_frames) => outcome,
            };
            match outcome {
                Ok(()) => {
                    tracing::info!("end of file");
                    metrics.on_failure(CameraStatus::Stopped, "end of file (not looped)");
                    shutdown.cancelled().await;
                    return;
                }
                Err(message) => {
                    if played_frames {
                        backoff.reset();
                    }
                    let delay = backoff.fail();
                    tracing::warn!(error = %message, retry_in_ms = delay.as_millis() as u64, "file source failed");
                    metrics.on_failure(CameraStatus::Error, message);
                    tokio::select! {
                        biased;
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                    metrics.on_restart(Utc::now());
                }
            }
        }
    }
    .instrument(span)
    .await;
}

/// Plays the file (every pass, if looped); `Ok` at the end of an unlooped file.
async fn play(
    path: &Path,
    speed: f64,
    looped: bool,
    metrics: &CameraMetrics,
    decoder: &KeyframeDecoder,
    played_frames: &mut bool,
) -> Result<(), String> {
    let owned = path.to_owned();
    let mut file = blocking(path, move || Mp4File::open(&owned)).await??;
    let total = file.total_seconds;
    metrics.on_connected(Utc::now(), file.declared_fps);
    metrics.set_file_progress(0.0, total);
    let timescale = f64::from(file.timescale);
    // Wall-clock instant at which the current pass's media time 0 is due.
    let mut pass_start = Instant::now();
    loop {
        let mut next_id = 1;
        let mut first_start: Option<u64> = None;
        let mut pass_end: f64 = 0.0;
        while next_id <= file.sample_count {
            // Keyframes are only copied out of a batch while a picture is wanted.
            let want = decoder.wants_keyframe();
            let (returned, batch) = blocking(path, move || {
                let batch = file.read_batch(next_id, BATCH, want);
                (file, batch)
            })
            .await?;
            file = returned;
            let batch = batch?;
            next_id += batch.len() as u32;
            for sample in batch {
                let first = *first_start.get_or_insert(sample.start_time);
                let media_at = sample.start_time.saturating_sub(first) as f64 / timescale;
                tokio::time::sleep_until(pass_start + Duration::from_secs_f64(media_at / speed))
                    .await;
                metrics.on_frame(Utc::now(), sample.bytes);
                *played_frames = true;
                if let Some(keyframe) = sample.keyframe
                    && decoder.wants_keyframe()
                {
                    decoder.decode(keyframe);
                }
                let processed = media_at + f64::from(sample.duration) / timescale;
                pass_end = pass_end.max(processed);
                metrics.set_file_progress(processed.min(total), total);
            }
        }
        if !looped {
            return Ok(());
        }
        // The next pass starts where this one's last sample ends, keeping the cadence.
        pass_start += Duration::from_secs_f64(pass_end / speed);
        metrics.set_file_progress(0.0, total);
    }
}

/// Runs `f` on the blocking pool; a panic (the `mp4` parser has a few) becomes a corrupt-file
/// error instead of killing the task.
async fn blocking<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("{}: corrupt MP4 (the parser gave up: {e})", path.display()))
}

/// What the player needs of one sample.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    /// Decode time in track timescale units.
    start_time: u64,
    duration: u32,
    bytes: u64,
    /// The sample as a keyframe to decode, when it is one and a picture was wanted.
    keyframe: Option<Keyframe>,
}

/// How the pictures of a file's video track are decoded.
#[derive(Debug, Clone)]
enum Pictures {
    /// In-process: the `avcC` parameter sets (Annex B) and the NAL length size of the samples.
    H264 {
        parameter_sets: Vec<u8>,
        length_size: usize,
    },
    /// Any other codec (or an `avcC` without parameter sets): ffmpeg reads the file.
    Ffmpeg,
}

/// An opened MP4 and its video track.
struct Mp4File {
    reader: Mp4Reader<BufReader<File>>,
    path: PathBuf,
    display: String,
    pictures: Pictures,
    track_id: u32,
    timescale: u32,
    sample_count: u32,
    total_seconds: f64,
    declared_fps: Option<f64>,
}

impl Mp4File {
    fn open(path: &Path) -> Result<Self, String> {
        let display = path.display().to_string();
        let file = File::open(path).map_err(|e| format!("cannot open {display}: {e}"))?;
        let size = file
            .metadata()
            .map_err(|e| format!("cannot read {display}: {e}"))?
            .len();
        let reader = Mp4Reader::read_header(BufReader::new(file), size)
            .map_err(|e| format!("{display} is not a readable MP4: {e}"))?;
        let track = reader
            .tracks()
            .values()
            .filter(|t| matches!(t.track_type(), Ok(TrackType::Video)))
            .min_by_key(|t| t.track_id())
            .ok_or_else(|| format!("{display} has no video track"))?;
        let (track_id, timescale, sample_count, duration) = (
            track.track_id(),
            track.timescale(),
            track.sample_count(),
            track.duration(),
        );
        let pictures = match &track.trak.mdia.minf.stbl.stsd.avc1 {
            Some(avc1) if !avc1.avcc.sequence_parameter_sets.is_empty() => {
                let avcc = &avc1.avcc;
                let mut parameter_sets = Vec::new();
                for nal in avcc
                    .sequence_parameter_sets
                    .iter()
                    .chain(&avcc.picture_parameter_sets)
                {
                    parameter_sets.extend_from_slice(&START_CODE);
                    parameter_sets.extend_from_slice(&nal.bytes);
                }
                Pictures::H264 {
                    parameter_sets,
                    length_size: usize::from(avcc.length_size_minus_one & 0x03) + 1,
                }
            }
            _ => Pictures::Ffmpeg,
        };
        if timescale == 0 || sample_count == 0 {
            return Err(format!("{display}: the video track has no samples"));
        }
        let total_seconds = duration.as_secs_f64();
        let declared_fps = (total_seconds > 0.0).then(|| f64::from(sample_count) / total_seconds);
        Ok(Self {
            reader,
            path: path.to_owned(),
            display,
            pictures,
            track_id,
            timescale,
            sample_count,
            total_seconds,
            declared_fps,
        })
    }

    /// Reads up to `max` samples from `first` (1-based), checking that their data is there;
    /// with `want_keyframes`, sync samples come with their picture to decode.
    fn read_batch(
        &mut self,
        first: u32,
        max: u32,
        want_keyframes: bool,
    ) -> Result<Vec<Sample>, String> {
        let last = first.saturating_add(max - 1).min(self.sample_count);
        (first..=last)
            .map(|id| match self.reader.read_sample(self.track_id, id) {
                Ok(Some(s)) => Ok(Sample {
                    start_time: s.start_time,
                    duration: s.duration,
                    bytes: s.bytes.len() as u64,
                    keyframe: (want_keyframes && s.is_sync)
                        .then(|| self.keyframe(id, &s))
                        .flatten(),
                }),
                Ok(None) => Err(format!("{}: sample {id} is missing", self.display)),
                Err(e) => Err(format!("{}: cannot read sample {id}: {e}", self.display)),
            })
            .collect()
    }

    /// The keyframe to decode for sync sample `id`; `None` (logged) if its data is corrupt:
    /// the next keyframe is tried.
    fn keyframe(&self, id: u32, sample: &mp4::Mp4Sample) -> Option<Keyframe> {
        match &self.pictures {
            Pictures::H264 {
                parameter_sets,
                length_size,
            } => {
                let mut annex_b = parameter_sets.clone();
                match avcc_to_annex_b(&sample.bytes, *length_size, &mut annex_b) {
                    Ok(()) => Some(Keyframe::H264(annex_b)),
                    Err(e) => {
                        tracing::warn!(file = %self.display, sample = id, error = e, "corrupt keyframe; trying the next one");
                        None
                    }
                }
            }
            Pictures::Ffmpeg => {
                let pts = sample.start_time as f64 + f64::from(sample.rendering_offset);
                Some(Keyframe::File {
                    path: self.path.clone(),
                    seconds: pts / f64::from(self.timescale),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("streamwatch-file-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let path = temp_path("missing.mp4");
        let err = Mp4File::open(&path).err().unwrap();
        assert!(err.starts_with("cannot open "), "{err}");
        assert!(err.contains("missing.mp4"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_an_mp4_is_reported_as_such() {
        let path = temp_path("garbage.mp4");
        std::fs::write(&path, b"this is not a video, just some text").unwrap();
        let err = Mp4File::open(&path).err().unwrap();
        std::fs::remove_file(&path).ok();
        assert!(err.contains("is not a readable MP4"), "{err}");
    }

    #[test]
    fn the_defaults_are_real_time_and_looped() {
        let options = FileOptions::default();
        assert_eq!((options.speed, options.looped), (1.0, true));
    }
}
