//! The web UI's answer to a failed use case: a plain page with the status code the JSON API
//! would use, never a problem+json body. The cause of a server error goes to the log only.

use super::pages::Nav;
use crate::app::AppError;
use askama::Template;
use askama_web::WebTemplate;
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

#[derive(Template, WebTemplate)]
#[template(path = "message.html")]
struct ErrorPage {
    nav: Option<Nav>,
    title: &'static str,
    message: &'static str,
}

/// A page for a failed call that the handler did not answer itself.
pub fn page(e: impl Into<AppError>) -> Response {
    let e: AppError = e.into();
    let code = status(&e);
    if code.is_server_error() {
        tracing::error!(error = ?e, "page failed");
    }
    let page = ErrorPage {
        nav: None,
        title: "Something went wrong",
        message: "The page could not be shown. Try again in a moment.",
    };
    (code, page).into_response()
}
