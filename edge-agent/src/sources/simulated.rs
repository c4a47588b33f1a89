//! `simulated://` sources: synthetic cameras with scripted faults, for demos, load tests and the
//! agent's own tests. No video is made: the source writes frame arrivals of a chosen size and
//! rate into the camera's metrics, exactly as a real source would. When the snapshot sampler
//! asks for a picture, it draws one ([`synthetic_picture`]) of the kind `picture=` names.
//!
//! # URL grammar
//!
//! ```text
//! simulated://?fps=25&size=12500&buffer=0&loss=0&connect=0s&picture=ok&faults=FAULT[,FAULT...]
//!
//! FAULT    := KIND[=VALUE]@START[+DURATION][/EVERY]
//! KIND     := stall | offline | error | stop | restart | slow=FPS | loss=PERCENT | buffer=FRAMES
//! TIME     := NUMBER[ms|s|m|h]          (a bare number is seconds; fractions allowed: 1.5s)
//! ```
//!
//! | parameter | default | meaning |
//! |---|---|---|
//! | `fps` | 25 | frame rate, also declared as the stream's rate |
//! | `size` | 12500 | bytes per frame (12500 B at 25 fps = 2.5 Mbit/s) |
//! | `buffer` | 0 | frames in the buffer |
//! | `loss` | 0 | percent of RTP packets lost (1400-byte packets) |
//! | `connect` | 0s | time spent `starting` before the first frame |
//! | `picture` | ok | what the camera shows: `ok` (a scrolling texture), `black`, `uniform` (flat mid-grey) or `frozen` (a texture that never moves) |
//! | `faults` | none | the script below |
//!
//! Times count from the start of the source. Without `+DURATION` a fault lasts for ever; with
//! `/EVERY` it repeats every `EVERY` (which must be longer than the duration).
//!
//! | fault | what the camera does while it lasts |
//! |---|---|
//! | `stall` | stays connected (`running`) but sends no frames: *starving* |
//! | `offline` | `offline`, error `connection refused (simulated)`; reconnects at the end (a restart) |
//! | `error` | `error`, error `stream error (simulated)`; reconnects at the end |
//! | `stop` | `stopped`, error `end of stream (simulated)`; reconnects at the end |
//! | `restart` | reconnects at `START` (a restart, no downtime); takes no duration |
//! | `slow=F` | sends `F` frames per second instead of `fps` |
//! | `loss=P` | loses `P` % of packets |
//! | `buffer=N` | holds `N` frames in the buffer |
//!
//! When several faults overlap, the strongest wins: `stop` > `error` > `offline` > `stall`;
//! `slow`, `loss` and `buffer` apply on top while the camera runs.
//!
//! Example: `simulated://?fps=25&faults=stall@30s+5s,offline@60s+10s/120s,slow=10@5m` is a
//! 25 fps camera that stalls for 5 s at 30 s, goes offline for 10 s every two minutes from the
//! first minute on, and drops to 10 fps for good after five minutes.
//!
//! Everything is a function of the time since the source started ([`Simulator::advance`] takes
//! `now`), so a test drives a simulated camera to an exact state without sleeping.

use crate::metrics::CameraMetrics;
use crate::picture::LumaImage;
use crate::snapshots::PictureSlot;
use chrono::{DateTime, Utc};
use std::{sync::Arc, time::Duration};
use streamwatch_protocol::CameraStatus;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Bytes of one RTP packet, for the packet-loss accounting.
const PACKET_BYTES: u64 = 1400;
/// At most this much of the past is replayed when `advance` was not called for a while.
const MAX_CATCH_UP: Duration = Duration::from_secs(60);

/// A parsed `simulated://` URL.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedSpec {
    /// Frames per second (also the declared rate).
    pub fps: f64,
    /// Bytes per frame.
    pub frame_bytes: u64,
    /// Frames in the buffer.
    pub buffered: f64,
    /// Percent of packets lost.
    pub loss_pct: f64,
    /// Time spent starting before the first frame.
    pub connect: Duration,
    /// What the camera's pictures show.
    pub picture: PictureKind,
    /// The fault script.
    pub faults: Vec<Fault>,
}

