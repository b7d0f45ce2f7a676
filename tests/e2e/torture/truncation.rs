//! Scenarios 1, 2 and 14: copytruncate under load, truncation in place with regrowth, and a writer without O_APPEND.
//!
//! A truncation destroys bytes, so these scenarios prove two things: that
//! every byte still in some file reaches the output exactly once, and that
//! every byte in no file is accounted for, either reported by the daemon
//! as a gap (when it saw the file hold it) or provably never seen by any
//! reader. The test finds the destroyed ranges itself from the files
//! (what the rotated copy holds, where the live file starts again) and
//! checks the daemon's gaps against them, byte for byte.
//!
//! - 1: the real `logrotate copytruncate` while a writer appends about
//!   10 000 lines a second without pause, the daemon keeping up (1a) or
//!   slowed down (1b): each rotation's window (the lines appended between
//!   the copy and the truncation) is measured from the files; the daemon
//!   may have read a first part of it live, and every gap it reported must
//!   start exactly where its delivery stopped inside a window and end
//!   inside it. The rest of a window was in the file too briefly for it to
//!   see: in no file and unreported, counted apart in the row's note.
//! - 2: the daemon is frozen (SIGSTOP), the file truncated in place and
//!   regrown past the daemon's offset before it looks again: the change is
//!   noticed by content, nothing is lost or repeated (2a, 2b). Frozen far
//!   behind instead, the bytes it never read are gone: they must be one
//!   gap from exactly where its delivery stopped, a record cut by its read
//!   position included whole, to the size it saw (2c, 2d); with the
//!   default `on_gap = "stop"` it stops naming the first entry it did not
//!   deliver, and the way out it prints goes on with the new content (2e).
//! - 14: a writer without `O_APPEND` goes on at its own offset after a
//!   copy and truncation, leaving a hole of NULs at the start of the file:
//!   the NULs are skipped and logged, never delivered, and the lines
//!   written between the copy and the truncation are the only loss.

use std::fs;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::tally::{records_in, scale, Tally};
use crate::fixture::Fixture;
use crate::rotation::harness::{config, live, logrotate, setup, wait_output, Daemon, LOG, OUT};
use crate::writer::{Kind, Writer};

/// A gap as the `file` listener wrote it to `<output>.gaps`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Gap {
    sequence: u64,
    from: u64,
    to: u64,
    cause: String,
}

