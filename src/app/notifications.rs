//! A license's notification settings, routing included, and its delivery history (SPEC
//! sections 5, 5a and 6), for the JSON API and the Setup Notification and Activity Status pages.

use super::{AppError, AppResult, AppState};
use crate::{
    db,
    domain::notify_settings::{NotifySettings, SettingsField, SettingsProblem},
    store::{
        self,
        licenses::LicenseRow,
        notifications::{self, ChannelChoice, NotificationSettings},
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

/// What saving settings came to.
#[derive(Debug)]
pub enum Saved {
    Saved(NotificationSettings),
    /// Nothing was saved: these channel ids are not channels of the tenant (each adapter words
    /// the problems for its own fields).
    Refused(Vec<(SettingsField, SettingsProblem)>),
}

/// Replaces the settings, if every channel they name is one of the tenant's; the next sweep
/// applies them. An open episode goes on as it is: the sweep reads the new routing.
pub async fn save_settings(
    state: &AppState,
    tenant_id: Uuid,
    license_id: Uuid,
    settings: NotifySettings,
) -> AppResult<Saved> {
    let now = state.clock.now();
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    license_exists(&mut tx, tenant_id, license_id).await?;
    let problems = unknown_channels(&mut tx, tenant_id, &settings).await?;
    if !problems.is_empty() {
        return Ok(Saved::Refused(problems));
    }
    let row = NotificationSettings::from(settings);
    let saved = notifications::upsert_settings(&mut tx, tenant_id, license_id, &row, now).await?;
    tx.commit().await?;
    Ok(Saved::Saved(saved))
}

/// Every channel id of `settings` that is not a channel of the tenant, by its field. Another
/// tenant's channel is as unknown as a missing one: row-level security and the tenant filter
/// both hide it.
async fn unknown_channels(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    settings: &NotifySettings,
) -> AppResult<Vec<(SettingsField, SettingsProblem)>> {
    let named: Vec<(SettingsField, Uuid)> = settings
        .channels
        .iter()
        .enumerate()
        .map(|(i, id)| (SettingsField::Channel(i), *id))
        .chain(
            settings
                .escalation
                .iter()
                .enumerate()
                .flat_map(|(i, step)| {
                    step.channels
                        .iter()
                        .enumerate()
                        .map(move |(j, id)| (SettingsField::StepChannel(i, j), *id))
                }),
        )
        .collect();
    if named.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<Uuid> = named.iter().map(|(_, id)| *id).collect();
    ids.sort();
    ids.dedup();
    let existing = notifications::lock_existing_channels(tx, tenant_id, &ids).await?;
    Ok(named
        .into_iter()
        .filter(|(_, id)| !existing.contains(id))
        .map(|(field, _)| (field, SettingsProblem::NoSuchChannel))
        .collect())
}

/// The tenant's channels by name, for the Setup Notification page.
pub async fn channel_choices(state: &AppState, tenant_id: Uuid) -> AppResult<Vec<ChannelChoice>> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let choices = notifications::channel_choices(&mut tx, tenant_id).await?;
    tx.commit().await?;
    Ok(choices)
}

/// The newest `limit` deliveries (e-mails and channel messages) decided for the license,
/// newest first.
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
