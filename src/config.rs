//! Typed, layered configuration: built-in defaults, then an optional TOML file, then
//! `STREAMWATCH__SECTION__KEY` environment variables (SPEC section 11).
//!
//! Secrets are `SecretString`s: their `Debug` prints `[REDACTED]`, so a logged `Settings`
//! never leaks them. `Settings::validate` refuses weak or missing secrets in production.

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::{net::SocketAddr, path::Path};

/// The minimum length of the JWT signing secret (HS256 wants at least the hash size).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub environment: Environment,
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub auth: AuthSettings,
    pub smtp: SmtpSettings,
    pub clock: ClockSettings,
    pub log: LogSettings,
    pub retention: RetentionSettings,
    pub ingest: IngestSettings,
    pub channels: ChannelSettings,
    pub snapshots: SnapshotSettings,
}

/// Camera snapshots uploaded by agents (SPEC section 7).
#[derive(Debug, Clone, Deserialize)]
pub struct SnapshotSettings {
    /// The most JPEG bytes one tenant may keep stored (latest and bad-state snapshots of all its
    /// cameras); an upload that would go over it is refused with 507 and nothing is replaced.
    /// Each camera holds at most two snapshots of at most 256 KiB, so the default (256 MiB)
    /// fits 512 cameras at the largest size and several thousand at typical sizes.
    pub max_bytes_per_tenant: u64,
}

/// Outbound alert channels (SPEC section 5a).
#[derive(Debug, Clone, Deserialize)]
pub struct ChannelSettings {
    /// Accept plain `http` and private, loopback and link-local targets (on-premises installs,
    /// tests, the demo). Off by default: a tenant must not make the server call into its own
    /// network.
    pub allow_private_targets: bool,
}

/// The group-commit writer's bounds (`ingest::writer::WriterConfig`).
#[derive(Debug, Clone, Deserialize)]
pub struct IngestSettings {
    /// Requests waiting for a writer beyond this many are refused with 429.
    pub queue_capacity: usize,
    /// Decoded bytes of the requests waiting or being written, at most; beyond, 429.
    pub queue_bytes: usize,
    /// Writer tasks, each one transaction at a time.
    pub writers: usize,
    /// Heartbeats per transaction, at most.
    pub max_batch_heartbeats: usize,
    /// Ingest requests one agent token may send per minute (also its burst); past it, 429.
    pub requests_per_token_per_minute: u32,
    /// Ingest requests one license may receive per minute, all its tokens together.
    pub requests_per_license_per_minute: u32,
    /// Live agent instances per license (SPEC section 2); a new one past it gets 409.
    pub max_instances_per_license: usize,
    /// Cache verified agent tokens in memory, kept in step across replicas by LISTEN/NOTIFY
    /// (`ingest::token_cache`); `false` reads every ingest request's token from the database.
    pub agent_token_cache: bool,
    /// Fault injection for the in-process integration tests (`tests/api`). Never deserialized
    /// (`serde(skip)`): no configuration file, environment variable or request can set it, only
    /// code that builds `Settings` itself.
    #[serde(skip)]
    pub faults: IngestFaults,
    /// The same for the agent token cache's invalidation listener (`ingest::token_cache`).
    #[serde(skip)]
    pub token_listener_faults: TokenListenerFaults,
}

/// Failures the integration tests inject into the ingest writer (`ingest::writer`); none by
/// default.
#[derive(Debug, Clone, Copy, Default)]
pub struct IngestFaults {
    /// A batch holding a request of this agent instance panics in its writer task.
    pub panic_on_instance: Option<uuid::Uuid>,
    /// The first backoff after a writer failure instead of 100 ms, so that a test can watch
    /// `/readyz` while the writer waits it out.
    pub min_backoff: Option<std::time::Duration>,
}

