//! Exactly-once notification e-mails across replicas, with real processes: two `streamwatch
//! serve` processes on one database and one SMTP server (aiosmtpd), sweeping at the same time
//! over a 48-hour simulated timeline. Every e-mail the rules call for must arrive once, and
//! none twice; so must every webhook event (SPEC section 5a), at a real HTTP receiver.
//!
//! Nothing here measures time: every wait is a bounded number of polls.

use crate::{
    helpers::{Batch, ServerProcess, Servers, database_url},
    receiver::Receiver,
    smtp::SmtpServer,
};
use chrono::Timelike;
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;
use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};
use uuid::Uuid;

const ADMIN: &str = "notify-processes-admin-token-0123456789";
/// The same for both processes: the unsubscribe links of either must verify in the other.
const JWT_SECRET: &str = "notify-processes-jwt-secret-that-is-long-enough-0123456789";

/// One simulated step, in minutes.
const STEP: i64 = 20;
/// 48 hours of steps.
const STEPS: i64 = 48 * 60 / STEP;

/// A license of the scenario: its settings (in steps) and when its agent reports.
struct Plan {
    key: &'static str,
    inactivity_steps: i64,
    notification_steps: i64,
    notify_on_recovery: bool,
    /// The steps at which the agent pushes one heartbeat (after the clock moved, before the
    /// sweeps of that step).
    heartbeats: Vec<i64>,
}

impl Plan {
    fn recipients(&self) -> [String; 2] {
        let key = self.key.to_ascii_lowercase();
        [
            format!("ops-{key}@acme.test"),
            format!("oncall-{key}@acme.test"),
        ]
    }

    /// The e-mails the rules of SPEC section 5 call for by the end of step `last`, per
    /// recipient: (kind, k), one entry per e-mail (a kind may repeat across episodes).
    fn expected(&self, last: i64) -> Vec<(String, i64)> {
        let beats = &self.heartbeats;
        let mut emails = Vec::new();
        let mut i = 0;
        loop {
            // The baseline: the last heartbeat before the episode would open. A heartbeat at
            // the very step it would open is pushed before that step's sweeps: no episode.
            while beats
                .get(i + 1)
                .is_some_and(|&next| next <= beats[i] + self.inactivity_steps)
            {
                i += 1;
            }
            let opened = beats[i] + self.inactivity_steps;
            if opened > last {
                return emails;
            }
            emails.push(("inactive".to_owned(), 0));
            // The next heartbeat closes the episode at its step's sweep.
            let closes = beats.get(i + 1).copied();
            let until = closes.unwrap_or(last + 1);
            let mut k = 1;
            while opened + k * self.notification_steps < until
                && opened + k * self.notification_steps <= last
            {
                emails.push(("reminder".to_owned(), k));
                k += 1;
            }
            if closes.is_none() {
                return emails;
            }
            if self.notify_on_recovery {
                emails.push(("recovery".to_owned(), 0));
            }
            i += 1;
        }
    }
}

/// `POST /admin/sweep` on one process.
async fn sweep(server: &Servers) {
    server
        .expect(Method::POST, "/api/v1/admin/sweep", Some(ADMIN), None, 200)
        .await;
}

