//! The Monitoring page: one row per license with its status, counts per status, filter,
//! search and pagination.

use super::{
    page::{Nav, ago, failure, local, status_class},
    session::{self, UiSession},
};
use crate::{
    app::{
        self, AppState,
        licenses::{ListParams, MAX_TEXT_CHARS},
    },
    domain::status::{LicenseStatus, human_duration},
    store::status::Sort,
};
use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Query, State},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use uuid::Uuid;

pub struct MonitoringRow {
    pub id: Uuid,
    pub name: String,
    pub key: String,
    pub kind: String,
    pub check_interval: String,
    pub last_activity: String,
    pub last_activity_abs: String,
    pub symbol: String,
    pub label: String,
    pub class: &'static str,
    pub cameras: String,
    pub webhooks: String,
    pub webhooks_bad: bool,
}

pub struct Count {
    pub status: &'static str,
    pub label: &'static str,
    pub symbol: &'static str,
    pub class: &'static str,
    pub count: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "monitoring.html")]
pub struct MonitoringPage {
    pub nav: Option<Nav>,
    pub total: i64,
    pub counts: Vec<Count>,
    pub rows: Vec<MonitoringRow>,
    pub status: String,
    pub q: String,
    pub sort: String,
    pub next_url: Option<String>,
    pub first_url: Option<String>,
    pub error: Option<String>,
    pub refreshed: String,
}

#[derive(Deserialize)]
pub struct MonitoringQuery {
    status: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
}

pub async fn monitoring(
    State(state): State<AppState>,
    s: UiSession,
    Query(q): Query<MonitoringQuery>,
) -> Response {
    let now = state.clock.now();
    // An empty form field means "not set"; over-long search text is cut rather than refused.
    let given = |v: &Option<String>| v.as_deref().filter(|v| !v.is_empty()).map(str::to_owned);
    let text = given(&q.q).map(|t| t.chars().take(MAX_TEXT_CHARS).collect::<String>());
    let (status_raw, sort_raw) = (given(&q.status), given(&q.sort));
    let params = ListParams {
        status: status_raw.as_deref(),
        q: text.as_deref(),
        sort: sort_raw.as_deref(),
        cursor: q.cursor.as_deref(),
        ..ListParams::default()
    };
    // Most urgent first, unlike the API's default (by name).
    let default_sort = Sort::parse("status").unwrap_or_default();
    let (query, problems) = app::licenses::parse_list_query(&params, default_sort);
    // A bad parameter falls back to its default; the first problem is shown above the table.
    let error = problems.into_iter().next().map(|p| p.message);
    let result = app::licenses::list_with_summary(&state, s.tenant_id, &query).await;
    let (rows, next_cursor, summary) = match result {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let (status_filter, sort, after) = (query.status, query.sort, query.after);
    let text = query.text;
    let n = |st: LicenseStatus| {
        summary
            .iter()
            .find(|(x, _)| *x == st)
            .map_or(0, |(_, c)| *c)
    };
    let counts = [
        LicenseStatus::AllActive,
        LicenseStatus::PartiallyActive,
        LicenseStatus::Inactive,
        LicenseStatus::NotInstalled,
    ]
    .into_iter()
    .map(|st| Count {
        status: st.as_str(),
        label: st.label(),
        symbol: st.symbol(),
        class: status_class(st),
        count: n(st),
    })
    .collect();
    let base = |cursor: Option<&str>| {
        let mut parts = Vec::new();
        if let Some(st) = status_filter {
            parts.push(format!("status={}", st.as_str()));
        }
        if let Some(t) = &text {
            parts.push(format!("q={}", session::urlencode(t)));
        }
        parts.push(format!("sort={}", session::urlencode(&sort.as_param())));
        if let Some(c) = cursor {
            parts.push(format!("cursor={c}"));
        }
        format!("/?{}", parts.join("&"))
    };
    let page = MonitoringPage {
        nav: Some(Nav::new(&s, "monitoring")),
        total: summary.iter().map(|(_, c)| c).sum(),
        counts,
        rows: rows
            .into_iter()
            .map(|l| MonitoringRow {
                id: l.id,
                name: l.name,
                key: l.key,
                kind: l.kind.as_str().to_owned(),
                check_interval: human_duration(i64::from(l.check_interval_seconds)),
                last_activity: ago(l.last_activity_at, now),
                last_activity_abs: l
                    .last_activity_at
                    .map_or_else(|| "never".to_owned(), |t| local(t, s.tz)),
                symbol: l.status.symbol().to_owned(),
                label: l.status.label().to_owned(),
                class: status_class(l.status),
                cameras: format!("{}/{}", l.cameras_active, l.cameras_total),
                webhooks: if l.webhooks_failing > 0 {
                    format!(
                        "{} failing, {} cached",
                        l.webhooks_failing, l.webhooks_cached
                    )
                } else if l.webhooks_cached > 0 {
                    format!("ok, {} cached", l.webhooks_cached)
                } else {
                    "ok".to_owned()
                },
                webhooks_bad: l.webhooks_failing > 0,
            })
            .collect(),
        status: status_filter
            .map(|st| st.as_str().to_owned())
            .unwrap_or_default(),
        q: text.clone().unwrap_or_default(),
        sort: sort.as_param(),
        next_url: next_cursor.as_deref().map(|c| base(Some(c))),
        first_url: after.map(|_| base(None)),
        error,
        refreshed: local(now, s.tz),
    };
    page.into_response()
}
