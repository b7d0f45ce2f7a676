//! Looking for the file after the one finished while the directory
//! changes under the listing (rotations racing it, a directory that never
//! settles), and files missing from it (deleted before they were read, a
//! journal number skipped).

use std::path::Path;
use std::sync::Arc;

use crate::config::{JournalConfig, OnGap, Start};
use crate::follow::{Batch, Fill, Follower};
use crate::format::Format;

use super::tests::{
    after_next_listing, config, cursor_at, drain, drop_queued_listings, gzip, texts,
};

fn config_reporting(path: &Path) -> Arc<JournalConfig> {
    let mut cfg = (*config(path)).clone();
    cfg.on_gap = OnGap::Report;
    Arc::new(cfg)
}

/// Like [`drain`], with each gap as `gap SEQ:OFFSET-SEQ:OFFSET`.
fn drain_with_gaps(f: &mut Follower) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for _ in 0..20 {
        let mut b = Batch::default();
        let fill = f.fill(&mut b, 1 << 20).unwrap();
        out.extend(
            b.entries
                .iter()
                .map(|m| (m.sequence, String::from_utf8_lossy(b.raw(m)).into_owned())),
        );
        if let Fill::Gap(g) = &fill {
            out.push((
                g.from.sequence,
                format!(
                    "gap {}:{}-{}:{}",
                    g.from.sequence, g.from.offset, g.to.sequence, g.to.offset
                ),
            ));
        }
        if matches!(fill, Fill::Idle) && b.is_empty() {
            break;
        }
    }
    out
}

/// logrotate shifts `app.log.1` to `app.log.2` and the live file to
/// `app.log.1` right after the restart listed the rotated files: by that
/// listing, no file holds the checkpoint's position. The directory is
/// listed again and the position found under its new name.
#[test]
fn a_rotation_between_listing_and_opening_is_no_missing_file() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("app.log");
    let first = d.path().join("app.log.1");
    std::fs::write(&first, "a-1\na-2\n").unwrap();
    let cursor = cursor_at(&first, 1, 4, 2);
    std::fs::write(&live, "b-1\n").unwrap();
    let dir = d.path().to_path_buf();
    after_next_listing(move || {
        std::fs::rename(dir.join("app.log.1"), dir.join("app.log.2")).unwrap();
        std::fs::rename(dir.join("app.log"), dir.join("app.log.1")).unwrap();
        std::fs::write(dir.join("app.log"), "c-1\n").unwrap();
    });
    let mut f =
        Follower::open(config(&live), Some(&cursor), None).unwrap_or_else(|e| panic!("{e}"));
    let got = drain(&mut f);
    assert_eq!(texts(&got), ["a-2\n", "b-1\n", "c-1\n"], "{got:?}");
    assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2, 3]);
}

/// The file of a position acknowledged while it was empty was rotated
/// and compressed; logrotate shifts `app.log.1.gz` to `app.log.2.gz`
/// between the listing and the open of the file it names. No "No such
/// file or directory": the directory is listed again.
#[test]
fn a_rotated_file_renamed_before_it_is_opened_is_looked_for_again() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("app.log");
    std::fs::write(&live, "").unwrap();
    let cursor = cursor_at(&live, 1, 0, 1);
    // Written to after the acknowledgement, rotated, compressed (its
    // inode freed), and a new live file made.
    std::fs::write(&live, "late-1\n").unwrap();
    gzip(b"late-1\n", &d.path().join("app.log.1.gz"));
    // Made while the old file exists, so it cannot get the old inode back.
    std::fs::write(d.path().join("app.log.new"), "new-1\n").unwrap();
    std::fs::rename(d.path().join("app.log.new"), &live).unwrap();
    let dir = d.path().to_path_buf();
    after_next_listing(move || {
        std::fs::rename(dir.join("app.log.1.gz"), dir.join("app.log.2.gz")).unwrap()
    });
    let mut f =
        Follower::open(config(&live), Some(&cursor), None).unwrap_or_else(|e| panic!("{e}"));
    let got = drain(&mut f);
    assert_eq!(texts(&got), ["late-1\n", "new-1\n"], "{got:?}");
    assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2]);
}

/// A rotation that keeps on renaming under every listing does not keep
/// the restart looking forever: after a few rounds the last listing
/// decides, here that the bytes are in no file.
#[test]
fn a_directory_that_never_settles_ends_the_looking() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("app.log");
    std::fs::write(&live, "a-1\na-2\n").unwrap();
    let cursor = cursor_at(&live, 1, 4, 2);
    std::fs::remove_file(&live).unwrap();
    std::fs::write(&live, "b-1\n").unwrap();
    for n in 1..=10 {
        let dir = d.path().to_path_buf();
        after_next_listing(move || {
            std::fs::write(dir.join(format!("app.log.{n}")), format!("r-{n}\n")).unwrap()
        });
    }
    match Follower::open(config(&live), Some(&cursor), None) {
        Err(crate::follow::FollowError::Missing(m)) => {
            assert_eq!((m.from.sequence, m.from.offset), (1, 4))
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("resumed in a file that does not hold the position"),
    }
    let left = drop_queued_listings();
    assert!(left > 0, "looked at every listing");
}

