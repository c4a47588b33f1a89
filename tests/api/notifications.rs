//! Inactivity e-mail notifications (SPEC section 5), end to end: the in-process application on
//! the simulated clock, a real SMTP server process (aiosmtpd) and real PostgreSQL. Tests read
//! what arrived in the Maildir.
//!
//! Time moves in small simulated steps, with one `POST /admin/sweep` (a sweep, then one send
//! pass) after each, as the per-minute scheduler would. The first sweep of each scenario
//! starts the control plane's alive record; heartbeats count as activity when received (on the
//! simulated clock). Nothing here measures time.

use crate::{
    helpers::*,
    smtp::{Mail, SmtpServer},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::BTreeMap;
use streamwatch::notify::{sender, sweep};
use uuid::Uuid;

/// The application with the simulated clock and SMTP to a real server, and one tenant.
struct World {
    app: TestApp,
    smtp: SmtpServer,
    tenant: TestTenant,
}

/// A site, and its agent's own instance and last seq.
struct Site {
    license: TestSite,
    instance: Uuid,
    seq: u64,
}

impl World {
    async fn new(pool: PgPool) -> Self {
        let smtp = SmtpServer::start().await;
        let url = smtp.url();
        let app = TestApp::spawn_with(pool, |s| {
            s.clock.simulated = true;
            s.smtp.url = Some(url.into());
        })
        .await;
        let tenant = app.create_tenant("acme").await;
        Self { app, smtp, tenant }
    }

    async fn site(&self, key: &str) -> Site {
        Site {
            license: self.app.create_site(&self.tenant.owner_token, key).await,
            instance: Uuid::new_v4(),
            seq: 0,
        }
    }

    async fn put_settings(&self, site: &Site, body: Value) -> TestResponse {
        self.app
            .put_notification_settings(&self.tenant.owner_token, &site.license.id, body)
            .await
    }

    /// Turns notifications on: inactivity and notification intervals in hours.
    async fn enable(&self, site: &Site, inactivity_h: i64, notification_h: i64, to: &[&str]) {
        self.put_settings(
            site,
            json!({"enabled": true, "inactivity_interval_seconds": inactivity_h * 3600,
                   "notification_interval_seconds": notification_h * 3600, "recipients": to}),
        )
        .await
        .assert_status(200);
    }

    async fn get_settings(&self, site: &Site) -> Value {
        self.app
            .notification_settings(&self.tenant.owner_token, &site.license.id)
            .await
    }

    /// One accepted heartbeat from the site's agent (activity at the simulated now).
    async fn heartbeat(&self, site: &mut Site) {
        site.seq += 1;
        let batch = Batch::new(site.instance)
            .seq(site.seq)
            .camera("camera-1", Camera::active());
        self.app.push_ok(&site.license.agent_token, &batch).await;
    }

    /// Moves the simulated clock forward, the service running meanwhile.
    async fn advance(&self, minutes: i64) -> DateTime<Utc> {
        self.clock(minutes, false).await
    }

    async fn clock(&self, minutes: i64, control_plane_down: bool) -> DateTime<Utc> {
        let r = self
            .app
            .post(
                "/api/v1/admin/clock",
                ADMIN_TOKEN,
                json!({"advance_seconds": minutes * 60, "control_plane_down": control_plane_down}),
            )
            .await;
        r.assert_status(200);
        r.body["now"].as_str().unwrap().parse().unwrap()
    }

    /// `POST /admin/sweep`: one sweep and one send pass.
    async fn sweep(&self) -> Value {
        let r = self
            .app
            .request(Method::POST, "/api/v1/admin/sweep", Some(ADMIN_TOKEN), None)
            .await;
        r.assert_status(200);
        assert_eq!(r.body["skipped"], false, "{}", r.text);
        r.body
    }

    /// Advance, then sweep: one step of the timeline.
    async fn step(&self, minutes: i64) -> Value {
        self.advance(minutes).await;
        self.sweep().await
    }

    /// `GET /licenses/{id}/notifications` (200), newest first.
    async fn notifications(&self, site: &Site) -> Vec<Value> {
        let r = self
            .app
            .get(
                &format!("/api/v1/licenses/{}/notifications", site.license.id),
                &self.tenant.owner_token,
            )
            .await;
        r.assert_status(200);
        r.body["items"].as_array().unwrap().clone()
    }

    fn mail(&self) -> Vec<Mail> {
        self.smtp.messages()
    }
}

/// The simulated now, as the server computes it.
async fn sim_now(pool: &PgPool) -> DateTime<Utc> {
    let offset: Option<i64> = sqlx::query_scalar("SELECT offset_ms FROM simulated_clock")
        .fetch_optional(pool)
        .await
        .unwrap();
    Utc::now() + chrono::Duration::milliseconds(offset.unwrap_or(0))
}

/// Sorted recipients of `mails`.
fn recipients(mails: &[Mail]) -> Vec<String> {
    let mut to: Vec<String> = mails.iter().map(|m| m.to.clone()).collect();
    to.sort();
    to
}

/// How many of `mails` have a subject containing `part`, per recipient.
fn subjects_per_recipient(mails: &[Mail], part: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for m in mails.iter().filter(|m| m.subject.contains(part)) {
        *counts.entry(m.to.clone()).or_insert(0) += 1;
    }
    counts
}

/// Walks the timeline from minute `*at` to each of `stops` (minutes since the scenario's
/// start), one step and sweep per stop, asserting that no e-mail arrives on the way.
async fn quiet_until(w: &World, at: &mut i64, stops: &[i64]) {
    let before = w.mail().len();
    for &stop in stops {
        w.step(stop - *at).await;
        *at = stop;
        assert_eq!(
            w.mail().len(),
            before,
            "no e-mail expected at minute {stop}: {:?}",
            w.mail().iter().map(|m| &m.subject).collect::<Vec<_>>()
        );
    }
}

const OPS: &str = "ops@acme.test";
const ONCALL: &str = "oncall@acme.test";

// --- timeline -------------------------------------------------------------------------------

#[sqlx::test]
async fn the_first_alert_arrives_at_the_first_sweep_after_an_hour_of_silence_with_both_parts_and_the_headers(
    pool: PgPool,
) {
    let w = World::new(pool).await;
    let mut site = w.site("LIC-A").await;
    w.enable(&site, 1, 8, &[OPS, ONCALL]).await;
    w.sweep().await;
    w.heartbeat(&mut site).await;
    let last_activity: DateTime<Utc> = sqlx::query_scalar(
        "SELECT max(last_activity_at) FROM agent_instances WHERE license_id = $1::uuid",
    )
    .bind(&site.license.id)
    .fetch_one(&w.app.pool)
    .await
    .unwrap();

    let mut at = 0;
    quiet_until(&w, &mut at, &[10, 20, 30, 40, 50, 59]).await;
    let sweep = w.step(1).await;
    assert_eq!(sweep["opened"], 1, "{sweep}");
    assert_eq!(sweep["emails_decided"], 2, "{sweep}");
    assert_eq!(sweep["emails_sent"], 2, "{sweep}");
    let now = sim_now(&w.app.pool).await;

    let mails = w.mail();
    assert_eq!(recipients(&mails), [ONCALL, OPS]);
    assert_ne!(mails[0].message_id, mails[1].message_id);
    let berlin = last_activity
        .with_timezone(&chrono_tz::Europe::Berlin)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string();
    for m in &mails {
        assert_eq!(
            m.rcpt_to, m.to,
            "the envelope goes to the header's recipient"
        );
        assert_eq!(m.from, "streamwatch <streamwatch@localhost>");
        assert_eq!(
            m.subject,
            format!(
                "❌ {} ({}) is inactive: no heartbeat for 1 h",
                site.license.name, site.license.key
            )
        );
        assert_eq!(m.content_type, "multipart/alternative");
        // Message-ID: stable, derived from (episode, e-mail, recipient).
        let id = m.message_id.trim_start_matches('<');
        let (hash, host) = id.trim_end_matches('>').split_once('@').unwrap();
        assert_eq!(host, "streamwatch", "{}", m.message_id);
        assert!(
            hash.len() == 32 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{}",
            m.message_id
        );
        // One-click unsubscribe (RFC 2369 + RFC 8058).
        let unsubscribe = m.list_unsubscribe.as_deref().unwrap();
        assert!(
            unsubscribe.starts_with('<') && unsubscribe.contains("/unsubscribe?token="),
            "{unsubscribe}"
        );
        assert_eq!(
            m.list_unsubscribe_post.as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
        // The Date is the simulated clock's, like everything else.
        let date = mailparse::dateparse(m.date.as_deref().unwrap()).unwrap();
        assert!(
            (date - now.timestamp()).abs() < 300,
            "Date {:?} is not the simulated now {now}",
            m.date
        );
        let link = format!("/licenses/{}", site.license.id);
        let unsubscribe_url = unsubscribe.trim_matches(['<', '>']);
        for (part, body) in [("text", &m.text), ("html", &m.html)] {
            for needle in [
                site.license.name.as_str(),
                &site.license.key,
                &link,
                &berlin,
                unsubscribe_url,
            ] {
                assert!(
                    body.contains(needle),
                    "the {part} part lacks {needle:?}:\n{body}"
                );
            }
        }
        assert!(
            m.text
                .contains(&format!("Last activity: {berlin} (1 h ago)")),
            "{}",
            m.text
        );
        assert!(m.text.contains("Activity Status: http"), "{}", m.text);
        assert!(m.text.contains("camera-1: running"), "{}", m.text);
        assert!(m.html.contains("Open the Activity Status"), "{}", m.html);
        assert!(m.html.contains(">Unsubscribe</a>"), "{}", m.html);
        assert!(m.text.contains("Times are in Europe/Berlin"), "{}", m.text);
    }

    // Nothing more while the episode lasts and no reminder is due.
    quiet_until(&w, &mut at, &[70, 80, 90]).await;
}

#[sqlx::test]
async fn reminders_come_at_each_notification_interval_after_the_episode_opened_and_none_between(
    pool: PgPool,
) {
    let w = World::new(pool).await;
    let mut site = w.site("LIC-R").await;
    w.enable(&site, 1, 1, &[OPS]).await;
    w.sweep().await;
    w.heartbeat(&mut site).await;

    let mut at = 0;
    quiet_until(&w, &mut at, &[10, 20, 30, 40, 50]).await;
    w.step(10).await; // 60: the episode opens
    at = 60;
    assert_eq!(w.mail().len(), 1);
    quiet_until(&w, &mut at, &[70, 80, 90, 100, 110]).await;
    let sweep = w.step(10).await; // 120 = opened + 1 h
    at = 120;
    assert_eq!(sweep["reminders"], 1, "{sweep}");
    assert_eq!(w.mail().len(), 2);
    assert!(
        w.mail()[1].subject.ends_with("(reminder 1)"),
        "{}",
        w.mail()[1].subject
    );
    assert!(w.mail()[1].subject.contains("still inactive after 2 h"));
    quiet_until(&w, &mut at, &[130, 140, 150, 160, 170]).await;
    w.step(10).await; // 180 = opened + 2 h
    let mails = w.mail();
    assert_eq!(mails.len(), 3);
    assert!(
        mails[2].subject.ends_with("(reminder 2)"),
        "{}",
        mails[2].subject
    );

    let history = w.notifications(&site).await;
    let kinds: Vec<(String, i64)> = history
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap().to_owned(),
                n["k"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("reminder".to_owned(), 2),
            ("reminder".to_owned(), 1),
            ("inactive".to_owned(), 0)
        ],
        "newest first"
    );
    // Every message id differs: each reminder is its own e-mail.
    let mut ids: Vec<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
}

#[sqlx::test]
async fn a_heartbeat_after_the_alert_closes_the_episode_with_one_recovery_e_mail(pool: PgPool) {
    let w = World::new(pool).await;
    let mut site = w.site("LIC-B").await;
    w.enable(&site, 1, 8, &[OPS, ONCALL]).await;
    w.sweep().await;
    w.heartbeat(&mut site).await;
    let mut at = 0;
    quiet_until(&w, &mut at, &[10, 20, 30, 40, 50]).await;
    w.step(10).await;
    assert_eq!(w.mail().len(), 2);

    w.advance(15).await;
    w.heartbeat(&mut site).await;
    let sweep = w.sweep().await;
    assert_eq!(sweep["closed"], 1, "{sweep}");
    let mails = w.mail();
    assert_eq!(mails.len(), 4);
    let recovery: Vec<Mail> = mails
        .into_iter()
        .filter(|m| m.subject.contains("active again"))
        .collect();
    assert_eq!(recipients(&recovery), [ONCALL, OPS]);
    for m in &recovery {
        assert_eq!(
            m.subject,
            format!(
                "✅ {} ({}) is active again",
                site.license.name, site.license.key
            )
        );
        assert!(m.text.contains("Last activity:"), "{}", m.text);
        assert!(m.list_unsubscribe.is_some());
    }
    // The recovered license is watched again from its new activity: quiet for the next 50 min.
    at = 0;
    quiet_until(&w, &mut at, &[10, 20, 30, 40, 50]).await;
}

#[sqlx::test]
async fn no_recovery_e_mail_goes_out_when_notify_on_recovery_is_off(pool: PgPool) {
    let w = World::new(pool).await;
    let mut site = w.site("LIC-Q").await;
    w.put_settings(
        &site,
        json!({"enabled": true, "inactivity_interval_seconds": 3600, "notification_interval_seconds": 28800,
               "recipients": [OPS], "notify_on_recovery": false}),
    )
    .await
    .assert_status(200);
    w.sweep().await;
    w.heartbeat(&mut site).await;
    let mut at = 0;
    quiet_until(&w, &mut at, &[10, 20, 30, 40, 50]).await;
    w.step(10).await;
    assert_eq!(w.mail().len(), 1);

    w.advance(10).await;
    w.heartbeat(&mut site).await;
    let sweep = w.sweep().await;
    assert_eq!(sweep["closed"], 1, "the episode closes: {sweep}");
    assert_eq!(sweep["emails_decided"], 0, "{sweep}");
    at = 0;
    quiet_until(&w, &mut at, &[5, 10, 20]).await;
    assert_eq!(w.mail().len(), 1);
    let history = w.notifications(&site).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["kind"], "inactive");
}

