//! `rtsps://`: RTSP over TLS, for a client (retina 0.4) that only speaks plain TCP.
//!
//! retina opens its own `TcpStream` to the URL's host and has no hook for another transport.
//! So for each session the agent makes the TLS connection itself (rustls, certificate checked
//! against the system's roots plus an optional `tls_ca_file`, server name from the URL) and
//! relays it to a loopback listener that exists for exactly one connection: retina is handed
//! `rtsp://127.0.0.1:PORT/path` and talks RTSP through the relay, RTP interleaved.
//!
//! - The listener is bound to 127.0.0.1 on a port the kernel picks, accepts one connection and
//!   is closed at once. A local process that raced retina to it would only get what it could
//!   get by connecting to the camera itself, never the camera's credentials (they travel in
//!   retina's requests, which would then fail to connect).
//! - RTSP messages carry the loopback URL, and the camera sees requests for
//!   `rtsp://127.0.0.1:PORT/path`. Servers look at the path (and Digest authentication hashes
//!   whatever URI the client sent), so this works with gst-rtsp-server and the cameras we know;
//!   the `Content-Base` the camera answers with is used for SETUP as usual.
//! - Only the interleaved (TCP) transport: with UDP the media would bypass TLS, and retina
//!   would send it to the relay's address. The configuration refuses `transport = "udp"`.
//! - The relay costs one more wake-up and a copy per burst, plus the decryption. The relay
//!   task ends with the session (it is aborted when [`Relay`] is dropped).

use rustls::{
    ClientConfig, DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};
use std::{
    path::{Path, PathBuf},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_rustls::TlsConnector;
use url::Url;

/// How the camera's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM certificates trusted in addition to the system's roots (a private CA or the camera's
    /// own self-signed certificate).
    pub ca_file: Option<PathBuf>,
    /// `false`: accept any certificate (the connection is encrypted but not authenticated).
    pub verify: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            ca_file: None,
            verify: true,
        }
    }
}

/// The default port of `rtsps://` (RFC 7826, section 19.3).
pub const DEFAULT_PORT: u16 = 322;

/// The certificates of a PEM file, or one sentence saying why there are none. The configuration
/// check uses it too, so that a bad `tls_ca_file` is reported before the agent runs.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("tls_ca_file \"{shown}\": {}", pem_error(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls_ca_file \"{shown}\": {}", pem_error(&e)))?;
    if certs.is_empty() {
        return Err(format!(
            "tls_ca_file \"{shown}\": no PEM certificate (-----BEGIN CERTIFICATE-----) in it"
        ));
    }
    Ok(certs)
}

fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not a valid PEM file ({other:?})"),
    }
}

/// The rustls client configuration of one camera.
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .dangerous();
    let config = if options.verify {
        let extra = match &options.ca_file {
            Some(path) => load_ca_file(path)?,
            None => Vec::new(),
        };
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
            .map_err(|e| format!("TLS set-up: cannot load the trusted certificates: {e}"))?;
        builder.with_custom_certificate_verifier(Arc::new(verifier))
    } else {
        builder.with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    };
    Ok(Arc::new(config.with_no_client_auth()))
}

/// Why [`Relay::start`] failed.
#[derive(Debug)]
pub struct RelayError {
    pub message: String,
    /// The camera's certificate was refused: a configuration matter (`tls_ca_file`,
    /// `tls_verify`), reported as `error` rather than `offline`.
    pub certificate: bool,
}

impl RelayError {
    fn network(message: String) -> Self {
        Self {
            message,
            certificate: false,
        }
    }
}

/// A TLS connection to the camera relayed to a one-time loopback listener. Dropping it ends
/// the relay.
#[derive(Debug)]
pub struct Relay {
    port: u16,
    task: JoinHandle<()>,
    /// Why the relay ended, if the TLS side failed (retina only sees the loopback close).
    error: Arc<Mutex<Option<String>>>,
}

