//! Records from any byte stream, with a bounded buffer.
//!
//! The follower reads a live file that grows while it reads; `dump` reads a
//! finite, maybe decompressed, file. Both want records with their offsets and
//! line numbers, without caring how `read` chunks the bytes, and without
//! memory that grows with the file. [`RecordReader`] keeps one buffer that
//! starts small, grows only while a single record is larger than it, and
//! shrinks back afterwards.
//!
//! The follower hands the bytes of records to listeners without copying
//! them: it *pins* the records it returns (they stay in the buffer, however
//! it is compacted or grown), and then takes the whole buffer away
//! ([`RecordReader::hand_off`]), giving the reader another one.

use std::io::{self, Read};

use super::{count_newlines, Format, Framer, Record};

/// Initial (and resting) buffer size, unless set with
/// [`RecordReader::set_resting`].
const INITIAL: usize = 256 * 1024;
/// The size a buffer starts at; it doubles while reads fill it.
const FIRST: usize = 64 * 1024;
/// The largest resting size [`RecordReader::set_resting`] sets.
const MAX_RESTING: usize = 2 << 20;
/// The least free space worth a `read` call; below it the buffer is
/// compacted or grown first.
const MIN_READ: usize = 32 * 1024;

/// Records taken at once by [`RecordReader::take_lines`]: `count` records
/// of one line each, end to end in `bytes`.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// Stream offset and line number of the first record.
    pub offset: u64,
    pub line: u64,
    pub count: usize,
    pub bytes: &'a [u8],
    /// Bytes read after them, not yet returned.
    pub rest: usize,
}

/// Reads records from any `Read` (plain file or decompressing reader), whatever chunk sizes `read` returns.
pub struct RecordReader<R: Read> {
    inner: R,
    framer: Box<dyn Framer>,
    buf: Vec<u8>,
    /// `buf[start..end]` holds bytes read but not yet returned in a record.
    start: usize,
    end: usize,
    /// Stream offset and line number of `buf[start]`.
    offset: u64,
    line: u64,
    /// `next_record` saw the end of the stream.
    eof: bool,
    /// Returned records from `buf[keep]` on are pinned: kept in the buffer.
    keep: Option<usize>,
    /// The last `next_available` stopped because reading on would have
    /// moved pinned records.
    full: bool,
    /// The size the buffer has unless a huge record grows it.
    resting: usize,
    /// See [`RecordReader::size_hint`].
    hint: usize,
}

impl<R: Read> RecordReader<R> {
    /// A reader whose first byte is at stream offset `start_offset`, on line
    /// `start_line` (1-based), and is a record boundary.
    pub fn new(inner: R, format: &Format, start_offset: u64, start_line: u64) -> Self {
        RecordReader {
            inner,
            framer: format.framer(),
            buf: Vec::new(),
            start: 0,
            end: 0,
            offset: start_offset,
            line: start_line,
            eof: false,
            keep: None,
            full: false,
            resting: INITIAL,
            hint: 0,
        }
    }

    /// Sets the buffer's resting size (at least the initial size, at most
    /// 2 MiB): the most bytes read ahead, and so the most pinned records
    /// that can be handed off at once. Grows the buffer now if nothing is
    /// pinned.
    pub fn set_resting(&mut self, bytes: usize) {
        let resting = bytes.clamp(INITIAL, MAX_RESTING);
        if resting == self.resting {
            return;
        }
        self.resting = resting;
    }

    /// Bytes the stream likely has to read now (a file's size past the
    /// position): an empty buffer grows to that (up to the resting size)
    /// at once rather than doubling from a small start.
    pub fn size_hint(&mut self, bytes: usize) {
        self.hint = bytes;
    }

    /// Gives the buffer back to the allocator when it holds nothing (no
    /// bytes buffered, nothing pinned): an idle reader keeps no memory.
    /// The next read starts with a small buffer again.
    pub fn release(&mut self) {
        if self.keep.is_none() && self.start == self.end {
            crate::bufpool::give(std::mem::take(&mut self.buf));
            self.start = 0;
            self.end = 0;
        }
        self.framer.release();
    }

