//! The agent's configuration file (TOML), parsed into checked values.
//!
//! Parse, don't validate: the file is read into loose `Raw*` structs (every field optional,
//! unknown keys refused), then turned into [`Config`], whose fields can only hold valid values.
//! Every mistake found on the way is collected, so that `streamwatch-agent check-config` can
//! print them all at once, one line each.
//!
//! ```toml
//! [central]
//! url = "https://streamwatch.example.com"   # required: the streamwatch server
//! token = "swa_..."                         # required: an agent token of one license
//! # timeout_seconds = 15                    # one request to the server, connecting included
//! # max_batch_heartbeats = 500              # heartbeats per request when replaying the spool (1..500)
//! # retry_max_seconds = 300                 # longest wait between retries (exponential backoff)
//!
//! [agent]
//! # state_dir = "/var/lib/streamwatch-agent" # instance id, sequence, spool, webhook cache
//! # listen = "0.0.0.0:8001"                 # local Heartbeat API and dashboard
//! # hostname = "site-7-box"                 # default: the machine's host name
//! # heartbeat_interval_seconds = 60         # until the server says otherwise
//! # min_heartbeat_gap_seconds = 5           # a camera state change sends a heartbeat early, at most this often
//! # spool_max_bytes = 67108864              # 64 MiB of unsent heartbeats, then the oldest are dropped
//! # spool_max_age_seconds = 604800          # 7 days, then the oldest are dropped
//!
//! [[camera]]
//! id = "camera-1"                   # required: 1..128 of A-Z a-z 0-9 . _ -
//! url = "rtsp://10.0.0.5/stream1"   # required: rtsp(s)://, file:///, stream-status+http(s)://, simulated://
//! # expected_fps = 25               # default: declared by the stream, else the median of the last minute
//! # timezone = "UTC"                # IANA name, for last_checked
//! # transport = "tcp"               # rtsp only: tcp (interleaved) or udp (not with rtsps)
//! # tls_ca_file = "/etc/ssl/cam.pem" # rtsps only: PEM certificates trusted besides the system's
//! # tls_verify = true               # rtsps only: false accepts any certificate (encrypted, unauthenticated)
//! # speed = 1.0                     # file only: 1.0 = real time
//! # loop = true                     # file only: start again at the end
//! # snapshot_interval_seconds = 60  # one decoded picture per interval (at least 5): snapshot + picture health
//! # static_scene = false            # true: the scene never moves, so no frozen check
//! # picture_checks = ["black", "uniform", "frozen"]  # the picture checks that apply
//! # frozen_after_seconds = 300      # unchanged this long: frozen
//! # black_max_luma = 20             # black below this mean luma (0..255)
//! # uniform_max_stddev = 3          # uniform below this spread of luma (0..128)
//! # frozen_max_change_pct = 1       # a snapshot with less than this % of the picture changed is "unchanged"
//!
//! [[webhook]]
//! url = "https://hooks.example.com/streamwatch"   # required
//! secret = "..."                                   # required: HMAC-SHA256 key
//! # events = ["camera.offline", "camera.online"]   # default: every event
//! ```
//!
//! `docs/AGENT.md` is the operator's reference for the same fields.

use crate::picture::{self, Check, PictureSettings};
use crate::sources::{simulated::SimulatedSpec, tls::TlsOptions};
use crate::webhooks::EventKind;
use serde::Deserialize;
use std::{
    collections::HashMap,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};
use url::Url;

/// Default `[agent] state_dir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/streamwatch-agent";
/// Default `[agent] listen`.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8001";
/// Default `[agent] heartbeat_interval_seconds`.
pub const DEFAULT_HEARTBEAT_INTERVAL_SECONDS: u64 = 60;
/// Default `[agent] min_heartbeat_gap_seconds`.
pub const DEFAULT_MIN_HEARTBEAT_GAP_SECONDS: u64 = 5;
/// Default `[agent] spool_max_bytes`: 64 MiB.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Default `[agent] spool_max_age_seconds`: 7 days.
pub const DEFAULT_SPOOL_MAX_AGE_SECONDS: u64 = 7 * 24 * 3600;
/// Default `[central] timeout_seconds`.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 15;
/// Default `[central] retry_max_seconds`.
pub const DEFAULT_RETRY_MAX_SECONDS: u64 = 300;
/// The smallest spool bound accepted: one heartbeat of a few cameras.
pub const MIN_SPOOL_MAX_BYTES: u64 = 1024;
/// The camera id `-` is reserved: `/api/streams/-/status` means "every camera".
pub const RESERVED_CAMERA_ID: &str = "-";
/// Default `[[camera]] snapshot_interval_seconds`.
pub const DEFAULT_SNAPSHOT_INTERVAL_SECONDS: u64 = 60;
/// The shortest `snapshot_interval_seconds`: decoding a picture costs far more than counting
/// frames, and picture states are meant to change over minutes.
pub const MIN_SNAPSHOT_INTERVAL_SECONDS: u64 = 5;

/// A secret (agent token, webhook key): shown as `[redacted]` by `Debug`, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The whole, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where heartbeats go.
    pub central: Central,
    /// The agent process itself.
    pub agent: AgentSettings,
    /// The cameras, in file order.
    pub cameras: Vec<Camera>,
    /// Where camera events are POSTed, in file order.
    pub webhooks: Vec<Webhook>,
}

/// `[central]`.
#[derive(Debug, Clone)]
pub struct Central {
    /// Base URL of the streamwatch server, e.g. `https://streamwatch.example.com`.
    pub url: Url,
    /// The agent token (`swa_...`) of this site's license.
    pub token: Secret,
    /// Time limit of one request, connecting included. Default 15 s.
    pub timeout: Duration,
    /// Heartbeats per request when the spool is replayed: 1..=500, default 500.
    pub max_batch_heartbeats: usize,
    /// The longest wait between two retries. Default 300 s.
    pub retry_max: Duration,
}

impl Central {
    /// `POST` target of heartbeats.
    pub fn ingest_url(&self) -> Url {
        self.join("api/v1/ingest/heartbeats")
    }

    /// `PUT` target of a camera's snapshot (camera ids are safe path segments: see
    /// `streamwatch_protocol::is_valid_camera_id`).
    pub fn snapshot_upload_url(&self, camera_id: &str) -> Url {
        self.join(&format!("api/v1/ingest/snapshots/{camera_id}"))
    }

    /// The server's liveness probe, for the dashboard's connectivity check.
    pub fn healthz_url(&self) -> Url {
        self.join("healthz")
    }

    /// `path` below the base URL, which may itself have a path (`https://host/streamwatch`).
    fn join(&self, path: &str) -> Url {
        let mut base = self.url.clone();
        if !base.path().ends_with('/') {
            let with_slash = format!("{}/", base.path());
            base.set_path(&with_slash);
        }
        base.join(path).unwrap_or(base)
    }
}

/// `[agent]`.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// Instance id, sequence, spool and webhook cache live here. Default
    /// `/var/lib/streamwatch-agent`.
    pub state_dir: PathBuf,
    /// The local Heartbeat API and dashboard. Default `0.0.0.0:8001`.
    pub listen: SocketAddr,
    /// Sent with every batch for operators. Default: the machine's host name.
    pub hostname: String,
    /// How often to report until the server answers with its `next_interval_seconds`.
    /// Default 60 s.
    pub heartbeat_interval: Duration,
    /// A camera state change sends a heartbeat early, but never sooner than this after the
    /// previous one. Default 5 s.
    pub min_heartbeat_gap: Duration,
    /// Unsent heartbeats beyond this many bytes are dropped, oldest first. Default 64 MiB.
    pub spool_max_bytes: u64,
    /// Unsent heartbeats older than this are dropped. Default 7 days.
    pub spool_max_age: Duration,
}

/// RTSP lower transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtspTransport {
    /// RTP interleaved in the RTSP TCP connection: survives NAT and reordering. The default.
    #[default]
    Tcp,
    /// RTP over UDP: less overhead, but reordered packets count as lost.
    Udp,
}

