//! Validation of a heartbeat batch.
//!
//! Two paths give the same answer. The fast one deserializes straight into the protocol types
//! and checks the few rules serde does not know (ranges, limits, camera ids) on the typed
//! value: one pass, no intermediate tree, which is what every well-behaved agent sends. Only
//! when that fails is the document walked as a `serde_json::Value`, so that every invalid field
//! is reported with its JSON pointer (serde would stop at the first). The walker is the
//! authority: the fast path accepts a document only if the walker would too (a unit test
//! checks both on the same documents), and it never produces an error itself.
//!
//! Why: parsing every body twice (a `Value` tree, then the typed conversion) took 57 % of the
//! server's CPU at full ingest load (docs/BENCHMARKS.md).

use crate::domain::{FieldError, escape_pointer_token};
use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Map, Value};
use streamwatch_protocol::{
    CameraReport, HeartbeatBatch, MAX_CAMERAS_PER_HEARTBEAT, MAX_HEARTBEATS_PER_REQUEST,
    is_valid_camera_id, redact_url, redact_urls_in_text,
};

/// Longest text kept from an agent's free-text fields (`last_error`, URLs, hostname). Longer
/// text is cut, not refused: an agent must always be able to report.
const MAX_TEXT: usize = 1024;

/// The span every timestamp an agent sends must lie in: from 2000-01-01 (no camera of ours is
/// older; chrono would accept year -262000) to one day after the server received the request
/// (clocks drift, they do not run a day ahead). Outside it the batch is refused, so that no
/// time arithmetic further in can overflow and PostgreSQL can store every value.
#[derive(Debug, Clone, Copy)]
pub struct TimeBounds {
    pub earliest: DateTime<Utc>,
    pub latest: DateTime<Utc>,
}

impl TimeBounds {
    pub fn for_receipt(received_at: DateTime<Utc>) -> Self {
        Self {
            earliest: DateTime::<Utc>::from_timestamp(946_684_800, 0)
                .unwrap_or(DateTime::UNIX_EPOCH),
            latest: received_at
                .checked_add_signed(chrono::Duration::days(1))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        (self.earliest..=self.latest).contains(&t)
    }

    fn contains_all(&self, times: &[Option<DateTime<Utc>>]) -> bool {
        times.iter().flatten().all(|t| self.contains(*t))
    }
}

/// A number a camera reports: `-1` (unknown) or within `0..=max`.
struct NumberLimit {
    field: &'static str,
    max: f64,
    get: fn(&CameraReport) -> f64,
}

/// An integer a camera reports, within `min..=max`.
struct IntegerLimit {
    field: &'static str,
    min: i64,
    max: i64,
    get: fn(&CameraReport) -> i64,
}

/// The one table of a camera report's numeric limits: the walker reports against it, the fast
/// path checks the typed batch against it, so the two cannot disagree.
const CAMERA_NUMBERS: &[NumberLimit] = &[
    num("received_fps", 1000.0, |c| c.received_fps),
    num("expected_fps", 1000.0, |c| c.expected_fps),
    num("processed_fps", 1000.0, |c| c.processed_fps),
    num("buffered_frames", 1e9, |c| c.buffered_frames),
    num("bitrate_kbps", 1e9, |c| c.bitrate_kbps),
    num("packet_loss_pct", 100.0, |c| c.packet_loss_pct),
    num("jitter_ms", 1e9, |c| c.jitter_ms),
];
const CAMERA_INTEGERS: &[IntegerLimit] = &[
    int("health", -1, 100, |c| i64::from(c.health)),
    int("bytes_received", -1, i64::MAX, |c| c.bytes_received),
    int("restart_count", 0, I32_MAX, |c| c.restart_count),
];
/// Within `file_processing`.
const FILE_NUMBERS: &[NumberLimit] = &[
    num("processed_seconds", 1e12, |c| {
        c.file_processing.processed_seconds
    }),
    num("total_seconds", 1e12, |c| c.file_processing.total_seconds),
];
/// Within `picture` (SPEC section 7); a camera without one reads as unknown (`-1`).
const PICTURE_NUMBERS: &[NumberLimit] = &[
    num("luma_mean", 255.0, |c| {
        c.picture.as_ref().map_or(-1.0, |p| p.luma_mean)
    }),
    num("change_pct", 100.0, |c| {
        c.picture.as_ref().map_or(-1.0, |p| p.change_pct)
    }),
];
/// Within `webhooks`.
const WEBHOOK_INTEGERS: &[IntegerLimit] = &[int("cached", 0, I32_MAX, |c| c.webhooks.cached)];

const I32_MAX: i64 = i32::MAX as i64;

const fn num(field: &'static str, max: f64, get: fn(&CameraReport) -> f64) -> NumberLimit {
    NumberLimit { field, max, get }
}

const fn int(
    field: &'static str,
    min: i64,
    max: i64,
    get: fn(&CameraReport) -> i64,
) -> IntegerLimit {
    IntegerLimit {
        field,
        min,
        max,
        get,
    }
}

impl NumberLimit {
    fn holds(&self, c: &CameraReport) -> bool {
        unknown_or_within((self.get)(c), self.max)
    }
}

impl IntegerLimit {
    fn holds(&self, c: &CameraReport) -> bool {
        (self.min..=self.max).contains(&(self.get)(c))
    }
}

struct Walker {
    errors: Vec<FieldError>,
    bounds: TimeBounds,
}

impl Walker {
    fn err(&mut self, pointer: String, message: impl Into<String>) {
        // A hostile document could have millions of errors; a hundred explain the problem.
        if self.errors.len() < 100 {
            self.errors.push(FieldError::new(pointer, message));
        }
    }

