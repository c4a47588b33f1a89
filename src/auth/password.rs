//! argon2id password hashing. Hashing is deliberately slow (and takes 19 MiB each), so it runs
//! on the blocking pool instead of stalling the async workers, and at most one hash per CPU
//! runs at a time: a burst of logins queues here instead of starving ingest of CPU and the
//! machine of memory.

use anyhow::Context;
use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use std::sync::OnceLock;
use tokio::sync::{Semaphore, SemaphorePermit};

/// One permit per CPU. A process-wide bound on purpose: the CPUs it protects are the
/// process's, whatever part of the application asks.
async fn argon2_permit() -> anyhow::Result<SemaphorePermit<'static>> {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS
        .get_or_init(|| {
            Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
        })
        .acquire()
        .await
        .context("argon2 permits")
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$...`) with a random salt.
pub async fn hash(password: String) -> anyhow::Result<String> {
    let _permit = argon2_permit().await?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
    .await
    .context("password hashing task")?
}

/// Checks `password` against a stored PHC string. With `None` (no such account) it still
/// spends the same time on a dummy hash, so response times do not reveal which e-mail
/// addresses have accounts.
pub async fn verify(password: String, stored: Option<String>) -> anyhow::Result<bool> {
    let _permit = argon2_permit().await?;
    tokio::task::spawn_blocking(move || {
        let phc = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let parsed = PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .context("password verification task")?
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        Argon2::default()
            .hash_password(b"streamwatch-timing-equaliser")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() {
        let h = hash("correct horse battery".to_owned()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(
            verify("correct horse battery".to_owned(), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify("wrong horse battery".to_owned(), Some(h))
                .await
                .unwrap()
        );
        assert!(!verify("anything".to_owned(), None).await.unwrap());
    }
}
