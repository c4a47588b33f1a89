use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// A license key as the customer knows it (`LIC-001`): 1..64 characters of `[A-Za-z0-9._-]`.
/// Keys are unique per tenant and compared exactly (case matters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseKey(String);

impl LicenseKey {
    pub const MAX_LEN: usize = 64;

    pub fn parse(input: &str) -> Result<Self, String> {
        if input.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if input.chars().count() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        if !input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err("may contain only letters, digits, '.', '_' and '-'".to_owned());
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LicenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the site is connected: an agent on the site's own machine (`direct`) or one that we run
/// for the customer in the cloud (`cloud`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum LicenseKind {
    Direct,
    Cloud,
}

impl LicenseKind {
    pub fn parse(input: &str) -> Result<Self, String> {
        match input {
            "direct" => Ok(Self::Direct),
            "cloud" => Ok(Self::Cloud),
            _ => Err(format!("must be 'direct' or 'cloud', not '{input}'")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Cloud => "cloud",
        }
    }
}

/// How recent a heartbeat must be to count as fresh (SPEC section 4): 1 minute .. 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckInterval(i32);

impl CheckInterval {
    pub const MIN_SECONDS: i64 = 60;
    pub const MAX_SECONDS: i64 = 86_400;
    pub const DEFAULT: Self = Self(600);

    pub fn from_seconds(seconds: i64) -> Result<Self, String> {
        if !(Self::MIN_SECONDS..=Self::MAX_SECONDS).contains(&seconds) {
            return Err(format!(
                "must be between {} (1 min) and {} (24 h) seconds, not {seconds}",
                Self::MIN_SECONDS,
                Self::MAX_SECONDS
            ));
        }
        // In range, so it fits.
        Ok(Self(seconds as i32))
    }

    pub fn seconds(self) -> i32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn license_keys_are_checked() {
        assert!(LicenseKey::parse("LIC-001").is_ok());
        assert!(LicenseKey::parse("a.b_c-9").is_ok());
        assert!(LicenseKey::parse("").is_err());
        assert!(LicenseKey::parse("has space").is_err());
        assert!(LicenseKey::parse("ünïcode").is_err());
        assert!(LicenseKey::parse(&"k".repeat(64)).is_ok());
        assert!(LicenseKey::parse(&"k".repeat(65)).is_err());
    }

    #[test]
    fn check_interval_bounds_are_inclusive() {
        assert!(CheckInterval::from_seconds(59).is_err());
        assert_eq!(CheckInterval::from_seconds(60).unwrap().seconds(), 60);
        assert_eq!(
            CheckInterval::from_seconds(86_400).unwrap().seconds(),
            86_400
        );
        assert!(CheckInterval::from_seconds(86_401).is_err());
        assert!(CheckInterval::from_seconds(-1).is_err());
    }

    #[test]
    fn kinds_parse() {
        assert_eq!(LicenseKind::parse("direct"), Ok(LicenseKind::Direct));
        assert_eq!(LicenseKind::parse("cloud"), Ok(LicenseKind::Cloud));
        assert!(LicenseKind::parse("Direct").is_err());
    }
}
