//! `logdaemon dump` on real files: the p4 corpus plain and compressed by
//! the real `gzip`, `bzip2`, `xz` and `zstd` tools, multi-line logs, and
//! every kind of bad input an operator may hand it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::fixture::{self, stderr, stdout, Fixture};

fn corpus_file(name: &str) -> PathBuf {
    fixture::data_dir().join("p4").join(name)
}

const JOURNAL: &str = "integration__dumps__all_integ__jnl.0";
const CHECKPOINT: &str = "integration__dumps__security__ckp.seed";

fn records(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Compresses `src` with a real tool, writing `dst`.
fn compress(tool: &str, src: &Path, dst: &Path) {
    let out = std::fs::File::create(dst).unwrap();
    let status = Command::new(tool)
        .arg("-c")
        .arg(src)
        .stdout(out)
        .status()
        .unwrap_or_else(|e| panic!("{tool} is needed for this test (install it): {e}"));
    assert!(status.success(), "{tool} failed");
}

fn dump(fx: &Fixture, args: &[&str]) -> std::process::Output {
    let mut all = vec!["dump"];
    all.extend_from_slice(args);
    fx.run(&all)
}

#[test]
fn dumps_the_corpus_record_by_record() {
    let fx = Fixture::new();
    for name in [JOURNAL, CHECKPOINT] {
        let path = corpus_file(name);
        let data = std::fs::read(&path).unwrap();
        let o = dump(&fx, &[path.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let recs = records(&stdout(&o));
        assert!(recs.len() > 20);
        let mut at = 0u64;
        let mut line = 1u64;
        for r in &recs {
            assert_eq!(r["offset"].as_u64(), Some(at), "{name}");
            assert_eq!(r["line"].as_u64(), Some(line), "{name}");
            let len = r["len"].as_u64().unwrap();
            let raw = &data[at as usize..(at + len) as usize];
            assert!(raw.ends_with(b"\n"));
            assert!(r.get("incomplete").is_none());
            // The op is the first quoted string of the raw record.
            let op = r["op"].as_str().unwrap();
            assert!(
                raw.starts_with(format!("@{op}@ ").as_bytes()),
                "{name} at {at}"
            );
            assert!(r["fields"].is_array());
            line += raw.iter().filter(|&&b| b == b'\n').count() as u64;
            at += len;
        }
        assert_eq!(
            at,
            data.len() as u64,
            "{name}: records cover the whole file"
        );
    }
}

#[test]
fn compressed_copies_dump_exactly_like_the_plain_file() {
    let fx = Fixture::new();
    let plain = corpus_file(JOURNAL);
    let expected = dump(&fx, &[plain.to_str().unwrap()]);
    assert!(expected.status.success());
    for (tool, ext) in [
        ("gzip", "gz"),
        ("bzip2", "bz2"),
        ("xz", "xz"),
        ("zstd", "zst"),
    ] {
        // Names that do not tell the format: detection is by content.
        let dst = fx.join(format!("journal.{ext}.1"));
        compress(tool, &plain, &dst);
        let o = dump(&fx, &[dst.to_str().unwrap()]);
        assert!(o.status.success(), "{tool}: {}", stderr(&o));
        assert!(
            o.stdout == expected.stdout,
            "{tool}: output differs from the plain file's"
        );
    }
}

#[test]
fn multi_line_log_with_record_start() {
    let fx = Fixture::new();
    let log = fx.write(
        "app.log",
        "2024-05-01 start\n2024-05-01 boom\n  at a\n  at b\n2024-05-02 tail",
    );
    let o = dump(
        &fx,
        &[
            "--format",
            "lines",
            "--record-start",
            r"^\d{4}-\d\d-\d\d ",
            log.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        concat!(
            "{\"offset\":0,\"len\":17,\"line\":1}\n",
            "{\"offset\":17,\"len\":30,\"line\":2}\n",
            "{\"offset\":47,\"len\":15,\"line\":5,\"incomplete\":true}\n",
        )
    );
}

/// A big journal: the corpus file many times over, gzip-compressed.
fn big_gzip(fx: &Fixture) -> (PathBuf, usize) {
    let one = std::fs::read(corpus_file(JOURNAL)).unwrap();
    let plain = fx.write("big.jnl", one.repeat(300));
    let gz = fx.join("big.jnl.gz");
    compress("gzip", &plain, &gz);
    (gz, one.len() * 300)
}

#[test]
fn truncated_gzip_prints_what_it_can_then_says_where_and_what_to_do() {
    let fx = Fixture::new();
    let (gz, plain_len) = big_gzip(&fx);
    let data = std::fs::read(&gz).unwrap();
    let cut = fx.write("journal.2.gz", &data[..data.len() / 2]);
    let o = dump(&fx, &[cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "a truncated file must fail");
    let recs = records(&stdout(&o));
    assert!(!recs.is_empty(), "records before the cut are printed");
    let last_line = recs.last().unwrap()["line"].as_u64().unwrap();
    let err = stderr(&o);
    let prefix = format!(
        "error: {}: gzip data ends unexpectedly at uncompressed offset ",
        cut.display()
    );
    assert!(err.starts_with(&prefix), "{err}");
    let offset: u64 = err[prefix.len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(offset > 0 && offset < plain_len as u64);
    assert!(
        err.contains(&format!(
            "(after record at line {last_line}): the file is truncated or still being written; wait for the compressor to finish or restore the file"
        )),
        "{err}"
    );
}

#[test]
fn corrupt_gzip_says_corrupt_and_where() {
    let fx = Fixture::new();
    let (gz, _) = big_gzip(&fx);
    let mut data = std::fs::read(&gz).unwrap();
    let mid = data.len() / 2;
    data[mid..mid + 64].iter_mut().for_each(|b| *b ^= 0xa5);
    let bad = fx.write("journal.3.gz", &data);
    let o = dump(&fx, &[bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "error: {}: corrupt gzip data at uncompressed offset ",
            bad.display()
        )),
        "{err}"
    );
    assert!(err.contains("(after record at line "), "{err}");
    assert!(err.contains("restore it from a backup"), "{err}");
}

#[test]
fn bad_paths_fail_with_the_file_and_advice() {
    let fx = Fixture::new();
    let file = fx.write("plain.jnl", "@ex@ 1 2\n");
    let dir = fx.join("adir");
    std::fs::create_dir(&dir).unwrap();
    // Tests run as root, who may read any file whatever its mode, so
    // "unreadable" is provoked in ways that fail for root too: a path
    // through a regular file (ENOTDIR) and /proc/self/mem, whose first
    // bytes cannot be read (EIO).
    let cases = [
        (fx.join("missing.jnl"), "no such file; check the path"),
        (dir.clone(), "is a directory, not a journal file"),
        (file.join("x"), "a component of the path is not a directory"),
        (
            PathBuf::from("/proc/self/mem"),
            "cannot read the start of the file (at offset 0)",
        ),
    ];
    for (path, want) in cases {
        let o = dump(&fx, &[path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{}", path.display());
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!("error: {}: ", path.display())),
            "{err}"
        );
        assert!(err.contains(want), "{err}");
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let fx = Fixture::new();
    let one = std::fs::read(corpus_file(JOURNAL)).unwrap();
    let big = fx.write("big.jnl", one.repeat(300));
    let mut child = Command::new(fixture::bin())
        .args(["dump", big.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader (and the pipe) are dropped here, like `| head -1`.
    assert!(first.starts_with("{\"offset\":0,"));
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "exit {:?}: {}", o.status, stderr(&o));
    assert_eq!(stderr(&o), "");
}
