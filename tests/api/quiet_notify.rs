//! Quiet periods in the notification sweep (SPEC section 5b), end to end: the in-process
//! application on the simulated clock, a real SMTP server process (aiosmtpd) and real
//! PostgreSQL. Windows and snoozes are written with the store's functions and SQL, as the API
//! writes them, followed by `store::windows::recheck` as the API calls it.
//!
//! Time moves in simulated steps, each followed by `POST /admin/sweep` (a sweep, then one send
//! pass). Nothing here measures time.

use crate::{
    helpers::*,
    smtp::{Mail, SmtpServer},
};
use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;
use std::collections::BTreeMap;
use streamwatch::{
    domain::quiet::Scope,
    store::windows::{self, WindowFields},
};
use uuid::Uuid;

/// A site with notifications on, and its agent's instance.
struct Site {
    license: TestSite,
    instance: Uuid,
    recipient: String,
}

/// The application on the simulated clock as `replicas` in-process replicas on one database,
/// sending to one real SMTP server.
struct World {
    replicas: Vec<TestApp>,
    smtp: SmtpServer,
    pool: PgPool,
    /// The simulated now at the start of the scenario: minute 0.
    start: DateTime<Utc>,
}

impl World {
    async fn new(pool: PgPool, replicas: usize) -> Self {
        let smtp = SmtpServer::start().await;
        let url = smtp.url();
        let mut apps = Vec::new();
        for _ in 0..replicas {
            let url = url.clone();
            apps.push(
                TestApp::spawn_with(pool.clone(), move |s| {
                    s.clock.simulated = true;
                    s.smtp.url = Some(url.into());
                })
                .await,
            );
        }
        Self {
            replicas: apps,
            smtp,
            pool,
            start: DateTime::<Utc>::MIN_UTC,
        }
    }

    /// Minute 0 of the scenario: a minute from now, after the setup. The simulated clock goes
    /// on in real time between steps, so each step lands a little (seconds) after its minute.
    async fn begin(&mut self) {
        self.start = self.advance(1).await;
    }

    fn app(&self) -> &TestApp {
        &self.replicas[0]
    }

    /// The moment `minute` minutes after the start.
    fn at(&self, minute: i64) -> DateTime<Utc> {
        self.start + Duration::minutes(minute)
    }

    /// A site with notifications on: inactivity 1 h, reminders every 8 h, one recipient.
    async fn site(&self, tenant: &TestTenant, key: &str) -> Site {
        let license = self.app().create_site(&tenant.owner_token, key).await;
        let recipient = format!("ops-{}@acme.test", key.to_ascii_lowercase());
        self.app()
            .put_notification_settings(
                &tenant.owner_token,
                &license.id,
                json!({"enabled": true, "inactivity_interval_seconds": 3600,
                       "notification_interval_seconds": 8 * 3600, "recipients": [recipient]}),
            )
            .await
            .assert_status(200);
        Site {
            license,
            instance: Uuid::new_v4(),
            recipient,
        }
    }

    /// One accepted heartbeat from the site's agent (activity at the simulated now).
    async fn heartbeat(&self, site: &Site, seq: u64) {
        let batch = Batch::new(site.instance).seq(seq).active_camera();
        self.app().push_ok(&site.license.agent_token, &batch).await;
    }

    /// Moves the simulated clock forward (the service running meanwhile); the new now.
    async fn advance(&self, minutes: i64) -> DateTime<Utc> {
        let r = self
            .app()
            .post(
                "/api/v1/admin/clock",
                ADMIN_TOKEN,
                json!({"advance_seconds": minutes * 60}),
            )
            .await;
        r.assert_status(200);
        r.body["now"].as_str().unwrap().parse().unwrap()
    }

    /// `POST /admin/sweep` on every replica at once. One of them decides (the others find the
    /// lock taken and skip); every one of them runs a send pass.
    async fn sweep(&self) {
        match self.replicas.as_slice() {
            [a] => sweep(a).await,
            [a, b] => {
                tokio::join!(sweep(a), sweep(b));
            }
            _ => unreachable!("one or two replicas"),
        }
    }

    /// Moves the clock to minute `to` (from minute `*now`) and sweeps.
    async fn step_to(&self, now: &mut i64, to: i64) {
        assert!(to > *now, "steps go forward");
        self.advance(to - *now).await;
        *now = to;
        self.sweep().await;
    }

    fn mail(&self) -> Vec<Mail> {
        self.smtp.messages()
    }

