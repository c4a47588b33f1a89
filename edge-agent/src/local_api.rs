//! The local HTTP API (SPEC section 7, default `0.0.0.0:8001`).
//!
//! | route | answer |
//! |---|---|
//! | `GET /status/` | the Heartbeat API, byte-compatible with the established shape (plus each camera's `picture` once it was checked); 200 when every camera is functional, else 500 |
//! | `GET /monitor` | the legacy `{"active": ..., "cameras": {id: {"status": "running" \| "offline"}}}`, always 200 |
//! | `GET /api/streams/{id}/status` | `{"is_live", "bitrate", "last_frame_time"}`; unknown id: 404 `{"message": "Stream not found"}` |
//! | `GET /api/streams/-/status` | every camera, the established array `[{"name", "targets": [], "status": {...}}]` in configuration order |
//! | `GET /api/streams/{id}/snapshot` | the camera's latest snapshot, `image/jpeg`; unknown id: 404 `{"message": "Stream not found"}`; none yet: 404 `{"message": "No snapshot yet"}` |
//! | `GET /api/agent` | the agent itself: version, instance, uptime, pushing, spool (JSON, for the dashboard) |
//! | `GET /api/connectivity` | tests the way to the central service now (DNS, TCP, TLS, `GET /healthz`) |
//! | `GET /` | a small dashboard (self-contained HTML, no external assets) |
//!
//! Shapes and field order come from `streamwatch_protocol::edge`; `last_checked` is the moment
//! of the request in each camera's timezone. The router takes its clock from [`ApiState`], so
//! golden tests pin the time.

use crate::cameras::Cameras;
use crate::config::Central;
use crate::http_error_chain;
use crate::push::{PushStatus, SharedPushStatus};
use axum::{
    Json, Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use streamwatch_protocol::{MonitorResponse, StreamEntry, StreamNotFound, StreamStatuses};
use uuid::Uuid;

/// Where "now" comes from (the system clock, or a fixed time in tests).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Time limit of the connectivity check.
pub const CONNECTIVITY_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything the handlers read.
pub struct ApiState {
    pub cameras: Arc<Cameras>,
    pub version: String,
    pub instance_id: Uuid,
    pub hostname: String,
    pub started_at: DateTime<Utc>,
    pub central: Central,
    pub push: SharedPushStatus,
    pub clock: Clock,
}

impl ApiState {
    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}

/// The local API's routes.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/status/", get(status))
        .route("/status", get(status))
        .route("/monitor", get(monitor))
        .route("/api/streams/{id}/status", get(stream_status))
        .route("/api/streams/{id}/snapshot", get(snapshot))
        .route("/api/agent", get(agent))
        .route("/api/connectivity", get(connectivity))
        .with_state(state)
}