/// Where a camera's frames come from, by URL scheme.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// `rtsp://` or `rtsps://`.
    Rtsp {
        url: Url,
        transport: RtspTransport,
        /// How `rtsps://` checks the camera's certificate (the default for `rtsp://`).
        tls: TlsOptions,
    },
    /// `file:///absolute/path.mp4`.
    File {
        path: PathBuf,
        speed: f64,
        looped: bool,
    },
    /// `stream-status+http(s)://host:port/status/[#remote-id]`: relay an engine's `/status/`.
    StreamStatus { status_url: Url, remote_id: String },
    /// `simulated://?fps=25&faults=...`.
    Simulated(SimulatedSpec),
}

impl Source {
    /// The `source` word of heartbeats.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Rtsp { .. } => "rtsp",
            Self::File { .. } => "file",
            Self::StreamStatus { .. } => "stream-status",
            Self::Simulated(_) => "simulated",
        }
    }
}

/// One `[[camera]]`.
#[derive(Debug, Clone)]
pub struct Camera {
    /// Valid per the protocol (`is_valid_camera_id`) and unique.
    pub id: String,
    /// The URL as written, credentials included: only the source uses it. Everything shown or
    /// sent uses [`Camera::display_url`].
    pub url: String,
    /// The parsed source.
    pub source: Source,
    /// Configured frame rate; `None`: declared by the stream, else the median of the last minute.
    pub expected_fps: Option<f64>,
    /// For `last_checked`; UTC when not configured.
    pub timezone: chrono_tz::Tz,
    /// Whether `timezone` was configured (heartbeats send `null` when it was not).
    pub timezone_configured: bool,
    /// How often one picture is decoded, classified and kept as the snapshot. Default 60 s.
    pub snapshot_interval: Duration,
    /// How the pictures are judged (`static_scene`, `picture_checks`, the bounds).
    pub picture: PictureSettings,
}

impl Camera {
    /// The URL as it may be sent and shown: without credentials, query or fragment
    /// (`streamwatch_protocol::redact_url`).
    pub fn display_url(&self) -> String {
        streamwatch_protocol::redact_url(&self.url)
    }
}

/// One `[[webhook]]`.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Where events are POSTed (http or https).
    pub url: Url,
    /// The HMAC-SHA256 key of `X-Streamwatch-Signature`.
    pub secret: Secret,
    /// The events this webhook receives; every event when not configured.
    pub events: Option<Vec<EventKind>>,
}

impl Webhook {
    /// Whether this webhook wants `event`.
    pub fn wants(&self, event: EventKind) -> bool {
        self.events.as_ref().is_none_or(|e| e.contains(&event))
    }
}

/// Every mistake found in a file, one sentence each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("\n"))
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and checks a configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![format!("cannot read {}: {e}", path.display())],
        })?;
        Self::parse(&text)
    }

    /// Parses and checks the text of a configuration file.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let fail = |problems| Err(ConfigError { problems });
        let table: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => return fail(vec![toml_error(text, &e)]),
        };
        let mut problems = unknown_keys(&table);
        let raw: RawConfig = if problems.is_empty() {
            match toml::from_str(text) {
                Ok(raw) => raw,
                Err(e) => return fail(vec![toml_error(text, &e)]),
            }
        } else {
            // Report every unknown key, then whatever else is wrong with the rest of the file.
            match toml::Value::Table(without_unknown_keys(table)).try_into() {
                Ok(raw) => raw,
                Err(e) => {
                    problems.push(e.message().to_owned());
                    return fail(problems);
                }
            }
        };
        let config = raw.check(&mut problems);
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => fail(problems),
        }
    }
}

/// `line N: message`, one line, from a toml error with a span.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

// --- unknown keys ---------------------------------------------------------------------------

const TOP_KEYS: &[&str] = &["central", "agent", "camera", "webhook"];
const CENTRAL_KEYS: &[&str] = &[
    "url",
    "token",
    "timeout_seconds",
    "max_batch_heartbeats",
    "retry_max_seconds",
];
const AGENT_KEYS: &[&str] = &[
    "state_dir",
    "listen",
    "hostname",
    "heartbeat_interval_seconds",
    "min_heartbeat_gap_seconds",
    "spool_max_bytes",
    "spool_max_age_seconds",
];
const CAMERA_KEYS: &[&str] = &[
    "id",
    "url",
    "expected_fps",
    "timezone",
    "transport",
    "tls_ca_file",
    "tls_verify",
    "speed",
    "loop",
    "snapshot_interval_seconds",
    "static_scene",
    "picture_checks",
    "frozen_after_seconds",
    "black_max_luma",
    "uniform_max_stddev",
    "frozen_max_change_pct",
];
const WEBHOOK_KEYS: &[&str] = &["url", "secret", "events"];

fn section_keys(section: &str) -> &'static [&'static str] {
    match section {
        "central" => CENTRAL_KEYS,
        "agent" => AGENT_KEYS,
        "camera" => CAMERA_KEYS,
        _ => WEBHOOK_KEYS,
    }
}

/// Every key the agent does not know, named with where it is. Serde's `deny_unknown_fields`
/// stops at the first; an operator fixing a file wants them all.
fn unknown_keys(table: &toml::Table) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, value) in table {
        if !TOP_KEYS.contains(&key.as_str()) {
            problems.push(format!(
                "unknown key \"{key}\" at the top level (known: [central], [agent], [[camera]], [[webhook]])"
            ));
            continue;
        }
        let known = section_keys(key);
        let mut check = |where_: String, t: &toml::Table| {
            for k in t.keys().filter(|k| !known.contains(&k.as_str())) {
                problems.push(format!(
                    "unknown key \"{k}\" in {where_} (known: {})",
                    known.join(", ")
                ));
            }
        };
        match value {
            toml::Value::Table(t) => check(format!("[{key}]"), t),
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let toml::Value::Table(t) = item {
                        check(format!("[[{key}]] #{}", i + 1), t);
                    }
                }
            }
            // A wrong type is reported by the typed parse.
            _ => {}
        }
    }
    problems
}

fn without_unknown_keys(mut table: toml::Table) -> toml::Table {
    table.retain(|k, _| TOP_KEYS.contains(&k));
    for (key, value) in &mut table {
        let known = section_keys(key);
        let clean = |t: &mut toml::Table| t.retain(|k, _| known.contains(&k));
        match value {
            toml::Value::Table(t) => clean(t),
            toml::Value::Array(items) => {
                for item in items {
                    if let toml::Value::Table(t) = item {
                        clean(t);
                    }
                }
            }
            _ => {}
        }
    }
    table
}

// --- the loose shape, as serde reads it -----------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    central: Option<RawCentral>,
    agent: Option<RawAgent>,
    camera: Option<Vec<RawCamera>>,
    webhook: Option<Vec<RawWebhook>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCentral {
    url: Option<String>,
    token: Option<String>,
    timeout_seconds: Option<u64>,
    max_batch_heartbeats: Option<usize>,
    retry_max_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    state_dir: Option<PathBuf>,
    listen: Option<String>,
    hostname: Option<String>,
    heartbeat_interval_seconds: Option<u64>,
    min_heartbeat_gap_seconds: Option<u64>,
    spool_max_bytes: Option<u64>,
    spool_max_age_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCamera {
    id: Option<String>,
    url: Option<String>,
    expected_fps: Option<f64>,
    timezone: Option<String>,
    transport: Option<String>,
    tls_ca_file: Option<PathBuf>,
    tls_verify: Option<bool>,
    speed: Option<f64>,
    #[serde(rename = "loop")]
    looped: Option<bool>,
    snapshot_interval_seconds: Option<u64>,
    static_scene: Option<bool>,
    picture_checks: Option<Vec<String>>,
    frozen_after_seconds: Option<u64>,
    black_max_luma: Option<f64>,
    uniform_max_stddev: Option<f64>,
    frozen_max_change_pct: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Option<String>,
    secret: Option<String>,
    events: Option<Vec<String>>,
}

impl RawConfig {
    /// The checked config, or `None` with the reasons pushed to `problems`.
    fn check(self, problems: &mut Vec<String>) -> Option<Config> {
        let central = match self.central {
            Some(c) => c.check(problems),
            None => {
                problems.push("[central] is missing: it needs url and token".to_owned());
                None
            }
        };
        let agent = self.agent.unwrap_or_default().check(problems);
        let raw_cameras = self.camera.unwrap_or_default();
        if raw_cameras.len() > streamwatch_protocol::MAX_CAMERAS_PER_HEARTBEAT {
            problems.push(format!(
                "{} cameras configured; a heartbeat carries at most {}",
                raw_cameras.len(),
                streamwatch_protocol::MAX_CAMERAS_PER_HEARTBEAT
            ));
        }
        let mut cameras = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, raw) in raw_cameras.into_iter().enumerate() {
            let n = i + 1;
            if let Some(id) = &raw.id {
                if let Some(first) = seen.get(id) {
                    problems.push(format!(
                        "[[camera]] #{n}: duplicate camera id \"{id}\" (also #{first})"
                    ));
                } else {
                    seen.insert(id.clone(), n);
                }
            }
            if let Some(camera) = raw.check(n, problems) {
                cameras.push(camera);
            }
        }
        let mut webhooks = Vec::new();
        for (i, raw) in self.webhook.unwrap_or_default().into_iter().enumerate() {
            if let Some(webhook) = raw.check(i + 1, problems) {
                webhooks.push(webhook);
            }
        }
        Some(Config {
            central: central?,
            agent: agent?,
            cameras,
            webhooks,
        })
    }
}

