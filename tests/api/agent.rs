//! The edge agent against the real server: a `TestApp` (real router, real socket, fresh
//! database) and the agent library run in-process (`streamwatch_agent::agent`), with simulated
//! cameras and short intervals. Waits are bounded polls, never fixed sleeps.
//!
//! - a license goes Not Installed → All Active with an agent, and Inactive once it stops;
//! - a faulty camera makes it Partially Active with the camera's reason;
//! - heartbeats spooled while the server is down (across an agent restart) arrive exactly
//!   once and in order;
//! - a bounded spool drops the oldest heartbeats and counts them;
//! - webhook events are signed, cached while the receiver fails, delivered once it recovers,
//!   and heartbeats report the failing webhooks meanwhile.

use crate::helpers::{ADMIN_TOKEN, TestApp, TestSite, TestTenant, free_port};
use axum::{body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::{
    future::Future,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use streamwatch_agent::{
    agent::{Agent, CancellationToken},
    config::Config,
    spool::{Spool, SpoolLimits},
};

/// The server agents report to: the application, with one site in a fresh tenant.
struct Central {
    app: TestApp,
    tenant: TestTenant,
    site: TestSite,
}

impl Central {
    async fn start(app: TestApp) -> Self {
        let (tenant, site) = app.create_tenant_with_site("agent-site", "LIC-AGENT").await;
        Self { app, tenant, site }
    }

    /// The license's Activity Status.
    async fn status(&self) -> Value {
        self.app
            .license_status(&self.tenant.owner_token, &self.site.id)
            .await
    }

    /// The configuration of an agent of the site, pointed at `url`.
    fn config(&self, url: &str, state_dir: &Path, extra: &str) -> Config {
        agent_config(url, &self.site.agent_token, state_dir, extra)
    }
}

fn agent_config(central: &str, token: &str, state_dir: &Path, extra: &str) -> Config {
    let text = format!(
        r#"
[central]
url = "{central}"
token = "{token}"
timeout_seconds = 5
retry_max_seconds = 2

[agent]
state_dir = "{dir}"
listen = "127.0.0.1:0"
hostname = "test-site-box"
heartbeat_interval_seconds = 1
min_heartbeat_gap_seconds = 1
{extra}
"#,
        dir = state_dir.display()
    );
    Config::parse(&text).unwrap_or_else(|e| panic!("test config: {e}\n{text}"))
}

fn state_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "streamwatch-agent-e2e-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A URL where nothing listens: the server is "down".
fn closed_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// An agent running in this process.
struct RunningAgent {
    local: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(config: Config) -> RunningAgent {
    let agent = Agent::build(config).await.unwrap();
    let local = format!("http://{}", agent.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(agent.run(shutdown.clone()));
    RunningAgent {
        local,
        shutdown,
        task,
    }
}

impl RunningAgent {
    /// Stops the agent and waits until it has.
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// `GET /api/agent`: identity, push status and spool.
    async fn info(&self) -> Value {
        reqwest::get(format!("{}/api/agent", self.local))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Polls `check` every 200 ms until it gives `Ok`, for at most `limit`; the `Err` of the last
/// try says what was seen instead.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() > deadline => {
                panic!("gave up after {limit:?} waiting for {what}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

const TWO_HEALTHY_CAMERAS: &str = r#"
[[camera]]
id = "camera-1"
url = "simulated://?fps=25"

[[camera]]
id = "camera-2"
url = "simulated://?fps=10"
timezone = "Europe/Berlin"
"#;

#[sqlx::test]
async fn an_agent_with_simulated_cameras_takes_its_license_from_not_installed_to_all_active_and_to_inactive_after_it_stops(
    pool: PgPool,
) {
    let app = TestApp::spawn_with(pool, |s| s.clock.simulated = true).await;
    let central = Central::start(app).await;
    assert_eq!(central.status().await["status"], "not_installed");

    let dir = state_dir();
    let agent = start(central.config(&central.app.address, &dir, TWO_HEALTHY_CAMERAS)).await;
    let status = eventually("All Active", Duration::from_secs(30), || async {
        let s = central.status().await;
        if s["status"] == "all_active" {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    })
    .await;
    assert_eq!(status["symbol"], "✅");
    assert_eq!(status["reasons"], json!([]));
    let cameras = status["cameras"].as_array().unwrap();
    assert_eq!(cameras.len(), 2);
    for camera in cameras {
        assert_eq!(camera["state"], "active", "{camera}");
        assert_eq!(camera["video_feed"]["live"], true, "{camera}");
    }
    assert_eq!(status["agents"][0]["hostname"], "test-site-box");
    agent.stop().await;

    // Past the check interval (10 min) without a heartbeat: Inactive.
    central
        .app
        .post(
            "/api/v1/admin/clock",
            ADMIN_TOKEN,
            json!({"advance_seconds": 601}),
        )
        .await
        .assert_status(200);
    let status = central.status().await;
    assert_eq!(status["status"], "inactive", "{status}");
    assert!(
        status["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("no heartbeat for 10 min"),
        "{status}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[sqlx::test]
async fn a_simulated_faulty_camera_makes_the_license_partially_active_with_the_cameras_reason(
    pool: PgPool,
) {
    let central = Central::start(TestApp::spawn(pool).await).await;
    let dir = state_dir();
    let agent = start(central.config(
        &central.app.address,
        &dir,
        r#"
[[camera]]
id = "camera-1"
url = "simulated://?fps=25"

[[camera]]
id = "camera-2"
url = "simulated://?fps=25&faults=offline@0s"
"#,
    ))
    .await;
    let status = eventually("Partially Active", Duration::from_secs(30), || async {
        let s = central.status().await;
        let reasons = s["reasons"].to_string();
        if s["status"] == "partially_active"
            && reasons.contains("camera-2 offline: connection refused (simulated)")
        {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    })
    .await;
    assert_eq!(status["symbol"], "⚠️");
    assert_eq!(
        status["reasons"],
        json!(["camera-2 offline: connection refused (simulated)"])
    );
    let states: Vec<(&str, &str)> = status["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["camera_id"].as_str().unwrap(),
                c["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(states, [("camera-1", "active"), ("camera-2", "inactive")]);
    agent.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[sqlx::test]
async fn the_config_snippet_of_a_new_agent_token_is_a_valid_agent_configuration(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let tenant = app.create_tenant("snippet").await;
    let license = app.create_license(&tenant.owner_token, "LIC-SNIP").await;
    let r = app
        .request(
            reqwest::Method::POST,
            &format!(
                "/api/v1/licenses/{}/agent-tokens",
                license["id"].as_str().unwrap()
            ),
            Some(&tenant.owner_token),
            None,
        )
        .await;
    r.assert_status(201);
    let snippet = r.body["config_snippet"].as_str().unwrap();
    let config = Config::parse(snippet).unwrap_or_else(|e| panic!("{e}\n{snippet}"));
    assert_eq!(
        config.central.token.expose(),
        r.body["token"].as_str().unwrap()
    );
    assert_eq!(config.cameras.len(), 1);
}

/// The seqs the server stored for an agent instance, in order.
async fn stored_seqs(app: &TestApp, instance_id: &str) -> Vec<i64> {
    let instance: uuid::Uuid = instance_id.parse().unwrap();
    sqlx::query_scalar("SELECT seq FROM heartbeats WHERE instance_id = $1 ORDER BY seq")
        .bind(instance)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// The seqs still waiting in a (stopped) agent's spool.
fn spooled_seqs(state_dir: &Path) -> Vec<u64> {
    let mut spool = Spool::open(
        &state_dir.join("spool"),
        SpoolLimits::new(1 << 30, Duration::from_secs(86_400)),
        chrono::Utc::now(),
    )
    .unwrap();
    spool
        .oldest(usize::MAX, u64::MAX)
        .unwrap()
        .iter()
        .map(|h| h.seq)
        .collect()
}

/// The last seq the agent handed out (its persisted `next_seq` minus one).
fn last_seq(state_dir: &Path) -> u64 {
    let next: u64 = std::fs::read_to_string(state_dir.join("next_seq"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    next - 1
}

/// Runs the agent until its spool has been sent and acknowledged; returns its `/api/agent`.
async fn run_until_drained(config: Config) -> Value {
    let agent = start(config).await;
    let info = eventually("an empty spool", Duration::from_secs(30), || async {
        let info = agent.info().await;
        let push = &info["push"];
        if push["spool"]["pending"] == 0 && push["batches_acknowledged"].as_u64() > Some(0) {
            Ok(info)
        } else {
            Err(push.to_string())
        }
    })
    .await;
    agent.stop().await;
    info
}

/// Runs the agent against a dead server until it has spooled `at_least` more heartbeats.
async fn run_while_down(config: Config, at_least: u64) -> Value {
    let agent = start(config).await;
    let info = eventually("spooled heartbeats", Duration::from_secs(30), || async {
        let info = agent.info().await;
        let push = &info["push"];
        if push["heartbeats_recorded"].as_u64() >= Some(at_least)
            && push["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("refused"))
        {
            Ok(info)
        } else {
            Err(push.to_string())
        }
    })
    .await;
    agent.stop().await;
    info
}

#[sqlx::test]
async fn heartbeats_spooled_while_the_server_is_down_arrive_exactly_once_and_in_order_across_an_agent_restart(
    pool: PgPool,
) {
    let central = Central::start(TestApp::spawn(pool).await).await;
    let dir = state_dir();
    let up = |dir: &Path| central.config(&central.app.address, dir, TWO_HEALTHY_CAMERAS);
    let down_url = closed_url();
    let down = |dir: &Path| central.config(&down_url, dir, TWO_HEALTHY_CAMERAS);

    // Up: some heartbeats are acknowledged.
    let first = run_until_drained(up(&dir)).await;
    let instance = first["instance_id"].as_str().unwrap().to_owned();
    let acked_before = stored_seqs(&central.app, &instance).await.len();
    assert!(acked_before >= 1);

    // Down, then the agent restarts (same state directory), still down.
    let a = run_while_down(down(&dir), 3).await;
    assert_eq!(
        a["instance_id"],
        instance.as_str(),
        "the identity survives a restart"
    );
    let b = run_while_down(down(&dir), 3).await;
    let waiting = spooled_seqs(&dir);
    assert!(
        waiting.len() >= 6,
        "both runs spooled their heartbeats: {waiting:?} (first run {a}, second {b})"
    );

    // Up again: the spool is replayed.
    let last = run_until_drained(up(&dir)).await;
    let stored = stored_seqs(&central.app, &instance).await;
    let pending = spooled_seqs(&dir);
    let handed_out = last_seq(&dir);

    // Exactly once, in order: the server has 1..=N without a gap or a duplicate, and whatever
    // the last run recorded after its final acknowledgement is still in the spool.
    let n = stored.len() as i64;
    assert_eq!(stored, (1..=n).collect::<Vec<_>>(), "stored seqs");
    let expected_pending: Vec<u64> = ((n as u64 + 1)..=handed_out).collect();
    assert_eq!(
        pending, expected_pending,
        "nothing lost: the rest waits in the spool"
    );
    assert!(
        stored.len() >= acked_before + waiting.len(),
        "every spooled heartbeat arrived"
    );
    // Nothing acknowledged was sent again.
    for run in [&first, &last] {
        assert_eq!(run["push"]["heartbeats_duplicate"], 0, "{run}");
    }
    let (total,): (i64,) =
        sqlx::query_as("SELECT heartbeats_total FROM agent_instances WHERE instance_id = $1")
            .bind(instance.parse::<uuid::Uuid>().unwrap())
            .fetch_one(&central.app.pool)
            .await
            .unwrap();
    assert_eq!(total, n, "accepted counts match the stored rows");
    let _ = std::fs::remove_dir_all(dir);
}

#[sqlx::test]
async fn a_bounded_spool_drops_the_oldest_heartbeats_and_counts_them(pool: PgPool) {
    let central = Central::start(TestApp::spawn(pool).await).await;
    let dir = state_dir();
    // Room for about three heartbeats of one camera.
    let cameras =
        "spool_max_bytes = 2048\n[[camera]]\nid = \"camera-1\"\nurl = \"simulated://?fps=25\"\n";
    let down_url = closed_url();

    let agent = start(central.config(&down_url, &dir, cameras)).await;
    eventually("drops at the bound", Duration::from_secs(30), || async {
        let info = agent.info().await;
        let spool = &info["push"]["spool"];
        if spool["dropped_by_size"].as_u64() >= Some(3) {
            Ok(())
        } else {
            Err(spool.to_string())
        }
    })
    .await;
    agent.stop().await;
    let kept = spooled_seqs(&dir);
    assert!(kept.len() <= 3, "{kept:?}");

    let info = run_until_drained(central.config(&central.app.address, &dir, cameras)).await;
    let dropped = info["push"]["spool"]["dropped_by_size"].as_u64().unwrap();
    let stored = stored_seqs(&central.app, info["instance_id"].as_str().unwrap()).await;
    // The oldest were dropped, and exactly those were counted: the server has the
    // contiguous rest.
    let first = stored[0];
    assert_eq!(first as u64, dropped + 1, "stored: {stored:?}");
    let contiguous: Vec<i64> = (first..first + stored.len() as i64).collect();
    assert_eq!(stored, contiguous);
    let _ = std::fs::remove_dir_all(dir);
}

/// HMAC-SHA256, written out from RFC 2104 so that the receiver does not trust the agent's own
/// code to check its signatures.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

const WEBHOOK_SECRET: &str = "webhook-secret-of-the-test";

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    answered_ok: bool,
    signature_ok: bool,
    has_timestamp: bool,
    payload: Value,
}

/// A webhook receiver that answers 500 while `failing` is set.
#[derive(Clone, Default)]
struct Receiver {
    failing: Arc<AtomicBool>,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let expected = format!(
        "sha256={}",
        hex::encode(hmac_sha256(WEBHOOK_SECRET.as_bytes(), &body))
    );
    let signature_ok = headers
        .get("x-streamwatch-signature")
        .is_some_and(|v| v.to_str().ok() == Some(expected.as_str()));
    let failing = r.failing.load(Ordering::SeqCst);
    r.deliveries.lock().unwrap().push(Delivery {
        answered_ok: !failing,
        signature_ok,
        has_timestamp: headers
            .get("x-streamwatch-timestamp")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.parse::<i64>().is_ok()),
        payload: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

async fn start_receiver(receiver: Receiver) -> String {
    let router = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

#[sqlx::test]
async fn webhook_events_are_signed_cached_while_the_receiver_fails_and_delivered_once_it_recovers(
    pool: PgPool,
) {
    let central = Central::start(TestApp::spawn(pool).await).await;
    let receiver = Receiver::default();
    receiver.failing.store(true, Ordering::SeqCst);
    let hook_url = start_receiver(receiver.clone()).await;
    let dir = state_dir();
    let agent = start(central.config(
        &central.app.address,
        &dir,
        &format!(
            r#"
[[camera]]
id = "camera-1"
url = "simulated://?fps=25&faults=offline@6s+2s"

[[webhook]]
url = "{hook_url}"
secret = "{WEBHOOK_SECRET}"
"#
        ),
    ))
    .await;

    // The outage starts 6 s in: a loaded machine (a CI run) may take a few seconds to start the
    // agent and see the camera active, and an outage before that would leave out the first
    // `camera.online` (starting -> offline is one event).
    // While the receiver fails, the events are cached and heartbeats say so.
    let status = eventually(
        "webhooks failing in the license status",
        Duration::from_secs(30),
        || async {
            let s = central.status().await;
            let camera = &s["cameras"][0];
            if camera["webhooks"]["status"] == "failing"
                && camera["webhooks"]["cached"].as_i64() >= Some(2)
            {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        },
    )
    .await;
    let reasons = status["reasons"].to_string();
    assert!(
        reasons.contains("webhooks failing on camera-1 ("),
        "{reasons}"
    );

    // The receiver recovers: the cached events arrive, oldest first.
    receiver.failing.store(false, Ordering::SeqCst);
    let delivered = eventually(
        "online, offline, online delivered",
        Duration::from_secs(30),
        || async {
            let events: Vec<String> = receiver
                .deliveries
                .lock()
                .unwrap()
                .iter()
                .filter(|d| d.answered_ok)
                .map(|d| d.payload["event"].as_str().unwrap_or("?").to_owned())
                .collect();
            if events.len() >= 3 {
                Ok(events)
            } else {
                Err(format!("{events:?}"))
            }
        },
    )
    .await;
    assert_eq!(
        delivered[..3],
        ["camera.online", "camera.offline", "camera.online"]
    );

    let deliveries = receiver.deliveries.lock().unwrap().clone();
    assert!(
        deliveries.iter().any(|d| !d.answered_ok),
        "some attempts failed first"
    );
    for d in &deliveries {
        assert!(d.signature_ok, "signed with the secret: {:?}", d.payload);
        assert!(d.has_timestamp, "{:?}", d.payload);
        assert_eq!(d.payload["camera_id"], "camera-1");
        assert_eq!(d.payload["agent"]["hostname"], "test-site-box");
    }
    let mut ids: Vec<&str> = deliveries
        .iter()
        .filter(|d| d.answered_ok)
        .map(|d| d.payload["id"].as_str().unwrap())
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "each event delivered once");
    let offline = deliveries
        .iter()
        .find(|d| d.payload["event"] == "camera.offline")
        .unwrap();
    assert_eq!(offline.payload["status"], "offline");
    assert_eq!(offline.payload["previous"], "active");
    assert_eq!(
        offline.payload["last_error"],
        "connection refused (simulated)"
    );

    // And the heartbeats say the webhooks are fine again.
    eventually(
        "webhooks ok in the license status",
        Duration::from_secs(30),
        || async {
            let s = central.status().await;
            if s["cameras"][0]["webhooks"]["status"] == "ok" {
                Ok(())
            } else {
                Err(s.to_string())
            }
        },
    )
    .await;
    agent.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
