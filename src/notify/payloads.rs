//! What each alert channel is sent (SPEC section 5a): the HTTP requests, as pure functions of
//! an [`AlertEvent`] and the channel's [`ChannelConfig`], so that every format is unit-tested
//! without a network. `notify::outbound` sends them.
//!
//! | kind | request |
//! |---|---|
//! | webhook | the event JSON as is, signed when the channel has a secret ([`signature`]) |
//! | slack | an incoming-webhook message: fallback `text` and Block Kit `blocks` |
//! | teams | a Workflows webhook message with an Adaptive Card 1.4 attachment |
//! | pagerduty | Events API v2: `trigger` for problems, `resolve` for recoveries, `dedup_key` = episode id |
//! | ntfy | a JSON publish to the server root (`topic` taken from the channel's URL) |
//!
//! Every request carries `Content-Type: application/json`, `Streamwatch-Event-Id` (stable across
//! redeliveries, so receivers can de-duplicate) and `User-Agent: streamwatch/<version>`.
//!
//! Names in an event come from tenants (license names, keys, camera ids): the chat formats
//! escape what their markup would interpret (Slack's `&`, `<`, `>`), and every text is cut to
//! the provider's documented limit so that a long name cannot get a message rejected.

use crate::domain::{
    alert_event::{AlertEvent, EventType},
    channel::ChannelConfig,
};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// `User-Agent` of every outbound request.
pub const USER_AGENT: &str = concat!("streamwatch/", env!("CARGO_PKG_VERSION"));
/// The header naming the event (its `id`).
pub const EVENT_ID_HEADER: &str = "Streamwatch-Event-Id";
/// The webhook signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "Streamwatch-Signature";

/// One HTTP `POST` to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (case-insensitive), for tests.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (every body here is JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// The requests that deliver `event` to the channel, in order. Usually one; a PagerDuty `test`
/// is a trigger followed by a resolve of the same alert, so that a test leaves no incident
/// open (the outcome of a delivery is the first request's).
///
/// `signed_at` is the webhook signature's `t`: the real wall clock in unix seconds (never the
/// simulated clock: receivers compare it with their own clock to refuse replays).
pub fn build(
    config: &ChannelConfig,
    event: &AlertEvent,
    signed_at: i64,
) -> Result<Vec<Request>, String> {
    match config {
        ChannelConfig::Email { .. } => {
            Err("an e-mail channel is sent by the mailer, not over HTTP".into())
        }
        ChannelConfig::Webhook { url, secret } => {
            Ok(vec![webhook(url, secret.as_deref(), event, signed_at)?])
        }
        ChannelConfig::Slack { webhook_url } => {
            Ok(vec![request(webhook_url, event, &slack(event))])
        }
        ChannelConfig::Teams { webhook_url } => {
            Ok(vec![request(webhook_url, event, &teams(event))])
        }
        ChannelConfig::Pagerduty { routing_key, .. } => {
            let url = config.target_url().unwrap_or_default();
            Ok(pagerduty(routing_key, event)
                .into_iter()
                .map(|body| request(url, event, &body))
                .collect())
        }
        ChannelConfig::Ntfy { url, token } => {
            let (server, topic) = split_ntfy_url(url)
                .ok_or("the ntfy URL must be the server followed by the topic")?;
            let mut r = request(&server, event, &ntfy(&topic, event));
            if let Some(token) = token {
                r.headers.push(("Authorization", format!("Bearer {token}")));
            }
            Ok(vec![r])
        }
    }
}

fn request(url: &str, event: &AlertEvent, body: &Value) -> Request {
    Request {
        url: url.to_owned(),
        headers: common_headers(event),
        // Serializing a `Value` cannot fail.
        body: serde_json::to_vec(body).unwrap_or_default(),
    }
}

fn common_headers(event: &AlertEvent) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".to_owned()),
        ("User-Agent", USER_AGENT.to_owned()),
        (EVENT_ID_HEADER, event.id.to_string()),
    ]
}

// --- webhook -------------------------------------------------------------------------------

