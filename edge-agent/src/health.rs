//! The health score, liveness and camera condition of SPEC section 4, as pure functions.
//!
//! Nothing here reads a clock or a lock: callers pass `now` and plain numbers, and the unit
//! tests below check every term of the formula on its own.
//!
//! # The score
//!
//! ```text
//! starting                    → -1   (also for the first second after a (re)connect)
//! stopped / offline / error   →  0
//! running                     →  100 × min(1, received_fps / expected_fps)
//!                              − buffering penalty   (0..30)
//!                              − 2 × packet_loss_pct (at most 30)
//!                              − 20 if the source restarted in the last 10 minutes
//!                              − 50 if the feed is not live (no frame in the last 3 s)
//!                              clamped to 0..100, rounded to the nearest integer
//! ```
//!
//! Choices the SPEC leaves open:
//! - **Buffering %** is `buffered_frames / expected_fps × 100`: the buffer measured against one
//!   second of video, capped at 100 %. The penalty grows linearly from 0 at 25 % to 30 at 100 %.
//!   With no expected rate or an unknown buffer (`-1`), there is no penalty.
//! - **No expected rate known yet** (nothing configured, nothing declared, no non-zero sample in
//!   the last minute): the rate term is 100; the liveness term still catches a dead feed.
//! - Unknown values (`-1`) of received fps count as 0 fps; of packet loss, as no loss.
//! - **Measuring.** During the first second after a source (re)connects, too few frames have
//!   arrived to measure a rate (one frame in 40 ms is not "1 fps"), so the camera counts as
//!   still starting: health `-1`, and no webhook event. See [`is_measuring`].

use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::time::Duration;
use streamwatch_protocol::CameraStatus;

/// A feed is live when a frame arrived within this long (SPEC section 4).
pub const LIVE_WINDOW: Duration = Duration::from_secs(3);
/// A restart within this long costs [`RESTART_PENALTY`] points.
pub const RECENT_RESTART: Duration = Duration::from_secs(600);
/// The history window of the median fallback for the expected rate.
pub const HISTORY_WINDOW: Duration = Duration::from_secs(60);

/// Points lost for a restart in the last 10 minutes.
pub const RESTART_PENALTY: f64 = 20.0;
/// Points lost when the feed is not live.
pub const NOT_LIVE_PENALTY: f64 = 50.0;
/// The most points buffering can cost.
pub const MAX_BUFFER_PENALTY: f64 = 30.0;
/// The most points packet loss can cost.
pub const MAX_LOSS_PENALTY: f64 = 30.0;
/// Buffering up to this percentage is free.
pub const BUFFER_FREE_PCT: f64 = 25.0;

/// What the score is computed from: one camera at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthInputs {
    pub status: CameraStatus,
    /// Frames per second received; negative means unknown.
    pub received_fps: f64,
    /// See [`expected_fps`]; `None` when no rate is known.
    pub expected_fps: Option<f64>,
    /// Frames waiting in the buffer; negative means unknown.
    pub buffered_frames: f64,
    /// Percent of RTP packets lost; negative means unknown.
    pub packet_loss_pct: f64,
    /// Whether the source restarted in the last 10 minutes (see [`restarted_recently`]).
    pub restarted_recently: bool,
    /// See [`is_live`].
    pub is_live: bool,
}

/// The health score of SPEC section 4: -1, or 0..=100.
pub fn score(h: &HealthInputs) -> i32 {
    match h.status {
        CameraStatus::Starting => return -1,
        CameraStatus::Stopped | CameraStatus::Offline | CameraStatus::Error => return 0,
        CameraStatus::Running => {}
    }
    let total = rate_points(h.received_fps, h.expected_fps)
        - buffer_penalty(h.buffered_frames, h.expected_fps)
        - loss_penalty(h.packet_loss_pct)
        - if h.restarted_recently {
            RESTART_PENALTY
        } else {
            0.0
        }
        - if h.is_live { 0.0 } else { NOT_LIVE_PENALTY };
    // In 0..=100 after the clamp, so the cast cannot truncate.
    total.clamp(0.0, 100.0).round() as i32
}

/// `100 × min(1, received / expected)`; 100 when no expected rate is known.
pub fn rate_points(received_fps: f64, expected_fps: Option<f64>) -> f64 {
    match expected_fps {
        Some(expected) if expected > 0.0 => 100.0 * (received_fps.max(0.0) / expected).min(1.0),
        _ => 100.0,
    }
}

