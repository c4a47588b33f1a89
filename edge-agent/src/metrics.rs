//! What a source measures about its camera, shared between the source task (which writes) and
//! the heartbeat, health and local API code (which reads snapshots).
//!
//! Sources call the `on_*` methods; readers call [`CameraMetrics::snapshot`]. Everything is
//! behind one small mutex per camera, held for microseconds, never across an await.

use chrono::{DateTime, Utc};
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};
use streamwatch_protocol::CameraStatus;

/// Frames older than this fall out of the fps and bitrate window.
pub const WINDOW: Duration = Duration::from_secs(5);
const WINDOW_DELTA: chrono::TimeDelta = chrono::TimeDelta::seconds(WINDOW.as_secs() as i64);

/// A point-in-time copy of one camera's measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub status: CameraStatus,
    /// Frames per second received over the sliding window; -1 unknown.
    pub received_fps: f64,
    /// Frames per second handed on (processed); -1 unknown.
    pub processed_fps: f64,
    /// The stream's declared frame rate (SDP / container), if it has one.
    pub declared_fps: Option<f64>,
    /// kbit/s over the sliding window; -1 unknown.
    pub bitrate_kbps: f64,
    /// Frames received but not yet handed on; -1 unknown.
    pub buffered_frames: f64,
    pub frames_total: u64,
    pub bytes_total: u64,
    pub last_frame_at: Option<DateTime<Utc>>,
    /// Lost RTP packets as a percentage of expected ones; -1 unknown.
    pub packet_loss_pct: f64,
    /// RTP interarrival jitter in milliseconds (RFC 3550); -1 unknown.
    pub jitter_ms: f64,
    pub started_at: Option<DateTime<Utc>>,
    pub restart_count: u64,
    pub last_restart_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// File sources: seconds processed and total; -1 otherwise.
    pub processed_seconds: f64,
    pub total_seconds: f64,
}

#[derive(Debug)]
struct Inner {
    snapshot: Snapshot,
    /// (arrival time, bytes) of the frames in the window.
    window: VecDeque<(DateTime<Utc>, u64)>,
    lost_packets: u64,
    expected_packets: u64,
    /// When the source last connected: right after a (re)connect the window is not full yet,
    /// and fps over the whole window would read low.
    connected_at: Option<DateTime<Utc>>,
    /// Set by [`CameraMetrics::replace`]: the snapshot's fps and bitrate came from elsewhere (a
    /// relayed engine) and must not be recomputed from the (empty) frame window.
    replaced: bool,
}

impl Inner {
    fn frame(&mut self, now: DateTime<Utc>, bytes: u64) {
        self.replaced = false;
        // `snapshot` trims the window too, but nothing guarantees that someone asks for one:
        // trimming here keeps the window bounded (twice its span, so that a snapshot taken a
        // little before the newest frame still counts everything it should).
        let horizon = now - WINDOW_DELTA * 2;
        while self.window.front().is_some_and(|(t, _)| *t < horizon) {
            self.window.pop_front();
        }
        self.window.push_back((now, bytes));
        self.snapshot.frames_total += 1;
        self.snapshot.bytes_total += bytes;
        self.snapshot.last_frame_at = Some(now);
    }

    fn packets(&mut self, expected: u64, lost: u64) {
        self.expected_packets += expected;
        self.lost_packets += lost;
        if self.expected_packets > 0 {
            self.snapshot.packet_loss_pct =
                100.0 * self.lost_packets as f64 / self.expected_packets as f64;
        }
    }
}

/// One camera's measurements. Cheap to clone (an `Arc`).
#[derive(Debug, Clone)]
pub struct CameraMetrics(Arc<Mutex<Inner>>);

impl Default for CameraMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Snapshot {
    /// A camera that has not measured anything yet: starting, every number unknown (-1).
    pub fn starting() -> Self {
        Self {
            status: CameraStatus::Starting,
            received_fps: -1.0,
            processed_fps: -1.0,
            declared_fps: None,
            bitrate_kbps: -1.0,
            buffered_frames: -1.0,
            frames_total: 0,
            bytes_total: 0,
            last_frame_at: None,
            packet_loss_pct: -1.0,
            jitter_ms: -1.0,
            started_at: None,
            restart_count: 0,
            last_restart_at: None,
            last_error: None,
            processed_seconds: -1.0,
            total_seconds: -1.0,
        }
    }
}

