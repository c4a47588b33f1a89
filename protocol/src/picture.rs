//! Picture health (SPEC section 7): what the agent concluded from a camera's latest decoded
//! picture. Sent as the optional `picture` object of a camera and shown in the agent's
//! `/status/`; absent for agents and sources that take no snapshots.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The largest snapshot (JPEG bytes) an agent may upload (`PUT /api/v1/ingest/snapshots/{id}`).
pub const MAX_SNAPSHOT_BYTES: usize = 256 * 1024;
/// Upload header: the picture state the agent saw in the uploaded picture (`ok`, `black`, ...).
/// The server keeps the first upload of a bad state as the camera's `bad` snapshot.
pub const PICTURE_STATE_HEADER: &str = "Streamwatch-Picture-State";
/// Upload header: when the agent took the picture (RFC 3339, the agent's clock).
pub const TAKEN_AT_HEADER: &str = "Streamwatch-Taken-At";

impl std::str::FromStr for PictureState {
    type Err = String;

    /// The wire name; unlike the JSON field, an unknown name is an error, not `unknown`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("must be one of ok, black, uniform, frozen, unknown, not '{s}'"))
    }
}

/// The state of a camera's picture.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PictureState {
    /// The picture passed every configured check.
    Ok,
    /// Mean luma under the bound: lens covered, night without IR, a dead sensor.
    Black,
    /// Almost no variance: one flat colour (a cap, a wall, a "no signal" card).
    Uniform,
    /// No change between consecutive snapshots for the configured time.
    Frozen,
    /// No decodable picture yet, or the codec is not supported. A state this crate does not
    /// know (sent by a newer agent) also reads as `unknown`, so that it cannot break parsing.
    #[serde(other)]
    Unknown,
}

impl PictureState {
    /// Every state, in documentation order.
    pub const ALL: [Self; 5] = [
        Self::Ok,
        Self::Black,
        Self::Uniform,
        Self::Frozen,
        Self::Unknown,
    ];

    /// The wire name, e.g. `frozen`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Black => "black",
            Self::Uniform => "uniform",
            Self::Frozen => "frozen",
            Self::Unknown => "unknown",
        }
    }

    /// Whether the picture is known to be useless (`black`, `uniform` or `frozen`).
    pub fn is_bad(self) -> bool {
        matches!(self, Self::Black | Self::Uniform | Self::Frozen)
    }
}

impl std::fmt::Display for PictureState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A camera's picture health at its latest check.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PictureReport {
    /// The current state.
    pub state: PictureState,
    /// When the current state began, by the agent's clock.
    pub since: DateTime<Utc>,
    /// When the picture was last checked, by the agent's clock.
    pub checked_at: DateTime<Utc>,
    /// Mean luma of the latest picture, 0..255; `-1` unknown (no picture).
    #[serde(default = "unknown_f64")]
    pub luma_mean: f64,
    /// Percentage of the picture that changed since the previous snapshot, 0..100; `-1`
    /// unknown (no picture, or no previous one to compare with).
    #[serde(default = "unknown_f64")]
    pub change_pct: f64,
}

fn unknown_f64() -> f64 {
    -1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse()
            .unwrap_or_else(|e| panic!("bad test timestamp {s}: {e}"))
    }

    #[test]
    fn a_report_has_its_documented_shape_and_round_trips() {
        let report = PictureReport {
            state: PictureState::Frozen,
            since: at("2026-11-23T10:42:00Z"),
            checked_at: at("2026-11-23T10:47:00Z"),
            luma_mean: 97.25,
            change_pct: 0.0,
        };
        let json = serde_json::to_string(&report).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json,
            r#"{"state":"frozen","since":"2026-11-23T10:42:00Z","checked_at":"2026-11-23T10:47:00Z","luma_mean":97.25,"change_pct":0.0}"#
        );
        let again: PictureReport = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, report);
    }

    #[test]
    fn missing_measures_are_unknown_and_unknown_states_read_as_unknown() {
        let report: PictureReport = serde_json::from_str(
            r#"{"state": "tampered", "since": "2026-11-23T10:42:00Z", "checked_at": "2026-11-23T10:42:00Z"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.state, PictureState::Unknown);
        assert_eq!((report.luma_mean, report.change_pct), (-1.0, -1.0));
    }

    #[test]
    fn states_have_their_wire_names() {
        for state in PictureState::ALL {
            let json = serde_json::to_string(&state).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            let back: PictureState = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back, state);
        }
        assert!(PictureState::Frozen.is_bad());
        assert!(!PictureState::Unknown.is_bad());
        assert!(!PictureState::Ok.is_bad());
    }
}
