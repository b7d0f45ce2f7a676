//! The write path's commit: bytes appended at the recorded lengths, synced
//! (with `fsync = true`, maybe together with later batches, see
//! [`crate::group`]), then the record replaced; and the repair of both
//! files after a write that failed half-way.
//!
//! Invariants:
//! - `record` is the record on disk. With `fsync = true` the output and
//!   the gaps file hold at least its lengths durably, so a crash never
//!   leaves the record claiming bytes the files lost;
//! - `written` is the record of what the files hold past that, written but
//!   not yet synced (`fsync = true` only); what lies past `record.done` is
//!   never acknowledged ([`FileListener::ack`]);
//! - after a failed write or sync (`dirty`), the next call first cuts both
//!   files back to `record`'s lengths and forgets `written`: the host
//!   delivers all of it again from its acknowledgement, which is at most
//!   `record.done`.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use logdaemon_sdk::{Ack, Failure, Position};

use super::{FileListener, Output};
use crate::output::{self, OutputError};
use crate::record::Record;

impl FileListener {
    /// What the files hold now: written, and synced or not.
    pub(super) fn current(&self) -> &Record {
        self.written.as_ref().unwrap_or(&self.record)
    }

    /// The acknowledgement of a call that wrote (or skipped) everything it
    /// was given: all of it, unless written bytes wait for their sync;
    /// then what the last sync covered.
    pub(super) fn ack(&self) -> Ack {
        match (&self.written, self.record.done) {
            (Some(_), Some(d)) => Ack::Upto(d.into()),
            _ => Ack::All,
        }
    }

    /// Cuts both files back to the recorded lengths after a failed write.
    /// The record is written again first: a failed update may have left the
    /// newer lengths on disk, and the record must never claim more than the
    /// files hold. Bytes written but not synced are cut off too.
    pub(super) fn repair(&mut self) -> Result<(), Failure> {
        if !self.dirty {
            return Ok(());
        }
        self.written = None;
        self.group.synced();
        self.record_file
            .store(&self.record, self.fsync)
            .map_err(|e| Failure::retry(format!("{e}; retrying")))?;
        let retry = |p: &Path, len: u64, e: std::io::Error| {
            Failure::retry(format!(
                "cannot cut {} back to {len} bytes after a failed write: {e}; retrying",
                p.display()
            ))
        };
        let (out_len, gaps_len) = (self.record.output_len, self.record.gaps_len);
        self.out
            .file(out_len)?
            .set_len(out_len)
            .map_err(|e| retry(&self.out.path, out_len, e))?;
        if let Some(g) = &mut self.gaps {
            g.file(gaps_len)?
                .set_len(gaps_len)
                .map_err(|e| retry(&g.path, gaps_len, e))?;
        }
        self.dirty = false;
        Ok(())
    }

    /// Appends `parts`, in order, to the output (or the gaps file) and
    /// records the new length and `done` position: at once with `fsync =
    /// false`; with `fsync = true` after a sync, which a large batch of the
    /// output may leave to a later call when `may_wait` (see
    /// [`crate::group`]).
    pub(super) fn commit_parts(
        &mut self,
        to_gaps: bool,
        parts: &[&[u8]],
        done: Position,
        may_wait: bool,
    ) -> Result<(), Failure> {
        if to_gaps && self.gaps.is_none() {
            self.gaps = Some(self.open_gaps()?);
        }
        let mut next = self.current().clone();
        let (out, at) = if to_gaps {
            (self.gaps.as_mut().expect("opened above"), next.gaps_len)
        } else {
            (&mut self.out, next.output_len)
        };
        let path = out.path.clone();
        let file = out.file(at)?;
        self.dirty = true;
        let mut pos = at;
        for p in parts {
            file.write_all_at(p, pos).map_err(|e| {
                Failure::retry(format!(
                    "cannot write {} bytes to {} at byte {pos}: {e}; retrying",
                    p.len(),
                    path.display()
                ))
            })?;
            pos += p.len() as u64;
        }
        if !to_gaps {
            self.writeback.written(file, pos);
        }
        let total = pos - at;
        if to_gaps {
            next.gaps_len += total;
        } else {
            next.output_len += total;
        }
        next.done = Some(done.into());
        if !self.fsync {
            self.record_file
                .store(&next, false)
                .map_err(|e| Failure::retry(format!("{e}; retrying")))?;
            self.record = next;
            self.dirty = false;
            return Ok(());
        }
        // Only after a sync is there a position to acknowledge up to.
        let wait = may_wait
            && !to_gaps
            && self.record.done.is_some()
            && self.group.defer(total, Instant::now());
        self.written = Some(next);
        if wait {
            self.dirty = false;
            return Ok(());
        }
        self.sync_written()
    }

    /// Syncs the files written since the last sync, then records them.
    pub(super) fn sync_written(&mut self) -> Result<(), Failure> {
        let Some(next) = self.written.take() else {
            return Ok(());
        };
        self.dirty = true;
        let sync = |o: &mut Output, len: u64| {
            let path = o.path.clone();
            o.file(len)?.sync_data().map_err(|e| {
                Failure::retry(format!("cannot sync {}: {e}; retrying", path.display()))
            })
        };
        if next.output_len != self.record.output_len {
            sync(&mut self.out, next.output_len)?;
        }
        if next.gaps_len != self.record.gaps_len {
            if let Some(g) = &mut self.gaps {
                sync(g, next.gaps_len)?;
            }
        }
        self.record_file
            .store(&next, self.fsync)
            .map_err(|e| Failure::retry(format!("{e}; retrying")))?;
        self.record = next;
        self.group.synced();
        self.dirty = false;
        Ok(())
    }

    /// The gaps file (raw format), opened (and created) on first use.
    fn open_gaps(&self) -> Result<Output, Failure> {
        let file = output::open(&self.gaps_path).map_err(|e| match e {
            OutputError::Io { .. } => Failure::retry(format!("{e}; retrying")),
            _ => Failure::fatal(e.to_string()),
        })?;
        Output::new(self.gaps_path.clone(), file).map_err(|e| {
            Failure::retry(format!(
                "cannot stat {}: {e}; retrying",
                self.gaps_path.display()
            ))
        })
    }
}
