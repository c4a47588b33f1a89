//! `POST /api/v1/ingest/heartbeats` (SPEC section 3): the one route an agent token opens.

use super::{
    error::{ApiError, ApiResult, Problem},
    extract::ApiBytes,
};
use crate::app::AppError;
use crate::{
    app::AppState,
    auth::token::{self, TokenKind},
    ingest::{
        batch::{AgentLicense, IngestRequest, Refused},
        token_cache::{self, VerifiedAgent},
        validate,
        writer::SubmitError,
    },
    store::credentials,
};
use axum::{
    Json,
    extract::{DefaultBodyLimit, FromRequestParts, State},
    http::{HeaderMap, header, request::Parts},
};
use chrono::Utc;
use std::{
    io::Read,
    time::{Duration, Instant},
};
use streamwatch_protocol::{
    IngestResponse, MAX_BODY_BYTES_COMPRESSED, MAX_BODY_BYTES_DECOMPRESSED, PROTOCOL_HEADER,
    PROTOCOL_VERSION,
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    // Over the management API's 64 KiB: a batch may be up to 1 MiB on the wire.
    OpenApiRouter::new()
        .routes(routes!(ingest_heartbeats))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES_COMPRESSED))
}

/// An agent, by its agent token: the license it may report for. Extracting it also applies the
/// token's and the license's rate limits.
#[derive(Debug, Clone, Copy)]
pub struct AgentAuth {
    pub license: AgentLicense,
    pub token_id: Uuid,
    pub check_interval_seconds: i32,
}

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let credential = super::auth::bearer(parts)?;
        if TokenKind::of(credential) != Some(TokenKind::Agent) {
            return Err(
                AppError::Unauthorized("heartbeat ingest needs an agent token (swa_...)").into(),
            );
        }
        let agent = verify(state, token::hash(credential)).await?;
        if agent.suspended {
            return Err(AppError::Forbidden("this license's tenant is suspended").into());
        }
        // Checked here, before the body is read: a flooding token is turned away without its
        // megabyte being received, decoded or parsed.
        state
            .ingest_limits
            .check(agent.token_id, agent.license_id)
            .map_err(AppError::TooManyRequests)?;
        let (tenant_id, license_id, token_id, check_interval_seconds) = (
            agent.tenant_id,
            agent.license_id,
            agent.token_id,
            agent.check_interval_seconds,
        );
        Ok(Self {
            license: AgentLicense {
                tenant_id,
                license_id,
            },
            token_id,
            check_interval_seconds,
        })
    }
}

/// The agent token with this secret hash: from the cache while its listener is connected, else
/// (and on a miss) from the database, whose answer then fills the cache. Also marks the token
/// used, at most once a minute.
async fn verify(state: &AppState, hash: Vec<u8>) -> ApiResult<VerifiedAgent> {
    let cache = &state.agent_tokens;
    let now = Utc::now();
    if let Some(agent) = cache.get(&hash, Instant::now()) {
        metrics::counter!("agent_token_cache_hits_total").increment(1);
        if !agent.suspended && cache.claim_touch(&hash, now) {
            credentials::touch_agent_token(&state.pool, agent.tenant_id, agent.token_id).await?;
        }
        return Ok(agent);
    }
    // Taken before the read: a revocation heard meanwhile voids the fill.
    let ticket = cache.ticket();
    metrics::counter!(
        "agent_token_cache_misses_total",
        "reason" => if ticket.is_some() { "miss" } else { "bypassed" }
    )
    .increment(1);
    let found = credentials::agent_token(&state.pool, &hash)
        .await?
        .ok_or(AppError::Unauthorized("invalid or revoked agent token"))?;
    let agent = VerifiedAgent {
        tenant_id: found.tenant_id,
        license_id: found.license_id,
        token_id: found.id,
        check_interval_seconds: found.check_interval_seconds,
        suspended: found.suspended_at.is_some(),
    };
    // For "is this token still in use?"; once a minute is plenty.
    let touch = !agent.suspended
        && found
            .last_used_at
            .is_none_or(|t| now - t > token_cache::TOUCH_EVERY);
    if let Some(ticket) = ticket {
        let last_used_at = if touch { Some(now) } else { found.last_used_at };
        cache.insert(ticket, hash, agent, last_used_at, Instant::now());
    }
    if touch {
        credentials::touch_agent_token(&state.pool, agent.tenant_id, agent.token_id).await?;
    }
    Ok(agent)
}

/// How often the agent should report: `min(60, check_interval / 3)` seconds (SPEC section 3).
pub fn next_interval_seconds(check_interval_seconds: i32) -> u32 {
    u32::try_from((check_interval_seconds / 3).clamp(1, 60)).unwrap_or(60)
}

/// The body, gunzipped if it says so, within the limits: 1 MiB on the wire (the body limit
/// layer) and 8 MiB decoded. The decoder stops reading past 8 MiB, so a gzip bomb costs at most
/// that much memory.
fn decode_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Vec<u8>> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("identity") => Ok(body.to_vec()),
        Some("gzip") => {
            let mut out = Vec::new();
            let limit = u64::try_from(MAX_BODY_BYTES_DECOMPRESSED).unwrap_or(u64::MAX) + 1;
            flate2::read::GzDecoder::new(body)
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|e| {
                    ApiError::Malformed(format!("the gzip body could not be decoded: {e}"))
                })?;
            if out.len() > MAX_BODY_BYTES_DECOMPRESSED {
                return Err(ApiError::PayloadTooLarge(
                    "the decompressed body is over 8 MiB".to_owned(),
                ));
            }
            Ok(out)
        }
        Some(other) => Err(ApiError::UnsupportedMediaTypeDetail(format!(
            "Content-Encoding '{other}' is not supported; use gzip or none"
        ))),
    }
}

