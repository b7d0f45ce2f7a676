//! `logdaemon dump`: a journal file as one JSON object per record.
//!
//! Operators use it to see exactly what the daemon would deliver, with the
//! same framing, offsets and line numbers the daemon records in its
//! checkpoint, for plain or compressed (rotated) files. Output is JSON lines:
//!
//! ```text
//! {"offset":0,"len":35,"line":1,"op":"pv","fields":["1","db.counters","change","1"]}
//! {"offset":35,"len":12,"line":2,"op":"ex","fields":["1","2"],"incomplete":true}
//! ```
//!
//! `op` and `fields` appear for the p4 format only; `incomplete` only for a
//! record cut off by the end of the file. Records printed before an error
//! stay printed; the error says where reading stopped and what to do.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::compress::{self, CompressError, DecodeError, DecodeErrorKind};
use crate::format::{Format, Record, RecordReader};

/// Files smaller than this get no progress bar.
const PROGRESS_MIN_BYTES: u64 = 64 * 1024 * 1024;
/// Records between progress bar updates (a power of two).
const PROGRESS_EVERY: u64 = 4096;

/// What to dump and how.
#[derive(Clone, Debug)]
pub struct DumpOptions {
    pub format: Format,
    pub files: Vec<PathBuf>,
    /// Show a progress bar on stderr for large files (the CLI sets it when
    /// stderr is a terminal).
    pub progress: bool,
}

/// Why a dump stopped. `Display` is the whole operator-facing message.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("{}: no such file; check the path (a rotated journal may have been renamed or compressed since)", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: is a directory, not a journal file; give the path of a file inside it", path.display())]
    IsDirectory { path: PathBuf },
    #[error("{}: is {kind}, not a regular file; dump reads journal files only (it would wait on a FIFO or a device for ever): give the path of the journal file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{}: a component of the path is not a directory; check the path", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{}: permission denied; run as a user that may read it, or fix its permissions", path.display())]
    PermissionDenied { path: PathBuf },
    #[error("{}: cannot open: {source}; check the path and that the file is readable", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("{}: cannot read the start of the file (at offset 0): {source}; check that it is a regular, readable file", path.display())]
    ReadStart { path: PathBuf, source: io::Error },
    #[error("{}: not a valid {compression} file (at offset 0): {source}; check that the file is complete and not damaged", path.display())]
    BadHeader {
        path: PathBuf,
        compression: compress::Compression,
        source: io::Error,
    },
    /// The compressed data ends before the stream does.
    #[error("{decode} ({after}): the file is truncated or still being written; wait for the compressor to finish or restore the file")]
    Truncated { decode: DecodeError, after: After },
    /// The compressed data is damaged.
    #[error(
        "{decode} ({after}): the file is damaged; restore it from a backup or the original journal"
    )]
    Corrupt { decode: DecodeError, after: After },
    /// Reading failed (an I/O error of the file system or device).
    #[error(
        "{} ({after}): check the disk and the file system, then retry",
        describe_read(path, offset, source)
    )]
    Read {
        path: PathBuf,
        offset: u64,
        after: After,
        source: io::Error,
    },
    /// Writing the output failed (other than a closed pipe).
    #[error("cannot write the output while dumping {} at offset {offset}: {source}; check the output destination (disk full?)", path.display())]
    Write {
        path: PathBuf,
        offset: u64,
        source: io::Error,
    },
}

fn describe_read(path: &Path, offset: &u64, source: &io::Error) -> String {
    match DecodeError::find(source) {
        Some(d) => d.to_string(),
        None => format!(
            "{}: read error at offset {offset}: {source}",
            path.display()
        ),
    }
}

/// The last record printed before an error, for the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// No record of this file was printed.
    Start,
    /// The record starting on this line was the last one printed.
    Record { line: u64 },
}

impl std::fmt::Display for After {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            After::Start => f.write_str("before the first record"),
            After::Record { line } => write!(f, "after record at line {line}"),
        }
    }
}

impl DumpError {
    fn from_open(e: CompressError) -> Self {
        match e {
            CompressError::NotFound { path } => DumpError::NotFound { path },
            CompressError::IsDirectory { path } => DumpError::IsDirectory { path },
            CompressError::NotRegular { path, kind } => DumpError::NotRegular { path, kind },
            CompressError::NotADirectory { path } => DumpError::NotADirectory { path },
            CompressError::PermissionDenied { path } => DumpError::PermissionDenied { path },
            CompressError::Open { path, source } => DumpError::Open { path, source },
            CompressError::ReadMagic { path, source } => DumpError::ReadStart { path, source },
            CompressError::Decoder {
                path,
                compression,
                source,
            } => DumpError::BadHeader {
                path,
                compression,
                source,
            },
        }
    }

