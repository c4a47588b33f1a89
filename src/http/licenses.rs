//! Licenses: one per site. List (filter, sort, cursor pagination), create, read, update,
//! delete.

use super::{
    auth::AuthUser,
    error::{ApiResult, Problem},
    extract::{ApiJson, ApiPath, QueryPairs, Validation},
};
use crate::app::AppError;
use crate::{
    app::{
        self, AppState,
        licenses::{ListParams, check_tags},
    },
    db,
    domain::{CheckInterval, DisplayName, LicenseKey, LicenseKind, Role},
    store::{
        self,
        licenses::{LicensePatch, LicenseRow, NewLicense},
        status::{License, Sort},
    },
};
use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_licenses, create_license))
        .routes(routes!(get_license, update_license, delete_license))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLicense {
    /// 1..64 characters of `[A-Za-z0-9._-]`, unique in the tenant.
    #[schema(example = "LIC-001")]
    pub key: String,
    /// 1..200 characters.
    #[schema(example = "Depot 7")]
    pub name: String,
    /// `direct` (default) or `cloud`.
    pub kind: Option<String>,
    /// 60..86400, default 600.
    #[schema(example = 600)]
    pub check_interval_seconds: Option<i64>,
    /// Up to 20 tags, each `[a-z0-9][a-z0-9:._-]{0,63}`; kept sorted, duplicates dropped.
    #[schema(example = json!(["region:eu", "site:hamburg"]))]
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLicense {
    pub key: Option<String>,
    pub name: Option<String>,
    pub kind: Option<String>,
    pub check_interval_seconds: Option<i64>,
    /// Replaces every tag (`[]` removes them all).
    pub tags: Option<Vec<String>>,
}

/// The list's query parameters (read by `QueryPairs`, since `tag` repeats).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LicenseListParams {
    /// `all_active`, `partially_active`, `inactive` or `not_installed`.
    pub status: Option<String>,
    /// `direct` or `cloud`.
    pub kind: Option<String>,
    /// Case-insensitive text contained in the name or key.
    pub q: Option<String>,
    /// `name` (default), `key`, `created_at`, `status` (most urgent first), `last_activity`;
    /// prefix `-` for descending.
    pub sort: Option<String>,
    /// Page size, 1..200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page (same sort).
    pub cursor: Option<String>,
    /// A tag the license must carry; repeat it (`?tag=a&tag=b`) for licenses carrying all.
    pub tag: Option<Vec<String>>,
    /// `true`: only licenses quiet now (in a maintenance window or snoozed); `false`: only
    /// the others.
    pub quiet: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseList {
    pub items: Vec<License>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Lists the tenant's licenses with their status, last activity, camera and webhook counts,
/// tags and `quiet`.
#[utoipa::path(get, path = "/licenses", tag = "licenses", security(("bearer" = [])), params(LicenseListParams), responses(
    (status = 200, description = "One page of licenses", body = LicenseList),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
))]
async fn list_licenses(
    auth: AuthUser,
    State(state): State<AppState>,
    q: QueryPairs,
) -> ApiResult<Json<LicenseList>> {
    let mut v = Validation::new();
    let params = ListParams {
        status: q.one(&mut v, "status"),
        kind: q.one(&mut v, "kind"),
        q: q.one(&mut v, "q"),
        sort: q.one(&mut v, "sort"),
        limit: q.one(&mut v, "limit"),
        cursor: q.one(&mut v, "cursor"),
        tags: q.all("tag"),
        quiet: q.one(&mut v, "quiet"),
    };
    let (query, mut problems) = app::licenses::parse_list_query(&params, Sort::default());
    if let Err(repeated) = v.finish() {
        problems.extend(repeated);
    }
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems).into());
    }
    let (items, next_cursor) = app::licenses::list(&state, auth.tenant_id, &query).await?;
    Ok(Json(LicenseList { items, next_cursor }))
}

/// Creates a license.
#[utoipa::path(post, path = "/licenses", tag = "licenses", security(("bearer" = [])), request_body = CreateLicense, responses(
    (status = 201, description = "Created", body = License),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The key is taken in this tenant", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
async fn create_license(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateLicense>,
) -> ApiResult<(StatusCode, Json<License>)> {
    auth.require(Role::Admin)?;
    let mut v = Validation::new();
    let key = v.check("/key", body.key.as_str(), LicenseKey::parse);
    let name = v.check("/name", body.name.as_str(), DisplayName::parse);
    let kind = body.kind.as_deref().map_or(Some(LicenseKind::Direct), |k| {
        v.check("/kind", k, LicenseKind::parse)
    });
    let check_interval = body
        .check_interval_seconds
        .map_or(Some(CheckInterval::DEFAULT), |s| {
            v.check("/check_interval_seconds", s, CheckInterval::from_seconds)
        });
    let tags = check_tags(&mut v, "/tags", body.tags.as_deref().unwrap_or_default());
    v.finish()?;
    let (Some(key), Some(name), Some(kind), Some(check_interval), Some(tags)) =
        (key, name, kind, check_interval, tags)
    else {
        return Err(AppError::Internal(anyhow::anyhow!("validation passed without values")).into());
    };
    let new = NewLicense {
        key,
        name,
        kind,
        check_interval,
        tags,
    };
    let license = app::licenses::create(&state, auth.tenant_id, &new).await?;
    Ok((StatusCode::CREATED, Json(license)))
}

/// Reads one license.
#[utoipa::path(get, path = "/licenses/{id}", tag = "licenses", security(("bearer" = [])), params(("id" = Uuid, Path, description = "License id")), responses(
    (status = 200, description = "The license", body = License),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant", body = Problem, content_type = "application/problem+json"),
))]
async fn get_license(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<License>> {
    Ok(Json(app::licenses::get(&state, auth.tenant_id, id).await?))
}

/// Changes any of key, name, kind, check interval and tags.
#[utoipa::path(patch, path = "/licenses/{id}", tag = "licenses", security(("bearer" = [])), params(("id" = Uuid, Path, description = "License id")), request_body = UpdateLicense, responses(
    (status = 200, description = "The updated license", body = License),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The new key is taken in this tenant", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
async fn update_license(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateLicense>,
) -> ApiResult<Json<License>> {
    auth.require(Role::Admin)?;
    let mut v = Validation::new();
    let patch = LicensePatch {
        key: body
            .key
            .as_deref()
            .and_then(|k| v.check("/key", k, LicenseKey::parse)),
        name: body
            .name
            .as_deref()
            .and_then(|n| v.check("/name", n, DisplayName::parse)),
        kind: body
            .kind
            .as_deref()
            .and_then(|k| v.check("/kind", k, LicenseKind::parse)),
        check_interval: body
            .check_interval_seconds
            .and_then(|s| v.check("/check_interval_seconds", s, CheckInterval::from_seconds)),
        tags: body
            .tags
            .as_deref()
            .and_then(|t| check_tags(&mut v, "/tags", t)),
    };
    v.finish()?;
    Ok(Json(
        app::licenses::update(&state, auth.tenant_id, id, &patch).await?,
    ))
}

/// Deletes a license and its agent tokens (its agents are refused from then on).
#[utoipa::path(delete, path = "/licenses/{id}", tag = "licenses", security(("bearer" = [])), params(("id" = Uuid, Path, description = "License id")), responses(
    (status = 204, description = "Deleted"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant", body = Problem, content_type = "application/problem+json"),
))]
async fn delete_license(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    auth.require(Role::Admin)?;
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    if !store::delete::<LicenseRow>(&mut tx, auth.tenant_id, id).await? {
        return Err(AppError::NotFound.into());
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
