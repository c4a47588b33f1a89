//! Agent tokens (`swa_...`): each bound to one license, shown once, stored hashed. Several may
//! be valid at once, which is how rotation works: create a new token, deploy it, revoke the
//! old one.

use super::{
    auth::AuthUser,
    error::{ApiResult, Problem},
    extract::{ApiPath, OptionalApiJson, Validation},
};
use crate::app::AppError;
use crate::app::{self, AppState};
use crate::{
    auth::token::{self, TokenKind},
    db,
    domain::{DisplayName, Role},
    store::{
        self,
        agent_tokens::{self, AgentToken},
        licenses::LicenseRow,
    },
};
use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgentToken {
    /// A label, e.g. where the token is deployed. Default: `agent token`.
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAgentToken {
    #[serde(flatten)]
    pub agent_token: AgentToken,
    /// The secret, shown this once. Only its hash is stored.
    #[schema(example = "swa_x7Yz0q...")]
    pub token: String,
    /// A ready-to-paste agent configuration (TOML) with this token and the server's URL.
    pub config_snippet: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentTokenList {
    pub items: Vec<AgentToken>,
}

async fn license_or_404(
    tx: &mut sqlx::PgConnection,
    auth: &AuthUser,
    license_id: Uuid,
) -> ApiResult<LicenseRow> {
    store::get::<LicenseRow>(tx, auth.tenant_id, license_id)
        .await?
        .ok_or(AppError::NotFound.into())
}

/// Lists the license's agent tokens (revoked ones included, with `revoked_at`).
#[utoipa::path(get, path = "/licenses/{id}/agent-tokens", tag = "agent-tokens", security(("bearer" = [])), params(("id" = Uuid, Path, description = "License id")), responses(
    (status = 200, description = "The tokens", body = AgentTokenList),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant", body = Problem, content_type = "application/problem+json"),
))]
async fn list_tokens(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(license_id): ApiPath<Uuid>,
) -> ApiResult<Json<AgentTokenList>> {
    auth.require(Role::Admin)?;
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    license_or_404(&mut tx, &auth, license_id).await?;
    let items = agent_tokens::list(&mut tx, auth.tenant_id, license_id).await?;
    tx.commit().await?;
    Ok(Json(AgentTokenList { items }))
}

/// Creates an agent token for the license. The body is optional.
#[utoipa::path(post, path = "/licenses/{id}/agent-tokens", tag = "agent-tokens", security(("bearer" = [])), params(("id" = Uuid, Path, description = "License id")), request_body(content = Option<CreateAgentToken>, description = "Optional"), responses(
    (status = 201, description = "Created; keep `token` now", body = CreatedAgentToken),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "A body that is not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
async fn create_token(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(license_id): ApiPath<Uuid>,
    OptionalApiJson(body): OptionalApiJson<CreateAgentToken>,
) -> ApiResult<(StatusCode, Json<CreatedAgentToken>)> {
    auth.require(Role::Admin)?;
    let body = body.unwrap_or_default();
    let mut v = Validation::new();
    let name = v.check(
        "/name",
        body.name.as_deref().unwrap_or("agent token"),
        DisplayName::parse,
    );
    v.finish()?;
    let Some(name) = name else {
        return Err(AppError::invalid("/name", "is required").into());
    };
    let secret = token::generate(TokenKind::Agent);
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    let license = license_or_404(&mut tx, &auth, license_id).await?;
    let agent_token =
        agent_tokens::insert(&mut tx, auth.tenant_id, license_id, name.as_str(), &secret).await?;
    tx.commit().await?;
    let config_snippet =
        app::agent_tokens::config_snippet(&state.settings.public_url(), &license, &secret.plain);
    Ok((
        StatusCode::CREATED,
        Json(CreatedAgentToken {
            agent_token,
            token: secret.plain,
            config_snippet,
        }),
    ))
}

/// Revokes an agent token at once; its agent gets 401 from then on.
#[utoipa::path(delete, path = "/licenses/{id}/agent-tokens/{token_id}", tag = "agent-tokens", security(("bearer" = [])), params(
    ("id" = Uuid, Path, description = "License id"),
    ("token_id" = Uuid, Path, description = "Agent token id"),
), responses(
    (status = 204, description = "Revoked"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license or token in this tenant", body = Problem, content_type = "application/problem+json"),
))]
async fn revoke_token(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath((license_id, token_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    auth.require(Role::Admin)?;
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    if !agent_tokens::revoke(&mut tx, auth.tenant_id, license_id, token_id).await? {
        return Err(AppError::NotFound.into());
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
