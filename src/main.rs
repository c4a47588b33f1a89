use clap::Parser;
use std::process::ExitCode;
use streamwatch::cli::{Cli, run};

/// mimalloc instead of glibc's malloc: in the live-ingest profile (one heartbeat per request,
/// docs/BENCHMARKS.md) glibc's malloc and free (with its consolidation and chunk unlinking)
/// were about a fifth of the server's CPU for the many small, short-lived allocations of each
/// request; with mimalloc they no longer stand out.
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
