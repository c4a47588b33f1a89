//! Golden tests of the local Heartbeat API: the exact bytes of `/status/`, `/monitor` and
//! `/api/streams/...`, served on a real socket, with simulated cameras driven to exact states
//! and the clock pinned.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use chrono::{DateTime, TimeZone, Utc};
use std::sync::{Arc, Mutex};
use streamwatch_agent::{
    cameras::Cameras,
    config::{Config, Source},
    local_api::{self, ApiState},
    push::PushStatus,
    sources::simulated::Simulator,
    webhooks::WebhookBoard,
};

/// 2027-01-15 08:00:00 UTC: winter, so Berlin is +01:00 and New York -05:00.
fn t0() -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).single().unwrap()
}

/// `t0` plus a duration with microseconds, to show the six fractional digits.
fn now() -> DateTime<Utc> {
    t0() + chrono::Duration::microseconds(10_123_456)
}

const CAMERAS: &str = r#"
[central]
url = "http://127.0.0.1:9"
token = "swa_test"

[[camera]]
id = "cam-berlin"
url = "simulated://?fps=25&buffer=3"
timezone = "Europe/Berlin"

[[camera]]
id = "cam-new-york"
url = "simulated://?connect=1h"
timezone = "America/New_York"

[[camera]]
id = "cam-offline"
url = "simulated://?faults=offline@0s"
"#;

/// Serves the local API over `cameras` (each simulated from `t0` to `now`) with the clock at
/// `now`; returns its base URL and the cameras.
async fn serve_cameras(config_text: &str) -> (String, Arc<Cameras>) {
    let config = Config::parse(config_text).unwrap();
    let cameras = Arc::new(Cameras::new(
        config.cameras.clone(),
        Arc::new(WebhookBoard::new(false)),
    ));
    for entry in &cameras.entries {
        let Source::Simulated(spec) = &entry.config.source else {
            panic!("simulated cameras only");
        };
        let mut simulator = Simulator::new(spec.clone(), t0());
        simulator.advance(&entry.metrics, t0());
        simulator.advance(&entry.metrics, now());
    }
    let state = ApiState {
        cameras: cameras.clone(),
        version: "1.2.3".to_owned(),
        instance_id: uuid::Uuid::nil(),
        hostname: "site-7-box".to_owned(),
        started_at: t0(),
        central: config.central,
        push: Arc::new(Mutex::new(PushStatus::default())),
        clock: Arc::new(now),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, local_api::router(Arc::new(state)))
            .await
            .unwrap();
    });
    (address, cameras)
}

async fn serve(config_text: &str) -> String {
    serve_cameras(config_text).await.0
}

async fn get(url: String) -> (u16, String, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn status_has_the_established_bytes_with_last_checked_in_each_cameras_timezone() {
    let base = serve(CAMERAS).await;
    let (status, content_type, body) = get(format!("{base}/status/")).await;
    assert_eq!(status, 500, "one camera is offline");
    assert_eq!(content_type, "application/json");
    assert_eq!(
        body,
        concat!(
            r#"{"version":"1.2.3","cameras":{"#,
            r#""cam-berlin":{"health":100,"status":"running","last_checked":"2027-01-15 09:00:10.123456+01:00","received_fps":25.0,"buffered_frames":3.0,"file_processing":{"processed_seconds":-1.0,"total_seconds":-1.0}},"#,
            r#""cam-new-york":{"health":-1,"status":"starting","last_checked":"2027-01-15 03:00:10.123456-05:00","received_fps":-1.0,"buffered_frames":-1.0,"file_processing":{"processed_seconds":-1.0,"total_seconds":-1.0}},"#,
            r#""cam-offline":{"health":0,"status":"offline","last_checked":"2027-01-15 08:00:10.123456+00:00","received_fps":-1.0,"buffered_frames":-1.0,"file_processing":{"processed_seconds":-1.0,"total_seconds":-1.0}}"#,
            r#"}}"#
        )
    );
}

#[tokio::test]
async fn status_answers_200_when_every_camera_is_functional() {
    let text = CAMERAS
        .split("[[camera]]\nid = \"cam-offline\"")
        .next()
        .unwrap();
    let base = serve(text).await;
    let (status, _, body) = get(format!("{base}/status/")).await;
    assert_eq!(status, 200, "running and starting are functional: {body}");
    let (status, _, body) = get(format!("{base}/monitor")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"active":true,"cameras":{"cam-berlin":{"status":"running"},"cam-new-york":{"status":"running"}}}"#
    );
}

#[tokio::test]
async fn monitor_has_the_legacy_shape() {
    let base = serve(CAMERAS).await;
    let (status, content_type, body) = get(format!("{base}/monitor")).await;
    assert_eq!(status, 200, "always 200");
    assert_eq!(content_type, "application/json");
    assert_eq!(
        body,
        r#"{"active":false,"cameras":{"cam-berlin":{"status":"running"},"cam-new-york":{"status":"running"},"cam-offline":{"status":"offline"}}}"#
    );
}

#[tokio::test]
async fn stream_status_gives_liveness_bitrate_and_the_last_frame_time() {
    let base = serve(CAMERAS).await;
    let (status, _, body) = get(format!("{base}/api/streams/cam-berlin/status")).await;
    assert_eq!(status, 200);
    // 125 frames of 12500 bytes in the 5 s window: 2500 kbit/s; the last frame at t0 + 10.12 s.
    assert_eq!(
        body,
        r#"{"is_live":true,"bitrate":2500.0,"last_frame_time":1800000010}"#
    );
    let (status, _, body) = get(format!("{base}/api/streams/cam-offline/status")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"is_live":false,"bitrate":-1.0,"last_frame_time":0}"#
    );
}