fn webhook(
    url: &str,
    secret: Option<&str>,
    event: &AlertEvent,
    signed_at: i64,
) -> Result<Request, String> {
    let body = serde_json::to_vec(event).map_err(|e| format!("cannot encode the event: {e}"))?;
    let mut headers = common_headers(event);
    if let Some(secret) = secret {
        headers.push((SIGNATURE_HEADER, signature(secret, signed_at, &body)?));
    }
    Ok(Request {
        url: url.to_owned(),
        headers,
        body,
    })
}

/// The `Streamwatch-Signature` value: `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, the
/// scheme Stripe made familiar. Signing the timestamp with the body lets a receiver refuse a
/// replayed request (an old `t`) as well as a forged one.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> Result<String, String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| format!("cannot sign with this secret: {e}"))?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "t={t},v1={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

// --- shared wording ------------------------------------------------------------------------

/// How urgent an event is, for the formats that have a notion of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Urgency {
    Critical,
    Warning,
    Good,
    Info,
}

fn urgency(t: EventType) -> Urgency {
    match t {
        EventType::Inactive | EventType::Escalated => Urgency::Critical,
        EventType::Reminder | EventType::Partial => Urgency::Warning,
        EventType::Recovered | EventType::PartialRecovered => Urgency::Good,
        EventType::Test => Urgency::Info,
    }
}

/// `s` cut to at most `max` characters (an ellipsis marks the cut).
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Label and value pairs shown by the chat formats (plain text, not escaped).
fn facts(event: &AlertEvent) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(l) = &event.license {
        out.push(("License", format!("{} ({})", l.name, l.key)));
        out.push(("Status", l.status.replace('_', " ")));
    }
    out.push(("Tenant", event.tenant.name.clone()));
    if let Some(e) = &event.episode {
        out.push(("Episode opened", when(e.opened_at)));
        if let Some(a) = e.acknowledged_at {
            out.push(("Acknowledged", when(a)));
        }
    }
    if event.license.is_some() {
        out.push((
            "Last activity",
            event
                .last_activity_at
                .map_or_else(|| "never".to_owned(), when),
        ));
    }
    out
}

/// The links every format offers: the status page and, while an episode is open and not yet
/// acknowledged, the one-click acknowledgement.
fn links(event: &AlertEvent) -> Vec<(&'static str, &str)> {
    let mut out = Vec::new();
    if let Some(l) = &event.license {
        out.push(("Open status", l.url.as_str()));
    }
    if let Some(a) = &event.acknowledge_url {
        out.push(("Acknowledge", a.as_str()));
    }
    out
}

// --- Slack ---------------------------------------------------------------------------------

/// Escapes the three characters Slack's mrkdwn treats as control characters (`<` and `>`
/// delimit links and mentions such as `<!channel>`, `&` starts an entity). A license named
/// `<!channel>` must not ping a whole channel.
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `s` escaped for Slack and cut to `max` characters of the escaped form, never inside an
/// entity.
fn slack_text(s: &str, max: usize) -> String {
    let escaped = slack_escape(s);
    if escaped.chars().count() <= max {
        return escaped;
    }
    let mut out = String::new();
    let mut len = 0;
    for c in s.chars() {
        let piece = slack_escape(c.encode_utf8(&mut [0; 4]));
        let n = piece.chars().count();
        if len + n > max.saturating_sub(1) {
            break;
        }
        out.push_str(&piece);
        len += n;
    }
    out.push('…');
    out
}

/// Block Kit limits (Slack's reference): header text 150, section text 3000, a field 2000,
/// button text 75, button URL 3000, at most 10 fields and 10 context elements.
fn slack(event: &AlertEvent) -> Value {
    let emoji = match urgency(event.event_type) {
        Urgency::Critical => ":rotating_light:",
        Urgency::Warning => ":warning:",
        Urgency::Good => ":white_check_mark:",
        Urgency::Info => ":information_source:",
    };
    let title = event.title();
    let fields: Vec<Value> = facts(event)
        .into_iter()
        .take(10)
        .map(|(label, value)| {
            json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", slack_text(&value, 1900))})
        })
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": slack_text(&format!("{emoji} {title}"), 150), "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": slack_text(&event.summary(), 3000)}, "fields": fields}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": cut(&format!(
            "streamwatch · `{}` · {} · event {}",
            event.event_type.as_str(),
            when(event.occurred_at),
            event.id
        ), 3000)}]}),
    ];
    let buttons: Vec<Value> = links(event)
        .into_iter()
        .filter(|(_, url)| url.chars().count() <= 3000)
        .map(|(label, url)| {
            let mut b = json!({
                "type": "button",
                "text": {"type": "plain_text", "text": label},
                "action_id": label.to_lowercase().replace(' ', "_"),
                "url": url,
            });
            if label == "Acknowledge" {
                b["style"] = json!("primary");
            }
            b
        })
        .collect();
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    json!({
        // The fallback for notifications and clients that do not show blocks.
        "text": slack_text(&format!("{emoji} {title}"), 3000),
        "blocks": blocks,
    })
}

