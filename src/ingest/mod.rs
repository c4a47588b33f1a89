//! Heartbeat ingest (SPEC section 3): validating a batch, the time rules, and the
//! group-commit writer that stores heartbeats exactly once.
//!
//! Flow: `http::ingest` authenticates the agent token, decodes (gzip) within the size limits,
//! and calls [`validate::parse_batch`]. That reports every bad field by JSON pointer and strips
//! credentials from camera URLs. The request then goes to the [`writer::Writer`], which puts
//! the requests that arrive together into one transaction and one commit
//! ([`batch::write_batch`]), and answers each request only after that commit.

pub mod batch;
pub mod limits;
pub mod token_cache;
pub mod validate;
pub mod writer;
