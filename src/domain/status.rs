//! The status rules of SPEC section 4: camera states, health grades, license status and the
//! reasons shown next to them.
//!
//! Status is derived at read time from stored state (the newest heartbeat, its receive time and
//! the agents' clock offsets), so no background job is needed to keep it correct and the UI, the
//! API and the e-mails all agree. Everything here is a pure function over plain data: `now` is
//! passed in, nothing touches the database or the clock. The store maps its rows into
//! [`CameraReport`] and [`AgentClock`]; this module decides.
//!
//! Choices at the boundaries (the SPEC leaves them open):
//! - A heartbeat received exactly `check_interval` ago is still fresh ([`is_fresh`]).
//! - Health `-1` (unknown) on a running, live camera does not count as "health < 50": the camera
//!   is `active` unless its webhooks fail. Any other negative value is treated like `-1`.
//! - Durations in reasons are rounded down to whole seconds and shown with at most two units
//!   ([`human_duration`]).
//! - A bad picture (`black`, `uniform`, `frozen`, SPEC section 7) makes a running, live camera
//!   `degraded`; it does not change a worse state (starving, starting, inactive), whose reason
//!   says more. The time in its reason ("since 10:42") is in the camera's configured time zone,
//!   else UTC (then said so): the same sentence in the UI, the API and the e-mails, without the
//!   reader's zone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A camera is live when a frame arrived within this many seconds (decided by the agent; kept
/// here for documentation and display).
pub const LIVE_WINDOW_SECONDS: i64 = 3;

/// An agent clock offset larger than this (either way) is reported as a reason.
pub const CLOCK_SKEW_THRESHOLD_SECONDS: f64 = 30.0;

/// Health at or above this is not "bad" (SPEC: degraded below 50).
const HEALTH_FAIR_MIN: i32 = 50;
/// Health at or above this is "good".
const HEALTH_GOOD_MIN: i32 = 80;

// The reported statuses are the wire's own enums: one definition, in the protocol crate.
pub use streamwatch_protocol::{CameraStatus, PictureState, WebhookStatus};

/// What the agent concluded about a camera's picture (SPEC section 7), as the rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureFacts {
    /// The current state.
    pub state: PictureState,
    /// When the state began (the caller corrects it to the server clock where it can).
    pub since: DateTime<Utc>,
}

/// What the newest fresh heartbeat said about one camera (as stored by the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraReport {
    /// The camera id from the agent's configuration (`camera-1`).
    pub camera_id: String,
    /// The status the agent reported.
    pub status: CameraStatus,
    /// -1 unknown, else 0..100.
    pub health: i32,
    /// A frame arrived within the last 3 s, at observation time.
    pub is_live: bool,
    /// When the last frame arrived, if ever.
    pub last_frame_at: Option<DateTime<Utc>>,
    /// The agent's observation time of this report (already clock-corrected).
    pub observed_at: DateTime<Utc>,
    /// The state of the camera's webhooks.
    pub webhooks_status: WebhookStatus,
    /// How many webhook events the agent holds back because delivery fails.
    pub webhooks_cached: i64,
    /// The last error the agent saw for this camera, if any.
    pub last_error: Option<String>,
    /// Activity time of the heartbeat that last listed this camera. With several agent
    /// instances on one license, a camera whose instance went silent is not fresh even while
    /// another instance keeps the license fresh.
    pub reported_at: DateTime<Utc>,
    /// Picture health; `None` when the agent takes no snapshots of this camera.
    pub picture: Option<PictureFacts>,
    /// The camera's configured time zone (times in its reasons); `None`: UTC.
    pub timezone: Option<Tz>,
}

impl CameraReport {
    /// A camera of a heartbeat as the rules see it, observed (clock-corrected) at `observed_at`.
    pub fn from_wire(
        camera_id: &str,
        cam: &streamwatch_protocol::CameraReport,
        observed_at: DateTime<Utc>,
    ) -> Self {
        Self {
            camera_id: camera_id.to_owned(),
            status: cam.status,
            health: cam.health,
            is_live: cam.is_live,
            last_frame_at: cam.last_frame_at,
            observed_at,
            webhooks_status: cam.webhooks.status,
            webhooks_cached: cam.webhooks.cached,
            // Reports stored by an older server may still hold query strings; reasons quote this.
            last_error: cam
                .last_error
                .as_deref()
                .map(streamwatch_protocol::redact_urls_in_text),
            reported_at: observed_at,
            picture: cam.picture.as_ref().map(|p| PictureFacts {
                state: p.state,
                since: p.since,
            }),
            // Validated at ingest; a name this build does not know reads as UTC.
            timezone: cam.timezone.as_deref().and_then(|t| t.parse().ok()),
        }
    }

