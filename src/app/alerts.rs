//! Acknowledging a license's open alert (SPEC section 5a): by an admin or owner through the API
//! or the Activity Status page, or by anyone holding an alert's signed link. An acknowledgement
//! only marks the episode; the sweep reads it (no more reminders or escalations in that
//! episode; the recovery is still sent). The first acknowledgement stays.

use super::{AppError, AppResult, AppState};
use crate::{
    db,
    notify::ack::AckToken,
    store::{
        self,
        api_keys::ApiKey,
        episodes::{self, EpisodeView},
        licenses::LicenseRow,
        users::User,
    },
};
use uuid::Uuid;

/// Who acknowledges.
#[derive(Debug, Clone, Copy)]
pub enum Acknowledger {
    /// A user of the tenant: recorded by e-mail.
    User(Uuid),
    /// An API key of the tenant: recorded as `API key <name>`.
    ApiKey(Uuid),
}

/// Acknowledges the license's open episode; returns it (with the first acknowledgement, if it
/// was acknowledged before). 404 for another tenant's license, 409 when none is open.
pub async fn acknowledge(
    state: &AppState,
    tenant_id: Uuid,
    license_id: Uuid,
    who: Acknowledger,
) -> AppResult<EpisodeView> {
    let now = state.clock.now();
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    store::get::<LicenseRow>(&mut tx, tenant_id, license_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let by = match who {
        Acknowledger::User(id) => store::get::<User>(&mut tx, tenant_id, id)
            .await?
            .map(|u| u.email),
        Acknowledger::ApiKey(id) => store::get::<ApiKey>(&mut tx, tenant_id, id)
            .await?
            .map(|k| format!("API key {}", k.name)),
    }
    // The credential was just verified; deleted in between, it is still who asked.
    .unwrap_or_else(|| "a deleted user or API key".to_owned());
    let episode = episodes::acknowledge_open(&mut tx, tenant_id, license_id, &by, now)
        .await?
        .ok_or_else(nothing_to_acknowledge)?;
    tx.commit().await?;
    tracing::info!(license = %license_id, episode = %episode.id, "alert acknowledged");
    Ok(episode)
}

fn nothing_to_acknowledge() -> AppError {
    AppError::Conflict {
        detail: "nothing to acknowledge: the license has no open alert".to_owned(),
        pointer: String::new(),
    }
}

/// What a signed acknowledgement link points at.
#[derive(Debug)]
pub enum LinkTarget {
    /// The license or its episode no longer exists (the license was deleted).
    Gone,
    /// The episode, of the license with this name and key; `open` unless it closed (the
    /// license recovered; another episode may be open since, which this link does not touch).
    Episode {
        license_name: String,
        license_key: String,
        episode: EpisodeView,
        open: bool,
    },
}

/// Looks up what a verified link points at, without changing anything (a GET of the link).
pub async fn link_target(state: &AppState, token: &AckToken) -> AppResult<LinkTarget> {
    let mut tx = db::begin_tenant(&state.pool, token.tenant_id).await?;
    let target = find(&mut tx, token).await?;
    tx.commit().await?;
    Ok(target)
}

/// Acknowledges the link's episode if it is still open, as `link via <via>`; returns what the
/// link points at afterwards.
pub async fn acknowledge_link(state: &AppState, token: &AckToken) -> AppResult<LinkTarget> {
    let now = state.clock.now();
    let mut tx = db::begin_tenant(&state.pool, token.tenant_id).await?;
    let by = format!("link via {}", token.via);
    let acknowledged = episodes::acknowledge(
        &mut tx,
        token.tenant_id,
        token.license_id,
        token.episode_id,
        &by,
        now,
    )
    .await?;
    let target = find(&mut tx, token).await?;
    tx.commit().await?;
    if acknowledged.is_some() {
        tracing::info!(license = %token.license_id, episode = %token.episode_id, "alert acknowledged by link");
    }
    Ok(target)
}

async fn find(tx: &mut sqlx::PgConnection, token: &AckToken) -> AppResult<LinkTarget> {
    let Some(license) = store::get::<LicenseRow>(tx, token.tenant_id, token.license_id).await?
    else {
        return Ok(LinkTarget::Gone);
    };
    let found = episodes::get(tx, token.tenant_id, token.license_id, token.episode_id).await?;
    Ok(match found {
        None => LinkTarget::Gone,
        Some((episode, closed)) => LinkTarget::Episode {
            license_name: license.name,
            license_key: license.key,
            episode,
            open: !closed,
        },
    })
}
