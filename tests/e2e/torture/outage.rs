//! Scenario 11: a listener down for an hour of simulated time while the journal rotates.
//!
//! Two listeners follow one journal: the raw `file` listener, up, and the
//! `testkit` listener, down (it answers Retry until a flag file exists,
//! and records every entry with its raw bytes once it takes them, so its
//! record can be counted like the file listener's output). The daemon
//! never deletes a journal file; each listener has its own cursor, so the
//! one that is up keeps up, and the one that is down must keep its place
//! on the file it has not read, whatever logrotate renames or compresses.
//!
//! - 11a: twenty `logrotate` runs (`rotate 1000`, `create`, `compress`,
//!   `delaycompress`: the unread file becomes `app.log.1`, then
//!   `app.log.2.gz` … `app.log.20.gz`) while the listener is down for more
//!   than an hour of the daemon's time, its retry backoff grown to the
//!   default `retry_max` (60 s). Then the flag appears: it gets everything,
//!   exactly once, in order, and no file was removed.
//! - 11b: `rotate 3` deletes the unread file while the listener is down
//!   (the fourth run after it went down). With the default
//!   `on_gap = "stop"` the daemon stops with the documented message (the
//!   journal, the position, the files it looked at, the two ways out) and
//!   leaves the checkpoint alone; the listener got every entry before the
//!   loss, once, and nothing after it. Then the `checkpoint set` the
//!   message prints, exactly, and a run with the listener up: it names the
//!   oldest rotated file left (`app.log.3`), so the three rotated files and
//!   the live file are delivered once each, none skipped for the live file.
//! - 11c: `rotate 0` deletes the unread file at once, with
//!   `on_gap = "report"`: the listener gets one gap, from its position to
//!   the start of the new live file, and everything after it once; the
//!   `file` listener, which had the file open, loses nothing and reports
//!   nothing.
//! - 11d: as 11b, with `on_gap = "report"`: the listener gets one gap, from
//!   its position to the start of the oldest rotated file left
//!   (`app.log.3`), then the three rotated files and the live file, each
//!   entry once: the files written after the deleted one are not skipped
//!   for the live file.
//! - 11e: the listener is down from the start: its cursor is the start of
//!   the live file, empty when the daemon started, and it acknowledges
//!   nothing of it. The file is written, the daemon stopped, and
//!   `logrotate` (`compress`) runs three times: its file is `app.log.3.gz`,
//!   two newer rotated files after it. The file's first bytes, taken as
//!   the cursor's proof once written, tell it from the newer ones: the
//!   listener gets everything once, from `app.log.3.gz` on.
//!
//! The listener that is down looks for its place again (lists the
//! directory, opens the file) on every attempt; the rotations run while it
//! waits out a backoff, with the daemon frozen ([`while_parked`]), so that
//! no attempt looks at a directory in the middle of logrotate's renames.
//!
//! **The simulated hour.** The daemon's timers (retry backoff, quiet
//! periods) read its injected monotonic clock; `LOGDAEMON_TIME_SCALE=3600`
//! makes that clock run an hour per second. libfaketime cannot do this: a
//! faked `CLOCK_MONOTONIC` (by speed-up or by offset) reaches Rust's timed
//! waits, which hand the kernel an absolute futex deadline computed from
//! the faked clock and enforced by the real one, so a 200 ms wait becomes
//! minutes to an hour (checked: `park_timeout` under `FAKETIME="+0 x10"`
//! or `+3600` never returns). Waits in the daemon stay real (the worker
//! checks its backoff deadline every 200 ms at most, or when woken), so
//! the hour is measured from the daemon's own log: the backoffs it
//! announced for the listener that is down add up to an hour or more, the
//! last ones at the 60 s cap.

mod deleted;
mod from_start;
mod hour;

use std::fs;
use std::time::{Duration, Instant};

use crate::fixture::Fixture;
use crate::host::{acked, entry_text, kit_listener, wait_until};
use crate::rotation::harness::{config, live, LOG};
use crate::writer::{Kind, Writer};

