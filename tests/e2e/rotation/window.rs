//! The copytruncate window made visible: lines appended between the copy
//! and the truncation exist in no file. The daemon cannot deliver them, but
//! it saw the live file grow to include them, so it must report exactly
//! that range as a gap (the `file` listener writes it to `<path>.gaps`) and
//! deliver everything else once, in order.
//!
//! `logrotate` offers no hook between its copy and its truncation, so this
//! test performs the same two steps itself (copy to `app.log.1`, then
//! truncate `app.log` in place) and writes the window in between. To make
//! the outcome certain, the daemon is slowed down (small batches, fsync)
//! and frozen with SIGSTOP for the truncation, at a moment when it has
//! provably looked at the file after the window was written but has not
//! read that far.

use std::fs;
use std::time::{Duration, Instant};

use super::harness::{setup, wait_output, Daemon, OUT};
use crate::fixture::Fixture;
use crate::writer::Kind;

/// Records written before the copy: enough that the daemon, delivering
/// 4 KiB batches with fsync, is far from their end when frozen.
const BEFORE: u64 = 30_000;
const BATCH: u64 = 4096;

fn out_len(f: &Fixture) -> u64 {
    fs::metadata(f.join(OUT)).map_or(0, |m| m.len())
}

/// Waits until the output is longer than `len`.
fn wait_longer(f: &Fixture, d: &mut Daemon, len: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while out_len(f) <= len {
        d.assert_running();
        assert!(
            Instant::now() < deadline,
            "the output stayed at {} bytes for 30 s; log:\n{}",
            out_len(f),
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn copytruncate_window_is_reported_as_exactly_that_gap() {
    let (f, mut w) = setup(
        Kind::Lines,
        &format!("batch_bytes = {BATCH}"),
        "fsync = true",
    );
    let mut d = Daemon::start(&f);
    w.write(BEFORE);
    let copied = w.ledger().len() as u64;
    wait_longer(&f, &mut d, 0);

    // logrotate's copytruncate, step 1: the copy.
    fs::copy(w.path(), f.join("logs/app.log.1")).unwrap();
    let window = w.write_lost(25);
    // Three more commits after the window was written: the follower has
    // looked at the file (and its size) at least once since.
    let mut seen = out_len(&f);
    for _ in 0..3 {
        wait_longer(&f, &mut d, seen);
        seen = out_len(&f);
    }
    d.freeze();
    let delivered = out_len(&f);
    // The follower reads ahead at most its buffer (256 KiB) plus a batch.
    assert!(
        delivered + (1 << 20) < copied,
        "the daemon had delivered {delivered} of the {copied} copied bytes when frozen: too close to the window \
         for a certain outcome on this machine; raise BEFORE"
    );
    // Step 2: the truncation, while the daemon is frozen behind the window.
    fs::OpenOptions::new()
        .write(true)
        .open(w.path())
        .unwrap()
        .set_len(0)
        .unwrap();
    d.thaw();
    w.write(100);

    wait_output(
        &f,
        &mut d,
        &w.expected(),
        "copytruncate with lines written in the window",
    );
    d.term();

    let gaps = fs::read_to_string(f.join(format!("{OUT}.gaps")))
        .unwrap_or_else(|e| panic!("{OUT}.gaps: {e}; log:\n{}", d.log_tail()));
    let gaps: Vec<serde_json::Value> = gaps
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(gaps.len(), 1, "one gap, for the window: {gaps:?}");
    let g = &gaps[0]["gap"];
    assert_eq!(g["cause"], "copytruncate", "{g}");
    assert_eq!(g["journal"], "app", "{g}");
    let (from, to) = (&g["from"], &g["to"]);
    assert_eq!(
        from["sequence"], to["sequence"],
        "the window is in one file: {g}"
    );
    assert_eq!(
        from["offset"].as_u64(),
        Some(window.start as u64),
        "the gap starts where the copy ends: {g}"
    );
    assert_eq!(
        to["offset"].as_u64(),
        Some(window.end as u64),
        "the gap ends where the window ends: {g}"
    );
    assert_eq!(
        from["line"].as_u64(),
        Some(BEFORE + 1),
        "the first lost line is the one after the copy: {g}"
    );
}
