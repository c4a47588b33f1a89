//! The on-disk spool of heartbeats that the server has not acknowledged yet.
//!
//! Every heartbeat goes into the spool *before* it is sent and leaves it only after a 2xx that
//! covers it, so nothing unacknowledged is lost when the agent or the machine stops, and nothing
//! acknowledged is sent again (SPEC section 7).
//!
//! # On disk
//!
//! ```text
//! <state_dir>/spool/
//!   seg-00000000000000000001.jsonl   segments: one heartbeat per line, JSON, oldest first;
//!   seg-00000000000000000413.jsonl   named by the seq of their first heartbeat
//!   cursor                           {"consumed_through": 412, "dropped_by_size": 0, ...}
//! ```
//!
//! - **Append-only.** A heartbeat is appended as one line (`<JSON>\n`) to the newest segment
//!   and fsynced before [`Spool::append`] returns. Segments are never rewritten; a new one
//!   starts when the newest is over [`SpoolLimits::segment_bytes`].
//! - **The cursor** says which heartbeats are no longer pending: every seq at or below
//!   `consumed_through` was acknowledged, dropped at a bound, or rejected. It is replaced
//!   atomically (write, fsync, rename, fsync the directory). A segment whose heartbeats are all
//!   consumed is deleted after the cursor is written, so a crash in between only leaves a file
//!   that the next start deletes.
//! - **Bounds.** After each append, the oldest pending heartbeats are dropped while the pending
//!   ones take more than `max_bytes` (the newest always stays) or are older than `max_age`, and
//!   the cursor counts them (`dropped_by_size`, `dropped_by_age`). The server accepts the gap.
//!   The disk holds at most `max_bytes` plus one segment.
//! - **Crashes.** A line is pending only when it ends with a newline and parses. On start, a torn
//!   last line of the newest segment (a write cut short, or zeros after a power loss) is cut off
//!   with a warning, so that the next append starts on a clean line; any other line that does
//!   not parse is skipped and counted (`dropped_corrupt`). Nothing makes the spool refuse to
//!   start.
//! - **Replay** reads the oldest pending heartbeats in seq order, at most
//!   `max_count` of them and at most `max_bytes` of JSON (at least one), for one request.
//!
//! Only the index of pending heartbeats (seq, time, position) is kept in memory; the
//! heartbeats themselves are read back from disk when they are sent.
//!
//! The spool is synchronous (plain file I/O): callers on the async runtime use it through
//! `spawn_blocking`.

use crate::state::{sync_dir, write_atomically};
use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::{
    collections::VecDeque,
    fs,
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    time::Duration,
};
use streamwatch_protocol::Heartbeat;

const SEGMENT_PREFIX: &str = "seg-";
const SEGMENT_SUFFIX: &str = ".jsonl";
const CURSOR: &str = "cursor";

/// How much the spool may hold.
#[derive(Debug, Clone, Copy)]
pub struct SpoolLimits {
    /// Pending heartbeats beyond this many bytes of JSON are dropped, oldest first.
    pub max_bytes: u64,
    /// Pending heartbeats observed longer ago than this are dropped.
    pub max_age: Duration,
    /// A new segment starts when the newest one is this big.
    pub segment_bytes: u64,
}

impl SpoolLimits {
    /// Limits with segments of an eighth of `max_bytes` (4 KiB .. 1 MiB).
    pub fn new(max_bytes: u64, max_age: Duration) -> Self {
        Self {
            max_bytes,
            max_age,
            segment_bytes: (max_bytes / 8).clamp(4096, 1024 * 1024),
        }
    }
}

/// The persisted cursor and counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Every seq at or below this is no longer pending.
    pub consumed_through: u64,
    /// Heartbeats dropped because the spool was over `max_bytes`.
    #[serde(default)]
    pub dropped_by_size: u64,
    /// Heartbeats dropped because they were older than `max_age`.
    #[serde(default)]
    pub dropped_by_age: u64,
    /// Lines that could not be read back (corruption), skipped.
    #[serde(default)]
    pub dropped_corrupt: u64,
    /// Heartbeats the server refused for good (422, or 413 alone), dropped.
    #[serde(default)]
    pub rejected: u64,
}

