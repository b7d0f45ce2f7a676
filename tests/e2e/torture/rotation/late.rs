//! Scenario 5: the writer appends to the renamed file for a while before
//! it reopens the live path, with the daemon running, and killed and
//! restarted in the middle of it.

use std::time::Duration;

use super::{lr, p4, run, Setup, Step, Tool};
use crate::torture::tally::scale;
use crate::writer::Kind;

// ---------------------------------------------------------------------------
// 5: the writer appends to the renamed file for a while before reopening.

/// How long the writer goes on in the renamed file.
fn late() -> Duration {
    scale(Duration::from_secs(3), Duration::from_secs(30))
}

/// Runs `plan` and reports how many records went to the renamed file.
fn late_writes(id: &str, kind: Kind, scenario: &str, plan: &[Step]) {
    let (t, note) = run(
        id,
        Setup {
            kind,
            backlog: 2000,
            slow: false,
        },
        plan,
    );
    t.report(
        id,
        scenario,
        &format!("{note}, to the renamed file, delivered before the writer reopened"),
    );
}

#[test]
fn s05a_logrotate_create_writer_late_to_reopen() {
    let plan = [
        Step::Logrotate {
            directives: "    create".into(),
            reopen: false,
        },
        Step::Hold(late()),
        Step::CaughtUp,
        Step::Reopen,
    ];
    late_writes(
        "5a",
        Kind::Lines,
        "logrotate create, writer appends to the renamed file before reopening",
        &plan,
    );
}

#[test]
fn s05b_p4_rename_writer_late_to_reopen() {
    let plan = [
        Step::P4 {
            compress: None,
            reopen: false,
        },
        Step::Hold(late()),
        Step::CaughtUp,
        Step::Reopen,
        p4(Some(Tool::Gzip)),
    ];
    late_writes(
        "5b",
        Kind::P4,
        "p4 rename, writer appends to journal.N before reopening",
        &plan,
    );
}

#[test]
fn s05c_late_writes_across_a_daemon_kill() {
    // Killed while the writer is still in the renamed file: after the
    // restart the position is in app.log.1, which still grows, while the
    // live app.log is empty; then delaycompress compresses it a rotation on.
    let half = late() / 2;
    let plan = [
        Step::Logrotate {
            directives: "    create\n    compress\n    delaycompress".into(),
            reopen: false,
        },
        Step::Hold(half),
        Step::Kill,
        Step::Start,
        Step::Hold(half),
        Step::CaughtUp,
        Step::Reopen,
        lr("    compress\n    delaycompress"),
    ];
    late_writes(
        "5c",
        Kind::Lines,
        "logrotate create, late reopen, daemon killed in between",
        &plan,
    );
}
