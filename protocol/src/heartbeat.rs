//! The heartbeat document an agent pushes to `POST /api/v1/ingest/heartbeats` (SPEC section 3).
//!
//! Every field the agent may leave out defaults to the protocol's unknown value (`-1` for
//! numbers, `null` for text and times), so that a minimal camera `{"status": "running"}` parses
//! and an older agent that lacks a newer field keeps working. Fields this crate does not know are
//! ignored, so that a newer agent can talk to an older server.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Objects only. serde's derived `Deserialize` for a struct also accepts a JSON array of its
/// fields in declaration order (`"webhooks": []` would be a default `WebhookReport`). The
/// protocol has objects there, and the server's field-by-field validation reports an array as
/// "must be an object", so typed parsing must refuse it too, or the two would disagree.
mod object {
    use serde::de::{Deserialize, Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};
    use std::{collections::BTreeMap, fmt, marker::PhantomData};

    struct Object<T>(T);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct OnlyMaps<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for OnlyMaps<T> {
                type Value = T;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                    T::deserialize(MapAccessDeserializer::new(map))
                }
            }
            d.deserialize_map(OnlyMaps(PhantomData)).map(Object)
        }
    }

    pub fn one<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
        Object::deserialize(d).map(|o: Object<T>| o.0)
    }

    pub fn each<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        let list: Vec<Object<T>> = Deserialize::deserialize(d)?;
        Ok(list.into_iter().map(|o| o.0).collect())
    }

    pub fn each_value<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, T>, D::Error> {
        let map: BTreeMap<String, Object<T>> = Deserialize::deserialize(d)?;
        Ok(map.into_iter().map(|(k, o)| (k, o.0)).collect())
    }
}

/// At most this many heartbeats in one request (a spool replay sends them in batches).
pub const MAX_HEARTBEATS_PER_REQUEST: usize = 500;

/// At most this many cameras in one heartbeat.
pub const MAX_CAMERAS_PER_HEARTBEAT: usize = 256;

/// The largest request body as sent on the wire (gzipped or not): 1 MiB. Larger is a 413.
pub const MAX_BODY_BYTES_COMPRESSED: usize = 1024 * 1024;

/// The largest request body after gzip decompression: 8 MiB. Larger (gzip bombs included) is
/// a 413.
pub const MAX_BODY_BYTES_DECOMPRESSED: usize = 8 * 1024 * 1024;

/// The longest camera id, in characters (all of them ASCII, so also in bytes).
pub const CAMERA_ID_MAX_LEN: usize = 128;

/// One request body: who is sending, and the heartbeats, oldest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatBatch {
    /// The agent instance that observed every heartbeat of the batch.
    #[serde(deserialize_with = "object::one")]
    pub agent: AgentInfo,
    /// The heartbeats in `seq` order, 1 to [`MAX_HEARTBEATS_PER_REQUEST`] of them.
    #[serde(deserialize_with = "object::each")]
    pub heartbeats: Vec<Heartbeat>,
}

/// The sending agent.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Identifies one agent installation and its sequence space. Generated once and kept in the
    /// agent's state directory across restarts; a new id starts a new sequence at any `seq`.
    pub instance_id: uuid::Uuid,
    /// The agent's software version, e.g. `0.1.0`; empty when not sent.
    #[serde(default)]
    pub version: String,
    /// The host the agent runs on, for operators; empty when not sent.
    #[serde(default)]
    pub hostname: String,
    /// The agent's clock when it sent this request (not when it observed the heartbeats): the
    /// server measures the agent's clock offset as `sent_at - received_at`. Set afresh on every
    /// attempt, spool replays included. `null` when not sent; the server then estimates the
    /// offset from the newest `observed_at`.
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
}

/// The state of every configured camera at one moment.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Grows by one per heartbeat of an agent instance. The server acknowledges a heartbeat at
    /// or below the instance's high-water mark as a duplicate without storing it again.
    pub seq: u64,
    /// When the agent took this snapshot, by the agent's clock (RFC 3339). Kept for display and
    /// for placing spooled replays; the server's receive time is the trusted clock.
    pub observed_at: DateTime<Utc>,
    /// Every configured camera, by camera id (see [`is_valid_camera_id`]). A camera missing
    /// from the map was removed from the agent's configuration: it is retired, not offline.
    #[serde(deserialize_with = "object::each_value")]
    pub cameras: BTreeMap<String, CameraReport>,
}

