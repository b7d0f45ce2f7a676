//! One file of a journal stream, open for reading.
//!
//! A stream is a sequence of segments: the live file, and before it the
//! files it was rotated into (renamed, copied, compressed). A segment keeps
//! its file descriptor, so a file that is renamed, compressed or deleted
//! while we read it can still be read to its end.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use crate::compress::Compression;
use crate::format::{Format, RecordReader};
use crate::identity::{FileKey, HeadTracker, TailRing};

/// How many of the last bytes read from a plain file are kept to notice that
/// the file was truncated and regrown under us.
pub const VERIFY_LEN: usize = 256;

/// Whether a file was copied away, and so maybe truncated, before a read
/// from it: given what was known of it before the read (its first bytes,
/// the bytes before the read position, that position), true if a copy of
/// it holds them. See [`PlainFile::read`].
pub type CopyCheck = Arc<dyn Fn(&[u8], &[u8], u64) -> bool + Send + Sync>;

/// A plain file read with `pread` at our own position, remembering the last
/// bytes read so we can check later that they are still there.
pub struct PlainFile {
    pub file: Arc<File>,
    /// Offset of the next byte to read.
    pub pos: u64,
    last: Vec<u8>,
    /// The file's first bytes (up to [`VERIFY_LEN`]) as first seen: until
    /// `last` is full they prove that the file was not truncated and
    /// regrown under us, even before we read anything from it.
    first: Vec<u8>,
    /// Asked after a read while less of the file is known than proves it
    /// was not replaced (see [`PlainFile::read`]).
    copied: Option<CopyCheck>,
}

impl PlainFile {
    pub fn new(file: Arc<File>, pos: u64) -> PlainFile {
        let mut first = vec![0u8; VERIFY_LEN];
        let k = crate::identity::read_full_at(&file, &mut first, 0).unwrap_or(0);
        first.truncate(k);
        // Kept for the file's life: a small log's few bytes, not room for more.
        first.shrink_to_fit();
        let mut p = PlainFile {
            file,
            pos,
            last: Vec::with_capacity(VERIFY_LEN),
            first,
            copied: None,
        };
        // Remember what is before `pos` now, so a truncation before our first read is noticed.
        let n = pos.min(VERIFY_LEN as u64) as usize;
        let mut buf = vec![0u8; n];
        if let Ok(k) = crate::identity::read_full_at(&p.file, &mut buf, pos - n as u64) {
            buf.truncate(k);
            if k == n {
                p.last = buf;
            }
        }
        p
    }

    /// Are the bytes before our read position still the ones we read, and
    /// (while we have read less than [`VERIFY_LEN`] bytes) the first bytes
    /// still the ones first seen? The latter are extended as the file grows.
    pub fn still_there(&mut self) -> io::Result<bool> {
        if self.last.len() < VERIFY_LEN {
            let mut buf = vec![0u8; VERIFY_LEN];
            let n = crate::identity::read_full_at(&self.file, &mut buf, 0)?;
            if n < self.first.len() || buf[..self.first.len()] != self.first[..] {
                return Ok(false);
            }
            buf.truncate(n);
            buf.shrink_to_fit();
            self.first = buf;
        }
        if self.last.is_empty() {
            return Ok(true);
        }
        let mut buf = vec![0u8; self.last.len()];
        let n =
            crate::identity::read_full_at(&self.file, &mut buf, self.pos - self.last.len() as u64)?;
        Ok(n == buf.len() && buf == self.last)
    }

    /// Makes reads ask `check` whether the file was copied away before
    /// them, while too little of it is known to tell (see [`PlainFile::read`]).
    pub fn guard(&mut self, check: CopyCheck) {
        self.copied = Some(check);
    }

    /// The first bytes of the file as first seen (up to [`VERIFY_LEN`]).
    pub fn first(&self) -> &[u8] {
        &self.first
    }

    /// The bytes just before the read position that we remember.
    pub fn last(&self) -> &[u8] {
        &self.last
    }
}

impl Read for PlainFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        // Known before the read, when that is too little to prove anything
        // (an empty file, a few bytes every record starts with).
        let thin = (n > 0 && self.copied.is_some() && self.first.len() < VERIFY_LEN)
            .then(|| self.first.clone());
        // Checked after the read: if the bytes before our position are
        // still ours now, the file was not truncated before the read, so
        // what it returned is the continuation of our bytes. Otherwise it
        // may be a regrown file's new bytes: return nothing, and let the
        // follower find the truncation.
        if n > 0 && !self.still_there()? {
            return Ok(0);
        }
        // With so little known, a file copied away, truncated and written
        // again between the follower's last check and this read passes that
        // check. The copy is made before the truncation, so if one exists
        // now, the bytes read may be the new content's: return nothing and
        // forget what this read taught, so that the follower goes on in the
        // copy from what it knew before.
        if let (Some(first), Some(check)) = (thin, &self.copied) {
            if check(&first, &self.last, self.pos) {
                self.first = first;
                return Ok(0);
            }
        }
        if n > 0 {
            self.pos += n as u64;
            if n >= VERIFY_LEN {
                self.last.clear();
                self.last.extend_from_slice(&buf[n - VERIFY_LEN..n]);
            } else {
                let over = (self.last.len() + n).saturating_sub(VERIFY_LEN);
                self.last.drain(..over);
                self.last.extend_from_slice(&buf[..n]);
            }
        }
        Ok(n)
    }
}

