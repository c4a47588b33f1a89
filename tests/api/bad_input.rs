//! Bad input, as tables with a message for each case (SPEC section 10): every case gets a
//! problem+json answer with the expected status and field pointers, and writes nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers of tests: a panic is a failed test with its location"
)]

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

/// Who sends the request.
#[derive(Clone, Copy)]
enum As {
    Admin,
    Owner,
}

enum Body {
    Json(Value),
    /// A body sent as is, with this `Content-Type` (none when `None`).
    Raw(Option<&'static str>, String),
}

struct Request {
    method: Method,
    path: String,
    by: As,
    body: Body,
}

struct Case {
    what: &'static str,
    request: Request,
    status: u16,
    /// Exactly the pointers the answer's `errors` must name (in any order).
    pointers: &'static [&'static str],
}

fn json_to(method: Method, path: &str, by: As, body: Value) -> Request {
    Request {
        method,
        path: path.to_owned(),
        by,
        body: Body::Json(body),
    }
}

fn raw_to(
    method: Method,
    path: &str,
    by: As,
    content_type: Option<&'static str>,
    body: impl Into<String>,
) -> Request {
    Request {
        method,
        path: path.to_owned(),
        by,
        body: Body::Raw(content_type, body.into()),
    }
}

fn case(
    what: &'static str,
    request: Request,
    status: u16,
    pointers: &'static [&'static str],
) -> Case {
    Case {
        what,
        request,
        status,
        pointers,
    }
}

/// Everything a request could have written: row counts and the rows themselves (so that an
/// UPDATE that should not have happened is caught too).
async fn state(app: &TestApp) -> (Vec<i64>, Vec<String>) {
    let mut rows = Vec::new();
    for table in ACCOUNT_TABLES {
        rows.push(app.rows(table).await);
    }
    (app.snapshot().await, rows)
}

/// Sends every case and checks its answer, and that nothing was written.
async fn refuse_all(app: &TestApp, owner_token: &str, cases: Vec<Case>) {
    for Case {
        what,
        request,
        status,
        pointers,
    } in cases
    {
        let before = state(app).await;
        let token = match request.by {
            As::Admin => ADMIN_TOKEN,
            As::Owner => owner_token,
        };
        let mut req = app
            .client
            .request(request.method, format!("{}{}", app.address, request.path))
            .bearer_auth(token);
        req = match request.body {
            Body::Json(body) => req.json(&body),
            Body::Raw(Some(content_type), body) => {
                req.header("content-type", content_type).body(body)
            }
            Body::Raw(None, body) => req.body(body),
        };
        // `send` panics on a contract violation; this line says which case it was.
        eprintln!("case: {what}");
        let r = app.send(req).await;

        assert_eq!(
            r.status.as_u16(),
            status,
            "{what}: status; body: {}",
            r.text
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{what}: content type; body: {}",
            r.text
        );
        assert_eq!(
            r.body["status"], status,
            "{what}: problem status; body: {}",
            r.text
        );
        assert!(
            r.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: a detail; body: {}",
            r.text
        );
        let mut got = r.pointers();
        got.sort();
        let mut expected: Vec<String> = pointers.iter().map(|p| (*p).to_owned()).collect();
        expected.sort();
        assert_eq!(got, expected, "{what}: pointers; body: {}", r.text);
        r.assert_problem(status);

        assert_eq!(state(app).await, before, "{what}: something was written");
    }
}

const LICENSE: &str =
    r#"{"key": "LIC-NEW", "name": "Depot 7", "kind": "direct", "check_interval_seconds": 600}"#;

