//! Deterministic tests of sequences the model test found: each is the
//! smallest sequence of operations that breaks the property, run against
//! the same model, with what goes wrong in its doc comment.

use std::time::Duration;

use super::*;

/// Runs `ops` and panics with the trace if the property does not hold.
fn check(setup: (Fmt, Naming, OnGap), ops: &[Op]) {
    if let Err(msg) = run(setup, ops, Avoid::default()) {
        panic!("{msg}");
    }
}

fn w(n: usize) -> Op {
    Op::Write(vec![b"x".to_vec(); n])
}

/// Truncation (copytruncate, or in place after everything was read), then
/// the writer appends before the follower looks again: the regrown live
/// file's size must not be taken for the size the old content had, or the
/// records written after the truncation are reported lost (a copytruncate
/// gap, or a `Missing` stop) although none were. Finishing the old content
/// must not read on into the new content (delivering it twice, first under
/// the old sequence), and the new content is in the file we hold, even if
/// it was renamed away from the live path since.
#[test]
fn truncation_then_regrow_before_the_next_read_loses_nothing() {
    for on_gap in [OnGap::Stop, OnGap::Report] {
        check(
            (Fmt::P4, Naming::Numbered, on_gap),
            &[w(1), Op::Read(1), Op::Rotate(Rot::CopyTruncate), w(1)],
        );
        check(
            (Fmt::Lines, Naming::Shift, on_gap),
            &[w(2), Op::Idle, Op::Rotate(Rot::CopyTruncate), w(3)],
        );
        check(
            (Fmt::P4, Naming::Numbered, on_gap),
            &[w(1), Op::Read(1), Op::Rotate(Rot::Truncate), w(1)],
        );
        check(
            (Fmt::Lines, Naming::Numbered, on_gap),
            &[w(3), Op::Idle, Op::Rotate(Rot::Truncate), w(1)],
        );
        check(
            (Fmt::P4, Naming::Numbered, on_gap),
            &[
                w(1),
                Op::Read(1),
                Op::Rotate(Rot::Truncate),
                w(1),
                Op::Rotate(Rot::Rename),
            ],
        );
    }
}

/// An empty journal renamed and compressed (p4d rotating an idle journal):
/// the follower cannot prove by content that the empty `journal.1.gz` is the
/// file it just finished, and must not read it as the next journal, which
/// numbers the live journal 3 instead of 2.
#[test]
fn rotating_an_empty_journal_into_a_compressed_file_keeps_the_numbering() {
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Stop),
        &[Op::Rotate(Rot::RenameCompress(Comp::Gz)), w(1)],
    );
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Report),
        &[
            w(1),
            Op::Idle,
            Op::Rotate(Rot::Rename),
            Op::Rotate(Rot::RenameCompress(Comp::Zst)),
            w(1),
        ],
    );
}

/// The other way round: the follower finished a copy (copytruncate) that
/// was deleted since, so only modification times say what came after it. An
/// empty `journal.2` whose time is not newer is skipped, and the live journal
/// is numbered 2 although `journal.2` exists (p4 numbers the live journal
/// one above the highest rotated one).
#[test]
fn an_empty_rotated_journal_with_an_old_mtime_keeps_the_numbering() {
    let mut h = Harness::new(Fmt::P4, Naming::Numbered, OnGap::Stop, Avoid::default());
    for op in [
        w(1),
        Op::Read(1),
        Op::Rotate(Rot::CopyTruncate),
        Op::Idle,
        Op::Delete(0),
        Op::Rotate(Rot::Rename),
    ] {
        h.apply(&op).unwrap();
    }
    // An old timestamp: restored from a backup, or a coarse file system clock.
    let j2 = h.dir.join("journal.2");
    std::fs::File::options()
        .write(true)
        .open(&j2)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000))
        .unwrap();
    if let Err(msg) = h.finish() {
        panic!("{msg}");
    }
}

fn partial() -> Op {
    Op::PartialWrite(b"half".to_vec(), 0)
}