/// What a simulated camera shows (`picture=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PictureKind {
    /// A texture that scrolls sideways, so that every snapshot differs from the one before.
    #[default]
    Ok,
    /// Nearly black (levels 0..5): a covered lens.
    Black,
    /// One flat mid-grey: a cap, a wall, a "no signal" card.
    Uniform,
    /// A texture that never moves: an encoder repeating one image.
    Frozen,
}

impl PictureKind {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ok" => Some(Self::Ok),
            "black" => Some(Self::Black),
            "uniform" => Some(Self::Uniform),
            "frozen" => Some(Self::Frozen),
            _ => None,
        }
    }
}

/// The size of a synthetic picture.
pub const PICTURE_WIDTH: usize = 640;
pub const PICTURE_HEIGHT: usize = 360;
/// Texture blocks, in pixels.
const BLOCK: usize = 16;
/// How fast the `ok` texture scrolls, in pixels per second: 15 blocks between two snapshots
/// taken 5 s apart.
const SCROLL_PX_PER_SECOND: f64 = 48.0;

/// The picture a simulated camera of `kind` shows `elapsed` after it started.
pub fn synthetic_picture(kind: PictureKind, elapsed: Duration) -> Option<LumaImage> {
    let offset = match kind {
        PictureKind::Ok => (elapsed.as_secs_f64() * SCROLL_PX_PER_SECOND) as usize,
        _ => 0,
    };
    let mut data = Vec::with_capacity(PICTURE_WIDTH * PICTURE_HEIGHT);
    for y in 0..PICTURE_HEIGHT {
        for x in 0..PICTURE_WIDTH {
            data.push(match kind {
                PictureKind::Black => (mix(x as u64, y as u64) % 6) as u8,
                PictureKind::Uniform => 128,
                PictureKind::Ok | PictureKind::Frozen => {
                    let level = mix(((x + offset) / BLOCK) as u64, (y / BLOCK) as u64) % 180;
                    40 + level as u8
                }
            });
        }
    }
    // Exactly PICTURE_WIDTH * PICTURE_HEIGHT bytes: always `Some`.
    LumaImage::new(PICTURE_WIDTH, PICTURE_HEIGHT, data).ok()
}

/// A deterministic pseudo-random number for a texture block (splitmix64's finaliser).
fn mix(a: u64, b: u64) -> u64 {
    let mut h = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 30;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

impl Default for SimulatedSpec {
    fn default() -> Self {
        Self {
            fps: 25.0,
            frame_bytes: 12_500,
            buffered: 0.0,
            loss_pct: 0.0,
            connect: Duration::ZERO,
            picture: PictureKind::Ok,
            faults: Vec::new(),
        }
    }
}

/// One scripted fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    /// When it starts, from the start of the source.
    pub start: Duration,
    /// How long it lasts; `None`: for ever.
    pub duration: Option<Duration>,
    /// Repeat period; `None`: once.
    pub every: Option<Duration>,
}

/// What a fault does (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultKind {
    Stall,
    Offline,
    Error,
    Stop,
    Restart,
    Slow(f64),
    Loss(f64),
    Buffer(f64),
}

const FAULT_NAMES: &str = "stall, offline, error, stop, restart, slow, loss, buffer";

