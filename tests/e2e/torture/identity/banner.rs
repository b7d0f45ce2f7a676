//! Scenario 8: identical first lines. Every generation starts with the
//! same banner (short, and longer than the 4 KiB head window), rotated by
//! the real `logrotate` while the daemon runs and while it is stopped,
//! compressed and not, or with the checkpoint at the banner alone.

use super::{clock_past_checkpoint, output, setup, Banner, KIND};
use crate::fixture::Fixture;
use crate::rotation::harness::{listing, live, logrotate, wait_output, Daemon};
use crate::torture::tally::{scale, Tally};
use crate::writer::{Pump, Writer};

// ------------------------------------------------- 8: identical first lines

/// Time between two records of the writer thread.
const PACE: std::time::Duration = std::time::Duration::from_micros(500);

/// The writer's rotation step while it holds its lock: logrotate, reopen,
/// the banner first in the new file.
fn rotate_with_banner(f: &Fixture, w: &mut Writer, b: &mut Banner, directives: &str) {
    logrotate(f, directives);
    w.reopen();
    b.put(w);
}

/// 8a, 8b: rotations with `directives` while the daemon runs, then while
/// it is stopped, every file starting with the same `lines`-line banner.
fn banner_rotations(id: &str, lines: usize, directives: &str) {
    let f = setup("");
    let mut b = Banner::new(lines);
    let w = Writer::new(&f.join(live(KIND)), KIND);
    b.put(&w);
    let between = scale(40, 2000);
    let mut d = Daemon::start(&f);
    let pump = Pump::start(w, PACE);
    for _ in 0..scale(3, 20) {
        pump.wait_more(between);
        rotate_with_banner(&f, &mut pump.lock(), &mut b, directives);
    }
    pump.wait_more(between);
    d.term();
    for _ in 0..2 {
        pump.wait_more(between);
        rotate_with_banner(&f, &mut pump.lock(), &mut b, directives);
    }
    let mut d = Daemon::start(&f);
    pump.wait_more(between);
    let w = pump.stop();
    let files = listing(&f, KIND);
    wait_output(
        &f,
        &mut d,
        &b.expected(&w),
        &format!("banner rotations (files: {files:?})"),
    );
    d.term();
    let t = Tally::count(&w, &b.strip(&w, &output(&f)), 0);
    t.assert_exact(id);
    let n = b.at.len();
    t.report(
        id,
        &format!(
            "identical first lines: {} B banner, logrotate {}",
            b.text.len(),
            directives.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
        &format!("{n} generations, each banner delivered once where written"),
    );
}

#[test]
fn s08a_identical_banner_rotated_running_and_stopped() {
    banner_rotations("8a", 2, "    create\n    compress\n    delaycompress");
}

#[test]
fn s08b_banner_longer_than_the_head_window() {
    banner_rotations("8b", 60, "    create\n    compress");
}

/// 8c, 8d: the daemon stops having read only the banner of a new file:
/// its checkpoint proves nothing but the banner. While stopped, that file
/// gets records and is rotated, and the next one too: two rotated files
/// and the live one all hold the checkpoint's bytes.
fn stopped_at_the_banner(id: &str, lines: usize, directives: &str) {
    let f = setup("");
    let mut b = Banner::new(lines);
    let mut w = Writer::new(&f.join(live(KIND)), KIND);
    b.put(&w);
    w.write(20);
    let mut d = Daemon::start(&f);
    wait_output(&f, &mut d, &b.expected(&w), "the first file");
    rotate_with_banner(&f, &mut w, &mut b, directives);
    wait_output(&f, &mut d, &b.expected(&w), "the banner of the second file");
    d.term();
    clock_past_checkpoint(&f);
    for _ in 0..2 {
        w.write(10);
        rotate_with_banner(&f, &mut w, &mut b, directives);
    }
    w.write(10);
    let mut d = Daemon::start(&f);
    let files = listing(&f, KIND);
    wait_output(
        &f,
        &mut d,
        &b.expected(&w),
        &format!("restart at a banner (files: {files:?})"),
    );
    d.term();
    let t = Tally::count(&w, &b.strip(&w, &output(&f)), 0);
    t.assert_exact(id);
    let how = if directives.contains("compress") {
        "compressed"
    } else {
        "plain"
    };
    t.report(id, &format!("identical first lines: checkpoint at the end of a {} B banner, 2 rotations while stopped, {how}", b.text.len()), "three files hold the checkpoint's bytes; each read once from the right place");
}

#[test]
fn s08c_checkpoint_at_a_short_banner_then_compressed_rotations() {
    stopped_at_the_banner("8c", 2, "    create\n    compress");
}

#[test]
fn s08d_checkpoint_at_a_long_banner_then_plain_rotations() {
    stopped_at_the_banner("8d", 60, "    create");
}

#[test]
fn s08e_checkpoint_at_a_long_banner_then_compressed_rotations() {
    stopped_at_the_banner("8e", 60, "    create\n    compress");
}
