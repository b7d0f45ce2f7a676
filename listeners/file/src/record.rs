//! The listener's own durable record of what it has written, kept in its
//! private state directory. The host delivers at least once (its checkpoint
//! may lag an acknowledgement), so this record is what turns that into
//! exactly once: it says how long the output is known to be and the end
//! position of the last entry in it.
//!
//! The record is updated after every batch, so its cost is paid per batch:
//! it is a [`SlotFile`] (two slots written alternately in place, one
//! positioned write and one data sync per update; a torn write falls back
//! to the previous record), holding the record as JSON.

use std::io;
use std::path::{Path, PathBuf};

use logdaemon_sdk::durable::{self, SlotFile};
use logdaemon_sdk::Position;
use serde::{Deserialize, Serialize};

/// File name of the record inside the listener's state directory.
pub const RECORD_FILE: &str = "file.pos";
/// Size of each of the two slots.
pub const SLOT: usize = 8192;
const MAGIC: &str = "logdaemon-file-record v1";

/// What the output is known to hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The output file this record describes (as resolved at open).
    pub output: PathBuf,
    /// The output's format (`raw` or `jsonl`); a change would mix formats.
    pub format: String,
    /// Length of the output once the last recorded batch was written.
    pub output_len: u64,
    /// Length of the `<output>.gaps` file (raw format only; 0 otherwise).
    #[serde(default)]
    pub gaps_len: u64,
    /// End of the last entry (or gap) written; `None` before the first.
    pub done: Option<StoredPosition>,
}

/// [`Position`] in the record's JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredPosition {
    pub sequence: u64,
    pub offset: u64,
    pub line: u64,
}

impl From<Position> for StoredPosition {
    fn from(p: Position) -> Self {
        StoredPosition {
            sequence: p.sequence,
            offset: p.offset,
            line: p.line,
        }
    }
}

impl From<StoredPosition> for Position {
    fn from(p: StoredPosition) -> Self {
        Position {
            sequence: p.sequence,
            offset: p.offset,
            line: p.line,
        }
    }
}

/// Reading or writing the record failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} holds no valid record ({why}); it is only written by this listener: restore it from a backup, or remove it together with the output to write everything again")]
    Corrupt { path: PathBuf, why: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: the record is {len} bytes, more than a slot holds ({SLOT}); use a shorter output path")]
    TooLong { path: PathBuf, len: usize },
}

/// The record file in a state directory.
#[derive(Debug)]
pub struct RecordFile {
    slots: SlotFile,
}

impl RecordError {
    fn from_slots(e: durable::RecordError) -> RecordError {
        match e {
            durable::RecordError::Read { path, source } => RecordError::Read { path, source },
            durable::RecordError::Write { path, source } => RecordError::Write { path, source },
            durable::RecordError::Corrupt { path, why } => RecordError::Corrupt { path, why },
            durable::RecordError::TooLong { path, len, .. } => RecordError::TooLong { path, len },
        }
    }
}

impl RecordFile {
    pub fn new(state_dir: &Path) -> RecordFile {
        RecordFile {
            slots: SlotFile::new(state_dir.join(RECORD_FILE), MAGIC, SLOT),
        }
    }

    pub fn path(&self) -> &Path {
        self.slots.path()
    }

    /// Closes the file until the next store.
    pub fn close(&mut self) {
        self.slots.close();
    }

    /// Loads the newest valid record; `Ok(None)` when there is none yet.
    pub fn load(&mut self) -> Result<Option<Record>, RecordError> {
        let Some(body) = self.slots.load().map_err(RecordError::from_slots)? else {
            return Ok(None);
        };
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| RecordError::Corrupt {
                path: self.path().to_path_buf(),
                why: format!("newest slot: {e}"),
            })
    }

    /// Writes `rec` into the older slot; with `durable`, syncs it so it
    /// survives a power loss.
    pub fn store(&mut self, rec: &Record, durable: bool) -> Result<(), RecordError> {
        let body = serde_json::to_vec(rec).expect("record serializes");
        self.slots
            .store(&body, durable)
            .map_err(RecordError::from_slots)
    }
}

/// Syncs a directory so that a new file in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn rec(len: u64) -> Record {
        Record {
            output: "/x/out".into(),
            format: "raw".into(),
            output_len: len,
            gaps_len: 7,
            done: Some(StoredPosition {
                sequence: 3,
                offset: len,
                line: 4,
            }),
        }
    }

    #[test]
    fn round_trip_and_missing() {
        let d = tempfile::tempdir().unwrap();
        let mut rf = RecordFile::new(d.path());
        assert_eq!(rf.load().unwrap(), None);
        for len in [42, 50, 61] {
            rf.store(&rec(len), len != 50).unwrap();
            assert_eq!(RecordFile::new(d.path()).load().unwrap(), Some(rec(len)));
        }
        assert_eq!(fs::metadata(rf.path()).unwrap().len(), 2 * SLOT as u64);
        // A reopened file continues the generations.
        let mut rf = RecordFile::new(d.path());
        rf.load().unwrap();
        rf.store(&rec(70), true).unwrap();
        assert_eq!(RecordFile::new(d.path()).load().unwrap(), Some(rec(70)));
    }

    #[test]
    fn a_torn_slot_falls_back_to_the_other() {
        let d = tempfile::tempdir().unwrap();
        let mut rf = RecordFile::new(d.path());
        rf.store(&rec(10), true).unwrap(); // generation 1, slot 1
        rf.store(&rec(20), true).unwrap(); // generation 2, slot 0
        let mut data = fs::read(rf.path()).unwrap();
        // Tear the newest slot mid-body, as a crash during its write could.
        let body = data.iter().position(|&b| b == b'\n').unwrap() + 5;
        data[body..SLOT].fill(0);
        fs::write(rf.path(), &data).unwrap();
        assert_eq!(RecordFile::new(d.path()).load().unwrap(), Some(rec(10)));
    }

    #[test]
    fn no_valid_slot_names_the_file() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join(RECORD_FILE), b"{\"output_len\": ").unwrap();
        let e = RecordFile::new(d.path()).load().unwrap_err().to_string();
        assert!(
            e.contains("file.pos") && e.contains("no valid record") && e.contains("slot 0"),
            "{e}"
        );
    }

    #[test]
    fn a_too_long_record_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut r = rec(1);
        r.output = PathBuf::from("/".repeat(SLOT));
        let e = RecordFile::new(d.path())
            .store(&r, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("shorter output path"), "{e}");
    }
}