#[sqlx::test]
async fn a_license_that_never_reported_counts_from_when_notifications_were_enabled(pool: PgPool) {
    let w = World::new(pool).await;
    let site = w.site("LIC-NEW").await;
    w.sweep().await;
    // Hours pass before anyone turns notifications on: that silence does not count.
    w.step(180).await;
    w.enable(&site, 1, 8, &[OPS]).await;
    let mut at = 0;
    quiet_until(&w, &mut at, &[10, 20, 30, 40, 50, 59]).await;
    w.step(1).await;
    let mails = w.mail();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].subject,
        format!(
            "❌ {} ({}) is inactive: no heartbeat for 1 h",
            site.license.name, site.license.key
        )
    );
    assert!(
        mails[0]
            .text
            .contains("Last activity: never (the license has not reported yet)"),
        "{}",
        mails[0].text
    );
    assert!(
        mails[0]
            .text
            .contains("Cameras at last contact: none reported")
    );
}

#[sqlx::test]
async fn turning_notifications_off_in_an_episode_stops_the_e_mails_and_sends_no_recovery(
    pool: PgPool,
) {
    let w = World::new(pool).await;
    let mut site = w.site("LIC-OFF").await;
    w.enable(&site, 1, 1, &[OPS]).await;
    w.sweep().await;
    w.heartbeat(&mut site).await;
    let mut at = 0;
    quiet_until(&w, &mut at, &[20, 40]).await;
    w.step(20).await; // 60
    at = 60;
    assert_eq!(w.mail().len(), 1);

    w.put_settings(
        &site,
        json!({"enabled": false, "inactivity_interval_seconds": 3600, "notification_interval_seconds": 3600,
               "recipients": [OPS]}),
    )
    .await
    .assert_status(200);
    let sweep = w.sweep().await;
    assert_eq!(
        sweep["closed"], 1,
        "turning off closes the episode: {sweep}"
    );
    // Reminder 1 would have been due at 120, reminder 2 at 180.
    quiet_until(&w, &mut at, &[80, 100, 120, 140, 160, 180]).await;
    w.heartbeat(&mut site).await;
    quiet_until(&w, &mut at, &[190, 200]).await;
    assert_eq!(w.mail().len(), 1);
    assert_eq!(w.notifications(&site).await.len(), 1);
}

