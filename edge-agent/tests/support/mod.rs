//! Real peers for the source tests: a GStreamer RTSP server process, MP4 clips made by
//! `ffmpeg`, temporary folders, and bounded polling of a camera's metrics.
//!
//! Nothing is skipped: a missing tool fails the test with the Debian package to install.

// Each test binary (`rtsp`, `file`) uses a different subset of these helpers.
#![allow(dead_code)]

use chrono::Utc;
use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};
use streamwatch_agent::metrics::{CameraMetrics, Snapshot};

/// The Debian packages the RTSP tests need (CI installs them).
pub const RTSP_PACKAGES: &str = "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
     gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly glib-networking";

/// Debian's Python: it has `gi`; a pyenv or venv python usually does not.
const PYTHON: &str = "/usr/bin/python3";

pub fn server_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/rtsp_server.py")
}

/// A port nobody listens on right now (the OS picks it; a tiny race with other processes).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A folder under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path =
            std::env::temp_dir().join(format!("streamwatch-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// The RTSP server process, killed when dropped.
pub struct RtspServer {
    child: Option<Child>,
    pub port: u16,
    args: Vec<String>,
    logs: TempDir,
}

impl RtspServer {
    /// Live H.264 (videotestsrc + x264enc) at `fps` on `/test`.
    pub fn live(fps: u32) -> Self {
        Self::start(free_port(), &["--live-fps".to_owned(), fps.to_string()])
    }

    /// Starts `rtsp_server.py --port PORT ARGS...` and waits (at most 15 s) for "ready".
    pub fn start(port: u16, args: &[String]) -> Self {
        let mut server = Self {
            child: None,
            port,
            args: args.to_vec(),
            logs: TempDir::new("rtsp-server"),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        assert!(
            Path::new(PYTHON).exists(),
            "{PYTHON} is missing: install python3 and {RTSP_PACKAGES}"
        );
        let stderr_path = self.logs.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("create server log");
        let mut child = Command::new(PYTHON)
            .arg(server_script())
            .arg("--port")
            .arg(self.port.to_string())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PYTHON}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim() == "ready" {
                    tx.send(()).ok();
                }
            }
        });
        let ready = rx.recv_timeout(Duration::from_secs(15));
        if ready.is_err() {
            child.kill().ok();
            child.wait().ok();
            let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            panic!(
                "the RTSP test server did not become ready on port {}.\n\
                 It needs Debian's packages: apt-get install {RTSP_PACKAGES}\n\
                 Its stderr:\n{log}",
                self.port
            );
        }
        self.child = Some(child);
    }

    pub fn url(&self, mount: &str) -> url::Url {
        url::Url::parse(&format!("rtsp://127.0.0.1:{}{mount}", self.port)).expect("url")
    }

    /// The `rtsps://` URL of a server started with `--tls-cert`.
    pub fn tls_url(&self, mount: &str) -> url::Url {
        url::Url::parse(&format!("rtsps://127.0.0.1:{}{mount}", self.port)).expect("url")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    fn signal(&self, signal: &str) {
        // The shell's builtin `kill`: no dependency on procps.
        let status = Command::new("sh")
            .args([
                "-c",
                "kill \"$1\" \"$2\"",
                "sh",
                signal,
                &self.pid().to_string(),
            ])
            .status()
            .expect("run sh");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Freezes the server (`kill -STOP`): connections stay open, nothing is sent.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Kills the server (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Starts the server again on the same port with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Fails with the package to install unless `tool -version` runs.
pub fn require_tool(tool: &str, package: &str) {
    require_tool_with(tool, "-version", package);
}

/// Fails with the package to install unless `tool version_arg` runs.
pub fn require_tool_with(tool: &str, version_arg: &str, package: &str) {
    let found = Command::new(tool)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "{tool} is missing: apt-get install {package}");
}

/// A private CA and a server certificate it signed, for `rtsps://` tests (made by `openssl`).
pub struct TestPki {
    pub dir: TempDir,
}

impl TestPki {
    /// The CA's certificate: what `tls_ca_file` points at.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
    /// The server's certificate (for 127.0.0.1 and localhost) and its key.
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    pub fn new() -> Self {
        require_tool_with("openssl", "version", "openssl");
        let pki = Self {
            dir: TempDir::new("pki"),
        };
        let path = |name: &str| pki.dir.path().join(name).to_string_lossy().into_owned();
        std::fs::write(
            path("server.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("write server.ext");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let steps: [Vec<String>; 3] = [
            [
                &["req", "-x509"][..],
                &ec,
                &["-days", "2", "-subj", "/CN=streamwatch test CA"],
            ]
            .concat()
            .iter()
            .map(|s| (*s).to_owned())
            .chain(["-keyout", &path("ca.key"), "-out", &path("ca.pem")].map(String::from))
            .collect(),
            [&["req"][..], &ec, &["-subj", "/CN=127.0.0.1"]]
                .concat()
                .iter()
                .map(|s| (*s).to_owned())
                .chain(
                    ["-keyout", &path("server.key"), "-out", &path("server.csr")].map(String::from),
                )
                .collect(),
            [
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &path("server.csr"),
                "-CA",
                &path("ca.pem"),
                "-CAkey",
                &path("ca.key"),
                "-CAcreateserial",
                "-extfile",
                &path("server.ext"),
                "-out",
                &path("server.pem"),
            ]
            .map(String::from)
            .to_vec(),
        ];
        for args in steps {
            let output = Command::new("openssl")
                .args(&args)
                .output()
                .expect("run openssl");
            assert!(
                output.status.success(),
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        pki
    }
}

/// Makes an H.264 MP4 test clip with ffmpeg: `seconds` long at `fps`, a keyframe per second.
pub fn make_clip(path: &Path, seconds: u32, fps: u32, size: &str) {
    require_tool("ffmpeg", "ffmpeg");
    let output = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate={fps}"))
        .args([
            "-t",
            &seconds.to_string(),
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
        ])
        .args(["-g", &fps.to_string(), "-pix_fmt", "yuv420p"])
        .arg(path)
        .output()
        .expect("run ffmpeg");
    assert!(
        output.status.success(),
        "ffmpeg could not make {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn snapshot(metrics: &CameraMetrics) -> Snapshot {
    metrics.snapshot(Utc::now())
}

/// Polls the camera's snapshot every 100 ms until `check` accepts it or `within` has passed;
/// panics with `what` and the last snapshot then.
pub async fn eventually(
    metrics: &CameraMetrics,
    within: Duration,
    what: &str,
    mut check: impl FnMut(&Snapshot) -> bool,
) -> Snapshot {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let s = snapshot(metrics);
        if check(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {within:?}: {what}\nlast snapshot: {s:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Seconds since the last frame (infinite when none arrived yet).
pub fn since_last_frame(s: &Snapshot) -> f64 {
    s.last_frame_at.map_or(f64::INFINITY, |t| {
        (Utc::now() - t).num_milliseconds() as f64 / 1000.0
    })
}

/// True once the source has been connected for a whole fps window, so that `received_fps`
/// is no longer diluted by the time before the first frame.
pub fn window_full(s: &Snapshot) -> bool {
    let window = chrono::Duration::from_std(streamwatch_agent::metrics::WINDOW).expect("window");
    s.started_at
        .is_some_and(|t| Utc::now() - t > window + chrono::Duration::milliseconds(500))
}

/// True when `fps` is within 10 % of `expected`.
pub fn near(fps: f64, expected: f64) -> bool {
    (fps - expected).abs() <= expected * 0.10
}
