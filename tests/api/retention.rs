//! Heartbeat history maintenance: daily partitions ahead of time, and retention.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use sqlx::PgPool;
use streamwatch::store::heartbeats::{apply_retention, ensure_partitions};
use uuid::Uuid;

async fn partitions(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'heartbeats'::regclass ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn insert_at(pool: &PgPool, at: chrono::DateTime<Utc>) {
    sqlx::query(
        "INSERT INTO heartbeats (tenant_id, license_id, instance_id, seq, activity_at, received_at, observed_at, cameras_total, cameras_active)
         VALUES ($1, $1, $1, 1, $2, $2, $2, 0, 0)",
    )
    .bind(Uuid::new_v4())
    .bind(at)
    .execute(pool)
    .await
    .unwrap();
}

async fn rows(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn partitions_are_created_ahead_once_and_rows_land_in_them(pool: PgPool) {
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    assert_eq!(ensure_partitions(&pool, today, 2).await.unwrap(), 3);
    assert_eq!(
        ensure_partitions(&pool, today, 2).await.unwrap(),
        0,
        "a second pass creates nothing"
    );
    assert_eq!(
        partitions(&pool).await,
        [
            "heartbeats_default",
            "heartbeats_p20261123",
            "heartbeats_p20261124",
            "heartbeats_p20261125"
        ]
    );
    insert_at(&pool, Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()).await;
    insert_at(&pool, Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()).await;
    assert_eq!(rows(&pool, "heartbeats_p20261124").await, 1);
    assert_eq!(
        rows(&pool, "heartbeats_default").await,
        1,
        "a day without a partition goes to the default"
    );
}

#[sqlx::test]
async fn retention_drops_old_partitions_and_trims_the_default_partition(pool: PgPool) {
    let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    ensure_partitions(&pool, day, 29).await.unwrap();
    let start = Utc.with_ymd_and_hms(2026, 11, 1, 6, 0, 0).unwrap();
    for d in 0..30 {
        insert_at(&pool, start + Duration::days(d)).await;
    }
    insert_at(&pool, Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap()).await; // default
    insert_at(&pool, Utc.with_ymd_and_hms(2026, 10, 31, 23, 0, 0).unwrap()).await; // default

    // Keep from 2026-11-20 00:00 on.
    let cutoff = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
    assert_eq!(
        apply_retention(&pool, cutoff).await.unwrap(),
        19,
        "Nov 1..19 end at or before the cutoff"
    );
    assert_eq!(rows(&pool, "heartbeats").await, 11, "Nov 20..30 remain");
    assert_eq!(rows(&pool, "heartbeats_default").await, 0);
    assert!(
        partitions(&pool)
            .await
            .contains(&"heartbeats_p20261120".to_owned())
    );
    assert!(
        !partitions(&pool)
            .await
            .contains(&"heartbeats_p20261119".to_owned())
    );
}