#[sqlx::test]
async fn a_notification_interval_changed_in_an_episode_sets_when_the_next_reminder_comes(
    pool: PgPool,
) {
    let w = World::new(pool).await;
    let mut site = w.site("LIC-CH").await;
    w.enable(&site, 1, 8, &[OPS]).await;
    w.sweep().await;
    w.heartbeat(&mut site).await;
    let mut at = 0;
    quiet_until(&w, &mut at, &[20, 40]).await;
    w.step(20).await; // 60: opened
    at = 60;
    assert_eq!(w.mail().len(), 1);
    quiet_until(&w, &mut at, &[80]).await;

    // From 8 h to 1 h: reminder 1 is now due at opened + 1 h = minute 120, not at minute 540.
    w.enable(&site, 1, 1, &[OPS]).await;
    quiet_until(&w, &mut at, &[90, 100, 110]).await;
    w.step(10).await; // 120
    at = 120;
    let mails = w.mail();
    assert_eq!(mails.len(), 2);
    assert!(
        mails[1].subject.ends_with("(reminder 1)"),
        "{}",
        mails[1].subject
    );
    // And from 1 h to 3 h: reminder 2 at opened + 2 × 3 h = minute 420.
    w.enable(&site, 1, 3, &[OPS]).await;
    quiet_until(&w, &mut at, &[180, 240, 300, 360, 410]).await;
    w.step(10).await; // 420
    let mails = w.mail();
    assert_eq!(mails.len(), 3);
    assert!(
        mails[2].subject.ends_with("(reminder 2)"),
        "{}",
        mails[2].subject
    );
}

