//! The Maintenance windows page (SPEC section 5b): the tenant's windows with their schedule in
//! words, whether one is in force and its next occurrence; a form that creates a window, with
//! a preview of its next five occurrences that saves nothing; a delete button per window.
//!
//! The form's fields become an `app::windows::WindowDraft`, which `app::windows` checks exactly as
//! it checks the JSON API's body; its problems (JSON pointers) are shown next to the form
//! field they name. Times are typed as local times: a one-off window's in the tenant's time
//! zone, a recurring window's first day in the window's own time zone.

use super::{
    form::FieldErrors,
    page::{CsrfForm, Nav, failure, guard, local, not_found},
    session::UiSession,
};
use crate::{
    app::{
        self, AppError, AppState, pagination,
        windows::{Occurrence, ScopeDraft, ScopeView, WindowDraft, WindowView},
    },
    domain::{FieldError, Role, Validation, quiet, status::human_duration},
};
use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

/// Windows per page of the list.
const PAGE_SIZE: i64 = 100;

pub struct WindowItem {
    pub id: Uuid,
    pub name: String,
    pub scope: String,
    pub schedule: String,
    pub active: bool,
    /// When the occurrence in force ends, if one is.
    pub active_until: Option<String>,
    pub next: String,
}

pub struct Preview {
    /// The time zone the occurrences are shown in.
    pub timezone: String,
    pub occurrences: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "maintenance.html")]
pub struct MaintenancePage {
    pub nav: Option<Nav>,
    pub tenant_tz: String,
    pub windows: Vec<WindowItem>,
    pub next_url: Option<String>,
    pub first_url: Option<String>,
    /// The create form, as typed.
    pub f: WindowForm,
    pub errors: FieldErrors,
    pub preview: Option<Preview>,
}

/// The create form. Every field is text as typed, so that the form shows again as it was.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WindowForm {
    /// Missing counts as wrong (403), not as a malformed form.
    pub csrf: String,
    /// `preview` or `create` (the button pressed).
    pub action: String,
    pub name: String,
    /// `all`, `tags` or `licenses`.
    pub scope: String,
    /// Comma-separated.
    pub tags: String,
    /// Comma-separated license keys.
    pub license_keys: String,
    /// `one_off` or `recurring`.
    pub kind: String,
    /// `datetime-local` values in the tenant's time zone.
    pub starts_at: String,
    pub ends_at: String,
    pub rrule: String,
    pub duration_minutes: String,
    pub timezone: String,
    /// A recurring window's first day (`datetime-local`, in `timezone`), optional.
    pub dtstart: String,
}

impl WindowForm {
    /// An empty form: every license, one-off from now for an hour.
    fn blank(now: DateTime<Utc>, tz: chrono_tz::Tz) -> Self {
        let typed = |t: DateTime<Utc>| t.with_timezone(&tz).format(INPUT_FORMAT).to_string();
        Self {
            scope: "all".to_owned(),
            kind: "one_off".to_owned(),
            starts_at: typed(now),
            ends_at: typed(now + Duration::hours(1)),
            duration_minutes: "120".to_owned(),
            timezone: tz.name().to_owned(),
            ..Self::default()
        }
    }

    fn recurring(&self) -> bool {
        self.kind == "recurring"
    }
}

/// How a `datetime-local` input shows a time (browsers send it back with or without seconds).
const INPUT_FORMAT: &str = "%Y-%m-%dT%H:%M";

/// A `datetime-local` value read in `tz`. A local time the clocks skip is refused; one they
/// pass twice means the first.
fn parse_local(raw: &str, tz: chrono_tz::Tz) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    let naive = NaiveDateTime::parse_from_str(raw, INPUT_FORMAT)
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| format!("'{raw}' is not a date and time such as 2026-12-06T02:00"))?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{raw} does not exist in {tz} (the clocks skip it)"))
}

/// A comma-separated list, trimmed, without empty items.
fn list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The form field that shows the problem at a draft's JSON pointer.
fn field_of(pointer: &str, recurring: bool) -> &'static str {
    match pointer {
        "/name" => "name",
        "/starts_at" if recurring => "dtstart",
        "/starts_at" => "starts_at",
        "/ends_at" => "ends_at",
        "/rrule" => "rrule",
        "/duration_seconds" => "duration_minutes",
        "/timezone" => "timezone",
        p if p.starts_with("/scope/tags") => "tags",
        p if p.starts_with("/scope/license_ids") => "license_keys",
        p if p.starts_with("/scope") => "scope",
        _ => "form",
    }
}