    fn object<'a>(
        &mut self,
        v: Option<&'a Value>,
        pointer: &str,
        required: bool,
    ) -> Option<&'a Map<String, Value>> {
        match v {
            Some(Value::Object(m)) => Some(m),
            None if !required => None,
            None => {
                self.err(pointer.to_owned(), "is required");
                None
            }
            Some(_) => {
                self.err(pointer.to_owned(), "must be an object");
                None
            }
        }
    }

    fn string(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        pointer: &str,
        required: bool,
    ) -> Option<String> {
        match obj.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None if !required => None,
            None | Some(Value::Null) => {
                self.err(format!("{pointer}/{key}"), "is required");
                None
            }
            Some(_) => {
                self.err(format!("{pointer}/{key}"), "must be a string");
                None
            }
        }
    }

    fn timestamp(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        pointer: &str,
        required: bool,
    ) -> Option<DateTime<Utc>> {
        let s = self.string(obj, key, pointer, required)?;
        // The parser serde uses for `DateTime<Utc>` (RFC 3339, with chrono's relaxations such
        // as a space for `T`), so that both paths accept the same timestamps.
        match s.parse::<DateTime<FixedOffset>>() {
            Ok(t) if self.bounds.contains(t.with_timezone(&Utc)) => Some(t.with_timezone(&Utc)),
            Ok(_) => {
                let (from, to) = (self.bounds.earliest, self.bounds.latest);
                self.err(
                    format!("{pointer}/{key}"),
                    format!(
                        "must lie between {} and {} (a day after receipt), not '{}'",
                        from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        cut(&s, 64)
                    ),
                );
                None
            }
            Err(_) => {
                self.err(
                    format!("{pointer}/{key}"),
                    format!("must be an RFC 3339 timestamp, not '{}'", cut(&s, 64)),
                );
                None
            }
        }
    }

    /// A number that is either unknown (-1) or at least 0, within `max`.
    fn number(&mut self, obj: &Map<String, Value>, key: &str, pointer: &str, max: f64) {
        match obj.get(key) {
            None => {}
            Some(Value::Number(n)) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if !(x == -1.0 || (0.0..=max).contains(&x)) {
                    self.err(
                        format!("{pointer}/{key}"),
                        format!("must be -1 (unknown) or between 0 and {max}, not {n}"),
                    );
                }
            }
            Some(_) => self.err(format!("{pointer}/{key}"), "must be a number"),
        }
    }

    fn integer(&mut self, obj: &Map<String, Value>, key: &str, pointer: &str, min: i64, max: i64) {
        match obj.get(key) {
            None => {}
            Some(Value::Number(n)) => match n.as_i64() {
                Some(x) if (min..=max).contains(&x) => {}
                _ => self.err(
                    format!("{pointer}/{key}"),
                    format!("must be an integer from {min} to {max}, not {n}"),
                ),
            },
            Some(_) => self.err(format!("{pointer}/{key}"), "must be an integer"),
        }
    }

    fn boolean(&mut self, obj: &Map<String, Value>, key: &str, pointer: &str) {
        if let Some(v) = obj.get(key)
            && !v.is_boolean()
        {
            self.err(format!("{pointer}/{key}"), "must be true or false");
        }
    }

    fn one_of(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        pointer: &str,
        allowed: &[&str],
        required: bool,
    ) {
        if let Some(s) = self.string(obj, key, pointer, required)
            && !allowed.contains(&s.as_str())
        {
            self.err(
                format!("{pointer}/{key}"),
                format!(
                    "must be one of {}, not '{}'",
                    allowed.join(", "),
                    cut(&s, 32)
                ),
            );
        }
    }

    fn camera(&mut self, v: &Value, pointer: &str) {
        let Some(cam) = self.object(Some(v), pointer, true) else {
            return;
        };
        self.one_of(
            cam,
            "status",
            pointer,
            &["starting", "running", "stopped", "offline", "error"],
            true,
        );
        for key in ["url", "source", "last_error", "timezone"] {
            self.string(cam, key, pointer, false);
        }
        for l in CAMERA_NUMBERS {
            self.number(cam, l.field, pointer, l.max);
        }
        for l in CAMERA_INTEGERS {
            self.integer(cam, l.field, pointer, l.min, l.max);
        }
        self.boolean(cam, "is_live", pointer);
        for key in ["last_frame_at", "started_at", "last_restart_at"] {
            self.timestamp(cam, key, pointer, false);
        }
        if let Some(fp) = self.object(
            cam.get("file_processing"),
            &format!("{pointer}/file_processing"),
            false,
        ) {
            let p = format!("{pointer}/file_processing");
            for l in FILE_NUMBERS {
                self.number(fp, l.field, &p, l.max);
            }
        }
        // `null` is no picture, as serde reads it.
        let picture = cam.get("picture").filter(|v| !v.is_null());
        if let Some(pic) = self.object(picture, &format!("{pointer}/picture"), false) {
            let p = format!("{pointer}/picture");
            // Any state string: a newer agent's state reads as `unknown` (docs/PROTOCOL.md).
            self.string(pic, "state", &p, true);
            for key in ["since", "checked_at"] {
                self.timestamp(pic, key, &p, true);
            }
            for l in PICTURE_NUMBERS {
                self.number(pic, l.field, &p, l.max);
            }
        }
        if let Some(wh) = self.object(cam.get("webhooks"), &format!("{pointer}/webhooks"), false) {
            let p = format!("{pointer}/webhooks");
            self.one_of(wh, "status", &p, &["ok", "failing", "none"], false);
            for l in WEBHOOK_INTEGERS {
                self.integer(wh, l.field, &p, l.min, l.max);
            }
            self.string(wh, "last_error", &p, false);
        }
    }
}

