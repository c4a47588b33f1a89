//! The outbound client of alert channels (SPEC section 5a) against a real HTTP receiver
//! process (`tests/receiver.py`): what each kind sends (checked against JSON Schemas written
//! from the providers' documentation), the webhook signature (checked by Python's `hmac`),
//! how answers map to outcomes, and the SSRF guard.

use crate::receiver::Receiver;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use std::time::Duration;
use streamwatch::{
    domain::{
        alert_event::{
            AlertEvent, EventCamera, EventEpisode, EventLicense, EventTenant, EventType,
        },
        channel::ChannelConfig,
    },
    notify::outbound::{Outbound, Outcome},
};
use uuid::Uuid;

const ROUTING_KEY: &str = "R0123456789abcdef0123456789abcde";

fn event(t: EventType) -> AlertEvent {
    let at = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
    let test = t == EventType::Test;
    AlertEvent {
        id: Uuid::now_v7(),
        event_type: t,
        occurred_at: at,
        tenant: EventTenant {
            id: Uuid::now_v7(),
            name: "Acme <Ops> & Sons".into(),
        },
        license: (!test).then(|| EventLicense {
            id: Uuid::now_v7(),
            key: "LIC-0001".into(),
            name: "Lobby <!channel>".into(),
            status: if t.is_recovery() {
                "all_active"
            } else if t == EventType::Partial {
                "partially_active"
            } else {
                "inactive"
            }
            .into(),
            url: "https://sw.example/licenses/1/status".into(),
        }),
        episode: (!test).then(|| EventEpisode {
            id: Uuid::from_u128(7),
            kind: if matches!(t, EventType::Partial | EventType::PartialRecovered) {
                "partial"
            } else {
                "inactive"
            }
            .into(),
            opened_at: at - chrono::Duration::hours(1),
            acknowledged_at: None,
        }),
        last_activity_at: (!test).then_some(at - chrono::Duration::hours(2)),
        cameras: if t == EventType::Partial {
            vec![EventCamera {
                camera_id: "cam-2".into(),
                state: "down".into(),
                reason: Some("no frames for 10 minutes".into()),
                snapshot_url: Some(format!(
                    "https://sw.example/licenses/{}/cameras/cam-2/snapshot",
                    Uuid::nil()
                )),
            }]
        } else {
            vec![]
        },
        acknowledge_url: (!test && !t.is_recovery())
            .then(|| "https://sw.example/acknowledge?token=abc".into()),
    }
}

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/tests/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&doc)
        .unwrap_or_else(|e| panic!("{name} does not compile: {e}"))
}

fn assert_valid(validator: &jsonschema::Validator, name: &str, instance: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{name}: {}\n{instance:#}",
        errors.join("; ")
    );
}

async fn deliver(outbound: &Outbound, config: &ChannelConfig, e: &AlertEvent) -> Outcome {
    outbound.deliver(config, e, Utc::now()).await
}

fn webhook(url: String, secret: Option<&str>) -> ChannelConfig {
    ChannelConfig::Webhook {
        url,
        secret: secret.map(str::to_owned),
    }
}