    /// Finite stream: next record, finishing (incomplete tail) at EOF. Ok(None) at the end.
    ///
    /// Once it has seen the end of the stream it does not read again: for a
    /// file that may still grow use [`next_available`](Self::next_available).
    pub fn next_record(&mut self) -> io::Result<Option<Record<'_>>> {
        loop {
            if let Some(n) = self.framer.next(&self.buf[self.start..self.end]) {
                let unclosed = self.framer.unclosed();
                return Ok(Some(self.take(n, unclosed)));
            }
            if self.eof {
                let last = self.framer.finish(&self.buf[self.start..self.end]);
                return Ok(last.map(|(n, incomplete)| self.take(n, incomplete)));
            }
            if self.fill()? == 0 {
                self.eof = true;
            }
        }
    }

    /// Live stream: next complete record, or Ok(None) when the bytes available now end before
    /// one completes (does NOT finish; call again after more data was appended).
    ///
    /// With pinned records, it does not move them to make room: it returns
    /// Ok(None) and [`is_full`](Self::is_full) says so.
    pub fn next_available(&mut self) -> io::Result<Option<Record<'_>>> {
        self.full = false;
        loop {
            if let Some(n) = self.framer.next(&self.buf[self.start..self.end]) {
                let unclosed = self.framer.unclosed();
                return Ok(Some(self.take(n, unclosed)));
            }
            if self.pinned_len() > 0 && self.must_move() {
                self.full = true;
                return Ok(None);
            }
            if self.fill()? == 0 {
                return Ok(None);
            }
            self.eof = false;
        }
    }

    /// Many [`next_available`](Self::next_available) calls in one, for the
    /// records already buffered (it never reads): the complete records
    /// that are one line each, taken while fewer than `limit` bytes were
    /// taken before the record and `ends` has room (see
    /// [`Framer::take_lines`]). `ends[..run.count]` receives the end of
    /// each record relative to the start of `run.bytes`; each record is
    /// one line, the first on `run.line`. The records are pinned like
    /// those `next_available` returns. `None` when there is none: the next
    /// record, if any, is `next_available`'s.
    #[inline]
    pub fn take_lines(&mut self, limit: usize, ends: &mut [usize]) -> Option<Run<'_>> {
        let count = self
            .framer
            .take_lines(&self.buf[self.start..self.end], limit, ends);
        let used = *ends[..count].last()?;
        let at = self.start;
        let (offset, line) = (self.offset, self.line);
        self.start += used;
        self.offset += used as u64;
        self.line += count as u64;
        Some(Run {
            offset,
            line,
            count,
            bytes: &self.buf[at..at + used],
            rest: self.end - self.start,
        })
    }

    /// Pins the records returned from now on (until [`hand_off`](Self::hand_off)
    /// or [`unpin`](Self::unpin)): their bytes stay in the buffer, at the
    /// same distance from the first pinned byte, even when the buffer is
    /// compacted or grown.
    pub fn pin(&mut self) {
        if self.keep.is_none() {
            self.keep = Some(self.start);
        }
    }

    /// Stops pinning; the pinned bytes may be overwritten from now on.
    pub fn unpin(&mut self) {
        self.keep = None;
    }

    /// Bytes of the records returned since [`pin`](Self::pin): the next
    /// record returned begins at this index of the pinned bytes.
    pub fn pinned_len(&self) -> usize {
        self.keep.map_or(0, |k| self.start - k)
    }

    /// The bytes of the records returned since [`pin`](Self::pin).
    pub fn pinned(&self) -> &[u8] {
        &self.buf[self.lower()..self.start]
    }

    /// The last [`next_available`](Self::next_available) returned Ok(None)
    /// because reading on would have moved pinned records, not because the
    /// bytes available now were exhausted.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Takes the buffer holding the pinned records, gives the reader `spare`
    /// instead (with the bytes not yet returned copied into it) and stops
    /// pinning. Returns the old buffer and where the pinned bytes lie in it.
    pub fn hand_off(&mut self, mut spare: Vec<u8>) -> (Vec<u8>, std::ops::Range<usize>) {
        let keep = self.keep.take().unwrap_or(self.start);
        let live = self.end - self.start;
        // Twice the bytes handed off, up to the resting size: catching up
        // grows to full batches in a few steps, and a line or two needs no
        // megabyte.
        let used = self.start - keep;
        let want = live
            .saturating_add(MIN_READ)
            .max(used.saturating_mul(2).min(self.resting))
            .max(FIRST);
        if spare.len() > want.max(self.resting) {
            // Grown for a huge record: back to the resting size.
            spare = Vec::new();
        }
        if spare.is_empty() {
            spare = crate::bufpool::take(want);
        }
        if spare.len() < want {
            // Zeroed once per buffer: a spare handed back keeps its length.
            spare.resize(want, 0);
        }
        spare[..live].copy_from_slice(&self.buf[self.start..self.end]);
        let old = std::mem::replace(&mut self.buf, spare);
        let pinned = keep..self.start;
        self.start = 0;
        self.end = live;
        (old, pinned)
    }

    /// Would `fill` move bytes from `lower()` on to make room?
    fn must_move(&self) -> bool {
        let lo = self.lower();
        let live = self.end - lo;
        (self.buf.len() > self.resting && live <= self.resting / 2 && lo > 0)
            || self.buf.len() - self.end < MIN_READ
    }

    /// The first byte the buffer must keep: the first pinned or unreturned one.
    fn lower(&self) -> usize {
        self.keep.unwrap_or(self.start)
    }

    /// The stream is over (file rotated away and drained): the remaining partial bytes, if any,
    /// as one incomplete record (p4) or the final records (lines multi-line).
    ///
    /// Reads whatever the inner reader still returns first. Call until it
    /// returns `Ok(None)`: each call returns one record.
    pub fn finish(&mut self) -> io::Result<Option<Record<'_>>> {
        self.next_record()
    }

    /// Offset of the next byte not yet returned in a record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Line number at [`offset`](Self::offset).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Bytes read but not yet returned.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Current buffer capacity in bytes (for tests and metrics).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Returns the first `n` buffered bytes as a record and moves past them.
    fn take(&mut self, n: usize, incomplete: bool) -> Record<'_> {
        let at = self.start;
        let bytes = &self.buf[at..at + n];
        let newlines = if !incomplete && self.framer.record_is_one_line() {
            u64::from(bytes.ends_with(b"\n"))
        } else {
            count_newlines(bytes)
        };
        let lines = newlines + u64::from(!bytes.ends_with(b"\n"));
        let record_offset = self.offset;
        let record_line = self.line;
        self.start += n;
        self.offset += n as u64;
        self.line += newlines;
        self.framer.consume(n);
        Record {
            offset: record_offset,
            line: record_line,
            lines,
            bytes: &self.buf[at..at + n],
            incomplete,
        }
    }

    /// Reads more bytes after `end`, making room first. Returns the count
    /// read (0 at the end of the stream, for now).
    fn fill(&mut self) -> io::Result<usize> {
        let live = self.end - self.lower();
        if self.buf.len() > self.resting && live <= self.resting / 2 {
            // A huge record was consumed: go back to the resting size.
            self.compact();
            self.buf.truncate(self.resting);
            self.buf.shrink_to_fit();
        } else if self.buf.len() - self.end < MIN_READ {
            if self.lower() > 0 {
                self.compact();
            }
            if self.buf.len() - self.end < MIN_READ {
                // Grown on demand, doubling from a small start: a reader that
                // only ever sees a line at a time never zeroes a whole batch.
                let hinted = if self.buf.is_empty() {
                    self.hint.saturating_add(MIN_READ).min(self.resting)
                } else {
                    0
                };
                let grown = (self.buf.len() * 2)
                    .max(FIRST)
                    .max(hinted)
                    .max(self.end + MIN_READ);
                if self.buf.is_empty() {
                    self.buf = crate::bufpool::take(grown);
                } else {
                    self.buf.resize(grown, 0);
                }
            }
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves the pinned and unreturned bytes to the front of the buffer.
    fn compact(&mut self) {
        let lo = self.lower();
        self.buf.copy_within(lo..self.end, 0);
        self.end -= lo;
        self.start -= lo;
        self.keep = self.keep.map(|k| k - lo);
    }
}

#[cfg(test)]
mod tests;
