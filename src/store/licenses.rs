use crate::domain::{CheckInterval, DisplayName, LicenseKey, LicenseKind};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use utoipa::ToSchema;
use uuid::Uuid;

/// A license: one site running one edge agent.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct License {
    pub id: Uuid,
    /// The customer's own key, unique in the tenant.
    #[schema(example = "LIC-001")]
    pub key: String,
    #[schema(example = "Depot 7")]
    pub name: String,
    pub kind: LicenseKind,
    /// A heartbeat is fresh when received within this many seconds (60..86400).
    #[schema(example = 600)]
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
            _ => {
                return Err(format!(
                    "must be one of name, key, created_at (prefix '-' for descending), not '{input}'"
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
        };
        if self.descending {
            format!("-{field}")
        } else {
            field.to_owned()
        }
    }

    /// The value of the sort column of `l`, as it is carried in a cursor.
    pub fn value_of(self, l: &License) -> String {
        match self.key {
            SortKey::Name => l.name.clone(),
            SortKey::Key => l.key.clone(),
            SortKey::CreatedAt => l
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
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

/// Where the previous page ended: the sort column's value and the id (the tie-breaker).
#[derive(Debug, Clone)]
pub struct After {
    pub value: String,
    pub id: Uuid,
}

pub struct ListQuery {
    pub kind: Option<LicenseKind>,
    /// Case-insensitive substring of the name or key.
    pub text: Option<String>,
    pub sort: Sort,
    pub after: Option<After>,
    pub limit: i64,
}

const COLUMNS: &str = "id, key, name, kind, check_interval_seconds, created_at, updated_at";

pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    new: &NewLicense,
) -> Result<License, sqlx::Error> {
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
) -> Result<Option<License>, sqlx::Error> {
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
) -> Result<Option<License>, sqlx::Error> {
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

/// One page (keyset pagination), fetching `limit + 1` rows so the caller knows if there is more.
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    q: &ListQuery,
) -> Result<Vec<License>, sqlx::Error> {
    let mut sql: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {COLUMNS} FROM licenses WHERE tenant_id = "));
    sql.push_bind(tenant_id);
    if let Some(kind) = q.kind {
        sql.push(" AND kind = ").push_bind(kind);
    }
    if let Some(text) = &q.text {
        let pattern = format!("%{}%", like_escape(text));
        sql.push(" AND (name ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR key ILIKE ")
            .push_bind(pattern)
            .push(")");
    }
    // The column names below come from the SortKey enum, never from the request.
    let column = match q.sort.key {
        SortKey::Name => "name",
        SortKey::Key => "key",
        SortKey::CreatedAt => "created_at",
    };
    let (cmp, dir) = if q.sort.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(after) = &q.after {
        sql.push(format!(" AND ({column}, id) {cmp} ("));
        match q.sort.key {
            SortKey::CreatedAt => {
                let at = DateTime::parse_from_rfc3339(&after.value)
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_default();
                sql.push_bind(at);
            }
            SortKey::Name | SortKey::Key => {
                sql.push_bind(after.value.clone());
            }
        }
        sql.push(", ").push_bind(after.id).push(")");
    }
    sql.push(format!(" ORDER BY {column} {dir}, id {dir} LIMIT "))
        .push_bind(q.limit + 1);
    sql.build_query_as().fetch_all(conn).await
}

/// Escapes LIKE's wildcards so that a search for `50%` finds "50%", not everything.
fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
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

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_escape(r"50%_a\b"), r"50\%\_a\\b");
    }
}
