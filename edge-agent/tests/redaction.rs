//! No secrets in the open (SPEC sections 3 and 6), checked on the real `streamwatch-agent` binary:
//! a webhook, a relayed engine and an RTSP camera whose URLs hold a user and password, a secret
//! path and a `?token=`, all pointing at closed ports so that every one of them fails, and a
//! central URL with credentials and a query. None of those secrets may appear in the agent's
//! log, in any answer of its local API, or in the heartbeats it pushes (`webhooks.last_error`
//! included), while the failures themselves are reported there.
//!
//! The "central server" here only records the bytes the agent pushes and answers 503 with
//! `Retry-After: 1`, so that the agent keeps every heartbeat and sends it again with the newest.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use std::{
    io::Read,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

const SECRETS: &[&str] = &[
    "TOKENSECRET",
    "HOOKKEYSECRET",
    "CENTRALPWSECRET",
    "CENTRALQSECRET",
    "HOOKUSERSECRET",
    "HOOKPWSECRET",
    "HOOKPATHSECRET",
    "HOOKQSECRET",
    "RELAYPWSECRET",
    "RELAYQSECRET",
    "CAMPWSECRET",
    "CAMQSECRET",
];

/// A port nobody listens on right now (the OS picks it; a tiny race with other processes).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The decoded JSON bodies the agent pushed.
type Pushed = Arc<Mutex<Vec<String>>>;

async fn ingest(State(pushed): State<Pushed>, headers: HeaderMap, body: Bytes) -> Busy {
    let mut json = Vec::new();
    if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut json)
            .unwrap();
    } else {
        json = body.to_vec();
    }
    pushed
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&json).into_owned());
    Busy
}

/// 503 with `Retry-After: 1`: the agent keeps the heartbeats and retries soon.
struct Busy;

impl axum::response::IntoResponse for Busy {
    fn into_response(self) -> axum::response::Response {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "1")],
            "busy",
        )
            .into_response()
    }
}

