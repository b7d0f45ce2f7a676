//! Durable side records a listener keeps in its state directory (what it
//! wrote, sent or shipped), written so that a crash at any moment leaves
//! either the old record or the new one, never a mix.
//!
//! Two ways, by how often the record changes:
//!
//! - [`SlotFile`], for a record updated after every batch: two fixed-size
//!   slots written alternately in place, each with a generation number and
//!   a checksum. An update is one positioned write and (when durable) one
//!   data sync; a write torn by a crash leaves a slot whose checksum fails,
//!   and the other slot, the previous record, is read.
//! - [`replace`], for a record written now and then: a new file in the same
//!   directory renamed over the old one, with (when durable) the file and
//!   the directory synced.
//!
//! Both take and give bytes: what they hold (JSON, text) is the listener's.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Reading or writing a record failed; every message names the file.
#[derive(Debug)]
pub enum RecordError {
    Read {
        path: PathBuf,
        source: io::Error,
    },
    Write {
        path: PathBuf,
        source: io::Error,
    },
    /// No slot holds a whole record; `why` says what each slot held.
    Corrupt {
        path: PathBuf,
        why: String,
    },
    /// The record does not fit in a slot.
    TooLong {
        path: PathBuf,
        len: usize,
        slot: usize,
    },
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            RecordError::Write { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
            RecordError::Corrupt { path, why } => {
                write!(f, "{} holds no valid record ({why})", path.display())
            }
            RecordError::TooLong { path, len, slot } => write!(
                f,
                "cannot write {}: the record is {len} bytes, more than a slot holds ({slot})",
                path.display()
            ),
        }
    }
}

impl std::error::Error for RecordError {}

/// 64-bit FNV-1a: enough to tell a torn slot from a whole one.
fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A record file of two slots of `slot` bytes, each
/// `MAGIC gen=G len=N sum=S\n` followed by N bytes of body.
#[derive(Debug)]
pub struct SlotFile {
    path: PathBuf,
    magic: &'static str,
    slot: usize,
    file: Option<File>,
    /// Generation of the newest valid slot (0: none yet).
    generation: u64,
}

