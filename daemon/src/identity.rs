//! Proving which file a position is in, by content.
//!
//! Names and inode numbers are hints: a file is renamed at rotation, its
//! inode changes when it is compressed, and a deleted file's inode is
//! reused. What proves that a file holds *our* stream up to offset `o` is
//! its content: a hash of its first bytes (the head) and a hash of the bytes
//! just before `o` (the tail). Both are stored in the checkpoint.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use logdaemon_state::{Hash, Hasher, Identity};

use crate::compress::{self, Compression};
use crate::segment::Source;

/// How many leading bytes the head hash covers (fewer if the file is shorter).
pub const HEAD_WINDOW: u64 = 4096;
/// How many bytes before a position the tail hash covers (fewer near the start).
pub const TAIL_WINDOW: u64 = 4096;

/// Device and inode of an open or named file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
}

impl FileKey {
    pub fn of(md: &std::fs::Metadata) -> FileKey {
        FileKey {
            dev: md.dev(),
            ino: md.ino(),
        }
    }
}

/// Hash of the first `min(len, size)` bytes of a plain file, by `pread`.
pub fn head_of(file: &File, len: u64) -> io::Result<(u64, Hash)> {
    let mut buf = vec![0u8; len as usize];
    let n = read_full_at(file, &mut buf, 0)?;
    Ok((n as u64, Hash::of(&buf[..n])))
}

/// Hash of the `min(TAIL_WINDOW, offset)` bytes before `offset` of a plain file.
/// `None` if the file is shorter than `offset`.
pub fn tail_of(file: &File, offset: u64) -> io::Result<Option<(u64, Hash)>> {
    let len = offset.min(TAIL_WINDOW);
    let mut buf = vec![0u8; len as usize];
    let n = read_full_at(file, &mut buf, offset - len)?;
    if (n as u64) < len {
        return Ok(None);
    }
    Ok(Some((len, Hash::of(&buf))))
}

/// Reads until `buf` is full or end of file.
pub fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A file proven to hold the stream up to a position, opened and positioned there.
pub struct Opened {
    pub path: PathBuf,
    pub source: Source,
    pub compression: Compression,
    /// Device and inode of the file opened (of a compressed file itself).
    pub key: Option<FileKey>,
    /// The first bytes of the file (up to [`HEAD_WINDOW`]), as far as they were read.
    pub head: HeadTracker,
}

/// Hash of the `len` bytes before `offset` of a plain file; `None` if they
/// are not all there.
pub fn tail_len_of(file: &File, offset: u64, len: u64) -> io::Result<Option<Hash>> {
    let len = len.min(offset);
    let mut buf = vec![0u8; len as usize];
    let n = read_full_at(file, &mut buf, offset - len)?;
    Ok(if (n as u64) < len {
        None
    } else {
        Some(Hash::of(&buf))
    })
}

/// Opens a file at `offset` without any proof (an operator-set position).
pub fn open_unverified(path: &Path, offset: u64) -> io::Result<Opened> {
    open_unverified_file(File::open(path)?, path, offset)
}

/// [`open_unverified`] of the file `file` is open on, read through `file`
/// only (never by `path`, which names it in errors and in the result).
pub(crate) fn open_unverified_file(file: File, path: &Path, offset: u64) -> io::Result<Opened> {
    let mut magic = [0u8; 8];
    let n = read_full_at(&file, &mut magic, 0)?;
    let compression = compress::detect(&magic[..n]);
    let mut head = HeadTracker::default();
    if compression == Compression::None {
        let mut buf = vec![0u8; HEAD_WINDOW as usize];
        let k = read_full_at(&file, &mut buf, 0)?;
        head.feed(0, &buf[..k]);
        let key = Some(FileKey::of(&file.metadata()?));
        let source = Source::Plain(crate::segment::PlainFile::new(
            std::sync::Arc::new(file),
            offset,
        ));
        return Ok(Opened {
            path: path.to_path_buf(),
            source,
            compression,
            key,
            head,
        });
    }
    let key = Some(FileKey::of(&file.metadata()?));
    // Read through `file` itself, not by name: a rotation may rename the
    // file away or put another under its name between two opens.
    let again = || compress::open_again(&file, path).map_err(|e| io::Error::other(e.to_string()));
    let (_, mut reader) = again()?;
    let mut buf = vec![0u8; HEAD_WINDOW as usize];
    let k = read_full(&mut reader, &mut buf)? as u64;
    head.feed(0, &buf[..k as usize]);
    // The head read is part of the way to `offset`; only an offset within
    // the head needs the file decoded again from its start.
    if offset >= k {
        skip(&mut reader, offset - k)?;
    } else {
        (_, reader) = again()?;
        skip(&mut reader, offset)?;
    }
    Ok(Opened {
        path: path.to_path_buf(),
        source: Source::from_reader(compression, reader),
        compression,
        key,
        head,
    })
}