/// The checkpoint's file was deleted (logrotate's `rotate`) while three
/// rotated files written after it are still there, and the one finished
/// before it too. With `on_gap = "report"`: a gap, then the three rotated
/// files oldest first, then the live file; the finished file is not read
/// again. Sequences go on from the cursor's.
#[test]
fn after_a_deleted_file_the_rotated_files_left_are_read_before_the_live_one() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("app.log");
    std::fs::write(&live, "done-1\n").unwrap();
    let done = crate::identity::compute(&live, 7).unwrap();
    let finished = logdaemon_state::Finished {
        sequence: 1,
        size: 7,
        head_len: done.head_len,
        head_hash: done.head_hash,
        tail_len: done.tail_len,
        tail_hash: done.tail_hash,
        path: String::new(),
    };
    std::fs::rename(&live, d.path().join("app.log.4")).unwrap();
    std::fs::write(&live, "lost-1\nlost-2\n").unwrap();
    let cursor = cursor_at(&live, 2, 7, 2);
    std::fs::remove_file(&live).unwrap();
    for n in [3, 2, 1] {
        std::fs::write(
            d.path().join(format!("app.log.{n}")),
            format!("r{n}-1\nr{n}-2\n"),
        )
        .unwrap();
    }
    std::fs::write(&live, "live-1\n").unwrap();
    let mut f = Follower::open_with_history(
        config_reporting(&live),
        Some(&cursor),
        std::slice::from_ref(&finished),
        None,
    )
    .unwrap();
    let got = drain_with_gaps(&mut f);
    assert_eq!(
        texts(&got),
        [
            "gap 2:7-3:0",
            "r3-1\n",
            "r3-2\n",
            "r2-1\n",
            "r2-2\n",
            "r1-1\n",
            "r1-2\n",
            "live-1\n"
        ],
        "{got:?}"
    );
    assert_eq!(
        got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [2, 3, 3, 4, 4, 5, 5, 6]
    );
    // Stopping instead names where delivery would go on: the oldest unread file.
    match Follower::open_with_history(
        config(&live),
        Some(&cursor),
        std::slice::from_ref(&finished),
        None,
    ) {
        Err(crate::follow::FollowError::Missing(m)) => {
            assert_eq!(m.to.map(|t| (t.sequence, t.offset)), Some((3, 0)), "{m}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("went on past missing bytes"),
    }
    // The finished file deleted as well (logrotate deletes the oldest
    // first): every rotated file left is newer, the oldest is next.
    std::fs::remove_file(d.path().join("app.log.4")).unwrap();
    let mut f =
        Follower::open_with_history(config_reporting(&live), Some(&cursor), &[finished], None)
            .unwrap();
    assert_eq!(
        texts(&drain_with_gaps(&mut f)),
        [
            "gap 2:7-3:0",
            "r3-1\n",
            "r3-2\n",
            "r2-1\n",
            "r2-2\n",
            "r1-1\n",
            "r1-2\n",
            "live-1\n"
        ]
    );
}

fn p4_config(path: &Path, on_gap: OnGap) -> Arc<JournalConfig> {
    Arc::new(JournalConfig {
        start: Start::Journal(1),
        on_gap,
        ..JournalConfig::for_test("p4", path, Format::P4)
    })
}

/// p4 numbers its journals one by one: after `journal.1`, a `journal.4`
/// means journals 2 and 3 were deleted unread. That is a gap (or a stop),
/// never a silent step from 1 to 4.
#[test]
fn a_missing_journal_number_between_two_rotated_journals_is_a_gap() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("journal");
    std::fs::write(d.path().join("journal.1"), "@pv@ 0 @db.a@ @1@ \n").unwrap();
    std::fs::write(d.path().join("journal.4"), "@pv@ 0 @db.a@ @4@ \n").unwrap();
    std::fs::write(&live, "@pv@ 0 @db.a@ @5@ \n").unwrap();

    let mut f = Follower::open(p4_config(&live, OnGap::Report), None, None).unwrap();
    let got = drain_with_gaps(&mut f);
    assert_eq!(
        got,
        vec![
            (1, "@pv@ 0 @db.a@ @1@ \n".to_string()),
            (2, "gap 2:0-4:0".to_string()),
            (4, "@pv@ 0 @db.a@ @4@ \n".to_string()),
            (5, "@pv@ 0 @db.a@ @5@ \n".to_string()),
        ]
    );

    let mut f = Follower::open(p4_config(&live, OnGap::Stop), None, None).unwrap();
    let mut b = Batch::default();
    let mut err = None;
    for _ in 0..5 {
        match f.fill(&mut b, 1 << 20) {
            Err(e) => {
                err = Some(e.to_string());
                break;
            }
            Ok(_) => b = Batch::default(),
        }
    }
    let err = err.expect("the follower stops at the missing journals");
    assert!(
        err.contains("sequence 2 offset 0") && err.contains("journals 2 to 3 are missing"),
        "{err}"
    );
}
