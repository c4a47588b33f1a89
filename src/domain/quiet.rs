//! Quiet periods (SPEC section 5b) as plain data: tags, maintenance windows (one-off or an
//! RFC 5545 recurrence read in the window's own time zone), snoozes, and the quiet spans of one
//! license that the notification policy subtracts from the time that counts toward inactivity.
//!
//! Recurrences are expanded with the `rrule` crate. Local times that do not exist (the spring
//! daylight-saving gap) are shifted by the gap, and local times that happen twice (autumn) mean
//! the first of them, as RFC 5545 section 3.3.5 says for DATE-TIME values. So "every Sunday
//! 02:30 Europe/Berlin" is 03:30 CEST on the spring-forward Sunday and 02:30 CEST (not CET) on
//! the fall-back one.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use utoipa::ToSchema;
use uuid::Uuid;

/// At most this many tags per license.
pub const MAX_TAGS: usize = 20;
/// At most this many licenses or tags in a window's scope.
pub const MAX_SCOPE_ITEMS: usize = 1000;
/// Occurrences a recurrence is walked through at most in one expansion. The iterator cannot
/// skip ahead, so a rule whose start is far in the past costs one step per occurrence since;
/// hourly for ten years is under 90,000. Past the cap a window is treated as having no more
/// occurrences. (The crate's own loop guard, `limit()`, ends rules that match no date at all,
/// such as February 30th.)
const MAX_STEPS: usize = 100_000;
/// The shortest repetition a recurring window may have: a maintenance window every few minutes
/// would be a permanent mute.
const MIN_FREQUENCY: rrule::Frequency = rrule::Frequency::Hourly;
/// The longest a window (or one occurrence) may last.
pub const MAX_DURATION_SECONDS: i64 = 31 * 86_400;

/// `[a-z0-9][a-z0-9:._-]{0,63}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !first_ok
        || tag.len() > 64
        || !tag.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, ':' | '.' | '_' | '-')
        })
    {
        return Err(format!(
            "'{}' is not a tag: 1 to 64 characters of a-z, 0-9, ':', '.', '_' and '-', starting with a letter or digit",
            tag.chars().take(80).collect::<String>()
        ));
    }
    Ok(())
}

