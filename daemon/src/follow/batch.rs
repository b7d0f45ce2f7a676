//! Entries read from disk on their way to one listener.
//!
//! Records are not copied on their way: the bytes of the records read in
//! one go stay in the reader's buffer, which the batch then takes whole
//! (its *view*), handing its previous one back for the next reads. Only
//! records added one by one around a rotation or truncation are copied.
//!
//! The entries' metadata arrays are reused too ([`ENTRIES`]): catching up
//! on small records, a batch holds some twenty thousand of them (a
//! megabyte), and a fresh array per batch costs its pages' faults and
//! zeroing every time, more than pushing the entries into it.

use std::sync::Mutex;

use logdaemon_sdk::abi::GapCause;
use logdaemon_sdk::Position;

/// `Meta::start` of an entry whose bytes were copied into `Batch::bytes`.
const COPIED: usize = 1 << (usize::BITS - 1);

/// Entry arrays given back by released batches, for the next batches
/// that need room ([`Batch::reserve`]): every shot of a journal's reader
/// is a new batch, released once its listeners passed it.
static ENTRIES: Mutex<Vec<Vec<Meta>>> = Mutex::new(Vec::new());
/// Entry arrays kept for reuse, at most (a few batches are in flight at
/// once: the one being filled, the ones listeners hold).
const KEEP_ARRAYS: usize = 4;
/// Arrays with room for more entries than this are not kept (grown by a
/// batch of tiny records, or by a huge `batch_bytes`): at most
/// `KEEP_ARRAYS` × 4 MiB stay allocated while nothing is read.
const KEEP_ENTRIES: usize = (4 << 20) / std::mem::size_of::<Meta>();

/// An empty entry array with room for at least `n` entries, reused if
/// one was given back.
fn take_entries(n: usize) -> Vec<Meta> {
    let got = ENTRIES.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let mut v = got.unwrap_or_default();
    v.reserve(n);
    v
}

/// Gives an entry array back for reuse (emptied).
fn give_entries(mut v: Vec<Meta>) {
    if v.capacity() == 0 || v.capacity() > KEEP_ENTRIES {
        return;
    }
    v.clear();
    let mut kept = ENTRIES.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() < KEEP_ARRAYS {
        kept.push(v);
    }
}

/// Metadata of one entry; [`Batch::raw`] gives its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub sequence: u64,
    pub offset: u64,
    pub len: u64,
    pub line: u64,
    pub lines: u64,
    pub flags: u32,
    /// Where the bytes are in the batch (set by the batch).
    pub start: usize,
}

impl Meta {
    #[inline]
    pub fn end(&self) -> Position {
        Position {
            sequence: self.sequence,
            offset: self.offset + self.len,
            line: self.line + self.lines,
        }
    }
}

/// A batch: entries in stream order, their bytes in the view (read in one
/// go) or in `bytes` (copied one by one).
#[derive(Debug, Default)]
pub struct Batch {
    /// Bytes of the entries that were copied.
    pub bytes: Vec<u8>,
    pub entries: Vec<Meta>,
    /// Position after the last entry (also moves over skipped bytes).
    pub end: Option<Position>,
    /// A reader's buffer taken whole; entries' bytes begin at `view_base`.
    view: Vec<u8>,
    view_base: usize,
    /// Entries added with [`push_view`](Self::push_view) whose bytes are
    /// still in the reader's buffer, not yet in `view`.
    unviewed: usize,
    /// The previous view, to give to the reader at the next hand-off.
    spare: Vec<u8>,
    /// Bytes of all entries.
    size: usize,
    /// Entries with flags (see [`Batch::for_each_run`]).
    flagged: usize,
}

/// Entries of a batch that lie end to end, in the file and in one buffer
/// of the batch, with flags on the first at most (see [`Batch::for_each_run`]).
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// The first entry.
    pub first: &'a Meta,
    /// Number of entries.
    pub records: usize,
    /// The line after the last entry (its `end().line`).
    pub end_line: u64,
    /// The entries' bytes.
    pub bytes: &'a [u8],
}

