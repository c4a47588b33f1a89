//! Licenses (SPEC sections 5b and 6): one parser of the list's query for the JSON API and the
//! Monitoring page, one read of a page with its next cursor, and creating and changing a
//! license (with its tags).

use super::{
    AppError, AppResult, AppState, pagination,
    quiet::{QuietCalendar, snooze_of},
};
use crate::{
    db,
    domain::{
        FieldError, LicenseKind, Validation,
        quiet::{self, MAX_TAGS},
        status::LicenseStatus,
    },
    store::{
        licenses::{self, LicensePatch, NewLicense},
        status::{self, License, ListQuery, Sort},
        windows,
    },
};
use std::collections::HashMap;
use uuid::Uuid;

/// The longest search text.
pub const MAX_TEXT_CHARS: usize = 200;

/// The list's query as given (query-string values, not yet checked).
#[derive(Debug, Default, Clone)]
pub struct ListParams<'a> {
    pub status: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub q: Option<&'a str>,
    pub sort: Option<&'a str>,
    pub limit: Option<&'a str>,
    pub cursor: Option<&'a str>,
    /// Every `tag` given (`?tag=a&tag=b`): the license must carry all of them.
    pub tags: Vec<&'a str>,
    /// `true` or `false`: only licenses that are quiet now, or only those that are not.
    pub quiet: Option<&'a str>,
}

/// Parses the list query. Every invalid parameter is reported (pointer `/query/<name>`) and
/// left at its default in the returned query, so that a page can still show something: the
/// JSON API refuses the request when there is any problem, the Monitoring page shows it.
pub fn parse_list_query(p: &ListParams<'_>, default_sort: Sort) -> (ListQuery, Vec<FieldError>) {
    let mut v = Validation::new();
    let status_filter = p
        .status
        .and_then(|s| v.check("/query/status", s, LicenseStatus::parse));
    let kind = p
        .kind
        .and_then(|k| v.check("/query/kind", k, LicenseKind::parse));
    let sort = p
        .sort
        .map_or(Some(default_sort), |s| {
            v.check("/query/sort", s, Sort::parse)
        })
        .unwrap_or(default_sort);
    let limit = pagination::parse_limit(&mut v, p.limit);
    let cursor = pagination::parse_cursor(&mut v, p.cursor, &sort.as_param());
    let text = p.q.map(str::trim).filter(|t| !t.is_empty());
    let text = if text.is_some_and(|t| t.chars().count() > MAX_TEXT_CHARS) {
        v.push(
            "/query/q",
            format!("must be at most {MAX_TEXT_CHARS} characters"),
        );
        None
    } else {
        text
    };
    let mut tags: Vec<String> = Vec::new();
    for tag in &p.tags {
        if let Some(tag) = v.check("/query/tag", *tag, |t| quiet::check_tag(t).map(|()| t)) {
            tags.push(tag.to_owned());
        }
    }
    tags.sort();
    tags.dedup();
    if tags.len() > MAX_TAGS {
        // No license carries more, so no license could match.
        v.push("/query/tag", format!("at most {MAX_TAGS} tags"));
        tags.clear();
    }
    let quiet = p.quiet.and_then(|q| {
        v.check("/query/quiet", q, |q| match q {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("must be 'true' or 'false', not '{q}'")),
        })
    });
    let query = ListQuery {
        status: status_filter,
        kind,
        text: text.map(str::to_owned),
        tags,
        quiet,
        quiet_now: Default::default(),
        sort,
        after: cursor.map(|c| (c.value, c.id)),
        limit,
    };
    (query, v.finish().err().unwrap_or_default())
}

/// Fills the `quiet` field of each license from the calendar.
fn fill_quiet(calendar: &QuietCalendar, licenses: &mut [License]) {
    for l in licenses {
        l.quiet = calendar.quiet(l.id, &l.tags, snooze_of(l.snoozed_at, l.snoozed_until));
    }
}

/// The query with what is quiet now, when it filters by it.
fn with_quiet_now(query: &ListQuery, calendar: &QuietCalendar) -> ListQuery {
    let mut query = query.clone();
    if query.quiet.is_some() {
        query.quiet_now = calendar.in_force();
    }
    query
}

/// One page of the tenant's licenses with their status and `quiet`, and the cursor of the
/// next page. The tenant's windows are read once for the whole page.
pub async fn list(
    state: &AppState,
    tenant_id: Uuid,
    query: &ListQuery,
) -> AppResult<(Vec<License>, Option<String>)> {
    let now = state.clock.now();
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let calendar = QuietCalendar::load(&mut tx, tenant_id, now).await?;
    let query = with_quiet_now(query, &calendar);
    let mut rows = status::list(&mut tx, tenant_id, now, &query).await?;
    tx.commit().await?;
    fill_quiet(&calendar, &mut rows);
    Ok(paged(rows, &query))
}

/// One license with its status and `quiet` (404 if it is not the tenant's).
pub async fn get(state: &AppState, tenant_id: Uuid, id: Uuid) -> AppResult<License> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let license = read(&mut tx, tenant_id, id, state.clock.now()).await?;
    tx.commit().await?;
    Ok(license)
}

