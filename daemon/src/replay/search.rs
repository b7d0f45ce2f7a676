//! Fast to the start: where in a plain file a range begins, found by
//! seeking rather than reading.
//!
//! Two questions are answered with positioned reads (`pread`) of small
//! windows:
//!
//! - *resynchronisation*: the first record boundary at or after a byte
//!   offset, and the last one at or before it. For p4 a boundary is any
//!   `\n@` followed by a lower-case letter (an op). That is never inside an
//!   `@`-quoted string: inside one, an `@` is either doubled (`@@`, so the
//!   next byte is `@`) or closes the string (and is followed by a space or
//!   a newline), so `\n@` + letter always starts a record. Line logs:
//!   after any newline, and with `record_start` a line that matches it.
//! - *time search*: the first boundary whose entry is at or after a time,
//!   by bisection over the byte range, probing the first timed boundary
//!   after each midpoint (p4: an `@ex@`/`@mx@` marker; lines: a record
//!   start with a timestamp). It assumes times do not go backwards; where
//!   they do, it finds an entry at or after the time whose timed
//!   predecessor is before it, not necessarily the first such (docs/replay.md).

use std::fs::File;
use std::io;

use jiff::Timestamp;

use super::timestamp::{p4_marker_time, TimestampSpec, YearHint};
use crate::format::Format;
use crate::identity::read_full_at;

/// Bisection stops when the range left is this small; the scan reads it.
const LINEAR: u64 = 64 * 1024;
/// Window of one positioned read.
const WINDOW: usize = 64 * 1024;

/// How entries of one plain file are timed.
pub(crate) struct Prober<'a> {
    pub file: &'a File,
    pub len: u64,
    pub format: &'a Format,
    pub spec: Option<&'a TimestampSpec>,
    pub year: YearHint,
}

/// A timed boundary found by a probe.
struct Probe {
    /// A boundary to resume from when the time is before the target: the
    /// record's start for lines, the end of the marker for p4.
    resume: u64,
    time: Timestamp,
}

impl Prober<'_> {
    /// A record boundary at or before `offset`, whose entry's time is
    /// before `since` (or the file's start), with no entry at or after
    /// `since` before it (when times do not go backwards).
    pub fn seek_time(&self, since: Timestamp) -> io::Result<u64> {
        let (mut lo, mut hi) = (0u64, self.len);
        while hi - lo > LINEAR {
            let mid = lo + (hi - lo) / 2;
            match self.probe(mid, hi)? {
                Some(p) if p.time < since => lo = p.resume.max(lo),
                _ => hi = mid,
            }
        }
        Ok(lo)
    }

    /// The first timed boundary at or after `from` that starts before `limit`.
    fn probe(&self, from: u64, limit: u64) -> io::Result<Option<Probe>> {
        let mut at = self.boundary_after(from)?;
        while let Some(start) = at {
            if start >= limit {
                return Ok(None);
            }
            let line = self.line_at(start)?;
            let found = match self.format {
                Format::P4 => p4_marker_time(&line).map(|t| (t, start + line.len() as u64)),
                Format::Lines { .. } => self
                    .spec
                    .and_then(|s| s.time_of(&line, self.year).ok().flatten())
                    .map(|t| (t, start)),
            };
            if let Some((time, resume)) = found {
                return Ok(Some(Probe { resume, time }));
            }
            at = self.boundary_after(start + 1)?;
        }
        Ok(None)
    }

    /// The first line (up to its newline, at most one window) at `at`.
    fn line_at(&self, at: u64) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; WINDOW];
        let n = read_full_at(self.file, &mut buf, at)?;
        buf.truncate(n);
        if let Some(nl) = memchr::memchr(b'\n', &buf) {
            buf.truncate(nl + 1);
        }
        Ok(buf)
    }

    /// The first record boundary at or after `from`, if any before the end.
    pub fn boundary_after(&self, from: u64) -> io::Result<Option<u64>> {
        if from == 0 {
            return Ok(Some(0).filter(|_| self.len > 0));
        }
        let mut pos = from - 1; // a newline at from - 1 makes `from` a boundary
        let mut buf = vec![0u8; WINDOW];
        while pos < self.len {
            let n = read_full_at(self.file, &mut buf, pos)?;
            if n == 0 {
                break;
            }
            let w = &buf[..n];
            for nl in memchr::memchr_iter(b'\n', w) {
                let start = pos + nl as u64 + 1;
                if start >= self.len {
                    return Ok(None);
                }
                if self.starts_record(start, &w[nl + 1..])? {
                    return Ok(Some(start));
                }
            }
            pos += n as u64;
        }
        Ok(None)
    }

    /// The last record boundary at or before `offset`.
    pub fn boundary_before(&self, offset: u64) -> io::Result<u64> {
        let mut end = offset.min(self.len);
        let mut buf = vec![0u8; WINDOW];
        while end > 0 {
            let start = end.saturating_sub(WINDOW as u64);
            let n = read_full_at(self.file, &mut buf[..(end - start) as usize], start)?;
            let w = &buf[..n];
            for nl in memchr::memrchr_iter(b'\n', w) {
                let b = start + nl as u64 + 1;
                if b <= offset && self.starts_record(b, &w[nl + 1..])? {
                    return Ok(b);
                }
            }
            end = start;
        }
        Ok(0)
    }

    /// Whether a line starting at `at` (just after a newline) starts a
    /// record; `seen` is what the caller already holds of it.
    fn starts_record(&self, at: u64, seen: &[u8]) -> io::Result<bool> {
        let need = match self.format {
            Format::P4 => 2,
            Format::Lines { record_start: None } => return Ok(true),
            Format::Lines { .. } => WINDOW,
        };
        let head = if seen.len() >= need || at + seen.len() as u64 >= self.len {
            seen.to_vec()
        } else {
            self.line_at(at)?
        };
        Ok(match self.format {
            Format::P4 => head.len() >= 2 && head[0] == b'@' && head[1].is_ascii_lowercase(),
            Format::Lines {
                record_start: Some(re),
            } => {
                let line = match memchr::memchr(b'\n', &head) {
                    Some(nl) => &head[..nl],
                    None => &head[..],
                };
                re.is_match(line)
            }
            Format::Lines { record_start: None } => true,
        })
    }
}

