//! Per-license routing (SPEC section 5a): channels, escalation steps and camera-level alerts in
//! the notification settings, over the API and the Setup Notification page; and the channel
//! columns of the notifications list. Channels are inserted with SQL: their CRUD API is not
//! what is tested here.

use crate::{
    helpers::*,
    ui::{Ui, csrf_of},
};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// Inserts a channel of the tenant; returns its id.
pub async fn insert_channel(app: &TestApp, tenant_id: &str, name: &str, kind: &str) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO channels (tenant_id, id, name, kind, config) VALUES ($1::uuid, $2, $3, $4, '{}')",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(name)
    .bind(kind)
    .execute(&app.pool)
    .await
    .unwrap();
    id
}

/// Opens an episode for the license with SQL (as the sweep would); returns its id.
pub async fn insert_episode(app: &TestApp, tenant_id: &str, license_id: &str) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO notification_episodes (tenant_id, id, license_id, baseline_at, opened_at)
         VALUES ($1::uuid, $2, $3::uuid, now() - interval '2 hours', now() - interval '1 hour')",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(license_id)
    .execute(&app.pool)
    .await
    .unwrap();
    id
}

struct Setup {
    app: TestApp,
    tenant: TestTenant,
    license: String,
    /// Webhook, Slack, PagerDuty.
    hook: Uuid,
    slack: Uuid,
    pager: Uuid,
}

async fn setup(pool: PgPool) -> Setup {
    let app = TestApp::spawn(pool).await;
    let tenant = app.create_tenant("acme").await;
    let license = app.create_license(&tenant.owner_token, "LIC-R").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hook = insert_channel(&app, &tenant.id, "Ops webhook", "webhook").await;
    let slack = insert_channel(&app, &tenant.id, "#site-alerts", "slack").await;
    let pager = insert_channel(&app, &tenant.id, "On-call", "pagerduty").await;
    Setup {
        app,
        tenant,
        license,
        hook,
        slack,
        pager,
    }
}

impl Setup {
    async fn put(&self, body: Value) -> TestResponse {
        self.app
            .put_notification_settings(&self.tenant.owner_token, &self.license, body)
            .await
    }

    async fn get(&self) -> Value {
        self.app
            .notification_settings(&self.tenant.owner_token, &self.license)
            .await
    }
}

#[sqlx::test]
async fn routing_is_saved_as_given_shown_by_get_stored_in_its_columns_and_omitted_means_none(
    pool: PgPool,
) {
    let s = setup(pool).await;
    // Channels alone are enough to turn notifications on.
    let body = json!({"enabled": true, "recipients": [], "channels": [s.hook, s.slack],
                      "escalation": [{"after_seconds": 14400, "channels": [s.pager]},
                                     {"after_seconds": 28800, "channels": [s.pager, s.hook]}],
                      "partial": {"enabled": true, "after_seconds": 900}});
    let r = s.put(body).await;
    r.assert_status(200);
    let expected = json!({"enabled": true, "inactivity_interval_seconds": 3600,
        "notification_interval_seconds": 28800, "recipients": [], "notify_on_recovery": true,
        "channels": [s.hook, s.slack],
        "escalation": [{"after_seconds": 14400, "channels": [s.pager]},
                       {"after_seconds": 28800, "channels": [s.pager, s.hook]}],
        "partial": {"enabled": true, "after_seconds": 900}});
    assert_eq!(r.body, expected);
    assert_eq!(s.get().await, expected);

    // The columns the sweep reads.
    let (channels, escalation, partial_enabled, partial_after): (Vec<Uuid>, Value, bool, i32) =
        sqlx::query_as(
            "SELECT channels, escalation, partial_enabled, partial_after_seconds FROM notification_settings",
        )
        .fetch_one(&s.app.pool)
        .await
        .unwrap();
    assert_eq!(channels, [s.hook, s.slack]);
    assert_eq!(
        escalation,
        json!([{"after_seconds": 14400, "channels": [s.pager]},
               {"after_seconds": 28800, "channels": [s.pager, s.hook]}])
    );
    assert_eq!((partial_enabled, partial_after), (true, 900));

    // An old client's body (no routing fields): no channels, no escalation, partial off with
    // the default delay; recipients are needed again.
    s.put(json!({"enabled": true})).await.assert_problem(422);
    let r = s
        .put(json!({"enabled": true, "recipients": ["ops@acme.test"]}))
        .await;
    r.assert_status(200);
    assert_eq!(r.body["channels"], json!([]));
    assert_eq!(r.body["escalation"], json!([]));
    assert_eq!(
        r.body["partial"],
        json!({"enabled": false, "after_seconds": 3600})
    );
    // Partial without a delay gets the default.
    let r = s
        .put(json!({"enabled": false, "partial": {"enabled": true}}))
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["partial"],
        json!({"enabled": true, "after_seconds": 3600})
    );
}

