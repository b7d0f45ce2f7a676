//! Reading a checkpoint's text: corruption, syntax, version, then the rules.
//!
//! The order matters for the message the operator gets: a file of NUL bytes
//! is reported as corrupt (not as a TOML error at column 1), a file from a
//! newer format as such (not as a list of unknown keys), and only a file that
//! has the right shape is checked value by value.

use std::path::Path;

use crate::error::{InvalidKind, StateError, RESTORE_HINT};
use crate::model::Checkpoint;
use crate::raw::{RawFile, RemovedTable, ShapeProbe, VersionProbe};

const LAYOUT_HINT: &str =
    "fix the line (the comment header of a checkpoint written by logdaemon explains the layout)";

impl Checkpoint {
    /// Parses and checks the text of a checkpoint. `path` is used only in
    /// messages. Never returns a default for a bad file: any problem is an
    /// error naming the line (1-based) and what to do.
    pub fn parse(text: &str, path: &Path) -> Result<Checkpoint, StateError> {
        parse_file(text, path).map(|p| p.checkpoint)
    }
}

/// A parsed `checkpoint.toml` with what the store needs besides the model.
pub(crate) struct Parsed {
    pub checkpoint: Checkpoint,
    /// The file's `version` (1 or 2).
    pub version: u32,
    /// The file's `generation` (0 when absent).
    pub generation: u64,
}

/// [`Checkpoint::parse`], also returning the format version and generation.
pub(crate) fn parse_file(text: &str, path: &Path) -> Result<Parsed, StateError> {
    if text.trim().is_empty() {
        return Err(StateError::Empty { path: path.into() });
    }
    if let Some(at) = text.find('\0') {
        return Err(StateError::Corrupt {
            path: path.into(),
            line: line_of(text, at),
            what: "it holds NUL bytes, as a write lost to a power failure leaves".into(),
        });
    }
    let invalid = |at: Option<usize>, kind, problem: String, fix: String| StateError::Invalid {
        path: path.into(),
        line: at.map(|a| line_of(text, a)),
        kind,
        problem,
        fix,
    };
    let toml_error = |e: toml::de::Error| {
        let problem = e
            .message()
            .replace("unknown field", "unknown key")
            .replace("missing field", "missing key");
        let problem = if problem.starts_with("missing key") {
            format!("{problem} in the table that starts here")
        } else {
            problem
        };
        invalid(
            e.span().map(|s| s.start),
            InvalidKind::Syntax,
            problem,
            format!("{LAYOUT_HINT}, or {RESTORE_HINT}"),
        )
    };

    let (raw, version) = match toml::from_str::<RawFile>(text) {
        Ok(raw) => {
            let version = check_version(raw.version.as_ref(), &invalid, text)?;
            (raw, version)
        }
        Err(e) => {
            // Wrong shape: a file from another format version says so
            // rather than listing the keys this version does not know.
            let probe: VersionProbe = toml::from_str(text).map_err(toml_error)?;
            check_version(probe.version.as_ref(), &invalid, text)?;
            if let Some(m) = toml::from_str::<ShapeProbe>(text)
                .ok()
                .and_then(|p| p.removed_table())
            {
                return Err(removed_table(m, &invalid));
            }
            return Err(toml_error(e));
        }
    };
    let model = raw.to_model().map_err(|bad| {
        let problem = format!("in {}: {}", bad.field.table(), bad.problem);
        invalid(
            Some(bad.at),
            InvalidKind::Value,
            problem,
            format!("fix the line, or {RESTORE_HINT}"),
        )
    })?;
    if let Err(p) = model.check() {
        return Err(invalid(
            raw.locate(&p.at),
            InvalidKind::Value,
            p.to_string(),
            p.fix,
        ));
    }
    Ok(Parsed {
        checkpoint: model,
        version,
        generation: raw.generation(),
    })
}

/// A position table removed by hand (its sub-tables left), named with what
/// it records and how to write it back.
fn removed_table(m: RemovedTable, invalid: &Invalid<'_>) -> StateError {
    let listener = m
        .listener
        .as_ref()
        .map(|l| format!(" --listener {l}"))
        .unwrap_or_default();
    invalid(
        Some(m.at),
        InvalidKind::Syntax,
        format!(
            "table {} is missing (its keys `sequence`, `offset` and `line` record {}; only the tables below it are left)",
            m.table, m.holds
        ),
        format!(
            "write the table back (`logdaemon checkpoint set --journal {}{listener} --sequence N --offset BYTES` writes a whole position), or {RESTORE_HINT}",
            m.journal
        ),
    )
}

/// Builds an [`StateError::Invalid`] at a byte offset of the text.
type Invalid<'a> = dyn Fn(Option<usize>, InvalidKind, String, String) -> StateError + 'a;

/// Accepts `version = 2` (the integer [`crate::FORMAT_VERSION`]) and the
/// older `version = 1` (the same tables, without `generation`, never with a
/// `checkpoint.log`), and returns which.
fn check_version(
    version: Option<&toml::Spanned<toml::Value>>,
    invalid: &Invalid<'_>,
    text: &str,
) -> Result<u32, StateError> {
    let expected = crate::FORMAT_VERSION;
    let Some(v) = version else {
        return Err(invalid(
            Some(first_content(text)),
            InvalidKind::Version,
            format!("there is no `version` key; a checkpoint starts with `version = {expected}` after its comments"),
            format!("add the line if the rest is a checkpoint, or {RESTORE_HINT}"),
        ));
    };
    let at = Some(v.span().start);
    match v.get_ref().as_integer() {
        Some(n) if n == i64::from(expected) || n == 1 => Ok(n as u32),
        Some(n) => Err(invalid(
            at,
            InvalidKind::Version,
            format!("version {n} is not {expected} (or 1), the formats this logdaemon reads (written by a newer logdaemon?)"),
            "run the logdaemon that wrote it, or set the positions with `logdaemon checkpoint set`".into(),
        )),
        None => Err(invalid(
            at,
            InvalidKind::Version,
            format!("version must be the integer {expected}, not {}", v.get_ref()),
            "write it without quotes".into(),
        )),
    }
}

/// 1-based line number of byte offset `at`.
pub(crate) fn line_of(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    text.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Byte offset of the first line that is neither blank nor a comment.
fn first_content(text: &str) -> usize {
    let mut at = 0;
    for l in text.split_inclusive('\n') {
        let t = l.trim();
        if !t.is_empty() && !t.starts_with('#') {
            return at;
        }
        at += l.len();
    }
    0
}

#[cfg(test)]
mod tests;
