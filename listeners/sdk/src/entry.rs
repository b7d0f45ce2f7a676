//! Safe, borrowed views of what the host delivers.

use std::marker::PhantomData;

use crate::abi::{
    Bytes, GapCause, RawEntry, RawGap, RawPosition, FLAG_DID_ROTATE, FLAG_INCOMPLETE,
};

/// A position in a journal stream: journal sequence number (the p4 journal
/// number, or a rotation generation for line logs), byte offset in that
/// journal file (uncompressed), and the 1-based line number at that offset.
/// Positions order by `(sequence, offset)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Position {
    pub sequence: u64,
    pub offset: u64,
    pub line: u64,
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Position {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.sequence, self.offset).cmp(&(other.sequence, other.offset))
    }
}

impl From<RawPosition> for Position {
    fn from(p: RawPosition) -> Self {
        Position {
            sequence: p.sequence,
            offset: p.offset,
            line: p.line,
        }
    }
}

impl From<Position> for RawPosition {
    fn from(p: Position) -> Self {
        RawPosition {
            sequence: p.sequence,
            offset: p.offset,
            line: p.line,
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sequence {} offset {} (line {})",
            self.sequence, self.offset, self.line
        )
    }
}

/// One journal record. Borrowed: valid only during the call that received it.
///
/// Invariant: every pointer in `raw` is valid for `'a` (the constructors'
/// safety contract), which is what makes the accessors below sound.
#[repr(transparent)]
pub struct Entry<'a> {
    raw: RawEntry,
    _life: PhantomData<&'a [u8]>,
}

impl<'a> Entry<'a> {
    /// Views a host-provided array as entries.
    ///
    /// # Safety
    /// Every pointer in every entry must be valid for `'a`.
    #[inline]
    pub unsafe fn from_raw_slice(entries: &'a [RawEntry]) -> &'a [Entry<'a>] {
        // SAFETY: Entry is repr(transparent) over RawEntry (the
        // PhantomData is zero-sized), so the slice has the same layout.
        unsafe { std::slice::from_raw_parts(entries.as_ptr() as *const Entry<'a>, entries.len()) }
    }

    /// # Safety
    /// Every pointer in `raw` must be valid for `'a`.
    #[inline]
    pub unsafe fn from_raw(raw: &'a RawEntry) -> &'a Entry<'a> {
        // SAFETY: Entry is repr(transparent) over RawEntry.
        unsafe { &*(raw as *const RawEntry as *const Entry<'a>) }
    }

    #[inline]
    pub fn as_raw(&self) -> &RawEntry {
        &self.raw
    }

    /// The journal's configured name.
    #[inline]
    pub fn journal(&self) -> &'a [u8] {
        // SAFETY: the type's invariant.
        unsafe { self.raw.journal.as_slice() }
    }
    #[inline]
    pub fn sequence(&self) -> u64 {
        self.raw.sequence
    }
    /// Byte offset of the record in its (uncompressed) journal file.
    #[inline]
    pub fn offset(&self) -> u64 {
        self.raw.offset
    }
    /// Length in bytes, including the terminating newline.
    #[inline]
    pub fn len(&self) -> u64 {
        self.raw.len
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.raw.len == 0
    }
    /// 1-based number of the record's first line.
    #[inline]
    pub fn line(&self) -> u64 {
        self.raw.line
    }
    /// Number of physical lines the record spans.
    #[inline]
    pub fn lines(&self) -> u64 {
        self.raw.lines
    }
    /// Position of the record's first byte.
    #[inline]
    pub fn start(&self) -> Position {
        Position {
            sequence: self.raw.sequence,
            offset: self.raw.offset,
            line: self.raw.line,
        }
    }
    /// Position just past the record: where a cursor stands once it is handled.
    #[inline]
    pub fn end(&self) -> Position {
        Position {
            sequence: self.raw.sequence,
            offset: self.raw.offset + self.raw.len,
            line: end_line(self.raw.line, self.raw.lines, self.raw()),
        }
    }
    /// The bytes exactly as in the file.
    #[inline]
    pub fn raw(&self) -> &'a [u8] {
        // SAFETY: the type's invariant.
        unsafe { self.raw.raw.as_slice() }
    }
    /// p4: the op (`pv`, `dv`, `ex`, ...). Lines: empty.
    #[inline]
    pub fn op(&self) -> &'a [u8] {
        // SAFETY: the type's invariant.
        unsafe { self.raw.op.as_slice() }
    }
    /// p4: the values after the op, unquoted (`@@` is `@`).
    pub fn fields(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let fields: &'a [Bytes] = if self.raw.n_fields == 0 || self.raw.fields.is_null() {
            &[]
        } else {
            // SAFETY: the type's invariant: `n_fields` slices at `fields`.
            unsafe { std::slice::from_raw_parts(self.raw.fields, self.raw.n_fields) }
        };
        // SAFETY: the type's invariant covers the fields' bytes too.
        fields.iter().map(|b| unsafe { b.as_slice() })
    }
    /// The `i`th field, if there is one.
    #[inline]
    pub fn field(&self, i: usize) -> Option<&'a [u8]> {
        self.fields().nth(i)
    }
    /// The host buffer holding [`Entry::raw`], and where `raw` starts in it.
    /// Entries of one call that share a chunk and follow each other in it
    /// can be written as one run, `&chunk[first_start..last_end]`, without
    /// joining memory of different allocations. Without a chunk from the
    /// host (version-1 hosts, hand-built entries) `raw` is its own chunk.
    #[inline]
    pub fn chunk(&self) -> (&'a [u8], usize) {
        let raw = self.raw();
        // SAFETY: the type's invariant.
        let chunk = unsafe { self.raw.chunk.as_slice() };
        // Only addresses are compared: `raw` must lie within `chunk`.
        let (c, r) = (chunk.as_ptr() as usize, raw.as_ptr() as usize);
        if raw.is_empty() || r < c || r + raw.len() > c + chunk.len() {
            return (raw, 0);
        }
        (chunk, r - c)
    }
    /// First entry delivered from a new file after a rotation.
    #[inline]
    pub fn did_rotate(&self) -> bool {
        self.raw.flags & FLAG_DID_ROTATE != 0
    }
    /// A record cut off for good (e.g. at the end of a rotated file).
    #[inline]
    pub fn incomplete(&self) -> bool {
        self.raw.flags & FLAG_INCOMPLETE != 0
    }
}