    /// Whether the agent reports the picture as useless (`black`, `uniform`, `frozen`).
    pub fn picture_is_bad(&self) -> bool {
        self.picture.is_some_and(|p| p.state.is_bad())
    }
}

/// A camera's derived state (SPEC section 4, first table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    /// Running, live, health >= 50 (or unknown), webhooks not failing.
    Active,
    /// Running and live, but health < 50, webhooks failing, or a bad picture.
    Degraded,
    /// Running (connected) but no frame within 3 s.
    Starving,
    /// The agent is opening the source.
    Starting,
    /// Stopped, offline, error, or not in any fresh heartbeat.
    Inactive,
}

impl CameraState {
    /// The API spelling (`"active"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Degraded => "degraded",
            Self::Starving => "starving",
            Self::Starting => "starting",
            Self::Inactive => "inactive",
        }
    }

    /// Whether the camera counts as working for the license status (`active` or `degraded`).
    pub fn is_working(self) -> bool {
        matches!(self, Self::Active | Self::Degraded)
    }
}

/// A coarse grade of the agent's health score (SPEC section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthGrade {
    /// 80..100.
    Good,
    /// 50..79.
    Fair,
    /// 0..49.
    Bad,
    /// -1: starting or not known.
    Unknown,
}

impl HealthGrade {
    /// The API spelling (`"good"`), also used in reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Fair => "fair",
            Self::Bad => "bad",
            Self::Unknown => "unknown",
        }
    }
}

/// A license's derived status (SPEC section 4, second table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum LicenseStatus {
    /// A fresh heartbeat and every camera active.
    AllActive,
    /// A fresh heartbeat, at least one camera active or degraded, not every camera active.
    PartiallyActive,
    /// No fresh heartbeat, or no camera active or degraded (including no cameras at all).
    Inactive,
    /// No heartbeat was ever accepted for the license.
    NotInstalled,
}

impl LicenseStatus {
    /// The API spelling (`"all_active"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllActive => "all_active",
            Self::PartiallyActive => "partially_active",
            Self::Inactive => "inactive",
            Self::NotInstalled => "not_installed",
        }
    }

    /// The symbol shown next to the status in the UI and e-mails.
    /// Urgency order for sorting: inactive, partially active, not installed, all active.
    /// `store::status::status_cte` computes the same rank in SQL.
    pub fn rank(self) -> i32 {
        match self {
            Self::Inactive => 0,
            Self::PartiallyActive => 1,
            Self::NotInstalled => 2,
            Self::AllActive => 3,
        }
    }

    /// Parses the API's spelling (`all_active`, ...).
    pub fn parse(input: &str) -> Result<Self, String> {
        match input {
            "all_active" => Ok(Self::AllActive),
            "partially_active" => Ok(Self::PartiallyActive),
            "inactive" => Ok(Self::Inactive),
            "not_installed" => Ok(Self::NotInstalled),
            _ => Err(format!(
                "must be one of all_active, partially_active, inactive, not_installed, not '{input}'"
            )),
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Self::AllActive => "✅",
            Self::PartiallyActive => "⚠️",
            Self::Inactive => "❌",
            Self::NotInstalled => "✘",
        }
    }

    /// The human label (`"All Active"`).
    pub fn label(self) -> &'static str {
        match self {
            Self::AllActive => "All Active",
            Self::PartiallyActive => "Partially Active",
            Self::Inactive => "Inactive",
            Self::NotInstalled => "Not Installed",
        }
    }
}

/// One agent instance of a license and how far its clock is off.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentClock {
    /// The agent's stable instance id.
    pub instance_id: String,
    /// The hostname the agent reported.
    pub hostname: String,
    /// Agent clock minus server clock, in seconds; positive = agent ahead.
    pub clock_offset_seconds: f64,
    /// Receive time (server clock) of the agent's newest heartbeat.
    pub last_seen_at: DateTime<Utc>,
}

/// Everything [`evaluate`] needs to decide one license's status.
#[derive(Debug, Clone, Copy)]
pub struct LicenseFacts<'a> {
    /// The current time (server clock, possibly simulated).
    pub now: DateTime<Utc>,
    /// The license's check interval in seconds.
    pub check_interval_seconds: i64,
    /// Receive time (server clock) of the newest accepted heartbeat; None = never installed.
    pub last_activity_at: Option<DateTime<Utc>>,
    /// The cameras listed in the newest heartbeat of the license (retired cameras — not in it —
    /// are absent).
    pub cameras: &'a [CameraReport],
    /// The license's agents whose clocks should be checked (the caller decides which are
    /// current); their order does not matter.
    pub agents: &'a [AgentClock],
}

