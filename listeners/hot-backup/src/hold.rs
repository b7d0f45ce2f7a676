//! Holding back the unfinished end of the stream.
//!
//! A standby must never stop in the middle of a p4 transaction: replaying a
//! half transaction corrupts the standby's database. Entries are copied in
//! here as they arrive and only the prefix that ends on a safe boundary is
//! shipped; the rest waits (acknowledged with `Ack::Upto`) for the records
//! that close it. On any failure the whole hold is dropped: the host
//! delivers those entries again from its last acknowledgement.

use std::borrow::Cow;

use logdaemon_sdk::{Entry, Position};

use crate::config::Transactions;

/// Held records that lie end to end in one file, where shipping may only
/// stop after the last one (if at all): one entry per transaction rather
/// than per record (a backlog holds hundreds of thousands of records).
#[derive(Clone, Copy, Debug)]
pub struct Rec {
    /// Position of the first record.
    pub start: Position,
    pub len: u64,
    /// Index of the first byte in [`Hold::data`].
    pub at: usize,
    /// Shipping may stop right after the last record.
    pub boundary: bool,
    /// How many records.
    pub records: usize,
}

/// A contiguous run of held bytes in one journal file.
#[derive(Debug)]
pub struct Run<'a> {
    pub sequence: u64,
    pub offset: u64,
    pub bytes: &'a [u8],
    /// How many held records the run covers.
    pub recs: usize,
    /// Position of the run's first record.
    pub start: Position,
}

impl Run<'_> {
    pub fn end(&self) -> u64 {
        self.offset + self.bytes.len() as u64
    }
}

/// Records taken out of the hold to be shipped: their bytes and runs.
#[derive(Debug)]
pub struct Taken {
    pub data: Vec<u8>,
    pub runs: Vec<RunAt>,
}

/// A run of [`Taken::data`].
#[derive(Clone, Debug)]
pub struct RunAt {
    pub sequence: u64,
    pub offset: u64,
    pub range: std::ops::Range<usize>,
    pub recs: usize,
    pub start: Position,
}

impl Taken {
    pub fn run(&self, i: usize) -> Run<'_> {
        let r = &self.runs[i];
        Run {
            sequence: r.sequence,
            offset: r.offset,
            bytes: &self.data[r.range.clone()],
            recs: r.recs,
            start: r.start,
        }
    }

    /// Where the batch starts.
    pub fn start(&self) -> Option<Position> {
        self.runs.first().map(|r| r.start)
    }
}

enum Mark {
    /// `@mx@ pid time`: a transaction of `pid` stays open until its `@ex@`.
    Mx,
    /// `@ex@ pid time`: the end of a transaction.
    Ex,
}

/// Whether a p4 record opens (`@mx@`) or closes (`@ex@`) a transaction,
/// with its process id. The listener does not have the host split every
/// record into fields (that would cost more than shipping it): these two
/// ops are recognised by their first bytes, the process id (a number) is
/// read in place and only a quoted one is split out.
fn transaction_mark(raw: &[u8]) -> Option<(Mark, Cow<'_, [u8]>)> {
    let mark = match raw.get(..5)? {
        b"@mx@ " => Mark::Mx,
        b"@ex@ " => Mark::Ex,
        _ => return None,
    };
    let rest = &raw[5..];
    let end = rest
        .iter()
        .position(|&b| b == b' ' || b == b'\n')
        .unwrap_or(rest.len());
    if !rest[..end].contains(&b'@') {
        return Some((mark, Cow::Borrowed(&rest[..end])));
    }
    let (_, fields) = logdaemon_sdk::p4::split(raw);
    Some((
        mark,
        Cow::Owned(fields.first().map(|f| f.to_vec()).unwrap_or_default()),
    ))
}