/// An http(s) URL with a host. Mistakes quote the URL as `show` redacts it.
fn http_url(
    text: &str,
    what: &str,
    show: fn(&str) -> String,
    problems: &mut Vec<String>,
) -> Option<Url> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            problems.push(format!(
                "{what} \"{}\": unsupported scheme \"{}\" (use http:// or https://)",
                show(text),
                url.scheme()
            ));
            None
        }
        Ok(_) => {
            problems.push(format!("{what} \"{}\" has no host", show(text)));
            None
        }
        Err(e) => {
            // Nothing but the scheme of a URL that does not parse: see `redact_unparseable_url`.
            problems.push(format!(
                "{what} \"{}\" is not a valid URL: {e}",
                streamwatch_protocol::redact_unparseable_url(text)
            ));
            None
        }
    }
}

/// The longest duration a `*_seconds` key takes: a year. Longer is surely a typo, and a
/// timer that far out would overflow `Instant` arithmetic (`now + interval` panics).
pub const MAX_SECONDS: u64 = 366 * 24 * 3600;

fn positive_seconds(
    value: Option<u64>,
    default: u64,
    what: &str,
    problems: &mut Vec<String>,
) -> Duration {
    bounded_seconds(value, default, 1, what, problems)
}

/// `value` seconds (else `default`), checked to lie in `min..=MAX_SECONDS`.
fn bounded_seconds(
    value: Option<u64>,
    default: u64,
    min: u64,
    what: &str,
    problems: &mut Vec<String>,
) -> Duration {
    match value {
        Some(v) if v < min => {
            problems.push(format!("{what} must be at least {min}"));
            Duration::from_secs(default)
        }
        Some(v) if v > MAX_SECONDS => {
            problems.push(format!(
                "{what} must be at most {MAX_SECONDS} (a year), not {v}"
            ));
            Duration::from_secs(default)
        }
        Some(v) => Duration::from_secs(v),
        None => Duration::from_secs(default),
    }
}

impl RawCentral {
    fn check(self, problems: &mut Vec<String>) -> Option<Central> {
        let url = match self.url.as_deref() {
            None => {
                problems.push("[central] url is missing".to_owned());
                None
            }
            Some(u) => http_url(
                u,
                "[central] url",
                streamwatch_protocol::redact_url,
                problems,
            ),
        };
        let token = match self.token {
            None => {
                problems.push(
                    "[central] token is missing: create an agent token for the license (swa_...)"
                        .to_owned(),
                );
                None
            }
            Some(t) if t.trim().is_empty() => {
                problems.push("[central] token is empty".to_owned());
                None
            }
            Some(t) => Some(Secret::new(t.trim())),
        };
        let max_batch_heartbeats = match self.max_batch_heartbeats {
            Some(n) if !(1..=streamwatch_protocol::MAX_HEARTBEATS_PER_REQUEST).contains(&n) => {
                problems.push(format!(
                    "[central] max_batch_heartbeats must be 1..={}, not {n}",
                    streamwatch_protocol::MAX_HEARTBEATS_PER_REQUEST
                ));
                None
            }
            n => Some(n.unwrap_or(streamwatch_protocol::MAX_HEARTBEATS_PER_REQUEST)),
        };
        let timeout = positive_seconds(
            self.timeout_seconds,
            DEFAULT_TIMEOUT_SECONDS,
            "[central] timeout_seconds",
            problems,
        );
        let retry_max = positive_seconds(
            self.retry_max_seconds,
            DEFAULT_RETRY_MAX_SECONDS,
            "[central] retry_max_seconds",
            problems,
        );
        Some(Central {
            url: url?,
            token: token?,
            timeout,
            max_batch_heartbeats: max_batch_heartbeats?,
            retry_max,
        })
    }
}

impl RawAgent {
    fn check(self, problems: &mut Vec<String>) -> Option<AgentSettings> {
        let listen_text = self.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                problems.push(format!(
                    "[agent] listen \"{listen_text}\" is not an address with a port, e.g. 0.0.0.0:8001"
                ));
                None
            }
        };
        let spool_max_bytes = self.spool_max_bytes.unwrap_or(DEFAULT_SPOOL_MAX_BYTES);
        if spool_max_bytes < MIN_SPOOL_MAX_BYTES {
            problems.push(format!(
                "[agent] spool_max_bytes must be at least {MIN_SPOOL_MAX_BYTES}, not {spool_max_bytes}"
            ));
        }
        let state_dir = self
            .state_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        if state_dir.as_os_str().is_empty() {
            problems.push("[agent] state_dir is empty".to_owned());
        }
        Some(AgentSettings {
            state_dir,
            listen: listen?,
            hostname: self
                .hostname
                .filter(|h| !h.trim().is_empty())
                .unwrap_or_else(system_hostname),
            heartbeat_interval: positive_seconds(
                self.heartbeat_interval_seconds,
                DEFAULT_HEARTBEAT_INTERVAL_SECONDS,
                "[agent] heartbeat_interval_seconds",
                problems,
            ),
            min_heartbeat_gap: bounded_seconds(
                self.min_heartbeat_gap_seconds,
                DEFAULT_MIN_HEARTBEAT_GAP_SECONDS,
                0,
                "[agent] min_heartbeat_gap_seconds",
                problems,
            ),
            spool_max_bytes,
            spool_max_age: positive_seconds(
                self.spool_max_age_seconds,
                DEFAULT_SPOOL_MAX_AGE_SECONDS,
                "[agent] spool_max_age_seconds",
                problems,
            ),
        })
    }
}

/// The machine's host name (Linux), else `$HOSTNAME`, else empty.
fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

