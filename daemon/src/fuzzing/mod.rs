//! Fuzz-target logic as plain functions, so the cargo-fuzz targets in
//! `fuzz/` stay one line each and the inputs they once failed on are replayed
//! by ordinary `cargo test` (see the tests at the end, which read
//! `fuzz/regressions/<target>/`).
//!
//! Each function decodes arbitrary bytes into one scenario, runs the code
//! under test and asserts the invariants that must hold for *every* input:
//! a violation panics, which is what a fuzzer reports. They check results,
//! not just the absence of crashes: the framers against slow, obviously
//! correct references; the checkpoint by a render/parse round trip; error
//! line numbers against the text; the plugin handshake against a model of
//! the rules it enforces.

use std::path::Path;
use std::sync::OnceLock;

use regex::bytes::Regex;

use crate::format::{frame_all, reference, Format, RecordReader};

/// One framed record as the invariants compare them: offset, length, incomplete.
type Span = (usize, usize, bool);

/// Reads typed values from the front of a fuzz input; missing bytes read as zero.
struct Take<'a>(&'a [u8]);

impl<'a> Take<'a> {
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// Hands out `data` in the given chunk sizes, cycling; a size of 0 is a
/// moment with nothing available (`Ok(0)`) before the data ends.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    i: usize,
}

impl std::io::Read for Chunked<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let want = self.sizes[self.i % self.sizes.len()];
        self.i += 1;
        let n = want.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Fuzz target `p4_framer`: the p4 framer through [`RecordReader`] with
/// chunk sizes from the input. Returns the number of records.
///
/// Input: a scenario header (see `frame_scenario`), then the journal bytes.
/// Invariants: records tile the input; offsets and line numbers are exact;
/// the records equal [`frame_all`]'s and a byte-by-byte reference parser's;
/// only the last may be incomplete; [`logdaemon_sdk::p4::split`] takes every
/// record apart without panicking and finds the reference's op.
pub fn p4_framer(data: &[u8]) -> usize {
    let (spans, body) = frame_scenario(&Format::P4, data, reference::p4);
    for &(at, len, _) in &spans {
        let record = &body[at..at + len];
        let (op, fields) = logdaemon_sdk::p4::split(record);
        if record.first() == Some(&b'@') {
            assert_eq!(
                &*op,
                &p4_op(record)[..],
                "op of record {:?}",
                String::from_utf8_lossy(record)
            );
        }
        assert!(fields.iter().all(|f| f.len() <= record.len()));
    }
    spans.len()
}

/// Fuzz target `lines_framer`: the lines framers (single-line, and
/// multi-line with one of a few start-of-record regexes chosen by the first
/// byte) through [`RecordReader`]. Same invariants as [`p4_framer`], against
/// a line-by-line reference. Returns the number of records.
pub fn lines_framer(data: &[u8]) -> usize {
    let (&pick, data) = data.split_first().unwrap_or((&0, &[]));
    let regexes = line_regexes();
    let record_start = match usize::from(pick) % (regexes.len() + 1) {
        0 => None,
        n => Some(regexes[n - 1].clone()),
    };
    let expected = |buf: &[u8]| reference::lines(buf, record_start.as_ref());
    let format = Format::Lines {
        record_start: record_start.clone(),
    };
    frame_scenario(&format, data, expected).0.len()
}

/// The start-of-record regexes [`lines_framer`] chooses from: a date, any
/// non-blank first character (continuations are indented), an end anchor.
fn line_regexes() -> &'static [Regex] {
    static RES: OnceLock<Vec<Regex>> = OnceLock::new();
    RES.get_or_init(|| {
        [r"^\d{4}-", r"^\S", r"\]$"]
            .iter()
            .map(|r| Regex::new(r).expect("valid regex"))
            .collect()
    })
}

/// Largest body [`frame_scenario`] makes by repeating the input's.
const MAX_REPEATED: usize = 64 * 1024;

