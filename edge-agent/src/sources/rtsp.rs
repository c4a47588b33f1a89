//! `rtsp://` sources through the `retina` crate: RTP is received and measured; one keyframe
//! per snapshot interval is decoded for the picture health.
//!
//! One task per camera runs [`run`]: DESCRIBE, SETUP of the first video stream, PLAY, then it
//! reads RTP packets until the session fails, stalls or the agent shuts down. On a failure it
//! records `offline` with the reason, waits with exponential backoff (1 s doubling to 30 s, with
//! jitter: [`crate::backoff`]), counts a restart and connects again.
//!
//! # What is measured, and how
//!
//! The session is read packet by packet (retina's `Session<Playing>` stream), not through its
//! frame demuxer: that gives exact packet counts for the loss percentage and per-packet arrival
//! times for the jitter, and nothing is depacketized. Frames are delimited as RTP does it: a
//! frame is the run of packets sharing one RTP timestamp, closed by the marker bit (RFC 6184 and
//! friends) or, if the marker packet was lost, by the first packet of the next timestamp. So the
//! source works for any video codec retina can set up, H.264, H.265 or MJPEG alike.
//!
//! - frames, bytes (RTP payload bytes), fps and bitrate: `on_rtp_frames` once per frame, the
//!   sliding window lives in [`CameraMetrics`];
//! - RTP loss: retina's per-packet `loss()` (sequence-number gaps); expected = received + lost;
//! - jitter: the RFC 3550 (section 6.4.1) interarrival jitter estimate from RTP timestamps
//!   against arrival times;
//! - declared fps: the SDP's `a=framerate`, if any.
//!
//! # Snapshots
//!
//! When the camera's sampler wants a picture ([`KeyframeDecoder::wants_keyframe`]), the
//! packets of the same session also go through a small depacketizer
//! ([`super::keyframe`]) until a complete keyframe has arrived, which is then decoded off this
//! loop ([`crate::decode`]: H.264 in-process, H.265 through ffmpeg). No second session is
//! opened to the camera. The rest of the time each packet costs one atomic load and one store
//! more.
//!
//! # Stalls
//!
//! A frozen camera (or a `kill -STOP`ped server) keeps the TCP connection open and sends nothing.
//! While connected the status stays `running`; the health code derives `starving` from "running
//! and no frame within 3 s". After `stall_timeout` without a frame the session is torn down,
//! `offline` is recorded ("no frames for 3 s (stalled)") and the source reconnects. DESCRIBE,
//! SETUP and PLAY each have `connect_timeout`, since a frozen server accepts the TCP connection
//! (the kernel does) but never answers.
//!
//! # Credentials and TLS
//!
//! `rtsp://user:password@host/...` credentials are handed to retina (which answers Basic and
//! Digest challenges) and removed from the URL itself, so they reach neither retina's error text
//! nor our logs. retina 0.4 has no TLS: for `rtsps://` the agent makes the TLS connection itself
//! and relays it to retina over loopback ([`super::tls`]).

use super::keyframe::{KeyframeAssembler, RtpCodec};
use super::tls::{self, Relay, TlsOptions};
use crate::{
    backoff::Backoff, decode::KeyframeDecoder, metrics::CameraMetrics, snapshots::PictureSlot,
};
use chrono::Utc;
use futures::StreamExt;
use retina::client::{
    Credentials, PacketItem, PlayOptions, Session, SessionOptions, SetupOptions,
    TcpTransportOptions, UdpTransportOptions,
};
use retina::codec::{ParametersRef, VideoParametersCodec};
use std::{sync::Arc, time::Duration};
use streamwatch_protocol::{CameraStatus, redact_url, redact_urls_in_text};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

/// How RTP travels from the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// Interleaved in the RTSP TCP connection: one connection, no firewall holes, no reordering.
    #[default]
    Tcp,
    /// Separate UDP ports per stream. retina has no reorder buffer, so reordered packets count
    /// as lost: for LANs only.
    Udp,
}

/// Per-camera RTSP settings.
#[derive(Debug, Clone)]
pub struct RtspOptions {
    pub transport: Transport,
    /// Connected but no frame for this long: tear down and reconnect (SPEC: 3 s).
    pub stall_timeout: Duration,
    /// Bound on each of DESCRIBE (including the TCP connect), SETUP and PLAY, and on the TLS
    /// connection of `rtsps://`.
    pub connect_timeout: Duration,
    /// How `rtsps://` checks the camera's certificate (unused for `rtsp://`).
    pub tls: TlsOptions,
}

