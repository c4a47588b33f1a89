//! `streamwatch demo`: the one-command first run (SPEC section 9).
//!
//! 1. PostgreSQL: the configured URL, else a private cluster in `<folder>/pg` started from the
//!    installed server binaries (`private_pg`), stopped on exit.
//! 2. Migrations, a demo tenant and its owner (kept across runs).
//! 3. The server with the scheduler, the simulated clock, and the development mailbox in
//!    `<folder>/mailbox`.
//! 4. Five sites: two All Active, one Partially Active (a camera that never sends frames:
//!    starving), one that went quiet (it reported once, then the simulated clock moves past its
//!    inactivity interval: Inactive, and an e-mail lands in the mailbox), and one never
//!    installed. The three that report run the real agent: one `streamwatch-agent` child
//!    process each, with its configuration and log in `<folder>/agents/`. The server does not
//!    link the agent's code; [`agent_binary`] says where the binary comes from.
//!
//! Ctrl-C stops the agents, the server and PostgreSQL.

use crate::{
    accounts,
    auth::token::{self, TokenKind},
    config::{Environment, Settings},
    db,
    domain::{
        CheckInterval, DisplayName, EmailAddress, LicenseKey, LicenseKind, Password, TimeZoneName,
        notify_settings::{self, SettingsDraft},
    },
    ingest::batch::{self, AgentLicense, IngestRequest},
    notify,
    private_pg::PrivatePostgres,
    startup::{self, Application},
    store::{agent_tokens, licenses, users},
};
use anyhow::Context;
use chrono::Utc;
use secrecy::SecretString;
use sqlx::PgPool;
use std::{
    ffi::OsString,
    net::SocketAddr,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const DEMO_EMAIL: &str = "demo@streamwatch.test";
pub const DEMO_PASSWORD: &str = "streamwatch-demo";
const DEMO_ADMIN_TOKEN: &str = "demo-admin-token";
/// The agent's binary, and the variable that names it explicitly.
const AGENT_BIN: &str = "streamwatch-agent";
const AGENT_BIN_ENV: &str = "STREAMWATCH_AGENT_BIN";
/// How long an agent gets to stop after SIGTERM before it is killed.
const AGENT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A camera of a demo agent: id and source URL.
type DemoCamera = (&'static str, &'static str);

/// The five demo sites: key, name, and the agent's cameras (`None`: never installed).
const SITES: &[(&str, &str, Option<&[DemoCamera]>)] = &[
    (
        "DEMO-1",
        "Harbour Gate",
        Some(&[
            ("gate-north", "simulated://?fps=25"),
            ("gate-south", "simulated://?fps=25"),
        ]),
    ),
    (
        "DEMO-2",
        "Main Depot",
        Some(&[
            ("dock-1", "simulated://?fps=15"),
            ("dock-2", "simulated://?fps=15&picture=frozen"),
            ("yard", "simulated://?fps=10"),
        ]),
    ),
    (
        "DEMO-3",
        "North Yard",
        Some(&[
            ("entrance", "simulated://?fps=25"),
            ("fence", "simulated://?fps=25&faults=stall@0s"),
        ]),
    ),
    (
        "DEMO-4",
        "Night Shift Store",
        Some(&[("till", "simulated://?fps=25")]),
    ),
    ("DEMO-5", "New Branch", None),
];
/// The site that goes quiet.
const QUIET: &str = "DEMO-4";

pub struct DemoOptions {
    pub folder: PathBuf,
    pub addr: SocketAddr,
}

pub async fn run(mut settings: Settings, options: DemoOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        settings.environment != Environment::Production,
        "the demo does not run in production (STREAMWATCH__ENVIRONMENT)"
    );
    // Before anything starts: without the agent there is no demo.
    let agent_bin = agent_binary().await?;
    std::fs::create_dir_all(&options.folder)
        .with_context(|| format!("creating {}", options.folder.display()))?;
    let folder = options.folder.canonicalize()?;
    let private = match settings.database.url {
        Some(_) => None,
        None => {
            let pg = tokio::task::spawn_blocking({
                let folder = folder.clone();
                move || PrivatePostgres::start(&folder)
            })
            .await??;
            settings.database.url = Some(SecretString::from(pg.url.clone()));
            Some(pg)
        }
    };
    let result = run_with_database(settings, &options, &folder, &agent_bin).await;
    if let Some(pg) = private {
        eprintln!("demo: stopping PostgreSQL");
        tokio::task::spawn_blocking(move || pg.stop()).await?;
    }
    result
}

