//! The OpenAPI 3.1 document. It is generated from the handlers' annotations (utoipa) and
//! committed as `openapi.yaml`; a test fails when the file and the code disagree
//! (`UPDATE_OPENAPI=1 cargo test openapi` rewrites it), and the API tests validate every
//! response they see against it.

use super::error::{FieldError, Problem};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "streamwatch API",
        description = "Multi-tenant control plane for monitoring video-stream sites. Errors are \
                       `application/problem+json` (RFC 9457) with `errors: [{pointer, message}]`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "admin", description = "Platform administration (admin token)"),
        (name = "auth", description = "Access tokens and the current identity"),
        (name = "users", description = "Users of a tenant"),
        (name = "api-keys", description = "Long-lived API keys"),
        (name = "licenses", description = "Licenses (sites)"),
        (name = "agent-tokens", description = "Credentials of edge agents"),
        (name = "ingest", description = "Heartbeats from edge agents (agent token)"),
        (name = "status", description = "License and camera status, derived at read time"),
        (name = "notifications", description = "Inactivity e-mails: settings, history, unsubscribe"),
        (name = "quiet", description = "Quiet periods: maintenance windows and snoozes"),
        (name = "channels", description = "Alert channels: where alerts go besides e-mail recipients, and test sends"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(description.to_owned());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            "bearer",
            bearer("A user's JWT access token (POST /api/v1/auth/token) or an API key (swk_...)."),
        );
        components.add_security_scheme(
            "admin_token",
            bearer("The platform admin token from configuration (STREAMWATCH__AUTH__ADMIN_TOKEN)."),
        );
        // Heartbeat ingest names this scheme; undeclared, the document did not say what
        // credential it takes (and OpenAPI tools refuse or ignore an undefined scheme).
        components.add_security_scheme(
            "agent_token",
            bearer(
                "An edge agent's token (swa_...), from POST /api/v1/licenses/{id}/agent-tokens.",
            ),
        );
    }
}

pub fn base() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// The whole document, as served and as committed.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = super::routes().into_openapi();
    add_common_errors(&mut doc);
    doc
}

/// Every `/api` operation can meet an unreachable PostgreSQL (503 with `Retry-After`) or a bug
/// (500, opaque body); saying so once here keeps the handlers' annotations about their own
/// answers.
fn add_common_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/api/") {
            continue;
        }
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in operations.into_iter().flatten() {
            let responses = &mut op.responses.responses;
            responses.entry("500".to_owned()).or_insert_with(|| {
                problem("Internal error (the body says nothing more; the log has the cause)").into()
            });
            responses.entry("503".to_owned()).or_insert_with(|| {
                problem("PostgreSQL is unreachable; retry after Retry-After seconds").into()
            });
        }
    }
}

pub fn yaml() -> anyhow::Result<String> {
    Ok(document().to_yaml()?)
}
