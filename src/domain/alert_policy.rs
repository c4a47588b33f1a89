//! The alert-routing rules of SPEC section 5a that come on top of section 5's inactivity rules
//! (`notify_policy`): escalation, the effect of an acknowledgement, and camera-level
//! (`partial`) episodes. Pure functions over plain data, like `notify_policy`.
//!
//! ```text
//!   partial since          opened (after_seconds of counting time)       all cameras active
//!      ●──────────────────────●────────── reminder 1 ── reminder 2 ──────────●
//!   license turns ⚠️      license.partial                           license.partial_recovered
//!
//!   escalation step i: opened + after_seconds(i), once per episode, unless acknowledged
//! ```
//!
//! - An acknowledged episode gets no more reminders and no escalation; its recovery still goes
//!   out (the sweep applies that to `notify_policy::decide`'s reminders).
//! - Escalation steps are counted in wall-clock time from the episode's opening, like reminders;
//!   while the license is quiet (a maintenance window or a snooze) they are held, and the first
//!   look after the quiet time sends every step that fell due meanwhile (each step has its own
//!   audience, so none is skipped).
//! - A partial episode opens when the license has been Partially Active for `after` of
//!   *counting* time (alive and not quiet, as for inactivity) since the sweep first saw it so.
//!   Its reminders follow the notification interval; it closes with `license.partial_recovered`
//!   when the license is All Active again, silently when it goes Inactive (an inactivity
//!   episode takes over) or when camera-level alerts are turned off.

use super::notify_policy::{AliveSpan, alive_deadline, later, reminder_due};
use super::status::LicenseStatus;
use chrono::{DateTime, Duration, Utc};

/// The escalation steps due at `now` that were not decided yet: the 1-based numbers of the
/// steps after `escalated` whose delay has passed. Nothing while the episode is acknowledged
/// or the license quiet.
pub fn escalations_due(
    opened_at: DateTime<Utc>,
    steps_after: &[Duration],
    escalated: i32,
    acknowledged: bool,
    quiet: bool,
    now: DateTime<Utc>,
) -> Vec<i32> {
    if acknowledged || quiet {
        return Vec::new();
    }
    steps_after
        .iter()
        .enumerate()
        .filter_map(|(i, after)| {
            let step = i32::try_from(i + 1).ok()?;
            (step > escalated && later(opened_at, *after) <= now).then_some(step)
        })
        .collect()
}

/// Camera-level alert settings of one license.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialSettings {
    pub enabled: bool,
    /// How long the license must be Partially Active (counting time) before an episode opens.
    pub after: Duration,
    pub notification_interval: Duration,
}

/// An open partial episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialEpisode {
    pub opened_at: DateTime<Utc>,
    /// The highest reminder decided (0: only the first alert).
    pub last_sent: i32,
    pub acknowledged: bool,
}

/// What the sweep must do about camera-level alerts for one license.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartialDecision {
    /// Nothing to send. `since` is what to store as the license's `partial_since` (when the
    /// current uninterrupted Partially Active time began, as far as the sweep saw it).
    Track { since: Option<DateTime<Utc>> },
    /// Open a partial episode at `opened_at` and send `license.partial`.
    Open {
        since: DateTime<Utc>,
        opened_at: DateTime<Utc>,
    },
    /// Send reminder `k` of the open partial episode.
    Remind { k: i32 },
    /// Every camera is active again: close the episode and send `license.partial_recovered`.
    Recover,
    /// Close the episode without a message (the license went inactive or the setting is off).
    CloseSilently,
}