async fn run_with_database(
    mut settings: Settings,
    options: &DemoOptions,
    folder: &Path,
    agent_bin: &Path,
) -> anyhow::Result<()> {
    settings.http.addr = options.addr;
    settings.clock.simulated = true;
    settings.smtp.mailbox_dir = folder.join("mailbox").to_string_lossy().into_owned();
    if settings.auth.admin_token.is_none() {
        settings.auth.admin_token = Some(SecretString::from(DEMO_ADMIN_TOKEN.to_owned()));
    }
    if settings.auth.jwt_secret.is_none() {
        // Kept in the folder so that a second run keeps people logged in.
        let path = folder.join("jwt-secret");
        let secret = match std::fs::read_to_string(&path) {
            Ok(s) if s.len() >= 32 => s,
            _ => {
                let fresh = token::generate(TokenKind::ApiKey).plain;
                std::fs::write(&path, &fresh)?;
                fresh
            }
        };
        settings.auth.jwt_secret = Some(SecretString::from(secret));
    }
    let pool = db::connect(&settings).await?;
    db::migrate(&pool).await?;
    let tenant_id = demo_tenant(&pool).await?;
    let app = Application::build_with_pool(settings, pool.clone()).await?;
    let state = app.state().clone();
    let url = format!("http://{}:{}", options.addr.ip(), app.port());
    state.clock.refresh(&pool).await?;
    // History partitions before the first heartbeat (serve does this at start too).
    crate::store::heartbeats::maintain(
        &pool,
        state.clock.now(),
        state.settings.retention.heartbeat_days,
    )
    .await?;

    // Sites and their agent tokens (fresh tokens each run; the old ones are revoked).
    let mut agents = Vec::new();
    for (key, name, cameras) in SITES {
        let license_id = demo_license(&pool, tenant_id, key, name).await?;
        let Some(cameras) = cameras else { continue };
        let token = fresh_agent_token(&pool, tenant_id, license_id).await?;
        agents.push((key, license_id, token, *cameras));
    }

    // The quiet site: one heartbeat "an hour ago", notifications on, then time moves on.
    if let Some((_, license_id, _, cameras)) = agents.iter().find(|a| *a.0 == QUIET) {
        go_quiet(&state, tenant_id, *license_id, cameras).await?;
    }

    let shutdown = CancellationToken::new();
    let mut server = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            app.run_until(async move { shutdown.cancelled().await })
                .await
        })
    };
    let agents_dir = folder.join("agents");
    let mut tasks = Vec::new();
    for (key, _, token, cameras) in agents.iter().filter(|a| *a.0 != QUIET) {
        let config = agent_config(&url, token, &agents_dir.join(key), cameras);
        let child = start_agent(agent_bin, &agents_dir, key, &config)?;
        tasks.push(tokio::spawn(supervise_agent(
            key,
            child,
            agents_dir.join(format!("{key}.log")),
            shutdown.clone(),
        )));
    }

    eprintln!(
        "\nstreamwatch demo is running\n\n  open      {url}/\n  log in    {DEMO_EMAIL} / {DEMO_PASSWORD}\n  e-mails   {}\n  admin     Bearer {}\n  data      {}\n  agents    {}\n\nFive sites: DEMO-1 and DEMO-2 all active, DEMO-3 partially active (a starving camera),\nDEMO-4 inactive (and e-mailed), DEMO-5 never installed. Ctrl-C stops everything.\n",
        folder.join("mailbox").display(),
        if state.admin_token.is_some() {
            "(STREAMWATCH__AUTH__ADMIN_TOKEN, or demo-admin-token)"
        } else {
            "-"
        },
        folder.display(),
        agents_dir.join("<site>.log").display(),
    );
    // Until Ctrl-C, or until the server fails (then say why and stop the rest).
    let server_result = tokio::select! {
        () = startup::shutdown_signal() => None,
        r = &mut server => Some(r),
    };
    shutdown.cancel();
    for task in tasks {
        // A task that panicked dropped its child, which kills the process.
        let _ = task.await;
    }
    match server_result {
        Some(r) => r?,
        None => server.await?,
    }
}

async fn demo_tenant(pool: &PgPool) -> anyhow::Result<Uuid> {
    let mut conn = pool.acquire().await?;
    if let Some(existing) = users::find_login(&mut conn, DEMO_EMAIL).await? {
        return Ok(existing.tenant_id);
    }
    let (tenant, _) = accounts::create_tenant(
        pool,
        &DisplayName::parse("Demo Sites").map_err(anyhow::Error::msg)?,
        &TimeZoneName::parse("Europe/Berlin").map_err(anyhow::Error::msg)?,
        &EmailAddress::parse(DEMO_EMAIL).map_err(anyhow::Error::msg)?,
        &Password::parse(DEMO_PASSWORD).map_err(anyhow::Error::msg)?,
    )
    .await?;
    Ok(tenant.id)
}

