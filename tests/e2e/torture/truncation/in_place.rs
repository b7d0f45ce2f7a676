//! Scenario 2: truncation in place. Regrown past the frozen daemon's
//! offset (2a, 2b: noticed by content), or while it is far behind: one
//! gap exactly (2c, 2d), or a stop whose printed way out goes on (2e).

use std::fs;
use std::time::{Duration, Instant};

use super::{daemon_log, gaps, wait_until};
use crate::rotation::harness::{setup, wait_output, Daemon, OUT};
use crate::torture::tally::{records_in, scale, Tally};
use crate::writer::{Kind, Writer};

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
    f.run_printed_checkpoint_set(&log, "2e");
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
