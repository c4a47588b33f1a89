//! `streamwatch-loadgen`: the load generator behind `scripts/bench` and docs/BENCHMARKS.md.
//!
//! - `ingest`: N simulated agents push heartbeat batches (SPEC section 3) to
//!   `POST /api/v1/ingest/heartbeats`, closed loop (as fast as the server answers) or open loop
//!   at a target rate. Each agent has its own instance id, agent token and increasing `seq`;
//!   every heartbeat lists every camera with the fields of the SPEC's example.
//!   Each agent holds one keep-alive connection of its own (`raw`: a minimal HTTP/1.1 client,
//!   so that the generator takes little of the CPU the server and PostgreSQL need).
//! - `list`: seeds a tenant with thousands of licenses and cameras in varied states, then times
//!   `GET /api/v1/licenses?...` requests.
//!
//! Both print a human-readable table and, as the last line on standard output, one JSON object
//! with the same numbers (`scripts/bench` reads that line).

mod api;
mod ingest;
mod list;
mod payload;
mod raw;
mod stats;

use clap::{Parser, Subcommand};
use std::io::Write;

#[derive(Debug, Parser)]
#[command(
    name = "streamwatch-loadgen",
    version,
    about = "Load generator for streamwatch heartbeat ingest and the license list"
)]
struct Cli {
    /// Tokio worker threads of the load generator. It shares the machine with the server and
    /// PostgreSQL, so it defaults to one.
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Push heartbeats from simulated agents and report throughput and latency.
    Ingest(ingest::IngestArgs),
    /// Seed a large tenant and time the license list.
    List(list::ListArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("streamwatch-loadgen: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Ingest(args) => ingest::run(args).await,
            Command::List(args) => list::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("streamwatch-loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Writes a line to standard output (the report). A closed pipe is not worth a panic.
pub fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Progress and diagnostics go to standard error, so that standard output is only the report.
pub fn note(line: &str) {
    eprintln!("loadgen: {line}");
}
