//! The Monitoring page: one row per license with its status, counts per status, filter,
//! search and pagination.

use super::{
    page::{Nav, ago, failure, local, status_class, with_tenant},
    session::{self, UiSession},
};
use crate::{
    domain::status::{LicenseStatus, human_duration},
    http::AppState,
    store::{
        licenses::Sort,
        status::{self, ListQuery},
    },
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

const PAGE_SIZE: i64 = 50;

pub async fn monitoring(
    State(state): State<AppState>,
    s: UiSession,
    Query(q): Query<MonitoringQuery>,
) -> Response {
    let now = state.clock.now();
    let mut error = None;
    let status_filter = q
        .status
        .as_deref()
        .filter(|v| !v.is_empty())
        .and_then(|v| LicenseStatus::parse(v).map_err(|e| error = Some(e)).ok());
    let sort = q
        .sort
        .as_deref()
        .filter(|v| !v.is_empty())
        .map_or(Ok(Sort::parse("status").unwrap_or_default()), Sort::parse)
        .unwrap_or_else(|e| {
            error = Some(e);
            Sort::default()
        });
    let text =
        q.q.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.chars().take(200).collect::<String>());
    let after = q
        .cursor
        .as_deref()
        .and_then(|c| crate::http::pagination::Cursor::decode(c).ok())
        .filter(|c| c.sort == sort.as_param())
        .map(|c| (c.value, c.id));
    let query = ListQuery {
        status: status_filter,
        kind: None,
        text: text.clone(),
        sort,
        after: after.clone(),
        limit: PAGE_SIZE,
    };
    let result = with_tenant(&state, &s, async |tx| {
        status::list_with_summary(tx, s.tenant_id, now, &query).await
    })
    .await;
    let (rows, summary) = match result {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let (rows, next_cursor) =
        crate::http::pagination::page(rows, PAGE_SIZE, &sort.as_param(), |l| {
            (sort.value_of(l), l.id)
        });
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