/// One camera in one heartbeat. Only `status` is required.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraReport {
    /// What the agent's ingest of this camera is doing.
    pub status: CameraStatus,
    /// Health score 0..100 (SPEC section 4); `-1` while starting or unknown.
    #[serde(default = "unknown_i32")]
    pub health: i32,
    /// The camera's source URL as it may be shown: without credentials, its query and fragment
    /// replaced by `?[redacted]` and `#[redacted]` (see [`crate::redact_url`]); `null` when
    /// unknown.
    #[serde(default)]
    pub url: Option<String>,
    /// The kind of source: `rtsp`, `file`, `stream-status`, `simulated`, ...; `null` when
    /// unknown.
    #[serde(default)]
    pub source: Option<String>,
    /// Frames per second received over the last measurement window; `-1` unknown.
    #[serde(default = "unknown_f64")]
    pub received_fps: f64,
    /// Frames per second the camera should deliver (configured, declared by the stream, or the
    /// median of the last minute); `-1` unknown.
    #[serde(default = "unknown_f64")]
    pub expected_fps: f64,
    /// Frames per second the downstream consumer processed; `-1` unknown.
    #[serde(default = "unknown_f64")]
    pub processed_fps: f64,
    /// Frames waiting in the agent's buffer (a gauge, may be fractional when averaged); `-1`
    /// unknown.
    #[serde(default = "unknown_f64")]
    pub buffered_frames: f64,
    /// Received bitrate in kilobits per second; `-1` unknown.
    #[serde(default = "unknown_f64")]
    pub bitrate_kbps: f64,
    /// Whether the video feed is live: a frame arrived within the last 3 s. `false` when
    /// unknown.
    #[serde(default)]
    pub is_live: bool,
    /// When the newest frame arrived, by the agent's clock; `null` if never or unknown.
    #[serde(default)]
    pub last_frame_at: Option<DateTime<Utc>>,
    /// Bytes received from the source since `started_at`; `-1` unknown.
    #[serde(default = "unknown_i64")]
    pub bytes_received: i64,
    /// Lost RTP packets over the last measurement window, in percent 0..100; `-1` unknown.
    #[serde(default = "unknown_f64")]
    pub packet_loss_pct: f64,
    /// RTP interarrival jitter in milliseconds; `-1` unknown.
    #[serde(default = "unknown_f64")]
    pub jitter_ms: f64,
    /// When the agent started ingesting this camera; `null` unknown.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// How often the agent restarted this camera's ingest since `started_at`; `0` when not sent.
    #[serde(default)]
    pub restart_count: i64,
    /// When the ingest last restarted; `null` if never or unknown.
    #[serde(default)]
    pub last_restart_at: Option<DateTime<Utc>>,
    /// The latest error, a short human-readable sentence, URLs in it redacted (see
    /// [`crate::redact_urls_in_text`]); `null` when none.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Progress through a video file (`file://` sources); both `-1` for other sources.
    #[serde(default, deserialize_with = "object::one")]
    pub file_processing: FileProcessing,
    /// Delivery of this camera's webhooks; status `none` when no webhook is configured.
    #[serde(default, deserialize_with = "object::one")]
    pub webhooks: WebhookReport,
    /// The camera's configured IANA timezone, e.g. `Europe/Berlin`; `null` when not configured
    /// (UTC).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Picture health from the camera's latest snapshot (SPEC section 7); absent when the agent
    /// takes no snapshots of this camera (older agents, relayed cameras).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<crate::PictureReport>,
}

