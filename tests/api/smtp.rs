//! A real SMTP server for tests: `aiosmtpd` (Debian package `python3-aiosmtpd`) in its own
//! process, writing every message it accepts into a Maildir under a unique temporary folder.
//! Tests read what arrived with [`SmtpServer::messages`]: recipients, decoded subject, headers,
//! and both parts of the multipart e-mail.
//!
//! The server can be stopped and started again on the same port (an SMTP outage). The process
//! is killed and the folder removed when the guard is dropped. Every wait is a bounded number
//! of polls.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use crate::helpers::free_port;
use mailparse::MailHeaderMap;

/// Debian's Python: the `python3` on PATH may be another one without the package.
const PYTHON: &str = "/usr/bin/python3";
const POLL: Duration = Duration::from_millis(25);
/// 400 × 25 ms: a generous bound for a Python start on a loaded 2-core machine.
const MAX_POLLS: u32 = 400;
/// New ports to try when the one picked was taken meanwhile by a parallel test.
const START_ATTEMPTS: u32 = 5;

/// One message as it arrived.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The `To` header.
    pub to: String,
    /// The envelope recipient (aiosmtpd's `X-RcptTo`).
    pub rcpt_to: String,
    pub from: String,
    /// Decoded (RFC 2047) subject.
    pub subject: String,
    pub message_id: String,
    pub date: Option<String>,
    pub list_unsubscribe: Option<String>,
    pub list_unsubscribe_post: Option<String>,
    /// The top-level Content-Type, e.g. `multipart/alternative`.
    pub content_type: String,
    /// The `text/plain` part, decoded.
    pub text: String,
    /// The `text/html` part, decoded.
    pub html: String,
}

impl Mail {
    /// The path and query of the `List-Unsubscribe` URL (`/unsubscribe?token=...`), to be sent
    /// to whichever address the server under test listens on.
    #[track_caller]
    pub fn unsubscribe_path(&self) -> String {
        let header = self
            .list_unsubscribe
            .as_deref()
            .expect("a List-Unsubscribe header");
        let url = header.trim().trim_start_matches('<').trim_end_matches('>');
        let url = reqwest::Url::parse(url).expect("List-Unsubscribe holds a URL");
        format!("{}?{}", url.path(), url.query().unwrap_or_default())
    }
}

/// A running (or stopped) aiosmtpd with its Maildir.
pub struct SmtpServer {
    pub port: u16,
    root: PathBuf,
    child: Option<Child>,
}

impl SmtpServer {
    /// Starts aiosmtpd on a free port of 127.0.0.1 and waits until it accepts connections.
    pub async fn start() -> Self {
        check_python();
        let root = std::env::temp_dir().join(format!("streamwatch-smtp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&root).unwrap();
        let mut server = Self {
            port: 0,
            root,
            child: None,
        };
        let mut errors = Vec::new();
        for _ in 0..START_ATTEMPTS {
            server.port = free_port();
            match server.spawn_and_wait().await {
                Ok(()) => return server,
                Err(e) => errors.push(e),
            }
        }
        panic!("aiosmtpd did not start: {errors:?}");
    }

    /// `smtp://127.0.0.1:PORT`, for `STREAMWATCH__SMTP__URL`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn maildir(&self) -> PathBuf {
        self.root.join("Maildir")
    }

    /// Kills the server (an SMTP outage). The Maildir stays.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Bounded: until the port refuses connections.
        for _ in 0..MAX_POLLS {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("aiosmtpd still accepts on port {} after a kill", self.port);
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel but nothing
    /// answers, like an SMTP server that hangs.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("a running server").id();
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Starts the server again on the same port, with the same Maildir.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again on a running server");
        if let Err(e) = self.spawn_and_wait().await {
            panic!("aiosmtpd did not start again on port {}: {e}", self.port);
        }
    }

    async fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(self.root.join("aiosmtpd.log")).unwrap();
        let child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.maildir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {PYTHON}: {e}"))?;
        self.child = Some(child);
        for _ in 0..MAX_POLLS {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                let log =
                    std::fs::read_to_string(self.root.join("aiosmtpd.log")).unwrap_or_default();
                return Err(format!("exited with {status}: {log}"));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(format!("port {} never accepted connections", self.port))
    }

    /// Every message in the Maildir (`new/` and `cur/`), oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let mut files: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(self.maildir().join(sub)).ok())
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort_by_key(|p| arrival(p));
        files.iter().map(|p| parse(p)).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused server must go on to die.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(child.id().to_string())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn check_python() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = CHECKED.get_or_init(|| {
        let out = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .output()
            .map_err(|e| format!("cannot run {PYTHON}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(e) = result {
        panic!(
            "these tests need a real SMTP server: {PYTHON} cannot import aiosmtpd. Install the Debian \
             package: apt-get install -y --no-install-recommends python3-aiosmtpd\n{e}"
        );
    }
}

/// Python's Maildir names files `SECONDS.MMICROS` + `P<pid>Q<counter>...`, without zero
/// padding: order by the numbers, not the text.
fn arrival(path: &Path) -> (u64, u64, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let number = |s: &str| s.parse::<u64>().unwrap_or(u64::MAX);
    let (seconds, rest) = name.split_once('.').unwrap_or((&name, ""));
    let micros = rest
        .strip_prefix('M')
        .and_then(|r| r.split('P').next())
        .unwrap_or("");
    (number(seconds), number(micros), name.clone())
}

#[track_caller]
fn parse(path: &Path) -> Mail {
    let bytes = std::fs::read(path).unwrap();
    let mail = mailparse::parse_mail(&bytes)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
    let header = |name: &str| mail.headers.get_first_value(name);
    let part = |mime: &str| {
        mail.parts()
            .find(|p| p.ctype.mimetype == mime)
            .map(|p| p.get_body().unwrap())
            .unwrap_or_default()
    };
    Mail {
        to: header("To").unwrap_or_default(),
        rcpt_to: header("X-RcptTo").unwrap_or_default(),
        from: header("From").unwrap_or_default(),
        subject: header("Subject").unwrap_or_default(),
        message_id: header("Message-ID").unwrap_or_default().trim().to_owned(),
        date: header("Date"),
        list_unsubscribe: header("List-Unsubscribe"),
        list_unsubscribe_post: header("List-Unsubscribe-Post"),
        content_type: mail.ctype.mimetype.clone(),
        text: part("text/plain"),
        html: part("text/html"),
    }
}
