//! The notification rules of SPEC sections 5 and 5b, as pure functions over plain data.
//!
//! ```text
//!   baseline            opened = baseline + inactivity (counting only alive, non-quiet time)
//!      │<── inactivity interval ──>│<── notification interval ──>│<── … ──>│
//!      ●───────────────────────────●─────────────────────────────●─────────●──── heartbeat ●
//!   last activity          first e-mail (k=0)                reminder 1  reminder 2   recovery
//!
//!   Quiet time (a maintenance window or a snooze, ▒) counts like the service's own downtime:
//!
//!      ●━━━━━━━━━━▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒━━━━━━━━━━━━━━━●─────▶
//!   baseline      quiet 3 h (not counted)         opened = baseline + inactivity + 3 h
//!
//!   An open episode's reminders are held while quiet; the newest one due goes out at its end:
//!
//!      ●──────────────────●────────▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒●──────────▶
//!   baseline            opened    quiet (reminders 1 and 2 fall due) reminder 2 (one e-mail)
//! ```
//!
//! - *Activity* is an accepted heartbeat. The baseline is the last activity or, for a license
//!   that never reported, the time notifications were enabled.
//! - Time when the control plane itself was not alive (it was down, or PostgreSQL was) does not
//!   count: inactivity accumulates only over the `alive` spans the service recorded.
//! - Neither does the license's quiet time (SPEC section 5b: a maintenance window whose scope
//!   covers the license, by its tags at the time of the decision, or a snooze). The sweep
//!   passes the *counting* spans, the alive spans minus the quiet spans ([`with_quiet`]), and
//!   whether the license is quiet now, until when.
//! - An episode opens when the accumulated counting time reaches the inactivity interval, and
//!   never while the license is quiet: then the next look is at the end of the quiet time (the
//!   API pulls it forward when a window, snooze or tag changes). The first e-mail is due when
//!   it opens; reminder `k` is due at `opened + k × notification interval` (wall-clock time).
//!   When several reminders fell due while the service was down or the license quiet, only
//!   the newest one is sent: one e-mail, not a burst.
//! - Activity after the episode opened closes it; a recovery e-mail follows if enabled, quiet
//!   or not (it is good news, and a window does not hide it).
//! - Turning notifications off closes an open episode without a recovery e-mail.
//!
//! All time arithmetic here is checked (SPEC section 2): the times come from the database and
//! the clock, the intervals from validated settings, so overflow "cannot" happen, and if it
//! ever did it must not panic the sweep of every tenant. A moment past the end of chrono's
//! range saturates to [`NEVER`]: that e-mail or check is never due, and the license is looked
//! at again when its settings change.

use super::quiet::{self, QuietSpan};
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

/// "Never due": the last moment chrono represents (year 262143, inside PostgreSQL's
/// `timestamptz` range, so it can be stored as a `next_check_at`).
pub const NEVER: DateTime<Utc> = DateTime::<Utc>::MAX_UTC;

/// `t + d`, saturating: past the end of time it is [`NEVER`], before its start chrono's first
/// moment (only a negative `d` gets there, and a check due then is simply due).
pub fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(if d > Duration::zero() {
        NEVER
    } else {
        DateTime::<Utc>::MIN_UTC
    })
}

/// When reminder `k` of an episode opened at `opened_at` is due: `opened_at + k × interval`;
/// [`NEVER`] if that is past the end of time.
pub fn reminder_due(opened_at: DateTime<Utc>, interval: Duration, k: i32) -> DateTime<Utc> {
    interval
        .checked_mul(k)
        .and_then(|d| opened_at.checked_add_signed(d))
        .unwrap_or(NEVER)
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
        // Two `DateTime`s are at most about 524,000 years apart: their difference always fits.
        let length = end - start;
        if length >= remaining {
            // At most `end`, which exists; `end` in case `remaining` is negative past the range.
            return Some(start.checked_add_signed(remaining).unwrap_or(end));
        }
        // `length` is positive and smaller than `remaining`: no overflow, but checked anyway.
        remaining = remaining
            .checked_sub(&length)
            .unwrap_or_else(Duration::zero);
    }
    None
}

/// Alive time between `from` and `now`.
pub fn alive_time(from: DateTime<Utc>, alive: &[AliveSpan], now: DateTime<Utc>) -> Duration {
    alive
        .iter()
        .map(|s| (s.end.min(now) - s.start.max(from)).max(Duration::zero()))
        // Thousands of spans of the whole range could pass `Duration::MAX`: saturate there.
        .fold(Duration::zero(), |a, b| {
            a.checked_add(&b).unwrap_or(Duration::MAX)
        })
}