fn open_plain(path: &Path, file: File, id: &Identity, offset: u64) -> Result<Opened, Mismatch> {
    let mm = |kind: MismatchKind, why: String| Mismatch {
        path: path.to_path_buf(),
        kind,
        why,
    };
    let md = file
        .metadata()
        .map_err(|e| mm(MismatchKind::Unreadable, format!("cannot stat: {e}")))?;
    if md.len() < offset {
        return Err(mm(
            MismatchKind::TooShort,
            format!(
                "only {} bytes long, the position is at offset {offset}",
                md.len()
            ),
        ));
    }
    let mut buf = vec![0u8; HEAD_WINDOW.max(id.head_len) as usize];
    let n = read_full_at(&file, &mut buf, 0)
        .map_err(|e| mm(MismatchKind::Unreadable, format!("read error: {e}")))?;
    if (n as u64) < id.head_len || Hash::of(&buf[..id.head_len as usize]) != id.head_hash {
        return Err(mm(
            MismatchKind::Different,
            "different first bytes (head hash)".into(),
        ));
    }
    if id.tail_len > 0 {
        match tail_len_of(&file, offset, id.tail_len) {
            Ok(Some(h)) if h == id.tail_hash => {}
            Ok(_) => {
                return Err(mm(
                    MismatchKind::Different,
                    format!("different bytes before offset {offset} (tail hash)"),
                ))
            }
            Err(e) => return Err(mm(MismatchKind::Unreadable, format!("read error: {e}"))),
        }
    }
    let mut head = HeadTracker::default();
    head.feed(0, &buf[..n.min(HEAD_WINDOW as usize)]);
    let key = Some(FileKey::of(&md));
    let source = Source::Plain(crate::segment::PlainFile::new(
        std::sync::Arc::new(file),
        offset,
    ));
    Ok(Opened {
        path: path.to_path_buf(),
        source,
        compression: Compression::None,
        key,
        head,
    })
}

/// Why a candidate did not match: `kind` to decide on, `why` for the
/// operator's error message.
#[derive(Debug, Clone)]
pub struct Mismatch {
    pub path: PathBuf,
    pub kind: MismatchKind,
    pub why: String,
}

/// How a candidate failed to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MismatchKind {
    /// It could not be opened, read or decoded.
    Unreadable,
    /// Its first bytes, or the bytes before the position, differ (or it
    /// is too short to hold the recorded first bytes).
    Different,
    /// Same first bytes, but it ends before the position (a copy made
    /// before the bytes at the position were written).
    TooShort,
}

/// Opens `path` (plain or compressed, by magic bytes) and checks that it holds
/// the stream `id` describes up to `offset`: same head, at least `offset`
/// bytes, same tail before `offset`. On success the returned source is
/// positioned at `offset`.
pub fn open_matching(path: &Path, id: &Identity, offset: u64) -> Result<Opened, Mismatch> {
    let mm = |kind: MismatchKind, why: String| Mismatch {
        path: path.to_path_buf(),
        kind,
        why,
    };
    let file =
        File::open(path).map_err(|e| mm(MismatchKind::Unreadable, format!("cannot open: {e}")))?;
    open_matching_file(file, path, id, offset)
}

