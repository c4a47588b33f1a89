//! The SQL, by aggregate. Functions take a connection (usually a tenant transaction from
//! [`crate::db::begin_tenant`]) and always filter by `tenant_id` themselves as well: row-level
//! security is the second wall, not the first.

pub mod agent_tokens;
pub mod api_keys;
pub mod heartbeats;
pub mod ingest;
pub mod instances;
pub mod licenses;
pub mod notifications;
pub mod rollup;
pub mod status;
pub mod tenants;
pub mod users;
