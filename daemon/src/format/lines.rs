//! Framing of plain line logs.
//!
//! Without a start-of-record regex, every `\n`-terminated line is a record
//! (a CR before the LF stays in the record's bytes). With one, a record is a
//! line matching the regex plus every following line that does not match
//! (a stack trace under its log line); lines before the first matching line
//! form a record of their own. Because a record only ends where the next one
//! begins, a multi-line record is complete only once the *next* line is
//! complete and matches, or the stream is finished.

use regex::bytes::Regex;

use super::blocks::BlockScanner;
use super::Framer;

/// One record per line.
#[derive(Debug, Clone)]
pub struct LineFramer {
    scan: BlockScanner,
}

impl LineFramer {
    pub fn new() -> Self {
        LineFramer {
            scan: BlockScanner::new(false),
        }
    }
}

impl Default for LineFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer for LineFramer {
    fn one_line_records(&self) -> bool {
        true
    }

    #[inline]
    fn next(&mut self, buf: &[u8]) -> Option<usize> {
        self.scan.next(buf)
    }

    #[inline]
    fn take_lines(&mut self, buf: &[u8], limit: usize, ends: &mut [usize]) -> usize {
        self.scan.take_lines(buf, limit, ends)
    }

    fn finish(&mut self, buf: &[u8]) -> Option<(usize, bool)> {
        if buf.is_empty() {
            return None;
        }
        Some(self.next(buf).map_or((buf.len(), true), |n| (n, false)))
    }

    fn reset(&mut self) {
        self.scan.reset();
    }

    fn release(&mut self) {
        self.scan.release();
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        self.scan.consume(n);
    }
}

/// Multi-line records delimited by a start-of-record regex.
#[derive(Debug, Clone)]
pub struct MultiLineFramer {
    start: Regex,
    /// Offset of the first line not yet known to be a continuation line
    /// (0 until the record's first line is complete).
    scanned: usize,
}

impl MultiLineFramer {
    pub fn new(start: Regex) -> Self {
        MultiLineFramer { start, scanned: 0 }
    }

    /// Whether a complete line (with its terminator) starts a record. The
    /// regex sees the line without its `\n` or `\r\n`.
    fn starts_record(&self, line: &[u8]) -> bool {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.start.is_match(line)
    }

    /// Advances over complete lines. Returns `Ok(len)` when a following line
    /// starts a new record, `Err(at)` with the offset of the first byte not
    /// in a complete line otherwise.
    fn scan(&mut self, buf: &[u8]) -> Result<usize, usize> {
        if self.scanned > buf.len() {
            // The buffer shrank, against the contract: start over.
            self.scanned = 0;
        }
        if self.scanned == 0 {
            // The record's first line belongs to it whether or not it matches.
            match memchr::memchr(b'\n', buf) {
                Some(n) => self.scanned = n + 1,
                None => return Err(0),
            }
        }
        loop {
            let at = self.scanned;
            let Some(n) = memchr::memchr(b'\n', &buf[at..]) else {
                return Err(at);
            };
            if self.starts_record(&buf[at..at + n + 1]) {
                return Ok(at);
            }
            self.scanned = at + n + 1;
        }
    }
}

impl Framer for MultiLineFramer {
    fn next(&mut self, buf: &[u8]) -> Option<usize> {
        self.scan(buf).ok()
    }

    fn finish(&mut self, buf: &[u8]) -> Option<(usize, bool)> {
        if buf.is_empty() {
            return None;
        }
        match self.scan(buf) {
            Ok(n) => Some((n, false)),
            // Only complete lines remain: the record runs to the end.
            Err(at) if at == buf.len() => Some((at, false)),
            // The record's own first line is cut off.
            Err(0) => Some((buf.len(), true)),
            // A cut-off last line: if it already starts a record, the
            // current record ends before it; otherwise it continues (and
            // cuts off) the current record.
            Err(at) => {
                if self
                    .start
                    .is_match(buf[at..].strip_suffix(b"\r").unwrap_or(&buf[at..]))
                {
                    Some((at, false))
                } else {
                    Some((buf.len(), true))
                }
            }
        }
    }

    fn reset(&mut self) {
        self.scanned = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{frame_all, Format};

    fn records<'a>(format: &Format, buf: &'a [u8]) -> Vec<(&'a str, bool)> {
        frame_all(format, buf)
            .into_iter()
            .map(|(at, n, inc)| (std::str::from_utf8(&buf[at..at + n]).unwrap(), inc))
            .collect()
    }

    fn multi(re: &str) -> Format {
        Format::Lines {
            record_start: Some(Regex::new(re).unwrap()),
        }
    }

    #[test]
    fn single_lines_with_crlf_and_empty_lines() {
        let f = Format::Lines { record_start: None };
        assert_eq!(
            records(&f, b"a\r\n\nb\nc"),
            vec![("a\r\n", false), ("\n", false), ("b\n", false), ("c", true)]
        );
    }

    #[test]
    fn multi_line_groups_continuations() {
        let f = multi(r"^\d{4}-");
        let log = b"boot noise\nmore noise\n2024-01-01 a\n  at x\n  at y\n2024-01-02 b\n2024-01-03 c\r\n  more\r\n";
        assert_eq!(
            records(&f, log),
            vec![
                ("boot noise\nmore noise\n", false),
                ("2024-01-01 a\n  at x\n  at y\n", false),
                ("2024-01-02 b\n", false),
                ("2024-01-03 c\r\n  more\r\n", false),
            ]
        );
    }

    #[test]
    fn multi_line_record_waits_for_the_next_complete_start_line() {
        let mut fr = MultiLineFramer::new(Regex::new("^S").unwrap());
        let log = b"S one\n cont\nS two\n";
        // Until "S two\n" is complete, the first record may still grow.
        for end in 0..log.len() {
            assert_eq!(fr.next(&log[..end]), None, "end {end}");
        }
        assert_eq!(fr.next(log), Some(12));
    }

    #[test]
    fn multi_line_finish_cut_off_lines() {
        let f = multi("^S");
        // A cut-off continuation line makes the record incomplete.
        assert_eq!(records(&f, b"S a\n cont"), vec![("S a\n cont", true)]);
        // A cut-off start line: the previous record is whole, the new one cut off.
        assert_eq!(
            records(&f, b"S a\n c\nS b"),
            vec![("S a\n c\n", false), ("S b", true)]
        );
        // A cut-off first line.
        assert_eq!(records(&f, b"S a"), vec![("S a", true)]);
        // Only complete lines: complete.
        assert_eq!(
            records(&f, b"x\nS a\n c\n"),
            vec![("x\n", false), ("S a\n c\n", false)]
        );
    }

    #[test]
    fn regex_does_not_see_the_line_terminator() {
        let f = multi("end$");
        assert_eq!(
            records(&f, b"a end\r\nb\nc end\n"),
            vec![("a end\r\nb\n", false), ("c end\n", false)]
        );
    }
}
