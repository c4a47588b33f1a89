//! Alert routing (SPEC section 5a) end to end: the in-process application on the simulated
//! clock, a real SMTP server process, a real HTTP receiver process (`tests/receiver.py`) for the
//! HTTP channels, and real PostgreSQL. Time moves in simulated steps with one
//! `POST /admin/sweep` (a sweep, then one send pass) after each, as the scheduler would.
//!
//! Channels and routing are set with SQL here, so that these tests pin the sweep and the
//! sender; the channel and settings APIs have their own tests (`channels.rs`,
//! `routing_settings.rs`).

use crate::{helpers::*, receiver::Receiver, smtp::SmtpServer};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use streamwatch::notify::sender;
use uuid::Uuid;

const OPS: &str = "ops@acme.test";
const SECRET: &str = "whsec-test-0123456789";

struct World {
    app: TestApp,
    smtp: SmtpServer,
    rx: Receiver,
    tenant: TestTenant,
    license: TestSite,
    instance: Uuid,
    seq: u64,
    /// Minutes since the scenario's start.
    at: i64,
}

impl World {
    async fn new(pool: PgPool) -> Self {
        let smtp = SmtpServer::start().await;
        let rx = Receiver::start().await;
        let url = smtp.url();
        let app = TestApp::spawn_with(pool, |s| {
            s.clock.simulated = true;
            s.smtp.url = Some(url.into());
            // The receiver listens on loopback over plain http.
            s.channels.allow_private_targets = true;
        })
        .await;
        let tenant = app.create_tenant("acme").await;
        let license = app.create_site(&tenant.owner_token, "LIC-ALERT").await;
        Self {
            app,
            smtp,
            rx,
            tenant,
            license,
            instance: Uuid::new_v4(),
            seq: 0,
            at: 0,
        }
    }

    fn tenant_id(&self) -> Uuid {
        self.tenant.id.parse().unwrap()
    }

    /// A channel of the tenant, written directly.
    async fn channel(&self, name: &str, kind: &str, config: Value) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO channels (tenant_id, id, name, kind, config) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(self.tenant_id())
        .bind(id)
        .bind(name)
        .bind(kind)
        .bind(config)
        .execute(&self.app.pool)
        .await
        .unwrap();
        id
    }

    /// Notifications on (intervals in hours, `OPS` as the plain recipient), then the routing.
    async fn enable(
        &self,
        inactivity_h: i64,
        notification_h: i64,
        channels: &[Uuid],
        escalation: Value,
    ) {
        self.app
            .put_notification_settings(
                &self.tenant.owner_token,
                &self.license.id,
                json!({"enabled": true, "inactivity_interval_seconds": inactivity_h * 3600,
                       "notification_interval_seconds": notification_h * 3600, "recipients": [OPS]}),
            )
            .await
            .assert_status(200);
        sqlx::query(
            "UPDATE notification_settings SET channels = $3, escalation = $4 WHERE tenant_id = $1 AND license_id = $2",
        )
        .bind(self.tenant_id())
        .bind(self.license.id.parse::<Uuid>().unwrap())
        .bind(channels)
        .bind(escalation)
        .execute(&self.app.pool)
        .await
        .unwrap();
    }

    /// One accepted heartbeat: camera-1 active, and camera-2 as given (`None`: not reported).
    async fn heartbeat(&mut self, camera_2: Option<Camera>) {
        self.seq += 1;
        let mut batch = Batch::new(self.instance)
            .seq(self.seq)
            .camera("camera-1", Camera::active());
        if let Some(c) = camera_2 {
            batch = batch.camera("camera-2", c);
        }
        self.app.push_ok(&self.license.agent_token, &batch).await;
    }

    /// Moves the simulated clock to minute `minute` and sweeps.
    async fn to(&mut self, minute: i64) -> Value {
        let r = self
            .app
            .post(
                "/api/v1/admin/clock",
                ADMIN_TOKEN,
                json!({"advance_seconds": (minute - self.at) * 60}),
            )
            .await;
        r.assert_status(200);
        self.at = minute;
        let r = self
            .app
            .request(Method::POST, "/api/v1/admin/sweep", Some(ADMIN_TOKEN), None)
            .await;
        r.assert_status(200);
        r.body
    }

    /// The event types the receiver got at `path`, in order.
    async fn events(&self, path: &str) -> Vec<String> {
        self.rx
            .requests()
            .await
            .into_iter()
            .filter(|r| r.path == path)
            .map(|r| {
                r.json["type"]
                    .as_str()
                    .or_else(|| r.json["event_action"].as_str())
                    .unwrap_or("?")
                    .to_owned()
            })
            .collect()
    }

    /// (kind, k, channel kind, state, attempts) of every outbox row, oldest first.
    async fn outbox(&self) -> Vec<(String, i32, String, String, i32)> {
        sqlx::query_as(
            "SELECT kind, k, channel_kind, state, attempts FROM notification_outbox ORDER BY created_at, kind, recipient",
        )
        .fetch_all(&self.app.pool)
        .await
        .unwrap()
    }

    async fn episode(&self) -> (Uuid, String) {
        sqlx::query_as("SELECT id, kind FROM notification_episodes ORDER BY opened_at DESC LIMIT 1")
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }
}

