//! Several replicas on one database (SPEC section 9, docs/OPERATIONS.md "Running several
//! replicas"): two real `streamwatch serve` processes share a fresh PostgreSQL database, and the
//! test talks to them through its own round-robin client, as a load balancer would. Ingest and
//! notifications must behave exactly as with one server: nothing lost, nothing doubled.
//!
//! Both processes also run their own per-minute scheduler, as in production; the test does not
//! depend on whether a tick happens meanwhile. Nothing here measures time: every wait is a
//! bounded number of polls.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers of tests: a panic is a failed test with its location"
)]

use crate::helpers::{Batch, ServerProcess, Servers, database_url};
use mailparse::MailHeaderMap;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::Duration,
};
use tokio::task::JoinSet;
use uuid::Uuid;

const ADMIN: &str = "replicas-test-platform-admin-token-0123456789";
/// Shared by both replicas: a token issued by one must be accepted by the other.
const JWT_SECRET: &str = "replicas-test-jwt-secret-that-is-long-enough-0123456789";
const REPLICAS: usize = 2;
/// Licenses that receive heartbeats, and agents (instances) per license.
const LICENSES: usize = 3;
const AGENTS_PER_LICENSE: usize = 2;
const REQUESTS_PER_AGENT: u64 = 24;
const HEARTBEATS_PER_REQUEST: u64 = 3;
/// Every this many requests, the batch goes to both replicas at once (a retry racing the
/// original); two requests later, the previous batch is sent again (a late duplicate).
const RESEND_EVERY: u64 = 4;
/// Rounds of `POST /admin/sweep` sent to every replica at once.
const SWEEP_ROUNDS: usize = 5;
const RECIPIENTS: [&str; 3] = ["oncall@acme.test", "boss@acme.test", "night@acme.test"];
const INGEST: &str = "/api/v1/ingest/heartbeats";
/// How long an agent waits before it retries a shed request.
const POLL: Duration = Duration::from_millis(20);
/// Answers 429 or 503 are retried (as an agent would after `Retry-After`), this many times.
const MAX_RETRIES: u32 = 200;

/// The development mailbox folder both replicas write to; removed when dropped.
struct Mailbox(PathBuf);

