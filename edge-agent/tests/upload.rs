//! Snapshot upload against the real server: the agent binary with a simulated camera, the
//! `streamwatch serve` binary on a fresh PostgreSQL database (`DATABASE_URL`, e.g. from
//! `. /work/notes/env.sh`), and the snapshot read back through the tenant's API.
//!
//! The server binary is the workspace's `target/debug/streamwatch` (or `STREAMWATCH_SERVER_BIN`):
//! build it first with `cargo build -p streamwatch --bin streamwatch`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod support;

use serde_json::{Value, json};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use support::{TempDir, free_port, require_tool};

const ADMIN: &str = "upload-test-platform-admin-token-0123456789";
const JWT_SECRET: &str = "upload-test-jwt-secret-0123456789abcdef0123456789abcdef";
const PASSWORD: &str = "correct-horse-battery-staple-42";

/// The `streamwatch` server binary next to this test's binaries.
fn server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("STREAMWATCH_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/upload-<hash> → target/debug/streamwatch
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("streamwatch"))
        .unwrap();
    assert!(
        path.exists(),
        "{} is missing: build the server with `cargo build -p streamwatch --bin streamwatch`",
        path.display()
    );
    path
}

/// A fresh database on the `DATABASE_URL` server, dropped at the end.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Database {
    fn create() -> Self {
        let admin_url = std::env::var("DATABASE_URL")
            .expect("DATABASE_URL must point at a PostgreSQL server (. /work/notes/env.sh)");
        let name = format!("sw_upload_{}", uuid::Uuid::new_v4().simple());
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("DATABASE_URL ends with /dbname");
        let db = Self {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        };
        db.psql(&format!("CREATE DATABASE {}", db.name));
        db
    }

    fn psql(&self, sql: &str) {
        require_tool_psql();
        let out = Command::new("psql")
            .arg(&self.admin_url)
            .args(["-v", "ON_ERROR_STOP=1", "-qAtc", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn require_tool_psql() {
    support::require_tool_with("psql", "--version", "postgresql-client");
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.admin_url)
            .args([
                "-qAtc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// A process killed when dropped, its output in `dir/<name>.log`.
struct Process {
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    fn start(mut cmd: Command, dir: &Path, name: &str) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            child: Some(child),
            log,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `streamwatch serve` on `addr`, answering `/healthz` (within 60 s).
async fn start_server(db: &Database, addr: &str, dir: &Path) -> Process {
    let mut cmd = Command::new(server_binary());
    cmd.env_clear();
    for var in ["PATH", "HOME"] {
        if let Ok(value) = std::env::var(var) {
            cmd.env(var, value);
        }
    }
    cmd.arg("serve")
        .env("STREAMWATCH__DATABASE__URL", &db.url)
        .env("STREAMWATCH__AUTH__ADMIN_TOKEN", ADMIN)
        // Fixed, so that the owner's access token survives a restart of the server.
        .env("STREAMWATCH__AUTH__JWT_SECRET", JWT_SECRET)
        .env("STREAMWATCH__HTTP__ADDR", addr)
        .env("RUST_LOG", "info");
    let server = Process::start(cmd, dir, "server");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "the server never answered /healthz:\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A tenant with its owner, a license and an agent token.
struct Site {
    owner: String,
    license_id: String,
    agent_token: String,
}

async fn create_site(base: &str) -> Site {
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/api/v1/admin/tenants"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "Upload Test", "timezone": "UTC",
            "owner": {"email": "ops@upload.test", "password": PASSWORD}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let login: Value = client
        .post(format!("{base}/api/v1/auth/token"))
        .json(&json!({"email": "ops@upload.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let owner = login["access_token"].as_str().unwrap().to_owned();
    let license: Value = client
        .post(format!("{base}/api/v1/licenses"))
        .bearer_auth(&owner)
        .json(&json!({"key": "LIC-UP-1", "name": "Depot", "kind": "direct", "check_interval_seconds": 600}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let license_id = license["id"].as_str().unwrap().to_owned();
    let token: Value = client
        .post(format!("{base}/api/v1/licenses/{license_id}/agent-tokens"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Site {
        owner,
        license_id,
        agent_token: token["token"].as_str().unwrap().to_owned(),
    }
}

fn start_agent(base: &str, token: &str, dir: &Path, camera_url: &str) -> Process {
    let state = dir.join("state");
    let config = format!(
        r#"
[central]
url = "{base}"
token = "{token}"
retry_max_seconds = 2

[agent]
state_dir = "{state}"
listen = "127.0.0.1:{listen}"

[[camera]]
id = "cam-1"
url = "{camera_url}"
snapshot_interval_seconds = 5
"#,
        state = state.display(),
        listen = free_port(),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamwatch-agent"));
    cmd.arg("run")
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "info");
    Process::start(cmd, dir, "agent")
}

/// Polls the camera's snapshot through the tenant's API until it is there (within `within`);
/// returns its picture-state header (if any) and bytes.
async fn snapshot_arrives(
    base: &str,
    site: &Site,
    within: Duration,
    agent: &Process,
    server: &Process,
) -> (Option<String>, Vec<u8>) {
    let client = reqwest::Client::new();
    let url = format!(
        "{base}/api/v1/licenses/{}/cameras/cam-1/snapshot",
        site.license_id
    );
    let deadline = Instant::now() + within;
    loop {
        let r = client.get(&url).bearer_auth(&site.owner).send().await;
        if let Ok(r) = r
            && r.status() == 200
        {
            assert_eq!(r.headers()["content-type"], "image/jpeg");
            let state = r
                .headers()
                .get("streamwatch-picture-state")
                .map(|v| v.to_str().unwrap().to_owned());
            assert!(r.headers().contains_key("streamwatch-taken-at"));
            return (state, r.bytes().await.unwrap().to_vec());
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot on the server within {within:?}\nagent:\n{}\nserver:\n{}",
            agent.output(),
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn ffmpeg_decodes(dir: &Path, jpeg: &[u8]) {
    let file = dir.join("served.jpg");
    std::fs::write(&file, jpeg).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The non-hidden files of the snapshot spool (temporary files start with a dot).
fn spooled(state: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(state.join("snapshot-spool"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn a_frozen_cameras_snapshot_reaches_the_server_and_decodes() {
    require_tool("ffmpeg", "ffmpeg");
    let dir = TempDir::new("upload");
    let db = Database::create();
    let addr = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{addr}");
    let server = start_server(&db, &addr, dir.path()).await;
    let site = create_site(&base).await;
    let agent = start_agent(
        &base,
        &site.agent_token,
        dir.path(),
        "simulated://?fps=10&picture=frozen",
    );

    let (state, jpeg) =
        snapshot_arrives(&base, &site, Duration::from_secs(60), &agent, &server).await;
    assert!(
        state
            .as_deref()
            .is_some_and(|s| ["ok", "frozen", "unknown"].contains(&s)),
        "picture state {state:?}"
    );
    ffmpeg_decodes(dir.path(), &jpeg);
    assert!(
        !agent.output().contains(&site.agent_token),
        "the agent token is never logged"
    );
}

#[tokio::test]
async fn snapshots_spooled_while_the_server_is_down_arrive_when_it_is_back_even_after_an_agent_restart()
 {
    require_tool("ffmpeg", "ffmpeg");
    let dir = TempDir::new("upload-spool");
    let db = Database::create();
    let addr = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{addr}");
    let mut server = start_server(&db, &addr, dir.path()).await;
    let site = create_site(&base).await;
    server.stop();

    // A moving picture: every snapshot has new bytes.
    let mut agent = start_agent(
        &base,
        &site.agent_token,
        dir.path(),
        "simulated://?fps=10&picture=ok",
    );
    let state = dir.path().join("state");
    let jpeg = state.join("snapshot-spool/cam-1.jpg");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first: Option<Vec<u8>> = None;
    loop {
        if let Ok(bytes) = std::fs::read(&jpeg) {
            let names = spooled(&state);
            assert!(
                names.iter().all(|n| n == "cam-1.jpg" || n == "cam-1.json"),
                "one snapshot per camera: {names:?}"
            );
            match &first {
                None => first = Some(bytes),
                Some(f) if *f != bytes => break,
                Some(_) => {}
            }
        }
        assert!(
            Instant::now() < deadline,
            "the spool never held a newer snapshot\nagent:\n{}",
            agent.output()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        spooled(&state),
        ["cam-1.jpg", "cam-1.json"],
        "the newer snapshot replaced the older one"
    );

    // The agent stops (as hard as a power cut) with the snapshot still spooled, and comes
    // back with the camera down: the only picture it can send is the spooled one.
    agent.stop();
    let spooled_jpeg = std::fs::read(&jpeg).unwrap();
    let agent = start_agent(
        &base,
        &site.agent_token,
        dir.path(),
        "simulated://?fps=10&picture=ok&faults=offline@0s",
    );
    let server = start_server(&db, &addr, dir.path()).await;
    let (_, served) =
        snapshot_arrives(&base, &site, Duration::from_secs(60), &agent, &server).await;
    assert!(
        served == spooled_jpeg,
        "the restarted agent sent the spooled snapshot"
    );
    ffmpeg_decodes(dir.path(), &served);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !spooled(&state).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the spool was not emptied: {:?}\nagent:\n{}",
            spooled(&state),
            agent.output()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
