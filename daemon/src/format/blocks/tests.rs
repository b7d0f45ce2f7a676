use super::*;

#[test]
fn the_queue_is_given_back_only_while_it_holds_no_end() {
    let data = b"one\ntwo\nthree\n";
    let mut s = BlockScanner::new(false);
    assert!(s.queue.is_none(), "no queue before the first scan");
    assert_eq!(s.next(data), Some(4));
    s.release();
    assert!(s.queue.is_some(), "ends are queued: kept");
    s.consume(4);
    assert_eq!(s.next(&data[4..]), Some(4));
    s.consume(4);
    assert_eq!(s.next(&data[8..]), Some(6));
    s.consume(6);
    s.release();
    assert!(s.queue.is_none(), "empty: given back");
    assert_eq!(s.next(b"four\n"), Some(5), "scans again after a release");
}

#[test]
fn block_masks_match_bytewise_masks() {
    let mut block = [0u8; 64];
    for seed in 0u64..500 {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for b in &mut block {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = [b'@', b'\n', b'a', 0xff, b' '][(x % 5) as usize];
        }
        assert_eq!(masks(&block), scalar_masks(&block), "seed {seed}");
    }
}

#[test]
fn wide_and_baseline_masks_agree() {
    if !wide_available() {
        return; // Nothing to compare on this CPU; the baseline is tested above.
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,pclmulqdq")]
        unsafe fn wide(block: &[u8; 64], x: u64) -> ((u64, u64), u64) {
            (Wide::masks(block), Wide::prefix_xor(x))
        }
        let mut block = [0u8; 64];
        for seed in 0u64..500 {
            let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            for b in &mut block {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = [b'@', b'\n', b'a'][(x % 3) as usize];
            }
            // SAFETY: wide_available() checked the CPU features.
            let (m, p) = unsafe { wide(&block, x) };
            assert_eq!(m, scalar_masks(&block), "seed {seed}");
            assert_eq!(p, prefix_xor(x), "seed {seed}");
        }
    }
}

#[test]
fn prefix_xor_is_running_parity() {
    for x in [0u64, 1, 0b1011, 1 << 63, 0xdead_beef_0123_4567, !0] {
        let p = prefix_xor(x);
        let mut run = 0;
        for i in 0..64 {
            run ^= (x >> i) & 1;
            assert_eq!((p >> i) & 1, run, "x {x:#x} bit {i}");
        }
    }
}

/// Frames `data` completely, returning the record lengths.
fn frame(mut s: BlockScanner, data: &[u8]) -> Vec<usize> {
    let mut at = 0;
    let mut out = Vec::new();
    while let Some(n) = s.next(&data[at..]) {
        out.push(n);
        at += n;
        s.consume(n);
    }
    out
}

/// Frames `data` in growing prefixes of `step` bytes, as a live file
/// grows; returns each record's length and whether the scanner called it
/// one line.
fn frame_growing(mut s: BlockScanner, data: &[u8], step: usize) -> Vec<(usize, bool)> {
    let (mut at, mut seen) = (0, step.min(data.len()));
    let mut out = Vec::new();
    loop {
        match s.next(&data[at..seen]) {
            Some(n) => {
                out.push((n, s.record_is_one_line()));
                at += n;
                s.consume(n);
            }
            None if seen == data.len() => return out,
            None => seen = (seen + step).min(data.len()),
        }
    }
}

#[test]
fn each_record_says_whether_it_is_one_line_whatever_its_neighbours() {
    // One-line records around multi-line ones (newlines inside
    // strings), at every distance from a block edge and a window edge.
    let mut data = Vec::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    while data.len() < 300_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let pad = "p".repeat((x % 150) as usize);
        match x % 9 {
            0 => data.extend_from_slice(format!("@ex@ 1 @a\n{pad}\nb@ @@ x\n").as_bytes()),
            1 => data.extend_from_slice(format!("@ex@ 2 @{pad}\n@\n").as_bytes()),
            2 => data.extend_from_slice(b"\n"),
            _ => data.extend_from_slice(format!("@pv@ 3 @{pad}@ @@@@ \n").as_bytes()),
        }
    }
    let truth: Vec<(usize, bool)> = {
        let lens = frame(BlockScanner::new(true), &data);
        let mut at = 0;
        lens.iter()
            .map(|&n| {
                let r = &data[at..at + n];
                at += n;
                (n, r.iter().filter(|&&b| b == b'\n').count() == 1)
            })
            .collect()
    };
    assert!(truth.iter().filter(|t| !t.1).count() > 300);
    assert!(truth.iter().filter(|t| t.1).count() > 1000);
    for step in [1, 63, 64, 1000, 4096, data.len()] {
        for wide in [false, true] {
            let s = BlockScanner {
                wide: wide && wide_available(),
                ..BlockScanner::new(true)
            };
            assert_eq!(
                frame_growing(s, &data, step),
                truth,
                "step {step} wide {wide}"
            );
        }
    }
}

#[test]
fn both_instruction_sets_find_the_same_records() {
    let mut x = 0x1234_5678_9abc_def1u64;
    let data: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            [b'@', b'\n', b'a', b'b', b' ', b'@', b'c'][(x % 7) as usize]
        })
        .collect();
    for quotes in [true, false] {
        let base = frame(
            BlockScanner {
                wide: false,
                ..BlockScanner::new(quotes)
            },
            &data,
        );
        let wide = frame(BlockScanner::new(quotes), &data);
        assert!(base.len() > 1000);
        assert_eq!(base, wide, "quotes {quotes}");
    }
}

#[test]
fn dense_record_ends_fill_the_queue_without_loss() {
    // Every byte a record end (empty lines), then many tiny records: more
    // ends per block than written unconditionally, and full windows.
    let mut data = vec![b'\n'; 3 * QUEUE + 17];
    data.extend(b"a\n@@\n@\n@\n".repeat(5000));
    for quotes in [true, false] {
        for wide in [false, wide_available()] {
            let got = frame(
                BlockScanner {
                    wide,
                    ..BlockScanner::new(quotes)
                },
                &data,
            );
            let mut expected = vec![1; 3 * QUEUE + 17];
            expected.extend(if quotes {
                [2, 3, 4].repeat(5000)
            } else {
                [2, 3, 2, 2].repeat(5000)
            });
            assert_eq!(got, expected, "quotes {quotes} wide {wide}");
        }
    }
}

#[test]
fn a_shrunk_buffer_is_rescanned_not_overrun() {
    let mut s = BlockScanner::new(true);
    let data = b"@pv@ 0 @t@ @a@ \n".repeat(20);
    assert_eq!(s.next(&data), Some(16));
    // Same start, fewer bytes than already scanned.
    assert_eq!(s.next(&data[..10]), None);
    assert_eq!(s.next(&data[..16]), Some(16));
}

#[test]
fn cached_ends_survive_consume_and_repeat_without_it() {
    // Many short records in one block.
    let data = b"a\nbb\nccc\n@x\ny@\n".repeat(10);
    let mut s = BlockScanner::new(true);
    let mut at = 0;
    let mut got = Vec::new();
    while let Some(n) = s.next(&data[at..]) {
        // Asking again without consuming gives the same answer.
        assert_eq!(s.next(&data[at..]), Some(n));
        got.push(n);
        at += n;
        s.consume(n);
    }
    assert_eq!(at, data.len());
    assert_eq!(got, [2, 3, 4, 6].repeat(10));
}