impl Default for RtspOptions {
    fn default() -> Self {
        Self {
            transport: Transport::Tcp,
            stall_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(10),
            tls: TlsOptions::default(),
        }
    }
}

/// Reconnect delays: 1 s doubling to 30 s, each drawn at random between half and all of it
/// (see [`Backoff`]) so that the cameras behind one failed switch do not reconnect in lockstep.
pub(crate) const RECONNECT_BASE: Duration = Duration::from_secs(1);
pub(crate) const RECONNECT_CAP: Duration = Duration::from_secs(30);

/// Ingests `url` until `shutdown` is cancelled, writing what it measures into `metrics` and
/// handing a decoded keyframe to `pictures` whenever it wants one.
///
/// Never returns before shutdown: failures become `on_failure` + backoff + `on_restart`. A URL
/// that can never work (another scheme, no host, `rtsps://` over UDP, an unreadable
/// `tls_ca_file`) is reported once as `error` and the
/// task then waits for shutdown without retrying.
pub async fn run(
    url: Url,
    options: RtspOptions,
    metrics: CameraMetrics,
    pictures: Arc<PictureSlot>,
    shutdown: CancellationToken,
) {
    // Attached to the few events of a session rather than entered on every poll (one per
    // packet burst).
    let span = tracing::info_span!("rtsp", url = %redact_url(url.as_str()));
    let target = match Target::parse(url, &options) {
        Ok(target) => target,
        Err(message) => {
            tracing::error!(parent: &span, error = %message, "camera URL cannot be used");
            metrics.on_failure(CameraStatus::Error, message);
            shutdown.cancelled().await;
            return;
        }
    };
    if target.tls.is_some() && !options.tls.verify {
        tracing::warn!(
            parent: &span,
            "tls_verify = false: the camera's certificate is not checked (encrypted, but not authenticated)"
        );
    }
    let mut decoder = KeyframeDecoder::new(pictures, span.clone());
    let mut backoff = Backoff::new(RECONNECT_BASE, RECONNECT_CAP);
    loop {
        let mut received_frames = false;
        let mut camera = Camera {
            metrics: &metrics,
            decoder: &mut decoder,
            span: &span,
            received_frames: &mut received_frames,
        };
        let failure = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            failure = ingest(&target, &options, &mut camera) => failure,
        };
        if received_frames {
            // The camera worked: a new outage starts again with the short delay.
            backoff.reset();
        }
        let delay = backoff.fail();
        // retina's messages may quote the URL it requested, query string included.
        let message = redact_urls_in_text(&failure.message);
        tracing::warn!(
            parent: &span,
            error = %message,
            retry_in_ms = delay.as_millis() as u64,
            "camera session ended"
        );
        metrics.on_failure(failure.status, message);
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        metrics.on_restart(Utc::now());
    }
}

/// Why a session ended: the status to report and the operator-facing reason.
#[derive(Debug)]
struct Failure {
    status: CameraStatus,
    message: String,
}

impl Failure {
    fn offline(message: impl Into<String>) -> Self {
        Self {
            status: CameraStatus::Offline,
            message: message.into(),
        }
    }
}

/// What a session writes to: the camera's metrics and decoder, the log span, and whether a
/// frame arrived.
struct Camera<'a> {
    metrics: &'a CameraMetrics,
    decoder: &'a mut KeyframeDecoder,
    span: &'a tracing::Span,
    received_frames: &'a mut bool,
}

/// One session, from the connection until it fails. Sets `received_frames` once a frame
/// arrived.
async fn ingest(target: &Target, options: &RtspOptions, camera: &mut Camera<'_>) -> Failure {
    let Some(tls) = &target.tls else {
        return session(target.url.clone(), target, options, camera).await;
    };
    let bound = options.connect_timeout;
    let relay = match tokio::time::timeout(bound, Relay::start(&target.url, tls.clone())).await {
        Ok(Ok(relay)) => relay,
        Ok(Err(e)) => {
            return Failure {
                status: if e.certificate {
                    CameraStatus::Error
                } else {
                    CameraStatus::Offline
                },
                message: e.message,
            };
        }
        Err(_) => {
            return Failure::offline(format!("TLS connect timed out after {}", seconds(bound)));
        }
    };
    let url = relay.local_url(&target.url);
    let failure = session(url, target, options, camera).await;
    // retina only sees the loopback side close; the reason is on the TLS side.
    relay.error().map_or(failure, Failure::offline)
}

