use super::TenantRow;
use crate::domain::{EmailAddress, Role};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    #[schema(example = "ops@acme.test")]
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl TenantRow for User {
    const TABLE: &'static str = "users";
    const COLUMNS: &'static str = "id, email, role, created_at, last_login_at";
}

/// What login needs: found by e-mail across all tenants (the credential names the tenant).
#[derive(Debug, sqlx::FromRow)]
pub struct LoginRecord {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub role: Role,
    pub password_hash: String,
    pub token_version: i32,
    pub suspended_at: Option<DateTime<Utc>>,
}

/// The constraint violated when an e-mail address already has an account (in any tenant).
pub const EMAIL_TAKEN: [&str; 2] = ["login_emails_pkey", "users_email_unique"];

/// Inserts the user and its login directory entry; run both in one transaction.
pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    email: &EmailAddress,
    password_hash: &str,
    role: Role,
) -> Result<User, sqlx::Error> {
    let user: User = sqlx::query_as(super::returning::<User>(
        "INSERT INTO users (tenant_id, id, email, password_hash, role) VALUES ($1, $2, $3, $4, $5)",
    ))
    .bind(tenant_id)
    .bind(Uuid::now_v7())
    .bind(email.as_str())
    .bind(password_hash)
    .bind(role)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO login_emails (email, tenant_id, user_id) VALUES ($1, $2, $3)")
        .bind(email.as_str())
        .bind(tenant_id)
        .bind(user.id)
        .execute(&mut *conn)
        .await?;
    Ok(user)
}

pub async fn find_login(
    conn: &mut PgConnection,
    email: &str,
) -> Result<Option<LoginRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.tenant_id, u.id, u.role, u.password_hash, u.token_version, t.suspended_at
         FROM login_emails e
         JOIN users u ON u.tenant_id = e.tenant_id AND u.id = e.user_id
         JOIN tenants t ON t.id = u.tenant_id
         WHERE e.email = $1",
    )
    .bind(email)
    .fetch_optional(conn)
    .await
}

pub async fn record_login(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET last_login_at = now() WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn password_hash(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT password_hash FROM users WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Changes role and/or password hash. A new password bumps the token version, which revokes
/// every access token issued before.
pub async fn update(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    role: Option<Role>,
    password_hash: Option<&str>,
) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(super::returning::<User>(
        "UPDATE users SET
             role = COALESCE($3, role),
             password_hash = COALESCE($4, password_hash),
             token_version = token_version + CASE WHEN $4 IS NULL THEN 0 ELSE 1 END,
             updated_at = now()
         WHERE tenant_id = $1 AND id = $2",
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(role)
    .bind(password_hash)
    .fetch_optional(conn)
    .await
}

/// "Log out everywhere": every access token issued so far stops working.
pub async fn bump_token_version(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET token_version = token_version + 1, updated_at = now() WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The number of owners, read under a lock on them so that two concurrent demotions cannot
/// both see "there is another owner" and leave the tenant with none.
pub async fn lock_owner_count(
    conn: &mut PgConnection,
    tenant_id: Uuid,
) -> Result<i64, sqlx::Error> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM users WHERE tenant_id = $1 AND role = 'owner' FOR UPDATE",
    )
    .bind(tenant_id)
    .fetch_all(conn)
    .await?;
    Ok(ids.len() as i64)
}
