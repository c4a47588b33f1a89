//! `streamwatch-agent`: the edge agent. This is the crate's skeleton: the sources, health,
//! local Heartbeat API, spool and webhooks arrive with their own issue (docs/ARCHITECTURE.md).

use clap::{Parser, Subcommand};
use std::{path::PathBuf, process::ExitCode};

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
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a configuration file.
    CheckConfig { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let version = streamwatch_protocol::PROTOCOL_VERSION;
    match cli.command {
        Command::Run { .. } | Command::CheckConfig { .. } => {
            eprintln!(
                "streamwatch-agent: not implemented yet in this build (protocol v{version}); see docs/ARCHITECTURE.md"
            );
            ExitCode::FAILURE
        }
    }
}
