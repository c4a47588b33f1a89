//! Outbound HTTP for alert channels (SPEC section 5a). SCAFFOLD: the interface the sender and
//! the channel API use; the SSRF-guarded client and the payloads are being built on a branch.

use crate::domain::{alert_event::AlertEvent, channel::ChannelConfig};
use chrono::{DateTime, Utc};

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered { status: u16 },
    /// 408, 429, 5xx, a timeout or a connection error: try again later (after `retry_after`
    /// if the receiver said so).
    Retry {
        error: String,
        retry_after: Option<std::time::Duration>,
    },
    /// Anything else (another 4xx, a refused target, a redirect): do not try again.
    Failed { error: String },
}

/// The outbound client, shared by the sender and `POST /channels/{id}/test`.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub allow_private: bool,
}

impl Outbound {
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }

    /// The save-time check of a target URL: syntax and every address it resolves to.
    pub async fn check_target(&self, url: &str) -> Result<(), String> {
        crate::domain::channel::check_target_url(url, self.allow_private)
    }

    /// Sends `event` to the channel (any kind but e-mail).
    pub async fn deliver(
        &self,
        config: &ChannelConfig,
        event: &AlertEvent,
        now: DateTime<Utc>,
    ) -> Outcome {
        let _ = (config, event, now);
        Outcome::Failed {
            error: "outbound delivery is not built yet".into(),
        }
    }
}