/// Bodies up to this size (not gzipped) are decoded and parsed on the async worker: a live
/// heartbeat is a few KiB, and a hop to the blocking pool would cost more than its parse.
/// Larger or gzipped ones (up to 8 MiB once inflated) go to the blocking pool, so that a
/// megabyte of hostile JSON cannot stall the requests of other tenants on the same worker.
const INLINE_PARSE_BYTES: usize = 32 * 1024;

/// Stores heartbeats of the agent token's license. A 2xx means they are committed.
#[utoipa::path(post, path = "/ingest/heartbeats", tag = "ingest", security(("agent_token" = [])),
    // The versions this server speaks, 1..=PROTOCOL_VERSION (a literal here; a test below
    // keeps it in step): any other is a 400, so the contract says so.
    params(("Streamwatch-Protocol" = Option<u32>, Header, minimum = 1, maximum = 1, description = "Protocol version of the body (1); absent means 1")),
    request_body(content = streamwatch_protocol::HeartbeatBatch, description = "A batch of heartbeats (SPEC section 3); may be gzipped (Content-Encoding: gzip)"),
    responses(
    (status = 200, description = "Committed: `accepted` new heartbeats, `duplicates` already stored", body = streamwatch_protocol::IngestResponse),
    (status = 400, description = "Not JSON, bad gzip, or an unsupported protocol version", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Missing, unknown or revoked agent token", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "The license's tenant is suspended", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "A new agent instance (`/agent/instance_id`) of a license that already has `ingest.max_instances_per_license` instances (8 by default); nothing stored. Instances silent for 7 days are pruned", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Over 1 MiB compressed or 8 MiB decompressed", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON, or an unsupported Content-Encoding", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid document: every bad field by pointer; nothing stored", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "Shedding load, or past the agent token's or the license's rate limit; retry after Retry-After seconds", body = Problem, content_type = "application/problem+json"),
    (status = 503, description = "PostgreSQL is unreachable; retry after Retry-After seconds", body = Problem, content_type = "application/problem+json"),
))]
async fn ingest_heartbeats(
    agent: AgentAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<IngestResponse>> {
    let received_at = state.clock.now();
    if let Some(v) = headers.get(PROTOCOL_HEADER) {
        match v.to_str().ok().and_then(|v| v.trim().parse::<u32>().ok()) {
            Some(n) if (1..=PROTOCOL_VERSION).contains(&n) => {}
            _ => {
                return Err(ApiError::Malformed(format!(
                    "unsupported {PROTOCOL_HEADER} version; this server speaks 1..={PROTOCOL_VERSION}"
                )));
            }
        }
    }
    if !super::extract::is_json_content_type(&headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let compressed = headers.contains_key(header::CONTENT_ENCODING);
    let small = body.len() <= INLINE_PARSE_BYTES && !compressed;
    let parse = move || -> ApiResult<(streamwatch_protocol::HeartbeatBatch, usize)> {
        let decoded = decode_body(&headers, &body)?;
        Ok((validate::parse_batch(&decoded, received_at)?, decoded.len()))
    };
    let (batch, decoded_bytes) = if small {
        parse()?
    } else {
        tokio::task::spawn_blocking(parse)
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("parsing a heartbeat batch: {e}")))??
    };
    let outcome = state
        .ingest
        .submit(
            IngestRequest {
                license: agent.license,
                token_id: Some(agent.token_id),
                batch,
                received_at,
            },
            decoded_bytes,
        )
        .await
        .map_err(|e| match e {
            SubmitError::Overloaded => AppError::TooManyRequests(Duration::from_secs(1)),
            SubmitError::Unavailable => {
                AppError::Unavailable(anyhow::anyhow!("PostgreSQL unavailable during ingest"))
            }
            SubmitError::Failed(e) => AppError::Internal(anyhow::anyhow!("ingest failed: {e}")),
            SubmitError::Stopped => {
                AppError::Unavailable(anyhow::anyhow!("the ingest writer failed or is stopping"))
            }
            SubmitError::Refused(Refused::TooManyInstances(refused)) => AppError::Conflict {
                detail: refused.to_string(),
                pointer: "/agent/instance_id".to_owned(),
            },
            SubmitError::Refused(Refused::TokenRevoked) => {
                AppError::Unauthorized("invalid or revoked agent token")
            }
            SubmitError::Refused(Refused::TenantSuspended) => {
                AppError::Forbidden("this license's tenant is suspended")
            }
        })?;
    Ok(Json(IngestResponse {
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
        // The interval the writer read with the token, else the cached one.
        next_interval_seconds: next_interval_seconds(
            outcome
                .check_interval_seconds
                .unwrap_or(agent.check_interval_seconds),
        ),
        server_time: state.clock.now(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_protocol_versions_are_the_ones_accepted() {
        let doc = serde_json::to_value(crate::http::openapi::document()).unwrap();
        let params = &doc["paths"]["/api/v1/ingest/heartbeats"]["post"]["parameters"];
        let header = params
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == PROTOCOL_HEADER)
            .unwrap();
        assert_eq!(header["schema"]["minimum"], 1);
        assert_eq!(header["schema"]["maximum"], PROTOCOL_VERSION);
    }

    #[test]
    fn the_reporting_interval_is_a_third_of_the_check_interval_at_most_a_minute() {
        assert_eq!(next_interval_seconds(600), 60);
        assert_eq!(next_interval_seconds(120), 40);
        assert_eq!(next_interval_seconds(60), 20);
        assert_eq!(next_interval_seconds(86_400), 60);
    }
}