/// The outcome of [`evaluate`]: the status, why, and every camera's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The license status.
    pub status: LicenseStatus,
    /// Sentences an operator can act on: license first, then cameras by id, then agents.
    /// Empty when all cameras are active and no clock is off.
    pub reasons: Vec<String>,
    /// `(camera_id, state)` for every listed camera, ordered by camera id.
    pub cameras: Vec<(String, CameraState)>,
}

/// Whether a heartbeat received at `last_activity_at` is fresh at `now`.
///
/// The boundary is inclusive: a heartbeat received exactly `check_interval_seconds` ago is still
/// fresh; one second later it is not. A receive time after `now` (which only a clock change can
/// produce) counts as fresh. `None` (never received) is never fresh.
pub fn is_fresh(
    last_activity_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    check_interval_seconds: i64,
) -> bool {
    last_activity_at.is_some_and(|at| (now - at).num_seconds() <= check_interval_seconds)
}

/// A camera's state from its report in the newest heartbeat; `fresh` says whether that heartbeat
/// is fresh (see [`is_fresh`]).
///
/// Health below 0 (`-1`, unknown) is not "< 50": a running, live camera with unknown health is
/// `active` unless its webhooks fail. A `black`, `uniform` or `frozen` picture makes a running,
/// live camera `degraded`; `ok`, `unknown` and no picture change nothing.
pub fn camera_state(report: &CameraReport, fresh: bool) -> CameraState {
    if !fresh {
        return CameraState::Inactive;
    }
    match report.status {
        CameraStatus::Starting => CameraState::Starting,
        CameraStatus::Stopped | CameraStatus::Offline | CameraStatus::Error => {
            CameraState::Inactive
        }
        CameraStatus::Running if !report.is_live => CameraState::Starving,
        CameraStatus::Running => {
            if health_grade(report.health) == HealthGrade::Bad
                || report.webhooks_status == WebhookStatus::Failing
                || report.picture_is_bad()
            {
                CameraState::Degraded
            } else {
                CameraState::Active
            }
        }
    }
}

/// The grade of a health score: good >= 80, fair 50..79, bad 0..49, unknown for -1 (and any
/// other negative value). Values above 100 grade as good.
pub fn health_grade(health: i32) -> HealthGrade {
    if health < 0 {
        HealthGrade::Unknown
    } else if health < HEALTH_FAIR_MIN {
        HealthGrade::Bad
    } else if health < HEALTH_GOOD_MIN {
        HealthGrade::Fair
    } else {
        HealthGrade::Good
    }
}

/// Decide a license's status, its reasons and every camera's state (SPEC section 4).
///
/// When the license is silent (no fresh heartbeat) every camera is inactive and only the
/// "no heartbeat for …" reason is given, not one per camera; agent clock reasons are always
/// given.
pub fn evaluate(facts: &LicenseFacts<'_>) -> Evaluation {
    let fresh = is_fresh(
        facts.last_activity_at,
        facts.now,
        facts.check_interval_seconds,
    );

    let mut reports: Vec<&CameraReport> = facts.cameras.iter().collect();
    reports.sort_by(|a, b| a.camera_id.cmp(&b.camera_id));
    let camera_fresh = |r: &CameraReport| {
        fresh && is_fresh(Some(r.reported_at), facts.now, facts.check_interval_seconds)
    };
    let cameras: Vec<(String, CameraState)> = reports
        .iter()
        .map(|r| (r.camera_id.clone(), camera_state(r, camera_fresh(r))))
        .collect();

    let mut reasons = Vec::new();
    let status = match facts.last_activity_at {
        None => {
            reasons.push("never installed: no heartbeat was ever received".to_owned());
            LicenseStatus::NotInstalled
        }
        Some(last) if !fresh => {
            let silent = (facts.now - last).num_seconds();
            reasons.push(format!("no heartbeat for {}", human_duration(silent)));
            LicenseStatus::Inactive
        }
        Some(_) => {
            if cameras.is_empty() {
                reasons.push("no cameras configured".to_owned());
            }
            for (report, &(_, state)) in reports.iter().zip(&cameras) {
                if camera_fresh(report) {
                    camera_reasons(report, state, &mut reasons);
                } else {
                    let silent = (facts.now - report.reported_at).num_seconds();
                    reasons.push(format!(
                        "{} not reported for {} (its agent is silent)",
                        report.camera_id,
                        human_duration(silent)
                    ));
                }
            }
            let any_working = cameras.iter().any(|(_, s)| s.is_working());
            let all_active = cameras.iter().all(|(_, s)| *s == CameraState::Active);
            if !any_working {
                LicenseStatus::Inactive
            } else if all_active {
                LicenseStatus::AllActive
            } else {
                LicenseStatus::PartiallyActive
            }
        }
    };

    agent_reasons(facts.agents, &mut reasons);

    Evaluation {
        status,
        reasons,
        cameras,
    }
}

