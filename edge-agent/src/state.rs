//! The agent's identity and sequence, kept in its state directory across restarts.
//!
//! - `instance_id`: a UUID v4, created once. It names the agent's sequence space on the server
//!   (SPEC section 3); losing it makes a new instance that starts again at seq 1.
//! - `next_seq`: the seq the next heartbeat gets. It is written (and fsynced) *before* a
//!   heartbeat with the previous value goes to the spool, so a crash can leave a gap (which the
//!   server accepts) but never hands out the same seq twice (which the server would drop as a
//!   duplicate).
//!
//! Both files are written whole to a temporary file, fsynced and renamed over the old one, and
//! the directory is fsynced: after a crash each file holds either the old or the new value.

use anyhow::Context;
use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};
use uuid::Uuid;

/// The persisted identity and sequence counter.
#[derive(Debug)]
pub struct AgentState {
    dir: PathBuf,
    instance_id: Uuid,
    next_seq: u64,
    /// Whether `instance_id` was created by this `open` (a new sequence space).
    created: bool,
}

impl AgentState {
    /// Opens (or creates) the state in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
        let id_path = dir.join("instance_id");
        let (instance_id, created) = match fs::read_to_string(&id_path) {
            Ok(text) => (
                text.trim().parse::<Uuid>().with_context(|| {
                    format!(
                        "{} does not hold a UUID; move it away to start as a new agent instance",
                        id_path.display()
                    )
                })?,
                false,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = Uuid::new_v4();
                // A new identity starts a new sequence: forget any old counter first.
                write_atomically(dir, "next_seq", b"1\n")?;
                write_atomically(dir, "instance_id", format!("{id}\n").as_bytes())?;
                (id, true)
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", id_path.display()));
            }
        };
        let seq_path = dir.join("next_seq");
        let next_seq = match fs::read_to_string(&seq_path) {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .with_context(|| format!("{} does not hold a number", seq_path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", seq_path.display()));
            }
        };
        Ok(Self {
            dir: dir.to_owned(),
            instance_id,
            next_seq: next_seq.max(1),
            created,
        })
    }

    pub fn instance_id(&self) -> Uuid {
        self.instance_id
    }

    /// Whether this instance id was created just now.
    pub fn is_new(&self) -> bool {
        self.created
    }

    /// The seq the next heartbeat will get.
    pub fn peek_next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Makes sure the next seq is above `seq` (e.g. the newest one found in the spool).
    pub fn ensure_above(&mut self, seq: u64) -> anyhow::Result<()> {
        if self.next_seq <= seq {
            self.store_next(seq + 1)?;
        }
        Ok(())
    }

    /// Hands out the next seq, persisting its successor first.
    pub fn allocate_seq(&mut self) -> anyhow::Result<u64> {
        let seq = self.next_seq;
        self.store_next(seq + 1)?;
        Ok(seq)
    }

    fn store_next(&mut self, next: u64) -> anyhow::Result<()> {
        write_atomically(&self.dir, "next_seq", format!("{next}\n").as_bytes())?;
        self.next_seq = next;
        Ok(())
    }
}

/// Writes `dir/name` so that after a crash it holds either the old or the new bytes.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let mut file =
        fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(file);
    fs::rename(&tmp, &target).with_context(|| format!("cannot replace {}", target.display()))?;
    sync_dir(dir)
}

/// fsyncs a directory, so that a file created or renamed in it survives a crash.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync the directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_dir;

    #[test]
    fn the_instance_id_is_created_once_and_kept() {
        let dir = temp_dir("state-id");
        let first = AgentState::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(first.is_new());
        let again = AgentState::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(!again.is_new());
        assert_eq!(first.instance_id(), again.instance_id());
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn the_sequence_continues_across_restarts() {
        let dir = temp_dir("state-seq");
        let mut state = AgentState::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        let seqs: Vec<u64> = (0..3)
            .map(|_| state.allocate_seq().unwrap_or_else(|e| panic!("{e}")))
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        drop(state);
        let mut state = AgentState::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(state.allocate_seq().unwrap_or_else(|e| panic!("{e}")), 4);
        state.ensure_above(10).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(state.allocate_seq().unwrap_or_else(|e| panic!("{e}")), 11);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_corrupt_instance_id_is_an_error_not_a_new_identity() {
        let dir = temp_dir("state-corrupt");
        fs::write(dir.join("instance_id"), "not a uuid").unwrap_or_else(|e| panic!("{e}"));
        let err = AgentState::open(&dir).err().map(|e| format!("{e:#}"));
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("does not hold a UUID")),
            "{err:?}"
        );
        let _ = fs::remove_dir_all(dir);
    }
}