/// Why a batch was refused. The HTTP mapping (400 / 422) is `http::error`'s.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The body is not JSON at all.
    #[error("{0}")]
    NotJson(String),
    /// Well-formed JSON with invalid fields, every one of them (at most a hundred).
    #[error("{} invalid fields", .0.len())]
    Invalid(Vec<FieldError>),
}

fn cut(s: &str, max: usize) -> String {
    // Bytes bound chars from above: the common short text needs no count.
    if s.len() <= max || s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max).collect::<String>() + "…"
    }
}

/// Parses and checks a decoded request body. Every problem is reported at once; a batch with
/// any problem is refused whole (422), so nothing of it is stored.
pub fn parse_batch(body: &[u8], received_at: DateTime<Utc>) -> Result<HeartbeatBatch, BatchError> {
    let bounds = TimeBounds::for_receipt(received_at);
    // The root must be an object too (see the protocol crate's `object` module for the
    // nested ones); JSON allows white space before it.
    let root_is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if root_is_object
        && let Ok(mut batch) = serde_json::from_slice::<HeartbeatBatch>(body)
        && typed_checks_pass(&batch, bounds)
    {
        sanitize(&mut batch);
        return Ok(batch);
    }
    walk_and_parse(body, bounds)
}

/// `-1` (unknown) or within `0..=max`, as [`Walker::number`] has it.
fn unknown_or_within(x: f64, max: f64) -> bool {
    x == -1.0 || (0.0..=max).contains(&x)
}

