//! The pusher against a scripted ingest endpoint on a real socket: the headers and body it
//! sends, and what it does with each answer of the protocol (2xx, 413, 422, 429, 401, no
//! answer). The end-to-end runs against the real server are in the root crate's
//! `tests/api/agent.rs`; a real server cannot be made to answer 413 or 422 on cue.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use std::{
    io::Read,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};
use streamwatch_agent::{
    cameras::Cameras,
    config::Config,
    push::{Attempt, Pusher, Store},
    spool::{Spool, SpoolLimits},
    state::AgentState,
    webhooks::WebhookBoard,
};
use streamwatch_protocol::{AgentInfo, HeartbeatBatch};

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    headers: HeaderMap,
    gzipped: bool,
    batch: HeartbeatBatch,
}

type Rule = Arc<dyn Fn(&HeartbeatBatch) -> (u16, Option<&'static str>) + Send + Sync>;

#[derive(Clone)]
struct Fake {
    seen: Arc<Mutex<Vec<Seen>>>,
    rule: Rule,
}

async fn ingest(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Response {
    let gzipped = headers.get("content-encoding").is_some_and(|v| v == "gzip");
    let json = if gzipped {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        body.to_vec()
    };
    let batch: HeartbeatBatch = serde_json::from_slice(&json).unwrap();
    let (status, retry_after) = (fake.rule)(&batch);
    fake.seen.lock().unwrap().push(Seen {
        headers,
        gzipped,
        batch: batch.clone(),
    });
    let status = StatusCode::from_u16(status).unwrap();
    if status.is_success() {
        let answer = serde_json::json!({"accepted": batch.heartbeats.len(), "duplicates": 0,
            "next_interval_seconds": 20, "server_time": chrono::Utc::now()});
        return (status, axum::Json(answer)).into_response();
    }
    let problem = serde_json::json!({"type": "about:blank", "title": "no", "status": status.as_u16(), "detail": "scripted answer"});
    let mut response = (status, axum::Json(problem)).into_response();
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", after.parse().unwrap());
    }
    response
}

/// A fake ingest server answering by `rule`; returns its base URL and what it saw.
async fn fake_server(rule: Rule) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let fake = Fake {
        seen: Arc::default(),
        rule,
    };
    let seen = fake.seen.clone();
    let router = Router::new()
        .route("/api/v1/ingest/heartbeats", post(ingest))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, seen)
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "streamwatch-agent-push-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A pusher for `cameras` simulated cameras, sending to `url`.
fn pusher(url: &str, cameras: usize) -> Pusher {
    let mut text = format!(
        "[central]\nurl = \"{url}\"\ntoken = \"swa_test_token\"\nretry_max_seconds = 300\n"
    );
    for i in 0..cameras {
        text.push_str(&format!(
            "[[camera]]\nid = \"camera-{i}\"\nurl = \"simulated://?fps=25\"\n"
        ));
    }
    let config = Config::parse(&text).unwrap();
    let dir = temp_dir();
    let store = Store {
        state: AgentState::open(&dir).unwrap(),
        spool: Spool::open(
            &dir.join("spool"),
            SpoolLimits::new(1 << 20, Duration::from_secs(3600)),
            chrono::Utc::now(),
        )
        .unwrap(),
    };
    let agent = AgentInfo {
        instance_id: store.state.instance_id(),
        version: "0.1.0".to_owned(),
        hostname: "box".to_owned(),
        sent_at: None,
    };
    let cameras = Arc::new(Cameras::new(
        config.cameras.clone(),
        Arc::new(WebhookBoard::new(false)),
    ));
    Pusher::new(
        config.central,
        agent,
        store,
        cameras,
        Duration::from_secs(60),
        Duration::from_secs(5),
    )
    .unwrap()
}

fn sent_seqs(seen: &Mutex<Vec<Seen>>) -> Vec<Vec<u64>> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|s| s.batch.heartbeats.iter().map(|h| h.seq).collect())
        .collect()
}

fn pending(p: &Pusher) -> u64 {
    p.status().lock().unwrap().spool.pending
}

#[tokio::test]
async fn a_heartbeat_goes_out_with_the_protocol_headers_and_leaves_the_spool_when_acknowledged() {
    let (url, seen) = fake_server(Arc::new(|_| (200, None))).await;
    let mut p = pusher(&url, 1);
    assert_eq!(p.record().await.unwrap(), 1);
    assert_eq!(pending(&p), 1, "spooled before it is sent");
    assert_eq!(
        p.send_once().await,
        Attempt::Acked {
            heartbeats: 1,
            accepted: 1,
            duplicates: 0
        }
    );
    assert_eq!(pending(&p), 0);
    assert_eq!(p.send_once().await, Attempt::Idle);
    let seen = seen.lock().unwrap();
    let request = &seen[0];
    assert_eq!(request.headers["authorization"], "Bearer swa_test_token");
    assert_eq!(request.headers["streamwatch-protocol"], "1");
    assert_eq!(request.headers["content-type"], "application/json");
    assert!(!request.gzipped, "a small body goes plain");
    assert!(request.batch.agent.sent_at.is_some(), "sent_at is set");
    assert_eq!(request.batch.heartbeats[0].cameras.len(), 1);
    assert_eq!(
        p.status().lock().unwrap().interval_seconds,
        20,
        "the server's interval is used"
    );
}

