//! `list`: a tenant with many licenses and cameras, and the time of the license list.
//!
//! The tenant and its owner are created through the API; the licenses, agent instances and
//! camera rows are written with one SQL script in one transaction (`--database-url`), which
//! takes seconds where 10,000 licenses through the API would take minutes. The rows have the
//! shape the ingest writer gives them: the same transaction ends with the writer's own
//! statements for the per-instance camera counts and the per-license roll-up
//! (`streamwatch::store::rollup`). The shares (by license number modulo 100):
//!
//! | share | what | status |
//! |---|---|---|
//! | 10 % | never installed: no agent instance, no cameras | `not_installed` |
//! | 15 % | stale: last heartbeat 2 hours ago (check interval 10 min) | `inactive` |
//! | 10 % | fresh, but every camera down (offline or starving) | `inactive` |
//! | 20 % | fresh, one camera degraded or starving | `partially_active` |
//! | 45 % | fresh, every camera active; 10 % of all licenses with two agent instances | `all_active` |
//!
//! With 10,000 licenses and 4 cameras per instance that is 40,000 cameras and 10,000 agent
//! instances. Then `--requests` sequential `GET /api/v1/licenses?<query>` are timed, for each
//! `--query`.

use crate::{
    api, out,
    payload::SimAgent,
    stats::{self, Latency},
};
use anyhow::{Context, bail};
use chrono::Utc;
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use std::{
    path::PathBuf,
    time::{Duration, Instant},
};
use streamwatch::store::rollup;
use uuid::Uuid;

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Platform admin token (creates the tenant and its owner).
    #[arg(long, env = "STREAMWATCH_LOADGEN_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// The server's database, for seeding.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Licenses in the tenant.
    #[arg(long, default_value_t = 10_000)]
    licenses: usize,
    /// Cameras per agent instance.
    #[arg(long, default_value_t = 4)]
    cameras: usize,
    /// Timed requests per query.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Untimed requests before them (caches, prepared statements).
    #[arg(long, default_value_t = 10)]
    warmup_requests: usize,
    /// Query strings to time, e.g. `status=inactive&limit=50`; the first is the headline.
    #[arg(long = "query", default_values_t = [
        "status=inactive&limit=50".to_owned(),
        "limit=50".to_owned(),
        "status=all_active&limit=50".to_owned(),
    ])]
    queries: Vec<String>,
    /// A JSON file with the seeded tenant's owner: if it exists, log in as that owner and skip
    /// creating and seeding (to time the same data again, e.g. after changing a setting);
    /// else create and seed, and write it.
    #[arg(long)]
    state: Option<PathBuf>,
    /// A name for this run in the report.
    #[arg(long, default_value = "list")]
    label: String,
    /// Also write the JSON result to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct QueryResult {
    query: String,
    requests: usize,
    items_first_page: usize,
    latency_ms: Latency,
}

#[derive(Debug, Serialize)]
struct ListReport {
    mode: &'static str,
    label: String,
    licenses: i64,
    cameras: i64,
    agent_instances: i64,
    seed_seconds: f64,
    /// Counts per status as `GET /api/v1/summary` reports them.
    summary: serde_json::Value,
    summary_latency_ms: Latency,
    queries: Vec<QueryResult>,
}

