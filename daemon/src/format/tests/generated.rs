//! Property tests over generated adversarial journals and logs: whatever
//! chunk sizes `read` returns, [`RecordReader`] yields exactly the records a
//! whole-buffer parse yields, they reproduce the input byte for byte, and a
//! cut-off tail is reported incomplete, never invented.

use std::io::{self, Read};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use regex::bytes::Regex;

use super::reference::{self, Span};
use crate::format::{frame_all, Format, RecordReader};

/// Hands out the data in the given chunk sizes (cycling).
struct Chunked<'a> {
    data: &'a [u8],
    sizes: &'a [usize],
    i: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.sizes[self.i % self.sizes.len()]
            .min(out.len())
            .min(self.data.len());
        self.i += 1;
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Records via a `RecordReader` over chunked reads, checking offsets, line
/// numbers and line counts along the way.
fn via_reader(format: &Format, data: &[u8], sizes: &[usize]) -> Vec<Span> {
    let mut r = RecordReader::new(Chunked { data, sizes, i: 0 }, format, 0, 1);
    let mut out = Vec::new();
    let mut line = 1;
    while let Some(rec) = r.next_record().unwrap() {
        let at = rec.offset as usize;
        assert_eq!(rec.bytes, &data[at..at + rec.bytes.len()]);
        assert_eq!(rec.line, line, "line number of the record at offset {at}");
        let newlines = rec.bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(rec.lines, newlines + u64::from(!rec.bytes.ends_with(b"\n")));
        line += newlines;
        out.push((at, rec.bytes.len(), rec.incomplete));
    }
    assert_eq!(r.offset(), data.len() as u64);
    out
}

/// The checks every generated input must pass.
fn check(
    format: &Format,
    data: &[u8],
    expected: &[Span],
    sizes: &[usize],
) -> Result<(), TestCaseError> {
    let whole = frame_all(format, data);
    prop_assert_eq!(
        &whole,
        expected,
        "whole-buffer framing differs from the reference"
    );
    let chunked = via_reader(format, data, sizes);
    prop_assert_eq!(
        &chunked,
        &whole,
        "chunked reading differs from whole-buffer framing"
    );
    // Contiguous, covering every byte once; only the last may be incomplete.
    let mut at = 0;
    for (i, &(s, n, inc)) in whole.iter().enumerate() {
        prop_assert_eq!(s, at);
        prop_assert!(n > 0);
        prop_assert!(
            !inc || i == whole.len() - 1,
            "only the last record may be incomplete"
        );
        at += n;
    }
    prop_assert_eq!(at, data.len());
    Ok(())
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    vec(
        prop_oneof![3 => Just(1usize), 3 => 1usize..64, 2 => 64usize..70_000],
        1..8,
    )
}

/// Raw (unquoted) p4 string contents chosen to break naive framers.
fn p4_text() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"@".to_vec()),
        Just(b"@@".to_vec()),
        Just(b"@@@@".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"@pv@ 0 @db.fake@ @x@ ".to_vec()),
        Just(b"\n@pv@ 1 @db.desc@ @y@ \n".to_vec()),
        Just(b"\n@ex@ 1 2\n".to_vec()),
        Just(vec![0xff, 0xfe, 0x80, 0xc3]),
        Just(b" ".to_vec()),
        Just(b"-12".to_vec()),
        "[a-z0-9/._-]{0,12}".prop_map(String::into_bytes),
    ];
    let small = vec(piece, 0..6).prop_map(|v| v.concat());
    let big = (0usize..4).prop_map(|k| {
        // ~200 KB with escapes and line breaks spread through it.
        let unit: &[u8] = [
            &b"0123456789abcdef"[..],
            b"@@@",
            b"line\nbreak",
            b"\r\n@pv@ ",
        ][k];
        unit.repeat(200_000 / unit.len())
    });
    prop_oneof![40 => small, 1 => big]
}

fn quote(raw: &[u8]) -> Vec<u8> {
    let mut q = vec![b'@'];
    for &b in raw {
        q.push(b);
        if b == b'@' {
            q.push(b'@');
        }
    }
    q.push(b'@');
    q
}