/// What the dashboard and tests see of the spool.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpoolStats {
    /// Heartbeats waiting to be acknowledged.
    pub pending: u64,
    /// Their size in bytes of JSON.
    pub pending_bytes: u64,
    /// The spool's files on disk, in bytes.
    pub disk_bytes: u64,
    /// Seq of the oldest pending heartbeat.
    pub oldest_seq: Option<u64>,
    /// When the oldest pending heartbeat was observed.
    pub oldest_observed_at: Option<DateTime<Utc>>,
    pub dropped_by_size: u64,
    pub dropped_by_age: u64,
    pub dropped_corrupt: u64,
    pub rejected: u64,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    seq: u64,
    observed_at: DateTime<Utc>,
    /// Byte offset of the line in its segment.
    offset: u64,
    /// Length of the JSON, without the newline.
    len: u64,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    /// The pending records of this segment, in seq order.
    records: VecDeque<Record>,
    /// The file's length (where the next line goes).
    file_len: u64,
}

/// The spool (see the module docs).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limits: SpoolLimits,
    /// Oldest first; appends go to the last.
    segments: VecDeque<Segment>,
    cursor: Cursor,
    /// The highest seq ever appended or consumed: appends must be above it.
    last_seq: u64,
}

impl Spool {
    /// Opens the spool in `dir` (created if missing), reloading what a previous run left.
    pub fn open(dir: &Path, limits: SpoolLimits, now: DateTime<Utc>) -> anyhow::Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the spool directory {}", dir.display()))?;
        let cursor = match fs::read(dir.join(CURSOR)) {
            Ok(bytes) => serde_json::from_slice::<Cursor>(&bytes).unwrap_or_else(|e| {
                // Worst case: heartbeats already acknowledged are sent again, and the server
                // answers them as duplicates.
                tracing::warn!(error = %e, "the spool cursor is unreadable; starting from the oldest segment");
                Cursor::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Cursor::default(),
            Err(e) => return Err(e).context("cannot read the spool cursor"),
        };
        let mut spool = Self {
            dir: dir.to_owned(),
            limits,
            segments: VecDeque::new(),
            cursor,
            last_seq: cursor.consumed_through,
        };
        let mut names: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
                continue;
            }
            if let Some(first) = name
                .strip_prefix(SEGMENT_PREFIX)
                .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
                .and_then(|n| n.parse::<u64>().ok())
            {
                names.push((first, entry.path()));
            } else if name != CURSOR {
                tracing::warn!(file = %entry.path().display(), "unexpected file in the spool directory; ignored");
            }
        }
        names.sort();
        let count = names.len();
        let corrupt_before = spool.cursor.dropped_corrupt;
        for (i, (_, path)) in names.into_iter().enumerate() {
            let newest = i + 1 == count;
            let segment = spool.load_segment(path, newest)?;
            spool.segments.push_back(segment);
        }
        if spool.cursor.dropped_corrupt != corrupt_before {
            spool.store_cursor()?;
        }
        spool.delete_consumed_segments()?;
        spool.enforce_bounds(now)?;
        Ok(spool)
    }

    /// Reads one segment's pending records; cuts a torn tail off the newest segment.
    fn load_segment(&mut self, path: PathBuf, newest: bool) -> anyhow::Result<Segment> {
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut records = VecDeque::new();
        let mut pos = 0usize;
        let mut file_len = bytes.len() as u64;
        while pos < bytes.len() {
            let Some(newline) = bytes[pos..].iter().position(|b| *b == b'\n') else {
                // A line without its newline: the write was cut short.
                let torn = bytes.len() - pos;
                if newest {
                    tracing::warn!(file = %path.display(), bytes = torn, "cutting off a torn last line of the spool (a write cut short by a crash)");
                    let file = fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .with_context(|| format!("cannot open {}", path.display()))?;
                    file.set_len(pos as u64)
                        .and_then(|()| file.sync_all())
                        .with_context(|| format!("cannot truncate {}", path.display()))?;
                    file_len = pos as u64;
                } else {
                    tracing::warn!(file = %path.display(), bytes = torn, "skipping an incomplete line in an older spool segment");
                }
                if bytes[pos..]
                    .iter()
                    .any(|b| *b != 0 && !b.is_ascii_whitespace())
                {
                    self.cursor.dropped_corrupt += 1;
                }
                break;
            };
            let line = &bytes[pos..pos + newline];
            let offset = pos as u64;
            pos += newline + 1;
            if line.iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
                continue;
            }
            match serde_json::from_slice::<Heartbeat>(line) {
                Ok(hb) if hb.seq <= self.last_seq => {
                    // Consumed already (or out of order, which an append never writes).
                    if hb.seq > self.cursor.consumed_through {
                        tracing::warn!(
                            seq = hb.seq,
                            "skipping an out-of-order heartbeat in the spool"
                        );
                        self.cursor.dropped_corrupt += 1;
                    }
                }
                Ok(hb) => {
                    self.last_seq = hb.seq;
                    records.push_back(Record {
                        seq: hb.seq,
                        observed_at: hb.observed_at,
                        offset,
                        len: line.len() as u64,
                    });
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), offset, error = %e, "skipping an unreadable line of the spool");
                    self.cursor.dropped_corrupt += 1;
                }
            }
        }
        Ok(Segment {
            path,
            records,
            file_len,
        })
    }

    /// Appends `heartbeat` durably, then applies the bounds. Seqs must grow.
    pub fn append(&mut self, heartbeat: &Heartbeat, now: DateTime<Utc>) -> anyhow::Result<()> {
        anyhow::ensure!(
            heartbeat.seq > self.last_seq,
            "heartbeat seq {} is not above the spool's newest ({})",
            heartbeat.seq,
            self.last_seq
        );
        let mut line = serde_json::to_vec(heartbeat).context("cannot encode a heartbeat")?;
        let len = line.len() as u64;
        line.push(b'\n');
        let roll = self
            .segments
            .back()
            .is_none_or(|s| s.file_len >= self.limits.segment_bytes);
        if roll {
            let path = self.dir.join(format!(
                "{SEGMENT_PREFIX}{:020}{SEGMENT_SUFFIX}",
                heartbeat.seq
            ));
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            sync_dir(&self.dir)?;
            self.segments.push_back(Segment {
                path,
                records: VecDeque::new(),
                file_len: 0,
            });
        }
        let Some(segment) = self.segments.back_mut() else {
            anyhow::bail!("no spool segment to append to");
        };
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&segment.path)
            .with_context(|| format!("cannot open {}", segment.path.display()))?;
        if let Err(e) = file.write_all(&line).and_then(|()| file.sync_data()) {
            // Leave no half line behind: the next append must start on a clean line.
            let _ = file.set_len(segment.file_len);
            return Err(e).with_context(|| format!("cannot append to {}", segment.path.display()));
        }
        segment.records.push_back(Record {
            seq: heartbeat.seq,
            observed_at: heartbeat.observed_at,
            offset: segment.file_len,
            len,
        });
        segment.file_len += len + 1;
        self.last_seq = heartbeat.seq;
        self.enforce_bounds(now)
    }

    /// The oldest pending heartbeats, in seq order: at most `max_count`, and at most
    /// `max_bytes` of JSON unless the first alone is bigger.
    pub fn oldest(&mut self, max_count: usize, max_bytes: u64) -> anyhow::Result<Vec<Heartbeat>> {
        let mut picked: Vec<(usize, Record)> = Vec::new();
        let mut bytes = 0u64;
        'segments: for (i, segment) in self.segments.iter().enumerate() {
            for record in &segment.records {
                if picked.len() >= max_count
                    || (!picked.is_empty() && bytes + record.len > max_bytes)
                {
                    break 'segments;
                }
                bytes += record.len;
                picked.push((i, *record));
            }
        }
        let mut heartbeats = Vec::with_capacity(picked.len());
        let mut unreadable = Vec::new();
        let mut open: Option<(usize, fs::File)> = None;
        for (i, record) in picked {
            if open.as_ref().is_none_or(|(j, _)| *j != i) {
                let path = &self.segments[i].path;
                let file = fs::File::open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                open = Some((i, file));
            }
            let Some((_, file)) = open.as_mut() else {
                continue;
            };
            let mut buf = vec![0u8; usize::try_from(record.len).unwrap_or(0)];
            file.seek(SeekFrom::Start(record.offset))
                .and_then(|_| file.read_exact(&mut buf))
                .with_context(|| format!("cannot read {}", self.segments[i].path.display()))?;
            match serde_json::from_slice::<Heartbeat>(&buf) {
                Ok(hb) if hb.seq == record.seq => heartbeats.push(hb),
                _ => unreadable.push(record.seq),
            }
        }
        if !unreadable.is_empty() {
            // The file changed under us (disk trouble): skip those lines rather than wedge.
            tracing::error!(seqs = ?unreadable, "spooled heartbeats could not be read back; skipping them");
            for segment in &mut self.segments {
                segment.records.retain(|r| !unreadable.contains(&r.seq));
            }
            self.cursor.dropped_corrupt += unreadable.len() as u64;
            self.store_cursor()?;
            self.delete_consumed_segments()?;
            if heartbeats.is_empty() {
                return self.oldest(max_count, max_bytes);
            }
        }
        Ok(heartbeats)
    }

    /// The server acknowledged every heartbeat up to `seq`: they leave the spool for good.
    pub fn ack_through(&mut self, seq: u64) -> anyhow::Result<u64> {
        self.consume_through(seq, |_, _| {})
    }

    /// The server refused every heartbeat up to `seq` for good (422): drop and count them.
    pub fn reject_through(&mut self, seq: u64) -> anyhow::Result<u64> {
        self.consume_through(seq, |cursor, n| cursor.rejected += n)
    }

    fn consume_through(
        &mut self,
        seq: u64,
        count: impl FnOnce(&mut Cursor, u64),
    ) -> anyhow::Result<u64> {
        let mut removed = 0u64;
        for segment in &mut self.segments {
            while segment.records.front().is_some_and(|r| r.seq <= seq) {
                segment.records.pop_front();
                removed += 1;
            }
        }
        if seq > self.cursor.consumed_through {
            self.cursor.consumed_through = seq;
            self.last_seq = self.last_seq.max(seq);
        }
        count(&mut self.cursor, removed);
        self.store_cursor()?;
        self.delete_consumed_segments()?;
        Ok(removed)
    }

    /// Drops the oldest pending heartbeats beyond the bounds, counting them.
    fn enforce_bounds(&mut self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let horizon = chrono::Duration::from_std(self.limits.max_age)
            .ok()
            .and_then(|age| now.checked_sub_signed(age));
        let mut pending = self.pending();
        let mut bytes = self.pending_bytes();
        let (mut by_size, mut by_age, mut through) = (0u64, 0u64, None);
        for segment in &mut self.segments {
            while let Some(oldest) = segment.records.front().copied() {
                let too_old = horizon.is_some_and(|h| oldest.observed_at < h);
                let too_big = bytes > self.limits.max_bytes && pending > 1;
                if !(too_old || too_big) {
                    break;
                }
                if too_old {
                    by_age += 1;
                } else {
                    by_size += 1;
                }
                segment.records.pop_front();
                pending -= 1;
                bytes -= oldest.len;
                through = Some(oldest.seq);
            }
            if !segment.records.is_empty() {
                break;
            }
        }
        if let Some(seq) = through {
            tracing::warn!(
                dropped_by_size = by_size,
                dropped_by_age = by_age,
                through_seq = seq,
                "the spool is over its bound: dropped the oldest unsent heartbeats"
            );
            self.cursor.consumed_through = self.cursor.consumed_through.max(seq);
            self.cursor.dropped_by_size += by_size;
            self.cursor.dropped_by_age += by_age;
            self.store_cursor()?;
            self.delete_consumed_segments()?;
        }
        Ok(())
    }

    fn store_cursor(&self) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(&self.cursor).context("cannot encode the spool cursor")?;
        write_atomically(&self.dir, CURSOR, &bytes)
    }

    /// Deletes segments without pending records (the cursor is already on disk).
    fn delete_consumed_segments(&mut self) -> anyhow::Result<()> {
        let before = self.segments.len();
        let mut kept = VecDeque::with_capacity(before);
        for segment in self.segments.drain(..) {
            if segment.records.is_empty() {
                match fs::remove_file(&segment.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(file = %segment.path.display(), error = %e, "cannot delete a consumed spool segment");
                    }
                }
            } else {
                kept.push_back(segment);
            }
        }
        self.segments = kept;
        if self.segments.len() != before {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Heartbeats waiting for an acknowledgement.
    pub fn pending(&self) -> u64 {
        self.segments.iter().map(|s| s.records.len() as u64).sum()
    }

    fn pending_bytes(&self) -> u64 {
        self.segments
            .iter()
            .flat_map(|s| s.records.iter())
            .map(|r| r.len)
            .sum()
    }

    /// The highest seq the spool has seen (appended or consumed).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The cursor with its counters.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// Numbers for the dashboard.
    pub fn stats(&self) -> SpoolStats {
        let oldest = self.segments.iter().find_map(|s| s.records.front());
        SpoolStats {
            pending: self.pending(),
            pending_bytes: self.pending_bytes(),
            disk_bytes: self.segments.iter().map(|s| s.file_len).sum(),
            oldest_seq: oldest.map(|r| r.seq),
            oldest_observed_at: oldest.map(|r| r.observed_at),
            dropped_by_size: self.cursor.dropped_by_size,
            dropped_by_age: self.cursor.dropped_by_age,
            dropped_corrupt: self.cursor.dropped_corrupt,
            rejected: self.cursor.rejected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_dir;
    use chrono::TimeZone;
    use std::collections::BTreeMap;
    use streamwatch_protocol::{CameraReport, CameraStatus};

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0)
            .single()
            .unwrap_or_else(|| panic!("time"))
    }

    fn heartbeat(seq: u64, at: DateTime<Utc>) -> Heartbeat {
        Heartbeat {
            seq,
            observed_at: at,
            cameras: BTreeMap::from([(
                "camera-1".to_owned(),
                CameraReport {
                    status: CameraStatus::Running,
                    health: 95,
                    ..CameraReport::default()
                },
            )]),
        }
    }

    fn limits() -> SpoolLimits {
        SpoolLimits::new(64 * 1024 * 1024, Duration::from_secs(7 * 86_400))
    }

    fn open(dir: &Path, limits: SpoolLimits, now: DateTime<Utc>) -> Spool {
        Spool::open(dir, limits, now).unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn seqs(spool: &mut Spool) -> Vec<u64> {
        spool
            .oldest(usize::MAX, u64::MAX)
            .unwrap_or_else(|e| panic!("{e:#}"))
            .iter()
            .map(|h| h.seq)
            .collect()
    }

    fn append(spool: &mut Spool, seq: u64, at: DateTime<Utc>) {
        spool
            .append(&heartbeat(seq, at), at)
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(SEGMENT_SUFFIX))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn appended_heartbeats_come_back_in_order_and_leave_after_an_ack() {
        let dir = temp_dir("spool-ack");
        let mut spool = open(&dir, limits(), t(0));
        for seq in 1..=5 {
            append(&mut spool, seq, t(seq as i64));
        }
        assert_eq!(seqs(&mut spool), [1, 2, 3, 4, 5]);
        let batch = spool.oldest(2, u64::MAX).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(batch.iter().map(|h| h.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(batch[0], heartbeat(1, t(1)), "read back exactly as written");
        assert_eq!(spool.ack_through(2).unwrap_or_else(|e| panic!("{e}")), 2);
        assert_eq!(seqs(&mut spool), [3, 4, 5]);
        assert_eq!(spool.pending(), 3);
        spool.ack_through(5).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spool.pending(), 0);
        assert!(
            segment_files(&dir).is_empty(),
            "consumed segments are deleted"
        );
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_reopened_spool_has_exactly_the_unacknowledged_heartbeats() {
        let dir = temp_dir("spool-reload");
        let mut spool = open(&dir, limits(), t(0));
        for seq in 1..=4 {
            append(&mut spool, seq, t(seq as i64));
        }
        spool.ack_through(2).unwrap_or_else(|e| panic!("{e}"));
        drop(spool);
        let mut spool = open(&dir, limits(), t(10));
        assert_eq!(seqs(&mut spool), [3, 4]);
        assert_eq!(spool.last_seq(), 4);
        append(&mut spool, 5, t(11));
        assert_eq!(seqs(&mut spool), [3, 4, 5]);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn seqs_must_grow() {
        let dir = temp_dir("spool-order");
        let mut spool = open(&dir, limits(), t(0));
        append(&mut spool, 7, t(0));
        assert!(spool.append(&heartbeat(7, t(1)), t(1)).is_err());
        assert!(spool.append(&heartbeat(3, t(1)), t(1)).is_err());
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn batches_stop_at_the_byte_limit_but_always_carry_one() {
        let dir = temp_dir("spool-bytes");
        let mut spool = open(&dir, limits(), t(0));
        for seq in 1..=4 {
            append(&mut spool, seq, t(0));
        }
        let one = serde_json::to_vec(&heartbeat(1, t(0)))
            .unwrap_or_default()
            .len() as u64;
        let batch = spool
            .oldest(500, one * 2 + 1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(batch.len(), 2);
        let batch = spool.oldest(500, 1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(batch.len(), 1);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn segments_roll_and_replay_crosses_them() {
        let dir = temp_dir("spool-roll");
        let limits = SpoolLimits {
            segment_bytes: 600,
            ..limits()
        };
        let mut spool = open(&dir, limits, t(0));
        for seq in 1..=10 {
            append(&mut spool, seq, t(0));
        }
        assert!(segment_files(&dir).len() > 2, "{:?}", segment_files(&dir));
        assert_eq!(seqs(&mut spool), (1..=10).collect::<Vec<_>>());
        spool.ack_through(6).unwrap_or_else(|e| panic!("{e}"));
        drop(spool);
        let mut spool = open(&dir, limits, t(0));
        assert_eq!(seqs(&mut spool), [7, 8, 9, 10]);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_full_spool_drops_the_oldest_and_counts_them() {
        let dir = temp_dir("spool-bound");
        let one = serde_json::to_vec(&heartbeat(1, t(0)))
            .unwrap_or_default()
            .len() as u64;
        // Room for three (seq 10 is one digit longer than seq 1).
        let limits = SpoolLimits::new(one * 3 + 3, Duration::from_secs(3600));
        let mut spool = open(&dir, limits, t(0));
        for seq in 1..=10 {
            append(&mut spool, seq, t(seq as i64));
        }
        assert_eq!(seqs(&mut spool), [8, 9, 10]);
        assert_eq!(spool.cursor().dropped_by_size, 7);
        drop(spool);
        let mut spool = open(&dir, limits, t(11));
        assert_eq!(seqs(&mut spool), [8, 9, 10], "the drop survives a restart");
        assert_eq!(spool.stats().dropped_by_size, 7, "and so does the counter");
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn the_newest_heartbeat_stays_even_when_it_alone_is_over_the_bound() {
        let dir = temp_dir("spool-huge");
        let mut spool = open(&dir, SpoolLimits::new(10, Duration::from_secs(3600)), t(0));
        append(&mut spool, 1, t(0));
        append(&mut spool, 2, t(0));
        assert_eq!(seqs(&mut spool), [2]);
        assert_eq!(spool.cursor().dropped_by_size, 1);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn heartbeats_older_than_the_age_bound_are_dropped_and_counted() {
        let dir = temp_dir("spool-age");
        let limits = SpoolLimits::new(1 << 20, Duration::from_secs(100));
        let mut spool = open(&dir, limits, t(0));
        for seq in 1..=3 {
            append(&mut spool, seq, t(seq as i64 * 50));
        }
        // At 150 s the heartbeat of 50 s is still inside 100 s: nothing dropped yet.
        assert_eq!(seqs(&mut spool), [1, 2, 3]);
        drop(spool);
        let mut spool = open(&dir, limits, t(220));
        assert_eq!(seqs(&mut spool), [3]);
        assert_eq!(spool.cursor().dropped_by_age, 2);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_torn_last_line_is_cut_off_and_appends_continue_cleanly() {
        let dir = temp_dir("spool-torn");
        let mut spool = open(&dir, limits(), t(0));
        append(&mut spool, 1, t(0));
        append(&mut spool, 2, t(0));
        drop(spool);
        let file = segment_files(&dir)
            .pop()
            .unwrap_or_else(|| panic!("a segment"));
        // A crash in the middle of writing heartbeat 3.
        let partial = serde_json::to_vec(&heartbeat(3, t(0))).unwrap_or_default();
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap_or_else(|e| panic!("{e}"));
        f.write_all(&partial[..partial.len() / 2])
            .unwrap_or_else(|e| panic!("{e}"));
        drop(f);
        let mut spool = open(&dir, limits(), t(0));
        assert_eq!(seqs(&mut spool), [1, 2]);
        assert_eq!(spool.cursor().dropped_corrupt, 1);
        append(&mut spool, 3, t(0));
        drop(spool);
        let mut spool = open(&dir, limits(), t(0));
        assert_eq!(seqs(&mut spool), [1, 2, 3]);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn zeros_after_a_power_loss_and_garbage_lines_never_wedge_the_spool() {
        let dir = temp_dir("spool-garbage");
        let mut spool = open(&dir, limits(), t(0));
        append(&mut spool, 1, t(0));
        drop(spool);
        let file = segment_files(&dir)
            .pop()
            .unwrap_or_else(|| panic!("a segment"));
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap_or_else(|e| panic!("{e}"));
        f.write_all(b"{\"seq\": oops}\n")
            .unwrap_or_else(|e| panic!("{e}"));
        f.write_all(&serde_json::to_vec(&heartbeat(2, t(0))).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        f.write_all(b"\n\0\0\0\0\0\0\0\0")
            .unwrap_or_else(|e| panic!("{e}"));
        drop(f);
        let mut spool = open(&dir, limits(), t(0));
        assert_eq!(seqs(&mut spool), [1, 2]);
        assert_eq!(
            spool.cursor().dropped_corrupt,
            1,
            "the garbage line; zeros are not counted"
        );
        append(&mut spool, 3, t(0));
        drop(spool);
        let mut spool = open(&dir, limits(), t(0));
        assert_eq!(seqs(&mut spool), [1, 2, 3]);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn rejected_heartbeats_are_dropped_and_counted() {
        let dir = temp_dir("spool-reject");
        let mut spool = open(&dir, limits(), t(0));
        append(&mut spool, 1, t(0));
        append(&mut spool, 2, t(0));
        spool.reject_through(1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seqs(&mut spool), [2]);
        assert_eq!(spool.stats().rejected, 1);
        let _ = fs::remove_dir_all(dir);
    }
}