fn offline() -> Camera {
    Camera::report("offline", 0, false, None).with(json!({"last_error": "connection refused"}))
}

/// The whole life of an episode on a webhook, a PagerDuty and an escalation channel: each
/// event once, signed, PagerDuty triggered and resolved under one dedup key, the escalation
/// once, and the recovery to everybody the episode reached.
#[sqlx::test]
async fn every_event_of_an_episode_reaches_each_channel_once_and_the_recovery_reaches_the_escalation_too(
    pool: PgPool,
) {
    let mut w = World::new(pool).await;
    let hook = w
        .channel(
            "Ops hook",
            "webhook",
            json!({"url": w.rx.url("/hook"), "secret": SECRET}),
        )
        .await;
    let pd = w
        .channel(
            "Pager",
            "pagerduty",
            json!({"routing_key": "R0123456789abcdef0123456789abcde", "events_url": w.rx.url("/pd")}),
        )
        .await;
    let boss = w
        .channel("Escalation", "webhook", json!({"url": w.rx.url("/boss")}))
        .await;
    w.enable(
        1,
        8,
        &[hook, pd],
        json!([{"after_seconds": 7200, "channels": [boss]}]),
    )
    .await;
    w.heartbeat(None).await;
    w.to(1).await;
    w.to(59).await;
    assert!(w.rx.requests().await.is_empty());

    // The first alert, an hour after the last activity.
    w.to(62).await;
    assert_eq!(w.events("/hook").await, ["license.inactive"]);
    assert_eq!(w.events("/pd").await, ["trigger"]);
    assert_eq!(w.events("/boss").await, Vec::<String>::new());
    assert_eq!(w.smtp.messages().len(), 1);
    let (episode, kind) = w.episode().await;
    assert_eq!(kind, "inactive");

    // Escalation step 1, two hours after the opening (minute 60, an hour after the last
    // activity), once.
    w.to(178).await;
    assert_eq!(w.events("/boss").await, Vec::<String>::new());
    w.to(182).await;
    w.to(190).await;
    assert_eq!(w.events("/boss").await, ["license.escalated"]);
    // Reminder 1, eight hours after the opening.
    w.to(61 + 480 + 1).await;
    assert_eq!(
        w.events("/hook").await,
        ["license.inactive", "license.reminder"]
    );
    assert_eq!(w.events("/pd").await, ["trigger", "trigger"]);

    // Activity: the recovery reaches the license's channels and the escalated one.
    w.heartbeat(None).await;
    w.to(61 + 480 + 3).await;
    assert_eq!(
        w.events("/hook").await,
        ["license.inactive", "license.reminder", "license.recovered"]
    );
    assert_eq!(
        w.events("/boss").await,
        ["license.escalated", "license.recovered"]
    );
    assert_eq!(w.events("/pd").await, ["trigger", "trigger", "resolve"]);
    assert_eq!(
        w.smtp.messages().len(),
        3,
        "inactive, reminder, recovery e-mails"
    );

    // Signed with an HMAC the receiver checks itself; the ids are the stable event ids.
    let hooks: Vec<_> =
        w.rx.requests_signed(SECRET)
            .await
            .into_iter()
            .filter(|r| r.path == "/hook")
            .collect();
    for r in &hooks {
        assert_eq!(r.signature_valid, Some(true), "{r:?}");
        assert_eq!(r.header("streamwatch-event-id"), r.json["id"].as_str());
        assert_eq!(r.json["episode"]["id"], json!(episode.to_string()));
        assert_eq!(r.json["license"]["key"], "LIC-ALERT");
    }
    let ids: std::collections::BTreeSet<String> =
        hooks.iter().map(|r| r.json["id"].to_string()).collect();
    assert_eq!(ids.len(), 3, "three distinct events");
    // PagerDuty de-duplicates on the episode.
    for r in w.rx.requests().await.iter().filter(|r| r.path == "/pd") {
        assert_eq!(r.json["dedup_key"], json!(episode.to_string()), "{r:?}");
    }
    // Every row delivered once.
    for (kind, k, channel, state, attempts) in w.outbox().await {
        assert_eq!(
            (state.as_str(), attempts),
            ("sent", 1),
            "{kind} {k} {channel}"
        );
    }
}