/// The follower finished `journal.1` and opened its successor, whose first
/// record is still being written; the acknowledged cursor stays at the end of
/// `journal.1`. Once `journal.1` is deleted (or, in place, truncated), a
/// restart must not stop on entries "in no file any more": all of them were
/// delivered. The harness acknowledges exactly as the worker does (a batch
/// with entries, at its end), so the follower moving a batch's end into the
/// next file helps only once the worker acknowledges that end for a batch
/// without entries too.
#[test]
fn restart_after_deleting_a_finished_file_is_not_missing() {
    for on_gap in [OnGap::Stop, OnGap::Report] {
        check(
            (Fmt::P4, Naming::Numbered, on_gap),
            &[
                w(1),
                Op::Idle,
                Op::Rotate(Rot::Truncate),
                Op::Idle,
                Op::Crash,
            ],
        );
        check(
            (Fmt::P4, Naming::Numbered, on_gap),
            &[
                w(2),
                Op::Idle,
                Op::Rotate(Rot::Rename),
                partial(),
                Op::Idle,
                Op::Delete(0),
                Op::Crash,
            ],
        );
        check(
            (Fmt::Lines, Naming::Numbered, on_gap),
            &[
                w(1),
                Op::Idle,
                Op::Rotate(Rot::Rename),
                Op::Rotate(Rot::Rename),
                Op::Idle,
                Op::Delete(0),
                Op::Crash,
            ],
        );
    }
}

/// A slow follower still holds the first journal (since compressed, so its
/// inode is gone) when the second rotation happens. At Idle the records of
/// `journal.2` must be delivered although the new live journal is empty:
/// `journal.2` is newer than the file we hold, so the writer has moved on.
#[test]
fn records_after_a_compressed_file_are_delivered_while_the_live_file_is_empty() {
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Stop),
        &[
            w(1),
            Op::Rotate(Rot::RenameCompress(Comp::Gz)),
            w(1),
            Op::Rotate(Rot::Rename),
            Op::Idle,
        ],
    );
    check(
        (Fmt::Lines, Naming::Shift, OnGap::Report),
        &[
            w(1),
            Op::Rotate(Rot::Rename),
            Op::Compress(0, Comp::Xz),
            w(2),
            Op::Rotate(Rot::Rename),
            Op::Idle,
        ],
    );
}

/// Copytruncate before the follower read anything of the live file: the
/// records are in the copy only, and must be delivered from it (they are
/// silently skipped when the follower sees nothing but an empty live file at
/// its position 0).
#[test]
fn copytruncate_before_anything_was_read_delivers_the_copy() {
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Stop),
        &[w(1), Op::Rotate(Rot::CopyTruncate), Op::Idle],
    );
    // The writer goes on before the follower looks: the live file's new
    // records must not be read first as the copied sequence.
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Report),
        &[w(1), Op::Rotate(Rot::CopyTruncate), w(1)],
    );
    check(
        (Fmt::Lines, Naming::Numbered, OnGap::Report),
        &[
            w(1),
            Op::Idle,
            Op::Rotate(Rot::Rename),
            w(2),
            Op::Rotate(Rot::CopyTruncate),
            Op::Idle,
        ],
    );
}

/// A restart inside a deleted `journal.1` with `on_gap = "report"`: after the
/// gap the follower must go on with `journal.2`, not jump to the live
/// journal (silently skipping `journal.2` and numbering the live journal 2).
#[test]
fn after_a_gap_at_restart_the_next_rotated_journal_is_read() {
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Report),
        &[
            w(2),
            Op::Read(1),
            Op::Rotate(Rot::Rename),
            w(1),
            Op::Rotate(Rot::Rename),
            Op::LoseRotated(0),
        ],
    );
}

/// The acknowledged cursor is at the end of `journal.2.gz`, which holds only
/// the first byte of a record cut by the rotation. That byte also starts the
/// live journal, so the content proof matches both files; a restart must
/// resume in `journal.2.gz` (the cursor's journal number and path), not at
/// offset 1 of the live journal (where no record ever ends).
#[test]
fn restart_at_the_end_of_a_tiny_compressed_journal_resumes_there() {
    let cut = Op::PartialWrite(Vec::new(), 0);
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Stop),
        &[
            w(1),
            Op::Rotate(Rot::Rename),
            cut.clone(),
            Op::Rotate(Rot::RenameCompress(Comp::Gz)),
            Op::Idle,
            w(1),
            Op::Crash,
        ],
    );
    check(
        (Fmt::Lines, Naming::Numbered, OnGap::Report),
        &[
            w(1),
            Op::Idle,
            cut.clone(),
            Op::Rotate(Rot::RenameCompress(Comp::Zst)),
            Op::Idle,
            w(1),
            Op::Crash,
        ],
    );
    // The cursor is acknowledged at the end of the cut record itself (the
    // batch filled up right after it), while the follower already opened
    // the live file.
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Stop),
        &[
            w(1),
            Op::Rotate(Rot::Rename),
            cut.clone(),
            Op::Rotate(Rot::RenameCompress(Comp::Gz)),
            Op::Read(1),
            Op::Read(1),
            w(1),
            Op::Crash,
        ],
    );
    check(
        (Fmt::Lines, Naming::Numbered, OnGap::Report),
        &[
            w(1),
            Op::Idle,
            Op::Rotate(Rot::Rename),
            cut,
            Op::Rotate(Rot::RenameCompress(Comp::Zst)),
            Op::Read(1),
            w(1),
            Op::Crash,
        ],
    );
}

