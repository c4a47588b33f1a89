//! The Monitoring page: one row per license with its status, counts per status, filter,
//! search and pagination.

use super::{
    activity::{SNOOZE_HOURS, Tag},
    page::{Nav, ago, failure, local, status_class},
    session::{self, UiSession},
};
use crate::{
    app::{
        self, AppState,
        licenses::{ListParams, MAX_TEXT_CHARS},
    },
    domain::{
        quiet::{Quiet, QuietReason},
        status::{LicenseStatus, human_duration},
    },
    store::status::Sort,
};
use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{RawQuery, State},
    response::{IntoResponse, Response},
};
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
    /// Chips that add the tag to the page's filter.
    pub tags: Vec<Tag>,
    /// "maintenance until …" or "snoozed until …".
    pub quiet: Option<String>,
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
    /// The tags filtered by, each with the page's address without it.
    pub tag_filter: Vec<Tag>,
    /// `true` or `false` when filtering by quiet, else empty.
    pub quiet_filter: String,
    /// Licenses quiet now, of the whole tenant.
    pub quiet_count: i64,
    pub snooze_hours: [i64; 3],
    /// This page's address, where a snooze button comes back to.
    pub here: String,
    pub next_url: Option<String>,
    pub first_url: Option<String>,
    pub error: Option<String>,
    pub refreshed: String,
}

/// The page's query string: `status`, `q`, `sort`, `cursor` and `quiet` once (the first
/// counts), `tag` repeated (licenses carrying every one), as the JSON API reads them.
struct MonitoringQuery(Vec<(String, String)>);

impl MonitoringQuery {
    fn parse(raw: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first non-empty value of `name` (an empty form field means "not set").
    fn one(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.trim().is_empty())
            .map(|(_, v)| v.clone())
    }

    /// Every non-empty `tag`, trimmed, without duplicates.
    fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = Vec::new();
        for (_, v) in self.0.iter().filter(|(n, _)| n == "tag") {
            let v = v.trim();
            if !v.is_empty() && !tags.iter().any(|t| t == v) {
                tags.push(v.to_owned());
            }
        }
        tags
    }
}

/// A license's quiet time in words.
fn quiet_text(q: &Quiet, tz: chrono_tz::Tz) -> String {
    let reason = match q.reason {
        QuietReason::Maintenance => "maintenance",
        QuietReason::Snooze => "snoozed",
    };
    format!("{reason} until {}", local(q.until, tz))
}

pub async fn monitoring(
    State(state): State<AppState>,
    s: UiSession,
    RawQuery(raw): RawQuery,
) -> Response {
    let now = state.clock.now();
    let q = MonitoringQuery::parse(raw.as_deref());
    // Over-long search text is cut rather than refused.
    let text = q
        .one("q")
        .map(|t| t.chars().take(MAX_TEXT_CHARS).collect::<String>());
    let (status_raw, sort_raw, cursor) = (q.one("status"), q.one("sort"), q.one("cursor"));
    let quiet_raw = q.one("quiet");
    let tags_raw = q.tags();
    let params = ListParams {
        status: status_raw.as_deref(),
        q: text.as_deref(),
        sort: sort_raw.as_deref(),
        cursor: cursor.as_deref(),
        tags: tags_raw.iter().map(String::as_str).collect(),
        quiet: quiet_raw.as_deref(),
        ..ListParams::default()
    };
    // Most urgent first, unlike the API's default (by name).
    let default_sort = Sort::parse("status").unwrap_or_default();
    let (query, problems) = app::licenses::parse_list_query(&params, default_sort);
    // A bad parameter falls back to its default; the first problem is shown above the table.
    let error = problems.into_iter().next().map(|p| p.message);
    let app::licenses::Overview {
        rows,
        next_cursor,
        summary,
        quiet: quiet_count,
    } = match app::licenses::overview(&state, s.tenant_id, &query).await {
        Ok(o) => o,
        Err(e) => return failure(e),
    };
    let (status_filter, sort, after) = (query.status, query.sort, query.after);
    let (text, tags, quiet_filter) = (query.text, query.tags, query.quiet);
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
    // The page's address with these tags and this cursor, every other filter kept.
    let url = |tags: &[&String], cursor: Option<&str>| {
        let mut parts = Vec::new();
        if let Some(st) = status_filter {
            parts.push(format!("status={}", st.as_str()));
        }
        if let Some(t) = &text {
            parts.push(format!("q={}", session::urlencode(t)));
        }
        for t in tags {
            parts.push(format!("tag={}", session::urlencode(t)));
        }
        if let Some(quiet) = quiet_filter {
            parts.push(format!("quiet={quiet}"));
        }
        parts.push(format!("sort={}", session::urlencode(&sort.as_param())));
        if let Some(c) = cursor {
            parts.push(format!("cursor={c}"));
        }
        format!("/?{}", parts.join("&"))
    };
    let all_tags: Vec<&String> = tags.iter().collect();
    let base = |cursor: Option<&str>| url(&all_tags, cursor);
    // A chip adds its tag to the filter (licenses must carry every tag filtered by).
    let chip = |tag: &str| {
        let mut with: Vec<&String> = all_tags.clone();
        let owned = tag.to_owned();
        if !with.iter().any(|t| **t == owned) {
            with.push(&owned);
        }
        Tag {
            name: tag.to_owned(),
            href: url(&with, None),
        }
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
                tags: l.tags.iter().map(|t| chip(t)).collect(),
                quiet: l.quiet.as_ref().map(|q| quiet_text(q, s.tz)),
            })
            .collect(),
        status: status_filter
            .map(|st| st.as_str().to_owned())
            .unwrap_or_default(),
        q: text.clone().unwrap_or_default(),
        sort: sort.as_param(),
        tag_filter: tags
            .iter()
            .map(|t| Tag {
                name: t.clone(),
                href: url(
                    &all_tags
                        .iter()
                        .copied()
                        .filter(|x| *x != t)
                        .collect::<Vec<_>>(),
                    None,
                ),
            })
            .collect(),
        quiet_filter: quiet_filter.map(|q| q.to_string()).unwrap_or_default(),
        quiet_count,
        snooze_hours: SNOOZE_HOURS,
        here: base(after.as_ref().and(cursor.as_deref())),
        next_url: next_cursor.as_deref().map(|c| base(Some(c))),
        first_url: after.map(|_| base(None)),
        error,
        refreshed: local(now, s.tz),
    };
    page.into_response()
}