#[tokio::test]
async fn each_kind_sends_what_its_provider_documents() {
    let rx = Receiver::start().await;
    let out = Outbound::new(true);
    let channels = [
        (
            webhook(rx.url("/webhook"), None),
            "/webhook",
            "alert-event.schema.json",
        ),
        (
            ChannelConfig::Slack {
                webhook_url: rx.url("/services/T000/B000/XXXX"),
            },
            "/services/T000/B000/XXXX",
            "slack-message.schema.json",
        ),
        (
            ChannelConfig::Teams {
                webhook_url: rx.url("/workflows/abc/triggers/manual/paths/invoke?sig=s"),
            },
            "/workflows/abc/triggers/manual/paths/invoke",
            "adaptive-card.schema.json",
        ),
        (
            ChannelConfig::Pagerduty {
                routing_key: ROUTING_KEY.into(),
                events_url: Some(rx.url("/v2/enqueue")),
            },
            "/v2/enqueue",
            "pagerduty-events-v2.schema.json",
        ),
        (
            ChannelConfig::Ntfy {
                url: rx.url("/ntfy/streamwatch-alerts"),
                token: Some("tk_secret".into()),
            },
            // JSON publishing goes to the server root; the topic is in the body.
            "/ntfy/",
            "ntfy-publish.schema.json",
        ),
    ];
    let types = [
        EventType::Inactive,
        EventType::Reminder,
        EventType::Escalated,
        EventType::Recovered,
        EventType::Partial,
        EventType::PartialRecovered,
        EventType::Test,
    ];
    let event_schema = schema("alert-event.schema.json");
    for (config, path, schema_name) in &channels {
        let validator = schema(schema_name);
        for t in types {
            rx.reset().await;
            let e = event(t);
            assert_valid(
                &event_schema,
                "alert-event",
                &serde_json::to_value(&e).unwrap(),
            );
            let outcome = deliver(&out, config, &e).await;
            assert_eq!(
                outcome,
                Outcome::Delivered { status: 200 },
                "{config:?} {t:?}"
            );
            let seen = rx.requests().await;
            // A PagerDuty test is a trigger and a resolve; everything else one request.
            let expected =
                if *schema_name == "pagerduty-events-v2.schema.json" && t == EventType::Test {
                    2
                } else {
                    1
                };
            assert_eq!(seen.len(), expected, "{schema_name} {t:?}: {seen:#?}");
            for r in &seen {
                assert_eq!(r.method, "POST");
                assert_eq!(&r.path, path);
                assert_eq!(r.header("content-type"), Some("application/json"));
                assert_eq!(
                    r.header("streamwatch-event-id"),
                    Some(e.id.to_string().as_str())
                );
                assert!(
                    r.header("user-agent")
                        .is_some_and(|ua| ua.starts_with("streamwatch/")),
                    "{:?}",
                    r.headers
                );
                assert_valid(&validator, &format!("{schema_name} {t:?}"), &r.json);
            }
            match config {
                ChannelConfig::Webhook { .. } => {
                    assert_eq!(seen[0].json, serde_json::to_value(&e).unwrap());
                    assert_eq!(seen[0].header("streamwatch-signature"), None);
                }
                ChannelConfig::Ntfy { .. } => {
                    assert_eq!(seen[0].json["topic"], "streamwatch-alerts");
                    assert_eq!(seen[0].header("authorization"), Some("Bearer tk_secret"));
                }
                ChannelConfig::Teams { .. } => assert_eq!(seen[0].query, "sig=s"),
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn pagerduty_keys_an_episode_by_its_id_and_a_test_resolves_itself() {
    let rx = Receiver::start().await;
    let out = Outbound::new(true);
    let config = ChannelConfig::Pagerduty {
        routing_key: ROUTING_KEY.into(),
        events_url: Some(rx.url("/v2/enqueue")),
    };
    for t in [
        EventType::Inactive,
        EventType::Reminder,
        EventType::Escalated,
        EventType::Recovered,
    ] {
        assert!(matches!(
            deliver(&out, &config, &event(t)).await,
            Outcome::Delivered { .. }
        ));
    }
    let seen = rx.requests().await;
    let actions: Vec<&str> = seen
        .iter()
        .map(|r| r.json["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "trigger", "trigger", "resolve"]);
    let severities: Vec<&str> = seen[..3]
        .iter()
        .map(|r| r.json["payload"]["severity"].as_str().unwrap())
        .collect();
    assert_eq!(severities, ["critical", "warning", "critical"]);
    assert!(
        seen.iter()
            .all(|r| r.json["dedup_key"] == Uuid::from_u128(7).to_string())
    );

    rx.reset().await;
    let test = event(EventType::Test);
    assert_eq!(
        deliver(&out, &config, &test).await,
        Outcome::Delivered { status: 200 }
    );
    let seen = rx.requests().await;
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].json["event_action"], "trigger");
    assert_eq!(seen[0].json["payload"]["severity"], "info");
    assert_eq!(seen[1].json["event_action"], "resolve");
    assert_eq!(seen[0].json["dedup_key"], test.id.to_string());
    assert_eq!(seen[1].json["dedup_key"], test.id.to_string());

    // A failed trigger is the outcome, and no resolve follows it.
    rx.reset().await;
    rx.script(
        "/v2/enqueue",
        json!([{"status": 400, "body": "{\"status\":\"invalid event\"}"}]),
    )
    .await;
    assert!(matches!(
        deliver(&out, &config, &event(EventType::Test)).await,
        Outcome::Failed { .. }
    ));
    assert_eq!(rx.requests().await.len(), 1);
}

#[tokio::test]
async fn a_webhook_signature_verifies_with_an_independent_hmac() {
    let rx = Receiver::start().await;
    let out = Outbound::new(true);
    let secret = "whsec_0123456789";
    let e = event(EventType::Inactive);
    let before = Utc::now().timestamp();
    assert_eq!(
        deliver(&out, &webhook(rx.url("/hook"), Some(secret)), &e).await,
        Outcome::Delivered { status: 200 }
    );
    let after = Utc::now().timestamp();
    let seen = rx.requests_signed(secret).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].signature_valid, Some(true), "{:?}", seen[0].headers);
    let raw: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        raw,
        serde_json::to_value(&e).unwrap(),
        "the signed body is the event"
    );
    // `t` is the real wall clock at sending time.
    let header = seen[0].header("streamwatch-signature").unwrap();
    let t: i64 = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{header}"));
    assert!((before..=after).contains(&t), "{before} <= {t} <= {after}");
    assert!(!header.contains(secret));
    // Another secret does not verify, so the check above is not vacuous.
    let seen = rx.requests_signed("another secret").await;
    assert_eq!(seen[0].signature_valid, Some(false));
}

#[tokio::test]
async fn answers_map_to_delivered_retry_or_failed() {
    let rx = Receiver::start().await;
    let out = Outbound::new(true);
    let secret = "whsec_TOPSECRET";
    // The receiver echoes the secret, the path and the query in its error bodies; none of it
    // may reach the error text (which the API and the UI show).
    let echo = "ECHO";
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/ok", json!([{"status": 200}]), "delivered"),
        ("/accepted", json!([{"status": 202}]), "delivered"),
        (
            "/boom",
            json!([{"status": 500, "body": echo}]),
            "retry: a 5xx is the receiver's problem",
        ),
        (
            "/unavailable",
            json!([{"status": 503}]),
            "retry: a 5xx is the receiver's problem",
        ),
        ("/slow", json!([{"status": 408}]), "retry: 408"),
        (
            "/limited",
            json!([{"status": 429, "headers": {"Retry-After": "3"}}]),
            "retry after 3 s",
        ),
        (
            "/bad",
            json!([{"status": 400, "body": echo}]),
            "failed: another 4xx",
        ),
        ("/gone", json!([{"status": 410}]), "failed: another 4xx"),
        (
            "/unauthorized",
            json!([{"status": 401, "body": echo}]),
            "failed: another 4xx",
        ),
    ];
    for (path, responses, expect) in cases {
        let echoed = format!("bad signature {secret} for {path}/PATHSECRET?token=QUERYSECRET");
        let responses: Value =
            serde_json::from_str(&responses.to_string().replace("ECHO", &echoed)).unwrap();
        rx.script(&format!("{path}/PATHSECRET"), responses).await;
        let url = rx.url(&format!("{path}/PATHSECRET?token=QUERYSECRET"));
        let outcome = deliver(
            &out,
            &webhook(url, Some(secret)),
            &event(EventType::Inactive),
        )
        .await;
        let error = match (&outcome, expect) {
            (Outcome::Delivered { .. }, "delivered") => continue,
            (Outcome::Retry { retry_after, error }, e) if e.starts_with("retry") => {
                let wanted = (e == "retry after 3 s").then_some(Duration::from_secs(3));
                assert_eq!(*retry_after, wanted, "{path}");
                error.clone()
            }
            (Outcome::Failed { error }, e) if e.starts_with("failed") => error.clone(),
            _ => panic!("{path}: expected {expect}, got {outcome:?}"),
        };
        assert!(!rx.requests().await.is_empty(), "{path} was reached");
        for leak in ["PATHSECRET", "QUERYSECRET", secret] {
            assert!(!error.contains(leak), "{path}: {error} shows {leak}");
        }
        assert!(
            error.contains(&format!("http://127.0.0.1:{}", rx.port)),
            "{path}: the error names the origin: {error}"
        );
    }
    // The status and the body's gist are in the error.
    rx.script(
        "/teapot",
        json!([{"status": 418, "body": "short and stout"}]),
    )
    .await;
    let Outcome::Failed { error } = deliver(
        &out,
        &webhook(rx.url("/teapot"), None),
        &event(EventType::Inactive),
    )
    .await
    else {
        panic!("418 fails")
    };
    assert!(error.contains("418"), "{error}");
    assert!(error.contains("short and stout"), "{error}");
}

