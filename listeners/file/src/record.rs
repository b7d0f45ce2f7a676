//! The listener's own durable record of what it has written, kept in its
//! private state directory. The host delivers at least once (its checkpoint
//! may lag an acknowledgement), so this record is what turns that into
//! exactly once: it says how long the output is known to be and the end
//! position of the last entry in it.
//!
//! The record is updated after every batch, so its cost is paid per batch.
//! Instead of a temporary file renamed over the old one (two syncs: the file
//! and its directory), the record file holds two fixed-size slots written
//! alternately in place, each with a generation number and a checksum. An
//! update is one positioned write and one data sync; a write torn by a crash
//! leaves a slot whose checksum fails, and the other slot, the previous
//! record, is used.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

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
    path: PathBuf,
    dir: PathBuf,
    file: Option<File>,
    /// Generation of the newest valid slot (0: none yet).
    generation: u64,
}

/// 64-bit FNV-1a: enough to tell a torn slot from a whole one.
fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Parses one slot: `MAGIC gen=G len=N sum=S\n` then N bytes of JSON.
fn parse_slot(slot: &[u8]) -> Result<(u64, Record), String> {
    let nl = slot.iter().position(|&b| b == b'\n').ok_or("no header")?;
    let header = std::str::from_utf8(&slot[..nl]).map_err(|_| "header is not text")?;
    let mut it = header
        .strip_prefix(MAGIC)
        .ok_or("unknown header")?
        .split_whitespace();
    let mut field = |name: &str| -> Result<u64, String> {
        let kv = it.next().ok_or(format!("no {name}"))?;
        let v = kv
            .strip_prefix(name)
            .and_then(|v| v.strip_prefix('='))
            .ok_or(format!("no {name}"))?;
        if name == "sum" {
            u64::from_str_radix(v, 16).map_err(|e| e.to_string())
        } else {
            v.parse()
                .map_err(|e: std::num::ParseIntError| e.to_string())
        }
    };
    let (generation, len, sum) = (field("gen")?, field("len")? as usize, field("sum")?);
    let body = slot.get(nl + 1..nl + 1 + len).ok_or("cut short")?;
    if checksum(body) != sum {
        return Err("checksum mismatch".into());
    }
    let rec = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok((generation, rec))
}

impl RecordFile {
    pub fn new(state_dir: &Path) -> RecordFile {
        RecordFile {
            path: state_dir.join(RECORD_FILE),
            dir: state_dir.to_path_buf(),
            file: None,
            generation: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the newest valid record; `Ok(None)` when there is none yet.
    pub fn load(&mut self) -> Result<Option<Record>, RecordError> {
        let data = match fs::read(&self.path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(RecordError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let mut best: Option<(u64, Record)> = None;
        let mut why = Vec::new();
        for (i, slot) in data.chunks(SLOT).take(2).enumerate() {
            match parse_slot(slot) {
                Ok((g, r)) => {
                    if !matches!(&best, Some((b, _)) if *b >= g) {
                        best = Some((g, r));
                    }
                }
                Err(e) => why.push(format!("slot {i}: {e}")),
            }
        }
        match best {
            Some((g, r)) => {
                self.generation = g;
                Ok(Some(r))
            }
            None => Err(RecordError::Corrupt {
                path: self.path.clone(),
                why: if why.is_empty() {
                    "empty".into()
                } else {
                    why.join(", ")
                },
            }),
        }
    }

    /// Writes `rec` into the older slot; with `durable`, syncs it so it
    /// survives a power loss.
    pub fn store(&mut self, rec: &Record, durable: bool) -> Result<(), RecordError> {
        let werr = |source| RecordError::Write {
            path: self.path.clone(),
            source,
        };
        let body = serde_json::to_vec(rec).expect("record serializes");
        let generation = self.generation + 1;
        let mut slot = format!(
            "{MAGIC} gen={generation} len={} sum={:016x}\n",
            body.len(),
            checksum(&body)
        )
        .into_bytes();
        slot.extend_from_slice(&body);
        if slot.len() > SLOT {
            return Err(RecordError::TooLong {
                path: self.path.clone(),
                len: slot.len(),
            });
        }
        slot.resize(SLOT, 0);
        if self.file.is_none() {
            let created = !self.path.exists();
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.path)
                .map_err(werr)?;
            if created && durable {
                f.sync_all().map_err(werr)?;
                sync_dir(&self.dir).map_err(werr)?;
            }
            self.file = Some(f);
        }
        let f = self.file.as_ref().expect("opened above");
        f.write_all_at(&slot, (generation % 2) * SLOT as u64)
            .map_err(werr)?;
        if durable {
            f.sync_data().map_err(werr)?;
        }
        self.generation = generation;
        Ok(())
    }
}

/// Syncs a directory so that a new file in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
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