impl SlotFile {
    /// The record at `path`, whose slots start with `magic` and are `slot`
    /// bytes long. Nothing is read before [`SlotFile::load`].
    pub fn new(path: PathBuf, magic: &'static str, slot: usize) -> SlotFile {
        SlotFile {
            path,
            magic,
            slot,
            file: None,
            generation: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the file; the next [`SlotFile::store`] opens it again.
    pub fn close(&mut self) {
        self.file = None;
    }

    /// The body of the newest whole slot; `Ok(None)` when there is no file yet.
    pub fn load(&mut self) -> Result<Option<Vec<u8>>, RecordError> {
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
        let mut best: Option<(u64, &[u8])> = None;
        let mut why = Vec::new();
        for (i, slot) in data.chunks(self.slot).take(2).enumerate() {
            match self.parse_slot(slot) {
                Ok((g, body)) if !matches!(best, Some((b, _)) if b >= g) => best = Some((g, body)),
                Ok(_) => {}
                Err(e) => why.push(format!("slot {i}: {e}")),
            }
        }
        match best {
            Some((g, body)) => {
                self.generation = g;
                Ok(Some(body.to_vec()))
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

    fn parse_slot<'s>(&self, slot: &'s [u8]) -> Result<(u64, &'s [u8]), String> {
        let nl = slot.iter().position(|&b| b == b'\n').ok_or("no header")?;
        let header = std::str::from_utf8(&slot[..nl]).map_err(|_| "header is not text")?;
        let mut it = header
            .strip_prefix(self.magic)
            .ok_or("unknown header")?
            .split_whitespace();
        let mut field = |name: &str| -> Result<u64, String> {
            let kv = it.next().ok_or(format!("no {name}"))?;
            let v = kv
                .strip_prefix(name)
                .and_then(|v| v.strip_prefix('='))
                .ok_or(format!("no {name}"))?;
            let radix = if name == "sum" { 16 } else { 10 };
            u64::from_str_radix(v, radix).map_err(|e| e.to_string())
        };
        let (generation, len, sum) = (field("gen")?, field("len")? as usize, field("sum")?);
        let body = slot.get(nl + 1..nl + 1 + len).ok_or("cut short")?;
        if checksum(body) != sum {
            return Err("checksum mismatch".into());
        }
        Ok((generation, body))
    }

    /// Writes `body` into the older slot; with `durable`, syncs it (and a
    /// newly created file's directory) so that it survives a power loss.
    pub fn store(&mut self, body: &[u8], durable: bool) -> Result<(), RecordError> {
        let werr = |source| RecordError::Write {
            path: self.path.clone(),
            source,
        };
        let generation = self.generation + 1;
        let mut slot = format!(
            "{} gen={generation} len={} sum={:016x}\n",
            self.magic,
            body.len(),
            checksum(body)
        )
        .into_bytes();
        slot.extend_from_slice(body);
        if slot.len() > self.slot {
            return Err(RecordError::TooLong {
                path: self.path.clone(),
                len: slot.len(),
                slot: self.slot,
            });
        }
        slot.resize(self.slot, 0);
        if self.file.is_none() {
            let created = !self.path.exists();
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&self.path)
                .map_err(werr)?;
            if created && durable {
                f.sync_all().map_err(werr)?;
                sync_parent(&self.path).map_err(werr)?;
            }
            self.file = Some(f);
        }
        let f = self.file.as_ref().expect("opened above");
        f.write_all_at(&slot, (generation % 2) * self.slot as u64)
            .map_err(werr)?;
        if durable {
            f.sync_data().map_err(werr)?;
        }
        self.generation = generation;
        Ok(())
    }
}

/// Syncs the directory holding `path`, so that a new name in it is durable.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Replaces the file at `path` with `body` atomically: a new file beside it
/// (mode 0600, created exclusively) renamed over it. With `durable`, the
/// new file and the directory are synced, so the new record survives a
/// power loss; without, a power loss may leave the old record (never a mix).
pub fn replace(path: &Path, body: &[u8], durable: bool) -> Result<(), RecordError> {
    let werr = |source| RecordError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A temporary file left by a crash is ours to replace.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(werr(e)),
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(werr)?;
    f.write_all(body).map_err(werr)?;
    if durable {
        f.sync_all().map_err(werr)?;
    }
    drop(f);
    fs::rename(&tmp, path).map_err(werr)?;
    if durable {
        sync_parent(path).map_err(werr)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const MAGIC: &str = "test-record v1";

    #[test]
    fn slots_round_trip_and_continue_their_generations() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r");
        let mut s = SlotFile::new(p.clone(), MAGIC, 256);
        assert_eq!(s.load().unwrap(), None);
        for body in [&b"one"[..], b"two", b"three"] {
            s.store(body, true).unwrap();
            let got = SlotFile::new(p.clone(), MAGIC, 256).load().unwrap();
            assert_eq!(got.as_deref(), Some(body));
        }
        assert_eq!(fs::metadata(&p).unwrap().len(), 512);
        let mut s = SlotFile::new(p.clone(), MAGIC, 256);
        s.load().unwrap();
        s.store(b"four", false).unwrap();
        let got = SlotFile::new(p.clone(), MAGIC, 256).load().unwrap();
        assert_eq!(got.as_deref(), Some(&b"four"[..]));
    }

    #[test]
    fn a_torn_slot_falls_back_to_the_other_and_none_whole_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r");
        let mut s = SlotFile::new(p.clone(), MAGIC, 256);
        s.store(b"older", true).unwrap(); // generation 1, slot 1
        s.store(b"newer", true).unwrap(); // generation 2, slot 0
        let mut data = fs::read(&p).unwrap();
        let body = data.iter().position(|&b| b == b'\n').unwrap() + 2;
        data[body..256].fill(0);
        fs::write(&p, &data).unwrap();
        let got = SlotFile::new(p.clone(), MAGIC, 256).load().unwrap();
        assert_eq!(got.as_deref(), Some(&b"older"[..]));
        fs::write(&p, b"garbage").unwrap();
        let e = SlotFile::new(p.clone(), MAGIC, 256).load().unwrap_err();
        assert!(matches!(e, RecordError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("slot 0: no header"), "{e}");
        let e = s.store(&[b'x'; 300], true).unwrap_err();
        assert!(
            matches!(e, RecordError::TooLong { len, .. } if len > 300),
            "{e}"
        );
    }

    #[test]
    fn replace_swaps_the_whole_file_private_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        // A temporary left by a crash does not stop the next write.
        fs::write(d.path().join("state.json.tmp"), b"torn").unwrap();
        replace(&p, b"first", true).unwrap();
        replace(&p, b"second", false).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!d.path().join("state.json.tmp").exists());
        let e = replace(&d.path().join("no/such/dir"), b"x", true).unwrap_err();
        assert!(e.to_string().contains("no/such/dir"), "{e}");
    }
}
