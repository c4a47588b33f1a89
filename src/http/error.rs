//! The one HTTP error type. Every handler returns `Result<_, ApiError>`; this file alone decides
//! status codes and bodies (`application/problem+json`, RFC 9457, with field pointers). The
//! errors of the layers below (`AppError`, ingest's `BatchError`) are mapped here, once.
//!
//! 5xx bodies are opaque: the cause chain goes to the log, never to the client.

use crate::{app::AppError, ingest::validate::BatchError};
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

pub type ApiResult<T> = Result<T, ApiError>;

pub use crate::domain::FieldError;

/// `application/problem+json` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:streamwatch:problem:<slug>`).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Every invalid field, when the request had any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON at all.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// 401 with `WWW-Authenticate: Bearer`.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// 403: authenticated, but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 404: missing, or another tenant's (the two are indistinguishable on purpose).
    #[error("not found")]
    NotFound,
    /// 409: conflicts with existing state, e.g. a duplicate key.
    #[error("conflict: {detail}")]
    Conflict { detail: String, pointer: String },
    /// 413
    #[error("payload too large")]
    PayloadTooLarge(String),
    /// 415
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 415 with a specific explanation.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaTypeDetail(String),
    /// 422: well-formed JSON with invalid fields.
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    /// 429 with `Retry-After`.
    #[error("too many requests")]
    TooManyRequests(Duration),
    /// 503 with `Retry-After`: a dependency (PostgreSQL) is unavailable.
    #[error("service unavailable: {0}")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(pointer, message)])
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str, String) {
        use ApiError::*;
        match self {
            Malformed(d) => (
                StatusCode::BAD_REQUEST,
                "malformed-request",
                "Malformed request",
                d.clone(),
            ),
            Unauthorized(d) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                (*d).to_owned(),
            ),
            Forbidden(d) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "Forbidden",
                (*d).to_owned(),
            ),
            NotFound => (
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                "no such resource".to_owned(),
            ),
            Conflict { detail, .. } => {
                (StatusCode::CONFLICT, "conflict", "Conflict", detail.clone())
            }
            PayloadTooLarge(d) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                d.clone(),
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "the request body must be JSON: send 'Content-Type: application/json'".to_owned(),
            ),
            UnsupportedMediaTypeDetail(d) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                d.clone(),
            ),
            Invalid(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid request",
                match errors.as_slice() {
                    [one] => format!("{}: {}", one.pointer, one.message),
                    many => format!("{} fields are invalid", many.len()),
                },
            ),
            TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                "slow down and retry later".to_owned(),
            ),
            Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "the service is temporarily unavailable; retry later".to_owned(),
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
                "an internal error occurred".to_owned(),
            ),
        }
    }
}

/// Database errors, classified once by `AppError` (a lost connection is a 503).
impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        AppError::from(err).into()
    }
}

impl From<Vec<FieldError>> for ApiError {
    fn from(errors: Vec<FieldError>) -> Self {
        Self::Invalid(errors)
    }
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        match err {
            AppError::NotFound => Self::NotFound,
            AppError::Unauthorized(why) => Self::Unauthorized(why),
            AppError::Forbidden(why) => Self::Forbidden(why),
            AppError::Conflict { detail, pointer } => Self::Conflict { detail, pointer },
            AppError::Invalid(errors) => Self::Invalid(errors),
            AppError::TooManyRequests(wait) => Self::TooManyRequests(wait),
            AppError::Unavailable(e) => Self::Unavailable(e),
            AppError::Internal(e) => Self::Internal(e),
        }
    }
}

impl From<BatchError> for ApiError {
    fn from(err: BatchError) -> Self {
        match err {
            BatchError::NotJson(detail) => Self::Malformed(detail),
            BatchError::Invalid(errors) => Self::Invalid(errors),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title, detail) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        let errors = match self {
            ApiError::Invalid(ref errors) => errors.clone(),
            ApiError::Conflict {
                ref pointer,
                ref detail,
            } => vec![FieldError::new(pointer.clone(), detail.clone())],
            _ => Vec::new(),
        };
        let body = Problem {
            kind: format!("urn:streamwatch:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            errors,
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            ApiError::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="streamwatch""#),
                );
            }
            ApiError::TooManyRequests(wait) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(wait.as_secs().max(1)),
                );
            }
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}

impl From<crate::accounts::AccountError> for ApiError {
    fn from(err: crate::accounts::AccountError) -> Self {
        AppError::from(err).into()
    }
}