// --- settings -------------------------------------------------------------------------------

#[sqlx::test]
async fn intervals_outside_one_hour_to_thirty_days_are_refused_with_a_pointer_and_nothing_is_saved(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let tenant = app.create_tenant("acme").await;
    let license = app.create_license(&tenant.owner_token, "LIC-1").await;
    let id = license["id"].as_str().unwrap();
    let put = |body: Value| app.put_notification_settings(&tenant.owner_token, id, body);
    let settings = || app.notification_settings(&tenant.owner_token, id);
    let saved = json!({"enabled": true, "inactivity_interval_seconds": 7200,
                       "notification_interval_seconds": 36000, "recipients": [OPS], "notify_on_recovery": false});
    put(saved.clone()).await.assert_status(200);

    let cases = [
        (
            3599,
            28800,
            vec!["/inactivity_interval_seconds"],
            "inactivity one second under 1 h",
        ),
        (
            2_592_001,
            28800,
            vec!["/inactivity_interval_seconds"],
            "inactivity one second over 30 days",
        ),
        (
            3600,
            3599,
            vec!["/notification_interval_seconds"],
            "notification one second under 1 h",
        ),
        (
            3600,
            2_592_001,
            vec!["/notification_interval_seconds"],
            "notification one second over 30 days",
        ),
        (
            60,
            0,
            vec![
                "/inactivity_interval_seconds",
                "/notification_interval_seconds",
            ],
            "both",
        ),
        (
            -3600,
            28800,
            vec!["/inactivity_interval_seconds"],
            "negative",
        ),
    ];
    for (inactivity, notification, pointers, why) in cases {
        let r = put(
            json!({"enabled": true, "inactivity_interval_seconds": inactivity,
                           "notification_interval_seconds": notification, "recipients": [OPS]}),
        )
        .await;
        r.assert_problem(422);
        let mut got = r.pointers();
        got.sort();
        assert_eq!(got, pointers, "{why}: {}", r.text);
        assert!(
            r.text.contains("between 3600 (1 h) and 2592000 (30 days)"),
            "{why}: {}",
            r.text
        );
        assert_eq!(
            settings().await,
            without_routing(saved.clone()),
            "{why}: nothing saved"
        );
    }

    for (inactivity, notification) in [(3600, 3600), (2_592_000, 2_592_000), (3600, 2_592_000)] {
        let body = json!({"enabled": true, "inactivity_interval_seconds": inactivity,
                          "notification_interval_seconds": notification, "recipients": [OPS], "notify_on_recovery": true});
        let r = put(body.clone()).await;
        r.assert_status(200);
        let body = without_routing(body);
        assert_eq!(
            r.body, body,
            "{inactivity}/{notification} accepted as given"
        );
        assert_eq!(settings().await, body);
    }
}

#[sqlx::test]
async fn recipients_are_validated_bounded_and_de_duplicated_case_insensitively(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let tenant = app.create_tenant("acme").await;
    let license = app.create_license(&tenant.owner_token, "LIC-1").await;
    let id = license["id"].as_str().unwrap();
    let put = |body: Value| app.put_notification_settings(&tenant.owner_token, id, body);
    let settings = || app.notification_settings(&tenant.owner_token, id);
    // Defaults before anything is saved: off, 1 h, 8 h, no recipients, recovery on.
    let defaults = settings().await;
    assert_eq!(
        defaults,
        without_routing(
            json!({"enabled": false, "inactivity_interval_seconds": 3600, "notification_interval_seconds": 28800,
                   "recipients": [], "notify_on_recovery": true})
        )
    );

    let twenty_one: Vec<String> = (0..21).map(|i| format!("r{i}@acme.test")).collect();
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"enabled": true, "recipients": [OPS, "not an address"]}),
            "/recipients/1",
            "an invalid address",
        ),
        (
            json!({"enabled": true, "recipients": ["a@b", OPS]}),
            "/recipients/0",
            "a domain without a dot",
        ),
        (
            json!({"enabled": true, "recipients": twenty_one}),
            "/recipients",
            "21 recipients",
        ),
        (
            json!({"enabled": true, "recipients": []}),
            "/recipients",
            "enabled without recipients",
        ),
        (
            json!({"enabled": true}),
            "/recipients",
            "enabled without the field",
        ),
    ];
    for (body, pointer, why) in cases {
        let r = put(body).await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), [pointer], "{why}: {}", r.text);
        assert_eq!(settings().await, defaults, "{why}: nothing saved");
    }

    let twenty: Vec<String> = (0..20).map(|i| format!("r{i}@acme.test")).collect();
    let r = put(json!({"enabled": true, "recipients": twenty})).await;
    r.assert_status(200);
    assert_eq!(r.body["recipients"].as_array().unwrap().len(), 20);

    let r = put(json!({"enabled": true, "recipients": ["Ops@Acme.TEST", "ops@acme.test", " OPS@acme.test ", "oncall@acme.test"]}))
        .await;
    r.assert_status(200);
    assert_eq!(r.body["recipients"], json!([OPS, ONCALL]));
    assert_eq!(settings().await["recipients"], json!([OPS, ONCALL]));
    // Off with no recipients is fine.
    put(json!({"enabled": false, "recipients": []}))
        .await
        .assert_status(200);
}

