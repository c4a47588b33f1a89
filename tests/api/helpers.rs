//! `TestApp`: the real router on a real socket (port 0) over a fresh PostgreSQL database per
//! test (`#[sqlx::test]`), with one method per endpoint.
//!
//! Every response any test receives is checked against the committed `openapi.yaml`: its route
//! must be documented, its status listed, and its body valid against the schema. A test-only
//! outer layer reports which route template answered (`x-test-route`), which is how a route
//! missing from the file is caught.
//!
//! The fixtures every module shares live here too: sites ([`TestSite`]: a license with an
//! agent token) and populated tenants, heartbeat batches as agents send them ([`Batch`],
//! [`Heartbeat`], [`Camera`]), the lists of tables a request could write
//! ([`ACCOUNT_TABLES`], [`INGEST_TABLES`]), and, for `streamwatch serve` child processes,
//! [`ServerProcess`] and [`Servers`].

use axum::{
    extract::{MatchedPath, Request},
    http::HeaderValue,
    middleware::{self, Next},
    response::Response,
};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde::{Serialize, Serializer};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::{
    collections::BTreeSet,
    net::SocketAddr,
    process::Stdio,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use streamwatch::{config::Settings, startup};
use tokio::{io::AsyncReadExt, process::Child, task::JoinHandle};
use uuid::Uuid;

pub const ADMIN_TOKEN: &str = "test-platform-admin-token-0123456789";
pub const JWT_SECRET: &str = "test-jwt-secret-that-is-long-enough-0123456789";
pub const PASSWORD: &str = "correct horse battery staple";

/// The tables of accounts and credentials: what a management request could write.
pub const ACCOUNT_TABLES: [&str; 6] = [
    "tenants",
    "users",
    "login_emails",
    "api_keys",
    "licenses",
    "agent_tokens",
];

/// The tables an ingest request writes.
pub const INGEST_TABLES: [&str; 3] = ["heartbeats", "agent_instances", "camera_state"];

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    /// Every (method, route template) that answered, for the contract's coverage check.
    pub seen: Mutex<BTreeSet<(String, String)>>,
}

/// What came back, already checked against the contract.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The JSON body, or `Value::Null` when there is none (or it is not JSON).
    pub body: Value,
    pub text: String,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `pointer`s of a problem+json body's `errors`.
    pub fn pointers(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["pointer"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts a problem+json answer with this status.
    #[track_caller]
    pub fn assert_problem(&self, expected: u16) -> &Self {
        self.assert_status(expected);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.text
        );
        assert_eq!(self.body["status"], expected, "{}", self.text);
        self
    }
}

/// A tenant made through the admin API, with its owner logged in.
pub struct TestTenant {
    pub id: String,
    pub owner_email: String,
    pub owner_token: String,
}

/// A tenant with one object of every kind its owner makes.
pub struct PopulatedTenant {
    pub tenant: TestTenant,
    pub site: TestSite,
    /// A user `<role>@<slug>.test`.
    pub user_id: String,
    /// An admin API key.
    pub api_key_id: String,
}

