//! `ingest`: simulated agents pushing heartbeats.
//!
//! Closed loop (`--rate 0`): every agent sends its next request as soon as the previous one is
//! answered, so the offered load is whatever the server sustains with `--agents` requests in
//! flight. Open loop (`--rate R`): agent `i` sends its `k`-th request at a fixed schedule
//! (`R / batch` requests per second in total, agents evenly staggered). An agent never has two
//! requests in flight (its `seq` must grow), so when the server falls behind, the next request
//! leaves late; its latency is counted from the scheduled time, not from the late send, so that a
//! slow server cannot hide its queueing (no "coordinated omission").
//!
//! Only requests that complete inside the measurement window (after `--warmup`) count.

use crate::{
    api::{self, AgentCredentials, SetupState},
    out,
    payload::{SimAgent, Template},
    stats::{self, Latency},
};
use anyhow::{Context, bail};
use chrono::Utc;
use serde::Serialize;
use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};
use streamwatch_protocol::IngestResponse;
use tokio::task::JoinSet;

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Platform admin token: creates a tenant, licenses and one agent token per agent through
    /// the API. Not needed when `--state` names a file from an earlier run.
    #[arg(long, env = "STREAMWATCH_LOADGEN_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Simulated agents (agent instances), each with its own token, instance id and seq.
    #[arg(long, default_value_t = 200)]
    agents: usize,
    /// Agents per license: more than one makes fewer licenses with several instances each.
    #[arg(long, default_value_t = 1)]
    agents_per_license: usize,
    /// Heartbeats per request (1..=500). 10 simulates a batching or spool-replaying agent.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Cameras in every heartbeat.
    #[arg(long, default_value_t = 4)]
    cameras: usize,
    /// Measurement window in seconds (after the warm-up).
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Seconds at the start that are not measured.
    #[arg(long, default_value_t = 5.0)]
    warmup: f64,
    /// Target heartbeats per second over all agents; 0 = as fast as the server answers.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Send gzip-compressed bodies (`Content-Encoding: gzip`).
    #[arg(long)]
    gzip: bool,
    /// A JSON file with the agents' credentials: read if it exists (and matches `--url` and
    /// `--agents`), else created by the setup, so that later runs skip the setup.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Only set up (and write `--state`); send no heartbeats.
    #[arg(long)]
    setup_only: bool,
    /// A name for this run in the report.
    #[arg(long, default_value = "ingest")]
    label: String,
    /// Also write the JSON result to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Write one CSV line per answered request to this file:
    /// `sent_unix_ms,answered_unix_ms,status,instance_id,first_seq,heartbeats,accepted,duplicates`
    /// (status 0: no answer). `scripts/ha-drill` checks every heartbeat of a 2xx line against the database.
    #[arg(long)]
    ack_log: Option<PathBuf>,
}

/// One finished request.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Completion, microseconds since the start of the run.
    done_at_us: u64,
    latency_us: u64,
    /// HTTP status; 0 for a transport error (connection refused, timeout, ...).
    status: u16,
    accepted: u32,
    duplicates: u32,
    /// Open loop: left more than 10 ms after its scheduled time.
    late: bool,
}