/// One p4 record, with its terminator.
fn p4_record() -> impl Strategy<Value = Vec<u8>> {
    let eol = prop_oneof![3 => Just(&b"\n"[..]), 1 => Just(&b"\r\n"[..])];
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        p4_text().prop_map(|t| quote(&t)),
    ];
    let data = (
        prop::sample::select(vec!["pv", "dv", "rv", "vv", "mv", "zz"]),
        0u32..12,
        "db\\.[a-z]{1,10}",
        vec(value, 0..8),
        eol.clone(),
    )
        .prop_map(|(op, ver, table, vals, eol)| {
            let mut r = format!("@{op}@ {ver} @{table}@ ").into_bytes();
            for v in vals {
                r.extend_from_slice(&v);
                r.push(b' ');
            }
            r.extend_from_slice(eol);
            r
        });
    let marker = (
        prop::sample::select(vec!["ex", "mx"]),
        1u32..99_999,
        1_000_000_000u64..2_000_000_000,
        eol.clone(),
    )
        .prop_map(|(op, pid, t, eol)| {
            [format!("@{op}@ {pid} {t}").into_bytes(), eol.to_vec()].concat()
        });
    let note = (1u32..5, p4_text(), eol).prop_map(|(n, t, eol)| {
        [
            format!("@nx@ {n} 1373376891 ").into_bytes(),
            quote(&t),
            b" @@ @@ ".to_vec(),
            eol.to_vec(),
        ]
        .concat()
    });
    prop_oneof![8 => data, 1 => marker, 1 => note]
}

/// Lines (without terminators) of a log, some of which start a record.
fn log_line() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"S".to_vec()),
        Just(b"START 2024-01-01 ".to_vec()),
        Just(b"  at frame".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"@".to_vec()),
        Just(vec![0xff, 0x80]),
        "[a-zA-Z0-9 ]{0,20}".prop_map(String::into_bytes),
    ];
    vec(piece, 0..4).prop_map(|v| v.concat())
}

fn log() -> impl Strategy<Value = Vec<u8>> {
    let eol = prop_oneof![3 => Just(&b"\n"[..]), 1 => Just(&b"\r\n"[..])];
    vec((log_line(), eol), 0..40).prop_map(|ls| {
        ls.into_iter()
            .flat_map(|(l, e)| [l, e.to_vec()].concat())
            .collect()
    })
}

/// Cuts `data` at `cut` (if any) to make a truncated tail.
fn maybe_cut(data: Vec<u8>, cut: Option<Index>) -> Vec<u8> {
    match cut {
        Some(i) if !data.is_empty() => data[..i.index(data.len() + 1)].to_vec(),
        _ => data,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn p4_journals_frame_the_same_whatever_the_chunks(
        records in vec(p4_record(), 0..30),
        cut in proptest::option::of(any::<Index>()),
        sizes in chunk_sizes(),
    ) {
        let full = records.concat();
        let data = maybe_cut(full.clone(), cut);
        let expected = reference::p4(&data);
        check(&Format::P4, &data, &expected, &sizes)?;
        // Against the generator's own truth: every whole record it wrote is
        // found as is; a cut inside a record yields one incomplete record.
        let mut at = 0;
        let mut truth = Vec::new();
        for r in &records {
            if at + r.len() <= data.len() {
                truth.push((at, r.len(), false));
            } else if at < data.len() {
                truth.push((at, data.len() - at, true));
            }
            at += r.len();
        }
        prop_assert_eq!(frame_all(&Format::P4, &data), truth);
    }

    #[test]
    fn single_line_logs_frame_the_same_whatever_the_chunks(
        data in log(),
        cut in proptest::option::of(any::<Index>()),
        sizes in chunk_sizes(),
    ) {
        let data = maybe_cut(data, cut);
        let format = Format::Lines { record_start: None };
        check(&format, &data, &reference::lines(&data, None), &sizes)?;
    }

    #[test]
    fn multi_line_logs_frame_the_same_whatever_the_chunks(
        data in log(),
        cut in proptest::option::of(any::<Index>()),
        sizes in chunk_sizes(),
        anchored in any::<bool>(),
    ) {
        let data = maybe_cut(data, cut);
        let re = Regex::new(if anchored { "^S" } else { "START [0-9-]+ $" }).unwrap();
        let expected = reference::lines(&data, Some(&re));
        check(&Format::Lines { record_start: Some(re) }, &data, &expected, &sizes)?;
    }
}

/// The live-stream path: records come out as soon as they are complete,
/// never before, while the file grows in random steps.
#[test]
fn live_reading_yields_each_record_once_as_it_completes() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(vec(p4_record(), 1..20), vec(1usize..300, 1..10)),
            |(records, steps)| {
                let data = records.concat();
                let expected = reference::p4(&data);
                let shared = std::rc::Rc::new(std::cell::RefCell::new(0usize));
                struct Growing<'a>(&'a [u8], std::rc::Rc<std::cell::RefCell<usize>>, usize);
                impl Read for Growing<'_> {
                    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                        let visible = *self.1.borrow();
                        let n = (visible - self.2).min(out.len());
                        out[..n].copy_from_slice(&self.0[self.2..self.2 + n]);
                        self.2 += n;
                        Ok(n)
                    }
                }
                let mut r = RecordReader::new(Growing(&data, shared.clone(), 0), &Format::P4, 0, 1);
                let mut got = Vec::new();
                let mut visible = 0;
                let mut step = 0;
                while visible < data.len() {
                    visible = (visible + steps[step % steps.len()]).min(data.len());
                    step += 1;
                    *shared.borrow_mut() = visible;
                    while let Some(rec) = r.next_available().unwrap() {
                        prop_assert!(rec.offset as usize + rec.bytes.len() <= visible);
                        prop_assert!(!rec.incomplete);
                        got.push((rec.offset as usize, rec.bytes.len(), false));
                    }
                    // Everything complete within the visible bytes was returned.
                    let complete_visible =
                        expected.iter().filter(|(s, n, _)| s + n <= visible).count();
                    prop_assert_eq!(got.len(), complete_visible);
                }
                prop_assert!(r.finish().unwrap().is_none());
                prop_assert_eq!(got, expected);
                Ok(())
            },
        )
        .unwrap();
}

