//! The `streamwatch` command line: `serve`, `migrate`, `tenant create`, `user create`,
//! `openapi`.
//!
//! Mistakes get one clear line on stderr and a non-zero exit. Passwords are never taken as
//! arguments (they would show in `ps` and shell history): they come from the environment
//! variable `STREAMWATCH_PASSWORD` or from the first line of standard input.

use crate::{
    accounts::{self, AccountError},
    config::Settings,
    db,
    domain::{DisplayName, EmailAddress, Password, Role, TimeZoneName},
    startup::{self, Application},
    telemetry,
};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::{io::BufRead, path::PathBuf};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "streamwatch",
    version,
    about = "Control plane for monitoring video-stream sites"
)]
pub struct Cli {
    /// A TOML configuration file; `STREAMWATCH__SECTION__KEY` variables override it.
    #[arg(long, global = true, env = "STREAMWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (HTTP API and scheduler) until SIGINT or SIGTERM.
    Serve {
        /// Do not apply pending database migrations at start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The one-command first run: a private PostgreSQL (unless STREAMWATCH__DATABASE__URL is
    /// set), a demo tenant, the server and five simulated sites. Ctrl-C stops everything.
    Demo {
        /// Folder for the private PostgreSQL, the mailbox and the agents' state.
        #[arg(long, default_value = ".streamwatch-demo")]
        dir: PathBuf,
        /// Listen address of the server.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
    },
    /// Print the OpenAPI document (YAML).
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and its first owner. The owner's password is read from
    /// STREAMWATCH_PASSWORD or standard input.
    Create {
        #[arg(long)]
        name: String,
        /// IANA time zone, e.g. Europe/Berlin.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        #[arg(long)]
        owner_email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user to a tenant. The password is read from STREAMWATCH_PASSWORD or standard input.
    Create {
        #[arg(long)]
        tenant: Uuid,
        #[arg(long)]
        email: String,
        /// owner, admin or viewer.
        #[arg(long, default_value = "viewer")]
        role: String,
    },
}

/// Runs the parsed command. Errors are printed by `main` as one line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init_tracing(&settings.log);
    match cli.command {
        Command::Serve { no_migrate } => {
            let mut settings = settings;
            if no_migrate {
                settings.database.migrate_on_start = false;
            }
            let app = Application::build(settings).await?;
            app.run_until(startup::shutdown_signal()).await
        }
        Command::Migrate => {
            let pool = db::connect(&settings).await?;
            db::migrate(&pool).await?;
            println_out("migrations applied");
            Ok(())
        }
        Command::Tenant {
            command:
                TenantCommand::Create {
                    name,
                    timezone,
                    owner_email,
                },
        } => {
            let name = DisplayName::parse(&name).map_err(|e| arg_error("--name", &e))?;
            let timezone =
                TimeZoneName::parse(&timezone).map_err(|e| arg_error("--timezone", &e))?;
            let email =
                EmailAddress::parse(&owner_email).map_err(|e| arg_error("--owner-email", &e))?;
            let password = read_password()?;
            let pool = db::connect(&settings).await?;
            let (tenant, owner) =
                accounts::create_tenant(&pool, &name, &timezone, &email, &password)
                    .await
                    .map_err(account_error)?;
            println_out(&serde_json::to_string_pretty(
                &serde_json::json!({ "tenant": tenant, "owner": owner }),
            )?);
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    tenant,
                    email,
                    role,
                },
        } => {
            let email = EmailAddress::parse(&email).map_err(|e| arg_error("--email", &e))?;
            let role = Role::parse(&role).map_err(|e| arg_error("--role", &e))?;
            let password = read_password()?;
            let pool = db::connect(&settings).await?;
            let user = accounts::create_user(&pool, tenant, &email, &password, role)
                .await
                .map_err(account_error)?;
            println_out(&serde_json::to_string_pretty(&user)?);
            Ok(())
        }
        Command::Demo { dir, addr } => {
            crate::demo::run(settings, crate::demo::DemoOptions { folder: dir, addr }).await
        }
        Command::Openapi => {
            println_out(&crate::http::openapi::yaml()?);
            Ok(())
        }
    }
}

fn arg_error(flag: &str, message: &str) -> anyhow::Error {
    anyhow::anyhow!("{flag}: {message}")
}

fn account_error(e: AccountError) -> anyhow::Error {
    match e {
        AccountError::NoSuchTenant => anyhow::anyhow!("--tenant: no such tenant"),
        other => anyhow::Error::new(other),
    }
}

/// The new password, from `STREAMWATCH_PASSWORD` or the first line of standard input.
fn read_password() -> anyhow::Result<Password> {
    let raw = match std::env::var("STREAMWATCH_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            eprintln!("password (10 characters or more), then Enter:");
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    Password::parse(&raw).map_err(|e| anyhow::anyhow!("password: {e}"))
}

#[expect(clippy::print_stdout, reason = "the CLI's output")]
fn println_out(s: &str) {
    println!("{s}");
}