/// The form's wording of a draft's problem (the API's names its JSON fields).
fn wording(field: &str, message: &str) -> String {
    match field {
        "duration_minutes" => format!(
            "must be from 1 to {} minutes (31 days)",
            quiet::MAX_DURATION_SECONDS / 60
        ),
        "license_keys" if message.contains("is not a license of this tenant") => {
            "a license listed here no longer exists".to_owned()
        }
        _ => message.replace("starts_at", "the start"),
    }
}

/// Notes the draft's problems next to their fields; a field keeps a message noted earlier.
fn note_problems(errors: &mut FieldErrors, problems: Vec<FieldError>, recurring: bool) {
    for p in problems {
        let field = field_of(&p.pointer, recurring);
        errors.note(field, wording(field, &p.message));
    }
}

/// The form as a draft (every field it could read) and the message of each field it could not.
/// License keys are looked up in the tenant; everything else is checked by
/// `app::windows::check_window`, as for the JSON API.
async fn draft_of(
    state: &AppState,
    s: &UiSession,
    f: &WindowForm,
) -> Result<(WindowDraft, FieldErrors), Response> {
    let now = state.clock.now();
    let mut errors = FieldErrors::default();
    let recurring = match f.kind.as_str() {
        "one_off" => false,
        "recurring" => true,
        _ => {
            errors.insert("kind", "choose one-off or recurring");
            false
        }
    };
    let mut scope_ok = true;
    let scope = match f.scope.as_str() {
        "all" => Some(ScopeDraft {
            all: Some(true),
            ..ScopeDraft::default()
        }),
        "tags" => {
            let tags = list(&f.tags);
            if tags.is_empty() {
                errors.insert("tags", "name at least one tag");
                scope_ok = false;
            }
            Some(ScopeDraft {
                tags: Some(tags),
                ..ScopeDraft::default()
            })
        }
        "licenses" => {
            let keys = list(&f.license_keys);
            if keys.is_empty() {
                errors.insert("license_keys", "name at least one license key");
                scope_ok = false;
            }
            let found = match app::licenses::ids_by_keys(state, s.tenant_id, &keys).await {
                Ok(found) => found,
                Err(e) => return Err(failure(e)),
            };
            let unknown: Vec<&str> = keys
                .iter()
                .filter(|k| !found.contains_key(*k))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                errors.insert(
                    "license_keys",
                    format!("no license has the key {}", unknown.join(", ")),
                );
                scope_ok = false;
            }
            Some(ScopeDraft {
                license_ids: Some(keys.iter().filter_map(|k| found.get(k)).copied().collect()),
                ..ScopeDraft::default()
            })
        }
        _ => {
            errors.insert("scope", "choose which licenses the window mutes");
            scope_ok = false;
            None
        }
    };
    let mut draft = WindowDraft {
        name: Some(f.name.trim().to_owned()),
        // A scope the form already refused is not checked again (its message is enough).
        scope: if scope_ok {
            scope
        } else {
            Some(ScopeDraft {
                all: Some(true),
                ..ScopeDraft::default()
            })
        },
        ..WindowDraft::default()
    };
    let mut v = Validation::new();
    if recurring {
        draft.rrule = Some(f.rrule.trim().to_owned());
        match f.duration_minutes.trim().parse::<i64>() {
            Ok(m) => draft.duration_seconds = Some(m.saturating_mul(60)),
            Err(_) => {
                errors.insert("duration_minutes", "must be a whole number of minutes");
            }
        }
        let tz = v.check("/timezone", f.timezone.trim(), quiet::parse_timezone);
        draft.timezone = Some(f.timezone.trim().to_owned());
        if let (Some(tz), false) = (tz, f.dtstart.trim().is_empty()) {
            match parse_local(&f.dtstart, tz) {
                Ok(t) => draft.starts_at = Some(t),
                Err(e) => errors.insert("dtstart", e),
            }
        }
        if f.rrule.trim().is_empty() {
            errors.insert("rrule", "is required for a recurring window");
        }
    } else {
        for (field, raw) in [("starts_at", &f.starts_at), ("ends_at", &f.ends_at)] {
            if raw.trim().is_empty() {
                errors.insert(field, "is required for a one-off window");
                continue;
            }
            match parse_local(raw, s.tz) {
                Ok(t) if field == "starts_at" => draft.starts_at = Some(t),
                Ok(t) => draft.ends_at = Some(t),
                Err(e) => errors.insert(field, e),
            }
        }
    }
    if let Err(problems) = v.finish() {
        note_problems(&mut errors, problems, recurring);
    }
    if let Err(problems) = app::windows::check_window(&draft, None, now) {
        note_problems(&mut errors, problems, recurring);
    }
    Ok((draft, errors))
}

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
}

