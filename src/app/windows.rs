//! Maintenance windows (SPEC section 5b) as use cases: create, read, change, delete, with a
//! preview of the next occurrences, and the checks of a window as a client gives it. The JSON
//! API and the web UI both call these; the rules (scopes, RRULE expansion) are
//! `domain::quiet`'s. Every change pulls the notification sweep's next check of the licenses
//! concerned forward (`store::windows::recheck`, in the same transaction).

use super::{AppError, AppResult, AppState, pagination};
use crate::{
    db,
    domain::{
        DisplayName, FieldError, Validation,
        quiet::{
            self, MAX_DURATION_SECONDS, MAX_SCOPE_ITEMS, Recurrence, RecurrenceError, Schedule,
            Scope,
        },
    },
    store::{
        self,
        licenses::existing_ids,
        windows::{self, WindowFields, WindowRow},
    },
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// How many occurrences a window's preview lists.
pub const PREVIEW_OCCURRENCES: usize = 5;

/// A window as a client gives it, every field optional and not yet checked: a create needs the
/// fields of one schedule form, a change (PATCH) gives only what changes and the rest is taken
/// from the stored window. [`create_window`] and [`update_window`] check it; each problem's
/// pointer names the field of the JSON body (`/scope/license_ids/2`, `/rrule`).
#[derive(Debug, Default, Clone)]
pub struct WindowDraft {
    /// 1..200 characters.
    pub name: Option<String>,
    pub scope: Option<ScopeDraft>,
    /// A one-off window's start, or a recurring window's DTSTART (default: the start of the
    /// current day in `timezone`).
    pub starts_at: Option<DateTime<Utc>>,
    /// A one-off window's end: at most 31 days after `starts_at`.
    pub ends_at: Option<DateTime<Utc>>,
    /// An RFC 5545 RRULE, at most hourly.
    pub rrule: Option<String>,
    /// How long each occurrence lasts: 1 s to 31 days.
    pub duration_seconds: Option<i64>,
    /// The IANA time zone the RRULE is read in.
    pub timezone: Option<String>,
}

/// A scope as given: exactly one of the three must be set.
#[derive(Debug, Default, Clone)]
pub struct ScopeDraft {
    /// The tenant's own licenses, at most 1000.
    pub license_ids: Option<Vec<Uuid>>,
    /// Licenses carrying any of these tags, at most 1000.
    pub tags: Option<Vec<String>>,
    /// `true`: every license of the tenant.
    pub all: Option<bool>,
}

/// The licenses a window mutes, in the request's own shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ScopeView {
    Licenses {
        license_ids: Vec<Uuid>,
    },
    /// Licenses carrying any of these tags.
    Tags {
        tags: Vec<String>,
    },
    /// Every license of the tenant.
    All {
        all: bool,
    },
}

impl From<Scope> for ScopeView {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::All => Self::All { all: true },
            Scope::Licenses(license_ids) => Self::Licenses { license_ids },
            Scope::Tags(tags) => Self::Tags { tags },
        }
    }
}

/// One occurrence of a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Occurrence {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// A maintenance window as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WindowView {
    pub id: Uuid,
    #[schema(example = "Sunday patching")]
    pub name: String,
    pub scope: ScopeView,
    /// A one-off window's start, or a recurring window's DTSTART.
    pub starts_at: DateTime<Utc>,
    /// A one-off window's end; `null` when recurring.
    pub ends_at: Option<DateTime<Utc>>,
    /// The recurrence as stored (normalised, without `RRULE:`); `null` when one-off.
    #[schema(example = "FREQ=WEEKLY;BYHOUR=2;BYMINUTE=0;BYSECOND=0;BYDAY=SU")]
    pub rrule: Option<String>,
    /// Each occurrence's length; `null` when one-off.
    #[schema(example = 7200)]
    pub duration_seconds: Option<i32>,
    /// The time zone the rule is read in; `null` when one-off.
    #[schema(example = "Europe/Berlin")]
    pub timezone: Option<String>,
    /// An occurrence is in force now.
    pub active: bool,
    /// The next occurrences that have not ended (the one in force first), at most 5.
    pub next_occurrences: Vec<Occurrence>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The stored row as the API shows it at `now`.
