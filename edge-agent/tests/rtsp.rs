#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its location"
)]

//! The RTSP source against a real GStreamer RTSP server process (see `support/rtsp_server.py`).
//!
//! Time bounds are polling deadlines, never sleeps followed by assertions.

mod support;

use std::{sync::Arc, time::Duration};
use streamwatch_agent::{
    metrics::{CameraMetrics, Snapshot},
    snapshots::PictureSlot,
    sources::{
        rtsp::{self, RtspOptions, Transport},
        tls::TlsOptions,
    },
};
use streamwatch_protocol::CameraStatus;
use support::{RtspServer, eventually, near, since_last_frame, snapshot, window_full};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running source task, cancelled (and awaited) when dropped.
struct Camera {
    metrics: CameraMetrics,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Camera {
    fn start(url: url::Url, options: RtspOptions) -> Self {
        let metrics = CameraMetrics::new();
        let shutdown = CancellationToken::new();
        let pictures = Arc::new(PictureSlot::default());
        let task = tokio::spawn(rtsp::run(
            url,
            options,
            metrics.clone(),
            pictures,
            shutdown.clone(),
        ));
        Self {
            metrics,
            shutdown,
            task: Some(task),
        }
    }

    /// Cancels the task and checks that `run` returns within a second.
    async fn stop(mut self) {
        self.shutdown.cancel();
        let task = self.task.take().expect("task");
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("run() returns within 1 s of shutdown")
            .expect("run() does not panic");
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Waits until the camera runs at `fps` (within 10 %) and checks every live measurement.
async fn assert_live_at(camera: &Camera, fps: f64) {
    let m = &camera.metrics;
    let first = eventually(
        m,
        Duration::from_secs(20),
        &format!("running at {fps} fps"),
        |s| s.status == CameraStatus::Running && window_full(s) && near(s.received_fps, fps),
    )
    .await;
    assert!(since_last_frame(&first) < 1.0, "{first:#?}");
    assert!(first.bitrate_kbps > 0.0, "{first:#?}");
    assert_eq!(
        first.packet_loss_pct, 0.0,
        "no loss over TCP on loopback: {first:#?}"
    );
    assert!(first.jitter_ms >= 0.0, "{first:#?}");
    assert!(first.started_at.is_some(), "{first:#?}");
    let later = eventually(
        m,
        Duration::from_secs(3),
        "frames and bytes increase",
        |s| s.frames_total > first.frames_total && s.bytes_total > first.bytes_total,
    )
    .await;
    assert!(since_last_frame(&later) < 1.0, "{later:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_25_fps_stream_runs_at_25_fps_with_bitrate_and_no_loss() {
    let server = RtspServer::live(25);
    let camera = Camera::start(server.url("/test"), RtspOptions::default());
    assert_live_at(&camera, 25.0).await;
    let s = snapshot(&camera.metrics);
    assert_eq!(s.restart_count, 0, "{s:#?}");
    camera.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_15_fps_stream_is_measured_at_15_fps() {
    let server = RtspServer::live(15);
    let camera = Camera::start(server.url("/test"), RtspOptions::default());
    assert_live_at(&camera, 15.0).await;
    camera.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_transport_receives_the_stream_too() {
    let server = RtspServer::live(25);
    let options = RtspOptions {
        transport: Transport::Udp,
        ..RtspOptions::default()
    };
    let camera = Camera::start(server.url("/test"), options);
    let s = eventually(
        &camera.metrics,
        Duration::from_secs(20),
        "running at 25 fps over UDP",
        |s| s.status == CameraStatus::Running && window_full(s) && near(s.received_fps, 25.0),
    )
    .await;
    assert!(s.bitrate_kbps > 0.0 && s.packet_loss_pct >= 0.0, "{s:#?}");
    camera.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_server_starves_the_feed_goes_offline_and_is_reconnected_when_resumed() {
    let server = RtspServer::live(25);
    let camera = Camera::start(server.url("/test"), RtspOptions::default());
    let m = &camera.metrics;
    eventually(m, Duration::from_secs(20), "frames flowing", |s| {
        s.status == CameraStatus::Running && s.frames_total > 10
    })
    .await;

    server.pause();
    // Starving (running, no frame within 3 s) or already offline: within 3 s plus a second of
    // polling and scheduling tolerance.
    eventually(
        m,
        Duration::from_secs(4),
        "starving or offline within 3 s",
        |s| {
            since_last_frame(s) >= 3.0
                && matches!(s.status, CameraStatus::Running | CameraStatus::Offline)
        },
    )
    .await;
    let offline = eventually(
        m,
        Duration::from_secs(3),
        "offline after the stall timeout",
        |s| s.status == CameraStatus::Offline,
    )
    .await;
    let error = offline.last_error.clone().unwrap_or_default();
    assert!(error.contains("stalled"), "{error}");

    server.resume();
    let frames_before = snapshot(m).frames_total;
    let s = eventually(
        m,
        Duration::from_secs(30),
        "running again with new frames",
        |s| s.status == CameraStatus::Running && s.frames_total > frames_before + 10,
    )
    .await;
    assert!(s.restart_count >= 1, "{s:#?}");
    assert!(since_last_frame(&s) < 1.0, "{s:#?}");
    camera.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_feed_stays_running_and_starving_until_the_stall_timeout() {
    let server = RtspServer::live(25);
    let options = RtspOptions {
        stall_timeout: Duration::from_secs(6),
        ..RtspOptions::default()
    };
    let camera = Camera::start(server.url("/test"), options);
    let m = &camera.metrics;
    eventually(m, Duration::from_secs(20), "frames flowing", |s| {
        s.frames_total > 10
    })
    .await;

    server.pause();
    let starving = eventually(m, Duration::from_secs(4), "starving within 3 s", |s| {
        since_last_frame(s) >= 3.0
    })
    .await;
    assert_eq!(
        starving.status,
        CameraStatus::Running,
        "still connected: {starving:#?}"
    );
    assert_eq!(starving.restart_count, 0, "{starving:#?}");
    eventually(
        m,
        Duration::from_secs(5),
        "offline after 6 s without frames",
        |s| {
            s.status == CameraStatus::Offline
                && s.last_error.as_deref() == Some("no frames for 6 s (stalled)")
        },
    )
    .await;
    server.resume();
    camera.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_makes_the_camera_offline_and_a_restarted_one_is_reconnected() {
    let mut server = RtspServer::live(25);
    let camera = Camera::start(server.url("/test"), RtspOptions::default());
    let m = &camera.metrics;
    eventually(m, Duration::from_secs(20), "frames flowing", |s| {
        s.frames_total > 10
    })
    .await;

    let offline = kill_and_restart(&mut server, &camera).await;
    assert!(offline.last_error.is_some(), "{offline:#?}");
    camera.stop().await;
}

/// Kills `server` (SIGKILL) and checks that the camera is offline within 3 s; restarts it and
/// checks that the camera reconnects, with a restart counted. Returns the offline snapshot.
async fn kill_and_restart(server: &mut RtspServer, camera: &Camera) -> Snapshot {
    let m = &camera.metrics;
    server.kill();
    let offline = eventually(m, Duration::from_secs(3), "offline within 3 s", |s| {
        s.status == CameraStatus::Offline
    })
    .await;
    server.restart();
    let frames_before = snapshot(m).frames_total;
    let s = eventually(
        m,
        Duration::from_secs(30),
        "reconnected to the restarted server",
        |s| s.status == CameraStatus::Running && s.frames_total > frames_before + 10,
    )
    .await;
    assert!(s.restart_count >= 1, "{s:#?}");
    offline
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_offline_and_retried_until_shutdown() {
    let port = support::free_port();
    let url = url::Url::parse(&format!("rtsp://viewer:s3cret@127.0.0.1:{port}/test")).unwrap();
    let camera = Camera::start(url, RtspOptions::default());
    let m = &camera.metrics;
    let offline = eventually(m, Duration::from_secs(3), "offline with an error", |s| {
        s.status == CameraStatus::Offline && s.last_error.is_some()
    })
    .await;
    let error = offline.last_error.unwrap_or_default();
    assert!(error.contains("refused"), "{error}");
    assert!(
        !error.contains("s3cret"),
        "credentials leaked into the error: {error}"
    );
    // Backoff 1 s then 2 s (plus jitter): two restarts within 5 s.
    eventually(m, Duration::from_secs(6), "retrying with backoff", |s| {
        s.restart_count >= 2
    })
    .await;
    assert!(
        !camera.task.as_ref().unwrap().is_finished(),
        "run() returned before shutdown"
    );
    camera.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_url_are_sent_to_the_camera() {
    let args = [
        "--live-fps".to_owned(),
        "25".to_owned(),
        "--credentials".to_owned(),
        "viewer:p@ss word".to_owned(),
    ];
    let server = RtspServer::start(support::free_port(), &args);
    let mut good = server.url("/test");
    good.set_username("viewer").unwrap();
    good.set_password(Some("p@ss word")).unwrap();
    let mut bad = good.clone();
    bad.set_password(Some("wrong")).unwrap();

    let authorized = Camera::start(good, RtspOptions::default());
    let refused = Camera::start(bad, RtspOptions::default());
    eventually(
        &authorized.metrics,
        Duration::from_secs(20),
        "running with credentials",
        |s| s.status == CameraStatus::Running && s.frames_total > 0,
    )
    .await;
    let s = eventually(
        &refused.metrics,
        Duration::from_secs(10),
        "401 with a wrong password",
        |s| s.status == CameraStatus::Offline && s.last_error.is_some(),
    )
    .await;
    let error = s.last_error.unwrap_or_default();
    assert!(error.contains("401"), "{error}");
    assert!(!error.contains("wrong"), "{error}");
    authorized.stop().await;
    refused.stop().await;
}

/// An RTSP-over-TLS server with a certificate from a private CA, requiring credentials.
fn tls_server(pki: &support::TestPki) -> RtspServer {
    let args = [
        "--live-fps".to_owned(),
        "25".to_owned(),
        "--credentials".to_owned(),
        "viewer:secret".to_owned(),
        "--tls-cert".to_owned(),
        pki.cert().to_string_lossy().into_owned(),
        "--tls-key".to_owned(),
        pki.key().to_string_lossy().into_owned(),
    ];
    RtspServer::start(support::free_port(), &args)
}

/// RTSP options that trust the test CA (and nothing else beyond the system's roots).
fn trusting_the_test_ca(pki: &support::TestPki) -> RtspOptions {
    RtspOptions {
        tls: TlsOptions {
            ca_file: Some(pki.ca()),
            verify: true,
        },
        ..RtspOptions::default()
    }
}

fn with_credentials(mut url: url::Url) -> url::Url {
    url.set_username("viewer").unwrap();
    url.set_password(Some("secret")).unwrap();
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsps_with_a_trusted_ca_runs_at_25_fps_through_tls() {
    let pki = support::TestPki::new();
    let server = tls_server(&pki);
    let options = trusting_the_test_ca(&pki);
    let camera = Camera::start(with_credentials(server.tls_url("/test")), options);
    assert_live_at(&camera, 25.0).await;
    assert_eq!(snapshot(&camera.metrics).restart_count, 0);
    camera.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsps_refuses_an_untrusted_certificate_unless_told_not_to_verify() {
    let pki = support::TestPki::new();
    let server = tls_server(&pki);
    let url = with_credentials(server.tls_url("/test"));

    // The system's roots do not include the test CA.
    let untrusted = Camera::start(url.clone(), RtspOptions::default());
    let unverified = Camera::start(
        url.clone(),
        RtspOptions {
            tls: TlsOptions {
                ca_file: None,
                verify: false,
            },
            ..RtspOptions::default()
        },
    );
    // Plain RTSP to a TLS-only server gets no RTSP answer.
    let plain = Camera::start(server.url("/test"), RtspOptions::default());

    let s = eventually(
        &untrusted.metrics,
        Duration::from_secs(10),
        "error: the certificate is not trusted",
        |s| s.status == CameraStatus::Error,
    )
    .await;
    let error = s.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("TLS handshake") && error.contains("certificate"),
        "{error}"
    );
    assert!(!error.contains("secret"), "{error}");
    assert_eq!(s.frames_total, 0, "{s:#?}");

    assert_live_at(&unverified, 25.0).await;

    let s = eventually(
        &plain.metrics,
        Duration::from_secs(15),
        "plain RTSP to a TLS server is offline",
        |s| s.status == CameraStatus::Offline && s.last_error.is_some(),
    )
    .await;
    assert_eq!(s.frames_total, 0, "{s:#?}");
    untrusted.stop().await;
    unverified.stop().await;
    plain.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsps_goes_offline_when_the_server_dies_and_reconnects_through_a_new_tls_session() {
    let pki = support::TestPki::new();
    let mut server = tls_server(&pki);
    let options = trusting_the_test_ca(&pki);
    let camera = Camera::start(with_credentials(server.tls_url("/test")), options);
    let m = &camera.metrics;
    eventually(m, Duration::from_secs(20), "frames flowing", |s| {
        s.status == CameraStatus::Running && s.frames_total > 10
    })
    .await;

    // SIGKILL: the TLS connection ends without a close_notify. The reason comes from the
    // camera's side of the relay, not from retina's loopback: "peer closed connection without
    // sending TLS close_notify" (or a reset, should the kernel answer with one).
    let offline = kill_and_restart(&mut server, &camera).await;
    let error = offline.last_error.clone().unwrap_or_default();
    assert!(error.starts_with("TLS connection failed: "), "{error}");
    assert!(!error.contains("https://"), "{error}");
    camera.stop().await;
}

#[tokio::test]
async fn rtsps_over_udp_is_refused_and_not_retried() {
    let url = url::Url::parse("rtsps://user:secret@127.0.0.1:322/test").unwrap();
    let options = RtspOptions {
        transport: Transport::Udp,
        ..RtspOptions::default()
    };
    let camera = Camera::start(url, options);
    let s = eventually(
        &camera.metrics,
        Duration::from_secs(2),
        "error status",
        |s| s.status == CameraStatus::Error,
    )
    .await;
    let error = s.last_error.unwrap_or_default();
    assert!(
        error.contains("rtsps:// needs the tcp transport"),
        "{error}"
    );
    assert!(!error.contains("secret"), "{error}");
    // `eventually` polls, so this is the only fixed wait: long enough for a retry (1 s backoff)
    // to have shown up had there been one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(snapshot(&camera.metrics).restart_count, 0);
    camera.stop().await;
}
