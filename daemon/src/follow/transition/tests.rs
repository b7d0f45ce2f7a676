use std::path::Path;
use std::sync::Arc;

use logdaemon_sdk::abi::{GapCause, FLAG_INCOMPLETE};

use crate::config::{JournalConfig, OnGap};
use crate::follow::{Batch, Fill, Follower, GapEvent};
use crate::format::Format;

fn config(path: &Path, on_gap: OnGap) -> Arc<JournalConfig> {
    Arc::new(JournalConfig {
        on_gap,
        ..JournalConfig::for_test("app", path, Format::Lines { record_start: None })
    })
}

/// Line `i`, 97 bytes: no power-of-two read buffer ends between two.
fn line(i: usize) -> Vec<u8> {
    let mut l = format!("line {i:06} ").into_bytes();
    l.resize(96, b'x');
    l.push(b'\n');
    l
}

const LINE: u64 = 97;
/// Lines in the old file: more than any read buffer holds (2 MiB).
const OLD: usize = 40_000;

#[derive(Debug)]
enum Got {
    Entry {
        sequence: u64,
        offset: u64,
        bytes: Vec<u8>,
        incomplete: bool,
    },
    Gap(GapEvent),
}

fn drain(f: &mut Follower, max_bytes: usize) -> Vec<Got> {
    let mut out = Vec::new();
    for _ in 0..100 {
        let mut b = Batch::default();
        let fill = f.fill(&mut b, max_bytes).unwrap();
        for m in &b.entries {
            out.push(Got::Entry {
                sequence: m.sequence,
                offset: m.offset,
                bytes: b.raw(m).to_vec(),
                incomplete: m.flags & FLAG_INCOMPLETE != 0,
            });
        }
        match fill {
            Fill::Gap(g) => out.push(Got::Gap(g)),
            Fill::Idle if b.is_empty() => break,
            _ => {}
        }
    }
    out
}

/// A live file of `OLD` lines, a follower that has delivered a first
/// small batch of it (and read more, up to its buffer), and the file
/// after that: its first entries.
fn behind(dir: &Path, on_gap: OnGap) -> (std::path::PathBuf, Follower, Vec<Got>) {
    let path = dir.join("app.log");
    std::fs::write(&path, (0..OLD).flat_map(line).collect::<Vec<u8>>()).unwrap();
    let mut f = Follower::open(config(&path, on_gap), None, None).unwrap();
    let mut b = Batch::default();
    assert!(matches!(f.fill(&mut b, 4096).unwrap(), Fill::Entries));
    let read = f.seg.as_ref().unwrap().read_pos();
    assert!(
        read < OLD as u64 * LINE && !read.is_multiple_of(LINE),
        "the follower read up to {read}: not inside a record short of the end"
    );
    let got = b
        .entries
        .iter()
        .map(|m| Got::Entry {
            sequence: m.sequence,
            offset: m.offset,
            bytes: b.raw(m).to_vec(),
            incomplete: false,
        })
        .collect();
    (path, f, got)
}

/// Every entry of sequence 1 is whole line `n`, in order from line 0;
/// then one gap of `cause` from the end of the last of them to the end
/// of the old content; then the `new` lines as sequence 2.
fn assert_whole_records_then_gap(got: &[Got], cause: GapCause, new: usize) {
    let old: Vec<&Got> = got
        .iter()
        .filter(|g| matches!(g, Got::Entry { sequence: 1, .. }))
        .collect();
    for (n, g) in old.iter().enumerate() {
        let Got::Entry {
            offset,
            bytes,
            incomplete,
            ..
        } = g
        else {
            unreachable!()
        };
        assert!(
            !incomplete && *offset == n as u64 * LINE && *bytes == line(n),
            "entry {n} is not line {n} whole: {g:?}"
        );
    }
    let gaps: Vec<&GapEvent> = got
        .iter()
        .filter_map(|g| if let Got::Gap(g) = g { Some(g) } else { None })
        .collect();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let g = gaps[0];
    assert_eq!(
        (g.from.sequence, g.from.offset, g.from.line),
        (1, old.len() as u64 * LINE, old.len() as u64 + 1),
        "the gap starts at the first record not delivered whole: {g:?}"
    );
    assert_eq!(
        (g.to.sequence, g.to.offset, g.cause),
        (1, OLD as u64 * LINE, cause),
        "{g:?}"
    );
    let after: Vec<&Got> = got
        .iter()
        .skip_while(|g| !matches!(g, Got::Gap(_)))
        .skip(1)
        .collect();
    assert_eq!(after.len(), new, "{after:?}");
    for (n, g) in after.iter().enumerate() {
        assert!(
            matches!(g, Got::Entry { sequence: 2, bytes, incomplete: false, .. } if *bytes == line(900_000 + n)),
            "{g:?}"
        );
    }
}

#[test]
fn truncated_while_behind_the_record_cut_at_the_read_position_goes_whole_into_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut f, mut got) = behind(dir.path(), OnGap::Report);
    std::fs::write(
        &path,
        (900_000..900_003).flat_map(line).collect::<Vec<u8>>(),
    )
    .unwrap();
    got.extend(drain(&mut f, 1 << 20));
    assert_whole_records_then_gap(&got, GapCause::Truncated, 3);
}

#[test]
fn a_copy_ending_inside_a_record_puts_that_record_whole_into_the_copytruncate_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut f, mut got) = behind(dir.path(), OnGap::Report);
    // The copy was made while a record was half written (a write that
    // straddles a page is seen in two steps); the live file went on.
    let whole = std::fs::read(&path).unwrap();
    let copied = (OLD - 100) * LINE as usize + 40;
    assert!(f.seg.as_ref().unwrap().read_pos() < copied as u64);
    std::fs::write(dir.path().join("app.log.1"), &whole[..copied]).unwrap();
    std::fs::write(
        &path,
        (900_000..900_003).flat_map(line).collect::<Vec<u8>>(),
    )
    .unwrap();
    got.extend(drain(&mut f, 1 << 20));
    let delivered = got
        .iter()
        .filter(|g| matches!(g, Got::Entry { sequence: 1, .. }))
        .count();
    assert_eq!(delivered, OLD - 100, "every whole record of the copy");
    assert_whole_records_then_gap(&got, GapCause::Copytruncate, 3);
}

#[test]
fn a_stop_for_a_truncation_names_the_first_entry_not_delivered() {
    // Stopping drops the batch in hand: the records read before the
    // truncation (buffered, in no file now) are lost with the rest.
    let dir = tempfile::tempdir().unwrap();
    let (path, mut f, got) = behind(dir.path(), OnGap::Stop);
    std::fs::write(
        &path,
        (900_000..900_003).flat_map(line).collect::<Vec<u8>>(),
    )
    .unwrap();
    let err = f.fill(&mut Batch::default(), 1 << 20).unwrap_err();
    let crate::follow::FollowError::Missing(m) = err else {
        panic!("{err}")
    };
    let n = got.len() as u64;
    assert_eq!(
        (m.from.sequence, m.from.offset, m.from.line, m.cause),
        (1, n * LINE, n + 1, GapCause::Truncated),
        "{m}"
    );
}
