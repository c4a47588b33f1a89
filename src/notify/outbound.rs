//! Outbound HTTP for alert channels (SPEC section 5a): the one client that calls URLs chosen
//! by tenants, used by the sender and by `POST /channels/{id}/test`.
//!
//! A tenant choosing the URL means the server must not become a way into its own network
//! (SSRF). The rules, unless `channels.allow_private_targets` is on:
//!
//! - **Save time** ([`Outbound::check_target`]): `https` only, no credentials in the URL, and
//!   the host must resolve, every address to a public one (`domain::channel::is_public`).
//! - **Connect time**: the client resolves names through [`GuardedResolver`], which drops
//!   every non-public address and fails when none is left, so the connection goes to an
//!   address that was checked in the same step (a DNS answer that changed since the save, as
//!   in DNS rebinding, cannot lead inside). A URL with a literal IP address never reaches a
//!   resolver, so [`Outbound::deliver`] checks the parsed host itself.
//! - No proxy (it would resolve the name itself), no redirects (a `3xx` is a failure: the
//!   target could otherwise bounce the request to an internal address), a 10 s deadline for
//!   the whole exchange, and at most [`MAX_BODY_BYTES`] of a response read (for the error).
//!
//! Errors never show the URL's path, query or credentials (Slack, Teams and ntfy URLs are
//! secrets themselves) nor the channel's secrets: a target is shown by its origin only
//! (`redact_url_origin`), reqwest errors without their URL, and secrets echoed back in a
//! response body are blanked.

use super::payloads::{self, Request};
use crate::domain::{
    alert_event::AlertEvent,
    channel::{ChannelConfig, check_target_url, is_public},
};
use chrono::{DateTime, Utc};
use reqwest::{
    StatusCode, Url,
    dns::{Addrs, Name, Resolve, Resolving},
    header::{HeaderMap, LOCATION, RETRY_AFTER},
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use streamwatch_protocol::redact::{REDACTED, redact_url_origin, redact_urls_in_text};
use url_host::Host;

/// SPEC section 5a: a delivery attempt may take at most this long, name resolution included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a response body is read, for the error message of a failed delivery.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// How much of that body the error message quotes.
const SNIPPET_CHARS: usize = 200;
/// The longest `Retry-After` honoured: the sender gives up after 24 h anyway.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The `url` crate's host type, as reqwest re-exports its `Url` but not `Host`.
mod url_host {
    pub enum Host {
        Domain(String),
        Ip(std::net::IpAddr),
    }

    pub fn of(url: &reqwest::Url) -> Option<Host> {
        // `host_str` gives IPv6 addresses in brackets; `host` is the typed form, but its type
        // lives in the `url` crate, which is not a direct dependency. Parse the string instead.
        let s = url.host_str()?;
        let bare = s.trim_start_matches('[').trim_end_matches(']');
        Some(match bare.parse() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Domain(s.to_owned()),
        })
    }
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered { status: u16 },
    /// 408, 429, 5xx, a timeout or a connection error: try again later (after `retry_after`
    /// if the receiver said so).
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Anything else (another 4xx, a refused target, a redirect): do not try again.
    Failed { error: String },
}

/// The outbound client, shared by the sender and `POST /channels/{id}/test`. Cheap to clone
/// (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Outbound {
    /// `channels.allow_private_targets`: plain `http` and private addresses are accepted.
    pub allow_private: bool,
    /// The deadline of one request.
    timeout: Duration,
    /// `Err` only if the TLS stack could not start; every delivery then retries with the
    /// reason rather than the process refusing to start for a feature it may not use.
    client: Result<reqwest::Client, Arc<str>>,
}

impl Outbound {
    pub fn new(allow_private: bool) -> Self {
        Self::with_timeout(allow_private, TIMEOUT)
    }

