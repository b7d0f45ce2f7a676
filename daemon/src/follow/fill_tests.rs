use std::io::Write;
use std::path::Path;

use super::*;
use crate::format::{frame_all, Format};

fn config(path: &Path) -> Arc<JournalConfig> {
    Arc::new(JournalConfig::for_test("p4", path, Format::P4))
}

/// Records of many sizes, one far larger than a read buffer, and NUL
/// bytes (a whole record of them, and some before a record): data here,
/// where no truncation left a hole.
fn journal(part: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..30_000usize {
        let body = "z".repeat((i * 13 + part) % 400);
        out.extend_from_slice(format!("@pv@ 0 @db.t@ {part} {i} @{body}@ \n").as_bytes());
        match i {
            7_000 => out.extend_from_slice(
                format!("@pv@ 0 @db.desc@ @{}\n@ \n", "y".repeat(700_000)).as_bytes(),
            ),
            9_000 => out.extend_from_slice(b"\0\0\0\0\n"),
            9_001 => out.extend_from_slice(b"\0\0@ex@ 1 2\n"),
            _ => {}
        }
    }
    out
}

/// What a listener must get from `data`: offset, line and bytes of each
/// record, NUL bytes included.
fn expected(data: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
    let mut line = 1;
    let mut out = Vec::new();
    for (at, len, _) in frame_all(&Format::P4, data) {
        let rec = &data[at..at + len];
        out.push((at as u64, line, rec.to_vec()));
        line += rec.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    out
}

fn drain(f: &mut Follower, batch: &mut Batch, max: usize, got: &mut Vec<(u64, u64, Vec<u8>)>) {
    loop {
        batch.clear();
        let fill = f.fill(batch, max).unwrap();
        assert!(
            batch.size() <= max.saturating_add(710_000),
            "batch of {} bytes for at most {max}",
            batch.size()
        );
        for m in &batch.entries {
            assert_eq!(m.len as usize, batch.raw(m).len());
            got.push((m.offset, m.line, batch.raw(m).to_vec()));
        }
        if matches!(fill, Fill::Idle) && batch.is_empty() {
            return;
        }
    }
}

#[test]
fn a_hole_after_a_truncation_is_a_nul_fill_gap_before_the_record_after_it() {
    use std::os::unix::fs::FileExt;
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("journal");
    std::fs::write(&live, b"@ex@ 1 1\n@ex@ 1 2\n@ex@ 1 3\n").unwrap();
    let mut f = Follower::open(config(&live), None, None).unwrap();
    let mut batch = Batch::default();
    let mut got = Vec::new();
    drain(&mut f, &mut batch, 1 << 20, &mut got);
    assert_eq!(got.len(), 3);
    // Truncated; the writer goes on at its old offset, 27.
    let w = std::fs::OpenOptions::new().write(true).open(&live).unwrap();
    w.set_len(0).unwrap();
    w.write_all_at(b"@ex@ 2 1\n", 27).unwrap();
    batch.clear();
    let g = match f.fill(&mut batch, 1 << 20).unwrap() {
        Fill::Gap(g) => g,
        other => panic!("{other:?}: {:?}", batch.entries),
    };
    assert!(batch.is_empty());
    assert_eq!(
        (g.cause, g.from.sequence, g.from.offset, g.to.offset),
        (GapCause::NulFill, 2, 0, 27)
    );
    let mut after = Vec::new();
    drain(&mut f, &mut batch, 1 << 20, &mut after);
    assert_eq!(after, vec![(27, 1, b"@ex@ 2 1\n".to_vec())]);
    // Later NULs in that file are data: only the hole is filler.
    w.write_all_at(b"\0\0@ex@ 2 2\n", 36).unwrap();
    drain(&mut f, &mut batch, 1 << 20, &mut after);
    assert_eq!(after[1], (36, 2, b"\0\0@ex@ 2 2\n".to_vec()));
}

#[test]
fn every_record_once_in_order_whatever_the_batch_size() {
    for max in [4096, 100_000, 1 << 20, 1 << 30] {
        let d = tempfile::tempdir().unwrap();
        let live = d.path().join("journal");
        let (one, two) = (journal(1), journal(2));
        std::fs::write(&live, &one).unwrap();
        let mut f = Follower::open(config(&live), None, None).unwrap();
        let mut batch = Batch::default();
        let mut got = Vec::new();
        drain(&mut f, &mut batch, max, &mut got);
        assert_eq!(got, expected(&one), "max {max}");
        // Appended while following, with a record cut between two writes.
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(&live)
            .unwrap();
        w.write_all(&two[..two.len() / 2 + 17]).unwrap();
        drain(&mut f, &mut batch, max, &mut got);
        w.write_all(&two[two.len() / 2 + 17..]).unwrap();
        drain(&mut f, &mut batch, max, &mut got);
        let all = [one, two].concat();
        let want = expected(&all);
        assert_eq!(got.len(), want.len(), "max {max}");
        assert!(got == want, "max {max}: records differ");
    }
}

#[test]
fn a_few_new_lines_are_copied_and_the_read_buffer_goes_back_at_once() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("journal");
    std::fs::write(&live, b"@ex@ 1 1\n").unwrap();
    let mut f = Follower::open(config(&live), None, None).unwrap();
    let mut batch = Batch::default();
    batch.clear();
    f.fill(&mut batch, 1 << 20).unwrap();
    assert_eq!(batch.entries.len(), 1);
    assert!(
        !batch.has_view(),
        "a few bytes are copied and the read buffer goes back to the pool"
    );
    assert_eq!(batch.raw(&batch.entries[0]), b"@ex@ 1 1\n");
    // Many bytes at once are still handed over without a copy.
    let big: Vec<u8> = (0..2000)
        .flat_map(|i| format!("@ex@ 1 {i}\n").into_bytes())
        .collect();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap()
        .write_all(&big)
        .unwrap();
    batch.clear();
    f.fill(&mut batch, 1 << 20).unwrap();
    assert_eq!(batch.entries.len(), 2000);
    assert!(batch.has_view());
}
