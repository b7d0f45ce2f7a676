//! The listener's own durable record of what it has written, kept in its
//! private state directory. The host delivers at least once (its checkpoint
//! may lag an acknowledgement), so this record is what turns that into
//! exactly once: it says how long the output is known to be and the end
//! position of the last entry in it.
//!
//! The record is replaced atomically (write a temporary file, sync it, rename
//! it over the old one, sync the directory), so after a crash it is either
//! the old or the new record, never a mix.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use logdaemon_sdk::Position;
use serde::{Deserialize, Serialize};

/// File name of the record inside the listener's state directory.
pub const RECORD_FILE: &str = "file.pos";

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
        StoredPosition { sequence: p.sequence, offset: p.offset, line: p.line }
    }
}

impl From<StoredPosition> for Position {
    fn from(p: StoredPosition) -> Self {
        Position { sequence: p.sequence, offset: p.offset, line: p.line }
    }
}

/// Reading or writing the record failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a valid record ({why}); it is only written by this listener: restore it from a backup, or remove it together with the output to write everything again")]
    Corrupt { path: PathBuf, why: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// The record file in `state_dir`, and how durably to replace it.
#[derive(Debug, Clone)]
pub struct RecordFile {
    path: PathBuf,
    tmp: PathBuf,
    dir: PathBuf,
}

impl RecordFile {
    pub fn new(state_dir: &Path) -> RecordFile {
        RecordFile {
            path: state_dir.join(RECORD_FILE),
            tmp: state_dir.join(format!("{RECORD_FILE}.tmp")),
            dir: state_dir.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the record; `Ok(None)` when there is none yet.
    pub fn load(&self) -> Result<Option<Record>, RecordError> {
        let text = match fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(RecordError::Read { path: self.path.clone(), source }),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| RecordError::Corrupt { path: self.path.clone(), why: e.to_string() })
    }

    /// Replaces the record atomically; with `durable`, also syncs the new
    /// record and the directory so it survives a power loss.
    pub fn store(&self, rec: &Record, durable: bool) -> Result<(), RecordError> {
        let werr = |source| RecordError::Write { path: self.path.clone(), source };
        let mut text = serde_json::to_vec(rec).expect("record serializes");
        text.push(b'\n');
        let mut f = File::create(&self.tmp).map_err(werr)?;
        f.write_all(&text).map_err(werr)?;
        if durable {
            f.sync_all().map_err(werr)?;
        }
        drop(f);
        fs::rename(&self.tmp, &self.path).map_err(werr)?;
        if durable {
            sync_dir(&self.dir).map_err(werr)?;
        }
        Ok(())
    }
}

/// Syncs a directory so that a rename or a new file in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing() {
        let d = tempfile::tempdir().unwrap();
        let rf = RecordFile::new(d.path());
        assert_eq!(rf.load().unwrap(), None);
        let rec = Record {
            output: "/x/out".into(),
            format: "raw".into(),
            output_len: 42,
            gaps_len: 7,
            done: Some(StoredPosition { sequence: 3, offset: 99, line: 4 }),
        };
        rf.store(&rec, true).unwrap();
        assert_eq!(rf.load().unwrap(), Some(rec.clone()));
        let rec2 = Record { output_len: 50, ..rec };
        rf.store(&rec2, false).unwrap();
        assert_eq!(rf.load().unwrap(), Some(rec2));
        assert!(!d.path().join("file.pos.tmp").exists());
    }

    #[test]
    fn corrupt_record_names_the_file() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join(RECORD_FILE), b"{\"output_len\": ").unwrap();
        let e = RecordFile::new(d.path()).load().unwrap_err().to_string();
        assert!(e.contains("file.pos") && e.contains("not a valid record"), "{e}");
    }
}
