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

/// A journal of `n` records of every shape, from `seed`: one-line
/// records of many lengths, records with newlines inside strings, strings
/// never closed (cut at the next record), NUL bytes as data, CRLF.
fn mixed(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut rnd = move |k: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % k
    };
    let mut out = Vec::new();
    for i in 0..n {
        let body = "b".repeat(rnd(90) as usize);
        let rec = match rnd(20) {
            0 => format!("@pv@ 0 @db.desc@ {i} @{body}\nmore@@\n@ \n"),
            1 => format!("@pv@ 0 @db.x@ @never closed {body} \n"),
            2 => format!("@pv@ 0 @db.x@ {i} @\0{body}@ \r\n"),
            3 => format!("@ex@ {i} 1373376891\n"),
            _ => format!("@pv@ 1 @db.t@ {i} @{body}@ \n"),
        };
        out.extend_from_slice(rec.as_bytes());
    }
    out
}

/// What one fill gave: the fill, and each entry with its bytes.
type Filled = (
    String,
    Option<Position>,
    Vec<(u64, u64, u64, u64, u64, u32, Vec<u8>)>,
);

fn fill_once(f: &mut Follower, max: usize, one_by_one: bool) -> Filled {
    ONE_BY_ONE.with(|c| c.set(one_by_one));
    let mut b = Batch::default();
    let fill = f.fill(&mut b, max);
    ONE_BY_ONE.with(|c| c.set(false));
    let entries = b
        .entries
        .iter()
        .map(|m| {
            let raw = b.raw(m).to_vec();
            (m.sequence, m.offset, m.len, m.line, m.lines, m.flags, raw)
        })
        .collect();
    (format!("{fill:?}"), b.end, entries)
}

/// Fills both followers until both are idle, the same way; the fills of
/// each.
fn drain_both(
    one: &mut Follower,
    bulk: &mut Follower,
    maxes: &[usize],
) -> (Vec<Filled>, Vec<Filled>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0.. {
        let max = maxes[i % maxes.len()];
        let x = fill_once(one, max, true);
        let y = fill_once(bulk, max, false);
        let done = x.0 == "Ok(Idle)" && x.2.is_empty();
        a.push(x);
        b.push(y);
        if done || i > 10_000 {
            break;
        }
    }
    (a, b)
}

/// The runs of one-line records give the same batches as taking records
/// one at a time: the same entries (positions, line numbers, line counts,
/// flags, bytes), batch ends and fills, whatever the batch size, while the
/// journal grows in odd cuts, is copied and truncated (a rotation), and is
/// truncated with a NUL hole left by a writer at its old offset.
#[test]
fn runs_of_records_fill_the_batches_records_one_at_a_time_fill() {
    use std::os::unix::fs::FileExt;
    for seed in 1..=12u64 {
        let d = tempfile::tempdir().unwrap();
        let live = d.path().join("journal");
        let data = mixed(seed, 3_000);
        // Some start shorter than the first bytes the proofs hash.
        let cut = match seed % 3 {
            0 => 1_000 + seed as usize,
            _ => data.len() * (seed as usize % 7 + 1) / 9 + seed as usize % 13,
        };
        std::fs::write(&live, &data[..cut]).unwrap();
        let cfg = Arc::new(JournalConfig {
            on_gap: crate::config::OnGap::Report,
            ..JournalConfig::for_test("p4", &live, Format::P4)
        });
        let mut one = Follower::open(cfg.clone(), None, None).unwrap();
        let mut bulk = Follower::open(cfg, None, None).unwrap();
        let maxes = [4096, 150 + seed as usize * 37, 1 << 20, 9_000];
        let mut all = (Vec::new(), Vec::new());
        let mut step = |one: &mut Follower, bulk: &mut Follower| {
            let (a, b) = drain_both(one, bulk, &maxes);
            all.0.extend(a);
            all.1.extend(b);
            same_proofs(one, bulk);
        };
        step(&mut one, &mut bulk);
        let w = std::fs::OpenOptions::new().write(true).open(&live).unwrap();
        w.write_all_at(&data[cut..], cut as u64).unwrap();
        step(&mut one, &mut bulk);
        // p4's rotation: copied to journal.1, truncated, written again.
        std::fs::copy(&live, d.path().join("journal.1")).unwrap();
        w.set_len(0).unwrap();
        let more = mixed(seed + 100, 500);
        w.write_all_at(&more, 0).unwrap();
        step(&mut one, &mut bulk);
        // Truncated again; a writer without O_APPEND goes on at its old offset.
        w.set_len(0).unwrap();
        w.write_all_at(&mixed(seed + 200, 300), more.len() as u64)
            .unwrap();
        step(&mut one, &mut bulk);
        assert!(
            all.0.iter().any(|f| f.0.starts_with("Ok(Gap")),
            "seed {seed}: no NUL hole"
        );
        assert!(
            all.0
                .iter()
                .flat_map(|f| &f.2)
                .any(|e| e.5 & FLAG_INCOMPLETE != 0),
            "seed {seed}: no unclosed record"
        );
        assert_eq!(all.0.len(), all.1.len(), "seed {seed}");
        for (i, (a, b)) in all.0.iter().zip(&all.1).enumerate() {
            assert_eq!(a, b, "seed {seed}, fill {i}");
        }
    }
}