impl Batch {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
        self.end = None;
        if !self.view.is_empty() {
            self.spare = std::mem::take(&mut self.view);
        }
        self.view_base = 0;
        self.unviewed = 0;
        self.size = 0;
        self.flagged = 0;
    }

    /// Clears the batch and gives its buffers back to the allocator.
    pub fn release(&mut self) {
        self.clear();
        self.bytes = Vec::new();
        give_entries(std::mem::take(&mut self.entries));
        crate::bufpool::give(std::mem::take(&mut self.view));
        crate::bufpool::give(std::mem::take(&mut self.spare));
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of all entries.
    #[inline]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Adds an entry, copying its bytes.
    pub fn push(&mut self, m: Meta, raw: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(raw);
        self.add(Meta {
            start: start | COPIED,
            ..m
        });
    }

    /// Adds an entry whose bytes are in a reader's buffer, `at` bytes after
    /// the first pinned byte; [`adopt`](Self::adopt) must take that buffer
    /// before the entry's bytes are read.
    #[inline]
    pub fn push_view(&mut self, m: Meta, at: usize) {
        self.unviewed += 1;
        self.add(Meta { start: at, ..m });
    }

    /// Makes room for `ample` more entries when there is none for `need`.
    #[inline]
    pub fn reserve(&mut self, need: usize, ample: usize) {
        if self.entries.capacity() == 0 {
            self.entries = take_entries(ample.max(need));
        } else if self.entries.capacity() - self.entries.len() < need {
            self.entries.reserve(ample.max(need));
        }
    }

    /// [`push_view`](Self::push_view) for records of one line each, end to
    /// end in a reader's buffer from `at` bytes after the first pinned
    /// byte (as [`RecordReader::take_lines`](crate::format::RecordReader::take_lines)
    /// returns them): the first at stream `offset` on `line`, each ending
    /// at the next of `ends` (relative to `at`).
    pub fn push_lines(&mut self, sequence: u64, offset: u64, line: u64, ends: &[usize], at: usize) {
        let Some(&used) = ends.last() else {
            return;
        };
        debug_assert!(self.view.is_empty(), "one view per batch");
        let mut from = 0;
        self.entries.extend(ends.iter().enumerate().map(|(i, &to)| {
            let m = Meta {
                sequence,
                offset: offset + from as u64,
                len: (to - from) as u64,
                line: line + i as u64,
                lines: 1,
                flags: 0,
                start: at + from,
            };
            from = to;
            m
        }));
        self.unviewed += ends.len();
        self.size += used;
        self.end = Some(Position {
            sequence,
            offset: offset + used as u64,
            line: line + ends.len() as u64,
        });
    }

    /// Calls `f` with the batch's entries cut into runs, in order: a run
    /// is the longest stretch of entries of one file whose bytes follow
    /// each other in the file and in one buffer of the batch, where only
    /// the first may have flags, and an incomplete entry
    /// (`FLAG_INCOMPLETE`) stands alone. A batch read in one go is one run,
    /// found without looking at its entries one by one.
    pub fn for_each_run(&self, mut f: impl FnMut(Run<'_>)) {
        let (Some(first), Some(last)) = (self.entries.first(), self.entries.last()) else {
            return;
        };
        let (from, to) = (first.start & !COPIED, last.start & !COPIED);
        let whole = self.flagged == 0
            && first.sequence == last.sequence
            && (first.start ^ last.start) & COPIED == 0
            && to + last.len as usize - from == self.size
            && last.offset + last.len - first.offset == self.size as u64;
        if whole {
            // Offsets and bytes both grow by exactly the entries' lengths
            // from the first to the last: no room for a hole in either.
            let at = if first.start & COPIED == 0 {
                self.view_base + from
            } else {
                from
            };
            f(Run {
                first,
                records: self.entries.len(),
                end_line: last.line + last.lines,
                bytes: &self.chunk(first)[at..at + self.size],
            });
            return;
        }
        let mut i = 0;
        while i < self.entries.len() {
            let first = &self.entries[i];
            let chunk = self.chunk(first).as_ptr();
            let mut j = i + 1;
            let mut last = first;
            if first.flags & logdaemon_sdk::abi::FLAG_INCOMPLETE == 0 {
                while let Some(m) = self.entries.get(j) {
                    let joins = m.flags == 0
                        && m.sequence == last.sequence
                        && m.offset == last.offset + last.len
                        && std::ptr::eq(self.chunk(m).as_ptr(), chunk)
                        && self.raw(m).as_ptr()
                            == self.raw(last).as_ptr().wrapping_add(last.len as usize);
                    if !joins {
                        break;
                    }
                    last = m;
                    j += 1;
                }
            }
            let start = self.raw(first).as_ptr() as usize - chunk as usize;
            let len = (last.offset + last.len - first.offset) as usize;
            f(Run {
                first,
                records: j - i,
                end_line: last.line + last.lines,
                bytes: &self.chunk(first)[start..start + len],
            });
            i = j;
        }
    }

    #[inline]
    fn add(&mut self, m: Meta) {
        debug_assert!(
            m.start & COPIED != 0 || self.view.is_empty(),
            "one view per batch"
        );
        self.size += m.len as usize;
        self.flagged += usize::from(m.flags != 0);
        self.end = Some(m.end());
        self.entries.push(m);
    }

    /// Whether entries await [`adopt`](Self::adopt).
    pub fn awaits_view(&self) -> bool {
        self.unviewed > 0
    }

    /// Whether the batch holds a view: more entries from the reader would
    /// need another one, so the batch is complete.
    pub fn has_view(&self) -> bool {
        !self.view.is_empty()
    }

    /// The buffer to give a reader in exchange for its own.
    pub fn take_spare(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.spare)
    }

    /// Copies `pinned`, the bytes the entries awaiting a view are in, into
    /// the batch instead: cheaper than taking a buffer that holds many more
    /// bytes not yet returned (which the reader would have to copy).
    pub fn copy_in(&mut self, pinned: &[u8]) {
        let base = self.bytes.len();
        self.bytes.extend_from_slice(pinned);
        let n = self.entries.len();
        for m in &mut self.entries[n - self.unviewed..] {
            m.start = (base + m.start) | COPIED;
        }
        self.unviewed = 0;
    }

    /// When the entries' bytes in the view are at most `limit`, copies
    /// them into the batch and gives the view back to the buffer pool: a
    /// batch of a few lines then holds those lines, not a read buffer, for
    /// as long as its listeners take to pass it. Entries keep their order,
    /// so the copied bytes stay end to end as [`chunk`](Self::chunk) has them.
    pub fn unview_if_small(&mut self, limit: usize) {
        if self.view.is_empty() || self.unviewed > 0 || self.size > limit {
            return;
        }
        for m in &mut self.entries {
            if m.start & COPIED == 0 {
                let at = self.view_base + m.start;
                let start = self.bytes.len();
                self.bytes
                    .extend_from_slice(&self.view[at..at + m.len as usize]);
                m.start = start | COPIED;
            }
        }
        crate::bufpool::give(std::mem::take(&mut self.view));
        self.view_base = 0;
    }

    /// Takes a reader's buffer (from `RecordReader::hand_off`), whose pinned
    /// bytes begin at `base`, as the view of the entries awaiting it.
    pub fn adopt(&mut self, buf: Vec<u8>, base: usize) {
        debug_assert!(self.view.is_empty(), "one view per batch");
        self.view = buf;
        self.view_base = base;
        self.unviewed = 0;
    }

    /// The whole buffer that holds the bytes of `m` (see [`Batch::raw`]):
    /// listeners get it to write runs of entries without joining memory
    /// of different buffers.
    #[inline]
    pub fn chunk(&self, m: &Meta) -> &[u8] {
        if m.start & COPIED != 0 {
            &self.bytes
        } else {
            &self.view
        }
    }

    #[inline]
    pub fn raw(&self, m: &Meta) -> &[u8] {
        let len = m.len as usize;
        if m.start & COPIED != 0 {
            let at = m.start & !COPIED;
            &self.bytes[at..at + len]
        } else {
            let at = self.view_base + m.start;
            &self.view[at..at + len]
        }
    }
}

