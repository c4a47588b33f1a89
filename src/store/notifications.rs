//! A license's notification settings, as the API and the web UI read and write them. (The
//! sweep reads them in bulk with its own query: `crate::notify::sweep`.)

use crate::domain::notify_settings::{self, NotifySettings};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// A license's notification settings.
#[derive(Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct NotificationSettings {
    /// Off by default.
    pub enabled: bool,
    /// Without activity this long the license counts as inactive for e-mail: 3600..2592000 s.
    #[schema(example = 3600)]
    pub inactivity_interval_seconds: i32,
    /// While still inactive, remind every this long: 3600..2592000 s (8 h or more suggested).
    #[schema(example = 28800)]
    pub notification_interval_seconds: i32,
    /// 1..20 addresses when enabled; de-duplicated case-insensitively.
    pub recipients: Vec<String>,
    /// One e-mail when activity resumes; on by default.
    pub notify_on_recovery: bool,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            inactivity_interval_seconds: notify_settings::DEFAULT_INACTIVITY_SECONDS,
            notification_interval_seconds: notify_settings::DEFAULT_NOTIFICATION_SECONDS,
            recipients: Vec::new(),
            notify_on_recovery: true,
        }
    }
}

impl From<NotifySettings> for NotificationSettings {
    fn from(s: NotifySettings) -> Self {
        Self {
            enabled: s.enabled,
            inactivity_interval_seconds: s.inactivity_interval_seconds,
            notification_interval_seconds: s.notification_interval_seconds,
            recipients: s.recipients.iter().map(|e| e.as_str().to_owned()).collect(),
            notify_on_recovery: s.notify_on_recovery,
        }
    }
}

/// The saved settings, or `None` if they were never set (callers show the defaults).
pub async fn get_settings(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
) -> Result<Option<NotificationSettings>, sqlx::Error> {
    sqlx::query_as(
        "SELECT enabled, inactivity_interval_seconds, notification_interval_seconds, recipients, notify_on_recovery
         FROM notification_settings WHERE tenant_id = $1 AND license_id = $2",
    )
    .bind(tenant_id)
    .bind(license_id)
    .fetch_optional(conn)
    .await
}

/// Replaces the settings (already validated by the caller) and returns what was stored.
pub async fn upsert_settings(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
    settings: &NotificationSettings,
    now: DateTime<Utc>,
) -> Result<NotificationSettings, sqlx::Error> {
    // enabled_at restarts when notifications are turned on (the baseline of a license that never
    // reported); next_check_at = now lets the next sweep apply the new settings.
    sqlx::query_as(
        "INSERT INTO notification_settings AS s (tenant_id, license_id, enabled, inactivity_interval_seconds,
             notification_interval_seconds, recipients, notify_on_recovery, enabled_at, next_check_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $3 THEN $8 END, $8, $8)
         ON CONFLICT (tenant_id, license_id) DO UPDATE SET
             enabled = EXCLUDED.enabled,
             inactivity_interval_seconds = EXCLUDED.inactivity_interval_seconds,
             notification_interval_seconds = EXCLUDED.notification_interval_seconds,
             recipients = EXCLUDED.recipients,
             notify_on_recovery = EXCLUDED.notify_on_recovery,
             enabled_at = CASE WHEN EXCLUDED.enabled AND NOT s.enabled THEN $8 ELSE s.enabled_at END,
             next_check_at = $8,
             updated_at = $8
         RETURNING enabled, inactivity_interval_seconds, notification_interval_seconds, recipients, notify_on_recovery",
    )
    .bind(tenant_id)
    .bind(license_id)
    .bind(settings.enabled)
    .bind(settings.inactivity_interval_seconds)
    .bind(settings.notification_interval_seconds)
    .bind(&settings.recipients)
    .bind(settings.notify_on_recovery)
    .bind(now)
    .fetch_one(conn)
    .await
}