/// The inputs of [`decide`] for a license with quiet time (SPEC section 5b): the counting
/// spans (the `alive` spans minus the merged quiet `spans`) and, if the license is quiet at
/// `now`, until when (through back-to-back windows and snoozes). `spans` are the license's
/// quiet spans as [`quiet::quiet_spans`] finds them; they should reach far enough past `now`
/// to show where the current quiet time ends.
pub fn with_quiet(
    alive: &[AliveSpan],
    spans: &[QuietSpan],
    now: DateTime<Utc>,
) -> (Vec<AliveSpan>, Option<DateTime<Utc>>) {
    let alive: Vec<_> = alive.iter().map(|s| (s.start, s.end)).collect();
    let counting = quiet::subtract(&alive, &quiet::merge(spans))
        .into_iter()
        .map(|(start, end)| AliveSpan { start, end })
        .collect();
    (counting, quiet::quiet_at(spans, now).map(|q| q.until))
}

/// When counting resumed after the first gap (the control plane's own downtime or a quiet
/// time) that follows `deadline`, if one did by `now`. The interval can run out in the last
/// moments before such a gap, after the sweep's last look: the first e-mail then goes out when
/// counting resumes, and the episode counts as opened then, so that its reminders follow the
/// first e-mail by the notification interval instead of coming right after it.
fn first_resumption_after(
    deadline: DateTime<Utc>,
    counting: &[AliveSpan],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut previous_end: Option<DateTime<Utc>> = None;
    for span in counting {
        let after_a_gap = previous_end.is_none_or(|end| end < span.start);
        if after_a_gap && span.start > deadline && span.start <= now {
            return Some(span.start);
        }
        previous_end = Some(previous_end.map_or(span.end, |end| end.max(span.end)));
    }
    None
}

