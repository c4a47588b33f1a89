//! `streamwatch-agent check-config FILE` as a real process: one line per mistake on stderr and a
//! non-zero exit, or `ok: N cameras` and exit 0. (The full table of mistakes and their messages
//! is in `config.rs`'s unit tests; this checks the command around it.)

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::{path::PathBuf, process::Command};

fn write_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "streamwatch-agent-check-config-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// (exit code, stdout, stderr lines).
fn check(path: &std::path::Path) -> (i32, String, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_streamwatch-agent"))
        .arg("check-config")
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn a_good_file_says_ok_with_its_camera_count() {
    let path = write_file(
        "agent.toml",
        r#"
[central]
url = "http://127.0.0.1:8080"
token = "swa_x"

[[camera]]
id = "camera-1"
url = "rtsp://10.0.0.5/stream1"

[[camera]]
id = "camera-2"
url = "simulated://?fps=25&faults=stall@30s+5s"
"#,
    );
    let (code, stdout, stderr) = check(&path);
    assert_eq!(
        (code, stdout.as_str()),
        (0, "ok: 2 cameras\n"),
        "{stderr:?}"
    );
}

#[test]
fn a_broken_file_prints_each_mistake_on_its_own_line_and_fails() {
    let path = write_file(
        "broken.toml",
        r#"
[central]
url = "http://127.0.0.1:8080"
token = "swa_x"
tokn = "typo"

[[camera]]
id = "camera-1"
url = "http://10.0.0.5/stream1"
timezone = "Europe/Berln"

[[camera]]
id = "camera-1"
url = "rtsp://10.0.0.6/stream1"
"#,
    );
    let (code, stdout, stderr) = check(&path);
    assert_ne!(code, 0);
    assert_eq!(stdout, "");
    let p = path.display();
    assert_eq!(
        stderr,
        vec![
            format!(
                "{p}: unknown key \"tokn\" in [central] (known: url, token, timeout_seconds, max_batch_heartbeats, retry_max_seconds)"
            ),
            format!(
                "{p}: [[camera]] #1 \"camera-1\": unsupported url scheme \"http\" in \"http://10.0.0.5/stream1\" (use rtsp://, rtsps://, file://, stream-status+http://, stream-status+https:// or simulated://)"
            ),
            format!(
                "{p}: [[camera]] #1 \"camera-1\": invalid timezone \"Europe/Berln\" (use an IANA name such as Europe/Berlin or UTC)"
            ),
            format!("{p}: [[camera]] #2: duplicate camera id \"camera-1\" (also #1)"),
        ]
    );
}

#[test]
fn a_missing_file_is_one_clear_line() {
    let path = std::env::temp_dir().join("streamwatch-agent-no-such-file.toml");
    let (code, _, stderr) = check(&path);
    assert_ne!(code, 0);
    assert_eq!(stderr.len(), 1, "{stderr:?}");
    assert!(stderr[0].contains("cannot read"), "{stderr:?}");
}
