//! Shedding load (429) and an unreachable PostgreSQL (503): both answer with `Retry-After`,
//! and neither stores anything of the refused request.

use crate::helpers::*;
use reqwest::Method;
use sqlx::{PgPool, postgres::PgPoolOptions};
use std::time::Duration;
use streamwatch::{auth::jwt::JwtKeys, domain::Role};
use uuid::Uuid;

#[sqlx::test]
async fn a_full_ingest_queue_answers_429_with_retry_after_and_stores_nothing_of_that_request(
    pool: PgPool,
) {
    let app = TestApp::spawn_with(pool.clone(), |s| {
        s.ingest.queue_capacity = 1;
        s.ingest.writers = 1;
    })
    .await;
    let (_, site) = app.create_tenant_with_site("acme", "LIC-1").await;
    let agent = site.agent_token;
    let instance = Uuid::new_v4();
    app.push(&agent, &Batch::new(instance).seq(1).active_camera())
        .await
        .assert_status(200);

    // Hold the instance's row, so that the one writer blocks inside its transaction.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM agent_instances WHERE instance_id = $1 FOR UPDATE")
        .bind(instance)
        .execute(&mut *blocker)
        .await
        .unwrap();

    let app = std::sync::Arc::new(app);
    let send = |seq: u64| {
        let (app, agent) = (app.clone(), agent.clone());
        tokio::spawn(async move {
            app.push(&agent, &Batch::new(instance).seq(seq).active_camera())
                .await
        })
    };
    let first = send(2);
    // Wait (bounded) until the writer waits for the lock.
    let mut blocked = false;
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE NOT granted")
            .fetch_one(&pool)
            .await
            .unwrap();
        if waiting > 0 {
            blocked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(blocked, "the writer never blocked on the held row");

    // The queue holds one request: of the next two, one waits and one is refused.
    let (second, third) = (send(3), send(4));
    let mut refused = None;
    let mut waiting = Vec::new();
    for handle in [second, third] {
        if handle.is_finished() {
            refused = Some(handle.await.unwrap());
        } else {
            waiting.push(handle);
        }
    }
    // The refused one answers without waiting for the writer; find it if not yet finished.
    let refused = match refused {
        Some(r) => r,
        None => {
            let mut found = None;
            for _ in 0..500 {
                if let Some(i) = waiting.iter().position(|h| h.is_finished()) {
                    found = Some(waiting.remove(i).await.unwrap());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            found.expect("one of the two requests must be refused while the queue is full")
        }
    };
    refused.assert_problem(429);
    assert!(
        refused.header("retry-after").is_some(),
        "429 without Retry-After"
    );

    blocker.rollback().await.unwrap();
    first.await.unwrap().assert_status(200);
    for handle in waiting {
        handle.await.unwrap().assert_status(200);
    }
    // Seq 1, 2 and the queued one are stored; the refused one is not.
    assert_eq!(app.count("heartbeats").await, 3);
}

/// An application whose database does not answer (nothing listens on port 1).
async fn app_without_database() -> TestApp {
    let dead = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy("postgres://postgres@127.0.0.1:1/nowhere")
        .unwrap();
    TestApp::spawn(dead).await
}

#[tokio::test]
async fn when_postgresql_is_unreachable_requests_get_503_with_retry_after() {
    let app = app_without_database().await;
    let batch = Batch::one_active_camera();
    let agent = format!("swa_{}", "A".repeat(43));
    let keys = JwtKeys::new(
        JWT_SECRET.as_bytes(),
        "streamwatch",
        "streamwatch-api",
        3600,
    );
    let user = keys
        .issue(
            Uuid::new_v4(),
            Uuid::new_v4(),
            Role::Owner,
            0,
            chrono::Utc::now().timestamp(),
        )
        .unwrap();

    for r in [
        app.push(&agent, &batch).await,
        app.get("/api/v1/licenses", &user).await,
        app.request(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(serde_json::json!({"email": "a@b.test", "password": PASSWORD})),
        )
        .await,
    ] {
        r.assert_problem(503);
        assert!(
            r.header("retry-after").is_some(),
            "503 without Retry-After: {}",
            r.text
        );
    }
    // The process is alive, but not ready.
    app.request(Method::GET, "/healthz", None, None)
        .await
        .assert_status(200);
    let ready = app.request(Method::GET, "/readyz", None, None).await;
    ready.assert_status(503);
    assert_eq!(ready.body["status"], "database unavailable");
    assert_eq!(ready.body["components"]["database"], "database unavailable");
    assert_eq!(ready.body["components"]["ingest_writers"], "ok");
}

/// `ingest_writer_restarts_total` as `/metrics` shows it (0 before the first restart).
async fn writer_restarts(app: &TestApp) -> f64 {
    let metrics = app.request(Method::GET, "/metrics", None, None).await;
    metrics.assert_status(200);
    metrics
        .text
        .lines()
        .find_map(|line| line.strip_prefix("ingest_writer_restarts_total "))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[sqlx::test]
async fn a_writer_killed_by_a_forced_panic_restarts_and_readyz_shows_it(pool: PgPool) {
    let poison = Uuid::new_v4();
    let app = TestApp::spawn_with(pool, |s| {
        // A backoff long enough to watch; the writer's own is 100 ms.
        s.ingest.faults = streamwatch::config::IngestFaults {
            panic_on_instance: Some(poison),
            min_backoff: Some(Duration::from_secs(3)),
        };
    })
    .await;
    let (_, hostile) = app.create_tenant_with_site("hostile", "LIC-H").await;
    let (_, honest) = app.create_tenant_with_site("honest", "LIC-OK").await;
    app.request(Method::GET, "/readyz", None, None)
        .await
        .assert_status(200);
    let restarts = writer_restarts(&app).await;
    let stored = app.counts(&INGEST_TABLES).await;

    // The batch whose writer panics is answered 503: not acknowledged, nothing of it stored.
    let r = app
        .push(
            &hostile.agent_token,
            &Batch::new(poison).seq(1).active_camera(),
        )
        .await;
    r.assert_problem(503);
    assert!(r.header("retry-after").is_some(), "{}", r.text);
    assert_eq!(app.counts(&INGEST_TABLES).await, stored);

    // While the writer waits out its backoff, /readyz says so. (The supervisor notices the
    // panic a moment after the request's answer, so it is polled, boundedly.)
    let mut restarting = None;
    for _ in 0..250 {
        let ready = app.request(Method::GET, "/readyz", None, None).await;
        if ready.status == 503 {
            restarting = Some(ready);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ready = restarting.expect("/readyz never reported the restarting writer");
    assert_eq!(ready.body["components"]["ingest_writers"], "restarting");
    assert_eq!(ready.body["components"]["database"], "ok");
    assert_eq!(ready.body["components"]["scheduler"], "ok");
    assert_eq!(writer_restarts(&app).await, restarts + 1.0);

    // Another tenant's agent is served (by the other writer now, by both after the backoff),
    // and the restarted writer makes /readyz ready again.
    app.push_ok(&honest.agent_token, &Batch::one_active_camera())
        .await;
    let mut ready = None;
    for _ in 0..500 {
        let r = app.request(Method::GET, "/readyz", None, None).await;
        if r.status == 200 {
            ready = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = ready.expect("/readyz never became ready again after the writer's backoff");
    assert_eq!(ready.body["components"]["ingest_writers"], "ok");
    for _ in 0..4 {
        // Ingest goes on as before, for both tenants.
        app.push_ok(&honest.agent_token, &Batch::one_active_camera())
            .await;
    }
    app.push_ok(&hostile.agent_token, &Batch::one_active_camera())
        .await;
    assert_eq!(writer_restarts(&app).await, restarts + 1.0);
}
