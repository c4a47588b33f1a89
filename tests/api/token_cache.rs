//! The agent token cache (`ingest::token_cache`) across replicas and without its listener:
//! revoking a token, deleting its license or suspending its tenant acts on the very next request
//! on every replica, also on one that has the token cached; while the listener is down the cache
//! is bypassed, and after it reconnects the cache is emptied and used again.
//!
//! Nothing here measures time: every wait is a bounded number of polls.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers of tests: a panic is a failed test with its location"
)]

use crate::helpers::{Batch, ServerProcess, Servers, TestApp, database_url};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use uuid::Uuid;

const ADMIN: &str = "token-cache-test-platform-admin-token-0123456789";
const JWT_SECRET: &str = "token-cache-test-jwt-secret-that-is-long-enough-0123456789";
const INGEST: &str = "/api/v1/ingest/heartbeats";
const POLL: Duration = Duration::from_millis(20);
const MAX_POLLS: usize = 1500;

/// The value of a counter (summed over its label sets) in a Prometheus text page; 0 if absent.
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn metrics_of(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `/readyz`'s `agent_token_cache` component.
async fn cache_state(client: &reqwest::Client, base: &str) -> String {
    let ready: Value = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ready["components"]["agent_token_cache"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Polls `/readyz` until the cache's component says `want`.
async fn wait_for_cache_state(client: &reqwest::Client, base: &str, want: &str) {
    for _ in 0..MAX_POLLS {
        if cache_state(client, base).await == want {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("{base}: the agent token cache never became {want}");
}

/// An agent: its token and instance, with an increasing seq.
struct Agent {
    token: String,
    instance: Uuid,
    seq: u64,
}

impl Agent {
    fn new(token: String) -> Self {
        Self {
            token,
            instance: Uuid::new_v4(),
            seq: 0,
        }
    }

    fn next_batch(&mut self) -> Value {
        self.seq += 1;
        Batch::new(self.instance)
            .seq(self.seq)
            .active_camera()
            .to_json()
    }

    /// One push to replica `to`: (status, body).
    async fn push(&mut self, lb: &Servers, to: usize) -> (u16, Value) {
        let body = self.next_batch();
        lb.send_to(to, Method::POST, INGEST, Some(&self.token), Some(&body))
            .await
    }
}

#[sqlx::test(migrations = false)]
async fn a_token_revoked_a_license_deleted_or_a_tenant_suspended_through_one_replica_is_refused_by_the_other_at_once(
    pool: PgPool,
) {
    let db = database_url(&pool);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut servers: Vec<ServerProcess> = (0..2)
        .map(|_| ServerProcess::spawn(&db, ADMIN, JWT_SECRET, &[]))
        .collect();
    for server in &mut servers {
        server.wait_until_healthy().await;
    }
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    for base in &bases {
        wait_for_cache_state(&client, base, "ok").await;
    }
    let lb = Servers::new(client.clone(), bases.clone());
    let (a, b) = (0, 1);

    let owner = lb.create_tenant(ADMIN, "ops@acme.test").await;
    let tenant_id: String = sqlx::query_scalar("SELECT id::text FROM tenants")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut agents = Vec::new();
    let mut licenses = Vec::new();
    for n in 0..3 {
        let id = lb
            .create_license(
                &owner,
                json!({"key": format!("LIC-{n}"), "name": format!("Depot {n}"),
                       "kind": "direct", "check_interval_seconds": 600}),
            )
            .await;
        agents.push(Agent::new(lb.create_agent_token(&owner, &id).await));
        licenses.push(id);
    }
    // Every agent reports through both replicas, twice each: both have every token cached,
    // which replica B's cache hits show.
    let hits_before = counter(
        &metrics_of(&client, &bases[b]).await,
        "agent_token_cache_hits_total",
    );
    for agent in &mut agents {
        for to in [a, b, a, b] {
            let (status, body) = agent.push(&lb, to).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["next_interval_seconds"], 60, "{body}");
        }
    }
    let hits = counter(
        &metrics_of(&client, &bases[b]).await,
        "agent_token_cache_hits_total",
    );
    assert!(
        hits >= hits_before + 3.0,
        "replica B served the second request of each agent from its cache ({hits_before} -> {hits})"
    );

    // Revoked through A: the next request through B is 401, and through A too.
    let token_id: String =
        sqlx::query_scalar("SELECT id::text FROM agent_tokens WHERE license_id = $1::uuid")
            .bind(&licenses[0])
            .fetch_one(&pool)
            .await
            .unwrap();
    let (status, body) = lb
        .send_to(
            a,
            Method::DELETE,
            &format!("/api/v1/licenses/{}/agent-tokens/{token_id}", licenses[0]),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(agents[0].push(&lb, b).await.0, 401);
    assert_eq!(agents[0].push(&lb, a).await.0, 401);

    // A changed check interval reaches B's next answer.
    let (status, body) = lb
        .send_to(
            a,
            Method::PATCH,
            &format!("/api/v1/licenses/{}", licenses[1]),
            Some(&owner),
            Some(&json!({"check_interval_seconds": 90})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = agents[1].push(&lb, b).await;
    assert_eq!(
        (status, &body["next_interval_seconds"]),
        (200, &json!(30)),
        "{body}"
    );

    // The license deleted through A: its token is refused by B at once.
    let (status, body) = lb
        .send_to(
            a,
            Method::DELETE,
            &format!("/api/v1/licenses/{}", licenses[1]),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(agents[1].push(&lb, b).await.0, 401);

    // The tenant suspended through A: 403 from B at once; reinstated: 200 from B at once.
    for (suspended, expected) in [(true, 403), (false, 200)] {
        let (status, body) = lb
            .send_to(
                a,
                Method::PATCH,
                &format!("/api/v1/admin/tenants/{tenant_id}"),
                Some(ADMIN),
                Some(&json!({"suspended": suspended})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = agents[2].push(&lb, b).await;
        assert_eq!(status, expected, "suspended: {suspended}: {body}");
    }
    drop(servers);
}

/// Revokes a token without any notification: session_replication_role = replica keeps the
/// triggers from firing, as if the notification had been lost.
async fn revoke_silently(pool: &PgPool, secret_prefix_of: &str) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    let hash = sha256(secret_prefix_of);
    let done = sqlx::query("UPDATE agent_tokens SET revoked_at = now() WHERE secret_hash = $1")
        .bind(hash)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
    tx.commit().await.unwrap();
}

fn sha256(secret: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes()).to_vec()
}

#[sqlx::test]
async fn while_the_listener_is_down_the_cache_is_bypassed_and_after_it_reconnects_it_is_emptied_and_used_again(
    pool: PgPool,
) {
    let hold = Arc::new(AtomicBool::new(false));
    let app = TestApp::spawn_with(pool.clone(), |s| {
        s.ingest.token_listener_faults.hold = Some(Arc::clone(&hold));
    })
    .await;
    wait_for_cache_state(&app.client, &app.address, "ok").await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-1").await;
    let mut agents = vec![site.agent_token.clone()];
    for _ in 0..2 {
        agents.push(
            app.create_agent_token(&tenant.owner_token, &site.id)
                .await
                .1,
        );
    }
    let instance = Uuid::new_v4();
    let mut seq = 0;
    let mut batch = || {
        seq += 1;
        Batch::new(instance).seq(seq).active_camera()
    };
    // All three cached.
    for agent in &agents {
        app.push_ok(agent, &batch()).await;
        app.push_ok(agent, &batch()).await;
    }
    let hits = counter(
        &metrics_of(&app.client, &app.address).await,
        "agent_token_cache_hits_total",
    );
    assert!(
        hits >= 3.0,
        "the second request of each was a cache hit: {hits}"
    );

    // The listener's connection is terminated and held down.
    hold.store(true, Ordering::Release);
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(terminated, vec![true], "one listener connection");
    wait_for_cache_state(&app.client, &app.address, "bypassed").await;
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ready.status(),
        200,
        "a bypassed cache does not fail readiness"
    );

    // Revoked with no notification at all: refused at once, since the cache is bypassed.
    revoke_silently(&pool, &agents[0]).await;
    app.push(&agents[0], &batch()).await.assert_problem(401);
    // Through the API (its notification is missed too): the same.
    let token_id: String =
        sqlx::query_scalar("SELECT id::text FROM agent_tokens WHERE secret_hash = $1")
            .bind(sha256(&agents[1]))
            .fetch_one(&pool)
            .await
            .unwrap();
    app.delete(
        &format!("/api/v1/licenses/{}/agent-tokens/{token_id}", site.id),
        &tenant.owner_token,
    )
    .await
    .assert_status(204);
    app.push(&agents[1], &batch()).await.assert_problem(401);
    // The third, still cached from before, is revoked silently and not used while bypassed.
    revoke_silently(&pool, &agents[2]).await;

    // Back: the listener reconnects and empties the cache, so the third token's stale entry
    // is gone and its revocation holds.
    hold.store(false, Ordering::Release);
    wait_for_cache_state(&app.client, &app.address, "ok").await;
    app.push(&agents[2], &batch()).await.assert_problem(401);
    let metrics = metrics_of(&app.client, &app.address).await;
    assert!(counter(&metrics, "agent_token_cache_listener_restarts_total") >= 1.0);

    // And the cache is used again: a new token's second request is a hit.
    let (_, fresh) = app.create_agent_token(&tenant.owner_token, &site.id).await;
    let before = counter(&metrics, "agent_token_cache_hits_total");
    app.push_ok(&fresh, &batch()).await;
    app.push_ok(&fresh, &batch()).await;
    let after = counter(
        &metrics_of(&app.client, &app.address).await,
        "agent_token_cache_hits_total",
    );
    assert_eq!(after, before + 1.0, "one miss, then one hit");
}
