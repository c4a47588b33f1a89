//! How the web UI answers a failed use case: with the status code the JSON API would use, and
//! the cause of a server error in the log only. (`page::failure` renders it as a page.)

use crate::app::AppError;
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

/// The HTTP status of a use case's error, as the web UI answers it.
pub fn status(e: &AppError) -> StatusCode {
    match e {
        AppError::NotFound => StatusCode::NOT_FOUND,
        AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::Conflict { .. } => StatusCode::CONFLICT,
        AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status of `e`, after logging a server error's cause.
pub fn logged_status(e: &AppError) -> StatusCode {
    let code = status(e);
    if code.is_server_error() {
        tracing::error!(error = ?e, "page failed");
    }
    code
}

/// A bare answer for where no page can be rendered yet (the session extractor).
pub fn plain(e: &AppError) -> Response {
    (
        logged_status(e),
        "The page could not be shown. Try again in a moment.",
    )
        .into_response()
}
