//! A license's notification settings as a value that can only hold what SPEC sections 5 and 5a
//! allow: both intervals from 1 hour to 30 days, at most 20 distinct recipients and 20 distinct
//! channels, at least one of either when notifications are on, up to 3 escalation steps with
//! strictly increasing delays, and camera-level alerts after 5 minutes to 30 days. The JSON API
//! and the web UI both build it with [`parse`]; each words the problems for its own fields
//! (seconds and pointers, or hours next to a form field).
//!
//! That a channel id names a channel of the tenant is not known here: the use case checks it
//! against the database ([`SettingsProblem::NoSuchChannel`]) in the transaction that saves.

use super::EmailAddress;
use uuid::Uuid;

/// The shortest inactivity and reminder interval: 1 hour.
pub const MIN_INTERVAL_SECONDS: i64 = 3600;
/// The longest: 30 days.
pub const MAX_INTERVAL_SECONDS: i64 = 30 * 86_400;
/// At most this many recipients per license.
pub const MAX_RECIPIENTS: usize = 20;
/// Defaults of a license whose settings were never saved.
pub const DEFAULT_INACTIVITY_SECONDS: i32 = 3600;
pub const DEFAULT_NOTIFICATION_SECONDS: i32 = 28_800;
/// At most this many channels per license, and per escalation step.
pub const MAX_CHANNELS: usize = 20;
/// At most this many escalation steps (SPEC section 5a).
pub const MAX_ESCALATION_STEPS: usize = 3;
/// The shortest delay of an escalation step or of camera-level alerts: 5 minutes. Shorter
/// would page a second team for a blip the first has not even seen yet.
pub const MIN_DELAY_SECONDS: i64 = 300;
/// The longest: 30 days.
pub const MAX_DELAY_SECONDS: i64 = 30 * 86_400;
/// How long a license must be Partially Active before a camera-level alert, by default: 1 h.
pub const DEFAULT_PARTIAL_AFTER_SECONDS: i32 = 3600;

/// One escalation step as asked for.
#[derive(Debug, Clone, Default)]
pub struct StepDraft {
    pub after_seconds: i64,
    pub channels: Vec<Uuid>,
}

/// One checked escalation step: after the episode has been open `after_seconds` without an
/// acknowledgement, these channels get `license.escalated`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationStep {
    pub after_seconds: i32,
    /// 1..=20, distinct.
    pub channels: Vec<Uuid>,
}

/// Camera-level alerts: a `partial` episode once the license has been Partially Active for
/// `after_seconds` without a break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialAlerts {
    pub enabled: bool,
    pub after_seconds: i32,
}

/// What a person asked for, before it is checked.
#[derive(Debug, Clone)]
pub struct SettingsDraft {
    pub enabled: bool,
    pub inactivity_interval_seconds: i64,
    pub notification_interval_seconds: i64,
    /// As given: duplicates (case-insensitive) are dropped by [`parse`].
    pub recipients: Vec<String>,
    pub notify_on_recovery: bool,
    /// As given: a duplicate is a problem ([`SettingsProblem::DuplicateChannel`]).
    pub channels: Vec<Uuid>,
    pub escalation: Vec<StepDraft>,
    pub partial_enabled: bool,
    pub partial_after_seconds: i64,
}

/// Checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySettings {
    pub enabled: bool,
    pub inactivity_interval_seconds: i32,
    pub notification_interval_seconds: i32,
    /// Distinct, in the order given.
    pub recipients: Vec<EmailAddress>,
    pub notify_on_recovery: bool,
    /// Distinct, in the order given (so an index here is the index in the draft).
    pub channels: Vec<Uuid>,
    /// Strictly increasing `after_seconds`, in the order given.
    pub escalation: Vec<EscalationStep>,
    pub partial: PartialAlerts,
}

