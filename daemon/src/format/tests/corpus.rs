//! The real p4 journals and checkpoints in `tests/data/p4/`: `dump` must cut
//! them exactly where the reference parser does, and lose no byte.

use std::path::{Path, PathBuf};

use super::reference;
use crate::dump::{dump, DumpOptions};
use crate::format::{Format, RecordReader};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/p4");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            // Named like `integration__dumps__copy-self__jnl.0`.
            name.ends_with("jnl.0") || name.ends_with("ckp.seed")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_is_present() {
    let files = corpus();
    assert!(
        files.len() >= 100,
        "expected the p4 corpus, found {} files",
        files.len()
    );
    assert!(files
        .iter()
        .any(|p| p.to_string_lossy().ends_with("ckp.seed")));
}

#[test]
fn every_corpus_file_dumps_to_the_reference_records() {
    let mut total = 0;
    for path in corpus() {
        let data = std::fs::read(&path).unwrap();
        let expected = reference::p4(&data);
        let mut out = Vec::new();
        dump(
            &DumpOptions {
                format: Format::P4,
                files: vec![path.clone()],
                progress: false,
            },
            &mut out,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let lines: Vec<serde_json::Value> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(
            lines.len(),
            expected.len(),
            "{}: record count",
            path.display()
        );
        let mut rebuilt = Vec::with_capacity(data.len());
        for (json, &(start, len, incomplete)) in lines.iter().zip(&expected) {
            let off = json["offset"].as_u64().unwrap() as usize;
            let n = json["len"].as_u64().unwrap() as usize;
            assert_eq!(
                (off, n),
                (start, len),
                "{}: record at offset {start}",
                path.display()
            );
            assert_eq!(
                json.get("incomplete").is_some(),
                incomplete,
                "{}: offset {start}",
                path.display()
            );
            let op = reference::p4_op(&data[start..start + len]);
            assert_eq!(
                json["op"].as_str().unwrap().as_bytes(),
                &op[..],
                "{}: op at offset {start}",
                path.display()
            );
            rebuilt.extend_from_slice(&data[off..off + n]);
        }
        assert!(
            rebuilt == data,
            "{}: records do not reproduce the file",
            path.display()
        );
        total += lines.len();
    }
    assert!(total > 1000, "only {total} records in the corpus");
}

#[test]
fn corpus_records_via_reader_match_line_numbers() {
    for path in corpus() {
        let data = std::fs::read(&path).unwrap();
        let mut r = RecordReader::new(std::fs::File::open(&path).unwrap(), &Format::P4, 0, 1);
        while let Some(rec) = r.next_record().unwrap() {
            let before = data[..rec.offset as usize]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            assert_eq!(
                rec.line,
                before + 1,
                "{}: offset {}",
                path.display(),
                rec.offset
            );
        }
    }
}