/// Why one camera of a fresh heartbeat is not active (`None` when it is), in the words of the
/// Activity Status page; a camera alert (SPEC section 5a) names its cameras with it.
pub fn camera_reason(report: &CameraReport, state: CameraState) -> Option<String> {
    if state == CameraState::Active {
        return None;
    }
    let mut reasons = Vec::new();
    camera_reasons(report, state, &mut reasons);
    Some(
        reasons
            .into_iter()
            .next()
            .unwrap_or_else(|| format!("{} {}", report.camera_id, state.as_str())),
    )
}

/// The reasons for one camera of a fresh heartbeat: why it is not active, then failing webhooks
/// (reported whatever the state, since cached events are at risk either way).
fn camera_reasons(report: &CameraReport, state: CameraState, reasons: &mut Vec<String>) {
    let id = &report.camera_id;
    match state {
        CameraState::Active => {}
        CameraState::Degraded => {
            let grade = health_grade(report.health);
            if grade == HealthGrade::Bad {
                reasons.push(format!(
                    "{id} health {} ({})",
                    report.health,
                    grade.as_str()
                ));
            }
            if let Some(picture) = report.picture.filter(|p| p.state.is_bad()) {
                reasons.push(format!(
                    "{id} picture {} since {}",
                    picture.state.as_str(),
                    clock_time(picture.since, report.observed_at, report.timezone)
                ));
            }
        }
        CameraState::Starving => match report.last_frame_at {
            Some(frame) => {
                let gap = (report.observed_at - frame).num_seconds();
                reasons.push(format!(
                    "{id} connected but no frames for {}",
                    human_duration(gap)
                ));
            }
            None => reasons.push(format!("{id} connected but no frames yet")),
        },
        CameraState::Starting => reasons.push(format!("{id} starting")),
        CameraState::Inactive => {
            let word = report.status.as_str();
            match report.last_error.as_deref().map(str::trim) {
                Some(error) if !error.is_empty() => reasons.push(format!("{id} {word}: {error}")),
                _ => reasons.push(format!("{id} {word}")),
            }
        }
    }
    if report.webhooks_status == WebhookStatus::Failing {
        reasons.push(format!(
            "webhooks failing on {id} ({} cached)",
            report.webhooks_cached
        ));
    }
}

/// One reason per agent whose clock is off by more than 30 s, ordered by hostname; the hostname
/// is named only when the license has several agents.
fn agent_reasons(agents: &[AgentClock], reasons: &mut Vec<String>) {
    let mut skewed: Vec<&AgentClock> = agents
        .iter()
        .filter(|a| a.clock_offset_seconds.abs() > CLOCK_SKEW_THRESHOLD_SECONDS)
        .collect();
    skewed.sort_by(|a, b| {
        (a.hostname.as_str(), a.instance_id.as_str())
            .cmp(&(b.hostname.as_str(), b.instance_id.as_str()))
    });
    let name_hosts = agents.len() > 1;
    for agent in skewed {
        let offset = agent.clock_offset_seconds;
        // Saturating float-to-int conversion; the threshold already excluded NaN.
        let amount = human_duration(offset.abs().round() as i64);
        let direction = if offset > 0.0 { "ahead" } else { "behind" };
        if name_hosts {
            reasons.push(format!(
                "agent {} clock {amount} {direction}",
                agent.hostname
            ));
        } else {
            reasons.push(format!("agent clock {amount} {direction}"));
        }
    }
}

/// A time of day for a reason, in `tz` (else UTC, then suffixed `UTC`): `10:42`, or
/// `2026-11-22 10:42` when it is not on the same day as `now` there.
fn clock_time(at: DateTime<Utc>, now: DateTime<Utc>, tz: Option<Tz>) -> String {
    let zone = tz.unwrap_or(Tz::UTC);
    let (local, today) = (at.with_timezone(&zone), now.with_timezone(&zone));
    let mut text = if local.date_naive() == today.date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M").to_string()
    };
    if tz.is_none() {
        text.push_str(" UTC");
    }
    text
}