/// The decision for one license at `now`.
///
/// `last_activity` is the newest accepted heartbeat's activity time (`None`: never installed);
/// `counting` the spans that count toward inactivity, covering at least the time since the
/// baseline: the control plane's alive spans, minus the license's quiet time if it has any
/// ([`with_quiet`]); `quiet_until` the end of the quiet time the license is in at `now`, if it
/// is quiet.
pub fn decide(
    settings: &Settings,
    last_activity: Option<DateTime<Utc>>,
    episode: Option<&OpenEpisode>,
    counting: &[AliveSpan],
    quiet_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Decision {
    if let Some(ep) = episode {
        if !settings.enabled {
            return Decision::Close { notify: false };
        }
        // A recovery is sent even while quiet: it is good news, and the episode began before.
        if last_activity.is_some_and(|a| a > ep.baseline) {
            return Decision::Close {
                notify: settings.notify_on_recovery,
            };
        }
        if quiet_until.is_some() {
            // Reminders are held; they are counted in wall-clock time from `opened_at`, so the
            // first look after the quiet time sends the newest one due. Looked at every sweep
            // meanwhile, for a recovery.
            return Decision::Wait {
                next_check: later(now, OPEN_EPISODE_RECHECK),
            };
        }
        let interval = settings.notification_interval;
        let elapsed = now - ep.opened_at;
        let due_k = i32::try_from(elapsed.num_seconds() / interval.num_seconds().max(1))
            .unwrap_or(i32::MAX);
        if due_k > ep.last_sent {
            return Decision::Remind {
                k: due_k,
                next_check: later(now, OPEN_EPISODE_RECHECK).min(reminder_due(
                    ep.opened_at,
                    interval,
                    due_k.saturating_add(1),
                )),
            };
        }
        return Decision::Wait {
            next_check: later(now, OPEN_EPISODE_RECHECK),
        };
    }
    if !settings.enabled {
        // Nothing to watch; the sweep skips disabled licenses, so this is far in the future.
        return Decision::Wait {
            next_check: later(now, Duration::days(365)),
        };
    }
    if let Some(until) = quiet_until {
        // No episode opens while quiet. The quiet time does not count, so nothing can open
        // before it ends; a changed window, snooze or tag pulls this check forward (the API's
        // `store::windows::recheck`).
        return Decision::Wait {
            next_check: until.max(later(now, Duration::seconds(1))),
        };
    }
    // The baseline: the later of the last activity and the moment notifications were enabled
    // (an old silence does not count before anyone asked to be told about it).
    let baseline = last_activity.map_or(settings.enabled_at, |a| a.max(settings.enabled_at));
    match alive_deadline(baseline, settings.inactivity_interval, counting, now) {
        Some(deadline) => Decision::Open {
            baseline,
            opened_at: first_resumption_after(deadline, counting, now).unwrap_or(deadline),
        },
        None => {
            // Not yet: at the earliest, the rest of the interval from now (if the service stays up).
            // Alive time is never negative, so only an interval near `Duration::MIN` overflows
            // here; the rest of such an interval is nothing (look again in a second).
            let remaining = settings
                .inactivity_interval
                .checked_sub(&alive_time(baseline, counting, now))
                .unwrap_or_else(Duration::zero);
            Decision::Wait {
                next_check: later(now, remaining.max(Duration::seconds(1))),
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

    /// Alive from `start` to `end`, in minutes, for each pair.
    fn spans(minutes: &[(i64, i64)]) -> Vec<AliveSpan> {
        minutes
            .iter()
            .map(|&(start, end)| AliveSpan {
                start: t(start),
                end: t(end),
            })
            .collect()
    }

    /// The decision at minute `now` (activity last at minute `last_activity`) of a control
    /// plane alive the whole time.
    fn decide_at(
        s: &Settings,
        last_activity: Option<i64>,
        episode: Option<&OpenEpisode>,
        now: i64,
    ) -> Decision {
        decide(
            s,
            last_activity.map(t),
            episode,
            &spans(&[(-10_000, now)]),
            None,
            t(now),
        )
    }

    /// The episode opened at minute 60 after the last activity at 0.
    fn episode(last_sent: i32) -> OpenEpisode {
        OpenEpisode {
            opened_at: t(60),
            baseline: t(0),
            last_sent,
        }
    }

    fn opened(baseline: i64, opened_at: i64) -> Decision {
        Decision::Open {
            baseline: t(baseline),
            opened_at: t(opened_at),
        }
    }

    fn wait(next_check: i64) -> Decision {
        Decision::Wait {
            next_check: t(next_check),
        }
    }

    /// The reminder a decision sends: `None` to wait, and anything else is wrong here.
    fn reminder(d: Decision) -> Option<i32> {
        match d {
            Decision::Remind { k, .. } => Some(k),
            Decision::Wait { .. } => None,
            other => panic!("expected a reminder or a wait, got {other:?}"),
        }
    }

    #[test]
    fn an_active_license_waits_until_its_interval_could_end() {
        assert_eq!(decide_at(&settings(), Some(0), None, 30), wait(60));
    }

    #[test]
    fn the_episode_opens_exactly_one_inactivity_interval_after_the_last_activity() {
        assert_eq!(decide_at(&settings(), Some(0), None, 61), opened(0, 60));
        // At exactly the interval it is due too (>=).
        assert_eq!(decide_at(&settings(), Some(0), None, 60), opened(0, 60));
    }

    #[test]
    fn a_never_installed_license_counts_from_when_notifications_were_enabled() {
        let s = Settings {
            enabled_at: t(10),
            ..settings()
        };
        assert_eq!(decide_at(&s, None, None, 69), wait(70));
        assert_eq!(decide_at(&s, None, None, 70), opened(10, 70));
    }

    #[test]
    fn silence_before_notifications_were_enabled_does_not_count() {
        let s = Settings {
            enabled_at: t(100),
            ..settings()
        };
        assert_eq!(decide_at(&s, Some(0), None, 130), wait(160));
    }

    #[test]
    fn the_control_planes_own_downtime_does_not_count_toward_inactivity() {
        // Last heartbeat at 0; the service was down from 10 to 190 (3 h) and is up since.
        // 10 + 10 = 20 minutes of alive silence: no e-mail.
        let alive = spans(&[(-100, 10), (190, 200)]);
        assert_eq!(
            decide(&settings(), Some(t(0)), None, &alive, None, t(200)),
            wait(240)
        );
        // Past 60 alive minutes it opens, at 190 + 50.
        let alive = spans(&[(-100, 10), (190, 245)]);
        assert_eq!(
            decide(&settings(), Some(t(0)), None, &alive, None, t(245)),
            opened(0, 240)
        );
    }

    #[test]
    fn reminder_k_is_due_at_opened_plus_k_intervals() {
        let eight_h = 8 * 60;
        // (reminders sent, minute, the reminder due then)
        for (last_sent, now, due) in [
            (0, 60 + eight_h - 1, None),
            (0, 60 + eight_h, Some(1)),
            (1, 60 + eight_h + 5, None),
            (1, 60 + 2 * eight_h, Some(2)),
        ] {
            let d = decide_at(&settings(), Some(0), Some(&episode(last_sent)), now);
            assert_eq!(reminder(d), due, "{last_sent} sent, at minute {now}");
        }
    }

    #[test]
    fn missed_reminders_collapse_into_the_newest_one() {
        let d = decide_at(&settings(), Some(0), Some(&episode(0)), 60 + 3 * 8 * 60 + 7);
        assert_eq!(reminder(d), Some(3));
    }

    #[test]
    fn activity_closes_the_episode_with_a_recovery_e_mail_if_wanted() {
        assert_eq!(
            decide_at(&settings(), Some(90), Some(&episode(0)), 91),
            Decision::Close { notify: true }
        );
        let quiet = Settings {
            notify_on_recovery: false,
            ..settings()
        };
        assert_eq!(
            decide_at(&quiet, Some(90), Some(&episode(0)), 91),
            Decision::Close { notify: false }
        );
    }

    #[test]
    fn turning_notifications_off_closes_the_episode_silently() {
        let off = Settings {
            enabled: false,
            ..settings()
        };
        assert_eq!(
            decide_at(&off, Some(0), Some(&episode(0)), 100),
            Decision::Close { notify: false }
        );
    }

    #[test]
    fn a_changed_notification_interval_applies_to_the_next_reminders() {
        let two_h = Settings {
            notification_interval: Duration::hours(2),
            ..settings()
        };
        let d = decide_at(&two_h, Some(0), Some(&episode(0)), 180);
        assert_eq!(reminder(d), Some(1));
    }

    #[test]
    fn alive_time_counts_only_alive_spans() {
        let alive = spans(&[(0, 10), (20, 40)]);
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

    /// The quiet-period rules of SPEC section 5b, fed as the sweep feeds them: the license's
    /// quiet spans from its windows (by its tags now) and snooze, then [`with_quiet`].
    mod quiet_time {
        use super::*;
        use crate::domain::quiet::{Schedule, Scope, Snooze, Window, quiet_spans};
        use uuid::Uuid;

        const LICENSE: Uuid = Uuid::from_u128(7);

        /// What covers the license: windows, its tags at decision time, its snooze.
        #[derive(Default)]
        struct Quiet {
            windows: Vec<Window>,
            tags: Vec<String>,
            snooze: Option<Snooze>,
        }

        /// A one-off window from minute `start` to minute `end`.
        fn window(scope: Scope, start: i64, end: i64) -> Window {
            Window {
                id: Uuid::now_v7(),
                scope,
                schedule: Schedule::OneOff {
                    starts_at: t(start),
                    ends_at: t(end),
                },
            }
        }

        /// Tenant-wide windows, each (start, end) in minutes.
        fn windows(minutes: &[(i64, i64)]) -> Quiet {
            Quiet {
                windows: minutes
                    .iter()
                    .map(|&(start, end)| window(Scope::All, start, end))
                    .collect(),
                ..Quiet::default()
            }
        }

        /// The decision at minute `now`, the control plane alive from long before.
        fn decide_quiet(
            q: &Quiet,
            last_activity: Option<i64>,
            episode: Option<&OpenEpisode>,
            now: i64,
        ) -> Decision {
            decide_quiet_alive(q, last_activity, episode, &spans(&[(-10_000, now)]), now)
        }

        /// The same with these alive spans: what the sweep does for one candidate.
        fn decide_quiet_alive(
            q: &Quiet,
            last_activity: Option<i64>,
            episode: Option<&OpenEpisode>,
            alive: &[AliveSpan],
            now: i64,
        ) -> Decision {
            let quiet = quiet_spans(
                &q.windows,
                LICENSE,
                &q.tags,
                q.snooze,
                t(-10_000),
                t(now) + Duration::days(32),
            );
            let (counting, quiet_until) = with_quiet(alive, &quiet, t(now));
            decide(
                &settings(),
                last_activity.map(t),
                episode,
                &counting,
                quiet_until,
                t(now),
            )
        }

        #[test]
        fn no_episode_opens_while_quiet_and_the_time_before_and_after_adds_up_to_the_interval() {
            // Dark since 0; a window from 30 to 200. 30 quiet-free minutes before it.
            let q = windows(&[(30, 200)]);
            assert_eq!(decide_quiet(&q, Some(0), None, 20), wait(60));
            // The sweep comes back at 60, when the interval would have ended: quiet until 200.
            assert_eq!(decide_quiet(&q, Some(0), None, 60), wait(200));
            assert_eq!(decide_quiet(&q, Some(0), None, 199), wait(200));
            // 30 minutes before + 30 after = the hour.
            assert_eq!(decide_quiet(&q, Some(0), None, 200), wait(230));
            assert_eq!(decide_quiet(&q, Some(0), None, 229), wait(230));
            assert_eq!(decide_quiet(&q, Some(0), None, 230), opened(0, 230));
        }

        #[test]
        fn a_site_that_went_dark_inside_a_window_is_alerted_one_interval_after_the_window_ends() {
            let q = windows(&[(0, 300)]);
            assert_eq!(decide_quiet(&q, Some(100), None, 160), wait(300));
            assert_eq!(decide_quiet(&q, Some(100), None, 300), wait(360));
            assert_eq!(decide_quiet(&q, Some(100), None, 359), wait(360));
            assert_eq!(decide_quiet(&q, Some(100), None, 360), opened(100, 360));
        }

        #[test]
        fn a_window_that_starts_in_an_episode_holds_its_reminders_and_the_newest_goes_at_its_end() {
            // Opened at 60; reminder 1 due at 540, reminder 2 at 1020; a window 400..1200.
            let q = windows(&[(400, 1200)]);
            for now in [540, 1020, 1199] {
                assert_eq!(
                    decide_quiet(&q, Some(0), Some(&episode(0)), now),
                    // Looked at every minute meanwhile, for a recovery.
                    wait(now + 1),
                    "minute {now}"
                );
            }
            // At the end: reminder 2 only, one e-mail, then nothing until reminder 3 (1500).
            assert_eq!(
                decide_quiet(&q, Some(0), Some(&episode(0)), 1200),
                Decision::Remind {
                    k: 2,
                    next_check: t(1201)
                }
            );
            assert_eq!(
                decide_quiet(&q, Some(0), Some(&episode(2)), 1201),
                wait(1202)
            );
            assert_eq!(
                reminder(decide_quiet(&q, Some(0), Some(&episode(2)), 1500)),
                Some(3)
            );
        }

        #[test]
        fn a_recovery_inside_a_window_is_still_sent() {
            let q = windows(&[(100, 1000)]);
            assert_eq!(
                decide_quiet(&q, Some(500), Some(&episode(0)), 501),
                Decision::Close { notify: true }
            );
            // Without an episode, activity in a window just waits for the window's end.
            assert_eq!(decide_quiet(&q, Some(500), None, 501), wait(1000));
        }

        #[test]
        fn back_to_back_windows_are_one_quiet_time() {
            // Touching, and overlapping: quiet until the last one ends.
            for q in [
                windows(&[(30, 100), (100, 200)]),
                windows(&[(30, 150), (120, 200)]),
            ] {
                assert_eq!(decide_quiet(&q, Some(0), None, 60), wait(200));
                assert_eq!(decide_quiet(&q, Some(0), None, 200), wait(230));
                assert_eq!(decide_quiet(&q, Some(0), None, 230), opened(0, 230));
            }
            // A snooze that continues a window, too.
            let q = Quiet {
                snooze: Some(Snooze {
                    since: t(90),
                    until: t(200),
                }),
                ..windows(&[(30, 100)])
            };
            assert_eq!(decide_quiet(&q, Some(0), None, 60), wait(200));
            // With a gap of 10 minutes between them, the gap counts: 30 + 10 + 20.
            let q = windows(&[(30, 100), (110, 200)]);
            assert_eq!(decide_quiet(&q, Some(0), None, 60), wait(100));
            assert_eq!(decide_quiet(&q, Some(0), None, 100), wait(130));
            assert_eq!(decide_quiet(&q, Some(0), None, 130), wait(200));
            assert_eq!(decide_quiet(&q, Some(0), None, 200), wait(220));
            assert_eq!(decide_quiet(&q, Some(0), None, 220), opened(0, 220));
        }

        #[test]
        fn a_snooze_ended_early_stops_the_quiet_time_from_then() {
            let snoozed = |until| Quiet {
                snooze: Some(Snooze {
                    since: t(30),
                    until: t(until),
                }),
                ..Quiet::default()
            };
            assert_eq!(decide_quiet(&snoozed(600), Some(0), None, 60), wait(600));
            // Ended at 100: its `until` moved there, and 30 + 30 minutes count.
            assert_eq!(decide_quiet(&snoozed(100), Some(0), None, 100), wait(130));
            assert_eq!(
                decide_quiet(&snoozed(100), Some(0), None, 130),
                opened(0, 130)
            );
        }

        #[test]
        fn a_window_on_a_tag_covers_a_license_that_got_the_tag_later() {
            // A window on `site:a` from 100 to 400; the site went dark at 150.
            let untagged = Quiet {
                windows: vec![window(Scope::Tags(vec!["site:a".into()]), 100, 400)],
                ..Quiet::default()
            };
            assert_eq!(
                decide_quiet(&untagged, Some(150), None, 210),
                opened(150, 210)
            );
            // The tag was added at 180 (the API made the sweep look again then): the tags at
            // the decision are what count, for the whole window.
            let tagged = Quiet {
                tags: vec!["site:a".into()],
                ..untagged
            };
            assert_eq!(decide_quiet(&tagged, Some(150), None, 180), wait(400));
            assert_eq!(decide_quiet(&tagged, Some(150), None, 400), wait(460));
            assert_eq!(
                decide_quiet(&tagged, Some(150), None, 460),
                opened(150, 460)
            );
            // Another tag's window and another license's window do not cover it.
            let others = Quiet {
                windows: vec![
                    window(Scope::Tags(vec!["site:b".into()]), 100, 400),
                    window(Scope::Licenses(vec![Uuid::from_u128(8)]), 100, 400),
                ],
                tags: vec!["site:a".into()],
                ..Quiet::default()
            };
            assert_eq!(
                decide_quiet(&others, Some(150), None, 210),
                opened(150, 210)
            );
        }

        #[test]
        fn quiet_time_and_the_control_planes_downtime_both_do_not_count() {
            // Dark since 0; down from 10 to 70; a window from 40 to 100 overlapping the downtime.
            // Counting: 0..10 and from 100 on, so the hour is full at 150.
            let q = windows(&[(40, 100)]);
            let alive = |now| spans(&[(-10_000, 10), (70, now)]);
            assert_eq!(
                decide_quiet_alive(&q, Some(0), None, &alive(80), 80),
                wait(100)
            );
            assert_eq!(
                decide_quiet_alive(&q, Some(0), None, &alive(100), 100),
                wait(150)
            );
            assert_eq!(
                decide_quiet_alive(&q, Some(0), None, &alive(150), 150),
                opened(0, 150)
            );
        }

        #[test]
        fn an_interval_that_ran_out_just_before_a_window_opens_at_its_end_without_a_reminder_burst()
        {
            // Dark since 0; the hour is full at 60, a window from 60.5 (say: the sweep's last
            // look was at 59) to 660, longer than the 8 h notification interval. The first look
            // after the window opens the episode at its end, not at 60: reminder 1 is due 8 h
            // after the first e-mail, not a minute after it.
            let q = windows(&[(61, 660)]);
            assert_eq!(decide_quiet(&q, Some(0), None, 661), opened(0, 660));
            let opened_at_end = OpenEpisode {
                opened_at: t(660),
                baseline: t(0),
                last_sent: 0,
            };
            assert_eq!(
                reminder(decide_quiet(&q, Some(0), Some(&opened_at_end), 662)),
                None
            );
            // Without the gap the deadline stands.
            assert_eq!(
                decide_quiet(&windows(&[]), Some(0), None, 661),
                opened(0, 60)
            );
        }

        #[test]
        fn an_interval_that_ran_out_just_before_the_service_went_down_opens_when_it_is_back() {
            // The same with the control plane's own downtime from 61 to 660.
            let alive = spans(&[(-10_000, 61), (660, 661)]);
            assert_eq!(
                decide(&settings(), Some(t(0)), None, &alive, None, t(661)),
                opened(0, 660)
            );
        }

        #[test]
        fn quiet_time_long_past_or_not_yet_begun_changes_nothing_now() {
            // A window before the last activity, and one after the interval ends.
            let q = windows(&[(-500, -100), (200, 300)]);
            assert_eq!(decide_quiet(&q, Some(0), None, 30), wait(60));
            assert_eq!(decide_quiet(&q, Some(0), None, 60), opened(0, 60));
            // Turned off: nothing to hold, whatever the quiet time.
            let off = Settings {
                enabled: false,
                ..settings()
            };
            let (counting, until) = with_quiet(&spans(&[(-10_000, 100)]), &[], t(100));
            assert_eq!(until, None);
            assert_eq!(
                decide(
                    &off,
                    Some(t(0)),
                    Some(&episode(0)),
                    &counting,
                    Some(t(300)),
                    t(100)
                ),
                Decision::Close { notify: false }
            );
        }
    }

    mod extremes {
        use super::*;
        use proptest::prelude::*;

        /// Any moment chrono represents, the ends included.
        fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
            let (min, max) = (
                DateTime::<Utc>::MIN_UTC.timestamp(),
                DateTime::<Utc>::MAX_UTC.timestamp(),
            );
            prop_oneof![
                Just(DateTime::<Utc>::MIN_UTC),
                Just(DateTime::<Utc>::MAX_UTC),
                (min..=max).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap_or_default()),
                // Around now, where real data is.
                (-10_000_000i64..10_000_000).prop_map(|s| t(0) + Duration::seconds(s)),
            ]
        }

        /// Any duration chrono represents, the ends and zero included.
        fn any_duration() -> impl Strategy<Value = Duration> {
            prop_oneof![
                Just(Duration::MAX),
                Just(Duration::MIN),
                Just(Duration::zero()),
                any::<i64>().prop_map(|ms| Duration::try_milliseconds(ms).unwrap_or(Duration::MAX)),
                (1i64..=30 * 86_400).prop_map(Duration::seconds),
            ]
        }

        fn any_spans() -> impl Strategy<Value = Vec<AliveSpan>> {
            prop::collection::vec((any_time(), any_time()), 0..6).prop_map(|pairs| {
                let mut spans: Vec<AliveSpan> = pairs
                    .into_iter()
                    .map(|(a, b)| AliveSpan {
                        start: a.min(b),
                        end: a.max(b),
                    })
                    .collect();
                spans.sort_by_key(|s| s.start);
                spans
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

            /// Extreme times and intervals (chrono's whole range, as hostile or corrupt data
            /// could bring) never panic the rules, and a wait is never in the past. Whatever the
            /// quiet time, nothing opens or reminds while quiet, and quiet time only ever takes
            /// time away from what counts.
            #[test]
            fn extreme_times_and_intervals_never_panic(
                enabled in any::<bool>(),
                inactivity in any_duration(),
                notification in any_duration(),
                enabled_at in any_time(),
                last_activity in prop::option::of(any_time()),
                episode in prop::option::of((any_time(), any_time(), any::<i32>())),
                alive in any_spans(),
                quiet in any_spans(),
                now in any_time(),
                k in any::<i32>(),
            ) {
                let settings = Settings {
                    enabled,
                    inactivity_interval: inactivity,
                    notification_interval: notification,
                    notify_on_recovery: true,
                    enabled_at,
                };
                let episode = episode.map(|(opened_at, baseline, last_sent)| OpenEpisode {
                    opened_at,
                    baseline,
                    last_sent,
                });
                let quiet: Vec<QuietSpan> = quiet
                    .into_iter()
                    .map(|s| QuietSpan {
                        start: s.start,
                        end: s.end,
                        reason: quiet::QuietReason::Snooze,
                        window_id: None,
                    })
                    .collect();
                let (counting, quiet_until) = with_quiet(&alive, &quiet, now);
                prop_assert!(alive_time(enabled_at, &counting, now) <= alive_time(enabled_at, &alive, now));
                let decision = decide(
                    &settings,
                    last_activity,
                    episode.as_ref(),
                    &counting,
                    quiet_until,
                    now,
                );
                if let Decision::Wait { next_check } = decision {
                    prop_assert!(next_check >= now, "{next_check} < {now}");
                }
                if quiet_until.is_some() {
                    prop_assert!(
                        matches!(decision, Decision::Wait { .. } | Decision::Close { .. }),
                        "{decision:?} while quiet"
                    );
                }
                let _ = alive_deadline(enabled_at, inactivity, &alive, now);
                prop_assert!(alive_time(enabled_at, &alive, now) >= Duration::zero());
                let _ = reminder_due(now, notification, k);
                let _ = later(now, inactivity);
            }
        }
    }
}
