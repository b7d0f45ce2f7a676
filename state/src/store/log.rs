//! `checkpoint.log`: the saves of a large checkpoint between two full
//! rewrites, so that a save costs what changed, not what is followed.
//!
//! Rewriting a checkpoint of thousands of journals because one of them
//! moved costs megabytes and a directory fsync a second. Instead, once
//! `checkpoint.toml` is large, a save appends one record holding the whole
//! state of each journal that changed (the same tables as in
//! `checkpoint.toml`) and fsyncs the log: one fsync, bytes in proportion to
//! the change. When the log has grown as large as `checkpoint.toml`, the
//! next save rewrites `checkpoint.toml` in full (a new generation) and the
//! log starts over, so a save costs amortised O(change) and a load at most
//! twice the checkpoint.
//!
//! ```text
//! # logdaemon checkpoint log — ... (comments)
//! base = 7                      # the generation of checkpoint.toml it continues
//! base_hash = "xxh3:..."        # the hash of that checkpoint.toml's bytes
//!
//! #@ 412 xxh3:0123456789abcdef  # a record: its length in bytes and their hash
//! [journal.app]
//! ...                           # exactly 412 bytes of journal tables
//! ```
//!
//! A record replaces the state of each journal it names. A log is created
//! whole (header and first record, fsynced) under a temporary name and then
//! renamed into place, so a log on disk always has its header; appends are
//! fsynced before the save returns, so after a crash only the last record
//! can be torn (cut short, or its end lost as NUL bytes): it fails its hash
//! and, being last, is ignored as the save that never returned. A record
//! that fails its hash with records after it is damage, and an error.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use serde::Deserialize;

use crate::error::StateError;
use crate::hash::Hash;
use crate::model::{Checkpoint, JournalState};
use crate::render::write_journal;

/// The log's file name inside the state directory.
pub const LOG_FILE_NAME: &str = "checkpoint.log";

/// What starts the line that frames a record.
const MARK: &[u8] = b"#@ ";

const LOG_HEADER: &str = "\
# logdaemon checkpoint log — the journals saved since checkpoint.toml was last written whole.
# Each record below replaces the state of the journals it names; checkpoint.toml and this log
# together are the checkpoint (`logdaemon checkpoint show` prints them as one). The daemon folds
# the log into checkpoint.toml at start and stop, as does `logdaemon checkpoint set`. Do not edit:
# a changed record fails its hash. base: the generation of checkpoint.toml it continues.
";

/// The header and the first record of a new log continuing the
/// `checkpoint.toml` whose bytes hash to `base_hash`, generation `base`.
pub(crate) fn new_log(base: u64, base_hash: Hash, record: &str) -> String {
    let mut out = String::with_capacity(LOG_HEADER.len() + 80 + record.len());
    out.push_str(LOG_HEADER);
    let _ = writeln!(out, "base = {base}\nbase_hash = \"{base_hash}\"\n");
    out.push_str(record);
    out
}