pub async fn maintenance_page(
    State(state): State<AppState>,
    s: UiSession,
    Query(q): Query<ListQuery>,
) -> Response {
    let blank = WindowForm::blank(state.clock.now(), s.tz);
    render(
        &state,
        &s,
        q.cursor.as_deref(),
        StatusCode::OK,
        blank,
        FieldErrors::default(),
        None,
    )
    .await
}

/// The list (one page from `cursor`) with the create form below it.
async fn render(
    state: &AppState,
    s: &UiSession,
    cursor: Option<&str>,
    status: StatusCode,
    f: WindowForm,
    errors: FieldErrors,
    preview: Option<Preview>,
) -> Response {
    let now = state.clock.now();
    // A cursor that does not parse shows the first page.
    let after = pagination::parse_cursor(&mut Validation::new(), cursor, "id").map(|c| c.id);
    let (windows, next) =
        match app::windows::list_windows(state, s.tenant_id, after, PAGE_SIZE).await {
            Ok(page) => page,
            Err(e) => return failure(e),
        };
    let ids: Vec<Uuid> = windows
        .iter()
        .flat_map(|w| match &w.scope {
            ScopeView::Licenses { license_ids } => license_ids.clone(),
            _ => Vec::new(),
        })
        .collect();
    let keys = match app::licenses::keys_by_ids(state, s.tenant_id, &ids).await {
        Ok(keys) => keys,
        Err(e) => return failure(e),
    };
    let page = MaintenancePage {
        nav: Some(Nav::new(s, "maintenance")),
        tenant_tz: s.tz.name().to_owned(),
        windows: windows
            .into_iter()
            .map(|w| item(w, &keys, s.tz, now))
            .collect(),
        next_url: next.map(|c| format!("/maintenance-windows?cursor={c}")),
        first_url: after.map(|_| "/maintenance-windows".to_owned()),
        f,
        errors,
        preview,
    };
    (status, page).into_response()
}