/// The follower resumed in `journal.1.gz` after a restart (a compressed
/// segment has no inode or modification time of its own). Once
/// `journal.1.gz` is deleted, its successor `journal.2` can only be found by
/// its number; it must not be skipped for the live journal.
#[test]
fn successor_of_a_deleted_compressed_journal_is_found_by_number() {
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Stop),
        &[
            w(1),
            Op::Idle,
            Op::Rotate(Rot::RenameCompress(Comp::Gz)),
            Op::Crash,
            w(1),
            Op::Rotate(Rot::Rename),
            Op::Delete(0),
        ],
    );
}

/// The follower still holds `app.log-20250101` (read to its end) when it is
/// deleted, and the live file is rotated again. A deleted file can get no
/// more records: the follower must go on to `app.log-20250102` at Idle
/// rather than wait for the new live file to get data.
#[test]
fn a_deleted_file_the_follower_holds_does_not_hold_up_the_next_one() {
    check(
        (Fmt::Lines, Naming::Numbered, OnGap::Stop),
        &[
            w(1),
            Op::Read(1),
            Op::Rotate(Rot::Rename),
            Op::Delete(0),
            w(1),
            Op::Rotate(Rot::Rename),
            Op::Idle,
        ],
    );
}

/// A cursor at the start of a file that was empty when acknowledged proves
/// nothing by content, and the file has since been compressed away: a
/// restart must not take the new, empty live file for it (whose records
/// would then be skipped), but the rotated file that matches.
#[test]
fn restart_at_the_start_of_a_compressed_away_file_resumes_in_it() {
    check(
        (Fmt::Lines, Naming::Numbered, OnGap::Stop),
        &[
            w(1),
            Op::Rotate(Rot::RenameCompress(Comp::Gz)),
            Op::Read(1),
            Op::Crash,
            Op::Idle,
            w(1),
            Op::Rotate(Rot::RenameCompress(Comp::Gz)),
            Op::Crash,
        ],
    );
}

/// A rotated journal holding only the first byte of a cut record, which is
/// also the first byte of the live journal: it is a finished file (a newer
/// rotation exists), not a copy still being made, and its cut record must
/// be delivered as incomplete before the live journal is read as the next
/// journal.
#[test]
fn a_tiny_rotated_journal_that_the_live_one_starts_with_is_read() {
    check(
        (Fmt::P4, Naming::Numbered, OnGap::Stop),
        &[
            w(1),
            Op::Rotate(Rot::Rename),
            Op::PartialWrite(Vec::new(), 0),
            Op::Rotate(Rot::Rename),
        ],
    );
}

/// The batch that delivered the last record of `app.log` (since compressed)
/// also crossed into the new, empty live file, so the cursor was
/// acknowledged at its start, proven by nothing (the file was empty). That
/// file was then written, compressed away, and another rotation followed. A
/// restart must resume in `app.log-20250102.gz`, not guess the newest
/// rotated file (silently skipping a record).
#[test]
fn restart_at_the_start_of_an_empty_file_since_compressed_and_rotated_again() {
    check(
        (Fmt::Lines, Naming::Numbered, OnGap::Stop),
        &[
            w(1),
            Op::Rotate(Rot::RenameCompress(Comp::Gz)),
            Op::Idle,
            w(1),
            Op::Rotate(Rot::RenameCompress(Comp::Gz)),
            w(1),
            Op::Rotate(Rot::Rename),
            Op::Crash,
        ],
    );
}
