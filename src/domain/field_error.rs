//! Field errors: what is wrong with one input field, and a collector that gathers every one of
//! them before answering. Transport-neutral: the JSON API answers them as problem+json with
//! pointers, the web UI puts each message next to its field.

use serde::Serialize;
use utoipa::ToSchema;

/// One invalid field: where (a JSON Pointer into the request body, or `/query/<name>` for a
/// query parameter) and what is wrong.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    #[schema(example = "/check_interval_seconds")]
    pub pointer: String,
    #[schema(example = "must be between 60 (1 min) and 86400 (24 h) seconds, not 30")]
    pub message: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

/// RFC 6901 escaping of one reference token of a JSON Pointer.
pub fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Collects field errors while input is turned into domain values, so that one answer lists
/// every invalid field instead of only the first.
#[derive(Debug, Default)]
pub struct Validation {
    errors: Vec<FieldError>,
}

impl Validation {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `value` with `parse`; on failure records the message at `pointer`.
    pub fn check<V, T>(
        &mut self,
        pointer: &str,
        value: V,
        parse: impl FnOnce(V) -> Result<T, String>,
    ) -> Option<T> {
        match parse(value) {
            Ok(v) => Some(v),
            Err(message) => {
                self.errors.push(FieldError::new(pointer, message));
                None
            }
        }
    }

    /// Like `check` for a field that must be present.
    pub fn required<V, T>(
        &mut self,
        pointer: &str,
        value: Option<V>,
        parse: impl FnOnce(V) -> Result<T, String>,
    ) -> Option<T> {
        match value {
            Some(v) => self.check(pointer, v, parse),
            None => {
                self.errors.push(FieldError::new(pointer, "is required"));
                None
            }
        }
    }

    pub fn push(&mut self, pointer: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(pointer, message));
    }

    pub fn push_error(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok` when nothing was recorded; otherwise every recorded field.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_tokens_escape_tilde_before_slash() {
        assert_eq!(escape_pointer_token("a/b~c"), "a~1b~0c");
    }

    #[test]
    fn validation_reports_every_field_in_order() {
        let mut v = Validation::new();
        let ok: Option<u8> = v.check("/a", "7", |s| s.parse().map_err(|_| "bad".to_owned()));
        let _: Option<u8> = v.check("/b", "x", |s| s.parse().map_err(|_| "bad".to_owned()));
        let _: Option<u8> = v.required("/c", None::<&str>, |_| Ok(1));
        assert_eq!(ok, Some(7));
        let errors = v.finish().unwrap_err();
        let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/b", "/c"]);
    }
}