/// A window as a row of the list.
fn item(
    w: WindowView,
    keys: &HashMap<Uuid, String>,
    tenant_tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> WindowItem {
    let tz = w
        .timezone
        .as_deref()
        .and_then(|t| quiet::parse_timezone(t).ok())
        .unwrap_or(tenant_tz);
    let scope = match &w.scope {
        ScopeView::All { .. } => "all licenses".to_owned(),
        ScopeView::Tags { tags } => format!("tagged {}", tags.join(" or ")),
        ScopeView::Licenses { license_ids } => {
            let named: Vec<&str> = license_ids
                .iter()
                .filter_map(|id| keys.get(id).map(String::as_str))
                .collect();
            let gone = license_ids.len() - named.len();
            let mut text = named.join(", ");
            if gone > 0 {
                text.push_str(&format!(
                    "{}{gone} deleted license(s)",
                    if named.is_empty() { "" } else { " and " }
                ));
            }
            text
        }
    };
    let schedule = match (&w.rrule, w.ends_at, w.duration_seconds) {
        (Some(rule), _, Some(seconds)) => format!(
            "{rule}, {} each, in {}, from {}",
            human_duration(i64::from(seconds)),
            tz.name(),
            w.starts_at.with_timezone(&tz).format("%Y-%m-%d %H:%M")
        ),
        (_, Some(ends_at), _) => format!(
            "once: {}",
            span(
                &Occurrence {
                    starts_at: w.starts_at,
                    ends_at
                },
                tenant_tz
            )
        ),
        _ => "unreadable (mutes nothing)".to_owned(),
    };
    let current = w.next_occurrences.iter().find(|o| o.starts_at <= now);
    WindowItem {
        id: w.id,
        name: w.name,
        scope,
        schedule,
        active: w.active,
        active_until: w
            .active
            .then(|| current.map(|o| local(o.ends_at, tz)))
            .flatten(),
        next: w
            .next_occurrences
            .iter()
            .find(|o| o.starts_at > now)
            .map_or_else(|| "none".to_owned(), |o| span(o, tz)),
    }
}

/// An occurrence in words in `tz`: "Sun 2026-12-06 02:00 – 04:00 CET", or with both dates when
/// it ends on another day.
fn span(o: &Occurrence, tz: chrono_tz::Tz) -> String {
    let (start, end) = (o.starts_at.with_timezone(&tz), o.ends_at.with_timezone(&tz));
    let from = start.format("%a %Y-%m-%d %H:%M");
    if start.date_naive() == end.date_naive() && start.offset() == end.offset() {
        format!("{from} – {} {}", end.format("%H:%M"), end.format("%Z"))
    } else {
        format!(
            "{from} {} – {}",
            start.format("%Z"),
            end.format("%a %Y-%m-%d %H:%M %Z")
        )
    }
}

/// Preview or create, from the same form.
pub async fn create_window(
    State(state): State<AppState>,
    s: UiSession,
    Form(f): Form<WindowForm>,
) -> Response {
    if let Err(page) = guard(&s, &f.csrf, Role::Admin) {
        return page;
    }
    let (draft, mut errors) = match draft_of(&state, &s, &f).await {
        Ok(d) => d,
        Err(page) => return page,
    };
    if !errors.is_empty() {
        return render(
            &state,
            &s,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            f,
            errors,
            None,
        )
        .await;
    }
    if f.action == "preview" {
        let now = state.clock.now();
        let preview = match app::windows::preview(&draft, now) {
            Ok(occurrences) => {
                // A recurring window's times read best in its own zone, a one-off's in the
                // tenant's (the one its start and end were typed in).
                let tz = draft
                    .timezone
                    .as_deref()
                    .and_then(|t| quiet::parse_timezone(t).ok())
                    .filter(|_| f.recurring())
                    .unwrap_or(s.tz);
                Preview {
                    timezone: tz.name().to_owned(),
                    occurrences: occurrences.iter().map(|o| span(o, tz)).collect(),
                }
            }
            Err(problems) => {
                note_problems(&mut errors, problems, f.recurring());
                return render(
                    &state,
                    &s,
                    None,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    f,
                    errors,
                    None,
                )
                .await;
            }
        };
        return render(&state, &s, None, StatusCode::OK, f, errors, Some(preview)).await;
    }
    match app::windows::create_window(&state, s.tenant_id, &draft).await {
        Ok(_) => Redirect::to("/maintenance-windows").into_response(),
        Err(AppError::Invalid(problems)) => {
            note_problems(&mut errors, problems, f.recurring());
            render(
                &state,
                &s,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
                f,
                errors,
                None,
            )
            .await
        }
        Err(e) => failure(e),
    }
}

pub async fn delete_window(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(page) = guard(&s, &f.csrf, Role::Admin) {
        return page;
    }
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&s);
    };
    match app::windows::delete_window(&state, s.tenant_id, id).await {
        Ok(()) => Redirect::to("/maintenance-windows").into_response(),
        Err(AppError::NotFound) => not_found(&s),
        Err(e) => failure(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Berlin;

    #[test]
    fn a_typed_local_time_is_read_in_the_zone_and_a_skipped_one_is_refused() {
        assert_eq!(
            parse_local("2027-01-10T02:30", Berlin),
            Ok(Utc.with_ymd_and_hms(2027, 1, 10, 1, 30, 0).unwrap())
        );
        assert_eq!(
            parse_local("2027-07-10T02:30:15", Berlin),
            Ok(Utc.with_ymd_and_hms(2027, 7, 10, 0, 30, 15).unwrap())
        );
        // 02:30 on the spring-forward Sunday does not happen in Berlin.
        assert!(
            parse_local("2027-03-28T02:30", Berlin)
                .unwrap_err()
                .contains("skip")
        );
        assert!(parse_local("tomorrow", Berlin).is_err());
    }

    #[test]
    fn an_occurrence_reads_with_one_date_unless_it_crosses_midnight() {
        let at = |d, h| Utc.with_ymd_and_hms(2027, 1, d, h, 0, 0).unwrap();
        let o = |s, e| Occurrence {
            starts_at: s,
            ends_at: e,
        };
        assert_eq!(
            span(&o(at(10, 1), at(10, 3)), Berlin),
            "Sun 2027-01-10 02:00 – 04:00 CET"
        );
        assert_eq!(
            span(&o(at(10, 22), at(11, 2)), Berlin),
            "Sun 2027-01-10 23:00 CET – Mon 2027-01-11 03:00 CET"
        );
    }

    #[test]
    fn a_drafts_problems_land_next_to_the_form_field_they_name() {
        assert_eq!(field_of("/starts_at", false), "starts_at");
        assert_eq!(field_of("/starts_at", true), "dtstart");
        assert_eq!(field_of("/scope/tags/3", false), "tags");
        assert_eq!(field_of("/scope/license_ids/0", false), "license_keys");
        assert_eq!(field_of("/scope", false), "scope");
        assert_eq!(field_of("/duration_seconds", true), "duration_minutes");
        assert_eq!(field_of("", true), "form");
        assert_eq!(
            wording("ends_at", "must be after starts_at"),
            "must be after the start"
        );
    }
}
