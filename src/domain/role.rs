use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a user or API key may do inside its tenant (SPEC section 2).
///
/// The order matters: `Viewer < Admin < Owner`, and `at_least` compares along it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema, sqlx::Type,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Role {
    /// Read only.
    Viewer,
    /// Licenses, agent tokens, API keys, notification settings.
    Admin,
    /// Everything, including users.
    Owner,
}

impl Role {
    pub fn parse(input: &str) -> Result<Self, String> {
        match input {
            "owner" => Ok(Self::Owner),
            "admin" => Ok(Self::Admin),
            "viewer" => Ok(Self::Viewer),
            _ => Err(format!(
                "must be 'owner', 'admin' or 'viewer', not '{input}'"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }

    pub fn at_least(self, required: Role) -> bool {
        self >= required
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Owner.at_least(Role::Admin));
        assert!(Role::Admin.at_least(Role::Admin));
        assert!(!Role::Viewer.at_least(Role::Admin));
        assert!(!Role::Admin.at_least(Role::Owner));
    }
}
