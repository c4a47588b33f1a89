//! Creating tenants and users: shared by the admin API, the users API and the CLI, so that all
//! three hash the same way and map the same conflicts.

use crate::{
    auth::password,
    db,
    domain::{DisplayName, EmailAddress, Password, Role, TimeZoneName},
    store::{
        tenants::{self, Tenant},
        users::{self, User},
    },
};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("this e-mail address already has an account")]
    EmailTaken,
    #[error("no such tenant")]
    NoSuchTenant,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

fn email_taken(e: sqlx::Error) -> AccountError {
    if db::violated_constraint(&e).is_some_and(|c| users::EMAIL_TAKEN.contains(&c)) {
        AccountError::EmailTaken
    } else {
        AccountError::Database(e)
    }
}

/// Creates a tenant and its first owner in one transaction.
pub async fn create_tenant(
    pool: &PgPool,
    name: &DisplayName,
    timezone: &TimeZoneName,
    owner_email: &EmailAddress,
    owner_password: &Password,
) -> Result<(Tenant, User), AccountError> {
    // Hash before the transaction: argon2 takes a while and must not hold a connection.
    let hash = password::hash(owner_password.expose().to_owned()).await?;
    let mut tx = pool.begin().await?;
    let tenant = tenants::insert(&mut tx, name.as_str(), timezone.as_str()).await?;
    let owner = users::insert(&mut tx, tenant.id, owner_email, &hash, Role::Owner)
        .await
        .map_err(email_taken)?;
    tx.commit().await?;
    tracing::info!(tenant_id = %tenant.id, owner = %owner_email.masked(), "tenant created");
    Ok((tenant, owner))
}

/// Adds a user to an existing tenant.
pub async fn create_user(
    pool: &PgPool,
    tenant_id: Uuid,
    email: &EmailAddress,
    password: &Password,
    role: Role,
) -> Result<User, AccountError> {
    let hash = password::hash(password.expose().to_owned()).await?;
    let mut tx = db::begin_tenant(pool, tenant_id).await?;
    if tenants::get(&mut tx, tenant_id).await?.is_none() {
        return Err(AccountError::NoSuchTenant);
    }
    let user = users::insert(&mut tx, tenant_id, email, &hash, role)
        .await
        .map_err(email_taken)?;
    tx.commit().await?;
    Ok(user)
}
