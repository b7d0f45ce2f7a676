//! Scenario 6: two and three rotations, some compressed, while the daemon
//! is frozen or stopped with a backlog, and killed while it reads them.

use super::{backlog, lr, p4, run, Setup, Step, Tool};
use crate::writer::Kind;

// ---------------------------------------------------------------------------
// 6: two and three rotations during a backlog.

fn backlog_rotations(id: &str, kind: Kind, scenario: &str, plan: &[Step]) {
    let (t, note) = run(
        id,
        Setup {
            kind,
            backlog: backlog(),
            slow: true,
        },
        plan,
    );
    t.report(id, scenario, &note);
}

#[test]
fn s06a_p4_two_renames_one_gzipped_while_frozen() {
    let plan = [Step::Freeze, p4(None), p4(Some(Tool::Gzip)), Step::Thaw];
    backlog_rotations(
        "6a",
        Kind::P4,
        "p4: 2 renames (plain, gzip) while frozen with a backlog",
        &plan,
    );
}

#[test]
fn s06b_p4_three_renames_while_frozen() {
    let plan = [
        Step::Freeze,
        p4(Some(Tool::Gzip)),
        p4(Some(Tool::Zstd)),
        p4(None),
        Step::Thaw,
    ];
    backlog_rotations(
        "6b",
        Kind::P4,
        "p4: 3 renames (gzip, zstd, plain) while frozen with a backlog",
        &plan,
    );
}

#[test]
fn s06c_p4_three_renames_while_stopped() {
    let plan = [
        Step::Term,
        p4(Some(Tool::Xz)),
        p4(None),
        p4(Some(Tool::Bzip2)),
        Step::Start,
    ];
    backlog_rotations(
        "6c",
        Kind::P4,
        "p4: 3 renames (xz, plain, bzip2) while stopped with a backlog",
        &plan,
    );
}

#[test]
fn s06d_logrotate_three_runs_delaycompress_while_frozen() {
    let d = "    compress\n    delaycompress";
    let plan = [Step::Freeze, lr(d), lr(d), lr(d), Step::Thaw];
    backlog_rotations(
        "6d",
        Kind::Lines,
        "logrotate: 3 runs (compress, delaycompress) while frozen with a backlog",
        &plan,
    );
}

#[test]
fn s06e_logrotate_two_runs_compress_while_killed() {
    let c = Tool::Gzip.logrotate();
    // Killed at its first delivery, before its first checkpoint save (one
    // a second) unless the machine is very slow: it restarts from the start
    // of the oldest file, and the listener skips what it already wrote.
    let plan = [Step::Kill, lr(&c), lr(&c), Step::Start];
    backlog_rotations(
        "6e",
        Kind::Lines,
        "logrotate: 2 runs (compress) while killed with a backlog",
        &plan,
    );
}

#[test]
fn s06f_p4_killed_while_reading_the_compressed_backlog() {
    // Thawed behind two compressed journals, then killed while it reads
    // them: the restart resumes inside a compressed file.
    let plan = [
        Step::Freeze,
        p4(Some(Tool::Gzip)),
        p4(Some(Tool::Xz)),
        Step::Thaw,
        Step::Saved,
        Step::Kill,
        Step::Start,
    ];
    backlog_rotations(
        "6f",
        Kind::P4,
        "p4: 2 renames (gzip, xz) while frozen, killed while reading them",
        &plan,
    );
}
