//! Tenant isolation: another tenant's object is a 404 on every tenant-scoped route, lists show
//! only the caller's rows, and row-level security alone hides other tenants' rows.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// Tenants alpha and beta, each with a site (license `<slug>-1`), a viewer and an API key.
async fn alpha_and_beta(app: &TestApp) -> (PopulatedTenant, PopulatedTenant) {
    (
        app.create_populated_tenant("alpha", "alpha-1", "viewer")
            .await,
        app.create_populated_tenant("beta", "beta-1", "viewer")
            .await,
    )
}

#[sqlx::test]
async fn another_tenants_objects_are_not_found_on_every_tenant_scoped_route(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (a, b) = alpha_and_beta(&app).await;
    let (lic, tok, user, key) = (
        &b.site.id,
        &b.site.agent_token_id,
        &b.user_id,
        &b.api_key_id,
    );
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/licenses/{lic}"), None),
        (
            Method::PATCH,
            format!("/api/v1/licenses/{lic}"),
            Some(json!({"name": "stolen"})),
        ),
        (Method::DELETE, format!("/api/v1/licenses/{lic}"), None),
        (
            Method::POST,
            format!("/api/v1/licenses/{lic}/snooze"),
            Some(json!({"until": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/licenses/{lic}/snooze"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/licenses/{lic}/agent-tokens"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/licenses/{lic}/agent-tokens"),
            Some(json!({})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/licenses/{lic}/agent-tokens/{tok}"),
            None,
        ),
        // B's token id under A's own license is just as unknown.
        (
            Method::DELETE,
            format!("/api/v1/licenses/{}/agent-tokens/{tok}", a.site.id),
            None,
        ),
        (Method::GET, format!("/api/v1/users/{user}"), None),
        (
            Method::PATCH,
            format!("/api/v1/users/{user}"),
            Some(json!({"role": "owner"})),
        ),
        (Method::DELETE, format!("/api/v1/users/{user}"), None),
        (Method::DELETE, format!("/api/v1/api-keys/{key}"), None),
    ];
    let before = app.snapshot().await;
    for (method, path, body) in cases {
        let r = app
            .request(
                method.clone(),
                &path,
                Some(&a.tenant.owner_token),
                body.clone(),
            )
            .await;
        assert_eq!(
            r.status.as_u16(),
            404,
            "{method} {path} answered {} for another tenant's object: {}",
            r.status,
            r.text
        );
        // Exactly like a missing object: the same body as for a random id.
        let missing = path.replace(lic.as_str(), &Uuid::new_v4().to_string());
        if missing != path {
            let m = app
                .request(method.clone(), &missing, Some(&a.tenant.owner_token), body)
                .await;
            assert_eq!(m.body["detail"], r.body["detail"], "{method} {path}");
        }
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "a cross-tenant request wrote something"
    );
    // B's objects are untouched and still B's.
    app.get(&format!("/api/v1/licenses/{lic}"), &b.tenant.owner_token)
        .await
        .assert_status(200);
    let r = app
        .get(
            &format!("/api/v1/licenses/{lic}/agent-tokens"),
            &b.tenant.owner_token,
        )
        .await;
    assert!(r.body["items"][0]["revoked_at"].is_null());
}

#[sqlx::test]
async fn lists_never_show_another_tenants_rows(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (a, b) = alpha_and_beta(&app).await;
    for (path, own) in [
        ("/api/v1/licenses", vec![a.site.id.clone()]),
        ("/api/v1/licenses?q=beta", vec![]),
        (
            &*format!("/api/v1/licenses/{}/agent-tokens", a.site.id),
            vec![a.site.agent_token_id.clone()],
        ),
        ("/api/v1/api-keys", vec![a.api_key_id.clone()]),
    ] {
        let r = app.get(path, &a.tenant.owner_token).await;
        r.assert_status(200);
        let ids: Vec<String> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, own, "{path}");
    }
    let users = app.get("/api/v1/users", &a.tenant.owner_token).await;
    let emails: Vec<&str> = users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["owner@alpha.test", "viewer@alpha.test"]);
    let me = app.get("/api/v1/me", &a.tenant.owner_token).await;
    assert_eq!(me.body["tenant"]["id"], a.tenant.id.as_str());
    assert_ne!(a.tenant.id, b.tenant.id);
}

/// The second wall: with the tenant set for the transaction, a query that forgets its
/// `WHERE tenant_id = ...` still sees only that tenant's rows, and cannot write into another.
#[sqlx::test]
async fn row_level_security_alone_hides_other_tenants_rows(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (a, b) = alpha_and_beta(&app).await;
    let a_id: Uuid = a.tenant.id.parse().unwrap();
    let b_id: Uuid = b.tenant.id.parse().unwrap();

    // Past RLS (the owner role), both tenants' rows are there.
    assert_eq!(app.count("licenses").await, 2);

    let mut tx = streamwatch::db::begin_tenant(&pool, a_id).await.unwrap();
    for table in ACCOUNT_TABLES {
        let tenant_column = if table == "tenants" {
            "id"
        } else {
            "tenant_id"
        };
        // Deliberately no tenant filter.
        let sql = format!("SELECT DISTINCT {tenant_column} FROM {table}");
        let seen: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert_eq!(seen, vec![a_id], "{table} shows rows of other tenants");
    }
    let deleted = sqlx::query("DELETE FROM licenses")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        deleted.rows_affected(),
        1,
        "an unfiltered DELETE reached another tenant"
    );
    let insert = sqlx::query(
        "INSERT INTO licenses (tenant_id, id, key, name, kind) VALUES ($1, $2, 'x', 'x', 'direct')",
    )
    .bind(b_id)
    .bind(Uuid::new_v4())
    .execute(&mut *tx)
    .await;
    let err = insert.expect_err("inserting a row for another tenant must fail");
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();

    // Without any tenant set, the application role sees nothing at all.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('role', 'streamwatch_app', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM licenses")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 0);
    tx.rollback().await.unwrap();
    assert_eq!(
        app.count("licenses").await,
        2,
        "the rolled-back delete must not have happened"
    );
}
