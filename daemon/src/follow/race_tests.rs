//! A rotation that lands between the follower's check of the live file and
//! its next read. The check (is the file still ours? has it been copied to
//! `journal.N`?) and the read are two system calls: a p4 journal copied to
//! `journal.N` and truncated in place between them must still be read from
//! the copy, not taken for the rest of the file the check looked at. A hook
//! runs the rotation at exactly that point, so these tests do not depend on
//! timing.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::config::{JournalConfig, OnGap};
use crate::follow::{Batch, Fill, Follower};
use crate::format::Format;

thread_local! {
    /// What happens to the files right before each read of the follower, in turn.
    static BEFORE_READ: RefCell<VecDeque<Box<dyn FnOnce()>>> = RefCell::new(VecDeque::new());
}

/// Called by the follower right before it reads records (after its check
/// of the file, if it made one).
pub(super) fn before_read() {
    if let Some(f) = BEFORE_READ.with(|q| q.borrow_mut().pop_front()) {
        f();
    }
}

/// Runs `f` right before the next read of the follower on this thread.
fn before_next_read(f: impl FnOnce() + 'static) {
    BEFORE_READ.with(|q| q.borrow_mut().push_back(Box::new(f)));
}

fn config(path: &Path, on_gap: OnGap) -> Arc<JournalConfig> {
    Arc::new(JournalConfig {
        on_gap,
        ..JournalConfig::for_test("p4", path, Format::P4)
    })
}

/// Record `i` of journal `j`: every record starts with the same bytes.
fn record(j: u64, i: u64) -> String {
    format!("@pv@ 0 @db.counters@ @journal{j}@ {i} \n")
}

fn records(j: u64, n: u64) -> String {
    (0..n).map(|i| record(j, i)).collect()
}

fn append(path: &Path, s: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(s.as_bytes())
        .unwrap();
}

/// p4's own rotation of old: copy the journal to `journal.N`, truncate it.
fn copy_truncate(live: &Path, n: u64) {
    std::fs::copy(live, live.with_file_name(format!("journal.{n}"))).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(live)
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// Everything the follower delivers until it has nothing more: (sequence, record).
fn drain(f: &mut Follower) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for _ in 0..20 {
        let mut b = Batch::default();
        let fill = f.fill(&mut b, 1 << 20).unwrap();
        out.extend(
            b.entries
                .iter()
                .map(|m| (m.sequence, String::from_utf8_lossy(b.raw(m)).into_owned())),
        );
        assert!(
            !matches!(fill, Fill::Gap(_)),
            "a gap where no byte is lost: {fill:?}"
        );
        if matches!(fill, Fill::Idle) && b.is_empty() {
            break;
        }
    }
    out
}

fn want(journals: &[(u64, String)]) -> Vec<(u64, String)> {
    journals
        .iter()
        .flat_map(|(seq, text)| {
            text.split_inclusive('\n')
                .map(move |r| (*seq, r.to_string()))
        })
        .collect()
}

/// The journal was empty when the follower looked; before its first read
/// it was written, copied to `journal.1` and truncated, and written again.
#[test]
fn an_empty_journal_copied_and_truncated_before_the_first_read_is_read_from_the_copy() {
    for on_gap in [OnGap::Stop, OnGap::Report] {
        let d = tempfile::tempdir().unwrap();
        let live = d.path().join("journal");
        std::fs::write(&live, "").unwrap();
        let mut f = Follower::open(config(&live, on_gap), None, None).unwrap();
        let l = live.clone();
        before_next_read(move || {
            append(&l, &records(1, 5));
            copy_truncate(&l, 1);
            append(&l, &records(2, 3));
        });
        let got = drain(&mut f);
        assert_eq!(
            got,
            want(&[(1, records(1, 5)), (2, records(2, 3))]),
            "{on_gap:?}"
        );
    }
}

/// Two such rotations in a row before the first read: `journal.1` and
/// `journal.2` are both read, in order, then the live file.
#[test]
fn two_copy_truncations_before_the_first_read_are_both_read() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("journal");
    std::fs::write(&live, "").unwrap();
    let mut f = Follower::open(config(&live, OnGap::Stop), None, None).unwrap();
    let l = live.clone();
    before_next_read(move || {
        append(&l, &records(1, 4));
        copy_truncate(&l, 1);
        append(&l, &records(2, 2));
        copy_truncate(&l, 2);
        append(&l, &records(3, 3));
    });
    let got = drain(&mut f);
    assert_eq!(
        got,
        want(&[(1, records(1, 4)), (2, records(2, 2)), (3, records(3, 3))])
    );
}

/// The check saw the first bytes of a record being written; the journal was
/// then completed, copied and truncated, and the new content starts with
/// the same bytes (every p4 record does): those bytes prove nothing, the
/// copy holds the rest.
#[test]
fn a_journal_copied_and_truncated_after_the_check_saw_a_few_bytes_is_read_from_the_copy() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("journal");
    let first = record(1, 0);
    std::fs::write(&live, &first[..12]).unwrap();
    let mut f = Follower::open(config(&live, OnGap::Stop), None, None).unwrap();
    assert!(drain(&mut f).is_empty());
    let l = live.clone();
    let rest = format!(
        "{}{}",
        &first[12..],
        (1..6).map(|i| record(1, i)).collect::<String>()
    );
    before_next_read(move || {
        append(&l, &rest);
        copy_truncate(&l, 1);
        append(&l, &records(2, 3));
    });
    let got = drain(&mut f);
    assert_eq!(got, want(&[(1, records(1, 6)), (2, records(2, 3))]));
}

/// The rotation comes after the read: nothing changes (the copy holds the
/// bytes read, the live file's new content is the next journal).
#[test]
fn a_copy_and_truncation_after_the_first_read_is_noticed_as_before() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("journal");
    std::fs::write(&live, records(1, 2)).unwrap();
    let mut f = Follower::open(config(&live, OnGap::Stop), None, None).unwrap();
    let mut got = drain(&mut f);
    append(&live, &records(1, 4)[record(1, 0).len() * 2..]);
    copy_truncate(&live, 1);
    append(&live, &records(2, 3));
    got.extend(drain(&mut f));
    assert_eq!(got, want(&[(1, records(1, 4)), (2, records(2, 3))]));
}