#[derive(Debug)]
pub struct Hold {
    mode: Transactions,
    max: u64,
    data: Vec<u8>,
    recs: Vec<Rec>,
    /// Process ids of `@mx@` records not yet closed by their `@ex@`.
    open_mx: Vec<(Vec<u8>, Position)>,
    /// Set when the hold outgrew `max` and was shipped past a transaction.
    pub overflowed: bool,
    /// `(sequence, offset)` where the next entry is expected: the end of
    /// the last one pushed, or where the host resumes. See [`Hold::push`].
    next: Option<(u64, u64)>,
}

impl Hold {
    pub fn new(mode: Transactions, max: u64) -> Hold {
        Hold {
            mode,
            max,
            data: Vec::new(),
            recs: Vec::new(),
            open_mx: Vec::new(),
            overflowed: false,
            next: None,
        }
    }

    /// Where the host delivers from next (its cursor, or the
    /// acknowledgement of a failed call); `None` when unknown.
    pub fn expect_at(&mut self, p: Option<Position>) {
        self.next = p.map(|p| (p.sequence, p.offset));
    }

    /// Holds `e`. An entry that starts past where the last one of the same
    /// file ended follows NUL filler the host dropped (it skips the NULs a
    /// writer leaves before a record; every other loss is reported as a
    /// gap, never silently): the filler is held with the entry, so the
    /// standby gets exactly the journal's bytes and no hole it cannot fill.
    pub fn push(&mut self, e: &Entry<'_>) {
        let filler = match self.next {
            Some((seq, off)) if seq == e.sequence() && e.offset() > off => e.offset() - off,
            _ => 0,
        };
        let filler = if filler > self.max { 0 } else { filler };
        self.next = Some((e.sequence(), e.offset() + e.len()));
        if let Some(last) = self.recs.last_mut() {
            if e.sequence() != last.start.sequence {
                // The previous file is finished: nothing more can close
                // what it left open.
                last.boundary = true;
                self.open_mx.clear();
            }
        }
        let boundary = e.incomplete()
            || match self.mode {
                Transactions::Records => true,
                Transactions::Ex => match transaction_mark(e.raw()) {
                    Some((Mark::Mx, pid)) => {
                        self.open_mx.push((pid.into_owned(), e.start()));
                        false
                    }
                    Some((Mark::Ex, pid)) => {
                        if let Some(i) = self.open_mx.iter().position(|p| *p.0 == *pid) {
                            self.open_mx.remove(i);
                        }
                        self.open_mx.is_empty()
                    }
                    None => false,
                },
            };
        let mut start = e.start();
        start.offset -= filler;
        let len = e.len() + filler;
        match self.recs.last_mut() {
            // Continues the last entry, and no stop after it is lost.
            Some(last)
                if (!last.boundary || boundary)
                    && last.start.sequence == start.sequence
                    && last.start.offset + last.len == start.offset =>
            {
                last.len += len;
                last.boundary = boundary;
                last.records += 1;
            }
            _ => self.recs.push(Rec {
                start,
                len,
                at: self.data.len(),
                boundary,
                records: 1,
            }),
        }
        self.data.resize(self.data.len() + filler as usize, 0);
        self.data.extend_from_slice(e.raw());
    }

    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// Whether records past the first `n` wait for a transaction to end.
    pub fn holds_past(&self, n: usize) -> bool {
        self.recs.len() > n
    }

    /// The oldest `@mx@` still open: its process id and position.
    pub fn oldest_open_mx(&self) -> Option<(String, Position)> {
        self.open_mx
            .first()
            .map(|(pid, p)| (String::from_utf8_lossy(pid).into_owned(), *p))
    }

    /// Where the held part starts (what to acknowledge up to).
    pub fn first(&self) -> Option<Position> {
        self.recs.first().map(|r| r.start)
    }

    /// How many of the held entries (see [`Rec`]) may be shipped now.
    pub fn shippable(&mut self) -> usize {
        let n = self
            .recs
            .iter()
            .rposition(|r| r.boundary)
            .map_or(0, |i| i + 1);
        if (self.data.len() - self.bytes_before(n)) as u64 > self.max {
            self.overflowed = true;
            return self.recs.len();
        }
        n
    }

