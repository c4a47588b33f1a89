//! Heartbeat documents as a real agent sends them: every camera with the fields of the SPEC's
//! example (section 3), values that move a little from one heartbeat to the next.

use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;
use streamwatch_protocol::{
    AgentInfo, CameraReport, CameraStatus, FileProcessing, Heartbeat, HeartbeatBatch,
    WebhookReport, WebhookStatus,
};
use uuid::Uuid;

/// One simulated agent installation.
#[derive(Debug, Clone)]
pub struct SimAgent {
    pub index: usize,
    pub instance_id: Uuid,
    pub hostname: String,
    pub cameras: usize,
    /// Prefix of the camera ids, so that several instances of one license report different
    /// cameras (two instances listing the same camera would move it back and forth).
    pub camera_prefix: String,
    pub started_at: DateTime<Utc>,
    /// A small share of the agents have one troubled camera, as real sites do.
    pub troubled: bool,
}

impl SimAgent {
    pub fn new(index: usize, cameras: usize, instance_of_license: usize) -> Self {
        Self {
            index,
            instance_id: Uuid::new_v4(),
            hostname: format!("site-{index}-box"),
            cameras,
            camera_prefix: if instance_of_license == 0 {
                String::new()
            } else {
                format!("i{instance_of_license}-")
            },
            started_at: Utc::now() - Duration::hours(26),
            troubled: index % 20 == 7,
        }
    }

    /// The heartbeats `first_seq .. first_seq + count`, observed one `spacing` apart and the
    /// newest at `now`.
    pub fn batch(
        &self,
        first_seq: u64,
        count: usize,
        now: DateTime<Utc>,
        spacing: Duration,
    ) -> HeartbeatBatch {
        let heartbeats = (0..count)
            .map(|j| {
                let seq = first_seq + j as u64;
                let back = i32::try_from(count - 1 - j).unwrap_or(i32::MAX);
                self.heartbeat(seq, now - spacing * back)
            })
            .collect();
        HeartbeatBatch {
            agent: AgentInfo {
                instance_id: self.instance_id,
                version: "0.1.0".to_owned(),
                hostname: self.hostname.clone(),
                sent_at: Some(now),
            },
            heartbeats,
        }
    }

    fn heartbeat(&self, seq: u64, observed_at: DateTime<Utc>) -> Heartbeat {
        let cameras: BTreeMap<String, CameraReport> = (1..=self.cameras)
            .map(|k| {
                (
                    format!("{}camera-{k}", self.camera_prefix),
                    self.camera(k, seq, observed_at),
                )
            })
            .collect();
        Heartbeat {
            seq,
            observed_at,
            cameras,
        }
    }

    fn camera(&self, k: usize, seq: u64, observed_at: DateTime<Utc>) -> CameraReport {
        // Small deterministic wobble so documents are not byte-identical.
        let wobble = ((seq as usize + k * 7 + self.index) % 10) as f64 / 10.0;
        let url = Some(format!(
            "rtsp://10.{}.{}.{}/stream{k}",
            (self.index / 250) % 250,
            self.index % 250,
            10 + k
        ));
        let uptime = (observed_at - self.started_at).num_seconds().max(0);
        if self.troubled && k == self.cameras {
            // A camera that lost its source a while ago.
            return CameraReport {
                status: CameraStatus::Offline,
                health: 0,
                url,
                source: Some("rtsp".to_owned()),
                received_fps: 0.0,
                expected_fps: 25.0,
                processed_fps: 0.0,
                buffered_frames: 0.0,
                bitrate_kbps: 0.0,
                is_live: false,
                last_frame_at: Some(self.started_at + Duration::hours(2)),
                bytes_received: 4_031_250_000,
                packet_loss_pct: -1.0,
                jitter_ms: -1.0,
                started_at: Some(self.started_at),
                restart_count: 14,
                last_restart_at: Some(observed_at - Duration::minutes(3)),
                last_error: Some("connection refused (os error 111)".to_owned()),
                file_processing: FileProcessing {
                    processed_seconds: -1.0,
                    total_seconds: -1.0,
                },
                webhooks: WebhookReport {
                    status: WebhookStatus::Ok,
                    cached: 0,
                    last_error: None,
                },
                timezone: Some("Europe/Berlin".to_owned()),
                picture: None,
            };
        }
        CameraReport {
            status: CameraStatus::Running,
            health: 92 + i32::try_from(k % 7).unwrap_or(0),
            url,
            source: Some("rtsp".to_owned()),
            received_fps: r2(24.6 + wobble * 0.4),
            expected_fps: 25.0,
            processed_fps: r2(24.5 + wobble * 0.4),
            buffered_frames: r2(2.0 + wobble * 3.0),
            bitrate_kbps: r2(4200.0 + wobble * 600.0),
            is_live: true,
            last_frame_at: Some(observed_at - Duration::milliseconds(40)),
            bytes_received: uptime * 560_000 + i64::try_from(k).unwrap_or(0) * 1_000,
            packet_loss_pct: if wobble > 0.8 { 0.1 } else { 0.0 },
            jitter_ms: r2(3.0 + wobble * 2.0),
            started_at: Some(self.started_at),
            restart_count: 1,
            last_restart_at: Some(self.started_at + Duration::minutes(72)),
            last_error: None,
            file_processing: FileProcessing {
                processed_seconds: -1.0,
                total_seconds: -1.0,
            },
            webhooks: WebhookReport {
                status: if k == 1 {
                    WebhookStatus::Ok
                } else {
                    WebhookStatus::None
                },
                cached: 0,
                last_error: None,
            },
            timezone: Some("Europe/Berlin".to_owned()),
            picture: None,
        }
    }
}