#[tokio::test]
async fn a_receiver_that_does_not_answer_in_time_is_retried() {
    let rx = Receiver::start().await;
    let out = Outbound::with_timeout(true, Duration::from_secs(1));
    rx.script("/hang", json!([{"hang_seconds": 30}])).await;
    let outcome = deliver(
        &out,
        &webhook(rx.url("/hang"), None),
        &event(EventType::Inactive),
    )
    .await;
    let Outcome::Retry { error, retry_after } = outcome else {
        panic!("a hang retries: {outcome:?}")
    };
    assert_eq!(retry_after, None);
    assert!(error.contains("no answer"), "{error}");
    assert_eq!(rx.requests().await.len(), 1, "the request did arrive");
}

#[tokio::test]
async fn a_connection_error_is_retried_without_showing_the_path() {
    // A port nothing listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Outbound::new(true);
    let outcome = deliver(
        &out,
        &webhook(
            format!("http://127.0.0.1:{port}/p/PATHSECRET?q=QUERYSECRET"),
            None,
        ),
        &event(EventType::Inactive),
    )
    .await;
    let Outcome::Retry { error, .. } = outcome else {
        panic!("a refused connection retries: {outcome:?}")
    };
    assert!(
        !error.contains("PATHSECRET") && !error.contains("QUERYSECRET"),
        "{error}"
    );
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let rx = Receiver::start().await;
    let elsewhere = Receiver::start().await;
    let out = Outbound::new(true);
    rx.script(
        "/moved",
        json!([{"status": 302, "headers": {"Location": elsewhere.url("/internal/PATHSECRET?x=1")}}]),
    )
    .await;
    let outcome = deliver(
        &out,
        &webhook(rx.url("/moved"), None),
        &event(EventType::Inactive),
    )
    .await;
    let Outcome::Failed { error } = outcome else {
        panic!("a redirect fails: {outcome:?}")
    };
    assert!(error.contains("redirect not followed"), "{error}");
    assert!(
        error.contains(&format!("http://127.0.0.1:{}", elsewhere.port)),
        "{error}"
    );
    assert!(!error.contains("PATHSECRET"), "{error}");
    assert_eq!(rx.requests().await.len(), 1);
    assert!(
        elsewhere.requests().await.is_empty(),
        "the target was contacted"
    );
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let rx = Receiver::start().await;
    let out = Outbound::new(false);
    let port = rx.port;
    let refused = [
        format!("https://127.0.0.1:{port}/"),
        format!("http://127.0.0.1:{port}/"),
        "https://10.1.2.3/".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        // A name that resolves to loopback: refused by the resolver check, not the syntax.
        format!("https://localhost:{port}/"),
        // Other spellings of 127.0.0.1 that a URL parser accepts.
        format!("https://2130706433:{port}/"),
        format!("https://[::ffff:127.0.0.1]:{port}/"),
    ];
    for url in &refused {
        let Err(why) = out.check_target(url).await else {
            panic!("check_target accepted {url}")
        };
        assert!(!why.is_empty());
        let outcome = deliver(
            &out,
            &webhook(url.clone(), None),
            &event(EventType::Inactive),
        )
        .await;
        let Outcome::Failed { error } = &outcome else {
            panic!("deliver to {url}: {outcome:?}")
        };
        assert!(error.contains("refused target"), "{url}: {error}");
        assert!(!error.contains("meta-data"), "{error}");
    }
    // Every kind goes through the same guard.
    for config in [
        ChannelConfig::Slack {
            webhook_url: format!("https://localhost:{port}/services/T/B/X"),
        },
        ChannelConfig::Teams {
            webhook_url: format!("https://127.0.0.1:{port}/wf"),
        },
        ChannelConfig::Pagerduty {
            routing_key: ROUTING_KEY.into(),
            events_url: Some(format!("https://localhost:{port}/v2/enqueue")),
        },
        ChannelConfig::Ntfy {
            url: format!("https://localhost:{port}/alerts"),
            token: None,
        },
    ] {
        let outcome = deliver(&out, &config, &event(EventType::Test)).await;
        assert!(
            matches!(&outcome, Outcome::Failed { error } if error.contains("refused target")),
            "{config:?}: {outcome:?}"
        );
    }
    assert!(rx.requests().await.is_empty(), "the receiver was reached");

    // The same receiver with private targets allowed (on-premises installs, tests, demo).
    let allowed = Outbound::new(true);
    for url in [rx.url("/ok"), format!("http://localhost:{port}/ok")] {
        allowed.check_target(&url).await.unwrap();
    }
    assert_eq!(
        deliver(
            &allowed,
            &webhook(rx.url("/ok"), None),
            &event(EventType::Inactive)
        )
        .await,
        Outcome::Delivered { status: 200 }
    );
    assert_eq!(rx.requests().await.len(), 1);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_refused_at_save_time() {
    // `.invalid` never resolves (RFC 6761).
    for allow_private in [false, true] {
        let err = Outbound::new(allow_private)
            .check_target("https://no-such-host.invalid/hook")
            .await
            .unwrap_err();
        assert!(err.contains("no-such-host.invalid"), "{err}");
        assert!(!err.contains("/hook"), "{err}");
    }
}

#[test]
fn the_schemas_reject_what_the_providers_reject() {
    let cases: Vec<(&str, Value)> = vec![
        (
            "slack-message.schema.json",
            json!({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x".repeat(151)}}]}),
        ),
        (
            "slack-message.schema.json",
            json!({"text": "t", "blocks": [{"type": "actions", "elements": [{"type": "button", "text": {"type": "mrkdwn", "text": "*b*"}}]}]}),
        ),
        (
            "adaptive-card.schema.json",
            json!({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard", "body": []}}]}),
        ),
        (
            "pagerduty-events-v2.schema.json",
            json!({"routing_key": ROUTING_KEY, "event_action": "trigger", "payload": {"summary": "s", "source": "x"}}),
        ),
        (
            "pagerduty-events-v2.schema.json",
            json!({"routing_key": "short", "event_action": "resolve", "dedup_key": "k"}),
        ),
        (
            "ntfy-publish.schema.json",
            json!({"topic": "alerts", "priority": 6}),
        ),
        (
            "alert-event.schema.json",
            json!({"id": "x", "type": "license.inactive"}),
        ),
    ];
    for (name, instance) in cases {
        assert!(
            !schema(name).is_valid(&instance),
            "{name} accepted {instance}"
        );
    }
}