/// The gaps the daemon reported, in order.
fn gaps(f: &Fixture) -> Vec<Gap> {
    let text = fs::read_to_string(f.join(format!("{OUT}.gaps"))).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{OUT}.gaps: {e}: {l}"));
            let g = &v["gap"];
            let (from, to) = (&g["from"], &g["to"]);
            assert_eq!(
                from["sequence"], to["sequence"],
                "a gap inside one file: {g}"
            );
            Gap {
                sequence: from["sequence"].as_u64().expect("gap sequence"),
                from: from["offset"].as_u64().expect("gap from"),
                to: to["offset"].as_u64().expect("gap to"),
                cause: g["cause"].as_str().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

fn daemon_log(f: &Fixture) -> String {
    fs::read_to_string(f.join(LOG)).unwrap_or_default()
}

/// Polls `done` every millisecond for up to 30 s; `what` says what was
/// awaited when it never came.
fn wait_until(d: &mut Daemon, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        d.assert_running();
        assert!(
            Instant::now() < deadline,
            "waited 30 s for {what}; daemon log:\n{}",
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------
// 2: truncated in place and regrown past the old offset before the next look.

#[test]
fn s02a_truncate_and_regrow_while_frozen_p4() {
    truncate_and_regrow("2a", Kind::P4);
}

#[test]
fn s02b_truncate_and_regrow_while_frozen_lines() {
    truncate_and_regrow("2b", Kind::Lines);
}

fn truncate_and_regrow(id: &str, kind: Kind) {
    let (f, mut w) = setup(kind, "", "fsync = false");
    let mut d = Daemon::start(&f);
    // (records added, bytes regrown past the old offset beyond one record)
    // per round: the first rounds truncate a file of fewer bytes than the
    // daemon keeps to prove a file unchanged, later ones regrow by one
    // record, a page or 64 KiB past the offset the daemon had read to.
    const ROUNDS: [(u64, u64); 6] = [
        (1, 0),
        (1, 0),
        (150, 4096),
        (400, 0),
        (40, 65536),
        (2000, 0),
    ];
    let rounds = scale(ROUNDS.len(), 10 * ROUNDS.len()) as u64;
    let mut regrown = Vec::new();
    for r in 0..rounds {
        let (add, extra) = ROUNDS[r as usize % ROUNDS.len()];
        w.write(add + r / ROUNDS.len() as u64);
        wait_output(
            &f,
            &mut d,
            &w.expected(),
            &format!("{id}: before truncation {}", r + 1),
        );
        d.freeze();
        let had = fs::metadata(w.path()).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(w.path())
            .unwrap()
            .set_len(0)
            .unwrap();
        while fs::metadata(w.path()).unwrap().len() <= had + extra {
            w.write_one();
        }
        regrown.push(fs::metadata(w.path()).unwrap().len() - had);
        d.thaw();
    }
    w.write(100);
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        &format!("{id}: after {rounds} truncations"),
    );
    d.term();
    let seen = daemon_log(&f).matches("file truncated in place").count() as u64;
    assert_eq!(
        seen,
        rounds,
        "{id}: each truncation noticed once; log:\n{}",
        d.log_tail()
    );
    assert!(
        gaps(&f).is_empty(),
        "{id}: nothing was lost, yet gaps were reported: {:?}",
        gaps(&f)
    );
    let t = Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0);
    t.assert_exact(id);
    let least = regrown.iter().min().unwrap();
    t.report(
        id,
        &format!("truncate in place, regrow past the offset while frozen ({kind:?})"),
        &format!("{rounds} truncations each noticed once by content; regrown {least} to {} bytes past the old offset", regrown.iter().max().unwrap()),
    );
}

#[test]
fn s02c_truncate_while_behind_lines() {
    truncate_while_behind("2c", Kind::Lines);
}

#[test]
fn s02d_truncate_while_behind_p4() {
    truncate_while_behind("2d", Kind::P4);
}

/// The daemon, slowed down, is frozen far behind; the file is truncated in
/// place (no copy) and regrown a little. The bytes it had not read are in
/// no file: with `on_gap = "report"` they must be reported as one gap, from
/// exactly where its delivery stopped to the size it had seen, and
/// everything before and after delivered once.
fn truncate_while_behind(id: &str, kind: Kind) {
    let (f, mut w) = setup(
        kind,
        "batch_bytes = 4096\non_gap = \"report\"",
        "fsync = true",
    );
    w.write(scale(20_000, 200_000));
    let size = w.ledger().len();
    let mut d = Daemon::start(&f);
    wait_until(&mut d, "the first delivery", || {
        fs::metadata(f.join(OUT)).is_ok_and(|m| m.len() > 0)
    });
    d.freeze();
    fs::OpenOptions::new()
        .write(true)
        .open(w.path())
        .unwrap()
        .set_len(0)
        .unwrap();
    w.write(50);
    d.thaw();
    let last = Writer::record(kind, w.count() - 1);
    wait_until(&mut d, "the last record in the output", || {
        fs::read(f.join(OUT)).unwrap_or_default().ends_with(&last)
    });
    d.term();
    let out = fs::read(f.join(OUT)).unwrap();
    // The output is the ledger up to where delivery stopped, then the new content.
    let stopped = out
        .len()
        .checked_sub(w.ledger().len() - size)
        .expect("output shorter than the new content");
    assert!(
        stopped < size,
        "{id}: the daemon had read everything before it was frozen: raise the backlog"
    );
    let gaps = gaps(&f);
    assert_eq!(
        gaps.len(),
        1,
        "{id}: one gap for the unread bytes: {gaps:?}; log:\n{}",
        d.log_tail()
    );
    let g = &gaps[0];
    assert_eq!(
        (g.sequence, g.cause.as_str()),
        (1, "truncated"),
        "{id}: {g:?}"
    );
    assert_eq!(
        g.from as usize, stopped,
        "{id}: the gap {g:?} starts where delivery stopped ({stopped})"
    );
    assert_eq!(
        g.to as usize, size,
        "{id}: the gap {g:?} ends at the size the daemon saw ({size})"
    );
    w.mark_lost(stopped..size);
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        &format!("{id}: truncated while behind"),
    );
    let lost = records_in(&w, stopped..size);
    let t = Tally::count(&w, &out, lost);
    t.assert_exact(id);
    t.report(
        id,
        &format!("truncate in place while the daemon is frozen behind ({kind:?}, on_gap = report)"),
        &format!("{} KiB unread in no file, reported as exactly one gap {}..{}; the new content delivered after it", (size - stopped) / 1024, g.from, g.to),
    );
}

#[test]
fn s02e_truncate_while_behind_stops_then_checkpoint_set_goes_on() {
    // As 2c with the default on_gap = "stop": the daemon stops, naming the
    // first entry lost; the way out it prints (checkpoint set) goes on with
    // the file's new content, losing nothing more.
    let kind = Kind::Lines;
    let (f, mut w) = setup(kind, "batch_bytes = 4096", "fsync = true");
    w.write(scale(20_000, 200_000));
    let size = w.ledger().len();
    let mut d = Daemon::start(&f);
    wait_until(&mut d, "the first delivery", || {
        fs::metadata(f.join(OUT)).is_ok_and(|m| m.len() > 0)
    });
    d.freeze();
    fs::OpenOptions::new()
        .write(true)
        .open(w.path())
        .unwrap()
        .set_len(0)
        .unwrap();
    w.write(50);
    d.thaw();
    let exited = |pid: u32| {
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.split_whitespace().nth(2) == Some("Z"))
    };
    let pid = d.pid();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !exited(pid) {
        assert!(
            Instant::now() < deadline,
            "2e: the daemon did not stop within 30 s; log:\n{}",
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let log = daemon_log(&f);
    let stopped = fs::metadata(f.join(OUT)).unwrap().len() as usize;
    let said = format!("the entries from sequence 1 offset {stopped} (line ");
    assert!(
        log.contains(&said),
        "2e: the stop names the first entry not delivered ({said}…); log:\n{}",
        d.log_tail()
    );
    assert!(
        stopped < size && !f.join(format!("{OUT}.gaps")).exists(),
        "2e: {stopped} of {size} delivered, no gap"
    );
    // The way out, as printed.
    let cmd = log
        .lines()
        .find_map(|l| l.split("logdaemon checkpoint set").nth(1))
        .expect("the stop message gives a checkpoint set command");
    let args: Vec<&str> = ["checkpoint", "set"]
        .into_iter()
        .chain(cmd.split_whitespace())
        .collect();
    let o = f.run(&args);
    assert!(
        o.status.success(),
        "2e: {args:?}: {}",
        crate::fixture::stderr(&o)
    );
    drop(d);
    let mut d = Daemon::start(&f);
    w.mark_lost(stopped..size);
    wait_output(&f, &mut d, &w.expected(), "2e: after checkpoint set");
    d.term();
    let lost = records_in(&w, stopped..size);
    let t = Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), lost);
    t.assert_exact("2e");
    t.report(
        "2e",
        "truncate in place while the daemon is frozen behind (Lines, on_gap = stop)",
        &format!("stopped naming offset {stopped}, the first entry lost; its printed checkpoint set went on with the new content"),
    );
}

