//! Request extractors that answer bad input with problem+json instead of axum's plain text.

use super::error::{ApiError, FieldError};
use crate::app::AppError;
use crate::domain::escape_pointer_token;
use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::header,
};
use serde::de::DeserializeOwned;

/// A JSON body. Wrong content type: 415. Not JSON: 400. Wrong shape (missing field, wrong
/// type, unknown field): 422 with a JSON Pointer to the field.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = read_body(req, state).await?;
        parse(&bytes).map(ApiJson)
    }
}

/// Like [`ApiJson`], but an empty body (with or without a content type) is `None`: for
/// requests whose every field is optional.
pub struct OptionalApiJson<T>(pub Option<T>);

impl<S, T> FromRequest<S> for OptionalApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(&req);
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse(&bytes).map(|v| Self(Some(v)))
    }
}

/// The raw body, with over-size and unreadable bodies answered as problem+json (413 / 400)
/// instead of axum's plain text.
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_body(req, state).await.map(Self)
    }
}

fn is_json(req: &Request) -> bool {
    is_json_content_type(req.headers())
}

/// `application/json` or `application/<something>+json`, parameters ignored.
pub fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("the request body is too large".to_owned())
        } else {
            ApiError::Malformed(format!("could not read the request body: {rejection}"))
        }
    })
}

/// Parses in two steps so that "not JSON" (400) and "JSON of the wrong shape" (422, with a
/// pointer) get different answers.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Malformed(format!("the request body is not valid JSON: {e}")))?;
    // Every body of this API is an object. serde would also read a struct from an array of
    // its fields in order (`[null, null]`), a form no client means to send.
    if !value.is_object() {
        return Err(AppError::invalid("", "the body must be a JSON object").into());
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut pointer = pointer_of(err.path());
        let message = err.inner().to_string();
        // serde reports a missing field at its parent; point at the field itself. (An
        // unknown field's path already ends with it.)
        if let Some(rest) = message.strip_prefix("missing field `")
            && let Some(field) = rest.split('`').next()
        {
            pointer = format!("{pointer}/{}", escape_pointer_token(field));
        }
        AppError::Invalid(vec![FieldError::new(pointer, message)]).into()
    })
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => out.push_str(&format!("/{}", escape_pointer_token(key))),
            Segment::Enum { variant } => {
                out.push_str(&format!("/{}", escape_pointer_token(variant)));
            }
            Segment::Unknown => {}
        }
    }
    out
}

pub use crate::domain::Validation;

pub use crate::auth::rate_limit::ClientAddr;

/// A path parameter. One that does not parse (an id that is not a UUID) names no resource:
/// 404, like any other missing object.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> axum::extract::FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|_| AppError::NotFound.into())
    }
}

/// Query parameters, with a problem+json answer for a query string that cannot be read.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| AppError::invalid("/query", e.body_text()).into())
    }
}

/// The query string as its name-value pairs, in order, repeated names included (`?tag=a&tag=b`),
/// percent-decoded. For lists whose filters repeat, which `ApiQuery`'s struct cannot read.
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of `name`, which may be given once (a second one is recorded at
    /// `/query/<name>`).
    pub fn one(&self, v: &mut Validation, name: &str) -> Option<&str> {
        let values = self.all(name);
        if values.len() > 1 {
            v.push(&format!("/query/{name}"), "may be given only once");
        }
        values.first().copied()
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(Self(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only deserialized")]
    struct Doc {
        name: String,
        owner: Owner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only deserialized")]
    struct Owner {
        email: String,
    }

    fn pointer(body: &str) -> String {
        match parse::<Doc>(body.as_bytes()) {
            Err(ApiError::App(AppError::Invalid(errors))) => errors[0].pointer.clone(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn shape_errors_point_at_the_field() {
        assert_eq!(pointer(r#"{"owner": {"email": "a@b.c"}}"#), "/name");
        assert_eq!(
            pointer(r#"{"name": 5, "owner": {"email": "a@b.c"}}"#),
            "/name"
        );
        assert_eq!(pointer(r#"{"name": "x", "owner": {}}"#), "/owner/email");
        assert_eq!(
            pointer(r#"{"name": "x", "owner": {"email": "a", "e/x": 1}}"#),
            "/owner/e~1x"
        );
    }

    #[test]
    fn non_json_is_malformed() {
        assert!(matches!(
            parse::<Doc>(b"{not json"),
            Err(ApiError::Malformed(_))
        ));
    }
}
