//! How far a listener is behind, read from the files on disk.
//!
//! Lag in bytes is everything on disk the listener has not acknowledged:
//! the rest of the file its cursor is in, every later rotated file, and the
//! live file. A compressed file counts with its size on disk (its offsets
//! are those of the uncompressed stream, which would need a full read).
//!
//! Lag in seconds is the age of the oldest unacknowledged entry: from the
//! entry's own time where the format has one (a p4 transaction marker,
//! the first found from the cursor on; a line log's `[journal.timestamp]`),
//! otherwise from the modification time of the file that holds it, which
//! makes it a lower bound.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use logdaemon_state::Cursor;

use crate::config::JournalConfig;
use crate::format::{frame_all, Format};
use crate::replay::family;
use crate::replay::timestamp::{p4_marker_time, TimestampSpec, YearHint};

/// Most bytes read from the cursor on to find the time of an entry.
const TIME_WINDOW: u64 = 256 * 1024;

/// A journal's files now, oldest first, the live file last: names and
/// `stat` only (the status is built every second; only the file at a
/// cursor is opened).
pub struct Files {
    members: Vec<Member>,
}

/// One file of the history.
struct Member {
    path: PathBuf,
    /// As replay numbers them (p4: the journal number).
    sequence: u64,
    len: u64,
    mtime: Option<SystemTime>,
    dev: u64,
    ino: u64,
    live: bool,
}

/// How far one cursor is behind.
#[derive(Debug, Clone, PartialEq)]
pub struct Lag {
    pub bytes: u64,
    pub seconds: f64,
    /// The file the cursor is in.
    pub file: PathBuf,
}

/// A journal's files by name, listed again only when its directory
/// changed (its modification time moves with every name added, removed or
/// renamed): the status is taken every second, and listing a directory of
/// thousands of logs for each of them made it cost the square of their
/// number.
fn cached_listing(j: &JournalConfig) -> std::io::Result<Vec<(PathBuf, u64)>> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    type Listing = (Option<std::time::SystemTime>, Vec<(PathBuf, u64)>);
    static CACHE: Mutex<Option<HashMap<PathBuf, Listing>>> = Mutex::new(None);
    let dir = j.path.parent().unwrap_or(Path::new("."));
    // The live file appearing or going changes the directory's time too.
    let stamp = std::fs::metadata(dir).ok().and_then(|m| m.modified().ok());
    {
        let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, names)) = cache.as_ref().and_then(|c| c.get(&j.path)) {
            if stamp.is_some() && *s == stamp {
                return Ok(names.clone());
            }
        }
    }
    let began = std::time::SystemTime::now();
    let names = family::listing(j)?;
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    // Kept only when listed well after the directory's last change: a
    // change in the same tick of its clock would leave its time as it was.
    let settled = stamp
        .and_then(|s| began.duration_since(s).ok())
        .is_some_and(|d| d >= std::time::Duration::from_millis(100));
    if settled {
        cache.insert(j.path.clone(), (stamp, names.clone()));
    } else {
        cache.remove(&j.path);
    }
    Ok(names)
}

impl Files {
    pub fn list(j: &JournalConfig) -> Result<Files, String> {
        let dir = j.path.parent().unwrap_or(Path::new("."));
        let names = cached_listing(j).map_err(|e| {
            format!(
                "journal {:?}: cannot list {}: {e}; check that the directory exists and is readable",
                j.name,
                dir.display()
            )
        })?;
        let members = names
            .into_iter()
            .filter_map(|(path, sequence)| {
                // A file gone since the listing (rotated meanwhile) is left out.
                let md = std::fs::metadata(&path).ok()?;
                Some(Member {
                    live: path == j.path,
                    path,
                    sequence,
                    len: md.len(),
                    mtime: md.modified().ok(),
                    dev: md.dev(),
                    ino: md.ino(),
                })
            })
            .collect();
        Ok(Files { members })
    }

    /// The live file and its size, when it exists.
    pub fn live(&self) -> Option<(&PathBuf, u64)> {
        self.members
            .iter()
            .find(|m| m.live)
            .map(|m| (&m.path, m.len))
    }

    /// How many rotated files are on disk.
    pub fn rotated(&self) -> usize {
        self.members.iter().filter(|m| !m.live).count()
    }

