//! Alert channels (SPEC section 5a) through the API: create, read, list, change and delete,
//! each kind's checks with their pointers, the outbound rules on save, secrets that never come
//! back, roles and tenants, the routing clean-up on delete, and the test send.

use crate::{helpers::*, smtp::SmtpServer};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

const CHANNELS: &str = "/api/v1/channels";

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

fn path(channel: &Value) -> String {
    format!("{CHANNELS}/{}", id(channel))
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app.post(CHANNELS, token, body).await;
    r.assert_status(201);
    r.body
}

async fn webhook(app: &TestApp, token: &str, name: &str) -> Value {
    create(
        app,
        token,
        json!({"name": name, "kind": "webhook", "config": {"url": "https://93.184.216.34/hook"}}),
    )
    .await
}

/// The stored config of a channel, secrets included (read as the database owner).
async fn stored(app: &TestApp, channel_id: &str) -> Value {
    sqlx::query_scalar::<_, Value>("SELECT config FROM channels WHERE id = $1")
        .bind(Uuid::parse_str(channel_id).unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn test_send(app: &TestApp, token: &str, channel: &Value) -> TestResponse {
    app.request(
        Method::POST,
        &format!("{}/test", path(channel)),
        Some(token),
        None,
    )
    .await
}

#[sqlx::test]
async fn a_channel_is_created_read_listed_changed_and_deleted_and_its_secrets_never_come_back(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let secret = "whsec-very-secret-0123";
    let r = app
        .post(
            CHANNELS,
            &owner,
            json!({"name": "Ops hook", "kind": "webhook",
                   "config": {"url": "https://93.184.216.34/hook/private-path?key=abc", "secret": secret}}),
        )
        .await;
    r.assert_status(201);
    let channel = r.body.clone();
    assert_eq!(channel["name"], "Ops hook");
    assert_eq!(channel["kind"], "webhook");
    assert_eq!(
        channel["config"],
        json!({"url": "https://93.184.216.34/[redacted]", "secret": "[redacted]"})
    );
    assert!(channel["created_at"].is_string() && channel["updated_at"].is_string());
    let mut answers = vec![r.text];

    let got = app.get(&path(&channel), &owner).await;
    got.assert_status(200);
    assert_eq!(got.body, channel);
    answers.push(got.text);
    let list = app.get(CHANNELS, &owner).await;
    list.assert_status(200);
    assert_eq!(list.body["items"], json!([channel]));
    assert_eq!(list.body["next_cursor"], Value::Null);
    answers.push(list.text);

    // A new name keeps the config; a new URL (with the secret left out, or echoed as
    // "[redacted]") keeps the secret.
    let renamed = app
        .patch(&path(&channel), &owner, json!({"name": "Ops hook 2"}))
        .await;
    renamed.assert_status(200);
    assert_eq!(renamed.body["name"], "Ops hook 2");
    answers.push(renamed.text);
    let moved = app
        .patch(
            &path(&channel),
            &owner,
            json!({"config": {"url": "https://93.184.216.35/v2", "secret": "[redacted]"}}),
        )
        .await;
    moved.assert_status(200);
    answers.push(moved.text);
    assert_eq!(
        stored(&app, id(&channel)).await,
        json!({"url": "https://93.184.216.35/v2", "secret": secret})
    );
    let kept = app
        .patch(
            &path(&channel),
            &owner,
            json!({"kind": "webhook", "config": {}}),
        )
        .await;
    kept.assert_status(200);
    answers.push(kept.text);
    assert_eq!(stored(&app, id(&channel)).await["secret"], secret);
    // null removes the secret.
    let unsigned = app
        .patch(&path(&channel), &owner, json!({"config": {"secret": null}}))
        .await;
    unsigned.assert_status(200);
    assert_eq!(unsigned.body["config"]["secret"], Value::Null);

    for text in &answers {
        assert!(!text.contains(secret), "a secret came back: {text}");
        assert!(
            !text.contains("private-path"),
            "a URL path came back: {text}"
        );
        assert!(!text.contains("key=abc"), "a URL query came back: {text}");
    }

    app.delete(&path(&channel), &owner).await.assert_status(204);
    app.get(&path(&channel), &owner).await.assert_problem(404);
    app.delete(&path(&channel), &owner)
        .await
        .assert_problem(404);
    assert_eq!(app.count("channels").await, 0);
}

#[sqlx::test]
async fn secrets_of_every_kind_are_redacted_in_every_answer(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let cases = [
        (
            "slack",
            json!({"webhook_url": "https://93.184.216.34/services/T000/B000/slacksecret"}),
            "slacksecret",
        ),
        (
            "teams",
            json!({"webhook_url": "https://93.184.216.34/workflows/teamssecret"}),
            "teamssecret",
        ),
        (
            "pagerduty",
            json!({"routing_key": "R0123456789abcdefPDSECRET"}),
            "PDSECRET",
        ),
        (
            "ntfy",
            json!({"url": "https://93.184.216.34/topic", "token": "tk_ntfysecret"}),
            "ntfysecret",
        ),
    ];
    for (kind, config, secret) in cases.clone() {
        let r = app
            .post(
                CHANNELS,
                &owner,
                json!({"name": kind, "kind": kind, "config": config}),
            )
            .await;
        r.assert_status(201);
        assert!(!r.text.contains(secret), "{kind}: {}", r.text);
        let got = app.get(&path(&r.body), &owner).await;
        assert!(!got.text.contains(secret), "{kind}: {}", got.text);
        let renamed = app
            .patch(&path(&r.body), &owner, json!({"name": format!("{kind} 2")}))
            .await;
        renamed.assert_status(200);
        assert!(!renamed.text.contains(secret), "{kind}: {}", renamed.text);
        assert!(
            stored(&app, id(&r.body)).await.to_string().contains(secret),
            "{kind}: the secret is kept"
        );
    }
    let list = app.get(CHANNELS, &owner).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 4);
    for (_, _, secret) in cases {
        assert!(!list.text.contains(secret), "{}", list.text);
    }
    // An e-mail channel's addresses are not secret.
    let email = create(
        &app,
        &owner,
        json!({"name": "On call", "kind": "email", "config": {"recipients": ["oncall@acme.test"]}}),
    )
    .await;
    assert_eq!(email["config"], json!({"recipients": ["oncall@acme.test"]}));
}

#[sqlx::test]
async fn invalid_channels_are_refused_with_a_pointer_to_each_problem_and_nothing_is_saved(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let long = "n".repeat(201);
    let cases: Vec<(Value, Vec<&str>, &str)> = vec![
        (
            json!({"name": "", "kind": "email", "config": {"recipients": ["a@x.test"]}}),
            vec!["/name"],
            "empty name",
        ),
        (
            json!({"name": long, "kind": "email", "config": {"recipients": ["a@x.test"]}}),
            vec!["/name"],
            "name over 200 characters",
        ),
        (
            json!({"name": "n", "kind": "sms", "config": {}}),
            vec!["/kind"],
            "unknown kind",
        ),
        (
            json!({"name": "n", "kind": "email", "config": []}),
            vec!["/config"],
            "config not an object",
        ),
        (
            json!({"name": "n", "kind": "email", "config": {"recipients": []}}),
            vec!["/config/recipients"],
            "no recipients",
        ),
        (
            json!({"name": "n", "kind": "email", "config": {"recipients": ["ok@x.test", "nope"]}}),
            vec!["/config/recipients/1"],
            "a bad address",
        ),
        (
            json!({"name": "n", "kind": "webhook", "config": {}}),
            vec!["/config/url"],
            "webhook without url",
        ),
        (
            json!({"name": "n", "kind": "webhook", "config": {"url": "https://93.184.216.34/h", "extra": 1}}),
            vec!["/config/extra"],
            "a setting the kind does not take",
        ),
        (
            json!({"name": "n", "kind": "webhook", "config": {"url": "https://93.184.216.34/h", "secret": 7}}),
            vec!["/config/secret"],
            "secret not a string",
        ),
        (
            json!({"name": "n", "kind": "slack", "config": {"webhook_url": "not a url"}}),
            vec!["/config/webhook_url"],
            "slack url not a URL",
        ),
        (
            json!({"name": "n", "kind": "teams", "config": {}}),
            vec!["/config/webhook_url"],
            "teams without url",
        ),
        (
            json!({"name": "n", "kind": "pagerduty", "config": {"routing_key": "not a key!"}}),
            vec!["/config/routing_key"],
            "pagerduty key with other characters",
        ),
        (
            json!({"name": "n", "kind": "pagerduty", "config": {"routing_key": "abc", "events_url": "http://93.184.216.34/e"}}),
            vec!["/config/events_url"],
            "pagerduty events_url over http",
        ),
        (
            json!({"name": "n", "kind": "ntfy", "config": {"url": "https://93.184.216.34"}}),
            vec!["/config/url"],
            "ntfy url without a topic",
        ),
        (
            json!({"name": "", "kind": "webhook", "config": {"url": "https://10.0.0.1/h"}}),
            vec!["/name", "/config/url"],
            "every problem at once",
        ),
    ];
    for (body, pointers, why) in cases {
        let r = app.post(CHANNELS, &owner, body).await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), pointers, "{why}: {}", r.text);
    }
    assert_eq!(app.count("channels").await, 0);
}

