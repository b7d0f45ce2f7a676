//! [`Run`]: the safe, borrowed view of a run of whole records, what a
//! listener that takes runs ([`crate::Listener::takes_runs`]) gets.

use std::marker::PhantomData;

use crate::abi::{RawRun, FLAG_DID_ROTATE, FLAG_INCOMPLETE};
use crate::entry::{end_line, Position};

/// Whole records, end to end, as in the file. Borrowed: valid only during
/// the call that received it.
///
/// Invariant: every pointer in `raw` is valid for `'a` (the constructors'
/// safety contract), which is what makes the accessors below sound.
#[repr(transparent)]
pub struct Run<'a> {
    raw: RawRun,
    _life: PhantomData<&'a [u8]>,
}

impl<'a> Run<'a> {
    /// Views a host-provided array as runs.
    ///
    /// # Safety
    /// Every pointer in every run must be valid for `'a`.
    #[inline]
    pub unsafe fn from_raw_slice(runs: &'a [RawRun]) -> &'a [Run<'a>] {
        // SAFETY: Run is repr(transparent) over RawRun (the PhantomData is
        // zero-sized), so the slice has the same layout.
        unsafe { std::slice::from_raw_parts(runs.as_ptr() as *const Run<'a>, runs.len()) }
    }

    #[inline]
    pub fn as_raw(&self) -> &RawRun {
        &self.raw
    }

    /// The journal's configured name.
    #[inline]
    pub fn journal(&self) -> &'a [u8] {
        // SAFETY: the type's invariant.
        unsafe { self.raw.journal.as_slice() }
    }

    /// The records' bytes, end to end, exactly as in the file.
    #[inline]
    pub fn raw(&self) -> &'a [u8] {
        // SAFETY: the type's invariant.
        unsafe { self.raw.raw.as_slice() }
    }

    /// Number of records in the run.
    #[inline]
    pub fn records(&self) -> u64 {
        self.raw.records
    }

    /// Number of physical lines the run's records span.
    #[inline]
    pub fn lines(&self) -> u64 {
        self.raw.lines
    }

    /// Position of the first record's first byte.
    #[inline]
    pub fn start(&self) -> Position {
        Position {
            sequence: self.raw.sequence,
            offset: self.raw.offset,
            line: self.raw.line,
        }
    }

    /// Position just past the last record, counted as
    /// [`Entry::end`](crate::Entry::end) counts it.
    #[inline]
    pub fn end(&self) -> Position {
        let raw = self.raw();
        Position {
            sequence: self.raw.sequence,
            offset: self.raw.offset + raw.len() as u64,
            line: end_line(self.raw.line, self.raw.lines, raw),
        }
    }

    /// The run's first record is the first delivered from a new file after
    /// a rotation.
    #[inline]
    pub fn did_rotate(&self) -> bool {
        self.raw.flags & FLAG_DID_ROTATE != 0
    }

    /// The run is one record cut off for good (e.g. at the end of a
    /// rotated file).
    #[inline]
    pub fn incomplete(&self) -> bool {
        self.raw.flags & FLAG_INCOMPLETE != 0
    }

    /// The bytes from `p` on, when `p` lies within the run (a record
    /// boundary a listener recorded as done, say); the whole run when `p`
    /// lies before it, nothing when after.
    pub fn raw_from(&self, p: Position) -> &'a [u8] {
        let raw = self.raw();
        if p.sequence != self.raw.sequence {
            return if p.sequence < self.raw.sequence {
                raw
            } else {
                &[]
            };
        }
        let skip = p
            .offset
            .saturating_sub(self.raw.offset)
            .min(raw.len() as u64);
        &raw[skip as usize..]
    }
}

impl std::fmt::Debug for Run<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("journal", &String::from_utf8_lossy(self.journal()))
            .field("start", &self.start())
            .field("end", &self.end())
            .field("records", &self.records())
            .field("did_rotate", &self.did_rotate())
            .field("incomplete", &self.incomplete())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Bytes;

    fn run(raw: &'static [u8], offset: u64, line: u64, lines: u64, flags: u32) -> RawRun {
        RawRun {
            struct_size: RawRun::SIZE,
            flags,
            journal: Bytes::from_static(b"j"),
            sequence: 7,
            offset,
            line,
            lines,
            records: lines,
            raw: Bytes::from_static(raw),
        }
    }

    #[test]
    fn a_run_ends_where_its_last_record_does() {
        let raws = [
            run(b"a\nbb\nccc\n", 100, 10, 3, 0),
            run(b"cut", 200, 20, 1, FLAG_INCOMPLETE),
        ];
        // SAFETY: the runs point to static bytes.
        let runs = unsafe { Run::from_raw_slice(&raws) };
        let p = |offset, line| Position {
            sequence: 7,
            offset,
            line,
        };
        assert_eq!(runs[0].start(), p(100, 10));
        assert_eq!(runs[0].end(), p(109, 13));
        assert!(!runs[0].incomplete() && !runs[0].did_rotate());
        // A record without its newline ends on the line it started.
        assert_eq!(runs[1].end(), p(203, 20));
        assert!(runs[1].incomplete());
    }

    #[test]
    fn the_bytes_from_a_position_cut_the_run_there() {
        let raws = [run(b"a\nbb\nccc\n", 100, 10, 3, 0)];
        // SAFETY: the run points to static bytes.
        let r = &unsafe { Run::from_raw_slice(&raws) }[0];
        let at = |sequence, offset| Position {
            sequence,
            offset,
            line: 0,
        };
        assert_eq!(r.raw_from(at(7, 0)), b"a\nbb\nccc\n");
        assert_eq!(r.raw_from(at(7, 102)), b"bb\nccc\n");
        assert_eq!(r.raw_from(at(7, 109)), b"");
        assert_eq!(r.raw_from(at(7, 500)), b"");
        assert_eq!(r.raw_from(at(6, 500)), b"a\nbb\nccc\n");
        assert_eq!(r.raw_from(at(8, 0)), b"");
    }
}