    fn from_read(path: &Path, offset: u64, after: After, e: io::Error) -> Self {
        // An error that starts a directory read surfaces here on some systems.
        if e.raw_os_error() == Some(libc::EISDIR) {
            return DumpError::IsDirectory {
                path: path.to_path_buf(),
            };
        }
        let kind = DecodeError::find(&e).map(|d| d.kind);
        match kind {
            Some(DecodeErrorKind::Truncated) | Some(DecodeErrorKind::Corrupt) => {
                let decode = take_decode_error(e).expect("checked above");
                if decode.kind == DecodeErrorKind::Truncated {
                    DumpError::Truncated { decode, after }
                } else {
                    DumpError::Corrupt { decode, after }
                }
            }
            _ => DumpError::Read {
                path: path.to_path_buf(),
                offset,
                after,
                source: e,
            },
        }
    }
}

fn take_decode_error(e: io::Error) -> Option<DecodeError> {
    e.into_inner()?.downcast::<DecodeError>().ok().map(|b| *b)
}

/// Writes every record of every file in `opts.files` to `out` as JSON
/// lines, in order. Stops at the first error; what was printed before it
/// stays printed (the output is flushed). A closed output (`EPIPE`) ends the
/// dump quietly with `Ok`.
pub fn dump(opts: &DumpOptions, out: &mut dyn Write) -> Result<(), DumpError> {
    let mut w = BufWriter::with_capacity(128 * 1024, out);
    let mut result = Ok(());
    for path in &opts.files {
        result = dump_file(opts, path, &mut w);
        if result.is_err() {
            break;
        }
    }
    let flushed = w.flush();
    match (result, flushed) {
        (Err(DumpError::Write { source, .. }), _) if source.kind() == io::ErrorKind::BrokenPipe => {
            Ok(())
        }
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        (Ok(()), Err(e)) => {
            let path = opts.files.last().cloned().unwrap_or_default();
            Err(DumpError::Write {
                path,
                offset: 0,
                source: e,
            })
        }
        (Ok(()), Ok(())) => Ok(()),
    }
}

fn dump_file(opts: &DumpOptions, path: &Path, w: &mut impl Write) -> Result<(), DumpError> {
    let opened = compress::open_file(path).map_err(DumpError::from_open)?;
    let bar = match opened.file_len {
        Some(len) if opts.progress && len >= PROGRESS_MIN_BYTES => Some(progress_bar(path, len)),
        _ => None,
    };
    let p4 = matches!(opts.format, Format::P4);
    let mut reader = RecordReader::new(opened.reader, &opts.format, 0, 1);
    let mut after = After::Start;
    let mut count: u64 = 0;
    loop {
        let offset = reader.offset();
        let rec = match reader.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => break,
            Err(e) => {
                if let Some(b) = &bar {
                    b.abandon();
                }
                return Err(DumpError::from_read(path, offset, after, e));
            }
        };
        write_record(&rec, p4, w).map_err(|source| DumpError::Write {
            path: path.to_path_buf(),
            offset: rec.offset,
            source,
        })?;
        after = After::Record { line: rec.line };
        count += 1;
        if let Some(b) = &bar {
            if count & (PROGRESS_EVERY - 1) == 0 {
                b.set_position(opened.consumed.load(Ordering::Relaxed));
            }
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(())
}

/// Writes one record as a JSON line. Hand-written rather than through
/// serde: the keys are fixed, and most values need no escaping, so this
/// keeps `dump` close to the speed of reading.
pub(crate) fn write_record(rec: &Record<'_>, p4: bool, w: &mut impl Write) -> io::Result<()> {
    w.write_all(b"{\"offset\":")?;
    write_u64(w, rec.offset)?;
    w.write_all(b",\"len\":")?;
    write_u64(w, rec.bytes.len() as u64)?;
    w.write_all(b",\"line\":")?;
    write_u64(w, rec.line)?;
    if p4 {
        let mut fields = Vec::with_capacity(16);
        logdaemon_sdk::p4::split_into(rec.bytes, &mut fields);
        let mut it = fields.iter();
        w.write_all(b",\"op\":")?;
        write_str(w, it.next().map_or(&[][..], |op| op))?;
        w.write_all(b",\"fields\":[")?;
        for (i, f) in it.enumerate() {
            if i > 0 {
                w.write_all(b",")?;
            }
            write_str(w, f)?;
        }
        w.write_all(b"]")?;
    }
    if rec.incomplete {
        w.write_all(b",\"incomplete\":true")?;
    }
    w.write_all(b"}\n")
}

pub(crate) fn write_u64(w: &mut impl Write, mut n: u64) -> io::Result<()> {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    w.write_all(&digits[i..])
}

/// Writes `raw` as a JSON string. Invalid UTF-8 becomes U+FFFD, as
/// [`String::from_utf8_lossy`] does; escapes are those `serde_json` writes.
pub(crate) fn write_str(w: &mut impl Write, raw: &[u8]) -> io::Result<()> {
    w.write_all(b"\"")?;
    match std::str::from_utf8(raw) {
        Ok(s) => write_escaped(w, s.as_bytes())?,
        Err(_) => write_escaped(w, String::from_utf8_lossy(raw).as_bytes())?,
    }
    w.write_all(b"\"")
}

/// Writes valid UTF-8 `s` with JSON escapes for `"`, `\\` and control
/// characters.
fn write_escaped(w: &mut impl Write, s: &[u8]) -> io::Result<()> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        w.write_all(&s[start..i])?;
        match b {
            b'"' => w.write_all(b"\\\"")?,
            b'\\' => w.write_all(b"\\\\")?,
            b'\n' => w.write_all(b"\\n")?,
            b'\r' => w.write_all(b"\\r")?,
            b'\t' => w.write_all(b"\\t")?,
            0x08 => w.write_all(b"\\b")?,
            0x0c => w.write_all(b"\\f")?,
            _ => w.write_all(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ])?,
        }
        start = i + 1;
    }
    w.write_all(&s[start..])
}