#[sqlx::test]
async fn a_target_url_must_be_https_and_public_unless_private_targets_are_allowed(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let owner = app.create_tenant("acme").await.owner_token;
    for (url, why) in [
        ("https://127.0.0.1/x", "loopback"),
        ("https://10.0.0.1/", "private"),
        ("https://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("https://[::1]/x", "IPv6 loopback"),
        ("https://100.64.0.1/x", "CGNAT"),
        ("http://93.184.216.34/hook", "plain http"),
    ] {
        let r = app
            .post(
                CHANNELS,
                &owner,
                json!({"name": why, "kind": "webhook", "config": {"url": url}}),
            )
            .await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), ["/config/url"], "{why}: {}", r.text);
        let message = r.body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("https") || message.contains("public"),
            "{why}: the message says what is allowed: {message}"
        );
    }
    // Each kind's URL field is checked.
    for (kind, config, pointer) in [
        (
            "slack",
            json!({"webhook_url": "https://192.168.1.1/x"}),
            "/config/webhook_url",
        ),
        (
            "ntfy",
            json!({"url": "https://127.0.0.1/topic"}),
            "/config/url",
        ),
        (
            "pagerduty",
            json!({"routing_key": "abc", "events_url": "https://10.1.1.1/e"}),
            "/config/events_url",
        ),
    ] {
        let r = app
            .post(
                CHANNELS,
                &owner,
                json!({"name": kind, "kind": kind, "config": config}),
            )
            .await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), [pointer], "{kind}: {}", r.text);
    }
    assert_eq!(app.count("channels").await, 0);
    let public = webhook(&app, &owner, "Public").await;
    assert_eq!(public["config"]["url"], "https://93.184.216.34/[redacted]");
    // A change is checked like a create.
    let r = app
        .patch(
            &path(&public),
            &owner,
            json!({"config": {"url": "https://169.254.169.254/"}}),
        )
        .await;
    r.assert_problem(422);
    assert_eq!(r.pointers(), ["/config/url"]);
    assert_eq!(
        stored(&app, id(&public)).await["url"],
        "https://93.184.216.34/hook"
    );

    // An on-premises install that allows private targets takes them, plain http too.
    let onprem = TestApp::spawn_with(pool, |s| s.channels.allow_private_targets = true).await;
    let owner2 = onprem.login("owner@acme.test", PASSWORD).await;
    for url in ["http://127.0.0.1:9/x", "https://10.0.0.1/"] {
        onprem
            .post(
                CHANNELS,
                &owner2,
                json!({"name": url, "kind": "webhook", "config": {"url": url}}),
            )
            .await
            .assert_status(201);
    }
}

