//! The listener's own durable record of what it mailed, in its private
//! state directory, so that a digest the server accepted is not sent again
//! after a crash or a redelivery.
//!
//! Protocol: before a digest goes to the server its range and Message-ID
//! are written as `pending`; once the server accepted it, `sent_upto`
//! moves to the digest's end and `pending` is cleared. Each write is atomic
//! and durable (`logdaemon_sdk::durable::replace`).

use std::fs;
use std::path::{Path, PathBuf};

use logdaemon_sdk::durable;
use logdaemon_sdk::Position;
use serde::{Deserialize, Serialize};

/// The file's name inside the state directory.
pub const FILE_NAME: &str = "email-state.json";

/// A position as stored.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub sequence: u64,
    pub offset: u64,
    pub line: u64,
}

impl From<Position> for Pos {
    fn from(p: Position) -> Pos {
        Pos {
            sequence: p.sequence,
            offset: p.offset,
            line: p.line,
        }
    }
}

impl From<Pos> for Position {
    fn from(p: Pos) -> Position {
        Position {
            sequence: p.sequence,
            offset: p.offset,
            line: p.line,
        }
    }
}

/// A digest handed to the server whose acceptance is not yet recorded.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Start of its first entry.
    pub from: Pos,
    /// End of its last entry.
    pub to: Pos,
    pub message_id: String,
    pub entries: usize,
    /// Times it went out whole without an answer (or a stop came between
    /// handing it over and recording the answer). At 2 it is not sent again.
    #[serde(default)]
    pub doubts: u32,
}

/// What is on disk.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Everything ending at or before this position was mailed (or, with
    /// `on_reject = "skip"`, refused for good and reported).
    pub sent_upto: Option<Pos>,
    pub pending: Option<Pending>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}: {source}; check the state directory's permissions")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid state file ({source}); move it away to resend from the daemon's cursor (mails since the last checkpoint may then be sent twice)")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "cannot write {path}: {source}; check free space and permissions of the state directory"
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The state file of one listener.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(state_dir: &Path) -> StateFile {
        StateFile {
            path: state_dir.join(FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored record; an absent file is an empty record.
    pub fn load(&self) -> Result<Record, StateError> {
        match fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| StateError::Corrupt {
                path: self.path.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Record::default()),
            Err(source) => Err(StateError::Read {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Replaces the record atomically and durably.
    pub fn save(&self, r: &Record) -> Result<(), StateError> {
        let body = serde_json::to_vec_pretty(r).expect("state serialises");
        durable::replace(&self.path, &body, true).map_err(|e| match e {
            durable::RecordError::Write { path, source }
            | durable::RecordError::Read { path, source } => StateError::Write { path, source },
            other => StateError::Write {
                path: self.path.clone(),
                source: std::io::Error::other(other.to_string()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_absent_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateFile::new(dir.path());
        assert_eq!(s.load().unwrap(), Record::default());
        let r = Record {
            sent_upto: Some(Pos {
                sequence: 3,
                offset: 100,
                line: 4,
            }),
            pending: Some(Pending {
                from: Pos {
                    sequence: 3,
                    offset: 100,
                    line: 4,
                },
                to: Pos {
                    sequence: 3,
                    offset: 180,
                    line: 6,
                },
                message_id: "<x@y>".into(),
                entries: 2,
                doubts: 1,
            }),
        };
        s.save(&r).unwrap();
        assert_eq!(s.load().unwrap(), r);
        assert!(!dir.path().join("email-state.json.tmp").exists());
    }

    #[test]
    fn corrupt_file_names_the_path_and_the_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateFile::new(dir.path());
        fs::write(s.path(), b"{not json").unwrap();
        let e = s.load().unwrap_err().to_string();
        assert!(
            e.contains("email-state.json") && e.contains("move it away"),
            "{e}"
        );
    }
}
