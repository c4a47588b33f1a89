//! The notification rules of SPEC section 5, as pure functions over plain data.
//!
//! ```text
//!   baseline            opened = baseline + inactivity (counting only alive time)
//!      │<── inactivity interval ──>│<── notification interval ──>│<── … ──>│
//!      ●───────────────────────────●─────────────────────────────●─────────●──── heartbeat ●
//!   last activity          first e-mail (k=0)                reminder 1  reminder 2   recovery
//! ```
//!
//! - *Activity* is an accepted heartbeat. The baseline is the last activity or, for a license
//!   that never reported, the time notifications were enabled.
//! - Time when the control plane itself was not alive (it was down, or PostgreSQL was) does not
//!   count: inactivity accumulates only over the `alive` spans the service recorded.
//! - An episode opens when the accumulated inactivity reaches the inactivity interval. The
//!   first e-mail is due then; reminder `k` is due at `opened + k × notification interval`
//!   (wall-clock time). When several reminders fell due while the service was down, only the
//!   newest one is sent: one e-mail, not a burst.
//! - Activity after the episode opened closes it; a recovery e-mail follows if enabled.
//! - Turning notifications off closes an open episode without a recovery e-mail.

use chrono::{DateTime, Duration, Utc};

/// An interval of time during which the control plane was alive (accepting heartbeats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AliveSpan {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// One license's notification settings, as far as the rules need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub enabled: bool,
    pub inactivity_interval: Duration,
    pub notification_interval: Duration,
    pub notify_on_recovery: bool,
    /// When notifications were (last) turned on: the baseline of a never-installed license.
    pub enabled_at: DateTime<Utc>,
}

/// The open episode of a license, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenEpisode {
    pub opened_at: DateTime<Utc>,
    /// The baseline the episode was opened from (the last activity then).
    pub baseline: DateTime<Utc>,
    /// The highest e-mail number already decided: 0 = the first e-mail, k = reminder k.
    pub last_sent: i32,
}

/// What a sweep must do for one license.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing now; look again at `next_check`.
    Wait { next_check: DateTime<Utc> },
    /// Open an episode at `opened_at` and send the first e-mail.
    Open {
        baseline: DateTime<Utc>,
        opened_at: DateTime<Utc>,
    },
    /// Send reminder `k` of the open episode (`k` >= 1).
    Remind { k: i32, next_check: DateTime<Utc> },
    /// Close the open episode; send a recovery e-mail if `notify`.
    Close { notify: bool },
}

/// How often a license with an open episode is looked at: every sweep, so that a recovery is
/// noticed within the 2 minutes of SPEC section 5.
pub const OPEN_EPISODE_RECHECK: Duration = Duration::minutes(1);

/// The moment at which `needed` alive time has accumulated since `from`, counting only the
/// `alive` spans (sorted, non-overlapping). `None` if it has not happened by `now`.
pub fn alive_deadline(
    from: DateTime<Utc>,
    needed: Duration,
    alive: &[AliveSpan],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut remaining = needed;
    for span in alive {
        let start = span.start.max(from);
        let end = span.end.min(now);
        if end <= start {
            continue;
        }
        let length = end - start;
        if length >= remaining {
            return Some(start + remaining);
        }
        remaining -= length;
    }
    None
}

/// Alive time between `from` and `now`.
pub fn alive_time(from: DateTime<Utc>, alive: &[AliveSpan], now: DateTime<Utc>) -> Duration {
    alive
        .iter()
        .map(|s| (s.end.min(now) - s.start.max(from)).max(Duration::zero()))
        .fold(Duration::zero(), |a, b| a + b)
}