#[sqlx::test]
async fn bad_license_input_is_refused_with_a_problem_and_writes_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    app.create_license(&acme.owner_token, "LIC-001").await;
    let path = "/api/v1/licenses";
    let post = |body: Value| json_to(Method::POST, path, As::Owner, body);
    let raw = |content_type, body: &str| raw_to(Method::POST, path, As::Owner, content_type, body);
    let long_name = "n".repeat(201);
    let long_key = "k".repeat(65);

    let cases = vec![
        case(
            "missing key",
            post(json!({"name": "Depot 7"})),
            422,
            &["/key"],
        ),
        case(
            "missing name",
            post(json!({"key": "LIC-NEW"})),
            422,
            &["/name"],
        ),
        case(
            "key is a number",
            post(json!({"key": 7, "name": "Depot 7"})),
            422,
            &["/key"],
        ),
        case(
            "name is null",
            post(json!({"key": "LIC-NEW", "name": null})),
            422,
            &["/name"],
        ),
        case(
            "kind is a list",
            post(json!({"key": "LIC-NEW", "name": "Depot 7", "kind": ["direct"]})),
            422,
            &["/kind"],
        ),
        case(
            "check interval is a string",
            post(json!({"key": "LIC-NEW", "name": "Depot 7", "check_interval_seconds": "600"})),
            422,
            &["/check_interval_seconds"],
        ),
        case(
            "check interval is a fraction",
            post(json!({"key": "LIC-NEW", "name": "Depot 7", "check_interval_seconds": 600.5})),
            422,
            &["/check_interval_seconds"],
        ),
        case(
            "check interval overflows 64 bits",
            raw(
                Some("application/json"),
                r#"{"key": "LIC-NEW", "name": "Depot 7", "check_interval_seconds": 9223372036854775808}"#,
            ),
            422,
            &["/check_interval_seconds"],
        ),
        case(
            "the body is a list, not an object",
            post(json!([])),
            422,
            &[""],
        ),
        case("the body is null", post(Value::Null), 422, &[""]),
        case(
            "name over 200 characters",
            post(json!({"key": "LIC-NEW", "name": long_name})),
            422,
            &["/name"],
        ),
        case(
            "name only blanks",
            post(json!({"key": "LIC-NEW", "name": "   "})),
            422,
            &["/name"],
        ),
        case(
            "name with a control character",
            post(json!({"key": "LIC-NEW", "name": "Depot\u{7}7"})),
            422,
            &["/name"],
        ),
        case(
            "key over 64 characters",
            post(json!({"key": long_key, "name": "Depot 7"})),
            422,
            &["/key"],
        ),
        case(
            "empty key",
            post(json!({"key": "", "name": "Depot 7"})),
            422,
            &["/key"],
        ),
        case(
            "key with a space",
            post(json!({"key": "LIC 001", "name": "Depot 7"})),
            422,
            &["/key"],
        ),
        case(
            "key with a non-ASCII letter",
            post(json!({"key": "LIC-ü", "name": "Depot 7"})),
            422,
            &["/key"],
        ),
        case(
            "unknown kind",
            post(json!({"key": "LIC-NEW", "name": "Depot 7", "kind": "satellite"})),
            422,
            &["/kind"],
        ),
        case(
            "kind in the wrong case",
            post(json!({"key": "LIC-NEW", "name": "Depot 7", "kind": "Direct"})),
            422,
            &["/kind"],
        ),
        case(
            "check interval 59 s, one under the minimum",
            post(json!({"key": "LIC-NEW", "name": "Depot 7", "check_interval_seconds": 59})),
            422,
            &["/check_interval_seconds"],
        ),
        case(
            "check interval 86401 s, one over the maximum",
            post(json!({"key": "LIC-NEW", "name": "Depot 7", "check_interval_seconds": 86401})),
            422,
            &["/check_interval_seconds"],
        ),
        case(
            "check interval negative",
            post(json!({"key": "LIC-NEW", "name": "Depot 7", "check_interval_seconds": -1})),
            422,
            &["/check_interval_seconds"],
        ),
        case(
            "every field invalid: all are listed",
            post(json!({"key": "", "name": "", "kind": "x", "check_interval_seconds": 1})),
            422,
            &["/key", "/name", "/kind", "/check_interval_seconds"],
        ),
        case(
            "duplicate key in the tenant",
            post(json!({"key": "LIC-001", "name": "Depot 7"})),
            409,
            &["/key"],
        ),
        case(
            "malformed JSON",
            raw(Some("application/json"), r#"{"key": "LIC-NEW", "name": "#),
            400,
            &[],
        ),
        case(
            "an empty JSON body",
            raw(Some("application/json"), ""),
            400,
            &[],
        ),
        case(
            "JSON sent as text/plain",
            raw(Some("text/plain"), LICENSE),
            415,
            &[],
        ),
        case(
            "JSON sent as a form",
            raw(Some("application/x-www-form-urlencoded"), LICENSE),
            415,
            &[],
        ),
        case(
            "JSON sent without a content type",
            raw(None, LICENSE),
            415,
            &[],
        ),
    ];
    refuse_all(&app, &acme.owner_token, cases).await;
}