#[sqlx::test]
async fn a_name_is_unique_in_its_tenant_and_a_kind_never_changes(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await.owner_token;
    let globex = app.create_tenant("globex").await.owner_token;
    let first = webhook(&app, &acme, "Ops").await;
    let r = app
        .post(
            CHANNELS,
            &acme,
            json!({"name": " Ops ", "kind": "email", "config": {"recipients": ["a@x.test"]}}),
        )
        .await;
    r.assert_problem(422);
    assert_eq!(r.pointers(), ["/name"], "{}", r.text);
    webhook(&app, &globex, "Ops").await;
    let second = webhook(&app, &acme, "Dev").await;
    let r = app
        .patch(&path(&second), &acme, json!({"name": "Ops"}))
        .await;
    r.assert_problem(422);
    assert_eq!(r.pointers(), ["/name"]);
    // Renaming a channel to its own name is no conflict.
    app.patch(&path(&first), &acme, json!({"name": "Ops"}))
        .await
        .assert_status(200);

    let r = app
        .patch(&path(&first), &acme, json!({"kind": "slack"}))
        .await;
    r.assert_problem(422);
    assert_eq!(r.pointers(), ["/kind"]);
    let r = app
        .patch(&path(&first), &acme, json!({"config": "x"}))
        .await;
    r.assert_problem(422);
    assert_eq!(r.pointers(), ["/config"]);
    let r = app
        .patch(&path(&first), &acme, json!({"config": {"url": ""}}))
        .await;
    r.assert_problem(422);
    assert_eq!(r.pointers(), ["/config/url"]);
    assert_eq!(app.get(&path(&first), &acme).await.body["kind"], "webhook");
}