impl RawCamera {
    fn check(self, n: usize, problems: &mut Vec<String>) -> Option<Camera> {
        let label = match &self.id {
            Some(id) => format!("[[camera]] #{n} \"{id}\""),
            None => format!("[[camera]] #{n}"),
        };
        let before = problems.len();
        let source_options = self.source_options();
        let id = match self.id.clone() {
            None => {
                problems.push(format!("{label}: id is missing"));
                None
            }
            Some(id) if id == RESERVED_CAMERA_ID => {
                problems.push(format!(
                    "{label}: the camera id \"-\" is reserved (it means every camera in /api/streams/-/status)"
                ));
                None
            }
            Some(id) if !streamwatch_protocol::is_valid_camera_id(&id) => {
                problems.push(format!(
                    "{label}: invalid camera id: use 1 to {} characters of A-Z, a-z, 0-9, '.', '_' and '-'",
                    streamwatch_protocol::CAMERA_ID_MAX_LEN
                ));
                None
            }
            Some(id) => Some(id),
        };
        let source = match self.url.as_deref() {
            None => {
                problems.push(format!("{label}: url is missing"));
                None
            }
            Some(url) => parse_source(url, &source_options)
                .map_err(|e| problems.push(format!("{label}: {e}")))
                .ok(),
        };
        if let Some(fps) = self.expected_fps
            && !(fps > 0.0 && fps <= 1000.0)
        {
            problems.push(format!(
                "{label}: expected_fps must be more than 0 and at most 1000, not {fps}"
            ));
        }
        let timezone = match self.timezone.as_deref() {
            None => Some(chrono_tz::UTC),
            Some(name) => match name.parse::<chrono_tz::Tz>() {
                Ok(tz) => Some(tz),
                Err(_) => {
                    problems.push(format!(
                        "{label}: invalid timezone \"{name}\" (use an IANA name such as Europe/Berlin or UTC)"
                    ));
                    None
                }
            },
        };
        let snapshot_interval = bounded_seconds(
            self.snapshot_interval_seconds,
            DEFAULT_SNAPSHOT_INTERVAL_SECONDS,
            MIN_SNAPSHOT_INTERVAL_SECONDS,
            &format!("{label}: snapshot_interval_seconds"),
            problems,
        );
        let picture = self.picture_settings(&label, problems);
        if problems.len() > before {
            return None;
        }
        Some(Camera {
            id: id?,
            url: self.url?,
            source: source?,
            expected_fps: self.expected_fps,
            timezone: timezone?,
            timezone_configured: self.timezone.is_some(),
            snapshot_interval,
            picture,
        })
    }

    /// The picture-health keys, checked; mistakes go to `problems`.
    fn picture_settings(&self, label: &str, problems: &mut Vec<String>) -> PictureSettings {
        let mut checks = Vec::new();
        match &self.picture_checks {
            None => checks = Check::ALL.to_vec(),
            Some(names) => {
                for name in names {
                    match Check::parse(name) {
                        Some(c) if !checks.contains(&c) => checks.push(c),
                        Some(_) => {}
                        None => problems.push(format!(
                            "{label}: unknown picture check \"{name}\" (known: {})",
                            Check::ALL.map(Check::as_str).join(", ")
                        )),
                    }
                }
            }
        }
        let static_scene = self.static_scene.unwrap_or(false);
        if static_scene && self.picture_checks.is_some() && checks.contains(&Check::Frozen) {
            problems.push(format!(
                "{label}: static_scene = true turns the frozen check off: remove \"frozen\" from picture_checks"
            ));
        }
        let mut bound = |value: Option<f64>, default: f64, max: f64, key: &str| match value {
            Some(v) if !(0.0..=max).contains(&v) => {
                problems.push(format!(
                    "{label}: {key} must be between 0 and {max}, not {v}"
                ));
                default
            }
            Some(v) => v,
            None => default,
        };
        let black_max_luma = bound(
            self.black_max_luma,
            picture::DEFAULT_BLACK_MAX_LUMA,
            255.0,
            "black_max_luma",
        );
        let uniform_max_stddev = bound(
            self.uniform_max_stddev,
            picture::DEFAULT_UNIFORM_MAX_STDDEV,
            128.0,
            "uniform_max_stddev",
        );
        let frozen_max_change_pct = bound(
            self.frozen_max_change_pct,
            picture::DEFAULT_FROZEN_MAX_CHANGE_PCT,
            100.0,
            "frozen_max_change_pct",
        );
        let frozen_after = bounded_seconds(
            self.frozen_after_seconds,
            picture::DEFAULT_FROZEN_AFTER.as_secs(),
            1,
            &format!("{label}: frozen_after_seconds"),
            problems,
        );
        PictureSettings {
            checks,
            static_scene,
            frozen_after,
            black_max_luma,
            uniform_max_stddev,
            frozen_max_change_pct,
        }
    }
}

/// The keys of a `[[camera]]` that shape its source, each valid for some schemes only.
#[derive(Debug, Default)]
pub struct SourceOptions {
    pub transport: Option<String>,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_verify: Option<bool>,
    pub speed: Option<f64>,
    pub looped: Option<bool>,
}

impl RawCamera {
    fn source_options(&self) -> SourceOptions {
        SourceOptions {
            transport: self.transport.clone(),
            tls_ca_file: self.tls_ca_file.clone(),
            tls_verify: self.tls_verify,
            speed: self.speed,
            looped: self.looped,
        }
    }
}

