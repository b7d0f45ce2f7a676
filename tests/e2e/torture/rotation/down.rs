//! Scenario 3: rotations compressed by every compressor while the daemon
//! is down (SIGTERM or SIGKILL): it resumes inside a compressed file.

use super::{backlog, lr, p4, run, Setup, Step, Tool};
use crate::torture::tally::scale;
use crate::writer::Kind;

// ---------------------------------------------------------------------------
// 3: rotation and compression while the daemon is down.

#[test]
fn s03a_p4_renames_compressed_by_each_tool_while_killed() {
    let plan = [
        Step::Saved,
        Step::Kill,
        p4(Some(Tool::Gzip)),
        p4(Some(Tool::Xz)),
        p4(Some(Tool::Zstd)),
        p4(Some(Tool::Bzip2)),
        Step::Start,
    ];
    let (t, note) = run(
        "3a",
        Setup {
            kind: Kind::P4,
            backlog: backlog(),
            slow: true,
        },
        &plan,
    );
    t.report(
        "3a",
        "p4 renames compressed by gzip, xz, zstd, bzip2 while the daemon is killed",
        &note,
    );
}

fn logrotate_compress_while_down(id: &str, tool: Tool, stop: Step) {
    let how = if matches!(stop, Step::Kill) {
        "killed"
    } else {
        "stopped"
    };
    let rotations = scale(3, 30);
    let mut plan = if matches!(stop, Step::Kill) {
        vec![Step::Saved, stop]
    } else {
        vec![stop]
    };
    plan.extend((0..rotations).map(|_| lr(&tool.logrotate())));
    plan.push(Step::Start);
    let (t, note) = run(
        id,
        Setup {
            kind: Kind::Lines,
            backlog: backlog(),
            slow: true,
        },
        &plan,
    );
    t.report(
        id,
        &format!(
            "logrotate compress ({}) x{rotations} while the daemon is {how}",
            tool.name()
        ),
        &note,
    );
}

#[test]
fn s03b_logrotate_gzip_while_stopped() {
    logrotate_compress_while_down("3b", Tool::Gzip, Step::Term);
}

#[test]
fn s03c_logrotate_xz_while_killed() {
    logrotate_compress_while_down("3c", Tool::Xz, Step::Kill);
}

#[test]
fn s03d_logrotate_zstd_while_stopped() {
    logrotate_compress_while_down("3d", Tool::Zstd, Step::Term);
}

#[test]
fn s03e_logrotate_bzip2_while_killed() {
    logrotate_compress_while_down("3e", Tool::Bzip2, Step::Kill);
}