/// A record holding the state of `names` in `cp` (names it lacks are left
/// out); `None` when that is none at all.
pub(crate) fn record<'a>(
    cp: &Checkpoint,
    names: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut body = String::new();
    for name in names {
        if let Some(j) = cp.journals.get(name) {
            write_journal(&mut body, name, j);
        }
    }
    if body.is_empty() {
        return None;
    }
    Some(format!(
        "#@ {} {}\n{body}",
        body.len(),
        Hash::of(body.as_bytes())
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    base: u64,
    base_hash: String,
}

/// A log as read from disk.
#[derive(Debug)]
pub(crate) struct Log {
    /// The generation of `checkpoint.toml` it continues.
    pub base: u64,
    pub base_hash: Hash,
    /// The latest state of each journal its records name.
    pub journals: BTreeMap<String, JournalState>,
}

/// Reads the log's bytes (`path` is for messages): its header, then every
/// whole record; a torn last record is left out.
pub(crate) fn read(bytes: &[u8], path: &Path) -> Result<Log, StateError> {
    let start = find_mark(bytes, 0).unwrap_or(bytes.len());
    let invalid = |line: Option<usize>, problem: String| StateError::Invalid {
        path: path.into(),
        line,
        kind: crate::InvalidKind::Syntax,
        problem,
        fix: format!(
            "move {LOG_FILE_NAME} aside to resume from checkpoint.toml alone \
             (its journals then deliver again what came after checkpoint.toml's positions)"
        ),
    };
    let header = std::str::from_utf8(&bytes[..start])
        .map_err(|_| invalid(Some(1), "the header is not UTF-8 text".into()))?;
    let raw: RawHeader = toml::from_str(header).map_err(|e| {
        let line = e.span().map(|s| crate::parse::line_of(header, s.start));
        invalid(line, format!("the header does not parse: {}", e.message()))
    })?;
    let base_hash = Hash::parse(&raw.base_hash)
        .ok_or_else(|| invalid(None, format!("base_hash {:?} is not a hash", raw.base_hash)))?;
    let mut log = Log {
        base: raw.base,
        base_hash,
        journals: BTreeMap::new(),
    };
    let mut at = start;
    while at < bytes.len() {
        match whole_record(bytes, at) {
            Some((body_at, end)) => {
                let body = &bytes[body_at..end];
                let text = std::str::from_utf8(body).map_err(|_| {
                    invalid(
                        Some(line_at(bytes, body_at)),
                        "a record is not UTF-8 text".into(),
                    )
                })?;
                apply(&mut log, text, path, line_at(bytes, body_at))?;
                at = end;
            }
            // Torn: the save that was writing it never returned. Anything
            // framed after it is not a torn tail but damage.
            None if find_mark(bytes, at + 1).is_none() => break,
            None => {
                return Err(invalid(
                    Some(line_at(bytes, at)),
                    "a record here is cut short or fails its hash, and records follow it \
                     (damage, not a save cut short by a crash)"
                        .into(),
                ))
            }
        }
    }
    Ok(log)
}

/// The record framed at `at`: where its body starts and ends, if it is
/// whole and its hash matches.
fn whole_record(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let rest = bytes.get(at..)?.strip_prefix(MARK)?;
    let eol = rest.iter().position(|&b| b == b'\n')?;
    let frame = std::str::from_utf8(&rest[..eol]).ok()?;
    let (len, hash) = frame.split_once(' ')?;
    let len: usize = len.parse().ok()?;
    let hash = Hash::parse(hash)?;
    let body_at = at + MARK.len() + eol + 1;
    let end = body_at.checked_add(len)?;
    let body = bytes.get(body_at..end)?;
    (Hash::of(body) == hash).then_some((body_at, end))
}

/// Parses one record's body and makes its journals the latest.
fn apply(log: &mut Log, body: &str, path: &Path, first_line: usize) -> Result<(), StateError> {
    let text = format!("version = {}\n{body}", crate::FORMAT_VERSION);
    let cp = Checkpoint::parse(&text, path).map_err(|e| match e {
        // Lines of the record's text, counted from its first line in the log.
        StateError::Invalid {
            path,
            line,
            kind,
            problem,
            fix,
        } => StateError::Invalid {
            path,
            line: line.map(|l| l.saturating_sub(2) + first_line),
            kind,
            problem,
            fix,
        },
        e => e,
    })?;
    log.journals.extend(cp.journals);
    Ok(())
}

/// The first framing line at or after `from` (at a line start).
fn find_mark(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len().saturating_sub(MARK.len() - 1))
        .find(|&i| (i == 0 || bytes[i - 1] == b'\n') && bytes[i..].starts_with(MARK))
}

