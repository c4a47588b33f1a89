//! Camera snapshots (SPEC section 7): an agent uploads a camera's latest picture
//! (`PUT /ingest/snapshots/{camera_id}`, agent token) and the tenant reads it back
//! (`GET /licenses/{id}/cameras/{camera_id}/snapshot`, with ETag and caching headers).

use super::{
    auth::AuthUser,
    error::{ApiError, ApiResult, Problem},
    extract::{ApiPath, ApiQuery},
    ingest::AgentAuth,
};
use crate::{
    app::{
        AppError, AppState,
        snapshots::{self, Upload, UploadError},
    },
    domain::snapshot::{Jpeg, MAX_SNAPSHOT_BYTES, SnapshotKind},
    ingest::validate::TimeBounds,
    store::snapshots::Snapshot,
};
use axum::{
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, FromRequest, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use streamwatch_protocol::{
    PictureState,
    picture::{PICTURE_STATE_HEADER, TAKEN_AT_HEADER},
};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_snapshot))
        // One byte over the bound is enough to know the body is too large.
        .layer(DefaultBodyLimit::max(MAX_SNAPSHOT_BYTES + 1))
        .routes(routes!(camera_snapshot))
}

/// A JPEG file.
// A named schema because `Vec<u8>` alone would be documented as an array of integers.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct JpegFile(pub Vec<u8>);

/// A JPEG request body: the type is checked before the body is read (415), the size while it
/// is read (413), and the bytes after (400).
pub struct JpegBody(pub Jpeg);

impl<S: Send + Sync> FromRequest<S> for JpegBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mime = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        if mime.as_deref() != Some("image/jpeg") {
            return Err(ApiError::UnsupportedMediaTypeDetail(
                "a snapshot must be sent as 'Content-Type: image/jpeg'".to_owned(),
            ));
        }
        let too_large = || {
            ApiError::PayloadTooLarge(format!("a snapshot is at most {MAX_SNAPSHOT_BYTES} bytes"))
        };
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::Malformed(format!("could not read the request body: {rejection}"))
            }
        })?;
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            return Err(too_large());
        }
        Jpeg::parse(bytes.to_vec())
            .map(Self)
            .map_err(ApiError::Malformed)
    }
}

/// The optional upload headers, checked: an unknown picture state or a time that is not
/// RFC 3339 (or not within 2000-01-01 .. a day ahead) is a 422 naming the header.
fn upload_headers(
    headers: &HeaderMap,
    received_at: DateTime<Utc>,
) -> ApiResult<(Option<PictureState>, Option<DateTime<Utc>>)> {
    let mut v = crate::domain::Validation::new();
    let text = |name: &str| {
        headers
            .get(name)
            .map(|h| h.to_str().unwrap_or("\u{FFFD}").trim())
    };
    let state = text(PICTURE_STATE_HEADER).and_then(|s| {
        v.check(&format!("/headers/{PICTURE_STATE_HEADER}"), s, |s| {
            s.parse::<PictureState>()
        })
    });
    let bounds = TimeBounds::for_receipt(received_at);
    let taken_at =
        text(TAKEN_AT_HEADER).and_then(|s| {
            v.check(&format!("/headers/{TAKEN_AT_HEADER}"), s, |s| {
                match DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)) {
                    Ok(t) if bounds.contains(t) => Ok(t),
                    Ok(_) => Err("must lie between 2000-01-01 and a day from now".to_owned()),
                    Err(_) => Err(format!("must be an RFC 3339 timestamp, not '{s}'")),
                }
            })
        });
    v.finish()?;
    Ok((state, taken_at))
}

