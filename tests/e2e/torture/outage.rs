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

use std::fs;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::tally::{scale, Tally};
use crate::fixture::Fixture;
use crate::host::{self, acked, entry_text, events, kind, kit_listener, wait_until};
use crate::rotation::harness::{config, listing, live, logrotate, wait_output, Daemon, LOG, OUT};
use crate::writer::{Kind, Pump, Writer};

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

#[test]
fn s11a_listener_down_an_hour_during_twenty_rotations() {
    let f = Fixture::new();
    f.write("cfg.toml", two_listeners("", ""));
    let (mut d, w) = up_then_down(&f, |f| {
        Daemon::start_with_env(f, &[("LOGDAEMON_TIME_SCALE", "3600")])
    });
    let at = w.ledger().len() as u64;
    let first = String::from_utf8(w.expected()).unwrap();
    let pump = Pump::start(w, PACE);
    // The server writes on while the listener's backoff grows to the cap
    // and past an hour in all.
    let hour = || kit_backoffs(&f).iter().sum::<u64>() >= 3_600_000;
    wait_until(
        30,
        "an hour of retry backoff for the listener that is down",
        hour,
        || d.log_tail(),
    );
    // Then the rotations, a few at a time while that listener waits.
    let (rotations, batch) = (scale(20, 100), 4);
    for _ in 0..rotations / batch {
        pump.wait_more(BETWEEN);
        let mut w = pump.lock();
        while_parked(d.pid(), || {
            for _ in 0..batch {
                w.write(BETWEEN);
                // app.log.1 stays plain; the run after compresses it.
                logrotate(&f, "    create\n    compress\n    delaycompress");
                w.reopen();
            }
        });
    }
    pump.wait_more(BETWEEN);
    let w = pump.stop();
    let backoffs = kit_backoffs(&f);
    let capped = backoffs.iter().filter(|&&b| b == 60_000).count();
    assert!(
        capped >= 30 && backoffs.iter().all(|&b| b <= 60_000),
        "11a: backoffs (ms) {backoffs:?}"
    );

    // The listener that is up kept up; the one that is down took nothing
    // and kept its place; nothing was removed.
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        "11a: the file listener while the other is down",
    );
    assert_eq!(
        entry_text(&f.join(KIT)),
        first,
        "11a: the listener that is down recorded entries"
    );
    let files = listing(&f, Kind::Lines);
    let rotated = files.iter().filter(|n| n.starts_with("app.log.")).count() as u64;
    assert_eq!(rotated, rotations, "11a: rotated files: {files:?}");
    assert_eq!(
        acked(&f, "kit"),
        Some((1, at)),
        "11a: the cursor of the listener that is down moved"
    );

    f.write("flag", "");
    let expected = String::from_utf8(w.expected()).unwrap();
    let kit = f.join(KIT);
    wait_until(
        30,
        "the listener that was down to catch up",
        || entry_text(&kit).len() >= expected.len(),
        || d.log_tail(),
    );
    d.term();
    let copy = Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0);
    copy.assert_exact("11a (file listener, up)");
    let t = Tally::count(&w, entry_text(&kit).as_bytes(), 0);
    t.assert_exact("11a (testkit listener, down then up)");
    let hours = backoffs.iter().sum::<u64>() as f64 / 3_600_000.0;
    t.report(
        "11a",
        &format!("a listener down {hours:.1} h (simulated) while logrotate rotates {rotations} times (delaycompress)"),
        &format!(
            "{} retries, {capped} at the 60 s cap; the listener that stayed up delivered {} of {} meanwhile; {rotations} rotated files kept, {} compressed",
            backoffs.len(),
            copy.delivered,
            copy.written,
            files.iter().filter(|n| n.ends_with(".gz")).count()
        ),
    );
}

