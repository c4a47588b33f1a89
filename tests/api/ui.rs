//! The web UI over HTTP (SPEC section 8): CSRF, cookies, Content-Security-Policy, roles,
//! tenant isolation, secrets that must not leak, escaping and redirects. [`Ui`] stands in for a
//! browser: it keeps cookies and does not follow redirects, so every answer can be looked at.
//! `browser.rs` drives a real Chromium through the same pages.

use crate::helpers::*;
use reqwest::{Method, header};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;

pub const SESSION_COOKIE: &str = "sw_session";
pub const LOGIN_CSRF_COOKIE: &str = "sw_login_csrf";

// --- a cookie-keeping client of the UI ---------------------------------------------------------

/// A browser-like client of the UI: keeps cookies (from `Set-Cookie`), never follows redirects.
pub struct Ui<'a> {
    app: &'a TestApp,
    cookies: BTreeMap<String, String>,
}

impl<'a> Ui<'a> {
    /// A visitor without cookies.
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: BTreeMap::new(),
        }
    }

    /// Logs `email` (password [`PASSWORD`]) in through the login form.
    pub async fn login(app: &'a TestApp, email: &str) -> Self {
        let mut ui = Self::new(app);
        let page = ui.get("/login").await;
        page.assert_status(200);
        let csrf = csrf_of(&page.text);
        let r = ui
            .post(
                "/login",
                &[
                    ("email", email),
                    ("password", PASSWORD),
                    ("next", "/"),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "login of {email} failed: {}", r.text);
        assert!(
            ui.cookie(SESSION_COOKIE).is_some(),
            "no session cookie after logging in {email}"
        );
        ui
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    pub async fn get(&mut self, path: &str) -> TestResponse {
        self.send(Method::GET, path, None).await
    }

    /// Posts a form (`application/x-www-form-urlencoded`).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        self.send(Method::POST, path, Some(form(fields))).await
    }

    async fn send(&mut self, method: Method, path: &str, body: Option<String>) -> TestResponse {
        let mut req = self
            .app
            .client
            .request(method, format!("{}{path}", self.app.address));
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header(header::COOKIE, jar.join("; "));
        }
        if let Some(body) = body {
            req = req
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body);
        }
        let r = self.app.send(req).await;
        for line in set_cookies(&r) {
            let (name, value) = cookie_pair(&line);
            let expired = line.to_ascii_lowercase().contains("max-age=0");
            if value.is_empty() || expired {
                self.cookies.remove(&name);
            } else {
                self.cookies.insert(name, value);
            }
        }
        r
    }

    /// The CSRF token of this session, as the Monitoring page's forms carry it.
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/").await;
        page.assert_status(200);
        csrf_of(&page.text)
    }
}

