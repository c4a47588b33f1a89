use clap::Parser;
use std::process::ExitCode;
use streamwatch::cli::{Cli, run};

/// mimalloc instead of glibc's malloc: in the live-ingest profile (one heartbeat per request,
/// docs/BENCHMARKS.md) malloc and free were about a fifth of the server's CPU, many small
/// allocations made on one worker thread and freed on another; mimalloc's per-thread heaps
/// take them for much less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