/// Stores a camera's latest snapshot (SPEC section 7). The camera must be listed by a
/// heartbeat of the token's license; the newest upload replaces the last, and the first upload
/// of a `black`, `uniform` or `frozen` picture (by `Streamwatch-Picture-State`) is also kept
/// as the camera's `bad` snapshot until the next bad episode. Agents upload when the snapshot
/// changed, at most once a minute per camera; the upload shares the agent token's rate limit
/// with heartbeats.
#[utoipa::path(put, path = "/ingest/snapshots/{camera_id}", tag = "ingest", security(("agent_token" = [])),
    params(
        ("camera_id" = String, Path, description = "Camera id as in heartbeats: 1 to 128 of A-Z, a-z, 0-9, '.', '_', '-'"),
        ("Streamwatch-Picture-State" = Option<String>, Header, description = "The picture state the agent saw in this picture: ok, black, uniform, frozen or unknown"),
        ("Streamwatch-Taken-At" = Option<String>, Header, description = "When the picture was taken (RFC 3339, the agent's clock); absent: when received"),
    ),
    request_body(content = JpegFile, content_type = "image/jpeg", description = "The JPEG, at most 262144 bytes"),
    responses(
    (status = 204, description = "Stored (ETag header: the stored snapshot's)"),
    (status = 400, description = "Not a JPEG (no SOI/EOI marker or no frame header), or unreadable", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Missing, unknown or revoked agent token", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "The license's tenant is suspended", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No heartbeat of this license lists the camera (yet, or any more)", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Over 256 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not `Content-Type: image/jpeg`", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "An invalid camera id (`/path/camera_id`) or upload header (`/headers/...`)", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "Past the agent token's or the license's rate limit; retry after Retry-After seconds", body = Problem, content_type = "application/problem+json"),
    (status = 507, description = "The tenant's snapshots would exceed `snapshots.max_bytes_per_tenant`; nothing stored", body = Problem, content_type = "application/problem+json"),
))]
async fn upload_snapshot(
    agent: AgentAuth,
    State(state): State<AppState>,
    ApiPath(camera_id): ApiPath<String>,
    headers: HeaderMap,
    JpegBody(jpeg): JpegBody,
) -> ApiResult<Response> {
    if !streamwatch_protocol::is_valid_camera_id(&camera_id) {
        return Err(AppError::invalid(
            "/path/camera_id",
            "a camera id is 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-'",
        )
        .into());
    }
    let (picture_state, taken_at) = upload_headers(&headers, state.clock.now())?;
    let upload = Upload {
        camera_id,
        jpeg,
        taken_at,
        picture_state,
    };
    let stored = snapshots::store_upload(&state, agent.license, upload)
        .await
        .map_err(|e| match e {
            UploadError::OverQuota { limit, .. } => ApiError::InsufficientStorage(format!(
                "this tenant's snapshots would take more than {limit} bytes (snapshots.max_bytes_per_tenant); nothing was stored"
            )),
            UploadError::App(e) => e.into(),
        })?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(tag) = HeaderValue::from_str(&stored.etag) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SnapshotParams {
    /// `latest` (default): the newest upload; `bad`: the first picture of the current or last
    /// black, uniform or frozen episode.
    #[param(value_type = Option<String>)]
    pub kind: Option<String>,
}

/// A camera's latest snapshot (or, with `?kind=bad`, the one taken when its last bad picture
/// began), as `image/jpeg` with a strong ETag; `If-None-Match` with it answers 304.
#[utoipa::path(get, path = "/licenses/{id}/cameras/{camera_id}/snapshot", tag = "status", security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "License id"),
        ("camera_id" = String, Path, description = "Camera id"),
        SnapshotParams,
        ("If-None-Match" = Option<String>, Header, description = "An ETag of an earlier answer"),
    ),
    responses(
    (status = 200, description = "The JPEG", content_type = "image/jpeg", body = JpegFile, headers(
        ("ETag" = String, description = "SHA-256 of the bytes"),
        ("Cache-Control" = String, description = "private, max-age=30"),
        ("Streamwatch-Taken-At" = String, description = "When the agent took the picture (RFC 3339, the agent's clock)"),
        ("Streamwatch-Picture-State" = String, description = "The picture state the agent reported with it, if it did"),
    )),
    (status = 304, description = "Not modified: the If-None-Match ETag is current"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant, no such camera, or no snapshot of it (yet)", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "An unknown `kind`", body = Problem, content_type = "application/problem+json"),
))]
async fn camera_snapshot(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath((id, camera_id)): ApiPath<(Uuid, String)>,
    ApiQuery(q): ApiQuery<SnapshotParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let kind = match q.kind.as_deref() {
        None => SnapshotKind::Latest,
        Some(k) => SnapshotKind::parse(k).map_err(|e| AppError::invalid("/query/kind", e))?,
    };
    let snapshot = snapshots::read(&state, auth.tenant_id, id, &camera_id, kind).await?;
    Ok(jpeg_response(snapshot, &headers))
}

/// The JPEG answer (or a 304) for a stored snapshot.
fn jpeg_response(snapshot: Snapshot, request: &HeaderMap) -> Response {
    let if_none_match = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let answer = snapshots::answer(snapshot, if_none_match);
    let mut response = match answer.jpeg {
        Some(jpeg) => Response::new(Body::from(jpeg)),
        None => StatusCode::NOT_MODIFIED.into_response(),
    };
    for (name, value) in answer.headers {
        // `try_from`, not `from_static`: the latter panics on the protocol's capitalised names.
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(&value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
