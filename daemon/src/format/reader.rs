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
mod tests {
    use super::*;

    /// Hands out the data in the given chunk sizes, cycling.
    struct Chunked<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        i: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let want = self.sizes[self.i % self.sizes.len()];
            self.i += 1;
            let n = want.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn offsets_lines_and_incomplete_tail() {
        let data = b"@pv@ 0 @t@ @a\nb@ \n@ex@ 1 2\n@pv@ 0 @t@ @cut";
        let mut r = RecordReader::new(&data[..], &Format::P4, 100, 7);
        let a = r.next_record().unwrap().unwrap();
        assert_eq!(
            (a.offset, a.line, a.lines, a.incomplete),
            (100, 7, 2, false)
        );
        assert_eq!(a.bytes, b"@pv@ 0 @t@ @a\nb@ \n");
        let b = r.next_record().unwrap().unwrap();
        assert_eq!((b.offset, b.line, b.lines), (118, 9, 1));
        let c = r.next_record().unwrap().unwrap();
        assert_eq!(
            (c.offset, c.line, c.lines, c.incomplete),
            (127, 10, 1, true)
        );
        assert_eq!(c.bytes, b"@pv@ 0 @t@ @cut");
        assert!(r.next_record().unwrap().is_none());
        assert_eq!(r.offset(), data.len() as u64 + 100);
    }

    #[test]
    fn live_stream_waits_and_resumes() {
        // A pipe-like source whose contents grow between calls.
        let shared = std::rc::Rc::new(std::cell::RefCell::new(Vec::<u8>::new()));
        struct Growing(std::rc::Rc<std::cell::RefCell<Vec<u8>>>, usize);
        impl Read for Growing {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let d = self.0.borrow();
                let n = (d.len() - self.1).min(out.len());
                out[..n].copy_from_slice(&d[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let mut r = RecordReader::new(Growing(shared.clone(), 0), &Format::P4, 0, 1);
        shared.borrow_mut().extend_from_slice(b"@pv@ 0 @t@ @open\n");
        assert!(r.next_available().unwrap().is_none());
        assert_eq!(r.buffered(), 17);
        shared.borrow_mut().extend_from_slice(b"more@ \n@ex@");
        let rec = r.next_available().unwrap().unwrap();
        assert_eq!(rec.bytes, b"@pv@ 0 @t@ @open\nmore@ \n");
        assert!(r.next_available().unwrap().is_none());
        assert_eq!((r.offset(), r.line(), r.buffered()), (24, 3, 4));
        let tail = r.finish().unwrap().unwrap();
        assert_eq!(
            (tail.bytes, tail.incomplete, tail.offset),
            (&b"@ex@"[..], true, 24)
        );
        assert!(r.finish().unwrap().is_none());
    }

    #[test]
    fn huge_record_grows_then_shrinks() {
        let mut data = b"@pv@ 0 @db.desc@ 1 @".to_vec();
        let body = 64 * 1024 * 1024;
        data.resize(data.len() + body, b'x');
        data.extend_from_slice(b"\n@ \n");
        let small = b"@ex@ 1 2\n".repeat(100_000);
        data.extend_from_slice(&small);
        let mut r = RecordReader::new(
            Chunked {
                data: &data,
                sizes: vec![1 << 20, 7, 300_000],
                i: 0,
            },
            &Format::P4,
            0,
            1,
        );
        let big = r.next_record().unwrap().unwrap();
        assert_eq!(big.bytes.len(), body + 24);
        assert_eq!(big.lines, 2);
        assert!(r.capacity() >= body);
        let mut n = 0;
        while let Some(rec) = r.next_record().unwrap() {
            assert_eq!(rec.bytes, b"@ex@ 1 2\n");
            n += 1;
        }
        assert_eq!(n, 100_000);
        assert_eq!(
            r.capacity(),
            INITIAL,
            "the buffer shrinks back after the huge record"
        );
    }

    #[test]
    fn memory_does_not_grow_with_stream_size() {
        let data = b"line of a plain log\n".repeat(200_000);
        let mut r = RecordReader::new(
            Chunked {
                data: &data,
                sizes: vec![65_536, 1, 12_345],
                i: 0,
            },
            &Format::Lines { record_start: None },
            0,
            1,
        );
        let mut n = 0u64;
        while let Some(rec) = r.next_record().unwrap() {
            assert_eq!(rec.line, n + 1);
            n += 1;
        }
        assert_eq!(n, 200_000);
        assert!(r.capacity() <= INITIAL, "{}", r.capacity());
    }

    /// Records of varied sizes (one far larger than the buffer) with their
    /// expected bytes.
    fn varied() -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut recs = Vec::new();
        for i in 0..40_000usize {
            let body = "x".repeat(i * 7 % 300);
            recs.push(format!("@pv@ 0 @db.t@ {i} @{body}@ \n").into_bytes());
            if i == 20_000 {
                recs.push(
                    format!("@pv@ 0 @db.desc@ @{}\n@ \n", "y".repeat(3 * INITIAL)).into_bytes(),
                );
            }
        }
        (recs.concat(), recs)
    }

    #[test]
    fn pinned_records_stay_through_compaction_and_growth() {
        let (data, recs) = varied();
        let mut r = RecordReader::new(
            Chunked {
                data: &data,
                sizes: vec![50_000, 3, 200_000],
                i: 0,
            },
            &Format::P4,
            0,
            1,
        );
        let mut i = 0;
        while i < recs.len() {
            r.pin();
            let first = i;
            // Pin a few hundred records (the huge one among them), reading
            // as a finite stream, which compacts and grows as it needs.
            while i < recs.len() && i - first < 700 {
                assert_eq!(
                    r.pinned_len(),
                    recs[first..i].iter().map(Vec::len).sum::<usize>()
                );
                let rec = r.next_record().unwrap().unwrap();
                assert_eq!(rec.bytes, &recs[i][..]);
                i += 1;
            }
            assert_eq!(r.pinned(), &recs[first..i].concat()[..]);
            r.unpin();
            assert_eq!(r.pinned_len(), 0);
        }
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn a_full_buffer_of_pinned_records_is_handed_off_not_moved() {
        let (data, recs) = varied();
        let mut r = RecordReader::new(
            Chunked {
                data: &data,
                sizes: vec![65_536, 1, 300_000],
                i: 0,
            },
            &Format::P4,
            0,
            1,
        );
        let (mut got, mut spare, mut full, mut i, mut since) = (Vec::new(), Vec::new(), 0, 0, 0);
        loop {
            r.pin();
            assert_eq!(r.pinned_len(), since);
            let next = r.next_available().unwrap().map(|rec| rec.bytes.to_vec());
            match next {
                Some(bytes) => {
                    assert_eq!(bytes, recs[i]);
                    since += bytes.len();
                    i += 1;
                }
                None if r.is_full() => {
                    full += 1;
                    let want = r.pinned().to_vec();
                    let addr = r.pinned().as_ptr();
                    let (buf, pinned) = r.hand_off(std::mem::take(&mut spare));
                    assert_eq!(&buf[pinned.clone()], &want[..]);
                    assert_eq!(
                        buf[pinned.clone()].as_ptr(),
                        addr,
                        "handed off where they were read"
                    );
                    got.extend_from_slice(&buf[pinned]);
                    spare = buf;
                    since = 0;
                }
                None => break,
            }
        }
        got.extend_from_slice(r.pinned());
        assert_eq!(i, recs.len());
        assert_eq!(got, data);
        assert!(full > 10, "{full} hand-offs");
        assert_eq!(
            r.capacity(),
            INITIAL,
            "back to the resting size after the huge record"
        );
    }
}
