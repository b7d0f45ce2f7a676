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
//! The huge record (15c, 15d) is cut while the daemon holds its first half
//! (seen as its RSS growing), then completed, rotated and compressed; the
//! daemon's peak RSS (`VmHWM`) must stay a small multiple of the record.
//!
//! Scenario 10 kills the daemon with SIGKILL while a writer thread appends
//! and the journal is renamed; one kill in four is aimed at a checkpoint
//! save: at the first sight of the temporary checkpoint file (polled as
//! fast as the machine allows), or a random few microseconds after a save's
//! rename. A kill that leaves a temporary file behind landed mid-save.
//! After every restart the output must be the start of the ledger; at the
//! end, all of it.

mod cut;
mod kills;
mod partial;

use std::fs;
use std::io::Write;
use std::ops::Range;

// The scenarios name the tally module as `super::tally`.
use super::tally;
use super::tally::Tally;
use crate::fixture::Fixture;
use crate::rotation::harness::{config, live, wait_output, Daemon};
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
        Appended {
            w: Writer::new(&f.join(live(kind)), kind),
            expected: Vec::new(),
            by_hand: Vec::new(),
            rest: None,
        }
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
        self.by_hand
            .push(self.expected.len()..self.expected.len() + record.len());
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
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(self.w.path())
            .unwrap_or_else(|e| panic!("{}: {e}", self.w.path().display()));
        f.write_all(bytes).unwrap();
        self.expected.extend_from_slice(bytes);
    }

    /// Waits until everything appended so far is delivered: the daemon
    /// follows the file (files rotated before it opened the journal are
    /// not its business with `start = "beginning"`).
    pub fn delivered(&self, f: &Fixture, d: &mut Daemon) {
        wait_output(f, d, &self.expected, "before the cut");
    }

    /// With `record_start`, the last record is complete only once the
    /// next one begins: a first line that stays undelivered.
    pub fn next_begins(&mut self) {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(self.w.path())
            .unwrap();
        f.write_all(b"2026-11-21T23:59:59.999 app[4242]: the record after the last one\n")
            .unwrap();
    }

    /// Bytes of `expected` before the cut record's missing rest.
    pub fn len(&self) -> usize {
        self.expected.len()
    }

    /// Counts `output` (already checked equal to `expected`): the writer's
    /// records by [`Tally`], the hand-written ones by their place.
    pub fn tally(&self, output: &[u8]) -> Tally {
        assert_eq!(
            output,
            &self.expected[..],
            "the output must be checked against everything appended first"
        );
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
            let e: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let len = e["len"]
                .as_u64()
                .unwrap_or_else(|| panic!("an entry, not a gap: {line}"))
                as usize;
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

/// The fixture and config for `kind`, with the entries listener.
fn setup(kind: Kind, journal_extra: &str) -> (Fixture, Appended) {
    let f = Fixture::new();
    let a = Appended::new(&f, kind);
    f.write(
        "cfg.toml",
        config(kind, &with_entries(journal_extra), "fsync = false"),
    );
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