#[sqlx::test]
async fn another_tenants_channel_is_not_found_and_a_viewer_may_only_read(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await.owner_token;
    let globex = app.create_tenant("globex").await.owner_token;
    let channel = webhook(&app, &acme, "Ops").await;
    app.get(&path(&channel), &globex).await.assert_problem(404);
    app.patch(&path(&channel), &globex, json!({"name": "mine"}))
        .await
        .assert_problem(404);
    app.delete(&path(&channel), &globex)
        .await
        .assert_problem(404);
    test_send(&app, &globex, &channel).await.assert_problem(404);
    assert_eq!(app.get(CHANNELS, &globex).await.body["items"], json!([]));
    app.get(&format!("{CHANNELS}/{}", Uuid::now_v7()), &acme)
        .await
        .assert_problem(404);

    let (_, viewer) = app.create_user(&acme, "viewer@acme.test", "viewer").await;
    app.get(CHANNELS, &viewer).await.assert_status(200);
    app.get(&path(&channel), &viewer).await.assert_status(200);
    app.post(
        CHANNELS,
        &viewer,
        json!({"name": "v", "kind": "email", "config": {"recipients": ["a@x.test"]}}),
    )
    .await
    .assert_problem(403);
    app.patch(&path(&channel), &viewer, json!({"name": "v"}))
        .await
        .assert_problem(403);
    app.delete(&path(&channel), &viewer)
        .await
        .assert_problem(403);
    test_send(&app, &viewer, &channel).await.assert_problem(403);
    let (_, admin) = app.create_user(&acme, "admin@acme.test", "admin").await;
    webhook(&app, &admin, "By an admin").await;
    assert_eq!(app.count("channels").await, 2);
}

/// Sets a license's routing columns directly (the settings API may not take them yet).
async fn route(
    app: &TestApp,
    license_id: &str,
    enabled: bool,
    recipients: &[&str],
    channels: &[&str],
    escalation: Value,
) {
    let channels: Vec<Uuid> = channels
        .iter()
        .map(|c| Uuid::parse_str(c).unwrap())
        .collect();
    let recipients: Vec<String> = recipients.iter().map(|r| (*r).to_owned()).collect();
    sqlx::query(
        "INSERT INTO notification_settings (tenant_id, license_id, enabled, recipients, channels, escalation)
         SELECT tenant_id, id, $2, $3, $4, $5 FROM licenses WHERE id = $1
         ON CONFLICT (tenant_id, license_id) DO UPDATE
            SET enabled = $2, recipients = $3, channels = $4, escalation = $5",
    )
    .bind(Uuid::parse_str(license_id).unwrap())
    .bind(enabled)
    .bind(recipients)
    .bind(channels)
    .bind(escalation)
    .execute(&app.pool)
    .await
    .unwrap();
}

/// A license's (channels, escalation) as stored.
async fn routing(app: &TestApp, license_id: &str) -> (Vec<String>, Value) {
    let (channels, escalation): (Vec<Uuid>, Value) = sqlx::query_as(
        "SELECT channels, escalation FROM notification_settings WHERE license_id = $1",
    )
    .bind(Uuid::parse_str(license_id).unwrap())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    (channels.iter().map(Uuid::to_string).collect(), escalation)
}

#[sqlx::test]
async fn deleting_a_channel_removes_it_from_every_licenses_channels_and_escalation_steps(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let (a, b) = (
        webhook(&app, &owner, "A").await,
        webhook(&app, &owner, "B").await,
    );
    let (a, b) = (id(&a).to_owned(), id(&b).to_owned());
    let one = app.create_license(&owner, "L1").await;
    let two = app.create_license(&owner, "L2").await;
    route(
        &app,
        id(&one),
        true,
        &[],
        &[&a, &b],
        json!([{"after_seconds": 3600, "channels": [a]},
               {"after_seconds": 7200, "channels": [b, a]},
               {"after_seconds": 14400, "channels": [b]}]),
    )
    .await;
    // Disabled, with the channel as its only target: nothing to protect.
    route(&app, id(&two), false, &[], &[&a], json!([])).await;

    app.delete(&format!("{CHANNELS}/{a}"), &owner)
        .await
        .assert_status(204);
    assert_eq!(
        routing(&app, id(&one)).await,
        (
            vec![b.clone()],
            json!([{"after_seconds": 7200, "channels": [b]},
                   {"after_seconds": 14400, "channels": [b]}])
        ),
        "the step left without channels is dropped, the others keep their order"
    );
    assert_eq!(routing(&app, id(&two)).await, (vec![], json!([])));
    assert_eq!(app.count("channels").await, 1);
}