/// Bytes that can no longer be delivered (reported with `on_gap = "report"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapEvent {
    pub from: Position,
    pub to: Position,
    pub cause: GapCause,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_batch(n: usize, line: u64) -> Batch {
        let mut b = Batch::default();
        let ends: Vec<usize> = (1..=n).map(|i| i * 10).collect();
        b.reserve(n, n);
        b.push_lines(1, 100, line, &ends, 0);
        b
    }

    #[test]
    fn a_released_batch_s_entry_array_is_reused_empty_by_the_next_batch() {
        // Other tests share the pool: try until ours comes back.
        let mut reused = false;
        for round in 0..100 {
            let mut a = lines_batch(1000, 1);
            let p = a.entries.as_ptr();
            a.release();
            assert!(a.entries.capacity() == 0 && a.is_empty());
            let b = lines_batch(3, 7 + round);
            reused |= b.entries.as_ptr() == p;
            // Whichever array it got, it holds only its own entries.
            assert_eq!(b.entries.len(), 3);
            let got: Vec<(u64, u64, u64)> = b
                .entries
                .iter()
                .map(|m| (m.offset, m.len, m.line))
                .collect();
            assert_eq!(
                got,
                [
                    (100, 10, 7 + round),
                    (110, 10, 8 + round),
                    (120, 10, 9 + round)
                ]
            );
            if reused {
                break;
            }
        }
        assert!(reused, "the array came back");
    }

    fn meta(sequence: u64, offset: u64, raw: &[u8], line: u64, flags: u32) -> Meta {
        Meta {
            sequence,
            offset,
            len: raw.len() as u64,
            line,
            lines: raw.iter().filter(|&&b| b == b'\n').count() as u64,
            flags,
            start: 0,
        }
    }

    /// The runs of `b`: (sequence, offset, records, end line, flags, bytes).
    fn runs(b: &Batch) -> Vec<(u64, u64, usize, u64, u32, Vec<u8>)> {
        let mut got = Vec::new();
        b.for_each_run(|r| {
            got.push((
                r.first.sequence,
                r.first.offset,
                r.records,
                r.end_line,
                r.first.flags,
                r.bytes.to_vec(),
            ))
        });
        got
    }

    #[test]
    fn a_batch_read_in_one_go_is_one_run() {
        let mut b = Batch::default();
        b.reserve(3, 3);
        let buf = b"xxa\nbb\nccc\n".to_vec();
        b.push_lines(4, 100, 10, &[2, 5, 9], 0);
        b.adopt(buf, 2);
        assert_eq!(runs(&b), [(4, 100, 3, 13, 0, b"a\nbb\nccc\n".to_vec())]);
        // Copied into the batch, it stays one run.
        b.unview_if_small(1 << 20);
        assert_eq!(runs(&b), [(4, 100, 3, 13, 0, b"a\nbb\nccc\n".to_vec())]);
        assert!(runs(&Batch::default()).is_empty());
        // No flags, bytes end to end in the batch, but a hole in the file.
        let mut b = Batch::default();
        b.push(meta(1, 0, b"a\n", 1, 0), b"a\n");
        b.push(meta(1, 10, b"b\n", 2, 0), b"b\n");
        assert_eq!(
            runs(&b),
            [
                (1, 0, 1, 2, 0, b"a\n".to_vec()),
                (1, 10, 1, 3, 0, b"b\n".to_vec())
            ]
        );
    }

    #[test]
    fn runs_break_at_flags_files_holes_and_buffers() {
        use logdaemon_sdk::abi::{FLAG_DID_ROTATE, FLAG_INCOMPLETE};
        let mut b = Batch::default();
        // Copied one by one: a run in `bytes`, then a cut-off record alone,
        // then a new file whose first record is flagged.
        b.push(meta(1, 0, b"a\n", 1, 0), b"a\n");
        b.push(meta(1, 2, b"b\n", 2, 0), b"b\n");
        b.push(meta(1, 4, b"cut", 3, FLAG_INCOMPLETE), b"cut");
        b.push(meta(2, 0, b"d\n", 1, FLAG_DID_ROTATE), b"d\n");
        b.push(meta(2, 2, b"e\n", 2, 0), b"e\n");
        // Bytes skipped in the file (a hole), then records in a view.
        b.push(meta(2, 10, b"f\n", 5, 0), b"f\n");
        b.reserve(2, 2);
        b.push_lines(2, 12, 6, &[2, 4], 0);
        b.adopt(b"g\nh\n".to_vec(), 0);
        let got = runs(&b);
        let want: Vec<(u64, u64, usize, u64, u32, Vec<u8>)> = vec![
            (1, 0, 2, 3, 0, b"a\nb\n".to_vec()),
            (1, 4, 1, 3, FLAG_INCOMPLETE, b"cut".to_vec()),
            (2, 0, 2, 3, FLAG_DID_ROTATE, b"d\ne\n".to_vec()),
            (2, 10, 1, 6, 0, b"f\n".to_vec()),
            (2, 12, 2, 8, 0, b"g\nh\n".to_vec()),
        ];
        assert_eq!(got, want);
        // Every entry is in exactly one run, in order.
        let records: usize = got.iter().map(|r| r.2).sum();
        assert_eq!(records, b.entries.len());
    }

    #[test]
    fn arrays_too_large_to_keep_go_back_to_the_allocator() {
        let mut big = Vec::with_capacity(KEEP_ENTRIES + 1);
        big.push(lines_batch(1, 1).entries[0]);
        give_entries(big);
        // By capacity, not address: tests running beside this one give
        // arrays too, and one may be allocated where `big` was.
        let taken: Vec<Vec<Meta>> = (0..=KEEP_ARRAYS).map(|_| take_entries(1)).collect();
        assert!(
            taken.iter().all(|t| t.capacity() <= KEEP_ENTRIES),
            "an oversized array was kept"
        );
    }
}
