//! A license's notification settings and its e-mail history (SPEC sections 5 and 6), for the
//! JSON API and the Setup Notification and Activity Status pages.

use super::{AppError, AppResult, AppState};
use crate::{
    db,
    domain::notify_settings::NotifySettings,
    store::{
        self,
        licenses::LicenseRow,
        notifications::{self, NotificationSettings},
        outbox::{self, NotificationView},
    },
};
use sqlx::PgConnection;
use uuid::Uuid;

async fn license_exists(tx: &mut PgConnection, tenant_id: Uuid, id: Uuid) -> AppResult<()> {
    store::get::<LicenseRow>(tx, tenant_id, id)
        .await?
        .map(|_| ())
        .ok_or(AppError::NotFound)
}

/// The settings, or the defaults when they were never saved. 404 for another tenant's license.
pub async fn settings(
    state: &AppState,
    tenant_id: Uuid,
    license_id: Uuid,
) -> AppResult<NotificationSettings> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    license_exists(&mut tx, tenant_id, license_id).await?;
    let settings = notifications::get_settings(&mut tx, tenant_id, license_id).await?;
    tx.commit().await?;
    Ok(settings.unwrap_or_default())
}

/// Replaces the settings; the next sweep applies them.
pub async fn save_settings(
    state: &AppState,
    tenant_id: Uuid,
    license_id: Uuid,
    settings: NotifySettings,
) -> AppResult<NotificationSettings> {
    let now = state.clock.now();
    let row = NotificationSettings::from(settings);
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    license_exists(&mut tx, tenant_id, license_id).await?;
    let saved = notifications::upsert_settings(&mut tx, tenant_id, license_id, &row, now).await?;
    tx.commit().await?;
    Ok(saved)
}

/// The newest `limit` e-mails decided for the license, newest first.
pub async fn history(
    state: &AppState,
    tenant_id: Uuid,
    license_id: Uuid,
    limit: i64,
) -> AppResult<Vec<NotificationView>> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    license_exists(&mut tx, tenant_id, license_id).await?;
    let items = outbox::history(&mut tx, tenant_id, license_id, limit).await?;
    tx.commit().await?;
    Ok(items)
}
