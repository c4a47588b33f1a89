//! `streamwatch demo`, run as a newcomer would: no database configured, a fresh folder. It must
//! start its own PostgreSQL, show the five sites in their expected states within a minute,
//! e-mail about the quiet one into the mailbox folder, stop cleanly on Ctrl-C (its agent
//! processes too), and reuse the folder on a second run. Without the agent binary it must say
//! how to get one, in one line, before it starts anything.

use serde_json::Value;
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        for _ in 0..100 {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
    }
}

/// The agent binary the demo runs: `STREAMWATCH_AGENT_BIN` when set; else the one next to the
/// server binary, which a workspace run (`cargo nextest run --workspace`, `scripts/test`)
/// builds along with it; else (this package alone, never built) built now with cargo. A
/// binary already next to the server is used as it is, even if the agent's code changed since.
fn agent_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("STREAMWATCH_AGENT_BIN") {
        return PathBuf::from(path);
    }
    let beside = Path::new(env!("CARGO_BIN_EXE_streamwatch")).with_file_name("streamwatch-agent");
    if beside.is_file() {
        return beside;
    }
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "-p",
            "streamwatch-agent",
            "--bin",
            "streamwatch-agent",
        ])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "building streamwatch-agent failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact" && m["target"]["name"] == "streamwatch-agent"
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the agent binary it built")
}

fn start(dir: &Path, port: u16) -> Demo {
    let child = Command::new(env!("CARGO_BIN_EXE_streamwatch"))
        .args(["demo", "--dir"])
        .arg(dir)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("STREAMWATCH_AGENT_BIN", agent_binary())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the streamwatch binary runs");
    Demo(child)
}

async fn statuses(client: &reqwest::Client, base: &str) -> Option<Vec<(String, String)>> {
    let login = client
        .post(format!("{base}/api/v1/auth/token"))
        .json(
            &serde_json::json!({"email": "demo@streamwatch.test", "password": "streamwatch-demo"}),
        )
        .send()
        .await
        .ok()?;
    let token = login.json::<Value>().await.ok()?["access_token"]
        .as_str()?
        .to_owned();
    let list: Value = client
        .get(format!("{base}/api/v1/licenses?sort=key"))
        .bearer_auth(token)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some(
        list["items"]
            .as_array()?
            .iter()
            .map(|i| {
                (
                    i["key"].as_str().unwrap_or("").to_owned(),
                    i["status"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect(),
    )
}

fn expected() -> Vec<(String, String)> {
    [
        ("DEMO-1", "all_active"),
        ("DEMO-2", "all_active"),
        ("DEMO-3", "partially_active"),
        ("DEMO-4", "inactive"),
        ("DEMO-5", "not_installed"),
    ]
    .into_iter()
    .map(|(k, s)| (k.to_owned(), s.to_owned()))
    .collect()
}

/// Polls (bounded: about a minute) until the five sites show their expected states.
async fn wait_for_states(client: &reqwest::Client, base: &str) -> Vec<(String, String)> {
    let mut last = Vec::new();
    for _ in 0..120 {
        if let Some(now) = statuses(client, base).await {
            if now == expected() {
                return now;
            }
            last = now;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    last
}

fn emails(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("mailbox"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}

/// The running processes whose command line names a configuration file in `<dir>/agents/`.
fn agent_pids(dir: &Path) -> Vec<u32> {
    let agents = dir.canonicalize().unwrap().join("agents");
    let needle = agents.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

#[tokio::test]
async fn the_demo_starts_its_own_postgresql_shows_five_sites_and_e_mails_about_the_quiet_one() {
    let dir = std::env::temp_dir().join(format!("streamwatch-demo-test-{}", uuid::Uuid::new_v4()));
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let demo = start(&dir, port);
    assert_eq!(
        wait_for_states(&client, &base).await,
        expected(),
        "the five sites did not reach their states within a minute"
    );
    assert_eq!(
        emails(&dir),
        1,
        "the quiet site's e-mail is in the mailbox folder"
    );
    let eml = std::fs::read_dir(dir.join("mailbox"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(eml).unwrap();
    assert!(
        text.contains("Night Shift Store") && text.contains("DEMO-4"),
        "{text}"
    );
    let agents = agent_pids(&dir);
    assert_eq!(
        agents.len(),
        3,
        "one agent process per reporting site (DEMO-1..3)"
    );
    drop(demo);

    // Ctrl-C stopped the agents.
    for pid in &agents {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "agent {pid} still running after the demo stopped"
        );
    }

    // Ctrl-C stopped PostgreSQL too: nothing answers any more.
    assert!(statuses(&client, &base).await.is_none());
    let pid_file = dir.join("pg").join("data").join("postmaster.pid");
    assert!(
        !pid_file.exists(),
        "PostgreSQL still running after the demo stopped"
    );

    // A second run reuses the folder: same tenant, same sites, no second e-mail.
    let demo = start(&dir, port);
    assert_eq!(wait_for_states(&client, &base).await, expected());
    assert_eq!(emails(&dir), 1);
    drop(demo);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_an_agent_binary_the_demo_says_how_to_get_one_in_one_line_and_starts_nothing() {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "streamwatch-demo-no-agent-{}",
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&scratch).unwrap();
    // The server alone in a folder (a hard link: the agent is not next to the path it runs
    // from), with that folder as the whole PATH and no CARGO: nowhere to find or build one.
    let server = scratch.join("streamwatch");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_streamwatch"), &server).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_streamwatch"), &server).unwrap();
    }
    let missing = scratch.join("no-such-agent");
    let cases: [(Option<&Path>, &str, &str); 2] = [
        (
            None,
            "cargo build -p streamwatch-agent",
            "nowhere to be found: says how to build it",
        ),
        (
            Some(&missing),
            "STREAMWATCH_AGENT_BIN=",
            "named but missing: says which variable is wrong",
        ),
    ];
    for (agent_bin, expected, case) in cases {
        let demo_dir = scratch.join("demo");
        let mut cmd = Command::new(&server);
        cmd.args(["demo", "--dir"])
            .arg(&demo_dir)
            .env_clear()
            .env("PATH", &scratch);
        if let Some(path) = agent_bin {
            cmd.env("STREAMWATCH_AGENT_BIN", path);
        }
        let out = cmd.output().expect("the streamwatch binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case}: exit status {}", out.status);
        assert_eq!(stderr.lines().count(), 1, "{case}: one line, got {stderr}");
        assert!(stderr.contains(expected), "{case}: {stderr}");
        assert!(
            !demo_dir.exists(),
            "{case}: the demo started before the check"
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
