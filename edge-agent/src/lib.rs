//! The streamwatch edge agent: ingests cameras, computes their health, serves the local
//! Heartbeat API, and pushes heartbeats to the central service through a durable spool.
//!
//! It runs unattended at hundreds of sites for months, so three rules shape it: it never loses
//! a heartbeat the server has not acknowledged (the spool is written before anything is sent),
//! it never wedges (every loop has a shutdown, a timeout and a backoff, and corrupt files are
//! skipped with a log line), and it stays small (one task per camera; plain files; at most one
//! decoded picture per camera per snapshot interval).
//!
//! # Layout
//!
//! - [`config`]: the TOML file, checked into [`config::Config`]; `check-config` prints its
//!   mistakes.
//! - [`sources`]: one task per camera writing [`metrics::CameraMetrics`]: RTSP, MP4 files, a
//!   relayed engine's `/status/`, and simulated cameras with scripted faults.
//! - [`metrics`]: what a source measures, read as snapshots.
//! - [`health`]: the SPEC section 4 score, liveness and camera condition (pure).
//! - [`picture`]: picture health (`ok`, `black`, `uniform`, `frozen`, `unknown`) from decoded
//!   luma planes (pure).
//! - [`decode`]: one keyframe into a luma picture: H.264 in-process (OpenH264), other codecs
//!   through the system's ffmpeg.
//! - [`snapshots`]: once per interval, one picture per camera: classified, kept as JPEG in
//!   memory and in `state_dir/snapshots/`.
//! - [`cameras`]: snapshot + health → the shapes of heartbeats and of the local API.
//! - [`state`] and [`spool`]: the instance id, the sequence, and the on-disk spool.
//! - [`push`]: heartbeats every interval, batches to the server, backoff.
//! - [`upload`]: the cameras' changed snapshots to the server, at most one a minute each,
//!   spooled (newest only) while it is away.
//! - [`webhooks`]: signed events on camera transitions, cached on disk when delivery fails.
//! - [`local_api`]: `/status/`, `/monitor`, `/api/streams/...` and the dashboard.
//! - [`agent`]: wires it all and runs it until shutdown.
//! - [`backoff`]: exponential backoff with jitter, for everything that retries.
//!
//! `docs/AGENT.md` is the operator's guide.

pub mod agent;
pub mod backoff;
pub mod cameras;
pub mod config;
pub mod decode;
pub mod health;
pub mod local_api;
pub mod metrics;
pub mod picture;
pub mod push;
pub mod snapshots;
pub mod sources;
pub mod spool;
pub mod state;
pub mod upload;
pub mod webhooks;

/// A `reqwest` error with its causes in one line, for logs and `last_error`s. Its own message
/// names the URL it requested, whose path and query may be secret (a webhook's, a token in a
/// query): `without_url` drops it, and any URL a cause quotes is redacted too.
pub fn http_error_chain(e: reqwest::Error) -> String {
    streamwatch_protocol::redact_urls_in_text(&error_chain(&e.without_url()))
}

/// An error with its causes in one line (`reqwest`'s own message alone says little).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::path::PathBuf;

    /// A fresh folder under the system temp dir (tests remove it when they pass).
    pub fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "streamwatch-agent-test-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        dir
    }
}