#[sqlx::test]
async fn deleting_the_only_target_of_an_enabled_license_is_refused_and_changes_nothing(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let channel = webhook(&app, &owner, "Only").await;
    let other = webhook(&app, &owner, "Other").await;
    let c = id(&channel).to_owned();
    let lonely = app
        .create_license_with(
            &owner,
            json!({"key": "DEPOT-7", "name": "Depot 7", "kind": "direct", "check_interval_seconds": 600}),
        )
        .await;
    let covered = app.create_license(&owner, "L2").await;
    let escalation = json!([{"after_seconds": 3600, "channels": [c]}]);
    route(&app, id(&lonely), true, &[], &[&c], escalation.clone()).await;
    // Other targets remain for this one: alone it would not block the delete.
    route(
        &app,
        id(&covered),
        true,
        &["ops@acme.test"],
        &[&c],
        escalation.clone(),
    )
    .await;
    let before = app.rows("notification_settings").await;

    let r = app.delete(&path(&channel), &owner).await;
    r.assert_problem(409);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("DEPOT-7") && detail.contains("Depot 7"),
        "{detail}"
    );
    assert!(!detail.contains("L2"), "{detail}");
    assert_eq!(app.rows("notification_settings").await, before);
    assert_eq!(app.count("channels").await, 2);

    // Once the license has another channel, the delete goes through.
    route(&app, id(&lonely), true, &[], &[&c, id(&other)], escalation).await;
    app.delete(&path(&channel), &owner).await.assert_status(204);
    assert_eq!(
        routing(&app, id(&lonely)).await,
        (vec![id(&other).to_owned()], json!([]))
    );
}

#[sqlx::test]
async fn a_test_send_of_an_email_channel_mails_each_recipient_and_answers_delivered(pool: PgPool) {
    let mut smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_with(pool, |s| s.smtp.url = Some(url.into())).await;
    let owner = app.create_tenant("acme").await.owner_token;
    let channel = create(
        &app,
        &owner,
        json!({"name": "On call", "kind": "email",
               "config": {"recipients": ["first@acme.test", "second@acme.test"]}}),
    )
    .await;
    let r = test_send(&app, &owner, &channel).await;
    r.assert_status(200);
    assert_eq!(
        r.body,
        json!({"outcome": "delivered", "status": null, "error": null})
    );
    let mails = smtp.messages();
    let mut to: Vec<&str> = mails.iter().map(|m| m.rcpt_to.as_str()).collect();
    to.sort_unstable();
    assert_eq!(to, ["first@acme.test", "second@acme.test"]);
    for m in &mails {
        assert_eq!(m.subject, "streamwatch test alert");
        assert!(m.text.contains("acme"), "names the tenant: {}", m.text);
    }
    // Nothing goes through the outbox: a test is not a notification.
    assert_eq!(app.count("notification_outbox").await, 0);

    // With the SMTP server down, the test still answers 200, with the failure.
    smtp.stop().await;
    let r = test_send(&app, &owner, &channel).await;
    r.assert_status(200);
    assert_eq!(r.body["outcome"], "retry", "{}", r.text);
    assert!(r.body["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(r.body["status"], Value::Null);
}

#[sqlx::test]
async fn a_test_send_of_an_http_channel_answers_with_its_outcome_and_is_rate_limited_per_tenant(
    pool: PgPool,
) {
    let app = TestApp::spawn_with(pool, |s| s.channels.allow_private_targets = true).await;
    let acme = app.create_tenant("acme").await.owner_token;
    let globex = app.create_tenant("globex").await.owner_token;
    // Nothing listens there: the delivery fails, the test request does not.
    let nowhere = format!("http://127.0.0.1:{}/hook", free_port());
    let body = json!({"name": "Nowhere", "kind": "webhook", "config": {"url": nowhere}});
    let channel = create(&app, &acme, body.clone()).await;
    let r = test_send(&app, &acme, &channel).await;
    r.assert_status(200);
    assert_ne!(r.body["outcome"], "delivered", "{}", r.text);
    assert!(r.body["error"].as_str().is_some_and(|e| !e.is_empty()));

    for _ in 1..10 {
        test_send(&app, &acme, &channel).await.assert_status(200);
    }
    let r = test_send(&app, &acme, &channel).await;
    r.assert_problem(429);
    assert!(r.header("retry-after").is_some());
    // Another tenant has its own allowance.
    let theirs = create(&app, &globex, body).await;
    test_send(&app, &globex, &theirs).await.assert_status(200);
}