/// Buffering relative to one second of frames, in percent, capped at 100; `None` when the buffer
/// or the rate is unknown.
pub fn buffering_pct(buffered_frames: f64, expected_fps: Option<f64>) -> Option<f64> {
    match expected_fps {
        Some(expected) if expected > 0.0 && buffered_frames >= 0.0 => {
            Some((buffered_frames / expected * 100.0).min(100.0))
        }
        _ => None,
    }
}

/// 0 up to 25 % buffering, rising linearly to 30 at 100 %.
pub fn buffer_penalty(buffered_frames: f64, expected_fps: Option<f64>) -> f64 {
    buffering_pct(buffered_frames, expected_fps).map_or(0.0, |pct| {
        let excess = (pct - BUFFER_FREE_PCT).max(0.0) / (100.0 - BUFFER_FREE_PCT);
        MAX_BUFFER_PENALTY * excess
    })
}

/// `2 × packet_loss_pct`, at most 30; 0 when unknown.
pub fn loss_penalty(packet_loss_pct: f64) -> f64 {
    if packet_loss_pct > 0.0 {
        (2.0 * packet_loss_pct).min(MAX_LOSS_PENALTY)
    } else {
        0.0
    }
}

/// A frame arrived within the last 3 s.
pub fn is_live(last_frame_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_frame_at.is_some_and(|t| {
        let age = now - t;
        age <= chrono::Duration::from_std(LIVE_WINDOW).unwrap_or_default()
    })
}

/// The source restarted in the last 10 minutes.
pub fn restarted_recently(last_restart_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_restart_at
        .is_some_and(|t| now - t <= chrono::Duration::from_std(RECENT_RESTART).unwrap_or_default())
}

/// How long after a (re)connect the rate is not measurable yet.
pub const MEASURE_GRACE: Duration = Duration::from_secs(1);

/// Whether a running camera connected less than [`MEASURE_GRACE`] ago.
pub fn is_measuring(connected_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    connected_at
        .is_some_and(|c| now - c < chrono::Duration::from_std(MEASURE_GRACE).unwrap_or_default())
}

/// The rate a camera should deliver: configured, else declared by the stream, else the median
/// of the last minute (SPEC section 4). Non-positive values count as unknown.
pub fn expected_fps(
    configured: Option<f64>,
    declared: Option<f64>,
    median_of_last_minute: Option<f64>,
) -> Option<f64> {
    [configured, declared, median_of_last_minute]
        .into_iter()
        .flatten()
        .find(|fps| *fps > 0.0)
}

/// A camera's recent received-fps samples, for the median fallback of [`expected_fps`].
///
/// Samples are kept for one minute and at most one per second is taken, so it holds at most
/// about 60 numbers whatever the callers do.
#[derive(Debug, Clone, Default)]
pub struct FpsHistory {
    samples: VecDeque<(DateTime<Utc>, f64)>,
}

impl FpsHistory {
    /// Records `fps` seen at `now` (ignored if unknown or within a second of the last sample).
    pub fn record(&mut self, now: DateTime<Utc>, fps: f64) {
        if fps < 0.0 {
            return;
        }
        if self
            .samples
            .back()
            .is_some_and(|(t, _)| now - *t < chrono::Duration::seconds(1))
        {
            return;
        }
        self.samples.push_back((now, fps));
        self.prune(now);
    }

    /// The median of the last minute's positive samples; `None` without any.
    pub fn median(&self, now: DateTime<Utc>) -> Option<f64> {
        let horizon = now - chrono::Duration::from_std(HISTORY_WINDOW).unwrap_or_default();
        let mut values: Vec<f64> = self
            .samples
            .iter()
            .filter(|(t, fps)| *t >= horizon && *fps > 0.0)
            .map(|(_, fps)| *fps)
            .collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        Some(if values.len().is_multiple_of(2) {
            (values[mid - 1] + values[mid]) / 2.0
        } else {
            values[mid]
        })
    }

    fn prune(&mut self, now: DateTime<Utc>) {
        let horizon = now - chrono::Duration::from_std(HISTORY_WINDOW).unwrap_or_default();
        while self.samples.front().is_some_and(|(t, _)| *t < horizon) {
            self.samples.pop_front();
        }
    }
}