    /// Where `c` is among the files: by device and inode, else (p4, whose
    /// files carry their journal number) by sequence. `None`: the file is
    /// gone or cannot be told (a line log's file renamed and compressed).
    fn find(&self, j: &JournalConfig, c: &Cursor) -> Option<usize> {
        if let Some(id) = &c.identity {
            let by_inode = self
                .members
                .iter()
                .position(|m| m.dev == id.dev && m.ino == id.inode);
            if by_inode.is_some() {
                return by_inode;
            }
        }
        if matches!(j.format, Format::P4) {
            return self.members.iter().position(|m| m.sequence == c.sequence);
        }
        None
    }

    /// The lag of `c`, or `None` when its file cannot be found.
    pub fn lag(
        &self,
        j: &JournalConfig,
        spec: Option<&TimestampSpec>,
        c: &Cursor,
        now: SystemTime,
    ) -> Option<Lag> {
        let at = match self.find(j, c) {
            Some(i) => i,
            // No file at all: nothing on disk is unacknowledged.
            None if self.members.is_empty() => {
                return Some(Lag {
                    bytes: 0,
                    seconds: 0.0,
                    file: j.path.clone(),
                })
            }
            None => return None,
        };
        let here = &self.members[at];
        // The live file is the one being written: never compressed, and
        // not opened to be told so (every journal's status, every second).
        let rest = if here.live || plain(&here.path) {
            here.len.saturating_sub(c.offset)
        } else {
            here.len
        };
        let later: u64 = self.members[at + 1..].iter().map(|m| m.len).sum();
        let bytes = rest + later;
        let seconds = if bytes == 0 {
            0.0
        } else {
            // The oldest unacknowledged entry: at the cursor, or at the
            // start of the next file with bytes.
            let (m, offset) = if rest > 0 {
                (here, c.offset)
            } else {
                let next = self.members[at + 1..].iter().find(|m| m.len > 0)?;
                (next, 0)
            };
            let written = entry_time(j, spec, m, offset).or(m.mtime);
            written
                .and_then(|t| now.duration_since(t).ok())
                .map_or(0.0, |d| d.as_secs_f64())
        };
        Some(Lag {
            bytes,
            seconds,
            file: here.path.clone(),
        })
    }
}

/// Whether `path` is plain (not compressed): its offsets are its bytes.
fn plain(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return true;
    };
    let mut magic = [0u8; crate::compress::MAGIC_LEN];
    let n = crate::identity::read_full_at(&f, &mut magic, 0).unwrap_or(0);
    crate::compress::detect(&magic[..n]) == crate::compress::Compression::None
}

/// The time of the first entry at or after `offset` in `m` that carries
/// one, within [`TIME_WINDOW`] bytes (plain files only). The first 16 KiB
/// are tried alone: a p4 transaction marker is rarely further, and the
/// endpoint may build this ten times a second during a catch-up.
fn entry_time(
    j: &JournalConfig,
    spec: Option<&TimestampSpec>,
    m: &Member,
    offset: u64,
) -> Option<SystemTime> {
    if (spec.is_none() && !matches!(j.format, Format::P4)) || !plain(&m.path) {
        return None;
    }
    let mut f = File::open(&m.path).ok()?;
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset)).ok()?;
    let mut buf = Vec::new();
    for window in [16 * 1024, TIME_WINDOW] {
        let more = window - buf.len() as u64;
        let got = (&mut f).take(more).read_to_end(&mut buf).ok()? as u64;
        if let Some(t) = first_time(j, spec, m, &buf) {
            return Some(t);
        }
        if got < more || spec.is_some() {
            break;
        }
    }
    None
}