/// Which input a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsField {
    InactivityInterval,
    NotificationInterval,
    /// One recipient, by its index in the draft.
    Recipient(usize),
    /// The list as a whole.
    Recipients,
    /// One channel, by its index in the draft.
    Channel(usize),
    /// The channel list as a whole.
    Channels,
    /// The escalation steps as a whole.
    Escalation,
    /// Step `i`'s delay.
    StepAfter(usize),
    /// Step `i`'s channel `j`.
    StepChannel(usize, usize),
    /// Step `i`'s channel list as a whole.
    StepChannels(usize),
    /// The delay of camera-level alerts.
    PartialAfter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsProblem {
    /// An interval outside [`MIN_INTERVAL_SECONDS`]..=[`MAX_INTERVAL_SECONDS`] (the value).
    IntervalOutOfRange(i64),
    /// Not an e-mail address (why).
    BadAddress(String),
    /// More than [`MAX_RECIPIENTS`] (how many were given).
    TooManyRecipients(usize),
    /// Enabled with nobody to tell: no recipient and no channel.
    NoTarget,
    /// More than [`MAX_CHANNELS`] channels in one list (how many were given).
    TooManyChannels(usize),
    /// A channel listed twice in one list.
    DuplicateChannel,
    /// Not a channel of the tenant (or another tenant's: the two look the same).
    NoSuchChannel,
    /// More than [`MAX_ESCALATION_STEPS`] steps (how many were given).
    TooManySteps(usize),
    /// A delay outside [`MIN_DELAY_SECONDS`]..=[`MAX_DELAY_SECONDS`] (the value).
    DelayOutOfRange(i64),
    /// A step's delay is not greater than the previous step's (that one's delay).
    NotAfterPrevious(i64),
    /// A step without channels.
    NoStepChannels,
}

/// Checks every field and reports every problem, in the order of the fields.
pub fn parse(
    draft: &SettingsDraft,
) -> Result<NotifySettings, Vec<(SettingsField, SettingsProblem)>> {
    let mut problems = Vec::new();
    let mut interval = |field, seconds: i64| {
        if (MIN_INTERVAL_SECONDS..=MAX_INTERVAL_SECONDS).contains(&seconds) {
            i32::try_from(seconds).ok()
        } else {
            problems.push((field, SettingsProblem::IntervalOutOfRange(seconds)));
            None
        }
    };
    let inactivity = interval(
        SettingsField::InactivityInterval,
        draft.inactivity_interval_seconds,
    );
    let notification = interval(
        SettingsField::NotificationInterval,
        draft.notification_interval_seconds,
    );
    let mut recipients: Vec<EmailAddress> = Vec::new();
    for (i, raw) in draft.recipients.iter().enumerate() {
        match EmailAddress::parse(raw) {
            Ok(email) if !recipients.contains(&email) => recipients.push(email),
            Ok(_) => {}
            Err(why) => problems.push((
                SettingsField::Recipient(i),
                SettingsProblem::BadAddress(why),
            )),
        }
    }
    if draft.recipients.len() > MAX_RECIPIENTS {
        problems.push((
            SettingsField::Recipients,
            SettingsProblem::TooManyRecipients(draft.recipients.len()),
        ));
    } else if draft.enabled && draft.recipients.is_empty() && draft.channels.is_empty() {
        problems.push((SettingsField::Recipients, SettingsProblem::NoTarget));
    }
    let channels = channel_list(
        &draft.channels,
        SettingsField::Channels,
        SettingsField::Channel,
        &mut problems,
    );
    let escalation = escalation(&draft.escalation, &mut problems);
    let partial_after = delay(
        SettingsField::PartialAfter,
        draft.partial_after_seconds,
        &mut problems,
    );
    match (inactivity, notification, partial_after) {
        (Some(inactivity), Some(notification), Some(partial_after)) if problems.is_empty() => {
            Ok(NotifySettings {
                enabled: draft.enabled,
                inactivity_interval_seconds: inactivity,
                notification_interval_seconds: notification,
                recipients,
                notify_on_recovery: draft.notify_on_recovery,
                channels,
                escalation,
                partial: PartialAlerts {
                    enabled: draft.partial_enabled,
                    after_seconds: partial_after,
                },
            })
        }
        _ => Err(problems),
    }
}

/// A delay of [`MIN_DELAY_SECONDS`]..=[`MAX_DELAY_SECONDS`], or its problem noted.
fn delay(
    field: SettingsField,
    seconds: i64,
    problems: &mut Vec<(SettingsField, SettingsProblem)>,
) -> Option<i32> {
    if (MIN_DELAY_SECONDS..=MAX_DELAY_SECONDS).contains(&seconds) {
        i32::try_from(seconds).ok()
    } else {
        problems.push((field, SettingsProblem::DelayOutOfRange(seconds)));
        None
    }
}

