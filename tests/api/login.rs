//! Logging in, rate limits, suspended tenants, password changes, owners and users, and the
//! platform admin token.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers of tests: a panic is a failed test with its location"
)]

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

/// The tenant's owner's user id.
async fn my_id(app: &TestApp, token: &str) -> String {
    let r = app.get("/api/v1/me", token).await;
    r.assert_status(200);
    r.body["user"]["id"].as_str().unwrap().to_owned()
}

#[track_caller]
fn assert_unauthorized(r: &TestResponse) {
    r.assert_problem(401);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")),
        "WWW-Authenticate: {:?}",
        r.headers
    );
}

/// `Retry-After` in whole seconds, at least 1.
#[track_caller]
fn retry_after(r: &TestResponse) -> u64 {
    let seconds: u64 = r
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After in seconds");
    assert!(seconds >= 1, "Retry-After: {seconds}");
    seconds
}

#[sqlx::test]
async fn the_right_password_gets_a_bearer_token_valid_for_an_hour(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.create_tenant_raw(
        json!({"name": "Acme", "owner": {"email": "ops@acme.test", "password": PASSWORD}}),
    )
    .await
    .assert_status(201);

    let r = app.login_raw("ops@acme.test", PASSWORD).await;
    r.assert_status(200);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    let token = r.body["access_token"].as_str().unwrap();
    let me = app.get("/api/v1/me", token).await;
    me.assert_status(200);
    assert_eq!(me.body["user"]["email"], "ops@acme.test");
    assert_eq!(me.body["role"], "owner");
    assert_eq!(me.body["tenant"]["name"], "Acme");
    assert!(
        me.body["user"]["last_login_at"].is_string(),
        "the login is recorded"
    );

    // The address is compared without regard to case.
    app.login_raw(" OPS@Acme.TEST ", PASSWORD)
        .await
        .assert_status(200);
}

#[sqlx::test]
async fn a_wrong_password_and_an_unknown_address_get_the_same_401(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;

    let wrong_password = app
        .login_raw(&acme.owner_email, "not the password at all")
        .await;
    let unknown = app.login_raw("nobody@acme.test", PASSWORD).await;
    for r in [&wrong_password, &unknown] {
        assert_unauthorized(r);
    }
    assert_eq!(
        wrong_password.body, unknown.body,
        "the answers tell which addresses have accounts"
    );
    assert_eq!(
        wrong_password.header("www-authenticate"),
        unknown.header("www-authenticate")
    );
}

#[sqlx::test]
async fn after_too_many_failures_an_account_is_locked_even_for_the_right_password(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |s| s.auth.login_max_failures_per_account = 3).await;
    let acme = app.create_tenant("acme").await;
    let other = app.create_tenant("other").await;

    for attempt in 1..=3 {
        let r = app
            .login_raw(&acme.owner_email, &format!("wrong password {attempt}"))
            .await;
        assert_eq!(r.status, 401, "attempt {attempt}: {}", r.text);
    }
    let locked = app.login_raw(&acme.owner_email, PASSWORD).await;
    locked.assert_problem(429);
    retry_after(&locked);
    // Same account in other case: still locked.
    app.login_raw(&acme.owner_email.to_uppercase(), PASSWORD)
        .await
        .assert_problem(429);

    app.login_raw(&other.owner_email, PASSWORD)
        .await
        .assert_status(200);
    // Tokens issued before the lock still work: the lock is on logging in.
    app.get("/api/v1/me", &acme.owner_token)
        .await
        .assert_status(200);
}

#[sqlx::test]
async fn an_unknown_address_is_locked_like_a_real_one(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |s| s.auth.login_max_failures_per_account = 2).await;
    app.create_tenant("acme").await;
    for address in ["owner@acme.test", "ghost@acme.test"] {
        for _ in 0..2 {
            app.login_raw(address, "wrong password!")
                .await
                .assert_problem(401);
        }
        let r = app.login_raw(address, PASSWORD).await;
        r.assert_problem(429);
        retry_after(&r);
    }
}