/// The camera-level decision for a license whose status is `status` at `now`, when no
/// inactivity episode is open. `since` is the stored `partial_since`; `counting` and `quiet`
/// as for `notify_policy::decide`.
pub fn decide_partial(
    settings: &PartialSettings,
    status: LicenseStatus,
    since: Option<DateTime<Utc>>,
    episode: Option<&PartialEpisode>,
    counting: &[AliveSpan],
    quiet: bool,
    now: DateTime<Utc>,
) -> PartialDecision {
    let partial = status == LicenseStatus::PartiallyActive;
    if let Some(ep) = episode {
        if !settings.enabled {
            return PartialDecision::CloseSilently;
        }
        return match status {
            LicenseStatus::AllActive => PartialDecision::Recover,
            // An inactivity episode takes over once the inactivity interval has passed; until
            // then the partial episode stays open, quiet (no reminders for a silent license).
            LicenseStatus::Inactive => PartialDecision::Track { since: None },
            LicenseStatus::NotInstalled => PartialDecision::CloseSilently,
            LicenseStatus::PartiallyActive => {
                if ep.acknowledged || quiet {
                    return PartialDecision::Track { since };
                }
                let interval = settings.notification_interval.num_seconds().max(1);
                let due_k = i32::try_from((now - ep.opened_at).num_seconds() / interval)
                    .unwrap_or(i32::MAX);
                if due_k > ep.last_sent
                    && reminder_due(ep.opened_at, settings.notification_interval, due_k) <= now
                {
                    PartialDecision::Remind { k: due_k }
                } else {
                    PartialDecision::Track { since }
                }
            }
        };
    }
    if !settings.enabled || !partial {
        return PartialDecision::Track { since: None };
    }
    let since = since.unwrap_or(now);
    if quiet {
        return PartialDecision::Track { since: Some(since) };
    }
    match alive_deadline(since, settings.after, counting, now) {
        Some(opened_at) => PartialDecision::Open { since, opened_at },
        None => PartialDecision::Track { since: Some(since) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn alive(from: i64, to: i64) -> Vec<AliveSpan> {
        vec![AliveSpan {
            start: t(from),
            end: t(to),
        }]
    }

    fn settings() -> PartialSettings {
        PartialSettings {
            enabled: true,
            after: Duration::minutes(60),
            notification_interval: Duration::hours(8),
        }
    }

    #[test]
    fn escalation_steps_fall_due_once_each_and_not_when_acknowledged_or_quiet() {
        let steps = [Duration::hours(1), Duration::hours(4)];
        assert_eq!(
            escalations_due(t(0), &steps, 0, false, false, t(59)),
            Vec::<i32>::new()
        );
        assert_eq!(
            escalations_due(t(0), &steps, 0, false, false, t(60)),
            vec![1]
        );
        assert_eq!(
            escalations_due(t(0), &steps, 1, false, false, t(200)),
            Vec::<i32>::new()
        );
        // After an outage both fell due: each has its own audience, both go.
        assert_eq!(
            escalations_due(t(0), &steps, 0, false, false, t(300)),
            vec![1, 2]
        );
        assert!(escalations_due(t(0), &steps, 0, true, false, t(300)).is_empty());
        assert!(escalations_due(t(0), &steps, 0, false, true, t(300)).is_empty());
    }

    #[test]
    fn a_partial_episode_opens_after_the_interval_of_counting_time() {
        let s = settings();
        let p = LicenseStatus::PartiallyActive;
        // First seen partial: tracking starts now.
        assert_eq!(
            decide_partial(&s, p, None, None, &alive(-100, 0), false, t(0)),
            PartialDecision::Track { since: Some(t(0)) }
        );
        assert_eq!(
            decide_partial(&s, p, Some(t(0)), None, &alive(-100, 59), false, t(59)),
            PartialDecision::Track { since: Some(t(0)) }
        );
        assert_eq!(
            decide_partial(&s, p, Some(t(0)), None, &alive(-100, 61), false, t(61)),
            PartialDecision::Open {
                since: t(0),
                opened_at: t(60)
            }
        );
        // The control plane's downtime does not count.
        let gap = vec![
            AliveSpan {
                start: t(-100),
                end: t(30),
            },
            AliveSpan {
                start: t(50),
                end: t(70),
            },
        ];
        assert_eq!(
            decide_partial(&s, p, Some(t(0)), None, &gap, false, t(70)),
            PartialDecision::Track { since: Some(t(0)) }
        );
        // A break resets it; so does a quiet time hold it.
        assert_eq!(
            decide_partial(
                &s,
                LicenseStatus::AllActive,
                Some(t(0)),
                None,
                &alive(-100, 61),
                false,
                t(61)
            ),
            PartialDecision::Track { since: None }
        );
        assert_eq!(
            decide_partial(&s, p, Some(t(0)), None, &alive(-100, 61), true, t(61)),
            PartialDecision::Track { since: Some(t(0)) }
        );
    }

    #[test]
    fn an_open_partial_episode_reminds_recovers_or_closes_silently() {
        let s = settings();
        let ep = PartialEpisode {
            opened_at: t(0),
            last_sent: 0,
            acknowledged: false,
        };
        let p = LicenseStatus::PartiallyActive;
        let a = alive(-100, 10_000);
        assert_eq!(
            decide_partial(&s, p, Some(t(-60)), Some(&ep), &a, false, t(479)),
            PartialDecision::Track {
                since: Some(t(-60))
            }
        );
        assert_eq!(
            decide_partial(&s, p, Some(t(-60)), Some(&ep), &a, false, t(480)),
            PartialDecision::Remind { k: 1 }
        );
        let acked = PartialEpisode {
            acknowledged: true,
            ..ep
        };
        assert_eq!(
            decide_partial(&s, p, Some(t(-60)), Some(&acked), &a, false, t(480)),
            PartialDecision::Track {
                since: Some(t(-60))
            }
        );
        assert_eq!(
            decide_partial(
                &s,
                LicenseStatus::AllActive,
                None,
                Some(&acked),
                &a,
                false,
                t(10)
            ),
            PartialDecision::Recover
        );
        assert_eq!(
            decide_partial(
                &s,
                LicenseStatus::NotInstalled,
                None,
                Some(&ep),
                &a,
                false,
                t(10)
            ),
            PartialDecision::CloseSilently
        );
        let off = PartialSettings {
            enabled: false,
            ..s
        };
        assert_eq!(
            decide_partial(&off, p, None, Some(&ep), &a, false, t(10)),
            PartialDecision::CloseSilently
        );
    }
}
