//! Wire types shared by the streamwatch server and the edge agent.
//!
//! # Conventions
//!
//! - serde only: no sqlx, axum or reqwest here, so that the agent stays small.
//! - Changes are additive. A new field is `#[serde(default)]` so that documents from older
//!   agents still parse; no field is renamed or removed. The `Streamwatch-Protocol` header
//!   carries the version, and the server accepts every version it has ever shipped.
//! - Unknown numeric values are `-1`, as in the edge Heartbeat API.
//! - Unknown fields are ignored when parsing (no `deny_unknown_fields`): a newer agent may send
//!   more than an older server knows.
//!
//! `docs/PROTOCOL.md` is the integrator's description of the same protocol.
//!
//! # Layout
//!
//! - [`heartbeat`]: the document an agent pushes to `POST /api/v1/ingest/heartbeats`, the
//!   answer, the limits, camera id and URL rules (SPEC section 3).
//! - [`redact`]: URLs as they may be shown and logged (no credentials, query or secret path).
//! - [`edge`]: the shapes of the agent's local Heartbeat API (`/status/`, `/monitor`,
//!   `/api/streams/{id}/status`; SPEC section 7), which the server reuses.
//! - [`picture`]: a camera's picture health (`ok`, `black`, `uniform`, `frozen`, `unknown`).

pub mod edge;
pub mod heartbeat;
pub mod picture;
pub mod redact;

pub use edge::{
    EdgeCamera, EdgeStatus, LAST_CHECKED_FORMAT, MonitorCamera, MonitorResponse, StreamEntry,
    StreamNotFound, StreamStatus, StreamStatuses, format_last_checked, parse_last_checked,
};
pub use heartbeat::{
    AgentInfo, CAMERA_ID_MAX_LEN, CameraReport, CameraStatus, FileProcessing, Heartbeat,
    HeartbeatBatch, IngestResponse, MAX_BODY_BYTES_COMPRESSED, MAX_BODY_BYTES_DECOMPRESSED,
    MAX_CAMERAS_PER_HEARTBEAT, MAX_HEARTBEATS_PER_REQUEST, WebhookReport, WebhookStatus,
    is_valid_camera_id,
};
pub use picture::{PictureReport, PictureState};
pub use redact::{
    REDACTED, redact_unparseable_url, redact_url, redact_url_origin, redact_urls_in_text,
};

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
