//! Counting a scenario's outcome record by record, and reporting it.
//!
//! The writer's records are unique and deterministic
//! ([`Writer::record`]), so the output can be cut back into records and
//! each one traced to the write it came from: that gives delivered and
//! duplicated counts that are measured, not assumed, and catches reordering
//! and foreign bytes (a NUL filler, a half record) as well.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;

use crate::writer::{Kind, Writer};

/// Whether the suite runs in its long (release-check) mode:
/// `LOGDAEMON_TORTURE_LONG=1`, set by `scripts/torture.sh --long`.
pub fn long() -> bool {
    std::env::var_os("LOGDAEMON_TORTURE_LONG").is_some_and(|v| v != "0" && !v.is_empty())
}

/// `short` in the bounded mode (CI, `cargo test`), `long` in the long one.
pub fn scale<T>(short: T, long_value: T) -> T {
    if long() {
        long_value
    } else {
        short
    }
}

/// What one scenario measured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Records the writer appended (including any that no file holds).
    pub written: u64,
    /// Distinct written records found in the output.
    pub delivered: u64,
    /// Output records that repeat one already delivered.
    pub duplicated: u64,
    /// Output records that came before one written earlier (reordering).
    pub out_of_order: u64,
    /// Output bytes that are no written record (NULs, half records…).
    pub foreign_bytes: u64,
    /// Records the daemon reported lost (a gap), as counted by the scenario.
    pub reported_lost: u64,
    /// Written records neither delivered nor reported.
    pub silently_lost: u64,
}

impl Tally {
    /// Counts the `output` against everything `w` wrote; `reported_lost`
    /// records are those the scenario found covered by the daemon's gap
    /// reports.
    pub fn count(w: &Writer, output: &[u8], reported_lost: u64) -> Tally {
        Tally::count_records(w.kind(), w.count(), output, reported_lost)
    }

    /// As [`Tally::count`], for records `0..written` of `kind`.
    pub fn count_records(kind: Kind, written: u64, output: &[u8], reported_lost: u64) -> Tally {
        let mut index: HashMap<Vec<u8>, u64> = HashMap::with_capacity(written as usize);
        for i in 0..written {
            index.insert(Writer::record(kind, i), i);
        }
        let mut seen = vec![false; written as usize];
        let mut t = Tally {
            written,
            reported_lost,
            ..Tally::default()
        };
        let mut last: Option<u64> = None;
        let mut at = 0;
        while at < output.len() {
            match next_record(&index, &output[at..]) {
                Some((i, len)) => {
                    if seen[i as usize] {
                        t.duplicated += 1;
                    } else {
                        seen[i as usize] = true;
                        t.delivered += 1;
                    }
                    if last.is_some_and(|l| i < l) {
                        t.out_of_order += 1;
                    }
                    last = Some(last.map_or(i, |l| l.max(i)));
                    at += len;
                }
                None => {
                    // Skip to the next line and count what was skipped.
                    let skip = memchr_nl(&output[at..]).map_or(output.len() - at, |p| p + 1);
                    t.foreign_bytes += skip as u64;
                    at += skip;
                }
            }
        }
        t.silently_lost = (written - t.delivered).saturating_sub(reported_lost);
        t
    }

    /// Asserts exactly-once, in order, nothing foreign, and that every
    /// record not delivered was reported.
    pub fn assert_exact(&self, scenario: &str) {
        assert!(
            self.duplicated == 0
                && self.out_of_order == 0
                && self.foreign_bytes == 0
                && self.silently_lost == 0,
            "{scenario}: {self:?}"
        );
        assert_eq!(
            self.delivered + self.reported_lost,
            self.written,
            "{scenario}: {self:?}"
        );
    }

    /// Prints the scenario's row and appends it to the file named by
    /// `LOGDAEMON_TORTURE_REPORT` (one line, one write), the form
    /// `scripts/torture.sh` turns into the table of docs/proof.md:
    /// `id|scenario|written|delivered|duplicated|reported lost|note`.
    pub fn report(&self, id: &str, scenario: &str, note: &str) {
        let line = format!(
            "{id}|{scenario}|{}|{}|{}|{}|{note}\n",
            self.written, self.delivered, self.duplicated, self.reported_lost
        );
        report_line(&line);
    }
}

/// Appends a ready-made row (`id|scenario|written|delivered|duplicated|
/// reported lost|note`) to the report, for scenarios whose figures are not
/// record counts.
pub fn report_line(line: &str) {
    let line = if line.ends_with('\n') {
        line.to_string()
    } else {
        format!("{line}\n")
    };
    eprint!("TORTURE {line}");
    if let Some(p) = std::env::var_os("LOGDAEMON_TORTURE_REPORT") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .expect("open LOGDAEMON_TORTURE_REPORT");
        f.write_all(line.as_bytes())
            .expect("append to LOGDAEMON_TORTURE_REPORT");
    }
}

/// The written record at the start of `bytes` and its length: a record is
/// one to three lines (p4 records with newlines inside strings).
fn next_record(index: &HashMap<Vec<u8>, u64>, bytes: &[u8]) -> Option<(u64, usize)> {
    let mut end = 0;
    for _ in 0..3 {
        end += memchr_nl(&bytes[end..])? + 1;
        if let Some(&i) = index.get(&bytes[..end]) {
            return Some((i, end));
        }
    }
    None
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// Records of `w` whose bytes lie inside `range` of its ledger (for
/// counting a reported gap in records).
pub fn records_in(w: &Writer, range: Range<usize>) -> u64 {
    let mut at = 0usize;
    let mut n = 0;
    for i in 0..w.count() {
        let len = Writer::record(w.kind(), i).len();
        if at >= range.start && at + len <= range.end {
            n += 1;
        }
        at += len;
    }
    n
}

#[test]
fn the_tally_sees_duplicates_reordering_and_foreign_bytes() {
    let rec = |i| Writer::record(Kind::P4, i);
    let mut out = Vec::new();
    for i in [0, 1, 3, 3, 2, 5] {
        out.extend_from_slice(&rec(i));
    }
    out.extend_from_slice(b"\0\0\0\n");
    let t = Tally::count_records(Kind::P4, 7, &out, 1);
    assert_eq!(
        (t.delivered, t.duplicated, t.out_of_order, t.foreign_bytes),
        (5, 1, 1, 4),
        "{t:?}"
    );
    assert_eq!(
        t.silently_lost, 1,
        "records 4 and 6 missing, one reported: {t:?}"
    );
    let exact: Vec<u8> = (0..7).flat_map(rec).collect();
    Tally::count_records(Kind::P4, 7, &exact, 0).assert_exact("all seven");
}