/// Decodes a framing scenario and checks the reader's records; returns them
/// with the body they frame.
///
/// Header: flags (bit 0: live reading with `next_available` + `finish`,
/// else `next_record`; bits 1-2: chunk size scale 1, 7, 64 or 4096;
/// bits 3-7: the body is repeated 1 to 32 times), then a count (low 4
/// bits) of chunk-size bytes. The repeated body stops growing at
/// [`MAX_REPEATED`] bytes. A chunk size of 0 is "nothing available yet"
/// when reading live and 1 otherwise.
fn frame_scenario(
    format: &Format,
    data: &[u8],
    reference: impl Fn(&[u8]) -> Vec<Span>,
) -> (Vec<Span>, Vec<u8>) {
    let mut t = Take(data);
    let flags = t.u8();
    let live = flags & 1 == 1;
    let scale = [1, 7, 64, 4096][usize::from(flags >> 1) & 3];
    let repeat = usize::from(flags >> 3) + 1;
    let count = usize::from(t.u8() & 15);
    let mut sizes: Vec<usize> = (0..count).map(|_| usize::from(t.u8()) * scale).collect();
    if !live {
        sizes.iter_mut().for_each(|s| *s = (*s).max(1));
    }
    if sizes.iter().all(|&s| s == 0) {
        sizes.push(scale);
    }
    // Repeats stop at 64 KiB: under coverage instrumentation every byte
    // costs, and the reader's unit tests cover buffer growth and compaction.
    let rest = t.rest();
    let body = rest.repeat(repeat.min(MAX_REPEATED / rest.len().max(1)).max(1));

    let mut reader = RecordReader::new(
        Chunked {
            data: &body,
            sizes,
            i: 0,
        },
        format,
        0,
        1,
    );
    // Each record is checked as it comes, against the bytes at its place.
    let mut spans: Vec<Span> = Vec::new();
    let (mut at, mut line) = (0usize, 1u64);
    let mut check = |r: crate::format::Record<'_>| {
        let i = spans.len();
        assert_eq!(
            r.offset, at as u64,
            "record {i} starts where the previous ended"
        );
        assert!(!r.bytes.is_empty(), "record {i} is empty");
        assert_eq!(
            body.get(at..at + r.bytes.len()),
            Some(r.bytes),
            "record {i} holds the input's bytes"
        );
        assert_eq!(r.line, line, "record {i} line number");
        let newlines = r.bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(
            r.lines,
            newlines + u64::from(!r.bytes.ends_with(b"\n")),
            "record {i} line count"
        );
        assert!(
            !matches!(spans.last(), Some((_, _, true))),
            "record {} incomplete but not last",
            i - 1
        );
        spans.push((at, r.bytes.len(), r.incomplete));
        at += r.bytes.len();
        line += newlines;
    };
    if live {
        loop {
            if let Some(r) = reader.next_available().expect("in-memory read") {
                check(r);
                continue;
            }
            if reader.get_ref().data.is_empty() {
                break;
            }
        }
        while let Some(r) = reader.finish().expect("in-memory read") {
            check(r);
        }
    } else {
        while let Some(r) = reader.next_record().expect("in-memory read") {
            check(r);
        }
    }
    assert_eq!(
        reader.offset(),
        body.len() as u64,
        "reader ends at the end of the bytes"
    );
    assert_eq!(reader.buffered(), 0, "nothing left buffered");
    assert_eq!(at, body.len(), "records concatenate to the input");
    assert_eq!(
        frame_all(format, &body),
        spans,
        "whole-buffer framing agrees with the reader"
    );
    assert_eq!(reference(&body), spans, "the reference parser agrees");
    (spans, body)
}