#[derive(Debug, Serialize)]
pub struct IngestReport {
    pub mode: &'static str,
    pub label: String,
    pub agents: usize,
    pub licenses: usize,
    pub batch: usize,
    pub cameras: usize,
    pub gzip: bool,
    pub body_bytes: usize,
    /// 0 = closed loop.
    pub target_rate: f64,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub requests: usize,
    pub requests_ok: usize,
    pub accepted: u64,
    pub duplicates: u64,
    /// By HTTP status ("transport" for no answer), in the window.
    pub errors: BTreeMap<String, usize>,
    pub late_sends: usize,
    pub accepted_per_s: f64,
    pub requests_per_s: f64,
    /// Accepted heartbeats in each whole second of the window.
    pub per_second_min: u64,
    pub per_second_median: u64,
    pub per_second_max: u64,
    /// When the measured window began (UTC, RFC 3339).
    pub window_started_at: String,
    /// The slowest 2xx request that finished in each whole second of the window, in
    /// milliseconds: where the tail of the latency is, in time.
    pub per_second_latency_max_ms: Vec<f64>,
    /// Per request, 2xx only, milliseconds.
    pub latency_ms: Latency,
    /// Requests over the whole run, warm-up and tail included.
    pub requests_total: usize,
    /// Accepted heartbeats over the whole run, warm-up and tail included.
    pub accepted_total: u64,
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    if !(1..=streamwatch_protocol::MAX_HEARTBEATS_PER_REQUEST).contains(&args.batch) {
        bail!(
            "--batch must be 1..={}",
            streamwatch_protocol::MAX_HEARTBEATS_PER_REQUEST
        );
    }
    if args.agents == 0 || args.duration <= 0.0 || args.warmup < 0.0 || args.rate < 0.0 {
        bail!("--agents and --duration must be positive, --warmup and --rate not negative");
    }
    let client = api::client(Duration::from_secs(args.timeout))?;
    let setup = load_or_setup(&client, &args).await?;
    if args.setup_only {
        return Ok(());
    }
    let report = drive(&args, &setup).await?;
    print_report(&report);
    let json = serde_json::to_string(&report)?;
    if let Some(path) = &args.json_out {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    out(&json);
    Ok(())
}

async fn load_or_setup(client: &reqwest::Client, args: &IngestArgs) -> anyhow::Result<SetupState> {
    if let Some(path) = &args.state
        && path.exists()
    {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let state: SetupState =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if state.url == args.url && state.agents.len() >= args.agents {
            crate::note(&format!(
                "reusing {} agents of tenant {} from {}",
                args.agents,
                state.tenant_id,
                path.display()
            ));
            return Ok(state);
        }
        crate::note(&format!(
            "{} is for another server or fewer agents; setting up anew",
            path.display()
        ));
    }
    let Some(admin_token) = &args.admin_token else {
        bail!(
            "--admin-token is needed to create the agents (or --state with an earlier run's file)"
        );
    };
    let state = api::setup_agents(
        client,
        &args.url,
        admin_token,
        args.agents,
        args.agents_per_license,
    )
    .await?;
    if let Some(path) = &args.state {
        std::fs::write(path, serde_json::to_string(&state)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(state)
}

struct Plan {
    /// The server's base URL.
    url: String,
    /// Per-request timeout.
    timeout: Duration,
    batch: usize,
    gzip: bool,
    start: Instant,
    end: Instant,
    /// Open loop: time between two requests of one agent.
    period: Option<Duration>,
    /// Open loop: this agent's first slot.
    offset: Duration,
    /// Where each request's outcome goes (`--ack-log`).
    ack_log: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

async fn drive(args: &IngestArgs, setup: &SetupState) -> anyhow::Result<IngestReport> {
    let per = args.agents_per_license.max(1);
    let sims: Vec<(Template, AgentCredentials)> = setup
        .agents
        .iter()
        .take(args.agents)
        .enumerate()
        .map(|(i, cred)| {
            // Instances of one license are consecutive in the setup.
            let nth = setup
                .agents
                .iter()
                .take(i)
                .rev()
                .take_while(|c| c.license_id == cred.license_id)
                .count();
            Template::new(SimAgent::new(i, args.cameras, nth.min(per))).map(|t| (t, cred.clone()))
        })
        .collect::<anyhow::Result<_>>()?;
    let licenses = {
        let mut ids: Vec<_> = sims.iter().map(|(_, c)| c.license_id).collect();
        ids.sort();
        ids.dedup();
        ids.len()
    };
    let body_bytes = sims
        .first()
        .map(|(t, _)| {
            t.encode(
                1,
                args.batch,
                Utc::now(),
                chrono::Duration::seconds(1),
                args.gzip,
            )
            .map(|b| b.len())
        })
        .transpose()?
        .unwrap_or(0);
    let warmup = Duration::from_secs_f64(args.warmup);
    let window = Duration::from_secs_f64(args.duration);
    // A moment for every task to be spawned before the clock starts.
    let start = Instant::now() + Duration::from_millis(200);
    // The wall-clock time of `start`, to line the per-second figures up with other logs
    // (PostgreSQL's autovacuum and checkpoint lines, for one).
    let started_at = chrono::Utc::now() + chrono::Duration::milliseconds(200);
    let end = start + warmup + window;
    let period = (args.rate > 0.0)
        .then(|| Duration::from_secs_f64(args.agents as f64 * args.batch as f64 / args.rate));
    crate::note(&format!(
        "{}: {} agents, batch {}, {} for {:.0} s + {:.0} s warm-up",
        args.label,
        args.agents,
        args.batch,
        if args.rate > 0.0 {
            format!("open loop at {:.0} heartbeats/s", args.rate)
        } else {
            "closed loop".to_owned()
        },
        args.duration,
        args.warmup
    ));
    // One writer of the ack log, fed by every agent task: the lines of a request are written
    // after its answer, so a line in the file means the server answered it so.
    let (ack_log, ack_writer) = match &args.ack_log {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
            let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                use std::io::Write as _;
                let mut file = std::io::BufWriter::new(file);
                while let Some(line) = rx.blocking_recv() {
                    writeln!(file, "{line}")?;
                }
                file.flush()
            });
            (Some(tx), Some(writer))
        }
        None => (None, None),
    };
    let mut tasks = JoinSet::new();
    let n = sims.len();
    for (i, (sim, cred)) in sims.into_iter().enumerate() {
        let plan = Plan {
            url: args.url.clone(),
            timeout: Duration::from_secs(args.timeout),
            batch: args.batch,
            gzip: args.gzip,
            start,
            end,
            period,
            offset: period.map_or(Duration::ZERO, |p| p.mul_f64(i as f64 / n as f64)),
            ack_log: ack_log.clone(),
        };
        tasks.spawn(async move { agent_loop(sim, cred, plan).await });
    }
    let mut samples = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        samples.extend(joined.context("an agent task panicked")?);
    }
    drop(ack_log);
    if let Some(writer) = ack_writer {
        writer
            .await
            .context("the ack log writer panicked")?
            .context("writing the ack log")?;
    }
    let mut report = summarise(args, licenses, body_bytes, warmup, window, &samples);
    report.window_started_at = (started_at
        + chrono::Duration::from_std(warmup).unwrap_or_default())
    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Ok(report)
}

