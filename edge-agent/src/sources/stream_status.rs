//! `stream-status+http://host:8001/status/` sources: relay a camera of an existing recognition
//! engine's Heartbeat API (the SPEC section 7 `/status/` shape), so that a site already running
//! such an engine is monitored without replacing anything.
//!
//! # Which remote camera
//!
//! One `[[camera]]` relays one remote camera. By default it is the remote camera with the same
//! id as the configured one; a URL fragment names another:
//! `stream-status+http://engine:8001/status/#camera-2` relays the engine's `camera-2` under the
//! configured id. `stream-status+https://` polls over HTTPS.
//!
//! # What is relayed
//!
//! The URL is polled about once a second ([`POLL_INTERVAL`]). From the remote camera the relay
//! takes `status`, `received_fps`, `buffered_frames` and `file_processing`. The engine's own
//! `health` number is not copied: the agent scores every camera by the SPEC section 4 formula
//! from what it relays, so that scores mean the same thing at every site. Frames are taken to
//! be flowing at the moment of a poll that finds the camera `running` with a received rate
//! above zero; that moment is the relayed camera's last frame time, which makes `is_live` work.
//! Bytes, bitrate, packet loss and jitter are not in the shape and stay unknown (`-1`).
//!
//! The engine's `last_checked` (read with or without its fraction) guards against an engine
//! that hangs while its status endpoint keeps answering: if it has not changed for
//! [`FROZEN_AFTER`], frames no longer count as flowing, the feed stops being live, and
//! `last_error` says so. A `last_checked` that cannot be read is ignored.
//!
//! If the engine cannot be reached the camera is `offline`; if its answer is not the shape, or
//! the camera is missing from it, the camera is in `error`, with `last_error` saying which.
//! When it recovers after having run once, that counts as a restart.

use crate::http_error_chain;
use crate::metrics::{CameraMetrics, Snapshot};
use chrono::{DateTime, Utc};
use std::time::Duration;
use streamwatch_protocol::{CameraStatus, EdgeStatus};
use tokio_util::sync::CancellationToken;
use url::Url;

/// How often the engine's status is read.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Time limit of one poll.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(3);
/// A relayed `last_checked` unchanged for this long means the engine is frozen.
pub const FROZEN_AFTER: Duration = Duration::from_secs(60);

/// What the relay remembers between polls.
#[derive(Debug, Clone, Default)]
pub struct RelayState {
    started_at: Option<DateTime<Utc>>,
    last_frame_at: Option<DateTime<Utc>>,
    restart_count: u64,
    last_restart_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    /// Whether the relayed camera was running at the previous poll.
    was_running: bool,
    /// Whether it has ever run (a recovery before that is not a restart).
    ever_ran: bool,
    /// The engine's last `last_checked`, and when (our clock) it last changed.
    last_checked: Option<DateTime<chrono::FixedOffset>>,
    last_checked_changed_at: Option<DateTime<Utc>>,
}

/// The outcome of one poll.
#[derive(Debug, Clone)]
pub enum Poll {
    /// The engine answered with the Heartbeat API shape.
    Status(EdgeStatus),
    /// The engine could not be reached or answered with an HTTP error.
    Unreachable(String),
    /// The engine answered, but not with the shape.
    Malformed(String),
}

