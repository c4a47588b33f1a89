//! Decoding one keyframe per camera and snapshot interval into a luma picture (SPEC section 7).
//!
//! Sources never decode on their own: a source checks [`KeyframeDecoder::wants_keyframe`]
//! (one atomic load) for each frame it receives, and only while the camera's sampler waits for
//! a picture does it collect the next keyframe and hand it to [`KeyframeDecoder::decode`]. The
//! decoding then runs off the source's receive loop, and the picture goes to the camera's
//! [`PictureSlot`]:
//!
//! | codec | how |
//! |---|---|
//! | H.264 | in-process with OpenH264 (the `openh264` crate, built from its bundled source), on one decoding thread |
//! | H.265 (RTSP), anything in an MP4 but H.264 | Debian's `ffmpeg`, when it is on `PATH`: one short-lived child per picture, killed after [`FFMPEG_TIMEOUT`] |
//! | no ffmpeg on `PATH`, other RTSP codecs (MJPEG, ...) | no picture: the state is `unknown`, and the reason is logged once per camera |
//!
//! A decoder lives only while it decodes one keyframe: OpenH264 keeps reference frames and
//! buffers sized to the stream, several MiB at 1080p, which sixteen idle cameras would hold
//! for nothing between two snapshots a minute apart. Creating one costs little next to the
//! decode itself. [`DECODE_PERMITS`] bounds how many keyframes are decoded at once, so cameras
//! whose samplers tick together (they all start at once) neither pile up decoders in memory
//! nor take every core.
//!
//! A keyframe that does not decode (corrupt, truncated, an unknown profile) is logged and the
//! source tries the next one while the sampler still waits; if none decodes in time, the check
//! is `unknown`. Nothing here panics on bad input.

use crate::picture::{LumaImage, LumaView, PictureError};
use crate::snapshots::{MAX_PICTURE_WAIT, PictureSlot};
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::Semaphore,
};

/// The longest an `ffmpeg` child may take for one picture before it is killed.
pub const FFMPEG_TIMEOUT: Duration = Duration::from_secs(5);
/// Keyframes decoded at the same time, in-process or through ffmpeg, across all cameras: the
/// agent's machines have a core or two, and a snapshot can wait a second. With two, sixteen
/// cameras starting together peaked at 87 MiB RSS (docs/BENCHMARKS.md, "Snapshots").
pub const DECODE_PERMITS: usize = 1;
/// The largest luma plane accepted from ffmpeg (8K UHD): a bound on what a broken or hostile
/// stream can make the agent allocate.
const MAX_PIXELS: usize = 7680 * 4320;

/// Process-wide, unlike everything else per camera: the bound is on this machine's cores and
/// memory, which all cameras share, and `sources::spawn` is the only door a source has.
static DECODES: Semaphore = Semaphore::const_new(DECODE_PERMITS);

/// One keyframe to decode.
#[derive(Debug, Clone, PartialEq)]
pub enum Keyframe {
    /// An H.264 access unit in Annex B form, its parameter sets (SPS, PPS) first.
    H264(Vec<u8>),
    /// An H.265 access unit in Annex B form, its parameter sets (VPS, SPS, PPS) first.
    H265(Vec<u8>),
    /// The picture of a media file at `seconds` (presentation time), for codecs the agent
    /// does not depacketize itself: ffmpeg reads the file.
    File { path: PathBuf, seconds: f64 },
}

impl Keyframe {
    fn codec(&self) -> &'static str {
        match self {
            Self::H264(_) => "H.264",
            Self::H265(_) => "H.265",
            Self::File { .. } => "the file's codec",
        }
    }
}