/// One record as the live path returns it: offset, length, line, lines,
/// incomplete.
type Taken = (u64, usize, u64, u64, bool);

/// Every record of `data`, read as a growing file in `steps`: one at a
/// time with `next_available`, or, with `runs` (limits and room), through
/// [`RecordReader::take_lines`] wherever it takes records.
fn live_records(
    format: &Format,
    data: &[u8],
    steps: &[usize],
    runs: Option<&[(usize, usize)]>,
) -> Vec<Taken> {
    let sizes = [1, 37, 4096];
    let mut r = RecordReader::new(
        Chunked {
            data: &[],
            sizes: &sizes,
            i: 0,
        },
        format,
        0,
        1,
    );
    let mut got = Vec::new();
    let (mut visible, mut step, mut k) = (0, 0, 0);
    let mut ends = [0usize; 64];
    while visible < data.len() {
        visible = (visible + steps[step % steps.len()]).min(data.len());
        step += 1;
        r.get_mut().data = &data[r.offset() as usize + r.buffered()..visible];
        loop {
            if let Some(runs) = runs {
                let (limit, room) = runs[k % runs.len()];
                k += 1;
                if let Some(run) = r.take_lines(limit, &mut ends[..room]) {
                    assert!(run.count <= room);
                    let mut from = 0;
                    for (i, &to) in ends[..run.count].iter().enumerate() {
                        assert!(from < limit, "a record after the limit was taken");
                        assert_eq!(run.bytes[to - 1], b'\n');
                        let line = run.line + i as u64;
                        got.push((run.offset + from as u64, to - from, line, 1, false));
                        from = to;
                    }
                    assert_eq!(from, run.bytes.len());
                    continue;
                }
            }
            match r.next_available().unwrap() {
                Some(rec) => got.push((
                    rec.offset,
                    rec.bytes.len(),
                    rec.line,
                    rec.lines,
                    rec.incomplete,
                )),
                None => break,
            }
        }
    }
    while let Some(rec) = r.finish().unwrap() {
        got.push((
            rec.offset,
            rec.bytes.len(),
            rec.line,
            rec.lines,
            rec.incomplete,
        ));
    }
    got
}

fn runs() -> impl Strategy<Value = Vec<(usize, usize)>> {
    vec(
        (
            prop_oneof![1usize..80, 80usize..5_000, Just(usize::MAX)],
            1usize..=64,
        ),
        1..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Taking the one-line records already read in runs gives the same
    /// records, offsets, line numbers and line counts as taking them one
    /// at a time, whatever the limits, the room and how the file grows.
    #[test]
    fn runs_of_one_line_p4_records_are_the_records_one_at_a_time(
        records in vec(p4_record(), 0..40),
        cut in proptest::option::of(any::<Index>()),
        steps in vec(1usize..400, 1..8),
        runs in runs(),
    ) {
        let data = maybe_cut(records.concat(), cut);
        let one = live_records(&Format::P4, &data, &steps, None);
        let bulk = live_records(&Format::P4, &data, &steps, Some(&runs));
        prop_assert_eq!(&bulk, &one);
        let whole: Vec<Span> = one.iter().map(|&(o, n, _, _, inc)| (o as usize, n, inc)).collect();
        prop_assert_eq!(whole, reference::p4(&data));
    }

    #[test]
    fn runs_of_log_lines_are_the_lines_one_at_a_time(
        data in log(),
        cut in proptest::option::of(any::<Index>()),
        steps in vec(1usize..400, 1..8),
        runs in runs(),
    ) {
        let data = maybe_cut(data, cut);
        let format = Format::Lines { record_start: None };
        let one = live_records(&format, &data, &steps, None);
        prop_assert_eq!(live_records(&format, &data, &steps, Some(&runs)), one);
    }
}
