//! Where a config error is: the file and the line of a span of its text,
//! and the `[[…]]` table that holds it. Lines are found by bisection over
//! the newlines, not counted from the top: a config of thousands of
//! journals asks for one per table.

use std::path::Path;

use super::ConfigError;

/// The config file being read, for errors that name its lines.
pub(super) struct Ctx<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
    /// Where each line ends (its newline): a line is found by bisection,
    /// not by counting from the start (a config of thousands of journals
    /// asks for a line per table).
    newlines: Vec<usize>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(path: &'a Path, text: &'a str) -> Ctx<'a> {
        let newlines = memchr::memchr_iter(b'\n', text.as_bytes()).collect();
        Ctx {
            path,
            text,
            newlines,
        }
    }

    pub(super) fn line(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.newlines.partition_point(|&nl| nl < offset) + 1
    }

    /// The text of line `k` (from 1), without its newline; empty past the end.
    pub(super) fn line_text(&self, k: usize) -> &str {
        let start = match k {
            0 | 1 => 0,
            k => self
                .newlines
                .get(k - 2)
                .map_or(self.text.len(), |&nl| nl + 1),
        };
        let end = self
            .newlines
            .get(k.saturating_sub(1))
            .copied()
            .unwrap_or(self.text.len());
        self.text.get(start..end.max(start)).unwrap_or("")
    }
    pub(super) fn at<T>(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Result<T, ConfigError> {
        Err(ConfigError::At {
            path: self.path.to_path_buf(),
            line: self.line(span.start),
            message: message.into(),
        })
    }
}

/// The line of the `[[…]]` header at or above `line` (`line` when none).
pub(super) fn table_line(ctx: &Ctx<'_>, line: usize) -> usize {
    (1..=line)
        .rev()
        .find(|&k| ctx.line_text(k).trim_start().starts_with("[["))
        .unwrap_or(line)
}