impl Mailbox {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("streamwatch-replicas-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Every message in the folder, parsed: (To, Message-ID, Subject).
    fn messages(&self) -> Vec<(String, String, String)> {
        let mut messages = Vec::new();
        for entry in std::fs::read_dir(&self.0).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "eml") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let mail = mailparse::parse_mail(&bytes).unwrap();
            let header = |name: &str| {
                mail.headers
                    .get_first_value(name)
                    .unwrap_or_else(|| panic!("{} has no {name} header", path.display()))
            };
            messages.push((header("To"), header("Message-ID"), header("Subject")));
        }
        messages.sort();
        messages
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Counts of one agent's pushes, as the server answered them.
#[derive(Debug, Default)]
struct Pushed {
    instance: Uuid,
    /// Distinct heartbeats this agent made (seqs 1..=unique).
    unique: u64,
    /// Heartbeats sent again (the same seqs in a second request).
    resent: u64,
    accepted: u64,
    duplicates: u64,
    /// Answers an agent should never get here.
    surprises: Vec<String>,
}

fn batch(instance: Uuid, first_seq: u64) -> Value {
    Batch::new(instance)
        .hostname("replica-box")
        .sent_at(chrono::Utc::now())
        .seqs(first_seq..first_seq + HEARTBEATS_PER_REQUEST)
        .active_camera()
        .to_json()
}

/// Pushes one batch to `replica` (or the next one), retrying 429 and 503, and records the
/// answer's counts.
async fn push(
    lb: &Servers,
    replica: Option<usize>,
    token: &str,
    body: &Value,
    pushed: &mut Pushed,
) {
    for _ in 0..MAX_RETRIES {
        let target = replica.unwrap_or_else(|| lb.next_server());
        let (status, answer) = lb
            .send_to(target, Method::POST, INGEST, Some(token), Some(body))
            .await;
        match status {
            200 => {
                let accepted = answer["accepted"].as_u64().unwrap_or(0);
                let duplicates = answer["duplicates"].as_u64().unwrap_or(0);
                if accepted + duplicates != HEARTBEATS_PER_REQUEST {
                    pushed
                        .surprises
                        .push(format!("counts do not add up: {answer}"));
                }
                pushed.accepted += accepted;
                pushed.duplicates += duplicates;
                return;
            }
            429 | 503 => tokio::time::sleep(POLL).await,
            other => {
                pushed.surprises.push(format!("{other}: {answer}"));
                return;
            }
        }
    }
    pushed
        .surprises
        .push("still shed after every retry".to_owned());
}

/// One agent: increasing seqs, round-robin over the replicas, with resends.
async fn agent(lb: Servers, token: String) -> Pushed {
    let mut pushed = Pushed {
        instance: Uuid::new_v4(),
        ..Pushed::default()
    };
    let mut previous: Option<Value> = None;
    for k in 0..REQUESTS_PER_AGENT {
        let body = batch(pushed.instance, k * HEARTBEATS_PER_REQUEST + 1);
        pushed.unique += HEARTBEATS_PER_REQUEST;
        if k % RESEND_EVERY == 0 {
            // The same batch to two replicas at the same moment: exactly one of them stores it.
            let mut first = Pushed::default();
            let mut second = Pushed::default();
            tokio::join!(
                push(&lb, Some(0), &token, &body, &mut first),
                push(&lb, Some(1), &token, &body, &mut second),
            );
            for p in [first, second] {
                pushed.accepted += p.accepted;
                pushed.duplicates += p.duplicates;
                pushed.surprises.extend(p.surprises);
            }
            pushed.resent += HEARTBEATS_PER_REQUEST;
        } else {
            push(&lb, None, &token, &body, &mut pushed).await;
        }
        if k % RESEND_EVERY == 2
            && let Some(old) = &previous
        {
            // A late resend of the batch before, to whichever replica is next.
            push(&lb, None, &token, old, &mut pushed).await;
            pushed.resent += HEARTBEATS_PER_REQUEST;
        }
        previous = Some(body);
    }
    pushed
}

/// The admin's `POST /admin/sweep` on every replica at the same moment, `SWEEP_ROUNDS` times.
/// Returns how many of those sweeps were skipped because another replica held the lock.
async fn sweep_everywhere(lb: &Servers) -> usize {
    let mut skipped = 0;
    for _ in 0..SWEEP_ROUNDS {
        let mut sweeps = JoinSet::new();
        for replica in 0..REPLICAS {
            let lb = lb.clone();
            sweeps.spawn(async move {
                lb.send_to(
                    replica,
                    Method::POST,
                    "/api/v1/admin/sweep",
                    Some(ADMIN),
                    None,
                )
                .await
            });
        }
        while let Some(answer) = sweeps.join_next().await {
            let (status, body) = answer.unwrap();
            assert_eq!(status, 200, "POST /admin/sweep: {body}");
            if body["skipped"] == true {
                skipped += 1;
            }
        }
    }
    skipped
}

#[sqlx::test(migrations = false)]
async fn two_replicas_behind_a_round_robin_balancer_store_every_heartbeat_once_and_send_every_email_once(
    pool: PgPool,
) {
    let db = database_url(&pool);
    let mailbox = Mailbox::new();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let env = [
        ("STREAMWATCH__CLOCK__SIMULATED", "true"),
        // No SMTP URL: in development the e-mails go to this folder.
        (
            "STREAMWATCH__SMTP__MAILBOX_DIR",
            mailbox.0.to_str().unwrap(),
        ),
    ];
    // Both start at once, so both apply the migrations at once: PostgreSQL serialises them.
    let mut servers: Vec<ServerProcess> = (0..REPLICAS)
        .map(|_| ServerProcess::spawn(&db, ADMIN, JWT_SECRET, &env))
        .collect();
    for server in &mut servers {
        server.wait_until_healthy().await;
    }
    // The test's load balancer: every request goes to the next replica in turn.
    let lb = Servers::new(client, servers.iter().map(|s| s.base.clone()).collect());

    // --- Set-up, each request on the next replica: a token from one works on the other. ---
    let owner = lb.create_tenant(ADMIN, "ops@acme.test").await;
    let mut agent_tokens = Vec::new();
    for n in 0..LICENSES {
        let id = lb
            .create_license(
                &owner,
                json!({"key": format!("LIC-{n}"), "name": format!("Depot {n}"),
                       "kind": "direct", "check_interval_seconds": 600}),
            )
            .await;
        for _ in 0..AGENTS_PER_LICENSE {
            agent_tokens.push(lb.create_agent_token(&owner, &id).await);
        }
    }

    // --- Ingest: every agent pushes concurrently, round-robin, with resends. ---
    let mut agents = JoinSet::new();
    for token in agent_tokens {
        agents.spawn(agent(lb.clone(), token));
    }
    let mut pushed = Vec::new();
    while let Some(p) = agents.join_next().await {
        pushed.push(p.unwrap());
    }
    let surprises: Vec<&String> = pushed.iter().flat_map(|p| &p.surprises).collect();
    assert!(surprises.is_empty(), "unexpected answers: {surprises:?}");
    for p in &pushed {
        assert_eq!(
            (p.accepted, p.duplicates),
            (p.unique, p.resent),
            "instance {}: every heartbeat accepted once, every resend a duplicate",
            p.instance
        );
        let stored: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT seq, count(*) FROM heartbeats WHERE instance_id = $1 GROUP BY seq ORDER BY seq",
        )
        .bind(p.instance)
        .fetch_all(&pool)
        .await
        .unwrap();
        let expected: Vec<(i64, i64)> = (1..=i64::try_from(p.unique).unwrap())
            .map(|seq| (seq, 1))
            .collect();
        assert_eq!(
            stored, expected,
            "instance {}: every seq stored exactly once",
            p.instance
        );
        let (mark, total): (i64, i64) = sqlx::query_as(
            "SELECT high_water_seq, heartbeats_total FROM agent_instances WHERE instance_id = $1",
        )
        .bind(p.instance)
        .fetch_one(&pool)
        .await
        .unwrap();
        let unique = i64::try_from(p.unique).unwrap();
        assert_eq!((mark, total), (unique, unique), "instance {}", p.instance);
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM heartbeats")
        .fetch_one(&pool)
        .await
        .unwrap();
    let unique: u64 = pushed.iter().map(|p| p.unique).sum();
    assert_eq!(rows, i64::try_from(unique).unwrap());

    // --- Notifications: one license goes quiet; both replicas sweep at once, repeatedly. ---
    let quiet_id = lb
        .create_license(
            &owner,
            json!({"key": "QUIET-1", "name": "Quiet depot", "kind": "direct",
                   "check_interval_seconds": 600}),
        )
        .await;
    let quiet_agent = lb.create_agent_token(&owner, &quiet_id).await;
    let quiet_instance = Uuid::new_v4();
    let mut seen = Pushed::default();
    push(
        &lb,
        None,
        &quiet_agent,
        &batch(quiet_instance, 1),
        &mut seen,
    )
    .await;
    assert_eq!((seen.accepted, &seen.surprises), (3, &Vec::new()));
    lb.expect(
        Method::PUT,
        &format!("/api/v1/licenses/{quiet_id}/notification-settings"),
        Some(&owner),
        Some(json!({"enabled": true, "inactivity_interval_seconds": 3600,
                    "notification_interval_seconds": 28800, "recipients": RECIPIENTS,
                    "notify_on_recovery": true})),
        200,
    )
    .await;
    // A first sweep starts the control plane's alive record; then two simulated hours pass
    // (moved on one replica, seen by both) with the service up.
    sweep_everywhere(&lb).await;
    assert!(mailbox.messages().is_empty(), "nothing is due yet");
    lb.expect(
        Method::POST,
        "/api/v1/admin/clock",
        Some(ADMIN),
        Some(json!({"advance_seconds": 7200})),
        200,
    )
    .await;
    let skipped = sweep_everywhere(&lb).await;

    let mut expected_recipients: Vec<String> = RECIPIENTS.iter().map(|r| (*r).to_owned()).collect();
    expected_recipients.sort();
    let messages = mailbox.messages();
    let recipients: Vec<String> = messages.iter().map(|(to, _, _)| to.clone()).collect();
    let mut sorted = recipients.clone();
    sorted.sort();
    assert_eq!(
        sorted, expected_recipients,
        "one inactivity e-mail per recipient, from {REPLICAS} replicas sweeping at once ({skipped} sweeps skipped for the lock): {messages:?}"
    );
    let ids: BTreeSet<&String> = messages.iter().map(|(_, id, _)| id).collect();
    assert_eq!(
        ids.len(),
        messages.len(),
        "Message-IDs are unique: {messages:?}"
    );

    // Activity returns: exactly one recovery e-mail per recipient, however many sweeps run.
    push(
        &lb,
        None,
        &quiet_agent,
        &batch(quiet_instance, 4),
        &mut seen,
    )
    .await;
    assert_eq!((seen.accepted, &seen.surprises), (6, &Vec::new()));
    // An open episode is looked at again a minute after each sweep.
    lb.expect(
        Method::POST,
        "/api/v1/admin/clock",
        Some(ADMIN),
        Some(json!({"advance_seconds": 120})),
        200,
    )
    .await;
    sweep_everywhere(&lb).await;
    let messages = mailbox.messages();
    let mut per_recipient: BTreeMap<String, usize> = BTreeMap::new();
    for (to, _, _) in &messages {
        *per_recipient.entry(to.clone()).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> =
        RECIPIENTS.iter().map(|r| ((*r).to_owned(), 2)).collect();
    assert_eq!(
        per_recipient, expected,
        "an inactivity and a recovery e-mail per recipient: {messages:?}"
    );
    let ids: BTreeSet<&String> = messages.iter().map(|(_, id, _)| id).collect();
    assert_eq!(
        ids.len(),
        messages.len(),
        "Message-IDs are unique: {messages:?}"
    );

    // The outbox agrees: every row sent once, each in its own message.
    let outbox: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT kind, state, message_id FROM notification_outbox ORDER BY kind, recipient",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(outbox.len(), 2 * RECIPIENTS.len(), "{outbox:?}");
    assert!(
        outbox
            .iter()
            .all(|(_, state, id)| state == "sent" && id.is_some()),
        "{outbox:?}"
    );
    let outbox_ids: BTreeSet<&str> = outbox
        .iter()
        .filter_map(|(_, _, id)| id.as_deref())
        .collect();
    assert_eq!(outbox_ids.len(), outbox.len(), "{outbox:?}");
    drop(servers);
}
