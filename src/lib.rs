//! streamwatch: the central service of a multi-tenant control plane for video-stream sites.
//!
//! Edge agents push heartbeats; this crate stores them in PostgreSQL, derives each license's
//! status, serves the JSON API and the web UI, and e-mails people when a site goes quiet.
//! `docs/ARCHITECTURE.md` is the map; `../shared/SPEC.md` the behaviour.
//!
//! # Layout
//!
//! - [`config`]: typed, layered configuration (file + `STREAMWATCH__*` variables).
//! - [`startup`]: [`startup::Application`], which binds a port (0 in tests) and serves until a
//!   shutdown signal.
//! - [`http`]: the axum router. One module per resource, the one error type
//!   ([`http::error::ApiError`], problem+json), the auth extractors and the OpenAPI document.
//! - [`auth`]: credential mechanics (argon2id passwords, JWTs, opaque tokens, rate limits).
//! - [`domain`]: newtypes whose constructors validate (`EmailAddress`, `LicenseKey`, ...).
//! - [`store`]: the SQL, by aggregate; [`db`]: pool, migrations, tenant-scoped transactions.
//! - [`ingest`]: heartbeat validation, the time rules and the group-commit writer.
//! - [`notify`]: inactivity e-mails: the sweep, the outbox sender, SMTP, templates, the scheduler.
//! - [`accounts`]: creating tenants and users (API and CLI share it).
//! - [`ui`]: the operators' web pages (askama templates, session cookie, CSRF, CSP).
//! - [`demo`]: `streamwatch demo`, with a private PostgreSQL ([`private_pg`]) and in-process agents.
//! - [`cli`]: the `streamwatch` command line.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod http;
pub mod ingest;
pub mod notify;
pub mod private_pg;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod ui;

#[cfg(test)]
mod layering;
