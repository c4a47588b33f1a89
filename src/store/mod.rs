//! The SQL, by aggregate. Functions take a connection (usually a tenant transaction from
//! [`crate::db::begin_tenant`]) and always filter by `tenant_id` themselves as well: row-level
//! security is the second wall, not the first. The ingest writer and the notification sweep and
//! sender work across tenants by design: their statements ([`ingest`], [`rollup`],
//! [`notifications`], [`outbox`], [`alive`]) run on the owner's connection.
//!
//! The store depends on the domain types only, never on the engines that call it (`ingest`,
//! `notify`) or on HTTP: what it returns is defined here or in `domain`, and its errors are
//! `sqlx::Error`.

pub mod agent_tokens;
pub mod alive;
pub mod api_keys;
pub mod credentials;
pub mod heartbeats;
pub mod ingest;
pub mod instances;
pub mod licenses;
pub mod notifications;
pub mod outbox;
pub mod outbox_history;
pub mod rollup;
pub mod status;
pub mod tenants;
pub mod users;
