//! "A 2xx means committed" (SPEC section 3), checked with real processes: the `streamwatch`
//! binary serves, agents push as fast as they can, and the server is killed with SIGKILL in
//! the middle. Everything acknowledged must be in PostgreSQL, and a resend of what was in
//! flight must be stored at most once.
//!
//! Nothing here measures time: every wait is a bounded number of polls.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers of tests: a panic is a failed test with its location"
)]

use crate::helpers::{Batch, Camera, ServerProcess, Servers, database_url};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::task::JoinSet;
use uuid::Uuid;

const ADMIN: &str = "durability-test-platform-admin-token-0123456789";
const JWT_SECRET: &str = "durability-test-jwt-secret-that-is-long-enough-0123456789";
/// Concurrent agents, each with its own instance id and agent token (one license).
const AGENTS: usize = 8;
const MAX_REQUESTS_PER_AGENT: u64 = 2000;
const HEARTBEATS_PER_REQUEST: u64 = 3;
/// The server is killed once this many heartbeats have been acknowledged.
const KILL_AFTER_ACKNOWLEDGED: u64 = 300;
/// How often something is polled, and at most how many times before the test gives up.
const POLL: Duration = Duration::from_millis(20);
const MAX_POLLS: u32 = 3000;
const INGEST: &str = "/api/v1/ingest/heartbeats";

/// A tenant, its owner's login, one license, and one agent token per agent.
async fn set_up(client: &reqwest::Client, base: &str) -> Vec<String> {
    let server = Servers::new(client.clone(), vec![base.to_owned()]);
    let owner = server.create_tenant(ADMIN, "ops@acme.test").await;
    let license = server
        .create_license(
            &owner,
            json!({"key": "LIC-001", "name": "Depot 7", "check_interval_seconds": 600}),
        )
        .await;
    let mut tokens = Vec::new();
    for _ in 0..AGENTS {
        tokens.push(server.create_agent_token(&owner, &license).await);
    }
    tokens
}

fn batch(instance: Uuid, first_seq: u64) -> Value {
    Batch::new(instance)
        .hostname("load-box")
        .sent_at(chrono::Utc::now())
        .seqs(first_seq..first_seq + HEARTBEATS_PER_REQUEST)
        .cameras([
            ("camera-1", Camera::active()),
            ("camera-2", Camera::active()),
        ])
        .to_json()
}

fn seqs_of(batch: &Value) -> Vec<i64> {
    batch["heartbeats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["seq"].as_i64().unwrap())
        .collect()
}

/// What one agent saw.
struct Pushed {
    instance: Uuid,
    token: String,
    /// Every seq of a request answered 2xx.
    acknowledged: Vec<i64>,
    /// The batch in flight (or about to be sent) when the connection failed.
    unacknowledged: Option<Value>,
    /// Answers no agent should get here.
    surprises: Vec<String>,
}

/// Pushes batches with increasing seqs until the connection fails (or the bound is reached).
async fn push_until_the_server_dies(
    client: reqwest::Client,
    base: String,
    token: String,
    acknowledged_total: Arc<AtomicU64>,
) -> Pushed {
    let mut pushed = Pushed {
        instance: Uuid::new_v4(),
        token,
        acknowledged: Vec::new(),
        unacknowledged: None,
        surprises: Vec::new(),
    };
    let mut next_seq = 1;
    for _ in 0..MAX_REQUESTS_PER_AGENT {
        let body = batch(pushed.instance, next_seq);
        let answer = client
            .post(format!("{base}{INGEST}"))
            .bearer_auth(&pushed.token)
            .header("Streamwatch-Protocol", "1")
            .json(&body)
            .send()
            .await;
        match answer {
            // The status line says committed, whether or not the body still arrives.
            Ok(r) if r.status().is_success() => {
                let seqs = seqs_of(&body);
                if let Ok(answer) = r.json::<Value>().await {
                    let counted = answer["accepted"].as_u64().unwrap_or(0)
                        + answer["duplicates"].as_u64().unwrap_or(0);
                    if counted != HEARTBEATS_PER_REQUEST {
                        pushed.surprises.push(format!("seqs {seqs:?}: {answer}"));
                    }
                }
                acknowledged_total.fetch_add(HEARTBEATS_PER_REQUEST, Ordering::Relaxed);
                pushed.acknowledged.extend(seqs);
                next_seq += HEARTBEATS_PER_REQUEST;
            }
            // Shedding load: resend the same batch, as an agent would after Retry-After.
            Ok(r) if r.status() == 429 || r.status() == 503 => {}
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                pushed.surprises.push(format!("{status}: {text}"));
                pushed.unacknowledged = Some(body);
                break;
            }
            Err(_) => {
                pushed.unacknowledged = Some(body);
                break;
            }
        }
    }
    pushed
}