async fn demo_license(
    pool: &PgPool,
    tenant_id: Uuid,
    key: &str,
    name: &str,
) -> anyhow::Result<Uuid> {
    let mut tx = db::begin_tenant(pool, tenant_id).await?;
    let id = match licenses::find_by_key(&mut tx, tenant_id, key).await? {
        Some(id) => id,
        None => {
            let new = licenses::NewLicense {
                key: LicenseKey::parse(key).map_err(anyhow::Error::msg)?,
                name: DisplayName::parse(name).map_err(anyhow::Error::msg)?,
                kind: LicenseKind::Direct,
                // One minute: the demo's states settle within a minute.
                check_interval: CheckInterval::from_seconds(60).map_err(anyhow::Error::msg)?,
                tags: Vec::new(),
            };
            licenses::insert(&mut tx, tenant_id, &new).await?.id
        }
    };
    tx.commit().await?;
    Ok(id)
}

async fn fresh_agent_token(
    pool: &PgPool,
    tenant_id: Uuid,
    license_id: Uuid,
) -> anyhow::Result<String> {
    let mut tx = db::begin_tenant(pool, tenant_id).await?;
    agent_tokens::revoke_all(&mut tx, tenant_id, license_id).await?;
    let secret = token::generate(TokenKind::Agent);
    agent_tokens::insert(&mut tx, tenant_id, license_id, "demo agent", &secret).await?;
    tx.commit().await?;
    Ok(secret.plain)
}

/// The quiet site reports once, notifications go on for it, and the simulated clock moves past
/// its inactivity interval (the control plane "running" meanwhile); one sweep then e-mails.
async fn go_quiet(
    state: &crate::app::AppState,
    tenant_id: Uuid,
    license_id: Uuid,
    cameras: &[(&str, &str)],
) -> anyhow::Result<()> {
    let pool = &state.pool;
    if crate::store::instances::any_for_license(pool, tenant_id, license_id).await? {
        // A second run: the episode is open and its e-mail was sent; time just goes on.
        return Ok(());
    }
    let now = state.clock.now();
    let report = serde_json::json!({"status": "running", "health": 97, "is_live": true, "last_frame_at": now, "received_fps": 25.0, "expected_fps": 25.0, "source": "simulated"});
    let cams: serde_json::Map<String, serde_json::Value> = cameras
        .iter()
        .map(|(id, _)| ((*id).to_owned(), report.clone()))
        .collect();
    let batch = serde_json::from_value(serde_json::json!({
        "agent": {"instance_id": Uuid::new_v4(), "version": env!("CARGO_PKG_VERSION"), "hostname": "night-shift-box"},
        "heartbeats": [{"seq": 1, "observed_at": now, "cameras": cams}]
    }))?;
    batch::write_batch(
        pool,
        &[&IngestRequest {
            token_id: None,
            license: AgentLicense {
                tenant_id,
                license_id,
            },
            batch,
            received_at: now,
        }],
        state.settings.ingest.max_instances_per_license,
    )
    .await?;
    let draft = SettingsDraft {
        enabled: true,
        inactivity_interval_seconds: 3600,
        notification_interval_seconds: 28_800,
        recipients: vec!["night-manager@demo.test".to_owned()],
        notify_on_recovery: true,
        channels: Vec::new(),
        escalation: Vec::new(),
        partial_enabled: false,
        partial_after_seconds: notify_settings::DEFAULT_PARTIAL_AFTER_SECONDS.into(),
    };
    let settings = notify_settings::parse(&draft)
        .map_err(|p| anyhow::anyhow!("demo notification settings: {p:?}"))?;
    let mut tx = db::begin_tenant(pool, tenant_id).await?;
    crate::store::notifications::upsert_settings(
        &mut tx,
        tenant_id,
        license_id,
        &settings.into(),
        now,
    )
    .await?;
    tx.commit().await?;
    let before = state.clock.now();
    notify::alive::record(pool, before, None).await?;
    let after = state
        .clock
        .advance(pool, chrono::Duration::minutes(61))
        .await?
        .unwrap_or(before);
    notify::alive::record(pool, after, Some(before)).await?;
    let report = notify::scheduler::tick(&state.scheduler_deps()).await?;
    tracing::info!(emails = report.delivery.emails_sent, at = %Utc::now(), "demo: the quiet site was e-mailed");
    Ok(())
}

fn agent_config(url: &str, token: &str, state_dir: &Path, cameras: &[(&str, &str)]) -> String {
    let mut toml = format!(
        "[central]\nurl = \"{url}\"\ntoken = \"{token}\"\n\n[agent]\nstate_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\nheartbeat_interval_seconds = 5\n",
        state_dir.display()
    );
    for (id, camera_url) in cameras {
        toml.push_str(&format!(
            "\n[[camera]]\nid = \"{id}\"\nurl = \"{camera_url}\"\ntimezone = \"Europe/Berlin\"\n"
        ));
    }
    toml
}

