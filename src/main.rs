use clap::Parser;
use std::process::ExitCode;
use streamwatch::cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, with the cause chain: what failed and why.
            eprintln!("streamwatch: {e:#}");
            ExitCode::FAILURE
        }
    }
}