/// `rounds` runs of `logrotate` with `rotate 3`, one at a time, each while
/// the listener that is down waits (see [`while_parked`]) and each followed
/// by `BETWEEN` records; the `file` listener is let catch up between runs
/// (except after the last, when `last` runs in the frozen window too).
/// Returns how many records the files that `rotate 3` deleted held beyond
/// the first `BETWEEN`, which the listener that is down had taken (each
/// file ends where its rotation began: nothing is written during one).
fn rotate_three(f: &Fixture, w: &mut Writer, rounds: u64, pid: u32, last: impl FnOnce()) -> u64 {
    let mut ends = Vec::new();
    let mut last = Some(last);
    write_refused(f, w);
    for r in 0..rounds {
        while_parked(pid, || {
            ends.push(w.count());
            logrotate(f, "    rotate 3\n    create");
            w.reopen();
            w.write(BETWEEN);
            if r + 1 == rounds {
                last.take().unwrap()();
            }
        });
        if r + 1 < rounds {
            let want = w.expected();
            let log = || fs::read_to_string(f.join(LOG)).unwrap_or_default();
            wait_until(
                30,
                "the file listener to catch up",
                || fs::read(f.join(OUT)).unwrap_or_default() == want,
                log,
            );
        }
    }
    let files = listing(f, Kind::Lines);
    assert_eq!(files.len(), 4, "app.log and three rotated files: {files:?}");
    let deleted = ends.len().saturating_sub(3);
    if deleted == 0 {
        0
    } else {
        ends[deleted - 1] - BETWEEN
    }
}

#[test]
fn s11b_rotate_three_deletes_the_unread_file_stop() {
    let f = Fixture::new();
    f.write("cfg.toml", two_listeners("", "retry_max = \"200ms\""));
    let (d, mut w) = up_then_down(&f, host::Daemon::start);
    let at = w.ledger().len() as u64;
    // The fourth run deletes the file the listener that is down is in.
    let lost = rotate_three(&f, &mut w, 4, d.pid(), || {});
    let (st, log) = d.wait(30);
    assert!(
        !st.success(),
        "11b: the daemon went on past deleted entries:\n{log}"
    );
    let dir = f.join("logs");
    for want in [
        format!("journal \"app\": the entries from sequence 1 offset {at} (line {}) are in no file any more (the file holding them was deleted or rotated away)", BETWEEN + 1),
        "looked at:".to_string(),
        format!("{}: ", dir.join("app.log.3").display()),
        "Nothing was delivered past the last entry before this point and the checkpoint was not moved. Two ways out:".to_string(),
        format!("1. restore the file that held these entries (plain or compressed) into {} and start the daemon again", dir.display()),
        format!("2. accept the loss and move the checkpoint past it: logdaemon checkpoint set --state-dir {} --journal app", f.join("state").display()),
        "(with on_gap = \"report\" the daemon reports such a gap to the listeners and goes on instead of stopping)".to_string(),
    ] {
        assert!(log.contains(&want), "11b: the message does not say {want:?}:\n{log}");
    }
    assert_eq!(
        acked(&f, "kit"),
        Some((1, at)),
        "11b: the checkpoint of the listener that was down moved"
    );
    // Everything before the loss, once, and nothing after it.
    let t = Tally::count_records(Kind::Lines, BETWEEN, entry_text(&f.join(KIT)).as_bytes(), 0);
    t.assert_exact("11b (testkit listener, entries before the loss)");
    // The second way out, exactly as printed, then a run with the listener
    // up: the rotated files written after the deleted one are still there,
    // and the printed position must not skip them for the live file.
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
        "11b: {args:?}: {}",
        crate::fixture::stderr(&o)
    );
    f.write("flag", "");
    let d = host::Daemon::start(&f);
    let kit = f.join(KIT);
    let want = w.expected().len() - (bytes_of(BETWEEN + lost) - bytes_of(BETWEEN));
    let last = Writer::record(Kind::Lines, w.count() - 1);
    let last = String::from_utf8_lossy(&last).into_owned();
    wait_until(
        30,
        "the listener to deliver the last record written",
        || entry_text(&kit).ends_with(&last),
        || d.log(),
    );
    // The file listener, moved back with it, keeps its own record of what
    // it wrote: nothing twice.
    let expected = w.expected();
    wait_until(
        30,
        "the file listener to catch up",
        || fs::read(f.join(OUT)).unwrap_or_default().len() >= expected.len(),
        || d.log(),
    );
    let (_, log) = d.stop();
    Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0)
        .assert_exact("11b (file listener, after the printed checkpoint set)");
    assert!(
        entry_text(&kit).len() >= want,
        "11b: after the printed checkpoint set, records still on disk were skipped; log:\n{log}"
    );
    let after = Tally::count(&w, entry_text(&kit).as_bytes(), lost);
    after.assert_exact("11b (testkit listener, after the printed checkpoint set)");
    after.report(
        "11b",
        "rotate 3 deletes the unread file of a listener that is down (on_gap = \"stop\")",
        &format!(
            "stopped with the documented message naming the position, the files looked at and both ways out; checkpoint kept; {lost} records in no file; its printed checkpoint set went on with the oldest rotated file left: the {} records after the loss delivered once",
            after.delivered - BETWEEN
        ),
    );
}

