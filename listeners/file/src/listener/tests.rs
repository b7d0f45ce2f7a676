use logdaemon_sdk::abi::{Bytes, RawEntry};

use super::*;

fn raw_entry(raw: &[u8], chunk: &[u8]) -> RawEntry {
    RawEntry {
        struct_size: RawEntry::SIZE,
        journal: Bytes::EMPTY,
        sequence: 1,
        offset: 0,
        len: raw.len() as u64,
        line: 1,
        lines: 1,
        flags: 0,
        raw: Bytes::new(raw),
        op: Bytes::EMPTY,
        fields: std::ptr::null(),
        n_fields: 0,
        chunk: Bytes::new(chunk),
    }
}

#[test]
fn entries_end_to_end_in_one_chunk_are_one_run_others_start_a_new_one() {
    let a = b"@ex@ 1 2\n@ex@ 3 4\n".to_vec();
    let b = b"@ex@ 5 6\n".to_vec();
    let raws = [
        raw_entry(&a[..9], &a),
        raw_entry(&a[9..], &a),
        raw_entry(&b, &b),
        raw_entry(&a[..9], &a),
        raw_entry(b"", b""),
    ];
    // SAFETY: every entry points into `a`, `b` or a static, alive here.
    let entries = unsafe { Entry::from_raw_slice(&raws) };
    let runs = contiguous_runs(entries);
    assert_eq!(runs, [&a[..], &b[..], &a[..9], &b""[..]]);
    assert_eq!(
        runs.concat(),
        entries
            .iter()
            .flat_map(|e| e.raw().iter().copied())
            .collect::<Vec<u8>>()
    );
    assert!(contiguous_runs(&entries[..0]).is_empty());
}

#[test]
fn slices_adjacent_in_memory_but_of_different_chunks_are_not_joined() {
    // Two buffers that happen to lie end to end (as two allocations may).
    let m = b"@ex@ 1\n@ex@ 2\n".to_vec();
    let (first, second) = m.split_at(7);
    let raws = [raw_entry(first, first), raw_entry(second, second)];
    // SAFETY: the entries point into `m`, alive here.
    let entries = unsafe { Entry::from_raw_slice(&raws) };
    assert_eq!(contiguous_runs(entries), [first, second]);
}