#[sqlx::test]
async fn the_database_refuses_settings_outside_the_bounds_even_past_the_api(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let tenant = app.create_tenant("acme").await;
    let license = app.create_license(&tenant.owner_token, "LIC-1").await;
    let license_id: Uuid = license["id"].as_str().unwrap().parse().unwrap();
    let tenant_id: Uuid = tenant.id.parse().unwrap();
    let cases = [
        (60, 28800, 1, true, "notification_inactivity_range"),
        (2_592_001, 28800, 1, true, "notification_inactivity_range"),
        (3600, 60, 1, true, "notification_interval_range"),
        (3600, 28800, 0, true, "notification_enabled_needs_a_target"),
        (3600, 28800, 21, false, "notification_recipients_count"),
    ];
    for (inactivity, notification, n, enabled, constraint) in cases {
        let to: Vec<String> = (0..n).map(|i| format!("r{i}@acme.test")).collect();
        let err = sqlx::query(
            "INSERT INTO notification_settings (tenant_id, license_id, enabled, inactivity_interval_seconds,
                 notification_interval_seconds, recipients)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant_id)
        .bind(license_id)
        .bind(enabled)
        .bind(inactivity)
        .bind(notification)
        .bind(&to)
        .execute(&app.pool)
        .await
        .expect_err(constraint);
        assert_eq!(
            err.as_database_error().and_then(|e| e.constraint()),
            Some(constraint),
            "{err}"
        );
    }
    assert_eq!(app.count("notification_settings").await, 0);
}

#[sqlx::test]
async fn the_history_shows_each_e_mail_with_its_state_and_viewers_may_read_settings_but_not_change_them(
    pool: PgPool,
) {
    let w = World::new(pool).await;
    let mut site = w.site("LIC-H").await;
    w.enable(&site, 1, 8, &[OPS]).await;
    w.sweep().await;
    w.heartbeat(&mut site).await;
    let mut at = 0;
    quiet_until(&w, &mut at, &[30]).await;
    w.step(30).await;
    let mails = w.mail();
    assert_eq!(mails.len(), 1);

    let history = w.notifications(&site).await;
    assert_eq!(history.len(), 1, "{history:?}");
    let n = &history[0];
    assert_eq!(n["kind"], "inactive");
    assert_eq!(n["k"], 0);
    assert_eq!(n["recipient"], OPS);
    assert_eq!(n["state"], "sent");
    assert_eq!(n["attempts"], 1);
    assert_eq!(n["last_error"], Value::Null);
    assert_eq!(n["message_id"], mails[0].message_id.as_str());
    let sent_at: DateTime<Utc> = n["sent_at"].as_str().unwrap().parse().unwrap();
    let due_at: DateTime<Utc> = n["due_at"].as_str().unwrap().parse().unwrap();
    assert!(sent_at >= due_at, "{n}");

    let (_, viewer) = w
        .app
        .create_user(&w.tenant.owner_token, "viewer@acme.test", "viewer")
        .await;
    w.app.notification_settings(&viewer, &site.license.id).await;
    let r = w
        .app
        .get(
            &format!("/api/v1/licenses/{}/notifications", site.license.id),
            &viewer,
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let before = w.get_settings(&site).await;
    w.app
        .put_notification_settings(&viewer, &site.license.id, json!({"enabled": false}))
        .await
        .assert_problem(403);
    assert_eq!(w.get_settings(&site).await, before, "nothing changed");

    // Another tenant cannot see that the license exists.
    let other = w.app.create_tenant("globex").await;
    for path in [
        format!("/api/v1/licenses/{}/notification-settings", site.license.id),
        format!("/api/v1/licenses/{}/notifications", site.license.id),
    ] {
        w.app
            .get(&path, &other.owner_token)
            .await
            .assert_problem(404);
    }
    w.app
        .put_notification_settings(
            &other.owner_token,
            &site.license.id,
            json!({"enabled": false}),
        )
        .await
        .assert_problem(404);
    assert_eq!(w.get_settings(&site).await, before, "nothing changed");
}

// --- digest and unsubscribe -----------------------------------------------------------------

#[sqlx::test]
async fn one_recipient_of_three_licenses_that_go_quiet_together_gets_one_digest(pool: PgPool) {
    let w = World::new(pool).await;
    let mut sites = Vec::new();
    for key in ["LIC-D1", "LIC-D2", "LIC-D3"] {
        let site = w.site(key).await;
        w.enable(&site, 1, 8, &[OPS]).await;
        sites.push(site);
    }
    w.sweep().await;
    for site in &mut sites {
        w.heartbeat(site).await;
    }
    let mut at = 0;
    quiet_until(&w, &mut at, &[20, 40]).await;
    let sweep = w.step(20).await;
    at = 60;
    assert_eq!(sweep["opened"], 3, "{sweep}");
    assert_eq!(sweep["emails_decided"], 3, "{sweep}");
    assert_eq!(sweep["emails_sent"], 1, "one digest: {sweep}");
    let mails = w.mail();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.to, OPS);
    assert_eq!(m.subject, "❌ 3 licenses are inactive");
    for site in &sites {
        for body in [&m.text, &m.html] {
            assert!(
                body.contains(&site.license.name),
                "{} missing:\n{body}",
                site.license.name
            );
            assert!(body.contains(&format!("/licenses/{}", site.license.id)));
        }
    }
    assert_eq!(m.text.matches("Activity Status:").count(), 3);
    // Each license's history points at the one message.
    for site in &sites {
        let history = w.notifications(site).await;
        assert_eq!(history.len(), 1);
        assert_eq!(history[0]["message_id"], m.message_id.as_str());
        assert_eq!(history[0]["state"], "sent");
    }
    quiet_until(&w, &mut at, &[70, 80]).await;
}

