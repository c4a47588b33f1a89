//! A real HTTP receiver for alert-channel tests: `tests/receiver.py` (Python standard library
//! only) as a child process on a free loopback port. It records every request and answers as
//! scripted per path, and it checks webhook signatures with Python's own `hmac`, so a test of
//! our signing does not trust our code to check itself.
//!
//! ```ignore
//! let rx = Receiver::start().await;
//! rx.script("/hook", json!([{"status": 500}, {"status": 200}])).await;
//! // ... point a channel at rx.url("/hook") (with channels.allow_private_targets) ...
//! let seen = rx.requests().await;
//! ```
//!
//! The process is killed when the `Receiver` is dropped.

use serde::Deserialize;
use serde_json::{Value, json};
use std::{collections::HashMap, process::Stdio, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// Standard library only, so any Python 3 will do.
const PYTHON: &str = "python3";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/receiver.py");

pub struct Receiver {
    pub port: u16,
    http: reqwest::Client,
    /// Held for `kill_on_drop`.
    _child: Child,
}

/// One request as the receiver saw it.
#[derive(Debug, Clone, Deserialize)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Lower-case names; repeated headers joined with ", ".
    pub headers: HashMap<String, String>,
    pub body: String,
    /// The body parsed as JSON (`Null` if it is not JSON).
    pub json: Value,
    /// Only from [`Receiver::requests_signed`]: whether `Streamwatch-Signature` verified.
    pub signature_valid: Option<bool>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

impl Receiver {
    pub async fn start() -> Self {
        let mut child = Command::new(PYTHON)
            .arg(SCRIPT)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {PYTHON} {SCRIPT}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("the receiver prints its port")
        .expect("read the receiver's port");
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the receiver printed {line:?}, not a port"));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Self {
            port,
            http,
            _child: child,
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers requests to `path` with `responses` in order, the last one repeating. Each is
    /// `{"status", "headers", "body"}` or `{"hang_seconds"}` (see `tests/receiver.py`).
    pub async fn script(&self, path: &str, responses: Value) {
        let r = self
            .http
            .post(self.url("/_script"))
            .json(&json!({"path": path, "responses": responses}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "scripting the receiver: {r:?}");
    }

    /// Every request recorded so far, oldest first.
    pub async fn requests(&self) -> Vec<Recorded> {
        self.fetch(&self.url("/_requests")).await
    }

    /// Like [`requests`](Self::requests), each with `signature_valid` checked against
    /// `secret` by the receiver.
    pub async fn requests_signed(&self, secret: &str) -> Vec<Recorded> {
        let mut url = reqwest::Url::parse(&self.url("/_requests")).unwrap();
        url.query_pairs_mut().append_pair("secret", secret);
        self.fetch(url.as_str()).await
    }

    /// Forgets the requests and scripts.
    pub async fn reset(&self) {
        self.http
            .post(self.url("/_reset"))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    async fn fetch(&self, url: &str) -> Vec<Recorded> {
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}