/// `application/x-www-form-urlencoded`.
pub fn form(fields: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of the first `<input … id/name="…" value="…">` marked by `marker` (for example
/// `name="csrf" value="`).
pub fn value_after(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    let len = html[start..].find('"')?;
    Some(html[start..start + len].to_owned())
}

/// The CSRF token in a page's forms.
#[track_caller]
pub fn csrf_of(html: &str) -> String {
    value_after(html, r#"name="csrf" value=""#)
        .unwrap_or_else(|| panic!("no csrf field in the page:\n{html}"))
}

/// The `Set-Cookie` lines of a response.
pub fn set_cookies(r: &TestResponse) -> Vec<String> {
    r.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

/// The `Set-Cookie` line for cookie `name`.
#[track_caller]
pub fn set_cookie_line(r: &TestResponse, name: &str) -> String {
    set_cookies(r)
        .into_iter()
        .find(|l| cookie_pair(l).0 == name)
        .unwrap_or_else(|| panic!("no Set-Cookie for {name}: {:?}", set_cookies(r)))
}

fn cookie_pair(line: &str) -> (String, String) {
    let first = line.split(';').next().unwrap_or_default();
    let (name, value) = first.split_once('=').unwrap_or((first, ""));
    (name.trim().to_owned(), value.trim().to_owned())
}

/// The cookie attributes of a `Set-Cookie` line, lower-cased (`httponly`, `samesite=lax`, ...).
fn cookie_attributes(line: &str) -> Vec<String> {
    line.split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

// --- seeding -----------------------------------------------------------------------------------

async fn scalar(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Everything a UI form could write, to prove that a refused POST wrote nothing.
async fn everything(app: &TestApp) -> Vec<i64> {
    let mut all = app.snapshot().await;
    for sql in [
        "SELECT count(*) FROM notification_settings",
        "SELECT count(*) FROM agent_tokens WHERE revoked_at IS NOT NULL",
        "SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL",
        "SELECT count(*) FROM users WHERE role = 'owner'",
        "SELECT count(*) FROM users WHERE role = 'admin'",
        "SELECT count(*) FROM licenses WHERE name LIKE 'Site %'",
    ] {
        all.push(scalar(&app.pool, sql).await);
    }
    all
}

/// The notification form's fields, valid except for `csrf`.
fn notification_fields(csrf: Option<&str>) -> Vec<(&str, &str)> {
    let mut fields = vec![
        ("enabled", "on"),
        ("inactivity_hours", "2"),
        ("notification_hours", "8"),
        ("recipients", "ops@acme.test"),
        ("notify_on_recovery", "on"),
    ];
    if let Some(csrf) = csrf {
        fields.push(("csrf", csrf));
    }
    fields
}

fn default_settings() -> Value {
    without_routing(
        json!({"enabled": false, "inactivity_interval_seconds": 3600,
           "notification_interval_seconds": 28800, "recipients": [], "notify_on_recovery": true}),
    )
}

// --- CSRF ----------------------------------------------------------------------------------------

#[sqlx::test]
async fn a_notification_form_without_or_with_a_wrong_csrf_token_is_refused_and_saves_nothing(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let s = app.create_site(&t.owner_token, "site-1").await;
    app.create_user(&t.owner_token, "admin@acme.test", "admin")
        .await;
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let mut other = Ui::login(&app, "admin@acme.test").await;
    let others_csrf = other.csrf().await;
    let path = format!("/licenses/{}/notifications", s.id);
    let before = everything(&app).await;

    let wrong = "0".repeat(64);
    for (what, csrf) in [
        ("an empty token", ""),
        ("a made-up token", wrong.as_str()),
        ("another session's token", others_csrf.as_str()),
    ] {
        let r = owner.post(&path, &notification_fields(Some(csrf))).await;
        assert_eq!(r.status, 403, "{what}: {}", r.text);
        assert!(
            r.text.contains("did not come from this site"),
            "{what}: {}",
            r.text
        );
    }
    // The right token without the session cookie is no session at all.
    let owners_csrf = owner.csrf().await;
    let r = Ui::new(&app)
        .post(&path, &notification_fields(Some(&owners_csrf)))
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert!(r.header("location").unwrap().starts_with("/login"));
    assert_eq!(
        everything(&app).await,
        before,
        "a refused form wrote something"
    );

    // No csrf field at all: the same refusal (403 and the page saying why).
    let r = owner.post(&path, &notification_fields(None)).await;
    assert_eq!(r.status, 403, "no csrf field: {}", r.text);
    assert_eq!(
        everything(&app).await,
        before,
        "a refused form wrote something"
    );
    assert_eq!(
        app.notification_settings(&t.owner_token, &s.id).await,
        default_settings()
    );

    // The same form with the session's own token is saved: only the token was wrong above.
    let r = owner
        .post(&path, &notification_fields(Some(&owners_csrf)))
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(
        app.notification_settings(&t.owner_token, &s.id).await["inactivity_interval_seconds"],
        7200
    );
}

#[sqlx::test]
async fn a_login_without_its_csrf_cookie_or_with_a_foreign_token_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let mut first = Ui::new(&app);
    let page = first.get("/login").await;
    let csrf = csrf_of(&page.text);
    let fields = |csrf: &str| {
        form(&[
            ("email", t.owner_email.as_str()),
            ("password", PASSWORD),
            ("next", "/"),
            ("csrf", csrf),
        ])
    };

    // The form's token without the cookie it belongs to (a login CSRF attempt).
    let req = app
        .client
        .post(format!("{}/login", app.address))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(fields(&csrf));
    let r = app.send(req).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(
        !set_cookies(&r)
            .iter()
            .any(|l| l.starts_with("sw_session=") && !l.starts_with("sw_session=;")),
        "a session was issued: {:?}",
        set_cookies(&r)
    );

    // The cookie of one login page with the token of another.
    let mut second = Ui::new(&app);
    let other_csrf = csrf_of(&second.get("/login").await.text);
    let r = first
        .post(
            "/login",
            &[
                ("email", &t.owner_email),
                ("password", PASSWORD),
                ("next", "/"),
                ("csrf", &other_csrf),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(first.cookie(SESSION_COOKIE).is_none());

    // No csrf field at all.
    let r = second
        .post(
            "/login",
            &[
                ("email", &t.owner_email),
                ("password", PASSWORD),
                ("next", "/"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(second.cookie(SESSION_COOKIE).is_none());
}

#[sqlx::test]
async fn every_other_form_refuses_a_wrong_csrf_token_and_writes_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let s = app.create_site(&t.owner_token, "site-1").await;
    let (user_id, _) = app
        .create_user(&t.owner_token, "viewer@acme.test", "viewer")
        .await;
    let (key_id, _) = app.create_api_key(&t.owner_token, "viewer").await;
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let before = everything(&app).await;
    let bad = "f".repeat(64);

    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/licenses".to_owned(),
            vec![
                ("key", "site-new"),
                ("name", "Site new"),
                ("kind", "direct"),
                ("check_minutes", "10"),
                ("csrf", &bad),
            ],
        ),
        (
            format!("/licenses/{}/edit", s.id),
            vec![
                ("key", "site-1"),
                ("name", "Renamed"),
                ("kind", "cloud"),
                ("check_minutes", "5"),
                ("csrf", &bad),
            ],
        ),
        (format!("/licenses/{}/delete", s.id), vec![("csrf", &bad)]),
        (
            format!("/licenses/{}/agent-tokens", s.id),
            vec![("name", "forged"), ("csrf", &bad)],
        ),
        (
            format!(
                "/licenses/{}/agent-tokens/{}/revoke",
                s.id, s.agent_token_id
            ),
            vec![("csrf", &bad)],
        ),
        (
            "/users".to_owned(),
            vec![
                ("email", "mallory@acme.test"),
                ("password", "a long enough password"),
                ("role", "owner"),
                ("csrf", &bad),
            ],
        ),
        (
            format!("/users/{user_id}/role"),
            vec![("role", "admin"), ("csrf", &bad)],
        ),
        (format!("/users/{user_id}/delete"), vec![("csrf", &bad)]),
        (
            "/api-keys".to_owned(),
            vec![("name", "forged"), ("role", "admin"), ("csrf", &bad)],
        ),
        (format!("/api-keys/{key_id}/revoke"), vec![("csrf", &bad)]),
        ("/logout".to_owned(), vec![("csrf", &bad)]),
    ];
    for (path, fields) in &posts {
        let r = owner.post(path, fields).await;
        assert_eq!(r.status, 403, "POST {path} with a wrong csrf: {}", r.text);
    }
    assert!(
        owner.cookie(SESSION_COOKIE).is_some(),
        "a forged logout ended the session"
    );
    owner.get("/").await.assert_status(200);
    assert_eq!(
        everything(&app).await,
        before,
        "a refused form wrote something"
    );
}

// --- cookies and headers -------------------------------------------------------------------------

#[sqlx::test]
async fn session_cookies_are_http_only_and_same_site_lax(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let mut ui = Ui::new(&app);
    let page = ui.get("/login").await;
    let line = set_cookie_line(&page, LOGIN_CSRF_COOKIE);
    let attrs = cookie_attributes(&line);
    for want in ["httponly", "samesite=lax", "path=/"] {
        assert!(attrs.iter().any(|a| a == want), "{want} missing: {line}");
    }
    // Plain http (the test server): no Secure, or the browser would drop the cookie.
    assert!(!attrs.iter().any(|a| a == "secure"), "{line}");

    let csrf = csrf_of(&page.text);
    let r = ui
        .post(
            "/login",
            &[
                ("email", &t.owner_email),
                ("password", PASSWORD),
                ("next", "/"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let line = set_cookie_line(&r, SESSION_COOKIE);
    let attrs = cookie_attributes(&line);
    for want in ["httponly", "samesite=lax", "path=/"] {
        assert!(attrs.iter().any(|a| a == want), "{want} missing: {line}");
    }
    assert!(
        attrs
            .iter()
            .any(|a| a.starts_with("max-age=") && a != "max-age=0"),
        "{line}"
    );
    // The login nonce is spent.
    let spent = set_cookie_line(&r, LOGIN_CSRF_COOKIE);
    assert!(
        cookie_attributes(&spent).iter().any(|a| a == "max-age=0"),
        "{spent}"
    );
}

#[sqlx::test]
async fn cookies_are_secure_when_the_public_url_is_https(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |s| {
        s.http.public_url = Some("https://monitor.example.test".to_owned());
    })
    .await;
    let t = app.create_tenant("acme").await;
    let mut ui = Ui::new(&app);
    let page = ui.get("/login").await;
    let line = set_cookie_line(&page, LOGIN_CSRF_COOKIE);
    assert!(
        cookie_attributes(&line).iter().any(|a| a == "secure"),
        "{line}"
    );
    let csrf = csrf_of(&page.text);
    let r = ui
        .post(
            "/login",
            &[
                ("email", &t.owner_email),
                ("password", PASSWORD),
                ("next", "/"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let line = set_cookie_line(&r, SESSION_COOKIE);
    let attrs = cookie_attributes(&line);
    for want in ["httponly", "samesite=lax", "secure"] {
        assert!(attrs.iter().any(|a| a == want), "{want} missing: {line}");
    }
}

/// Asserts the strict policy and that the page needs no exception from it.
#[track_caller]
fn assert_strict_csp(what: &str, r: &TestResponse) {
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    let directives: BTreeMap<&str, &str> = csp
        .split(';')
        .filter_map(|d| d.trim().split_once(' '))
        .collect();
    assert_eq!(
        directives.get("default-src"),
        Some(&"'none'"),
        "{what}: {csp}"
    );
    assert_eq!(
        directives.get("script-src"),
        Some(&"'self'"),
        "{what}: {csp}"
    );
    assert_eq!(
        directives.get("style-src"),
        Some(&"'self'"),
        "{what}: {csp}"
    );
    assert_eq!(
        directives.get("frame-ancestors"),
        Some(&"'none'"),
        "{what}: {csp}"
    );
    assert_eq!(
        directives.get("form-action"),
        Some(&"'self'"),
        "{what}: {csp}"
    );
    for loose in ["unsafe-inline", "unsafe-eval", "*", "http:", "https:"] {
        assert!(
            !csp.split_whitespace()
                .any(|w| w.trim_matches(['\'', ';']) == loose),
            "{what}: {loose} in {csp}"
        );
    }
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    // Nothing on the page would need 'unsafe-inline'.
    if r.header("content-type")
        .is_some_and(|c| c.starts_with("text/html"))
    {
        let html = r.text.to_ascii_lowercase();
        for (i, _) in html.match_indices("<script") {
            let tag = &html[i..i + html[i..].find('>').unwrap()];
            assert!(tag.contains(" src="), "{what}: an inline script: {tag}");
        }
        assert!(!html.contains("<style"), "{what}: an inline stylesheet");
        assert!(
            !html.contains(" style="),
            "{what}: an inline style attribute"
        );
        assert!(!html.contains("javascript:"), "{what}: a javascript: URL");
        for handler in [
            " onclick=",
            " onload=",
            " onerror=",
            " onsubmit=",
            " onchange=",
        ] {
            assert!(
                !html.contains(handler),
                "{what}: an inline handler {handler}"
            );
        }
    }
}

#[sqlx::test]
async fn every_page_has_a_strict_content_security_policy_and_needs_no_exception(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let s = app.create_site(&t.owner_token, "site-1").await;
    app.push_ok(&s.agent_token, &Batch::one_active_camera())
        .await;
    app.create_user(&t.owner_token, "viewer@acme.test", "viewer")
        .await;

    let mut anon = Ui::new(&app);
    let r = anon.get("/login").await;
    r.assert_status(200);
    assert_strict_csp("login", &r);
    let r = anon.get("/").await;
    assert_strict_csp("redirect to login", &r);

    let mut owner = Ui::login(&app, &t.owner_email).await;
    for path in [
        "/".to_owned(),
        "/?status=inactive&q=site&sort=name".to_owned(),
        format!("/licenses/{}", s.id),
        format!("/licenses/{}/edit", s.id),
        format!("/licenses/{}/notifications", s.id),
        "/licenses/new".to_owned(),
        "/users".to_owned(),
        "/api-keys".to_owned(),
        "/maintenance-windows".to_owned(),
        "/?tag=region:eu&quiet=true".to_owned(),
        format!("/licenses/{}", Uuid::new_v4()),
    ] {
        let r = owner.get(&path).await;
        assert!(r.status == 200 || r.status == 404, "{path}: {}", r.status);
        assert_strict_csp(&path, &r);
    }
    let csrf = owner.csrf().await;
    let r = owner
        .post(
            &format!("/licenses/{}/agent-tokens", s.id),
            &[("csrf", &csrf), ("name", "second")],
        )
        .await;
    r.assert_status(200);
    assert_strict_csp("token created", &r);
    let r = owner
        .post(
            &format!("/licenses/{}/notifications", s.id),
            &[
                ("csrf", &csrf),
                ("inactivity_hours", "0.5"),
                ("notification_hours", "8"),
                ("recipients", ""),
            ],
        )
        .await;
    r.assert_status(422);
    assert_strict_csp("form with errors", &r);

    let mut viewer = Ui::login(&app, "viewer@acme.test").await;
    let r = viewer.get("/api-keys").await;
    r.assert_status(403);
    assert_strict_csp("forbidden", &r);

    for asset in ["/static/app.js", "/static/app.css"] {
        let r = anon.get(asset).await;
        r.assert_status(200);
        assert_strict_csp(asset, &r);
    }
}

// --- roles ---------------------------------------------------------------------------------------

#[sqlx::test]
async fn a_viewers_forged_posts_with_a_valid_csrf_token_are_refused_and_write_nothing(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let s = app.create_site(&t.owner_token, "site-1").await;
    let (viewer_id, _) = app
        .create_user(&t.owner_token, "viewer@acme.test", "viewer")
        .await;
    let (key_id, _) = app.create_api_key(&t.owner_token, "viewer").await;
    let mut viewer = Ui::login(&app, "viewer@acme.test").await;
    let csrf = viewer.csrf().await;
    let before = everything(&app).await;

    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            format!("/licenses/{}/notifications", s.id),
            notification_fields(Some(&csrf)),
        ),
        (
            "/licenses".to_owned(),
            vec![
                ("key", "site-new"),
                ("name", "Site new"),
                ("kind", "direct"),
                ("check_minutes", "10"),
                ("csrf", &csrf),
            ],
        ),
        (
            format!("/licenses/{}/agent-tokens", s.id),
            vec![("name", "forged"), ("csrf", &csrf)],
        ),
        (
            format!("/licenses/{}/edit", s.id),
            vec![
                ("key", "site-1"),
                ("name", "Renamed"),
                ("kind", "cloud"),
                ("check_minutes", "5"),
                ("csrf", &csrf),
            ],
        ),
        (format!("/licenses/{}/delete", s.id), vec![("csrf", &csrf)]),
        (
            format!(
                "/licenses/{}/agent-tokens/{}/revoke",
                s.id, s.agent_token_id
            ),
            vec![("csrf", &csrf)],
        ),
        (
            "/api-keys".to_owned(),
            vec![("name", "forged"), ("role", "admin"), ("csrf", &csrf)],
        ),
        (format!("/api-keys/{key_id}/revoke"), vec![("csrf", &csrf)]),
        (
            "/users".to_owned(),
            vec![
                ("email", "mallory@acme.test"),
                ("password", "a long enough password"),
                ("role", "owner"),
                ("csrf", &csrf),
            ],
        ),
        (
            format!("/users/{viewer_id}/role"),
            vec![("role", "owner"), ("csrf", &csrf)],
        ),
    ];
    for (path, fields) in &posts {
        let r = viewer.post(path, fields).await;
        assert_eq!(r.status, 403, "viewer POST {path}: {}", r.text);
        assert!(
            !r.text.contains("agent.toml") && !r.text.contains(r#"id="token""#),
            "POST {path} showed a secret"
        );
    }
    assert_eq!(
        everything(&app).await,
        before,
        "a viewer's POST wrote something"
    );
    assert_eq!(
        app.notification_settings(&t.owner_token, &s.id).await,
        default_settings()
    );
    // The agent token still works.
    app.push_ok(&s.agent_token, &Batch::one_active_camera())
        .await;

    // An admin may not manage users either (owners only).
    app.create_user(&t.owner_token, "admin@acme.test", "admin")
        .await;
    let mut admin = Ui::login(&app, "admin@acme.test").await;
    let csrf = admin.csrf().await;
    let before = everything(&app).await;
    let r = admin
        .post(
            "/users",
            &[
                ("email", "mallory@acme.test"),
                ("password", "a long enough password"),
                ("role", "owner"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = admin
        .post(
            &format!("/users/{viewer_id}/role"),
            &[("role", "owner"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(everything(&app).await, before);
}

// --- tenant isolation ----------------------------------------------------------------------------

#[sqlx::test]
async fn another_tenants_ids_are_not_found_on_any_page(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let a = app.create_tenant("alpha").await;
    let b = app.create_tenant("bravo").await;
    let theirs = app.create_site(&a.owner_token, "alpha-1").await;
    let ours = app.create_site(&b.owner_token, "bravo-1").await;
    let (their_key, _) = app.create_api_key(&a.owner_token, "viewer").await;
    let their_owner: String = sqlx::query_scalar("SELECT id::text FROM users WHERE email = $1")
        .bind(&a.owner_email)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let mut bob = Ui::login(&app, &b.owner_email).await;
    let csrf = bob.csrf().await;

    for path in [
        format!("/licenses/{}", theirs.id),
        format!("/licenses/{}/edit", theirs.id),
        format!("/licenses/{}/notifications", theirs.id),
        format!("/licenses/{}", Uuid::new_v4()),
        "/licenses/not-a-uuid".to_owned(),
        "/licenses/not-a-uuid/notifications".to_owned(),
    ] {
        let r = bob.get(&path).await;
        assert_eq!(r.status, 404, "GET {path}: {}", r.text);
        assert!(
            !r.text.contains("alpha-1") && !r.text.contains("Site alpha-1"),
            "{path}"
        );
    }
    let before = everything(&app).await;
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            format!("/licenses/{}/notifications", theirs.id),
            notification_fields(Some(&csrf)),
        ),
        (
            format!("/licenses/{}/agent-tokens", theirs.id),
            vec![("name", "stolen"), ("csrf", &csrf)],
        ),
        (
            format!(
                "/licenses/{}/agent-tokens/{}/revoke",
                theirs.id, theirs.agent_token_id
            ),
            vec![("csrf", &csrf)],
        ),
        // Their token under our own license.
        (
            format!(
                "/licenses/{}/agent-tokens/{}/revoke",
                ours.id, theirs.agent_token_id
            ),
            vec![("csrf", &csrf)],
        ),
        (
            format!("/licenses/{}/edit", theirs.id),
            vec![
                ("key", "alpha-1"),
                ("name", "Taken over"),
                ("kind", "cloud"),
                ("check_minutes", "5"),
                ("csrf", &csrf),
            ],
        ),
        (
            format!("/licenses/{}/delete", theirs.id),
            vec![("csrf", &csrf)],
        ),
        (
            format!("/api-keys/{their_key}/revoke"),
            vec![("csrf", &csrf)],
        ),
        (
            format!("/users/{their_owner}/role"),
            vec![("role", "viewer"), ("csrf", &csrf)],
        ),
        (
            format!("/users/{their_owner}/delete"),
            vec![("csrf", &csrf)],
        ),
    ];
    for (path, fields) in &posts {
        let r = bob.post(path, fields).await;
        assert_eq!(r.status, 404, "POST {path}: {}", r.text);
    }
    assert_eq!(
        everything(&app).await,
        before,
        "a cross-tenant POST wrote something"
    );
    // Their license, settings and agent token are untouched.
    let r = app
        .get(&format!("/api/v1/licenses/{}", theirs.id), &a.owner_token)
        .await;
    r.assert_status(200);
    assert_eq!(r.body["name"], "Site alpha-1");
    assert_eq!(
        app.notification_settings(&a.owner_token, &theirs.id).await,
        default_settings()
    );
    app.push_ok(&theirs.agent_token, &Batch::one_active_camera())
        .await;
    // Our Monitoring page does not list their license.
    let r = bob.get("/").await;
    assert!(!r.text.contains("alpha-1"), "{}", r.text);
    assert!(r.text.contains("bravo-1"));
}

// --- secrets -------------------------------------------------------------------------------------

#[sqlx::test]
async fn an_agent_token_is_shown_once_on_its_creation_page_and_on_no_page_after(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let license = app.create_license(&t.owner_token, "site-1").await;
    let id = license["id"].as_str().unwrap().to_owned();
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let csrf = owner.csrf().await;

    let r = owner
        .post(
            &format!("/licenses/{id}/agent-tokens"),
            &[("csrf", &csrf), ("name", "gate box")],
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let secret = value_after(&r.text, r#"id="token" readonly value=""#)
        .unwrap_or_else(|| panic!("no token on the page: {}", r.text));
    assert!(secret.len() >= 32, "{secret}");
    let snippet_at = r.text.find(r#"id="snippet""#).expect("a config snippet");
    assert!(
        r.text[snippet_at..].contains(&secret),
        "the snippet carries the token"
    );
    assert_eq!(
        r.text.matches(&secret).count(),
        2,
        "the token is on the page twice (field and snippet), nowhere else"
    );

    // It is a real token.
    app.push_ok(&secret, &Batch::one_active_camera()).await;

    // Never again: not on any page of the license, nor anywhere else.
    let prefix = &secret[..secret.len() / 2];
    for path in [
        "/".to_owned(),
        "/?q=site-1".to_owned(),
        format!("/licenses/{id}"),
        format!("/licenses/{id}/edit"),
        format!("/licenses/{id}/notifications"),
        "/licenses/new".to_owned(),
        "/users".to_owned(),
        "/api-keys".to_owned(),
    ] {
        let r = owner.get(&path).await;
        r.assert_status(200);
        assert!(!r.text.contains(&secret), "{path} shows the agent token");
        assert!(
            !r.text.contains(prefix),
            "{path} shows half of the agent token"
        );
    }
    // The activity page lists the token by name (without its secret).
    let r = owner.get(&format!("/licenses/{id}")).await;
    assert!(r.text.contains("gate box"), "{}", r.text);
}

#[sqlx::test]
async fn an_api_key_made_in_the_ui_is_shown_once_and_not_cached(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let csrf = owner.csrf().await;
    let r = owner
        .post(
            "/api-keys",
            &[("csrf", &csrf), ("name", "reporting"), ("role", "viewer")],
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let secret = value_after(&r.text, r#"id="new-key" readonly value=""#)
        .unwrap_or_else(|| panic!("no key on the page: {}", r.text));
    app.get("/api/v1/licenses", &secret)
        .await
        .assert_status(200);
    let r = owner.get("/api-keys").await;
    r.assert_status(200);
    assert!(r.text.contains("reporting"));
    assert!(!r.text.contains(&secret));
    assert!(!r.text.contains(&secret[..secret.len() / 2]));
}

#[sqlx::test]
async fn camera_url_credentials_never_appear_on_a_page(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let s = app.create_site(&t.owner_token, "site-1").await;
    let cam = Camera::active().with(json!({"url": "rtsp://admin:s3cret@10.0.0.5/x"}));
    app.push_ok(&s.agent_token, &Batch::one_camera(cam)).await;
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let r = owner.get(&format!("/licenses/{}", s.id)).await;
    r.assert_status(200);
    assert!(r.text.contains("rtsp://10.0.0.5/x"), "{}", r.text);
    for path in ["/".to_owned(), format!("/licenses/{}", s.id)] {
        let r = owner.get(&path).await;
        assert!(
            !r.text.contains("s3cret"),
            "{path} shows the camera password"
        );
        assert!(!r.text.contains("admin:"), "{path} shows the camera user");
    }
}

/// Camera software puts the URL it failed on into its error text (RTSP clients do), so the
/// error shown in the camera table must lose its credentials too.
#[sqlx::test]
async fn camera_credentials_inside_an_error_text_never_appear_on_a_page(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let s = app.create_site(&t.owner_token, "site-1").await;
    let cam = Camera::active().with(json!({
        "url": "rtsp://admin:s3cret@10.0.0.5/x",
        "last_error": "DESCRIBE rtsp://admin:s3cret@10.0.0.5/x failed: 401 Unauthorized",
    }));
    app.push_ok(&s.agent_token, &Batch::one_camera(cam)).await;
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let r = owner.get(&format!("/licenses/{}", s.id)).await;
    r.assert_status(200);
    assert!(
        r.text.contains("401 Unauthorized"),
        "the error is shown: {}",
        r.text
    );
    assert!(
        !r.text.contains("s3cret"),
        "the activity page shows the camera password"
    );
}

/// `text` with numeric character references of markup characters written as named ones
/// (askama writes `&#60;`, which is as safe as `&lt;`).
fn entities(text: &str) -> String {
    text.replace("&#60;", "&lt;")
        .replace("&#62;", "&gt;")
        .replace("&#34;", "&quot;")
        .replace("&#38;", "&amp;")
}

// --- escaping ------------------------------------------------------------------------------------

#[sqlx::test]
async fn markup_in_names_errors_and_search_terms_is_escaped(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let evil = "<script>alert(1)</script>";
    let s = app
        .create_site_with(
            &t.owner_token,
            json!({"key": "evil-1", "name": evil, "kind": "direct", "check_interval_seconds": 600}),
        )
        .await;
    let id = s.id;
    let cam = Camera::active().with(json!({
        "last_error": "<img src=x onerror=alert(2)>",
        "url": "rtsp://10.0.0.5/\"><script>alert(3)</script>",
    }));
    app.push_ok(&s.agent_token, &Batch::one_camera(cam)).await;
    let mut owner = Ui::login(&app, &t.owner_email).await;

    for path in [
        "/".to_owned(),
        format!("/licenses/{id}"),
        format!("/licenses/{id}/notifications"),
        format!("/licenses/{id}/edit"),
    ] {
        let r = owner.get(&path).await;
        r.assert_status(200);
        assert!(!r.text.contains(evil), "{path}: the name is not escaped");
        assert!(
            entities(&r.text).contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}: the name is missing: {}",
            r.text
        );
    }
    let r = owner.get(&format!("/licenses/{id}")).await;
    assert!(
        !r.text.contains("<img src=x"),
        "the camera error is not escaped"
    );
    assert!(
        entities(&r.text).contains("&lt;img src=x onerror=alert(2)&gt;"),
        "{}",
        r.text
    );
    assert!(
        !r.text.contains("<script>alert(3)"),
        "the camera URL is not escaped"
    );

    // Reflected input: the search box and the login page's `next`.
    let r = owner
        .get("/?q=%22%3E%3Cscript%3Ealert(4)%3C%2Fscript%3E")
        .await;
    r.assert_status(200);
    assert!(
        !r.text.contains("<script>alert(4)"),
        "the search term is not escaped"
    );
    assert!(
        !r.text.contains("\"><script"),
        "the search term breaks out of its attribute"
    );
    let r = Ui::new(&app)
        .get("/login?next=%2F%22%3E%3Cscript%3Ealert(5)%3C%2Fscript%3E")
        .await;
    r.assert_status(200);
    assert!(!r.text.contains("<script>alert(5)"), "next is not escaped");
}

// --- sessions and redirects ----------------------------------------------------------------------

#[sqlx::test]
async fn a_visit_without_a_valid_session_is_sent_to_the_login_page(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let s = app.create_site(&t.owner_token, "site-1").await;
    let mut anon = Ui::new(&app);
    let r = anon.get("/").await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location"), Some("/login?next=/"));
    let r = anon.get(&format!("/licenses/{}?x=1", s.id)).await;
    assert_eq!(r.status, 303);
    let location = r.header("location").unwrap();
    assert!(location.starts_with("/login?next="), "{location}");
    assert!(location.contains(&s.id), "{location}");

    // A forged or stale cookie is no session either.
    let mut forged = Ui::new(&app);
    forged.set_cookie(SESSION_COOKIE, "eyJhbGciOiJIUzI1NiJ9.e30.forged");
    let r = forged.get("/users").await;
    assert_eq!(r.status, 303);
    assert!(r.header("location").unwrap().starts_with("/login"));
    // An API access token is not a UI session.
    let mut api_token = Ui::new(&app);
    api_token.set_cookie(SESSION_COOKIE, &t.owner_token);
    let r = api_token.get("/").await;
    assert_eq!(r.status, 303, "an API access token opened the UI");

    // A POST without a session does nothing.
    let before = everything(&app).await;
    let r = anon
        .post(
            &format!("/licenses/{}/delete", s.id),
            &[("csrf", "whatever")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(everything(&app).await, before);
}

#[sqlx::test]
async fn logging_out_clears_the_session_cookie_and_revokes_the_session(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;
    let mut owner = Ui::login(&app, &t.owner_email).await;
    let csrf = owner.csrf().await;
    let copied = owner.cookie(SESSION_COOKIE).unwrap().to_owned();
    let r = owner.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location"), Some("/login"));
    let line = set_cookie_line(&r, SESSION_COOKIE);
    let attrs = cookie_attributes(&line);
    assert!(line.starts_with("sw_session=;"), "{line}");
    assert!(attrs.iter().any(|a| a == "max-age=0"), "{line}");
    assert!(attrs.iter().any(|a| a == "httponly"), "{line}");
    assert!(owner.cookie(SESSION_COOKIE).is_none());
    let r = owner.get("/").await;
    assert_eq!(r.status, 303);
    assert!(r.header("location").unwrap().starts_with("/login"));
    // The session is revoked on the server: a copy of the old cookie gets nowhere either.
    let mut thief = Ui::new(&app);
    thief.set_cookie(SESSION_COOKIE, &copied);
    let r = thief.get("/").await;
    assert_eq!(r.status, 303, "the old session still works: {}", r.text);
    assert!(r.header("location").unwrap().starts_with("/login"));
}

/// What a browser makes of a `Location` value: the URL parser drops ASCII tab and newline
/// characters anywhere in it (WHATWG URL), and treats `\` like `/` in http URLs.
fn as_browser_reads_it(location: &str) -> String {
    location
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .map(|c| if c == '\\' { '/' } else { c })
        .collect::<String>()
        .trim_start_matches(|c: char| c == ' ' || c.is_ascii_control())
        .to_owned()
}

#[sqlx::test]
async fn a_login_never_redirects_to_another_site(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = app.create_tenant("acme").await;

    // A local `next` is honoured.
    let mut ui = Ui::new(&app);
    let csrf = csrf_of(&ui.get("/login?next=/users").await.text);
    let r = ui
        .post(
            "/login",
            &[
                ("email", &t.owner_email),
                ("password", PASSWORD),
                ("next", "/users"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/users"));

    let page = Ui::new(&app).get("/login?next=//evil.test").await;
    assert_eq!(
        value_after(&page.text, r#"name="next" value=""#).as_deref(),
        Some("/"),
        "the login form carries a foreign next"
    );

    for next in [
        "//evil.test",
        "//evil.test/path",
        "https://evil.test/",
        "/\\evil.test",
        "\\\\evil.test",
        "/\t/evil.test",
        "/\n/evil.test",
        "\t//evil.test",
        " //evil.test",
    ] {
        let mut ui = Ui::new(&app);
        let csrf = csrf_of(&ui.get("/login").await.text);
        let r = ui
            .post(
                "/login",
                &[
                    ("email", &t.owner_email),
                    ("password", PASSWORD),
                    ("next", next),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "next={next:?}: {}", r.text);
        let location = r.header("location").unwrap_or_default();
        let seen = as_browser_reads_it(location);
        assert!(
            seen.starts_with('/') && !seen.starts_with("//"),
            "next={next:?} sends the browser to {location:?} (read as {seen:?})"
        );
        assert!(
            !seen.contains("evil.test") || seen == "/",
            "next={next:?}: {location:?}"
        );
    }
}

#[sqlx::test]
async fn a_login_through_the_form_records_the_time_like_the_api_login(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let tenant = app.create_tenant("acme").await;
    app.create_user(&tenant.owner_token, "ops@acme.test", "viewer")
        .await;
    let last_login = || async {
        sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
            "SELECT last_login_at FROM users WHERE email = 'ops@acme.test'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    // `create_user` logged the user in through the API; start from "never".
    sqlx::query("UPDATE users SET last_login_at = NULL WHERE email = 'ops@acme.test'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(last_login().await, None);

    Ui::login(&app, "ops@acme.test").await;
    let after_form = last_login().await.expect("the form login is recorded");

    app.login("ops@acme.test", PASSWORD).await;
    let after_api = last_login().await.expect("the API login is recorded");
    assert!(after_api >= after_form);
}

/// A user's identity as a session token carries it.
struct SessionUser {
    id: Uuid,
    tenant_id: Uuid,
    role: streamwatch::domain::Role,
    version: i32,
}

async fn session_user(pool: &PgPool, email: &str) -> SessionUser {
    let (id, tenant_id, role, version): (Uuid, Uuid, String, i32) = sqlx::query_as(
        "SELECT id, tenant_id, role::text, token_version FROM users WHERE email = $1",
    )
    .bind(email)
    .fetch_one(pool)
    .await
    .unwrap();
    SessionUser {
        id,
        tenant_id,
        role: serde_json::from_value(json!(role)).unwrap(),
        version,
    }
}

/// A session token as the server would have issued it at `login_at` and last reissued at
/// `issued_at` (made with the test server's secret: a test cannot wait half an hour).
fn session_token_of(user: &SessionUser, login_at: i64, issued_at: i64) -> String {
    use streamwatch::auth::session::{SESSION_IDLE_SECONDS, SESSION_MAX_SECONDS, UiKeys};
    let keys = UiKeys::new(JWT_SECRET.as_bytes(), "streamwatch", false);
    let exp = (issued_at + SESSION_IDLE_SECONDS).min(login_at + SESSION_MAX_SECONDS);
    keys.sessions
        .issue_until(
            user.id,
            user.tenant_id,
            user.role,
            user.version,
            login_at,
            exp,
        )
        .unwrap()
}

fn max_age_of(line: &str) -> i64 {
    cookie_attributes(line)
        .iter()
        .find_map(|a| a.strip_prefix("max-age=").map(|v| v.parse().unwrap()))
        .unwrap_or_else(|| panic!("no max-age: {line}"))
}

#[sqlx::test]
async fn a_working_session_slides_within_its_bound_and_an_idle_one_ends(pool: PgPool) {
    use streamwatch::auth::session::{SESSION_IDLE_SECONDS, SESSION_MAX_SECONDS};
    let app = TestApp::spawn(pool.clone()).await;
    let t = app.create_tenant("acme").await;
    let user = session_user(&pool, &t.owner_email).await;
    let now = chrono::Utc::now().timestamp();

    // A fresh login is not reissued on every request.
    let mut fresh = Ui::login(&app, &t.owner_email).await;
    let r = fresh.get("/").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        set_cookies(&r)
            .iter()
            .all(|l| !l.starts_with("sw_session="))
    );

    // Logged in two hours ago, last reissued 40 minutes ago: the page answers with the session
    // reissued for another idle period, and the forms' CSRF token stays the same.
    let mut busy = Ui::new(&app);
    let old = session_token_of(&user, now - 7200, now - 40 * 60);
    busy.set_cookie(SESSION_COOKIE, &old);
    let r = busy.get("/").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let line = set_cookie_line(&r, SESSION_COOKIE);
    let max_age = max_age_of(&line);
    assert!(
        (SESSION_IDLE_SECONDS - 60..=SESSION_IDLE_SECONDS).contains(&max_age),
        "{line}"
    );
    assert_ne!(busy.cookie(SESSION_COOKIE), Some(old.as_str()));
    let csrf_before = csrf_of(&r.text);
    let r = busy.get("/").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        csrf_of(&r.text),
        csrf_before,
        "the reissue changed the CSRF token"
    );

    // Near the bound after login (ten minutes left, the token itself ends in five), the reissue
    // stops at the bound.
    let mut late = Ui::new(&app);
    let login_at = now - SESSION_MAX_SECONDS + 10 * 60;
    late.set_cookie(
        SESSION_COOKIE,
        &session_token_of(&user, login_at, now - 55 * 60),
    );
    let r = late.get("/").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let max_age = max_age_of(&set_cookie_line(&r, SESSION_COOKIE));
    assert!(
        max_age <= 10 * 60 && max_age > 0,
        "slid past the bound: {max_age}"
    );

    // Idle past its expiry (or past the bound): back to the login page.
    let mut idle = Ui::new(&app);
    idle.set_cookie(
        SESSION_COOKIE,
        &session_token_of(&user, now - 3 * 3600, now - SESSION_IDLE_SECONDS - 60),
    );
    let r = idle.get("/").await;
    assert_eq!(r.status, 303);
    assert!(r.header("location").unwrap().starts_with("/login"));

    // Logging out of a session due for a reissue does not hand out a new cookie.
    let mut leaving = Ui::new(&app);
    leaving.set_cookie(
        SESSION_COOKIE,
        &session_token_of(&user, now - 7200, now - 40 * 60),
    );
    // (The CSRF token is the one the busy session's page showed: same user and login time.)
    let r = leaving.post("/logout", &[("csrf", &csrf_before)]).await;
    assert_eq!(r.status, 303);
    let lines: Vec<_> = set_cookies(&r)
        .into_iter()
        .filter(|l| l.starts_with("sw_session="))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("sw_session=;"), "{lines:?}");
}