/// One RTSP session on `url` (the camera's, or the TLS relay's), from DESCRIBE until it fails.
async fn session(
    url: Url,
    target: &Target,
    options: &RtspOptions,
    camera: &mut Camera<'_>,
) -> Failure {
    let (metrics, span) = (camera.metrics, camera.span);
    let bound = options.connect_timeout;
    let session_options = SessionOptions::default()
        .creds(target.creds.clone())
        .user_agent(format!("streamwatch-agent/{}", env!("CARGO_PKG_VERSION")));
    let mut session = match step(bound, "DESCRIBE", Session::describe(url, session_options)).await {
        Ok(session) => session,
        Err(failure) => return failure,
    };
    let Some(stream_i) = session.streams().iter().position(|s| s.media() == "video") else {
        return Failure {
            status: CameraStatus::Error,
            message: "the camera offers no video stream (SDP has no m=video)".to_owned(),
        };
    };
    let stream = &session.streams()[stream_i];
    let declared_fps = stream
        .framerate()
        .map(f64::from)
        .filter(|fps| fps.is_finite() && *fps > 0.0);
    let clock_rate = f64::from(stream.clock_rate_hz().max(1));
    let mut keyframes = keyframe_assembler(stream);
    let transport = match options.transport {
        Transport::Tcp => retina::client::Transport::Tcp(TcpTransportOptions::default()),
        Transport::Udp => retina::client::Transport::Udp(UdpTransportOptions::default()),
    };
    let setup = session.setup(stream_i, SetupOptions::default().transport(transport));
    if let Err(failure) = step(bound, "SETUP", setup).await {
        return failure;
    }
    let mut playing = match step(bound, "PLAY", session.play(PlayOptions::default())).await {
        Ok(playing) => playing,
        Err(failure) => return failure,
    };
    metrics.on_connected(Utc::now(), declared_fps);
    tracing::info!(parent: span, ?declared_fps, transport = ?options.transport, "camera connected");

    let mut frames = FrameAssembler::default();
    let mut jitter = Jitter::new(clock_rate);
    let mut packets = PacketCounts::default();
    let started = std::time::Instant::now();
    // The stall timer is not pushed back per frame (that would re-arm a timer 25 times a
    // second per camera): when it fires, it checks the last frame and re-arms from there.
    let mut last_frame = Instant::now();
    let stall = tokio::time::sleep(options.stall_timeout);
    tokio::pin!(stall);
    loop {
        tokio::select! {
            // Packets first, and no random branch order (which costs a thread-local RNG draw per
            // poll): the stall timer is polled whenever the socket has been drained, which is
            // when it can matter.
            biased;
            item = playing.next() => match item {
                Some(Ok(PacketItem::Rtp(pkt))) if pkt.stream_id() == stream_i => {
                    packets.expected += 1 + u64::from(pkt.loss());
                    packets.lost += u64::from(pkt.loss());
                    let arrival = pkt.ctx().received().saturating_duration_since(started);
                    let rtp_ts = pkt.timestamp().timestamp();
                    jitter.on_packet(arrival.as_secs_f64(), rtp_ts);
                    match &mut keyframes {
                        Ok(assembler) if camera.decoder.wants_keyframe() => {
                            if let Some(keyframe) =
                                assembler.push(rtp_ts, pkt.payload(), pkt.mark(), pkt.loss())
                            {
                                camera.decoder.decode(keyframe);
                            }
                        }
                        Ok(assembler) => assembler.skip(rtp_ts),
                        Err(reason) if camera.decoder.wants_keyframe() => {
                            camera.decoder.unsupported(reason);
                        }
                        Err(_) => {}
                    }
                    let closed = frames.push(rtp_ts, pkt.payload().len(), pkt.mark());
                    if closed.iter().any(Option::is_some) {
                        *camera.received_frames = true;
                        last_frame = Instant::from_std(pkt.ctx().received());
                        let counts = std::mem::take(&mut packets);
                        metrics.on_rtp_frames(
                            Utc::now(),
                            closed.into_iter().flatten(),
                            (counts.expected, counts.lost),
                            jitter.millis(),
                        );
                    }
                }
                // RTCP and packets of streams we did not set up.
                Some(Ok(_)) => {}
                Some(Err(e)) => return Failure::offline(first_line(&e.to_string())),
                None => return Failure::offline("the server closed the session"),
            },
            () = &mut stall => {
                let deadline = last_frame + options.stall_timeout;
                if Instant::now() < deadline {
                    stall.as_mut().reset(deadline);
                } else {
                    return Failure::offline(format!(
                        "no frames for {} (stalled)",
                        seconds(options.stall_timeout)
                    ));
                }
            }
        }
    }
}