/// Why a keyframe gave no picture.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{codec} needs ffmpeg, which is not on PATH (apt-get install ffmpeg)")]
    FfmpegMissing { codec: &'static str },
    #[error("ffmpeg could not be started: {0}")]
    FfmpegSpawn(std::io::Error),
    #[error("ffmpeg gave no picture within {} s and was killed", .0.as_secs())]
    FfmpegTimeout(Duration),
    #[error("ffmpeg failed ({status}): {message}")]
    Ffmpeg { status: String, message: String },
    #[error("ffmpeg's output is not a greyscale PGM picture: {0}")]
    Pgm(&'static str),
    #[error("H.264: {0}")]
    H264(String),
    #[error("the decoder returned no picture for the keyframe")]
    NoPicture,
    #[error(transparent)]
    Picture(#[from] PictureError),
}

/// One camera's side of snapshot decoding, owned by its source task.
#[derive(Debug)]
pub struct KeyframeDecoder {
    slot: Arc<PictureSlot>,
    /// A keyframe of this camera is being decoded (or waits for a permit): collect no other.
    busy: Arc<AtomicBool>,
    /// "Cannot decode" was logged: an operator needs it once, not once a minute.
    told_missing: Arc<AtomicBool>,
    told_unsupported: bool,
    span: tracing::Span,
}

impl KeyframeDecoder {
    /// `span` identifies the camera in the decoder's log lines.
    pub fn new(slot: Arc<PictureSlot>, span: tracing::Span) -> Self {
        Self {
            slot,
            busy: Arc::new(AtomicBool::new(false)),
            told_missing: Arc::new(AtomicBool::new(false)),
            told_unsupported: false,
            span,
        }
    }

    /// Whether the source should look for a keyframe now: the sampler waits for a picture and
    /// none is being decoded. Cheap enough for every frame.
    pub fn wants_keyframe(&self) -> bool {
        self.slot.wanted() && !self.busy.load(Ordering::Acquire)
    }

    /// Decodes `keyframe` in the background and offers the picture to the camera's slot.
    /// Returns at once: the caller's receive loop never waits for a decoder.
    pub fn decode(&self, keyframe: Keyframe) {
        if self.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let slot = self.slot.clone();
        let busy = self.busy.clone();
        let told_missing = self.told_missing.clone();
        let span = self.span.clone();
        tokio::spawn(async move {
            let codec = keyframe.codec();
            let result = match DECODES.acquire().await {
                Ok(_permit) => decode(keyframe).await,
                // Never closed; if it were, decoding without a bound beats not decoding.
                Err(_) => decode(keyframe).await,
            };
            match result {
                Ok(picture) => {
                    tracing::debug!(
                        parent: &span,
                        width = picture.width(),
                        height = picture.height(),
                        "keyframe decoded"
                    );
                    slot.offer(picture);
                }
                Err(e @ DecodeError::FfmpegMissing { .. }) => {
                    if !told_missing.swap(true, Ordering::AcqRel) {
                        tracing::warn!(
                            parent: &span,
                            reason = %e,
                            "no snapshots for this camera: its picture stays unknown"
                        );
                    }
                    // The next keyframe would fare no better: stay busy for the rest of this
                    // check (the sampler waits at most this long) instead of catching each.
                    tokio::time::sleep(MAX_PICTURE_WAIT).await;
                }
                Err(e) => {
                    tracing::warn!(parent: &span, codec, error = %e, "a keyframe could not be decoded; trying the next one");
                }
            }
            busy.store(false, Ordering::Release);
        });
    }

    /// The stream's codec cannot be decoded at all: logged once, the picture stays `unknown`.
    pub fn unsupported(&mut self, reason: &str) {
        if !std::mem::replace(&mut self.told_unsupported, true) {
            tracing::warn!(
                parent: &self.span,
                reason,
                "no snapshots for this camera: its picture stays unknown"
            );
        }
    }
}

/// Decodes one keyframe (H.264 on the decoding thread, the rest through ffmpeg).
pub async fn decode(keyframe: Keyframe) -> Result<LumaImage, DecodeError> {
    match keyframe {
        Keyframe::H264(annex_b) => decode_h264_off_runtime(annex_b).await,
        Keyframe::H265(annex_b) => {
            let ffmpeg = find_ffmpeg().ok_or(DecodeError::FfmpegMissing { codec: "H.265" })?;
            ffmpeg_picture(
                &ffmpeg,
                FfmpegInput::Stream("hevc", annex_b),
                FFMPEG_TIMEOUT,
            )
            .await
        }
        Keyframe::File { path, seconds } => {
            let ffmpeg = find_ffmpeg().ok_or(DecodeError::FfmpegMissing {
                codec: "this file's codec",
            })?;
            ffmpeg_picture(&ffmpeg, FfmpegInput::File(path, seconds), FFMPEG_TIMEOUT).await
        }
    }
}

/// A keyframe for the decoding thread, and where its picture goes.
type H264Job = (
    Vec<u8>,
    tokio::sync::oneshot::Sender<Result<LumaImage, DecodeError>>,
);

/// The one thread that runs OpenH264, started with the first keyframe.
///
/// One long-lived thread rather than tokio's blocking pool: glibc gives each thread its own
/// malloc arena, and the buffers a decoder frees on one pool thread (some 15 MiB at 720p) are
/// not reused by the next decoder on another, so the decoders of sixteen cameras spread over
/// the pool raised the agent's peak RSS far more than one decoder's worth (docs/BENCHMARKS.md,
/// "Snapshots"). One thread also serializes the decodes, which is all two cores can do anyway.
static H264_THREAD: std::sync::OnceLock<
    Option<std::sync::Mutex<std::sync::mpsc::Sender<H264Job>>>,
> = std::sync::OnceLock::new();

fn h264_thread() -> Option<std::sync::mpsc::Sender<H264Job>> {
    let sender = H264_THREAD.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<H264Job>();
        let spawned = std::thread::Builder::new()
            .name("h264-decode".to_owned())
            .spawn(move || {
                for (annex_b, reply) in rx {
                    let result = std::panic::catch_unwind(|| decode_h264(&annex_b))
                        .unwrap_or_else(|_| Err(DecodeError::H264("the decoder panicked".to_owned())));
                    // The camera may have stopped waiting: nobody to tell.
                    let _ = reply.send(result);
                }
            });
        match spawned {
            Ok(_) => Some(std::sync::Mutex::new(tx)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the H.264 decoding thread; using tokio's blocking pool");
                None
            }
        }
    });
    sender
        .as_ref()
        .map(|tx| tx.lock().unwrap_or_else(|p| p.into_inner()).clone())
}

