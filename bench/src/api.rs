//! Setting a tenant up through the management API: tenant (admin token), login, licenses and
//! agent tokens.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::{sync::Arc, time::Duration};
use tokio::{sync::Semaphore, task::JoinSet};
use uuid::Uuid;

/// Requests in flight while setting up.
const SETUP_CONCURRENCY: usize = 16;

pub fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(300))
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")
}

/// A tenant with a logged-in owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub base: String,
    pub tenant_id: Uuid,
    pub email: String,
    pub password: String,
    #[serde(skip)]
    pub access_token: String,
}

/// One simulated agent's credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentCredentials {
    pub license_id: Uuid,
    pub token: String,
}

/// What `--state` files keep between runs, so that a second run reuses the agents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetupState {
    pub url: String,
    pub tenant_id: Uuid,
    pub licenses: usize,
    pub agents: Vec<AgentCredentials>,
}

/// `https://host` or `http://host:port` without a trailing slash, plus `/api/v1`.
pub fn api_base(url: &str) -> String {
    format!("{}/api/v1", url.trim_end_matches('/'))
}

async fn expect_json(response: reqwest::Response, what: &str) -> anyhow::Result<serde_json::Value> {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{what}: HTTP {status}: {body}");
    }
    serde_json::from_str(&body).with_context(|| format!("{what}: the answer is not JSON: {body}"))
}

fn field<'a>(v: &'a serde_json::Value, key: &str, what: &str) -> anyhow::Result<&'a str> {
    v.get(key)
        .and_then(serde_json::Value::as_str)
        .with_context(|| format!("{what}: no '{key}' in the answer: {v}"))
}

/// Creates a tenant with a random owner (admin token) and logs the owner in.
pub async fn create_tenant(
    client: &reqwest::Client,
    url: &str,
    admin_token: &str,
    name: &str,
) -> anyhow::Result<Session> {
    let base = api_base(url);
    let run = Uuid::new_v4().simple().to_string();
    let email = format!("loadgen-{}@bench.test", &run[..12]);
    let password = format!("pw-{run}");
    let created = expect_json(
        client
            .post(format!("{base}/admin/tenants"))
            .bearer_auth(admin_token)
            .json(&json!({"name": name, "timezone": "Europe/Berlin",
                          "owner": {"email": email, "password": password}}))
            .send()
            .await
            .context("creating the tenant")?,
        "creating the tenant",
    )
    .await?;
    let tenant_id: Uuid = field(&created, "id", "creating the tenant")?
        .parse()
        .context("tenant id")?;
    let mut session = Session {
        base,
        tenant_id,
        email,
        password,
        access_token: String::new(),
    };
    login(client, &mut session).await?;
    Ok(session)
}

/// Logs the tenant's owner in (again): a fresh access token.
pub async fn login(client: &reqwest::Client, session: &mut Session) -> anyhow::Result<()> {
    let answer = expect_json(
        client
            .post(format!("{}/auth/token", session.base))
            .json(&json!({"email": session.email, "password": session.password}))
            .send()
            .await
            .context("logging in")?,
        "logging in",
    )
    .await?;
    session.access_token = field(&answer, "access_token", "logging in")?.to_owned();
    Ok(())
}

async fn create_license(
    client: reqwest::Client,
    session: Arc<Session>,
    key: String,
    name: String,
) -> anyhow::Result<Uuid> {
    let created = expect_json(
        client
            .post(format!("{}/licenses", session.base))
            .bearer_auth(&session.access_token)
            .json(&json!({"key": key, "name": name}))
            .send()
            .await
            .context("creating a license")?,
        "creating a license",
    )
    .await?;
    field(&created, "id", "creating a license")?
        .parse()
        .context("license id")
}

async fn create_agent_token(
    client: reqwest::Client,
    session: Arc<Session>,
    license_id: Uuid,
    name: String,
) -> anyhow::Result<AgentCredentials> {
    let created = expect_json(
        client
            .post(format!(
                "{}/licenses/{license_id}/agent-tokens",
                session.base
            ))
            .bearer_auth(&session.access_token)
            .json(&json!({"name": name}))
            .send()
            .await
            .context("creating an agent token")?,
        "creating an agent token",
    )
    .await?;
    Ok(AgentCredentials {
        license_id,
        token: field(&created, "token", "creating an agent token")?.to_owned(),
    })
}

/// Runs `jobs` with at most [`SETUP_CONCURRENCY`] in flight; results in input order.
async fn bounded<T, F>(jobs: Vec<F>) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut set = JoinSet::new();
    for (i, job) in jobs.into_iter().enumerate() {
        let permits = permits.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, job.await)
        });
    }
    let mut results: Vec<Option<T>> = Vec::new();
    results.resize_with(set.len(), || None);
    while let Some(joined) = set.join_next().await {
        let (i, result) = joined.context("a setup task panicked")?;
        results[i] = Some(result?);
    }
    results
        .into_iter()
        .map(|r| r.context("a setup task gave no result"))
        .collect()
}

/// Creates `licenses` licenses and `agents` agent tokens spread over them (one token per
/// agent; several agents of a license are several instances of it).
pub async fn setup_agents(
    client: &reqwest::Client,
    url: &str,
    admin_token: &str,
    agents: usize,
    agents_per_license: usize,
) -> anyhow::Result<SetupState> {
    let started = std::time::Instant::now();
    let session = Arc::new(create_tenant(client, url, admin_token, "Load generator").await?);
    let per = agents_per_license.max(1);
    let licenses = agents.div_ceil(per);
    crate::note(&format!(
        "setup: tenant {}; creating {licenses} licenses and {agents} agent tokens",
        session.tenant_id
    ));
    let license_ids = bounded(
        (0..licenses)
            .map(|i| {
                create_license(
                    client.clone(),
                    session.clone(),
                    format!("LOAD-{i:05}"),
                    format!("Load site {i}"),
                )
            })
            .collect(),
    )
    .await?;
    let credentials = bounded(
        (0..agents)
            .map(|a| {
                create_agent_token(
                    client.clone(),
                    session.clone(),
                    license_ids[a / per],
                    format!("loadgen agent {a}"),
                )
            })
            .collect(),
    )
    .await?;
    crate::note(&format!(
        "setup: done in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(SetupState {
        url: url.to_owned(),
        tenant_id: session.tenant_id,
        licenses,
        agents: credentials,
    })
}