impl Default for CameraReport {
    /// A camera that is starting and about which nothing is known yet.
    fn default() -> Self {
        Self {
            status: CameraStatus::Starting,
            health: unknown_i32(),
            url: None,
            source: None,
            received_fps: unknown_f64(),
            expected_fps: unknown_f64(),
            processed_fps: unknown_f64(),
            buffered_frames: unknown_f64(),
            bitrate_kbps: unknown_f64(),
            is_live: false,
            last_frame_at: None,
            bytes_received: unknown_i64(),
            packet_loss_pct: unknown_f64(),
            jitter_ms: unknown_f64(),
            started_at: None,
            restart_count: 0,
            last_restart_at: None,
            last_error: None,
            file_processing: FileProcessing::default(),
            webhooks: WebhookReport::default(),
            timezone: None,
            picture: None,
        }
    }
}

/// Progress through a video file. Also part of the edge Heartbeat API's shape.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileProcessing {
    /// Seconds of the file processed so far; `-1` unknown or not a file source.
    #[serde(default = "unknown_f64")]
    pub processed_seconds: f64,
    /// Duration of the file in seconds; `-1` unknown or not a file source.
    #[serde(default = "unknown_f64")]
    pub total_seconds: f64,
}

impl Default for FileProcessing {
    /// Not a file source: both unknown.
    fn default() -> Self {
        Self {
            processed_seconds: unknown_f64(),
            total_seconds: unknown_f64(),
        }
    }
}

/// Webhook delivery for one camera.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WebhookReport {
    /// Whether deliveries succeed; `none` when no webhook is configured or not sent.
    #[serde(default)]
    pub status: WebhookStatus,
    /// Failed deliveries cached on the agent's disk, waiting for a retry; `0` when not sent.
    #[serde(default)]
    pub cached: i64,
    /// The latest delivery error, the webhook shown by its origin only (see
    /// [`crate::redact_url_origin`]); `null` when none.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// What the agent's ingest of a camera is doing.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraStatus {
    /// Connecting or waiting for the first frames; health is `-1`.
    Starting,
    /// Connected and ingesting (frames may still have stalled: see `is_live`).
    Running,
    /// Stopped on purpose, e.g. a file source that reached its end.
    Stopped,
    /// The source cannot be reached.
    Offline,
    /// The ingest failed; `last_error` says why.
    Error,
}

impl CameraStatus {
    /// The wire name, e.g. `running`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Offline => "offline",
            Self::Error => "error",
        }
    }

    /// Functional means not `stopped`, `offline` or `error`: the rule behind the 200/500 answer
    /// of the edge Heartbeat API (SPEC section 7) and of its copy on the server (section 6).
    pub fn is_functional(self) -> bool {
        matches!(self, Self::Starting | Self::Running)
    }
}

impl std::fmt::Display for CameraStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Webhook delivery state of a camera.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    /// The latest delivery succeeded.
    Ok,
    /// Deliveries fail; they are cached and retried.
    Failing,
    /// No webhook is configured.
    #[default]
    None,
}

impl WebhookStatus {
    /// The wire name, e.g. `failing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failing => "failing",
            Self::None => "none",
        }
    }
}

impl std::fmt::Display for WebhookStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `200` answer to a heartbeat batch. Sent only once the heartbeats are committed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestResponse {
    /// Heartbeats newly stored by this request.
    pub accepted: u32,
    /// Heartbeats at or below the instance's high-water mark: already stored earlier,
    /// acknowledged and not stored again.
    pub duplicates: u32,
    /// How often the agent should report from now on, in seconds.
    pub next_interval_seconds: u32,
    /// The server's clock when it answered, for the agent to measure its clock offset.
    pub server_time: DateTime<Utc>,
}