/// A hook the integration tests use on the agent token cache's listener
/// (`ingest::token_cache::spawn_listener`); none by default.
#[derive(Debug, Clone, Default)]
pub struct TokenListenerFaults {
    /// While set, the listener does not (re)connect: a test holds it down after terminating its
    /// connection, to watch the cache being bypassed.
    pub hold: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    /// Days of heartbeat history kept (the activity timeline reads it); at least 1.
    pub heartbeat_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `STREAMWATCH__DATABASE__URL`, else `DATABASE_URL`.
    pub url: Option<SecretString>,
    pub max_connections: u32,
    /// Apply pending migrations when `serve` starts.
    pub migrate_on_start: bool,
    /// How long a request waits for a pooled connection before it gets a 503.
    pub acquire_timeout_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub addr: SocketAddr,
    /// Base URL used in links that leave the server (e-mails, agent config snippets).
    pub public_url: Option<String>,
    /// Per-request timeout.
    pub request_timeout_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// HS256 secret, at least 32 bytes. Required in production. In development a random
    /// secret is generated at start (tokens then do not survive a restart).
    pub jwt_secret: Option<SecretString>,
    /// Platform admin Bearer token. Unset: the admin API answers 404.
    pub admin_token: Option<SecretString>,
    /// Lifetime of access tokens; at most one hour.
    pub access_token_ttl_seconds: u64,
    /// `iss` and `aud` of the access tokens.
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// Failed logins allowed per account within `login_window_seconds`.
    pub login_max_failures_per_account: u32,
    /// Login attempts allowed per client address within `login_window_seconds`.
    pub login_max_attempts_per_address: u32,
    pub login_window_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSettings {
    /// `smtp://host:port` (`?tls=required` for STARTTLS) or `smtps://user:pass@host:465`; it
    /// may carry a password. Unset outside production: e-mails go to `mailbox_dir`.
    pub url: Option<SecretString>,
    /// Sender address, e.g. `streamwatch <alerts@example.com>`.
    pub from: String,
    /// The development mailbox folder (used only without `url`, outside production).
    pub mailbox_dir: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClockSettings {
    /// Enables the simulated clock and its admin routes; refused in production.
    pub simulated: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// `pretty` for people, `json` for log pipelines.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info,streamwatch=debug`; `RUST_LOG` overrides it.
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Defaults, as one serialisable document so that figment can layer over it.
fn defaults() -> serde_json::Value {
    serde_json::json!({
        "environment": "development",
        "database": { "max_connections": 20, "migrate_on_start": true, "acquire_timeout_seconds": 5 },
        "http": { "addr": "127.0.0.1:8080", "request_timeout_seconds": 30 },
        "auth": {
            "access_token_ttl_seconds": 3600,
            "jwt_issuer": "streamwatch",
            "jwt_audience": "streamwatch-api",
            "login_max_failures_per_account": 5,
            "login_max_attempts_per_address": 30,
            "login_window_seconds": 900
        },
        "smtp": { "from": "streamwatch <streamwatch@localhost>", "mailbox_dir": "mailbox" },
        "clock": { "simulated": false },
        "log": { "format": "pretty", "filter": "info" },
        "retention": { "heartbeat_days": 30 },
        "ingest": { "queue_capacity": 4096, "queue_bytes": 134217728, "writers": 2, "max_batch_heartbeats": 5000,
                    "requests_per_token_per_minute": 600, "requests_per_license_per_minute": 1200,
                    "max_instances_per_license": 8, "agent_token_cache": true },
        "channels": { "allow_private_targets": false },
        "snapshots": { "max_bytes_per_tenant": 268435456 }
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not `#[source]`: figment's message is complete, and a source would print it twice.
    #[error("configuration (file or STREAMWATCH__SECTION__KEY variables): {0}")]
    Load(Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Loads defaults, then `file` (if given), then the environment, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(defaults()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(Env::prefixed("STREAMWATCH__").split("__"));
        let mut settings: Settings = figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        if settings.database.url.is_none() {
            settings.database.url = std::env::var("DATABASE_URL").ok().map(SecretString::from);
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Checks that do not depend on where the values came from.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.auth.access_token_ttl_seconds == 0 || self.auth.access_token_ttl_seconds > 3600 {
            return invalid("auth.access_token_ttl_seconds must be between 1 and 3600");
        }
        if let Some(secret) = &self.auth.jwt_secret
            && secret.expose_secret().len() < MIN_JWT_SECRET_BYTES
        {
            return invalid(
                "auth.jwt_secret (STREAMWATCH__AUTH__JWT_SECRET) must be at least 32 bytes",
            );
        }
        if let Some(token) = &self.auth.admin_token
            && token.expose_secret().trim().is_empty()
        {
            return invalid("auth.admin_token (STREAMWATCH__AUTH__ADMIN_TOKEN) must not be empty");
        }
        if self.smtp.from.parse::<lettre::message::Mailbox>().is_err() {
            return invalid(
                "smtp.from (STREAMWATCH__SMTP__FROM) must be an e-mail address like 'streamwatch <alerts@example.com>'",
            );
        }
        if self.ingest.queue_capacity == 0
            || self.ingest.queue_bytes == 0
            || self.ingest.writers == 0
            || self.ingest.max_batch_heartbeats == 0
        {
            return invalid(
                "ingest.queue_capacity, ingest.queue_bytes, ingest.writers and ingest.max_batch_heartbeats must be at least 1",
            );
        }
        if self.ingest.requests_per_token_per_minute == 0
            || self.ingest.requests_per_license_per_minute == 0
        {
            return invalid(
                "ingest.requests_per_token_per_minute (STREAMWATCH__INGEST__REQUESTS_PER_TOKEN_PER_MINUTE) and ingest.requests_per_license_per_minute (STREAMWATCH__INGEST__REQUESTS_PER_LICENSE_PER_MINUTE) must be at least 1",
            );
        }
        if self.ingest.max_instances_per_license == 0 {
            return invalid(
                "ingest.max_instances_per_license (STREAMWATCH__INGEST__MAX_INSTANCES_PER_LICENSE) must be at least 1",
            );
        }
        if self.retention.heartbeat_days == 0 {
            return invalid(
                "retention.heartbeat_days (STREAMWATCH__RETENTION__HEARTBEAT_DAYS) must be at least 1",
            );
        }
        if self.snapshots.max_bytes_per_tenant == 0 {
            return invalid(
                "snapshots.max_bytes_per_tenant (STREAMWATCH__SNAPSHOTS__MAX_BYTES_PER_TENANT) must be at least 1",
            );
        }
        if self.environment == Environment::Production {
            if self.auth.jwt_secret.is_none() {
                return invalid(
                    "production requires auth.jwt_secret (STREAMWATCH__AUTH__JWT_SECRET), at least 32 bytes",
                );
            }
            if let Some(token) = &self.auth.admin_token
                && token.expose_secret().len() < 24
            {
                return invalid(
                    "production requires auth.admin_token (STREAMWATCH__AUTH__ADMIN_TOKEN) of at least 24 characters, or none",
                );
            }
            if self.clock.simulated {
                return invalid(
                    "the simulated clock (STREAMWATCH__CLOCK__SIMULATED) is refused in production",
                );
            }
        }
        if let Some(url) = &self.http.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid(
                "http.public_url (STREAMWATCH__HTTP__PUBLIC_URL) must start with http:// or https://",
            );
        }
        Ok(())
    }

    pub fn database_url(&self) -> Result<&str, ConfigError> {
        self.database
            .url
            .as_ref()
            .map(|s| s.expose_secret())
            .ok_or_else(|| {
                ConfigError::Invalid(
                    "no database URL: set STREAMWATCH__DATABASE__URL (or DATABASE_URL)".to_owned(),
                )
            })
    }

    /// The base URL for links to this server, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.http.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.http.addr),
        }
    }

    /// Settings for tests and tools: the defaults, with nothing read from the environment.
    pub fn defaults_for_tests() -> Self {
        #[expect(
            clippy::expect_used,
            reason = "the built-in defaults are a constant document"
        )]
        Figment::from(Serialized::defaults(defaults()))
            .extract()
            .expect("defaults deserialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_development_on_port_8080() {
        let s = Settings::defaults_for_tests();
        assert_eq!(s.environment, Environment::Development);
        assert_eq!(s.http.addr.to_string(), "127.0.0.1:8080");
        assert!(s.validate().is_ok());
    }

    #[test]
    fn production_refuses_missing_or_weak_secrets() {
        let mut s = Settings::defaults_for_tests();
        s.environment = Environment::Production;
        assert!(s.validate().is_err(), "no jwt secret");
        s.auth.jwt_secret = Some(SecretString::from("short".to_owned()));
        assert!(s.validate().is_err(), "short jwt secret");
        s.auth.jwt_secret = Some(SecretString::from("x".repeat(32)));
        assert!(s.validate().is_ok());
        s.clock.simulated = true;
        assert!(s.validate().is_err(), "simulated clock");
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut s = Settings::defaults_for_tests();
        s.auth.admin_token = Some(SecretString::from("super-secret-admin-token".to_owned()));
        assert!(!format!("{s:?}").contains("super-secret"));
    }
}