/// A license's tags: each checked, duplicates removed, sorted. Errors name the index.
pub fn parse_tags(input: &[String]) -> Result<Vec<String>, Vec<(Option<usize>, String)>> {
    let mut problems = Vec::new();
    if input.len() > MAX_TAGS {
        problems.push((None, format!("at most {MAX_TAGS} tags")));
    }
    for (i, tag) in input.iter().enumerate() {
        if let Err(e) = check_tag(tag) {
            problems.push((Some(i), e));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut tags = input.to_vec();
    tags.sort();
    tags.dedup();
    Ok(tags)
}

/// Which licenses a window mutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Licenses(Vec<Uuid>),
    /// Licenses carrying any of these tags (their tags at the moment of the decision).
    Tags(Vec<String>),
}

impl Scope {
    pub fn covers(&self, license_id: Uuid, tags: &[String]) -> bool {
        match self {
            Self::All => true,
            Self::Licenses(ids) => ids.contains(&license_id),
            Self::Tags(scope) => scope.iter().any(|t| tags.contains(t)),
        }
    }
}

/// When a window is quiet.
#[derive(Debug, Clone)]
pub enum Schedule {
    OneOff {
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    },
    Recurring(Box<Recurrence>),
}

/// A checked recurrence: the rule, its DTSTART, each occurrence's length and the time zone the
/// rule is read in.
#[derive(Debug, Clone)]
pub struct Recurrence {
    set: rrule::RRuleSet,
    rule: String,
    pub starts_at: DateTime<Utc>,
    pub duration: Duration,
    pub timezone: chrono_tz::Tz,
}

impl Recurrence {
    /// Checks a rule (`FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0`, with or without `RRULE:`)
    /// starting at `starts_at`, read in `timezone`. The error is a sentence for the `rrule`
    /// field.
    pub fn parse(
        rule: &str,
        starts_at: DateTime<Utc>,
        duration_seconds: i64,
        timezone: chrono_tz::Tz,
    ) -> Result<Self, RecurrenceError> {
        let text = rule.trim();
        let text = text.strip_prefix("RRULE:").unwrap_or(text);
        if text.is_empty() || text.len() > 1000 || text.contains(['\n', '\r']) {
            return Err(RecurrenceError::Rule(
                "must be one RFC 5545 RRULE line such as FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0"
                    .to_owned(),
            ));
        }
        if !(1..=MAX_DURATION_SECONDS).contains(&duration_seconds) {
            return Err(RecurrenceError::Duration(format!(
                "must be from 1 to {MAX_DURATION_SECONDS} seconds (31 days)"
            )));
        }
        let unvalidated = rrule::RRule::<rrule::Unvalidated>::from_str(text)
            .map_err(|e| RecurrenceError::Rule(format!("is not a valid RRULE: {e}")))?;
        if frequency_rank(unvalidated.get_freq()) > frequency_rank(MIN_FREQUENCY) {
            return Err(RecurrenceError::Rule(
                "may repeat at most hourly (FREQ=HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY)"
                    .to_owned(),
            ));
        }
        let tz = rrule::Tz::Tz(timezone);
        let dt_start = starts_at.with_timezone(&tz);
        let set = unvalidated
            .build(dt_start)
            .map_err(|e| RecurrenceError::Rule(format!("is not a valid RRULE: {e}")))?;
        let rule = set
            .get_rrule()
            .first()
            .map_or_else(|| text.to_owned(), ToString::to_string);
        Ok(Self {
            set,
            rule,
            starts_at,
            duration: Duration::seconds(duration_seconds),
            timezone,
        })
    }

    /// The rule as stored and shown (normalised by the parser, without `RRULE:`).
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// Occurrence starts, in order, from DTSTART on; at most [`MAX_STEPS`] of them.
    fn starts(&self) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        self.set
            .clone()
            .limit()
            .into_iter()
            .take(MAX_STEPS)
            .map(|d| d.with_timezone(&Utc))
    }
}

/// The rule's frequency, most frequent first (Secondly = 6 .. Yearly = 0).
fn frequency_rank(f: rrule::Frequency) -> u8 {
    match f {
        rrule::Frequency::Yearly => 0,
        rrule::Frequency::Monthly => 1,
        rrule::Frequency::Weekly => 2,
        rrule::Frequency::Daily => 3,
        rrule::Frequency::Hourly => 4,
        rrule::Frequency::Minutely => 5,
        rrule::Frequency::Secondly => 6,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurrenceError {
    /// The `rrule` field is wrong.
    #[error("{0}")]
    Rule(String),
    /// The `duration_seconds` field is wrong.
    #[error("{0}")]
    Duration(String),
}

impl Schedule {
    /// Occurrences (start, end) that overlap `[from, to)`, in order of start.
    pub fn occurrences(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        match self {
            Self::OneOff { starts_at, ends_at } => {
                if *starts_at < to && *ends_at > from {
                    vec![(*starts_at, *ends_at)]
                } else {
                    Vec::new()
                }
            }
            Self::Recurring(r) => {
                let mut out = Vec::new();
                for start in r.starts() {
                    if start >= to {
                        break;
                    }
                    let Some(end) = start.checked_add_signed(r.duration) else {
                        break;
                    };
                    if end > from {
                        out.push((start, end));
                    }
                }
                out
            }
        }
    }

    /// The next `n` occurrences that end after `now` (the one under way first, if any): the
    /// UI's preview.
    pub fn upcoming(&self, now: DateTime<Utc>, n: usize) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        match self {
            Self::OneOff { starts_at, ends_at } => {
                if *ends_at > now {
                    vec![(*starts_at, *ends_at)]
                } else {
                    Vec::new()
                }
            }
            Self::Recurring(r) => r
                .starts()
                .filter_map(|s| s.checked_add_signed(r.duration).map(|e| (s, e)))
                .filter(|(_, e)| *e > now)
                .take(n)
                .collect(),
        }
    }
}

/// A maintenance window, as the rules need it.
#[derive(Debug, Clone)]
pub struct Window {
    pub id: Uuid,
    pub scope: Scope,
    pub schedule: Schedule,
}

/// Why a license is quiet now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuietReason {
    Maintenance,
    Snooze,
}

