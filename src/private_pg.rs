//! A private PostgreSQL for `streamwatch demo`: a cluster of its own in a data folder, started
//! from the locally installed server binaries and stopped on exit. Nothing here is for
//! production.
//!
//! PostgreSQL refuses to run as root; as root the cluster runs as the `postgres` user (the
//! Debian packages create it), and its folder must be reachable by that user. When the chosen
//! folder is not (a home directory is often mode 700), the cluster lives under /var/tmp instead
//! and the demo says so.

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// A running private cluster. Call [`PrivatePostgres::stop`] on exit.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    pub url: String,
}

/// Where the server binaries are: the newest /usr/lib/postgresql/*/bin, else `pg_config
/// --bindir`, else the directory of `initdb` on PATH.
fn find_binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if bin.join("initdb").exists() {
            return Some(bin);
        }
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the cluster's owner.
fn owner_command(program: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"])
            .arg(program)
            .current_dir("/");
        c
    } else {
        Command::new(program)
    }
}

fn postgres_can_reach(dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl PrivatePostgres {
    /// Starts (creating on first use) the cluster under `folder`; a second run reuses it.
    pub fn start(folder: &Path) -> anyhow::Result<Self> {
        let Some(bin) = find_binaries() else {
            bail!(
                "no PostgreSQL server binaries found (initdb, pg_ctl). Install them with \
                 `sudo apt-get install postgresql` (Debian/Ubuntu), or set STREAMWATCH__DATABASE__URL to a database you have"
            );
        };
        let as_postgres = is_root();
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let folder = folder.canonicalize()?;
        let mut base = folder.join("pg");
        if as_postgres && !postgres_can_reach(&folder) {
            let hash = hex::encode(&Sha256::digest(folder.to_string_lossy().as_bytes())[..6]);
            base = PathBuf::from(format!("/var/tmp/streamwatch-demo-pg-{hash}"));
            eprintln!(
                "demo: the 'postgres' user cannot reach {}; the private PostgreSQL lives in {}",
                folder.display(),
                base.display()
            );
        }
        let data = base.join("data");
        let sock = base.join("sock");
        std::fs::create_dir_all(&sock)?;
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&base)
                .status()?
                .success();
            anyhow::ensure!(ok, "could not give {} to the postgres user", base.display());
        }
        if !data.join("PG_VERSION").exists() {
            eprintln!(
                "demo: creating a private PostgreSQL cluster in {}",
                data.display()
            );
            let out = owner_command(&bin.join("initdb"), as_postgres)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"])
                .arg(&data)
                .stdout(Stdio::null())
                .output()
                .context("running initdb")?;
            anyhow::ensure!(
                out.status.success(),
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let port_file = base.join("port");
        // Stopped cleanly or not, start it on a port we know is free now.
        let _ = owner_command(&bin.join("pg_ctl"), as_postgres)
            .args(["-D"])
            .arg(&data)
            .args(["-m", "fast", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let port = free_port()?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            sock.display()
        );
        let out = owner_command(&bin.join("pg_ctl"), as_postgres)
            .args(["-D"])
            .arg(&data)
            .args(["-l"])
            .arg(base.join("log"))
            .args(["-o", &options, "-w", "start"])
            .stdout(Stdio::null())
            .output()
            .context("running pg_ctl start")?;
        anyhow::ensure!(
            out.status.success(),
            "PostgreSQL did not start (see {}): {}",
            base.join("log").display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        std::fs::write(&port_file, port.to_string())?;
        Ok(Self {
            bin,
            data,
            as_postgres,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        })
    }

    /// Stops the cluster (fast shutdown).
    pub fn stop(&self) {
        let status = owner_command(&self.bin.join("pg_ctl"), self.as_postgres)
            .args(["-D"])
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!(
                "demo: PostgreSQL in {} may still be running",
                self.data.display()
            );
        }
    }
}
