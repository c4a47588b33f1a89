//! Platform administration: tenants (admin token only).

use super::{
    auth::PlatformAdmin,
    error::{ApiResult, Problem},
    extract::{ApiJson, ApiPath, ApiQuery, Validation},
};
use crate::app::AppError;
use crate::app::{AppState, pagination};
use crate::{
    accounts::{self, AccountError},
    domain::{DisplayName, EmailAddress, Password, TimeZoneName},
    store::{
        tenants::{self, Tenant},
        users::User,
    },
};
use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_tenant, list_tenants))
        .routes(routes!(get_tenant, update_tenant))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    #[schema(example = "Acme")]
    pub name: String,
    /// IANA time zone; default `UTC`.
    #[schema(example = "Europe/Berlin")]
    pub timezone: Option<String>,
    /// The tenant's first user, with the owner role.
    pub owner: NewOwner,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOwner {
    #[schema(example = "ops@acme.test")]
    pub email: String,
    /// 10..1024 characters.
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTenant {
    #[serde(flatten)]
    pub tenant: Tenant,
    pub owner: User,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    pub name: Option<String>,
    pub timezone: Option<String>,
    /// `true` suspends the tenant (every credential of it gets 403), `false` lifts it.
    pub suspended: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    pub items: Vec<Tenant>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1..200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Creates a tenant and its first owner.
#[utoipa::path(post, path = "/admin/tenants", tag = "admin", security(("admin_token" = [])), request_body = CreateTenant, responses(
    (status = 201, description = "Created", body = CreatedTenant),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "The admin API is disabled", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The owner's e-mail address already has an account", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
async fn create_tenant(
    _: PlatformAdmin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateTenant>,
) -> ApiResult<(StatusCode, Json<CreatedTenant>)> {
    let mut v = Validation::new();
    let name = v.check("/name", body.name.as_str(), DisplayName::parse);
    let timezone = v.check(
        "/timezone",
        body.timezone.as_deref().unwrap_or("UTC"),
        TimeZoneName::parse,
    );
    let email = v.check(
        "/owner/email",
        body.owner.email.as_str(),
        EmailAddress::parse,
    );
    let password = v.check(
        "/owner/password",
        body.owner.password.as_str(),
        Password::parse,
    );
    v.finish()?;
    let (Some(name), Some(timezone), Some(email), Some(password)) =
        (name, timezone, email, password)
    else {
        return Err(AppError::Internal(anyhow::anyhow!("validation passed without values")).into());
    };
    let (tenant, owner) =
        match accounts::create_tenant(&state.pool, &name, &timezone, &email, &password).await {
            Err(AccountError::EmailTaken) => {
                return Err(AppError::Conflict {
                    detail: AccountError::EmailTaken.to_string(),
                    pointer: "/owner/email".to_owned(),
                }
                .into());
            }
            other => other?,
        };
    Ok((StatusCode::CREATED, Json(CreatedTenant { tenant, owner })))
}

/// Lists every tenant, oldest first.
#[utoipa::path(get, path = "/admin/tenants", tag = "admin", security(("admin_token" = [])), params(PageParams), responses(
    (status = 200, description = "One page of tenants", body = TenantList),
    (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "The admin API is disabled", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
))]
async fn list_tenants(
    _: PlatformAdmin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<TenantList>> {
    let mut v = Validation::new();
    let limit = pagination::parse_limit(&mut v, q.limit.as_deref());
    let after = pagination::parse_cursor(&mut v, q.cursor.as_deref(), "id");
    v.finish()?;
    let mut conn = state.pool.acquire().await?;
    let rows = tenants::list(&mut conn, after.map(|c| c.id), limit).await?;
    let (items, next_cursor) = pagination::page(rows, limit, "id", |t| (String::new(), t.id));
    Ok(Json(TenantList { items, next_cursor }))
}

/// Reads one tenant.
#[utoipa::path(get, path = "/admin/tenants/{id}", tag = "admin", security(("admin_token" = [])), params(("id" = Uuid, Path, description = "Tenant id")), responses(
    (status = 200, description = "The tenant", body = Tenant),
    (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such tenant, or the admin API is disabled", body = Problem, content_type = "application/problem+json"),
))]
async fn get_tenant(
    _: PlatformAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Tenant>> {
    let mut conn = state.pool.acquire().await?;
    tenants::get(&mut conn, id)
        .await?
        .map(Json)
        .ok_or(AppError::NotFound.into())
}

/// Renames a tenant, changes its time zone, or suspends / reinstates it.
#[utoipa::path(patch, path = "/admin/tenants/{id}", tag = "admin", security(("admin_token" = [])), params(("id" = Uuid, Path, description = "Tenant id")), request_body = UpdateTenant, responses(
    (status = 200, description = "The updated tenant", body = Tenant),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such tenant, or the admin API is disabled", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
async fn update_tenant(
    _: PlatformAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateTenant>,
) -> ApiResult<Json<Tenant>> {
    let mut v = Validation::new();
    let name = body
        .name
        .as_deref()
        .and_then(|n| v.check("/name", n, DisplayName::parse));
    let timezone = body
        .timezone
        .as_deref()
        .and_then(|t| v.check("/timezone", t, TimeZoneName::parse));
    v.finish()?;
    let mut conn = state.pool.acquire().await?;
    let tenant = tenants::update(
        &mut conn,
        id,
        name.as_ref().map(DisplayName::as_str),
        timezone.as_ref().map(TimeZoneName::as_str),
        body.suspended,
    )
    .await?
    .ok_or(AppError::NotFound)?;
    if body.suspended.is_some() {
        tracing::info!(tenant_id = %id, suspended = tenant.suspended_at.is_some(), "tenant suspension changed");
    }
    Ok(Json(tenant))
}
