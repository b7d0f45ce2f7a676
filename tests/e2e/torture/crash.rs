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

/// A p4 record whose description spans three lines; cut inside its string.
fn p4_desc(n: u64) -> Vec<u8> {
    format!(
        "@pv@ 0 @db.desc@ {n} @cut change {n}: the first line\nthe second line\nthe third line@ \n"
    )
    .into_bytes()
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

#[test]
fn s13a_p4_record_cut_by_copy_then_truncate() {
    let (f, mut a) = setup(Kind::P4, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    a.delivered(&f, &mut d);
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
    // How the rest is framed depends on what the new file held when the
    // daemon read it; the first part is always cut off at the copy's end.
    assert!(
        how.len() >= 2
            && how[0] == "seq 1 +60 incomplete"
            && how[1].starts_with("seq 2 +")
            && how[1].contains("did_rotate"),
        "the first part is cut off at the end of the copy, the rest begins the new file: {how:?}"
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
    let before = a.expected[..a.len() - rec.len() / 2].to_vec();
    wait_output(&f, &mut d, &before, "13b: before the rotation");
    logrotate(&f, "    create");
    a.w.reopen();
    a.rest();
    a.records(20);
    a.next_begins();
    let t = finish(&f, &mut d, &a, "13b: a stack trace cut by logrotate create");
    let how = a.entries_of(&f, 0);
    t.report(
        "13b",
        "stack-trace record cut by logrotate create",
        &format!("cut record delivered as {}", how.join(", ")),
    );
}

#[test]
fn s13c_p4_record_cut_by_kill_9() {
    let (f, mut a) = setup(Kind::P4, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    a.delivered(&f, &mut d);
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
    assert_eq!(
        how,
        [format!("seq 1 +{}", rec.len())],
        "the record completed while the daemon was down is one complete entry"
    );
    t.report(
        "13c",
        "p4 record cut by kill -9, completed while down",
        &format!("delivered whole: {}", how.join(", ")),
    );
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
    assert_eq!(
        how,
        [format!("seq 1 +{}", rec.len())],
        "the record completed while the daemon was down is one complete entry"
    );
    t.report(
        "13d",
        "stack-trace record cut by SIGTERM, completed while down",
        &format!("delivered whole: {}", how.join(", ")),
    );
}

#[test]
fn s15a_partial_last_line_at_logrotate_copytruncate() {
    let (f, mut a) = setup(Kind::Lines, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    a.delivered(&f, &mut d);
    let line = b"2026-11-21T13:00:01.000 app[4242]: a line cut by the rotation\n";
    a.first_part(line, 30);
    logrotate(&f, "    copytruncate");
    a.rest();
    a.records(20);
    let t = finish(
        &f,
        &mut d,
        &a,
        "15a: a partial last line at logrotate copytruncate",
    );
    let how = a.entries_of(&f, 0);
    t.report(
        "15a",
        "partial last line at logrotate copytruncate",
        &format!("cut line delivered as {}", how.join(", ")),
    );
}

#[test]
fn s15b_partial_last_line_at_kill_9() {
    let (f, mut a) = setup(Kind::Lines, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    a.delivered(&f, &mut d);
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
    assert_eq!(
        how,
        [format!("seq 1 +{}", line.len())],
        "the line completed while the daemon was down is one complete entry"
    );
    t.report(
        "15b",
        "partial last line at kill -9, completed while down",
        &format!("delivered whole: {}", how.join(", ")),
    );
}

/// The temporary checkpoint files in the state directory: one exists from
/// its creation to its rename, during each save.
fn temps(f: &Fixture) -> Vec<std::ffi::OsString> {
    let Ok(d) = fs::read_dir(f.join("state")) else {
        return Vec::new();
    };
    d.flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("checkpoint.toml.tmp."))
        .collect()
}

/// The checkpoint's inode: a new one at every save (the rename).
fn checkpoint_inode(f: &Fixture) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(f.join("state/checkpoint.toml"))
        .ok()
        .map(|m| m.ino())
}

/// How a kill is aimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aim {
    /// As soon as a temporary checkpoint file is seen.
    DuringSave,
    /// A random number of microseconds (0..2000) after a save's rename.
    AfterSave,
    /// After a random short life (2..100 ms).
    Anywhere,
}

/// Waits (up to 3 s) for `cond`, polling as fast as the machine allows:
/// the temporary file lives only as long as a write and an fsync.
fn poll_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::yield_now();
    }
    false
}

#[test]
fn s10_kill_9_aimed_at_checkpoint_saves() {
    use crate::rotation::p4_rename;
    use crate::writer::Pump;
    use std::time::Duration;

    let kills: u64 = super::tally::scale(30, 200);
    let seed = match std::env::var("LOGDAEMON_CHAOS_SEED") {
        Ok(s) => s.parse().expect("LOGDAEMON_CHAOS_SEED must be a number"),
        Err(_) => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        }
    };
    eprintln!("s10 seed {seed} (replay with LOGDAEMON_CHAOS_SEED={seed})");
    let mut state = seed;
    let mut draw = move |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let f = Fixture::new();
    let mut w = Writer::new(&f.join(live(Kind::P4)), Kind::P4);
    w.write(20);
    f.write("cfg.toml", config(Kind::P4, "", "fsync = false"));
    let mut d = Daemon::start(&f);
    let pump = Pump::start(w, Duration::from_micros(300));
    let (mut rotations, mut mid_save, mut aimed) = (0u64, 0u64, [0u64; 3]);
    for k in 0..kills {
        if draw(3) == 0 {
            rotations += 1;
            p4_rename(&f, &mut pump.lock(), rotations);
        }
        let left_before = temps(&f);
        // One kill in four aimed at a save (each waits for the next one,
        // a second apart), the others anywhere.
        let aim = match (k % 4, draw(2)) {
            (0, 0) => Aim::DuringSave,
            (0, _) => Aim::AfterSave,
            _ => Aim::Anywhere,
        };
        match aim {
            Aim::DuringSave => {
                poll_until(|| temps(&f).iter().any(|t| !left_before.contains(t)));
            }
            Aim::AfterSave => {
                let before = checkpoint_inode(&f);
                if poll_until(|| checkpoint_inode(&f) != before) {
                    let until = std::time::Instant::now() + Duration::from_micros(draw(2000));
                    while std::time::Instant::now() < until {
                        std::hint::spin_loop();
                    }
                }
            }
            Aim::Anywhere => std::thread::sleep(Duration::from_millis(2 + draw(98))),
        }
        d.kill();
        aimed[aim as usize] += 1;
        if temps(&f).iter().any(|t| !left_before.contains(t)) {
            mid_save += 1;
        }
        d = Daemon::start(&f);
        // Whatever was delivered so far is exactly the start of the ledger.
        let out = fs::read(f.join(crate::rotation::harness::OUT)).unwrap_or_default();
        let expected = pump.lock().expected();
        assert!(
            out.len() <= expected.len() && out[..] == expected[..out.len()],
            "s10 seed {seed}: after kill {} ({aim:?}) the output is not the start of the ledger\n{}",
            k + 1,
            crate::rotation::harness::diff(&out, &expected)
        );
    }
    pump.wait_more(50);
    let w = pump.stop();
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        &format!("s10 seed {seed}: {kills} kills, {rotations} renames"),
    );
    d.term();
    let t = Tally::count(
        &w,
        &fs::read(f.join(crate::rotation::harness::OUT)).unwrap(),
        0,
    );
    t.assert_exact(&format!("s10 seed {seed}"));
    t.report(
        "10",
        "kill -9 aimed at checkpoint saves, with renames",
        &format!(
            "{kills} kills ({} at a temp file seen, {} µs after a save, {} anywhere); {mid_save} left a temporary checkpoint (killed mid-save); {rotations} renames",
            aimed[0], aimed[1], aimed[2]
        ),
    );
}

