//! The service layer's error: what went wrong in terms of the use case, not of a transport.
//! `http::error` maps it to problem+json, `ui` to an HTML page; each in one `match`.

use crate::domain::FieldError;
use std::time::Duration;

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Missing, or another tenant's (the two are indistinguishable on purpose).
    #[error("not found")]
    NotFound,
    /// The credential is missing, wrong or revoked.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// Authenticated, but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// Conflicts with existing state, e.g. a duplicate key; `pointer` names the field.
    #[error("conflict: {detail}")]
    Conflict { detail: String, pointer: String },
    /// Invalid fields, every one of them.
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    /// A rate limit: retry after the duration.
    #[error("too many requests")]
    TooManyRequests(Duration),
    /// A dependency (PostgreSQL) is unavailable; the client may retry.
    #[error("service unavailable: {0}")]
    Unavailable(#[source] anyhow::Error),
    /// A bug or an unexpected failure; the cause goes to the log, never to the client.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(pointer, message)])
    }
}

impl From<Vec<FieldError>> for AppError {
    fn from(errors: Vec<FieldError>) -> Self {
        Self::Invalid(errors)
    }
}

/// Database errors: a lost connection, an exhausted pool or a server that cannot take writes (a
/// failover in progress, `db::is_unavailable`) is unavailability the client may retry; anything
/// else is a bug. Constraint violations that are the client's fault are mapped
/// to `Conflict`/`Invalid` at the query site, before they get here.
impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&err) {
            Self::Unavailable(err.into())
        } else {
            Self::Internal(anyhow::Error::new(err).context("database"))
        }
    }
}

impl From<crate::accounts::AccountError> for AppError {
    fn from(err: crate::accounts::AccountError) -> Self {
        use crate::accounts::AccountError;
        match err {
            AccountError::EmailTaken => Self::Conflict {
                detail: err.to_string(),
                pointer: "/email".to_owned(),
            },
            AccountError::NoSuchTenant => Self::NotFound,
            AccountError::Database(e) => e.into(),
            AccountError::Other(e) => Self::Internal(e),
        }
    }
}