/// A list of at most [`MAX_CHANNELS`] distinct channel ids; `whole` and `one(index)` name the
/// list and its items in problems.
fn channel_list(
    given: &[Uuid],
    whole: SettingsField,
    one: impl Fn(usize) -> SettingsField,
    problems: &mut Vec<(SettingsField, SettingsProblem)>,
) -> Vec<Uuid> {
    if given.len() > MAX_CHANNELS {
        problems.push((whole, SettingsProblem::TooManyChannels(given.len())));
    }
    for (i, id) in given.iter().enumerate() {
        if given[..i].contains(id) {
            problems.push((one(i), SettingsProblem::DuplicateChannel));
        }
    }
    given.to_vec()
}

/// Up to [`MAX_ESCALATION_STEPS`] steps, each after the one before, each with channels.
fn escalation(
    steps: &[StepDraft],
    problems: &mut Vec<(SettingsField, SettingsProblem)>,
) -> Vec<EscalationStep> {
    if steps.len() > MAX_ESCALATION_STEPS {
        problems.push((
            SettingsField::Escalation,
            SettingsProblem::TooManySteps(steps.len()),
        ));
    }
    let mut checked = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let after = delay(SettingsField::StepAfter(i), step.after_seconds, problems);
        if let (Some(_), Some(previous)) = (after, i.checked_sub(1).map(|p| &steps[p]))
            && step.after_seconds <= previous.after_seconds
        {
            problems.push((
                SettingsField::StepAfter(i),
                SettingsProblem::NotAfterPrevious(previous.after_seconds),
            ));
        }
        if step.channels.is_empty() {
            problems.push((
                SettingsField::StepChannels(i),
                SettingsProblem::NoStepChannels,
            ));
        }
        let channels = channel_list(
            &step.channels,
            SettingsField::StepChannels(i),
            |j| SettingsField::StepChannel(i, j),
            problems,
        );
        checked.push(EscalationStep {
            after_seconds: after.unwrap_or_default(),
            channels,
        });
    }
    checked
}

#[cfg(test)]
mod tests {
    use super::*;

    type Problems = Vec<(SettingsField, SettingsProblem)>;

    fn draft() -> SettingsDraft {
        SettingsDraft {
            enabled: true,
            inactivity_interval_seconds: 3600,
            notification_interval_seconds: 28_800,
            recipients: vec!["a@example.com".to_owned()],
            notify_on_recovery: true,
            channels: Vec::new(),
            escalation: Vec::new(),
            partial_enabled: false,
            partial_after_seconds: 3600,
        }
    }

    fn step(after_seconds: i64, channels: &[Uuid]) -> StepDraft {
        StepDraft {
            after_seconds,
            channels: channels.to_vec(),
        }
    }