/// [`open_matching`] of the file `file` is open on, read through `file`
/// only (never by `path`, which names it in errors and in the result).
pub(crate) fn open_matching_file(
    file: File,
    path: &Path,
    id: &Identity,
    offset: u64,
) -> Result<Opened, Mismatch> {
    let mm = |kind: MismatchKind, why: String| Mismatch {
        path: path.to_path_buf(),
        kind,
        why,
    };
    let mut magic = [0u8; 8];
    let m = read_full_at(&file, &mut magic, 0)
        .map_err(|e| mm(MismatchKind::Unreadable, format!("read error: {e}")))?;
    if compress::detect(&magic[..m]) == Compression::None {
        return open_plain(path, file, id, offset);
    }
    // The compressed file's own key: it tells this file from others that
    // hold the same bytes (identical short files), as a plain file's does.
    let key = file.metadata().ok().map(|m| FileKey::of(&m));
    // Decoded through `file`, the file whose key that is, never by name
    // again (see [`compress::open_again`]).
    let (compression, mut reader) = compress::open_again(&file, path)
        .map_err(|e| mm(MismatchKind::Unreadable, e.to_string()))?;
    // Head.
    let head_len = id.head_len.min(HEAD_WINDOW.max(id.head_len)) as usize;
    let mut head = vec![0u8; head_len.max(HEAD_WINDOW as usize)];
    let n = read_full(&mut reader, &mut head)
        .map_err(|e| mm(MismatchKind::Unreadable, format!("read error: {e}")))?;
    if n < id.head_len as usize {
        return Err(mm(
            MismatchKind::Different,
            format!(
                "{} bytes long, shorter than the {} bytes of the recorded head",
                n, id.head_len
            ),
        ));
    }
    if Hash::of(&head[..id.head_len as usize]) != id.head_hash {
        return Err(mm(
            MismatchKind::Different,
            "different first bytes (head hash)".into(),
        ));
    }
    let mut head_seen = HeadTracker::default();
    head_seen.feed(0, &head[..n.min(HEAD_WINDOW as usize)]);
    // Skip to the tail window, then check it; `pos` counts bytes consumed.
    let tail_start = offset - id.tail_len.min(offset);
    let mut pos = n as u64;
    let mut window: Vec<u8> = Vec::with_capacity(id.tail_len as usize);
    if tail_start < pos {
        let end = (offset.min(pos)) as usize;
        window.extend_from_slice(&head[tail_start as usize..end]);
    }
    let mut buf = vec![0u8; 64 * 1024];
    while pos < offset {
        let want = ((offset - pos) as usize).min(buf.len());
        let k = read_full(&mut reader, &mut buf[..want]).map_err(|e| {
            mm(
                MismatchKind::Unreadable,
                format!("read error at offset {pos}: {e}"),
            )
        })?;
        if k == 0 {
            return Err(mm(
                MismatchKind::TooShort,
                format!("only {pos} bytes long, the position is at offset {offset}"),
            ));
        }
        let chunk_start = pos;
        pos += k as u64;
        if pos > tail_start {
            let from = tail_start.saturating_sub(chunk_start) as usize;
            window.extend_from_slice(&buf[from..k]);
        }
    }
    // If the head read went past `offset`, the source must be re-positioned.
    if pos > offset {
        return reopen_at(
            &file,
            path,
            id,
            offset,
            compression,
            key,
            head_seen,
            &window,
        );
    }
    if id.tail_len > 0 && (window.len() as u64 != id.tail_len || Hash::of(&window) != id.tail_hash)
    {
        return Err(mm(
            MismatchKind::Different,
            format!("different bytes before offset {offset} (tail hash)"),
        ));
    }
    Ok(Opened {
        path: path.to_path_buf(),
        source: Source::from_reader(compression, reader),
        compression,
        key,
        head: head_seen,
    })
}

#[allow(clippy::too_many_arguments)]
fn reopen_at(
    file: &File,
    path: &Path,
    id: &Identity,
    offset: u64,
    compression: Compression,
    key: Option<FileKey>,
    head: HeadTracker,
    window: &[u8],
) -> Result<Opened, Mismatch> {
    let mm = |kind: MismatchKind, why: String| Mismatch {
        path: path.to_path_buf(),
        kind,
        why,
    };
    if id.tail_len > 0 && (window.len() as u64 != id.tail_len || Hash::of(window) != id.tail_hash) {
        return Err(mm(
            MismatchKind::Different,
            format!("different bytes before offset {offset} (tail hash)"),
        ));
    }
    let (_, mut reader) = compress::open_again(file, path)
        .map_err(|e| mm(MismatchKind::Unreadable, e.to_string()))?;
    skip(&mut reader, offset)
        .map_err(|e| mm(MismatchKind::Unreadable, format!("read error: {e}")))?;
    Ok(Opened {
        path: path.to_path_buf(),
        source: Source::from_reader(compression, reader),
        compression,
        key,
        head,
    })
}

/// Reads and discards `n` bytes.
pub fn skip(r: &mut dyn Read, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut r.take(n), &mut io::sink())?;
    if copied < n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("ends after {copied} of {n} bytes"),
        ));
    }
    Ok(())
}

/// Incremental head hash of a segment as its bytes go by.
#[derive(Debug, Clone, Default)]
pub struct HeadTracker {
    buf: Vec<u8>,
}

