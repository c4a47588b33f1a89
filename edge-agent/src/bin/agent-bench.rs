//! `agent-bench`: the RTSP ingest of the agent alone, for the benchmark of issue 4
//! (`scripts/bench-agent` runs it next to the ffmpeg reference).
//!
//! Spawns one [`sources::rtsp::run`] task per camera, exactly as the agent does, with nothing
//! else (no HTTP, no pushing), lets them connect during `--warmup`, then measures this process
//! over `--seconds`: CPU time (utime + stime from `/proc/self/stat`), VmRSS and VmHWM (from
//! `/proc/self/status`), and each camera's frames. Prints one JSON object on stdout.
//!
//! With `--snapshots SECONDS` each camera also gets the agent's snapshot sampler
//! ([`Sampler`]), as `agent run` starts it: one keyframe decoded, classified, encoded as JPEG
//! and written to `--snapshot-dir` per camera and interval (issue 19).

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Parser;
use serde_json::json;
use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};
use streamwatch_agent::{
    metrics::CameraMetrics,
    picture::PictureSettings,
    snapshots::{CameraPicture, Sampler},
    sources::rtsp::{self, RtspOptions, Transport},
};
use streamwatch_protocol::CameraStatus;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(about = "Measure the agent's RTSP ingest: CPU and memory for N cameras")]
struct Args {
    /// Camera URL; `{}` is replaced by the camera number (0..count).
    #[arg(long, default_value = "rtsp://127.0.0.1:8554/cam{}")]
    url_template: String,
    #[arg(long, default_value_t = 16)]
    count: usize,
    /// Seconds to let every camera connect before measuring.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// `tcp` (the agent's default) or `udp`.
    #[arg(long, default_value = "tcp")]
    transport: String,
    /// Tokio runtime: `multi` (the agent's: multi-thread, 2 workers), `current` (one thread),
    /// or `paced:MS`, an experiment (docs/BENCHMARKS.md): one thread that sleeps to the next
    /// tick of MS milliseconds and then reads every socket's backlog, instead of being woken
    /// per arrival.
    #[arg(long, default_value = "multi")]
    runtime: String,
    /// Clock ticks per second of `/proc/*/stat` (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    clk_tck: u64,
    /// Snapshot interval in seconds (0: no snapshots, the issue 4 benchmark).
    #[arg(long, default_value_t = 0)]
    snapshots: u64,
    /// Where the snapshots go (default: a folder under the system temp dir, removed at the end).
    #[arg(long)]
    snapshot_dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The agent's logging setup (main.rs), so that span and event costs are counted too.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match args.runtime.as_str() {
        // As the agent's main.rs builds it.
        "multi" => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(2);
            builder
        }
        "current" => tokio::runtime::Builder::new_current_thread(),
        paced if paced.starts_with("paced:") => tokio::runtime::Builder::new_current_thread(),
        other => bail!("--runtime {other}: expected multi, current or paced:MS"),
    }
    .enable_all()
    .build()
    .context("tokio runtime")?;
    runtime.block_on(bench(args))
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let transport = match args.transport.as_str() {
        "tcp" => Transport::Tcp,
        "udp" => Transport::Udp,
        other => bail!("--transport {other}: expected tcp or udp"),
    };
    let shutdown = CancellationToken::new();
    if let Some(ms) = args.runtime.strip_prefix("paced:") {
        // An experiment: the runtime's only thread sleeps between ticks instead of waiting in
        // epoll_wait, so arrivals do not wake it; each tick takes every socket's data at once.
        let tick = Duration::from_millis(ms.parse().context("--runtime paced:MS")?);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut next = Instant::now();
            while !stop.is_cancelled() {
                next += tick;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
                tokio::task::yield_now().await;
            }
        });
    }
    let cameras: Vec<CameraMetrics> = (0..args.count).map(|_| CameraMetrics::new()).collect();
    let pictures: Vec<Arc<CameraPicture>> = (0..args.count)
        .map(|_| Arc::new(CameraPicture::default()))
        .collect();
    let snapshot_dir = args.snapshot_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("agent-bench-snapshots-{}", std::process::id()))
    });
    let mut tasks = Vec::new();
    for (i, metrics) in cameras.iter().enumerate() {
        let url = url::Url::parse(&args.url_template.replace("{}", &i.to_string()))
            .context("--url-template")?;
        let options = RtspOptions {
            transport,
            ..RtspOptions::default()
        };
        tasks.push(tokio::spawn(rtsp::run(
            url,
            options,
            metrics.clone(),
            pictures[i].slot.clone(),
            shutdown.clone(),
        )));
        if args.snapshots > 0 {
            let interval = Duration::from_secs(args.snapshots);
            let sampler = Sampler::new(
                format!("cam{i}"),
                PictureSettings::default(),
                interval,
                pictures[i].clone(),
                snapshot_dir.clone(),
            );
            tasks.push(tokio::spawn(sampler.run(interval, shutdown.clone())));
        }
    }

    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let frames_before: Vec<u64> = cameras
        .iter()
        .map(|m| m.snapshot(Utc::now()).frames_total)
        .collect();
    let cpu_before = cpu_ticks()?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let cpu_after = cpu_ticks()?;
    let elapsed = started.elapsed().as_secs_f64();
    let (rss_kib, hwm_kib) = memory_kib()?;

    let snapshots: Vec<_> = cameras.iter().map(|m| m.snapshot(Utc::now())).collect();
    shutdown.cancel();
    for task in tasks {
        task.await.context("source task")?;
    }

    let cpu_seconds = (cpu_after - cpu_before) as f64 / args.clk_tck as f64;
    let per_camera: Vec<_> = snapshots
        .iter()
        .zip(&frames_before)
        .zip(&pictures)
        .map(|((s, before), picture)| {
            json!({
                "picture_state": picture.report().map(|r| r.state.as_str()),
                "snapshot": picture.snapshot().map(|s| json!({
                    "taken_at": s.taken_at.to_rfc3339(),
                    "width": s.width,
                    "height": s.height,
                    "jpeg_bytes": s.jpeg.len(),
                })),
                "status": s.status.as_str(),
                "fps": (s.frames_total - before) as f64 / elapsed,
                "declared_fps": s.declared_fps,
                "bitrate_kbps": s.bitrate_kbps,
                "packet_loss_pct": s.packet_loss_pct,
                "jitter_ms": s.jitter_ms,
                "restart_count": s.restart_count,
            })
        })
        .collect();
    let running = snapshots
        .iter()
        .filter(|s| s.status == CameraStatus::Running)
        .count();
    let report = json!({
        "cameras": args.count,
        "running": running,
        "transport": args.transport,
        "runtime": args.runtime,
        "snapshot_interval_seconds": args.snapshots,
        "seconds": elapsed,
        "cpu_seconds": cpu_seconds,
        "cpu_pct_of_one_core": 100.0 * cpu_seconds / elapsed,
        "vm_rss_kib": rss_kib,
        "vm_hwm_kib": hwm_kib,
        "per_camera": per_camera,
    });
    print_report(&report);
    if args.snapshot_dir.is_none() {
        std::fs::remove_dir_all(&snapshot_dir).ok();
    }
    Ok(())
}

#[expect(clippy::print_stdout, reason = "the benchmark's result is its output")]
fn print_report(report: &serde_json::Value) {
    println!("{report}");
}

/// utime + stime of this process, in clock ticks.
fn cpu_ticks() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("/proc/self/stat: no command name")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let field = |n: usize| -> anyhow::Result<u64> {
        fields
            .get(n - 3)
            .context("/proc/self/stat: too few fields")?
            .parse()
            .context("/proc/self/stat: not a number")
    };
    Ok(field(14)? + field(15)?)
}

/// (VmRSS, VmHWM) of this process in KiB.
fn memory_kib() -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    let value = |key: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("/proc/self/status: no {key}"))
    };
    Ok((value("VmRSS:")?, value("VmHWM:")?))
}
