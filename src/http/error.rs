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

/// What the JSON API answers when a request fails: the transport's own problems (a body that
/// is not JSON, too large, of the wrong type) or the use case's [`AppError`].
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON at all.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// 413
    #[error("payload too large")]
    PayloadTooLarge(String),
    /// 415
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 415 with a specific explanation.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaTypeDetail(String),
    /// 507: storing the request would take the tenant over a configured size bound (camera
    /// snapshots). Not worth retrying until something is freed or the bound is raised.
    #[error("insufficient storage: {0}")]
    InsufficientStorage(String),
    /// Everything else: 401, 403, 404, 409, 422, 429, 503 or 500 (see [`ApiError::parts`]).
    #[error(transparent)]
    App(#[from] AppError),
}

impl ApiError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// The one mapping of every failure to its status, problem type, title and detail.
    fn parts(&self) -> (StatusCode, &'static str, &'static str, String) {
        use AppError::*;
        match self {
            Self::Malformed(d) => (
                StatusCode::BAD_REQUEST,
                "malformed-request",
                "Malformed request",
                d.clone(),
            ),
            Self::PayloadTooLarge(d) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                d.clone(),
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "the request body must be JSON: send 'Content-Type: application/json'".to_owned(),
            ),
            Self::UnsupportedMediaTypeDetail(d) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                d.clone(),
            ),
            Self::InsufficientStorage(d) => (
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient-storage",
                "Insufficient storage",
                d.clone(),
            ),
            Self::App(Unauthorized(d)) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                (*d).to_owned(),
            ),
            Self::App(Forbidden(d)) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "Forbidden",
                (*d).to_owned(),
            ),
            Self::App(NotFound) => (
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                "no such resource".to_owned(),
            ),
            Self::App(Conflict { detail, .. }) => {
                (StatusCode::CONFLICT, "conflict", "Conflict", detail.clone())
            }
            Self::App(Invalid(errors)) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid request",
                match errors.as_slice() {
                    [one] => format!("{}: {}", one.pointer, one.message),
                    many => format!("{} fields are invalid", many.len()),
                },
            ),
            Self::App(TooManyRequests(_)) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                "slow down and retry later".to_owned(),
            ),
            Self::App(Unavailable(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "the service is temporarily unavailable; retry later".to_owned(),
            ),
            Self::App(Internal(_)) => (
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
        Self::App(err.into())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::App(AppError::Internal(err))
    }
}

impl From<Vec<FieldError>> for ApiError {
    fn from(errors: Vec<FieldError>) -> Self {
        Self::App(AppError::Invalid(errors))
    }
}

impl From<BatchError> for ApiError {
    fn from(err: BatchError) -> Self {
        match err {
            BatchError::NotJson(detail) => Self::Malformed(detail),
            BatchError::Invalid(errors) => errors.into(),
        }
    }
}

impl From<crate::accounts::AccountError> for ApiError {
    fn from(err: crate::accounts::AccountError) -> Self {
        Self::App(err.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title, detail) = self.parts();
        // A full tenant (507) is the tenant's condition, logged where it is decided; the rest
        // of 5xx are ours.
        if status.is_server_error() && !matches!(self, ApiError::InsufficientStorage(_)) {
            tracing::error!(error = ?self, "request failed");
        }
        let errors = match &self {
            ApiError::App(AppError::Invalid(errors)) => errors.clone(),
            ApiError::App(AppError::Conflict { pointer, detail }) => {
                vec![FieldError::new(pointer.clone(), detail.clone())]
            }
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
            ApiError::App(AppError::Unauthorized(_)) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="streamwatch""#),
                );
            }
            ApiError::App(AppError::TooManyRequests(wait)) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(wait.as_secs().max(1)),
                );
            }
            ApiError::App(AppError::Unavailable(_)) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}
