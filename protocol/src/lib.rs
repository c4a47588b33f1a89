//! Wire types shared by the streamwatch server and the edge agent.
//!
//! # Conventions
//!
//! - serde only: no sqlx, axum or reqwest here, so that the agent stays small.
//! - Changes are additive. A new field is `#[serde(default)]` so that documents from older
//!   agents still parse; no field is renamed or removed. The `Streamwatch-Protocol` header
//!   carries the version, and the server accepts every version it has ever shipped.
//! - Unknown numeric values are `-1`, as in the edge Heartbeat API.
//!
//! The heartbeat types (version 1, SPEC section 3) arrive with heartbeat ingest.

/// The header that names the protocol version of a request body.
pub const PROTOCOL_HEADER: &str = "Streamwatch-Protocol";

/// The newest protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The value the protocol uses for an unknown number.
pub const UNKNOWN: i64 = -1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_and_version_are_stable() {
        // Agents in the field send exactly this; changing it would break them.
        assert_eq!(PROTOCOL_HEADER, "Streamwatch-Protocol");
        assert_eq!(PROTOCOL_VERSION, 1);
        assert_eq!(UNKNOWN, -1);
    }
}