/// The relayed camera's snapshot after a poll at `now` (pure, so it is tested without a peer).
pub fn relay(state: &mut RelayState, poll: Poll, remote_id: &str, now: DateTime<Utc>) -> Snapshot {
    let mut snapshot = Snapshot::starting();
    let camera = match poll {
        Poll::Status(status) => match status.cameras.get(remote_id) {
            Some(camera) => Some(camera.clone()),
            None => {
                snapshot.status = CameraStatus::Error;
                state.last_error = Some(format!(
                    "camera \"{remote_id}\" is not in the relayed status"
                ));
                None
            }
        },
        Poll::Unreachable(error) => {
            snapshot.status = CameraStatus::Offline;
            state.last_error = Some(error);
            None
        }
        Poll::Malformed(error) => {
            snapshot.status = CameraStatus::Error;
            state.last_error = Some(error);
            None
        }
    };
    if let Some(camera) = camera {
        snapshot.status = camera.status;
        snapshot.received_fps = camera.received_fps;
        snapshot.buffered_frames = camera.buffered_frames;
        snapshot.processed_seconds = camera.file_processing.processed_seconds;
        snapshot.total_seconds = camera.file_processing.total_seconds;
        if camera.status == CameraStatus::Running {
            if state.started_at.is_none() {
                state.started_at = Some(now);
            }
            if !state.was_running && state.ever_ran {
                state.restart_count += 1;
                state.last_restart_at = Some(now);
            }
            let checked = streamwatch_protocol::parse_last_checked(&camera.last_checked);
            if checked.is_some() && checked != state.last_checked {
                state.last_checked = checked;
                state.last_checked_changed_at = Some(now);
            }
            let frozen = checked.is_some()
                && state.last_checked_changed_at.is_some_and(|t| {
                    now - t > chrono::Duration::from_std(FROZEN_AFTER).unwrap_or_default()
                });
            if frozen {
                state.last_error = Some(format!(
                    "the relayed engine's status has not changed since {}",
                    camera.last_checked
                ));
            } else if camera.received_fps > 0.0 {
                state.last_frame_at = Some(now);
            }
            state.ever_ran = true;
        } else if !camera.status.is_functional() {
            state.last_error = Some(format!("the relayed engine reports {}", camera.status));
        }
    }
    state.was_running = snapshot.status == CameraStatus::Running;
    snapshot.started_at = state.started_at;
    snapshot.last_frame_at = state.last_frame_at;
    snapshot.restart_count = state.restart_count;
    snapshot.last_restart_at = state.last_restart_at;
    snapshot.last_error = state.last_error.clone();
    snapshot
}

/// One poll of the engine.
async fn poll(client: &reqwest::Client, url: &Url) -> Poll {
    let shown = streamwatch_protocol::redact_url(url.as_str());
    let response = match client.get(url.clone()).send().await {
        Ok(r) => r,
        Err(e) => {
            return Poll::Unreachable(format!("cannot reach {shown}: {}", http_error_chain(e)));
        }
    };
    let status = response.status();
    // The engine answers 500 when one of its cameras is not functional: the body still counts.
    if !(status.is_success() || status == reqwest::StatusCode::INTERNAL_SERVER_ERROR) {
        return Poll::Unreachable(format!("{shown} answered {status}"));
    }
    match response.bytes().await {
        Ok(body) => match serde_json::from_slice::<EdgeStatus>(&body) {
            Ok(status) => Poll::Status(status),
            Err(e) => Poll::Malformed(format!(
                "{shown} did not answer with the Heartbeat API shape: {e}"
            )),
        },
        Err(e) => Poll::Unreachable(format!("reading {shown} failed: {}", http_error_chain(e))),
    }
}