/// The keyframe catcher for `stream`, with the parameter sets of its SDP; or why its pictures
/// cannot be decoded.
fn keyframe_assembler(stream: &retina::client::Stream) -> Result<KeyframeAssembler, String> {
    let codec = RtpCodec::from_encoding_name(stream.encoding_name()).ok_or_else(|| {
        format!(
            "the camera sends {} video, and the agent decodes only H.264 and H.265",
            stream.encoding_name()
        )
    })?;
    let sdp: Vec<&[u8]> = match stream.parameters() {
        Some(ParametersRef::Video(video)) => match video.codec_params() {
            VideoParametersCodec::H264 { sps, pps } => vec![sps, pps],
            VideoParametersCodec::H265 { vps, sps, pps } => vec![vps, sps, pps],
            _ => Vec::new(),
        },
        // In-band parameter sets only (allowed by RFC 6184 and RFC 7798).
        _ => Vec::new(),
    };
    Ok(KeyframeAssembler::new(codec, &sdp))
}

/// Runs one RTSP request with a time bound and turns its error into a [`Failure`].
async fn step<T>(
    bound: Duration,
    what: &str,
    request: impl Future<Output = Result<T, retina::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(bound, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Failure::offline(format!(
            "{what} failed: {}",
            first_line(&e.to_string())
        ))),
        Err(_) => Err(Failure::offline(format!(
            "{what} timed out after {}",
            seconds(bound)
        ))),
    }
}

/// retina's messages add packet-capture context after a blank line; the first line is the
/// part an operator can act on.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_owned()
}

fn seconds(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0} s")
    } else {
        format!("{secs:.1} s")
    }
}

/// The URL retina is given (never with credentials), the credentials taken out of it and, for
/// `rtsps://`, the TLS configuration.
#[derive(Debug)]
struct Target {
    url: Url,
    creds: Option<Credentials>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Target {
    fn parse(mut url: Url, options: &RtspOptions) -> Result<Self, String> {
        let tls = match url.scheme() {
            "rtsp" => None,
            "rtsps" if options.transport == Transport::Udp => {
                return Err(
                    "rtsps:// needs the tcp transport: with udp the video would bypass TLS"
                        .to_owned(),
                );
            }
            "rtsps" => Some(tls::client_config(&options.tls)?),
            other => {
                return Err(format!(
                    "unsupported scheme {other}://: expected rtsp:// or rtsps://"
                ));
            }
        };
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{} has no host", redact_url(url.as_str())));
        }
        let creds = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let creds = Credentials {
                username: percent_decode(url.username()),
                password: percent_decode(url.password().unwrap_or_default()),
            };
            // Both only fail for URLs without a host, excluded above.
            let cleared = url.set_username("").and_then(|()| url.set_password(None));
            if cleared.is_err() {
                return Err("cannot remove the credentials from the camera URL".to_owned());
            }
            Some(creds)
        };
        Ok(Self { url, creds, tls })
    }
}

/// `url` keeps user info percent-encoded; the camera wants the raw characters.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Default)]
struct PacketCounts {
    expected: u64,
    lost: u64,
}

/// Delimits frames in a sequence of RTP packets of one stream.
#[derive(Debug, Default)]
struct FrameAssembler {
    /// The frame being received: its RTP timestamp and payload bytes so far.
    open: Option<(i64, u64)>,
}

impl FrameAssembler {
    /// Adds one packet; returns the sizes of the frames it completes, in order (at most two:
    /// an unterminated previous frame and a one-packet frame with its marker).
    fn push(&mut self, rtp_ts: i64, payload_len: usize, mark: bool) -> [Option<u64>; 2] {
        let len = payload_len as u64;
        let mut closed = [None, None];
        match &mut self.open {
            Some((ts, bytes)) if *ts == rtp_ts => *bytes += len,
            open => {
                closed[0] = open.take().map(|(_, bytes)| bytes);
                *open = Some((rtp_ts, len));
            }
        }
        if mark {
            closed[1] = self.open.take().map(|(_, bytes)| bytes);
        }
        closed
    }
}

/// RFC 3550 section 6.4.1 interarrival jitter: `J += (|D| - J) / 16`, where `D` is the change
/// in transit time (arrival minus RTP timestamp, in timestamp units) between two packets.
#[derive(Debug)]
struct Jitter {
    clock_rate: f64,
    previous_transit: Option<f64>,
    /// In RTP timestamp units.
    jitter: f64,
}

impl Jitter {
    fn new(clock_rate: f64) -> Self {
        Self {
            clock_rate,
            previous_transit: None,
            jitter: 0.0,
        }
    }