#[sqlx::test]
async fn bad_license_updates_are_refused_with_a_problem_and_change_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    let license = app.create_license(&acme.owner_token, "LIC-001").await;
    app.create_license(&acme.owner_token, "LIC-002").await;
    let path = format!("/api/v1/licenses/{}", license["id"].as_str().unwrap());
    let patch = |body: Value| json_to(Method::PATCH, &path, As::Owner, body);
    let raw =
        |content_type, body: &str| raw_to(Method::PATCH, &path, As::Owner, content_type, body);

    let cases = vec![
        case(
            "key over 64 characters",
            patch(json!({"key": "k".repeat(65)})),
            422,
            &["/key"],
        ),
        case(
            "key with a slash",
            patch(json!({"key": "LIC/1"})),
            422,
            &["/key"],
        ),
        case(
            "name over 200 characters",
            patch(json!({"name": "n".repeat(201)})),
            422,
            &["/name"],
        ),
        case("empty name", patch(json!({"name": ""})), 422, &["/name"]),
        case(
            "unknown kind",
            patch(json!({"kind": "hybrid"})),
            422,
            &["/kind"],
        ),
        case(
            "check interval 59 s",
            patch(json!({"check_interval_seconds": 59})),
            422,
            &["/check_interval_seconds"],
        ),
        case(
            "check interval 86401 s",
            patch(json!({"check_interval_seconds": 86401})),
            422,
            &["/check_interval_seconds"],
        ),
        case(
            "check interval -1 s",
            patch(json!({"check_interval_seconds": -1})),
            422,
            &["/check_interval_seconds"],
        ),
        case(
            "a valid name beside an invalid interval: nothing is applied",
            patch(json!({"name": "Renamed", "check_interval_seconds": 30})),
            422,
            &["/check_interval_seconds"],
        ),
        case(
            "name is a number",
            patch(json!({"name": 5})),
            422,
            &["/name"],
        ),
        case(
            "the key of another license",
            patch(json!({"key": "LIC-002"})),
            409,
            &["/key"],
        ),
        case(
            "the key of another license beside a valid name: nothing is applied",
            patch(json!({"key": "LIC-002", "name": "Renamed"})),
            409,
            &["/key"],
        ),
        case(
            "malformed JSON",
            raw(Some("application/json"), "{name: 'x'}"),
            400,
            &[],
        ),
        case(
            "text/plain",
            raw(Some("text/plain"), r#"{"name": "x"}"#),
            415,
            &[],
        ),
        case("no content type", raw(None, r#"{"name": "x"}"#), 415, &[]),
    ];
    refuse_all(&app, &acme.owner_token, cases).await;
}

#[sqlx::test]
async fn bad_tenant_input_is_refused_with_a_problem_and_writes_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    let path = "/api/v1/admin/tenants";
    let post = |body: Value| json_to(Method::POST, path, As::Admin, body);
    let raw = |content_type, body: &str| raw_to(Method::POST, path, As::Admin, content_type, body);
    let owner = json!({"email": "ops@new.test", "password": PASSWORD});
    let valid = r#"{"name": "New", "owner": {"email": "ops@new.test", "password": "correct horse battery staple"}}"#;

    let cases = vec![
        case(
            "missing owner",
            post(json!({"name": "New"})),
            422,
            &["/owner"],
        ),
        case(
            "missing name",
            post(json!({"owner": owner})),
            422,
            &["/name"],
        ),
        case(
            "missing owner password",
            post(json!({"name": "New", "owner": {"email": "ops@new.test"}})),
            422,
            &["/owner/password"],
        ),
        case(
            "owner is a string",
            post(json!({"name": "New", "owner": "ops@new.test"})),
            422,
            &["/owner"],
        ),
        case(
            "timezone is a number",
            post(json!({"name": "New", "timezone": 1, "owner": owner})),
            422,
            &["/timezone"],
        ),
        case(
            "unknown time zone",
            post(json!({"name": "New", "timezone": "Mars/Base", "owner": owner})),
            422,
            &["/timezone"],
        ),
        case(
            "name over 200 characters",
            post(json!({"name": "n".repeat(201), "owner": owner})),
            422,
            &["/name"],
        ),
        case(
            "owner e-mail without a domain",
            post(json!({"name": "New", "owner": {"email": "ops@", "password": PASSWORD}})),
            422,
            &["/owner/email"],
        ),
        case(
            "owner e-mail without @",
            post(json!({"name": "New", "owner": {"email": "ops.new.test", "password": PASSWORD}})),
            422,
            &["/owner/email"],
        ),
        case(
            "owner password of 9 characters",
            post(
                json!({"name": "New", "owner": {"email": "ops@new.test", "password": "123456789"}}),
            ),
            422,
            &["/owner/password"],
        ),
        case(
            "every field invalid: all are listed",
            post(
                json!({"name": "", "timezone": "Nowhere", "owner": {"email": "x", "password": "short"}}),
            ),
            422,
            &["/name", "/timezone", "/owner/email", "/owner/password"],
        ),
        case(
            "owner e-mail that already has an account, in other case",
            post(
                json!({"name": "New", "owner": {"email": acme.owner_email.to_uppercase(), "password": PASSWORD}}),
            ),
            409,
            &["/owner/email"],
        ),
        case(
            "malformed JSON",
            raw(Some("application/json"), "{"),
            400,
            &[],
        ),
        case("text/plain", raw(Some("text/plain"), valid), 415, &[]),
        case("no content type", raw(None, valid), 415, &[]),
    ];
    refuse_all(&app, &acme.owner_token, cases).await;
}

#[sqlx::test]
async fn bad_user_input_is_refused_with_a_problem_and_writes_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    let other = app.create_tenant("other").await;
    let path = "/api/v1/users";
    let post = |body: Value| json_to(Method::POST, path, As::Owner, body);
    let raw = |content_type, body: &str| raw_to(Method::POST, path, As::Owner, content_type, body);
    let valid =
        r#"{"email": "v@acme.test", "password": "correct horse battery staple", "role": "viewer"}"#;

    let cases = vec![
        case(
            "missing role",
            post(json!({"email": "v@acme.test", "password": PASSWORD})),
            422,
            &["/role"],
        ),
        case(
            "missing password",
            post(json!({"email": "v@acme.test", "role": "viewer"})),
            422,
            &["/password"],
        ),
        case(
            "unknown role",
            post(json!({"email": "v@acme.test", "password": PASSWORD, "role": "god"})),
            422,
            &["/role"],
        ),
        case(
            "invalid e-mail",
            post(json!({"email": "v at acme", "password": PASSWORD, "role": "viewer"})),
            422,
            &["/email"],
        ),
        case(
            "e-mail with two @",
            post(json!({"email": "v@@acme.test", "password": PASSWORD, "role": "viewer"})),
            422,
            &["/email"],
        ),
        case(
            "password of 9 characters",
            post(json!({"email": "v@acme.test", "password": "123456789", "role": "viewer"})),
            422,
            &["/password"],
        ),
        case(
            "password over 1024 characters",
            post(json!({"email": "v@acme.test", "password": "p".repeat(1025), "role": "viewer"})),
            422,
            &["/password"],
        ),
        case(
            "invalid e-mail and password: both are listed",
            post(json!({"email": "nope", "password": "short", "role": "viewer"})),
            422,
            &["/email", "/password"],
        ),
        case(
            "an e-mail address with an account in this tenant",
            post(json!({"email": acme.owner_email, "password": PASSWORD, "role": "viewer"})),
            409,
            &["/email"],
        ),
        case(
            "an e-mail address with an account in another tenant, in other case",
            post(
                json!({"email": other.owner_email.to_uppercase(), "password": PASSWORD, "role": "viewer"}),
            ),
            409,
            &["/email"],
        ),
        case(
            "malformed JSON",
            raw(Some("application/json"), "nope"),
            400,
            &[],
        ),
        case("text/plain", raw(Some("text/plain"), valid), 415, &[]),
        case("no content type", raw(None, valid), 415, &[]),
    ];
    refuse_all(&app, &acme.owner_token, cases).await;
}