async fn agent_loop(sim: Template, cred: AgentCredentials, plan: Plan) -> Vec<Sample> {
    let mut samples = Vec::new();
    // The agent's own keep-alive connection (crate::raw says why not reqwest).
    let authorization = format!("Bearer {}", cred.token);
    let mut headers = vec![
        ("Authorization", authorization.as_str()),
        ("Content-Type", "application/json"),
        ("Streamwatch-Protocol", "1"),
    ];
    if plan.gzip {
        headers.push(("Content-Encoding", "gzip"));
    }
    let path = format!("{}/ingest/heartbeats", api::api_base(""));
    let mut conn = match crate::raw::Conn::new(&plan.url, &path, &headers, plan.timeout) {
        Ok(c) => c,
        Err(e) => {
            crate::note(&format!("{e:#}"));
            return samples;
        }
    };
    let mut seq: u64 = 1;
    let mut slot: u32 = 0;
    tokio::time::sleep_until((plan.start + plan.offset).into()).await;
    loop {
        let scheduled = match plan.period {
            Some(p) => {
                let at = plan.start + plan.offset + p * slot;
                slot += 1;
                tokio::time::sleep_until(at.into()).await;
                at
            }
            None => Instant::now(),
        };
        let sent = Instant::now();
        if sent >= plan.end {
            break;
        }
        let late = sent.saturating_duration_since(scheduled) > Duration::from_millis(10);
        let body = match sim.encode(
            seq,
            plan.batch,
            Utc::now(),
            chrono::Duration::seconds(1),
            plan.gzip,
        ) {
            Ok(b) => b,
            Err(e) => {
                crate::note(&format!("encoding a batch failed: {e}"));
                break;
            }
        };
        let sent_ms = Utc::now().timestamp_millis();
        let (status, answer, retry_after) = match conn.post(&body).await {
            Ok(a) => {
                let answer = (a.status == 200)
                    .then(|| serde_json::from_slice::<IngestResponse>(&a.body).ok())
                    .flatten();
                (a.status, answer, a.retry_after)
            }
            Err(_) => (0, None, None),
        };
        let done = Instant::now();
        if let Some(log) = &plan.ack_log {
            let _ = log.send(format!(
                "{sent_ms},{},{status},{},{seq},{},{},{}",
                Utc::now().timestamp_millis(),
                sim.instance_id(),
                plan.batch,
                answer.as_ref().map_or(0, |a| a.accepted),
                answer.as_ref().map_or(0, |a| a.duplicates),
            ));
        }
        samples.push(Sample {
            done_at_us: stats::micros(done.saturating_duration_since(plan.start)),
            latency_us: stats::micros(done.saturating_duration_since(scheduled)),
            status,
            accepted: answer.as_ref().map_or(0, |a| a.accepted),
            duplicates: answer.as_ref().map_or(0, |a| a.duplicates),
            late,
        });
        if answer.is_some() {
            seq += plan.batch as u64;
        } else if plan.period.is_none() {
            // Retry the same heartbeats (as an agent does), after the server's Retry-After
            // (capped) or a short pause.
            let pause = retry_after.map_or(Duration::from_millis(50), |s| {
                Duration::from_secs(s).min(Duration::from_secs(1))
            });
            tokio::time::sleep(pause).await;
        }
    }
    samples
}