/// Newlines in the first `end` bytes of `file`: the line number of the
/// record at `end` is this plus one.
pub(crate) fn count_lines(file: &File, end: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let (mut pos, mut n) = (0u64, 0u64);
    while pos < end {
        let want = ((end - pos) as usize).min(buf.len());
        let got = read_full_at(file, &mut buf[..want], pos)?;
        if got == 0 {
            break;
        }
        n += memchr::memchr_iter(b'\n', &buf[..got]).count() as u64;
        pos += got as u64;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::frame_all;
    use std::io::Write;

    fn tmp(data: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut t = tempfile::NamedTempFile::new().unwrap();
        t.write_all(data).unwrap();
        let f = File::open(t.path()).unwrap();
        (t, f)
    }

    /// A p4 history of `n` transactions, each with a string full of
    /// newlines and lines that look like markers inside strings.
    fn p4_history(n: u64) -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..n {
            write!(
                v,
                "@pv@ 3 @db.desc@ {i} @text\n@@ex@@ 1 {i}\n@@\n\n@@pv@@ x@ \n@ex@ 77 {} \n",
                1_000_000 + i * 10
            )
            .unwrap();
        }
        v
    }

    #[test]
    fn p4_resynchronisation_finds_only_real_boundaries() {
        let data = p4_history(200);
        let (_t, f) = tmp(&data);
        let p = Prober {
            file: &f,
            len: data.len() as u64,
            format: &Format::P4,
            spec: None,
            year: YearHint(None),
        };
        let real: Vec<u64> = frame_all(&Format::P4, &data)
            .iter()
            .map(|r| r.0 as u64)
            .collect();
        for off in 0..data.len() as u64 {
            let after = p.boundary_after(off).unwrap();
            let want = real.iter().copied().find(|&b| b >= off);
            assert_eq!(after, want, "after {off}");
            let before = p.boundary_before(off).unwrap();
            let want = real.iter().copied().rfind(|&b| b <= off).unwrap();
            assert_eq!(before, want, "before {off}");
        }
    }

    #[test]
    fn time_search_lands_on_a_boundary_before_the_first_entry_at_the_time() {
        let data = p4_history(20_000);
        let (_t, f) = tmp(&data);
        let p = Prober {
            file: &f,
            len: data.len() as u64,
            format: &Format::P4,
            spec: None,
            year: YearHint(None),
        };
        let records = frame_all(&Format::P4, &data);
        for k in [0u64, 1, 5, 9_999, 19_999, 20_000] {
            let since = Timestamp::from_second((1_000_000 + k * 10) as i64).unwrap();
            let lo = p.seek_time(since).unwrap();
            assert!(records.iter().any(|r| r.0 as u64 == lo), "boundary {lo}");
            // The transaction of `since` starts at or after lo, and not
            // more than the linear window later.
            let first = records
                .iter()
                .filter(|r| {
                    let rec = &data[r.0..r.0 + r.1];
                    p4_marker_time(rec).is_some_and(|t| t >= since)
                })
                .map(|r| r.0 as u64)
                .next()
                .unwrap_or(data.len() as u64);
            assert!(lo <= first, "k {k}: {lo} > {first}");
            assert!(first - lo <= 2 * LINEAR, "k {k}: read {} bytes", first - lo);
        }
    }
}
