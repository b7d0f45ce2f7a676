//! Scenario 13: a record cut in two by a rotation (copy then truncate,
//! logrotate `create`) is delivered in pieces marked `incomplete`; cut by
//! a kill -9 or a stop, it is delivered whole after the restart.

use super::{finish, record_start, setup};
use crate::rotation::copy_truncate;
use crate::rotation::harness::{logrotate, wait_output, Daemon};
use crate::writer::Kind;

/// A p4 record whose description spans three lines; cut inside its string.
fn p4_desc(n: u64) -> Vec<u8> {
    format!(
        "@pv@ 0 @db.desc@ {n} @cut change {n}: the first line\nthe second line\nthe third line@ \n"
    )
    .into_bytes()
}

/// A line-log record with a stack trace, as `record_start = START` frames it.
fn stack_trace(n: u64) -> Vec<u8> {
    format!(
        "2026-11-21T13:00:00.000 app[4242]: request {n} failed\njava.lang.IllegalStateException: cut {n}\n\tat com.example.Handler.run(Handler.java:42)\n\tat java.lang.Thread.run(Thread.java:750)\n"
    )
    .into_bytes()
}

#[test]
fn s13a_p4_record_cut_by_copy_then_truncate() {
    let (f, mut a) = setup(Kind::P4, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    a.delivered(&f, &mut d);
    let rec = p4_desc(900_001);
    a.first_part(&rec, 60);
    copy_truncate(&f, &mut a.w, 1);
    a.rest();
    a.records(20);
    // The rest begins inside a string: read from the new file's start, the
    // quoting is inverted, every newline after it is inside a string, and
    // the file's records form one record that ends only with the file. The
    // next rotation ends it.
    copy_truncate(&f, &mut a.w, 2);
    a.records(20);
    let t = finish(&f, &mut d, &a, "13a: a p4 record cut by copy-then-truncate");
    let how = a.entries_of(&f, 0);
    // How the rest is framed depends on what the new file held when the
    // daemon read it; the first part is always cut off at the copy's end.
    assert!(
        how.len() >= 2
            && how[0] == "seq 1 +60 incomplete"
            && how[1].starts_with("seq 2 +")
            && how[1].contains("did_rotate"),
        "the first part is cut off at the end of the copy, the rest begins the new file: {how:?}"
    );
    t.report("13a", "p4 record cut by copy-then-truncate", &format!("cut record delivered as {}: the rest begins inside a string, so the new file is framed with the quoting inverted until it realigns (its end only at the next rotation); bytes exact", how.join(", ")));
}

#[test]
fn s13b_stack_trace_cut_by_logrotate_create() {
    let (f, mut a) = setup(Kind::Lines, &record_start());
    let mut d = Daemon::start(&f);
    a.records(20);
    let rec = stack_trace(1);
    a.first_part(&rec, rec.len() / 2);
    let before = a.expected[..a.len() - rec.len() / 2].to_vec();
    wait_output(&f, &mut d, &before, "13b: before the rotation");
    logrotate(&f, "    create");
    a.w.reopen();
    a.rest();
    a.records(20);
    a.next_begins();
    let t = finish(&f, &mut d, &a, "13b: a stack trace cut by logrotate create");
    let how = a.entries_of(&f, 0);
    t.report(
        "13b",
        "stack-trace record cut by logrotate create",
        &format!("cut record delivered as {}", how.join(", ")),
    );
}

#[test]
fn s13c_p4_record_cut_by_kill_9() {
    let (f, mut a) = setup(Kind::P4, "");
    let mut d = Daemon::start(&f);
    a.records(20);
    a.delivered(&f, &mut d);
    let rec = p4_desc(900_002);
    a.first_part(&rec, 60);
    let before = a.expected[..a.len() - 60].to_vec();
    wait_output(&f, &mut d, &before, "13c: before the kill");
    d.kill();
    a.rest();
    a.records(20);
    let mut d = Daemon::start(&f);
    let t = finish(&f, &mut d, &a, "13c: a p4 record cut by kill -9");
    let how = a.entries_of(&f, 0);
    assert_eq!(
        how,
        [format!("seq 1 +{}", rec.len())],
        "the record completed while the daemon was down is one complete entry"
    );
    t.report(
        "13c",
        "p4 record cut by kill -9, completed while down",
        &format!("delivered whole: {}", how.join(", ")),
    );
}

#[test]
fn s13d_stack_trace_cut_by_a_stop() {
    let (f, mut a) = setup(Kind::Lines, &record_start());
    let mut d = Daemon::start(&f);
    a.records(20);
    let rec = stack_trace(2);
    a.first_part(&rec, rec.len() / 2);
    let before = a.expected[..a.len() - rec.len() / 2].to_vec();
    wait_output(&f, &mut d, &before, "13d: before the stop");
    d.term();
    a.rest();
    a.records(20);
    a.next_begins();
    let mut d = Daemon::start(&f);
    let t = finish(&f, &mut d, &a, "13d: a stack trace cut by a stop");
    let how = a.entries_of(&f, 0);
    assert_eq!(
        how,
        [format!("seq 1 +{}", rec.len())],
        "the record completed while the daemon was down is one complete entry"
    );
    t.report(
        "13d",
        "stack-trace record cut by SIGTERM, completed while down",
        &format!("delivered whole: {}", how.join(", ")),
    );
}