/// Where the `streamwatch-agent` binary is, in this order:
/// - `STREAMWATCH_AGENT_BIN`, when set;
/// - under `cargo run` (cargo sets `CARGO` for the program it runs): built from this workspace
///   with that cargo, in the profile of this program, so that the agent matches the source
///   (a no-op when it is up to date);
/// - next to this program (`target/<profile>/`, or an installation's `bin/`);
/// - on `PATH`.
///
/// Otherwise the demo stops with one line saying how to get the binary.
async fn agent_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(AGENT_BIN_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        anyhow::ensure!(
            is_executable(&path),
            "{AGENT_BIN_ENV}={} is not an executable file",
            path.display()
        );
        return Ok(path);
    }
    let exe = std::env::current_exe().context("locating the streamwatch binary")?;
    if let Some(cargo) = std::env::var_os("CARGO") {
        return build_agent(cargo, &exe).await;
    }
    let beside = exe.with_file_name(AGENT_BIN);
    if is_executable(&beside) {
        return Ok(beside);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(AGENT_BIN))
        .find(|path| is_executable(path));
    on_path.ok_or_else(|| {
        anyhow::anyhow!(
            "the demo runs its sites with the agent binary `{AGENT_BIN}`, which is neither next to {} nor on PATH: build it with `cargo build -p streamwatch-agent` (or start the demo with `cargo run -- demo`), or set {AGENT_BIN_ENV}",
            exe.display()
        )
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `cargo build -p streamwatch-agent` with the cargo that runs this program, in its profile;
/// returns the binary cargo reports (wherever the target directory is).
async fn build_agent(cargo: OsString, exe: &Path) -> anyhow::Result<PathBuf> {
    let release = exe
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|dir| dir == "release");
    // `cargo run` sets it to this package, the workspace root.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("Cargo.toml");
    eprintln!(
        "demo: building the agent with `cargo build -p streamwatch-agent{}`",
        if release { " --release" } else { "" }
    );
    let mut build = Command::new(&cargo);
    build
        .args(["build", "-p", "streamwatch-agent", "--bin", AGENT_BIN])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest);
    if release {
        build.arg("--release");
    }
    // Cargo's progress and errors go to the terminal; its JSON messages come here.
    let out = build
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .await
        .with_context(|| format!("running {}", Path::new(&cargo).display()))?;
    anyhow::ensure!(
        out.status.success(),
        "building the agent failed ({}): fix the build, or set {AGENT_BIN_ENV} to an agent binary",
        out.status
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == AGENT_BIN)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo built the agent but did not say where its binary is")
}

/// Writes a site's configuration to `<agents>/<key>.toml` (it holds the site's token: mode
/// 0600) and starts `streamwatch-agent run` on it, its output going to `<agents>/<key>.log`.
fn start_agent(bin: &Path, agents: &Path, key: &str, config: &str) -> anyhow::Result<Child> {
    std::fs::create_dir_all(agents).with_context(|| format!("creating {}", agents.display()))?;
    let config_path = agents.join(format!("{key}.toml"));
    let log_path = agents.join(format!("{key}.log"));
    let write_config = || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&config_path)?;
        file.write_all(config.as_bytes())
    };
    write_config().with_context(|| format!("writing {}", config_path.display()))?;
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    Command::new(bin)
        .arg("run")
        .arg("--config")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Whatever way the demo ends, dropping the child kills the process.
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} for {key}", bin.display()))
}

/// Until `shutdown`: says so if the agent exits on its own. At `shutdown`: SIGTERM (the agent
/// finishes what it is doing), then SIGKILL if it has not stopped within
/// [`AGENT_STOP_TIMEOUT`].
async fn supervise_agent(
    key: &'static str,
    mut child: Child,
    log: PathBuf,
    shutdown: CancellationToken,
) {
    tokio::select! {
        biased;
        () = shutdown.cancelled() => {}
        status = child.wait() => {
            match status {
                // A signal of its own (Ctrl-C in the terminal reaches the agents too).
                Ok(status) if status.success() => {
                    tracing::info!(site = key, "a demo agent stopped");
                }
                status => {
                    tracing::error!(site = key, status = ?status, log = %log.display(), "a demo agent stopped; its log says why");
                }
            }
            return;
        }
    }
    if let Some(pid) = child.id() {
        // No signal API without `unsafe`; `kill` is everywhere the demo runs.
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    match tokio::time::timeout(AGENT_STOP_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(status) => {
            tracing::warn!(site = key, status = ?status, log = %log.display(), "a demo agent stopped with an error");
        }
        Err(_) => {
            tracing::warn!(
                site = key,
                "a demo agent did not stop within 10 s; killing it"
            );
            let _ = child.kill().await;
        }
    }
}