/// Both followers stand at the same place, prove it alike, and list the
/// same finished files with the same proofs.
fn same_proofs(one: &Follower, bulk: &Follower) {
    let pos = one.position();
    assert_eq!(pos, bulk.position());
    if let Some(p) = pos {
        assert_eq!(
            format!("{:?}", one.identity_at(p)),
            format!("{:?}", bulk.identity_at(p))
        );
    }
    assert_eq!(
        format!("{:?}", one.finished()),
        format!("{:?}", bulk.finished())
    );
}

/// The same from a compressed predecessor, whose proofs (its first bytes,
/// the bytes before a position) come from what was read, not from the file.
#[test]
fn runs_of_records_from_a_compressed_file_fill_and_prove_as_one_at_a_time() {
    use std::io::Write as _;
    for seed in 1..=4u64 {
        let d = tempfile::tempdir().unwrap();
        let live = d.path().join("journal");
        let data = mixed(seed, 2_000 * seed as usize);
        let gz = std::fs::File::create(d.path().join("journal.1.gz")).unwrap();
        let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
        enc.write_all(&data).unwrap();
        enc.finish().unwrap();
        std::fs::write(&live, b"").unwrap();
        let cfg = Arc::new(JournalConfig {
            start: crate::config::Start::Journal(1),
            ..JournalConfig::for_test("p4", &live, Format::P4)
        });
        let mut one = Follower::open(cfg.clone(), None, None).unwrap();
        let mut bulk = Follower::open(cfg, None, None).unwrap();
        let maxes = [4096, 333 * seed as usize, 1 << 20];
        let (mut a, mut b) = (Vec::new(), Vec::new());
        // Stop at several places inside the compressed file to compare
        // the proofs there.
        loop {
            let x = fill_once(&mut one, maxes[a.len() % 3], true);
            let y = fill_once(&mut bulk, maxes[b.len() % 3], false);
            same_proofs(&one, &bulk);
            let done = x.0 == "Ok(Idle)" && x.2.is_empty();
            a.push(x);
            b.push(y);
            if done {
                break;
            }
        }
        let n: usize = a.iter().map(|f| f.2.len()).sum();
        assert_eq!(n, frame_all(&Format::P4, &data).len(), "seed {seed}");
        assert!(
            a.iter().flat_map(|f| &f.2).all(|e| e.0 == 1),
            "read from journal.1.gz"
        );
        assert_eq!(a, b, "seed {seed}");
    }
}

/// A file read to its end and left, then appended to by a writer that
/// still held it open (late writes): the finished list proves it as it
/// was left (its first bytes as far as they were read), so that the next
/// start can still find it and report the late bytes.
#[test]
fn a_finished_file_appended_to_afterwards_keeps_the_proof_of_what_was_read() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("journal");
    let first = b"@pv@ 0 @db.t@ 1 @a@ \n@ex@ 1 2\n";
    std::fs::write(&live, first).unwrap();
    let cfg = Arc::new(JournalConfig {
        late_writes: std::time::Duration::ZERO,
        ..JournalConfig::for_test("p4", &live, Format::P4)
    });
    let mut f = Follower::open(cfg, None, None).unwrap();
    let (mut batch, mut got) = (Batch::default(), Vec::new());
    drain(&mut f, &mut batch, 1 << 20, &mut got);
    let mut held = std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap();
    std::fs::rename(&live, d.path().join("journal.1")).unwrap();
    std::fs::write(&live, b"@pv@ 0 @db.t@ 2 @b@ \n").unwrap();
    drain(&mut f, &mut batch, 1 << 20, &mut got);
    assert_eq!(got.len(), 3, "both files read: {got:?}");
    held.write_all(b"@pv@ 0 @db.t@ 1 @late@ \n").unwrap();
    let finished = f.finished();
    let left = finished
        .iter()
        .find(|x| x.size == first.len() as u64)
        .unwrap_or_else(|| panic!("the file left is in the finished list: {finished:?}"));
    assert_eq!(left.head_len, first.len() as u64);
    assert_eq!(left.head_hash, logdaemon_state::Hash::of(first));
}
