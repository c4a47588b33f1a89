//! Where e-mails go: SMTP through lettre (pooled; STARTTLS or TLS from the URL), or, outside
//! production without SMTP configured, a development mailbox folder of `.eml` files.

use anyhow::Context;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;

#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Development only: each message becomes a file in this folder.
    Folder(PathBuf),
    /// Production without SMTP: deliveries fail (and are retried, and visible) until it is
    /// configured.
    Unconfigured,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Smtp(_) => f.write_str("Mailer::Smtp"),
            Self::Folder(p) => write!(f, "Mailer::Folder({})", p.display()),
            Self::Unconfigured => f.write_str("Mailer::Unconfigured"),
        }
    }
}

impl Mailer {
    /// `smtp://host:port` (plain; `?tls=required` for STARTTLS) or `smtps://user:pass@host:465`.
    pub fn smtp(url: &str) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .context("STREAMWATCH__SMTP__URL is not a valid SMTP URL")?
            .timeout(Some(std::time::Duration::from_secs(20)))
            // As many pooled connections as the sender sends e-mails at once.
            .pool_config(
                lettre::transport::smtp::PoolConfig::new()
                    .max_size(super::sender::EMAIL_CONCURRENCY as u32),
            )
            .build();
        Ok(Self::Smtp(transport))
    }

    pub async fn send(&self, message: Message) -> anyhow::Result<()> {
        match self {
            Self::Smtp(transport) => {
                transport.send(message).await.context("SMTP")?;
                Ok(())
            }
            Self::Folder(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .with_context(|| format!("creating mailbox folder {}", dir.display()))?;
                let id = message
                    .headers()
                    .get_raw("Message-ID")
                    .unwrap_or_default()
                    .trim_matches(['<', '>'])
                    .replace(
                        |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-',
                        "_",
                    );
                let name = format!(
                    "{}-{id}.eml",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f")
                );
                tokio::fs::write(dir.join(name), message.formatted())
                    .await
                    .context("writing to the mailbox folder")?;
                Ok(())
            }
            Self::Unconfigured => anyhow::bail!("SMTP is not configured (STREAMWATCH__SMTP__URL)"),
        }
    }
}
