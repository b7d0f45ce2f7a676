//! A model-based property test of the [`Follower`]: random sequences of
//! writes, rotations (every strategy), compression, deletion, reads and
//! crashes run against a real directory and against an in-memory model that
//! knows every record written. Whatever happens to the files, the records the
//! follower delivers must be exactly the records written, once each and in
//! order, each at its sequence and offset, with a record cut off by a
//! rotation delivered once and marked incomplete.
//!
//! Every operation in this model keeps all bytes recoverable (copytruncate
//! without writes between copy and truncate, truncation in place only after
//! everything was read, deletion only of fully read files), so a gap or a
//! `Missing` error is always a failure here, in both `on_gap`
//! configurations, except where the model itself deletes unread bytes
//! ([`Op::LoseRotated`]): then the follower must stop with `Missing` or
//! report a gap with exactly the lost range. The deterministic tests in
//! [`found`] pin down sequences this test found.
//!
//! Rotated names may also count the other way from what the configured
//! names assume ([`Naming::Ascending`]): then stopping with the message
//! that names the fitting `rotated` setting is the one other outcome
//! allowed, and nothing may be delivered twice before it.
//!
//! The writer's side of the model is in [`disk`], the follower's in
//! [`reader`].

mod disk;
mod found;
mod reader;

use proptest::prelude::*;

use crate::config::OnGap;
use disk::Harness;

/// Sequences the property test steers around. Most hit a bug that a
/// deterministic test in [`found`] pins down, and their flag goes once the
/// bug is fixed; a few are limits of what any follower can know (said so
/// below), and stay.
#[derive(Debug, Clone, Copy, Default)]
struct Avoid {
    /// Let the follower read right after a truncation (copytruncate or in
    /// place), before new writes.
    /// `found::truncation_then_regrow_before_the_next_read_loses_nothing`.
    regrow_after_truncation: bool,
    /// Copytruncate only once the follower delivered a record of the live
    /// file. `found::copytruncate_before_anything_was_read_delivers_the_copy`.
    /// Always so for line logs (no journal numbers), a limit: at offset 0
    /// nothing tells a fresh copy from an older rotated file.
    copytruncate_unread: bool,
    /// Never rotate an empty live file (so no rotated file is empty).
    /// `found::rotating_an_empty_journal_into_a_compressed_file_keeps_the_numbering`,
    /// `found::an_empty_rotated_journal_with_an_old_mtime_keeps_the_numbering`.
    /// Always so for line logs, a limit: which empty file was ours, and so
    /// the count of rotations, cannot be proven.
    rotating_empty: bool,
    /// No crash while the acknowledged cursor is at the end of a file that
    /// was deleted or truncated since.
    /// `found::restart_after_deleting_a_finished_file_is_not_missing` when
    /// the follower had moved on; a limit when it had not (the writer might
    /// have appended to the file before it was deleted).
    restart_at_finished_end: bool,
    /// Cut partial records only after their serial number, so no other file
    /// starts with the same bytes. Also a limit: a live file truncated and
    /// regrown with the same first bytes as the cut record read so far is
    /// byte for byte the old content.
    /// `found::restart_at_the_end_of_a_tiny_compressed_journal_resumes_there`,
    /// `found::a_tiny_rotated_journal_that_the_live_one_starts_with_is_read`.
    short_cut_record: bool,
    /// Delete a fully read rotated file only once a record after it was
    /// delivered (the follower may still be in it).
    /// `found::successor_of_a_deleted_compressed_journal_is_found_by_number`,
    /// `found::a_deleted_file_the_follower_holds_does_not_hold_up_the_next_one`.
    /// Also a limit: the number of an empty journal deleted before the
    /// follower opened it is unknown, and for line logs (always so) the
    /// successor of a deleted file is found by modification time, which ties
    /// within a file system clock tick.
    delete_at_ack: bool,
    /// Lose only the newest rotated file (no rotated file after it).
    /// `found::after_a_gap_at_restart_the_next_rotated_journal_is_read`.
    lose_before_rotated: bool,
    /// At Idle, do not require the records of rotated files to be
    /// delivered when a file was compressed.
    /// `found::records_after_a_compressed_file_are_delivered_while_the_live_file_is_empty`.
    idle_behind_compressed: bool,
}

