//! Alert channels (SPEC section 5a): CRUD and the test send. The checks, the outbound rules
//! and the routing clean-up on delete are `app::channels`'s; this module reads the bodies and
//! renders.

use super::{
    admin::PageParams,
    auth::AuthUser,
    error::{ApiResult, Problem},
    extract::{ApiJson, ApiPath, ApiQuery, Validation},
};
use crate::{
    app::{
        AppState,
        channels::{self, ChannelPatch, ChannelTestResult, ChannelView},
        pagination,
    },
    domain::{Role, channel::ChannelKind},
};
use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(get_channel, update_channel, delete_channel))
        .routes(routes!(test_channel))
}

/// A new channel. `config` by kind: `email` `{"recipients": [..]}` (1..20); `webhook`
/// `{"url", "secret"?}`; `slack` and `teams` `{"webhook_url"}`; `pagerduty`
/// `{"routing_key", "events_url"?}`; `ntfy` `{"url" (server and topic), "token"?}`. URLs must
/// be `https` and resolve only to public addresses unless the server allows private targets.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    /// 1..200 characters, unique in the tenant.
    #[schema(example = "Ops hook")]
    pub name: String,
    pub kind: ChannelKind,
    #[schema(value_type = Object, example = json!({"url": "https://hooks.example.com/streamwatch", "secret": "s3cret"}))]
    pub config: Value,
}

/// The fields to change. `config` names only the settings that change: those left out (or
/// given as `"[redacted]"`) keep their stored values, so secrets need not be sent again; a
/// setting given as `null` is removed. `kind`, if given, must be the channel's own.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannel {
    pub name: Option<String>,
    pub kind: Option<ChannelKind>,
    #[schema(value_type = Option<Object>, example = json!({"url": "https://hooks.example.com/v2"}))]
    pub config: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelList {
    pub items: Vec<ChannelView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Lists the tenant's alert channels in creation order (secrets redacted).
#[utoipa::path(get, path = "/channels", tag = "channels", security(("bearer" = [])), params(PageParams), responses(
    (status = 200, description = "One page of channels", body = ChannelList),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
))]
async fn list_channels(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<ChannelList>> {
    let mut v = Validation::new();
    let limit = pagination::parse_limit(&mut v, q.limit.as_deref());
    let after = pagination::parse_cursor(&mut v, q.cursor.as_deref(), "id");
    v.finish()?;
    let (items, next_cursor) =
        channels::list(&state, auth.tenant_id, after.map(|c| c.id), limit).await?;
    Ok(Json(ChannelList { items, next_cursor }))
}

/// Creates an alert channel. Every invalid field is a 422 with its pointer (a refused target
/// URL points at its field, e.g. `/config/url`); the answer shows the config redacted.
#[utoipa::path(post, path = "/channels", tag = "channels", security(("bearer" = [])), request_body = CreateChannel, responses(
    (status = 201, description = "Created", body = ChannelView),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields, a name the tenant already uses, or a target URL that is not allowed", body = Problem, content_type = "application/problem+json"),
))]
async fn create_channel(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateChannel>,
) -> ApiResult<(StatusCode, Json<ChannelView>)> {
    auth.require(Role::Admin)?;
    let channel =
        channels::create(&state, auth.tenant_id, &body.name, body.kind, &body.config).await?;
    Ok((StatusCode::CREATED, Json(channel)))
}

/// Reads one alert channel (secrets redacted).
#[utoipa::path(get, path = "/channels/{id}", tag = "channels", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Channel id")), responses(
    (status = 200, description = "The channel", body = ChannelView),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such channel in this tenant", body = Problem, content_type = "application/problem+json"),
))]
async fn get_channel(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ChannelView>> {
    Ok(Json(channels::get(&state, auth.tenant_id, id).await?))
}

/// Changes an alert channel's name or settings; settings left out keep their values.
#[utoipa::path(patch, path = "/channels/{id}", tag = "channels", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Channel id")), request_body = UpdateChannel, responses(
    (status = 200, description = "The changed channel", body = ChannelView),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such channel in this tenant", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields, another kind, a name the tenant already uses, or a target URL that is not allowed", body = Problem, content_type = "application/problem+json"),
))]
async fn update_channel(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateChannel>,
) -> ApiResult<Json<ChannelView>> {
    auth.require(Role::Admin)?;
    let patch = ChannelPatch {
        name: body.name,
        kind: body.kind,
        config: body.config,
    };
    Ok(Json(
        channels::update(&state, auth.tenant_id, id, &patch).await?,
    ))
}

/// Deletes an alert channel and removes it from every license's channels and escalation
/// steps (a step left without channels is dropped). Refused with 409, changing nothing, when
/// an enabled license would be left with neither recipients nor channels; the problem names
/// those licenses.
#[utoipa::path(delete, path = "/channels/{id}", tag = "channels", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Channel id")), responses(
    (status = 204, description = "Deleted"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such channel in this tenant", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The only target of an enabled license", body = Problem, content_type = "application/problem+json"),
))]
async fn delete_channel(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    auth.require(Role::Admin)?;
    channels::delete(&state, auth.tenant_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends the channel a `test` event now and answers with what came of it. The test ran
/// whatever the receiver said, so a refused or failed delivery is still a 200 with
/// `"outcome": "failed"` (or `"retry"`) and the error; nothing is written to the outbox. At
/// most 10 tests per tenant and minute (429 with `Retry-After` beyond).
#[utoipa::path(post, path = "/channels/{id}/test", tag = "channels", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Channel id")), responses(
    (status = 200, description = "The test ran; `outcome` says whether it was delivered", body = ChannelTestResult),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such channel in this tenant", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "Too many tests from this tenant; see Retry-After", body = Problem, content_type = "application/problem+json"),
))]
async fn test_channel(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ChannelTestResult>> {
    auth.require(Role::Admin)?;
    Ok(Json(channels::test(&state, auth.tenant_id, id).await?))
}