pub async fn run(args: ListArgs) -> anyhow::Result<()> {
    if args.licenses == 0 || args.requests == 0 || args.queries.is_empty() {
        bail!("--licenses, --requests and --query must not be zero or empty");
    }
    let client = api::client(Duration::from_secs(60))?;
    let (session, seed_seconds) = tenant(&client, &args).await?;
    let mut db = connect(&args.database_url).await?;
    let (licenses, cameras, instances): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM licenses WHERE tenant_id = $1),
                (SELECT count(*) FROM camera_state WHERE tenant_id = $1),
                (SELECT count(*) FROM agent_instances WHERE tenant_id = $1)",
    )
    .bind(session.tenant_id)
    .fetch_one(&mut db)
    .await
    .context("counting the seeded rows")?;
    db.close().await.ok();
    crate::note(&format!(
        "list: tenant {}: {licenses} licenses, {instances} agent instances, {cameras} cameras",
        session.tenant_id
    ));

    let get = |path: String| {
        let client = client.clone();
        let token = session.access_token.clone();
        async move {
            let t = Instant::now();
            let response = client
                .get(path)
                .bearer_auth(token)
                .send()
                .await
                .context("GET")?;
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            let elapsed = t.elapsed();
            if !status.is_success() {
                bail!("HTTP {status}: {body}");
            }
            let json: serde_json::Value = serde_json::from_str(&body)?;
            anyhow::Ok((elapsed, json))
        }
    };

    let summary_url = format!("{}/summary", session.base);
    let mut summary = serde_json::Value::Null;
    let mut summary_us = Vec::new();
    for i in 0..(args.warmup_requests + args.requests.min(50)) {
        let (elapsed, json) = get(summary_url.clone()).await?;
        if i >= args.warmup_requests {
            summary_us.push(stats::micros(elapsed));
        }
        summary = json;
    }

    let mut results = Vec::new();
    for query in &args.queries {
        let url = format!("{}/licenses?{query}", session.base);
        let mut samples = Vec::with_capacity(args.requests);
        let mut items = 0;
        for i in 0..(args.warmup_requests + args.requests) {
            let (elapsed, json) = get(url.clone()).await?;
            let page = json
                .get("items")
                .and_then(serde_json::Value::as_array)
                .context("no items in the license list")?;
            items = page.len();
            if let Some(wanted) = query.split('&').find_map(|kv| kv.strip_prefix("status="))
                && let Some(bad) = page.iter().find(|l| l["status"] != wanted)
            {
                bail!("{query}: a license with another status came back: {bad}");
            }
            if i >= args.warmup_requests {
                samples.push(stats::micros(elapsed));
            }
        }
        results.push(QueryResult {
            query: query.clone(),
            requests: samples.len(),
            items_first_page: items,
            latency_ms: Latency::from_micros(&mut samples),
        });
    }

    let report = ListReport {
        mode: "list",
        label: args.label.clone(),
        licenses,
        cameras,
        agent_instances: instances,
        seed_seconds,
        summary,
        summary_latency_ms: Latency::from_micros(&mut summary_us),
        queries: results,
    };
    out(&format!(
        "== streamwatch-loadgen list ({}): {} licenses, {} cameras, {} agent instances ==",
        report.label, report.licenses, report.cameras, report.agent_instances
    ));
    out(&format!("  statuses (GET /summary)  {}", report.summary));
    let s = &report.summary_latency_ms;
    out(&format!(
        "  GET /summary             p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2} ms",
        s.p50, s.p95, s.p99, s.max
    ));
    for q in &report.queries {
        let l = &q.latency_ms;
        out(&format!(
            "  GET /licenses?{:<28} p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2} ms  ({} requests, {} items)",
            q.query, l.p50, l.p95, l.p99, l.max, q.requests, q.items_first_page
        ));
    }
    let json = serde_json::to_string(&report)?;
    if let Some(path) = &args.json_out {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    out(&json);
    Ok(())
}

/// The seeded tenant: from `--state`, or created and seeded now (then the seconds it took).
async fn tenant(client: &reqwest::Client, args: &ListArgs) -> anyhow::Result<(api::Session, f64)> {
    if let Some(path) = &args.state
        && path.exists()
    {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut session: api::Session =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        session.base = api::api_base(&args.url);
        api::login(client, &mut session).await?;
        crate::note(&format!(
            "list: reusing tenant {} from {}",
            session.tenant_id,
            path.display()
        ));
        return Ok((session, 0.0));
    }
    let session =
        api::create_tenant(client, &args.url, &args.admin_token, "List benchmark").await?;
    crate::note(&format!(
        "list: tenant {}; seeding {} licenses",
        session.tenant_id, args.licenses
    ));
    let started = Instant::now();
    seed(
        &args.database_url,
        session.tenant_id,
        args.licenses,
        args.cameras,
    )
    .await?;
    let seconds = stats::round2(started.elapsed().as_secs_f64());
    crate::note(&format!("list: seeded in {seconds} s"));
    if let Some(path) = &args.state {
        std::fs::write(path, serde_json::to_string(&session)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok((session, seconds))
}

async fn connect(database_url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(database_url)
        .await
        .context("connecting to PostgreSQL (--database-url)")
}

/// Seeds the tenant (see the module documentation for the shares) in one transaction, then
/// refreshes the planner's statistics.
async fn seed(
    database_url: &str,
    tenant: Uuid,
    licenses: usize,
    cameras: usize,
) -> anyhow::Result<()> {
    let mut db = connect(database_url).await?;
    let mut tx = db.begin().await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(seed_sql(tenant, licenses, cameras)?))
        .execute(&mut *tx)
        .await
        .context("seeding the rows")?;
    // The per-instance camera counts and the per-license roll-up, exactly as the ingest writer
    // keeps them.
    let keys: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT tenant_id, id FROM licenses WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_all(&mut *tx)
            .await?;
    rollup::recount_instances(&mut tx, &keys)
        .await
        .context("counting the instances' cameras")?;
    rollup::refresh_licenses(&mut tx, &keys)
        .await
        .context("rolling up the licenses")?;
    tx.commit().await?;
    for table in ["licenses", "agent_instances", "camera_state"] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}")))
            .execute(&mut db)
            .await
            .with_context(|| format!("VACUUM ANALYZE {table}"))?;
    }
    db.close().await.ok();
    Ok(())
}