#[test]
fn s11c_rotate_zero_deletes_the_unread_file_report() {
    let f = Fixture::new();
    f.write(
        "cfg.toml",
        two_listeners("on_gap = \"report\"", "retry_max = \"200ms\""),
    );
    let (mut d, mut w) = up_then_down(&f, Daemon::start);
    let at = w.ledger().len() as u64;
    // `rotate 0` deletes its file at once; it is back before it next looks.
    write_refused(&f, &mut w);
    while_parked(d.pid(), || {
        logrotate(&f, "    rotate 0\n    create");
        w.reopen();
        w.write(BETWEEN);
        f.write("flag", "");
    });
    let lost = BETWEEN;
    let kit = f.join(KIT);
    let want = w.expected().len() - (bytes_of(BETWEEN + lost) - bytes_of(BETWEEN));
    wait_until(
        30,
        "the listener to deliver what is left",
        || entry_text(&kit).len() >= want,
        || d.log_tail(),
    );
    wait_output(&f, &mut d, &w.expected(), "11c: the file listener");
    d.term();
    let ev = events(&kit);
    let gaps: Vec<&Value> = ev.iter().filter(|e| kind(e) == "gap").collect();
    assert_eq!(gaps.len(), 1, "11c: gaps {gaps:?}");
    let g = gaps[0];
    assert_eq!(
        (
            &g["from"]["sequence"],
            &g["from"]["offset"],
            g["cause"].as_str()
        ),
        (&1.into(), &at.into(), Some("deleted")),
        "{g}"
    );
    let next = ev
        .iter()
        .skip_while(|e| kind(e) != "gap")
        .find(|e| kind(e) == "entry")
        .expect("entries after the gap");
    assert_eq!(
        (&next["sequence"], &next["offset"]),
        (&g["to"]["sequence"], &g["to"]["offset"]),
        "11c: the gap ends where delivery resumed"
    );
    assert!(
        !f.join(format!("{OUT}.gaps")).exists(),
        "11c: the file listener, which had read the file, reported a gap"
    );
    Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0).assert_exact("11c (file listener)");
    let t = Tally::count(&w, entry_text(&kit).as_bytes(), lost);
    t.assert_exact("11c (testkit listener)");
    t.report(
        "11c",
        "rotate 0 deletes the unread file of a listener that is down (on_gap = \"report\")",
        &format!("one gap, exactly the {lost} unread records of the deleted file; everything after it delivered once"),
    );
}