#[sqlx::test]
async fn a_successful_login_clears_the_failures_of_the_account(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |s| s.auth.login_max_failures_per_account = 2).await;
    let acme = app.create_tenant("acme").await;
    for _ in 0..3 {
        app.login_raw(&acme.owner_email, "wrong password!")
            .await
            .assert_problem(401);
        app.login_raw(&acme.owner_email, PASSWORD)
            .await
            .assert_status(200);
    }
}

#[sqlx::test]
async fn an_address_is_limited_across_accounts(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |s| s.auth.login_max_attempts_per_address = 2).await;
    // Made without logging in, which would use up attempts.
    for slug in ["a", "b"] {
        app.create_tenant_raw(json!({"name": slug, "owner": {"email": format!("owner@{slug}.test"), "password": PASSWORD}}))
            .await
            .assert_status(201);
    }

    app.login_raw("owner@a.test", PASSWORD)
        .await
        .assert_status(200);
    app.login_raw("owner@b.test", "wrong password!")
        .await
        .assert_problem(401);
    let r = app.login_raw("owner@b.test", PASSWORD).await;
    r.assert_problem(429);
    retry_after(&r);
    app.login_raw("owner@a.test", PASSWORD)
        .await
        .assert_problem(429);
}

#[sqlx::test]
async fn a_suspended_tenant_is_locked_out_until_reinstated(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    let other = app.create_tenant("other").await;
    let (_, api_key) = app.create_api_key(&acme.owner_token, "viewer").await;
    let tenant = format!("/api/v1/admin/tenants/{}", acme.id);

    let r = app
        .patch(&tenant, ADMIN_TOKEN, json!({"suspended": true}))
        .await;
    r.assert_status(200);
    assert!(r.body["suspended_at"].is_string(), "{}", r.text);
    app.get("/api/v1/me", &acme.owner_token)
        .await
        .assert_problem(403);
    app.get("/api/v1/licenses", &api_key)
        .await
        .assert_problem(403);
    app.login_raw(&acme.owner_email, PASSWORD)
        .await
        .assert_problem(403);
    // The wrong password is still just wrong: suspension is not revealed without the password.
    app.login_raw(&acme.owner_email, "wrong password!")
        .await
        .assert_problem(401);
    app.get("/api/v1/me", &other.owner_token)
        .await
        .assert_status(200);
    assert!(app.get(&tenant, ADMIN_TOKEN).await.body["suspended_at"].is_string());

    let r = app
        .patch(&tenant, ADMIN_TOKEN, json!({"suspended": false}))
        .await;
    r.assert_status(200);
    assert!(r.body["suspended_at"].is_null(), "{}", r.text);
    app.get("/api/v1/me", &acme.owner_token)
        .await
        .assert_status(200);
    app.get("/api/v1/licenses", &api_key)
        .await
        .assert_status(200);
    app.login_raw(&acme.owner_email, PASSWORD)
        .await
        .assert_status(200);
}

#[sqlx::test]
async fn a_password_change_needs_the_current_password_and_revokes_old_tokens(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    let new_password = "a whole new password";
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let put = |body: Value| {
        app.request(
            Method::PUT,
            "/api/v1/me/password",
            Some(&acme.owner_token),
            Some(body),
        )
    };

    let r = put(change("not my password", new_password)).await;
    r.assert_problem(422);
    assert_eq!(r.pointers(), ["/current_password"]);
    let r = put(change(PASSWORD, "short")).await;
    r.assert_problem(422);
    assert_eq!(r.pointers(), ["/new_password"]);
    app.get("/api/v1/me", &acme.owner_token)
        .await
        .assert_status(200);
    app.login_raw(&acme.owner_email, PASSWORD)
        .await
        .assert_status(200);

    put(change(PASSWORD, new_password)).await.assert_status(204);

    assert_unauthorized(&app.get("/api/v1/me", &acme.owner_token).await);
    assert_unauthorized(&app.login_raw(&acme.owner_email, PASSWORD).await);
    let fresh = app.login(&acme.owner_email, new_password).await;
    app.get("/api/v1/me", &fresh).await.assert_status(200);
}

