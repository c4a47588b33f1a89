//! The scale-out plan (docs/SCALING.md) stays true only while every tenant table can be
//! distributed by `tenant_id`: its primary and unique keys lead with `tenant_id`, and its foreign
//! keys carry it. These tests read the real schema after all migrations.

use sqlx::PgPool;

/// Tables that are not distributed by tenant, each for a stated reason.
const NOT_TENANT_TABLES: &[(&str, &str)] = &[
    (
        "tenants",
        "distributed by its own id, colocated with the tenant tables",
    ),
    (
        "login_emails",
        "the one global key (an e-mail names one account); a reference table",
    ),
    (
        "control_plane_alive",
        "the service's own uptime; not tenant data",
    ),
    (
        "simulated_clock",
        "test and demo configuration; not tenant data",
    ),
    ("_sqlx_migrations", "migration bookkeeping"),
];

async fn tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn every_tenant_table_has_a_tenant_id_column(pool: PgPool) {
    for table in tables(&pool).await {
        if NOT_TENANT_TABLES.iter().any(|(t, _)| *t == table) {
            continue;
        }
        let has: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND column_name = 'tenant_id')",
        )
        .bind(&table)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(
            has,
            "table {table} has no tenant_id: add it, or list the table in NOT_TENANT_TABLES with a reason"
        );
    }
}

#[sqlx::test]
async fn every_primary_and_unique_key_of_a_tenant_table_leads_with_tenant_id(pool: PgPool) {
    // Constraints and unique indexes alike, with their first column.
    let keys: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT t.relname::text, i.relname::text, a.attname::text
         FROM pg_index x
         JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
         WHERE n.nspname = 'public' AND x.indisunique AND NOT t.relispartition",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut checked = 0;
    for (table, index, first) in keys {
        if NOT_TENANT_TABLES.iter().any(|(t, _)| *t == table) {
            continue;
        }
        assert_eq!(
            first.as_deref(),
            Some("tenant_id"),
            "unique key {index} of {table} does not lead with tenant_id"
        );
        checked += 1;
    }
    assert!(
        checked >= 10,
        "expected the tenant tables' keys, found {checked}"
    );
}

#[sqlx::test]
async fn every_foreign_key_between_tenant_tables_includes_tenant_id(pool: PgPool) {
    let fks: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text, c.conname::text,
                array(SELECT a.attname::text FROM unnest(c.conkey) k JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k)
         FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
         WHERE c.contype = 'f' AND n.nspname = 'public'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (table, name, columns) in fks {
        if NOT_TENANT_TABLES.iter().any(|(t, _)| *t == table) {
            continue;
        }
        // A reference to `tenants` itself is by tenant_id alone.
        assert!(
            columns.contains(&"tenant_id".to_owned()),
            "foreign key {name} of {table} does not include tenant_id: {columns:?}"
        );
    }
}

#[sqlx::test]
async fn every_tenant_table_has_row_level_security(pool: PgPool) {
    for table in tables(&pool).await {
        if NOT_TENANT_TABLES
            .iter()
            .any(|(t, _)| *t == table && *t != "tenants" && *t != "login_emails")
        {
            continue;
        }
        let rls: bool = sqlx::query_scalar("SELECT relrowsecurity FROM pg_class WHERE relname = $1 AND relnamespace = 'public'::regnamespace")
            .bind(&table)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(rls, "table {table} has no row-level security");
    }
}
