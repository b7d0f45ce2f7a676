//! Errors of the checkpoint, written for the operator who has to fix them.
//!
//! A checkpoint that cannot be read is never replaced by an empty one: the
//! daemon stops and prints one of these. Every message names the file, the
//! 1-based line when there is one, the problem, and what to do about it, so
//! `Display` is the whole operator-facing message.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// How to get going again when the file itself is damaged.
pub(crate) const RESTORE_HINT: &str =
    "restore the previous save from checkpoint.toml.prev beside it \
     (`cp checkpoint.toml.prev checkpoint.toml`), or move both files aside and set the positions \
     with `logdaemon checkpoint set`";

/// What kind of content problem an [`StateError::Invalid`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidKind {
    /// Not TOML at all, or TOML that does not have the checkpoint's shape
    /// (unknown key, missing key, wrong type).
    Syntax,
    /// `version` is missing or not [`crate::FORMAT_VERSION`].
    Version,
    /// Well-formed, but a value is impossible (bad hash, `line = 0`,
    /// `tail_len` past `offset`, a listener ahead of its reader, ...).
    Value,
}

/// Everything that can go wrong reading, writing or locking the checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// An operating-system call on a checkpoint file or the state directory failed.
    #[error("checkpoint {}: cannot {op}: {error}; check that the path exists and that the daemon's user may use it", .path.display())]
    Io {
        path: PathBuf,
        /// What was being done, e.g. "read", "rename the new checkpoint into place".
        op: &'static str,
        error: io::Error,
    },

    /// The file's content is not an acceptable checkpoint.
    #[error("checkpoint {}{}: {problem}; {fix}", .path.display(), AtLine(*.line))]
    Invalid {
        path: PathBuf,
        /// 1-based line of the offending key or table; `None` only when the
        /// TOML parser gives no location.
        line: Option<usize>,
        kind: InvalidKind,
        /// What is wrong, naming the key and the values.
        problem: String,
        /// What the operator can do about it.
        fix: String,
    },

    /// The file exists but holds nothing (e.g. power loss on a filesystem that
    /// does not order metadata after data).
    #[error("checkpoint {}: the checkpoint is empty; {RESTORE_HINT}", .path.display())]
    Empty { path: PathBuf },

    /// The file holds bytes that no checkpoint contains (NUL bytes, invalid UTF-8).
    #[error("checkpoint {}, line {line}: the checkpoint is corrupt ({what}); {RESTORE_HINT}", .path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        what: String,
    },

    /// `checkpoint.toml` is gone but `checkpoint.toml.prev` is there: someone
    /// removed it, and starting afresh would silently lose the positions.
    #[error("checkpoint {} is missing but the previous save {} exists; restore it with `mv {} {}`, \
             or remove {} as well to start from the positions in the configuration", .path.display(),
             .previous.display(), .previous.display(), .path.display(), .previous.display())]
    MissingWithPrevious { path: PathBuf, previous: PathBuf },

    /// `checkpoint.log` does not continue the `checkpoint.toml` beside it
    /// (changed or put back by hand since the log was started, or removed):
    /// applying it, or not, could each be wrong, so the operator chooses.
    #[error("checkpoint {}: {problem}; it holds later positions of journals [{journals}]. To keep them, \
             put back the checkpoint.toml it continues; to use checkpoint.toml as it is, move {} aside \
             (those journals then resume from checkpoint.toml's positions and deliver again what came after them)",
             .path.display(), .path.display())]
    LogMismatch {
        /// The log.
        path: PathBuf,
        problem: String,
        /// The journals the log holds, comma-separated.
        journals: String,
    },

    /// The state directory may be written by others, who could forge positions.
    #[error("state directory {}: writable by group or others (mode {mode:04o}); run `chmod 700 {}`", .path.display(), .path.display())]
    UnsafeStateDir { path: PathBuf, mode: u32 },

    /// The state directory path names something other than a directory.
    #[error("state directory {}: exists but is not a directory; move it away or configure another state directory", .path.display())]
    NotADirectory { path: PathBuf },

    /// `save` was asked to write a checkpoint that `load` would reject
    /// (a position set by hand that breaks a rule, or a bug in the caller).
    #[error("refusing to write checkpoint {}: {problem}, so it could not be loaded again; \
             the checkpoint on disk is left unchanged", .path.display())]
    Refused { path: PathBuf, problem: String },

    /// Another process holds the state directory's lock.
    #[error("state directory {}: in use by another logdaemon (lock file {}{}); stop that daemon first, \
             or configure a different state directory", .path.display(), .lock.display(), Holder(.holder))]
    Locked {
        path: PathBuf,
        lock: PathBuf,
        /// What the lock file says about its holder (its pid), if readable.
        holder: String,
    },
}

impl StateError {
    /// The 1-based line the error points at, if it points at one.
    pub fn line(&self) -> Option<usize> {
        match self {
            StateError::Invalid { line, .. } => *line,
            StateError::Corrupt { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The file or directory the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            StateError::Io { path, .. }
            | StateError::Invalid { path, .. }
            | StateError::Empty { path }
            | StateError::Corrupt { path, .. }
            | StateError::MissingWithPrevious { path, .. }
            | StateError::LogMismatch { path, .. }
            | StateError::UnsafeStateDir { path, .. }
            | StateError::NotADirectory { path }
            | StateError::Refused { path, .. }
            | StateError::Locked { path, .. } => path,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, error: io::Error) -> Self {
        StateError::Io {
            path: path.into(),
            op,
            error,
        }
    }
}

/// Renders `, line N` or nothing.
struct AtLine(Option<usize>);

impl fmt::Display for AtLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, ", line {n}"),
            None => Ok(()),
        }
    }
}

/// Renders `, held by ...` or nothing.
struct Holder<'a>(&'a str);

impl fmt::Display for Holder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, ", held by {}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_file_line_problem_and_fix() {
        let e = StateError::Invalid {
            path: "/var/lib/logdaemon/checkpoint.toml".into(),
            line: Some(7),
            kind: InvalidKind::Value,
            problem: "tail_len 5000 is larger than offset 4096".into(),
            fix: "fix the line".into(),
        };
        assert_eq!(
            e.to_string(),
            "checkpoint /var/lib/logdaemon/checkpoint.toml, line 7: tail_len 5000 is larger than offset 4096; fix the line"
        );
        assert_eq!(e.line(), Some(7));
    }

    #[test]
    fn invalid_without_location_omits_the_line() {
        let e = StateError::Invalid {
            path: "c.toml".into(),
            line: None,
            kind: InvalidKind::Syntax,
            problem: "p".into(),
            fix: "f".into(),
        };
        assert_eq!(e.to_string(), "checkpoint c.toml: p; f");
    }
}