const AVOID: Avoid = Avoid {
    regrow_after_truncation: false,
    copytruncate_unread: false,
    rotating_empty: false,
    restart_at_finished_end: true,
    idle_behind_compressed: false,
    lose_before_rotated: false,
    short_cut_record: true,
    delete_at_ack: true,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fmt {
    P4,
    Lines,
}

/// How rotated files are named (p4 always uses `journal.N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Naming {
    /// p4 `journal.N`, or `app.log-YYYYMMDD` for line logs: newer names sort later.
    Numbered,
    /// logrotate: `app.log.1` is the newest, older files shift up by one.
    Shift,
    /// Perforce-style for a line log: `app.log.1`, then `app.log.2`, …
    /// (higher is newer), under the default names, which assume `Shift`:
    /// the names contradict the order. The follower must deliver exactly
    /// once, or stop naming the `rotated` setting that fits, never repeat.
    Ascending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Comp {
    Gz,
    Xz,
    Zst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rot {
    /// Rename the live file and create a new empty one.
    Rename,
    /// Rename, then compress the renamed file (and remove the plain one).
    RenameCompress(Comp),
    /// Copy the live file to the rotated name, then truncate it in place.
    CopyTruncate,
    /// Truncate the live file in place (only once the follower read it all).
    Truncate,
}

#[derive(Debug, Clone)]
pub(super) enum Op {
    /// Whole records (completing a partial one first).
    Write(Vec<Vec<u8>>),
    /// The first part of a record; a later write completes it.
    PartialWrite(Vec<u8>, usize),
    Rotate(Rot),
    /// Compress the k-th plain rotated file.
    Compress(usize, Comp),
    /// Delete the k-th rotated file, if the follower read all of it.
    Delete(usize),
    /// Delete a rotated file the acknowledged cursor is inside of (bytes
    /// after it unread), then restart: those bytes are truly lost.
    LoseRotated(usize),
    /// One `fill` with this many bytes at most.
    Read(usize),
    /// Drop the follower, reopen it at the acknowledged cursor.
    Crash,
    /// `fill` until it returns Idle.
    Idle,
}

fn text() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![4 => b'a'..=b'z', 1 => Just(b' '), 1 => Just(b'@'), 1 => Just(b'\n'), 1 => Just(0xffu8)],
        0..40,
    )
}

fn comp() -> impl Strategy<Value = Comp> {
    prop_oneof![Just(Comp::Gz), Just(Comp::Xz), Just(Comp::Zst)]
}

fn rot() -> impl Strategy<Value = Rot> {
    prop_oneof![
        3 => Just(Rot::Rename),
        2 => comp().prop_map(Rot::RenameCompress),
        2 => Just(Rot::CopyTruncate),
        1 => Just(Rot::Truncate),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(text(), 1..4).prop_map(Op::Write),
        2 => (text(), any::<usize>()).prop_map(|(t, i)| Op::PartialWrite(t, i)),
        3 => rot().prop_map(Op::Rotate),
        1 => (any::<usize>(), comp()).prop_map(|(i, c)| Op::Compress(i, c)),
        1 => any::<usize>().prop_map(Op::Delete),
        1 => any::<usize>().prop_map(Op::LoseRotated),
        4 => (1usize..300).prop_map(Op::Read),
        2 => Just(Op::Crash),
        2 => Just(Op::Idle),
    ]
}

fn setup() -> impl Strategy<Value = (Fmt, Naming, OnGap)> {
    prop_oneof![
        Just((Fmt::P4, Naming::Numbered)),
        Just((Fmt::Lines, Naming::Numbered)),
        Just((Fmt::Lines, Naming::Shift)),
        Just((Fmt::Lines, Naming::Ascending)),
    ]
    .prop_flat_map(|(f, n)| {
        prop_oneof![Just(OnGap::Stop), Just(OnGap::Report)].prop_map(move |g| (f, n, g))
    })
}

fn run(setup: (Fmt, Naming, OnGap), ops: &[Op], avoid: Avoid) -> Result<(), String> {
    let (fmt, naming, on_gap) = setup;
    let mut h = Harness::new(fmt, naming, on_gap, avoid);
    h.trace
        .push(format!("setup: {fmt:?} {naming:?} {on_gap:?}"));
    for op in ops {
        h.apply(op)?;
    }
    h.finish()
}

proptest! {
    // A fixed seed: the same 256 cases on every run, so a red run is a
    // change of behaviour, never the luck of the draw. To explore further,
    // change the seed and look at what fails.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6c6f_6764_6165_6d6e),
        ..ProptestConfig::default()
    })]

    #[test]
    fn follower_delivers_every_record_once_in_order(setup in setup(), ops in proptest::collection::vec(op(), 1..40)) {
        if let Err(msg) = run(setup, &ops, AVOID) {
            return Err(TestCaseError::fail(msg));
        }
    }
}

/// Two rotated files with the same bytes, renamed in ascending order while
/// the live file stays empty: the writer has moved on (a newer file exists),
/// so the follower does not wait on ours, and names that count the other
/// way are refused rather than the second file skipped.
#[test]
fn two_identical_files_renamed_in_ascending_order_are_both_read() {
    let ops = [
        Op::Write(vec![vec![]]),
        Op::Rotate(Rot::Rename),
        Op::Write(vec![vec![]]),
        Op::Rotate(Rot::Rename),
        Op::Idle,
    ];
    run((Fmt::Lines, Naming::Ascending, OnGap::Stop), &ops, AVOID).unwrap();
}
