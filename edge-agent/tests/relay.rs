//! The `stream-status+http://` source against a real peer: another agent's local Heartbeat API
//! on a real socket, serving simulated cameras. Waits are bounded polls.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use chrono::Utc;
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use streamwatch_agent::{
    cameras::Cameras,
    config::{Config, Source},
    local_api::{self, ApiState},
    metrics::{CameraMetrics, Snapshot},
    push::PushStatus,
    sources::{self},
    webhooks::WebhookBoard,
};
use streamwatch_protocol::CameraStatus;
use tokio_util::sync::CancellationToken;

/// An "engine": an agent's local API over simulated cameras, running for real.
async fn engine(cameras: &str, shutdown: &CancellationToken) -> String {
    let config = Config::parse(&format!(
        "[central]\nurl = \"http://127.0.0.1:9\"\ntoken = \"t\"\n{cameras}"
    ))
    .unwrap();
    let cameras = Arc::new(Cameras::new(
        config.cameras.clone(),
        Arc::new(WebhookBoard::new(false)),
    ));
    for entry in &cameras.entries {
        sources::spawn(
            &entry.config,
            entry.metrics.clone(),
            entry.picture.slot.clone(),
            shutdown.clone(),
        );
    }
    let state = ApiState {
        cameras,
        version: "engine-1.4.2".to_owned(),
        instance_id: uuid::Uuid::nil(),
        hostname: "engine".to_owned(),
        started_at: Utc::now(),
        central: config.central,
        push: Arc::new(Mutex::new(PushStatus::default())),
        clock: Arc::new(Utc::now),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, local_api::router(Arc::new(state)))
            .await
            .unwrap();
    });
    format!("{address}")
}

/// Starts a relay camera with `url` and returns its metrics.
fn relay(url: &str, shutdown: &CancellationToken) -> CameraMetrics {
    let config = Config::parse(&format!(
        "[central]\nurl = \"http://127.0.0.1:9\"\ntoken = \"t\"\n[[camera]]\nid = \"relayed\"\nurl = \"{url}\"\n"
    ))
    .unwrap();
    assert!(matches!(
        config.cameras[0].source,
        Source::StreamStatus { .. }
    ));
    let metrics = CameraMetrics::new();
    sources::spawn(
        &config.cameras[0],
        metrics.clone(),
        Arc::default(),
        shutdown.clone(),
    );
    metrics
}

async fn wait_for(
    metrics: &CameraMetrics,
    what: &str,
    check: impl Fn(&Snapshot) -> bool,
) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = metrics.snapshot(Utc::now());
        if check(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}; last: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_relayed_engine_camera_is_running_with_its_rate_and_a_live_feed() {
    let shutdown = CancellationToken::new();
    let engine = engine(
        "[[camera]]\nid = \"camera-1\"\nurl = \"simulated://?fps=10&buffer=2\"\n[[camera]]\nid = \"camera-2\"\nurl = \"simulated://?faults=offline@0s\"\n",
        &shutdown,
    )
    .await;
    let by_fragment = relay(
        &format!("stream-status+http://{engine}/status/#camera-1"),
        &shutdown,
    );
    let s = wait_for(&by_fragment, "a running relayed camera at ~10 fps", |s| {
        s.status == CameraStatus::Running && s.received_fps >= 9.0 && s.last_frame_at.is_some()
    })
    .await;
    assert!(s.received_fps <= 11.0, "{s:?}");
    assert_eq!(s.buffered_frames, 2.0);

    let offline = relay(
        &format!("stream-status+http://{engine}/status/#camera-2"),
        &shutdown,
    );
    let s = wait_for(&offline, "the engine's offline camera", |s| {
        s.status == CameraStatus::Offline
    })
    .await;
    assert_eq!(
        s.last_error.as_deref(),
        Some("the relayed engine reports offline")
    );

    // Without a fragment the relay looks for its own id, which the engine does not have.
    let missing = relay(&format!("stream-status+http://{engine}/status/"), &shutdown);
    let s = wait_for(&missing, "an error for a missing camera", |s| {
        s.status == CameraStatus::Error
    })
    .await;
    assert_eq!(
        s.last_error.as_deref(),
        Some("camera \"relayed\" is not in the relayed status")
    );
    shutdown.cancel();
}

#[tokio::test]
async fn an_unreachable_engine_makes_the_relayed_camera_offline() {
    let shutdown = CancellationToken::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = relay(
        &format!("stream-status+http://127.0.0.1:{port}/status/#camera-1"),
        &shutdown,
    );
    let s = wait_for(&metrics, "offline", |s| s.status == CameraStatus::Offline).await;
    let error = s.last_error.unwrap();
    assert!(
        error.starts_with(&format!("cannot reach http://127.0.0.1:{port}/status/")),
        "{error}"
    );
    shutdown.cancel();
}
