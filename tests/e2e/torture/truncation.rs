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

mod copytruncate;
mod in_place;
mod no_append;

use std::fs;
use std::time::{Duration, Instant};

use crate::fixture::Fixture;
use crate::rotation::harness::{Daemon, LOG, OUT};

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