/// An acknowledged episode gets no more reminders and no escalation; its recovery still comes.
#[sqlx::test]
async fn an_acknowledgement_stops_reminders_and_escalation_but_not_the_recovery(pool: PgPool) {
    let mut w = World::new(pool).await;
    let hook = w
        .channel("Ops hook", "webhook", json!({"url": w.rx.url("/hook")}))
        .await;
    let boss = w
        .channel("Escalation", "webhook", json!({"url": w.rx.url("/boss")}))
        .await;
    w.enable(
        1,
        1,
        &[hook],
        json!([{"after_seconds": 3600, "channels": [boss]}]),
    )
    .await;
    w.heartbeat(None).await;
    w.to(1).await;
    w.to(62).await;
    assert_eq!(w.events("/hook").await, ["license.inactive"]);
    // The alert carries a signed one-click link; pressing its button acknowledges.
    let alert = w.rx.requests().await.remove(0);
    let link = alert.json["acknowledge_url"].as_str().unwrap().to_owned();
    let token = link.split("token=").nth(1).unwrap().to_owned();
    assert!(link.contains("/acknowledge?token="), "{link}");
    let pressed = w
        .app
        .send(
            w.app
                .client
                .post(format!("{}/acknowledge", w.app.address))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token={token}")),
        )
        .await;
    pressed.assert_status(200);
    let by: String = sqlx::query_scalar("SELECT acknowledged_by FROM notification_episodes")
        .fetch_one(&w.app.pool)
        .await
        .unwrap();
    assert!(by.contains("Ops hook"), "{by}");
    // Past reminder 1, 2 and the escalation step: nothing.
    for minute in [125, 190, 250] {
        w.to(minute).await;
    }
    assert_eq!(w.events("/hook").await, ["license.inactive"]);
    assert!(w.events("/boss").await.is_empty());
    w.heartbeat(None).await;
    w.to(252).await;
    assert_eq!(
        w.events("/hook").await,
        ["license.inactive", "license.recovered"]
    );
    let recovered = w.rx.requests().await.into_iter().last().unwrap();
    assert!(
        recovered.json["episode"]["acknowledged_at"].is_string(),
        "{:?}",
        recovered.json
    );
}

/// 429 waits at least its Retry-After; 500 retries; 400 fails at once and is not retried.
#[sqlx::test]
async fn a_429_waits_for_its_retry_after_a_500_retries_and_a_400_fails_for_good(pool: PgPool) {
    let mut w = World::new(pool).await;
    w.rx
        .script(
            "/busy",
            json!([{"status": 429, "headers": {"Retry-After": "1800"}}, {"status": 500}, {"status": 200}]),
        )
        .await;
    w.rx.script("/bad", json!([{"status": 400, "body": "no such hook"}]))
        .await;
    let busy = w
        .channel("Busy", "webhook", json!({"url": w.rx.url("/busy")}))
        .await;
    let bad = w
        .channel("Bad", "webhook", json!({"url": w.rx.url("/bad")}))
        .await;
    w.enable(1, 8, &[busy, bad], json!([])).await;
    w.heartbeat(None).await;
    w.to(1).await;
    w.to(62).await;
    let rows = w.outbox().await;
    let webhook_rows: Vec<_> = rows.iter().filter(|r| r.2 == "webhook").collect();
    assert_eq!(webhook_rows.len(), 2);
    let states: Vec<(&str, i32)> = webhook_rows.iter().map(|r| (r.3.as_str(), r.4)).collect();
    assert!(states.contains(&("pending", 1)), "{states:?}");
    assert!(states.contains(&("failed", 1)), "{states:?}");
    let error: String =
        sqlx::query_scalar("SELECT last_error FROM notification_outbox WHERE state = 'failed'")
            .fetch_one(&w.app.pool)
            .await
            .unwrap();
    assert!(error.contains("400"), "{error}");
    assert!(
        !error.contains("/bad"),
        "the URL's path is not shown: {error}"
    );

    // 29 minutes later: the Retry-After (30 min) still holds, though the backoff (1 min) ran out.
    w.to(91).await;
    assert_eq!(w.events("/busy").await.len(), 1);
    // After it: the 500, then (after its backoff) the 200.
    w.to(93).await;
    assert_eq!(w.events("/busy").await.len(), 2);
    for minute in [96, 100, 110] {
        w.to(minute).await;
    }
    assert_eq!(w.events("/busy").await.len(), 3);
    assert_eq!(w.events("/bad").await.len(), 1, "a 400 is not retried");
    let states: Vec<(String, i32)> = sqlx::query_as(
        "SELECT state, attempts FROM notification_outbox WHERE channel_kind = 'webhook' ORDER BY state",
    )
    .fetch_all(&w.app.pool)
    .await
    .unwrap();
    assert_eq!(states, [("failed".to_owned(), 1), ("sent".to_owned(), 3)]);
}