    /// Bytes held in the first `n` records.
    pub fn bytes_before(&self, n: usize) -> usize {
        self.recs.get(n).map_or(self.data.len(), |r| r.at)
    }

    /// The first `n` records as contiguous runs per file.
    pub fn runs(&self, n: usize) -> Vec<Run<'_>> {
        let mut out: Vec<Run<'_>> = Vec::new();
        let mut i = 0;
        while i < n {
            let first = self.recs[i];
            let mut j = i + 1;
            let mut end = first.start.offset + first.len;
            while j < n
                && self.recs[j].start.sequence == first.start.sequence
                && self.recs[j].start.offset == end
            {
                end += self.recs[j].len;
                j += 1;
            }
            let stop = if j < self.recs.len() {
                self.recs[j].at
            } else {
                self.data.len()
            };
            let recs = self.recs[i..j].iter().map(|r| r.records).sum();
            out.push(Run {
                sequence: first.start.sequence,
                offset: first.start.offset,
                bytes: &self.data[first.at..stop],
                recs,
                start: first.start,
            });
            i = j;
        }
        out
    }

    /// Takes the first `n` entries out of the hold as one owned batch; what
    /// stays is moved to `spare` (an empty buffer) if there is one.
    pub fn take(&mut self, n: usize, spare: Option<Vec<u8>>) -> Taken {
        let runs = self
            .runs(n)
            .iter()
            .map(|r| {
                let from = r.bytes.as_ptr() as usize - self.data.as_ptr() as usize;
                RunAt {
                    sequence: r.sequence,
                    offset: r.offset,
                    range: from..from + r.bytes.len(),
                    recs: r.recs,
                    start: r.start,
                }
            })
            .collect();
        let cut = self.bytes_before(n);
        // The batch keeps the buffer; the rest (the start of the next
        // batch) goes to one as large, which then fills without moving.
        let mut rest = spare
            .filter(|v| v.capacity() >= self.data.capacity() / 2)
            .unwrap_or_else(|| Vec::with_capacity(self.data.capacity()));
        rest.clear();
        rest.extend_from_slice(&self.data[cut..]);
        self.data.truncate(cut);
        let data = std::mem::replace(&mut self.data, rest);
        self.recs.drain(..n);
        for r in &mut self.recs {
            r.at -= cut;
        }
        Taken { data, runs }
    }

    /// Start of held record `i`.
    pub fn start_of(&self, i: usize) -> Option<Position> {
        self.recs.get(i).map(|r| r.start)
    }

    /// Forgets the first `n` records (shipped).
    pub fn drain(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let cut = if n < self.recs.len() {
            self.recs[n].at
        } else {
            self.data.len()
        };
        self.data.drain(..cut);
        self.recs.drain(..n);
        for r in &mut self.recs {
            r.at -= cut;
        }
    }

    /// Forgets everything (after a failure the host delivers it again).
    pub fn clear(&mut self) {
        self.data.clear();
        self.recs.clear();
        self.open_mx.clear();
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logdaemon_sdk::testing::Batch;

    const TX: [&[u8]; 3] = [
        b"@pv@ 0 @db.counters@ @change@ 1 \n",
        b"@pv@ 0 @db.desc@ 1 @d@ \n",
        b"@ex@ 77 1700000000\n",
    ];

    #[test]
    fn nul_filler_the_host_dropped_is_held_with_the_next_entry() {
        let mut h = Hold::new(Transactions::Records, 1 << 20);
        h.expect_at(Some(Position {
            sequence: 3,
            offset: 0,
            line: 1,
        }));
        let a = Batch::lines("l", 3, 0, &[b"a\n"]);
        // The host skipped "\0\0" at offsets 2 and 3.
        let b = Batch::lines("l", 3, 4, &[b"b\n"]);
        // Another file: nothing is filled across files.
        let c = Batch::lines("l", 4, 5, &[b"c\n"]);
        for e in a.entries().iter().chain(b.entries()).chain(c.entries()) {
            h.push(e);
        }
        let n = h.shippable();
        let runs = h.runs(n);
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].sequence, runs[0].offset), (3, 0));
        assert_eq!(runs[0].bytes, b"a\n\0\0b\n");
        assert_eq!(runs[0].recs, 2);
        assert_eq!(
            (runs[1].sequence, runs[1].offset, runs[1].bytes),
            (4, 5, &b"c\n"[..])
        );
    }

    /// The bytes that may be shipped now.
    fn shippable(h: &mut Hold) -> usize {
        let n = h.shippable();
        h.bytes_before(n)
    }

    fn len(recs: &[&[u8]]) -> usize {
        recs.iter().map(|r| r.len()).sum()
    }

    #[test]
    fn ships_only_up_to_the_last_closed_transaction() {
        let mut h = Hold::new(Transactions::Ex, 1 << 20);
        let mut recs: Vec<&[u8]> = TX.to_vec();
        recs.push(b"@pv@ 0 @db.desc@ 2 @open@ \n");
        let b = Batch::p4("j", 3, 100, &recs);
        for e in b.entries() {
            h.push(e);
        }
        let n = h.shippable();
        assert_eq!(h.bytes_before(n), len(&TX));
        let runs = h.runs(n);
        assert_eq!(runs.len(), 1);
        assert_eq!((runs[0].offset, runs[0].recs), (100, 3));
        assert_eq!(runs[0].bytes, TX.concat().as_slice());
        h.drain(n);
        assert_eq!(h.first(), Some(b.entries()[3].start()));
        assert_eq!(shippable(&mut h), 0);
    }

    #[test]
    fn an_open_mx_keeps_the_transaction_open_until_its_own_ex() {
        let mut h = Hold::new(Transactions::Ex, 1 << 20);
        let b = Batch::p4(
            "j",
            1,
            0,
            &[
                b"@mx@ 9 1\n",
                b"@pv@ 0 @db.x@ 1 \n",
                b"@ex@ 8 1\n",
                b"@ex@ 9 1\n",
                b"@pv@ 0 @db.x@ 2 \n",
            ],
        );
        for e in &b.entries()[..3] {
            h.push(e);
        }
        assert_eq!(
            shippable(&mut h),
            0,
            "pid 8's @ex@ does not close pid 9's @mx@"
        );
        h.push(&b.entries()[3]);
        h.push(&b.entries()[4]);
        assert_eq!(shippable(&mut h), b.entries()[4].start().offset as usize);
    }

    #[test]
    fn transactions_are_found_in_the_raw_bytes_without_fields_from_the_host() {
        // The host does not split records for this listener: entries carry
        // no op and no fields (as lines entries do).
        let recs: [&[u8]; 5] = [
            b"@mx@ 9 1\n",
            b"@pv@ 0 @db.x@ @@ex@@ 9 \n",
            b"@ex@ 8 1\n",
            b"@ex@ 9 1\n",
            b"@pv@ 0 @db.x@ 2 \n",
        ];
        let b = Batch::lines("j", 1, 0, &recs);
        assert!(b.entries()[0].op().is_empty() && b.entries()[0].field(0).is_none());
        let mut h = Hold::new(Transactions::Ex, 1 << 20);
        for e in &b.entries()[..3] {
            h.push(e);
        }
        assert_eq!(
            shippable(&mut h),
            0,
            "an @ex@ inside a value or of another pid closes nothing"
        );
        h.push(&b.entries()[3]);
        h.push(&b.entries()[4]);
        assert_eq!(shippable(&mut h), len(&recs[..4]));
    }

    #[test]
    fn a_new_sequence_finishes_the_old_file_and_runs_split_per_file() {
        let mut h = Hold::new(Transactions::Ex, 1 << 20);
        let a = Batch::p4("j", 1, 50, &[b"@pv@ 0 @db.x@ 1 \n"]);
        let mut b = Batch::p4("j", 2, 0, &[b"@pv@ 0 @db.x@ 2 \n", b"@ex@ 1 1\n"]);
        b.set_did_rotate(0);
        h.push(&a.entries()[0]);
        assert_eq!(shippable(&mut h), 0);
        for e in b.entries() {
            h.push(e);
        }
        let n = h.shippable();
        assert_eq!(h.bytes_before(n), 17 + 26);
        let runs = h.runs(n);
        assert_eq!(
            runs.iter()
                .map(|r| (r.sequence, r.offset, r.end()))
                .collect::<Vec<_>>(),
            [(1, 50, 67), (2, 0, 26)]
        );
    }

    #[test]
    fn take_hands_over_the_shippable_prefix_and_keeps_the_rest() {
        let mut h = Hold::new(Transactions::Ex, 1 << 20);
        let b = Batch::p4("j", 4, 10, &[TX[0], TX[1], TX[2], b"@pv@ 0 @db.x@ 9 \n"]);
        for e in b.entries() {
            h.push(e);
        }
        let n = h.shippable();
        let t = h.take(n, None);
        assert_eq!(t.data, TX.concat());
        assert_eq!(t.start(), Some(b.entries()[0].start()));
        let r = t.run(0);
        assert_eq!(
            (r.sequence, r.offset, r.bytes.len(), r.recs),
            (4, 10, TX.concat().len(), 3)
        );
        assert_eq!(h.first(), Some(b.entries()[3].start()));
        assert_eq!(h.runs(1)[0].bytes, b"@pv@ 0 @db.x@ 9 \n");
    }

    /// Records held end to end are kept as one entry per transaction: a
    /// stop point is never merged away (only the last one is ever used),
    /// the runs still count every record and a gap in the offsets starts a
    /// new entry.
    #[test]
    fn records_are_held_per_transaction_without_losing_a_stop() {
        let mut h = Hold::new(Transactions::Ex, 1 << 20);
        let mut recs: Vec<&[u8]> = [TX, TX].concat();
        recs.push(TX[0]);
        let b = Batch::p4("j", 1, 0, &recs);
        for e in b.entries() {
            h.push(e);
        }
        assert_eq!(h.recs.len(), 3, "{:?}", h.recs);
        assert_eq!(shippable(&mut h), 2 * len(&TX));
        let n = h.shippable();
        assert_eq!(h.runs(n).iter().map(|r| r.recs).collect::<Vec<_>>(), [6]);
        // Records mode: every record is a stop; contiguous ones merge.
        let mut h = Hold::new(Transactions::Records, 1 << 20);
        let (a, later) = (
            Batch::lines("l", 1, 0, &[b"a\n", b"b\n"]),
            // Another file: not contiguous (a jump in the same file is
            // NUL filler, see the next test).
            Batch::lines("l", 2, 10, &[b"c\n"]),
        );
        for e in a.entries().iter().chain(later.entries()) {
            h.push(e);
        }
        assert_eq!(h.recs.len(), 2, "{:?}", h.recs);
        let n = h.shippable();
        assert_eq!(
            h.runs(n)
                .iter()
                .map(|r| (r.offset, r.recs))
                .collect::<Vec<_>>(),
            [(0, 2), (10, 1)]
        );
    }

    #[test]
    fn records_mode_and_overflow_ship_everything_whole() {
        let mut h = Hold::new(Transactions::Records, 1 << 20);
        let b = Batch::lines("l", 1, 0, &[b"a\n", b"b\n"]);
        for e in b.entries() {
            h.push(e);
        }
        assert_eq!(shippable(&mut h), 4);
        let mut h = Hold::new(Transactions::Ex, 10);
        let b = Batch::p4("j", 1, 0, &[b"@pv@ 0 @db.x@ 1 \n"]);
        h.push(&b.entries()[0]);
        assert_eq!(shippable(&mut h), 17);
        assert!(h.overflowed);
    }
}