#[sqlx::test]
async fn the_unsubscribe_link_of_an_e_mail_removes_that_recipient_and_the_last_one_turns_notifications_off(
    pool: PgPool,
) {
    let w = World::new(pool).await;
    let mut site = w.site("LIC-U").await;
    w.enable(&site, 1, 1, &[OPS, ONCALL]).await;
    w.sweep().await;
    w.heartbeat(&mut site).await;
    let mut at = 0;
    quiet_until(&w, &mut at, &[30]).await;
    w.step(30).await; // 60
    at = 60;
    let mails = w.mail();
    assert_eq!(recipients(&mails), [ONCALL, OPS]);
    let link_of = |to: &str| {
        mails
            .iter()
            .find(|m| m.to == to)
            .unwrap()
            .unsubscribe_path()
    };
    let ops_link = link_of(OPS);
    let oncall_link = link_of(ONCALL);
    let one_click = |path: &str| {
        w.app
            .client
            .post(format!("{}{path}", w.app.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
    };

    // Tampered links: another recipient in the payload, a changed signature, nonsense.
    let (payload, signature) = ops_link
        .trim_start_matches("/unsubscribe?token=")
        .split_once('.')
        .unwrap();
    let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert!(decoded.contains(OPS), "{decoded}");
    let forged_payload = URL_SAFE_NO_PAD.encode(decoded.replace(OPS, "boss@acme.test"));
    let mut forged_signature = signature.to_owned();
    let first = forged_signature.remove(0);
    forged_signature.insert(0, if first == 'A' { 'B' } else { 'A' });
    let tampered = [
        format!("/unsubscribe?token={forged_payload}.{signature}"),
        format!("/unsubscribe?token={payload}.{forged_signature}"),
        format!("/unsubscribe?token={payload}"),
        "/unsubscribe?token=nonsense".to_owned(),
    ];
    for link in &tampered {
        let r = w
            .app
            .send(w.app.client.get(format!("{}{link}", w.app.address)))
            .await;
        r.assert_status(400);
        let r = w.app.send(one_click(link)).await;
        r.assert_status(400);
    }
    assert_eq!(
        w.get_settings(&site).await["recipients"],
        json!([OPS, ONCALL])
    );

    // The page (GET) only asks: link scanners prefetch.
    let page = w
        .app
        .send(w.app.client.get(format!("{}{ops_link}", w.app.address)))
        .await;
    page.assert_status(200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text.contains(OPS), "{}", page.text);
    assert!(page.text.contains("<form method=\"post\""), "{}", page.text);
    assert_eq!(
        w.get_settings(&site).await["recipients"],
        json!([OPS, ONCALL])
    );

    // The one-click POST removes ops; the next reminder goes to on-call only.
    w.app.send(one_click(&ops_link)).await.assert_status(200);
    let settings = w.get_settings(&site).await;
    assert_eq!(settings["recipients"], json!([ONCALL]));
    assert_eq!(settings["enabled"], true);
    // Again: still 200, nothing changes.
    w.app.send(one_click(&ops_link)).await.assert_status(200);
    assert_eq!(w.get_settings(&site).await, settings);
    quiet_until(&w, &mut at, &[90, 110]).await;
    w.step(10).await; // 120: reminder 1
    let reminders: Vec<Mail> = w
        .mail()
        .into_iter()
        .filter(|m| m.subject.contains("reminder 1"))
        .collect();
    assert_eq!(recipients(&reminders), [ONCALL]);

    // The last recipient unsubscribes: notifications are off, and nothing more comes.
    w.app.send(one_click(&oncall_link)).await.assert_status(200);
    let settings = w.get_settings(&site).await;
    assert_eq!(settings["recipients"], json!([]));
    assert_eq!(settings["enabled"], false);
    let count = w.mail().len();
    at = 120;
    quiet_until(&w, &mut at, &[150, 180, 240]).await;
    w.heartbeat(&mut site).await;
    quiet_until(&w, &mut at, &[250]).await;
    assert_eq!(w.mail().len(), count);
}

// --- exactly once ---------------------------------------------------------------------------

#[sqlx::test]
async fn rows_claimed_by_a_sender_that_crashed_are_claimed_again_after_the_lease_and_sent_once(
    pool: PgPool,
) {
    let w = World::new(pool).await;
    let mut site = w.site("LIC-X").await;
    w.enable(&site, 1, 8, &[OPS, ONCALL]).await;
    w.sweep().await;
    w.heartbeat(&mut site).await;
    let mut at = 0;
    quiet_until(&w, &mut at, &[30]).await;
    w.advance(30).await; // 60: due, but no /admin/sweep (which would also send)

    let now = sim_now(&w.app.pool).await;
    let decided = sweep::sweep(&w.app.pool, now).await.unwrap();
    assert_eq!(decided.emails, 2, "{decided:?}");
    // A sender claims both rows, then dies without sending or marking anything.
    let claimed = sender::claim(&w.app.pool, now, 100).await.unwrap();
    assert_eq!(claimed.len(), 2);

    // While the lease holds, no other sender touches the rows.
    let sweep = w.sweep().await;
    assert_eq!(sweep["emails_sent"], 0, "{sweep}");
    w.step(4).await;
    assert!(w.mail().is_empty());
    for n in w.notifications(&site).await {
        assert_eq!(n["state"], "sending", "{n}");
        assert_eq!(n["attempts"], 1, "{n}");
    }

    // Past the 5-minute lease: claimed again, sent once.
    let sweep = w.step(2).await;
    at = 66;
    assert_eq!(sweep["emails_sent"], 2, "{sweep}");
    quiet_until(&w, &mut at, &[70, 80, 90]).await;
    let mails = w.mail();
    assert_eq!(recipients(&mails), [ONCALL, OPS]);
    for n in w.notifications(&site).await {
        assert_eq!(n["state"], "sent", "{n}");
        assert_eq!(n["attempts"], 2, "{n}");
        assert!(
            mails
                .iter()
                .any(|m| m.message_id == n["message_id"].as_str().unwrap()),
            "{n}"
        );
    }
}

/// Waits (bounded) until both outbox rows are leased (`sending`) after `n` claims.
async fn claimed(pool: &PgPool, n: i32) {
    let rows = || async {
        let rows: Vec<(String, i32)> =
            sqlx::query_as("SELECT state, attempts FROM notification_outbox")
                .fetch_all(pool)
                .await
                .unwrap();
        rows
    };
    for _ in 0..400 {
        let now = rows().await;
        // A re-claim (n > 1) skips a row whose e-mail is being sent right now (its row lock is
        // held), so it is enough that some row was claimed the n-th time.
        let claimed = if n == 1 {
            now.iter().all(|(_, a)| *a == 1)
        } else {
            now.iter().any(|(_, a)| *a == n)
        };
        if now.len() == 2 && now.iter().all(|(state, _)| state == "sending") && claimed {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!(
        "the rows were never claimed {n} time(s): {:?}",
        rows().await
    );
}

/// A sender that is still sending when its 5-minute lease runs out (a hanging SMTP server,
/// 20 s timeouts over a batch of up to 500 e-mails) must not let another replica send the same
/// e-mails again. The simulated clock stands in for the 5 minutes.
#[sqlx::test]
async fn a_sender_still_sending_when_its_lease_runs_out_does_not_make_another_replica_send_the_same_e_mail(
    pool: PgPool,
) {
    let w = World::new(pool).await;
    let mut site = w.site("LIC-L").await;
    w.enable(&site, 1, 8, &[OPS, ONCALL]).await;
    w.sweep().await;
    w.heartbeat(&mut site).await;
    let mut at = 0;
    quiet_until(&w, &mut at, &[30]).await;
    w.advance(30).await;
    let now = sim_now(&w.app.pool).await;
    assert_eq!(sweep::sweep(&w.app.pool, now).await.unwrap().emails, 2);

    // Another replica's sender: its own pooled SMTP transport, the same database.
    let replica = sender::Sender {
        mailer: streamwatch::notify::mailer::Mailer::smtp(&w.smtp.url()).unwrap(),
        from: "streamwatch <streamwatch@localhost>".parse().unwrap(),
        public_url: "http://127.0.0.1:0".to_owned(),
        unsubscribe: streamwatch::notify::email::UnsubscribeKeys::new(JWT_SECRET.as_bytes()),
        outbound: streamwatch::notify::outbound::Outbound::new(true),
        ack: streamwatch::notify::ack::AckKeys::new(
            b"a-test-secret-that-is-long-enough-0123456789",
        ),
    };
    w.smtp.pause();
    // Replica 1 (the server): claims both rows, then hangs on the first SMTP exchange.
    let first = w.sweep();
    let second = async {
        claimed(&w.app.pool, 1).await;
        // Six minutes later, replica 1 is still sending: its lease ran out.
        let later = w.advance(6).await;
        // Replica 1 sends its groups concurrently, so it may hold every row locked (replica 2
        // then claims nothing and returns) or not yet all of them (replica 2 claims the rest
        // and hangs on SMTP too). Either way SMTP comes back once replica 2 has done what it
        // can.
        let done = std::sync::atomic::AtomicBool::new(false);
        let claim_again = async {
            let r = replica.deliver_due(&w.app.pool, later).await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            r
        };
        let release = async {
            for _ in 0..400 {
                let twice: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM notification_outbox WHERE attempts = 2",
                )
                .fetch_one(&w.app.pool)
                .await
                .unwrap();
                if done.load(std::sync::atomic::Ordering::SeqCst) || twice > 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            w.smtp.resume();
        };
        tokio::join!(claim_again, release).0.unwrap()
    };
    let (first, second) = tokio::join!(first, second);
    w.sweep().await;

    let mails = w.mail();
    let mut ids: Vec<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort();
    let all = ids.len();
    ids.dedup();
    assert_eq!(
        (mails.len(), all - ids.len()),
        (2, 0),
        "one e-mail per recipient and no Message-ID twice; got {:?} (replica 1 sent {}, replica 2 sent {})",
        recipients(&mails),
        first["emails_sent"],
        second.emails_sent
    );
}

#[sqlx::test]
async fn an_smtp_server_down_for_two_hours_gets_everything_afterwards_and_nothing_twice(
    pool: PgPool,
) {
    let mut w = World::new(pool).await;
    let mut site = w.site("LIC-S").await;
    w.enable(&site, 1, 3, &[OPS, ONCALL]).await;
    w.sweep().await;
    w.heartbeat(&mut site).await;
    let mut at = 0;
    quiet_until(&w, &mut at, &[10, 20, 30, 40, 50]).await;
    w.smtp.stop().await;

    // Two simulated hours of failures: the alert is decided at 60 and retried with backoff.
    let mut failures = 0;
    while at < 180 {
        let sweep = w.step(10).await;
        at += 10;
        failures += sweep["send_failures"].as_u64().unwrap();
        assert_eq!(sweep["emails_sent"], 0, "{sweep}");
    }
    assert!(failures > 2, "attempts were made and failed: {failures}");
    let history = w.notifications(&site).await;
    assert_eq!(history.len(), 2, "{history:?}");
    for n in &history {
        assert_eq!(n["state"], "pending", "{n}");
        assert!(n["attempts"].as_i64().unwrap() > 1, "{n}");
        assert!(
            n["last_error"].as_str().is_some_and(|e| e.contains("SMTP")),
            "{n}"
        );
        assert_eq!(n["sent_at"], Value::Null);
    }

    w.smtp.start_again().await;
    // Backoff is at most 1 h: within 70 minutes everything pending went out.
    let mut steps = 0;
    while w
        .notifications(&site)
        .await
        .iter()
        .any(|n| n["state"] != "sent")
    {
        assert!(
            steps < 7,
            "still not delivered: {:?}",
            w.notifications(&site).await
        );
        w.step(10).await;
        at += 10;
        steps += 1;
    }
    let mails = w.mail();
    assert_eq!(recipients(&mails), [ONCALL, OPS]);
    assert!(mails.iter().all(|m| m.subject.contains("is inactive")));
    // Reminder 1 at opened + 3 h = minute 240.
    while at < 240 {
        w.step(10).await;
        at += 10;
    }
    quiet_until(&w, &mut at, &[250, 260, 300]).await;

    let mails = w.mail();
    assert_eq!(
        mails.len(),
        4,
        "{:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    // Exactly once by (kind, recipient): by subject and by Message-ID.
    let expected = BTreeMap::from([(ONCALL.to_owned(), 1), (OPS.to_owned(), 1)]);
    assert_eq!(subjects_per_recipient(&mails, "is inactive:"), expected);
    assert_eq!(subjects_per_recipient(&mails, "(reminder 1)"), expected);
    let mut ids: Vec<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "no Message-ID twice");
    let history = w.notifications(&site).await;
    assert_eq!(history.len(), 4);
    for n in &history {
        assert_eq!(n["state"], "sent", "{n}");
        assert!(ids.contains(&n["message_id"].as_str().unwrap()), "{n}");
    }
}

/// After an outage, the first alert and reminder 1 of one license wait for the same recipient
/// and go out together as one e-mail. Its subject must describe that license, not claim
/// "2 licenses".
#[sqlx::test]
async fn an_alert_and_its_reminder_delivered_together_after_an_outage_are_not_called_two_licenses(
    pool: PgPool,
) {
    let mut w = World::new(pool).await;
    let mut site = w.site("LIC-G").await;
    w.enable(&site, 1, 1, &[OPS]).await;
    w.sweep().await;
    w.heartbeat(&mut site).await;
    let mut at = 0;
    quiet_until(&w, &mut at, &[20, 40, 50]).await;
    w.smtp.stop().await;
    while at < 130 {
        w.step(10).await;
        at += 10;
    }
    w.smtp.start_again().await;
    let mut steps = 0;
    while w
        .notifications(&site)
        .await
        .iter()
        .any(|n| n["state"] != "sent")
    {
        assert!(
            steps < 8,
            "not delivered: {:?}",
            w.notifications(&site).await
        );
        w.step(10).await;
        steps += 1;
    }
    let history = w.notifications(&site).await;
    assert_eq!(history.len(), 2, "the alert and reminder 1: {history:?}");
    let mails = w.mail();
    for m in &mails {
        assert!(
            m.subject.contains(&site.license.key),
            "the subject does not name the one license it is about: {:?} ({} e-mail(s), {} row(s))",
            m.subject,
            mails.len(),
            history.len()
        );
    }
}

// --- the control plane's own downtime -------------------------------------------------------

/// An active license (a heartbeat every 5 minutes), then 3 hours in which streamwatch itself
/// is down (`control_plane_down`) or runs; then the agent reports again 3 minutes after.
async fn three_hours_after_an_active_period(w: &World, control_plane_down: bool) -> Site {
    let mut site = w.site("LIC-UP").await;
    w.enable(&site, 1, 8, &[OPS]).await;
    w.sweep().await;
    for _ in 0..6 {
        w.heartbeat(&mut site).await;
        w.step(5).await;
    }
    w.heartbeat(&mut site).await;
    w.sweep().await;
    w.clock(180, control_plane_down).await;
    // The restarted service's first sweep, before the agent got through again.
    w.sweep().await;
    w.step(3).await;
    w.heartbeat(&mut site).await;
    // An open episode is looked at once a (simulated) minute.
    w.step(2).await;
    site
}

#[sqlx::test]
async fn a_restart_after_three_hours_down_does_not_e_mail_a_license_that_reports_again_within_its_check_interval(
    pool: PgPool,
) {
    let w = World::new(pool).await;
    let mut site = three_hours_after_an_active_period(&w, true).await;
    for _ in 0..6 {
        w.step(5).await;
        w.heartbeat(&mut site).await;
    }
    w.sweep().await;
    assert!(
        w.mail().is_empty(),
        "{:?}",
        w.mail().iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert!(w.notifications(&site).await.is_empty());
}

#[sqlx::test]
async fn three_hours_of_silence_while_the_service_ran_do_e_mail(pool: PgPool) {
    let w = World::new(pool).await;
    let site = three_hours_after_an_active_period(&w, false).await;
    let mails = w.mail();
    assert_eq!(
        mails.len(),
        2,
        "the alert, then the recovery: {:?} {:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>(),
        w.notifications(&site).await
    );
    assert!(
        mails[0]
            .subject
            .contains("is inactive: no heartbeat for 3 h"),
        "{}",
        mails[0].subject
    );
    assert!(
        mails[1].subject.contains("active again"),
        "{}",
        mails[1].subject
    );
    assert_eq!(w.notifications(&site).await.len(), 2);
}

#[sqlx::test]
async fn a_suspended_tenant_gets_no_e_mail_for_its_quiet_licenses(pool: PgPool) {
    let w = World::new(pool).await;
    let mut site = w.site("LIC-S").await;
    w.enable(&site, 1, 8, &[OPS]).await;
    w.sweep().await;
    w.heartbeat(&mut site).await;
    w.app
        .patch(
            &format!("/api/v1/admin/tenants/{}", w.tenant.id),
            ADMIN_TOKEN,
            json!({"suspended": true}),
        )
        .await
        .assert_status(200);
    // Its agents are refused now, so the license goes quiet: not a reason to e-mail.
    let mut at = 0;
    quiet_until(&w, &mut at, &[30, 60, 90, 120]).await;
    w.step(10).await;
    assert!(w.mail().is_empty(), "{:?}", recipients(&w.mail()));

    // Reinstated and still quiet: the alert comes at the next sweep.
    w.app
        .patch(
            &format!("/api/v1/admin/tenants/{}", w.tenant.id),
            ADMIN_TOKEN,
            json!({"suspended": false}),
        )
        .await
        .assert_status(200);
    w.step(1).await;
    assert_eq!(recipients(&w.mail()), [OPS]);
}