// ---------------------------------------------------------------------------
// 14: a writer without O_APPEND after a copy and truncation.

/// A writer without `O_APPEND`: it keeps its own offset and writes each
/// record there (`pwrite`), so after a truncation it goes on at its old
/// offset and the file starts with a hole of NULs. The records and their
/// ledger are those of a [`Writer`] appending to a shadow file beside.
struct OffsetWriter {
    file: fs::File,
    path: PathBuf,
    at: u64,
    shadow: Writer,
}

impl OffsetWriter {
    fn new(f: &Fixture, kind: Kind) -> OffsetWriter {
        let path = f.join(live(kind));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        OffsetWriter {
            file,
            path,
            at: 0,
            shadow: Writer::new(&f.join("shadow/ledger"), kind),
        }
    }

    fn write(&mut self, n: u64) {
        for _ in 0..n {
            let from = self.shadow.ledger().len();
            self.shadow.write_one();
            let rec = &self.shadow.ledger()[from..];
            self.file
                .write_all_at(rec, self.at)
                .unwrap_or_else(|e| panic!("writing {} at {}: {e}", self.path.display(), self.at));
            self.at += rec.len() as u64;
        }
    }

    /// Copies the file to the rotated name the daemon looks in for
    /// `sequence` (p4: `journal.N`; lines: `app.log.1`, older copies
    /// shifted up one number as logrotate does).
    fn copy(&self, sequence: u64) {
        let dir = self.path.parent().unwrap();
        let name = self
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let to = match self.shadow.kind() {
            Kind::P4 => dir.join(format!("{name}.{sequence}")),
            Kind::Lines => {
                for n in (1..sequence).rev() {
                    fs::rename(
                        dir.join(format!("{name}.{n}")),
                        dir.join(format!("{name}.{}", n + 1)),
                    )
                    .unwrap();
                }
                dir.join(format!("{name}.1"))
            }
        };
        fs::copy(&self.path, to).unwrap();
    }