/// The walker's rules that serde's typing does not already enforce, on the typed batch. True if
/// the walker would find nothing wrong. (Types, required fields, enums, UUIDs and timestamps
/// were checked by the deserializer.)
fn typed_checks_pass(batch: &HeartbeatBatch, bounds: TimeBounds) -> bool {
    let n = batch.heartbeats.len();
    if n == 0 || n > MAX_HEARTBEATS_PER_REQUEST || !bounds.contains_all(&[batch.agent.sent_at]) {
        return false;
    }
    batch.heartbeats.iter().all(|hb| {
        i64::try_from(hb.seq).is_ok()
            && bounds.contains(hb.observed_at)
            && hb.cameras.len() <= MAX_CAMERAS_PER_HEARTBEAT
            && hb.cameras.iter().all(|(id, c)| {
                is_valid_camera_id(id)
                    && bounds.contains_all(&[c.last_frame_at, c.started_at, c.last_restart_at])
                    && c.picture
                        .as_ref()
                        .is_none_or(|p| bounds.contains_all(&[Some(p.since), Some(p.checked_at)]))
                    && CAMERA_NUMBERS
                        .iter()
                        .chain(FILE_NUMBERS)
                        .chain(PICTURE_NUMBERS)
                        .all(|l| l.holds(c))
                    && CAMERA_INTEGERS
                        .iter()
                        .chain(WEBHOOK_INTEGERS)
                        .all(|l| l.holds(c))
            })
    })
}

/// The slow path: every problem by pointer, or the batch if there is none after all.
fn walk_and_parse(body: &[u8], bounds: TimeBounds) -> Result<HeartbeatBatch, BatchError> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| BatchError::NotJson(format!("the request body is not valid JSON: {e}")))?;
    let mut w = Walker {
        errors: Vec::new(),
        bounds,
    };
    let Some(root) = w.object(Some(&doc), "", true) else {
        return Err(BatchError::Invalid(w.errors));
    };

    if let Some(agent) = w.object(root.get("agent"), "/agent", true) {
        if let Some(id) = w.string(agent, "instance_id", "/agent", true)
            && uuid::Uuid::parse_str(&id).is_err()
        {
            w.err("/agent/instance_id".to_owned(), "must be a UUID");
        }
        w.string(agent, "version", "/agent", false);
        w.string(agent, "hostname", "/agent", false);
        w.timestamp(agent, "sent_at", "/agent", false);
    }
    match root.get("heartbeats") {
        Some(Value::Array(list)) => {
            if list.is_empty() || list.len() > MAX_HEARTBEATS_PER_REQUEST {
                w.err(
                    "/heartbeats".to_owned(),
                    format!(
                        "must hold 1 to {MAX_HEARTBEATS_PER_REQUEST} heartbeats, not {}",
                        list.len()
                    ),
                );
            }
            for (i, hb) in list.iter().enumerate().take(MAX_HEARTBEATS_PER_REQUEST) {
                let p = format!("/heartbeats/{i}");
                let Some(hb) = w.object(Some(hb), &p, true) else {
                    continue;
                };
                w.integer(hb, "seq", &p, 0, i64::MAX);
                if !hb.contains_key("seq") {
                    w.err(format!("{p}/seq"), "is required");
                }
                w.timestamp(hb, "observed_at", &p, true);
                match hb.get("cameras") {
                    Some(Value::Object(cams)) => {
                        if cams.len() > MAX_CAMERAS_PER_HEARTBEAT {
                            w.err(
                                format!("{p}/cameras"),
                                format!(
                                    "must hold at most {MAX_CAMERAS_PER_HEARTBEAT} cameras, not {}",
                                    cams.len()
                                ),
                            );
                        }
                        for (id, cam) in cams.iter().take(MAX_CAMERAS_PER_HEARTBEAT) {
                            let cp = format!("{p}/cameras/{}", escape_pointer_token(id));
                            if !is_valid_camera_id(id) {
                                w.err(cp.clone(), "a camera id is 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-'");
                            }
                            w.camera(cam, &cp);
                        }
                    }
                    None => w.err(format!("{p}/cameras"), "is required"),
                    Some(_) => w.err(
                        format!("{p}/cameras"),
                        "must be an object keyed by camera id",
                    ),
                }
            }
        }
        None => w.err("/heartbeats".to_owned(), "is required"),
        Some(_) => w.err("/heartbeats".to_owned(), "must be an array"),
    }
    if !w.errors.is_empty() {
        return Err(BatchError::Invalid(w.errors));
    }
    let mut batch: HeartbeatBatch = serde_json::from_value(doc)
        .map_err(|e| BatchError::Invalid(vec![FieldError::new("", e.to_string())]))?;
    sanitize(&mut batch);
    Ok(batch)
}