#[sqlx::test]
async fn bad_api_key_input_is_refused_with_a_problem_and_writes_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    let path = "/api/v1/api-keys";
    let post = |body: Value| json_to(Method::POST, path, As::Owner, body);
    let raw = |content_type, body: &str| raw_to(Method::POST, path, As::Owner, content_type, body);
    let valid = r#"{"name": "export", "role": "viewer"}"#;

    let cases = vec![
        case(
            "missing name",
            post(json!({"role": "viewer"})),
            422,
            &["/name"],
        ),
        case(
            "missing role",
            post(json!({"name": "export"})),
            422,
            &["/role"],
        ),
        case(
            "empty name",
            post(json!({"name": "", "role": "viewer"})),
            422,
            &["/name"],
        ),
        case(
            "name over 200 characters",
            post(json!({"name": "n".repeat(201), "role": "viewer"})),
            422,
            &["/name"],
        ),
        case(
            "unknown role",
            post(json!({"name": "export", "role": "root"})),
            422,
            &["/role"],
        ),
        case(
            "the owner role, which keys cannot have",
            post(json!({"name": "export", "role": "owner"})),
            422,
            &["/role"],
        ),
        case(
            "role is a number",
            post(json!({"name": "export", "role": 1})),
            422,
            &["/role"],
        ),
        case(
            "malformed JSON",
            raw(
                Some("application/json"),
                r#"{"name": "export", "role": "viewer""#,
            ),
            400,
            &[],
        ),
        case("text/plain", raw(Some("text/plain"), valid), 415, &[]),
        case("no content type", raw(None, valid), 415, &[]),
    ];
    refuse_all(&app, &acme.owner_token, cases).await;
}