/// The size of the single huge record of scenario 15: 64 MiB (16 MiB in
/// the bounded mode: a debug build reads a 64 MiB line from a .gz in
/// about 17 s).
fn huge() -> usize {
    super::tally::scale(16 << 20, 64 << 20)
}

/// `len` bytes of text without `@` or newline, not trivially compressible.
fn filler(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            format!(
                "{:016x} lorem ipsum dolor sit amet, {} consectetur ",
                i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                i % 977
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .strip_prefix(':')?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Waits until the daemon holds at least `kib` KiB more than `base`: it is
/// mid-way through the huge record.
fn wait_rss_above(d: &mut Daemon, base: u64, kib: u64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while status_kib(d.pid(), "VmRSS") < base + kib {
        d.assert_running();
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: the daemon's RSS did not grow by {kib} KiB within 30 s; log:\n{}",
            d.log_tail()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Peak RSS allowed while one huge record passes: the record in the
/// reader's buffer (grown by doubling), its copy in the batch and the
/// decoder's chunks, with room for the allocator; not the whole file.
fn peak_limit_kib() -> u64 {
    5 * (huge() as u64 >> 10) + (32 << 10)
}

/// A journal of `kind` with only the raw listener (the entries of a
/// 64 MiB record as JSON would dominate the run).
fn setup_huge(kind: Kind, extra: &str) -> (Fixture, Appended) {
    let f = Fixture::new();
    let a = Appended::new(&f, kind);
    f.write("cfg.toml", config(kind, extra, "fsync = false"));
    (f, a)
}

#[test]
fn s15c_huge_p4_string_renamed_and_gzipped_while_read() {
    let (f, mut a) = setup_huge(Kind::P4, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    let mut rec = b"@pv@ 0 @db.desc@ 900100 @".to_vec();
    rec.extend_from_slice(&filler(huge()));
    rec.extend_from_slice(b"@ \n");
    let base = status_kib(d.pid(), "VmRSS");
    a.first_part(&rec, rec.len() / 2);
    wait_rss_above(&mut d, base, (huge() as u64 >> 10) / 4, "15c");
    // The rest, then p4's rename and a gzip of the renamed file (which
    // removes it) while the daemon reads.
    a.rest();
    crate::rotation::p4_rename(&f, &mut a.w, 1);
    a.records(20);
    crate::rotation::harness::run_tool("gzip", &["-1"], &f.join("p4root/journal.1"));
    wait_output(
        &f,
        &mut d,
        &a.expected,
        "15c: a 64 MiB p4 string renamed and gzipped while read",
    );
    let peak = status_kib(d.pid(), "VmHWM");
    d.term();
    let t = a.tally(&fs::read(f.join(crate::rotation::harness::OUT)).unwrap());
    t.assert_exact("15c");
    assert!(
        peak < peak_limit_kib(),
        "15c: peak RSS {peak} KiB for one 64 MiB record"
    );
    t.report(
        "15c",
        "huge p4 string, renamed and gzipped mid-way",
        &format!(
            "{} MiB string; peak RSS (VmHWM) {} MiB",
            huge() >> 20,
            peak >> 10
        ),
    );
}

#[test]
fn s15d_huge_line_killed_mid_way_then_rotated_and_compressed() {
    let (f, mut a) = setup_huge(Kind::Lines, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    let mut rec = b"2026-11-21T13:00:03.000 app[4242]: ".to_vec();
    rec.extend_from_slice(&filler(huge()));
    rec.push(b'\n');
    let base = status_kib(d.pid(), "VmRSS");
    a.first_part(&rec, rec.len() / 2);
    wait_rss_above(&mut d, base, (huge() as u64 >> 10) / 4, "15d");
    let first_peak = status_kib(d.pid(), "VmHWM");
    d.kill();
    a.rest();
    a.records(20);
    logrotate(&f, "    create\n    compress");
    a.w.reopen();
    a.records(20);
    let mut d = Daemon::start(&f);
    wait_output(
        &f,
        &mut d,
        &a.expected,
        "15d: a 64 MiB line, kill -9 mid-way, rotated and compressed while down",
    );
    let peak = status_kib(d.pid(), "VmHWM");
    d.term();
    let t = a.tally(&fs::read(f.join(crate::rotation::harness::OUT)).unwrap());
    t.assert_exact("15d");
    assert!(
        peak < peak_limit_kib() && first_peak < peak_limit_kib(),
        "15d: peak RSS {first_peak} KiB, then {peak} KiB from the .gz"
    );
    t.report(
        "15d",
        "huge line, kill -9 mid-way, logrotate compress while down",
        &format!("{} MiB line; peak RSS (VmHWM) {} MiB before the kill, {} MiB reading it from app.log.1.gz", huge() >> 20, first_peak >> 10, peak >> 10),
    );
}
