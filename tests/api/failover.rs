//! A failover as the server meets it, without Patroni (SPEC section 9): for a moment the
//! database reached through the proxy cannot take writes and every session is cut. Here the
//! test database is made read-only (`default_transaction_read_only`, what a standby answers
//! with: SQLSTATE 25006) and its sessions are terminated (57P01), then it is made writable
//! again. `scripts/ha-drill` does the real thing with Patroni, etcd and HAProxy.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use std::time::Duration;
use uuid::Uuid;

/// Runs `sql` on a connection of its own (not one of the pool's), then ends every other session
/// of the test database, as a failover does, and waits until they are gone: the pool's
/// connections are dead and the next ones see the new setting.
async fn set_and_cut_sessions(pool: &PgPool, sql: &'static str) {
    let mut admin = PgConnection::connect_with(&pool.connect_options())
        .await
        .unwrap();
    // This session itself may start read-only, like every new one: it opts out first (in a
    // statement of its own: a multi-statement string is one transaction).
    sqlx::raw_sql("SET default_transaction_read_only = off")
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::raw_sql(sql).execute(&mut admin).await.unwrap();
    let others = "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid()";
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let mut gone = false;
    for _ in 0..500 {
        let left: i64 = sqlx::query_scalar(others)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        if left == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "the terminated sessions never ended");
    admin.close().await.unwrap();
}

const READ_ONLY: &str = "DO $$ BEGIN
    EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', current_database());
END $$";
const WRITABLE: &str = "DO $$ BEGIN
    EXECUTE format('ALTER DATABASE %I RESET default_transaction_read_only', current_database());
END $$";

#[sqlx::test]
async fn while_the_database_is_read_only_ingest_and_writes_get_503_and_readyz_says_so_until_a_primary_is_back(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let (tenant, site) = app.create_tenant_with_site("acme", "LIC-1").await;
    let instance = Uuid::new_v4();
    app.push_ok(
        &site.agent_token,
        &Batch::new(instance).seq(1).active_camera(),
    )
    .await;
    app.request(Method::GET, "/readyz", None, None)
        .await
        .assert_status(200);

    // The failover: no writable primary behind the pool, and its old sessions are gone.
    set_and_cut_sessions(&pool, READ_ONLY).await;

    // Ingest is not acknowledged: 503 with Retry-After, nothing stored.
    let r = app
        .push(
            &site.agent_token,
            &Batch::new(instance).seq(2).active_camera(),
        )
        .await;
    r.assert_problem(503);
    assert!(r.header("retry-after").is_some(), "{}", r.text);
    assert_eq!(app.count("heartbeats").await, 1);
    // Any other write is unavailable too (not a 500).
    let r = app
        .post(
            "/api/v1/licenses",
            &tenant.owner_token,
            json!({"key": "LIC-2", "name": "Second site"}),
        )
        .await;
    r.assert_problem(503);
    assert!(r.header("retry-after").is_some(), "{}", r.text);
    // Not ready, and why.
    let ready = app.request(Method::GET, "/readyz", None, None).await;
    ready.assert_status(503);
    assert_eq!(
        ready.body["components"]["database"],
        "database is read-only (no writable primary)"
    );
    // Reads still work (a standby answers them).
    app.get(
        &format!("/api/v1/licenses/{}", site.id),
        &tenant.owner_token,
    )
    .await
    .assert_status(200);

    // The new primary takes writes; the agent's retry of the refused batch gets in, once.
    set_and_cut_sessions(&pool, WRITABLE).await;
    let r = app
        .push(
            &site.agent_token,
            &Batch::new(instance).seq(2).active_camera(),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["accepted"], 1, "{}", r.text);
    assert_eq!(app.count("heartbeats").await, 2);
    app.request(Method::GET, "/readyz", None, None)
        .await
        .assert_status(200);
}