// --- Microsoft Teams -----------------------------------------------------------------------

/// A Teams Workflows ("Post to a channel when a webhook request is received") message: the
/// Adaptive Card goes in an attachment. Version 1.4 is what Teams renders everywhere.
fn teams(event: &AlertEvent) -> Value {
    let color = match urgency(event.event_type) {
        Urgency::Critical => "Attention",
        Urgency::Warning => "Warning",
        Urgency::Good => "Good",
        Urgency::Info => "Default",
    };
    let facts: Vec<Value> = facts(event)
        .into_iter()
        .map(|(title, value)| json!({"title": title, "value": value}))
        .collect();
    let actions: Vec<Value> = links(event)
        .into_iter()
        .map(|(title, url)| json!({"type": "Action.OpenUrl", "title": title, "url": url}))
        .collect();
    let card = json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": event.title(), "weight": "Bolder", "size": "Medium", "color": color, "wrap": true},
            {"type": "TextBlock", "text": event.summary(), "wrap": true},
            {"type": "FactSet", "facts": facts},
            {"type": "TextBlock", "text": format!("{} · {}", event.event_type.as_str(), when(event.occurred_at)), "isSubtle": true, "size": "Small", "wrap": true},
        ],
        "actions": actions,
    });
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

// --- PagerDuty -----------------------------------------------------------------------------

/// Events API v2 bodies. An episode is one PagerDuty alert: its id is the `dedup_key`, so the
/// opening trigger, reminders and escalations land on the same alert (PagerDuty de-duplicates
/// triggers) and the recovery resolves it. A `test` triggers an info alert under its own id
/// and resolves it right away.
fn pagerduty(routing_key: &str, event: &AlertEvent) -> Vec<Value> {
    let dedup_key = match (&event.episode, event.event_type) {
        (Some(e), t) if t != EventType::Test => e.id.to_string(),
        _ => event.id.to_string(),
    };
    let resolve = json!({
        "routing_key": routing_key,
        "event_action": "resolve",
        "dedup_key": dedup_key,
    });
    if event.event_type.is_recovery() {
        return vec![resolve];
    }
    let severity = match urgency(event.event_type) {
        Urgency::Critical => "critical",
        Urgency::Warning => "warning",
        Urgency::Good | Urgency::Info => "info",
    };
    let summary = match event.license {
        Some(_) => format!("{} - {}", event.title(), event.summary()),
        None => event.title(),
    };
    let mut payload = json!({
        "summary": cut(&summary, 1024),
        "source": event.license.as_ref().map_or("streamwatch", |l| l.key.as_str()),
        "severity": severity,
        "timestamp": event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "group": event.tenant.name,
        "class": event.event_type.as_str(),
        // The whole event, so PagerDuty rules and responders see every field.
        "custom_details": serde_json::to_value(event).unwrap_or(Value::Null),
    });
    if let Some(l) = &event.license {
        payload["component"] = json!(l.name);
    }
    let mut trigger = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": payload,
        "client": "streamwatch",
        "links": links(event)
            .into_iter()
            .map(|(text, href)| json!({"href": href, "text": text}))
            .collect::<Vec<_>>(),
    });
    if let Some(l) = &event.license {
        trigger["client_url"] = json!(l.url);
    }
    if event.event_type == EventType::Test {
        vec![trigger, resolve]
    } else {
        vec![trigger]
    }
}

// --- ntfy ----------------------------------------------------------------------------------