impl Relay {
    /// Connects to the host and port of `url` (an `rtsps://` URL without credentials),
    /// completes the TLS handshake and starts relaying. The caller bounds it with a timeout.
    pub async fn start(url: &Url, config: Arc<ClientConfig>) -> Result<Self, RelayError> {
        let host = url.host_str().unwrap_or_default();
        let port = url.port().unwrap_or(DEFAULT_PORT);
        // `host_str` keeps IPv6 brackets; the server name and the socket address want none.
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let server_name = ServerName::try_from(bare.clone()).map_err(|_| {
            RelayError::network(format!("TLS: \"{host}\" is not a valid server name"))
        })?;
        let tcp = TcpStream::connect((bare.as_str(), port))
            .await
            .map_err(|e| RelayError::network(format!("cannot connect to {host}:{port}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let tls = TlsConnector::from(config)
            .connect(server_name, tcp)
            .await
            .map_err(|e| {
                let certificate = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref())
                    .is_some_and(|tls: &rustls::Error| {
                        matches!(tls, rustls::Error::InvalidCertificate(_))
                    });
                RelayError {
                    message: format!("TLS handshake with {host}:{port} failed: {e}"),
                    certificate,
                }
            })?;
        let local = |e: std::io::Error| {
            RelayError::network(format!("cannot open the local TLS relay: {e}"))
        };
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(local)?;
        let port = listener.local_addr().map_err(local)?.port();
        let error = Arc::new(Mutex::new(None));
        let task = tokio::spawn(relay(listener, tls, error.clone()));
        Ok(Self { port, task, error })
    }

    /// `url` with the scheme, host and port of the relay: what retina connects to.
    pub fn local_url(&self, url: &Url) -> Url {
        loopback_url(self.port, url)
    }

    /// Why the TLS side of the relay failed, if it did.
    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn loopback_url(port: u16, url: &Url) -> Url {
    let mut local = format!("rtsp://127.0.0.1:{port}{}", url.path());
    if let Some(query) = url.query() {
        local.push('?');
        local.push_str(query);
    }
    // Parsing our own well-formed string cannot fail; keep the original if it ever did.
    Url::parse(&local).unwrap_or_else(|_| url.clone())
}

async fn relay(
    listener: TcpListener,
    tls: tokio_rustls::client::TlsStream<TcpStream>,
    error: Arc<Mutex<Option<String>>>,
) {
    let Ok((mut local, _)) = listener.accept().await else {
        return;
    };
    // One connection only: nobody else gets to use this tunnel.
    drop(listener);
    let _ = local.set_nodelay(true);
    // Only the camera's side is recorded: retina closing the loopback side (for example with
    // a reset after it gave up on the session) is not a TLS failure and must not replace the
    // reason retina reported.
    let mut tls = CameraSide { inner: tls, error };
    let _ = tokio::io::copy_bidirectional(&mut local, &mut tls).await;
}

/// The TLS stream to the camera, keeping its first I/O error for [`Relay::error`].
struct CameraSide {
    inner: tokio_rustls::client::TlsStream<TcpStream>,
    error: Arc<Mutex<Option<String>>>,
}

impl CameraSide {
    fn record<T>(&self, result: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if let Poll::Ready(Err(e)) = &result
            && let Ok(mut slot) = self.error.lock()
            && slot.is_none()
        {
            // rustls appends a link to its manual to some errors; the sentence is enough here.
            let text = e.to_string();
            let text = text.split(": https://").next().unwrap_or_default();
            *slot = Some(format!("TLS connection failed: {text}"));
        }
        result
    }
}

impl AsyncRead for CameraSide {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.record(result)
    }
}

impl AsyncWrite for CameraSide {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.record(result)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.record(result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.record(result)
    }
}

/// `tls_verify = false`: the handshake signatures are still checked (so the connection is
/// really encrypted to whoever holds the key), but any certificate is accepted.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_url_keeps_path_and_query() {
        let url = Url::parse("rtsps://cam.example:3322/live/main?channel=2")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            loopback_url(40123, &url).as_str(),
            "rtsp://127.0.0.1:40123/live/main?channel=2"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("sw-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap_or_else(|e| panic!("{e}"));
        let err = load_ca_file(&empty).err().unwrap_or_default();
        assert!(err.contains("no PEM certificate"), "{err}");
        let missing = dir.join("missing.pem");
        let err = load_ca_file(&missing).err().unwrap_or_default();
        assert!(err.contains("missing.pem"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    }
}