#[sqlx::test]
async fn an_api_key_has_no_password_to_change(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    let (_, key) = app.create_api_key(&acme.owner_token, "admin").await;
    let body = json!({"current_password": PASSWORD, "new_password": "a whole new password"});
    app.request(Method::PUT, "/api/v1/me/password", Some(&key), Some(body))
        .await
        .assert_problem(403);
    app.login_raw(&acme.owner_email, PASSWORD)
        .await
        .assert_status(200);
}

#[sqlx::test]
async fn the_last_owner_can_be_neither_demoted_nor_deleted(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    let owner_id = my_id(&app, &acme.owner_token).await;
    let me = format!("/api/v1/users/{owner_id}");

    for role in ["admin", "viewer"] {
        let r = app
            .patch(&me, &acme.owner_token, json!({"role": role}))
            .await;
        r.assert_problem(409);
        assert_eq!(r.pointers(), ["/role"]);
    }
    app.delete(&me, &acme.owner_token).await.assert_problem(409);
    let r = app.get(&me, &acme.owner_token).await;
    assert_eq!(r.body["role"], "owner");
    // Confirming the owner role is no demotion.
    app.patch(&me, &acme.owner_token, json!({"role": "owner"}))
        .await
        .assert_status(200);
}

#[sqlx::test]
async fn with_a_second_owner_an_owner_can_be_demoted_and_deleted(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    let first_id = my_id(&app, &acme.owner_token).await;
    let (second_id, second) = app
        .create_user(&acme.owner_token, "second@acme.test", "owner")
        .await;

    let r = app
        .patch(
            &format!("/api/v1/users/{first_id}"),
            &acme.owner_token,
            json!({"role": "admin"}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["role"], "admin");
    // The demotion takes effect at once, on the token the first owner already holds.
    app.post(
        "/api/v1/users",
        &acme.owner_token,
        json!({"email": "x@acme.test", "password": PASSWORD, "role": "viewer"}),
    )
    .await
    .assert_problem(403);

    // Now the second is the last owner.
    app.delete(&format!("/api/v1/users/{second_id}"), &second)
        .await
        .assert_problem(409);
    app.patch(
        &format!("/api/v1/users/{first_id}"),
        &second,
        json!({"role": "owner"}),
    )
    .await
    .assert_status(200);
    app.delete(&format!("/api/v1/users/{second_id}"), &acme.owner_token)
        .await
        .assert_status(204);
    assert_unauthorized(&app.get("/api/v1/me", &second).await);
    assert_unauthorized(&app.login_raw("second@acme.test", PASSWORD).await);
    assert_eq!(
        app.count("login_emails").await,
        1,
        "the deleted user's address is free again"
    );
}

#[sqlx::test]
async fn an_owner_creates_users_who_can_log_in_with_their_role(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;

    let r = app
        .post(
            "/api/v1/users",
            &acme.owner_token,
            json!({"email": "Viewer@Acme.test", "password": PASSWORD, "role": "viewer"}),
        )
        .await;
    r.assert_status(201);
    assert_eq!(
        r.body["email"], "viewer@acme.test",
        "addresses are stored lower-cased"
    );
    assert_eq!(r.body["role"], "viewer");
    let viewer = app.login("viewer@acme.test", PASSWORD).await;
    let me = app.get("/api/v1/me", &viewer).await;
    assert_eq!(
        (&me.body["role"], &me.body["tenant"]["id"]),
        (&json!("viewer"), &json!(acme.id))
    );

    // Only owners manage users.
    let (_, admin) = app
        .create_user(&acme.owner_token, "admin@acme.test", "admin")
        .await;
    for token in [&viewer, &admin] {
        app.post(
            "/api/v1/users",
            token,
            json!({"email": "x@acme.test", "password": PASSWORD, "role": "viewer"}),
        )
        .await
        .assert_problem(403);
    }
    assert_eq!(app.count("users").await, 3);
}

#[sqlx::test]
async fn an_email_address_has_one_account_across_all_tenants_regardless_of_case(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    let other = app.create_tenant("other").await;
    let before = app.snapshot().await;

    for token in [&acme.owner_token, &other.owner_token] {
        let r = app
            .post(
                "/api/v1/users",
                token,
                json!({"email": "OWNER@acme.test", "password": PASSWORD, "role": "viewer"}),
            )
            .await;
        r.assert_problem(409);
        assert_eq!(r.pointers(), ["/email"]);
    }
    let r = app
        .create_tenant_raw(
            json!({"name": "Copy", "owner": {"email": "Owner@ACME.test", "password": PASSWORD}}),
        )
        .await;
    r.assert_problem(409);
    assert_eq!(r.pointers(), ["/owner/email"]);
    assert_eq!(app.snapshot().await, before);
}

#[sqlx::test]
async fn the_admin_api_wants_exactly_the_admin_token(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    let (_, api_key) = app.create_api_key(&acme.owner_token, "admin").await;
    let tenant = json!({"name": "New", "owner": {"email": "ops@new.test", "password": PASSWORD}});
    let before = app.snapshot().await;

    let wrong_admin = format!("{ADMIN_TOKEN}x");
    for token in [
        wrong_admin.as_str(),
        &ADMIN_TOKEN[1..],
        acme.owner_token.as_str(),
        api_key.as_str(),
    ] {
        assert_unauthorized(&app.get("/api/v1/admin/tenants", token).await);
        assert_unauthorized(
            &app.post("/api/v1/admin/tenants", token, tenant.clone())
                .await,
        );
        assert_unauthorized(
            &app.patch(
                &format!("/api/v1/admin/tenants/{}", acme.id),
                token,
                json!({"suspended": true}),
            )
            .await,
        );
    }
    assert_unauthorized(
        &app.request(Method::GET, "/api/v1/admin/tenants", None, None)
            .await,
    );
    assert_eq!(app.snapshot().await, before);
    app.get("/api/v1/me", &acme.owner_token)
        .await
        .assert_status(200);

    // And the admin token is no tenant credential.
    app.get("/api/v1/me", ADMIN_TOKEN).await.assert_problem(403);
    let r = app.get("/api/v1/admin/tenants", ADMIN_TOKEN).await;
    r.assert_status(200);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
}

#[sqlx::test]
async fn without_an_admin_token_configured_the_admin_api_does_not_exist(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |s| s.auth.admin_token = None).await;
    let tenant = json!({"name": "New", "owner": {"email": "ops@new.test", "password": PASSWORD}});
    for token in [ADMIN_TOKEN, "anything"] {
        app.post("/api/v1/admin/tenants", token, tenant.clone())
            .await
            .assert_problem(404);
        app.get("/api/v1/admin/tenants", token)
            .await
            .assert_problem(404);
    }
    app.request(Method::GET, "/api/v1/admin/tenants", None, None)
        .await
        .assert_problem(404);
    assert_eq!(app.count("tenants").await, 0);
}

#[sqlx::test]
async fn guesses_of_the_current_password_are_limited_like_logins(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |s| s.auth.login_max_failures_per_account = 2).await;
    let acme = app.create_tenant("acme").await;
    let put = |current: &str| {
        app.request(
            Method::PUT,
            "/api/v1/me/password",
            Some(&acme.owner_token),
            Some(json!({"current_password": current, "new_password": "a whole new password"})),
        )
    };
    for guess in ["guess one", "guess two"] {
        put(guess).await.assert_problem(422);
    }
    // A stolen access token cannot try passwords without end, not even the right one now.
    let locked = put(PASSWORD).await;
    locked.assert_problem(429);
    retry_after(&locked);
    app.login_raw(&acme.owner_email, PASSWORD)
        .await
        .assert_status(200);
}