#[sqlx::test]
async fn every_routing_problem_is_refused_with_its_pointer_and_nothing_is_saved(pool: PgPool) {
    let s = setup(pool).await;
    let saved = json!({"enabled": true, "recipients": ["ops@acme.test"], "channels": [s.hook]});
    s.put(saved).await.assert_status(200);
    let before = s.get().await;
    let (a, b, c) = (s.hook, s.slack, s.pager);
    let missing = Uuid::now_v7();
    let many: Vec<Uuid> = (0..21).map(|_| Uuid::now_v7()).collect();
    let step =
        |after: i64, channels: Vec<Uuid>| json!({"after_seconds": after, "channels": channels});
    let cases: Vec<(Value, Vec<&str>, &str)> = vec![
        (
            json!({"enabled": true, "channels": many}),
            vec!["/channels"],
            "at most 20 channels",
        ),
        (
            json!({"enabled": true, "channels": [a, b, a]}),
            vec!["/channels/2"],
            "listed twice",
        ),
        (
            json!({"enabled": true, "channels": [missing, a]}),
            vec!["/channels/0"],
            "no such channel",
        ),
        (
            json!({"enabled": true, "channels": [a], "escalation": [step(600, vec![b]), step(1200, vec![b]), step(1800, vec![b]), step(2400, vec![b])]}),
            vec!["/escalation"],
            "at most 3 steps",
        ),
        (
            json!({"enabled": true, "channels": [a], "escalation": [step(299, vec![b])]}),
            vec!["/escalation/0/after_seconds"],
            "between 300 (5 min) and 2592000 (30 days) seconds",
        ),
        (
            json!({"enabled": true, "channels": [a], "escalation": [step(2_592_001, vec![b])]}),
            vec!["/escalation/0/after_seconds"],
            "between 300 (5 min) and 2592000 (30 days) seconds",
        ),
        (
            json!({"enabled": true, "channels": [a], "escalation": [step(7200, vec![b]), step(7200, vec![c])]}),
            vec!["/escalation/1/after_seconds"],
            "greater than the previous step's 7200",
        ),
        (
            json!({"enabled": true, "channels": [a], "escalation": [step(7200, vec![b]), step(3600, vec![c])]}),
            vec!["/escalation/1/after_seconds"],
            "greater than the previous step's 7200",
        ),
        (
            json!({"enabled": true, "channels": [a], "escalation": [step(7200, vec![])]}),
            vec!["/escalation/0/channels"],
            "at least one channel",
        ),
        (
            json!({"enabled": true, "channels": [a], "escalation": [step(7200, vec![b, b])]}),
            vec!["/escalation/0/channels/1"],
            "listed twice",
        ),
        (
            json!({"enabled": true, "channels": [a], "escalation": [step(7200, vec![b]), step(14400, vec![missing])]}),
            vec!["/escalation/1/channels/0"],
            "no such channel",
        ),
        (
            json!({"enabled": true, "channels": [a], "escalation": [step(7200, many.clone())]}),
            vec!["/escalation/0/channels"],
            "at most 20 channels",
        ),
        (
            json!({"enabled": true, "channels": [a], "partial": {"enabled": true, "after_seconds": 299}}),
            vec!["/partial/after_seconds"],
            "between 300 (5 min)",
        ),
        (
            json!({"enabled": true, "channels": [a], "partial": {"enabled": false, "after_seconds": 2_592_001}}),
            vec!["/partial/after_seconds"],
            "between 300 (5 min)",
        ),
        (
            json!({"enabled": true, "recipients": [], "channels": []}),
            vec!["/recipients"],
            "at least one address, or a channel",
        ),
        (
            json!({"enabled": true, "channels": [missing], "escalation": [step(60, vec![missing])]}),
            vec!["/escalation/0/after_seconds"],
            "5 min",
        ),
    ];
    for (body, pointers, message) in cases {
        let r = s.put(body.clone()).await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), pointers, "{body}: {}", r.text);
        assert!(r.text.contains(message), "{body}: {}", r.text);
        assert_eq!(s.get().await, before, "{body}: nothing saved");
    }
    // Ids that are not UUIDs, or unknown fields, are a malformed body: 422 as well.
    for body in [
        json!({"enabled": true, "channels": ["not-a-uuid"]}),
        json!({"enabled": true, "channels": [a], "escalation": [{"after_seconds": 600, "channels": [b], "to": "x"}]}),
        json!({"enabled": true, "channels": [a], "partial": {"enabled": true, "minutes": 5}}),
    ] {
        s.put(body.clone()).await.assert_problem(422);
        assert_eq!(s.get().await, before, "{body}: nothing saved");
    }
    // The bounds themselves are fine.
    s.put(json!({"enabled": true, "channels": [a],
                 "escalation": [step(300, vec![b]), step(600, vec![b]), step(2_592_000, vec![c])],
                 "partial": {"enabled": true, "after_seconds": 300}}))
        .await
        .assert_status(200);
}