async fn recording_central() -> (u16, Pushed) {
    let pushed = Pushed::default();
    let router = Router::new()
        .route("/base/api/v1/ingest/heartbeats", post(ingest))
        .with_state(pushed.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (port, pushed)
}

/// The agent process, killed when dropped; its stdout and stderr go to files.
struct AgentProcess {
    child: Child,
    dir: PathBuf,
}

impl AgentProcess {
    fn start(config: &str, dir: PathBuf) -> Self {
        let path = dir.join("agent.toml");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_streamwatch-agent"))
            .arg("run")
            .arg("--config")
            .arg(&path)
            // The default level an operator runs with (docs/AGENT.md).
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(
                std::fs::File::create(dir.join("stdout")).unwrap(),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("stderr")).unwrap(),
            ))
            .spawn()
            .unwrap();
        Self { child, dir }
    }

    /// Everything the agent wrote so far.
    fn output(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("{}{}", read("stdout"), read("stderr"))
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn secrets_in(text: &str) -> Vec<&'static str> {
    SECRETS
        .iter()
        .copied()
        .filter(|s| text.contains(s))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_urls_leave_no_secret_in_logs_local_api_or_pushed_heartbeats() {
    let (central_port, pushed) = recording_central().await;
    let listen = closed_port();
    let (hook, relay, camera) = (closed_port(), closed_port(), closed_port());
    let dir = std::env::temp_dir().join(format!(
        "streamwatch-agent-redaction-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let config = format!(
        r#"
[central]
url = "http://central:CENTRALPWSECRET@127.0.0.1:{central_port}/base?key=CENTRALQSECRET"
token = "swa_TOKENSECRET"
timeout_seconds = 2
retry_max_seconds = 1

[agent]
state_dir = "{state}"
listen = "127.0.0.1:{listen}"
hostname = "redaction-box"
heartbeat_interval_seconds = 1
min_heartbeat_gap_seconds = 1

[[camera]]
id = "sim"
url = "simulated://?fps=25"

[[camera]]
id = "relay"
url = "stream-status+http://relay:RELAYPWSECRET@127.0.0.1:{relay}/status/?token=RELAYQSECRET"

[[camera]]
id = "rtsp"
url = "rtsp://admin:CAMPWSECRET@127.0.0.1:{camera}/live/main?token=CAMQSECRET"

[[webhook]]
url = "http://HOOKUSERSECRET:HOOKPWSECRET@127.0.0.1:{hook}/services/HOOKPATHSECRET?token=HOOKQSECRET"
secret = "HOOKKEYSECRET"
"#,
        state = dir.join("state").display()
    );
    let agent = AgentProcess::start(&config, dir);
    let local = format!("http://127.0.0.1:{listen}");
    let client = reqwest::Client::new();

    // Wait (bounded) until a pushed heartbeat reports the failing webhook and both failing
    // cameras with their errors.
    let deadline = Instant::now() + Duration::from_secs(60);
    let report = loop {
        let found = pushed.lock().unwrap().iter().rev().find_map(|body| {
            let batch: serde_json::Value = serde_json::from_str(body).ok()?;
            let cameras = &batch["heartbeats"].as_array()?.last()?["cameras"];
            // Events queue behind the oldest failing one, so one camera has the webhook's error.
            let hook_failed = cameras
                .as_object()?
                .values()
                .any(|c| c["webhooks"]["last_error"].is_string());
            let ready = hook_failed
                && cameras["relay"]["last_error"].is_string()
                && cameras["rtsp"]["last_error"].is_string();
            ready.then(|| cameras.clone())
        });
        if let Some(cameras) = found {
            break cameras;
        }
        assert!(
            Instant::now() < deadline,
            "no heartbeat with the three failures; agent output:\n{}\npushed: {:?}",
            agent.output(),
            pushed.lock().unwrap().last()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // The failures are reported, with the URLs in their shown forms.
    let hook_error = report
        .as_object()
        .unwrap()
        .values()
        .find_map(|c| c["webhooks"]["last_error"].as_str())
        .unwrap();
    assert!(
        hook_error.starts_with(&format!("http://127.0.0.1:{hook}/[redacted]: ")),
        "{hook_error}"
    );
    let relay_error = report["relay"]["last_error"].as_str().unwrap();
    assert!(
        relay_error.starts_with(&format!(
            "cannot reach http://127.0.0.1:{relay}/status/?[redacted]: "
        )),
        "{relay_error}"
    );
    assert_eq!(
        report["rtsp"]["url"],
        format!("rtsp://127.0.0.1:{camera}/live/main?[redacted]")
    );

    // Every answer of the local API, the dashboard's connectivity check included.
    let mut local_answers = String::new();
    for path in [
        "/",
        "/status/",
        "/monitor",
        "/api/streams/-/status",
        "/api/agent",
        "/api/connectivity",
    ] {
        let body = client
            .get(format!("{local}{path}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        local_answers.push_str(&format!("--- {path}\n{body}\n"));
    }
    assert!(
        local_answers.contains(&format!("http://127.0.0.1:{central_port}/base?[redacted]")),
        "the central URL is shown redacted: {local_answers}"
    );

    let log = agent.output();
    assert!(
        log.contains("webhook delivery failed")
            && log.contains(&format!("http://127.0.0.1:{hook}/[redacted]")),
        "the webhook failure is logged with the webhook's origin:\n{log}"
    );
    assert!(log.contains("heartbeats stay in the spool"), "{log}");

    let pushed_all = pushed.lock().unwrap().join("\n");
    for (what, text) in [
        ("the agent's log", &log),
        ("the local API", &local_answers),
        ("the pushed heartbeats", &pushed_all),
    ] {
        assert_eq!(secrets_in(text), Vec::<&str>::new(), "{what}:\n{text}");
    }
}
