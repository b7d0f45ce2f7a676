//! Rotation end to end: the real daemon follows a journal while a writer
//! thread appends to it and the test rotates it — p4 renames (plain and
//! gzipped), legacy copy-then-truncate, and the real `logrotate` with
//! `create`, `copytruncate`, `compress`, `delaycompress` and `dateext`,
//! live and while the daemon is stopped. Each test ends when the raw output
//! of the `file` listener has the length of the writer's ledger, checks it
//! byte for byte (every entry exactly once, in order), and stops the daemon
//! with SIGTERM, which must exit 0.

pub mod harness;
mod window;

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::fixture::Fixture;
use crate::writer::{Kind, Pump, Writer};
use harness::{listing, live, logrotate, run_tool, wait_output, Daemon};

/// Time between two records of the writer thread.
const PACE: Duration = Duration::from_micros(500);
/// Records written between two rotations.
const BETWEEN: u64 = 60;

/// A fixture with the live file created and the config written.
fn setup(kind: Kind, journal_extra: &str) -> (Fixture, Writer) {
    harness::setup(kind, journal_extra, "fsync = false")
}

/// `p4root/journal.N`.
fn numbered(f: &Fixture, n: u64) -> PathBuf {
    f.join(format!("{}.{n}", live(Kind::P4)))
}

/// p4d's own rotation: rename the journal to `journal.N` and start a new
/// one, with no write in between.
pub fn p4_rename(f: &Fixture, w: &mut Writer, n: u64) {
    fs::rename(w.path(), numbered(f, n)).unwrap();
    w.reopen();
}

/// The legacy rotation: copy the journal to `journal.N`, then truncate it
/// in place (the writer's `O_APPEND` descriptor goes on at offset 0).
pub fn copy_truncate(f: &Fixture, w: &mut Writer, n: u64) {
    fs::copy(w.path(), numbered(f, n)).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(w.path())
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// Writes, rotates `rotations` times with `rotate` while the daemon runs,
/// writes on, then checks the output and stops the daemon.
fn live_rotations(
    kind: Kind,
    journal_extra: &str,
    rotations: u64,
    mut rotate: impl FnMut(&Fixture, &Pump, u64),
) {
    let (f, w) = setup(kind, journal_extra);
    let mut d = Daemon::start(&f);
    let pump = Pump::start(w, PACE);
    for n in 1..=rotations {
        pump.wait_more(BETWEEN);
        rotate(&f, &pump, n);
    }
    pump.wait_more(BETWEEN);
    let w = pump.stop();
    let files = listing(&f, kind);
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        &format!("after {rotations} rotations (files: {files:?})"),
    );
    d.term();
}

#[test]
fn p4_rename_while_writing() {
    live_rotations(Kind::P4, "", 4, |f, pump, n| {
        let mut w = pump.lock();
        p4_rename(f, &mut w, n);
    });
}

#[test]
fn p4_rename_then_gzip_while_writing() {
    live_rotations(Kind::P4, "", 4, |f, pump, n| {
        p4_rename(f, &mut pump.lock(), n);
        // Compressed while the daemon may still be reading it.
        run_tool("gzip", &[], &numbered(f, n));
        assert!(!numbered(f, n).exists() && f.join(format!("p4root/journal.{n}.gz")).exists());
    });
}

#[test]
fn p4_copy_then_truncate_while_writing() {
    live_rotations(Kind::P4, "", 4, |f, pump, n| {
        let mut w = pump.lock();
        copy_truncate(f, &mut w, n);
    });
}

#[test]
fn logrotate_create_while_writing() {
    // The application goes on writing to the renamed file until it is told
    // to reopen (postrotate), as a real one does.
    live_rotations(Kind::Lines, "", 4, |f, pump, _| {
        logrotate(f, "    create");
        pump.wait_more(5);
        pump.lock().reopen();
    });
}

#[test]
fn logrotate_copytruncate_with_writes_paused_while_writing() {
    // Writes wait while logrotate copies and truncates: the window is empty.
    live_rotations(Kind::Lines, "", 4, |f, pump, _| {
        let _w = pump.lock();
        logrotate(f, "    copytruncate");
    });
}

#[test]
fn logrotate_compress_while_writing() {
    // Without delaycompress the rotated file is compressed at once, so the
    // application must reopen before logrotate returns.
    live_rotations(Kind::Lines, "", 4, |f, pump, _| {
        let mut w = pump.lock();
        logrotate(f, "    create\n    compress");
        w.reopen();
        assert!(
            f.join("logs/app.log.1.gz").exists(),
            "{:?}",
            listing(f, Kind::Lines)
        );
    });
}

#[test]
fn logrotate_delaycompress_while_writing() {
    // app.log.1 stays plain (and is still written to until the reopen),
    // older ones become app.log.2.gz, app.log.3.gz…
    live_rotations(Kind::Lines, "", 4, |f, pump, n| {
        logrotate(f, "    create\n    compress\n    delaycompress");
        pump.wait_more(5);
        pump.lock().reopen();
        if n >= 2 {
            assert!(
                f.join("logs/app.log.1").exists() && f.join("logs/app.log.2.gz").exists(),
                "{:?}",
                listing(f, Kind::Lines)
            );
        }
    });
}

