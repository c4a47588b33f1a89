//! A minimal HTTP/1.1 client for the ingest load: one keep-alive connection per simulated agent,
//! the request written as one buffer, the answer read by `Content-Length`.
//!
//! Why not reqwest, which the rest of the load generator uses: in the live shape (one heartbeat
//! per request) reqwest's per-request work (its pool, header maps, body streams, timeouts) made
//! the generator take a seventh of the machine, CPU that the server and PostgreSQL under test
//! share with it. This does only what the measurement needs: plain `http://`, `POST`, a body
//! with `Content-Length`, and answers with `Content-Length` (axum's `Json` and problem answers
//! always have one). Anything else (chunked, a closed connection, a bad status line) is an
//! error: the connection is dropped and the next request opens a new one, as a real agent does.

use anyhow::{Context as _, bail};
use std::time::Duration;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

/// The parts of an answer the load generator looks at.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: Vec<u8>,
}

/// One agent's connection to `host:port` (opened on first use, reopened after an error).
pub struct Conn {
    addr: String,
    head: Vec<u8>,
    timeout: Duration,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    /// `url` is the server's base URL (`http://host:port`); `path` the request path; `headers`
    /// the fixed request headers (name, value), sent with every request.
    pub fn new(
        url: &str,
        path: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("the raw HTTP client speaks plain http:// only, not {url}");
        };
        let addr = rest.trim_end_matches('/').to_owned();
        if addr.contains('/') {
            bail!("--url must be the server's base URL (http://host:port), not {url}");
        }
        let mut head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("Content-Length: ");
        Ok(Self {
            addr,
            head: head.into_bytes(),
            timeout,
            stream: None,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends `body` and reads the answer, within the timeout. On any error the connection is
    /// closed (the next call opens a new one).
    pub async fn post(&mut self, body: &[u8]) -> anyhow::Result<Answer> {
        match tokio::time::timeout(self.timeout, self.exchange(body)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                bail!("no answer within {:?}", self.timeout)
            }
        }
    }

    async fn exchange(&mut self, body: &[u8]) -> anyhow::Result<Answer> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.addr)
                .await
                .with_context(|| format!("connecting to {}", self.addr))?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
            self.buf.clear();
        }
        let Some(stream) = self.stream.as_mut() else {
            bail!("no connection");
        };
        let mut request = Vec::with_capacity(self.head.len() + 16 + body.len());
        request.extend_from_slice(&self.head);
        request.extend_from_slice(body.len().to_string().as_bytes());
        request.extend_from_slice(b"\r\n\r\n");
        request.extend_from_slice(body);
        stream.write_all(&request).await?;

        // The head, then the body by Content-Length.
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            read_more(stream, &mut self.buf).await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).context("a non-UTF-8 answer head")?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .context("no status line")?;
        let (mut length, mut retry_after, mut close) = (None, None, false);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("retry-after") {
                retry_after = value.parse().ok();
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                bail!("a {value} answer (this client reads Content-Length only)");
            }
        }
        let length = length.context("an answer without Content-Length")?;
        while self.buf.len() < head_end + length {
            read_more(stream, &mut self.buf).await?;
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        if close {
            self.stream = None;
        }
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        bail!("the server closed the connection");
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers two requests on one connection, the second in two pieces.
    #[tokio::test]
    async fn answers_are_read_by_content_length_on_one_kept_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut chunk = [0u8; 4096];
            for answer in [
                &b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"[..],
                &b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 3\r\ncontent-length: 4\r\n\r\n"[..],
            ] {
                loop {
                    let n = s.read(&mut chunk).await.unwrap();
                    seen.extend_from_slice(&chunk[..n]);
                    if seen.ends_with(b"{}") {
                        break;
                    }
                }
                s.write_all(answer).await.unwrap();
            }
            s.write_all(b"slow").await.unwrap();
            String::from_utf8(seen).unwrap()
        });
        let mut conn = Conn::new(
            &format!("http://{addr}"),
            "/in",
            &[("Authorization", "Bearer t")],
            Duration::from_secs(5),
        )
        .unwrap();
        let first = conn.post(b"{}").await.unwrap();
        assert_eq!((first.status, first.body.as_slice()), (200, &b"ok"[..]));
        let second = conn.post(b"{}").await.unwrap();
        assert_eq!(
            (second.status, second.retry_after, second.body.as_slice()),
            (429, Some(3), &b"slow"[..])
        );
        let seen = server.await.unwrap();
        assert!(
            seen.starts_with(&format!(
                "POST /in HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer t\r\nContent-Length: 2\r\n\r\n{{}}"
            )),
            "{seen}"
        );
    }
}