/// The time of the first complete record of `buf` that has one (a line
/// log: of its first record only).
fn first_time(
    j: &JournalConfig,
    spec: Option<&TimestampSpec>,
    m: &Member,
    buf: &[u8],
) -> Option<SystemTime> {
    for (start, len, incomplete) in frame_all(&j.format, buf) {
        if incomplete {
            return None;
        }
        let record = &buf[start..start + len];
        let t = match spec {
            Some(s) => s.time_of(record, YearHint(m.mtime)).ok().flatten(),
            None => p4_marker_time(record),
        };
        if let Some(t) = t {
            return Some(SystemTime::from(t));
        }
        if spec.is_some() {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cursor(sequence: u64, offset: u64) -> Cursor {
        Cursor {
            sequence,
            offset,
            line: 1,
            identity: None,
        }
    }

    #[test]
    fn p4_lag_is_the_rest_of_the_file_and_every_later_one_timed_by_its_marker() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("journal.7"), b"@pv@ 0 @db.x@ @a@ \n").unwrap();
        let tx = b"@pv@ 0 @db.x@ @b@ \n@ex@ 42 1700000000\n";
        std::fs::write(d.path().join("journal.8"), tx).unwrap();
        std::fs::write(d.path().join("journal"), b"@pv@ 0 @db.x@ @c@ \n").unwrap();
        let j = JournalConfig::for_test("p4", &d.path().join("journal"), Format::P4);
        let files = Files::list(&j).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        let lag = files.lag(&j, None, &cursor(8, 0), now).unwrap();
        assert_eq!(lag.bytes, tx.len() as u64 + 19);
        assert_eq!(lag.seconds, 100.0, "from the @ex@ marker");
        assert!(lag.file.ends_with("journal.8"));
        // At the end of journal.8: only the live file is left, and it has
        // no marker: its modification time.
        let lag = files
            .lag(&j, None, &cursor(8, tx.len() as u64), SystemTime::now())
            .unwrap();
        assert_eq!(lag.bytes, 19);
        assert!(lag.seconds < 60.0, "{lag:?}");
        let lag = files.lag(&j, None, &cursor(9, 19), now).unwrap();
        assert_eq!((lag.bytes, lag.seconds), (0, 0.0));
    }

    #[test]
    fn a_marker_past_the_first_window_is_found_and_a_cut_one_is_not_taken() {
        let d = tempfile::tempdir().unwrap();
        let mut text = "@pv@ 0 @db.x@ @a@ \n".repeat(2000); // 38 KB
        text.push_str("@ex@ 42 1700000000\n");
        std::fs::write(d.path().join("journal"), &text).unwrap();
        let j = JournalConfig::for_test("p4", &d.path().join("journal"), Format::P4);
        let files = Files::list(&j).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_010);
        let lag = files.lag(&j, None, &cursor(1, 0), now).unwrap();
        assert_eq!(lag.seconds, 10.0);
        // The marker without its end of line could be cut mid-number.
        std::fs::write(d.path().join("journal"), "@ex@ 42 17000").unwrap();
        let files = Files::list(&j).unwrap();
        let lag = files
            .lag(&j, None, &cursor(1, 0), SystemTime::now())
            .unwrap();
        assert!(
            lag.seconds < 60.0,
            "from the file time, not year 1970: {lag:?}"
        );
    }

    #[test]
    fn a_compressed_file_counts_with_its_size_on_disk() {
        let d = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &b"@pv@ 0 @db.x@ @a@ \n".repeat(100)).unwrap();
        let gz = gz.finish().unwrap();
        std::fs::write(d.path().join("journal.3.gz"), &gz).unwrap();
        std::fs::write(d.path().join("journal"), b"@pv@ 0 @db.x@ @c@ \n").unwrap();
        let j = JournalConfig::for_test("p4", &d.path().join("journal"), Format::P4);
        let files = Files::list(&j).unwrap();
        assert_eq!(files.rotated(), 1);
        assert_eq!(files.live().map(|(_, n)| n), Some(19));
        // Offset 190 of the uncompressed stream: the whole file still counts.
        let lag = files
            .lag(&j, None, &cursor(3, 190), SystemTime::now())
            .unwrap();
        assert_eq!(lag.bytes, gz.len() as u64 + 19);
        assert!(lag.file.ends_with("journal.3.gz"));
    }

    #[test]
    fn a_line_log_takes_the_time_of_its_entry_and_a_lost_file_cannot_be_told() {
        let d = tempfile::tempdir().unwrap();
        let live = d.path().join("app.log");
        std::fs::write(
            &live,
            b"2026-12-07T05:00:00Z one\n2026-12-07T05:10:00Z two\n",
        )
        .unwrap();
        let j = JournalConfig::for_test("a", &live, Format::Lines { record_start: None });
        let spec = TimestampSpec::new(
            Some(crate::replay::timestamp::Preset::Rfc3339),
            None,
            None,
            Some("UTC"),
        )
        .unwrap();
        let files = Files::list(&j).unwrap();
        let id = crate::identity::compute(&live, 25).ok();
        let mut c = cursor(1, 25);
        c.identity = id;
        let now: SystemTime = "2026-12-07T05:20:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .into();
        let lag = files.lag(&j, Some(&spec), &c, now).unwrap();
        assert_eq!(lag.bytes, 25);
        assert_eq!(lag.seconds, 600.0);
        assert_eq!(files.lag(&j, Some(&spec), &cursor(1, 0), now), None);
    }
}
