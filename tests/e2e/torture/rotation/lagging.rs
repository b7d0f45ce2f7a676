//! Scenario 4: `compress` without `delaycompress` while the daemon lags:
//! the file it reads is renamed, compressed and deleted under it, and with
//! rotations piling up (4d) the next file is still being compressed when
//! the daemon looks for it.

use super::{backlog, lr, p4, run, Setup, Step, Tool};
use crate::torture::tally::scale;
use crate::writer::Kind;

// ---------------------------------------------------------------------------
// 4: compress without delaycompress while the daemon lags.

/// `rounds` copies of `round`.
fn repeat(round: &[Step], rounds: usize) -> Vec<Step> {
    (0..rounds).flat_map(|_| round.iter().cloned()).collect()
}

#[test]
fn s04a_logrotate_compress_while_lagging_and_frozen() {
    // The file being read is renamed, compressed and deleted while the
    // daemon is frozen behind in it: only its descriptor still reaches it.
    let plan = repeat(
        &[Step::Freeze, lr(&Tool::Gzip.logrotate()), Step::Thaw],
        scale(4, 40),
    );
    let (t, note) = run(
        "4a",
        Setup {
            kind: Kind::Lines,
            backlog: backlog(),
            slow: true,
        },
        &plan,
    );
    t.report(
        "4a",
        "logrotate compress, no delaycompress, daemon lagging and frozen",
        &note,
    );
}

#[test]
fn s04b_logrotate_compress_while_lagging() {
    // Each rotation comes right after a burst the daemon cannot have read;
    // the next one once it has caught up, so that the file being read is
    // the only one renamed and compressed under it.
    let plan = repeat(
        &[
            Step::Burst(3000),
            lr(&Tool::Gzip.logrotate()),
            Step::CaughtUp,
        ],
        scale(5, 50),
    );
    let (t, note) = run(
        "4b",
        Setup {
            kind: Kind::Lines,
            backlog: backlog(),
            slow: true,
        },
        &plan,
    );
    t.report(
        "4b",
        "logrotate compress, no delaycompress, daemon lagging",
        &note,
    );
}

#[test]
fn s04c_p4_rename_and_compress_while_lagging_and_frozen() {
    let tools = [Tool::Gzip, Tool::Zstd, Tool::Xz, Tool::Bzip2];
    let plan: Vec<Step> = (0..scale(4, 40))
        .flat_map(|i| [Step::Freeze, p4(Some(tools[i % tools.len()])), Step::Thaw])
        .collect();
    let (t, note) = run(
        "4c",
        Setup {
            kind: Kind::P4,
            backlog: backlog(),
            slow: true,
        },
        &plan,
    );
    t.report(
        "4c",
        "p4 rename then compress at once, daemon lagging and frozen",
        &note,
    );
}

#[test]
fn s04d_logrotate_compress_rotations_pile_up_while_lagging() {
    // Rotations come faster than the daemon reads: while it finishes one
    // file, the next is being compressed (listed plain, gone when opened).
    let plan = repeat(
        &[Step::Burst(3000), lr(&Tool::Gzip.logrotate())],
        scale(6, 60),
    );
    let (t, note) = run(
        "4d",
        Setup {
            kind: Kind::Lines,
            backlog: backlog(),
            slow: true,
        },
        &plan,
    );
    t.report(
        "4d",
        "logrotate compress, no delaycompress, rotations piling up while the daemon lags",
        &note,
    );
}
