//! The configured cameras and how each is seen at one moment: its metrics snapshot turned into
//! the health, liveness and shapes that heartbeats, the local API and webhooks share.
//!
//! Every reader goes through [`CameraEntry::observe`], so the heartbeat, `/status/` and the
//! webhook events of one moment agree.

use crate::config::Camera;
use crate::health::{self, Condition, FpsHistory, HealthInputs};
use crate::metrics::{CameraMetrics, Snapshot};
use crate::snapshots::CameraPicture;
use crate::webhooks::WebhookBoard;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use streamwatch_protocol::{
    CameraReport, EdgeCamera, EdgeStatus, FileProcessing, PictureReport, StreamStatus,
    WebhookReport,
};

/// The longest `last_error` the server keeps.
const MAX_ERROR_CHARS: usize = 1024;

/// One configured camera with its live measurements.
#[derive(Debug)]
pub struct CameraEntry {
    pub config: Camera,
    pub metrics: CameraMetrics,
    /// Picture health and the latest snapshot, written by the camera's sampler.
    pub picture: Arc<CameraPicture>,
    /// Received-fps samples for the median fallback of the expected rate.
    history: Mutex<FpsHistory>,
}

/// A camera at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub at: DateTime<Utc>,
    pub snapshot: Snapshot,
    pub expected_fps: Option<f64>,
    pub is_live: bool,
    pub health: i32,
    pub condition: Condition,
    /// The latest picture check; `None` before the first and for relayed cameras.
    pub picture: Option<PictureReport>,
}

/// One camera in the agent's `GET /status/`: the established fields, in their order, then the
/// agent's own additions (absent when unknown, so that the established bytes stay as they
/// were).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusCamera {
    #[serde(flatten)]
    pub camera: EdgeCamera,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<PictureReport>,
}

/// The agent's `GET /status/`: [`EdgeStatus`] with [`StatusCamera`]s.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusDocument {
    pub version: String,
    pub cameras: BTreeMap<String, StatusCamera>,
}

impl StatusDocument {
    /// The same rule as [`EdgeStatus::all_functional`]: the 200/500 of `/status/`.
    pub fn all_functional(&self) -> bool {
        self.cameras
            .values()
            .all(|c| c.camera.status.is_functional())
    }
}

impl CameraEntry {
    pub fn new(config: Camera) -> Self {
        Self {
            config,
            metrics: CameraMetrics::new(),
            picture: Arc::default(),
            history: Mutex::default(),
        }
    }

    /// Whether the camera's source can ever hand over a picture: a relayed engine's
    /// `/status/` carries none, so such a camera gets no sampler and no `picture`.
    pub fn takes_snapshots(&self) -> bool {
        !matches!(
            self.config.source,
            crate::config::Source::StreamStatus { .. }
        )
    }

    /// The camera as of `now` (and one received-fps sample for its history).
    pub fn observe(&self, now: DateTime<Utc>) -> Observation {
        let snapshot = self.metrics.snapshot(now);
        let median = {
            let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
            if snapshot.status == streamwatch_protocol::CameraStatus::Running {
                history.record(now, snapshot.received_fps);
            }
            history.median(now)
        };
        let expected_fps =
            health::expected_fps(self.config.expected_fps, snapshot.declared_fps, median);
        let is_live = health::is_live(snapshot.last_frame_at, now);
        let measuring = snapshot.status == streamwatch_protocol::CameraStatus::Running
            && health::is_measuring(self.metrics.connected_at(), now);
        let health = if measuring {
            -1
        } else {
            health::score(&HealthInputs {
                status: snapshot.status,
                received_fps: snapshot.received_fps,
                expected_fps,
                buffered_frames: snapshot.buffered_frames,
                packet_loss_pct: snapshot.packet_loss_pct,
                restarted_recently: health::restarted_recently(snapshot.last_restart_at, now),
                is_live,
            })
        };
        let condition = if measuring {
            Condition::Starting
        } else {
            Condition::of(snapshot.status, is_live, health)
        };
        Observation {
            at: now,
            condition,
            snapshot,
            expected_fps,
            is_live,
            health,
            picture: self.picture.report(),
        }
    }

