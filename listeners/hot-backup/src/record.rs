//! The listener's own durable memory, in its private state directory: which
//! standby it feeds, and where the standby's journal ended after the last
//! batch that was acknowledged by the standby, with a hash of the last
//! bytes sent. On every connect the standby is checked against it, so a
//! standby that was swapped, restored or edited is noticed before one more
//! byte is appended to it.

use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use crate::error::{fatal, Result};

/// How many trailing bytes are hashed.
pub const TAIL: usize = 4096;

const HEADER: &str = "logdaemon-hot-backup-state 1";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// `user@host:port:remote_dir`: a record for another standby is ignored.
    pub target: String,
    pub sequence: u64,
    /// Size of the standby's file of that sequence.
    pub size: u64,
    /// How many bytes before `size` the hash covers (≤ [`TAIL`]).
    pub tail_len: u64,
    pub tail_hash: u64,
    /// The running POSIX `cksum` state of the file's first `size` bytes,
    /// when every one of them is known (see [`crate::cksum`]).
    pub cksum: Option<u32>,
}

impl Record {
    pub fn new(target: &str, sequence: u64, size: u64, tail: &[u8], cksum: Option<u32>) -> Record {
        Record {
            target: target.to_string(),
            sequence,
            size,
            tail_len: tail.len() as u64,
            tail_hash: xxh3_64(tail),
            cksum,
        }
    }

    pub fn matches_tail(&self, bytes: &[u8]) -> bool {
        bytes.len() as u64 == self.tail_len && xxh3_64(bytes) == self.tail_hash
    }
}

/// Where the record lives.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("standby.state")
}

/// Reads the record; `None` when there is none yet.
pub fn load(p: &Path) -> Result<Option<Record>> {
    let text = match std::fs::read_to_string(p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fatal(format!("cannot read {}: {e}", p.display()))),
    };
    let bad = |why: &str| {
        fatal(format!(
            "{} is damaged ({why}); if the standby is known to be intact, delete the file and the listener re-checks the standby against the journal",
            p.display()
        ))
    };
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(bad("unknown header"));
    }
    let mut get = |key: &str| -> Result<String> {
        let line = lines
            .next()
            .ok_or_else(|| bad(&format!("missing `{key}`")))?;
        line.strip_prefix(key)
            .and_then(|r| r.strip_prefix(' '))
            .map(str::to_string)
            .ok_or_else(|| bad(&format!("expected `{key}`, found `{line}`")))
    };
    let target = get("target")?;
    let num = |s: String, k: &str| {
        s.parse::<u64>()
            .map_err(|_| bad(&format!("`{k}` is not a number")))
    };
    let sequence = num(get("sequence")?, "sequence")?;
    let size = num(get("size")?, "size")?;
    let tail_len = num(get("tail_len")?, "tail_len")?;
    let tail_hash =
        u64::from_str_radix(&get("tail_xxh3")?, 16).map_err(|_| bad("`tail_xxh3` is not hex"))?;
    // Absent in records written before the whole file was checked.
    let cksum = match lines.next() {
        None => None,
        Some(l) => Some(
            l.strip_prefix("cksum_state ")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad(&format!("expected `cksum_state`, found `{l}`")))?,
        ),
    };
    Ok(Some(Record {
        target,
        sequence,
        size,
        tail_len,
        tail_hash,
        cksum,
    }))
}

/// Writes the record atomically (`logdaemon_sdk::durable::replace`), without fsync: the
/// record only ever moves forward over bytes the standby has, so an older
/// record that survives a power loss is still true, merely a weaker check;
/// a torn or empty one is ignored (see [`load`]'s caller).
pub fn store(p: &Path, r: &Record) -> Result<()> {
    let mut text = format!(
        "{HEADER}\ntarget {}\nsequence {}\nsize {}\ntail_len {}\ntail_xxh3 {:016x}\n",
        r.target, r.sequence, r.size, r.tail_len, r.tail_hash
    );
    if let Some(c) = r.cksum {
        text += &format!("cksum_state {c:08x}\n");
    }
    let io = |e: std::io::Error| {
        fatal(format!(
            "cannot write {}: {e}; check the state directory's disk and permissions",
            p.display()
        ))
    };
    logdaemon_sdk::durable::replace(p, text.as_bytes(), false).map_err(|e| match e {
        logdaemon_sdk::durable::RecordError::Write { source, .. } => io(source),
        other => io(std::io::Error::other(other.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_is_reported_with_the_path() {
        let d = tempfile::tempdir().unwrap();
        let p = path(d.path());
        assert_eq!(load(&p).unwrap(), None);
        let r = Record::new("u@h:22:/srv", 41, 1234, b"tail bytes", Some(0xdead_beef));
        store(&p, &r).unwrap();
        assert_eq!(load(&p).unwrap(), Some(r.clone()));
        let old = Record::new("u@h:22:/srv", 41, 1234, b"tail bytes", None);
        store(&p, &old).unwrap();
        assert_eq!(load(&p).unwrap(), Some(old));
        assert!(r.matches_tail(b"tail bytes"));
        assert!(!r.matches_tail(b"tail byteZ"));
        std::fs::write(
            &p,
            "logdaemon-hot-backup-state 1\ntarget x\nsequence many\n",
        )
        .unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("standby.state") && e.contains("sequence"), "{e}");
    }
}
