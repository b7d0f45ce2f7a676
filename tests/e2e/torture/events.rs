//! Scenarios 12 and 17: lost or missing file events, clock jumps and mtime changes without data.
//!
//! File events only make the daemon prompt; what it delivers is decided by
//! content. These scenarios take the events away or lie to it with time,
//! and count the output record by record as every scenario does.
//!
//! - 12a: the kernel's inotify queue overflows. The watched directory is
//!   flooded with more events than `fs.inotify.max_queued_events` (files
//!   created and deleted beside the journal) while a writer appends and the
//!   real `logrotate` rotates: once beside the running daemon, then with
//!   the daemon frozen (SIGSTOP) so that the queue must overflow, with
//!   writes and a rotation after the overflow whose events the kernel
//!   drops. `reconcile_every` is ten minutes here, so no periodic check
//!   can hide a lost event; the daemon wakes every journal on the
//!   overflow notice and logs it, and the test waits for that line after
//!   each flood (before the next one, which would otherwise find the
//!   queue still full and add no overflow of its own).
//! - 12b: no file events at all (`watch = "poll"`, as for NFS or a host
//!   out of inotify instances, where the daemon falls back to the same
//!   polling by itself): the rotation scenario with `logrotate` (create
//!   and copytruncate, in turn) found by the `reconcile_every` check alone.
//! - 17a: `touch` moves the mtime of the live and the rotated files (an
//!   hour forward, an hour back, the year 2100, the epoch) with no new
//!   data, while the daemon runs and while it is stopped (then it looks for
//!   its place among files of odd dates): nothing is redelivered or
//!   skipped, and the listener hears `no_data` every `quiet_after`.
//! - 17b: the daemon's wall clock jumps an hour back, a day forward, back
//!   again, each just before a rotation, then a day back in a quiet spell
//!   (libfaketime, `FAKETIME_TIMESTAMP_FILE` rewritten by the test, read at
//!   every call with `FAKETIME_NO_CACHE=1`; the daemon's own log lines show
//!   each jump). Only the wall clock is faked, as a system clock step does:
//!   `CLOCK_MONOTONIC` stays (libfaketime faking it too would break the
//!   daemon's timed waits, see `outage.rs`). Every entry once, and the
//!   quiet timer keeps its period: four `no_data` calls take three
//!   periods, never a burst, never a stall.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::tally::{scale, Tally};
use crate::fixture::Fixture;
use crate::host::{entry_text, events, kind, kit_listener, wait_until};
use crate::rotation::harness::{
    config, listing, live, logrotate, run_tool, wait_output, Daemon, LOG, OUT,
};
use crate::writer::{Kind, Pump, Writer};

/// Time between two records of the writer thread.
const PACE: Duration = Duration::from_micros(500);
/// Records written between two rotations.
const BETWEEN: u64 = 60;

/// The kernel's bound on queued inotify events per instance.
fn max_queued_events() -> u64 {
    fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16384)
}

/// Creates and deletes `n` small files in `dir`: five events each
/// (create, open, modify, close, delete).
fn flood(dir: &Path, n: u64) {
    for i in 0..n {
        let p = dir.join(format!("flood-{i}"));
        fs::write(&p, b"x").unwrap_or_else(|e| panic!("creating {}: {e}", p.display()));
        fs::remove_file(&p).unwrap();
    }
}

/// logrotate directives: the same in every run, since runs with and
/// without `compress` would take each other's names. `delaycompress`:
/// the file just renamed stays plain until the next run.
const COMPRESS: &str = "    create\n    compress\n    delaycompress";

/// What the daemon logs when the kernel's event queue overflowed.
const OVERFLOW: &str = "the kernel's event queue overflowed";

fn daemon_log(f: &Fixture) -> String {
    fs::read_to_string(f.join(LOG)).unwrap_or_default()
}

