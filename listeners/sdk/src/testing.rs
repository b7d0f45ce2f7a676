//! Owned entries for testing a listener outside the host.
//!
//! ```
//! use logdaemon_sdk::testing::Batch;
//! let b = Batch::p4("p4", 7, 0, &[b"@pv@ 0 @db.desc@ 1 @x@ \n", b"@ex@ 1 2\n"]);
//! assert_eq!(b.entries()[1].offset(), 24);
//! assert_eq!(b.entries()[0].field(1), Some(&b"db.desc"[..]));
//! ```

use std::marker::PhantomData;

use crate::abi::{Bytes, RawEntry, RawRun, FLAG_DID_ROTATE, FLAG_INCOMPLETE};
use crate::entry::Entry;
use crate::run::Run;

struct Owned {
    /// `raw` of the entry is `Batch::bytes[start..start + len]`.
    start: usize,
    op: Vec<u8>,
    fields: Vec<Vec<u8>>,
    field_bytes: Vec<Bytes>,
}

/// A batch of entries that owns its bytes. As in a batch from the host,
/// the raw bytes of the entries lie end to end in one buffer.
pub struct Batch {
    journal: Vec<u8>,
    bytes: Vec<u8>,
    owned: Vec<Owned>,
    raw: Vec<RawEntry>,
}

// SAFETY: the raw pointers point into heap buffers owned by the batch.
unsafe impl Send for Batch {}

impl Batch {
    /// Records of a p4 journal, laid end to end from `offset` (line numbers
    /// count from 1 at offset 0 unless the records say otherwise).
    pub fn p4(journal: &str, sequence: u64, offset: u64, records: &[&[u8]]) -> Batch {
        Self::build(journal, sequence, offset, records, true)
    }

    /// Records of a line log.
    pub fn lines(journal: &str, sequence: u64, offset: u64, records: &[&[u8]]) -> Batch {
        Self::build(journal, sequence, offset, records, false)
    }

    fn build(journal: &str, sequence: u64, offset: u64, records: &[&[u8]], p4: bool) -> Batch {
        let mut b = Batch {
            journal: journal.as_bytes().to_vec(),
            bytes: records.concat(),
            owned: Vec::new(),
            raw: Vec::new(),
        };
        let mut start = 0;
        let mut off = offset;
        let mut line = 1;
        for r in records {
            let lines =
                r.iter().filter(|&&c| c == b'\n').count() as u64 + u64::from(!r.ends_with(b"\n"));
            let (op, fields) = if p4 {
                let (op, f) = crate::p4::split(r);
                (
                    op.into_owned(),
                    f.into_iter().map(|c| c.into_owned()).collect(),
                )
            } else {
                (Vec::new(), Vec::new())
            };
            b.owned.push(Owned {
                start,
                op,
                fields,
                field_bytes: Vec::new(),
            });
            start += r.len();
            b.raw.push(RawEntry {
                struct_size: RawEntry::SIZE,
                journal: Bytes::EMPTY,
                sequence,
                offset: off,
                len: r.len() as u64,
                line,
                lines,
                flags: if r.ends_with(b"\n") {
                    0
                } else {
                    FLAG_INCOMPLETE
                },
                raw: Bytes::EMPTY,
                op: Bytes::EMPTY,
                fields: std::ptr::null(),
                n_fields: 0,
                chunk: Bytes::EMPTY,
            });
            off += r.len() as u64;
            line += r.iter().filter(|&&c| c == b'\n').count() as u64;
        }
        b.relink();
        b
    }

    fn relink(&mut self) {
        for (o, r) in self.owned.iter_mut().zip(self.raw.iter_mut()) {
            o.field_bytes = o.fields.iter().map(|f| Bytes::new(f)).collect();
            r.journal = Bytes::new(&self.journal);
            r.raw = Bytes::new(&self.bytes[o.start..o.start + r.len as usize]);
            r.chunk = Bytes::new(&self.bytes);
            r.op = Bytes::new(&o.op);
            r.fields = o.field_bytes.as_ptr();
            r.n_fields = o.field_bytes.len();
        }
    }

    /// Marks entry `i` as the first after a rotation.
    pub fn set_did_rotate(&mut self, i: usize) -> &mut Self {
        self.raw[i].flags |= FLAG_DID_ROTATE;
        self
    }

    pub fn entries(&self) -> &[Entry<'_>] {
        // SAFETY: every pointer points into self, which outlives the borrow.
        unsafe { Entry::from_raw_slice(&self.raw) }
    }

    /// The batch as the host hands it to a listener that takes runs: a run
    /// ends before an entry with flags and after an incomplete one.
    pub fn runs(&self) -> Runs<'_> {
        let mut raw: Vec<RawRun> = Vec::new();
        for (e, o) in self.raw.iter().zip(&self.owned) {
            let last = raw.last_mut().filter(|r| {
                e.flags == 0 && r.flags & FLAG_INCOMPLETE == 0 && r.sequence == e.sequence
            });
            match last {
                Some(r) => {
                    r.raw.len += e.len as usize;
                    r.lines = e.line + e.lines - r.line;
                    r.records += 1;
                }
                None => raw.push(RawRun {
                    struct_size: RawRun::SIZE,
                    flags: e.flags,
                    journal: e.journal,
                    sequence: e.sequence,
                    offset: e.offset,
                    line: e.line,
                    lines: e.lines,
                    records: 1,
                    raw: Bytes::new(&self.bytes[o.start..o.start + e.len as usize]),
                }),
            }
        }
        Runs {
            raw,
            _batch: PhantomData,
        }
    }
}

/// The runs of a [`Batch`], borrowing it.
pub struct Runs<'a> {
    raw: Vec<RawRun>,
    _batch: PhantomData<&'a Batch>,
}

impl Runs<'_> {
    pub fn get(&self) -> &[Run<'_>] {
        // SAFETY: every pointer points into the batch, which outlives the
        // borrow of `self`.
        unsafe { Run::from_raw_slice(&self.raw) }
    }
}
