//! The license list (SPEC section 6): one parser of its query for the JSON API and the
//! Monitoring page, and one read of a page with its next cursor.

use super::{AppResult, AppState, pagination};
use crate::{
    db,
    domain::{FieldError, LicenseKind, Validation, status::LicenseStatus},
    store::status::{self, License, ListQuery, Sort},
};
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
    let query = ListQuery {
        status: status_filter,
        kind,
        text: text.map(str::to_owned),
        sort,
        after: cursor.map(|c| (c.value, c.id)),
        limit,
    };
    (query, v.finish().err().unwrap_or_default())
}

/// One page of the tenant's licenses with their status, and the cursor of the next page.
pub async fn list(
    state: &AppState,
    tenant_id: Uuid,
    query: &ListQuery,
) -> AppResult<(Vec<License>, Option<String>)> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let rows = status::list(&mut tx, tenant_id, state.clock.now(), query).await?;
    tx.commit().await?;
    Ok(paged(rows, query))
}

/// Like [`list`], with the tenant's license count per status from the same evaluation (the
/// Monitoring page's counts always add up to what its rows say).
pub async fn list_with_summary(
    state: &AppState,
    tenant_id: Uuid,
    query: &ListQuery,
) -> AppResult<(Vec<License>, Option<String>, Vec<(LicenseStatus, i64)>)> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let (rows, summary) =
        status::list_with_summary(&mut tx, tenant_id, state.clock.now(), query).await?;
    tx.commit().await?;
    let (rows, next) = paged(rows, query);
    Ok((rows, next, summary))
}

fn paged(rows: Vec<License>, query: &ListQuery) -> (Vec<License>, Option<String>) {
    let sort = query.sort;
    pagination::page(rows, query.limit, &sort.as_param(), |l| {
        (sort.value_of(l), l.id)
    })
}
