//! A rotated compressed file that ends before its data does.
//!
//! When the decoder says a compressed predecessor is truncated (for good:
//! unchanged for `compressed_wait`), the daemon stops, and the operator
//! either restores the file or moves past it. Moving past it must be one
//! command that, run as printed, neither re-reads anything nor skips more
//! than that file: the position is the start of the file after it, named
//! (`--file`) when it is a rotated one, so that `checkpoint set` proves it.

use std::path::Path;

use super::{io_err, FollowError, Follower};
use crate::compress::{DecodeError, DecodeErrorKind};
use crate::follow::CutShort;

impl Follower {
    /// The error of a failed read of `path` (read as `sequence`): a
    /// truncated compressed file gets its way out, anything else is as is.
    pub(in crate::follow) fn read_err(
        &self,
        path: &Path,
        sequence: u64,
        e: std::io::Error,
    ) -> FollowError {
        let truncated = DecodeError::find(&e).is_some_and(|d| d.kind == DecodeErrorKind::Truncated);
        if !truncated || path == self.cfg.path {
            return io_err(&self.cfg, path, e);
        }
        let (next, resume_in) = self.file_after(path, sequence);
        FollowError::CutShort(Box::new(CutShort {
            journal: self.cfg.name.clone(),
            path: path.to_path_buf(),
            source: e,
            sequence,
            next,
            resume_in,
            state_dir: self.state_dir.clone(),
        }))
    }

    /// The sequence of the file read after the rotated file `path`, and
    /// that file when it is a rotated one too (`None`: the live file).
    /// Journal numbers say the order where the names have them; else the
    /// listing's order (oldest first) does.
    fn file_after(&self, path: &Path, sequence: u64) -> (u64, Option<std::path::PathBuf>) {
        let candidates = self.candidates().unwrap_or_default();
        let next = if candidates.iter().any(|k| k.number.is_some()) {
            candidates
                .iter()
                .filter(|k| k.number.is_some_and(|n| n > sequence))
                .min_by_key(|k| k.number)
        } else {
            candidates
                .iter()
                .position(|k| k.path == path)
                .and_then(|i| candidates.get(i + 1))
        };
        match next {
            Some(k) => (k.number.unwrap_or(sequence + 1), Some(k.path.clone())),
            None => (sequence + 1, None),
        }
    }
}