    /// A tenant-wide one-off window from minute `from` to minute `to`, written at minute `now`
    /// as the API writes it; returns its end as stored.
    async fn window(&self, tenant: &TestTenant, now: i64, from: i64, to: i64) -> DateTime<Utc> {
        let tenant_id: Uuid = tenant.id.parse().unwrap();
        let mut conn = self.pool.acquire().await.unwrap();
        let row = windows::insert(
            &mut conn,
            tenant_id,
            &WindowFields {
                name: "firmware roll-out".into(),
                scope: Scope::All,
                starts_at: self.at(from),
                ends_at: Some(self.at(to)),
                rrule: None,
                duration_seconds: None,
                timezone: "UTC".into(),
            },
        )
        .await
        .unwrap();
        windows::recheck(&mut conn, tenant_id, None, self.at(now))
            .await
            .unwrap();
        row.ends_at.unwrap()
    }
}

/// `POST /admin/sweep` on one replica.
async fn sweep(app: &TestApp) {
    app.request(Method::POST, "/api/v1/admin/sweep", Some(ADMIN_TOKEN), None)
        .await
        .assert_status(200);
}

/// Each recipient's e-mails, in the order received: what each one is ([`kind`]).
fn by_recipient(mails: &[Mail]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in mails {
        out.entry(m.to.clone()).or_default().push(kind(&m.subject));
    }
    out
}

/// "<license key> inactive", "<key> reminder <k>" or "<key> recovery", from a subject such as
/// `❌ Site LIC-01 (LIC-01) is still inactive after 9 h (reminder 1)`.
fn kind(subject: &str) -> String {
    let key = subject
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map_or("?", |(key, _)| key);
    if let Some((_, k)) = subject.split_once("(reminder ") {
        format!("{key} reminder {}", k.trim_end_matches(')'))
    } else if subject.contains(" is inactive: ") {
        format!("{key} inactive")
    } else if subject.contains(" is active again") {
        format!("{key} recovery")
    } else {
        format!("unexpected: {subject}")
    }
}

/// Message-IDs received more than once.
fn doubled(mails: &[Mail]) -> Vec<String> {
    let mut seen = BTreeMap::new();
    for m in mails {
        *seen.entry(m.message_id.clone()).or_insert(0) += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(id, _)| id)
        .collect()
}

const FLEET: usize = 50;

#[sqlx::test]
async fn a_tenant_wide_window_over_a_fleet_that_goes_dark_in_it_sends_nothing_then_each_first_alert_one_interval_after_its_end_once_across_two_replicas(
    pool: PgPool,
) {
    let mut w = World::new(pool, 2).await;
    let acme = w.app().create_tenant("acme").await;
    let mut fleet = Vec::new();
    for i in 0..FLEET {
        fleet.push(w.site(&acme, &format!("LIC-{i:02}")).await);
    }
    // Another tenant without a window: its site is alerted on time, in the middle of acme's.
    let other = w.app().create_tenant("other").await;
    let outside = w.site(&other, "OUT-1").await;
    w.begin().await;
    // Every replica sweeps once: the alive record begins. Then every site reports.
    w.sweep().await;
    let mut seq = 1;
    for site in fleet.iter().chain([&outside]) {
        w.heartbeat(site, seq).await;
    }

    // acme's window: minutes 10 to 190. The sites go dark inside it, at 20, 50, 80, 110 or
    // 140 (their last heartbeat); without the window the first would be alerted at 80.
    let window_end = w.window(&acme, 0, 10, 190).await;
    let mut now = 0;
    for dark_at in [20, 50, 80, 110, 140] {
        w.step_to(&mut now, dark_at).await;
        seq += 1;
        for (i, site) in fleet.iter().enumerate() {
            if 20 + 30 * (i as i64 % 5) >= dark_at {
                w.heartbeat(site, seq).await;
            }
        }
    }
    // Through the window and the hour after it, every 10 minutes: only the other tenant's
    // alert (dark since 0, due at 60: the step at 80).
    while now < 240 {
        let next = now + 10;
        w.step_to(&mut now, next).await;
    }
    assert_eq!(
        by_recipient(&w.mail()),
        BTreeMap::from([(outside.recipient.clone(), vec!["OUT-1 inactive".to_owned()])]),
        "nothing for acme during its window and the hour after it"
    );

    // 250 = the window's end + 1 h: every acme site's first alert, whenever it went dark.
    w.step_to(&mut now, 250).await;
    let opened: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT e.opened_at FROM notification_episodes e WHERE e.tenant_id = $1",
    )
    .bind(acme.id.parse::<Uuid>().unwrap())
    .fetch_all(&w.pool)
    .await
    .unwrap();
    assert_eq!(opened.len(), FLEET);
    assert!(
        opened.iter().all(|&t| t == window_end + Duration::hours(1)),
        "each episode opened one inactivity interval after the window's end: {opened:?}"
    );
    // The first reminder 8 h later, and nothing between.
    let acme_mails = |w: &World| {
        w.mail()
            .iter()
            .filter(|m| m.to != outside.recipient)
            .count()
    };
    assert_eq!(acme_mails(&w), FLEET, "one alert per acme site");
    while now < 250 + 8 * 60 - 30 {
        let next = now + 30;
        w.step_to(&mut now, next).await;
    }
    assert_eq!(acme_mails(&w), FLEET, "no reminder before 8 h");
    w.step_to(&mut now, 250 + 8 * 60).await;
    // Two more rounds at the final time: a no-op unless a sweep was still to decide.
    for _ in 0..2 {
        w.sweep().await;
    }

    let mails = w.mail();
    assert_eq!(doubled(&mails), Vec::<String>::new(), "no e-mail twice");
    let got = by_recipient(&mails);
    for (i, site) in fleet.iter().enumerate() {
        let key = format!("LIC-{i:02}");
        assert_eq!(
            got.get(&site.recipient),
            Some(&vec![
                format!("{key} inactive"),
                format!("{key} reminder 1")
            ]),
            "{key}"
        );
    }
    // The other tenant: opened at 60, reminder 1 due at 540 (the step at 550).
    assert_eq!(
        got[&outside.recipient],
        ["OUT-1 inactive", "OUT-1 reminder 1"],
        "{got:?}"
    );
    assert_eq!(got.len(), FLEET + 1);
    let unfinished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notification_outbox WHERE state <> 'sent'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(unfinished, 0);
}