/// 1-based line number of byte `at`.
fn line_at(bytes: &[u8], at: usize) -> usize {
    bytes[..at.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The value of `key = N` among the top-level keys of a checkpoint or log
/// text (before its first table): a cheap look at a file's generation that
/// reads no more than its head.
pub(crate) fn top_level_number(bytes: &[u8], key: &str) -> Option<u64> {
    for line in bytes.split(|&b| b == b'\n') {
        let line = std::str::from_utf8(line).ok()?.trim();
        if line.starts_with('[') || line.starts_with("#@ ") {
            return None;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim() == key {
            return v.split('#').next()?.trim().trim_matches('"').parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cursor;

    fn cp(names: &[(&str, u64)]) -> Checkpoint {
        let mut c = Checkpoint::default();
        for (n, off) in names {
            let cursor = Cursor {
                sequence: 1,
                offset: *off,
                line: 1,
                identity: None,
            };
            let mut j = JournalState {
                reader: cursor.clone(),
                ..Default::default()
            };
            j.listeners.insert("copy".into(), cursor);
            c.journals.insert(n.to_string(), j);
        }
        c
    }

    fn log_of(records: &[Checkpoint]) -> String {
        let mut text = String::new();
        for (i, r) in records.iter().enumerate() {
            let names: Vec<&str> = r.journals.keys().map(String::as_str).collect();
            let rec = record(r, names).unwrap();
            if i == 0 {
                text = new_log(3, Hash(9), &rec);
            } else {
                text.push_str(&rec);
            }
        }
        text
    }

    #[test]
    fn records_replace_the_journals_they_name_in_order() {
        let text = log_of(&[cp(&[("a", 1), ("b", 1)]), cp(&[("a", 2)])]);
        let log = read(text.as_bytes(), Path::new("checkpoint.log")).unwrap();
        assert_eq!((log.base, log.base_hash), (3, Hash(9)));
        assert_eq!(log.journals["a"].reader.offset, 2);
        assert_eq!(log.journals["b"].reader.offset, 1);
        assert_eq!(top_level_number(text.as_bytes(), "base"), Some(3));
    }

    #[test]
    fn a_torn_last_record_is_left_out_whatever_the_tear() {
        let text = log_of(&[cp(&[("a", 1)]), cp(&[("a", 2)])]);
        let second = text.rfind("#@ ").unwrap();
        let whole = text.len();
        for cut in [second + 1, second + 5, (second + whole) / 2, whole - 1] {
            let mut torn = text.as_bytes()[..cut].to_vec();
            let log = read(&torn, Path::new("l")).unwrap();
            assert_eq!(log.journals["a"].reader.offset, 1, "cut at {cut}");
            // Size kept, data lost: NUL bytes to the end.
            torn.resize(whole, 0);
            let log = read(&torn, Path::new("l")).unwrap();
            assert_eq!(log.journals["a"].reader.offset, 1, "NUL from {cut}");
        }
    }

    #[test]
    fn a_damaged_record_followed_by_others_is_an_error_at_its_line() {
        let text = log_of(&[cp(&[("a", 1)]), cp(&[("a", 2)]), cp(&[("a", 3)])]);
        let second = text[..text.rfind("#@ ").unwrap()].rfind("#@ ").unwrap();
        let bad = text.replacen("offset = 2", "offset = 7", 1);
        let e = read(bad.as_bytes(), Path::new("/s/checkpoint.log")).unwrap_err();
        assert!(matches!(e, StateError::Invalid { .. }), "{e:?}");
        assert!(e.to_string().contains("move checkpoint.log aside"), "{e}");
        assert_eq!(e.line(), Some(text[..second].lines().count() + 1), "{e}");
        assert!(e.to_string().contains("/s/checkpoint.log"), "{e}");
    }

    #[test]
    fn a_record_that_breaks_a_rule_names_its_line_in_the_log() {
        let mut bad = cp(&[("a", 5)]);
        bad.journals
            .get_mut("a")
            .unwrap()
            .listeners
            .get_mut("copy")
            .unwrap()
            .offset = 6;
        let rec = record(&bad, ["a"]).unwrap();
        let text = new_log(1, Hash(1), &rec);
        let e = read(text.as_bytes(), Path::new("checkpoint.log")).unwrap_err();
        let line = text.lines().position(|l| l == "offset = 6").unwrap() + 1;
        assert_eq!(e.line(), Some(line), "{e}");
        assert!(
            e.to_string().contains("ahead of the journal's reader"),
            "{e}"
        );
    }
}