/// Splits a channel's ntfy URL (`https://ntfy.example/alerts`, or with a path prefix for a
/// server behind a reverse proxy: `https://example.com/ntfy/alerts`) into the server root
/// that takes JSON publishes (`https://ntfy.example/`) and the topic (`alerts`).
pub fn split_ntfy_url(url: &str) -> Option<(String, String)> {
    let mut parsed = reqwest::Url::parse(url).ok()?;
    let mut segments: Vec<String> = parsed
        .path_segments()?
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let topic = segments.pop()?;
    let prefix = segments.join("/");
    parsed.set_path(&if prefix.is_empty() {
        "/".to_owned()
    } else {
        format!("/{prefix}/")
    });
    parsed.set_query(None);
    parsed.set_fragment(None);
    Some((parsed.to_string(), topic))
}

/// ntfy's JSON publish. Priorities: 5 (max) wakes people for an outage, 4 for reminders and
/// camera problems, 3 (default) for good news and tests. Tags that are emoji short codes show
/// as emoji before the title.
fn ntfy(topic: &str, event: &AlertEvent) -> Value {
    let (priority, tag) = match event.event_type {
        EventType::Inactive | EventType::Escalated => (5, "rotating_light"),
        EventType::Reminder | EventType::Partial => (4, "warning"),
        EventType::Recovered | EventType::PartialRecovered => (3, "white_check_mark"),
        EventType::Test => (3, "test_tube"),
    };
    let mut body = json!({
        "topic": topic,
        "title": cut(&event.title(), 250),
        // ntfy turns messages over 4096 bytes into attachments.
        "message": cut(&event.summary(), 1000),
        "priority": priority,
        "tags": [tag, "streamwatch"],
    });
    if let Some(l) = &event.license {
        body["click"] = json!(l.url);
    }
    if let Some(a) = &event.acknowledge_url {
        body["actions"] =
            json!([{"action": "view", "label": "Acknowledge", "url": a, "clear": true}]);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert_event::{EventCamera, EventEpisode, EventLicense, EventTenant};
    use chrono::TimeZone;
    use uuid::Uuid;

    fn event(t: EventType) -> AlertEvent {
        let at = chrono::Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
        let test = t == EventType::Test;
        AlertEvent {
            id: Uuid::from_u128(1),
            event_type: t,
            occurred_at: at,
            tenant: EventTenant {
                id: Uuid::from_u128(2),
                name: "Acme & Sons".into(),
            },
            license: (!test).then(|| EventLicense {
                id: Uuid::from_u128(3),
                key: "LIC-0001".into(),
                name: "Lobby <!channel> & co".into(),
                status: "inactive".into(),
                url: "https://sw.example/licenses/3/status".into(),
            }),
            episode: (!test).then(|| EventEpisode {
                id: Uuid::from_u128(4),
                kind: "inactive".into(),
                opened_at: at,
                acknowledged_at: None,
            }),
            last_activity_at: (!test).then_some(at - chrono::Duration::hours(1)),
            cameras: vec![EventCamera {
                camera_id: "cam-1".into(),
                state: "down".into(),
                reason: Some("no frames".into()),
                snapshot_url: Some("https://sw.example/licenses/l1/cameras/cam-1/snapshot".into()),
            }],
            acknowledge_url: (!test && !t.is_recovery())
                .then(|| "https://sw.example/ack?token=t0k".into()),
        }
    }

    fn webhook_config(secret: Option<&str>) -> ChannelConfig {
        ChannelConfig::Webhook {
            url: "https://hooks.example/x".into(),
            secret: secret.map(str::to_owned),
        }
    }

    fn pd() -> ChannelConfig {
        ChannelConfig::Pagerduty {
            routing_key: "R0123456789abcdef0123456789abcde".into(),
            events_url: None,
        }
    }

    fn one(config: &ChannelConfig, e: &AlertEvent) -> Request {
        let mut r = build(config, e, 1_700_000_000).unwrap();
        assert_eq!(r.len(), 1);
        r.remove(0)
    }

    #[test]
    fn every_request_names_the_event_and_the_sender() {
        let e = event(EventType::Inactive);
        for config in [
            webhook_config(None),
            ChannelConfig::Slack {
                webhook_url: "https://hooks.slack.example/T/B/X".into(),
            },
            ChannelConfig::Teams {
                webhook_url: "https://teams.example/wf".into(),
            },
            pd(),
            ChannelConfig::Ntfy {
                url: "https://ntfy.example/alerts".into(),
                token: None,
            },
        ] {
            for r in build(&config, &e, 1).unwrap() {
                assert_eq!(
                    r.header("streamwatch-event-id"),
                    Some(e.id.to_string().as_str())
                );
                assert_eq!(r.header("content-type"), Some("application/json"));
                assert!(r.header("user-agent").unwrap().starts_with("streamwatch/"));
                assert!(r.json().is_object(), "{config:?}");
            }
        }
    }

    #[test]
    fn a_webhook_gets_the_event_as_is_and_a_signature_only_with_a_secret() {
        let e = event(EventType::Inactive);
        let r = one(&webhook_config(None), &e);
        assert_eq!(r.json(), serde_json::to_value(&e).unwrap());
        assert_eq!(r.header(SIGNATURE_HEADER), None);
        let r = one(&webhook_config(Some("whsec")), &e);
        let expected = signature("whsec", 1_700_000_000, &r.body).unwrap();
        assert_eq!(r.header(SIGNATURE_HEADER), Some(expected.as_str()));
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Computed independently: python3 -c 'import hmac,hashlib;
        // print(hmac.new(b"key", b"1700000000.{\"a\":1}", hashlib.sha256).hexdigest())'
        assert_eq!(
            signature("key", 1_700_000_000, br#"{"a":1}"#).unwrap(),
            "t=1700000000,v1=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
    }

    #[test]
    fn slack_escapes_names_and_offers_the_links() {
        let body = one(
            &ChannelConfig::Slack {
                webhook_url: "https://hooks.slack.example/T/B/X".into(),
            },
            &event(EventType::Inactive),
        )
        .json();
        let text = body.to_string();
        assert!(!text.contains("<!channel>"), "{text}");
        assert!(text.contains("Lobby &lt;!channel&gt; &amp; co"), "{text}");
        assert!(text.contains("Acme &amp; Sons"), "{text}");
        let blocks = body["blocks"].as_array().unwrap();
        let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["header", "section", "context", "actions"]);
        let buttons = &blocks[3]["elements"];
        assert_eq!(buttons[0]["url"], "https://sw.example/licenses/3/status");
        assert_eq!(buttons[1]["text"]["text"], "Acknowledge");
        assert_eq!(buttons[1]["url"], "https://sw.example/ack?token=t0k");
        assert_eq!(slack_escape("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(slack_text("ab&cd", 5), "ab…");
        assert_eq!(slack_text("ab&cd", 8), "ab&amp;…");
        assert_eq!(slack_text("ab&cd", 9), "ab&amp;cd");
    }

    #[test]
    fn slack_has_no_buttons_without_links_and_cuts_long_headers() {
        let mut e = event(EventType::Test);
        e.tenant.name = "x".repeat(5000);
        let body = one(
            &ChannelConfig::Slack {
                webhook_url: "https://hooks.slack.example/T/B/X".into(),
            },
            &e,
        )
        .json();
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.iter().all(|b| b["type"] != "actions"));
        let mut long = event(EventType::Inactive);
        long.license.as_mut().unwrap().name = "n".repeat(400);
        let body = one(
            &ChannelConfig::Slack {
                webhook_url: "https://hooks.slack.example/T/B/X".into(),
            },
            &long,
        )
        .json();
        assert_eq!(
            body["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            150
        );
    }

    #[test]
    fn pagerduty_triggers_problems_under_the_episode_and_resolves_recoveries() {
        for (t, severity) in [
            (EventType::Inactive, "critical"),
            (EventType::Escalated, "critical"),
            (EventType::Reminder, "warning"),
            (EventType::Partial, "warning"),
        ] {
            let body = one(&pd(), &event(t)).json();
            assert_eq!(body["event_action"], "trigger");
            assert_eq!(body["dedup_key"], Uuid::from_u128(4).to_string());
            assert_eq!(body["payload"]["severity"], severity, "{t:?}");
            assert_eq!(body["payload"]["custom_details"]["type"], t.as_str());
            assert!(body["payload"]["summary"].as_str().unwrap().chars().count() <= 1024);
        }
        for t in [EventType::Recovered, EventType::PartialRecovered] {
            let body = one(&pd(), &event(t)).json();
            assert_eq!(
                body,
                json!({
                    "routing_key": "R0123456789abcdef0123456789abcde",
                    "event_action": "resolve",
                    "dedup_key": Uuid::from_u128(4).to_string(),
                })
            );
        }
        let r = one(&pd(), &event(EventType::Inactive));
        assert_eq!(r.url, crate::domain::channel::PAGERDUTY_EVENTS_URL);
    }

    #[test]
    fn a_pagerduty_test_triggers_and_resolves_its_own_alert() {
        let e = event(EventType::Test);
        let r = build(&pd(), &e, 1).unwrap();
        assert_eq!(r.len(), 2);
        let (trigger, resolve) = (r[0].json(), r[1].json());
        assert_eq!(trigger["event_action"], "trigger");
        assert_eq!(trigger["payload"]["severity"], "info");
        assert_eq!(trigger["dedup_key"], e.id.to_string());
        assert_eq!(resolve["event_action"], "resolve");
        assert_eq!(resolve["dedup_key"], e.id.to_string());
    }

    #[test]
    fn a_long_summary_is_cut_to_pagerdutys_limit() {
        let mut e = event(EventType::Partial);
        e.cameras = (0..200)
            .map(|i| EventCamera {
                camera_id: format!("camera-{i:04}"),
                state: "down".into(),
                reason: Some("no frames for a long while".into()),
                snapshot_url: None,
            })
            .collect();
        let body = one(&pd(), &e).json();
        assert_eq!(
            body["payload"]["summary"].as_str().unwrap().chars().count(),
            1024
        );
    }

    #[test]
    fn ntfy_publishes_to_the_server_root_with_topic_priority_and_token() {
        assert_eq!(
            split_ntfy_url("https://ntfy.example/alerts"),
            Some(("https://ntfy.example/".into(), "alerts".into()))
        );
        assert_eq!(
            split_ntfy_url("https://example.com:8443/ntfy/alerts/?x=1"),
            Some(("https://example.com:8443/ntfy/".into(), "alerts".into()))
        );
        assert_eq!(split_ntfy_url("https://ntfy.example/"), None);
        let config = ChannelConfig::Ntfy {
            url: "https://ntfy.example/alerts".into(),
            token: Some("tk_abc".into()),
        };
        for (t, priority) in [
            (EventType::Inactive, 5),
            (EventType::Escalated, 5),
            (EventType::Reminder, 4),
            (EventType::Partial, 4),
            (EventType::Recovered, 3),
            (EventType::Test, 3),
        ] {
            let r = one(&config, &event(t));
            assert_eq!(r.url, "https://ntfy.example/");
            assert_eq!(r.header("authorization"), Some("Bearer tk_abc"));
            let body = r.json();
            assert_eq!(body["topic"], "alerts");
            assert_eq!(body["priority"], priority, "{t:?}");
        }
        let body = one(&config, &event(EventType::Inactive)).json();
        assert_eq!(body["click"], "https://sw.example/licenses/3/status");
        assert_eq!(
            body["actions"][0]["url"],
            "https://sw.example/ack?token=t0k"
        );
        assert_eq!(body["tags"][0], "rotating_light");
        let body = one(&config, &event(EventType::Recovered)).json();
        assert!(body.get("actions").is_none());
        assert_eq!(body["tags"][0], "white_check_mark");
    }

    #[test]
    fn teams_gets_an_adaptive_card_with_facts_and_actions() {
        let body = one(
            &ChannelConfig::Teams {
                webhook_url: "https://teams.example/wf".into(),
            },
            &event(EventType::Escalated),
        )
        .json();
        let card = &body["attachments"][0]["content"];
        assert_eq!(
            body["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["version"], "1.4");
        assert_eq!(card["body"][0]["color"], "Attention");
        assert_eq!(
            card["actions"][1]["url"],
            "https://sw.example/ack?token=t0k"
        );
    }

    #[test]
    fn an_email_channel_is_not_an_http_request() {
        let config = ChannelConfig::Email { recipients: vec![] };
        assert!(build(&config, &event(EventType::Inactive), 1).is_err());
    }
}