/// The `"quiet"` object of the status API and the license list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Quiet {
    pub reason: QuietReason,
    /// When this quiet time ends (the end of back-to-back windows and snoozes together).
    pub until: DateTime<Utc>,
    /// The window, for `maintenance`.
    pub window_id: Option<Uuid>,
}

/// A time when a license is quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietSpan {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub reason: QuietReason,
    pub window_id: Option<Uuid>,
}

/// A license's snooze: quiet from `since` until `until` (`until` moves to the moment it was
/// ended early, so the time it was in force still counts as quiet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snooze {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// Every quiet span of one license overlapping `[from, to)`, sorted by start (they may
/// overlap; [`merge`] joins them).
pub fn quiet_spans(
    windows: &[Window],
    license_id: Uuid,
    tags: &[String],
    snooze: Option<Snooze>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<QuietSpan> {
    // Only the windows that cover this license are expanded.
    let expanded: Vec<Expanded> = windows
        .iter()
        .filter(|w| w.scope.covers(license_id, tags))
        .map(|w| Expanded::new(w.clone(), from, to))
        .collect();
    quiet_spans_expanded(&expanded, license_id, tags, snooze, from, to)
}

/// The snooze as a quiet span, if it overlaps `[from, to)`.
fn snooze_span(
    snooze: Option<Snooze>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<QuietSpan> {
    snooze
        .filter(|s| s.since < to && s.until > from && s.until > s.since)
        .map(|s| QuietSpan {
            start: s.since,
            end: s.until,
            reason: QuietReason::Snooze,
            window_id: None,
        })
}

/// A window with its occurrences over one range, expanded once. The sweep decides many
/// licenses of a tenant against the same windows, and a recurrence is walked from its DTSTART
/// at every expansion: expanding once per sweep keeps that walk out of the per-license cost.
#[derive(Debug, Clone)]
pub struct Expanded {
    pub id: Uuid,
    pub scope: Scope,
    /// The occurrences overlapping the range, sorted by start and so by end (every occurrence
    /// of a window lasts as long).
    occurrences: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Expanded {
    /// The window's occurrences overlapping `[from, to)`.
    pub fn new(window: Window, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self {
            occurrences: window.schedule.occurrences(from, to),
            id: window.id,
            scope: window.scope,
        }
    }
}

/// [`quiet_spans`] over windows expanded once ([`Expanded`]); `[from, to)` must lie inside the
/// range they were expanded over.
pub fn quiet_spans_expanded(
    windows: &[Expanded],
    license_id: Uuid,
    tags: &[String],
    snooze: Option<Snooze>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<QuietSpan> {
    let mut spans: Vec<QuietSpan> = windows
        .iter()
        .filter(|w| w.scope.covers(license_id, tags))
        .flat_map(|w| {
            let first = w.occurrences.partition_point(|&(_, end)| end <= from);
            w.occurrences[first..]
                .iter()
                .take_while(move |&&(start, _)| start < to)
                .map(|&(start, end)| QuietSpan {
                    start,
                    end,
                    reason: QuietReason::Maintenance,
                    window_id: Some(w.id),
                })
        })
        .collect();
    spans.extend(snooze_span(snooze, from, to));
    spans.sort_by_key(|s| (s.start, s.end));
    spans
}

/// Sorted spans joined where they touch or overlap: `(start, end)` pairs.
pub fn merge(spans: &[QuietSpan]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for s in spans {
        match out.last_mut() {
            Some(last) if s.start <= last.1 => last.1 = last.1.max(s.end),
            _ => out.push((s.start, s.end)),
        }
    }
    out
}

/// Whether the license is quiet at `now`, and until when (through back-to-back spans). The
/// reason and window are those of a span in force at `now`, the one lasting longest.
pub fn quiet_at(spans: &[QuietSpan], now: DateTime<Utc>) -> Option<Quiet> {
    let current = spans
        .iter()
        .filter(|s| s.start <= now && now < s.end)
        .max_by_key(|s| s.end)?;
    let until = merge(spans)
        .into_iter()
        .find(|(start, end)| *start <= now && now < *end)
        .map_or(current.end, |(_, end)| end);
    Some(Quiet {
        reason: current.reason,
        until,
        window_id: current.window_id,
    })
}

/// Times `[start, end)` minus the merged quiet spans: what is left counts toward inactivity.
pub fn subtract(
    spans: &[(DateTime<Utc>, DateTime<Utc>)],
    quiet: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    for &(start, end) in spans {
        let mut cursor = start;
        for &(qs, qe) in quiet {
            if qe <= cursor || qs >= end {
                continue;
            }
            if qs > cursor {
                out.push((cursor, qs));
            }
            cursor = cursor.max(qe);
            if cursor >= end {
                break;
            }
        }
        if cursor < end {
            out.push((cursor, end));
        }
    }
    out
}

/// A time zone by its IANA name, for the window's `timezone` field.
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse::<chrono_tz::Tz>()
        .map_err(|_| format!("'{name}' is not an IANA time zone name such as Europe/Berlin"))
}

/// A local wall-clock time in `tz` (for tests and previews).
pub fn local(tz: chrono_tz::Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Option<DateTime<Utc>> {
    tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Europe::Berlin};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn sundays_at(tz: chrono_tz::Tz, hour: u32, minute: u32, first: DateTime<Utc>) -> Recurrence {
        Recurrence::parse(
            &format!("FREQ=WEEKLY;BYDAY=SU;BYHOUR={hour};BYMINUTE={minute};BYSECOND=0"),
            first,
            3600,
            tz,
        )
        .unwrap()
    }

    /// Local (hour, minute, UTC offset in hours) of each occurrence start in `tz`.
    fn local_starts(
        r: &Recurrence,
        tz: chrono_tz::Tz,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<(String, i32)> {
        use chrono::Offset;
        Schedule::Recurring(Box::new(r.clone()))
            .occurrences(from, to)
            .into_iter()
            .map(|(s, _)| {
                let l = s.with_timezone(&tz);
                (
                    l.format("%Y-%m-%d %H:%M").to_string(),
                    l.offset().fix().local_minus_utc() / 3600,
                )
            })
            .collect()
    }

    #[test]
    fn tags_are_checked_deduplicated_and_sorted() {
        let ok = parse_tags(&["region:eu".into(), "a".into(), "region:eu".into()]).unwrap();
        assert_eq!(ok, vec!["a".to_owned(), "region:eu".to_owned()]);
        for bad in ["", "Region", "-x", "a b", &"x".repeat(65), "é"] {
            let e = parse_tags(&["ok".into(), bad.into()]).unwrap_err();
            assert_eq!(e[0].0, Some(1), "{bad}");
        }
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert_eq!(parse_tags(&many).unwrap_err()[0].0, None);
        assert!(check_tag(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn berlin_sunday_two_am_stays_two_am_across_both_changes() {
        let first = local(Berlin, 2027, 3, 14, 2, 0).unwrap();
        let r = sundays_at(Berlin, 2, 0, first);
        // 2027: spring forward on March 28 (02:00 does not exist), fall back on October 31.
        let spring = local_starts(&r, Berlin, utc(2027, 3, 13, 0, 0), utc(2027, 4, 5, 0, 0));
        assert_eq!(
            spring,
            vec![
                ("2027-03-14 02:00".into(), 1),
                ("2027-03-21 02:00".into(), 1),
                // The gap: 02:00 is read with the offset before it, i.e. 03:00 CEST.
                ("2027-03-28 03:00".into(), 2),
                ("2027-04-04 02:00".into(), 2),
            ]
        );
        let autumn = local_starts(&r, Berlin, utc(2027, 10, 23, 0, 0), utc(2027, 11, 8, 0, 0));
        assert_eq!(
            autumn,
            vec![
                ("2027-10-24 02:00".into(), 2),
                ("2027-10-31 02:00".into(), 2),
                ("2027-11-07 02:00".into(), 1),
            ]
        );
    }

    #[test]
    fn new_york_half_past_two_in_the_gap_and_the_repeated_hour() {
        // 2027: spring forward March 14 at 02:00 EST, fall back November 7 at 02:00 EDT.
        let first = local(New_York, 2027, 3, 7, 2, 30).unwrap();
        let r = sundays_at(New_York, 2, 30, first);
        let spring = local_starts(&r, New_York, utc(2027, 3, 6, 0, 0), utc(2027, 3, 22, 0, 0));
        assert_eq!(
            spring,
            vec![
                ("2027-03-07 02:30".into(), -5),
                ("2027-03-14 03:30".into(), -4),
                ("2027-03-21 02:30".into(), -4),
            ]
        );
        let first = local(New_York, 2027, 10, 31, 1, 30).unwrap();
        let r = sundays_at(New_York, 1, 30, first);
        let autumn = local_starts(
            &r,
            New_York,
            utc(2027, 10, 30, 0, 0),
            utc(2027, 11, 15, 0, 0),
        );
        assert_eq!(
            autumn,
            vec![
                ("2027-10-31 01:30".into(), -4),
                // 01:30 happens twice on November 7: the first one (EDT) is meant.
                ("2027-11-07 01:30".into(), -4),
                ("2027-11-14 01:30".into(), -5),
            ]
        );
    }

    #[test]
    fn an_occurrence_lasts_its_duration_in_real_time() {
        let first = local(Berlin, 2027, 3, 27, 1, 0).unwrap();
        let r = Recurrence::parse(
            "RRULE:FREQ=DAILY;BYHOUR=1;BYMINUTE=0;BYSECOND=0",
            first,
            7200,
            Berlin,
        )
        .unwrap();
        let occ = Schedule::Recurring(Box::new(r))
            .occurrences(utc(2027, 3, 28, 0, 0), utc(2027, 3, 28, 12, 0));
        // 01:00 CET + 2 h = 04:00 CEST on the night the clocks jump.
        assert_eq!(occ, vec![(utc(2027, 3, 28, 0, 0), utc(2027, 3, 28, 2, 0))]);
    }

    #[test]
    fn bad_rules_are_refused_with_a_sentence() {
        let at = utc(2027, 1, 1, 0, 0);
        for (rule, duration) in [
            ("FREQ=SOMETIMES", 60),
            ("FREQ=MINUTELY", 60),
            ("FREQ=SECONDLY", 60),
            ("", 60),
            ("FREQ=DAILY\nRRULE:FREQ=DAILY", 60),
            ("FREQ=DAILY", 0),
            ("FREQ=DAILY", MAX_DURATION_SECONDS + 1),
        ] {
            let e = Recurrence::parse(rule, at, duration, Berlin).unwrap_err();
            assert!(!e.to_string().is_empty(), "{rule}");
        }
    }

    #[test]
    fn a_rule_that_matches_no_date_ends_instead_of_looping() {
        let at = utc(2027, 1, 1, 0, 0);
        let r = Recurrence::parse("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", at, 60, Berlin).unwrap();
        assert!(Schedule::Recurring(Box::new(r)).upcoming(at, 5).is_empty());
    }

    #[test]
    fn the_preview_lists_the_next_occurrences() {
        let first = local(Berlin, 2027, 1, 3, 2, 0).unwrap();
        let s = Schedule::Recurring(Box::new(sundays_at(Berlin, 2, 0, first)));
        let next = s.upcoming(utc(2027, 1, 10, 1, 30), 5);
        assert_eq!(next.len(), 5);
        // Under way at 02:30 local: the current one is listed first.
        assert_eq!(next[0].0, local(Berlin, 2027, 1, 10, 2, 0).unwrap());
        assert_eq!(next[4].0, local(Berlin, 2027, 2, 7, 2, 0).unwrap());
    }

    #[test]
    fn scopes_and_spans() {
        let lic = Uuid::from_u128(7);
        let other = Uuid::from_u128(8);
        let w = |id: u128, scope: Scope, s: i64, e: i64| Window {
            id: Uuid::from_u128(id),
            scope,
            schedule: Schedule::OneOff {
                starts_at: utc(2027, 1, 1, 0, 0) + Duration::hours(s),
                ends_at: utc(2027, 1, 1, 0, 0) + Duration::hours(e),
            },
        };
        let h = |n: i64| utc(2027, 1, 1, 0, 0) + Duration::hours(n);
        let windows = vec![
            w(1, Scope::Licenses(vec![lic]), 1, 2),
            w(2, Scope::Tags(vec!["site:a".into()]), 2, 4),
            w(3, Scope::Licenses(vec![other]), 0, 10),
            w(4, Scope::All, 8, 9),
        ];
        let tags = vec!["site:a".to_owned()];
        let spans = quiet_spans(&windows, lic, &tags, None, h(0), h(24));
        assert_eq!(merge(&spans), vec![(h(1), h(4)), (h(8), h(9))]);
        // Back to back: quiet until the end of the second window, named by the one in force.
        let q = quiet_at(&spans, h(1)).unwrap();
        assert_eq!(q.until, h(4));
        assert_eq!(q.window_id, Some(Uuid::from_u128(1)));
        assert_eq!(quiet_at(&spans, h(5)), None);
        // Without the tag, only the license's own window and the tenant-wide one.
        let untagged = quiet_spans(&windows, lic, &[], None, h(0), h(24));
        assert_eq!(merge(&untagged), vec![(h(1), h(2)), (h(8), h(9))]);
        // A snooze joins them.
        let snooze = Snooze {
            since: h(4),
            until: h(8),
        };
        let all = quiet_spans(&windows, lic, &tags, Some(snooze), h(0), h(24));
        assert_eq!(merge(&all), vec![(h(1), h(9))]);
        let q = quiet_at(&all, h(5)).unwrap();
        assert_eq!(
            (q.reason, q.until, q.window_id),
            (QuietReason::Snooze, h(9), None)
        );
    }

    #[test]
    fn windows_expanded_once_give_the_same_spans_for_any_part_of_their_range() {
        let h = |n: i64| utc(2027, 1, 4, 0, 0) + Duration::hours(n);
        let lic = Uuid::from_u128(7);
        let daily = Recurrence::parse(
            "FREQ=DAILY;BYHOUR=1;BYMINUTE=0;BYSECOND=0",
            h(-72),
            7200,
            Berlin,
        )
        .unwrap();
        let windows = vec![
            Window {
                id: Uuid::from_u128(1),
                scope: Scope::All,
                schedule: Schedule::Recurring(Box::new(daily)),
            },
            Window {
                id: Uuid::from_u128(2),
                scope: Scope::Tags(vec!["site:a".into()]),
                schedule: Schedule::OneOff {
                    starts_at: h(5),
                    ends_at: h(30),
                },
            },
        ];
        let expanded: Vec<Expanded> = windows
            .iter()
            .map(|w| Expanded::new(w.clone(), h(-48), h(24 * 10)))
            .collect();
        let snooze = Some(Snooze {
            since: h(2),
            until: h(3),
        });
        for tags in [vec![], vec!["site:a".to_owned()]] {
            for (from, to) in [
                (-48, 240),
                (0, 24),
                (1, 2),
                (26, 50),
                (100, 101),
                (-48, -47),
            ] {
                assert_eq!(
                    quiet_spans_expanded(&expanded, lic, &tags, snooze, h(from), h(to)),
                    quiet_spans(&windows, lic, &tags, snooze, h(from), h(to)),
                    "{tags:?} {from}..{to}"
                );
            }
        }
    }

    #[test]
    fn subtracting_quiet_time() {
        let h = |n: i64| utc(2027, 1, 1, 0, 0) + Duration::hours(n);
        let alive = vec![(h(0), h(5)), (h(6), h(10))];
        let quiet = vec![(h(1), h(2)), (h(4), h(7)), (h(9), h(12))];
        assert_eq!(
            subtract(&alive, &quiet),
            vec![(h(0), h(1)), (h(2), h(4)), (h(7), h(9))]
        );
        assert_eq!(subtract(&alive, &[]), alive);
    }
}