/// A camera's condition, the agent's view of the camera states of SPEC section 4 (without
/// freshness, which only the server can judge). Webhook events fire on its changes.
///
/// Unlike the server's `degraded`, a failing webhook does not degrade the condition here: the
/// condition decides which webhook events to send, and an event about webhooks failing could
/// not be delivered anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    /// Opening the source.
    Starting,
    /// Running, live, health >= 50 (or unknown).
    Active,
    /// Running and live, health < 50.
    Degraded,
    /// Running (connected) but no frame within 3 s.
    Starving,
    /// Stopped, offline or error.
    Offline,
}

impl Condition {
    /// The condition of a camera with this status, liveness and health.
    pub fn of(status: CameraStatus, is_live: bool, health: i32) -> Self {
        match status {
            CameraStatus::Starting => Self::Starting,
            CameraStatus::Stopped | CameraStatus::Offline | CameraStatus::Error => Self::Offline,
            CameraStatus::Running if !is_live => Self::Starving,
            CameraStatus::Running if (0..50).contains(&health) => Self::Degraded,
            CameraStatus::Running => Self::Active,
        }
    }

    /// The word used in webhook payloads and on the dashboard.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Active => "active",
            Self::Degraded => "degraded",
            Self::Starving => "starving",
            Self::Offline => "offline",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn running() -> HealthInputs {
        HealthInputs {
            status: CameraStatus::Running,
            received_fps: 25.0,
            expected_fps: Some(25.0),
            buffered_frames: 0.0,
            packet_loss_pct: 0.0,
            restarted_recently: false,
            is_live: true,
        }
    }

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0)
            .single()
            .unwrap_or_else(|| panic!("time"))
    }

    #[test]
    fn a_perfect_running_camera_scores_100() {
        assert_eq!(score(&running()), 100);
    }

    #[test]
    fn a_starting_camera_scores_minus_one_whatever_else_it_reports() {
        let h = HealthInputs {
            status: CameraStatus::Starting,
            ..running()
        };
        assert_eq!(score(&h), -1);
    }

    #[test]
    fn stopped_offline_and_error_cameras_score_zero() {
        for status in [
            CameraStatus::Stopped,
            CameraStatus::Offline,
            CameraStatus::Error,
        ] {
            assert_eq!(
                score(&HealthInputs {
                    status,
                    ..running()
                }),
                0,
                "{status}"
            );
        }
    }

    #[test]
    fn the_rate_term_is_the_received_share_of_the_expected_rate_capped_at_100() {
        let with = |received_fps| {
            score(&HealthInputs {
                received_fps,
                ..running()
            })
        };
        assert_eq!(with(12.5), 50);
        assert_eq!(with(20.0), 80);
        assert_eq!(with(30.0), 100, "more than expected is not more than 100");
        assert_eq!(with(0.0), 0);
        assert_eq!(with(-1.0), 0, "unknown received fps counts as none");
        assert_eq!(
            rate_points(10.0, None),
            100.0,
            "no expected rate: nothing to compare"
        );
        assert_eq!(rate_points(10.0, Some(0.0)), 100.0);
    }

    #[test]
    fn buffering_up_to_a_quarter_second_is_free() {
        let with = |buffered_frames| {
            score(&HealthInputs {
                buffered_frames,
                ..running()
            })
        };
        assert_eq!(buffering_pct(6.25, Some(25.0)), Some(25.0));
        assert_eq!(with(6.25), 100);
        assert_eq!(with(3.0), 100);
    }

    #[test]
    fn buffering_costs_up_to_30_points_linearly_from_25_to_100_percent() {
        let with = |buffered_frames| {
            score(&HealthInputs {
                buffered_frames,
                ..running()
            })
        };
        // 62.5 % of a second: half-way from 25 % to 100 % → 15 points.
        assert_eq!(with(15.625), 85);
        assert_eq!(with(25.0), 70, "a full second of buffer");
        assert_eq!(with(250.0), 70, "capped at 100 %");
        assert_eq!(buffering_pct(250.0, Some(25.0)), Some(100.0));
        assert_eq!(with(-1.0), 100, "unknown buffer: no penalty");
        assert_eq!(buffer_penalty(25.0, None), 0.0, "unknown rate: no penalty");
    }

    #[test]
    fn packet_loss_costs_two_points_per_percent_at_most_30() {
        let with = |packet_loss_pct| {
            score(&HealthInputs {
                packet_loss_pct,
                ..running()
            })
        };
        assert_eq!(with(2.5), 95);
        assert_eq!(with(15.0), 70);
        assert_eq!(with(40.0), 70, "capped at 30 points");
        assert_eq!(with(-1.0), 100, "unknown loss: no penalty");
    }

    #[test]
    fn a_restart_in_the_last_ten_minutes_costs_20_points() {
        let h = HealthInputs {
            restarted_recently: true,
            ..running()
        };
        assert_eq!(score(&h), 80);
        assert!(restarted_recently(Some(t(0)), t(600)));
        assert!(!restarted_recently(Some(t(0)), t(601)));
        assert!(!restarted_recently(None, t(0)));
    }

    #[test]
    fn a_feed_that_is_not_live_costs_50_points() {
        let h = HealthInputs {
            is_live: false,
            ..running()
        };
        assert_eq!(score(&h), 50);
    }

    #[test]
    fn the_score_is_clamped_at_zero() {
        let h = HealthInputs {
            received_fps: 5.0,
            buffered_frames: 100.0,
            packet_loss_pct: 50.0,
            restarted_recently: true,
            is_live: false,
            ..running()
        };
        assert_eq!(score(&h), 0);
    }

    #[test]
    fn the_terms_add_up() {
        // 80 (20 of 25 fps) - 15 (buffer) - 10 (5 % loss) - 20 (restart) = 35.
        let h = HealthInputs {
            received_fps: 20.0,
            buffered_frames: 15.625,
            packet_loss_pct: 5.0,
            restarted_recently: true,
            ..running()
        };
        assert_eq!(score(&h), 35);
    }

    #[test]
    fn a_feed_is_live_with_a_frame_in_the_last_three_seconds() {
        assert!(is_live(Some(t(0)), t(3)));
        assert!(!is_live(Some(t(0)), t(4)));
        assert!(!is_live(None, t(0)));
    }

    #[test]
    fn a_camera_is_measuring_for_a_second_after_it_connects() {
        assert!(is_measuring(Some(t(0)), t(0)));
        assert!(!is_measuring(Some(t(0)), t(1)));
        assert!(!is_measuring(None, t(0)));
    }

    #[test]
    fn the_expected_rate_is_configured_else_declared_else_the_median() {
        assert_eq!(expected_fps(Some(25.0), Some(30.0), Some(12.0)), Some(25.0));
        assert_eq!(expected_fps(None, Some(30.0), Some(12.0)), Some(30.0));
        assert_eq!(expected_fps(None, None, Some(12.0)), Some(12.0));
        assert_eq!(expected_fps(None, Some(0.0), Some(12.0)), Some(12.0));
        assert_eq!(expected_fps(None, None, None), None);
    }

    #[test]
    fn the_median_covers_the_last_minute_of_positive_samples() {
        let mut history = FpsHistory::default();
        for (s, fps) in [
            (0, 100.0),
            (10, 24.0),
            (20, 25.0),
            (30, 0.0),
            (40, 26.0),
            (50, 25.5),
        ] {
            history.record(t(s), fps);
        }
        // At 65 s the 100 fps sample of second 0 is out of the window; 0 is not a rate.
        assert_eq!(history.median(t(65)), Some(25.25));
        assert_eq!(history.median(t(200)), None);
    }

    #[test]
    fn the_history_takes_at_most_one_sample_per_second() {
        let mut history = FpsHistory::default();
        history.record(t(0), 10.0);
        history.record(t(0), 50.0);
        history.record(t(0), 50.0);
        assert_eq!(history.median(t(1)), Some(10.0));
    }

    #[test]
    fn conditions_follow_the_camera_states_of_the_spec() {
        use CameraStatus::*;
        assert_eq!(Condition::of(Starting, false, -1), Condition::Starting);
        assert_eq!(Condition::of(Running, true, 50), Condition::Active);
        assert_eq!(Condition::of(Running, true, -1), Condition::Active);
        assert_eq!(Condition::of(Running, true, 49), Condition::Degraded);
        assert_eq!(Condition::of(Running, false, 100), Condition::Starving);
        for status in [Stopped, Offline, Error] {
            assert_eq!(Condition::of(status, false, 0), Condition::Offline);
        }
    }
}