/// A license with an agent token: a site whose agent can push heartbeats.
pub struct TestSite {
    /// The license's id.
    pub id: String,
    pub key: String,
    pub name: String,
    pub agent_token_id: String,
    /// The agent token's secret, for `push`.
    pub agent_token: String,
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool, |_| {}).await
    }

    /// Starts the application with test settings, changed by `configure`.
    pub async fn spawn_with(pool: PgPool, configure: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = Settings::defaults_for_tests();
        settings.http.addr = "127.0.0.1:0".parse().unwrap();
        settings.auth.admin_token = Some(ADMIN_TOKEN.to_owned().into());
        settings.auth.jwt_secret = Some(JWT_SECRET.to_owned().into());
        configure(&mut settings);
        let state = startup::app_state(settings, pool.clone()).unwrap();
        let router = startup::router(state).layer(middleware::from_fn(report_route));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            address,
            client,
            pool,
            seen: Mutex::default(),
        }
    }

    /// Sends a request (JSON body if given) and checks the response against the contract.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> TestResponse {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.send(req).await
    }

    /// Sends a hand-built request and checks the response against the contract.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> TestResponse {
        let req = req.build().unwrap();
        let method = req.method().clone();
        let path = req.url().path().to_owned();
        let response = self.client.execute(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let route = headers
            .get("x-test-route")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
        if let Some(route) = &route {
            self.seen
                .lock()
                .unwrap()
                .insert((method.as_str().to_ascii_lowercase(), route.clone()));
        }
        if let Err(e) = check_contract(
            method.as_str(),
            route.as_deref(),
            status.as_u16(),
            content_type,
            &bytes,
        ) {
            panic!(
                "contract violation for {method} {path} -> {status}: {e}\nbody: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> TestResponse {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> TestResponse {
        self.request(Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> TestResponse {
        self.request(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> TestResponse {
        self.request(Method::DELETE, path, Some(token), None).await
    }

    // --- one method per endpoint ---------------------------------------------------------

    pub async fn create_tenant_raw(&self, body: Value) -> TestResponse {
        self.post("/api/v1/admin/tenants", ADMIN_TOKEN, body).await
    }

    /// Creates a tenant whose owner is `owner@<slug>.test`, and logs the owner in.
    pub async fn create_tenant(&self, slug: &str) -> TestTenant {
        let owner_email = format!("owner@{slug}.test");
        let r = self
            .create_tenant_raw(json!({"name": slug, "timezone": "Europe/Berlin", "owner": {"email": owner_email, "password": PASSWORD}}))
            .await;
        r.assert_status(201);
        let owner_token = self.login(&owner_email, PASSWORD).await;
        TestTenant {
            id: r.body["id"].as_str().unwrap().to_owned(),
            owner_email,
            owner_token,
        }
    }

    pub async fn login_raw(&self, email: &str, password: &str) -> TestResponse {
        self.request(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self.login_raw(email, password).await;
        r.assert_status(200);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// Adds a user with `role` to the owner's tenant and returns the user's access token.
    pub async fn create_user(
        &self,
        owner_token: &str,
        email: &str,
        role: &str,
    ) -> (String, String) {
        let r = self
            .post(
                "/api/v1/users",
                owner_token,
                json!({"email": email, "password": PASSWORD, "role": role}),
            )
            .await;
        r.assert_status(201);
        (
            r.body["id"].as_str().unwrap().to_owned(),
            self.login(email, PASSWORD).await,
        )
    }

    /// Creates the license `Site <key>` (direct, checked every 600 s).
    /// `PATCH /users/{id}` with a new role, as the owner; asserts 200.
    pub async fn set_role(&self, owner_token: &str, user_id: &str, role: &str) {
        self.patch(
            &format!("/api/v1/users/{user_id}"),
            owner_token,
            json!({"role": role}),
        )
        .await
        .assert_status(200);
    }

    pub async fn create_license(&self, token: &str, key: &str) -> Value {
        self.create_license_with(token, json!({"key": key, "name": format!("Site {key}"), "kind": "direct", "check_interval_seconds": 600}))
            .await
    }

    /// Creates a license from this body.
    pub async fn create_license_with(&self, token: &str, body: Value) -> Value {
        let r = self.post("/api/v1/licenses", token, body).await;
        r.assert_status(201);
        r.body
    }

    /// Creates the license `Site <key>` (see [`TestApp::create_license`]) and an agent token
    /// for it.
    pub async fn create_site(&self, owner_token: &str, key: &str) -> TestSite {
        let license = self.create_license(owner_token, key).await;
        self.agent_token_for(owner_token, license).await
    }

    /// Creates a license from this body and an agent token for it.
    pub async fn create_site_with(&self, owner_token: &str, license: Value) -> TestSite {
        let license = self.create_license_with(owner_token, license).await;
        self.agent_token_for(owner_token, license).await
    }

    /// A tenant (see [`TestApp::create_tenant`]) with one site, license `key`.
    pub async fn create_tenant_with_site(&self, slug: &str, key: &str) -> (TestTenant, TestSite) {
        let tenant = self.create_tenant(slug).await;
        let site = self.create_site(&tenant.owner_token, key).await;
        (tenant, site)
    }

    /// A tenant with a site (license `key`), a user `<user_role>@<slug>.test` and an admin API
    /// key, made in that order.
    pub async fn create_populated_tenant(
        &self,
        slug: &str,
        key: &str,
        user_role: &str,
    ) -> PopulatedTenant {
        let (tenant, site) = self.create_tenant_with_site(slug, key).await;
        let email = format!("{user_role}@{slug}.test");
        let (user_id, _) = self
            .create_user(&tenant.owner_token, &email, user_role)
            .await;
        let (api_key_id, _) = self.create_api_key(&tenant.owner_token, "admin").await;
        PopulatedTenant {
            tenant,
            site,
            user_id,
            api_key_id,
        }
    }

    async fn agent_token_for(&self, owner_token: &str, license: Value) -> TestSite {
        let id = license["id"].as_str().unwrap().to_owned();
        let (agent_token_id, agent_token) = self.create_agent_token(owner_token, &id).await;
        TestSite {
            id,
            key: license["key"].as_str().unwrap().to_owned(),
            name: license["name"].as_str().unwrap().to_owned(),
            agent_token_id,
            agent_token,
        }
    }

    /// `GET /licenses/{id}/status`, the Activity Status (asserts 200).
    pub async fn license_status(&self, token: &str, license_id: &str) -> Value {
        let r = self
            .get(&format!("/api/v1/licenses/{license_id}/status"), token)
            .await;
        r.assert_status(200);
        r.body
    }

    /// `GET /licenses/{id}/notification-settings` (asserts 200).
    pub async fn notification_settings(&self, token: &str, license_id: &str) -> Value {
        let r = self
            .get(&notification_settings_path(license_id), token)
            .await;
        r.assert_status(200);
        r.body
    }

    /// `PUT /licenses/{id}/notification-settings`.
    pub async fn put_notification_settings(
        &self,
        token: &str,
        license_id: &str,
        body: Value,
    ) -> TestResponse {
        self.request(
            Method::PUT,
            &notification_settings_path(license_id),
            Some(token),
            Some(body),
        )
        .await
    }

    /// Creates an agent token for the license; returns (token id, secret).
    pub async fn create_agent_token(&self, token: &str, license_id: &str) -> (String, String) {
        let r = self
            .request(
                Method::POST,
                &format!("/api/v1/licenses/{license_id}/agent-tokens"),
                Some(token),
                None,
            )
            .await;
        r.assert_status(201);
        (
            r.body["id"].as_str().unwrap().to_owned(),
            r.body["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates an API key; returns (key id, secret).
    pub async fn create_api_key(&self, token: &str, role: &str) -> (String, String) {
        let r = self
            .post(
                "/api/v1/api-keys",
                token,
                json!({"name": format!("{role} key"), "role": role}),
            )
            .await;
        r.assert_status(201);
        (
            r.body["id"].as_str().unwrap().to_owned(),
            r.body["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Pushes a heartbeat batch (a [`Batch`], or JSON) with an agent token.
    pub async fn push(&self, agent_token: &str, batch: &impl Serialize) -> TestResponse {
        let req = self
            .client
            .post(format!("{}/api/v1/ingest/heartbeats", self.address))
            .bearer_auth(agent_token)
            .header("Streamwatch-Protocol", "1")
            .json(batch);
        self.send(req).await
    }

    /// Pushes a heartbeat batch and asserts that every heartbeat of it was accepted.
    pub async fn push_ok(&self, agent_token: &str, batch: &impl Serialize) {
        let batch = serde_json::to_value(batch).unwrap();
        let r = self.push(agent_token, &batch).await;
        r.assert_status(200);
        assert_eq!(
            r.body["accepted"],
            batch["heartbeats"].as_array().unwrap().len(),
            "{}",
            r.text
        );
    }

    /// Row count of a table, read as the owner role (past row-level security).
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Row counts of these tables, in order.
    pub async fn counts(&self, tables: &[&str]) -> Vec<i64> {
        let mut counts = Vec::new();
        for table in tables {
            counts.push(self.count(table).await);
        }
        counts
    }

    /// Counts of every table a management request could write to ([`ACCOUNT_TABLES`]), to
    /// prove that nothing was written.
    pub async fn snapshot(&self) -> Vec<i64> {
        self.counts(&ACCOUNT_TABLES).await
    }

    /// Every row of a table as JSON text, in a stable order (past row-level security): an
    /// UPDATE shows here where a count does not change.
    pub async fn rows(&self, table: &str) -> String {
        let sql =
            format!("SELECT coalesce(json_agg(t ORDER BY t::text)::text, '[]') FROM {table} t");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

/// Notification settings as the API shows them when no routing was chosen: `settings` plus no
/// channels, no escalation and camera-level alerts off (SPEC section 5a).
pub fn without_routing(settings: Value) -> Value {
    let mut settings = settings;
    let fields = settings.as_object_mut().unwrap();
    fields.insert("channels".to_owned(), json!([]));
    fields.insert("escalation".to_owned(), json!([]));
    fields.insert(
        "partial".to_owned(),
        json!({"enabled": false, "after_seconds": 3600}),
    );
    settings
}

fn notification_settings_path(license_id: &str) -> String {
    format!("/api/v1/licenses/{license_id}/notification-settings")
}

// --- heartbeats, as agents send them ---------------------------------------------------------

/// One camera's report in a heartbeat, as JSON (`Value::from` gives it).
#[derive(Clone, Debug)]
pub struct Camera(Value);

impl Camera {
    /// An `active` camera: running, live, healthy, its last frame just now.
    pub fn active() -> Self {
        Self::active_at(Utc::now())
    }

    /// An `active` camera whose last frame arrived at `at`.
    pub fn active_at(at: DateTime<Utc>) -> Self {
        Self::report("running", 95, true, Some(at))
    }

    /// A camera with this status, health, liveness and last frame; 25 of 25 fps, webhooks ok.
    pub fn report(
        status: &str,
        health: i32,
        is_live: bool,
        last_frame_at: Option<DateTime<Utc>>,
    ) -> Self {
        Self(
            json!({"status": status, "health": health, "is_live": is_live, "last_frame_at": last_frame_at,
                   "received_fps": 25.0, "expected_fps": 25.0, "webhooks": {"status": "ok", "cached": 0}}),
        )
    }

    /// With the fields of `changes` set, replacing whole values (a `url`, a `last_error`, ...).
    #[track_caller]
    pub fn with(mut self, changes: Value) -> Self {
        let Value::Object(changes) = changes else {
            panic!("changes must be an object: {changes}")
        };
        self.0.as_object_mut().unwrap().extend(changes);
        self
    }
}

impl From<Camera> for Value {
    fn from(camera: Camera) -> Self {
        camera.0
    }
}

/// One heartbeat: a `seq`, when it was observed, and the cameras it lists.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    seq: u64,
    observed_at: DateTime<Utc>,
    cameras: serde_json::Map<String, Value>,
}

impl Heartbeat {
    /// Heartbeat `seq`, observed now, without cameras.
    pub fn new(seq: u64) -> Self {
        Self {
            seq,
            observed_at: Utc::now(),
            cameras: serde_json::Map::new(),
        }
    }

    pub fn observed_at(mut self, at: DateTime<Utc>) -> Self {
        self.observed_at = at;
        self
    }

    /// Lists camera `id` with this report (a [`Camera`], or any JSON).
    pub fn camera(mut self, id: impl Into<String>, report: impl Into<Value>) -> Self {
        self.cameras.insert(id.into(), report.into());
        self
    }

    pub fn to_json(&self) -> Value {
        json!({"seq": self.seq, "observed_at": self.observed_at, "cameras": self.cameras})
    }
}

/// A heartbeat batch as agent instance `instance` sends it to `POST /ingest/heartbeats`:
///
/// ```ignore
/// Batch::new(instance).seqs(1..=3).camera("camera-1", Camera::active())
/// ```
///
/// `seq`, `seqs` and `heartbeat` add heartbeats; `observed_at` and `camera` change every
/// heartbeat added so far. [`Batch::to_json`] gives the JSON, which a bad-input test may still
/// change; [`TestApp::push`] takes either.
#[derive(Clone, Debug)]
pub struct Batch {
    instance: Uuid,
    /// `None`: the agent sends neither its version nor a hostname.
    hostname: Option<String>,
    sent_at: Option<DateTime<Utc>>,
    heartbeats: Vec<Heartbeat>,
}

impl Batch {
    /// No heartbeats yet, from agent version 0.1.0 on host `site-box`, without `sent_at`.
    pub fn new(instance: Uuid) -> Self {
        Self {
            instance,
            hostname: Some("site-box".to_owned()),
            sent_at: None,
            heartbeats: Vec::new(),
        }
    }

    /// Heartbeat 1 of a new agent instance, observed now, listing `camera-1` with this report.
    pub fn one_camera(report: impl Into<Value>) -> Self {
        Self::new(Uuid::new_v4()).seq(1).camera("camera-1", report)
    }

    /// Heartbeat 1 of a new agent instance, observed now, with `camera-1` active.
    pub fn one_active_camera() -> Self {
        Self::new(Uuid::new_v4()).seq(1).active_camera()
    }

    pub fn hostname(mut self, hostname: &str) -> Self {
        self.hostname = Some(hostname.to_owned());
        self
    }

    /// The agent names only its instance: no version, no hostname (both are optional).
    pub fn anonymous(mut self) -> Self {
        self.hostname = None;
        self
    }

    /// When the agent sent the batch, by its own clock.
    pub fn sent_at(mut self, at: DateTime<Utc>) -> Self {
        self.sent_at = Some(at);
        self
    }

    pub fn heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.heartbeats.push(heartbeat);
        self
    }

    /// Adds heartbeat `seq`, observed now.
    pub fn seq(self, seq: u64) -> Self {
        self.heartbeat(Heartbeat::new(seq))
    }

    /// Adds one heartbeat per seq, each observed now.
    pub fn seqs(self, seqs: impl IntoIterator<Item = u64>) -> Self {
        seqs.into_iter().fold(self, Self::seq)
    }

    /// Every heartbeat so far was observed at `at`.
    #[track_caller]
    pub fn observed_at(self, at: DateTime<Utc>) -> Self {
        self.each(|h| h.observed_at(at))
    }

    /// Every heartbeat so far lists camera `id` with this report.
    #[track_caller]
    pub fn camera(self, id: &str, report: impl Into<Value>) -> Self {
        let report = report.into();
        self.each(|h| h.camera(id, report.clone()))
    }

    /// Every heartbeat so far lists `camera-1`, active.
    #[track_caller]
    pub fn active_camera(self) -> Self {
        self.camera("camera-1", Camera::active())
    }

    /// Every heartbeat so far lists these cameras.
    #[track_caller]
    pub fn cameras<C: Into<Value>>(
        self,
        cameras: impl IntoIterator<Item = (impl Into<String>, C)>,
    ) -> Self {
        let cameras: Vec<(String, Value)> = cameras
            .into_iter()
            .map(|(id, report)| (id.into(), report.into()))
            .collect();
        self.each(|h| {
            cameras
                .iter()
                .fold(h, |h, (id, report)| h.camera(id.clone(), report.clone()))
        })
    }

    #[track_caller]
    fn each(mut self, change: impl Fn(Heartbeat) -> Heartbeat) -> Self {
        assert!(
            !self.heartbeats.is_empty(),
            "add the heartbeats (seq, seqs) before what they report"
        );
        self.heartbeats = self.heartbeats.into_iter().map(change).collect();
        self
    }

    pub fn to_json(&self) -> Value {
        let mut agent = json!({"instance_id": self.instance});
        if let Some(hostname) = &self.hostname {
            agent["version"] = json!("0.1.0");
            agent["hostname"] = json!(hostname);
        }
        if let Some(sent_at) = self.sent_at {
            agent["sent_at"] = json!(sent_at);
        }
        let heartbeats: Vec<Value> = self.heartbeats.iter().map(Heartbeat::to_json).collect();
        json!({"agent": agent, "heartbeats": heartbeats})
    }
}

impl Serialize for Batch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// Test-only outer layer: reports the route template that answered.
async fn report_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let mut response = next.run(req).await;
    if let Some(route) = route.and_then(|r| HeaderValue::from_str(&r).ok()) {
        response.headers_mut().insert("x-test-route", route);
    }
    response
}

/// The committed OpenAPI document, as JSON.
pub fn contract() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
        let text = std::fs::read_to_string(path).expect("openapi.yaml at the repository root");
        serde_yaml::from_str(&text).expect("openapi.yaml parses")
    })
}

/// Checks one response against `openapi.yaml`.
pub fn check_contract(
    method: &str,
    route: Option<&str>,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), String> {
    let Some(route) = route else {
        // No route matched: only the fallback's 404 may answer.
        return if status == 404 {
            Ok(())
        } else {
            Err(format!("status {status} from no route"))
        };
    };
    let doc = contract();
    // The web UI's pages are HTML for people, not the JSON API: the contract is the API's.
    if doc["paths"].get(route).is_none() && streamwatch::ui::PAGES.contains(&route) {
        return Ok(());
    }
    let operation = doc["paths"][route]
        .get(method.to_ascii_lowercase())
        .ok_or_else(|| format!("route {method} {route} is not in openapi.yaml"))?;
    let response = operation["responses"]
        .get(status.to_string())
        .ok_or_else(|| format!("status {status} is not documented for {method} {route}"))?;
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return if body.is_empty() {
            Ok(())
        } else {
            Err("a body where the contract has none".to_owned())
        };
    };
    let content_type = content_type.ok_or("no Content-Type")?;
    let (media, schema) = content
        .iter()
        .find(|(media, _)| media.split(';').next() == content_type.split(';').next())
        .ok_or_else(|| {
            format!(
                "Content-Type {content_type} is not documented (have {:?})",
                content.keys().collect::<Vec<_>>()
            )
        })?;
    let Some(schema) = schema.get("schema") else {
        return Ok(());
    };
    let instance: Value = if media.contains("json") {
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?
    } else {
        Value::String(String::from_utf8_lossy(body).into_owned())
    };
    // The schema's `$ref`s point into `#/components`; carry them along at the root.
    let mut root = schema.clone();
    if let Some(obj) = root.as_object_mut() {
        obj.insert("components".to_owned(), doc["components"].clone());
    }
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| format!("schema does not compile: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

// --- the `streamwatch serve` binary as a child process ------------------------------------

/// How often a starting server's `/healthz` is polled, and at most how many times (a minute).
const HEALTH_POLL: Duration = Duration::from_millis(20);
const HEALTH_MAX_POLLS: u32 = 3000;

/// The URL of the test's own fresh `#[sqlx::test]` database, for a child process: the
/// `DATABASE_URL` it was made from, with the database name replaced.
pub fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL (scripts/test or scripts/pg-up provides it)");
    let mut url = reqwest::Url::parse(&base).unwrap();
    url.set_path(pool.connect_options().get_database().unwrap());
    url.to_string()
}

/// A port nothing listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `streamwatch serve` process answering at `base`. Dropping it sends SIGKILL, so a failed
/// test leaves no server behind.
pub struct ServerProcess {
    child: Child,
    pub base: String,
    /// Taken once: by a failed health check's panic message, or by [`ServerProcess::kill`].
    stderr: Option<JoinHandle<String>>,
}

impl ServerProcess {
    /// Starts `streamwatch serve` on a free port and waits until `/healthz` answers.
    pub async fn start(
        database_url: &str,
        admin_token: &str,
        jwt_secret: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let mut server = Self::spawn(database_url, admin_token, jwt_secret, env);
        server.wait_until_healthy().await;
        server
    }

    /// Starts `streamwatch serve` on a free port without waiting for it, so that several can
    /// start at the same moment; see [`ServerProcess::wait_until_healthy`].
    ///
    /// The environment is clean, as an operator's would be: PATH, HOME, the documented
    /// variables for the database, the admin token, the JWT secret, the address and a `warn`
    /// log filter, then `env`.
    pub fn spawn(
        database_url: &str,
        admin_token: &str,
        jwt_secret: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_streamwatch"));
        cmd.env_clear();
        for var in ["PATH", "HOME"] {
            if let Ok(value) = std::env::var(var) {
                cmd.env(var, value);
            }
        }
        cmd.envs([
            ("STREAMWATCH__DATABASE__URL", database_url),
            ("STREAMWATCH__AUTH__ADMIN_TOKEN", admin_token),
            ("STREAMWATCH__AUTH__JWT_SECRET", jwt_secret),
            ("STREAMWATCH__HTTP__ADDR", &addr),
            ("STREAMWATCH__LOG__FILTER", "warn"),
        ])
        .envs(env.iter().copied())
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        // Drained all along, so that the server never blocks on a full pipe.
        let mut pipe = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes).await;
            String::from_utf8_lossy(&bytes).into_owned()
        });
        Self {
            child,
            base: format!("http://{addr}"),
            stderr: Some(stderr),
        }
    }

    /// Waits until `/healthz` answers 200; panics with the server's stderr if the process
    /// exits first or never answers.
    pub async fn wait_until_healthy(&mut self) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        for _ in 0..HEALTH_MAX_POLLS {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            if client
                .get(format!("{}/healthz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            tokio::time::sleep(HEALTH_POLL).await;
        }
        let _ = self.child.kill().await;
        let stderr = match self.stderr.take() {
            Some(handle) => handle.await.unwrap_or_default(),
            None => String::new(),
        };
        panic!(
            "serve at {} never answered /healthz; stderr: {stderr}",
            self.base
        );
    }

    /// SIGKILL: no graceful shutdown, no chance to flush anything. Returns what the process
    /// wrote to stderr.
    pub async fn kill(mut self) -> String {
        self.child.kill().await.unwrap();
        match self.stderr.take() {
            Some(handle) => handle.await.unwrap_or_default(),
            None => String::new(),
        }
    }
}

/// JSON requests to one or more `streamwatch serve` processes, each to the next one in turn, as
/// a round-robin load balancer sends them. Unlike [`TestApp`]'s, these answers are not checked
/// against the contract: only the in-process router reports which route answered.
#[derive(Clone)]
pub struct Servers {
    client: reqwest::Client,
    bases: Arc<Vec<String>>,
    next: Arc<AtomicUsize>,
}

impl Servers {
    /// The servers at these base URLs (`http://host:port`).
    pub fn new(client: reqwest::Client, bases: Vec<String>) -> Self {
        Self {
            client,
            bases: Arc::new(bases),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The index of the server whose turn it is.
    pub fn next_server(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.bases.len()
    }

    /// One request to the next server: (status, JSON body or `null`).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let server = self.next_server();
        self.send_to(server, method, path, token, body).await
    }

    /// One request to server `server` (an index into the base URLs); ingest requests carry
    /// the protocol header, as an agent's do.
    pub async fn send_to(
        &self,
        server: usize,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.bases[server]));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if path == "/api/v1/ingest/heartbeats" {
            request = request.header("Streamwatch-Protocol", "1");
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Like [`Servers::send`], asserting the status and returning the body.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let (got, answer) = self.send(method.clone(), path, token, body.as_ref()).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        answer
    }

    /// Creates the tenant Acme (Europe/Berlin), owned by `owner_email` with [`PASSWORD`], and
    /// logs the owner in: returns the owner's access token.
    pub async fn create_tenant(&self, admin_token: &str, owner_email: &str) -> String {
        self.expect(
            Method::POST,
            "/api/v1/admin/tenants",
            Some(admin_token),
            Some(json!({"name": "Acme", "timezone": "Europe/Berlin",
                        "owner": {"email": owner_email, "password": PASSWORD}})),
            201,
        )
        .await;
        let login = self
            .expect(
                Method::POST,
                "/api/v1/auth/token",
                None,
                Some(json!({"email": owner_email, "password": PASSWORD})),
                200,
            )
            .await;
        login["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a license from this body; returns its id.
    pub async fn create_license(&self, owner_token: &str, body: Value) -> String {
        let license = self
            .expect(
                Method::POST,
                "/api/v1/licenses",
                Some(owner_token),
                Some(body),
                201,
            )
            .await;
        license["id"].as_str().unwrap().to_owned()
    }

    /// Creates an agent token for the license; returns its secret.
    pub async fn create_agent_token(&self, owner_token: &str, license_id: &str) -> String {
        let token = self
            .expect(
                Method::POST,
                &format!("/api/v1/licenses/{license_id}/agent-tokens"),
                Some(owner_token),
                None,
                201,
            )
            .await;
        token["token"].as_str().unwrap().to_owned()
    }
}