impl SimulatedSpec {
    /// Parses `simulated://?...`; the error is one sentence.
    pub fn from_url(url: &Url) -> Result<Self, String> {
        if url.scheme() != "simulated" {
            return Err(format!("not a simulated:// URL: {}", url.scheme()));
        }
        let mut spec = Self::default();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "fps" => spec.fps = number(&value, "fps", 0.0, 1000.0)?,
                "size" => {
                    spec.frame_bytes = value
                        .parse::<u64>()
                        .ok()
                        .filter(|b| (1..=100_000_000).contains(b))
                        .ok_or_else(|| {
                            format!("size must be 1..100000000 bytes, not \"{value}\"")
                        })?;
                }
                "buffer" => spec.buffered = number(&value, "buffer", -1.0, 1e9)?,
                "loss" => spec.loss_pct = number(&value, "loss", -1.0, 100.0)?,
                "connect" => spec.connect = time(&value)?,
                "picture" => {
                    spec.picture = PictureKind::parse(&value).ok_or_else(|| {
                        format!("picture \"{value}\" is not ok, black, uniform or frozen")
                    })?;
                }
                "faults" => {
                    spec.faults = value
                        .split(',')
                        .map(str::trim)
                        .filter(|f| !f.is_empty())
                        .map(parse_fault)
                        .collect::<Result<_, _>>()?;
                }
                other => {
                    return Err(format!(
                        "unknown parameter \"{other}\" (known: fps, size, buffer, loss, connect, picture, faults)"
                    ));
                }
            }
        }
        Ok(spec)
    }

    /// What the camera does `t` after the source started.
    pub fn phase_at(&self, t: Duration) -> Phase {
        let mut phase = Phase {
            status: CameraStatus::Running,
            frames: true,
            rate: self.fps,
            loss_pct: self.loss_pct,
            buffered: self.buffered,
        };
        if t < self.connect {
            phase.status = CameraStatus::Starting;
            phase.frames = false;
            return phase;
        }
        // Strongest first: the first down-fault found decides the status.
        let mut down: Option<(u8, CameraStatus)> = None;
        for fault in self.faults.iter().filter(|f| f.active_at(t)) {
            let candidate = match fault.kind {
                FaultKind::Stop => Some((4, CameraStatus::Stopped)),
                FaultKind::Error => Some((3, CameraStatus::Error)),
                FaultKind::Offline => Some((2, CameraStatus::Offline)),
                FaultKind::Stall => Some((1, CameraStatus::Running)),
                FaultKind::Slow(fps) => {
                    phase.rate = fps.min(self.fps);
                    None
                }
                FaultKind::Loss(pct) => {
                    phase.loss_pct = pct;
                    None
                }
                FaultKind::Buffer(frames) => {
                    phase.buffered = frames;
                    None
                }
                FaultKind::Restart => None,
            };
            if let Some(c) = candidate
                && down.is_none_or(|d| c.0 > d.0)
            {
                down = Some(c);
            }
        }
        if let Some((_, status)) = down {
            phase.status = status;
            phase.frames = false;
        }
        phase
    }

    /// Reconnects (restarts) that happened by `t`, and when the last one was.
    pub fn restarts_by(&self, t: Duration) -> (u64, Option<Duration>) {
        let mut count = 0;
        let mut last = None;
        for fault in &self.faults {
            // A restart happens at the start of a `restart` fault, and at the end of a
            // down-fault (the source reconnects).
            let (offset, counts) = match fault.kind {
                FaultKind::Restart => (Duration::ZERO, true),
                FaultKind::Offline | FaultKind::Error | FaultKind::Stop => match fault.duration {
                    Some(d) => (d, true),
                    None => (Duration::ZERO, false),
                },
                _ => (Duration::ZERO, false),
            };
            if !counts {
                continue;
            }
            let first = fault.start + offset;
            if t < first {
                continue;
            }
            let (n, at) = match fault.every {
                Some(every) if !every.is_zero() => {
                    let k = ((t - first).as_secs_f64() / every.as_secs_f64()).floor() as u64;
                    (k + 1, first + every.mul_f64(k as f64))
                }
                _ => (1, first),
            };
            count += n;
            last = last.max(Some(at));
        }
        (count, last)
    }
}

impl Fault {
    fn active_at(&self, t: Duration) -> bool {
        if t < self.start {
            return false;
        }
        let since = t - self.start;
        let within = |offset: Duration| match self.duration {
            None => true,
            Some(d) => offset < d,
        };
        match self.every {
            Some(every) if !every.is_zero() => {
                let k = (since.as_secs_f64() / every.as_secs_f64()).floor();
                within(since.saturating_sub(every.mul_f64(k)))
            }
            _ => within(since),
        }
    }
}