/// A sender that claimed an HTTP row and died: nothing while its lease holds, then exactly one
/// delivery, with the same event id a redelivery would carry.
#[sqlx::test]
async fn a_webhook_row_claimed_by_a_sender_that_died_is_delivered_once_after_the_lease(
    pool: PgPool,
) {
    let mut w = World::new(pool).await;
    let hook = w
        .channel("Ops hook", "webhook", json!({"url": w.rx.url("/hook")}))
        .await;
    w.enable(1, 8, &[hook], json!([])).await;
    w.heartbeat(None).await;
    w.to(1).await;
    // Decide without sending: the sweep alone, then a claim that "crashes".
    w.app
        .post(
            "/api/v1/admin/clock",
            ADMIN_TOKEN,
            json!({"advance_seconds": 61 * 60}),
        )
        .await
        .assert_status(200);
    w.at = 62;
    let now = sim_now(&w.app.pool).await;
    streamwatch::notify::sweep::sweep(&w.app.pool, now)
        .await
        .unwrap();
    let claimed = sender::claim(&w.app.pool, now, 100).await.unwrap();
    assert_eq!(claimed.len(), 2, "the e-mail and the webhook row");
    drop(claimed);
    w.to(64).await;
    assert!(w.events("/hook").await.is_empty(), "the lease holds");
    w.to(68).await;
    assert_eq!(w.events("/hook").await, ["license.inactive"]);
    w.to(75).await;
    assert_eq!(w.events("/hook").await.len(), 1);
    let row: (String, i32, Uuid) = sqlx::query_as(
        "SELECT state, attempts, id FROM notification_outbox WHERE channel_kind = 'webhook'",
    )
    .fetch_one(&w.app.pool)
    .await
    .unwrap();
    assert_eq!((row.0.as_str(), row.1), ("sent", 2));
    let seen = w.rx.requests().await;
    assert_eq!(seen[0].json["id"], json!(row.2.to_string()));
}

