//! `streamwatch demo`, run as a newcomer would: no database configured, a fresh folder. It must
//! start its own PostgreSQL, show the five sites in their expected states within a minute,
//! e-mail about the quiet one into the mailbox folder, stop cleanly on Ctrl-C, and reuse the
//! folder on a second run.

use serde_json::Value;
use std::{
    net::TcpListener,
    path::Path,
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

fn start(dir: &Path, port: u16) -> Demo {
    let child = Command::new(env!("CARGO_BIN_EXE_streamwatch"))
        .args(["demo", "--dir"])
        .arg(dir)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("RUST_LOG", "warn")
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
    drop(demo);

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