/// Redacts URLs (SPEC section 3: credentials are never stored or shown; query strings and
/// fragments may hold tokens too) and cuts over-long text. The agent redacts before it sends;
/// this is the second wall, for older or foreign agents.
fn sanitize(batch: &mut HeartbeatBatch) {
    batch.agent.hostname = cut(&batch.agent.hostname, 255);
    batch.agent.version = cut(&batch.agent.version, 64);
    for hb in &mut batch.heartbeats {
        for cam in hb.cameras.values_mut() {
            cam.url = cam.url.as_deref().map(|u| cut(&redact_url(u), MAX_TEXT));
            cam.last_error = cam
                .last_error
                .as_deref()
                .map(|e| cut(&redact_urls_in_text(e), MAX_TEXT));
            cam.webhooks.last_error = cam
                .webhooks
                .last_error
                .as_deref()
                .map(|e| cut(&redact_urls_in_text(e), MAX_TEXT));
            cam.source = cam
                .source
                .as_deref()
                .map(|s| cut(&redact_urls_in_text(s), 64));
            cam.timezone = cam.timezone.as_deref().map(|s| cut(s, 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointers(body: &str) -> Vec<String> {
        match parse_batch(body.as_bytes(), received()) {
            Err(BatchError::Invalid(errors)) => errors.into_iter().map(|e| e.pointer).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    const ID: &str = "6f1c2b1e-8a51-4d8e-9b5e-0d1f0a6c2b11";

    /// When the tests' batches arrive.
    fn received() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_valid_batch_parses_and_loses_the_secrets_in_its_urls_and_errors() {
        let body = format!(
            r#"{{"agent": {{"instance_id": "{ID}"}}, "heartbeats": [{{"seq": 1, "observed_at": "2026-11-23T10:00:00Z",
            "cameras": {{
              "camera-1": {{"status": "running", "url": "rtsp://user:secret@10.0.0.5/stream1?token=qsecret#fsecret",
                "source": "rtsp://u:ssecret@h/s",
                "last_error": "DESCRIBE rtsp://user:secret@10.0.0.5/stream1?token=qsecret failed",
                "webhooks": {{"status": "failing", "cached": 1,
                  "last_error": "error sending request for url (https://u:wsecret@hooks.example/p?key=ksecret): refused"}}}},
              "camera-2": {{"status": "running", "url": "admin:secret@10.0.0.6/s?token=qsecret"}}}}}}]}}"#
        );
        let batch = parse_batch(body.as_bytes(), received()).unwrap();
        let cameras = &batch.heartbeats[0].cameras;
        let one = &cameras["camera-1"];
        assert_eq!(
            one.url.as_deref(),
            Some("rtsp://10.0.0.5/stream1?[redacted]#[redacted]")
        );
        assert_eq!(one.source.as_deref(), Some("rtsp://h/s"));
        assert_eq!(
            one.last_error.as_deref(),
            Some("DESCRIBE rtsp://10.0.0.5/stream1?[redacted] failed")
        );
        assert_eq!(
            one.webhooks.last_error.as_deref(),
            Some("error sending request for url (https://hooks.example/p?[redacted]): refused")
        );
        assert_eq!(
            cameras["camera-2"].url.as_deref(),
            Some("10.0.0.6/s?[redacted]"),
            "a URL without a scheme does not pass through"
        );
        let stored = format!("{batch:?}");
        assert!(!stored.contains("secret"), "{stored}");
    }

    #[test]
    fn every_bad_field_is_reported_by_pointer() {
        let body = r#"{"agent": {"instance_id": "nope"}, "heartbeats": [
              {"seq": -1, "observed_at": "yesterday", "cameras": {"bad id!": {"status": "dancing", "health": 101,
                "received_fps": "fast", "packet_loss_pct": 200, "is_live": "yes", "webhooks": {"status": "meh"}}}},
              {"observed_at": "2026-11-23T10:00:00Z", "cameras": []}
            ]}"#;
        let p = pointers(body);
        for expected in [
            "/agent/instance_id",
            "/heartbeats/0/seq",
            "/heartbeats/0/observed_at",
            "/heartbeats/0/cameras/bad id!",
            "/heartbeats/0/cameras/bad id!/status",
            "/heartbeats/0/cameras/bad id!/health",
            "/heartbeats/0/cameras/bad id!/received_fps",
            "/heartbeats/0/cameras/bad id!/packet_loss_pct",
            "/heartbeats/0/cameras/bad id!/is_live",
            "/heartbeats/0/cameras/bad id!/webhooks/status",
            "/heartbeats/1/seq",
            "/heartbeats/1/cameras",
        ] {
            assert!(
                p.contains(&expected.to_owned()),
                "{expected} missing from {p:?}"
            );
        }
    }

    #[test]
    fn limits_are_enforced() {
        let hb = r#"{"seq": 1, "observed_at": "2026-11-23T10:00:00Z", "cameras": {}}"#;
        let many = vec![hb; MAX_HEARTBEATS_PER_REQUEST + 1].join(",");
        assert_eq!(
            pointers(&format!(
                r#"{{"agent": {{"instance_id": "{ID}"}}, "heartbeats": [{many}]}}"#
            )),
            ["/heartbeats"]
        );
        assert_eq!(
            pointers(&format!(
                r#"{{"agent": {{"instance_id": "{ID}"}}, "heartbeats": []}}"#
            )),
            ["/heartbeats"]
        );
        let cams: Vec<String> = (0..=MAX_CAMERAS_PER_HEARTBEAT)
            .map(|i| format!(r#""c{i}": {{"status": "running"}}"#))
            .collect();
        let body = format!(
            r#"{{"agent": {{"instance_id": "{ID}"}}, "heartbeats": [{{"seq": 1, "observed_at": "2026-11-23T10:00:00Z", "cameras": {{{}}}}}]}}"#,
            cams.join(",")
        );
        assert_eq!(pointers(&body), ["/heartbeats/0/cameras"]);
        let long_id = "c".repeat(129);
        let body = format!(
            r#"{{"agent": {{"instance_id": "{ID}"}}, "heartbeats": [{{"seq": 1, "observed_at": "2026-11-23T10:00:00Z", "cameras": {{"{long_id}": {{"status": "running"}}}}}}]}}"#
        );
        assert_eq!(
            pointers(&body),
            [format!("/heartbeats/0/cameras/{long_id}")]
        );
    }

    /// A heartbeat with every field of the protocol set to a valid value.
    fn full_document() -> Value {
        serde_json::json!({
            "agent": {"instance_id": ID, "version": "0.1.0", "hostname": "box-1",
                      "sent_at": "2026-11-23T10:00:01Z"},
            "heartbeats": [{
                "seq": 7, "observed_at": "2026-11-23T10:00:00Z",
                "cameras": {"camera-1": {
                    "status": "running", "health": 97, "url": "rtsp://u:p@10.0.0.5/s",
                    "source": "rtsp", "received_fps": 25.0, "expected_fps": 25,
                    "processed_fps": 24.9, "buffered_frames": 3, "bitrate_kbps": 2048.5,
                    "is_live": true, "last_frame_at": "2026-11-23T10:00:00.5Z",
                    "bytes_received": 123456, "packet_loss_pct": 0.1, "jitter_ms": 2.5,
                    "started_at": "2026-11-23T09:00:00Z", "restart_count": 2,
                    "last_restart_at": "2026-11-23T09:30:00Z", "last_error": "timeout",
                    "file_processing": {"processed_seconds": 12.5, "total_seconds": 60},
                    "webhooks": {"status": "failing", "cached": 3, "last_error": "503"},
                    "timezone": "Europe/Berlin"
                }}
            }]
        })
    }

    /// Every leaf of a JSON document, by pointer.
    fn leaves(v: &Value, pointer: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                out.push(pointer.clone());
                for (k, v) in m {
                    leaves(v, format!("{pointer}/{}", escape_pointer_token(k)), out);
                }
            }
            Value::Array(a) => {
                out.push(pointer.clone());
                for (i, v) in a.iter().enumerate() {
                    leaves(v, format!("{pointer}/{i}"), out);
                }
            }
            _ => out.push(pointer),
        }
    }

    #[test]
    fn the_fast_path_accepts_exactly_what_the_walker_accepts() {
        // Every field of a full document, replaced by values of every kind that matters at
        // the edges of the rules: the two paths must agree on each (and on the batch).
        let replacements = [
            Value::Null,
            serde_json::json!(true),
            serde_json::json!("text"),
            serde_json::json!(""),
            serde_json::json!("2026-11-23 10:00:00Z"),
            serde_json::json!("2026-11-23T10:00:00+0100"),
            // Time bounds: chrono's extended years, just before 2000, just past receipt + 1 day.
            serde_json::json!("-262000-01-01T00:00:00Z"),
            serde_json::json!("+262000-01-01T00:00:00Z"),
            serde_json::json!("1999-12-31T23:59:59Z"),
            serde_json::json!("2000-01-01T00:00:00Z"),
            serde_json::json!("2026-11-24T12:00:00Z"),
            serde_json::json!("2026-11-24T12:00:01Z"),
            serde_json::json!(ID),
            serde_json::json!(-2),
            serde_json::json!(-1),
            serde_json::json!(-1.5),
            serde_json::json!(0),
            serde_json::json!(1.5),
            serde_json::json!(100),
            serde_json::json!(101),
            serde_json::json!(1000.5),
            serde_json::json!(2_147_483_648_i64),
            serde_json::json!(i64::MAX),
            serde_json::json!(u64::MAX),
            serde_json::json!(1e300),
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!("ok"),
            serde_json::json!("starting"),
        ];
        let base = full_document();
        let mut pointers = Vec::new();
        leaves(&base, String::new(), &mut pointers);
        let mut documents = vec![base.clone()];
        for pointer in pointers.iter().filter(|p| !p.is_empty()) {
            for r in &replacements {
                let mut doc = base.clone();
                *doc.pointer_mut(pointer).unwrap() = r.clone();
                documents.push(doc);
            }
            // And the field left out.
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let mut doc = base.clone();
            if let Some(Value::Object(m)) = doc.pointer_mut(parent) {
                m.remove(key);
                documents.push(doc);
            }
        }
        let mut accepted = 0;
        for doc in &documents {
            let body = serde_json::to_vec(doc).unwrap();
            let fast = parse_batch(&body, received());
            let slow = walk_and_parse(&body, TimeBounds::for_receipt(received()));
            match (&fast, &slow) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b, "{doc}");
                    accepted += 1;
                }
                (Err(BatchError::Invalid(a)), Err(BatchError::Invalid(b))) => {
                    let (a, b): (Vec<_>, Vec<_>) = (
                        a.iter().map(|e| &e.pointer).collect(),
                        b.iter().map(|e| &e.pointer).collect(),
                    );
                    assert_eq!(a, b, "{doc}");
                }
                _ => panic!("the paths disagree on {doc}: {fast:?} / {slow:?}"),
            }
        }
        // Both outcomes occur, so the comparison means something.
        assert!(
            accepted > 50 && accepted < documents.len() - 100,
            "{accepted} of {}",
            documents.len()
        );
    }

    #[test]
    fn not_json_is_malformed() {
        assert!(matches!(
            parse_batch(b"{", received()),
            Err(BatchError::NotJson(_))
        ));
        assert_eq!(pointers("[]"), [""]);
    }

    #[test]
    fn every_timestamp_must_lie_between_2000_and_a_day_after_receipt() {
        let doc = |sent: &str, observed: &str, frame: &str| {
            format!(
                r#"{{"agent": {{"instance_id": "{ID}", "sent_at": "{sent}"}}, "heartbeats": [{{"seq": 1,
                "observed_at": "{observed}", "cameras": {{"camera-1": {{"status": "running",
                "last_frame_at": "{frame}", "started_at": "{frame}", "last_restart_at": "{frame}"}}}}}}]}}"#
            )
        };
        let ok = "2026-11-23T10:00:00Z";
        for bad in [
            "-262000-01-01T00:00:00Z",
            "+262000-12-31T23:59:59Z",
            "1999-12-31T23:59:59Z",
            "2026-11-24T12:00:01Z",
        ] {
            assert_eq!(pointers(&doc(bad, ok, ok)), ["/agent/sent_at"], "{bad}");
            assert_eq!(
                pointers(&doc(ok, bad, ok)),
                ["/heartbeats/0/observed_at"],
                "{bad}"
            );
            let camera = "/heartbeats/0/cameras/camera-1";
            assert_eq!(
                pointers(&doc(ok, ok, bad)),
                [
                    format!("{camera}/last_frame_at"),
                    format!("{camera}/started_at"),
                    format!("{camera}/last_restart_at")
                ],
                "{bad}"
            );
        }
        let edge = doc("2000-01-01T00:00:00Z", "2026-11-24T12:00:00Z", ok);
        assert!(parse_batch(edge.as_bytes(), received()).is_ok());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A timestamp as an agent might send one: any year chrono reads (signed, extended),
        /// or text that is not a time at all.
        fn timestamp() -> impl Strategy<Value = Value> {
            prop_oneof![
                (-262_000i32..262_000, 1u32..13, 1u32..29, 0u32..24).prop_map(|(y, mo, d, h)| {
                    let year = if (0..10_000).contains(&y) {
                        format!("{y:04}")
                    } else {
                        format!("{y:+07}")
                    };
                    Value::String(format!("{year}-{mo:02}-{d:02}T{h:02}:00:00Z"))
                }),
                (1_990i32..2_040).prop_map(|y| Value::String(format!("{y}-06-01T00:00:00Z"))),
                ".*".prop_map(Value::String),
                Just(Value::Null),
            ]
        }

        /// A number field as an agent might send one.
        fn number() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<i64>().prop_map(Value::from),
                any::<f64>()
                    .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
                    .prop_map(Value::from),
                Just(Value::from(-1)),
                ".{0,8}".prop_map(Value::String),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            /// Whatever the times, numbers and strings, validation answers (never panics), both
            /// paths agree, and an accepted batch holds only times within the bounds.
            #[test]
            fn validation_never_panics_and_accepts_only_bounded_times(
                sent in timestamp(),
                observed in timestamp(),
                frame in timestamp(),
                health in number(),
                fps in number(),
                restarts in number(),
                text in ".{0,40}",
            ) {
                let doc = serde_json::json!({
                    "agent": {"instance_id": ID, "sent_at": sent, "hostname": text},
                    "heartbeats": [{"seq": 1, "observed_at": observed, "cameras": {
                        "camera-1": {"status": "running", "health": health, "received_fps": fps,
                                     "restart_count": restarts, "last_frame_at": frame,
                                     "last_error": text}}}]
                });
                let body = serde_json::to_vec(&doc).unwrap();
                let fast = parse_batch(&body, received());
                let slow = walk_and_parse(&body, TimeBounds::for_receipt(received()));
                prop_assert_eq!(fast.is_ok(), slow.is_ok(), "{}", doc);
                if let Ok(batch) = fast {
                    let bounds = TimeBounds::for_receipt(received());
                    let cam = &batch.heartbeats[0].cameras["camera-1"];
                    prop_assert!(bounds.contains_all(&[
                        batch.agent.sent_at,
                        Some(batch.heartbeats[0].observed_at),
                        cam.last_frame_at,
                    ]));
                    // The writer's time arithmetic on it cannot overflow either.
                    let offset = crate::ingest::batch::clock_offset(&batch, received());
                    let _ = crate::ingest::batch::activity_time(
                        batch.heartbeats[0].observed_at,
                        offset,
                        received(),
                    );
                }
            }
        }
    }
}