/// Decodes `annex_b` without blocking the runtime: on the decoding thread, or on tokio's
/// blocking pool if that thread could not be started.
async fn decode_h264_off_runtime(annex_b: Vec<u8>) -> Result<LumaImage, DecodeError> {
    let gone = || DecodeError::H264("the decoding thread is gone".to_owned());
    match h264_thread() {
        Some(thread) => {
            let (reply, picture) = tokio::sync::oneshot::channel();
            thread.send((annex_b, reply)).map_err(|_| gone())?;
            picture.await.map_err(|_| gone())?
        }
        None => tokio::task::spawn_blocking(move || decode_h264(&annex_b))
            .await
            .map_err(|e| DecodeError::H264(format!("the decoder panicked: {e}")))?,
    }
}

/// Decodes an H.264 access unit (Annex B, parameter sets included) with a fresh OpenH264
/// decoder and returns its luma plane.
pub fn decode_h264(annex_b: &[u8]) -> Result<LumaImage, DecodeError> {
    use openh264::decoder::Decoder;
    let h264 = |e: openh264::Error| DecodeError::H264(e.to_string());
    let mut decoder = Decoder::new().map_err(h264)?;
    // The whole access unit at once: a keyframe is often several slices (x264's zerolatency
    // tune makes one per thread), and the picture is complete only after the last.
    if let Some(yuv) = decoder.decode(annex_b).map_err(h264)? {
        return luma_of(&yuv);
    }
    // A stream with reordering (B-frames) may hold the picture back until the end.
    let remaining = decoder.flush_remaining().map_err(h264)?;
    remaining
        .last()
        .map_or(Err(DecodeError::NoPicture), luma_of)
}

fn luma_of(yuv: &impl openh264::formats::YUVSource) -> Result<LumaImage, DecodeError> {
    let (width, height) = yuv.dimensions();
    let (stride, _, _) = yuv.strides();
    let view = LumaView::new(width, height, stride, yuv.y())?;
    Ok(LumaImage::from_view(&view))
}