pub fn view(row: WindowRow, now: DateTime<Utc>) -> WindowView {
    let (active, next_occurrences) = match row.to_window() {
        Some(w) => (
            is_active(&w.schedule, now),
            w.schedule
                .upcoming(now, PREVIEW_OCCURRENCES)
                .into_iter()
                .map(|(starts_at, ends_at)| Occurrence { starts_at, ends_at })
                .collect(),
        ),
        // A row that no longer parses mutes nothing (see `WindowRow::to_window`).
        None => (false, Vec::new()),
    };
    let recurring = row.rrule.is_some();
    WindowView {
        id: row.id,
        scope: row.scope().into(),
        name: row.name,
        starts_at: row.starts_at,
        ends_at: row.ends_at,
        rrule: row.rrule,
        duration_seconds: row.duration_seconds,
        timezone: recurring.then_some(row.timezone),
        active,
        next_occurrences,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Whether an occurrence of `schedule` is in force at `now` (start inclusive, end exclusive,
/// like `quiet::quiet_at`).
pub fn is_active(schedule: &Schedule, now: DateTime<Utc>) -> bool {
    !schedule
        .occurrences(now, now + Duration::nanoseconds(1))
        .is_empty()
}

/// One page of the tenant's windows in creation order, and the next page's cursor.
pub async fn list_windows(
    state: &AppState,
    tenant_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> AppResult<(Vec<WindowView>, Option<String>)> {
    let now = state.clock.now();
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let rows = store::list::<WindowRow>(&mut tx, tenant_id, after, limit).await?;
    tx.commit().await?;
    let (rows, next) = pagination::page(rows, limit, "id", |w| (String::new(), w.id));
    Ok((rows.into_iter().map(|r| view(r, now)).collect(), next))
}

/// One window of the tenant (404 for another tenant's).
pub async fn get_window(state: &AppState, tenant_id: Uuid, id: Uuid) -> AppResult<WindowView> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let row = store::get::<WindowRow>(&mut tx, tenant_id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok(view(row, state.clock.now()))
}

/// Creates a window from a draft with every field of one schedule form (see [`WindowDraft`]).
pub async fn create_window(
    state: &AppState,
    tenant_id: Uuid,
    draft: &WindowDraft,
) -> AppResult<WindowView> {
    let now = state.clock.now();
    let fields = check_window(draft, None, now)?;
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    check_licenses(&mut tx, tenant_id, draft).await?;
    let row = windows::insert(&mut tx, tenant_id, &fields).await?;
    windows::recheck(&mut tx, tenant_id, None, now).await?;
    tx.commit().await?;
    Ok(view(row, now))
}

/// Changes the fields the draft gives; the others keep their stored values. Giving `ends_at`
/// makes the window one-off, giving any of `rrule`, `duration_seconds` and `timezone` makes it
/// recurring (the missing ones must then be stored already).
pub async fn update_window(
    state: &AppState,
    tenant_id: Uuid,
    id: Uuid,
    draft: &WindowDraft,
) -> AppResult<WindowView> {
    let now = state.clock.now();
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let stored = store::get::<WindowRow>(&mut tx, tenant_id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let fields = check_window(draft, Some(&stored), now)?;
    check_licenses(&mut tx, tenant_id, draft).await?;
    let row = windows::update(&mut tx, tenant_id, id, &fields)
        .await?
        .ok_or(AppError::NotFound)?;
    windows::recheck(&mut tx, tenant_id, None, now).await?;
    tx.commit().await?;
    Ok(view(row, now))
}

/// Deletes a window (404 for another tenant's).
pub async fn delete_window(state: &AppState, tenant_id: Uuid, id: Uuid) -> AppResult<()> {
    let now = state.clock.now();
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    if !store::delete::<WindowRow>(&mut tx, tenant_id, id).await? {
        return Err(AppError::NotFound);
    }
    windows::recheck(&mut tx, tenant_id, None, now).await?;
    tx.commit().await?;
    Ok(())
}

/// The next occurrences (at most [`PREVIEW_OCCURRENCES`]) of the window a draft for a create
/// would make, without saving anything: the UI's preview. The problems are those of
/// [`check_window`]; the license ids of the scope are not looked up.
pub fn preview(
    draft: &WindowDraft,
    now: DateTime<Utc>,
) -> Result<Vec<Occurrence>, Vec<FieldError>> {
    let f = check_window(draft, None, now)?;
    let schedule = match (f.rrule, f.ends_at, f.duration_seconds) {
        (Some(rule), _, Some(seconds)) => {
            let tz = quiet::parse_timezone(&f.timezone)
                .map_err(|e| vec![FieldError::new("/timezone", e)])?;
            let r = Recurrence::parse(&rule, f.starts_at, i64::from(seconds), tz)
                .map_err(|e| vec![FieldError::new("/rrule", e.to_string())])?;
            Schedule::Recurring(Box::new(r))
        }
        (None, Some(ends_at), _) => Schedule::OneOff {
            starts_at: f.starts_at,
            ends_at,
        },
        _ => return Err(vec![FieldError::new("", "the window is incomplete")]),
    };
    Ok(schedule
        .upcoming(now, PREVIEW_OCCURRENCES)
        .into_iter()
        .map(|(starts_at, ends_at)| Occurrence { starts_at, ends_at })
        .collect())
}

/// Every license id the draft's scope lists must be one of the tenant's licenses (another
/// tenant's id is as unknown as a made-up one); a problem names the index in the request.
async fn check_licenses(
    tx: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    draft: &WindowDraft,
) -> AppResult<()> {
    let Some(ids) = draft.scope.as_ref().and_then(|s| s.license_ids.as_deref()) else {
        return Ok(());
    };
    let known = existing_ids(tx, tenant_id, ids).await?;
    let problems: Vec<FieldError> = ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !known.contains(id))
        .map(|(i, id)| {
            FieldError::new(
                format!("/scope/license_ids/{i}"),
                format!("{id} is not a license of this tenant"),
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AppError::Invalid(problems))
    }
}

/// The start of `now`'s day in `tz`: a recurring window's default DTSTART, so that a rule
/// without BYMINUTE or BYSECOND means minute and second 0. (Where midnight does not exist, the
/// first moment of the day after the gap.)
pub fn start_of_day(now: DateTime<Utc>, tz: chrono_tz::Tz) -> DateTime<Utc> {
    let midnight = now
        .with_timezone(&tz)
        .date_naive()
        .and_time(chrono::NaiveTime::MIN);
    (0..=3)
        .find_map(|h| {
            tz.from_local_datetime(&(midnight + Duration::hours(h)))
                .earliest()
        })
        .map_or(now, |t| t.with_timezone(&Utc))
}

/// Checks a draft against the stored window (`None` for a create): the fields to store, or
/// every problem with its pointer. The license ids of the scope are checked against the
/// database by the caller.
pub fn check_window(
    draft: &WindowDraft,
    stored: Option<&WindowRow>,
    now: DateTime<Utc>,
) -> Result<WindowFields, Vec<FieldError>> {
    let mut v = Validation::new();
    let name = match (&draft.name, stored) {
        (Some(n), _) => v
            .check("/name", n.as_str(), DisplayName::parse)
            .map(|n| n.as_str().to_owned()),
        (None, Some(s)) => Some(s.name.clone()),
        (None, None) => {
            v.push("/name", "is required");
            None
        }
    };
    let scope = match (&draft.scope, stored) {
        (Some(scope), _) => check_scope(&mut v, scope),
        (None, Some(s)) => Some(s.scope()),
        (None, None) => {
            v.push(
                "/scope",
                r#"is required: {"license_ids": [...]}, {"tags": [...]} or {"all": true}"#,
            );
            None
        }
    };
    let schedule = check_schedule(&mut v, draft, stored, now);
    v.finish()?;
    match (name, scope, schedule) {
        (Some(name), Some(scope), Some(s)) => Ok(WindowFields {
            name,
            scope,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            rrule: s.rrule,
            duration_seconds: s.duration_seconds,
            timezone: s.timezone,
        }),
        _ => Err(vec![FieldError::new("", "the window is incomplete")]),
    }
}

fn check_scope(v: &mut Validation, s: &ScopeDraft) -> Option<Scope> {
    let given = [s.license_ids.is_some(), s.tags.is_some(), s.all.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given != 1 {
        v.push(
            "/scope",
            "give exactly one of license_ids, tags and all (true)",
        );
        return None;
    }
    let bounded = |v: &mut Validation, pointer: &str, n: usize, what: &str| {
        if n == 0 {
            v.push(pointer, format!("must list at least one {what}"));
            false
        } else if n > MAX_SCOPE_ITEMS {
            v.push(
                pointer,
                format!("may list at most {MAX_SCOPE_ITEMS} {what}s"),
            );
            false
        } else {
            true
        }
    };
    if let Some(all) = s.all {
        if !all {
            v.push(
                "/scope/all",
                "must be true (scope by license_ids or tags otherwise)",
            );
            return None;
        }
        return Some(Scope::All);
    }
    if let Some(ids) = &s.license_ids {
        if !bounded(v, "/scope/license_ids", ids.len(), "license") {
            return None;
        }
        // In the order given, without duplicates.
        let mut unique: Vec<Uuid> = Vec::with_capacity(ids.len());
        for id in ids {
            if !unique.contains(id) {
                unique.push(*id);
            }
        }
        return Some(Scope::Licenses(unique));
    }
    let tags = s.tags.as_deref().unwrap_or_default();
    if !bounded(v, "/scope/tags", tags.len(), "tag") {
        return None;
    }
    let mut ok = true;
    for (i, tag) in tags.iter().enumerate() {
        if let Err(e) = quiet::check_tag(tag) {
            v.push(&format!("/scope/tags/{i}"), e);
            ok = false;
        }
    }
    let mut tags = tags.to_vec();
    tags.sort();
    tags.dedup();
    ok.then_some(Scope::Tags(tags))
}

/// The schedule columns of a window.
struct ScheduleFields {
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    rrule: Option<String>,
    duration_seconds: Option<i32>,
    timezone: String,
}

const FORMS: &str = "a window is one-off (starts_at, ends_at) or recurring (rrule, duration_seconds, timezone and an optional starts_at)";

fn check_schedule(
    v: &mut Validation,
    d: &WindowDraft,
    stored: Option<&WindowRow>,
    now: DateTime<Utc>,
) -> Option<ScheduleFields> {
    let recurring_given: Vec<&str> = [
        ("rrule", d.rrule.is_some()),
        ("duration_seconds", d.duration_seconds.is_some()),
        ("timezone", d.timezone.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.then_some(name))
    .collect();
    if d.ends_at.is_some() && !recurring_given.is_empty() {
        for name in recurring_given {
            v.push(
                &format!("/{name}"),
                format!("cannot be combined with ends_at: {FORMS}"),
            );
        }
        return None;
    }
    let recurring = if d.ends_at.is_some() {
        false
    } else if !recurring_given.is_empty() {
        true
    } else {
        stored.is_some_and(|s| s.rrule.is_some())
    };
    if recurring {
        check_recurring(v, d, stored.filter(|s| s.rrule.is_some()), now)
    } else {
        check_one_off(v, d, stored.filter(|s| s.rrule.is_none()))
    }
}

fn check_one_off(
    v: &mut Validation,
    d: &WindowDraft,
    stored: Option<&WindowRow>,
) -> Option<ScheduleFields> {
    let starts_at = d.starts_at.or(stored.map(|s| s.starts_at));
    let ends_at = d.ends_at.or(stored.and_then(|s| s.ends_at));
    if starts_at.is_none() {
        v.push("/starts_at", format!("is required: {FORMS}"));
    }
    if ends_at.is_none() {
        v.push("/ends_at", format!("is required: {FORMS}"));
    }
    let (starts_at, ends_at) = (starts_at?, ends_at?);
    if ends_at <= starts_at {
        v.push("/ends_at", "must be after starts_at");
        return None;
    }
    if ends_at - starts_at > Duration::seconds(MAX_DURATION_SECONDS) {
        v.push("/ends_at", "must be at most 31 days after starts_at");
        return None;
    }
    Some(ScheduleFields {
        starts_at,
        ends_at: Some(ends_at),
        rrule: None,
        duration_seconds: None,
        timezone: "UTC".to_owned(),
    })
}

fn check_recurring(
    v: &mut Validation,
    d: &WindowDraft,
    stored: Option<&WindowRow>,
    now: DateTime<Utc>,
) -> Option<ScheduleFields> {
    let required = |v: &mut Validation, name: &str| {
        v.push(
            &format!("/{name}"),
            "is required for a recurring window (with rrule, duration_seconds and timezone)",
        );
    };
    let rule = d.rrule.clone().or(stored.and_then(|s| s.rrule.clone()));
    let duration = d
        .duration_seconds
        .or(stored.and_then(|s| s.duration_seconds.map(i64::from)));
    let tz_name = d.timezone.clone().or(stored.map(|s| s.timezone.clone()));
    if rule.is_none() {
        required(v, "rrule");
    }
    if duration.is_none() {
        required(v, "duration_seconds");
    }
    let tz = match &tz_name {
        Some(name) => v.check("/timezone", name.as_str(), quiet::parse_timezone),
        None => {
            required(v, "timezone");
            None
        }
    };
    let duration = duration.and_then(|s| {
        v.check("/duration_seconds", s, |s| {
            i32::try_from(s)
                .ok()
                .filter(|s| (1..=MAX_DURATION_SECONDS).contains(&i64::from(*s)))
                .ok_or_else(|| {
                    format!("must be from 1 to {MAX_DURATION_SECONDS} seconds (31 days)")
                })
        })
    });
    let (rule, duration, tz) = (rule?, duration?, tz?);
    let starts_at = d
        .starts_at
        .or(stored.map(|s| s.starts_at))
        .unwrap_or_else(|| start_of_day(now, tz));
    let recurrence = match Recurrence::parse(&rule, starts_at, i64::from(duration), tz) {
        Ok(r) => r,
        Err(RecurrenceError::Rule(e)) => {
            v.push("/rrule", e);
            return None;
        }
        Err(RecurrenceError::Duration(e)) => {
            v.push("/duration_seconds", e);
            return None;
        }
    };
    let rrule = recurrence.rule().to_owned();
    let schedule = Schedule::Recurring(Box::new(recurrence));
    if schedule.upcoming(DateTime::<Utc>::MIN_UTC, 1).is_empty() {
        v.push("/rrule", "has no occurrence from starts_at on");
        return None;
    }
    Some(ScheduleFields {
        starts_at,
        ends_at: None,
        rrule: Some(rrule),
        duration_seconds: Some(duration),
        timezone: tz.name().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Berlin;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn the_default_dtstart_is_local_midnight() {
        // 23:30 UTC on March 27 is already March 28 in Berlin (CET, +1).
        assert_eq!(
            start_of_day(utc(2027, 3, 27, 23, 30), Berlin),
            utc(2027, 3, 27, 23, 0)
        );
        assert_eq!(
            start_of_day(utc(2027, 7, 1, 12, 0), Berlin),
            utc(2027, 6, 30, 22, 0)
        );
        // Santiago's clocks jumped from 00:00 to 01:00 on 2024-09-08: the day starts at 01:00.
        let santiago = chrono_tz::America::Santiago;
        assert_eq!(
            start_of_day(utc(2024, 9, 8, 12, 0), santiago),
            utc(2024, 9, 8, 4, 0)
        );
    }

    #[test]
    fn a_draft_is_one_form_or_the_other() {
        let now = utc(2027, 1, 1, 0, 0);
        let pointers = |d: &WindowDraft| -> Vec<String> {
            check_window(d, None, now)
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.pointer)
                .collect()
        };
        let base = WindowDraft {
            name: Some("n".into()),
            scope: Some(ScopeDraft {
                all: Some(true),
                ..ScopeDraft::default()
            }),
            ..WindowDraft::default()
        };
        assert_eq!(pointers(&base), ["/starts_at", "/ends_at"]);
        let mixed = WindowDraft {
            ends_at: Some(now),
            rrule: Some("FREQ=DAILY".into()),
            ..base.clone()
        };
        assert_eq!(pointers(&mixed), ["/rrule"]);
        let partial = WindowDraft {
            rrule: Some("FREQ=DAILY".into()),
            ..base.clone()
        };
        assert_eq!(pointers(&partial), ["/duration_seconds", "/timezone"]);
        let daily = WindowDraft {
            rrule: Some("FREQ=DAILY;BYHOUR=2".into()),
            duration_seconds: Some(3600),
            timezone: Some("Europe/Berlin".into()),
            ..base
        };
        let fields = check_window(&daily, None, now).unwrap();
        // Midnight in Berlin, so BYMINUTE and BYSECOND are 0.
        assert_eq!(fields.starts_at, utc(2026, 12, 31, 23, 0));
        assert!(fields.rrule.unwrap().contains("BYMINUTE=0"));
    }
}
