#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its location"
)]

//! Picture health of real RTSP streams on the real `streamwatch-agent` binary: GStreamer's
//! `videotestsrc` encoded to H.264 (x264enc) and H.265 (x265enc) behind the RTSP test server
//! (`support/rtsp_server.py`), decoded by the agent (OpenH264 in-process, H.265 through
//! ffmpeg), checked every 5 s. Each state must show in `/status/` within two snapshot
//! intervals of when it can first be seen, and the stored snapshots must be JPEGs that an
//! independent decoder (Debian's ffmpeg) reads.
//!
//! Time bounds are polling deadlines, never sleeps followed by assertions.

mod support;

use serde_json::Value;
use std::{
    collections::BTreeMap,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use support::{RtspServer, free_port, require_tool};

const INTERVAL: Duration = Duration::from_secs(5);
const FROZEN_AFTER: Duration = Duration::from_secs(10);
/// When the `recovers` camera's picture starts to move, after its pipeline was built: after
/// the frozen deadline below, even with all of its slack used.
const SWITCH_AFTER: Duration = Duration::from_secs(60);
/// Connecting (DESCRIBE, SETUP, PLAY on loopback) and the first keyframe (one a second), plus
/// room for a loaded machine: the whole test suite runs in parallel on two cores in CI, and
/// the agent's checks then run late. On a quiet machine the states show within two intervals
/// and two seconds; the test asserts that they come, not how fast (no timed assertions).
const CONNECT_SLACK: Duration = Duration::from_secs(22);

const RAW: &str = "video/x-raw,format=I420,width=320,height=240,framerate=15/1";
const H264: &str = "x264enc tune=zerolatency speed-preset=ultrafast bitrate=300 key-int-max=15 \
     ! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1";
const H265: &str = "x265enc tune=zerolatency speed-preset=ultrafast bitrate=300 key-int-max=15 \
     ! video/x-h265,profile=main ! rtph265pay name=pay0 pt=96 config-interval=1";
/// Colour bars scrolling sideways: a bright, structured, moving picture.
const MOVING: &str = "videotestsrc is-live=true pattern=smpte horizontal-speed=3";

/// A gst-rtsp-server launch line: `source` scaled to [`RAW`] and encoded by `encoder`.
fn launch(source: &str, encoder: &str) -> String {
    format!("( {source} ! {RAW} ! {encoder} )")
}

fn mount_args(mounts: &[(&str, String)]) -> Vec<String> {
    mounts
        .iter()
        .flat_map(|(mount, line)| {
            [
                "--mount-launch".to_owned(),
                (*mount).to_owned(),
                line.clone(),
            ]
        })
        .collect()
}

/// The agent process, killed when dropped; its output goes to files in its folder.
struct Agent {
    child: Child,
    dir: PathBuf,
    local: String,
    client: reqwest::Client,
}

impl Agent {
    /// Starts `streamwatch-agent run` with `cameras` (id, URL), each checked every
    /// [`INTERVAL`], and `path` as its `PATH`; waits until its local API answers.
    async fn start(name: &str, cameras: &[(&str, String)], path: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "streamwatch-rtsp-picture-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let listen = free_port();
        let mut config = format!(
            "[central]\nurl = \"http://127.0.0.1:{central}\"\ntoken = \"swa_test\"\n\n\
             [agent]\nstate_dir = \"{state}\"\nlisten = \"127.0.0.1:{listen}\"\n",
            central = unused_port(),
            state = dir.join("state").display(),
        );
        for (id, url) in cameras {
            config.push_str(&format!(
                "\n[[camera]]\nid = \"{id}\"\nurl = \"{url}\"\nsnapshot_interval_seconds = {}\n\
                 frozen_after_seconds = {}\n",
                INTERVAL.as_secs(),
                FROZEN_AFTER.as_secs()
            ));
        }
        std::fs::write(dir.join("agent.toml"), config).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_streamwatch-agent"))
            .arg("run")
            .arg("--config")
            .arg(dir.join("agent.toml"))
            .env("RUST_LOG", "info")
            .env("PATH", path)
            .stdout(Stdio::from(
                std::fs::File::create(dir.join("stdout")).unwrap(),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("stderr")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let agent = Self {
            child,
            dir,
            local: format!("http://127.0.0.1:{listen}"),
            client: reqwest::Client::new(),
        };
        let launched = Instant::now();
        while agent.try_status().await.is_none() {
            assert!(
                launched.elapsed() < Duration::from_secs(15),
                "the agent did not start:\n{}",
                agent.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        agent
    }

    async fn try_status(&self) -> Option<Value> {
        let response = self
            .client
            .get(format!("{}/status/", self.local))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    async fn status(&self) -> Value {
        self.try_status().await.expect("/status/ answers")
    }

    fn output(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("{}{}", read("stdout"), read("stderr"))
    }

    fn snapshot_file(&self, id: &str) -> PathBuf {
        self.dir.join("state/snapshots").join(format!("{id}.jpg"))
    }

    /// Polls `/status/` until every camera of `expected` shows its picture state, or panics
    /// after `within` with what it saw. Returns the status that matched.
    async fn wait_for(&self, expected: &[(&str, &str)], within: Duration, what: &str) -> Value {
        let started = Instant::now();
        loop {
            let status = self.status().await;
            let seen: Vec<(&str, String)> = expected
                .iter()
                .map(|(id, _)| (*id, picture_state(&status, id)))
                .collect();
            if seen.iter().zip(expected).all(|((_, s), (_, e))| s == e) {
                return status;
            }
            assert!(
                started.elapsed() < within,
                "{what}: not within {within:?}: {seen:?}\nstatus: {status:#}\nagent output:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on (the agent's central server, never reached here).
fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn picture_state(status: &Value, id: &str) -> String {
    status["cameras"][id]["picture"]["state"]
        .as_str()
        .unwrap_or("-")
        .to_owned()
}

/// Whether ffmpeg decodes `file` without an error.
fn ffmpeg_decodes(file: &Path) -> Result<(), String> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    if out.status.success() && out.stderr.is_empty() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `WIDTHxHEIGHT` of the picture in `file`, as ffprobe reads it.
fn ffprobe_size(file: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height", "-of", "csv=p=0:s=x"])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn system_path() -> String {
    std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_streams_show_ok_black_uniform_and_frozen_within_two_intervals_and_recover() {
    require_tool("ffmpeg", "ffmpeg");
    require_tool("ffprobe", "ffmpeg");
    let mounts = [
        ("/moving", launch(MOVING, H264)),
        (
            "/black",
            launch("videotestsrc is-live=true pattern=black", H264),
        ),
        (
            "/flat",
            launch(
                "videotestsrc is-live=true pattern=solid-color foreground-color=0xff808080",
                H264,
            ),
        ),
        // One picture, repeated for ever by the "encoder".
        (
            "/frozen",
            launch(
                &format!(
                    "videotestsrc num-buffers=1 pattern=smpte ! {RAW} ! imagefreeze is-live=true"
                ),
                H264,
            ),
        ),
        // Black until the server switches the pattern to moving bars.
        (
            "/recovers",
            launch(
                "videotestsrc is-live=true name=cam pattern=black horizontal-speed=3",
                H264,
            ),
        ),
    ];
    let mut args = mount_args(&mounts);
    args.extend([
        "--switch-after".to_owned(),
        SWITCH_AFTER.as_secs().to_string(),
        "--switch".to_owned(),
        "cam.pattern=smpte".to_owned(),
    ]);
    let server = RtspServer::start(free_port(), &args);
    let cameras: Vec<(&str, String)> = mounts
        .iter()
        .map(|(mount, _)| (&mount[1..], server.url(mount).to_string()))
        .collect();
    let agent = Agent::start("h264", &cameras, &system_path()).await;
    let started = Instant::now();

    let first = [
        ("moving", "ok"),
        ("black", "black"),
        ("flat", "uniform"),
        ("recovers", "black"),
    ];
    let status = agent
        .wait_for(&first, 2 * INTERVAL + CONNECT_SLACK, "first states")
        .await;
    let luma = |id: &str| {
        status["cameras"][id]["picture"]["luma_mean"]
            .as_f64()
            .unwrap()
    };
    assert!(luma("black") < 20.0, "{status:#}");
    assert!((100.0..150.0).contains(&luma("flat")), "{status:#}");
    assert!(luma("moving") > 50.0, "{status:#}");
    assert_eq!(
        status["cameras"]["moving"]["status"], "running",
        "{status:#}"
    );

    // Frozen once the picture has not changed for FROZEN_AFTER, seen at the next check.
    let frozen_by = FROZEN_AFTER + 2 * INTERVAL + CONNECT_SLACK;
    let status = agent
        .wait_for(
            &[("frozen", "frozen"), ("moving", "ok")],
            frozen_by.saturating_sub(started.elapsed()),
            "frozen",
        )
        .await;
    let change = status["cameras"]["frozen"]["picture"]["change_pct"]
        .as_f64()
        .unwrap();
    assert!(change < 1.0, "{status:#}");

    // The black camera's bars start to move at SWITCH_AFTER: ok within two intervals.
    let before_switch = SWITCH_AFTER.saturating_sub(started.elapsed());
    assert!(
        before_switch > Duration::ZERO,
        "the test ran too slowly to see the switch"
    );
    assert_eq!(picture_state(&agent.status().await, "recovers"), "black");
    agent
        .wait_for(
            &[("recovers", "ok")],
            before_switch + 2 * INTERVAL + CONNECT_SLACK,
            "recovered",
        )
        .await;

    // The snapshots are JPEGs at the stream's size that ffmpeg decodes, on disk and served.
    for (id, _) in &cameras {
        let file = agent.snapshot_file(id);
        ffmpeg_decodes(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(ffprobe_size(&file), "320x240", "{}", file.display());
    }
    let served = agent
        .client
        .get(format!("{}/api/streams/moving/snapshot", agent.local))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/jpeg");
    let copy = agent.dir.join("served-moving.jpg");
    std::fs::write(&copy, served.bytes().await.unwrap()).unwrap();
    ffmpeg_decodes(&copy).unwrap_or_else(|e| panic!("served: {e}"));
    let decode_warnings = agent.output().matches("could not be decoded").count();
    assert_eq!(decode_warnings, 0, "{}", agent.output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_is_decoded_through_ffmpeg_and_unknown_without_it() {
    require_tool("ffmpeg", "ffmpeg");
    let mounts = [
        ("/hevc", launch(MOVING, H265)),
        (
            "/hevc-black",
            launch("videotestsrc is-live=true pattern=black", H265),
        ),
    ];
    let server = RtspServer::start(free_port(), &mount_args(&mounts));
    let cameras: Vec<(&str, String)> = mounts
        .iter()
        .map(|(mount, _)| (&mount[1..], server.url(mount).to_string()))
        .collect();
    // A PATH with no ffmpeg on it (the agent needs nothing else from PATH).
    let empty = std::env::temp_dir().join(format!("streamwatch-no-ffmpeg-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let with = Agent::start("hevc-ffmpeg", &cameras, &system_path()).await;
    let without = Agent::start("hevc-no-ffmpeg", &cameras, &empty.to_string_lossy()).await;
    let started = Instant::now();

    with.wait_for(
        &[("hevc", "ok"), ("hevc-black", "black")],
        2 * INTERVAL + CONNECT_SLACK,
        "H.265 through ffmpeg",
    )
    .await;
    let file = with.snapshot_file("hevc");
    ffmpeg_decodes(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert_eq!(ffprobe_size(&file), "320x240");

    // Without ffmpeg: the stream runs, its picture is unknown at every check, and the reason
    // is logged once per camera however many checks there were.
    let mut states = BTreeMap::new();
    while started.elapsed() < 3 * INTERVAL {
        let status = without.status().await;
        for (id, _) in &cameras {
            *states
                .entry((id.to_string(), picture_state(&status, id)))
                .or_insert(0) += 1;
            if started.elapsed() > INTERVAL {
                assert_eq!(status["cameras"][id]["status"], "running", "{status:#}");
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let seen: Vec<_> = states.keys().collect();
    assert!(
        states
            .keys()
            .all(|(_, state)| state == "unknown" || state == "-"),
        "{seen:?}\n{}",
        without.output()
    );
    let output = without.output();
    let reasons = output.matches("not on PATH").count();
    assert_eq!(reasons, cameras.len(), "once per camera:\n{output}");
    assert!(!without.snapshot_file("hevc").exists());
    std::fs::remove_dir_all(&empty).ok();
}
