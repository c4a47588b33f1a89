//! Camera snapshots (SPEC section 7): an agent's upload, stored as the camera's latest (and,
//! when a bad picture begins, as the proof of it) within the tenant's size bound; and reading
//! them back for the API and the Activity Status page.

use super::{AppError, AppResult, AppState};
use crate::{
    db,
    domain::snapshot::{Jpeg, SnapshotKind, begins_bad_episode},
    ingest::batch::AgentLicense,
    store::{
        self,
        licenses::LicenseRow,
        snapshots::{self as snaps, NewSnapshot, Snapshot, SnapshotMeta},
    },
};
use chrono::{DateTime, Utc};
use streamwatch_protocol::{
    PictureState,
    picture::{PICTURE_STATE_HEADER, TAKEN_AT_HEADER},
};
use uuid::Uuid;

/// How long a browser may reuse a snapshot without asking: agents upload at most once a
/// minute, and a revalidation with `If-None-Match` costs one indexed read and a 304.
pub const MAX_AGE_SECONDS: u32 = 30;

/// An upload, checked by the adapter.
pub struct Upload {
    pub camera_id: String,
    pub jpeg: Jpeg,
    /// When the agent took the picture (its clock); `None`: when it was received.
    pub taken_at: Option<DateTime<Utc>>,
    /// The picture state the agent saw in this picture, if it said.
    pub picture_state: Option<PictureState>,
}

/// What an upload did.
#[derive(Debug)]
pub struct Stored {
    /// The ETag of the stored latest snapshot.
    pub etag: String,
    /// The upload also became the camera's `bad` snapshot (a bad picture began).
    pub kept_as_bad: bool,
}

/// Why an upload was not stored.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Storing it would take the tenant over `snapshots.max_bytes_per_tenant`.
    #[error("the tenant's snapshots would take {would_use} bytes, over the bound of {limit}")]
    OverQuota { would_use: i64, limit: i64 },
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<sqlx::Error> for UploadError {
    fn from(e: sqlx::Error) -> Self {
        Self::App(e.into())
    }
}

/// Stores an agent's snapshot of one of its license's cameras. The camera must be one a
/// heartbeat of the license listed (else 404: the agent retries after its next heartbeat).
#[tracing::instrument(skip_all, fields(license = %agent.license_id, camera = %upload.camera_id, bytes = upload.jpeg.bytes().len()))]
pub async fn store_upload(
    state: &AppState,
    agent: AgentLicense,
    upload: Upload,
) -> Result<Stored, UploadError> {
    let (tenant_id, license_id) = (agent.tenant_id, agent.license_id);
    let camera_id = upload.camera_id.as_str();
    let received_at = state.clock.now();
    let limit = i64::try_from(state.settings.snapshots.max_bytes_per_tenant).unwrap_or(i64::MAX);
    let sha = upload.jpeg.sha256();
    let size = i64::try_from(upload.jpeg.bytes().len()).unwrap_or(i64::MAX);

    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    snaps::lock_tenant(&mut tx, tenant_id).await?;
    if !snaps::camera_known(&mut tx, tenant_id, license_id, camera_id).await? {
        return Err(AppError::NotFound.into());
    }
    let stored = snaps::of_camera(&mut tx, tenant_id, license_id, camera_id).await?;
    let old = |kind: SnapshotKind| stored.iter().find(|m| m.kind == kind.as_str());
    let previous_state = old(SnapshotKind::Latest)
        .and_then(|m| m.picture_state.as_deref())
        .and_then(|s| s.parse::<PictureState>().ok());
    let kept_as_bad = begins_bad_episode(upload.picture_state, previous_state);

    // The bound counts what the tenant would hold after this upload replaced its rows.
    let size_of = |kind| old(kind).map_or(0, |m| i64::from(m.size_bytes));
    let before = snaps::tenant_bytes(&mut tx, tenant_id).await?;
    let mut after = before - size_of(SnapshotKind::Latest) + size;
    if kept_as_bad {
        after += size - size_of(SnapshotKind::Bad);
    }
    // Over the bound only refuses what would grow the total: with a lowered bound, cameras
    // may still replace their snapshots with ones no larger.
    if after > limit && after > before {
        tracing::warn!(
            would_use = after,
            limit,
            "snapshot refused: the tenant's size bound"
        );
        return Err(UploadError::OverQuota {
            would_use: after,
            limit,
        });
    }
    let picture_state = upload.picture_state.map(PictureState::as_str);
    let mut row = NewSnapshot {
        tenant_id,
        license_id,
        camera_id,
        kind: SnapshotKind::Latest,
        jpeg: upload.jpeg.bytes(),
        sha256: &sha,
        taken_at: upload.taken_at.unwrap_or(received_at),
        received_at,
        picture_state,
    };
    if !snaps::put(&mut tx, &row).await? {
        // Retired between the check and the write.
        return Err(AppError::NotFound.into());
    }
    if kept_as_bad {
        row.kind = SnapshotKind::Bad;
        if !snaps::put(&mut tx, &row).await? {
            return Err(AppError::NotFound.into());
        }
    }
    tx.commit().await?;
    metrics::counter!("snapshots_stored_total").increment(1);
    Ok(Stored {
        etag: crate::domain::snapshot::etag(&sha),
        kept_as_bad,
    })
}

/// One camera's stored snapshot of `kind`: 404 when the license is not the tenant's, or the
/// camera has none.
pub async fn read(
    state: &AppState,
    tenant_id: Uuid,
    license_id: Uuid,
    camera_id: &str,
    kind: SnapshotKind,
) -> AppResult<Snapshot> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    store::get::<LicenseRow>(&mut tx, tenant_id, license_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let snapshot = snaps::get(&mut tx, tenant_id, license_id, camera_id, kind)
        .await?
        .ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok(snapshot)
}

/// The stored snapshots of a license's cameras, without bytes.
pub async fn of_license(
    state: &AppState,
    tenant_id: Uuid,
    license_id: Uuid,
) -> AppResult<Vec<SnapshotMeta>> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let rows = snaps::of_license(&mut tx, tenant_id, license_id).await?;
    tx.commit().await?;
    Ok(rows)
}

/// A stored snapshot as an HTTP answer, for both adapters (the API and the web UI): the JPEG,
/// or "not modified" when `if_none_match` names its ETag, with the caching headers either way.
pub struct Answer {
    /// `None`: 304 Not Modified.
    pub jpeg: Option<Vec<u8>>,
    /// Header name and value pairs (`ETag`, `Cache-Control`, ...).
    pub headers: Vec<(&'static str, String)>,
}

/// See [`Answer`].
pub fn answer(snapshot: Snapshot, if_none_match: Option<&str>) -> Answer {
    let tag = crate::domain::snapshot::etag(&snapshot.meta.sha256);
    let fresh = if_none_match.is_some_and(|v| crate::domain::snapshot::if_none_match(v, &tag));
    let mut headers = vec![
        ("etag", tag),
        (
            "cache-control",
            format!("private, max-age={MAX_AGE_SECONDS}"),
        ),
        ("x-content-type-options", "nosniff".to_owned()),
        (TAKEN_AT_HEADER, snapshot.meta.taken_at.to_rfc3339()),
    ];
    if let Some(state) = snapshot.meta.picture_state {
        headers.push((PICTURE_STATE_HEADER, state));
    }
    if !fresh {
        headers.push(("content-type", "image/jpeg".to_owned()));
    }
    Answer {
        jpeg: (!fresh).then_some(snapshot.jpeg),
        headers,
    }
}