/// The source of a camera URL, or one sentence saying what is wrong with it.
pub fn parse_source(url: &str, options: &SourceOptions) -> Result<Source, String> {
    let SourceOptions {
        transport,
        tls_ca_file,
        tls_verify,
        speed,
        looped,
    } = options;
    let (speed, looped) = (*speed, *looped);
    let shown = streamwatch_protocol::redact_url(url);
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let only_for = |key: &str, kind: &str| format!("{key} applies only to {kind} cameras");
    if transport.is_some() && !matches!(scheme.as_deref(), Some("rtsp" | "rtsps")) {
        return Err(only_for("transport", "rtsp://"));
    }
    if scheme.as_deref() != Some("rtsps") {
        if tls_ca_file.is_some() {
            return Err(only_for("tls_ca_file", "rtsps://"));
        }
        if tls_verify.is_some() {
            return Err(only_for("tls_verify", "rtsps://"));
        }
    }
    if (speed.is_some() || looped.is_some()) && scheme.as_deref() != Some("file") {
        return Err(only_for("speed and loop", "file://"));
    }
    match scheme.as_deref() {
        Some("rtsp" | "rtsps") => {
            let parsed = Url::parse(url).map_err(|e| {
                format!(
                    "bad url \"{}\": {e}",
                    streamwatch_protocol::redact_unparseable_url(url)
                )
            })?;
            if parsed.host().is_none() {
                return Err(format!("bad url \"{shown}\": no host"));
            }
            let transport = match transport.as_deref() {
                None | Some("tcp") => RtspTransport::Tcp,
                Some("udp") => RtspTransport::Udp,
                Some(other) => {
                    return Err(format!("transport \"{other}\" is not tcp or udp"));
                }
            };
            if transport == RtspTransport::Udp && parsed.scheme() == "rtsps" {
                return Err(
                    "transport \"udp\" cannot be used with rtsps:// (the video would bypass TLS): use tcp"
                        .to_owned(),
                );
            }
            let tls = TlsOptions {
                ca_file: tls_ca_file.clone(),
                verify: tls_verify.unwrap_or(true),
            };
            if let Some(path) = &tls.ca_file {
                crate::sources::tls::load_ca_file(path)?;
            }
            Ok(Source::Rtsp {
                url: parsed,
                transport,
                tls,
            })
        }
        Some("file") => {
            let parsed = Url::parse(url).map_err(|e| {
                format!(
                    "bad url \"{}\": {e}",
                    streamwatch_protocol::redact_unparseable_url(url)
                )
            })?;
            let path = match parsed.host_str() {
                None | Some("") | Some("localhost") => parsed.to_file_path().ok(),
                Some(_) => None,
            }
            .ok_or_else(|| {
                format!("bad url \"{shown}\": a file URL needs an absolute path, e.g. file:///var/video/clip.mp4")
            })?;
            let speed = speed.unwrap_or(1.0);
            if !(speed > 0.0 && speed <= 1000.0) {
                return Err(format!(
                    "speed must be more than 0 and at most 1000, not {speed}"
                ));
            }
            Ok(Source::File {
                path,
                speed,
                looped: looped.unwrap_or(true),
            })
        }
        Some("stream-status+http" | "stream-status+https") => {
            let inner = &url["stream-status+".len()..];
            let mut status_url = Url::parse(inner).map_err(|e| {
                format!(
                    "bad url \"{}\": {e}",
                    streamwatch_protocol::redact_unparseable_url(url)
                )
            })?;
            if status_url.host().is_none() {
                return Err(format!("bad url \"{shown}\": no host"));
            }
            let remote_id = match status_url.fragment() {
                None | Some("") => String::new(),
                Some(fragment) => {
                    let id = percent_decode(fragment);
                    if !streamwatch_protocol::is_valid_camera_id(&id) {
                        return Err(format!(
                            "bad url \"{shown}\": the fragment names the relayed camera and must be a valid camera id"
                        ));
                    }
                    id
                }
            };
            status_url.set_fragment(None);
            Ok(Source::StreamStatus {
                status_url,
                remote_id,
            })
        }
        Some("simulated") => {
            let parsed = Url::parse(url).map_err(|e| {
                format!(
                    "bad url \"{}\": {e}",
                    streamwatch_protocol::redact_unparseable_url(url)
                )
            })?;
            SimulatedSpec::from_url(&parsed)
                .map(Source::Simulated)
                .map_err(|e| format!("bad url \"{shown}\": {e}"))
        }
        Some(other) => Err(format!(
            "unsupported url scheme \"{other}\" in \"{shown}\" (use rtsp://, rtsps://, file://, stream-status+http://, stream-status+https:// or simulated://)"
        )),
        None => Err(format!(
            "bad url \"{shown}\": no scheme (use rtsp://, rtsps://, file://, stream-status+http://, stream-status+https:// or simulated://)"
        )),
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl RawWebhook {
    fn check(self, n: usize, problems: &mut Vec<String>) -> Option<Webhook> {
        let label = format!("[[webhook]] #{n}");
        let url = match self.url.as_deref() {
            None => {
                problems.push(format!("{label}: url is missing"));
                None
            }
            Some(u) => http_url(
                u,
                &format!("{label}: url"),
                // The path of a webhook URL may be its secret (Slack, Teams, ntfy).
                streamwatch_protocol::redact_url_origin,
                problems,
            ),
        };
        let secret = match self.secret {
            None => {
                problems.push(format!(
                    "{label}: secret is missing (it signs every delivery)"
                ));
                None
            }
            Some(s) if s.is_empty() => {
                problems.push(format!("{label}: secret is empty"));
                None
            }
            Some(s) => Some(Secret::new(s)),
        };
        let events = match self.events {
            None => Some(None),
            Some(names) => {
                let mut events = Vec::new();
                let mut ok = true;
                for name in names {
                    match EventKind::parse(&name) {
                        Some(e) => events.push(e),
                        None => {
                            ok = false;
                            problems.push(format!(
                                "{label}: unknown event \"{name}\" (known: {})",
                                EventKind::ALL
                                    .iter()
                                    .map(|e| e.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ));
                        }
                    }
                }
                ok.then_some(Some(events))
            }
        };
        Some(Webhook {
            url: url?,
            secret: secret?,
            events: events?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[central]
url = "http://127.0.0.1:8080"
token = "swa_secret"

[[camera]]
id = "camera-1"
url = "rtsp://user:pass@10.0.0.5/stream1"
"#;

    fn parse(text: &str) -> Config {
        Config::parse(text).unwrap_or_else(|e| panic!("should parse: {e}\n{text}"))
    }

    fn problems(text: &str) -> Vec<String> {
        match Config::parse(text) {
            Ok(_) => panic!("should not parse:\n{text}"),
            Err(e) => e.problems,
        }
    }

    #[test]
    fn the_spec_example_parses_with_its_defaults() {
        let config = parse(
            r#"
[central]
url = "http://127.0.0.1:8080"      # the streamwatch server
token = "swa_..."                  # agent token of one license

[agent]
state_dir = "/var/lib/streamwatch-agent"   # instance id, sequence, spool
listen = "0.0.0.0:8001"                    # local Heartbeat API

[[camera]]
id = "camera-1"
url = "rtsp://10.0.0.5/stream1"    # or file:///..., stream-status+http://..., simulated://?fps=25
expected_fps = 25                  # optional
timezone = "UTC"                   # optional, IANA name, for last_checked
"#,
        );
        assert_eq!(config.central.url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(config.central.token.expose(), "swa_...");
        assert_eq!(config.central.max_batch_heartbeats, 500);
        assert_eq!(config.central.timeout, Duration::from_secs(15));
        assert_eq!(config.agent.listen.port(), 8001);
        assert_eq!(config.agent.heartbeat_interval, Duration::from_secs(60));
        assert_eq!(config.agent.spool_max_bytes, 64 * 1024 * 1024);
        assert_eq!(config.agent.spool_max_age, Duration::from_secs(604_800));
        assert_eq!(config.cameras.len(), 1);
        assert_eq!(config.cameras[0].expected_fps, Some(25.0));
        assert_eq!(config.cameras[0].timezone, chrono_tz::UTC);
        assert!(config.webhooks.is_empty());
    }

    #[test]
    fn defaults_apply_when_agent_is_left_out() {
        let config = parse(MINIMAL);
        assert_eq!(config.agent.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(
            config.agent.listen,
            DEFAULT_LISTEN.parse().unwrap_or_else(|_| panic!())
        );
        assert!(!config.cameras[0].timezone_configured);
        assert_eq!(
            config.cameras[0].source,
            Source::Rtsp {
                url: Url::parse("rtsp://user:pass@10.0.0.5/stream1")
                    .unwrap_or_else(|e| panic!("{e}")),
                transport: RtspTransport::Tcp,
                tls: TlsOptions::default(),
            }
        );
        assert_eq!(config.cameras[0].display_url(), "rtsp://10.0.0.5/stream1");
        assert_eq!(config.cameras[0].snapshot_interval, Duration::from_secs(60));
        assert_eq!(config.cameras[0].picture, PictureSettings::default());
        assert_eq!(
            config.cameras[0].picture.checks,
            vec![Check::Black, Check::Uniform, Check::Frozen]
        );
        assert_eq!(
            config.cameras[0].picture.frozen_after,
            Duration::from_secs(300)
        );
        assert!(!config.cameras[0].picture.static_scene);
    }

    #[test]
    fn a_static_scene_keeps_the_other_checks_and_an_empty_list_turns_them_all_off() {
        let config = parse(&format!(
            "{MINIMAL}static_scene = true\n[[camera]]\nid = \"b\"\nurl = \"simulated://\"\npicture_checks = []\n"
        ));
        assert!(config.cameras[0].picture.static_scene);
        assert_eq!(config.cameras[0].picture.checks, Check::ALL.to_vec());
        assert!(config.cameras[1].picture.checks.is_empty());
    }

    #[test]
    fn every_documented_key_is_accepted() {
        let config = parse(
            r#"
[central]
url = "https://sw.example.com/base"
token = "swa_x"
timeout_seconds = 5
max_batch_heartbeats = 100
retry_max_seconds = 60

[agent]
state_dir = "/tmp/sw"
listen = "127.0.0.1:9001"
hostname = "box-1"
heartbeat_interval_seconds = 10
min_heartbeat_gap_seconds = 2
spool_max_bytes = 4096
spool_max_age_seconds = 3600

[[camera]]
id = "a"
url = "rtsp://cam/1"
expected_fps = 12.5
timezone = "Europe/Berlin"
transport = "udp"

[[camera]]
id = "b"
url = "file:///var/video/clip.mp4"
speed = 4.0
loop = false

[[camera]]
id = "c"
url = "stream-status+http://engine:8001/status/#camera-7"

[[camera]]
id = "d"
url = "simulated://?fps=10&faults=stall@30s+5s&picture=frozen"
snapshot_interval_seconds = 5
static_scene = false
picture_checks = ["black", "frozen"]
frozen_after_seconds = 600
black_max_luma = 30.5
uniform_max_stddev = 6
frozen_max_change_pct = 2.5

[[webhook]]
url = "https://hooks.example.com/x"
secret = "k"
events = ["camera.offline", "camera.online", "camera.starving", "camera.degraded"]
"#,
        );
        assert_eq!(
            config.central.ingest_url().as_str(),
            "https://sw.example.com/base/api/v1/ingest/heartbeats"
        );
        assert_eq!(
            config.central.healthz_url().as_str(),
            "https://sw.example.com/base/healthz"
        );
        assert_eq!(
            config.central.snapshot_upload_url("cam-1").as_str(),
            "https://sw.example.com/base/api/v1/ingest/snapshots/cam-1"
        );
        assert_eq!(config.agent.hostname, "box-1");
        assert_eq!(config.cameras[0].timezone, chrono_tz::Europe::Berlin);
        assert!(matches!(
            config.cameras[0].source,
            Source::Rtsp {
                transport: RtspTransport::Udp,
                ..
            }
        ));
        assert_eq!(
            config.cameras[1].source,
            Source::File {
                path: PathBuf::from("/var/video/clip.mp4"),
                speed: 4.0,
                looped: false
            }
        );
        match &config.cameras[2].source {
            Source::StreamStatus {
                status_url,
                remote_id,
            } => {
                assert_eq!(status_url.as_str(), "http://engine:8001/status/");
                assert_eq!(remote_id, "camera-7");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(config.cameras[3].source.kind(), "simulated");
        assert_eq!(config.cameras[3].snapshot_interval, Duration::from_secs(5));
        assert_eq!(
            config.cameras[3].picture,
            PictureSettings {
                checks: vec![Check::Black, Check::Frozen],
                static_scene: false,
                frozen_after: Duration::from_secs(600),
                black_max_luma: 30.5,
                uniform_max_stddev: 6.0,
                frozen_max_change_pct: 2.5,
            }
        );
        assert_eq!(config.webhooks[0].events.as_ref().map(Vec::len), Some(4));
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let config = parse(&format!(
            "{MINIMAL}\n[[webhook]]\nurl = \"http://h/x\"\nsecret = \"hook-secret\"\n"
        ));
        let shown = format!("{config:?}");
        assert!(!shown.contains("swa_secret"), "{shown}");
        assert!(!shown.contains("hook-secret"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    /// A broken file and the line `check-config` must print for it.
    #[test]
    fn broken_files_give_one_clear_line_per_mistake() {
        let head = "[central]\nurl = \"http://127.0.0.1:8080\"\ntoken = \"swa_x\"\n";
        let camera = |body: &str| format!("{head}\n[[camera]]\n{body}\n");
        let cases: Vec<(String, Vec<&str>)> = vec![
            (
                format!("{head}\n[agent]\nlisten_addr = \"0.0.0.0:1\"\n"),
                vec![
                    "unknown key \"listen_addr\" in [agent] (known: state_dir, listen, hostname, heartbeat_interval_seconds, min_heartbeat_gap_seconds, spool_max_bytes, spool_max_age_seconds)",
                ],
            ),
            (
                camera("id = \"a\"\nurl = \"rtsp://h/s\"\nfsp = 25\nzone = \"UTC\""),
                vec![
                    "unknown key \"fsp\" in [[camera]] #1 (known: id, url, expected_fps, timezone, transport, tls_ca_file, tls_verify, speed, loop, snapshot_interval_seconds, static_scene, picture_checks, frozen_after_seconds, black_max_luma, uniform_max_stddev, frozen_max_change_pct)",
                    "unknown key \"zone\" in [[camera]] #1 (known: id, url, expected_fps, timezone, transport, tls_ca_file, tls_verify, speed, loop, snapshot_interval_seconds, static_scene, picture_checks, frozen_after_seconds, black_max_luma, uniform_max_stddev, frozen_max_change_pct)",
                ],
            ),
            (
                format!("{head}\n[cameras]\nid = 1\n"),
                vec![
                    "unknown key \"cameras\" at the top level (known: [central], [agent], [[camera]], [[webhook]])",
                ],
            ),
            (
                camera("id = \"a\"\nurl = \"http://h/s\""),
                vec![
                    "[[camera]] #1 \"a\": unsupported url scheme \"http\" in \"http://h/s\" (use rtsp://, rtsps://, file://, stream-status+http://, stream-status+https:// or simulated://)",
                ],
            ),
            (
                camera("id = \"a\"\nurl = \"10.0.0.5/stream\""),
                vec![
                    "[[camera]] #1 \"a\": bad url \"10.0.0.5/stream\": no scheme (use rtsp://, rtsps://, file://, stream-status+http://, stream-status+https:// or simulated://)",
                ],
            ),
            (
                camera("id = \"a\"\nurl = \"rtsp://u:secret@[bad/s\""),
                vec!["[[camera]] #1 \"a\": bad url \"rtsp://[redacted]\": invalid IPv6 address"],
            ),
            (
                camera("id = \"a\"\nurl = \"file://clip.mp4\""),
                vec![
                    "[[camera]] #1 \"a\": bad url \"file://clip.mp4\": a file URL needs an absolute path, e.g. file:///var/video/clip.mp4",
                ],
            ),
            (
                camera("id = \"a\"\nurl = \"simulated://?fps=25&faults=explode@3s\""),
                vec![
                    "[[camera]] #1 \"a\": bad url \"simulated://?[redacted]\": unknown fault \"explode\" (known: stall, offline, error, stop, restart, slow, loss, buffer)",
                ],
            ),
            (
                format!(
                    "{head}\n[[camera]]\nid = \"a\"\nurl = \"rtsp://h/1\"\n[[camera]]\nid = \"b\"\nurl = \"rtsp://h/2\"\n[[camera]]\nid = \"a\"\nurl = \"rtsp://h/3\"\n"
                ),
                vec!["[[camera]] #3: duplicate camera id \"a\" (also #1)"],
            ),
            (
                camera("id = \"a\"\nurl = \"rtsp://h/s\"\ntimezone = \"Mars/Olympus_Mons\""),
                vec![
                    "[[camera]] #1 \"a\": invalid timezone \"Mars/Olympus_Mons\" (use an IANA name such as Europe/Berlin or UTC)",
                ],
            ),
            (
                camera("id = \"camera 1\"\nurl = \"rtsp://h/s\""),
                vec![
                    "[[camera]] #1 \"camera 1\": invalid camera id: use 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-'",
                ],
            ),
            (
                camera("id = \"-\"\nurl = \"rtsp://h/s\""),
                vec![
                    "[[camera]] #1 \"-\": the camera id \"-\" is reserved (it means every camera in /api/streams/-/status)",
                ],
            ),
            (
                camera("url = \"rtsp://h/s\""),
                vec!["[[camera]] #1: id is missing"],
            ),
            (
                camera("id = \"a\"\nurl = \"rtsp://h/s\"\nexpected_fps = 0"),
                vec![
                    "[[camera]] #1 \"a\": expected_fps must be more than 0 and at most 1000, not 0",
                ],
            ),
            (
                camera("id = \"a\"\nurl = \"rtsp://h/s\"\ntransport = \"sctp\""),
                vec!["[[camera]] #1 \"a\": transport \"sctp\" is not tcp or udp"],
            ),
            (
                camera("id = \"a\"\nurl = \"simulated://\"\ntransport = \"udp\""),
                vec!["[[camera]] #1 \"a\": transport applies only to rtsp:// cameras"],
            ),
            (
                camera("id = \"a\"\nurl = \"rtsp://h/s\"\ntls_verify = false"),
                vec!["[[camera]] #1 \"a\": tls_verify applies only to rtsps:// cameras"],
            ),
            (
                camera("id = \"a\"\nurl = \"rtsps://h/s\"\ntransport = \"udp\""),
                vec![
                    "[[camera]] #1 \"a\": transport \"udp\" cannot be used with rtsps:// (the video would bypass TLS): use tcp",
                ],
            ),
            (
                camera("id = \"a\"\nurl = \"rtsps://h/s\"\ntls_ca_file = \"/nonexistent/ca.pem\""),
                vec![
                    "[[camera]] #1 \"a\": tls_ca_file \"/nonexistent/ca.pem\": No such file or directory (os error 2)",
                ],
            ),
            (
                camera("id = \"a\"\nurl = \"simulated://\"\nsnapshot_interval_seconds = 2"),
                vec!["[[camera]] #1 \"a\": snapshot_interval_seconds must be at least 5"],
            ),
            (
                camera(
                    "id = \"a\"\nurl = \"simulated://\"\npicture_checks = [\"black\", \"blurry\"]\nfrozen_after_seconds = 0",
                ),
                vec![
                    "[[camera]] #1 \"a\": unknown picture check \"blurry\" (known: black, uniform, frozen)",
                    "[[camera]] #1 \"a\": frozen_after_seconds must be at least 1",
                ],
            ),
            (
                camera(
                    "id = \"a\"\nurl = \"simulated://\"\nblack_max_luma = 300\nuniform_max_stddev = -1\nfrozen_max_change_pct = nan",
                ),
                vec![
                    "[[camera]] #1 \"a\": black_max_luma must be between 0 and 255, not 300",
                    "[[camera]] #1 \"a\": uniform_max_stddev must be between 0 and 128, not -1",
                    "[[camera]] #1 \"a\": frozen_max_change_pct must be between 0 and 100, not NaN",
                ],
            ),
            (
                camera(
                    "id = \"a\"\nurl = \"simulated://\"\nstatic_scene = true\npicture_checks = [\"frozen\"]",
                ),
                vec![
                    "[[camera]] #1 \"a\": static_scene = true turns the frozen check off: remove \"frozen\" from picture_checks",
                ],
            ),
            (
                camera("id = \"a\"\nurl = \"simulated://?picture=grey\""),
                vec![
                    "[[camera]] #1 \"a\": bad url \"simulated://?[redacted]\": picture \"grey\" is not ok, black, uniform or frozen",
                ],
            ),
            (
                camera("id = \"a\"\nurl = \"simulated://\"\nstatic_scene = \"yes\""),
                vec!["line 8: invalid type: string \"yes\", expected a boolean"],
            ),
            (
                camera("id = \"a\"\nurl = \"rtsp://h/s\"\nexpected_fps = \"fast\""),
                vec!["line 8: invalid type: string \"fast\", expected f64"],
            ),
            (
                "[[camera]]\nid = \"a\"\nurl = \"simulated://\"\n".to_owned(),
                vec!["[central] is missing: it needs url and token"],
            ),
            (
                "[central]\ntoken = \"swa_x\"\n".to_owned(),
                vec!["[central] url is missing"],
            ),
            (
                "[central]\nurl = \"http://h\"\n".to_owned(),
                vec!["[central] token is missing: create an agent token for the license (swa_...)"],
            ),
            (
                "[central]\nurl = \"ftp://h\"\ntoken = \"\"\n".to_owned(),
                vec![
                    "[central] url \"ftp://h\": unsupported scheme \"ftp\" (use http:// or https://)",
                    "[central] token is empty",
                ],
            ),
            (
                format!("{head}[agent]\nlisten = \"8001\"\nspool_max_bytes = 10\n"),
                vec![
                    "[agent] listen \"8001\" is not an address with a port, e.g. 0.0.0.0:8001",
                    "[agent] spool_max_bytes must be at least 1024, not 10",
                ],
            ),
            (
                format!(
                    "{head}[[webhook]]\nurl = \"http://h/x\"\nevents = [\"camera.exploded\"]\n"
                ),
                vec![
                    "[[webhook]] #1: secret is missing (it signs every delivery)",
                    "[[webhook]] #1: unknown event \"camera.exploded\" (known: camera.offline, camera.online, camera.starving, camera.degraded)",
                ],
            ),
            (
                format!(
                    "{head}[agent]\nheartbeat_interval_seconds = 9223372036854775807\nmin_heartbeat_gap_seconds = 31622401\n"
                ),
                vec![
                    "[agent] heartbeat_interval_seconds must be at most 31622400 (a year), not 9223372036854775807",
                    "[agent] min_heartbeat_gap_seconds must be at most 31622400 (a year), not 31622401",
                ],
            ),
            (
                "[central\nurl = 1".to_owned(),
                vec!["line 1: unclosed table, expected `]`"],
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(problems(&text), expected, "for the file:\n{text}");
        }
    }

    #[test]
    fn unknown_keys_and_other_mistakes_are_reported_together() {
        let text = "[central]\nurl = \"http://h\"\ntoken = \"t\"\nproxy = \"x\"\n[[camera]]\nid = \"a\"\nurl = \"rtsp://h/s\"\ntimezone = \"Nowhere\"\n";
        assert_eq!(
            problems(text),
            vec![
                "unknown key \"proxy\" in [central] (known: url, token, timeout_seconds, max_batch_heartbeats, retry_max_seconds)",
                "[[camera]] #1 \"a\": invalid timezone \"Nowhere\" (use an IANA name such as Europe/Berlin or UTC)",
            ]
        );
    }

    #[test]
    fn secret_parts_of_bad_urls_are_not_echoed() {
        let text = "[central]\nurl = \"ftp://u:cpw@h/base?key=cq\"\ntoken = \"t\"\n[[camera]]\nid = \"a\"\nurl = \"http://admin:hunter2@h/s?token=camq\"\n[[webhook]]\nurl = \"ftp://u:hpw@hooks.example/services/T0/B0/hookpath?k=hq\"\nsecret = \"s\"\n";
        assert_eq!(
            problems(text),
            vec![
                "[central] url \"ftp://h/base?[redacted]\": unsupported scheme \"ftp\" (use http:// or https://)",
                "[[camera]] #1 \"a\": unsupported url scheme \"http\" in \"http://h/s?[redacted]\" (use rtsp://, rtsps://, file://, stream-status+http://, stream-status+https:// or simulated://)",
                "[[webhook]] #1: url \"ftp://hooks.example/[redacted]\": unsupported scheme \"ftp\" (use http:// or https://)",
            ]
        );
    }

    #[test]
    fn passwords_in_bad_urls_are_not_echoed() {
        let text = "[central]\nurl = \"http://h\"\ntoken = \"t\"\n[[camera]]\nid = \"a\"\nurl = \"http://admin:hunter2@h/s\"\n";
        let all = problems(text).join("\n");
        assert!(!all.contains("hunter2"), "{all}");
    }

    /// Property tests: whatever the file holds, the parser answers with a config or with
    /// readable problems, never panics, and never quotes a secret.
    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// The secrets of [`base`]: the token, the webhook key, and what URLs hide.
        const SECRETS: &[&str] = &[
            "TOKENSECRET",
            "HOOKKEYSECRET",
            "CENTRALPWSECRET",
            "CENTRALQSECRET",
            "HOOKPWSECRET",
            "HOOKPATHSECRET",
            "HOOKQSECRET",
            "CAMPWSECRET",
            "CAMQSECRET",
        ];

        /// A valid file holding every secret, with every key set.
        fn base() -> toml::Table {
            let text = r#"
[central]
url = "https://user:CENTRALPWSECRET@central.example/base?key=CENTRALQSECRET"
token = "TOKENSECRET"
timeout_seconds = 15
max_batch_heartbeats = 100
retry_max_seconds = 300

[agent]
state_dir = "/var/lib/streamwatch-agent"
listen = "127.0.0.1:8001"
hostname = "box"
heartbeat_interval_seconds = 60
min_heartbeat_gap_seconds = 5
spool_max_bytes = 65536
spool_max_age_seconds = 3600

[[camera]]
id = "cam-1"
url = "rtsp://admin:CAMPWSECRET@10.0.0.5:554/s1?token=CAMQSECRET"
expected_fps = 25.0
timezone = "Europe/Berlin"
transport = "tcp"

[[camera]]
id = "cam-2"
url = "simulated://?fps=25&picture=black"
snapshot_interval_seconds = 60
static_scene = false
picture_checks = ["black", "uniform", "frozen"]
frozen_after_seconds = 300
black_max_luma = 20.0
uniform_max_stddev = 3.0
frozen_max_change_pct = 1.0

[[webhook]]
url = "https://u:HOOKPWSECRET@hooks.example/services/HOOKPATHSECRET?t=HOOKQSECRET"
secret = "HOOKKEYSECRET"
events = ["camera.offline"]
"#;
            toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
        }

        /// Any TOML value: wrong types, huge and negative numbers, NaN, unicode, odd URLs,
        /// nested arrays and tables.
        fn value() -> impl Strategy<Value = toml::Value> {
            let leaf = prop_oneof![
                any::<i64>().prop_map(toml::Value::Integer),
                prop_oneof![
                    Just(-1i64),
                    Just(0),
                    Just(1),
                    Just(i64::MAX),
                    Just(i64::MIN)
                ]
                .prop_map(toml::Value::Integer),
                any::<f64>().prop_map(toml::Value::Float),
                any::<bool>().prop_map(toml::Value::Boolean),
                ".{0,20}".prop_map(toml::Value::String),
                prop_oneof![
                    Just("rtsp://"),
                    Just("rtsp://[::1"),
                    Just("rtsps://h/s"),
                    Just("file:///"),
                    Just("file://host/x.mp4"),
                    Just("stream-status+http://h:1/status/#bad id"),
                    Just("stream-status+https://"),
                    Just("simulated://?fps=-1&faults=stall@-3s"),
                    Just("simulated://?fps=nan"),
                    Just("http://"),
                    Just("https://h:99999/"),
                    Just("ftp://h"),
                    Just("://"),
                    Just("-"),
                    Just("0.0.0.0:99999"),
                    Just("[::]:0"),
                    Just("Mars/Olympus_Mons"),
                    Just("udp"),
                    Just("camera.exploded"),
                ]
                .prop_map(|s| toml::Value::String(s.to_owned())),
                "[a-z+.-]{1,12}://[^\\s]{0,20}".prop_map(toml::Value::String),
            ];
            leaf.prop_recursive(2, 8, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
                    prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                        .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
                ]
            })
        }

        /// One change to a file: a key set to any value, a key removed, or a section replaced.
        #[derive(Debug, Clone)]
        enum Mutation {
            Set {
                section: usize,
                item: usize,
                key: usize,
                value: toml::Value,
            },
            Remove {
                section: usize,
                item: usize,
                key: usize,
            },
            Replace {
                section: usize,
                value: toml::Value,
            },
            /// A `url` replaced by a broken or unsupported one that still holds secrets.
            SecretUrl {
                section: usize,
                item: usize,
                scheme: &'static str,
                host: &'static str,
            },
        }

        fn mutation() -> impl Strategy<Value = Mutation> {
            prop_oneof![
                // Extreme numbers in [central] and [agent], where the durations and limits are.
                2 => (
                    0..2usize,
                    0..12usize,
                    prop::sample::select(vec![i64::MAX, i64::MAX - 1, 1 << 62, -1, 0]),
                )
                    .prop_map(|(section, key, n)| Mutation::Set {
                        section,
                        item: 0,
                        key,
                        value: toml::Value::Integer(n),
                    }),
                4 => (0..4usize, 0..3usize, 0..12usize, value())
                    .prop_map(|(section, item, key, value)| Mutation::Set { section, item, key, value }),
                2 => (0..4usize, 0..3usize, 0..12usize)
                    .prop_map(|(section, item, key)| Mutation::Remove { section, item, key }),
                1 => (0..5usize, value()).prop_map(|(section, value)| Mutation::Replace { section, value }),
                3 => (
                    0..4usize,
                    0..3usize,
                    prop::sample::select(vec![
                        "http", "https", "ftp", "rtsp", "rtsps", "file", "simulated",
                        "stream-status+http", "mailto", "",
                    ]),
                    prop::sample::select(vec!["h", "", "[bad", "h:99999", "[::1]:1", "h h"]),
                )
                    .prop_map(|(section, item, scheme, host)| Mutation::SecretUrl { section, item, scheme, host }),
            ]
        }

        /// The table a mutation edits: `[central]`, `[agent]`, or one `[[camera]]`/`[[webhook]]`.
        fn table_of(
            doc: &mut toml::Table,
            section: usize,
            item: usize,
        ) -> Option<&mut toml::Table> {
            let name = TOP_KEYS[section % TOP_KEYS.len()];
            match doc.get_mut(name)? {
                toml::Value::Table(t) => Some(t),
                toml::Value::Array(items) if !items.is_empty() => {
                    let n = items.len();
                    items[item % n].as_table_mut()
                }
                _ => None,
            }
        }

        fn apply(doc: &mut toml::Table, m: Mutation) {
            match m {
                Mutation::Set {
                    section,
                    item,
                    key,
                    value,
                } => {
                    let name = TOP_KEYS[section % TOP_KEYS.len()];
                    let keys = section_keys(name);
                    // One past the known keys: an unknown one.
                    let key = keys
                        .get(key % (keys.len() + 1))
                        .copied()
                        .unwrap_or("surprise");
                    if let Some(t) = table_of(doc, section, item) {
                        t.insert(key.to_owned(), value);
                    }
                }
                Mutation::Remove { section, item, key } => {
                    let name = TOP_KEYS[section % TOP_KEYS.len()];
                    let keys = section_keys(name);
                    if let Some(t) = table_of(doc, section, item) {
                        t.remove(keys[key % keys.len()]);
                    }
                }
                Mutation::Replace { section, value } => {
                    let name = TOP_KEYS.get(section).copied().unwrap_or("cameras");
                    doc.insert(name.to_owned(), value);
                }
                Mutation::SecretUrl {
                    section,
                    item,
                    scheme,
                    host,
                } => {
                    // Only a webhook's path is secret: a camera's path is shown by design.
                    let path = if TOP_KEYS[section % TOP_KEYS.len()] == "webhook" {
                        "HOOKPATHSECRET"
                    } else {
                        "p"
                    };
                    let url = format!(
                        "{scheme}://u:HOOKPWSECRET@{host}/{path}?t=CAMQSECRET#CENTRALQSECRET"
                    );
                    if let Some(t) = table_of(doc, section, item) {
                        t.insert("url".to_owned(), toml::Value::String(url));
                    }
                }
            }
        }

        /// The parser's answer is a config or readable problems without secrets; a config's
        /// durations are safe to add to `Instant::now()`.
        fn check(text: &str) -> Result<(), TestCaseError> {
            match Config::parse(text) {
                Ok(config) => {
                    let shown = format!("{config:?}");
                    for secret in ["TOKENSECRET", "HOOKKEYSECRET"] {
                        prop_assert!(!shown.contains(secret), "{shown}");
                    }
                    let now = std::time::Instant::now();
                    for d in [
                        config.central.timeout,
                        config.central.retry_max,
                        config.agent.heartbeat_interval,
                        config.agent.min_heartbeat_gap,
                        config.agent.spool_max_age,
                    ] {
                        prop_assert!(now.checked_add(d).is_some(), "{d:?}");
                    }
                    for camera in &config.cameras {
                        for d in [camera.snapshot_interval, camera.picture.frozen_after] {
                            prop_assert!(now.checked_add(d).is_some(), "{d:?}");
                        }
                        prop_assert!(
                            camera.snapshot_interval.as_secs() >= MIN_SNAPSHOT_INTERVAL_SECONDS
                        );
                    }
                }
                Err(e) => {
                    prop_assert!(!e.problems.is_empty(), "a rejection says why");
                    for problem in &e.problems {
                        prop_assert!(!problem.trim().is_empty(), "{:?}", e.problems);
                        for secret in SECRETS {
                            prop_assert!(!problem.contains(secret), "{problem}\n{text}");
                        }
                    }
                }
            }
            Ok(())
        }

        #[test]
        fn the_base_file_is_valid() {
            let text = toml::to_string(&base()).unwrap_or_else(|e| panic!("{e}"));
            parse(&text);
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn arbitrary_text_never_panics(text in "(?s).{0,200}") {
                check(&text)?;
            }

            #[test]
            fn a_mangled_real_file_never_panics(cut in 0usize..2000, insert in ".{0,8}") {
                // A valid file cut short or with a few characters pasted in somewhere.
                let text = toml::to_string(&base()).unwrap_or_else(|e| panic!("{e}"));
                let mut at = cut.min(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                check(&text[..at])?;
                check(&format!("{}{insert}{}", &text[..at], &text[at..]))?;
            }

            #[test]
            fn mutated_valid_files_are_parsed_or_explained(
                mutations in prop::collection::vec(mutation(), 1..5),
            ) {
                let mut doc = base();
                for m in mutations {
                    apply(&mut doc, m);
                }
                // NaN and friends serialize; a value TOML cannot write (none so far) is skipped.
                if let Ok(text) = toml::to_string(&doc) {
                    check(&text)?;
                }
            }
        }
    }
}