#[test]
fn logrotate_dateext_while_writing() {
    // One rotated name per second: each rotation waits until well into the
    // next second. logrotate reads the time with time(2), which the C
    // library serves from the coarse clock: it can lag the precise clock by
    // a few milliseconds, so a rotation right at the second boundary could
    // still see the previous second and find its name taken.
    live_rotations(Kind::Lines, "", 2, |f, pump, _| {
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
        };
        let next = Duration::from_secs(now().as_secs() + 1) + Duration::from_millis(100);
        while now() < next {
            std::thread::sleep(Duration::from_millis(5));
        }
        logrotate(f, "    create\n    dateext\n    dateformat -%Y%m%d-%s");
        pump.wait_more(5);
        pump.lock().reopen();
    });
}

#[test]
fn p4_two_renames_while_stopped() {
    let (f, w) = setup(Kind::P4, "");
    let mut d = Daemon::start(&f);
    let pump = Pump::start(w, PACE);
    pump.wait_more(BETWEEN);
    p4_rename(&f, &mut pump.lock(), 1);
    pump.wait_more(BETWEEN);
    d.term();
    pump.wait_more(BETWEEN);
    p4_rename(&f, &mut pump.lock(), 2);
    pump.wait_more(BETWEEN);
    p4_rename(&f, &mut pump.lock(), 3);
    pump.wait_more(BETWEEN);
    let mut d = Daemon::start(&f);
    pump.wait_more(BETWEEN);
    let w = pump.stop();
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        "two renames while the daemon was stopped",
    );
    d.term();
}

#[test]
fn logrotate_twice_while_stopped() {
    let (f, w) = setup(Kind::Lines, "");
    let mut d = Daemon::start(&f);
    let pump = Pump::start(w, PACE);
    pump.wait_more(BETWEEN);
    d.term();
    for _ in 0..2 {
        pump.wait_more(BETWEEN);
        let mut w = pump.lock();
        logrotate(&f, "    create");
        w.reopen();
    }
    let mut d = Daemon::start(&f);
    pump.wait_more(BETWEEN);
    let w = pump.stop();
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        "two logrotate runs while the daemon was stopped",
    );
    d.term();
}

#[test]
fn rotation_and_compression_while_stopped() {
    // Lines: logrotate compresses at once (app.log.1.gz, then app.log.2.gz).
    let (f, w) = setup(Kind::Lines, "");
    let mut d = Daemon::start(&f);
    let pump = Pump::start(w, PACE);
    pump.wait_more(BETWEEN);
    d.term();
    for _ in 0..2 {
        pump.wait_more(BETWEEN);
        let mut w = pump.lock();
        logrotate(&f, "    create\n    compress");
        w.reopen();
    }
    assert!(
        f.join("logs/app.log.2.gz").exists(),
        "{:?}",
        listing(&f, Kind::Lines)
    );
    let mut d = Daemon::start(&f);
    pump.wait_more(BETWEEN);
    let w = pump.stop();
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        "logrotate compress twice while the daemon was stopped",
    );
    d.term();
}

#[test]
fn p4_rename_and_compress_while_stopped() {
    // p4: renamed journals compressed with xz and zstd while stopped.
    let (f, w) = setup(Kind::P4, "");
    let mut d = Daemon::start(&f);
    let pump = Pump::start(w, PACE);
    pump.wait_more(BETWEEN);
    d.term();
    pump.wait_more(BETWEEN);
    p4_rename(&f, &mut pump.lock(), 1);
    run_tool("xz", &[], &numbered(&f, 1));
    pump.wait_more(BETWEEN);
    p4_rename(&f, &mut pump.lock(), 2);
    run_tool("zstd", &["-q", "--rm"], &numbered(&f, 2));
    let mut d = Daemon::start(&f);
    pump.wait_more(BETWEEN);
    let w = pump.stop();
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        &format!(
            "p4 renames compressed while stopped (files: {:?})",
            listing(&f, Kind::P4)
        ),
    );
    d.term();
}

#[test]
fn sigkill_before_the_first_checkpoint_save_then_rename_resumes_at_the_start() {
    // The periodic checkpoint save comes a second after start; a daemon
    // killed sooner must still resume where it started, in the file that
    // has been renamed since, not at the start of the new live file.
    let (f, mut w) = setup(Kind::P4, "");
    w.write(20);
    let mut d = Daemon::start(&f);
    w.write(30);
    wait_output(&f, &mut d, &w.expected(), "before the kill");
    d.kill();
    w.write(30);
    p4_rename(&f, &mut w, 1);
    w.write(30);
    let mut d = Daemon::start(&f);
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        "after a kill before the first checkpoint save and a rename",
    );
    d.term();
}

/// A rename with writes to the new journal, then silence: the follower
/// watches the renamed file for late writes (`late_writes`, 2 s), and no
/// file event comes after the last write. It must finish the renamed file
/// and deliver the new journal's records when the watch ends, not at the
/// next periodic check (10 minutes here; with file events seen, 10 s by
/// default) nor thanks to a listener's periodic `no_data` (the `file`
/// listener takes none).
#[test]
fn a_rename_then_silence_is_read_on_when_the_late_writes_watch_ends() {
    let (f, mut w) = setup(Kind::P4, "");
    f.write(
        "cfg.toml",
        harness::config(Kind::P4, "", "fsync = false")
            .replace("reconcile_every = \"200ms\"", "reconcile_every = \"10m\""),
    );
    w.write(20);
    let mut d = Daemon::start(&f);
    wait_output(&f, &mut d, &w.expected(), "before the rename");
    p4_rename(&f, &mut w, 1);
    w.write(15);
    wait_output(
        &f,
        &mut d,
        &w.expected(),
        "the new journal after a rename and silence",
    );
    d.term();
}