    /// With another deadline than the SPEC's 10 s, for tests of a hanging receiver.
    pub fn with_timeout(allow_private: bool, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver {
                allow_private,
                timeout,
            })
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .user_agent(payloads::USER_AGENT)
            .build()
            .map_err(|e| Arc::from(format!("cannot start the HTTP client: {e}")));
        Self {
            allow_private,
            timeout,
            client,
        }
    }

    /// The save-time check of a target URL: its syntax, and every address its host resolves
    /// to must be public (unless private targets are allowed). The message suits a field
    /// error ("/config/url": ...).
    pub async fn check_target(&self, url: &str) -> Result<(), String> {
        let parsed = self.check_syntax(url)?;
        let Some(Host::Domain(host)) = url_host::of(&parsed) else {
            // A literal IP address, checked by `check_syntax`.
            return Ok(());
        };
        let addrs = resolve(&host, self.timeout)
            .await
            .map_err(|e| e.to_string())?;
        if !self.allow_private
            && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip()))
        {
            return Err(format!(
                "{host} resolves to a private or reserved address ({}); only public addresses are allowed",
                bad.ip()
            ));
        }
        Ok(())
    }

    /// The URL rules that need no name resolution, on the URL as written and as parsed (a
    /// parser reads `https://2130706433/` as 127.0.0.1, which the written form does not show).
    fn check_syntax(&self, url: &str) -> Result<Url, String> {
        check_target_url(url, self.allow_private)?;
        let parsed = Url::parse(url).map_err(|_| "must be a valid URL".to_owned())?;
        if let Some(Host::Ip(ip)) = url_host::of(&parsed)
            && !self.allow_private
            && !is_public(ip)
        {
            return Err(format!(
                "points to a private or reserved address ({ip}); only public addresses are allowed"
            ));
        }
        Ok(parsed)
    }

    /// Sends `event` to the channel (any kind but e-mail). `_now` is the application clock's
    /// time; nothing here uses it because everything a receiver compares with its own clock
    /// (the signature's `t`, a `Retry-After` date) must be the real wall clock.
    #[tracing::instrument(skip_all, fields(kind = config.kind().as_str(), event_id = %event.id))]
    pub async fn deliver(
        &self,
        config: &ChannelConfig,
        event: &AlertEvent,
        _now: DateTime<Utc>,
    ) -> Outcome {
        let requests = match payloads::build(config, event, Utc::now().timestamp()) {
            Ok(r) => r,
            Err(error) => return Outcome::Failed { error },
        };
        let secrets = secrets_of(config);
        let mut first: Option<Outcome> = None;
        for request in &requests {
            let outcome = self.send(request, &secrets).await;
            match &first {
                None if !matches!(outcome, Outcome::Delivered { .. }) => return outcome,
                None => first = Some(outcome),
                // A follow-up (the resolve after a PagerDuty test) does not change the
                // outcome: the channel was reached.
                Some(_) => {
                    if let Outcome::Retry { error, .. } | Outcome::Failed { error } = &outcome {
                        tracing::warn!(%error, "follow-up request of a delivery failed");
                    }
                }
            }
        }
        first.unwrap_or(Outcome::Failed {
            error: "nothing to send".into(),
        })
    }

    async fn send(&self, request: &Request, secrets: &[&str]) -> Outcome {
        let origin = redact_url_origin(&request.url);
        if let Err(reason) = self.check_syntax(&request.url) {
            return Outcome::Failed {
                error: format!("refused target {origin}: {reason}"),
            };
        }
        let client = match &self.client {
            Ok(c) => c,
            Err(e) => {
                return Outcome::Retry {
                    error: e.to_string(),
                    retry_after: None,
                };
            }
        };
        let mut builder = client.post(&request.url).body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return self.classify_error(&e.without_url(), &origin, secrets),
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Delivered {
                status: status.as_u16(),
            };
        }
        if status.is_redirection() {
            let to = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| response.url().join(l).ok())
                .map_or_else(|| "nowhere".to_owned(), |u| redact_url_origin(u.as_str()));
            return Outcome::Failed {
                error: format!("{origin}: HTTP {status}: redirect not followed (to {to})"),
            };
        }
        let retry_after = retry_after(response.headers(), Utc::now());
        let snippet = read_snippet(response).await;
        let mut error = format!("{origin}: HTTP {status}");
        if !snippet.is_empty() {
            error.push_str(": ");
            error.push_str(&snippet);
        }
        let error = scrub(&error, &request.url, secrets);
        if is_retryable(status) {
            Outcome::Retry { error, retry_after }
        } else {
            Outcome::Failed { error }
        }
    }

    fn classify_error(&self, e: &reqwest::Error, origin: &str, secrets: &[&str]) -> Outcome {
        // Our resolver's refusal travels as the source of a connect error.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            if let Some(refused) = s.downcast_ref::<Refused>() {
                return Outcome::Failed {
                    error: format!("refused target {origin}: {refused}"),
                };
            }
            source = s.source();
        }
        let error = if e.is_timeout() {
            format!(
                "{origin}: no answer within {} s",
                self.timeout.as_secs_f32()
            )
        } else {
            format!("{origin}: {}", describe(e))
        };
        Outcome::Retry {
            error: scrub(&error, "", secrets),
            retry_after: None,
        }
    }
}

/// SPEC section 5a: 408 (request timeout), 429 (rate limited) and 5xx retry; other statuses
/// do not.
fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// `Retry-After` as seconds or as an HTTP date (read against the wall clock `now`, as the
/// receiver's own clock wrote it), capped at a day. A date in the past means "now".
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let d = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = DateTime::parse_from_rfc2822(value)
            .ok()?
            .with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// A reqwest error (already `without_url`) and its cause chain.