/// The line a cursor stands on after records of `raw` that begin on
/// `line` and span `lines` lines: the next one, unless the last record
/// was cut off before its newline (its line is not done).
pub(crate) fn end_line(line: u64, lines: u64, raw: &[u8]) -> u64 {
    let ended_with_newline = raw.last() == Some(&b'\n');
    line + lines - u64::from(!ended_with_newline && lines > 0)
}

impl std::fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("journal", &String::from_utf8_lossy(self.journal()))
            .field("start", &self.start())
            .field("len", &self.len())
            .field("lines", &self.lines())
            .field("did_rotate", &self.did_rotate())
            .field("incomplete", &self.incomplete())
            .field("raw", &String::from_utf8_lossy(self.raw()))
            .finish()
    }
}

/// Bytes the host knows existed and can no longer deliver (only with
/// `on_gap = "report"`; otherwise the daemon stops instead).
#[derive(Debug, Clone, Copy)]
pub struct Gap<'a> {
    pub journal: &'a [u8],
    pub from: Position,
    pub to: Position,
    /// `deleted`, `copytruncate`, `corrupt`, `nul-fill` or `operator`.
    pub cause: &'a str,
    /// The cause as a value to decide on (`None`: a cause this SDK does
    /// not know, or a version-1 host).
    pub kind: Option<GapCause>,
    pub detail: &'a str,
}

impl<'a> Gap<'a> {
    /// # Safety
    /// Every pointer in `raw` must be valid for `'a`.
    pub unsafe fn from_raw(raw: &'a RawGap) -> Gap<'a> {
        // SAFETY: the caller's promise.
        let (journal, cause, detail) = unsafe {
            (
                raw.journal.as_slice(),
                raw.cause.as_slice(),
                raw.detail.as_slice(),
            )
        };
        Gap {
            journal,
            from: raw.from.into(),
            to: raw.to.into(),
            cause: std::str::from_utf8(cause).unwrap_or("?"),
            kind: GapCause::from_u32(raw.cause_code),
            detail: std::str::from_utf8(detail).unwrap_or("?"),
        }
    }
}