    fn truncate(&self) {
        self.file.set_len(0).unwrap();
    }
}

#[test]
fn s14a_writer_without_o_append_after_copytruncate_lines() {
    no_append_after_copytruncate("14a", Kind::Lines);
}

#[test]
fn s14b_writer_without_o_append_after_copytruncate_p4() {
    no_append_after_copytruncate("14b", Kind::P4);
}

/// Total NUL bytes the daemon logged as skipped, and in how many lines.
fn nuls_logged(f: &Fixture) -> (u64, u64) {
    let log = daemon_log(f);
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("skipped NUL bytes"))
        .collect();
    let bytes = lines
        .iter()
        .map(|l| {
            let v = l
                .split_whitespace()
                .find_map(|w| w.strip_prefix("bytes="))
                .unwrap_or_else(|| panic!("no bytes= in {l}"));
            v.parse::<u64>()
                .unwrap_or_else(|e| panic!("bytes={v} in {l}: {e}"))
        })
        .sum();
    (bytes, lines.len() as u64)
}

fn no_append_after_copytruncate(id: &str, kind: Kind) {
    let f = Fixture::new();
    let mut w = OffsetWriter::new(&f, kind);
    f.write("cfg.toml", config(kind, "", "fsync = false"));
    let mut d = Daemon::start(&f);
    let rounds = scale(4, 40);
    let (mut holes, mut unseen) = (0, 0);
    for r in 1..=rounds {
        w.write(120 + 13 * r);
        wait_output(
            &f,
            &mut d,
            &w.shadow.expected(),
            &format!("{id}: before copy {r}"),
        );
        // Odd rounds: the daemon is frozen before the copy, so the lines
        // written between the copy and the truncation are seen by nobody.
        // Even rounds: it has delivered them before the truncation, and
        // runs on: it may look at the file when it is empty, before the
        // writer makes the hole, or after.
        let frozen = r % 2 == 1;
        if frozen {
            d.freeze();
            w.copy(r);
            let before = w.shadow.ledger().len();
            w.write(5);
            w.shadow.mark_lost(before..w.shadow.ledger().len());
            unseen += 5;
        } else {
            w.copy(r);
            w.write(5);
            wait_output(
                &f,
                &mut d,
                &w.shadow.expected(),
                &format!("{id}: window {r} read live"),
            );
        }
        w.truncate();
        holes += w.at;
        w.write(40);
        if frozen {
            d.thaw();
        }
    }
    w.write(60);
    wait_output(
        &f,
        &mut d,
        &w.shadow.expected(),
        &format!("{id}: after {rounds} copies and truncations"),
    );
    d.term();
    let (nuls, warnings) = nuls_logged(&f);
    assert_eq!(
        nuls,
        holes,
        "{id}: every NUL of the holes logged as skipped ({warnings} warnings); log:\n{}",
        d.log_tail()
    );
    // The holes reach the listeners as gaps of cause "nul-fill", each at the
    // start of the file's new content; nothing else is a gap.
    let g = gaps(&f);
    assert!(
        g.iter().all(|g| g.cause == "nul-fill" && g.from == 0),
        "{id}: the windows were never seen, yet other gaps were reported: {g:?}"
    );
    assert_eq!(
        g.iter().map(|g| g.to - g.from).sum::<u64>(),
        holes,
        "{id}: the holes reported as gaps: {g:?}"
    );
    let t = Tally::count(&w.shadow, &fs::read(f.join(OUT)).unwrap(), unseen);
    t.assert_exact(id);
    t.report(
        id,
        &format!("writer without O_APPEND after copytruncate ({kind:?})"),
        &format!(
            "{rounds} truncations, {nuls} NUL bytes of holes skipped, logged ({warnings} warnings) and reported as {} nul-fill gaps, none delivered; \
             {unseen} records written between copy and truncation while the daemon was frozen: in no file, seen by no reader",
            g.len()
        ),
    );
}