/// The seeding script, run in the seeding transaction (see the module documentation for the
/// shares).
fn seed_sql(tenant: uuid::Uuid, licenses: usize, cameras: usize) -> anyhow::Result<String> {
    // The reports an instance row keeps, exactly as the ingest writer stores them.
    let sample = SimAgent::new(1, cameras, 0).batch(1, 1, Utc::now(), chrono::Duration::seconds(1));
    let reports = serde_json::to_string(
        &sample
            .heartbeats
            .first()
            .context("a sample heartbeat")?
            .cameras,
    )?;
    if reports.contains("$cams$") {
        bail!("the sample reports contain the quoting delimiter");
    }
    Ok(format!(
        r"
CREATE TEMP TABLE seed ON COMMIT DROP AS
SELECT g, gen_random_uuid() AS license_id, gen_random_uuid() AS inst_a, gen_random_uuid() AS inst_b,
       CASE WHEN g % 100 < 10 THEN 'not_installed'
            WHEN g % 100 < 25 THEN 'stale'
            WHEN g % 100 < 35 THEN 'down'
            WHEN g % 100 < 55 THEN 'partial'
            ELSE 'active' END AS kind,
       (g % 100 BETWEEN 55 AND 64) AS two_instances
FROM generate_series(0, {last}) g;

INSERT INTO licenses (tenant_id, id, key, name, kind, check_interval_seconds, created_at, updated_at)
SELECT '{tenant}', license_id, 'SITE-' || lpad(g::text, 5, '0'),
       (ARRAY['Berlin','Hamburg','Munich','Cologne','Frankfurt','Stuttgart','Leipzig','Dresden',
              'Bremen','Hanover','Nuremberg','Essen'])[1 + (g * 7) % 12] || ' depot ' || ((g * 7919) % 10007),
       CASE WHEN g % 7 = 0 THEN 'cloud' ELSE 'direct' END,
       600, now() - make_interval(mins => g), now()
FROM seed;

CREATE TEMP TABLE seed_instances ON COMMIT DROP AS
SELECT s.*, i.instance_id, i.prefix, i.at
FROM seed s
CROSS JOIN LATERAL (
    SELECT s.inst_a AS instance_id, '' AS prefix,
           CASE WHEN s.kind = 'stale' THEN now() - interval '2 hours' - make_interval(secs => s.g)
                ELSE now() - make_interval(secs => s.g % 60) END AS at
    UNION ALL
    SELECT s.inst_b, 'b-', now() - make_interval(secs => (s.g + 30) % 60) WHERE s.two_instances
) i
WHERE s.kind <> 'not_installed';

INSERT INTO agent_instances (tenant_id, license_id, instance_id, hostname, version, high_water_seq,
    first_seen_at, last_received_at, last_activity_at, clock_offset_ms, last_seq, last_observed_at,
    cameras, webhooks_failing, webhooks_cached, heartbeats_total)
SELECT '{tenant}', license_id, instance_id, 'site-' || g || '-box', '0.1.0', 50000,
       now() - interval '30 days', at, at, 0, 50000, at,
       $cams${reports}$cams$::jsonb,
       CASE WHEN kind = 'partial' AND g % 2 = 0 THEN 1 ELSE 0 END,
       CASE WHEN kind = 'partial' AND g % 2 = 0 THEN 17 ELSE 0 END,
       50000
FROM seed_instances;

INSERT INTO camera_state (tenant_id, license_id, camera_id, instance_id, state_if_fresh, changed_at)
SELECT '{tenant}', license_id, prefix || 'camera-' || k, instance_id,
       CASE kind
           WHEN 'down' THEN CASE WHEN k = 1 THEN 'starving' ELSE 'inactive' END
           WHEN 'partial' THEN CASE WHEN k = {cameras} AND prefix = ''
                                    THEN CASE WHEN g % 2 = 0 THEN 'degraded' ELSE 'starving' END
                                    ELSE 'active' END
           ELSE 'active' END,
       now() - interval '1 day'
FROM seed_instances
CROSS JOIN generate_series(1, {cameras}) k;
",
        last = licenses.saturating_sub(1),
    ))
}