/// The seqs stored for an instance, with how often each is stored.
async fn stored(pool: &PgPool, instance: Uuid) -> Vec<(i64, i64)> {
    sqlx::query_as(
        "SELECT seq, count(*) FROM heartbeats WHERE instance_id = $1 GROUP BY seq ORDER BY seq",
    )
    .bind(instance)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = false)]
async fn every_heartbeat_that_got_a_2xx_is_in_the_database_after_the_server_is_killed_with_sigkill_while_a_load_generator_pushes(
    pool: PgPool,
) {
    let db = database_url(&pool);
    let server = ServerProcess::start(&db, ADMIN, JWT_SECRET, &[]).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let tokens = set_up(&client, &server.base).await;

    let acknowledged_total = Arc::new(AtomicU64::new(0));
    let mut agents = JoinSet::new();
    for token in tokens {
        agents.spawn(push_until_the_server_dies(
            client.clone(),
            server.base.clone(),
            token,
            acknowledged_total.clone(),
        ));
    }
    for _ in 0..MAX_POLLS {
        if acknowledged_total.load(Ordering::Relaxed) >= KILL_AFTER_ACKNOWLEDGED {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    server.kill().await;
    let mut pushed = Vec::new();
    while let Some(agent) = agents.join_next().await {
        pushed.push(agent.unwrap());
    }

    let surprises: Vec<&String> = pushed.iter().flat_map(|p| &p.surprises).collect();
    assert!(surprises.is_empty(), "unexpected answers: {surprises:?}");
    let total: usize = pushed.iter().map(|p| p.acknowledged.len()).sum();
    assert!(
        total >= usize::try_from(KILL_AFTER_ACKNOWLEDGED).unwrap(),
        "the server was killed under load, after {total} acknowledged heartbeats"
    );
    assert!(
        pushed.iter().any(|p| p.unacknowledged.is_some()),
        "the kill interrupted the agents"
    );

    // Everything acknowledged survived, once, and the marks cover it.
    for p in &pushed {
        let rows = stored(&pool, p.instance).await;
        let seqs: BTreeSet<i64> = rows.iter().map(|(seq, _)| *seq).collect();
        let lost: Vec<&i64> = p
            .acknowledged
            .iter()
            .filter(|s| !seqs.contains(s))
            .collect();
        assert!(
            lost.is_empty(),
            "instance {}: acknowledged but not stored: {lost:?}",
            p.instance
        );
        let twice: Vec<&(i64, i64)> = rows.iter().filter(|(_, n)| *n > 1).collect();
        assert!(twice.is_empty(), "stored twice: {twice:?}");
        if let Some(max) = p.acknowledged.iter().max() {
            let mark: i64 = sqlx::query_scalar(
                "SELECT high_water_seq FROM agent_instances WHERE instance_id = $1",
            )
            .bind(p.instance)
            .fetch_one(&pool)
            .await
            .unwrap();
            assert!(
                mark >= *max,
                "instance {}: mark {mark} below acknowledged seq {max}",
                p.instance
            );
        }
    }

    // After a restart, the agents resend what was in flight: whatever of it was committed
    // before the kill comes back as duplicates, the rest is stored now, and nothing twice.
    let server = ServerProcess::start(&db, ADMIN, JWT_SECRET, &[]).await;
    for p in &pushed {
        let Some(body) = &p.unacknowledged else {
            continue;
        };
        let seqs = seqs_of(body);
        let already: Vec<i64> = stored(&pool, p.instance)
            .await
            .into_iter()
            .map(|(seq, _)| seq)
            .filter(|s| seqs.contains(s))
            .collect();
        let r = client
            .post(format!("{}{INGEST}", server.base))
            .bearer_auth(&p.token)
            .header("Streamwatch-Protocol", "1")
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the resend of {seqs:?} is accepted");
        let answer: Value = r.json().await.unwrap();
        assert_eq!(
            (
                answer["accepted"].as_u64().unwrap(),
                answer["duplicates"].as_u64().unwrap()
            ),
            ((seqs.len() - already.len()) as u64, already.len() as u64),
            "seqs {seqs:?}, of which {already:?} were committed before the kill"
        );
        let rows = stored(&pool, p.instance).await;
        for seq in &seqs {
            assert_eq!(
                rows.iter().find(|(s, _)| s == seq).map(|(_, n)| *n),
                Some(1),
                "instance {}: seq {seq} is stored exactly once",
                p.instance
            );
        }
    }
    let twice: Vec<(Uuid, i64, i64)> = sqlx::query_as(
        "SELECT instance_id, seq, count(*) FROM heartbeats GROUP BY 1, 2 HAVING count(*) > 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    server.kill().await;
}