#[test]
fn s12a_inotify_queue_overflow_during_rotations() {
    let kind = Kind::Lines;
    let f = Fixture::new();
    let w = Writer::new(&f.join(live(kind)), kind);
    f.write(
        "cfg.toml",
        config(kind, "", "fsync = false")
            .replace("reconcile_every = \"200ms\"", "reconcile_every = \"10m\""),
    );
    let dir = f.join(live(kind)).parent().unwrap().to_path_buf();
    // Five events a file (create, open, modify, close, delete): half as
    // many files as the queue holds events overflows it.
    let files = max_queued_events() / 2;
    let mut d = Daemon::start(&f);

    // Beside the running daemon: the flood on its own thread, the writer on
    // another, logrotate between.
    let pump = Pump::start(w, PACE);
    let flooder = {
        let dir = dir.clone();
        std::thread::spawn(move || flood(&dir, files))
    };
    let live_rotations = 3;
    for _ in 0..live_rotations {
        pump.wait_more(BETWEEN);
        let mut w = pump.lock();
        logrotate(&f, COMPRESS);
        w.reopen();
    }
    flooder.join().expect("flood thread");
    pump.wait_more(BETWEEN);
    let mut w = pump.stop();
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        "12a: after rotations beside a flood of events",
    );

    // Frozen: the queue overflows for certain, then the writes and a
    // rotation whose events the kernel drops.
    let rounds = scale(2, 10);
    for r in 0..rounds {
        d.freeze();
        flood(&dir, files);
        w.write(BETWEEN);
        logrotate(&f, COMPRESS);
        w.reopen();
        w.write(BETWEEN);
        d.thaw();
        let overflows = || daemon_log(&f).matches(OVERFLOW).count();
        wait_until(
            30,
            &format!("overflow notice {}", r + 1),
            || overflows() > r,
            || d.log_tail(),
        );
        wait_output(
            &f,
            &mut d,
            &w.expected(),
            &format!(
                "12a: after overflow {} (files: {:?})",
                r + 1,
                listing(&f, kind)
            ),
        );
    }
    d.term();
    let overflows = daemon_log(&f).matches(OVERFLOW).count();
    assert!(
        overflows >= rounds,
        "12a: {rounds} floods while frozen, {overflows} overflows logged; log:\n{}",
        d.log_tail()
    );
    let t = Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0);
    t.assert_exact("12a");
    t.report(
        "12a",
        "inotify queue overflow during logrotate (create, delaycompress)",
        &format!(
            "{} rotations, {overflows} queue overflows logged (floods of {files} files created and deleted, max_queued_events {}); reconcile_every 10m, no periodic check to hide a lost event",
            live_rotations + rounds,
            max_queued_events()
        ),
    );
}

#[test]
fn s12b_no_file_events_polling_only() {
    let kind = Kind::Lines;
    let f = Fixture::new();
    let w = Writer::new(&f.join(live(kind)), kind);
    f.write(
        "cfg.toml",
        format!("watch = \"poll\"\n{}", config(kind, "", "fsync = false")),
    );
    let mut d = Daemon::start(&f);
    let pump = Pump::start(w, PACE);
    let rotations = scale(6, 30);
    for n in 0..rotations {
        pump.wait_more(BETWEEN);
        match n % 2 {
            // The application writes on to the renamed file until told to reopen.
            0 => {
                logrotate(&f, "    create");
                pump.wait_more(5);
                pump.lock().reopen();
            }
            // Writes wait while logrotate copies and truncates.
            _ => {
                let _w = pump.lock();
                logrotate(&f, "    copytruncate");
            }
        }
    }
    pump.wait_more(BETWEEN);
    let w = pump.stop();
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        &format!(
            "12b: after {rotations} rotations with polling only (files: {:?})",
            listing(&f, kind)
        ),
    );
    d.term();
    let log = daemon_log(&f);
    assert!(
        log.contains("watch = \"poll\": no file events"),
        "12b: the daemon did not say it polls; log:\n{}",
        d.log_tail()
    );
    let t = Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0);
    t.assert_exact("12b");
    t.report(
        "12b",
        "no file events (watch = \"poll\"): logrotate create and copytruncate",
        &format!("{rotations} rotations found by the 200 ms reconcile_every check alone"),
    );
}