/// Time between two records of the writer thread.
const PACE: Duration = Duration::from_micros(500);
/// Records written between two rotations.
const BETWEEN: u64 = 60;
/// Where the testkit listener records.
const KIT: &str = "out/kit.jsonl";

/// The config of a lines journal with the `file` listener `copy` (up) and
/// the testkit listener `kit`, down until the file `flag` exists.
fn two_listeners(journal_extra: &str, kit_extra: &str) -> String {
    format!(
        "{}{}",
        config(Kind::Lines, journal_extra, "fsync = false"),
        kit_listener("kit", kit_extra, "retry_until_file = \"flag\"")
    )
}

/// Starts the daemon (with `start`) on a journal of `BETWEEN` records with
/// both listeners up, waits until the testkit listener has them all (its
/// cursor then holds the proof of its file: the bytes before it), and
/// takes the listener down.
fn up_then_down<D>(f: &Fixture, start: impl FnOnce(&Fixture) -> D) -> (D, Writer) {
    let mut w = Writer::new(&f.join(live(Kind::Lines)), Kind::Lines);
    w.write(BETWEEN);
    f.write("flag", "");
    let d = start(f);
    let first = String::from_utf8(w.expected()).unwrap();
    let log = || fs::read_to_string(f.join(LOG)).unwrap_or_default();
    wait_until(
        30,
        "the first entries at the testkit listener",
        || entry_text(&f.join(KIT)) == first,
        log,
    );
    wait_until(
        30,
        "the checkpoint of the first entries",
        || acked(f, "kit") == Some((1, first.len() as u64)),
        log,
    );
    fs::remove_file(f.join("flag")).unwrap();
    (d, w)
}

/// Whether no worker of the frozen daemon `pid` is in a step: every
/// thread of its pool (`pool-N`) waits (a futex wait) for work. Workers
/// look for their place, list the directory and open files only within a
/// step; the listener `kit`, down, spends the time between its steps
/// waiting out its retry backoff.
fn kit_waiting(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let (mut pool, mut idle) = (0, true);
    for t in tasks.flatten() {
        let comm = fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.trim().starts_with("pool-") || comm.trim() == "pool-timer" {
            continue;
        }
        let call = fs::read_to_string(t.path().join("syscall")).unwrap_or_default();
        let f: Vec<&str> = call.split_whitespace().collect();
        // futex(uaddr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, …)
        pool += 1;
        idle &= f.len() > 2 && f[0] == "202" && f[2] == "0x89";
    }
    pool > 0 && idle
}

/// Runs `rotate` while the daemon is frozen and the testkit listener, down,
/// is waiting out a backoff, not looking for its place (it lists the
/// directory and opens files then, and must not see logrotate's renames
/// half done): the test freezes the daemon, checks where that worker
/// thread is, and thaws and tries again a moment later until it waits.
fn while_parked(pid: u32, rotate: impl FnOnce()) {
    let signal = |sig: &str| {
        let st = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill {sig} {pid} failed");
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        signal("-STOP");
        if kit_waiting(pid) {
            break;
        }
        signal("-CONT");
        assert!(
            Instant::now() < deadline,
            "the worker of the listener that is down was never seen waiting in 30 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    rotate();
    signal("-CONT");
}

/// Appends `BETWEEN` records and waits until the testkit listener, down,
/// has refused them: it is retrying then (and re-reading from its cursor
/// on each attempt), not following the file it has open.
fn write_refused(f: &Fixture, w: &mut Writer) {
    let before = kit_backoffs(f).len();
    w.write(BETWEEN);
    let log = || fs::read_to_string(f.join(LOG)).unwrap_or_default();
    wait_until(
        30,
        "the listener that is down to refuse new entries",
        || kit_backoffs(f).len() > before,
        log,
    );
}

/// The backoffs (ms) the daemon announced for listener `kit`, in order.
fn kit_backoffs(f: &Fixture) -> Vec<u64> {
    let log = fs::read_to_string(f.join(LOG)).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains("listener asks to retry") && l.contains("listener=kit"))
        .filter_map(|l| {
            l.split_once("backoff_ms=")?
                .1
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}
