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

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::tally::{scale, Tally};
use crate::fixture::Fixture;
use crate::host::wait_until;
use crate::rotation::harness::{config, listing, live, logrotate, wait_output, Daemon, LOG, OUT};
use crate::writer::{Kind, Pump, Writer};

/// Time between two records of the writer thread.
const PACE: Duration = Duration::from_micros(500);
/// Records written between two rotations.
const BETWEEN: u64 = 60;

/// The kernel's bound on queued inotify events per instance.
fn max_queued_events() -> u64 {
    fs::read_to_string("/proc/sys/fs/inotify/max_queued_events").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(16384)
}

/// Creates and deletes `n` small files in `dir`: three events or more each
/// (create, modify, close, delete).
fn flood(dir: &Path, n: u64) {
    for i in 0..n {
        let p = dir.join(format!("flood-{i}"));
        fs::write(&p, b"x").unwrap_or_else(|e| panic!("creating {}: {e}", p.display()));
        fs::remove_file(&p).unwrap();
    }
}

/// logrotate directives: the same in every run, since runs with and
/// without `compress` would take each other's names.
const COMPRESS: &str = "    create\n    compress";

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
    f.write("cfg.toml", config(kind, "", "fsync = false").replace("reconcile_every = \"200ms\"", "reconcile_every = \"10m\""));
    let dir = f.join(live(kind)).parent().unwrap().to_path_buf();
    // Three events a file or more: three times the queue's bound.
    let files = max_queued_events();
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
        // Compressed at once: the application reopens before logrotate returns.
        let mut w = pump.lock();
        logrotate(&f, COMPRESS);
        w.reopen();
    }
    flooder.join().expect("flood thread");
    pump.wait_more(BETWEEN);
    let mut w = pump.stop();
    wait_output(&f, &mut d, &w.expected(), "12a: after rotations beside a flood of events");

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
        wait_until(30, &format!("overflow notice {}", r + 1), || overflows() > r as usize, || d.log_tail());
        wait_output(&f, &mut d, &w.expected(), &format!("12a: after overflow {} (files: {:?})", r + 1, listing(&f, kind)));
    }
    d.term();
    let overflows = daemon_log(&f).matches(OVERFLOW).count();
    assert!(overflows >= rounds, "12a: {rounds} floods while frozen, {overflows} overflows logged; log:\n{}", d.log_tail());
    let t = Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0);
    t.assert_exact("12a");
    t.report(
        "12a",
        "inotify queue overflow during logrotate create + compress",
        &format!(
            "{} rotations, {overflows} queue overflows logged (floods of {files} files created and deleted, max_queued_events {files}); reconcile_every 10m, no periodic check to hide a lost event",
            live_rotations + rounds
        ),
    );
}

#[test]
fn s12b_no_file_events_polling_only() {
    let kind = Kind::Lines;
    let f = Fixture::new();
    let w = Writer::new(&f.join(live(kind)), kind);
    f.write("cfg.toml", format!("watch = \"poll\"\n{}", config(kind, "", "fsync = false")));
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
    wait_output(&f, &mut d, &w.expected(), &format!("12b: after {rotations} rotations with polling only (files: {:?})", listing(&f, kind)));
    d.term();
    let log = daemon_log(&f);
    assert!(log.contains("watch = \"poll\": no file events"), "12b: the daemon did not say it polls; log:\n{}", d.log_tail());
    let t = Tally::count(&w, &fs::read(f.join(OUT)).unwrap(), 0);
    t.assert_exact("12b");
    t.report(
        "12b",
        "no file events (watch = \"poll\"): logrotate create and copytruncate",
        &format!("{rotations} rotations found by the 200 ms reconcile_every check alone"),
    );
}
