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
mod tests;