fn number(text: &str, what: &str, min_exclusive: f64, max: f64) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|v| *v > min_exclusive && *v <= max)
        .ok_or_else(|| {
            format!(
                "{what} must be a number above {min_exclusive} and at most {max}, not \"{text}\""
            )
        })
}

/// `500ms`, `30s`, `2m`, `1h`, `1.5s`, or a bare number of seconds.
fn time(text: &str) -> Result<Duration, String> {
    let (digits, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (text, 1.0)
    };
    digits
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0 && *v * scale <= 1e9)
        .map(|v| Duration::from_secs_f64(v * scale))
        .ok_or_else(|| format!("\"{text}\" is not a time such as 500ms, 30s, 2m or 1h"))
}

fn parse_fault(text: &str) -> Result<Fault, String> {
    // In a query string `+` decodes to a space: take either.
    let owned = text.replace(' ', "+");
    let text = owned.as_str();
    let (what, when) = text.split_once('@').ok_or_else(|| {
        format!("fault \"{text}\" needs a start time: KIND@START, e.g. stall@30s")
    })?;
    let (name, value) = match what.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (what, None),
    };
    let (when, every) = match when.split_once('/') {
        Some((w, e)) => (w, Some(time(e)?)),
        None => (when, None),
    };
    let (start, duration) = match when.split_once('+') {
        Some((s, d)) => (time(s)?, Some(time(d)?)),
        None => (time(when)?, None),
    };
    let value_of = |min: f64, max: f64| -> Result<f64, String> {
        let v = value.ok_or_else(|| format!("fault \"{name}\" needs a value: {name}=N@START"))?;
        number(v, name, min, max)
    };
    let no_value = || match value {
        Some(_) => Err(format!("fault \"{name}\" takes no value")),
        None => Ok(()),
    };
    let kind = match name {
        "stall" => no_value().map(|()| FaultKind::Stall)?,
        "offline" => no_value().map(|()| FaultKind::Offline)?,
        "error" => no_value().map(|()| FaultKind::Error)?,
        "stop" => no_value().map(|()| FaultKind::Stop)?,
        "restart" => {
            no_value()?;
            if duration.is_some() {
                return Err("fault \"restart\" is instantaneous: it takes no +DURATION".to_owned());
            }
            FaultKind::Restart
        }
        "slow" => FaultKind::Slow(value_of(0.0, 1000.0)?),
        "loss" => FaultKind::Loss(value_of(-1.0, 100.0)?),
        "buffer" => FaultKind::Buffer(value_of(-1.0, 1e9)?),
        other => return Err(format!("unknown fault \"{other}\" (known: {FAULT_NAMES})")),
    };
    if let (Some(every), Some(d)) = (every, duration)
        && every <= d
    {
        return Err(format!(
            "fault \"{text}\": the repeat period must be longer than the duration"
        ));
    }
    if every.is_some_and(|e| e.is_zero()) {
        return Err(format!(
            "fault \"{text}\": the repeat period must not be zero"
        ));
    }
    Ok(Fault {
        kind,
        start,
        duration,
        every,
    })
}

/// What the simulated camera is doing at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    pub status: CameraStatus,
    /// Whether frames flow (running and not stalled).
    pub frames: bool,
    /// Frames per second while frames flow.
    pub rate: f64,
    pub loss_pct: f64,
    pub buffered: f64,
}

/// Plays a [`SimulatedSpec`] into a camera's metrics, deterministically in `now`.
#[derive(Debug)]
pub struct Simulator {
    spec: SimulatedSpec,
    started: DateTime<Utc>,
    /// The next frame index on the base grid (frame k is due at k / fps).
    next_frame: u64,
    restarts_applied: u64,
    status_applied: CameraStatus,
    packets_expected: u64,
    packets_lost: u64,
}

