#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its location"
)]

//! API tests against a real PostgreSQL: one fresh database per test (`#[sqlx::test]`, which
//! needs `DATABASE_URL`; `scripts/test` provides it).

mod helpers;
mod receiver;

mod acknowledge;
mod agent;
mod alerting;
mod bad_input;
mod browser;
mod channels;
mod cli;
mod compose;
mod contract;
mod demo;
mod durability;
mod failover;
mod ingest;
mod instances;
mod isolation;
mod licenses;
mod login;
mod notifications;
mod notify_bench;
mod notify_processes;
mod outbound;
mod quiet;
mod quiet_notify;
mod replicas;
mod retention;
mod routing_settings;
mod schema;
mod smtp;
mod snapshots;
mod status;
mod token_cache;
mod tokens;
mod ui;
mod ui_bench;
mod ui_channels;
mod ui_quiet;
mod unavailable;