#[test]
fn s11d_rotate_three_deletes_the_unread_file_report() {
    let f = Fixture::new();
    f.write(
        "cfg.toml",
        two_listeners("on_gap = \"report\"", "retry_max = \"200ms\""),
    );
    let (mut d, mut w) = up_then_down(&f, Daemon::start);
    let at = w.ledger().len() as u64;
    // The fourth run deletes the file the listener that is down is in; it
    // is back up before it next looks.
    let flag = f.join("flag");
    let lost = rotate_three(&f, &mut w, 4, d.pid(), || fs::write(&flag, "").unwrap());
    assert_eq!(
        lost, BETWEEN,
        "11d: records of the deleted file the listener had not taken"
    );
    let kit = f.join(KIT);
    let want = w.expected().len() - (bytes_of(BETWEEN + lost) - bytes_of(BETWEEN));
    wait_until(
        30,
        "the listener to deliver what is left",
        || entry_text(&kit).len() >= want,
        || d.log_tail(),
    );
    wait_output(&f, &mut d, &w.expected(), "11d: the file listener");
    d.term();
    let ev = events(&kit);
    let gaps: Vec<&Value> = ev.iter().filter(|e| kind(e) == "gap").collect();
    assert_eq!(gaps.len(), 1, "11d: gaps {gaps:?}");
    let g = gaps[0];
    assert_eq!(
        (
            &g["from"]["sequence"],
            &g["from"]["offset"],
            g["cause"].as_str()
        ),
        (&1.into(), &at.into(), Some("deleted")),
        "{g}"
    );
    assert_eq!(
        (&g["to"]["sequence"], &g["to"]["offset"]),
        (&2.into(), &0.into()),
        "11d: the gap ends at the next file: {g}"
    );
    let next = ev
        .iter()
        .skip_while(|e| kind(e) != "gap")
        .find(|e| kind(e) == "entry")
        .expect("entries after the gap");
    assert_eq!(
        (&next["sequence"], &next["offset"]),
        (&g["to"]["sequence"], &g["to"]["offset"]),
        "11d: the gap ends where delivery resumed"
    );
    assert!(
        !f.join(format!("{OUT}.gaps")).exists(),
        "11d: the file listener, which had read the file, reported a gap"
    );
    Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0).assert_exact("11d (file listener)");
    // Everything still in a file once, in order: the rotated files left
    // were not skipped for the live file.
    let t = Tally::count(&w, entry_text(&kit).as_bytes(), lost);
    t.assert_exact("11d (testkit listener)");
    t.report(
        "11d",
        "rotate 3 deletes the unread file of a listener that is down (on_gap = \"report\")",
        &format!("one gap, exactly the {lost} unread records of the deleted file; the three rotated files left and the live file delivered once"),
    );
}

#[test]
fn s11e_a_listener_at_the_start_of_a_file_compressed_and_rotated_while_down() {
    let f = Fixture::new();
    f.write("cfg.toml", two_listeners("", "retry_max = \"200ms\""));
    // Down from the start: its cursor is the start of the live file, empty
    // then, and it acknowledges nothing of it.
    let mut w = Writer::new(&f.join(live(Kind::Lines)), Kind::Lines);
    let d = host::Daemon::start(&f);
    write_refused(&f, &mut w);
    let expected = w.expected();
    wait_until(
        30,
        "the file listener to deliver the first file",
        || fs::read(f.join(OUT)).unwrap_or_default() == expected,
        || d.log(),
    );
    let (st, log) = d.stop();
    assert!(st.success(), "11e: the daemon did not stop cleanly:\n{log}");
    // While it is down, three runs of logrotate: the listener's file is
    // `app.log.3.gz`, two newer rotated files after it.
    let rotations = 3;
    for _ in 0..rotations {
        logrotate(&f, "    compress\n    create");
        w.reopen();
        w.write(BETWEEN);
    }
    let files = listing(&f, Kind::Lines);
    assert!(files.iter().any(|n| n == "app.log.3.gz"), "11e: {files:?}");
    f.write("flag", "");
    let d = host::Daemon::start(&f);
    let kit = f.join(KIT);
    let last = String::from_utf8_lossy(&Writer::record(Kind::Lines, w.count() - 1)).into_owned();
    wait_until(
        30,
        "the listener to deliver the last record written",
        || entry_text(&kit).ends_with(&last),
        || d.log(),
    );
    let expected = w.expected();
    wait_until(
        30,
        "the file listener to catch up",
        || fs::read(f.join(OUT)).unwrap_or_default().len() >= expected.len(),
        || d.log(),
    );
    let (_, log) = d.stop();
    Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0).assert_exact("11e (file listener)");
    let t = Tally::count(&w, entry_text(&kit).as_bytes(), 0);
    assert!(
        t.silently_lost == 0,
        "11e: the listener resumed past its file; log:\n{log}"
    );
    t.assert_exact("11e (testkit listener)");
    t.report(
        "11e",
        "a listener that acknowledged nothing of a file, compressed and rotated 3 times while the daemon was down",
        &format!("its cursor at offset 0 proven by the file's first bytes once written: resumed in app.log.3.gz, then the {} newer files (the live one too), each record once", rotations),
    );
}

/// The bytes of the first `n` records.
fn bytes_of(n: u64) -> usize {
    (0..n).map(|i| Writer::record(Kind::Lines, i).len()).sum()
}