impl Simulator {
    /// A simulated camera that starts at `started`.
    pub fn new(spec: SimulatedSpec, started: DateTime<Utc>) -> Self {
        Self {
            spec,
            started,
            next_frame: 0,
            restarts_applied: 0,
            status_applied: CameraStatus::Starting,
            packets_expected: 0,
            packets_lost: 0,
        }
    }

    /// Writes everything that happened up to `now` into `metrics`.
    pub fn advance(&mut self, metrics: &CameraMetrics, now: DateTime<Utc>) {
        let elapsed = (now - self.started).to_std().unwrap_or_default();
        let phase = self.spec.phase_at(elapsed);
        let declared = Some(self.spec.fps);

        let (restarts, _) = self.spec.restarts_by(elapsed);
        while self.restarts_applied < restarts {
            self.restarts_applied += 1;
            metrics.on_restart(now);
            self.status_applied = CameraStatus::Starting;
        }
        if phase.status != self.status_applied {
            match phase.status {
                CameraStatus::Running => metrics.on_connected(now, declared),
                CameraStatus::Offline => {
                    metrics.on_failure(CameraStatus::Offline, "connection refused (simulated)");
                }
                CameraStatus::Error => {
                    metrics.on_failure(CameraStatus::Error, "stream error (simulated)");
                }
                CameraStatus::Stopped => {
                    metrics.on_failure(CameraStatus::Stopped, "end of stream (simulated)");
                }
                CameraStatus::Starting => {}
            }
            self.status_applied = phase.status;
        }
        if phase.status == CameraStatus::Running {
            metrics.set_buffered_frames(phase.buffered);
            metrics.set_processed_fps(if phase.frames { phase.rate } else { 0.0 });
        }
        self.emit_frames(metrics, elapsed);
    }

    /// Frames due up to `elapsed`, on the grid of the base rate, thinned to the phase's rate.
    fn emit_frames(&mut self, metrics: &CameraMetrics, elapsed: Duration) {
        let fps = self.spec.fps;
        let due = (elapsed.as_secs_f64() * fps).floor() as u64 + 1;
        let oldest = ((elapsed.saturating_sub(MAX_CATCH_UP)).as_secs_f64() * fps).floor() as u64;
        self.next_frame = self.next_frame.max(oldest);
        let packets = self.spec.frame_bytes.div_ceil(PACKET_BYTES);
        while self.next_frame < due {
            let k = self.next_frame;
            self.next_frame += 1;
            // Whole nanoseconds, so that frame times are exact for rates like 25 fps.
            let at = Duration::from_nanos((k as f64 * 1e9 / fps).round() as u64);
            let phase = self.spec.phase_at(at);
            if !phase.frames || phase.status != CameraStatus::Running {
                continue;
            }
            if phase.rate < fps {
                // Keep frame k when the thinned count steps up at k.
                let ratio = phase.rate / fps;
                if ((k + 1) as f64 * ratio).floor() <= (k as f64 * ratio).floor() {
                    continue;
                }
            }
            let when = self.started + chrono::Duration::from_std(at).unwrap_or_default();
            metrics.on_frame(when, self.spec.frame_bytes);
            self.packets_expected += packets;
            let lost_total =
                (self.packets_expected as f64 * phase.loss_pct.max(0.0) / 100.0).floor() as u64;
            let lost = lost_total.saturating_sub(self.packets_lost);
            self.packets_lost += lost;
            metrics.on_packets(packets, lost);
        }
    }
}

/// How often the running source wakes up to emit what is due.
fn tick(spec: &SimulatedSpec) -> Duration {
    Duration::from_secs_f64((1.0 / spec.fps).clamp(0.01, 0.1))
}

impl Simulator {
    /// The picture the camera shows at `now`, if it delivers frames then.
    pub fn picture_at(&self, now: DateTime<Utc>) -> Option<LumaImage> {
        let elapsed = (now - self.started).to_std().unwrap_or_default();
        let phase = self.spec.phase_at(elapsed);
        if phase.frames && phase.status == CameraStatus::Running {
            synthetic_picture(self.spec.picture, elapsed)
        } else {
            None
        }
    }
}