#[tokio::test]
async fn every_stream_status_comes_in_one_answer() {
    let base = serve(CAMERAS).await;
    let (status, _, body) = get(format!("{base}/api/streams/-/status")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        // The established shape (SPEC section 7): an array in configuration order.
        concat!(
            r#"[{"name":"cam-berlin","targets":[],"status":{"is_live":true,"bitrate":2500.0,"last_frame_time":1800000010}},"#,
            r#"{"name":"cam-new-york","targets":[],"status":{"is_live":false,"bitrate":-1.0,"last_frame_time":0}},"#,
            r#"{"name":"cam-offline","targets":[],"status":{"is_live":false,"bitrate":-1.0,"last_frame_time":0}}]"#
        )
    );
}

#[tokio::test]
async fn an_unknown_stream_is_404_with_the_established_message() {
    let base = serve(CAMERAS).await;
    let (status, content_type, body) = get(format!("{base}/api/streams/cam-9/status")).await;
    assert_eq!(status, 404);
    assert_eq!(content_type, "application/json");
    assert_eq!(body, r#"{"message":"Stream not found"}"#);
}

#[tokio::test]
async fn the_dashboard_is_self_contained_and_escapes_what_it_shows() {
    let (base, cameras) = serve_cameras(CAMERAS).await;
    cameras.entries[2].metrics.on_failure(
        streamwatch_protocol::CameraStatus::Error,
        "<script>alert('x')</script> & more",
    );
    let (status, content_type, body) = get(format!("{base}/")).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    for needle in [
        "cam-berlin",
        "cam-offline",
        "Check connectivity",
        "1.2.3",
        "site-7-box",
    ] {
        assert!(body.contains(needle), "the dashboard shows {needle}");
    }
    assert!(
        body.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"),
        "errors are escaped"
    );
    assert!(!body.contains("<script>alert"), "nothing unescaped");
    assert!(
        !body.contains("<link") && !body.contains("src="),
        "no external assets"
    );
}

#[tokio::test]
async fn the_connectivity_check_explains_a_refused_connection() {
    // Port 9 (discard) is closed on test machines.
    let base = serve(CAMERAS).await;
    let (status, _, body) = get(format!("{base}/api/connectivity")).await;
    assert_eq!(status, 200);
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["url"], "http://127.0.0.1:9/healthz");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.starts_with("127.0.0.1:9 refused the connection"),
        "{message}"
    );
}

#[tokio::test]
async fn a_checked_picture_shows_in_status_and_its_snapshot_is_served() {
    use streamwatch_agent::snapshots::Sampler;
    use streamwatch_agent::sources::simulated::{PictureKind, synthetic_picture};
    let (base, cameras) = serve_cameras(CAMERAS).await;
    let entry = &cameras.entries[0];
    let dir = std::env::temp_dir().join(format!(
        "streamwatch-agent-local-api-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    let mut sampler = Sampler::new(
        entry.config.id.clone(),
        entry.config.picture.clone(),
        entry.config.snapshot_interval,
        entry.picture.clone(),
        dir.clone(),
    );
    // The camera's source, as the simulated one answers a request.
    let slot = entry.picture.slot.clone();
    let source = tokio::spawn(async move {
        while !slot.wanted() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        slot.offer(synthetic_picture(PictureKind::Black, std::time::Duration::ZERO).unwrap());
    });
    let report = sampler.step().await;
    source.await.unwrap();

    let (_, _, body) = get(format!("{base}/status/")).await;
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let picture = &status["cameras"]["cam-berlin"]["picture"];
    assert_eq!(picture["state"], "black", "{body}");
    assert_eq!(picture["luma_mean"], report.luma_mean);
    assert_eq!(picture["change_pct"], -1.0, "nothing to compare with yet");
    assert!(
        body.contains(r#""file_processing":{"processed_seconds":-1.0,"total_seconds":-1.0},"picture":{"state":"black","since":"#),
        "picture comes after the established fields: {body}"
    );
    assert!(
        status["cameras"]["cam-new-york"].get("picture").is_none(),
        "unchecked cameras keep the established shape: {body}"
    );

    let response = reqwest::get(format!("{base}/api/streams/cam-berlin/snapshot"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let jpeg = response.bytes().await.unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    assert_eq!(
        std::fs::read(dir.join("cam-berlin.jpg")).unwrap(),
        jpeg.to_vec(),
        "the file in state_dir is the same snapshot"
    );
    let (status, _, body) = get(format!("{base}/api/streams/cam-new-york/snapshot")).await;
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"message":"No snapshot yet"}"#)
    );
    let (status, _, body) = get(format!("{base}/api/streams/nope/snapshot")).await;
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"message":"Stream not found"}"#)
    );

    let (_, _, html) = get(format!("{base}/")).await;
    assert!(
        html.contains(r#"<img class="thumb" src="/api/streams/cam-berlin/snapshot""#),
        "the dashboard shows the snapshot"
    );
    assert!(html.contains(r#"class="pill pic-black""#), "{html}");
    let _ = std::fs::remove_dir_all(dir);
}