/// Two decimals, as an agent reports them (and so that they survive a JSON round trip).
fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The body of one request: JSON, gzipped if asked. (The load generator uses [`Template`],
/// which gives the same bytes faster.)
#[cfg(test)]
pub fn encode(batch: &HeartbeatBatch, gzip: bool) -> anyhow::Result<Vec<u8>> {
    finish(serde_json::to_vec(batch)?, gzip)
}

fn finish(json: Vec<u8>, gzip: bool) -> anyhow::Result<Vec<u8>> {
    if !gzip {
        return Ok(json);
    }
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(&json)?;
    Ok(encoder.finish()?)
}

/// An agent's documents, pre-rendered: serialising 40 camera reports per request would make the
/// load generator, which shares the machine with the server, a large part of the load. The
/// camera maps are rendered once per agent through serde, with sentinel values in the fields
/// that change with time; a request then only fills in those values. The bytes are exactly
/// those of `serde_json::to_vec(&agent.batch(..))` (a test checks it).
pub struct Template {
    agent: SimAgent,
    /// By `seq % 10` (the camera values wobble with a period of 10 heartbeats).
    variants: Vec<Vec<Piece>>,
    /// `{"agent":{...,"sent_at":` without the time.
    head: String,
}

enum Piece {
    Text(String),
    /// `last_frame_at` of a running camera: `observed_at` - 40 ms.
    LastFrameAt,
    /// `last_restart_at` of the troubled camera: `observed_at` - 3 min.
    LastRestartAt,
    /// `bytes_received` of camera `k`.
    Bytes(usize),
}

const VARIANTS: u64 = 10;
const SENTINEL_BYTES: i64 = 7_919_000_000_000_000;

fn sentinel_time(n: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(31_536_000 * n + 12_345, 987_654_321).unwrap_or_default()
}

fn json_text<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string(value)?)
}

impl Template {
    /// The simulated agent's instance id.
    pub fn instance_id(&self) -> Uuid {
        self.agent.instance_id
    }

    pub fn new(agent: SimAgent) -> anyhow::Result<Self> {
        let frame = json_text(&sentinel_time(1))?;
        let restart = json_text(&sentinel_time(2))?;
        let mut variants = Vec::new();
        for v in 0..VARIANTS {
            let observed = sentinel_time(3);
            let mut cameras = agent.heartbeat(v, observed).cameras;
            for (k, cam) in (1..=agent.cameras).zip(cameras.values_mut()) {
                if cam.status == CameraStatus::Offline {
                    cam.last_restart_at = Some(sentinel_time(2));
                } else {
                    cam.last_frame_at = Some(sentinel_time(1));
                    cam.bytes_received = SENTINEL_BYTES + i64::try_from(k).unwrap_or(0);
                }
            }
            let mut rest = json_text(&cameras)?;
            let mut pieces = Vec::new();
            loop {
                let mut next: Option<(usize, usize, Piece)> = None;
                let mut consider = |at: Option<usize>, len: usize, piece: Piece| {
                    if let Some(at) = at
                        && next.as_ref().is_none_or(|n| at < n.0)
                    {
                        next = Some((at, len, piece));
                    }
                };
                consider(rest.find(&frame), frame.len(), Piece::LastFrameAt);
                consider(rest.find(&restart), restart.len(), Piece::LastRestartAt);
                for k in 1..=agent.cameras {
                    let digits = (SENTINEL_BYTES + i64::try_from(k).unwrap_or(0)).to_string();
                    consider(rest.find(&digits), digits.len(), Piece::Bytes(k));
                }
                let Some((at, len, piece)) = next else {
                    pieces.push(Piece::Text(rest));
                    break;
                };
                pieces.push(Piece::Text(rest[..at].to_owned()));
                pieces.push(piece);
                rest = rest[at + len..].to_owned();
            }
            variants.push(pieces);
        }
        let head = format!(
            "{{\"agent\":{{\"instance_id\":{},\"version\":\"0.1.0\",\"hostname\":{},\"sent_at\":",
            json_text(&agent.instance_id)?,
            json_text(&agent.hostname)?
        );
        Ok(Self {
            agent,
            variants,
            head,
        })
    }