fn progress_bar(path: &Path, len: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let style = indicatif::ProgressStyle::with_template(
        "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(path.display().to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_file() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/p4/integration__dumps__security__ckp.seed")
    }

    fn run(format: Format, files: Vec<PathBuf>) -> (Vec<u8>, Result<(), DumpError>) {
        let mut out = Vec::new();
        let r = dump(
            &DumpOptions {
                format,
                files,
                progress: false,
            },
            &mut out,
        );
        (out, r)
    }

    fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn p4_output_has_the_documented_keys_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        std::fs::write(
            &p,
            b"@pv@ 1 @db.counters@ @change@ @1@ \n@pv@ 0 @db.desc@ 2 @a@@b\n\xff@ @@ -3 \n@ex@ 1 2",
        )
        .unwrap();
        let (out, r) = run(Format::P4, vec![p]);
        r.unwrap();
        let text = String::from_utf8(out).unwrap();
        let expected = concat!(
            r#"{"offset":0,"len":35,"line":1,"op":"pv","fields":["1","db.counters","change","1"]}"#, "\n",
            r#"{"offset":35,"len":35,"line":2,"op":"pv","fields":["0","db.desc","2","a@b\n\u{fffd}","","-3"]}"#, "\n",
            r#"{"offset":70,"len":8,"line":4,"op":"ex","fields":["1","2"],"incomplete":true}"#, "\n",
        )
        .replace("\\u{fffd}", "\u{fffd}");
        assert_eq!(text, expected);
    }

    #[test]
    fn strings_are_written_exactly_as_serde_json_writes_them() {
        let mut cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"plain //depot/path/file.c".to_vec(),
            b"quote \" backslash \\ slash /".to_vec(),
            b"\n\r\t\x08\x0c\x00\x01\x1f\x7f".to_vec(),
            "caf\u{e9} \u{2028} \u{1f600}".as_bytes().to_vec(),
            vec![0xff, b'a', 0xc3, 0x28, 0xe2, 0x82],
        ];
        cases.push((0u8..=255).collect());
        for raw in cases {
            let mut mine = Vec::new();
            write_str(&mut mine, &raw).unwrap();
            let theirs = serde_json::to_vec(&String::from_utf8_lossy(&raw)).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&mine),
                String::from_utf8_lossy(&theirs),
                "{raw:?}"
            );
        }
        for n in [0u64, 7, 10, 99, 12345, u64::MAX] {
            let mut mine = Vec::new();
            write_u64(&mut mine, n).unwrap();
            assert_eq!(mine, n.to_string().into_bytes());
        }
    }

    #[test]
    fn lines_output_has_no_op_or_fields() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, b"S one\n  two\nS three\n").unwrap();
        let re = regex::bytes::Regex::new("^S").unwrap();
        let (out, r) = run(
            Format::Lines {
                record_start: Some(re),
            },
            vec![p],
        );
        r.unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"offset\":0,\"len\":12,\"line\":1}\n{\"offset\":12,\"len\":8,\"line\":3}\n"
        );
    }

    #[test]
    fn compressed_files_dump_like_the_plain_file() {
        let plain = std::fs::read(corpus_file()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (expected, r) = run(Format::P4, vec![corpus_file()]);
        r.unwrap();
        assert!(json_lines(&expected).len() > 50);
        let bz = {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
            e.write_all(&plain).unwrap();
            e.finish().unwrap()
        };
        let xz = {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(&plain).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::stream::encode_all(&plain[..], 3).unwrap();
        for (name, data) in [
            ("j.gz", gzip(&plain)),
            ("j.bz2", bz),
            ("j.xz", xz),
            ("j.zst", zst),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, data).unwrap();
            let (out, r) = run(Format::P4, vec![p]);
            r.unwrap();
            assert!(
                out == expected,
                "{name} dumps differently from the plain file"
            );
        }
    }

    #[test]
    fn truncated_gzip_names_file_offset_last_record_and_advice() {
        let plain = std::fs::read(corpus_file()).unwrap().repeat(40);
        let gz = gzip(&plain);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.1.gz");
        std::fs::write(&p, &gz[..gz.len() * 2 / 3]).unwrap();
        let (out, r) = run(Format::P4, vec![p.clone()]);
        let e = r.unwrap_err();
        let printed = json_lines(&out);
        assert!(!printed.is_empty(), "records before the damage are printed");
        let last_line = printed.last().unwrap()["line"].as_u64().unwrap();
        let DumpError::Truncated { decode, after } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*after, After::Record { line: last_line });
        let msg = e.to_string();
        let want = format!(
            "{}: gzip data ends unexpectedly at uncompressed offset {} (after record at line {last_line}): the file is truncated or still being written; wait for the compressor to finish or restore the file",
            p.display(),
            decode.offset
        );
        assert_eq!(msg, want);
        // What was printed is exactly a prefix of the plain file's records.
        let mut at = 0u64;
        for rec in &printed {
            assert_eq!(rec["offset"].as_u64().unwrap(), at);
            at += rec["len"].as_u64().unwrap();
        }
        assert!(at <= decode.offset && decode.offset < plain.len() as u64);
    }

    #[test]
    fn corrupt_gzip_says_corrupt_with_offset() {
        let plain = std::fs::read(corpus_file()).unwrap().repeat(40);
        let mut gz = gzip(&plain);
        let mid = gz.len() / 2;
        gz[mid..mid + 32].fill(0xff);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.2.gz");
        std::fs::write(&p, &gz).unwrap();
        let (_, r) = run(Format::P4, vec![p.clone()]);
        let e = r.unwrap_err();
        assert!(matches!(e, DumpError::Corrupt { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "{}: corrupt gzip data at uncompressed offset ",
                p.display()
            )),
            "{msg}"
        );
        assert!(msg.contains("(after record at line "), "{msg}");
        assert!(
            msg.ends_with("the file is damaged; restore it from a backup or the original journal"),
            "{msg}"
        );
    }

    #[test]
    fn bad_paths_name_the_file_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x\n").unwrap();
        let cases: Vec<(PathBuf, &str)> = vec![
            (dir.path().join("missing"), "no such file; check the path"),
            (
                dir.path().to_path_buf(),
                "is a directory, not a journal file",
            ),
            (
                file.join("below-a-file"),
                "a component of the path is not a directory; check the path",
            ),
            // Fails even for root: offset 0 of a process's memory is unmapped.
            (
                PathBuf::from("/proc/self/mem"),
                "cannot read the start of the file (at offset 0)",
            ),
        ];
        for (path, want) in cases {
            let (out, r) = run(Format::P4, vec![path.clone()]);
            let msg = r.unwrap_err().to_string();
            assert!(msg.starts_with(&format!("{}: ", path.display())), "{msg}");
            assert!(msg.contains(want), "{msg}");
            assert!(out.is_empty());
        }
    }

    #[test]
    fn permission_denied_message() {
        // Tests run as root, which may open any file, so the real EACCES path
        // cannot be provoked here; this checks the message built for it.
        let e = DumpError::from_open(CompressError::PermissionDenied {
            path: "/var/j".into(),
        });
        assert_eq!(
            e.to_string(),
            "/var/j: permission denied; run as a user that may read it, or fix its permissions"
        );
    }

    #[test]
    fn earlier_files_stay_printed_when_a_later_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"one\ntwo\n").unwrap();
        let (out, r) = run(
            Format::Lines { record_start: None },
            vec![a, dir.path().join("b")],
        );
        assert!(matches!(r, Err(DumpError::NotFound { .. })));
        assert_eq!(json_lines(&out).len(), 2);
    }

    /// A consumer that went away after `room` bytes.
    struct ClosedPipe {
        room: usize,
    }

    impl Write for ClosedPipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn closed_output_ends_quietly_but_other_write_errors_do_not() {
        let opts = DumpOptions {
            format: Format::P4,
            files: vec![corpus_file()],
            progress: false,
        };
        dump(&opts, &mut ClosedPipe { room: 1000 }).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, std::fs::read(corpus_file()).unwrap().repeat(20)).unwrap();
        let opts = DumpOptions {
            format: Format::P4,
            files: vec![big],
            progress: false,
        };
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let e = dump(&opts, &mut &full).unwrap_err();
        assert!(matches!(e, DumpError::Write { .. }), "{e:?}");
        assert!(e.to_string().contains("disk full?"), "{e}");
    }
}
