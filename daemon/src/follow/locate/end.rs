//! Where `start = "end"` begins: after the last complete record of the
//! live file, by the format's own rules, not after the last newline (which
//! in a p4 journal may be inside an `@`-quoted string, and with
//! `record_start` inside a stack trace).
//!
//! A record start is proven by content without framing from the file's
//! beginning: a line that starts with a `record_start` match, any line of a
//! plain line log, and in a p4 journal a line that starts with `@` and a
//! byte other than `@`, space, CR or LF (inside a valid string such a line
//! cannot be: see [`crate::format::p4`]). So the file is read backwards in
//! growing windows (64 KiB up to 64 MiB) until one holds a proven start,
//! and framed forward from it; a file with none in that much is framed from
//! its beginning. The line number of the boundary is a newline count.
//!
//! The answer is kept per file (path and inode), so that every listener of
//! a journal starts at the same boundary and the file is read once.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::format::{Format, RecordReader};
use crate::identity::FileKey;

const FIRST_WINDOW: u64 = 64 * 1024;
const MAX_WINDOW: u64 = 64 << 20;

/// Boundaries found, by file: `(offset, line)`.
type Found = Vec<((PathBuf, FileKey), (u64, u64))>;
static FOUND: Mutex<Found> = Mutex::new(Vec::new());

/// The end of the last complete record of `f` (at `path`) within its first
/// `size` bytes, and the line number there; the same for every caller.
pub(super) fn end_boundary(
    path: &Path,
    f: &File,
    size: u64,
    format: &Format,
) -> io::Result<(u64, u64)> {
    let key = (path.to_path_buf(), FileKey::of(&f.metadata()?));
    let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, at)) = found.iter().find(|(k, _)| *k == key) {
        return Ok(*at);
    }
    let at = match boundary(f, size, format)? {
        Some(offset) => (offset, 1 + newlines(f, offset)?),
        None => framed_from_start(f, size, format)?,
    };
    found.push((key, at));
    Ok(at)
}

/// The boundary, from a window at the end that holds a proven record start.
fn boundary(f: &File, size: u64, format: &Format) -> io::Result<Option<u64>> {
    let mut window = FIRST_WINDOW;
    loop {
        let from = size.saturating_sub(window);
        let mut buf = vec![0u8; (size - from) as usize];
        f.read_exact_at(&mut buf, from)?;
        if let Some(start) = last_proven_start(&buf, from == 0, format) {
            return Ok(Some(
                from + complete_from(&buf[start..], format) + start as u64,
            ));
        }
        if from == 0 || window >= MAX_WINDOW {
            return Ok(None);
        }
        window *= 4;
    }
}

/// The last position in `buf` where a record provably starts (`at_start`:
/// `buf` begins the file, so its offset 0 is one).
fn last_proven_start(buf: &[u8], at_start: bool, format: &Format) -> Option<usize> {
    let proven = |i: usize| -> bool {
        let rest = &buf[i..];
        match format {
            Format::P4 => {
                rest.len() >= 2
                    && rest[0] == b'@'
                    && !matches!(rest[1], b'@' | b' ' | b'\r' | b'\n')
            }
            Format::Lines { record_start: None } => true,
            Format::Lines {
                record_start: Some(re),
            } => match memchr::memchr(b'\n', rest) {
                Some(n) => {
                    let line = &rest[..n];
                    re.is_match(line.strip_suffix(b"\r").unwrap_or(line))
                }
                None => false,
            },
        }
    };
    memchr::memrchr_iter(b'\n', buf)
        .map(|j| j + 1)
        .find(|&i| proven(i))
        .or_else(|| (at_start && !buf.is_empty()).then_some(0))
}

/// How many bytes of complete records `buf` (starting at a record start)
/// begins with.
fn complete_from(buf: &[u8], format: &Format) -> u64 {
    let mut framer = format.framer();
    let mut at = 0;
    while let Some(n) = framer.next(&buf[at..]) {
        at += n;
        framer.consume(n);
    }
    at as u64
}

/// The whole file framed from its start: where its complete records end.
fn framed_from_start(f: &File, size: u64, format: &Format) -> io::Result<(u64, u64)> {
    let mut r = RecordReader::new(io::Read::take(f, size), format, 0, 1);
    while r.next_available()?.is_some() {}
    Ok((r.offset(), r.line()))
}

/// Newlines in the first `len` bytes of `f`.
fn newlines(f: &File, len: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let (mut at, mut n) = (0u64, 0u64);
    while at < len {
        let want = (len - at).min(buf.len() as u64) as usize;
        f.read_exact_at(&mut buf[..want], at)?;
        n += memchr::memchr_iter(b'\n', &buf[..want]).count() as u64;
        at += want as u64;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_end(data: &[u8], format: &Format) -> (u64, u64) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("j");
        std::fs::write(&p, data).unwrap();
        let f = File::open(&p).unwrap();
        end_boundary(&p, &f, data.len() as u64, format).unwrap()
    }

    #[test]
    fn p4_a_newline_inside_a_string_is_no_boundary() {
        let done = "@pv@ 0 @db.desc@ 1 @a@ \n@ex@ 1 2\n";
        let open = "@pv@ 0 @db.desc@ 2 @first line\nsecond line\n@@pv@@ quoted\n";
        let data = format!("{done}{open}");
        assert_eq!(at_end(data.as_bytes(), &Format::P4), (done.len() as u64, 3));
        // Complete, it is one record: the boundary is the end.
        let data = format!("{done}{open}@ \n");
        assert_eq!(at_end(data.as_bytes(), &Format::P4), (data.len() as u64, 7));
    }

    #[test]
    fn p4_far_from_any_record_start_the_file_is_framed_from_its_start() {
        let body = "x\n".repeat(40_000);
        let data = format!("@ex@ 1 2\n@pv@ 0 @db.desc@ 1 @{body}");
        assert_eq!(at_end(data.as_bytes(), &Format::P4), (9, 2));
    }

    #[test]
    fn record_start_the_boundary_is_before_the_last_record() {
        let re = regex::bytes::Regex::new(r"^\d{4}-").unwrap();
        let fmt = Format::Lines {
            record_start: Some(re),
        };
        let first = "2024-01-01 one\n  at a\n";
        let last = "2024-01-02 two\n  at b\n  at c\n";
        let data = format!("{first}{last}");
        assert_eq!(at_end(data.as_bytes(), &fmt), (first.len() as u64, 3));
    }

    #[test]
    fn lines_the_boundary_is_after_the_last_newline() {
        let fmt = Format::Lines { record_start: None };
        assert_eq!(at_end(b"a\nb\nhalf", &fmt), (4, 3));
        assert_eq!(at_end(b"a\nb\n", &fmt), (4, 3));
        assert_eq!(at_end(b"half", &fmt), (0, 1));
    }
}