/// Keeps the clock's jumps away from second 0 of the wall-clock minute, when each process's
/// own scheduler runs its per-minute tick. A tick that read the simulated now just before a
/// 20-minute jump would hold 5-minute leases that, on the simulated clock, have already run
/// out; with a real clock that cannot happen. Bounded: at most a few seconds.
async fn away_from_the_minute_tick() {
    for _ in 0..40 {
        let second = chrono::Utc::now().second();
        if (3..=56).contains(&second) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[sqlx::test]
async fn two_server_processes_sweeping_at_the_same_time_for_48_simulated_hours_send_every_e_mail_exactly_once(
    pool: PgPool,
) {
    let smtp = SmtpServer::start().await;
    let rx = Receiver::start().await;
    let db = database_url(&pool);
    let smtp_url = smtp.url();
    let env = [
        ("STREAMWATCH__CLOCK__SIMULATED", "true"),
        ("STREAMWATCH__SMTP__URL", smtp_url.as_str()),
        // The receiver listens on loopback over plain http.
        ("STREAMWATCH__CHANNELS__ALLOW_PRIVATE_TARGETS", "true"),
    ];
    let a = ServerProcess::start(&db, ADMIN, JWT_SECRET, &env).await;
    let b = ServerProcess::start(&db, ADMIN, JWT_SECRET, &env).await;
    let client = reqwest::Client::new();
    let to_a = Servers::new(client.clone(), vec![a.base.clone()]);
    let to_b = Servers::new(client, vec![b.base.clone()]);

    // Setup through A.
    let owner = to_a.create_tenant(ADMIN, "owner@acme.test").await;
    let hook = to_a
        .expect(
            Method::POST,
            "/api/v1/channels",
            Some(&owner),
            Some(
                json!({"name": "Ops hook", "kind": "webhook", "config": {"url": rx.url("/hook")}}),
            ),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Steps of 20 minutes: 3 steps = 1 h.
    let plans = [
        // Quiet from the start, never back: the alert at 1 h, reminders every 3 h.
        Plan {
            key: "LIC-1",
            inactivity_steps: 3,
            notification_steps: 9,
            notify_on_recovery: true,
            heartbeats: vec![0],
        },
        // Quiet, back at 20 h (recovery e-mail), quiet again: a second episode.
        Plan {
            key: "LIC-2",
            inactivity_steps: 6,
            notification_steps: 15,
            notify_on_recovery: true,
            heartbeats: vec![0, 60],
        },
        // Quiet, back at 10 h without a recovery e-mail, active until 15 h, then quiet.
        Plan {
            key: "LIC-3",
            inactivity_steps: 3,
            notification_steps: 24,
            notify_on_recovery: false,
            heartbeats: std::iter::once(0).chain(30..=45).collect(),
        },
        // Active for 12 h, then quiet: 4 h inactivity, hourly reminders.
        Plan {
            key: "LIC-4",
            inactivity_steps: 12,
            notification_steps: 3,
            notify_on_recovery: true,
            heartbeats: (0..=36).collect(),
        },
    ];
    let mut sites = Vec::new();
    for plan in &plans {
        let license = to_a
            .create_license(
                &owner,
                json!({"key": plan.key, "name": format!("Site {}", plan.key), "kind": "direct",
                       "check_interval_seconds": 600}),
            )
            .await;
        let agent = to_a.create_agent_token(&owner, &license).await;
        to_a.expect(
            Method::PUT,
            &format!("/api/v1/licenses/{license}/notification-settings"),
            Some(&owner),
            Some(json!({"enabled": true,
                        "inactivity_interval_seconds": plan.inactivity_steps * STEP * 60,
                        "notification_interval_seconds": plan.notification_steps * STEP * 60,
                        "recipients": plan.recipients(),
                        "notify_on_recovery": plan.notify_on_recovery})),
            200,
        )
        .await;
        sqlx::query("UPDATE notification_settings SET channels = ARRAY[$1::uuid] WHERE license_id = $2::uuid")
            .bind(&hook)
            .bind(&license)
            .execute(&pool)
            .await
            .unwrap();
        sites.push((license, agent, Uuid::new_v4()));
    }

    // Both processes sweep once before the timeline starts: the alive record begins.
    tokio::join!(sweep(&to_a), sweep(&to_b));

    let mut seq = 0;
    for step in 0..=STEPS {
        if step > 0 {
            away_from_the_minute_tick().await;
            to_a.expect(
                Method::POST,
                "/api/v1/admin/clock",
                Some(ADMIN),
                Some(json!({"advance_seconds": STEP * 60})),
                200,
            )
            .await;
        }
        for (plan, (_, agent, instance)) in plans.iter().zip(&sites) {
            if plan.heartbeats.contains(&step) {
                seq += 1;
                let batch = Batch::new(*instance).seq(seq).active_camera();
                let r = to_a
                    .expect(
                        Method::POST,
                        "/api/v1/ingest/heartbeats",
                        Some(agent),
                        Some(batch.to_json()),
                        200,
                    )
                    .await;
                assert_eq!(r["accepted"], 1, "{r}");
            }
        }
        tokio::join!(sweep(&to_a), sweep(&to_b));
    }
    // Two more rounds at the final time: whatever a sweep that lost the lock to a scheduler
    // tick left undecided is decided now (a no-op otherwise).
    for _ in 0..2 {
        tokio::join!(sweep(&to_a), sweep(&to_b));
    }

    // The outbox: every row sent, none waiting or leased.
    let unfinished: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notification_outbox WHERE state IN ('pending', 'sending', 'failed')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(unfinished, 0, "rows not sent");
    let rows: Vec<(String, String, i32, String, String)> = sqlx::query_as(
        "SELECT l.key, o.kind, o.k, o.recipient, o.message_id
         FROM notification_outbox o JOIN licenses l ON l.tenant_id = o.tenant_id AND l.id = o.license_id
         WHERE o.channel_kind = 'email'
         ORDER BY 1, 4, o.due_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();

    // What the rules call for, per recipient, against what was decided.
    let mut expected: BTreeMap<String, Vec<(String, String, i64)>> = BTreeMap::new();
    for plan in &plans {
        for to in plan.recipients() {
            for (kind, k) in plan.expected(STEPS) {
                expected
                    .entry(to.clone())
                    .or_default()
                    .push((plan.key.to_owned(), kind, k));
            }
        }
    }
    let mut decided: BTreeMap<String, Vec<(String, String, i64)>> = BTreeMap::new();
    for (key, kind, k, to, _) in &rows {
        decided
            .entry(to.clone())
            .or_default()
            .push((key.clone(), kind.clone(), i64::from(*k)));
    }
    for list in expected.values_mut().chain(decided.values_mut()) {
        list.sort();
    }
    assert_eq!(decided, expected, "the e-mails decided follow the rules");

    // The Maildir: every message once, and exactly the messages the outbox says were sent.
    let mails = smtp.messages();
    let mut seen = BTreeMap::new();
    for m in &mails {
        *seen.entry(m.message_id.clone()).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "Message-IDs received more than once: {twice:?}"
    );
    let sent: BTreeSet<String> = rows.iter().map(|r| r.4.clone()).collect();
    let received: BTreeSet<String> = seen.keys().cloned().collect();
    assert_eq!(
        received, sent,
        "the Maildir holds exactly the sent messages"
    );
    // And by subject: each received message names its rows' license and e-mail.
    for m in &mails {
        let carried: Vec<_> = rows.iter().filter(|r| r.4 == m.message_id).collect();
        assert!(carried.iter().all(|r| r.3 == m.to), "{}: {carried:?}", m.to);
        if let [(key, kind, k, _, _)] = carried.as_slice() {
            let wanted = match kind.as_str() {
                "inactive" => format!("Site {key} ({key}) is inactive:"),
                "reminder" => format!("(reminder {k})"),
                _ => format!("Site {key} ({key}) is active again"),
            };
            assert!(m.subject.contains(&wanted), "{} for {carried:?}", m.subject);
            assert!(m.subject.contains(key.as_str()), "{}", m.subject);
        }
    }
    let total: usize = expected.values().map(Vec::len).sum();
    assert_eq!(
        total, 134,
        "2 recipients × (16 + 11 + 7 + 33): the plan worked out by hand"
    );
    assert_eq!(rows.len(), total);
    assert_eq!(
        mails.len(),
        total,
        "no digests here: one license per recipient"
    );

    // The webhook: one request per event the rules call for, each event id once, each the
    // id of a sent outbox row.
    let hooks: Vec<(String, String)> = sqlx::query_as(
        "SELECT o.id::text, o.kind FROM notification_outbox o WHERE o.channel_kind = 'webhook'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let per_license: usize = plans.iter().map(|p| p.expected(STEPS).len()).sum();
    assert_eq!(hooks.len(), per_license, "one webhook row per event");
    let requests = rx.requests().await;
    let mut ids = BTreeMap::new();
    for r in &requests {
        *ids.entry(r.json["id"].as_str().unwrap_or("?").to_owned())
            .or_insert(0) += 1;
    }
    let doubled: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "events delivered more than once: {doubled:?}"
    );
    let wanted: BTreeSet<String> = hooks.iter().map(|h| h.0.clone()).collect();
    let got: BTreeSet<String> = ids.keys().cloned().collect();
    assert_eq!(got, wanted, "the receiver got exactly the decided events");

    for (name, server) in [("A", a), ("B", b)] {
        let stderr = server.kill().await;
        assert!(!stderr.contains("panicked"), "process {name}: {stderr}");
    }
}
