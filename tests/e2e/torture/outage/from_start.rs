//! Scenario 11e: a listener down from the start, its cursor at the start
//! of a file then compressed and rotated three times: the file's first
//! bytes tell it from the newer ones.

use std::fs;

use super::{two_listeners, write_refused, BETWEEN, KIT};
use crate::fixture::Fixture;
use crate::host::{self, entry_text, wait_until};
use crate::rotation::harness::{listing, live, logrotate, OUT};
use crate::torture::tally::Tally;
use crate::writer::{Kind, Writer};

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