    /// The body of [`SimAgent::batch`] with the same arguments, gzipped if asked.
    pub fn encode(
        &self,
        first_seq: u64,
        count: usize,
        now: DateTime<Utc>,
        spacing: Duration,
        gzip: bool,
    ) -> anyhow::Result<Vec<u8>> {
        use std::fmt::Write;
        let mut out = String::with_capacity(self.head.len() + count * 2800);
        out.push_str(&self.head);
        out.push_str(&json_text(&now)?);
        out.push_str("},\"heartbeats\":[");
        for j in 0..count {
            let seq = first_seq + j as u64;
            let back = i32::try_from(count - 1 - j).unwrap_or(i32::MAX);
            let observed_at = now - spacing * back;
            let uptime = (observed_at - self.agent.started_at).num_seconds().max(0);
            let frame = json_text(&(observed_at - Duration::milliseconds(40)))?;
            let restart = json_text(&(observed_at - Duration::minutes(3)))?;
            if j > 0 {
                out.push(',');
            }
            write!(
                out,
                "{{\"seq\":{seq},\"observed_at\":{},\"cameras\":",
                json_text(&observed_at)?
            )?;
            let variant = usize::try_from(seq % VARIANTS).unwrap_or(0);
            for piece in &self.variants[variant] {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::LastFrameAt => out.push_str(&frame),
                    Piece::LastRestartAt => out.push_str(&restart),
                    Piece::Bytes(k) => write!(
                        out,
                        "{}",
                        uptime * 560_000 + i64::try_from(*k).unwrap_or(0) * 1_000
                    )?,
                }
            }
            out.push('}');
        }
        out.push_str("]}");
        finish(out.into_bytes(), gzip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_has_consecutive_seqs_and_every_camera() {
        let agent = SimAgent::new(3, 4, 0);
        let now = Utc::now();
        let batch = agent.batch(11, 10, now, Duration::seconds(1));
        assert_eq!(batch.heartbeats.len(), 10);
        assert_eq!(batch.heartbeats[0].seq, 11);
        assert_eq!(batch.heartbeats[9].seq, 20);
        assert_eq!(batch.heartbeats[9].observed_at, now);
        assert!(batch.heartbeats[0].observed_at < now);
        for hb in &batch.heartbeats {
            assert_eq!(hb.cameras.len(), 4);
            assert!(hb.cameras.keys().all(|id| id.starts_with("camera-")));
        }
    }

    #[test]
    fn the_template_renders_exactly_what_serde_renders() {
        let now = Utc::now();
        for (index, instance) in [(0, 0), (7, 0), (27, 2), (1234, 1)] {
            let agent = SimAgent::new(index, 4, instance);
            let template = Template::new(agent.clone()).unwrap_or_else(|e| panic!("{e}"));
            for (first, count) in [(1, 1), (11, 10), (97, 13)] {
                let slow = encode(&agent.batch(first, count, now, Duration::seconds(1)), false)
                    .unwrap_or_default();
                let fast = template
                    .encode(first, count, now, Duration::seconds(1), false)
                    .unwrap_or_default();
                assert_eq!(
                    String::from_utf8_lossy(&fast),
                    String::from_utf8_lossy(&slow),
                    "agent {index}, seq {first}, {count} heartbeats"
                );
            }
        }
    }

    #[test]
    fn the_body_round_trips_through_gzip() {
        let agent = SimAgent::new(7, 4, 1);
        let batch = agent.batch(1, 2, Utc::now(), Duration::seconds(1));
        let body = encode(&batch, true).unwrap_or_default();
        let mut json = Vec::new();
        let decoded =
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut json);
        assert!(decoded.is_ok());
        let again: HeartbeatBatch = serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, batch);
        assert!(again.heartbeats[0].cameras.contains_key("i1-camera-4"));
        assert_eq!(
            again.heartbeats[0].cameras["i1-camera-4"].status,
            CameraStatus::Offline
        );
    }
}