async fn status(State(s): State<Arc<ApiState>>) -> Response {
    let status = s.cameras.status(s.now(), &s.version);
    let code = if status.all_functional() {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (code, Json(status)).into_response()
}

async fn monitor(State(s): State<Arc<ApiState>>) -> Json<MonitorResponse> {
    let status = s.cameras.edge_status(s.now(), &s.version);
    Json(MonitorResponse::from_status(&status))
}

async fn stream_status(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let now = s.now();
    if id == crate::config::RESERVED_CAMERA_ID {
        let all: StreamStatuses = s
            .cameras
            .entries
            .iter()
            .map(|e| StreamEntry {
                name: e.config.id.clone(),
                targets: Vec::new(),
                status: e.stream_status(&e.observe(now)),
            })
            .collect();
        return Json(all).into_response();
    }
    match s.cameras.get(&id) {
        Some(e) => Json(e.stream_status(&e.observe(now))).into_response(),
        None => (StatusCode::NOT_FOUND, Json(StreamNotFound::new())).into_response(),
    }
}

/// `GET /api/streams/{id}/snapshot`: the latest JPEG, never cached (it changes every
/// interval).
async fn snapshot(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let Some(entry) = s.cameras.get(&id) else {
        return (StatusCode::NOT_FOUND, Json(StreamNotFound::new())).into_response();
    };
    match entry.picture.snapshot() {
        Some(snapshot) => (
            [
                (header::CONTENT_TYPE, "image/jpeg".to_owned()),
                (header::CACHE_CONTROL, "no-store".to_owned()),
                (
                    header::LAST_MODIFIED,
                    snapshot
                        .taken_at
                        .format("%a, %d %b %Y %H:%M:%S GMT")
                        .to_string(),
                ),
            ],
            snapshot.jpeg,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(StreamNotFound {
                message: "No snapshot yet".to_owned(),
            }),
        )
            .into_response(),
    }
}

/// `GET /api/agent`.
#[derive(Debug, Serialize)]
struct AgentView {
    version: String,
    instance_id: Uuid,
    hostname: String,
    started_at: DateTime<Utc>,
    uptime_seconds: i64,
    central_url: String,
    push: PushStatus,
}

fn agent_view(s: &ApiState) -> AgentView {
    let push = s.push.lock().map(|p| p.clone()).unwrap_or_default();
    AgentView {
        version: s.version.clone(),
        instance_id: s.instance_id,
        hostname: s.hostname.clone(),
        started_at: s.started_at,
        uptime_seconds: (s.now() - s.started_at).num_seconds().max(0),
        central_url: streamwatch_protocol::redact_url(s.central.url.as_str()),
        push,
    }
}

async fn agent(State(s): State<Arc<ApiState>>) -> Json<AgentView> {
    Json(agent_view(&s))
}

/// `GET /api/connectivity`.
#[derive(Debug, Serialize)]
pub struct Connectivity {
    /// Whether the server answered its health check.
    pub ok: bool,
    /// What was tried.
    pub url: String,
    /// The HTTP status, when there was an answer.
    pub http_status: Option<u16>,
    pub elapsed_ms: u64,
    /// What happened, and what to check, for an operator.
    pub message: String,
    /// The last heartbeat push: the health check cannot test the agent token, this can.
    pub last_push_error: Option<String>,
    pub last_push_success_at: Option<DateTime<Utc>>,
}

async fn connectivity(State(s): State<Arc<ApiState>>) -> Json<Connectivity> {
    let url = s.central.healthz_url();
    // The base URL may carry credentials, which `join` keeps.
    let shown = streamwatch_protocol::redact_url(url.as_str());
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port_or_known_default().unwrap_or(0);
    let started = std::time::Instant::now();
    let result = match reqwest::Client::builder()
        .timeout(CONNECTIVITY_TIMEOUT)
        .build()
    {
        Ok(client) => client.get(url.clone()).send().await,
        Err(e) => {
            return Json(Connectivity {
                ok: false,
                url: shown,
                http_status: None,
                elapsed_ms: 0,
                message: format!("cannot start an HTTP client: {e}"),
                last_push_error: None,
                last_push_success_at: None,
            });
        }
    };
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (ok, http_status, message) = match result {
        Ok(r) if r.status().is_success() => (
            true,
            Some(r.status().as_u16()),
            format!(
                "the streamwatch server at {host} answered its health check in {elapsed_ms} ms"
            ),
        ),
        Ok(r) => (
            false,
            Some(r.status().as_u16()),
            format!(
                "{shown} answered {}: the machine reaches it, but is [central] url the streamwatch server?",
                r.status()
            ),
        ),
        Err(e) => (false, None, explain(e, &host, port)),
    };
    let push = s.push.lock().map(|p| p.clone()).unwrap_or_default();
    Json(Connectivity {
        ok,
        url: shown,
        http_status,
        elapsed_ms,
        message,
        last_push_error: push.last_error,
        last_push_success_at: push.last_success_at,
    })
}

/// A failed connection, in words an operator can act on.
pub fn explain(e: reqwest::Error, host: &str, port: u16) -> String {
    let timed_out = e.is_timeout();
    let chain = http_error_chain(e);
    let lower = chain.to_ascii_lowercase();
    if lower.contains("dns") || lower.contains("lookup") || lower.contains("name or service") {
        format!(
            "cannot resolve the host name {host}: check the machine's DNS settings and the spelling of [central] url ({chain})"
        )
    } else if lower.contains("refused") {
        format!(
            "{host}:{port} refused the connection: the server is not running there, or a firewall rejects it ({chain})"
        )
    } else if timed_out {
        format!(
            "no answer from {host}:{port} within {} s: a firewall may drop the traffic, or the server is overloaded ({chain})",
            CONNECTIVITY_TIMEOUT.as_secs()
        )
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        format!(
            "the TLS handshake with {host} failed: check the URL's scheme, the machine's clock and its CA certificates ({chain})"
        )
    } else if lower.contains("unreachable") {
        format!("no route to {host}: check the machine's network and gateway ({chain})")
    } else {
        format!("cannot reach {host}:{port}: {chain}")
    }
}

async fn dashboard(State(s): State<Arc<ApiState>>) -> Response {
    let html = render_dashboard(&s);
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn ago(now: DateTime<Utc>, at: Option<DateTime<Utc>>) -> String {
    match at {
        None => "never".to_owned(),
        Some(at) => {
            let s = (now - at).num_seconds().max(0);
            match s {
                0..=59 => format!("{s} s ago"),
                60..=3599 => format!("{} min ago", s / 60),
                3600..=86_399 => format!("{} h {} min ago", s / 3600, s % 3600 / 60),
                _ => format!("{} d ago", s / 86_400),
            }
        }
    }
}

fn number(v: f64) -> String {
    if v < 0.0 {
        "–".to_owned()
    } else {
        format!("{v:.1}")
    }
}

fn render_dashboard(s: &ApiState) -> String {
    let now = s.now();
    let view = agent_view(s);
    let mut rows = String::new();
    for e in &s.cameras.entries {
        let o = e.observe(now);
        let r = e.report(&o, s.cameras.board.report(&e.config.id));
        let condition = o.condition.as_str();
        let webhooks = match r.webhooks.status {
            streamwatch_protocol::WebhookStatus::None => "none".to_owned(),
            streamwatch_protocol::WebhookStatus::Ok => "ok".to_owned(),
            streamwatch_protocol::WebhookStatus::Failing => {
                format!("failing ({} cached)", r.webhooks.cached)
            }
        };
        let picture = match (&o.picture, e.picture.snapshot()) {
            (None, _) => "–".to_owned(),
            (Some(p), snapshot) => {
                let state = p.state.as_str();
                let thumb = match snapshot {
                    // Camera ids are URL-safe (`is_valid_camera_id`).
                    Some(_) => format!(
                        "<br><a href=\"/api/streams/{id}/snapshot\"><img class=\"thumb\" src=\"/api/streams/{id}/snapshot\" alt=\"latest snapshot of {id}\"></a>",
                        id = escape(&e.config.id)
                    ),
                    None => String::new(),
                };
                format!(
                    "<span class=\"pill pic-{state}\" title=\"since {since}\">{state}</span>{thumb}",
                    since = escape(&p.since.to_rfc3339()),
                )
            }
        };
        rows.push_str(&format!(
            "<tr><td>{id}</td><td class=\"url\">{url}</td><td>{status}</td><td><span class=\"pill {condition}\">{condition}</span></td>\
             <td>{health}</td><td>{fps} / {expected}</td><td>{bitrate}</td><td>{frame}</td><td>{restarts}</td><td>{webhooks}</td><td>{picture}</td><td class=\"err\">{error}</td></tr>\n",
            id = escape(&e.config.id),
            url = escape(&e.config.display_url()),
            status = escape(r.status.as_str()),
            health = if r.health < 0 { "–".to_owned() } else { r.health.to_string() },
            fps = number(r.received_fps),
            expected = number(r.expected_fps),
            bitrate = if r.bitrate_kbps < 0.0 { "–".to_owned() } else { format!("{:.0} kbit/s", r.bitrate_kbps) },
            frame = escape(&ago(now, r.last_frame_at)),
            restarts = r.restart_count,
            webhooks = escape(&webhooks),
            error = escape(r.last_error.as_deref().unwrap_or("")),
        ));
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"12\">No cameras are configured.</td></tr>\n");
    }
    let p = &view.push;
    let push_line = match (&p.last_error, p.last_success_at) {
        (Some(e), _) => format!("<span class=\"bad\">failing</span>: {}", escape(e)),
        (None, Some(at)) => format!("ok, last acknowledged {}", escape(&ago(now, Some(at)))),
        (None, None) => "no heartbeat sent yet".to_owned(),
    };
    let spool = &p.spool;
    let mut facts: BTreeMap<&str, String> = BTreeMap::new();
    facts.insert("1 version", escape(&view.version));
    facts.insert("2 host", escape(&view.hostname));
    facts.insert("3 instance", escape(&view.instance_id.to_string()));
    facts.insert(
        "4 uptime",
        escape(&ago(now, Some(view.started_at)).replace(" ago", "")),
    );
    facts.insert("5 central", escape(&view.central_url));
    facts.insert("6 pushing", push_line);
    facts.insert(
        "7 spool",
        format!(
            "{} heartbeats waiting ({} bytes on disk); dropped at the bounds: {} by size, {} by age; rejected: {}",
            spool.pending, spool.disk_bytes, spool.dropped_by_size, spool.dropped_by_age, spool.rejected
        ),
    );
    facts.insert("8 interval", format!("{} s", p.interval_seconds));
    let facts: String = facts
        .into_iter()
        .map(|(k, v)| format!("<dt>{}</dt><dd>{v}</dd>", &k[2..]))
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>streamwatch agent · {host}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2330; background: #f6f7f9; }}
h1 {{ font-size: 1.3rem; margin: 0 0 1rem; }} h2 {{ font-size: 1.05rem; margin: 1.5rem 0 .5rem; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; margin: 0; }}
dt {{ color: #5b6475; }} dd {{ margin: 0; }}
table {{ border-collapse: collapse; width: 100%; background: #fff; }}
th, td {{ text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e3e6eb; vertical-align: top; }}
th {{ background: #eef0f4; font-weight: 600; }}
.url {{ font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }}
.err {{ color: #a02020; }} .bad {{ color: #a02020; font-weight: 600; }}
.pill {{ padding: 0 .45rem; border-radius: .6rem; font-size: 12px; background: #dde1e7; }}
.pill.active {{ background: #c9efd3; }} .pill.degraded, .pill.starving {{ background: #fbe7b5; }} .pill.offline {{ background: #f6c8c8; }}
.pill.pic-ok {{ background: #c9efd3; }} .pill.pic-black, .pill.pic-uniform, .pill.pic-frozen {{ background: #f6c8c8; }}
.thumb {{ width: 160px; margin-top: .3rem; border: 1px solid #e3e6eb; }}
button {{ font: inherit; padding: .35rem .8rem; }}
#conn {{ white-space: pre-wrap; background: #fff; border: 1px solid #e3e6eb; padding: .5rem; display: none; }}
</style></head>
<body>
<h1>streamwatch agent · {host}</h1>
<dl>{facts}</dl>
<h2>Cameras</h2>
<table>
<thead><tr><th>camera</th><th>url</th><th>status</th><th>condition</th><th>health</th><th>fps (received / expected)</th><th>bitrate</th><th>last frame</th><th>restarts</th><th>webhooks</th><th>picture</th><th>last error</th></tr></thead>
<tbody>
{rows}</tbody>
</table>
<h2>Central service</h2>
<p><button id="check" type="button">Check connectivity</button> <label><input id="auto" type="checkbox" checked> refresh every 10 s</label></p>
<pre id="conn"></pre>
<script>
(function () {{
  var out = document.getElementById('conn');
  document.getElementById('check').addEventListener('click', function () {{
    document.getElementById('auto').checked = false;
    out.style.display = 'block';
    out.textContent = 'checking…';
    fetch('/api/connectivity').then(function (r) {{ return r.json(); }}).then(function (c) {{
      var lines = [(c.ok ? 'OK: ' : 'PROBLEM: ') + c.message, 'tried: ' + c.url + ' (' + c.elapsed_ms + ' ms)'];
      if (c.last_push_error) {{ lines.push('last heartbeat push failed: ' + c.last_push_error); }}
      else if (c.last_push_success_at) {{ lines.push('last heartbeat acknowledged at ' + c.last_push_success_at); }}
      out.textContent = lines.join('\n');
    }}).catch(function (e) {{ out.textContent = 'the agent did not answer: ' + e; }});
  }});
  setInterval(function () {{ if (document.getElementById('auto').checked) {{ location.reload(); }} }}, 10000);
}})();
</script>
</body></html>
"#,
        host = escape(&view.hostname),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x&'y")</script>"#),
            "&lt;script&gt;alert(&quot;x&amp;&#39;y&quot;)&lt;/script&gt;"
        );
    }
}