/// Whether `id` is a valid camera id: 1 to [`CAMERA_ID_MAX_LEN`] characters of
/// `[A-Za-z0-9._-]`.
pub fn is_valid_camera_id(id: &str) -> bool {
    (1..=CAMERA_ID_MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn unknown_i32() -> i32 {
    -1
}

fn unknown_i64() -> i64 {
    crate::UNKNOWN
}

fn unknown_f64() -> f64 {
    -1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of SPEC section 3, verbatim except `instance_id`, which the SPEC abbreviates
    /// to `6f1c...uuid` and which must be a real UUID.
    const SPEC_EXAMPLE: &str = r#"{
  "agent": {"instance_id": "6f1c2a4e-8b3d-4f0a-9c5e-1d2b3c4d5e6f", "version": "0.1.0", "hostname": "site-7-box"},
  "heartbeats": [
    {
      "seq": 1042,
      "observed_at": "2026-11-23T10:00:00.120Z",
      "cameras": {
        "camera-1": {
          "status": "running",
          "health": 95,
          "url": "rtsp://10.0.0.5/stream1",
          "source": "rtsp",
          "received_fps": 24.8, "expected_fps": 25.0, "processed_fps": 24.8,
          "buffered_frames": 3.0,
          "bitrate_kbps": 4480,
          "is_live": true, "last_frame_at": "2026-11-23T10:00:00.080Z",
          "bytes_received": 33490425639, "packet_loss_pct": 0.0, "jitter_ms": 4.1,
          "started_at": "2026-11-22T08:00:00Z", "restart_count": 1, "last_restart_at": "2026-11-22T09:12:00Z",
          "last_error": null,
          "file_processing": {"processed_seconds": -1.0, "total_seconds": -1.0},
          "webhooks": {"status": "ok", "cached": 0, "last_error": null},
          "timezone": "Europe/Berlin"
        }
      }
    }
  ]
}"#;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse()
            .unwrap_or_else(|e| panic!("bad test timestamp {s}: {e}"))
    }

    fn parse<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("does not parse: {e}\n{json}"))
    }

    #[test]
    fn the_spec_example_parses_into_the_expected_values() {
        let batch: HeartbeatBatch = parse(SPEC_EXAMPLE);
        assert_eq!(batch.agent.version, "0.1.0");
        assert_eq!(batch.agent.hostname, "site-7-box");
        assert_eq!(batch.agent.sent_at, None);
        assert_eq!(batch.heartbeats.len(), 1);
        let hb = &batch.heartbeats[0];
        assert_eq!(hb.seq, 1042);
        assert_eq!(hb.observed_at, at("2026-11-23T10:00:00.120Z"));
        let cam = &hb.cameras["camera-1"];
        let expected = CameraReport {
            status: CameraStatus::Running,
            health: 95,
            url: Some("rtsp://10.0.0.5/stream1".to_owned()),
            source: Some("rtsp".to_owned()),
            received_fps: 24.8,
            expected_fps: 25.0,
            processed_fps: 24.8,
            buffered_frames: 3.0,
            bitrate_kbps: 4480.0,
            is_live: true,
            last_frame_at: Some(at("2026-11-23T10:00:00.080Z")),
            bytes_received: 33_490_425_639,
            packet_loss_pct: 0.0,
            jitter_ms: 4.1,
            started_at: Some(at("2026-11-22T08:00:00Z")),
            restart_count: 1,
            last_restart_at: Some(at("2026-11-22T09:12:00Z")),
            last_error: None,
            file_processing: FileProcessing::default(),
            webhooks: WebhookReport {
                status: WebhookStatus::Ok,
                cached: 0,
                last_error: None,
            },
            timezone: Some("Europe/Berlin".to_owned()),
            picture: None,
        };
        assert_eq!(cam, &expected);
    }

    #[test]
    fn the_picture_is_optional_and_left_out_when_absent() {
        let cam: CameraReport = parse(
            r#"{"status": "running", "picture": {"state": "black", "since": "2026-11-23T10:42:00Z",
                "checked_at": "2026-11-23T10:47:00Z", "luma_mean": 3.5, "change_pct": 0.0}}"#,
        );
        let picture = cam.picture.clone().unwrap_or_else(|| panic!("a picture"));
        assert_eq!(picture.state, crate::PictureState::Black);
        assert_eq!(picture.luma_mean, 3.5);
        let json = serde_json::to_string(&cam).unwrap_or_else(|e| panic!("{e}"));
        assert!(json.contains(r#""picture":{"state":"black""#), "{json}");
        let plain =
            serde_json::to_string(&CameraReport::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !plain.contains("picture"),
            "older servers see no new key: {plain}"
        );
    }

    #[test]
    fn the_spec_example_survives_a_round_trip() {
        let batch: HeartbeatBatch = parse(SPEC_EXAMPLE);
        let json = serde_json::to_string(&batch).unwrap_or_else(|e| panic!("{e}"));
        let again: HeartbeatBatch = parse(&json);
        assert_eq!(again, batch);
    }

    #[test]
    fn a_camera_with_only_a_status_gets_every_unknown_value() {
        let cam: CameraReport = parse(r#"{"status": "running"}"#);
        assert_eq!(
            cam,
            CameraReport {
                status: CameraStatus::Running,
                ..CameraReport::default()
            }
        );
        assert_eq!(cam.health, -1);
        assert_eq!(cam.received_fps, -1.0);
        assert_eq!(cam.bytes_received, -1);
        assert_eq!(cam.restart_count, 0);
        assert!(!cam.is_live);
        assert_eq!(cam.file_processing.processed_seconds, -1.0);
        assert_eq!(cam.file_processing.total_seconds, -1.0);
        assert_eq!(cam.webhooks.status, WebhookStatus::None);
        assert_eq!(cam.webhooks.cached, 0);
        assert_eq!(cam.url, None);
    }

    #[test]
    fn partial_nested_objects_default_their_missing_fields() {
        let cam: CameraReport = parse(
            r#"{"status": "running", "file_processing": {"processed_seconds": 12.5},
                "webhooks": {"status": "failing"}}"#,
        );
        assert_eq!(cam.file_processing.processed_seconds, 12.5);
        assert_eq!(cam.file_processing.total_seconds, -1.0);
        assert_eq!(cam.webhooks.status, WebhookStatus::Failing);
        assert_eq!(cam.webhooks.cached, 0);
    }

    #[test]
    fn a_minimal_batch_parses() {
        let batch: HeartbeatBatch = parse(
            r#"{"agent": {"instance_id": "6f1c2a4e-8b3d-4f0a-9c5e-1d2b3c4d5e6f"},
                "heartbeats": [{"seq": 1, "observed_at": "2026-11-23T10:00:00Z", "cameras": {}}]}"#,
        );
        assert_eq!(batch.agent.version, "");
        assert_eq!(batch.agent.hostname, "");
        assert_eq!(batch.agent.sent_at, None);
        assert!(batch.heartbeats[0].cameras.is_empty());
    }

    #[test]
    fn the_send_time_is_read_when_present() {
        let batch: HeartbeatBatch = parse(
            r#"{"agent": {"instance_id": "6f1c2a4e-8b3d-4f0a-9c5e-1d2b3c4d5e6f", "sent_at": "2026-11-23T10:00:05Z"},
                "heartbeats": []}"#,
        );
        assert_eq!(batch.agent.sent_at, Some(at("2026-11-23T10:00:05Z")));
    }

    #[test]
    fn unknown_fields_from_a_newer_agent_are_ignored() {
        let batch: HeartbeatBatch = parse(
            r#"{"agent": {"instance_id": "6f1c2a4e-8b3d-4f0a-9c5e-1d2b3c4d5e6f", "os": "linux"},
                "compression": "zstd",
                "heartbeats": [{"seq": 7, "observed_at": "2026-11-23T10:00:00Z", "uptime_s": 12,
                  "cameras": {"cam.1": {"status": "offline", "codec": "h265",
                    "webhooks": {"status": "ok", "urls": 2},
                    "file_processing": {"processed_seconds": 1.0, "total_seconds": 2.0, "eta": 1}}}}]}"#,
        );
        let cam = &batch.heartbeats[0].cameras["cam.1"];
        assert_eq!(cam.status, CameraStatus::Offline);
        assert_eq!(cam.webhooks.status, WebhookStatus::Ok);
        assert_eq!(cam.file_processing.total_seconds, 2.0);
    }

    #[test]
    fn invalid_documents_are_errors() {
        let cases = [
            (r#"{"status": "dancing"}"#, "an unknown camera status"),
            (r#"{"status": "Running"}"#, "a status in the wrong case"),
            (r#"{"health": 95}"#, "a camera without status"),
            (
                r#"{"status": "running", "webhooks": {"status": "broken"}}"#,
                "an unknown webhook status",
            ),
            (
                r#"{"status": "running", "health": "95"}"#,
                "a number sent as text",
            ),
            (
                r#"{"status": "running", "last_frame_at": "yesterday"}"#,
                "a timestamp that is not RFC 3339",
            ),
        ];
        for (json, what) in cases {
            assert!(
                serde_json::from_str::<CameraReport>(json).is_err(),
                "{what} should be rejected: {json}"
            );
        }
        let batches = [
            (
                r#"{"agent": {"instance_id": "6f1c...uuid"}, "heartbeats": []}"#,
                "an instance id that is not a UUID",
            ),
            (r#"{"heartbeats": []}"#, "a batch without agent"),
            (
                r#"{"agent": {"instance_id": "6f1c2a4e-8b3d-4f0a-9c5e-1d2b3c4d5e6f"},
                    "heartbeats": [{"seq": -1, "observed_at": "2026-11-23T10:00:00Z", "cameras": {}}]}"#,
                "a negative seq",
            ),
        ];
        for (json, what) in batches {
            assert!(
                serde_json::from_str::<HeartbeatBatch>(json).is_err(),
                "{what} should be rejected: {json}"
            );
        }
    }

    #[test]
    fn statuses_use_their_wire_names() {
        let all = [
            (CameraStatus::Starting, "starting"),
            (CameraStatus::Running, "running"),
            (CameraStatus::Stopped, "stopped"),
            (CameraStatus::Offline, "offline"),
            (CameraStatus::Error, "error"),
        ];
        for (status, name) in all {
            assert_eq!(status.as_str(), name);
            assert_eq!(status.to_string(), name);
            assert_eq!(
                serde_json::to_value(status).ok(),
                Some(serde_json::json!(name))
            );
        }
        let all = [
            (WebhookStatus::Ok, "ok"),
            (WebhookStatus::Failing, "failing"),
            (WebhookStatus::None, "none"),
        ];
        for (status, name) in all {
            assert_eq!(status.as_str(), name);
            assert_eq!(
                serde_json::to_value(status).ok(),
                Some(serde_json::json!(name))
            );
        }
    }

    #[test]
    fn only_starting_and_running_cameras_are_functional() {
        assert!(CameraStatus::Starting.is_functional());
        assert!(CameraStatus::Running.is_functional());
        assert!(!CameraStatus::Stopped.is_functional());
        assert!(!CameraStatus::Offline.is_functional());
        assert!(!CameraStatus::Error.is_functional());
    }

    #[test]
    fn the_ingest_response_has_the_documented_shape() {
        let response = IngestResponse {
            accepted: 3,
            duplicates: 0,
            next_interval_seconds: 60,
            server_time: at("2026-11-23T10:00:01Z"),
        };
        assert_eq!(
            serde_json::to_value(&response).ok(),
            Some(serde_json::json!({
                "accepted": 3, "duplicates": 0, "next_interval_seconds": 60,
                "server_time": "2026-11-23T10:00:01Z"
            }))
        );
    }

    #[test]
    fn camera_ids_are_checked() {
        let long_ok = "a".repeat(CAMERA_ID_MAX_LEN);
        let too_long = "a".repeat(CAMERA_ID_MAX_LEN + 1);
        let cases: [(&str, bool, &str); 12] = [
            ("camera-1", true, "letters, digits and a dash"),
            ("Cam_2.main", true, "underscore and dot"),
            ("7", true, "one character"),
            ("...", true, "only dots"),
            (&long_ok, true, "exactly the maximum length"),
            ("", false, "empty"),
            (&too_long, false, "one character too long"),
            ("camera 1", false, "a space"),
            ("camera/1", false, "a slash"),
            ("kamera-ü", false, "a non-ASCII letter"),
            ("cam:1", false, "a colon"),
            ("cam\n1", false, "a newline"),
        ];
        for (id, valid, what) in cases {
            assert_eq!(is_valid_camera_id(id), valid, "{what}: {id:?}");
        }
    }
}