    /// The camera's entry in a heartbeat.
    pub fn report(&self, o: &Observation, webhooks: WebhookReport) -> CameraReport {
        let s = &o.snapshot;
        let relayed = matches!(
            self.config.source,
            crate::config::Source::StreamStatus { .. }
        );
        CameraReport {
            status: s.status,
            health: o.health,
            url: Some(self.config.display_url()),
            source: Some(self.config.source.kind().to_owned()),
            received_fps: rate(s.received_fps),
            expected_fps: o.expected_fps.map_or(-1.0, rate),
            processed_fps: rate(s.processed_fps),
            buffered_frames: round2(s.buffered_frames),
            bitrate_kbps: round2(s.bitrate_kbps),
            is_live: o.is_live,
            last_frame_at: s.last_frame_at,
            bytes_received: if relayed {
                -1
            } else {
                i64::try_from(s.bytes_total).unwrap_or(i64::MAX)
            },
            packet_loss_pct: if s.packet_loss_pct < 0.0 {
                -1.0
            } else {
                round2(s.packet_loss_pct.min(100.0))
            },
            jitter_ms: round2(s.jitter_ms),
            started_at: s.started_at,
            restart_count: i64::try_from(s.restart_count)
                .unwrap_or(i64::MAX)
                .min(i64::from(i32::MAX)),
            last_restart_at: s.last_restart_at,
            last_error: s
                .last_error
                .as_ref()
                .map(|e| e.chars().take(MAX_ERROR_CHARS).collect()),
            file_processing: file_processing(s),
            webhooks,
            timezone: self
                .config
                .timezone_configured
                .then(|| self.config.timezone.name().to_owned()),
            picture: o.picture.clone(),
        }
    }

    /// The camera's entry in `/status/`: `last_checked` is the observation time in the camera's
    /// timezone.
    pub fn edge_camera(&self, o: &Observation) -> EdgeCamera {
        EdgeCamera {
            health: o.health,
            status: o.snapshot.status,
            last_checked: streamwatch_protocol::format_last_checked(
                &o.at.with_timezone(&self.config.timezone),
            ),
            received_fps: rate(o.snapshot.received_fps),
            buffered_frames: round2(o.snapshot.buffered_frames),
            file_processing: file_processing(&o.snapshot),
        }
    }

    /// The camera's entry in the agent's own `/status/`: [`Self::edge_camera`] and its picture.
    pub fn status_camera(&self, o: &Observation) -> StatusCamera {
        StatusCamera {
            camera: self.edge_camera(o),
            picture: o.picture.clone(),
        }
    }

    /// The camera's `/api/streams/{id}/status`.
    pub fn stream_status(&self, o: &Observation) -> StreamStatus {
        StreamStatus {
            is_live: o.is_live,
            bitrate: round2(o.snapshot.bitrate_kbps),
            last_frame_time: o.snapshot.last_frame_at.map_or(0, |t| t.timestamp()),
        }
    }
}

fn file_processing(s: &Snapshot) -> FileProcessing {
    FileProcessing {
        processed_seconds: round2(s.processed_seconds),
        total_seconds: round2(s.total_seconds),
    }
}

/// Two decimals; unknown (negative) stays `-1`.
fn round2(v: f64) -> f64 {
    if v < 0.0 || !v.is_finite() {
        -1.0
    } else {
        (v * 100.0).round() / 100.0
    }
}

/// A frame rate: two decimals, within the protocol's 0..1000.
fn rate(v: f64) -> f64 {
    round2(v).min(1000.0)
}

/// Every configured camera, in configuration order, and the webhook board they report from.
#[derive(Debug)]
pub struct Cameras {
    pub entries: Vec<CameraEntry>,
    pub board: Arc<WebhookBoard>,
}

