//! Framing throughput: how fast the daemon can cut a journal into records,
//! next to the floor of merely finding every newline with `memchr`.
//!
//! The input is the p4 corpus (`tests/data/p4/*jnl.0`) concatenated and
//! repeated to at least 256 MiB, so the numbers are for real journal shapes
//! (short records, a few multi-line descriptions), not synthetic lines.
//! After criterion's report a table gives MB/s and the ratio to the floor.
//!
//! Run: `cargo bench -p logdaemon --bench parse`.

use std::borrow::Cow;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use logdaemon::format::{Format, Framer};

const MIN_SIZE: usize = 256 * 1024 * 1024;

fn corpus() -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/p4");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("jnl.0"))
        .collect();
    files.sort();
    let mut one = Vec::new();
    for f in files {
        one.extend(std::fs::read(&f).unwrap());
    }
    assert!(!one.is_empty(), "no journals in {}", dir.display());
    let mut all = Vec::with_capacity(MIN_SIZE + one.len());
    while all.len() < MIN_SIZE {
        all.extend_from_slice(&one);
    }
    all
}

fn floor(data: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', data).count()
}

/// Frames all of `data`, returning the record count.
fn frame(framer: &mut dyn Framer, data: &[u8]) -> usize {
    let mut at = 0;
    let mut n = 0;
    while let Some(len) = framer.next(&data[at..]) {
        at += len;
        n += 1;
        framer.consume(len);
    }
    n
}

/// Frames and splits every record into fields, returning the field count.
fn frame_and_split(framer: &mut dyn Framer, data: &[u8]) -> usize {
    let mut at = 0;
    let mut fields: Vec<Cow<'_, [u8]>> = Vec::with_capacity(32);
    let mut total = 0;
    while let Some(len) = framer.next(&data[at..]) {
        fields.clear();
        logdaemon_sdk::p4::split_into(&data[at..at + len], &mut fields);
        total += fields.len();
        at += len;
        framer.consume(len);
    }
    total
}

type Case = (&'static str, Box<dyn Fn(&[u8]) -> usize>);

fn cases() -> Vec<Case> {
    vec![
        ("memchr newline count (floor)", Box::new(floor)),
        (
            "p4 framing",
            Box::new(|d| frame(&mut *Format::P4.framer(), d)),
        ),
        (
            "p4 framing + field split",
            Box::new(|d| frame_and_split(&mut *Format::P4.framer(), d)),
        ),
        (
            "line framing",
            Box::new(|d| frame(&mut *Format::Lines { record_start: None }.framer(), d)),
        ),
        (
            "RecordReader p4 (copy + line numbers)",
            Box::new(|d| {
                let mut r = logdaemon::format::RecordReader::new(d, &Format::P4, 0, 1);
                let mut n = 0;
                while let Some(rec) = r.next_record().unwrap() {
                    n += rec.lines as usize;
                }
                n
            }),
        ),
    ]
}

fn main() {
    let data = corpus();
    let mb = data.len() as f64 / 1e6;
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    {
        let mut g = c.benchmark_group("parse");
        g.sampling_mode(SamplingMode::Flat);
        g.throughput(Throughput::Bytes(data.len() as u64));
        for (name, f) in cases() {
            g.bench_function(name, |b| b.iter(|| black_box(f(black_box(&data)))));
        }
        g.finish();
    }
    c.final_summary();

    // A compact table, ratios against the floor. The machine may be shared:
    // rounds run every case in turn and each case keeps its best round, so a
    // busy moment does not land on one case only.
    println!(
        "\ninput: {mb:.1} MB of p4 journal ({} records)",
        frame(&mut *Format::P4.framer(), &data)
    );
    let cases = cases();
    let mut best = vec![Duration::MAX; cases.len()];
    for _ in 0..9 {
        for ((_, f), best) in cases.iter().zip(&mut best) {
            let t = Instant::now();
            black_box(f(black_box(&data)));
            *best = (*best).min(t.elapsed());
        }
    }
    println!("{:<40} {:>10} {:>12}", "case", "MB/s", "x floor");
    let floor_rate = mb / best[0].as_secs_f64();
    for ((name, _), best) in cases.iter().zip(&best) {
        let rate = mb / best.as_secs_f64();
        println!("{name:<40} {rate:>10.0} {:>12.2}", rate / floor_rate);
    }
}