// ---------------------------------------------------------------------------
// 17: mtimes and the wall clock change, the data does not.

/// libfaketime, for the daemon's wall clock.
const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The no_data calls the testkit listener recorded: `had_data` of each.
fn no_data(kit: &Path) -> Vec<bool> {
    events(kit)
        .iter()
        .filter(|e| kind(e) == "no_data")
        .map(|e| e["had_data"].as_bool().unwrap())
        .collect()
}

/// Waits for four more `no_data` calls and returns how long they took:
/// with `quiet_after = "200ms"` three periods apart, so at least 400 ms
/// even when the first call is seen late, or the last early, by up to a
/// period (a loaded machine); never a burst, never a stall.
fn quiet_periods(kit: &Path, d: &Daemon) -> Duration {
    let n = no_data(kit).len();
    let t = std::time::Instant::now();
    wait_until(
        30,
        "four more no_data calls",
        || no_data(kit).len() >= n + 4,
        || d.log_tail(),
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "four no_data calls in {took:?} with quiet_after = 200ms: {:?}",
        no_data(kit)
    );
    took
}

/// After the last entry, the listener heard `no_data(true)` once, then
/// only `no_data(false)`.
fn assert_quiet_after_last_entry(kit: &Path) {
    let ev = events(kit);
    let last = ev
        .iter()
        .rposition(|e| kind(e) == "entry")
        .expect("entries");
    let after: Vec<bool> = ev[last..]
        .iter()
        .filter(|e| kind(e) == "no_data")
        .map(|e| e["had_data"].as_bool().unwrap())
        .collect();
    assert!(
        after.first() == Some(&true) && after[1..].iter().all(|h| !h),
        "no_data after the last entry: {after:?}"
    );
}

/// A lines journal copied by the `file` listener and recorded by the
/// testkit listener (for its `no_data` calls and a second count).
fn quiet_setup() -> (Fixture, Writer) {
    let f = Fixture::new();
    let w = Writer::new(&f.join(live(Kind::Lines)), Kind::Lines);
    f.write(
        "cfg.toml",
        format!(
            "{}{}",
            config(Kind::Lines, "", "fsync = false"),
            kit_listener("kit", "", "")
        ),
    );
    (f, w)
}

#[test]
fn s17a_mtime_changes_without_data() {
    let (f, mut w) = quiet_setup();
    let kit = f.join("out/kit.jsonl");
    let mut d = Daemon::start(&f);
    for _ in 0..3 {
        w.write(BETWEEN);
        logrotate(&f, "    create");
        w.reopen();
    }
    w.write(BETWEEN);
    wait_output(&f, &mut d, &w.expected(), "17a: before the touches");
    let dir = f.join("logs");
    let files = || {
        let mut v: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    // Forward, back, far future, the epoch: live and rotated files, no data.
    let stamps = ["1 hour", "1 hour ago", "2100-01-01 00:00", "@0"];
    for stamp in stamps {
        for p in files() {
            run_tool("touch", &["-d", stamp], &p);
        }
        quiet_periods(&kit, &d);
        w.write(1);
        wait_output(
            &f,
            &mut d,
            &w.expected(),
            &format!("17a: after touching every file to {stamp:?}"),
        );
    }
    // And while the daemon is stopped, with a rotation: it looks for its
    // place by content among files dated anywhere.
    d.term();
    for (p, stamp) in files().iter().zip(stamps.iter().cycle()) {
        run_tool("touch", &["-d", stamp], p);
    }
    w.write(BETWEEN);
    logrotate(&f, "    create");
    w.reopen();
    run_tool("touch", &["-d", "@0"], &dir.join("app.log.1"));
    w.write(BETWEEN);
    let mut d = Daemon::start(&f);
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        "17a: after a restart among files of odd dates",
    );
    quiet_periods(&kit, &d);
    d.term();
    assert_quiet_after_last_entry(&kit);
    let t = Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0);
    t.assert_exact("17a (file listener)");
    Tally::count(&w, entry_text(&kit).as_bytes(), 0).assert_exact("17a (testkit listener)");
    t.report(
        "17a",
        "mtimes moved (an hour either way, 2100, the epoch) without data, live and after a restart",
        &format!(
            "{} files touched {} times; nothing redelivered; no_data every quiet_after",
            files().len(),
            stamps.len() + 1
        ),
    );
}