/// The decision for one license at `now`.
///
/// `last_activity` is the newest accepted heartbeat's activity time (`None`: never installed);
/// `alive` the control plane's alive spans covering at least the time since the baseline.
pub fn decide(
    settings: &Settings,
    last_activity: Option<DateTime<Utc>>,
    episode: Option<&OpenEpisode>,
    alive: &[AliveSpan],
    now: DateTime<Utc>,
) -> Decision {
    if let Some(ep) = episode {
        if !settings.enabled {
            return Decision::Close { notify: false };
        }
        if last_activity.is_some_and(|a| a > ep.baseline) {
            return Decision::Close {
                notify: settings.notify_on_recovery,
            };
        }
        let interval = settings.notification_interval;
        let elapsed = now - ep.opened_at;
        let due_k = i32::try_from(elapsed.num_seconds() / interval.num_seconds().max(1))
            .unwrap_or(i32::MAX);
        if due_k > ep.last_sent {
            return Decision::Remind {
                k: due_k,
                next_check: (now + OPEN_EPISODE_RECHECK).min(ep.opened_at + interval * (due_k + 1)),
            };
        }
        return Decision::Wait {
            next_check: now + OPEN_EPISODE_RECHECK,
        };
    }
    if !settings.enabled {
        // Nothing to watch; the sweep skips disabled licenses, so this is far in the future.
        return Decision::Wait {
            next_check: now + Duration::days(365),
        };
    }
    // The baseline: the later of the last activity and the moment notifications were enabled
    // (an old silence does not count before anyone asked to be told about it).
    let baseline = last_activity.map_or(settings.enabled_at, |a| a.max(settings.enabled_at));
    match alive_deadline(baseline, settings.inactivity_interval, alive, now) {
        Some(opened_at) => Decision::Open {
            baseline,
            opened_at,
        },
        None => {
            // Not yet: at the earliest, the rest of the interval from now (if the service stays up).
            let remaining = settings.inactivity_interval - alive_time(baseline, alive, now);
            Decision::Wait {
                next_check: now + remaining.max(Duration::seconds(1)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn settings() -> Settings {
        Settings {
            enabled: true,
            inactivity_interval: Duration::hours(1),
            notification_interval: Duration::hours(8),
            notify_on_recovery: true,
            enabled_at: t(-1000),
        }
    }

    /// Alive the whole time.
    fn always(now: DateTime<Utc>) -> Vec<AliveSpan> {
        vec![AliveSpan {
            start: t(-10_000),
            end: now,
        }]
    }

    #[test]
    fn an_active_license_waits_until_its_interval_could_end() {
        let now = t(30);
        let d = decide(&settings(), Some(t(0)), None, &always(now), now);
        assert_eq!(d, Decision::Wait { next_check: t(60) });
    }

    #[test]
    fn the_episode_opens_exactly_one_inactivity_interval_after_the_last_activity() {
        let now = t(61);
        let d = decide(&settings(), Some(t(0)), None, &always(now), now);
        assert_eq!(
            d,
            Decision::Open {
                baseline: t(0),
                opened_at: t(60)
            }
        );
        // At exactly the interval it is due too (>=).
        let d = decide(&settings(), Some(t(0)), None, &always(t(60)), t(60));
        assert_eq!(
            d,
            Decision::Open {
                baseline: t(0),
                opened_at: t(60)
            }
        );
    }

    #[test]
    fn a_never_installed_license_counts_from_when_notifications_were_enabled() {
        let s = Settings {
            enabled_at: t(10),
            ..settings()
        };
        assert_eq!(
            decide(&s, None, None, &always(t(69)), t(69)),
            Decision::Wait { next_check: t(70) }
        );
        assert_eq!(
            decide(&s, None, None, &always(t(70)), t(70)),
            Decision::Open {
                baseline: t(10),
                opened_at: t(70)
            }
        );
    }

    #[test]
    fn silence_before_notifications_were_enabled_does_not_count() {
        let s = Settings {
            enabled_at: t(100),
            ..settings()
        };
        assert_eq!(
            decide(&s, Some(t(0)), None, &always(t(130)), t(130)),
            Decision::Wait { next_check: t(160) }
        );
    }

    #[test]
    fn the_control_planes_own_downtime_does_not_count_toward_inactivity() {
        // Last heartbeat at 0; the service was down from 10 to 190 (3 h) and is up since.
        let alive = vec![
            AliveSpan {
                start: t(-100),
                end: t(10),
            },
            AliveSpan {
                start: t(190),
                end: t(200),
            },
        ];
        // 10 + 10 = 20 minutes of alive silence: no e-mail.
        assert_eq!(
            decide(&settings(), Some(t(0)), None, &alive, t(200)),
            Decision::Wait { next_check: t(240) }
        );
        // Past 60 alive minutes it opens, at 190 + 50.
        let alive = vec![
            AliveSpan {
                start: t(-100),
                end: t(10),
            },
            AliveSpan {
                start: t(190),
                end: t(245),
            },
        ];
        assert_eq!(
            decide(&settings(), Some(t(0)), None, &alive, t(245)),
            Decision::Open {
                baseline: t(0),
                opened_at: t(240)
            }
        );
    }

    #[test]
    fn reminder_k_is_due_at_opened_plus_k_intervals() {
        let ep = OpenEpisode {
            opened_at: t(60),
            baseline: t(0),
            last_sent: 0,
        };
        let eight_h = 8 * 60;
        assert!(matches!(
            decide(
                &settings(),
                Some(t(0)),
                Some(&ep),
                &always(t(60 + eight_h - 1)),
                t(60 + eight_h - 1)
            ),
            Decision::Wait { .. }
        ));
        assert!(matches!(
            decide(
                &settings(),
                Some(t(0)),
                Some(&ep),
                &always(t(60 + eight_h)),
                t(60 + eight_h)
            ),
            Decision::Remind { k: 1, .. }
        ));
        let ep2 = OpenEpisode { last_sent: 1, ..ep };
        assert!(matches!(
            decide(
                &settings(),
                Some(t(0)),
                Some(&ep2),
                &always(t(60 + eight_h + 5)),
                t(60 + eight_h + 5)
            ),
            Decision::Wait { .. }
        ));
        assert!(matches!(
            decide(
                &settings(),
                Some(t(0)),
                Some(&ep2),
                &always(t(60 + 2 * eight_h)),
                t(60 + 2 * eight_h)
            ),
            Decision::Remind { k: 2, .. }
        ));
    }

    #[test]
    fn missed_reminders_collapse_into_the_newest_one() {
        let ep = OpenEpisode {
            opened_at: t(60),
            baseline: t(0),
            last_sent: 0,
        };
        let now = t(60 + 3 * 8 * 60 + 7);
        assert!(matches!(
            decide(&settings(), Some(t(0)), Some(&ep), &always(now), now),
            Decision::Remind { k: 3, .. }
        ));
    }

    #[test]
    fn activity_closes_the_episode_with_a_recovery_e_mail_if_wanted() {
        let ep = OpenEpisode {
            opened_at: t(60),
            baseline: t(0),
            last_sent: 0,
        };
        assert_eq!(
            decide(&settings(), Some(t(90)), Some(&ep), &always(t(91)), t(91)),
            Decision::Close { notify: true }
        );
        let quiet = Settings {
            notify_on_recovery: false,
            ..settings()
        };
        assert_eq!(
            decide(&quiet, Some(t(90)), Some(&ep), &always(t(91)), t(91)),
            Decision::Close { notify: false }
        );
    }

    #[test]
    fn turning_notifications_off_closes_the_episode_silently() {
        let ep = OpenEpisode {
            opened_at: t(60),
            baseline: t(0),
            last_sent: 0,
        };
        let off = Settings {
            enabled: false,
            ..settings()
        };
        assert_eq!(
            decide(&off, Some(t(0)), Some(&ep), &always(t(100)), t(100)),
            Decision::Close { notify: false }
        );
    }

    #[test]
    fn a_changed_notification_interval_applies_to_the_next_reminders() {
        let ep = OpenEpisode {
            opened_at: t(60),
            baseline: t(0),
            last_sent: 0,
        };
        let two_h = Settings {
            notification_interval: Duration::hours(2),
            ..settings()
        };
        assert!(matches!(
            decide(&two_h, Some(t(0)), Some(&ep), &always(t(180)), t(180)),
            Decision::Remind { k: 1, .. }
        ));
    }

    #[test]
    fn alive_time_counts_only_alive_spans() {
        let alive = vec![
            AliveSpan {
                start: t(0),
                end: t(10),
            },
            AliveSpan {
                start: t(20),
                end: t(40),
            },
        ];
        assert_eq!(alive_time(t(5), &alive, t(30)), Duration::minutes(15));
        assert_eq!(
            alive_deadline(t(5), Duration::minutes(15), &alive, t(40)),
            Some(t(30))
        );
        assert_eq!(
            alive_deadline(t(5), Duration::minutes(30), &alive, t(40)),
            None
        );
    }
}
