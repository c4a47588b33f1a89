//! Posted forms: the CSRF and role check, then every field parsed into one typed value or a
//! message per bad field, which the page shows next to that field (SPEC section 8: invalid
//! input is shown next to its field and nothing is saved).
//!
//! A handler reads:
//!
//! ```text
//! let new = match form::submit(&s, Role::Admin, &f) {
//!     Ok(new) => new,
//!     Err(Rejected::Refused(page)) => return page,
//!     Err(Rejected::Invalid(errors)) => return the_form_again(f, errors),
//! };
//! ```

use super::{page::guard, session::UiSession};
use crate::domain::Role;
use axum::response::Response;
use std::collections::BTreeMap;

/// The messages of a form's bad fields, by field name (the `name` of the input).
#[derive(Debug, Default)]
pub struct FieldErrors(BTreeMap<&'static str, String>);

impl FieldErrors {
    /// Just one message, e.g. for a conflict the database found after the fields parsed.
    pub fn one(field: &'static str, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.insert(field, message);
        errors
    }

    /// The value of a parsed field, or `None` with its message noted. A field keeps its first
    /// message (of several addresses in one field, the first bad one is named).
    pub fn check<T, E: Into<String>>(
        &mut self,
        field: &'static str,
        parsed: Result<T, E>,
    ) -> Option<T> {
        parsed
            .map_err(|e| {
                self.0.entry(field).or_insert_with(|| e.into());
            })
            .ok()
    }

    /// Notes a message for `field` unless it already has one (the first problem is named).
    pub fn note(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| message.into());
    }

    /// Sets the message of `field`, replacing any earlier one.
    pub fn insert(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.insert(field, message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `field` is bad (templates mark its input `aria-invalid`).
    pub fn contains(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// The message to show next to `field`.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }
}

/// A form of the UI: its CSRF token, and how its fields become one typed value.
pub trait FormInput {
    /// What the fields become when every one of them is valid.
    type Value;

    /// The CSRF token the form carried (missing deserialises as empty, which is wrong).
    fn csrf(&self) -> &str;

    /// Parses every field, noting a message in `errors` for each bad one, and returns the
    /// value if all were good. Check all fields before giving up, so that every message shows.
    fn fields(&self, errors: &mut FieldErrors) -> Option<Self::Value>;
}

/// Why a posted form is not acted on.
pub enum Rejected {
    /// A wrong CSRF token or too low a role: this 403 page is the answer.
    Refused(Response),
    /// Some fields are bad: show the form again, as typed, with these messages (422).
    Invalid(FieldErrors),
}

/// The value of `form`'s fields, or the message of each bad one. For handlers that must look
/// something up between the [`guard`] and the fields (the license being edited, a 404 first:
/// [`license_to_change`](super::page::license_to_change)).
pub fn parse<F: FormInput>(form: &F) -> Result<F::Value, FieldErrors> {
    let mut errors = FieldErrors::default();
    match form.fields(&mut errors) {
        Some(value) if errors.is_empty() => Ok(value),
        _ => Err(errors),
    }
}

/// Checks a posted form's CSRF token and the session's role, then parses its fields.
#[expect(clippy::result_large_err, reason = "the error is the response page")]
pub fn submit<F: FormInput>(s: &UiSession, needs: Role, form: &F) -> Result<F::Value, Rejected> {
    guard(s, form.csrf(), needs).map_err(Rejected::Refused)?;
    parse(form).map_err(Rejected::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pair {
        a: String,
        b: String,
    }

    impl FormInput for Pair {
        type Value = (i32, i32);

        fn csrf(&self) -> &str {
            ""
        }

        fn fields(&self, errors: &mut FieldErrors) -> Option<(i32, i32)> {
            let number = |s: &str| {
                s.parse::<i32>()
                    .map_err(|_| format!("'{s}' is not a number"))
            };
            let a = errors.check("a", number(&self.a));
            let b = errors.check("b", number(&self.b));
            Some((a?, b?))
        }
    }

    fn pair(a: &str, b: &str) -> Pair {
        Pair {
            a: a.to_owned(),
            b: b.to_owned(),
        }
    }

    #[test]
    fn every_bad_field_gets_its_message_and_good_fields_none() {
        let errors = parse(&pair("x", "y")).unwrap_err();
        assert_eq!(errors.get("a"), Some("'x' is not a number"));
        assert_eq!(errors.get("b"), Some("'y' is not a number"));
        let errors = parse(&pair("1", "y")).unwrap_err();
        assert!(!errors.contains("a") && errors.contains("b"));
        assert_eq!(parse(&pair("1", "2")).ok(), Some((1, 2)));
    }

    #[test]
    fn a_field_keeps_its_first_message_unless_replaced() {
        let mut errors = FieldErrors::default();
        assert_eq!(errors.check::<(), _>("to", Err("first")), None);
        assert_eq!(errors.check::<(), _>("to", Err("second")), None);
        assert_eq!(errors.get("to"), Some("first"));
        errors.insert("to", "replaced");
        assert_eq!(errors.get("to"), Some("replaced"));
        assert_eq!(FieldErrors::one("key", "taken").get("key"), Some("taken"));
    }
}
