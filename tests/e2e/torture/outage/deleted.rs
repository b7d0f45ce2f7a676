//! Scenarios 11b, 11c and 11d: the file a listener that is down has not
//! read is deleted by `rotate 3` or `rotate 0`; with `on_gap = "stop"` the
//! daemon stops and its printed way out works, with `on_gap = "report"`
//! the listener gets one gap and then every entry still on disk once.

use std::fs;

use serde_json::Value;

use super::{two_listeners, up_then_down, while_parked, write_refused, BETWEEN, KIT};
use crate::fixture::Fixture;
use crate::host::{self, acked, entry_text, events, kind, wait_until};
use crate::rotation::harness::{listing, logrotate, wait_output, Daemon, LOG, OUT};
use crate::torture::tally::Tally;
use crate::writer::{Kind, Writer};

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
    f.run_printed_checkpoint_set(&log, "11b");
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
    let (_, t) = one_deleted_gap(&f, &mut d, &w, "11c", at, lost);
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
    let (g, t) = one_deleted_gap(&f, &mut d, &w, "11d", at, lost);
    assert_eq!(
        (&g["to"]["sequence"], &g["to"]["offset"]),
        (&2.into(), &0.into()),
        "11d: the gap ends at the next file: {g}"
    );
    // Everything still in a file once, in order: the rotated files left
    // were not skipped for the live file.
    t.report(
        "11d",
        "rotate 3 deletes the unread file of a listener that is down (on_gap = \"report\")",
        &format!("one gap, exactly the {lost} unread records of the deleted file; the three rotated files left and the live file delivered once"),
    );
}

/// The bytes of the first `n` records.
fn bytes_of(n: u64) -> usize {
    (0..n).map(|i| Writer::record(Kind::Lines, i).len()).sum()
}

/// With `on_gap = "report"`, after the file of the listener that is down
/// was deleted: waits until the testkit listener has every record but the
/// `lost` ones, and checks that it got one gap of cause `deleted` from
/// offset `at` of file 1 ending where delivery resumed, and that the
/// `file` listener (which had read that file) got none and is exact.
/// Returns the gap and the testkit listener's tally.
fn one_deleted_gap(
    f: &Fixture,
    d: &mut Daemon,
    w: &Writer,
    id: &str,
    at: u64,
    lost: u64,
) -> (Value, Tally) {
    let kit = f.join(KIT);
    let want = w.expected().len() - (bytes_of(BETWEEN + lost) - bytes_of(BETWEEN));
    wait_until(
        30,
        "the listener to deliver what is left",
        || entry_text(&kit).len() >= want,
        || d.log_tail(),
    );
    wait_output(f, d, &w.expected(), &format!("{id}: the file listener"));
    d.term();
    let ev = events(&kit);
    let gaps: Vec<&Value> = ev.iter().filter(|e| kind(e) == "gap").collect();
    assert_eq!(gaps.len(), 1, "{id}: gaps {gaps:?}");
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
        "{id}: the gap ends where delivery resumed"
    );
    assert!(
        !f.join(format!("{OUT}.gaps")).exists(),
        "{id}: the file listener, which had read the file, reported a gap"
    );
    Tally::count(w, &fs::read(f.join(OUT)).unwrap(), 0)
        .assert_exact(&format!("{id} (file listener)"));
    let t = Tally::count(w, entry_text(&kit).as_bytes(), lost);
    t.assert_exact(&format!("{id} (testkit listener)"));
    (g.clone(), t)
}
