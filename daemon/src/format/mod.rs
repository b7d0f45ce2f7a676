//! Journal formats: where one record ends and the next begins.
//!
//! The follower, `logdaemon dump` and the tests all need the same answer to
//! "is there a whole record at the start of these bytes, and how long is it?",
//! asked again and again while a live file grows. A [`Framer`] answers it
//! incrementally for one format (it remembers how far it has scanned), and a
//! [`RecordReader`] drives a framer over any [`std::io::Read`] with a bounded
//! buffer, whatever chunk sizes the reader hands out.
//!
//! Two formats exist: the p4d journal ([`p4`]), whose records may span lines
//! inside `@`-quoted strings, and plain newline-terminated logs ([`lines`]),
//! optionally grouped into multi-line records by a start-of-record regex.

mod blocks;
pub mod lines;
pub mod p4;
mod reader;
#[doc(hidden)]
// A byte-by-byte parser that the tests and fuzz targets check the real one
// against; not part of the daemon.
#[cfg(any(fuzzing, test))]
pub mod reference;
#[cfg(test)]
mod tests;

pub use reader::{RecordReader, Run};

/// A journal format, as configured for a stream.
#[derive(Clone, Debug)]
pub enum Format {
    /// The p4d journal / checkpoint format.
    P4,
    /// Newline-terminated lines. With `record_start`, a record is a line
    /// matching the regex plus all following lines that do not match.
    Lines {
        record_start: Option<regex::bytes::Regex>,
    },
}

impl Format {
    /// A fresh framer for this format, with no scan state.
    pub fn framer(&self) -> Box<dyn Framer> {
        match self {
            Format::P4 => Box::new(p4::P4Framer::new()),
            Format::Lines { record_start: None } => Box::new(lines::LineFramer::new()),
            Format::Lines {
                record_start: Some(re),
            } => Box::new(lines::MultiLineFramer::new(re.clone())),
        }
    }

    /// The name used in configuration and on the command line: `"p4"` or `"lines"`.
    pub fn name(&self) -> &'static str {
        match self {
            Format::P4 => "p4",
            Format::Lines { .. } => "lines",
        }
    }
}

/// Finds the end of the first record in a buffer that starts at a record
/// boundary.
///
/// A framer keeps scan state between calls so that asking again after more
/// bytes were appended costs only the new bytes. The state is relative to the
/// start of `buf`: callers must pass the same leading bytes (they may move the
/// bytes in memory) until they call [`Framer::reset`].
pub trait Framer: Send {
    /// `buf` starts at a record boundary and may have grown since the last call (same start).
    /// Returns the length of the first record if it is complete.
    fn next(&mut self, buf: &[u8]) -> Option<usize>;

    /// No more bytes will ever come (a rotated file's end / end of a finite file): returns the
    /// length of the first record in `buf` and whether it is incomplete (cut off). None if buf is empty.
    fn finish(&mut self, buf: &[u8]) -> Option<(usize, bool)>;

    /// Forget scan state; called after the caller consumed a record (buf start moved) or repositioned.
    fn reset(&mut self);

    /// Gives back memory kept between scans, while the reader is idle;
    /// nothing learnt is lost.
    fn release(&mut self) {}

    /// The caller consumed the first `n` bytes of `buf`, the record just
    /// returned by [`next`](Self::next) or [`finish`](Self::finish); the next
    /// `buf` starts right after it. Framers may keep what they learnt about
    /// the bytes beyond (the default forgets it, like [`reset`](Self::reset)).
    fn consume(&mut self, n: usize) {
        let _ = n;
        self.reset();
    }

    /// True if the record just returned by [`next`](Self::next) can never
    /// complete: the bytes after it prove it was cut (a p4 string never
    /// closed). It is returned as incomplete and framing goes on after it.
    fn unclosed(&self) -> bool {
        false
    }

    /// Many [`next`](Self::next) and [`consume`](Self::consume) calls in
    /// one, for the records already in `buf`: takes complete records known
    /// to be one physical line each (neither cut nor holding a newline
    /// inside a string), in order, while fewer than `limit` bytes were
    /// taken before the record and `ends` has room, writing the end of each
    /// (relative to the start of `buf`) to `ends`. Returns how many; the
    /// record after them is left to [`next`](Self::next). The default
    /// takes none.
    fn take_lines(&mut self, buf: &[u8], limit: usize, ends: &mut [usize]) -> usize {
        let _ = (buf, limit, ends);
        0
    }

    /// True if every record this framer returns is one physical line (its
    /// only newline, if any, is its last byte), so line numbers need no count.
    fn one_line_records(&self) -> bool {
        false
    }

    /// True if the complete record just returned by [`next`](Self::next)
    /// (not yet consumed) is known to be one physical line. `false` means
    /// "count" (it may still be one line).
    fn record_is_one_line(&self) -> bool {
        self.one_line_records()
    }
}

/// One record as read from a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Byte offset of the first byte in the (uncompressed) stream.
    pub offset: u64,
    /// 1-based line number of the record's first line.
    pub line: u64,
    /// Number of physical lines: the newline count, plus one if the record
    /// does not end with `\n`.
    pub lines: u64,
    /// The raw bytes, including the terminating newline (if any).
    pub bytes: &'a [u8],
    /// The stream ended inside this record: it is cut off.
    pub incomplete: bool,
}

/// Number of `\n` bytes in `bytes`.
#[inline]
pub(crate) fn count_newlines(bytes: &[u8]) -> u64 {
    if bytes.len() >= 256 {
        return memchr::memchr_iter(b'\n', bytes).count() as u64;
    }
    // Typical records are short: fixed 16-byte chunks with a byte-wide
    // counter compile to a few vector compares, without the dispatch of the
    // general routine.
    let mut chunks = bytes.chunks_exact(16);
    let mut n = 0u64;
    for c in &mut chunks {
        let mut in_chunk = 0u8;
        for &b in c {
            in_chunk += u8::from(b == b'\n');
        }
        n += u64::from(in_chunk);
    }
    n + chunks
        .remainder()
        .iter()
        .map(|&b| u64::from(b == b'\n'))
        .sum::<u64>()
}

/// Frames a whole, finite buffer: every record with its offset, as a
/// [`RecordReader`] over the same bytes would return them. Useful for tests
/// and for callers that already hold the bytes.
pub fn frame_all(format: &Format, buf: &[u8]) -> Vec<(usize, usize, bool)> {
    let mut framer = format.framer();
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let (len, incomplete) = match framer.next(&buf[at..]) {
            Some(n) => (n, false),
            None => framer
                .finish(&buf[at..])
                .expect("non-empty buffer has a record"),
        };
        out.push((at, len, incomplete));
        at += len;
        framer.consume(len);
    }
    out
}

#[cfg(test)]
mod count_tests {
    #[test]
    fn counts_newlines_at_every_length() {
        for len in 0..600 {
            let v: Vec<u8> = (0..len)
                .map(|i| {
                    if i % 3 == 0 || i % 7 == 0 {
                        b'\n'
                    } else {
                        b'x'
                    }
                })
                .collect();
            let slow = v.iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(super::count_newlines(&v), slow, "len {len}");
        }
    }
}