#[sqlx::test]
async fn a_snoozed_license_sends_nothing_and_after_the_snooze_ends_early_its_alert_comes_one_interval_of_non_quiet_time_later(
    pool: PgPool,
) {
    let mut w = World::new(pool, 1).await;
    let acme = w.app().create_tenant("acme").await;
    let site = w.site(&acme, "LIC-Z").await;
    w.begin().await;
    w.sweep().await;
    w.heartbeat(&site, 1).await;
    let license: Uuid = site.license.id.parse().unwrap();
    let tenant: Uuid = acme.id.parse().unwrap();

    // Dark since minute 0; snoozed for 24 h at minute 20, as the API does it.
    let mut now = 0;
    w.step_to(&mut now, 20).await;
    let snoozed_at = w.at(20);
    sqlx::query(
        "UPDATE licenses SET snoozed_at = $3, snoozed_until = $4 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(license)
    .bind(snoozed_at)
    .bind(snoozed_at + Duration::hours(24))
    .execute(&w.pool)
    .await
    .unwrap();
    let mut conn = w.pool.acquire().await.unwrap();
    windows::recheck(&mut conn, tenant, Some(&[license]), snoozed_at)
        .await
        .unwrap();
    // Without the snooze the alert would come at 60.
    for to in [40, 60, 61, 120, 180] {
        w.step_to(&mut now, to).await;
    }
    assert_eq!(w.mail().len(), 0, "nothing while snoozed");

    // Ended early at 180: the snooze's end moves there.
    let ended = w.at(180);
    sqlx::query("UPDATE licenses SET snoozed_until = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(license)
        .bind(ended)
        .execute(&w.pool)
        .await
        .unwrap();
    windows::recheck(&mut conn, tenant, Some(&[license]), ended)
        .await
        .unwrap();
    // 20 minutes counted before the snooze, so 40 after it: the alert at 220.
    for to in [181, 200, 219] {
        w.step_to(&mut now, to).await;
    }
    assert_eq!(w.mail().len(), 0, "nothing before 40 more minutes");
    w.step_to(&mut now, 220).await;
    assert_eq!(
        by_recipient(&w.mail()),
        BTreeMap::from([(site.recipient.clone(), vec!["LIC-Z inactive".to_owned()])])
    );
    let (last_activity, opened_at): (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "SELECT e.baseline_at, e.opened_at FROM notification_episodes e WHERE e.tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(&w.pool)
    .await
    .unwrap();
    // Exactly: the hour is the time before the snooze plus the time after it.
    assert_eq!(
        (snoozed_at - last_activity) + (opened_at - ended),
        Duration::hours(1)
    );
}