/// Runs a simulated camera until `shutdown`, drawing a picture into `pictures` when one is
/// wanted.
pub async fn run(
    spec: SimulatedSpec,
    metrics: CameraMetrics,
    pictures: Arc<PictureSlot>,
    shutdown: CancellationToken,
) {
    let period = tick(&spec);
    let mut simulator = Simulator::new(spec, Utc::now());
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {
                let now = Utc::now();
                simulator.advance(&metrics, now);
                if pictures.wanted()
                    && let Some(picture) = simulator.picture_at(now)
                {
                    pictures.offer(picture);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn spec(url: &str) -> SimulatedSpec {
        let url = Url::parse(url).unwrap_or_else(|e| panic!("{e}"));
        SimulatedSpec::from_url(&url).unwrap_or_else(|e| panic!("{e}"))
    }

    fn error(url: &str) -> String {
        let url = Url::parse(url).unwrap_or_else(|e| panic!("{e}"));
        SimulatedSpec::from_url(&url)
            .err()
            .unwrap_or_else(|| panic!("should fail"))
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn t0() -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000, 0)
            .single()
            .unwrap_or_else(|| panic!("time"))
    }

    fn at(s: f64) -> DateTime<Utc> {
        t0() + chrono::Duration::milliseconds((s * 1000.0).round() as i64)
    }

    #[test]
    fn a_bare_url_is_a_healthy_25_fps_camera() {
        let s = spec("simulated://");
        assert_eq!(s, SimulatedSpec::default());
        assert_eq!(spec("simulated://?fps=12.5").fps, 12.5);
    }

    #[test]
    fn the_fault_grammar_parses() {
        let s = spec(
            "simulated://?fps=10&faults=stall@30s+5s,offline@1m+10s/2m,slow=5@500ms,restart@1h,loss=2.5@0",
        );
        assert_eq!(
            s.faults,
            vec![
                Fault {
                    kind: FaultKind::Stall,
                    start: secs(30.0),
                    duration: Some(secs(5.0)),
                    every: None
                },
                Fault {
                    kind: FaultKind::Offline,
                    start: secs(60.0),
                    duration: Some(secs(10.0)),
                    every: Some(secs(120.0))
                },
                Fault {
                    kind: FaultKind::Slow(5.0),
                    start: secs(0.5),
                    duration: None,
                    every: None
                },
                Fault {
                    kind: FaultKind::Restart,
                    start: secs(3600.0),
                    duration: None,
                    every: None
                },
                Fault {
                    kind: FaultKind::Loss(2.5),
                    start: Duration::ZERO,
                    duration: None,
                    every: None
                },
            ]
        );
    }

    #[test]
    fn bad_fault_scripts_are_explained() {
        let cases = [
            (
                "simulated://?faults=explode@3s",
                "unknown fault \"explode\" (known: stall, offline, error, stop, restart, slow, loss, buffer)",
            ),
            (
                "simulated://?faults=stall",
                "fault \"stall\" needs a start time: KIND@START, e.g. stall@30s",
            ),
            (
                "simulated://?faults=stall@soon",
                "\"soon\" is not a time such as 500ms, 30s, 2m or 1h",
            ),
            (
                "simulated://?faults=slow@3s",
                "fault \"slow\" needs a value: slow=N@START",
            ),
            (
                "simulated://?faults=stall=3@3s",
                "fault \"stall\" takes no value",
            ),
            (
                "simulated://?faults=restart@3s+1s",
                "fault \"restart\" is instantaneous: it takes no +DURATION",
            ),
            (
                "simulated://?faults=offline@0+10s/5s",
                "fault \"offline@0+10s/5s\": the repeat period must be longer than the duration",
            ),
            (
                "simulated://?fps=0",
                "fps must be a number above 0 and at most 1000, not \"0\"",
            ),
            (
                "simulated://?color=red",
                "unknown parameter \"color\" (known: fps, size, buffer, loss, connect, picture, faults)",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(error(url), expected, "{url}");
        }
    }

    #[test]
    fn overlapping_faults_resolve_to_the_strongest() {
        let s =
            spec("simulated://?faults=stall@0+10s,offline@2s+2s,stop@3s+0.5s,slow=5@0,buffer=7@0");
        assert_eq!(s.phase_at(secs(1.0)).status, CameraStatus::Running);
        assert!(!s.phase_at(secs(1.0)).frames, "stalled");
        assert_eq!(s.phase_at(secs(2.5)).status, CameraStatus::Offline);
        assert_eq!(s.phase_at(secs(3.2)).status, CameraStatus::Stopped);
        assert_eq!(s.phase_at(secs(12.0)).status, CameraStatus::Running);
        assert!(s.phase_at(secs(12.0)).frames);
        assert_eq!(s.phase_at(secs(12.0)).rate, 5.0);
        assert_eq!(s.phase_at(secs(12.0)).buffered, 7.0);
    }

    #[test]
    fn repeating_faults_come_back_every_period_and_count_restarts() {
        let s = spec("simulated://?faults=offline@10s+2s/10s");
        assert_eq!(s.phase_at(secs(9.9)).status, CameraStatus::Running);
        assert_eq!(s.phase_at(secs(11.0)).status, CameraStatus::Offline);
        assert_eq!(s.phase_at(secs(13.0)).status, CameraStatus::Running);
        assert_eq!(s.phase_at(secs(21.0)).status, CameraStatus::Offline);
        assert_eq!(s.restarts_by(secs(11.0)), (0, None));
        assert_eq!(s.restarts_by(secs(12.0)), (1, Some(secs(12.0))));
        assert_eq!(s.restarts_by(secs(25.0)), (2, Some(secs(22.0))));
    }

    #[test]
    fn a_simulated_camera_writes_its_frames_into_the_metrics() {
        let metrics = CameraMetrics::new();
        let mut sim = Simulator::new(spec("simulated://?fps=25&size=1000&buffer=2"), t0());
        sim.advance(&metrics, at(0.0));
        sim.advance(&metrics, at(10.0));
        let s = metrics.snapshot(at(10.0));
        assert_eq!(s.status, CameraStatus::Running);
        assert_eq!(s.frames_total, 251, "frames 0..=250 of 10 s at 25 fps");
        assert_eq!(s.declared_fps, Some(25.0));
        assert_eq!(s.received_fps, 25.2, "126 frames in the 5 s window");
        assert_eq!(s.buffered_frames, 2.0);
        assert_eq!(s.packet_loss_pct, 0.0);
        assert_eq!(s.last_frame_at, Some(at(10.0)));
    }

    #[test]
    fn slow_faults_thin_the_frames_to_their_rate() {
        let metrics = CameraMetrics::new();
        let mut sim = Simulator::new(spec("simulated://?fps=25&faults=slow=10@0"), t0());
        sim.advance(&metrics, at(0.0));
        sim.advance(&metrics, at(9.999));
        let s = metrics.snapshot(at(9.999));
        assert!((s.received_fps - 10.0).abs() <= 0.2, "{}", s.received_fps);
    }

    #[test]
    fn an_offline_window_fails_the_camera_and_its_end_counts_a_restart() {
        let metrics = CameraMetrics::new();
        let mut sim = Simulator::new(spec("simulated://?faults=offline@2s+3s"), t0());
        sim.advance(&metrics, at(0.0));
        sim.advance(&metrics, at(3.0));
        let s = metrics.snapshot(at(3.0));
        assert_eq!(s.status, CameraStatus::Offline);
        assert_eq!(
            s.last_error.as_deref(),
            Some("connection refused (simulated)")
        );
        sim.advance(&metrics, at(6.0));
        let s = metrics.snapshot(at(6.0));
        assert_eq!(s.status, CameraStatus::Running);
        assert_eq!(s.restart_count, 1);
        assert_eq!(s.last_restart_at, Some(at(6.0)));
    }

    #[test]
    fn a_stall_keeps_the_camera_running_without_frames() {
        let metrics = CameraMetrics::new();
        let mut sim = Simulator::new(spec("simulated://?faults=stall@1s"), t0());
        sim.advance(&metrics, at(0.0));
        sim.advance(&metrics, at(6.0));
        let s = metrics.snapshot(at(6.0));
        assert_eq!(s.status, CameraStatus::Running);
        assert_eq!(s.last_frame_at, Some(at(0.96)));
    }

    #[test]
    fn loss_is_reported_as_a_share_of_packets() {
        let metrics = CameraMetrics::new();
        let mut sim = Simulator::new(spec("simulated://?size=14000&loss=5"), t0());
        sim.advance(&metrics, at(0.0));
        sim.advance(&metrics, at(4.0));
        let loss = metrics.snapshot(at(4.0)).packet_loss_pct;
        assert!((loss - 5.0).abs() < 0.1, "{loss}");
    }

    #[test]
    fn the_picture_parameter_names_what_the_camera_shows() {
        assert_eq!(spec("simulated://").picture, PictureKind::Ok);
        for (name, kind) in [
            ("ok", PictureKind::Ok),
            ("black", PictureKind::Black),
            ("uniform", PictureKind::Uniform),
            ("frozen", PictureKind::Frozen),
        ] {
            assert_eq!(
                spec(&format!("simulated://?fps=25&picture={name}")).picture,
                kind
            );
        }
        assert_eq!(
            error("simulated://?picture=blurry"),
            "picture \"blurry\" is not ok, black, uniform or frozen"
        );
    }

    /// Each synthetic picture, checked every 5 s like the shortest snapshot interval, lands in
    /// the state it is named after.
    #[test]
    fn synthetic_pictures_classify_as_their_kind() {
        use crate::picture::{Classifier, PictureSettings};
        use streamwatch_protocol::PictureState;
        let cases = [
            (PictureKind::Ok, PictureState::Ok),
            (PictureKind::Black, PictureState::Black),
            (PictureKind::Uniform, PictureState::Uniform),
            (PictureKind::Frozen, PictureState::Frozen),
        ];
        for (kind, expected) in cases {
            let mut classifier = Classifier::new(PictureSettings {
                frozen_after: Duration::from_secs(5),
                ..PictureSettings::default()
            });
            let mut state = None;
            for k in 0..3u64 {
                let picture = synthetic_picture(kind, secs(5.0 * k as f64 + 0.37))
                    .unwrap_or_else(|| panic!("a picture"));
                assert_eq!((picture.width(), picture.height()), (640, 360));
                let view = picture.view();
                state = Some(classifier.observe(at(5.0 * k as f64), Some(&view)).state);
            }
            assert_eq!(state, Some(expected), "{kind:?}");
        }
    }

    #[test]
    fn a_camera_shows_a_picture_only_while_frames_flow() {
        let metrics = CameraMetrics::new();
        let mut sim = Simulator::new(
            spec("simulated://?picture=black&faults=offline@2s+3s"),
            t0(),
        );
        sim.advance(&metrics, at(1.0));
        assert!(sim.picture_at(at(1.0)).is_some());
        sim.advance(&metrics, at(3.0));
        assert_eq!(sim.picture_at(at(3.0)), None, "offline");
        let connecting = Simulator::new(spec("simulated://?connect=2s"), t0());
        assert_eq!(connecting.picture_at(at(1.0)), None, "starting");
    }

    #[test]
    fn a_connect_delay_keeps_the_camera_starting() {
        let metrics = CameraMetrics::new();
        let mut sim = Simulator::new(spec("simulated://?connect=2s"), t0());
        sim.advance(&metrics, at(1.0));
        assert_eq!(metrics.snapshot(at(1.0)).status, CameraStatus::Starting);
        assert_eq!(metrics.snapshot(at(1.0)).frames_total, 0);
        sim.advance(&metrics, at(2.5));
        assert_eq!(metrics.snapshot(at(2.5)).status, CameraStatus::Running);
    }
}