/// A duration for people: `"40 s"`, `"5 min"`, `"2 h 13 min"`, `"3 d 4 h"`.
///
/// At most two units, each rounded down; a zero second unit is left out (`"1 h"`, `"1 d"`).
/// Negative durations show as `"0 s"`.
pub fn human_duration(seconds: i64) -> String {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;

    let s = seconds.max(0);
    let (major, major_unit, minor, minor_unit) = if s < MINUTE {
        return format!("{s} s");
    } else if s < HOUR {
        return format!("{} min", s / MINUTE);
    } else if s < DAY {
        (s / HOUR, "h", (s % HOUR) / MINUTE, "min")
    } else {
        (s / DAY, "d", (s % DAY) / HOUR, "h")
    };
    if minor == 0 {
        format!("{major} {major_unit}")
    } else {
        format!("{major} {major_unit} {minor} {minor_unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    const INTERVAL: i64 = 600;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
    }

    fn secs_ago(seconds: i64) -> DateTime<Utc> {
        now() - Duration::seconds(seconds)
    }

    /// A running, live, healthy camera with working webhooks: active.
    fn active(id: &str) -> CameraReport {
        CameraReport {
            camera_id: id.to_owned(),
            status: CameraStatus::Running,
            health: 95,
            is_live: true,
            last_frame_at: Some(secs_ago(1)),
            observed_at: secs_ago(1),
            webhooks_status: WebhookStatus::Ok,
            webhooks_cached: 0,
            last_error: None,
            reported_at: secs_ago(1),
            picture: None,
            timezone: None,
        }
    }

    fn with_picture(id: &str, state: PictureState, since: DateTime<Utc>) -> CameraReport {
        CameraReport {
            picture: Some(PictureFacts { state, since }),
            ..active(id)
        }
    }

    fn with_status(id: &str, status: CameraStatus, last_error: Option<&str>) -> CameraReport {
        CameraReport {
            status,
            health: if status == CameraStatus::Starting {
                -1
            } else {
                0
            },
            is_live: false,
            last_error: last_error.map(str::to_owned),
            ..active(id)
        }
    }

    fn agent(host: &str, offset: f64) -> AgentClock {
        AgentClock {
            instance_id: format!("id-{host}"),
            hostname: host.to_owned(),
            clock_offset_seconds: offset,
            last_seen_at: secs_ago(5),
        }
    }

    fn eval(cameras: &[CameraReport], agents: &[AgentClock]) -> Evaluation {
        evaluate(&LicenseFacts {
            now: now(),
            check_interval_seconds: INTERVAL,
            last_activity_at: Some(secs_ago(30)),
            cameras,
            agents,
        })
    }

    // --- camera state table ---

    #[test]
    fn a_running_live_camera_with_health_50_and_ok_webhooks_is_active() {
        let report = CameraReport {
            health: 50,
            ..active("c")
        };
        assert_eq!(camera_state(&report, true), CameraState::Active);
    }

    #[test]
    fn a_running_live_camera_with_health_49_is_degraded() {
        let report = CameraReport {
            health: 49,
            ..active("c")
        };
        assert_eq!(camera_state(&report, true), CameraState::Degraded);
    }

    #[test]
    fn a_running_live_camera_with_unknown_health_is_active() {
        let report = CameraReport {
            health: -1,
            ..active("c")
        };
        assert_eq!(camera_state(&report, true), CameraState::Active);
    }

    #[test]
    fn a_running_live_camera_with_good_health_but_failing_webhooks_is_degraded() {
        let report = CameraReport {
            webhooks_status: WebhookStatus::Failing,
            webhooks_cached: 12,
            ..active("c")
        };
        assert_eq!(camera_state(&report, true), CameraState::Degraded);
    }

    #[test]
    fn a_camera_without_webhooks_can_be_active() {
        let report = CameraReport {
            webhooks_status: WebhookStatus::None,
            ..active("c")
        };
        assert_eq!(camera_state(&report, true), CameraState::Active);
    }

    #[test]
    fn a_running_camera_that_is_not_live_is_starving() {
        let report = CameraReport {
            is_live: false,
            ..active("c")
        };
        assert_eq!(camera_state(&report, true), CameraState::Starving);
    }

    #[test]
    fn a_starting_camera_is_starting() {
        let report = with_status("c", CameraStatus::Starting, None);
        assert_eq!(camera_state(&report, true), CameraState::Starting);
    }

    #[test]
    fn stopped_offline_and_error_cameras_are_inactive() {
        for status in [
            CameraStatus::Stopped,
            CameraStatus::Offline,
            CameraStatus::Error,
        ] {
            let report = with_status("c", status, None);
            assert_eq!(
                camera_state(&report, true),
                CameraState::Inactive,
                "{status:?}"
            );
        }
    }

    #[test]
    fn a_running_camera_in_a_stale_heartbeat_is_inactive() {
        assert_eq!(camera_state(&active("c"), false), CameraState::Inactive);
    }

    // --- health grades ---

    #[test]
    fn health_grades_change_at_80_and_50_and_negative_is_unknown() {
        assert_eq!(health_grade(100), HealthGrade::Good);
        assert_eq!(health_grade(80), HealthGrade::Good);
        assert_eq!(health_grade(79), HealthGrade::Fair);
        assert_eq!(health_grade(50), HealthGrade::Fair);
        assert_eq!(health_grade(49), HealthGrade::Bad);
        assert_eq!(health_grade(0), HealthGrade::Bad);
        assert_eq!(health_grade(-1), HealthGrade::Unknown);
        assert_eq!(health_grade(-7), HealthGrade::Unknown);
    }

    // --- freshness ---

    #[test]
    fn a_heartbeat_received_exactly_one_interval_ago_is_fresh() {
        assert!(is_fresh(Some(secs_ago(INTERVAL)), now(), INTERVAL));
    }

    #[test]
    fn a_heartbeat_received_one_second_past_the_interval_is_stale() {
        assert!(!is_fresh(Some(secs_ago(INTERVAL + 1)), now(), INTERVAL));
    }

    #[test]
    fn no_heartbeat_at_all_is_never_fresh() {
        assert!(!is_fresh(None, now(), INTERVAL));
    }

    // --- license status table ---

    #[test]
    fn a_license_that_never_sent_a_heartbeat_is_not_installed() {
        let e = evaluate(&LicenseFacts {
            now: now(),
            check_interval_seconds: INTERVAL,
            last_activity_at: None,
            cameras: &[],
            agents: &[],
        });
        assert_eq!(e.status, LicenseStatus::NotInstalled);
        assert_eq!(
            e.reasons,
            ["never installed: no heartbeat was ever received"]
        );
        assert!(e.cameras.is_empty());
    }

    #[test]
    fn a_silent_license_is_inactive_with_only_the_no_heartbeat_reason() {
        let cameras = [
            active("camera-1"),
            with_status("camera-2", CameraStatus::Stopped, None),
        ];
        let e = evaluate(&LicenseFacts {
            now: now(),
            check_interval_seconds: INTERVAL,
            last_activity_at: Some(secs_ago(2 * 3600 + 13 * 60 + 5)),
            cameras: &cameras,
            agents: &[],
        });
        assert_eq!(e.status, LicenseStatus::Inactive);
        assert_eq!(e.reasons, ["no heartbeat for 2 h 13 min"]);
        assert_eq!(
            e.cameras,
            [
                ("camera-1".to_owned(), CameraState::Inactive),
                ("camera-2".to_owned(), CameraState::Inactive),
            ]
        );
    }

    #[test]
    fn a_fresh_license_without_cameras_is_inactive_with_a_reason() {
        let e = eval(&[], &[]);
        assert_eq!(e.status, LicenseStatus::Inactive);
        assert_eq!(e.reasons, ["no cameras configured"]);
    }

    #[test]
    fn a_fresh_license_with_no_working_camera_is_inactive() {
        let cameras = [
            with_status(
                "camera-3",
                CameraStatus::Stopped,
                Some("connection refused"),
            ),
            with_status("camera-4", CameraStatus::Starting, None),
        ];
        let e = eval(&cameras, &[]);
        assert_eq!(e.status, LicenseStatus::Inactive);
        assert_eq!(
            e.reasons,
            ["camera-3 stopped: connection refused", "camera-4 starting"]
        );
    }

    #[test]
    fn a_fresh_license_with_every_camera_active_is_all_active_without_reasons() {
        let e = eval(
            &[active("camera-2"), active("camera-1")],
            &[agent("box", 20.0)],
        );
        assert_eq!(e.status, LicenseStatus::AllActive);
        assert!(e.reasons.is_empty());
        assert_eq!(
            e.cameras,
            [
                ("camera-1".to_owned(), CameraState::Active),
                ("camera-2".to_owned(), CameraState::Active),
            ]
        );
    }

    #[test]
    fn one_starving_camera_makes_the_license_partially_active() {
        let starving = CameraReport {
            is_live: false,
            last_frame_at: Some(secs_ago(41)),
            ..active("camera-2")
        };
        let e = eval(&[active("camera-1"), starving], &[]);
        assert_eq!(e.status, LicenseStatus::PartiallyActive);
        assert_eq!(e.reasons, ["camera-2 connected but no frames for 40 s"]);
    }

    #[test]
    fn only_degraded_cameras_make_the_license_partially_active() {
        let degraded = CameraReport {
            health: 42,
            webhooks_status: WebhookStatus::Failing,
            webhooks_cached: 12,
            ..active("camera-1")
        };
        let e = eval(&[degraded], &[]);
        assert_eq!(e.status, LicenseStatus::PartiallyActive);
        assert_eq!(
            e.reasons,
            [
                "camera-1 health 42 (bad)",
                "webhooks failing on camera-1 (12 cached)"
            ]
        );
    }

    // --- reasons ---

    #[test]
    fn a_starving_camera_that_never_had_a_frame_says_so() {
        let starving = CameraReport {
            is_live: false,
            last_frame_at: None,
            ..active("camera-2")
        };
        let e = eval(&[active("camera-1"), starving], &[]);
        assert_eq!(e.reasons, ["camera-2 connected but no frames yet"]);
    }

    #[test]
    fn inactive_camera_reasons_name_the_status_and_the_error_when_there_is_one() {
        let cameras = [
            with_status("camera-1", CameraStatus::Offline, Some("no route to host")),
            with_status("camera-2", CameraStatus::Error, Some("decoder crashed")),
            with_status("camera-3", CameraStatus::Stopped, Some("  ")),
            active("camera-0"),
        ];
        let e = eval(&cameras, &[]);
        assert_eq!(
            e.reasons,
            [
                "camera-1 offline: no route to host",
                "camera-2 error: decoder crashed",
                "camera-3 stopped",
            ]
        );
    }

    #[test]
    fn an_agent_clock_three_minutes_ahead_is_a_reason() {
        let e = eval(&[active("camera-1")], &[agent("box", 180.0)]);
        assert_eq!(e.status, LicenseStatus::AllActive);
        assert_eq!(e.reasons, ["agent clock 3 min ahead"]);
    }

    #[test]
    fn an_agent_clock_behind_is_a_reason() {
        let e = eval(&[active("camera-1")], &[agent("box", -45.0)]);
        assert_eq!(e.reasons, ["agent clock 45 s behind"]);
    }

    #[test]
    fn an_agent_clock_off_by_20_seconds_is_not_a_reason() {
        let e = eval(&[active("camera-1")], &[agent("box", 20.0)]);
        assert!(e.reasons.is_empty());
        let e = eval(&[active("camera-1")], &[agent("box", -30.0)]);
        assert!(e.reasons.is_empty());
    }

    #[test]
    fn an_agent_clock_off_by_31_seconds_is_a_reason_and_exactly_30_is_not() {
        let e = eval(&[active("camera-1")], &[agent("box", 31.0)]);
        assert_eq!(e.reasons, ["agent clock 31 s ahead"]);
        let e = eval(&[active("camera-1")], &[agent("box", 30.0)]);
        assert!(e.reasons.is_empty());
    }

    #[test]
    fn with_two_agents_the_skewed_one_is_named_by_hostname() {
        let e = eval(
            &[active("camera-1")],
            &[agent("site-7-box", 180.0), agent("site-7-spare", 2.0)],
        );
        assert_eq!(e.reasons, ["agent site-7-box clock 3 min ahead"]);
    }

    #[test]
    fn agent_clock_reasons_follow_the_no_heartbeat_reason_of_a_silent_license() {
        let cameras = [active("camera-1")];
        let agents = [agent("box", 180.0)];
        let e = evaluate(&LicenseFacts {
            now: now(),
            check_interval_seconds: INTERVAL,
            last_activity_at: Some(secs_ago(INTERVAL + 1)),
            cameras: &cameras,
            agents: &agents,
        });
        assert_eq!(e.status, LicenseStatus::Inactive);
        assert_eq!(
            e.reasons,
            ["no heartbeat for 10 min", "agent clock 3 min ahead"]
        );
    }

    // --- presentation ---

    #[test]
    fn license_statuses_have_their_spellings_symbols_and_labels() {
        let all = [
            (LicenseStatus::AllActive, "all_active", "✅", "All Active"),
            (
                LicenseStatus::PartiallyActive,
                "partially_active",
                "⚠️",
                "Partially Active",
            ),
            (LicenseStatus::Inactive, "inactive", "❌", "Inactive"),
            (
                LicenseStatus::NotInstalled,
                "not_installed",
                "✘",
                "Not Installed",
            ),
        ];
        for (status, wire, symbol, label) in all {
            assert_eq!(status.as_str(), wire);
            assert_eq!(status.symbol(), symbol);
            assert_eq!(status.label(), label);
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(wire)
            );
        }
    }

    #[test]
    fn camera_states_serialize_as_their_spelling() {
        for state in [
            CameraState::Active,
            CameraState::Degraded,
            CameraState::Starving,
            CameraState::Starting,
            CameraState::Inactive,
        ] {
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::json!(state.as_str())
            );
        }
    }

    #[test]
    fn human_durations_use_at_most_two_units_rounded_down() {
        let cases = [
            (0, "0 s"),
            (59, "59 s"),
            (60, "1 min"),
            (3_599, "59 min"),
            (3_600, "1 h"),
            (2 * 3_600 + 13 * 60 + 59, "2 h 13 min"),
            (86_400, "1 d"),
            (3 * 86_400 + 4 * 3_600 + 59 * 60, "3 d 4 h"),
            (-5, "0 s"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(human_duration(seconds), expected, "{seconds} s");
        }
    }

    #[test]
    fn a_camera_of_a_silent_agent_instance_is_inactive_while_the_license_is_fresh() {
        let stale = CameraReport {
            reported_at: secs_ago(INTERVAL + 60),
            ..active("camera-2")
        };
        let cameras = [active("camera-1"), stale];
        let facts = LicenseFacts {
            now: now(),
            check_interval_seconds: INTERVAL,
            last_activity_at: Some(secs_ago(5)),
            cameras: &cameras,
            agents: &[],
        };
        let e = evaluate(&facts);
        assert_eq!(e.status, LicenseStatus::PartiallyActive);
        assert_eq!(e.cameras[1], ("camera-2".to_owned(), CameraState::Inactive));
        assert_eq!(
            e.reasons,
            ["camera-2 not reported for 11 min (its agent is silent)"]
        );
    }

    // --- picture health ---

    #[test]
    fn a_black_uniform_or_frozen_picture_makes_a_live_camera_degraded() {
        for state in [
            PictureState::Black,
            PictureState::Uniform,
            PictureState::Frozen,
        ] {
            let report = with_picture("c", state, secs_ago(600));
            assert_eq!(
                camera_state(&report, true),
                CameraState::Degraded,
                "{state}"
            );
        }
    }

    #[test]
    fn an_ok_or_unknown_picture_or_none_changes_nothing() {
        for state in [PictureState::Ok, PictureState::Unknown] {
            let report = with_picture("c", state, secs_ago(600));
            assert_eq!(camera_state(&report, true), CameraState::Active, "{state}");
        }
        assert_eq!(camera_state(&active("c"), true), CameraState::Active);
    }

    #[test]
    fn a_bad_picture_does_not_hide_a_worse_state() {
        let frozen = |r: CameraReport| CameraReport {
            picture: Some(PictureFacts {
                state: PictureState::Frozen,
                since: secs_ago(600),
            }),
            ..r
        };
        let starving = frozen(CameraReport {
            is_live: false,
            ..active("c")
        });
        assert_eq!(camera_state(&starving, true), CameraState::Starving);
        let offline = frozen(with_status("c", CameraStatus::Offline, None));
        assert_eq!(camera_state(&offline, true), CameraState::Inactive);
        let starting = frozen(with_status("c", CameraStatus::Starting, None));
        assert_eq!(camera_state(&starting, true), CameraState::Starting);
        assert_eq!(
            camera_state(&frozen(active("c")), false),
            CameraState::Inactive
        );
    }

    #[test]
    fn a_frozen_picture_makes_the_license_partially_active_with_its_time_in_utc() {
        let since = Utc.with_ymd_and_hms(2026, 11, 23, 9, 42, 0).unwrap();
        let e = eval(
            &[
                active("camera-1"),
                with_picture("camera-2", PictureState::Frozen, since),
            ],
            &[],
        );
        assert_eq!(e.status, LicenseStatus::PartiallyActive);
        assert_eq!(e.reasons, ["camera-2 picture frozen since 09:42 UTC"]);
        let report = with_picture("camera-2", PictureState::Frozen, since);
        assert_eq!(
            camera_reason(&report, CameraState::Degraded).as_deref(),
            Some("camera-2 picture frozen since 09:42 UTC")
        );
    }

    #[test]
    fn the_picture_reason_speaks_the_cameras_time_zone_and_names_an_earlier_day() {
        let berlin = CameraReport {
            timezone: Some(chrono_tz::Europe::Berlin),
            ..with_picture(
                "camera-2",
                PictureState::Black,
                Utc.with_ymd_and_hms(2026, 11, 23, 9, 42, 0).unwrap(),
            )
        };
        assert_eq!(
            eval(&[berlin], &[]).reasons,
            ["camera-2 picture black since 10:42"]
        );
        let days_ago = with_picture("camera-3", PictureState::Uniform, secs_ago(2 * 86_400));
        assert_eq!(
            eval(&[days_ago], &[]).reasons,
            ["camera-3 picture uniform since 2026-11-21 10:00 UTC"]
        );
    }

    #[test]
    fn a_bad_picture_and_bad_health_give_both_reasons() {
        let report = CameraReport {
            health: 30,
            ..with_picture("camera-1", PictureState::Frozen, secs_ago(300))
        };
        assert_eq!(
            eval(&[report], &[]).reasons,
            [
                "camera-1 health 30 (bad)",
                "camera-1 picture frozen since 09:55 UTC"
            ]
        );
    }

    #[test]
    fn the_wire_picture_and_time_zone_reach_the_rules() {
        let wire: streamwatch_protocol::CameraReport = serde_json::from_str(
            r#"{"status": "running", "is_live": true, "health": 90, "timezone": "Europe/Berlin",
                "picture": {"state": "frozen", "since": "2026-11-23T09:42:00Z", "checked_at": "2026-11-23T09:59:00Z"}}"#,
        )
        .unwrap();
        let report = CameraReport::from_wire("camera-2", &wire, now());
        assert_eq!(report.timezone, Some(chrono_tz::Europe::Berlin));
        assert!(report.picture_is_bad());
        assert_eq!(camera_state(&report, true), CameraState::Degraded);
    }
}
