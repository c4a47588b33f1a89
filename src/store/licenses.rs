use crate::domain::{CheckInterval, DisplayName, LicenseKey, LicenseKind};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A license row: one site running one edge agent. The API shows it with its status
/// (`store::status::License`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LicenseRow {
    pub id: Uuid,
    /// The customer's own key, unique in the tenant.
    pub key: String,
    pub name: String,
    pub kind: LicenseKind,
    /// A heartbeat is fresh when received within this many seconds (60..86400).
    pub check_interval_seconds: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewLicense {
    pub key: LicenseKey,
    pub name: DisplayName,
    pub kind: LicenseKind,
    pub check_interval: CheckInterval,
}

#[derive(Default)]
pub struct LicensePatch {
    pub key: Option<LicenseKey>,
    pub name: Option<DisplayName>,
    pub kind: Option<LicenseKind>,
    pub check_interval: Option<CheckInterval>,
}

/// The orders the license list can be sorted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Key,
    CreatedAt,
    /// By urgency: inactive, partially active, not installed, all active.
    Status,
    /// By last activity; never-installed licenses count as the oldest.
    LastActivity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Sort {
    /// `name`, `-name`, `key`, `-key`, `created_at`, `-created_at`.
    pub fn parse(input: &str) -> Result<Self, String> {
        let (descending, field) = match input.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, input),
        };
        let key = match field {
            "name" => SortKey::Name,
            "key" => SortKey::Key,
            "created_at" => SortKey::CreatedAt,
            "status" => SortKey::Status,
            "last_activity" => SortKey::LastActivity,
            _ => {
                return Err(format!(
                    "must be one of name, key, created_at, status, last_activity (prefix '-' for descending), not '{input}'"
                ));
            }
        };
        Ok(Self { key, descending })
    }

    pub fn as_param(self) -> String {
        let field = match self.key {
            SortKey::Name => "name",
            SortKey::Key => "key",
            SortKey::CreatedAt => "created_at",
            SortKey::Status => "status",
            SortKey::LastActivity => "last_activity",
        };
        if self.descending {
            format!("-{field}")
        } else {
            field.to_owned()
        }
    }

    /// The SQL column of `store::status::status_cte` this sort orders by, and its type.
    pub fn column(self) -> (&'static str, &'static str) {
        match self.key {
            SortKey::Name => ("name", "text"),
            SortKey::Key => ("key", "text"),
            SortKey::CreatedAt => ("created_at", "timestamptz"),
            SortKey::Status => ("status_rank", "int4"),
            SortKey::LastActivity => ("activity_key", "timestamptz"),
        }
    }

    /// The value of the sort column of `l`, as a cursor carries it (text PostgreSQL casts back).
    pub fn value_of(self, l: &crate::store::status::License) -> String {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        match self.key {
            SortKey::Name => l.name.clone(),
            SortKey::Key => l.key.clone(),
            SortKey::CreatedAt => time(l.created_at),
            SortKey::Status => l.status.rank().to_string(),
            SortKey::LastActivity => l
                .last_activity_at
                .map_or_else(|| "-infinity".to_owned(), time),
        }
    }
}

impl Default for Sort {
    fn default() -> Self {
        Self {
            key: SortKey::Name,
            descending: false,
        }
    }
}

pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    new: &NewLicense,
) -> Result<LicenseRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO licenses (tenant_id, id, key, name, kind, check_interval_seconds)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, key, name, kind, check_interval_seconds, created_at, updated_at",
    )
    .bind(tenant_id)
    .bind(Uuid::now_v7())
    .bind(new.key.as_str())
    .bind(new.name.as_str())
    .bind(new.kind)
    .bind(new.check_interval.seconds())
    .fetch_one(conn)
    .await
}

pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<LicenseRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, key, name, kind, check_interval_seconds, created_at, updated_at
         FROM licenses WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn update(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    patch: &LicensePatch,
) -> Result<Option<LicenseRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE licenses SET
             key = COALESCE($3, key),
             name = COALESCE($4, name),
             kind = COALESCE($5, kind),
             check_interval_seconds = COALESCE($6, check_interval_seconds),
             updated_at = now()
         WHERE tenant_id = $1 AND id = $2
         RETURNING id, key, name, kind, check_interval_seconds, created_at, updated_at",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(patch.key.as_ref().map(LicenseKey::as_str))
    .bind(patch.name.as_ref().map(DisplayName::as_str))
    .bind(patch.kind)
    .bind(patch.check_interval.map(CheckInterval::seconds))
    .fetch_optional(conn)
    .await
}

pub async fn delete(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM licenses WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The id of the tenant's license with this key, if there is one.
pub async fn find_by_key(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    key: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM licenses WHERE tenant_id = $1 AND key = $2")
        .bind(tenant_id)
        .bind(key)
        .fetch_optional(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_parses_direction_and_field() {
        assert_eq!(
            Sort::parse("-created_at"),
            Ok(Sort {
                key: SortKey::CreatedAt,
                descending: true
            })
        );
        assert_eq!(
            Sort::parse("name").map(Sort::as_param),
            Ok("name".to_owned())
        );
        assert!(Sort::parse("password_hash").is_err());
    }
}
