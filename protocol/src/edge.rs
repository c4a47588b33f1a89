//! The shapes of the edge agent's local Heartbeat API (SPEC section 7).
//!
//! Existing monitors and recognition engines already poll these endpoints, so the shapes are
//! byte-compatible with the established API: same field names, same field order, same
//! `last_checked` format. The server reuses [`EdgeStatus`] for `GET /api/v1/licenses/{id}/heartbeat`,
//! and the agent's `stream-status+http://` source parses it.
//!
//! | endpoint | body |
//! |---|---|
//! | `GET /status/` | [`EdgeStatus`]; 200 when [`EdgeStatus::all_functional`], 500 otherwise |
//! | `GET /monitor` | [`MonitorResponse`] |
//! | `GET /api/streams/{id}/status` | [`StreamStatus`]; unknown id: 404 [`StreamNotFound`] |
//! | `GET /api/streams/-/status` | [`StreamStatuses`] |

use std::collections::BTreeMap;
use std::fmt::Display;

use chrono::{DateTime, FixedOffset, TimeZone};
use serde::{Deserialize, Serialize};

use crate::heartbeat::{CameraStatus, FileProcessing};

/// The format of [`EdgeCamera::last_checked`], e.g. `2024-05-13 11:21:44.904623+00:00`.
pub const LAST_CHECKED_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f%:z";

/// `GET /status/`: every camera's health.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeStatus {
    /// The software version of whoever answers (the agent, or the relayed engine).
    pub version: String,
    /// Every configured camera, by camera id.
    pub cameras: BTreeMap<String, EdgeCamera>,
}

impl EdgeStatus {
    /// Whether every camera is functional (none `stopped`, `offline` or `error`): the endpoint
    /// answers 200 when this holds and 500 otherwise. With no cameras at all it holds: the
    /// agent itself is up and nothing it watches is broken.
    pub fn all_functional(&self) -> bool {
        self.cameras.values().all(|c| c.status.is_functional())
    }
}

/// One camera in [`EdgeStatus`]. The field order is part of the established shape: keep it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeCamera {
    /// Health score 0..100; `-1` while starting or unknown.
    pub health: i32,
    /// What the ingest of this camera is doing.
    pub status: CameraStatus,
    /// When the camera was last checked, in the camera's configured timezone, formatted by
    /// [`format_last_checked`]: `2024-05-13 11:21:44.904623+00:00`.
    pub last_checked: String,
    /// Frames per second received; `-1` unknown.
    pub received_fps: f64,
    /// Frames waiting in the buffer; `-1` unknown.
    pub buffered_frames: f64,
    /// Progress through a video file; both `-1` for other sources.
    pub file_processing: FileProcessing,
}

/// Formats a time the way the established API shows `last_checked`:
/// `YYYY-MM-DD HH:MM:SS.ffffff+HH:MM`, always with six fractional digits and the offset of
/// `at`'s timezone. Convert `at` to the camera's timezone first.
pub fn format_last_checked<Tz: TimeZone>(at: &DateTime<Tz>) -> String
where
    Tz::Offset: Display,
{
    at.format(LAST_CHECKED_FORMAT).to_string()
}

/// Parses a `last_checked` value, as a relaying agent reads it from an existing engine. The
/// fraction is optional (the established API omits it when it is zero); `None` when the text
/// is not in that shape.
pub fn parse_last_checked(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z").ok()
}

/// `GET /monitor`: the legacy monitoring shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorResponse {
    /// Whether every camera is functional (the same rule as the 200/500 of `/status/`).
    pub active: bool,
    /// Every configured camera, by camera id.
    pub cameras: BTreeMap<String, MonitorCamera>,
}

impl MonitorResponse {
    /// The legacy view of a full status.
    pub fn from_status(status: &EdgeStatus) -> Self {
        Self {
            active: status.all_functional(),
            cameras: status
                .cameras
                .iter()
                .map(|(id, camera)| (id.clone(), MonitorCamera::from_status(camera.status)))
                .collect(),
        }
    }
}

/// One camera in [`MonitorResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorCamera {
    /// `running` or `offline`, nothing else.
    pub status: String,
}

impl MonitorCamera {
    /// The legacy API knows two words: `running` for a functional camera (starting included),
    /// `offline` for every other.
    pub fn from_status(status: CameraStatus) -> Self {
        let word = if status.is_functional() {
            CameraStatus::Running
        } else {
            CameraStatus::Offline
        };
        Self {
            status: word.as_str().to_owned(),
        }
    }
}

/// `GET /api/streams/{id}/status`: the video feed of one camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamStatus {
    /// Whether a frame arrived within the last 3 s.
    pub is_live: bool,
    /// Received bitrate in kilobits per second; `-1` unknown.
    pub bitrate: f64,
    /// When the newest frame arrived, in Unix seconds; `0` if never.
    pub last_frame_time: i64,
}

/// One camera in `GET /api/streams/-/status`: the established shape (SPEC section 7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamEntry {
    /// The camera id.
    pub name: String,
    /// Always empty: the established API lists restream targets here, which the agent has none
    /// of (kept so that its clients find the field).
    pub targets: Vec<String>,
    /// The `/api/streams/{id}/status` body.
    pub status: StreamStatus,
}

/// `GET /api/streams/-/status`: every camera, a JSON array in configuration order.
pub type StreamStatuses = Vec<StreamEntry>;

/// The 404 body of `GET /api/streams/{id}/status` for an unknown id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamNotFound {
    /// Always `Stream not found`.
    pub message: String,
}