// ---------------------------------------------------------------------------
// 1: the real logrotate copytruncate while the writer appends ~10k lines/s.

/// Records a second the writer aims at in scenario 1.
const RATE: u64 = 10_000;

/// Sets the flag when dropped: stops the writer thread even when the test
/// panics, so that the thread scope can end.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Appends `RATE` records a second to `w` until `stop`: every 200 µs
/// whatever is due, so the pace holds without a sleep per record.
fn write_at_rate(w: &Mutex<Writer>, stop: &AtomicBool) -> Duration {
    let start = Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let due = start.elapsed().as_micros() as u64 * RATE / 1_000_000;
        if n < due {
            let k = (due - n).min(64);
            w.lock().unwrap().write(k);
            n += k;
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    start.elapsed()
}

/// Ledger offsets of record starts, extended on demand.
struct Starts(Kind, Vec<usize>);

impl Starts {
    fn of(&mut self, i: u64) -> usize {
        while self.1.len() <= i as usize {
            let last = self.1.len() as u64 - 1;
            let next = self.1[last as usize] + Writer::record(self.0, last).len();
            self.1.push(next);
        }
        self.1[i as usize]
    }
}

/// The number of the lines record `line` (`… request N took …`), checked
/// to be exactly that record.
fn line_record(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    let i: u64 = text
        .split("request ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    (Writer::record(Kind::Lines, i) == line).then_some(i)
}

/// Waits until the live file holds a whole first line and returns its
/// record number.
fn first_record(d: &mut Daemon, path: &Path) -> u64 {
    let mut first = None;
    wait_until(
        d,
        "a whole first line in the live file after the truncation",
        || {
            let bytes = fs::read(path).unwrap_or_default();
            let Some(nl) = bytes.iter().position(|&b| b == b'\n') else {
                return false;
            };
            let rec = line_record(&bytes[..=nl]);
            assert!(
                rec.is_some(),
                "the live file starts with no whole written record: {:?}",
                String::from_utf8_lossy(&bytes[..=nl])
            );
            first = rec;
            true
        },
    );
    first.unwrap()
}

#[test]
fn s01a_copytruncate_at_10k_lines_per_second() {
    copytruncate_at_rate("1a", "", "fsync = false", "daemon keeping up");
}

#[test]
fn s01b_copytruncate_at_10k_lines_per_second_daemon_lagging() {
    // 4 KiB batches, each synced: the daemon reads behind the writer, so
    // truncations find it inside the copy, having seen the window's size.
    copytruncate_at_rate("1b", "batch_bytes = 4096", "fsync = true", "daemon lagging");
}

fn copytruncate_at_rate(id: &str, journal_extra: &str, listener_extra: &str, how: &str) {
    let kind = Kind::Lines;
    let f = Fixture::new();
    let path = f.join(live(kind));
    let w = Mutex::new(Writer::new(&path, kind));
    f.write("cfg.toml", config(kind, journal_extra, listener_extra));
    let mut d = Daemon::start(&f);
    let rotations = scale(6u64, 100);
    let between = RATE * 6 / 10;
    let stop = AtomicBool::new(false);
    let mut starts = Starts(kind, vec![0]);
    // Per rotation: the window, as ledger bytes (copy end..live file start).
    let mut windows: Vec<Range<usize>> = Vec::new();
    let mut firsts = Vec::new();
    let elapsed = std::thread::scope(|s| {
        let writer = s.spawn(|| write_at_rate(&w, &stop));
        let _stop = StopOnDrop(&stop);
        let mut base = 0;
        for _ in 0..rotations {
            let target = w.lock().unwrap().count() + between;
            wait_until(&mut d, "the writer thread to write on", || {
                w.lock().unwrap().count() >= target
            });
            logrotate(&f, "    copytruncate");
            // The copy is the ledger from the previous live start on.
            let copied = fs::read(f.join("logs/app.log.1")).unwrap();
            let x = base + copied.len();
            assert!(
                w.lock().unwrap().ledger()[base..x] == copied[..],
                "copy {} is not the ledger from byte {base}",
                windows.len() + 1
            );
            let first = first_record(&mut d, &path);
            let y = starts.of(first);
            assert!(
                y >= x,
                "the live file starts at ledger byte {y}, before the copy's end {x}"
            );
            windows.push(x..y);
            firsts.push(first);
            base = y;
        }
        let target = w.lock().unwrap().count() + between;
        wait_until(&mut d, "the writer thread to write on", || {
            w.lock().unwrap().count() >= target
        });
        stop.store(true, Ordering::SeqCst);
        writer.join().expect("writer thread")
    });
    let mut w = w.into_inner().unwrap();
    let rate = w.count() as f64 / elapsed.as_secs_f64();

    // The records not wholly in a copy, `recs` by number, are those of its
    // window: a copy can end inside a record (a write straddling a page is
    // seen in two steps), whose rest is then in no file.
    let mut recs = Vec::new();
    let mut cut_copies = 0;
    starts.of(w.count());
    for (k, win) in windows.iter().enumerate() {
        let first = starts.1.binary_search(&win.start).unwrap_or_else(|i| {
            cut_copies += 1;
            i - 1
        });
        recs.push(first as u64..firsts[k]);
    }

    // The last record must arrive; everything before it has by then.
    let last = Writer::record(kind, w.count() - 1);
    wait_until(&mut d, "the last record in the output", || {
        fs::read(f.join(OUT)).unwrap_or_default().ends_with(&last)
    });
    d.term();
    let out = fs::read(f.join(OUT)).unwrap();
    let mut delivered = vec![false; w.count() as usize];
    for line in out.split_inclusive(|&b| b == b'\n') {
        if let Some(i) = line_record(line) {
            delivered[i as usize] = true;
        }
    }

    // Per window: a prefix read live before the truncation, then at most
    // one gap starting where that stopped, then bytes no reader saw.
    let reported = gaps(&f);
    let (mut read_live, mut in_gaps, mut unseen, mut lost) = (0, 0, 0, 0);
    let mut base = 0;
    for (k, (win, recs)) in windows.iter().zip(&recs).enumerate() {
        let seq = k as u64 + 1;
        let stop_at = recs
            .clone()
            .find(|&i| !delivered[i as usize])
            .unwrap_or(recs.end);
        assert!(
            (stop_at..recs.end).all(|i| !delivered[i as usize]),
            "rotation {seq}: records of the window {recs:?} delivered after one that was not"
        );
        read_live += stop_at - recs.start;
        let cut = starts.of(stop_at);
        let mine: Vec<&Gap> = reported.iter().filter(|g| g.sequence == seq).collect();
        assert!(
            mine.len() <= 1,
            "rotation {seq}: more than one gap: {mine:?}"
        );
        if let Some(g) = mine.first() {
            let (from, to) = (base + g.from as usize, base + g.to as usize);
            assert_eq!(g.cause, "copytruncate", "{g:?}");
            assert_eq!(from, cut, "rotation {seq}: the gap {g:?} does not start where delivery stopped in the window {win:?}");
            assert!(from < to && to <= win.end, "rotation {seq}: the gap {g:?} is not inside the window {win:?} (ledger {from}..{to})");
            in_gaps += records_in(&w, from..to);
        }
        if cut < win.end {
            w.mark_lost(cut..win.end);
        }
        let gone = recs.end - stop_at;
        lost += gone;
        base = win.end;
        unseen += gone;
    }
    unseen -= in_gaps;
    assert!(
        reported.iter().all(|g| g.sequence <= rotations),
        "gaps after the last rotation: {reported:?}"
    );
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        &format!("{id}: copytruncate at 10k lines/s"),
    );
    let t = Tally::count(&w, &out, lost);
    t.assert_exact(id);
    let window: u64 = recs.iter().map(|r| r.end - r.start).sum();
    let widest = recs.iter().map(|r| r.end - r.start).max().unwrap_or(0);
    t.report(
        id,
        &format!("logrotate copytruncate at 10k lines/s, writer not paused, {how}"),
        &format!(
            "{rate:.0} lines/s; windows {window} records in {rotations} rotations (widest {widest}): {read_live} read live before the truncation, \
             {in_gaps} reported as gaps, {unseen} past the last size the daemon saw (in no file, not reported){}",
            if cut_copies > 0 { format!("; {cut_copies} copies ended inside a record") } else { String::new() }
        ),
    );
}