#[sqlx::test]
async fn bodies_over_64_kib_are_refused_with_413_and_write_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    let license = app.create_license(&acme.owner_token, "LIC-001").await;
    let license_path = format!("/api/v1/licenses/{}", license["id"].as_str().unwrap());
    let huge = "x".repeat(65 * 1024);

    let cases = vec![
        case(
            "license with a 65 KiB name",
            json_to(
                Method::POST,
                "/api/v1/licenses",
                As::Owner,
                json!({"key": "LIC-NEW", "name": huge}),
            ),
            413,
            &[],
        ),
        case(
            "65 KiB that is not even JSON",
            raw_to(
                Method::POST,
                "/api/v1/licenses",
                As::Owner,
                Some("application/json"),
                huge.clone(),
            ),
            413,
            &[],
        ),
        case(
            "license update with a 65 KiB name",
            json_to(
                Method::PATCH,
                &license_path,
                As::Owner,
                json!({"name": huge}),
            ),
            413,
            &[],
        ),
        case(
            "tenant with a 65 KiB name",
            json_to(
                Method::POST,
                "/api/v1/admin/tenants",
                As::Admin,
                json!({"name": huge, "owner": {"email": "a@b.test", "password": PASSWORD}}),
            ),
            413,
            &[],
        ),
        case(
            "user with a 65 KiB password",
            json_to(
                Method::POST,
                "/api/v1/users",
                As::Owner,
                json!({"email": "v@acme.test", "password": huge, "role": "viewer"}),
            ),
            413,
            &[],
        ),
    ];
    refuse_all(&app, &acme.owner_token, cases).await;
}

#[sqlx::test]
async fn bad_login_input_is_refused_with_a_problem(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    let path = "/api/v1/auth/token";
    let post = |body: Value| json_to(Method::POST, path, As::Owner, body);
    let raw = |content_type, body: &str| raw_to(Method::POST, path, As::Owner, content_type, body);

    let cases = vec![
        case(
            "missing password",
            post(json!({"email": acme.owner_email})),
            422,
            &["/password"],
        ),
        case(
            "missing e-mail",
            post(json!({"password": PASSWORD})),
            422,
            &["/email"],
        ),
        case(
            "empty password",
            post(json!({"email": acme.owner_email, "password": ""})),
            422,
            &["/password"],
        ),
        case(
            "invalid e-mail",
            post(json!({"email": "owner", "password": PASSWORD})),
            422,
            &["/email"],
        ),
        case(
            "password is a number",
            post(json!({"email": acme.owner_email, "password": 1234567890})),
            422,
            &["/password"],
        ),
        case(
            "malformed JSON",
            raw(Some("application/json"), "{]"),
            400,
            &[],
        ),
        case(
            "form-encoded",
            raw(
                Some("application/x-www-form-urlencoded"),
                "email=owner%40acme.test&password=x",
            ),
            415,
            &[],
        ),
    ];
    refuse_all(&app, &acme.owner_token, cases).await;
}

