//! Scenarios 10, 13 and 15: kill -9 at any moment, records split across rotations and restarts, partial last lines and a 64 MiB record.
//!
//! What these prove: a record is never lost or repeated because the
//! daemon died, or the file was rotated, while only part of it was in the
//! file. The raw output must hold every byte written exactly once, in
//! order; where a rotation cuts a record in two, the entries say so
//! (`incomplete`), and where a restart does, the record is delivered whole.
//!
//! How: the writer's records go through [`Writer`]; a record cut in two is
//! written by hand in two pieces ([`Appended`]), each piece with one write
//! on a descriptor opened at that moment (so after a rename it goes to the
//! new file, after a truncation to the start of the same one). The output
//! must equal everything appended, byte for byte; the writer's records are
//! then counted by [`Tally`] and the hand-written ones by their place. A
//! second listener writes the entries as JSON lines, from which each test
//! reads how the cut record was delivered (sequence, length, flags).
//!

use std::fs;
use std::io::Write;
use std::ops::Range;

use super::tally::Tally;
use crate::fixture::Fixture;
use crate::rotation::copy_truncate;
use crate::rotation::harness::{config, live, logrotate, wait_output, Daemon};
use crate::writer::{Kind, Writer};

/// The JSON-lines copy of the entries, beside the raw one.
const ENTRIES: &str = "out/entries.jsonl";

/// A stack-trace line record for `record_start = START`.
const START: &str = r"^\d{4}-\d\d-\d\dT";

/// A second `file` listener writing the entries as JSON lines, and any
/// journal keys (`extra`) before it.
fn with_entries(extra: &str) -> String {
    format!("{extra}\n\n[[journal.listener]]\nname = \"entries\"\nplugin = \"file\"\n[journal.listener.config]\npath = \"{ENTRIES}\"\nformat = \"jsonl\"\nfsync = false\n")
}

/// Everything a scenario appended, in order: the writer's records and
/// records written by hand in pieces.
pub(super) struct Appended {
    pub w: Writer,
    pub expected: Vec<u8>,
    /// Where the hand-written records are in `expected`.
    by_hand: Vec<Range<usize>>,
    /// The rest of the record cut in two, not yet written.
    rest: Option<Vec<u8>>,
}

impl Appended {
    pub fn new(f: &Fixture, kind: Kind) -> Appended {
        Appended { w: Writer::new(&f.join(live(kind)), kind), expected: Vec::new(), by_hand: Vec::new(), rest: None }
    }

    /// Appends `n` of the writer's records.
    pub fn records(&mut self, n: u64) {
        let at = self.w.ledger().len();
        self.w.write(n);
        self.expected.extend_from_slice(&self.w.ledger()[at..]);
    }

    /// Appends the first `cut` bytes of `record`; [`Appended::rest`] writes the others.
    pub fn first_part(&mut self, record: &[u8], cut: usize) {
        assert!(self.rest.is_none(), "a cut record is still open");
        self.by_hand.push(self.expected.len()..self.expected.len() + record.len());
        self.raw(&record[..cut]);
        self.rest = Some(record[cut..].to_vec());
    }

    /// Appends the rest of the record begun by [`Appended::first_part`].
    pub fn rest(&mut self) {
        let rest = self.rest.take().expect("a cut record");
        self.raw(&rest);
    }

    /// One write of `bytes` on a descriptor of the live path opened now.
    pub fn raw(&mut self, bytes: &[u8]) {
        let mut f = fs::OpenOptions::new().append(true).open(self.w.path()).unwrap_or_else(|e| panic!("{}: {e}", self.w.path().display()));
        f.write_all(bytes).unwrap();
        self.expected.extend_from_slice(bytes);
    }

    /// With `record_start`, the last record is complete only once the
    /// next one begins: a first line that stays undelivered.
    pub fn next_begins(&mut self) {
        let mut f = fs::OpenOptions::new().append(true).open(self.w.path()).unwrap();
        f.write_all(b"2026-11-21T23:59:59.999 app[4242]: the record after the last one\n").unwrap();
    }

    /// Bytes of `expected` before the cut record's missing rest.
    pub fn len(&self) -> usize {
        self.expected.len()
    }