#[tokio::test]
async fn bodies_over_one_kib_are_gzipped() {
    let (url, seen) = fake_server(Arc::new(|_| (200, None))).await;
    let mut p = pusher(&url, 8);
    p.record().await.unwrap();
    assert!(matches!(p.send_once().await, Attempt::Acked { .. }));
    let seen = seen.lock().unwrap();
    assert!(seen[0].gzipped);
    assert_eq!(seen[0].batch.heartbeats[0].cameras.len(), 8);
}

#[tokio::test]
async fn a_413_splits_the_batch_until_it_fits_and_order_is_kept() {
    let (url, seen) = fake_server(Arc::new(|b: &HeartbeatBatch| {
        (if b.heartbeats.len() > 2 { 413 } else { 200 }, None)
    }))
    .await;
    let mut p = pusher(&url, 1);
    for _ in 0..5 {
        p.record().await.unwrap();
    }
    let mut attempts = Vec::new();
    loop {
        match p.send_once().await {
            Attempt::Idle => break,
            a => attempts.push(a),
        }
    }
    assert_eq!(pending(&p), 0);
    assert_eq!(
        sent_seqs(&seen),
        vec![
            vec![1, 2, 3, 4, 5],
            vec![1, 2],
            vec![3, 4, 5],
            vec![3],
            vec![4, 5]
        ],
        "halved after a 413, back to the full size after a 2xx: {attempts:?}"
    );
}

#[tokio::test]
async fn a_422_isolates_the_invalid_heartbeat_and_drops_only_it_counting_the_drop() {
    let (url, seen) = fake_server(Arc::new(|b: &HeartbeatBatch| {
        (
            if b.heartbeats.iter().any(|h| h.seq == 2) {
                422
            } else {
                200
            },
            None,
        )
    }))
    .await;
    let mut p = pusher(&url, 1);
    for _ in 0..3 {
        p.record().await.unwrap();
    }
    while p.send_once().await != Attempt::Idle {}
    let accepted: Vec<u64> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| !s.batch.heartbeats.iter().any(|h| h.seq == 2))
        .flat_map(|s| s.batch.heartbeats.iter().map(|h| h.seq))
        .collect();
    assert_eq!(accepted, vec![1, 3]);
    let status = p.status().lock().unwrap().clone();
    assert_eq!(status.spool.rejected, 1);
    assert_eq!(status.spool.pending, 0);
}

#[tokio::test]
async fn a_429_waits_at_least_retry_after_and_keeps_the_heartbeat() {
    let (url, _) = fake_server(Arc::new(|_| (429, Some("7")))).await;
    let mut p = pusher(&url, 1);
    p.record().await.unwrap();
    match p.send_once().await {
        Attempt::Wait(wait) => assert!(wait >= Duration::from_secs(7), "{wait:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(pending(&p), 1);
}

#[tokio::test]
async fn a_503_backs_off_exponentially_and_keeps_the_heartbeat() {
    let (url, _) = fake_server(Arc::new(|_| (503, Some("1")))).await;
    let mut p = pusher(&url, 1);
    p.record().await.unwrap();
    let mut waits = Vec::new();
    for _ in 0..4 {
        match p.send_once().await {
            Attempt::Wait(wait) => waits.push(wait),
            other => panic!("{other:?}"),
        }
    }
    // Ceilings 1, 2, 4, 8 s with jitter down to half of each, and at least Retry-After.
    assert!(waits[3] >= Duration::from_secs(4), "{waits:?}");
    assert_eq!(pending(&p), 1);
    assert_eq!(p.status().lock().unwrap().consecutive_failures, 4);
}

#[tokio::test]
async fn a_refused_token_keeps_the_heartbeats_retries_slowly_and_says_what_to_fix() {
    let (url, _) = fake_server(Arc::new(|_| (401, None))).await;
    let mut p = pusher(&url, 1);
    p.record().await.unwrap();
    match p.send_once().await {
        Attempt::Wait(wait) => assert!(wait >= Duration::from_secs(30), "{wait:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(pending(&p), 1);
    let error = p.status().lock().unwrap().last_error.clone().unwrap();
    assert!(error.contains("check [central] token"), "{error}");
}

#[tokio::test]
async fn an_unreachable_server_keeps_the_heartbeats_and_reports_why() {
    // Bind and drop a listener: that port is closed now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut p = pusher(&format!("http://127.0.0.1:{port}"), 1);
    p.record().await.unwrap();
    p.record().await.unwrap();
    assert!(matches!(p.send_once().await, Attempt::Wait(_)));
    assert_eq!(pending(&p), 2);
    let error = p.status().lock().unwrap().last_error.clone().unwrap();
    assert!(error.contains("refused"), "{error}");
}