/// The op of a p4 record that starts with `@`: its first string, unescaped,
/// ending at the closing `@` or the end of the record's text.
fn p4_op(record: &[u8]) -> Vec<u8> {
    let text = record
        .strip_suffix(b"\n")
        .map_or(record, |r| r.strip_suffix(b"\r").unwrap_or(r));
    let mut op = Vec::new();
    let mut i = 1;
    while i < text.len() {
        match (text[i], text.get(i + 1)) {
            (b'@', Some(b'@')) => {
                op.push(b'@');
                i += 2;
            }
            (b'@', _) => break,
            (c, _) => {
                op.push(c);
                i += 1;
            }
        }
    }
    op
}

/// Number of lines of `text` as error messages count them (1-based, a final
/// line without `\n` included, so an empty text has line 1).
fn line_count(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count() + 1
}

/// Fuzz target `checkpoint_load`: [`logdaemon_state::Checkpoint::parse`] on
/// arbitrary text (invalid UTF-8 replaced). Invariants: no panic; a parsed
/// checkpoint renders with `to_toml` to text that parses back to an equal
/// value; an error's line lies within the text and the message names the
/// file. Returns whether the text parsed.
pub fn checkpoint_load(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("/fuzz/state/checkpoint.toml");
    match logdaemon_state::Checkpoint::parse(&text, path) {
        Ok(cp) => {
            let rendered = cp.to_toml();
            let again = logdaemon_state::Checkpoint::parse(&rendered, path)
                .unwrap_or_else(|e| panic!("rendered checkpoint does not parse: {e}\n{rendered}"));
            assert_eq!(
                again, cp,
                "render/parse round trip changed the checkpoint:\n{rendered}"
            );
            true
        }
        Err(e) => {
            if let Some(line) = e.line() {
                assert!(
                    (1..=line_count(&text)).contains(&line),
                    "error line {line} outside the text: {e}"
                );
            }
            assert!(
                e.to_string().contains("/fuzz/state/checkpoint.toml"),
                "error does not name the file: {e}"
            );
            false
        }
    }
}

/// Fuzz target `config_load`: [`crate::config::Config::parse`] on arbitrary
/// text. Invariants: no panic; an error's line lies within the text; in an
/// accepted config every journal has listeners and each listener's config
/// table reaches the plugin unchanged. Returns whether the text parsed.
pub fn config_load(data: &[u8]) -> bool {
    use crate::config::{Config, ConfigError};
    let text = String::from_utf8_lossy(data);
    match Config::parse(&text, Path::new("/fuzz/logdaemon.toml")) {
        Ok(config) => {
            assert!(!config.journals.is_empty());
            let doc: toml::Table = toml::from_str(&text).expect("accepted config is TOML");
            let raw_journals = doc
                .get("journal")
                .and_then(|j| j.as_array())
                .expect("journal array");
            for (j, raw) in config.journals.iter().zip(raw_journals) {
                assert!(
                    !j.listeners.is_empty(),
                    "journal {:?} without listeners accepted",
                    j.name
                );
                let raw_listeners = raw
                    .get("listener")
                    .and_then(|l| l.as_array())
                    .expect("listener array");
                for (l, raw) in j.listeners.iter().zip(raw_listeners) {
                    let want = raw
                        .get("config")
                        .and_then(|c| c.as_table())
                        .cloned()
                        .unwrap_or_default();
                    let got: toml::Table = toml::from_str(&l.config_toml).unwrap_or_else(|e| {
                        panic!(
                            "listener {:?} config text does not parse: {e}\n{}",
                            l.name, l.config_toml
                        )
                    });
                    assert_eq!(
                        got, want,
                        "listener {:?} config changed on its way to the plugin",
                        l.name
                    );
                }
            }
            true
        }
        Err(e) => {
            if let ConfigError::At { line, .. } = &e {
                assert!(
                    (1..=line_count(&text)).contains(line),
                    "error line {line} outside the text: {e}"
                );
            }
            assert!(
                e.to_string().contains("/fuzz/logdaemon.toml"),
                "error does not name the file: {e}"
            );
            false
        }
    }
}

mod plugin;
pub use plugin::plugin_descriptor;

#[cfg(test)]
mod tests;