/// Camera-level alerts: a license Partially Active for `after_seconds` opens a partial
/// episode naming the camera, reminds at the notification interval, and recovers when every
/// camera is active again; nothing for a shorter dip.
#[sqlx::test]
async fn a_partial_episode_opens_names_the_camera_reminds_and_recovers(pool: PgPool) {
    let mut w = World::new(pool).await;
    let hook = w
        .channel("Ops hook", "webhook", json!({"url": w.rx.url("/hook")}))
        .await;
    w.enable(2, 1, &[hook], json!([])).await;
    sqlx::query(
        "UPDATE notification_settings SET partial_enabled = true, partial_after_seconds = 900",
    )
    .execute(&w.app.pool)
    .await
    .unwrap();
    // A 10-minute dip: no alert.
    w.heartbeat(Some(Camera::active())).await;
    w.to(1).await;
    w.heartbeat(Some(offline())).await;
    w.to(5).await;
    w.heartbeat(Some(offline())).await;
    w.to(11).await;
    w.heartbeat(Some(Camera::active())).await;
    w.to(16).await;
    w.heartbeat(Some(Camera::active())).await;
    w.to(22).await;
    assert!(w.rx.requests().await.is_empty());

    // Down for good: the alert after 15 minutes of it, naming camera-2.
    let mut minute = 22;
    w.heartbeat(Some(offline())).await;
    w.to(23).await;
    while minute < 23 + 14 {
        minute += 5;
        w.heartbeat(Some(offline())).await;
        w.to(minute).await;
    }
    assert!(
        w.events("/hook").await.is_empty(),
        "not yet at minute {minute}"
    );
    minute += 3;
    w.heartbeat(Some(offline())).await;
    w.to(minute).await;
    assert_eq!(w.events("/hook").await, ["license.partial"]);
    let alert = w.rx.requests().await.remove(0);
    assert_eq!(alert.json["episode"]["kind"], "partial");
    assert_eq!(alert.json["license"]["status"], "partially_active");
    let cameras = alert.json["cameras"].as_array().unwrap();
    assert_eq!(cameras.len(), 1, "{cameras:?}");
    assert_eq!(cameras[0]["camera_id"], "camera-2");
    assert!(
        cameras[0]["reason"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{cameras:?}"
    );
    // The camera links to its picture on the web UI (SPEC section 7).
    let link = cameras[0]["snapshot_url"].as_str().unwrap();
    assert!(
        link.ends_with(&format!(
            "/licenses/{}/cameras/camera-2/snapshot",
            alert.json["license"]["id"].as_str().unwrap()
        )),
        "{link}"
    );
    let mails = w.smtp.messages();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].subject.contains("cameras are not active"),
        "{}",
        mails[0].subject
    );

    // Still partial an hour later: one reminder.
    let opened = minute;
    while minute < opened + 62 {
        minute += 5;
        w.heartbeat(Some(offline())).await;
        w.to(minute).await;
    }
    assert_eq!(
        w.events("/hook").await,
        ["license.partial", "license.reminder"]
    );
    // Every camera active again: recovered, once.
    w.heartbeat(Some(Camera::active())).await;
    w.to(minute + 1).await;
    w.heartbeat(Some(Camera::active())).await;
    w.to(minute + 3).await;
    assert_eq!(
        w.events("/hook").await,
        [
            "license.partial",
            "license.reminder",
            "license.partial_recovered"
        ]
    );
    let closed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notification_episodes WHERE kind = 'partial' AND closed_at IS NOT NULL",
    )
    .fetch_one(&w.app.pool)
    .await
    .unwrap();
    assert_eq!(closed, 1);
}

/// A license whose partial episode is open and that then goes silent: the partial episode
/// closes without a message, and the inactivity episode opens after the inactivity interval.
#[sqlx::test]
async fn a_license_that_goes_silent_closes_its_partial_episode_silently_and_opens_an_inactive_one(
    pool: PgPool,
) {
    let mut w = World::new(pool).await;
    let hook = w
        .channel("Ops hook", "webhook", json!({"url": w.rx.url("/hook")}))
        .await;
    w.enable(1, 8, &[hook], json!([])).await;
    sqlx::query(
        "UPDATE notification_settings SET partial_enabled = true, partial_after_seconds = 300",
    )
    .execute(&w.app.pool)
    .await
    .unwrap();
    w.heartbeat(Some(offline())).await;
    w.to(1).await;
    w.heartbeat(Some(offline())).await;
    w.to(5).await;
    w.heartbeat(Some(offline())).await;
    w.to(8).await;
    assert_eq!(w.events("/hook").await, ["license.partial"]);
    // Silence: after an hour of it, the inactivity alert; nothing about the partial episode.
    for minute in [20, 40, 60, 66, 70] {
        w.to(minute).await;
    }
    assert_eq!(
        w.events("/hook").await,
        ["license.partial", "license.inactive"]
    );
    let episodes: Vec<(String, bool)> = sqlx::query_as(
        "SELECT kind, closed_at IS NULL FROM notification_episodes ORDER BY opened_at",
    )
    .fetch_all(&w.app.pool)
    .await
    .unwrap();
    assert_eq!(
        episodes,
        [("partial".to_owned(), false), ("inactive".to_owned(), true)]
    );
}

/// The simulated now, as the server computes it.
async fn sim_now(pool: &PgPool) -> DateTime<Utc> {
    let offset: Option<i64> = sqlx::query_scalar("SELECT offset_ms FROM simulated_clock")
        .fetch_optional(pool)
        .await
        .unwrap();
    Utc::now() + chrono::Duration::milliseconds(offset.unwrap_or(0))
}