impl Cameras {
    pub fn new(cameras: Vec<Camera>, board: Arc<WebhookBoard>) -> Self {
        Self {
            entries: cameras.into_iter().map(CameraEntry::new).collect(),
            board,
        }
    }

    pub fn get(&self, id: &str) -> Option<&CameraEntry> {
        self.entries.iter().find(|e| e.config.id == id)
    }

    /// Every camera's heartbeat entry as of `now`.
    pub fn reports(&self, now: DateTime<Utc>) -> BTreeMap<String, CameraReport> {
        self.entries
            .iter()
            .map(|e| {
                let o = e.observe(now);
                (
                    e.config.id.clone(),
                    e.report(&o, self.board.report(&e.config.id)),
                )
            })
            .collect()
    }

    /// The agent's `GET /status/` as of `now`: the established shape plus each camera's
    /// `picture`.
    pub fn status(&self, now: DateTime<Utc>, version: &str) -> StatusDocument {
        StatusDocument {
            version: version.to_owned(),
            cameras: self
                .entries
                .iter()
                .map(|e| (e.config.id.clone(), e.status_camera(&e.observe(now))))
                .collect(),
        }
    }

    /// `GET /status/` as of `now`, in the established shape only.
    pub fn edge_status(&self, now: DateTime<Utc>, version: &str) -> EdgeStatus {
        EdgeStatus {
            version: version.to_owned(),
            cameras: self
                .entries
                .iter()
                .map(|e| (e.config.id.clone(), e.edge_camera(&e.observe(now))))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use chrono::TimeZone;
    use streamwatch_protocol::CameraStatus;

    fn camera(extra: &str) -> CameraEntry {
        let text = format!(
            "[central]\nurl = \"http://h\"\ntoken = \"t\"\n[[camera]]\nid = \"c\"\nurl = \"rtsp://user:pw@10.0.0.5/s\"\n{extra}\n"
        );
        let config = Config::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        CameraEntry::new(config.cameras[0].clone())
    }

    fn t(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_800_000_000_000 + ms)
            .single()
            .unwrap_or_else(|| panic!("time"))
    }

    #[test]
    fn a_starting_camera_reports_unknowns() {
        let c = camera("");
        let o = c.observe(t(0));
        let r = c.report(&o, WebhookReport::default());
        assert_eq!(r.status, CameraStatus::Starting);
        assert_eq!(r.health, -1);
        assert_eq!(
            r.url.as_deref(),
            Some("rtsp://10.0.0.5/s"),
            "credentials stripped"
        );
        assert_eq!(r.source.as_deref(), Some("rtsp"));
        assert_eq!(
            (r.received_fps, r.expected_fps, r.bitrate_kbps),
            (-1.0, -1.0, -1.0)
        );
        assert_eq!(r.timezone, None);
        assert!(!r.is_live);
    }

    #[test]
    fn the_expected_rate_falls_back_to_the_median_of_what_was_received() {
        let c = camera("");
        c.metrics.on_connected(t(0), None);
        let mut k = 0;
        for s in 1..=10 {
            while 40 * k < s * 1000 {
                c.metrics.on_frame(t(40 * k), 1000);
                k += 1;
            }
            c.observe(t(s * 1000));
        }
        let o = c.observe(t(10_000));
        assert_eq!(o.expected_fps, Some(25.0));
        assert_eq!(o.health, 100);
        assert_eq!(o.condition, Condition::Active);
    }

    #[test]
    fn a_configured_rate_wins_and_a_slow_feed_scores_low() {
        let c = camera("expected_fps = 50\ntimezone = \"Europe/Berlin\"");
        c.metrics.on_connected(t(0), Some(25.0));
        for k in 0..250 {
            c.metrics.on_frame(t(40 * k), 1000);
        }
        let o = c.observe(t(10_000));
        assert_eq!(o.expected_fps, Some(50.0));
        assert_eq!(o.health, 50);
        let r = c.report(&o, WebhookReport::default());
        assert_eq!(r.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(
            c.edge_camera(&o).last_checked,
            "2027-01-15 09:00:10.000000+01:00"
        );
    }
}
