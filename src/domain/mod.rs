//! Domain types: values that can only be built through a constructor that checks them.
//!
//! Handlers turn request DTOs into these at the edge (`parse`), so code further in never
//! re-validates and never sees an invalid e-mail address, license key or interval.

pub mod alert_event;
pub mod alert_policy;
pub mod channel;
mod email;
mod field_error;
mod license;
pub mod notify_policy;
pub mod notify_settings;
mod password;
pub mod quiet;
mod role;
pub mod snapshot;
pub mod status;
mod text;
mod timezone;

pub use email::EmailAddress;
pub use field_error::{FieldError, Validation, escape_pointer_token};
pub use license::{CheckInterval, LicenseKey, LicenseKind};
pub use password::Password;
pub use role::Role;
pub use text::DisplayName;
pub use timezone::TimeZoneName;
