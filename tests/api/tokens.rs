//! Credentials: every bad or revoked token gets 401 with `WWW-Authenticate`, a viewer gets 403
//! on every write, and an agent token is refused everywhere but ingest.

use crate::helpers::*;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use streamwatch::{auth::jwt::JwtKeys, domain::Role};
use uuid::Uuid;

#[track_caller]
fn assert_unauthorized(r: &TestResponse, what: &str) {
    assert_eq!(r.status.as_u16(), 401, "{what}: {}", r.text);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer")),
        "{what}: no WWW-Authenticate: Bearer"
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{what}"
    );
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[sqlx::test]
async fn forged_expired_and_foreign_tokens_are_refused_with_401(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let me = app.get("/api/v1/me", &t.owner_token).await;
    me.assert_status(200);
    let user: Uuid = me.body["user"]["id"].as_str().unwrap().parse().unwrap();
    let tenant: Uuid = t.id.parse().unwrap();

    let good = JwtKeys::new(
        JWT_SECRET.as_bytes(),
        "streamwatch",
        "streamwatch-api",
        3600,
    );
    // Sanity: a token we make the same way as the server is accepted, so the refusals below
    // are about the one thing each case changes.
    app.get(
        "/api/v1/me",
        &good.issue(user, tenant, Role::Owner, 0, now()).unwrap(),
    )
    .await
    .assert_status(200);

    let wrong_key = JwtKeys::new(&[42u8; 32], "streamwatch", "streamwatch-api", 3600)
        .issue(user, tenant, Role::Owner, 0, now())
        .unwrap();
    let expired = good
        .issue(user, tenant, Role::Owner, 0, now() - 2 * 3600)
        .unwrap();
    let wrong_audience = JwtKeys::new(JWT_SECRET.as_bytes(), "streamwatch", "another-api", 3600)
        .issue(user, tenant, Role::Owner, 0, now())
        .unwrap();
    let wrong_issuer = JwtKeys::new(JWT_SECRET.as_bytes(), "someone", "streamwatch-api", 3600)
        .issue(user, tenant, Role::Owner, 0, now())
        .unwrap();

    let parts: Vec<&str> = t.owner_token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["role"] = json!("owner");
    claims["tid"] = json!(Uuid::new_v4());
    let tampered_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let tampered = format!("{}.{tampered_payload}.{}", parts[0], parts[2]);
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let hs512 = {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
        format!("{header}.{}.{}", parts[1], parts[2])
    };

    for (what, token) in [
        ("wrong key", wrong_key.as_str()),
        ("expired", &expired),
        ("wrong audience", &wrong_audience),
        ("wrong issuer", &wrong_issuer),
        ("tampered payload", &tampered),
        ("alg none", &alg_none),
        ("another algorithm", &hs512),
        ("garbage", "not-a-token"),
        (
            "unknown API key",
            "swk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
    ] {
        assert_unauthorized(&app.get("/api/v1/me", token).await, what);
        assert_unauthorized(&app.get("/api/v1/licenses", token).await, what);
    }
    assert_unauthorized(
        &app.request(Method::GET, "/api/v1/me", None, None).await,
        "no credential",
    );
    let basic = app
        .client
        .get(format!("{}/api/v1/me", app.address))
        .header("authorization", "Basic b3BzOnB3");
    assert_unauthorized(&app.send(basic).await, "Basic scheme");
}

#[sqlx::test]
async fn revoked_tokens_and_keys_are_refused_with_401(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;

    // "Log out everywhere" bumps the token version: every older token dies.
    let second = app.login(&t.owner_email, PASSWORD).await;
    app.request(
        Method::POST,
        "/api/v1/auth/logout-all",
        Some(&t.owner_token),
        None,
    )
    .await
    .assert_status(204);
    assert_unauthorized(
        &app.get("/api/v1/me", &t.owner_token).await,
        "after logout-all",
    );
    assert_unauthorized(
        &app.get("/api/v1/me", &second).await,
        "other session after logout-all",
    );
    let fresh = app.login(&t.owner_email, PASSWORD).await;
    app.get("/api/v1/me", &fresh).await.assert_status(200);

    // So does an owner changing a user's password.
    let (user_id, user_token) = app.create_user(&fresh, "admin@acme.test", "admin").await;
    app.get("/api/v1/me", &user_token).await.assert_status(200);
    app.patch(
        &format!("/api/v1/users/{user_id}"),
        &fresh,
        json!({"password": "a brand new password"}),
    )
    .await
    .assert_status(200);
    assert_unauthorized(
        &app.get("/api/v1/me", &user_token).await,
        "after password reset",
    );

    // A deleted user's token dies with the user.
    let (gone_id, gone_token) = app.create_user(&fresh, "gone@acme.test", "viewer").await;
    app.delete(&format!("/api/v1/users/{gone_id}"), &fresh)
        .await
        .assert_status(204);
    assert_unauthorized(&app.get("/api/v1/me", &gone_token).await, "deleted user");

    // A revoked API key.
    let (key_id, key) = app.create_api_key(&fresh, "admin").await;
    app.get("/api/v1/licenses", &key).await.assert_status(200);
    app.delete(&format!("/api/v1/api-keys/{key_id}"), &fresh)
        .await
        .assert_status(204);
    assert_unauthorized(&app.get("/api/v1/licenses", &key).await, "revoked API key");
}

#[sqlx::test]
async fn a_demotion_takes_effect_on_the_next_request(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let (id, token) = app
        .create_user(&t.owner_token, "admin@acme.test", "admin")
        .await;
    app.create_license(&token, "LIC-1").await;
    app.set_role(&t.owner_token, &id, "viewer").await;
    // The token still says "admin"; the stored role decides.
    app.post(
        "/api/v1/licenses",
        &token,
        json!({"key": "LIC-2", "name": "x"}),
    )
    .await
    .assert_problem(403);
}

/// Every write a viewer might try, with a body that would otherwise succeed.
fn writes(
    license_id: &str,
    token_id: &str,
    user_id: &str,
    key_id: &str,
) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/api/v1/licenses".to_owned(),
            Some(json!({"key": "NEW-1", "name": "New"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/licenses/{license_id}"),
            Some(json!({"name": "Renamed"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/licenses/{license_id}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/licenses/{license_id}/agent-tokens"),
            Some(json!({"name": "t"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/licenses/{license_id}/agent-tokens/{token_id}"),
            None,
        ),
        (
            Method::POST,
            "/api/v1/users".to_owned(),
            Some(json!({"email": "new@acme.test", "password": PASSWORD, "role": "owner"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{user_id}"),
            Some(json!({"role": "owner"})),
        ),
        (Method::DELETE, format!("/api/v1/users/{user_id}"), None),
        (
            Method::POST,
            "/api/v1/api-keys".to_owned(),
            Some(json!({"name": "k", "role": "admin"})),
        ),
        (Method::DELETE, format!("/api/v1/api-keys/{key_id}"), None),
    ]
}

#[sqlx::test]
async fn a_viewer_gets_403_on_every_write_and_nothing_changes(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_populated_tenant("acme", "LIC-1", "admin").await;
    let (t, site) = (&acme.tenant, &acme.site);
    let license_id = site.id.as_str();
    let (_, viewer) = app
        .create_user(&t.owner_token, "viewer@acme.test", "viewer")
        .await;
    let (_, viewer_key) = app.create_api_key(&t.owner_token, "viewer").await;

    let before = app.snapshot().await;
    for credential in [&viewer, &viewer_key] {
        for (method, path, body) in writes(
            license_id,
            &site.agent_token_id,
            &acme.user_id,
            &acme.api_key_id,
        ) {
            let r = app
                .request(method.clone(), &path, Some(credential), body)
                .await;
            assert_eq!(r.status.as_u16(), 403, "viewer {method} {path}: {}", r.text);
            assert_eq!(r.header("content-type"), Some("application/problem+json"));
        }
        // Reading is allowed.
        app.get("/api/v1/licenses", credential)
            .await
            .assert_status(200);
        app.get(&format!("/api/v1/licenses/{license_id}"), credential)
            .await
            .assert_status(200);
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "a viewer's request wrote something"
    );
    let license_now = app
        .get(&format!("/api/v1/licenses/{license_id}"), &t.owner_token)
        .await;
    assert_eq!(license_now.body["name"], site.name);
}

#[sqlx::test]
async fn an_admin_cannot_manage_users_and_an_api_key_cannot_mint_keys(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let (_, admin) = app
        .create_user(&t.owner_token, "admin@acme.test", "admin")
        .await;
    app.post(
        "/api/v1/users",
        &admin,
        json!({"email": "x@acme.test", "password": PASSWORD, "role": "viewer"}),
    )
    .await
    .assert_problem(403);
    app.create_api_key(&admin, "viewer").await;
    let (_, admin_key) = app.create_api_key(&t.owner_token, "admin").await;
    app.create_license(&admin_key, "LIC-1").await;
    app.post(
        "/api/v1/api-keys",
        &admin_key,
        json!({"name": "more", "role": "admin"}),
    )
    .await
    .assert_problem(403);
    app.post(
        "/api/v1/api-keys",
        &t.owner_token,
        json!({"name": "boss", "role": "owner"}),
    )
    .await
    .assert_problem(422);
}

#[sqlx::test]
async fn an_agent_token_is_refused_everywhere_but_ingest(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_populated_tenant("acme", "LIC-1", "admin").await;
    let (t, site) = (&acme.tenant, &acme.site);
    let (license_id, token_id) = (site.id.as_str(), &site.agent_token_id);
    let agent = site.agent_token.as_str();

    let mut routes = writes(license_id, token_id, &acme.user_id, &acme.api_key_id);
    routes.extend([
        (Method::GET, "/api/v1/me".to_owned(), None),
        (Method::GET, "/api/v1/licenses".to_owned(), None),
        (Method::GET, format!("/api/v1/licenses/{license_id}"), None),
        (
            Method::GET,
            format!("/api/v1/licenses/{license_id}/agent-tokens"),
            None,
        ),
        (Method::GET, "/api/v1/users".to_owned(), None),
        (Method::GET, "/api/v1/api-keys".to_owned(), None),
        (Method::POST, "/api/v1/auth/logout-all".to_owned(), None),
    ]);
    let before = app.snapshot().await;
    for (method, path, body) in routes {
        let r = app.request(method.clone(), &path, Some(agent), body).await;
        r.assert_problem(403);
        assert!(
            r.body["detail"].as_str().unwrap().contains("ingest"),
            "{method} {path}: {}",
            r.text
        );
    }
    for (method, path) in [
        (Method::GET, "/api/v1/admin/tenants".to_owned()),
        (Method::GET, format!("/api/v1/admin/tenants/{}", t.id)),
    ] {
        assert_unauthorized(
            &app.request(method, &path, Some(agent), None).await,
            "agent token on the admin API",
        );
    }
    assert_eq!(app.snapshot().await, before);

    // Revoked, it is not even recognised.
    app.delete(
        &format!("/api/v1/licenses/{license_id}/agent-tokens/{token_id}"),
        &t.owner_token,
    )
    .await
    .assert_status(204);
    assert_unauthorized(&app.get("/api/v1/me", agent).await, "revoked agent token");
}

#[sqlx::test]
async fn the_platform_admin_token_has_no_tenant(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.create_tenant("acme").await;
    app.get("/api/v1/licenses", ADMIN_TOKEN)
        .await
        .assert_problem(403);
    app.get("/api/v1/me", ADMIN_TOKEN).await.assert_problem(403);
}

#[sqlx::test]
async fn a_users_api_keys_die_with_their_rights_on_demotion_and_deletion(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let (id, token) = app
        .create_user(&t.owner_token, "admin@acme.test", "admin")
        .await;
    let (_, admin_key) = app.create_api_key(&token, "admin").await;
    let (_, viewer_key) = app.create_api_key(&token, "viewer").await;
    let (_, owners_key) = app.create_api_key(&t.owner_token, "admin").await;
    for key in [&admin_key, &viewer_key, &owners_key] {
        app.get("/api/v1/me", key).await.assert_status(200);
    }

    app.set_role(&t.owner_token, &id, "viewer").await;
    app.get("/api/v1/me", &admin_key).await.assert_problem(401);
    app.get("/api/v1/me", &viewer_key).await.assert_status(200);

    app.delete(&format!("/api/v1/users/{id}"), &t.owner_token)
        .await
        .assert_status(204);
    app.get("/api/v1/me", &viewer_key).await.assert_problem(401);
    // Another user's key is not touched.
    app.get("/api/v1/me", &owners_key).await.assert_status(200);
}