#[sqlx::test]
async fn unknown_fields_are_refused_with_a_pointer_to_the_field(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let acme = app.create_tenant("acme").await;
    let license = app.create_license(&acme.owner_token, "LIC-001").await;
    let license_path = format!("/api/v1/licenses/{}", license["id"].as_str().unwrap());
    let owner = json!({"email": "ops@new.test", "password": PASSWORD});

    let cases = vec![
        case(
            "license with a tenant_id",
            json_to(
                Method::POST,
                "/api/v1/licenses",
                As::Owner,
                json!({"key": "LIC-NEW", "name": "Depot 7", "tenant_id": acme.id}),
            ),
            422,
            &["/tenant_id"],
        ),
        case(
            "license update with a status",
            json_to(
                Method::PATCH,
                &license_path,
                As::Owner,
                json!({"status": "inactive"}),
            ),
            422,
            &["/status"],
        ),
        case(
            "tenant with a plan",
            json_to(
                Method::POST,
                "/api/v1/admin/tenants",
                As::Admin,
                json!({"name": "New", "owner": owner, "plan": "gold"}),
            ),
            422,
            &["/plan"],
        ),
        case(
            "tenant owner with a role",
            json_to(
                Method::POST,
                "/api/v1/admin/tenants",
                As::Admin,
                json!({"name": "New", "owner": {"email": "ops@new.test", "password": PASSWORD, "role": "admin"}}),
            ),
            422,
            &["/owner/role"],
        ),
        case(
            "tenant owner with a field whose name needs escaping",
            json_to(
                Method::POST,
                "/api/v1/admin/tenants",
                As::Admin,
                json!({"name": "New", "owner": {"email": "ops@new.test", "password": PASSWORD, "a/b~c": 1}}),
            ),
            422,
            &["/owner/a~1b~0c"],
        ),
        case(
            "user with a tenant_id",
            json_to(
                Method::POST,
                "/api/v1/users",
                As::Owner,
                json!({"email": "v@acme.test", "password": PASSWORD, "role": "viewer", "tenant_id": acme.id}),
            ),
            422,
            &["/tenant_id"],
        ),
        case(
            "API key with an expiry",
            json_to(
                Method::POST,
                "/api/v1/api-keys",
                As::Owner,
                json!({"name": "export", "role": "viewer", "expires": "never"}),
            ),
            422,
            &["/expires"],
        ),
        case(
            "login with a tenant",
            json_to(
                Method::POST,
                "/api/v1/auth/token",
                As::Owner,
                json!({"email": acme.owner_email, "password": PASSWORD, "tenant": "acme"}),
            ),
            422,
            &["/tenant"],
        ),
    ];
    refuse_all(&app, &acme.owner_token, cases).await;
}

#[sqlx::test]
async fn a_body_that_is_not_a_json_object_is_refused_even_when_serde_could_read_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let (user, _) = app
        .create_user(&t.owner_token, "ops@acme.test", "viewer")
        .await;
    let before = state(&app).await;
    // serde reads a struct from an array of its fields: `[null, null]` was a valid update.
    for body in [json!([null, null]), json!([]), json!("text"), json!(7)] {
        let r = app
            .request(
                Method::PATCH,
                &format!("/api/v1/users/{user}"),
                Some(&t.owner_token),
                Some(body.clone()),
            )
            .await;
        r.assert_problem(422);
        assert_eq!(r.pointers(), [""], "{body}");
    }
    assert_eq!(state(&app).await, before);
}

#[sqlx::test]
async fn an_unsubscribe_link_without_its_token_gets_the_html_page(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for method in [Method::GET, Method::POST] {
        let r = app.request(method, "/unsubscribe", None, None).await;
        r.assert_status(400);
        assert!(
            r.header("content-type").unwrap().starts_with("text/html"),
            "{:?}",
            r.header("content-type")
        );
        assert!(r.text.contains("not valid"), "{}", r.text);
    }
}