/// Bytes of a segment: a plain file (re-readable with `pread`) or a
/// decompressing reader.
pub enum Source {
    Plain(PlainFile),
    Decoded(Box<dyn Read + Send>),
}

impl Source {
    /// A decompressing reader, decoded on its own thread a few chunks ahead.
    pub fn from_reader(compression: Compression, r: Box<dyn Read + Send>) -> Source {
        let _ = compression;
        Source::Decoded(Box::new(crate::readahead::ReadAhead::new(r)))
    }

    pub fn plain(&self) -> Option<&PlainFile> {
        match self {
            Source::Plain(f) => Some(f),
            Source::Decoded(_) => None,
        }
    }
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(f) => f.read(buf),
            Source::Decoded(r) => r.read(buf),
        }
    }
}

/// Where a segment was opened from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Opened at the live path (it may have been renamed since).
    Live,
    /// A rotated file (plain or compressed).
    Rotated,
}

/// What the engine knows of a segment it has read from, to prove positions
/// in it later (identity for the checkpoint).
#[derive(Clone)]
pub struct SegmentInfo {
    pub sequence: u64,
    pub path: PathBuf,
    pub key: Option<FileKey>,
    pub head: HeadTracker,
    pub file: Option<Arc<File>>,
    pub tail: TailRing,
    /// Offset of the end of what was read (the file's length once finished).
    pub end: u64,
}

pub struct Segment {
    pub sequence: u64,
    pub path: PathBuf,
    pub origin: Origin,
    pub compression: Compression,
    pub key: Option<FileKey>,
    pub reader: RecordReader<Source>,
    /// Largest size observed by `stat` while this was the live file.
    pub max_size_seen: u64,
    /// The next entry is the first after a rotation.
    pub did_rotate: bool,
    /// The first bytes of the segment, as read.
    pub head: HeadTracker,
    /// Recent bytes, for tail hashes of positions in compressed segments.
    pub ring: TailRing,
    /// Leading NUL bytes skipped (a writer without O_APPEND after a truncation).
    pub nul_skipped: u64,
    /// The live file's new content after a truncation, no record with data
    /// read from it yet: NULs before a record here are the hole a writer
    /// without O_APPEND left at its old offset. Anywhere else NULs are data.
    pub nul_fill: bool,
    /// Set when this segment continues in a rotated copy after the live file
    /// was truncated: the largest size the live file had been seen at. Bytes
    /// between the copy's end and that size were lost in the copy window.
    pub truncated_live: Option<u64>,
    /// When the follower first saw the writer move on from this (renamed)
    /// file to a new live file: it is watched for late writers from then.
    pub moved_on_at: Option<std::time::Instant>,
}

impl Segment {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sequence: u64,
        path: PathBuf,
        origin: Origin,
        compression: Compression,
        key: Option<FileKey>,
        source: Source,
        format: &Format,
        offset: u64,
        line: u64,
    ) -> Segment {
        Segment {
            sequence,
            path,
            origin,
            compression,
            key,
            reader: RecordReader::new(source, format, offset, line),
            max_size_seen: offset,
            did_rotate: false,
            head: HeadTracker::default(),
            ring: TailRing::new(256 * 1024, offset),
            nul_skipped: 0,
            nul_fill: false,
            truncated_live: None,
            moved_on_at: None,
        }
    }

    pub fn file(&self) -> Option<&Arc<File>> {
        self.reader.get_ref().plain().map(|p| &p.file)
    }

    /// Offset of the next byte to read from the file (records returned plus buffered).
    pub fn read_pos(&self) -> u64 {
        self.reader.offset() + self.reader.buffered() as u64
    }

    pub fn info(&self) -> SegmentInfo {
        SegmentInfo {
            sequence: self.sequence,
            path: self.path.clone(),
            key: self.key,
            head: self.head.clone(),
            file: self.file().cloned(),
            tail: self.ring.clone(),
            end: self.reader.offset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_truncation_and_regrowth_before_any_read_is_noticed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal");
        std::fs::write(&p, b"first record\n").unwrap();
        let mut pf = PlainFile::new(Arc::new(File::open(&p).unwrap()), 0);
        assert!(pf.still_there().unwrap());
        // Appends are fine, and extend what is checked.
        let mut w = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        w.write_all(b"second record\n").unwrap();
        assert!(pf.still_there().unwrap());
        assert_eq!(pf.first(), b"first record\nsecond record\n");
        // Truncated and regrown past the old size with other bytes: noticed
        // although nothing was read yet.
        w.set_len(0).unwrap();
        w.write_all(b"third record, longer than both\n").unwrap();
        assert!(!pf.still_there().unwrap());
    }

    #[test]
    fn a_read_after_a_truncation_returns_nothing_instead_of_new_bytes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal");
        std::fs::write(&p, b"old record one\nold record two\n").unwrap();
        let mut pf = PlainFile::new(Arc::new(File::open(&p).unwrap()), 0);
        let mut buf = [0u8; 15];
        assert_eq!(pf.read(&mut buf).unwrap(), 15);
        assert_eq!(&buf, b"old record one\n");
        // Truncated and regrown between two reads: the next read must not
        // hand out the new bytes as if they followed ours.
        std::fs::write(&p, b"new content, other bytes entirely\n").unwrap();
        let mut rest = Vec::new();
        pf.read_to_end(&mut rest).unwrap();
        assert!(
            rest.is_empty(),
            "read {:?} from a truncated file",
            String::from_utf8_lossy(&rest)
        );
        assert!(!pf.still_there().unwrap());
    }
}
