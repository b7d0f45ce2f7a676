//! Scenario 11a: twenty `logrotate` runs while a listener is down for
//! more than an hour of the daemon's time; then it gets everything,
//! exactly once, in order, and no file was removed.

use std::fs;

use super::{kit_backoffs, two_listeners, up_then_down, while_parked, BETWEEN, KIT, PACE};
use crate::fixture::Fixture;
use crate::host::{acked, entry_text, wait_until};
use crate::rotation::harness::{listing, logrotate, wait_output, Daemon, OUT};
use crate::torture::tally::{scale, Tally};
use crate::writer::{Kind, Pump};

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