impl CameraMetrics {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(Inner {
            snapshot: Snapshot::starting(),
            window: VecDeque::new(),
            lost_packets: 0,
            expected_packets: 0,
            connected_at: None,
            replaced: false,
        })))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner)
    }

    /// The source (re)connected and is now `running` (frames may or may not flow).
    pub fn on_connected(&self, now: DateTime<Utc>, declared_fps: Option<f64>) {
        self.with(|i| {
            i.connected_at = Some(now);
            let s = &mut i.snapshot;
            s.status = CameraStatus::Running;
            s.declared_fps = declared_fps.or(s.declared_fps);
            if s.started_at.is_none() {
                s.started_at = Some(now);
            }
        });
    }

    /// One frame (access unit) of `bytes` arrived at `now`.
    pub fn on_frame(&self, now: DateTime<Utc>, bytes: u64) {
        self.with(|i| i.frame(now, bytes));
    }

    /// RTP accounting: `expected` packets, of which `lost` never arrived.
    pub fn on_packets(&self, expected: u64, lost: u64) {
        self.with(|i| i.packets(expected, lost));
    }

    /// What an RTP source learnt from one packet that closed frames: the frames' sizes (`frames`,
    /// usually one), the packets since its last call and the jitter estimate. The same as
    /// [`on_frame`](Self::on_frame) per frame, [`on_packets`](Self::on_packets) and
    /// [`set_jitter_ms`](Self::set_jitter_ms), under one lock instead of three: it runs once per
    /// frame for every camera.
    pub fn on_rtp_frames(
        &self,
        now: DateTime<Utc>,
        frames: impl IntoIterator<Item = u64>,
        (expected, lost): (u64, u64),
        jitter_ms: f64,
    ) {
        self.with(|i| {
            for bytes in frames {
                i.frame(now, bytes);
            }
            i.packets(expected, lost);
            i.snapshot.jitter_ms = jitter_ms;
        });
    }

    pub fn set_jitter_ms(&self, jitter_ms: f64) {
        self.with(|i| i.snapshot.jitter_ms = jitter_ms);
    }

    pub fn set_buffered_frames(&self, frames: f64) {
        self.with(|i| i.snapshot.buffered_frames = frames);
    }

    pub fn set_processed_fps(&self, fps: f64) {
        self.with(|i| i.snapshot.processed_fps = fps);
    }

    pub fn set_file_progress(&self, processed_seconds: f64, total_seconds: f64) {
        self.with(|i| {
            i.snapshot.processed_seconds = processed_seconds;
            i.snapshot.total_seconds = total_seconds;
        });
    }

    /// The source failed or lost its connection: status (`offline`, `error` or `stopped`)
    /// and the reason.
    pub fn on_failure(&self, status: CameraStatus, error: impl Into<String>) {
        self.with(|i| {
            i.snapshot.status = status;
            i.snapshot.last_error = Some(error.into());
            i.window.clear();
        });
    }

    /// The source is about to reconnect after a failure or a stall.
    pub fn on_restart(&self, now: DateTime<Utc>) {
        self.with(|i| {
            i.snapshot.restart_count += 1;
            i.snapshot.last_restart_at = Some(now);
            i.snapshot.status = CameraStatus::Starting;
        });
    }

    /// When the source last connected (`on_connected`); `None` before that or for relayed
    /// snapshots. Right after a connect there are too few frames to measure a rate.
    pub fn connected_at(&self) -> Option<DateTime<Utc>> {
        self.with(|i| if i.replaced { None } else { i.connected_at })
    }

    /// Sets every reported field at once (relay and simulated sources).
    pub fn replace(&self, snapshot: Snapshot) {
        self.with(|i| {
            i.snapshot = snapshot;
            i.replaced = true;
            i.window.clear();
        });
    }

    /// The measurements as of `now`, with fps and bitrate over the sliding window.
    pub fn snapshot(&self, now: DateTime<Utc>) -> Snapshot {
        self.with(|i| {
            let horizon = now - WINDOW_DELTA;
            while i.window.front().is_some_and(|(t, _)| *t < horizon) {
                i.window.pop_front();
            }
            let mut s = i.snapshot.clone();
            if !i.replaced && (s.status == CameraStatus::Running || !i.window.is_empty()) {
                // Over the part of the window since the last connect (at least a second).
                let since_connect = i
                    .connected_at
                    .and_then(|c| (now - c).to_std().ok())
                    .unwrap_or(WINDOW);
                let secs = since_connect
                    .clamp(Duration::from_secs(1), WINDOW)
                    .as_secs_f64();
                s.received_fps = i.window.len() as f64 / secs;
                let bytes: u64 = i.window.iter().map(|(_, b)| *b).sum();
                s.bitrate_kbps = bytes as f64 * 8.0 / 1000.0 / secs;
            }
            s
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fps_and_bitrate_come_from_the_sliding_window() {
        let m = CameraMetrics::new();
        let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        m.on_connected(t0, Some(25.0));
        for k in 0..125 {
            m.on_frame(t0 + chrono::Duration::milliseconds(40 * k), 1000);
        }
        let s = m.snapshot(t0 + chrono::Duration::seconds(5));
        assert!((s.received_fps - 25.0).abs() < 0.5, "{}", s.received_fps);
        assert!((s.bitrate_kbps - 200.0).abs() < 5.0, "{}", s.bitrate_kbps);
        assert_eq!(s.frames_total, 125);
        // Ten seconds later without frames the window is empty.
        let later = m.snapshot(t0 + chrono::Duration::seconds(15));
        assert_eq!(later.received_fps, 0.0);
    }

    #[test]
    fn one_rtp_call_records_what_the_three_separate_calls_do() {
        let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let (one, three) = (CameraMetrics::new(), CameraMetrics::new());
        for m in [&one, &three] {
            m.on_connected(t0, Some(25.0));
        }
        for k in 0..50 {
            let now = t0 + chrono::Duration::milliseconds(40 * k);
            one.on_rtp_frames(now, [1000, 200], (8, 1), 0.5 + k as f64);
            three.on_frame(now, 1000);
            three.on_frame(now, 200);
            three.on_packets(8, 1);
            three.set_jitter_ms(0.5 + k as f64);
        }
        let later = t0 + chrono::Duration::seconds(2);
        let snapshot = one.snapshot(later);
        assert_eq!(snapshot, three.snapshot(later));
        assert_eq!((snapshot.frames_total, snapshot.bytes_total), (100, 60_000));
        assert!((snapshot.packet_loss_pct - 12.5).abs() < 1e-9);
        assert_eq!(snapshot.jitter_ms, 49.5);
    }

    #[test]
    fn the_window_stays_bounded_when_nobody_takes_snapshots() {
        let m = CameraMetrics::new();
        let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        m.on_connected(t0, Some(25.0));
        // An hour of 25 fps without a single snapshot.
        for k in 0..90_000 {
            m.on_frame(t0 + chrono::Duration::milliseconds(40 * k), 1000);
        }
        let held = m.with(|i| i.window.len());
        assert!(held <= 2 * 5 * 25 + 1, "{held} frames held");
        // A snapshot still sees the last WINDOW in full.
        let end = t0 + chrono::Duration::milliseconds(40 * 90_000);
        assert!((m.snapshot(end).received_fps - 25.0).abs() < 0.5);
    }

    #[test]
    fn failures_and_restarts_are_counted() {
        let m = CameraMetrics::new();
        let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        m.on_failure(CameraStatus::Offline, "connection refused");
        m.on_restart(t0);
        let s = m.snapshot(t0);
        assert_eq!((s.restart_count, s.status), (1, CameraStatus::Starting));
        assert_eq!(s.last_error.as_deref(), Some("connection refused"));
        m.on_packets(100, 2);
        assert!((m.snapshot(t0).packet_loss_pct - 2.0).abs() < 1e-9);
    }

    #[test]
    fn fps_right_after_a_connect_is_measured_over_the_time_since_the_connect() {
        let m = CameraMetrics::new();
        let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        m.on_connected(t0, None);
        for k in 0..50 {
            m.on_frame(t0 + chrono::Duration::milliseconds(40 * k), 1000);
        }
        let s = m.snapshot(t0 + chrono::Duration::seconds(2));
        assert!((s.received_fps - 25.0).abs() < 0.5, "{}", s.received_fps);
    }

    #[test]
    fn a_replaced_snapshot_keeps_the_rates_it_was_given() {
        let m = CameraMetrics::new();
        let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let mut relayed = m.snapshot(t0);
        relayed.status = CameraStatus::Running;
        relayed.received_fps = 12.5;
        m.replace(relayed);
        assert_eq!(
            m.snapshot(t0 + chrono::Duration::seconds(1)).received_fps,
            12.5
        );
    }
}
