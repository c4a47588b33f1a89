//! Camera sources. Each runs as one task per camera until shutdown and writes what it measures
//! into the camera's [`CameraMetrics`](crate::metrics::CameraMetrics). A source that can decode
//! pictures hands one to its [`PictureSlot`] whenever the snapshot sampler wants one: RTSP and
//! file sources decode a keyframe of their stream ([`crate::decode`]), the simulated source
//! draws one; relayed cameras have none.
//!
//! Contract for every source (the rest of the agent relies on it):
//! - `run(...)` returns only when `shutdown` is cancelled; failures are recorded with
//!   `on_failure` and followed by a reconnect with backoff and `on_restart`, never a return.
//! - It never blocks the async runtime and never holds the metrics lock across an await.
//!
//! | URL | module |
//! |---|---|
//! | `rtsp://`, `rtsps://` | [`rtsp`] |
//! | `file:///path.mp4` | [`file`] |
//! | `stream-status+http(s)://host:port/status/[#id]` | [`stream_status`] |
//! | `simulated://?fps=25&faults=...` | [`simulated`] |

pub mod file;
pub mod keyframe;
pub mod rtsp;
pub mod simulated;
pub mod stream_status;
pub mod tls;

use crate::config::{Camera, RtspTransport, Source};
use crate::metrics::CameraMetrics;
use crate::snapshots::PictureSlot;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Starts the source of `camera`, writing into `metrics` (and `pictures` when it can decode),
/// until `shutdown`.
pub fn spawn(
    camera: &Camera,
    metrics: CameraMetrics,
    pictures: Arc<PictureSlot>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    match &camera.source {
        Source::Rtsp {
            url,
            transport,
            tls,
        } => {
            let options = rtsp::RtspOptions {
                transport: match transport {
                    RtspTransport::Tcp => rtsp::Transport::Tcp,
                    RtspTransport::Udp => rtsp::Transport::Udp,
                },
                tls: tls.clone(),
                ..rtsp::RtspOptions::default()
            };
            tokio::spawn(rtsp::run(url.clone(), options, metrics, pictures, shutdown))
        }
        Source::File {
            path,
            speed,
            looped,
        } => {
            let options = file::FileOptions {
                speed: *speed,
                looped: *looped,
            };
            tokio::spawn(file::run(
                path.clone(),
                options,
                metrics,
                pictures,
                shutdown,
            ))
        }
        Source::StreamStatus {
            status_url,
            remote_id,
        } => {
            let remote_id = if remote_id.is_empty() {
                camera.id.clone()
            } else {
                remote_id.clone()
            };
            tokio::spawn(stream_status::run(
                status_url.clone(),
                remote_id,
                metrics,
                shutdown,
            ))
        }
        Source::Simulated(spec) => {
            tokio::spawn(simulated::run(spec.clone(), metrics, pictures, shutdown))
        }
    }
}
