//! Scenario 9: tiny files. Files of 0, 1 and 10 bytes (a record not yet
//! complete), rotated while that small, with restarts in between, and
//! rotated files whose whole content is the same 10 bytes.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::{append, clock_past_checkpoint, output, setup, KIND};
use crate::rotation::harness::{listing, live, logrotate, wait_output, Daemon};
use crate::torture::tally::{report_line, Tally};
use crate::writer::Writer;

// ------------------------------------------------------- 9: tiny files

/// Writes the writer's records in pieces (a record not yet complete, as a
/// logger flushing mid-line leaves it) on its own `O_APPEND` descriptor,
/// which it keeps across a rename until told to reopen, like an application.
struct Pieces {
    path: std::path::PathBuf,
    file: fs::File,
    /// Records completed.
    done: u64,
    /// Bytes of record `done` already written.
    part: usize,
}

impl Pieces {
    fn new(path: &Path) -> Pieces {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        Pieces {
            path: path.to_path_buf(),
            file,
            done: 0,
            part: 0,
        }
    }

    fn reopen(&mut self) {
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .unwrap();
    }

    /// Writes the next `n` bytes of the current record, not its last one.
    fn bytes(&mut self, n: usize) {
        let r = Writer::record(KIND, self.done);
        assert!(
            self.part + n < r.len(),
            "{n} bytes would complete record {}",
            self.done
        );
        self.file.write_all(&r[self.part..self.part + n]).unwrap();
        self.part += n;
    }

    /// Completes the current record and writes `more` whole ones.
    fn records(&mut self, more: u64) {
        for _ in 0..=more {
            let r = Writer::record(KIND, self.done);
            self.file.write_all(&r[self.part..]).unwrap();
            self.part = 0;
            self.done += 1;
        }
    }

    fn expected(&self) -> Vec<u8> {
        (0..self.done)
            .flat_map(|i| Writer::record(KIND, i))
            .collect()
    }

    fn size(&self) -> u64 {
        fs::metadata(&self.path).unwrap().len()
    }
}

/// 9a: a live file of 0, then 1, then 10 bytes (one record not yet
/// complete), the daemon restarted at each size, then the record completed.
#[test]
fn s09a_live_file_of_0_1_10_bytes_with_restarts() {
    let f = setup("");
    let mut p = Pieces::new(&f.join(live(KIND)));
    let mut d = Daemon::start(&f);
    for n in [1, 9] {
        d.term();
        d = Daemon::start(&f);
        p.bytes(n);
        assert_eq!(p.size(), p.part as u64);
    }
    d.term();
    let mut d = Daemon::start(&f);
    p.records(0);
    wait_output(
        &f,
        &mut d,
        &p.expected(),
        "the record written in pieces of 1 and 9 bytes, then completed",
    );
    d.term();
    let mut d = Daemon::start(&f);
    p.records(3);
    wait_output(
        &f,
        &mut d,
        &p.expected(),
        "after a restart at the end of that record",
    );
    d.term();
    let t = Tally::count_records(KIND, p.done, &output(&f), 0);
    t.assert_exact("9a");
    t.report(
        "9a",
        "tiny files: live file of 0, 1, 10 bytes, restart at each",
        "the record written in pieces delivered once, whole",
    );
}

/// 9b: rotated (logrotate `create`, the application reopening later) while
/// the live file holds only 10 bytes of a record, which the application
/// completes in the renamed file; three times while the daemon runs, twice
/// while it is stopped.
#[test]
fn s09b_rotated_while_holding_ten_bytes() {
    let f = setup("");
    let mut p = Pieces::new(&f.join(live(KIND)));
    p.bytes(10);
    let mut d = Daemon::start(&f);
    let rotate = |p: &mut Pieces| {
        logrotate(&f, "    create");
        p.records(0);
        p.reopen();
        p.bytes(10);
    };
    for _ in 0..3 {
        rotate(&mut p);
        wait_output(&f, &mut d, &p.expected(), "rotations while running");
    }
    d.term();
    rotate(&mut p);
    rotate(&mut p);
    let mut d = Daemon::start(&f);
    p.records(2);
    wait_output(
        &f,
        &mut d,
        &p.expected(),
        &format!("rotations while stopped (files: {:?})", listing(&f, KIND)),
    );
    d.term();
    let t = Tally::count_records(KIND, p.done, &output(&f), 0);
    t.assert_exact("9b");
    t.report(
        "9b",
        "tiny files: rotated while holding 10 bytes, 3x running, 2x stopped",
        "each record completed in the renamed file delivered once, whole",
    );
}

/// 9c, 9d: rotated files whose whole content is the same 10 bytes, three
/// of them made while the daemon is stopped at the end of the first.
fn identical_tiny_files(id: &str, directives: &str) {
    const BEAT: &[u8] = b"heartbeat\n";
    let f = setup("");
    let path = f.join(live(KIND));
    append(&path, BEAT);
    let mut d = Daemon::start(&f);
    wait_output(&f, &mut d, BEAT, "the first heartbeat");
    d.term();
    clock_past_checkpoint(&f);
    for _ in 0..2 {
        logrotate(&f, directives);
        append(&path, BEAT);
    }
    logrotate(&f, directives);
    let mut w = Writer::new(&path, KIND);
    w.write(5);
    let files = listing(&f, KIND);
    let mut d = Daemon::start(&f);
    let mut want = BEAT.repeat(3);
    want.extend_from_slice(w.ledger());
    wait_output(
        &f,
        &mut d,
        &want,
        &format!("three identical 10-byte files (files: {files:?})"),
    );
    d.term();
    let out = output(&f);
    let beats = out.chunks(BEAT.len()).take_while(|c| *c == BEAT).count();
    assert_eq!(beats, 3, "three heartbeats first");
    let t = Tally::count(&w, &out[3 * BEAT.len()..], 0);
    t.assert_exact(id);
    let how = if directives.contains("compress") {
        "compressed"
    } else {
        "plain"
    };
    report_line(&format!(
        "{id}|tiny files: three rotated files of the same 10 bytes, {how}, restart at the end of the first|{}|{}|{}|{}|the 3 identical files read once each, then the live file",
        t.written + 3,
        t.delivered + beats as u64,
        t.duplicated,
        t.reported_lost
    ));
}

#[test]
fn s09c_three_identical_ten_byte_files_plain() {
    identical_tiny_files("9c", "    create");
}

#[test]
fn s09d_three_identical_ten_byte_files_compressed() {
    identical_tiny_files("9d", "    create\n    compress");
}