#[sqlx::test]
async fn another_tenants_channel_is_refused_exactly_like_a_missing_one(pool: PgPool) {
    let s = setup(pool).await;
    let globex = s.app.create_tenant("globex").await;
    let theirs = insert_channel(&s.app, &globex.id, "Globex hook", "webhook").await;
    let missing = Uuid::now_v7();
    let mut answers = Vec::new();
    for id in [theirs, missing] {
        for body in [
            json!({"enabled": true, "channels": [id]}),
            json!({"enabled": true, "channels": [s.hook], "escalation": [{"after_seconds": 600, "channels": [id]}]}),
        ] {
            let r = s.put(body).await;
            r.assert_problem(422);
            answers.push(r.body.clone());
        }
    }
    assert_eq!(answers[0], answers[2], "a foreign channel looks missing");
    assert_eq!(answers[1], answers[3], "a foreign channel looks missing");
    assert_eq!(
        answers[0]["errors"],
        json!([{"pointer": "/channels/0", "message": "no such channel"}])
    );
    assert_eq!(
        answers[1]["errors"],
        json!([{"pointer": "/escalation/0/channels/0", "message": "no such channel"}])
    );
    assert_eq!(s.app.count("notification_settings").await, 0);
}

#[sqlx::test]
async fn changing_the_routing_during_an_open_episode_changes_nothing_else(pool: PgPool) {
    let s = setup(pool).await;
    s.put(json!({"enabled": true, "recipients": ["ops@acme.test"]}))
        .await
        .assert_status(200);
    insert_episode(&s.app, &s.tenant.id, &s.license).await;
    let episodes = s.app.rows("notification_episodes").await;
    let outbox = s.app.count("notification_outbox").await;
    s.put(
        json!({"enabled": true, "recipients": ["ops@acme.test"], "channels": [s.slack],
                 "escalation": [{"after_seconds": 1800, "channels": [s.pager]}],
                 "partial": {"enabled": true}}),
    )
    .await
    .assert_status(200);
    assert_eq!(s.app.rows("notification_episodes").await, episodes);
    assert_eq!(s.app.count("notification_outbox").await, outbox);
    assert_eq!(s.get().await["channels"], json!([s.slack]));
}