    #[test]
    fn the_bounds_are_inclusive() {
        for seconds in [MIN_INTERVAL_SECONDS, MAX_INTERVAL_SECONDS] {
            let d = SettingsDraft {
                inactivity_interval_seconds: seconds,
                notification_interval_seconds: seconds,
                ..draft()
            };
            assert!(parse(&d).is_ok(), "{seconds}");
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let d = SettingsDraft {
            inactivity_interval_seconds: MIN_INTERVAL_SECONDS - 1,
            notification_interval_seconds: MAX_INTERVAL_SECONDS + 1,
            recipients: vec!["ok@example.com".to_owned(), "nope".to_owned()],
            ..draft()
        };
        let fields: Vec<_> = parse(&d).unwrap_err().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                SettingsField::InactivityInterval,
                SettingsField::NotificationInterval,
                SettingsField::Recipient(1)
            ]
        );
    }

    #[test]
    fn recipients_are_deduplicated_but_counted_as_given() {
        let d = SettingsDraft {
            recipients: vec!["A@example.com".to_owned(), "a@example.com".to_owned()],
            ..draft()
        };
        assert_eq!(parse(&d).unwrap().recipients.len(), 1);
        let d = SettingsDraft {
            recipients: vec!["a@example.com".to_owned(); MAX_RECIPIENTS + 1],
            ..draft()
        };
        assert_eq!(
            parse(&d).unwrap_err(),
            [(
                SettingsField::Recipients,
                SettingsProblem::TooManyRecipients(MAX_RECIPIENTS + 1)
            )]
        );
    }

    #[test]
    fn enabled_needs_a_recipient_and_disabled_does_not() {
        let d = SettingsDraft {
            recipients: Vec::new(),
            ..draft()
        };
        assert_eq!(
            parse(&d).unwrap_err(),
            [(SettingsField::Recipients, SettingsProblem::NoTarget)]
        );
        assert!(
            parse(&SettingsDraft {
                enabled: false,
                ..d.clone()
            })
            .is_ok()
        );
        // A channel alone is somebody to tell.
        let with_channel = parse(&SettingsDraft {
            channels: vec![Uuid::new_v4()],
            ..d
        })
        .unwrap();
        assert!(with_channel.recipients.is_empty());
        assert_eq!(with_channel.channels.len(), 1);
    }

    #[test]
    fn channels_are_bounded_and_a_duplicate_is_named_by_its_index() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let d = SettingsDraft {
            channels: vec![a, b, a],
            ..draft()
        };
        assert_eq!(
            parse(&d).unwrap_err(),
            [(SettingsField::Channel(2), SettingsProblem::DuplicateChannel)]
        );
        let many: Vec<Uuid> = (0..=MAX_CHANNELS).map(|_| Uuid::new_v4()).collect();
        let d = SettingsDraft {
            channels: many,
            ..draft()
        };
        assert_eq!(
            parse(&d).unwrap_err(),
            [(
                SettingsField::Channels,
                SettingsProblem::TooManyChannels(MAX_CHANNELS + 1)
            )]
        );
    }

    #[test]
    fn escalation_steps_are_bounded_increasing_and_each_has_channels() {
        let c = Uuid::new_v4();
        let ok = SettingsDraft {
            escalation: vec![
                step(300, &[c]),
                step(3600, &[c]),
                step(MAX_DELAY_SECONDS, &[c]),
            ],
            ..draft()
        };
        let s = parse(&ok).unwrap();
        assert_eq!(
            s.escalation
                .iter()
                .map(|s| s.after_seconds)
                .collect::<Vec<_>>(),
            [300, 3600, 2_592_000]
        );
        let cases: Vec<(Vec<StepDraft>, Problems)> = vec![
            (
                vec![step(299, &[c])],
                vec![(
                    SettingsField::StepAfter(0),
                    SettingsProblem::DelayOutOfRange(299),
                )],
            ),
            (
                vec![step(3600, &[c]), step(3600, &[c])],
                vec![(
                    SettingsField::StepAfter(1),
                    SettingsProblem::NotAfterPrevious(3600),
                )],
            ),
            (
                vec![step(3600, &[])],
                vec![(
                    SettingsField::StepChannels(0),
                    SettingsProblem::NoStepChannels,
                )],
            ),
            (
                vec![step(3600, &[c, c])],
                vec![(
                    SettingsField::StepChannel(0, 1),
                    SettingsProblem::DuplicateChannel,
                )],
            ),
            (
                vec![
                    step(600, &[c]),
                    step(1200, &[c]),
                    step(1800, &[c]),
                    step(2400, &[c]),
                ],
                vec![(SettingsField::Escalation, SettingsProblem::TooManySteps(4))],
            ),
        ];
        for (steps, expected) in cases {
            let d = SettingsDraft {
                escalation: steps,
                ..draft()
            };
            assert_eq!(parse(&d).unwrap_err(), expected);
        }
    }

    #[test]
    fn camera_level_alerts_wait_five_minutes_to_thirty_days() {
        for seconds in [MIN_DELAY_SECONDS, MAX_DELAY_SECONDS] {
            let d = SettingsDraft {
                partial_enabled: true,
                partial_after_seconds: seconds,
                ..draft()
            };
            assert!(parse(&d).unwrap().partial.enabled);
        }
        for seconds in [MIN_DELAY_SECONDS - 1, MAX_DELAY_SECONDS + 1] {
            let d = SettingsDraft {
                partial_after_seconds: seconds,
                ..draft()
            };
            assert_eq!(
                parse(&d).unwrap_err(),
                [(
                    SettingsField::PartialAfter,
                    SettingsProblem::DelayOutOfRange(seconds)
                )]
            );
        }
    }
}