    /// Counts `output` (already checked equal to `expected`): the writer's
    /// records by [`Tally`], the hand-written ones by their place.
    pub fn tally(&self, output: &[u8]) -> Tally {
        assert_eq!(output, &self.expected[..], "the output must be checked against everything appended first");
        let mut rest = Vec::with_capacity(output.len());
        let mut at = 0;
        for r in &self.by_hand {
            rest.extend_from_slice(&output[at..r.start]);
            at = r.end;
        }
        rest.extend_from_slice(&output[at..]);
        let mut t = Tally::count(&self.w, &rest, 0);
        t.written += self.by_hand.len() as u64;
        t.delivered += self.by_hand.len() as u64;
        t
    }

    /// How the entries of `ENTRIES` cover hand-written record `i`: one
    /// `seq S +LEN [incomplete] [did_rotate]` per entry holding part of it.
    pub fn entries_of(&self, f: &Fixture, i: usize) -> Vec<String> {
        let text = fs::read_to_string(f.join(ENTRIES)).expect("read the entries");
        let r = &self.by_hand[i];
        let mut at = 0usize;
        let mut out = Vec::new();
        for line in text.lines() {
            let e: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let len = e["len"].as_u64().unwrap_or_else(|| panic!("an entry, not a gap: {line}")) as usize;
            if at < r.end && at + len > r.start {
                let mut s = format!("seq {} +{}", e["sequence"], len);
                for flag in ["incomplete", "did_rotate"] {
                    if e[flag] == true {
                        s += &format!(" {flag}");
                    }
                }
                out.push(s);
            }
            at += len;
        }
        out
    }
}

/// A p4 record whose description spans three lines; cut inside its string.
fn p4_desc(n: u64) -> Vec<u8> {
    format!("@pv@ 0 @db.desc@ {n} @cut change {n}: the first line\nthe second line\nthe third line@ \n").into_bytes()
}

/// A line-log record with a stack trace, as `record_start = START` frames it.
fn stack_trace(n: u64) -> Vec<u8> {
    format!(
        "2026-11-21T13:00:00.000 app[4242]: request {n} failed\njava.lang.IllegalStateException: cut {n}\n\tat com.example.Handler.run(Handler.java:42)\n\tat java.lang.Thread.run(Thread.java:750)\n"
    )
    .into_bytes()
}

/// The fixture and config for `kind`, with the entries listener.
fn setup(kind: Kind, journal_extra: &str) -> (Fixture, Appended) {
    let f = Fixture::new();
    let a = Appended::new(&f, kind);
    f.write("cfg.toml", config(kind, &with_entries(journal_extra), "fsync = false"));
    (f, a)
}

/// Waits for the whole output, checks it, stops the daemon, counts.
fn finish(f: &Fixture, d: &mut Daemon, a: &Appended, what: &str) -> Tally {
    wait_output(f, d, &a.expected, what);
    d.term();
    let t = a.tally(&fs::read(f.join(crate::rotation::harness::OUT)).unwrap());
    t.assert_exact(what);
    t
}

fn record_start() -> String {
    format!("record_start = '{START}'")
}