#[sqlx::test]
async fn viewers_and_other_tenants_cannot_change_routing(pool: PgPool) {
    let s = setup(pool).await;
    let (_, viewer) = s
        .app
        .create_user(&s.tenant.owner_token, "viewer@acme.test", "viewer")
        .await;
    let body = json!({"enabled": true, "channels": [s.hook]});
    s.app
        .put_notification_settings(&viewer, &s.license, body.clone())
        .await
        .assert_problem(403);
    let globex = s.app.create_tenant("globex").await;
    s.app
        .put_notification_settings(&globex.owner_token, &s.license, body)
        .await
        .assert_problem(404);
    assert_eq!(s.app.count("notification_settings").await, 0);
}

/// Inserts an outbox row for the episode (as the sweep would).
async fn insert_delivery(
    s: &Setup,
    episode: Uuid,
    recipient: &str,
    channel: Option<(Uuid, &str)>,
    state: &str,
    last_error: Option<&str>,
) {
    sqlx::query(
        "INSERT INTO notification_outbox (tenant_id, id, license_id, episode_id, kind, k, recipient, due_at,
             created_at, state, attempts, next_attempt_at, last_error, channel_id, channel_kind)
         VALUES ($1::uuid, $2, $3::uuid, $4, 'inactive', 0, $5, now(), now(), $6, 3, now(), $7, $8, $9)",
    )
    .bind(&s.tenant.id)
    .bind(Uuid::now_v7())
    .bind(&s.license)
    .bind(episode)
    .bind(recipient)
    .bind(state)
    .bind(last_error)
    .bind(channel.map(|c| c.0))
    .bind(channel.map_or("email", |c| c.1))
    .execute(&s.app.pool)
    .await
    .unwrap();
}

#[sqlx::test]
async fn the_notifications_list_names_the_channel_of_each_delivery_in_the_api_and_on_the_page(
    pool: PgPool,
) {
    let s = setup(pool).await;
    let episode = insert_episode(&s.app, &s.tenant.id, &s.license).await;
    insert_delivery(&s, episode, "ops@acme.test", None, "sent", None).await;
    insert_delivery(
        &s,
        episode,
        &s.slack.to_string(),
        Some((s.slack, "slack")),
        "pending",
        Some("HTTP 503 from hooks.slack.test"),
    )
    .await;
    let gone = Uuid::now_v7();
    insert_delivery(
        &s,
        episode,
        &gone.to_string(),
        Some((gone, "webhook")),
        "failed",
        Some("HTTP 410"),
    )
    .await;
    let r = s
        .app
        .get(
            &format!("/api/v1/licenses/{}/notifications", s.license),
            &s.tenant.owner_token,
        )
        .await;
    r.assert_status(200);
    let mut items: Vec<(Value, Value, Value, Value, Value, Value)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["channel_id"].clone(),
                n["channel_kind"].clone(),
                n["channel_name"].clone(),
                n["state"].clone(),
                n["attempts"].clone(),
                n["last_error"].clone(),
            )
        })
        .collect();
    items.sort_by_key(|i| i.3.to_string());
    assert_eq!(
        items,
        [
            (
                json!(gone),
                json!("webhook"),
                Value::Null,
                json!("failed"),
                json!(3),
                json!("HTTP 410")
            ),
            (
                json!(s.slack),
                json!("slack"),
                json!("#site-alerts"),
                json!("pending"),
                json!(3),
                json!("HTTP 503 from hooks.slack.test")
            ),
            (
                Value::Null,
                json!("email"),
                Value::Null,
                json!("sent"),
                json!(3),
                Value::Null
            ),
        ]
    );

    let mut ui = Ui::login(&s.app, &s.tenant.owner_email).await;
    let page = ui.get(&format!("/licenses/{}", s.license)).await;
    page.assert_status(200);
    let table = &page.text[page.text.find("id=\"notifications\"").unwrap()..];
    for needle in [
        "Channel or e-mail",
        "Attempts",
        "<td>ops@acme.test</td>",
        "<td>#site-alerts (slack)</td>",
        "<td>a deleted channel (webhook)</td>",
        "<td>HTTP 503 from hooks.slack.test</td>",
        "<td>3</td>",
    ] {
        assert!(table.contains(needle), "{needle} missing:\n{table}");
    }
}