async fn read(
    tx: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<License> {
    let mut license = status::get(tx, tenant_id, id, now)
        .await?
        .ok_or(AppError::NotFound)?;
    let calendar = QuietCalendar::load(tx, tenant_id, now).await?;
    fill_quiet(&calendar, std::slice::from_mut(&mut license));
    Ok(license)
}

/// Like [`list`], with the tenant's license count per status from the same evaluation (the
/// Monitoring page's counts always add up to what its rows say).
pub async fn list_with_summary(
    state: &AppState,
    tenant_id: Uuid,
    query: &ListQuery,
) -> AppResult<(Vec<License>, Option<String>, Vec<(LicenseStatus, i64)>)> {
    let o = summarised(state, tenant_id, query, false).await?;
    Ok((o.rows, o.next_cursor, o.summary))
}

/// What the Monitoring page shows: one page, the counts per status and how many licenses are
/// quiet now.
pub struct Overview {
    pub rows: Vec<License>,
    pub next_cursor: Option<String>,
    pub summary: Vec<(LicenseStatus, i64)>,
    /// Licenses in a maintenance window or snoozed now (SPEC section 5b), of the whole tenant.
    pub quiet: i64,
}

/// [`list_with_summary`] and the number of the tenant's licenses quiet now, from one read of
/// the tenant's windows.
pub async fn overview(state: &AppState, tenant_id: Uuid, query: &ListQuery) -> AppResult<Overview> {
    summarised(state, tenant_id, query, true).await
}

async fn summarised(
    state: &AppState,
    tenant_id: Uuid,
    query: &ListQuery,
    count_quiet: bool,
) -> AppResult<Overview> {
    let now = state.clock.now();
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let calendar = QuietCalendar::load(&mut tx, tenant_id, now).await?;
    let query = with_quiet_now(query, &calendar);
    let (mut rows, summary) = status::list_with_summary(&mut tx, tenant_id, now, &query).await?;
    let quiet = if count_quiet {
        status::count_quiet(&mut tx, tenant_id, now, &calendar.in_force()).await?
    } else {
        0
    };
    tx.commit().await?;
    fill_quiet(&calendar, &mut rows);
    let (rows, next_cursor) = paged(rows, &query);
    Ok(Overview {
        rows,
        next_cursor,
        summary,
        quiet,
    })
}

/// The ids of the tenant's licenses with these keys, by key (unknown keys are missing).
pub async fn ids_by_keys(
    state: &AppState,
    tenant_id: Uuid,
    keys: &[String],
) -> AppResult<HashMap<String, Uuid>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let found = licenses::ids_by_keys(&mut tx, tenant_id, keys).await?;
    tx.commit().await?;
    Ok(found.into_iter().collect())
}

/// The keys of the tenant's licenses with these ids, by id (ids of deleted licenses and of
/// other tenants' are missing).
pub async fn keys_by_ids(
    state: &AppState,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> AppResult<HashMap<Uuid, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let found = licenses::keys_by_ids(&mut tx, tenant_id, ids).await?;
    tx.commit().await?;
    Ok(found.into_iter().collect())
}

fn paged(rows: Vec<License>, query: &ListQuery) -> (Vec<License>, Option<String>) {
    let sort = query.sort;
    pagination::page(rows, query.limit, &sort.as_param(), |l| {
        (sort.value_of(l), l.id)
    })
}

/// Checks a license's `tags` field (pointer `pointer`, each tag at `pointer/<index>`): the
/// tags sorted and without duplicates, or `None` with the problems recorded in `v`.
pub fn check_tags(v: &mut Validation, pointer: &str, tags: &[String]) -> Option<Vec<String>> {
    match quiet::parse_tags(tags) {
        Ok(tags) => Some(tags),
        Err(problems) => {
            for (index, message) in problems {
                match index {
                    Some(i) => v.push(&format!("{pointer}/{i}"), message),
                    None => v.push(pointer, message),
                }
            }
            None
        }
    }
}

fn key_taken() -> AppError {
    AppError::Conflict {
        detail: "a license with this key already exists in the tenant".to_owned(),
        pointer: "/key".to_owned(),
    }
}

fn is_duplicate_key(e: &sqlx::Error) -> bool {
    db::violated_constraint(e) == Some("licenses_key_unique")
}

/// Creates a license; a key the tenant already has is a conflict at `/key`.
pub async fn create(state: &AppState, tenant_id: Uuid, new: &NewLicense) -> AppResult<License> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let row = match licenses::insert(&mut tx, tenant_id, new).await {
        Err(e) if is_duplicate_key(&e) => return Err(key_taken()),
        other => other?,
    };
    let license = read(&mut tx, tenant_id, row.id, state.clock.now()).await?;
    tx.commit().await?;
    Ok(license)
}

/// Changes the fields given in `patch` (404 if the license is not the tenant's; a key the
/// tenant already has is a conflict at `/key`). New tags may put the license into a
/// maintenance window or take it out of one, so the sweep looks at it again at once.
pub async fn update(
    state: &AppState,
    tenant_id: Uuid,
    id: Uuid,
    patch: &LicensePatch,
) -> AppResult<License> {
    let now = state.clock.now();
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    match licenses::update(&mut tx, tenant_id, id, patch).await {
        Err(e) if is_duplicate_key(&e) => return Err(key_taken()),
        other => other?.ok_or(AppError::NotFound)?,
    };
    if patch.tags.is_some() {
        windows::recheck(&mut tx, tenant_id, Some(&[id]), now).await?;
    }
    let license = read(&mut tx, tenant_id, id, now).await?;
    tx.commit().await?;
    Ok(license)
}
