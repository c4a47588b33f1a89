//! The `streamwatch` binary as operators run it: real processes with only the documented
//! environment (SPEC sections 9 and 11). Mistakes must give a clear line and a non-zero exit.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers of tests: a panic is a failed test with its location"
)]

use crate::helpers::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::{process::Stdio, time::Duration};
use tokio::{io::AsyncReadExt, process::Child};

const ADMIN: &str = "cli-test-platform-admin-token-0123456789";
/// How often a process is polled, and at most how many times, before a test gives up on it.
const POLL: Duration = Duration::from_millis(100);
const MAX_POLLS: u32 = 600;

/// `streamwatch` with a clean environment: only PATH, HOME and `env`.
fn streamwatch(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_streamwatch"));
    cmd.env_clear();
    for var in ["PATH", "HOME"] {
        if let Ok(value) = std::env::var(var) {
            cmd.env(var, value);
        }
    }
    cmd.envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

struct Finished {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Finished {
    /// The non-empty lines of stderr.
    fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

/// A running process whose output is collected in the background (so a full pipe never
/// blocks it).
struct Running {
    child: Child,
    stdout: tokio::task::JoinHandle<String>,
    stderr: tokio::task::JoinHandle<String>,
}

fn drain(
    pipe: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes).await;
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn start(mut cmd: tokio::process::Command) -> Running {
    let mut child = cmd.spawn().unwrap();
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    Running {
        child,
        stdout,
        stderr,
    }
}

impl Running {
    fn has_exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Waits for the exit, polling a bounded number of times; a process that does not exit is
    /// killed and the test fails.
    async fn finish(mut self, what: &str) -> Finished {
        for _ in 0..MAX_POLLS {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Finished {
                    success: status.success(),
                    code: status.code(),
                    stdout: self.stdout.await.unwrap(),
                    stderr: self.stderr.await.unwrap(),
                };
            }
            tokio::time::sleep(POLL).await;
        }
        let _ = self.child.kill().await;
        panic!(
            "{what}: the process did not exit; stderr so far: {}",
            self.stderr.await.unwrap_or_default()
        );
    }
}

/// Runs `streamwatch <args>` to its end.
async fn run(args: &[&str], env: &[(&str, &str)]) -> Finished {
    start(streamwatch(args, env))
        .finish(&format!("streamwatch {}", args.join(" ")))
        .await
}

#[sqlx::test(migrations = false)]
async fn serve_runs_the_documented_first_steps_and_stops_cleanly_on_sigterm(pool: PgPool) {
    let db = database_url(&pool);
    let addr = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{addr}");
    let mut server = start(streamwatch(
        &["serve"],
        &[
            ("STREAMWATCH__DATABASE__URL", &db),
            ("STREAMWATCH__AUTH__ADMIN_TOKEN", ADMIN),
            ("STREAMWATCH__HTTP__ADDR", &addr),
        ],
    ));
    let client = reqwest::Client::new();

    let mut ready = false;
    for _ in 0..MAX_POLLS {
        if server.has_exited() {
            break;
        }
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    if !ready {
        let _ = server.child.start_kill();
        let out = server.finish("serve").await;
        panic!(
            "serve never answered /healthz; exit {:?}, stderr: {}",
            out.code, out.stderr
        );
    }

    // Migrations were applied at start (the database was empty).
    let r = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let r = client
        .post(format!("{base}/api/v1/admin/tenants"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "Acme", "timezone": "Europe/Berlin", "owner": {"email": "ops@acme.test", "password": PASSWORD}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let tenant: Value = r.json().await.unwrap();
    assert_eq!(tenant["name"], "Acme");
    assert!(
        tenant["id"]
            .as_str()
            .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()),
        "{tenant}"
    );

    let r = client
        .post(format!("{base}/api/v1/auth/token"))
        .json(&json!({"email": "ops@acme.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let login: Value = r.json().await.unwrap();
    assert_eq!(
        (&login["token_type"], &login["expires_in"]),
        (&json!("Bearer"), &json!(3600))
    );
    let token = login["access_token"].as_str().unwrap();

    let new_license = json!({"key": "LIC-001", "name": "Depot 7", "kind": "direct", "check_interval_seconds": 600});
    let r = client
        .post(format!("{base}/api/v1/licenses"))
        .bearer_auth(token)
        .json(&new_license)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let license: Value = r.json().await.unwrap();
    let license_id = license["id"].as_str().unwrap();
    let r = client
        .post(format!("{base}/api/v1/licenses"))
        .bearer_auth(token)
        .json(&new_license)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "duplicate key");

    let r = client
        .post(format!("{base}/api/v1/licenses/{license_id}/agent-tokens"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let agent: Value = r.json().await.unwrap();
    let secret = agent["token"].as_str().unwrap();
    assert!(secret.starts_with("swa_"), "{agent}");
    assert!(agent["id"].is_string());
    let snippet = agent["config_snippet"].as_str().unwrap();
    assert!(
        snippet.contains("[central]") && snippet.contains(secret),
        "{snippet}"
    );
    assert!(
        snippet.contains(&format!("url = \"{base}\"")),
        "the snippet points at this server: {snippet}"
    );

    let pid = server.child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = server.finish("serve after SIGTERM").await;
    assert!(
        out.success,
        "serve should exit 0 after SIGTERM; exit {:?}, stderr: {}",
        out.code, out.stderr
    );
}

#[sqlx::test(migrations = false)]
async fn migrate_can_be_run_twice_on_a_fresh_database(pool: PgPool) {
    let db = database_url(&pool);
    let applied = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    for run_number in 1..=2 {
        let out = run(&["migrate"], &[("STREAMWATCH__DATABASE__URL", &db)]).await;
        assert!(
            out.success,
            "run {run_number}: exit {:?}, stderr: {}",
            out.code, out.stderr
        );
    }
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count();
    assert_eq!(usize::try_from(applied().await).unwrap(), migrations);
    let licenses: Option<String> = sqlx::query_scalar("SELECT to_regclass('licenses')::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(licenses.as_deref(), Some("licenses"));
}

#[sqlx::test]
async fn tenant_and_user_create_make_accounts_that_can_log_in(pool: PgPool) {
    let db = database_url(&pool);
    let password = "a long cli password";
    let env = [
        ("STREAMWATCH__DATABASE__URL", db.as_str()),
        ("STREAMWATCH_PASSWORD", password),
    ];

    let out = run(
        &[
            "tenant",
            "create",
            "--name",
            "Acme",
            "--timezone",
            "Europe/Berlin",
            "--owner-email",
            "ops@acme.test",
        ],
        &env,
    )
    .await;
    assert!(out.success, "exit {:?}, stderr: {}", out.code, out.stderr);
    let created: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", out.stdout));
    assert_eq!(created["tenant"]["name"], "Acme");
    assert_eq!(created["tenant"]["timezone"], "Europe/Berlin");
    assert_eq!(created["owner"]["email"], "ops@acme.test");
    assert_eq!(created["owner"]["role"], "owner");
    assert!(!out.stdout.contains(password), "the password is printed");
    let tenant_id = created["tenant"]["id"].as_str().unwrap();

    let out = run(
        &[
            "user",
            "create",
            "--tenant",
            tenant_id,
            "--email",
            "v@acme.test",
            "--role",
            "viewer",
        ],
        &env,
    )
    .await;
    assert!(out.success, "exit {:?}, stderr: {}", out.code, out.stderr);
    let user: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", out.stdout));
    assert_eq!(
        (&user["email"], &user["role"]),
        (&json!("v@acme.test"), &json!("viewer"))
    );

    let app = TestApp::spawn(pool).await;
    let owner = app.login("ops@acme.test", password).await;
    let me = app.get("/api/v1/me", &owner).await;
    assert_eq!(me.body["tenant"]["id"], tenant_id);
    let viewer = app.login("v@acme.test", password).await;
    assert_eq!(app.get("/api/v1/me", &viewer).await.body["role"], "viewer");
}

#[sqlx::test]
async fn bad_cli_input_gets_one_clear_line_a_failure_exit_and_writes_nothing(pool: PgPool) {
    let db = database_url(&pool);
    let good = "a long cli password";
    let db = db.as_str();
    let with_password = move |password: &'static str| {
        [
            ("STREAMWATCH__DATABASE__URL", db),
            ("STREAMWATCH_PASSWORD", password),
        ]
    };
    let out = run(
        &[
            "tenant",
            "create",
            "--name",
            "Acme",
            "--owner-email",
            "ops@acme.test",
        ],
        &with_password(good),
    )
    .await;
    assert!(out.success, "setup: {}", out.stderr);
    let created: Value = serde_json::from_str(&out.stdout).unwrap();
    let tenant_id = created["tenant"]["id"].as_str().unwrap().to_owned();
    let app = TestApp::spawn(pool).await;
    let before = app.snapshot().await;

    // (what, arguments, password, text the one error line must contain)
    let cases: [(&str, Vec<&str>, &'static str, &str); 9] = [
        (
            "unknown time zone",
            vec![
                "tenant",
                "create",
                "--name",
                "Mars",
                "--timezone",
                "Mars/Base",
                "--owner-email",
                "ops@mars.test",
            ],
            good,
            "--timezone",
        ),
        (
            "invalid owner e-mail",
            vec![
                "tenant",
                "create",
                "--name",
                "Mars",
                "--owner-email",
                "ops-at-mars",
            ],
            good,
            "--owner-email",
        ),
        (
            "empty tenant name",
            vec![
                "tenant",
                "create",
                "--name",
                " ",
                "--owner-email",
                "ops@mars.test",
            ],
            good,
            "--name",
        ),
        (
            "password too short",
            vec![
                "tenant",
                "create",
                "--name",
                "Mars",
                "--owner-email",
                "ops@mars.test",
            ],
            "short",
            "password",
        ),
        (
            "owner e-mail that already has an account",
            vec![
                "tenant",
                "create",
                "--name",
                "Copy",
                "--owner-email",
                "OPS@acme.test",
            ],
            good,
            "already has an account",
        ),
        (
            "user with an unknown role",
            vec![
                "user",
                "create",
                "--tenant",
                &tenant_id,
                "--email",
                "v@acme.test",
                "--role",
                "god",
            ],
            good,
            "--role",
        ),
        (
            "user in a tenant that does not exist",
            vec![
                "user",
                "create",
                "--tenant",
                "00000000-0000-0000-0000-000000000000",
                "--email",
                "v@acme.test",
            ],
            good,
            "--tenant",
        ),
        (
            "user with a taken e-mail",
            vec![
                "user",
                "create",
                "--tenant",
                &tenant_id,
                "--email",
                "ops@acme.test",
            ],
            good,
            "already has an account",
        ),
        (
            "user password too short",
            vec![
                "user",
                "create",
                "--tenant",
                &tenant_id,
                "--email",
                "v@acme.test",
            ],
            "123456789",
            "password",
        ),
    ];
    for (what, args, password, expected) in cases {
        let out = run(&args, &with_password(password)).await;
        assert!(!out.success, "{what}: exit 0; stdout: {}", out.stdout);
        let lines = out.error_lines();
        assert_eq!(
            lines.len(),
            1,
            "{what}: one line on stderr, got: {}",
            out.stderr
        );
        assert!(
            lines[0].contains(expected),
            "{what}: the line should mention {expected:?}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains(password),
            "{what}: the password is printed"
        );
        assert_eq!(
            app.snapshot().await,
            before,
            "{what}: something was written"
        );
    }

    // Flags clap itself refuses also fail clearly.
    let out = run(
        &[
            "user",
            "create",
            "--tenant",
            "not-a-uuid",
            "--email",
            "v@acme.test",
        ],
        &with_password(good),
    )
    .await;
    assert!(!out.success);
    assert!(out.stderr.contains("--tenant"), "{}", out.stderr);
    // No password anywhere (empty standard input): refused.
    let out = run(
        &[
            "tenant",
            "create",
            "--name",
            "Mars",
            "--owner-email",
            "ops@mars.test",
        ],
        &[("STREAMWATCH__DATABASE__URL", db)],
    )
    .await;
    assert!(!out.success);
    assert!(
        out.error_lines()
            .last()
            .is_some_and(|l| l.contains("password")),
        "{}",
        out.stderr
    );
    assert_eq!(app.snapshot().await, before);
}

#[sqlx::test]
async fn serve_in_production_without_a_jwt_secret_refuses_to_start(pool: PgPool) {
    let db = database_url(&pool);
    let addr = format!("127.0.0.1:{}", free_port());
    let out = run(
        &["serve"],
        &[
            ("STREAMWATCH__DATABASE__URL", &db),
            ("STREAMWATCH__AUTH__ADMIN_TOKEN", ADMIN),
            ("STREAMWATCH__HTTP__ADDR", &addr),
            ("STREAMWATCH__ENVIRONMENT", "production"),
        ],
    )
    .await;
    assert!(!out.success, "started without a JWT secret in production");
    assert!(
        out.stderr.contains("STREAMWATCH__AUTH__JWT_SECRET"),
        "{}",
        out.stderr
    );

    // A secret that is too short is refused the same way.
    let out = run(
        &["serve"],
        &[
            ("STREAMWATCH__DATABASE__URL", &db),
            ("STREAMWATCH__HTTP__ADDR", &addr),
            ("STREAMWATCH__ENVIRONMENT", "production"),
            ("STREAMWATCH__AUTH__JWT_SECRET", "too-short"),
        ],
    )
    .await;
    assert!(
        !out.success,
        "started with a short JWT secret in production"
    );
    assert!(
        out.stderr.contains("STREAMWATCH__AUTH__JWT_SECRET"),
        "{}",
        out.stderr
    );
}

#[sqlx::test]
async fn serve_with_a_bad_listen_address_fails_with_a_clear_message(pool: PgPool) {
    let db = database_url(&pool);
    let out = run(
        &["serve"],
        &[
            ("STREAMWATCH__DATABASE__URL", &db),
            ("STREAMWATCH__HTTP__ADDR", "not-an-addr"),
        ],
    )
    .await;
    assert!(!out.success);
    let lines = out.error_lines();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].to_ascii_uppercase().contains("HTTP.ADDR") && lines[0].contains("STREAMWATCH__"),
        "{}",
        out.stderr
    );

    // An address that is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(
        &["serve"],
        &[
            ("STREAMWATCH__DATABASE__URL", &db),
            ("STREAMWATCH__HTTP__ADDR", &addr),
        ],
    )
    .await;
    assert!(!out.success);
    assert!(
        out.error_lines()
            .last()
            .is_some_and(|l| l.contains("STREAMWATCH__HTTP__ADDR") && l.contains(&addr)),
        "{}",
        out.stderr
    );
}