fn summarise(
    args: &IngestArgs,
    licenses: usize,
    body_bytes: usize,
    warmup: Duration,
    window: Duration,
    samples: &[Sample],
) -> IngestReport {
    let from = stats::micros(warmup);
    let to = from + stats::micros(window);
    let in_window: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.done_at_us >= from && s.done_at_us < to)
        .collect();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut latencies = Vec::with_capacity(in_window.len());
    let seconds = usize::try_from(window.as_secs()).unwrap_or(0).max(1);
    let mut per_second = vec![0u64; seconds];
    let mut per_second_latency_max = vec![0u64; seconds];
    let (mut accepted, mut duplicates, mut ok, mut late) = (0u64, 0u64, 0usize, 0usize);
    for s in &in_window {
        if (200..300).contains(&s.status) {
            ok += 1;
            latencies.push(s.latency_us);
            accepted += u64::from(s.accepted);
            duplicates += u64::from(s.duplicates);
            let second = usize::try_from((s.done_at_us - from) / 1_000_000).unwrap_or(usize::MAX);
            if let Some(bucket) = per_second.get_mut(second) {
                *bucket += u64::from(s.accepted);
            }
            if let Some(slowest) = per_second_latency_max.get_mut(second) {
                *slowest = (*slowest).max(s.latency_us);
            }
        } else {
            let key = if s.status == 0 {
                "transport".to_owned()
            } else {
                s.status.to_string()
            };
            *errors.entry(key).or_default() += 1;
        }
        late += usize::from(s.late);
    }
    let mut sorted_seconds = per_second.clone();
    sorted_seconds.sort_unstable();
    let secs = window.as_secs_f64();
    IngestReport {
        mode: "ingest",
        label: args.label.clone(),
        agents: args.agents,
        licenses,
        batch: args.batch,
        cameras: args.cameras,
        gzip: args.gzip,
        body_bytes,
        target_rate: args.rate,
        warmup_s: args.warmup,
        duration_s: args.duration,
        requests: in_window.len(),
        requests_ok: ok,
        accepted,
        duplicates,
        errors,
        late_sends: late,
        accepted_per_s: stats::round2(accepted as f64 / secs),
        requests_per_s: stats::round2(in_window.len() as f64 / secs),
        per_second_min: sorted_seconds.first().copied().unwrap_or(0),
        per_second_median: stats::percentile(&sorted_seconds, 50.0),
        per_second_max: sorted_seconds.last().copied().unwrap_or(0),
        window_started_at: String::new(),
        per_second_latency_max_ms: per_second_latency_max
            .iter()
            .map(|&us| stats::round2(us as f64 / 1000.0))
            .collect(),
        latency_ms: Latency::from_micros(&mut latencies),
        requests_total: samples.len(),
        accepted_total: samples.iter().map(|s| u64::from(s.accepted)).sum(),
    }
}

fn print_report(r: &IngestReport) {
    let mode = if r.target_rate > 0.0 {
        format!(
            "open loop at {:.0} heartbeats/s (latency from the scheduled send time)",
            r.target_rate
        )
    } else {
        "closed loop (each agent sends when its previous request is answered)".to_owned()
    };
    let errors = if r.errors.is_empty() {
        "none".to_owned()
    } else {
        r.errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let l = &r.latency_ms;
    out(&format!("== streamwatch-loadgen ingest: {} ==", r.label));
    out(&format!(
        "  agents               {} on {} licenses; {} heartbeats/request, {} cameras/heartbeat",
        r.agents, r.licenses, r.batch, r.cameras
    ));
    out(&format!(
        "  body                 {} bytes{}",
        r.body_bytes,
        if r.gzip { " (gzip)" } else { "" }
    ));
    out(&format!("  mode                 {mode}"));
    out(&format!(
        "  window               {:.1} s after {:.1} s warm-up",
        r.duration_s, r.warmup_s
    ));
    out(&format!(
        "  requests             {} ({} ok, {} in the whole run)",
        r.requests, r.requests_ok, r.requests_total
    ));
    out(&format!("  accepted heartbeats  {}", r.accepted));
    out(&format!("  duplicates           {}", r.duplicates));
    out(&format!("  errors               {errors}"));
    if r.target_rate > 0.0 {
        out(&format!("  late sends           {}", r.late_sends));
    }
    out(&format!(
        "  accepted heartbeats/s {:.0}  (per second: min {} / median {} / max {})",
        r.accepted_per_s, r.per_second_min, r.per_second_median, r.per_second_max
    ));
    out(&format!("  requests/s           {:.0}", r.requests_per_s));
    out(&format!(
        "  latency ms (2xx)     p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}  mean {:.2}",
        l.p50, l.p95, l.p99, l.max, l.mean
    ));
    out(&format!(
        "  slowest per second   from {}: {}",
        r.window_started_at,
        r.per_second_latency_max_ms
            .iter()
            .map(|ms| format!("{ms:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    ));
}
