//! The alert event of SPEC section 5a: what every channel is told, one JSON shape for all.
//!
//! A webhook receives it as is; Slack, Teams, PagerDuty and ntfy get it rendered into their
//! own formats (`notify::payloads`). Its `id` is the outbox row's id, so a redelivery after a
//! crash or a retry carries the same id (receivers de-duplicate on it); a `test` event has a
//! fresh id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    #[serde(rename = "license.inactive")]
    Inactive,
    #[serde(rename = "license.reminder")]
    Reminder,
    #[serde(rename = "license.escalated")]
    Escalated,
    #[serde(rename = "license.recovered")]
    Recovered,
    #[serde(rename = "license.partial")]
    Partial,
    #[serde(rename = "license.partial_recovered")]
    PartialRecovered,
    #[serde(rename = "test")]
    Test,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inactive => "license.inactive",
            Self::Reminder => "license.reminder",
            Self::Escalated => "license.escalated",
            Self::Recovered => "license.recovered",
            Self::Partial => "license.partial",
            Self::PartialRecovered => "license.partial_recovered",
            Self::Test => "test",
        }
    }

    /// The event of an outbox row's `kind` (`inactive`, `reminder`, `escalated`, `recovery`,
    /// `partial`, `partial_recovered`).
    pub fn from_outbox_kind(kind: &str) -> Option<Self> {
        Some(match kind {
            "inactive" => Self::Inactive,
            "reminder" => Self::Reminder,
            "escalated" => Self::Escalated,
            "recovery" => Self::Recovered,
            "partial" => Self::Partial,
            "partial_recovered" => Self::PartialRecovered,
            "test" => Self::Test,
            _ => return None,
        })
    }

    /// Whether the event is good news (an episode closed): PagerDuty resolves, Slack and ntfy
    /// use a calm colour and priority.
    pub fn is_recovery(self) -> bool {
        matches!(self, Self::Recovered | Self::PartialRecovered)
    }

    /// A short headline, e.g. for a chat message's title.
    pub fn headline(self) -> &'static str {
        match self {
            Self::Inactive => "License inactive",
            Self::Reminder => "License still inactive",
            Self::Escalated => "Escalated: license not acknowledged",
            Self::Recovered => "License active again",
            Self::Partial => "Cameras not active",
            Self::PartialRecovered => "All cameras active again",
            Self::Test => "Test alert from streamwatch",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventTenant {
    pub id: Uuid,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventLicense {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    /// `all_active`, `partially_active`, `inactive` or `not_installed` when the event was made.
    pub status: String,
    /// The license's Activity Status page.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventEpisode {
    pub id: Uuid,
    /// `inactive` or `partial`.
    pub kind: String,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// One camera as the event names it: for a partial episode, those not active and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventCamera {
    pub camera_id: String,
    /// `active`, `degraded`, `down`, ... as reported.
    pub state: String,
    /// Why it is not active (`None` for an active camera).
    pub reason: Option<String>,
    /// The camera's latest snapshot on the web UI (SPEC section 7: alerts that name a camera
    /// link to its picture); the page asks for a login like every other. Filled in when the
    /// event is sent (stored episodes predate it); it answers 404 until the agent has uploaded
    /// a snapshot of the camera.
    #[serde(default)]
    pub snapshot_url: Option<String>,
}

/// The event JSON of SPEC section 5a.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AlertEvent {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub occurred_at: DateTime<Utc>,
    pub tenant: EventTenant,
    /// `None` only for a `test` event.
    pub license: Option<EventLicense>,
    /// `None` only for a `test` event.
    pub episode: Option<EventEpisode>,
    pub last_activity_at: Option<DateTime<Utc>>,
    pub cameras: Vec<EventCamera>,
    /// A signed one-click link that acknowledges the episode (`None` for recoveries and tests).
    pub acknowledge_url: Option<String>,
}

impl AlertEvent {
    /// One line for chat titles and push notifications, e.g.
    /// "License inactive: Lobby (LIC-0001)".
    pub fn title(&self) -> String {
        match &self.license {
            Some(l) => format!("{}: {} ({})", self.event_type.headline(), l.name, l.key),
            None => self.event_type.headline().to_owned(),
        }
    }

    /// A few sentences for the body of a chat message or push notification.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        if let Some(t) = self.last_activity_at {
            out.push_str(&format!(
                "Last activity: {}.",
                t.format("%Y-%m-%d %H:%M UTC")
            ));
        } else if self.license.is_some() {
            out.push_str("No activity recorded yet.");
        }
        let bad: Vec<String> = self
            .cameras
            .iter()
            .filter(|c| c.reason.is_some())
            .map(|c| match &c.reason {
                Some(r) => format!("{} ({}: {r})", c.camera_id, c.state),
                None => c.camera_id.clone(),
            })
            .collect();
        if !bad.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("Cameras not active: {}.", bad.join(", ")));
        }
        if self.event_type == EventType::Test {
            out = format!(
                "This is a test from streamwatch for tenant {}. If you see it, the channel works.",
                self.tenant.name
            );
        }
        out
    }
}