/// Relays `remote_id` from `status_url` until `shutdown`.
pub async fn run(
    status_url: Url,
    remote_id: String,
    metrics: CameraMetrics,
    shutdown: CancellationToken,
) {
    let client = match reqwest::Client::builder()
        .timeout(POLL_TIMEOUT)
        .user_agent(concat!("streamwatch-agent/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            metrics.on_failure(
                CameraStatus::Error,
                format!("cannot start an HTTP client: {e}"),
            );
            shutdown.cancelled().await;
            return;
        }
    };
    let mut state = RelayState::default();
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return,
            outcome = poll(&client, &status_url) => outcome,
        };
        metrics.replace(relay(&mut state, outcome, &remote_id, Utc::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0)
            .single()
            .unwrap_or_else(|| panic!("time"))
    }

    fn engine(json: &str) -> Poll {
        Poll::Status(serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}")))
    }

    const RUNNING: &str = r#"{"version": "1.4.2", "cameras": {"camera-1": {"health": 95, "status": "running", "last_checked": "2024-05-13 11:21:44+00:00", "received_fps": 24.5, "buffered_frames": 3, "file_processing": {"processed_seconds": -1.0, "total_seconds": -1.0}}}}"#;
    const OFFLINE: &str = r#"{"version": "1.4.2", "cameras": {"camera-1": {"health": 0, "status": "offline", "last_checked": "2024-05-13 11:21:44.904623+00:00", "received_fps": -1, "buffered_frames": -1, "file_processing": {"processed_seconds": -1.0, "total_seconds": -1.0}}}}"#;

    #[test]
    fn a_running_remote_camera_is_relayed_with_its_rates_and_a_fresh_frame() {
        let mut state = RelayState::default();
        let s = relay(&mut state, engine(RUNNING), "camera-1", t(0));
        assert_eq!(s.status, CameraStatus::Running);
        assert_eq!(s.received_fps, 24.5);
        assert_eq!(s.buffered_frames, 3.0);
        assert_eq!(s.last_frame_at, Some(t(0)));
        assert_eq!(s.started_at, Some(t(0)));
        assert_eq!(s.bitrate_kbps, -1.0);
    }

    #[test]
    fn an_unreachable_engine_makes_the_camera_offline_and_a_recovery_counts_a_restart() {
        let mut state = RelayState::default();
        relay(&mut state, engine(RUNNING), "camera-1", t(0));
        let s = relay(
            &mut state,
            Poll::Unreachable("cannot reach x: connection refused".to_owned()),
            "camera-1",
            t(5),
        );
        assert_eq!(s.status, CameraStatus::Offline);
        assert_eq!(
            s.last_error.as_deref(),
            Some("cannot reach x: connection refused")
        );
        assert_eq!(s.last_frame_at, Some(t(0)), "the last frame stays known");
        let s = relay(&mut state, engine(RUNNING), "camera-1", t(9));
        assert_eq!(s.status, CameraStatus::Running);
        assert_eq!((s.restart_count, s.last_restart_at), (1, Some(t(9))));
    }

    #[test]
    fn a_remote_offline_camera_says_so() {
        let mut state = RelayState::default();
        let s = relay(&mut state, engine(OFFLINE), "camera-1", t(0));
        assert_eq!(s.status, CameraStatus::Offline);
        assert_eq!(
            s.last_error.as_deref(),
            Some("the relayed engine reports offline")
        );
        assert_eq!(s.last_frame_at, None);
    }

    #[test]
    fn a_camera_missing_from_the_remote_status_is_an_error() {
        let mut state = RelayState::default();
        let s = relay(&mut state, engine(RUNNING), "camera-9", t(0));
        assert_eq!(s.status, CameraStatus::Error);
        assert_eq!(
            s.last_error.as_deref(),
            Some("camera \"camera-9\" is not in the relayed status")
        );
    }

    #[test]
    fn a_relayed_status_that_stops_changing_stops_counting_as_frames() {
        let mut state = RelayState::default();
        relay(&mut state, engine(RUNNING), "camera-1", t(0));
        let s = relay(&mut state, engine(RUNNING), "camera-1", t(60));
        assert_eq!(
            s.last_frame_at,
            Some(t(60)),
            "unchanged for 60 s is still fine"
        );
        let s = relay(&mut state, engine(RUNNING), "camera-1", t(61));
        assert_eq!(s.last_frame_at, Some(t(60)), "frozen: no new frame time");
        assert_eq!(
            s.last_error.as_deref(),
            Some("the relayed engine's status has not changed since 2024-05-13 11:21:44+00:00")
        );
        let moved = RUNNING.replace("11:21:44+00:00", "11:22:45.5+00:00");
        let s = relay(&mut state, engine(&moved), "camera-1", t(62));
        assert_eq!(s.last_frame_at, Some(t(62)), "a new last_checked thaws it");
    }

    #[test]
    fn a_running_camera_without_frames_is_not_given_a_frame_time() {
        let mut state = RelayState::default();
        let starving = RUNNING.replace("24.5", "0.0");
        let s = relay(&mut state, engine(&starving), "camera-1", t(0));
        assert_eq!(s.status, CameraStatus::Running);
        assert_eq!(s.last_frame_at, None);
    }
}