fn describe(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        // hyper's "client error (Connect)" only repeats what `is_connect` said.
        if !text.starts_with("client error (") && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    let head = if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        e.to_string()
    };
    let detail: Vec<String> = parts.into_iter().take(3).collect();
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {}", detail.join(": "))
    }
}

/// The first characters of a response body, on one line.
async fn read_snippet(mut response: reqwest::Response) -> String {
    let mut body: Vec<u8> = Vec::new();
    while body.len() < MAX_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(MAX_BODY_BYTES);
    let text = String::from_utf8_lossy(&body);
    let one_line: String = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let mut out: String = one_line.chars().take(SNIPPET_CHARS).collect();
    if one_line.chars().count() > SNIPPET_CHARS {
        out.push('…');
    }
    out
}

/// The channel's secrets, to blank out of anything a receiver echoes back.
fn secrets_of(config: &ChannelConfig) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    match config {
        ChannelConfig::Webhook {
            secret: Some(s), ..
        } => out.push(s),
        ChannelConfig::Pagerduty { routing_key, .. } => out.push(routing_key),
        ChannelConfig::Ntfy { token: Some(t), .. } => out.push(t),
        _ => {}
    }
    out
}

/// Blanks the secrets, the target URL's path and query, and any other URL's query out of an
/// error text.
fn scrub(text: &str, url: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    if let Ok(parsed) = Url::parse(url) {
        let path = parsed.path();
        if path.len() > 1 {
            out = out.replace(path, &format!("/{REDACTED}"));
        }
        if let Some(q) = parsed.query().filter(|q| !q.is_empty()) {
            out = out.replace(q, REDACTED);
        }
    }
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s, REDACTED);
    }
    redact_urls_in_text(&out)
}

/// Resolves `host` with a deadline; an error names the host only.
async fn resolve(host: &str, timeout: Duration) -> Result<Vec<SocketAddr>, ResolveError> {
    let lookup = tokio::net::lookup_host((host, 0));
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(timeout, lookup).await {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(_)) => Vec::new(),
        Err(_) => return Err(ResolveError::TimedOut(host.to_owned())),
    };
    if addrs.is_empty() {
        return Err(ResolveError::NoAddress(host.to_owned()));
    }
    Ok(addrs)
}

#[derive(Debug, thiserror::Error)]
enum ResolveError {
    #[error("{0} does not resolve to any address")]
    NoAddress(String),
    #[error("resolving {0} took too long")]
    TimedOut(String),
}

/// The connect-time refusal: the name resolved only to addresses that are not public.
#[derive(Debug, thiserror::Error)]
#[error(
    "{host} resolves only to private or reserved addresses ({addr}); only public addresses are allowed"
)]
struct Refused {
    host: String,
    addr: std::net::IpAddr,
}

/// reqwest's name resolution for outbound requests: the system resolver (through tokio), minus
/// every address that is not public unless private targets are allowed. The addresses this
/// returns are the ones reqwest connects to, so the check and the connection cannot disagree.
#[derive(Debug, Clone)]
struct GuardedResolver {
    allow_private: bool,
    timeout: Duration,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (allow_private, timeout) = (self.allow_private, self.timeout);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve(&host, timeout).await?;
            if allow_private {
                return Ok(Box::new(addrs.into_iter()) as Addrs);
            }
            let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                addrs.into_iter().partition(|a| is_public(a.ip()));
            if public.is_empty() {
                let addr = refused
                    .first()
                    .map_or(std::net::IpAddr::from([0, 0, 0, 0]), SocketAddr::ip);
                return Err(Box::new(Refused { host, addr }) as Box<_>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Thu, 03 Dec 2026 10:01:30 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(90)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Thu, 03 Dec 2026 09:00:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("999999999"));
        assert_eq!(retry_after(&h, now), Some(MAX_RETRY_AFTER));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn statuses_are_classified_as_the_spec_says() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 410, 413, 422] {
            assert!(!is_retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn scrub_blanks_paths_queries_and_secrets() {
        let text = "https://hooks.example/T0/B0/XYZ?k=v said: bad key whsec_1 for /T0/B0/XYZ";
        let out = scrub(text, "https://hooks.example/T0/B0/XYZ?k=v", &["whsec_1"]);
        assert!(!out.contains("XYZ"), "{out}");
        assert!(!out.contains("k=v"), "{out}");
        assert!(!out.contains("whsec_1"), "{out}");
    }

    #[tokio::test]
    async fn literal_private_addresses_are_refused_in_any_spelling() {
        let o = Outbound::new(false);
        for url in [
            "https://127.0.0.1/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://[::ffff:7f00:1]/",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest/meta-data",
        ] {
            assert!(o.check_target(url).await.is_err(), "{url}");
        }
        assert!(o.check_target("http://example.com/").await.is_err());
        assert!(
            Outbound::new(true)
                .check_target("http://127.0.0.1:9/")
                .await
                .is_ok()
        );
    }
}
