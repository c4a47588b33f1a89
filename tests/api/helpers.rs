//! `TestApp`: the real router on a real socket (port 0) over a fresh PostgreSQL database per
//! test (`#[sqlx::test]`), with one method per endpoint.
//!
//! Every response any test receives is checked against the committed `openapi.yaml`: its route
//! must be documented, its status listed, and its body valid against the schema. A test-only
//! outer layer reports which route template answered (`x-test-route`), which is how a route
//! missing from the file is caught.

use axum::{
    extract::{MatchedPath, Request},
    http::HeaderValue,
    middleware::{self, Next},
    response::Response,
};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::{
    collections::BTreeSet,
    net::SocketAddr,
    process::Stdio,
    sync::{Mutex, OnceLock},
    time::Duration,
};
use streamwatch::{config::Settings, http, startup};
use tokio::{io::AsyncReadExt, process::Child, task::JoinHandle};

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
        let router = http::router(state).layer(middleware::from_fn(report_route));
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

    pub async fn create_license(&self, token: &str, key: &str) -> Value {
        let r = self
            .post("/api/v1/licenses", token, json!({"key": key, "name": format!("Site {key}"), "kind": "direct", "check_interval_seconds": 600}))
            .await;
        r.assert_status(201);
        r.body
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

    /// Pushes a heartbeat batch with an agent token.
    pub async fn push(&self, agent_token: &str, batch: &Value) -> TestResponse {
        let req = self
            .client
            .post(format!("{}/api/v1/ingest/heartbeats", self.address))
            .bearer_auth(agent_token)
            .header("Streamwatch-Protocol", "1")
            .json(batch);
        self.send(req).await
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

/// A batch of one heartbeat (`seq`, observed now) from agent instance `instance`.
pub fn heartbeat_batch(instance: uuid::Uuid, seq: u64, cameras: &[(&str, Value)]) -> Value {
    json!({
        "agent": {"instance_id": instance, "version": "0.1.0", "hostname": "site-box"},
        "heartbeats": [heartbeat(seq, chrono::Utc::now(), cameras)]
    })
}

/// One heartbeat document.
pub fn heartbeat(
    seq: u64,
    observed_at: chrono::DateTime<chrono::Utc>,
    cameras: &[(&str, Value)],
) -> Value {
    let cameras: serde_json::Map<String, Value> = cameras
        .iter()
        .map(|(id, c)| ((*id).to_owned(), c.clone()))
        .collect();
    json!({"seq": seq, "observed_at": observed_at, "cameras": cameras})
}

/// A camera report that makes an `active` camera: running, live, healthy, webhooks ok.
pub fn active_camera() -> Value {
    json!({"status": "running", "health": 95, "is_live": true, "last_frame_at": chrono::Utc::now(),
           "received_fps": 25.0, "expected_fps": 25.0, "webhooks": {"status": "ok", "cached": 0}})
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