#[test]
fn s13a_p4_record_cut_by_copy_then_truncate() {
    let (f, mut a) = setup(Kind::P4, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    let rec = p4_desc(900_001);
    a.first_part(&rec, 60);
    copy_truncate(&f, &mut a.w, 1);
    a.rest();
    a.records(20);
    // The rest begins inside a string: read from the new file's start, the
    // quoting is inverted, every newline after it is inside a string, and
    // the file's records form one record that ends only with the file. The
    // next rotation ends it.
    copy_truncate(&f, &mut a.w, 2);
    a.records(20);
    let t = finish(&f, &mut d, &a, "13a: a p4 record cut by copy-then-truncate");
    let how = a.entries_of(&f, 0);
    let rest_line = rec[60..].iter().position(|&b| b == b'\n').unwrap() + 1;
    assert_eq!(
        how[..2],
        ["seq 1 +60 incomplete".to_string(), format!("seq 2 +{rest_line} did_rotate")],
        "the first part is cut off at the end of the copy; the new file begins with the rest of the string's line"
    );
    t.report("13a", "p4 record cut by copy-then-truncate", &format!("cut record delivered as {}: the rest begins inside a string, so the new file is framed with the quoting inverted until it realigns (its end only at the next rotation); bytes exact", how.join(", ")));
}

#[test]
fn s13b_stack_trace_cut_by_logrotate_create() {
    let (f, mut a) = setup(Kind::Lines, &record_start());
    let mut d = Daemon::start(&f);
    a.records(20);
    let rec = stack_trace(1);
    a.first_part(&rec, rec.len() / 2);
    logrotate(&f, "    create");
    a.w.reopen();
    a.rest();
    a.records(20);
    a.next_begins();
    let t = finish(&f, &mut d, &a, "13b: a stack trace cut by logrotate create");
    let how = a.entries_of(&f, 0);
    t.report("13b", "stack-trace record cut by logrotate create", &format!("cut record delivered as {}", how.join(", ")));
}

#[test]
fn s13c_p4_record_cut_by_kill_9() {
    let (f, mut a) = setup(Kind::P4, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    let rec = p4_desc(900_002);
    a.first_part(&rec, 60);
    let before = a.expected[..a.len() - 60].to_vec();
    wait_output(&f, &mut d, &before, "13c: before the kill");
    d.kill();
    a.rest();
    a.records(20);
    let mut d = Daemon::start(&f);
    let t = finish(&f, &mut d, &a, "13c: a p4 record cut by kill -9");
    let how = a.entries_of(&f, 0);
    assert_eq!(how, [format!("seq 1 +{}", rec.len())], "the record completed while the daemon was down is one complete entry");
    t.report("13c", "p4 record cut by kill -9, completed while down", &format!("delivered whole: {}", how.join(", ")));
}

#[test]
fn s13d_stack_trace_cut_by_a_stop() {
    let (f, mut a) = setup(Kind::Lines, &record_start());
    let mut d = Daemon::start(&f);
    a.records(20);
    let rec = stack_trace(2);
    a.first_part(&rec, rec.len() / 2);
    let before = a.expected[..a.len() - rec.len() / 2].to_vec();
    wait_output(&f, &mut d, &before, "13d: before the stop");
    d.term();
    a.rest();
    a.records(20);
    a.next_begins();
    let mut d = Daemon::start(&f);
    let t = finish(&f, &mut d, &a, "13d: a stack trace cut by a stop");
    let how = a.entries_of(&f, 0);
    assert_eq!(how, [format!("seq 1 +{}", rec.len())], "the record completed while the daemon was down is one complete entry");
    t.report("13d", "stack-trace record cut by SIGTERM, completed while down", &format!("delivered whole: {}", how.join(", ")));
}

#[test]
fn s15a_partial_last_line_at_logrotate_copytruncate() {
    let (f, mut a) = setup(Kind::Lines, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    let line = b"2026-11-21T13:00:01.000 app[4242]: a line cut by the rotation\n";
    a.first_part(line, 30);
    logrotate(&f, "    copytruncate");
    a.rest();
    a.records(20);
    let t = finish(&f, &mut d, &a, "15a: a partial last line at logrotate copytruncate");
    let how = a.entries_of(&f, 0);
    t.report("15a", "partial last line at logrotate copytruncate", &format!("cut line delivered as {}", how.join(", ")));
}

#[test]
fn s15b_partial_last_line_at_kill_9() {
    let (f, mut a) = setup(Kind::Lines, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    let line = b"2026-11-21T13:00:02.000 app[4242]: a line cut by the crash\n";
    a.first_part(line, 30);
    let before = a.expected[..a.len() - 30].to_vec();
    wait_output(&f, &mut d, &before, "15b: before the kill");
    d.kill();
    a.rest();
    a.records(20);
    let mut d = Daemon::start(&f);
    let t = finish(&f, &mut d, &a, "15b: a partial last line at kill -9");
    let how = a.entries_of(&f, 0);
    assert_eq!(how, [format!("seq 1 +{}", line.len())], "the line completed while the daemon was down is one complete entry");
    t.report("15b", "partial last line at kill -9, completed while down", &format!("delivered whole: {}", how.join(", ")));
}