/// `ffmpeg` from `PATH`, if there is one. Looked up at every decode (a few `stat`s a minute)
/// rather than once, so that installing ffmpeg needs no agent restart.
pub fn find_ffmpeg() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("ffmpeg"))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// What ffmpeg reads.
#[derive(Debug)]
pub enum FfmpegInput {
    /// Raw elementary stream bytes of the given ffmpeg demuxer (`hevc`, `h264`), on stdin.
    Stream(&'static str, Vec<u8>),
    /// A media file, and the presentation time of the picture wanted.
    File(PathBuf, f64),
}

/// Runs `ffmpeg` for one greyscale picture of `input`, killing it after `timeout`.
///
/// The picture comes back as PGM rather than `-f rawvideo`: PGM's header carries the width
/// and height, so nothing has to parse the codec's parameter sets to know them.
pub async fn ffmpeg_picture(
    ffmpeg: &Path,
    input: FfmpegInput,
    timeout: Duration,
) -> Result<LumaImage, DecodeError> {
    let mut command = tokio::process::Command::new(ffmpeg);
    command.args(["-hide_banner", "-loglevel", "error"]);
    let stdin_data = match input {
        FfmpegInput::Stream(format, data) => {
            command.args(["-f", format, "-i", "pipe:0"]);
            command.stdin(Stdio::piped());
            Some(data)
        }
        FfmpegInput::File(path, seconds) => {
            // `-ss` before `-i` seeks in the container to the keyframe at or before the time.
            command
                .arg("-nostdin")
                .arg("-ss")
                .arg(format!("{:.3}", seconds.max(0.0)))
                .arg("-i")
                .arg(path);
            command.stdin(Stdio::null());
            None
        }
    };
    command
        .args([
            "-an",
            "-frames:v",
            "1",
            // The decoded Y plane as it is: `-pix_fmt gray` would stretch video range (16..235)
            // to full range, and black would no longer measure as OpenH264's black does.
            "-vf",
            "extractplanes=y",
            "-f",
            "image2pipe",
            "-c:v",
            "pgm",
            "pipe:1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Dropped on timeout or on cancellation: no ffmpeg outlives its picture.
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(DecodeError::FfmpegSpawn)?;
    let run = async {
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        // Written and read at the same time: a large picture fills the pipe before ffmpeg
        // has read all of its input.
        let write = async {
            if let (Some(mut stdin), Some(data)) = (stdin, stdin_data) {
                // ffmpeg may exit before reading everything (a broken stream): its exit status
                // and stderr say why, a broken pipe here says nothing.
                let _ = stdin.write_all(&data).await;
                let _ = stdin.shutdown().await;
            }
        };
        let read_out = async {
            let mut out = Vec::new();
            if let Some(stdout) = stdout.as_mut() {
                let limit = (MAX_PIXELS + 64) as u64;
                stdout.take(limit).read_to_end(&mut out).await.ok();
            }
            out
        };
        let read_err = async {
            let mut err = Vec::new();
            if let Some(stderr) = stderr.as_mut() {
                stderr.take(16 * 1024).read_to_end(&mut err).await.ok();
            }
            err
        };
        let ((), out, err) = tokio::join!(write, read_out, read_err);
        let status = child.wait().await;
        (status, out, err)
    };
    let (status, out, err) = match tokio::time::timeout(timeout, run).await {
        Ok(done) => done,
        Err(_) => {
            // kill() also reaps it.
            let _ = child.kill().await;
            return Err(DecodeError::FfmpegTimeout(timeout));
        }
    };
    let status = status.map_err(DecodeError::FfmpegSpawn)?;
    if !status.success() || out.is_empty() {
        let message = String::from_utf8_lossy(&err);
        let message =
            message
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or(if status.success() {
                    "no picture in its output"
                } else {
                    "no message"
                });
        return Err(DecodeError::Ffmpeg {
            status: status.to_string(),
            message: message.trim().to_owned(),
        });
    }
    parse_pgm(&out)
}

/// Reads a binary greyscale PGM (`P5`, maxval 255), as ffmpeg writes it.
pub fn parse_pgm(data: &[u8]) -> Result<LumaImage, DecodeError> {
    let mut rest = data
        .strip_prefix(b"P5")
        .ok_or(DecodeError::Pgm("no P5 magic"))?;
    let mut fields = [0usize; 3];
    for field in &mut fields {
        // Whitespace and `#` comments, then a decimal number.
        loop {
            match rest.first() {
                Some(b) if b.is_ascii_whitespace() => rest = &rest[1..],
                Some(b'#') => {
                    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                    rest = &rest[end..];
                }
                _ => break,
            }
        }
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return Err(DecodeError::Pgm("bad header number"));
        }
        *field = rest[..digits]
            .iter()
            .fold(0, |n, &d| n * 10 + usize::from(d - b'0'));
        rest = &rest[digits..];
    }
    let [width, height, maxval] = fields;
    if maxval != 255 {
        return Err(DecodeError::Pgm("not 8 bits per pixel"));
    }
    // Exactly one whitespace byte separates the header from the pixels.
    rest = match rest.split_first() {
        Some((b, pixels)) if b.is_ascii_whitespace() => pixels,
        _ => return Err(DecodeError::Pgm("no pixels")),
    };
    let pixels = width
        .checked_mul(height)
        .filter(|&n| n > 0 && n <= MAX_PIXELS)
        .ok_or(DecodeError::Pgm("picture size out of range"))?;
    let plane = rest
        .get(..pixels)
        .ok_or(DecodeError::Pgm("fewer pixels than the header says"))?;
    Ok(LumaImage::new(width, height, plane.to_vec())?)
}

/// The parameter sets in an MP4 `avcC` box, each behind an Annex B start code, and the size of
/// the sample NAL length prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// SPS and PPS NAL units, each after `00 00 00 01`.
    pub parameter_sets: Vec<u8>,
    /// 1, 2 or 4 bytes.
    pub length_size: usize,
}

/// Annex B start code.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Appends the NAL units of a length-prefixed (AVCC) sample to `out`, each after a start
/// code, as OpenH264 and ffmpeg's raw demuxers want them. Fails on a length that runs past
/// the sample (a truncated or corrupt sample).
pub fn avcc_to_annex_b(
    sample: &[u8],
    length_size: usize,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    if !matches!(length_size, 1 | 2 | 4) {
        return Err("NAL length size is not 1, 2 or 4");
    }
    let mut rest = sample;
    while !rest.is_empty() {
        let (prefix, tail) = rest
            .split_at_checked(length_size)
            .ok_or("truncated NAL length")?;
        let len = prefix
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b));
        let nal = tail.get(..len).ok_or("NAL length runs past the sample")?;
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(nal);
        rest = &tail[len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avcc_samples_become_annex_b() {
        let sample = [0, 0, 0, 2, 0x65, 0xAA, 0, 0, 0, 1, 0x41];
        let mut out = Vec::new();
        avcc_to_annex_b(&sample, 4, &mut out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, [0, 0, 0, 1, 0x65, 0xAA, 0, 0, 0, 1, 0x41]);
        let mut two = Vec::new();
        avcc_to_annex_b(&[0, 1, 0x65], 2, &mut two).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(two, [0, 0, 0, 1, 0x65]);
    }

    #[test]
    fn corrupt_avcc_samples_are_errors_not_panics() {
        let cases: [(&[u8], usize, &str); 4] = [
            (&[0, 0, 0, 9, 0x65], 4, "runs past"),
            (&[0, 0], 4, "truncated"),
            (&[1, 0x65], 3, "not 1, 2 or 4"),
            (&[0xFF, 0xFF, 0xFF, 0xFF], 4, "runs past"),
        ];
        for (sample, size, expected) in cases {
            let err = avcc_to_annex_b(sample, size, &mut Vec::new()).err();
            assert!(
                err.is_some_and(|e| e.contains(expected)),
                "{sample:?}: {err:?}"
            );
        }
    }

    #[test]
    fn pgm_pictures_are_read_with_their_size() {
        let mut pgm = b"P5\n3 2\n255\n".to_vec();
        pgm.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        let picture = parse_pgm(&pgm).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((picture.width(), picture.height()), (3, 2));
        let expected =
            LumaImage::new(3, 2, vec![1, 2, 3, 4, 5, 6]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(picture, expected);
        let commented = b"P5 # made by a test\n1 1 255 \x07";
        assert!(parse_pgm(commented).is_ok());
    }

    #[test]
    fn broken_pgm_output_is_an_error_not_a_panic() {
        let cases: [&[u8]; 7] = [
            b"",
            b"P6\n1 1\n255\n\x00\x00\x00",
            b"P5\n3 2\n255\n\x01\x02",
            b"P5\n3 2\n65535\n",
            b"P5\n0 2\n255\n",
            b"P5\n99999 99999\n255\n\x00",
            b"P5\nx 2\n255\n",
        ];
        for case in cases {
            assert!(parse_pgm(case).is_err(), "{case:?}");
        }
    }

    #[test]
    fn garbage_is_not_an_h264_picture() {
        for input in [
            &b""[..],
            &[0, 0, 0, 1, 0x65, 0xFF, 0x00, 0x12][..],
            &[7; 1000][..],
        ] {
            assert!(decode_h264(input).is_err(), "{input:?}");
        }
    }

    /// A stand-in for ffmpeg that never answers.
    fn hanging_ffmpeg(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("ffmpeg");
        std::fs::write(&path, "#!/bin/sh\nexec sleep 30\n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        path
    }

    #[tokio::test]
    async fn an_ffmpeg_that_hangs_is_killed_at_the_timeout() {
        let dir = crate::test_support::temp_dir("ffmpeg-hangs");
        let ffmpeg = hanging_ffmpeg(&dir);
        let started = std::time::Instant::now();
        let result = ffmpeg_picture(
            &ffmpeg,
            FfmpegInput::Stream("hevc", vec![0; 100_000]),
            Duration::from_millis(300),
        )
        .await;
        assert!(
            matches!(result, Err(DecodeError::FfmpegTimeout(_))),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn an_ffmpeg_that_fails_is_reported_with_its_message() {
        let Some(ffmpeg) = find_ffmpeg() else {
            panic!("ffmpeg is missing: apt-get install ffmpeg");
        };
        let result = ffmpeg_picture(
            &ffmpeg,
            FfmpegInput::Stream("hevc", vec![0x42; 4096]),
            FFMPEG_TIMEOUT,
        )
        .await;
        assert!(
            matches!(result, Err(DecodeError::Ffmpeg { .. })),
            "{result:?}"
        );
    }
}