    fn on_packet(&mut self, arrival_secs: f64, rtp_ts: i64) {
        let transit = arrival_secs * self.clock_rate - rtp_ts as f64;
        if let Some(previous) = self.previous_transit {
            let d = (transit - previous).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.previous_transit = Some(transit);
    }

    fn millis(&self) -> f64 {
        self.jitter / self.clock_rate * 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn tcp() -> RtspOptions {
        RtspOptions::default()
    }

    #[test]
    fn rtsps_keeps_its_url_and_gets_a_tls_configuration() {
        let target = Target::parse(url("rtsps://u:p@cam.local/live"), &tcp()).unwrap();
        assert_eq!(target.url.as_str(), "rtsps://cam.local/live");
        assert!(target.tls.is_some());
        assert!(
            Target::parse(url("rtsp://cam.local/live"), &tcp())
                .unwrap()
                .tls
                .is_none()
        );
    }

    #[test]
    fn credentials_leave_the_url_and_are_decoded() {
        let target =
            Target::parse(url("rtsp://ad%40min:p%3Ass@cam.local:554/live"), &tcp()).unwrap();
        assert_eq!(target.url.as_str(), "rtsp://cam.local:554/live");
        let creds = target.creds.unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("ad@min", "p:ss")
        );
    }

    #[test]
    fn a_url_without_credentials_is_kept_as_is() {
        let target = Target::parse(url("rtsp://10.0.0.2/stream1"), &tcp()).unwrap();
        assert_eq!(target.url.as_str(), "rtsp://10.0.0.2/stream1");
        assert!(target.creds.is_none());
    }

    #[test]
    fn unusable_urls_are_explained_without_their_credentials() {
        let udp = RtspOptions {
            transport: Transport::Udp,
            ..tcp()
        };
        let missing_ca = RtspOptions {
            tls: TlsOptions {
                ca_file: Some("/nonexistent/streamwatch-ca.pem".into()),
                verify: true,
            },
            ..tcp()
        };
        let cases = [
            ("rtsps://u:secret@cam/live", &udp, "needs the tcp transport"),
            (
                "rtsps://u:secret@cam/live",
                &missing_ca,
                "streamwatch-ca.pem",
            ),
            (
                "http://u:secret@cam/live",
                &tcp(),
                "unsupported scheme http://",
            ),
        ];
        for (input, options, expected) in cases {
            let message = Target::parse(url(input), options).unwrap_err();
            assert!(message.contains(expected), "{input}: {message}");
            assert!(!message.contains("secret"), "{input}: {message}");
        }
    }

    #[test]
    fn frames_end_at_the_marker_bit() {
        let mut assembler = FrameAssembler::default();
        assert_eq!(assembler.push(0, 100, false), [None, None]);
        assert_eq!(assembler.push(0, 50, true), [None, Some(150)]);
        assert_eq!(assembler.push(3600, 10, true), [None, Some(10)]);
    }

    #[test]
    fn a_lost_marker_packet_ends_the_frame_at_the_next_timestamp() {
        let mut assembler = FrameAssembler::default();
        assert_eq!(assembler.push(0, 100, false), [None, None]);
        // The marker packet of timestamp 0 was lost; a one-packet frame follows.
        assert_eq!(assembler.push(3600, 20, true), [Some(100), Some(20)]);
        // ... and without a marker, the next timestamp closes it.
        assert_eq!(assembler.push(7200, 30, false), [None, None]);
        assert_eq!(assembler.push(10800, 40, false), [Some(30), None]);
    }

    #[test]
    fn jitter_is_zero_for_perfectly_paced_packets_and_grows_with_variation() {
        let mut jitter = Jitter::new(90_000.0);
        for k in 0..100 {
            jitter.on_packet(k as f64 * 0.04, k * 3600);
        }
        assert!(jitter.millis().abs() < 1e-9, "{}", jitter.millis());
        // Alternating 10 ms early and late converges towards 20 ms of |D|.
        for k in 100..1000 {
            let wobble = if k % 2 == 0 { 0.01 } else { -0.01 };
            jitter.on_packet(k as f64 * 0.04 + wobble, k * 3600);
        }
        assert!((jitter.millis() - 20.0).abs() < 0.5, "{}", jitter.millis());
    }

    #[test]
    fn retina_context_is_cut_from_error_messages() {
        let message = "Unable to connect: refused\n\nconn: 127.0.0.1:1->127.0.0.1:2";
        assert_eq!(first_line(message), "Unable to connect: refused");
        assert_eq!(seconds(Duration::from_secs(3)), "3 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
    }
}
