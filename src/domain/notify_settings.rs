//! A license's notification settings as a value that can only hold what SPEC section 5 allows:
//! both intervals from 1 hour to 30 days, at most 20 distinct recipients, at least one when
//! notifications are on. The JSON API and the web UI both build it with [`parse`]; each words
//! the problems for its own fields (seconds and pointers, or hours next to a form field).

use super::EmailAddress;

/// The shortest inactivity and reminder interval: 1 hour.
pub const MIN_INTERVAL_SECONDS: i64 = 3600;
/// The longest: 30 days.
pub const MAX_INTERVAL_SECONDS: i64 = 30 * 86_400;
/// At most this many recipients per license.
pub const MAX_RECIPIENTS: usize = 20;
/// Defaults of a license whose settings were never saved.
pub const DEFAULT_INACTIVITY_SECONDS: i32 = 3600;
pub const DEFAULT_NOTIFICATION_SECONDS: i32 = 28_800;

/// What a person asked for, before it is checked.
#[derive(Debug, Clone)]
pub struct SettingsDraft {
    pub enabled: bool,
    pub inactivity_interval_seconds: i64,
    pub notification_interval_seconds: i64,
    /// As given: duplicates (case-insensitive) are dropped by [`parse`].
    pub recipients: Vec<String>,
    pub notify_on_recovery: bool,
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsProblem {
    /// An interval outside [`MIN_INTERVAL_SECONDS`]..=[`MAX_INTERVAL_SECONDS`] (the value).
    IntervalOutOfRange(i64),
    /// Not an e-mail address (why).
    BadAddress(String),
    /// More than [`MAX_RECIPIENTS`] (how many were given).
    TooManyRecipients(usize),
    /// Enabled with nobody to tell.
    NoRecipients,
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
    } else if draft.enabled && draft.recipients.is_empty() {
        problems.push((SettingsField::Recipients, SettingsProblem::NoRecipients));
    }
    match (inactivity, notification) {
        (Some(inactivity), Some(notification)) if problems.is_empty() => Ok(NotifySettings {
            enabled: draft.enabled,
            inactivity_interval_seconds: inactivity,
            notification_interval_seconds: notification,
            recipients,
            notify_on_recovery: draft.notify_on_recovery,
        }),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> SettingsDraft {
        SettingsDraft {
            enabled: true,
            inactivity_interval_seconds: 3600,
            notification_interval_seconds: 28_800,
            recipients: vec!["a@example.com".to_owned()],
            notify_on_recovery: true,
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
            [(SettingsField::Recipients, SettingsProblem::NoRecipients)]
        );
        assert!(
            parse(&SettingsDraft {
                enabled: false,
                ..d
            })
            .is_ok()
        );
    }
}