#[test]
fn s17b_wall_clock_jumps() {
    assert!(
        Path::new(FAKETIME_LIB).exists(),
        "{FAKETIME_LIB} is missing: run scripts/deps.sh (package libfaketime)"
    );
    let (f, w) = quiet_setup();
    let kit = f.join("out/kit.jsonl");
    // Only the wall clock is faked: a jump of the system clock leaves
    // CLOCK_MONOTONIC alone, and faking it would break the daemon's timed
    // waits (see torture/outage.rs).
    let stamp = f.write("faketime", "+0\n");
    let stamp_s = stamp.display().to_string();
    let env = [
        ("LD_PRELOAD", FAKETIME_LIB),
        ("FAKETIME_TIMESTAMP_FILE", stamp_s.as_str()),
        ("FAKETIME_NO_CACHE", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    let mut d = Daemon::start_with_env(&f, &env);
    let mut w = w;
    // (offset from real time, seconds) in turn: each set between two
    // writes, just before a rotation, then a quiet spell.
    let jumps: [i64; 4] = [-3600, 86_400, -3600, 0];
    let mut seen = Vec::new();
    for off in jumps {
        w.write(BETWEEN);
        fs::write(&stamp, format!("{off:+}\n")).unwrap();
        logrotate(&f, "    create");
        w.reopen();
        w.write(BETWEEN);
        wait_output(
            &f,
            &mut d,
            &w.expected(),
            &format!("17b: after the jump to {off:+} s"),
        );
        // The daemon logged the new file with its own wall clock: it shows the jump.
        let want = real_now() + off;
        wait_until(
            30,
            &format!("the daemon's clock at {off:+} s"),
            || last_log_time(&f).is_some_and(|t| (t - want).abs() < 600),
            || d.log_tail(),
        );
        seen.push((last_log_time(&f).unwrap() - real_now() + 30).div_euclid(60) * 60);
        quiet_periods(&kit, &d);
    }
    // A jump in the middle of a quiet spell.
    fs::write(&stamp, "-86400\n").unwrap();
    let took = quiet_periods(&kit, &d);
    d.term();
    assert_quiet_after_last_entry(&kit);
    let t = Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0);
    t.assert_exact("17b (file listener)");
    Tally::count(&w, entry_text(&kit).as_bytes(), 0).assert_exact("17b (testkit listener)");
    t.report(
        "17b",
        "wall clock jumps (an hour back, a day forward, back, a day back) across rotations and a quiet spell (libfaketime)",
        &format!("daemon clock seen at {seen:?} s from real time, then a day back while quiet: four no_data calls (200 ms apart) took {} ms", took.as_millis()),
    );
}

/// Real time, seconds since the epoch.
fn real_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The time stamp of the daemon's last log line (its wall clock).
fn last_log_time(f: &Fixture) -> Option<i64> {
    let log = daemon_log(f);
    let line = log
        .lines()
        .rev()
        .find(|l| l.len() > 20 && l.as_bytes()[4] == b'-' && l.as_bytes()[10] == b'T')?;
    parse_utc(&line[..19])
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) in seconds since the epoch.
fn parse_utc(s: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[test]
fn parse_utc_reads_log_time_stamps() {
    assert_eq!(parse_utc("1970-01-01T00:00:00"), Some(0));
    assert_eq!(parse_utc("2026-11-21T15:08:02"), Some(1_795_273_682));
    assert_eq!(parse_utc("2000-03-01T00:00:00"), Some(951_868_800));
}