impl HeadTracker {
    pub fn feed(&mut self, offset: u64, bytes: &[u8]) {
        if offset >= HEAD_WINDOW || offset != self.buf.len() as u64 {
            return;
        }
        let take = ((HEAD_WINDOW - offset) as usize).min(bytes.len());
        self.buf.extend_from_slice(&bytes[..take]);
    }
    pub fn head(&self) -> (u64, Hash) {
        (self.buf.len() as u64, Hash::of(&self.buf))
    }
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// The bytes most recently passed, to compute tail hashes of positions in a
/// stream that cannot be re-read (a compressed file).
#[derive(Debug, Clone)]
pub struct TailRing {
    /// Stream offset of `buf[0]`.
    start: u64,
    buf: std::collections::VecDeque<u8>,
    cap: usize,
}

impl TailRing {
    pub fn new(cap: usize, start: u64) -> TailRing {
        TailRing {
            start,
            // Grown as bytes come: a plain file's segment never feeds it.
            buf: std::collections::VecDeque::new(),
            cap,
        }
    }
    pub fn feed(&mut self, bytes: &[u8]) {
        let bytes = if bytes.len() > self.cap {
            let skip = bytes.len() - self.cap;
            self.start += (self.buf.len() + skip) as u64;
            self.buf.clear();
            &bytes[skip..]
        } else {
            bytes
        };
        let over = (self.buf.len() + bytes.len()).saturating_sub(self.cap);
        self.buf.drain(..over);
        self.start += over as u64;
        self.buf.extend(bytes);
    }
    /// Tail hash of `offset`: over the [`TAIL_WINDOW`] bytes before it, or
    /// as many of them as the ring still holds. `None` if it holds none.
    pub fn tail(&self, offset: u64) -> Option<(u64, Hash)> {
        let end = self.start + self.buf.len() as u64;
        if offset > end || offset < self.start || (offset == self.start && offset > 0) {
            return None;
        }
        let len = offset.min(TAIL_WINDOW).min(offset - self.start);
        let from = offset - len;
        let mut h = Hasher::new();
        let (a, b) = self.buf.as_slices();
        let lo = (from - self.start) as usize;
        let hi = (offset - self.start) as usize;
        let piece = |s: &[u8], base: usize| -> Vec<u8> {
            let l = lo.max(base).min(base + s.len()) - base;
            let r = hi.max(base).min(base + s.len()) - base;
            s[l..r].to_vec()
        };
        h.update(&piece(a, 0));
        h.update(&piece(b, a.len()));
        Some((len, h.finish()))
    }
}

/// The identity of position `offset` in `path` (plain or compressed), read
/// from the file: what the checkpoint records so a later run can prove it.
pub fn compute(path: &Path, offset: u64) -> io::Result<Identity> {
    let file = compress::open_nonblocking(path)?;
    let (compression, mut reader) =
        compress::open_again(&file, path).map_err(|e| io::Error::other(e.to_string()))?;
    let key = if compression == Compression::None {
        Some(FileKey::of(&file.metadata()?))
    } else {
        None
    };
    let mut head = vec![0u8; HEAD_WINDOW as usize];
    let n = read_full(&mut reader, &mut head)?;
    head.truncate(n);
    let tail_len = offset.min(TAIL_WINDOW);
    let tail_start = offset - tail_len;
    let mut window = Vec::with_capacity(tail_len as usize);
    if tail_start < n as u64 {
        window.extend_from_slice(&head[tail_start as usize..(offset as usize).min(n)]);
    }
    let mut pos = n as u64;
    let mut buf = vec![0u8; 64 * 1024];
    while pos < offset {
        let want = ((offset - pos) as usize).min(buf.len());
        let k = read_full(&mut reader, &mut buf[..want])?;
        if k == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} is only {pos} bytes long; offset {offset} is past its end",
                    path.display()
                ),
            ));
        }
        if pos + k as u64 > tail_start {
            let from = tail_start.saturating_sub(pos) as usize;
            window.extend_from_slice(&buf[from..k]);
        }
        pos += k as u64;
    }
    if (n as u64) < offset.min(HEAD_WINDOW) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "{} is only {n} bytes long; offset {offset} is past its end",
                path.display()
            ),
        ));
    }
    Ok(Identity {
        path: path.to_string_lossy().into_owned(),
        dev: key.map_or(0, |k| k.dev),
        inode: key.map_or(0, |k| k.ino),
        head_len: n as u64,
        head_hash: Hash::of(&head),
        tail_len,
        tail_hash: Hash::of(&window),
    })
}

#[cfg(test)]
mod tests;
