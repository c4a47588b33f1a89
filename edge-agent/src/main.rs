//! `streamwatch-agent`: thin. Reads the configuration, starts logging, runs the agent until
//! SIGINT or SIGTERM. Everything else lives in the library (`streamwatch_agent`).

use clap::{Parser, Subcommand};
use std::{io::Write, path::PathBuf, process::ExitCode};
use streamwatch_agent::config::Config;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(name = "streamwatch-agent", version, about = "streamwatch edge agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent.
    Run {
        /// The configuration file (TOML; see docs/AGENT.md).
        #[arg(long)]
        config: PathBuf,
    },
    /// Check a configuration file: one line per mistake and a non-zero exit, or `ok: N cameras`.
    CheckConfig { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match load(&file) {
            Some(config) => {
                let _ = writeln!(std::io::stdout(), "ok: {} cameras", config.cameras.len());
                ExitCode::SUCCESS
            }
            None => ExitCode::FAILURE,
        },
        Command::Run { config } => match load(&config) {
            Some(config) => run(config),
            None => ExitCode::FAILURE,
        },
    }
}

/// The checked configuration, or `None` after printing every mistake, one line each.
fn load(path: &std::path::Path) -> Option<Config> {
    match Config::from_file(path) {
        Ok(config) => Some(config),
        Err(e) => {
            let mut stderr = std::io::stderr().lock();
            for problem in &e.problems {
                let _ = writeln!(stderr, "{}: {problem}", path.display());
            }
            None
        }
    }
}

fn run(config: Config) -> ExitCode {
    // Logs go to stderr (journald under systemd), in colour only on a terminal.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    // Two workers are plenty for hundreds of cameras without decoding; the agent shares the
    // machine with the site's own software.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("streamwatch-agent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        streamwatch_agent::agent::run(config, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("streamwatch-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("signal received");
    shutdown.cancel();
}