impl StreamNotFound {
    /// `{"message": "Stream not found"}`.
    pub fn new() -> Self {
        Self {
            message: "Stream not found".to_owned(),
        }
    }
}

impl Default for StreamNotFound {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse()
            .unwrap_or_else(|e| panic!("bad test timestamp {s}: {e}"))
    }

    fn camera(status: CameraStatus) -> EdgeCamera {
        EdgeCamera {
            health: 95,
            status,
            last_checked: "2024-05-13 11:21:44.904623+00:00".to_owned(),
            received_fps: 24.5,
            buffered_frames: 3.0,
            file_processing: FileProcessing::default(),
        }
    }

    fn to_json<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn last_checked_has_microseconds_and_an_offset_with_a_colon() {
        let at = utc("2024-05-13T11:21:44.904623Z");
        assert_eq!(format_last_checked(&at), "2024-05-13 11:21:44.904623+00:00");

        let berlin_summer = FixedOffset::east_opt(2 * 3600).unwrap_or_else(|| panic!("offset"));
        assert_eq!(
            format_last_checked(&at.with_timezone(&berlin_summer)),
            "2024-05-13 13:21:44.904623+02:00"
        );

        let west = FixedOffset::west_opt(5 * 3600 + 30 * 60).unwrap_or_else(|| panic!("offset"));
        assert_eq!(
            format_last_checked(&utc("2024-05-13T00:00:00Z").with_timezone(&west)),
            "2024-05-12 18:30:00.000000-05:30"
        );
    }

    #[test]
    fn last_checked_parses_back_with_or_without_a_fraction() {
        let at = utc("2024-05-13T11:21:44.904623Z");
        let formatted = format_last_checked(&at);
        assert_eq!(parse_last_checked(&formatted).map(|t| t.to_utc()), Some(at));
        assert_eq!(
            parse_last_checked("2024-05-13 13:21:44+02:00").map(|t| t.to_utc()),
            Some(utc("2024-05-13T11:21:44Z"))
        );
        assert_eq!(parse_last_checked("2024-05-13T11:21:44Z"), None);
        assert_eq!(parse_last_checked(""), None);
    }

    #[test]
    fn the_status_document_keeps_the_established_field_order() {
        let status = EdgeStatus {
            version: "0.1.0".to_owned(),
            cameras: BTreeMap::from([("camera-1".to_owned(), camera(CameraStatus::Running))]),
        };
        assert_eq!(
            to_json(&status),
            r#"{"version":"0.1.0","cameras":{"camera-1":{"health":95,"status":"running","last_checked":"2024-05-13 11:21:44.904623+00:00","received_fps":24.5,"buffered_frames":3.0,"file_processing":{"processed_seconds":-1.0,"total_seconds":-1.0}}}}"#
        );
    }

    #[test]
    fn the_established_status_document_parses() {
        // As the SPEC shows it, with an integer `buffered_frames`.
        let json = r#"{"version": "1.4.2", "cameras": {"camera-1": {"health": 95, "status": "running",
            "last_checked": "2024-05-13 11:21:44.904623+00:00", "received_fps": 24.5, "buffered_frames": 3,
            "file_processing": {"processed_seconds": -1.0, "total_seconds": -1.0}}}}"#;
        let status: EdgeStatus = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status.cameras["camera-1"], camera(CameraStatus::Running));
    }

    #[test]
    fn the_answer_is_200_only_when_every_camera_is_functional() {
        let with = |statuses: &[CameraStatus]| EdgeStatus {
            version: String::new(),
            cameras: statuses
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("camera-{i}"), camera(*s)))
                .collect(),
        };
        use CameraStatus::*;
        let cases: [(&[CameraStatus], bool, &str); 6] = [
            (&[], true, "no cameras"),
            (&[Running, Running], true, "all running"),
            (&[Running, Starting], true, "one starting"),
            (&[Running, Stopped], false, "one stopped"),
            (&[Offline], false, "one offline"),
            (&[Running, Error], false, "one in error"),
        ];
        for (statuses, functional, what) in cases {
            assert_eq!(with(statuses).all_functional(), functional, "{what}");
        }
    }

    #[test]
    fn the_monitor_shape_knows_running_and_offline() {
        let status = EdgeStatus {
            version: String::new(),
            cameras: BTreeMap::from([
                ("a".to_owned(), camera(CameraStatus::Running)),
                ("b".to_owned(), camera(CameraStatus::Starting)),
                ("c".to_owned(), camera(CameraStatus::Error)),
            ]),
        };
        assert_eq!(
            to_json(&MonitorResponse::from_status(&status)),
            r#"{"active":false,"cameras":{"a":{"status":"running"},"b":{"status":"running"},"c":{"status":"offline"}}}"#
        );
    }

    #[test]
    fn stream_status_and_not_found_have_their_established_shapes() {
        let live = StreamStatus {
            is_live: true,
            bitrate: 4480.5,
            last_frame_time: 1_715_599_304,
        };
        assert_eq!(
            to_json(&live),
            r#"{"is_live":true,"bitrate":4480.5,"last_frame_time":1715599304}"#
        );
        assert_eq!(
            to_json(&StreamNotFound::new()),
            r#"{"message":"Stream not found"}"#
        );
        let all: StreamStatuses = vec![StreamEntry {
            name: "camera-1".to_owned(),
            targets: Vec::new(),
            status: live,
        }];
        assert_eq!(
            to_json(&all),
            r#"[{"name":"camera-1","targets":[],"status":{"is_live":true,"bitrate":4480.5,"last_frame_time":1715599304}}]"#
        );
    }
}