/// A form's fields, as posted.
type Fields<'a> = Vec<(&'a str, String)>;

// --- the Setup Notification page ---------------------------------------------------------------

#[sqlx::test]
async fn the_setup_page_offers_the_tenants_channels_and_saves_channels_escalation_and_camera_alerts(
    pool: PgPool,
) {
    let s = setup(pool).await;
    let globex = s.app.create_tenant("globex").await;
    insert_channel(&s.app, &globex.id, "Globex secret hook", "webhook").await;
    let mut ui = Ui::login(&s.app, &s.tenant.owner_email).await;
    let path = format!("/licenses/{}/notifications", s.license);
    let page = ui.get(&path).await;
    page.assert_status(200);
    for needle in [
        "Ops webhook",
        "(webhook)",
        "#site-alerts",
        "(slack)",
        "On-call",
        "(pagerduty)",
        "id=\"escalation_1_hours\"",
        "id=\"escalation_3_hours\"",
        "id=\"partial_enabled\"",
        "id=\"partial_minutes\" name=\"partial_minutes\" inputmode=\"decimal\" value=\"60\"",
    ] {
        assert!(page.text.contains(needle), "{needle} missing");
    }
    assert!(!page.text.contains("Globex"), "another tenant's channel");
    let csrf = csrf_of(&page.text);
    let (hook, slack, pager) = (s.hook.to_string(), s.slack.to_string(), s.pager.to_string());
    let r = ui
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("enabled", "on"),
                ("inactivity_hours", "1"),
                ("notification_hours", "8"),
                ("recipients", ""),
                ("notify_on_recovery", "on"),
                ("channels", &hook),
                ("channels", &slack),
                ("escalation_1_hours", "4"),
                ("escalation_1_channels", &pager),
                // Row 2 left empty; row 3 used: saved as the second step.
                ("escalation_2_hours", ""),
                ("escalation_3_hours", "8"),
                ("escalation_3_channels", &pager),
                ("escalation_3_channels", &hook),
                ("partial_enabled", "on"),
                ("partial_minutes", "15"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(
        s.get().await,
        json!({"enabled": true, "inactivity_interval_seconds": 3600,
               "notification_interval_seconds": 28800, "recipients": [], "notify_on_recovery": true,
               "channels": [s.hook, s.slack],
               "escalation": [{"after_seconds": 14400, "channels": [s.pager]},
                              {"after_seconds": 28800, "channels": [s.pager, s.hook]}],
               "partial": {"enabled": true, "after_seconds": 900}})
    );
    // The page shows what was saved.
    let page = ui.get(&format!("{path}?saved=1")).await;
    for needle in [
        format!("id=\"channel-{hook}\" name=\"channels\" value=\"{hook}\" checked"),
        format!("id=\"channel-{slack}\" name=\"channels\" value=\"{slack}\" checked"),
        format!("id=\"channel-{pager}\" name=\"channels\" value=\"{pager}\" >"),
        "id=\"escalation_1_hours\" name=\"escalation_1_hours\" inputmode=\"decimal\" value=\"4\""
            .to_owned(),
        "id=\"escalation_2_hours\" name=\"escalation_2_hours\" inputmode=\"decimal\" value=\"8\""
            .to_owned(),
        "id=\"escalation_3_hours\" name=\"escalation_3_hours\" inputmode=\"decimal\" value=\"\""
            .to_owned(),
        format!(
            "id=\"escalation_2_channels-{pager}\" name=\"escalation_2_channels\" value=\"{pager}\" checked"
        ),
        "id=\"partial_enabled\" name=\"partial_enabled\" value=\"on\" checked".to_owned(),
        "name=\"partial_minutes\" inputmode=\"decimal\" value=\"15\"".to_owned(),
    ] {
        assert!(
            page.text.contains(&needle),
            "{needle} missing:\n{}",
            page.text
        );
    }
}

#[sqlx::test]
async fn the_setup_page_shows_each_routing_problem_next_to_its_field_and_saves_nothing(
    pool: PgPool,
) {
    let s = setup(pool).await;
    let mut ui = Ui::login(&s.app, &s.tenant.owner_email).await;
    let path = format!("/licenses/{}/notifications", s.license);
    let csrf = csrf_of(&ui.get(&path).await.text);
    let (hook, pager) = (s.hook.to_string(), s.pager.to_string());
    let missing = Uuid::now_v7().to_string();
    let base = |extra: &[(&'static str, &str)]| {
        let mut fields: Vec<(&str, String)> = vec![
            ("csrf", csrf.clone()),
            ("enabled", "on".to_owned()),
            ("inactivity_hours", "1".to_owned()),
            ("notification_hours", "8".to_owned()),
            ("recipients", "ops@acme.test".to_owned()),
        ];
        fields.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        fields
    };
    let cases: Vec<(Fields<'_>, &str, &str)> = vec![
        (
            base(&[
                ("escalation_1_hours", "4"),
                ("escalation_1_channels", &pager),
                ("escalation_2_hours", "2"),
                ("escalation_2_channels", &pager),
            ]),
            "escalation_2_hours-error",
            "must be later than the step above",
        ),
        (
            base(&[("escalation_1_hours", "4")]),
            "escalation_1_channels-error",
            "choose at least one channel for this step",
        ),
        (
            base(&[("escalation_2_channels", &pager)]),
            "escalation_2_hours-error",
            "after how many hours?",
        ),
        (
            base(&[
                ("escalation_1_hours", "0.05"),
                ("escalation_1_channels", &pager),
            ]),
            "escalation_1_hours-error",
            "must be at least 5 minutes",
        ),
        (
            base(&[
                ("escalation_1_hours", "soon"),
                ("escalation_1_channels", &pager),
            ]),
            "escalation_1_hours-error",
            "is not a number of hours",
        ),
        (
            base(&[("partial_enabled", "on"), ("partial_minutes", "2")]),
            "partial_minutes-error",
            "must be at least 5 and at most 43200 minutes",
        ),
        (
            base(&[("channels", &missing)]),
            "channels-error",
            "no such channel",
        ),
        (
            base(&[
                ("escalation_1_hours", "4"),
                ("escalation_1_channels", &missing),
            ]),
            "escalation_1_channels-error",
            "no such channel",
        ),
    ];
    for (fields, id, message) in cases {
        let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = ui.post(&path, &refs).await;
        assert_eq!(r.status, 422, "{id}: {}", r.text);
        let marker = format!("id=\"{id}\">");
        let at = r
            .text
            .find(&marker)
            .unwrap_or_else(|| panic!("{id} missing: {}", r.text));
        assert!(
            r.text[at..].starts_with(&format!("{marker}{message}"))
                || r.text[at..].contains(message),
            "{id}: {}",
            &r.text[at..at + 200]
        );
        assert!(r.text.contains("Nothing was saved"), "{id}");
        assert_eq!(s.app.count("notification_settings").await, 0, "{id}");
    }
    // Channels alone turn notifications on: recipients may be empty.
    let mut fields = base(&[("channels", &hook)]);
    fields.retain(|(k, _)| *k != "recipients");
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = ui.post(&path, &refs).await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(s.get().await["channels"], json!([s.hook]));
}
